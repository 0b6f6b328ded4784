//! Warden's demo: the example workflow service behind Warden with an in-code policy, called by
//! several identities over real loopback gRPC. Prints who did what, and whether it was allowed
//! and why.
//!
//! Run it with `cargo run --example demo`.

use std::error::Error;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    Code, Request, Status,
    transport::{Channel, Endpoint, Server},
};
use warden_example::{
    DECIDER_HEADER, ExampleService,
    pb::{workflow_service_client::WorkflowServiceClient, *},
    policies::demo_layer,
};

type Client = WorkflowServiceClient<Channel>;

struct Row {
    caller: &'static str,
    call: String,
    outcome: String,
    why: String,
}

fn request<T>(token: Option<&str>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.to_owned(),
        run_id: String::new(),
    })
}

fn outcome<T>(result: Result<tonic::Response<T>, Status>) -> (String, String) {
    match result {
        Ok(response) => {
            let decider = response
                .metadata()
                .get(DECIDER_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            ("allowed".to_owned(), format!("policy `{decider}`"))
        }
        Err(status) => {
            let code = match status.code() {
                Code::PermissionDenied => "DENIED",
                Code::Unauthenticated => "UNAUTHENTICATED",
                _ => "REFUSED",
            };
            (
                format!("{code} ({:?})", status.code()),
                status.message().to_owned(),
            )
        }
    }
}

async fn play(client: &mut Client) -> Vec<Row> {
    let token = |caller: &str| {
        warden_example::policies::IDENTITIES
            .iter()
            .find(|(name, _)| *name == caller)
            .map(|(_, token)| *token)
    };
    let mut rows = Vec::new();
    let mut push = |caller: &'static str, call: String, result: (String, String)| {
        rows.push(Row {
            caller,
            call,
            outcome: result.0,
            why: result.1,
        })
    };
    for (caller, id) in [("alice", "order-1"), ("bob", "order-2")] {
        let start = StartWorkflowRequest {
            namespace: "orders".into(),
            workflow_id: id.into(),
            workflow_type: "OrderWorkflow".into(),
            task_queue: "orders".into(),
            input: br#"{"customer":"c-42"}"#.to_vec(),
            identity: caller.into(),
        };
        let result = client.start_workflow(request(token(caller), start)).await;
        push(caller, format!("start orders/{id}"), outcome(result));
    }
    let query = |caller| {
        request(
            token(caller),
            QueryWorkflowRequest {
                namespace: "orders".into(),
                execution: execution("order-1"),
                query_type: "status".into(),
                args: Vec::new(),
            },
        )
    };
    push(
        "bob",
        "query orders/order-1 `status`".into(),
        outcome(client.query_workflow(query("bob")).await),
    );
    let signal = |caller, namespace: &str, id: &str| {
        request(
            token(caller),
            SignalWorkflowRequest {
                namespace: namespace.into(),
                execution: execution(id),
                signal_name: "approve".into(),
                input: Vec::new(),
                identity: caller.into(),
            },
        )
    };
    for caller in ["bob", "alice", "carol"] {
        let result = client
            .signal_workflow(signal(caller, "orders", "order-1"))
            .await;
        push(
            caller,
            "signal orders/order-1 `approve`".into(),
            outcome(result),
        );
    }
    let describe = request(
        token("wendy"),
        DescribeWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("order-1"),
        },
    );
    push(
        "wendy",
        "describe orders/order-1".into(),
        outcome(client.describe_workflow(describe).await),
    );
    for (caller, amount) in [("alice", 250), ("alice", 5000), ("root", 5000)] {
        let update = UpdateWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("order-1"),
            update_name: "set-discount".into(),
            input: format!(r#"{{"amount":{amount}}}"#).into_bytes(),
            identity: caller.into(),
        };
        let result = client.update_workflow(request(token(caller), update)).await;
        push(
            caller,
            format!("update orders/order-1 `set-discount` amount={amount}"),
            outcome(result),
        );
    }
    let batch = vec![
        SignalWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("order-1"),
            signal_name: "approve".into(),
            ..Default::default()
        },
        SignalWorkflowRequest {
            namespace: "billing".into(),
            execution: execution("invoice-9"),
            signal_name: "approve".into(),
            ..Default::default()
        },
    ];
    let result = client
        .signal_workflow_batch(request(token("alice"), tokio_stream::iter(batch)))
        .await;
    push(
        "alice",
        "signal batch: orders/order-1, then billing/invoice-9".into(),
        outcome(result),
    );
    let watch = request(
        token("bob"),
        WatchWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("order-1"),
        },
    );
    push(
        "bob",
        "watch orders/order-1 (server stream)".into(),
        outcome(client.watch_workflow(watch).await),
    );
    for caller in ["alice", "root"] {
        let terminate = TerminateWorkflowRequest {
            namespace: "orders".into(),
            execution: execution("order-1"),
            reason: "demo".into(),
        };
        let result = client
            .terminate_workflow(request(token(caller), terminate))
            .await;
        push(caller, "terminate orders/order-1".into(), outcome(result));
    }
    let list = ListWorkflowsRequest {
        namespace: "orders".into(),
    };
    push(
        "(no token)",
        "list orders".into(),
        outcome(client.list_workflows(request(None, list.clone())).await),
    );
    push(
        "mallory",
        "list orders (forged token)".into(),
        outcome(client.list_workflows(request(Some("forged"), list)).await),
    );
    rows
}

fn print_table(rows: &[Row]) {
    let headers = ["caller", "call", "outcome", "why"];
    let cells: Vec<[&str; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.caller,
                r.call.as_str(),
                r.outcome.as_str(),
                r.why.as_str(),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([headers[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    let line = |cols: [&str; 4]| {
        let padded: Vec<String> = cols
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(headers);
    println!("|{}|", widths.map(|w| "-".repeat(w + 2)).join("|"));
    for row in cells {
        line(row);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let service = ExampleService::new();
    let log = service.log();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::builder()
        .layer(demo_layer())
        .add_service(service.into_server())
        .serve_with_incoming(TcpListenerStream::new(listener));
    let server = tokio::spawn(server);

    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = WorkflowServiceClient::new(channel);
    println!("Warden demo: the example workflow service on {addr}, behind Warden.");
    println!(
        "alice writes `orders`, bob reads `orders`, carol writes `billing`, root is a system admin,"
    );
    println!(
        "wendy is a worker of `orders`. Updates over 1000 need an admin; only admins terminate.\n"
    );
    let rows = play(&mut client).await;
    print_table(&rows);

    let allowed = rows.iter().filter(|r| r.outcome == "allowed").count();
    println!(
        "\n{allowed} of {} calls allowed. Handlers ran {} times (the signal batch's handler started on its \
         allowed first message; its second message was refused before the handler saw it).",
        rows.len(),
        log.len()
    );
    server.abort();
    Ok(())
}
