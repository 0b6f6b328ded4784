//! Operation maps built at run time from a protobuf descriptor set and field paths in config.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly

mod support;

use support::*;
use tonic::Code;
use warden_core::OperationKind;
use warden_example::{FILE_DESCRIPTOR_SET, path, policies};
use warden_tower::{Warden, map::ReflectConfig};

const CONFIG: &str = r#"
[[method]]
path = "/warden.example.v1.WorkflowService/StartWorkflow"
kind = "execute"
namespace = "namespace"
instance = "workflow_id"
workflow_type = "workflow_type"
task_queue = "task_queue"
args = "input"

[[method]]
path = "/warden.example.v1.WorkflowService/UpdateWorkflow"
kind = "update"
namespace = "namespace"
instance = "execution.workflow_id"
run = "execution.run_id"
name = "update_name"
args = "input"

[[method]]
path = "/warden.example.v1.WorkflowService/SignalWorkflowBatch"
kind = "signal"
namespace = "namespace"
instance = "execution.workflow_id"
name = "signal_name"
"#;

fn config(text: &str) -> Result<ReflectConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn the_descriptor_decides_client_streaming_and_paths_are_checked() {
    let map = config(CONFIG).unwrap().build(FILE_DESCRIPTOR_SET).unwrap();
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
    let unknown_field = CONFIG.replace("execution.workflow_id", "execution.workflowid");
    let error = config(&unknown_field)
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap_err()
        .to_string();
    assert!(error.contains("has no field `workflowid`"), "{error}");

    let not_text = CONFIG.replace("name = \"update_name\"", "name = \"input\"");
    let error = config(&not_text)
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap_err()
        .to_string();
    assert!(error.contains("`input` is not a string field"), "{error}");

    let unknown_method = CONFIG.replace("UpdateWorkflow\"", "Upgrade\"");
    let error = config(&unknown_method)
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap_err()
        .to_string();
    assert!(error.contains("has no method `Upgrade`"), "{error}");

    let bad_kind = CONFIG.replace("kind = \"update\"", "kind = \"upsert\"");
    let error = config(&bad_kind)
        .unwrap()
        .build(FILE_DESCRIPTOR_SET)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown operation kind `upsert`"), "{error}");

    let typo = format!("{CONFIG}\nnamspace = \"namespace\"\n");
    assert!(config(&typo).is_err(), "unknown keys are errors");
}

#[tokio::test]
async fn a_reflect_map_decodes_arguments_for_policies_like_a_typed_map() {
    let map = config(CONFIG).unwrap().build(FILE_DESCRIPTOR_SET).unwrap();
    let layer = Warden::builder(map)
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
