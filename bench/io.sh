#!/usr/bin/env bash
# bench/io.sh - throughput of sbx's stdio relay (issue 9: without -t the
# program's stdin/stdout are pipes that sbx copies, whatever sbx's own are).
#
# Streams SIZE bytes of /dev/zero through `cat` into `wc -c`:
#   head -c SIZE /dev/zero | cat | wc -c                         (the floor)
#   head -c SIZE /dev/zero | bwrap ... cat | wc -c               (if installed)
#   head -c SIZE /dev/zero | sbx run -i --network none IMG cat | wc -c
# and prints the best wall time of RUNS, MiB/s and the ratio to `cat` alone;
# one more run of each into sha256sum checks the data came out intact (not
# timed: sha256sum is slower than the pipes).  No network is used.
#
# Measured 2026-12-01 (release build, 2 shared cores, load average 6-12 from
# other test suites, so best of 5-7 runs): cat alone 1465-1847 MiB/s, bwrap
# 1007-1524 MiB/s (it hands the pipes straight in), sbx 789-1188 MiB/s, i.e.
# sbx/cat 1.36-1.96 in wall time; sbx's relay costs ~0.3-0.45 s of system CPU
# per GiB (two splices per chunk).  Every digest matched.

set -u -o pipefail
export LC_ALL=C

PROG=${0##*/}
SELF=$(readlink -f -- "$0")
REPO=$(cd -- "$(dirname -- "$SELF")/.." && pwd)

RUNS=3
SIZE=1G
SBX=$REPO/build/src/sbx
MKIMAGE=$REPO/tests/fixtures/mkimage.py
WORKDIR=

usage() {
	cat <<EOF
Usage: $PROG [-n RUNS] [-s SIZE] [--sbx PATH] [--help]

Best of RUNS (default $RUNS) wall times for SIZE (default $SIZE, as head -c
takes it) bytes through \`cat\` into \`wc -c\`: alone, in bwrap (if
installed) and in \`sbx run -i\` (single-id mode), with MiB/s and the ratio to
\`cat\` alone; every tool's output is checked with sha256sum once.
Build sbx without sanitizers for meaningful figures, e.g.
  meson setup build-rel -Dsanitize=false --buildtype=release && ninja -C build-rel
  $PROG --sbx build-rel/src/sbx
Started as root, it re-runs itself as an unprivileged user (bench/lib.sh).
EOF
}

die() { echo "$PROG: $*" >&2; exit 2; }
note() { echo "$PROG: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	-n) RUNS=$2; shift 2 ;;
	-s) SIZE=$2; shift 2 ;;
	--sbx) SBX=$(readlink -f -- "$2"); shift 2 ;;
	--_workdir) WORKDIR=$2; shift 2 ;;   # internal (root re-exec)
	--_mkimage) MKIMAGE=$2; shift 2 ;;   # internal (root re-exec)
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ -x "$SBX" ] || die "sbx not found: $SBX (build it, or give --sbx)"
[ -r "$MKIMAGE" ] || die "fixture script not found: $MKIMAGE"

if [ "$(id -u)" -eq 0 ]; then
	. "$(dirname -- "$SELF")/lib.sh"
	bench_pick_user
	bench_stage "$SBX" "$SELF" "$MKIMAGE"
	bench_run_as_user bash "$W/bin/io.sh" -n "$RUNS" -s "$SIZE" --sbx "$W/bin/sbx" \
		--_mkimage "$W/bin/mkimage.py" --_workdir "$W"
	exit $?
fi

if [ -n "$WORKDIR" ]; then
	W=$WORKDIR
else
	W=$(mktemp -d /dev/shm/sbx-bench.XXXXXX) || die "cannot make a temp dir in /dev/shm"
	trap 'rm -rf -- "$W"' EXIT
fi
mkdir -p "$W/home" "$W/store" "$W/rootfs" || die "cannot write to $W"
IMAGE=$W/busybox.tar
python3 "$MKIMAGE" busybox --format docker-legacy --out "$IMAGE" >/dev/null 2>&1 ||
	die "building the busybox image failed (is busybox-static installed?)"
export SBX_SUBUID_FILE=/nonexistent # single-id mode: the same for every user
"$SBX" run -q --root "$W/store" --network none "$IMAGE" true ||
	die "sbx cannot run the image"

# best_of NAME CMD: best wall time (s) of RUNS runs of `CMD | wc -c` in
# $BEST, checking the count; then the digest of one run of `CMD | sha256sum`.
best_of() {
	local name=$1 cmd=$2 best= t0 t1 t out
	for _ in $(seq "$RUNS"); do
		t0=$(date +%s.%N)
		out=$(bash -c "$cmd | wc -c") || { note "$name failed"; return 1; }
		t1=$(date +%s.%N)
		[ "$out" = "$bytes" ] || die "$name: $out bytes came out of $bytes"
		t=$(echo "$t1 - $t0" | bc)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
	done
	out=$(bash -c "$cmd | sha256sum") || { note "$name failed"; return 1; }
	DIGEST=${out%% *}
	BEST=$best
}

bytes=$(head -c "$SIZE" /dev/zero | wc -c)
printf '%-8s %10s %10s %8s\n' tool seconds MiB/s ratio
declare -A T
for tool in cat bwrap sbx; do
	case $tool in
	cat) cmd="head -c $SIZE /dev/zero | cat" ;;
	bwrap)
		command -v bwrap >/dev/null || { printf '%-8s %10s\n' bwrap "not installed"; continue; }
		tar -xOf "$IMAGE" "$(tar -tf "$IMAGE" | grep 'layer.tar$' | head -1)" |
			tar -xf - -C "$W/rootfs" --no-same-owner 2>/dev/null
		cmd="head -c $SIZE /dev/zero | bwrap --unshare-all --ro-bind $W/rootfs / --dev /dev --proc /proc cat" ;;
	sbx) cmd="head -c $SIZE /dev/zero | $SBX run -q -i --root $W/store --network none $IMAGE cat 2>/dev/null" ;;
	esac
	best_of "$tool" "$cmd" || continue
	T[$tool]=$BEST
	[ "$tool" = cat ] && REF_DIGEST=$DIGEST
	[ "$DIGEST" = "$REF_DIGEST" ] || die "$tool: the data came out different ($DIGEST)"
	printf '%-8s %10.3f %10.0f %8.2f\n' "$tool" "$BEST" "$(echo "$bytes / 1048576 / $BEST" | bc -l)" \
		"$(echo "$BEST / ${T[cat]}" | bc -l)"
done
