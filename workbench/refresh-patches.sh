#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Writes the commits of build/src that follow the overlay commit back to
# patches/ (one file per commit, in order) and rewrites patches/series.
#
# The workflow for an upstream file: edit it in build/src, commit there
# (a new commit, or amend one with 'git commit --fixup' and 'git rebase -i
# --autosquash overlay'), then 'make refresh-patches'. New files are not
# patches: they belong to the overlay, at their in-tree path in this repo.
. "$(dirname "$0")/lib.sh"

[ -f "$SRC/.git/fr-assembled" ] || die "no assembled tree: run 'make tree' first"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
	die "build/src has uncommitted changes: commit them first"

# Upstream files only: a commit may not add files or touch overlay files.
bad=$(git -C "$SRC" log --format= --name-status overlay..HEAD |
	awk '$1 != "M" { print "  " $0 }')
if [ -n "$bad" ]; then
	echo "$bad" >&2
	die "these changes are not edits of upstream files: new files belong to the overlay (this repo, at their in-tree path)"
fi
while read -r f; do
	git -C "$SRC" cat-file -e "base:$f" 2>/dev/null ||
		die "$f is an overlay file: edit it in this repo, not in build/src"
done < <(git -C "$SRC" log --format= --name-only overlay..HEAD | sort -u)

tmp=$(mktemp -d)
git -C "$SRC" format-patch -q --zero-commit --no-signature --no-numbered -o "$tmp" overlay..HEAD
: >"$tmp/series.new"
for p in "$tmp"/*.patch; do
	[ -e "$p" ] || continue
	n=$(basename "$p")
	n=${n#[0-9][0-9][0-9][0-9]-}
	mv "$p" "$tmp/$n"
	echo "$n" >>"$tmp/series.new"
done

# Drop the old patch files, then put the new ones in place.
if [ -f "$ROOT/patches/series" ]; then
	while read -r n _; do
		case "$n" in '' | '#'*) continue ;; esac
		rm -f "$ROOT/patches/$n"
	done <"$ROOT/patches/series"
fi
mkdir -p "$ROOT/patches"
{
	echo "# The project's changes to upstream files, applied in this order on top"
	echo "# of the base and the overlay. Written by 'make refresh-patches'."
	cat "$tmp/series.new"
} >"$ROOT/patches/series"
while read -r n; do mv "$tmp/$n" "$ROOT/patches/$n"; done <"$tmp/series.new"
rm -rf "$tmp"
git -C "$SRC" rev-parse HEAD >"$SRC/.git/fr-assembled"
note "refresh-patches: $(grep -vc '^#' "$ROOT/patches/series" || true) patch(es) in patches/series"
