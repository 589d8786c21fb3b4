#!/usr/bin/env bash
# bench/pull.sh - `sbx pull` from a local registry next to `sbx load` of the
# same image as an OCI archive, `skopeo copy` (download only) and
# `podman pull` (when installed), into empty stores on tmpfs.
#
# The image (three gzip layers of files from /usr, --size MB of tar, 50/30/20%)
# is built here, untimed, and pushed with skopeo to Debian's docker-registry,
# started on 127.0.0.1 with a CA made here. Runs alternate (pull, load,
# skopeo, podman, pull, ...). Prints the median wall time of each, the median
# CPU time it cost (its own user+sys, plus docker-registry's for the ones
# that download: on a shared machine this is the steadier figure), and
# pull/load and podman/pull ratios of both. No traffic leaves 127.0.0.1.
#
# Figures (2 cores, Debian 12, tmpfs, 500 MB; median of 7; the machine was
# shared with other builds, so wall times wander by up to 2x between runs):
#                      pull s  load s  podman s  pull/load  podman/pull
#   before: wall        3.93    3.23     9.22      1.21        2.35
#           CPU         3.11    2.43     8.95      1.28        2.88
#   after:  wall        2.52    2.37     7.12      1.07        2.82
#           CPU         2.63    2.25     8.36      1.17        3.18
#   after, again: wall  3.00    2.64     8.89      1.13        2.97
#           CPU         2.80    2.38     9.00      1.18        3.21
# (before: each layer's thread ran its transfer (TLS, HTTP/2 framing) between
# reads, with a fresh buffer per chunk; after: a fetcher thread per blob,
# curl's callback copying into one 16 MiB ring the unpacker drains, HTTP/1.1
# for blobs. The CPU left over load's is TLS, recv and docker-registry.)
#
# Usage: bench/pull.sh [-n RUNS] [--size MB] [--sbx PATH] [--keep]
# Started as root, it re-runs itself as $SBX_BENCH_USER (bench/lib.sh).

set -u -o pipefail
export LC_ALL=C
PROG=${0##*/}
SELF=$(readlink -f -- "$0")
REPO=$(cd -- "$(dirname -- "$SELF")/.." && pwd)
RUNS=3
SIZE=500
SBX=$REPO/build/src/sbx
KEEP=0
WORKDIR=

die() { echo "$PROG: $*" >&2; exit 2; }
note() { echo "$PROG: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	-n) RUNS=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--sbx) SBX=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--_workdir) WORKDIR=$2; shift 2 ;;
	-h|--help) sed -n '2,30p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1" ;;
	esac
done
case $RUNS in ''|*[!0-9]*|0) die "-n wants a positive integer" ;; esac
case $SIZE in ''|*[!0-9]*) die "--size wants MB" ;; esac
case $SBX in /*) ;; *) SBX=$(readlink -f -- "$SBX") ;; esac
[ -x "$SBX" ] && [ -x "$(dirname -- "$SBX")/sbx-store" ] || die "no sbx (and sbx-store) at $SBX"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time, Debian's time) is needed"
for t in python3 docker-registry skopeo openssl; do
	command -v "$t" >/dev/null || die "$t is needed"
done

if [ "$(id -u)" -eq 0 ]; then
	. "$(dirname -- "$SELF")/lib.sh"
	bench_pick_user
	bench_stage "$SBX" "$SELF"
	flags=()
	[ "$KEEP" = 1 ] && flags+=(--keep)
	bench_run_as_user bash "$W/bin/pull.sh" -n "$RUNS" --size "$SIZE" --sbx "$W/bin/sbx" \
		"${flags[@]}" --_workdir "$W"
	exit $?
fi

if [ -n "$WORKDIR" ]; then W=$WORKDIR; else W=$(mktemp -d /dev/shm/sbx-bench.XXXXXX) || die "no /dev/shm"; fi
REG_PID=
rm_tree() {
	[ -e "$1" ] || return 0
	rm -rf -- "$1" 2>/dev/null
	[ -e "$1" ] && unshare --map-root-user --map-auto -- rm -rf -- "$1" 2>/dev/null
	return 0
}
cleanup() {
	[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
	[ "$KEEP" = 1 ] && { note "kept $W"; return; }
	rm_tree "$W/store"; rm_tree "$W/podman"; rm -rf -- "$W" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$W/home" "$W/pki" "$W/reg" "$W/tmp" || die "cannot write to $W"
export HOME=$W/home TMPDIR=$W/tmp   # skopeo unpacks an oci-archive in $TMPDIR

# --- the image ----------------------------------------------------------------
note "building a ${SIZE} MB three-layer gzip OCI archive (untimed)"
python3 - "$W/image.tar" "$SIZE" <<'PY' || die "cannot build the image"
import gzip, hashlib, io, json, os, sys, tarfile
out, size = sys.argv[1], int(sys.argv[2]) * 10**6
files = []
for top in ("/usr/lib", "/usr/share", "/usr/bin"):
    for root, dirs, names in os.walk(top):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p) and os.access(p, os.R_OK):
                files.append(p)
shares, blobs, layers, diff_ids, pos = (0.5, 0.3, 0.2), {}, [], [], 0
for share in shares:
    buf, want = io.BytesIO(), size * share
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        while buf.tell() < want and pos < len(files):
            try:
                t.add(files[pos], arcname=files[pos].lstrip("/"), recursive=False)
            except OSError:
                pass
            pos += 1
    raw = buf.getvalue()
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    d = "sha256:" + hashlib.sha256(gz).hexdigest()
    blobs[d] = gz
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": len(gz)})
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
cfg = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd = "sha256:" + hashlib.sha256(cfg).hexdigest()
blobs[cd] = cfg
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                  "layers": layers}).encode()
md = "sha256:" + hashlib.sha256(man).hexdigest()
blobs[md] = man
index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": md, "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}).encode()
layout = out + ".d"  # the same image as a layout directory, for skopeo to push
os.makedirs(layout + "/blobs/sha256", exist_ok=True)
for d, b in blobs.items():
    with open(layout + "/blobs/sha256/" + d[7:], "wb") as f:
        f.write(b)
with open(layout + "/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}')
with open(layout + "/index.json", "wb") as f:
    f.write(index)
with tarfile.open(out, "w") as t:
    def add(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.uid, ti.gid = os.getuid(), os.getgid()
        t.addfile(ti, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    for d, b in blobs.items():
        add("blobs/sha256/" + d[7:], b)
    add("index.json", index)
PY

# --- the registry --------------------------------------------------------------
cd "$W/pki" || die "no $W/pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=bench CA" 2>/dev/null &&
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" 2>/dev/null &&
printf 'subjectAltName=IP:127.0.0.1\n' > ext.cnf &&
openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext.cnf 2>/dev/null ||
	die "openssl failed"
cd "$W" || exit 2
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > reg/config.yml <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/reg/data}}
http: {addr: 127.0.0.1:$PORT, tls: {certificate: $W/pki/srv.crt, key: $W/pki/srv.key}}
EOF
docker-registry serve reg/config.yml > reg/log 2>&1 &
REG_PID=$!
mkdir -p "$W/cadir" "$HOME/.config/containers/certs.d/127.0.0.1:$PORT"
cp pki/ca.crt "$W/cadir/"; cp pki/ca.crt "$HOME/.config/containers/certs.d/127.0.0.1:$PORT/"
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),1)" 2>/dev/null && break
	sleep 0.1
done
REF=127.0.0.1:$PORT/bench:latest
skopeo copy --quiet --dest-cert-dir "$W/cadir" "oci:$W/image.tar.d:latest" "docker://$REF" ||
	die "skopeo could not push the image"

# --- timing ------------------------------------------------------------------------
now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$REG_PID/stat"; }  # the registry's user+sys
HZ=$(getconf CLK_TCK)
declare -A T C M MC
time_one() {  # name, cleanup-path, command...
	local name=$1 clean=$2 t0 t1 r0 r1 cpu
	shift 2
	rm_tree "$clean"
	r0=$(ticks)
	t0=$(now)
	/usr/bin/time -f '%U %S' -o "$W/cpu" "$@" >/dev/null 2>"$W/err" ||
		{ note "$name failed: $(tail -1 "$W/err")"; return 1; }
	t1=$(now)
	r1=$(ticks)
	rm_tree "$clean"
	cpu=$(awk -v reg=$((r1 - r0)) -v hz="$HZ" '{ print $1 + $2 + reg / hz }' "$W/cpu")
	T[$name]+="$(echo "$t1 - $t0" | bc -l) "
	C[$name]+="$cpu "
}
have_podman=0
command -v podman >/dev/null && have_podman=1
for r in $(seq "$RUNS"); do
	time_one "sbx pull" "$W/store" "$SBX" pull -q --root "$W/store" "$REF" || exit 1
	time_one "sbx load" "$W/store" "$SBX" load -q --root "$W/store" "$W/image.tar" || exit 1
	time_one "skopeo copy (download)" "$W/dl" skopeo copy --quiet --src-cert-dir "$W/cadir" "docker://$REF" "dir:$W/dl"
	[ "$have_podman" = 1 ] && time_one "podman pull" "$W/podman" podman --root "$W/podman/root" \
		--runroot "$W/podman/run" pull -q --tls-verify=false "$REF"
done
printf '\n%-26s %10s %10s\n' "median of $RUNS ($SIZE MB)" "seconds" "CPU s"
for k in "sbx pull" "sbx load" "skopeo copy (download)" "podman pull"; do
	[ -n "${T[$k]:-}" ] || { printf '%-26s %10s\n' "$k" "n/a"; continue; }
	M[$k]=$(echo "${T[$k]}" | tr ' ' '\n' | grep . | median)
	MC[$k]=$(echo "${C[$k]}" | tr ' ' '\n' | grep . | median)
	printf '%-26s %10.2f %10.2f\n' "$k" "${M[$k]}" "${MC[$k]}"
done
echo "(CPU s: the tool's user+sys, plus docker-registry's while it ran)"
printf '\npull / load: %.2f (target <= 1.2); CPU %.2f\n' "$(echo "${M[sbx pull]} / ${M[sbx load]}" | bc -l)" \
	"$(echo "${MC[sbx pull]} / ${MC[sbx load]}" | bc -l)"
[ -n "${M[podman pull]:-}" ] &&
	printf 'podman pull / sbx pull: %.2f (target >= 2); CPU %.2f\n' \
		"$(echo "${M[podman pull]} / ${M[sbx pull]}" | bc -l)" "$(echo "${MC[podman pull]} / ${MC[sbx pull]}" | bc -l)"
exit 0
