#!/usr/bin/env bash
# Every fuzz target under libFuzzer (cargo-fuzz, coverage-guided) for a short run, each from
# seeds shaped like the hostile corpus's requests (`fuzz-seeds`). A crash fails the run and
# leaves its input in fuzz/artifacts/TARGET/.
#
#     scripts/fuzz.sh [SECONDS_PER_TARGET]      # default 5; longer runs: see SECURITY.md
#
# Runs on stable, this machine's one toolchain: with `--sanitizer none` cargo-fuzz passes only
# stable codegen flags (the SanitizerCoverage pass). The sanitizers need nightly; the targets
# are plain Rust, with no unsafe code of ours for one to watch, and Rust's own checks
# (overflow, bounds, debug assertions) on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}

CARGO_FUZZ_VERSION="0.13.2"
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
cargo run --quiet -p warden-fuzz --bin fuzz-seeds -- "$seeds"

# Its own target directory: the instrumented build would otherwise rebuild the tests' one.
export CARGO_TARGET_DIR="${WARDEN_FUZZ_TARGET_DIR:-$HOME/.cache/warden-fuzz-stable}"
cd fuzz
cargo fuzz build --sanitizer none -O
for target in $(cargo fuzz list); do
    # -timeout: one input taking over 10 s is a hang, and fails the run like a crash.
    if ! out=$(cargo fuzz run --sanitizer none -O "$target" "$seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 2>&1); then
        echo "$out" | tail -40
        echo "fuzz target $target failed" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' <<<"$out" | grep -o '[0-9]*$' || true)
    edges=$(grep -o 'cov: [0-9]*' <<<"$out" | tail -1 | grep -o '[0-9]*' || true)
    echo "fuzz $target: ${runs:-?} runs in ${seconds} s, coverage ${edges:-?}, no crash"
done
