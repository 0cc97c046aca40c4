#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# bench.sh [ARCH...]: the cost per fault of the C and the Rust user
# page-fault loop (CONFIG_RUST_FAULT_LOOP), measured in one run on the same
# kernel by tools/testing/selftests/mm/fault-retry-bench.c.
#
# For each arch (default: $BENCH_ARCHES) it builds, or reuses, the bench
# variant of the arch's kernel (make check's, less the debug-only counters:
# kernel/configs/fault-retry-bench.config), which holds both loops, and boots
# it with the C loop (rust_fault_loop=off) and with the Rust loop, with
# FR_BENCH=1, so that the guest's /init runs the benchmark instead of the
# tests:
#  - QEMU with -icount shift=0,sleep=off and one CPU: guest nanoseconds are
#    guest instructions, and the numbers repeat from run to run;
#  - um, natively: wall clock, $BENCH_UM_PAIRS pairs of boots, C and Rust
#    interleaved (the order alternating from pair to pair); the report gives
#    the median of the per-pair ratios, their spread, and whether the two
#    halves of the run agree within that spread.
# The report goes to build/results/bench.txt (and bench.json); the run fails
# if a ratio under icount exceeds $BENCH_MAX_RATIO on x86_64 or arm64.
. "$(dirname "$0")/lib.sh"

BENCH_ARCHES=${BENCH_ARCHES:-"x86_64 arm64 riscv64 um arm loongarch64 s390x"}
BENCH_ARGS=${BENCH_ARGS:-"-r 15 -p 512"}
BENCH_MAX_RATIO=${BENCH_MAX_RATIO:-1.005}
BENCH_UM_PAIRS=${BENCH_UM_PAIRS:-8}
arches=${*:-$BENCH_ARCHES}
dir=$BUILD/bench
rm -rf "$dir"
mkdir -p "$dir" "$RESULTS"

# bench_boot TARGET TAG [QEMU options]: one benchmark boot. A failed boot is
# reported by bench-report.py as a missing run.
bench_boot() {
	local target=$1 tag=$2
	shift 2
	BOOT_TAG=$tag BOOT_RESULTS=$dir QEMU_EXTRA="$*" SMP=1 \
		APPEND_EXTRA="FR_BENCH=1 FR_ARGS=\"$BENCH_ARGS\"" \
		"$WB/boot.sh" "$target" || true
}

for arch in $arches; do
	check_arch "$arch"
	"$WB/build.sh" "$arch-bench"
	if [ "$arch" = um ]; then
		for i in $(seq 1 "$BENCH_UM_PAIRS"); do
			order="um-bench um-rust-bench"
			[ $((i % 2)) = 0 ] && order="um-rust-bench um-bench"
			for target in $order; do
				bench_boot "$target" "bench-native-$i"
			done
		done
	else
		for target in "$arch-bench" "$arch-rust-bench"; do
			bench_boot "$target" bench-icount -icount shift=0,sleep=off
		done
	fi
done

cmd="make bench${*:+ BENCH_ARCHES=\"$*\"}"
# Which tree the numbers are of (make series quotes them).
git -C "$SRC" rev-parse 'HEAD^{tree}' >"$RESULTS/bench.tree"
python3 "$WB/bench-report.py" --dir "$dir" --max-ratio "$BENCH_MAX_RATIO" \
	--um-pairs "$BENCH_UM_PAIRS" --json "$RESULTS/bench.json" --command "$cmd" \
	--args "$BENCH_ARGS" $arches | tee "$RESULTS/bench.txt"
exit "${PIPESTATUS[0]}"
