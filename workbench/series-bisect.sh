#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# series-bisect.sh: builds every prefix of the mailing-list series (branch
# 'series' of build/src, made by 'make series') for x86_64 with the project
# config (fault-retry.config + fault-retry-x86_64.config +
# fault-retry-rust.config), twice: with CONFIG_RUST_FAULT_LOOP off and on. A prefix
# passes when both kernels build without a warning that the base does not
# have (the base has a few with clang 14: stack frames over 1024 bytes,
# objtool). While the option does not exist yet the two configs are the
# same, and one build counts for both.
#
# The prefixes are checked out in build/bisect/src (a worktree of build/src)
# and built incrementally in build/bisect/{off,on}; the fragments are the
# repo's own, whichever commit is checked out. Slow (one kernel build per
# prefix and config, incremental): not part of make check. The result goes to
# build/results/series-bisect.txt, which make series quotes in the cover
# letter while the series' trees are the same. A prefix that passed before
# with the same tree, fragments and toolchain is not built again
# (build/bisect/passed/).
. "$(dirname "$0")/lib.sh"

BIS=$BUILD/bisect
WT=$BIS/src
git -C "$SRC" rev-parse -q --verify series >/dev/null ||
	die "no 'series' branch in build/src: run 'make series' first"

commits=$(git -C "$SRC" rev-list --reverse base..series)
n=$(echo "$commits" | wc -l)
key=$(git -C "$SRC" log --format=%T base..series | sha256sum | cut -d' ' -f1)

git -C "$SRC" worktree prune
if [ ! -e "$WT/.git" ]; then
	mkdir -p "$BIS"
	note "series-bisect: checking out a worktree in build/bisect/src"
	git -C "$SRC" worktree add -q --detach "$WT" base
fi
# The make of the assembled tree, pointed at the worktree.
SRC=$WT

mkdir -p "$BIS"
echo '# CONFIG_RUST_FAULT_LOOP is not set' >"$BIS/rust-loop-off.config"
frags_on=("$ROOT/kernel/configs/fault-retry.config" "$ROOT/kernel/configs/fault-retry-x86_64.config"
	"$ROOT/kernel/configs/fault-retry-rust.config")
frags_off=("${frags_on[@]}" "$BIS/rust-loop-off.config")

# configure OUT FRAGMENTS...: tinyconfig + fragments, then checks that Rust
# is on (a prefix built without Rust would prove nothing).
configure() {
	local out=$1
	shift
	mkdir -p "$out"
	merge_fragments x86_64 "$out" "$@"
	grep -qx 'CONFIG_RUST=y' "$out/.config" || { echo "CONFIG_RUST is off"; return 1; }
}

# warnings LOG: the warnings of a build log, without the tree's path.
warnings() {
	grep -E '(^|[ :])warning:' "$1" | sed "s|$WT/||g" | sort -u || true
}

# build OUT: the kernel, and no warning that the base's build does not have.
build() {
	local new
	kmake x86_64 O="$1" bzImage 2>&1 | tee "$1/build.log"
	[ "${PIPESTATUS[0]}" = 0 ] || return 1
	new=$(warnings "$1/build.log" | comm -23 - "$BIS/base-warnings.txt")
	if [ -n "$new" ]; then
		echo "new warnings:"
		echo "$new"
		return 1
	fi
}

mkdir -p "$RESULTS" "$LOGS/series-bisect"
report=$RESULTS/series-bisect.txt
rm -f "$report"

# The warnings of the base itself, from a full build of it (once per base).
base_id=$(git -C "$SRC" rev-parse base)
# The warnings depend on the compiler, and on ccache's relative paths.
warn_id="$base_id $(clang-$LLVM_VERSION --version | head -n 1) ccache"
if [ "$(cat "$BIS/base-warnings.id" 2>/dev/null)" != "$warn_id" ]; then
	note "[base] $(git -C "$SRC" log -1 --format=%s base)"
	git -C "$WT" checkout -q --detach base
	step "configure (off)" "$LOGS/series-bisect/00-config-off.log" \
		configure "$BIS/off" "${frags_off[@]}" || die "cannot configure the base"
	base_build() {
		kmake x86_64 O="$BIS/off" clean
		kmake x86_64 O="$BIS/off" bzImage
	}
	step "full build of the base, for its warnings" "$LOGS/series-bisect/00-base.log" base_build ||
		die "the base does not build"
	warnings "$LOGS/series-bisect/00-base.log" >"$BIS/base-warnings.txt"
	echo "$warn_id" >"$BIS/base-warnings.id"
	note "  the base has $(wc -l <"$BIS/base-warnings.txt") warning line(s); only others fail a prefix"
fi
# passed_key COMMIT: what a pass of COMMIT depends on.
passed_key() {
	{
		git -C "$SRC" rev-parse "$1^{tree}"
		cat "${frags_on[@]}"
		"$RUSTC_BIN" --version
		clang-$LLVM_VERSION --version | head -n 1
	} | sha256sum | cut -d' ' -f1
}
mkdir -p "$BIS/passed"

pass=0 fail=0 i=0
lines=()
for c in $commits; do
	i=$((i + 1))
	subject=$(git -C "$SRC" log -1 --format=%s "$c")
	pkey=$(passed_key "$c")
	if [ -f "$BIS/passed/$pkey" ]; then
		note "[$i/$n] $subject: passed before (same tree, configs, toolchain)"
		pass=$((pass + 1))
		lines+=("$(printf 'ok   %02d %s (%s)' "$i" "$subject" "$(cat "$BIS/passed/$pkey")")")
		continue
	fi
	prev=$(git -C "$WT" rev-parse HEAD)
	git -C "$WT" checkout -q --detach "$c"
	note "[$i/$n] $subject"
	log=$LOGS/series-bisect/$(printf %02d "$i")
	# Configure again when a Kconfig file changed (or on the first prefix).
	if [ ! -f "$BIS/off/.config" ] || [ "$prev" = "$base_id" ] ||
		git -C "$WT" diff --name-only "$prev" "$c" | grep -q 'Kconfig'; then
		step "configure (off)" "$log-config-off.log" configure "$BIS/off" "${frags_off[@]}" || true
		step "configure (on)" "$log-config-on.log" configure "$BIS/on" "${frags_on[@]}" || true
	fi
	ok_off=0 ok_on=0
	step "build, Rust loop off" "$log-off.log" build "$BIS/off" && ok_off=1
	if cmp -s "$BIS/off/.config" "$BIS/on/.config"; then
		note "  (the option does not exist yet: the same config)"
		ok_on=$ok_off
		on="same"
	else
		step "build, Rust loop on" "$log-on.log" build "$BIS/on" && ok_on=1
		on="built"
	fi
	if [ $ok_off = 1 ] && [ $ok_on = 1 ]; then
		pass=$((pass + 1))
		lines+=("$(printf 'ok   %02d %s (on: %s)' "$i" "$subject" "$on")")
		echo "on: $on; passed $(date -u +%Y-%m-%d)" >"$BIS/passed/$pkey"
	else
		fail=$((fail + 1))
		lines+=("$(printf 'FAIL %02d %s (off: %s, on: %s)' "$i" "$subject" \
			"$([ $ok_off = 1 ] && echo ok || echo FAIL)" "$([ $ok_on = 1 ] && echo ok || echo FAIL)")")
	fi
done

{
	echo "# make series-bisect: every prefix of the series, x86_64, Rust loop off and on"
	echo "series-trees: $key"
	printf '%s\n' "${lines[@]}"
	echo "$pass passed, $fail failed"
} >"$report"
cat "$report"
[ $fail = 0 ]
