//! `warden pdp` as a process: callers authenticated and authorized by the Warden stack, the
//! gRPC service and the AuthZEN endpoints answering from one model, the model reloaded while
//! it serves, health and metrics, `--check`, and a graceful SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Issuer, ProxyProcess, eventually, http_post};
use tonic::{Code, Request, transport::Channel};
use warden_pdp::{
    json_struct,
    proto::{self, decision_service_client::DecisionServiceClient},
};

const RULES: &str = r#"
[[rule]]
id = "askers"
effect = "allow"
kinds = ["read"]
subject = { system_roles = ["reader"] }
"#;

fn model(read_secret_group: &str) -> String {
    format!(
        r#"
[[attributes]]
namespace = "example.com"
name = "classification"
rule = "hierarchy"
values = ["secret", "public"]

[[subject_mappings]]
attribute_value = "https://example.com/attr/classification/value/secret"
actions = ["read"]
condition_groups = [{{ conditions = [{{ selector = ".groups[]", operator = "in", values = ["{read_secret_group}"] }}] }}]

[[subject_mappings]]
attribute_value = "https://example.com/attr/classification/value/public"
actions = ["read"]
condition_groups = [{{ conditions = [{{ selector = ".groups[]", operator = "not_in", values = ["banned"] }}] }}]
"#
    )
}

fn config(issuer: &Issuer) -> String {
    format!(
        r#"
[listen]
address = "127.0.0.1:0"
drain_seconds = 2

{mapper}

[policies.askers]
type = "rules"
path = "rules.toml"

[authorize]
default = ["askers"]

[decisions]
model = "model.toml"
reload_seconds = 1
records = "entities.json"

[limits]
max_entities = 3

[metrics]
address = "127.0.0.1:0"
"#,
        mapper = issuer.mapper_toml()
    )
}

const SECRET: &str = "https://example.com/attr/classification/value/secret";

fn multi_entity(entities: usize) -> proto::GetDecisionMultiEntityRequest {
    proto::GetDecisionMultiEntityRequest {
        entities: (0..entities)
            .map(|i| proto::Entity {
                ephemeral_id: format!("e{i}"),
                kind: Some(if i == 0 {
                    proto::entity::Kind::Id("ann".into())
                } else {
                    proto::entity::Kind::Claims(json_struct(
                        json!({"groups": ["staff"]}).as_object().unwrap(),
                    ))
                }),
            })
            .collect(),
        action: "read".into(),
        resources: vec![proto::Resource {
            ephemeral_id: "doc".into(),
            attribute_values: vec![SECRET.into()],
        }],
    }
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_pdp_serves_decisions_to_authorized_callers_over_grpc_and_authzen_and_reloads_its_model()
 {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let issuer = Issuer::start().await;
    let pdp = ProxyProcess::start_command(
        "pdp",
        "pdp",
        &[
            ("pdp.toml", config(&issuer)),
            ("rules.toml", RULES.to_owned()),
            ("model.toml", model("cleared")),
            (
                "entities.json",
                json!({"ann": {"groups": ["cleared"]}}).to_string(),
            ),
        ],
    );
    let channel = Channel::from_shared(pdp.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "warden.pdp.v1.DecisionService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let asker = issuer.token("gateway", &["temporal-system:reader"]);
    let stranger = issuer.token("app", &["orders:writer"]);
    let mut client = DecisionServiceClient::new(channel);
    let refused = client
        .get_decision_multi_entity(with_token(multi_entity(2), None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let refused = client
        .get_decision_multi_entity(with_token(multi_entity(2), Some(&stranger)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let answer = client
        .get_decision_multi_entity(with_token(multi_entity(2), Some(&asker)))
        .await
        .unwrap()
        .into_inner();
    let permitted: Vec<bool> = answer.results.iter().map(|r| r.all_permitted).collect();
    assert_eq!(
        permitted,
        [true, false],
        "ann (by id) is cleared; e1 is not"
    );
    let limit = client
        .get_decision_multi_entity(with_token(multi_entity(4), Some(&asker)))
        .await
        .unwrap_err();
    assert_eq!(limit.code(), Code::InvalidArgument);
    assert_eq!(limit.message(), "entities: 4 given, at most 3");

    // AuthZEN on the same listener, behind the same stack.
    let url = format!("{}/access/v1/evaluation", pdp.url());
    let body = json!({
        "subject": {"type": "user", "id": "ann"},
        "action": {"name": "read"},
        "resource": {"type": "doc", "id": "d", "properties": {"attribute_values": [SECRET]}},
    })
    .to_string();
    let bearer = |token: &str| format!("authorization: Bearer {token}");
    let (status, answer) = http_post(&url, &[&bearer(&asker)], &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"decision": true})
    );
    let (status, answer) = http_post(&url, &[], &body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        serde_json::from_str::<Value>(&answer).is_ok(),
        "a JSON reason: {answer}"
    );
    let (status, answer) = http_post(&url, &[&bearer(&stranger)], &body).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = http_post(&url, &[&bearer(&asker)], "{\"subject\": 1}").await;
    assert_eq!(status, 400, "{answer}");

    // The model changes on disk: ann's group no longer reads secrets, and calls never fail
    // while it reloads.
    std::fs::write(pdp.dir.join("model.toml"), model("directors")).unwrap();
    let reloaded = eventually(Duration::from_secs(15), async || {
        let (status, answer) = http_post(&url, &[&bearer(&asker)], &body).await;
        assert_eq!(status, 200, "{answer}");
        serde_json::from_str::<Value>(&answer).unwrap()["decision"] == false
    })
    .await;
    assert!(reloaded, "the reloaded model decides");
    // An invalid model is refused and the last good one keeps deciding.
    std::fs::write(pdp.dir.join("model.toml"), "[[attributes]]\nrule = 7\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, answer) = http_post(&url, &[&bearer(&asker)], &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"decision": false, "context": {"failed_definitions": ["https://example.com/attr/classification"]}})
    );

    // `warden check` asks this decision point through a remote policy (with a token); the
    // reloaded model reads secrets only for directors.
    let check_dir = support::scratch("pdp-remote-check");
    std::fs::write(check_dir.join("token"), &asker).unwrap();
    std::fs::write(
        check_dir.join("policy.toml"),
        format!(
            r#"
[policies.pdp]
type = "remote"
endpoint = "{}"
action = "read"
resource = ["https://example.com/attr/classification/value/{{name}}"]
token_file = "token"

[authorize]
default = ["pdp"]
"#,
            pdp.url()
        ),
    )
    .unwrap();
    let ask = |groups: &str, name: &str| {
        let request = check_dir.join(format!("{name}-{groups}.json"));
        std::fs::write(
            &request,
            json!({"subject": {"sub": "zed", "groups": [groups]}, "method": "/shop.Docs/Read", "kind": "query", "name": name})
                .to_string(),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["check", "--config"])
            .arg(check_dir.join("policy.toml"))
            .arg("--request")
            .arg(&request)
            .output()
            .unwrap()
    };
    let director = ask("directors", "secret");
    assert_eq!(director.status.code(), Some(0), "{director:?}");
    let staff = ask("staff", "secret");
    assert_eq!(staff.status.code(), Some(1), "{staff:?}");
    assert!(
        String::from_utf8_lossy(&staff.stdout)
            .contains("not entitled under https://example.com/attr/classification"),
        "{staff:?}"
    );

    let metrics = pdp.metrics().await;
    // The two multi-entity answers above: e0 permitted, e1 denied.
    assert_eq!(
        support::sample(
            &metrics,
            "warden_pdp_decisions_total{call=\"multi_entity\",decision=\"permit\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert!(
        support::sample(
            &metrics,
            "warden_pdp_decisions_total{call=\"bulk\",decision=\"deny\"}"
        ) >= 2.0,
        "AuthZEN evaluations count as bulk: {metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("warden_decisions_total{") && l.contains("\"read\"")),
        "callers' calls are decided by the Warden stack, as reads: {metrics}"
    );

    let logs = std::sync::Arc::clone(&pdp.logs);
    let status = pdp.terminate();
    assert!(status.success(), "{status}");
    // The decision point is gone: the remote policy fails closed, saying why.
    let down = ask("directors", "secret");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&down.stdout),
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(down.status.code(), Some(1), "{said}");
    assert!(said.contains("unavailable"), "{said}");
    let _ = std::fs::remove_dir_all(&check_dir);
    let logs = logs.lock().unwrap();
    assert!(
        logs.contains("the changed attribute model is invalid"),
        "{logs}"
    );
}

#[test]
fn warden_pdp_check_accepts_a_good_config_and_names_what_is_wrong_with_a_bad_one() {
    let dir = support::scratch("pdp-check");
    let config = r#"
[listen]
address = "127.0.0.1:0"

[[identity.mappers]]
type = "api_key"
keys = []

[decisions]
model = "model.toml"
"#;
    std::fs::write(dir.join("pdp.toml"), config).unwrap();
    std::fs::write(dir.join("model.toml"), model("cleared")).unwrap();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["pdp", "--check", "--config"])
            .arg(dir.join("pdp.toml"))
            .output()
            .unwrap()
    };
    let good = check();
    assert!(good.status.success(), "{good:?}");
    std::fs::write(
        dir.join("model.toml"),
        model("cleared").replace("operator = \"in\"", "operator = \"within\""),
    )
    .unwrap();
    let bad = check();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("decisions.model") && stderr.contains("model.toml: line 11"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
