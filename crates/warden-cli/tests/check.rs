//! `warden check` as a team's CI would run it: the real binary, the example policy files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("the warden binary runs")
}

fn check(config: &Path, request: &Path, json: bool) -> Output {
    let mut args = vec![
        "check",
        "--config",
        config.to_str().unwrap(),
        "--request",
        request.to_str().unwrap(),
    ];
    if json {
        args.push("--json");
    }
    warden(&args)
}

#[test]
fn an_allowed_request_exits_zero_and_lists_every_policy() {
    let dir = examples();
    let out = check(
        &dir.join("warden.toml"),
        &dir.join("requests/alice-small-discount.json"),
        false,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ALLOW"), "{text}");
    assert!(
        text.contains("rules: allow by rules/small-discounts"),
        "{text}"
    );
    assert!(
        text.contains("owner: allow by instances/initiator (initiator)"),
        "{text}"
    );
}

#[test]
fn a_denied_request_exits_one_and_names_what_decided() {
    let dir = examples();
    let out = check(
        &dir.join("warden.toml"),
        &dir.join("requests/bob-approve.json"),
        true,
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowed"], false);
    assert_eq!(json["decision"]["decider"], "privileges");
    assert_eq!(
        json["decision"]["reason"],
        "missing privilege `orders.approve`"
    );
    let big = check(
        &dir.join("warden.toml"),
        &dir.join("requests/alice-big-discount.json"),
        true,
    );
    assert_eq!(big.status.code(), Some(1));
}

#[test]
fn config_errors_exit_two_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("warden-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let request = examples().join("requests/alice-small-discount.json");
    std::fs::write(
        dir.join("rules.toml"),
        "[[rule]]\nid = \"x\"\neffect = \"allow\"\nkinds = [\"updat\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("warden.toml"),
        "[policies.file]\ntype = \"rules\"\npath = \"rules.toml\"\n[authorize]\ndefault = [\"file\"]\n",
    )
    .unwrap();
    let out = check(&dir.join("warden.toml"), &request, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("rules.toml:1: rule `x`: unknown operation kind `updat`"),
        "{err}"
    );

    std::fs::write(
        dir.join("warden.toml"),
        "[authorize]\ndefault = [\"missing\"]\n",
    )
    .unwrap();
    let out = check(&dir.join("warden.toml"), &request, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("authorize.default: no policy named `missing`"),
        "{err}"
    );

    std::fs::write(
        dir.join("warden.toml"),
        "[policies.x]\ntype = \"roles\"\ntabel = \"empty\"\n",
    )
    .unwrap();
    let out = check(&dir.join("warden.toml"), &request, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("warden.toml: TOML parse error at line 1"),
        "{err}"
    );
    assert!(
        err.contains("unknown field `tabel`, expected `table` or `methods`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `warden check` with a proxy config and the call given by flags.
fn check_call(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["check", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = warden(&all);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const WORKFLOW_SERVICE: &str = "/temporal.api.workflowservice.v1.WorkflowService";

#[test]
fn a_temporal_proxy_config_classifies_the_method_path_and_json_message_as_the_proxy_does() {
    let proxy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/proxy");
    let config = proxy.join("temporal.toml");
    let describe = format!("{WORKFLOW_SERVICE}/DescribeWorkflowExecution");
    let terminate = format!("{WORKFLOW_SERVICE}/TerminateWorkflowExecution");
    let target = r#"{"namespace": "orders", "execution": {"workflowId": "order-1"}}"#;

    let (code, out, err) = check_call(
        &config,
        &[
            "--method",
            &describe,
            "--message",
            target,
            "-H",
            "x-api-key: bob-key-change-me",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("ALLOW: allow by roles\n"), "{out}");
    assert!(out.contains("caller: bob\n"), "{out}");
    assert!(
        out.contains(&format!(
            "operation: read {}/DescribeWorkflowExecution namespace=orders instance=order-1\n",
            &WORKFLOW_SERVICE[1..]
        )),
        "{out}"
    );

    // Temporal's own refusal, as the proxy sends it, with what each policy said.
    let message = r#"{"namespace": "orders", "workflowExecution": {"workflowId": "order-1"}}"#;
    let (code, out, _) = check_call(
        &config,
        &[
            "--method",
            &terminate,
            "--message",
            message,
            "-H",
            "x-api-key: bob-key-change-me",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("status: PERMISSION_DENIED\nmessage: Request unauthorized.\n"),
        "{out}"
    );
    assert!(
        out.contains("  roles: deny by roles (needs the writer role in namespace `orders`; the caller has reader)"),
        "{out}"
    );

    let (code, out, _) = check_call(
        &config,
        &["--method", &terminate, "--message", message, "--json"],
    );
    assert_eq!(code, Some(1));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["status"], "unauthenticated", "{json}");
    assert_eq!(json["decision"]["decider"], "authentication");
    assert_eq!(json["operation"]["kind"], "terminate");
    assert_eq!(json["operation"]["instance"], "order-1");

    // Request files: the update's payloads are decoded and judged by the rules file.
    let big = check(
        &config,
        &proxy.join("requests/alice-big-discount.json"),
        false,
    );
    let text = String::from_utf8(big.stdout).unwrap();
    assert_eq!(big.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with(
            "DENY: deny by rules/discount-limit (discounts over 1000 need approval)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("name=set-discount args=[{\"amount\":5000}]"),
        "{text}"
    );
    let small = check(
        &config,
        &proxy.join("requests/alice-small-discount.json"),
        false,
    );
    let text = String::from_utf8(small.stdout).unwrap();
    assert_eq!(small.status.code(), Some(0), "{text}");
    assert!(
        text.contains("  amounts: allow by rules/updates\n"),
        "{text}"
    );
}

#[test]
fn a_descriptor_set_proxy_config_judges_metadata_the_client_certificate_and_the_peer() {
    use warden_example::issuer::{Name, TestCa};

    let dir = std::env::temp_dir().join(format!("warden-check-call-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::new("apps");
    let client = ca.client(Name::Uri("spiffe://example.org/ns/orders/app"));
    let stranger = TestCa::new("elsewhere").client(Name::Uri("spiffe://example.org/ns/orders/app"));
    std::fs::write(dir.join("ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(dir.join("client.pem"), &client.cert_pem).unwrap();
    std::fs::write(dir.join("stranger.pem"), &stranger.cert_pem).unwrap();
    std::fs::write(
        dir.join("example.binpb"),
        warden_example::FILE_DESCRIPTOR_SET,
    )
    .unwrap();
    std::fs::write(
        dir.join("proxy.toml"),
        r#"
[listen]
address = "127.0.0.1:0"

[upstream]
address = "http://127.0.0.1:9"

[service]
preset = "none"
descriptor_set = "example.binpb"
method = [
    { path = "/warden.example.v1.WorkflowService/UpdateWorkflow", kind = "update", namespace = "namespace", instance = "execution.workflow_id", name = "update_name", args = "input" },
]

[[identity.mappers]]
type = "mtls"
trust_anchors = "ca.pem"
identities = [{ identity = "spiffe://example.org/ns/orders/*", namespaces = { orders = "writer" } }]

[policies.rules]
type = "rules"
path = "rules.toml"

[authorize]
default = ["rules"]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("rules.toml"),
        r#"
[[rule]]
id = "discount-limit"
effect = "deny"
reason = "discounts over 1000 need approval"
kinds = ["update"]
args = [{ pointer = "/amount", gt = 1000 }]

[[rule]]
id = "tenant-updates"
effect = "allow"
kinds = ["update"]
subject = { roles = ["writer"] }
metadata = [{ name = "x-tenant", in = ["acme"] }]
transport = { peer_certificate = true, peer_in = ["10.0.0.0/8"] }
"#,
    )
    .unwrap();
    let config = dir.join("proxy.toml");
    let client_pem = dir.join("client.pem");
    let stranger_pem = dir.join("stranger.pem");
    // {"amount":250} and {"amount":5000}, base64 as proto JSON spells `bytes`.
    let update = |amount: &str| {
        format!(
            r#"{{"namespace": "orders", "execution": {{"workflowId": "o-1"}}, "updateName": "set-discount", "input": "{amount}"}}"#
        )
    };
    let small = update("eyJhbW91bnQiOjI1MH0=");
    let big = update("eyJhbW91bnQiOjUwMDB9");
    let method = "/warden.example.v1.WorkflowService/UpdateWorkflow";
    let call = |message: &str, extra: &[&str]| {
        let mut args = vec!["--method", method, "--message", message];
        args.extend_from_slice(extra);
        check_call(&config, &args)
    };
    let cert = client_pem.to_str().unwrap();
    let inside = [
        "--cert",
        cert,
        "--peer",
        "10.1.2.3:5000",
        "-H",
        "x-tenant: acme",
    ];

    let (code, out, err) = call(&small, &inside);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("ALLOW: allow by rules/tenant-updates\n"),
        "{out}"
    );
    assert!(
        out.contains("caller: spiffe://example.org/ns/orders/app\n"),
        "{out}"
    );
    assert!(
        out.contains("operation: update warden.example.v1.WorkflowService/UpdateWorkflow namespace=orders instance=o-1 name=set-discount args={\"amount\":250}\n"),
        "{out}"
    );

    let (code, out, _) = call(&big, &inside);
    assert_eq!(code, Some(1));
    assert!(out.contains("status: PERMISSION_DENIED\nmessage: permission denied: discounts over 1000 need approval\n"), "{out}");

    let (code, out, _) = call(
        &small,
        &[
            "--cert",
            cert,
            "--peer",
            "192.0.2.1:5000",
            "-H",
            "x-tenant: acme",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("message: permission denied: no rule allows this call\n"),
        "{out}"
    );

    let (code, out, _) = call(
        &small,
        &[
            "--cert",
            cert,
            "--peer",
            "10.1.2.3:5000",
            "-H",
            "x-tenant: acme",
            "-H",
            "x-tenant: globex",
        ],
    );
    assert_eq!(
        code,
        Some(1),
        "a second tenant value fails the allow rule: {out}"
    );

    let (code, out, _) = call(&small, &["--peer", "10.1.2.3:5000", "-H", "x-tenant: acme"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("status: UNAUTHENTICATED\n"), "{out}");

    let stranger = stranger_pem.to_str().unwrap();
    let (code, out, _) = call(
        &small,
        &[
            "--cert",
            stranger,
            "--peer",
            "10.1.2.3:5000",
            "-H",
            "x-tenant: acme",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("status: UNAUTHENTICATED\n"),
        "a certificate the anchors did not issue: {out}"
    );

    let (code, _, err) = check_call(
        &config,
        &["--method", "/warden.example.v1.WorkflowService/Nope"],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains(
            "no descriptor the config names has the method /warden.example.v1.WorkflowService/Nope"
        ),
        "{err}"
    );
    let (code, _, err) = call(r#"{"namespace": "orders", "amount": 5}"#, &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("the message is not a valid warden.example.v1.UpdateWorkflowRequest"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
