//! The role policy decides as Temporal's default authorizer does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use warden_core::{AuthzRequest, Claims, Effect, Operation, OperationKind, Roles};
use warden_policy::roles::{
    ADMIN_SERVICE, Access, MethodTable, OPERATOR_SERVICE, RolePolicy, Scope, WORKFLOW_SERVICE,
};

/// (column label, service, method)
const METHODS: [(&str, &str, &str); 9] = [
    ("start", WORKFLOW_SERVICE, "StartWorkflowExecution"),
    ("signal", WORKFLOW_SERVICE, "SignalWorkflowExecution"),
    ("query", WORKFLOW_SERVICE, "QueryWorkflow"),
    ("describe", WORKFLOW_SERVICE, "DescribeWorkflowExecution"),
    ("register-ns", WORKFLOW_SERVICE, "RegisterNamespace"),
    ("add-search-attr", OPERATOR_SERVICE, "AddSearchAttributes"),
    ("admin-api", ADMIN_SERVICE, "DescribeCluster"),
    ("system-info", WORKFLOW_SERVICE, "GetSystemInfo"),
    ("health", "grpc.health.v1.Health", "Check"),
];

fn decide(claims: &Claims, namespace: &str, service: &str, method: &str) -> bool {
    let operation = Operation::new(OperationKind::Other, service, method).with_namespace(namespace);
    let decision = RolePolicy::temporal().decide(&AuthzRequest::new(claims.clone(), operation));
    decision.effect() == Effect::Allow
}

#[test]
fn roles_decide_as_temporals_default_authorizer() {
    let ns = |role| Claims::for_subject("n").with_namespace_role("orders", role);
    let sys = |role| Claims::for_subject("s").with_system_role(role);
    // Columns follow METHODS; Y allowed, N denied. Calls target namespace `orders`.
    let table: [(&str, Claims, &str); 9] = [
        ("system reader", sys(Roles::READER), "NNYYNNNYY"),
        ("system writer", sys(Roles::WRITER), "YYYYNNNYY"),
        ("system admin", sys(Roles::ADMIN), "YYYYYYYYY"),
        ("system worker", sys(Roles::WORKER), "NNNNNNNYY"),
        ("orders reader", ns(Roles::READER), "NNYYNNNYY"),
        ("orders writer", ns(Roles::WRITER), "YYYYNNNYY"),
        // Admin of a namespace administers it, but cluster APIs need the system role.
        ("orders admin", ns(Roles::ADMIN), "YYYYYYNYY"),
        ("orders worker", ns(Roles::WORKER), "NNNNNNNYY"),
        ("anonymous", Claims::anonymous(), "NNNNNNNYY"),
    ];
    let mut wrong = Vec::new();
    for (who, claims, expected) in &table {
        for ((label, service, method), want) in METHODS.iter().zip(expected.chars()) {
            let got = decide(claims, "orders", service, method);
            if got != (want == 'Y') {
                wrong.push(format!("{who} × {label}: expected {want}, got {got}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn namespaces_compare_exactly() {
    let writer = Claims::for_subject("w").with_namespace_role("orders", Roles::WRITER);
    assert!(decide(
        &writer,
        "orders",
        WORKFLOW_SERVICE,
        "SignalWorkflowExecution"
    ));
    assert!(!decide(
        &writer,
        "Orders",
        WORKFLOW_SERVICE,
        "SignalWorkflowExecution"
    ));
    assert!(!decide(
        &writer,
        "Orders",
        WORKFLOW_SERVICE,
        "QueryWorkflow"
    ));
}

#[test]
fn a_worker_and_a_reader_together_read_but_a_worker_alone_does_not() {
    let both =
        Claims::for_subject("w").with_namespace_role("orders", Roles::WORKER | Roles::READER);
    assert!(decide(&both, "orders", WORKFLOW_SERVICE, "QueryWorkflow"));
    let worker = Claims::for_subject("w").with_namespace_role("orders", Roles::WORKER);
    assert!(!decide(
        &worker,
        "orders",
        WORKFLOW_SERVICE,
        "PollWorkflowTaskQueue"
    ));
}

#[test]
fn unknown_methods_deny_and_the_table_extends_for_your_services() {
    let admin = Claims::for_subject("root").with_system_role(Roles::ADMIN);
    let op = || {
        Operation::new(OperationKind::Other, "shop.v1.Orders", "Refund").with_namespace("orders")
    };
    let decision = RolePolicy::temporal().decide(&AuthzRequest::new(admin.clone(), op()));
    assert_eq!(decision.effect(), Effect::Deny);
    assert!(
        decision
            .reason()
            .unwrap()
            .contains("not in the method table")
    );

    let table =
        MethodTable::temporal().method("shop.v1.Orders", "Refund", Scope::Namespace, Access::Write);
    let policy = RolePolicy::new(table);
    let writer = Claims::for_subject("w").with_namespace_role("orders", Roles::WRITER);
    assert_eq!(
        policy.decide(&AuthzRequest::new(writer, op())).effect(),
        Effect::Allow
    );
    let reader = Claims::for_subject("r").with_namespace_role("orders", Roles::READER);
    let denied = policy.decide(&AuthzRequest::new(reader, op()));
    assert_eq!(denied.decider(), "roles");
    assert_eq!(
        denied.reason(),
        Some("needs the writer role in namespace `orders`; the caller has reader")
    );
}

#[test]
fn config_entries_extend_the_table() {
    let entries: std::collections::HashMap<String, warden_policy::roles::MethodAccess> =
        toml::from_str(
            r#"
            "shop.v1.Orders/Refund" = { scope = "namespace", access = "admin" }
            "shop.v1.Reports/*" = { scope = "cluster", access = "read_only" }
            "#,
        )
        .unwrap();
    let table = MethodTable::new().extend_from(&entries).unwrap();
    let refund = table.lookup("shop.v1.Orders", "Refund").unwrap().unwrap();
    assert_eq!(refund.access, Access::Admin);
    let report = table.lookup("shop.v1.Reports", "Daily").unwrap().unwrap();
    assert_eq!(report.scope, Scope::Cluster);
    assert!(table.lookup("grpc.health.v1.Health", "Check").is_none());
    let bad: std::collections::HashMap<String, warden_policy::roles::MethodAccess> =
        toml::from_str(r#""Refund" = { scope = "namespace", access = "admin" }"#).unwrap();
    let error = MethodTable::new().extend_from(&bad).unwrap_err();
    assert_eq!(error.path, "Refund");
    assert_eq!(
        error.to_string(),
        "`Refund` is not `package.Service/Method`"
    );
}

#[test]
fn the_temporal_table_covers_the_current_frontend_methods() {
    let table = MethodTable::temporal();
    let access = |method: &str| table.lookup(WORKFLOW_SERVICE, method).unwrap().unwrap();
    assert_eq!(access("ExecuteMultiOperation").access, Access::Write);
    assert_eq!(access("PollActivityExecution").access, Access::ReadOnly);
    assert_eq!(
        access("ValidateWorkerDeploymentVersionComputeConfig").access,
        Access::ReadOnly
    );
    assert_eq!(access("SetWorkerDeploymentManager").access, Access::Write);
    assert_eq!(access("ListNamespaces").scope, Scope::Cluster);
    let nexus = table
        .lookup(OPERATOR_SERVICE, "CreateNexusEndpoint")
        .unwrap()
        .unwrap();
    assert_eq!((nexus.scope, nexus.access), (Scope::Cluster, Access::Admin));
    // A method the table does not know is denied, not guessed at.
    assert_eq!(
        table.lookup(WORKFLOW_SERVICE, "PollWorkflowExecutionTimeSkipping"),
        Some(None)
    );
}
