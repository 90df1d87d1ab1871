//! Importing a RabbitMQ definitions.json at boot, with policies.
mod common;
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;

#[tokio::test]
async fn the_example_definitions_are_imported_and_their_policies_apply() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/definitions.example.json");
    let b = start_with(|c| c.definitions = Some(example)).await;
    let (_c, ch) = b.channel().await;
    // The topology is there: publishing to the fanout reaches every service queue.
    publish(&ch, "orders", "", b"order").await;
    for q in [
        "order_updates",
        "payment_processing",
        "email_notifications",
        "inventory_updates",
        "shipping_labels",
    ] {
        assert_eq!(depth(&ch, q).await, 1, "{q}");
    }
    // The policy gave payment_processing its dead-letter exchange.
    let m = get(&ch, "payment_processing").await.expect("order");
    within(ch.basic_reject(
        m.delivery.delivery_tag,
        BasicRejectOptions { requeue: false },
    ))
    .await
    .expect("reject");
    let mut dead = consume(&ch, "orders.dead", true).await;
    assert_eq!(next(&mut dead).await.data, b"order");
}

/// As RabbitMQ resolves them: for a limit the smaller of the queue's
/// argument and the policy's value applies; otherwise the argument wins.
#[tokio::test]
async fn queue_arguments_and_policies_resolve_as_in_rabbitmq() {
    let dir = tempfile::tempdir().expect("dir");
    let defs = dir.path().join("defs.json");
    std::fs::write(
        &defs,
        r#"{"policies":[{"vhost":"/","name":"cap","pattern":"^capped","apply-to":"queues","priority":0,
            "definition":{"max-length":2,"overflow":"reject-publish"}}]}"#,
    )
    .expect("write");
    let b = start_with(|c| c.definitions = Some(defs)).await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "capped.policy").await;
    for (q, own) in [("capped.higher", 3), ("capped.lower", 1)] {
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), lapin::types::AMQPValue::LongInt(own));
        args.insert(
            "x-overflow".into(),
            lapin::types::AMQPValue::LongString("drop-head".into()),
        );
        within(ch.queue_declare(q.into(), Default::default(), args))
            .await
            .expect("declare");
    }
    for q in ["capped.policy", "capped.higher", "capped.lower"] {
        for i in 0..5u8 {
            publish(&ch, "", q, &[i]).await;
        }
    }
    assert_eq!(depth(&ch, "capped.policy").await, 2);
    assert_eq!(
        depth(&ch, "capped.higher").await,
        2,
        "the policy's is smaller"
    );
    assert_eq!(
        depth(&ch, "capped.lower").await,
        1,
        "the queue's is smaller"
    );
    // reject-publish (the policy's) kept the oldest; drop-head (the queue's own) the newest.
    assert_eq!(get(&ch, "capped.policy").await.expect("m").data, [0]);
    assert_eq!(get(&ch, "capped.higher").await.expect("m").data, [3]);
}

#[tokio::test]
async fn policies_apply_to_durable_queues_recovered_at_boot() {
    let dir = tempfile::tempdir().expect("dir");
    let defs = dir.path().join("defs.json");
    std::fs::write(
        &defs,
        r#"{"policies":[{"vhost":"/","name":"cap","pattern":"^capped","apply-to":"queues","priority":0,
            "definition":{"max-length":2}}]}"#,
    )
    .expect("write");
    let with_defs = |c: &mut ferretmq::Config| c.definitions = Some(defs.clone());
    let b = start_with(with_defs).await;
    {
        let (_c, ch) = b.channel().await;
        within(ch.queue_declare(
            "capped.durable".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await
        .expect("declare");
        for i in 0..3u8 {
            publish_persistent(&ch, "", "capped.durable", &[i]).await;
        }
        assert_eq!(depth(&ch, "capped.durable").await, 2);
    }
    let b = b.restart_with(with_defs).await;
    let (_c, ch) = b.channel().await;
    for i in 3..6u8 {
        publish_persistent(&ch, "", "capped.durable", &[i]).await;
    }
    assert_eq!(
        depth(&ch, "capped.durable").await,
        2,
        "the policy still caps it"
    );
    let m = get(&ch, "capped.durable").await.expect("head");
    assert_eq!(m.data, [4], "drop-head kept the newest");
}

#[tokio::test]
async fn a_bad_definitions_file_at_boot_stops_the_start_naming_the_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let defs = dir.path().join("defs.json");
    std::fs::write(
        &defs,
        r#"{"users": [{"name": "ok", "password": "pw", "tags": ""}],
            "queues": [{"name": "q", "vhost": "nowhere", "durable": true, "auto_delete": false, "arguments": {}}]}"#,
    )
    .expect("write");
    let mut config = ferretmq::Config::ephemeral(dir.path().join("data"));
    config.definitions = Some(defs);
    let e = ferretmq::Broker::start(config)
        .await
        .err()
        .expect("refused");
    assert!(
        e.to_string()
            .contains("queue 'q' in vhost 'nowhere': no such vhost 'nowhere'"),
        "{e}"
    );
}
