//! The load driver of `tests/load.rs` and `tests/reload_under_load.rs`: a mix of calls, half
//! allowed and half denied for alice (a writer of `orders`, nothing in `billing`), at 256 at
//! once, each answer checked against that policy.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tonic::Code;
use warden_example::pb::{DescribeWorkflowRequest, workflow_service_client::WorkflowServiceClient};

use super::{as_alice, channel, execution, signal, start};

pub const CONCURRENCY: u64 = 256;

#[derive(Default)]
pub struct Tally {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub wrong: AtomicU64,
    pub lost: AtomicU64,
}

/// Call `i` of the mix, as alice (a writer of `orders`, nothing in `billing`), and whether the
/// policy allows it.
async fn call(
    client: &mut WorkflowServiceClient<tonic::transport::Channel>,
    run: &str,
    i: u64,
) -> (bool, Result<(), tonic::Status>) {
    let id = format!("{run}-{i}");
    // Nothing is started, so the handlers keep no state that grows with the calls: the allowed
    // calls reach a handler that answers NOT_FOUND.
    let missing = |namespace: &str| DescribeWorkflowRequest {
        namespace: namespace.into(),
        execution: execution(&id),
    };
    match i % 4 {
        0 => (
            true,
            client
                .describe_workflow(as_alice(missing("orders")))
                .await
                .map(|_| ()),
        ),
        1 => (
            false,
            client
                .start_workflow(as_alice(start("billing", &id)))
                .await
                .map(|_| ()),
        ),
        2 => (
            false,
            client
                .signal_workflow(as_alice(signal("billing", &id, "approve")))
                .await
                .map(|_| ()),
        ),
        _ => (
            true,
            client
                .signal_workflow(as_alice(signal("orders", &id, "approve")))
                .await
                .map(|_| ()),
        ),
    }
}

pub async fn load(address: SocketAddr, run: &str, calls: u64) -> Tally {
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicU64::new(0));
    let channel = channel(address).await;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (tally, next, run) = (Arc::clone(&tally), Arc::clone(&next), run.to_owned());
        let mut client = WorkflowServiceClient::new(channel.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return;
                }
                let (allowed, answer) = call(&mut client, &run, i).await;
                let counter = match (allowed, answer) {
                    (true, Ok(())) => &tally.allowed,
                    (true, Err(status)) if status.code() == Code::NotFound => &tally.allowed,
                    (false, Err(status)) if status.code() == Code::PermissionDenied => {
                        &tally.denied
                    }
                    (_, Err(status))
                        if matches!(status.code(), Code::PermissionDenied | Code::Ok) =>
                    {
                        &tally.wrong
                    }
                    (true, Err(_)) | (false, Err(_)) => &tally.lost,
                    (false, Ok(())) => &tally.wrong,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    Arc::try_unwrap(tally).ok().unwrap()
}
