//! One axum `Router` serving gRPC (the tonic service) and plain JSON routes behind one Warden
//! stack, over real loopback TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use axum::{
    Extension, Json, Router,
    routing::{get, post},
};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use support::*;
use tokio::net::TcpListener;
use tonic::Code;
use warden_core::OperationKind;
use warden_example::{ExampleService, operation_map, path, policies};
use warden_tower::{
    Call, WardenLayer,
    map::{HttpOperationMap, HttpRoute},
};

/// Warden's record of the call is one extension; axum's `Extension` extractor reads it.
fn subject(call: &Call) -> Option<String> {
    call.claims().and_then(|claims| claims.subject.clone())
}

async fn whoami(Extension(call): Extension<Call>) -> Json<Value> {
    Json(json!({ "subject": subject(&call) }))
}

async fn accepted(Extension(call): Extension<Call>, Json(body): Json<Value>) -> Json<Value> {
    Json(json!({ "subject": subject(&call), "accepted": body }))
}

async fn serve_router() -> (std::net::SocketAddr, warden_example::CallLog) {
    let routes = HttpOperationMap::builder()
        .route(
            Method::GET,
            "/v1/{namespace}/workflows/{instance}",
            HttpRoute::new(OperationKind::Read),
        )
        .route(
            Method::POST,
            "/v1/{namespace}/workflows/{instance}/signals/{name}",
            HttpRoute::new(OperationKind::Signal),
        )
        .route(
            Method::POST,
            "/v1/{namespace}/workflows/{instance}/updates/{name}",
            HttpRoute::new(OperationKind::Update).args_from_body(),
        )
        .build()
        .unwrap();
    let layer = WardenLayer::builder(operation_map())
        .http_routes(routes)
        .authenticate(policies::identities())
        .read(policies::readers())
        .query(policies::readers())
        .execute(policies::writers())
        .signal(policies::writers())
        .update(policies::updates_up_to_1000())
        .build()
        .unwrap();
    let service = ExampleService::new();
    let log = service.log();
    let grpc = tonic::service::Routes::new(service.into_server()).into_axum_router();
    let app = Router::new()
        .route("/v1/{namespace}/workflows/{instance}", get(whoami))
        .route(
            "/v1/{namespace}/workflows/{instance}/signals/{name}",
            post(whoami),
        )
        .route(
            "/v1/{namespace}/workflows/{instance}/updates/{name}",
            post(accepted),
        )
        .merge(grpc)
        .layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, log)
}

async fn json_call(
    addr: std::net::SocketAddr,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{uri}"))
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = raw(
        request
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap(),
        false,
    )
    .await;
    let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, value)
}

#[tokio::test]
async fn grpc_calls_on_the_router_are_authorized_per_kind() {
    let (addr, log) = serve_router().await;
    let mut client = client(addr).await;
    client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    client
        .query_workflow(as_user("bob-token", query("orders", "o-1")))
        .await
        .unwrap();
    let denied = client
        .signal_workflow(as_user("bob-token", signal("orders", "o-1", "x")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        log.calls(),
        ["StartWorkflow by alice", "QueryWorkflow by bob"]
    );
}

#[tokio::test]
async fn json_routes_get_claims_or_json_401_and_403() {
    let (addr, _log) = serve_router().await;
    let (status, body) = json_call(
        addr,
        Method::GET,
        "/v1/orders/workflows/o-1",
        Some("bob-token"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["subject"], "bob",
        "the handler reads the caller's claims"
    );

    let (status, body) = json_call(
        addr,
        Method::POST,
        "/v1/orders/workflows/o-1/signals/approve",
        Some("bob-token"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "permission_denied");
    assert_eq!(
        body["message"],
        "permission denied: needs the writer role in this namespace"
    );

    let (status, body) = json_call(addr, Method::GET, "/v1/orders/workflows/o-1", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");

    let (status, body) = json_call(
        addr,
        Method::GET,
        "/v1/billing/workflows/o-1",
        Some("bob-token"),
        "",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "bob reads only `orders`: {body}"
    );

    let (status, body) = json_call(
        addr,
        Method::DELETE,
        "/v1/orders/workflows/o-1",
        Some("root-token"),
        "",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an unmapped route is `other` and denied by default: {body}"
    );
}

#[tokio::test]
async fn json_body_arguments_are_judged_before_the_handler() {
    let (addr, _log) = serve_router().await;
    let uri = "/v1/orders/workflows/o-1/updates/set-discount";
    let (status, body) = json_call(
        addr,
        Method::POST,
        uri,
        Some("alice-token"),
        r#"{"amount":250}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["accepted"]["amount"], 250,
        "the handler got the body unchanged"
    );

    let (status, body) = json_call(
        addr,
        Method::POST,
        uri,
        Some("alice-token"),
        r#"{"amount":5000}"#,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        "permission denied: amount 5000 is over 1000"
    );

    let (status, body) = json_call(addr, Method::POST, uri, Some("alice-token"), "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_argument");
}

#[tokio::test]
async fn grpc_over_http1_is_refused_with_426() {
    let (addr, log) = serve_router().await;
    let request = grpc_request(
        addr,
        &path("StartWorkflow"),
        frame(false, &encode(&start("orders", "o-1"))),
        &[],
    );
    let response = raw(request, false).await;
    assert_eq!(response.status, StatusCode::UPGRADE_REQUIRED);
    assert!(String::from_utf8_lossy(&response.body).contains("gRPC requires HTTP/2"));
    assert!(log.is_empty());
}
