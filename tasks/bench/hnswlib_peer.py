#!/usr/bin/python3
"""hnswlib as a peer for tasks/bench/fanng_bench.ts (Debian's python3-hnswlib; benchmarks only).

Reads from stdin one JSON header line, then the base [n x d] and the queries [q x d] as little-endian
float32. Builds an HNSW index (M, ef_construction), answers the queries at each ef in `efs` (k neighbours,
`threads` threads, best of two runs), and writes one JSON line: build seconds and, per ef, the seconds and the labels
(uint32, base64). With "drop_first": true it asks for k + 1 neighbours and drops the query's own id (a
self-search over base rows whose ids are given in "self_ids"). Then, until stdin closes, it answers each
line {"ef": E} with one more timed run of the queries at E, as {"seconds": s}: rounds that the bench
alternates with its own searches (A B A B), so that both sides meet the same moments of a shared machine.
"""
import base64
import json
import sys
import time

import hnswlib
import numpy as np


def main() -> None:
    header = json.loads(sys.stdin.buffer.readline())
    n, d, q, k = header["n"], header["d"], header["q"], header["k"]
    base = np.frombuffer(sys.stdin.buffer.read(n * d * 4), dtype="<f4").reshape(n, d)
    queries = np.frombuffer(sys.stdin.buffer.read(q * d * 4), dtype="<f4").reshape(q, d)
    index = hnswlib.Index(space="l2", dim=d)
    index.init_index(max_elements=n, ef_construction=header.get("ef_construction", 200), M=header.get("M", 16),
                     random_seed=1)
    index.set_num_threads(header.get("threads", 2))
    t0 = time.perf_counter()
    index.add_items(base, np.arange(n))
    build = time.perf_counter() - t0
    runs = []
    self_ids = np.array(header.get("self_ids", []), dtype=np.int64)
    for ef in header["efs"]:
        index.set_ef(max(ef, k + 1))
        kk = k + 1 if self_ids.size else k
        # Best of two runs, as the FANNG rows it is compared with.
        seconds = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            labels, _ = index.knn_query(queries, k=kk)
            seconds = min(seconds, time.perf_counter() - t0)
        if self_ids.size:
            # Drop each query's own id (or the last column when it is not among the results).
            out = np.empty((q, k), dtype=np.uint32)
            for i in range(q):
                row = [x for x in labels[i] if x != self_ids[i]][:k]
                out[i] = row
            labels = out
        labels = np.ascontiguousarray(labels.astype("<u4"))
        runs.append({"ef": ef, "seconds": seconds, "labels": base64.b64encode(labels.tobytes()).decode()})
    sys.stdout.write(json.dumps({"build_seconds": build, "runs": runs}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin.buffer:
        index.set_ef(max(json.loads(line)["ef"], k + 1))
        t0 = time.perf_counter()
        index.knn_query(queries, k=k + 1 if self_ids.size else k)
        sys.stdout.write(json.dumps({"seconds": time.perf_counter() - t0}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
