#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Where the instructions of one page fault go, per function.

Reads a QEMU log written with "-d in_asm,exec,nochain" (every translated
block once, then every execution of a block) and the kernel's vmlinux, cuts
the execution trace into faults at each entry of ENTRY (the arch's fault
entry, for example exc_page_fault), and prints, for the most common
fault (the one with the most frequent instruction count), the instructions
executed per function. Only the blocks that the log's -dfilter let through
are counted. With DUMP, also writes that fault's instructions to DUMP, one
per line, as QEMU disassembled them, without their addresses, so that two
dumps can be compared with diff.

Usage: fault-trace.py LOG VMLINUX ENTRY [DUMP]
"""
import bisect
import collections
import re
import subprocess
import sys

TRACE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


def symbols(vmlinux):
    out = subprocess.run(["nm", "-S", vmlinux], capture_output=True, text=True,
                         check=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4:
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    syms.sort()
    return syms


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    log, vmlinux, entry_name = sys.argv[1:4]
    dump = sys.argv[4] if len(sys.argv) == 5 else None
    syms = symbols(vmlinux)
    starts = [s[0] for s in syms]
    entry = next((s[0] for s in syms if s[2] == entry_name), None)
    if entry is None:
        sys.exit(f"{entry_name} is not in {vmlinux}")

    def name(pc):
        i = bisect.bisect_right(starts, pc) - 1
        if i >= 0 and syms[i][0] <= pc < syms[i][0] + max(syms[i][1], 1):
            return syms[i][2]
        return "(other)"

    size, text, faults, cur = {}, {}, [], None
    block, first = None, None
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                block, first = [], None
                continue
            if block is not None:
                if line.startswith("0x"):
                    if first is None:
                        first = int(line[2:18], 16)
                    # "0x<addr>:  <bytes>  <insn>": the instruction only.
                    block.append(line.split(":", 1)[1].strip())
                    continue
                if first is not None:
                    size[first] = len(block)
                    text[first] = block
                block = None
            m = TRACE.match(line)
            if m:
                pc = int(m.group(1), 16)
                if pc == entry:
                    cur = []
                    faults.append(cur)
                if cur is not None:
                    cur.append(pc)
    if not faults:
        sys.exit(f"no execution of {entry_name} in {log}")
    totals = [sum(size.get(pc, 0) for pc in f) for f in faults]
    common, count = collections.Counter(totals).most_common(1)[0]
    fault = faults[len(totals) - 1 - totals[::-1].index(common)]
    per = collections.Counter()
    for pc in fault:
        per[name(pc)] += size.get(pc, 0)
    print(f"{len(faults)} faults; the most common one ({count} times) executes "
          f"{common} instructions in the traced functions:")
    for fn, n in per.most_common():
        print(f"  {n:6d}  {fn}")
    if dump:
        with open(dump, "w") as f:
            for pc in fault:
                for insn in text.get(pc, []):
                    f.write(f"{name(pc)}: {insn}\n")


if __name__ == "__main__":
    main()
