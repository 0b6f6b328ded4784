//! Malformed and hostile gRPC requests, sent raw over HTTP/2 to a tonic server behind Warden:
//! each is refused with the right status and a message that says what was wrong, and none
//! reaches a handler.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use support::*;
use warden_example::{path, policies::demo_layer};

const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNIMPLEMENTED: i32 = 12;

/// Sends `request` (built for the server's address) and checks no handler ran.
async fn refused(
    build: impl FnOnce(std::net::SocketAddr) -> http::Request<Full<Bytes>>,
) -> RawResponse {
    let (addr, log) = serve(demo_layer()).await;
    let response = raw(build(addr), true).await;
    assert!(log.is_empty(), "a handler ran: {:?}", log.calls());
    response
}

fn assert_grpc(response: &RawResponse, code: i32, message_part: &str) {
    assert_eq!(
        response.status,
        http::StatusCode::OK,
        "gRPC refusals are HTTP 200"
    );
    assert_eq!(response.grpc_status(), Some(code), "{response:?}");
    let message = response.grpc_message();
    assert!(
        message.contains(message_part),
        "{message:?} does not say {message_part:?}"
    );
}

fn start_bytes() -> Vec<u8> {
    encode(&start("orders", "o-1"))
}

#[tokio::test]
async fn a_frame_shorter_than_its_length_prefix_is_invalid_argument() {
    let mut body = frame(false, &start_bytes());
    body.truncate(body.len() - 3);
    let response = refused(|addr| grpc_request(addr, &path("StartWorkflow"), body, &[])).await;
    assert_grpc(
        &response,
        INVALID_ARGUMENT,
        "truncated message: the prefix announces",
    );
}

#[tokio::test]
async fn a_truncated_length_prefix_is_invalid_argument() {
    let response =
        refused(|addr| grpc_request(addr, &path("StartWorkflow"), vec![0, 0, 0], &[])).await;
    assert_grpc(&response, INVALID_ARGUMENT, "truncated message prefix");
}

#[tokio::test]
async fn a_length_prefix_over_the_limit_is_resource_exhausted_before_the_body_is_read() {
    let mut body = vec![0u8];
    body.extend_from_slice(&(5u32 * 1024 * 1024).to_be_bytes());
    body.extend_from_slice(b"only a few bytes follow");
    let response = refused(|addr| grpc_request(addr, &path("StartWorkflow"), body, &[])).await;
    assert_grpc(
        &response,
        RESOURCE_EXHAUSTED,
        "announces 5242880 bytes, over the limit of 4194304",
    );
}

#[tokio::test]
async fn a_compressed_flag_without_grpc_encoding_is_invalid_argument() {
    let body = frame(true, &start_bytes());
    let response = refused(|addr| grpc_request(addr, &path("StartWorkflow"), body, &[])).await;
    assert_grpc(
        &response,
        INVALID_ARGUMENT,
        "flagged compressed but the call declares no grpc-encoding",
    );
}

#[tokio::test]
async fn an_unknown_encoding_is_unimplemented_and_names_what_is_supported() {
    let body = frame(true, &start_bytes());
    let response = refused(|addr| {
        grpc_request(
            addr,
            &path("StartWorkflow"),
            body,
            &[("grpc-encoding", "br")],
        )
    })
    .await;
    assert_grpc(
        &response,
        UNIMPLEMENTED,
        "grpc-encoding `br` is not supported",
    );
    assert_eq!(
        response.headers["grpc-accept-encoding"],
        "identity,gzip,deflate,zstd"
    );
}

#[tokio::test]
async fn garbage_bytes_are_invalid_argument() {
    let body = frame(false, &[0xff; 16]);
    let response = refused(|addr| grpc_request(addr, &path("StartWorkflow"), body, &[])).await;
    assert_grpc(
        &response,
        INVALID_ARGUMENT,
        "cannot decode the request of /warden.example.v1.WorkflowService/StartWorkflow",
    );
}

#[tokio::test]
async fn an_invalid_compressed_flag_is_invalid_argument() {
    let mut body = frame(false, &start_bytes());
    body[0] = 7;
    let response = refused(|addr| grpc_request(addr, &path("StartWorkflow"), body, &[])).await;
    assert_grpc(&response, INVALID_ARGUMENT, "invalid compressed flag 7");
}

#[tokio::test]
async fn an_empty_body_for_a_unary_method_is_invalid_argument() {
    let response =
        refused(|addr| grpc_request(addr, &path("StartWorkflow"), Vec::new(), &[])).await;
    assert_grpc(
        &response,
        INVALID_ARGUMENT,
        "the request has no message, but warden.example.v1.WorkflowService/StartWorkflow needs one",
    );
}

#[tokio::test]
async fn malformed_method_paths_are_invalid_argument() {
    for bad in [
        format!("{}/extra", path("StartWorkflow")),
        "//StartWorkflow".to_owned(),
        "/warden.example.v1.WorkflowService/%53tartWorkflow".to_owned(),
        "/warden.example.v1.WorkflowService/Start%C3%A9".to_owned(),
    ] {
        let response =
            refused(|addr| grpc_request(addr, &bad, frame(false, &start_bytes()), &[])).await;
        assert_grpc(&response, INVALID_ARGUMENT, "malformed gRPC method path");
    }
}

#[tokio::test]
async fn an_unknown_method_is_classified_other_and_denied_by_default() {
    let body = frame(false, &start_bytes());
    let response = refused(|addr| {
        grpc_request(
            addr,
            "/warden.example.v1.WorkflowService/DropAll",
            body,
            &[],
        )
    })
    .await;
    assert_grpc(
        &response,
        PERMISSION_DENIED,
        "no policy covers this operation",
    );
}

#[tokio::test]
async fn a_non_grpc_content_type_on_a_grpc_route_is_http_415() {
    let response = refused(|addr| {
        let mut request = grpc_request(
            addr,
            &path("StartWorkflow"),
            frame(false, &start_bytes()),
            &[],
        );
        request
            .headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
        request
    })
    .await;
    assert_eq!(response.status, http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(String::from_utf8_lossy(&response.body).contains("application/grpc"));
}

#[tokio::test]
async fn a_json_codec_is_never_judged_as_protobuf() {
    let response = refused(|addr| {
        let body = br#"{"namespace":"orders","workflowId":"o-1"}"#.to_vec();
        let mut request = grpc_request(addr, &path("StartWorkflow"), frame(false, &body), &[]);
        request
            .headers_mut()
            .insert("content-type", "application/grpc+json".parse().unwrap());
        request
    })
    .await;
    assert_grpc(
        &response,
        UNIMPLEMENTED,
        "application/grpc+json is not supported",
    );
}

#[tokio::test]
async fn a_decompression_bomb_is_resource_exhausted() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 16 * 1024 * 1024]).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 100_000);
    let response = refused(|addr| {
        grpc_request(
            addr,
            &path("StartWorkflow"),
            frame(true, &bomb),
            &[("grpc-encoding", "gzip")],
        )
    })
    .await;
    assert_grpc(
        &response,
        RESOURCE_EXHAUSTED,
        "decompressed message is larger than the limit",
    );
}

#[tokio::test]
async fn corrupt_compressed_data_is_invalid_argument() {
    let body = frame(true, b"this is not gzip");
    let response = refused(|addr| {
        grpc_request(
            addr,
            &path("StartWorkflow"),
            body,
            &[("grpc-encoding", "gzip")],
        )
    })
    .await;
    assert_grpc(&response, INVALID_ARGUMENT, "cannot decompress the message");
}

#[tokio::test]
async fn a_client_stream_message_over_the_limit_is_refused_mid_stream() {
    let (addr, log) = serve(demo_layer()).await;
    client(addr)
        .await
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    let mut body = frame(false, &encode(&signal("orders", "o-1", "approve")));
    body.push(0);
    body.extend_from_slice(&(64u32 * 1024 * 1024).to_be_bytes());
    let response = raw(
        grpc_request(addr, &path("SignalWorkflowBatch"), body, &[]),
        true,
    )
    .await;
    assert_eq!(
        response.grpc_status(),
        Some(RESOURCE_EXHAUSTED),
        "{response:?}"
    );
    assert!(
        response.grpc_message().contains("over the limit"),
        "{}",
        response.grpc_message()
    );
    // The handler started on the allowed first message; the oversized one never reached it.
    assert_eq!(
        log.calls(),
        ["StartWorkflow by alice", "SignalWorkflowBatch by alice"]
    );
}

/// Opens a call whose body sends `prefix` and then nothing, and returns the response.
async fn stalled_call(prefix: &'static [u8]) -> (RawResponse, warden_example::CallLog) {
    use std::{convert::Infallible, time::Duration};

    use http_body::Frame;
    use http_body_util::StreamBody;
    use warden_example::{operation_map, policies};

    let warden = warden_tower::WardenLayer::builder(operation_map())
        .authenticate(policies::identities())
        .signal(policies::writers())
        .first_message_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let (addr, log) = serve(warden).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    if !prefix.is_empty() {
        tx.send(Ok(Frame::data(Bytes::from_static(prefix))))
            .await
            .unwrap();
    }
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let request = http::Request::post(format!("http://{addr}{}", path("SignalWorkflow")))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", "Bearer alice-token")
        .body(body)
        .unwrap();
    let response = raw(request, true).await;
    // The sender stayed open until now: the client never finished its message.
    drop(tx);
    (response, log)
}

#[tokio::test]
async fn a_call_that_never_sends_its_message_is_refused_deadline_exceeded() {
    const DEADLINE_EXCEEDED: i32 = 4;
    for prefix in [&b""[..], &b"\0\0\0"[..], &b"\0\0\0\0\x10abc"[..]] {
        let (response, log) = stalled_call(prefix).await;
        assert_grpc(
            &response,
            DEADLINE_EXCEEDED,
            "the first message did not arrive within 200ms",
        );
        assert!(log.is_empty(), "a handler ran: {:?}", log.calls());
    }
}
