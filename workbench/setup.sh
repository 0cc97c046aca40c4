#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs what the workbench needs and is missing. Idempotent: when all is
# there it only checks, in a second or two.
. "$(dirname "$0")/lib.sh"

DEB_PKGS="rustc-web rust-web-src rust-web-clippy clang lld llvm libclang-dev
flex bison bc libelf-dev libssl-dev cpio python3 python3-ply git make gcc libc6-dev
qemu-system-x86 qemu-system-arm qemu-system-misc opensbi
gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu libc6-dev-riscv64-cross"

installed() {
	dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

missing=()
for p in $DEB_PKGS; do
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	note "setup: installing Debian packages: ${missing[*]}"
	command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
	[ "$(id -u)" = 0 ] || die "need root to install ${missing[*]} (run: sudo apt-get install ${missing[*]})"
	mkdir -p "$LOGS"
	log=$LOGS/setup-apt.log
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >"$log" 2>&1 || die "apt-get update failed (log: $log)"
	extra=()
	# A qemu-utils newer than Debian 12's QEMU (from backports) blocks
	# qemu-system-*: pin it to the version that goes with qemu-system-common.
	qver=$(apt-cache policy qemu-system-common | awk '/Candidate:/ {print $2}')
	if installed qemu-utils && [ -n "$qver" ] &&
		[ "$(dpkg-query -W -f='${Version}' qemu-utils)" != "$qver" ]; then
		extra+=(--allow-downgrades "qemu-utils=$qver")
	fi
	if ! apt-get install -y -q "${extra[@]}" "${missing[@]}" >>"$log" 2>&1; then
		still=()
		for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
		tail -n 20 "$log" >&2
		die "could not install: ${still[*]}. They are Debian 12 packages (bookworm, bookworm-security);" \
			"check /etc/apt/sources.list* and run 'apt-get install ${still[*]}' (log: $log)"
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

for t in clang ld.lld llvm-ar x86_64-linux-gnu-gcc aarch64-linux-gnu-gcc riscv64-linux-gnu-gcc \
	qemu-system-x86_64 qemu-system-aarch64 qemu-system-riscv64 cpio python3; do
	command -v "$t" >/dev/null || die "'$t' not found on PATH after setup"
done
note "setup: toolchain ready ($("$RUSTC_BIN" --version), bindgen $BINDGEN_VERSION, $(clang --version | head -n 1))"
