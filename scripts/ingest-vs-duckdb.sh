#!/usr/bin/env bash
# Ingest benchmark (issue "foundation"): `auditlens ingest` of FILE into a
# fresh data folder against DuckDB told the audit schema
# (benches/duckdb_ingest.py), alternating RUNS times so both see the same
# machine, each under /usr/bin/time. Prints every run and the medians.
#
#   python3 benches/make_audit_log.py /root/bench/audit-1m.log 1000000
#   scripts/ingest-vs-duckdb.sh /root/bench/audit-1m.log 5
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:?usage: scripts/ingest-vs-duckdb.sh FILE [RUNS]}
runs=${2:-5}
target=${CARGO_TARGET_DIR:-$HOME/.cache/auditlens-target}
cargo build --release --quiet --bin auditlens
binary="$target/release/auditlens"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
results="$scratch/results"
for run in $(seq "$runs"); do
    rm -rf "$scratch/data"
    /usr/bin/time -f "auditlens %e %U %S %M" -a -o "$results" \
        "$binary" ingest --no-progress --quiet --data-dir "$scratch/data" "$file" >/dev/null
    rm -f "$scratch/peer.parquet"
    /usr/bin/time -f "duckdb %e %U %S %M" -a -o "$results" \
        python3 benches/duckdb_ingest.py "$file" "$scratch/peer.parquet" >/dev/null
    echo "run $run: $(tail -2 "$results" | tr '\n' ' ') (tool wall user sys maxrss_kb); load $(cut -d' ' -f1 /proc/loadavg)"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tool, wall, user, system, rss = line.split()
    rows.setdefault(tool, []).append((float(wall), float(user) + float(system), int(rss) / 1024))
for tool, values in rows.items():
    wall = statistics.median(v[0] for v in values)
    cpu = statistics.median(v[1] for v in values)
    rss = max(v[2] for v in values)
    print(f"{tool:9} median wall {wall:.2f} s, median CPU {cpu:.2f} s, peak RSS max {rss:.0f} MiB over {len(values)} runs")
ours, peer = rows["auditlens"], rows["duckdb"]
print("ratio auditlens/duckdb speed: by wall %.2f, by CPU %.2f" % (
    statistics.median(v[0] for v in peer) / statistics.median(v[0] for v in ours),
    statistics.median(v[1] for v in peer) / statistics.median(v[1] for v in ours)))
PY
