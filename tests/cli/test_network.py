"""Networking through libslirp. Traffic stays on this machine: servers on
127.0.0.1 reached through 10.0.2.2, ports forwarded to 127.0.0.1, and DNS from
a resolver inside a sealed network namespace the test makes itself."""
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
import unittest
import urllib.request

from sbxtest import IS_ROOT, SbxTestCase, fixture

BUSYBOX = "busybox-legacy.tar"


def http_get_retry(url, tries=50):
    """The body at url, retried while the sandbox's server comes up (None if never)."""
    for _ in range(tries):
        try:
            return urllib.request.urlopen(url, timeout=5).read()
        except OSError:
            time.sleep(0.1)
    return None


def free_port(kind=socket.SOCK_STREAM):
    """A port free now, below the ephemeral range: bind(0) elsewhere (other
    cases run in parallel) never hands it out between now and sbx's bind."""
    import random
    lo = 20000
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        hi = min(int(f.read().split()[0]), 32768)
    for _ in range(100):
        port = random.randrange(lo, hi)
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise OSError("no free port in %d-%d" % (lo, hi))


# 8 MiB that no pattern compresses: the bulk transfers' payload.
BULK = os.urandom(8 << 20)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = BULK if self.path == "/bulk" else b"hello from the host\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Servers:
    """An HTTP server and a UDP echo server on 127.0.0.1, for one test."""

    def __init__(self):
        self.http = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Quiet)
        self.http.daemon_threads = True
        self.http_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp_port = self.udp.getsockname()[1]
        self.udp.settimeout(0.2)
        self.stop = False
        threading.Thread(target=self._echo, daemon=True).start()
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sink.bind(("127.0.0.1", 0))
        self.sink.listen(4)
        self.sink_port = self.sink.getsockname()[1]
        threading.Thread(target=self._sink, daemon=True).start()
        self.echo = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.echo.bind(("127.0.0.1", 0))
        self.echo.listen(512)
        self.echo_port = self.echo.getsockname()[1]
        threading.Thread(target=self._tcp_echo, daemon=True).start()

    def _tcp_echo(self):
        """Per connection, each in a thread: read to EOF, answer "echo:" and
        what came, close."""
        while not self.stop:
            try:
                c, _ = self.echo.accept()
            except OSError:
                return
            threading.Thread(target=self._echo_one, args=(c,), daemon=True).start()

    @staticmethod
    def _echo_one(c):
        with c:
            c.settimeout(30)
            data = b""
            try:
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    data += d
                c.sendall(b"echo:" + data)
            except OSError:
                pass

    def _sink(self):
        """Per connection: read len(BULK) bytes, answer with their SHA-256."""
        while not self.stop:
            try:
                c, _ = self.sink.accept()
            except OSError:
                return
            with c:
                c.settimeout(60)
                h, n = hashlib.sha256(), 0
                try:
                    while n < len(BULK):
                        d = c.recv(1 << 16)
                        if not d:
                            break
                        h.update(d)
                        n += len(d)
                    c.sendall((h.hexdigest() + "\n").encode())
                except OSError:
                    pass

    def _echo(self):
        while not self.stop:
            try:
                data, peer = self.udp.recvfrom(2048)
            except OSError:
                continue
            self.udp.sendto(b"echo:" + data, peer)

    def close(self):
        self.stop = True
        self.http.shutdown()
        self.http.server_close()
        self.udp.close()
        self.sink.close()
        self.echo.close()


def skip_without_tun(case):
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK) or \
            (os.stat("/dev/net/tun").st_mode & 0o006) != 0o006:
        case.skipTest("/dev/net/tun is not mode 0666 here (CI makes it so)")


class TestNetwork(SbxTestCase):
    mode = "single"

    def setUp(self):
        super().setUp()
        skip_without_tun(self)
        self.servers = Servers()

    def tearDown(self):
        self.servers.close()
        super().tearDown()

    def sandbox(self, script, opts=(), timeout=60):
        return self.sbx_cmd(["run", "-q"] + list(opts) + [fixture(BUSYBOX), "sh", "-c", script],
                            timeout=timeout)

    def test_slirp_is_the_default(self):
        r = self.sandbox("ip -o -4 addr show tap0; ip route; cat /etc/resolv.conf; ls /sys/class/net")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("inet 10.0.2.100/24", r.out)
        self.assertIn("default via 10.0.2.2 dev tap0", r.out)
        self.assertIn("nameserver 10.0.2.3", r.out)
        self.assertEqual(r.out.split("nameserver 10.0.2.3\n")[1].split(), ["lo", "tap0"])

    def test_mtu_option(self):
        r = self.sandbox("cat /sys/class/net/tap0/mtu", opts=["--mtu", "1500"])
        self.assertEqual((r.rc, r.out), (0, "1500\n"), r)

    def test_host_loopback_refused_by_default(self):
        port = self.servers.http_port
        r = self.sandbox("nc -w 3 10.0.2.2 %d </dev/null && echo connected || echo refused" % port)
        self.assertEqual(r.out, "refused\n", r)

    def test_host_loopback_when_allowed(self):
        r = self.sandbox("wget -q -O - http://10.0.2.2:%d/x" % self.servers.http_port,
                         opts=["--network", "slirp:allow_host_loopback=true"])
        self.assertEqual((r.rc, r.out), (0, "hello from the host\n"), r)

    def test_bulk_both_ways_intact(self):
        """8 MiB each way through sbx-net (the tap drained in batches, full
        frames back-to-back), checked by SHA-256 at the other end."""
        want = hashlib.sha256(BULK).hexdigest()
        r = self.sandbox("wget -q -O /tmp/bulk http://10.0.2.2:%d/bulk && sha256sum /tmp/bulk && "
                         "nc 10.0.2.2 %d < /tmp/bulk" % (self.servers.http_port,
                                                          self.servers.sink_port),
                         opts=["--network", "slirp:allow_host_loopback=true"], timeout=90)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split(), [want, "/tmp/bulk", want], r)

    def test_tcp_segments_fit_twice_in_libslirps_window(self):
        """libslirp has no window scaling (65535 bytes in flight): sbx-net
        keeps the segments libslirp sends to half of that, whatever the tap's
        MTU, so that two are in flight (src/net/slirp-glib.c, sbx_slirp_segment_mtu).
        What the guest saw: the largest segment of an 8 MiB download."""
        port = self.servers.http_port
        lo = ["--network", "slirp:allow_host_loopback=true"]
        r = self.udp("get", "10.0.2.2", str(port), "/bulk", opts=lo)
        self.assertEqual(r.rc, 0, r)
        total, rcv_mss = map(int, r.out.split())
        self.assertGreater(total, len(BULK), r)
        self.assertTrue(16384 < rcv_mss <= 32767, r)
        # the tap's MTU itself is what was asked for
        r = self.sandbox("cat /sys/class/net/tap0/mtu")
        self.assertEqual(r.out, "65520\n", r)
        # below the cap the MTU decides, as before
        r = self.udp("get", "10.0.2.2", str(port), "/bulk", opts=lo + ["--mtu", "1500"])
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(1000 < int(r.out.split()[1]) <= 1460, r)

    def udp(self, *args, opts=()):
        return self.sbx_cmd(["run", "-q"] + list(opts) + [fixture("udp.tar")] + list(args))

    def test_udp_out_and_back(self):
        r = self.udp("send", "10.0.2.2", str(self.servers.udp_port), "ping",
                     opts=["--network", "slirp:allow_host_loopback=true"])
        self.assertEqual((r.rc, r.out), (0, "echo:ping\n"), r)

    def test_port_forward_tcp(self):
        port = free_port()
        p = self.popen(["run", "-q", "-p", "127.0.0.1:%d:8080" % port, fixture(BUSYBOX), "sh", "-c",
                        "mkdir /www && echo served-from-sandbox > /www/index.html && "
                        "httpd -p 8080 -h /www && echo up && sleep 30"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"up\n")
            body = http_get_retry("http://127.0.0.1:%d/index.html" % port)
            self.assertEqual(body, b"served-from-sandbox\n")
        finally:
            p.kill()
            p.communicate()

    def test_port_forward_udp(self):
        port = free_port(socket.SOCK_DGRAM)
        p = self.popen(["run", "-q", "-p", "127.0.0.1:%d:5353/udp" % port, fixture("udp.tar"),
                        "recv", "5353"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"listening\n")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(20):
                s.sendto(b"hello", ("127.0.0.1", port))
                time.sleep(0.1)
            out, err = p.communicate(timeout=30)
            self.assertEqual((p.returncode, out), (0, b"hello\n"), err)
        finally:
            p.kill()

    def test_port_in_use_is_an_error_before_start(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            r = self.sbx_cmd(["run", "-p", "127.0.0.1:%d:80" % port, fixture(BUSYBOX), "sh", "-c",
                              "echo program-started"])
            self.assertSbxError(r, contains="%d" % port)
            self.assertNotIn("program-started", r.out)
        finally:
            busy.close()

    def test_bad_publish_spec(self):
        self.assertSbxError(self.sbx_cmd(["run", "-p", "99999:80", fixture(BUSYBOX), "true"]),
                            contains="-p 99999:80: expected [HOSTIP:]HOSTPORT:CONTAINERPORT")
        self.assertSbxError(self.sbx_cmd(["run", "--net-allow", "not-an-ip", fixture(BUSYBOX), "true"]),
                            contains="--net-allow not-an-ip: expected dns or CIDR")

    def test_net_allow_one_port(self):
        port = self.servers.http_port
        other = free_port()
        r = self.sandbox(
            "wget -q -O - http://10.0.2.2:%d/x; start=$(date +%%s); "
            "nc -w 10 10.0.2.2 %d </dev/null && echo other-connected || echo other-refused; "
            "echo took=$(( $(date +%%s) - start ))" % (port, other),
            opts=["--network", "slirp:allow_host_loopback=true", "--net-allow",
                  "10.0.2.2:%d/tcp" % port])
        self.assertIn("hello from the host\n", r.out, r)
        self.assertIn("other-refused", r.out, r)
        took = int(r.out.split("took=")[1])
        self.assertLessEqual(took, 5, "a refused connection must fail fast (RST), not time out")

    def test_net_allow_udp(self):
        loop = ["--network", "slirp:allow_host_loopback=true"]
        port = str(self.servers.udp_port)
        r = self.udp("send", "10.0.2.2", port, "ping", opts=loop + ["--net-allow", "10.0.2.2:1-100"])
        self.assertEqual(r.rc, 1, r)
        self.assertNotIn("echo:ping", r.out)
        r = self.udp("send", "10.0.2.2", port, "ping",
                     opts=loop + ["--net-allow", "10.0.2.0/24:%s/udp" % port])
        self.assertEqual((r.rc, r.out), (0, "echo:ping\n"), r)

    def test_helper_sleeps_when_idle(self):
        """With a connection open and nothing to do, sbx-net must not spin; and
        a host peer closing early must not kill it (SIGPIPE is ignored)."""
        p = self.popen(["run", "-q", "--network", "slirp:allow_host_loopback=true", fixture(BUSYBOX),
                        "sh", "-c", "echo up; sleep 30 | nc 10.0.2.2 %d" % self.servers.http_port],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"up\n")
            time.sleep(0.5)
            out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(p.pid)],
                                 stdout=subprocess.PIPE).stdout.decode().split()
            helper = [int(a) for a, b in zip(out[::2], out[1::2]) if b == "sbx-net"][0]

            def cpu():
                with open("/proc/%d/stat" % helper) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])  # utime + stime, in ticks

            before = cpu()
            time.sleep(1.0)
            used = cpu() - before
            self.assertLess(used, os.sysconf("SC_CLK_TCK") // 10, "sbx-net used CPU while idle")
            with open("/proc/%d/status" % helper) as f:
                ignored = int([l for l in f if l.startswith("SigIgn:")][0].split()[1], 16)
            self.assertTrue(ignored & (1 << (signal.SIGPIPE - 1)), "sbx-net must ignore SIGPIPE")
        finally:
            p.kill()
            p.communicate()

    def helper_pid(self, parent, name):
        for _ in range(100):
            out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(parent)],
                                 stdout=subprocess.PIPE).stdout.decode().split()
            found = [int(a) for a, b in zip(out[::2], out[1::2]) if b == name]
            if found:
                return found[0]
            time.sleep(0.1)
        self.fail("no %s under %d" % (name, parent))

    def test_helper_gets_no_user_environment(self):
        """Issue 9: sbx-net inherited the user's whole environment (their
        tokens) while parsing the guest's frames with the host's network."""
        secret = {"AWS_SECRET_ACCESS_KEY": "sbx-test-secret", "GITHUB_TOKEN": "sbx-test-token"}
        p = self.popen(["run", "-q", fixture(BUSYBOX), "sh", "-c", "echo up; sleep 30"], env=secret,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"up\n")
            helper = self.helper_pid(p.pid, "sbx-net")
            with open("/proc/%d/environ" % p.pid, "rb") as f:
                self.assertIn(b"sbx-test-secret", f.read())  # sbx itself has it
            with open("/proc/%d/environ" % helper, "rb") as f:
                env = [e.split(b"=", 1)[0] for e in f.read().split(b"\0") if e]
            self.assertEqual(set(env) - {b"ASAN_OPTIONS", b"UBSAN_OPTIONS", b"LSAN_OPTIONS"}, set(),
                             env)
        finally:
            p.kill()
            p.communicate()

    def read_net_log(self, path):
        """Every line one JSON object with the documented fields."""
        with open(path) as f:
            lines = f.read().splitlines()
        records = []
        for line in lines:
            rec = json.loads(line)
            self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
            if "truncated" in rec:
                records.append(rec)
                continue
            self.assertIn(rec["proto"], ("tcp", "udp", "icmp"))
            socket.inet_aton(rec["dst"])
            self.assertIn(rec["verdict"], ("allowed", "refused"))
            self.assertEqual("reason" in rec, rec["verdict"] == "refused", rec)
            if rec["proto"] != "icmp":
                self.assertIsInstance(rec["port"], int)
            records.append(rec)
        return records

    def test_net_log(self):
        """Issue 10: --net-log records each outbound attempt, allowed or
        refused, as JSON lines (servers on 127.0.0.1 through 10.0.2.2)."""
        log = os.path.join(self.store_for(self.mode), "net.jsonl")
        port, other, udp = self.servers.http_port, free_port(), self.servers.udp_port
        allow = ["--network", "slirp:allow_host_loopback=true", "--net-allow",
                 "10.0.2.2:%d/tcp" % port, "--net-log", log]
        r = self.sandbox("wget -q -O - http://10.0.2.2:%d/x; wget -q -O - http://10.0.2.2:%d/x; "
                         "nc -w 5 10.0.2.2 %d </dev/null; true" % (port, port, other),
                         opts=["--log-level", "debug"] + allow)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.count("hello from the host\n"), 2, r)
        self.assertEqual(os.stat(log).st_mode & 0o777, 0o600)
        recs = self.read_net_log(log)
        self.assertEqual([(x["proto"], x["dst"], x["port"], x["verdict"]) for x in recs],
                         [("tcp", "10.0.2.2", port, "allowed"), ("tcp", "10.0.2.2", port, "allowed"),
                          ("tcp", "10.0.2.2", other, "refused")], recs)
        self.assertEqual(recs[2]["reason"], "not-allowed")
        # the counters came back from sbx-net at the end of the run
        stats = [l for l in r.err.splitlines() if "network: sent" in l]
        self.assertEqual(len(stats), 1, r.err)
        self.assertEqual(int(stats[0].rsplit("refused ", 1)[1]), 1, stats)
        # five datagrams of one refused UDP flow: one record
        r = self.udp("send", "10.0.2.2", str(udp), "ping", opts=allow)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual([(x["proto"], x["dst"], x["port"], x["verdict"])
                          for x in self.read_net_log(log)],
                         [("udp", "10.0.2.2", udp, "refused")])

    def test_helper_reports_counters_when_stopped(self):
        """SIGTERM to sbx-net: it sends its counters to sbx before it goes;
        sbx reads them at the end of the run."""
        log = os.path.join(self.store_for(self.mode), "net.jsonl")
        p = self.popen(["run", "-q", "-i", "--log-level", "debug", "--network",
                        "slirp:allow_host_loopback=true", "--net-log", log, fixture(BUSYBOX), "sh",
                        "-c", "wget -q -O /dev/null http://10.0.2.2:%d/x; echo up; read x"
                        % self.servers.http_port],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"up\n")
            helper = self.helper_pid(p.pid, "sbx-net")
            os.kill(helper, signal.SIGTERM)
            self.assertTrue(self.wait_for(lambda: not os.path.exists("/proc/%d/status" % helper)
                                          or "Z" in open("/proc/%d/stat" % helper).read().split()[2]))
            out, err = p.communicate(input=b"\n", timeout=30)
        finally:
            p.kill()
        stats = [l for l in err.decode().splitlines() if "network: sent" in l]
        self.assertEqual(len(stats), 1, err)
        sent = int(stats[0].split("sent ")[1].split()[0])
        self.assertGreater(sent, 3, stats)  # at least the handshake, request, ack, fin

    def test_helper_killed_mid_run_is_told(self):
        """sbx-net killed while the sandbox runs: one warning line says the
        sandbox has no network now; the program's status is unchanged."""
        p = self.popen(["run", "-q", "-i", fixture(BUSYBOX), "sh", "-c",
                        "echo start; read x; echo end"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"start\n")
            helper = self.helper_pid(p.pid, "sbx-net")
            os.kill(helper, signal.SIGKILL)
            self.assertTrue(self.wait_for(lambda: "Z" in open("/proc/%d/stat" % helper)
                                          .read().split()[2]))
            time.sleep(0.3)  # sbx's SIGCHLD
            out, err = p.communicate(input=b"\n", timeout=30)
        finally:
            p.kill()
        self.assertEqual((p.returncode, out), (0, b"end\n"), err)
        lines = [l for l in err.decode().splitlines() if "network helper" in l]
        self.assertEqual(lines, ["sbx: warning: network helper sbx-net (pid %d): killed by signal 9 "
                                 "(the sandbox has no network now)" % helper], err)

    def test_net_log_without_allowlist_and_bad_paths(self):
        log = os.path.join(self.store_for(self.mode), "net.jsonl")
        r = self.sandbox("wget -q -O - http://10.0.2.2:%d/x" % self.servers.http_port,
                         opts=["--network", "slirp:allow_host_loopback=true", "--net-log", log])
        self.assertEqual(r.out, "hello from the host\n", r)
        recs = self.read_net_log(log)
        self.assertEqual([(x["proto"], x["port"], x["verdict"]) for x in recs],
                         [("tcp", self.servers.http_port, "allowed")])
        # never through a symlink, never into a FIFO or device
        link = os.path.join(self.store_for(self.mode), "link")
        os.symlink(os.path.join(self.store_for(self.mode), "target"), link)
        self.assertSbxError(self.sbx_cmd(["run", "--net-log", link, fixture(BUSYBOX), "true"]),
                            contains="--net-log")
        self.assertFalse(os.path.exists(os.path.join(self.store_for(self.mode), "target")))
        self.assertSbxError(self.sbx_cmd(["run", "--net-log", "/dev/null", fixture(BUSYBOX), "true"]),
                            contains="not a regular file")
        fifo = os.path.join(self.store_for(self.mode), "fifo")
        os.mkfifo(fifo)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(fifo, pw.pw_uid, pw.pw_gid)
        self.assertSbxError(self.sbx_cmd(["run", "--net-log", fifo, fixture(BUSYBOX), "true"],
                                         timeout=20), contains="--net-log")
        self.assertSbxError(self.sbx_cmd(["run", "--network", "none", "--net-log", log,
                                          fixture(BUSYBOX), "true"]), contains="--net-log")

    def test_network_none(self):
        r = self.sandbox("ls /sys/class/net; cat /etc/resolv.conf", opts=["--network", "none"])
        self.assertEqual(r.out.split()[0], "lo", r)
        self.assertEqual(r.out.split("\n")[1].startswith("#"), True)

    def test_network_host(self):
        r = self.sandbox("ls /sys/class/net", opts=["--network", "host"])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(r.out.split()), sorted(os.listdir("/sys/class/net")))

    def test_tun_unavailable(self):
        """No /dev/net/tun: made from outside, in a mount namespace of the
        test's own where an empty tmpfs hides /dev/net (sbx has no switch)."""
        hide = 'mount -t tmpfs none /dev/net && exec "$@"'
        r = self.run_as(["unshare", "-Urm", "sh", "-c", hide, "sh", self.sbx, "run",
                         "--root", self.store_for(self.mode), fixture(BUSYBOX), "true"])
        line = self.assertSbxError(r, contains="--network none")
        self.assertIn("cannot open /dev/net/tun: No such file or directory", line)
        self.assertIn("0666", line)


DNS_SERVER = r'''
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("dns-ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    qid, = struct.unpack("!H", q[:2])
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    question = q[12:end + 5]
    ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 77])
    s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + ans, peer)
'''


class TestDns(SbxTestCase):
    """10.0.2.3 answers from the host's resolver: here one on 127.0.0.1:53
    inside a sealed network namespace (unshare -Urn), so nothing leaves."""
    mode = "single"

    def test_resolve_through_10_0_2_3(self):
        if (os.stat("/dev/net/tun").st_mode & 0o006) != 0o006:
            self.skipTest("/dev/net/tun is not mode 0666 here (CI makes it so)")
        server = os.path.join(self.tmp, "dns.py")
        with open(server, "w") as f:
            f.write(DNS_SERVER)
        resolv = os.path.join(self.tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\n")
        os.chmod(server, 0o644)
        os.chmod(resolv, 0o644)
        script = """
ip link set lo up
python3 "$DNS" > "$TMPD/dns.log" 2>&1 &
DNSPID=$!
trap 'kill $DNSPID' EXIT
for i in $(seq 50); do grep -q dns-ready "$TMPD/dns.log" 2>/dev/null && break; sleep 0.1; done
SBX_NET_RESOLV_CONF="$RESOLV" "$SBX" run -q --userns single --root "$TMPD/store-dns" "$IMAGE" \
    nslookup sbx-test.example 10.0.2.3
echo "rc=$?"
SBX_NET_RESOLV_CONF="$RESOLV" "$SBX" run -q --userns single --root "$TMPD/store-dns" \
    --net-allow 10.0.2.2:80 "$IMAGE" nslookup sbx-test.example 10.0.2.3 >/dev/null 2>&1
echo "denied-rc=$?"
SBX_NET_RESOLV_CONF="$RESOLV" "$SBX" run -q --userns single --root "$TMPD/store-dns" \
    --net-allow dns "$IMAGE" nslookup sbx-test.example 10.0.2.3 >/dev/null 2>&1
echo "allowed-rc=$?"
"""
        r = self.run_as(["unshare", "-Urn", "sh", "-c", script],
                        env={"DNS": server, "RESOLV": resolv, "TMPD": self.store_for(self.mode),
                             "SBX": self.sbx,
                             "IMAGE": fixture(BUSYBOX)})
        self.assertIn("rc=0", r.out, r)
        self.assertIn("192.0.2.77", r.out, r)
        self.assertIn("allowed-rc=0", r.out, r)
        self.assertNotIn("denied-rc=0", r.out, r)


class TestHelperEnvironment(SbxTestCase):
    """Every program sbx starts (sbx-store for imports and seccomp, sbx-net,
    and sbx-store exec'd for load) gets an explicit environment: the
    sanitizer settings, and for sbx-store where the store is; never the
    user's secrets. Seen by tracing the execve calls themselves."""
    mode = "single"  # strace drops setuid: no newuidmap

    SECRET = {"AWS_SECRET_ACCESS_KEY": "sbx-test-secret", "GITHUB_TOKEN": "sbx-test-token"}

    def traced_execs(self, args):
        if not shutil.which("strace"):
            self.skipTest("strace is not installed")
        log = os.path.join(self.store_for(self.mode), "strace.log")
        cmd = ["strace", "-f", "-qq", "-v", "-s", "65536", "-e", "trace=execve", "-e",
               "signal=none", "-o", log, self.sbx] + args
        env = dict(self.SECRET)
        # LeakSanitizer cannot run under ptrace; the rest of ASan can.
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        r = self.run_as(cmd, env=env)
        with open(log) as f:
            execs = [l for l in f if "execve(" in l and "= 0" in l]
        return r, execs

    def check(self, execs, helper, allowed):
        lines = [l for l in execs if '/%s", [' % helper in l]
        self.assertTrue(lines, "no execve of %s" % helper)
        for l in lines:
            self.assertNotIn("sbx-test-secret", l)
            self.assertNotIn("sbx-test-token", l)
            env = l.rsplit("], [", 1)[1].split("]")[0]
            names = {e.strip(' "').split("=")[0] for e in env.split('", "') if e.strip(' "')}
            # the sanitizers' settings go to every helper; SBX_TEST_TAG is the
            # harness's own marker, SBX_NET_SPARE its setting (SBX_* variables:
            # sbx-store gets those)
            sanitizers = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}
            harness = {"SBX_TEST_TAG", "SBX_NET_SPARE"} if any(n.startswith("SBX_") for n in allowed) else set()
            self.assertLessEqual(names, allowed | sanitizers | harness, l)

    def test_run_helpers(self):
        store = {"HOME", "LANG", "PATH", "SBX_SUBUID_FILE", "SBX_SUBGID_FILE"}
        r, execs = self.traced_execs(["run", "-q", "--userns", "single", "--root",
                                      os.path.join(self.store_for(self.mode), "s"),
                                      fixture(BUSYBOX), "true"])
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(any("sbx-test-secret" in l for l in execs if '/sbx", [' in l))
        self.check(execs, "sbx-store", store)
        self.check(execs, "sbx-net", set())

    def test_load_exec(self):
        r, execs = self.traced_execs(["load", "-q", "--root",
                                      os.path.join(self.store_for(self.mode), "s"),
                                      fixture(BUSYBOX)])
        self.assertEqual(r.rc, 0, r)
        self.check(execs, "sbx-store", {"HOME", "LANG", "PATH", "SBX_SUBUID_FILE", "SBX_SUBGID_FILE"})



class TestTcpRelay(SbxTestCase):
    """Issue 15: --network slirp:tcp_relay=true relays the sandbox's
    outbound TCP connections at the socket level (src/net/relay.c) instead
    of through libslirp's TCP: the bytes never cross tap0, the sandbox's
    sockets stay its own, and the policy decides as it does for libslirp."""
    mode = "single"
    RELAY = ["--network", "slirp:allow_host_loopback=true,tcp_relay=true"]

    def setUp(self):
        super().setUp()
        if (os.stat("/dev/net/tun").st_mode & 0o006) != 0o006:
            self.skipTest("/dev/net/tun is not mode 0666 here (CI makes it so)")
        self.servers = Servers()

    def tearDown(self):
        self.servers.close()
        super().tearDown()

    sandbox = TestNetwork.sandbox
    udp = TestNetwork.udp
    read_net_log = TestNetwork.read_net_log
    helper_pid = TestNetwork.helper_pid

    def report(self, name):
        path = os.path.join(self.store_for(self.mode), name)
        with open(path) as f:
            return json.load(f)["network"]

    def test_bulk_both_ways_relayed(self):
        """8 MiB each way, checked by SHA-256; the run report says they went
        through the relay (libslirp saw only the DNS-free rest: no frames of
        them on tap0)."""
        want = hashlib.sha256(BULK).hexdigest()
        rep = os.path.join(self.store_for(self.mode), "relay.json")
        r = self.sandbox("wget -q -O /tmp/bulk http://10.0.2.2:%d/bulk && sha256sum /tmp/bulk && "
                         "nc 10.0.2.2 %d < /tmp/bulk" % (self.servers.http_port,
                                                          self.servers.sink_port),
                         opts=self.RELAY + ["--report", rep], timeout=90)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split(), [want, "/tmp/bulk", want], r)
        net = self.report("relay.json")
        self.assertEqual(net["relayed_connections"], 2, net)
        self.assertGreater(net["relayed_rx_bytes"], len(BULK), net)
        self.assertGreater(net["relayed_tx_bytes"], len(BULK), net)
        self.assertLess(net["tx_bytes"] + net["rx_bytes"], 1 << 20, net)
        # without the relay the same counters are null
        r = self.sandbox("true", opts=["--report", rep])
        self.assertIsNone(self.report("relay.json")["relayed_connections"])

    def test_connect_answers_as_the_kernel_would(self):
        """Blocking and non-blocking connects: connected (the socket the
        program holds is of its own namespace, not a host socket), a
        half-close carried through, and a closed port refused."""
        port, closed = self.servers.echo_port, free_port()
        for how in ("block", "nonblock"):
            r = self.udp("tcp", "10.0.2.2", str(port), "ping-" + how, how, opts=self.RELAY)
            self.assertEqual(r.rc, 0, r)
            lines = [l for l in r.out.splitlines() if l != "in progress"]
            self.assertEqual(lines, ["connected", "own namespace", "echo:ping-" + how], r)
            r = self.udp("tcp", "10.0.2.2", str(closed), "x", how, opts=self.RELAY)
            self.assertEqual((r.rc, r.out.splitlines()[-1]), (1, "Connection refused"), r)

    def test_policy_decides_as_for_libslirp(self):
        """What libslirp would refuse is not relayed: host loopback without
        allow_host_loopback, a port --net-allow does not list (logged and
        counted as refused by sbx-net). What it allows is relayed and logged."""
        port = self.servers.echo_port
        rep = os.path.join(self.store_for(self.mode), "policy.json")
        log = os.path.join(self.store_for(self.mode), "policy.jsonl")
        r = self.udp("tcp", "10.0.2.2", str(port), "x", "block",
                     opts=["--network", "slirp:tcp_relay=true", "--report", rep])
        self.assertEqual(r.rc, 1, r)
        self.assertNotIn("connected", r.out, r)
        self.assertEqual(self.report("policy.json")["relayed_connections"], 0)
        allow = self.RELAY + ["--report", rep, "--net-log", log]
        r = self.udp("tcp", "10.0.2.2", str(port), "x", "block",
                     opts=allow + ["--net-allow", "10.0.2.2:%d/tcp" % (port + 1)])
        self.assertEqual(r.rc, 1, r)
        net = self.report("policy.json")
        self.assertEqual((net["relayed_connections"], net["refused_connections"]), (0, 1), net)
        self.assertEqual([(x["dst"], x["port"], x["verdict"], x.get("reason"))
                          for x in self.read_net_log(log)],
                         [("10.0.2.2", port, "refused", "not-allowed")])
        r = self.udp("tcp", "10.0.2.2", str(port), "x", "block",
                     opts=allow + ["--net-allow", "10.0.2.2:%d/tcp" % port])
        self.assertEqual((r.rc, r.out.splitlines()[-1]), (0, "echo:x"), r)
        net = self.report("policy.json")
        self.assertEqual((net["relayed_connections"], net["refused_connections"]), (1, 0), net)
        self.assertEqual([(x["dst"], x["port"], x["verdict"]) for x in self.read_net_log(log)],
                         [("10.0.2.2", port, "allowed")])

    def test_relay_is_confined(self):
        """The relay holds host sockets and reads the sandbox's memory: it
        runs with no capability, no_new_privs, a seccomp filter, nothing of
        the user's environment, and no fd but its own sockets."""
        p = self.popen(["run", "-q", "-i"] + self.RELAY + [fixture(BUSYBOX), "sh", "-c",
                        "echo up; read x"], env={"SBX_TEST_TOKEN": "s3cret-t0ken"},
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"up\n")
            pid = None
            for _ in range(100):
                out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(p.pid)],
                                     stdout=subprocess.PIPE).stdout.decode()
                pids = [int(l.split()[0]) for l in out.splitlines() if "sbx-relay" in l]
                if pids:
                    pid = pids[0]
                    break
                time.sleep(0.1)
            self.assertIsNotNone(pid, out)
            with open("/proc/%d/status" % pid) as f:
                st = dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)
            self.assertEqual(st["Seccomp"].strip(), "2", st)
            self.assertEqual(st["NoNewPrivs"].strip(), "1", st)
            for cap in ("CapPrm", "CapEff", "CapInh", "CapAmb"):
                self.assertEqual(int(st[cap], 16), 0, (cap, st))
            fds = {int(f): os.readlink("/proc/%d/fd/%s" % (pid, f))
                   for f in os.listdir("/proc/%d/fd" % pid)}
            for n in (0, 1, 2):
                self.assertEqual(fds.pop(n), "/dev/null", fds)
            # its sockets, epoll, the notification fd, and a spare /dev/null
            # (given up to refuse a connection when it runs out of fds)
            self.assertTrue(all(t.startswith(("socket:", "anon_inode:")) or t == "/dev/null"
                                for t in fds.values()), fds)
            self.assertIn("anon_inode:seccomp notify", fds.values())
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
            self.assertNotIn(b"s3cret-t0ken", env)
            self.assertNotIn(b"SBX_TEST_TOKEN", env)
            p.communicate(input=b"\n", timeout=30)
        finally:
            p.kill()

    def test_a_second_thread_is_relayed(self):
        """The notification names the calling thread: a connect from any
        thread is relayed (a pidfd for a thread, PIDFD_THREAD)."""
        rep = os.path.join(self.store_for(self.mode), "thread.json")
        r = self.udp("tcp", "10.0.2.2", str(self.servers.echo_port), "t", "thread",
                     opts=self.RELAY + ["--report", rep])
        self.assertEqual((r.rc, r.out.splitlines()[-1]), (0, "echo:t"), r)
        self.assertEqual(self.report("thread.json")["relayed_connections"], 1)

    def test_an_ipv6_socket_to_an_ipv4_mapped_address_is_relayed(self):
        """Java and others connect IPv4 addresses from IPv6 sockets
        (::ffff:10.0.2.2): relayed the same way."""
        rep = os.path.join(self.store_for(self.mode), "mapped.json")
        r = self.udp("tcp", "10.0.2.2", str(self.servers.echo_port), "m", "mapped",
                     opts=self.RELAY + ["--report", rep])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines(), ["connected", "own namespace", "echo:m"], r)
        self.assertEqual(self.report("mapped.json")["relayed_connections"], 1)

    def test_a_slow_socket_does_not_hold_the_relay(self):
        """Review: the relay connected the sandbox's socket to its listener
        with a blocking call; a program that made that connect slow (its SYNs
        source-routed through an address nobody has) held the relay, and
        every connect in the sandbox, for hours. Now that socket fails with
        ETIMEDOUT after a few seconds while other connects go on."""
        port = self.servers.echo_port
        r = self.sbx_cmd(["run", "-q"] + self.RELAY +
                         ["-v", fixture("udp") + ":/udp:ro", fixture(BUSYBOX), "sh", "-c",
                          "/udp tcp 10.0.2.2 %d slow slow >/tmp/slow 2>&1 & sleep 1; "
                          "/udp tcp 10.0.2.2 %d fast block; wait; cat /tmp/slow" % (port, port)],
                         timeout=120)
        self.assertIn("echo:fast", r.out, r)
        self.assertIn("Connection timed out", r.out, r)

    def test_the_relay_takes_nothing_of_the_pids_limit(self):
        """Review: in range mode the relay runs as the sandbox namespace's
        owner uid, whose processes --pids-limit counts: the limit is one
        higher there, so the sandbox keeps all of it."""
        r = self.sbx_cmd(["run", "-q"] + self.RELAY + ["--pids-limit", "64",
                          fixture("probe.tar"), "forklimit"])
        self.assertEqual(r.rc, 0, r)
        # init and the probe count too: 62 more, then EAGAIN (as without the relay)
        self.assertIn("forklimit 62 EAGAIN\n", r.out)

    def test_abandoned_connects_do_not_stop_the_relay(self):
        """Review: 300 non-blocking connects whose sandbox end never reached
        the relay, their sockets closed at once, left host connections
        waiting for ever, and every later connect failed (ENOBUFS). Now they
        expire, and past the relay's bound connects go through libslirp."""
        port = self.servers.echo_port
        r = self.sbx_cmd(["run", "-q"] + self.RELAY +
                         ["-v", fixture("udp") + ":/udp:ro", fixture(BUSYBOX), "sh", "-c",
                          "i=0; while [ $i -lt 300 ]; do /udp tcp 10.0.2.2 %d x abandon "
                          ">/dev/null; i=$((i+1)); done; /udp tcp 10.0.2.2 %d after block"
                          % (port, port)], timeout=120)
        self.assertEqual((r.rc, r.out.splitlines()[-1] if r.out else ""), (0, "echo:after"), r)

    def test_a_reset_with_bytes_queued_does_not_spin_the_relay(self):
        """Review: a program that filled a connection towards a host server
        that does not read, then reset its end, left the relay at 100 % CPU
        for the rest of the run (bytes queued towards the host, a hang-up
        reported for ever). Its CPU time after the reset stays small."""
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]
        held = []
        threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
        p = self.popen(["run", "-q"] + self.RELAY + [fixture("udp.tar"), "fillreset", "10.0.2.2",
                                                     str(port), "5"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"reset\n")
            out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(p.pid)],
                                 stdout=subprocess.PIPE).stdout.decode().split()
            relay = [int(a) for a, b in zip(out[::2], out[1::2]) if b == "sbx-relay"]
            self.assertEqual(len(relay), 1, out)

            def cpu():
                with open("/proc/%d/stat" % relay[0]) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            before = cpu()
            time.sleep(3)
            self.assertLess(cpu() - before, 0.5)
            p.communicate(timeout=30)
        finally:
            p.kill()
            srv.close()

    def test_nothing_survives_a_killed_sbx(self):
        """Review: in range mode the relay becomes the owner uid, which
        cleared its parent-death signal: it outlived a killed sbx."""
        p = self.popen(["run", "-q"] + self.RELAY + [fixture(BUSYBOX), "sh", "-c",
                        "echo ready; exec sleep 1000"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"ready\n")
            out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(p.pid)],
                                 stdout=subprocess.PIPE).stdout.decode().split()
            relay = [int(a) for a, b in zip(out[::2], out[1::2]) if b == "sbx-relay"]
            self.assertEqual(len(relay), 1, out)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)

            def gone():
                try:
                    with open("/proc/%d/stat" % relay[0]) as f:
                        return f.read().split(")")[1].split()[0] in ("Z", "X")
                except FileNotFoundError:
                    return True
            self.assertTrue(self.wait_for(gone), "the relay outlived sbx")
        finally:
            p.kill()

    def test_without_a_relay_option_nothing_changes(self):
        """The option only for slirp; without it no relay process at all."""
        r = self.sbx_cmd(["run", "-q", "--network", "none:tcp_relay=true", fixture(BUSYBOX), "true"])
        self.assertSbxError(r, 125, contains="unknown option 'tcp_relay=true'")
        r = self.sandbox("ls /proc/1/fd | wc -l")
        self.assertEqual(r.rc, 0, r)


class TestTcpRelayRange(TestTcpRelay):
    mode = "range"

UDP_ECHO = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("udp-ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo:" + data, peer)
'''

TCP_HELLO = r'''
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
print("tcp-ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"hello-from-" + sys.argv[1].encode() + b"\n")
    c.close()
'''

# Inside `unshare -Urn`: a network namespace of the test's own, where lo is
# up and also carries 192.0.2.1 (TEST-NET-1), standing for "another address
# of the host". Servers are started with `serve FILE ADDR PORT` and waited for.
SEALED_PRELUDE = r'''
SERVERS=
trap 'kill $SERVERS 2>/dev/null' EXIT
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
serve() {
    python3 "$1" "$2" "$3" > "$TMPD/serve-$3.log" 2>&1 &
    SERVERS="$SERVERS $!"
    for i in $(seq 100); do grep -q ready "$TMPD/serve-$3.log" 2>/dev/null && return; sleep 0.1; done
    echo "server on $2:$3 did not start"; cat "$TMPD/serve-$3.log"
}
sbx() { "$SBX" run -q --userns single --root "$TMPD/store-sealed" "$@"; }
'''


class TestSealedNetwork(SbxTestCase):
    """Servers that need an address or port an unprivileged user cannot have
    on the host (port 67, another host address) live in a network namespace
    the test makes (unshare -Urn); sbx runs inside it, so sbx-net's "host"
    is that namespace and nothing leaves it."""
    mode = "single"

    def setUp(self):
        super().setUp()
        if (os.stat("/dev/net/tun").st_mode & 0o006) != 0o006:
            self.skipTest("/dev/net/tun is not mode 0666 here (CI makes it so)")
        for name, text in (("udp_echo.py", UDP_ECHO), ("tcp_hello.py", TCP_HELLO)):
            path = os.path.join(self.tmp, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)

    def sealed(self, script, env=None):
        e = {"TMPD": self.store_for(self.mode), "SBX": self.sbx, "IMAGE": fixture(BUSYBOX),
             "UDP": fixture("udp.tar"), "UDP_ECHO": os.path.join(self.tmp, "udp_echo.py"),
             "TCP_HELLO": os.path.join(self.tmp, "tcp_hello.py")}
        e.update(env or {})
        return self.run_as(["unshare", "-Urn", "sh", "-c", SEALED_PRELUDE + script], env=e)

    def test_udp_67_is_not_a_way_around_the_allowlist(self):
        """Issue 9: UDP to port 67 passed --net-allow whatever the address;
        only libslirp's own DHCP server (10.0.2.2, broadcast) may get it."""
        r = self.sealed("""
serve "$UDP_ECHO" 192.0.2.1 67
sbx "$UDP" send 192.0.2.1 67 exfil; echo "open-rc=$?"
sbx --net-allow 10.9.9.9/32:443/tcp "$UDP" send 192.0.2.1 67 exfil; echo "refused-rc=$?"
""")
        self.assertIn("echo:exfil\nopen-rc=0", r.out, r)  # the server is there
        self.assertIn("refused-rc=1", r.out, r)
        self.assertEqual(r.out.count("echo:exfil"), 1, r)

    def test_host_addresses(self):
        """Issue 9: with host loopback off, services on the host's other
        addresses were reachable. slirp:allow_host_addresses=false refuses
        them, and under --net-allow they pass only when a rule names one
        exactly. (192.0.2.1 is an address of the sealed namespace.)"""
        r = self.sealed("""
serve "$TCP_HELLO" 192.0.2.1 2222
try() { label=$1; shift; sbx "$@" "$IMAGE" nc -w 5 192.0.2.1 2222 </dev/null | sed "s/^/$label: /"; }
try default
try refused --network slirp:allow_host_addresses=false
try cidr --net-allow 0.0.0.0/0:2222/tcp
try exact --net-allow 192.0.2.1/32:2222/tcp
try cidr-asked --net-allow 0.0.0.0/0:2222/tcp --network slirp:allow_host_addresses=true
sbx --network slirp:allow_host_addresses=false --net-log "$TMPD/h.jsonl" "$IMAGE" \
    nc -w 5 192.0.2.1 2222 </dev/null
""")
        got = {l.split(": ")[0] for l in r.out.splitlines() if l.endswith(": hello-from-192.0.2.1")}
        self.assertEqual(got, {"default", "exact", "cidr-asked"}, r)
        recs = TestNetwork("test_net_log").read_net_log(
            os.path.join(self.store_for(self.mode), "h.jsonl"))
        self.assertEqual([(x["dst"], x["port"], x["verdict"], x["reason"]) for x in recs],
                         [("192.0.2.1", 2222, "refused", "host-address")], recs)

    def test_relay_to_another_address_and_its_refusal(self):
        """Issue 15: the relay connects any address the policy allows, not
        only the host's loopback: a server on 192.0.2.1 (an address of the
        sealed namespace, standing for the host's LAN address) is reached
        through the relay; with allow_host_addresses=false it is refused
        (libslirp refuses it as without the relay, and --net-log says so)."""
        r = self.sealed("""
serve "$TCP_HELLO" 192.0.2.1 2223
sbx --network slirp:tcp_relay=true --report "$TMPD/r1.json" "$IMAGE" nc -w 5 192.0.2.1 2223 </dev/null
echo "open-rc=$?"
sbx --network slirp:tcp_relay=true,allow_host_addresses=false --report "$TMPD/r2.json" \
    --net-log "$TMPD/r2.jsonl" "$IMAGE" nc -w 5 192.0.2.1 2223 </dev/null
echo "refused-rc=$?"
""")
        self.assertIn("hello-from-192.0.2.1\nopen-rc=0", r.out, r)
        self.assertNotIn("refused-rc=0", r.out, r)
        self.assertEqual(r.out.count("hello-from"), 1, r)
        store = self.store_for(self.mode)
        with open(os.path.join(store, "r1.json")) as f:
            self.assertEqual(json.load(f)["network"]["relayed_connections"], 1)
        with open(os.path.join(store, "r2.json")) as f:
            net = json.load(f)["network"]
        self.assertEqual((net["relayed_connections"], net["refused_connections"]), (0, 1), net)
        recs = TestNetwork("test_net_log").read_net_log(os.path.join(store, "r2.jsonl"))
        self.assertEqual([(x["dst"], x["port"], x["verdict"], x["reason"]) for x in recs],
                         [("192.0.2.1", 2223, "refused", "host-address")], recs)

    def test_net_log_dns(self):
        """--net-log records DNS queries to 10.0.2.3 with the name asked
        for (a resolver on the sealed namespace's 127.0.0.1)."""
        resolv = os.path.join(self.tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\n")
        dns = os.path.join(self.tmp, "dns.py")
        with open(dns, "w") as f:
            f.write(DNS_SERVER)
        for p in (resolv, dns):
            os.chmod(p, 0o644)
        r = self.sealed("""
serve "$DNS" - 53
sbx --net-allow dns --net-log "$TMPD/allowed.jsonl" "$IMAGE" nslookup sbx-test.example 10.0.2.3
echo "allowed-rc=$?"
sbx --net-allow 10.0.2.2:80 --net-log "$TMPD/refused.jsonl" "$IMAGE" nslookup bad.example 10.0.2.3
echo "refused-rc=$?"
""", env={"SBX_NET_RESOLV_CONF": resolv, "DNS": dns})
        self.assertIn("192.0.2.77", r.out, r)
        self.assertIn("allowed-rc=0", r.out, r)
        self.assertNotIn("refused-rc=0", r.out, r)
        net = TestNetwork("test_net_log")
        allowed = net.read_net_log(os.path.join(self.store_for(self.mode), "allowed.jsonl"))
        dns_recs = [x for x in allowed if "dns" in x]
        self.assertTrue(dns_recs, allowed)
        for x in dns_recs:
            self.assertEqual((x["proto"], x["dst"], x["port"], x["dns"], x["verdict"]),
                             ("udp", "10.0.2.3", 53, "sbx-test.example", "allowed"), x)
        self.assertIn("A", {x["qtype"] for x in dns_recs})
        refused = net.read_net_log(os.path.join(self.store_for(self.mode), "refused.jsonl"))
        self.assertTrue(refused)
        self.assertTrue(all(x.get("dns") == "bad.example" and x["verdict"] == "refused"
                            for x in refused), refused)


if __name__ == "__main__":
    unittest.main()
