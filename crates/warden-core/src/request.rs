use std::{net::SocketAddr, sync::Arc};

use crate::{Claims, Operation, OperationKind};

/// How the call reached Warden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// gRPC over HTTP/2.
    Grpc,
    /// Plain HTTP.
    Http,
    /// An in-process call, such as a worker's signal dispatch.
    InProcess,
}

/// Facts about the call beyond who and what.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RequestContext {
    /// How the call arrived.
    pub protocol: Protocol,
    /// The peer's address, when known.
    pub peer_addr: Option<SocketAddr>,
    /// The TLS peer's certificate chain (leaf first, DER), when the peer presented one.
    pub peer_certificates: Option<Arc<[Vec<u8>]>>,
    /// Which message of a stream this is (0 for the first or only message).
    pub message_index: u64,
}

impl Default for RequestContext {
    fn default() -> Self {
        Self {
            protocol: Protocol::InProcess,
            peer_addr: None,
            peer_certificates: None,
            message_index: 0,
        }
    }
}

impl RequestContext {
    /// A context for `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            ..Self::default()
        }
    }

    /// Sets the peer address.
    #[must_use]
    pub fn with_peer_addr(mut self, peer_addr: Option<SocketAddr>) -> Self {
        self.peer_addr = peer_addr;
        self
    }

    /// Sets the peer's certificate chain.
    #[must_use]
    pub fn with_peer_certificates(mut self, chain: Option<Arc<[Vec<u8>]>>) -> Self {
        self.peer_certificates = chain;
        self
    }

    /// Sets the message index within a stream.
    #[must_use]
    pub fn with_message_index(mut self, index: u64) -> Self {
        self.message_index = index;
        self
    }
}

/// One question for a policy: may `subject` perform `operation`?
///
/// Cheap to clone (the parts are shared), so asynchronous policies can keep it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthzRequest {
    /// Who is calling.
    pub subject: Arc<Claims>,
    /// What the call does and to which resource.
    pub operation: Arc<Operation>,
    /// Everything else.
    pub context: RequestContext,
}

impl AuthzRequest {
    /// A request with a default (in-process) context.
    pub fn new(subject: impl Into<Arc<Claims>>, operation: impl Into<Arc<Operation>>) -> Self {
        Self {
            subject: subject.into(),
            operation: operation.into(),
            context: RequestContext::default(),
        }
    }

    /// Sets the context.
    #[must_use]
    pub fn with_context(mut self, context: RequestContext) -> Self {
        self.context = context;
        self
    }

    /// The operation's kind: the action being asked for.
    pub fn kind(&self) -> OperationKind {
        self.operation.kind
    }
}
