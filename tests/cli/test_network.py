"""Networking through libslirp. Traffic stays on this machine: servers on
127.0.0.1 reached through 10.0.2.2, ports forwarded to 127.0.0.1, and DNS from
a resolver inside a sealed network namespace the test makes itself."""
import http.server
import os
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


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b"hello from the host\n"
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


class TestNetwork(SbxTestCase):
    mode = "single"

    def setUp(self):
        super().setUp()
        if not os.access("/dev/net/tun", os.R_OK | os.W_OK) or \
                (os.stat("/dev/net/tun").st_mode & 0o006) != 0o006:
            self.skipTest("/dev/net/tun is not mode 0666 here (CI makes it so)")
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
            body = None
            for _ in range(50):
                try:
                    body = urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port,
                                                  timeout=5).read()
                    break
                except OSError:
                    time.sleep(0.1)
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
        self.assertSbxError(self.sbx_cmd(["run", "-p", "99999:80", fixture(BUSYBOX), "true"]))
        self.assertSbxError(self.sbx_cmd(["run", "--net-allow", "not-an-ip", fixture(BUSYBOX), "true"]))

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
        self.assertLessEqual(took, 2, "a refused connection must fail fast (RST), not time out")

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
kill %1
"""
        r = self.run_as(["unshare", "-Urn", "sh", "-c", script],
                        env={"DNS": server, "RESOLV": resolv, "TMPD": self.store_for(self.mode),
                             "SBX": self.sbx,
                             "IMAGE": fixture(BUSYBOX)})
        self.assertIn("rc=0", r.out, r)
        self.assertIn("192.0.2.77", r.out, r)
        self.assertIn("allowed-rc=0", r.out, r)
        self.assertNotIn("denied-rc=0", r.out, r)


if __name__ == "__main__":
    unittest.main()
