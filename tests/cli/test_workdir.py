"""CVE-2024-21626: a working directory reached through a file descriptor
sbx inherited (a host directory) must never become the program's cwd. sbx
refuses such a directory (125, "outside the sandbox's root") — from -w, from
an image's WorkingDir, and through exec -w — and the program never runs."""
import hashlib
import io
import json
import os
import subprocess
import tarfile
import unittest

from sbxtest import Result, SbxTestCase, fixture

BUSYBOX = "busybox-legacy.tar"


def with_workdir(src, dst, workdir):
    """A copy of a docker-legacy archive whose config says WorkingDir."""
    with tarfile.open(src) as t:
        members = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    manifest = json.loads(members["manifest.json"])
    config = json.loads(members.pop(manifest[0]["Config"]))
    config["config"]["WorkingDir"] = workdir
    data = json.dumps(config).encode()
    name = hashlib.sha256(data).hexdigest() + ".json"
    manifest[0]["Config"] = name
    manifest[0]["RepoTags"] = ["workdir:latest"]
    members[name] = data
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(dst, "w") as t:
        for n, d in members.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    os.chmod(dst, 0o644)


class TestLeakedFdWorkdir(SbxTestCase):
    mode = "single"

    def setUp(self):
        super().setUp()
        self.host_dir = os.path.join(self.tmp, "host-dir")
        os.mkdir(self.host_dir, 0o755)
        with open(os.path.join(self.host_dir, "host-secret"), "w") as f:
            f.write("secret\n")
        self.dfd = os.open(self.host_dir, os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, self.dfd)
        self.runtime = os.path.join(self.tmp, "runtime")
        os.mkdir(self.runtime, 0o700)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(self.runtime, pw.pw_uid, pw.pw_gid)

    def sbx_with_fd(self, args):
        p = self.popen(args, pass_fds=(self.dfd,), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env={"XDG_RUNTIME_DIR": self.runtime})
        out, err = p.communicate(timeout=60)
        return Result(p, out, err)

    def assertRefusedWorkdir(self, r, workdir):
        self.assertSbxError(r, contains="working directory %s: outside the sandbox's root"
                            % workdir)
        self.assertNotIn("host-secret", r.out)
        self.assertNotIn("program-ran", r.out)

    SCRIPT = ["sh", "-c", "echo program-ran; pwd; ls"]

    def test_run_w_leaked_fd(self):
        for wd in ("/proc/self/fd/%d" % self.dfd, "/proc/self/fd/%d/" % self.dfd):
            with self.subTest(workdir=wd):
                r = self.sbx_with_fd(["run", "-q", "-w", wd, fixture(BUSYBOX)] + self.SCRIPT)
                self.assertRefusedWorkdir(r, wd)
        # below the fd, the directory is made beneath the root first, where
        # the magic link is refused (openat2 RESOLVE_NO_MAGICLINKS)
        wd = "/proc/self/fd/%d/." % self.dfd
        r = self.sbx_with_fd(["run", "-q", "-w", wd, fixture(BUSYBOX)] + self.SCRIPT)
        self.assertSbxError(r, contains="working directory: %s: Too many levels of symbolic links"
                            % wd)
        self.assertNotIn("program-ran", r.out)

    def test_run_w_sbx_cwd(self):
        """/proc/self/cwd: by the time it is entered, the process is in the new
        root — contained, the cwd is the root's /, nothing of the host's."""
        r = self.sbx_with_fd(["run", "-q", "-w", "/proc/self/cwd", fixture(BUSYBOX)] + self.SCRIPT)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines()[:2], ["program-ran", "/"], r)
        self.assertNotIn("host-secret", r.out)
        self.assertIn("bin", r.out.split())

    def test_image_workdir_leaked_fd(self):
        wd = "/proc/self/fd/%d" % self.dfd
        image = os.path.join(self.tmp, "workdir.tar")
        with_workdir(fixture(BUSYBOX), image, wd)
        r = self.sbx_with_fd(["run", "-q", image] + self.SCRIPT)
        self.assertRefusedWorkdir(r, wd)
        # the control: the same image with -w / runs, inside the root
        r = self.sbx_with_fd(["run", "-q", "-w", "/", image, "pwd"])
        self.assertEqual((r.rc, r.out), (0, "/\n"), r)

    def test_exec_w_leaked_fd(self):
        r = self.sbx_with_fd(["run", "-d", "-q", "--name", "wd", "--root",
                              self.store_for(self.mode), fixture(BUSYBOX), "sleep", "60"])
        self.assertEqual(r.rc, 0, r)
        try:
            wd = "/proc/self/fd/%d" % self.dfd
            r = self.sbx_with_fd(["exec", "-w", wd, "wd"] + self.SCRIPT)
            self.assertRefusedWorkdir(r, wd)
            r = self.sbx_with_fd(["exec", "-w", "/tmp", "wd", "pwd"])
            self.assertEqual((r.rc, r.out), (0, "/tmp\n"), r)
        finally:
            self.sbx_with_fd(["rm", "-f", "wd"])


if __name__ == "__main__":
    unittest.main()
