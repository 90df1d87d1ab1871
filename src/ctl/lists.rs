//! The list_* commands: a table (or JSON) of what the node has, with
//! rabbitmqctl's default columns and names.

use super::Command;
use super::client::seg;
use super::commands::{Api, Failure, columns, no_user, no_vhost, renamed, rows};
use super::output::Style;
use serde_json::{Value, json};

/// Print the listing `cmd` asks for; any other command is given back.
pub(super) async fn run(
    api: &Api<'_>,
    out: &Style,
    vhost: &str,
    cmd: Command,
) -> Result<Option<Command>, Failure> {
    let v = seg(vhost);
    match cmd {
        Command::ListVhosts { columns: c } => {
            out.info("Listing vhosts ...");
            out.table(
                &columns(c, &["name"]),
                &rows(api.get("/api/vhosts", None).await?),
            );
        }
        Command::ListUsers => {
            out.info("Listing users ...");
            let users = renamed(
                rows(api.get("/api/users", None).await?),
                &[("user", &["name"])],
            );
            out.table(&columns(vec![], &["user", "tags"]), &users);
        }
        Command::ListPermissions => {
            out.info(&format!("Listing permissions for vhost \"{vhost}\" ..."));
            let list = rows(
                api.get(&format!("/api/vhosts/{v}/permissions"), no_vhost(vhost))
                    .await?,
            );
            out.table(
                &columns(vec![], &["user", "configure", "write", "read"]),
                &list,
            );
        }
        Command::ListUserPermissions { user } => {
            out.info(&format!("Listing permissions for user \"{user}\" ..."));
            let list = rows(
                api.get(
                    &format!("/api/users/{}/permissions", seg(&user)),
                    no_user(&user),
                )
                .await?,
            );
            out.table(
                &columns(vec![], &["vhost", "configure", "write", "read"]),
                &list,
            );
        }
        Command::ListTopicPermissions => {
            out.info(&format!(
                "Listing topic permissions for vhost \"{vhost}\" ..."
            ));
            let list = rows(
                api.get(
                    &format!("/api/vhosts/{v}/topic-permissions"),
                    no_vhost(vhost),
                )
                .await?,
            );
            out.table(
                &columns(vec![], &["user", "exchange", "write", "read"]),
                &list,
            );
        }
        Command::ListVhostLimits => {
            out.info(&format!("Listing limits for vhost \"{vhost}\" ..."));
            let list = rows(
                api.get(&format!("/api/vhost-limits/{v}"), no_vhost(vhost))
                    .await?,
            );
            println!("{}", list.first().map_or(json!({}), |l| l["value"].clone()));
        }
        Command::ListUserLimits { user } => {
            let path = match &user {
                Some(u) => {
                    out.info(&format!("Listing limits for user \"{u}\" ..."));
                    format!("/api/user-limits/{}", seg(u))
                }
                None => {
                    out.info("Listing limits for all users ...");
                    "/api/user-limits".to_string()
                }
            };
            let list = rows(api.get(&path, user.as_deref().and_then(no_user)).await?);
            if user.is_some() {
                println!("{}", list.first().map_or(json!({}), |l| l["value"].clone()));
            } else {
                println!("{}", Value::Array(list));
            }
        }
        Command::ListQueues { columns: c } => {
            out.info(&format!("Listing queues for vhost {vhost} ..."));
            let list = rows(
                api.get(&format!("/api/queues/{v}"), no_vhost(vhost))
                    .await?,
            );
            out.table(&columns(c, &["name", "messages"]), &list);
        }
        Command::ListExchanges { columns: c } => {
            out.info(&format!("Listing exchanges for vhost {vhost} ..."));
            let list = rows(
                api.get(&format!("/api/exchanges/{v}"), no_vhost(vhost))
                    .await?,
            );
            out.table(&columns(c, &["name", "type"]), &list);
        }
        Command::ListBindings { columns: c } => {
            out.info(&format!("Listing bindings for vhost {vhost}..."));
            let mut list = rows(
                api.get(&format!("/api/bindings/{v}"), no_vhost(vhost))
                    .await?,
            );
            for b in &mut list {
                b["source_kind"] = json!("exchange");
            }
            let list = renamed(
                list,
                &[
                    ("source_name", &["source"]),
                    ("destination_name", &["destination"]),
                    ("destination_kind", &["destination_type"]),
                ],
            );
            let default = [
                "source_name",
                "source_kind",
                "destination_name",
                "destination_kind",
                "routing_key",
                "arguments",
            ];
            out.table(&columns(c, &default), &list);
        }
        Command::ListConnections { columns: c } => {
            out.info("Listing connections ...");
            let list = rows(api.get("/api/connections", None).await?);
            out.table(
                &columns(c, &["user", "peer_host", "peer_port", "state"]),
                &list,
            );
        }
        Command::ListChannels { columns: c } => {
            out.info("Listing channels ...");
            let list = renamed(
                rows(api.get("/api/channels", None).await?),
                &[("pid", &["name"])],
            );
            out.table(
                &columns(
                    c,
                    &["pid", "user", "consumer_count", "messages_unacknowledged"],
                ),
                &list,
            );
        }
        Command::ListConsumers { columns: c } => {
            out.info(&format!("Listing consumers in vhost {vhost} ..."));
            let list = rows(
                api.get(&format!("/api/consumers/{v}"), no_vhost(vhost))
                    .await?,
            );
            let list = renamed(
                list,
                &[
                    ("queue_name", &["queue", "name"]),
                    ("channel_pid", &["channel_details", "name"]),
                ],
            );
            let default = [
                "queue_name",
                "channel_pid",
                "consumer_tag",
                "ack_required",
                "prefetch_count",
                "active",
                "arguments",
            ];
            out.table(&columns(c, &default), &list);
        }
        Command::ListPolicies => {
            out.info(&format!("Listing policies for vhost \"{vhost}\" ..."));
            let list = rows(
                api.get(&format!("/api/policies/{v}"), no_vhost(vhost))
                    .await?,
            );
            out.table(
                &columns(
                    vec![],
                    &[
                        "vhost",
                        "name",
                        "pattern",
                        "apply-to",
                        "definition",
                        "priority",
                    ],
                ),
                &list,
            );
        }
        other => return Ok(Some(other)),
    }
    Ok(None)
}
