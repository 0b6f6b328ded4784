//! `warden proxy`'s listener limits, each against a real proxy in front of a real upstream:
//! connections past `max_connections` wait and are served once one closes; streams past
//! `max_concurrent_streams` on one connection wait while other callers are served; a header
//! list over `max_header_list_bytes` is refused and never forwarded. Bounded in count and
//! time, loopback only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use support::*;
use warden_example::{CallLog, pb::DescribeWorkflowRequest};

async fn proxy(listen: &str) -> (warden_proxy::Proxy, CallLog, std::path::PathBuf) {
    let (upstream, log) = serve_bare().await;
    let dir = std::env::temp_dir().join(format!(
        "warden-limits-{}-{}",
        std::process::id(),
        listen.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let proxy = warden_proxy::Proxy::start(example_proxy_config(upstream, &dir, listen), &dir)
        .await
        .unwrap();
    (proxy, log, dir)
}

/// One allowed call (a start alice may make) on `client`.
async fn start_call(
    client: &mut warden_example::pb::workflow_service_client::WorkflowServiceClient<
        tonic::transport::Channel,
    >,
    id: &str,
) -> Result<(), tonic::Status> {
    client
        .start_workflow(as_alice(start("orders", id)))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_wait_and_are_served_once_one_closes() {
    let (proxy, log, dir) = proxy("max_connections = 2").await;
    let address = proxy.local_addr();
    let mut first = client(address).await;
    let mut second = client(address).await;
    start_call(&mut first, "c-1").await.unwrap();
    start_call(&mut second, "c-2").await.unwrap();

    // The third connection is not accepted while two are open: its call does not complete.
    let third = tokio::spawn(async move {
        let mut third = client(address).await;
        start_call(&mut third, "c-3").await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served");
    assert_eq!(log.len(), 2);

    // One closes; the waiting one is accepted and served.
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(log.len(), 3);
    start_call(&mut second, "c-4").await.unwrap();
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for a raw call and checks it ended with `grpc-status: 0`.
async fn assert_ok(
    name: &str,
    call: tokio::task::JoinHandle<
        Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
    >,
) {
    let response = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("the {name} call ends"))
        .unwrap()
        .unwrap();
    let (parts, body) = response.into_parts();
    let trailers = body.collect().await.unwrap().trailers().cloned();
    let status = trailers
        .as_ref()
        .or(Some(&parts.headers))
        .and_then(|h| h.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        status.as_deref(),
        Some("0"),
        "{name}: {parts:?} {trailers:?}"
    );
}

type Stalled = StreamBody<tokio_stream::wrappers::ReceiverStream<Result<Frame<Bytes>, Infallible>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_limit_wait_while_other_callers_are_served() {
    let (proxy, log, dir) = proxy("max_concurrent_streams = 2").await;
    let address = proxy.local_addr();
    // One HTTP/2 connection; two calls on it that never send their message.
    let slow = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Stalled>();
    let request = |address: SocketAddr, body: Stalled| {
        http::Request::post(format!(
            "http://{address}/warden.example.v1.WorkflowService/StartWorkflow"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-api-key", "alice-token")
        .body(body)
        .unwrap()
    };
    // A first call completes, so the client has the server's settings (and its stream limit)
    // before the stalled ones open.
    let message = Bytes::from(frame(false, &encode(&start("orders", "s-0"))));
    let (send, receive) = tokio::sync::mpsc::channel(1);
    send.send(Ok(Frame::data(message.clone()))).await.unwrap();
    drop(send);
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receive));
    let warm = slow.request(request(address, body)).await.unwrap();
    warm.into_body().collect().await.unwrap();
    assert_eq!(log.len(), 1);
    let call = |send_now: Option<Bytes>| {
        let (send, receive) = tokio::sync::mpsc::channel(1);
        if let Some(message) = send_now {
            send.try_send(Ok(Frame::data(message))).unwrap();
        }
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receive));
        (send, tokio::spawn(slow.request(request(address, body))))
    };
    let message = |id: &str| Bytes::from(frame(false, &encode(&start("orders", id))));
    // Two streams that never send their message fill the connection's two slots.
    let (first_send, first) = call(None);
    let (second_send, second) = call(None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third, complete call on the same connection waits for a slot.
    let (third_send, third) = call(Some(message("s-third")));
    drop(third_send);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (name, call) in [("first", &first), ("second", &second), ("third", &third)] {
        assert!(!call.is_finished(), "the {name} call ended early");
    }

    // Another caller, on another connection, is served at once.
    let mut other = client(address).await;
    tokio::time::timeout(Duration::from_secs(5), start_call(&mut other, "s-other"))
        .await
        .expect("another caller is served while streams stall")
        .unwrap();
    assert_eq!(log.len(), 2);

    // The first stalled call sends its message and ends; that frees the slot the third takes.
    first_send
        .send(Ok(Frame::data(message("s-first"))))
        .await
        .unwrap();
    drop(first_send);
    for (name, call) in [("first", first), ("third", third)] {
        assert_ok(name, call).await;
    }
    assert_eq!(log.len(), 4);
    second_send
        .send(Ok(Frame::data(message("s-second"))))
        .await
        .unwrap();
    drop(second_send);
    assert_ok("second", second).await;
    assert_eq!(log.len(), 5);
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_list_over_the_limit_is_refused_and_never_forwarded() {
    let (proxy, log, dir) = proxy("max_header_list_bytes = 4096").await;
    let mut caller = client(proxy.local_addr()).await;
    let mut request = as_alice(DescribeWorkflowRequest {
        namespace: "orders".into(),
        execution: execution("h-1"),
    });
    request
        .metadata_mut()
        .insert("x-padding", "p".repeat(8192).parse().unwrap());
    let refused = caller.describe_workflow(request).await.unwrap_err();
    assert_ne!(refused.code(), tonic::Code::Ok);
    assert_eq!(log.len(), 0, "nothing was forwarded");
    // The same caller is served again with headers within the limit.
    let mut caller = client(proxy.local_addr()).await;
    start_call(&mut caller, "h-2").await.unwrap();
    assert_eq!(log.len(), 1);
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
