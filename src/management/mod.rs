//! The management HTTP API on RabbitMQ's paths, JSON shapes and status
//! codes (its port 15672). It reads and changes the broker through the same
//! functions as AMQP. So far: policies, connections, queues (read-only, with
//! their statistics), and who the caller is.

mod bindings;
mod body;
mod channels;
mod connections;
mod consumers;
mod definitions;
mod exchanges;
mod get;
mod health;
mod limits;
mod node;
pub(crate) use node::node_json;
mod overview;
mod pagination;
mod parameters;
mod permissions;
mod policies;
mod publish;
mod queues;
mod sums;
mod ui;
mod users;
mod vhosts;

use crate::access::check::Grant;
use crate::broker::Broker;
use crate::error::{AmqpError, ReplyCode};
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

/// The authenticated user of a request (a management user, at least), and
/// whether it is the node's own operator (`ferretmq ctl` on the Unix
/// socket), whom vhost permissions do not bind, as rabbitmqctl.
#[derive(Clone)]
pub(crate) struct User(pub Arc<crate::access::user::User>, pub bool);

impl User {
    /// RabbitMQ's check for endpoints only administrators may use.
    pub(crate) fn administrator(&self) -> ApiResult<()> {
        if self.0.is_administrator() {
            Ok(())
        } else {
            Err(ApiError::not_authorised("Not administrator user"))
        }
    }

    /// Node details are for monitoring users and administrators.
    pub(crate) fn monitor(&self) -> ApiResult<()> {
        if self.0.is_monitor() {
            Ok(())
        } else {
            Err(ApiError::not_authorised("Not monitor user"))
        }
    }

    pub(crate) fn policymaker(&self) -> ApiResult<()> {
        if self.0.is_policymaker() {
            Ok(())
        } else {
            Err(ApiError::not_authorised("Not policymaker user"))
        }
    }
}

/// RabbitMQ's error body: `{"error": ..., "reason": ...}` with a status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    error: &'static str,
    /// Mostly text; RabbitMQ answers some type errors with a pair such as
    /// `["not_boolean","yes"]`.
    reason: serde_json::Value,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            reason: serde_json::Value::String(reason.into()),
        }
    }

    /// 400 with RabbitMQ's `[what, value]` reason for a value of the wrong type.
    pub(crate) fn bad_value(what: &str, value: impl Into<serde_json::Value>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "bad_request",
            reason: serde_json::json!([what, value.into()]),
        }
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Object Not Found", "Not Found")
    }

    pub(crate) fn vhost_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "vhost_not_found")
    }

    /// 401 with RabbitMQ's spelling for a user who logged in but may not
    /// do this.
    pub(crate) fn not_authorised(reason: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "not_authorised", reason)
    }

    pub(crate) fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "reason": self.reason });
        let mut r = (self.status, axum::Json(body)).into_response();
        // Only a failed login asks the client to authenticate (RabbitMQ's
        // "not_authorized"); a user lacking a tag or permission is not
        // prompted again.
        if self.error == "not_authorized" {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""),
            );
        }
        r
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// A request body as JSON, or RabbitMQ's 400 `not_json`.
pub(crate) fn json_body(body: &[u8]) -> ApiResult<serde_json::Value> {
    serde_json::from_slice(body).map_err(|_| ApiError::bad_request("not_json"))
}

/// 201 for something new, 204 for something replaced, as RabbitMQ answers PUT.
pub(crate) fn created_or_replaced(new: bool) -> StatusCode {
    if new {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
}

/// An AMQP error from a declare, bind or delete, as RabbitMQ's API answers
/// it: a refused permission is 401 "Access refused.", a missing object 404
/// with its text, anything else 400 with its text.
impl From<AmqpError> for ApiError {
    fn from(e: AmqpError) -> Self {
        match e.code {
            ReplyCode::AccessRefused => ApiError::not_authorised("Access refused."),
            ReplyCode::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.text),
            _ => ApiError::bad_request(e.text),
        }
    }
}

/// The AMQP checks for this user in `vhost`; none for the node's operator,
/// whom vhost permissions do not bind.
pub(crate) fn grant(b: &Broker, u: &User, vhost: &str) -> Option<Grant> {
    (!u.1).then(|| Grant {
        access: b.access.clone(),
        user: u.0.name.clone(),
        vhost: vhost.to_string(),
        client_id: String::new(),
    })
}

/// Apply one of the access rules AMQP applies (`access::rules`) to the
/// caller.
pub(crate) fn allowed(
    b: &Broker,
    u: &User,
    vhost: &str,
    rule: impl FnOnce(&Grant) -> crate::error::AmqpResult<()>,
) -> ApiResult<()> {
    match grant(b, u, vhost) {
        Some(g) => rule(&g).map_err(ApiError::from),
        None => Ok(()),
    }
}

/// A vhost the user may see (monitoring and administrators: any), or
/// RabbitMQ's 404 `vhost_not_found`.
pub(crate) fn vhost_for(b: &Broker, u: &User, name: &str) -> ApiResult<Arc<crate::broker::Vhost>> {
    match b.vhost(name) {
        Some(v) if vhosts::visible(b, u, name) => Ok(v),
        _ => Err(ApiError::vhost_not_found()),
    }
}

impl From<crate::access::Refusal> for ApiError {
    fn from(r: crate::access::Refusal) -> Self {
        use crate::access::Refusal;
        match r {
            Refusal::NoSuchUser(_) | Refusal::NoSuchVhost(_) => ApiError::not_found(),
            Refusal::Invalid(e) => ApiError::bad_request(e),
            Refusal::Io(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e),
            Refusal::Unavailable(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", e),
            Refusal::Amqp { code, text } => crate::error::AmqpError::new(
                crate::error::ReplyCode::from_u16(code)
                    .unwrap_or(crate::error::ReplyCode::InternalError),
                text,
            )
            .into(),
        }
    }
}

/// Every endpoint, before authentication.
fn api() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/whoami", axum::routing::get(whoami))
        .merge(policies::routes())
        .merge(connections::routes())
        .merge(queues::routes())
        .merge(users::routes())
        .merge(vhosts::routes())
        .merge(permissions::routes())
        .merge(definitions::routes())
        .merge(exchanges::routes())
        .merge(bindings::routes())
        .merge(publish::routes())
        .merge(get::routes())
        .merge(node::routes())
        .merge(health::routes())
        .merge(parameters::routes())
        .merge(consumers::routes())
        .merge(overview::routes())
        .merge(channels::routes())
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn(pagination::lists))
        .layer(middleware::map_response(too_large_as_json))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// RabbitMQ's largest request body (`management.http.max_body_size`): a
/// body is refused once it passes this, before the rest is read.
const MAX_BODY_BYTES: usize = 20_000_000;

/// axum refuses an oversized body with a text 413; the API's errors are JSON.
async fn too_large_as_json(r: Response) -> Response {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body larger than {MAX_BODY_BYTES} bytes"),
        )
        .into_response();
    }
    r
}

/// The API on TCP: HTTP basic auth against the broker's users.
fn router(broker: Arc<Broker>) -> Router {
    ui::routes().merge(
        api()
            .layer(middleware::from_fn_with_state(broker.clone(), authenticate))
            .with_state(broker),
    )
}

/// The API on the node's Unix socket, for `ferretmq ctl`: whoever can open
/// the socket (mode 0600, so the broker's OS user) acts as an administrator,
/// as rabbitmqctl does with the Erlang cookie.
fn ctl_router(broker: Arc<Broker>) -> Router {
    let ctl = crate::access::user::User {
        name: "ferretmq-ctl".into(),
        password: crate::access::password::PasswordHash::none(),
        tags: vec!["administrator".into()],
        limits: Default::default(),
    };
    api()
        .layer(axum::Extension(User(Arc::new(ctl), true)))
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
    let Some(account) = broker.authenticate(&user, &pass) else {
        tracing::info!(%peer, %user, "HTTP access denied: login failed");
        return failed("Login failed");
    };
    if !broker.config.may_connect_from(&user, peer.ip()) {
        return failed("User can only log in via localhost");
    }
    if !account.is_management_user() {
        return ApiError::not_authorised("Not management user").into_response();
    }
    req.extensions_mut().insert(User(account, false));
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

async fn whoami(axum::Extension(User(user, _)): axum::Extension<User>) -> impl IntoResponse {
    axum::Json(serde_json::json!({ "name": user.name, "tags": user.tags }))
}

/// Serve the API for `ferretmq ctl` on the node's Unix socket until shutdown.
pub(crate) async fn serve_ctl(
    listener: tokio::net::UnixListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, ctl_router(broker).into_make_service())
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!("ctl socket stopped: {e}");
    }
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
