//! The management API's /api/policies: RabbitMQ's status codes and bodies,
//! policies applying at once over AMQP, and surviving a restart.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use http::{http, start_http};

const GUEST: Option<&str> = Some("guest:guest");

#[tokio::test]
async fn policies_are_created_replaced_listed_and_deleted_as_in_rabbitmq() {
    let b = start_http().await;
    let def = r#"{"pattern":"^zz","definition":{"max-length":3},"apply-to":"queues","priority":1}"#;
    assert_eq!(
        http(&b, "PUT", "/api/policies/%2F/zz", GUEST, def).await.0,
        201
    );
    assert_eq!(
        http(&b, "PUT", "/api/policies/%2F/zz", GUEST, def).await.0,
        204
    );
    let (code, body) = http(&b, "GET", "/api/policies/%2F/zz", GUEST, "").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        v,
        serde_json::json!({"vhost":"/","name":"zz","pattern":"^zz","apply-to":"queues",
            "definition":{"max-length":3},"priority":1})
    );
    let (_, all) = http(&b, "GET", "/api/policies", GUEST, "").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&all).expect("json"),
        serde_json::json!([v])
    );
    assert_eq!(
        http(&b, "DELETE", "/api/policies/%2F/zz", GUEST, "")
            .await
            .0,
        204
    );
    assert_eq!(
        http(&b, "DELETE", "/api/policies/%2F/zz", GUEST, "").await,
        (
            404,
            r#"{"error":"Object Not Found","reason":"Not Found"}"#.into()
        )
    );
}

#[tokio::test]
async fn bad_requests_get_rabbitmqs_errors() {
    let b = start_http().await;
    let (code, body) = http(&b, "GET", "/api/policies", None, "").await;
    assert_eq!(
        (code, body.as_str()),
        (
            401,
            r#"{"error":"not_authorized","reason":"Not_Authorized"}"#
        )
    );
    let (code, body) = http(&b, "GET", "/api/policies", Some("guest:wrong"), "").await;
    assert_eq!(
        (code, body.as_str()),
        (401, r#"{"error":"not_authorized","reason":"Login failed"}"#)
    );
    let def = r#"{"pattern":"^zz","definition":{"max-length":3}}"#;
    assert_eq!(
        http(&b, "PUT", "/api/policies/nohost/zz", GUEST, def).await,
        (
            404,
            r#"{"error":"not_found","reason":"vhost_not_found"}"#.into()
        )
    );
    assert_eq!(
        http(&b, "PUT", "/api/policies/%2F/zz", GUEST, "{bad").await,
        (400, r#"{"error":"bad_request","reason":"not_json"}"#.into())
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/policies/%2F/zz",
            GUEST,
            r#"{"pattern":"^zz"}"#
        )
        .await,
        (
            400,
            r#"{"error":"bad_request","reason":"[{key_missing,definition}]"}"#.into()
        )
    );
    let (code, _) = http(
        &b,
        "PUT",
        "/api/policies/%2F/zz",
        GUEST,
        r#"{"pattern":"(","definition":{"max-length":1}}"#,
    )
    .await;
    assert_eq!(code, 400, "a bad regex");
    assert_eq!(http(&b, "GET", "/api/nothing", GUEST, "").await.0, 404);
    // Nothing was half-made.
    assert_eq!(http(&b, "GET", "/api/policies", GUEST, "").await.1, "[]");
}

#[tokio::test]
async fn a_policy_set_over_http_applies_at_once_and_survives_a_restart() {
    let b = start_http().await;
    let (_c, ch) = b.channel().await;
    within(ch.queue_declare(
        "capped.d".into(),
        lapin::options::QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        Default::default(),
    ))
    .await
    .expect("declare");
    let def = r#"{"pattern":"^capped\\.","definition":{"max-length":1},"apply-to":"queues"}"#;
    assert_eq!(
        http(&b, "PUT", "/api/policies/%2F/cap", GUEST, def).await.0,
        201
    );
    for i in 0..3u8 {
        publish_persistent(&ch, "", "capped.d", &[i]).await;
    }
    assert_eq!(depth(&ch, "capped.d").await, 1);
    drop(ch);
    let b = b
        .restart_with(|c| c.management_listen = vec!["127.0.0.1:0".parse().expect("addr")])
        .await;
    let (_c, ch) = b.channel().await;
    publish_persistent(&ch, "", "capped.d", b"after").await;
    assert_eq!(
        depth(&ch, "capped.d").await,
        1,
        "the policy came back with the vhost"
    );
    assert_eq!(
        http(&b, "GET", "/api/policies/%2F/cap", GUEST, "").await.0,
        200
    );
}

#[tokio::test]
async fn an_operator_policy_caps_a_queue_below_its_own_argument_and_survives_a_restart() {
    let b = start_http().await;
    let (_c, ch) = b.channel().await;
    let mut args = lapin::types::FieldTable::default();
    args.insert("x-max-length".into(), lapin::types::AMQPValue::LongInt(10));
    within(ch.queue_declare(
        "ops.d".into(),
        lapin::options::QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    ))
    .await
    .expect("declare");
    let def = r#"{"pattern":"^ops\\.","definition":{"max-length":2},"apply-to":"queues"}"#;
    assert_eq!(
        http(&b, "PUT", "/api/operator-policies/%2F/ops", GUEST, def)
            .await
            .0,
        201
    );
    for i in 0..5u8 {
        publish_persistent(&ch, "", "ops.d", &[i]).await;
    }
    assert_eq!(depth(&ch, "ops.d").await, 2, "the operator's cap, not 10");
    let (_, q) = http(&b, "GET", "/api/queues/%2F/ops.d", GUEST, "").await;
    let q: serde_json::Value = serde_json::from_str(&q).expect("json");
    assert_eq!(q["operator_policy"], "ops");
    assert_eq!(q["effective_policy_definition"]["max-length"], 2);
    let (_, list) = http(&b, "GET", "/api/operator-policies/%2F", GUEST, "").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list).expect("json"),
        serde_json::json!([{"vhost":"/","name":"ops","pattern":"^ops\\.","apply-to":"queues",
            "definition":{"max-length":2},"priority":0}])
    );
    drop(ch);
    let b = b
        .restart_with(|c| c.management_listen = vec!["127.0.0.1:0".parse().expect("addr")])
        .await;
    let (_c, ch) = b.channel().await;
    publish_persistent(&ch, "", "ops.d", b"after").await;
    assert_eq!(depth(&ch, "ops.d").await, 2, "the cap came back");
    assert_eq!(
        http(&b, "DELETE", "/api/operator-policies/%2F/ops", GUEST, "")
            .await
            .0,
        204
    );
    for i in 0..5u8 {
        publish_persistent(&ch, "", "ops.d", &[i]).await;
    }
    assert_eq!(depth(&ch, "ops.d").await, 7, "the queue's own 10 again");
}

#[tokio::test]
async fn an_operator_policy_takes_limits_only() {
    let b = start_http().await;
    let def = r#"{"pattern":".*","definition":{"dead-letter-exchange":"dlx"}}"#;
    assert_eq!(
        http(&b, "PUT", "/api/operator-policies/%2F/bad", GUEST, def).await,
        (
            400,
            r#"{"error":"bad_request","reason":"Validation failed\n\n[{<<\"dead-letter-exchange\">>,<<\"dlx\">>}] are not recognised policy settings\n"}"#
                .into()
        )
    );
    assert_eq!(
        http(&b, "GET", "/api/operator-policies/%2F/bad", GUEST, "")
            .await
            .0,
        404
    );
}
