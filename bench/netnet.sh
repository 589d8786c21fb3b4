#!/usr/bin/env bash
# bench/netnet.sh - two sandboxes on one sbx network, side by side with the
# kernel's bridge and with rootless podman.
#
# Measures sandbox-to-sandbox:
#   1. TCP throughput (iperf3, one stream, SECONDS) from one to the other;
#   2. latency: ping round trip (busybox ping, COUNT pings 50 ms apart);
# through
#   sbx      two `sbx run --network NAME` sandboxes (the sbx-switch process
#            between their taps; MTU 65520)
#   bridge   a kernel bridge and two veth pairs in one user namespace made by
#            this script (unshare -Urn): what a bridge in a per-user network
#            namespace would give (MTU 1500, the veth default, and 65520)
#   podman   two rootless podman containers on one `podman network create`
#            network, when podman and its network stack work here
# All traffic stays inside namespaces this script made.  See --help.

set -u -o pipefail
export LC_ALL=C

PROG=${0##*/}
SELF=$(readlink -f -- "$0")
REPO=$(cd -- "$(dirname -- "$SELF")/.." && pwd)

SECONDS_T=5
COUNT=40
SBX=$REPO/build/src/sbx
MKIMAGE=$REPO/tests/fixtures/mkimage.py
WORKDIR=

usage() {
	cat <<EOF
Usage: $PROG [-t SECONDS] [-n COUNT] [--sbx PATH] [--help]

TCP throughput (iperf3 -t SECONDS, one stream) and ping round trip (COUNT
pings) between two sandboxes on one sbx network, between two network
namespaces on a kernel bridge in a user namespace, and between two rootless
podman containers on one podman network (if podman works here).

Needs: /dev/net/tun mode 0666, iperf3, busybox, python3.  Optional: podman.
Run as an unprivileged user; started as root it re-runs itself as
\$SBX_BENCH_USER (default: the first of sbxtest, sbxdev that exists).
EOF
}

die() { echo "$PROG: $*" >&2; exit 2; }
note() { echo "$PROG: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	-t) [ $# -ge 2 ] || die "-t needs a value"; SECONDS_T=$2; shift 2 ;;
	-n) [ $# -ge 2 ] || die "-n needs a value"; COUNT=$2; shift 2 ;;
	--sbx) [ $# -ge 2 ] || die "--sbx needs a value"; SBX=$2; shift 2 ;;
	--_workdir) WORKDIR=$2; shift 2 ;;
	--_mkimage) MKIMAGE=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
case $SECONDS_T in ''|*[!0-9]*|0) die "-t wants a positive integer" ;; esac
case $COUNT in ''|*[!0-9]*|0) die "-n wants a positive integer" ;; esac
case $SBX in /*) ;; *) SBX=$(readlink -f -- "$SBX") ;; esac
for h in sbx sbx-store sbx-net sbx-switch; do
	[ -x "$(dirname -- "$SBX")/$h" ] || die "$h not found beside $SBX (ninja -C $REPO/build)"
done
IPERF=$(command -v iperf3) || die "iperf3 is needed (apt-get install iperf3)"
BUSYBOX=$(command -v busybox) || die "busybox is needed"

if [ "$(id -u)" -eq 0 ]; then
	. "$(dirname -- "$SELF")/lib.sh"
	bench_pick_user
	extra=()
	[ -x "$(dirname -- "$SBX")/sbx-oci" ] && extra=("$(dirname -- "$SBX")/sbx-oci")
	bench_stage "$SBX" "$SELF" "$MKIMAGE" "${extra[@]}"
	bench_run_as_user bash "$W/bin/netnet.sh" -t "$SECONDS_T" -n "$COUNT" --sbx "$W/bin/sbx" \
		--_mkimage "$W/bin/mkimage.py" --_workdir "$W"
	exit $?
fi

if [ -n "$WORKDIR" ]; then
	W=$WORKDIR
else
	W=$(mktemp -d /dev/shm/sbx-netnet.XXXXXX) || die "cannot make a temp dir"
	trap 'rm -rf -- "$W"' EXIT
fi
mkdir -p "$W/rt" "$W/home" "$W/logs" && chmod 0700 "$W/rt"
export XDG_RUNTIME_DIR=$W/rt HOME=$W/home
STORE=$W/store
sbxc() { "$SBX" "$1" --root "$STORE" "${@:2}"; }

# iperf3 with its libraries, and busybox for sh and ping, as a rootfs image.
R=$W/root
mkdir -p "$R/bin" "$R/etc" "$R/tmp" && chmod 1777 "$R/tmp"
printf 'root:x:0:0:root:/:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
cp -- "$IPERF" "$R/bin/iperf3" && cp -- "$BUSYBOX" "$R/bin/busybox" || die "cannot copy"
for t in sh ping sleep; do ln -s busybox "$R/bin/$t"; done
while read -r lib; do
	mkdir -p "$R$(dirname -- "$lib")" && cp -L -- "$lib" "$R$lib"
done < <(ldd "$IPERF" "$BUSYBOX" 2>/dev/null | grep -o '/[^ ]*' | grep -v ':$' | sort -u)
tar -C "$R" -cf "$W/img.tar" . && "$SBX" load --root "$STORE" -q --rootfs --name netnet \
	"$W/img.tar" >"$W/logs/load.log" 2>&1 || die "cannot load the image: $(tail -1 "$W/logs/load.log")"

# ping's "time=X ms" lines -> "median (min)" in ms: the mean of a few pings
# on a loaded host is one scheduling delay's
ping_avg() {
	sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -n |
		awk '{ t[NR] = $1 } END { if (NR) printf "%.3f (%.3f)", t[int((NR + 1) / 2)], t[1] }'
}
# iperf3 -J on stdin -> Gbit/s received
iperf_gbit() {
	python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null
}
row() { printf '%-34s %12s %24s\n' "$1" "$2" "$3"; }

echo "two sandboxes on one network: iperf3 -t $SECONDS_T (one stream), ping x $COUNT"
row "" "TCP Gbit/s" "ping ms: median (min)"

# --- sbx -------------------------------------------------------------------
sbx_net() {
	sbxc network create bench >/dev/null || return 1
	sbxc run -q -d --name srv --network bench netnet iperf3 -s >/dev/null || return 1
	sleep 1
	local gbit ms
	gbit=$(sbxc run -q --network bench netnet iperf3 -J -c srv -t "$SECONDS_T" | iperf_gbit)
	ms=$(sbxc run -q --network bench netnet ping -c "$COUNT" -i 0.05 srv | ping_avg)
	sbxc rm -f srv >/dev/null 2>&1
	sleep 0.5
	sbxc network rm bench >/dev/null 2>&1
	row "sbx (sbx-switch, MTU 65520)" "${gbit:-failed}" "${ms:-failed}"
	[ -n "$gbit" ]
}
sbx_net
SBX_STATUS=$?

# --- kernel bridge in a user namespace -------------------------------------
bridge() {
	local mtu=$1
	unshare -Urn --kill-child sh -c '
		ip link set lo up && ip link add br0 mtu '"$mtu"' type bridge && ip link set br0 up || exit 1
		unshare -n sleep 600 & A=$!
		unshare -n sleep 600 & B=$!
		sleep 0.2
		i=10
		for p in $A $B; do
			ip link add v$p mtu '"$mtu"' type veth peer name eth0 mtu '"$mtu"' netns $p
			ip link set v$p master br0 && ip link set v$p up
			nsenter -t $p -n sh -c "ip link set lo up; ip addr add 10.77.0.$i/24 dev eth0; ip link set eth0 up"
			i=$((i + 1))
		done
		nsenter -t $A -n iperf3 -s -1 >/dev/null 2>&1 &
		sleep 0.5
		nsenter -t $B -n iperf3 -J -c 10.77.0.10 -t '"$SECONDS_T"' >"'"$W"'/bridge.json"
		nsenter -t $B -n '"$BUSYBOX"' ping -c '"$COUNT"' -i 0.05 10.77.0.10 >"'"$W"'/bridge.ping"
		kill $A $B' 2>"$W/logs/bridge.log" || { row "kernel bridge + veth, MTU $mtu" "failed: $(tail -1 "$W/logs/bridge.log")" ""; return; }
	row "kernel bridge + veth, MTU $mtu" "$(iperf_gbit <"$W/bridge.json")" "$(ping_avg <"$W/bridge.ping")"
}
bridge 1500
bridge 65520

# --- rootless podman ---------------------------------------------------------
podman_net() {
	command -v podman >/dev/null || { row "podman" "not installed" ""; return; }
	local P=(podman --root "$W/podman" --runroot "$W/rt/podman" --storage-driver vfs
		--cgroup-manager cgroupfs)
	# podman's own runtime (crun) may not start here (cgroup v1/v2 hybrid
	# hosts); sbx-oci only runs the process: the network is podman's.
	local oci
	oci=$(dirname -- "$SBX")/sbx-oci
	CG=(--cgroups=disabled)
	[ -x "$oci" ] && P+=(--runtime "$oci") && CG=()
	if ! "${P[@]}" load -q -i "$W/img.tar" >"$W/logs/podman.log" 2>&1; then
		# a rootfs tar is not an image archive: import it
		"${P[@]}" import -q "$W/img.tar" localhost/netnet >>"$W/logs/podman.log" 2>&1 ||
			{ row "podman" "import failed" ""; return; }
	fi
	"${P[@]}" network create netnet >>"$W/logs/podman.log" 2>&1 ||
		{ row "podman" "no networks: $(tail -1 "$W/logs/podman.log")" ""; return; }
	if ! "${P[@]}" run "${CG[@]}" -d --name srv --network netnet localhost/netnet iperf3 -s \
		>>"$W/logs/podman.log" 2>&1; then
		row "podman" "run failed: $(tail -1 "$W/logs/podman.log" | cut -c1-60)" ""
		"${P[@]}" network rm -f netnet >/dev/null 2>&1
		return
	fi
	sleep 1
	local gbit ms ip
	# by address: name resolution needs podman's aardvark-dns (netavark)
	ip=$("${P[@]}" inspect srv --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
	gbit=$("${P[@]}" run "${CG[@]}" --rm --network netnet localhost/netnet iperf3 -J -c "$ip" -t "$SECONDS_T" | iperf_gbit)
	ms=$("${P[@]}" run "${CG[@]}" --rm --cap-add NET_RAW --network netnet localhost/netnet ping -c "$COUNT" -i 0.05 "$ip" | ping_avg)
	"${P[@]}" rm -f srv >/dev/null 2>&1
	"${P[@]}" network rm -f netnet >/dev/null 2>&1
	row "podman (rootless, one network: $("${P[@]}" info --format '{{.Host.NetworkBackend}}' 2>/dev/null))" "${gbit:-failed}" "${ms:-failed}"
	[ -x "$oci" ] && echo "  (podman ran its containers with --runtime sbx-oci: its network is podman's own)"
}
podman_net
[ "$SBX_STATUS" = 0 ] || exit 1
