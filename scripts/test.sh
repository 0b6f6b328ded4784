#!/usr/bin/env bash
# Installs what Warden's tests need and runs all of them.
#
# The tests start their own servers on loopback: tonic and axum services, a JWKS endpoint
# (HTTP and HTTPS), TLS servers with test certificates, and a `redis-server` per test that
# needs one. This script installs `redis-server` (Debian package) when it is missing; a test
# that needs it and cannot start it fails, it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is required (https://rustup.rs)" >&2
    exit 1
fi

if ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing redis-server"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
# The package may start a system-wide server; the tests use their own ports and do not need it.
redis-server --version

cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
