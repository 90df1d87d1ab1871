//! The web UI, served on the management port from files built into the
//! binary (ui/ in the source tree; the charting library, uPlot, is pinned
//! in ui/vendor). The page logs in through the API with the broker's
//! users, so these files need no authentication.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const APP_CSS: &str = include_str!("../../ui/app.css");
const UPLOT_JS: &str = include_str!("../../ui/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../ui/vendor/uPlot.min.css");

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/index.html",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { file("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { file("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/vendor/uPlot.iife.min.js",
            get(|| async { file("text/javascript; charset=utf-8", UPLOT_JS) }),
        )
        .route(
            "/vendor/uPlot.min.css",
            get(|| async { file("text/css; charset=utf-8", UPLOT_CSS) }),
        )
}
