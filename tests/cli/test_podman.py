"""Rootless podman driving sbx-oci (`podman --runtime sbx-oci`), as the test
user with a subuid range: exit statuses (0, 3, 127, 126), stdin/stdout, -u,
-e, -w, --hostname, --read-only, -t, run -d + exec + stop + wait + rm.
Podman's storage, run root and XDG_RUNTIME_DIR are the test's own; the image
is the busybox fixture (`podman load`, never a pull). Skipped when podman is
not installed."""
import os
import shutil
import signal
import subprocess
import unittest

from sbxtest import IS_ROOT, SbxTestCase, fixture

PODMAN = shutil.which("podman")


@unittest.skipUnless(PODMAN and shutil.which("conmon"), "podman and conmon are not installed")
class TestPodman(SbxTestCase):
    mode = "range"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.oci = os.path.join(os.path.dirname(cls.sbx), "sbx-oci")

    def setUp(self):
        super().setUp()
        self.require_range()
        pw = self.user_for(self.mode)
        self.home = os.path.join(self.tmp, "home")
        self.xdg = os.path.join(self.tmp, "xdg")
        for d in (self.home, self.xdg):
            os.mkdir(d, 0o700)
            if pw:
                os.chown(d, pw.pw_uid, pw.pw_gid)
        self.env = {"HOME": self.home, "XDG_RUNTIME_DIR": self.xdg,
                    "XDG_CONFIG_HOME": os.path.join(self.home, ".config")}
        self.base = [PODMAN, "--cgroup-manager", "cgroupfs", "--storage-driver", "vfs",
                     "--root", os.path.join(self.home, "storage"),
                     "--runroot", os.path.join(self.xdg, "run"), "--runtime", self.oci]
        r = self.podman(["load", "-i", fixture("busybox-legacy.tar")])
        self.assertEqual(r.rc, 0, r)

    def tearDown(self):
        try:
            self.podman(["rm", "-af", "-t", "0"])
            self.podman(["system", "migrate"])  # stops podman's pause process
        finally:
            self._kill_leftovers()
            if IS_ROOT:
                subprocess.run(["rm", "-rf", self.home, self.xdg])
            else:
                self.run_as([PODMAN, "unshare", "rm", "-rf", self.home], env=self.env)
            super().tearDown()

    def _kill_leftovers(self):
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

    def podman(self, args, input=None):
        return self.run_as(self.base + list(args), env=self.env, input=input, timeout=120)

    def run_img(self, *args, opts=(), input=None):
        return self.podman(["run", "--pull=never", "--rm"] + list(opts) + ["localhost/busybox"]
                           + list(args), input=input)

    def test_run_output_and_exit_statuses(self):
        r = self.run_img("sh", "-c", "echo hi $$")
        self.assertEqual((r.rc, r.out), (0, "hi 1\n"), r)
        self.assertEqual(self.run_img("sh", "-c", "exit 3").rc, 3)
        r = self.run_img("no-such-program")
        self.assertEqual(r.rc, 127, r)
        self.assertIn("executable file not found", r.err)
        r = self.run_img("/etc/passwd")
        self.assertEqual(r.rc, 126, r)
        self.assertIn("permission denied", r.err)

    def test_run_options(self):
        r = self.run_img("sh", "-c", "hostname; id -u; echo $A; pwd; touch /x || echo ro; cat",
                         opts=["-i", "--hostname", "podbox", "-u", "1000", "-e", "A=b", "-w",
                               "/tmp", "--read-only"], input=b"from-stdin\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split(), ["podbox", "1000", "b", "/tmp", "ro", "from-stdin"], r)
        r = self.run_img("tty", opts=["-t"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("/dev/pts/0", r.out)

    def test_detached_exec_stop(self):
        r = self.podman(["run", "--pull=never", "-d", "--name", "d1", "localhost/busybox",
                         "sleep", "1000"])
        self.assertEqual(r.rc, 0, r)
        r = self.podman(["exec", "-e", "X=y", "d1", "sh", "-c", "echo $X; exit 5"])
        self.assertEqual((r.rc, r.out), (5, "y\n"), r)
        r = self.podman(["exec", "-u", "1000", "d1", "id", "-u"])
        self.assertEqual((r.rc, r.out), (0, "1000\n"), r)
        self.assertEqual(self.podman(["exec", "d1", "nope"]).rc, 127)
        self.assertEqual(self.podman(["stop", "-t", "1", "d1"]).rc, 0)
        r = self.podman(["wait", "d1"])
        self.assertEqual(r.out.strip(), "137", r)
        self.assertEqual(self.podman(["rm", "d1"]).rc, 0)


if __name__ == "__main__":
    unittest.main()
