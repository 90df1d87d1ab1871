//! Durable definitions of one vhost as JSON: exchanges, queues (with their
//! arguments), bindings between durable entities, and policies. Written whole and
//! atomically before the -Ok of the change is sent.

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Definitions {
    pub exchanges: Vec<ExchangeDef>,
    pub queues: Vec<QueueDef>,
    pub bindings: Vec<BindingDef>,
    /// Older data dirs have none.
    #[serde(default)]
    pub policies: Vec<PolicyDef>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PolicyDef {
    pub name: String,
    pub pattern: String,
    #[serde(rename = "apply-to")]
    pub apply_to: String,
    pub priority: i64,
    pub definition: FieldTable,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExchangeDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct QueueDef {
    pub name: String,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BindingDef {
    pub source: String,
    pub destination: String,
    /// "queue" or "exchange", as in RabbitMQ's definitions.json.
    pub destination_type: String,
    pub routing_key: String,
    pub arguments: FieldTable,
}

impl Definitions {
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
