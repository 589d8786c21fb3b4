"""docs/walkthrough.md stays true: every ```sh block runs (as the unprivileged
user), and each `# expect: TEXT` must appear in that line's output."""
import os
import re
import shutil
import unittest

from sbxtest import SRCDIR, SbxTestCase, _stage_files, fixture

DOC = os.path.join(SRCDIR, "docs", "walkthrough.md")


def blocks():
    text = open(DOC).read()
    return re.findall(r"```sh\n(.*?)```", text, re.S)


class TestWalkthrough(SbxTestCase):
    mode = "range"

    def test_every_command(self):
        work = os.path.join(self.tmp, "work")
        os.makedirs(os.path.join(work, "tests", "fixtures"))
        os.makedirs(os.path.join(work, "build", "examples"))
        shutil.copy(os.path.join(SRCDIR, "tests", "fixtures", "mkimage.py"),
                    os.path.join(work, "tests", "fixtures"))
        shutil.copy(fixture("../../examples/hello-world.tar"),
                    os.path.join(work, "build", "examples"))
        runtime = os.path.join(self.tmp, "runtime")
        os.mkdir(runtime, 0o700)
        pw = self.user_for(self.mode)
        store = self.store_for(self.mode)
        for d in (work, runtime):
            for root, dirs, files in os.walk(d):
                for n in [root] + [os.path.join(root, f) for f in dirs + files]:
                    if pw:
                        os.chown(n, pw.pw_uid, pw.pw_gid)
        env = {"SBX_ROOT": store, "XDG_RUNTIME_DIR": runtime,
               "PATH": os.path.dirname(self.sbx) + ":/usr/local/bin:/usr/bin:/bin"}
        found = blocks()
        self.assertGreaterEqual(len(found), 8)
        for block in found:
            for line in block.splitlines():
                if not line.strip():
                    continue
                cmd, _, expect = line.partition("# expect:")
                r = self.run_as(["sh", "-c", "cd %s && %s" % (work, cmd)], env=env)
                self.assertEqual(r.rc, 0, "%s\n%r" % (line, r))
                if expect.strip():
                    self.assertIn(expect.strip(), r.out, "%s\n%r" % (line, r))


if __name__ == "__main__":
    unittest.main()
