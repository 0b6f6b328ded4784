#!/usr/bin/env bash
# Instructions and simulated cache misses per call on the loopback bench's server thread,
# for each target of `grpc_overhead --profile N`, under `valgrind --tool=callgrind`.
#
# Wall-clock figures on a shared 2-core VM move by several microseconds between runs; these
# counts repeat within a few percent, so they show what a change did to the server's work.
# Each target runs 10 s of paced load under valgrind (~1 minute each). Run target 0 (bare)
# first to get each other target's estimated cycles over bare: the throughput a CPU-bound
# server loses to that layer.
#
#   scripts/bench-instructions.sh            # all targets
#   scripts/bench-instructions.sh 0 2        # bare and Warden only
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "error: valgrind is required (Debian package valgrind)" >&2
    exit 1
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(0 1 3 6 4 5 2); fi

names=("tonic, bare" "tonic + no-op tower layer" "tonic + full Warden stack"
    "tonic + header-only Interceptor" "tonic + classify, method-only map"
    "tonic + classify, field map" "tonic + hand-written floor layer")

cargo bench --bench grpc_overhead --no-run 2>/dev/null
bench=$(cargo bench --bench grpc_overhead --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*grpc_overhead[^"]*\)".*/\1/p' | tail -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

printf '| server | instructions | L1i misses | L1d misses | LL misses | estimated cycles | over bare |\n'
printf '|---|---|---|---|---|---|---|\n'
bare=""
for t in "${targets[@]}"; do
    log=$(valgrind --tool=callgrind --separate-threads=yes --cache-sim=yes \
        --callgrind-out-file="$out/t$t" "$bench" --bench --quick --profile "$t" 2>&1)
    calls=$(sed -n "s/^target $t: .* \([0-9]*\) calls, .*/\1/p" <<<"$log")
    if [ -z "$calls" ]; then
        echo "error: target $t printed no call count:" >&2
        echo "$log" | tail -5 >&2
        exit 1
    fi
    # Threads in start order: main (in-process part and callers), the thread that owns the
    # server runtime, then the server runtime's one worker, which serves every call.
    # Events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw. Estimated cycles are callgrind's own
    # (kcachegrind's) estimate: Ir + 10 x L1 misses + 100 x last-level misses.
    summary=$(grep '^summary:' "$out/t$t-03")
    cycles=$(awk -v calls="$calls" '{ printf "%.0f", ($2 + 10 * ($5 + $6 + $7) + 100 * ($8 + $9 + $10)) / calls }' <<<"$summary")
    if [ "$t" = 0 ]; then bare=$cycles; fi
    over="-"
    if [ -n "$bare" ] && [ "$t" != 0 ]; then
        over=$(awk -v c="$cycles" -v b="$bare" 'BEGIN { printf "%+.1f%%", (c - b) / b * 100 }')
    fi
    awk -v calls="$calls" -v name="${names[$t]}" -v cycles="$cycles" -v over="$over" '{
        printf "| %s | %.0f | %.0f | %.0f | %.1f | %s | %s |\n", name, $2 / calls, $5 / calls,
            ($6 + $7) / calls, ($8 + $9 + $10) / calls, cycles, over
    }' <<<"$summary"
done
