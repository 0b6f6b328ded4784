//! Authentication: who is calling?
//!
//! [`AuthenticateLayer`] gathers the credentials of a call into an [`AuthInfo`] — the bearer
//! token of `authorization: Bearer …` (scheme case-insensitive), an API key from a header you
//! name, the TLS peer's certificates ([`PeerCertificates`](crate::PeerCertificates)), the peer address, and metadata you
//! ask to keep — and asks a [`ClaimMapper`] for the caller's [`Claims`](warden_core::Claims). They go on in the
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
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderMap, HeaderName, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use warden_core::{Answer, AuthError, AuthInfo, ClaimMapper, RequestContext, Secret};

pub use crate::engine::DEFAULT_MAPPER_TIMEOUT;
use crate::{
    body::ResponseBody,
    call::Call,
    engine::{Authenticator, authenticator_rejection},
    future::{Admission, ResponseFuture},
};

/// Authenticates each call; see the [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct AuthenticateLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) credentials: Credentials,
    pub(crate) authenticator: Authenticator,
}

/// Which request headers carry credentials.
#[derive(Clone, Debug, Default)]
pub(crate) struct Credentials {
    api_key_header: Option<HeaderName>,
    metadata: Vec<HeaderName>,
}

impl fmt::Debug for AuthenticateLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateLayer")
            .field("credentials", &self.config.credentials)
            .field("authenticator", &self.config.authenticator)
            .finish()
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
                credentials: Credentials::default(),
                authenticator: Authenticator::new(mapper),
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
        self.edit(|c| c.credentials.api_key_header = Some(header))
    }

    /// Keeps the metadata entry `header` in [`AuthInfo::metadata`] for the mapper.
    pub fn keep_metadata(self, header: HeaderName) -> Self {
        self.edit(|c| c.credentials.metadata.push(header))
    }

    /// How long an asynchronous mapper may take (default 5 s).
    pub fn mapper_timeout(self, timeout: Duration) -> Self {
        self.edit(|c| c.authenticator.set_timeout(timeout))
    }

    /// Authenticates a call that carries no credential at all as an anonymous caller, for the
    /// policies to judge (as Temporal does); a credential that is present but bad is still
    /// refused `UNAUTHENTICATED`. Off by default.
    pub fn anonymous(self, anonymous: bool) -> Self {
        self.edit(|c| c.authenticator.set_anonymous(anonymous))
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
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

impl Credentials {
    /// The credentials of a call: its headers, and the peer the classify layer found.
    pub(crate) fn auth_info(
        &self,
        headers: &HeaderMap,
        context: &RequestContext,
    ) -> Result<AuthInfo, AuthError> {
        let mut info = AuthInfo::new();
        if let Some(value) = single(headers, &http::header::AUTHORIZATION, "authorization")?
            && let Some((start, end)) = bearer_token(value.as_bytes())?
        {
            let token = Secret::from_header(value, start, end)
                .ok_or_else(|| AuthError::invalid("malformed authorization header"))?;
            info = info.with_bearer(token);
        }
        if let Some(name) = &self.api_key_header
            && let Some(value) = single(headers, name, "API key")?
        {
            let (start, end) = trimmed(value.as_bytes(), 0);
            let key = Secret::from_header(value, start, end)
                .ok_or_else(|| AuthError::invalid("malformed API key header"))?;
            info = info.with_api_key(key);
        }
        if let Some(chain) = &context.peer_certificates {
            info = info.with_peer_certificates(Arc::clone(chain));
        }
        info = info.with_peer_addr(context.peer_addr);
        for name in &self.metadata {
            if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
                info.metadata
                    .push((name.as_str().to_owned(), value.to_owned()));
            }
        }
        Ok(info)
    }
}

/// The one value of a credential header. Two are refused, never "the first": whoever reads
/// the call after Warden (a handler, an upstream with its own checks, an audit log) might take
/// the other one.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    what: &str,
) -> Result<Option<&'h http::HeaderValue>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::invalid(format!("more than one {what} header")));
    }
    Ok(first)
}

/// Where the token of an `authorization: Bearer <token>` value is (scheme case-insensitive);
/// `None` for other schemes; an error for a value that is not ASCII. A JWT is about a
/// kilobyte: its bytes are checked once, word at a time, when the caller makes the token a
/// [`Secret`] (which shares them with the header, never copying); what surrounds the token
/// here is the scheme and whitespace, ASCII by construction.
fn bearer_token(value: &[u8]) -> Result<Option<(usize, usize)>, AuthError> {
    let (start, end) = trimmed(value, 0);
    let bearer = value[..end]
        .get(start..start + 7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"bearer "));
    if !bearer {
        return if value.is_ascii() {
            Ok(None)
        } else {
            Err(AuthError::invalid("malformed authorization header"))
        };
    }
    let (start, end) = trimmed(&value[..end], start + 7);
    if start == end {
        return Err(AuthError::invalid("empty bearer token"));
    }
    Ok(Some((start, end)))
}

/// The range of `value[from..]` without ASCII whitespace at either end.
fn trimmed(value: &[u8], from: usize) -> (usize, usize) {
    let mut start = from.min(value.len());
    let mut end = value.len();
    while start < end && value[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && value[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    (start, end)
}

impl<S, B, ResB> Service<Request<B>> for Authenticate<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let credentials = &self.config.credentials;
        let info = match request.extensions().get::<Call>() {
            Some(call) => credentials.auth_info(request.headers(), &call.context),
            None => credentials.auth_info(request.headers(), &RequestContext::default()),
        };
        let info = match info {
            Ok(info) => info,
            Err(error) => {
                return ResponseFuture::refused(&request, &authenticator_rejection(&error));
            }
        };
        let answer = match self.config.authenticator.authenticate(&info) {
            Answer::Ready(result) => Answer::Ready(result.map(Admission::Claims)),
            Answer::Pending(mapping) => {
                Answer::pending(async move { mapping.await.map(Admission::Claims) })
            }
        };
        ResponseFuture::admit(&mut self.inner, request, answer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bearer(value: &[u8]) -> Result<Option<String>, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_bytes(value).unwrap(),
        );
        Credentials::default()
            .auth_info(&headers, &RequestContext::default())
            .map(|info| info.bearer.map(|token| token.expose().to_owned()))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn the_bearer_token_is_the_trimmed_rest_and_anything_not_ascii_is_malformed() {
        assert_eq!(bearer(b"Bearer abc.def"), Ok(Some("abc.def".into())));
        assert_eq!(bearer(b"  bEaReR   abc  "), Ok(Some("abc".into())));
        assert_eq!(
            bearer(b"Basic abc"),
            Ok(None),
            "another scheme is no bearer token"
        );
        assert_eq!(bearer(b"Bear"), Ok(None));
        let malformed = Err(AuthError::invalid("malformed authorization header").to_string());
        assert_eq!(
            bearer(b"Bearer caf\xc3\xa9"),
            malformed,
            "a non-ASCII token"
        );
        assert_eq!(
            bearer(b"Basic caf\xc3\xa9"),
            malformed,
            "non-ASCII under any scheme"
        );
        assert_eq!(bearer(b"B\xc3\xa9arer abc"), malformed);
        // The scheme alone, trailing whitespace trimmed, is no bearer token either.
        assert_eq!(bearer(b"Bearer    "), Ok(None));
    }

    #[test]
    fn two_authorization_or_api_key_headers_are_refused_not_the_first_taken() {
        let credentials = Credentials {
            api_key_header: Some(HeaderName::from_static("x-api-key")),
            ..Credentials::default()
        };
        for (name, what) in [("authorization", "authorization"), ("x-api-key", "API key")] {
            let mut headers = HeaderMap::new();
            let value = if name == "authorization" {
                "Bearer a"
            } else {
                "a"
            };
            headers.append(name, http::HeaderValue::from_static(value));
            assert!(
                credentials
                    .auth_info(&headers, &RequestContext::default())
                    .is_ok()
            );
            headers.append(name, http::HeaderValue::from_static(value));
            let error = credentials
                .auth_info(&headers, &RequestContext::default())
                .unwrap_err();
            assert_eq!(
                error,
                AuthError::invalid(format!("more than one {what} header")),
                "even two equal values"
            );
        }
    }
}
