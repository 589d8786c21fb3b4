"""Docker's deny-by-default profile shape (defaultAction SCMP_ACT_ERRNO, an
allowlist, argument rules with SCMP_CMP_MASKED_EQ, rules by capability,
archMap), loaded through --security-opt seccomp=: the probe must report
exactly what it reports under the built-in default — native, i386 and x32
rows — with Docker's default capabilities and with CAP_SYS_ADMIN added.

The profile is generated here, not copied from moby: every syscall name of
this machine's headers is allowed except those the probe's expectations
(test_security.REFUSED) and Docker's capability rules hold back.
"""
import json
import os
import platform
import re
import unittest

from sbxtest import SbxTestCase, fixture
from test_security import REFUSED, parse_report

X86_64 = platform.machine() == "x86_64"
CLONE_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
AF_ALG, AF_VSOCK = 38, 40

# Docker's default profile allows these only with the capability named.
BY_CAP = {
    "CAP_SYS_ADMIN": ["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                      "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
                      "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
                      "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
                      "unshare"],
    "CAP_SYS_CHROOT": ["chroot"], "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_MODULE": ["delete_module", "init_module", "finit_module"],
    "CAP_SYS_PACCT": ["acct"], "CAP_SYS_PTRACE": ["kcmp", "pidfd_getfd", "process_madvise"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_settime64"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYS_NICE": ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    "CAP_SYSLOG": ["syslog"], "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
}
# Never allowed, whatever the capabilities (Docker's default leaves them out).
NEVER = {"keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
         "io_uring_register", "kexec_load", "kexec_file_load", "swapon", "swapoff",
         "clock_adjtime", "pivot_root", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
         "vm86", "vm86old", "create_module", "get_kernel_syms", "query_module", "afs_syscall",
         "tuxcall", "security", "putpmsg", "getpmsg", "vserver", "personality", "socket",
         "socketcall", "adjtimex"}


def syscall_names():
    names = set()
    for h in ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
              "/usr/include/x86_64-linux-gnu/asm/unistd_32.h"):
        with open(h) as f:
            names |= set(re.findall(r"^#define __NR_(\w+)\s+\d+", f.read(), re.M))
    return names


def deny_by_default_profile():
    held = set(NEVER) | {n for calls in BY_CAP.values() for n in calls}
    held |= {re.sub(r"\(.*", "", n) for n in REFUSED}
    allow = sorted(syscall_names() - held)
    rules = [{"names": allow, "action": "SCMP_ACT_ALLOW"}]
    # personality: only these personas, compared on the low 32 bits
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xffffffff):
        rules.append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0xffffffff, "valueTwo": persona,
                                "op": "SCMP_CMP_MASKED_EQ"}]})
    # socket: every family but AF_ALG and AF_VSOCK, on the low 32 bits
    for family in range(46):
        if family not in (AF_ALG, AF_VSOCK):
            rules.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 0xffffffff, "valueTwo": family,
                                    "op": "SCMP_CMP_MASKED_EQ"}]})
    # clone without namespace flags, clone3 answering ENOSYS (libc falls back)
    rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0,
                            "op": "SCMP_CMP_MASKED_EQ"}],
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    for cap, calls in BY_CAP.items():
        rules.append({"names": calls, "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                         "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": rules}


class TestDenyByDefaultProfile(SbxTestCase):
    mode = "single"

    def setUp(self):
        super().setUp()
        if not X86_64:
            self.skipTest("the generated profile reads x86_64's syscall headers")
        self.profile = os.path.join(self.tmp, "default-shape.json")
        with open(self.profile, "w") as f:
            json.dump(deny_by_default_profile(), f)
        os.chmod(self.profile, 0o644)

    def syscalls(self, *opts):
        r = self.sbx_cmd(["run", "-q"] + list(opts) + [fixture("probe.tar"), "syscalls"])
        self.assertEqual(r.rc, 0, r)
        rows = parse_report(r.out)["syscall"]
        # Another change refuses chmod/fchmod/fchmodat with S_ISUID in the
        # BUILT-IN filter only; a profile says what it says. Those rows are
        # not part of this comparison.
        return {k: v for k, v in rows.items() if "chmod" not in k}

    @staticmethod
    def without_socketcall(rows):
        return {k: v for k, v in rows.items() if not k.startswith("i386:socketcall")}

    def test_same_answers_as_the_builtin_default(self):
        builtin = self.syscalls()
        custom = self.syscalls("--security-opt", "seccomp=" + self.profile)
        self.assertTrue(any(k.startswith("i386:") for k in builtin), builtin)
        self.assertEqual(self.without_socketcall(custom), self.without_socketcall(builtin))

    def test_same_answers_with_cap_sys_admin(self):
        """includes/excludes caps: with CAP_SYS_ADMIN, clone takes any flags
        and the mount family is the kernel's to refuse, in both."""
        builtin = self.syscalls("--cap-add", "SYS_ADMIN")
        custom = self.syscalls("--cap-add", "SYS_ADMIN", "--security-opt",
                               "seccomp=" + self.profile)
        self.assertNotEqual(builtin["mount"], "EPERM", builtin)
        self.assertEqual(self.without_socketcall(custom), self.without_socketcall(builtin))

    def test_i386_socketcall_families(self):
        """i386's socketcall(SYS_SOCKET, args) passes the family in memory,
        where seccomp cannot look. The built-in default refuses
        socketcall(SYS_SOCKET) outright (i386 glibc uses socket(2) directly);
        a profile whose socket rules compare the family would make libseccomp
        allow socketcall(SYS_SOCKET) whatever the family (AF_VSOCK too): sbx
        adds the same refusal to the profile (seccomp-compile.c,
        socketcall_filter). socketpair and shutdown through socketcall pass,
        as the profile allows them without conditions."""
        builtin = self.syscalls()
        custom = self.syscalls("--security-opt", "seccomp=" + self.profile)
        rows = [k for k in builtin if k.startswith("i386:socketcall")]
        self.assertEqual(len(rows), 5, builtin)
        self.assertEqual({k: custom[k] for k in rows}, {k: builtin[k] for k in rows})

    def test_masked_eq_is_what_refuses(self):
        """The control: the profile's argument rules carry the refusals —
        without them, socket(AF_ALG) and personality(READ_IMPLIES_EXEC) pass."""
        profile = deny_by_default_profile()
        for rule in profile["syscalls"]:
            if rule.get("names") in (["socket"], ["personality"]):
                rule.pop("args")
        path = os.path.join(self.tmp, "no-args.json")
        with open(path, "w") as f:
            json.dump(profile, f)
        os.chmod(path, 0o644)
        rows = self.syscalls("--security-opt", "seccomp=" + path)
        # (no filter in the way: the kernel's own answer for this family)
        self.assertIn(rows["socket(AF_ALG)"], ("OK", "EAFNOSUPPORT"), rows)
        self.assertNotEqual(rows["socket(AF_VSOCK)"], "EPERM", rows)
        self.assertEqual(rows["personality(READ_IMPLIES_EXEC)"], "OK", rows)


def allow_all_profile(without=(), errno_ret=1):
    """Deny by default (errnoRet errno_ret), every syscall name allowed but
    `without`; socketcall itself allowed."""
    allow = sorted(syscall_names() - set(without))
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno_ret,
            "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]}


class TestSocketcallInProfiles(SbxTestCase):
    """i386's socketcall must not be a way around what a profile says of
    socket and socketpair, whatever else the profile allows."""
    mode = "single"

    def setUp(self):
        super().setUp()
        if not X86_64:
            self.skipTest("the i386 ABI is x86_64's")

    def rows(self, profile):
        path = os.path.join(self.tmp, "profile.json")
        with open(path, "w") as f:
            json.dump(profile, f)
        os.chmod(path, 0o644)
        r = self.sbx_cmd(["run", "-q", "--security-opt", "seccomp=" + path,
                          fixture("probe.tar"), "syscalls"])
        self.assertEqual(r.rc, 0, r)
        rows = parse_report(r.out)["syscall"]
        if rows["i386:getpid"] != "OK":
            self.skipTest("no i386 emulation in this kernel (%s)" % rows["i386:getpid"])
        return rows

    def test_socket_refused_socketcall_allowed(self):
        """socket left to the default action (EACCES here), socketcall
        allowed, socketpair allowed only for AF_UNIX: socketcall(SYS_SOCKET)
        and socketcall(SYS_SOCKETPAIR) answer the profile's default errno;
        the direct calls are the profile's; shutdown through socketcall is
        left as the profile says (allowed: the kernel's EBADF)."""
        profile = allow_all_profile(without={"socket", "socketpair"}, errno_ret=13)
        profile["syscalls"].append(
            {"names": ["socketpair"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xffffffff, "valueTwo": 1,
                       "op": "SCMP_CMP_MASKED_EQ"}]})
        rows = self.rows(profile)
        self.assertEqual({k: rows[k] for k in (
            "i386:socket(AF_INET)", "i386:socketcall(SOCKET,AF_INET)",
            "i386:socketcall(SOCKET,AF_VSOCK)", "i386:socketpair(AF_UNIX)",
            "i386:socketcall(SOCKETPAIR,AF_UNIX)", "i386:socketcall(SHUTDOWN,-1)",
            "socket(AF_INET)")},
            {"i386:socket(AF_INET)": "EACCES", "i386:socketcall(SOCKET,AF_INET)": "EACCES",
             "i386:socketcall(SOCKET,AF_VSOCK)": "EACCES", "i386:socketpair(AF_UNIX)": "OK",
             "i386:socketcall(SOCKETPAIR,AF_UNIX)": "EACCES",
             "i386:socketcall(SHUTDOWN,-1)": "EBADF", "socket(AF_INET)": "EACCES"})

    def test_socket_allowed_keeps_socketcall(self):
        """The control: a profile that allows socket and socketpair without
        conditions keeps socketcall's SYS_SOCKET and SYS_SOCKETPAIR."""
        rows = self.rows(allow_all_profile())
        self.assertEqual(rows["i386:socketcall(SOCKET,AF_INET)"], "OK", rows)
        self.assertEqual(rows["i386:socketcall(SOCKETPAIR,AF_UNIX)"], "OK", rows)
        self.assertNotIn(rows["i386:socketcall(SOCKET,AF_VSOCK)"], ("EPERM", "EACCES"), rows)

    def test_denylist_profile(self):
        """Allow by default, socket refused for AF_VSOCK by a rule on its
        argument: socketcall(SYS_SOCKET) is refused whatever the family, and
        with the rule's own errnoRet (libseccomp refuses it there already:
        sbx's filter runs after the profile's and keeps its answer)."""
        profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 0xffffffff, "valueTwo": AF_VSOCK,
                       "op": "SCMP_CMP_MASKED_EQ"}]}]}
        rows = self.rows(profile)
        self.assertEqual({k: rows[k] for k in (
            "i386:socket(AF_VSOCK)", "i386:socket(AF_INET)", "i386:socketcall(SOCKET,AF_INET)",
            "i386:socketcall(SOCKET,AF_VSOCK)", "i386:socketcall(SOCKETPAIR,AF_UNIX)")},
            {"i386:socket(AF_VSOCK)": "EACCES", "i386:socket(AF_INET)": "OK",
             "i386:socketcall(SOCKET,AF_INET)": "EACCES",
             "i386:socketcall(SOCKET,AF_VSOCK)": "EACCES",
             "i386:socketcall(SOCKETPAIR,AF_UNIX)": "OK"})


if __name__ == "__main__":
    unittest.main()
