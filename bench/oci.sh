#!/usr/bin/env bash
# bench/oci.sh - `podman run --rm busybox true` with sbx-oci as the runtime,
# next to runc (and crun when it can start anything on this host).
#
# Rootless podman, as the calling user (as root: as sbx-test, the tests'
# user with a subuid range), with storage, run root and XDG_RUNTIME_DIR in a
# temp dir on /dev/shm (removed on exit), the busybox fixture loaded with
# `podman load` (never pulled), `--network none` so no network helper runs.
# Prints the median wall time of each runtime over N runs.
# Measured here (2 cores shared with other jobs, load ~4, podman 4.3.1, runc 1.1.5,
# sbx-oci without sanitizers): sbx-oci 208 ms / runc 231 ms (20 runs); 214 / 210 ms (30 runs):
# the same within the noise, podman's own work dominating. crun 1.8.1 starts nothing here.
# Rootless containerd (ctr run --rm, 2026-12, load ~10): sbx-oci median 83-137 ms; runc and
# crun cannot start anything there on this hybrid-cgroup host (both fail on cgroups).
# Then the same through containerd's runc shim (when containerd, ctr and rootlesskit are
# installed): rootless containerd in rootlesskit (as tests/cli/test_containerd.py runs it),
# `ctr run --rm --runc-binary RUNTIME busybox true`, each runtime N times.
# Usage: [SBX_OCI=PATH] bench/oci.sh [RUNS] (default 20)
set -u -o pipefail
export LC_ALL=C
REPO=$(cd -- "$(dirname -- "$(readlink -f -- "$0")")/.." && pwd)
RUNS=${1:-20}
OCI=${SBX_OCI:-$REPO/build/src/sbx-oci}  # SBX_OCI: e.g. a build without sanitizers
IMAGE=$REPO/build/tests/fixtures/busybox-legacy.tar
if [ "$(id -u)" = 0 ]; then
	[ -x "$OCI" ] && [ -f "$IMAGE" ] || { echo "build first (ninja -C build)" >&2; exit 1; }
	W=$(mktemp -d /dev/shm/sbx-oci-bench.XXXXXX)
	chmod 755 "$W"
	cp "$OCI" "$IMAGE" "$W/"
	cp "$0" "$W/oci.sh"
	chown -R sbx-test: "$W"
	trap 'rm -rf "$W"' EXIT
	su sbx-test -s /bin/bash -c "cd $W && $W/oci.sh --as-user $W $RUNS"
	exit $?
fi
rm_w=""  # what the EXIT trap removes: $W when this process made it (root's parent does otherwise)
if [ "${1:-}" = --as-user ]; then W=$2; RUNS=$3; OCI=$W/sbx-oci; IMAGE=$W/busybox-legacy.tar
else W=$(mktemp -d /dev/shm/sbx-oci-bench.XXXXXX); rm_w=$W; trap 'rm -rf "$W"' EXIT; fi
export HOME=$W/home XDG_RUNTIME_DIR=$W/xdg
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
P=(podman --cgroup-manager cgroupfs --storage-driver vfs --root "$W/storage" --runroot "$W/run")
"${P[@]}" load -q -i "$IMAGE" >/dev/null || exit 1
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for rt in "$OCI" "$(command -v runc)" "$(command -v crun)"; do
	[ -x "$rt" ] || continue
	if ! "${P[@]}" --runtime "$rt" run --rm --pull=never --network none localhost/busybox true \
		>/dev/null 2>&1; then
		echo "$(basename "$rt"): cannot run here, skipped"
		continue
	fi
	for _ in $(seq "$RUNS"); do
		s=$(date +%s%N)
		"${P[@]}" --runtime "$rt" run --rm --pull=never --network none localhost/busybox true
		echo $(( ($(date +%s%N) - s) / 1000000 ))
	done | median | xargs printf "%-8s median %s ms over $RUNS runs\n" "$(basename "$rt")"
done
"${P[@]}" system migrate >/dev/null 2>&1 || true

# containerd: its own root, state and sockets under $W/ctrd; ctr joins the daemon's
# namespaces (it mounts the snapshot to read the image's /etc/passwd).
for t in containerd ctr rootlesskit nsenter; do
	command -v "$t" >/dev/null || { echo "containerd: $t not installed, skipped"; exit 0; }
done
C=$W/ctrd
mkdir -p "$C"
printf '%s\n' 'version = 2' "root = \"$C/root\"" "state = \"$C/state\"" \
	'disabled_plugins = ["io.containerd.grpc.v1.cri"]' '[grpc]' "  address = \"$C/sock\"" \
	'[ttrpc]' "  address = \"$C/sock.ttrpc\"" '[plugins."io.containerd.internal.v1.opt"]' \
	"  path = \"$C/opt\"" >"$C/config.toml"
rootlesskit --net=host --copy-up=/run --propagation=rslave --state-dir="$C/rk" \
	containerd --config "$C/config.toml" >"$C/log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; [ -z "$rm_w" ] || rm -rf "$rm_w"' EXIT
ctr() { nsenter -U --preserve-credentials -m -t "$(cat "$C/rk/child_pid")" \
	ctr --address "$C/sock" "$@"; }
for _ in $(seq 100); do
	[ -S "$C/sock" ] && [ -f "$C/rk/child_pid" ] && ctr version >/dev/null 2>&1 && break
	sleep 0.1
done
ctr images import --snapshotter native "$IMAGE" >/dev/null || { echo "containerd: no image"; exit 1; }
n=0
run() {
	n=$((n + 1))
	ctr run --rm --snapshotter native --runc-binary "$1" docker.io/library/busybox:latest "b$n" true
}
for rt in "$OCI" "$(command -v runc)" "$(command -v crun)"; do
	[ -x "$rt" ] || continue
	if ! why=$(run "$rt" 2>&1); then
		echo "containerd $(basename "$rt"): cannot run here (${why:0:200}), skipped"
		continue
	fi
	for _ in $(seq "$RUNS"); do
		s=$(date +%s%N)
		run "$rt"
		echo $(( ($(date +%s%N) - s) / 1000000 ))
	done | median | xargs printf "containerd %-6s median %s ms over $RUNS runs\n" "$(basename "$rt")"
done
