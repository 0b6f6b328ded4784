#!/usr/bin/env bash
# Every crate that has cargo features builds without warnings with no default features and
# with each feature alone (the combinations a downstream crate may pick).
#
# Warnings are read from cargo's output rather than forced with RUSTFLAGS, which would rebuild
# every dependency; cargo replays the warnings of crates it does not rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
check() {
    echo "-- cargo check $*"
    local out
    if ! out=$(cargo check --lib --message-format short "$@" 2>&1); then
        echo "$out"
        failed=1
    elif grep -E ': (warning|error)(\[|:)' <<<"$out" >/dev/null; then
        grep -E ': (warning|error)(\[|:)' <<<"$out"
        failed=1
    fi
}

for spec in \
    "warden-core:watch" \
    "warden-tower:gzip deflate zstd reflect" \
    "warden-identity:jwks mtls tonic" \
    "warden-temporal:client passport" \
    "warden-pdp:authzen remote" \
    "warden-policy:remote" \
    "warden:gzip deflate zstd reflect tonic redis temporal temporal-client"; do
    crate=${spec%%:*}
    check -p "$crate" --no-default-features
    for feature in ${spec#*:}; do
        check -p "$crate" --no-default-features --features "$feature"
    done
done
exit "$failed"
