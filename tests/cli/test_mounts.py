"""Namespaces, mounts and the image's files where the other tests do not
look: every namespace differs from the host's (IPC included), --tmpfs's
size= and mode=, -v in range mode and with --read-only, planted symlinks at
--tmpfs and -v targets, and an /etc/passwd that is not a regular file."""
import hashlib
import io
import json
import os
import subprocess
import tarfile
import unittest

from sbxtest import SbxTestCase, fixture

BUSYBOX = "busybox-legacy.tar"


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def busybox_plus(tmp, name, entries):
    """busybox-legacy with one more layer made of `entries` (TarInfo, bytes)."""
    with tarfile.open(fixture(BUSYBOX)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        base = outer.extractfile(manifest[0]["Layers"][0]).read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    layer2 = buf.getvalue()
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in (base, layer2)]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cfg = hashlib.sha256(config).hexdigest() + ".json"
    man = json.dumps([{"Config": cfg, "RepoTags": [name + ":latest"],
                       "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode()
    path = os.path.join(tmp, name + ".tar")
    with tarfile.open(path, "w") as t:
        for n, data in [(cfg, config), ("manifest.json", man), ("a/layer.tar", base),
                        ("b/layer.tar", layer2)]:
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    os.chmod(path, 0o644)
    return path


def entry(name, kind, target=None, data=None):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    if target is not None:
        ti.linkname = target
    if data is not None:
        ti.size = len(data)
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return ti, data


class TestNamespaces(SbxTestCase):
    mode = "single"

    def program_ns(self, opts=()):
        p = self.popen(["run", "-q"] + list(opts) + [fixture(BUSYBOX), "sh", "-c",
                                                     "echo ready; exec sleep 60"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"ready\n")
            inits = [c for c in children(p.pid) if open("/proc/%d/comm" % c).read().strip()
                     == "sbx-init"]
            self.assertEqual(len(inits), 1, children(p.pid))
            prog = children(inits[0])
            self.assertEqual(len(prog), 1)
            return {k: os.readlink("/proc/%d/ns/%s" % (prog[0], k))
                    for k in ("ipc", "uts", "pid", "mnt", "net", "cgroup", "user")}
        finally:
            p.kill()
            p.communicate()

    def host_ns(self):
        return {k: os.readlink("/proc/self/ns/%s" % k)
                for k in ("ipc", "uts", "pid", "mnt", "net", "cgroup", "user")}

    def test_every_namespace_is_its_own(self):
        inside, host = self.program_ns(), self.host_ns()
        self.assertEqual({k for k in inside if inside[k] == host[k]}, set(), (inside, host))

    def test_network_host_shares_only_the_network(self):
        inside, host = self.program_ns(["--network", "host"]), self.host_ns()
        self.assertEqual({k for k in inside if inside[k] == host[k]}, {"net"}, (inside, host))


class TestTmpfsOptions(SbxTestCase):
    mode = "single"

    def test_size_and_mode(self):
        r = self.run_ok(fixture(BUSYBOX), "sh", "-c",
                        "stat -c %a /scratch; grep ' /scratch ' /proc/mounts; "
                        "dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>&1 | tail -1; "
                        "du -k /scratch/big | cut -f1",
                        opts=["--tmpfs", "/scratch:size=1m,mode=0710"])
        lines = r.out.splitlines()
        self.assertEqual(lines[0], "710", r)
        self.assertIn("size=1024k", lines[1], r)
        self.assertIn("mode=710", lines[1], r)
        self.assertIn("1024+0 records out", r.out, r)  # the rest: no space
        self.assertLessEqual(int(lines[-1]), 1024, r)

    def test_bad_options_are_named_before_the_run(self):
        """A bad size= (or mode=, nr_inodes=) is named at parse time, not
        left to the mount's bare "Invalid argument"."""
        for spec in ("/t:size=abc", "/t:size=", "/t:mode=99", "/t:nr_inodes=1x", "/t:size=1m,bad"):
            r = self.sbx_cmd(["run", "-q", "--tmpfs", spec, fixture(BUSYBOX), "true"])
            bad = spec.split(":")[1].split(",")[-1]
            self.assertSbxError(r, contains="--tmpfs %s: '%s' is not valid" % (spec, bad)
                                if bad != "bad" else "--tmpfs %s: option 'bad' not supported" % spec)
        for good in ("/t:size=10%", "/t:size=64K,mode=1777,nr_inodes=1k"):
            self.run_ok(fixture(BUSYBOX), "true", opts=["--tmpfs", good])

    def test_defaults_differ(self):
        """The control: without size=/mode=, Docker's defaults (1777, no size)."""
        r = self.run_ok(fixture(BUSYBOX), "sh", "-c", "stat -c %a /scratch; "
                        "grep ' /scratch ' /proc/mounts", opts=["--tmpfs", "/scratch"])
        self.assertEqual(r.out.splitlines()[0], "1777", r)
        self.assertNotIn("size=1024k", r.out, r)


class TestVolumesMore(SbxTestCase):
    mode = "range"

    def vol(self):
        d = os.path.join(self.tmp, "vol")
        os.mkdir(d, 0o755)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(d, pw.pw_uid, pw.pw_gid)
        return d

    def test_volume_in_range_mode(self):
        d = self.vol()
        r = self.run_ok(fixture(BUSYBOX), "sh", "-c",
                        "echo root > /data/by-root; stat -c %u /data; id -u",
                        opts=["-v", d + ":/data"])
        self.assertEqual(r.out.split(), ["0", "0"], r)  # the user's own directory is root's
        pw = self.user_for(self.mode)
        st = os.stat(os.path.join(d, "by-root"))
        self.assertEqual(st.st_uid, pw.pw_uid if pw else os.getuid())
        # another id inside is a subordinate id outside, never the user
        r = self.sbx_cmd(["run", "-q", "-u", "1000", "-v", d + ":/data", fixture(BUSYBOX),
                          "sh", "-c", "touch /data/by-1000"])
        self.assertEqual(r.rc, 1, r)
        self.assertIn("Permission denied", r.err)

    def test_volume_with_read_only_root(self):
        d = self.vol()
        r = self.sbx_cmd(["run", "-q", "--read-only", "-v", d + ":/data", fixture(BUSYBOX),
                          "sh", "-c", "echo v > /data/ok && echo vol-ok; "
                          "touch /etc/nope 2>&1 || echo root-ro"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("vol-ok", r.out)
        self.assertIn("Read-only file system", r.out)
        self.assertIn("root-ro", r.out)
        self.assertTrue(os.path.exists(os.path.join(d, "ok")))
        r = self.sbx_cmd(["run", "-q", "--read-only", "-v", d + ":/data:ro", fixture(BUSYBOX),
                          "sh", "-c", "touch /data/no 2>&1; echo done"])
        self.assertIn("Read-only file system", r.out, r)
        self.assertFalse(os.path.exists(os.path.join(d, "no")))


class TestPlantedTargets(SbxTestCase):
    """--tmpfs and -v targets that are symlinks to host paths in the image:
    resolved inside the rootfs, never mounted over or written on the host."""
    mode = "single"

    def test_tmpfs_and_volume_targets(self):
        canary = os.path.join(self.tmp, "canary")
        os.mkdir(canary, 0o777)
        os.chmod(canary, 0o777)
        vol = os.path.join(self.tmp, "vol")
        os.mkdir(vol, 0o777)
        os.chmod(vol, 0o777)
        image = busybox_plus(self.tmp, "planted-targets", [
            entry("scratch", tarfile.SYMTYPE, canary + "/scratch"),
            entry("data", tarfile.SYMTYPE, "../../../../../../.." + canary + "/data"),
        ])
        r = self.sbx_cmd(["run", "-q", "--tmpfs", "/scratch", "-v", vol + ":/data", image,
                          "sh", "-c", "echo t > /scratch/t && echo v > /data/v && "
                          "grep -c ' %s/scratch tmpfs ' /proc/mounts" % canary])
        self.assertEqual((r.rc, r.out), (0, "1\n"), r)
        self.assertEqual(os.listdir(canary), [], "a mount or a write landed on the host path")
        self.assertEqual(os.listdir(vol), ["v"], "the volume is where -v said")


class TestPasswdNotRegular(SbxTestCase):
    """The image's /etc/passwd as a FIFO, a directory, a symlink to
    /dev/zero: read only if regular — never blocking, never endless."""
    mode = "range"  # (uid 1234 needs a range)

    CASES = {
        "fifo": [entry("etc/passwd", tarfile.FIFOTYPE)],
        "dir": [entry("etc/passwd", tarfile.DIRTYPE)],
        "zero": [entry("etc/passwd", tarfile.SYMTYPE, "/dev/zero")],
    }

    def test_runs_and_names_are_refused(self):
        for variant, entries in self.CASES.items():
            with self.subTest(variant=variant):
                image = busybox_plus(self.tmp, "passwd-" + variant, entries)
                # (not `id`: busybox's own getpwuid would block on the FIFO)
                uid = "grep ^Uid: /proc/self/status | cut -f2; echo $HOME"
                r = self.sbx_cmd(["run", "-q", image, "sh", "-c", uid], timeout=60)
                # no account file: root, HOME=/ (a regular one gives /root)
                self.assertEqual((r.rc, r.out), (0, "0\n/\n"), r)
                r = self.sbx_cmd(["run", "-q", "-u", "app", image, "true"], timeout=60)
                self.assertSbxError(r, contains="user app: no matching entry in the image's "
                                    "/etc/passwd")
                r = self.sbx_cmd(["run", "-q", "-u", "1234", image, "sh", "-c", uid], timeout=60)
                self.assertEqual((r.rc, r.out), (0, "1234\n/\n"), r)


if __name__ == "__main__":
    unittest.main()
