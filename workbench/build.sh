#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# build.sh [--guest-only] BUILD: configures and builds the kernel of the
# assembled tree in build/out/BUILD (BUILD is <arch>, <arch>-debug or
# <arch>-bench), then the guest's static programs (the /init runner and the
# tests) and the initramfs. --guest-only: the programs and the initramfs
# alone, for a kernel built before.
#
# Config: tinyconfig + kernel/configs/fault-retry.config +
# fault-retry-<arch>.config [+ fault-retry-rust.config on a Rust arch]
# [+ fault-retry-<variant>.config]. It is made again only when a fragment, a
# Kconfig file or the toolchain changed, and every option a fragment asks
# for is checked in the result.
#
# The kernel of a Rust arch (not a variant) is also the lint build:
# it is made with CLIPPY=1 and W=1, which give the same objects, and the
# objects of the files the project adds or patches are made again every
# time, so that their warnings are in this build's log (workbench/lint.sh
# reads it).
. "$(dirname "$0")/lib.sh"

guest_only=0
[ "${1:-}" = --guest-only ] && { guest_only=1; shift; }
name=${1:?usage: build.sh [--guest-only] BUILD (<arch>, <arch>-debug or <arch>-bench)}
build_parse "$name"
arch=$B_ARCH
out=$OUT/$name
log=$LOGS/$name
guest=$out/guest
# The UAPI headers for the guest programs. UML exports none: its programs
# are x86_64 programs, so they use x86's, exported by an x86 make.
hdr=$out/usr/include
[ "$arch" = um ] && hdr=$out/x86-uapi/usr/include
lint=0
[ $A_RUST = 1 ] && [ -z "$B_VARIANT" ] && lint=1

[ -f "$SRC/.git/fr-assembled" ] || die "no assembled tree: run 'make tree' first"

mapfile -t frags < <(build_fragments "$name")
for f in "${frags[@]}"; do
	[ -f "$SRC/$f" ] || die "config fragment $f is missing"
done

# The guest's compiler: a cross gcc, or zig for a musl target.
guest_cc=()
case $A_CC in
"") ;;
zig:*) guest_cc=("$ZIG_BIN" cc -target "${A_CC#zig:}") ;;
*) read -r -a guest_cc <<<"$A_CC" ;;
esac
if [ ${#guest_cc[@]} -gt 0 ] && ! command -v "${guest_cc[0]}" >/dev/null; then
	die "C compiler '${guest_cc[0]}' for $arch guests is missing: run 'make setup' (Debian packages: $A_PKGS)"
fi

# check_config: every CONFIG_ line of the fragments (the last one wins)
# holds in the final .config.
check_config() {
	local bad
	bad=$(awk -v cfg="$out/.config" '
		FILENAME == cfg {
			if (match($0, /^CONFIG_[A-Za-z0-9_]+=/))
				have[substr($0, 1, RLENGTH - 1)] = substr($0, RLENGTH + 1)
			next
		}
		match($0, /^CONFIG_[A-Za-z0-9_]+=/) { want[substr($0, 1, RLENGTH - 1)] = substr($0, RLENGTH + 1) }
		/^# CONFIG_[A-Za-z0-9_]+ is not set/ { want[$2] = "n" }
		END {
			for (k in want) {
				h = (k in have) ? have[k] : "n"
				if (h != want[k]) printf "%s: wanted %s, got %s\n", k, want[k], h
			}
		}' "${frags[@]/#/$SRC/}" "$out/.config" | sort)
	if [ -n "$bad" ]; then
		echo "$bad"
		if echo "$bad" | grep -q '^CONFIG_RUST:'; then
			echo "Rust is not available to Kconfig; 'make rustavailable' says:"
			kmake "$arch" O="$out" rustavailable || true
		fi
		return 1
	fi
}

configure() {
	local stamp=$out/.fr-config-stamp want
	want=$( (cat "${frags[@]/#/$SRC/}"; echo "$A_KCC $LLVM_VERSION $RUSTC_BIN $BINDGEN_BIN $BINDGEN_VERSION";
		git -C "$SRC" ls-tree -r HEAD | grep 'Kconfig') | sha256sum | cut -d' ' -f1)
	if [ -f "$stamp" ] && [ -f "$out/.config" ] && [ "$(cat "$stamp")" = "$want" ]; then
		echo "config up to date"
		return
	fi
	rm -f "$stamp"
	merge_fragments "$arch" "$out" "${frags[@]}"
	check_config
	echo "$want" >"$stamp"
}

# our_objects: the objects of the files the project adds or patches that
# this config builds (the Rust crates they belong to, for .rs files).
our_objects() {
	git -C "$SRC" diff --name-only base HEAD | while read -r f; do
		case "$f" in
		rust/kernel/*) echo rust/kernel.o ;;
		rust/helpers/*) echo rust/helpers/helpers.o ;;
		# With CONFIG_RUST_FAULT_LOOP_INLINE, the arch's handler
		# object takes it in as bitcode.
		mm/fault_loop.rs) echo mm/fault_loop.o; echo "arch/$A_KARCH/mm/fault_loop.bc" ;;
		*.c | *.rs) echo "${f%.*}.o" ;;
		esac
	done | sort -u | while read -r o; do
		if [ -f "$out/$o" ]; then echo "$o"; fi
	done
}

compile_kernel() {
	local flags=()
	# An object left empty by an interrupted build is newer than its
	# source, so make would link it: remove it to have it made again.
	find "$out" -name '*.o' -size 0 -delete
	if [ $lint = 1 ]; then
		flags=(CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver W=1)
		our_objects | sed "s|^|$out/|" | xargs -r rm -f
	fi
	kmake "$arch" O="$out" "${flags[@]}" "$(basename "$A_IMAGE")"
	if [ "$arch" = um ]; then
		kmake x86_64 O="$out/x86-uapi" headers
	else
		kmake "$arch" O="$out" headers
	fi
}

# The guest programs, static unless the arch says otherwise (A_LIBS),
# rebuilt when their source or the headers change. workbench/guest-tests
# says which, and where: /tests (the default) or /bench.
link=(-static)
[ -n "$A_LIBS" ] && link=()
compile_guest() {
	local src dir bin stamp=$guest/.fr-cc
	mkdir -p "$guest/tests" "$guest/bench"
	# Another compiler, way of linking or flags: make them all again.
	local flags=(-O2 -g -Wall -pthread -U_FORTIFY_SOURCE -isystem "$hdr"
		-isystem "$SRC/tools/include/uapi" -I "$guest" -I "$SRC/tools/testing/selftests"
		-I "$SRC")
	# musl has no __fsword_t, glibc's type of statfs.f_type, which
	# upstream's gup_longterm uses.
	case $A_CC in zig:*) flags+=(-D__fsword_t=long) ;; esac
	if [ "$(cat "$stamp" 2>/dev/null)" != "${guest_cc[*]} ${link[*]} ${flags[*]}" ]; then
		rm -f "$guest/init" "$guest"/tests/* "$guest"/bench/*
		echo "${guest_cc[*]} ${link[*]} ${flags[*]}" >"$stamp"
	fi
	if [ ! "$guest/init" -nt "$WB/guest/init.c" ]; then
		"${guest_cc[@]}" "${link[@]}" -Os -Wall -Wextra -o "$guest/init" "$WB/guest/init.c"
	fi
	# upstream's cow and gup_longterm include the local_config.h that
	# their Makefile probes for; the guests have no liburing.
	echo "// No liburing support found" >"$guest/local_config.h"
	# The list in workbench/guest-tests is the list: drop others.
	local want=() cc line src dir name srcs args w
	while read -r line; do
		case "$line" in '' | '#'*) continue ;; esac
		src=${line%% *} dir=tests name= srcs=() args=()
		for w in ${line#"$src"}; do
			case "$w" in
			tests | bench | compat) dir=$w ;;
			with=*) IFS=, read -r -a w <<<"${w#with=}"
				srcs+=("${w[@]}") ;;
			as=*) name=${w#as=} ;;
			args=*) IFS=, read -r -a args <<<"${w#args=}" ;;
			exit-only) ;;
			*) echo "workbench/guest-tests: $src: '$w' is not tests, bench, compat, with=, as=, args= or exit-only"
				return 1 ;;
			esac
		done
		# Compiled in the source's directory, with its name as __FILE__
		# (gup_longterm makes a file named after it in its directory).
		srcs=("$(basename "$src")" "${srcs[@]}")
		cc=("${guest_cc[@]}")
		bin=$guest/$dir/${name:-$(basename "${src%.c}")}
		if [ "$dir" = compat ]; then
			# A 32-bit build, in /tests, where the arch has 32-bit processes.
			[ -n "$A_COMPAT_CC" ] || continue
			cc=("$A_COMPAT_CC")
			bin=$guest/tests/${name:-$(basename "${src%.c}")}-compat
		fi
		for w in "${srcs[@]}"; do
			[ -f "$SRC/$(dirname "$src")/$w" ] ||
				{ echo "workbench/guest-tests: $(dirname "$src")/$w not in the tree"; return 1; }
		done
		want+=("$(basename "$(dirname "$bin")")/$(basename "$bin")")
		if [ ${#args[@]} -gt 0 ]; then
			want+=("$(basename "$(dirname "$bin")")/$(basename "$bin").args")
			printf '%s\n' "${args[@]}" >"$bin.args.tmp"
			cmp -s "$bin.args.tmp" "$bin.args" || mv "$bin.args.tmp" "$bin.args"
			rm -f "$bin.args.tmp"
		fi
		if [ ! -e "$bin" ] || [ "$hdr" -nt "$bin" ] || [ -n "$(find \
			"${srcs[@]/#/$SRC/$(dirname "$src")/}" "$SRC/$(dirname "$src")"/*.h \
			"$SRC/samples/rust/rust_fault_gup.h" -newer "$bin" 2>/dev/null)" ]; then
			(cd "$SRC/$(dirname "$src")" &&
				"${cc[@]}" "${link[@]}" "${flags[@]}" -o "$bin" "${srcs[@]}" -lrt -lm)
		fi
	done <"$WB/guest-tests"
	for bin in "$guest"/tests/* "$guest"/bench/*; do
		[ -e "$bin" ] || continue
		case "$bin" in *.tmp) continue ;; esac
		case " ${want[*]} " in
		*" $(basename "$(dirname "$bin")")/$(basename "$bin") "*) ;;
		*) rm -f "$bin" ;;
		esac
	done
}

# libraries FILE...: "guest-path host-path" for the loader and the shared
# libraries that FILE needs, and those they need, from A_LIBS.
libraries() {
	local seen=" " todo=("$@") f lib
	while [ ${#todo[@]} -gt 0 ]; do
		f=${todo[0]}
		todo=("${todo[@]:1}")
		for lib in $(readelf -lW "$f" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p') \
			$(readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			lib=/lib/${lib##*/}
			case $seen in *" $lib "*) continue ;; esac
			seen="$seen$lib "
			[ -e "$A_LIBS/${lib#/lib/}" ] || { echo "no ${lib#/lib/} in $A_LIBS" >&2; return 1; }
			echo "$lib $(readlink -f "$A_LIBS/${lib#/lib/}")"
			todo+=("$A_LIBS/${lib#/lib/}")
		done
	done
}

# The initramfs: /init, /dev/console, /tests/*, /bench/*, and /lib for
# dynamic programs. Made by the kernel's own usr/gen_init_cpio, so no root
# or device nodes are needed on the host.
make_initramfs() {
	local list=$guest/initramfs.list f libs=
	if [ -n "$A_LIBS" ]; then
		libs=$(libraries "$guest/init" "$guest"/tests/* "$guest"/bench/*)
		# glibc loads libgcc_s with dlopen() to unwind a cancelled
		# thread (uffd-stress cancels its threads).
		if [ -e "$A_LIBS/libgcc_s.so.1" ]; then
			libs=$(printf '%s\n/lib/libgcc_s.so.1 %s' "$libs" \
				"$(readlink -f "$A_LIBS/libgcc_s.so.1")")
		fi
	fi
	{
		echo "dir /dev 0755 0 0"
		echo "nod /dev/console 0600 0 0 c 5 1"
		echo "dir /proc 0755 0 0"
		echo "dir /sys 0755 0 0"
		echo "dir /tmp 1777 0 0"
		echo "dir /tests 0755 0 0"
		echo "dir /bench 0755 0 0"
		echo "file /init $guest/init 0755 0 0"
		for f in "$guest"/tests/* "$guest"/bench/*; do
			[ -e "$f" ] &&
				echo "file /$(basename "$(dirname "$f")")/$(basename "$f") $f 0755 0 0"
		done
		if [ -n "$libs" ]; then
			echo "dir /lib 0755 0 0"
			echo "$libs" | while read -r g h; do echo "file $g $h 0755 0 0"; done
		fi
	} >"$list"
	"$out/usr/gen_init_cpio" "$list" >"$guest/initramfs.cpio.tmp"
	mv "$guest/initramfs.cpio.tmp" "$guest/initramfs.cpio"
}

note "build $name"
mkdir -p "$out"
if [ $guest_only = 0 ]; then
	step "configure ($name)" "$log/config.log" configure
	step "kernel ($name)" "$log/kernel.log" compile_kernel
else
	[ -x "$out/usr/gen_init_cpio" ] || die "$name: no kernel built yet: build.sh $name first"
fi
if [ ${#guest_cc[@]} -gt 0 ]; then
	step "guest programs ($name)" "$log/guest.log" compile_guest
fi
if [ $A_BOOT != none ]; then
	step "initramfs ($name)" "$log/initramfs.log" make_initramfs
fi
