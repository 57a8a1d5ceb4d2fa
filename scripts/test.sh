#!/usr/bin/env bash
# Every test CI runs, in order: the cargo test suite (unit tests and the
# end-to-end runs of the real binary), each fuzz target for 20 s on its
# corpus, and a five-minute soak of the live daemon. README's second command
# and `.ci/run` are this script.
#
# The shared CARGO_TARGET_DIR outside the clone (default
# ~/.cache/auditlens-target) keeps DuckDB's bundled C++ built once; the fuzz
# crate builds in fuzz/target and never links DuckDB.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/auditlens-target}"
cargo test --release
scripts/fuzz.sh 20
scripts/soak.sh 5
