"""Both uid-map paths: a subuid range through newuidmap, and one id."""
import os
import unittest

from sbxtest import IS_ROOT, SbxTestCase, fixture


class TestRange(SbxTestCase):
    mode = "range"

    def test_map_is_a_range(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "cat", "/proc/self/uid_map")
        rows = [l.split() for l in r.out.splitlines()]
        self.assertEqual(len(rows), 2, r.out)
        self.assertEqual(rows[0][0], "0")
        self.assertEqual(rows[0][2], "1")
        self.assertEqual(rows[1][0], "1")
        self.assertGreaterEqual(int(rows[1][2]), 65535)

    def test_owners_kept(self):
        r = self.run_ok(fixture("multilayer-docker25.tar"), "sh", "-c",
                        "stat -c '%u:%g %a %n' /srv/www /srv/www/index.html /data/owned-1000 "
                        "/home/app /usr/local/bin/suid-test")
        self.assertEqual(r.out, "33:33 750 /srv/www\n33:33 640 /srv/www/index.html\n"
                         "1000:1000 600 /data/owned-1000\n1000:1000 755 /home/app\n"
                         "0:0 4755 /usr/local/bin/suid-test\n")

    def test_owner_is_enforced(self):
        # uid 1000 may not read www-data's 0640 file; www-data may
        image = fixture("multilayer-docker25.tar")
        r = self.sbx_cmd(["run", "-q", "-u", "app", image, "cat", "/srv/www/index.html"])
        # cat's own refusal (1), not sbx failing (125) or a missing user
        self.assertEqual(r.rc, 1, r)
        self.assertIn("can't open '/srv/www/index.html': Permission denied", r.err)
        self.assertEqual(self.run_ok(image, "cat", "/srv/www/index.html", opts=["-u", "33"]).out,
                         "hello from www\n")

    def test_layers_keyed_by_mapping(self):
        self.run_ok(fixture("busybox-legacy.tar"), "true")
        keys = {k for k, _ in self.layer_dirs()}
        self.assertEqual(len(keys), 1)
        self.assertTrue(next(iter(keys)).startswith("range-"), keys)


class TestSingle(SbxTestCase):
    mode = "single"

    def test_map_is_one_id(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "cat", "/proc/self/uid_map",
                        "/proc/self/gid_map")
        rows = [l.split() for l in r.out.splitlines()]
        self.assertEqual(len(rows), 2, r.out)
        for row in rows:
            self.assertEqual((row[0], row[2]), ("0", "1"))

    def test_auto_picks_single_without_subuid(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "id")
        self.assertTrue(r.out.startswith("uid=0(root) gid=0(root)"), r.out)
        self.assertEqual({k for k, _ in self.layer_dirs()}, {"single"})

    def test_owners_collapse_to_root(self):
        r = self.run_ok(fixture("multilayer-docker25.tar"), "stat", "-c", "%u:%g %a",
                        "/srv/www/index.html")
        self.assertEqual(r.out, "0:0 640\n")

    def test_non_root_user_refused(self):
        r = self.sbx_cmd(["run", "-u", "www-data", fixture("multilayer-docker25.tar"), "id"])
        self.assertSbxError(r, contains="user www-data (33:33) is not mapped: single-id mode")

    def test_forcing_range_without_one_fails(self):
        if not IS_ROOT:
            self.skipTest("needs a user without a subuid entry")
        r = self.sbx_cmd(["run", "--userns", "range", fixture("hello.tar")])
        self.assertSbxError(r, contains="--userns=range: no range for user")


class TestModesShareNothing(SbxTestCase):
    def test_same_store_two_mappings(self):
        """A layer unpacked under one mapping is never reused under another:
        one user (sbx-test in CI: it has a range) runs both modes in its store."""
        self.require_range()
        image = fixture("busybox-legacy.tar")
        self.run_ok(image, "true", mode="range")
        root = self.store_for("range")
        r = self.sbx_cmd(["run", "-q", "--root", root, "--userns", "single", image, "true"],
                         mode="range", root=False)
        self.assertEqual(r.rc, 0, r)
        keys = sorted(os.listdir(os.path.join(root, "layers")))
        self.assertEqual(len(keys), 2, keys)
        self.assertTrue(keys[0].startswith("range-") and keys[1] == "single", keys)


if __name__ == "__main__":
    unittest.main()
