"""The store: unpack once, never re-read a known archive, refuse bad digests."""
import os
import shutil
import time
import subprocess
import unittest

from sbxtest import SbxTestCase, fixture


class TestStore(SbxTestCase):
    def test_second_run_uses_cache(self):
        image = fixture("busybox-legacy.tar")
        r1 = self.sbx_cmd(["run", "--log-level", "debug", image, "true"])
        self.assertEqual(r1.rc, 0, r1)
        self.assertIn("importing", r1.err)
        r2 = self.sbx_cmd(["run", "--log-level", "debug", image, "true"])
        self.assertEqual(r2.rc, 0, r2)
        self.assertIn("cached as image", r2.err)
        self.assertNotIn("importing", r2.err)

    def test_log_level_info(self):
        """info says what sbx decided and did, without debug's narration."""
        image = fixture("busybox-legacy.tar")
        r = self.sbx_cmd(["run", "--log-level", "info", image, "true"], mode="single")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("sbx: info: store %s, layers unpacked for id mapping single"
                      % self.store_for("single"), r.err)
        self.assertIn("sbx: info: archive %s: importing" % image, r.err)
        self.assertRegex(r.err, r"sbx: info: layer sha256:[0-9a-f]{12}: \d+ entries")
        self.assertIn("sbx: info: seccomp: compiling the default profile", r.err)
        self.assertNotIn("sbx[", r.err)  # no debug lines
        r = self.sbx_cmd(["run", "--log-level", "info", image, "true"], mode="single")
        self.assertIn("cached as image", r.err)
        self.assertNotIn("importing", r.err)
        r = self.sbx_cmd(["run", image, "true"], mode="single")
        self.assertNotIn("info:", r.err)

    def test_layers_shared_between_formats(self):
        for image in ("busybox-legacy.tar", "busybox-docker25.tar", "busybox-podman.tar"):
            self.run_ok(fixture(image), "true")
        # same uncompressed layer -> one directory in the store
        self.assertEqual(len(self.layer_dirs()), 1, self.layer_dirs())

    def test_changed_archive_is_read_again(self):
        copy = os.path.join(self.tmp, "copy.tar")
        shutil.copy(fixture("busybox-legacy.tar"), copy)
        os.chmod(copy, 0o644)
        self.run_ok(copy, "true")
        shutil.copy(fixture("hello.tar"), copy)
        r = self.run_ok(copy)
        self.assertIn("Hello from sbx!", r.out)

    def test_content_swapped_under_the_same_mtime_is_read_again(self):
        """The cache key includes ctime: rewriting an archive and setting its
        mtime back must not serve the old image for the new bytes."""
        path = os.path.join(self.tmp, "swap.tar")
        shutil.copy(fixture("busybox-legacy.tar"), path)
        os.chmod(path, 0o666)
        self.run_ok(path, "true")
        st = os.stat(path)
        bad = open(fixture("corrupt-layer-legacy.tar"), "rb").read()
        self.assertEqual(len(bad), st.st_size)
        with open(path, "r+b") as f:
            f.write(bad)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        time.sleep(0.01)
        r = self.sbx_cmd(["run", "--log-level", "debug", path, "true"])
        self.assertIn("importing", r.err, "the rewritten archive must be read again\n%r" % r)
        self.assertNotIn("cached as image", r.err)

    def test_writes_do_not_reach_the_store(self):
        image = fixture("busybox-legacy.tar")
        self.run_ok(image, "sh", "-c", "echo changed > /etc/passwd; rm /bin/ls; touch /new-file")
        r = self.run_ok(image, "sh", "-c", "head -1 /etc/passwd; ls / >/dev/null && echo ls-ok; "
                        "test -e /new-file || echo no-new-file")
        self.assertEqual(r.out, "root:x:0:0:root:/root:/bin/sh\nls-ok\nno-new-file\n")

    def _assert_refused(self, name, contains):
        r = self.sbx_cmd(["run", fixture(name), "true"])
        self.assertSbxError(r, contains=contains)
        self.assertEqual(self.layer_dirs(), [], "a refused layer must not be stored")
        tmp = os.path.join(self.store_for(self.mode), "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])

    def test_corrupted_layer_refused(self):
        self._assert_refused("corrupt-layer-legacy.tar", "digest mismatch")

    def test_corrupted_blob_refused(self):
        self._assert_refused("corrupt-layer-oci.tar", "digest mismatch")

    def test_corrupted_config_refused(self):
        self._assert_refused("corrupt-config-legacy.tar", "digest mismatch")

    def test_wrong_diff_id_refused(self):
        self._assert_refused("corrupt-diffid-oci.tar", "digest mismatch")

    def test_concurrent_first_runs(self):
        image = fixture("multilayer-oci.tar")
        procs = [self.popen(["run", "-q", image, "cat", "/etc/layer3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for _ in range(8)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            self.assertEqual((p.returncode, out), (0, b"3\n"), err)
        self.assertEqual(len(self.layer_dirs()), 3)

    def test_root_from_environment(self):
        root = self.store_for(self.mode)
        r = self.sbx_cmd(["run", "-q", fixture("hello.tar")], root=False, env={"SBX_ROOT": root})
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(self.layer_dirs()), 1)


if __name__ == "__main__":
    unittest.main()


class TestCrashSafety(SbxTestCase):
    mode = "single"

    def test_disk_full_during_import(self):
        """ENOSPC: one clear line, 125, the partial layer gone, the store usable."""
        script = """
set -u
d=$(mktemp -d)
mount -t tmpfs -o size=1200k tmpfs "$d" || exit 90
"$SBX" load -q --userns single --root "$d/store" "$BIG" 2>"$d/err"; echo "rc=$?"
cat "$d/err"
echo "store=$d/store"
echo "tmp=$(ls -A "$d/store/tmp" | wc -l) layers=$(ls -A "$d/store/layers/single" | wc -l)"
"$SBX" run -q --userns single --root "$d/store" "$SMALL" >/dev/null 2>&1; echo "after=$?"
"""
        r = self.run_as(["unshare", "-Urm", "sh", "-c", script],
                        env={"SBX": self.sbx, "BIG": fixture("busybox-legacy.tar"),
                             "SMALL": fixture("hello.tar")})
        if r.rc == 90 or "rc=" not in r.out:
            self.skipTest("cannot mount a small tmpfs here: %r" % r)
        lines = r.out.splitlines()
        self.assertEqual(lines[0], "rc=125", r)
        errors = [l for l in lines if l.startswith("sbx: ")]
        self.assertEqual(len(errors), 1, r)
        self.assertIn("No space left on device", errors[0])
        # which file system is full: the store's (not TMPDIR, not the archive's)
        store = next(l for l in lines if l.startswith("store=")).split("=", 1)[1]
        self.assertIn("store %s" % store, errors[0])
        self.assertIn("tmp=0 layers=0", r.out)
        self.assertIn("after=0", r.out)

    def test_disk_full_at_each_record(self):
        """Out of inodes at each step of a load: it succeeds whole, or fails
        (125, one line) leaving no half image: never images/<id>.json without
        its .run (listed, unrunnable), never a load "done" without its name."""
        script = """
set -u
d=$(mktemp -d)
mount -t tmpfs tmpfs "$d" || exit 90
"$SBX" load -q --userns single --root "$d/store" "$IMG" >/dev/null 2>&1 || exit 91
used=$(df --output=iused "$d" | tail -1 | tr -d ' ')
umount "$d"
for k in $(seq -1 9); do
  mount -t tmpfs -o nr_inodes=$((used - k)) tmpfs "$d" || exit 90
  "$SBX" load -q --userns single --root "$d/store" "$IMG" >/dev/null 2>"$d/err"; rc=$?
  echo "== k=$k rc=$rc"
  cat "$d/err"
  echo "images: $(ls -A "$d/store/images" | tr '\\n' ' ')"
  echo "refs: $(ls -A "$d/store/refs" 2>/dev/null | wc -l)"
  "$SBX" images --userns single --root "$d/store" 2>&1 | sed 's/^/listed: /'
  umount "$d"
done
"""
        r = self.run_as(["unshare", "-Urm", "sh", "-c", script],
                        env={"SBX": self.sbx, "IMG": fixture("hello.tar")})
        if r.rc == 90 or "== k=" not in r.out:
            self.skipTest("cannot mount a small tmpfs here: %r" % r)
        cases = r.out.split("== k=")[1:]
        self.assertEqual(len(cases), 11, r)
        saw_ok = saw_name = 0
        for case in cases:
            lines = case.splitlines()
            rc = int(lines[0].split("rc=")[1])
            errors = [l for l in lines if l.startswith("sbx: ")]
            images = next(l for l in lines if l.startswith("images:")).split()[1:]
            refs = int(next(l for l in lines if l.startswith("refs:")).split()[1])
            listed = [l for l in lines if l.startswith("listed: ")]
            why = "\n%s" % case
            self.assertEqual(sorted(images), sorted(images and
                                                    [images[0][:64] + e for e in (".json", ".run")]),
                             "a half-written image record" + why)
            self.assertFalse([f for f in images if f.startswith(".")], "a temporary file" + why)
            self.assertEqual(len(listed), 1 + len(images) // 2, why)  # the heading, the image
            if rc == 0:
                saw_ok += 1
                self.assertEqual((errors, len(images), refs), ([], 2, 1), why)
                self.assertIn("hello-world:latest", listed[1], why)
            else:
                self.assertEqual(rc, 125, why)
                self.assertEqual(len(errors), 1, why)
                self.assertIn("No space left on device", errors[0], why)
                if images:
                    saw_name += 1
                    self.assertIn("its name hello-world:latest not", errors[0], why)
        self.assertTrue(saw_ok and saw_name, r)

    def test_full_tmpdir_names_archive_and_tmpdir(self):
        """A .tar.gz is decompressed into $TMPDIR first: when that is full
        the line names the archive and the directory, not just "write"."""
        import gzip
        path = os.path.join(self.tmp, "busybox.tar.gz")
        with open(fixture("busybox-legacy.tar"), "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(path, 0o644)
        script = """
set -u
t=$(mktemp -d)
mount -t tmpfs -o size=64k tmpfs "$t" || exit 90
TMPDIR=$t "$SBX" load -q --userns single --root "$STORE" "$IMG" 2>&1; echo "rc=$?"
echo "tmpdir=$t"
"""
        r = self.run_as(["unshare", "-Urm", "sh", "-c", script],
                        env={"SBX": self.sbx, "IMG": path, "STORE": self.store_for("single")})
        if r.rc == 90 or "rc=" not in r.out:
            self.skipTest("cannot mount a small tmpfs here: %r" % r)
        tmpdir = r.out.split("tmpdir=")[1].strip()
        self.assertIn("rc=125", r.out, r)
        errors = [l for l in r.out.splitlines() if l.startswith("sbx: ")]
        self.assertEqual(errors, ["sbx: %s: decompress into %s: No space left on device"
                                  % (path, tmpdir)], r)

    def test_run_of_a_read_only_store_without_lock_files(self):
        """A read-only store (nothing can prune it) whose lock files are gone
        still runs its images: the lock that cannot be created is skipped."""
        script = """
set -u
"$SBX" load -q --userns single --root "$STORE" "$IMG" >/dev/null || exit 91
rm -f "$STORE"/locks/*
mount --bind "$STORE" "$STORE" && mount -o remount,bind,ro "$STORE" || exit 90
"$SBX" run -q --userns single --root "$STORE" hello-world 2>&1; echo "rc=$?"
"""
        r = self.run_as(["unshare", "-Urm", "sh", "-c", script],
                        env={"SBX": self.sbx, "IMG": fixture("hello.tar"),
                             "STORE": self.store_for("single")})
        if r.rc == 90 or "rc=" not in r.out:
            self.skipTest("cannot bind-mount the store read-only here: %r" % r)
        self.assertIn("Hello from sbx!", r.out, r)
        self.assertIn("rc=0", r.out, r)

    def test_killed_import_child_is_said(self):
        """The import's child killed mid-unpack (SIGKILL): load says the
        helper died and how, as run does, not "exited during setup". strace
        holds the child at its syncfs (one per layer, only the child's)."""
        import signal
        wrap = ["strace", "-f", "-qq", "-o", "/dev/null",
                "-e", "inject=syncfs:delay_enter=5000000"]
        p = self.popen(["load", "--root", self.store_for(self.mode), fixture("hello.tar")],
                       root=False, wrap=wrap, env={"ASAN_OPTIONS": "detect_leaks=0"},
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def tasks(pid):
            try:
                return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
            except OSError:
                return []

        def children(pid):
            found = []
            for t in tasks(pid):
                try:
                    with open("/proc/%d/task/%d/children" % (pid, t)) as f:
                        found += [int(c) for c in f.read().split()]
                except OSError:
                    pass
            return found

        def in_syncfs(pid):
            for t in tasks(pid):
                try:
                    with open("/proc/%d/task/%d/syscall" % (pid, t)) as f:
                        if f.read().split()[0] == "306":  # syncfs on x86-64
                            return True
                except (OSError, IndexError):
                    pass
            return False

        def syncing():
            # strace -> sbx-store -> the import's child, one of its threads in syncfs
            for sbx in children(p.pid):
                for child in children(sbx):
                    if in_syncfs(child):
                        return child
            return None

        found = []
        self.assertTrue(self.wait_for(lambda: found.append(syncing()) or found[-1], timeout=30),
                        "the import's child never reached its syncfs")
        os.kill(found[-1], signal.SIGKILL)
        # "helper died" is what a crash says too: read past that check
        out, err = subprocess.Popen.communicate(p, timeout=60)
        err = err.decode()
        lines = [l for l in err.splitlines() if l.startswith("sbx: ")]
        self.assertEqual(lines, ["sbx: import helper died (killed by signal 9, Killed)"], err)
        self.assertEqual(p.returncode, 125, err)

    def test_xattr_without_space_fails_the_layer(self):
        """An attribute the disk has no room for (ENOSPC) fails the layer:
        kept quiet, the layer would pass its digest check without it."""
        path = os.path.join(self.tmp, "xattr-big.tar")
        _write_docker_archive(path, [{"f": b"x\n"}],
                              extra_pax={"f": {"SCHILY.xattr.user.big": "v" * 60000}})
        script = """
set -u
d=$(mktemp -d)
for n in 40 2000; do
  mount -t tmpfs -o nr_inodes=$n tmpfs "$d" || exit 90
  "$SBX" load -q --userns single --root "$d/store" "$IMG" 2>&1; echo "rc=$?"
  echo "layers=$(ls -A "$d/store/layers/single" | wc -l) tmp=$(ls -A "$d/store/tmp" | wc -l)"
  umount "$d"
done
"""
        r = self.run_as(["unshare", "-Urm", "sh", "-c", script],
                        env={"SBX": self.sbx, "IMG": path})
        if r.rc == 90 or "rc=" not in r.out:
            self.skipTest("cannot mount a small tmpfs here: %r" % r)
        small = r.out.split("layers=")[0]  # the first load's
        self.assertIn("rc=125", small, r)
        self.assertIn("xattr user.big: No space left on device", small, r)
        self.assertIn("layers=0 tmp=0", r.out, r)
        self.assertIn("rc=0\nlayers=1 tmp=0", r.out, "with room the layer loads\n%r" % r)

    def test_killed_import_leaves_nothing_used(self):
        """sbx killed mid-import (its helpers die with it): the next run
        completes the import, works, and leaves no partial layer in tmp/."""
        import signal
        import time
        image = fixture("busybox-legacy.tar")
        partial = 0
        for delay in (0.02, 0.05, 0.1, 0.2, 0.4):
            with self.subTest(delay=delay):
                root = self.stores.pop(self.mode, None)
                if root:
                    self._remove_store(root)
                tmp = os.path.join(self.store_for(self.mode), "tmp")
                p = self.popen(["run", "-q", image, "true"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                time.sleep(delay)
                p.send_signal(signal.SIGKILL)
                p.wait()
                time.sleep(0.2)  # its helpers die by PDEATHSIG
                left = os.listdir(tmp) if os.path.isdir(tmp) else []
                partial += bool(left)
                r = self.run_ok(image, "cat", "/etc/group")
                self.assertTrue(r.out.startswith("root:x:0:"), r)
                self.assertEqual(len(self.layer_dirs()), 1)
                self.assertEqual(os.listdir(tmp), [],
                                 "a killed import's partial layer stayed in tmp/ (after the "
                                 "kill: %r)" % left)
        if not partial:
            print("(no kill landed mid-unpack this time: nothing partial to clean)")

    def test_twenty_concurrent_first_runs(self):
        image = fixture("multilayer-oci.tar")
        procs = [self.popen(["run", "-q", "--log-level", "debug", image, "cat", "/etc/layer3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(20)]
        unpacked = 0
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual((p.returncode, out), (0, b"3\n"), err)
            unpacked += err.decode().count(" entries, ")
        self.assertEqual(unpacked, 3, "each layer must be unpacked exactly once")
        self.assertEqual(len(self.layer_dirs()), 3)


class TestFormatsMore(SbxTestCase):
    def test_rootfs_tarball(self):
        import subprocess as sp
        path = os.path.join(self.tmp, "rootfs.tar.xz")
        sp.run(["python3", os.path.join(os.path.dirname(__file__), "..", "fixtures", "mkimage.py"),
                "busybox", "--format", "rootfs", "--compress", "xz", "--out", path], check=True)
        os.chmod(path, 0o644)
        r = self.sbx_cmd(["load", "--root", self.store_for(self.mode), "--rootfs", "--name",
                          "myroot", path], root=False)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Loaded image: myroot:latest", r.out)
        self.assertEqual(self.run_ok("myroot", "cat", "/etc/group").out.split("\n")[0], "root:x:0:")

    def test_rootfs_again_while_running(self):
        """A second load --rootfs of a tar whose layer a running sandbox uses
        finishes at once (it waited for the sandbox's shared layer lock while
        holding the store lock, and prune waited behind it)."""
        path = os.path.join(self.tmp, "rootfs.tar")
        subprocess.run(["python3", os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                                "mkimage.py"),
                        "busybox", "--format", "rootfs", "--out", path], check=True)
        os.chmod(path, 0o644)
        store = self.store_for(self.mode)
        r = self.sbx_cmd(["load", "--root", store, "--rootfs", "--name", "rfs:1", path],
                         root=False)
        self.assertEqual(r.rc, 0, r)
        p = self.popen(["run", "-q", "rfs:1", "sh", "-c", "echo up; sleep 25"],
                       stdout=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"up\n")
            r = self.sbx_cmd(["load", "--root", store, "--rootfs", "--name", "rfs:2", path],
                             root=False, timeout=15)
            self.assertEqual(r.rc, 0, r)
            self.assertIn("Loaded image: rfs:2", r.out)
            r = self.sbx_cmd(["prune", "--root", store], root=False, timeout=15)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(self.run_ok("rfs:2", "cat", "/etc/group").out.split("\n")[0],
                             "root:x:0:")
        finally:
            p.kill()
            p.communicate(timeout=30)

    def test_size_kept_for_the_other_mapping(self):
        """layer-sizes/<diff-id> is shared by the mappings: a prune under one
        keeps it while the other's copy is stored, and a load under the other
        that finds its layers stored writes it again if it is missing
        (`sbx images` showed 0 B)."""
        import json
        image = fixture("busybox-legacy.tar")
        store = self.store_for("range")
        single = ["--userns", "single", "--root", store]
        self.assertEqual(self.sbx_cmd(["load", "-q", "--root", store, image],
                                      mode="range").rc, 0)
        r = self.sbx_cmd(["load", "-q"] + single + [image], mode="range")
        self.assertEqual(r.rc, 0, r)
        image_id = r.out.split()[-1].split(":")[-1]
        before = self.sbx_cmd(["images", "--format", "json"] + single, mode="range").out
        self.assertRegex(before, r'"Size"\s*:\s*[1-9]')
        r = self.sbx_cmd(["rmi", "--root", store, image_id], mode="range")
        self.assertEqual(r.rc, 0, r)
        r = self.sbx_cmd(["prune", "--root", store], mode="range")
        self.assertEqual(r.rc, 0, r)
        # The prune under the range mapping leaves the single mapping's sizes.
        self.assertNotEqual(os.listdir(os.path.join(store, "layer-sizes")), [])
        r = self.sbx_cmd(["load", "-q"] + single + [image], mode="range")
        self.assertEqual(r.rc, 0, r)
        r = self.sbx_cmd(["images", "--format", "json"] + single, mode="range")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(json.loads(r.out)[0]["Size"], json.loads(before)[0]["Size"], r.out)

    def test_platform_choice(self):
        image = fixture("busybox-oci.tar")
        r = self.sbx_cmd(["inspect", "--platform", "linux/arm64", image], root=False)
        self.assertIn("Architecture: arm64", r.out)
        r = self.sbx_cmd(["run", "-q", "--platform", "linux/arm64", image, "/arch"])
        self.assertEqual(r.rc, 126, r)  # the decoy's /arch is not a program, but it was chosen
        self.assertSbxError(self.sbx_cmd(["run", "--platform", "linux/s390x", image, "true"]),
                            contains="s390x")


def _write_docker_archive(path, layers, extra_pax=None, compress=None, modes=None):
    """A docker-legacy archive from a list of {name: bytes} layers; `compress`
    (a function) compresses each layer.tar as stored (diff_ids stay those of
    the uncompressed tars, as docker load accepts)."""
    import hashlib
    import io
    import json
    import tarfile

    def layer_tar(files, idx):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name, data in sorted(files.items()):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.mode = (modes or {}).get(name, 0o644)
                if extra_pax and name in extra_pax:
                    ti.pax_headers = dict(extra_pax[name])
                t.addfile(ti, io.BytesIO(data))
        return buf.getvalue()

    blobs = [layer_tar(f, i) for i, f in enumerate(layers)]
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["many:latest"],
                            "Layers": ["%d/layer.tar" % i for i in range(len(blobs))]}]).encode()
    stored = [compress(b) if compress else b for b in blobs]
    with tarfile.open(path, "w") as t:
        for name, data in [(cfg_name, config), ("manifest.json", manifest)] + \
                [("%d/layer.tar" % i, b) for i, b in enumerate(stored)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    os.chmod(path, 0o644)


def _two_image_archive(src, dst):
    """busybox-legacy twice in one docker archive: first:v1 and second:v2,
    configs differing in one variable (SEL=1, SEL=2), the layer shared."""
    import hashlib
    import io
    import json
    import tarfile
    with tarfile.open(src) as t:
        members = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    manifest = json.loads(members["manifest.json"])
    base = json.loads(members.pop(manifest[0]["Config"]))
    entries = []
    for n, tag in ((1, "first:v1"), (2, "second:v2")):
        config = json.loads(json.dumps(base))
        config["config"]["Env"] = config["config"].get("Env", []) + ["SEL=%d" % n]
        data = json.dumps(config).encode()
        name = hashlib.sha256(data).hexdigest() + ".json"
        members[name] = data
        entries.append(dict(manifest[0], Config=name, RepoTags=[tag]))
    members["manifest.json"] = json.dumps(entries).encode()
    members.pop("repositories", None)
    with tarfile.open(dst, "w") as t:
        for n, d in members.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    os.chmod(dst, 0o644)


class TestSelection(SbxTestCase):
    """FILE:NAME[:TAG] and --platform pick one image, each cached under its
    own key: a second pick is never served the first one's image."""

    def test_file_name_tag(self):
        path = os.path.join(self.tmp, "two.tar")
        _two_image_archive(fixture("busybox-legacy.tar"), path)
        for sel, want in ((":second:v2", "2"), (":first:v1", "1"), (":second:v2", "2"),
                          (":first:v1", "1")):
            with self.subTest(sel=sel):
                r = self.sbx_cmd(["run", "-q", path + sel, "sh", "-c", "echo $SEL"])
                self.assertEqual((r.rc, r.out), (0, want + "\n"), r)
        self.assertEqual(len(self.layer_dirs()), 1, "the shared layer is stored once")
        self.assertSbxError(self.sbx_cmd(["run", "-q", path + ":first:v2", "true"]),
                            contains="first:v2")

    def test_platform_cache_keys(self):
        image = fixture("busybox-oci.tar")
        order = [("linux/arm64", 126), ("linux/amd64", 0), ("linux/arm64", 126),
                 ("linux/amd64", 0)]
        for i, (platform, rc) in enumerate(order):
            with self.subTest(platform=platform, run=i):
                r = self.sbx_cmd(["run", "--log-level", "debug", "--platform", platform, image,
                                  "/arch"])
                # the amd64 image has no /arch: 127; arm64's decoy /arch is
                # not a program: 126 — which image ran is in the status
                self.assertEqual(r.rc, rc or 127, r)
                cached = "cached as image" in r.err
                self.assertEqual(cached, i >= 2, "run %d (%s)\n%r" % (i, platform, r))


class TestLayers(SbxTestCase):
    def test_hundreds_of_layers(self):
        """150 layers: lowerdir+ (Linux 6.8+) and the short-symlink fallback;
        every layer is there and the last one wins (/last: 149, not 0)."""
        layers = [{"l/%03d" % i: b"%d\n" % i, "last": b"%d\n" % i} for i in range(150)]
        with open("/bin/busybox", "rb") as f:
            layers[0]["bin/busybox"] = f.read()
        path = os.path.join(self.tmp, "many.tar")
        _write_docker_archive(path, layers, modes={"bin/busybox": 0o755})
        r = self.sbx_cmd(["run", "-q", "--entrypoint", "", path, "/nonexistent"])
        self.assertEqual(r.rc, 127, r)  # it mounted; there is no such program
        script = ["sh", "-c", "cat /last; ls /l | wc -l; cat /l/000 /l/149"]
        r = self.sbx_cmd(["run", "--log-level", "debug", "--entrypoint", "/bin/busybox", path]
                         + script)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("mount overlay (150 layers, fsconfig lowerdir+)", r.err)
        self.assertEqual(r.out.split(), ["149", "150", "0", "149"], r)
        # Older kernels, made from outside (tests/nosys.c): fsconfig without
        # lowerdir+ (EINVAL, before 6.8), no new mount API at all (ENOSYS,
        # before 5.2). Both fall back to mount(2) options, layers in order.
        for calls in ("fsconfig=EINVAL", "fsopen", "fsopen,fsconfig,fsmount,move_mount"):
            r = self.sbx_cmd(["run", "--log-level", "debug", "--entrypoint", "/bin/busybox",
                              path] + script, mode="single", wrap=self.nosys(calls))
            self.assertEqual(r.rc, 0, "%s: %r" % (calls, r))
            self.assertIn("mount overlay (150 layers, mount options)", r.err, calls)
            self.assertEqual(r.out.split(), ["149", "150", "0", "149"], calls)

    def test_overlay_other_errors_not_fallen_back(self):
        """Only EINVAL/ENOSYS mean "older kernel": any other errno is the error."""
        path = os.path.join(self.tmp, "one.tar")
        _write_docker_archive(path, [{"f": b"1\n"}])
        r = self.sbx_cmd(["run", "--log-level", "debug", path, "/nonexistent"], mode="single",
                         wrap=self.nosys("fsopen=EPERM"))
        self.assertSbxError(r, contains="fsopen overlay: Operation not permitted")
        self.assertNotIn("mount options", r.err)

    def test_layer_compressions(self):
        import bz2
        import gzip
        import lzma
        import subprocess as sp

        def zstd(data):
            return sp.run(["zstd", "-q", "-c"], input=data, stdout=sp.PIPE, check=True).stdout

        for name, fn in [("gzip", gzip.compress), ("xz", lzma.compress), ("bzip2", bz2.compress),
                         ("zstd", zstd)]:
            path = os.path.join(self.tmp, "c-%s.tar" % name)
            _write_docker_archive(path, [{"f": name.encode() + b"\n"}], compress=fn)
            r = self.sbx_cmd(["run", "-q", path, "/nonexistent"])
            self.assertEqual(r.rc, 127, "%s: %r" % (name, r))  # imported and mounted
        self.assertEqual(len(self.layer_dirs()), 4)

    def test_xattrs_kept(self):
        path = os.path.join(self.tmp, "xattr.tar")
        _write_docker_archive(path, [{"f": b"x\n"}],
                              extra_pax={"f": {"SCHILY.xattr.user.sbxtest": "hello",
                                               "SCHILY.xattr.trusted.overlay.opaque": "y",
                                               "SCHILY.xattr.user.overlay.redirect": "/etc"}})
        r = self.sbx_cmd(["run", path, "/nonexistent"])
        self.assertEqual(r.rc, 127, r)
        (key, layer), = self.layer_dirs()
        f = os.path.join(self.store_for(self.mode), "layers", key, layer, "f")
        self.assertEqual(os.getxattr(f, "user.sbxtest"), b"hello")
        self.assertNotIn("user.overlay.redirect", os.listxattr(f))


class TestRunProgress(SbxTestCase):
    """`sbx run` importing on a terminal draws the bar (after its half-second
    delay: a layer long enough to import, no test switch), -q does not."""
    mode = "single"

    def test_progress_bar_on_run(self):
        import shlex
        import sys
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
        import mkhostile as mh
        path = os.path.join(self.tmp, "slow.tar")
        # zeros behind the tar's end: hashed, not written; seconds to import
        mh.write_bomb(path, size=800 * 1000 * 1000, after_end=True)
        os.chmod(path, 0o644)
        env = {"SBX_MAX_LAYER_SIZE": str(1 << 30)}
        for quiet in (False, True):
            with self.subTest(quiet=quiet):
                root = self.stores.pop(self.mode, None)
                if root:
                    self._remove_store(root)
                cmd = [self.sbx, "run", "--root", self.store_for(self.mode)] + \
                    (["-q"] if quiet else []) + ["--entrypoint", "", path, "/nonexistent"]
                r = self.run_as(["script", "-qec", " ".join(map(shlex.quote, cmd)),
                                 "/dev/null"], env=env)
                self.assertIn("/nonexistent", r.out, r)  # it imported and ran
                if quiet:
                    self.assertNotIn("importing", r.out, r)
                else:
                    self.assertIn("importing [", r.out, r)
                    self.assertIn("layers 1/1", r.out, r)
