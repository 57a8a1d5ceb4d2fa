#!/usr/bin/env bash
# The soak: live traffic at 2,000 events/s with rotation every minute and gzip,
# queries in a loop (`auditlens sql` and `auditlens query` over gRPC) and a
# Watch client (`auditlens anomalies --follow`) connected throughout, for
# MINUTES (default 5, what CI runs). Writes lines written, rows stored, lag
# and RSS every 5 s to target-soak/soak-<minutes>m.csv (the daemon's log and
# the Watch client's output beside it) and fails on any lost or duplicated
# line, lag over SOAK_MAX_LAG_SECONDS (5) at any sample, RSS growth, a failed
# query or a dropped Watch stream. Prints the RSS/lag curve at the end.
#
#   scripts/soak.sh [MINUTES]
#   SOAK_RATE=5000 scripts/soak.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/auditlens-target}"
mkdir -p target-soak
export SOAK_SECONDS=$((minutes * 60))
export SOAK_CSV="$PWD/target-soak/soak-${minutes}m.csv"
# Build first, then run a copy of the binary: a build in the same target
# folder during a long soak must not replace it under the query loop.
cargo test --release --test soak --no-run
mkdir -p target-soak/bin
cp "$CARGO_TARGET_DIR/release/auditlens" "target-soak/bin/auditlens-${minutes}m"
export SOAK_BINARY="$PWD/target-soak/bin/auditlens-${minutes}m"
status=0
cargo test --release --test soak -- --ignored --nocapture || status=$?
# The curve: one row about every minutes/12 minutes (every minute for short runs).
if [ -s "$SOAK_CSV" ]; then
    every=$(( minutes >= 12 ? minutes * 60 / 12 : 60 ))
    echo "soak curve (every ${every} s): seconds, written, stored, lag s, RSS MiB"
    awk -F, -v every="$every" 'NR > 1 && ($1 >= next_at || NR == 2) {
        printf "  %6d %10d %10d %6.2f %7.1f\n", $1, $2, $3, $4, $5 / 1024; next_at = $1 - ($1 % every) + every
    } END { if (NR > 1) printf "  last: %d s, %d written, %d stored, lag %.2f s, RSS %.1f MiB\n", $1, $2, $3, $4, $5 / 1024 }' "$SOAK_CSV"
fi
echo "soak: CSV in $SOAK_CSV; $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
