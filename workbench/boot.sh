#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# boot.sh TARGET: boots the built kernel of TARGET (<arch>, <arch>-rust or
# <arch>-rust-debug) with its initramfs (QEMU TCG; um as a native process)
# under a timeout, saves the console log, and extracts the guest's KTAP into
# build/results/TARGET.tap. On a Rust arch, <arch> boots with
# rust_fault_loop=off (the C loop) and <arch>-rust with rust_fault_loop=on.
#
# Exit status 0 when the guest ran to its end marker; the verdict on the
# results themselves is workbench/ktap.py's. A guest that does not power off
# by itself (some machines have no way to) is stopped once its end marker is
# out.
#
# Environment: BOOT_TIMEOUT (s, default 900), FR_TIMEOUT (per test in the
# guest, s, default 300), KVM=1 to use KVM (x86_64 only; guests hang under it
# on these machines, so TCG is the default), QEMU_EXTRA (more QEMU options),
# APPEND_EXTRA (more kernel command line), BOOT_TAG (a name for this boot's
# log and KTAP, TARGET.<tag>, for boots other than the tests'),
# BOOT_RESULTS (where the KTAP goes instead of build/results), SMP (CPUs,
# default the arch's).
. "$(dirname "$0")/lib.sh"

target=${1:?usage: boot.sh TARGET}
target_parse "$target"
[ $T_BOOT = 1 ] || die "$target is built only: there is no emulator for it here"
out=$OUT/$T_BUILD
run=$target${BOOT_TAG:+.$BOOT_TAG}
log=$LOGS/$run
console=$log/console.log
tap=${BOOT_RESULTS:-$RESULTS}/$run.tap
timeout_s=${BOOT_TIMEOUT:-900}
image=$out/$A_IMAGE
initrd=$out/guest/initramfs.cpio

[ -f "$image" ] && [ -f "$initrd" ] || die "$T_BUILD is not built: run 'make build ARCH=$T_ARCH'"
mkdir -p "$log" "$(dirname "$tap")"
rm -f "$tap" "$console"

append="panic=-1 FR_TIMEOUT=${FR_TIMEOUT:-300} ${APPEND_EXTRA:-}"
case $T_LOOP in
c) append="rust_fault_loop=off $append" ;;
rust) append="rust_fault_loop=on $append" ;;
esac
if [ $A_BOOT = um ]; then
	# printk goes to stderr, /dev/console to stdout; both into the log.
	cmd=("$image" mem=1G initrd="$initrd" con0=null,fd:1 con=null $append)
else
	cmd=("${A_QEMU[@]}")
	[ "${KVM:-0}" = 1 ] && [ "$T_ARCH" = x86_64 ] && cmd=(qemu-system-x86_64 -accel kvm -cpu max)
	cmd+=(-smp "${SMP:-$A_SMP}" -m "$A_MEM" -nographic -no-reboot -monitor none
		-serial stdio -kernel "$image" -initrd "$initrd" -append "$A_CONSOLE $append")
	# shellcheck disable=SC2206
	[ -n "${QEMU_EXTRA:-}" ] && cmd+=($QEMU_EXTRA)
fi

printf '  %-44s ' "boot ($run)"
t0=$(date +%s)
echo "# ${cmd[*]}" >"$log/boot-cmd.txt"
# UML's process tree ignores a plain SIGTERM; -k kills it for good.
timeout -k 10 "$timeout_s" "${cmd[@]}" </dev/null >"$console" 2>&1 &
pid=$!
# The guest is done at its end marker, or at a panic (panic=-1 reboots,
# which -no-reboot makes an exit, where the machine can): give it a few
# seconds to power off.
ended=0
while kill -0 $pid 2>/dev/null; do
	if [ $ended = 0 ] && grep -aq -e '^# fr-guest: end' -e 'Kernel panic - not syncing' "$console"; then
		ended=$(date +%s)
	fi
	if [ $ended != 0 ] && [ $(($(date +%s) - ended)) -ge 10 ]; then
		kill $pid 2>/dev/null || true
		break
	fi
	sleep 1
done
set +e
wait $pid
rc=$?
set -e
dt=$(($(date +%s) - t0))

# The guest's document, without the serial line's carriage returns.
tr -d '\r' <"$console" | sed -n '/^# fr-guest: begin$/,/^# fr-guest: end$/p' |
	sed '1d;$d' >"$tap.tmp"
mv "$tap.tmp" "$tap"
ended=0
tr -d '\r' <"$console" | grep -q '^# fr-guest: end$' && ended=1

if [ $ended = 0 ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
	printf 'FAILED (%ss): the guest hung; killed after %s s\n    log: %s\n' "$dt" "$timeout_s" "$console"
	tail -n 15 "$console" | sed 's/^/    | /'
	exit 1
fi
if [ $ended = 0 ]; then
	printf 'FAILED (%ss): the guest stopped before its end marker (status %s)\n    log: %s\n' \
		"$dt" "$rc" "$console"
	tail -n 15 "$console" | sed 's/^/    | /'
	exit 1
fi
# The guest ran the kernel that was built: its banner (version, build number
# and time) is vmlinux's. An image whose payload came from a stale cache
# entry booted an older kernel once (workbench/ccache-cc).
banner=$(grep -a -o -m 1 'Linux version [^%]* #[0-9][^[:cntrl:]]*' "$out/vmlinux" || true)
banner=${banner%%$'\n'*}
if [ -z "$banner" ] || ! grep -aqF "$banner" "$console"; then
	ran=$(grep -a -o -m 1 'Linux version [^[:cntrl:]]*' "$console" || true)
	printf 'FAILED (%ss): the guest did not run %s\n    built: %s\n    ran:   %s\n' \
		"$dt" "$out/vmlinux" "${banner:-?}" "${ran%%$'\n'*}"
	exit 1
fi
printf 'ok (%ss)\n' "$dt"
