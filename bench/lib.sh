# bench/lib.sh: what every benchmark does when started as root — pick an
# unprivileged user, stage the programs where that user can run them (the
# checkout may be root-only), and re-run the script as that user.
# Sourced by the scripts; they define die and note.

# Sets user and group: $SBX_BENCH_USER, else the first of sbxtest, sbxdev.
bench_pick_user() {
	user=${SBX_BENCH_USER:-}
	if [ -z "$user" ]; then
		for u in sbxtest sbxdev; do
			if getent passwd "$u" >/dev/null; then user=$u; break; fi
		done
	fi
	[ -n "$user" ] || die "running as root and no unprivileged user found (set SBX_BENCH_USER)"
	getent passwd "$user" >/dev/null || die "no such user: $user"
	[ "$(id -u "$user")" -ne 0 ] || die "SBX_BENCH_USER must not be root"
	group=$(id -gn "$user")
}

# bench_stage SBX SCRIPT [FILE...]: a temp dir W on /dev/shm (removed at exit
# unless KEEP=1) holding sbx with its helpers, the script, this library and
# the files given, owned by $user.
bench_stage() {
	local sbx=$1 script=$2 f
	shift 2
	W=$(mktemp -d /dev/shm/sbx-bench.XXXXXX) || die "cannot make a temp dir in /dev/shm"
	if [ "${KEEP:-0}" = 1 ]; then
		trap 'note "kept $W"' EXIT
	else
		trap 'rm -rf -- "$W"' EXIT
	fi
	trap 'exit 130' INT TERM HUP
	mkdir -p "$W/bin"
	# sbx finds sbx-store, sbx-net and sbx-switch beside itself.
	cp -- "$sbx" "$W/bin/sbx" || die "cannot copy into $W"
	for f in sbx-store sbx-net sbx-switch; do
		[ -e "$(dirname -- "$sbx")/$f" ] && { cp -- "$(dirname -- "$sbx")/$f" "$W/bin/$f" || die "cannot copy into $W"; }
	done
	cp -- "$script" "$(dirname -- "$script")/lib.sh" "$@" "$W/bin/" || die "cannot copy into $W"
	chmod 0755 "$W/bin/"*
	chown -R "$user:$group" "$W" && chmod 0700 "$W" || die "cannot chown $W to $user"
	note "running as root: re-running as user $user in $W"
}

# bench_run_as_user CMD...: run CMD as $user in $W with a clean environment.
bench_run_as_user() {
	local cmd=(env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	           HOME="$W/home" USER="$user" LOGNAME="$user" LANG=C.UTF-8 TERM="${TERM:-dumb}" "$@")
	cd "$W" || die "cannot cd to $W"
	if command -v runuser >/dev/null; then
		runuser -u "$user" -- "${cmd[@]}"
	elif command -v setpriv >/dev/null; then
		setpriv --reuid="$user" --regid="$group" --init-groups -- "${cmd[@]}"
	else
		die "neither runuser nor setpriv is available"
	fi
}
