#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# lint.sh ARCH [VARIANT]: the kernel's own checks of the Rust code and of the
# C the project touches, for one built kernel:
#   rustfmtcheck, the Rust objects (rust/, samples/rust/) built with CLIPPY=1
#   and W=1, and rustdoc. Any warning fails its check.
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

n=0
inner=()
check() { # NAME LOGFILE CMD...: ok if CMD succeeds and prints no warning
	local what=$1 file=$2
	shift 2
	n=$((n + 1))
	if "$@" >"$file" 2>&1 && ! grep -qE '(^|: )warning[:\[]' "$file"; then
		inner+=("ok $n $what")
	else
		mapfile -t found < <(grep -E 'warning|error' "$file" | head -n 8)
		for l in "${found[@]}"; do inner+=("# $l"); done
		inner+=("# log: $file")
		inner+=("not ok $n $what")
	fi
}

# Rust objects are rebuilt when their flags change: touch nothing else.
check "rustfmtcheck" "$log/lint-rustfmt.log" kmake "$arch" O="$lint" rustfmtcheck
check "clippy and W=1 (rust/, samples/rust/)" "$log/lint-clippy.log" \
	kmake "$arch" O="$lint" CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver W=1 rust/ samples/rust/
check "rustdoc" "$log/lint-rustdoc.log" kmake "$arch" O="$lint" rustdoc

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
