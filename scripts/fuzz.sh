#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time on its checked-in seed corpus.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 20 s, all targets)
#
# Only the stable toolchain exists here, so cargo-fuzz's nightly flags are
# unlocked with RUSTC_BOOTSTRAP=1. The fuzz crate has its own target dir
# (fuzz/target) and does not link the auditlens crate (see fuzz/Cargo.toml),
# so this never rebuilds DuckDB. New inputs libFuzzer finds go to
# fuzz/target/corpus/<target> (not checked in); a crash leaves its input in
# fuzz/artifacts/<target>/ and fails the script. Prints one summary line per
# target: runs, seconds, and the coverage reached.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
all_targets=(audit_line gzip_reader config_loader rbac_loader admission_review sql_guard)
targets=("${@:-${all_targets[@]}}")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$PWD/fuzz/target"
mkdir -p fuzz/target/logs
status=0
for target in "${targets[@]}"; do
    work="fuzz/target/corpus/$target"
    mkdir -p "$work" "fuzz/artifacts/$target"
    log="fuzz/target/logs/$target.log"
    # -rss_limit_mb: the reader target decompresses gzip bombs up to ~4 MiB;
    # anything near 2 GiB is a leak worth failing on.
    if cargo fuzz run --fuzz-dir fuzz "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 || true)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
        echo "fuzz $target: ok (${runs:-no summary}; ${cov:-cov ?})"
    else
        status=1
        echo "fuzz $target: FAILED, see $log and fuzz/artifacts/$target/" >&2
        tail -40 "$log" >&2
    fi
done
rm -rf /dev/shm/auditlens-fuzz-* "${TMPDIR:-/tmp}"/auditlens-fuzz-* 2>/dev/null || true
exit $status
