//! The workflow the tests run on a real `temporalio-sdk` worker: an order that adds up
//! amounts (signal `add`), reports its total (query `total`), takes a discount (update
//! `set-discount`) and finishes on signal `close`.

#![allow(unreachable_pub, dead_code)]

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

/// The update's argument; rules read `/0/amount`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Discount {
    pub amount: i64,
}

#[workflow]
#[derive(Default)]
pub struct OrderWorkflow {
    total: i64,
    discount: i64,
    closed: bool,
}

#[workflow_methods]
impl OrderWorkflow {
    #[run(name = "Order")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, opening: i64) -> WorkflowResult<i64> {
        // Signals that arrived with the start are applied before this runs: add, never overwrite.
        ctx.state_mut(|s| s.total += opening);
        ctx.wait_condition(|s| s.closed).await?;
        Ok(ctx.state(|s| s.total - s.discount))
    }

    #[signal(name = "add")]
    pub fn add(&mut self, _ctx: &mut SyncWorkflowContext<Self>, amount: i64) {
        self.total += amount;
    }

    #[signal(name = "close")]
    pub fn close(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _reason: String) {
        self.closed = true;
    }

    #[query(name = "total")]
    pub fn total(&self, _ctx: &WorkflowContextView) -> i64 {
        self.total - self.discount
    }

    #[update(name = "set-discount")]
    pub fn set_discount(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        discount: Discount,
    ) -> i64 {
        self.discount = discount.amount;
        self.total - self.discount
    }
}
