//! A real Python worker (`temporalio`) with Warden's Python interceptor (`python/warden_worker`)
//! behind `warden proxy` and a real Temporal dev server: the driver in
//! `python/tests/worker_e2e.py` makes the calls and checks which handlers ran, as the Rust
//! worker's test does; this test starts the parts and requires every check to pass.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;

use support::{Issuer, ProxyProcess, ed25519_pem, passport_proxy_config, temporal};

/// The Python with `temporalio` and PyJWT that the test command installs into `.venv`.
fn python() -> PathBuf {
    let path = std::env::var_os("WARDEN_PYTHON").map(PathBuf::from).expect(
        "WARDEN_PYTHON must name a Python with temporalio and PyJWT: run ./scripts/test.sh",
    );
    assert!(
        path.exists(),
        "WARDEN_PYTHON={} does not exist",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_worker_runs_handlers_only_for_calls_the_proxy_vouched_for_and_replays_after_rotation()
 {
    let issuer = Issuer::start().await;
    let pem = ed25519_pem();
    let proxy = ProxyProcess::start(
        "python-worker",
        &[
            ("proxy.toml", passport_proxy_config(&issuer, "edge-1")),
            ("passport.pem", pem),
        ],
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = tokio::process::Command::new(python())
        .arg(root.join("python/tests/worker_e2e.py"))
        .env("PYTHONPATH", root.join("python"))
        .env("WARDEN_PROXY", &proxy.address)
        .env("WARDEN_SERVER", &temporal().address)
        .env(
            "WARDEN_TOKEN_WORKER",
            issuer.token("order-worker", &["orders:writer"]),
        )
        .env(
            "WARDEN_TOKEN_ALICE",
            issuer.token("alice", &["orders:admin"]),
        )
        .env("WARDEN_TOKEN_BOB", issuer.token("bob", &["orders:writer"]))
        .env("WARDEN_PASSPORT_KEY", proxy.dir.join("passport.pem"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the Python worker's checks failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let passed: u32 = summary
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}\n{stderr}"));
    assert!(passed >= 25, "every check ran: {stdout}");
}
