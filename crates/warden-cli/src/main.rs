//! The `warden` command.
//!
//! `warden check --config warden.toml --request request.json` evaluates one request against a
//! policy config, prints the decision and what decided it, and exits 0 when allowed, 1 when
//! denied and 2 on a usage or config error — so policies can be tested in CI. Given a proxy
//! config, it runs the call — a method path, the message as JSON, metadata, a token, a client
//! certificate — through the proxy's own stack and says exactly what the proxy would answer:
//!
//! ```text
//! warden check -c examples/proxy/temporal.toml \
//!     --method /temporal.api.workflowservice.v1.WorkflowService/DescribeWorkflowExecution \
//!     --message '{"namespace": "orders", "execution": {"workflowId": "order-1"}}' \
//!     -H 'x-api-key: bob-key-change-me'
//! ```
//!
//! `warden pdp --config pdp.toml` serves the decision point (see `warden_proxy::pdp`): bulk
//! attribute-based decisions over gRPC and the AuthZEN API, with the same exit codes.
//!
//! `warden proxy --config proxy.toml` runs the authorizing proxy in front of a gRPC upstream
//! such as Temporal's frontend (see `warden_proxy`); `--check` only validates the config.
//! It exits 0 after a graceful shutdown (SIGINT or SIGTERM), 2 when the config or start-up
//! fails, 1 when serving fails.

mod check;
mod explain;
mod proxy;

use std::{
    io::Read,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "warden", version, about = "Authorization for gRPC services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate a request against a policy config and explain the decision.
    ///
    /// Exits 0 when allowed, 1 when denied, 2 on an error.
    Check {
        /// The config file (TOML): a policy config (`[policies.NAME]` tables and an
        /// `[authorize]` table), or a `warden proxy` config.
        #[arg(long, short)]
        config: PathBuf,
        /// The request (JSON); `-` reads standard input. For a policy config: subject,
        /// method, kind, namespace, instance, name, args. For a proxy config: method,
        /// message, metadata, bearer, client_certificate, peer (the flags below add to it).
        #[arg(long, short)]
        request: Option<PathBuf>,
        #[command(flatten)]
        call: CallFlags,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Authorize every call and forward the allowed ones to an upstream.
    ///
    /// Exits 0 after a graceful shutdown, 2 on a config or start-up error, 1 when serving fails.
    Proxy {
        /// The config file (TOML): `[listen]`, `[upstream]`, `[identity]`, `[policies.NAME]`,
        /// `[authorize]`, and optionally `[instances]`, `[limits]`, `[metrics]`, `[log]`.
        #[arg(long, short)]
        config: PathBuf,
        /// Build everything the config names (reading files, fetching JWKS, connecting to the
        /// instance store), then exit 0 without serving.
        #[arg(long)]
        check: bool,
    },
    /// Serve the decision point: bulk attribute-based decisions over gRPC
    /// (`warden.pdp.v1.DecisionService`) and the AuthZEN evaluation API.
    ///
    /// Exits 0 after a graceful shutdown, 2 on a config or start-up error, 1 when serving fails.
    Pdp {
        /// The config file (TOML): `[listen]`, `[identity]`, `[policies.NAME]`, `[authorize]`,
        /// `[decisions]` (model, records, tokens), and optionally `[limits]`, `[metrics]`,
        /// `[log]`.
        #[arg(long, short)]
        config: PathBuf,
        /// Build everything the config names (reading the model and records, fetching JWKS),
        /// then exit 0 without serving.
        #[arg(long)]
        check: bool,
    },
}

/// The call, given on the command line (proxy configs).
#[derive(clap::Args, Default)]
struct CallFlags {
    /// The method path, `/package.Service/Method`.
    #[arg(long)]
    method: Option<String>,
    /// The request message as proto JSON, or `@FILE`.
    #[arg(long)]
    message: Option<String>,
    /// Metadata, `name: value`; repeat for several.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A bearer token, sent as `authorization: Bearer <token>`.
    #[arg(long)]
    token: Option<String>,
    /// A PEM file with the client certificate chain the caller presents.
    #[arg(long, value_name = "PEM")]
    cert: Option<PathBuf>,
    /// The caller's address, `host:port`.
    #[arg(long)]
    peer: Option<SocketAddr>,
}

impl CallFlags {
    fn is_empty(&self) -> bool {
        self.method.is_none()
            && self.message.is_none()
            && self.headers.is_empty()
            && self.token.is_none()
            && self.cert.is_none()
            && self.peer.is_none()
    }

    /// Adds the flags to `call` (flags win over the request file).
    fn apply(self, call: &mut explain::CallRequest) -> Result<(), String> {
        if let Some(method) = self.method {
            call.method = Some(method);
        }
        if let Some(message) = self.message {
            let text = match message.strip_prefix('@') {
                Some(path) => read(Path::new(path))?,
                None => message,
            };
            call.message =
                Some(serde_json::from_str(&text).map_err(|e| format!("--message: {e}"))?);
        }
        for header in self.headers {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| format!("--header `{header}` is not `name: value`"))?;
            call.add_metadata(name.trim(), value.trim());
        }
        if let Some(token) = self.token {
            call.bearer = Some(token);
        }
        if let Some(cert) = self.cert {
            // Relative to where the command runs, not to the request file.
            call.client_certificate =
                Some(std::path::absolute(&cert).map_err(|e| format!("--cert: {e}"))?);
        }
        if let Some(peer) = self.peer {
            call.peer = Some(peer);
        }
        Ok(())
    }
}

/// Runs `warden check`.
fn check(
    config: &Path,
    request: Option<&Path>,
    flags: CallFlags,
) -> Result<check::Outcome, String> {
    let text = read(config)?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| check::toml_error(config, &e))?;
    let proxy = ["listen", "upstream", "identity", "service"]
        .iter()
        .any(|key| table.contains_key(*key));
    let request_text = request.map(read).transpose()?;
    if !proxy {
        if !flags.is_empty() {
            return Err("--method, --message, --header, --token, --cert and --peer describe a call for a proxy config; this is a policy config".into());
        }
        let request = request_text.ok_or("a policy config needs --request")?;
        return check::check(config, &text, &request);
    }
    let mut call: explain::CallRequest = match &request_text {
        Some(text) => serde_json::from_str(text).map_err(|e| format!("the request: {e}"))?,
        None => explain::CallRequest::default(),
    };
    flags.apply(&mut call)?;
    let request_dir = request
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(explain::check(config, &text, call, &request_dir))
}

fn read(path: &Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("standard input: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Proxy { config, check } => proxy::run(&config, check),
        Command::Pdp { config, check } => proxy::run_pdp(&config, check),
        Command::Check {
            config,
            request,
            call,
            json,
        } => {
            let outcome = check(&config, request.as_deref(), call);
            match outcome {
                Ok(outcome) => {
                    if json {
                        println!("{}", outcome.json());
                    } else {
                        print!("{}", outcome.render());
                    }
                    if outcome.decision.is_allowed() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(error) => {
                    eprintln!("warden check: {error}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
