//! `warden proxy` as a child process in front of the shared Temporal dev server, with a JWKS
//! endpoint issuing tokens for several roles.

#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use warden_example::{
    issuer::{JwksServer, SigningKey, claims},
    temporal_server::TemporalDevServer,
};

/// A running `warden proxy`, killed when dropped.
pub struct ProxyProcess {
    child: Child,
    /// `127.0.0.1:PORT` of the proxy.
    pub address: String,
    /// `http://127.0.0.1:PORT/metrics`, when the config has `[metrics]`.
    pub metrics: Option<String>,
    /// The config's directory (removed with the handle).
    pub dir: PathBuf,
    /// Standard error, read by a thread.
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
    /// The thread reading standard error; it ends when the child closes it.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

/// A scratch directory under the target dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "warden-proxy-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl ProxyProcess {
    /// Writes `files` (name, contents) into a scratch dir, `proxy.toml` among them, and runs
    /// `warden proxy -c proxy.toml` until it prints its address.
    pub fn start<T: AsRef<[u8]>>(name: &str, files: &[(&str, T)]) -> Self {
        Self::start_command("proxy", name, files)
    }

    /// As [`ProxyProcess::start`] for `warden COMMAND -c COMMAND.toml` (`proxy`, `pdp`).
    pub fn start_command<T: AsRef<[u8]>>(command: &str, name: &str, files: &[(&str, T)]) -> Self {
        let dir = scratch(name);
        let config = format!("{command}.toml");
        let wants_metrics = files.iter().any(|(file, text)| {
            *file == config && String::from_utf8_lossy(text.as_ref()).contains("[metrics]")
        });
        for (file, text) in files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args([command, "--config"])
            .arg(dir.join(&config))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&logs);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut address = None;
        let mut metrics = None;
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap() > 0 {
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                address = Some(a.to_owned());
            }
            if let Some(m) = line.trim().strip_prefix("metrics on ") {
                metrics = Some(m.to_owned());
            }
            line.clear();
            if address.is_some() && (metrics.is_some() || !wants_metrics) {
                break;
            }
        }
        let Some(address) = address else {
            let status = child.wait().unwrap();
            panic!(
                "warden proxy did not start ({status}):\n{}",
                logs.lock().unwrap()
            );
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        Self {
            child,
            address,
            metrics,
            dir,
            logs,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// `http://ADDRESS`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sends SIGTERM and waits for the exit status, and for `logs` to hold everything the
    /// proxy wrote to standard error.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().unwrap();
        }
        status
    }

    /// The current Prometheus text.
    pub async fn metrics(&self) -> String {
        let url = self.metrics.as_ref().expect("a [metrics] section");
        http_get(url).await
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// Shared by test binaries that each use some of these.
#[allow(unused_imports)]
pub use warden_example::http_probe::{get as http_get, get_response as http_get_response, sample};

/// A plain HTTP/1.1 POST of a JSON body over loopback, with extra header lines; returns the
/// status and the body.
pub async fn http_post(url: &str, headers: &[&str], body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    stream
        .write_all(
            format!(
                "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The identity provider of a test: a JWKS endpoint and a key.
pub struct Issuer {
    pub jwks: JwksServer,
    key: SigningKey,
}

impl Issuer {
    pub async fn start() -> Self {
        let key = SigningKey::ec("proxy-tests");
        let jwks = JwksServer::start(&[&key]).await;
        Self { jwks, key }
    }

    /// A token for `subject` with Temporal `permissions` such as `orders:writer`.
    pub fn token(&self, subject: &str, permissions: &[&str]) -> String {
        self.key.sign(&claims(subject, permissions))
    }

    /// The `[[identity.mappers]]` table trusting this issuer.
    pub fn mapper_toml(&self) -> String {
        warden_example::issuer::jwks_mapper_toml(&self.jwks.url)
    }
}

/// The Temporal dev server every test of this binary shares.
pub fn temporal() -> &'static TemporalDevServer {
    TemporalDevServer::shared()
}

/// A unique name per test run, so tests sharing the dev server never collide.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Waits up to `limit` for `check` to hold.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh Ed25519 private key, PKCS#8 PEM.
pub fn ed25519_pem() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem()
}

/// A proxy in front of the shared dev server that writes passports signed by `passport.pem`
/// under `key_id`, serves its JWKS at `/.well-known/jwks.json`, and decides by Temporal's roles.
pub fn passport_proxy_config(issuer: &Issuer, key_id: &str) -> String {
    format!(
        r#"
[listen]
address = "127.0.0.1:0"
drain_seconds = 1

[upstream]
address = "http://{upstream}"

[policies.roles]
type = "roles"

[authorize]
default = ["roles"]

[passport]
issuer = "warden-proxy"
key_file = "passport.pem"
key_id = "{key_id}"
jwks_path = "/.well-known/jwks.json"

[identity]
{mapper}
"#,
        upstream = temporal().address,
        mapper = issuer.mapper_toml()
    )
}
