//! A real `redis-server` for tests, on a free loopback port, stopped when dropped.
//!
//! `./scripts/test.sh` installs `redis-server`; a test that needs it and cannot start it
//! fails, saying so — it never skips.

// Fixtures: a server that cannot be started is a broken test machine, said loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::{
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:PORT/`.
    pub url: String,
    port: u16,
}

impl RedisServer {
    /// Starts one without persistence, and waits until it accepts connections.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        Self::start_on(port)
    }

    /// Starts it again on the same port after [`RedisServer::stop`] (empty: nothing persists).
    pub fn restart(&mut self) {
        self.stop();
        let fresh = Self::start_on(self.port);
        let old = std::mem::replace(self, fresh);
        // The old handle's process is already gone.
        std::mem::forget(old);
    }

    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs `redis-server` ({e}); ./scripts/test.sh installs it")
            });
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Stops the server (a store pointing at it then cannot reach it).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
