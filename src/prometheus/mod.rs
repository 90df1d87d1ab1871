//! Prometheus metrics on rabbitmq_prometheus's port (15692), paths, metric
//! names, types, HELP texts and labels, so that RabbitMQ's Grafana
//! dashboards work unchanged. No authentication, as the plugin.
//!
//! `/metrics` sums per-object metrics over their objects (the plugin's
//! default), `/metrics/per-object` gives one series per queue, channel and
//! connection, `/metrics/detailed?family=...&vhost=...` the queue families
//! asked for, named `rabbitmq_detailed_*`.

mod channels;
mod node;
mod queues;
mod snapshot;
mod text;

use crate::broker::Broker;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use snapshot::Snapshot;
use std::sync::Arc;
use text::Writer;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Aggregated,
    PerObject,
    Detailed,
}

fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/metrics", get(aggregated))
        .route("/metrics/per-object", get(per_object))
        .route("/metrics/detailed", get(detailed))
        .with_state(broker)
}

fn text(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, text::CONTENT_TYPE)], body)
}

/// /metrics and /metrics/per-object, in the plugin's order.
fn core(b: &Broker, scope: Scope) -> String {
    let s = Snapshot::take(b, None, true);
    let mut w = Writer::new("rabbitmq_");
    node::write_node(&mut w, b, &s);
    queues::write(&mut w, &s, scope);
    channels::write(&mut w, &s, scope);
    queues::write_published(&mut w, &s, scope);
    node::write_counts(&mut w, &s);
    node::write_info(&mut w, b, scope);
    channels::write_global(&mut w, &s);
    w.finish()
}

async fn aggregated(State(b): State<Arc<Broker>>) -> impl IntoResponse {
    text(core(&b, Scope::Aggregated))
}

async fn per_object(State(b): State<Arc<Broker>>) -> impl IntoResponse {
    text(core(&b, Scope::PerObject))
}

/// The families asked for (unknown ones are ignored, as the plugin does),
/// for the vhosts asked for (all when none are), then the info metrics.
async fn detailed(State(b): State<Arc<Broker>>, RawQuery(q): RawQuery) -> impl IntoResponse {
    let (mut families, mut vhosts) = (Vec::new(), Vec::new());
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match &*k {
            "family" => families.push(v.into_owned()),
            "vhost" => vhosts.push(v.into_owned()),
            _ => {}
        }
    }
    let s = Snapshot::take(&b, (!vhosts.is_empty()).then_some(&vhosts[..]), false);
    let mut w = Writer::new("rabbitmq_detailed_");
    for f in &families {
        queues::write_detailed(&mut w, &s, f);
    }
    let mut info = Writer::new("rabbitmq_");
    node::write_info(&mut info, &b, Scope::Detailed);
    let mut body = w.finish();
    body.push_str(&info.finish());
    text(body)
}

/// Serve the metrics on `listener` until shutdown.
pub(crate) async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, router(broker).into_make_service())
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!("prometheus metrics stopped: {e}");
    }
}
