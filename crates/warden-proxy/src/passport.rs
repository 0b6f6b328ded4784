//! Call passports written into allowed Temporal calls on their way upstream.

use std::{path::Path, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full};
use warden_passport::{Forward, Issuer, SigningKey, jwks};
use warden_temporal::passport::{PassportWriter, WriteError};
use warden_tower::{
    CallExt, message,
    rejection::{Code, grpc_trailers_only},
};

use crate::{ProxyConfigError, ProxyError, config::PassportConfig, invalid};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type UpstreamRequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The proxy's passport writer and the limits it reads requests under.
#[derive(Debug)]
pub(crate) struct Passports {
    writer: PassportWriter,
    max_message_bytes: usize,
}

impl Passports {
    /// The writer `config` describes (paths relative to `base`).
    pub(crate) fn build(
        config: &PassportConfig,
        base: &Path,
        max_message_bytes: usize,
    ) -> Result<Self, ProxyError> {
        Ok(Self {
            writer: PassportWriter::new(issuer(config, base)?)
                .header_key(config.header.clone())
                .bind_input(config.bind_input),
            max_message_bytes,
        })
    }

    /// Whether calls to `path` get a passport.
    pub(crate) fn covers(path: &str) -> bool {
        PassportWriter::covers(path)
    }

    /// The public key set workers verify passports with.
    pub(crate) fn jwks_json(&self) -> String {
        serde_json::to_string(&jwks([self.writer.issuer().key()]))
            .unwrap_or_else(|_| r#"{"keys":[]}"#.to_owned())
    }

    /// `request` with its message rewritten: caller-sent passports removed and, when Warden
    /// allowed the call, a fresh one written. `Err` is the answer for a call that cannot be
    /// given one; it never goes upstream.
    pub(crate) async fn write(
        &self,
        request: Request<UpstreamRequestBody>,
    ) -> Result<Request<UpstreamRequestBody>, Response<Bytes>> {
        let (mut parts, mut body) = request.into_parts();
        // Warden let one message within the limit through; the prefix and slack are extra.
        let limit = self.max_message_bytes.saturating_add(64);
        let mut framed = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                grpc_trailers_only(Code::InvalidArgument, &format!("reading the request: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                if framed.len() + data.len() > limit {
                    return Err(grpc_trailers_only(
                        Code::ResourceExhausted,
                        "the request is larger than the message limit",
                    ));
                }
                framed.extend_from_slice(&data);
            }
        }
        let framed = framed.freeze();
        let message = message::unframe(&parts.headers, &framed, self.max_message_bytes)
            .map_err(|rejection| grpc_trailers_only(rejection.code(), rejection.message()))?;
        // In shadow mode a denied call is forwarded too, but never with a passport.
        let claims = parts
            .extensions
            .warden_call()
            .filter(|call| call.decision().is_some_and(|d| d.is_allowed()))
            .and_then(|call| call.claims());
        let written = self
            .writer
            .write(parts.uri.path(), &message, claims.map(Arc::as_ref))
            .map_err(|error| match error {
                WriteError::Malformed { .. } => {
                    grpc_trailers_only(Code::InvalidArgument, &error.to_string())
                }
                _ => {
                    tracing::error!(%error, "cannot write a call passport");
                    grpc_trailers_only(
                        Code::Internal,
                        "warden proxy: cannot sign the call passport",
                    )
                }
            })?;
        let framed = match written {
            Some(message) => message::frame(&message),
            None => framed,
        };
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = Full::new(framed)
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(Request::from_parts(parts, body))
    }
}

fn issuer(config: &PassportConfig, base: &Path) -> Result<Issuer, ProxyError> {
    let key_id = || {
        config
            .key_id
            .as_deref()
            .ok_or_else(|| invalid("passport.key_id", "is needed for a PEM key or a secret"))
    };
    let key = match (&config.key_file, &config.secret_file) {
        (Some(path), None) => {
            let key = read(base, path, "key_file")?;
            if key.trim_ascii_start().starts_with(b"{") {
                SigningKey::from_jwk(&key, config.key_id.as_deref())
            } else {
                SigningKey::from_pem(&key, key_id()?)
            }
            .map_err(|e| invalid("passport.key_file", e.to_string()))?
        }
        (None, Some(path)) => {
            let secret = read(base, path, "secret_file")?;
            SigningKey::from_secret(trim_newline(&secret), key_id()?)
                .map_err(|e| invalid("passport.secret_file", e.to_string()))?
        }
        _ => {
            return Err(invalid(
                "passport",
                "needs exactly one of key_file and secret_file",
            ));
        }
    };
    let mut forward = Forward::subject_only();
    forward.roles = config.forward.roles;
    forward.privileges = config.forward.privileges;
    forward.groups = config.forward.groups;
    for attribute in &config.forward.attributes {
        forward = forward.with_attribute(attribute.clone());
    }
    if config.lifetime_seconds == 0 {
        return Err(invalid("passport.lifetime_seconds", "must be at least 1"));
    }
    Ok(Issuer::new(config.issuer.as_str(), key)
        .lifetime(Duration::from_secs(config.lifetime_seconds))
        .forward(forward))
}

/// A secret file's content without the newline an editor leaves at its end.
fn trim_newline(secret: &[u8]) -> &[u8] {
    secret
        .strip_suffix(b"\n")
        .map_or(secret, |s| s.strip_suffix(b"\r").unwrap_or(s))
}

fn read(base: &Path, path: &Path, what: &str) -> Result<Vec<u8>, ProxyError> {
    let path = base.join(path);
    std::fs::read(&path).map_err(|source| {
        ProxyError::Config(ProxyConfigError::Read {
            key: format!("passport.{what}"),
            path,
            source,
        })
    })
}

/// The JWKS response.
pub(crate) fn jwks_response(json: &str) -> Response<String> {
    let mut response = Response::new(json.to_owned());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
