//! Forwarding allowed calls to the upstream over HTTP/2, streaming both ways.

use std::{
    convert::Infallible,
    future::Future,
    path::Path,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{
    HeaderName, HeaderValue, Request, Response, Uri, Version,
    header::{self, AUTHORIZATION},
    uri::{Authority, Scheme},
};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use pin_project_lite::pin_project;
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
};
use tower_service::Service;

use warden_tower::{
    CallExt,
    rejection::{Code, grpc_status, grpc_trailers_only},
};

use crate::{ProxyConfigError, ProxyError, config::UpstreamConfig, invalid, telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
use crate::passport::{Passports, UpstreamRequestBody};

/// Headers that describe one hop, never forwarded (`te: trailers` is end-to-end in gRPC and
/// kept).
const HOP_BY_HOP: [HeaderName; 5] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const TEMPORAL_NAMESPACE: HeaderName = HeaderName::from_static("temporal-namespace");

/// The upstream client: one pooled HTTP/2 connection set, shared by every call.
#[derive(Clone)]
pub(crate) struct Forwarder {
    client: Client<HttpsConnector<HttpConnector>, UpstreamRequestBody>,
    scheme: Scheme,
    authority: Authority,
    authorization: Option<HeaderValue>,
    passports: Option<Arc<Passports>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

fn read(base: &Path, path: &Path, what: &str) -> Result<Vec<u8>, ProxyError> {
    let path = base.join(path);
    std::fs::read(&path).map_err(|source| {
        ProxyError::Config(ProxyConfigError::Read {
            key: format!("upstream.{what}"),
            path: path.clone(),
            source,
        })
    })
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, ProxyError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(
                format!("upstream.{what}"),
                format!("not PEM certificates: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(invalid(
            format!("upstream.{what}"),
            "no certificate in the file",
        ));
    }
    Ok(certs)
}

impl Forwarder {
    /// Builds the client; reads every file the config names, so a bad path fails at start-up.
    pub(crate) fn new(config: &UpstreamConfig, base: &Path) -> Result<Self, ProxyError> {
        let uri: Uri = config.address.parse().map_err(|e| {
            invalid(
                "upstream.address",
                format!("`{}`: not a URI: {e}", config.address),
            )
        })?;
        let scheme = uri.scheme().cloned().ok_or_else(|| {
            invalid(
                "upstream.address",
                format!("`{}`: needs a scheme, http:// or https://", config.address),
            )
        })?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(invalid(
                "upstream.address",
                format!("`{}`: the scheme must be http or https", config.address),
            ));
        }
        let authority = uri.authority().cloned().ok_or_else(|| {
            invalid(
                "upstream.address",
                format!("`{}`: needs host:port", config.address),
            )
        })?;
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(invalid(
                "upstream.address",
                format!("`{}`: must not have a path", config.address),
            ));
        }
        let tls_settings = config.ca_file.is_some()
            || config.client_cert.is_some()
            || config.client_key.is_some()
            || config.server_name.is_some();
        if scheme == Scheme::HTTP && tls_settings {
            return Err(invalid(
                "upstream",
                "ca_file, client_cert, client_key and server_name need an https:// address",
            ));
        }
        let tls = tls_config(config, base)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let builder = match &config.server_name {
            Some(name) => {
                let name = ServerName::try_from(name.clone())
                    .map_err(|e| invalid("upstream.server_name", format!("`{name}`: {e}")))?;
                builder.with_server_name_resolver(FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        let connector = builder.enable_http2().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_only(true)
            .http2_adaptive_window(true)
            .http2_keep_alive_interval(Some(Duration::from_secs(30)))
            .http2_keep_alive_while_idle(true)
            .build(connector);
        let authorization = match &config.authorization_file {
            Some(path) => {
                let bytes = read(base, path, "authorization_file")?;
                let credential = String::from_utf8(bytes)
                    .map_err(|_| invalid("upstream.authorization_file", "not UTF-8"))?;
                let credential = credential.trim();
                if credential.is_empty() {
                    return Err(invalid("upstream.authorization_file", "the file is empty"));
                }
                let mut value =
                    HeaderValue::try_from(format!("Bearer {credential}")).map_err(|_| {
                        invalid("upstream.authorization_file", "not a valid header value")
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Self {
            client,
            scheme,
            authority,
            authorization,
            passports: None,
        })
    }

    /// The request the upstream gets: same path, method and metadata, with the upstream's
    /// authority, hop-by-hop headers dropped, and the namespace header the message agrees with.
    fn upstream_request<B>(&self, request: Request<B>) -> Result<Request<B>, http::Error> {
        let (mut parts, body) = request.into_parts();
        let mut uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone());
        if let Some(path) = parts.uri.path_and_query() {
            uri = uri.path_and_query(path.clone());
        }
        parts.uri = uri.build()?;
        parts.version = Version::HTTP_2;
        for name in &HOP_BY_HOP {
            parts.headers.remove(name);
        }
        parts.headers.remove(header::HOST);
        if let Some(value) = &self.authorization {
            parts.headers.insert(AUTHORIZATION, value.clone());
        }
        // The call was judged on the namespace in its message: make sure the header the
        // upstream may route or log by says the same.
        if let Some(namespace) = parts
            .extensions
            .operation()
            .and_then(|op| op.namespace.as_deref())
            && let Some(header) = parts.headers.get(&TEMPORAL_NAMESPACE)
            && header.as_bytes() != namespace.as_bytes()
        {
            tracing::warn!(
                header = %String::from_utf8_lossy(header.as_bytes()),
                namespace,
                "temporal-namespace header differs from the message's namespace; forwarding the message's"
            );
            match HeaderValue::from_str(namespace) {
                Ok(value) => {
                    parts.headers.insert(TEMPORAL_NAMESPACE, value);
                }
                Err(_) => {
                    parts.headers.remove(TEMPORAL_NAMESPACE);
                }
            }
        }
        // Nothing the proxy learned about the caller travels upstream but the metadata.
        parts.extensions = http::Extensions::new();
        Ok(Request::from_parts(parts, body))
    }
}

fn tls_config(config: &UpstreamConfig, base: &Path) -> Result<ClientConfig, ProxyError> {
    let mut roots = RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            for cert in certificates(&read(base, path, "ca_file")?, "ca_file")? {
                roots
                    .add(cert)
                    .map_err(|e| invalid("upstream.ca_file", format!("{e}")))?;
            }
        }
        None => {
            // Only needed for https upstreams; a machine without system roots can still proxy
            // to a plaintext upstream.
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("upstream", format!("TLS: {e}")))?
        .with_root_certificates(roots);
    // ALPN (h2) is set by the connector builder.
    let tls = match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(&read(base, cert, "client_cert")?, "client_cert")?;
            let key = PrivateKeyDer::from_pem_slice(&read(base, key, "client_key")?)
                .map_err(|e| invalid("upstream.client_key", format!("{e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid("upstream.client_cert", format!("{e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(invalid(
                "upstream",
                "client_cert and client_key go together",
            ));
        }
    };
    Ok(tls)
}

impl<B> Service<Request<B>> for Forwarder
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ForwardBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pooled client is always ready; HTTP/2 multiplexes calls on its connections.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let in_flight = telemetry::InFlight::start();
        let request = request.map(|b| b.map_err(Into::into).boxed_unsync());
        if let Some(passports) = self
            .passports
            .as_ref()
            .filter(|_| Passports::covers(request.uri().path()))
        {
            // The message must be read whole to be given its passport.
            let passports = Arc::clone(passports);
            let mut this = self.clone();
            return Box::pin(async move {
                match passports.write(request).await {
                    Ok(request) => this.send(request, in_flight).await,
                    Err(refusal) => Ok(local(refusal)),
                }
            });
        }
        Box::pin(self.send(request, in_flight))
    }
}

impl Forwarder {
    /// Writes passports into the calls that carry them.
    pub(crate) fn with_passports(mut self, passports: Option<Arc<Passports>>) -> Self {
        self.passports = passports;
        self
    }

    fn send(
        &mut self,
        request: Request<UpstreamRequestBody>,
        in_flight: telemetry::InFlight,
    ) -> impl Future<Output = Result<Response<ForwardBody>, Infallible>> + Send + 'static {
        let request = self.upstream_request(request);
        let client = self.client.clone();
        let authority = self.authority.clone();
        async move {
            let request = match request {
                Ok(request) => request,
                Err(e) => {
                    return Ok(unavailable(
                        &format!("warden proxy: cannot address the upstream: {e}"),
                        "request",
                    ));
                }
            };
            match client.request(request).await {
                Ok(response) => Ok(response.map(|body| ForwardBody {
                    inner: Some(body),
                    _in_flight: Some(in_flight),
                })),
                Err(error) => {
                    let reason = if error.is_connect() {
                        "connect"
                    } else {
                        "request"
                    };
                    let mut message = format!("warden proxy: upstream {authority} unavailable");
                    let mut source: Option<&dyn std::error::Error> = Some(&error);
                    while let Some(e) = source {
                        message.push_str(": ");
                        message.push_str(&e.to_string());
                        source = e.source();
                    }
                    tracing::warn!(upstream = %authority, reason, error = %message, "upstream call failed");
                    Ok(unavailable(&message, reason))
                }
            }
        }
    }
}

/// An answer the proxy gives itself; nothing went upstream.
fn local(response: Response<Bytes>) -> Response<ForwardBody> {
    response.map(|_| ForwardBody {
        inner: None,
        _in_flight: None,
    })
}

/// A trailers-only `UNAVAILABLE`, counted as an upstream error.
fn unavailable(message: &str, reason: &'static str) -> Response<ForwardBody> {
    telemetry::upstream_error(reason);
    local(grpc_trailers_only(Code::Unavailable, message))
}

pin_project! {
    /// The upstream's response body, streamed untouched (trailers included); the call counts
    /// as in flight until it is done or dropped. An upstream that fails mid-answer (resets the
    /// stream, drops the connection) ends the call with `UNAVAILABLE` trailers that say so,
    /// counted as an upstream error, rather than a reset the caller cannot read.
    pub struct ForwardBody {
        #[pin]
        inner: Option<hyper::body::Incoming>,
        _in_flight: Option<telemetry::InFlight>,
    }
}

impl std::fmt::Debug for ForwardBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardBody").finish_non_exhaustive()
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_frame(cx) {
            Poll::Ready(Some(Err(error))) => {
                this.inner.set(None);
                let message = format!("warden proxy: the upstream failed mid-answer: {error}");
                tracing::warn!(reason = "stream", error = %message, "upstream call failed");
                telemetry::upstream_error("stream");
                Poll::Ready(Some(Ok(Frame::trailers(grpc_status(
                    Code::Unavailable,
                    &message,
                )))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
