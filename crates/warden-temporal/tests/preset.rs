//! The Temporal preset against the protos it is built on.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// temporalio-protos asks not to build its messages with struct literals (they may grow fields).
#![allow(clippy::field_reassign_with_default)]

use prost::Message;
use temporalio_protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
    query::v1::WorkflowQuery,
    taskqueue::v1::TaskQueue,
    update::v1::{Input, Request},
    workflowservice::v1 as wf,
};
use warden_core::{Operation, OperationKind};
use warden_policy::roles::MethodTable;
use warden_temporal::{OPERATOR_SERVICE, WORKFLOW_SERVICE, operation_map};

/// Every method of the two services, from the descriptor set `temporalio-protos` compiled.
fn service_methods() -> Vec<(String, String)> {
    // Set by this crate's build script from `temporalio-protos`' `links` metadata.
    let path = env!("TEMPORAL_DESCRIPTOR_SET_PATH");
    let set = prost_types::FileDescriptorSet::decode(&*std::fs::read(path).unwrap()).unwrap();
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if full == WORKFLOW_SERVICE || full == OPERATOR_SERVICE {
                for method in &service.method {
                    methods.push((full.clone(), method.name().to_owned()));
                }
            }
        }
    }
    methods
}

#[test]
fn every_method_of_both_services_is_classified() {
    let methods = service_methods();
    assert!(methods.len() > 130, "only {} methods found", methods.len());
    let map = operation_map();
    let missing: Vec<_> = methods
        .iter()
        .filter(|(service, method)| map.get(&format!("/{service}/{method}")).is_none())
        .collect();
    assert!(missing.is_empty(), "not classified: {missing:?}");
    assert_eq!(
        map.paths().count(),
        methods.len(),
        "the map names methods the protos lack"
    );
}

#[test]
fn every_method_has_temporals_scope_and_access_but_one_the_server_does_not_list() {
    let table = MethodTable::temporal();
    let unlisted: Vec<_> = service_methods()
        .into_iter()
        .filter(|(service, method)| !matches!(table.lookup(service, method), None | Some(Some(_))))
        .map(|(_, method)| method)
        .collect();
    // The server's own table has no entry for the time-skipping poll of the test server; the
    // role policy denies it like any unknown method.
    assert_eq!(unlisted, ["PollWorkflowExecutionTimeSkipping"]);
}

fn json_payloads(values: &[serde_json::Value]) -> Option<Payloads> {
    Some(Payloads {
        payloads: values
            .iter()
            .map(|v| Payload {
                metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
                data: serde_json::to_vec(v).unwrap(),
                ..Default::default()
            })
            .collect(),
    })
}

fn decode(method: &str, message: impl Message) -> Operation {
    let map = operation_map();
    let spec = map.get(&format!("/{WORKFLOW_SERVICE}/{method}")).unwrap();
    spec.decode(&message.encode_to_vec().into()).unwrap()
}

fn execution(id: &str, run: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: run.into(),
    })
}

#[test]
fn start_signal_query_and_update_carry_their_targets_and_json_arguments() {
    let mut start = wf::StartWorkflowExecutionRequest::default();
    start.namespace = "orders".into();
    start.workflow_id = "order-1".into();
    start.workflow_type = Some(WorkflowType {
        name: "OrderWorkflow".into(),
    });
    start.task_queue = Some(TaskQueue {
        name: "orders-tq".into(),
        ..Default::default()
    });
    start.input = json_payloads(&[serde_json::json!({"customer": "c-1"})]);
    let op = decode("StartWorkflowExecution", start);
    assert_eq!(op.kind, OperationKind::Execute);
    assert_eq!(op.namespace.as_deref(), Some("orders"));
    assert_eq!(op.instance_id.as_deref(), Some("order-1"));
    assert_eq!(op.workflow_type.as_deref(), Some("OrderWorkflow"));
    assert_eq!(op.task_queue.as_deref(), Some("orders-tq"));
    assert_eq!(
        op.args.get(),
        Some(&serde_json::json!([{"customer": "c-1"}]))
    );

    let mut signal = wf::SignalWorkflowExecutionRequest::default();
    signal.namespace = "orders".into();
    signal.workflow_execution = execution("order-1", "run-9");
    signal.signal_name = "approve".into();
    let op = decode("SignalWorkflowExecution", signal);
    assert_eq!(
        (op.kind, op.name.as_deref()),
        (OperationKind::Signal, Some("approve"))
    );
    assert_eq!(op.run_id.as_deref(), Some("run-9"));

    let mut query = wf::QueryWorkflowRequest::default();
    query.namespace = "orders".into();
    query.execution = execution("order-1", "");
    query.query = Some(WorkflowQuery {
        query_type: "status".into(),
        ..Default::default()
    });
    let op = decode("QueryWorkflow", query);
    assert_eq!(
        (op.kind, op.name.as_deref()),
        (OperationKind::Query, Some("status"))
    );

    let mut update = wf::UpdateWorkflowExecutionRequest::default();
    update.namespace = "orders".into();
    update.workflow_execution = execution("order-1", "");
    update.request = Some(Request {
        input: Some(Input {
            name: "set-discount".into(),
            args: json_payloads(&[serde_json::json!({"amount": 250})]),
            ..Default::default()
        }),
        ..Default::default()
    });
    let op = decode("UpdateWorkflowExecution", update);
    assert_eq!(
        (op.kind, op.name.as_deref()),
        (OperationKind::Update, Some("set-discount"))
    );
    assert_eq!(
        op.args.get().unwrap().pointer("/0/amount"),
        Some(&serde_json::json!(250))
    );
}

#[test]
fn signal_with_start_is_also_a_signal_and_other_encodings_stay_opaque() {
    let mut sws = wf::SignalWithStartWorkflowExecutionRequest::default();
    sws.namespace = "orders".into();
    sws.workflow_id = "order-2".into();
    sws.signal_name = "approve".into();
    sws.signal_input = Some(Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_owned(), b"binary/protobuf".to_vec())].into(),
            data: vec![1, 2, 3],
            ..Default::default()
        }],
    });
    let op = decode("SignalWithStartWorkflowExecution", sws);
    assert_eq!(op.kind, OperationKind::Execute);
    assert!(op.is(OperationKind::Signal));
    assert_eq!(op.name.as_deref(), Some("approve"));
    assert!(
        op.args.is_present() && op.args.get().is_none(),
        "opaque arguments"
    );
}

#[test]
fn terminate_reset_and_delete_are_terminations_and_polls_are_worker_calls() {
    let map = operation_map();
    let kind = |method: &str| {
        map.get(&format!("/{WORKFLOW_SERVICE}/{method}"))
            .map(|spec| spec.kind())
            .unwrap()
    };
    for method in [
        "TerminateWorkflowExecution",
        "ResetWorkflowExecution",
        "DeleteWorkflowExecution",
    ] {
        assert_eq!(kind(method), OperationKind::Terminate, "{method}");
    }
    assert_eq!(
        kind("RequestCancelWorkflowExecution"),
        OperationKind::Cancel
    );
    assert_eq!(kind("PollWorkflowTaskQueue"), OperationKind::Worker);
    assert_eq!(kind("RegisterNamespace"), OperationKind::Admin);
    assert_eq!(kind("DescribeWorkflowExecution"), OperationKind::Read);
}
