//! The PromQL side of the API: `query`, `query_range`, `series`, `labels`,
//! `label/<name>/values`, `status/tsdb`, `format_query`, `query_exemplars`.
//! Parameters come from the URL and, for POST, also from a form body, as in
//! Prometheus. Evaluation runs on the blocking pool.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorType};
use super::handlers::{json_ok, parse_limit};
use super::json;
use super::params::{MAX_TIME_MS, MIN_TIME_MS, parse_duration, parse_time};
use super::state::AppState;
use crate::ingest::text::float::format_f;
use crate::model::{Labels, Matcher};
use crate::promql::{self, Engine, EngineOptions, EvalError, EvalResult, Value};
use crate::storage::SelectHints;

/// Prometheus's limit on points per series in a range query.
const MAX_POINTS: i64 = 11_000;

/// Limits and defaults for the query API.
#[derive(Debug, Clone, Default)]
pub struct QueryConfig {
    /// Engine options; `timeout` is the default and the cap for requests'
    /// own `timeout` parameter.
    pub engine: EngineOptions,
}

impl From<EvalError> for ApiError {
    fn from(e: EvalError) -> Self {
        let typ = match &e {
            EvalError::BadData(_) => ErrorType::BadData,
            EvalError::Timeout(_) => ErrorType::Timeout,
            EvalError::Storage(_) => ErrorType::Internal,
            _ => ErrorType::Execution,
        };
        ApiError::new(typ, e.to_string())
    }
}

/// Request parameters from the URL query and, for form POSTs, the body.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Collects parameters; the body counts only for
    /// `application/x-www-form-urlencoded`.
    pub fn new(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut v = decode_form(query.unwrap_or(""));
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            // Body parameters first, as Go's `r.Form` lists them.
            let mut b = decode_form(&String::from_utf8_lossy(body));
            b.append(&mut v);
            v = b;
        }
        Params(v)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
pub fn decode_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(v) => parse_time(v).map_err(|e| ApiError::bad_param(name, e)),
    }
}

fn required_time(p: &Params, name: &str) -> Result<i64, ApiError> {
    parse_time(p.get(name).unwrap_or("")).map_err(|e| ApiError::bad_param(name, e))
}

/// The engine for this request: the configured one, with the request's
/// `timeout` if given and smaller.
fn engine_for(s: &AppState, p: &Params) -> Result<Engine, ApiError> {
    let mut opts = s.query.engine.clone();
    if let Some(t) = p.get("timeout").filter(|t| !t.is_empty()) {
        let ms = parse_duration(t).map_err(|e| ApiError::bad_param("timeout", e))?;
        if ms <= 0 {
            return Err(ApiError::bad_param(
                "timeout",
                format!("timeout must be positive, got {t:?}"),
            ));
        }
        opts.timeout = opts.timeout.min(Duration::from_millis(ms as u64));
    }
    Ok(Engine::new(opts))
}

fn parse_query(p: &Params) -> Result<promql::ast::Expr, ApiError> {
    promql::parse(p.get("query").unwrap_or("")).map_err(|e| ApiError::bad_param("query", e))
}

/// Renders `{"resultType":...,"result":...}`.
pub fn render_value(v: &Value) -> String {
    let mut out = String::with_capacity(estimated_len(v));
    render_value_into(&mut out, v);
    out
}

/// Bytes the rendering of `v` is expected to take (a little above the
/// typical size, so large matrices are written without reallocating):
/// labels plus about 32 bytes per point.
fn estimated_len(v: &Value) -> usize {
    let labels = |l: &Labels| {
        l.iter()
            .map(|x| x.name.len() + x.value.len() + 6)
            .sum::<usize>()
            + 2
    };
    64 + match v {
        Value::Scalar { .. } => 48,
        Value::String { s, .. } => 48 + s.len() * 2,
        Value::Vector(samples) => samples.iter().map(|s| labels(&s.labels) + 64).sum(),
        Value::Matrix(series) => series
            .iter()
            .map(|s| labels(&s.labels) + 24 + s.samples.len() * 34)
            .sum(),
    }
}

/// Appends `{"resultType":...,"result":...}` to `out`.
pub fn render_value_into(out: &mut String, v: &Value) {
    out.push_str("{\"resultType\":\"");
    out.push_str(v.type_name());
    out.push_str("\",\"result\":");
    match v {
        // Prometheus marshals scalars and strings with encoding/json: the
        // timestamp is a plain float64 and the value always uses 'f'.
        Value::Scalar { t, v } => {
            out.push('[');
            json::write_go_json_float(out, *t as f64 / 1000.0);
            out.push_str(",\"");
            out.push_str(&format_f(*v));
            out.push_str("\"]");
        }
        Value::String { t, s } => {
            out.push('[');
            json::write_go_json_float(out, *t as f64 / 1000.0);
            out.push(',');
            json::write_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                json::write_labels(out, &s.labels);
                out.push_str(",\"value\":");
                json::write_point(out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                json::write_labels(out, &s.labels);
                out.push_str(",\"values\":[");
                for (j, p) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    json::write_point(out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// The whole success body of a query result, written into one pre-sized
/// buffer (envelope, data, annotations): the same bytes as
/// `json::success(&render_value(..), ..)` without the intermediate copy.
pub fn render_result(r: &EvalResult) -> String {
    let extra: usize = r.warnings.iter().chain(&r.infos).map(|w| w.len() + 8).sum();
    let mut out = String::with_capacity(estimated_len(&r.value) + extra + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    render_value_into(&mut out, &r.value);
    if !r.warnings.is_empty() {
        out.push_str(",\"warnings\":");
        json::write_str_array(&mut out, &r.warnings);
    }
    if !r.infos.is_empty() {
        out.push_str(",\"infos\":");
        json::write_str_array(&mut out, &r.infos);
    }
    out.push('}');
    out
}

/// A rendered success body as an `application/json` response.
fn body_response(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `GET|POST /api/v1/query`.
pub async fn instant(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q.as_deref(), &headers, &body);
    let t = time_param(&p, "time", s.clock.now_ms())?;
    let engine = engine_for(&s, &p)?;
    let expr = parse_query(&p)?;
    let backend = s.backend()?;
    // Rendering (tens of MB for large results) also runs on the blocking
    // pool, not on the async workers.
    let body = tokio::task::spawn_blocking(move || {
        engine
            .instant(backend.querier(), &expr, t)
            .map(|r| render_result(&r))
    })
    .await??;
    Ok(body_response(body))
}

/// `GET|POST /api/v1/query_range`.
pub async fn range(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q.as_deref(), &headers, &body);
    let start = required_time(&p, "start")?;
    let end = required_time(&p, "end")?;
    if end < start {
        return Err(ApiError::bad_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step =
        parse_duration(p.get("step").unwrap_or("")).map_err(|e| ApiError::bad_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::bad_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let engine = engine_for(&s, &p)?;
    let expr = parse_query(&p)?;
    let backend = s.backend()?;
    let body = tokio::task::spawn_blocking(move || {
        engine
            .range(backend.querier(), &expr, start, end, step)
            .map(|r| render_result(&r))
    })
    .await??;
    Ok(body_response(body))
}

/// Parses every `match[]` into matcher sets, as Prometheus validates them.
fn match_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]")
        .into_iter()
        .map(|m| {
            let ms =
                promql::parse_metric_selector(m).map_err(|e| ApiError::bad_data(e.to_string()))?;
            if ms.iter().all(Matcher::matches_empty) {
                return Err(ApiError::bad_data(
                    "match[] must contain at least one non-empty matcher",
                ));
            }
            Ok(ms)
        })
        .collect()
}

fn range_hints(p: &Params) -> Result<SelectHints, ApiError> {
    let mut h = SelectHints::range(
        time_param(p, "start", MIN_TIME_MS)?,
        time_param(p, "end", MAX_TIME_MS)?,
    );
    h.labels_only = true;
    Ok(h)
}

fn truncated(n: usize, limit: Option<usize>) -> Vec<String> {
    if limit.is_some_and(|l| n > l) {
        vec!["results truncated due to limit".to_string()]
    } else {
        Vec::new()
    }
}

/// `GET|POST /api/v1/series`.
pub async fn series(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q.as_deref(), &headers, &body);
    let sets = match_sets(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let hints = range_hints(&p)?;
    let limit = parse_limit(p.get("limit"), "limit")?;
    let backend = s.backend()?;
    let all = tokio::task::spawn_blocking(move || -> Result<BTreeSet<Labels>, ApiError> {
        let mut all = BTreeSet::new();
        for ms in &sets {
            for series in backend.querier().select(&hints, ms)? {
                all.insert(series.labels);
            }
        }
        Ok(all)
    })
    .await??;
    let warnings = truncated(all.len(), limit);
    let mut d = String::from("[");
    for (i, l) in all.iter().take(limit.unwrap_or(usize::MAX)).enumerate() {
        if i > 0 {
            d.push(',');
        }
        json::write_labels(&mut d, l);
    }
    d.push(']');
    Ok(json_ok(&d, &warnings, &[]))
}

/// `GET|POST /api/v1/labels`.
pub async fn labels(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q.as_deref(), &headers, &body);
    let sets = match_sets(&p)?;
    let hints = range_hints(&p)?;
    let limit = parse_limit(p.get("limit"), "limit")?;
    let backend = s.backend()?;
    let names = tokio::task::spawn_blocking(move || -> Result<Vec<String>, ApiError> {
        if sets.is_empty() {
            return Ok(backend.querier().label_names(&hints, &[])?);
        }
        let mut all = BTreeSet::new();
        for ms in &sets {
            all.extend(backend.querier().label_names(&hints, ms)?);
        }
        Ok(all.into_iter().collect())
    })
    .await??;
    string_list(names, limit)
}

fn string_list(mut items: Vec<String>, limit: Option<usize>) -> Result<Response, ApiError> {
    let warnings = truncated(items.len(), limit);
    if let Some(l) = limit {
        items.truncate(l);
    }
    let mut d = String::new();
    json::write_str_array(&mut d, &items);
    Ok(json_ok(&d, &warnings, &[]))
}

/// `GET /api/v1/label/<name>/values`.
pub async fn label_values(
    State(s): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::new(q.as_deref(), &HeaderMap::new(), b"");
    if name.is_empty() {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = match_sets(&p)?;
    let hints = range_hints(&p)?;
    let limit = parse_limit(p.get("limit"), "limit")?;
    let backend = s.backend()?;
    let values = tokio::task::spawn_blocking(move || -> Result<Vec<String>, ApiError> {
        if sets.is_empty() {
            return Ok(backend.querier().label_values(&name, &hints, &[])?);
        }
        let mut all = BTreeSet::new();
        for ms in &sets {
            all.extend(backend.querier().label_values(&name, &hints, ms)?);
        }
        Ok(all.into_iter().collect())
    })
    .await??;
    string_list(values, limit)
}

/// `GET|POST /api/v1/format_query`.
pub async fn format_query(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q.as_deref(), &headers, &body);
    let expr = parse_query(&p)?;
    let mut d = String::new();
    json::write_str(&mut d, &expr.to_string());
    Ok(json_ok(&d, &[], &[]))
}

/// `GET|POST /api/v1/query_exemplars`: watchpost stores no exemplars, so
/// a valid request gets an empty list (Grafana asks for them).
pub async fn query_exemplars(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::new(q.as_deref(), &headers, &body);
    parse_query(&p)?;
    Ok(json_ok("[]", &[], &[]))
}

/// Top `limit` entries of a count map, largest first, ties by name.
fn top(m: HashMap<String, u64>, limit: usize) -> String {
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = String::from("[");
    for (i, (name, value)) in v.into_iter().take(limit).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json::write_str(&mut out, &name);
        out.push_str(&format!(",\"value\":{value}}}"));
    }
    out.push(']');
    out
}

/// `GET /api/v1/status/tsdb[?limit=n]`: head statistics and the top
/// cardinality contributors over the head's time range.
pub async fn status_tsdb(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::new(q.as_deref(), &HeaderMap::new(), b"");
    let limit = parse_limit(p.get("limit"), "limit")?.unwrap_or(10);
    let backend = s.backend()?;
    let data = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let hs = backend.head_stats();
        let (min_t, max_t) = (hs.min_time.unwrap_or(i64::MAX), hs.max_time.unwrap_or(i64::MIN));
        let mut hints = SelectHints::range(min_t, max_t);
        hints.labels_only = true;
        let all = Matcher::new(crate::model::MatchOp::RegexMatch, crate::model::METRIC_NAME, ".+")
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let series = if hs.min_time.is_some() {
            backend.querier().select(&hints, &[all])?
        } else {
            Vec::new()
        };
        let stats = Cardinality::of(series.iter().map(|s| &s.labels));
        let mut d = format!(
            "{{\"headStats\":{{\"numSeries\":{},\"numLabelPairs\":{},\"chunkCount\":{},\"minTime\":{min_t},\"maxTime\":{max_t}}}",
            hs.num_series,
            stats.pairs.len(),
            hs.chunk_count
        );
        d.push_str(",\"seriesCountByMetricName\":");
        d.push_str(&top(stats.by_metric, limit));
        d.push_str(",\"labelValueCountByLabelName\":");
        d.push_str(&top(stats.values_by_name, limit));
        d.push_str(",\"memoryInBytesByLabelName\":");
        d.push_str(&top(stats.bytes_by_name, limit));
        d.push_str(",\"seriesCountByLabelValuePair\":");
        d.push_str(&top(stats.pairs, limit));
        d.push('}');
        Ok(d)
    })
    .await??;
    Ok(json_ok(&data, &[], &[]))
}

/// Cardinality counts over a set of series.
#[derive(Debug, Default)]
pub struct Cardinality {
    /// Series per metric name.
    pub by_metric: HashMap<String, u64>,
    /// Distinct values per label name.
    pub values_by_name: HashMap<String, u64>,
    /// Bytes of distinct values per label name.
    pub bytes_by_name: HashMap<String, u64>,
    /// Series per `name=value` pair.
    pub pairs: HashMap<String, u64>,
}

impl Cardinality {
    /// Counts over `series`.
    pub fn of<'a>(series: impl Iterator<Item = &'a Labels>) -> Self {
        let mut c = Cardinality::default();
        let mut distinct: BTreeMap<Arc<str>, BTreeSet<Arc<str>>> = BTreeMap::new();
        for l in series {
            if let Some(n) = l.metric_name() {
                *c.by_metric.entry(n.to_string()).or_default() += 1;
            }
            for lab in l.iter() {
                *c.pairs
                    .entry(format!("{}={}", lab.name, lab.value))
                    .or_default() += 1;
                distinct
                    .entry(lab.name.clone())
                    .or_default()
                    .insert(lab.value.clone());
            }
        }
        for (name, values) in distinct {
            c.values_by_name
                .insert(name.to_string(), values.len() as u64);
            c.bytes_by_name.insert(
                name.to_string(),
                values.iter().map(|v| v.len() as u64).sum(),
            );
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_errors_map_to_prometheus_classes() {
        let cases = [
            (EvalError::BadData("x".into()), ErrorType::BadData, 400),
            (EvalError::Execution("x".into()), ErrorType::Execution, 422),
            (
                EvalError::Timeout("query execution"),
                ErrorType::Timeout,
                503,
            ),
            (
                EvalError::TooManySamples("eval", 5),
                ErrorType::Execution,
                422,
            ),
            (EvalError::TooManySeries(5), ErrorType::Execution, 422),
            (
                EvalError::Storage(crate::storage::StorageError::Other("disk".into())),
                ErrorType::Internal,
                500,
            ),
        ];
        for (e, typ, code) in cases {
            let a: ApiError = e.into();
            assert_eq!((a.typ, a.status().as_u16()), (typ, code), "{}", a.msg);
        }
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            decode_form("query=up%7Ba%3D%22b+c%22%7D&match[]=x&match%5B%5D=y&bad=%zz&flag"),
            vec![
                ("query".into(), "up{a=\"b c\"}".into()),
                ("match[]".into(), "x".into()),
                ("match[]".into(), "y".into()),
                ("bad".into(), "%zz".into()),
                ("flag".into(), "".into()),
            ]
        );
    }

    #[test]
    fn cardinality_counts() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "bb")]);
        let c = Cardinality::of([&a, &b].into_iter());
        assert_eq!(c.by_metric.get("up"), Some(&2));
        assert_eq!(c.values_by_name.get("job"), Some(&2));
        assert_eq!(c.bytes_by_name.get("job"), Some(&3));
        assert_eq!(c.pairs.get("__name__=up"), Some(&2));
        assert_eq!(top(c.pairs, 1), r#"[{"name":"__name__=up","value":2}]"#);
    }
}
