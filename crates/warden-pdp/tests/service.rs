//! The decision point's doors over loopback: the gRPC service with tonic's client, the AuthZEN
//! endpoints with an HTTP client, and `RemotePolicy` against points that answer, are slow,
//! are down, or speak garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, time::Duration};

use axum::body::Bytes;

use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, net::TcpListener};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Request, Response, Status, transport::Channel};
use warden_core::{
    AuthzRequest, Claims, Effect, Operation, OperationKind, Policy, identity::StaticTokenMapper,
    policy::PolicyErrorKind,
};
use warden_pdp::{
    DecisionPoint, DecisionService, Model, ModelHandle, StandardResolver, json_struct,
    proto::{
        self, decision_service_client::DecisionServiceClient,
        decision_service_server::DecisionService as Grpc,
    },
    remote::{RemoteConfig, RemotePolicy},
};

const MODEL: &str = r#"
[[attributes]]
namespace = "example.com"
name = "classification"
rule = "hierarchy"
values = ["secret", "internal", "public"]
obligations = { secret = ["https://example.com/obl/audit/value/log"] }

[[attributes]]
namespace = "temporal.io"
name = "namespace"
rule = "any_of"
values = ["orders", "billing"]

[[subject_mappings]]
attribute_value = "https://example.com/attr/classification/value/secret"
actions = ["read"]
condition_groups = [{ conditions = [{ selector = ".groups[]", operator = "in", values = ["cleared"] }] }]

[[subject_mappings]]
attribute_value = "https://example.com/attr/classification/value/public"
actions = ["read"]
condition_groups = [{ conditions = [{ selector = ".groups[]", operator = "not_in", values = ["banned"] }] }]

[[subject_mappings]]
attribute_value = "https://temporal.io/attr/namespace/value/orders"
actions = ["signal"]
condition_groups = [{ conditions = [{ selector = ".roles.namespaces.orders", operator = "in", values = ["writer", "admin"] }] }]
"#;

fn v(value: &str) -> String {
    format!("https://example.com/attr/classification/value/{value}")
}

fn point() -> DecisionPoint {
    let tokens = StaticTokenMapper::new().with_token(
        "token-of-carol",
        Claims::for_subject("carol").with_group("cleared"),
    );
    let resolver = StandardResolver::new()
        .tokens(tokens)
        .records([("dave".to_owned(), json!({"groups": ["cleared"]}))]);
    DecisionPoint::new(
        ModelHandle::new(Model::parse(MODEL, false, "model.toml").unwrap()),
        resolver,
    )
}

async fn serve_grpc(service: impl Grpc) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(proto::decision_service_server::DecisionServiceServer::new(
                service,
            ))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    address
}

async fn client(address: SocketAddr) -> DecisionServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    DecisionServiceClient::new(channel)
}

fn claims_entity(id: &str, groups: &[&str]) -> proto::Entity {
    let claims = json!({"groups": groups});
    proto::Entity {
        ephemeral_id: id.to_owned(),
        kind: Some(proto::entity::Kind::Claims(json_struct(
            claims.as_object().unwrap(),
        ))),
    }
}

fn resource(id: &str, values: &[String]) -> proto::Resource {
    proto::Resource {
        ephemeral_id: id.to_owned(),
        attribute_values: values.to_vec(),
    }
}

#[tokio::test]
async fn the_grpc_service_answers_500_entities_by_3_resources_in_request_order() {
    let address = serve_grpc(DecisionService::new(point())).await;
    let mut client = client(address).await;
    let entities: Vec<proto::Entity> = (0..500)
        .map(|i| {
            let groups: &[&str] = match i % 3 {
                0 => &["cleared"],
                1 => &["staff"],
                _ => &["banned"],
            };
            claims_entity(&format!("member-{i}"), groups)
        })
        .collect();
    let resources = vec![
        resource("doc-secret", &[v("secret")]),
        resource("doc-internal", &[v("internal")]),
        resource("doc-public", &[v("public")]),
    ];
    let answer = client
        .get_decision_multi_entity(proto::GetDecisionMultiEntityRequest {
            entities,
            action: "read".into(),
            resources,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.all_permitted);
    assert_eq!(answer.results.len(), 500);
    let permit = proto::Decision::Permit as i32;
    for (i, result) in answer.results.iter().enumerate() {
        assert_eq!(result.ephemeral_id, format!("member-{i}"));
        let got: Vec<bool> = result
            .decisions
            .iter()
            .map(|d| d.decision == permit)
            .collect();
        let ids: Vec<&str> = result
            .decisions
            .iter()
            .map(|d| d.ephemeral_id.as_str())
            .collect();
        assert_eq!(ids, ["doc-secret", "doc-internal", "doc-public"]);
        let expected = match i % 3 {
            0 => [true, true, true],
            1 => [false, false, true],
            _ => [false, false, false],
        };
        assert_eq!(got, expected, "member-{i}");
        assert_eq!(result.all_permitted, expected.iter().all(|p| *p));
        assert_eq!(
            result.decisions[0].required_obligations,
            ["https://example.com/obl/audit/value/log"]
        );
        if !expected[1] {
            assert_eq!(
                result.decisions[1].failed_definitions,
                ["https://example.com/attr/classification"]
            );
        }
    }
}

#[tokio::test]
async fn the_grpc_service_resolves_tokens_and_ids_and_names_broken_limits() {
    let address = serve_grpc(DecisionService::new(point())).await;
    let mut client = client(address).await;
    let token = proto::Entity {
        ephemeral_id: "carol".into(),
        kind: Some(proto::entity::Kind::Token("token-of-carol".into())),
    };
    let forged = proto::Entity {
        ephemeral_id: "forged".into(),
        kind: Some(proto::entity::Kind::Token("made-up".into())),
    };
    let id = proto::Entity {
        ephemeral_id: "dave".into(),
        kind: Some(proto::entity::Kind::Id("dave".into())),
    };
    let single = client
        .get_decision(proto::GetDecisionRequest {
            entity: Some(token.clone()),
            action: "read".into(),
            resource: Some(resource("s", &[v("secret")])),
        })
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(single.decision, proto::Decision::Permit as i32);

    let bulk = client
        .get_decision_bulk(proto::GetDecisionBulkRequest {
            requests: [token, forged, id]
                .into_iter()
                .map(|entity| proto::GetDecisionMultiResourceRequest {
                    entity: Some(entity),
                    action: "read".into(),
                    resources: vec![resource("s", &[v("secret")])],
                })
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    let outcome: Vec<(String, bool, String)> = bulk
        .responses
        .iter()
        .map(|r| {
            (
                r.entity_ephemeral_id.clone(),
                r.all_permitted,
                r.decisions[0].reason.clone(),
            )
        })
        .collect();
    assert_eq!(outcome[0], ("carol".into(), true, String::new()));
    assert_eq!(outcome[1].0, "forged");
    assert!(!outcome[1].1);
    assert!(
        outcome[1]
            .2
            .starts_with("entity not resolved: token: invalid credentials"),
        "{}",
        outcome[1].2
    );
    assert_eq!(outcome[2], ("dave".into(), true, String::new()));

    let too_many = client
        .get_decision_multi_resource(proto::GetDecisionMultiResourceRequest {
            entity: Some(claims_entity("x", &[])),
            action: "read".into(),
            resources: (0..1001)
                .map(|i| resource(&i.to_string(), &[v("public")]))
                .collect(),
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert_eq!(too_many.message(), "resources: 1001 given, at most 1000");
    let no_entity = client
        .get_decision_multi_entity(proto::GetDecisionMultiEntityRequest {
            entities: vec![claims_entity("a", &[]), proto::Entity::default()],
            action: "read".into(),
            resources: vec![resource("p", &[v("public")])],
        })
        .await
        .unwrap_err();
    assert_eq!(no_entity.code(), Code::InvalidArgument);
    assert_eq!(
        no_entity.message(),
        "entities[1]: names no token, id or claims"
    );

    let entitlements = client
        .get_entitlements(proto::GetEntitlementsRequest {
            entities: vec![claims_entity("c", &["cleared"])],
            with_comprehensive_hierarchy: true,
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<&str> = entitlements.entitlements[0]
        .entitlements
        .iter()
        .map(|e| e.attribute_value.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(values, ["secret", "internal", "public"]);
}

async fn serve_http(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

async fn post(address: SocketAddr, path: &str, body: &str) -> (u16, Value, Option<String>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::post(format!("http://{address}{path}"))
        .header("content-type", "application/json")
        .header("x-request-id", "req-42")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let echoed = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap(), echoed)
}

#[tokio::test]
async fn authzen_evaluation_and_batch_endpoints_answer_as_the_spec_says() {
    let address = serve_http(warden_pdp::authzen::router(point())).await;
    let one = |groups: &str, value: &str| {
        format!(
            r#"{{"subject": {{"type": "user", "id": "u1", "properties": {{"groups": [{groups}]}}}},
                "action": {{"name": "read"}},
                "resource": {{"type": "document", "id": "d1", "properties": {{"attribute_values": ["{}"]}}}},
                "context": {{"time": "now"}}}}"#,
            v(value)
        )
    };
    let (status, body, echoed) = post(
        address,
        "/access/v1/evaluation",
        &one("\"cleared\"", "secret"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"decision": true, "context": {"obligations": ["https://example.com/obl/audit/value/log"]}})
    );
    assert_eq!(echoed.as_deref(), Some("req-42"));
    let (_, body, _) = post(address, "/access/v1/evaluation", &one("", "secret")).await;
    assert_eq!(body["decision"], false);
    assert_eq!(
        body["context"]["failed_definitions"],
        json!(["https://example.com/attr/classification"])
    );
    // A subject without properties is looked up by id.
    let (_, body, _) = post(
        address,
        "/access/v1/evaluation",
        &format!(
            r#"{{"subject": {{"type": "user", "id": "dave"}}, "action": {{"name": "read"}},
                 "resource": {{"type": "doc", "id": "d", "properties": {{"attribute_values": ["{}"]}}}}}}"#,
            v("secret")
        ),
    )
    .await;
    assert_eq!(body["decision"], true);

    let batch = |semantic: &str| {
        format!(
            r#"{{"subject": {{"type": "user", "id": "u2", "properties": {{"groups": ["staff"]}}}},
                 "action": {{"name": "read"}},
                 "options": {{"evaluations_semantic": "{semantic}"}},
                 "evaluations": [
                   {{"resource": {{"type": "doc", "id": "a", "properties": {{"attribute_values": ["{p}"]}}}}}},
                   {{"resource": {{"type": "doc", "id": "b", "properties": {{"attribute_values": ["{s}"]}}}}}},
                   {{"resource": {{"type": "doc", "id": "c", "properties": {{"attribute_values": ["{p}"]}}}}}},
                   {{"subject": {{"type": "user", "id": "dave"}},
                     "resource": {{"type": "doc", "id": "d", "properties": {{"attribute_values": ["{s}"]}}}}}}
                 ]}}"#,
            p = v("public"),
            s = v("secret")
        )
    };
    let decisions = |body: &Value| -> Vec<bool> {
        body["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_bool().unwrap())
            .collect()
    };
    let (status, all, _) = post(address, "/access/v1/evaluations", &batch("execute_all")).await;
    assert_eq!(status, 200);
    assert_eq!(decisions(&all), [true, false, true, true]);
    let (_, deny_first, _) = post(
        address,
        "/access/v1/evaluations",
        &batch("deny_on_first_deny"),
    )
    .await;
    assert_eq!(decisions(&deny_first), [true, false]);
    let (_, permit_first, _) = post(
        address,
        "/access/v1/evaluations",
        &batch("permit_on_first_permit"),
    )
    .await;
    assert_eq!(decisions(&permit_first), [true]);

    for (body, reason) in [
        ("{not json", "body: "),
        (
            r#"{"action": {"name": "read"}, "resource": {"type": "d", "id": "1"}}"#,
            "subject: missing",
        ),
        (
            r#"{"subject": {"type": "u", "id": "1"}, "action": {"name": "read"}, "resource": {"type": "d", "id": "1", "properties": {"attribute_values": "x"}}}"#,
            "resource.properties.attribute_values: not an array of value FQNs",
        ),
    ] {
        let (status, answer, _) = post(address, "/access/v1/evaluation", body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            answer["reason"].as_str().unwrap().starts_with(reason),
            "{answer}"
        );
    }
    let many: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    let (status, answer, _) = post(
        address,
        "/access/v1/evaluations",
        &json!({"evaluations": many}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(answer["reason"], "evaluations: 1001 given, at most 1000");
}

/// A decision point that takes `delay` to answer subjects named `slow`.
#[derive(Clone)]
struct Slow {
    inner: DecisionService,
    delay: Duration,
}

#[tonic::async_trait]
impl Grpc for Slow {
    async fn get_decision(
        &self,
        request: Request<proto::GetDecisionRequest>,
    ) -> Result<Response<proto::GetDecisionResponse>, Status> {
        let slow = request
            .get_ref()
            .entity
            .as_ref()
            .is_some_and(|e| e.ephemeral_id == "slow");
        if slow {
            tokio::time::sleep(self.delay).await;
        }
        self.inner.get_decision(request).await
    }
    async fn get_decision_multi_resource(
        &self,
        r: Request<proto::GetDecisionMultiResourceRequest>,
    ) -> Result<Response<proto::GetDecisionMultiResourceResponse>, Status> {
        self.inner.get_decision_multi_resource(r).await
    }
    async fn get_decision_multi_entity(
        &self,
        r: Request<proto::GetDecisionMultiEntityRequest>,
    ) -> Result<Response<proto::GetDecisionMultiEntityResponse>, Status> {
        self.inner.get_decision_multi_entity(r).await
    }
    async fn get_decision_bulk(
        &self,
        r: Request<proto::GetDecisionBulkRequest>,
    ) -> Result<Response<proto::GetDecisionBulkResponse>, Status> {
        self.inner.get_decision_bulk(r).await
    }
    async fn get_entitlements(
        &self,
        r: Request<proto::GetEntitlementsRequest>,
    ) -> Result<Response<proto::GetEntitlementsResponse>, Status> {
        self.inner.get_entitlements(r).await
    }
}

fn remote_config(address: SocketAddr) -> RemoteConfig {
    toml::from_str(&format!(
        r#"
endpoint = "http://{address}"
timeout_ms = 300
resource = ["https://temporal.io/attr/namespace/value/{{namespace}}"]
"#
    ))
    .unwrap()
}

fn signal(subject: &str, namespace: &str, role: warden_core::Roles) -> AuthzRequest {
    let mut operation = Operation::new(
        OperationKind::Signal,
        "temporal.api.workflowservice.v1.WorkflowService",
        "SignalWorkflowExecution",
    );
    operation.namespace = Some(namespace.into());
    AuthzRequest::new(
        Claims::for_subject(subject).with_namespace_role(namespace, role),
        operation,
    )
}

async fn ask(policy: &RemotePolicy, request: &AuthzRequest) -> Result<Effect, PolicyErrorKind> {
    policy
        .evaluate(request)
        .await
        .map(|d| d.effect())
        .map_err(|e| e.kind())
}

#[tokio::test]
async fn remote_policy_decides_through_the_point_and_fails_closed_when_it_is_slow_down_or_garbled()
{
    use warden_core::Roles;
    let slow = Slow {
        inner: DecisionService::new(point()),
        delay: Duration::from_secs(3),
    };
    let address = serve_grpc(slow).await;
    let policy = RemotePolicy::new("pdp", &remote_config(address)).unwrap();
    assert_eq!(
        ask(&policy, &signal("ann", "orders", Roles::WRITER)).await,
        Ok(Effect::Allow)
    );
    assert_eq!(
        ask(&policy, &signal("ann", "orders", Roles::READER)).await,
        Ok(Effect::Deny)
    );
    assert_eq!(
        ask(&policy, &signal("ann", "billing", Roles::ADMIN)).await,
        Ok(Effect::Deny)
    );
    // Slow: timed out within the deadline, and the next question is answered.
    let started = std::time::Instant::now();
    assert_eq!(
        ask(&policy, &signal("slow", "orders", Roles::WRITER)).await,
        Err(PolicyErrorKind::TimedOut)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        ask(&policy, &signal("ann", "orders", Roles::WRITER)).await,
        Ok(Effect::Allow)
    );

    // Down: nothing listens; then a point comes up on that port and is used.
    let vacant = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vacant_address = vacant.local_addr().unwrap();
    drop(vacant);
    let policy = RemotePolicy::new("pdp", &remote_config(vacant_address)).unwrap();
    assert_eq!(
        ask(&policy, &signal("ann", "orders", Roles::WRITER)).await,
        Err(PolicyErrorKind::Unavailable)
    );
    let listener = TcpListener::bind(vacant_address).await.unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DecisionService::new(point()).into_server())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut answered = Err(PolicyErrorKind::Unavailable);
    for _ in 0..50 {
        answered = ask(&policy, &signal("ann", "orders", Roles::WRITER)).await;
        if answered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, Ok(Effect::Allow), "served once the point is back");

    // Garbage: a peer that answers bytes that are not HTTP/2.
    let garbage = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_address = garbage.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = garbage.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nnot a decision")
                .await;
        }
    });
    let policy = RemotePolicy::new("pdp", &remote_config(garbage_address)).unwrap();
    let garbled = ask(&policy, &signal("ann", "orders", Roles::WRITER)).await;
    assert!(
        matches!(
            garbled,
            Err(PolicyErrorKind::Unavailable | PolicyErrorKind::TimedOut)
        ),
        "{garbled:?}"
    );
}

#[test]
fn remote_policy_configs_with_bad_templates_are_refused_naming_them() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let config = |resource: &str| -> RemoteConfig {
        toml::from_str(&format!(
            "endpoint = \"http://127.0.0.1:1\"\nresource = [{resource}]"
        ))
        .unwrap()
    };
    let error = RemotePolicy::new("p", &config("\"https://x/attr/a/value/{colour}\""))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("resource[0] `https://x/attr/a/value/{colour}`: unknown placeholder"),
        "{error}"
    );
    let error = RemotePolicy::new("p", &config("\"https://x/attr/a/value/{name\""))
        .unwrap_err()
        .to_string();
    assert!(error.ends_with("`{` without `}`"), "{error}");
    let error = RemotePolicy::new("p", &config("")).unwrap_err().to_string();
    assert_eq!(
        error,
        "resource: at least one attribute value template is needed"
    );
}
