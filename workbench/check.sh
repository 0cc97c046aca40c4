#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# check.sh [--show] [TARGET...]: setup, assembly, then for each TARGET
# (default: $CHECK_TARGETS of lib.sh) build, boot and judge; then the
# summary table and "N passed, N failed". Targets that share a kernel
# (<arch> and <arch>-rust) share its build. A target that fails to build or
# boot is counted as a failure and the others still run. Exit status 1 on
# any failure.
# --show: list each test of the project's programs before the table.
. "$(dirname "$0")/lib.sh"

show=0
[ "${1:-}" = --show ] && { show=1; shift; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || read -r -d '' -a targets <<<"$CHECK_TARGETS" || true

t_start=$(date +%s)
# at: the time since the start, for the section headers.
at() {
	local s=$(($(date +%s) - t_start))
	printf 'at %dm%02ds' $((s / 60)) $((s % 60))
}
note "== setup"
"$WB/setup.sh"
note "== assemble ($(at))"
"$WB/assemble.sh"

# What every boot must report: each test program of the guest (not the
# benchmark), and its 32-bit build where the arch has one; on a Rust arch
# also the kernel crate's doctests.
# Programs that report by their exit status alone (no KTAP) are marked so.
programs=() compat_programs=() exit_only=()
while read -r src rest; do
	case "$src" in '' | '#'*) continue ;; esac
	dir=tests name=$(basename "${src%.c}")
	for w in $rest; do
		case "$w" in
		tests | bench | compat) dir=$w ;;
		as=*) name=${w#as=} ;;
		exit-only) exit_only+=(--exit-only "$name") ;;
		esac
	done
	case "$dir" in
	tests) programs+=("$name") ;;
	compat) compat_programs+=("$name-compat") ;;
	esac
done <"$WB/guest-tests"

# The builds, in the order of their first target.
builds=()
for t in "${targets[@]}"; do
	target_parse "$t"
	case " ${builds[*]} " in *" $T_BUILD "*) ;; *) builds+=("$T_BUILD") ;; esac
done

mkdir -p "$RESULTS"
for b in "${builds[@]}"; do
	note "== $b ($(at))"
	built=1
	"$WB/build.sh" "$b" || built=0
	build_parse "$b"
	host=0
	if [ $built = 1 ] && [ $A_RUST = 1 ] && [ -z "$B_VARIANT" ]; then
		host=1
		rm -f "$RESULTS/$B_ARCH-rust".host-*.tap
		step "compile-fail checks ($b)" "$LOGS/$b/compile-fail.log" \
			"$WB/compile-fail.sh" "$b" || true
		step "lint: rustfmt, clippy, W=1, rustdoc ($b)" "$LOGS/$b/lint.log" \
			"$WB/lint.sh" "$b" || true
	fi
	for t in "${targets[@]}"; do
		target_parse "$t"
		[ "$T_BUILD" = "$b" ] || continue
		rm -f "$RESULTS/$t.json" "$RESULTS/$t.tap"
		[ "$t" != "$B_ARCH-rust" ] && rm -f "$RESULTS/$t".host-*.tap
		args=()
		[ $built = 1 ] || args+=(--problem "build failed (logs: build/logs/$b/)")
		# Expected skips and failures: those of every target, of arches
		# without Rust, of what the kernel's config lacks (no-<what>.txt),
		# the arch's (every target of it) and the target's own.
		args+=(--skips "$WB/xskip/all.txt")
		[ $A_RUST = 1 ] || args+=(--skips "$WB/xskip/no-rust.txt")
		for what in hugetlbfs:HUGETLBFS uffd-wp:HAVE_ARCH_USERFAULTFD_WP \
			uffd-minor:HAVE_ARCH_USERFAULTFD_MINOR; do
			grep -q "^CONFIG_${what#*:}=y" "$OUT/$b/.config" 2>/dev/null && continue
			for l in xskip:--skips xfail:--xfail; do
				[ -f "$WB/${l%%:*}/no-${what%%:*}.txt" ] &&
					args+=("${l#*:}" "$WB/${l%%:*}/no-${what%%:*}.txt")
			done
		done
		# arch-<arch>.txt: every target of the arch; kernel-<ARCH>.txt:
		# every arch built from the kernel's arch/<ARCH> (mips and mips64el),
		# for what its fault handler does.
		for l in "arch-$T_ARCH" "kernel-$A_KARCH"; do
			[ -f "$WB/xskip/$l.txt" ] && args+=(--skips "$WB/xskip/$l.txt")
			[ -f "$WB/xfail/$l.txt" ] && args+=(--xfail "$WB/xfail/$l.txt")
		done
		[ -f "$WB/xskip/$t.txt" ] && args+=(--skips "$WB/xskip/$t.txt")
		if [ $T_BOOT = 0 ]; then
			# Built only: the build is the result.
			{
				echo "KTAP version 1"
				echo "1..1"
				echo "$([ $built = 1 ] || echo "not ")ok 1 build"
			} >"$RESULTS/$t.host-build.tap"
			args+=(--build-only --expect build)
		else
			for p in "${programs[@]}"; do args+=(--expect "$p"); done
			args+=("${exit_only[@]}")
			if [ -n "$A_COMPAT_CC" ]; then
				for p in "${compat_programs[@]}"; do args+=(--expect "$p"); done
			fi
			[ $A_RUST = 1 ] && args+=(--expect rust_doctests_kernel --loop "$T_LOOP")
			# The Rust loop must give every test the result the C loop
			# gave it, on the same kernel, when this run booted both.
			case " ${targets[*]} " in
			*" $T_ARCH "*) [ "$t" = "$T_ARCH-rust" ] && args+=(--same-as "$T_ARCH") ;;
			esac
			[ $host = 1 ] && [ "$t" = "$B_ARCH-rust" ] &&
				args+=(--expect rust-compile-fail --expect lint)
			if [ $built = 1 ] && ! "$WB/boot.sh" "$t"; then
				args+=(--problem "boot failed (log: build/logs/$t/console.log)")
			fi
		fi
		python3 "$WB/ktap.py" eval "$t" "${args[@]}" || true
	done
done

if [ $show = 1 ]; then
	for t in "${targets[@]}"; do
		note "== tests of $t"
		python3 "$WB/ktap.py" show "$t" || true
	done
fi
names=("${targets[@]}")
# The whole run (no targets named) also checks the judge itself (crafted
# results and consoles with one hole each, which it must fail) and the
# mailing-list series: structure, threading, and checkpatch --strict on
# every patch.
if [ $# -eq 0 ]; then
	note "== judge self-test ($(at))"
	names+=(judge)
	rm -f "$RESULTS"/judge.*
	python3 "$WB/ktap.py" selftest --tap "$RESULTS/judge.host-selftest.tap" || true
	python3 "$WB/ktap.py" eval judge --build-only --expect judge || true
	note "== series ($(at))"
	names+=(series)
	rm -f "$RESULTS"/series.*
	step "mailing-list series, checkpatch --strict" "$LOGS/series/series.log" \
		python3 "$WB/series.py" --tap "$RESULTS/series.host-series.tap" || true
	python3 "$WB/ktap.py" eval series --build-only || true
fi

rc=0
python3 "$WB/ktap.py" summary "${names[@]}" >"$RESULTS/summary.txt" || rc=$?
# Which tree the numbers are of (make series quotes them).
git -C "$SRC" rev-parse 'HEAD^{tree}' >"$RESULTS/summary.tree"
note "(total $(($(date +%s) - t_start)) s; summary also in build/results/summary.txt)"
cat "$RESULTS/summary.txt"
exit $rc
