//! Denials shaped as Temporal's own frontend answers them, so SDKs and the CLI report a
//! permission error.

use base64::{Engine as _, engine::general_purpose::STANDARD_NO_PAD};
use bytes::Bytes;
use http::{HeaderValue, Response};
use prost::Message;
use temporalio_protos::{
    google::rpc::Status, temporal::api::errordetails::v1::PermissionDeniedFailure,
};
use warden_core::Protocol;
use warden_tower::rejection::{Code, DefaultResponder, Rejection, Respond, grpc_trailers_only};

/// The message Temporal's frontend sends with every authorization denial.
pub const UNAUTHORIZED: &str = "Request unauthorized.";

/// Answers gRPC denials as Temporal does: `PERMISSION_DENIED`, the message
/// `Request unauthorized.`, and a `temporal.api.errordetails.v1.PermissionDeniedFailure`
/// detail carrying Warden's reason in `grpc-status-details-bin`. Every other refusal is
/// answered as [`DefaultResponder`] answers it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemporalResponder;

impl Respond for TemporalResponder {
    fn respond(&self, rejection: &Rejection, protocol: Protocol) -> Response<Bytes> {
        if protocol != Protocol::Grpc
            || rejection.http_status().is_some()
            || rejection.code() != Code::PermissionDenied
        {
            return DefaultResponder.respond(rejection, protocol);
        }
        let mut response = grpc_trailers_only(Code::PermissionDenied, UNAUTHORIZED);
        let failure = PermissionDeniedFailure {
            reason: rejection.message().to_owned(),
        };
        let status = Status {
            code: Code::PermissionDenied.as_i32(),
            message: UNAUTHORIZED.to_owned(),
            details: vec![prost_wkt_types::Any {
                type_url:
                    "type.googleapis.com/temporal.api.errordetails.v1.PermissionDeniedFailure"
                        .to_owned(),
                value: failure.encode_to_vec(),
            }],
        };
        // Binary metadata travels base64-encoded; the alphabet is always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&STANDARD_NO_PAD.encode(status.encode_to_vec())) {
            response
                .headers_mut()
                .insert("grpc-status-details-bin", value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use warden_core::Decision;

    use super::*;

    #[test]
    fn a_denial_carries_temporals_message_and_a_permission_denied_failure() {
        let rejection = Rejection::denied(Decision::deny("roles", "needs the writer role"));
        let response = TemporalResponder.respond(&rejection, Protocol::Grpc);
        let headers = response.headers();
        assert_eq!(headers["grpc-status"], "7");
        assert_eq!(headers["grpc-message"], "Request unauthorized.");
        let details = STANDARD_NO_PAD
            .decode(headers["grpc-status-details-bin"].as_bytes())
            .unwrap();
        let status = Status::decode(details.as_slice()).unwrap();
        assert_eq!(status.code, 7);
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/temporal.api.errordetails.v1.PermissionDeniedFailure"
        );
        let failure = PermissionDeniedFailure::decode(status.details[0].value.as_slice()).unwrap();
        assert_eq!(failure.reason, rejection.message());
        assert!(
            failure.reason.contains("needs the writer role"),
            "{}",
            failure.reason
        );
    }

    #[test]
    fn other_refusals_are_answered_as_usual() {
        let rejection = Rejection::new(Code::Unauthenticated, "missing credentials");
        let response = TemporalResponder.respond(&rejection, Protocol::Grpc);
        assert_eq!(response.headers()["grpc-status"], "16");
        assert!(response.headers().get("grpc-status-details-bin").is_none());
    }
}
