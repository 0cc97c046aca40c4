#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs what the workbench needs and is missing: Debian packages (the
# toolchains, cross compilers and C libraries of every arch of lib.sh),
# QEMU 10 from bookworm-backports (Debian 12's QEMU 7.2 cannot boot 6.12 on
# 32-bit PA-RISC), bindgen from crates.io, and zig from PyPI for the
# loongarch64 guests. Idempotent: when all is there it only checks, in a
# second or two.
. "$(dirname "$0")/lib.sh"

DEB_PKGS="rustc-web rust-web-src rust-web-clippy clang-$LLVM_VERSION lld-$LLVM_VERSION
llvm-$LLVM_VERSION libclang-$LLVM_VERSION-dev
flex bison bc libelf-dev libssl-dev cpio python3 python3-ply git make gcc libc6-dev ccache"
QEMU_PKGS=
for a in $ARCHES; do
	arch_info "$a"
	DEB_PKGS="$DEB_PKGS $A_PKGS"
	QEMU_PKGS="$QEMU_PKGS $A_QEMU_PKG"
done
DEB_PKGS=$(echo $DEB_PKGS | tr ' ' '\n' | sort -u)
QEMU_PKGS=$(echo $QEMU_PKGS | tr ' ' '\n' | sort -u)
BACKPORTS=/etc/apt/sources.list.d/fault-retry-backports.sources

installed() {
	dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}
# QEMU counts as installed in its bookworm-backports version only.
qemu_installed() {
	installed "$1" && dpkg-query -W -f='${Version}' "$1" | grep -q '^1:1[0-9]\..*~bpo12'
}

missing=() qemu_missing=()
for p in $DEB_PKGS; do
	installed "$p" || missing+=("$p")
done
for p in $QEMU_PKGS; do
	qemu_installed "$p" || qemu_missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ] || [ ${#qemu_missing[@]} -gt 0 ]; then
	note "setup: installing Debian packages: ${missing[*]} ${qemu_missing[*]}"
	command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} ${qemu_missing[*]} by hand"
	[ "$(id -u)" = 0 ] ||
		die "need root to install ${missing[*]} ${qemu_missing[*]} (see workbench/setup.sh)"
	mkdir -p "$LOGS"
	log=$LOGS/setup-apt.log
	export DEBIAN_FRONTEND=noninteractive
	if [ ${#qemu_missing[@]} -gt 0 ] && [ ! -f "$BACKPORTS" ]; then
		note "setup: adding bookworm-backports for QEMU ($BACKPORTS)"
		cat >"$BACKPORTS" <<-EOF
			Types: deb
			URIs: http://deb.debian.org/debian
			Suites: bookworm-backports
			Components: main
			Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
	fi
	apt-get update -q >"$log" 2>&1 || die "apt-get update failed (log: $log)"
	# qemu-utils must come from the same QEMU as qemu-system-common.
	if [ ${#qemu_missing[@]} -gt 0 ] && installed qemu-utils; then
		qemu_missing+=(qemu-utils)
	fi
	ok=1
	if [ ${#missing[@]} -gt 0 ]; then
		apt-get install -y -q "${missing[@]}" >>"$log" 2>&1 || ok=0
	fi
	if [ $ok = 1 ] && [ ${#qemu_missing[@]} -gt 0 ]; then
		apt-get install -y -q -t bookworm-backports "${qemu_missing[@]}" >>"$log" 2>&1 || ok=0
	fi
	if [ $ok = 0 ]; then
		still=()
		for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
		for p in "${qemu_missing[@]}"; do qemu_installed "$p" || still+=("$p"); done
		tail -n 20 "$log" >&2
		die "could not install: ${still[*]}. They are Debian 12 packages (bookworm, bookworm-security;" \
			"QEMU from bookworm-backports); check /etc/apt/sources.list* (log: $log)"
	fi
fi

[ -x "$RUSTC_BIN" ] || die "$RUSTC_BIN missing: apt-get install rustc-web rust-web-src"
"$RUSTC_BIN" --version | grep -q '^rustc 1\.' || die "$RUSTC_BIN does not run"

if ! "$BINDGEN_BIN" --version 2>/dev/null | grep -q "bindgen $BINDGEN_VERSION\$"; then
	command -v cargo >/dev/null ||
		die "bindgen $BINDGEN_VERSION is missing and cargo is not on PATH: install Rust's cargo (rustup or apt-get install cargo)"
	note "setup: installing bindgen-cli $BINDGEN_VERSION from crates.io"
	mkdir -p "$LOGS"
	cargo install --locked --force bindgen-cli --version "$BINDGEN_VERSION" >"$LOGS/setup-bindgen.log" 2>&1 ||
		die "cargo install bindgen-cli $BINDGEN_VERSION failed (log: $LOGS/setup-bindgen.log)"
	[ -x "$BINDGEN_BIN" ] || die "bindgen not found at $BINDGEN_BIN after install (set BINDGEN_BIN)"
fi
# bindgen must use the libclang of the clang that builds: another one
# rejects that clang's flags, or reads the headers differently.
libclang=$("$BINDGEN_BIN" "$WB/libclang-version.h" 2>&1 >/dev/null |
	sed -n 's/.*clang version \([0-9][0-9.]*\).*/\1/p' | head -n 1)
case $libclang in
"$LLVM_VERSION".*) ;;
*) die "bindgen loads libclang '${libclang:-?}' from LIBCLANG_PATH=$LIBCLANG_PATH, not $LLVM_VERSION.x (apt-get install libclang-$LLVM_VERSION-dev)" ;;
esac

# C and Rust are joined as LLVM bitcode: rustc's LLVM must be clang's.
rustc_llvm=$("$RUSTC_BIN" --version --verbose | sed -n 's/^LLVM version: //p')
case $rustc_llvm in
"$LLVM_VERSION".*) ;;
*) die "$RUSTC_BIN is built on LLVM '${rustc_llvm:-?}', not $LLVM_VERSION.x: the workbench needs Debian 12's rustc-web on LLVM $LLVM_VERSION" ;;
esac

if ! [ -x "$ZIG_BIN" ]; then
	note "setup: installing zig $ZIG_VERSION from PyPI (the loongarch64 guests' C compiler)"
	mkdir -p "$LOGS"
	pip=(python3 -m pip)
	if ! "${pip[@]}" --version >/dev/null 2>&1; then
		[ -x /usr/bin/python3 ] && /usr/bin/python3 -m pip --version >/dev/null 2>&1 ||
			apt-get install -y -q python3-pip >>"$LOGS/setup-zig.log" 2>&1 ||
			die "no pip for python3: apt-get install python3-pip"
		pip=(/usr/bin/python3 -m pip)
	fi
	rm -rf "$ZIG_DIR.tmp"
	"${pip[@]}" install --quiet --no-deps --break-system-packages --target "$ZIG_DIR.tmp" \
		"ziglang==$ZIG_VERSION" >>"$LOGS/setup-zig.log" 2>&1 ||
		"${pip[@]}" install --quiet --no-deps --target "$ZIG_DIR.tmp" \
			"ziglang==$ZIG_VERSION" >>"$LOGS/setup-zig.log" 2>&1 ||
		die "pip install ziglang==$ZIG_VERSION failed (log: $LOGS/setup-zig.log)"
	rm -rf "$ZIG_DIR"
	mv "$ZIG_DIR.tmp" "$ZIG_DIR"
	[ -x "$ZIG_BIN" ] || die "zig not found at $ZIG_BIN after install"
fi

for t in clang-$LLVM_VERSION ld.lld-$LLVM_VERSION llvm-ar-$LLVM_VERSION llvm-link-$LLVM_VERSION ccache cpio python3; do
	command -v "$t" >/dev/null || die "'$t' not found on PATH after setup"
done
for a in $ARCHES; do
	arch_info "$a"
	if [ -n "$A_CC" ] && [ "${A_CC#zig:}" = "$A_CC" ]; then
		command -v "${A_CC%% *}" >/dev/null || die "'${A_CC%% *}' ($a guests) not found after setup"
	fi
	if [ $A_BOOT = qemu ]; then
		command -v "${A_QEMU[0]}" >/dev/null || die "'${A_QEMU[0]}' ($a) not found after setup"
	fi
done
note "setup: toolchain ready ($("$RUSTC_BIN" --version), LLVM $rustc_llvm, bindgen $BINDGEN_VERSION on libclang $libclang, $(clang-$LLVM_VERSION --version | head -n 1), zig $ZIG_VERSION)"
