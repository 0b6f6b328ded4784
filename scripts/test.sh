#!/usr/bin/env bash
# Installs what Warden's tests need and runs all of them.
#
# The tests start their own servers on loopback (tonic, axum, a raw HTTP/2 client); nothing
# else has to run. Later test suites (Redis, the Temporal dev server) are installed here too,
# so this stays the one command that runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is required (https://rustup.rs)" >&2
    exit 1
fi

# No system packages or services are needed yet: protos compile with protox (pure Rust).
cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
