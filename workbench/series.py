#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make series: the mailing-list series, from patches/export.

Builds the commits that patches/export declares on top of the base, in
build/src's repository (branch 'series'), without touching its checkout;
checks that together they give exactly the assembled tree; writes
'git format-patch' output with a filled-in cover letter to build/series/;
runs checkpatch.pl --strict on every patch and fails on an error or on a
warning that patches/export does not justify.
"""

import email.parser
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

WB = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(WB)
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
SRC = os.path.join(BUILD, "src")
RESULTS = os.path.join(BUILD, "results")
SPEC = os.path.join(ROOT, "patches", "export")
SERIES = os.path.join(ROOT, "patches", "series")
OUTDIR = os.path.join(BUILD, "series")
BRANCH = "series"
CP_TYPE = re.compile(r"^(ERROR|WARNING|CHECK):([A-Z0-9_]+):")


def die(msg):
    sys.exit("error: series: " + msg)


def git(*args, env=None, input=None, cwd=SRC):
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(["git", "-C", cwd] + list(args), env=e, input=input,
                       capture_output=True, text=True)
    if r.returncode != 0:
        die("git %s: %s" % (" ".join(args[:2]), r.stderr.strip()))
    return r.stdout


# ---- patches/export ----

class Commit:
    def __init__(self, line):
        self.line = line
        self.subject = None
        self.patches = []       # (name, [paths] or None)
        self.files = []         # (path, [drop regexes])
        self.note = ""
        self.checkpatch = {}    # type -> why
        self.body = ""


def parse_spec(path):
    cover, changelog, commits = None, None, []
    section = None
    with open(path) as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("#") and section is None:
            continue
        if not line.startswith("%% "):
            if line.strip() and section is None:
                die("%s:%d: text outside a section" % (path, i))
            continue
        kind, start = line[3:].strip(), i
        keys, last = [], None
        while i < len(lines) and lines[i].strip() and not lines[i].startswith("%% "):
            l = lines[i]
            i += 1
            if l[0].isspace():
                if last is None:
                    die("%s:%d: continuation without a key" % (path, i))
                keys.append((None, l.strip(), i))
                continue
            m = re.match(r"^([a-z-]+):\s*(.*)$", l)
            if not m:
                die("%s:%d: expected 'key: value'" % (path, i))
            last = m.group(1)
            keys.append((m.group(1), m.group(2), i))
        body = []
        while i < len(lines) and not lines[i].startswith("%% "):
            body.append(lines[i])
            i += 1
        body = "\n".join(body).strip("\n")
        if kind == "cover":
            cover = {"keys": fold(keys, path), "body": body}
        elif kind == "changelog":
            changelog = body
        elif kind == "commit":
            commits.append(make_commit(keys, body, path, start))
        else:
            die("%s:%d: unknown section '%s'" % (path, start, kind))
    if cover is None or not commits:
        die("%s: needs a '%%%% cover' section and '%%%% commit' sections" % path)
    return cover, changelog or "", commits


def fold(keys, path):
    """key -> value, continuation lines joined with a space."""
    out, last = {}, None
    for k, v, n in keys:
        if k is None:
            out[last] += " " + v
        else:
            if k in out and k != "checkpatch":
                die("%s:%d: '%s' given twice" % (path, n, k))
            last = k
            out[k] = out.get(k, "") + ("\n" if k in out else "") + v
    return out


def make_commit(keys, body, path, start):
    c = Commit(start)
    last = None
    for k, v, n in keys:
        where = "%s:%d" % (path, n)
        if k is None:
            if last == "note":
                c.note += " " + v
            elif last == "file" and v.startswith("drop:"):
                c.files[-1][1].append((v[5:].strip(), where))
            else:
                die("%s: unexpected continuation line" % where)
            continue
        last = k
        if k == "subject":
            c.subject = v
        elif k == "patch":
            w = v.split()
            c.patches.append((w[0], w[1:] or None))
        elif k == "file":
            c.files.append((v, []))
        elif k == "note":
            c.note = v
        elif k == "checkpatch":
            t, _, why = v.partition(" ")
            if not why.strip():
                die("%s: checkpatch %s needs a reason" % (where, t))
            c.checkpatch[t] = why.strip()
        else:
            die("%s: unknown key '%s'" % (where, k))
    if not c.subject:
        die("%s:%d: a commit needs a subject" % (path, start))
    if not c.patches and not c.files:
        die("%s:%d: commit '%s' has no patch and no file" % (path, start, c.subject))
    c.body = body
    return c


# ---- the commits ----

def mailinfo(patchfile):
    """(subject, message body, diff) of a patch file."""
    with tempfile.TemporaryDirectory() as d:
        with open(patchfile) as f:
            info = subprocess.run(["git", "mailinfo", d + "/msg", d + "/patch"], stdin=f,
                                  capture_output=True, text=True, check=True).stdout
        subject = re.search(r"^Subject: (.*)$", info, re.M).group(1)
        return subject, open(d + "/msg").read().strip("\n"), open(d + "/patch").read()


def apply_cached(diff, ienv, paths=None):
    """Applies DIFF (only its PATHS, if given) to the index of IENV."""
    with tempfile.NamedTemporaryFile("w", suffix=".diff") as t:
        t.write(diff)
        t.flush()
        inc = ["--include=" + p for p in paths or []]
        git("apply", "--cached", "--whitespace=nowarn", *inc, t.name, env=ienv)


def diff_paths(diff):
    return re.findall(r"^diff --git a/(\S+) b/", diff, re.M)


def apply_drops(text, drops, path):
    for rx, where in drops:
        new, n = re.subn(rx, "", text, flags=re.M | re.S)
        if n == 0:
            die("%s: drop /%s/ matches nothing in %s" % (where, rx, path))
        text = new
    return text


def build(commits, env):
    series = [l.split()[0] for l in open(SERIES) if l.strip() and not l.startswith("#")]
    overlay = [p for p in git("diff-tree", "-r", "--name-only", "--no-commit-id",
                              "base", "overlay").split("\n") if p]
    # Every overlay file and patch is used; a patch's paths once each; a file's
    # last use takes it whole.
    used_paths, seen_files, last_use = {}, set(), {}
    for c in commits:
        for name, paths in c.patches:
            if name not in series:
                die("commit '%s': patch %s is not in patches/series" % (c.subject, name))
            for p in paths or [None]:
                key = (name, p)
                if key in used_paths:
                    die("patch %s (%s) is used twice" % (name, p or "whole"))
                used_paths[key] = c
        for path, drops in c.files:
            if path not in overlay:
                die("commit '%s': %s is not an overlay file" % (c.subject, path))
            seen_files.add(path)
            last_use[path] = drops
    for name in series:
        allp = diff_paths(mailinfo(os.path.join(ROOT, "patches", name))[2])
        if (name, None) in used_paths:
            if any((name, p) in used_paths for p in allp):
                die("patch %s is used whole and by path" % name)
            continue
        missing = [p for p in allp if (name, p) not in used_paths]
        if missing:
            die("patch %s: %s not in any commit" % (name, ", ".join(missing)))
    for path in overlay:
        if path not in seen_files:
            die("overlay file %s is in no commit of patches/export" % path)
        if last_use[path]:
            die("%s: the last commit that lists it must take it whole" % path)

    idx = os.path.join(BUILD, "series.index")
    ienv = dict(env, GIT_INDEX_FILE=idx)
    if os.path.exists(idx):
        os.unlink(idx)
    git("read-tree", "base", env=ienv)
    head = git("rev-parse", "base").strip()
    for n, c in enumerate(commits, 1):
        msg_from_patch = None
        for name, paths in c.patches:
            subject, msg, diff = mailinfo(os.path.join(ROOT, "patches", name))
            if len(c.patches) == 1:
                msg_from_patch = (subject, msg)
            apply_cached(diff, ienv, paths)
        for path, drops in c.files:
            text = git("show", "overlay:" + path)
            text = apply_drops(text, drops, path)
            mode = git("ls-tree", "overlay", "--", path).split()[0]
            blob = git("hash-object", "-w", "--stdin", "--path", path, input=text).strip()
            git("update-index", "--add", "--cacheinfo", "%s,%s,%s" % (mode, blob, path), env=ienv)
        if c.body:
            body = c.body
        elif msg_from_patch:
            if msg_from_patch[0] != c.subject:
                die("commit %d: subject '%s' differs from its patch's '%s'"
                    % (n, c.subject, msg_from_patch[0]))
            body = msg_from_patch[1]
        else:
            die("commit %d '%s' needs a message: it has no patch or more than one" % (n, c.subject))
        body = re.sub(r"\n*^Signed-off-by: .*\Z", "", body, flags=re.M).rstrip()
        message = "%s\n\n%s\n\nSigned-off-by: %s\n" % (c.subject, body, env["SIGNOFF"])
        tree = git("write-tree", env=ienv).strip()
        head = git("commit-tree", tree, "-p", head, "-F", "-", env=env, input=message).strip()
    os.unlink(idx)
    want = git("rev-parse", "HEAD^{tree}").strip()
    got = git("rev-parse", head + "^{tree}").strip()
    if want != got:
        print(git("diff", "--stat", head, "HEAD"), file=sys.stderr)
        die("the series does not give the assembled tree (differences above)")
    git("update-ref", "refs/heads/" + BRANCH, head)
    return head


# ---- the cover letter ----

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def tested_section(tree):
    out = []
    summary = read(os.path.join(RESULTS, "summary.txt"))
    if summary is None:
        print("series: warning: no make check results; the cover letter says so")
        out.append("(make check has not been run on this tree.)")
    else:
        if (read(os.path.join(RESULTS, "summary.tree")) or "").strip() != tree:
            print("series: warning: the make check results are of another tree")
        # The kernels' rows; not make check's own row for this series.
        rows = [l.split() for l in summary.split("\n")
                if re.match(r"^\S+\s+\d+\s+\d+", l) and not l.startswith("series ")]
        total = ["%d passed, %d failed, %d skipped" % tuple(
            sum(int(r[i]) for r in rows) for i in (1, 2, 5))] if rows else []
        out.append(
            "Each kernel is built from tinyconfig plus kernel/configs/fault-retry*.config\n"
            "and booted in QEMU (TCG; um natively). x86_64, arm64, riscv64, um, arm,\n"
            "loongarch64 and s390x are built with clang 22 and rustc 1.96 (both on\n"
            "LLVM 22.1.8), all but um with CONFIG_RUST_INLINE_HELPERS; one\n"
            "kernel runs the C loop\n"
            "(rust_fault_loop=off) and the Rust loop (\"-rust\"), with the KUnit Rust\n"
            "doctests, the conformance suite (on x86_64 also as a 32-bit program)\n"
            "and, for \"-rust\", the host-side checks\n"
            "(rustfmtcheck, CLIPPY=1, W=1, rustdoc, the compile-fail tests of the lock\n"
            "types). \"-debug\" adds lockdep, DEBUG_VM, DEBUG_ATOMIC_SLEEP, DEBUG_LIST\n"
            "and KASAN. The other arches run their C loop with the suite (built with\n"
            "Debian's cross gcc, hexagon with clang 22); the GUP\n"
            "cases need the Rust sample and are skipped there. sh4, sparc32, arc\n"
            "and hexagon are built only.\n")
        fmt = "  %-18s %5s %5s %6s %6s %5s  %s"
        out.append("\n".join((fmt % tuple(r)).rstrip() for r in
                             [("target", "pass", "fail", "xfail", "xpass", "skip", "")] + rows))
        xf = [l.strip()[6:] for l in summary.split("\n") if l.strip().startswith("XFAIL ")]
        if xf:
            out.append("\nExpected failures: %d\n  %s"
                       % (len(xf), "\n  ".join(xf)))
        if total:
            out.append("\n" + total[0])
    bench = read(os.path.join(RESULTS, "bench.json"))
    out.append("")
    if bench is None:
        print("series: warning: no make bench results; the cover letter says so")
        out.append("(make bench has not been run on this tree.)")
        return "\n".join(out)
    if (read(os.path.join(RESULTS, "bench.tree")) or "").strip() != tree:
        print("series: warning: the make bench results are of another tree")
    b = json.loads(bench)
    out.append(wrap(
        "Cost per fault, C loop against the Rust loop, from "
        "tools/testing/selftests/mm/fault-retry-bench %s (minimum over the rounds; "
        "one kernel, built with fault-retry-bench.config, booted with each loop, in "
        "the same run). Under QEMU -icount shift=0 guest time is guest instructions, "
        "so these are instruction counts per fault:"
        % b["args"], "") + "\n")
    out.append("  arch      workload           C insns  Rust insns  Rust/C")
    icount = [r for r in b["rows"] if r["mode"] == "icount"]
    for r in icount:
        out.append("  %-9s %-16s %9.1f %11.1f  %6.4f"
                   % (r["arch"], r["workload"], r["c"], r["rust"], r["ratio"]))
    if icount:
        lo = min(icount, key=lambda r: r["ratio"])
        hi = max(icount, key=lambda r: r["ratio"])
        out.append("\n" + wrap(
            "Rust/C is between %.4f (%s %s) and %.4f (%s %s): "
            "the C helpers are inlined into Rust and the loop is compiled into the "
            "arch's fault handler, where LLVM inlines it. The requirement of the "
            "series is at most %.3f on x86_64 and arm64; %s."
            % (lo["ratio"], lo["arch"], lo["workload"], hi["ratio"], hi["arch"],
               hi["workload"], b["max_ratio"],
               "it is met" if not b["problems"] else
               "it is not met: " + "; ".join(b["problems"])), ""))
    native = [r for r in b["rows"] if r["mode"] == "native"]
    if native:
        out.append("\n" + wrap(
            "um, natively (wall clock, the median ratio of interleaved pairs of boots, "
            "with its interquartile range): "
            + ", ".join("%s %.3f (%.3f-%.3f)%s" % (r["workload"], r["ratio"], r["q1"], r["q3"],
                                                  "" if r["stable"] else ", unstable")
                        for r in native) + ".", ""))
    return "\n".join(out)


def bisect_line(key):
    text = read(os.path.join(RESULTS, "series-bisect.txt"))
    if text is None or ("series-trees: %s" % key) not in text:
        print("series: note: no make series-bisect result for these commits; "
              "the cover letter says so")
        return ("Bisection (every prefix builds for x86_64, Rust loop on and off) "
                "has not been checked for this version.")
    last = text.strip().split("\n")[-1]
    return ("Every prefix of the series builds for x86_64 with these configs, with "
            "CONFIG_RUST_FAULT_LOOP off and on, and adds no compiler warning to the base's own "
            "(make series-bisect: %s)." % last)


# "@#<subject>@" in the cover letter or a note: the number of the patch
# whose subject starts with <subject> (exactly one must).
PATCH_REF = re.compile(r"@#([^@\n]+)@")


def patch_number(commits, prefix):
    found = [n for n, c in enumerate(commits, 1) if c.subject.startswith(prefix)]
    if len(found) != 1:
        die("cover letter: '@#%s@' matches %d patches, not one" % (prefix, len(found)))
    return found[0]


def cover_text(cover, changelog, commits, tree):
    notes = []
    for n, c in enumerate(commits, 1):
        if c.note:
            note = PATCH_REF.sub(lambda m: str(patch_number(commits, m.group(1))), c.note)
            notes.append(wrap("Patch %d: %s" % (n, note), "  "))
    text = cover["body"]
    text = text.replace("@NOTES@", "\n\n".join(notes))
    key = hashlib.sha256(git("log", "--format=%T", "base.." + BRANCH).encode()).hexdigest()
    text = text.replace("@TESTED@", tested_section(tree) + "\n\n" + wrap(bisect_line(key), ""))
    text = text.replace("@CHANGELOG@", changelog)
    text = PATCH_REF.sub(lambda m: str(patch_number(commits, m.group(1))), text)
    if "@" in re.sub(r"\S+@\S+", "", text):
        die("cover letter: a placeholder was not filled")
    return text + "\n\n" + wrap(
        "Base: %s. The base-commit below is that source tree imported as one commit, "
        "not a kernel.org commit." % cover["keys"].get("base", "see base-commit"), "")


def wrap(text, indent, width=72):
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = indent + w
        else:
            cur = (cur + " " + w) if cur else w
    lines.append(cur)
    return "\n".join(lines)


def check_mails(cov, patches, tree):
    """What a b4/git-am user gets: the thread, the numbering, and the mails
    applied in order on the base give the series' tree."""
    def headers(path):
        with open(path) as f:
            h = email.parser.HeaderParser().parse(f)
        return lambda name: " ".join(h[name].split()) if h[name] else None
    cover = headers(cov)
    cover_id = cover("Message-ID")
    if not cover_id:
        die("the cover letter has no Message-ID")
    n = len(patches)
    if not re.search(r"\[[^]]*\b0+/%d\]" % n, cover("Subject")):
        die("the cover letter's subject is not numbered 0/%d" % n)
    idx = os.path.join(BUILD, "series-mail.index")
    ienv = {"GIT_INDEX_FILE": idx}
    if os.path.exists(idx):
        os.unlink(idx)
    git("read-tree", "base", env=ienv)
    for i, f in enumerate(patches, 1):
        header = headers(f)
        for h in ("In-Reply-To", "References"):
            if header(h) != cover_id:
                die("%s: %s is not the cover letter's Message-ID" % (os.path.basename(f), h))
        if not header("Message-ID"):
            die("%s: no Message-ID" % os.path.basename(f))
        if not re.search(r"\[[^]]*\b0*%d/%d\]" % (i, n), header("Subject")):
            die("%s: the subject is not numbered %d/%d" % (os.path.basename(f), i, n))
        apply_cached(mailinfo(f)[2], ienv)
    got = git("write-tree", env=ienv).strip()
    os.unlink(idx)
    if got != tree:
        die("the mails applied in order on the base do not give the series' tree")


# ---- checkpatch ----

def checkpatch(files, commits, cover):
    allowed_all = {}
    for line in cover["keys"].get("checkpatch", "").split("\n"):
        if line.strip():
            t, _, why = line.partition(" ")
            allowed_all[t] = why
    report, bad, per = [], 0, []
    for n, (f, c) in enumerate(zip(files, commits), 1):
        bad0 = bad
        with open(f) as fh:
            r = subprocess.run(["perl", "scripts/checkpatch.pl", "--strict", "--show-types",
                                "-"], cwd=SRC, stdin=fh, capture_output=True, text=True)
        found = {}
        out = r.stdout.split("\n")
        for i, line in enumerate(out):
            m = CP_TYPE.match(line)
            if m:
                where = out[i + 1] if i + 1 < len(out) and out[i + 1].startswith("#") else ""
                found.setdefault((m.group(1), m.group(2)), []).append(
                    (line + " " + where.split("FILE: ")[-1]).strip())
        if r.returncode not in (0, 1) or ("total:" not in r.stdout):
            die("checkpatch did not run on %s: %s" % (f, r.stderr.strip()[-300:]))
        report.append("%02d %s" % (n, c.subject))
        for (level, t), lines in sorted(found.items()):
            why = c.checkpatch.get(t) or allowed_all.get(t)
            if level == "ERROR" or not why:
                bad += 1
                report.append("   FAIL %s:%s x%d%s" % (level, t, len(lines),
                              "" if level == "ERROR" else " (not justified in patches/export)"))
                report.extend("        " + l for l in lines[:5])
            else:
                report.append("   ok   %s:%s x%d: %s" % (level, t, len(lines), why))
        for t in c.checkpatch:
            if not any(k[1] == t for k in found):
                bad += 1
                report.append("   FAIL %s is justified in patches/export but not reported: "
                              "remove it" % t)
        if not found:
            report.append("   clean")
        per.append((n, c.subject, bad - bad0))
    return report, bad, per


TAP = None


def write_tap(results):
    with open(TAP, "w") as f:
        f.write("KTAP version 1\n1..%d\n%s\n" % (len(results), "\n".join(results)))


def main():
    global TAP
    if sys.argv[1:2] == ["--tap"]:
        TAP = sys.argv[2]
        try:
            run()
        except SystemExit as e:
            if e.code not in (None, 0):
                if not os.path.exists(TAP) or "checkpatch" not in open(TAP).read():
                    write_tap(["not ok 1 series # %s" % str(e.code).replace("\n", " ")])
                raise
        return
    run()


def run():
    if TAP and os.path.exists(TAP):
        os.unlink(TAP)
    if not os.path.exists(os.path.join(SRC, ".git", "fr-assembled")):
        die("no assembled tree: run 'make tree' first")
    cover, changelog, commits = parse_spec(SPEC)
    k = cover["keys"]
    name, email = re.match(r"^(.*) <(.*)>$", k.get("from", "Fault-retry developers "
                                                  "<dev@fault-retry.invalid>")).groups()
    date = git("log", "-1", "--format=%cI", cwd=ROOT).strip()
    env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
           "GIT_COMMITTER_DATE": date, "SIGNOFF": "%s <%s>" % (name, email)}
    head = build(commits, env)
    tree = git("rev-parse", head + "^{tree}").strip()

    if os.path.isdir(OUTDIR):
        for f in os.listdir(OUTDIR):
            os.unlink(os.path.join(OUTDIR, f))
    os.makedirs(OUTDIR, exist_ok=True)
    addr = lambda key: [a.strip() for a in k.get(key, "").replace("\n", ",").split(",")
                        if a.strip()]
    args = ["format-patch", "-q", "--cover-letter", "--thread=shallow", "--base=base",
            "--subject-prefix=" + k.get("prefix", "RFC PATCH"), "--no-signature",
            "-o", OUTDIR]
    args += ["--to=" + a for a in addr("to")] + ["--cc=" + a for a in addr("cc")]
    git(*args, "base.." + BRANCH, env=env)
    files = sorted(os.path.join(OUTDIR, f) for f in os.listdir(OUTDIR) if f.endswith(".patch"))
    cov, patches = files[0], files[1:]
    text = open(cov).read()
    text = text.replace("*** SUBJECT HERE ***", k["subject"])
    text = text.replace("*** BLURB HERE ***", cover_text(cover, changelog, commits, tree))
    with open(cov, "w") as f:
        f.write(text)

    # No machine-local paths in what is mailed.
    local = [ROOT, BUILD, os.path.expanduser("~") + "/"]
    for f in files:
        t = open(f).read()
        for s in local:
            if len(s) > 1 and s in t:
                die("%s contains the machine-local '%s'" % (os.path.basename(f), s))

    check_mails(cov, patches, tree)
    report, bad, per = checkpatch(patches, commits, cover)
    if TAP:
        write_tap(["ok 1 series: %d commits give the assembled tree; the mails are threaded, "
                   "numbered and apply on the base" % len(commits)] +
                  ["%s %d checkpatch --strict %02d %s%s"
                   % ("not ok" if nb else "ok", n + 1, n, subj,
                      " # %d unjustified warning(s) or error(s)" % nb if nb else "")
                   for n, subj, nb in per])
    with open(os.path.join(OUTDIR, "checkpatch.txt"), "w") as f:
        f.write("\n".join(report) + "\n")
    print("series: %d patches and a cover letter in %s (branch '%s' of build/src)"
          % (len(patches), os.path.relpath(OUTDIR, ROOT), BRANCH))
    print("\n".join("  " + l for l in report if not l.startswith("        ")))
    if bad:
        die("checkpatch --strict: %d problem(s); see %s"
            % (bad, os.path.relpath(os.path.join(OUTDIR, "checkpatch.txt"), ROOT)))
    print("series: mails threaded to the cover letter, numbered, and they apply on the base "
          "to the assembled tree")
    print("series: checkpatch --strict clean (remaining warnings justified in patches/export)")


if __name__ == "__main__":
    main()
