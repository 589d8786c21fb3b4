"""The user namespace holder (src/ns/holder.c): range-mode starts join a
user namespace a per-user process keeps, instead of running newuidmap and
newgidmap, and still get a user namespace of their own; a dead, stale or
foreign holder is replaced and never breaks a run."""
import json
import os
import re
import signal
import socket
import subprocess

from sbxtest import IS_ROOT, NamedSandboxCase, fixture

IMAGE = "busybox-legacy.tar"


class TestHolder(NamedSandboxCase):
    mode = "range"

    def run_debug(self, *cmd):
        opts = []
        while cmd and cmd[0].startswith("--"):
            opts, cmd = opts + list(cmd[:2]), cmd[2:]
        r = self.cmd(["run", "-q", "--log-level", "debug", "--network", "none"] + opts
                     + [fixture(IMAGE)] + list(cmd))
        self.assertEqual(r.rc, 0, r)
        return r

    def holder_pid(self, text):
        m = re.search(r"user namespace holder (\d+) \((\S+)\): joining its namespace", text)
        self.assertIsNotNone(m, text)
        self.assertTrue(m.group(2).startswith(os.path.join(self.runtime, "sbx", ".userns-holder-")),
                        m.group(2))
        return int(m.group(1))

    def socket_path(self):
        d = os.path.join(self.runtime, "sbx")
        socks = [f for f in os.listdir(d) if f.startswith(".userns-holder-")
                 and f.endswith(".sock")]
        self.assertEqual(len(socks), 1, socks)
        return os.path.join(d, socks[0])

    def tearDown(self):
        # end this test's holder (its socket goes with the runtime dir anyway)
        for pid in getattr(self, "holders", []):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        super().tearDown()

    def started(self, r):
        pid = self.holder_pid(r.err)
        self.holders = getattr(self, "holders", []) + [pid]
        return pid

    def test_second_start_joins_without_newuidmap(self):
        first = self.run_debug("true")
        self.assertIn("starting one", first.err)
        self.assertRegex(first.err, r"user namespace holder \d+ started")
        pid = self.started(first)
        second = self.run_debug("cat", "/proc/self/uid_map")
        self.assertEqual(self.started(second), pid)
        self.assertNotIn("newuidmap", second.err)
        self.assertNotIn("starting one", second.err)
        rows = [l.split() for l in second.out.splitlines()]
        self.assertEqual([r[0] for r in rows], ["0", "1"], second.out)
        self.assertGreaterEqual(int(rows[1][2]), 65535)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.assertTrue(f.read().startswith(b"sbx-userns-holder"))

    def test_holder_gets_no_user_environment_and_nothing_of_sbx(self):
        """Issue 9.5: every helper gets an explicit minimal environment. The
        holder outlives the run that started it by minutes: it must not keep
        that run's environment (its tokens), its terminal or its files."""
        if not IS_ROOT:
            self.skipTest("reading the holder's /proc/PID needs root")
        secret = {"AWS_SECRET_ACCESS_KEY": "sbx-test-secret", "GITHUB_TOKEN": "sbx-test-token"}
        r = self.cmd(["run", "-q", "--log-level", "debug", "--network", "none", fixture(IMAGE),
                      "true"], env=secret)
        self.assertEqual(r.rc, 0, r)
        pid = self.started(r)
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read()
        self.assertNotIn(b"sbx-test-secret", env)
        names = {e.split(b"=", 1)[0] for e in env.split(b"\0") if e.strip(b"\0")}
        self.assertEqual(names - {b"ASAN_OPTIONS", b"UBSAN_OPTIONS", b"LSAN_OPTIONS"}, set(), env)
        with open("/proc/%d/stat" % pid) as f:
            self.assertEqual(int(f.read().rsplit(")", 1)[1].split()[4]), 0, "a terminal")
        self.assertEqual(os.getsid(pid), pid, "not in a session of its own")
        # no capability in its namespace (the sandboxes' are its children)
        with open("/proc/%d/status" % pid) as f:
            st = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        self.assertEqual(st["NoNewPrivs"], "1")
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, "%s of the holder: %s" % (cap, st[cap]))
        fds = {int(fd): os.readlink("/proc/%d/fd/%s" % (pid, fd))
               for fd in os.listdir("/proc/%d/fd" % pid)}
        self.assertEqual([fds.pop(n) for n in (0, 1, 2)], ["/dev/null"] * 3)
        self.assertRegex(fds.pop(3), r"^socket:\[\d+\]$")  # where it listens
        self.assertEqual(list(fds.values()), [os.readlink("/proc/%d/ns/user" % pid)], fds)

    def test_sandbox_has_a_user_namespace_of_its_own(self):
        pid = self.started(self.run_debug("true"))
        if not IS_ROOT:
            self.skipTest("reading the holder's /proc/PID/ns needs root")
        held = os.readlink("/proc/%d/ns/user" % pid)
        # with the intermediate namespace (the default limit) and without
        for opts in ([], ["--pids-limit", "0"]):
            r = self.run_debug(*opts, "readlink", "/proc/self/ns/user")
            self.assertEqual(self.started(r), pid)
            self.assertRegex(r.out.strip(), r"^user:\[\d+\]$")
            self.assertNotEqual(r.out.strip(), held, opts)

    def test_pids_limit_counts_each_sandbox_alone(self):
        # Two sandboxes through one holder: A's processes must not count
        # against B's limit (each has an outer namespace of its own).
        self.started(self.run_debug("true"))
        a = self.popen(["run", "-q", "--network", "none", "--pids-limit", "20",
                        "--root", self.store_for(self.mode), fixture(IMAGE), "sh", "-c",
                        "for i in $(seq 15); do sleep 60 & done; echo ready; wait"],
                       root=False, env={"XDG_RUNTIME_DIR": self.runtime},
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(a.stdout.readline(), b"ready\n")
            r = self.cmd(["run", "-q", "--network", "none", "--pids-limit", "20", fixture(IMAGE),
                          "sh", "-c", "for i in $(seq 12); do sleep 0.2 & done; wait; echo ok"])
            self.assertEqual((r.rc, r.out), (0, "ok\n"), r)
        finally:
            a.kill()
            a.communicate()

    def test_supervisor_makes_the_sandbox_from_inside_the_holders_namespace(self):
        r = self.run_debug("true")
        pid = self.started(r)
        self.assertIn("user namespace holder %d: sbx entered its namespace" % pid, r.err)
        self.assertRegex(r.err, r"the sandbox's namespace is owned by uid \d+ of the holder's")
        self.assertNotIn("intermediate user namespace", r.err)
        if not IS_ROOT:
            return
        self.names.append("inside")
        d = self.cmd(["run", "-d", "-q", "--name", "inside", "--network", "none", fixture(IMAGE),
                      "sh", "-c", "echo ready; sleep 60"])
        self.assertEqual(d.rc, 0, d)
        self.assertTrue(self.wait_for(lambda: "ready" in self.cmd(["logs", "inside"]).out, 30))
        with open(os.path.join(self.runtime, "sbx", "inside", "state")) as f:
            sup = [int(l.split("=")[1]) for l in f if l.startswith("SupervisorPid=")][0]
        self.assertEqual(os.readlink("/proc/%d/ns/user" % sup),
                         os.readlink("/proc/%d/ns/user" % pid))
        # the host still sees the user's own uid, and sbx stop reaches it
        with open("/proc/%d/status" % sup) as f:
            uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
        self.assertEqual(set(uids), {str(self.user_for(self.mode).pw_uid)})
        self.assertEqual(self.cmd(["stop", "inside"]).rc, 0)

    def test_state_directory_found_before_entering(self):
        # Without XDG_RUNTIME_DIR the state lives in /tmp/sbx-<uid>: a
        # supervisor that is uid 0 inside the holder's namespace must still
        # record its sandbox there, not in /tmp/sbx-0.
        name = "holder-state-%d" % os.getpid()
        r = self.sbx_cmd(["run", "-d", "-q", "--name", name, "--network", "none", fixture(IMAGE),
                          "sh", "-c", "echo ready; sleep 60"])
        self.assertEqual((r.rc, r.out), (0, name + "\n"), r)
        try:
            ps = self.sbx_cmd(["ps", "--format", "json"])
            self.assertEqual(ps.rc, 0, ps)
            self.assertIn(name, ps.out)
            self.assertEqual(self.sbx_cmd(["stop", name]).rc, 0)
            self.assertTrue(self.wait_for(lambda: not any(
                d["Name"] == name and d["Running"]
                for d in json.loads(self.sbx_cmd(["ps", "-a", "--format", "json"]).out)), 30))
        finally:
            self.sbx_cmd(["rm", "-f", name])
        self.assertFalse(os.path.exists("/tmp/sbx-0/" + name))

    def test_dead_holder_is_replaced(self):
        pid = self.started(self.run_debug("true"))
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(self.wait_for(lambda: not os.path.exists("/proc/%d" % pid)))
        r = self.run_debug("true")
        self.assertIn("Connection refused; starting one", r.err)
        self.assertNotEqual(self.started(r), pid)

    def test_foreign_holder_is_refused_and_replaced(self):
        if not IS_ROOT:
            self.skipTest("another uid's socket needs root")
        self.started(self.run_debug("true"))
        path = self.socket_path()
        os.unlink(path)
        # root listens where the holder was: sbx must not take its answer
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.bind(path)
        os.chmod(path, 0o777)  # connectable by the user: the check is sbx's
        s.listen(8)
        try:
            r = self.run_debug("true")
        finally:
            s.close()
        self.assertIn("answered by uid 0, not ours", r.err)
        self.assertRegex(r.err, r"user namespace holder \d+ started")
        self.started(r)

    def test_holder_made_under_a_lower_process_limit_is_replaced(self):
        # Its namespace bounds every sandbox made through it by the limit
        # it was created with: a start under a higher one must not use it.
        r = self.run_as(["bash", "-c", 'ulimit -u 500 && exec "$@"', "bash", self.sbx, "run", "-q",
                         "--log-level", "debug", "--network", "none",
                         "--root", self.store_for(self.mode), fixture(IMAGE), "true"],
                        env={"XDG_RUNTIME_DIR": self.runtime})
        self.assertEqual(r.rc, 0, r)
        low = self.started(r)
        r = self.run_debug("true")
        self.assertIn("its process limit 500 is below ours", r.err)
        self.assertRegex(r.err, r"user namespace holder \d+ started")
        self.assertNotEqual(self.started(r), low)

    def test_holder_ends_when_its_socket_is_gone(self):
        pid = self.started(self.run_debug("true"))
        os.unlink(self.socket_path())
        self.assertTrue(self.wait_for(lambda: not os.path.exists("/proc/%d" % pid), timeout=30),
                        "holder %d still running" % pid)

    def test_holder_outlives_an_idle_pause(self):
        # It stays HOLDER_IDLE_MS (ten minutes) after the last start; it
        # used to read its socket's path from argv memory the process title
        # had cleared, and so exit at its first idle check (five seconds).
        import time
        pid = self.started(self.run_debug("true"))
        time.sleep(6.5)
        self.assertTrue(os.path.exists("/proc/%d" % pid), "holder %d ended when idle" % pid)
        self.assertEqual(self.started(self.run_debug("true")), pid)

    def pid_file(self):
        return self.socket_path() + ".pid"

    def test_later_starts_open_the_namespace_by_the_pid_file(self):
        pid = self.started(self.run_debug("true"))
        with open(self.pid_file()) as f:
            fields = f.read().split()
        self.assertEqual(int(fields[0]), pid, fields)
        before = os.stat(self.pid_file()).st_mtime_ns
        r = self.run_debug("cat", "/proc/self/uid_map")
        self.assertIn("user namespace holder %d (%s): joining its namespace (by its pid file)"
                      % (pid, self.socket_path()), r.err)
        rows = [l.split() for l in r.out.splitlines()]
        self.assertEqual([r[0] for r in rows], ["0", "1"], r.out)
        # the start is the holder's sign of use (it stays HOLDER_IDLE_MS after)
        self.assertGreater(os.stat(self.pid_file()).st_mtime_ns, before)

    def write_pid_file(self, text):
        path = self.pid_file()
        st = os.stat(os.path.dirname(path))
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, st.st_uid, st.st_gid)

    @staticmethod
    def start_time(pid):
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]

    def test_a_pid_file_that_lies_is_not_followed(self):
        pid = self.started(self.run_debug("true"))
        with open(self.pid_file()) as f:
            real = f.read().split()
        self.assertEqual(len(real), 5, real)
        sock_ino = str(os.lstat(self.socket_path()).st_ino)
        lies = {
            # another live process (this test's), with the holder's inode
            "another process": "%d %s %s %s %s" % (os.getpid(), real[1], real[2], sock_ino,
                                                   self.start_time(os.getpid())),
            # a pid no process has
            "no such process": "%d %s %s %s %s" % (2 ** 22 + 1, real[1], real[2], sock_ino,
                                                   real[4]),
            # the holder, but another namespace inode than it had
            "another namespace": "%d 1 %s %s %s" % (pid, real[2], sock_ino, real[4]),
            # the holder, but a socket that is not its own
            "another socket": "%d %s %s 1 %s" % (pid, real[1], real[2], real[4]),
            # the holder's pid, started at another time (a reused pid)
            "another start": "%d %s %s %s 1" % (pid, real[1], real[2], sock_ino),
            "not numbers": "x y z w v",
        }
        for what, text in lies.items():
            self.write_pid_file(text + "\n")
            r = self.run_debug("true")
            self.assertNotIn("(by its pid file)", r.err, what)
            # asked over the socket instead: the same holder
            self.assertEqual(self.started(r), pid, what)
        # a FIFO there: read without blocking, and passed over
        os.unlink(self.pid_file())
        os.mkfifo(self.pid_file(), 0o600)
        st = os.stat(os.path.dirname(self.pid_file()))
        os.chown(self.pid_file(), st.st_uid, st.st_gid)
        r = self.run_debug("true")
        self.assertEqual(self.started(r), pid)

    def test_a_sandboxs_own_namespace_is_not_joined(self):
        # A sandbox's user namespace made inside the holder's (--pids-limit 0)
        # is the user's and maps, seen from the host, what the holder's does.
        # Offered by a pid file that a sandbox with the state directory as a
        # volume could write, later starts would nest under a namespace whose
        # root is that sandbox's: refused (its parent is not the host's).
        pid = self.started(self.run_debug("true"))
        with open(self.pid_file()) as f:
            real = f.read().split()
        other = self.popen(["run", "-q", "--network", "none", "--pids-limit", "0",
                            "--root", self.store_for(self.mode), fixture(IMAGE), "sleep", "60"],
                           root=False, env={"XDG_RUNTIME_DIR": self.runtime},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def sleeper():
                for d in os.listdir("/proc"):
                    if d.isdigit():
                        try:
                            with open("/proc/%s/cmdline" % d, "rb") as f:
                                if f.read() == b"sleep\x0060\x00":
                                    return int(d)
                        except OSError:
                            pass
                return None
            self.assertTrue(self.wait_for(lambda: sleeper() is not None))
            victim = sleeper()
            ino = os.stat("/proc/%d/ns/user" % victim).st_ino
            self.assertNotEqual(str(ino), real[1])
            self.write_pid_file("%d %d %s %s %s\n" % (victim, ino, real[2], real[3],
                                                       self.start_time(victim)))
            r = self.run_debug("true")
            self.assertNotIn("(by its pid file)", r.err)
            self.assertEqual(self.started(r), pid)
        finally:
            other.kill()
            other.communicate()

    def test_volumes_do_not_show_sbxs_own_directories(self):
        # -v /tmp:/tmp shows /tmp/sbx-UID when there is no runtime directory:
        # the holder's pid file and socket, named sandboxes' records. A
        # sandbox that could write them could steer later starts, sbx exec
        # and sbx stop; its store holds other images' layers.
        self.started(self.run_debug("true"))
        st = os.stat(self.runtime)
        mine = os.path.join(self.runtime, "mine")
        with open(mine, "w") as f:
            f.write("x")
        os.chown(mine, st.st_uid, st.st_gid)
        store = self.store_for(self.mode)
        r = self.run_debug("--volume", self.runtime + ":/rt",
                           "--volume", os.path.dirname(store) + ":/st:ro",
                           "sh", "-c", "ls -A /rt; echo --; ls -A /rt/sbx; echo --; "
                           "ls -A /st/%s; echo --; touch /rt/sbx/x 2>/dev/null || echo refused"
                           % os.path.basename(store))
        parts = r.out.split("--\n")
        self.assertIn("mine", parts[0].split(), r.out)
        self.assertIn("sbx", parts[0].split(), r.out)
        self.assertEqual(parts[1].strip(), "", r.out)  # the state directory: empty
        self.assertEqual(parts[2].strip(), "", r.out)  # the store: empty
        self.assertEqual(parts[3].strip(), "refused", r.out)
        self.assertIn("masked (sbx's own)", r.err)
        # a volume inside them is refused; so is one over the sandbox's root
        # (where nothing could be masked: a link of the image's, data -> /,
        # leads there too)
        for vol, says in ((os.path.join(self.runtime, "sbx") + ":/s", "inside sbx's own"),
                          (os.path.join(store, "layers") + ":/l", "inside sbx's own"),
                          (self.runtime + ":/", "the target is the sandbox's root"),
                          (self.runtime + ":/.", "the target is the sandbox's root")):
            r = self.cmd(["run", "-q", "--network", "none", "--volume", vol, fixture(IMAGE),
                          "true"])
            self.assertSbxError(r, rc=125, contains=says)

    def test_state_directories_a_volume_shows_are_made_and_masked(self):
        # A state directory that did not exist yet (here ~/.local/state/sbx/run,
        # which a session without a runtime directory would use) was not
        # masked: the job made it, as the user, and could plant links in it
        # (a named sandbox's log -> ~/.bashrc). It is made before the run.
        home = os.path.join(self.tmp, "home")
        os.mkdir(home, 0o755)
        st = os.stat(self.runtime)
        os.chown(home, st.st_uid, st.st_gid)
        r = self.cmd(["run", "-q", "--log-level", "debug", "--network", "none",
                      "--volume", home + ":/h", fixture(IMAGE), "sh", "-c",
                      "mkdir -p /h/.local/state/sbx/run/planted 2>/dev/null || echo refused; "
                      "ls -A /h/.local/state/sbx/run"],
                     env={"HOME": home})
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.strip(), "refused", r)
        self.assertIn("masked (sbx's own)", r.err)
        self.assertFalse(os.path.exists(os.path.join(home, ".local/state/sbx/run/planted")))

    def test_check_names_the_holder(self):
        pid = self.started(self.run_debug("true"))
        r = self.cmd(["check"])
        self.assertIn("user namespace holder: pid %d" % pid, r.out + r.err)

    def test_many_at_once_make_one_holder(self):
        procs = [self.popen(["run", "-q", "--log-level", "debug", "--network", "none",
                             "--root", self.store_for(self.mode), fixture(IMAGE), "true"],
                            root=False, env={"XDG_RUNTIME_DIR": self.runtime},
                            stdout=open(os.devnull, "wb"), stderr=subprocess.PIPE)
                 for _ in range(8)]
        errs = []
        for p in procs:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            errs.append(err.decode())
        started = [e for e in errs if re.search(r"user namespace holder \d+ started", e)]
        self.assertEqual(len(started), 1, errs)
        pids = {self.holder_pid(e) for e in errs}
        self.holders = list(pids)
        self.assertEqual(len(pids), 1, errs)
