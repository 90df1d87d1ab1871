//! Changes to users and permissions, named after the rabbitmqctl commands
//! that make them. Vhosts are added and deleted through the broker, which
//! owns their exchanges and queues (`Broker::add_vhost`).

use super::limits::UserLimits;
use super::password::PasswordHash;
use super::permission::{Pattern, Permissions, TopicPermission};
use super::user::User;
use super::{Access, Refusal, State, VhostLimits};
use std::sync::Arc;

fn user_mut<'a>(s: &'a mut State, name: &str) -> Result<&'a mut User, Refusal> {
    s.users
        .get_mut(name)
        .map(Arc::make_mut)
        .ok_or_else(|| Refusal::NoSuchUser(name.to_string()))
}

fn known(s: &State, user: &str, vhost: &str) -> Result<(), Refusal> {
    if !s.users.contains_key(user) {
        return Err(Refusal::NoSuchUser(user.to_string()));
    }
    if !s.vhosts.contains_key(vhost) {
        return Err(Refusal::NoSuchVhost(vhost.to_string()));
    }
    Ok(())
}

impl Access {
    /// Create or replace a user; true if it was new.
    pub(crate) fn put_user(&self, user: User) -> Result<bool, Refusal> {
        self.change(|s| Ok(s.users.insert(user.name.clone(), Arc::new(user)).is_none()))
    }

    pub(crate) fn add_user(
        &self,
        name: &str,
        password: &str,
        tags: Vec<String>,
    ) -> Result<bool, Refusal> {
        self.put_user(User {
            name: name.to_string(),
            password: PasswordHash::new(password),
            tags,
            limits: UserLimits::default(),
        })
    }

    /// Remove a user with its permissions everywhere.
    pub(crate) fn delete_user(&self, name: &str) -> Result<(), Refusal> {
        self.change(|s| {
            s.remove_user(name)
                .then_some(())
                .ok_or_else(|| Refusal::NoSuchUser(name.to_string()))
        })
    }

    pub(crate) fn set_user_limits(&self, name: &str, limits: UserLimits) -> Result<(), Refusal> {
        self.change(|s| {
            user_mut(s, name)?.limits = limits;
            Ok(())
        })
    }

    pub(crate) fn set_permissions(
        &self,
        user: &str,
        vhost: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> Result<(), Refusal> {
        let p = Permissions::new(configure, write, read).map_err(Refusal::Invalid)?;
        self.change(|s| {
            known(s, user, vhost)?;
            s.put_permissions(user, vhost, p);
            Ok(())
        })
    }

    /// False if there were none.
    pub(crate) fn clear_permissions(&self, user: &str, vhost: &str) -> Result<bool, Refusal> {
        self.change(|s| {
            known(s, user, vhost)?;
            Ok(s.permissions
                .get_mut(user)
                .and_then(|m| m.remove(vhost))
                .is_some())
        })
    }

    pub(crate) fn set_topic_permissions(
        &self,
        user: &str,
        vhost: &str,
        exchange: &str,
        write: &str,
        read: &str,
    ) -> Result<(), Refusal> {
        let t = TopicPermission {
            exchange: exchange.to_string(),
            write: Pattern::template(write).map_err(Refusal::Invalid)?,
            read: Pattern::template(read).map_err(Refusal::Invalid)?,
        };
        self.change(|s| {
            known(s, user, vhost)?;
            s.put_topic_permission(user, vhost, t);
            Ok(())
        })
    }

    /// One exchange's, or (None) all of the user's in the vhost. False if
    /// there were none.
    pub(crate) fn clear_topic_permissions(
        &self,
        user: &str,
        vhost: &str,
        exchange: Option<&str>,
    ) -> Result<bool, Refusal> {
        self.change(|s| {
            known(s, user, vhost)?;
            let Some(list) = s
                .topic_permissions
                .get_mut(user)
                .and_then(|m| m.get_mut(vhost))
            else {
                return Ok(false);
            };
            let before = list.len();
            match exchange {
                Some(x) => list.retain(|t| t.exchange != x),
                None => list.clear(),
            }
            Ok(list.len() < before)
        })
    }

    pub(crate) fn set_vhost_limits(&self, vhost: &str, limits: VhostLimits) -> Result<(), Refusal> {
        self.change(|s| {
            let v = s
                .vhosts
                .get_mut(vhost)
                .ok_or_else(|| Refusal::NoSuchVhost(vhost.to_string()))?;
            v.limits = limits;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Defaults, check};
    use super::*;

    fn open(dir: &std::path::Path) -> Access {
        let tags = vec!["administrator".to_string()];
        let d = Defaults {
            vhost: "/",
            user: "guest",
            pass: "guest",
            tags: &tags,
        };
        Access::open(dir, &d, Vec::new()).unwrap()
    }

    #[test]
    fn first_boot_creates_the_defaults_and_changes_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        let s = a.snapshot();
        assert!(check::user_login_authentication(&s, "guest", "guest").is_some());
        assert!(check::check_vhost_access(&s, "guest", "/").is_ok());

        a.change(|s| {
            let meta = super::super::VhostMeta {
                name: "v".into(),
                ..Default::default()
            };
            s.vhosts.insert("v".into(), meta);
            Ok(())
        })
        .unwrap();
        a.add_user("bob", "pw", vec!["monitoring".into()]).unwrap();
        a.set_permissions("bob", "v", "^b", "", ".*").unwrap();
        a.set_topic_permissions("bob", "v", "amq.topic", "^x", "")
            .unwrap();
        a.delete_user("guest").unwrap();
        drop(a);

        let a = open(dir.path());
        let s = a.snapshot();
        assert!(
            !s.users.contains_key("guest"),
            "a later boot does not recreate the default user"
        );
        assert!(check::user_login_authentication(&s, "bob", "pw").is_some());
        assert!(check::user_login_authentication(&s, "bob", "px").is_none());
        assert_eq!(s.permissions("bob", "v").unwrap().configure.source, "^b");
        assert_eq!(
            s.topic_permission("bob", "v", "amq.topic")
                .unwrap()
                .write
                .source,
            "^x"
        );
    }

    #[test]
    fn refused_changes_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        let g = a.generation();
        assert_eq!(
            a.set_permissions("nobody", "/", ".*", ".*", ".*"),
            Err(Refusal::NoSuchUser("nobody".into()))
        );
        assert_eq!(
            a.set_permissions("guest", "nowhere", ".*", ".*", ".*"),
            Err(Refusal::NoSuchVhost("nowhere".into()))
        );
        assert!(matches!(
            a.set_permissions("guest", "/", "(", ".*", ".*"),
            Err(Refusal::Invalid(_))
        ));
        assert_eq!(a.generation(), g);
        assert_eq!(
            a.snapshot()
                .permissions("guest", "/")
                .unwrap()
                .configure
                .source,
            ".*"
        );
    }
}
