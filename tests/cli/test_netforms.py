"""The forms of -p, --net-allow, --network and --mtu the main network tests
do not reach, and raw frames sent out of a real sandbox's tap0 (CAP_NET_RAW,
AF_PACKET) to the host's loopback, in fragments and over IPv6 — through a
real sbx-net, not only in tests/unit/test_policy.c. Servers listen only on
127.0.0.1 and ::1."""
import os
import socket
import subprocess
import time
import unittest

import test_network as tn
from sbxtest import SbxTestCase, fixture

BUSYBOX = "busybox-legacy.tar"
LOOP = ["--network", "slirp:allow_host_loopback=true"]


def tun_ok():
    return os.access("/dev/net/tun", os.F_OK) and (os.stat("/dev/net/tun").st_mode & 0o006) == 0o006


class TestNetOptionForms(SbxTestCase):
    """Refusals are parsed before any import: no /dev/net/tun needed."""
    mode = "single"

    def test_publish_and_allow_need_slirp(self):
        for net in ("host", "none"):
            for opt in (["-p", "127.0.0.1:8080:80"], ["--net-allow", "10.0.2.2:80"]):
                with self.subTest(network=net, opt=opt[0]):
                    r = self.sbx_cmd(["run", "--network", net] + opt + [fixture(BUSYBOX), "true"])
                    self.assertSbxError(r, contains="-p, --net-allow and --net-log need --network slirp")

    def test_mtu_bounds(self):
        for mtu in ("575", "65521", "-1"):
            with self.subTest(mtu=mtu):
                r = self.sbx_cmd(["run", "--mtu", mtu, fixture(BUSYBOX), "true"])
                self.assertSbxError(r, contains="is not within 576..65520")
        r = self.sbx_cmd(["run", "--network", "slirp:mtu=575", fixture(BUSYBOX), "true"])
        self.assertSbxError(r, contains="--mtu: 575 is not within 576..65520")


class NetCase(SbxTestCase):
    mode = "single"

    def setUp(self):
        super().setUp()
        if not tun_ok():
            self.skipTest("/dev/net/tun is not mode 0666 here (CI makes it so)")
        self.servers = tn.Servers()
        self.addCleanup(self.servers.close)

    def sandbox(self, script, opts=()):
        return self.sbx_cmd(["run", "-q"] + list(opts) + [fixture(BUSYBOX), "sh", "-c", script])

    def connects(self, port, opts):
        """Can the sandbox open a TCP connection to the host's port (10.0.2.2)?"""
        r = self.sandbox("nc -w 5 10.0.2.2 %d </dev/null && echo connected || echo refused"
                         % port, opts=LOOP + list(opts))
        self.assertIn(r.out.strip(), ("connected", "refused"), r)
        return r.out.strip() == "connected"


class TestNetForms(NetCase):
    def test_mtu_edges_accepted(self):
        for mtu in ("576", "65520"):
            with self.subTest(mtu=mtu):
                r = self.sandbox("cat /sys/class/net/tap0/mtu", opts=["--mtu", mtu])
                self.assertEqual((r.rc, r.out), (0, mtu + "\n"), r)

    def test_port_range_rule(self):
        port = self.servers.http_port
        self.assertTrue(self.connects(port, ["--net-allow", "10.0.2.2:%d-%d" % (port - 1,
                                                                               port + 1)]))
        self.assertTrue(self.connects(port, ["--net-allow", "10.0.2.2:%d-%d/tcp" % (port, port)]))
        self.assertFalse(self.connects(port, ["--net-allow", "10.0.2.2:%d-%d" % (port + 1,
                                                                                port + 9)]))
        self.assertFalse(self.connects(port, ["--net-allow", "10.0.2.2:%d/udp" % port]))

    def test_bare_ip_and_cidr_rules(self):
        port = self.servers.http_port
        for rule, ok in (("10.0.2.2", True), ("10.0.2.0/24", True), ("10.0.2.2/32", True),
                         ("10.0.2.3", False), ("10.0.3.0/24", False)):
            with self.subTest(rule=rule):
                self.assertEqual(self.connects(port, ["--net-allow", rule]), ok)

    def test_repeated_rules(self):
        port = self.servers.http_port
        self.assertTrue(self.connects(port, ["--net-allow", "10.0.2.2:1-10", "--net-allow",
                                             "10.0.2.2:%d" % port, "--net-allow", "dns"]))
        self.assertFalse(self.connects(port, ["--net-allow", "10.0.2.2:1-10", "--net-allow",
                                              "10.0.2.3:%d" % port]))

    def test_publish_without_host_ip(self):
        port = tn.free_port()
        p = self.popen(["run", "-q", "-p", "%d:8080" % port, fixture(BUSYBOX), "sh", "-c",
                        "mkdir /www && echo no-host-ip > /www/index.html && "
                        "httpd -p 8080 -h /www && echo up && sleep 30"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"up\n")
            body = tn.http_get_retry("http://127.0.0.1:%d/index.html" % port)
            self.assertEqual(body, b"no-host-ip\n")
        finally:
            p.kill()
            p.communicate()


class TestRawFrames(NetCase):
    """Frames written to tap0 directly: the sandbox's routing cannot stop
    them, only sbx-net can."""

    def raw(self, mode, dst, port, msg, opts=()):
        r = self.sbx_cmd(["run", "-q"] + list(opts) + [fixture("rawpkt.tar"), mode, dst,
                                                       str(port), msg])
        self.assertEqual((r.rc, r.out), (0, "sent\n"), r)
        return r

    def received(self, sock, msg, wait=2.0):
        """Did `msg` (str or bytes) reach the host-side socket within `wait` s?"""
        sock.settimeout(0.2)
        end = time.time() + wait
        while time.time() < end:
            try:
                data, _ = sock.recvfrom(2048)
            except OSError:
                continue
            if data == (msg.encode() if isinstance(msg, str) else msg):
                return True
        return False

    def udp_server(self, family=socket.AF_INET, host="127.0.0.1"):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((host, 0))
        self.addCleanup(s.close)
        return s, s.getsockname()[1]

    def test_raw_to_host_loopback(self):
        s, port = self.udp_server()
        self.raw("udp", "127.0.0.1", port, "raw-127-default")
        self.assertFalse(self.received(s, "raw-127-default"),
                         "a raw packet to 127.0.0.1 reached the host's loopback")
        self.raw("udp", "127.0.0.2", port, "raw-127-2")  # the whole of 127/8
        self.assertFalse(self.received(s, "raw-127-2", wait=1.0))
        # the control: the same frames do arrive when loopback is allowed
        self.raw("udp", "127.0.0.1", port, "raw-127-allowed", opts=LOOP)
        self.assertTrue(self.received(s, "raw-127-allowed"), "the raw path itself is broken")
        self.raw("udp", "10.0.2.2", port, "raw-gw-allowed", opts=LOOP)
        self.assertTrue(self.received(s, "raw-gw-allowed"))

    def test_fragments_dropped_with_an_allowlist(self):
        s, port = self.udp_server()
        allow = LOOP + ["--net-allow", "10.0.2.2:%d/udp" % port]
        msg = "fragmented-datagram-of-some-length"

        def sent(m):  # rawpkt puts the port at bytes 10-11 (see tests/rawpkt.c)
            b = bytearray(m.encode())
            b[10:12] = port.to_bytes(2, "big")
            return bytes(b)

        self.raw("frag", "10.0.2.2", port, msg, opts=allow)
        self.assertFalse(self.received(s, sent(msg)), "a fragmented datagram passed the allowlist")
        # controls: unfragmented passes the same allowlist; fragments pass
        # (reassembled by libslirp) when there is no allowlist
        self.raw("udp", "10.0.2.2", port, "whole", opts=allow)
        self.assertTrue(self.received(s, "whole"))
        self.raw("frag", "10.0.2.2", port, msg + "-no-list", opts=LOOP)
        self.assertTrue(self.received(s, sent(msg + "-no-list")),
                        "fragments never arrive at all: the drop above proves nothing")

    def test_ipv6_never_leaves(self):
        """(sbx-net drops IPv6 frames and libslirp runs without IPv6: this
        fails only if both stop holding.)"""
        try:
            s, port = self.udp_server(socket.AF_INET6, "::1")
        except OSError as e:
            self.skipTest("no ::1 here: %s" % e)
        for opts in ((), LOOP):
            with self.subTest(opts=opts):
                self.raw("udp6", "::1", port, "raw-v6", opts=opts)
                self.assertFalse(self.received(s, "raw-v6", wait=1.5), "an IPv6 packet left")


if __name__ == "__main__":
    unittest.main()
