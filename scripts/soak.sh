#!/usr/bin/env bash
# The soak: live traffic at 2,000 events/s with rotation every minute and gzip,
# queries in a loop, for MINUTES (default 5, what CI runs). Writes lag and RSS
# every 10 s to target-soak/soak-<minutes>m.csv and fails on any lost or
# duplicated line, lag over SOAK_MAX_LAG_SECONDS (5) or RSS growth.
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
cargo test --release --test soak -- --ignored --nocapture
echo "soak: CSV in $SOAK_CSV"
