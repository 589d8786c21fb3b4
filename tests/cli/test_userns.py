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


class TestMixedMappings(SbxTestCase):
    """One store used with --userns range and single: leftovers of range
    runs hold files of subordinate ids that single mode cannot remove."""
    mode = "range"

    def _leftover(self, path, owner):
        os.makedirs(os.path.join(path, "d"))
        with open(os.path.join(path, "d", "f"), "w") as fh:
            fh.write("x")
        for p in (os.path.join(path, "d", "f"), os.path.join(path, "d")):
            os.chown(p, owner, owner)

    def test_prune_in_single_mode_leaves_range_leftovers(self):
        if not IS_ROOT:
            self.skipTest("making files of subordinate ids needs root")
        root = self.store_for("range")
        r = self.sbx_cmd(["load", "--root", root, fixture("hello.tar")], root=False)
        self.assertEqual(r.rc, 0, r)
        key = [k for k in os.listdir(os.path.join(root, "layers")) if k.startswith("range-")][0]
        sub = int(key.split("-")[1]) + 1000  # a subordinate id of the range
        pw = self.user_for("range")
        disk = os.path.join(root, "run-disk")
        os.mkdir(disk, 0o700)
        os.chown(disk, pw.pw_uid, pw.pw_gid)
        old_tmp = os.path.join(root, "tmp", "prune-%s.0a1b2c" % ("ab" * 32))  # older sbx: no key
        new_tmp = os.path.join(root, "tmp", "%s-%s.0a1b2c" % (key, "cd" * 32))
        old_disk = os.path.join(disk, "0a1b2c3d4e5f")
        new_disk = os.path.join(disk, "1a1b2c3d4e5f")
        for p in (old_tmp, new_tmp, old_disk, new_disk):
            self._leftover(p, sub)
        with open(os.path.join(new_disk, "idmap"), "w") as fh:
            fh.write(key + "\n")
        for p in (old_tmp, new_tmp, old_disk, new_disk):
            for dirpath, dirs, files in os.walk(p):
                if os.stat(dirpath).st_uid == 0:
                    os.chown(dirpath, pw.pw_uid, pw.pw_gid)
                for f in files:
                    if os.stat(os.path.join(dirpath, f)).st_uid == 0:
                        os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)

        r = self.sbx_cmd(["prune", "--userns", "single", "--root", root], root=False)
        self.assertEqual(r.rc, 0, "a leftover single mode cannot remove must not stop prune\n%r" % r)
        warnings = [l for l in r.err.splitlines() if l.startswith("sbx: warning: ")]
        self.assertEqual(len(warnings), 2, r)
        for path, w in zip((old_tmp, old_disk), sorted(warnings, key=lambda w: "run-disk" in w)):
            self.assertIn("remove %s: " % path, w)
            self.assertIn("Permission denied", w)
            self.assertIn("sbx prune --userns range", w)
        for p in (old_tmp, new_tmp, old_disk, new_disk):
            self.assertTrue(os.path.exists(p), p)

        r = self.sbx_cmd(["prune", "--userns", "range", "--root", root], root=False)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("warning", r.err, r)
        self.assertEqual(os.listdir(os.path.join(root, "tmp")), [])
        self.assertEqual(os.listdir(disk), ["lock"])
        self.assertEqual(self.run_ok("hello-world").rc, 0)
