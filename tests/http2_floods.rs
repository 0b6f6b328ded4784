//! HTTP/2 floods against `warden proxy`, written frame by frame over loopback: rapid stream
//! resets, a CONTINUATION flood, a SETTINGS flood and a PING flood; and slow clients, 200
//! streams on one connection that never send their message. Each is bounded in count
//! and time; during and after each, another caller is served, nothing the flood sent reaches
//! the upstream, and the process's resident memory stays bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use std::{net::SocketAddr, time::Duration};

use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use warden_example::CallLog;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn frame_h2(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK literal header field without indexing, new name (short strings only).
fn literal(name: &str, value: &str) -> Vec<u8> {
    assert!(name.len() < 127 && value.len() < 127);
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

fn request_headers(address: SocketAddr) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/warden.example.v1.WorkflowService/StartWorkflow"),
        (":authority", &address.to_string()),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("x-api-key", "alice-token"),
    ] {
        block.extend(literal(name, value));
    }
    block
}

/// A connection that has sent the preface and empty SETTINGS, and drains whatever the server
/// writes (so the server is never blocked on us, and we notice when it closes).
async fn connect(
    address: SocketAddr,
) -> (
    tokio::net::tcp::OwnedWriteHalf,
    tokio::task::JoinHandle<usize>,
) {
    let stream = TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut read, mut write) = stream.into_split();
    write.write_all(PREFACE).await.unwrap();
    write
        .write_all(&frame_h2(SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    let drained = tokio::spawn(async move {
        let mut total = 0;
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n) = read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    (write, drained)
}

struct Setup {
    proxy: warden_proxy::Proxy,
    log: CallLog,
    dir: std::path::PathBuf,
}

async fn setup(name: &str) -> Setup {
    let (upstream, log) = serve_bare().await;
    let dir = std::env::temp_dir().join(format!("warden-flood-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proxy = warden_proxy::Proxy::start(example_proxy_config(upstream, &dir, ""), &dir)
        .await
        .unwrap();
    Setup { proxy, log, dir }
}

/// Another caller makes an allowed call and is answered within a few seconds.
async fn served(address: SocketAddr, id: &str) {
    let mut caller = client(address).await;
    let request = as_alice(start("orders", id));
    tokio::time::timeout(Duration::from_secs(10), caller.start_workflow(request))
        .await
        .expect("another caller is answered during the flood")
        .expect("and allowed");
}

/// Runs `flood` on a fresh connection while another caller is served; checks the flood reached
/// nothing upstream, the server hung up mid-flood exactly when `cut_off` (the flood answers
/// whether it saw that), the server answered on that connection, and memory grew by less than
/// 64 MiB.
async fn survive(
    name: &str,
    cut_off: bool,
    forwarded: usize,
    flood: impl AsyncFnOnce(&mut tokio::net::tcp::OwnedWriteHalf, SocketAddr) -> bool,
) {
    let setup = setup(name).await;
    let address = setup.proxy.local_addr();
    served(address, &format!("{name}-before")).await;
    let before = resident_kib();
    let (mut write, drained) = connect(address).await;
    let during = format!("{name}-during");
    let (hung_up, ()) = tokio::join!(flood(&mut write, address), served(address, &during));
    drop(write);
    let answered = tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .expect("the flooding connection ends")
        .unwrap();
    assert_eq!(
        hung_up,
        cut_off,
        "{name}: the server {} the connection mid-flood",
        if hung_up { "closed" } else { "kept" }
    );
    assert!(
        answered > 0,
        "{name}: the server answered on the flooding connection"
    );
    served(address, &format!("{name}-after")).await;
    let grown = resident_kib().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "{name}: resident memory grew by {grown} KiB"
    );
    let calls = setup.log.calls();
    assert_eq!(
        calls.len(),
        3 + forwarded,
        "{name}: only the other caller's calls reached the upstream: {calls:?}"
    );
    setup.proxy.shutdown();
    let _ = std::fs::remove_dir_all(&setup.dir);
}

/// Writes, ignoring a closed connection: the server may hang up mid-flood, which is the point.
async fn send(write: &mut tokio::net::tcp::OwnedWriteHalf, bytes: &[u8]) -> bool {
    write.write_all(bytes).await.is_ok()
}

async fn rapid_stream_resets() {
    survive("reset", true, 0, async |write, address| {
        let headers = request_headers(address);
        let mut batch = Vec::new();
        for i in 0..50_000u32 {
            let stream = 2 * i + 1;
            batch.extend(frame_h2(HEADERS, END_HEADERS, stream, &headers));
            batch.extend(frame_h2(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
            if batch.len() > 64 * 1024 {
                if !send(write, &batch).await {
                    return true;
                }
                batch.clear();
                // Let the server read what came so far before the next burst.
                tokio::task::yield_now().await;
            }
        }
        !send(write, &batch).await || closed_soon(write).await
    })
    .await;
}

async fn continuation_flood() {
    survive("continuation", true, 0, async |write, address| {
        let headers = request_headers(address);
        if !send(write, &frame_h2(HEADERS, 0, 1, &headers)).await {
            return true;
        }
        // Endless header fragments (each a valid literal), never END_HEADERS: 64 MiB at most.
        let fragment = literal("x-flood", &"f".repeat(100)).repeat(150);
        let continuation = frame_h2(CONTINUATION, 0, 1, &fragment);
        for _ in 0..(64 * 1024 * 1024 / continuation.len()) {
            if !send(write, &continuation).await {
                return true;
            }
        }
        closed_soon(write).await
    })
    .await;
}

async fn settings_and_ping_floods() {
    survive("settings", false, 0, async |write, _| {
        let settings = frame_h2(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]).repeat(1000);
        for _ in 0..50 {
            if !send(write, &settings).await {
                return true;
            }
        }
        false
    })
    .await;
    survive("ping", false, 0, async |write, _| {
        let ping = frame_h2(PING, 0, 0, &[7; 8]).repeat(1000);
        for _ in 0..50 {
            if !send(write, &ping).await {
                return true;
            }
        }
        false
    })
    .await;
}

async fn data_without_headers() {
    survive("data", true, 0, async |write, _| {
        let data = frame_h2(DATA, END_STREAM, 1, b"\x00\x00\x00\x00\x00").repeat(100);
        !send(write, &data).await || closed_soon(write).await
    })
    .await;
}

/// One flood after another, so each one's memory is measured alone.
/// Requests whose header blocks HTTP/2 forbids, each on its own stream with an allowed start as
/// its message: connection-specific headers (`connection`, `keep-alive`, `transfer-encoding`),
/// `te` other than `trailers`, an upper-case name, a repeated `:path`. None is forwarded (h2
/// resets the stream or the connection); the control, the same request without a forbidden
/// header sent first on the connection, is.
async fn forbidden_headers() {
    survive("forbidden", false, 1, async |write, address| {
        let start = frame(false, &encode(&start("orders", "forbidden")));
        let data = |stream: u32| frame_h2(DATA, END_STREAM, stream, &start);
        let base = request_headers(address);
        // The control first: the same request without a forbidden header is forwarded.
        if !send(write, &frame_h2(HEADERS, END_HEADERS, 1, &base)).await
            || !send(write, &data(1)).await
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (stream, extra) in [
            (3u32, literal("connection", "keep-alive")),
            (5, literal("te", "gzip")),
            (7, literal("X-Api-Key", "alice-token")),
            (
                9,
                literal(":path", "/warden.example.v1.WorkflowService/StartWorkflow"),
            ),
            (11, literal("keep-alive", "timeout=5")),
            (13, literal("transfer-encoding", "chunked")),
        ] {
            let block = [base.clone(), extra].concat();
            if !send(write, &frame_h2(HEADERS, END_HEADERS, stream, &block)).await
                || !send(write, &data(stream)).await
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        false
    })
    .await;
}

/// Whether the server hangs up within a few seconds: writing keeps failing once it has.
async fn closed_soon(write: &mut tokio::net::tcp::OwnedWriteHalf) -> bool {
    let ping = frame_h2(PING, 0, 0, &[1; 8]);
    for _ in 0..50 {
        if !send(write, &ping).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_cut_off_or_absorbed_while_other_callers_are_served_and_reach_nothing() {
    rapid_stream_resets().await;
    continuation_flood().await;
    settings_and_ping_floods().await;
    data_without_headers().await;
    forbidden_headers().await;
}

/// Slow clients: 200 streams on one connection that open a call and never send its message.
/// Each is ended `DEADLINE_EXCEEDED` at the proxy's `first_message_seconds` (1 s here), freeing
/// its slot; another caller is served meanwhile; nothing reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_never_send_are_ended_at_the_first_message_timeout_while_others_are_served() {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, StreamBody};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    const STREAMS: usize = 200;
    const DEADLINE_EXCEEDED: &str = "4";
    let (upstream, log) = serve_bare().await;
    let dir = std::env::temp_dir().join(format!("warden-flood-slow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let limits = format!(
        "{}\n[limits]\nfirst_message_seconds = 1\n",
        example_policies()
    );
    let proxy = warden_proxy::Proxy::start(
        example_proxy_config_with(upstream, &dir, "", EXAMPLE_IDENTITY, &limits),
        &dir,
    )
    .await
    .unwrap();
    let address = proxy.local_addr();
    let before = resident_kib();

    type Stalled =
        StreamBody<tokio_stream::wrappers::ReceiverStream<Result<Frame<Bytes>, Infallible>>>;
    // One client: hyper multiplexes every call on one HTTP/2 connection.
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Stalled>();
    let started = std::time::Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    let mut senders = Vec::new();
    for i in 0..STREAMS {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        senders.push(tx);
        let request = http::Request::post(format!(
            "http://{address}{}",
            warden_example::path("SignalWorkflow")
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-api-key", "alice-token")
        .header("x-call", i.to_string())
        .body(StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap();
        let client = client.clone();
        calls.spawn(async move {
            let response = client.request(request).await.expect("an answer");
            let (parts, body) = response.into_parts();
            let collected = body.collect().await.expect("the whole answer");
            let status = collected
                .trailers()
                .and_then(|t| t.get("grpc-status"))
                .or_else(|| parts.headers.get("grpc-status"))
                .map(|v| v.to_str().unwrap().to_owned());
            status.unwrap_or_default()
        });
    }
    // Meanwhile another caller is served.
    served(address, "slow-clients-during").await;
    let mut ended = 0;
    while let Some(status) = calls.join_next().await {
        assert_eq!(
            status.unwrap(),
            DEADLINE_EXCEEDED,
            "a stalled call ended otherwise"
        );
        ended += 1;
    }
    let took = started.elapsed();
    drop(senders);
    assert_eq!(ended, STREAMS);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "ended at the first-message timeout: {took:?}"
    );
    served(address, "slow-clients-after").await;
    let grown = resident_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "resident memory grew by {grown} KiB");
    let reached = log.calls();
    assert!(
        reached.len() == 2 && reached.iter().all(|c| c.starts_with("StartWorkflow")),
        "only the other caller's two starts reached the upstream: {reached:?}"
    );
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
