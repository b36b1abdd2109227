//! The HTTP server: Prometheus-compatible API, imports, admin, health and
//! metrics. Only this module knows JSON; it reaches storage through the
//! [`Backend`] trait and the seam traits, and maps every error to a status
//! in [`error`].

pub mod backend;
pub mod error;
pub mod handlers;
pub mod json;
pub mod metrics;
pub mod params;
pub mod paths;
pub mod push;
pub mod query;
pub mod rule_metrics;
pub mod rules;
pub mod state;

use std::future::Future;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;

pub use error::{ApiError, ErrorType};
pub use state::{AppState, Backend, HeadStats, MetricSample, ServerInfo};

/// Builds the router with every route, request metrics, gzip responses
/// when the client asks, and the import body limit.
pub fn router(state: AppState) -> Router {
    let import = Router::new()
        .route(paths::IMPORT_PROMETHEUS, post(handlers::import))
        .layer(DefaultBodyLimit::max(state.import_body_limit))
        .layer(RequestDecompressionLayer::new());
    Router::new()
        .route(
            paths::HEALTHY,
            get(handlers::healthy).head(handlers::healthy),
        )
        .route(paths::READY, get(handlers::ready).head(handlers::ready))
        .route(paths::METRICS, get(handlers::metrics))
        .route(
            paths::ADMIN_SNAPSHOT,
            post(handlers::snapshot).put(handlers::snapshot),
        )
        .route(paths::ADMIN_STATSD_FLUSH, post(handlers::statsd_flush))
        .route(paths::BUILDINFO, get(handlers::buildinfo))
        .route(paths::RUNTIMEINFO, get(handlers::runtimeinfo))
        .route(paths::METADATA, get(push::metadata))
        .route(paths::QUERY, get(query::instant).post(query::instant))
        .route(paths::QUERY_RANGE, get(query::range).post(query::range))
        .route(paths::SERIES, get(query::series).post(query::series))
        .route(paths::LABELS, get(query::labels).post(query::labels))
        .route(paths::LABEL_VALUES, get(query::label_values))
        .route(paths::STATUS_TSDB, get(query::status_tsdb))
        .route(paths::RULES, get(rules::rules))
        .route(paths::ALERTS, get(rules::alerts))
        .route(paths::RELOAD, post(rules::reload).put(rules::reload))
        .route(
            paths::FORMAT_QUERY,
            get(query::format_query).post(query::format_query),
        )
        .route(
            paths::QUERY_EXEMPLARS,
            get(query::query_exemplars).post(query::query_exemplars),
        )
        .merge(import)
        .merge(push_routes(&state))
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(handlers::not_found)
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// The push doors, with their own body limit (remote write bodies are
/// snappy, so no request decompression layer there).
fn push_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(paths::REMOTE_WRITE, post(push::remote_write))
        .route(
            paths::PUSH_GROUP,
            axum::routing::put(push::push_put)
                .post(push::push_post)
                .delete(push::push_delete),
        )
        .route(paths::PUSH_GROUPS, get(push::push_list))
        .route(paths::PUSH_WIPE, axum::routing::put(push::push_wipe))
        .layer(DefaultBodyLimit::max(state.push.config.body_limit))
        .merge(
            Router::new()
                .route(paths::OTLP_METRICS, post(push::otlp_metrics))
                .layer(DefaultBodyLimit::max(state.push.config.body_limit))
                .layer(RequestDecompressionLayer::new()),
        )
}

/// Counts requests and their durations by route pattern and status.
async fn track(
    State(s): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let handler = matched.map_or_else(|| "other".to_string(), |m| m.as_str().to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    s.metrics
        .requests
        .get_or_create(&metrics::RequestLabels {
            handler: handler.clone(),
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    s.metrics
        .durations
        .get_or_create(&metrics::HandlerLabel { handler })
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// Serves `state` on `listener` until `shutdown` resolves, then finishes
/// in-flight requests and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
pub(crate) mod tests;
