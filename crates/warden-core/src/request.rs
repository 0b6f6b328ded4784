use std::{fmt, net::SocketAddr, sync::Arc};

use http::{HeaderMap, HeaderValue, header::AsHeaderName};

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

/// Whether the connection the call came over is encrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// Not known: the server did not say (an in-process call, a transport Warden cannot see).
    /// Conditions on the transport fail closed on it.
    #[default]
    Unknown,
    /// Plaintext (h2c, plain HTTP/1.1).
    Plaintext,
    /// TLS.
    Tls,
}

/// What the transport says about the peer of one call.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Peer {
    /// The peer's address, when known.
    pub addr: Option<SocketAddr>,
    /// The TLS peer's certificate chain (leaf first, DER), when it presented one.
    pub certificates: Option<Arc<[Vec<u8>]>>,
    /// Whether the connection is TLS.
    pub transport: Transport,
}

impl Peer {
    /// A peer at `addr` (if known) over `transport`, with no certificate.
    pub fn new(addr: Option<SocketAddr>, transport: Transport) -> Self {
        Self {
            addr,
            certificates: None,
            transport,
        }
    }

    /// Sets the certificate chain the peer presented.
    #[must_use]
    pub fn with_certificates(mut self, chain: Option<Arc<[Vec<u8>]>>) -> Self {
        self.certificates = chain;
        self
    }
}

/// The call's request metadata (HTTP/2 headers; gRPC's metadata), for policies that look at
/// it.
///
/// Holds the transport's own header map, shared rather than copied: the layers move it in for
/// the decision and take it back afterwards. Empty for in-process calls unless their caller
/// sets it. `Debug` shows header names only, never values: metadata carries credentials.
#[derive(Clone, Default, PartialEq)]
pub struct Metadata(Option<Arc<HeaderMap>>);

impl Metadata {
    /// Metadata holding `headers`.
    pub fn new(headers: HeaderMap) -> Self {
        Self(Some(Arc::new(headers)))
    }

    /// The header map, if the call has metadata.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.0.as_deref()
    }

    /// Every value of the header `name` (a `&str`, case-insensitive, or a `HeaderName`), in
    /// the order they arrived.
    pub fn get_all<K: AsHeaderName>(&self, name: K) -> impl Iterator<Item = &HeaderValue> {
        self.headers()
            .map(|headers| headers.get_all(name))
            .into_iter()
            .flatten()
    }

    /// Whether the header `name` is present.
    pub fn contains<K: AsHeaderName>(&self, name: K) -> bool {
        self.headers().is_some_and(|h| h.contains_key(name))
    }

    /// The header map back: without a copy when nothing else holds it any more, as after a
    /// synchronous decision; empty when there was none.
    pub fn into_headers(self) -> HeaderMap {
        match self.0 {
            Some(shared) => Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone()),
            None => HeaderMap::new(),
        }
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        if let Some(headers) = self.headers() {
            list.entries(headers.keys());
        }
        list.finish()
    }
}

/// Facts about the call beyond who and what.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RequestContext {
    /// How the call arrived.
    pub protocol: Protocol,
    /// Whether it came over TLS.
    pub transport: Transport,
    /// The peer's address, when known.
    pub peer_addr: Option<SocketAddr>,
    /// The TLS peer's certificate chain (leaf first, DER), when the peer presented one.
    pub peer_certificates: Option<Arc<[Vec<u8>]>>,
    /// The request metadata, while policies decide the call (the `Call` a handler reads does
    /// not repeat it: the handler has the request's headers).
    pub metadata: Metadata,
    /// Which message of a stream this is (0 for the first or only message).
    pub message_index: u64,
}

impl Default for RequestContext {
    fn default() -> Self {
        Self {
            protocol: Protocol::InProcess,
            transport: Transport::Unknown,
            peer_addr: None,
            peer_certificates: None,
            metadata: Metadata::default(),
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

    /// Sets what the transport knows about the peer: address, certificates, transport.
    #[must_use]
    pub fn with_peer(self, peer: Peer) -> Self {
        self.with_transport(peer.transport)
            .with_peer_addr(peer.addr)
            .with_peer_certificates(peer.certificates)
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

    /// Sets the transport.
    #[must_use]
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets the request metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn metadata_debug_names_headers_and_never_prints_a_value() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
        headers.append("x-tenant", "acme".parse().unwrap());
        headers.append("x-tenant", "globex".parse().unwrap());
        let context = RequestContext::default().with_metadata(Metadata::new(headers));
        let printed = format!("{context:?}");
        assert!(printed.contains("\"authorization\""), "{printed}");
        assert!(
            !printed.contains("s3cret") && !printed.contains("acme"),
            "{printed}"
        );
        let values: Vec<_> = context.metadata.get_all("X-Tenant").collect();
        assert_eq!(values, ["acme", "globex"]);
        assert!(context.metadata.contains("authorization"));
        assert!(!Metadata::default().contains("authorization"));
    }

    #[test]
    fn metadata_gives_its_headers_back_whether_or_not_it_was_shared() {
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", "acme".parse().unwrap());
        let alone = Metadata::new(headers.clone());
        assert_eq!(alone.into_headers(), headers);
        let shared = Metadata::new(headers.clone());
        let kept = shared.clone();
        assert_eq!(shared.into_headers(), headers);
        assert_eq!(kept.headers(), Some(&headers));
        assert!(Metadata::default().into_headers().is_empty());
    }
}
