"""Decompression: the same bound on every path, and only in-process codecs.

A compressed layer and a compressed outer archive (`docker save | gzip`,
decompressed once into $TMPDIR) are both bounded by SBX_MAX_LAYER_SIZE, for
each codec sbx reads (gzip, bzip2, xz, zstd). libarchive can run external
programs for codecs it has no library for (lz4, lzop, lrzip, grzip, and the
four above when built without theirs): fakes of all of them first in PATH
touch a canary, which must stay untouched; codecs sbx does not read are
refused with a reason."""
import bz2
import gzip
import io
import lzma
import os
import subprocess
import tarfile
import unittest

from sbxtest import SbxTestCase
from test_store import _write_docker_archive

LIMIT = 20 * 1000 * 1000
BOMB = 2 * LIMIT


def _zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


CODECS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress, "zstd": _zstd}


def _lz4(data):
    return subprocess.run(["lz4", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


# Codecs sbx does not read: lz4 for real, the others by their magic numbers
# (enough for libarchive to pick the codec; sbx must refuse before any
# decoding, let alone a program).
FOREIGN = {"lz4": _lz4,
           "lzop": lambda d: b"\x89LZO\x00\r\n\x1a\n" + b"\x10\x40\x20\xa0\x09\x40" + d[:4096],
           "lrzip": lambda d: b"LRZI\x00\x06" + bytes(18) + d[:4096],
           "grzip": lambda d: b"GRZipII\x00\x02\x04:)" + d[:4096]}

PROGRAMS = ("gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "lzma", "zstd", "unzstd", "lz4",
            "lzop", "lrzip", "lrunzip", "grzip", "compress", "uncompress", "lzip", "lrzcat")


class TestDecompressionBounds(SbxTestCase):
    mode = "single"

    def load(self, path, env=None):
        return self.sbx_cmd(["load", "-q", "--root", self.store_for(self.mode), path],
                            root=False, env=env)

    def outer(self, name, compress, zeros_after=0, layer=b"x\n"):
        """A docker archive, compressed as a whole; `zeros_after` zero bytes
        behind the tar's end (read by the decompression, never by tar)."""
        plain = os.path.join(self.tmp, name + ".plain")
        _write_docker_archive(plain, [{"f": layer}])
        with open(plain, "rb") as f:
            data = f.read() + bytes(zeros_after)
        os.unlink(plain)
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(compress(data))
        os.chmod(path, 0o644)
        return path

    def test_layer_bombs(self):
        for codec, fn in CODECS.items():
            with self.subTest(codec=codec):
                path = os.path.join(self.tmp, "layer-%s.tar" % codec)
                _write_docker_archive(path, [{"zeros": bytes(BOMB)}], compress=fn)
                self.assertLess(os.path.getsize(path), BOMB // 50)
                r = self.load(path, env={"SBX_MAX_LAYER_SIZE": str(LIMIT)})
                self.assertSbxError(r, contains="member 'zeros': expands beyond %d bytes" % LIMIT)
                self.assertEqual(self.layer_dirs(), [], r)

    def test_outer_bombs(self):
        """The outer archive's bound is SBX_MAX_LAYER_SIZE too (it was a fixed
        256 GiB): zeros behind the tar's end, which no layer bound sees."""
        paths = {codec: self.outer("outer-%s.tar" % codec, fn, zeros_after=BOMB)
                 for codec, fn in CODECS.items()}
        for codec, path in paths.items():
            with self.subTest(codec=codec):
                r = self.load(path, env={"SBX_MAX_LAYER_SIZE": str(LIMIT)})
                self.assertSbxError(r, contains="%s: expands beyond %d bytes" % (path, LIMIT))
                self.assertEqual(self.layer_dirs(), [], r)
        for codec, path in paths.items():
            with self.subTest(codec=codec, control="a larger bound"):
                r = self.load(path, env={"SBX_MAX_LAYER_SIZE": str(4 * BOMB)})
                self.assertEqual(r.rc, 0, r)

    def test_outer_decompressed_into_tmpdir(self):
        """sbx-store gets $TMPDIR (it decompressed into /tmp whatever the
        user set): a missing one is named in the error, a writable one is
        used and left empty."""
        path = self.outer("tmpdir.tar.gz", gzip.compress)
        store = self.store_for(self.mode)
        missing = os.path.join(self.tmp, "no-such-tmpdir")
        r = self.sbx_cmd(["load", "-q", "--root", store, path], root=False,
                         env={"TMPDIR": missing})
        self.assertSbxError(r, contains="decompress into %s" % missing)
        tmpdir = os.path.join(self.tmp, "tmpdir")
        os.mkdir(tmpdir)
        os.chmod(tmpdir, 0o1777)
        r = self.sbx_cmd(["load", "-q", "--root", store, path], root=False,
                         env={"TMPDIR": tmpdir})
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.listdir(tmpdir), [])

    def test_outer_bomb_bounded_in_tmpdir(self):
        """$TMPDIR (where the outer archive is decompressed) on a tmpfs
        smaller than the bomb and larger than the limit: the limit stops it,
        not the full disk."""
        path = self.outer("outer-tmpdir.tar.gz", gzip.compress, zeros_after=3 * LIMIT)
        small = self.outer("small.tar.gz", gzip.compress)
        script = """
set -u
d=$(mktemp -d)
mount -t tmpfs -o size=%d tmpfs "$d" || exit 90
mkdir "$d/tmp" "$d/store"
SBX_MAX_LAYER_SIZE=%d TMPDIR="$d/tmp" "$SBX" load -q --userns single --root "$d/store" "$BOMB"
echo "rc=$?"
TMPDIR="$d/tmp" "$SBX" load -q --userns single --root "$d/store" "$SMALL" >/dev/null; echo "small=$?"
echo "left=$(ls -A "$d/tmp" | wc -l)"
""" % (2 * LIMIT, LIMIT)
        r = self.run_as(["unshare", "-Urm", "sh", "-c", script],
                        env={"SBX": self.sbx, "BOMB": path, "SMALL": small})
        if r.rc == 90:
            self.skipTest("cannot mount a small tmpfs here: %r" % r)
        self.assertIn("rc=125", r.out, r)
        errors = [l for l in r.err.splitlines() if l.startswith("sbx: ")]
        self.assertEqual(len(errors), 1, r)
        self.assertIn("expands beyond %d bytes" % LIMIT, errors[0], r)
        self.assertIn("small=0", r.out, r)
        self.assertIn("left=0", r.out, r)


class TestNoExternalPrograms(SbxTestCase):
    mode = "single"

    def setUp(self):
        super().setUp()
        self.canary = os.path.join(self.tmp, "canary")
        os.mkdir(self.canary)
        os.chmod(self.canary, 0o777)
        fake = os.path.join(self.tmp, "fakebin")
        os.mkdir(fake)
        for prog in PROGRAMS:
            p = os.path.join(fake, prog)
            with open(p, "w") as f:
                f.write("#!/bin/sh\ntouch '%s/%s'\ncat >/dev/null\nexit 1\n" % (self.canary, prog))
            os.chmod(p, 0o755)
        os.chmod(fake, 0o755)
        self.env = {"PATH": fake + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}

    def load(self, path):
        return self.sbx_cmd(["load", "-q", "--root", self.store_for(self.mode), path],
                            root=False, env=self.env)

    def assertCanaryUntouched(self, r):
        self.assertEqual(os.listdir(self.canary), [], "an external program ran\n%r" % r)

    def test_control_fake_programs_run(self):
        """The fakes work: run from the same PATH, one touches the canary."""
        r = self.run_as(["sh", "-c", "echo x | gzip -d"], env=self.env)
        self.assertEqual(os.listdir(self.canary), ["gzip"], r)

    def test_supported_codecs_in_process(self):
        for codec, fn in CODECS.items():
            with self.subTest(codec=codec, where="layer"):
                path = os.path.join(self.tmp, "l-%s.tar" % codec)
                _write_docker_archive(path, [{"f": codec.encode() + b"\n"}], compress=fn)
                r = self.load(path)
                self.assertEqual(r.rc, 0, r)
                self.assertCanaryUntouched(r)
            with self.subTest(codec=codec, where="outer"):
                r = self.load(TestDecompressionBounds.outer(self, "o-%s.tar" % codec, fn,
                                                            layer=codec.encode()))
                self.assertEqual(r.rc, 0, r)
                self.assertCanaryUntouched(r)

    def test_foreign_codecs_refused(self):
        for codec, fn in FOREIGN.items():
            with self.subTest(codec=codec, where="layer"):
                path = os.path.join(self.tmp, "l-%s.tar" % codec)
                _write_docker_archive(path, [{"f": b"data\n"}], compress=fn)
                r = self.load(path)
                self.assertSbxError(r, contains="not a tar archive")
                self.assertCanaryUntouched(r)
                self.assertEqual(self.layer_dirs(), [], r)
            with self.subTest(codec=codec, where="outer"):
                path = TestDecompressionBounds.outer(self, "o-%s.tar" % codec, fn)
                r = self.load(path)
                self.assertSbxError(r, contains="%s: not a tar archive" % path)
                self.assertCanaryUntouched(r)


if __name__ == "__main__":
    unittest.main()
