//! The workflow the worker-side tests run: every handler that runs leaves an event, so a test
//! can tell which ran; the activity `charge` runs on behalf of the starter.

#![allow(unreachable_pub, dead_code)]

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

/// How many times `charge` ran, in this process.
pub static CHARGES: AtomicUsize = AtomicUsize::new(0);

pub struct Billing;

#[activities]
impl Billing {
    #[activity(name = "charge")]
    async fn charge(_ctx: ActivityContext, amount: i64) -> Result<i64, ActivityError> {
        CHARGES.fetch_add(1, Ordering::SeqCst);
        Ok(amount)
    }
}

#[workflow]
#[derive(Default)]
pub struct GuardedOrder {
    events: Vec<String>,
    approved: bool,
    closed: bool,
}

#[workflow_methods]
impl GuardedOrder {
    #[run(name = "GuardedOrder")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, amount: i64) -> WorkflowResult<String> {
        ctx.state_mut(|s| s.events.push("run".to_owned()));
        let charged = ctx
            .execute_activity(
                Billing::charge,
                amount,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await;
        let charged = match charged {
            Ok(amount) => format!("charged:{amount}"),
            Err(_) => "charge-refused".to_owned(),
        };
        ctx.state_mut(|s| s.events.push(charged));
        ctx.wait_condition(|s| s.closed).await?;
        // An approval changes the commands: a replay that decided it differently would not
        // match the history.
        if ctx.state(|s| s.approved) {
            ctx.timer(Duration::from_millis(1)).await;
            return Ok("approved".to_owned());
        }
        Ok("closed".to_owned())
    }

    #[signal(name = "add")]
    pub fn add(&mut self, _ctx: &mut SyncWorkflowContext<Self>, amount: i64) {
        self.events.push(format!("add:{amount}"));
    }

    #[signal(name = "approve")]
    pub fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _note: String) {
        self.approved = true;
        self.events.push("approve".to_owned());
    }

    #[signal(name = "close")]
    pub fn close(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _reason: String) {
        self.closed = true;
    }

    #[query(name = "events")]
    pub fn events(&self, _ctx: &WorkflowContextView) -> Vec<String> {
        self.events.clone()
    }

    /// An update with a validator: a refused one is rejected in validation.
    #[update(name = "discount")]
    pub fn discount(&mut self, _ctx: &mut SyncWorkflowContext<Self>, amount: i64) -> i64 {
        self.events.push(format!("discount:{amount}"));
        amount
    }

    #[update_validator(discount)]
    pub fn validate_discount(
        &self,
        _ctx: &WorkflowContextView,
        _amount: &i64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }

    /// An update without a validator: a refused one is accepted, then fails.
    #[update(name = "note")]
    pub fn note(&mut self, _ctx: &mut SyncWorkflowContext<Self>, text: String) -> String {
        self.events.push(format!("note:{text}"));
        text
    }
}
