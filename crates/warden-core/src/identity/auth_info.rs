use std::{fmt, net::SocketAddr, sync::Arc};

/// A credential: printed as `Secret(***)` in `Debug`, never shown in `Display` or logs.
#[derive(Clone)]
pub struct Secret(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Arc<str>),
    /// Part of a request header, shared with the request rather than copied (a header value's
    /// bytes are reference-counted): the credential is on every call's path.
    Header {
        value: http::HeaderValue,
        start: usize,
        end: usize,
    },
}

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(Repr::Owned(value.into()))
    }

    /// The bytes `start..end` of a header value, shared with it rather than copied, if they
    /// are ASCII; `None` otherwise.
    pub fn from_header(value: &http::HeaderValue, start: usize, end: usize) -> Option<Self> {
        let bytes = value.as_bytes().get(start..end)?;
        // Word-at-a-time; a header value holds no control characters but tab already.
        bytes.is_ascii().then(|| {
            Self(Repr::Header {
                value: value.clone(),
                start,
                end,
            })
        })
    }

    /// The credential itself, for the code that verifies it.
    pub fn expose(&self) -> &str {
        match &self.0 {
            Repr::Owned(value) => value,
            // Checked to be ASCII when made, so this never falls back.
            Repr::Header { value, start, end } => {
                let bytes = value.as_bytes().get(*start..*end).unwrap_or_default();
                std::str::from_utf8(bytes).unwrap_or_default()
            }
        }
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_secret_from_a_header_is_its_ascii_range_and_equals_the_same_text_owned() {
        let value = http::HeaderValue::from_static("Bearer abc.def");
        let token = Secret::from_header(&value, 7, 14).unwrap();
        assert_eq!(token.expose(), "abc.def");
        assert_eq!(token, Secret::new("abc.def"));
        assert_eq!(format!("{token:?}"), "Secret(***)");
        assert!(Secret::from_header(&value, 7, 99).is_none(), "out of range");
        let non_ascii = http::HeaderValue::from_bytes(b"Bearer caf\xc3\xa9").unwrap();
        assert!(Secret::from_header(&non_ascii, 7, 12).is_none());
    }
}
