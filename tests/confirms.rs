//! Publisher confirms and mandatory returns.
mod common;
use common::*;
use lapin::options::*;
use lapin::{BasicProperties, Confirmation};

#[tokio::test]
async fn confirms_ack_every_publish() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm.select");
    let q = declare(&ch, "conf").await;
    let mut pending = vec![];
    for i in 0..500u32 {
        pending.push(
            within(ch.basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                &i.to_be_bytes(),
                BasicProperties::default(),
            ))
            .await
            .expect("publish"),
        );
    }
    for p in pending {
        assert!(within(p).await.expect("confirm").is_ack());
    }
    assert_eq!(depth(&ch, &q).await, 500);
}

#[tokio::test]
async fn mandatory_unroutable_message_is_returned_then_acked() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm.select");
    let conf = within(ch.basic_publish(
        "amq.direct".into(),
        "nobody".into(),
        BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        },
        b"lost?",
        BasicProperties::default(),
    ))
    .await
    .expect("publish");
    match within(conf).await.expect("confirm") {
        Confirmation::Ack(Some(ret)) => {
            assert_eq!(ret.reply_code, 312);
            assert_eq!(ret.delivery.data, b"lost?");
        }
        other => panic!("expected ack with returned message, got {other:?}"),
    }
}

#[tokio::test]
async fn publish_to_missing_exchange_closes_the_channel_with_404() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    // With confirms the publish itself waits for the broker, so the error
    // it gets is the broker's Channel.Close and not a client-side race.
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    let confirm = within(ch.basic_publish(
        "no-such-exchange".into(),
        "k".into(),
        Default::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await
    .expect("sent");
    let err = within(confirm).await.expect_err("closed");
    assert_eq!(reply_code(&err), Some(404), "{err:?}");
    assert!(within(c.create_channel()).await.is_ok());
}

async fn declare_fanout(ch: &lapin::Channel, name: &str) {
    within(ch.exchange_declare(
        name.into(),
        lapin::ExchangeKind::Fanout,
        Default::default(),
        Default::default(),
    ))
    .await
    .expect("exchange");
}

/// Publish and wait for the broker's answer: Ok if confirmed.
async fn publish_confirmed(ch: &lapin::Channel, exchange: &str) -> Result<(), lapin::Error> {
    let confirm = within(ch.basic_publish(
        exchange.into(),
        "".into(),
        Default::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await?;
    within(confirm).await.map(|_| ())
}

#[tokio::test]
async fn a_channel_publishing_to_a_deleted_exchange_gets_404_or_the_new_one_of_that_name() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    let other = within(c.create_channel()).await.expect("channel");
    declare_fanout(&other, "short-lived").await;
    declare(&other, "fed").await;
    bind(&other, "fed", "short-lived", "").await;
    publish_confirmed(&ch, "short-lived").await.expect("routed");
    assert_eq!(depth(&other, "fed").await, 1);
    // Deleted and declared again by another channel: this channel's next
    // publish reaches the new exchange, not the one it published to before.
    within(other.exchange_delete("short-lived".into(), Default::default()))
        .await
        .expect("delete");
    declare_fanout(&other, "short-lived").await;
    bind(&other, "fed", "short-lived", "").await;
    publish_confirmed(&ch, "short-lived").await.expect("routed");
    assert_eq!(depth(&other, "fed").await, 2);
    // Deleted for good: 404.
    within(other.exchange_delete("short-lived".into(), Default::default()))
        .await
        .expect("delete");
    let err = publish_confirmed(&ch, "short-lived")
        .await
        .expect_err("closed");
    assert_eq!(reply_code(&err), Some(404), "{err:?}");
}

#[tokio::test]
async fn a_channel_publishing_to_an_auto_deleted_exchange_gets_404() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    let other = within(c.create_channel()).await.expect("channel");
    within(other.exchange_declare(
        "fleeting".into(),
        lapin::ExchangeKind::Fanout,
        lapin::options::ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        Default::default(),
    ))
    .await
    .expect("exchange");
    declare(&other, "fleeting-q").await;
    bind(&other, "fleeting-q", "fleeting", "").await;
    publish_confirmed(&ch, "fleeting").await.expect("routed");
    // Its last binding goes, and with it the exchange.
    within(other.queue_unbind(
        "fleeting-q".into(),
        "fleeting".into(),
        "".into(),
        Default::default(),
    ))
    .await
    .expect("unbind");
    let err = publish_confirmed(&ch, "fleeting")
        .await
        .expect_err("closed");
    assert_eq!(reply_code(&err), Some(404), "{err:?}");
}
