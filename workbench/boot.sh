#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# boot.sh ARCH [VARIANT]: boots the built kernel with its initramfs (QEMU TCG
# with 2 CPUs; um as a native process) under a timeout, saves the console
# log, and extracts the guest's KTAP into build/results/<arch>[-<variant>].tap.
#
# Exit status 0 when the guest ran to its end marker and powered off; the
# verdict on the results themselves is workbench/ktap.py's.
#
# Environment: BOOT_TIMEOUT (s, default 900), FR_TIMEOUT (per test in the
# guest, s, default 300), KVM=1 to use KVM (x86_64 only; guests hang under it
# on these machines, so TCG is the default), QEMU_EXTRA (more QEMU options),
# APPEND_EXTRA (more kernel command line), BOOT_TAG (a name for this boot's
# log and KTAP, <arch>[-<variant>].<tag>, for boots other than the tests'),
# BOOT_RESULTS (where the KTAP goes instead of build/results), SMP (CPUs, 2).
. "$(dirname "$0")/lib.sh"

arch=${1:?usage: boot.sh ARCH [VARIANT]}
variant=${2:-}
check_arch "$arch"
name=$(name_of "$arch" "$variant")
out=$OUT/$name
run=$name${BOOT_TAG:+.$BOOT_TAG}
log=$LOGS/$run
console=$log/console.log
tap=${BOOT_RESULTS:-$RESULTS}/$run.tap
timeout_s=${BOOT_TIMEOUT:-900}
image=$out/$(arch_image "$arch")
initrd=$out/guest/initramfs.cpio

[ -f "$image" ] && [ -f "$initrd" ] || die "$name is not built: run 'make build ARCH=$arch'"
mkdir -p "$log" "$(dirname "$tap")"
rm -f "$tap" "$console"

append="panic=-1 FR_TIMEOUT=${FR_TIMEOUT:-300} ${APPEND_EXTRA:-}"
accel=(-accel tcg)
[ "${KVM:-0}" = 1 ] && accel=(-accel kvm)
qemu_common=(-smp "${SMP:-2}" -m 1G -nographic -no-reboot -monitor none -serial stdio
	-kernel "$image" -initrd "$initrd")

case $arch in
x86_64)
	cmd=(qemu-system-x86_64 "${accel[@]}" -cpu max "${qemu_common[@]}"
		-append "console=ttyS0 $append") ;;
arm64)
	cmd=(qemu-system-aarch64 -accel tcg -M virt -cpu max,pauth-impdef=on "${qemu_common[@]}"
		-append "console=ttyAMA0 $append") ;;
riscv64)
	cmd=(qemu-system-riscv64 -accel tcg -M virt -bios default "${qemu_common[@]}"
		-append "console=ttyS0 earlycon=sbi $append") ;;
um)
	# printk goes to stderr, /dev/console to stdout; both into the log.
	# UML has one CPU in 6.12.
	cmd=("$image" mem=1G initrd="$initrd" con0=null,fd:1 con=null $append) ;;
esac
# shellcheck disable=SC2206
[ -n "${QEMU_EXTRA:-}" ] && [ "$arch" != um ] && cmd+=($QEMU_EXTRA)

printf '  %-44s ' "boot ($run)"
t0=$(date +%s)
echo "# ${cmd[*]}" >"$log/boot-cmd.txt"
set +e
# UML's process tree ignores a plain SIGTERM; -k kills it for good.
timeout -k 10 "$timeout_s" "${cmd[@]}" </dev/null >"$console" 2>&1
rc=$?
set -e
dt=$(($(date +%s) - t0))

# The guest's document, without the serial line's carriage returns.
tr -d '\r' <"$console" | sed -n '/^# fr-guest: begin$/,/^# fr-guest: end$/p' |
	sed '1d;$d' >"$tap.tmp"
mv "$tap.tmp" "$tap"
ended=0
tr -d '\r' <"$console" | grep -q '^# fr-guest: end$' && ended=1

if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	printf 'FAILED (%ss): the guest hung; killed after %s s\n    log: %s\n' "$dt" "$timeout_s" "$console"
	tail -n 15 "$console" | sed 's/^/    | /'
	exit 1
fi
if [ $ended = 0 ]; then
	printf 'FAILED (%ss): the guest stopped before its end marker (qemu status %s)\n    log: %s\n' \
		"$dt" "$rc" "$console"
	tail -n 15 "$console" | sed 's/^/    | /'
	exit 1
fi
printf 'ok (%ss)\n' "$dt"
