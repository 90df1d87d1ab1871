//! Loading a RabbitMQ `definitions.json` at boot: vhosts, exchanges, queues,
//! bindings and policies (users and permissions are not imported yet). Each
//! entity is declared as a client would declare it; a bad one is reported
//! and skipped, not fatal.

use super::Broker;
use super::policy::{Policy, json_table};
use super::vhost::{ExchangeSpec, QueueSpec};
use serde_json::Value;
use std::path::Path;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn b(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn vhost_of(v: &Value) -> &str {
    match s(v, "vhost") {
        "" => "/",
        other => other,
    }
}

fn list<'a>(doc: &'a Value, k: &str) -> impl Iterator<Item = &'a Value> {
    doc.get(k).and_then(Value::as_array).into_iter().flatten()
}

impl Broker {
    pub fn import_definitions(&self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("bad definitions {}: {e}", path.display()))?;
        for v in list(&doc, "vhosts") {
            self.ensure_vhost(s(v, "name")).map_err(|e| e.to_string())?;
        }
        // One append to each vhost's change log for the whole file, not one
        // per entity (each of which would diff everything defined so far).
        let vhosts = self.vhosts();
        for v in &vhosts {
            v.defer_persistence(true);
        }
        let r = self.import_document(&doc);
        for v in &vhosts {
            v.defer_persistence(false);
            if let Err(e) = v.persist_now() {
                return Err(format!("cannot save imported definitions: {e}"));
            }
        }
        r?;
        tracing::info!("imported definitions from {}", path.display());
        Ok(())
    }

    fn import_document(&self, doc: &Value) -> Result<(), String> {
        let report = |what: &str, name: &str, e: &dyn std::fmt::Display| {
            tracing::error!("definitions: {what} '{name}' skipped: {e}");
        };
        for p in list(doc, "policies") {
            let name = s(p, "name");
            let Some(vh) = self.vhost(vhost_of(p)) else {
                continue;
            };
            let priority = p.get("priority").and_then(Value::as_i64).unwrap_or(0);
            let definition = json_table(p.get("definition").unwrap_or(&Value::Null));
            match Policy::new(
                name,
                s(p, "pattern"),
                s(p, "apply-to"),
                priority,
                definition,
            ) {
                Ok(policy) => {
                    if let Err(e) = vh.set_policy(policy) {
                        report("policy", name, &e);
                    }
                }
                Err(e) => report("policy", name, &e),
            }
        }
        for x in list(doc, "exchanges") {
            let Some(vh) = self.vhost(vhost_of(x)) else {
                continue;
            };
            let args = json_table(x.get("arguments").unwrap_or(&Value::Null));
            let spec = ExchangeSpec {
                name: s(x, "name"),
                kind: s(x, "type"),
                passive: false,
                durable: b(x, "durable"),
                auto_delete: b(x, "auto_delete"),
                internal: b(x, "internal"),
                arguments: &args,
            };
            if let Err(e) = vh.declare_exchange(&spec) {
                report("exchange", spec.name, &e);
            }
        }
        for q in list(doc, "queues") {
            let Some(vh) = self.vhost(vhost_of(q)) else {
                continue;
            };
            let args = json_table(q.get("arguments").unwrap_or(&Value::Null));
            let spec = QueueSpec {
                name: s(q, "name"),
                passive: false,
                durable: b(q, "durable"),
                exclusive: false,
                auto_delete: b(q, "auto_delete"),
                arguments: &args,
                conn_id: 0,
            };
            if let Err(e) = vh.declare_queue(&spec) {
                report("queue", spec.name, &e);
            }
        }
        for bd in list(doc, "bindings") {
            let Some(vh) = self.vhost(vhost_of(bd)) else {
                continue;
            };
            let args = json_table(bd.get("arguments").unwrap_or(&Value::Null));
            let (src, dst, key) = (s(bd, "source"), s(bd, "destination"), s(bd, "routing_key"));
            let r = if s(bd, "destination_type") == "exchange" {
                vh.bind_exchange(dst, src, key, &args)
            } else {
                vh.bind(dst, src, key, &args, 0)
            };
            if let Err(e) = r {
                report("binding to", dst, &e);
            }
        }
        Ok(())
    }
}
