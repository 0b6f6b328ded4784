//! `warden check` against a proxy config: the call, as the proxy would see it, run through the
//! very stack `warden proxy` builds from that file.
//!
//! The user gives the method path and the request message as JSON (proto JSON: the field
//! names of the `.proto` in lowerCamelCase, `bytes` in base64), and what the connection
//! would carry: metadata, a bearer token, a PEM client certificate, the peer address. The
//! message is encoded with the descriptors of the config's services (Temporal's own for the
//! Temporal preset, `service.descriptor_set` otherwise), framed, and sent through the
//! proxy's layer over an in-process HTTP/2 request, so classification, authentication, the
//! policies and the refusal are the proxy's own. A second run in shadow mode shows who the
//! caller was and what each policy said, even when the call is refused.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Version};
use http_body_util::{Empty, Full};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde::Deserialize;
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};
use warden_core::{
    AuthzRequest, Claims, Decision, Metadata, OperationKind,
    instances::{MemoryInstanceStore, SharedInstanceStore},
};
use warden_proxy::{ProxyConfig, Stack, config::Preset};
use warden_tower::{
    Call, ClassifiedBody, Code, PeerAddr, PeerCertificates, Transport, classify::peer,
};

use crate::check::{InstanceState, Outcome, record_state, split_method, toml_error};

/// A call to check against a proxy config (JSON, or built from command-line flags).
///
/// ```json
/// {
///   "method": "/temporal.api.workflowservice.v1.WorkflowService/DescribeWorkflowExecution",
///   "message": { "namespace": "orders", "execution": { "workflowId": "order-1" } },
///   "metadata": { "x-api-key": "bob-key-change-me", "x-tenant": ["acme"] },
///   "bearer": "eyJhbGciOi…",
///   "client_certificate": "client.pem",
///   "peer": "10.0.0.7:51000",
///   "instance_state": { "initiator": "alice" }
/// }
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallRequest {
    /// `/package.Service/Method`.
    #[serde(default)]
    pub(crate) method: Option<String>,
    /// The request message, as proto JSON (default: the empty message).
    #[serde(default)]
    pub(crate) message: Option<Value>,
    /// Metadata: one value or several per name.
    #[serde(default)]
    pub(crate) metadata: BTreeMap<String, OneOrMany>,
    /// A bearer token, sent as `authorization: Bearer <token>`.
    #[serde(default)]
    pub(crate) bearer: Option<String>,
    /// A PEM file holding the client certificate chain the caller presents (leaf first),
    /// relative to the request file.
    #[serde(default)]
    pub(crate) client_certificate: Option<PathBuf>,
    /// The caller's address (default: unknown, which rules on networks treat as not inside).
    #[serde(default)]
    pub(crate) peer: Option<SocketAddr>,
    /// What the instance store knows of the call's instance.
    #[serde(default)]
    pub(crate) instance_state: Option<InstanceState>,
}

impl CallRequest {
    /// Adds one metadata value.
    pub(crate) fn add_metadata(&mut self, name: &str, value: &str) {
        let entry = self
            .metadata
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| OneOrMany::Many(Vec::new()));
        match entry {
            OneOrMany::One(one) => {
                *entry = OneOrMany::Many(vec![std::mem::take(one), value.to_owned()])
            }
            OneOrMany::Many(many) => many.push(value.to_owned()),
        }
    }
}

/// One metadata value or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> &[String] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }
}

/// What the proxy's layer did with the call.
#[derive(Default)]
struct Seen {
    call: Option<Call>,
}

/// Runs `request` through the stack the proxy config at `config_path` describes.
pub(crate) async fn check(
    config_path: &Path,
    config: &str,
    request: CallRequest,
    request_dir: &Path,
) -> Result<Outcome, String> {
    let config: ProxyConfig = toml::from_str(config).map_err(|e| toml_error(config_path, &e))?;
    let base = config_path.parent().unwrap_or(Path::new("."));
    let method = request
        .method
        .clone()
        .ok_or("the call needs a method (`method` in the request, or --method)")?;
    let (service, name) = split_method(&method)?;
    let input = input_descriptor(&config, base, service, name)?;
    let message = match &request.message {
        Some(json) => DynamicMessage::deserialize(input.clone(), json)
            .map_err(|e| format!("the message is not a valid {}: {e}", input.full_name()))?,
        None => DynamicMessage::new(input.clone()),
    };
    let encoded = Bytes::from(message.encode_to_vec());

    // Whatever store the config names, `check` keeps instance state in memory: it never
    // writes to a shared store.
    let memory = Arc::new(MemoryInstanceStore::new());
    let store: SharedInstanceStore = memory.clone();
    let stack = Stack::build(&config, base, Some(&store), peer::from_extensions)
        .await
        .map_err(|e| e.to_string())?;
    let operation = stack
        .map
        .get(&method)
        .map(|spec| spec.decode(&encoded).map_err(|e| e.to_string()));
    if let (Some(state), Some(Ok(operation))) = (&request.instance_state, &operation) {
        record_state(&memory, operation, state).await?;
    }

    let headers = headers(&request)?;
    let certificates = match &request.client_certificate {
        Some(path) => Some(certificate_chain(&request_dir.join(path))?),
        None => None,
    };
    let transport = if config.listen.tls.is_some() {
        Transport::Tls
    } else {
        Transport::Plaintext
    };
    let http = || {
        let mut call = Request::post(method.as_str())
            .version(Version::HTTP_2)
            .body(Full::new(frame(&encoded)))
            .map_err(|e| format!("the call: {e}"))?;
        *call.headers_mut() = headers.clone();
        let extensions = call.extensions_mut();
        extensions.insert(transport);
        if let Some(peer) = request.peer {
            extensions.insert(PeerAddr(peer));
        }
        if let Some(chain) = &certificates {
            extensions.insert(PeerCertificates(Arc::clone(chain)));
        }
        Ok::<_, String>(call)
    };

    let (response, seen) = run(&stack, http()?).await?;

    // The same call in shadow mode: who called and what each policy said, refused or not.
    let mut shadow_config = config.clone();
    shadow_config.shadow = true;
    let shadow = Stack::build(&shadow_config, base, Some(&store), peer::from_extensions)
        .await
        .map_err(|e| e.to_string())?;
    let (_, shadowed) = run(&shadow, http()?).await?;
    let shadowed = shadowed.call;

    let kind = shadowed
        .as_ref()
        .and_then(Call::operation)
        .map(|op| op.kind)
        .or_else(|| operation.as_ref()?.as_ref().ok().map(|op| op.kind))
        .unwrap_or(OperationKind::Other);
    let mut policies = Vec::new();
    if let Some(call) = &shadowed
        && let (Some(operation), Some(claims)) = (call.operation(), call.claims())
        && let Some((names, _)) = stack.policies.for_kind(kind)
    {
        let context = call
            .context()
            .clone()
            .with_metadata(Metadata::new(headers.clone()));
        let authz =
            AuthzRequest::new(Arc::clone(claims), Arc::clone(operation)).with_context(context);
        for name in names {
            if let Some(policy) = stack.policies.named.get(name) {
                let decision = policy.evaluate(&authz).await.map_err(|e| e.to_string());
                policies.push((name.clone(), decision));
            }
        }
    }

    let (decision, code, message) = match seen.call {
        Some(call) => (
            call.decision()
                .cloned()
                .unwrap_or_else(|| Decision::allow("none")),
            None,
            None,
        ),
        None => {
            let (code, message) = refusal(response.headers());
            let decision = shadowed
                .as_ref()
                .and_then(|c| c.decision().cloned())
                .filter(|d| !d.is_allowed())
                .unwrap_or_else(|| {
                    // Refused before any policy: by authentication, or classification.
                    let stage = match code {
                        Code::Unauthenticated => "authentication",
                        _ => "classification",
                    };
                    Decision::deny(stage, message.clone())
                });
            (decision, Some(code), Some(message))
        }
    };
    let shown = shadowed
        .as_ref()
        .and_then(Call::operation)
        .cloned()
        .or_else(|| operation.and_then(Result::ok).map(Arc::new));
    Ok(Outcome {
        decision,
        code,
        policies,
        kind,
        message,
        operation: shown,
        subject: shadowed
            .as_ref()
            .and_then(|c| c.claims().cloned())
            .map(|claims| subject(&claims)),
    })
}

/// Sends `call` through the stack's layer to an inner service that records what reached it.
async fn run(stack: &Stack, call: Request<Full<Bytes>>) -> Result<(Response<()>, Seen), String> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    let inner = service_fn(move |request: Request<ClassifiedBody<Full<Bytes>>>| {
        let record = Arc::clone(&record);
        async move {
            record.lock().unwrap_or_else(PoisonError::into_inner).call =
                request.extensions().get::<Call>().cloned();
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }
    });
    let response = stack
        .layer
        .layer(inner)
        .oneshot(call)
        .await
        .map_err(|e| format!("the proxy's stack failed: {e}"))?;
    let (parts, _) = response.into_parts();
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    Ok((Response::from_parts(parts, ()), seen))
}

/// The status and message of a refusal, as a gRPC client would read them.
fn refusal(headers: &HeaderMap) -> (Code, String) {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32);
    let message = headers
        .get("grpc-message")
        .map(|v| {
            percent_encoding::percent_decode(v.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    (code, message)
}

/// The request message's descriptor, from the descriptors the config's services come with.
fn input_descriptor(
    config: &ProxyConfig,
    base: &Path,
    service: &str,
    method: &str,
) -> Result<MessageDescriptor, String> {
    let mut pools = Vec::new();
    if config.service.preset == Preset::Temporal {
        pools.push(
            DescriptorPool::decode(warden_temporal::descriptor_set())
                .map_err(|e| format!("Temporal's descriptors: {e}"))?,
        );
    }
    if let Some(path) = &config.service.descriptor_set {
        let path = base.join(path);
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("service.descriptor_set: {}: {e}", path.display()))?;
        pools.push(
            DescriptorPool::decode(bytes.as_slice())
                .map_err(|e| format!("service.descriptor_set: {}: {e}", path.display()))?,
        );
    }
    pools
        .iter()
        .find_map(|pool| {
            let found = pool.get_service_by_name(service)?;
            found.methods().find(|m| m.name() == method)
        })
        .map(|m| m.input())
        .ok_or_else(|| {
            format!(
                "no descriptor the config names has the method /{service}/{method} (the Temporal preset and service.descriptor_set are searched)"
            )
        })
}

fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.freeze()
}

fn headers(request: &CallRequest) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    for (name, values) in &request.metadata {
        let header = HeaderName::try_from(name.as_str())
            .map_err(|_| format!("metadata `{name}` is not a valid header name"))?;
        for value in values.values() {
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| format!("metadata `{name}` has a value that is not a header value"))?;
            headers.append(header.clone(), value);
        }
    }
    if let Some(token) = &request.bearer {
        let value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| "the bearer token is not a header value".to_owned())?;
        headers.insert(http::header::AUTHORIZATION, value);
    }
    Ok(headers)
}

fn certificate_chain(path: &Path) -> Result<Arc<[Vec<u8>]>, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("client certificate {}: {e}", path.display()))?
        .map(|cert| cert.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("client certificate {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "client certificate {}: no certificate in the file",
            path.display()
        ));
    }
    Ok(chain.into())
}

/// Who the caller was, as the mappers saw it.
fn subject(claims: &Claims) -> String {
    match &claims.subject {
        Some(subject) => subject.to_string(),
        None => "anonymous".to_owned(),
    }
}
