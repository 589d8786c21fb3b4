#!/usr/bin/env bash
# bench/net.sh - sbx's slirp network next to slirp4netns and the host.
#
# Measures, in one run:
#   1. TCP throughput (iperf3, one stream, MTU 65520) guest->host and
#      host->guest through sbx's sbx-net, through sbx with
#      slirp:tcp_relay=true ("sbx-relay", src/net/relay.c), through
#      slirp4netns, and on the host's loopback;
#   2. TCP connect and request-response latency through the same three
#      paths;
#   3. the CPU the network helper burns while one TCP connection sits idle;
#   4. the start-up cost of the slirp network (`sbx run IMAGE true` with and
#      without --network none);
#   1b. the resident memory of sbx's supervisor plus sbx-net (and of
#      slirp4netns) during the throughput runs.
# Everything lives in a temp dir on /dev/shm that is removed on exit.  All
# traffic stays on this machine: servers listen on 127.0.0.1 only; clients
# reach them as 127.0.0.1 (host) or 10.0.2.2 from namespaces this script made.
# By default the whole benchmark runs sealed: inside a user+network namespace
# of its own (unshare -Urn, lo up), so "the host" is that namespace's loopback
# and sbx runs with --userns single.
# See --help.

set -u -o pipefail
export LC_ALL=C

PROG=${0##*/}
SELF=$(readlink -f -- "$0")
REPO=$(cd -- "$(dirname -- "$SELF")/.." && pwd)

SECONDS_T=5        # iperf3 -t
CONNS=1000         # connections timed for the latency
RUNS=30            # start-up runs per variant
ROUNDS=1           # throughput rounds (median when more than one)
MTU=65520
TESTS=throughput,latency,idle,startup
PROFILE=0
SEALED=1
LOOP=0
SBX=$REPO/build/src/sbx
MKIMAGE=$REPO/tests/fixtures/mkimage.py
WORKDIR=           # internal: work dir made by the root parent

usage() {
	cat <<EOF
Usage: $PROG [-t SECONDS] [-c CONNS] [-n RUNS] [-r ROUNDS] [--tests LIST]
              [--profile] [--sbx PATH] [--loop] [--no-seal] [--help]

Side by side, in one run:

  throughput   iperf3, one stream, MTU $MTU, SECONDS each way: guest->host
               ("up": iperf3 -c) and host->guest ("down": iperf3 -c -R), from
                 sbx          sbx run --network slirp:allow_host_loopback=true
                              --mtu $MTU iperf3 iperf3 -c 10.0.2.2
                 slirp4netns  unshare -Urn + slirp4netns --configure --mtu=$MTU,
                              iperf3 -c 10.0.2.2 run there with nsenter
                 host         iperf3 -c 127.0.0.1
               against \`iperf3 -s -B 127.0.0.1\`.  Also the network helper's
               CPU use and system calls per second during the transfer.
  latency      mean/median/p99 time of a TCP connect() through the same three
               paths, CONNS connections, and of a request-response (1 byte
               each way) on one connection, CONNS times (a static C program
               built here)
  idle         CPU of the network helper while one TCP connection is open
               and idle for 2 s
  startup      median wall time of \`sbx run --network none busybox true\` and
               \`sbx run busybox true\` (slirp), and the difference
  memory       (with throughput) the largest resident set (VmRSS) of sbx's
               supervisor plus sbx-net, and of slirp4netns, sampled every
               0.25 s during the transfers (not a --tests name)

The image for sbx is built here: iperf3 with its shared libraries and the
loader (ldd), plus the latency program, loaded with \`sbx load --rootfs\`.
Peers that are not installed are listed as such.

Options:
  -t SECONDS    iperf3 duration per direction (default $SECONDS_T)
  -c CONNS      connections timed for the latency (default $CONNS)
  -n RUNS       start-up runs per variant (default $RUNS)
  -r ROUNDS     throughput rounds; the median is reported (default $ROUNDS)
  --tests LIST  comma-separated subset of: $TESTS
  --profile     also profile sbx-net (perf, if installed and permitted) during
                one more upload and print where its time goes
  --sbx PATH    sbx binary (default: build/src/sbx; sbx-store and sbx-net
                must be beside it)
  --loop        time start-up with a bash loop even when hyperfine is installed
  --no-seal     run in the user's own network namespace (servers on its
                127.0.0.1, sbx in its default --userns mode) instead of a
                sealed one made with unshare -Urn
  -h, --help    show this help

Needs: /dev/net/tun usable by the user (mode 0666: 'chmod 0666 /dev/net/tun'
as root), python3 (image fixture, iperf3's JSON).  Optional: iperf3,
slirp4netns, gcc with a static libc, hyperfine, perf
(apt-get install -y iperf3 slirp4netns hyperfine).

Run as an unprivileged user.  Started as root, the script copies what it needs
into its temp dir and re-runs itself as \$SBX_BENCH_USER (default: the first
of sbxtest, sbxdev that exists).

Exit status: 0 when sbx works (whatever the peers do), 1 when an sbx
measurement fails, 2 on usage or setup errors.
EOF
}

die() { echo "$PROG: $*" >&2; exit 2; }
note() { echo "$PROG: $*" >&2; }
posint() { case $2 in ''|*[!0-9]*|0) die "$1 wants a positive integer, got '$2'" ;; esac; }

while [ $# -gt 0 ]; do
	case $1 in
	-t) [ $# -ge 2 ] || die "-t needs a value"; SECONDS_T=$2; shift 2 ;;
	-c) [ $# -ge 2 ] || die "-c needs a value"; CONNS=$2; shift 2 ;;
	-n) [ $# -ge 2 ] || die "-n needs a value"; RUNS=$2; shift 2 ;;
	-r) [ $# -ge 2 ] || die "-r needs a value"; ROUNDS=$2; shift 2 ;;
	--tests) [ $# -ge 2 ] || die "--tests needs a value"; TESTS=$2; shift 2 ;;
	--tests=*) TESTS=${1#*=}; shift ;;
	--profile) PROFILE=1; shift ;;
	--sbx) [ $# -ge 2 ] || die "--sbx needs a value"; SBX=$2; shift 2 ;;
	--sbx=*) SBX=${1#*=}; shift ;;
	--loop) LOOP=1; shift ;;
	--no-seal) SEALED=0; shift ;;
	--_sealed) SEALED=2; shift ;;        # internal (inside unshare -Urn)
	--_workdir) WORKDIR=$2; shift 2 ;;   # internal (root re-exec)
	--_mkimage) MKIMAGE=$2; shift 2 ;;   # internal (root re-exec)
	-h|--help) usage; exit 0 ;;
	*) echo "$PROG: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done
posint -t "$SECONDS_T"; posint -c "$CONNS"; posint -n "$RUNS"; posint -r "$ROUNDS"
for t in ${TESTS//,/ }; do
	case $t in throughput|latency|idle|startup) ;; *) die "--tests: unknown test '$t'" ;; esac
done
want() { case ,$TESTS, in *,"$1",*) return 0 ;; esac; return 1; }
case $SBX in /*) ;; *) SBX=$(readlink -f -- "$SBX") || die "no sbx at $SBX" ;; esac
[ -x "$SBX" ] || die "sbx binary not found or not executable: $SBX (build it: ninja -C $REPO/build)"
SBXDIR=$(dirname -- "$SBX")
for h in sbx-store sbx-net; do
	[ -x "$SBXDIR/$h" ] || die "$h not found beside $SBX (build it: ninja -C $REPO/build)"
done
[ -r "$MKIMAGE" ] || die "fixture script not found: $MKIMAGE"
command -v python3 >/dev/null || die "python3 is needed (tests/fixtures/mkimage.py, iperf3 -J)"

tun_hint() {
	echo "/dev/net/tun must exist and be mode 0666 (read-write for everyone, the usual" \
		"distribution default) for rootless networking: run 'chmod 0666 /dev/net/tun' as root"
}

# ---------------------------------------------------------------------------
# Started as root: re-run as an unprivileged user.
# ---------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && [ "$SEALED" != 2 ]; then   # (root inside the sealed namespace is us)
	[ -c /dev/net/tun ] || die "no /dev/net/tun ($(tun_hint))"
	mode=$(stat -c %a /dev/net/tun)
	case $mode in *66) ;; *) die "/dev/net/tun is mode $mode; $(tun_hint)" ;; esac
	. "$(dirname -- "$SELF")/lib.sh"
	bench_pick_user
	bench_stage "$SBX" "$SELF" "$MKIMAGE"
	bench_run_as_user bash "$W/bin/net.sh" -t "$SECONDS_T" -c "$CONNS" -n "$RUNS" -r "$ROUNDS" \
		--tests "$TESTS" --sbx "$W/bin/sbx" \
		$([ "$LOOP" = 1 ] && echo --loop) $([ "$PROFILE" = 1 ] && echo --profile) \
		$([ "$SEALED" = 0 ] && echo --no-seal) --_mkimage "$W/bin/mkimage.py" --_workdir "$W"
	exit $?
fi

# ---------------------------------------------------------------------------
# Unprivileged from here on.
# ---------------------------------------------------------------------------
# Sealed: the rest runs in a user+network namespace of its own.
if [ "$SEALED" = 1 ]; then
	command -v unshare >/dev/null && command -v ip >/dev/null ||
		die "the sealed run needs unshare (util-linux) and ip (iproute2); or use --no-seal"
	args=(-t "$SECONDS_T" -c "$CONNS" -n "$RUNS" -r "$ROUNDS" --tests "$TESTS" --sbx "$SBX"
		--_mkimage "$MKIMAGE" --_sealed)
	[ "$LOOP" = 1 ] && args+=(--loop)
	[ "$PROFILE" = 1 ] && args+=(--profile)
	[ -n "$WORKDIR" ] && args+=(--_workdir "$WORKDIR")
	exec unshare -Urn bash "$SELF" "${args[@]}"
fi
if [ "$SEALED" = 2 ]; then
	ip link set lo up || die "cannot bring lo up in the sealed namespace"
fi
ME=$(id -un)
HAVE_RANGE=0
if [ "$SEALED" = 2 ]; then
	:   # one id mapped: sbx runs with --userns single
elif command -v newuidmap >/dev/null && command -v newgidmap >/dev/null &&
   grep -qE "^($ME|$(id -u)):" /etc/subuid 2>/dev/null &&
   grep -qE "^($ME|$(id -g)|$(id -gn)):" /etc/subgid 2>/dev/null; then
	HAVE_RANGE=1
fi
if [ ! -c /dev/net/tun ]; then
	die "no /dev/net/tun: $(tun_hint)"
elif [ ! -r /dev/net/tun ] || [ ! -w /dev/net/tun ]; then
	die "/dev/net/tun (mode $(stat -c %a /dev/net/tun)) is not read-write for $ME: $(tun_hint)"
fi

if [ -n "$WORKDIR" ]; then
	W=$WORKDIR
	OWN_W=0
else
	W=$(mktemp -d /dev/shm/sbx-bench.XXXXXX) || die "cannot make a temp dir in /dev/shm"
	OWN_W=1
fi

BG_PIDS=()          # every background process this script started
cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	chmod -R u+rwX -- "$W" 2>/dev/null
	rm -rf -- "${W:?}"/* 2>/dev/null
	# Files owned by subordinate ids (sbx --userns range) can only be removed
	# from a user namespace that maps them.
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
mkdir -p "$W/home" "$W/logs" || die "cannot write to $W"
mkfifo "$W/.tick" "$W/.alive" || die "cannot make a fifo in $W"
exec 7<>"$W/.tick"
# $W/.alive has one writer, this script (fd 8, closed for every child): what
# reads it (slirp4netns --exit-fd, the namespace holder, the servers) sees
# end-of-file, and goes, when the script ends, however it ends.
exec 8<>"$W/.alive"

# Sleep without forking (the sampling loops run beside the benchmark).
nap() { read -r -t "$1" -u 7 _ 2>/dev/null; :; }
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (\$EPOCHREALTIME)"
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# Last non-empty line of a file, or a fallback.
last_line() {
	local l
	l=$(grep -v '^[[:space:]]*$' -- "$1" 2>/dev/null | tail -n 1 | cut -c1-160)
	echo "${l:-$2}"
}

# Median of the numbers on stdin (printf format $1).
median() {
	sort -g | awk -v f="$1" '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf f "\n", m }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

# /proc/PID/stat without forking: PS_STATE, PS_TICKS (utime+stime), PS_EXIT.
proc_stat() {
	local line rest
	PS_STATE= PS_TICKS= PS_EXIT=
	read -r line 2>/dev/null <"/proc/$1/stat" || return 1
	rest=${line##*) }
	# shellcheck disable=SC2086
	set -- $rest
	PS_STATE=$1
	PS_TICKS=$(( ${12} + ${13} ))
	PS_EXIT=${50:-0}
}
# System calls made so far (syscr + syscw of /proc/PID/io).
proc_syscalls() {
	local k v n=0 ok=0
	while read -r k v; do
		case $k in syscr:|syscw:) n=$((n + v)); ok=1 ;; esac
	done 2>/dev/null <"/proc/$1/io"
	[ $ok = 1 ] && echo "$n"
}
child_named() {
	local p c
	for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		read -r c 2>/dev/null <"/proc/$p/comm" || continue
		[ "$c" = "$2" ] && { echo "$p"; return 0; }
	done
	return 1
}
# VmRSS of a process in kB (0 when it is gone), without forking.
proc_rss() {
	local k v u
	while read -r k v u; do
		[ "$k" = VmRSS: ] && { echo "$v"; return 0; }
	done 2>/dev/null <"/proc/$1/status"
	echo 0
}
signame() { kill -l "$1" 2>/dev/null | sed 's/^/SIG/' || echo "$1"; }

# watch_run DEADLINE_S HELPER OUT CMD...: run CMD in the background, stdout to
# OUT, stderr to OUT.err, killing it at the deadline.  HELPER names the
# network helper to sample: "sbx" (the sbx-net child of CMD), a pid, or "".
# Sets WR_RC, WR_CPU (% of one CPU), WR_SYSCALLS (per second), WR_NOTE, and
# WR_RSS ("total supervisor helper" kB at the largest total seen; for sbx the
# supervisor is CMD's process, `sbx run` itself; for a pid, the helper alone).
# Samples cover 1 s after the helper was seen to the last moment both ran.
watch_run() {
	local deadline=$1 helper=$2 out=$3; shift 3
	local pid start hp="" t0= k0= s0= t1= k1= s1= now s term=0 dead="" name=sbx-net sbx=0 hn=
	# sbx-relay: the relay is the helper sampled; sbx-net's memory counts with the supervisor's
	case $helper in sbx) sbx=1 ;; sbx-relay) sbx=1 name=sbx-relay ;; *) name=slirp4netns ;; esac
	WR_RC=0 WR_CPU= WR_SYSCALLS= WR_NOTE= WR_RSS=
	local rs rh rmax=0
	"$@" </dev/null >"$out" 2>"$out.err" 8>&- &
	pid=$!
	BG_PIDS+=("$pid")
	start=$(now_us)
	case $helper in ''|sbx|sbx-relay) ;; *) hp=$helper ;; esac
	while proc_stat "$pid" && [ "$PS_STATE" != Z ]; do
		nap 0.25
		now=$(now_us)
		if [ -z "$hp" ] && [ $sbx = 1 ]; then
			hp=$(child_named "$pid" "$name") || hp=
		fi
		if [ -z "$hn" ] && [ "$name" = sbx-relay ]; then
			hn=$(child_named "$pid" sbx-net) || hn=
		fi
		if [ -n "$hp" ] && [ -z "$dead" ] && proc_stat "$hp"; then
			if [ "$PS_STATE" = Z ] && [ $sbx = 1 ] && [ "$PS_EXIT" = 9 ]; then
				dead=" "   # sbx stops sbx-net with SIGKILL once the program is done
			elif [ "$PS_STATE" = Z ]; then
				dead="$name (pid $hp) died of $(signame $((PS_EXIT & 127)))"
				[ $((PS_EXIT & 127)) = 0 ] && dead="$name (pid $hp) exited with status $((PS_EXIT >> 8))"
				dead+=" after $(( (now - start) / 1000 )) ms"
				kill -TERM "$pid" 2>/dev/null; term=1
			elif s=$(proc_syscalls "$hp"); then
				rh=$(proc_rss "$hp") rs=0
				[ $sbx = 1 ] && rs=$(proc_rss "$pid")
				[ -n "$hn" ] && rs=$((rs + $(proc_rss "$hn")))
				if [ "$rh" -gt 0 ] && [ $((rs + rh)) -gt "$rmax" ]; then
					rmax=$((rs + rh)) WR_RSS="$rmax $rs $rh"
				fi
				if [ -z "$t0" ]; then
					[ $((now - start)) -ge 1000000 ] && { t0=$now; k0=$PS_TICKS; s0=$s; }
				else
					t1=$now; k1=$PS_TICKS; s1=$s
				fi
			fi
		fi
		if [ $((now - start)) -ge $((deadline * 1000000)) ]; then
			if [ $term = 0 ]; then
				kill -TERM "$pid" 2>/dev/null; term=1
				WR_NOTE="timed out after ${deadline} s"
			elif [ $((now - start)) -ge $(((deadline + 5) * 1000000)) ]; then
				kill -KILL "$pid" 2>/dev/null
			fi
		fi
	done
	wait "$pid"; WR_RC=$?
	[ -n "${dead# }" ] && WR_NOTE=$dead${WR_NOTE:+; $WR_NOTE}
	if [ -n "$t1" ] && [ "$t1" -gt "$t0" ]; then
		WR_CPU=$(awk -v k=$((k1 - k0)) -v hz="$CLK_TCK" -v dt=$((t1 - t0)) \
			'BEGIN { printf "%.0f", 100 * k / hz / (dt / 1e6) }')
		WR_SYSCALLS=$(awk -v n=$((s1 - s0)) -v dt=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (dt / 1e6) }')
	fi
	return 0
}

# Wait until something listens on 127.0.0.1:$1 (at most $2 s).
wait_listen() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		if command -v ss >/dev/null; then
			[ -n "$(ss -Hltn "src 127.0.0.1:$1" 2>/dev/null)" ] && return 0
		else
			grep -qi ":$(printf '%04X' "$1") 00000000:0000 0A" /proc/net/tcp 2>/dev/null && return 0
		fi
		nap 0.05
	done
	return 1
}
port_free() {
	if command -v ss >/dev/null; then
		[ -z "$(ss -Hatn "sport = :$1" 2>/dev/null)" ]
	else
		! grep -qi ":$(printf '%04X' "$1") " /proc/net/tcp 2>/dev/null
	fi
}
pick_port() {
	local p i
	for ((i = 0; i < 50; i++)); do
		p=$((20000 + RANDOM % 20000))
		port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)) && port_free $((p + 3)) &&
			{ echo "$p"; return 0; }
	done
	return 1
}
PORT=$(pick_port) || die "no free port pair on 127.0.0.1"
IPERF_PORT=$PORT LAT_PORT=$((PORT + 1)) HOLD_PORT=$((PORT + 2)) RR_PORT=$((PORT + 3))

echo "sbx network benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), user $ME, work dir $W"
if [ "$SEALED" = 2 ]; then
	echo "sealed: in a network namespace of the benchmark's own (unshare -Urn, its root is uid" \
		"$(awk '{ print $2; exit }' /proc/self/uid_map) outside), sbx --userns single"
fi

# ---------------------------------------------------------------------------
# What we have
# ---------------------------------------------------------------------------
HAVE_IPERF=0 HAVE_S4N=0 HAVE_LAT=0
IPERF=$(command -v iperf3) && HAVE_IPERF=1
if command -v slirp4netns >/dev/null && command -v unshare >/dev/null && command -v nsenter >/dev/null; then
	HAVE_S4N=1
fi
S4N_WHY="not installed"
command -v slirp4netns >/dev/null && S4N_WHY="needs unshare and nsenter (util-linux)"

# The latency program: static, so it runs in any of the three places.
LAT=$W/bin/connlat
mkdir -p "$W/bin" "$W/src"
cat >"$W/src/connlat.c" <<'EOF'
/* connlat: TCP connect and request-response latency, and the servers.
 *   connlat connect IP PORT N        time N connect()s (after 20 untimed);
 *                                    prints "mean_us median_us p99_us N"
 *   connlat rr IP PORT N             one connection; time N exchanges of
 *                                    1 byte each way (after 20 untimed)
 *   connlat hold IP PORT SECONDS     one connection, kept open and idle
 *   connlat serve IP PORT SECONDS [hold|echo]
 *                                    accept and close (hold: keep; echo:
 *                                    send back what comes, one connection at
 *                                    a time) until SECONDS have passed or
 *                                    stdin ends */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in sa;

static double now_us(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int dial(void)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {5, 0};
  if (fd < 0)
    return perror("socket"), -1;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return perror("connect"), close(fd), -1;
  return fd;
}

int main(int argc, char **argv)
{
  if (argc < 5)
    return fprintf(stderr, "usage: connlat connect|hold|serve IP PORT N|SECONDS [hold]\n"), 2;
  long n = atol(argv[4]);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1 || n <= 0)
    return fprintf(stderr, "connlat: bad address or count\n"), 2;
  if (strcmp(argv[1], "serve") == 0) {
    int keep = argc > 5 && strcmp(argv[5], "hold") == 0, one = 1;
    int echo = argc > 5 && strcmp(argv[5], "echo") == 0;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 1024) < 0)
      return perror("connlat: listen"), 1;
    alarm((unsigned)n);
    for (;;) {
      struct pollfd p[2] = {{.fd = s, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
      if (poll(p, 2, -1) < 0)
        continue;
      if (p[1].revents) /* our parent is gone (or stdin was never a pipe) */
        return 0;
      int c = accept(s, NULL, NULL);
      if (c >= 0 && echo) {
        char b[64];
        ssize_t r;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        while ((r = read(c, b, sizeof b)) > 0)
          if (write(c, b, (size_t)r) != r)
            break;
      }
      if (c >= 0 && !keep)
        close(c);
    }
  }
  if (strcmp(argv[1], "hold") == 0) {
    int fd = dial();
    if (fd < 0)
      return 1;
    sleep((unsigned)n);
    return 0;
  }
  if (strcmp(argv[1], "rr") == 0) {
    int fd = dial(), one = 1;
    double *v = calloc((size_t)n, sizeof *v), sum = 0;
    if (fd < 0 || !v)
      return 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (long i = -20; i < n; i++) {
      char b = 'x';
      double t0 = now_us();
      if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1)
        return fprintf(stderr, "exchange #%ld: ", i), perror(NULL), 1;
      double t1 = now_us();
      if (i >= 0)
        sum += v[i] = t1 - t0;
    }
    qsort(v, (size_t)n, sizeof *v, cmp);
    printf("%.1f %.1f %.1f %ld\n", sum / n, v[n / 2], v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], n);
    return 0;
  }
  if (strcmp(argv[1], "connect") != 0)
    return fprintf(stderr, "connlat: unknown mode %s\n", argv[1]), 2;
  double *v = calloc((size_t)n, sizeof *v), sum = 0;
  if (!v)
    return 1;
  for (long i = -20; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    if (fd < 0)
      return perror("socket"), 1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    double t0 = now_us();
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
      return fprintf(stderr, "connect #%ld: ", i), perror(NULL), 1;
    double t1 = now_us();
    close(fd);
    if (i >= 0)
      sum += v[i] = t1 - t0;
  }
  qsort(v, (size_t)n, sizeof *v, cmp);
  printf("%.1f %.1f %.1f %ld\n", sum / n, v[n / 2], v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], n);
  return 0;
}
EOF
LAT_WHY="gcc with a static libc needed (libc6-dev)"
if command -v gcc >/dev/null; then
	if gcc -static -O2 -o "$LAT" "$W/src/connlat.c" >"$W/logs/connlat-cc.log" 2>&1; then
		HAVE_LAT=1
	else
		LAT_WHY="gcc -static failed: $(last_line "$W/logs/connlat-cc.log" "?")"
	fi
else
	LAT_WHY="gcc not installed: the latency program needs it"
fi

# ---------------------------------------------------------------------------
# Images: iperf3 + its libraries (+ connlat) as a rootfs; busybox for start-up
# ---------------------------------------------------------------------------
STORE=$W/store
SBXRUN=("$SBX" run --root "$STORE" -q)
[ "$SEALED" = 2 ] && SBXRUN+=(--userns single)
SBX_OK=1
NETIMG=
if want throughput || want latency || want idle; then
	R=$W/netroot
	mkdir -p "$R/tmp" "$R/etc" "$R/usr/bin" && chmod 1777 "$R/tmp"
	printf 'root:x:0:0:root:/:/bin/sh\n' >"$R/etc/passwd"
	printf 'root:x:0:\n' >"$R/etc/group"
	ok=1
	if [ $HAVE_IPERF = 1 ]; then
		cp -- "$IPERF" "$R/usr/bin/iperf3" || ok=0
		# the libraries and the loader, at the paths ldd names
		while read -r lib; do
			mkdir -p "$R$(dirname -- "$lib")" && cp -L -- "$lib" "$R$lib" || ok=0
		done < <(ldd "$IPERF" | grep -o '/[^ ]*' | sort -u)
	fi
	[ $HAVE_LAT = 1 ] && { cp -- "$LAT" "$R/usr/bin/connlat" || ok=0; }
	if [ $ok = 1 ] && tar -C "$R" -cf "$W/netbench.tar" . 2>"$W/logs/tar.log" &&
	   timeout 120 "$SBX" load --root "$STORE" -q $([ "$SEALED" = 2 ] && echo --userns single) --rootfs --name iperf3 "$W/netbench.tar" \
		</dev/null >"$W/logs/load.log" 2>&1; then
		NETIMG=iperf3
	else
		echo "sbx: cannot build or load the iperf3 image:" \
			"$(last_line "$W/logs/load.log" "$(last_line "$W/logs/tar.log" "copy failed")")"
		SBX_OK=0
	fi
fi
SBX_NET=(--network slirp:allow_host_loopback=true --mtu "$MTU")
# sbx-relay: the same with TCP connections relayed beside libslirp (src/net/relay.c)
SBX_RELAY=(--network slirp:allow_host_loopback=true,tcp_relay=true --mtu "$MTU")

# ---------------------------------------------------------------------------
# slirp4netns: a user+net namespace held by a sleep, slirp4netns on its tap0
# ---------------------------------------------------------------------------
NS_PID= S4N_PID=
s4n_start() {
	local i d=$W/s4n
	mkdir -p "$d"
	# unshare execs the shell (no --fork): the holder's pid is the namespace's
	unshare -Urn sh -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1" && exec cat' sh "$d/ns.pid" \
		<"$W/.alive" >"$d/unshare.log" 2>&1 8>&- &
	BG_PIDS+=($!)
	for ((i = 0; i < 100; i++)); do [ -s "$d/ns.pid" ] && break; nap 0.05; done
	NS_PID=$(cat "$d/ns.pid" 2>/dev/null)
	[ -n "$NS_PID" ] || { S4N_WHY="unshare -Urn failed: $(last_line "$d/unshare.log" "?")"; return 1; }
	# Debian's slirp4netns 1.2 allows 10.0.2.2 -> 127.0.0.1 unless given
	# --disable-host-loopback (a flag without a value): so it is left out.
	slirp4netns --configure --mtu="$MTU" --ready-fd=3 --exit-fd=4 "$NS_PID" tap0 \
		3>"$d/ready" 4<"$W/.alive" </dev/null >"$d/log" 2>&1 8>&- &
	S4N_PID=$!
	BG_PIDS+=("$S4N_PID")
	for ((i = 0; i < 200; i++)); do
		[ -s "$d/ready" ] && return 0
		kill -0 "$S4N_PID" 2>/dev/null || break
		nap 0.05
	done
	S4N_WHY="slirp4netns failed: $(last_line "$d/log" "not ready after 10 s")"
	return 1
}
S4N_OK=0
if { want throughput || want latency || want idle; } && [ $HAVE_S4N = 1 ]; then
	s4n_start && S4N_OK=1
	[ $S4N_OK = 1 ] || echo "slirp4netns: $S4N_WHY"
fi
IN_NS=(nsenter --preserve-credentials -U -n -t "$NS_PID")

NOTES=()

# ---------------------------------------------------------------------------
# 1. Throughput
# ---------------------------------------------------------------------------
TOOLS=(sbx sbx-relay slirp4netns host)
declare -A TP=() TPCPU=() TPSYS=() TPRETRY=()
TPEST=0
iperf_server() {
	timeout $((SECONDS_T + 60)) "$IPERF" -s -1 -B 127.0.0.1 -p "$IPERF_PORT" \
		</dev/null >"$W/logs/iperf-server.log" 2>&1 8>&- &
	IPERF_SRV=$!
	BG_PIDS+=("$IPERF_SRV")
	wait_listen "$IPERF_PORT" 5
}
# iperf3's JSON -> "Gbit/s bytes", or "!why" and on a second line the rate
# of the client's per-second intervals up to the first empty one (what it saw
# before the failure), if any.
iperf_result() {
	python3 - "$1" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    print("!no JSON from iperf3"); sys.exit()
s = d.get("end", {}).get("sum_received")
if not d.get("error") and s and s.get("bytes"):
    print("%.2f %d" % (s["bits_per_second"] / 1e9, s["bytes"])); sys.exit()
print("!" + (d.get("error") or "no result"))
b = t = 0
for i in d.get("intervals") or []:
    su = i.get("sum") or {}
    if not su.get("bytes"):
        break
    b += su["bytes"]; t += su.get("seconds", 0)
if b and t:
    print("%.2f" % (b * 8 / t / 1e9))
EOF
}
# throughput_one TOOL DIR(up|down) ROUND
throughput_one() {
	local tool=$1 dir=$2 out=$W/logs/iperf-$1-$2-$3.json res helper="" why
	local args=(-c 10.0.2.2 -p "$IPERF_PORT" -t "$SECONDS_T" -J)
	[ "$dir" = down ] && args+=(-R)
	if ! iperf_server; then
		NOTES+=("$tool $dir (round $3): iperf3 -s did not start: $(last_line "$W/logs/iperf-server.log" "?")")
		kill "$IPERF_SRV" 2>/dev/null
		return 1
	fi
	case $tool in
	sbx) helper=sbx
	     watch_run $((SECONDS_T + 20)) sbx "$out" "${SBXRUN[@]}" "${SBX_NET[@]}" "$NETIMG" iperf3 "${args[@]}" ;;
	sbx-relay)
	     watch_run $((SECONDS_T + 20)) sbx-relay "$out" "${SBXRUN[@]}" "${SBX_RELAY[@]}" "$NETIMG" iperf3 "${args[@]}" ;;
	slirp4netns)
	     watch_run $((SECONDS_T + 20)) "$S4N_PID" "$out" "${IN_NS[@]}" "$IPERF" "${args[@]}" ;;
	host) args[1]=127.0.0.1
	     watch_run $((SECONDS_T + 20)) "" "$out" "$IPERF" "${args[@]}" ;;
	esac
	kill "$IPERF_SRV" 2>/dev/null
	wait "$IPERF_SRV" 2>/dev/null
	res=$(iperf_result "$out")
	est=$(sed -n 2p <<<"$res"); res=$(head -n 1 <<<"$res")
	# the helper's figures hold for the transfer even when the end failed
	[ -n "$WR_CPU" ] && echo "$WR_CPU" >>"$W/cpu.$tool.$dir"
	[ -n "$WR_SYSCALLS" ] && echo "$WR_SYSCALLS" >>"$W/sys.$tool.$dir"
	[ -n "$WR_RSS" ] && echo "$WR_RSS" >>"$W/rss.$tool"
	if [ "${res:0:1}" = '!' ] || [ "$WR_RC" != 0 ]; then
		[ -n "$est" ] && echo "$est" >>"$W/est.$tool.$dir"
		why=${res#!}
		[ "${res:0:1}" = '!' ] || why="exit status $WR_RC"
		[ "$WR_RC" != 0 ] && [ -s "$out.err" ] && why="$why ($(last_line "$out.err" ""))"
		[ -n "$WR_NOTE" ] && why="$WR_NOTE: $why"
		NOTES+=("$tool ${dir} (round $3): failed: $why")
		return 1
	fi
	[ -n "$WR_NOTE" ] && NOTES+=("$tool $dir (round $3): $WR_NOTE")
	echo "${res%% *}" >>"$W/tp.$tool.$dir"
	return 0
}
tool_ready() {   # TOOL -> 0 when it can run, else sets WHY
	case $1 in
	sbx|sbx-relay) [ -n "$NETIMG" ] || { WHY="no image"; return 1; } ;;
	slirp4netns) [ $HAVE_S4N = 1 ] && [ $S4N_OK = 1 ] || { WHY=$S4N_WHY; return 1; } ;;
	esac
	return 0
}
if want throughput; then
	if [ $HAVE_IPERF = 0 ]; then
		echo "throughput: skipped (iperf3 not installed: apt-get install -y iperf3)"
	else
		for ((round = 1; round <= ROUNDS; round++)); do
			for dir in up down; do
				for tool in "${TOOLS[@]}"; do
					tool_ready "$tool" || continue
					note "throughput round $round/$ROUNDS: $tool $dir (${SECONDS_T} s)"
					# one retry: a failure is reported in the notes, not hidden
					throughput_one "$tool" "$dir" "$round" && continue
					note "throughput: $tool $dir failed, once more"
					throughput_one "$tool" "$dir" "$round" && TPRETRY[$tool,$dir]=1
				done
			done
		done
	fi
	for tool in "${TOOLS[@]}"; do
		for dir in up down; do
			if [ $HAVE_IPERF = 0 ]; then
				TP[$tool,$dir]="!iperf3 not installed"
			elif ! tool_ready "$tool"; then
				TP[$tool,$dir]="!$WHY"
			elif [ -s "$W/tp.$tool.$dir" ]; then
				TP[$tool,$dir]=$(median %.2f <"$W/tp.$tool.$dir")
			elif [ -s "$W/est.$tool.$dir" ]; then
				TP[$tool,$dir]="!~$(median %.2f <"$W/est.$tool.$dir")"
				TPEST=1
				[ "$tool" = sbx ] && SBX_OK=0
			else
				TP[$tool,$dir]="!failed"
				[ "$tool" = sbx ] && SBX_OK=0
			fi
			[ -s "$W/cpu.$tool.$dir" ] && TPCPU[$tool,$dir]=$(median %.0f <"$W/cpu.$tool.$dir")
			[ -s "$W/sys.$tool.$dir" ] && TPSYS[$tool,$dir]=$(median %.0f <"$W/sys.$tool.$dir")
		done
	done
fi

# ---------------------------------------------------------------------------
# 2. Connect latency
# ---------------------------------------------------------------------------
declare -A LATR=() LATRR=()
if want latency; then
	if [ $HAVE_LAT = 0 ]; then
		for tool in "${TOOLS[@]}"; do LATR[$tool]="!$LAT_WHY"; LATRR[$tool]="!$LAT_WHY"; done
	else
		"$LAT" serve 127.0.0.1 "$LAT_PORT" 600 <"$W/.alive" >"$W/logs/lat-server.log" 2>&1 8>&- &
		LAT_SRV=$!
		BG_PIDS+=("$LAT_SRV")
		"$LAT" serve 127.0.0.1 "$RR_PORT" 600 echo <"$W/.alive" >"$W/logs/rr-server.log" 2>&1 8>&- &
		RR_SRV=$!
		BG_PIDS+=("$RR_SRV")
		if ! wait_listen "$LAT_PORT" 5 || ! wait_listen "$RR_PORT" 5; then
			for tool in "${TOOLS[@]}"; do
				LATR[$tool]="!server failed: $(last_line "$W/logs/lat-server.log" "?")"
				LATRR[$tool]="!server failed: $(last_line "$W/logs/rr-server.log" "?")"
			done
		else
			for tool in "${TOOLS[@]}"; do
				if ! tool_ready "$tool"; then LATR[$tool]="!$WHY"; LATRR[$tool]="!$WHY"; continue; fi
				note "latency: $tool ($CONNS connections)"
				out=$W/logs/lat-$tool.out
				case $tool in
				sbx) watch_run 120 sbx "$out" "${SBXRUN[@]}" "${SBX_NET[@]}" "$NETIMG" \
				         /usr/bin/connlat connect 10.0.2.2 "$LAT_PORT" "$CONNS" ;;
				sbx-relay) watch_run 120 sbx-relay "$out" "${SBXRUN[@]}" "${SBX_RELAY[@]}" "$NETIMG" \
				         /usr/bin/connlat connect 10.0.2.2 "$LAT_PORT" "$CONNS" ;;
				slirp4netns) watch_run 120 "$S4N_PID" "$out" "${IN_NS[@]}" \
				         "$LAT" connect 10.0.2.2 "$LAT_PORT" "$CONNS" ;;
				host) watch_run 120 "" "$out" "$LAT" connect 127.0.0.1 "$LAT_PORT" "$CONNS" ;;
				esac
				m= med= p99= n=
				read -r m med p99 n 2>/dev/null <"$out"
				if [ "$WR_RC" = 0 ] && [ -n "${p99:-}" ]; then
					LATR[$tool]="$m $med $p99"
				else
					why=$(last_line "$out.err" "exit status $WR_RC")
					[ -n "$WR_NOTE" ] && why="$WR_NOTE: $why"
					LATR[$tool]="!failed"
					NOTES+=("latency $tool: failed: $why")
					[ "$tool" = sbx ] && SBX_OK=0
				fi
				note "request-response: $tool ($CONNS exchanges)"
				out=$W/logs/rr-$tool.out
				case $tool in
				sbx) watch_run 120 sbx "$out" "${SBXRUN[@]}" "${SBX_NET[@]}" "$NETIMG" \
				         /usr/bin/connlat rr 10.0.2.2 "$RR_PORT" "$CONNS" ;;
				sbx-relay) watch_run 120 sbx-relay "$out" "${SBXRUN[@]}" "${SBX_RELAY[@]}" "$NETIMG" \
				         /usr/bin/connlat rr 10.0.2.2 "$RR_PORT" "$CONNS" ;;
				slirp4netns) watch_run 120 "$S4N_PID" "$out" "${IN_NS[@]}" \
				         "$LAT" rr 10.0.2.2 "$RR_PORT" "$CONNS" ;;
				host) watch_run 120 "" "$out" "$LAT" rr 127.0.0.1 "$RR_PORT" "$CONNS" ;;
				esac
				m= med= p99= n=
				read -r m med p99 n 2>/dev/null <"$out"
				if [ "$WR_RC" = 0 ] && [ -n "${p99:-}" ]; then
					LATRR[$tool]="$m $med $p99"
				else
					why=$(last_line "$out.err" "exit status $WR_RC")
					[ -n "$WR_NOTE" ] && why="$WR_NOTE: $why"
					LATRR[$tool]="!failed"
					NOTES+=("request-response $tool: failed: $why")
					[ "$tool" = sbx ] && SBX_OK=0
				fi
			done
		fi
		kill "$LAT_SRV" "$RR_SRV" 2>/dev/null
	fi
fi

# ---------------------------------------------------------------------------
# 3. Helper CPU with one idle TCP connection
# ---------------------------------------------------------------------------
declare -A IDLE=()
if want idle; then
	if [ $HAVE_LAT = 0 ]; then
		for tool in sbx slirp4netns; do IDLE[$tool]="!$LAT_WHY"; done
	else
		"$LAT" serve 127.0.0.1 "$HOLD_PORT" 600 hold <"$W/.alive" >"$W/logs/hold-server.log" 2>&1 8>&- &
		HOLD_SRV=$!
		BG_PIDS+=("$HOLD_SRV")
		wait_listen "$HOLD_PORT" 5
		for tool in sbx slirp4netns; do
			if ! tool_ready "$tool"; then IDLE[$tool]="!$WHY"; continue; fi
			note "idle: $tool (one connection, 3 s)"
			out=$W/logs/idle-$tool.out
			case $tool in
			sbx) watch_run 30 sbx "$out" "${SBXRUN[@]}" "${SBX_NET[@]}" "$NETIMG" \
			         /usr/bin/connlat hold 10.0.2.2 "$HOLD_PORT" 3 ;;
			slirp4netns) watch_run 30 "$S4N_PID" "$out" "${IN_NS[@]}" \
			         "$LAT" hold 10.0.2.2 "$HOLD_PORT" 3 ;;
			esac
			if [ "$WR_RC" = 0 ] && [ -n "$WR_CPU" ]; then
				IDLE[$tool]="$WR_CPU $WR_SYSCALLS"
			else
				IDLE[$tool]="!failed"
				NOTES+=("idle $tool: failed: ${WR_NOTE:+$WR_NOTE: }$(last_line "$out.err" "exit status $WR_RC")")
				[ "$tool" = sbx ] && SBX_OK=0
			fi
		done
		kill "$HOLD_SRV" 2>/dev/null
	fi
fi

# ---------------------------------------------------------------------------
# 4. Start-up: --network none vs slirp, on a cached busybox image
# ---------------------------------------------------------------------------
HYPERFINE=
if [ "$LOOP" = 0 ] && command -v hyperfine >/dev/null; then
	HYPERFINE=hyperfine
	HF_SHELL=(-N)
	hyperfine -N --runs 1 --style none true >/dev/null 2>&1 || HF_SHELL=()
fi
SU_LABELS=() SU_RES=() SU_CMDS=()
if want startup; then
	IMAGE=$W/busybox.tar
	if ! python3 "$MKIMAGE" busybox --format docker-legacy --out "$IMAGE" >"$W/logs/mkimage.log" 2>&1; then
		cat "$W/logs/mkimage.log" >&2
		die "building the busybox image failed (is busybox-static installed?)"
	fi
	for v in none slirp; do
		label="sbx --network $v"
		cmd=("${SBXRUN[@]}")
		[ "$v" = none ] && cmd+=(--network none)
		cmd+=("$IMAGE" true)
		# the first run imports the image; the second shows an error readably
		if ! timeout 120 "${cmd[@]}" </dev/null >"$W/logs/startup-$v.log" 2>&1 ||
		   ! timeout 120 "${cmd[@]}" </dev/null >"$W/logs/startup-$v.log" 2>&1; then
			echo "$label: failed ($(last_line "$W/logs/startup-$v.log" "?"))"
			SU_LABELS+=("$label"); SU_RES+=("!failed"); SU_CMDS+=("")
			SBX_OK=0
			continue
		fi
		q=""
		for a in "${cmd[@]}"; do q+="${q:+ }$(printf '%q' "$a")"; done
		SU_LABELS+=("$label"); SU_RES+=("?"); SU_CMDS+=("$q")
	done
	# interleaved rounds, so that load changing on a shared machine hits both
	rounds=$(( RUNS < 5 ? RUNS : 5 ))
	for i in "${!SU_CMDS[@]}"; do : >"$W/su.$i"; done
	if [ -z "$HYPERFINE" ]; then
		for i in "${!SU_CMDS[@]}"; do
			[ "${SU_RES[$i]}" = "?" ] || continue
			eval "cmd=(${SU_CMDS[$i]})"
			for k in 1 2 3; do "${cmd[@]}" </dev/null >/dev/null 2>&1; done
		done
	fi
	for ((r = 0; r < rounds; r++)); do
		n=$(( RUNS / rounds + (r < RUNS % rounds ? 1 : 0) ))
		note "start-up round $((r + 1))/$rounds: $n runs of each"
		for i in "${!SU_CMDS[@]}"; do
			[ "${SU_RES[$i]}" = "?" ] || continue
			if [ -n "$HYPERFINE" ]; then
				warm=$(( r == 0 ? 3 : 1 ))
				if ! timeout 600 hyperfine "${HF_SHELL[@]}" --style none --warmup "$warm" \
					--runs "$n" --export-json "$W/hf.json" -- "${SU_CMDS[$i]}" \
					</dev/null >"$W/logs/hf.out" 2>&1; then
					SU_RES[$i]="!failed"; SBX_OK=0
					NOTES+=("${SU_LABELS[$i]}: $(last_line "$W/logs/hf.out" "hyperfine failed")")
					continue
				fi
				python3 -c 'import json,sys
for t in json.load(open(sys.argv[1]))["results"][0]["times"]:
    print(round(t * 1e6))' "$W/hf.json" >>"$W/su.$i"
				continue
			fi
			eval "cmd=(${SU_CMDS[$i]})"
			for ((k = 0; k < n; k++)); do
				s=$(now_us)
				"${cmd[@]}" </dev/null >/dev/null 2>"$W/logs/su.err"; rc=$?
				e=$(now_us)
				if [ $rc -ne 0 ]; then
					SU_RES[$i]="!failed"; SBX_OK=0
					NOTES+=("${SU_LABELS[$i]}: $(last_line "$W/logs/su.err" "exit status $rc")")
					break
				fi
				echo $((e - s)) >>"$W/su.$i"
			done
		done
	done
	for i in "${!SU_CMDS[@]}"; do
		[ "${SU_RES[$i]}" = "?" ] || continue
		SU_RES[$i]=$(awk '{ print $1 / 1000 }' "$W/su.$i" | median %.2f) || SU_RES[$i]="!no samples"
	done
fi

# ---------------------------------------------------------------------------
# 5. Optional profile of sbx-net during one more upload
# ---------------------------------------------------------------------------
PROFILE_OUT=
if [ "$PROFILE" = 1 ] && [ -n "$NETIMG" ] && [ $HAVE_IPERF = 1 ]; then
	if ! command -v perf >/dev/null; then
		PROFILE_OUT="--profile: perf is not installed (apt-get install -y linux-perf)"
	elif iperf_server; then
		note "profile: sbx up with perf on sbx-net"
		out=$W/logs/iperf-profile.json
		"${SBXRUN[@]}" "${SBX_NET[@]}" "$NETIMG" iperf3 -c 10.0.2.2 -p "$IPERF_PORT" \
			-t "$SECONDS_T" -J </dev/null >"$out" 2>&1 8>&- &
		ppid_=$!
		BG_PIDS+=("$ppid_")
		hp=
		for ((i = 0; i < 40; i++)); do hp=$(child_named "$ppid_" sbx-net) && break; nap 0.05; done
		nap 1
		d=$(( SECONDS_T > 3 ? 2 : 1 ))
		ev=cpu-clock
		[ "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)" -gt 1 ] && ev=cpu-clock:u
		if [ -n "$hp" ] && timeout 60 perf record -q -e "$ev" --call-graph dwarf,16384 -p "$hp" \
			-o "$W/perf.data" -- sleep "$d" >"$W/logs/perf.log" 2>&1; then
			# folded stacks, callers first, the common main-loop prefix cut
			PROFILE_OUT=$(perf report -i "$W/perf.data" --stdio --no-children --sort dso,sym \
				--percent-limit 2 -g folded,2,caller,function,percent 2>/dev/null |
				grep -v '^#' | grep -v '^[[:space:]]*$' |
				sed -e 's/^\([0-9.]*%\) .*;main;g_main_loop_run;/\1 main;g_main_loop_run;/' \
				    -e 's/;entry_SYSCALL_64_after_hwframe//' | cut -c1-200 | head -n 50)
			[ "$ev" = cpu-clock:u ] && PROFILE_OUT="(user space only: kernel.perf_event_paranoid > 1)
$PROFILE_OUT"
		else
			PROFILE_OUT="--profile: perf record failed: $(last_line "$W/logs/perf.log" "sbx-net not found")"
		fi
		timeout $((SECONDS_T + 20)) tail --pid="$ppid_" -f /dev/null
		kill "$ppid_" "$IPERF_SRV" 2>/dev/null
	fi
fi

# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------
cell() {   # a result, an estimate (~N), or "-" for a reason given apart
	local v=$1
	case $v in '!~'*) echo "${v:1}" ;; '!'*) echo - ;; *) echo "$v" ;; esac
}
# why_of V...: the reasons of the failed cells, once each
why_of() {
	local v out=""
	for v in "$@"; do
		case $v in '!~'*|'') ;; '!'*) case "|$out|" in *"|${v:1}|"*) ;; *) out+="${out:+|}${v:1}" ;; esac ;; esac
	done
	[ -n "$out" ] && echo "(${out//|/; })"
}
num() { [ -n "$1" ] && [ "${1:0:1}" != '!' ]; }
verdict() {   # VALUE OP LIMIT
	awk -v x="$1" -v op="$2" -v l="$3" 'BEGIN {
		ok = (op == ">=") ? (x >= l) : (op == "<=") ? (x <= l) : (x < l)
		print ok ? "ok" : "OVER TARGET" }'
}

echo
if want throughput; then
	echo "1. TCP throughput, Gbit/s (iperf3, 1 stream, MTU $MTU, ${SECONDS_T} s each way$(
		[ "$ROUNDS" -gt 1 ] && echo ", median of $ROUNDS rounds"))"
	echo "   helper: the network helper's CPU (% of one CPU) and system calls/s during the transfer"
	printf '%-16s %10s %10s   %-20s %-20s\n' tool "up" "down" "helper up" "helper down"
	printf '%-16s %10s %10s   %-20s %-20s\n' "" "guest->host" "host->guest" "" ""
	printf '%-16s %10s %10s   %-20s %-20s\n' ---------------- ---------- ---------- \
		-------------------- --------------------
	for tool in "${TOOLS[@]}"; do
		hu= hd=
		[ -n "${TPCPU[$tool,up]:-}" ] && hu="${TPCPU[$tool,up]}%, ${TPSYS[$tool,up]:-?}/s"
		[ -n "${TPCPU[$tool,down]:-}" ] && hd="${TPCPU[$tool,down]}%, ${TPSYS[$tool,down]:-?}/s"
		label=$tool; [ "$tool" = host ] && label="host loopback"
		u=$(cell "${TP[$tool,up]}") d=$(cell "${TP[$tool,down]}")
		[ -n "${TPRETRY[$tool,up]:-}" ] && u="*$u"
		[ -n "${TPRETRY[$tool,down]:-}" ] && d="*$d"
		why=$(why_of "${TP[$tool,up]}" "${TP[$tool,down]}")
		if [ -n "$why" ] && [ -z "$hu$hd" ]; then
			printf '%-16s %10s %10s   %s\n' "$label" "$u" "$d" "$why"
		else
			printf '%-16s %10s %10s   %-20s %-20s %s\n' "$label" "$u" "$d" "$hu" "$hd" "$why"
		fi
	done
	[ ${#TPRETRY[@]} -gt 0 ] && echo "   * after a failed attempt (see the notes)"
	[ "$TPEST" = 1 ] && echo "   ~ every attempt failed (see the notes): the rate iperf3 saw before the failure"
	echo
	for t in sbx sbx-relay; do
	for dir in up down; do
		a=${TP[$t,$dir]} b=${TP[slirp4netns,$dir]} h=${TP[host,$dir]}
		if num "$a" && num "$b"; then
			x=$(ratio "$a" "$b")
			line="$t/slirp4netns $dir = $x (target >= 1.30: $(verdict "$x" ">=" 1.3))"
		elif [ "${a:0:2}" = '!~' ] && num "$b"; then
			x=$(ratio "${a:2}" "$b")
			line="$t/slirp4netns $dir = n/a: $t failed (~$x before the failure)"
		else
			line="$t/slirp4netns $dir = n/a"
		fi
		num "$a" && num "$h" && line+=";  $t/host = $(ratio "$a" "$h")"
		echo "$line"
	done
	done
	echo
	echo "1b. Resident memory during the transfers (VmRSS, the largest total sampled, MB)"
	for tool in sbx sbx-relay slirp4netns; do
		[ -s "$W/rss.$tool" ] || { echo "$tool: no samples"; continue; }
		read -r t sup hlp < <(sort -n -r "$W/rss.$tool" | head -n 1)
		if [ "$tool" = sbx-relay ]; then
			echo "sbx-relay: supervisor + sbx-net $(awk -v k="$sup" 'BEGIN { printf "%.1f", k / 1024 }') +" \
				"relay $(awk -v k="$hlp" 'BEGIN { printf "%.1f", k / 1024 }') =" \
				"$(awk -v t="$t" 'BEGIN { printf "%.1f", t / 1024 }')"
		elif [ "$tool" = sbx ]; then
			mb=$(awk -v t="$t" 'BEGIN { printf "%.1f", t / 1024 }')
			echo "sbx: supervisor $(awk -v k="$sup" 'BEGIN { printf "%.1f", k / 1024 }') +" \
				"sbx-net $(awk -v k="$hlp" 'BEGIN { printf "%.1f", k / 1024 }') = $mb" \
				"(target <= 6.0: $(verdict "$mb" "<=" 6))"
		else
			echo "slirp4netns: $(awk -v k="$hlp" 'BEGIN { printf "%.1f", k / 1024 }')"
		fi
	done
	echo
fi

if want latency; then
	echo "2. TCP connect latency, microseconds ($CONNS connect()s to 127.0.0.1 on the host)"
	printf '%-16s %10s %10s %10s\n' tool mean median p99
	printf '%-16s %10s %10s %10s\n' ---------------- ---------- ---------- ----------
	for tool in "${TOOLS[@]}"; do
		label=$tool; [ "$tool" = host ] && label="host loopback"
		v=${LATR[$tool]:-!not run}
		if num "$v"; then
			read -r m med p99 <<<"$v"
			printf '%-16s %10s %10s %10s\n' "$label" "$m" "$med" "$p99"
		else
			printf '%-16s %10s %10s %10s   %s\n' "$label" - - - "$(why_of "$v")"
		fi
	done
	for t in sbx sbx-relay; do
	a=${LATR[$t]:-} b=${LATR[slirp4netns]:-}
	if num "$a" && num "$b"; then
		x=$(ratio "${a%% *}" "${b%% *}")
		read -r _ am _ <<<"$a"; read -r _ bm _ <<<"$b"
		echo "$t/slirp4netns mean = $x (target <= 0.80: $(verdict "$x" "<=" 0.8));" \
			"median = $(ratio "$am" "$bm")"
	else
		echo "$t/slirp4netns mean = n/a"
	fi
	done
	echo
	echo "2b. TCP request-response latency, microseconds ($CONNS exchanges of 1 byte each way" \
		"on one connection, TCP_NODELAY)"
	printf '%-16s %10s %10s %10s\n' tool mean median p99
	printf '%-16s %10s %10s %10s\n' ---------------- ---------- ---------- ----------
	for tool in "${TOOLS[@]}"; do
		label=$tool; [ "$tool" = host ] && label="host loopback"
		v=${LATRR[$tool]:-!not run}
		if num "$v"; then
			read -r m med p99 <<<"$v"
			printf '%-16s %10s %10s %10s\n' "$label" "$m" "$med" "$p99"
		else
			printf '%-16s %10s %10s %10s   %s\n' "$label" - - - "$(why_of "$v")"
		fi
	done
	for t in sbx sbx-relay; do
	a=${LATRR[$t]:-} b=${LATRR[slirp4netns]:-}
	if num "$a" && num "$b"; then
		x=$(ratio "${a%% *}" "${b%% *}")
		read -r _ am _ <<<"$a"; read -r _ bm _ <<<"$b"
		echo "$t/slirp4netns mean = $x (target <= 0.80: $(verdict "$x" "<=" 0.8));" \
			"median = $(ratio "$am" "$bm")"
	else
		echo "$t/slirp4netns mean = n/a"
	fi
	done
	echo
fi

if want idle; then
	echo "3. Network helper with one idle TCP connection open (sampled over ~2 s)"
	printf '%-16s %10s %12s\n' tool "CPU %" "syscalls/s"
	printf '%-16s %10s %12s\n' ---------------- ---------- ------------
	for tool in sbx slirp4netns; do
		v=${IDLE[$tool]:-!not run}
		if num "$v"; then
			read -r c s <<<"$v"
			printf '%-16s %10s %12s\n' "$tool" "$c" "$s"
		else
			printf '%-16s %10s %12s   %s\n' "$tool" - - "$(why_of "$v")"
		fi
	done
	a=${IDLE[sbx]:-} b=${IDLE[slirp4netns]:-}
	if num "$a" && num "$b"; then
		echo "sbx-net idle CPU = ${a%% *}%, slirp4netns ${b%% *}%" \
			"(target: no more than slirp4netns + 2: $(verdict "${a%% *}" "<=" $(( ${b%% *} + 2 ))))"
	fi
	echo
fi

if want startup; then
	echo "4. Start-up, median ms of $RUNS runs of \`sbx run IMAGE true\` (cached busybox;" \
		"$(if [ -n "$HYPERFINE" ]; then hyperfine --version; else echo "bash loop"; fi))"
	printf '%-22s %10s\n' variant "median ms"
	printf '%-22s %10s\n' ---------------------- ----------
	for i in "${!SU_LABELS[@]}"; do
		printf '%-22s %10s   %s\n' "${SU_LABELS[$i]}" "$(cell "${SU_RES[$i]}")" "$(why_of "${SU_RES[$i]}")"
	done
	if [ ${#SU_RES[@]} = 2 ] && num "${SU_RES[0]}" && num "${SU_RES[1]}"; then
		dlt=$(awk -v a="${SU_RES[1]}" -v b="${SU_RES[0]}" 'BEGIN { printf "%.2f", a - b }')
		echo "slirp - none = $dlt ms (target < 10: $(verdict "$dlt" "<" 10))"
	fi
	echo
fi

if [ ${#NOTES[@]} -gt 0 ]; then
	echo "Notes:"
	for n in "${NOTES[@]}"; do echo "  - $n"; done
	echo
fi
if [ -n "$PROFILE_OUT" ]; then
	echo "Profile of sbx-net during an upload (perf, callers):"
	echo "$PROFILE_OUT"
	echo
fi

for dir in up down; do
	want throughput && [ $HAVE_IPERF = 1 ] && [ "${TP[sbx,$dir]:0:1}" = '!' ] && SBX_OK=0
done
if [ "$SBX_OK" = 1 ]; then exit 0; fi
echo "$PROG: sbx failed" >&2
exit 1
