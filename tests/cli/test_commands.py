"""load, images, inspect, rmi, prune: the store seen from the command line."""
import json
import os
import subprocess
import time
import unittest

from sbxtest import Result, SbxTestCase, fixture


class TestCommands(SbxTestCase):
    def sbx_store(self, *args):
        return self.sbx_cmd([args[0], "--root", self.store_for(self.mode)] + list(args[1:]),
                            root=False)

    def test_load_then_run_by_name(self):
        r = self.sbx_store("load", fixture("busybox-legacy.tar"))
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Loaded image: busybox:latest\n", r.out)
        self.assertRegex(r.out, r"Loaded image ID: sha256:[0-9a-f]{64}\n")
        for name in ("busybox", "busybox:latest", "docker.io/library/busybox:latest"):
            self.assertEqual(self.run_ok(name, "echo", "by-name").out, "by-name\n", name)
        image_id = r.out.split("sha256:")[1].strip()
        self.assertEqual(self.run_ok(image_id[:12], "echo", "by-id").out, "by-id\n")

    def test_images_table_and_json(self):
        self.sbx_store("load", fixture("busybox-legacy.tar"))
        self.sbx_store("load", fixture("multilayer-docker25.tar"))
        r = self.sbx_store("images")
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertTrue(lines[0].startswith("NAME"))
        self.assertEqual(sorted(l.split()[0] for l in lines[1:]),
                         ["busybox:latest", "multilayer:latest"])
        data = json.loads(self.sbx_store("images", "--format", "json").out)
        self.assertEqual(sorted(d["Names"][0] for d in data), ["busybox:latest", "multilayer:latest"])
        for d in data:
            self.assertRegex(d["Id"], r"^sha256:[0-9a-f]{64}$")
            self.assertGreater(d["Size"], 1000)

    def test_inspect_archive_without_import(self):
        r = self.sbx_cmd(["inspect", "--root", self.store_for(self.mode), "--format", "json",
                          fixture("multilayer-oci.tar")], root=False)
        self.assertEqual(r.rc, 0, r)
        d = json.loads(r.out)
        self.assertEqual(d["Config"]["WorkingDir"], "/srv")
        self.assertEqual(len(d["Layers"]), 3)
        for layer in d["Layers"]:
            self.assertRegex(layer["DiffId"], r"^sha256:[0-9a-f]{64}$")
            self.assertRegex(layer["Digest"], r"^sha256:[0-9a-f]{64}$")
            self.assertIn("tar+gzip", layer["MediaType"])
        self.assertEqual(len(d["History"]), 3)
        self.assertEqual(self.layer_dirs(), [], "inspect must not import")
        text = self.sbx_cmd(["inspect", fixture("multilayer-oci.tar")], root=False)
        self.assertIn("WorkingDir:   /srv", text.out)
        self.assertIn("Env:          FOO=bar", text.out)

    def test_inspect_refuses_corrupt_config(self):
        self.assertSbxError(self.sbx_cmd(["inspect", fixture("corrupt-config-legacy.tar")],
                                         root=False), contains="digest mismatch")

    def test_rmi_and_prune(self):
        self.sbx_store("load", fixture("busybox-legacy.tar"))
        self.sbx_store("load", fixture("multilayer-docker25.tar"))
        self.assertEqual(len(self.layer_dirs()), 3)
        r = self.sbx_store("rmi", "multilayer")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Deleted: sha256:", r.out)
        self.assertEqual(len(self.layer_dirs()), 3, "rmi keeps layers until prune")
        r = self.sbx_store("prune")
        self.assertEqual((r.rc, r.out), (0, "Removed 2 unused layers, 72 bytes\n"), r)
        self.assertEqual(len(self.layer_dirs()), 1, "busybox's layer is still used")
        self.assertEqual(self.run_ok("busybox", "echo", "still").out, "still\n")
        self.assertSbxError(self.sbx_store("rmi", "nosuch:image"),
                            contains="image nosuch:image: not in the store")

    def test_prune_keeps_layers_of_running_sandbox(self):
        self.sbx_store("load", fixture("multilayer-docker25.tar"))
        p = self.popen(["run", "-q", "-i", "multilayer", "sh", "-c", "echo up; read x; cat /etc/layer3"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.stdout.readline(), b"up\n")
        self.assertEqual(self.sbx_store("rmi", "multilayer").rc, 0)
        r = self.sbx_store("prune")
        self.assertEqual((r.rc, r.out), (0, "Removed 0 unused layers, 0 bytes\n"), r)
        out, err = p.communicate(b"go\n", timeout=30)
        self.assertEqual((p.returncode, out), (0, b"3\n"), err)
        r = self.sbx_store("prune")
        self.assertIn("Removed 3 unused layers", r.out)
        self.assertEqual(self.layer_dirs(), [])

    def test_unlistable_images_dir_stops_prune(self):
        """images/ that cannot be listed is not "no images": prune deleting
        every layer then would lose them all."""
        self.sbx_store("load", fixture("busybox-legacy.tar"))
        self.sbx_store("load", fixture("multilayer-docker25.tar"))
        images = os.path.join(self.store_for(self.mode), "images")
        os.chmod(images, 0)
        try:
            want = "list %s: Permission denied" % images
            self.assertSbxError(self.sbx_store("prune"), contains=want)
            self.assertEqual(len(self.layer_dirs()), 3, "prune removed layers it could not judge")
            self.assertSbxError(self.sbx_store("images"), contains=want)
        finally:
            os.chmod(images, 0o700)
        r = self.sbx_store("prune")
        self.assertEqual((r.rc, r.out), (0, "Removed 0 unused layers, 0 bytes\n"), r)

    def _load_id(self, image):
        r = self.sbx_store("load", fixture(image))
        self.assertEqual(r.rc, 0, r)
        return r.out.split("Loaded image ID: sha256:")[1].strip()

    def test_config_without_run_record(self):
        """images/<id>.json whose .run is missing (an import killed between
        them by an older sbx): run says so and what to do."""
        image_id = self._load_id("busybox-legacy.tar")
        os.unlink(os.path.join(self.store_for(self.mode), "images", image_id + ".run"))
        line = self.assertSbxError(self.sbx_cmd(["run", image_id[:12], "true"]),
                                   contains="damaged image record")
        self.assertIn("sbx rmi %s" % image_id[:12], line)
        self.assertEqual(self.sbx_store("rmi", image_id[:12]).rc, 0)
        self.assertEqual(os.listdir(os.path.join(self.store_for(self.mode), "images")), [])

    def _two_names(self):
        """busybox-legacy.tar's image loaded under bb2:1 and busybox:latest."""
        import io
        import tarfile
        path = os.path.join(self.tmp, "two-names.tar")
        with tarfile.open(fixture("busybox-legacy.tar")) as src, tarfile.open(path, "w") as dst:
            for m in src.getmembers():
                data = src.extractfile(m).read() if m.isfile() else None
                if m.name == "manifest.json":
                    manifest = json.loads(data)
                    manifest[0]["RepoTags"] = ["bb2:1", "busybox:latest"]
                    data = json.dumps(manifest).encode()
                    m.size = len(data)
                dst.addfile(m, io.BytesIO(data) if data is not None else None)
        os.chmod(path, 0o644)
        r = self.sbx_store("load", path)
        self.assertEqual(r.rc, 0, r)
        return r.out.split("Loaded image ID: sha256:")[1].strip()

    def _rootfs_tar(self):
        import io
        import tarfile
        path = os.path.join(self.tmp, "other.tar")
        with tarfile.open(path, "w") as t:
            ti = tarfile.TarInfo("other")
            ti.size = 6
            t.addfile(ti, io.BytesIO(b"other\n"))
        os.chmod(path, 0o644)
        return path

    def test_rmi_racing_a_load_of_the_same_name(self):
        """rmi NAME while a load re-points NAME: the name is resolved under
        the records lock, so rmi never deletes the image NAME used to name
        (with its other names). The load runs while rmi waits at its second
        flock (the records lock), delayed by strace."""
        image_id = self._two_names()
        root = self.store_for(self.mode)
        wrap = ["strace", "-f", "-qq", "-o", "/dev/null",
                "-e", "inject=flock:delay_enter=4000000:when=2"]
        p = self.popen(["rmi", "--root", root, "bb2:1"], root=False, wrap=wrap,
                       env={"ASAN_OPTIONS": "detect_leaks=0"},  # LeakSanitizer cannot run traced
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1)
        r = self.sbx_store("load", "--rootfs", "--name", "bb2:1", self._rootfs_tar())
        self.assertEqual(r.rc, 0, r)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertNotIn(image_id, out.decode(), "rmi deleted the image bb2:1 named before")
        self.assertEqual(self.run_ok("busybox:latest", "echo", "kept").out, "kept\n")
        self.assertTrue(os.path.exists(os.path.join(root, "images", image_id + ".json")))

    def test_unreadable_names_stop_rmi(self):
        """refs/ that cannot be listed is not "no other names": rmi NAME
        would delete the image and leave its other names dangling."""
        image_id = self._two_names()
        refs = os.path.join(self.store_for(self.mode), "refs")
        os.chmod(refs, 0o300)
        try:
            self.assertSbxError(self.sbx_store("rmi", "bb2:1"),
                                contains="list %s: Permission denied" % refs)
            self.assertSbxError(self.sbx_cmd(["inspect", "--root", self.store_for(self.mode),
                                              "bb2:1"], root=False),
                                contains="list %s: Permission denied" % refs)
            r = self.sbx_store("images")
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.err.count("warning: image names left out"), 1, r)
            self.assertIn(image_id[:12], r.out)
        finally:
            os.chmod(refs, 0o700)
        self.assertTrue(os.path.exists(os.path.join(self.store_for(self.mode), "images",
                                                    image_id + ".json")))
        r = self.sbx_store("rmi", "bb2:1")
        self.assertEqual((r.rc, r.out), (0, "Untagged: bb2:1\n"), r)
        self.assertEqual(self.run_ok("busybox", "echo", "kept").out, "kept\n")

    def test_unreadable_store_is_not_a_pull(self):
        """An images/ or refs/ that cannot be read is reported: it never
        turns `sbx run` into a registry pull (a closed proxy port catches
        one that would be tried)."""
        image_id = self._load_id("busybox-legacy.tar")
        root = self.store_for(self.mode)
        env = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
        for d, ref in (("images", image_id[:12]), ("refs", "busybox"), ("refs", "busybox:1")):
            path = os.path.join(root, d)
            os.chmod(path, 0)
            try:
                r = self.sbx_cmd(["run", ref, "true"], env=env)
                line = self.assertSbxError(r, contains="Permission denied")
                self.assertIn(path, line)
                for word in ("pull", "registry", "127.0.0.1", "docker.io"):
                    self.assertNotIn(word, r.err, r)
            finally:
                os.chmod(path, 0o700)
        self.assertEqual(self.run_ok(image_id[:12], "echo", "ok").out, "ok\n")

    def test_prune_drops_names_of_removed_images(self):
        """A name whose image record is gone (a record removed by hand, an
        rmi racing a load in older versions) is listed nowhere: prune
        removes it."""
        image_id = self._load_id("busybox-legacy.tar")
        root = self.store_for(self.mode)
        for ext in (".json", ".run"):
            os.unlink(os.path.join(root, "images", image_id + ext))
        self.assertEqual(len(os.listdir(os.path.join(root, "refs"))), 1)
        r = self.sbx_store("prune")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.listdir(os.path.join(root, "refs")), [])

    def test_image_removed_while_run_finds_it(self):
        """An rmi between run's lookup and its read of the record is said as
        such, not as a damaged record to load again. strace holds run after
        its listing of images/ (its second getdents64) while rmi runs."""
        image_id = self._load_id("busybox-legacy.tar")
        wrap = ["strace", "-f", "-qq", "-o", "/dev/null",
                "-e", "inject=getdents64:delay_exit=3000000:when=2"]
        p = self.popen(["run", image_id[:12], "true"], wrap=wrap,
                       env={"ASAN_OPTIONS": "detect_leaks=0"},  # LeakSanitizer cannot run traced
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1)
        self.assertEqual(self.sbx_store("rmi", image_id[:12]).rc, 0)
        out, err = p.communicate(timeout=60)
        r = Result(p, out, err)
        line = self.assertSbxError(r, contains="removed from the store meanwhile")
        self.assertNotIn("damaged", line)

    def test_prune_sweeps_half_written_records(self):
        """Under the store's exclusive lock, what killed writes left goes: a
        .run without its .json, the temporary files of atomic writes."""
        image_id = self._load_id("busybox-legacy.tar")
        root = self.store_for(self.mode)
        pw = self.user_for(self.mode)
        left = [os.path.join("images", "ab" * 32 + ".run"),
                os.path.join("images", ".%s.json.0a1b2c3d.tmp" % image_id),
                os.path.join("refs", ".%s.0a1b2c3d.tmp" % ("cd" * 32)),
                os.path.join("layer-sizes", ".%s.0a1b2c3d.tmp" % ("ef" * 32)),
                os.path.join("archives", ".%s.0a1b2c3d.tmp" % ("12" * 32))]
        for f in left:
            with open(os.path.join(root, f), "w") as fh:
                fh.write("x")
            if pw:
                os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)
        r = self.sbx_store("prune")
        self.assertEqual((r.rc, r.out), (0, "Removed 0 unused layers, 0 bytes\n"), r)
        self.assertEqual([f for f in left if os.path.exists(os.path.join(root, f))], [])
        self.assertEqual(sorted(os.listdir(os.path.join(root, "images"))),
                         [image_id + ".json", image_id + ".run"])
        self.assertEqual(self.run_ok("busybox", "echo", "still").out, "still\n")

    def test_prune_drops_filters_of_earlier_boots(self):
        """A compiled seccomp filter's name holds the boot it was made in:
        prune removes those written before this boot, and nothing else."""
        self.run_ok(fixture("busybox-legacy.tar"), "true")  # compiles the default filter
        d = os.path.join(self.store_for(self.mode), "seccomp")
        current = sorted(os.listdir(d))
        self.assertEqual(len(current), 1, current)
        pw = self.user_for(self.mode)
        old, new, tmp = "0" * 32 + ".bpf", "1" * 32 + ".bpf", ".%s.bpf.0a1b2c.tmp" % ("2" * 32)
        for f in (old, new, tmp):
            with open(os.path.join(d, f), "w") as fh:
                fh.write("x")
            if pw:
                os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)
        os.utime(os.path.join(d, old), (86400, 86400))  # 1970: before any boot
        os.utime(os.path.join(d, tmp), (86400, 86400))  # a compile's: not prune's
        r = self.sbx_store("prune")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(os.listdir(d)), sorted(current + [new, tmp]))
        self.assertEqual(self.run_ok(fixture("busybox-legacy.tar"), "echo", "still").out, "still\n")

    def test_corrupted_config_named(self):
        """One damaged images/<id>.json: prune stops naming it (and how to
        remove it); images lists the others and warns naming it."""
        bad = self._load_id("busybox-legacy.tar")
        self._load_id("hello.tar")
        with open(os.path.join(self.store_for(self.mode), "images", bad + ".json"), "w") as fh:
            fh.write("{not json")
        line = self.assertSbxError(self.sbx_store("prune"), contains="image %s: " % bad[:12])
        self.assertIn("sbx rmi %s" % bad[:12], line)
        self.assertEqual(len(self.layer_dirs()), 2)
        r = self.sbx_store("images")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([l.split()[0] for l in r.out.splitlines()[1:]], ["hello-world:latest"])
        self.assertRegex(r.err, r"^sbx: warning: image %s: damaged image record .*sbx rmi %s'\n$"
                         % (bad[:12], bad[:12]))
        self.assertEqual(self.sbx_store("rmi", bad[:12]).rc, 0)
        r = self.sbx_store("prune")
        self.assertEqual((r.rc, r.out[:17]), (0, "Removed 1 unused "), r)

    def _read_only(self, *dirs):
        """The store's directories (and those under them) made unwritable:
        undo() gives their modes back."""
        root = self.store_for(self.mode)
        modes = {}
        for d in dirs:
            for top, subdirs, _ in os.walk(os.path.join(root, d)):
                modes[top] = os.stat(top).st_mode & 0o7777
                os.chmod(top, modes[top] & ~0o222)
        return lambda: [os.chmod(d, m) for d, m in modes.items()]

    def test_rmi_of_a_name_that_will_not_go(self):
        """A name it cannot remove (refs/ read-only) fails the rmi, one line,
        125: never "Untagged" for a name that stays, nor a deleted image
        left with its name."""
        image_id = self._two_names()
        root = self.store_for(self.mode)
        undo = self._read_only("refs")
        try:
            r = self.sbx_store("rmi", "bb2:1")
            self.assertSbxError(r, contains="rmi bb2:1: remove its name %s/refs/" % root)
            self.assertIn("Permission denied", r.err)
            self.assertNotIn("Untagged", r.out)
            r = self.sbx_store("rmi", "-f", "busybox")
            self.assertSbxError(r, contains="remove its name")
            self.assertEqual(r.out, "")
        finally:
            undo()
        self.assertEqual(sorted(os.listdir(os.path.join(root, "images"))),
                         [image_id + ".json", image_id + ".run"])
        self.assertEqual(self.run_ok("bb2:1", "echo", "kept").out, "kept\n")
        r = self.sbx_store("rmi", "bb2:1")
        self.assertEqual((r.rc, r.out), (0, "Untagged: bb2:1\n"), r)

    def test_rmi_of_a_read_only_store(self):
        """Nothing can be removed: rmi says why (the archive cache it clears
        first), prints nothing done, and the image keeps its name."""
        image_id = self._load_id("busybox-legacy.tar")
        root = self.store_for(self.mode)
        undo = self._read_only(".")
        try:
            r = self.sbx_store("rmi", "busybox")
            self.assertSbxError(r, contains="rmi %s: remove %s/archives/" % (image_id[:12], root))
            self.assertEqual(r.out, "")
        finally:
            undo()
        self.assertEqual(self.run_ok("busybox", "echo", "kept").out, "kept\n")

    def test_prune_that_cannot_remove_fails(self):
        """prune of layers it cannot move (a read-only store; lock files it
        cannot create): a warning for each, "not removed", 125 (podman image
        prune fails too), never "Removed 0" and success."""
        self._load_id("busybox-legacy.tar")
        self._load_id("multilayer-docker25.tar")
        self.assertEqual(self.sbx_store("rmi", "multilayer").rc, 0)
        root = self.store_for(self.mode)
        locks = os.path.join(root, "locks")
        for f in os.listdir(locks)[:1]:
            os.unlink(os.path.join(locks, f))
        undo = self._read_only(".")
        try:
            r = self.sbx_store("prune")
            self.assertSbxError(r, contains="prune: store %s: 2 unused items not removed" % root)
            self.assertEqual(r.out, "")
            warnings = [l for l in r.err.splitlines() if l.startswith("sbx: warning: prune: ")]
            self.assertEqual(len(warnings), 2, r)
            self.assertIn("Permission denied", r.err)
        finally:
            undo()
        self.assertEqual(len(self.layer_dirs()), 3)
        r = self.sbx_store("prune")
        self.assertEqual((r.rc, r.out), (0, "Removed 2 unused layers, 72 bytes\n"), r)

    def test_prune_removes_lock_files(self):
        """A layer's lock file goes with the layer (one inode per layer ever
        stored otherwise), and one whose layer is gone goes too; the lock of
        a layer in use stays, and a run recreates a missing one."""
        self._load_id("busybox-legacy.tar")
        self._load_id("multilayer-docker25.tar")
        root = self.store_for(self.mode)
        locks = os.path.join(root, "locks")
        key = os.listdir(os.path.join(root, "layers"))[0]
        stray = "%s-%s.lock" % (key, "ab" * 32)
        with open(os.path.join(locks, stray), "w"):
            pass
        self.assertEqual(len(os.listdir(locks)), 4)
        self.assertEqual(self.sbx_store("rmi", "multilayer").rc, 0)
        r = self.sbx_store("prune")
        self.assertEqual((r.rc, r.out), (0, "Removed 2 unused layers, 72 bytes\n"), r)
        kept = ["%s-%s.lock" % (k, d) for k, d in self.layer_dirs()]
        self.assertEqual(os.listdir(locks), kept)
        os.unlink(os.path.join(locks, kept[0]))
        self.assertEqual(self.run_ok("busybox", "echo", "ok").out, "ok\n")
        self.assertEqual(os.listdir(locks), kept)

    def test_load_of_a_directory_without_an_index(self):
        """A directory that is no OCI layout: the line names it."""
        d = os.path.join(self.tmp, "not-a-layout")
        os.mkdir(d, 0o755)
        with open(os.path.join(d, "README"), "w") as fh:
            fh.write("x\n")
        self.assertSbxError(self.sbx_store("load", d),
                            contains="%s: not an image archive: no manifest.json" % d)

    def test_multi_image_archive_selection(self):
        self.assertSbxError(self.sbx_cmd(["run", fixture("busybox-oci.tar") + ":nosuch", "true"]),
                            contains="no image named nosuch in the archive")


if __name__ == "__main__":
    unittest.main()


class TestProgress(SbxTestCase):
    def _load_on_tty(self, *extra, delay="0"):
        root = self.store_for(self.mode)
        cmd = " ".join([self.sbx, "load", "--root", root] + list(extra) +
                       [fixture("multilayer-oci.tar")])
        return self.run_as(["script", "-qec", cmd, "/dev/null"],
                           env={"SBX_PROGRESS_DELAY_MS": delay})

    def test_progress_delay(self):
        """$SBX_PROGRESS_DELAY_MS (documented): no bar for an import shorter."""
        r = self._load_on_tty(delay="3600000")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Loaded image", r.out)
        self.assertNotIn("importing", r.out)
        r = self._load_on_tty(delay="soon")
        self.assertIn("sbx: SBX_PROGRESS_DELAY_MS: 'soon' is not milliseconds", r.out)

    def test_progress_bar_on_a_terminal(self):
        r = self._load_on_tty()
        self.assertEqual(r.rc, 0, r)
        self.assertIn("importing [", r.out)
        self.assertIn("layers 3/3", r.out)

    def test_quiet_and_not_a_terminal(self):
        r = self._load_on_tty("--quiet")
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("importing", r.out)
        r = self.sbx_cmd(["load", "--root", self.store_for(self.mode), fixture("busybox-oci.tar")],
                         root=False, env={"SBX_PROGRESS_DELAY_MS": "0"})
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("importing", r.out + r.err)


class TestNames(SbxTestCase):
    def _archive_with_tags(self, path, tags, marker):
        import hashlib
        import io
        import tarfile
        with tarfile.open(fixture("busybox-legacy.tar")) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))
            base = outer.extractfile(manifest[0]["Layers"][0]).read()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo("marker")
            ti.size = len(marker)
            t.addfile(ti, io.BytesIO(marker))
        top = buf.getvalue()
        diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in (base, top)]
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        cfg = hashlib.sha256(config).hexdigest() + ".json"
        man = json.dumps([{"Config": cfg, "RepoTags": tags,
                           "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode()
        with tarfile.open(path, "w") as t:
            for name, data in [(cfg, config), ("manifest.json", man), ("a/layer.tar", base),
                               ("b/layer.tar", top)]:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        os.chmod(path, 0o644)

    def test_names_cannot_take_over_ids_or_terminals(self):
        root = self.store_for(self.mode)
        good = os.path.join(self.tmp, "good.tar")
        self._archive_with_tags(good, ["good:latest"], b"trusted\n")
        out = self.sbx_cmd(["load", "--root", root, good], root=False).out
        image_id = out.split("sha256:")[1].strip()
        evil = os.path.join(self.tmp, "evil.tar")
        self._archive_with_tags(evil, ["sha256:" + image_id, image_id + ":latest",
                                       image_id[:12] + ":latest",
                                       "esc:\x1b[31mred\nLoaded image ID: sha256:fake"],
                                b"attacker\n")
        r = self.sbx_cmd(["load", "--root", root, evil], root=False)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("\x1b", r.out + r.err)
        self.assertNotIn("sha256:fake", r.out)
        for ref in ("sha256:" + image_id, image_id, image_id[:12]):
            self.assertEqual(self.run_ok(ref, "cat", "/marker").out, "trusted\n", ref)
        names = self.sbx_cmd(["images", "--root", root], root=False).out
        self.assertNotIn("\x1b", names)
