//! Passports written into Temporal requests: the caller's removed, one per operation, and
//! every other byte of the message kept.
#![cfg(feature = "passport")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use prost::Message;
use temporalio_protos::temporal::api::{
    common::v1::{Header, Payload, Payloads},
    update::v1::{Input, Request},
    workflowservice::v1::{
        ExecuteMultiOperationRequest, StartWorkflowExecutionRequest,
        UpdateWorkflowExecutionRequest,
        execute_multi_operation_request::{Operation as MultiOperation, operation::Operation},
    },
};
use warden_core::{Claims, OperationKind};
use warden_passport::{Binding, Issuer, SigningKey, TrustedKeys, Verifier};
use warden_temporal::passport::{PassportWriter, passport_in, payloads_digest};

const SERVICE: &str = "/temporal.api.workflowservice.v1.WorkflowService";

fn writer() -> (PassportWriter, Verifier) {
    let key = SigningKey::from_secret(&[9; 32], "edge-1").unwrap();
    let verifier = Verifier::new(
        TrustedKeys::new().with_signing_key(&key).unwrap(),
        "warden-proxy",
    );
    (
        PassportWriter::new(Issuer::new("warden-proxy", key)),
        verifier,
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn forged_header() -> Header {
    let payload = |data: &str| Payload {
        data: data.as_bytes().to_vec(),
        ..Default::default()
    };
    Header {
        fields: HashMap::from([
            ("warden-passport".to_owned(), payload("forged")),
            ("trace".to_owned(), payload("t-1")),
        ]),
    }
}

fn input() -> Payloads {
    Payloads {
        payloads: vec![Payload {
            metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
            data: b"42".to_vec(),
            ..Default::default()
        }],
    }
}

fn start() -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "orders".into(),
        workflow_id: "order-1".into(),
        input: Some(input()),
        header: Some(forged_header()),
        ..Default::default()
    }
}

#[test]
fn a_start_gets_a_fresh_passport_and_keeps_every_other_byte() {
    let (writer, verifier) = writer();
    let mut message = start().encode_to_vec();
    // A field this build does not know (number 999, varint 7): a re-encoding would lose it.
    message.extend_from_slice(&[0xb8, 0x3e, 0x07]);
    let path = format!("{SERVICE}/StartWorkflowExecution");
    let written = writer
        .write(&path, &message, Some(&Claims::for_subject("ann")))
        .unwrap()
        .unwrap();
    let decoded = StartWorkflowExecutionRequest::decode(&written[..]).unwrap();
    let header = decoded.header.as_ref().unwrap();
    assert_eq!(header.fields["trace"].data, b"t-1", "other entries stay");
    let token = passport_in(&header.fields, "warden-passport").unwrap();
    assert_ne!(token, "forged", "the caller's passport is gone");
    let binding = Binding::new("orders", "order-1", OperationKind::Execute)
        .with_input(payloads_digest(&input().payloads));
    let passport = verifier.verify(token, &binding, now()).unwrap();
    assert_eq!(passport.claims.subject.as_deref(), Some("ann"));
    // Everything but the header is byte for byte what the caller sent, unknown field too.
    let without_header = |bytes: &[u8]| {
        let mut request = StartWorkflowExecutionRequest::decode(bytes).unwrap();
        request.header = None;
        request.encode_to_vec()
    };
    assert_eq!(without_header(&written), without_header(&message));
    assert!(written.windows(3).any(|w| w == [0xb8, 0x3e, 0x07]));
}

#[test]
fn a_call_that_was_not_allowed_only_loses_the_callers_passport() {
    let (writer, _) = writer();
    let path = format!("{SERVICE}/StartWorkflowExecution");
    let written = writer
        .write(&path, &start().encode_to_vec(), None)
        .unwrap()
        .unwrap();
    let decoded = StartWorkflowExecutionRequest::decode(&written[..]).unwrap();
    let fields = decoded.header.unwrap().fields;
    assert!(!fields.contains_key("warden-passport"));
    assert!(fields.contains_key("trace"));
    assert!(
        writer
            .write(
                &format!("{SERVICE}/DescribeWorkflowExecution"),
                b"\x0a\x01x",
                None
            )
            .unwrap()
            .is_none(),
        "other methods carry no passport and are left alone"
    );
}

#[test]
fn update_with_start_gets_one_passport_per_operation() {
    let (writer, verifier) = writer();
    let update = UpdateWorkflowExecutionRequest {
        namespace: "orders".into(),
        workflow_execution: Some(
            temporalio_protos::temporal::api::common::v1::WorkflowExecution {
                workflow_id: "order-1".into(),
                ..Default::default()
            },
        ),
        request: Some(Request {
            input: Some(Input {
                header: Some(forged_header()),
                name: "discount".into(),
                args: Some(input()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let request = ExecuteMultiOperationRequest {
        namespace: "orders".into(),
        operations: vec![
            MultiOperation {
                operation: Some(Operation::StartWorkflow(start())),
            },
            MultiOperation {
                operation: Some(Operation::UpdateWorkflow(update)),
            },
        ],
        ..Default::default()
    };
    let path = format!("{SERVICE}/ExecuteMultiOperation");
    let written = writer
        .write(
            &path,
            &request.encode_to_vec(),
            Some(&Claims::for_subject("ann")),
        )
        .unwrap()
        .unwrap();
    let decoded = ExecuteMultiOperationRequest::decode(&written[..]).unwrap();
    assert_eq!(decoded.operations.len(), 2, "no operation added or lost");
    let digest = payloads_digest(&input().payloads);
    let Some(Operation::StartWorkflow(start)) = &decoded.operations[0].operation else {
        panic!("the start stays first")
    };
    let token = passport_in(&start.header.as_ref().unwrap().fields, "warden-passport").unwrap();
    let execute = Binding::new("orders", "order-1", OperationKind::Execute).with_input(&digest);
    verifier.verify(token, &execute, now()).unwrap();
    let Some(Operation::UpdateWorkflow(update)) = &decoded.operations[1].operation else {
        panic!("the update stays second")
    };
    let input = update.request.as_ref().unwrap().input.as_ref().unwrap();
    let token = passport_in(&input.header.as_ref().unwrap().fields, "warden-passport").unwrap();
    let discount = Binding::new("orders", "order-1", OperationKind::Update)
        .with_name("discount")
        .with_input(&digest);
    verifier.verify(token, &discount, now()).unwrap();
    assert!(
        verifier.verify(token, &execute, now()).is_err(),
        "the update's passport admits no start"
    );
}

#[test]
fn a_message_that_is_not_its_request_is_refused() {
    let (writer, _) = writer();
    let path = format!("{SERVICE}/SignalWorkflowExecution");
    let error = writer
        .write(
            &path,
            &[0x0a, 0x10, 0x01],
            Some(&Claims::for_subject("ann")),
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("SignalWorkflowExecution"),
        "{error}"
    );
}

#[test]
fn batch_signals_and_schedules_lose_the_callers_passport_and_get_none() {
    use temporalio_protos::temporal::api::{
        batch::v1::BatchOperationSignal,
        schedule::v1::{Schedule, ScheduleAction, schedule_action::Action},
        workflow::v1::NewWorkflowExecutionInfo,
        workflowservice::v1::{
            CreateScheduleRequest, StartBatchOperationRequest,
            start_batch_operation_request::Operation as BatchOperation,
        },
    };
    let (writer, _) = writer();
    let claims = Claims::for_subject("ann");
    let batch = StartBatchOperationRequest {
        namespace: "orders".into(),
        operation: Some(BatchOperation::SignalOperation(BatchOperationSignal {
            signal: "add".into(),
            header: Some(forged_header()),
            ..Default::default()
        })),
        ..Default::default()
    };
    let written = writer
        .write(
            &format!("{SERVICE}/StartBatchOperation"),
            &batch.encode_to_vec(),
            Some(&claims),
        )
        .unwrap()
        .unwrap();
    let Some(BatchOperation::SignalOperation(signal)) =
        StartBatchOperationRequest::decode(&written[..])
            .unwrap()
            .operation
    else {
        panic!("still a signal batch")
    };
    let fields = signal.header.unwrap().fields;
    assert!(!fields.contains_key("warden-passport") && fields.contains_key("trace"));

    let schedule = CreateScheduleRequest {
        namespace: "orders".into(),
        schedule: Some(Schedule {
            action: Some(ScheduleAction {
                action: Some(Action::StartWorkflow(NewWorkflowExecutionInfo {
                    workflow_id: "nightly".into(),
                    header: Some(forged_header()),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let written = writer
        .write(
            &format!("{SERVICE}/CreateSchedule"),
            &schedule.encode_to_vec(),
            Some(&claims),
        )
        .unwrap()
        .unwrap();
    let decoded = CreateScheduleRequest::decode(&written[..]).unwrap();
    let Some(Action::StartWorkflow(start)) = decoded.schedule.unwrap().action.unwrap().action
    else {
        panic!("still a start")
    };
    let fields = start.header.unwrap().fields;
    assert!(!fields.contains_key("warden-passport") && fields.contains_key("trace"));
}
