#!/usr/bin/env bash
# bench/import.sh - import throughput of `sbx load` next to its peers.
#
# Builds a large three-layer image from files of this machine's Debian
# packages (/usr/bin, /usr/lib, /usr/share, ...), packs it twice (a
# docker-archive with uncompressed layers, an OCI archive with gzip layers),
# and times `sbx load` of each next to `tar -x` of the same layers, `gzip -dc`,
# `podman load` and `umoci unpack`, printing the median seconds, MB/s and
# ratios.  Everything lives in a temp dir on /dev/shm (tmpfs, so the disk
# does not set the pace) that is removed on exit.  No network is used.
# See --help.

set -u -o pipefail
export LC_ALL=C

PROG=${0##*/}
SELF=$(readlink -f -- "$0")
REPO=$(cd -- "$(dirname -- "$SELF")/.." && pwd)

RUNS=3
SIZE=500           # MB (10^6 bytes) of uncompressed layers
SBX=$REPO/build/src/sbx
KEEP=0
LOOP=0             # 1: bash loop even when hyperfine is installed
WORKDIR=           # internal: work dir made by the root parent
NLAYERS=3
IMAGE_TAG=bench    # OCI ref name (umoci --image DIR:TAG)

usage() {
	cat <<EOF
Usage: $PROG [-n RUNS] [--size MB] [--sbx PATH] [--keep] [--loop] [--help]

Import throughput of \`sbx load\` on a large image, next to its peers.

The image is built here, untimed, from readable files under /usr/bin,
/usr/sbin, /usr/lib, /usr/libexec, /usr/include and /usr/share (whole
directories sampled at random, deterministically), split into $NLAYERS layers of
about 50/30/20% of --size MB of tar (MB = 10^6 bytes), and packed as

  docker-archive   \`docker save\` style, uncompressed layer.tar members
  OCI archive      flat index.json, layers application/vnd.oci.image.layer.v1.tar+gzip

Timed, each on a fresh output directory (removed, untimed, after every run):

  uncompressed:  tar -xf of each layer.tar into one dir (the reference)
                 sbx load --userns single / range     (range: when you have a subuid range)
                 podman load -i docker-archive        (rootless, storage in the temp dir)
  gzip:          gzip -dc of the layers > /dev/null   (decompression alone)
                 tar -xzf of each layer into one dir  (the reference)
                 sbx load --userns single / range of the OCI archive
                 podman load -i oci-archive
                 umoci unpack --rootless              (of the OCI layout the archive holds)

and prints the median wall time of each, its MB/s (uncompressed layer bytes
per second) and its speed relative to tar and to podman (higher is faster).
Peers that are not installed are listed as such; peers that fail print their
error and are skipped.  Times come from hyperfine (one run per call, with
untimed --prepare/--cleanup) when installed, else from a bash loop; each tool
gets one untimed checked run first.  Tools are timed in interleaved rounds.

Options:
  -n RUNS       timed runs per tool (default $RUNS)
  --size MB     uncompressed size of the image (default $SIZE; 50 for a quick run)
  --sbx PATH    sbx binary (default: build/src/sbx in the repository); its
                helper sbx-store must be next to it
  --keep        keep the temp dir (image, layers, logs) and print its path
  --loop        time with the bash loop even when hyperfine is installed
  -h, --help    show this help

Needs python3, GNU tar and gzip, and about 3.5 x --size MB free in /dev/shm
(inputs ~2.7x, one run's output at a time).  Run as an unprivileged user.
Started as root, the script copies sbx, sbx-store and itself into its temp
dir and re-runs itself as \$SBX_BENCH_USER (default: the first of sbxtest,
sbxdev that exists).

Exit status: 0 when sbx works (whatever the peers do), 1 when sbx fails,
2 on usage or setup errors.
EOF
}

die() { echo "$PROG: $*" >&2; exit 2; }
note() { echo "$PROG: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	-n) [ $# -ge 2 ] || die "-n needs a value"; RUNS=$2; shift 2 ;;
	-n*) RUNS=${1#-n}; shift ;;
	--runs=*) RUNS=${1#*=}; shift ;;
	--size) [ $# -ge 2 ] || die "--size needs a value"; SIZE=$2; shift 2 ;;
	--size=*) SIZE=${1#*=}; shift ;;
	--sbx) [ $# -ge 2 ] || die "--sbx needs a value"; SBX=$2; shift 2 ;;
	--sbx=*) SBX=${1#*=}; shift ;;
	--keep) KEEP=1; shift ;;
	--loop) LOOP=1; shift ;;
	--_workdir) WORKDIR=$2; shift 2 ;;   # internal (root re-exec)
	-h|--help) usage; exit 0 ;;
	*) echo "$PROG: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done
case $RUNS in ''|*[!0-9]*|0) die "-n wants a positive integer, got '$RUNS'" ;; esac
case $SIZE in ''|*[!0-9]*) die "--size wants a number of MB, got '$SIZE'" ;; esac
[ "$SIZE" -ge 5 ] || die "--size must be at least 5 (MB)"
case $SBX in /*) ;; *) SBX=$(readlink -f -- "$SBX") || die "no sbx at $SBX" ;; esac
[ -x "$SBX" ] || die "sbx binary not found or not executable: $SBX (build it: ninja -C $REPO/build)"
SBX_STORE=$(dirname -- "$SBX")/sbx-store
[ -x "$SBX_STORE" ] || die "sbx-store not found next to $SBX (they must stay side by side)"
for t in python3 tar gzip; do
	command -v "$t" >/dev/null || die "$t is needed"
done
case $(tar --version 2>/dev/null) in *"GNU tar"*) ;; *) die "GNU tar is needed" ;; esac

# Room on /dev/shm: the inputs (~2.7 x SIZE) plus one run's output.
need_mb=$(( SIZE * 7 / 2 + 64 ))
avail_mb=$(df -Pm /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')
[ -n "$avail_mb" ] || die "/dev/shm is not available"
[ "$avail_mb" -ge "$need_mb" ] ||
	die "/dev/shm has $avail_mb MB free, --size $SIZE needs about $need_mb MB"

# ---------------------------------------------------------------------------
# Started as root: re-run as an unprivileged user.
# ---------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
	. "$(dirname -- "$SELF")/lib.sh"
	bench_pick_user
	bench_stage "$SBX" "$SELF"
	flags=()
	[ "$LOOP" = 1 ] && flags+=(--loop)
	[ "$KEEP" = 1 ] && flags+=(--keep)
	bench_run_as_user bash "$W/bin/import.sh" -n "$RUNS" --size "$SIZE" --sbx "$W/bin/sbx" \
		"${flags[@]}" --_workdir "$W"
	exit $?
fi

# ---------------------------------------------------------------------------
# Unprivileged from here on.
# ---------------------------------------------------------------------------
ME=$(id -un)
HAVE_RANGE=0
if command -v newuidmap >/dev/null && command -v newgidmap >/dev/null &&
   grep -qE "^($ME|$(id -u)):" /etc/subuid 2>/dev/null &&
   grep -qE "^($ME|$(id -g)|$(id -gn)):" /etc/subgid 2>/dev/null; then
	HAVE_RANGE=1
fi

if [ -n "$WORKDIR" ]; then
	W=$WORKDIR
	OWN_W=0
else
	W=$(mktemp -d /dev/shm/sbx-bench.XXXXXX) || die "cannot make a temp dir in /dev/shm"
	OWN_W=1
fi
OUT=$W/out         # each run's output; removed before and after every run
IMG=$W/img         # the image and its layers
SAMPLER=

# rm_tree DIR: remove DIR, including files of subordinate ids (sbx --userns
# range, podman), which only a user namespace that maps them can remove.
rm_tree() {
	[ -e "$1" ] || return 0
	rm -rf -- "$1" 2>/dev/null
	[ -e "$1" ] || return 0
	chmod -R u+rwX -- "$1" 2>/dev/null
	rm -rf -- "$1" 2>/dev/null
	[ -e "$1" ] || return 0
	[ "$HAVE_RANGE" = 1 ] && unshare --map-root-user --map-auto -- rm -rf -- "$1" 2>/dev/null
	[ ! -e "$1" ]
}

kill_podman_pause() {
	local f pid comm
	# podman's rootless pause process (catatonit) holds its user namespace.
	while IFS= read -r f; do
		pid=$(cat -- "$f" 2>/dev/null) || continue
		case $pid in ''|*[!0-9]*) continue ;; esac
		comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
		case $comm in catatonit|podman*) kill "$pid" 2>/dev/null ;; esac
	done < <(find "$W" -name pause.pid 2>/dev/null)
}

cleanup() {
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
	kill_podman_pause
	if [ "$KEEP" = 1 ]; then
		[ "$OWN_W" = 1 ] && note "kept $W"
		return
	fi
	local f
	for f in "$W"/* "$W"/.[!.]*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		rm_tree "$f"
	done
	if [ "$OWN_W" = 1 ]; then
		rm -rf -- "$W" 2>/dev/null
		[ -e "$W" ] && note "warning: could not remove all of $W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
cd "$W" || die "cannot cd to $W"
mkdir -p "$W/bin" "$W/home" "$W/log" "$IMG" || die "cannot write to $W"

# Peak of the machine's Shmem (tmpfs + shm, all users), sampled twice a second.
shm_kb() {
	local k v r
	while read -r k v r; do
		[ "$k" = Shmem: ] && { echo "$v"; return; }
	done </proc/meminfo
	echo 0
}
SHM_BASE=$(shm_kb)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
(
	peak=0
	while :; do
		v=$(shm_kb)
		if [ "$v" -gt "$peak" ]; then peak=$v; echo "$peak" >"$W/shm.peak"; fi
		sleep 0.5
	done
) </dev/null >/dev/null 2>&1 &
SAMPLER=$!

# Median in seconds (3 decimals) of column COL (default 1) of the numbers
# (microseconds) on stdin.
median_s() {
	awk -v c="${1:-1}" '{ print $c }' | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f\n", m / 1e6 }'
}

# Last non-empty line of a file, or a fallback.
last_line() {
	local l
	l=$(grep -v '^[[:space:]]*$' -- "$1" 2>/dev/null | tail -n 1 | cut -c1-200)
	echo "${l:-$2}"
}

now_us() {
	if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/[.,]/}"
	else echo $(( $(date +%s%N) / 1000 )); fi
}

HYPERFINE=
if [ "$LOOP" = 0 ] && command -v hyperfine >/dev/null; then
	HYPERFINE=hyperfine
	HF_SHELL=(-N)    # no intermediate shell (hyperfine >= 1.13)
	hyperfine -N --runs 1 --style none true >/dev/null 2>&1 || HF_SHELL=()
fi

# ---------------------------------------------------------------------------
# The image (untimed)
# ---------------------------------------------------------------------------
note "building a $SIZE MB image from /usr (untimed)"
t_build=$(now_us)
mkdir -p "$IMG/lists" "$IMG/layers" "$IMG/gz" || die "cannot write to $IMG"

# Pick files: units are whole directories (their files and symlinks), or
# single files of directories too big to take whole; units are taken in a
# pseudo-random order fixed by a hash of their path until the tar bytes reach
# the target, then emitted in tree order and cut into layers of 50/30/20%.
# A file is at most 32 MB (and 10% of the image), so the mix of file sizes
# does not change much with --size.  Hard links to a file already taken cost
# only a header (tar stores them as links).  Writes NUL-separated tar lists
# (parents first) and prints "layer N MEMBERS BYTES".
python3 - "$IMG/lists" "$SIZE" "$NLAYERS" >"$W/log/select.out" 2>"$W/log/select.err" <<'EOF' ||
import hashlib, os, stat, sys

out_dir, size_mb, nlayers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
target = size_mb * 1000 * 1000
roots = ["/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec", "/usr/include", "/usr/share"]
cap = max(min(target // 10, 32 << 20), 1 << 20)
big_dir = target // 20             # directories above this are sampled file by file
shares = {1: [1.0], 2: [0.6, 0.4], 3: [0.5, 0.3, 0.2]}.get(
    nlayers, [1.0 / nlayers] * nlayers)

def tar_bytes(size):
    return 512 + (size + 511) // 512 * 512

def frac(key):
    return int.from_bytes(hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()[:8],
                          "big") / 2.0 ** 64

def cost(members, seen):
    """tar bytes of members (name, size, inode key or None), hard links once"""
    b = 0
    for _, size, ino in members:
        if ino is not None and ino in seen:
            b += 512
        else:
            b += tar_bytes(size)
            if ino is not None:
                seen.add(ino)
    return b

units = []   # (order, dir, [(name, size, inode key)], hash fraction)
order = 0
for root in roots:
    if os.path.islink(root) or not os.path.isdir(root):
        continue
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        subdirs, members, nbytes = [], [], 0
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                members.append((n, 0, None))
            elif stat.S_ISDIR(st.st_mode):
                if os.access(p, os.R_OK | os.X_OK):
                    subdirs.append(p)
            elif stat.S_ISREG(st.st_mode):
                if st.st_size <= cap and os.access(p, os.R_OK):
                    ino = (st.st_dev, st.st_ino) if st.st_nlink > 1 else None
                    members.append((n, st.st_size, ino))
                    nbytes += st.st_size
        if members:
            if nbytes > big_dir:
                for m in members:
                    units.append((order, d, [m], frac(d + "/" + m[0])))
                    order += 1
            else:
                units.append((order, d, members, frac(d)))
                order += 1
        stack.extend(reversed(subdirs))

picked, total, seen = [], 0, set()
for u in sorted(units, key=lambda u: u[3]):
    if total >= target:
        break
    picked.append(u)
    total += cost(u[2], seen)
picked.sort(key=lambda u: u[0])
if total < target * 0.9:
    print(f"only {total // 1000000} MB of readable files found under {' '.join(roots)}",
          file=sys.stderr)
    sys.exit(1)

bounds, acc = [], 0.0
for s in shares[:-1]:
    acc += s
    bounds.append(acc * total)
layers = [[] for _ in range(nlayers)]
acc, seen = 0, set()
for u in picked:
    i = sum(1 for b in bounds if acc >= b)
    layers[i].append(u)
    acc += cost(u[2], seen)

for i, units_i in enumerate(layers, 1):
    dirs, seen, files, nbytes = set(), set(), 0, 0
    with open(os.path.join(out_dir, f"layer{i}.list"), "wb") as f:
        for _, d, members, _ in units_i:
            rel = d.lstrip("/")
            parts = rel.split("/")
            for k in range(1, len(parts) + 1):
                a = "/".join(parts[:k])
                if a not in dirs:
                    dirs.add(a)
                    f.write(os.fsencode(a) + b"\0")
            for n, _, _ in members:
                f.write(os.fsencode(rel + "/" + n) + b"\0")
            files += len(members)
            nbytes += cost(members, seen)
    print(f"layer {i} {files} {nbytes}")
EOF
	{ cat "$W/log/select.err" >&2; die "choosing the image's files failed"; }

LAYER_TARS=() GZ_FILES=()
for ((i = 1; i <= NLAYERS; i++)); do
	# exit status 1 = some file changed or vanished while read: fine here
	tar -C / --no-recursion --null -T "$IMG/lists/layer$i.list" --numeric-owner \
		--owner=0 --group=0 --ignore-failed-read -cf "$IMG/layers/layer$i.tar" \
		2>>"$W/log/tar-create.log"
	rc=$?
	[ $rc -le 1 ] || { tail -n 5 "$W/log/tar-create.log" >&2; die "tar -c of layer $i failed"; }
	LAYER_TARS+=("$IMG/layers/layer$i.tar")
	GZ_FILES+=("$IMG/gz/layer$i.tar.gz")
done
rm -rf -- "$IMG/lists"

# gzip the layers, all at once (the machine's cores), default level
pids=()
for ((i = 0; i < NLAYERS; i++)); do
	gzip -n -c -- "${LAYER_TARS[$i]}" >"${GZ_FILES[$i]}" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "gzip of a layer failed"; done

# Assemble the docker-archive (legacy `docker save` layout; the layer.tar
# members are hard links to the layer tars until tar copies them) and the
# OCI layout (gzip blobs moved in) that the OCI archive is made from.
python3 - "$IMG" "$IMAGE_TAG" "${LAYER_TARS[@]}" -- "${GZ_FILES[@]}" \
	>"$IMG/info.sh" 2>"$W/log/assemble.err" <<'EOF' ||
import hashlib, json, os, sys

img, tag = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
sep = rest.index("--")
tars, gzs = rest[:sep], rest[sep + 1:]

def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)

def dump(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

def sha(data):
    return hashlib.sha256(data).hexdigest()

diff_ids = [sha_file(t) for t in tars]
created = "2024-01-01T00:00:00Z"
config = {
    "architecture": "amd64", "os": "linux", "created": created,
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
    "history": [{"created": created, "created_by": f"bench/import.sh layer {i + 1}"}
                for i in range(len(tars))],
}
cfg = dump(config)
cfg_hex = sha(cfg)

# docker-archive, docker save before Docker 25
stage = os.path.join(img, "docker")
os.makedirs(stage)
with open(os.path.join(stage, cfg_hex + ".json"), "wb") as f:
    f.write(cfg)
ids, parent = [], ""
for i, (t, d) in enumerate(zip(tars, diff_ids)):
    lid = sha((parent + "\n" + d).encode())
    os.makedirs(os.path.join(stage, lid))
    with open(os.path.join(stage, lid, "VERSION"), "w") as f:
        f.write("1.0")
    j = {"id": lid, "created": created, "os": "linux", "architecture": "amd64"}
    if parent:
        j["parent"] = parent
    if i == len(tars) - 1:
        j["config"] = config["config"]
    with open(os.path.join(stage, lid, "json"), "wb") as f:
        f.write(dump(j))
    os.link(t, os.path.join(stage, lid, "layer.tar"))
    ids.append(lid)
    parent = lid
repo = "sbx-bench/import"
with open(os.path.join(stage, "manifest.json"), "wb") as f:
    f.write(dump([{"Config": cfg_hex + ".json", "RepoTags": [repo + ":latest"],
                   "Layers": [l + "/layer.tar" for l in ids]}]))
with open(os.path.join(stage, "repositories"), "wb") as f:
    f.write(dump({repo: {"latest": ids[-1]}}))

# OCI layout, flat index (umoci 0.4.7 does not follow nested indexes)
oci = os.path.join(img, "oci")
blobs = os.path.join(oci, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    h = sha(data)
    with open(os.path.join(blobs, h), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
layers, gz_blobs = [], []
for g in gzs:
    h = sha_file(g)
    dst = os.path.join(blobs, h)
    os.replace(g, dst)
    gz_blobs.append(dst)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": "sha256:" + h, "size": os.path.getsize(dst)})
mt_manifest = "application/vnd.oci.image.manifest.v1+json"
manifest = {"schemaVersion": 2, "mediaType": mt_manifest,
            "config": dict(put(cfg), mediaType="application/vnd.oci.image.config.v1+json"),
            "layers": layers}
mdesc = dict(put(dump(manifest)), mediaType=mt_manifest,
             annotations={"org.opencontainers.image.ref.name": tag},
             platform={"architecture": "amd64", "os": "linux"})
with open(os.path.join(oci, "index.json"), "wb") as f:
    f.write(dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                  "manifests": [mdesc]}))
with open(os.path.join(oci, "oci-layout"), "wb") as f:
    f.write(dump({"imageLayoutVersion": "1.0.0"}))

print("DOCKER_MEMBERS=(manifest.json repositories %s.json %s)" % (cfg_hex, " ".join(ids)))
print("GZ_BLOBS=(%s)" % " ".join(gz_blobs))
print("UNCOMP_BYTES=%d" % sum(os.path.getsize(t) for t in tars))
print("GZ_BYTES=%d" % sum(os.path.getsize(g) for g in gz_blobs))
print("IMAGE_ID=%s" % cfg_hex)
EOF
	{ cat "$W/log/assemble.err" >&2; die "assembling the image archives failed"; }
# shellcheck disable=SC1091
. "$IMG/info.sh" || die "cannot read $IMG/info.sh"

DOCKER_TAR=$IMG/docker-archive.tar
OCI_TAR=$IMG/oci-archive.tar
OCI_DIR=$IMG/oci
tar -C "$IMG/docker" --numeric-owner --owner=0 --group=0 -cf "$DOCKER_TAR" \
	"${DOCKER_MEMBERS[@]}" || die "cannot pack $DOCKER_TAR"
rm -rf -- "$IMG/docker"
tar -C "$OCI_DIR" --numeric-owner --owner=0 --group=0 -cf "$OCI_TAR" \
	oci-layout index.json blobs || die "cannot pack $OCI_TAR"
t_build=$(( ($(now_us) - t_build) / 1000000 ))

TAR_ENTRIES=$(for t in "${LAYER_TARS[@]}"; do tar -tf "$t"; done | wc -l)

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
UNCOMP_MB=$(mb "$UNCOMP_BYTES")

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
# LABELS[i], GROUP[i] (plain | gzip), RESULTS[i] (median seconds, "?" while
# pending, or "!text"), CMDS[i] (%q-quoted words), PREPS[i] (a script run
# untimed before and after every run: it removes $OUT and recreates
# $OUT/rootfs, and empties podman's store for podman).
LABELS=() GROUP=() RESULTS=() CMDS=() PREPS=() CPU=()
TIMEOUT=$(( 120 + SIZE ))     # seconds for the checked run (>= 1 MB/s)

record() { LABELS+=("$1"); GROUP+=("$2"); RESULTS+=("$3"); CMDS+=(""); PREPS+=(""); }

# make_prep FILE [PODMAN-WORDS...]: write a prep script.
make_prep() {
	local f=$1; shift
	{
		echo '#!/usr/bin/env bash'
		declare -p OUT HAVE_RANGE
		declare -f rm_tree
		echo 'rm_tree "$OUT" || { echo "cannot remove $OUT" >&2; exit 1; }'
		echo 'mkdir -p "$OUT/rootfs"'
		if [ $# -gt 0 ]; then
			printf 'PODMAN=('; printf '%q ' "$@"; echo ')'
			echo '"${PODMAN[@]}" rmi -a -f >/dev/null 2>&1'
			echo 'n=$("${PODMAN[@]}" images -q 2>/dev/null | wc -l)'
			echo '[ "$n" -eq 0 ] || { echo "podman rmi left $n images" >&2; exit 1; }'
		fi
		echo 'exit 0'
	} >"$f"
}
make_prep "$W/bin/prep.sh"

# add LABEL GROUP PREP CMD...: one checked run (for a readable error, and as a
# warm-up), then queue CMD for timing.  Returns non-zero when the run fails.
add() {
	local label=$1 group=$2 prep=$3; shift 3
	local log=$W/log/check.$((${#LABELS[@]})).log rc q="" a
	if ! bash "$prep" >"$log" 2>&1; then
		echo "$label: failed (prepare: $(last_line "$log" "failed"))"
		record "$label" "$group" "!failed"
		return 1
	fi
	timeout "$TIMEOUT" "$@" </dev/null >/dev/null 2>"$log"
	rc=$?
	if [ $rc -ne 0 ]; then
		if [ $rc -eq 124 ]; then
			echo "$label: failed (timed out after ${TIMEOUT}s)"
		else
			echo "$label: failed ($(last_line "$log" "exit status $rc"))"
		fi
		record "$label" "$group" "!failed"
		bash "$prep" >/dev/null 2>&1
		return 1
	fi
	for a in "$@"; do q+="${q:+ }$(printf '%q' "$a")"; done
	LABELS+=("$label"); GROUP+=("$group"); RESULTS+=("?"); CMDS+=("$q"); PREPS+=("$prep")
	return 0
}

# Untar peers: one tar per layer, in order, into one directory.
cat >"$W/bin/untar.sh" <<'EOF'
#!/bin/sh
# untar.sh -xf|-xzf DIR LAYER...
set -e
opt=$1 dir=$2
shift 2
for l; do tar "$opt" "$l" -C "$dir"; done
EOF

SBX_OK=1
count_sbx_layers() {   # layers directories the checked run left in the store
	find "$OUT/store/layers" -mindepth 2 -maxdepth 2 -type d 2>/dev/null | wc -l
}
add_sbx() {   # add_sbx GROUP MODE ARCHIVE
	local label="sbx load --userns $2" n
	if [ "$2" = range ] && [ "$HAVE_RANGE" = 0 ]; then
		echo "$label: skipped (no subuid/subgid range for $ME, or no newuidmap)"
		record "$label" "$1" "!no subuid range"
		return
	fi
	if ! add "$label" "$1" "$W/bin/prep.sh" "$SBX" load --root "$OUT/store" --userns "$2" -q "$3"; then
		SBX_OK=0
		return
	fi
	n=$(count_sbx_layers)
	if [ "$n" -ne "$NLAYERS" ]; then
		echo "$label: failed (the store holds $n layers, expected $NLAYERS)"
		RESULTS[${#RESULTS[@]} - 1]="!failed"
		SBX_OK=0
	fi
	# every tar entry is one path under layers/<map>/<diff-id>/
	n=$(find "$OUT/store/layers" -mindepth 3 2>/dev/null | wc -l)
	[ "$n" -eq "$TAR_ENTRIES" ] ||
		echo "$label: warning: the store holds $n paths, the layer tars $TAR_ENTRIES entries"
	bash "$W/bin/prep.sh" >/dev/null 2>&1
}

note "checked runs"
# --- uncompressed layers: docker-archive ---
add "tar -x" plain "$W/bin/prep.sh" sh "$W/bin/untar.sh" -xf "$OUT/rootfs" "${LAYER_TARS[@]}"
add_sbx plain single "$DOCKER_TAR"
add_sbx plain range "$DOCKER_TAR"

# podman: everything (storage, config, runtime dir, temp files) inside $W
PODMAN=() PODMAN_INFO=
if command -v podman >/dev/null; then
	P=$W/podman
	mkdir -p "$P/xdg-run" "$P/config" "$P/data" "$P/tmp"
	chmod 0700 "$P/xdg-run"
	# file locks keep podman out of /dev/shm/libpod_rootless_lock_*; the
	# image copy's temp files go to $P/tmp, not /var/tmp (disk)
	printf '[engine]\nlock_type = "file"\nevents_logger = "file"\nimage_copy_tmp_dir = "%s"\n' \
		"$P/tmp" >"$P/containers.conf"
	PODMAN=(env HOME="$W/home" XDG_RUNTIME_DIR="$P/xdg-run" XDG_CONFIG_HOME="$P/config"
	        XDG_DATA_HOME="$P/data" CONTAINERS_CONF="$P/containers.conf" TMPDIR="$P/tmp"
	        podman --root "$P/storage" --runroot "$P/run" --tmpdir "$P/tmp"
	        --cgroup-manager cgroupfs --events-backend file)
	# overlay when rootless overlay works here, else vfs (one probe load each)
	driver_ok=
	for driver in overlay vfs; do
		make_prep "$W/bin/prep-podman.sh" "${PODMAN[@]}" --storage-driver "$driver"
		if bash "$W/bin/prep-podman.sh" >"$W/log/podman-probe.log" 2>&1 &&
		   timeout "$TIMEOUT" "${PODMAN[@]}" --storage-driver "$driver" load -q -i "$DOCKER_TAR" \
			</dev/null >>"$W/log/podman-probe.log" 2>&1; then
			driver_ok=$driver; break
		fi
		echo "podman --storage-driver $driver: $(last_line "$W/log/podman-probe.log" "load failed")"
		"${PODMAN[@]}" --storage-driver "$driver" system reset -f >/dev/null 2>&1
	done
	if [ -n "$driver_ok" ]; then
		PODMAN+=(--storage-driver "$driver_ok")
		PODMAN_INFO=$("${PODMAN[@]}" info --format \
			'{{.Store.GraphDriverName}} (native overlay diff: {{index .Store.GraphStatus "Native Overlay Diff"}}), podman {{.Version.Version}}' 2>/dev/null)
		add "podman load" plain "$W/bin/prep-podman.sh" "${PODMAN[@]}" load -q -i "$DOCKER_TAR"
	else
		echo "podman load: failed with both storage drivers"
		record "podman load" plain "!failed"
	fi
else
	record "podman load" plain "!not installed"
fi

# --- gzip layers: OCI archive ---
add "gzip -dc >/dev/null" gzip "$W/bin/prep.sh" gzip -dc -- "${GZ_BLOBS[@]}"
add "tar -xz" gzip "$W/bin/prep.sh" sh "$W/bin/untar.sh" -xzf "$OUT/rootfs" "${GZ_BLOBS[@]}"
add_sbx gzip single "$OCI_TAR"
add_sbx gzip range "$OCI_TAR"
if [ ${#PODMAN[@]} -gt 0 ] && [ -n "${driver_ok:-}" ]; then
	add "podman load" gzip "$W/bin/prep-podman.sh" "${PODMAN[@]}" load -q -i "$OCI_TAR"
elif [ ${#PODMAN[@]} -gt 0 ]; then
	record "podman load" gzip "!failed"
else
	record "podman load" gzip "!not installed"
fi
if command -v umoci >/dev/null; then
	add "umoci unpack --rootless" gzip "$W/bin/prep.sh" \
		umoci unpack --rootless --image "$OCI_DIR:$IMAGE_TAG" "$OUT/bundle"
else
	record "umoci unpack --rootless" gzip "!not installed"
fi

# ---------------------------------------------------------------------------
# Timing: RUNS rounds, each timing every tool once (so that load changing on
# a shared machine hits all of them alike).  Samples go to $W/samples.I, one
# line per run: wall and CPU (user + system of the tool and its children)
# microseconds.
# ---------------------------------------------------------------------------
# User + system microseconds of the shell's waited-for children, from the
# output of the `times` builtin (second line: "0m1.234s 0m0.567s").
children_cpu_us() {
	awk 'NR == 2 { t = 0
		for (k = 1; k <= 2; k++) { split($k, a, /[ms]/); t += a[1] * 60 + a[2] }
		printf "%d\n", t * 1e6 }'
}

fail_timing() {
	echo "${LABELS[$1]} (${GROUP[$1]}): failed while timing ($2)"
	RESULTS[$1]="!failed"
}

measure_all() {
	local r i cmd out=$W/log/time.out json=$W/hf.json s e rc c0 c1
	for i in "${!CMDS[@]}"; do
		[ "${RESULTS[$i]}" = "?" ] && : >"$W/samples.$i"
	done
	for ((r = 0; r < RUNS; r++)); do
		note "round $((r + 1))/$RUNS"
		for i in "${!CMDS[@]}"; do
			[ "${RESULTS[$i]}" = "?" ] || continue
			if [ -n "$HYPERFINE" ]; then
				if ! hyperfine "${HF_SHELL[@]}" --style none --runs 1 \
					--prepare "bash ${PREPS[$i]}" --cleanup "bash ${PREPS[$i]}" \
					--export-json "$json" -- "${CMDS[$i]}" </dev/null >"$out" 2>&1; then
					fail_timing "$i" "$(last_line "$out" "hyperfine failed")"
					continue
				fi
				python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))["results"][0]
for t in r["times"]:
    print(round(t * 1e6), round((r["user"] + r["system"]) * 1e6))' "$json" >>"$W/samples.$i" ||
					fail_timing "$i" "cannot read $json"
				continue
			fi
			eval "cmd=(${CMDS[$i]})"
			if ! bash "${PREPS[$i]}" >"$out" 2>&1; then
				fail_timing "$i" "prepare: $(last_line "$out" failed)"
				continue
			fi
			times >"$W/times.0"
			s=$(now_us)
			"${cmd[@]}" </dev/null >/dev/null 2>"$out"; rc=$?
			e=$(now_us)
			times >"$W/times.1"
			c0=$(children_cpu_us <"$W/times.0") c1=$(children_cpu_us <"$W/times.1")
			bash "${PREPS[$i]}" >/dev/null 2>&1
			if [ $rc -ne 0 ]; then
				fail_timing "$i" "$(last_line "$out" "exit status $rc")"
				continue
			fi
			echo "$((e - s)) $((c1 - c0))" >>"$W/samples.$i"
		done
	done
	for i in "${!CMDS[@]}"; do
		[ "${RESULTS[$i]}" = "?" ] || continue
		RESULTS[$i]=$(median_s 1 <"$W/samples.$i") || RESULTS[$i]="!no samples"
		CPU[i]=$(median_s 2 <"$W/samples.$i") || CPU[i]=-
	done
}

measure_all
for i in "${!LABELS[@]}"; do
	case ${LABELS[$i]} in sbx*) [ "${RESULTS[$i]:0:1}" = '!' ] && SBX_OK=0 ;; esac
done

# sbx's own account of each layer (one more run per archive, untimed here)
debug_layers() {   # debug_layers ARCHIVE
	local s e
	bash "$W/bin/prep.sh" >/dev/null 2>&1
	s=$(now_us)
	"$SBX" load --root "$OUT/store" --userns single --log-level debug "$1" \
		</dev/null >/dev/null 2>"$W/log/debug.log"
	e=$(now_us)
	# "layer sha256:0123456789ab: E entries, B bytes in T ms"
	sed -nE 's/.*layer (sha256:[0-9a-f]+): ([0-9]+) entries, ([0-9]+) bytes in ([0-9.]+) ms.*/\1 \2 \3 \4/p' \
		"$W/log/debug.log" | while read -r id n b t; do
		awk -v id="$id" -v n="$n" -v b="$b" -v t="$t" 'BEGIN {
			printf "  layer %s  %7d entries  %8.1f MB of files  %9.1f ms  %6.0f MB/s\n",
				id, n, b / 1e6, t, (t > 0) ? b / 1e3 / t : 0 }'
	done
	grep -iE 'warn|error' "$W/log/debug.log" | head -n 3 | sed 's/^/  /'
	awk -v us=$((e - s)) 'BEGIN { printf "  (whole sbx load --log-level debug: %.3f s)\n", us / 1e6 }'
	bash "$W/bin/prep.sh" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ref_of() {   # ref_of GROUP LABEL: median of that tool in that group, or ""
	local i
	for i in "${!LABELS[@]}"; do
		if [ "${GROUP[$i]}" = "$1" ] && [ "${LABELS[$i]}" = "$2" ] &&
		   [ "${RESULTS[$i]:0:1}" != '!' ]; then
			echo "${RESULTS[$i]}"; return
		fi
	done
}

echo
echo "sbx import benchmark: median of $RUNS runs ($(if [ -n "$HYPERFINE" ]; then hyperfine --version
	elif [ -n "${EPOCHREALTIME:-}" ]; then echo "bash loop, \$EPOCHREALTIME"
	else echo "bash loop, date +%s%N"; fi)), everything on /dev/shm (tmpfs)"
echo "kernel $(uname -r), $(nproc) CPUs, user $ME, work dir $W"
echo "load average at start: $LOAD_START, now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "image: $NLAYERS layers, $UNCOMP_MB MB of uncompressed tar ($(mb "$GZ_BYTES") MB gzipped)," \
	"$TAR_ENTRIES entries; built in ${t_build}s"
# (ldd's whole output first: with pipefail, grep -m1 would SIGPIPE ldd)
libs=$(ldd "$SBX_STORE" 2>&1)
if crypto=$(grep -m1 libcrypto <<<"$libs"); then
	echo "sbx-store sha256: OpenSSL libcrypto ($(echo "$crypto" | awk '{ print $1, $2, $3 }'))"
else
	echo "sbx-store sha256: GLib GChecksum (sbx-store does not link libcrypto)"
fi
[ -n "$PODMAN_INFO" ] && echo "podman storage: $PODMAN_INFO"
echo "MB/s = $UNCOMP_MB MB (uncompressed layer tar bytes, 10^6) / median seconds;" \
	"x tar, x podman = speed relative to them (> 1: faster);" \
	"CPU s = median user + system seconds of the tool and its children"

for group in plain gzip; do
	if [ "$group" = plain ]; then
		echo; echo "uncompressed layers (docker-archive, $(mb "$(stat -c %s "$DOCKER_TAR")") MB)"
		ref_label="tar -x"
	else
		echo; echo "gzip layers (OCI archive, $(mb "$(stat -c %s "$OCI_TAR")") MB)"
		ref_label="tar -xz"
	fi
	ref=$(ref_of "$group" "$ref_label")
	pod=$(ref_of "$group" "podman load")
	printf '  %-26s %9s %9s %8s %9s %8s\n' tool "median s" "MB/s" "x tar" "x podman" "CPU s"
	printf '  %-26s %9s %9s %8s %9s %8s\n' -------------------------- --------- --------- -------- --------- --------
	for i in "${!LABELS[@]}"; do
		[ "${GROUP[$i]}" = "$group" ] || continue
		r=${RESULTS[$i]}
		if [ "${r:0:1}" = '!' ]; then
			printf '  %-26s %9s\n' "${LABELS[$i]}" "${r:1}"
			continue
		fi
		printf '  %-26s %9s %9s %8s %9s %8s\n' "${LABELS[$i]}" "$r" \
			"$(awk -v b="$UNCOMP_BYTES" -v s="$r" 'BEGIN { printf "%.0f", b / 1e6 / s }')" \
			"$([ -n "$ref" ] && ratio "$ref" "$r" || echo -)" \
			"$([ -n "$pod" ] && ratio "$pod" "$r" || echo -)" "${CPU[$i]:--}"
	done
done

echo
verdict() { awk -v x="$1" -v t="$2" 'BEGIN { print (x >= t) ? "ok" : "BELOW TARGET" }'; }
for group in plain gzip; do
	# issue 15 item 5: ahead of tar -x, and >= 1.5x tar -xz
	if [ "$group" = plain ]; then ref_label="tar -x" name=uncompressed what="sbx/tar-x" target=1.0
	else ref_label="tar -xz" name=gzip what="sbx/tar-xz" target=1.5; fi
	ref=$(ref_of "$group" "$ref_label")
	for mode in single range; do
		r=$(ref_of "$group" "sbx load --userns $mode")
		[ -n "$r" ] || continue
		if [ -n "$ref" ]; then
			x=$(ratio "$ref" "$r")
			echo "$name: $what = $x (target >= $target)  [--userns $mode: $(verdict "$x" "$target")]"
		else
			echo "$name: $what = n/a ($ref_label failed)  [--userns $mode]"
		fi
	done
done
for group in plain gzip; do
	[ "$group" = plain ] && name=uncompressed || name=gzip
	pod=$(ref_of "$group" "podman load")
	for mode in single range; do
		r=$(ref_of "$group" "sbx load --userns $mode")
		[ -n "$r" ] || continue
		if [ -n "$pod" ]; then
			x=$(ratio "$pod" "$r")
			echo "sbx/podman = $x (target >= 3)  [$name, --userns $mode: $(verdict "$x" 3)]"
		else
			echo "sbx/podman = n/a (podman not available)  [$name, --userns $mode]"
		fi
	done
done

if [ -n "$(ref_of plain "sbx load --userns single")$(ref_of gzip "sbx load --userns single")" ]; then
	echo
	echo "sbx load --log-level debug, per layer (--userns single):"
	echo " docker-archive:"; debug_layers "$DOCKER_TAR"
	echo " OCI archive:"; debug_layers "$OCI_TAR"
fi

peak=$(cat "$W/shm.peak" 2>/dev/null || echo 0)
echo
echo "peak Shmem (all tmpfs + shm on the machine): $((peak / 1024)) MB, $((SHM_BASE / 1024)) MB before the benchmark"

if [ "$SBX_OK" = 1 ]; then exit 0; fi
echo "$PROG: sbx failed" >&2
exit 1
