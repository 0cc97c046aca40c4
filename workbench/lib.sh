# SPDX-License-Identifier: GPL-2.0
# Common definitions for the workbench scripts: paths, the arch table, the
# toolchain, and step/log helpers. Sourced, never run.

set -euo pipefail

WB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$WB/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SRC=$BUILD/src            # the assembled kernel tree (a git repository)
OUT=$BUILD/out            # one out-of-tree build directory per arch and variant
LOGS=$BUILD/logs          # full make/QEMU output of every step
RESULTS=$BUILD/results    # KTAP of every boot: <arch>[-<variant>].tap
DL=$BUILD/dl              # downloaded base package

ARCHES="x86_64 arm64 riscv64 um"
# What make check builds and boots: every arch with the C fault loop, and the
# variants (ARCH-VARIANT, with kernel/configs/fault-retry-VARIANT.config).
CHECK_TARGETS="x86_64 arm64 riscv64 um x86_64-rust arm64-rust riscv64-rust um-rust x86_64-rust-debug arm64-rust-debug"

# The toolchain: Debian's rustc-web (it has rust-src), bindgen from crates.io,
# LLVM=1 for every arch. The rustup rustc first on PATH has no rust-src.
RUSTC_BIN=/usr/bin/rustc
RUSTDOC_BIN=/usr/bin/rustdoc
BINDGEN_BIN=${BINDGEN_BIN:-$HOME/.cargo/bin/bindgen}
BINDGEN_VERSION=0.71.1
JOBS=${JOBS:-$(nproc)}

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

note() {
	printf '%s\n' "$*"
}

# read_pin: sets PIN_PKG, PIN_VERSION, PIN_SHA256 from base.pin.
read_pin() {
	local line
	line=$(grep -v '^[[:space:]]*\(#\|$\)' "$WB/base.pin" | head -n 1)
	PIN_PKG=${line%%=*}
	line=${line#*=}
	PIN_VERSION=${line%% *}
	PIN_SHA256=${line##* }
	[ -n "$PIN_PKG" ] && [ -n "$PIN_VERSION" ] && [ ${#PIN_SHA256} -eq 64 ] ||
		die "workbench/base.pin: expected '<package>=<version> <sha256>'"
}

# check_arch ARCH: dies unless ARCH is one we build.
check_arch() {
	case " $ARCHES " in
	*" $1 "*) ;;
	*) die "unknown arch '$1' (known: $ARCHES)" ;;
	esac
}

# Per-arch facts. karch: the kernel's ARCH; image: the boot image inside the
# build directory; cc: the C compiler for static guest binaries.
arch_karch() {
	case $1 in
	x86_64) echo x86 ;; arm64) echo arm64 ;; riscv64) echo riscv ;; um) echo um ;;
	esac
}
arch_image() {
	case $1 in
	x86_64) echo arch/x86/boot/bzImage ;;
	arm64) echo arch/arm64/boot/Image ;;
	riscv64) echo arch/riscv/boot/Image ;;
	um) echo linux ;;
	esac
}
arch_cc() {
	case $1 in
	x86_64 | um) echo x86_64-linux-gnu-gcc ;;
	arm64) echo aarch64-linux-gnu-gcc ;;
	riscv64) echo riscv64-linux-gnu-gcc ;;
	esac
}

arch_cc_pkg() {
	case $1 in
	x86_64 | um) echo gcc ;;
	arm64) echo "gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
	riscv64) echo "gcc-riscv64-linux-gnu libc6-dev-riscv64-cross" ;;
	esac
}

# name_of ARCH VARIANT: the name used for build dirs, logs and results.
name_of() {
	if [ -n "${2:-}" ]; then echo "$1-$2"; else echo "$1"; fi
}

# kmake ARCH ARGS...: make in the assembled tree with the project's toolchain.
kmake() {
	local arch=$1
	shift
	local extra=()
	[ "$arch" = um ] && extra+=(SUBARCH=x86)
	make -C "$SRC" ARCH="$(arch_karch "$arch")" "${extra[@]}" LLVM=1 \
		RUSTC="$RUSTC_BIN" RUSTDOC="$RUSTDOC_BIN" BINDGEN="$BINDGEN_BIN" \
		HOSTRUSTC="$RUSTC_BIN" -j"$JOBS" "$@"
}

# merge_fragments ARCH OUT FRAGMENT...: a config in OUT from tinyconfig and the
# fragments (paths relative to $SRC, or absolute), completed by olddefconfig.
merge_fragments() {
	local arch=$1 out=$2
	shift 2
	kmake "$arch" O="$out" tinyconfig
	(cd "$SRC" && ARCH=$(arch_karch "$arch") scripts/kconfig/merge_config.sh -m -O "$out" \
		"$out/.config" "$@")
	kmake "$arch" O="$out" olddefconfig
}

# step NAME LOG CMD...: runs CMD with all output in LOG, prints the step name
# and then its elapsed time. On failure prints the log's path and its tail.
step() {
	local name=$1 log=$2 t0 rc
	shift 2
	mkdir -p "$(dirname "$log")"
	printf '  %-44s ' "$name"
	t0=$(date +%s)
	set +e
	(
		set -e
		"$@"
	) >"$log" 2>&1
	rc=$?
	set -e
	if [ $rc -eq 0 ]; then
		printf 'ok (%ss)\n' $(($(date +%s) - t0))
	else
		printf 'FAILED (%ss)\n' $(($(date +%s) - t0))
		printf '    log: %s\n' "$log"
		tail -n 15 "$log" | sed 's/^/    | /'
	fi
	return $rc
}
