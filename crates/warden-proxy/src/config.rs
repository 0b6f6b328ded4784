//! The proxy's config file.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use warden_identity::IdentityConfig;
use warden_policy::config::{PoliciesConfig, PolicySpec};

/// Everything `warden proxy` needs, from one TOML file; see the [crate docs](crate).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where callers connect.
    pub listen: ListenConfig,
    /// Where allowed calls go.
    pub upstream: UpstreamConfig,
    /// Which methods the proxy knows, and where their targets are (default: Temporal's).
    #[serde(default)]
    pub service: ServiceConfig,
    /// How callers prove who they are.
    pub identity: IdentityConfig,
    /// Where initiators and participants of instances are kept (needed by the `initiator`
    /// and `participants` policies).
    #[serde(default)]
    pub instances: Option<InstancesConfig>,
    /// Named policies (as in `warden check`).
    #[serde(default)]
    pub policies: BTreeMap<String, PolicySpec>,
    /// Operation kind (or `default`) → the policies that must all allow.
    #[serde(default)]
    pub authorize: BTreeMap<String, Vec<String>>,
    /// Dry run: decide and report every call, but forward denied calls too.
    #[serde(default)]
    pub shadow: bool,
    /// Message size and time limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Call passports for workers: signed proof of the caller, written into allowed calls.
    #[serde(default)]
    pub passport: Option<PassportConfig>,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

/// The listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// `host:port` to listen on (port 0 picks a free one; the chosen address is logged).
    pub address: SocketAddr,
    /// Serve TLS (and optionally ask for client certificates).
    #[serde(default)]
    pub tls: Option<ListenTlsConfig>,
    /// On shutdown, how long calls in flight may take to finish (default 10 s).
    #[serde(default = "default_drain_seconds")]
    pub drain_seconds: u64,
    /// Connections served at once (default 10,000); further ones wait to be accepted until
    /// one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Streams one HTTP/2 connection may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`,
    /// default 256); a client opening more waits for one to end.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// The largest header list one request may send, in bytes (default 16 KiB); a larger one
    /// is refused before anything is decided or forwarded.
    #[serde(default = "default_max_header_list_bytes")]
    pub max_header_list_bytes: u32,
    /// Streams a client may open and reset before the server has taken them up, per
    /// connection (default 20); past that the connection is closed (the HTTP/2 rapid-reset
    /// attack).
    #[serde(default = "default_max_pending_reset_streams")]
    pub max_pending_reset_streams: usize,
}

fn default_drain_seconds() -> u64 {
    10
}

fn default_max_connections() -> usize {
    10_000
}

fn default_max_concurrent_streams() -> u32 {
    256
}

fn default_max_header_list_bytes() -> u32 {
    16 * 1024
}

fn default_max_pending_reset_streams() -> usize {
    20
}

/// TLS on the listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenTlsConfig {
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server private key (PEM).
    pub key: PathBuf,
    /// CAs whose client certificates are accepted (PEM); enables mTLS.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: whether a caller without a certificate may still connect (and be
    /// authenticated some other way). Default: certificates are required.
    #[serde(default)]
    pub client_auth_optional: bool,
}

/// Call passports (`warden_passport`): for each start, signal, signal-with-start, query,
/// update and update-with-start it allows, the proxy writes a signed passport into the
/// request's Temporal header, after removing any the caller sent, so a worker can check who
/// called and what for.
///
/// ```toml
/// [passport]
/// issuer = "warden-proxy"
/// key_file = "passport-ed25519.pem"   # PKCS#8 PEM (Ed25519 or P-256) or a private JWK
/// key_id = "edge-2026-12"
/// jwks_path = "/.well-known/jwks.json" # the public key, served to workers (optional)
/// forward = { attributes = ["department"] }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassportConfig {
    /// The issuer name (`iss`) workers trust.
    pub issuer: String,
    /// The signing key: a PKCS#8 PEM private key, Ed25519 or P-256, or a private JWK
    /// (`OKP` Ed25519, `EC` P-256, or `oct`).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Instead of `key_file`: a file holding an HS256 secret (at least 32 bytes), which every
    /// worker then holds too.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The key id (`kid`) workers look the key up by; a JWK's own `kid` serves when this is
    /// not given (and must agree with it when it is).
    #[serde(default)]
    pub key_id: Option<String>,
    /// The Temporal header key (default `warden-passport`).
    #[serde(default = "default_passport_header")]
    pub header: String,
    /// How long a passport is valid, in seconds (default 60).
    #[serde(default = "default_passport_lifetime")]
    pub lifetime_seconds: u64,
    /// Whether passports carry the digest of the call's input payloads (default true).
    #[serde(default = "default_true")]
    pub bind_input: bool,
    /// Which of the caller's claims passports carry besides the subject.
    #[serde(default)]
    pub forward: ForwardConfig,
    /// Where the listener serves the public key as a JWKS (`GET`, no authentication).
    #[serde(default)]
    pub jwks_path: Option<String>,
}

fn default_passport_header() -> String {
    "warden-passport".to_owned()
}

fn default_passport_lifetime() -> u64 {
    60
}

fn default_true() -> bool {
    true
}

/// Which claims a passport forwards (default: roles, privileges and groups; no attributes).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// System and per-namespace roles.
    #[serde(default = "default_true")]
    pub roles: bool,
    /// Privileges (scopes).
    #[serde(default = "default_true")]
    pub privileges: bool,
    /// Groups.
    #[serde(default = "default_true")]
    pub groups: bool,
    /// Attributes, by name.
    #[serde(default)]
    pub attributes: Vec<String>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            roles: true,
            privileges: true,
            groups: true,
            attributes: Vec::new(),
        }
    }
}

/// The upstream every allowed call is forwarded to.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `http://host:port` (HTTP/2 without TLS) or `https://host:port`.
    pub address: String,
    /// CAs that sign the upstream's certificate (PEM); default: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The proxy's own client certificate chain for the upstream (PEM).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// The private key of `client_cert` (PEM).
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// The name to verify the upstream's certificate against, when not the address's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// A file holding the credential the proxy presents upstream (e.g. a Temporal Cloud API
    /// key): it replaces the caller's `authorization` header as `Bearer <credential>`.
    /// Without it, the caller's metadata goes upstream unchanged.
    #[serde(default)]
    pub authorization_file: Option<PathBuf>,
    /// How long connecting to the upstream may take, in milliseconds (default 5,000).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("address", &self.address)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("server_name", &self.server_name)
            .field("authorization_file", &self.authorization_file)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish_non_exhaustive()
    }
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

/// The methods the proxy classifies: a preset, plus methods of any gRPC service described by
/// a descriptor set, with the field paths of their targets.
///
/// ```toml
/// [service]
/// preset = "none"                       # default "temporal"
/// descriptor_set = "api.binpb"          # `protoc --descriptor_set_out` / `buf build -o`
///
/// [[service.method]]
/// path = "/shop.v1.Orders/Refund"
/// kind = "update"
/// namespace = "tenant"
/// instance = "order_id"
/// name = "reason"
/// args = "details"
/// ```
///
/// A method neither the preset nor `service.method` names is classified by its path alone
/// (kind `other`), so a policy can still decide it — the role policy denies it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The preset map the methods are added to.
    #[serde(default)]
    pub preset: Preset,
    /// An encoded `FileDescriptorSet` with the services of `method`.
    #[serde(default)]
    pub descriptor_set: Option<PathBuf>,
    /// Methods mapped by field paths (see `warden_tower::map::ReflectConfig`).
    #[serde(default, rename = "method")]
    pub methods: Vec<warden_tower::map::ReflectMethod>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            preset: Preset::Temporal,
            descriptor_set: None,
            methods: Vec::new(),
        }
    }
}

/// A preset operation map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Temporal's WorkflowService and OperatorService, answered the way Temporal's frontend
    /// answers denials.
    #[default]
    Temporal,
    /// Nothing: only `service.method`, with Warden's default answers.
    None,
}

/// The instance store.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InstancesConfig {
    /// In this process only: fine for one replica, lost on restart.
    Memory {
        /// Record the caller as initiator of each workflow it starts (default true).
        #[serde(default = "yes")]
        record_initiator: bool,
    },
    /// In Redis, shared by every replica.
    Redis {
        /// `redis://host:port/db`.
        url: String,
        /// Key prefix (default `warden`).
        #[serde(default = "default_prefix")]
        prefix: String,
        /// Per-command timeout in milliseconds (default 1,000).
        #[serde(default = "default_redis_timeout_ms")]
        timeout_ms: u64,
        /// Record the caller as initiator of each workflow it starts (default true).
        #[serde(default = "yes")]
        record_initiator: bool,
    },
}

impl InstancesConfig {
    pub(crate) fn record_initiator(&self) -> bool {
        match self {
            Self::Memory { record_initiator }
            | Self::Redis {
                record_initiator, ..
            } => *record_initiator,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_prefix() -> String {
    "warden".to_owned()
}

fn default_redis_timeout_ms() -> u64 {
    1_000
}

/// Limits on what callers send.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest request message, in bytes (default 4 MiB); larger ones are refused with
    /// `RESOURCE_EXHAUSTED` before anything is forwarded.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// How long a call may take to deliver its first message, in seconds (default 30).
    #[serde(default = "default_first_message_seconds")]
    pub first_message_seconds: u64,
    /// How long a policy may take to decide, in milliseconds (default 5,000).
    #[serde(default = "default_policy_timeout_ms")]
    pub policy_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: default_max_message_bytes(),
            first_message_seconds: default_first_message_seconds(),
            policy_timeout_ms: default_policy_timeout_ms(),
        }
    }
}

fn default_max_message_bytes() -> usize {
    4 * 1024 * 1024
}

fn default_first_message_seconds() -> u64 {
    30
}

fn default_policy_timeout_ms() -> u64 {
    5_000
}

/// The Prometheus endpoint (`GET /metrics`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` to serve it on.
    pub address: SocketAddr,
}

/// How the proxy logs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json` (one object per line).
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `warden=debug,info` (default `info`); the
    /// `RUST_LOG` environment variable overrides it.
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".to_owned()
}

/// A log format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Why a config could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    path: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(path: &Path, message: impl std::fmt::Display) -> Self {
        Self {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

impl ProxyConfig {
    /// Reads and parses `path`; relative paths inside it are relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(path, e))?;
        Self::parse(path, &text)
    }

    /// Parses `text`, naming `path` in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::new(path, e))
    }

    /// The policy part, as `warden check` reads it.
    pub fn policies_config(&self) -> PoliciesConfig {
        PoliciesConfig {
            policies: self.policies.clone(),
            authorize: self.authorize.clone(),
        }
    }
}
