//! What a refused call gets back, and how to change it.
//!
//! Every refusal is a [`Rejection`]: a gRPC [`Code`], a message that says what was wrong, and
//! the [`Decision`] behind it when a policy decided. A [`Respond`] turns it into a response;
//! [`DefaultResponder`] answers gRPC calls trailers-only (HTTP 200, `grpc-status`,
//! percent-encoded `grpc-message`, no body), as tonic's `Status::into_http` does, and plain HTTP
//! calls with the matching 4xx/5xx status and a small JSON body. Install another responder on
//! the classify layer to add, say, Temporal's error details.

use std::{borrow::Cow, fmt, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use warden_core::{Decision, Protocol};

/// gRPC status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The number sent in `grpc-status`.
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code for a `grpc-status` number; numbers gRPC does not define are `Unknown`, as
    /// gRPC clients read them.
    pub const fn from_i32(code: i32) -> Self {
        match code {
            0 => Self::Ok,
            1 => Self::Cancelled,
            3 => Self::InvalidArgument,
            4 => Self::DeadlineExceeded,
            5 => Self::NotFound,
            6 => Self::AlreadyExists,
            7 => Self::PermissionDenied,
            8 => Self::ResourceExhausted,
            9 => Self::FailedPrecondition,
            10 => Self::Aborted,
            11 => Self::OutOfRange,
            12 => Self::Unimplemented,
            13 => Self::Internal,
            14 => Self::Unavailable,
            15 => Self::DataLoss,
            16 => Self::Unauthenticated,
            _ => Self::Unknown,
        }
    }

    /// The HTTP status a plain HTTP caller gets for this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::Ok => StatusCode::OK,
            Self::InvalidArgument | Self::OutOfRange | Self::FailedPrecondition => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyExists | Self::Aborted => StatusCode::CONFLICT,
            Self::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unimplemented => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Self::Cancelled | Self::Unknown | Self::Internal | Self::DataLoss => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The snake-case name used in JSON answers and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
            Self::InvalidArgument => "invalid_argument",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::PermissionDenied => "permission_denied",
            Self::ResourceExhausted => "resource_exhausted",
            Self::FailedPrecondition => "failed_precondition",
            Self::Aborted => "aborted",
            Self::OutOfRange => "out_of_range",
            Self::Unimplemented => "unimplemented",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::DataLoss => "data_loss",
            Self::Unauthenticated => "unauthenticated",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused call: why, and how to answer it.
#[derive(Debug, Clone)]
pub struct Rejection {
    code: Code,
    message: Cow<'static, str>,
    http_status: Option<StatusCode>,
    decision: Option<Decision>,
}

impl Rejection {
    /// A rejection with a gRPC code and a message.
    // Cold: refusals are the rare path, and keeping their message formatting out of line
    // keeps the allowed path's code dense in the instruction cache.
    #[cold]
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            http_status: None,
            decision: None,
        }
    }

    /// A policy denied the call.
    pub fn denied(decision: Decision) -> Self {
        let message = match decision.reason() {
            Some(reason) => format!("permission denied: {reason}"),
            None => format!("permission denied by {}", decision.decider()),
        };
        Self::new(Code::PermissionDenied, message).with_decision(decision)
    }

    /// Answers plain HTTP callers (and gRPC calls no gRPC status fits, such as HTTP/1.1 or a
    /// non-gRPC content type) with this HTTP status instead of a gRPC status.
    #[must_use]
    pub fn with_http_status(mut self, status: StatusCode) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Attaches the decision that caused the rejection.
    #[must_use]
    pub fn with_decision(mut self, decision: Decision) -> Self {
        self.decision = Some(decision);
        self
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status forced for this rejection, if any.
    pub fn http_status(&self) -> Option<StatusCode> {
        self.http_status
    }

    /// The decision behind a policy denial.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Rejection {}

/// Turns a [`Rejection`] into the response the caller gets.
pub trait Respond: Send + Sync + 'static {
    /// Builds the response for `rejection` of a call that came in over `protocol`.
    fn respond(&self, rejection: &Rejection, protocol: Protocol) -> Response<Bytes>;
}

/// A shared responder.
pub type SharedResponder = Arc<dyn Respond>;

/// The default answers: trailers-only gRPC statuses and JSON HTTP errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultResponder;

impl Respond for DefaultResponder {
    fn respond(&self, rejection: &Rejection, protocol: Protocol) -> Response<Bytes> {
        match (protocol, rejection.http_status()) {
            (Protocol::Grpc, None) => grpc_trailers_only(rejection.code(), rejection.message()),
            (_, status) => json_error(
                status.unwrap_or_else(|| rejection.code().http_status()),
                rejection.code(),
                rejection.message(),
            ),
        }
    }
}

/// Characters gRPC requires percent-encoded in `grpc-message`: controls, non-ASCII and `%`.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

/// A trailers-only gRPC response: HTTP 200 whose headers carry the status, with no body.
pub fn grpc_trailers_only(code: Code, message: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    put_grpc_status(headers, code, message);
    response
}

/// `grpc-status` and `grpc-message` (percent-encoded as gRPC requires), for the trailers of a
/// response or a trailers-only answer; an `UNIMPLEMENTED` status names the encodings Warden
/// accepts too.
pub fn grpc_status(code: Code, message: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    put_grpc_status(&mut headers, code, message);
    headers
}

/// Writes [`grpc_status`] into `headers` (a denial's own response: no second map).
fn put_grpc_status(headers: &mut HeaderMap, code: Code, message: &str) {
    headers.insert("grpc-status", HeaderValue::from(code.as_i32()));
    let encoded = utf8_percent_encode(message, GRPC_MESSAGE).to_string();
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        headers.insert("grpc-message", value);
    }
    if code == Code::Unimplemented
        && let Ok(value) = HeaderValue::from_str(&crate::grpc::accepted_encodings())
    {
        headers.insert("grpc-accept-encoding", value);
    }
}

fn json_error(status: StatusCode, code: Code, message: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": code.as_str(), "message": message });
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_denial_is_trailers_only_with_percent_encoded_message() {
        let response = DefaultResponder.respond(
            &Rejection::new(Code::PermissionDenied, "100% not yours: é"),
            Protocol::Grpc,
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.body().is_empty());
        assert_eq!(response.headers()["grpc-status"], "7");
        assert_eq!(
            response.headers()["grpc-message"],
            "100%25 not yours: %C3%A9"
        );
        assert_eq!(response.headers()["content-type"], "application/grpc");
    }

    #[test]
    fn http_denial_is_json_with_the_matching_status() {
        let response = DefaultResponder.respond(
            &Rejection::new(Code::Unauthenticated, "missing credentials"),
            Protocol::Http,
        );
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"], "unauthenticated");
        assert_eq!(body["message"], "missing credentials");
    }

    #[test]
    fn a_forced_http_status_wins_even_for_grpc() {
        let rejection = Rejection::new(Code::InvalidArgument, "gRPC needs HTTP/2")
            .with_http_status(StatusCode::UPGRADE_REQUIRED);
        let response = DefaultResponder.respond(&rejection, Protocol::Grpc);
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
    }
}
