//! `watchpost query` and `watchpost query range`: ask a running server over
//! HTTP and print the result as a table.
//!
//! Instant vectors print one row per series (`SERIES  VALUE`); matrices
//! print each series' label set followed by its `TIME  VALUE` rows; scalars
//! and strings print on one line. Times are RFC 3339 UTC.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value as Json;

use super::client::{ClientError, form, request};
use crate::http::params::format_rfc3339;
use crate::http::paths;

/// Why a query command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The server could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server answered with an API error.
    #[error("server answered {status} ({error_type}): {msg}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Prometheus `errorType`.
        error_type: String,
        /// The error text.
        msg: String,
    },
    /// The answer was not the JSON we expect.
    #[error("unexpected response from server: {0}")]
    BadResponse(String),
}

/// What to ask.
#[derive(Debug, Clone)]
pub enum QueryRequest {
    /// `/api/v1/query` at `time` (server's now when `None`).
    Instant {
        /// PromQL.
        expr: String,
        /// RFC 3339 or Unix seconds.
        time: Option<String>,
    },
    /// `/api/v1/query_range`.
    Range {
        /// PromQL.
        expr: String,
        /// RFC 3339 or Unix seconds.
        start: String,
        /// RFC 3339 or Unix seconds.
        end: String,
        /// Duration (`15s`) or seconds.
        step: String,
    },
}

/// Runs the query against `server` (`http://host:port`) and returns the
/// rendered table.
pub fn run(server: &str, req: &QueryRequest, timeout: Duration) -> Result<String, QueryError> {
    let (path, body) = match req {
        QueryRequest::Instant { expr, time } => {
            let mut p = vec![("query", expr.as_str())];
            if let Some(t) = time {
                p.push(("time", t.as_str()));
            }
            (paths::QUERY, form(&p))
        }
        QueryRequest::Range {
            expr,
            start,
            end,
            step,
        } => (
            paths::QUERY_RANGE,
            form(&[
                ("query", expr.as_str()),
                ("start", start.as_str()),
                ("end", end.as_str()),
                ("step", step.as_str()),
            ]),
        ),
    };
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let resp = request(
        "POST",
        &url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
        timeout,
    )?;
    let json: Json = serde_json::from_slice(&resp.body).map_err(|e| {
        QueryError::BadResponse(format!(
            "HTTP {} with a non-JSON body ({e}): {}",
            resp.status,
            resp.text()
        ))
    })?;
    if json.get("status").and_then(Json::as_str) != Some("success") {
        return Err(QueryError::Api {
            status: resp.status,
            error_type: json
                .get("errorType")
                .and_then(Json::as_str)
                .unwrap_or("unknown")
                .to_string(),
            msg: json
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string(),
        });
    }
    let mut out = render(json.get("data").unwrap_or(&Json::Null))?;
    for key in ["warnings", "infos"] {
        if let Some(ws) = json.get(key).and_then(Json::as_array) {
            for w in ws {
                let _ = writeln!(
                    out,
                    "{}: {}",
                    &key[..key.len() - 1],
                    w.as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(out)
}

fn bad(what: &str) -> QueryError {
    QueryError::BadResponse(what.to_string())
}

/// `{a="b", c="d"}` with the metric name in front, like PromQL prints it.
fn series_name(metric: &Json) -> String {
    let Some(obj) = metric.as_object() else {
        return "{}".to_string();
    };
    let name = obj.get("__name__").and_then(Json::as_str).unwrap_or("");
    let rest: Vec<String> = obj
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", Json::String(v.as_str().unwrap_or("").to_string())))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// (time, value) from `[1234.5, "1"]`.
fn point(p: &Json) -> Result<(String, String), QueryError> {
    let a = p.as_array().ok_or_else(|| bad("sample is not an array"))?;
    let t = a
        .first()
        .and_then(Json::as_f64)
        .ok_or_else(|| bad("sample without a timestamp"))?;
    let v = a
        .get(1)
        .and_then(Json::as_str)
        .ok_or_else(|| bad("sample without a value"))?;
    Ok((format_rfc3339((t * 1000.0).round() as i64), v.to_string()))
}

/// Renders `{"resultType":..., "result":...}` as a table.
pub fn render(data: &Json) -> Result<String, QueryError> {
    let kind = data
        .get("resultType")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("no resultType"))?;
    let result = data.get("result").ok_or_else(|| bad("no result"))?;
    let mut out = String::new();
    match kind {
        "scalar" | "string" => {
            let (t, v) = point(result)?;
            let _ = writeln!(out, "{kind}: {v} @ {t}");
        }
        "vector" => {
            let rows = result
                .as_array()
                .ok_or_else(|| bad("vector is not an array"))?;
            let mut table = vec![(
                "SERIES".to_string(),
                "VALUE".to_string(),
                "TIME".to_string(),
            )];
            for r in rows {
                let (t, v) = point(
                    r.get("value")
                        .ok_or_else(|| bad("vector sample without value"))?,
                )?;
                table.push((series_name(r.get("metric").unwrap_or(&Json::Null)), v, t));
            }
            let w0 = table.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
            let w1 = table.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
            for (s, v, t) in &table {
                let _ = writeln!(out, "{s:<w0$}  {v:<w1$}  {t}");
            }
            if rows.is_empty() {
                out.push_str("(empty result)\n");
            }
        }
        "matrix" => {
            let series = result
                .as_array()
                .ok_or_else(|| bad("matrix is not an array"))?;
            for s in series {
                let _ = writeln!(
                    out,
                    "{}",
                    series_name(s.get("metric").unwrap_or(&Json::Null))
                );
                let values = s
                    .get("values")
                    .and_then(Json::as_array)
                    .ok_or_else(|| bad("matrix series without values"))?;
                for p in values {
                    let (t, v) = point(p)?;
                    let _ = writeln!(out, "  {t}  {v}");
                }
            }
            if series.is_empty() {
                out.push_str("(empty result)\n");
            }
        }
        other => return Err(bad(&format!("unknown resultType {other:?}"))),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        let v: Json = serde_json::from_str(
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1.5,"1"]},{"metric":{},"value":[1.5,"NaN"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            render(&v).unwrap(),
            "SERIES       VALUE  TIME\nup{job=\"a\"}  1      1970-01-01T00:00:01.500Z\n{}           NaN    1970-01-01T00:00:01.500Z\n"
        );
        let m: Json = serde_json::from_str(
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up"},"values":[[0,"1"],[60,"2"]]}]}"#,
        )
        .unwrap();
        assert_eq!(
            render(&m).unwrap(),
            "up\n  1970-01-01T00:00:00Z  1\n  1970-01-01T00:01:00Z  2\n"
        );
        let s: Json = serde_json::from_str(r#"{"resultType":"scalar","result":[2,"3"]}"#).unwrap();
        assert_eq!(render(&s).unwrap(), "scalar: 3 @ 1970-01-01T00:00:02Z\n");
        assert!(render(&serde_json::json!({"resultType":"x","result":[]})).is_err());
    }
}
