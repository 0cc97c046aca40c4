#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The report of make bench: per arch and workload, the cost per fault (per
page for the gup_* workloads) of the C loop and of the Rust loop, and their
ratio.

Reads, as written by workbench/bench.sh:
  DIR/<arch>-bench.bench-icount.tap and DIR/<arch>-rust-bench.bench-icount.tap
      one boot each under QEMU -icount: guest instructions per fault
      (minimum over the rounds);
  DIR/um-bench.bench-native-<i>.tap and DIR/um-rust-bench.bench-native-<i>.tap
      for i in 1..--um-pairs: um, natively, wall clock ns per fault (median
      over the rounds of one boot). Per pair, the ratio Rust/C; reported: the
      median ratio, the spread (interquartile range) of the ratios, and
      whether the medians of the first and the second half of the pairs
      agree within that spread. A figure whose halves disagree is printed
      as unstable.
A workload that a boot reports as skipped (the gup_* ones that need upstream's
gup_test, CONFIG_GUP_TEST) is printed as skipped; on x86_64 and arm64, where
every workload is gated, that is a failure.
Exit status 1 if a run is missing or failed, if a gated workload was skipped,
or if a ratio under icount is above --max-ratio on x86_64 or arm64.
"""
import argparse
import json
import os
import re
import statistics
import sys

WORKLOADS = ["anon_write", "shmem_write", "pagecache_read", "uffd_round_trip",
             "gup_pin_faulted", "gup_pin_unfaulted", "gup_get_faulted",
             "gup_get_unfaulted", "gup_uffd_retry"]
GATED_ARCHES = ["x86_64", "arm64"]
LINE = re.compile(r"^\s*ok \d+ (\S+) # ns_per_fault=([\d.]+) median=([\d.]+) faults=(\d+)")
SKIP_LINE = re.compile(r"^\s*ok \d+ (\S+) # SKIP\s*(.*)$")


def parse(path):
    """{workload: (min, median, faults), or the reason it was skipped (a str)}
    of one boot, or None if it failed."""
    if not os.path.exists(path):
        return None
    res = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                res[m.group(1)] = (float(m.group(2)), float(m.group(3)), int(m.group(4)))
                continue
            m = SKIP_LINE.match(line)
            if m:
                res[m.group(1)] = m.group(2).strip() or "skipped"
    return res if all(w in res for w in WORKLOADS) else None


# The workloads that a boot skipped: {"arch", "mode", "workload", "why"}. Kept
# out of the rows, whose readers (workbench/series.py) expect figures.
SKIPPED = []


def skipped(arch, w, boots, mode, problems):
    """If a boot of @boots skipped workload @w: notes it in SKIPPED (and a
    problem on a gated arch), and returns True."""
    why = next((b[w] for b in boots if isinstance(b[w], str)), None)
    if why is None:
        return False
    SKIPPED.append({"arch": arch, "mode": mode, "workload": w, "why": why})
    if arch in GATED_ARCHES:
        problems.append(f"{arch}: {w} was skipped ({why}), but every workload is gated here")
    return True


def quartiles(xs):
    """(first quartile, third quartile) of xs, by linear interpolation."""
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def boot_pair(a, arch, tag, problems):
    """The results of the C and the Rust boot of ARCH tagged TAG, or None (and a
    problem) if one is missing or failed."""
    c = parse(os.path.join(a.dir, f"{arch}-bench.{tag}.tap"))
    r = parse(os.path.join(a.dir, f"{arch}-rust-bench.{tag}.tap"))
    if c is None or r is None:
        problems.append(f"{arch}: a benchmark run is missing or failed "
                        f"(see build/logs/{arch}[-rust]-bench.{tag}/console.log)")
        return None
    return c, r


def icount_rows(a, arch, problems):
    pair = boot_pair(a, arch, "bench-icount", problems)
    if pair is None:
        return []
    c, r = pair
    rows = []
    for w in WORKLOADS:
        if skipped(arch, w, (c, r), "icount", problems):
            continue
        ratio = r[w][0] / c[w][0] if c[w][0] else float("nan")
        rows.append({"arch": arch, "mode": "icount", "workload": w, "c": c[w][0],
                     "rust": r[w][0], "ratio": ratio, "faults": c[w][2]})
        if arch in GATED_ARCHES and not ratio <= a.max_ratio:
            problems.append(f"{arch}: {w} Rust/C ratio {ratio:.4f} > {a.max_ratio}")
    return rows


def native_rows(a, arch, problems):
    pairs = []
    for i in range(1, a.um_pairs + 1):
        pair = boot_pair(a, arch, f"bench-native-{i}", problems)
        if pair is None:
            return []
        pairs.append(pair)
    if len(pairs) < 4:
        problems.append(f"{arch}: {len(pairs)} pairs; at least 4 are needed for a spread")
        return []
    rows = []
    half = len(pairs) // 2
    for w in WORKLOADS:
        if skipped(arch, w, [b for pair in pairs for b in pair], "native", problems):
            continue
        ratios = [r[w][1] / c[w][1] for c, r in pairs]
        q1, q3 = quartiles(ratios)
        first = statistics.median(ratios[:half])
        second = statistics.median(ratios[half:])
        rows.append({"arch": arch, "mode": "native", "workload": w,
                     "c": statistics.median(c[w][1] for c, _ in pairs),
                     "rust": statistics.median(r[w][1] for _, r in pairs),
                     "ratio": statistics.median(ratios), "q1": q1, "q3": q3,
                     "first_half": first, "second_half": second,
                     "stable": abs(first - second) <= q3 - q1,
                     "faults": pairs[0][0][w][2]})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--max-ratio", type=float, required=True)
    ap.add_argument("--um-pairs", type=int, default=8)
    ap.add_argument("--json")
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--args", default="")
    ap.add_argument("arches", nargs="+")
    a = ap.parse_args()

    rows, problems = [], []
    for arch in a.arches:
        if arch == "um":
            rows += native_rows(a, arch, problems)
        else:
            rows += icount_rows(a, arch, problems)

    print(f"Cost per fault, C loops vs CONFIG_RUST_FAULT_LOOP ({a.command}; "
          f"fault-retry-bench {a.args}; one kernel per arch, rust_fault_loop=off and on)")
    print("The gup_* workloads are per page, one GUP call per page (GUP's retry loops; "
          "gup_pin_* and\ngup_get_* through upstream's gup_test).")
    sel = [x for x in rows if x["mode"] == "icount"]
    if sel:
        print("\nQEMU -icount shift=0,sleep=off: guest instructions per fault or page "
              "(minimum over the rounds):")
        print(f"  {'arch':<9} {'workload':<17} {'C':>10} {'Rust':>10} {'Rust/C':>8}")
        for x in sel:
            print(f"  {x['arch']:<9} {x['workload']:<17} {x['c']:>10.1f} {x['rust']:>10.1f} "
                  f"{x['ratio']:>8.4f}")
    sel = [x for x in rows if x["mode"] == "native"]
    if sel:
        print(f"\num, native, wall clock ns per fault or page: {a.um_pairs} pairs of boots, "
              "C and Rust interleaved;\nper boot the median over the rounds, per pair the "
              "ratio; the median ratio, its\ninterquartile range, and the medians of the two "
              "halves of the run:")
        print(f"  {'arch':<9} {'workload':<17} {'C':>9} {'Rust':>9} {'Rust/C':>7} "
              f"{'IQR':>15} {'halves':>15}  verdict")
        for x in sel:
            verdict = "stable" if x["stable"] else "UNSTABLE: halves differ by more than the IQR"
            print(f"  {x['arch']:<9} {x['workload']:<17} {x['c']:>9.1f} {x['rust']:>9.1f} "
                  f"{x['ratio']:>7.3f} {x['q1']:>7.3f}..{x['q3']:<7.3f} "
                  f"{x['first_half']:>7.3f}/{x['second_half']:<7.3f}  {verdict}")
    if SKIPPED:
        print("\nSkipped:")
        for x in SKIPPED:
            print(f"  {x['arch']:<9} {x['workload']:<17} ({x['mode']}) {x['why']}")
    print(f"\nRequirement: Rust/C <= {a.max_ratio} under icount for every workload on "
          f"{' and '.join(GATED_ARCHES)}.")
    for p in problems:
        print(f"FAILED: {p}")
    if not problems:
        print("Met.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": a.command, "args": a.args, "max_ratio": a.max_ratio,
                       "rows": rows, "skipped": SKIPPED, "problems": problems}, f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
