"""containerd driving sbx-oci through its runc shim (containerd-shim-runc-v2),
the path a Kubernetes RuntimeClass takes: `ctr run --runc-binary sbx-oci`.

containerd runs rootless as the test user with a subuid range, inside
rootlesskit (--net=host: containerd itself only serves its unix socket and
pulls nothing; every container gets a new, empty network namespace). Its
root, state, sockets and XDG_RUNTIME_DIR are the test's own; /run is a
rootlesskit copy-up, so the shim's sockets under /run/containerd stay in the
daemon's mount namespace. ctr joins the daemon's user and mount namespaces
with nsenter, as nerdctl does. The image is the busybox fixture (`ctr images
import`, never a pull). sbx-oci is called through a wrapper that logs each
command line, so the tests see which subcommands the shim used. Skipped
when containerd, ctr or rootlesskit is not installed."""
import os
import shlex
import shutil
import signal
import subprocess
import time
import unittest

from sbxtest import IS_ROOT, SbxTestCase, fixture

TOOLS = ("containerd", "containerd-shim-runc-v2", "ctr", "rootlesskit", "nsenter")
MISSING = [t for t in TOOLS if not shutil.which(t)]
IMAGE = "docker.io/library/busybox:latest"  # the name busybox-legacy.tar carries


@unittest.skipIf(MISSING, "not installed: %s (apt-get install containerd rootlesskit)"
                 % " ".join(MISSING))
class TestContainerd(SbxTestCase):
    mode = "range"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.oci = os.path.join(os.path.dirname(cls.sbx), "sbx-oci")

    def setUp(self):
        super().setUp()
        self.require_range()
        self.pw = self.user_for(self.mode)
        self.base = os.path.join(self.tmp, "ctrd")
        self.xdg = os.path.join(self.base, "xdg")
        self.sock = os.path.join(self.base, "containerd.sock")
        self.calls = os.path.join(self.base, "calls.log")
        self.runtime = os.path.join(self.base, "sbx-oci-logged")
        os.mkdir(self.base, 0o755)
        os.mkdir(self.xdg, 0o700)
        with open(os.path.join(self.base, "config.toml"), "w") as f:
            f.write('version = 2\nroot = "%s/root"\nstate = "%s/state"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s.ttrpc"\n'
                    '[plugins."io.containerd.internal.v1.opt"]\n  path = "%s/opt"\n'
                    % (self.base, self.base, self.sock, self.sock, self.base))
        with open(self.runtime, "w") as f:
            f.write('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (self.calls, self.oci))
        os.chmod(self.runtime, 0o755)
        if self.pw:
            for root, dirs, files in os.walk(self.base):
                for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                    os.chown(n, self.pw.pw_uid, self.pw.pw_gid)
        self.env = {"XDG_RUNTIME_DIR": self.xdg}
        kw = {}
        if self.pw:
            kw.update(user=self.pw.pw_uid, group=self.pw.pw_gid, extra_groups=[])
        self.daemon_log = open(os.path.join(self.tmp, "containerd.log"), "wb")
        self.daemon = subprocess.Popen(
            ["rootlesskit", "--net=host", "--copy-up=/run", "--propagation=rslave",
             "--state-dir=" + os.path.join(self.base, "rootlesskit"),
             "containerd", "--config", os.path.join(self.base, "config.toml")],
            env=self.env_for(self.mode, self.env), cwd=self.base, stdin=subprocess.DEVNULL,
            stdout=self.daemon_log, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        self.addCleanup(self._stop)  # also when setUp fails below (tearDown then never runs)
        child = os.path.join(self.base, "rootlesskit", "child_pid")
        self.assertTrue(self.wait_for(lambda: os.path.exists(child) and os.path.exists(self.sock)
                                      and self.ctr(["version"]).rc == 0, timeout=60),
                        "containerd did not come up:\n" + self.daemon_says())
        r = self.ctr(["images", "import", "--snapshotter", "native",
                      fixture("busybox-legacy.tar")])
        self.assertEqual(r.rc, 0, r)

    def tearDown(self):
        try:
            self._stop()
        finally:
            super().tearDown()

    def _stop(self):
        """Remove the containers, stop containerd, end its shims (once)."""
        if self.daemon_log.closed:
            return
        try:
            for c in self.ctr(["containers", "ls", "-q"]).out.split():
                self.ctr(["task", "kill", "-a", "-s", "SIGKILL", c])
                self.ctr(["task", "delete", "-f", c])
                self.ctr(["containers", "delete", c])
        finally:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait()
            self.daemon_log.close()
            self._kill_leftovers()
            if not IS_ROOT:  # the snapshots hold files of subordinate ids
                subprocess.run(["unshare", "--map-auto", "--map-root-user", "rm", "-rf",
                                self.base], stderr=subprocess.DEVNULL)

    def _kill_leftovers(self):
        """Shims outlive their daemon: end what this test's containerd started
        (each carries the test's XDG_RUNTIME_DIR in its environment)."""
        mark = ("XDG_RUNTIME_DIR=" + self.xdg).encode()
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % p, "rb") as f:
                    if mark in f.read().split(b"\0"):
                        os.kill(int(p), signal.SIGKILL)
            except OSError:
                pass

    def daemon_says(self):
        self.daemon_log.flush()
        with open(self.daemon_log.name, errors="replace") as f:
            return f.read()[-4000:]

    def ctr_cmd(self, args):
        child = os.path.join(self.base, "rootlesskit", "child_pid")
        try:
            with open(child) as f:
                pid = f.read().strip()
        except OSError:
            pid = "0"
        return ["nsenter", "-U", "--preserve-credentials", "-m", "-t", pid,
                "ctr", "--address", self.sock] + list(args)

    def ctr(self, args, input=None, timeout=60):
        return self.run_as(self.ctr_cmd(args), env=self.env, input=input, timeout=timeout)

    def ctr_on_tty(self, args):
        """ctr with a terminal of its own (-t wants one): through script(1)."""
        script = shutil.which("script")
        if not script:
            self.skipTest("script (util-linux) is not installed")
        line = " ".join(shlex.quote(a) for a in self.ctr_cmd(args))
        # under the test's own timeout: tearDown then ends what hangs
        return self.run_as([script, "-qec", line, "/dev/null"], env=self.env, timeout=60)

    def calls_made(self):
        """The sbx-oci subcommands the shim ran (global options dropped)."""
        with open(self.calls) as f:
            lines = f.read().splitlines()
        out = []
        for line in lines:
            words = line.split()
            while words and words[0].startswith("--"):
                words = words[2:] if words[0] in ("--root", "--log", "--log-format") else words[1:]
            out.append(words)
        return out

    def run_img(self, name, *cmd, opts=()):
        return self.ctr(["run", "--snapshotter", "native", "--runc-binary", self.runtime, "--rm"]
                        + list(opts) + [IMAGE, name] + list(cmd))

    def test_run_output_and_exit_status(self):
        r = self.run_img("c1", "sh", "-c", "echo hi $$; echo err >&2; exit 3")
        self.assertEqual((r.rc, r.out, r.err), (3, "hi 1\n", "err\n"), r)
        calls = self.calls_made()
        self.assertEqual([c[0] for c in calls[:2]], ["create", "start"], calls)
        create = calls[0]
        self.assertIn("--bundle", create)
        self.assertIn("--pid-file", create)
        with open(self.calls) as f:
            self.assertIn("--log-format json", f.read())
        r = self.run_img("c2", "sh", "-c", "id -u; echo $A; pwd; grep -c : /proc/net/dev",
                         opts=["--env", "A=b", "--cwd", "/tmp"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split(), ["0", "b", "/tmp", "1"], r)  # lo only: no network

    def test_run_not_found(self):
        r = self.run_img("c3", "no-such-program")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("executable file not found", r.err)

    def test_task_exec_ps_kill(self):
        r = self.ctr(["run", "-d", "--snapshotter", "native", "--runc-binary", self.runtime,
                      IMAGE, "d1", "sleep", "1000"])
        self.assertEqual(r.rc, 0, r)
        r = self.ctr(["task", "exec", "--exec-id", "e1", "--cwd", "/etc", "d1", "sh", "-c",
                      "echo in $$ $(pwd); exit 4"])
        self.assertEqual((r.rc, r.out), (4, "in 2 /etc\n"), r)  # pid 2: the same pid namespace
        r = self.ctr(["task", "exec", "--exec-id", "e2", "--user", "1000", "d1", "id", "-u"])
        self.assertEqual((r.rc, r.out), (0, "1000\n"), r)
        r = self.ctr(["task", "exec", "--exec-id", "e3", "d1", "no-such-program"])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("executable file not found", r.err)
        r = self.ctr(["task", "exec", "-d", "--exec-id", "e4", "d1", "sleep", "999"])
        self.assertEqual(r.rc, 0, r)
        r = self.ctr(["task", "ps", "d1"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(r.out.splitlines()), 3, r)  # header, sleep 1000, the exec'd sleep
        self.assertIn("e4", r.out)
        r = self.ctr(["task", "pause", "d1"])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("pause: not supported: sbx-oci manages no cgroups", r.err)
        r = self.ctr(["task", "kill", "-s", "SIGKILL", "d1"])
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(self.wait_for(lambda: "STOPPED" in self.ctr(["task", "ls"]).out,
                                      timeout=30), self.ctr(["task", "ls"]))
        r = self.ctr(["task", "delete", "d1"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("exit code 137", r.err)
        self.assertEqual(self.ctr(["containers", "delete", "d1"]).rc, 0)
        used = {c[0] for c in self.calls_made()}
        self.assertTrue({"create", "start", "exec", "ps", "pause", "kill", "delete"} <= used,
                        used)

    def test_terminal_run_and_exec(self):
        # The shim reads create's stdout to its end: a container waiting for
        # start must not hold it (it did, and ctr run -t hung).
        r = self.ctr_on_tty(["run", "-t", "--snapshotter", "native", "--runc-binary",
                             self.runtime, "--rm", IMAGE, "t1", "sh", "-c", "tty; exit 5"])
        self.assertEqual(r.rc, 5, r)
        self.assertIn("/dev/pts/", r.out)
        self.assertIn("--console-socket", open(self.calls).read())
        r = self.ctr(["run", "-d", "--snapshotter", "native", "--runc-binary", self.runtime,
                      IMAGE, "t2", "sleep", "1000"])
        self.assertEqual(r.rc, 0, r)
        r = self.ctr_on_tty(["task", "exec", "-t", "--exec-id", "x1", "t2", "sh", "-c",
                             "tty; exit 6"])
        self.assertEqual(r.rc, 6, r)
        self.assertIn("/dev/pts/", r.out)
