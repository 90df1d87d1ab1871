//! Each command: rabbitmqctl's informational line, the management API calls
//! that carry it out, and its output.

use super::Command;
use super::client::{Client, Reply, seg};
use super::output::Style;
use serde_json::{Value, json};

/// A failed command: the message and the exit code (sysexits, as rabbitmqctl).
pub(crate) struct Failure {
    pub text: String,
    pub code: u8,
}

pub(super) const EX_DATAERR: u8 = 65;
pub(super) const EX_NOUSER: u8 = 67;
pub(super) const EX_UNAVAILABLE: u8 = 69;
pub(super) const EX_SOFTWARE: u8 = 70;
pub(super) const EX_TEMPFAIL: u8 = 75;

pub(super) fn fail(text: impl Into<String>, code: u8) -> Failure {
    Failure {
        text: text.into(),
        code,
    }
}

pub(super) type Done = Result<(), Failure>;

pub(super) struct Api<'a> {
    client: &'a Client,
}

impl Api<'_> {
    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, Failure> {
        self.call_with(method, path, body, &[]).await
    }

    pub(super) async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, Failure> {
        self.client
            .call(method, path, body.as_ref(), headers)
            .await
            .map_err(|e| fail(e, EX_UNAVAILABLE))
    }

    /// A call that must succeed; `missing` is the error for a 404.
    pub(super) async fn must(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        missing: Option<Failure>,
    ) -> Result<Value, Failure> {
        let r = self.call(method, path, body).await?;
        match (r.status, missing) {
            (s, _) if (200..300).contains(&s) => Ok(r.body),
            (404, Some(m)) => Err(m),
            _ => Err(fail(r.reason(), EX_SOFTWARE)),
        }
    }

    pub(super) async fn get(&self, path: &str, missing: Option<Failure>) -> Result<Value, Failure> {
        self.must("GET", path, None, missing).await
    }
}

pub(super) fn no_user(name: &str) -> Option<Failure> {
    Some(fail(format!("User \"{name}\" does not exist"), EX_NOUSER))
}

pub(super) fn no_vhost(name: &str) -> Option<Failure> {
    Some(fail(
        format!("Virtual host '{name}' does not exist"),
        EX_DATAERR,
    ))
}

pub(super) fn rows(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

/// The columns asked for, or the command's defaults.
pub(super) fn columns(asked: Vec<String>, default: &[&str]) -> Vec<String> {
    if asked.is_empty() {
        default.iter().map(|c| c.to_string()).collect()
    } else {
        asked
    }
}

/// Rows with fields renamed from the API's names to rabbitmqctl's.
pub(super) fn renamed(rows: Vec<Value>, renames: &[(&str, &[&str])]) -> Vec<Value> {
    rows.into_iter()
        .map(|mut r| {
            for (to, path) in renames {
                let mut v = &r;
                for k in *path {
                    v = v.get(*k).unwrap_or(&Value::Null);
                }
                let v = v.clone();
                r[*to] = v;
            }
            r
        })
        .collect()
}

fn limits_json(definition: &str) -> Result<serde_json::Map<String, Value>, Failure> {
    match serde_json::from_str::<Value>(definition) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(fail(
            format!("'{definition}' is not a JSON object of limits"),
            EX_DATAERR,
        )),
    }
}

pub(crate) async fn run(client: &Client, out: &Style, vhost: &str, cmd: Command) -> Done {
    let api = Api { client };
    let v = seg(vhost);
    match cmd {
        Command::AddVhost {
            name,
            description,
            tags,
            default_queue_type,
        } => {
            out.info(&format!("Adding vhost \"{name}\" ..."));
            let mut body = json!({ "description": description.unwrap_or_default(), "tags": tags.unwrap_or_default() });
            if let Some(t) = default_queue_type {
                body["default_queue_type"] = json!(t);
            }
            api.must(
                "PUT",
                &format!("/api/vhosts/{}", seg(&name)),
                Some(body),
                None,
            )
            .await?;
        }
        Command::DeleteVhost { name } => {
            out.info(&format!("Deleting vhost \"{name}\" ..."));
            api.must(
                "DELETE",
                &format!("/api/vhosts/{}", seg(&name)),
                None,
                no_vhost(&name),
            )
            .await?;
        }
        Command::AddUser { name, password } => {
            out.info(&format!("Adding user \"{name}\" ..."));
            let path = format!("/api/users/{}", seg(&name));
            if api.call("GET", &path, None).await?.ok() {
                return Err(fail(format!("User \"{name}\" already exists"), EX_SOFTWARE));
            }
            api.must(
                "PUT",
                &path,
                Some(json!({ "password": password, "tags": "" })),
                None,
            )
            .await?;
        }
        Command::DeleteUser { name } => {
            out.info(&format!("Deleting user \"{name}\" ..."));
            api.must(
                "DELETE",
                &format!("/api/users/{}", seg(&name)),
                None,
                no_user(&name),
            )
            .await?;
        }
        Command::ChangePassword { name, password } => {
            out.info(&format!("Changing password for user \"{name}\" ..."));
            let path = format!("/api/users/{}", seg(&name));
            let u = api.get(&path, no_user(&name)).await?;
            api.must(
                "PUT",
                &path,
                Some(json!({ "password": password, "tags": u["tags"] })),
                None,
            )
            .await?;
        }
        Command::ClearPassword { name } => {
            out.info(&format!("Clearing password for user \"{name}\" ..."));
            let path = format!("/api/users/{}", seg(&name));
            let u = api.get(&path, no_user(&name)).await?;
            api.must(
                "PUT",
                &path,
                Some(json!({ "password_hash": "", "tags": u["tags"] })),
                None,
            )
            .await?;
        }
        Command::SetUserTags { name, tags } => {
            out.info(&format!(
                "Setting tags for user \"{name}\" to [{}] ...",
                tags.join(", ")
            ));
            let path = format!("/api/users/{}", seg(&name));
            let u = api.get(&path, no_user(&name)).await?;
            let body = json!({ "password_hash": u["password_hash"], "hashing_algorithm": u["hashing_algorithm"], "tags": tags });
            api.must("PUT", &path, Some(body), None).await?;
        }
        Command::SetPermissions {
            user,
            configure,
            write,
            read,
        } => {
            out.info(&format!(
                "Setting permissions for user \"{user}\" in vhost \"{vhost}\" ..."
            ));
            let body = json!({ "configure": configure, "write": write, "read": read });
            put_for_user(
                &api,
                &format!("/api/permissions/{v}/{}", seg(&user)),
                body,
                &user,
                vhost,
            )
            .await?;
        }
        Command::ClearPermissions { user } => {
            out.info(&format!(
                "Clearing permissions for user \"{user}\" in vhost \"{vhost}\" ..."
            ));
            let r = api
                .call(
                    "DELETE",
                    &format!("/api/permissions/{v}/{}", seg(&user)),
                    None,
                )
                .await?;
            // Clearing what is not there is not an error for rabbitmqctl.
            if !r.ok() && r.status != 404 {
                return Err(fail(r.reason(), EX_SOFTWARE));
            }
        }
        Command::SetTopicPermissions {
            user,
            exchange,
            write,
            read,
        } => {
            out.info(&format!("Setting topic permissions on \"{exchange}\" for user \"{user}\" in vhost \"{vhost}\" ..."));
            let body = json!({ "exchange": exchange, "write": write, "read": read });
            put_for_user(
                &api,
                &format!("/api/topic-permissions/{v}/{}", seg(&user)),
                body,
                &user,
                vhost,
            )
            .await?;
        }
        Command::ClearTopicPermissions { user, exchange } => {
            out.info(&format!(
                "Clearing topic permissions for user \"{user}\" in vhost \"{vhost}\" ..."
            ));
            let path = format!("/api/topic-permissions/{v}/{}", seg(&user));
            match exchange {
                None => {
                    let r = api.call("DELETE", &path, None).await?;
                    if !r.ok() && r.status != 404 {
                        return Err(fail(r.reason(), EX_SOFTWARE));
                    }
                }
                // Keep the other exchanges' permissions: clear all, put back the rest.
                Some(x) => {
                    let r = api.call("GET", &path, None).await?;
                    let keep: Vec<Value> = rows(r.body)
                        .into_iter()
                        .filter(|t| t["exchange"] != x.as_str())
                        .collect();
                    api.call("DELETE", &path, None).await?;
                    for t in keep {
                        api.must("PUT", &path, Some(t), None).await?;
                    }
                }
            }
        }
        Command::SetVhostLimits { definition } => {
            out.info(&format!(
                "Setting vhost limits to \"{definition}\" for vhost \"{vhost}\" ..."
            ));
            for (k, n) in limits_json(&definition)? {
                api.must(
                    "PUT",
                    &format!("/api/vhost-limits/{v}/{}", seg(&k)),
                    Some(json!({ "value": n })),
                    no_vhost(vhost),
                )
                .await?;
            }
        }
        Command::ClearVhostLimits => {
            out.info(&format!("Clearing vhost \"{vhost}\" limits ..."));
            for k in ["max-connections", "max-queues"] {
                api.must(
                    "DELETE",
                    &format!("/api/vhost-limits/{v}/{k}"),
                    None,
                    no_vhost(vhost),
                )
                .await?;
            }
        }
        Command::SetUserLimits { user, definition } => {
            out.info(&format!(
                "Setting user limits to \"{definition}\" for user \"{user}\" ..."
            ));
            for (k, n) in limits_json(&definition)? {
                api.must(
                    "PUT",
                    &format!("/api/user-limits/{}/{}", seg(&user), seg(&k)),
                    Some(json!({ "value": n })),
                    no_user(&user),
                )
                .await?;
            }
        }
        Command::ClearUserLimits { user, limit } => {
            out.info(&format!(
                "Clearing \"{limit}\" limit for user \"{user}\" ..."
            ));
            let names: Vec<&str> = if limit == "all" {
                vec!["max-connections", "max-channels"]
            } else {
                vec![limit.as_str()]
            };
            for k in names {
                api.must(
                    "DELETE",
                    &format!("/api/user-limits/{}/{}", seg(&user), seg(k)),
                    None,
                    no_user(&user),
                )
                .await?;
            }
        }
        Command::SetPolicy {
            name,
            pattern,
            definition,
            priority,
            apply_to,
        } => {
            let priority = priority.unwrap_or(0);
            out.info(&format!("Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{vhost}\" ..."));
            let definition: Value = serde_json::from_str(&definition)
                .map_err(|e| fail(format!("definition is not JSON: {e}"), EX_DATAERR))?;
            let body = json!({ "pattern": pattern, "definition": definition, "priority": priority, "apply-to": apply_to.unwrap_or_else(|| "all".into()) });
            api.must(
                "PUT",
                &format!("/api/policies/{v}/{}", seg(&name)),
                Some(body),
                no_vhost(vhost),
            )
            .await?;
        }
        Command::ClearPolicy { name } => {
            out.info(&format!(
                "Clearing policy \"{name}\" on vhost \"{vhost}\" ..."
            ));
            let missing = Some(fail("Parameter does not exist", EX_DATAERR));
            api.must(
                "DELETE",
                &format!("/api/policies/{v}/{}", seg(&name)),
                None,
                missing,
            )
            .await?;
        }
        Command::PurgeQueue { queue } => {
            out.info(&format!("Purging queue '{queue}' in vhost '{vhost}' ..."));
            let missing = Some(fail(
                format!("Queue '{queue}' in vhost '{vhost}' does not exist"),
                EX_DATAERR,
            ));
            api.must(
                "DELETE",
                &format!("/api/queues/{v}/{}/contents", seg(&queue)),
                None,
                missing,
            )
            .await?;
        }
        Command::DeleteQueue {
            queue,
            if_empty,
            if_unused,
        } => {
            out.info(&format!("Deleting queue '{queue}' on vhost '{vhost}' ..."));
            let path = format!("/api/queues/{v}/{}", seg(&queue));
            let missing = || {
                Some(fail(
                    format!("Queue '{queue}' in vhost '{vhost}' does not exist"),
                    EX_DATAERR,
                ))
            };
            let ready = api.get(&path, missing()).await?["messages_ready"]
                .as_u64()
                .unwrap_or(0);
            api.must(
                "DELETE",
                &format!("{path}?if-empty={if_empty}&if-unused={if_unused}"),
                None,
                missing(),
            )
            .await?;
            out.info(&format!(
                "Queue was successfully deleted with {ready} ready messages"
            ));
        }
        Command::CloseConnection { name, explanation } => {
            out.info(&format!(
                "Closing connection {name}, reason: {explanation}..."
            ));
            let r = api
                .call_with(
                    "DELETE",
                    &format!("/api/connections/{}", seg(&name)),
                    None,
                    &[("x-reason", &explanation)],
                )
                .await?;
            if !r.ok() {
                return Err(fail(
                    format!("connection '{name}': {}", r.reason()),
                    EX_DATAERR,
                ));
            }
        }
        other => return other_command(&api, out, vhost, other).await,
    }
    Ok(())
}

/// PUT to a user's permissions, with rabbitmqctl's errors for a missing
/// user or vhost.
async fn put_for_user(api: &Api<'_>, path: &str, body: Value, user: &str, vhost: &str) -> Done {
    let r = api.call("PUT", path, Some(body)).await?;
    if r.ok() {
        return Ok(());
    }
    if r.reason() == "vhost_or_user_not_found" {
        let users = api
            .call("GET", &format!("/api/users/{}", seg(user)), None)
            .await?;
        if !users.ok() {
            return Err(fail(format!("User \"{user}\" does not exist"), EX_NOUSER));
        }
        return Err(fail(
            format!("Virtual host '{vhost}' does not exist"),
            EX_DATAERR,
        ));
    }
    Err(fail(r.reason(), EX_SOFTWARE))
}

/// The listing and definitions commands, in their own files.
async fn other_command(api: &Api<'_>, out: &Style, vhost: &str, cmd: Command) -> Done {
    match super::lists::run(api, out, vhost, cmd).await? {
        None => Ok(()),
        Some(cmd) => super::definitions::run(api, out, cmd).await,
    }
}
