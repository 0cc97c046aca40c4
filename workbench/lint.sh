#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# lint.sh ARCH [VARIANT]: the kernel's own checks of the Rust code and of the
# C the project touches, for one built kernel:
#   rustfmtcheck, the Rust objects (rust/, samples/rust/) built with CLIPPY=1
#   and W=1, and rustdoc. A warning located in a file the project adds or
#   patches fails its check; warnings of untouched upstream files (um's
#   asm-generic/io.h under W=1, for one) are counted in the log, not failed:
#   they are not new.
# They run in a separate build directory, build/out/<name>-lint, with the same
# .config, so that the normal build stays incremental.
#
# Writes KTAP to build/results/<name>.host-lint.tap: one program, lint.
. "$(dirname "$0")/lib.sh"

arch=${1:?usage: lint.sh ARCH [VARIANT]}
variant=${2:-}
name=$(name_of "$arch" "$variant")
out=$OUT/$name
lint=$OUT/$name-lint
log=$LOGS/$name
tap=$RESULTS/$name.host-lint.tap

[ -f "$out/.config" ] || die "$name is not configured: run 'make build ARCH=$arch'"
mkdir -p "$lint" "$log" "$RESULTS"
if ! cmp -s "$out/.config" "$lint/.config"; then
	cp "$out/.config" "$lint/.config"
	kmake "$arch" O="$lint" olddefconfig >"$log/lint-config.log" 2>&1 ||
		die "lint config failed (log: $log/lint-config.log)"
fi

# The files the project adds or patches.
ours=$lint/.fr-our-files
git -C "$SRC" diff --name-only base HEAD >"$ours"

# warnings_in_our_files LOG: prints "path:line: message" for each warning
# (C, clang via bindgen, or Rust with its "-->" location) in one of ours.
warnings_in_our_files() {
	awk -v src="$SRC/" '
		NR == FNR { ours[$0] = 1; next }
		function norm(p) { sub("^" src, "", p); sub(/^\.\//, "", p); return p }
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
check() { # NAME LOGFILE CMD...: ok if CMD succeeds with no warning in our files
	local what=$1 file=$2 rc=0 found others
	shift 2
	n=$((n + 1))
	"$@" >"$file" 2>&1 || rc=$?
	found=$(warnings_in_our_files "$file")
	others=$(grep -cE '(^|: )warning: ' "$file" || true)
	if [ $rc -eq 0 ] && [ -z "$found" ]; then
		inner+=("# $others warning line(s), all in untouched upstream files")
		inner+=("ok $n $what")
	else
		[ $rc -ne 0 ] && inner+=("# exit status $rc")
		while IFS= read -r l; do [ -n "$l" ] && inner+=("# $l"); done <<<"$(echo "$found" | head -n 8)"
		[ $rc -ne 0 ] && while IFS= read -r l; do inner+=("# $l"); done < <(grep -E 'error' "$file" | head -n 5)
		inner+=("# log: $file")
		inner+=("not ok $n $what")
	fi
}

# Objects are rebuilt when their command line changes: give every make of
# this directory the same flags, so that a no-change run rebuilds nothing.
lmake() {
	kmake "$arch" O="$lint" CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver W=1 "$@"
}
check "rustfmtcheck" "$log/lint-rustfmt.log" lmake rustfmtcheck
# The Rust objects, and every C or Rust object of the project's files that
# this config builds (its .o exists in the normal build directory).
objs=(rust/ samples/rust/)
while read -r f; do
	case "$f" in
	rust/* | samples/rust/*) ;;
	*.c | *.rs) [ -f "$out/${f%.*}.o" ] && objs+=("${f%.*}.o") ;;
	esac
done <"$ours"
check "clippy and W=1 (${objs[*]})" "$log/lint-clippy.log" lmake "${objs[@]}"
check "rustdoc" "$log/lint-rustdoc.log" lmake rustdoc

verdict=ok
printf '%s\n' "${inner[@]}" | grep -q '^not ok' && verdict="not ok"
{
	echo "KTAP version 1"
	echo "1..1"
	echo "    KTAP version 1"
	echo "    1..$n"
	printf '    %s\n' "${inner[@]}"
	echo "$verdict 1 lint"
} >"$tap"
[ "$verdict" = ok ]
