//! `warden proxy` in front of upstreams that misbehave: one that resets every connection, one
//! that answers slowly, one that fails mid-stream. Each call gets the right status with a
//! message that says why, the failure is counted in the proxy's metrics, other calls keep
//! being served, and a healthy upstream on the same address is used again at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::net::TcpListener;
use tonic::Code;
use warden_example::{
    http_probe,
    pb::{DescribeWorkflowRequest, WatchWorkflowRequest},
};

fn describe() -> DescribeWorkflowRequest {
    DescribeWorkflowRequest {
        namespace: "orders".into(),
        execution: execution("f-1"),
    }
}

/// A hand-made HTTP/2 upstream: `Describe` answers an empty message at once, `Start` after
/// two seconds, `Watch` sends one event and then fails the stream.
async fn misbehaving_upstream(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                |request: http::Request<hyper::body::Incoming>| async move {
                    let path = request.uri().path().to_owned();
                    if path.ends_with("/StartWorkflow") {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    let (send, frames) = tokio::sync::mpsc::channel(4);
                    if path.ends_with("/WatchWorkflow") {
                        let event = encode(&warden_example::pb::WorkflowEvent {
                            sequence: 1,
                            kind: "status".into(),
                            detail: b"running".to_vec(),
                        });
                        send.try_send(Ok(Frame::data(Bytes::from(frame(false, &event)))))
                            .unwrap();
                        // The event goes out with the headers; the failure comes later.
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            let _ = send
                                .send(Err(std::io::Error::other("the upstream lost its state")))
                                .await;
                        });
                    } else {
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", "0".parse().unwrap());
                        send.try_send(Ok(Frame::data(Bytes::from(frame(false, &[])))))
                            .unwrap();
                        send.try_send(Ok(Frame::trailers(trailers))).unwrap();
                    }
                    let body: BoxBody<Bytes, std::io::Error> =
                        StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(frames))
                            .boxed();
                    Ok::<_, Infallible>(
                        http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(body)
                            .unwrap(),
                    )
                },
            );
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn metric(url: &str, series: &str) -> f64 {
    http_probe::sample(&http_probe::get(url).await, series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_upstreams_get_the_right_status_are_logged_counted_and_the_proxy_recovers() {
    let logs = Captured::install();
    // The upstream's address, first held by a listener that resets every connection.
    let resetter = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream: SocketAddr = resetter.local_addr().unwrap();
    let resetting = tokio::spawn(async move {
        while let Ok((stream, _)) = resetter.accept().await {
            // Linger 0: the close is a reset, not an orderly end.
            #[allow(deprecated)] // blocking on drop is harmless here: nothing is left to send
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
    });
    let dir = std::env::temp_dir().join(format!("warden-upstream-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = example_proxy_config(upstream, &dir, "");
    config.metrics = Some(warden_proxy::config::MetricsConfig {
        address: "127.0.0.1:0".parse().unwrap(),
    });
    let proxy = warden_proxy::Proxy::start(config, &dir).await.unwrap();
    let metrics = format!("http://{}/metrics", proxy.metrics_addr().unwrap());
    let mut caller = client(proxy.local_addr()).await;

    // Resets: UNAVAILABLE, saying the upstream is unavailable, counted.
    let status = caller
        .describe_workflow(as_alice(describe()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("upstream") && status.message().contains("unavailable"),
        "{}",
        status.message()
    );
    let failures = metric(
        &metrics,
        "warden_proxy_upstream_errors_total{reason=\"request\"}",
    )
    .await
        + metric(
            &metrics,
            "warden_proxy_upstream_errors_total{reason=\"connect\"}",
        )
        .await;
    assert!(failures >= 1.0, "counted: {failures}");
    logs.assert_logged_since(0, &["upstream call failed"]);

    // The same address now serves a real (if odd) upstream: the proxy uses it at once.
    resetting.abort();
    let _ = resetting.await;
    let listener = TcpListener::bind(upstream).await.unwrap();
    tokio::spawn(misbehaving_upstream(listener));
    let mut recovered = false;
    for _ in 0..50 {
        if caller.describe_workflow(as_alice(describe())).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the proxy uses the upstream once it answers");

    // Slow: the proxy ends the call when the caller's `grpc-timeout` passes (the raw request
    // sets no timer of its own) and drops the upstream call; tonic's server, which the proxy
    // listens with, answers that CANCELLED "Timeout expired". Another caller is answered
    // meanwhile.
    let proxy_address = proxy.local_addr();
    let slow = tokio::spawn(async move {
        let request = grpc_request(
            proxy_address,
            "/warden.example.v1.WorkflowService/StartWorkflow",
            frame(false, &encode(&start("orders", "f-slow"))),
            &[("grpc-timeout", "300m"), ("x-api-key", "alice-token")],
        );
        let started = std::time::Instant::now();
        (raw(request, true).await, started.elapsed())
    });
    let started = std::time::Instant::now();
    caller
        .describe_workflow(as_alice(describe()))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "others are answered while one waits"
    );
    let (response, took) = slow.await.unwrap();
    assert_eq!(response.grpc_status(), Some(1), "CANCELLED: {response:?}");
    assert_eq!(response.grpc_message(), "Timeout expired");
    assert!(
        took < Duration::from_millis(1500),
        "answered at the deadline, not the upstream's pace: {took:?}"
    );

    // Mid-stream failure: the event that came, then UNAVAILABLE that says what happened.
    let mut events = caller
        .watch_workflow(as_alice(WatchWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("f-1"),
        }))
        .await
        .unwrap()
        .into_inner();
    let first = events.message().await.unwrap().unwrap();
    assert_eq!(first.detail, b"running");
    let status = events.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("the upstream failed mid-answer"),
        "{}",
        status.message()
    );
    assert!(
        metric(
            &metrics,
            "warden_proxy_upstream_errors_total{reason=\"stream\"}"
        )
        .await
            >= 1.0
    );
    logs.assert_logged_since(0, &["upstream call failed", "reason=stream"]);

    // And the next call is served.
    caller
        .describe_workflow(as_alice(describe()))
        .await
        .unwrap();
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
