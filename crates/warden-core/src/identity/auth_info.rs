use std::{fmt, net::SocketAddr, sync::Arc};

/// A credential: printed as `Secret(***)` in `Debug`, never shown in `Display` or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for the code that verifies it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a call brings to prove who makes it.
///
/// Built by the authenticate layer from the request: the bearer token of the `authorization`
/// header, an API key header, the TLS peer's certificate chain (DER), the peer address, and
/// metadata the layer was told to keep.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AuthInfo {
    /// The bearer token, without the scheme.
    pub bearer: Option<Secret>,
    /// An API key.
    pub api_key: Option<Secret>,
    /// The TLS peer's certificate chain, leaf first, DER-encoded.
    pub peer_certificates: Option<Arc<[Vec<u8>]>>,
    /// The peer's address.
    pub peer_addr: Option<SocketAddr>,
    /// Selected request metadata (lowercase names), for mappers that need it.
    pub metadata: Vec<(String, String)>,
}

impl AuthInfo {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the bearer token.
    #[must_use]
    pub fn with_bearer(mut self, token: Secret) -> Self {
        self.bearer = Some(token);
        self
    }

    /// Sets the API key.
    #[must_use]
    pub fn with_api_key(mut self, key: Secret) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Sets the peer certificate chain.
    #[must_use]
    pub fn with_peer_certificates(mut self, chain: Arc<[Vec<u8>]>) -> Self {
        self.peer_certificates = Some(chain);
        self
    }

    /// Sets the peer address.
    #[must_use]
    pub fn with_peer_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.peer_addr = addr;
        self
    }

    /// The value of kept metadata entry `name`.
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the call carried any credential.
    pub fn has_credentials(&self) -> bool {
        self.bearer.is_some() || self.api_key.is_some() || self.peer_certificates.is_some()
    }
}
