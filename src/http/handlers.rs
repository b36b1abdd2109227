//! Handlers that do not evaluate PromQL: health, readiness, metrics, import,
//! snapshot, metadata and status.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorType};
use super::json;
use super::params::format_rfc3339;
use super::state::AppState;

/// A JSON success response around pre-rendered `data`.
pub fn json_ok(data: &str, warnings: &[String], infos: &[String]) -> Response {
    json_response(StatusCode::OK, json::success(data, warnings, infos))
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `GET /-/healthy`.
pub async fn healthy() -> &'static str {
    "Watchpost is Healthy.\n"
}

/// `GET /-/ready`: 200 once storage is open (WAL replayed), else 503.
pub async fn ready(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if s.is_ready() {
        (StatusCode::OK, "Watchpost is Ready.\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: replaying the write-ahead log.\n",
        )
    }
}

/// `GET /metrics`.
pub async fn metrics(State(s): State<AppState>) -> Response {
    let mut body = s.metrics.render();
    if let Some(h) = s.statsd() {
        h.metrics().write_text(&mut body);
    }
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `POST /api/v1/import/prometheus`: text exposition lines with optional ms
/// timestamps. 204 once committed (durable); 400 with the line and column of
/// the first problem, and then nothing of the request is written.
pub async fn import(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(|r| {
        s.metrics.import_rejections.inc();
        ApiError {
            typ: ErrorType::BadData,
            msg: format!("cannot read import body: {}", r.body_text()),
            status: Some(r.status()),
        }
    })?;
    let backend = s.backend()?;
    let now = s.clock.now_ms();
    let st = s.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        crate::ingest::text::import(backend.appendable(), &body, now)
    })
    .await?;
    match outcome {
        Ok(out) => {
            st.metrics
                .imported_samples
                .inc_by(out.summary.float_samples + out.summary.histogram_samples);
            st.record_metadata(&out.metadata);
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e) => {
            st.metrics.import_rejections.inc();
            tracing::debug!("import rejected: {e}");
            Err(e.into())
        }
    }
}

/// `POST /api/v1/admin/tsdb/snapshot[?skip_head=true]`.
pub async fn snapshot(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if !s.admin_api {
        return Err(ApiError::new(
            ErrorType::Unavailable,
            "Admin APIs disabled (start with --web.enable-admin-api)",
        ));
    }
    let skip_head = match q.get("skip_head").map(String::as_str) {
        None | Some("") => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            ApiError::bad_data(format!(
                "unable to parse boolean 'skip_head' argument: {v:?}"
            ))
        })?,
    };
    let backend = s.backend()?;
    let name = tokio::task::spawn_blocking(move || backend.snapshot(skip_head)).await??;
    let mut data = String::from("{\"name\":");
    json::write_str(&mut data, &name);
    data.push('}');
    Ok(json_ok(&data, &[], &[]))
}

/// `POST /api/v1/admin/statsd/flush`: applies every StatsD line already
/// received and writes the current window now (deterministic tests, manual
/// checks). 204 once the flush is committed to storage.
pub async fn statsd_flush(State(s): State<AppState>) -> Result<StatusCode, ApiError> {
    if !s.admin_api {
        return Err(ApiError::new(
            ErrorType::Unavailable,
            "Admin APIs disabled (start with --web.enable-admin-api)",
        ));
    }
    let Some(h) = s.statsd().cloned() else {
        return Err(ApiError::new(
            ErrorType::Unavailable,
            "StatsD is not enabled (start with --statsd.listen-udp, --statsd.listen-tcp or --statsd.listen-unixgram)",
        ));
    };
    tokio::task::spawn_blocking(move || flush_retrying(&h)).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// Flush timestamps must increase. The background flusher stamps the
/// aligned boundary, which can be a few ms ahead of the clock, and two
/// forced flushes can fall in the same ms: wait out such a short gap
/// instead of failing the request.
fn flush_retrying(
    h: &crate::ingest::statsd::StatsdHandle,
) -> Result<(), crate::ingest::statsd::StatsdFlushError> {
    use crate::ingest::statsd::{FlushError, StatsdFlushError};
    let mut tries = 0;
    loop {
        match h.flush_now() {
            Err(StatsdFlushError::Window(FlushError::NotAfterPrevious { t, previous }))
                if tries < 3 && previous - t < 1000 =>
            {
                tries += 1;
                let gap = u64::try_from(previous - t + 1).unwrap_or(1);
                std::thread::sleep(std::time::Duration::from_millis(gap));
            }
            r => return r.map(|_| ()),
        }
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `GET /api/v1/status/buildinfo`.
pub async fn buildinfo() -> Response {
    let mut d = String::from("{\"version\":");
    json::write_str(&mut d, env!("CARGO_PKG_VERSION"));
    d.push_str(
        ",\"revision\":\"unknown\",\"branch\":\"unknown\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}",
    );
    json_ok(&d, &[], &[])
}

fn thread_count() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `GET /api/v1/status/runtimeinfo`, with Prometheus's field names; the Go
/// runtime fields are filled with their nearest equivalents (threads for
/// goroutines, available parallelism for `GOMAXPROCS`).
pub async fn runtimeinfo(State(s): State<AppState>) -> Response {
    let i = &s.info;
    let mut d = String::from("{\"startTime\":");
    json::write_str(&mut d, &format_rfc3339(i.start_time_ms));
    d.push_str(",\"CWD\":");
    json::write_str(&mut d, &i.cwd);
    // Rule reloads are this server's config reloads.
    let (ok, last) = s.reloader().map_or((true, i.last_config_time_ms), |r| {
        let st = r.status();
        (st.last_successful, st.last_success_ms)
    });
    d.push_str(&format!(
        ",\"reloadConfigSuccess\":{ok},\"lastConfigTime\":"
    ));
    json::write_str(&mut d, &format_rfc3339(last));
    let procs = std::thread::available_parallelism().map_or(1, |n| n.get());
    d.push_str(&format!(
        ",\"corruptionCount\":0,\"goroutineCount\":{},\"GOMAXPROCS\":{procs},\"GOMEMLIMIT\":{},\"GOGC\":\"\",\"GODEBUG\":\"\",\"storageRetention\":",
        thread_count(),
        i64::MAX
    ));
    json::write_str(&mut d, &i.storage_retention);
    d.push('}');
    json_ok(&d, &[], &[])
}

/// `GET /api/v1/metadata[?metric=x][&limit=n][&limit_per_metric=n]`:
/// metadata from `# TYPE`/`# HELP` lines seen on imports since start.
pub async fn metadata(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = parse_limit(q.get("limit").map(String::as_str), "limit")?;
    let metric = q.get("metric").filter(|m| !m.is_empty());
    let md = s.metadata.read();
    let mut d = String::from("{");
    let mut n = 0usize;
    for (name, m) in md.iter() {
        if metric.is_some_and(|want| want != name) {
            continue;
        }
        if limit.is_some_and(|l| n >= l) {
            break;
        }
        if n > 0 {
            d.push(',');
        }
        n += 1;
        json::write_str(&mut d, name);
        d.push_str(":[{\"type\":");
        json::write_str(&mut d, &m.kind);
        d.push_str(",\"help\":");
        json::write_str(&mut d, &m.help);
        d.push_str(",\"unit\":\"\"}]");
    }
    d.push('}');
    Ok(json_ok(&d, &[], &[]))
}

/// Parses a `limit` parameter: absent, empty or 0 mean no limit;
/// negatives are rejected like Prometheus does.
pub fn parse_limit(v: Option<&str>, name: &str) -> Result<Option<usize>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| ApiError::bad_param(name, format!("cannot parse {v:?} as integer")))?;
            if n < 0 {
                return Err(ApiError::bad_param(name, "limit must be non-negative"));
            }
            Ok((n > 0).then_some(n as usize))
        }
    }
}

/// Unknown routes: Prometheus answers with Go's plain-text 404, so do we.
pub async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "404 page not found\n")
}
