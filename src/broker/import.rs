//! Importing a RabbitMQ `definitions.json` (at boot, or at runtime through
//! the management API): users, vhosts, permissions, topic permissions,
//! limits, policies, exchanges, queues and bindings. The whole file is
//! checked first — JSON, hashing algorithms, regexps, policy definitions,
//! exchange types, queue arguments, and that every entry's vhost and every
//! binding's ends exist, and in an existing vhost whatever declaring each
//! exchange and queue would refuse, equivalence with what is there
//! included — and refused as a whole, naming the first bad entry, before
//! anything changes.

use super::Broker;
use super::policy::{Policy, json_table};
use super::vhost::{ExchangeSpec, QueueSpec};
use crate::access::{Refusal, definitions::parse_access};
use crate::exchange::ExchangeKind;
use serde_json::Value;
use std::collections::HashSet;
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

fn exchange_spec<'a>(x: &'a Value, args: &'a amq_protocol::types::FieldTable) -> ExchangeSpec<'a> {
    ExchangeSpec {
        name: s(x, "name"),
        kind: s(x, "type"),
        passive: false,
        durable: b(x, "durable"),
        auto_delete: b(x, "auto_delete"),
        internal: b(x, "internal"),
        arguments: args,
    }
}

fn queue_spec<'a>(q: &'a Value, args: &'a amq_protocol::types::FieldTable) -> QueueSpec<'a> {
    QueueSpec {
        name: s(q, "name"),
        server_named: false,
        passive: false,
        durable: b(q, "durable"),
        exclusive: false,
        auto_delete: b(q, "auto_delete"),
        arguments: args,
        conn_id: 0,
    }
}

fn policy_of(p: &Value) -> Result<Policy, String> {
    let priority = p.get("priority").and_then(Value::as_i64).unwrap_or(0);
    let definition = json_table(p.get("definition").unwrap_or(&Value::Null));
    Policy::new(
        s(p, "name"),
        s(p, "pattern"),
        s(p, "apply-to"),
        priority,
        definition,
    )
    .map_err(|e| format!("policy '{}' in vhost '{}': {e}", s(p, "name"), vhost_of(p)))
}

impl Broker {
    /// Import a definitions file (see the module's documentation).
    pub fn import_definitions(&self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("bad definitions {}: {e}", path.display()))?;
        self.import_document(&doc)
            .map_err(|e| format!("definitions {} refused: {e}", path.display()))?;
        tracing::info!("imported definitions from {}", path.display());
        Ok(())
    }

    /// Check a parsed definitions document whole, then apply it.
    pub(crate) fn import_document(&self, doc: &Value) -> Result<(), String> {
        self.import_document_at(doc, None)
    }

    /// Import, a cluster's queues homed on `home` (node, nonce).
    pub(crate) fn import_document_at(
        &self,
        doc: &Value,
        home: Option<(&str, u64)>,
    ) -> Result<(), String> {
        let access = parse_access(doc)?;
        self.check_document(doc)?;
        let new_vhosts: Vec<String> = access.vhosts.iter().map(|v| v.name.clone()).collect();
        self.access
            .change(|s| access.apply(s).map_err(Refusal::Invalid))
            .map_err(|e| e.to_string())?;
        for v in &new_vhosts {
            self.ensure_vhost(v).map_err(|e| e.to_string())?;
        }
        // One append to each vhost's change log for the whole file, not one
        // per entity (each of which would diff everything defined so far).
        let vhosts = self.vhosts();
        for v in &vhosts {
            v.defer_persistence(true);
        }
        let r = self.import_entities(doc, home);
        for v in &vhosts {
            v.defer_persistence(false);
            if let Err(e) = v.persist_now() {
                return Err(format!("cannot save imported definitions: {e}"));
            }
        }
        r
    }

    /// Everything the document names must make sense before any of it is
    /// applied.
    fn check_document(&self, doc: &Value) -> Result<(), String> {
        let mut vhosts: HashSet<String> = self.vhosts().iter().map(|v| v.name.clone()).collect();
        vhosts.extend(list(doc, "vhosts").map(|v| s(v, "name").to_string()));
        let in_vhost = |what: String, v: &Value| {
            if vhosts.contains(vhost_of(v)) {
                Ok(())
            } else {
                Err(format!("{what}: no such vhost '{}'", vhost_of(v)))
            }
        };
        for p in list(doc, "policies") {
            in_vhost(format!("policy '{}'", s(p, "name")), p)?;
            policy_of(p)?;
        }
        let mut exchanges: HashSet<(String, String)> = HashSet::new();
        for x in list(doc, "exchanges") {
            let what = format!("exchange '{}' in vhost '{}'", s(x, "name"), vhost_of(x));
            in_vhost(what.clone(), x)?;
            if ExchangeKind::parse(s(x, "type")).is_none()
                && s(x, "type") != crate::exchange::DELAYED_TYPE
            {
                return Err(format!("{what}: unknown exchange type '{}'", s(x, "type")));
            }
            // In a vhost that exists, everything the declare would refuse
            // (an existing exchange's equivalence too).
            if let Some(vh) = self.vhost(vhost_of(x)) {
                let args = json_table(x.get("arguments").unwrap_or(&Value::Null));
                vh.check_exchange_declare(&exchange_spec(x, &args))
                    .map_err(|e| format!("{what}: {}", e.reply_text()))?;
            }
            exchanges.insert((vhost_of(x).to_string(), s(x, "name").to_string()));
        }
        let mut queues: HashSet<(String, String)> = HashSet::new();
        for q in list(doc, "queues") {
            let what = format!("queue '{}' in vhost '{}'", s(q, "name"), vhost_of(q));
            in_vhost(what.clone(), q)?;
            let args = json_table(q.get("arguments").unwrap_or(&Value::Null));
            crate::queue::args::QueueArgs::parse(&args, s(q, "name"), vhost_of(q))
                .map_err(|e| format!("{what}: {}", e.reply_text()))?;
            if let Some(vh) = self.vhost(vhost_of(q)) {
                vh.check_queue_declare(&queue_spec(q, &args))
                    .map_err(|e| format!("{what}: {}", e.reply_text()))?;
            }
            queues.insert((vhost_of(q).to_string(), s(q, "name").to_string()));
        }
        let exchange_exists = |vh: &str, name: &str| {
            exchanges.contains(&(vh.to_string(), name.to_string()))
                || self.vhost(vh).is_some_and(|v| v.exchange(name).is_ok())
        };
        for bd in list(doc, "bindings") {
            let (vh, src, dst) = (vhost_of(bd), s(bd, "source"), s(bd, "destination"));
            let what = format!("binding from '{src}' to '{dst}' in vhost '{vh}'");
            in_vhost(what.clone(), bd)?;
            if !exchange_exists(vh, src) {
                return Err(format!("{what}: no such exchange '{src}'"));
            }
            let ok = if s(bd, "destination_type") == "exchange" {
                exchange_exists(vh, dst)
            } else {
                queues.contains(&(vh.to_string(), dst.to_string()))
                    || self.vhost(vh).is_some_and(|v| v.queue(dst).is_ok())
            };
            if !ok {
                return Err(format!(
                    "{what}: no such {} '{dst}'",
                    s(bd, "destination_type")
                ));
            }
        }
        Ok(())
    }

    fn import_entities(&self, doc: &Value, home: Option<(&str, u64)>) -> Result<(), String> {
        let get = |v: &Value| {
            self.vhost(vhost_of(v))
                .ok_or_else(|| format!("no such vhost '{}'", vhost_of(v)))
        };
        for p in list(doc, "policies") {
            get(p)?
                .set_policy(policy_of(p)?)
                .map_err(|e| format!("policy '{}': {e}", s(p, "name")))?;
        }
        for x in list(doc, "exchanges") {
            let args = json_table(x.get("arguments").unwrap_or(&Value::Null));
            let spec = exchange_spec(x, &args);
            get(x)?
                .declare_exchange(&spec)
                .map_err(|e| format!("exchange '{}': {}", spec.name, e.reply_text()))?;
        }
        for q in list(doc, "queues") {
            let args = json_table(q.get("arguments").unwrap_or(&Value::Null));
            let spec = queue_spec(q, &args);
            let vh = get(q)?;
            let r = match home {
                Some((home, nonce)) if vh.exchanges_shared() => {
                    // The same incarnation on every node applying it.
                    let mut h = std::hash::DefaultHasher::new();
                    std::hash::Hash::hash(&(nonce, vhost_of(q), spec.name), &mut h);
                    let queue = crate::broker::vhost::QueueDecl {
                        name: spec.name.to_string(),
                        durable: spec.durable,
                        exclusive: false,
                        auto_delete: spec.auto_delete,
                        arguments: args.clone(),
                        home: home.to_string(),
                        incarnation: std::hash::Hasher::finish(&h),
                        conn: None,
                        replaces: None,
                        // Imported quorum queues are single-node for now.
                        replicas: Vec::new(),
                    };
                    vh.declare_shared_queue(&queue).map(|_| ())
                }
                _ => vh.declare_queue(&spec).map(|_| ()),
            };
            r.map_err(|e| format!("queue '{}': {}", spec.name, e.reply_text()))?;
        }
        for bd in list(doc, "bindings") {
            let vh = get(bd)?;
            let args = json_table(bd.get("arguments").unwrap_or(&Value::Null));
            let (src, dst, key) = (s(bd, "source"), s(bd, "destination"), s(bd, "routing_key"));
            let r = if s(bd, "destination_type") == "exchange" {
                vh.bind_exchange(dst, src, key, &args)
            } else {
                vh.bind(dst, src, key, &args, 0)
            };
            r.map_err(|e| format!("binding from '{src}' to '{dst}': {}", e.reply_text()))?;
        }
        Ok(())
    }
}
