//! The `warden` command.
//!
//! `warden check --config warden.toml --request request.json` evaluates one request against a
//! policy config, prints the decision and what decided it, and exits 0 when allowed, 1 when
//! denied and 2 on a usage or config error — so policies can be tested in CI.
//!
//! `warden proxy --config proxy.toml` runs the authorizing proxy in front of a gRPC upstream
//! such as Temporal's frontend (see `warden_proxy`); `--check` only validates the config.
//! It exits 0 after a graceful shutdown (SIGINT or SIGTERM), 2 when the config or start-up
//! fails, 1 when serving fails.

mod check;
mod proxy;

use std::{io::Read, path::PathBuf, process::ExitCode};

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
        /// The config file (TOML): `[policies.NAME]` tables and an `[authorize]` table.
        #[arg(long, short)]
        config: PathBuf,
        /// The request (JSON): subject, method, kind, namespace, instance, name, args; `-`
        /// reads standard input.
        #[arg(long, short)]
        request: PathBuf,
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
}

fn read(path: &PathBuf) -> Result<String, String> {
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
        Command::Check {
            config,
            request,
            json,
        } => {
            let outcome = read(&config).and_then(|text| {
                let request = read(&request)?;
                check::check(&config, &text, &request)
            });
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
