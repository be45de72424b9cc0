#!/usr/bin/env python3
"""Per-kernel device time of gpu_bench's decode steps, from Nsight Compute's CSV.

On the GPU machine (bench/gpu/run.sh --ncu DIR does this):

    ncu --profile-from-start off --metrics gpu__time_duration.sum --csv \
        gpu_bench --kernels > DIR/ncu.csv

then anywhere with Python 3:

    bench/gpu/ncu_summary.py DIR/ncu.csv

`gpu_bench --kernels` profiles two op-by-op decode steps each at batch 1, 128 and 16 streams, then
two passes of a bge-small embedding batch; every decode step starts with one embedding lookup
(GetRowsKernel), which is how the steps are told apart, and what follows the last decode step is
the embedding. For each part the kernels are grouped by name (template arguments kept) and listed
by time per step (or pass), with their launch count, mean duration and grid sizes. Nsight Compute runs each kernel alone with
cold caches at base clocks: the times are larger than in the benchmark and the gaps between
kernels are not counted, but the proportions show where a step goes.

`gpu_bench --kernels --experimental` profiles two batch-1 steps with every path that is off by
default on (PDL, fused RoPE/KV write, fused SwiGLU, pipelined matvec, split merge in the attention
kernel): `ncu_summary.py --experimental CSV` reads that one.

    bench/gpu/ncu_summary.py --self-test   checks the parser on a small built-in CSV
"""

import collections
import csv
import io
import sys

BATCHES = ("batch 1", "128 streams", "16 streams")
# gpu_bench --kernels --experimental: one part, no embedding.
EXPERIMENTAL_BATCHES = ("batch 1, all experimental paths on",)
EMBED = "bge-small embedding, 64 x 128 tokens"
STEPS_PER_BATCH = 2


def read_rows(text):
    """The kernel rows of an ncu --csv report (lines before the header are ncu's log)."""
    rows = []
    header = None
    for record in csv.reader(io.StringIO(text)):
        if not record:
            continue
        if record[0] == "ID":
            header = record
            continue
        if header is not None and len(record) == len(header):
            rows.append(dict(zip(header, record)))
    if header is None:
        raise ValueError("no ncu CSV header (a line starting with \"ID\") in the input")
    return rows


def micros(row):
    value = float(row["Metric Value"].replace(",", ""))
    unit = row["Metric Unit"]
    scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
    if unit not in scale:
        raise ValueError("unexpected time unit %r" % unit)
    return value * scale[unit]


def group(name, part):
    """(name, steps, total us per step, [(kernel, us per step, count per step, mean us, grids)])
    of the rows of one part (STEPS_PER_BATCH steps or passes), largest first."""
    kernels = collections.OrderedDict()
    for r in part:
        k = r["Kernel Name"].split("(")[0].strip()
        entry = kernels.setdefault(k, [0.0, 0, set()])
        entry[0] += micros(r)
        entry[1] += 1
        entry[2].add(r["Grid Size"])
    listed = sorted(
        ((k, t / STEPS_PER_BATCH, c / STEPS_PER_BATCH, t / c, sorted(g))
         for k, (t, c, g) in kernels.items()),
        key=lambda e: -e[1])
    return (name, STEPS_PER_BATCH, sum(e[1] for e in listed), listed)


def summarize(rows, batches=BATCHES, embed=True):
    """group() of each decode batch whose steps are all present, then of the embedding passes."""
    starts = [i for i, r in enumerate(rows) if "GetRowsKernel" in r["Kernel Name"]]
    out = []
    for b, name in enumerate(batches):
        first = b * STEPS_PER_BATCH
        if first + STEPS_PER_BATCH > len(starts):
            break
        lo = starts[first]
        hi = starts[first + STEPS_PER_BATCH] if first + STEPS_PER_BATCH < len(starts) else len(rows)
        out.append(group(name, rows[lo:hi]))
    last = len(batches) * STEPS_PER_BATCH
    if embed and len(starts) > last:  # the embedding passes
        out.append(group(EMBED, rows[starts[last]:]))
    return out


def render(summary):
    lines = []
    for name, steps, total, listed in summary:
        lines.append("== %s: %.0f us of kernels per step or pass (mean of %d)" % (name, total, steps))
        for k, per_step, count, mean, grids in listed:
            lines.append("%9.1f us  %5.0fx %8.2f us  %s  grids %s" %
                         (per_step, count, mean, k, " ".join(grids[:3])))
    return "\n".join(lines)


SAMPLE = '''==PROF== Connected to process 1 (gpu_bench)
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"
"0","1","gpu_bench","h","tessera::GetRowsKernel(int)","1","13","(256, 1, 1)","(16, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","ns","3,500"
"1","1","gpu_bench","h","void tessera::MatVecKernel<30, 1, 4>(const unsigned char *)","1","13","(128, 1, 1)","(1320, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","us","25.5"
"2","1","gpu_bench","h","tessera::GetRowsKernel(int)","1","13","(256, 1, 1)","(16, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","ns","3,700"
"3","1","gpu_bench","h","void tessera::MatVecKernel<30, 1, 4>(const unsigned char *)","1","13","(128, 1, 1)","(1320, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","us","26.5"
"4","1","gpu_bench","h","void tessera::MatVecKernel<30, 1, 4>(const unsigned char *)","1","13","(128, 1, 1)","(1320, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","ms","0.002"
'''


def self_test():
    summary = summarize(read_rows(SAMPLE))
    assert len(summary) == 1, summary  # one complete batch (two steps)
    name, steps, total, listed = summary[0]
    assert name == "batch 1" and steps == 2
    by_kernel = {k: (per_step, count, mean) for k, per_step, count, mean, _ in listed}
    mv = by_kernel["void tessera::MatVecKernel<30, 1, 4>"]
    assert abs(mv[0] - (25.5 + 26.5 + 2.0) / 2) < 1e-9, mv  # us, us and ms units
    assert mv[1] == 1.5 and abs(mv[2] - 18.0) < 1e-9, mv
    gr = by_kernel["tessera::GetRowsKernel"]
    assert abs(gr[0] - 3.6) < 1e-9, gr  # "3,500" ns parsed with its thousands separator
    assert listed[0][0].startswith("void tessera::MatVecKernel"), listed  # largest first
    assert abs(total - (mv[0] + gr[0])) < 1e-9
    try:
        read_rows("no csv here\n")
    except ValueError:
        pass
    else:
        raise AssertionError("a file without the header must be an error")
    # Every decode step, then two embedding passes (each starting with two lookups).
    header = SAMPLE.splitlines()[1]
    lines = [header]
    decode_steps = len(BATCHES) * STEPS_PER_BATCH
    names = ["tessera::GetRowsKernel(int)", "tessera::AddKernel(int)"] * decode_steps + [
        "tessera::GetRowsKernel(int)", "tessera::GetRowsKernel(int)", "tessera::LayerNormKernel(int)",
        "tessera::GetRowsKernel(int)", "tessera::GetRowsKernel(int)", "tessera::LayerNormKernel(int)"]
    for i, n in enumerate(names):
        lines.append('"%d","1","gpu_bench","h","%s","1","13","(256, 1, 1)","(8, 1, 1)","0","9.0",'
                     '"m","gpu__time_duration.sum","us","%d"' % (i, n, i + 1))
    full = summarize(read_rows("\n".join(lines) + "\n"))
    assert [part[0] for part in full] == list(BATCHES) + [EMBED], [part[0] for part in full]
    embed = {k: per_step for k, per_step, _, _, _ in full[-1][3]}
    first = 2 * decode_steps + 1  # the embedding rows' durations (us) are their row numbers
    assert embed["tessera::LayerNormKernel"] == ((first + 2) + (first + 5)) / 2, embed
    lookups = first + (first + 1) + (first + 3) + (first + 4)
    assert embed["tessera::GetRowsKernel"] == lookups / 2, embed
    # The experimental file: one part of two steps, nothing after it read as an embedding.
    exp = summarize(read_rows(SAMPLE), EXPERIMENTAL_BATCHES, embed=False)
    assert [part[0] for part in exp] == list(EXPERIMENTAL_BATCHES), exp
    print(render(summary))
    print("ncu_summary self-test passed")


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        self_test()
        return 0
    experimental = len(argv) == 3 and argv[1] == "--experimental"
    if experimental:
        argv = [argv[0], argv[2]]
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: ncu_summary.py [--experimental] NCU_CSV | --self-test\n")
        return 64
    with open(argv[1], encoding="utf-8", errors="replace") as f:
        rows = read_rows(f.read())
    summary = (summarize(rows, EXPERIMENTAL_BATCHES, embed=False) if experimental
               else summarize(rows))
    if not summary:
        sys.stderr.write("ncu_summary.py: no complete decode steps in %s (was it made with "
                         "gpu_bench --kernels?)\n" % argv[1])
        return 1
    print(render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
