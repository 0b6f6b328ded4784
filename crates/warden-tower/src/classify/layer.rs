//! The layer and its configuration.

use super::*;

#[derive(Clone)]
pub(super) struct Config {
    pub(super) grpc: OperationMap,
    pub(super) http: Option<HttpOperationMap>,
    pub(super) max_message_size: usize,
    /// The first-message deadline.
    pub(super) deadlines: Arc<Deadlines>,
    pub(super) responder: SharedResponder,
    pub(super) peer: PeerFn,
}

/// How long Warden waits for a call's first message (or an HTTP body) by default.
pub const DEFAULT_FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Classifies each call; see the [module docs](crate::classify).
#[derive(Clone)]
#[must_use]
pub struct ClassifyLayer {
    pub(super) config: Arc<Config>,
}

impl fmt::Debug for ClassifyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyLayer")
            .field("grpc", &self.config.grpc)
            .field("http", &self.config.http)
            .field("max_message_size", &self.config.max_message_size)
            .finish_non_exhaustive()
    }
}

impl ClassifyLayer {
    /// Classifies gRPC calls with `map`; other requests are refused with HTTP 415 unless HTTP
    /// routes are added.
    pub fn new(map: OperationMap) -> Self {
        Self {
            config: Arc::new(Config {
                grpc: map,
                http: None,
                max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                deadlines: Deadlines::new(DEFAULT_FIRST_MESSAGE_TIMEOUT),
                responder: Arc::new(DefaultResponder),
                peer: peer::from_extensions,
            }),
        }
    }

    pub(super) fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Also classifies plain HTTP requests (those whose content type is not gRPC) with `map`;
    /// unmatched ones become [`OperationKind::Other`].
    pub fn http_routes(self, map: HttpOperationMap) -> Self {
        self.edit(|c| c.http = Some(map))
    }

    /// The largest request message, compressed or not, Warden reads (default 4 MiB).
    pub fn max_message_size(self, bytes: usize) -> Self {
        self.edit(|c| c.max_message_size = bytes)
    }

    /// How long a call may take to deliver its whole request message (HTTP routes: their
    /// whole JSON body) before it is refused `DEADLINE_EXCEEDED` (default 30 s). A client that
    /// opens calls and sends nothing cannot hold them open. For a unary or server-streaming
    /// method this covers the end of the request too, since its one message is judged only
    /// once no second one can follow.
    ///
    /// The deadline starts only when the message is not already there, so calls whose
    /// message came with their headers pay nothing. Waiting calls share one coarse timer per
    /// layer instead of a Tokio timer each: a call is refused at its deadline or up to 1/16 of
    /// the timeout later. Outside a Tokio runtime there is no timer.
    pub fn first_message_timeout(self, timeout: Duration) -> Self {
        self.edit(|c| c.deadlines = Deadlines::new(timeout))
    }

    /// How every Warden layer below answers refusals (default [`DefaultResponder`]).
    pub fn responder(self, responder: impl Respond) -> Self {
        self.edit(|c| c.responder = Arc::new(responder))
    }

    /// Where the transport keeps what it knows about the peer — its address, its TLS
    /// certificate chain, whether the connection is TLS — in request extensions (default
    /// [`peer::from_extensions`]). It goes in the call's [`RequestContext`], for the claim
    /// mapper and the policies; on a tonic server, `warden_identity::tonic::peer`.
    pub fn peer_from(self, peer: PeerFn) -> Self {
        self.edit(|c| c.peer = peer)
    }
}

impl<S> Layer<S> for ClassifyLayer {
    type Service = Classify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Classify {
            inner,
            config: Arc::clone(&self.config),
            decide: None,
        }
    }
}

impl ClassifyLayer {
    /// The inside of a [`Warden`](crate::Warden) service: classifies, then authenticates and
    /// authorizes with `decide` before calling `inner`.
    pub(crate) fn layer_deciding<S>(&self, inner: S, decide: Arc<dyn Decide>) -> Classify<S> {
        Classify {
            inner,
            config: Arc::clone(&self.config),
            decide: Some(decide),
        }
    }
}

impl Config {
    /// The context of a call arriving over `protocol`.
    pub(super) fn context(&self, protocol: Protocol, extensions: &Extensions) -> RequestContext {
        RequestContext::new(protocol).with_peer((self.peer)(extensions))
    }

    /// Warden's record of a call classified as `operation`.
    pub(super) fn call(
        &self,
        operation: Arc<Operation>,
        context: RequestContext,
        checks: Option<Arc<StreamChecks>>,
    ) -> Call {
        Call::classified(operation, context, Arc::clone(&self.responder), checks)
    }
}
