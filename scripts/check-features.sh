#!/usr/bin/env bash
# Every crate that has cargo features builds without warnings with no default features and
# with each feature alone (the combinations a downstream crate may pick).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"

check() {
    echo "-- cargo check $*"
    cargo check --quiet --lib "$@"
}

for spec in \
    "warden-tower:gzip deflate zstd reflect" \
    "warden-identity:jwks mtls tonic" \
    "warden-temporal:client" \
    "warden:gzip deflate zstd reflect tonic redis temporal temporal-client"; do
    crate=${spec%%:*}
    check -p "$crate" --no-default-features
    for feature in ${spec#*:}; do
        check -p "$crate" --no-default-features --features "$feature"
    done
done
