"""Build and query time and memory of `EmbeddingIndex` on random embeddings: exact, and faiss.

  python tools/bench_index.py --sizes=10000,100000,1000000 --dim=128 --queries=100 --k=10

One thread (TensorFlow intra-op and faiss), so the numbers are those of one core of a
shared machine. Memory: what the index holds (the embeddings and ids; faiss: its serialized
index, vectors and graph), and in brackets the growth of the process's peak RSS
(sizes in increasing order: the first search's blocks count there too). faiss's recall@10
is measured against the exact search on the same queries. Prints a Markdown table.
"""

import argparse
import resource
import time

import numpy as np


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--faiss_max", type=int, default=1000000,
                        help="largest size to build a faiss index for")
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:
        faiss = None
    from supcon_tf.evaluation.index import EmbeddingIndex

    rng = np.random.default_rng(0)
    rows = ["| size | method | build s | query s (per query) | memory MiB | recall@10 vs exact |",
            "|---|---|---|---|---|---|"]
    for n in [int(s) for s in args.sizes.split(",")]:
        data = rng.standard_normal((n, args.dim), dtype=np.float32)
        queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
        before = peak_mib()
        start = time.perf_counter()
        index = EmbeddingIndex()
        index.add(data)
        build = time.perf_counter() - start
        index.search(queries[:2], args.k)  # Traces / warms the kernels.
        start = time.perf_counter()
        exact = index.search(queries, args.k)["ids"]
        query = time.perf_counter() - start
        held = (index.embeddings.nbytes + index.labels.nbytes) / 2 ** 20
        rows.append(f"| {n:,} | exact (keras.ops, blocks of 1024) | {build:.2f} | {query:.2f} "
                    f"({1000 * query / args.queries:.1f} ms) | {held:.0f} "
                    f"(peak RSS +{peak_mib() - before:.0f}) | 1 |")
        print(rows[-1], flush=True)
        if faiss is None or n > args.faiss_max:
            continue
        before = peak_mib()
        start = time.perf_counter()
        index.search(queries[:1], args.k, method="faiss")  # Builds the HNSW graph.
        build = time.perf_counter() - start
        start = time.perf_counter()
        approx = index.search(queries, args.k, method="faiss")["ids"]
        query = time.perf_counter() - start
        recall = np.mean([len(set(a) & set(e)) / args.k for a, e in zip(approx, exact)])
        held = faiss.serialize_index(index._faiss).nbytes / 2 ** 20
        rows.append(f"| {n:,} | faiss HNSW (M=32, efSearch 128) | {build:.2f} | {query:.3f} "
                    f"({1000 * query / args.queries:.2f} ms) | {held:.0f} "
                    f"(peak RSS +{peak_mib() - before:.0f}) | {recall:.3f} |")
        print(rows[-1], flush=True)
        del index, data
    print("\n".join(rows))


if __name__ == "__main__":
    main()
