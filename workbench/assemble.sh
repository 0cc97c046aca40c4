#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Assembles the kernel tree in build/src: the pinned base, then one commit with
# the overlay's new files, then one commit per patch of patches/series.
#
# The commits are built in a private index first, so a patch that does not
# apply leaves build/src as it was. The final checkout rewrites only the files
# that changed, so an unchanged re-run leaves every timestamp alone and the
# incremental kernel builds rebuild nothing.
. "$(dirname "$0")/lib.sh"

read_pin
PIN="$PIN_PKG=$PIN_VERSION $PIN_SHA256"
FIXED_DATE="2000-01-01T00:00:00Z"
export GIT_AUTHOR_NAME="fault-retry workbench" GIT_AUTHOR_EMAIL="workbench@fault-retry.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_COMMITTER_DATE="$FIXED_DATE"

sha_ok() {
	[ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$PIN_SHA256" ]
}

# find_tarball: prints the path of a tarball that matches the pin, fetching
# the pinned Debian package if the one in /usr/src is absent or different.
find_tarball() {
	local sys=/usr/src/$PIN_PKG.tar.xz dl=$DL/$PIN_PKG.tar.xz deb sandbox
	if sha_ok "$sys"; then echo "$sys"; return; fi
	if sha_ok "$dl"; then echo "$dl"; return; fi
	mkdir -p "$DL"
	rm -f "$DL"/*.deb "$dl"
	# As root, apt's download sandbox user cannot write into build/: it
	# would warn and download as root anyway.
	sandbox=()
	[ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
	(cd "$DL" && apt-get "${sandbox[@]}" -q download "$PIN_PKG=$PIN_VERSION") >&2 ||
		die "cannot download Debian package $PIN_PKG=$PIN_VERSION (is it still in the archive? run 'apt-get update')"
	deb=$(ls "$DL"/*.deb)
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$PIN_PKG.tar.xz" >"$dl" ||
		die "$deb holds no usr/src/$PIN_PKG.tar.xz"
	if ! sha_ok "$dl"; then
		local got
		got=$(sha256sum "$dl" | cut -d' ' -f1)
		rm -f "$dl"
		die "checksum mismatch for $PIN_PKG=$PIN_VERSION: expected $PIN_SHA256, got $got (corrupted download, or a wrong pin in workbench/base.pin)"
	fi
	echo "$dl"
}

# ensure_base: build/src holds the unpacked base as commit 'base'.
ensure_base() {
	if [ -f "$SRC/.git/fr-base" ] && [ "$(cat "$SRC/.git/fr-base")" = "$PIN" ]; then
		return
	fi
	local tarball tmp=$BUILD/src.unpacking
	if [ -f "$SRC/.git/fr-base" ] || [ -d "$SRC" ]; then
		note "assemble: the pin changed or build/src is incomplete: unpacking the base again"
	fi
	tarball=$(find_tarball)
	rm -rf "$tmp"
	mkdir -p "$tmp"
	note "assemble: unpacking $(basename "$tarball") ($PIN_VERSION) into build/src"
	tar -xJf "$tarball" -C "$tmp" --strip-components=1 || die "cannot unpack $tarball"
	git -C "$tmp" init -q -b assembled
	git -C "$tmp" config gc.auto 0
	git -C "$tmp" add -Af .
	GIT_AUTHOR_DATE=$FIXED_DATE git -C "$tmp" commit -q --no-verify \
		-m "Linux $(make -s -C "$tmp" kernelversion 2>/dev/null) from Debian $PIN_PKG $PIN_VERSION" \
		-m "Unpacked from $PIN_PKG.tar.xz, sha256 $PIN_SHA256."
	git -C "$tmp" tag base
	git -C "$tmp" rev-parse HEAD >"$tmp/.git/fr-assembled"
	echo "$PIN" >"$tmp/.git/fr-base"
	rm -rf "$SRC"
	mv "$tmp" "$SRC"
}

# overlay_files: the project's files at in-tree paths (the top directory
# exists in the base), tracked or new, NUL-separated.
overlay_files() {
	local tops
	tops=$(git -C "$SRC" ls-tree -d --name-only base | tr '\n' '|')
	git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -f "$ROOT/$f" ] || continue
			case "|$tops" in *"|${f%%/*}|"*) printf '%s\0' "$f" ;; esac
		done
}

# Builds the commits in a private index; prints the id of the last one.
build_commits() {
	local idx=$BUILD/assemble.index head f mode blob refused=() n=0
	export GIT_INDEX_FILE=$idx
	rm -f "$idx"
	git -C "$SRC" read-tree base
	head=$(git -C "$SRC" rev-parse base)

	while IFS= read -r -d '' f; do
		if git -C "$SRC" cat-file -e "base:$f" 2>/dev/null; then
			refused+=("$f")
			continue
		fi
		mode=100644
		[ -x "$ROOT/$f" ] && mode=100755
		blob=$(git -C "$SRC" hash-object -w -- "$ROOT/$f")
		git -C "$SRC" update-index --add --cacheinfo "$mode,$blob,$f"
		n=$((n + 1))
	done < <(overlay_files)
	if [ ${#refused[@]} -gt 0 ]; then
		printf '  %s\n' "${refused[@]}" >&2
		die "these overlay files would overwrite upstream files; change upstream files only through patches/ (see README, 'Changing an upstream file')"
	fi
	if [ $n -gt 0 ]; then
		head=$(GIT_AUTHOR_DATE=$FIXED_DATE git -C "$SRC" commit-tree "$(git -C "$SRC" write-tree)" -p "$head" \
			-m "overlay: the project's new files ($n files)" \
			-m "Files the project adds at their in-tree paths; upstream files change only in the patch commits that follow.")
	fi
	echo "$head" >"$BUILD/assemble.overlay"

	local series=$ROOT/patches/series name p work info subject
	work=$(mktemp -d)
	if [ -f "$series" ]; then
		while read -r name _; do
			case "$name" in '' | '#'*) continue ;; esac
			p=$ROOT/patches/$name
			[ -f "$p" ] || die "patches/series names '$name', which does not exist"
			git mailinfo "$work/msg" "$work/patch" <"$p" >"$work/info" ||
				die "patch $name: cannot parse it as a mail or a diff"
			if ! git -C "$SRC" apply --cached --whitespace=nowarn "$work/patch" 2>"$work/err"; then
				sed 's/^/  /' "$work/err" >&2
				die "patch $name does not apply (build/src is unchanged)"
			fi
			subject=$(sed -n 's/^Subject: //p' "$work/info")
			[ -n "$subject" ] || subject="${name%.patch}"
			info() { sed -n "s/^$1: //p" "$work/info"; }
			head=$(GIT_AUTHOR_NAME=$(info Author) GIT_AUTHOR_EMAIL=$(info Email) \
				GIT_AUTHOR_DATE=$(info Date) \
				git -C "$SRC" commit-tree "$(git -C "$SRC" write-tree)" -p "$head" \
				-m "$subject" -F "$work/msg")
		done <"$series"
	fi
	rm -rf "$work"
	unset GIT_INDEX_FILE
	rm -f "$idx"
	echo "$head"
}

mkdir -p "$BUILD"
ensure_base

# Never throw away work done in build/src that was not exported to patches/.
if [ "${FORCE:-0}" != 1 ]; then
	if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no)" ]; then
		git -C "$SRC" status --short --untracked-files=no | head -n 10 >&2
		die "build/src has uncommitted changes: commit them and run 'make refresh-patches', or re-run with FORCE=1 to discard them"
	fi
	if [ "$(git -C "$SRC" rev-parse HEAD)" != "$(cat "$SRC/.git/fr-assembled")" ]; then
		die "build/src has commits that are not in patches/: run 'make refresh-patches', or re-run with FORCE=1 to discard them"
	fi
fi

commit=$(build_commits)
git -C "$SRC" checkout -q -f -B assembled "$commit"
git -C "$SRC" clean -q -fdx
git -C "$SRC" tag -f overlay "$(cat "$BUILD/assemble.overlay")" >/dev/null
echo "$commit" >"$SRC/.git/fr-assembled"
note "assemble: build/src at $(git -C "$SRC" rev-parse --short HEAD): base + $(git -C "$SRC" rev-list --count base..HEAD) commit(s)"
