#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# check.sh [TARGET...]: setup, assembly, then for each TARGET (ARCH or
# ARCH-VARIANT; default: $CHECK_TARGETS of lib.sh) build, boot and judge; then the summary
# table and "N passed, N failed". A target that fails to build or boot is
# counted as a failure and the others still run. Exit status 1 on any failure.
# --show: list each test of the project's programs before the table.
. "$(dirname "$0")/lib.sh"

show=0
[ "${1:-}" = --show ] && { show=1; shift; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$CHECK_TARGETS"

t_start=$(date +%s)
note "== setup"
"$WB/setup.sh"
note "== assemble"
"$WB/assemble.sh"

# What every target must report: the kernel crate's doctests, each test
# program of the guest (not the benchmark), and, except for the debug
# variants (which build the same code as -rust, under the debug checkers),
# the host's compile-fail checks of the Rust docs and the lint checks.
expect_guest=(--expect rust_doctests_kernel)
while read -r src dir _; do
	case "$src" in '' | '#'*) continue ;; esac
	[ "${dir:-tests}" = tests ] || continue
	expect_guest+=(--expect "$(basename "${src%.c}")")
done <"$WB/guest-tests"

names=()
for t in "${targets[@]}"; do
	arch=${t%%-*}
	variant=
	[ "$t" != "$arch" ] && variant=${t#*-}
	check_arch "$arch"
	name=$(name_of "$arch" "$variant")
	names+=("$name")
	note "== $name"
	rm -f "$RESULTS/$name.json" "$RESULTS/$name.tap" "$RESULTS/$name".host-*.tap
	mkdir -p "$RESULTS"
	problem=()
	expect=("${expect_guest[@]}")
	host_checks=1
	case $variant in *debug) host_checks=0 ;; *) expect+=(--expect rust-compile-fail --expect lint) ;; esac
	if ! "$WB/build.sh" "$arch" "$variant"; then
		problem=(--problem "build failed (logs: build/logs/$name/)")
	else
		if [ $host_checks = 1 ]; then
			step "compile-fail checks ($name)" "$LOGS/$name/compile-fail.log" \
				"$WB/compile-fail.sh" "$arch" "$variant" || true
			step "lint: rustfmt, clippy, W=1, rustdoc ($name)" "$LOGS/$name/lint.log" \
				"$WB/lint.sh" "$arch" "$variant" || true
		fi
		if ! "$WB/boot.sh" "$arch" "$variant"; then
			problem=(--problem "boot failed (log: build/logs/$name/console.log)")
		fi
	fi
	python3 "$WB/ktap.py" eval "$name" "${problem[@]}" "${expect[@]}" || true
done

if [ $show = 1 ]; then
	for name in "${names[@]}"; do
		note "== tests of $name"
		python3 "$WB/ktap.py" show "$name" || true
	done
fi
# The whole run (no targets named) also checks the mailing-list series:
# structure, threading, and checkpatch --strict on every patch.
if [ $# -eq 0 ]; then
	note "== series"
	names+=(series)
	rm -f "$RESULTS/series.json" "$RESULTS/series.tap"
	step "mailing-list series, checkpatch --strict" "$LOGS/series/series.log" \
		python3 "$WB/series.py" --tap "$RESULTS/series.tap" || true
	python3 "$WB/ktap.py" eval series || true
fi

rc=0
python3 "$WB/ktap.py" summary "${names[@]}" >"$RESULTS/summary.txt" || rc=$?
# Which tree the numbers are of (make series quotes them).
git -C "$SRC" rev-parse 'HEAD^{tree}' >"$RESULTS/summary.tree"
note "(total $(($(date +%s) - t_start)) s; summary also in build/results/summary.txt)"
cat "$RESULTS/summary.txt"
exit $rc
