//! Operation maps built at run time from a protobuf descriptor set and field paths in config.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use support::*;
use tonic::Code;
use warden_core::OperationKind;
use warden_example::{FILE_DESCRIPTOR_SET, path, pb, policies};
use warden_tower::{WardenLayer, map::ReflectConfig};

const START: &str = r#"
[[method]]
path = "/warden.example.v1.WorkflowService/StartWorkflow"
kind = "execute"
namespace = "namespace"
instance = "workflow_id"
workflow_type = "workflow_type"
task_queue = "task_queue"
args = "input"
"#;

const UPDATE: &str = r#"
[[method]]
path = "/warden.example.v1.WorkflowService/UpdateWorkflow"
kind = "update"
namespace = "namespace"
instance = "execution.workflow_id"
run = "execution.run_id"
name = "update_name"
args = "input"
"#;

const BATCH: &str = r#"
[[method]]
path = "/warden.example.v1.WorkflowService/SignalWorkflowBatch"
kind = "signal"
namespace = "namespace"
instance = "execution.workflow_id"
name = "signal_name"
"#;

/// Three methods: a start, an update and a client stream.
fn three_methods() -> String {
    [START, UPDATE, BATCH].concat()
}

fn config(text: &str) -> Result<ReflectConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn the_descriptor_decides_client_streaming_and_paths_are_checked() {
    let map = config(&three_methods())
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap();
    let batch = map.get(&path("SignalWorkflowBatch")).unwrap();
    assert!(batch.is_client_streaming());
    assert_eq!(batch.kind(), OperationKind::Signal);
    assert!(
        !map.get(&path("UpdateWorkflow"))
            .unwrap()
            .is_client_streaming()
    );
}

#[test]
fn config_errors_name_the_method_and_what_was_expected() {
    let unknown_field = three_methods().replace("execution.workflow_id", "execution.workflowid");
    let error = config(&unknown_field)
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap_err()
        .to_string();
    assert!(error.contains("has no field `workflowid`"), "{error}");

    let not_text = three_methods().replace("name = \"update_name\"", "name = \"input\"");
    let error = config(&not_text)
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap_err()
        .to_string();
    assert!(error.contains("`input` is not a string field"), "{error}");

    let unknown_method = three_methods().replace("UpdateWorkflow\"", "Upgrade\"");
    let error = config(&unknown_method)
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap_err()
        .to_string();
    assert!(error.contains("has no method `Upgrade`"), "{error}");

    let bad_kind = three_methods().replace("kind = \"update\"", "kind = \"upsert\"");
    let error = config(&bad_kind)
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown operation kind `upsert`"), "{error}");

    let typo = format!("{}\nnamspace = \"namespace\"\n", three_methods());
    assert!(config(&typo).is_err(), "unknown keys are errors");
}

#[tokio::test]
async fn a_reflect_map_decodes_arguments_for_policies_like_a_typed_map() {
    let map = config(&three_methods())
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap();
    let layer = WardenLayer::builder(map)
        .authenticate(policies::identities())
        .execute(policies::writers())
        .update(policies::updates_up_to_1000())
        .build()
        .unwrap();
    let (addr, log) = serve(layer).await;
    let mut client = client(addr).await;
    client
        .start_workflow(as_user("alice-token", start("orders", "o-1")))
        .await
        .unwrap();
    client
        .update_workflow(as_user("alice-token", update("orders", "o-1", 999)))
        .await
        .unwrap();
    let denied = client
        .update_workflow(as_user("alice-token", update("orders", "o-1", 1001)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "permission denied: amount 1001 is over 1000"
    );
    // Methods the config leaves out are `other` and denied by default.
    let other = client
        .query_workflow(as_user("root-token", query("orders", "o-1")))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    assert_eq!(log.len(), 2);
}

/// The other example methods with targets, mapped by config: with [`START`] and [`UPDATE`],
/// every path is checked against the descriptors and read as field numbers (the example
/// protos have no `oneof`).
const MORE: &str = r#"
[[method]]
path = "/warden.example.v1.WorkflowService/SignalWorkflow"
kind = "signal"
namespace = "namespace"
instance = "execution.workflow_id"
run = "execution.run_id"
name = "signal_name"
args = "input"

[[method]]
path = "/warden.example.v1.WorkflowService/QueryWorkflow"
kind = "query"
namespace = "namespace"
instance = "execution.workflow_id"
run = "execution.run_id"
name = "query_type"
args = "args"

[[method]]
path = "/warden.example.v1.WorkflowService/CancelWorkflow"
kind = "cancel"
namespace = "namespace"
instance = "execution.workflow_id"
run = "execution.run_id"
"#;

/// A small deterministic generator, so a failure names a reproducible case.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Empty (absent in proto3), a short name, or JSON.
    fn text(&mut self, field: &str) -> String {
        match self.next() % 4 {
            0 => String::new(),
            1 => format!("{field}-{}", self.next() % 100),
            2 => format!("{{\"amount\":{}}}", self.next() % 2000),
            _ => format!("ünïcode-{field}"),
        }
    }

    fn execution(&mut self) -> Option<pb::WorkflowExecution> {
        (!self.next().is_multiple_of(3)).then(|| pb::WorkflowExecution {
            workflow_id: self.text("wf"),
            run_id: self.text("run"),
        })
    }

    /// One encoded request of `method`, every field chosen at random.
    fn request(&mut self, method: &str) -> Vec<u8> {
        use prost::Message;
        match method {
            "StartWorkflow" => pb::StartWorkflowRequest {
                namespace: self.text("ns"),
                workflow_id: self.text("wf"),
                workflow_type: self.text("type"),
                task_queue: self.text("queue"),
                input: self.text("input").into_bytes(),
                identity: self.text("identity"),
            }
            .encode_to_vec(),
            "SignalWorkflow" => pb::SignalWorkflowRequest {
                namespace: self.text("ns"),
                execution: self.execution(),
                signal_name: self.text("signal"),
                input: self.text("input").into_bytes(),
                identity: self.text("identity"),
            }
            .encode_to_vec(),
            "QueryWorkflow" => pb::QueryWorkflowRequest {
                namespace: self.text("ns"),
                execution: self.execution(),
                query_type: self.text("query"),
                args: self.text("args").into_bytes(),
            }
            .encode_to_vec(),
            "UpdateWorkflow" => pb::UpdateWorkflowRequest {
                namespace: self.text("ns"),
                execution: self.execution(),
                update_name: self.text("update"),
                input: self.text("input").into_bytes(),
                identity: self.text("identity"),
            }
            .encode_to_vec(),
            _ => pb::CancelWorkflowRequest {
                namespace: self.text("ns"),
                execution: self.execution(),
                reason: self.text("reason"),
            }
            .encode_to_vec(),
        }
    }
}

#[test]
fn field_number_typed_and_reflect_maps_read_the_same_operation_from_any_request() {
    let fields = warden_example::operation_map();
    let typed = warden_example::typed_operation_map();
    let reflect = config(&[START, UPDATE, MORE].concat())
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap();
    let mut random = Lcg(7);
    for method in [
        "StartWorkflow",
        "SignalWorkflow",
        "QueryWorkflow",
        "UpdateWorkflow",
        "CancelWorkflow",
    ] {
        for case in 0..300 {
            // Concatenated encodings are one message to protobuf: later fields win and
            // embedded messages merge. Up to three parts exercise both.
            let mut encoded = Vec::new();
            for _ in 0..=random.next() % 3 {
                encoded.extend(random.request(method));
            }
            let encoded = bytes::Bytes::from(encoded);
            let decode = |map: &warden_tower::map::OperationMap| {
                map.get(&path(method)).unwrap().decode(&encoded).unwrap()
            };
            let expected = decode(&typed);
            assert_eq!(decode(&fields), expected, "{method} case {case}");
            assert_eq!(decode(&reflect), expected, "{method} case {case}");
            assert_eq!(
                decode(&fields).args.is_present(),
                expected.args.is_present(),
                "{method} case {case}"
            );
        }
    }
}
