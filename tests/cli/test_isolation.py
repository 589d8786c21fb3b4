"""What the sandboxed program can see: its own pids, network, mounts, fds."""
import os
import signal
import subprocess
import time
import unittest

from sbxtest import SbxTestCase, fixture


class TestIsolation(SbxTestCase):
    def test_own_pid_namespace(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c", "ps -o pid,comm; cd /proc && echo [0-9]*")
        lines = r.out.splitlines()
        self.assertEqual(lines[1].split(), ["1", "sbx-init"])
        self.assertEqual(lines[-1], "1 2")  # init and the shell: nothing of the host

    def test_only_loopback(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c",
                        "ls /sys/class/net; ip -o addr show lo | grep -c 127.0.0.1",
                        opts=["--network", "none"])
        self.assertEqual(r.out, "lo\n1\n")

    def test_dev_is_minimal(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "ls", "/dev")
        self.assertEqual(sorted(r.out.split()), sorted(
            "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero".split()))
        r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c",
                        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && "
                        "echo y > /dev/shm/f && cat /dev/shm/f")
        self.assertEqual(r.out, "4\ny\n")

    def test_sys_read_only(self):
        r = self.sbx_cmd(["run", "-q", fixture("busybox-legacy.tar"), "sh", "-c",
                          "touch /sys/x 2>&1; grep ' /sys ' /proc/mounts"])
        self.assertIn("Read-only file system", r.out)
        self.assertRegex(r.out, r" /sys sysfs ro[ ,]")

    def test_no_new_privs_and_fds(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c",
                        "grep NoNewPrivs /proc/self/status; ls /proc/self/fd")
        lines = r.out.split()
        self.assertEqual(lines[:2], ["NoNewPrivs:", "1"])
        self.assertEqual(sorted(lines[2:]), ["0", "1", "2", "3"])  # 3: ls's own dir fd

    def test_old_root_not_reachable(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c",
                        "cat /proc/mounts | awk '{print $2}' | sort | tr '\\n' ' '")
        for m in r.out.split():
            self.assertFalse(m.startswith(("/work", "/tmp/sbx", "/home", "/root")), r.out)

    def test_init_not_ptraceable(self):
        r = self.sbx_cmd(["run", "-q", fixture("busybox-legacy.tar"), "sh", "-c",
                          "cat /proc/1/cmdline | tr '\\0' ' '; echo; readlink /proc/1/exe || echo denied"])
        self.assertTrue(r.out.startswith("sbx-init"), r)
        self.assertIn("denied", r.out)
        self.assertNotIn("/sbx", r.out.split("\n", 1)[1])

    def test_nothing_survives_a_killed_sbx(self):
        marker = "sleep %d" % (100000 + os.getpid())
        p = self.popen(["run", "-q", fixture("busybox-legacy.tar"), "sh", "-c",
                        "echo ready; exec %s" % marker],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.stdout.readline(), b"ready\n")

        def alive():
            out = subprocess.run(["ps", "-eo", "args"], stdout=subprocess.PIPE).stdout.decode()
            return marker in out

        self.assertTrue(self.wait_for(alive), "sleeper never showed up")
        children = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(p.pid)],
                                  stdout=subprocess.PIPE).stdout.decode().split()
        helpers = [int(pid) for pid, comm in zip(children[::2], children[1::2])
                   if comm == "sbx-net"]
        self.assertEqual(len(helpers), 1, children)  # the network helper (slirp, the default)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        self.assertTrue(self.wait_for(lambda: not alive()), "the sandbox outlived sbx")

        def helper_gone():
            try:
                with open("/proc/%d/stat" % helpers[0]) as f:
                    return f.read().split(")")[1].split()[0] in ("Z", "X")
            except FileNotFoundError:
                return True

        self.assertTrue(self.wait_for(helper_gone), "the network helper outlived sbx")


if __name__ == "__main__":
    unittest.main()



class TestKilledSbxSingle(SbxTestCase):
    """The same in single-id mode, where the sandbox's first process writes
    its own maps and waits for no word from sbx."""
    mode = "single"
    test_nothing_survives_a_killed_sbx = TestIsolation.test_nothing_survives_a_killed_sbx

class TestPlantedSymlinks(SbxTestCase):
    """An image whose /proc, /dev, /etc/hosts, /etc/resolv.conf and WORKDIR are
    symlinks to host paths: setup resolves them inside the rootfs."""

    def _image(self, canary):
        import hashlib
        import io
        import json
        import tarfile
        with tarfile.open(fixture("busybox-legacy.tar")) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))
            base = outer.extractfile(manifest[0]["Layers"][0]).read()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name, target in [("proc", canary + "/proc"), ("dev", canary + "/dev"),
                                 ("etc/hosts", canary + "/hosts"),
                                 ("etc/resolv.conf", "../../../../../../" + canary + "/resolv"),
                                 ("etc/hostname", canary + "/hostname"), ("wd", canary + "/wd")]:
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.SYMTYPE
                ti.linkname = target
                t.addfile(ti)
        layer2 = buf.getvalue()
        diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in (base, layer2)]
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Cmd": ["sh"], "WorkingDir": "/wd",
                                        "Env": ["PATH=/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        cfg = hashlib.sha256(config).hexdigest() + ".json"
        man = json.dumps([{"Config": cfg, "RepoTags": ["planted:latest"],
                           "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode()
        path = os.path.join(self.tmp, "planted.tar")
        with tarfile.open(path, "w") as t:
            for name, data in [(cfg, config), ("manifest.json", man), ("a/layer.tar", base),
                               ("b/layer.tar", layer2)]:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        os.chmod(path, 0o644)
        return path

    def test_setup_never_leaves_the_root(self):
        canary = os.path.join(self.tmp, "canary")
        os.mkdir(canary)
        os.chmod(canary, 0o777)
        image = self._image(canary)
        r = self.sbx_cmd(["run", "-q", "--hostname", "planted", image, "sh", "-c",
                          "pwd; cat /etc/hostname; ls /proc/self/ns | head -1; ls /dev/null"])
        self.assertEqual(r.rc, 0, r)
        # the working directory is the symlink's target, created inside the rootfs
        self.assertEqual(r.out.split(), [canary + "/wd", "planted", "cgroup", "/dev/null"])
        self.assertEqual(os.listdir(canary), [], "setup wrote through a planted symlink")


class TestOlderKernels(SbxTestCase):
    """The fallbacks for kernels without openat2 (before 5.6) or mount_setattr
    (before 5.12), made from outside the binary: tests/nosys.c runs sbx with
    those system calls failing with ENOSYS (no switch inside sbx)."""

    mode = "single"  # nosys sets no_new_privs: no setuid newuidmap beneath it

    def volume(self):
        vol = os.path.join(self.tmp, "vol")
        os.mkdir(vol)
        os.chmod(vol, 0o777)
        with open(os.path.join(vol, "in"), "w") as f:
            f.write("from-host\n")
        os.chmod(os.path.join(vol, "in"), 0o644)
        return vol

    def test_no_openat2(self):
        """Import (unpack beneath the layer root) and mounts (targets in the
        root) by the component-by-component O_NOFOLLOW walk."""
        vol = self.volume()
        r = self.sbx_cmd(["run", "-q", "-v", vol + ":/data:ro", "--tmpfs", "/scratch",
                          fixture("multilayer-legacy.tar"), "sh", "-c",
                          "cat /data/in; echo x > /scratch/x && cat /scratch/x; "
                          "echo y > /data/y || echo refused"],
                         wrap=self.nosys("openat2"))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "from-host\nx\nrefused\n")
        self.assertIn("Read-only file system", r.err)
        self.assertFalse(os.path.exists(os.path.join(vol, "y")))

    def test_no_mount_setattr(self):
        """:ro volumes and --read-only by a read-only remount instead."""
        vol = self.volume()
        r = self.sbx_cmd(["run", "-q", "--read-only", "-v", vol + ":/data:ro",
                          fixture("busybox-legacy.tar"), "sh", "-c",
                          "cat /data/in; for f in /data/y /y /etc/y; do "
                          "touch $f 2>/dev/null && echo wrote $f; done; grep ' /data ' /proc/mounts"],
                         wrap=self.nosys("mount_setattr"))
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertEqual(lines[0], "from-host")
        self.assertEqual(len(lines), 2, r)  # no "wrote"
        self.assertRegex(lines[1], r" /data \S+ ro[ ,]")
        self.assertFalse(os.path.exists(os.path.join(vol, "y")))
