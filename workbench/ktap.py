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
      host checks. --same-as OTHER: every test must have the status it has
      in OTHER's KTAP (the same kernel booted with the other fault loop).
      --exit-only PROGRAM: PROGRAM has no KTAP results of its own; its exit
      status is its one result. --xfail FILE: more expected failures (those
      of the arch), as in workbench/xfail/NAME.txt.
      Exit status 1 if anything failed unexpectedly.

  ktap.py selftest --tap FILE
      Runs the judge on crafted documents and consoles, one per kind of
      hole (a program without results, a missing or renamed case, an
      unlisted skip, a masked exit status, reports spliced into a line,
      lockups, hung tasks, a result that differs between the two fault
      loops, ...): each must fail. Writes the KTAP to FILE.

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
# A failed test's last diagnostic lines go with its FAIL line, without the
# harness's own markers (RUN, OK, FAIL) and the guest's ("fr-guest:").
HARNESS_DIAG_RE = re.compile(r"^#\s+(RUN|OK|FAIL)\s|^# fr-guest:")
DIAG_LINES = 4

# Kernel reports that fail a boot wherever they appear in the console log,
# at the start of a line or spliced into test output: (what, pattern).
REPORTS = [
    ("panic", r"Kernel panic|panicked at "),
    ("oops", r"\bOops\b|Unable to handle kernel|general protection fault|"
             r"kernel BUG at|Kernel bug detected|Internal error:|Unhandled fault"),
    ("warning", r"WARNING:"),
    ("bug", r"BUG:"),  # also "watchdog: BUG: soft lockup"
    ("KASAN", r"KASAN:"),
    ("UBSAN", r"UBSAN:"),
    ("lockdep", r"possible circular locking dependency|possible recursive locking|"
                r"inconsistent lock state|suspicious RCU usage"),
    ("lockup", r"soft lockup|hard LOCKUP|hardlockup"),
    ("hung task", r"INFO: task .* blocked for more than"),
    ("RCU stall", r"rcu: INFO: .*detected stall|self-detected stall|"
                  r"detected stalls on CPU"),
    ("stack dump", r"Call [Tt]race:|\bBacktrace:|"
                   r"CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: "),
    ("refcount", r"refcount_t: "),
    ("list corruption", r"list_(?:add|del) corruption|list_debug"),
    ("userfaultfd", r"FAULT_FLAG_ALLOW_RETRY missing"),
]
REPORT_RE = re.compile("|".join("(?:%s)" % p for _, p in REPORTS))

# The expected cases of a program: workbench/manifest/<program>.txt, one
# case per line ("fixture.variant.case", as the program names it). A
# 32-bit build "<program>-compat" has the cases of "<program>".
MANIFEST_DIR = os.path.join(WB, "manifest")

# The only way a program may end besides "ok": its exit status 1, which the
# kselftest harness uses when a case failed.
FAILED_EXIT = "exit status 1"


class Node:
    def __init__(self, ok, num, desc, directive):
        self.ok, self.num, self.desc, self.directive = ok, num, desc, directive
        self.children = []
        self.plan = None
        self.diag = []


def check_numbers(nodes, where, problems):
    """Results must be numbered 1, 2, ... in order."""
    for i, n in enumerate(nodes, 1):
        if n.num != i:
            problems.append("%s: result %d is numbered %d" % (where, i, n.num))
            return


def parse(lines):
    """Parses a nested KTAP document into (top-level plan, top-level nodes,
    problems). Subtests are indented by four spaces per level (any amount of
    extra indentation is accepted). The problems are results numbered out
    of order."""
    pending = {}  # depth -> results seen at that depth, not yet adopted
    plans = {}  # depth -> plan of the document being read at that depth
    diags = {}  # depth -> diagnostic lines since its last result
    problems = []
    for raw in lines:
        line = raw.rstrip("\n")
        stripped = line.lstrip(" ")
        depth = len(line) - len(stripped)
        if stripped.startswith("#") and not HARNESS_DIAG_RE.match(stripped):
            diags.setdefault(depth, []).append(stripped)
            continue
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
        node.diag = diags.pop(depth, [])[-DIAG_LINES:]
        deeper = sorted(d for d in pending if d > depth)
        if deeper:
            node.children = pending[deeper[0]]
            node.plan = plans.get(deeper[0])
            check_numbers(node.children, node.desc, problems)
            for d in deeper:
                pending.pop(d, None)
                plans.pop(d, None)
        pending.setdefault(depth, []).append(node)
    top_depth = min(pending) if pending else 0
    top = pending.get(top_depth, [])
    check_numbers(top, "top level", problems)
    return plans.get(top_depth), top, problems


def is_skip(n):
    return n.directive.upper().startswith("SKIP")


def leaves(nodes, prefix=""):
    """Yields (id, status, detail, diag) for every test; status is pass,
    fail or skip, diag the last diagnostic lines before its result. A parent whose results are missing is itself reported; so is
    one whose own result does not follow from its tests' (exit). Among
    tests of the same name, the id has the number: "prog/#3 name"."""
    # Where names repeat (upstream's cow says "Should have worked" for
    # many cases), the number tells the tests apart.
    numbered = len({n.desc for n in nodes}) != len(nodes)
    for n in nodes:
        path = prefix + ("#%d %s" % (n.num, n.desc) if numbered else n.desc)
        if n.children:
            yield from leaves(n.children, path + "/")
            if n.plan is not None and len(n.children) != n.plan:
                yield (path + "/(missing results)", "fail",
                       "%d of %d results" % (len(n.children), n.plan), [])
            failed = any(not c.ok and not is_skip(c) for c in n.children)
            if n.ok and failed and not is_skip(n):
                yield path + "/(exit)", "fail", "ok although a test failed", []
            elif n.ok and is_skip(n) and not all(is_skip(c) for c in n.children):
                yield path + "/(exit)", "fail", "SKIP although tests ran", []
            elif not n.ok and not is_skip(n) and not (
                    failed and n.directive in (FAILED_EXIT, "")):
                yield path + "/(exit)", "fail", n.directive or "not ok", n.diag
        elif is_skip(n):
            yield path, "skip", n.directive, []
        elif n.ok:
            yield path, "pass", "", []
        else:
            yield path, "fail", n.directive, n.diag


def read_xfail(name, xfail_dir=None):
    """The expected failures of NAME: {pattern: reason}."""
    return read_list(os.path.join(xfail_dir or XFAIL_DIR, name + ".txt"))


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


def read_manifest(prog, manifest_dir=None):
    """The expected cases of PROG, or None if it has no manifest."""
    base = prog[:-len("-compat")] if prog.endswith("-compat") else prog
    path = os.path.join(manifest_dir or MANIFEST_DIR, base + ".txt")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


# What mm/fault_loop_switch.c prints at boot: which fault loop and which GUP
# retry loops run.
LOOP_LINES = {loop: ["fault_loop: user page faults run the %s loop" % name,
                     "fault_loop: GUP retries in the %s loop" % name]
              for loop, name in (("rust", "Rust"), ("c", "C"))}


def console_lines(name):
    path = os.path.join(LOGS, name, "console.log")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                yield line.replace("\r", "").rstrip("\n")


# A line of the guest's KTAP (not of a kernel report): a result, a plan, a
# diagnostic, a marker of /init.
TEST_OUTPUT_RE = re.compile(r"^\s*(?:(?:not )?ok \d|1\.\.\d|# |KTAP version)")


def console_reports(name, expected=()):
    """The kernel reports in NAME's console, as (line, pattern): pattern is
    the entry of @expected (console:<pattern> lines of the xfail list) that
    the report matches, or None. The stack dump that follows an expected
    report (up to the next line of test output) is part of it; any other
    kind of report in it is not."""
    out, absorbing = [], None
    dump = re.compile(dict(REPORTS)["stack dump"])
    for line in console_lines(name):
        m = REPORT_RE.search(line)
        pat = next((p for p in expected if fnmatch.fnmatchcase(line.strip(), p)), None)
        if pat:
            out.append((line.strip(), pat))
            absorbing = pat
            continue
        if TEST_OUTPUT_RE.match(line):
            absorbing = None
        if not m or (absorbing and dump.fullmatch(m.group(0))):
            continue
        absorbing = None
        out.append((line.strip(), None))
    return out


# upstream's uffd-unit-tests reports in lines of its own: "Testing <case>...
# done", "... failed [reason: ...]", "... skipped [reason: ...]" (the result
# may come on a later line), then "Userfaults unit tests: pass=P, skip=S,
# fail=F (total=T)". to_ktap() turns them into KTAP results and a plan.
UFFD_START_RE = re.compile(r"^(\s*)Testing (.+?)\.\.\. ?(.*)$")
UFFD_END_RE = re.compile(r"^(done|failed \[reason: (.*)\]|skipped \[reason: (.*)\])\s*$")
UFFD_TOTAL_RE = re.compile(r"^\s*Userfaults unit tests: pass=\d+, skip=\d+, fail=\d+ "
                           r"\(total=(\d+)\)")


def to_ktap(lines):
    """The lines of a document, with uffd-unit-tests' reports as KTAP."""
    lines = [l.rstrip("\n") for l in lines]
    out, first, n, case, indent = [], None, 0, None, ""
    for line in lines:
        m = UFFD_START_RE.match(line)
        if m:
            indent, case, line = m.group(1), m.group(2), m.group(3)
            if first is None:
                first = len(out)
        if case is not None:
            e = UFFD_END_RE.match(line.strip())
            if e:
                n += 1
                name = case.replace(" ", "_")
                if e.group(1) == "done":
                    out.append("%sok %d %s" % (indent, n, name))
                elif e.group(2) is not None:
                    out.append("%snot ok %d %s # %s" % (indent, n, name, e.group(2)))
                else:
                    out.append("%sok %d %s # SKIP %s" % (indent, n, name, e.group(3)))
                case = None
                continue
        t = UFFD_TOTAL_RE.match(line)
        if t and first is not None:
            out.insert(first, "%s1..%s" % (indent, t.group(1)))
            first = None
        out.append(line)
    return out


def read_doc(path, res, names):
    """Parses one KTAP file into its top-level nodes, noting plan problems."""
    with open(path, errors="replace") as f:
        plan, top, problems = parse(to_ktap(f))
    res["problems"].extend("%s: %s" % (os.path.basename(path), p) for p in problems)
    if plan is None:
        res["problems"].append("no KTAP plan in %s" % path)
    elif plan != len(top):
        res["problems"].append("%d of %d top-level results in %s" % (len(top), plan, path))
    names.extend(n.desc for n in top)
    return top


def check_program(prog, node, res, manifest_dir=None, exit_only=(), xfail=()):
    """A program of the guest must have results, and exactly the cases of
    its manifest where it has one. One that skipped as a whole is judged
    as a skip (it must be listed); one of @exit_only reports by its exit
    status alone; one that @xfail lists as a whole is an expected failure."""
    if not node.children and (is_skip(node) or prog in exit_only or any(
            fnmatch.fnmatchcase(prog, p) for p in xfail)):
        return
    if not node.children:
        res["problems"].append("%s: no results (%s)" % (
            prog, node.directive or ("ok" if node.ok else "not ok")))
        return
    want = read_manifest(prog, manifest_dir)
    if want is None:
        return
    have = [c.desc for c in node.children]
    for case in want:
        if case not in have:
            res["problems"].append("%s: no result for case %s" % (prog, case))
    for case in have:
        if case not in want:
            res["problems"].append("%s: case %s is not in its manifest" % (prog, case))
    for case in set(have):
        if have.count(case) > 1:
            res["problems"].append("%s: case %s reported %d times" % (
                prog, case, have.count(case)))


def statuses(path):
    """{test id: status} of the guest programs of a KTAP file."""
    with open(path, errors="replace") as f:
        _, top, _ = parse(to_ktap(f))
    return {tid: status for tid, status, _, _ in leaves(top)}


# Parts of upstream's case names that vary from run to run, whatever the
# loop: mrelease_test doubles its child's memory until the child outlives
# the reaping, and names the case by the size it got to.
VARYING_NAMES = [
    (re.compile(r"^(mrelease_test/Success reaping a child with )\d+(MB of memory allocations)$"),
     r"\1<N>\2"),
]


def stable_name(tid):
    """@tid with the parts of its name that vary from run to run masked."""
    for rx, repl in VARYING_NAMES:
        tid = rx.sub(repl, tid)
    return tid


def compare(res, tap, other, xfail_dir=None):
    """Every test of @tap must have the status it has in @other's KTAP (the
    same kernel, with the other fault loop), but a test that @other's own
    list (workbench/xfail/OTHER.txt) expects to fail there: a bug of that
    loop alone, with its reason."""
    path = os.path.join(RESULTS, other + ".tap")
    if not os.path.exists(path) or not os.path.exists(tap):
        res["problems"].append("nothing to compare with %s" % other)
        return
    mine, theirs = ({stable_name(t): st for t, st in statuses(p).items()}
                    for p in (tap, path))
    known = read_xfail(other, xfail_dir)
    for tid in sorted(set(mine) | set(theirs)):
        a, b = mine.get(tid, "absent"), theirs.get(tid, "absent")
        if b == "fail" and any(fnmatch.fnmatchcase(tid, p) for p in known):
            continue
        if a != b:
            res["problems"].append("differs from %s: %s: %s here, %s there" % (
                other, tid, a, b))


def evaluate(name, problems, expect, skip_files=(), loop=None, build_only=False,
             xfail_dir=None, manifest_dir=None, same_as=None, exit_only=(),
             xfail_files=()):
    """Judges NAME.tap (the guest's) and NAME.host-*.tap (host-side checks)."""
    tap = os.path.join(RESULTS, name + ".tap")
    hosts = sorted(glob.glob(os.path.join(RESULTS, glob.escape(name) + ".host-*.tap")))
    res = {"name": name, "pass": 0, "fail": [], "xfail": [], "xpass": [],
           "skip": [], "problems": list(problems), "stale_xfail": [], "diag": {}}
    xfail = read_xfail(name, xfail_dir)
    for path in xfail_files:
        xfail.update(read_list(path))
    # A build has no console: its reports are expected of its boots only.
    expected_reports = {p[len("console:"):]: why for p, why in xfail.items()
                        if p.startswith("console:") and not build_only}
    xfail = {p: why for p, why in xfail.items() if not p.startswith("console:")}
    xskip = {}
    for path in skip_files:
        xskip.update(read_list(path))
    used = set()
    if build_only or (os.path.exists(tap) and os.path.getsize(tap) > 0):
        names = []
        if build_only and not hosts:
            res["problems"].append("no results (no %s.host-*.tap)" % name)
        guest = [] if build_only else read_doc(tap, res, names)
        top = list(guest)
        for host in hosts:
            top += read_doc(host, res, names)
        for prog in expect:
            if prog not in names:
                res["problems"].append("no result for %s" % prog)
        for node in guest:
            check_program(node.desc, node, res, manifest_dir, exit_only, xfail)
        for tid, status, detail, diag in leaves(top):
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
                res["diag"][tid] = diag
    elif not problems:
        res["problems"].append("no results (%s is missing or empty)" % tap)
    seen = set()
    for line, pat in console_reports(name, expected_reports):
        if pat:
            seen.add(pat)
            res["xfail"].append(["console: " + line, expected_reports[pat]])
        else:
            res["problems"].append("console: " + line)
    for pat in sorted(set(expected_reports) - seen):
        res["xpass"].append(["console:" + pat, "expected report absent: " +
                             expected_reports[pat]])
    if same_as and not build_only:
        compare(res, tap, same_as, xfail_dir)
    if loop and not build_only:
        for want in LOOP_LINES[loop]:
            if not any(line.endswith(want) for line in console_lines(name)):
                res["problems"].append("the console does not say '%s'" % want)
    res["stale_xfail"] = sorted(set(xfail) - used) if res["pass"] else []
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    return res


def n_failed(r):
    return len(r["fail"]) + len(r["xpass"]) + len(r["problems"])


def print_failures(r):
    for tid, detail in r["fail"]:
        print("  FAIL  %s: %s%s" % (r["name"], tid, " # " + detail if detail else ""))
        for line in r.get("diag", {}).get(tid, []):
            print("          | %s" % line)
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
        _, top, _ = parse(to_ktap(f))
    xfail = read_xfail(name)
    for prog in top:
        if not prog.children or prog.desc.startswith("rust_doctests"):
            continue
        for tid, status, detail, _ in leaves([prog]):
            if status == "fail" and any(fnmatch.fnmatchcase(tid, p) for p in xfail):
                status = "xfail"
            print("  %-6s %s%s" % (status, tid, " # " + detail if detail else ""))
    return 0


# The judge's self-test: (case, guest KTAP, console, eval options, xfail
# list, the failure it must report). Each document has one hole; the first
# has none and must pass. The manifest of the program "prog" is "a.x",
# "a.y".
GOOD_TAP = """KTAP version 1
1..1
    KTAP version 1
    1..2
    ok 1 a.x
    ok 2 a.y
ok 1 prog
"""
GOOD_CONSOLE = ("[    0.1] fault_loop: user page faults run the C loop\n"
                "[    0.1] fault_loop: GUP retries in the C loop\n")
MRELEASE_TAP = ("KTAP version 1\n1..1\n    KTAP version 1\n    1..1\n"
        "    ok 1 Success reaping a child with 1MB of memory allocations\n"
        "ok 1 mrelease_test\n")
SELFTEST = [
    ("good", GOOD_TAP, GOOD_CONSOLE, {}, "", None),
    ("program without results", "KTAP version 1\n1..1\nok 1 prog\n",
     GOOD_CONSOLE, {}, "", "prog: no results"),
    ("program that skipped whole", "KTAP version 1\n1..1\nok 1 prog # SKIP\n",
     GOOD_CONSOLE, {}, "", "unexpected skip"),
    ("missing case", GOOD_TAP.replace("1..2", "1..1").replace("    ok 2 a.y\n", ""),
     GOOD_CONSOLE, {}, "", "no result for case a.y"),
    ("renamed case", GOOD_TAP.replace("a.y", "a.z"), GOOD_CONSOLE, {}, "",
     "case a.z is not in its manifest"),
    ("case twice", GOOD_TAP.replace("ok 1 a.x", "ok 1 a.y"), GOOD_CONSOLE, {}, "",
     "reported 2 times"),
    ("plan not met", GOOD_TAP.replace("1..2", "1..3"), GOOD_CONSOLE, {}, "",
     "2 of 3 results"),
    ("numbers out of order", GOOD_TAP.replace("ok 2 a.y", "ok 3 a.y"), GOOD_CONSOLE,
     {}, "", "result 2 is numbered 3"),
    ("failed case", GOOD_TAP.replace("    ok 2", "    not ok 2").replace(
        "ok 1 prog", "not ok 1 prog # exit status 1"), GOOD_CONSOLE, {}, "",
     "prog/a.y"),
    ("unlisted skip", GOOD_TAP.replace("ok 2 a.y", "ok 2 a.y # SKIP no device"),
     GOOD_CONSOLE, {}, "", "unexpected skip"),
    ("listed skip that ran", GOOD_TAP, GOOD_CONSOLE, {"skips": "prog/a.y why"}, "",
     "listed as a skip"),
    ("xfail that passed", GOOD_TAP, GOOD_CONSOLE, {}, "prog/a.y why",
     "listed as expected to fail"),
    ("exit status masked by an xfail", GOOD_TAP.replace(
        "    ok 2", "    not ok 2").replace("ok 1 prog", "not ok 1 prog # killed by signal 11"),
     GOOD_CONSOLE, {}, "prog/a.y why", "killed by signal 11"),
    ("failed exit, no failed case", GOOD_TAP.replace(
        "ok 1 prog", "not ok 1 prog # exit status 1"), GOOD_CONSOLE, {}, "", "exit status 1"),
    ("ok exit, failed case", GOOD_TAP.replace("    ok 2", "    not ok 2"),
     GOOD_CONSOLE, {}, "prog/a.y why", "ok although a test failed"),
    ("timeout", GOOD_TAP.replace("ok 1 prog", "not ok 1 prog # TIMEOUT after 300 s"),
     GOOD_CONSOLE, {}, "", "TIMEOUT"),
    ("processes left", GOOD_TAP.replace(
        "ok 1 prog", "not ok 1 prog # 1 processes did not exit when killed"),
     GOOD_CONSOLE, {}, "", "did not exit"),
    ("missing program", GOOD_TAP, GOOD_CONSOLE, {"expect": "other"}, "",
     "no result for other"),
    ("no KTAP at all", "", GOOD_CONSOLE, {}, "", "no results"),
    ("wrong loop", GOOD_TAP, GOOD_CONSOLE, {"loop": "rust"}, "",
     "does not say"),
    ("GUP loop not reported", GOOD_TAP, GOOD_CONSOLE.split("\n")[0] + "\n",
     {"loop": "c"}, "", "GUP retries in the C loop"),
    ("report spliced into test output", GOOD_TAP,
     GOOD_CONSOLE + "    # a.x lo[   3.0] BUG: unable to handle page fault\n", {}, "",
     "console:"),
    ("soft lockup", GOOD_TAP, GOOD_CONSOLE +
     "[   40.0] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [x:12]\n", {}, "",
     "soft lockup"),
    ("hard lockup", GOOD_TAP, GOOD_CONSOLE +
     "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1\n", {}, "", "hard LOCKUP"),
    ("hung task", GOOD_TAP, GOOD_CONSOLE +
     "INFO: task fault-retry-tes:77 blocked for more than 20 seconds.\n", {}, "",
     "blocked for more than"),
    ("RCU stall", GOOD_TAP, GOOD_CONSOLE +
     "rcu: INFO: rcu_sched self-detected stall on CPU\n", {}, "", "stall"),
    ("bare stack dump", GOOD_TAP, GOOD_CONSOLE +
     "CPU: 0 UID: 0 PID: 317 Comm: x Tainted: G N 6.12.117+ #6\nCall Trace:\n <TASK>\n",
     {}, "", "Call Trace"),
    ("refcount", GOOD_TAP, GOOD_CONSOLE +
     "refcount_t: underflow; use-after-free.\n", {}, "", "refcount_t"),
    ("list corruption", GOOD_TAP, GOOD_CONSOLE +
     "list_del corruption, ffff888003a4b2c8->next is LIST_POISON1\n", {}, "",
     "list_del corruption"),
    ("UBSAN", GOOD_TAP, GOOD_CONSOLE +
     "UBSAN: shift-out-of-bounds in mm/gup.c:12:3\n", {}, "", "UBSAN"),
    ("mips BUG()", GOOD_TAP, GOOD_CONSOLE + "Kernel bug detected[#1]:\n", {}, "",
     "Kernel bug detected"),
    ("KASAN", GOOD_TAP, GOOD_CONSOLE +
     "BUG: KASAN: slab-use-after-free in handle_mm_fault+0x1/0x2\n", {}, "", "KASAN"),
    ("panic", "", GOOD_CONSOLE + "Kernel panic - not syncing: Attempted to kill init!\n",
     {}, "", "Kernel panic"),
    ("report after an expected one", GOOD_TAP, GOOD_CONSOLE +
     "FAULT_FLAG_ALLOW_RETRY missing 880\nCall Trace:\nWARNING: CPU: 0 PID: 1 at x\n",
     {}, "console:FAULT_FLAG_ALLOW_RETRY?missing* why", "WARNING:"),
    ("expected report absent", GOOD_TAP, GOOD_CONSOLE, {},
     "console:FAULT_FLAG_ALLOW_RETRY?missing* why", "expected report absent"),
    ("uffd-unit-tests lines", "KTAP version 1\n1..1\n    Testing x on anon... done\n"
     "    Testing y on anon... \n    failed [reason: z]\n"
     "    Userfaults unit tests: pass=1, skip=0, fail=1 (total=2)\n"
     "not ok 1 uprog # exit status 1\n", GOOD_CONSOLE, {"expect": "uprog"}, "",
     "uprog/y_on_anon"),
    ("uffd-unit-tests cut short", "KTAP version 1\n1..1\n    Testing x on anon... done\n"
     "    Testing y on anon... \n"
     "    Userfaults unit tests: pass=1, skip=0, fail=0 (total=2)\n"
     "ok 1 uprog\n", GOOD_CONSOLE, {"expect": "uprog"}, "", "1 of 2 results"),
    ("exit status only, passed", "KTAP version 1\n1..1\n    some output\n"
     "ok 1 eprog\n", GOOD_CONSOLE, {"expect": "eprog", "exit_only": 1}, "", None),
    ("exit status only, failed", "KTAP version 1\n1..1\n    some output\n"
     "not ok 1 eprog # exit status 1\n", GOOD_CONSOLE, {"expect": "eprog", "exit_only": 1},
     "", "eprog exit status 1"),
    ("same results with the other loop", GOOD_TAP, GOOD_CONSOLE, {"other": GOOD_TAP}, "",
     None),
    ("a failure listed for the other loop alone", GOOD_TAP, GOOD_CONSOLE,
     {"other": GOOD_TAP.replace("    ok 2 a.y", "    not ok 2 a.y").replace(
         "ok 1 prog", "not ok 1 prog # exit status 1"), "other_xfail": "prog/a.y why"}, "",
     None),
    ("a result differs with the other loop", GOOD_TAP, GOOD_CONSOLE,
     {"other": GOOD_TAP.replace("ok 2 a.y", "ok 2 a.y # SKIP no hugetlb")}, "",
     "differs from other: prog/a.y: pass here, skip there"),
    ("mrelease_test's size differs with the other loop", MRELEASE_TAP, GOOD_CONSOLE,
     {"expect": "mrelease_test", "other": MRELEASE_TAP.replace("1MB", "2MB")}, "", None),
    ("mrelease_test fails with the other loop", MRELEASE_TAP, GOOD_CONSOLE,
     {"expect": "mrelease_test", "other": MRELEASE_TAP.replace("1MB", "2MB").replace(
         "    ok 1", "    not ok 1")}, "", "pass here, fail there"),
]


def selftest(tap_out):
    """Runs SELFTEST against evaluate(); writes KTAP to @tap_out."""
    import tempfile
    global RESULTS, LOGS
    saved = RESULTS, LOGS
    lines, failed = ["    KTAP version 1", "    1..%d" % len(SELFTEST)], 0
    with tempfile.TemporaryDirectory() as tmp:
        RESULTS, LOGS = os.path.join(tmp, "results"), os.path.join(tmp, "logs")
        xdir, mdir = os.path.join(tmp, "xfail"), os.path.join(tmp, "manifest")
        for d in (RESULTS, os.path.join(LOGS, "t"), xdir, mdir):
            os.makedirs(d)
        with open(os.path.join(mdir, "prog.txt"), "w") as f:
            f.write("a.x\na.y\n")
        for i, (title, tap, console, opts, xfail, want) in enumerate(SELFTEST, 1):
            with open(os.path.join(RESULTS, "t.tap"), "w") as f:
                f.write(tap)
            with open(os.path.join(LOGS, "t", "console.log"), "w") as f:
                f.write(console)
            with open(os.path.join(xdir, "t.txt"), "w") as f:
                f.write(xfail + "\n")
            skips = []
            if "skips" in opts:
                skips = [os.path.join(tmp, "skips.txt")]
                with open(skips[0], "w") as f:
                    f.write(opts["skips"] + "\n")
            if "other" in opts:
                with open(os.path.join(RESULTS, "other.tap"), "w") as f:
                    f.write(opts["other"])
                with open(os.path.join(xdir, "other.txt"), "w") as f:
                    f.write(opts.get("other_xfail", "") + "\n")
            expect = [opts.get("expect", "prog")]
            r = evaluate("t", [], expect, skips, opts.get("loop", "c"), xfail_dir=xdir,
                         manifest_dir=mdir, same_as="other" if "other" in opts else None,
                         exit_only=expect if "exit_only" in opts else ())
            msgs = ["%s %s" % (t, d) for t, d in r["fail"]] + r["problems"] + [
                "%s listed as expected to fail: %s" % (t, d) for t, d in r["xpass"]]
            if want is None:
                ok = not msgs
            else:
                ok = any(want in m for m in msgs)
            failed += not ok
            for m in msgs:
                lines.append("        # %s" % m)
            lines.append("    %s %d %s%s" % ("ok" if ok else "not ok", i,
                                        title.replace(" ", "_"),
                                        "" if ok else " # judge missed: %s" % (want or msgs)))
    RESULTS, LOGS = saved
    lines = ["KTAP version 1", "1..1"] + lines + ["%s 1 judge" % ("not ok" if failed else "ok")]
    with open(tap_out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("judge self-test: %d of %d cases caught" % (len(SELFTEST) - failed, len(SELFTEST)))
    return 1 if failed else 0


def main(argv):
    if len(argv) == 2 and argv[0] == "show":
        return show(argv[1])
    if len(argv) == 3 and argv[0] == "selftest" and argv[1] == "--tap":
        return selftest(argv[2])
    if len(argv) >= 2 and argv[0] == "eval":
        name, problems, expect, skips, loop, build_only = argv[1], [], [], [], None, False
        same_as, exit_only, xfail_files = None, [], []
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
            elif opt == "--loop" and val in LOOP_LINES:
                loop = val
            elif opt == "--same-as":
                same_as = val
            elif opt == "--exit-only":
                exit_only.append(val)
            elif opt == "--xfail":
                xfail_files.append(val)
            else:
                sys.exit("ktap.py: unknown option %s %s" % (opt, val))
        r = evaluate(name, problems, expect, skips, loop, build_only, same_as=same_as,
                     exit_only=exit_only, xfail_files=xfail_files)
        print_failures(r)
        return 1 if n_failed(r) else 0
    if len(argv) >= 2 and argv[0] == "summary":
        return summary(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
