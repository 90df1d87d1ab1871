//! Direct reply-to: RPC replies straight to the requesting channel.
mod common;
use common::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;

#[tokio::test]
async fn rpc_reply_reaches_the_requesting_channel() {
    let b = start().await;
    let (_c, client) = b.channel().await;
    let (_s, server) = b.channel().await;
    declare(&server, "rpc").await;
    let mut replies = within(client.basic_consume(
        "amq.rabbitmq.reply-to".into(),
        "".into(),
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("reply consumer");
    let props = BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into());
    within(client.basic_publish("".into(), "rpc".into(), Default::default(), b"ping", props))
        .await
        .expect("request");
    let req = get(&server, "rpc").await.expect("request arrives");
    let reply_to = req
        .delivery
        .properties
        .reply_to()
        .clone()
        .expect("reply_to");
    assert!(reply_to.as_str().starts_with("amq.rabbitmq.reply-to."));
    publish(&server, "", reply_to.as_str(), b"pong").await;
    assert_eq!(next(&mut replies).await.data, b"pong");
}

#[tokio::test]
async fn an_acking_reply_consumer_is_406() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = within(ch.basic_consume(
        "amq.rabbitmq.reply-to".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("must be no-ack");
    assert_eq!(reply_code(&err), Some(406));
}
