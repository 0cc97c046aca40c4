#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The report of make bench: per arch, mode and workload, the cost per fault
of the C loop and of the Rust loop, and their ratio.

Reads DIR/<arch>[-rust].bench-<mode>.tap, as written by workbench/bench.sh.
Exit status 1 if a run is missing or failed, or if the anon_write ratio under
icount is above --max-ratio on x86_64 or arm64.
"""
import argparse
import json
import os
import re
import sys

WORKLOADS = ["anon_write", "shmem_write", "pagecache_read", "uffd_round_trip"]
GATED_ARCHES = ["x86_64", "arm64"]
GATED_WORKLOAD = "anon_write"
LINE = re.compile(r"^\s*ok \d+ (\S+) # ns_per_fault=([\d.]+) median=([\d.]+) faults=(\d+)")
MODES = {
    "icount": "QEMU -icount shift=0,sleep=off: guest instructions per fault",
    "tcg": "QEMU TCG, wall clock ns per fault (for information)",
    "native": "native process, wall clock ns per fault (for information)",
}


def parse(path):
    """{workload: (min, median, faults)} of one boot, or None if it failed."""
    if not os.path.exists(path):
        return None
    res = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                res[m.group(1)] = (float(m.group(2)), float(m.group(3)), int(m.group(4)))
    return res if all(w in res for w in WORKLOADS) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--max-ratio", type=float, required=True)
    ap.add_argument("--json")
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--args", default="")
    ap.add_argument("arches", nargs="+")
    a = ap.parse_args()

    rows, problems = [], []
    for arch in a.arches:
        modes = ["native"] if arch == "um" else ["icount", "tcg"]
        for mode in modes:
            c = parse(os.path.join(a.dir, f"{arch}.bench-{mode}.tap"))
            r = parse(os.path.join(a.dir, f"{arch}-rust.bench-{mode}.tap"))
            if c is None or r is None:
                problems.append(f"{arch} {mode}: a benchmark run is missing or failed "
                                f"(see build/logs/{arch}[-rust].bench-{mode}/console.log)")
                continue
            for w in WORKLOADS:
                ratio = r[w][0] / c[w][0] if c[w][0] else float("nan")
                rows.append({"arch": arch, "mode": mode, "workload": w,
                             "c": c[w][0], "rust": r[w][0], "ratio": ratio,
                             "c_median": c[w][1], "rust_median": r[w][1],
                             "faults": c[w][2]})
                if (mode == "icount" and arch in GATED_ARCHES and w == GATED_WORKLOAD
                        and not ratio <= a.max_ratio):
                    problems.append(f"{arch}: {w} Rust/C ratio {ratio:.4f} > {a.max_ratio}")

    print(f"Cost per fault, C loop vs CONFIG_RUST_FAULT_LOOP ({a.command}; "
          f"fault-retry-bench {a.args}; minimum over the rounds)")
    for mode, what in MODES.items():
        sel = [x for x in rows if x["mode"] == mode]
        if not sel:
            continue
        print(f"\n{what}:")
        print(f"  {'arch':<9} {'workload':<16} {'C':>10} {'Rust':>10} {'Rust/C':>8}")
        for x in sel:
            print(f"  {x['arch']:<9} {x['workload']:<16} {x['c']:>10.1f} {x['rust']:>10.1f} "
                  f"{x['ratio']:>8.4f}")
    print(f"\nRequirement: {GATED_WORKLOAD} Rust/C <= {a.max_ratio} under icount on "
          f"{' and '.join(GATED_ARCHES)}.")
    for p in problems:
        print(f"FAILED: {p}")
    if not problems:
        print("Met.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": a.command, "args": a.args, "max_ratio": a.max_ratio,
                       "rows": rows, "problems": problems}, f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
