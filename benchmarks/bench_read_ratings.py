"""Reading rating files: ``read_ratings`` against pandas' CSV reader, in time and memory.

For each size (``--lines``), the script writes the ratings of the Netflix-prize
shaped matrix of ``bench_sparse_scale.py`` (scaled to that many ratings; users
in order, as in MovieLens' ``ratings.dat``) in three formats:

- ``tab``: MovieLens' ``u.data`` (user, item, rating, timestamp; tabs);
- ``colons``: MovieLens' ``ratings.dat`` (``::``);
- ``csv.gz``: a gzipped CSV with a header line and half-star ratings.

Then, in a fresh process per file, it times reading the file with
``read_ratings`` (each parser) and with the baseline, ``pandas.read_csv`` (the C parser, the
ids as integers; for ``::`` files ``sep=":"`` and every other field, since
pandas' C parser takes one-character separators only) followed by
``pandas.factorize(..., sort=True)`` of the ids and a ``csr_array`` of the
ratings: the same matrix. Times are the best of ``--repeat`` runs in that
process, the readers taking turns (one run above 10 M lines). Memory is measured in a fresh process per
reader (one read, after a read of the file's first lines has set the libraries
up): the process's peak resident set above what it held before the read
(Linux), as a multiple of the result's bytes (CSR arrays plus id tables).

Run: ``python benchmarks/bench_read_ratings.py [--lines 1e6 1e7 1e8] [--parsers pandas numpy]``
(100 M lines take about 8 GB of disk in the temporary folder and ten minutes;
``--folder DIR`` keeps the files there, for ``skgmmfill recommend DIR/ratings.data``).
"""

import argparse
import contextlib
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_sparse_scale import N_RATINGS, memory_gib, synthetic_ratings  # noqa: E402

FORMATS = {"tab": ("ratings.data", b"\t", False), "colons": ("ratings.dat", b"::", False),
           "csv.gz": ("ratings.csv.gz", b",", True)}
ROWS_PER_CHUNK = 20_000


def _digits(values):
    lengths = np.ones(len(values), dtype=np.int64)
    for power in range(1, 19):
        lengths += values >= 10**power
    return lengths


def format_lines(columns, separator):
    """Lines of text (bytes) of integer columns (non-negative) and token columns
    (``(codes, tokens)``: a list of bytes per distinct value), built by NumPy."""
    lengths = [_digits(c) if isinstance(c, np.ndarray) else np.array([len(t) for t in c[1]])[c[0]]
               for c in columns]
    line_lengths = sum(lengths) + len(separator) * (len(columns) - 1) + 1
    position = np.cumsum(line_lengths) - line_lengths
    out = np.empty(int(line_lengths.sum()), dtype=np.uint8)
    for number, (column, length) in enumerate(zip(columns, lengths)):
        for k in range(int(length.max())):
            writes = np.flatnonzero(length > k)
            if isinstance(column, np.ndarray):
                digit = column[writes] // 10 ** (length[writes] - 1 - k) % 10
                out[position[writes] + k] = ord("0") + digit
            else:
                codes, tokens = column
                table = np.array([list(t.ljust(int(length.max()), b" ")) for t in tokens], dtype=np.uint8)
                out[position[writes] + k] = table[codes[writes], k]
        position += length
        ending = separator if number < len(columns) - 1 else b"\n"
        for k, byte in enumerate(ending):
            out[position + k] = byte
        position += len(ending)
    return out.tobytes()


def write_files(folder, n_lines):
    """The three files of about ``n_lines`` ratings; returns their paths and the number of ratings."""
    paths = {name: os.path.join(folder, filename) for name, (filename, _, _) in FORMATS.items()}
    done = os.path.join(folder, "written.json")  # what a kept folder holds
    if os.path.exists(done):
        with open(done) as f:
            written = json.load(f)
        if written["lines"] == n_lines:
            return paths, written["ratings"]
    X = synthetic_ratings(n_lines / N_RATINGS)
    rng = np.random.default_rng(1)
    half_stars = np.arange(1, 11) / 2
    for name, (filename, separator, gzipped) in FORMATS.items():
        path = paths[name]
        opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if gzipped else (lambda p: open(p, "wb"))
        with opener(path) as out:
            if gzipped:
                out.write(b"userId,movieId,rating,timestamp\n")
            for start in range(0, X.shape[0], ROWS_PER_CHUNK):
                rows = X[start : start + ROWS_PER_CHUNK]
                users = start + 1 + np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
                ratings = rows.data.astype(np.int64)
                if gzipped:  # half stars: 0.5 .. 5
                    codes = np.clip(2 * ratings - 1 - (rng.random(len(ratings)) < 0.5), 0, 9)
                    rating_column = (codes, [f"{value:g}".encode() for value in half_stars])
                else:
                    rating_column = ratings
                stamps = rng.integers(789_652_009, 1_427_784_002, len(ratings))
                out.write(format_lines([users, rows.indices.astype(np.int64) + 1, rating_column, stamps], separator))
    with open(done, "w") as f:
        json.dump({"lines": n_lines, "ratings": X.nnz}, f)
    return paths, X.nnz


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:  # VmHWM from here on (Linux)
        f.write("5")


def pandas_baseline(path, format_name):
    import pandas as pd
    import scipy.sparse as sp

    if format_name == "colons":
        frame = pd.read_csv(path, sep=":", header=None, usecols=[0, 2, 4], names=range(7))
        user, item, rating = 0, 2, 4
    elif format_name == "csv.gz":
        frame = pd.read_csv(path, usecols=["userId", "movieId", "rating"])
        user, item, rating = "userId", "movieId", "rating"
    else:
        frame = pd.read_csv(path, sep="\t", header=None, usecols=[0, 1, 2])
        user, item, rating = 0, 1, 2
    rows, user_ids = pd.factorize(frame[user], sort=True)
    cols, item_ids = pd.factorize(frame[item], sort=True)
    X = sp.csr_array((frame[rating].to_numpy(np.float64), (rows, cols)), shape=(len(user_ids), len(item_ids)))
    return X, np.asarray(user_ids).astype(str), np.asarray(item_ids).astype(str)


def readers(path, format_name, parsers):
    from skgmmfill.datasets import read_ratings

    chosen = {parser: (lambda parser=parser: read_ratings(path, parser=parser)) for parser in parsers}
    chosen["baseline"] = lambda: pandas_baseline(path, format_name)
    return chosen


def time_readers(path, format_name, parsers, repeat):
    """In a fresh process: each reader's best time of ``repeat`` runs, taken in turns, and its matrix's size."""
    results = {}
    for _ in range(repeat):  # the readers take turns, so that none gains from going first or last
        for name, reader in readers(path, format_name, parsers).items():
            tic = time.perf_counter()
            X, users, items = reader()
            seconds = time.perf_counter() - tic
            result_gib = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + users.nbytes + items.nbytes) / 2**30
            best = results.get(name, {}).get("seconds", np.inf)
            results[name] = {"seconds": min(seconds, best), "result": result_gib, "nnz": X.nnz}
            del X, users, items
    assert len({r["nnz"] for r in results.values()}) == 1, "the readers read different matrices"
    print(json.dumps(results))


def peak_of_reader(path, format_name, parsers, name):
    """In a fresh process: the peak resident memory of one read by the reader ``name``, in GiB
    above the process before it, after a read of a small file of the same format has set the
    libraries up."""
    with tempfile.TemporaryDirectory() as folder:
        small = os.path.join(folder, os.path.basename(path))
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as source, opener(small, "wb") as head:
            text = source.read(1 << 16)
            head.write(text[: text.rfind(b"\n") + 1])
        readers(small, format_name, parsers)[name]()
    reader = readers(path, format_name, parsers)[name]
    before = memory_gib("VmRSS")
    reset_peak()
    reader()
    print(json.dumps({"peak": memory_gib("VmHWM") - before}))


def _child(*arguments):
    child = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=True)
    return json.loads(child.stdout.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument("--parsers", nargs="+", default=["pandas", "numpy"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--folder", help="where to write the files, and keep them (default: a temporary folder)")
    parser.add_argument("--time", nargs=2, help=argparse.SUPPRESS)  # internal: the child processes
    parser.add_argument("--peak", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time:
        return time_readers(*args.time, args.parsers, args.repeat)
    if args.peak:
        return peak_of_reader(*args.peak[:2], args.parsers, args.peak[2])

    print("time: seconds, best of --repeat in one process (one run above 10 M lines); ratio to the baseline's")
    print("memory: peak resident set of one read (fresh process) above the process before it, / the bytes of "
          "read_ratings' result (CSR + id tables)")
    header = f"{'lines':>12} {'format':>7} {'MB':>6} {'result GiB':>10} {'baseline s':>10} {'peak x':>6}"
    for name in args.parsers:
        header += f" {name + ' s':>9} {'ratio':>6} {'peak x':>6}"
    print(header)
    with contextlib.ExitStack() as stack:
        folder = args.folder or stack.enter_context(tempfile.TemporaryDirectory())
        for n_lines in args.lines:
            paths, _ = write_files(folder, n_lines)
            for format_name, path in paths.items():
                repeat = args.repeat if n_lines <= 1e7 else 1
                result = _child("--time", path, format_name, "--parsers", *args.parsers, "--repeat", str(repeat))
                for name in result:
                    result[name].update(_child("--peak", path, format_name, name, "--parsers", *args.parsers))
                base, size = result["baseline"], result[args.parsers[0]]["result"]  # the matrix and its ids
                line = (f"{result[args.parsers[0]]['nnz']:>12,} {format_name:>7} {os.path.getsize(path) / 1e6:>6.0f} "
                        f"{size:>10.3f} {base['seconds']:>10.2f} {base['peak'] / size:>6.2f}")
                for name in args.parsers:
                    ours = result[name]
                    line += (f" {ours['seconds']:>9.2f} {ours['seconds'] / base['seconds']:>6.2f}"
                             f" {ours['peak'] / size:>6.2f}")
                print(line, flush=True)
            if not args.folder:
                for path in [*paths.values(), os.path.join(folder, "written.json")]:
                    os.unlink(path)


if __name__ == "__main__":
    main()
