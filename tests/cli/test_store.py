"""The store: unpack once, never re-read a known archive, refuse bad digests."""
import os
import shutil
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
