//! Durable definitions of one vhost as plain data: exchanges, queues (with
//! their arguments), bindings between durable entities, and policies; and
//! the changes between two of them, which `definitions_log` appends.

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    /// Which change log continues this snapshot (0 in older data dirs).
    #[serde(default)]
    pub generation: u64,
    pub exchanges: Vec<ExchangeDef>,
    pub queues: Vec<QueueDef>,
    pub bindings: Vec<BindingDef>,
    /// Older data dirs have none.
    #[serde(default)]
    pub policies: Vec<PolicyDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator_policies: Vec<PolicyDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDef {
    pub name: String,
    pub pattern: String,
    #[serde(rename = "apply-to")]
    pub apply_to: String,
    pub priority: i64,
    pub definition: FieldTable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDef {
    pub name: String,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    /// A cluster's queue: which declare made it (`queue::Placement`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub incarnation: u64,
    /// A cluster's quorum queue: the nodes of its group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingDef {
    pub source: String,
    pub destination: String,
    /// "queue" or "exchange", as in RabbitMQ's definitions.json.
    pub destination_type: String,
    pub routing_key: String,
    pub arguments: FieldTable,
}

/// One durable change, as a line of the change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    PutExchange(ExchangeDef),
    DeleteExchange { name: String },
    PutQueue(QueueDef),
    DeleteQueue { name: String },
    Bind(BindingDef),
    Unbind(BindingDef),
    PutPolicy(PolicyDef),
    DeletePolicy { name: String },
    PutOperatorPolicy(PolicyDef),
    DeleteOperatorPolicy { name: String },
}

impl Definitions {
    /// Apply a change (replaying the log). Every change is idempotent.
    pub fn apply(&mut self, c: Change) {
        match c {
            Change::PutExchange(x) => put(&mut self.exchanges, x, |x| &x.name),
            Change::DeleteExchange { name } => self.exchanges.retain(|x| x.name != name),
            Change::PutQueue(q) => put(&mut self.queues, q, |q| &q.name),
            Change::DeleteQueue { name } => self.queues.retain(|q| q.name != name),
            Change::Bind(b) => {
                if !self.bindings.contains(&b) {
                    self.bindings.push(b)
                }
            }
            Change::Unbind(b) => self.bindings.retain(|x| *x != b),
            Change::PutPolicy(p) => put(&mut self.policies, p, |p| &p.name),
            Change::DeletePolicy { name } => self.policies.retain(|p| p.name != name),
            Change::PutOperatorPolicy(p) => put(&mut self.operator_policies, p, |p| &p.name),
            Change::DeleteOperatorPolicy { name } => {
                self.operator_policies.retain(|p| p.name != name)
            }
        }
    }

    /// The changes that turn `self` into `to`: removals first (bindings
    /// before what they bind), then additions (what is bound before its
    /// bindings).
    pub fn diff(&self, to: &Definitions) -> Vec<Change> {
        let mut out = Vec::new();
        // Arguments hold floats, so bindings are told apart by their JSON.
        let key = |b: &BindingDef| serde_json::to_string(b).unwrap_or_default();
        let bindings_to: HashSet<String> = to.bindings.iter().map(key).collect();
        let bindings_from: HashSet<String> = self.bindings.iter().map(key).collect();
        for b in &self.bindings {
            if !bindings_to.contains(&key(b)) {
                out.push(Change::Unbind(b.clone()));
            }
        }
        removed(
            &self.queues,
            &to.queues,
            |q| &q.name,
            &mut out,
            |name| Change::DeleteQueue { name },
        );
        removed(
            &self.exchanges,
            &to.exchanges,
            |x| &x.name,
            &mut out,
            |name| Change::DeleteExchange { name },
        );
        removed(
            &self.policies,
            &to.policies,
            |p| &p.name,
            &mut out,
            |name| Change::DeletePolicy { name },
        );
        removed(
            &self.operator_policies,
            &to.operator_policies,
            |p| &p.name,
            &mut out,
            |name| Change::DeleteOperatorPolicy { name },
        );
        changed(
            &self.exchanges,
            &to.exchanges,
            |x| &x.name,
            &mut out,
            Change::PutExchange,
        );
        changed(
            &self.queues,
            &to.queues,
            |q| &q.name,
            &mut out,
            Change::PutQueue,
        );
        changed(
            &self.policies,
            &to.policies,
            |p| &p.name,
            &mut out,
            Change::PutPolicy,
        );
        changed(
            &self.operator_policies,
            &to.operator_policies,
            |p| &p.name,
            &mut out,
            Change::PutOperatorPolicy,
        );
        for b in &to.bindings {
            if !bindings_from.contains(&key(b)) {
                out.push(Change::Bind(b.clone()));
            }
        }
        out
    }

    /// How many things it defines (to decide when a log is long).
    pub fn len(&self) -> usize {
        self.exchanges.len()
            + self.queues.len()
            + self.bindings.len()
            + self.policies.len()
            + self.operator_policies.len()
    }

    pub fn load(path: &Path) -> io::Result<Definitions> {
        match std::fs::read(path) {
            Ok(data) => serde_json::from_slice(&data).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Definitions::default()),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let data = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        super::write_atomic(path, &data)
    }
}

fn put<T>(list: &mut Vec<T>, item: T, name: impl Fn(&T) -> &String) {
    match list.iter_mut().find(|x| name(x) == name(&item)) {
        Some(slot) => *slot = item,
        None => list.push(item),
    }
}

fn removed<T>(
    from: &[T],
    to: &[T],
    name: impl Fn(&T) -> &String,
    out: &mut Vec<Change>,
    change: impl Fn(String) -> Change,
) {
    let kept: HashSet<&String> = to.iter().map(&name).collect();
    for x in from {
        if !kept.contains(name(x)) {
            out.push(change(name(x).clone()));
        }
    }
}

fn changed<T: Clone + PartialEq>(
    from: &[T],
    to: &[T],
    name: impl Fn(&T) -> &String,
    out: &mut Vec<Change>,
    change: impl Fn(T) -> Change,
) {
    let before: HashMap<&String, &T> = from.iter().map(|x| (name(x), x)).collect();
    for x in to {
        if before.get(name(x)).is_none_or(|b| *b != x) {
            out.push(change(x.clone()));
        }
    }
}
