"""Times scikit-learn's KMeans on a feature dump of `auditlens train --dump-features`.

Usage: python3 benches/kmeans_sklearn.py FEATURES.parquet K N_INIT MAX_ITER REPEATS

Takes every numeric feature column (the key columns dropped), standardises it
exactly as benches/model.rs does (mean 0, standard deviation 1, constant
columns left at 0), then fits KMeans(init="k-means++", algorithm="lloyd",
tol=1e-4) REPEATS times and prints one JSON line: median and min seconds,
inertia and iterations. Needs: pip install scikit-learn pyarrow.
"""

import json
import statistics
import sys
import time

import numpy as np
import pyarrow.parquet as pq
from sklearn.cluster import KMeans

KEYS = {"cluster", "identity", "identity_kind", "window_start", "window_end"}


def main() -> None:
    path, k, n_init, max_iter, repeats = sys.argv[1], *map(int, sys.argv[2:6])
    table = pq.read_table(path)
    columns = [name for name in table.column_names if name not in KEYS]
    matrix = np.column_stack([table.column(name).to_numpy(zero_copy_only=False).astype(np.float64) for name in columns])
    matrix = np.nan_to_num(matrix)
    deviation = matrix.std(axis=0)
    deviation[deviation == 0] = 1.0
    matrix = np.ascontiguousarray((matrix - matrix.mean(axis=0)) / deviation)
    timings = []
    model = None
    for repeat in range(repeats):
        model = KMeans(n_clusters=k, init="k-means++", n_init=n_init, max_iter=max_iter, tol=1e-4,
                       algorithm="lloyd", random_state=repeat)
        started = time.perf_counter()
        model.fit(matrix)
        timings.append(time.perf_counter() - started)
    try:
        from threadpoolctl import threadpool_info
        pools = [(pool.get("internal_api"), pool.get("num_threads"), pool.get("architecture")) for pool in threadpool_info()]
    except Exception:  # threadpoolctl is optional
        pools = []
    print(json.dumps({
        "rows": int(matrix.shape[0]), "columns": int(matrix.shape[1]),
        "median_seconds": statistics.median(timings), "min_seconds": min(timings),
        "inertia": float(model.inertia_), "iterations": int(model.n_iter_), "threadpools": pools,
    }))


if __name__ == "__main__":
    main()
