//! The one place that maps errors to HTTP statuses and Prometheus's
//! `errorType`s. Handlers return [`ApiError`]; every module error converts
//! into it here and nowhere else.
//!
//! | errorType     | status | used for                                        |
//! |---------------|--------|-------------------------------------------------|
//! | `bad_data`    | 400    | bad parameters, unparsable query or import body |
//! | `bad_data`    | 413    | import body larger than the configured limit    |
//! | `execution`   | 422    | query failed while running, limits exceeded     |
//! | `canceled`    | 499    | the client went away                            |
//! | `timeout`     | 503    | query ran past its timeout                      |
//! | `unavailable` | 503    | not ready yet (WAL replay), shutting down, admin APIs disabled, StatsD off |
//! | `not_found`   | 404    | unknown route                                   |
//! | `bad_data`    | 415    | push body in an unsupported content type/encoding |
//! | `unavailable` | 429    | too many concurrent pushes (with `Retry-After`) |
//! | `internal`    | 500    | storage I/O failure, corruption, bugs           |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::json;
use crate::ingest::otlp::OtlpError;
use crate::ingest::pushgateway::PushError;
use crate::ingest::remote_write::RemoteWriteError;
use crate::ingest::statsd::StatsdFlushError;
use crate::ingest::text::ImportError;
use crate::storage::StorageError;

/// Prometheus's error classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `bad_data`
    BadData,
    /// `execution`
    Execution,
    /// `canceled`
    Canceled,
    /// `timeout`
    Timeout,
    /// `unavailable`
    Unavailable,
    /// `not_found`
    NotFound,
    /// `internal`
    Internal,
}

impl ErrorType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Canceled => "canceled",
            ErrorType::Timeout => "timeout",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::Internal => "internal",
        }
    }

    /// The HTTP status Prometheus uses for this class.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            // Nginx's "client closed request", as Prometheus uses.
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API failure: class, message and (rarely) a status other than the
/// class's default.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The class.
    pub typ: ErrorType,
    /// The message shown to the client.
    pub msg: String,
    /// Overrides [`ErrorType::status`] (413 for oversized bodies).
    pub status: Option<StatusCode>,
}

impl ApiError {
    /// An error of class `typ`.
    pub fn new(typ: ErrorType, msg: impl Into<String>) -> Self {
        ApiError {
            typ,
            msg: msg.into(),
            status: None,
        }
    }

    /// `bad_data`.
    pub fn bad_data(msg: impl Into<String>) -> Self {
        Self::new(ErrorType::BadData, msg)
    }

    /// `bad_data` for a named parameter, worded like Prometheus.
    pub fn bad_param(name: &str, msg: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {msg}"))
    }

    /// `unavailable`: storage not open yet (WAL replay) or already closed.
    pub fn not_ready() -> Self {
        Self::new(
            ErrorType::Unavailable,
            "storage is not ready: the write-ahead log is still being replayed",
        )
    }

    /// `unavailable` with 429 Too Many Requests: the push doors are at their
    /// concurrency limit; sent with `Retry-After`.
    pub fn overloaded(msg: impl Into<String>) -> Self {
        ApiError {
            typ: ErrorType::Unavailable,
            msg: msg.into(),
            status: Some(StatusCode::TOO_MANY_REQUESTS),
        }
    }

    /// `internal`, for failures that are our fault.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, msg)
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.typ.status())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.typ.as_str(), self.msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json::error(self.typ.as_str(), &self.msg);
        let status = self.status();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // Senders (Prometheus remote write, OTLP exporters) back off and
        // retry instead of dropping data when told when to come back.
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Closed => ApiError::new(ErrorType::Unavailable, e.to_string()),
            StorageError::LimitExceeded(_) => ApiError::new(ErrorType::Execution, e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Parse(p) => ApiError::bad_data(format!("cannot parse import body: {p}")),
            ImportError::Rejected { .. } => {
                ApiError::bad_data(format!("import rejected, nothing written: {e}"))
            }
            ImportError::Storage(s) => s.into(),
            // `ImportError` is non-exhaustive; anything new is a server fault
            // until it is classified here.
            #[allow(unreachable_patterns)]
            other => ApiError::internal(other.to_string()),
        }
    }
}

fn with_status(mut e: ApiError, status: StatusCode) -> ApiError {
    e.status = Some(status);
    e
}

impl From<RemoteWriteError> for ApiError {
    fn from(e: RemoteWriteError) -> Self {
        match e {
            RemoteWriteError::UnsupportedContentType(_) => with_status(
                ApiError::bad_data(e.to_string()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            RemoteWriteError::TooLarge { .. } => with_status(
                ApiError::bad_data(e.to_string()),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            RemoteWriteError::Storage(s) => {
                let mut a = ApiError::from(s);
                a.msg = format!(
                    "cannot commit remote write batch, nothing written: {}",
                    a.msg
                );
                a
            }
            other => ApiError::bad_data(format!("remote write refused, nothing written: {other}")),
        }
    }
}

impl From<PushError> for ApiError {
    fn from(e: PushError) -> Self {
        match e {
            PushError::BadPath { .. } | PushError::BadBody { .. } | PushError::Inconsistent(_) => {
                ApiError::bad_data(format!("push refused, nothing changed: {e}"))
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<StatsdFlushError> for ApiError {
    fn from(e: StatsdFlushError) -> Self {
        match e {
            StatsdFlushError::Storage(s) => s.into(),
            StatsdFlushError::WorkerTimeout(_) => ApiError::new(ErrorType::Timeout, e.to_string()),
            StatsdFlushError::Stopped => ApiError::new(ErrorType::Unavailable, e.to_string()),
            // Flush times must increase; the handler already retried.
            StatsdFlushError::Window(_) => ApiError::new(ErrorType::Execution, e.to_string()),
            #[allow(unreachable_patterns)]
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<OtlpError> for ApiError {
    fn from(e: OtlpError) -> Self {
        match e {
            OtlpError::UnsupportedContentType(_) => with_status(
                ApiError::bad_data(e.to_string()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            OtlpError::Write(w) => w.into(),
            other => ApiError::bad_data(format!("OTLP request refused, nothing written: {other}")),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("bug: request worker failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::text::parse;

    #[test]
    fn statuses_follow_prometheus() {
        let cases = [
            (ErrorType::BadData, 400),
            (ErrorType::Execution, 422),
            (ErrorType::Canceled, 499),
            (ErrorType::Timeout, 503),
            (ErrorType::Unavailable, 503),
            (ErrorType::NotFound, 404),
            (ErrorType::Internal, 500),
        ];
        for (t, code) in cases {
            assert_eq!(t.status().as_u16(), code, "{}", t.as_str());
        }
    }

    #[test]
    fn import_errors_map() {
        let e: ApiError = ImportError::from(parse("x{").unwrap_err()).into();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.msg.contains("line 1:3"), "{}", e.msg);
        let e: ApiError = ImportError::Storage(StorageError::Closed).into();
        assert_eq!(e.typ, ErrorType::Unavailable);
    }
}
