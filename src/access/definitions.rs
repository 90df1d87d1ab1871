//! Users, vhosts, permissions, topic permissions and limits in RabbitMQ's
//! `definitions.json` shape: read from an import (or `access.json`) with
//! every entry checked before anything changes, and written for export.

use super::limits::{UserLimits, to_map};
use super::password::{Hashing, PasswordHash};
use super::permission::{Pattern, Permissions, TopicPermission};
use super::user::{User, parse_tags};
use super::{State, VhostLimits, VhostMeta};
use serde_json::{Value, json};
use std::sync::Arc;

/// The access-control part of a definitions document, checked.
#[derive(Default)]
pub(crate) struct AccessDoc {
    pub users: Vec<User>,
    pub vhosts: Vec<VhostMeta>,
    /// (user, vhost, permissions)
    pub permissions: Vec<(String, String, Permissions)>,
    /// (user, vhost, permission)
    pub topic_permissions: Vec<(String, String, TopicPermission)>,
    /// ((vhost, component, name), value)
    pub parameters: Vec<((String, String, String), Value)>,
    pub global_parameters: Vec<(String, Value)>,
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn list<'a>(doc: &'a Value, k: &str) -> Result<&'a [Value], String> {
    match doc.get(k) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("'{k}' is not a list")),
    }
}

fn limit(v: &Value, what: &str) -> Result<Option<u64>, String> {
    match v {
        Value::Null => Ok(None),
        // RabbitMQ stores -1 for "no limit".
        Value::Number(n) if n.as_i64() == Some(-1) => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{what}: limit {n} is not a non-negative integer")),
        other => Err(format!("{what}: limit {other} is not an integer")),
    }
}

/// Read and check users, vhosts, permissions, topic permissions and vhost
/// limits. The first bad entry is the error, named.
pub(crate) fn parse_access(doc: &Value) -> Result<AccessDoc, String> {
    let mut out = AccessDoc::default();
    for u in list(doc, "users")? {
        out.users.push(parse_user(u)?);
    }
    for v in list(doc, "vhosts")? {
        out.vhosts.push(parse_vhost(v)?);
    }
    for p in list(doc, "parameters")? {
        let component = s(p, "component").unwrap_or("");
        if component != "vhost-limits" {
            let (vhost, name) = (s(p, "vhost").unwrap_or("/"), s(p, "name").unwrap_or(""));
            if component.is_empty() || name.is_empty() {
                return Err(format!(
                    "parameter in vhost '{vhost}': 'component' and 'name' are required"
                ));
            }
            let key = (vhost.to_string(), component.to_string(), name.to_string());
            out.parameters
                .push((key, p.get("value").cloned().unwrap_or(Value::Null)));
            continue;
        }
        let vhost = s(p, "vhost").unwrap_or("/");
        let what = format!("vhost-limits of vhost '{vhost}'");
        let limits = parse_vhost_limits(p.get("value").unwrap_or(&Value::Null), &what)?;
        match out.vhosts.iter_mut().find(|v| v.name == vhost) {
            Some(v) => v.limits = limits,
            None => return Err(format!("{what}: no such vhost in the definitions")),
        }
    }
    for p in list(doc, "global_parameters")? {
        let Some(name) = s(p, "name") else {
            return Err("global parameter: 'name' is required".into());
        };
        // RabbitMQ's own cluster id is the node's, not something to import.
        if name != "internal_cluster_id" {
            out.global_parameters.push((
                name.to_string(),
                p.get("value").cloned().unwrap_or(Value::Null),
            ));
        }
    }
    for p in list(doc, "permissions")? {
        let (user, vhost) = (s(p, "user").unwrap_or(""), s(p, "vhost").unwrap_or("/"));
        let what = format!("permissions of user '{user}' in vhost '{vhost}'");
        let get = |k| s(p, k).ok_or_else(|| format!("{what}: '{k}' missing"));
        let perms = Permissions::new(get("configure")?, get("write")?, get("read")?)
            .map_err(|e| format!("{what}: {e}"))?;
        out.permissions
            .push((user.to_string(), vhost.to_string(), perms));
    }
    for p in list(doc, "topic_permissions")? {
        let (user, vhost) = (s(p, "user").unwrap_or(""), s(p, "vhost").unwrap_or("/"));
        let exchange = s(p, "exchange").unwrap_or("");
        let what = format!(
            "topic permissions of user '{user}' on exchange '{exchange}' in vhost '{vhost}'"
        );
        let pattern =
            |k| Pattern::template(s(p, k).unwrap_or("")).map_err(|e| format!("{what}: {e}"));
        out.topic_permissions.push((
            user.to_string(),
            vhost.to_string(),
            TopicPermission {
                exchange: exchange.to_string(),
                write: pattern("write")?,
                read: pattern("read")?,
            },
        ));
    }
    Ok(out)
}

fn parse_user(u: &Value) -> Result<User, String> {
    let name = s(u, "name").ok_or("a user without a name")?;
    let what = format!("user '{name}'");
    if u.get("password").is_some() && u.get("password_hash").is_some() {
        return Err(format!("{what}: both password and password_hash given"));
    }
    let password = match (s(u, "password"), s(u, "password_hash")) {
        (Some(clear), _) => PasswordHash::new(clear),
        (None, Some(hash)) => {
            // No algorithm: a hash from before RabbitMQ 3.6, which is MD5.
            let hashing = match s(u, "hashing_algorithm") {
                Some(a) => Hashing::parse(a).map_err(|e| format!("{what}: {e}"))?,
                None => Hashing::Md5,
            };
            PasswordHash::parse(hash, hashing).map_err(|e| format!("{what}: {e}"))?
        }
        (None, None) => PasswordHash::none(),
    };
    let mut limits = UserLimits::default();
    parse_limits(u.get("limits").unwrap_or(&Value::Null), &what, |k, v| {
        limits.set(k, v)
    })?;
    Ok(User {
        name: name.to_string(),
        password,
        tags: parse_tags(u.get("tags").unwrap_or(&Value::Null)),
        limits,
    })
}

fn parse_vhost(v: &Value) -> Result<VhostMeta, String> {
    let name = s(v, "name").ok_or("a vhost without a name")?;
    let what = format!("vhost '{name}'");
    let meta = v.get("metadata");
    let field = |k: &str| {
        meta.and_then(|m| m.get(k))
            .or_else(|| v.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    Ok(VhostMeta {
        name: name.to_string(),
        description: field("description").as_str().unwrap_or("").to_string(),
        tags: parse_tags(&field("tags")),
        default_queue_type: field("default_queue_type").as_str().map(String::from),
        limits: parse_vhost_limits(v.get("limits").unwrap_or(&Value::Null), &what)?,
    })
}

pub(crate) fn parse_vhost_limits(v: &Value, what: &str) -> Result<VhostLimits, String> {
    let mut l = VhostLimits::default();
    parse_limits(v, what, |k, n| l.set(k, n))?;
    Ok(l)
}

/// `{"max-connections": 10}`, or RabbitMQ's export form
/// `[["max-connections", 10]]`, each given to `set` (false: no such limit).
fn parse_limits(
    v: &Value,
    what: &str,
    mut set: impl FnMut(&str, Option<u64>) -> bool,
) -> Result<(), String> {
    let pairs: Vec<(&str, &Value)> = match v {
        Value::Null => Vec::new(),
        Value::Object(m) => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Ok((k.as_str(), v)),
                _ => Err(format!("{what}: bad limit {p}")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("{what}: bad limits {other}")),
    };
    for (k, v) in pairs {
        if !set(k, limit(v, what)?) {
            return Err(format!("{what}: unknown limit '{k}'"));
        }
    }
    Ok(())
}

impl AccessDoc {
    /// `base` with this document's entries added (replacing same-named
    /// ones), after checking that every permission names a user and a vhost
    /// that will exist.
    pub(crate) fn apply(self, base: &mut State) -> Result<(), String> {
        let mut next = base.clone();
        for u in self.users {
            next.users.insert(u.name.clone(), Arc::new(u));
        }
        for v in self.vhosts {
            next.vhosts.insert(v.name.clone(), v);
        }
        let known = |s: &State, user: &str, vhost: &str, what: &str| {
            if !s.users.contains_key(user) {
                return Err(format!(
                    "{what} of user '{user}' in vhost '{vhost}': no such user"
                ));
            }
            if !s.vhosts.contains_key(vhost) {
                return Err(format!(
                    "{what} of user '{user}' in vhost '{vhost}': no such vhost"
                ));
            }
            Ok(())
        };
        for (user, vhost, p) in self.permissions {
            known(&next, &user, &vhost, "permissions")?;
            next.put_permissions(&user, &vhost, p);
        }
        for (user, vhost, t) in self.topic_permissions {
            known(&next, &user, &vhost, "topic permissions")?;
            next.put_topic_permission(&user, &vhost, t);
        }
        for (key, value) in self.parameters {
            if !next.vhosts.contains_key(&key.0) {
                return Err(format!(
                    "parameter '{}' of component '{}' in vhost '{}': no such vhost",
                    key.2, key.1, key.0
                ));
            }
            next.parameters.insert(key, value);
        }
        next.global_parameters.extend(self.global_parameters);
        *base = next;
        Ok(())
    }

    pub(crate) fn into_state(self, mut base: State) -> Result<State, String> {
        self.apply(&mut base)?;
        Ok(base)
    }
}

pub(crate) fn user_json(u: &User) -> Value {
    let limits = to_map(&u.limits.named());
    json!({
        "name": u.name,
        "password_hash": u.password.to_base64(),
        "hashing_algorithm": u.password.hashing.name(),
        "tags": u.tags,
        "limits": limits,
    })
}

pub(crate) fn vhost_json(v: &VhostMeta) -> Value {
    let limits: Vec<Value> = v
        .limits
        .named()
        .into_iter()
        .map(|(k, n)| json!([k, n]))
        .collect();
    let mut metadata = json!({ "description": v.description, "tags": v.tags });
    if let Some(t) = &v.default_queue_type {
        metadata["default_queue_type"] = json!(t);
    }
    json!({ "name": v.name, "limits": limits, "metadata": metadata })
}

pub(crate) fn permission_json(user: &str, vhost: &str, p: &Permissions) -> Value {
    json!({
        "user": user,
        "vhost": vhost,
        "configure": p.configure.source,
        "write": p.write.source,
        "read": p.read.source,
    })
}

pub(crate) fn topic_permission_json(user: &str, vhost: &str, t: &TopicPermission) -> Value {
    json!({
        "user": user,
        "vhost": vhost,
        "exchange": t.exchange,
        "write": t.write.source,
        "read": t.read.source,
    })
}

/// Users, vhosts, permissions, topic permissions and vhost limits (as
/// RabbitMQ's `vhost-limits` parameters), in RabbitMQ's export shape.
pub(crate) fn access_json(s: &State) -> Value {
    let users: Vec<Value> = s.users.values().map(|u| user_json(u)).collect();
    let vhosts: Vec<Value> = s.vhosts.values().map(vhost_json).collect();
    let mut permissions = Vec::new();
    for (user, by_vhost) in &s.permissions {
        for (vhost, p) in by_vhost {
            permissions.push(permission_json(user, vhost, p));
        }
    }
    let mut topic = Vec::new();
    for (user, by_vhost) in &s.topic_permissions {
        for (vhost, list) in by_vhost {
            for t in list {
                topic.push(topic_permission_json(user, vhost, t));
            }
        }
    }
    let mut parameters: Vec<Value> = s
        .vhosts
        .values()
        .filter(|v| !v.limits.named().is_empty())
        .map(|v| {
            let value = to_map(&v.limits.named());
            json!({ "vhost": v.name, "component": "vhost-limits", "name": "limits", "value": value })
        })
        .collect();
    parameters.extend(s.parameters.iter().map(parameter_json));
    let global: Vec<Value> = s
        .global_parameters
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    json!({
        "users": users,
        "vhosts": vhosts,
        "permissions": permissions,
        "topic_permissions": topic,
        "parameters": parameters,
        "global_parameters": global,
    })
}

pub(crate) fn parameter_json(
    ((vhost, component, name), value): (&(String, String, String), &Value),
) -> Value {
    json!({ "vhost": vhost, "component": component, "name": name, "value": value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rabbitmq_export() -> Value {
        // The access-control part of RabbitMQ 3.10.8's export_definitions.
        serde_json::from_str(r#"{
          "users": [
            {"hashing_algorithm": "rabbit_password_hashing_sha256", "limits": {}, "name": "nopass", "password_hash": "", "tags": []},
            {"hashing_algorithm": "rabbit_password_hashing_sha256", "limits": {"max-channels": 7, "max-connections": 3},
             "name": "alice", "password_hash": "kdkc3piHkBMiqVlnsMt13KDfvkcrRTkG4MkztK7DAN9pM1Q3", "tags": ["monitoring", "policymaker"]},
            {"hashing_algorithm": "rabbit_password_hashing_sha256", "limits": {}, "name": "guest",
             "password_hash": "1IZkh4i8BjNcO8l8ZSzjaTYVyMGnLJFJjykYzx2vr7MM/A0g", "tags": ["administrator"]}
          ],
          "vhosts": [
            {"limits": [], "metadata": {"description": "Default virtual host", "tags": []}, "name": "/"},
            {"limits": [["max-connections", 10], ["max-queues", 5]], "metadata": {"description": "", "tags": ""}, "name": "v1"}
          ],
          "permissions": [
            {"configure": "^a", "read": "", "user": "alice", "vhost": "v1", "write": "^b"},
            {"configure": ".*", "read": ".*", "user": "guest", "vhost": "/", "write": ".*"}
          ],
          "topic_permissions": [{"exchange": "amq.topic", "read": "^y", "user": "alice", "vhost": "v1", "write": "^x"}],
          "parameters": [{"component": "vhost-limits", "name": "limits", "value": {"max-connections": 10, "max-queues": 5}, "vhost": "v1"}]
        }"#).unwrap()
    }

    #[test]
    fn a_rabbitmq_export_imports_and_exports_the_same() {
        let doc = rabbitmq_export();
        let s = parse_access(&doc)
            .unwrap()
            .into_state(State::default())
            .unwrap();
        assert!(s.users["alice"].password.verify("secret"));
        assert!(s.users["guest"].password.verify("guest"));
        assert!(!s.users["nopass"].password.verify(""));
        assert_eq!(s.users["nopass"].password.to_base64(), "");
        assert_eq!(s.users["alice"].limits.max_channels, Some(7));
        assert_eq!(s.vhosts["v1"].limits.max_queues, Some(5));
        assert_eq!(s.permissions("alice", "v1").unwrap().configure.source, "^a");
        assert_eq!(
            s.topic_permission("alice", "v1", "amq.topic")
                .unwrap()
                .write
                .source,
            "^x"
        );
        let out = access_json(&s);
        for k in ["users", "permissions", "topic_permissions", "parameters"] {
            let mut a = out[k].as_array().unwrap().clone();
            let mut b = doc[k].as_array().unwrap().clone();
            a.sort_by_key(|v| v.to_string());
            b.sort_by_key(|v| v.to_string());
            assert_eq!(a, b, "{k}");
        }
        assert_eq!(out["vhosts"][1]["limits"], doc["vhosts"][1]["limits"]);
    }

    #[test]
    fn a_bad_entry_is_refused_by_name_and_nothing_changes() {
        let mut doc = rabbitmq_export();
        doc["users"][1]["hashing_algorithm"] = json!("rabbit_password_hashing_sha1");
        let e = parse_access(&doc).err().unwrap();
        assert!(e.contains("user 'alice'") && e.contains("sha1"), "{e}");

        let mut doc = rabbitmq_export();
        doc["permissions"][0]["write"] = json!("(");
        let e = parse_access(&doc).err().unwrap();
        assert!(
            e.contains("permissions of user 'alice' in vhost 'v1'"),
            "{e}"
        );

        let mut doc = rabbitmq_export();
        doc["permissions"][0]["user"] = json!("bob");
        let mut base = State::default();
        let e = parse_access(&doc).unwrap().apply(&mut base).err().unwrap();
        assert!(
            e.contains("user 'bob'") && e.contains("no such user"),
            "{e}"
        );
        assert!(base.users.is_empty(), "nothing half-imported");
    }

    #[test]
    fn a_user_without_an_algorithm_is_md5_and_a_cleartext_password_is_hashed() {
        let doc = json!({"users": [
            {"name": "old", "password_hash": PasswordHash::salted(Hashing::Md5, [9, 9, 9, 9], "pw").to_base64()},
            {"name": "new", "password": "pw2", "tags": "administrator,management"}
        ]});
        let s = parse_access(&doc)
            .unwrap()
            .into_state(State::default())
            .unwrap();
        assert!(s.users["old"].password.verify("pw"));
        assert!(s.users["new"].password.verify("pw2"));
        assert_eq!(s.users["new"].tags, ["administrator", "management"]);
    }
}
