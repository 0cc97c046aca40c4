#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# fault-trace.sh [ARCH]: where the extra instructions of the Rust loop go.
# Boots the bench kernel of ARCH (x86_64, arm64 or loongarch64; make
# bench's) with the C loop and with the Rust loop, once each with the
# benchmark, under QEMU
# "-d in_asm,exec,nochain" filtered to the fault entry, the arch's fault
# handler, the Rust loop, the arch hooks and the Rust helpers (those that
# are still functions of their own), and prints the instructions of the
# most common fault per function (workbench/fault-trace.py), then the
# instructions in which the two faults differ. The logs stay in build/logs.
. "$(dirname "$0")/lib.sh"

arch=${1:-x86_64}
case $arch in
x86_64) entry=exc_page_fault handler=do_user_addr_fault ;;
arm64) entry=do_mem_abort handler=do_page_fault ;;
loongarch64) entry=do_page_fault handler=__do_page_fault ;;
*) die "fault-trace.sh: x86_64, arm64 or loongarch64" ;;
esac

vmlinux=$OUT/$arch-bench/vmlinux
"$WB/build.sh" "$arch-bench"
for name in "$arch-bench" "$arch-rust-bench"; do
	ranges=$(nm -S "$vmlinux" | awk -v e="$entry" -v h="$handler" '
		NF == 4 && ($4 == e || $4 == h || $4 == "rust_fault_loop" ||
			    $4 ~ /^arch_fault_/ || $4 ~ /^rust_helper_/ ||
			    $4 ~ /fault_loop.*mmap_loop/) {
			printf "%s0x%s+0x%s", sep, $1, $2; sep = ","
		}')
	qlog=$LOGS/$name.trace/qemu-exec.log
	mkdir -p "$(dirname "$qlog")"
	BOOT_TAG=trace BOOT_RESULTS=$BUILD/bench SMP=1 \
		QEMU_EXTRA="-d in_asm,exec,nochain -D $qlog -dfilter $ranges" \
		APPEND_EXTRA='FR_BENCH=1 FR_ARGS="-r 1 -p 64"' \
		"$WB/boot.sh" "$name"
	echo "== $name"
	python3 "$WB/fault-trace.py" "$qlog" "$vmlinux" "$entry" "$LOGS/$name.trace/insns.txt"
done
# The instructions of the two faults side by side; branch targets and
# call offsets differ between the two, the rest is the difference in work.
echo "== instructions of the C fault (<) and of the Rust fault (>) that differ"
diff "$LOGS/$arch-bench.trace/insns.txt" "$LOGS/$arch-rust-bench.trace/insns.txt" || true
