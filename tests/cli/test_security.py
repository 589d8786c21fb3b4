"""Secure by default: what a program in the sandbox can and cannot do, as
tests/probe.c reports it from inside (the `probe` fixture image: the busybox
layer plus /probe, Entrypoint ["/probe"]).

Every test runs in both uid-map modes (TestSecurityRange, TestSecuritySingle).
The probe prints "KIND [KEY] VALUE" lines; parse_report() turns them into
dicts, and the tests compare exact values.
"""
import json
import os
import platform
import pty
import resource
import struct
import fcntl
import subprocess
import tty
import unittest

from sbxtest import SbxTestCase, fixture

DOCKER_CAPS = 0x00000000A80425FB  # Docker's default set for root
CAP_NET_ADMIN, CAP_SYS_PTRACE, CAP_SYS_ADMIN = 12, 19, 21
X86_64 = platform.machine() == "x86_64"


def _kernel_runs_x32():
    """Whether this kernel runs x32 system calls (asked in a child: a filter
    around the tests may kill for the attempt)."""
    if not X86_64:
        return False
    import ctypes
    pid = os.fork()
    if pid == 0:
        r = ctypes.CDLL(None, use_errno=True).syscall(0x40000000 | 39)  # x32 getpid
        os._exit(0 if r > 0 else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _kernel_runs_i386():
    """Whether this kernel runs i386 system calls (int $0x80): not with
    ia32_emulation=0, where the instruction faults (SIGSEGV) before any
    filter sees it. Asked in a child, by eight bytes of machine code."""
    if not X86_64:
        return False
    import ctypes
    import mmap
    pid = os.fork()
    if pid == 0:
        code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax,20 (getpid); int 0x80; ret
        m = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        m.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        r = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
        os._exit(0 if r > 0 else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# The default filter holds the i386 ABI's rules only where the kernel runs
# it, as it does x32's (below): elsewhere int $0x80 never reaches a filter.
I386_RUNS = _kernel_runs_i386()

# The default filter holds the x32 ABI's rules only where the kernel runs it
# (seccomp-compile.c add_arches); elsewhere an x32 call meets its bad-arch
# action, ENOSYS, which is also the kernel's answer. Refused either way.
X32_REFUSED = "EPERM" if _kernel_runs_x32() else "ENOSYS"

# What the default profile refuses with EPERM before the kernel looks at the
# arguments (the probe passes harmless ones: the kernel itself would answer
# ENOENT, EBADF, EFAULT, EINVAL... see test_unconfined).
REFUSED = [
    "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fspick",
    "fsconfig", "mount_setattr", "unshare(0)", "unshare(CLONE_NEWUSER)", "unshare(CLONE_NEWNS)",
    "unshare(CLONE_NEWNET)", "setns", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load",
    "init_module", "finit_module", "delete_module", "open_by_handle_at", "reboot", "swapon",
    "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "acct", "sethostname",
    "setdomainname", "syslog", "kcmp", "pidfd_getfd", "fanotify_init", "quotactl",
    "set_mempolicy", "clone(CLONE_NEWUSER)", "clone(CLONE_NEWNS)", "clone(CLONE_NEWPID)",
    "socket(AF_ALG)", "socket(AF_VSOCK)", "socket(AF_ALG|1<<32)", "socket(AF_VSOCK|1<<32)",
    "personality(READ_IMPLIES_EXEC)", "personality(READ_IMPLIES_EXEC|1<<32)",
] + (["iopl", "ioperm"] if X86_64 else [])

# Refused by the kernel whatever the filter says: init is not dumpable, a user
# namespace cannot make device nodes.
KERNEL_REFUSED = {"ptrace(ATTACH,1)": "EPERM", "process_vm_readv(1)": "EPERM",
                  "mknod(char-1:3)": "EPERM"}

ALLOWED = {
    "socket(AF_INET)": "OK", "socket(AF_INET6)": "OK", "socket(AF_UNIX)": "OK",
    "socket(AF_NETLINK)": "OK", "socket(AF_INET|1<<32)": "OK", "clone(SIGCHLD)": "OK",
    "personality(0xffffffff)": "OK", "personality(0)": "OK", "getpid": "OK",
    "mkdirat": "OK", "chroot": "ENOENT",  # CAP_SYS_CHROOT is in the default set
    "clone3": "ENOSYS",  # so that libc falls back to clone, whose flags seccomp can read
}
if X86_64:
    ALLOWED["mkdir"] = "OK"

# The same calls through the i386 ABI (int $0x80) of an x86_64 kernel.
I386_REFUSED = ["i386:mount", "i386:unshare(0)", "i386:unshare(CLONE_NEWUSER)", "i386:setns",
                "i386:keyctl", "i386:personality(READ_IMPLIES_EXEC)", "i386:socket(AF_ALG)",
                "i386:socket(AF_VSOCK)", "i386:socketcall(SOCKET,AF_ALG)",
                "i386:socketcall(SOCKET,AF_VSOCK)"]

# What the kernel answers to the probe's arguments when no filter is in the
# way (independent of this kernel's configuration).
KERNEL_ANSWERS = {
    "mount": "ENOENT", "umount2": "ENOENT", "open_tree": "ENOENT", "setns": "EBADF",
    "keyctl": "EOPNOTSUPP", "add_key": "EFAULT", "request_key": "EFAULT",
    "settimeofday": "EFAULT", "clock_settime": "EFAULT", "clock_adjtime": "EFAULT",
    "unshare(0)": "OK", "clone3": "EINVAL", "personality(READ_IMPLIES_EXEC)": "OK",
    "pidfd_getfd": "EBADF", "kcmp": "ESRCH",
}

MASKED_FILES = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                "/proc/latency_stats", "/proc/interrupts"]
MASKED_DIRS = ["/proc/acpi", "/proc/scsi", "/proc/asound", "/sys/firmware",
               "/sys/devices/virtual/powercap"]
READONLY_PROC = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"]

DEV = {
    "/dev/fd": "link /proc/self/fd", "/dev/full": "char 1:7", "/dev/mqueue": "dir",
    "/dev/null": "char 1:3", "/dev/ptmx": "link pts/ptmx", "/dev/pts": "dir",
    "/dev/pts/ptmx": "char 5:2", "/dev/random": "char 1:8", "/dev/shm": "dir",
    "/dev/stderr": "link /proc/self/fd/2", "/dev/stdin": "link /proc/self/fd/0",
    "/dev/stdout": "link /proc/self/fd/1", "/dev/tty": "char 5:0", "/dev/urandom": "char 1:9",
    "/dev/zero": "char 1:5",
}

# Issue 9: every way of giving a file in a volume S_ISUID or S_ISGID (the
# probe's "setid" section) and what must still work beside them.
SETID_REFUSED = {
    "chmod(4755)": "EPERM", "chmod(2755)": "EPERM", "chmod(dir,2755)": "EPERM",
    "chmod(4755|1<<32)": "EPERM", "fchmod(4755)": "EPERM", "fchmodat(6755)": "EPERM",
    "fchmodat2(4755)": "EPERM", "creat(4755)": "EPERM", "open(O_CREAT,4755)": "EPERM",
    "openat(O_CREAT,2755)": "EPERM", "openat(O_TMPFILE,4755)": "EPERM",
    "mknod(S_IFREG,4755)": "EPERM", "mknodat(S_IFREG,2755)": "EPERM",
    # its mode sits in memory seccomp cannot read: callers fall back to openat
    "openat2(O_CREAT,4755)": "ENOSYS",
}
SETID_ALLOWED = {"chmod(0700)": "OK", "chmod(dir,1777)": "OK", "fchmodat2(0750)": "OK",
                 "open(O_CREAT,0644)": "OK", "open(O_RDONLY,junk)": "OK"}
SETID_I386 = {"i386:chmod(4755)": "EPERM", "i386:fchmod(2755)": "EPERM",
              "i386:fchmodat(4755)": "EPERM", "i386:fchmodat2(4755)": "EPERM",
              "i386:creat(4755)": "EPERM", "i386:open(O_CREAT,4755)": "EPERM",
              "i386:chmod(0755)": "OK",
              # refused by the filter whether or not the kernel has x32
              "x32:chmod(4755)": X32_REFUSED, "x32:fchmodat(2755)": X32_REFUSED}

KEYED = {"syscall", "cap", "fd", "masked", "mount", "write", "dev", "proc1", "rlimit", "cgroup",
         "id", "idmap", "memtouch", "userns", "mode", "setid", "userquota"}


def parse_report(text):
    """The probe's lines -> {kind: value} or {kind: {key: value}}."""
    lines = text.splitlines()
    if not lines or lines[0] != "probe 1" or lines[-1] != "end":
        raise AssertionError("incomplete probe report:\n" + text)
    report = {"env": {}}
    for line in lines[1:-1]:
        kind, _, rest = line.partition(" ")
        if kind in KEYED:
            key, _, value = rest.partition(" ")
            section = report.setdefault(kind, {})
            if key in section:
                raise AssertionError("%s %s reported twice" % (kind, key))
            section[key] = value
        elif kind == "env":
            k, _, v = rest.partition("=")
            report["env"][k] = v
        else:
            report[kind] = rest
    return report


def caps(report, name):
    return int(report["cap"][name], 16)


def cap_last():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def host_has(path):
    return os.path.lexists(path)


class SecurityTests:
    """The cases, run once per uid-map mode by the subclasses below."""

    # -- helpers ---------------------------------------------------------
    def probe(self, *opts, args=(), env=None):
        r = self.sbx_cmd(["run", "-q"] + list(opts) + [fixture("probe.tar")] + list(args), env=env)
        self.assertEqual(r.rc, 0, r)
        return parse_report(r.out)

    def probe_fails(self, *opts, contains, rc=125, args=()):
        r = self.sbx_cmd(["run", "-q"] + list(opts) + [fixture("probe.tar")] + list(args))
        return self.assertSbxError(r, rc=rc, contains=contains)

    def write_profile(self, name, profile):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(profile if isinstance(profile, str) else json.dumps(profile))
        os.chmod(path, 0o644)
        return path

    def assertSyscalls(self, report, expected):
        got = {k: report["syscall"].get(k, "(not reported)") for k in expected}
        self.assertEqual(got, dict(expected))

    # -- the default run -------------------------------------------------
    def test_default_refuses_syscalls(self):
        r = self.probe(args=["syscalls"])
        self.assertSyscalls(r, {name: "EPERM" for name in REFUSED})

    def test_default_allows_the_rest(self):
        r = self.probe(args=["syscalls"])
        self.assertSyscalls(r, ALLOWED)
        self.assertSyscalls(r, KERNEL_REFUSED)

    @unittest.skipUnless(X86_64, "the i386 and x32 ABIs are x86_64's")
    def test_default_refuses_i386_and_x32_abis(self):
        r = self.probe(args=["syscalls"])
        if r["syscall"]["i386:getpid"] != "OK":
            self.skipTest("no i386 emulation in this kernel (%s)" % r["syscall"]["i386:getpid"])
        self.assertSyscalls(r, {"i386:socket(AF_INET)": "OK"})
        # x32 numbers: refused by the filter whether or not the kernel has x32
        self.assertSyscalls(r, {"x32:unshare(0)": X32_REFUSED, "x32:mount": X32_REFUSED,
                                "x32:getpid": "OK" if X32_REFUSED == "EPERM" else "ENOSYS"})
        # socketcall(SYS_SOCKET, {family...}) hides the family in memory, where
        # seccomp cannot read it: it must not be a way around socket()'s rule.
        self.assertSyscalls(r, {name: "EPERM" for name in I386_REFUSED})

    def test_default_capabilities(self):
        r = self.probe(args=["caps"])
        self.assertEqual({k: caps(r, k) for k in r["cap"]},
                         {"CapInh": 0, "CapPrm": DOCKER_CAPS, "CapEff": DOCKER_CAPS,
                          "CapBnd": DOCKER_CAPS, "CapAmb": 0})
        self.assertEqual(r["nonewprivs"], "1")
        self.assertEqual(r["seccomp"], "2")
        # the allowlist, and a second filter refusing socket families (seccomp-compile.c)
        self.assertEqual(r["seccomp_filters"], "2")

    def test_default_ids(self):
        r = self.probe(args=["ids"])
        self.assertEqual(r["id"]["uid"], "0 0 0 0")
        self.assertEqual(r["id"]["gid"], "0 0 0 0")
        if self.mode == "single":
            self.assertEqual(r["idmap"]["uid"].split(";"), ["0 %d 1" % self.user_uid()])
        else:
            self.assertEqual(len(r["idmap"]["uid"].split(";")), 2, r["idmap"])

    def setid_volume(self):
        vol = os.path.join(self.tmp, "vol")
        os.mkdir(vol)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(vol, pw.pw_uid, pw.pw_gid)
        return vol

    def assertNoSetid(self, vol):
        for name in os.listdir(vol):
            mode = os.lstat(os.path.join(vol, name)).st_mode
            self.assertEqual(mode & 0o6000, 0, "%s is %o on the host" % (name, mode))

    def test_no_setid_file_through_a_volume(self):
        vol = self.setid_volume()
        r = self.probe("-v", vol + ":/v", args=["setid=/v"])
        self.assertNotIn("setid", r)
        self.assertSyscalls(r, SETID_REFUSED)
        self.assertSyscalls(r, SETID_ALLOWED)
        i386 = X86_64 and r["syscall"]["i386:chmod(0755)"] == "OK"
        if i386:
            self.assertSyscalls(r, SETID_I386)
        # what the probe saw inside, then what the host has
        self.assertEqual(r["mode"]["sbx-setid-f"], "0755" if i386 else "0750")
        self.assertEqual(r["mode"]["sbx-setid-dir"], "1777")
        for name in ("sbx-setid-creat", "sbx-setid-open", "sbx-setid-openat", "sbx-setid-node",
                     "sbx-setid-nodeat", "sbx-setid-openat2"):
            self.assertEqual(r["mode"][name], "ENOENT", name)
        self.assertNoSetid(vol)
        # A file capability may be written (CAP_SETFCAP), but the kernel
        # stores it as v3 with the sandbox's root as its root id: it is
        # honoured only in user namespaces whose root is the invoking user,
        # who has those capabilities there anyway. Never a plain v2 capability.
        self.assertEqual(r["syscall"]["setxattr(security.capability)"], "OK")
        cap = os.getxattr(os.path.join(vol, "sbx-setid-f"), "security.capability")
        magic, rootid = struct.unpack_from("<I", cap)[0], struct.unpack_from("<I", cap, 20)[0]
        self.assertEqual((len(cap), magic & 0xff000000), (24, 0x03000000), cap.hex())
        self.assertEqual(rootid, self.user_uid())

    def test_no_setid_file_with_busybox_chmod(self):
        vol = self.setid_volume()
        script = ("cd /v && echo x > f && chmod 755 f && "
                  "for m in u+s g+s 4755 2755 6755; do chmod $m f 2>&1 || echo refused $m; done; "
                  "mkdir d && chmod g+s d 2>&1 || echo refused dir; ls -ln f")
        r = self.sbx_cmd(["run", "-q", "-v", vol + ":/v", "--entrypoint", "sh",
                          fixture("probe.tar"), "-c", script])
        self.assertEqual(r.rc, 0, r)
        for m in ("u+s", "g+s", "4755", "2755", "6755", "dir"):
            self.assertIn("refused " + m, r.out)
        self.assertIn("Operation not permitted", r.out)
        self.assertTrue(r.out.splitlines()[-1].startswith("-rwxr-xr-x "), r.out)
        self.assertNoSetid(vol)

    def test_default_no_fd_but_stdio(self):
        r = self.probe(args=["fds"])
        self.assertEqual(sorted(int(fd) for fd in r["fd"]), [0, 1, 2], r["fd"])
        self.assertEqual(r["fdcount"], "0")

    def test_no_fd_of_the_caller_leaks_in(self):
        """A descriptor sbx inherits (CVE-2024-21626 style) does not reach the program."""
        path = os.path.join(self.tmp, "secret")
        with open(path, "w") as f:
            f.write("secret\n")
        fd = os.open(path, os.O_RDONLY)
        dfd = os.open(self.tmp, os.O_RDONLY | os.O_DIRECTORY)
        try:
            p = self.popen(["run", "-q", fixture("probe.tar"), "fds"], pass_fds=(fd, dfd),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
        finally:
            os.close(fd)
            os.close(dfd)
        self.assertEqual(p.returncode, 0, err)
        r = parse_report(out.decode())
        self.assertEqual(sorted(int(n) for n in r["fd"]), [0, 1, 2], r["fd"])
        for target in r["fd"].values():
            self.assertNotIn(self.tmp, target)

    def test_default_sees_only_its_own_pids(self):
        r = self.probe(args=["pids"])
        self.assertEqual(r["pids"], "1 2")
        self.assertEqual(r["self"], "2")
        self.assertEqual(r["session"], "1")  # setsid: a session of its own

    def test_default_init_is_out_of_reach(self):
        r = self.probe(args=["proc1"])
        self.assertEqual(r["proc1"], {"exe": "EACCES", "exe-open": "EACCES", "root": "EACCES",
                                      "environ": "EACCES", "fd": "EACCES", "cmdline": "sbx-init"})

    def test_cap_sys_ptrace_does_not_reach_init(self):
        r = self.probe("--cap-add", "SYS_PTRACE", args=["caps", "proc1", "syscalls"])
        self.assertEqual(caps(r, "CapEff"), DOCKER_CAPS | 1 << CAP_SYS_PTRACE)
        for what in ("exe", "exe-open", "root", "environ", "fd"):
            self.assertEqual(r["proc1"][what], "EACCES", what)
        self.assertSyscalls(r, {"ptrace(ATTACH,1)": "EPERM", "process_vm_readv(1)": "EPERM"})

    def test_default_masked_paths(self):
        r = self.probe(args=["masked"])
        want = {}
        for p in MASKED_FILES:
            want[p] = "devnull" if host_has(p) else "absent"
        for p in MASKED_DIRS:
            want[p] = "emptydir ro" if host_has(p) else "absent"
        self.assertEqual(r["masked"], want)

    def test_default_read_only_proc_and_sys(self):
        r = self.probe(args=["mounts", "writes"])
        for p in READONLY_PROC:
            if host_has(p):
                self.assertTrue(r["mount"][p].startswith("ro,"), (p, r["mount"][p]))
            else:
                self.assertEqual(r["mount"][p], "absent", p)
        self.assertEqual(r["mount"]["/sys"], "ro,nosuid,nodev,noexec")
        self.assertEqual(r["mount"]["/sys/fs/cgroup"], "ro,nosuid,nodev,noexec")
        self.assertEqual(r["write"]["/sys"], "EROFS")
        # root inside lacks CAP_NET_ADMIN: the kernel's permission check comes
        # first (test_proc_sys_read_only_even_with_net_admin shows the mount)
        self.assertEqual(r["write"]["/proc/sys/net/ipv4/ip_forward"], "EACCES")
        self.assertEqual(r["mount"]["/proc"], "rw,nosuid,nodev,noexec")
        self.assertEqual(r["mount"]["/dev"], "rw,nosuid,noexec")
        self.assertEqual(r["mount"]["/dev/shm"], "rw,nosuid,nodev,noexec")
        self.assertEqual(r["mount"]["/dev/pts"], "rw,nosuid,noexec")
        self.assertTrue(r["mount"]["/"].startswith("rw"), r["mount"]["/"])
        self.assertEqual(r["write"]["/"], "OK")
        self.assertEqual(r["write"]["/tmp"], "OK")
        self.assertEqual(r["write"]["/dev/shm"], "OK")

    def test_proc_sys_read_only_even_with_net_admin(self):
        """With CAP_NET_ADMIN the sandbox's own net sysctls pass the permission
        check: only the read-only mount stops the write."""
        r = self.probe("--cap-add", "NET_ADMIN", args=["caps", "writes"])
        self.assertEqual(caps(r, "CapEff"), DOCKER_CAPS | 1 << CAP_NET_ADMIN)
        self.assertEqual(r["write"]["/proc/sys/net/ipv4/ip_forward"], "EROFS")

    def test_default_dev(self):
        r = self.probe(args=["dev"])
        self.assertEqual(r["dev"], DEV)

    def test_default_no_terminal_to_steal(self):
        r = self.probe("-i", args=["tty"])
        self.assertEqual(r["stdin"], "pipe")
        self.assertEqual(r["tiocsti"], "ENOTTY")
        self.assertEqual(r["ctty"], "ENXIO")  # setsid: no controlling terminal

    def test_tiocsti_on_the_callers_terminal(self):
        """CVE-2017-5226: sbx's stdin is a terminal of the host; pushing a
        character into its input queue must fail, and nothing may arrive there.
        The program holds a pipe instead (issue 9), and has no controlling
        terminal to open as /dev/tty (its own session)."""
        master, slave = pty.openpty()
        try:
            tty.setraw(slave)
            p = self.popen(["run", "-q", "-i", fixture("probe.tar"), "tty"], stdin=slave,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
            r = parse_report(out.decode())
            self.assertEqual(r["stdin"], "pipe")
            self.assertEqual(r["tiocsti"], "ENOTTY")
            self.assertEqual(r["ctty"], "ENXIO")
            fl = fcntl.fcntl(slave, fcntl.F_GETFL)
            fcntl.fcntl(slave, fcntl.F_SETFL, fl | os.O_NONBLOCK)
            with self.assertRaises(BlockingIOError, msg="a character was injected"):
                os.read(slave, 16)
        finally:
            os.close(master)
            os.close(slave)

    def test_default_no_nested_user_namespace(self):
        r = self.probe(args=["tty"])
        self.assertEqual(r["userns"], {"nested": "EPERM"})

    def test_default_environment(self):
        r = self.probe(env={"SBX_PROBE_SECRET": "from the caller"})
        self.assertEqual(sorted(r["env"]), ["HOME", "HOSTNAME", "PATH"])
        self.assertEqual(r["env"]["HOME"], "/root")
        self.assertEqual(r["env"]["PATH"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        self.assertRegex(r["env"]["HOSTNAME"], r"^[0-9a-f]{12}$")

    def test_default_cgroup_namespace(self):
        r = self.probe(args=["cgroup"])
        for entry in r["cgroup"]["self"].split(";"):
            self.assertTrue(entry.endswith(":/"), r["cgroup"]["self"])

    # -- users -------------------------------------------------------------
    def test_non_root_user_has_no_capabilities(self):
        if self.mode == "single":
            self.probe_fails("-u", "1000", contains="not mapped")
            return
        r = self.probe("-u", "1000", args=["ids", "caps", "writes", "syscalls"])
        self.assertEqual(r["id"]["uid"], "1000 1000 1000 1000")
        self.assertEqual(r["id"]["gid"], "1000 1000 1000 1000")
        self.assertEqual(sorted(r["id"]["groups"].split()), ["1000", "50"])  # app is in staff
        self.assertEqual({k: caps(r, k) for k in r["cap"]},
                         {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": DOCKER_CAPS,
                          "CapAmb": 0})
        self.assertEqual(r["nonewprivs"], "1")
        self.assertEqual(r["seccomp"], "2")
        self.assertEqual(r["write"]["/"], "EACCES")
        self.assertEqual(r["write"]["/tmp"], "OK")
        self.assertSyscalls(r, {name: "EPERM" for name in REFUSED})

    def test_non_root_user_by_name_with_cap_add_all(self):
        """docker: capabilities are root's; a user keeps only the bounding set."""
        if self.mode == "single":
            self.probe_fails("-u", "app", "--cap-add", "ALL", contains="not mapped")
            return
        r = self.probe("-u", "app", "--cap-add", "ALL", args=["ids", "caps"])
        self.assertEqual(r["id"]["uid"], "1000 1000 1000 1000")
        self.assertEqual({k: caps(r, k) for k in r["cap"]},
                         {"CapInh": 0, "CapPrm": 0, "CapEff": 0,
                          "CapBnd": (1 << (cap_last() + 1)) - 1, "CapAmb": 0})

    # -- capabilities ------------------------------------------------------
    def test_cap_drop_all(self):
        r = self.probe("--cap-drop", "ALL", args=["caps", "syscalls"])
        self.assertEqual({k: caps(r, k) for k in r["cap"]},
                         {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0})
        self.assertEqual(r["nonewprivs"], "1")
        self.assertEqual(r["seccomp"], "2")
        # chroot is allowed by the filter only with CAP_SYS_CHROOT
        self.assertSyscalls(r, {"chroot": "EPERM", "mount": "EPERM", "socket(AF_INET)": "OK"})

    def test_cap_drop_one_and_add_back(self):
        r = self.probe("--cap-drop", "ALL", "--cap-add", "CAP_CHOWN", "--cap-add", "kill",
                       args=["caps"])
        self.assertEqual(caps(r, "CapEff"), 1 << 0 | 1 << 5)
        self.assertEqual(caps(r, "CapBnd"), 1 << 0 | 1 << 5)
        r = self.probe("--cap-drop", "NET_RAW", "--cap-drop", "SYS_CHROOT", args=["caps", "syscalls"])
        self.assertEqual(caps(r, "CapEff"), DOCKER_CAPS & ~(1 << 13 | 1 << 18))
        self.assertEqual(caps(r, "CapBnd"), DOCKER_CAPS & ~(1 << 13 | 1 << 18))
        self.assertSyscalls(r, {"chroot": "EPERM"})

    def test_cap_add_sys_admin(self):
        """docker semantics: with CAP_SYS_ADMIN the filter lets the mount and
        namespace calls through; the kernel then judges them (the probe's
        arguments make it answer ENOENT/EBADF/EFAULT, never mount anything)."""
        r = self.probe("--cap-add", "SYS_ADMIN", args=["caps", "syscalls"])
        self.assertEqual(caps(r, "CapEff"), DOCKER_CAPS | 1 << CAP_SYS_ADMIN)
        self.assertEqual(caps(r, "CapBnd"), DOCKER_CAPS | 1 << CAP_SYS_ADMIN)
        self.assertSyscalls(r, {
            "mount": "ENOENT", "umount2": "ENOENT",
            "open_tree": "ENOENT", "fsopen": "ENODEV", "setns": "EBADF",
            "sethostname": "EFAULT", "unshare(0)": "OK", "unshare(CLONE_NEWNS)": "OK",
            "unshare(CLONE_NEWUSER)": "OK", "clone(CLONE_NEWNS)": "OK", "clone3": "EINVAL",
        })
        # what CAP_SYS_ADMIN does not open (Docker's profile has no rule
        # for pivot_root: refused whatever the capabilities)
        self.assertSyscalls(r, {name: "EPERM" for name in [
            "pivot_root", "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "kexec_load",
            "init_module", "open_by_handle_at", "reboot", "swapon", "settimeofday",
            "clock_settime", "acct", "socket(AF_ALG)", "socket(AF_VSOCK)",
            "personality(READ_IMPLIES_EXEC)"]})

    def test_cap_add_sys_admin_mounts_inside_only(self):
        r = self.run_ok(fixture("probe.tar"), "-c",
                        "mount -t tmpfs sbxprobe /tmp && grep '^sbxprobe /tmp ' /proc/mounts",
                        opts=["--cap-add", "SYS_ADMIN", "--entrypoint", "sh"])
        self.assertTrue(r.out.startswith("sbxprobe /tmp tmpfs rw"), r)
        r = self.sbx_cmd(["run", "-q", "--entrypoint", "sh", fixture("probe.tar"), "-c",
                          "mount -t tmpfs sbxprobe /tmp"])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("permission denied", r.err)  # busybox's words for EPERM

    def test_cap_add_all(self):
        r = self.probe("--cap-add", "ALL", args=["caps", "syscalls", "proc1"])
        every = (1 << (cap_last() + 1)) - 1
        self.assertEqual({k: caps(r, k) for k in r["cap"]},
                         {"CapInh": 0, "CapPrm": every, "CapEff": every, "CapBnd": every,
                          "CapAmb": 0})
        # no capability opens what the filter refuses for everyone
        self.assertSyscalls(r, {name: "EPERM" for name in [
            "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup",
            "socket(AF_ALG)", "socket(AF_VSOCK)", "personality(READ_IMPLIES_EXEC)"]})
        self.assertSyscalls(r, {"reboot": "EINVAL"})  # the filter lets it through: bad magic
        self.assertEqual(r["proc1"]["exe"], "EACCES")

    def test_cap_errors(self):
        self.probe_fails("--cap-add", "NOT_A_CAP", contains="unknown capability 'NOT_A_CAP'")
        self.probe_fails("--cap-drop", "CAP_", contains="unknown capability")

    # -- seccomp -------------------------------------------------------------
    def test_unconfined(self):
        r = self.sbx_cmd(["run", "-q", "--security-opt", "seccomp=unconfined",
                          fixture("probe.tar"), "caps", "syscalls"])
        self.assertEqual(r.rc, 0, r)
        warnings = [l for l in r.err.splitlines() if "unconfined" in l]
        self.assertEqual(len(warnings), 1, r)
        self.assertTrue(warnings[0].startswith("sbx: warning: "), r)
        rep = parse_report(r.out)
        self.assertEqual(rep["seccomp"], "0")
        self.assertEqual(rep["seccomp_filters"], "0")
        self.assertEqual(rep["nonewprivs"], "1")
        self.assertEqual(caps(rep, "CapEff"), DOCKER_CAPS)
        # the kernel's own answers: what the default filter's EPERM hides
        self.assertSyscalls(rep, KERNEL_ANSWERS)
        self.assertSyscalls(rep, KERNEL_REFUSED)

    def test_custom_profile(self):
        prof = self.write_profile("profile.json", {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["unshare"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["setns"], "action": "SCMP_ACT_TRAP"},
            ]})
        r = self.probe("--security-opt", "seccomp=" + prof, args=["caps", "syscalls"])
        self.assertEqual(r["seccomp"], "2")
        want = {"sethostname": "EACCES", "unshare(0)": "SIGSYS",
                "unshare(CLONE_NEWUSER)": "SIGSYS", "setns": "SIGSYS", "mkdirat": "OK",
                # nothing of the default profile is left
                "mount": "ENOENT", "keyctl": "EOPNOTSUPP", "clone3": "EINVAL",
                "personality(READ_IMPLIES_EXEC)": "OK"}
        if X86_64:
            want["mkdir"] = "EPERM"
        self.assertSyscalls(r, want)
        if X86_64:  # busybox's mkdir calls mkdir(2) there
            r = self.sbx_cmd(["run", "-q", "--security-opt", "seccomp=" + prof, "--entrypoint",
                              "mkdir", fixture("probe.tar"), "/tmp/x"])
            self.assertEqual(r.rc, 1, r)
            self.assertIn("Operation not permitted", r.err)
        self.run_ok(fixture("probe.tar"), "/tmp/y",
                    opts=["--security-opt", "seccomp=" + prof, "--entrypoint", "touch"])

    def test_profile_rules_by_capability_and_arch(self):
        prof = self.write_profile("caps.json", {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "includes": {"arches": ["s390x"]}},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "includes": {"minKernel": "999.0"}},
            ]})
        r = self.probe("--security-opt", "seccomp=" + prof, args=["syscalls"])
        want = {"mkdirat": "EPERM", "chroot": "ENOENT", "getpid": "OK"}
        if X86_64:
            want["mkdir"] = "OK"
        self.assertSyscalls(r, want)
        r = self.probe("--security-opt", "seccomp=" + prof, "--cap-add", "SYS_ADMIN",
                       args=["syscalls"])
        want = {"mkdirat": "OK", "chroot": "ENOENT", "getpid": "OK"}
        if X86_64:
            want["mkdir"] = "EPERM"
        self.assertSyscalls(r, want)

    def test_profile_errors(self):
        bad = self.write_profile("bad.json", '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [')
        self.probe_fails("--security-opt", "seccomp=" + bad, contains="seccomp profile")
        missing = os.path.join(self.tmp, "missing.json")
        self.probe_fails("--security-opt", "seccomp=" + missing, contains="missing.json")
        action = self.write_profile("action.json", {"defaultAction": "SCMP_ACT_BOGUS"})
        self.probe_fails("--security-opt", "seccomp=" + action, contains="SCMP_ACT_BOGUS")
        index = self.write_profile("index.json", {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]})
        self.probe_fails("--security-opt", "seccomp=" + index, contains="argument index")
        array = self.write_profile("array.json", "[]")
        self.probe_fails("--security-opt", "seccomp=" + array, contains="seccomp profile")

    def test_profile_rules_libseccomp_would_drop_are_refused(self):
        # Two socket rules comparing the family, with different answers:
        # libseccomp cannot tell them apart on i386 (socketcall) and keeps
        # the first alone, on every architecture. sbx used to go on without
        # the second, which let AF_ALG through on x86_64.
        rules = [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                  "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]},
                 {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                  "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]}]
        both = self.write_profile("both.json", {"defaultAction": "SCMP_ACT_ALLOW",
                                                "syscalls": rules})
        if I386_RUNS:
            self.probe_fails("--security-opt", "seccomp=" + both,
                             contains="a rule for socket conflicts with an earlier one")
        else:  # no i386 in the filter: no socketcall, no conflict, both rules kept
            r = self.probe("--security-opt", "seccomp=" + both, args=["syscalls"])
            self.assertSyscalls(r, {"socket(AF_VSOCK)": "EPERM", "socket(AF_ALG)": "EACCES"})
        # Overlapping LT (or NE) comparisons with different answers, which
        # libseccomp up to 2.6.1 compiles with the earlier rule's answer
        # where both match (upstream 5404f5c): ambiguous, refused.
        lt = [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": e,
               "args": [{"index": 0, "value": v, "op": "SCMP_CMP_LT"}]}
              for e, v in ((1, 2 ** 32 + 0x100), (13, 2 ** 32 + 0x10))]
        lt = self.write_profile("lt.json", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": lt})
        self.probe_fails("--security-opt", "seccomp=" + lt,
                         contains="rules for personality compare argument 0 with overlapping")
        # The same rule twice is no conflict.
        twice = self.write_profile("twice.json", {"defaultAction": "SCMP_ACT_ALLOW",
                                                  "syscalls": [rules[0], rules[0]]})
        self.probe("--security-opt", "seccomp=" + twice, args=["caps"])  # runs (rc 0)

    def test_security_opt_errors(self):
        self.probe_fails("--security-opt", "apparmor=unconfined",
                         contains="--security-opt apparmor=unconfined: not supported")
        self.probe_fails("--security-opt", "label=disable",
                         contains="--security-opt label=disable: not supported")
        r = self.probe("--security-opt", "no-new-privileges", args=["caps"])
        self.assertEqual(r["nonewprivs"], "1")

    # -- file systems --------------------------------------------------------
    def test_read_only_root(self):
        r = self.probe("--read-only", "--tmpfs", "/scratch", args=["mounts", "writes"])
        self.assertTrue(r["mount"]["/"].startswith("ro"), r["mount"]["/"])
        for p in ("/", "/tmp", "/etc"):
            self.assertEqual(r["write"][p], "EROFS", p)
        self.assertEqual(r["mount"]["/scratch"], "rw,nosuid,nodev")
        self.assertEqual(r["write"]["/scratch"], "OK")
        self.assertEqual(r["write"]["/dev/shm"], "OK")
        r = self.probe("--read-only", "--tmpfs", "/tmp:size=1m,mode=1777", args=["writes"])
        self.assertEqual(r["write"]["/"], "EROFS")
        self.assertEqual(r["write"]["/tmp"], "OK")
        self.assertEqual(r["write"]["/scratch"], "absent")

    def test_tmpfs_without_read_only(self):
        r = self.probe("--tmpfs", "/scratch", args=["mounts", "writes"])
        self.assertTrue(r["mount"]["/"].startswith("rw"))
        self.assertEqual(r["write"]["/scratch"], "OK")
        self.assertEqual(r["mount"]["/scratch"], "rw,nosuid,nodev")

    def test_tmpfs_errors(self):
        self.probe_fails("--tmpfs", "scratch", contains="--tmpfs scratch: the path must be absolute")
        self.probe_fails("--tmpfs", "/scratch:exec", contains="option 'exec' not supported")

    # -- limits --------------------------------------------------------------
    def test_ulimit(self):
        r = self.probe("--ulimit", "nofile=64:128", "--ulimit", "core=0", args=["rlimits"])
        self.assertEqual(r["rlimit"]["NOFILE"], "64 128")
        self.assertEqual(r["rlimit"]["CORE"], "0 0")
        r = self.probe("--ulimit", "nproc=100", args=["rlimits"])
        self.assertEqual(r["rlimit"]["NPROC"], "100 100")

    def test_ulimit_errors(self):
        self.probe_fails("--ulimit", "nofile=128:64", contains="soft limit above hard limit")
        self.probe_fails("--ulimit", "bogus=1", contains="unknown limit 'bogus'")
        self.probe_fails("--ulimit", "nofile=many", contains="not a number")
        self.probe_fails("--ulimit", "nofile", contains="NAME=SOFT[:HARD]")
        # above what the kernel lets anyone set (fs.nr_open): refused inside
        self.probe_fails("--ulimit", "nofile=2000000000:2000000000",
                         contains="--ulimit: Operation not permitted")

    def cgroup_undelegated(self, controller):
        """Why src/sandbox/cgroup.c would find no cgroup v2 subtree delegated
        to the user sbx runs as with `controller` (its checks, made here), or
        None when it would find one."""
        top = None
        with open("/proc/self/mounts") as f:
            for l in f:
                fields = l.split()
                if fields[1] == "/sys/fs/cgroup":
                    top = fields[2]
        if top != "cgroup2":
            return "/sys/fs/cgroup is %s, not cgroup2" % top
        own = None
        with open("/proc/self/cgroup") as f:
            for l in f:
                if l.startswith("0::"):
                    own = l[3:].strip()
        if own is None:
            return "no cgroup v2 line in /proc/self/cgroup"
        d = "/sys/fs/cgroup" + own
        r = self.run_as(["sh", "-c", 'test -w "$1" && test -w "$1/cgroup.procs"', "sh", d])
        if r.rc != 0:
            return "%s is not writable by the test user" % d
        try:
            with open(os.path.join(d, "cgroup.controllers")) as f:
                if controller not in f.read().split():
                    return "no %s controller in %s" % (controller, d)
        except OSError as e:
            return str(e)
        return None

    def check_cgroup_limit(self, controller, opts, args, check):
        """Enforced, or SKIP saying why: never OK without a limit in force
        (the refusal itself is test_limits_refused_without_delegation)."""
        why = self.cgroup_undelegated(controller)
        if why:
            self.skipTest("no delegated cgroup v2: %s" % why)
        check(self.probe(*opts, args=args))

    def test_limits_refused_without_delegation(self):
        """Without delegation, --memory and --cpus are refused with a reason,
        never silently ignored. (--pids-limit is left out: it may fall back
        to RLIMIT_NPROC, which its own test covers.)"""
        for controller, opts in (("memory", ["--memory", "64m"]), ("cpu", ["--cpus", "1"])):
            with self.subTest(controller=controller):
                why = self.cgroup_undelegated(controller)
                if not why:
                    self.skipTest("a delegated cgroup v2 with %s: nothing is refused" % controller)
                self.probe_fails(*opts, contains="resource limits: ")

    def test_pids_limit(self):
        # A pids cgroup where one is delegated, else RLIMIT_NPROC inside the
        # sandbox's user namespace (tests/cli/test_limits.py): held either way.
        r = self.probe("--pids-limit", "10", args=["forklimit"])
        n, err = r["forklimit"].split()
        self.assertLessEqual(int(n), 8)  # init and the probe count too
        self.assertEqual(err, "EAGAIN")

    def test_memory_limit(self):
        def check(r):
            self.assertEqual(r["memtouch"], {"256": "SIGKILL"})
        self.check_cgroup_limit("memory", ["--memory", "64m"], ["memtouch=256"], check)

    def test_cpus_limit(self):
        def check(r):
            self.assertEqual(r["cgroup"]["cpu.max"], "100000 100000")
        self.check_cgroup_limit("cpu", ["--cpus", "1"], ["cgroup"], check)

    def test_user_quotas_bounded(self):
        """Inotify instances and message queue bytes are counted per user up
        to the host: one sandbox takes at most a quarter of the user's (it
        took all of them, and the user's other programs got EMFILE)."""
        with open("/proc/sys/fs/inotify/max_user_instances") as f:
            instances = int(f.read())
        r = self.probe(args=["userquotas"])
        n, err = r["userquota"]["inotify"].split()
        self.assertEqual(err, "EMFILE", r)
        self.assertGreater(int(n), 0)
        self.assertLessEqual(int(n), instances // 4)
        q, err = r["userquota"]["mqueue"].split()
        self.assertEqual(err, "EMFILE", r)
        # Each queue is charged 8 x 8 KiB and more; the limit is 819200 bytes here.
        msgqueue = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[0]
        self.assertLessEqual(int(q), msgqueue // 4 // (8 * 8192))

    def test_no_limit_no_cgroup_needed(self):
        r = self.probe(args=["forklimit"])
        self.assertEqual(r["forklimit"], "64 OK")

    def test_limit_errors(self):
        self.probe_fails("--pids-limit", "-2", contains="--pids-limit")
        self.probe_fails("--pids-limit", "many", contains="--pids-limit")
        self.probe_fails("--memory", "12x", contains="--memory")
        self.probe_fails("--memory", "0", contains="--memory")
        self.probe_fails("--cpus", "0", contains="--cpus")
        self.probe_fails("--cpus", "many", contains="--cpus")

    def user_uid(self):
        pw = self.user_for(self.mode)
        return pw.pw_uid if pw else os.getuid()


class TestSecurityRange(SecurityTests, SbxTestCase):
    mode = "range"


class TestSecuritySingle(SecurityTests, SbxTestCase):
    mode = "single"



class TestSeccompLimits(SbxTestCase):
    """Found by tests/fuzz/fuzz_seccomp: a profile compiling to more BPF than
    the kernel loads (4096 instructions) was cached and failed at every run
    with a bare EINVAL (and its count would not fit install's 16 bits)."""

    mode = "single"

    def test_filter_too_large(self):
        rules = [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]} for i in range(4200)]
        prof = SecurityTests.write_profile(self, "big.json",
                                           {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules})
        SecurityTests.probe_fails(self, "--security-opt", "seccomp=" + prof,
                                  contains="more than the kernel's 4096")


class TestCompiledFilter(SbxTestCase):
    """The default filter as sbx-store compiles it, run instruction by
    instruction (bpfeval.py): on a kernel without x32 the kernel's own answer
    to an x32 call is ENOSYS whether or not the filter refuses it, so only
    the program itself tells."""

    mode = "single"

    @unittest.skipUnless(X86_64, "the i386 and x32 ABIs are x86_64's")
    def test_other_abis_refused_by_the_filter_itself(self):
        import bpfeval as b
        path = os.path.join(self.user_dir("bpf"), "default.bpf")
        store = os.path.join(os.path.dirname(self.sbx), "sbx-store")
        r = self.run_as([store, "seccomp-compile", "--caps", "%x" % DOCKER_CAPS, "--out", path])
        self.assertEqual(r.rc, 0, r)
        progs = b.load(path)
        x86_64, i386 = b.AUDIT_ARCH_X86_64, b.AUDIT_ARCH_I386
        eperm, enosys = b.errno(1), b.errno(38)
        x32 = X32_REFUSED == "EPERM"  # the kernel runs x32: its rules are in the filter
        cases = {
            "getpid": (39, x86_64, b.ALLOW), "mount": (165, x86_64, eperm),
            "unshare": (272, x86_64, eperm),
            # without i386 in the filter: the bad-architecture action
            "i386 getpid": (20, i386, b.ALLOW if I386_RUNS else enosys if not x32 else None),
            "i386 mount": (21, i386, eperm if I386_RUNS else enosys if not x32 else None),
            "i386 unshare": (310, i386, eperm if I386_RUNS else enosys if not x32 else None),
            "x32 getpid": (b.X32_BIT | 39, x86_64, b.ALLOW if x32 else enosys),
            "x32 mount": (b.X32_BIT | 165, x86_64, eperm if x32 else enosys),
            "x32 unshare": (b.X32_BIT | 272, x86_64, eperm if x32 else enosys),
            "x32 execve": (b.X32_BIT | 520, x86_64, b.ALLOW if x32 else enosys),
            "aarch64 getpid": (172, b.AUDIT_ARCH_AARCH64, enosys if not x32 else None),
        }
        for name, (nr, arch, want) in cases.items():
            got = b.run_all(progs, nr, arch)
            if want is None:  # libseccomp's own bad-architecture action
                self.assertNotEqual(got & 0xFFFF0000, b.ALLOW, name)
            else:
                self.assertEqual(hex(got), hex(want), name)
        # the second program: socket families, on the low 32 bits
        self.assertEqual(hex(b.run_all(progs, 41, x86_64, (38, 5, 0))), hex(eperm))
        self.assertEqual(hex(b.run_all(progs, 41, x86_64, (38 | 1 << 32, 5, 0))), hex(eperm))
        self.assertEqual(hex(b.run_all(progs, 41, x86_64, (2, 1, 0))), hex(b.ALLOW))

    @unittest.skipUnless(X86_64, "x86_64's call numbers")
    def test_default_filter_allows_every_step_after_it(self):
        """With the built-in profile the program's process loads the filter
        first, while init mounts (process.c, prefork_main), and only then
        drops capabilities, changes ids and so on: each of those calls, with
        the arguments sbx_process_exec gives it, must be one the default
        filter allows, or every run would fail (or a step be skipped)."""
        import bpfeval as b
        path = os.path.join(self.user_dir("bpf"), "default.bpf")
        store = os.path.join(os.path.dirname(self.sbx), "sbx-store")
        r = self.run_as([store, "seccomp-compile", "--caps", "%x" % DOCKER_CAPS, "--out", path])
        self.assertEqual(r.rc, 0, r)
        progs = b.load(path)
        pr_set_dumpable, pr_set_keepcaps, pr_capbset_read, pr_capbset_drop = 4, 8, 23, 24
        pr_set_no_new_privs, pr_cap_ambient, pr_cap_ambient_clear_all = 38, 47, 4
        o_rdonly_cloexec, tiocsctty = 0o2000000, 0x540E
        calls = {
            "prctl(PR_CAPBSET_READ)": (157, (pr_capbset_read, 21)),
            "prctl(PR_CAPBSET_DROP)": (157, (pr_capbset_drop, 21)),
            "prctl(PR_CAP_AMBIENT)": (157, (pr_cap_ambient, pr_cap_ambient_clear_all)),
            "prctl(PR_SET_DUMPABLE)": (157, (pr_set_dumpable, 0)),
            "prctl(PR_SET_KEEPCAPS)": (157, (pr_set_keepcaps, 1)),
            "prctl(PR_SET_NO_NEW_PRIVS)": (157, (pr_set_no_new_privs, 1)),
            "capget": (125, ()), "capset": (126, ()), "setgroups": (116, (1, 0)),
            "setresgid": (119, (0, 0, 0)), "setresuid": (117, (0, 0, 0)),
            "setsid": (112, ()), "ioctl(TIOCSCTTY)": (16, (0, tiocsctty, 0)),
            "fchown": (93, (3, 1000, 0xFFFFFFFF)),  # -t: the slave given to the user
            "openat": (257, (-100, 0, o_rdonly_cloexec)), "dup2": (33, (3, 0)),
            "dup3": (292, (3, 0, 0)), "close": (3, (3,)), "chdir": (80, ()),
            "getcwd": (79, ()), "prlimit64": (302, (0, 7, 0, 0)), "setrlimit": (160, (7, 0)),
            "umask": (95, (0o22,)), "rt_sigaction": (13, (2, 0, 0, 8)),
            "rt_sigprocmask": (14, (2, 0, 0, 8)), "close_range": (436, (3, 0xFFFFFFFF, 0)),
            "read": (0, (3, 0, 4096)), "write": (1, (2, 0, 10)), "newfstatat": (262, ()),
            "faccessat2": (439, ()), "access": (21, ()), "futex": (202, ()),
            "seccomp(SET_MODE_FILTER)": (317, (1, 8, 0)), "sendmsg": (46, (3, 0, 0)),
            "execve": (59, ()), "execveat": (322, ()), "exit_group": (231, (125,)),
        }
        for name, (nr, args) in calls.items():
            self.assertEqual(hex(b.run_all(progs, nr, b.AUDIT_ARCH_X86_64, args)), hex(b.ALLOW),
                             name)
        # the control: what the filter is for
        self.assertNotEqual(hex(b.run_all(progs, 165, b.AUDIT_ARCH_X86_64)), hex(b.ALLOW))

    @unittest.skipUnless(X86_64, "the i386 ABI is x86_64's")
    def test_i386_socketcall_refused_wherever_the_profile_takes_i386(self):
        """A profile naming SCMP_ARCH_X86 takes i386 calls whatever this
        kernel was found to run; its socket rule by family must then be no
        way through socketcall: the second program is built from the
        profile's architectures, not from the kernel's (it was left out on a
        kernel without i386, and libseccomp let socketcall(SYS_SOCKET) by)."""
        import bpfeval as b
        d = self.user_dir("bpf")
        profile = os.path.join(d, "arches.json")
        with open(profile, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                       "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                       "syscalls": [{"names": ["socketcall", "getpid"], "action": "SCMP_ACT_ALLOW"},
                                    {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}, f)
        os.chmod(profile, 0o644)
        path = os.path.join(d, "arches.bpf")
        store = os.path.join(os.path.dirname(self.sbx), "sbx-store")
        r = self.run_as([store, "seccomp-compile", "--caps", "%x" % DOCKER_CAPS,
                         "--profile", profile, "--out", path])
        self.assertEqual(r.rc, 0, r)
        progs = b.load(path)
        i386 = b.AUDIT_ARCH_I386
        self.assertEqual(hex(b.run_all(progs, 20, i386)), hex(b.ALLOW))  # i386 getpid
        # socketcall(SYS_SOCKET, args in memory): refused, whatever the family
        self.assertNotEqual(b.run_all(progs, 102, i386, (1, 0)) & 0xFFFF0000, b.ALLOW)
        # socket(AF_UNIX) itself, where the family is seen: allowed
        self.assertEqual(hex(b.run_all(progs, 41, b.AUDIT_ARCH_X86_64, (1, 1, 0))), hex(b.ALLOW))


class TestFilterCache(SbxTestCase):
    """The compiled filter is cached in the store (seccomp/<key>.bpf), and
    the key changes with the boot, sbx's version and `sbx prune`: a store
    that cannot take the file (full, over quota, read-only) must not stop a
    run."""

    mode = "single"

    def test_full_store_runs_with_the_filter_uncached(self):
        """On a full store every run of a stored image failed (125, `write
        <key>.bpf: No space left on device`): the filter only reached sbx
        through the cache file. It comes back from the compile step itself,
        is installed, and the debug log says the cache was not written."""
        script = r"""
set -u
d=$(mktemp -d) err=$(mktemp)  # err: not on the full disk
mount -t tmpfs -o size=8m tmpfs "$d" || exit 90
"$SBX" load -q --userns single --root "$d/store" "$IMG" >/dev/null || exit 91
rm -rf "$d/store/seccomp"
dd if=/dev/zero of="$d/fill" bs=4k 2>/dev/null
for i in 1 2; do
  "$SBX" run -q --log-level debug --userns single --root "$d/store" "$IMG" \
    sh -c 'grep ^Seccomp: /proc/self/status' 2>"$err"; echo "rc=$?"
  cat "$err"
done
echo "cached: $(ls -A "$d/store/seccomp" | tr '\n' ' ')"
rm "$d/fill"
"$SBX" run -q --userns single --root "$d/store" "$IMG" true; echo "freed=$?"
echo "cached: $(ls -A "$d/store/seccomp" | tr '\n' ' ')"
rm -rf "$d/store/seccomp"
mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" || exit 92
"$SBX" run -q --log-level debug --userns single --root "$d/store" "$IMG" true 2>"$err"
echo "readonly=$?"
cat "$err"
rm -f "$err"
"""
        r = self.run_as(["unshare", "-Urm", "sh", "-c", script],
                        env={"SBX": self.sbx, "IMG": fixture("busybox-legacy.tar")})
        if r.rc == 90 or "rc=" not in r.out:
            self.skipTest("cannot mount a small tmpfs here: %r" % r)
        runs = r.out.split("rc=")[1:]
        self.assertEqual(len(runs), 2, r)
        for run in runs:
            self.assertTrue(run.startswith("0\n"), r)  # both: nothing was cached
            self.assertNotIn("sbx: write", run, r)
            self.assertIn("not written (No space left on device)", run, r)
        self.assertIn("Seccomp:\t2\n", r.out)  # the filter is on
        cached = [l for l in r.out.splitlines() if l.startswith("cached:")]
        self.assertEqual(cached[0].split()[1:], [], r)  # no half-written file either
        self.assertIn("freed=0", r.out)
        after = cached[1].split()[1:]  # with room again the fast path caches it
        self.assertEqual(len(after), 1, r)
        self.assertRegex(after[0], r"^[0-9a-f]{32}\.bpf$")
        if r.rc != 92:  # a read-only store: not even seccomp/ can be made
            self.assertIn("readonly=0", r.out)
            self.assertIn("/store/seccomp: Read-only file system", r.out)


if __name__ == "__main__":
    unittest.main()
