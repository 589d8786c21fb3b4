"""sbx pull, login, logout and run --pull against a real registry.

Each test starts Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
a CA and a certificate made here (openssl), pushes fixtures with skopeo, and
pulls as the unprivileged test user. Misbehaviour (a token server, redirects,
tampering, dropped connections, 429) comes from small TLS fronts in this file
that proxy to the registry and log what they saw. Traffic: 127.0.0.1 only.
Every server is stopped in tearDown.
"""
import base64
import hashlib
import http.client
import http.server
import json
import os
import pwd
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import unittest
import urllib.parse

from sbxtest import SbxTestCase, fixture, IS_ROOT

TOOLS = ("docker-registry", "skopeo", "openssl", "htpasswd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pki(d):
    """A CA and a server certificate for 127.0.0.1 and localhost."""
    os.makedirs(d, exist_ok=True)

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=sbx test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
         "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "srv.crt", "-days", "2", "-extfile", "ext.cnf")
    cadir = os.path.join(d, "cadir")  # for skopeo: the CA alone
    os.makedirs(cadir, exist_ok=True)
    shutil.copy(os.path.join(d, "ca.crt"), cadir)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o755 if os.path.isdir(os.path.join(d, f)) else 0o644)
    return d


def client_context(pki):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    return ctx


class Registry:
    """docker-registry serve, TLS, optionally with htpasswd users."""

    def __init__(self, tmp, pki, users=None):
        self.pki = pki
        self.port = free_port()
        self.dir = os.path.join(tmp, "registry-%d" % self.port)
        os.makedirs(self.dir)
        auth = ""
        self.users = users or {}
        if users:
            lines = []
            for u, p in users.items():
                r = subprocess.run(["htpasswd", "-Bbn", u, p], check=True, capture_output=True,
                                   text=True)
                lines.append(r.stdout.strip())
            with open(os.path.join(self.dir, "htpasswd"), "w") as f:
                f.write("\n".join(lines) + "\n")
            auth = ("auth:\n  htpasswd:\n    realm: sbx-test\n    path: %s\n"
                    % os.path.join(self.dir, "htpasswd"))
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                    "storage:\n  filesystem:\n    rootdirectory: %s\n"
                    "http:\n  addr: 127.0.0.1:%d\n  tls:\n    certificate: %s\n    key: %s\n%s"
                    % (os.path.join(self.dir, "data"), self.port, os.path.join(pki, "srv.crt"),
                       os.path.join(pki, "srv.key"), auth))
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5,
                                                context=client_context(pki))
                c.request("GET", "/v2/")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("docker-registry did not start")
                time.sleep(0.1)

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def push(self, src, name, *extra):
        args = ["skopeo", "copy", "--quiet", "--dest-cert-dir", os.path.join(self.pki, "cadir")]
        if self.users:
            u, p = next(iter(self.users.items()))
            args += ["--dest-creds", "%s:%s" % (u, p)]
        subprocess.run(args + list(extra) + [src, "docker://%s/%s" % (self.host, name)],
                       check=True, capture_output=True, timeout=120)

    def manifest(self, name):
        """The raw manifest (as skopeo sees it) and its digest."""
        args = ["skopeo", "inspect", "--raw", "--cert-dir", os.path.join(self.pki, "cadir")]
        if self.users:
            u, p = next(iter(self.users.items()))
            args += ["--creds", "%s:%s" % (u, p)]
        raw = subprocess.run(args + ["docker://%s/%s" % (self.host, name)], check=True,
                             capture_output=True, timeout=60).stdout
        return json.loads(raw), "sha256:" + hashlib.sha256(raw).hexdigest()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Front:
    """A TLS proxy in front of the registry that logs every request and can
    misbehave: token auth (bearer), basic auth, blob redirects to another
    front, tampering, a dropped connection, 429."""

    def __init__(self, pki, upstream, host="127.0.0.1", **behaviour):
        self.pki = pki
        self.upstream = upstream
        self.port = free_port()
        self.host = host
        self.log = []
        self.lock = threading.Lock()
        self.bearer = behaviour.get("bearer", False)
        self.token_creds = behaviour.get("token_creds")  # (user, password) the token server wants
        self.token_max_uses = behaviour.get("token_max_uses", 1000)
        self.basic = behaviour.get("basic")  # (user, password)
        self.redirect_to = behaviour.get("redirect_to")  # another Front
        self.blob_repo = behaviour.get("blob_repo")  # for a blob host: /blob/<digest>
        self.tamper = behaviour.get("tamper", False)
        self.drop = behaviour.get("drop", False)
        self.drop_always = behaviour.get("drop_always", False)  # every layer answer cut short
        self.too_many = behaviour.get("too_many", 0)
        self.hostile = behaviour.get("hostile")  # huge-manifest, redirect-loop, ...
        # {tag: annotations}: the repository's :latest served for that tag
        # inside an image index whose one entry carries the annotations
        self.index_over = behaviour.get("index_over", {})
        # (what, bytes, every): a manifest or a layer blob sent `bytes` at a
        # time, one piece every `every` seconds (for at most a minute)
        self.trickle = behaviour.get("trickle")
        self.tokens = {}
        self.token_requests = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                front.handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        if behaviour.get("tls", True):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(pki, "srv.crt"), os.path.join(pki, "srv.key"))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hostport(self):
        return "%s:%d" % (self.host, self.port)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def blob_gets(self):
        with self.lock:
            return [(p, h) for p, h in self.log if "/blobs/" in p or p.startswith("/blob/")]

    def handle(self, h):
        path = h.path
        with self.lock:
            self.log.append((path, {k.lower(): v for k, v in h.headers.items()}))
        auth = h.headers.get("Authorization")
        if path.startswith("/token"):
            return self.serve_token(h, auth)
        if self.hostile == "huge-manifest" and "/manifests/" in path:
            return h.reply(200, b"{" + b" " * (5 << 20) + b"}",
                           [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
        if self.hostile == "redirect-loop" and "/manifests/" in path:
            return h.reply(307, b"", [("Location", path)])
        if self.hostile == "redirect-http" and "/blobs/" in path:
            return h.reply(302, b"", [("Location", "http://127.0.0.1:%d%s" % (self.port, path))])
        if self.hostile == "untyped-manifest" and "/manifests/" in path:
            # An OCI manifest without mediaType, under a Content-Type naming nothing
            r, body = self.upstream_get(h, path)
            m = json.loads(body)
            m.pop("mediaType", None)
            return h.reply(200, json.dumps(m).encode(), [("Content-Type", "x")])
        if self.hostile == "digest-array" and "/manifests/" in path:
            r, body = self.upstream_get(h, path)
            m = json.loads(body)
            m["layers"][0]["digest"] = ["a"]
            return h.reply(200, json.dumps(m).encode(),
                           [("Content-Type", r.getheader("Content-Type"))])
        if self.hostile == "long-location" and "/manifests/" in path:
            return h.reply(302, b"", [("Location", "/nowhere/" + "a" * 20000)])
        if self.hostile == "long-location" and path.startswith("/nowhere"):
            return h.reply(404, b"{}")
        if self.too_many and "/manifests/" in path:
            self.too_many -= 1
            return h.reply(429, b"slow down", [("Retry-After", "1")])
        if self.bearer:
            tok = auth[7:] if auth and auth.startswith("Bearer ") else None
            with self.lock:
                uses = self.tokens.get(tok)
                ok = uses is not None and uses < self.token_max_uses
                if ok:
                    self.tokens[tok] = uses + 1
            if not ok:
                scope = ""
                if path.startswith("/v2/") and len(path.split("/")) > 3:
                    repo = path[4:].rsplit("/", 2)[0]
                    scope = ',scope="repository:%s:pull"' % repo
                return h.reply(401, b"{}", [("WWW-Authenticate",
                                             'Bearer realm="https://%s/token",service="sbx-test"%s'
                                             % (self.hostport, scope))])
        if self.basic:
            want = "Basic " + base64.b64encode(("%s:%s" % self.basic).encode()).decode()
            if auth != want:
                return h.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="sbx-test"')])
        if self.redirect_to and "/blobs/" in path:
            digest = path.rsplit("/", 1)[1]
            return h.reply(307, b"", [("Location", "https://%s/blob/%s?X-Sig=secret"
                                       % (self.redirect_to.hostport, digest))])
        if "/manifests/" in path and path.rsplit("/", 1)[1] in self.index_over:
            return self.serve_index_over(h, path)
        if self.trickle and self.trickle[0] == "manifest" and "/manifests/" in path:
            return self.serve_trickle(h, 200, b"{" + b" " * (1 << 20) + b"}", [
                ("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
        if self.hostile == "content-length-long" and "/blobs/" in path:
            return self.serve_content_length_long(h, path)
        upstream_path = path
        if path.startswith("/blob/"):
            upstream_path = "/v2/%s/blobs/%s" % (self.blob_repo, path[6:].split("?")[0])
        r, body = self.upstream_get(h, upstream_path)
        out = [(k, r.getheader(k)) for k in ("Content-Type", "Docker-Content-Digest",
                                             "Content-Range") if r.getheader(k)]
        is_layer = "/blobs/" in upstream_path and len(body) > 10000
        if self.trickle and self.trickle[0] == "blob" and is_layer and r.status in (200, 206):
            return self.serve_trickle(h, r.status, body, out)
        if self.tamper and is_layer and r.status == 200:
            # The tar's last byte (end-of-archive padding): the files are
            # intact, only the digest can tell.
            body = body[:-1] + bytes([body[-1] ^ 0x01])
        if self.hostile == "long-blob" and is_layer and r.status == 200:
            body += b"\0" * 4096  # more than the descriptor says
        if self.drop and is_layer and r.status in (200, 206):
            self.drop = self.drop_always
            h.send_response(200)
            for k, v in out:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        h.reply(r.status, body, out)

    def serve_content_length_long(self, h, path):
        """A layer's every byte under a Content-Length 10 more, then the
        connection closed; a range from its end answered 416, as a correct
        registry does."""
        r, body = self.upstream_get(h, path, forward=("Accept",))
        if r.status != 200 or len(body) <= 10000:
            return h.reply(r.status, body)
        rng = h.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            if start >= len(body):
                return h.reply(416, b"", [("Content-Range", "bytes */%d" % len(body))])
            return h.reply(206, body[start:], [("Content-Range", "bytes %d-%d/%d"
                                                % (start, len(body) - 1, len(body)))])
        h.send_response(200)
        h.send_header("Content-Length", str(len(body) + 10))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
        h.close_connection = True

    def upstream_get(self, h, path, forward=("Accept", "Range")):
        headers = {k: h.headers[k] for k in forward if h.headers.get(k)}
        c = http.client.HTTPSConnection("127.0.0.1", self.upstream.port, timeout=30,
                                        context=client_context(self.pki))
        if self.upstream.users:
            u, p = next(iter(self.upstream.users.items()))
            headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (u, p)).encode()).decode()
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def serve_index_over(self, h, path):
        """An image index over the repository's :latest (fetched by digest
        from the registry later), its entry annotated as asked."""
        tag = path.rsplit("/", 1)[1]
        r, body = self.upstream_get(h, path.rsplit("/", 1)[0] + "/latest")
        entry = {"mediaType": r.getheader("Content-Type"),
                 "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body),
                 "annotations": self.index_over[tag]}
        mt = "application/vnd.oci.image.index.v1+json"
        index = json.dumps({"schemaVersion": 2, "mediaType": mt, "manifests": [entry]}).encode()
        h.reply(200, index, [("Content-Type", mt)])

    def serve_trickle(self, h, status, body, headers):
        _, piece, every = self.trickle
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.close_connection = True
        deadline = time.monotonic() + 60
        try:
            for i in range(0, len(body), piece):
                h.wfile.write(body[i:i + piece])
                h.wfile.flush()
                if time.monotonic() > deadline:
                    return
                time.sleep(every)
        except OSError:
            pass  # the client gave up

    def serve_token(self, h, auth):
        with self.lock:
            self.token_requests.append((h.path, auth))
        if self.hostile == "token-object":
            return h.reply(200, b'{"token":{"a":1},"access_token":["b"]}',
                           [("Content-Type", "application/json")])
        if self.token_creds:
            want = "Basic " + base64.b64encode(("%s:%s" % self.token_creds).encode()).decode()
            if auth != want:
                return h.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
        tok = "tok-" + os.urandom(8).hex()
        with self.lock:
            self.tokens[tok] = 0
        h.reply(200, json.dumps({"token": tok, "expires_in": 300}).encode(),
                [("Content-Type", "application/json")])


class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT) to 127.0.0.1, logging targets."""

    def __init__(self):
        self.port = free_port()
        self.targets = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_CONNECT(self):
                host, _, port = self.path.rpartition(":")
                proxy.targets.append(self.path)
                if host != "127.0.0.1":
                    self.send_error(403)
                    return
                up = socket.create_connection((host, int(port)), timeout=30)
                self.send_response(200, "Connection established")
                self.end_headers()
                socks = [self.connection, up]
                try:
                    while True:
                        ready, _, _ = select.select(socks, [], [], 30)
                        if not ready:
                            break
                        for s in ready:
                            data = s.recv(65536)
                            if not data:
                                return
                            (up if s is self.connection else self.connection).sendall(data)
                finally:
                    up.close()
                    self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class PullTestCase(SbxTestCase):
    def setUp(self):
        super().setUp()
        for t in TOOLS:
            if not shutil.which(t):
                self.skipTest("%s not installed" % t)
        self.servers = []
        self.pki = make_pki(os.path.join(self.tmp, "pki"))
        pw = self.user_for(self.mode)
        self.home = os.path.join(self.tmp, "home")
        self.rundir = os.path.join(self.tmp, "run")
        for d in (self.home, self.rundir):
            os.mkdir(d, 0o700)
            if pw:
                os.chown(d, pw.pw_uid, pw.pw_gid)

    def tearDown(self):
        for s in reversed(self.servers):
            s.stop()
        super().tearDown()

    def registry(self, **kw):
        r = Registry(self.tmp, self.pki, **kw)
        self.servers.append(r)
        return r

    def front(self, upstream, **kw):
        f = Front(self.pki, upstream, **kw)
        self.servers.append(f)
        return f

    def trust(self, hostport):
        """The test CA in the user's certs.d for this host:port (podman's layout)."""
        d = os.path.join(self.home, ".config", "containers", "certs.d", hostport)
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(self.pki, "ca.crt"), d)
        pw = self.user_for(self.mode)
        if pw:
            subprocess.run(["chown", "-R", "%d:%d" % (pw.pw_uid, pw.pw_gid), self.home],
                           check=True)

    def env(self, extra=None):
        e = {"HOME": self.home, "XDG_RUNTIME_DIR": self.rundir}
        e.update(extra or {})
        return e

    def sbx_env(self, args, env=None, input=None, timeout=180):
        return self.sbx_cmd(args, env=self.env(env), input=input, timeout=timeout, root=False)

    def pull_image(self, *args, env=None):
        return self.sbx_env(["pull", "--root", self.store_for(self.mode)] + list(args), env=env)

    def run_image(self, *args, env=None):
        return self.sbx_cmd(["run", "-q"] + list(args), env=self.env(env), timeout=180)

    def images(self):
        r = self.sbx_env(["images", "--root", self.store_for(self.mode)])
        self.assertEqual(r.rc, 0, r)
        return r.out

    def assertStoreClean(self):
        root = self.store_for(self.mode)
        self.assertEqual(self.layer_dirs(), [])
        for d in ("images", "refs"):
            p = os.path.join(root, d)
            self.assertEqual(os.listdir(p) if os.path.isdir(p) else [], [], d)
        tmp = os.path.join(root, "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])

    def write_auth(self, path, key, user, password):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"auths": {key: {"auth": base64.b64encode(
                ("%s:%s" % (user, password)).encode()).decode()}}}, f)
        pw = self.user_for(self.mode)
        if pw:
            subprocess.run(["chown", "-R", "%d:%d" % (pw.pw_uid, pw.pw_gid), self.home],
                           check=True)


class TestPull(PullTestCase):
    def test_anonymous_tls_pull_and_run(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        _, digest = reg.manifest("busybox:latest")
        # No CA: the certificate is refused, one line.
        r = self.pull_image(reg.host + "/busybox")
        self.assertSbxError(r, contains="certificate")
        self.assertStoreClean()
        self.trust(reg.host)
        r = self.pull_image(reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/busybox:latest" % reg.host, r.out)
        self.assertIn("%s/busybox:latest" % reg.host, self.images())
        r = self.sbx_env(["inspect", "--root", self.store_for(self.mode), reg.host + "/busybox"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Architecture:", r.out)
        r = self.run_image(reg.host + "/busybox:latest", "cat", "/etc/group")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split("\n")[0], "root:x:0:")
        self.assertNotEqual(digest, "")

    def test_tls_verify_false(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        self.assertSbxError(self.pull_image(reg.host + "/busybox"), contains="certificate")
        r = self.pull_image("--tls-verify=false", reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertSbxError(self.pull_image("--tls-verify=maybe", reg.host + "/busybox"),
                            contains="--tls-verify")

    def test_plain_http_only_without_verification(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg, tls=False)
        r = self.pull_image(front.hostport + "/busybox")
        self.assertSbxError(r, contains=front.hostport)
        self.assertStoreClean()
        r = self.pull_image("--tls-verify=false", front.hostport + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/busybox:latest" % front.hostport, r.out)

    def test_oci_zstd(self):
        reg = self.registry()
        reg.push("oci-archive:" + fixture("busybox-oci-zstd.tar"), "zstd:1")
        m, _ = reg.manifest("zstd:1")
        self.assertEqual(m["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        self.assertTrue(m["layers"][0]["mediaType"].endswith("+zstd"), m)
        self.trust(reg.host)
        r = self.run_image(reg.host + "/zstd:1", "cat", "/etc/group")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split("\n")[0], "root:x:0:")

    def test_docker_v2s2_and_multilayer(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("multilayer-legacy.tar"), "ml:latest")
        m, _ = reg.manifest("ml:latest")
        self.assertEqual(m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json")
        self.trust(reg.host)
        r = self.run_image(reg.host + "/ml", "cat", "/etc/layer3")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(self.layer_dirs()), 3)

    def test_multi_platform_index(self):
        reg = self.registry()
        reg.push("oci-archive:" + fixture("busybox-oci.tar"), "multi:latest", "--all")
        m, _ = reg.manifest("multi:latest")
        self.assertIn("manifests", m)
        arches = {d.get("platform", {}).get("architecture") for d in m["manifests"]}
        self.trust(reg.host)
        r = self.pull_image(reg.host + "/multi")
        self.assertEqual(r.rc, 0, r)
        r = self.sbx_env(["inspect", "--root", self.store_for(self.mode), reg.host + "/multi"])
        host_arch = [l.split()[-1] for l in r.out.splitlines() if "Architecture" in l][0]
        self.assertIn(host_arch, arches)
        other = [a for a in arches if a not in (host_arch, "unknown", None)][0]
        r = self.pull_image("--platform", "linux/" + other, reg.host + "/multi")
        self.assertEqual(r.rc, 0, r)
        r = self.sbx_env(["inspect", "--root", self.store_for(self.mode), reg.host + "/multi"])
        self.assertIn("Architecture: " + other, r.out)
        self.assertSbxError(self.pull_image("--platform", "linux/s390x", reg.host + "/multi"),
                            contains="s390x")

    def test_pull_by_digest(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        _, digest = reg.manifest("busybox:latest")
        self.trust(reg.host)
        ref = "%s/busybox@%s" % (reg.host, digest)
        r = self.pull_image(ref)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(ref, self.images())
        r = self.run_image(ref, "true")
        self.assertEqual(r.rc, 0, r)
        wrong = "sha256:" + "0" * 64
        r = self.pull_image("%s/busybox@%s" % (reg.host, wrong))
        self.assertSbxError(r, contains="404")

    def test_index_annotations_do_not_name_the_image(self):
        """A pulled image is recorded under the reference pulled, and only
        that: the names an index inside gives its entries (another image's,
        one pinned by a digest, a bare tag) are not read."""
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "evil/app:latest")
        pinned = "docker.io/library/alpine@sha256:" + "a" * 64
        front = self.front(reg, index_over={
            "a": {"io.containerd.image.name": "docker.io/library/alpine:latest",
                  "org.opencontainers.image.ref.name": "alpine:latest"},
            "b": {"io.containerd.image.name": pinned,
                  "org.opencontainers.image.ref.name": pinned},
            "c": {"org.opencontainers.image.ref.name": "latest"}})
        self.trust(front.hostport)
        for tag in ("a", "b", "c"):
            with self.subTest(tag=tag):
                ref = "%s/evil/app:%s" % (front.hostport, tag)
                r = self.pull_image(ref)
                self.assertEqual(r.rc, 0, r)
                self.assertIn("Pulled image: " + ref, r.out)
                names = self.images()
                self.assertIn(ref, names)
                self.assertNotIn("alpine", names)
        self.assertTrue(any(p.endswith("/manifests/a") for p, _ in front.log), front.log)
        r = self.run_image(front.hostport + "/evil/app:c", "cat", "/etc/group")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split("\n")[0], "root:x:0:")

    def test_only_the_helper_links_libcurl(self):
        """sbx starts in milliseconds: libcurl is in sbx-store only."""
        def needed(path):
            out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
            return [l for l in out.splitlines() if "(NEEDED)" in l]
        bindir = os.path.dirname(self.sbx)
        self.assertFalse([l for l in needed(self.sbx) if "curl" in l], needed(self.sbx))
        self.assertTrue([l for l in needed(os.path.join(bindir, "sbx-store")) if "libcurl" in l])

    def test_bad_references(self):
        self.assertSbxError(self.pull_image("Busybox"), contains="must be lowercase")
        self.assertSbxError(self.pull_image("a//b"), contains="invalid reference format")
        self.assertSbxError(self.pull_image("a", "b"), contains="one image reference")
        self.assertSbxError(self.pull_image("app@sha512:" + "a" * 128), contains="only sha256")

    def test_second_pull_transfers_no_blobs(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("multilayer-legacy.tar"), "ml:latest")
        m, _ = reg.manifest("ml:latest")
        layers = {l["digest"] for l in m["layers"]}
        front = self.front(reg)
        self.trust(front.hostport)
        self.assertEqual(self.pull_image(front.hostport + "/ml").rc, 0)
        first = [p for p, _ in front.blob_gets() if p.rsplit("/", 1)[1] in layers]
        self.assertEqual(len(first), len(layers), front.log)
        n = len(front.log)
        r = self.pull_image(front.hostport + "/ml")
        self.assertEqual(r.rc, 0, r)
        second = [p for p, _ in front.log[n:] if "/blobs/" in p and p.rsplit("/", 1)[1] in layers]
        self.assertEqual(second, [])
        # The same layers under another name: nothing downloaded either.
        reg.push("docker-archive:" + fixture("multilayer-legacy.tar"), "other:v1")
        n = len(front.log)
        self.assertEqual(self.pull_image(front.hostport + "/other:v1").rc, 0)
        self.assertEqual([p for p, _ in front.log[n:] if p.rsplit("/", 1)[1] in layers], [])

    def test_concurrent_pulls_unpack_once(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("multilayer-legacy.tar"), "ml:latest")
        self.trust(reg.host)
        procs = [self.popen(["pull", "--root", self.store_for(self.mode), "--log-level", "debug",
                             reg.host + "/ml"], env=self.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for _ in range(3)]
        unpacked = 0
        for p in procs:
            out, err = p.communicate(timeout=180)
            self.assertEqual(p.returncode, 0, err)
            unpacked += err.decode().count(" entries, ")
        self.assertEqual(unpacked, 3)  # three layers, each unpacked by one of the pulls
        self.assertEqual(len(self.layer_dirs()), 3)

    def test_run_pull_policy(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg)
        self.trust(front.hostport)
        ref = front.hostport + "/busybox"
        r = self.run_image("--pull=never", ref, "true")
        self.assertSbxError(r, contains="no such archive, layout directory or loaded image")
        self.assertEqual(front.log, [])
        r = self.run_image(ref, "echo", "pulled")  # missing (the default): pulled
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "pulled\n")
        n = len(front.log)
        r = self.run_image(ref, "true")  # present: not asked again
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(front.log), n)
        r = self.run_image("--pull=never", ref, "true")
        self.assertEqual(r.rc, 0, r)
        r = self.run_image("--pull=always", ref, "true")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(any("/manifests/" in p for p, _ in front.log[n:]), front.log)
        self.assertSbxError(self.run_image("--pull=sometimes", ref, "true"), contains="--pull")
        # A missing archive is not looked up in a registry.
        self.assertSbxError(self.run_image("missing-busybox.tar", "true"),
                            contains="no such archive, layout directory or loaded image")

    def test_tampered_layer_refused_store_clean(self):
        reg = self.registry()
        # Uncompressed layers: the flipped byte reaches the tar, only the digest can tell.
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest",
                 "--dest-decompress")
        front = self.front(reg, tamper=True)
        self.trust(front.hostport)
        r = self.pull_image(front.hostport + "/busybox")
        self.assertSbxError(r, contains="digest mismatch")
        self.assertStoreClean()
        r = self.run_image(front.hostport + "/busybox", "true")
        self.assertSbxError(r, contains="digest mismatch")
        self.assertStoreClean()

    def test_hostile_registry_bounds(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        for hostile, why in (("huge-manifest", "larger than 4194304 bytes"),
                             ("redirect-loop", "too many redirects"),
                             ("redirect-http", "refused redirect to a non-https URL"),
                             ("long-blob", "larger than")):
            front = self.front(reg, hostile=hostile)
            self.trust(front.hostport)
            r = self.pull_image(front.hostport + "/busybox")
            self.assertSbxError(r, contains=why)
            self.assertStoreClean()

    def assertOneLine(self, r, contains):
        """assertSbxError, and nothing else on stderr (no GLib CRITICAL, no
        helper's noise)."""
        self.assertSbxError(r, contains=contains)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r)

    def test_untyped_manifest_refused_in_one_line(self):
        """A manifest without mediaType under `Content-Type: x`: refused,
        naming the type (a bounded copy: nothing read past its end)."""
        reg = self.registry()
        reg.push("oci-archive:" + fixture("busybox-oci.tar"), "busybox:latest")
        front = self.front(reg, hostile="untyped-manifest")
        self.trust(front.hostport)
        r = self.pull_image(front.hostport + "/busybox")
        self.assertOneLine(r, "unsupported manifest type x ")
        self.assertStoreClean()

    def test_json_members_of_the_wrong_type_refused_in_one_line(self):
        """A token answer whose token is an object, a layer whose digest is
        an array: refused in one line, no GLib CRITICAL (fatal here)."""
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        env = {"G_DEBUG": "fatal-criticals"}
        for kw, why in (({"bearer": True, "hostile": "token-object"}, "no usable token"),
                        ({"hostile": "digest-array"}, "digest")):
            with self.subTest(**kw):
                front = self.front(reg, **kw)
                self.trust(front.hostport)
                r = self.pull_image(front.hostport + "/busybox", env=env)
                self.assertNotIn("CRITICAL", r.err)
                self.assertOneLine(r, why)
                self.assertStoreClean()

    def test_long_redirect_location_shown_short(self):
        """A 20 KB Location that ends in a 404: the URL shown is cut short
        (an ellipsis), and the reason (HTTP 404) reaches the user."""
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg, hostile="long-location")
        self.trust(front.hostport)
        r = self.pull_image(front.hostport + "/busybox")
        line = self.assertSbxError(r, contains="HTTP 404")
        self.assertIn("/nowhere/aaaa", line)
        self.assertIn("...: HTTP 404", line)
        self.assertLess(len(line), 400, line)

    def test_trickled_manifest_ends_at_the_deadline(self):
        """A registry that trickles its manifest (30 bytes a second, enough
        for a rate floor) is given up on at the request's deadline
        (SBX_REGISTRY_TIMEOUT_MS shortens it): one line, status 125."""
        reg = self.registry()
        front = self.front(reg, trickle=("manifest", 30, 1.0))
        self.trust(front.hostport)
        t0 = time.monotonic()
        r = self.pull_image(front.hostport + "/busybox",
                            env={"SBX_REGISTRY_TIMEOUT_MS": "3000"})
        elapsed = time.monotonic() - t0
        self.assertSbxError(r, contains="timed out")
        self.assertIn("/manifests/latest", r.err)
        self.assertLess(elapsed, 20, r)
        self.assertStoreClean()
        self.assertSbxError(self.pull_image("busybox", env={"SBX_REGISTRY_TIMEOUT_MS": "soon"}),
                            contains="SBX_REGISTRY_TIMEOUT_MS")

    def test_trickled_layer_is_broken_off(self):
        """A layer blob slower than 1 KiB/s over the stall window
        (SBX_REGISTRY_STALL_SECONDS shortens it) is broken off, resumed five
        times, then refused: one line, status 125, nothing stored."""
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg, trickle=("blob", 200, 0.5))
        self.trust(front.hostport)
        t0 = time.monotonic()
        r = self.pull_image("--log-level", "debug", front.hostport + "/busybox",
                            env={"SBX_REGISTRY_STALL_SECONDS": "2"})
        elapsed = time.monotonic() - t0
        self.assertSbxError(r, contains="too slow")
        self.assertEqual(r.err.count("): resuming"), 5, r.err)
        self.assertLess(elapsed, 60, r)
        self.assertStoreClean()

    def test_trickle_above_the_floor_ends_at_the_blob_deadline(self):
        """A layer blob trickled above the 1 KiB/s floor (4 KB/s) is given up
        on at the blob's deadline (SBX_REGISTRY_BLOB_SECONDS shortens it;
        else size / 100 KiB/s, at least 10 minutes): one line naming the
        variable, status 125, nothing stored."""
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg, trickle=("blob", 1000, 0.25))
        self.trust(front.hostport)
        t0 = time.monotonic()
        r = self.pull_image(front.hostport + "/busybox", env={"SBX_REGISTRY_BLOB_SECONDS": "3"})
        elapsed = time.monotonic() - t0
        self.assertSbxError(r, contains="SBX_REGISTRY_BLOB_SECONDS")
        self.assertIn("deadline", r.err)
        self.assertLess(elapsed, 30, r)
        self.assertStoreClean()
        self.assertSbxError(self.pull_image("busybox", env={"SBX_REGISTRY_BLOB_SECONDS": "0"}),
                            contains="SBX_REGISTRY_BLOB_SECONDS")

    def test_dropped_connection_resumes(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        m, _ = reg.manifest("busybox:latest")
        layer = m["layers"][0]["digest"]
        front = self.front(reg, drop=True)
        self.trust(front.hostport)
        r = self.pull_image("--log-level", "debug", front.hostport + "/busybox")
        self.assertEqual(r.rc, 0, r)
        gets = [h for p, h in front.blob_gets() if p.endswith(layer)]
        self.assertEqual(len(gets), 2, front.log)
        self.assertNotIn("range", gets[0])
        self.assertRegex(gets[1].get("range", ""), r"^bytes=[1-9][0-9]*-$")
        self.assertIn("resuming", r.err)
        r = self.run_image(front.hostport + "/busybox", "cat", "/etc/group")
        self.assertEqual(r.out.split("\n")[0], "root:x:0:")

    def test_blob_complete_before_the_connection_broke(self):
        """Every byte of a layer, under a Content-Length 10 more, then the
        connection closed: the layer is complete (its digest says so), not
        resumed from its end (which a correct registry answers with 416)."""
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        m, _ = reg.manifest("busybox:latest")
        layer = m["layers"][0]["digest"]
        front = self.front(reg, hostile="content-length-long")
        self.trust(front.hostport)
        r = self.pull_image(front.hostport + "/busybox")
        self.assertEqual(r.rc, 0, r)
        gets = [h for p, h in front.blob_gets() if p.endswith(layer)]
        self.assertEqual(len(gets), 1, front.log)
        r = self.run_image(front.hostport + "/busybox", "cat", "/etc/group")
        self.assertEqual(r.out.split("\n")[0], "root:x:0:")

    def test_progress_one_line_per_layer_on_a_terminal(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("multilayer-legacy.tar"), "ml:latest")
        m, _ = reg.manifest("ml:latest")
        self.trust(reg.host)

        def pull_on_tty(*extra):
            cmd = " ".join([self.sbx, "pull", "--root", self.store_for(self.mode)] + list(extra) +
                           [reg.host + "/ml"])
            return self.run_as(["script", "-qec", cmd, "/dev/null"],
                               env=self.env({"SBX_PROGRESS_DELAY_MS": "0"}))
        r = pull_on_tty()
        self.assertEqual(r.rc, 0, r)
        for layer in m["layers"]:
            # g_format_size: "1.1\u00a0MB", "484 bytes"
            self.assertRegex(r.out, r"%s  [0-9.]+\s\S+ / [0-9.]+\s\S+  [0-9.]+\s\S+/s  done"
                             % layer["digest"][:19])
        r = pull_on_tty()
        for layer in m["layers"]:
            self.assertIn("%s  already in the store" % layer["digest"][:19], r.out)
        r = pull_on_tty("--quiet")
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("sha256:", r.out.replace(r.out.strip().splitlines()[-1], ""))
        # Not a terminal: no progress either.
        r = self.pull_image(reg.host + "/ml", env={"SBX_PROGRESS_DELAY_MS": "0"})
        self.assertNotIn("already in the store", r.out + r.err)

    def test_proxy_from_the_environment(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        self.trust(reg.host)
        proxy = ConnectProxy()
        self.servers.append(proxy)
        env = {"https_proxy": "http://127.0.0.1:%d" % proxy.port}
        r = self.pull_image(reg.host + "/busybox", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(reg.host, proxy.targets)
        # sbx run passes it on to the pull too
        n = len(proxy.targets)
        r = self.run_image("--pull=always", reg.host + "/busybox", "true", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertGreater(len(proxy.targets), n)

    def test_retry_after_429(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg, too_many=2)
        self.trust(front.hostport)
        r = self.pull_image(front.hostport + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len([p for p, _ in front.log if "/manifests/" in p]), 3)
        front.too_many = 10
        self.assertSbxError(self.pull_image(front.hostport + "/busybox:other"), contains="429")


class TestRegistriesConf(PullTestCase):
    """registries.conf (podman's, v2 TOML) from $XDG_CONFIG_HOME/containers."""

    def conf(self, text):
        d = os.path.join(self.home, ".config", "containers")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "registries.conf"), "w") as f:
            f.write(text)
        pw = self.user_for(self.mode)
        if pw:
            subprocess.run(["chown", "-R", "%d:%d" % (pw.pw_uid, pw.pw_gid), self.home],
                           check=True)

    def env(self, extra=None):
        e = super().env(extra)
        e.setdefault("XDG_CONFIG_HOME", os.path.join(self.home, ".config"))
        return e

    def busybox_registry(self, name="busybox:latest"):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), name)
        self.trust(reg.host)
        return reg

    def test_short_name_single_search_registry_pull_and_run(self):
        reg = self.busybox_registry()
        self.conf('unqualified-search-registries = ["%s"]\n' % reg.host)
        r = self.pull_image("busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/busybox:latest" % reg.host, r.out)
        self.assertIn("%s/busybox:latest" % reg.host, self.images())
        r = self.run_image("--pull=always", "busybox", "cat", "/etc/group")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split("\n")[0], "root:x:0:")

    def test_short_name_in_the_store_is_used_by_run(self):
        """podman's local lookup: `run busybox` (--pull=missing) finds the
        image pulled as REGISTRY/busybox through any search registry, with
        no registry asked (even where a pull would be ambiguous)."""
        reg = self.busybox_registry()
        empty = self.registry()
        self.trust(empty.host)
        self.conf('unqualified-search-registries = ["%s"]\n' % reg.host)
        self.assertEqual(self.pull_image("busybox").rc, 0)
        reg.stop()  # gone: nothing below may need it
        self.conf('unqualified-search-registries = ["%s", "%s"]\n' % (empty.host, reg.host))
        r = self.run_image("--log-level", "info", "busybox", "cat", "/etc/group")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split("\n")[0], "root:x:0:")
        self.assertIn("busybox: %s/busybox is in the store" % reg.host, r.err)
        # --pull=always pulls: ambiguous in the default (enforcing) mode.
        self.assertSbxError(self.run_image("--pull=always", "busybox", "true"),
                            contains="short name busybox is ambiguous")
        # Not in the store under any candidate: pulled (from where it is).
        self.assertSbxError(self.run_image("nothere", "true"),
                            contains="short name nothere is ambiguous")

    def test_alias(self):
        reg = self.busybox_registry("tools/bb:1")
        self.conf('unqualified-search-registries = ["127.0.0.1:1", "127.0.0.1:2"]\n'
                  '[aliases]\n"bb" = "%s/tools/bb"\n' % reg.host)
        r = self.pull_image("bb:1")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/tools/bb:1" % reg.host, r.out)

    def test_ambiguous_short_name_refused_when_enforcing(self):
        reg = self.busybox_registry()
        self.conf('unqualified-search-registries = ["%s", "127.0.0.1:1"]\n'
                  'short-name-mode = "enforcing"\n' % reg.host)
        r = self.pull_image("busybox")
        self.assertSbxError(r, contains="short name busybox is ambiguous: it could come from "
                            "%s, 127.0.0.1:1" % reg.host)
        self.assertStoreClean()
        # The default mode is enforcing too.
        self.conf('unqualified-search-registries = ["%s", "127.0.0.1:1"]\n' % reg.host)
        self.assertSbxError(self.pull_image("busybox"), contains="is ambiguous")

    def test_permissive_tries_in_order(self):
        empty = self.registry()
        self.trust(empty.host)
        reg = self.busybox_registry()
        self.conf('unqualified-search-registries = ["%s", "%s"]\n'
                  'short-name-mode = "permissive"\n' % (empty.host, reg.host))
        r = self.pull_image("busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/busybox:latest" % reg.host, r.out)
        # Nowhere: the last registry's reason.
        r = self.pull_image("nothere")
        self.assertSbxError(r, contains=reg.host)

    def test_blocked_registry_refused(self):
        reg = self.busybox_registry()
        self.conf('[[registry]]\nlocation = "%s"\nblocked = true\n' % reg.host)
        r = self.pull_image(reg.host + "/busybox")
        self.assertSbxError(r, contains="registry %s is blocked" % reg.host)
        self.assertStoreClean()
        r = self.run_image("--pull=always", reg.host + "/busybox", "true")
        self.assertSbxError(r, contains="is blocked")

    def test_insecure_registry(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg, tls=False)
        self.assertSbxError(self.pull_image(reg.host + "/busybox"), contains="certificate")
        self.conf('[[registry]]\nlocation = "%s"\ninsecure = true\n'
                  '[[registry]]\nlocation = "%s"\ninsecure = true\n' % (reg.host, front.hostport))
        r = self.pull_image(reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        r = self.pull_image(front.hostport + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/busybox:latest" % front.hostport, r.out)

    def test_tls_verify_true_overrides_insecure(self):
        """podman: an explicit --tls-verify=true verifies TLS whatever
        registries.conf's insecure says (and so no plain http)."""
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg, tls=False)
        self.conf('[[registry]]\nlocation = "%s"\ninsecure = true\n' % front.hostport)
        for flag in ("--tls-verify=true", "--tls-verify"):
            with self.subTest(flag=flag):
                r = self.pull_image(flag, front.hostport + "/busybox")
                self.assertSbxError(r, contains=front.hostport)
                self.assertEqual(len(r.err.strip().splitlines()), 1, r)
                self.assertStoreClean()
        self.assertEqual(front.log, [])  # nothing asked over plain http
        r = self.pull_image(front.hostport + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/busybox:latest" % front.hostport, r.out)

    def test_insecure_registry_in_version_1(self):
        # [registries.insecure] (version 1, still read by podman): honoured,
        # and [registries.block] refuses, as with [[registry]] tables
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        self.conf('[registries.insecure]\nregistries = ["%s"]\n' % reg.host)
        r = self.pull_image(reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.conf('[registries.block]\nregistries = ["%s"]\n' % reg.host)
        self.assertSbxError(self.pull_image(reg.host + "/busybox"), contains="is blocked")

    def test_mirror_first_then_fallback(self):
        reg = self.busybox_registry()
        mirror = self.front(reg)
        self.trust(mirror.hostport)
        self.conf('[[registry]]\nlocation = "%s"\n[[registry.mirror]]\nlocation = "%s"\n'
                  % (reg.host, mirror.hostport))
        r = self.pull_image(reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/busybox:latest" % reg.host, r.out)
        self.assertTrue(any("/manifests/" in p for p, _ in mirror.log), mirror.log)
        self.assertTrue(mirror.blob_gets(), mirror.log)
        # The mirror down (nothing listens): the registry itself.
        down = free_port()
        self.conf('[[registry]]\nlocation = "%s"\n[[registry.mirror]]\n'
                  'location = "127.0.0.1:%d"\n' % (reg.host, down))
        r = self.pull_image("--log-level", "info", reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("127.0.0.1:%d" % down, r.err)

    def test_mirror_by_digest_only_and_pull_from_mirror(self):
        """containers-registries.conf(5): mirror-by-digest-only = true keeps
        the mirrors to pulls by digest (a tag at a mirror may name another
        image); else each mirror's pull-from-mirror chooses. Both at once, or
        a key sbx does not know, are refused (never a less strict pull)."""
        reg = self.busybox_registry()
        _, digest = reg.manifest("busybox:latest")
        mirror = self.front(reg)
        self.trust(mirror.hostport)
        by_tag, by_digest = reg.host + "/busybox", "%s/busybox@%s" % (reg.host, digest)

        def mirror_asked(ref):
            with mirror.lock:
                mirror.log.clear()
            r = self.pull_image(ref)
            self.assertEqual(r.rc, 0, r)
            with mirror.lock:
                return any("/manifests/" in p for p, _ in mirror.log)

        def conf(registry_keys, mirror_keys=""):
            self.conf('[[registry]]\nlocation = "%s"\n%s[[registry.mirror]]\nlocation = "%s"\n%s'
                      % (reg.host, registry_keys, mirror.hostport, mirror_keys))
        conf("mirror-by-digest-only = true\n")
        self.assertFalse(mirror_asked(by_tag))
        self.assertTrue(mirror_asked(by_digest))
        for how, tag, dig in (("digest-only", False, True), ("tag-only", True, False),
                              ("all", True, True)):
            with self.subTest(pull_from_mirror=how):
                conf("", 'pull-from-mirror = "%s"\n' % how)
                self.assertEqual(mirror_asked(by_tag), tag)
                self.assertEqual(mirror_asked(by_digest), dig)
        conf("mirror-by-digest-only = true\n", 'pull-from-mirror = "all"\n')
        self.assertSbxError(self.pull_image(by_digest), contains="pull-from-mirror cannot be set "
                            "when the registry has mirror-by-digest-only = true")
        conf("mirror-by-digest = true\n")
        self.assertSbxError(self.pull_image(by_tag), contains="unknown key 'mirror-by-digest'")
        conf("", 'pull-from-mirror = "sometimes"\n')
        self.assertSbxError(self.pull_image(by_tag), contains="'sometimes' is not all, "
                            "digest-only or tag-only")
        # version 1's block list is read (not dropped): the pull is refused
        self.conf('[registries.block]\nregistries = ["%s"]\n' % reg.host)
        self.assertSbxError(self.pull_image(by_tag), contains="is blocked")

    def test_mirror_lacking_a_blob_falls_back_for_that_blob(self):
        """A mirror that has the manifest but not every layer: the missing
        blob comes from the registry itself, the others from the mirror."""
        reg = self.registry()
        reg.push("docker-archive:" + fixture("multilayer-legacy.tar"), "ml:latest")
        self.trust(reg.host)
        mirror = self.registry()
        mirror.push("docker-archive:" + fixture("multilayer-legacy.tar"), "ml:latest")
        m, _ = mirror.manifest("ml:latest")
        lost = m["layers"][1]["digest"]
        blob = os.path.join(mirror.dir, "data", "docker", "registry", "v2", "blobs", "sha256",
                            lost[7:9], lost[7:], "data")
        os.unlink(blob)  # the mirror now answers 404 for this blob only
        self.trust(mirror.host)
        self.conf('[[registry]]\nlocation = "%s"\n[[registry.mirror]]\nlocation = "%s"\n'
                  % (reg.host, mirror.host))
        r = self.pull_image("--log-level", "info", reg.host + "/ml")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/ml:latest" % reg.host, r.out)
        self.assertIn("blob %s from %s: " % (lost[:19], mirror.host), r.err)
        self.assertIn("trying %s" % reg.host, r.err)
        self.assertEqual(r.err.count("; trying "), 1, r.err)
        self.assertEqual(len(self.layer_dirs()), 3)
        r = self.run_image(reg.host + "/ml", "cat", "/etc/layer3")
        self.assertEqual(r.rc, 0, r)
        # Nowhere else to go: the mirror's failure is the answer.
        self.conf('[[registry]]\nlocation = "%s"\n' % mirror.host)
        self.assertEqual(self.sbx_env(["rmi", "--root", self.store_for(self.mode),
                                       reg.host + "/ml"]).rc, 0)
        self.assertEqual(self.sbx_env(["prune", "--root", self.store_for(self.mode)]).rc, 0)
        self.assertEqual(self.layer_dirs(), [])
        r = self.pull_image(mirror.host + "/ml")
        self.assertSbxError(r, contains="HTTP 404")
        self.assertIn(lost[7:], r.err)

    def test_mirror_that_keeps_breaking_falls_back_mid_blob(self):
        """A mirror whose every layer answer breaks halfway: after the
        resumes, the rest of the blob comes from the registry (Range from
        where the mirror stopped), and the digests still hold."""
        reg = self.busybox_registry()
        mirror = self.front(reg, drop=True, drop_always=True)
        self.trust(mirror.hostport)
        self.conf('[[registry]]\nlocation = "%s"\n[[registry.mirror]]\nlocation = "%s"\n'
                  % (reg.host, mirror.hostport))
        r = self.pull_image("--log-level", "info", reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("from %s: " % mirror.hostport, r.err)
        self.assertIn("; trying %s" % reg.host, r.err)
        gets = mirror.blob_gets()
        ranges = [h.get("range") for p, h in gets if h.get("range")]
        self.assertGreaterEqual(len(ranges), 5, gets)
        r = self.run_image(reg.host + "/busybox", "cat", "/etc/group")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.split("\n")[0], "root:x:0:")

    def test_wildcard_prefix(self):
        """prefix = "*.example.test": the hosts below it, not example.test
        itself; the most specific prefix wins. The names resolve nowhere: the
        image comes through a mirror on 127.0.0.1, and anything else would go
        to a logging proxy on 127.0.0.1 (no DNS, nothing leaves loopback)."""
        reg = self.busybox_registry()
        proxy = ConnectProxy()
        self.servers.append(proxy)
        env = {"https_proxy": "http://127.0.0.1:%d" % proxy.port, "no_proxy": "127.0.0.1"}
        self.conf('[[registry]]\nprefix = "*.example.test"\n'
                  '[[registry.mirror]]\nlocation = "%s"\n'
                  '[[registry]]\nprefix = "*.blocked.example.test"\nblocked = true\n'
                  '[[registry]]\nlocation = "example.test"\nblocked = true\n' % reg.host)
        r = self.pull_image("a.example.test/busybox", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: a.example.test/busybox:latest", r.out)
        self.assertIn("a.example.test/busybox:latest", self.images())
        r = self.run_image("a.example.test/busybox", "cat", "/etc/group", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertSbxError(self.pull_image("x.blocked.example.test/busybox", env=env),
                            contains="registry *.blocked.example.test is blocked")
        self.assertSbxError(self.pull_image("example.test/busybox", env=env),
                            contains="registry example.test is blocked")
        self.assertEqual(proxy.targets, [])
        self.conf('[[registry]]\nprefix = "*.example.test"\nlocation = "%s"\n' % reg.host)
        self.assertSbxError(self.pull_image("a.example.test/busybox", env=env),
                            contains="a wildcard prefix (*.example.test) cannot have a location")

    def test_only_the_helper_links_cxx(self):
        """The TOML reader (toml++, C++) is in sbx-store only: sbx and sbx-net stay C."""
        def needed(path):
            out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
            return [l for l in out.splitlines() if "(NEEDED)" in l]
        bindir = os.path.dirname(self.sbx)
        for prog in (self.sbx, os.path.join(bindir, "sbx-net")):
            n = needed(prog)
            self.assertTrue(n, prog)
            self.assertFalse([l for l in n if "stdc++" in l or "toml" in l], (prog, n))
        n = needed(os.path.join(bindir, "sbx-store"))
        self.assertTrue([l for l in n if "libtomlplusplus" in l], n)

    def test_drop_ins_override_in_name_order(self):
        reg = self.busybox_registry("tools/bb:1")
        self.conf('unqualified-search-registries = ["127.0.0.1:1", "127.0.0.1:2"]\n')
        d = os.path.join(self.home, ".config", "containers", "registries.conf.d")
        os.makedirs(d)
        with open(os.path.join(d, "20-search.conf"), "w") as f:
            f.write('unqualified-search-registries = ["%s"]\n' % reg.host)
        with open(os.path.join(d, "10-search.conf"), "w") as f:
            f.write('unqualified-search-registries = ["127.0.0.1:3", "127.0.0.1:4"]\n'
                    '[aliases]\n"bb" = "%s/tools/bb"\n' % reg.host)
        with open(os.path.join(d, "30-ignored.txt"), "w") as f:
            f.write("not toml [[[\n")
        r = self.pull_image("tools/bb:1")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/tools/bb:1" % reg.host, r.out)
        r = self.pull_image("bb:1")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Pulled image: %s/tools/bb:1" % reg.host, r.out)
        with open(os.path.join(d, "40-bad.conf"), "w") as f:
            f.write("[aliases\n")
        self.assertSbxError(self.pull_image("bb:1"), contains="40-bad.conf")

    def test_malformed_file(self):
        self.conf('unqualified-search-registries = ["a"\n[[registry\n')
        r = self.pull_image("busybox")
        self.assertSbxError(r, contains="registries.conf")
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.conf('[[registry]]\nlocation = 5\n')
        self.assertSbxError(self.pull_image("busybox"), contains="location")
        self.conf('short-name-mode = "sometimes"\n')
        self.assertSbxError(self.pull_image("busybox"), contains="short-name-mode")


class TestAuth(PullTestCase):
    USER, PASSWORD = "alice", "s3cret-Pa55"

    def registry_with_users(self):
        reg = self.registry(users={self.USER: self.PASSWORD})
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        self.trust(reg.host)
        return reg

    def assertNoSecrets(self, r):
        b64 = base64.b64encode(("%s:%s" % (self.USER, self.PASSWORD)).encode()).decode()
        for s in (self.PASSWORD, b64):
            self.assertNotIn(s, r.out + r.err)

    def test_basic_auth_login_logout(self):
        reg = self.registry_with_users()
        r = self.pull_image(reg.host + "/busybox")
        self.assertSbxError(r, contains="sbx login")
        auth_file = os.path.join(self.rundir, "containers", "auth.json")
        r = self.sbx_env(["login", "-u", self.USER, "--password-stdin", reg.host], input=b"wrong\n")
        self.assertSbxError(r, contains="401")
        self.assertFalse(os.path.exists(auth_file))
        r = self.sbx_env(["login", "--log-level", "debug", "-u", self.USER, "--password-stdin",
                      reg.host], input=(self.PASSWORD + "\n").encode())
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Login Succeeded!", r.out)
        self.assertNoSecrets(r)
        self.assertEqual(os.stat(auth_file).st_mode & 0o777, 0o600)
        with open(auth_file) as f:
            self.assertIn(reg.host, json.load(f)["auths"])
        r = self.pull_image("--log-level", "debug", reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        self.assertNoSecrets(r)
        r = self.sbx_env(["logout", reg.host])
        self.assertEqual(r.rc, 0, r)
        self.assertSbxError(self.sbx_env(["logout", reg.host]), contains="not logged in")
        self.assertSbxError(self.sbx_env(["logout", "docker.io"]),
                            contains="not logged in to docker.io")
        self.assertSbxError(self.sbx_env(["logout", "busybox"]), contains="is not a registry")
        r = self.pull_image(reg.host + "/busybox:other")
        self.assertSbxError(r, contains="sbx login")

    def test_auth_files(self):
        reg = self.registry_with_users()
        # podman's auth.json via $REGISTRY_AUTH_FILE
        path = os.path.join(self.home, "elsewhere", "auth.json")
        self.write_auth(path, reg.host, self.USER, self.PASSWORD)
        r = self.pull_image(reg.host + "/busybox", env={"REGISTRY_AUTH_FILE": path})
        self.assertEqual(r.rc, 0, r)
        # docker's ~/.docker/config.json, its key with a scheme
        self.write_auth(os.path.join(self.home, ".docker", "config.json"),
                        "https://" + reg.host, self.USER, self.PASSWORD)
        r = self.pull_image(reg.host + "/busybox")
        self.assertEqual(r.rc, 0, r)
        # wrong credentials: refused, nothing leaks
        self.write_auth(path, reg.host, self.USER, "nope")
        r = self.pull_image("--log-level", "debug", reg.host + "/busybox:x",
                      env={"REGISTRY_AUTH_FILE": path})
        self.assertSbxError(r, contains="401")
        self.assertNotIn("nope", r.err)

    def test_credential_helpers(self):
        reg = self.registry_with_users()
        bindir = os.path.join(self.home, "bin")
        os.makedirs(bindir)
        log = os.path.join(self.home, "helper.log")
        for name, user in (("sbxtest", self.USER), ("wrong", "mallory")):
            path = os.path.join(bindir, "docker-credential-" + name)
            with open(path, "w") as f:
                f.write('#!/bin/sh\n[ "$1" = get ] || exit 1\nread -r server\n'
                        'echo "%s $server" >> %s\n'
                        '[ "$server" = "%s" ] || { echo "credentials not found"; exit 1; }\n'
                        'printf \'{"ServerURL":"%%s","Username":"%s","Secret":"%s"}\' "$server"\n'
                        % (name, log, reg.host, user, self.PASSWORD))
            os.chmod(path, 0o755)
        config = os.path.join(self.home, ".docker", "config.json")
        os.makedirs(os.path.dirname(config))
        env = {"PATH": bindir + ":/usr/bin:/bin"}

        def configure(doc):
            with open(config, "w") as f:
                json.dump(doc, f)
            pw = self.user_for(self.mode)
            if pw:
                subprocess.run(["chown", "-R", "%d:%d" % (pw.pw_uid, pw.pw_gid), self.home],
                               check=True)
        # credHelpers for this registry wins over credsStore
        configure({"auths": {reg.host: {}}, "credHelpers": {reg.host: "sbxtest"},
                   "credsStore": "wrong"})
        r = self.pull_image("--log-level", "debug", reg.host + "/busybox", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("from docker-credential-sbxtest", r.err)
        self.assertNotIn(self.PASSWORD, r.out + r.err)
        # credsStore alone; a helper that knows nothing: refused
        configure({"credsStore": "wrong"})
        r = self.pull_image(reg.host + "/busybox:other", env=env)
        self.assertSbxError(r, contains="401")
        with open(log) as f:
            self.assertEqual(f.read().split("\n")[:2], ["sbxtest " + reg.host, "wrong " + reg.host])

    def test_bearer_token_flow(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("multilayer-legacy.tar"), "ml:latest")
        front = self.front(reg, bearer=True, token_max_uses=2)
        self.trust(front.hostport)
        r = self.pull_image("--log-level", "debug", front.hostport + "/ml")
        self.assertEqual(r.rc, 0, r)
        # anonymous tokens, for this repository, refreshed when refused
        self.assertGreaterEqual(len(front.token_requests), 2, front.token_requests)
        for path, auth in front.token_requests:
            self.assertIsNone(auth)
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            self.assertEqual(q, {"scope": ["repository:ml:pull"], "service": ["sbx-test"]})
        v2 = [h for p, h in front.log if p.startswith("/v2/ml/")]
        self.assertTrue(any(h.get("authorization", "").startswith("Bearer tok-") for h in v2))
        self.assertNotIn("tok-", r.err)

    def test_bearer_token_with_credentials(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        front = self.front(reg, bearer=True, token_creds=(self.USER, self.PASSWORD))
        self.trust(front.hostport)
        self.assertSbxError(self.pull_image(front.hostport + "/busybox"), contains="401")
        r = self.sbx_env(["login", "-u", self.USER, "--password-stdin", front.hostport],
                     input=self.PASSWORD.encode())
        self.assertEqual(r.rc, 0, r)
        r = self.pull_image(front.hostport + "/busybox")
        self.assertEqual(r.rc, 0, r)
        want = "Basic " + base64.b64encode(("%s:%s" % (self.USER, self.PASSWORD)).encode()).decode()
        self.assertEqual(front.token_requests[-1][1], want)

    def test_redirect_drops_authorization(self):
        reg = self.registry()
        reg.push("docker-archive:" + fixture("busybox-legacy.tar"), "busybox:latest")
        blobs = self.front(reg, host="localhost", blob_repo="busybox")
        front = self.front(reg, basic=(self.USER, self.PASSWORD), redirect_to=blobs)
        self.trust(front.hostport)
        self.trust(blobs.hostport)
        path = os.path.join(self.home, "auth.json")
        self.write_auth(path, front.hostport, self.USER, self.PASSWORD)
        r = self.pull_image("--log-level", "debug", front.hostport + "/busybox",
                      env={"REGISTRY_AUTH_FILE": path})
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(blobs.log, "no request reached the blob host")
        for p, h in blobs.log:
            self.assertNotIn("authorization", h, p)
        self.assertTrue(any("authorization" in h for _, h in front.log))
        self.assertNotIn("X-Sig=secret", r.err)  # pre-signed URLs are not logged
        r = self.run_image(front.hostport + "/busybox", "true", env={"REGISTRY_AUTH_FILE": path})
        self.assertEqual(r.rc, 0, r)


if __name__ == "__main__":
    unittest.main()
