#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judges the guests' results and prints the summary table.

  ktap.py eval NAME [--problem TEXT]... [--expect PROGRAM]... [--skips FILE]...
                   [--loop c|rust] [--build-only]
      Reads build/results/NAME.tap (the guest's), NAME.host-*.tap (checks run
      on the host) and build/logs/NAME/console.log, compares each test with
      workbench/xfail/NAME.txt (expected failures) and the --skips files
      (expected skips), writes build/results/NAME.json and prints the
      failures. A skip that no --skips file lists fails, and so does a
      listed test that does not skip. --loop: the console must show that the
      kernel ran that fault loop. --build-only: there is no guest KTAP, only
      host checks. Exit status 1 if anything failed unexpectedly.

  ktap.py show NAME
      Prints one line per test of NAME's programs (not the KUnit suites).

  ktap.py summary NAME...
      Prints the per-arch table of the NAME.json files, the expected failures
      with their reasons, and a last line "N passed, N failed". Exit status 1
      if anything failed.

A test is identified by the path of its descriptions in the nested KTAP
document, "program/case", e.g. "fault-retry-tests/uffd.copy_resolves_fault" or
"rust_doctests_kernel/rust_doctest_kernel_alloc_kbox_rs_0".
"""

import fnmatch
import glob
import json
import os
import re
import sys

WB = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("BUILD", os.path.join(os.path.dirname(WB), "build"))
RESULTS = os.path.join(BUILD, "results")
LOGS = os.path.join(BUILD, "logs")
XFAIL_DIR = os.path.join(WB, "xfail")

RESULT_RE = re.compile(r"^(ok|not ok) (\d+)(?: -)?\s*(.*?)(?:\s+#\s*(.*))?$")
PLAN_RE = re.compile(r"^1\.\.(\d+)")

# Kernel reports that fail a boot wherever they appear in the console log. A
# kernel line starts in column 0, after an optional "[ time]" stamp; test
# output is indented by the guest runner and cannot match.
REPORT_RE = re.compile(
    r"^(?:\[\s*\d+\.\d+\]\s*)?"
    r"(Kernel panic|Oops|WARNING:|BUG:|Unable to handle kernel|"
    r"general protection fault|KASAN:|UBSAN:|kernel BUG at|"
    r"rcu: INFO: .*detected stall|INFO: task .* blocked for more than|"
    r"possible circular locking dependency|.*panicked at )")


class Node:
    def __init__(self, ok, num, desc, directive):
        self.ok, self.num, self.desc, self.directive = ok, num, desc, directive
        self.children = []
        self.plan = None


def parse(lines):
    """Parses a nested KTAP document into (top-level plan, top-level nodes,
    problems). Subtests are indented by four spaces per level (any amount of
    extra indentation is accepted)."""
    pending = {}  # depth -> results seen at that depth, not yet adopted
    plans = {}  # depth -> plan of the document being read at that depth
    problems = []
    for raw in lines:
        line = raw.rstrip("\n")
        stripped = line.lstrip(" ")
        depth = len(line) - len(stripped)
        m = PLAN_RE.match(stripped)
        if m:
            plans[depth] = int(m.group(1))
            pending[depth] = []
            continue
        m = RESULT_RE.match(stripped)
        if not m:
            continue
        node = Node(m.group(1) == "ok", int(m.group(2)), m.group(3).strip(),
                    (m.group(4) or "").strip())
        deeper = sorted(d for d in pending if d > depth)
        if deeper:
            node.children = pending[deeper[0]]
            node.plan = plans.get(deeper[0])
            for d in deeper:
                pending.pop(d, None)
                plans.pop(d, None)
        pending.setdefault(depth, []).append(node)
    top_depth = min(pending) if pending else 0
    return plans.get(top_depth), pending.get(top_depth, []), problems


def leaves(nodes, prefix=""):
    """Yields (id, status, detail) for every test; status is pass, fail or
    skip. A parent with missing or no results is itself reported."""
    for n in nodes:
        path = prefix + n.desc
        skip = n.directive.upper().startswith("SKIP")
        if n.children:
            yield from leaves(n.children, path + "/")
            if n.plan is not None and len(n.children) != n.plan:
                yield (path + "/(missing results)", "fail",
                       "%d of %d results" % (len(n.children), n.plan))
            elif not n.ok and not skip and all(
                    c.ok for c in n.children):
                yield (path + "/(exit)", "fail", n.directive or "not ok")
        else:
            if skip:
                yield path, "skip", n.directive
            elif n.ok:
                yield path, "pass", ""
            else:
                yield path, "fail", n.directive


def read_xfail(name):
    """The expected failures of NAME: {pattern: reason}."""
    return read_list(os.path.join(XFAIL_DIR, name + ".txt"))


def read_list(path):
    """A list of "<test id pattern> <reason>" lines: {pattern: reason}."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            pat, _, reason = line.partition(" ")
            out[pat] = reason.strip().lstrip("#").strip() or "(no reason given)"
    return out


# What mm/fault_loop_switch.c prints at boot.
LOOP_LINE = {"rust": "fault_loop: user page faults run the Rust loop",
             "c": "fault_loop: user page faults run the C loop"}


def console_lines(name):
    path = os.path.join(LOGS, name, "console.log")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                yield line.replace("\r", "").rstrip("\n")


def console_reports(name):
    return [line.strip() for line in console_lines(name) if REPORT_RE.match(line)]


def read_doc(path, res, names):
    """Parses one KTAP file into its top-level nodes, noting plan problems."""
    with open(path, errors="replace") as f:
        plan, top, _ = parse(f)
    if plan is None:
        res["problems"].append("no KTAP plan in %s" % path)
    elif plan != len(top):
        res["problems"].append("%d of %d top-level results in %s" % (len(top), plan, path))
    names.extend(n.desc for n in top)
    return top


def evaluate(name, problems, expect, skip_files=(), loop=None, build_only=False):
    """Judges NAME.tap (the guest's) and NAME.host-*.tap (host-side checks)."""
    tap = os.path.join(RESULTS, name + ".tap")
    hosts = sorted(glob.glob(os.path.join(RESULTS, glob.escape(name) + ".host-*.tap")))
    res = {"name": name, "pass": 0, "fail": [], "xfail": [], "xpass": [],
           "skip": [], "problems": list(problems), "stale_xfail": []}
    xfail = read_xfail(name)
    xskip = {}
    for path in skip_files:
        xskip.update(read_list(path))
    used = set()
    if build_only or (os.path.exists(tap) and os.path.getsize(tap) > 0):
        names = []
        top = [] if build_only else read_doc(tap, res, names)
        for host in hosts:
            top += read_doc(host, res, names)
        for prog in expect:
            if prog not in names:
                res["problems"].append("no result for %s" % prog)
        for tid, status, detail in leaves(top):
            pat = next((p for p in xfail if fnmatch.fnmatchcase(tid, p)), None)
            if pat:
                used.add(pat)
            spat = next((p for p in xskip if fnmatch.fnmatchcase(tid, p)), None)
            if status == "skip" and spat:
                res["skip"].append([tid, xskip[spat]])
            elif status == "skip":
                res["fail"].append([tid, "unexpected skip: " + (detail or "no reason")])
            elif spat:
                res["fail"].append([tid, "listed as a skip (%s) but it ran: %s" %
                                    (xskip[spat], status)])
            elif status == "pass" and pat:
                res["xpass"].append([tid, xfail[pat]])
            elif status == "pass":
                res["pass"] += 1
            elif pat:
                res["xfail"].append([tid, xfail[pat]])
            else:
                res["fail"].append([tid, detail])
    elif not problems:
        res["problems"].append("no results (%s is missing or empty)" % tap)
    for line in console_reports(name):
        res["problems"].append("console: " + line)
    if loop and not build_only and not any(
            line.endswith(LOOP_LINE[loop]) for line in console_lines(name)):
        res["problems"].append("the console does not say '%s'" % LOOP_LINE[loop])
    res["stale_xfail"] = sorted(set(xfail) - used) if res["pass"] else []
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    return res


def n_failed(r):
    return len(r["fail"]) + len(r["xpass"]) + len(r["problems"])


def print_failures(r):
    for tid, detail in r["fail"]:
        print("  FAIL  %s: %s%s" % (r["name"], tid, " # " + detail if detail else ""))
    for tid, reason in r["xpass"]:
        print("  XPASS %s: %s (listed as expected to fail: %s)" % (r["name"], tid, reason))
    for p in r["problems"]:
        print("  FAIL  %s: %s" % (r["name"], p))
    for pat in r["stale_xfail"]:
        print("  note  %s: xfail entry '%s' matches no test" % (r["name"], pat))


def load(name):
    path = os.path.join(RESULTS, name + ".json")
    if not os.path.exists(path):
        return {"name": name, "pass": 0, "fail": [], "xfail": [], "xpass": [],
                "skip": [], "problems": ["not run"], "stale_xfail": []}
    with open(path) as f:
        return json.load(f)


def summary(names):
    rows = [load(n) for n in names]
    print()
    print("%-18s %6s %6s %6s %6s %6s  %s" % ("target", "pass", "fail", "xfail", "xpass", "skip", "verdict"))
    for r in rows:
        print("%-18s %6d %6d %6d %6d %6d  %s" % (
            r["name"], r["pass"], len(r["fail"]) + len(r["problems"]), len(r["xfail"]),
            len(r["xpass"]), len(r["skip"]), "ok" if n_failed(r) == 0 else "FAILED"))
    xf = [(r["name"], t, why) for r in rows for t, why in r["xfail"]]
    if xf:
        print("\nExpected failures (workbench/xfail/):")
        for name, tid, why in xf:
            print("  XFAIL %s: %s -- %s" % (name, tid, why))
    sk = {}
    for r in rows:
        for _, why in r["skip"]:
            sk.setdefault(why, {}).setdefault(r["name"], 0)
            sk[why][r["name"]] += 1
    if sk:
        print("\nExpected skips (workbench/xskip/):")
        for why, where in sorted(sk.items()):
            print("  SKIP  %d: %s -- %s" % (sum(where.values()), ", ".join(
                "%s (%d)" % (n, c) for n, c in where.items()), why))
    bad = [r for r in rows if n_failed(r) or r["stale_xfail"]]
    if bad:
        print("\nFailures:")
        for r in bad:
            print_failures(r)
    passed = sum(r["pass"] for r in rows)
    failed = sum(n_failed(r) for r in rows)
    skipped = sum(len(r["skip"]) for r in rows)
    print()
    if xf:
        print("(%d expected failures are listed above and counted in neither)" % len(xf))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


def show(name):
    tap = os.path.join(RESULTS, name + ".tap")
    if not os.path.exists(tap):
        print("%s: no results" % name)
        return 1
    with open(tap, errors="replace") as f:
        _, top, _ = parse(f)
    xfail = read_xfail(name)
    for prog in top:
        if not prog.children or prog.desc.startswith("rust_doctests"):
            continue
        for tid, status, detail in leaves([prog]):
            if status == "fail" and any(fnmatch.fnmatchcase(tid, p) for p in xfail):
                status = "xfail"
            print("  %-6s %s%s" % (status, tid, " # " + detail if detail else ""))
    return 0


def main(argv):
    if len(argv) == 2 and argv[0] == "show":
        return show(argv[1])
    if len(argv) >= 2 and argv[0] == "eval":
        name, problems, expect, skips, loop, build_only = argv[1], [], [], [], None, False
        args = argv[2:]
        while args:
            if args[0] == "--build-only":
                build_only, args = True, args[1:]
                continue
            if len(args) < 2:
                sys.exit("ktap.py: %s needs a value" % args[0])
            opt, val, args = args[0], args[1], args[2:]
            if opt == "--problem":
                problems.append(val)
            elif opt == "--expect":
                expect.append(val)
            elif opt == "--skips":
                skips.append(val)
            elif opt == "--loop" and val in LOOP_LINE:
                loop = val
            else:
                sys.exit("ktap.py: unknown option %s %s" % (opt, val))
        r = evaluate(name, problems, expect, skips, loop, build_only)
        print_failures(r)
        return 1 if n_failed(r) else 0
    if len(argv) >= 2 and argv[0] == "summary":
        return summary(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
