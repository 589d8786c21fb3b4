#!/usr/bin/env bash
# bench/startup.sh - startup latency of `sbx run` next to its peers.
#
# Times `true` in a sandbox built from the same busybox image (made by
# tests/fixtures/mkimage.py) with sbx (cached image, both uid-map modes),
# unshare, bwrap, crun and podman, and prints the median wall time of each
# and its ratio to bwrap.  Everything lives in a temp dir on /dev/shm that is
# removed on exit.  No network is used.  See --help.

set -u -o pipefail
export LC_ALL=C

PROG=${0##*/}
SELF=$(readlink -f -- "$0")
REPO=$(cd -- "$(dirname -- "$SELF")/.." && pwd)

RUNS=50
SBX=$REPO/build/src/sbx
MKIMAGE=$REPO/tests/fixtures/mkimage.py
WORKDIR=           # internal: work dir made by the root parent
LOOP=0             # 1: bash loop even when hyperfine is installed
BURST=0            # --concurrency N: also start N at once (0: no)
BURST_ROUNDS=5     # rounds of the concurrency mode
TIMEOUT=120        # seconds allowed for one validation run of a tool
PAUSE=0            # --pause MS: idle time before each timed run

usage() {
	cat <<EOF
Usage: $PROG [-n RUNS] [--sbx PATH] [--help]

Median wall time of \`sbx run --network none -q busybox.tar true\` on a cached
image, next to peers running \`true\` on the same unpacked busybox rootfs:

  unshare -Urmnipuf true            namespaces only (the floor)
  bwrap --unshare-all ...           comparable sandbox (the reference)
  crun run                          OCI runtime, bundle from \`crun spec --rootless\`
  podman run --rm --network none    from \`podman load\` of the same archive
  sbx --userns single / range       range only when the user has a subuid range

Peers that are not installed are listed as such; peers that fail print their
error and are skipped.  Times come from hyperfine (--warmup 3) when installed,
else from a bash loop (3 warm-up runs, then RUNS timed runs).

Options:
  -n RUNS       timed runs per tool (default $RUNS)
  --sbx PATH    sbx binary (default: build/src/sbx in the repository)
  --loop        time with the bash loop even when hyperfine is installed
  --pause MS    wait MS milliseconds before each timed run, so that every
                start finds the machine idle: what one start costs alone.
                Without it, runs follow each other at once and work a tool
                leaves for after its exit (a sandbox torn down after sbx
                returns, a network namespace freed by a kernel worker) falls
                into the next run, its own with hyperfine, the next tool's
                with --loop
  --concurrency N
                also start N copies of each of bwrap, sbx --userns single and
                sbx --userns range at once (released together by a FIFO),
                in $BURST_ROUNDS alternating rounds; prints the median total
                wall time (first start to last exit), the median slowest
                single start and the failures, next to N bwraps
  --concurrency-only N
                only the concurrency mode
  -h, --help    show this help

Run as an unprivileged user.  Started as root, the script copies what it needs
into its temp dir and re-runs itself as \$SBX_BENCH_USER (default: the first
of sbxtest, sbxdev that exists).

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
	--sbx) [ $# -ge 2 ] || die "--sbx needs a value"; SBX=$2; shift 2 ;;
	--sbx=*) SBX=${1#*=}; shift ;;
	--loop) LOOP=1; shift ;;
	--pause) [ $# -ge 2 ] || die "--pause needs a value"; PAUSE=$2; shift 2 ;;
	--pause=*) PAUSE=${1#*=}; shift ;;
	--concurrency) [ $# -ge 2 ] || die "--concurrency needs a value"; BURST=$2; shift 2 ;;
	--concurrency=*) BURST=${1#*=}; shift ;;
	--concurrency-only) [ $# -ge 2 ] || die "--concurrency-only needs a value"; BURST=$2; ONLY_BURST=1; shift 2 ;;
	--_workdir) WORKDIR=$2; shift 2 ;;   # internal (root re-exec)
	--_mkimage) MKIMAGE=$2; shift 2 ;;   # internal (root re-exec)
	-h|--help) usage; exit 0 ;;
	*) echo "$PROG: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done
case $RUNS in ''|*[!0-9]*|0) die "-n wants a positive integer, got '$RUNS'" ;; esac
case $BURST in ''|*[!0-9]*) die "--concurrency wants a number, got '$BURST'" ;; esac
case $PAUSE in ''|*[!0-9]*) die "--pause wants milliseconds, got '$PAUSE'" ;; esac
PAUSE_S=$(printf '%d.%03d' $((PAUSE / 1000)) $((PAUSE % 1000)))
ONLY_BURST=${ONLY_BURST:-0}
case $SBX in /*) ;; *) SBX=$(readlink -f -- "$SBX") || die "no sbx at $SBX" ;; esac
[ -x "$SBX" ] || die "sbx binary not found or not executable: $SBX (build it: ninja -C $REPO/build)"
[ -r "$MKIMAGE" ] || die "fixture script not found: $MKIMAGE"
command -v python3 >/dev/null || die "python3 is needed (tests/fixtures/mkimage.py)"

# ---------------------------------------------------------------------------
# Started as root: re-run as an unprivileged user.
# ---------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
	. "$(dirname -- "$SELF")/lib.sh"
	bench_pick_user
	bench_stage "$SBX" "$SELF" "$MKIMAGE"
	bench_run_as_user bash "$W/bin/startup.sh" -n "$RUNS" --sbx "$W/bin/sbx" \
		$([ "$LOOP" = 1 ] && echo --loop) --pause "$PAUSE" \
		$([ "$BURST" -gt 0 ] && echo "--concurrency$([ "$ONLY_BURST" = 1 ] && echo -only) $BURST") \
		--_mkimage "$W/bin/mkimage.py" --_workdir "$W"
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

cleanup() {
	local f pid comm
	# podman's rootless pause process (catatonit) holds its user namespace.
	while IFS= read -r f; do
		pid=$(cat -- "$f" 2>/dev/null) || continue
		case $pid in ''|*[!0-9]*) continue ;; esac
		comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
		case $comm in catatonit|podman*) kill "$pid" 2>/dev/null ;; esac
	done < <(find "$W" -name pause.pid 2>/dev/null)
	chmod -R u+rwX -- "$W" 2>/dev/null
	rm -rf -- "$W"/* 2>/dev/null
	# Files owned by subordinate ids (sbx --userns range, podman) can only be
	# removed from a user namespace that maps them.
	if [ "$HAVE_RANGE" = 1 ] && [ -n "$(ls -A -- "$W" 2>/dev/null)" ]; then
		unshare --map-root-user --map-auto -- rm -rf -- "$W"/* 2>/dev/null
	fi
	if [ "$OWN_W" = 1 ]; then
		rm -rf -- "$W" 2>/dev/null
		[ -e "$W" ] && note "warning: could not remove all of $W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
cd "$W" || die "cannot cd to $W"

# Median in ms of the numbers (microseconds) on stdin.
median_ms() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.2f\n", m / 1000 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# Last non-empty line of a file, or a fallback.
last_line() {
	local l
	l=$(grep -v '^[[:space:]]*$' -- "$1" 2>/dev/null | tail -n 1 | cut -c1-200)
	echo "${l:-$2}"
}

HYPERFINE=
if [ "$LOOP" = 0 ] && command -v hyperfine >/dev/null; then
	HYPERFINE=hyperfine
	# -N (no intermediate shell) exists since hyperfine 1.13
	HF_SHELL=(-N)
	hyperfine -N --runs 1 --style none true >/dev/null 2>&1 || HF_SHELL=()
fi

# Results, in the order of the table.  RESULTS[i] is a median in ms, "?" while
# pending, or "!text" for a tool without a result.  CMDS[i] is the command as
# %q-quoted words.
LABELS=() RESULTS=() CMDS=()
record() { LABELS+=("$1"); RESULTS+=("$2"); CMDS+=(""); }

# add LABEL CMD...: one checked run (for a readable error), then queue CMD
# for timing.  Returns non-zero when the run fails.
add() {
	local label=$1; shift
	local out=$W/check.out rc q="" a
	timeout "$TIMEOUT" "$@" </dev/null >"$out" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		if [ $rc -eq 124 ]; then
			echo "$label: failed (timed out after ${TIMEOUT}s)"
		else
			echo "$label: failed ($(last_line "$out" "exit status $rc"))"
		fi
		record "$label" "!failed"
		return 1
	fi
	for a in "$@"; do q+="${q:+ }$(printf '%q' "$a")"; done
	LABELS+=("$label"); RESULTS+=("?"); CMDS+=("$q")
	return 0
}

# fail_timing I MESSAGE
fail_timing() {
	echo "${LABELS[$1]}: failed while timing ($2)"
	RESULTS[$1]="!failed"
}

# The tools are timed in interleaved rounds (each round runs every tool for a
# slice of the runs), so that load changing on a shared machine hits all of
# them alike: with the bash loop one run of each per round, starting each
# round with the next tool; hyperfine, whose start costs, gets 5 rounds.
# Samples (microseconds) go to $W/samples.I.
measure_all() {
	local rounds=$(( RUNS < 5 ? RUNS : 5 )) r i j n warm cmd out=$W/time.out
	local json=$W/hf.json s e rc k
	local HF_PREPARE=()
	[ "$PAUSE" -gt 0 ] && HF_PREPARE=(--prepare "sleep $PAUSE_S")
	[ -n "$HYPERFINE" ] || rounds=$RUNS
	for i in "${!CMDS[@]}"; do
		[ "${RESULTS[$i]}" = "?" ] && : >"$W/samples.$i"
	done
	if [ -z "$HYPERFINE" ]; then
		# warm-up: 3 runs of each tool
		for i in "${!CMDS[@]}"; do
			[ "${RESULTS[$i]}" = "?" ] || continue
			eval "cmd=(${CMDS[$i]})"
			for k in 1 2 3; do "${cmd[@]}" </dev/null >/dev/null 2>&1; done
		done
	fi
	for ((r = 0; r < rounds; r++)); do
		n=$(( RUNS / rounds + (r < RUNS % rounds ? 1 : 0) ))
		[ $(( r % 10 )) -eq 0 ] && note "round $((r + 1))/$rounds: $n runs of each tool"
		for j in "${!CMDS[@]}"; do
			i=$(( (j + r) % ${#CMDS[@]} ))
			[ "${RESULTS[$i]}" = "?" ] || continue
			if [ -n "$HYPERFINE" ]; then
				warm=$(( r == 0 ? 3 : 1 ))
				if ! hyperfine "${HF_SHELL[@]}" "${HF_PREPARE[@]}" --style none --warmup "$warm" \
					--runs "$n" --export-json "$json" -- "${CMDS[$i]}" \
					</dev/null >"$out" 2>&1; then
					fail_timing "$i" "$(last_line "$out" "hyperfine failed")"
					continue
				fi
				python3 -c 'import json,sys
for t in json.load(open(sys.argv[1]))["results"][0]["times"]:
    print(round(t * 1e6))' "$json" >>"$W/samples.$i" ||
					fail_timing "$i" "cannot read $json"
				continue
			fi
			eval "cmd=(${CMDS[$i]})"
			for ((k = 0; k < n; k++)); do
				[ "$PAUSE" -gt 0 ] && sleep "$PAUSE_S"
				if [ -n "${EPOCHREALTIME:-}" ]; then
					s=${EPOCHREALTIME/[.,]/}
					"${cmd[@]}" </dev/null >/dev/null 2>"$out"; rc=$?
					e=${EPOCHREALTIME/[.,]/}
				else
					s=$(date +%s%N)
					"${cmd[@]}" </dev/null >/dev/null 2>"$out"; rc=$?
					e=$(date +%s%N); s=$((s / 1000)); e=$((e / 1000))
				fi
				if [ $rc -ne 0 ]; then
					fail_timing "$i" "$(last_line "$out" "exit status $rc")"
					break
				fi
				echo $((e - s)) >>"$W/samples.$i"
			done
		done
	done
	for i in "${!CMDS[@]}"; do
		[ "${RESULTS[$i]}" = "?" ] || continue
		RESULTS[$i]=$(median_ms <"$W/samples.$i") || RESULTS[$i]="!no samples"
	done
}

# ---------------------------------------------------------------------------
# Image and rootfs
# ---------------------------------------------------------------------------
IMAGE=$W/busybox.tar
ROOTFS=$W/rootfs
mkdir -p "$W/home" "$ROOTFS" || die "cannot write to $W"
if ! python3 "$MKIMAGE" busybox --format docker-legacy --out "$IMAGE" >"$W/mkimage.log" 2>&1; then
	cat "$W/mkimage.log" >&2
	die "building the busybox image failed (is busybox-static installed?)"
fi
read -r LAYER CONFIG < <(python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))[0]
assert len(m["Layers"]) == 1, "expected one layer"
print(m["Layers"][0], m["Config"].rsplit("/", 1)[-1].split(".")[0])' \
	<(tar -xOf "$IMAGE" manifest.json)) || die "cannot read manifest.json of $IMAGE"
tar -xOf "$IMAGE" "$LAYER" | tar -xf - -C "$ROOTFS" --no-same-owner ||
	die "cannot unpack $LAYER into $ROOTFS"
[ -e "$ROOTFS/bin/true" ] || [ -L "$ROOTFS/bin/true" ] || die "rootfs has no /bin/true"

echo "sbx startup benchmark: \`true\` in a busybox image, median of $RUNS runs" \
	"($(if [ -n "$HYPERFINE" ]; then hyperfine --version
	     elif [ -n "${EPOCHREALTIME:-}" ]; then echo "bash loop, \$EPOCHREALTIME"
	     else echo "bash loop, date +%s%N"; fi))"
echo "kernel $(uname -r), user $ME, work dir $W"
[ "$PAUSE" -gt 0 ] && echo "each timed run after $PAUSE ms idle (--pause)"

# ---------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------
# unshare: namespaces only (host's /usr/bin/true, no rootfs)
if [ "$ONLY_BURST" = 1 ]; then
	:
elif command -v unshare >/dev/null; then
	add "unshare -Urmnipuf" unshare -Urmnipuf true
else
	record "unshare -Urmnipuf" "!not installed"
fi

# bwrap: the reference
if command -v bwrap >/dev/null; then
	add "bwrap" bwrap --unshare-all --die-with-parent --ro-bind "$ROOTFS" / \
		--proc /proc --dev /dev --tmpfs /tmp --hostname x true
else
	record "bwrap" "!not installed"
fi

# crun: rootless OCI bundle on the same rootfs
if [ "$ONLY_BURST" = 1 ]; then
	:
elif command -v crun >/dev/null; then
	mkdir -p "$W/crun/bundle" "$W/crun/state"
	if (cd "$W/crun/bundle" && crun spec --rootless) >"$W/crun/spec.log" 2>&1 &&
	   python3 - "$W/crun/bundle/config.json" "$ROOTFS" >>"$W/crun/spec.log" 2>&1 <<'EOF'
import json, sys
path, rootfs = sys.argv[1:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["root"] = {"path": rootfs, "readonly": True}
c["hostname"] = "x"
ns = c.setdefault("linux", {}).setdefault("namespaces", [])
for t in ("pid", "network", "ipc", "uts", "mount", "user", "cgroup"):
    if not any(n.get("type") == t for n in ns):
        ns.append({"type": t})
json.dump(c, open(path, "w"), indent=1)
EOF
	then
		add "crun" crun --root "$W/crun/state" run --bundle "$W/crun/bundle" sbx-bench
	else
		echo "crun: failed ($(last_line "$W/crun/spec.log" "crun spec failed"))"
		record "crun" "!failed"
	fi
else
	record "crun" "!not installed"
fi

# podman: everything (storage, config, runtime dir, locks) inside $W
if [ "$ONLY_BURST" = 1 ]; then
	:
elif command -v podman >/dev/null; then
	P=$W/podman
	mkdir -p "$P/xdg-run" "$P/config" "$P/data"
	chmod 0700 "$P/xdg-run"
	# file locks keep podman out of /dev/shm/libpod_rootless_lock_*
	printf '[engine]\nlock_type = "file"\nevents_logger = "file"\n' >"$P/containers.conf"
	PODMAN=(env HOME="$W/home" XDG_RUNTIME_DIR="$P/xdg-run" XDG_CONFIG_HOME="$P/config"
	        XDG_DATA_HOME="$P/data" CONTAINERS_CONF="$P/containers.conf"
	        podman --root "$P/storage" --runroot "$P/run" --tmpdir "$P/tmp"
	        --cgroup-manager cgroupfs --events-backend file)
	loaded=0
	for driver in overlay vfs; do
		if timeout "$TIMEOUT" "${PODMAN[@]}" --storage-driver "$driver" load -q -i "$IMAGE" \
			</dev/null >"$P/load.log" 2>&1; then
			PODMAN+=(--storage-driver "$driver"); loaded=1; break
		fi
		"${PODMAN[@]}" --storage-driver "$driver" system reset -f >/dev/null 2>&1
	done
	if [ $loaded = 1 ]; then
		add "podman" "${PODMAN[@]}" run --rm --network none --pull never "$CONFIG" true
	else
		echo "podman: failed (load: $(last_line "$P/load.log" "podman load failed"))"
		record "podman" "!failed"
	fi
else
	record "podman" "!not installed"
fi

# ---------------------------------------------------------------------------
# sbx
# ---------------------------------------------------------------------------
SBX_OK=1
sbx_cmd() { SBXCMD=("$SBX" run --root "$W/store" --userns "$1" --network none -q "$IMAGE" true); }
for mode in single range; do
	label="sbx --userns $mode"
	if [ "$mode" = range ] && [ "$HAVE_RANGE" = 0 ]; then
		echo "$label: skipped (no subuid/subgid range for $ME, or no newuidmap)"
		record "$label" "!no subuid range"
		continue
	fi
	sbx_cmd "$mode"
	# first run: imports the image into the store
	if ! timeout "$TIMEOUT" "${SBXCMD[@]}" </dev/null >"$W/sbx-import.log" 2>&1; then
		echo "$label: failed ($(last_line "$W/sbx-import.log" "first run failed"))"
		record "$label" "!failed"
		SBX_OK=0
		continue
	fi
	add "$label" "${SBXCMD[@]}" || SBX_OK=0
done
# the default network (slirp): what it adds to the range mode
if [ "$HAVE_RANGE" = 1 ] && [ "$ONLY_BURST" = 0 ]; then
	add "sbx range + slirp" "$SBX" run --root "$W/store" --userns range -q "$IMAGE" true || SBX_OK=0
	# without the spare sbx-net an earlier run leaves (every start execs its own)
	add "sbx range + slirp0" env SBX_NET_SPARE=0 "$SBX" run --root "$W/store" --userns range -q \
		"$IMAGE" true || SBX_OK=0
fi

if [ "$ONLY_BURST" = 0 ]; then
measure_all
for i in "${!LABELS[@]}"; do
	case ${LABELS[$i]} in sbx*) [ "${RESULTS[$i]:0:1}" = '!' ] && SBX_OK=0 ;; esac
done
# let conmon's asynchronous "container cleanup" of podman's last run finish
[ -d "$W/podman/storage" ] && sleep 0.5

# ---------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------
BWRAP=
for i in "${!LABELS[@]}"; do
	[ "${LABELS[$i]}" = bwrap ] && [ "${RESULTS[$i]:0:1}" != '!' ] && BWRAP=${RESULTS[$i]}
done

echo
printf '%-22s %13s %8s\n' tool "median ms" "x bwrap"
printf '%-22s %13s %8s\n' ---------------------- ------------- --------
for i in "${!LABELS[@]}"; do
	r=${RESULTS[$i]}
	if [ "${r:0:1}" = '!' ]; then
		printf '%-22s %13s %8s\n' "${LABELS[$i]}" "${r:1}" ""
	elif [ -n "$BWRAP" ]; then
		printf '%-22s %13s %8s\n' "${LABELS[$i]}" "$r" "$(ratio "$r" "$BWRAP")"
	else
		printf '%-22s %13s %8s\n' "${LABELS[$i]}" "$r" -
	fi
done
echo
for i in "${!LABELS[@]}"; do
	case ${LABELS[$i]} in sbx*) ;; *) continue ;; esac
	r=${RESULTS[$i]}
	[ "${r:0:1}" = '!' ] && continue
	case ${LABELS[$i]} in *slirp*) continue ;; esac
	mode=${LABELS[$i]#sbx --userns }
	if [ -n "$BWRAP" ]; then
		x=$(ratio "$r" "$BWRAP")
		verdict=$(awk -v x="$x" 'BEGIN { print (x <= 1.0) ? "ok" : "OVER TARGET" }')
		echo "sbx/bwrap = $x (target <= 1.0, issue 15)  [--userns $mode: $verdict]"
	else
		echo "sbx/bwrap = n/a (bwrap not available)  [--userns $mode]"
	fi
done
fi # ONLY_BURST

# ---------------------------------------------------------------------------
# Concurrency: N started at once
# ---------------------------------------------------------------------------
# burst_once OUT CMD...: start BURST copies of CMD held at a FIFO, release
# them together, and write "total_us slowest_us failures" to OUT.  Each copy
# records its own start and end (after the release) in $W/burst/N.
burst_once() {
	local out=$1 k t0 t1
	shift
	rm -rf -- "$W/burst"
	mkdir -p "$W/burst"
	mkfifo "$W/burst/go"
	# read-write: opening does not block, and the FIFO stays until wait
	exec 3<>"$W/burst/go"
	for ((k = 0; k < BURST; k++)); do
		(
			read -r _ <&3
			exec 3<&-
			s=${EPOCHREALTIME/[.,]/}
			"$@" </dev/null >/dev/null 2>"$W/burst/err.$k"
			rc=$?
			e=${EPOCHREALTIME/[.,]/}
			echo "$s $e $rc" >"$W/burst/$k"
		) &
	done
	sleep 0.5 # every copy is forked and blocked in read
	t0=${EPOCHREALTIME/[.,]/}
	for ((k = 0; k < BURST; k++)); do echo go; done >&3
	wait
	t1=${EPOCHREALTIME/[.,]/}
	exec 3>&-
	cat "$W"/burst/[0-9]* | awk -v t0="$t0" -v t1="$t1" -v n="$BURST" '
		{ d = $2 - $1; if (d > slow) slow = d; if ($3 != 0) fail++; got++ }
		END { printf "%d %d %d\n", t1 - t0, slow, fail + (n - got) }' >"$out"
	if grep -q . "$W"/burst/err.* 2>/dev/null; then
		note "burst errors: $(cat "$W"/burst/err.* | sort | uniq -c | sort -rn | head -n 3 | tr '\n' ' ')"
	fi
}

if [ "$BURST" -gt 0 ]; then
	BL=() BC=()
	if command -v bwrap >/dev/null; then
		BL+=(bwrap)
		BC+=("bwrap --unshare-all --die-with-parent --ro-bind $(printf %q "$ROOTFS") / --proc /proc --dev /dev --tmpfs /tmp --hostname x true")
	fi
	for mode in single range; do
		[ "$mode" = range ] && [ "$HAVE_RANGE" = 0 ] && continue
		BL+=("sbx --userns $mode")
		BC+=("$(printf '%q ' "$SBX" run --root "$W/store" --userns "$mode" --network none -q "$IMAGE" true)")
	done
	for i in "${!BL[@]}"; do : >"$W/burst.$i"; done
	for ((r = 0; r < BURST_ROUNDS; r++)); do
		note "concurrency round $((r + 1))/$BURST_ROUNDS: $BURST at once of each tool"
		for i in "${!BL[@]}"; do
			eval "cmd=(${BC[$i]})"
			burst_once "$W/burst.out" "${cmd[@]}"
			cat "$W/burst.out" >>"$W/burst.$i"
		done
	done
	echo
	printf '%-22s %13s %13s %9s %8s\n' "$BURST at once" "total ms" "slowest ms" failures "x bwrap"
	printf '%-22s %13s %13s %9s %8s\n' ---------------------- ------------- ------------- --------- --------
	BTOT=
	for i in "${!BL[@]}"; do
		tot=$(cut -d' ' -f1 "$W/burst.$i" | median_ms)
		slow=$(cut -d' ' -f2 "$W/burst.$i" | median_ms)
		fails=$(awk '{ f += $3 } END { print f + 0 }' "$W/burst.$i")
		[ "${BL[$i]}" = bwrap ] && BTOT=$tot
		x=-
		[ -n "$BTOT" ] && x=$(ratio "$tot" "$BTOT")
		printf '%-22s %13s %13s %9s %8s\n' "${BL[$i]}" "$tot" "$slow" "$fails" "$x"
		case ${BL[$i]} in sbx*) [ "$fails" -gt 0 ] && SBX_OK=0 ;; esac
	done
	echo "(median of $BURST_ROUNDS rounds; failures summed over the rounds; target: sbx <= 1.2x bwrap, no failures)"
fi

# ---------------------------------------------------------------------------
# Memory during a run: sbx's supervisor, sbx-net, the user namespace holder
# ---------------------------------------------------------------------------
# kB of VmRSS and Pss of a pid, "-" when gone.
mem_of() {
	local rss pss
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
	pss=$(awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null)
	echo "${rss:--} ${pss:--}"
}
if [ "$ONLY_BURST" = 0 ]; then
	net=none
	[ "$HAVE_RANGE" = 1 ] && [ -c /dev/net/tun ] && net=slirp
	mode=single
	[ "$HAVE_RANGE" = 1 ] && mode=range
	"$SBX" run --root "$W/store" --userns "$mode" --network "$net" -q --log-level debug "$IMAGE" \
		sleep 2 </dev/null >/dev/null 2>"$W/mem.log" &
	spid=$!
	sleep 1
	# sbx's child, or the spare an earlier run left (not sbx's child): sbx names it
	npid=$(sed -n 's/.*network helper \([0-9]*\) ready.*/\1/p' "$W/mem.log" | head -n 1)
	hpid=$("$SBX" check 2>/dev/null | sed -n 's/.*user namespace holder: pid \([0-9]*\).*/\1/p')
	echo
	printf '%-30s %10s %10s\n' "during a run (--userns $mode, --network $net)" "RSS kB" "PSS kB"
	read -r rss pss < <(mem_of "$spid")
	printf '%-30s %10s %10s\n' "sbx (supervisor)" "$rss" "$pss"
	if [ -n "$npid" ]; then
		read -r rss pss < <(mem_of "$npid")
		printf '%-30s %10s %10s\n' "sbx-net" "$rss" "$pss"
	fi
	if [ -n "$hpid" ]; then
		read -r rss pss < <(mem_of "$hpid")
		printf '%-30s %10s %10s\n' "sbx-userns-holder (shared)" "$rss" "$pss"
	fi
	wait "$spid"
fi

if [ "$SBX_OK" = 1 ]; then exit 0; fi
echo "$PROG: sbx failed" >&2
exit 1
