#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# compile-fail.sh BUILD: proves that the misuses shown in the Rust
# docs do not compile. The kernel's doctest machinery cannot run
# `compile_fail` doctests, so such examples are written as
#
#   /// ```ignore
#   /// // compile_fail: E0382
#   /// ...
#   /// ```
#
# and each one is compiled here against the built kernel crate, with the
# flags of the kernel's own doctest object. It must fail with that error
# code. "// compile_fail: E0133 CONFIG_FOO" applies only where CONFIG_FOO
# is set; elsewhere the snippet is a skip whose description names the
# option (workbench/xskip/ must list it). A correct use of the same API
# must compile (the control), so that a broken setup cannot pass for a
# failing snippet.
#
# Writes KTAP to build/results/<arch>-rust.host-compile-fail.tap, as one program,
# rust-compile-fail, with a result per snippet.
. "$(dirname "$0")/lib.sh"

name=${1:?usage: compile-fail.sh BUILD}
build_parse "$name"
out=$OUT/$name
work=$out/compile-fail
tap=$RESULTS/$B_ARCH-rust.host-compile-fail.tap
cmdfile=$out/rust/.doctests_kernel_generated.o.cmd

[ -f "$cmdfile" ] || die "$name has no built Rust doctests ($cmdfile)"
rm -rf "$work"
mkdir -p "$work" "$RESULTS"

# The rustc command line of the doctest object, minus its input and outputs
# and, with CONFIG_RUST_INLINE_HELPERS, the llvm-link and clang steps that
# follow it.
base=$(sed -n 's/^savedcmd_[^ ]* := //p' "$cmdfile" |
	sed -e 's/ ; .*$//' -e 's/--crate-name [^ ]*//' -e 's/--out-dir [^ ]*//' -e 's/--emit=[^ ]*//g' \
		-e 's/ [^ ]*doctests_kernel_generated\.rs *$//')

# Snippets: "file:line" then the code, from every ```ignore block that starts
# with "// compile_fail: CODE".
awk '
	FNR == 1 { inblk = 0 }
	/^[ \t]*\/\/\/ ```ignore[ \t]*$/ { inblk = 1; first = 1; next }
	inblk && /^[ \t]*\/\/\/ ```[ \t]*$/ { if (keep) print "@@END"; inblk = 0; keep = 0; next }
	inblk {
		line = $0
		sub(/^[ \t]*\/\/\/ ?/, "", line)
		if (first) {
			first = 0
			if (line ~ /^\/\/ compile_fail: E[0-9]+/) {
				keep = 1
				split(line, a, " ")
				print "@@SNIPPET " FILENAME ":" FNR " " a[3] " " a[4]
			}
			next
		}
		if (keep) print line
	}' $(cd "$SRC" && git ls-files 'rust/kernel/*.rs' | sed "s|^|$SRC/|") >"$work/snippets"

n=0
inner=$work/ktap
{
	echo "KTAP version 1"
	echo "1..$(($(grep -c '^@@SNIPPET' "$work/snippets") + 1))"
} >"$inner"

compile() { # FILE -> status; stderr in FILE.err
	(cd "$out" && RUSTC_BOOTSTRAP=1 eval "$base --crate-name $(basename "${1%.rs}") --crate-type rlib \
		--emit=metadata=$1.rmeta $1") >"$1.err" 2>&1
}

header='#![allow(dead_code, unused_variables, unused_imports, missing_docs, unreachable_pub)]'

# The control: correct uses of the guarded APIs compile.
ctl=$work/control_0.rs
cat >"$ctl" <<EOF
$header
use kernel::mm::{fault::{FaultFlags, FaultOutcome, LockedVma}, MmWithUser};
pub fn control(mm: &MmWithUser, addr: usize) -> usize {
    let guard = mm.mmap_read_lock();
    let lock = match LockedVma::lookup(guard, addr) {
        Ok(lock) => lock,
        Err(guard) => { drop(guard); return 0; }
    };
    match lock.handle_mm_fault(addr, FaultFlags::DEFAULT, None) {
        Ok(FaultOutcome::Locked(lock, _)) => lock.vma().start(),
        Ok(FaultOutcome::Released(_)) => 1,
        Err(refused) => refused.lock.vma().end(),
    }
}
EOF
n=$((n + 1))
if compile "$ctl"; then
	echo "ok $n control: correct uses compile" >>"$inner"
else
	sed 's/^/# /' "$ctl.err" | head -n 30 >>"$inner"
	echo "not ok $n control: correct uses compile" >>"$inner"
fi

i=0
while IFS= read -r line; do
	case "$line" in
	"@@SNIPPET "*)
		set -- $line
		where=${2#"$SRC/"}
		code=$3
		needs=${4:-}
		i=$((i + 1))
		f=$work/snippet_$i.rs
		echo "$header" >"$f"
		;;
	"@@END")
		n=$((n + 1))
		desc="$where does not compile ($code)"
		[ -n "$needs" ] && desc="$where does not compile ($code, with $needs)"
		if [ -n "$needs" ] && ! grep -qx "$needs=y" "$out/.config"; then
			echo "ok $n $desc # SKIP $needs is not set" >>"$inner"
		elif compile "$f"; then
			echo "# it compiled" >>"$inner"
			echo "not ok $n $desc" >>"$inner"
		elif grep -q "error\[$code\]" "$f.err"; then
			echo "ok $n $desc" >>"$inner"
		else
			grep -m 5 '^error' "$f.err" | sed 's/^/# /' >>"$inner"
			echo "not ok $n $desc # failed without $code" >>"$inner"
		fi
		;;
	*) echo "$line" >>"$f" ;;
	esac
done <"$work/snippets"
verdict=ok
grep -q '^not ok' "$inner" && verdict="not ok"
{
	echo "KTAP version 1"
	echo "1..1"
	sed 's/^/    /' "$inner"
	echo "$verdict 1 rust-compile-fail"
} >"$tap"
echo "$(grep -c '^ok' "$inner") of $n compile-fail checks passed"
[ "$verdict" = ok ]
