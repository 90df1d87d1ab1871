//! `ferretmq ctl` (the real binary) against a broker on the same data dir:
//! rabbitmqctl's commands, output shapes (compared with rabbitmqctl 3.10.8's
//! for the same state) and exit codes.
mod common;
use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn ctl(b: &TestBroker, args: &[&str]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferretmq"));
    cmd.arg("ctl")
        .arg("--data-dir")
        .arg(b.data_dir())
        .args(args);
    let o = within(cmd.output()).await.expect("ctl runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

async fn ok(b: &TestBroker, args: &[&str]) -> String {
    let o = ctl(b, args).await;
    assert_eq!(o.code, 0, "ctl {args:?}: {}", o.stderr);
    o.stdout
}

#[tokio::test]
async fn users_vhosts_and_permissions_print_as_rabbitmqctl_prints_them() {
    let b = start().await;
    assert_eq!(
        ok(&b, &["add_vhost", "v1"]).await,
        "Adding vhost \"v1\" ...\n"
    );
    ok(&b, &["add_user", "alice", "secret"]).await;
    ok(&b, &["set_user_tags", "alice", "monitoring", "policymaker"]).await;
    ok(
        &b,
        &["set_permissions", "-p", "v1", "alice", "^a", "^b", ""],
    )
    .await;
    assert_eq!(
        ok(&b, &["list_vhosts"]).await,
        "Listing vhosts ...\nname\n/\nv1\n"
    );
    assert_eq!(ok(&b, &["-q", "list_vhosts"]).await, "name\n/\nv1\n");
    assert_eq!(
        ok(&b, &["--silent", "list_users"]).await,
        "alice\t[monitoring, policymaker]\nguest\t[administrator]\n"
    );
    assert_eq!(
        ok(&b, &["list_permissions", "-p", "v1"]).await,
        "Listing permissions for vhost \"v1\" ...\nuser\tconfigure\twrite\tread\nalice\t^a\t^b\t\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&b, &["list_users", "--formatter", "json"]).await).expect("json");
    assert_eq!(
        json[0],
        serde_json::json!({"user": "alice", "tags": ["monitoring", "policymaker"]})
    );

    // alice logs in over AMQP with what ctl set.
    let url = format!("amqp://alice:secret@{}/v1", b.addr);
    within(lapin::Connection::connect(
        &url,
        lapin::ConnectionProperties::default(),
    ))
    .await
    .expect("alice connects");

    let o = ctl(&b, &["add_user", "alice", "again"]).await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (70, "Error:\nUser \"alice\" already exists\n")
    );
    let o = ctl(&b, &["delete_user", "nosuch"]).await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (67, "Error:\nUser \"nosuch\" does not exist\n")
    );
    ok(&b, &["change_password", "alice", "s3cret"]).await;
    let old = within(lapin::Connection::connect(
        &url,
        lapin::ConnectionProperties::default(),
    ))
    .await;
    assert!(old.is_err(), "the old password is refused");
    ok(&b, &["delete_vhost", "v1"]).await;
    assert_eq!(ok(&b, &["-s", "list_vhosts"]).await, "/\n");
}

#[tokio::test]
async fn queues_exchanges_bindings_connections_channels_and_consumers_are_listed() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "orders").await;
    bind(&ch, "orders", "amq.fanout", "").await;
    publish(&ch, "", "orders", b"1").await;
    publish(&ch, "", "orders", b"2").await;
    within(async {
        while depth(&ch, "orders").await < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let (_c2, ch2) = b.channel().await;
    within(ch2.basic_qos(5, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = within(ch2.basic_consume(
        "orders".into(),
        "ctag-1".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("consume");
    for _ in 0..2 {
        within(consumer.next())
            .await
            .expect("a delivery")
            .expect("ok");
    }

    assert_eq!(
        ok(
            &b,
            &[
                "list_queues",
                "-q",
                "name",
                "messages",
                "consumers",
                "durable"
            ]
        )
        .await,
        "name\tmessages\tconsumers\tdurable\norders\t2\t1\tfalse\n"
    );
    let exchanges = ok(&b, &["-s", "list_exchanges"]).await;
    assert!(exchanges.contains("amq.fanout\tfanout\n"), "{exchanges}");
    assert_eq!(
        ok(&b, &["-s", "list_bindings"]).await,
        "\texchange\torders\tqueue\torders\t[]\namq.fanout\texchange\torders\tqueue\t\t[]\n"
    );
    let conns = ok(&b, &["-s", "list_connections"]).await;
    assert_eq!(conns.lines().count(), 2, "{conns}");
    assert!(
        conns
            .lines()
            .all(|l| l.starts_with("guest\t127.0.0.1\t") && l.ends_with("\trunning")),
        "{conns}"
    );
    let channels = ok(
        &b,
        &[
            "-s",
            "list_channels",
            "user",
            "consumer_count",
            "messages_unacknowledged",
            "prefetch_count",
        ],
    )
    .await;
    assert!(
        channels.lines().any(|l| l == "guest\t1\t2\t5"),
        "{channels}"
    );
    let consumers = ok(&b, &["-s", "list_consumers"]).await;
    let fields: Vec<&str> = consumers.trim_end().split('\t').collect();
    assert_eq!(
        (fields[0], fields[2], fields[3], fields[4], fields[5]),
        ("orders", "ctag-1", "true", "5", "true"),
        "{consumers}"
    );
}

#[tokio::test]
async fn queues_are_purged_and_deleted_and_connections_closed() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "work").await;
    publish(&ch, "", "work", b"x").await;
    within(async {
        while depth(&ch, "work").await < 1 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    ok(&b, &["purge_queue", "work"]).await;
    assert_eq!(depth(&ch, "work").await, 0);
    let out = ok(&b, &["delete_queue", "work"]).await;
    assert!(
        out.ends_with("Queue was successfully deleted with 0 ready messages\n"),
        "{out}"
    );
    let o = ctl(&b, &["delete_queue", "work"]).await;
    assert_eq!(o.code, 65, "{}", o.stderr);

    let mut events = c.events_listener();
    let name = b
        .running
        .as_ref()
        .expect("running")
        .broker
        .connections
        .list()[0]
        .name
        .clone();
    ok(&b, &["close_connection", &name, "go away"]).await;
    let closed = within(async {
        while let Some(ev) = events.next().await {
            if let lapin::Event::Error(e) = ev {
                return Some(e.to_string());
            }
        }
        None
    })
    .await
    .expect("closed");
    assert!(closed.contains("go away"), "{closed}");
}

#[tokio::test]
async fn definitions_export_and_import_and_policies_round_trip() {
    let b = start().await;
    ok(
        &b,
        &[
            "set_policy",
            "ttl",
            "^t",
            r#"{"message-ttl":1000}"#,
            "--apply-to",
            "queues",
        ],
    )
    .await;
    assert_eq!(
        ok(&b, &["-s", "list_policies"]).await,
        "/\tttl\t^t\tqueues\t{\"message-ttl\":1000}\t0\n"
    );
    ok(&b, &["add_vhost", "exported"]).await;
    ok(
        &b,
        &[
            "set_vhost_limits",
            "-p",
            "exported",
            r#"{"max-connections": 10}"#,
        ],
    )
    .await;
    let file = b.data_dir().join("export.json");
    ok(&b, &["export_definitions", file.to_str().expect("path")]).await;

    let other = start().await;
    ok(
        &other,
        &["import_definitions", file.to_str().expect("path")],
    )
    .await;
    assert_eq!(ok(&other, &["-s", "list_vhosts"]).await, "/\nexported\n");
    assert_eq!(
        ok(&other, &["-q", "list_vhost_limits", "-p", "exported"]).await,
        "{\"max-connections\":10}\n"
    );
    assert!(
        ok(&other, &["-s", "list_policies"])
            .await
            .contains("ttl\t^t")
    );
    ok(&b, &["clear_policy", "ttl"]).await;
    assert_eq!(ok(&b, &["-s", "list_policies"]).await, "");
}

#[tokio::test]
async fn without_a_node_ctl_says_so_and_exits_69() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferretmq"))
        .args(["ctl", "--data-dir"])
        .arg(dir.path())
        .arg("list_vhosts")
        .output()
        .await
        .expect("runs");
    assert_eq!(o.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is ferretmq running on that data dir?"));
}

#[tokio::test]
async fn cluster_status_of_a_node_alone_lists_it_and_says_it_is_not_clustered() {
    let b = start().await;
    let out = ok(&b, &["cluster_status"]).await;
    let node = b
        .running
        .as_ref()
        .expect("running")
        .broker
        .node_name()
        .to_string();
    assert!(out.contains(&format!("Disk Nodes\n\n{node}\n")), "{out}");
    assert!(out.contains(&format!("Running Nodes\n\n{node}\n")), "{out}");
    assert!(out.contains("Not clustered"), "{out}");
    let o = ctl(&b, &["forget_cluster_node", "other"]).await;
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("not clustered"), "{}", o.stderr);
    // A node alone is one node online; two never come.
    let out = ok(&b, &["await_online_nodes", "1"]).await;
    assert!(out.contains("Will wait for at least 1 nodes"), "{out}");
    let o = ctl(&b, &["await_online_nodes", "2", "--timeout", "1"]).await;
    assert_eq!(o.code, 75, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("timed out waiting for 2 nodes to be online; 1 are"),
        "{}",
        o.stderr
    );
}
