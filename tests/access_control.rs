//! Users, vhosts and permissions over AMQP: which operation needs which
//! permission, with RabbitMQ 3.10's reply codes and texts (checked against
//! a real one with the same operations), limits, and what deleting a vhost
//! or a user does to its connections.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// (reply code, reply text) of the exception behind a lapin error.
fn refusal(e: &lapin::Error) -> (u16, String) {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(a) => (a.get_id(), a.get_message().to_string()),
        other => panic!("not a protocol error: {other:?}"),
    }
}

fn url(b: &TestBroker, user: &str, pass: &str, vhost: &str) -> String {
    format!(
        "amqp://{user}:{pass}@{}/{}",
        b.addr,
        vhost.replace('/', "%2f")
    )
}

async fn connect_as(
    b: &TestBroker,
    user: &str,
    pass: &str,
    vhost: &str,
) -> Result<Connection, lapin::Error> {
    within(Connection::connect(
        &url(b, user, pass, vhost),
        ConnectionProperties::default(),
    ))
    .await
}

fn broker(b: &TestBroker) -> &ferretmq::Broker {
    &b.running.as_ref().expect("running").broker
}

/// alice in v1 with configure ^a, write ^b, read nothing: the setup the
/// texts below were taken from on RabbitMQ 3.10.8.
async fn with_alice() -> TestBroker {
    let b = start().await;
    broker(&b).add_vhost("v1").expect("vhost");
    broker(&b)
        .add_user("alice", "secret", &["monitoring"])
        .expect("user");
    broker(&b)
        .set_permissions("alice", "v1", "^a", "^b", "")
        .expect("permissions");
    b
}

async fn alice_channel(b: &TestBroker) -> (Connection, lapin::Channel) {
    let c = connect_as(b, "alice", "secret", "v1")
        .await
        .expect("alice connects");
    let ch = within(c.create_channel()).await.expect("channel");
    (c, ch)
}

#[tokio::test]
async fn each_operation_needs_its_permission_and_is_refused_with_rabbitmqs_text() {
    let b = with_alice().await;
    let refused = |what: &str| {
        (
            403,
            format!("ACCESS_REFUSED - access to {what} in vhost 'v1' refused for user 'alice'"),
        )
    };

    let (_c, ch) = alice_channel(&b).await;
    let e = within(ch.queue_declare(
        "bq".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("configure ^a does not match bq");
    assert_eq!(refusal(&e), refused("queue 'bq'"));

    let (_c, ch) = alice_channel(&b).await;
    declare(&ch, "aq").await;
    let e = within(ch.exchange_declare(
        "bx".into(),
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("configure on exchange bx");
    assert_eq!(refusal(&e), refused("exchange 'bx'"));

    let (_c, ch) = alice_channel(&b).await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirms");
    let confirm = within(ch.basic_publish(
        "".into(),
        "aq".into(),
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await
    .expect("publish sent");
    let e = within(confirm).await.expect_err("write on amq.default");
    assert_eq!(refusal(&e), refused("exchange 'amq.default'"));

    let (_c, ch) = alice_channel(&b).await;
    let e = within(ch.basic_get("aq".into(), BasicGetOptions::default()))
        .await
        .expect_err("read on aq");
    assert_eq!(refusal(&e), refused("queue 'aq'"));

    let (_c, ch) = alice_channel(&b).await;
    let e = within(ch.basic_consume(
        "aq".into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("read on aq");
    assert_eq!(refusal(&e), refused("queue 'aq'"));

    let (_c, ch) = alice_channel(&b).await;
    let e = within(ch.queue_bind(
        "aq".into(),
        "amq.direct".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("write on the bound queue first");
    assert_eq!(refusal(&e), refused("queue 'aq'"));

    let (_c, ch) = alice_channel(&b).await;
    let e = within(ch.queue_purge("aq".into(), QueuePurgeOptions::default()))
        .await
        .expect_err("read on aq");
    assert_eq!(refusal(&e), refused("queue 'aq'"));

    // Server-named queues are checked by their generated name (amq.gen-…
    // matches ^a here, as on RabbitMQ); deleting needs configure.
    let (_c, ch) = alice_channel(&b).await;
    let q = declare(&ch, "").await;
    assert!(q.starts_with("amq.gen-"));
    within(ch.queue_delete("aq".into(), QueueDeleteOptions::default()))
        .await
        .expect("configure on aq allows delete");
}

#[tokio::test]
async fn a_passive_declare_needs_some_permission_on_the_resource() {
    let b = with_alice().await;
    // zz: no regexp of alice's matches, so she may not even learn whether
    // it exists (RabbitMQ 4.2's rule; 3.x answered 404 or Declare-Ok).
    let (_c, ch) = alice_channel(&b).await;
    let e = within(ch.queue_declare(
        "zz".into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect_err("no permission on zz");
    assert_eq!(
        refusal(&e),
        (
            403,
            "ACCESS_REFUSED - access to queue 'zz' in vhost 'v1' refused for user 'alice'".into()
        )
    );
    // bq: write ^b matches, so a passive declare gets its honest 404.
    let (_c, ch) = alice_channel(&b).await;
    let e = within(ch.queue_declare(
        "bq".into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect_err("no such queue");
    assert_eq!(refusal(&e).0, 404);
}

#[tokio::test]
async fn connecting_needs_a_known_vhost_permissions_in_it_and_the_right_password() {
    let b = with_alice().await;
    let e = connect_as(&b, "alice", "secret", "/")
        .await
        .expect_err("no permissions in /");
    assert_eq!(
        refusal(&e),
        (
            530,
            "NOT_ALLOWED - access to vhost '/' refused for user 'alice'".into()
        )
    );
    let e = connect_as(&b, "alice", "secret", "nosuch")
        .await
        .expect_err("no such vhost");
    assert_eq!(
        refusal(&e),
        (530, "NOT_ALLOWED - vhost nosuch not found".into())
    );
    let e = connect_as(&b, "alice", "wrong", "v1")
        .await
        .expect_err("bad password");
    assert_eq!(
        refusal(&e),
        (403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.".into())
    );
    let e = connect_as(&b, "nobody", "x", "v1")
        .await
        .expect_err("unknown user");
    assert_eq!(refusal(&e).0, 403);
}

#[tokio::test]
async fn a_permission_change_applies_to_open_channels_at_once() {
    let b = with_alice().await;
    broker(&b)
        .set_permissions("alice", "v1", ".*", "^amq\\.fanout$", ".*")
        .expect("permissions");
    let (_c, ch) = alice_channel(&b).await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirms");
    let send = || {
        ch.basic_publish(
            "amq.fanout".into(),
            "".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
    };
    within(within(send()).await.expect("sent"))
        .await
        .expect("confirmed while allowed");
    broker(&b)
        .set_permissions("alice", "v1", ".*", "^nothing$", ".*")
        .expect("permissions");
    let e = within(within(send()).await.expect("sent"))
        .await
        .expect_err("refused after the change");
    assert_eq!(
        refusal(&e),
        (403, "ACCESS_REFUSED - access to exchange 'amq.fanout' in vhost 'v1' refused for user 'alice'".into())
    );
}

async fn bob_with_topic_permissions() -> TestBroker {
    let b = start_with(|c| c.management_listen = vec!["127.0.0.1:0".parse().expect("addr")]).await;
    broker(&b).add_vhost("tv").expect("vhost");
    broker(&b).add_user("bob", "pw", &[]).expect("user");
    broker(&b)
        .set_permissions("bob", "tv", ".*", ".*", ".*")
        .expect("permissions");
    let (code, _) = http::http(
        &b,
        "PUT",
        "/api/topic-permissions/tv/bob",
        Some("guest:guest"),
        r#"{"exchange":"amq.topic","write":"^x","read":"^{username}\\."}"#,
    )
    .await;
    assert_eq!(code, 201);
    b
}

#[tokio::test]
async fn topic_permissions_check_routing_keys_on_publish_and_binding_keys_on_bind() {
    let b = bob_with_topic_permissions().await;
    let c = connect_as(&b, "bob", "pw", "tv")
        .await
        .expect("bob connects");
    let ch = within(c.create_channel()).await.expect("channel");
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirms");
    let send = |key: &'static str| {
        ch.basic_publish(
            "amq.topic".into(),
            key.into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
    };
    within(within(send("xa")).await.expect("sent"))
        .await
        .expect("^x allows xa");
    let e = within(within(send("ya")).await.expect("sent"))
        .await
        .expect_err("^x refuses ya");
    assert_eq!(
        refusal(&e),
        (403, "ACCESS_REFUSED - access to topic 'ya' in exchange 'amq.topic' in vhost 'tv' refused for user 'bob'".into())
    );

    let ch = within(c.create_channel()).await.expect("channel");
    declare(&ch, "tq").await;
    bind(&ch, "tq", "amq.topic", "bob.1").await;
    let e = within(ch.queue_bind(
        "tq".into(),
        "amq.topic".into(),
        "other".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("read ^{username}\\. refuses 'other'");
    assert_eq!(
        refusal(&e),
        (403, "ACCESS_REFUSED - access to topic 'other' in exchange 'amq.topic' in vhost 'tv' refused for user 'bob'".into())
    );
}

#[tokio::test]
async fn vhost_and_user_limits_refuse_with_rabbitmqs_texts() {
    let b = bob_with_topic_permissions().await;
    let guest = Some("guest:guest");
    assert_eq!(
        http::http(
            &b,
            "PUT",
            "/api/user-limits/bob/max-channels",
            guest,
            r#"{"value":2}"#
        )
        .await
        .0,
        204
    );
    assert_eq!(
        http::http(
            &b,
            "PUT",
            "/api/vhost-limits/tv/max-connections",
            guest,
            r#"{"value":2}"#
        )
        .await
        .0,
        204
    );

    let c = connect_as(&b, "bob", "pw", "tv")
        .await
        .expect("bob connects");
    let _c2 = connect_as(&b, "bob", "pw", "tv")
        .await
        .expect("second connection");
    let e = connect_as(&b, "bob", "pw", "tv")
        .await
        .expect_err("two are open");
    assert_eq!(
        refusal(&e),
        (530, "NOT_ALLOWED - access to vhost 'tv' refused for user 'bob': connection limit (2) is reached".into())
    );

    // Kept: lapin closes a channel whose handle is dropped.
    let _ch1 = within(c.create_channel()).await.expect("first channel");
    let _ch2 = within(c.create_channel()).await.expect("second channel");
    let e = within(c.create_channel()).await.expect_err("third channel");
    assert_eq!(
        refusal(&e),
        (530, "NOT_ALLOWED - number of channels opened for user 'bob' has reached the maximum allowed user limit of (2)".into())
    );
}

#[tokio::test]
async fn deleting_a_vhost_closes_its_connections_and_removes_its_data() {
    let b = with_alice().await;
    let (c, ch) = alice_channel(&b).await;
    declare(&ch, "adurable").await;
    let dir = b.data_dir().join("vhosts").join("7631");
    assert!(dir.exists(), "v1's data dir");
    let mut events = c.events_listener();
    broker(&b).delete_vhost("v1").expect("deleted");
    let seen = within(async {
        while let Some(ev) = events.next().await {
            if let lapin::Event::Error(e) = ev {
                return Some(refusal(&e));
            }
        }
        None
    })
    .await;
    assert_eq!(
        seen,
        Some((320, "CONNECTION_FORCED - vhost 'v1' is deleted".into()))
    );
    assert!(!dir.exists(), "its data is removed");
    let e = connect_as(&b, "alice", "secret", "v1")
        .await
        .expect_err("gone");
    assert_eq!(
        refusal(&e),
        (530, "NOT_ALLOWED - vhost v1 not found".into())
    );
}

#[tokio::test]
async fn users_vhosts_and_permissions_survive_a_restart_and_defaults_are_not_recreated() {
    let b = with_alice().await;
    broker(&b).delete_user("guest").expect("guest deleted");
    let b = b.restart().await;
    let c = connect_as(&b, "alice", "secret", "v1")
        .await
        .expect("alice after restart");
    drop(c);
    let e = connect_as(&b, "guest", "guest", "/")
        .await
        .expect_err("guest stays deleted");
    assert_eq!(refusal(&e).0, 403);
}

#[tokio::test]
async fn impersonators_may_publish_with_another_user_id() {
    let b = with_alice().await;
    broker(&b)
        .add_user("imp", "pw", &["impersonator"])
        .expect("user");
    broker(&b)
        .set_permissions("imp", "v1", ".*", ".*", ".*")
        .expect("permissions");
    let c = connect_as(&b, "imp", "pw", "v1").await.expect("connects");
    let ch = within(c.create_channel()).await.expect("channel");
    declare(&ch, "iq").await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirms");
    let props = BasicProperties::default().with_user_id("someone-else".into());
    let confirm = within(ch.basic_publish(
        "".into(),
        "iq".into(),
        BasicPublishOptions::default(),
        b"x",
        props,
    ))
    .await
    .expect("sent");
    within(confirm)
        .await
        .expect("an impersonator's user_id is accepted");
}

#[tokio::test]
async fn a_vhost_queue_limit_refuses_new_queues_with_rabbitmqs_text() {
    let b = bob_with_topic_permissions().await;
    let guest = Some("guest:guest");
    assert_eq!(
        http::http(
            &b,
            "PUT",
            "/api/vhost-limits/tv/max-queues",
            guest,
            r#"{"value":1}"#
        )
        .await
        .0,
        204
    );
    let c = connect_as(&b, "bob", "pw", "tv")
        .await
        .expect("bob connects");
    let ch = within(c.create_channel()).await.expect("channel");
    declare(&ch, "lim1").await;
    declare(&ch, "lim1").await;
    let e = within(ch.queue_declare(
        "lim2".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("one queue is the limit");
    assert_eq!(
        refusal(&e),
        (406, "PRECONDITION_FAILED - cannot declare queue 'lim2': queue limit in vhost 'tv' (1) is reached".into())
    );
}

#[tokio::test]
async fn a_listener_serves_at_most_connection_max_connections() {
    let b = start_with(|c| c.connection_max = Some(1)).await;
    let _first = b.connect().await;
    let e = within(Connection::connect(&b.url, ConnectionProperties::default()))
        .await
        .expect_err("one is the limit");
    assert_eq!(
        refusal(&e),
        (
            530,
            "NOT_ALLOWED - connection refused: node connection limit (1) is reached".into()
        )
    );
}

#[tokio::test]
async fn nothing_new_is_made_in_a_deleted_vhost() {
    let b = with_alice().await;
    let v = broker(&b).vhost("v1").expect("v1");
    broker(&b).delete_vhost("v1").expect("deleted");
    // A connection still holding the vhost (its close is on the way) may not
    // put a durable queue's data back on disk.
    let args = FieldTable::default();
    let spec = ferretmq::broker::vhost::QueueSpec {
        name: "late",
        server_named: false,
        passive: false,
        durable: true,
        exclusive: false,
        auto_delete: false,
        arguments: &args,
        conn_id: 0,
    };
    assert!(v.declare_queue(&spec).is_err());
    assert!(!b.data_dir().join("vhosts").join("7631").exists());
}
