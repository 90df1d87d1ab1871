//! Transactions: publishes and acks take effect at commit, not before.
mod common;
use common::*;
use lapin::options::*;

#[tokio::test]
async fn publishes_wait_for_commit_and_vanish_on_rollback() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let (_c2, obs) = b.channel().await;
    declare(&ch, "txq").await;
    within(ch.tx_select()).await.expect("tx.select");
    publish(&ch, "", "txq", b"1").await;
    assert_eq!(depth(&obs, "txq").await, 0);
    within(ch.tx_commit()).await.expect("commit");
    assert_eq!(depth(&obs, "txq").await, 1);
    publish(&ch, "", "txq", b"2").await;
    within(ch.tx_rollback()).await.expect("rollback");
    assert_eq!(depth(&obs, "txq").await, 1);
}

#[tokio::test]
async fn acks_wait_for_commit_and_stay_unacked_on_rollback() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "txa").await;
    publish(&ch, "", "txa", b"1").await;
    within(ch.tx_select()).await.expect("tx.select");
    let m = get(&ch, "txa").await.expect("msg");
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default()))
        .await
        .expect("ack");
    within(ch.tx_rollback()).await.expect("rollback");
    // Still unacked: acking it again inside a new transaction is allowed.
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default()))
        .await
        .expect("ack again");
    within(ch.tx_commit()).await.expect("commit");
    within(ch.basic_recover(BasicRecoverOptions { requeue: true }))
        .await
        .expect("recover");
    assert!(get(&ch, "txa").await.is_none(), "committed ack removed it");
}

#[tokio::test]
async fn commit_without_select_is_406() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = within(ch.tx_commit()).await.expect_err("not transactional");
    assert_eq!(reply_code(&err), Some(406));
}
