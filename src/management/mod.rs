//! The management HTTP API on RabbitMQ's paths, JSON shapes and status
//! codes (its port 15672). It reads and changes the broker through the same
//! functions as AMQP. So far: policies, connections, queues (read-only, with
//! their statistics), and who the caller is.

mod connections;
mod policies;
mod queues;

use crate::broker::Broker;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The authenticated user of a request.
#[derive(Clone)]
pub(crate) struct User(pub String);

/// RabbitMQ's error body: `{"error": ..., "reason": ...}` with a status.
pub(crate) struct ApiError {
    status: StatusCode,
    error: &'static str,
    reason: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Object Not Found", "Not Found")
    }

    pub(crate) fn vhost_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "vhost_not_found")
    }

    pub(crate) fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "reason": self.reason });
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""),
            );
        }
        r
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/api/whoami", axum::routing::get(whoami))
        .merge(policies::routes())
        .merge(connections::routes())
        .merge(queues::routes())
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(broker.clone(), authenticate))
        .with_state(broker)
}

/// HTTP basic auth against the broker's users; guest only from loopback,
/// as for AMQP (RabbitMQ's loopback_users).
async fn authenticate(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let failed = |reason: &str| {
        ApiError::new(StatusCode::UNAUTHORIZED, "not_authorized", reason).into_response()
    };
    let Some((user, pass)) = basic_credentials(&req) else {
        return failed("Not_Authorized");
    };
    if !broker.authenticate(&user, &pass) {
        tracing::info!(%peer, %user, "HTTP access denied: login failed");
        return failed("Login failed");
    }
    if user == "guest" && !broker.config.guest_remote && !peer.ip().to_canonical().is_loopback() {
        return failed("User can only log in via localhost");
    }
    req.extensions_mut().insert(User(user));
    next.run(req).await
}

fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

async fn whoami(axum::Extension(User(name)): axum::Extension<User>) -> impl IntoResponse {
    // Users have no tags yet; every user is an administrator, as guest is in RabbitMQ.
    axum::Json(serde_json::json!({ "name": name, "tags": ["administrator"] }))
}

/// Serve the API on `listener` until shutdown.
pub(crate) async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(broker).into_make_service_with_connect_info::<SocketAddr>();
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!("management API stopped: {e}");
    }
}
