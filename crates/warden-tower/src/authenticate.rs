//! Authentication: who is calling?
//!
//! [`AuthenticateLayer`] gathers the credentials of a call into an [`AuthInfo`] — the bearer
//! token of `authorization: Bearer …` (scheme case-insensitive), an API key from a header you
//! name, the TLS peer's certificates ([`PeerCertificates`]), the peer address, and metadata you
//! ask to keep — and asks a [`ClaimMapper`] for the caller's [`Claims`]. They go on in the
//! request extensions as `Arc<Claims>`, for the authorization layers and for handlers. A
//! failure is answered `UNAUTHENTICATED` (or `UNAVAILABLE` when the identity provider cannot be
//! reached) before the handler runs; the message names the reason and never the credential.
//!
//! ```
//! use warden_core::{Claims, Roles, identity::StaticTokenMapper};
//! use warden_tower::AuthenticateLayer;
//!
//! let mapper = StaticTokenMapper::new()
//!     .with_token("reader-token", Claims::for_subject("ann").with_system_role(Roles::READER));
//! let layer = AuthenticateLayer::new(mapper).api_key_header("x-api-key");
//! # let _ = layer;
//! ```

use std::{
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderMap, HeaderName, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use warden_core::{Answer, AuthError, AuthInfo, ClaimMapper, Claims, Secret};

use crate::{
    body::ResponseBody,
    call::Call,
    gate::{Admit, Gate},
    rejection::{Code, Rejection},
};

/// The TLS peer's certificate chain (leaf first, DER), for transports that terminate TLS
/// themselves to put in request extensions.
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<[Vec<u8>]>);

/// Reads the TLS peer's certificate chain (leaf first, DER) from request extensions.
pub type PeerCertificatesFn = fn(&http::Extensions) -> Option<Arc<[Vec<u8>]>>;

fn default_peer_certificates(extensions: &http::Extensions) -> Option<Arc<[Vec<u8>]>> {
    extensions
        .get::<PeerCertificates>()
        .map(|chain| Arc::clone(&chain.0))
}

/// How long an asynchronous claim mapper may take before the call is denied `UNAVAILABLE`.
pub const DEFAULT_MAPPER_TIMEOUT: Duration = Duration::from_secs(5);

/// Authenticates each call; see the [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct AuthenticateLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    mapper: Arc<dyn ClaimMapper>,
    api_key_header: Option<HeaderName>,
    metadata: Vec<HeaderName>,
    timeout: Duration,
    peer_certificates: PeerCertificatesFn,
}

impl fmt::Debug for AuthenticateLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateLayer")
            .field("api_key_header", &self.config.api_key_header)
            .field("metadata", &self.config.metadata)
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

impl AuthenticateLayer {
    /// Authenticates with `mapper`.
    pub fn new(mapper: impl ClaimMapper) -> Self {
        Self::shared(Arc::new(mapper))
    }

    /// Authenticates with a shared mapper.
    pub fn shared(mapper: Arc<dyn ClaimMapper>) -> Self {
        Self {
            config: Arc::new(Config {
                mapper,
                api_key_header: None,
                metadata: Vec::new(),
                timeout: DEFAULT_MAPPER_TIMEOUT,
                peer_certificates: default_peer_certificates,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Reads an API key from `header` (e.g. `x-api-key`).
    ///
    /// # Panics
    ///
    /// When `header` is not a valid header name; names are written in code, so this is a bug.
    pub fn api_key_header(self, header: &'static str) -> Self {
        self.api_key_header_name(HeaderName::from_static(header))
    }

    /// Reads an API key from `header`, a name known only at run time (e.g. from config).
    pub fn api_key_header_name(self, header: HeaderName) -> Self {
        self.edit(|c| c.api_key_header = Some(header))
    }

    /// Keeps the metadata entry `header` in [`AuthInfo::metadata`] for the mapper.
    pub fn keep_metadata(self, header: HeaderName) -> Self {
        self.edit(|c| c.metadata.push(header))
    }

    /// How long an asynchronous mapper may take (default 5 s).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.edit(|c| c.timeout = timeout)
    }

    /// Where to find the TLS peer's certificates (default: [`PeerCertificates`]); e.g.
    /// `warden_identity::mtls::tonic_peer_certificates` on a tonic server with TLS.
    pub fn peer_certificates_from(self, f: PeerCertificatesFn) -> Self {
        self.edit(|c| c.peer_certificates = f)
    }
}

impl AuthenticateLayer {
    pub(crate) fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`AuthenticateLayer`].
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for Authenticate<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticate").finish_non_exhaustive()
    }
}

impl Config {
    /// The credentials of a call; `peer_addr` is what the classify layer found.
    pub(crate) fn auth_info(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
        peer_addr: Option<std::net::SocketAddr>,
    ) -> Result<AuthInfo, AuthError> {
        let mut info = AuthInfo::new();
        if let Some(value) = headers.get(http::header::AUTHORIZATION)
            && let Some(token) = bearer_token(value.as_bytes())?
        {
            info = info.with_bearer(Secret::new(token));
        }
        if let Some(name) = &self.api_key_header
            && let Some(value) = headers.get(name)
        {
            let key = value
                .to_str()
                .map_err(|_| AuthError::invalid("malformed API key header"))?;
            info = info.with_api_key(Secret::new(key.trim()));
        }
        if let Some(chain) = (self.peer_certificates)(extensions) {
            info = info.with_peer_certificates(chain);
        }
        info = info.with_peer_addr(peer_addr);
        for name in &self.metadata {
            if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
                info.metadata
                    .push((name.as_str().to_owned(), value.to_owned()));
            }
        }
        Ok(info)
    }

    /// Maps `info` to claims. A panicking mapper, a failure and an asynchronous mapper that
    /// does not answer within the timeout all become the rejection the caller gets.
    pub(crate) fn map(&self, info: &AuthInfo) -> Answer<Result<Arc<Claims>, Rejection>> {
        let answer = match catch_unwind(AssertUnwindSafe(|| self.mapper.map(info))) {
            Ok(answer) => answer,
            Err(_) => Answer::Ready(Err(AuthError::unavailable("the claim mapper panicked"))),
        };
        match answer {
            Answer::Ready(result) => Answer::Ready(result.map_err(|e| rejection(&e))),
            Answer::Pending(mapping) => {
                let limit = self.timeout;
                Answer::pending(async move {
                    match tokio::time::timeout(limit, mapping).await {
                        Ok(result) => result.map_err(|e| rejection(&e)),
                        Err(_) => Err(rejection(&AuthError::unavailable(format!(
                            "no answer within {limit:?}"
                        )))),
                    }
                })
            }
        }
    }
}

/// The token of an `authorization: Bearer <token>` value (scheme case-insensitive); `None`
/// for other schemes. A JWT is about a kilobyte: the value is checked with word-at-a-time
/// ASCII and UTF-8 passes (a header value holds no control characters but tab already) and
/// split at the known prefix, not scanned byte by byte.
fn bearer_token(value: &[u8]) -> Result<Option<&str>, AuthError> {
    let value = std::str::from_utf8(value)
        .ok()
        .filter(|v| v.is_ascii())
        .ok_or_else(|| AuthError::invalid("malformed authorization header"))?;
    let value = value.trim();
    let Some(scheme) = value.get(..7) else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer ") {
        return Ok(None);
    }
    let token = value[7..].trim();
    if token.is_empty() {
        return Err(AuthError::invalid("empty bearer token"));
    }
    Ok(Some(token))
}

pub(crate) fn rejection(error: &AuthError) -> Rejection {
    crate::telemetry::record_authentication_failure();
    tracing::info!(target: "warden::audit", reason = %error, "authentication failed");
    let code = match error {
        AuthError::Unavailable { .. } => Code::Unavailable,
        _ => Code::Unauthenticated,
    };
    Rejection::new(code, format!("unauthenticated: {error}"))
}

impl<S, B, ResB> Service<Request<B>> for Authenticate<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = Gate<S, B, Arc<Claims>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let peer_addr = request
            .extensions()
            .get::<Call>()
            .and_then(|c| c.context.peer_addr);
        let info = match self
            .config
            .auth_info(request.headers(), request.extensions(), peer_addr)
        {
            Ok(info) => info,
            Err(error) => return Gate::refused(&request, &rejection(&error)),
        };
        match self.config.map(&info) {
            Answer::Ready(Ok(claims)) => {
                claims.admit(request.extensions_mut());
                // The inner service was polled ready: call it directly, no clone needed.
                Gate::calling(self.inner.call(request))
            }
            Answer::Ready(Err(rejection)) => Gate::refused(&request, &rejection),
            Answer::Pending(mapping) => {
                Gate::deferred(&mut self.inner, request, Answer::Pending(mapping))
            }
        }
    }
}
