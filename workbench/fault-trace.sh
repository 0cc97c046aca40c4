#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# fault-trace.sh [ARCH]: where the extra instructions of the Rust loop go.
# Boots the C-loop and the Rust-loop kernel of ARCH (x86_64 or arm64) once
# each with the benchmark, under QEMU "-d in_asm,exec,nochain" filtered to the
# fault entry, the arch's fault handler, the Rust loop, the arch hooks and
# the Rust helpers, and prints the instructions of the most common fault per
# function (workbench/fault-trace.py). The logs stay in build/logs.
. "$(dirname "$0")/lib.sh"

arch=${1:-x86_64}
case $arch in
x86_64) entry=exc_page_fault handler=do_user_addr_fault ;;
arm64) entry=do_mem_abort handler=do_page_fault ;;
*) die "fault-trace.sh: x86_64 or arm64" ;;
esac

vmlinux=$OUT/$arch/vmlinux
[ -f "$vmlinux" ] || "$WB/build.sh" "$arch"
for name in "$arch" "$arch-rust"; do
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
	python3 "$WB/fault-trace.py" "$qlog" "$vmlinux" "$entry"
done
