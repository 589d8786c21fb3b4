"""Untrusted jobs (issue 10): bounded by default, timed, and accountable.

The writable layer and every tmpfs have a size (--rootfs-size), or the layer
lives on disk (--rootfs-disk) and is removed even after a SIGKILL; a fork bomb
is contained without cgroups (RLIMIT_NPROC in the sandbox's user namespace);
--timeout kills the sandbox with status 124; --report writes a JSON object
that a schema (jsonschema) validates. Every test runs in both uid-map modes.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid

import jsonschema

from sbxtest import SbxTestCase, fixture

MIB = 1 << 20

REPORT_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "image", "command", "started", "exit_code", "signal", "timed_out",
                 "timeout_ms", "error", "wall_seconds", "cpu_user_seconds", "cpu_system_seconds",
                 "writable_layer", "pids_limit", "network"],
    "properties": {
        "version": {"const": 1},
        "image": {
            "type": "object", "additionalProperties": False, "required": ["id", "name"],
            "properties": {"id": {"type": ["string", "null"], "pattern": "^sha256:[0-9a-f]{64}$"},
                           "name": {"type": "string"}}},
        "command": {"type": ["array", "null"], "items": {"type": "string"}},
        "started": {"type": "boolean"},
        "exit_code": {"type": "integer", "minimum": 0, "maximum": 255},
        "signal": {"type": ["string", "null"], "pattern": "^SIG[A-Z0-9+-]+$"},
        "timed_out": {"type": "boolean"},
        "timeout_ms": {"type": ["integer", "null"], "minimum": 1},
        "error": {"type": ["string", "null"]},
        "wall_seconds": {"type": "number", "minimum": 0},
        "cpu_user_seconds": {"type": "number", "minimum": 0},
        "cpu_system_seconds": {"type": "number", "minimum": 0},
        "writable_layer": {
            "type": "object", "additionalProperties": False,
            "required": ["storage", "limit_bytes", "peak_sampled_bytes", "final_bytes"],
            "properties": {"storage": {"enum": ["tmpfs", "disk"]},
                           "limit_bytes": {"type": ["integer", "null"], "minimum": 1},
                           "peak_sampled_bytes": {"type": ["integer", "null"], "minimum": 0},
                           "final_bytes": {"type": ["integer", "null"], "minimum": 0}}},
        "pids_limit": {
            "type": "object", "additionalProperties": False, "required": ["limit", "mechanism"],
            "properties": {"limit": {"type": ["integer", "null"], "minimum": 1},
                           "mechanism": {"enum": ["cgroup", "rlimit_nproc", None]}}},
        "network": {
            "type": "object", "additionalProperties": False,
            "required": ["mode", "name", "rx_bytes", "rx_packets", "tx_bytes", "tx_packets",
                         "refused_connections", "relayed_connections", "relayed_tx_bytes",
                         "relayed_rx_bytes"],
            "properties": {"mode": {"enum": ["slirp", "none", "host", "network"]},
                           "name": {"type": ["string", "null"]},
                           "rx_bytes": {"type": ["integer", "null"], "minimum": 0},
                           "rx_packets": {"type": ["integer", "null"], "minimum": 0},
                           "tx_bytes": {"type": ["integer", "null"], "minimum": 0},
                           "tx_packets": {"type": ["integer", "null"], "minimum": 0},
                           "refused_connections": {"type": ["integer", "null"], "minimum": 0},
                           "relayed_connections": {"type": ["integer", "null"], "minimum": 0},
                           "relayed_tx_bytes": {"type": ["integer", "null"], "minimum": 0},
                           "relayed_rx_bytes": {"type": ["integer", "null"], "minimum": 0}}},
    },
}


def shmem_kib(text):
    for line in text.splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    raise AssertionError("no Shmem line in\n" + text)


def default_rootfs_size():
    """docs: a quarter of RAM, at most 2 GiB, in whole MiB."""
    with open("/proc/meminfo") as f:
        total = next(int(l.split()[1]) * 1024 for l in f if l.startswith("MemTotal:"))
    return min(total // 4, 2 << 30) & ~(MIB - 1)


def token_pids(token):
    """Host pids whose command line carries token (processes in any pid namespace)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if token.encode() in f.read():
                    found.append(int(p))
        except OSError:
            pass
    return found


class LimitTests:
    def out_dir(self):
        """A directory the user sbx runs as may write in (for --report)."""
        d = os.path.join(self.tmp, "out-" + self.mode)
        if not os.path.isdir(d):
            os.mkdir(d, 0o755)
            pw = self.user_for(self.mode)
            if pw:
                os.chown(d, pw.pw_uid, pw.pw_gid)
        return d

    def run_sh(self, script, *opts, timeout=60):
        return self.sbx_cmd(["run", "-q"] + list(opts) + [fixture("busybox-legacy.tar"), "sh", "-c",
                                                           script], timeout=timeout)

    def assertNothingLeft(self, token):
        self.assertTrue(self.wait_for(lambda: not token_pids(token), timeout=10),
                        "processes left running: %r" % token_pids(token))

    # -- 1. writable space ------------------------------------------------
    def test_write_past_the_bound_is_enospc_and_host_memory_stays(self):
        r = self.run_sh("grep Shmem: /proc/meminfo; "
                        "dd if=/dev/zero of=/big bs=1M count=3000 2>&1; echo dd=$?; "
                        "grep Shmem: /proc/meminfo; df -k / | tail -1",
                        "--rootfs-size", "64m")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("dd=1\n", r.out)
        self.assertIn("No space left on device", r.out)
        lines = r.out.splitlines()
        before, after = shmem_kib(lines[0]), shmem_kib(
            next(l for l in lines[1:] if l.startswith("Shmem:")))
        # The host's shared memory grew by the bound (64 MiB), not by 3 GB;
        # other tests running at the same time get a margin of 96 MiB.
        self.assertLess(after - before, (64 + 96) * 1024, r)
        self.assertEqual(int(lines[-1].split()[1]), 64 * 1024, r)  # df: size of /

    def test_default_bound_and_tmpfs_sizes(self):
        r = self.run_sh("df -k / /x /dev/shm | tail -3", "--tmpfs", "/x", "--tmpfs", "/y:size=1m")
        self.assertEqual(r.rc, 0, r)
        sizes = {l.split()[-1]: int(l.split()[1]) for l in r.out.splitlines()}
        want = default_rootfs_size() // 1024
        with open("/proc/meminfo") as f:
            half_ram = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:")) // 2
        self.assertEqual(sizes["/"], want, r)
        self.assertNotEqual(sizes["/"], half_ram)
        self.assertEqual(sizes["/x"], want, r)  # --tmpfs without size=: the same bound
        self.assertEqual(sizes["/dev/shm"], 64 * 1024, r)
        r = self.run_sh("df -k /y | tail -1; df -i /z | tail -1", "--tmpfs", "/y:size=1m",
                        "--tmpfs", "/z:nr_inodes=77")
        lines = r.out.splitlines()
        self.assertEqual(int(lines[0].split()[1]), 1024, r)
        self.assertEqual(int(lines[1].split()[1]), 77, r)  # the user's nr_inodes= stays

    def test_rootfs_size_errors(self):
        for bad in ("0", "12x", "-1"):
            r = self.run_sh("true", "--rootfs-size", bad)
            self.assertSbxError(r, contains="--rootfs-size")

    def test_rootfs_size_too_small_for_setup(self):
        """A layer too small for sbx's own /etc files: the error names
        --rootfs-size, not only "/etc: write: No space left on device"."""
        r = self.run_sh("true", "--rootfs-size", "1k")
        line = self.assertSbxError(r, contains="--rootfs-size 1k is too small: the writable layer "
                                   "is full before the program starts: /etc/")
        self.assertIn("No space left on device", line)

    def disk_dir(self):
        return os.path.join(self.store_for(self.mode), "run-disk")

    def disk_leftovers(self):
        d = self.disk_dir()
        return sorted(n for n in os.listdir(d) if n != "lock") if os.path.isdir(d) else []

    def test_rootfs_disk(self):
        chown = "chown -R 1000:1000 /d && " if self.mode == "range" else ""
        r = self.run_sh("mkdir /d && echo hello > /d/f && %s"
                        "grep -o 'upperdir=[^,]*' /proc/mounts; dd if=/dev/zero of=/big bs=1M "
                        "count=80 2>/dev/null; echo dd=$?; ls -ln /d/f" % chown,
                        "--rootfs-disk", "--rootfs-size", "64m")
        self.assertEqual(r.rc, 0, r)
        upper = os.path.join(self.disk_dir(), "")
        self.assertIn("upperdir=" + upper, r.out)
        self.assertIn("dd=0\n", r.out)  # on disk: not bounded by --rootfs-size
        self.assertIn("--rootfs-size does not bound --rootfs-disk", r.err)
        if self.mode == "range":
            self.assertRegex(r.out, r" 1000 +1000 ")
        self.assertEqual(self.disk_leftovers(), [])

    def kill_disk_run(self, token):
        chown = "chown 1000 /d && " if self.mode == "range" else ""
        p = self.popen(["run", "-q", "--rootfs-disk", fixture("busybox-legacy.tar"), "sh", "-c",
                        "mkdir /d && echo x > /d/f && %secho ready && sleep 100 # %s" %
                        (chown, token)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"ready\n")
            left = self.disk_leftovers()
            self.assertEqual(len(left), 1)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
        finally:
            p.stdout.close()
            p.stderr.close()
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertNothingLeft(token)
        self.assertEqual(self.disk_leftovers(), left)  # what a SIGKILL leaves
        return left[0]

    def test_rootfs_disk_swept_after_sigkill(self):
        left = self.kill_disk_run(uuid.uuid4().hex)
        # The next --rootfs-disk run sweeps it.
        r = self.run_sh("true", "--rootfs-disk")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(os.path.exists(os.path.join(self.disk_dir(), left)))
        self.assertEqual(self.disk_leftovers(), [])
        # And so does sbx prune.
        left = self.kill_disk_run(uuid.uuid4().hex)
        r = self.sbx_cmd(["prune", "--root", self.store_for(self.mode)], root=False)
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(os.path.exists(os.path.join(self.disk_dir(), left)))

    def test_rootfs_disk_sweep_spares_running(self):
        token = uuid.uuid4().hex
        p = self.popen(["run", "-q", "--rootfs-disk", fixture("busybox-legacy.tar"), "sh", "-c",
                        "echo ready; sleep 100 # " + token],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            self.assertEqual(p.stdout.readline(), b"ready\n")
            running = self.disk_leftovers()
            r = self.sbx_cmd(["prune", "--root", self.store_for(self.mode)], root=False)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(self.disk_leftovers(), running)
        finally:
            p.terminate()
            p.wait(timeout=30)
            p.stdout.close()
        self.assertEqual(self.disk_leftovers(), [])

    def test_rootfs_disk_sweep_probe_spares_a_starting_run(self):
        """A --rootfs-disk start looked for leftovers by trying each
        run-disk/<id>'s lock without the run-disk/lock base lock: a run
        between its mkdir and its flock then found its own directory locked
        and failed ("prepare ...: Resource temporarily unavailable"). strace
        holds run A just after its mkdir, and run B's probe of A's directory
        for longer: the probe must wait for A's claim, not collide with it."""
        if not shutil.which("strace"):
            self.skipTest("strace is not installed")
        disk = self.disk_dir()
        image = fixture("busybox-legacy.tar")
        self.run_sh("true")  # the image stored: the runs below start at once
        # LeakSanitizer cannot run under ptrace (an ASan build); the rest of ASan can.
        env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"}
        a = self.popen(["run", "-q", "--rootfs-disk", image, "true"], env=env,
                       wrap=["strace", "-qq", "-o", "/dev/null", "-P", disk, "-e", "trace=mkdirat",
                             "-e", "inject=mkdirat:delay_exit=2000000:when=1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertTrue(self.wait_for(lambda: self.disk_leftovers(), 20), "A made no directory")
            mine = os.path.join(disk, self.disk_leftovers()[0])
            b = self.sbx_cmd(["run", "-q", "--rootfs-disk", image, "true"], env=env,
                             wrap=["strace", "-qq", "-o", "/dev/null", "-P", mine, "-e",
                                   "trace=flock", "-e", "inject=flock:delay_exit=3000000:when=1"])
            out, err = a.communicate(timeout=60)
        finally:
            if a.poll() is None:
                a.kill()
                a.wait()
        self.assertEqual((a.returncode, err.decode()), (0, ""))
        self.assertEqual((b.rc, b.err), (0, ""))
        self.assertEqual(self.disk_leftovers(), [])

    # -- 2. processes -----------------------------------------------------
    def test_pids_limit_holds_for_root_without_cgroup(self):
        r = self.sbx_cmd(["run", "-q", "--log-level", "debug", "--pids-limit", "64",
                          fixture("probe.tar"), "forklimit", "rlimits"])
        self.assertEqual(r.rc, 0, r)
        # init and the probe count too: 62 more, then EAGAIN (root, default caps).
        self.assertIn("forklimit 62 EAGAIN\n", r.out)
        if "cgroup v2 pids.max" not in r.err:
            self.assertIn({"range": "pids limit 64: RLIMIT_NPROC in a nested user namespace, the "
                                    "total across all uids",
                           "single": "pids limit 64: RLIMIT_NPROC in the sandbox's user namespace, "
                                     "whose one uid makes it the total"}[self.mode], r.err)
            self.assertIn("rlimit NPROC 64 64\n", r.out)
        # Root inside cannot raise it.
        r = self.run_sh("ulimit -u 100000", "--pids-limit", "64")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Operation not permitted", r.err)

    def test_pids_limit_is_the_total_across_uids(self):
        # Root inside may take other uids (CAP_SETUID), and RLIMIT_NPROC counts
        # per uid: 5 uids x 11 processes each is tried under a limit of 20.
        r = self.sbx_cmd(["run", "-q", "--network", "none", "--pids-limit", "20",
                          fixture("probe.tar"), "forkuids=5,10"])
        self.assertEqual(r.rc, 0, r)
        if self.mode == "range":
            # init and the probe count too: 18 more, whatever their uids.
            self.assertIn("forkuids 18 EAGAIN\n", r.out)
        else:
            # One id inside: uid 0's own count is the total.
            self.assertIn("forkuids 1 EINVAL\n", r.out)

    def test_exec_counts_against_the_pids_limit(self):
        # init and sleep, the process of sbx exec that joined the namespaces,
        # and sh make 4 under --pids-limit 10: 6 more, then fork fails.
        name = "px" + uuid.uuid4().hex[:8]
        r = self.sbx_cmd(["run", "-q", "-d", "--name", name, "--pids-limit", "10", "--network",
                          "none", fixture("busybox-legacy.tar"), "sleep", "60"])
        self.assertEqual(r.rc, 0, r)
        try:
            self.assertTrue(self.wait_for(
                lambda: self.sbx_cmd(["exec", name, "true"], root=False).rc == 0, timeout=20))
            r = self.sbx_cmd(["exec", name, "sh", "-c", "for i in $(seq 30); do "
                              "sleep 60 >/dev/null 2>&1 & echo $i; done"], root=False)
            self.assertEqual(r.out.split()[-1:], ["6"], r)
            self.assertIn("can't fork", r.err)
        finally:
            self.sbx_cmd(["rm", "-f", name], root=False)

    def test_pids_limit_default_and_unlimited(self):
        r = self.sbx_cmd(["run", "-q", fixture("probe.tar"), "rlimits"])
        self.assertIn("rlimit NPROC 4096 4096\n", r.out)
        # sbx's own (inherited from this test) applies unchanged.
        host = [str(v) if v != resource.RLIM_INFINITY else "unlimited"
                for v in resource.getrlimit(resource.RLIMIT_NPROC)]
        for off in ("0", "-1"):
            r = self.sbx_cmd(["run", "-q", "--pids-limit", off, fixture("probe.tar"), "rlimits"])
            got = next(l for l in r.out.splitlines() if l.startswith("rlimit NPROC "))
            self.assertEqual(got.split()[2:], host, r)
        r = self.run_sh("true", "--pids-limit", "-2")
        self.assertSbxError(r, contains="--pids-limit")

    def test_pids_default_under_a_lower_limit(self):
        # sbx itself runs under a hard limit below the default: that one holds.
        r = self.run_as(["bash", "-c", 'ulimit -u 500 && exec "$@"', "bash", self.sbx, "run", "-q",
                         "--root", self.store_for(self.mode), fixture("probe.tar"), "rlimits"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("rlimit NPROC 500 500\n", r.out)

    def test_fork_bomb_is_contained(self):
        token = uuid.uuid4().hex
        # stderr to a file: the bomb's "can't fork" lines would fill a pipe
        # nobody reads before sbx exits, and sbx relays all of its output.
        errf = tempfile.TemporaryFile()
        self.addCleanup(errf.close)
        p = self.popen(["run", "-q", "--pids-limit", "64", "--timeout", "6",
                        fixture("busybox-legacy.tar"), "sh", "-c",
                        ": %s; f() { f | f & }; f; sleep 100" % token],
                       stdout=subprocess.DEVNULL, stderr=errf)
        most, slowest = 0, 0.0
        while p.poll() is None:
            most = max(most, len(token_pids(token)))
            t = time.monotonic()
            subprocess.run(["true"])  # the host still starts processes
            slowest = max(slowest, time.monotonic() - t)
            time.sleep(0.1)
        p.wait()
        errf.seek(0)
        err = errf.read()
        self.assertNoCrash(err.decode(errors="replace"), "sbx run")
        self.assertEqual(p.returncode, 124, err[-2000:])
        self.assertIn(b"can't fork", err)
        self.assertLessEqual(most, 63)  # 64 with init, whose command line is sbx-init
        self.assertLess(slowest, 5.0)
        self.assertNothingLeft(token)

    # -- 3. time ----------------------------------------------------------
    def test_timeout(self):
        token = uuid.uuid4().hex
        t = time.monotonic()
        r = self.run_sh("sleep 100 # " + token, "--timeout", "2")
        took = time.monotonic() - t
        self.assertEqual(r.rc, 124, r)
        self.assertEqual([l for l in r.err.splitlines() if l.strip() and "warning" not in l],
                         ["sbx: timeout: the sandbox was still running after 2s and was killed"])
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 15)
        self.assertNothingLeft(token)

    def test_timeout_kills_what_ignores_sigterm(self):
        token = uuid.uuid4().hex
        t = time.monotonic()
        r = self.run_sh("trap '' TERM; sleep 100; : " + token, "--timeout", "500ms")
        self.assertEqual(r.rc, 124, r)
        self.assertLess(time.monotonic() - t, 30)  # 10 s of grace, then SIGKILL
        self.assertNothingLeft(token)

    def test_timeout_detached(self):
        token = uuid.uuid4().hex
        name = "t" + token[:8]
        report = os.path.join(self.out_dir(), "detached.json")
        r = self.sbx_cmd(["run", "-q", "-d", "--name", name, "--timeout", "1.5s", "--report",
                          report, fixture("busybox-legacy.tar"), "sh", "-c", "sleep 100 # " + token])
        self.assertEqual(r.rc, 0, r)

        def state():
            ps = self.sbx_cmd(["ps", "-a", "--format", "json"], root=False)
            return next((s for s in json.loads(ps.out) if s["Name"] == name), None)
        self.assertTrue(self.wait_for(lambda: state()["Running"] is False, timeout=20))
        s = state()
        self.assertEqual((s["ExitCode"], s["TimedOut"], s["Status"]), (124, True, "timed out (124)"))
        ps = self.sbx_cmd(["ps", "-a"], root=False)
        self.assertRegex(ps.out, name + r" .* timed out \(124\) ")
        logs = self.sbx_cmd(["logs", name], root=False)
        self.assertIn("sbx: timeout: the sandbox was still running after 1.5s", logs.err + logs.out)
        self.assertNothingLeft(token)
        self.sbx_cmd(["rm", name], root=False)
        with open(report) as f:  # written by the supervisor
            data = json.load(f)
        jsonschema.validate(data, REPORT_SCHEMA)
        self.assertEqual((data["exit_code"], data["timed_out"]), (124, True))

    def test_timeout_errors(self):
        for bad in ("abc", "0", "-1", "2x", "s"):
            r = self.run_sh("true", "--timeout", bad)
            self.assertSbxError(r, contains="--timeout")

    # -- 4. memory --------------------------------------------------------
    def test_memory_without_cgroup_points_at_ulimit(self):
        r = self.run_sh("true", "--memory", "64m")
        if r.rc == 0:
            self.skipTest("this host delegates a cgroup v2 with the memory controller")
        self.assertSbxError(r, contains="--ulimit as=")

    # -- 6. the report ----------------------------------------------------
    def report(self, *opts, script="true", rc=0):
        path = os.path.join(self.out_dir(), "report-%s.json" % uuid.uuid4().hex[:8])
        r = self.run_sh(script, "--report", path, *opts)
        self.assertEqual(r.rc, rc, r)
        with open(path) as f:
            data = json.load(f)
        jsonschema.validate(data, REPORT_SCHEMA)
        self.assertEqual(data["exit_code"], rc)
        self.assertEqual(data["image"]["name"], fixture("busybox-legacy.tar"))
        self.assertRegex(data["image"]["id"], "^sha256:")
        return data

    def test_report_normal_exit(self):
        # A TCP SYN to the gateway (the sandbox's own slirp network) leaves tap0.
        d = self.report(script="dd if=/dev/zero of=/f bs=1M count=8 2>/dev/null; "
                               "nc -w 2 10.0.2.2 9 </dev/null; exit 0")
        self.assertEqual(d["command"][:2], ["sh", "-c"])
        self.assertEqual((d["started"], d["signal"], d["timed_out"], d["error"]),
                         (True, None, False, None))
        wl = d["writable_layer"]
        self.assertEqual((wl["storage"], wl["limit_bytes"]), ("tmpfs", default_rootfs_size()))
        self.assertGreaterEqual(wl["peak_sampled_bytes"], 8 * MIB)
        self.assertGreaterEqual(wl["final_bytes"], 8 * MIB)
        self.assertEqual(d["network"]["mode"], "slirp")
        self.assertGreaterEqual(d["network"]["tx_packets"], 1)
        self.assertEqual(d["network"]["refused_connections"], 0)  # no allowlist
        self.assertGreater(d["wall_seconds"], 0)

    def test_report_counts_refused_connections(self):
        # sbx-net's counters: each SYN --net-allow refused (nc tries once: the
        # refused attempt gets a reset). Refused frames are not in tx_packets.
        d = self.report("--net-allow", "10.9.9.9/32:443/tcp",
                        script="nc -w 2 10.0.2.2 9 </dev/null; nc -w 2 10.0.2.2 10 </dev/null; "
                               "exit 0")
        self.assertGreaterEqual(d["network"]["refused_connections"], 2)

    def test_report_nonzero_exit_and_strings(self):
        odd = 'quote" back\\slash \x01 tab\t \xe9'
        d = self.report("--network", "none", script='exit 3 # %s' % odd, rc=3)
        self.assertEqual(d["command"], ["sh", "-c", "exit 3 # %s" % odd])
        self.assertEqual(d["network"], {"mode": "none", "name": None, "rx_bytes": None, "rx_packets": None,
                                        "tx_bytes": None, "tx_packets": None,
                                        "refused_connections": None, "relayed_connections": None,
                                        "relayed_tx_bytes": None, "relayed_rx_bytes": None})
        self.assertIsNone(d["signal"])

    def test_report_signal_death(self):
        d = self.report(script="kill -KILL $$", rc=137)
        self.assertEqual((d["signal"], d["timed_out"]), ("SIGKILL", False))

    def test_report_timeout(self):
        d = self.report("--timeout", "1", "--pids-limit", "32",
                        script="while :; do :; done", rc=124)
        self.assertEqual((d["timed_out"], d["timeout_ms"], d["signal"]), (True, 1000, None))
        # The busy loop was killed, not reaped by the program: its CPU time counts.
        self.assertGreater(d["cpu_user_seconds"] + d["cpu_system_seconds"], 0.02)
        self.assertEqual(d["pids_limit"]["limit"], 32)
        self.assertIn(d["pids_limit"]["mechanism"], ("cgroup", "rlimit_nproc"))

    def test_report_disk_and_failure(self):
        d = self.report("--rootfs-disk")
        self.assertEqual(d["writable_layer"], {"storage": "disk", "limit_bytes": None,
                                               "peak_sampled_bytes": None, "final_bytes": None})
        path = os.path.join(self.out_dir(), "failed.json")
        r = self.sbx_cmd(["run", "-q", "--report", path, fixture("busybox-legacy.tar"),
                          "/nonexistent"])
        self.assertEqual(r.rc, 127, r)
        with open(path) as f:
            data = json.load(f)
        jsonschema.validate(data, REPORT_SCHEMA)
        self.assertEqual(data["exit_code"], 127)
        path = os.path.join(self.out_dir(), "noimage.json")
        r = self.sbx_cmd(["run", "-q", "--report", path, "/nonexistent.tar"])
        self.assertSbxError(r, contains="/nonexistent.tar")
        with open(path) as f:
            data = json.load(f)
        jsonschema.validate(data, REPORT_SCHEMA)
        self.assertEqual((data["exit_code"], data["started"], data["image"]["id"]),
                         (125, False, None))
        self.assertIn("/nonexistent.tar", data["error"])

    def test_report_refuses_a_symlink(self):
        target = os.path.join(self.out_dir(), "target")
        link = os.path.join(self.out_dir(), "link.json")
        os.symlink(target, link)
        r = self.run_sh("true", "--report", link)
        self.assertSbxError(r, contains="--report")
        self.assertFalse(os.path.exists(target))


class TestLimitsRange(LimitTests, SbxTestCase):
    mode = "range"


class TestLimitsSingle(LimitTests, SbxTestCase):
    mode = "single"


if __name__ == "__main__":
    unittest.main()
