#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# bench.sh [ARCH...]: the cost per fault of the C and the Rust user
# page-fault loop (CONFIG_RUST_FAULT_LOOP), measured in one run on the same
# base by tools/testing/selftests/mm/fault-retry-bench.c.
#
# For each arch (default: $BENCH_ARCHES) it builds, or reuses, the kernel of
# make check, which holds both loops, and boots it with the C loop
# (rust_fault_loop=off) and with the Rust loop, each with FR_BENCH=1, so
# that the guest's /init runs the benchmark instead of the tests:
#  - QEMU with -icount shift=0,sleep=off and one CPU: guest nanoseconds are guest
#    instructions, and the numbers repeat from run to run. The ratios of
#    these are the result;
#  - plain QEMU TCG, wall clock, for information (um: native, wall clock).
# The report goes to build/results/bench.txt (and bench.json); the run fails
# if the anon_write ratio exceeds $BENCH_MAX_RATIO on x86_64 or arm64.
. "$(dirname "$0")/lib.sh"

BENCH_ARCHES=${BENCH_ARCHES:-"x86_64 arm64 riscv64 um"}
BENCH_ARGS=${BENCH_ARGS:-"-r 15 -p 512"}
BENCH_MAX_RATIO=${BENCH_MAX_RATIO:-1.005}
arches=${*:-$BENCH_ARCHES}
dir=$BUILD/bench
rm -rf "$dir"
mkdir -p "$dir" "$RESULTS"

for arch in $arches; do
	check_arch "$arch"
	"$WB/build.sh" "$arch"
	for target in "$arch" "$arch-rust"; do
		modes="tcg"
		[ "$arch" = um ] && modes="native"
		[ "$arch" != um ] && modes="icount tcg"
		for mode in $modes; do
			# One CPU under icount: with two, the riscv64 guest of QEMU 7.2
			# hangs in the uffd round trip.
			extra= smp=2
			[ "$mode" = icount ] && extra="-icount shift=0,sleep=off" smp=1
			# A failed boot is reported by bench-report.py as a missing run.
			BOOT_TAG=bench-$mode BOOT_RESULTS=$dir QEMU_EXTRA=$extra SMP=$smp \
				APPEND_EXTRA="FR_BENCH=1 FR_ARGS=\"$BENCH_ARGS\"" \
				"$WB/boot.sh" "$target" || true
		done
	done
done

cmd="make bench${*:+ BENCH_ARCHES=\"$*\"}"
# Which tree the numbers are of (make series quotes them).
git -C "$SRC" rev-parse 'HEAD^{tree}' >"$RESULTS/bench.tree"
python3 "$WB/bench-report.py" --dir "$dir" --max-ratio "$BENCH_MAX_RATIO" \
	--json "$RESULTS/bench.json" --command "$cmd" --args "$BENCH_ARGS" $arches |
	tee "$RESULTS/bench.txt"
exit "${PIPESTATUS[0]}"
