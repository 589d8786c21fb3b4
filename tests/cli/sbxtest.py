"""Harness for sbx's command-line tests: the real binary, real images, run
as an unprivileged user.

Started as root (CI), every sbx command runs as one of two users made by
tests/setup-test-users.sh: `sbx-test` (has a subuid range: the newuidmap path)
or `sbx-test1` (none: the single-id path). Started as a normal user, sbx runs
as that user; the single-id path is then forced by pointing sbx at an empty
subuid file (SBX_SUBUID_FILE), and range tests skip when the user has no range.
"""
import fcntl
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
SBX = os.path.abspath(os.environ.get("SBX_BIN", os.path.join(SRCDIR, "build", "src", "sbx")))
NOSYS = os.environ.get("SBX_NOSYS", os.path.join(SRCDIR, "build", "tests", "nosys"))
FIXTURES = os.path.abspath(os.environ.get("SBX_FIXTURES", os.path.join(SRCDIR, "build", "tests", "fixtures")))
IS_ROOT = os.geteuid() == 0
RANGE_USER, SINGLE_USER = "sbx-test", "sbx-test1"
HELPERS = ("sbx-store", "sbx-net", "sbx-switch", "sbx-oci")  # found by sbx beside its own binary (sbx-oci: test_oci)


# Whatever sbx (or a helper it started) prints when it crashed instead of
# refusing: a crash is never a correct refusal, wherever it shows. UBSan's
# "runtime error:", not podman's "OCI runtime error:" (its wording for a
# runtime that refused).
CRASH_MARKS = re.compile(r"helper died|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                         r"MemorySanitizer|ThreadSanitizer|(?<!OCI )runtime error:|==\d+==ERROR: |"
                         r"^ERROR: \w*Sanitizer", re.M)


def crash_in(text):
    """The first crash report in `text` (str or bytes), or None."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    m = CRASH_MARKS.search(text or "")
    return m.group(0) if m else None


def fixture(name):
    path = os.path.join(FIXTURES, name)
    if not os.path.exists(path):
        # a fixture the build should have made is a broken build, not a skip
        raise AssertionError("fixture %s not built (looked in %s)" % (name, FIXTURES))
    return _stage(path)


def _world_reachable(path):
    """Can any user read `path` (every directory on the way searchable)?"""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        st = os.stat(os.sep.join(parts[:i]) or "/")
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def _ensure_users():
    with open("/tmp/.sbx-test-users.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(RANGE_USER)
            pwd.getpwnam(SINGLE_USER)
            with open("/etc/subuid") as f:
                if any(l.startswith(RANGE_USER + ":") for l in f):
                    return
        except (KeyError, FileNotFoundError):
            pass
        subprocess.run([os.path.join(SRCDIR, "tests", "setup-test-users.sh")], check=True)


def _stage(path):
    """Root-owned build trees (e.g. a CI clone under /root) are not reachable
    by the test users: copy what they need to a world-readable place once."""
    if _world_reachable(path):
        return path
    base = "/tmp/sbx-test-stage-%d" % os.getuid()
    os.makedirs(base, mode=0o755, exist_ok=True)
    os.chmod(base, 0o755)
    dst = os.path.join(base, os.path.abspath(path).strip("/").replace("/", "_"))
    with open(base + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        src_m = os.stat(path).st_mtime_ns
        if not os.path.exists(dst) or os.stat(dst).st_mtime_ns != src_m:
            tmp = dst + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            if os.path.isdir(path):
                shutil.copytree(path, tmp, symlinks=True)
            else:
                shutil.copy2(path, tmp)
            for root, dirs, files in os.walk(tmp):
                for d in dirs:
                    os.chmod(os.path.join(root, d), 0o755)
            subprocess.run(["chmod", "-R", "a+rX", tmp], check=True)
            os.utime(tmp, ns=(src_m, src_m))
            if os.path.isdir(dst):
                shutil.rmtree(dst)
            os.replace(tmp, dst)
    return dst


def _stage_programs():
    """sbx and its helper programs, where the test users can run them."""
    bindir = os.path.dirname(SBX)
    if _world_reachable(SBX):
        return bindir
    return os.path.dirname(_stage_files([SBX] + [os.path.join(bindir, h) for h in HELPERS]))


def _stage_files(paths):
    """Copy the files into one world-readable directory (once per change)."""
    base = "/tmp/sbx-test-stage-%d" % os.getuid()
    os.makedirs(base, mode=0o755, exist_ok=True)
    os.chmod(base, 0o755)
    dst = os.path.join(base, "bin")
    with open(base + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.makedirs(dst, mode=0o755, exist_ok=True)
        for p in paths:
            if not os.path.exists(p):
                continue
            target = os.path.join(dst, os.path.basename(p))
            if not os.path.exists(target) or os.stat(target).st_mtime_ns != os.stat(p).st_mtime_ns:
                shutil.copy2(p, target + ".tmp")
                os.chmod(target + ".tmp", 0o755)
                os.replace(target + ".tmp", target)
    return os.path.join(dst, os.path.basename(paths[0]))


class Result:
    def __init__(self, proc, out, err):
        self.rc = proc.returncode
        self.out = out.decode(errors="replace")
        self.err = err.decode(errors="replace")
        self.crash = crash_in(self.err) or crash_in(self.out)

    def __repr__(self):
        return "rc=%d\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err)


class _CheckedPopen(subprocess.Popen):
    """Popen whose captured stderr is searched for crash reports."""
    testcase = None

    def communicate(self, *a, **kw):
        out, err = super().communicate(*a, **kw)
        if self.testcase and err:
            self.testcase.assertNoCrash(err, " ".join(map(str, self.args[:3])))
        return out, err


class SbxTestCase(unittest.TestCase):
    """Each test gets its own store (self.root) owned by the user sbx runs as."""

    mode = "range"  # which uid-map path the test's sbx runs take by default

    @classmethod
    def setUpClass(cls):
        if IS_ROOT:
            _ensure_users()
        cls.sbx = os.path.join(_stage_programs(), "sbx")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sbx-test-")
        os.chmod(self.tmp, 0o755)
        self.root = os.path.join(self.tmp, "store")
        self.stores = {}
        self._started = []  # (Popen, stderr log path or None) of every popen()

    def tearDown(self):
        try:
            self._check_started()
        finally:
            for _, log in self._started:
                if log and os.path.exists(log):
                    os.unlink(log)
            for root in self.stores.values():
                self._remove_store(root)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _remove_store(self, root):
        if not os.path.exists(root):
            return
        if IS_ROOT:
            shutil.rmtree(root, ignore_errors=True)
            return
        # Files owned by subordinate ids: remove them from inside a user
        # namespace with the same mapping.
        subprocess.run(["unshare", "--map-auto", "--map-root-user", "rm", "-rf", root],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)

    # -- users -----------------------------------------------------------
    def user_for(self, mode):
        if not IS_ROOT:
            return None
        return pwd.getpwnam(RANGE_USER if mode == "range" else SINGLE_USER)

    def require_range(self):
        if IS_ROOT:
            return
        name = pwd.getpwuid(os.getuid()).pw_name
        for f in ("/etc/subuid", "/etc/subgid"):
            with open(f) as fh:
                if not any(l.split(":")[0] in (name, str(os.getuid())) for l in fh):
                    self.skipTest("%s has no range in %s" % (name, f))

    def store_for(self, mode):
        if mode not in self.stores:
            root = os.path.join(self.tmp, "store-" + mode)
            os.mkdir(root, 0o700)
            pw = self.user_for(mode)
            if pw:
                os.chown(root, pw.pw_uid, pw.pw_gid)
            self.stores[mode] = root
        return self.stores[mode]

    def env_for(self, mode, extra=None):
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8",
               # marks what the suite started, for tests/cli/sweep.py
               "SBX_TEST_TAG": SBX,
               # the spare sbx-net (test_netspare.py) would make sbx-net
               # another process's child than sbx's, shared between tests
               "SBX_NET_SPARE": "0"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        pw = self.user_for(mode)
        env["HOME"] = pw.pw_dir if pw else os.environ.get("HOME", "/")
        if mode == "single" and not IS_ROOT:
            env["SBX_SUBUID_FILE"] = "/nonexistent"
        if extra:
            env.update(extra)
        return env

    def nosys(self, calls):
        """A prefix for sbx_cmd(wrap=...): run sbx with `calls` ("fsopen",
        "fsconfig=EINVAL", ...) failing, as on an older kernel (tests/nosys.c).
        It sets no_new_privs, so newuidmap cannot work: use mode "single"."""
        if not os.path.exists(NOSYS):
            self.skipTest("tests/nosys not built")
        path = NOSYS if _world_reachable(NOSYS) else _stage_files([NOSYS])
        return [path, calls]

    def popen(self, args, mode=None, root=True, env=None, wrap=(), **kw):
        mode = mode or self.mode
        if mode == "range":
            self.require_range()
        cmd = [self.sbx] + list(args)
        if root and len(cmd) > 1 and cmd[1] in ("run",):
            cmd[2:2] = ["--root", self.store_for(mode)]
        cmd = list(wrap) + cmd
        pw = self.user_for(mode)
        if pw:
            kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        log = None
        if kw.get("stderr") in (None, subprocess.DEVNULL):
            # keep what it says: a crash report is looked for at tearDown
            fd, log = tempfile.mkstemp(prefix="sbx-test-stderr-")
            kw["stderr"] = os.fdopen(fd, "wb")
        try:
            p = _CheckedPopen(cmd, env=self.env_for(mode, env), cwd=self.tmp, **kw)
        finally:
            if log:
                kw["stderr"].close()
        p.testcase = self
        self._started.append((p, log))
        return p

    def assertNoCrash(self, text, what="sbx"):
        found = crash_in(text)
        if found:
            if isinstance(text, bytes):
                text = text.decode(errors="replace")
            self.fail("%s crashed (%r on its stderr): a crash is never a refusal\n%s"
                      % (what, found, text))

    def _check_started(self):
        """Every process popen() started has ended and reported no crash."""
        left = []
        for p, log in self._started:
            if p.poll() is None:
                left.append(p.args)
                p.kill()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            if log and os.path.exists(log):
                with open(log, "rb") as fh:
                    said = fh.read()
                os.unlink(log)
                self.assertNoCrash(said, " ".join(map(str, p.args[:3])))
        self.assertEqual(left, [], "the test left processes running")

    def run_as(self, cmd, mode=None, env=None, input=None, timeout=120):
        """Any command, as the user sbx runs as (for wrappers like unshare)."""
        mode = mode or self.mode
        kw = {}
        pw = self.user_for(mode)
        if pw:
            kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        p = subprocess.Popen(cmd, env=self.env_for(mode, env), cwd=self.tmp, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        out, err = p.communicate(input=input, timeout=timeout)
        r = Result(p, out, err)
        if r.crash:
            self.fail("%s: a crash is never a refusal (%r)\n%r" % (" ".join(cmd), r.crash, r))
        return r

    def sbx_cmd(self, args, mode=None, input=None, timeout=60, root=True, env=None, wrap=()):
        p = self.popen(args, mode=mode, root=root, env=env, wrap=wrap, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            self.fail("sbx %s timed out\n%s" % (" ".join(args), err.decode(errors="replace")))
        r = Result(p, out, err)
        if r.crash:
            self.fail("sbx %s: a crash is never a refusal (%r)\n%r" % (" ".join(args), r.crash, r))
        return r

    def run_ok(self, image, *cmd, mode=None, opts=(), env=None):
        r = self.sbx_cmd(["run", "-q"] + list(opts) + [image] + list(cmd), mode=mode, env=env)
        self.assertEqual(r.rc, 0, r)
        return r

    def assertSbxError(self, r, rc=125, *, contains):
        """One clear line 'sbx: ...' naming the reason (`contains`: a specific
        substring, never empty) and the expected status; no crash anywhere."""
        self.assertTrue(contains, "a refusal test must name the reason it expects")
        self.assertIsNone(r.crash, "a crash is never a refusal\n%r" % r)
        self.assertEqual(r.rc, rc, r)
        lines = [l for l in r.err.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("sbx: ")
                  and not l.startswith(("sbx: warning: ", "sbx: info: "))]
        self.assertEqual(len(errors), 1, "want exactly one error line\n%r" % r)
        self.assertIn(contains, errors[0], r)
        return errors[0]

    def layer_dirs(self, mode=None):
        root = self.store_for(mode or self.mode)
        layers = os.path.join(root, "layers")
        found = []
        if os.path.isdir(layers):
            for key in os.listdir(layers):
                found += [(key, d) for d in os.listdir(os.path.join(layers, key))]
        return found

    def user_dir(self, name, mode=None):
        """A new directory in the test's tmp that the user sbx runs as may
        write in (--report files, volumes, compiled filters)."""
        d = os.path.join(self.tmp, name)
        os.mkdir(d, 0o755)
        pw = self.user_for(mode or self.mode)
        if pw:
            os.chown(d, pw.pw_uid, pw.pw_gid)
        return d

    def wait_for(self, pred, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return True
            time.sleep(0.05)
        return False


class NamedSandboxCase(SbxTestCase):
    """Named and detached sandboxes: each test its own state directory
    (XDG_RUNTIME_DIR) owned by the user sbx runs as; cmd() runs an sbx
    command there, and the names a test lists in self.names are removed."""

    def setUp(self):
        super().setUp()
        self.runtime = os.path.join(self.tmp, "runtime")
        os.mkdir(self.runtime, 0o700)
        pw = self.user_for(self.mode)
        if pw:
            os.chown(self.runtime, pw.pw_uid, pw.pw_gid)
        self.names = []

    def small_runtime(self, options):
        """XDG_RUNTIME_DIR on its own small tmpfs (mounted as root), for the
        full-disk cases; unmounted at the end."""
        if os.getuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")
        pw = self.user_for(self.mode)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "%s,mode=0700,uid=%d,gid=%d"
                            % (options, pw.pw_uid, pw.pw_gid), "tmpfs", self.runtime],
                           capture_output=True)
        if r.returncode:
            self.skipTest("cannot mount a small tmpfs here: %r" % r)
        self.addCleanup(subprocess.run, ["umount", "-l", self.runtime])
        base = os.path.join(self.runtime, "sbx")
        os.mkdir(base, 0o700)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        return base

    def fill_runtime(self):
        """Take every free block of small_runtime's tmpfs."""
        fd = os.open(os.path.join(self.runtime, "fill"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)

    def tearDown(self):
        for n in self.names:
            self.cmd(["rm", "-f", n])
        super().tearDown()

    def cmd(self, args, **kw):
        env = kw.pop("env", {})
        env["XDG_RUNTIME_DIR"] = self.runtime
        if args[0] == "run":
            args = [args[0], "--root", self.store_for(self.mode)] + args[1:]
        return self.sbx_cmd(args, root=False, env=env, **kw)
