//! Access control: the one registry of users, vhosts, permissions and
//! limits that the AMQP handshake, every channel handler and the management
//! API consult. Read-mostly: readers take a snapshot (`Arc<State>`); a
//! change copies the state, saves it (`access.json` in the data dir, in
//! RabbitMQ's definitions shape) and swaps it in, then bumps a generation
//! that lets channels drop the decisions they cached.
//!
//! Users and vhosts are few, so the whole file is rewritten on a change
//! (atomically, with an fsync); exchanges, queues and bindings, which can be
//! many, live in each vhost's own change log.

pub(crate) mod changes;
pub(crate) mod check;
pub(crate) mod definitions;
pub(crate) mod limits;
pub(crate) mod password;
pub(crate) mod permission;
pub(crate) mod rules;
pub(crate) mod user;

pub(crate) use limits::VhostLimits;
use permission::{Permissions, TopicPermission};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use user::User;

/// A vhost's own settings (its exchanges and queues live in its `Vhost`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct VhostMeta {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub default_queue_type: Option<String>,
    pub limits: VhostLimits,
}

/// Everything access control knows, as one value.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    pub users: BTreeMap<String, Arc<User>>,
    pub vhosts: BTreeMap<String, VhostMeta>,
    /// user → vhost → permissions.
    pub permissions: BTreeMap<String, BTreeMap<String, Arc<Permissions>>>,
    /// user → vhost → topic permissions, one per exchange.
    pub topic_permissions: BTreeMap<String, BTreeMap<String, Vec<TopicPermission>>>,
    /// Runtime parameters (shovels, federation upstreams, ...) by (vhost,
    /// component, name): stored and exported as RabbitMQ does, even where
    /// ferretmq has no feature that reads them. Vhost limits are not here
    /// but in `vhosts`.
    pub parameters: BTreeMap<(String, String, String), serde_json::Value>,
    /// Global parameters by name.
    pub global_parameters: BTreeMap<String, serde_json::Value>,
}

impl State {
    pub(crate) fn permissions(&self, user: &str, vhost: &str) -> Option<&Arc<Permissions>> {
        self.permissions.get(user)?.get(vhost)
    }

    pub(crate) fn topic_permission(
        &self,
        user: &str,
        vhost: &str,
        exchange: &str,
    ) -> Option<&TopicPermission> {
        self.topic_permissions
            .get(user)?
            .get(vhost)?
            .iter()
            .find(|t| t.exchange == exchange)
    }

    pub(crate) fn put_permissions(&mut self, user: &str, vhost: &str, p: Permissions) {
        self.permissions
            .entry(user.to_string())
            .or_default()
            .insert(vhost.to_string(), Arc::new(p));
    }

    /// A user's topic permission on `t.exchange`, replacing any there was.
    pub(crate) fn put_topic_permission(&mut self, user: &str, vhost: &str, t: TopicPermission) {
        let list = self
            .topic_permissions
            .entry(user.to_string())
            .or_default()
            .entry(vhost.to_string())
            .or_default();
        list.retain(|o| o.exchange != t.exchange);
        list.push(t);
    }

    /// Remove a vhost and everything granted in it.
    pub(crate) fn remove_vhost(&mut self, name: &str) -> bool {
        for p in self.permissions.values_mut() {
            p.remove(name);
        }
        for p in self.topic_permissions.values_mut() {
            p.remove(name);
        }
        self.parameters.retain(|(v, _, _), _| v != name);
        self.vhosts.remove(name).is_some()
    }

    pub(crate) fn remove_user(&mut self, name: &str) -> bool {
        self.permissions.remove(name);
        self.topic_permissions.remove(name);
        self.users.remove(name).is_some()
    }
}

/// Why a change to access control was refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    NoSuchUser(String),
    NoSuchVhost(String),
    Invalid(String),
    /// The change could not be saved (and so was not made).
    Io(String),
    /// A cluster could not commit the change (no majority, no leader).
    Unavailable(String),
    /// What an AMQP method's own checks refused, with its reply code
    /// (an exchange declared again with other properties, say).
    Amqp {
        code: u16,
        text: String,
    },
}

impl From<crate::error::AmqpError> for Refusal {
    fn from(e: crate::error::AmqpError) -> Refusal {
        Refusal::Amqp {
            code: e.code as u16,
            text: e.text,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoSuchUser(u) => write!(f, "no such user '{u}'"),
            Refusal::NoSuchVhost(v) => write!(f, "no such vhost '{v}'"),
            Refusal::Invalid(s)
            | Refusal::Io(s)
            | Refusal::Unavailable(s)
            | Refusal::Amqp { text: s, .. } => f.write_str(s),
        }
    }
}

pub struct Access {
    path: PathBuf,
    state: RwLock<Arc<State>>,
    /// Serialises changes, so that the state lock is held only to swap in
    /// the new state, never across the save's fsync.
    changing: std::sync::Mutex<()>,
    generation: AtomicU64,
}

/// What a first boot creates, from the config (RabbitMQ's `default_*`).
pub(crate) struct Defaults<'a> {
    pub vhost: &'a str,
    pub user: &'a str,
    pub pass: &'a str,
    pub tags: &'a [String],
}

impl Access {
    /// Load `access.json` from the data dir; on a first boot (no file),
    /// create the default vhost and user, with full permissions, and keep
    /// any vhost whose data is already there.
    pub(crate) fn open(
        data_dir: &Path,
        defaults: &Defaults,
        existing_vhosts: Vec<String>,
    ) -> std::io::Result<Access> {
        let path = data_dir.join("access.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::other(format!("{}: bad JSON: {e}", path.display()))
                })?;
                definitions::parse_access(&doc)
                    .and_then(|d| d.into_state(State::default()))
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = first_boot(defaults, existing_vhosts);
                save(&path, &s)?;
                tracing::info!(
                    "first boot: created vhost '{}' and user '{}'",
                    defaults.vhost,
                    defaults.user
                );
                s
            }
            Err(e) => return Err(e),
        };
        Ok(Access {
            path,
            state: RwLock::new(Arc::new(state)),
            changing: Default::default(),
            generation: AtomicU64::new(1),
        })
    }

    /// The current state; cheap (a reference count).
    pub(crate) fn snapshot(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Bumped on every change: a channel's cached decisions are good while
    /// it stays the same.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Apply `f` to a copy of the state, save it, and make it current. A
    /// refusal (or a failed save) changes nothing.
    pub(crate) fn change<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        let _one_at_a_time = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = State::clone(&self.snapshot());
        let r = f(&mut next)?;
        save(&self.path, &next).map_err(|e| Refusal::Io(format!("cannot save users: {e}")))?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(r)
    }
}

fn first_boot(d: &Defaults, existing_vhosts: Vec<String>) -> State {
    let mut s = State::default();
    let mut names = existing_vhosts;
    names.push(d.vhost.to_string());
    for name in names {
        let description = if name == d.vhost {
            "Default virtual host".to_string()
        } else {
            String::new()
        };
        s.vhosts.insert(
            name.clone(),
            VhostMeta {
                name,
                description,
                ..VhostMeta::default()
            },
        );
    }
    s.users.insert(
        d.user.to_string(),
        Arc::new(User {
            name: d.user.to_string(),
            password: password::PasswordHash::new(d.pass),
            tags: d.tags.to_vec(),
            limits: Default::default(),
        }),
    );
    s.permissions
        .entry(d.user.to_string())
        .or_default()
        .insert(d.vhost.to_string(), Arc::new(Permissions::full()));
    s
}

fn save(path: &Path, s: &State) -> std::io::Result<()> {
    let doc = definitions::access_json(s);
    let text = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
    crate::store::write_atomic(path, &text)
}
