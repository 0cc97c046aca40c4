# SPDX-License-Identifier: GPL-2.0
# Common definitions for the workbench scripts: paths, the arch table, the
# toolchain, and step/log helpers. Sourced, never run.

set -euo pipefail

# `make boot TARGET=...` puts TARGET into the environment, where bindgen
# (in setup's check and in the kernel builds) takes it for a target triple
# and fails on a name like um-rust.
unset TARGET

WB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$WB/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SRC=$BUILD/src            # the assembled kernel tree (a git repository)
OUT=$BUILD/out            # one out-of-tree build directory per kernel
LOGS=$BUILD/logs          # full make/QEMU output of every step
RESULTS=$BUILD/results    # KTAP of every boot: <boot>.tap
DL=$BUILD/dl              # downloaded base package

# The arches: those that build Rust carry both fault loops in one kernel
# and are booted twice; the others are booted with their C loop, or only
# built where this machine has no emulator for them.
RUST_ARCHES="x86_64 arm64 riscv64 um arm loongarch64 s390x"
C_ARCHES="i386 alpha m68k mips mips64el parisc powerpc ppc64le sparc64"
BUILD_ONLY_ARCHES="sh4 sparc32 arc hexagon"
ARCHES="$RUST_ARCHES $C_ARCHES $BUILD_ONLY_ARCHES"

# What make check runs, as targets: a boot is <arch> (the C loop),
# <arch>-rust (the Rust loop, on a Rust arch) or <arch>-rust-debug (the
# Rust loop under the debug checkers); a build-only arch is its name.
CHECK_TARGETS="x86_64 x86_64-rust arm64 arm64-rust riscv64 riscv64-rust um um-rust
arm arm-rust loongarch64 loongarch64-rust s390x s390x-rust x86_64-rust-debug arm64-rust-debug $C_ARCHES $BUILD_ONLY_ARCHES"

# The toolchain: Debian's rustc-web (it has rust-src), bindgen from crates.io,
# LLVM $LLVM_VERSION for the Rust arches and those without a gcc here
# (LLVM=-$LLVM_VERSION), cross gcc for the others. LLVM $LLVM_VERSION is
# rustc's own LLVM, so that LLVM bitcode of C and Rust can be joined
# (CONFIG_RUST_INLINE_HELPERS). The rustup rustc first on PATH has no
# rust-src. bindgen loads the libclang of LIBCLANG_PATH, which must be the
# one of the clang that builds (it takes the clang's flags); before 0.72.1,
# bindgen misreads some structures under libclang 22 (rust-bindgen#3278).
RUSTC_BIN=/usr/bin/rustc
RUSTDOC_BIN=/usr/bin/rustdoc
BINDGEN_BIN=${BINDGEN_BIN:-$HOME/.cargo/bin/bindgen}
BINDGEN_VERSION=0.72.1
LLVM_VERSION=22
export LIBCLANG_PATH=/usr/lib/llvm-$LLVM_VERSION/lib
JOBS=${JOBS:-$(nproc)}

# The compiler cache, outside the clone so that a fresh clone on the same
# machine finds it. Paths under the clone are hashed relative to it.
export CCACHE_DIR=${FR_CCACHE_DIR:-$HOME/.cache/fault-retry/ccache}
export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=1 CCACHE_DEPEND=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-10G}
# s390 passes its include directory to the assembler as an absolute path
# (-Wa,-I$(srctree)/...), which base_dir does not rewrite: left in the
# hash, no s390 object of one clone would be found from another. The
# assembler's .include files are not hashed either way.
export CCACHE_IGNOREOPTIONS='-Wa,-I*'
# The loongarch64 guests' C compiler (zig, from PyPI: Debian has no
# loongarch libc), installed by setup.sh.
ZIG_VERSION=0.15.2
ZIG_DIR=${FR_ZIG_DIR:-$HOME/.cache/fault-retry/ziglang-$ZIG_VERSION}
ZIG_BIN=$ZIG_DIR/ziglang/zig

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

# arch_info ARCH: the facts of one arch, in these variables:
#   A_KARCH   the kernel's ARCH
#   A_KCC     the kernel's compiler: llvm (LLVM $LLVM_VERSION) or gnu:PREFIX
#             (a cross gcc, CROSS_COMPILE=PREFIX)
#   A_IMAGE   the boot image, in the build directory
#   A_CC      the C compiler for the guest programs (empty: none)
#   A_LIBS    empty: the guest programs are static; else they are linked
#             dynamically, and their loader and libraries come from this
#             directory of the cross C library
#   A_PKGS    the Debian packages for the kernel and the guest programs
#   A_COMPAT_CC  the C compiler for 32-bit guest programs on a 64-bit kernel
#             (CONFIG_COMPAT), if the arch's fragment enables them
#   A_QEMU_PKG  the Debian package of the arch's QEMU (from bookworm-backports)
#   A_RUST    1 if the kernel builds Rust and both fault loops
#   A_BOOT    qemu, um, or none (built only)
#   A_QEMU    the QEMU command, without -kernel, -initrd and -append
#   A_CONSOLE the console part of the kernel command line, and what the
#             guest needs on it for this machine
#   A_SMP     how many CPUs the guest gets
#   A_MEM     how much memory
arch_info() {
	A_KCC=llvm A_RUST=0 A_BOOT=qemu A_SMP=2 A_MEM=1G A_QEMU=() A_QEMU_PKG= A_CONSOLE="console=ttyS0"
	A_LIBS= A_COMPAT_CC=
	case $1 in
	x86_64)
		A_KARCH=x86 A_IMAGE=arch/x86/boot/bzImage A_CC=x86_64-linux-gnu-gcc A_RUST=1
		A_COMPAT_CC=i686-linux-gnu-gcc
		A_PKGS="gcc gcc-i686-linux-gnu libc6-dev-i386-cross" A_QEMU_PKG=qemu-system-x86
		A_QEMU=(qemu-system-x86_64 -accel tcg -cpu max) ;;
	arm64)
		A_KARCH=arm64 A_IMAGE=arch/arm64/boot/Image A_CC=aarch64-linux-gnu-gcc A_RUST=1
		A_PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" A_QEMU_PKG=qemu-system-arm
		A_QEMU=(qemu-system-aarch64 -accel tcg -M virt -cpu max,pauth-impdef=on)
		A_CONSOLE="console=ttyAMA0" ;;
	riscv64)
		A_KARCH=riscv A_IMAGE=arch/riscv/boot/Image A_CC=riscv64-linux-gnu-gcc A_RUST=1
		A_PKGS="gcc-riscv64-linux-gnu libc6-dev-riscv64-cross" A_QEMU_PKG=qemu-system-riscv
		A_QEMU=(qemu-system-riscv64 -accel tcg -M virt -bios default)
		A_CONSOLE="console=ttyS0 earlycon=sbi" ;;
	um)
		# UML has one CPU in 6.12; its programs are x86_64 programs.
		A_KARCH=um A_IMAGE=linux A_CC=x86_64-linux-gnu-gcc A_RUST=1 A_BOOT=um A_SMP=1
		A_PKGS="gcc" A_CONSOLE="" ;;
	i386)
		A_KARCH=i386 A_KCC=gnu:i686-linux-gnu- A_IMAGE=arch/x86/boot/bzImage
		A_CC=i686-linux-gnu-gcc
		A_PKGS="gcc-i686-linux-gnu libc6-dev-i386-cross" A_QEMU_PKG=qemu-system-x86
		A_QEMU=(qemu-system-i386 -accel tcg -cpu max,vendor=GenuineIntel) ;;
	arm)
		A_KARCH=arm A_IMAGE=arch/arm/boot/zImage A_CC=arm-linux-gnueabihf-gcc A_RUST=1
		A_PKGS="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross" A_QEMU_PKG=qemu-system-arm
		A_QEMU=(qemu-system-arm -accel tcg -M virt -cpu cortex-a15)
		A_CONSOLE="console=ttyAMA0" ;;
	alpha)
		# Static programs of Debian's alpha C library crash at startup
		# (__ctype_init), under QEMU's user mode too: link dynamically.
		A_KARCH=alpha A_KCC=gnu:alpha-linux-gnu- A_IMAGE=vmlinux A_CC=alpha-linux-gnu-gcc
		A_LIBS=/usr/alpha-linux-gnu/lib
		A_PKGS="gcc-alpha-linux-gnu libc6.1-dev-alpha-cross" A_QEMU_PKG=qemu-system-misc
		A_QEMU=(qemu-system-alpha -accel tcg) ;;
	m68k)
		A_KARCH=m68k A_KCC=gnu:m68k-linux-gnu- A_IMAGE=vmlinux A_CC=m68k-linux-gnu-gcc A_SMP=1
		A_PKGS="gcc-m68k-linux-gnu libc6-dev-m68k-cross" A_QEMU_PKG=qemu-system-misc
		A_QEMU=(qemu-system-m68k -accel tcg -M virt -cpu m68040)
		A_CONSOLE="console=ttyGF0" ;;
	mips)
		A_KARCH=mips A_KCC=gnu:mips-linux-gnu- A_IMAGE=vmlinux A_CC=mips-linux-gnu-gcc A_SMP=1
		A_PKGS="gcc-mips-linux-gnu libc6-dev-mips-cross" A_QEMU_PKG=qemu-system-mips
		A_QEMU=(qemu-system-mips -accel tcg -M malta -cpu 24Kf) ;;
	mips64el)
		A_KARCH=mips A_KCC=gnu:mips64el-linux-gnuabi64- A_IMAGE=vmlinux A_SMP=1
		A_CC=mips64el-linux-gnuabi64-gcc
		A_PKGS="gcc-mips64el-linux-gnuabi64 libc6-dev-mips64el-cross" A_QEMU_PKG=qemu-system-mips
		A_QEMU=(qemu-system-mips64el -accel tcg -M malta -cpu MIPS64R2-generic) ;;
	parisc)
		A_KARCH=parisc A_KCC=gnu:hppa-linux-gnu- A_IMAGE=vmlinux A_CC=hppa-linux-gnu-gcc A_SMP=1
		A_PKGS="gcc-hppa-linux-gnu libc6-dev-hppa-cross" A_QEMU_PKG=qemu-system-misc
		A_QEMU=(qemu-system-hppa -accel tcg) ;;
	powerpc)
		A_KARCH=powerpc A_KCC=gnu:powerpc-linux-gnu- A_IMAGE=vmlinux A_SMP=1
		A_CC=powerpc-linux-gnu-gcc
		A_PKGS="gcc-powerpc-linux-gnu libc6-dev-powerpc-cross" A_QEMU_PKG=qemu-system-ppc
		A_QEMU=(qemu-system-ppc -accel tcg -M g3beige) ;;
	ppc64le)
		A_KARCH=powerpc A_KCC=gnu:powerpc64le-linux-gnu- A_IMAGE=vmlinux
		A_CC=powerpc64le-linux-gnu-gcc
		A_PKGS="gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross" A_QEMU_PKG=qemu-system-ppc
		A_QEMU=(qemu-system-ppc64 -accel tcg -M pseries -cpu power9)
		# The static guest programs load at 0x10000000, and powerpc
		# puts the heap up to 1 GiB above them at random: now and
		# then it lands on the fixed addresses (from 0x40000000)
		# where upstream's uffd tests map their shmem areas, which
		# then fail. norandmaps keeps the heap next to the program.
		A_CONSOLE="console=hvc0 norandmaps" ;;
	s390x)
		A_KARCH=s390 A_IMAGE=arch/s390/boot/bzImage A_CC=s390x-linux-gnu-gcc A_RUST=1
		A_PKGS="gcc-s390x-linux-gnu libc6-dev-s390x-cross" A_QEMU_PKG=qemu-system-s390x
		A_QEMU=(qemu-system-s390x -accel tcg -M s390-ccw-virtio -cpu max)
		A_CONSOLE="console=ttysclp0" ;;
	sh4)
		# Built only. Debian 12's one SH compiler, GCC 12.2, branches on a
		# T bit it never set: "if (!p)" of a pointer loaded from memory
		# compiles to a bare bt/s (Documentation/mm/fault-retry-arches.rst
		# has the test case). The zImage's loader takes the wrong branch
		# and never starts the kernel. QEMU's r2d would boot it: its
		# console is the second serial port.
		A_KARCH=sh A_KCC=gnu:sh4-linux-gnu- A_IMAGE=arch/sh/boot/zImage A_CC=sh4-linux-gnu-gcc
		A_BOOT=none
		A_SMP=1 A_MEM=64M A_PKGS="gcc-sh4-linux-gnu libc6-dev-sh4-cross" A_QEMU_PKG=qemu-system-misc
		A_QEMU=(qemu-system-sh4 -accel tcg -M r2d -serial null)
		A_CONSOLE="console=ttySC1" ;;
	sparc32)
		# Built only. The kernel boots on QEMU's SS-5, but no C library
		# for SPARC V8 exists here: Debian's 32-bit sparc one is
		# SPARC32PLUS (V9 instructions), which a sparc32 kernel does not
		# exec (/init fails with -ENOEXEC); musl has no sparc port.
		A_KARCH=sparc A_KCC=gnu:sparc64-linux-gnu- A_IMAGE=arch/sparc/boot/zImage A_SMP=1
		A_BOOT=none
		A_CC="sparc64-linux-gnu-gcc -m32"
		A_PKGS="gcc-sparc64-linux-gnu gcc-multilib-sparc64-linux-gnu libc6-dev-sparc-sparc64-cross" A_QEMU_PKG=qemu-system-sparc
		A_QEMU=(qemu-system-sparc -accel tcg -M SS-5) A_MEM=256M ;;
	sparc64)
		A_KARCH=sparc A_KCC=gnu:sparc64-linux-gnu- A_IMAGE=arch/sparc/boot/image A_SMP=1
		A_CC=sparc64-linux-gnu-gcc
		A_PKGS="gcc-sparc64-linux-gnu libc6-dev-sparc64-cross" A_QEMU_PKG=qemu-system-sparc
		A_QEMU=(qemu-system-sparc64 -accel tcg -M sun4u) ;;
	loongarch64)
		A_KARCH=loongarch A_IMAGE=vmlinux A_CC="zig:loongarch64-linux-musl" A_RUST=1
		A_PKGS= A_QEMU_PKG=qemu-system-misc
		A_QEMU=(qemu-system-loongarch64 -accel tcg -M virt -cpu la464)
		# QEMU 10.0 re-raises a no-execute fetch exception forever
		# without delivering it (-d int: loongarch_cpu_do_interrupt
		# entered for PNX at the same pc, nothing else): the CPU hangs.
		# The static guest programs load at 0x1000000 and the heap
		# starts up to 1 GiB above them at random: now and then it
		# covers the fixed addresses (from 0x40000000) where upstream's
		# uffd tests map their shmem areas, which with 32 MiB huge
		# pages span more than 64 MiB, and "zeropage on shmem" fails.
		# norandmaps keeps the heap next to the program, as on ppc64le.
		A_CONSOLE="console=ttyS0 FR_NO_EXEC_FETCH=skip norandmaps" ;;
	arc)
		A_KARCH=arc A_KCC=gnu:arc-linux-gnu- A_IMAGE=vmlinux A_CC=arc-linux-gnu-gcc A_BOOT=none
		A_PKGS="gcc-arc-linux-gnu libc6-dev-arc-cross" ;;
	hexagon)
		A_KARCH=hexagon A_IMAGE=vmlinux A_CC= A_BOOT=none A_PKGS= ;;
	*) die "unknown arch '$1' (known: $ARCHES)" ;;
	esac
}

# The names of builds and boots. A build is <arch> or <arch>-<variant>
# (build/out/<build>; the variants are debug and bench, on a Rust arch); a
# boot is a target of CHECK_TARGETS, or <arch>-bench and <arch>-rust-bench
# (make bench). target_parse TARGET sets T_ARCH, T_BUILD, T_VARIANT, T_LOOP
# (c, rust, or "" for an arch with one loop) and T_BOOT (1 if the target is
# booted).
target_parse() {
	local t=$1
	T_ARCH=${t%%-*}
	check_arch "$T_ARCH"
	arch_info "$T_ARCH"
	T_VARIANT= T_LOOP= T_BOOT=1
	case ${t#"$T_ARCH"} in
	"") [ $A_RUST = 1 ] && T_LOOP=c ;;
	-rust) [ $A_RUST = 1 ] || die "$T_ARCH has no Rust fault loop" ; T_LOOP=rust ;;
	-rust-debug) [ $A_RUST = 1 ] || die "$T_ARCH has no Rust fault loop"; T_LOOP=rust T_VARIANT=debug ;;
	-bench) [ $A_RUST = 1 ] || die "$T_ARCH has no Rust fault loop"; T_LOOP=c T_VARIANT=bench ;;
	-rust-bench) [ $A_RUST = 1 ] || die "$T_ARCH has no Rust fault loop"; T_LOOP=rust T_VARIANT=bench ;;
	*) die "unknown target '$t' (<arch>, <arch>-rust, <arch>-rust-debug, <arch>[-rust]-bench)" ;;
	esac
	[ $A_BOOT = none ] && T_BOOT=0
	T_BUILD=$T_ARCH${T_VARIANT:+-$T_VARIANT}
	return 0
}

# build_parse BUILD: sets B_ARCH and B_VARIANT, and the arch's A_* facts.
build_parse() {
	B_ARCH=${1%%-*}
	B_VARIANT=
	[ "$1" != "$B_ARCH" ] && B_VARIANT=${1#*-}
	check_arch "$B_ARCH"
	arch_info "$B_ARCH"
	case $B_VARIANT in
	"") ;;
	debug | bench) [ $A_RUST = 1 ] || die "$B_ARCH has no Rust fault loop to $B_VARIANT" ;;
	*) die "unknown build '$1' (<arch>, <arch>-debug or <arch>-bench)" ;;
	esac
}

# The config fragments of a build, relative to the tree: the common one, the
# arch's, the Rust one on a Rust arch, and the variant's.
build_fragments() {
	build_parse "$1"
	echo kernel/configs/fault-retry.config
	echo "kernel/configs/fault-retry-$B_ARCH.config"
	[ $A_RUST = 1 ] && echo kernel/configs/fault-retry-rust.config
	[ -n "$B_VARIANT" ] && echo "kernel/configs/fault-retry-$B_VARIANT.config"
	return 0
}

# kmake ARCH ARGS...: make in the assembled tree with ARCH's toolchain, C
# through ccache (the host tools' too, where no Rust is built), but for the
# sources that .incbin a file (workbench/ccache-cc).
kmake() {
	local arch=$1 tc
	shift
	arch_info "$arch"
	tc=()
	case $A_KCC in
	# Not HOSTCC on the Rust arches: it is also HOSTRUSTC's -Clinker.
	llvm)
		tc=(LLVM=-$LLVM_VERSION CC="$WB/ccache-cc clang-$LLVM_VERSION")
		[ $A_RUST = 1 ] || tc+=(HOSTCC="$WB/ccache-cc clang-$LLVM_VERSION") ;;
	gnu:*) tc=(CROSS_COMPILE="${A_KCC#gnu:}" CC="$WB/ccache-cc ${A_KCC#gnu:}gcc"
		HOSTCC="$WB/ccache-cc gcc") ;;
	esac
	[ "$arch" = um ] && tc+=(SUBARCH=x86)
	make -C "$SRC" ARCH="$A_KARCH" "${tc[@]}" \
		RUSTC="$RUSTC_BIN" RUSTDOC="$RUSTDOC_BIN" BINDGEN="$BINDGEN_BIN" \
		HOSTRUSTC="$RUSTC_BIN" -j"$JOBS" "$@"
}

# merge_fragments ARCH OUT FRAGMENT...: a config in OUT from tinyconfig and the
# fragments (paths relative to $SRC, or absolute), completed by olddefconfig.
merge_fragments() {
	local arch=$1 out=$2
	shift 2
	arch_info "$arch"
	kmake "$arch" O="$out" tinyconfig
	(cd "$SRC" && ARCH=$A_KARCH scripts/kconfig/merge_config.sh -m -O "$out" \
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
