//! Later messages of a client stream: each is judged like the first, by every authorization
//! step the first message went through.
//!
//! Those steps come after classification, so they register themselves here (as
//! [`StreamCheck`]s, with the caller's claims) rather than being called from here: data flows
//! from classify to authorize, never back.

use std::sync::{Arc, Mutex, PoisonError};

use warden_core::{Answer, AuthzRequest, Claims, Operation, RequestContext};

use crate::{body::StreamDenial, rejection::Rejection};

/// A check every later message of a client stream must pass.
pub(crate) trait StreamCheck: Send + Sync + 'static {
    /// Judges one later message; `decided` says whether an earlier check already decided it.
    /// Answers whether the message is decided now.
    fn check(&self, request: &AuthzRequest, decided: bool) -> Answer<Result<bool, Rejection>>;
}

/// The checks registered for one client-streaming call.
pub(crate) struct StreamChecks {
    registrations: Mutex<Vec<Registration>>,
    context: RequestContext,
    pub(crate) denial: Arc<StreamDenial>,
}

type Registration = (Arc<dyn StreamCheck>, Arc<Claims>);

impl StreamChecks {
    pub(crate) fn new(context: RequestContext) -> Self {
        Self {
            registrations: Mutex::new(Vec::new()),
            context,
            denial: Arc::new(StreamDenial::new()),
        }
    }

    /// Adds `check`, run for the caller `claims`, after those already registered.
    pub(crate) fn register(&self, check: Arc<dyn StreamCheck>, claims: Arc<Claims>) {
        self.registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((check, claims));
    }

    /// Judges message `index` of the stream like the first: every registered check in order.
    pub(crate) fn check(
        &self,
        operation: Arc<Operation>,
        index: u64,
    ) -> Answer<Result<(), Rejection>> {
        let registrations = self
            .registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let context = self.context.clone().with_message_index(index);
        let request = move |claims: &Arc<Claims>| {
            AuthzRequest::new(Arc::clone(claims), Arc::clone(&operation))
                .with_context(context.clone())
        };
        let mut decided = false;
        for (i, (check, claims)) in registrations.iter().enumerate() {
            match check.check(&request(claims), decided) {
                Answer::Ready(Ok(now)) => decided = now,
                Answer::Ready(Err(rejection)) => return Answer::Ready(Err(rejection)),
                Answer::Pending(first) => {
                    let rest = registrations[i + 1..].to_vec();
                    return Answer::pending(async move {
                        let mut decided = first.await?;
                        for (check, claims) in rest {
                            decided = check.check(&request(&claims), decided).await?;
                        }
                        Ok(())
                    });
                }
            }
        }
        Answer::Ready(Ok(()))
    }
}
