"""Named and detached sandboxes: run -d/--name, ps, logs, exec, stop, kill, rm;
volumes, --env-file, sbx check."""
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from sbxtest import IS_ROOT, NamedSandboxCase, SbxTestCase, fixture

BUSYBOX = "busybox-legacy.tar"


class TestSandboxes(NamedSandboxCase):
    mode = "range"

    def detached(self, name, *cmd, opts=()):
        self.names.append(name)
        r = self.cmd(["run", "-d", "-q", "--name", name] + list(opts) + [fixture(BUSYBOX)] + list(cmd))
        self.assertEqual((r.rc, r.out), (0, name + "\n"), r)
        return r

    def ps(self, *args):
        r = self.cmd(["ps", "--format", "json"] + list(args))
        self.assertEqual(r.rc, 0, r)
        return {d["Name"]: d for d in json.loads(r.out)}

    def test_detached_ps_logs_stop_rm(self):
        self.detached("web", "sh", "-c", "echo hello-log; trap 'echo got-term; exit 0' TERM; "
                      "while :; do sleep 0.1; done")
        ps = self.ps()
        self.assertEqual(ps["web"]["Status"], "running")
        self.assertGreater(ps["web"]["Pid"], 1)
        table = self.cmd(["ps"]).out.splitlines()
        self.assertTrue(table[0].startswith("NAME"))
        self.assertEqual(table[1].split()[0], "web")
        self.assertTrue(self.wait_for(lambda: "hello-log" in self.cmd(["logs", "web"]).out))
        r = self.cmd(["stop", "-t", "5", "web"])
        self.assertEqual((r.rc, r.out), (0, "web\n"), r)
        self.assertNotIn("web", self.ps())
        ps = self.ps("-a")
        self.assertEqual(ps["web"]["Status"], "exited (0)")
        self.assertIn("got-term", self.cmd(["logs", "web"]).out)
        self.assertSbxError(self.cmd(["exec", "web", "true"]), contains="not running")
        self.assertEqual(self.cmd(["rm", "web"]).rc, 0)
        self.assertNotIn("web", self.ps("-a"))

    def test_no_host_fd_in_exec_or_detached(self):
        """Issue 9: `sbx exec` and a detached sandbox's log go through sbx's
        relay too; the program never holds the user's file or the log."""
        self.detached("fds", "sh", "-c", "for i in 1 2; do readlink /proc/$$/fd/$i; done; echo logged; "
                      "sleep 60")
        self.assertTrue(self.wait_for(lambda: "logged" in self.cmd(["logs", "fds"]).out))
        logged = self.cmd(["logs", "fds"]).out.splitlines()
        self.assertTrue(all(l.startswith("pipe:[") for l in logged[:2]), logged)
        path = os.path.join(self.tmp, "in")
        with open(path, "wb") as f:
            f.write(b"from-a-file\n")
        os.chmod(path, 0o644)
        out = os.path.join(self.tmp, "out")
        with open(path, "rb") as i, open(out, "wb") as o:
            p = self.popen(["exec", "-i", "fds", "sh", "-c",
                            "cat; for i in 0 1 2; do readlink /proc/$$/fd/$i; done"],
                           root=False, env={"XDG_RUNTIME_DIR": self.runtime}, stdin=i, stdout=o,
                           stderr=subprocess.PIPE)
            self.assertEqual(p.wait(timeout=60), 0, p.stderr.read())
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "from-a-file")
        self.assertTrue(all(l.startswith("pipe:[") for l in lines[1:4]), lines)

    def test_ps_escapes_the_image_name(self):
        """Issue 9: what ps prints of an image path reaches the terminal escaped."""
        evil = os.path.join(self.tmp, "img\x1b]52;c;eA==\x07\u009b2J.tar")
        with open(fixture(BUSYBOX), "rb") as src, open(evil, "wb") as dst:
            dst.write(src.read())
        os.chmod(evil, 0o644)
        self.names.append("esc")
        r = self.cmd(["run", "-d", "-q", "--name", "esc", evil, "sleep", "60"])
        self.assertEqual(r.rc, 0, r)
        p = self.popen(["ps"], root=False, env={"XDG_RUNTIME_DIR": self.runtime},
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, _ = p.communicate(timeout=60)
        self.assertIn(b"img\\x1b]52;c;eA==\\x07\\u009b2J.tar", out)
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn("\u009b".encode(), out)

    def test_name_in_use_and_invalid(self):
        self.detached("dup", "sleep", "30")
        r = self.cmd(["run", "-d", "--name", "dup", fixture(BUSYBOX), "sleep", "30"])
        self.assertSbxError(r, contains="already in use")
        self.assertSbxError(self.cmd(["run", "--name", "../x", fixture(BUSYBOX), "true"]),
                            contains="name '../x': use letters")

    def test_exec_joins_everything(self):
        self.detached("ex", "sh", "-c", "echo marker > /tmp/inside; sleep 60",
                      opts=["--hostname", "exhost"])
        self.assertTrue(self.wait_for(
            lambda: self.cmd(["exec", "ex", "cat", "/tmp/inside"]).out == "marker\n"))
        r = self.cmd(["exec", "ex", "sh", "-c",
                      "hostname; ps -o comm | sort | tr '\\n' ' '; echo; "
                      "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; ls /proc/self/fd"])
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertEqual(lines[0], "exhost")
        self.assertIn("sbx-init", lines[1])
        self.assertIn("sleep", lines[1])
        self.assertIn("CapEff:\t00000000a80425fb", lines)
        self.assertIn("NoNewPrivs:\t1", lines)
        self.assertIn("Seccomp:\t2", lines)
        self.assertEqual(lines[-4:], ["0", "1", "2", "3"])
        self.assertEqual(self.cmd(["exec", "ex", "sh", "-c", "exit 5"]).rc, 5)
        self.assertEqual(self.cmd(["exec", "-u", "1000", "ex", "id", "-u"]).out, "1000\n")
        self.assertEqual(self.cmd(["exec", "-w", "/tmp", "-e", "X=1", "ex", "sh", "-c",
                                   "pwd; echo $X"]).out, "/tmp\n1\n")
        self.assertEqual(self.cmd(["exec", "-i", "ex", "cat"], input=b"piped\n").out, "piped\n")
        self.assertEqual(self.cmd(["exec", "ex", "cat"], input=b"no -i").out, "")
        r = self.cmd(["exec", "ex", "nosuchcmd"])
        self.assertEqual(r.rc, 127, r)

    def test_exec_hides_its_command_line_before_the_exec(self):
        """exec's processes are renamed before one enters the sandbox's pid
        namespace: until the program's execve (held back 2 s by strace here)
        the sandbox must not read sbx's path, --root or -e values in
        /proc/PID/cmdline."""
        if not shutil.which("strace") or not IS_ROOT:
            self.skipTest("needs strace, and root to read the sandbox's /proc from the host")
        self.detached("hide", "sleep", "60")
        init = self.ps()["hide"]["Pid"]
        pidns = os.readlink("/proc/%d/ns/pid" % init)
        delay = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=execve",
                 "-e", "inject=execve:delay_enter=2000000"]
        p = self.popen(["exec", "-e", "SECRET=sbx-test-secret", "hide", "true"],
                       env={"XDG_RUNTIME_DIR": self.runtime, "ASAN_OPTIONS": ":".join(
                           filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"]))},
                       root=False, wrap=delay,  # LeakSanitizer cannot run under ptrace
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen = {}
        try:
            end = time.time() + 20
            while p.poll() is None and time.time() < end:
                for pid in filter(str.isdigit, os.listdir("/proc")):
                    try:
                        if os.readlink("/proc/%s/ns/pid" % pid) != pidns or int(pid) == init:
                            continue
                        with open("/proc/%s/cmdline" % pid, "rb") as f:
                            seen[int(pid)] = f.read()
                    except OSError:
                        pass
                time.sleep(0.05)
            out, err = p.communicate(timeout=30)
        finally:
            p.kill()
        self.assertEqual(p.returncode, 0, err)
        self.assertTrue(seen, "no exec process seen in the sandbox")
        for pid, cmdline in seen.items():
            self.assertNotIn(b"sbx-test-secret", cmdline, seen)
            self.assertNotIn(b"--root", cmdline, seen)
            self.assertNotIn(self.sbx.encode(), cmdline, seen)
        self.assertIn(b"sbx-exec", b"".join(seen.values()), seen)

    def test_exec_keeps_the_runs_filter(self):
        """sbx exec compiles the run's seccomp profile again: one a volume
        showed the job was rewritten by it ({"defaultAction": "SCMP_ACT_ALLOW"})
        and later execs ran under the job's filter. Now exec must get the
        run's very filter, or refuses."""
        vol = os.path.join(self.tmp, "vol")
        os.mkdir(vol, 0o755)
        prof = os.path.join(vol, "prof.json")
        with open(prof, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]},
                      f)
        st = os.stat(self.runtime)
        os.chown(vol, st.st_uid, st.st_gid)
        os.chown(prof, st.st_uid, st.st_gid)
        self.detached("sc", "sleep", "60", opts=["-v", vol + ":/vol",
                                                 "--security-opt", "seccomp=" + prof])
        r = self.cmd(["exec", "sc", "sh", "-c", "mkdir /tmp/d || echo refused"])
        self.assertIn("refused", r.out + r.err, r)
        r = self.cmd(["exec", "sc", "sh", "-c",
                      "echo '{\"defaultAction\": \"SCMP_ACT_ALLOW\"}' > /vol/prof.json"])
        self.assertEqual(r.rc, 0, r)
        r = self.cmd(["exec", "sc", "sh", "-c", "mkdir /tmp/d2 && echo made"])
        self.assertSbxError(r, rc=125, contains="no longer gives the run's filter")

    def test_kill_with_signal(self):
        # "ready" only once the trap is set: no signal races its installation
        self.detached("k", "sh", "-c", "trap 'echo usr1; exit 3' USR1; echo ready; "
                      "while :; do sleep 0.1; done")
        self.assertTrue(self.wait_for(lambda: "ready" in self.cmd(["logs", "k"]).out, 30))
        self.assertEqual(self.cmd(["kill", "-s", "USR1", "k"]).rc, 0)
        self.assertTrue(self.wait_for(lambda: self.ps("-a")["k"]["Status"] == "exited (3)"))
        self.assertIn("usr1", self.cmd(["logs", "k"]).out)

    def test_rm_force_and_running_refusal(self):
        self.detached("r", "sleep", "60")
        self.assertSbxError(self.cmd(["rm", "r"]), contains="sandbox r is running: stop it first")
        self.assertEqual(self.cmd(["rm", "-f", "r"]).rc, 0)
        self.assertNotIn("r", self.ps("-a"))

    def test_detached_rm_removes_state_on_exit(self):
        self.names.append("gone")
        r = self.cmd(["run", "-d", "--rm", "--name", "gone", fixture(BUSYBOX), "true"])
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(self.wait_for(lambda: "gone" not in self.ps("-a")))

    def test_dead_supervisor_is_not_a_stuck_name(self):
        self.detached("orphan", "sleep", "60")
        sup = None
        with open(os.path.join(self.runtime, "sbx", "orphan", "state")) as f:
            for line in f:
                if line.startswith("SupervisorPid="):
                    sup = int(line.split("=")[1])
        os.kill(sup, signal.SIGKILL)
        self.assertTrue(self.wait_for(lambda: self.ps("-a")["orphan"]["Running"] is False))
        self.assertEqual(self.cmd(["rm", "orphan"]).rc, 0)
        self.detached("orphan", "true")  # the name is free again

    def running_as_user(self, marker):
        """Pids of the test user's processes whose command line holds marker."""
        uid = self.user_for(self.mode).pw_uid
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.stat("/proc/" + pid).st_uid != uid:
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if marker in f.read():
                        found.append(int(pid))
            except OSError:
                pass
        return found

    def test_unrecordable_state_stops_the_run(self):
        """No room for the state file: the sandbox is stopped (125, one line),
        never left running where ps, stop and rm cannot reach it."""
        self.small_runtime("size=64k")
        self.fill_runtime()
        for opts in (["-d"], []):
            self.names.append("lost")
            r = self.cmd(["run", "-q", "--name", "lost", "--network", "none"] + opts +
                         [fixture(BUSYBOX), "sleep", "1357"])
            self.assertSbxError(r, contains="sandbox lost: its state cannot be recorded")
            self.assertIn("No space left on device", r.err)
            self.assertTrue(self.wait_for(lambda: not self.running_as_user(b"1357"), 10),
                            "the sandbox runs on out of sight: %r" % r)
            self.assertNotIn("lost", self.ps("-a"))  # the name is free

    def test_rm_keeps_a_record_whose_supervisor_holds_the_lock(self):
        """rm of a name whose state is unreadable while its lock is held (a
        run starting, or out of reach) refuses: the record is all that leads
        to the processes."""
        import fcntl
        d = os.path.join(self.runtime, "sbx", "held")
        os.makedirs(d, 0o700)
        pw = self.user_for(self.mode)
        for p in (os.path.dirname(d), d):
            os.chmod(p, 0o700)
            os.chown(p, pw.pw_uid, pw.pw_gid)
        self.names.append("held")
        with open(os.path.join(d, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for rm in (["rm", "held"], ["rm", "-f", "held"]):
                self.assertSbxError(self.cmd(rm), contains="its supervisor still holds its lock")
                self.assertTrue(os.path.isdir(d))
        self.assertEqual(self.cmd(["rm", "held"]).rc, 0)  # unheld: damaged, removable
        self.assertFalse(os.path.exists(d))

    def test_claim_without_an_inode_leaves_no_name(self):
        """The lock cannot be made (no inode left): the name's directory goes
        too, so it is neither "damaged" in ps nor "in use"."""
        base = self.small_runtime("nr_inodes=64")
        n = 0
        try:
            while True:
                open(os.path.join(self.runtime, "f%d" % n), "w").close()
                n += 1
        except OSError:
            pass
        os.unlink(os.path.join(self.runtime, "f%d" % (n - 1)))  # room for NAME/, not NAME/lock
        self.names.append("noinode")
        r = self.cmd(["run", "-q", "--name", "noinode", fixture(BUSYBOX), "true"])
        self.assertSbxError(r, contains="lock")
        self.assertIn("No space left on device", r.err)
        self.assertEqual(os.listdir(base), [])
        self.assertNotIn("noinode", self.cmd(["ps", "-a"]).out)

    def test_detached_log_is_bounded(self):
        """-d's log stops at --log-size (default 16 MiB) and ends with one line
        saying the rest was dropped; the program is neither blocked nor
        killed for it."""
        log = os.path.join(self.runtime, "sbx", "big", "log")
        self.detached("big", "sh", "-c", "dd if=/dev/zero bs=1M count=20 2>/dev/null; echo tail")
        self.assertTrue(self.wait_for(lambda: self.ps("-a")["big"]["Status"] == "exited (0)", 60))
        size = os.path.getsize(log)
        self.assertGreaterEqual(size, 16 << 20)
        self.assertLess(size, (16 << 20) + 200)
        with open(log, "rb") as f:
            f.seek(-200, os.SEEK_END)
            end = f.read().decode(errors="replace")
        self.assertTrue(end.endswith("sbx: the output reached the log's bound of 16 MiB: "
                                     "the rest is dropped\n"), repr(end[-120:]))
        self.detached("small", "sh", "-c", "echo 0123456789; echo more", opts=["--log-size", "4"])
        self.assertTrue(self.wait_for(lambda: self.ps("-a")["small"]["Status"] == "exited (0)"))
        with open(os.path.join(self.runtime, "sbx", "small", "log")) as f:
            self.assertEqual(f.read(), "0123\nsbx: the output reached the log's bound of 4 bytes: "
                             "the rest is dropped\n")
        self.assertSbxError(self.cmd(["run", "--log-size", "1m", fixture(BUSYBOX), "true"]),
                            contains="--log-size: only with -d")

    def test_foreground_named_run(self):
        self.names.append("fg")
        r = self.cmd(["run", "--name", "fg", fixture(BUSYBOX), "sh", "-c", "exit 4"])
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(self.ps("-a")["fg"]["Status"], "exited (4)")

    def test_unknown_sandbox(self):
        for c in (["logs", "nope"], ["exec", "nope", "true"], ["stop", "nope"], ["rm", "nope"],
                    ["kill", "nope"]):
            self.assertSbxError(self.cmd(c), contains="no sandbox named nope")


class TestMountsAndEnv(SbxTestCase):
    mode = "single"

    def test_volumes(self):
        vol = os.path.join(self.tmp, "vol")
        os.mkdir(vol)
        os.chmod(vol, 0o777)
        with open(os.path.join(vol, "in"), "w") as f:
            f.write("from-host\n")
        os.chmod(os.path.join(vol, "in"), 0o644)
        r = self.run_ok(fixture(BUSYBOX), "sh", "-c", "cat /data/in; echo out > /data/out; pwd",
                        opts=["-v", vol + ":/data", "-w", "/data"])
        self.assertEqual(r.out, "from-host\n/data\n")
        with open(os.path.join(vol, "out")) as f:
            self.assertEqual(f.read(), "out\n")
        r = self.sbx_cmd(["run", "-q", "-v", vol + ":/data:ro", fixture(BUSYBOX), "sh", "-c",
                          "cat /data/in && echo x > /data/x"])
        self.assertIn("Read-only file system", r.err)
        self.assertFalse(os.path.exists(os.path.join(vol, "x")))
        r = self.run_ok(fixture(BUSYBOX), "cat", "/etc/motd",
                        opts=["-v", os.path.join(vol, "in") + ":/etc/motd:ro"])
        self.assertEqual(r.out, "from-host\n")

    def test_volume_errors(self):
        self.assertSbxError(self.sbx_cmd(["run", "-v", "/nonexistent:/x", fixture(BUSYBOX), "true"]),
                            contains="/nonexistent: No such file or directory")
        self.assertSbxError(self.sbx_cmd(["run", "-v", self.tmp + ":rel", fixture(BUSYBOX), "true"]),
                            contains="the container path must be absolute")
        self.assertSbxError(self.sbx_cmd(["run", "-v", self.tmp + ":/x:bogus", fixture(BUSYBOX),
                                          "true"]), contains="expected HOST:CONTAINER[:ro|rw]")

    def test_env_file(self):
        path = os.path.join(self.tmp, "env")
        with open(path, "w") as f:
            f.write("# comment\nA=1\n\nB=from-file\nPASSED\n")
        os.chmod(path, 0o644)
        r = self.run_ok(fixture(BUSYBOX), "sh", "-c", "echo $A $B $PASSED",
                        opts=["--env-file", path, "-e", "B=from-e"], env={"PASSED": "p"})
        self.assertEqual(r.out, "1 from-e p\n")
        self.assertSbxError(self.sbx_cmd(["run", "--env-file", "/nonexistent", fixture(BUSYBOX),
                                          "true"]), contains="--env-file /nonexistent: ")


class TestCheck(SbxTestCase):
    def test_check_reports(self):
        r = self.sbx_cmd(["check"], root=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("ok    unprivileged user namespaces", r.out)
        self.assertIn("ok    overlayfs inside a user namespace", r.out)
        self.assertIn("cgroup v2 delegation", r.out)
        self.assertTrue(r.out.rstrip().endswith("sbx can run here"))

    def test_debug_narrates_setup(self):
        r = self.sbx_cmd(["run", "--log-level", "debug", "--network", "none",
                          fixture(BUSYBOX), "true"])
        self.assertEqual(r.rc, 0, r)
        # the range is mapped by newuidmap, or by joining the user's holder
        self.assertRegex(r.err, r"newuidmap/newgidmap \d+: 0 -> |"
                         r"user namespace holder \d+ \(\S+\): joining its namespace")
        for step in ("mount overlay", "mount proc on /proc", "pivot_root",
                     "exec true (seccomp on)"):
            self.assertIn(step, r.err)


if __name__ == "__main__":
    unittest.main()


class TestStateFallback(SbxTestCase):
    mode = "single"

    def test_tmp_dir_taken_by_someone_else(self):
        """Without XDG_RUNTIME_DIR, /tmp/sbx-UID is used — unless another user
        made it first; then ~/.local/state/sbx/run. The real /tmp/sbx-UID is
        in use by every other test: this one runs sbx in a mount namespace of
        its own whose /tmp is a fresh tmpfs (the test's directories bound
        back in), with /tmp/sbx-UID planted there by root."""
        if not IS_ROOT:
            self.skipTest("needs root to plant another user's directory")
        pw = self.user_for(self.mode)
        home = os.path.join(self.tmp, "home")
        os.mkdir(home, 0o700)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        keep = [self.tmp] + [d for d in (os.path.dirname(self.sbx), fixture(BUSYBOX))
                             if d.startswith("/tmp/")]
        script = """
set -e
mount --make-rprivate /
old=$(mktemp -d /run/sbx-fallback-XXXXXX)
mount --bind /tmp "$old"
mount -t tmpfs -o mode=1777 tmpfs /tmp
for d in $KEEP; do
  top=/tmp/$(echo "${d#/tmp/}" | cut -d/ -f1)
  [ -e "$top" ] || { mkdir -p "$top"; mount --bind "$old/${top#/tmp/}" "$top"; }
done
mkdir -m 0700 /tmp/sbx-$USER_ID  # private in mode: only its owner (root) gives it away
setpriv --reuid=$USER_ID --regid=$GROUP_ID --clear-groups env -i PATH=/usr/bin:/bin \
    HOME="$HOME_DIR" ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" \
    sh -c '"$0" run --name fb -q --root "$1" "$2" true && echo run-ok && "$0" ps -a' \
    "$SBX" "$ROOT" "$IMAGE"
echo "planted=$(ls -A /tmp/sbx-$USER_ID | wc -l)"
"""
        env = dict(os.environ, KEEP=" ".join(keep), USER_ID=str(pw.pw_uid),
                   GROUP_ID=str(pw.pw_gid), HOME_DIR=home, SBX=self.sbx,
                   ROOT=self.store_for(self.mode), IMAGE=fixture(BUSYBOX))
        p = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertNoCrash(err)
        self.assertEqual(p.returncode, 0, out + err)
        self.assertIn("run-ok", out, err)
        self.assertIn("fb", out.split("run-ok", 1)[1], out)
        self.assertIn("planted=0", out, "sbx used a directory another user made")
        self.assertTrue(os.path.isdir(os.path.join(home, ".local", "state", "sbx", "run", "fb")))
