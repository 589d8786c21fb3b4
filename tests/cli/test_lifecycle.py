"""Detached sandboxes over their lifetime: what the happy-path tests in
test_sandboxes.py do not reach — a dead supervisor takes its program with it,
logs -f follows, exec -t/-it get a terminal, run -d without a name, stop
escalating to SIGKILL, exec keeping the run's --cap-drop and seccomp
profile. Signals are sent only after the program says it is ready."""
import fcntl
import json
import os
import pty
import select
import signal
import subprocess
import termios
import time
import unittest

from sbxtest import NamedSandboxCase, SbxTestCase, fixture

BUSYBOX = "busybox-legacy.tar"


class LifecycleCase(NamedSandboxCase):
    mode = "single"

    def detached(self, name, *cmd, opts=()):
        self.names.append(name)
        r = self.cmd(["run", "-d", "-q", "--name", name] + list(opts) + [fixture(BUSYBOX)]
                     + list(cmd))
        self.assertEqual((r.rc, r.out), (0, name + "\n"), r)
        return r

    def ps(self, *args):
        r = self.cmd(["ps", "--format", "json"] + list(args))
        self.assertEqual(r.rc, 0, r)
        return {d["Name"]: d for d in json.loads(r.out)}

    def wait_ready(self, name, marker="ready"):
        self.assertTrue(self.wait_for(lambda: marker in self.cmd(["logs", name]).out, 30),
                        "%s never said %r" % (name, marker))

    @staticmethod
    def running(marker):
        out = subprocess.run(["ps", "-eo", "args"], stdout=subprocess.PIPE).stdout.decode()
        return any(l.strip() == marker for l in out.splitlines())


class TestLifecycle(LifecycleCase):
    def test_dead_supervisor_takes_the_program(self):
        marker = "sleep %d" % (200000 + os.getpid())
        self.detached("orphan", "sh", "-c", "echo ready; exec %s" % marker)
        self.wait_ready("orphan")
        self.assertTrue(self.wait_for(lambda: self.running(marker)), "the program never ran")
        with open(os.path.join(self.runtime, "sbx", "orphan", "state")) as f:
            sup = [int(l.split("=")[1]) for l in f if l.startswith("SupervisorPid=")][0]
        os.kill(sup, signal.SIGKILL)
        self.assertTrue(self.wait_for(lambda: self.ps("-a")["orphan"]["Running"] is False, 30))
        self.assertTrue(self.wait_for(lambda: not self.running(marker), 30),
                        "the sandboxed program outlived its supervisor")

    def test_logs_follow(self):
        self.detached("f", "sh", "-c", "echo one; while [ ! -e /tmp/go ]; do sleep 0.05; done; "
                      "echo two; exit 6")
        p = self.popen(["logs", "-f", "f"], root=False, env={"XDG_RUNTIME_DIR": self.runtime},
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.stdout.readline(), b"one\n")
        self.assertEqual(self.cmd(["exec", "f", "touch", "/tmp/go"]).rc, 0)
        # a line written after logs -f started, then the end of the sandbox
        out, err = p.communicate(timeout=30)
        self.assertEqual((p.returncode, out), (0, b"two\n"), err)
        self.assertEqual(self.ps("-a")["f"]["Status"], "exited (6)")

    def test_run_detached_without_name(self):
        r = self.cmd(["run", "-d", "-q", fixture(BUSYBOX), "sh", "-c", "echo ready; sleep 60"])
        self.assertEqual(r.rc, 0, r)
        name = r.out.strip()
        self.assertRegex(name, r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
        self.names.append(name)
        ps = self.ps()
        self.assertEqual(ps[name]["Status"], "running", ps)
        self.wait_ready(name)
        self.assertEqual(self.cmd(["exec", name, "echo", "in"]).out, "in\n")
        # a second one gets another name
        r2 = self.cmd(["run", "-d", "-q", fixture(BUSYBOX), "sleep", "60"])
        self.assertEqual(r2.rc, 0, r2)
        self.names.append(r2.out.strip())
        self.assertNotEqual(r2.out.strip(), name)

    def test_stop_escalates_to_sigkill(self):
        self.detached("stubborn", "sh", "-c", "trap '' TERM; echo ready; "
                      "while :; do sleep 0.1; done")
        self.wait_ready("stubborn")
        t0 = time.monotonic()
        r = self.cmd(["stop", "-t", "1", "stubborn"])
        took = time.monotonic() - t0
        self.assertEqual((r.rc, r.out), (0, "stubborn\n"), r)
        self.assertGreaterEqual(took, 1.0, "stop did not wait for SIGTERM to work")
        self.assertLess(took, 30)
        self.assertEqual(self.ps("-a")["stubborn"]["Status"], "exited (137)")

    def test_stop_without_escalation(self):
        """The control: a program that ends on TERM is not killed."""
        self.detached("polite", "sh", "-c", "trap 'exit 0' TERM; echo ready; "
                      "while :; do sleep 0.1; done")
        self.wait_ready("polite")
        r = self.cmd(["stop", "-t", "30", "polite"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.ps("-a")["polite"]["Status"], "exited (0)")

    def test_exec_enters_the_programs_network_namespace(self):
        """--network none with the built-in filter: the program's process makes
        the network namespace and init joins it (sandbox.c, net_made_early);
        exec enters init's, so all three must be one, and not ours. With a
        profile of the user's the clone makes it, as before: the same."""
        ours = os.readlink("/proc/self/ns/net")
        for name, opts in (("netns", []), ("netns-unconfined", ["--security-opt",
                                                                "seccomp=unconfined"])):
            self.detached(name, "sh", "-c", "readlink /proc/self/ns/net >/tmp/ns; echo ready; "
                          "exec sleep 60", opts=["--network", "none"] + opts)
            self.wait_ready(name)
            r = self.cmd(["exec", name, "sh", "-c", "cat /tmp/ns; readlink /proc/self/ns/net; "
                          "ls /sys/class/net; cat /sys/class/net/lo/operstate /proc/net/dev"])
            self.assertEqual(r.rc, 0, r)
            lines = r.out.split("\n")
            self.assertRegex(lines[0], r"^net:\[\d+\]$", r)
            self.assertEqual(lines[0], lines[1], r)
            self.assertNotEqual(lines[0], ours, r)
            # sysfs of that namespace: lo alone, and up
            self.assertEqual(lines[2:4], ["lo", "unknown"], r)
            self.assertEqual([l.split(":")[0].strip() for l in lines[6:] if ":" in l], ["lo"], r)

    def test_exec_keeps_cap_drop_and_seccomp_profile(self):
        profile = os.path.join(self.tmp, "no-mkdir.json")
        with open(profile, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]},
                      f)
        os.chmod(profile, 0o644)
        self.detached("capped", "sh", "-c", "grep '^CapEff:' /proc/self/status; echo ready; "
                      "sleep 60",
                      opts=["--cap-drop", "ALL", "--cap-add", "CHOWN",
                            "--security-opt", "seccomp=" + profile])
        self.wait_ready("capped")
        script = "grep -E '^Cap(Eff|Bnd|Prm):' /proc/self/status; mkdir /tmp/d && echo made"
        r = self.cmd(["exec", "capped", "sh", "-c", script])
        caps = dict(l.split(":\t") for l in r.out.splitlines() if l.startswith("Cap"))
        chown = "%016x" % 1  # CAP_CHOWN only
        self.assertEqual({k: v.strip() for k, v in caps.items()},
                         {"CapEff": chown, "CapBnd": chown, "CapPrm": chown}, r)
        self.assertNotIn("made", r.out, r)
        self.assertIn("Operation not permitted", r.err, r)
        # the run's own program has the same set
        self.assertIn("CapEff:\t%s\n" % chown, self.cmd(["logs", "capped"]).out)


class TestExecTty(LifecycleCase):
    def exec_on_pty(self, args):
        master, slave = pty.openpty()
        pw = self.user_for(self.mode)

        def child_setup():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            if pw:
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)

        p = subprocess.Popen([self.sbx, "exec"] + args, stdin=slave, stdout=slave, stderr=slave,
                             cwd=self.tmp, preexec_fn=child_setup,
                             env=self.env_for(self.mode, {"XDG_RUNTIME_DIR": self.runtime,
                                                          "TERM": "xterm"}))
        os.close(slave)
        return p, master

    def read_until(self, master, needle, timeout=30):
        out = b""
        end = time.time() + timeout
        while needle not in out and time.time() < end:
            r, _, _ = select.select([master], [], [], max(0, end - time.time()))
            if not r:
                break
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        return out

    def test_exec_it_gets_a_terminal(self):
        self.detached("t", "sh", "-c", "echo ready; sleep 60")
        self.wait_ready("t")
        p, master = self.exec_on_pty(["-it", "t", "sh", "-c",
                                      "tty; test -t 0 && echo in-tty; test -t 1 && echo out-tty; "
                                      "read line; echo got-$line"])
        try:
            out = self.read_until(master, b"out-tty")
            self.assertIn(b"/dev/pts/", out)
            self.assertIn(b"in-tty", out)
            os.write(master, b"typed\r")
            out += self.read_until(master, b"got-typed")
            self.assertIn(b"got-typed", out)
            self.assertEqual(p.wait(timeout=30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)

    def test_exec_t_without_i(self):
        """-t alone: a terminal for output, stdin not the user's."""
        self.detached("t2", "sh", "-c", "echo ready; sleep 60")
        self.wait_ready("t2")
        p, master = self.exec_on_pty(["-t", "t2", "sh", "-c",
                                      "test -t 1 && echo out-tty; tty; echo done"])
        try:
            out = self.read_until(master, b"done")
            self.assertIn(b"out-tty", out)
            self.assertIn(b"/dev/pts/", out)
            self.assertEqual(p.wait(timeout=30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)


class EndOfRunTests:
    """A run ends with its program: init kills and reaps the rest of the
    sandbox before it reports the status, and sbx returns on that report
    without waiting for the kernel to tear the namespaces down, so nothing
    of the sandbox may outlive sbx, not even for a moment."""

    def test_background_processes_end_with_the_program(self):
        for tty in ([], ["-t"]):
            marker = "sleep %d" % (300000 + os.getpid() * 4 + len(tty) * 2
                                   + (self.mode == "range"))
            r = self.sbx_cmd(["run", "-q"] + tty + [fixture(BUSYBOX), "sh", "-c",
                             "%s >/dev/null 2>&1 & %s <&- >&- 2>&- & echo started; exit 7"
                             % (marker, marker)],
                             mode=self.mode)
            self.assertEqual(r.rc, 7, r)
            self.assertIn("started", r.out)
            self.assertFalse(LifecycleCase.running(marker),
                             "a background process outlived sbx (%s)" % (tty or "no -t"))

    def test_killed_program_status(self):
        r = self.sbx_cmd(["run", "-q", fixture(BUSYBOX), "sh", "-c", "sleep 1000 & kill -9 $$"],
                         mode=self.mode)
        self.assertEqual(r.rc, 137, r)


class TestEndOfRunSingle(EndOfRunTests, SbxTestCase):
    mode = "single"


class TestEndOfRunRange(EndOfRunTests, SbxTestCase):
    mode = "range"


if __name__ == "__main__":
    unittest.main()
