//! The push doors' HTTP handlers: Prometheus remote write
//! (`POST /api/v1/write`), the Pushgateway-compatible API and OTLP/HTTP
//! metrics. Decoding, validation and writing live in `crate::ingest`; this
//! file only reads requests, bounds concurrency, and shapes responses.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::error::{ApiError, ErrorType};
use super::state::{AppState, MetricSample};
use crate::ingest::pushgateway::PushStore;
use crate::ingest::remote_write::{
    self as rw, DecodeLimits, DoorMetrics, MetadataStore, Protocol, SeriesCache,
};

/// Limits and intervals of the push doors.
#[derive(Debug, Clone, PartialEq)]
pub struct PushConfig {
    /// Largest compressed remote write / OTLP / push body accepted, in bytes
    /// (default 64 MiB; axum's own 2 MiB default would refuse real senders).
    pub body_limit: usize,
    /// Decode limits for remote write (decompressed size, label sizes).
    pub decode: DecodeLimits,
    /// Remote write / OTLP requests decoded and written at once; beyond this
    /// a request is answered 429 with `Retry-After` so senders back off.
    pub max_concurrent_writes: usize,
    /// How often live push groups are re-sampled into storage.
    pub resample_interval: Duration,
    /// Series remembered by the remote write decode cache.
    pub series_cache: usize,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            body_limit: 64 << 20,
            decode: DecodeLimits::default(),
            max_concurrent_writes: 8,
            resample_interval: Duration::from_secs(15),
            series_cache: 200_000,
        }
    }
}

/// Shared state of the push doors.
pub struct PushState {
    /// Configuration.
    pub config: PushConfig,
    /// Remote write door counters.
    pub remote_write: DoorMetrics,
    /// Pushgateway door counters.
    pub pushgateway: DoorMetrics,
    /// OTLP door counters.
    pub otlp: DoorMetrics,
    /// Metadata received by remote write and OTLP.
    pub metadata: MetadataStore,
    cache: SeriesCache,
    writes: Arc<Semaphore>,
    otlp_receiver: crate::ingest::otlp::OtlpReceiver,
    store: OnceLock<Arc<PushStore>>,
}

impl PushState {
    /// State for `config`; the push group store is attached later with
    /// [`PushState::set_store`] (it lives in the data directory).
    pub fn new(config: PushConfig) -> Self {
        PushState {
            cache: SeriesCache::new(config.series_cache),
            writes: Arc::new(Semaphore::new(config.max_concurrent_writes.max(1))),
            remote_write: DoorMetrics::new(),
            pushgateway: DoorMetrics::new(),
            otlp: DoorMetrics::new(),
            metadata: MetadataStore::new(),
            otlp_receiver: crate::ingest::otlp::OtlpReceiver::new(Default::default()),
            store: OnceLock::new(),
            config,
        }
    }

    /// Makes the push group store available. A second call is ignored.
    pub fn set_store(&self, s: Arc<PushStore>) {
        let _ = self.store.set(s);
    }

    /// The push group store, or `unavailable` before storage is open.
    pub fn store(&self) -> Result<Arc<PushStore>, ApiError> {
        self.store.get().cloned().ok_or_else(ApiError::not_ready)
    }

    /// Takes a write slot, or answers 429 with `Retry-After`.
    fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.writes.clone().try_acquire_owned().map_err(|_| {
            ApiError::overloaded(format!(
                "too many concurrent writes (limit {}); retry later",
                self.config.max_concurrent_writes
            ))
        })
    }
}

impl Default for PushState {
    fn default() -> Self {
        Self::new(PushConfig::default())
    }
}

/// Reads the body or reports why not (413 when over the limit).
fn read_body(body: Result<Bytes, BytesRejection>, door: &DoorMetrics) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        door.record_failure(0);
        ApiError {
            typ: ErrorType::BadData,
            msg: format!("cannot read request body: {}", r.body_text()),
            status: Some(r.status()),
        }
    })
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Decompresses a gzip body, refusing more than `max` bytes of output.
fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut d = flate2::read::GzDecoder::new(body).take(max as u64 + 1);
    d.read_to_end(&mut out)
        .map_err(|e| ApiError::bad_data(format!("cannot gunzip request body: {e}")))?;
    if out.len() > max {
        return Err(ApiError {
            typ: ErrorType::BadData,
            msg: format!("gzip body decompresses to more than {max} bytes"),
            status: Some(StatusCode::PAYLOAD_TOO_LARGE),
        });
    }
    Ok(out)
}

/// `POST /api/v1/write`: Prometheus remote write 1.0 and 2.0.
///
/// 204 once every accepted sample is durable; 200 with a plain-text report
/// when some samples were refused one by one (too old, duplicates) while
/// the rest were kept; 400/413/415 for refused requests (nothing written);
/// 429 or 503 with `Retry-After` when overloaded or not ready.
pub async fn remote_write(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let p = s.push.clone();
    let body = read_body(body, &p.remote_write)?;
    let refuse = |e: ApiError| {
        p.remote_write.record_failure(0);
        e
    };
    let protocol = Protocol::from_content_type(header_str(&headers, header::CONTENT_TYPE))
        .map_err(|e| refuse(e.into()))?;
    let gzip = match header_str(&headers, header::CONTENT_ENCODING).map(str::trim) {
        None | Some("") => false,
        Some(e) if e.eq_ignore_ascii_case("snappy") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(e) => {
            return Err(refuse(ApiError {
                typ: ErrorType::BadData,
                msg: format!("unsupported Content-Encoding {e:?}: remote write bodies are snappy"),
                status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            }));
        }
    };
    let backend = s.backend()?;
    let permit = p
        .permit()
        .inspect_err(|_| p.remote_write.record_failure(0))?;
    let p2 = p.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let limits = &p2.config.decode;
        let written = if gzip {
            // Rare (Prometheus sends snappy): the general path, uncached.
            let raw = gunzip(&body, limits.max_decompressed_bytes)?;
            let batch = rw::decode_protobuf(protocol, &raw, limits).map_err(|e| {
                p2.remote_write.record_failure(0);
                ApiError::from(e)
            })?;
            let n = (batch.float_samples() + batch.histogram_samples()) as u64;
            let outcome = rw::apply(&batch, backend.appendable()).map_err(|e| {
                p2.remote_write.record_failure(n);
                ApiError::from(e)
            })?;
            rw::Written {
                outcome,
                metadata: batch.metadata,
            }
        } else {
            rw::write_cached(protocol, &body, limits, &p2.cache, backend.appendable()).map_err(
                |r| {
                    p2.remote_write.record_failure(r.samples);
                    ApiError::from(r.error)
                },
            )?
        };
        p2.metadata.record(&written.metadata);
        p2.remote_write.record_outcome(&written.outcome);
        Ok::<_, ApiError>(written.outcome)
    })
    .await??;
    let mut resp = if done.rejected.total() > 0 {
        (StatusCode::OK, done.report()).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if protocol == Protocol::V2 {
        let h = resp.headers_mut();
        h.insert(
            "X-Prometheus-Remote-Write-Samples-Written",
            HeaderValue::from(done.samples_written),
        );
        h.insert(
            "X-Prometheus-Remote-Write-Histograms-Written",
            HeaderValue::from(done.histograms_written),
        );
        h.insert(
            "X-Prometheus-Remote-Write-Exemplars-Written",
            HeaderValue::from(0u64),
        );
    }
    Ok(resp)
}

/// `GET /api/v1/metadata`: metadata from imports, remote write, OTLP and
/// push groups, merged per family (distinct entries side by side, as
/// Prometheus lists targets that disagree).
pub async fn metadata(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    use std::collections::BTreeMap;
    let limit = super::handlers::parse_limit(q.get("limit").map(String::as_str), "limit")?;
    let metric = q
        .get("metric")
        .filter(|m| !m.is_empty())
        .map(String::as_str);
    // family -> distinct (type, help, unit)
    let mut all: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    let mut add = |name: &str, e: (String, String, String)| {
        if metric.is_some_and(|m| m != name) {
            return;
        }
        let l = all.entry(name.to_string()).or_default();
        if !l.contains(&e) {
            l.push(e);
        }
    };
    for (name, m) in s.metadata.read().iter() {
        add(name, (m.kind.clone(), m.help.clone(), String::new()));
    }
    let mut pushed = s.push.metadata.query(metric, None);
    if let Ok(store) = s.push.store() {
        pushed.extend(store.metadata());
    }
    for m in pushed {
        add(
            &m.metric,
            (m.kind.as_str().to_string(), m.help.clone(), m.unit.clone()),
        );
    }
    // Written by hand to keep Prometheus's key order (type, help, unit).
    let mut d = String::from("{");
    for (i, (name, list)) in all
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .enumerate()
    {
        if i > 0 {
            d.push(',');
        }
        super::json::write_str(&mut d, &name);
        d.push_str(":[");
        for (j, (t, h, u)) in list.iter().enumerate() {
            if j > 0 {
                d.push(',');
            }
            d.push_str("{\"type\":");
            super::json::write_str(&mut d, t);
            d.push_str(",\"help\":");
            super::json::write_str(&mut d, h);
            d.push_str(",\"unit\":");
            super::json::write_str(&mut d, u);
            d.push('}');
        }
        d.push(']');
    }
    d.push('}');
    let body = super::json::success(&d, &[], &[]);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The doors' self-metrics for `/metrics` (read at scrape time).
pub fn door_metrics(p: &PushState) -> Vec<MetricSample> {
    let mut out = Vec::new();
    for (door, m) in [
        ("remote_write", &p.remote_write),
        ("pushgateway", &p.pushgateway),
        ("otlp", &p.otlp),
    ] {
        let snap = m.snapshot();
        let l = || vec![("door".to_string(), door.to_string())];
        let mut c = |name: &str, help: &str, labels, v: u64| {
            out.push(MetricSample {
                name: name.into(),
                labels,
                help: help.into(),
                counter: true,
                value: v as f64,
            })
        };
        c(
            "watchpost_push_requests",
            "Push requests received, by door.",
            l(),
            snap.requests,
        );
        c(
            "watchpost_push_requests_failed",
            "Push requests refused as a whole (nothing written), by door.",
            l(),
            snap.requests_failed,
        );
        c(
            "watchpost_push_samples_accepted",
            "Float samples made durable, by door.",
            l(),
            snap.samples_accepted,
        );
        c(
            "watchpost_push_histograms_accepted",
            "Histogram samples made durable, by door.",
            l(),
            snap.histograms_accepted,
        );
        for (reason, n) in &snap.rejected {
            let mut labels = l();
            labels.push(("reason".into(), (*reason).into()));
            c(
                "watchpost_push_samples_rejected",
                "Samples refused, by door and reason.",
                labels,
                *n,
            );
        }
    }
    out
}

/// Handles `PUT`/`POST`/`DELETE` on `/metrics/job/<job>{/<label>/<value>}`.
/// `raw_path` is the request path still percent-encoded, so `@base64`
/// segments and encoded slashes reach the grouping-key parser intact.
async fn push_group(
    s: AppState,
    method: Option<crate::ingest::pushgateway::PushMethod>,
    raw_path: String,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use crate::ingest::pushgateway::{GroupingKey, decode_body};
    let p = s.push.clone();
    let body = read_body(body, &p.pushgateway)?;
    let store = p.store()?;
    let ct = header_str(&headers, header::CONTENT_TYPE).map(str::to_string);
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || {
        let fail = |e: crate::ingest::pushgateway::PushError| {
            p2.pushgateway.record_failure(0);
            ApiError::from(e)
        };
        let key = GroupingKey::from_path(&raw_path).map_err(fail)?;
        match method {
            None => {
                store.delete(&key).map_err(fail)?;
                p2.pushgateway.record_ok(0, 0);
                Ok(StatusCode::ACCEPTED.into_response())
            }
            Some(m) => {
                let fams = decode_body(ct.as_deref(), &body).map_err(fail)?;
                let n: usize = fams.iter().map(|f| f.metrics.len()).sum();
                store.push(&key, m, fams).map_err(|e| {
                    p2.pushgateway.record_failure(n as u64);
                    ApiError::from(e)
                })?;
                p2.pushgateway.record_ok(n as u64, 0);
                Ok(StatusCode::OK.into_response())
            }
        }
    })
    .await?
}

/// `PUT /metrics/job/...`: replaces the whole group.
pub async fn push_put(
    State(s): State<AppState>,
    uri: axum::extract::OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use crate::ingest::pushgateway::PushMethod;
    push_group(
        s,
        Some(PushMethod::Put),
        uri.path().to_string(),
        headers,
        body,
    )
    .await
}

/// `POST /metrics/job/...`: replaces the pushed families of the group.
pub async fn push_post(
    State(s): State<AppState>,
    uri: axum::extract::OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use crate::ingest::pushgateway::PushMethod;
    push_group(
        s,
        Some(PushMethod::Post),
        uri.path().to_string(),
        headers,
        body,
    )
    .await
}

/// `DELETE /metrics/job/...`: removes the group (202, as Pushgateway).
pub async fn push_delete(
    State(s): State<AppState>,
    uri: axum::extract::OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    push_group(s, None, uri.path().to_string(), headers, Ok(Bytes::new())).await
}

/// `PUT /api/v1/admin/wipe`: deletes every push group (202).
pub async fn push_wipe(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.push.store()?;
    tokio::task::spawn_blocking(move || store.wipe()).await??;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn key_pairs(k: &crate::ingest::pushgateway::GroupingKey) -> Vec<(String, String)> {
    k.labels()
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

fn pg_value(v: f64) -> serde_json::Value {
    serde_json::Value::String(super::json::format_value(v))
}

fn pg_labels(pairs: &[(String, String)]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        m.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    serde_json::Value::Object(m)
}

/// A metric's labels as the Pushgateway lists them: it adds an empty
/// `instance` to every metric of a group without one (its exposition does
/// the same), so the listing does too. Storage never holds the empty label
/// (Prometheus drops empty labels when scraping with `honor_labels`), only
/// this listing shows it.
fn pg_metric_labels(pairs: &[(String, String)]) -> serde_json::Value {
    let mut v = pg_labels(pairs);
    if let serde_json::Value::Object(m) = &mut v {
        m.entry("instance")
            .or_insert_with(|| serde_json::Value::String(String::new()));
    }
    v
}

fn pg_family(
    kind: &str,
    help: &str,
    time_ms: i64,
    metrics: Vec<serde_json::Value>,
) -> serde_json::Value {
    serde_json::json!({
        "time_stamp": super::params::format_rfc3339(time_ms),
        "type": kind,
        "help": help,
        "metrics": metrics,
    })
}

/// `GET /api/v1/metrics`: the push groups in the Pushgateway's JSON shape.
pub async fn push_list(State(s): State<AppState>) -> Result<Response, ApiError> {
    use crate::ingest::pushgateway::PushedValue;
    let store = s.push.store()?;
    let mut groups = Vec::new();
    for g in store.list() {
        let mut o = serde_json::Map::new();
        o.insert("labels".into(), pg_labels(key_pairs(&g.key).as_slice()));
        o.insert(
            "last_push_successful".into(),
            serde_json::Value::Bool(g.last_push_successful()),
        );
        let gl = key_pairs(&g.key);
        for (name, help, ms) in [
            (
                "push_time_seconds",
                "Last Unix time when changing this group in the Pushgateway succeeded.",
                g.push_time_ms,
            ),
            (
                "push_failure_time_seconds",
                "Last Unix time when changing this group in the Pushgateway failed.",
                g.push_failure_time_ms,
            ),
        ] {
            let m = serde_json::json!({"labels": pg_metric_labels(&gl), "value": pg_value(ms as f64 / 1000.0)});
            o.insert(
                name.into(),
                pg_family("GAUGE", help, g.push_time_ms, vec![m]),
            );
        }
        for f in &g.families {
            let metrics = f
                .metrics
                .iter()
                .map(|m| {
                    let mut v = serde_json::Map::new();
                    v.insert("labels".into(), pg_metric_labels(&m.labels));
                    match &m.value {
                        PushedValue::Single(x) => {
                            v.insert("value".into(), pg_value(*x));
                        }
                        PushedValue::Summary {
                            count,
                            sum,
                            quantiles,
                        } => {
                            let q: serde_json::Map<_, _> = quantiles
                                .iter()
                                .map(|(q, x)| (super::json::format_value(*q), pg_value(*x)))
                                .collect();
                            v.insert("quantiles".into(), q.into());
                            v.insert("count".into(), pg_value(*count));
                            v.insert("sum".into(), pg_value(*sum));
                        }
                        PushedValue::Histogram {
                            count,
                            sum,
                            buckets,
                        } => {
                            let b: serde_json::Map<_, _> = buckets
                                .iter()
                                .map(|(le, x)| (super::json::format_value(*le), pg_value(*x)))
                                .collect();
                            v.insert("buckets".into(), b.into());
                            v.insert("count".into(), pg_value(*count));
                            v.insert("sum".into(), pg_value(*sum));
                        }
                    }
                    serde_json::Value::Object(v)
                })
                .collect();
            o.insert(
                f.name.clone(),
                pg_family(
                    &f.kind.as_str().to_ascii_uppercase(),
                    &f.help,
                    g.push_time_ms,
                    metrics,
                ),
            );
        }
        groups.push(serde_json::Value::Object(o));
    }
    let body = serde_json::json!({"status": "success", "data": groups}).to_string();
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Re-samples every live push group into storage every
/// `interval` until `stop` turns true, so pushed values stay visible to
/// queries and rules like a Pushgateway scraped by Prometheus.
pub async fn run_resampler(
    state: AppState,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let (Ok(store), Ok(backend)) = (state.push.store(), state.backend()) else {
            continue;
        };
        let now = state.clock.now_ms();
        let p = state.push.clone();
        let r = tokio::task::spawn_blocking(move || {
            store.resample(now, backend.appendable()).inspect(|o| {
                p.pushgateway.record_rejections(&o.rejected);
            })
        })
        .await;
        match r {
            Ok(Ok(o)) => tracing::debug!(
                groups = o.groups,
                samples = o.samples_written,
                "push groups re-sampled"
            ),
            Ok(Err(e)) => tracing::error!(error = %e, "push group re-sample failed"),
            Err(e) => tracing::error!(error = %e, "push group re-sample task failed"),
        }
    }
}

/// `POST /v1/metrics`: OTLP/HTTP metrics, protobuf or JSON (gzip bodies are
/// decompressed by the route's layer). Answers in the request's encoding.
pub async fn otlp_metrics(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use crate::ingest::otlp::{OtlpEncoding, response_body};
    let p = s.push.clone();
    let body = read_body(body, &p.otlp)?;
    let enc = OtlpEncoding::from_content_type(header_str(&headers, header::CONTENT_TYPE)).map_err(
        |e| {
            p.otlp.record_failure(0);
            ApiError::from(e)
        },
    )?;
    let backend = s.backend()?;
    let permit = p.permit().inspect_err(|_| p.otlp.record_failure(0))?;
    let p2 = p.clone();
    let out = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        match p2.otlp_receiver.ingest(enc, &body, backend.appendable()) {
            Ok((out, md)) => {
                p2.metadata.record(&md);
                p2.otlp.record_outcome(&out);
                Ok(out)
            }
            Err(e) => {
                p2.otlp.record_failure(0);
                Err(ApiError::from(e))
            }
        }
    })
    .await??;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, enc.content_type())],
        response_body(enc, &out),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_answers_429_with_retry_after() {
        let p = PushState::new(PushConfig {
            max_concurrent_writes: 1,
            ..PushConfig::default()
        });
        let held = p.permit().expect("first write slot");
        let e = p.permit().expect_err("second write must be refused");
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            resp.headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        drop(held);
        assert!(p.permit().is_ok(), "slot released");
    }

    #[test]
    fn door_metrics_list_every_door_and_reason() {
        let p = PushState::default();
        p.remote_write.record_failure(7);
        p.otlp.record_ok(3, 1);
        let m = door_metrics(&p);
        let find = |name: &str, door: &str, reason: Option<&str>| {
            m.iter()
                .find(|s| {
                    s.name == name
                        && s.labels.iter().any(|(k, v)| k == "door" && v == door)
                        && reason
                            .is_none_or(|r| s.labels.iter().any(|(k, v)| k == "reason" && v == r))
                })
                .map(|s| s.value)
        };
        assert_eq!(
            find(
                "watchpost_push_samples_rejected",
                "remote_write",
                Some("invalid_request")
            ),
            Some(7.0)
        );
        assert_eq!(
            find("watchpost_push_requests_failed", "remote_write", None),
            Some(1.0)
        );
        assert_eq!(
            find("watchpost_push_samples_accepted", "otlp", None),
            Some(3.0)
        );
        assert_eq!(
            find("watchpost_push_histograms_accepted", "otlp", None),
            Some(1.0)
        );
        assert_eq!(
            find("watchpost_push_requests", "pushgateway", None),
            Some(0.0)
        );
        assert!(m.iter().all(|s| s.counter));
    }

    #[test]
    fn remote_write_errors_map_to_4xx() {
        use crate::ingest::remote_write::RemoteWriteError;
        let e: ApiError = RemoteWriteError::UnsupportedContentType("text/plain".into()).into();
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let e: ApiError = RemoteWriteError::TooLarge {
            declared: 1 << 32,
            max: 64 << 20,
        }
        .into();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let e: ApiError = RemoteWriteError::Snappy {
            len: 3,
            reason: "corrupt input".into(),
        }
        .into();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.msg.contains("nothing written"), "{}", e.msg);
    }
}
