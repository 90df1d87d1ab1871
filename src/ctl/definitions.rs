//! Exporting and importing definitions, and the node's status.

use super::Command;
use super::commands::{Api, Done, EX_DATAERR, EX_SOFTWARE, fail};
use super::output::Style;
use serde_json::Value;

pub(super) async fn run(api: &Api<'_>, out: &Style, cmd: Command) -> Done {
    match cmd {
        Command::ExportDefinitions { path } => {
            out.info(&format!(
                "Exporting definitions in JSON to a file at \"{path}\" ..."
            ));
            let defs = api.get("/api/definitions", None).await?;
            let text = serde_json::to_string_pretty(&defs).unwrap_or_default();
            if path == "-" {
                println!("{text}");
            } else {
                std::fs::write(&path, text)
                    .map_err(|e| fail(format!("{path}: {e}"), EX_SOFTWARE))?;
            }
        }
        Command::ImportDefinitions { path } => {
            out.info(&format!(
                "Importing definitions in JSON from a file at \"{path}\" ..."
            ));
            let text = if path == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| fail(format!("stdin: {e}"), EX_DATAERR))?
            } else {
                std::fs::read_to_string(&path)
                    .map_err(|e| fail(format!("{path}: {e}"), EX_DATAERR))?
            };
            let doc: Value = serde_json::from_str(&text)
                .map_err(|e| fail(format!("{path}: not JSON: {e}"), EX_DATAERR))?;
            let r = api.call("POST", "/api/definitions", Some(doc)).await?;
            if !r.ok() {
                return Err(fail(r.reason(), EX_DATAERR));
            }
            out.info("Successfully started definition import. This process is asynchronous and can take some time.");
        }
        Command::Status => status(api, out).await?,
        other => super::cluster::run(api, out, other).await?,
    }
    Ok(())
}

async fn status(api: &Api<'_>, out: &Style) -> Done {
    let o = api.get("/api/overview", None).await?;
    if out.formatter == super::output::Formatter::Json {
        println!("{o}");
        return Ok(());
    }
    let node = o["node"].as_str().unwrap_or("");
    out.info(&format!("Status of node {node} ..."));
    println!("Runtime\n");
    println!(
        "Product: {} {}",
        o["product_name"].as_str().unwrap_or(""),
        o["product_version"].as_str().unwrap_or("")
    );
    println!(
        "Uptime (seconds): {}",
        o["uptime"].as_u64().unwrap_or(0) / 1000
    );
    println!("\nTotals\n");
    let t = &o["object_totals"];
    for k in [
        "connections",
        "channels",
        "queues",
        "exchanges",
        "consumers",
    ] {
        println!("Total {k}: {}", t[k]);
    }
    println!(
        "Messages: {} ({} ready, {} unacknowledged)",
        o["queue_totals"]["messages"],
        o["queue_totals"]["messages_ready"],
        o["queue_totals"]["messages_unacknowledged"]
    );
    println!("\nMemory\n");
    let m = &o["memory"];
    println!("Resident memory (bytes): {}", m["rss"]);
    println!(
        "Message bytes in memory: {} (limit {})",
        m["message_bytes"], m["limit"]
    );
    println!("\nListeners\n");
    for l in o["listeners"].as_array().into_iter().flatten() {
        println!(
            "Interface: {}, port: {}, protocol: {}",
            l["ip_address"].as_str().unwrap_or(""),
            l["port"],
            l["protocol"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
