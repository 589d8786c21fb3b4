"""The helpers' confinement, read from /proc while they work (docs/SECURITY.md
sections 6 and 8): sbx-net during a run, the import child of sbx-store during
a held import. The test is root in CI and reads what the kernel says about
them, not what they say about themselves."""
import fcntl
import io
import os
import platform
import pty
import signal
import stat
import subprocess
import sys
import tarfile
import termios
import time
import unittest

from sbxtest import IS_ROOT, SRCDIR, SbxTestCase, fixture

sys.path.insert(0, os.path.join(SRCDIR, "tests", "fixtures"))
import mkhostile as mh  # noqa: E402

BUSYBOX = "busybox-legacy.tar"


def children(pid):
    """Direct children of pid (of its main thread: sbx forks from there)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def tty_nr(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[4])  # field 7


def ns(pid, kind):
    return os.readlink("/proc/%d/ns/%s" % (pid, kind))


class TestNetHelperConfinement(SbxTestCase):
    mode = "single"

    def setUp(self):
        super().setUp()
        if not IS_ROOT:
            self.skipTest("reading another user's /proc/PID/root needs root (CI runs as root)")
        if (os.stat("/dev/net/tun").st_mode & 0o006) != 0o006:
            self.skipTest("/dev/net/tun is not mode 0666 here (CI makes it so)")

    def start_on_a_terminal(self):
        """sbx on a pty that is its controlling terminal: whatever it starts
        could inherit that terminal unless it drops it."""
        master, slave = pty.openpty()
        pw = self.user_for(self.mode)

        def child_setup():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

        p = subprocess.Popen([self.sbx, "run", "-q", "--root", self.store_for(self.mode),
                              fixture(BUSYBOX), "sh", "-c", "echo up; sleep 60"],
                             stdin=slave, stdout=slave, stderr=slave, cwd=self.tmp,
                             env=self.env_for(self.mode), preexec_fn=child_setup)
        os.close(slave)
        self.addCleanup(os.close, master)
        self.addCleanup(lambda: (p.kill(), p.wait()))
        out = b""
        end = time.time() + 60
        while b"up" not in out and time.time() < end:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
        self.assertIn(b"up", out, "the sandbox did not start")
        return p

    def test_sbx_net_confined(self):
        p = self.start_on_a_terminal()
        helpers = [c for c in children(p.pid) if comm(c) == "sbx-net"]
        self.assertEqual(len(helpers), 1, "no sbx-net beside the sandbox")
        h = helpers[0]
        st = status(h)
        self.assertEqual(st["Seccomp"], "2", "sbx-net runs without its seccomp filter")
        self.assertEqual(st["NoNewPrivs"], "1")
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, "%s of sbx-net: %s" % (cap, st[cap]))
        # its own user and mount namespaces, neither sbx's nor the host's;
        # the host's network (its job)
        for kind in ("user", "mnt"):
            self.assertNotEqual(ns(h, kind), ns(p.pid, kind), kind)
            self.assertNotEqual(ns(h, kind), ns(os.getpid(), kind), kind)
        self.assertEqual(ns(h, "net"), ns(os.getpid(), "net"))
        with open("/proc/%d/uid_map" % h) as f:
            self.assertEqual(f.read().split(), ["0", str(self.user_for(self.mode).pw_uid), "1"])
        # an empty root: only the resolv.conf libslirp reads
        root = "/proc/%d/root" % h
        tree = sorted(os.path.relpath(os.path.join(d, n), root)
                      for d, dirs, files in os.walk(root) for n in dirs + files)
        self.assertEqual(tree, ["etc", "etc/resolv.conf"])
        # sbx has the terminal; its helper has none
        self.assertNotEqual(tty_nr(p.pid), 0, "the test failed to give sbx a terminal")
        self.assertEqual(tty_nr(h), 0, "sbx-net has a controlling terminal")
        self.assertNotEqual(os.getsid(h), os.getsid(p.pid))
        # no file of the user's terminal either: stdio is /dev/null
        for fd in (0, 1, 2):
            self.assertEqual(os.readlink("/proc/%d/fd/%d" % (h, fd)), "/dev/null", fd)


@unittest.skipUnless(platform.machine() == "x86_64", "x86_64 system call numbers")
class TestNetHelperFilter(unittest.TestCase):
    """What the helpers' seccomp allowlist, compiled when sbx was built
    (src/net/netd-filter-gen.c -> netd-filter.h), answers: evaluated call by
    call; test_sbx_net_confined sees it loaded."""

    def setUp(self):
        self.header = os.path.join(os.path.dirname(os.environ["SBX_BIN"]), "netd-filter.h")

    def answers(self, name):
        import bpfeval as b
        prog = b.load_header(self.header, name)
        self.assertGreater(len(prog), 20)
        x86_64 = b.AUDIT_ARCH_X86_64
        eperm = b.errno(1)
        calls = {  # nr, args, answer
            "read": (0, (), b.ALLOW), "sendto": (44, (), b.ALLOW), "recvmsg": (47, (), b.ALLOW),
            "socket(AF_INET)": (41, (2, 1, 0), b.ALLOW),
            "socket(AF_INET6)": (41, (10, 2, 0), b.ALLOW),
            "socket(AF_INET|1<<32)": (41, (2 | 1 << 32, 1, 0), b.ALLOW),
            "socket(AF_UNIX)": (41, (1, 1, 0), eperm), "socket(AF_NETLINK)": (41, (16, 3, 0), eperm),
            "socket(AF_PACKET)": (41, (17, 3, 0), eperm),
            "ioctl(FIONREAD)": (16, (3, 0x541B), b.ALLOW), "ioctl(TIOCSTI)": (16, (0, 0x5412), eperm),
            "execve": (59, (), eperm), "ptrace": (101, (), eperm), "mount": (165, (), eperm),
            "unshare": (272, (), eperm), "setns": (308, (), eperm), "open_by_handle_at": (304, (), eperm),
            "flock": (73, (), b.ALLOW if name == "sbx_switch_filter" else eperm),
            # a taken spare (src/net/main.c): back to SCHED_OTHER and its name, nothing else
            "sched_setscheduler(0, SCHED_OTHER)": (144, (0, 0, 0), b.ALLOW),
            "sched_setscheduler(0, SCHED_FIFO)": (144, (0, 1, 0), eperm),
            "sched_setscheduler(1, SCHED_OTHER)": (144, (1, 0, 0), eperm),
            "prctl(PR_SET_NAME)": (157, (15,), b.ALLOW),
            "prctl(PR_SET_DUMPABLE)": (157, (4,), eperm),
            "prctl(PR_SET_SECCOMP)": (157, (22,), eperm),
        }
        got = {c: hex(b.run(prog, nr, x86_64, args)) for c, (nr, args, _) in calls.items()}
        self.assertEqual(got, {c: hex(want) for c, (_, _, want) in calls.items()}, name)
        # another ABI: killed, whatever the call
        for nr, arch in ((20, b.AUDIT_ARCH_I386), (b.X32_BIT | 0, x86_64)):
            self.assertNotIn(b.run(prog, nr, arch) & 0xFFFF0000, (b.ALLOW, eperm & 0xFFFF0000), nr)

    def test_sbx_net(self):
        self.answers("sbx_netd_filter")

    def test_sbx_switch(self):
        self.answers("sbx_switch_filter")


class TestStoreHelperConfinement(SbxTestCase):
    """SECURITY.md 6: the archive is parsed in sbx-store, 'in its own user
    namespace with no_new_privs'. That is what is asserted, of the process
    that reads the archive (sbx-store's child), caught mid-import."""
    mode = "single"

    def test_import_child_confined(self):
        if not IS_ROOT:
            self.skipTest("stopping another user's process needs root (CI runs as root)")
        path = os.path.join(self.tmp, "slow.tar")
        # zeros behind the tar's end: read, decompressed and hashed, nothing
        # written; long enough (seconds under ASan) to be caught and stopped
        mh.write_bomb(path, size=400 * 1000 * 1000, after_end=True)
        os.chmod(path, 0o644)
        # (run, not load: `sbx load` becomes sbx-store, run keeps sbx beside it)
        p = self.popen(["run", "-q", "--entrypoint", "", path, "/nonexistent"],
                       env={"SBX_MAX_LAYER_SIZE": str(1 << 30)}, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        def reading(pid):
            """Has pid the archive open (it is reading untrusted bytes)?"""
            try:
                return any(os.readlink("/proc/%d/fd/%s" % (pid, fd)) == path
                           for fd in os.listdir("/proc/%d/fd" % pid))
            except OSError:
                return False

        child = None
        end = time.time() + 60
        while child is None and time.time() < end and p.poll() is None:
            for h in children(p.pid):
                kids = [k for k in children(h) if reading(k)]
                if kids:
                    child, helper = kids[0], h
                    os.kill(child, signal.SIGSTOP)
                    break
        self.assertIsNotNone(child, "never saw sbx-store's import child (rc %r)" % p.poll())
        try:
            self.assertEqual(comm(helper), "sbx-store")
            st = status(child)
            self.assertEqual(st["NoNewPrivs"], "1", "the archive is read without no_new_privs")
            # its seccomp filter (src/store/confine.c; what it refuses: unit-confine)
            self.assertEqual(st["Seccomp"], "2", "the archive is read without a seccomp filter")
            self.assertGreaterEqual(int(st["Seccomp_filters"]), 1)
            self.assertEqual(status(helper)["Seccomp"], "0")  # (sbx-store itself: the control)
            # only the capabilities unpacking needs: CHOWN DAC_OVERRIDE FOWNER FSETID SETFCAP
            caps = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 31)
            self.assertEqual(int(st["CapEff"], 16), caps)
            self.assertEqual(int(st["CapBnd"], 16), caps)
            self.assertEqual(int(st["CapInh"], 16), 0)
            self.assertNotEqual(ns(child, "user"), ns(p.pid, "user"))
            self.assertNotEqual(ns(child, "user"), ns(os.getpid(), "user"))
            with open("/proc/%d/uid_map" % child) as f:
                self.assertEqual(f.read().split(),
                                 ["0", str(self.user_for(self.mode).pw_uid), "1"])
            self.assertEqual(status(p.pid)["NoNewPrivs"], "0")  # (sbx itself: the control)
        finally:
            os.kill(child, signal.SIGCONT)
            out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 127, err)  # imported; the layer has no program


class TestStoreHelperCapabilities(SbxTestCase):
    """The import child keeps only CHOWN, DAC_OVERRIDE, FOWNER, FSETID and
    SETFCAP (src/store/confine.c): what an image's files need of them still
    lands in the store — owners, setuid and setgid bits of other users' files
    (without FSETID the kernel drops a setgid bit silently), a file inside a
    directory its owner cannot write, a user xattr, a FIFO."""
    mode = "range"

    def test_unpacked_with_fewer_capabilities(self):
        if not IS_ROOT:
            self.skipTest("reading files of subordinate ids needs root (CI runs as root)")
        pw = self.user_for(self.mode)
        path = os.path.join(self.tmp, "caps.tar")
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
            def add(name, mode, uid, gid, kind=tarfile.REGTYPE, pax=None):
                ti = tarfile.TarInfo(name)
                ti.mode, ti.uid, ti.gid, ti.type = mode, uid, gid, kind
                ti.pax_headers = pax or {}
                ti.size = 1 if kind == tarfile.REGTYPE else 0
                t.addfile(ti, io.BytesIO(b"x") if kind == tarfile.REGTYPE else None)
            add("ro", 0o500, 1000, 1000, tarfile.DIRTYPE)
            add("ro/f", 0o400, 1000, 1000)
            add("sg", 0o2755, 0, 1000)
            add("su", 0o4755, 1000, 0)
            add("fifo", 0o600, 1000, 1000, tarfile.FIFOTYPE)
            add("xa", 0o644, 0, 0, pax={"SCHILY.xattr.user.sbx-test": "kept"})
        os.chmod(path, 0o644)
        r = self.sbx_cmd(["load", "-q", "--root", self.store_for(self.mode), "--userns", "range",
                          "--rootfs", path])
        self.assertEqual(r.rc, 0, r)
        dirs = self.layer_dirs()
        self.assertEqual(len(dirs), 1, dirs)
        layer = os.path.join(self.store_for(self.mode), "layers", *dirs[0])
        with open("/etc/subuid") as f:
            start = [int(l.split(":")[1]) for l in f if l.split(":")[0] == pw.pw_name][0]
        with open("/etc/subgid") as f:
            gstart = [int(l.split(":")[1]) for l in f if l.split(":")[0] == pw.pw_name][0]
        uid, gid = start + 1000 - 1, gstart + 1000 - 1  # (0 is the user, 1.. the range)

        def st(name):
            s = os.lstat(os.path.join(layer, name))
            return stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid
        self.assertEqual(st("ro"), (stat.S_IFDIR, 0o500, uid, gid))
        self.assertEqual(st("ro/f"), (stat.S_IFREG, 0o400, uid, gid))
        self.assertEqual(st("sg"), (stat.S_IFREG, 0o2755, pw.pw_uid, gid))
        self.assertEqual(st("su"), (stat.S_IFREG, 0o4755, uid, pw.pw_gid))
        self.assertEqual(st("fifo"), (stat.S_IFIFO, 0o600, uid, gid))
        self.assertEqual(os.getxattr(os.path.join(layer, "xa"), "user.sbx-test"), b"kept")


if __name__ == "__main__":
    unittest.main()
