"""The spare sbx-net (src/sandbox/netspare.c, issue 15): a run with the
slirp network leaves the next run's sbx-net started and confined in the
user's state directory; the next start takes it instead of an exec. Each
test has a state directory of its own (XDG_RUNTIME_DIR), and spares on
(the suite's default is SBX_NET_SPARE=0, so that other tests find sbx-net
as sbx's child)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from sbxtest import SbxTestCase, fixture
from test_network import BUSYBOX, Servers, free_port, http_get_retry, skip_without_tun


def status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


class TestNetSpare(SbxTestCase):
    mode = "single"

    def setUp(self):
        super().setUp()
        skip_without_tun(self)
        self.runtime = os.path.join(self.tmp, "runtime")
        os.mkdir(self.runtime, 0o700)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(self.runtime, pw.pw_uid, pw.pw_gid)
        self.state = os.path.join(self.runtime, "sbx")
        self.servers = Servers()

    def tearDown(self):
        self.servers.close()
        # A spare leaves once its socket is gone (at its next check, 2 s).
        spares = self.spares()
        # A spare still starting may rename its socket into place while
        # rmtree runs (then the directory is not empty, and stays): again.
        for _ in range(50):
            shutil.rmtree(self.runtime, ignore_errors=True)
            if not os.path.exists(self.runtime):
                break
            time.sleep(0.1)
        for pid in spares:
            if not self.wait_for(lambda: not alive(pid), timeout=10):
                os.kill(pid, signal.SIGKILL)
                self.fail("spare %d outlived its socket" % pid)
        super().tearDown()

    def env(self, **extra):
        e = {"XDG_RUNTIME_DIR": self.runtime, "SBX_NET_SPARE": "1"}
        e.update(extra)
        return e

    def spares(self):
        """The waiting spares of this test's state directory."""
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    argv = f.read().split(b"\0")
                if not any(a.startswith(b"--spare=") for a in argv):
                    continue
                if os.readlink("/proc/%s/fd/5" % name) == self.state:
                    found.append(int(name))
            except OSError:
                continue
        return found

    def run_dbg(self, script, opts=(), env=None):
        return self.sbx_cmd(["run", "-q", "--log-level", "debug"] + list(opts) +
                            [fixture(BUSYBOX), "sh", "-c", script], env=env or self.env())

    def started_spare(self, r):
        m = re.findall(r"network helper spare (\d+) started", r.err)
        self.assertEqual(len(m), 1, r.err)
        pid = int(m[0])
        self.assertTrue(self.wait_for(lambda: os.path.exists(
            os.path.join(self.state, ".net-spare.sock"))), "the spare never put its socket in place")
        return pid

    def assertConfined(self, pid):
        st = status(pid)
        self.assertEqual(st["Seccomp"].strip(), "2", "a spare without its seccomp filter")
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        for cap in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, "%s of the spare: %s" % (cap, st[cap]))
        self.assertEqual(sorted(os.listdir("/proc/%d/root" % pid)), ["etc"])
        self.assertNotEqual(os.readlink("/proc/%d/ns/user" % pid), os.readlink("/proc/self/ns/user"))

    def test_a_run_leaves_a_spare_and_the_next_run_takes_it(self):
        """The spare is confined while it waits; taken, it gets the run's
        options (a forwarded port, the allowlist, --net-log's file, the
        resolver file as sbx read it) and serves the run as sbx-net would."""
        resolv = os.path.join(self.tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 192.0.2.1\n")
        os.chmod(resolv, 0o644)
        r = self.run_dbg("true", env=self.env(SBX_NET_RESOLV_CONF=resolv))
        self.assertEqual(r.rc, 0, r)
        self.assertIn("starting one", r.err)  # none yet
        spare = self.started_spare(r)
        self.assertConfined(spare)
        self.assertEqual(os.readlink("/proc/%d/fd/5" % spare), self.state)
        with open("/proc/%d/comm" % spare) as f:
            self.assertEqual(f.read(), "sbx-spare-net\n")  # no run's helper yet

        with open(resolv, "w") as f:
            f.write("nameserver 192.0.2.2\n")
        log = os.path.join(self.store_for(self.mode), "net.jsonl")
        port, http = free_port(), self.servers.http_port
        p = self.popen(["run", "-q", "--log-level", "debug", "-p", "127.0.0.1:%d:8080" % port,
                        "--network", "slirp:allow_host_loopback=true,allow_host_addresses=true",
                        "--net-allow", "10.0.2.2:%d/tcp" % http, "--net-log", log,
                        fixture(BUSYBOX), "sh", "-c",
                        "wget -q -O - http://10.0.2.2:%d/x && mkdir /www && echo served > "
                        "/www/index.html && httpd -p 8080 -h /www && echo up && sleep 30" % http],
                       env=self.env(SBX_NET_RESOLV_CONF=resolv),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"hello from the host\n")
            self.assertEqual(p.stdout.readline(), b"up\n")
            self.assertEqual(http_get_retry("http://127.0.0.1:%d/index.html" % port), b"served\n")
            # the spare serves this run: confined, with nothing of the state
            # directory left open, and the resolver file of this run
            self.assertTrue(alive(spare))
            self.assertConfined(spare)
            with open("/proc/%d/comm" % spare) as f:
                self.assertEqual(f.read(), "sbx-net\n")
            fds = [os.readlink("/proc/%d/fd/%s" % (spare, n)) for n in os.listdir("/proc/%d/fd" % spare)]
            self.assertFalse([f for f in fds if f.startswith(self.runtime)], fds)
            with open("/proc/%d/root/etc/resolv.conf" % spare) as f:
                self.assertEqual(f.read(), "nameserver 192.0.2.2\n")
        finally:
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=30)
        err = err.decode()
        self.assertIn("network helper spare %d taken" % spare, err)
        self.assertIn("network helper %d ready" % spare, err)
        with open(log) as f:
            self.assertIn('"verdict":"allowed"', f.read().replace(" ", ""))
        # stopped with the run; the run started the next spare
        self.assertTrue(self.wait_for(lambda: not alive(spare)), "the taken spare outlived its run")
        self.assertRegex(err, r"network helper spare \d+ started")

    def test_a_killed_sbx_takes_its_spare_along(self):
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        spare = self.started_spare(r)
        p = self.popen(["run", "-q", fixture(BUSYBOX), "sh", "-c", "echo up; exec sleep 1000"],
                       env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"up\n")
            self.assertFalse(os.path.exists(os.path.join(self.state, ".net-spare.sock")))
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            self.assertTrue(self.wait_for(lambda: not alive(spare)), "the spare outlived sbx")
        finally:
            p.kill()
            p.communicate()

    def test_a_spare_leaves_with_its_socket(self):
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        spare = self.started_spare(r)
        os.unlink(os.path.join(self.state, ".net-spare.sock"))
        self.assertTrue(self.wait_for(lambda: not alive(spare), timeout=10))
        # and the next run starts its own, and leaves a new spare
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("starting one", r.err)
        self.assertNotEqual(self.started_spare(r), spare)

    def test_one_spare_at_a_time(self):
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        spare = self.started_spare(r)
        r = self.sbx_cmd(["run", "-q", "--log-level", "debug", "--network", "none",
                          fixture(BUSYBOX), "true"], env=self.env())
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("spare", r.err)
        self.assertEqual(self.spares(), [spare])
        # sbx check names it
        r = self.sbx_cmd(["check"], root=False, env=self.env())
        self.assertIn("network helper spare: pid %d, socket %s/.net-spare.sock" % (spare, self.state),
                      r.out)
        r = self.sbx_cmd(["check"], root=False, env=self.env(SBX_NET_SPARE="0"))
        self.assertIn("network helper spare: off (SBX_NET_SPARE=0)", r.out)

    def plant(self, name, text):
        """A Python script at the spare's socket, as the user sbx runs as
        (as a sandbox given the state directory could plant one)."""
        os.makedirs(self.state, 0o700, exist_ok=True)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(self.state, pw.pw_uid, pw.pw_gid)
        script = os.path.join(self.tmp, name)
        with open(script, "w") as f:
            f.write(text)
        os.chmod(script, 0o644)
        kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []} if pw else {}
        return subprocess.Popen(["python3", script, os.path.join(self.state, ".net-spare.sock")],
                                stdout=subprocess.PIPE, **kw)

    def test_a_forged_spare_gets_nothing(self):
        """A listener of the same uid at the spare's name (a program that
        is not our sbx-net, as a sandbox given the state directory as a
        volume could plant) is connected to, refused, and told nothing; the
        run starts its own sbx-net."""
        forged = self.plant("forged.py", FORGED)
        try:
            self.assertEqual(forged.stdout.readline(), b"listening\n")
            r = self.run_dbg("wget -q -O - http://10.0.2.2:%d/x" % self.servers.http_port,
                             opts=["--network", "slirp:allow_host_loopback=true"])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.out, "hello from the host\n")
            self.assertRegex(r.err, r"network helper spare \d+: not .*sbx-net; starting one")
            out, _ = forged.communicate(timeout=10)
            self.assertEqual(out, b"connected, got b''\n")
        finally:
            forged.kill()

    def test_a_peer_out_of_sight_gets_nothing(self):
        """Review (session 11): SO_PEERCRED names a listener outside our PID
        namespace (a parent's, as for sbx run in a container that shares the
        state directory with the host) as pid 0. Connected before the clone,
        it was then never checked, and got tap0. Now it is refused at once."""
        forged = self.plant("forged.py", FORGED)
        try:
            self.assertEqual(forged.stdout.readline(), b"listening\n")
            r = self.sbx_cmd(["run", "-q", "--log-level", "debug", "--userns", "single",
                              fixture(BUSYBOX), "true"], env=self.env(),
                             wrap=["unshare", "-Upf", "--map-current-user", "--mount-proc"])
            self.assertEqual(r.rc, 0, r)
            self.assertRegex(r.err, r"network helper spare 0: uid \d+, not ours; starting one")
            out, _ = forged.communicate(timeout=10)
            self.assertEqual(out, b"connected, got b''\n")
        finally:
            forged.kill()

    def attack(self, mode):
        """A process of the user's uid in PID and user namespaces of its own
        (as any sandbox's is) at the spare's socket: it is told nothing,
        binds nothing on the host, and the spare leaves."""
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        spare = self.started_spare(r)
        script = os.path.join(self.tmp, "taker.py")
        with open(script, "w") as f:
            f.write(TAKER)
        os.chmod(script, 0o644)
        port = free_port()
        r = self.run_as(["unshare", "-Urpf", "--mount-proc", "python3", script,
                         os.path.join(self.state, ".net-spare.sock"), mode, str(port)])
        self.assertEqual(r.rc, 0, r)
        # EOF, or a reset (it left with our message unread): never an answer
        self.assertIn(r.out, ("answer: b''\n",
                              "answer: b\"ConnectionResetError(104, 'Connection reset by peer')\"\n"),
                      r)
        self.assertTrue(self.wait_for(lambda: not alive(spare)), "the spare stayed")
        with socket.socket() as c:
            self.assertNotEqual(c.connect_ex(("127.0.0.1", port)), 0, "the spare bound the port")
        # and the next run still works, with a spare of its own making
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        self.started_spare(r)

    def test_a_sandboxed_peer_cannot_take_the_spare(self):
        """Review (session 10): the spare checked only the peer's uid, which
        a sandbox's root maps to: a sandbox that sees the state directory
        got a network stack in the host's namespace (host loopback, ports
        bound on the host) whatever its own --network."""
        self.attack("options")

    def test_a_silent_peer_does_not_keep_the_spare(self):
        self.attack("silent")

    def test_a_spare_that_does_not_answer_is_not_waited_for(self):
        """A spare stopped (or gone) after the start renamed its socket: the
        start waits 2 s for its answer, then starts its own."""
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        spare = self.started_spare(r)
        os.kill(spare, signal.SIGSTOP)
        try:
            r = self.run_dbg("true")
            self.assertEqual(r.rc, 0, r)
            self.assertIn("network helper spare %d: no answer; starting one" % spare, r.err)
        finally:
            os.kill(spare, signal.SIGKILL)

    def test_not_at_another_nice_value(self):
        if os.getpriority(os.PRIO_PROCESS, 0) != 0:
            self.skipTest("the suite runs at a nice value of its own")
        r = self.sbx_cmd(["run", "-q", "--log-level", "debug", fixture(BUSYBOX), "true"],
                         env=self.env(), wrap=["nice", "-n", "7"])
        self.assertEqual(r.rc, 0, r)
        spare = self.started_spare(r)
        self.assertEqual(os.getpriority(os.PRIO_PROCESS, spare), 7)
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("network helper spare %d: started in another cgroup or at another nice value"
                      % spare, r.err)

    def test_not_for_refusing_the_hosts_addresses(self):
        """--net-allow refuses the host's other addresses by default: listed
        by sbx-net before it confines itself, which a spare did long ago.
        Such a run starts its own and leaves the spare for the next."""
        r = self.run_dbg("true")
        self.assertEqual(r.rc, 0, r)
        spare = self.started_spare(r)
        r = self.run_dbg("true", opts=["--net-allow", "10.0.2.2:80"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("network helper spare: not for these options", r.err)
        self.assertEqual(self.spares(), [spare])

    def test_a_listener_with_a_full_queue_does_not_hold_the_start(self):
        """Review: a planted listener whose queue is full held connect()
        for as long as it stayed (forwarded signals blocked meanwhile)."""
        full = self.plant("full.py", FULL)
        try:
            self.assertEqual(full.stdout.readline(), b"full\n")
            r = self.run_dbg("true")
            self.assertEqual(r.rc, 0, r)
            self.assertIn("starting one", r.err)
        finally:
            full.kill()
            full.wait()

    def test_off_by_environment(self):
        r = self.run_dbg("true", env=self.env(SBX_NET_SPARE="0"))
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("spare", r.err)
        self.assertEqual(self.spares(), [])
        r = self.run_dbg("true", env=self.env(SBX_NET_SPARE="yes"))
        self.assertSbxError(r, contains="SBX_NET_SPARE")


class TestNetSpareRange(TestNetSpare):
    """The same from a range-mode sbx, which works inside the user's
    namespace holder's namespace (its spares are started there, and serve
    starts made there)."""
    mode = "range"

    def setUp(self):
        self.require_range()
        super().setUp()


TAKER = r"""
import array, os, socket, sys
path, mode, port = sys.argv[1], sys.argv[2], sys.argv[3]
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
os.rename(path, path + ".mine")
c.connect(path + ".mine")
os.unlink(path + ".mine")
if mode == "options":
    tap = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    fds = [os.open("/proc/self/ns/" + n, os.O_RDONLY) for n in ("pid", "net", "user")]
    opts = "--allow-host-loopback\n--publish=127.0.0.1:%s:80\n--resolv-conf-data=" % port
    c.sendmsg([b"K" + opts.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    c.sendmsg([b"Ktap"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [tap[0].fileno()]))])
c.settimeout(10)
try:
    got = c.recv(4096)
except OSError as e:
    got = repr(e).encode()
print("answer: %r" % got, flush=True)
"""

FULL = r"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1])
s.listen(0)
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
c.connect(sys.argv[1])
print("full", flush=True)
time.sleep(60)
"""

FORGED = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1])
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(5)
try:
    got = c.recv(4096)
except OSError:
    got = b"?"
print("connected, got %r" % got, flush=True)
"""
