//! Operation maps: from a method to the [`Operation`] a call performs.
//!
//! An [`OperationMap`] says, per gRPC method, the operation kind and how to pull the target
//! (namespace, instance, operation name, arguments) out of the request message. Build one
//! from field numbers with [`OperationMapBuilder::fields`] (one pass over the encoding, no
//! decode: the fastest), from typed prost messages with [`OperationMapBuilder::typed`] (where
//! a target needs logic), or at run time from a protobuf descriptor set and field paths with
//! [`ReflectConfig`] (feature `reflect`; compiled to the field-number pass where it can be).
//! Plain HTTP routes are mapped by [`HttpOperationMap`].
//!
//! ```
//! use warden_core::OperationKind;
//! use warden_tower::map::OperationMap;
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct SignalRequest {
//!     #[prost(string, tag = "1")] namespace: String,
//!     #[prost(string, tag = "2")] workflow_id: String,
//!     #[prost(string, tag = "3")] signal_name: String,
//!     #[prost(bytes = "vec", tag = "4")] input: Vec<u8>,
//! }
//!
//! let map = OperationMap::builder()
//!     .typed("/shop.Orders/Signal", OperationKind::Signal, |m: SignalRequest, op| {
//!         op.with_namespace(m.namespace)
//!             .with_instance(m.workflow_id)
//!             .with_name(m.signal_name)
//!             .with_json_args(m.input) // parsed only if a policy reads the arguments
//!     })
//!     .build()
//!     .unwrap();
//! assert!(map.get("/shop.Orders/Signal").is_some());
//! ```

mod http_routes;
#[cfg(feature = "reflect")]
mod reflect;
mod typed;
mod wire;

use std::{collections::HashMap, fmt, sync::Arc};

use bytes::Bytes;

pub use http_routes::{HttpOperationMap, HttpOperationMapBuilder, HttpRoute};
#[cfg(feature = "reflect")]
pub use reflect::{ReflectConfig, ReflectMethod};
use warden_core::{KindSet, Operation, OperationKind};
pub use wire::Fields;

use crate::grpc::MethodPath;

/// Splits a gRPC method path, `/package.Service/Method`, into its service and method, as
/// classification does for every call the map does not name: anything else (a missing
/// segment, an extra one, an empty or non-identifier name, percent-encoding) is the reason
/// the call is refused `INVALID_ARGUMENT`.
///
/// ```
/// use warden_tower::map::split_method_path;
///
/// assert_eq!(split_method_path("/pkg.v1.Svc/Do"), Ok(("pkg.v1.Svc", "Do")));
/// assert!(split_method_path("/pkg.v1.Svc/Do/extra").is_err());
/// ```
pub fn split_method_path(path: &str) -> Result<(&str, &str), &'static str> {
    MethodPath::parse(path).map(|parsed| (parsed.service, parsed.method))
}

/// Why a message could not be turned into an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {message}: {reason}")]
pub struct DecodeError {
    message: String,
    reason: String,
}

impl DecodeError {
    /// A failure to decode a message of type `message`.
    pub fn new(message: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            message: message.into(),
            reason: reason.to_string(),
        }
    }
}

/// Fills an operation's targets from one encoded request message.
pub trait Extract: Send + Sync + 'static {
    /// Decodes `message` (the protobuf bytes, decompressed) and fills `operation`. Arguments
    /// may keep a slice of `message` ([`Bytes::slice`]) instead of a copy.
    fn extract(&self, message: &Bytes, operation: &mut Operation) -> Result<(), DecodeError>;
}

/// What Warden knows about one gRPC method.
#[derive(Clone)]
pub struct MethodSpec {
    kind: OperationKind,
    also: KindSet,
    service: Arc<str>,
    method: Arc<str>,
    client_streaming: bool,
    extractor: Option<Arc<dyn Extract>>,
}

impl fmt::Debug for MethodSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodSpec")
            .field("kind", &self.kind)
            .field("service", &self.service)
            .field("method", &self.method)
            .field("client_streaming", &self.client_streaming)
            .field("decodes_payload", &self.extractor.is_some())
            .finish()
    }
}

impl MethodSpec {
    pub(crate) fn new(
        path: MethodPath<'_>,
        kind: OperationKind,
        extractor: Option<Arc<dyn Extract>>,
    ) -> Self {
        Self {
            kind,
            also: KindSet::EMPTY,
            service: path.service.into(),
            method: path.method.into(),
            client_streaming: false,
            extractor,
        }
    }

    /// A spec for a method no map knows: kind [`OperationKind::Other`], nothing decoded.
    pub(crate) fn unknown(path: MethodPath<'_>) -> Self {
        Self::new(path, OperationKind::Other, None)
    }

    /// The operation kind.
    pub fn kind(&self) -> OperationKind {
        self.kind
    }

    /// The fully qualified service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Whether the client sends a stream of messages, each checked on its own.
    pub fn is_client_streaming(&self) -> bool {
        self.client_streaming
    }

    /// Whether request messages are decoded.
    pub fn decodes_payload(&self) -> bool {
        self.extractor.is_some()
    }

    /// The operation of a call to this method before its message is read.
    pub(crate) fn operation(&self) -> Operation {
        let mut operation = Operation::new(
            self.kind,
            Arc::clone(&self.service),
            Arc::clone(&self.method),
        );
        operation.also = self.also;
        operation
    }

    /// The operation of one (uncompressed) request message, as the classify layer decodes it.
    pub fn decode(&self, message: &Bytes) -> Result<Operation, DecodeError> {
        self.decode_shared(message).map(Arc::unwrap_or_clone)
    }

    /// Like [`decode`](Self::decode), into the shared allocation the call keeps: the
    /// operation is filled in where it will live rather than moved there.
    pub(crate) fn decode_shared(&self, message: &Bytes) -> Result<Arc<Operation>, DecodeError> {
        let mut shared = Arc::new(self.operation());
        if let (Some(extractor), Some(operation)) = (&self.extractor, Arc::get_mut(&mut shared)) {
            extractor.extract(message, operation)?;
        }
        Ok(shared)
    }
}

/// Why a map could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// A method path is not `/package.Service/Method`.
    #[error("invalid method path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A method was mapped twice.
    #[error("method `{path}` is mapped twice")]
    Duplicate {
        /// The path mapped twice.
        path: String,
    },
    /// A descriptor set or field path did not fit (reflect maps).
    #[error("{0}")]
    Descriptor(String),
}

/// Maps gRPC method paths to [`MethodSpec`]s.
#[derive(Clone, Default)]
pub struct OperationMap {
    // foldhash: looked up on every call, keys are ours (built from the map), not an attacker's
    // choice of collisions: unknown paths miss, and a miss costs one probe.
    methods: HashMap<Box<str>, Arc<MethodSpec>, foldhash::fast::RandomState>,
}

impl fmt::Debug for OperationMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationMap")
            .field("methods", &self.methods.len())
            .finish()
    }
}

impl OperationMap {
    /// Starts a map.
    pub fn builder() -> OperationMapBuilder {
        OperationMapBuilder::default()
    }

    /// The spec of the method at `path` (`/package.Service/Method`).
    pub fn get(&self, path: &str) -> Option<&Arc<MethodSpec>> {
        self.methods.get(path)
    }

    /// The mapped method paths.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(|k| &**k)
    }

    /// Whether any mapped method belongs to `service`.
    pub fn knows_service(&self, service: &str) -> bool {
        self.methods.values().any(|spec| &*spec.service == service)
    }

    /// Adds every method of `other`; a method both map is an error.
    pub fn merge(mut self, other: OperationMap) -> Result<Self, MapError> {
        for (path, spec) in other.methods {
            if self.methods.contains_key(&path) {
                return Err(MapError::Duplicate { path: path.into() });
            }
            self.methods.insert(path, spec);
        }
        Ok(self)
    }
}

/// Builds an [`OperationMap`]; errors are reported by [`build`](Self::build).
#[derive(Default)]
#[must_use]
pub struct OperationMapBuilder {
    methods: Vec<(String, Result<MethodSpec, MapError>)>,
}

impl fmt::Debug for OperationMapBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationMapBuilder")
            .field("methods", &self.methods.len())
            .finish()
    }
}

impl OperationMapBuilder {
    /// Maps `path` to `kind` without decoding its messages (method-level authorization).
    pub fn method(self, path: &str, kind: OperationKind) -> Self {
        self.push(path, kind, None, |spec| spec)
    }

    /// Maps `path` to `kind`, reading the targets named by `fields` straight from each request's
    /// encoding: the fastest way, and the one to use unless a target needs logic (a `oneof`, a
    /// repeated field); see [`Fields`].
    pub fn fields(self, path: &str, kind: OperationKind, fields: Fields) -> Self {
        self.push_fields(path, kind, &fields, false)
    }

    /// Like [`fields`](Self::fields), for a client-streaming method: every message is read
    /// and authorized, not only the first.
    pub fn fields_client_streaming(self, path: &str, kind: OperationKind, fields: Fields) -> Self {
        self.push_fields(path, kind, &fields, true)
    }

    fn push_fields(
        mut self,
        path: &str,
        kind: OperationKind,
        fields: &Fields,
        client_streaming: bool,
    ) -> Self {
        match fields.extractor(&format!("the request of {path}")) {
            Ok(extractor) => self.push(path, kind, Some(extractor), |mut spec| {
                spec.client_streaming = client_streaming;
                spec
            }),
            Err(error) => {
                self.methods.push((path.to_owned(), Err(error)));
                self
            }
        }
    }

    /// Maps `path` to `kind`, decoding each request as `M` and filling the operation with
    /// `extract`. Decoding the whole message costs more than [`fields`](Self::fields); use it
    /// where a target needs logic.
    pub fn typed<M, F>(self, path: &str, kind: OperationKind, extract: F) -> Self
    where
        M: prost::Message + Default + 'static,
        F: Fn(M, Operation) -> Operation + Send + Sync + 'static,
    {
        self.push(
            path,
            kind,
            Some(typed::extractor::<M, F>(extract)),
            |spec| spec,
        )
    }

    /// Like [`typed`](Self::typed), for a client-streaming method: every message is decoded
    /// and authorized, not only the first.
    pub fn typed_client_streaming<M, F>(self, path: &str, kind: OperationKind, extract: F) -> Self
    where
        M: prost::Message + Default + 'static,
        F: Fn(M, Operation) -> Operation + Send + Sync + 'static,
    {
        self.push(
            path,
            kind,
            Some(typed::extractor::<M, F>(extract)),
            |mut spec| {
                spec.client_streaming = true;
                spec
            },
        )
    }

    /// Adds a kind the last mapped method also performs (signal-with-start is also a signal).
    pub fn also(mut self, kind: OperationKind) -> Self {
        if let Some((_, Ok(spec))) = self.methods.last_mut() {
            spec.also = spec.also.with(kind);
        }
        self
    }

    fn push(
        mut self,
        path: &str,
        kind: OperationKind,
        extractor: Option<Arc<dyn Extract>>,
        adjust: impl FnOnce(MethodSpec) -> MethodSpec,
    ) -> Self {
        let spec = MethodPath::parse(path)
            .map(|parsed| adjust(MethodSpec::new(parsed, kind, extractor)))
            .map_err(|reason| MapError::InvalidPath {
                path: path.to_owned(),
                reason,
            });
        self.methods.push((path.to_owned(), spec));
        self
    }

    #[cfg(feature = "reflect")]
    pub(crate) fn push_spec(mut self, path: String, spec: MethodSpec) -> Self {
        self.methods.push((path, Ok(spec)));
        self
    }

    /// Checks every path and builds the map.
    pub fn build(self) -> Result<OperationMap, MapError> {
        let mut methods = HashMap::with_capacity_and_hasher(self.methods.len(), Default::default());
        for (path, spec) in self.methods {
            let spec = spec?;
            if methods
                .insert(path.clone().into_boxed_str(), Arc::new(spec))
                .is_some()
            {
                return Err(MapError::Duplicate { path });
            }
        }
        Ok(OperationMap { methods })
    }
}

/// Decodes JSON argument bytes (as in a `json/plain` payload); `None` when they are empty or
/// not JSON, so rules never judge bytes they cannot read.
pub fn json_args(bytes: &[u8]) -> Option<serde_json::Value> {
    if bytes.is_empty() {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}
