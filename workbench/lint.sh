#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# lint.sh BUILD: the kernel's own checks of the Rust code and of the C the
# project touches, for one built kernel of a Rust arch:
#   rustfmtcheck; the warnings of clippy (CLIPPY=1) and W=1, which build.sh
#   turns on for this kernel, in its build log; and rustdoc. A warning
#   located in a file the project adds or patches fails its check; warnings
#   of untouched upstream files (um's asm-generic/io.h under W=1, for one)
#   are counted, not failed: they are not new. build.sh makes the objects of
#   the project's files again at every build, so their warnings are always
#   in the log.
#
# Also checks that the Rust fault loop is inlined where the config says so.
# Writes KTAP to build/results/<arch>-rust.host-lint.tap: one program, lint.
. "$(dirname "$0")/lib.sh"

name=${1:?usage: lint.sh BUILD}
build_parse "$name"
[ $A_RUST = 1 ] && [ -z "$B_VARIANT" ] || die "lint.sh: $name is not the lint build of a Rust arch"
out=$OUT/$name
log=$LOGS/$name
tap=$RESULTS/$B_ARCH-rust.host-lint.tap

[ -f "$log/kernel.log" ] && [ -f "$out/.config" ] || die "$name is not built: run 'make build ARCH=$B_ARCH'"
mkdir -p "$RESULTS"

# The files the project adds or patches.
ours=$out/.fr-our-files
git -C "$SRC" diff --name-only base HEAD >"$ours"

# warnings_in_our_files LOG: prints "path:line: message" for each warning
# (C, clang via bindgen, or Rust with its "-->" location) in one of ours.
warnings_in_our_files() {
	awk -v src="$SRC/" '
		NR == FNR { ours[$0] = 1; next }
		function norm(p) { sub("^" src, "", p); sub(/^(\.\.\/)+src\//, "", p); sub(/^\.\//, "", p); return p }
		/^warning: / { msg = $0; next }
		msg != "" && /^ *--> / {
			loc = $2; split(loc, a, ":"); p = norm(a[1])
			if (p in ours) print p ":" a[2] ": " msg
			msg = ""; next
		}
		match($0, /[^ :]+:[0-9]+:[0-9]+: warning: /) {
			loc = substr($0, RSTART, RLENGTH); split(loc, a, ":"); p = norm(a[1])
			if (p in ours) print p ":" a[2] ": " substr($0, RSTART + RLENGTH)
		}' "$ours" "$1"
}

n=0
inner=()
# verdict WHAT FILE RC: ok if RC is 0 and FILE has no warning in our files
verdict() {
	local what=$1 file=$2 rc=$3 found others
	n=$((n + 1))
	found=$(warnings_in_our_files "$file")
	others=$(grep -cE '(^|: )warning: ' "$file" || true)
	if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
		inner+=("# $others warning line(s), all in untouched upstream files")
		inner+=("ok $n $what")
	else
		[ "$rc" -ne 0 ] && inner+=("# exit status $rc")
		while IFS= read -r l; do [ -n "$l" ] && inner+=("# $l"); done <<<"$(echo "$found" | head -n 8)"
		[ "$rc" -ne 0 ] && while IFS= read -r l; do inner+=("# $l"); done < <(grep -E 'error' "$file" | head -n 5)
		inner+=("# log: $file")
		inner+=("not ok $n $what")
	fi
}
check() { # NAME LOGFILE CMD...
	local what=$1 file=$2 rc=0
	shift 2
	"$@" >"$file" 2>&1 || rc=$?
	verdict "$what" "$file" $rc
}

# The same flags as build.sh's, so that nothing is rebuilt.
lmake() {
	kmake "$B_ARCH" O="$out" CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver W=1 "$@"
}
check "rustfmtcheck" "$log/lint-rustfmt.log" lmake rustfmtcheck
verdict "clippy and W=1 (the kernel build)" "$log/kernel.log" 0
check "rustdoc" "$log/lint-rustdoc.log" lmake rustdoc

# With CONFIG_RUST_FAULT_LOOP_INLINE, LLVM inlines rust_fault_loop() into
# the arch's fault handler. A function of that name left in vmlinux means it
# did not: the two sides' attributes no longer match (CC_FLAGS_RUST_TARGET).
loop_inlined() {
	if ! grep -qx 'CONFIG_RUST_FAULT_LOOP_INLINE=y' "$out/.config"; then
		echo "CONFIG_RUST_FAULT_LOOP_INLINE is off: nothing to check"
		return 0
	fi
	if nm "$out/vmlinux" | grep -E ' [tT] rust_fault_loop$'; then
		echo "error: rust_fault_loop() is a function of its own: LLVM did not inline it"
		return 1
	fi
	echo "rust_fault_loop() is inlined into the arch's fault handler"
}
check "the Rust fault loop is inlined into the handler" "$log/lint-inline.log" loop_inlined

result=ok
printf '%s\n' "${inner[@]}" | grep -q '^not ok' && result="not ok"
{
	echo "KTAP version 1"
	echo "1..1"
	echo "    KTAP version 1"
	echo "    1..$n"
	printf '    %s\n' "${inner[@]}"
	echo "$result 1 lint"
} >"$tap"
[ "$result" = ok ]
