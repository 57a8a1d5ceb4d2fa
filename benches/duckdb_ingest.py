#!/usr/bin/env python3
"""The peer: DuckDB (Python package) told the audit schema up front, converting
an audit log to one ZSTD Parquet file. Prints events/s and peak RSS.

Usage: python3 benches/duckdb_ingest.py AUDIT.log OUT.parquet
"""
import resource, sys, time
import duckdb

source, target = sys.argv[1], sys.argv[2]
columns = {
    "kind": "VARCHAR", "apiVersion": "VARCHAR", "level": "VARCHAR", "auditID": "VARCHAR", "stage": "VARCHAR",
    "requestURI": "VARCHAR", "verb": "VARCHAR",
    "user": "STRUCT(username VARCHAR, uid VARCHAR, groups VARCHAR[])",
    "impersonatedUser": "STRUCT(username VARCHAR, uid VARCHAR, groups VARCHAR[])",
    "sourceIPs": "VARCHAR[]", "userAgent": "VARCHAR",
    "objectRef": "STRUCT(resource VARCHAR, namespace VARCHAR, name VARCHAR, uid VARCHAR, apiGroup VARCHAR, apiVersion VARCHAR, resourceVersion VARCHAR, subresource VARCHAR)",
    "responseStatus": "STRUCT(code INTEGER, status VARCHAR, reason VARCHAR, message VARCHAR)",
    "requestObject": "JSON", "responseObject": "JSON",
    "requestReceivedTimestamp": "TIMESTAMP", "stageTimestamp": "TIMESTAMP", "annotations": "JSON",
}
spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
connection = duckdb.connect()
started = time.perf_counter()
connection.execute(
    f"COPY (SELECT * FROM read_json('{source}', format='newline_delimited', columns={spec})) "
    f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
)
elapsed = time.perf_counter() - started
rows = connection.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"duckdb {duckdb.__version__}: {rows} events in {elapsed:.2f}s = {rows / elapsed:,.0f} events/s, peak RSS {peak_mb:.0f} MB")
