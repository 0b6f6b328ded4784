use std::sync::{Arc, Mutex, PoisonError};

use warden_core::{Answer, AuthzRequest, Claims, Operation, OperationKind, RequestContext};

use crate::{
    authorize::{Authorizer, check_all},
    body::StreamDenial,
    rejection::{Code, Rejection},
};

/// The checks every later message of a client stream must pass: each authorize layer the call
/// went through registers its policies here, with the caller's claims.
pub(crate) struct StreamChecks {
    registrations: Mutex<Vec<Registration>>,
    context: RequestContext,
    pub(crate) denial: Arc<StreamDenial>,
}

type Registration = (Arc<[Authorizer]>, Arc<Claims>);

impl StreamChecks {
    pub(crate) fn new(context: RequestContext) -> Self {
        Self {
            registrations: Mutex::new(Vec::new()),
            context,
            denial: Arc::new(StreamDenial::new()),
        }
    }

    pub(crate) fn register(&self, authorizers: Arc<[Authorizer]>, claims: Arc<Claims>) {
        self.registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((authorizers, claims));
    }

    /// Authorizes message `index` of the stream like the first: every layer that applies must
    /// allow, and some layer must decide.
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
        let kind = operation.kind;
        let context = self.context.clone().with_message_index(index);
        let request = move |claims: &Arc<Claims>| {
            AuthzRequest::new(Arc::clone(claims), Arc::clone(&operation))
                .with_context(context.clone())
        };
        let mut decided = false;
        for (i, (authorizers, claims)) in registrations.iter().enumerate() {
            match check_all(authorizers, &request(claims), decided) {
                Answer::Ready(Ok(decision)) => decided |= decision.is_some(),
                Answer::Ready(Err(rejection)) => return Answer::Ready(Err(rejection)),
                Answer::Pending(first) => {
                    let rest = registrations[i + 1..].to_vec();
                    return Answer::pending(async move {
                        decided |= first.await?.is_some();
                        for (authorizers, claims) in rest {
                            decided |= check_all(&authorizers, &request(&claims), decided)
                                .await?
                                .is_some();
                        }
                        undecided(decided, kind)
                    });
                }
            }
        }
        Answer::Ready(undecided(decided, kind))
    }
}

pub(crate) fn undecided(decided: bool, kind: OperationKind) -> Result<(), Rejection> {
    if decided {
        Ok(())
    } else {
        Err(no_layer_decides(kind))
    }
}

pub(crate) fn no_layer_decides(kind: OperationKind) -> Rejection {
    Rejection::new(
        Code::PermissionDenied,
        format!("permission denied: no authorization layer decides {kind} operations"),
    )
}
