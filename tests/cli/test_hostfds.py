"""Issue 9: without -t the program never gets one of the user's file
descriptors. Whatever sbx's stdin, stdout and stderr are (a file, a terminal,
/dev/null, a pipe), the program's are pipes that sbx relays; without -i its
stdin is the sandbox's /dev/null. The shell inside reports the targets of
/proc/$$/fd/N (its own, original fds) into a volume, so the report does not
depend on where stdout goes."""
import os
import pty
import subprocess
import termios
import unittest

from sbxtest import SbxTestCase, fixture

BUSYBOX = "busybox-legacy.tar"
# (expansions come before the redirection: the shell's fds are still its own)
REPORT = ("a=$(readlink /proc/$$/fd/0) b=$(readlink /proc/$$/fd/1) c=$(readlink /proc/$$/fd/2); "
          "printf '%s\\n' \"$a\" \"$b\" \"$c\" > /v/fds")


class HostFdTests:
    def setUp(self):
        super().setUp()
        self.vol = os.path.join(self.tmp, "vol")
        os.mkdir(self.vol)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(self.vol, pw.pw_uid, pw.pw_gid)

    def host_file(self, name, content=b""):
        path = os.path.join(self.vol, name)
        with open(path, "wb") as f:
            f.write(content)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(path, pw.pw_uid, pw.pw_gid)
        return path

    def run_with(self, stdin, stdout, stderr, *opts, script=REPORT):
        p = self.popen(["run", "-q", "--network", "none", "-v", self.vol + ":/v"] + list(opts)
                       + [fixture(BUSYBOX), "sh", "-c", script],
                       stdin=stdin, stdout=stdout, stderr=stderr)
        self.assertEqual(p.wait(timeout=60), 0)

    def fds_seen(self):
        with open(os.path.join(self.vol, "fds")) as f:
            return f.read().splitlines()

    def assertPipes(self, fds, stdin="pipe"):
        self.assertEqual(len(fds), 3, fds)
        if stdin == "pipe":
            self.assertTrue(fds[0].startswith("pipe:["), fds)
        else:
            self.assertEqual(fds[0], stdin, fds)
        for fd in fds[1:]:
            self.assertTrue(fd.startswith("pipe:["), fds)

    def test_files_become_pipes(self):
        with open(self.host_file("in", b"input\n"), "rb") as i, \
                open(self.host_file("out"), "ab") as o, open(self.host_file("err"), "ab") as e:
            self.run_with(i, o, e, "-i")
        self.assertPipes(self.fds_seen())

    def test_dev_null_becomes_pipes(self):
        with open(os.devnull, "r+b") as n:
            self.run_with(n, n, n, "-i")
        self.assertPipes(self.fds_seen())

    def test_terminal_becomes_pipes(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        self.run_with(slave, slave, slave, "-i")
        self.assertPipes(self.fds_seen())

    def test_stdin_is_the_sandboxes_null_without_i(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        self.run_with(slave, slave, slave)
        self.assertPipes(self.fds_seen(), stdin="/dev/null")

    def test_appended_log_cannot_be_read_back(self):
        """`sbx run ... >> ci.log`: reopening /proc/self/fd/1 used to give the
        log file itself, with what earlier steps wrote into it."""
        log = self.host_file("ci.log", b"earlier-step-secret\n")
        errlog = self.host_file("err.log", b"earlier-step-error\n")
        script = ("cat /proc/$$/fd/1 > /v/leak & sleep 1; kill $! 2>/dev/null; "
                  "cat /proc/$$/fd/2 > /v/leak2 & sleep 1; kill $! 2>/dev/null; "
                  "echo this-step")
        with open(log, "ab") as o, open(errlog, "ab") as e:
            self.run_with(subprocess.DEVNULL, o, e, script=script)
        for leak in ("leak", "leak2"):
            with open(os.path.join(self.vol, leak), "rb") as f:
                self.assertEqual(f.read(), b"", leak)
        with open(log, "rb") as f:
            self.assertEqual(f.read(), b"earlier-step-secret\nthis-step\n")

    def test_stty_cannot_change_the_users_terminal(self):
        """-i without -t: the terminal is sbx's stdin, never the program's."""
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        before = termios.tcgetattr(slave)
        self.run_with(slave, slave, slave, "-i",
                      script="stty -echo -icanon raw 2>/dev/null; echo rc=$? > /v/rc")
        self.assertEqual(termios.tcgetattr(slave), before)
        with open(os.path.join(self.vol, "rc")) as f:
            self.assertEqual(f.read(), "rc=1\n")

    def test_stdin_eof_and_stream_order(self):
        """EOF on sbx's stdin reaches the program; each stream keeps its order."""
        r = self.sbx_cmd(["run", "-q", "-i", "--network", "none", fixture(BUSYBOX), "sh", "-c",
                          "while read l; do echo out-$l; echo err-$l >&2; done; echo eof"],
                         input=b"".join(b"%d\n" % i for i in range(2000)))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines(), ["out-%d" % i for i in range(2000)] + ["eof"])
        err = [l for l in r.err.splitlines() if not l.startswith("sbx: warning")]
        self.assertEqual(err, ["err-%d" % i for i in range(2000)])

    def test_reader_gone_is_sigpipe_for_the_program(self):
        """`sbx run IMG yes | head -1`: the program learns the reader left."""
        p = self.popen(["run", "-q", "--network", "none", fixture(BUSYBOX), "yes"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.stdout.read(2), b"y\n")
        p.stdout.close()
        self.assertEqual(p.wait(timeout=30), 128 + 13, p.stderr.read())


class TestHostFdsSingle(HostFdTests, SbxTestCase):
    mode = "single"


class TestHostFdsRange(HostFdTests, SbxTestCase):
    mode = "range"


if __name__ == "__main__":
    unittest.main()
