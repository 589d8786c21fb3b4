"""sbx run end to end: formats, the process's config and overrides, exit codes."""
import os
import unittest

from sbxtest import SbxTestCase, fixture


class TestFormats(SbxTestCase):
    def test_hello_world(self):
        r = self.run_ok(fixture("hello.tar"))
        self.assertIn("Hello from sbx!", r.out)
        self.assertEqual(r.err, "")

    def _busybox(self, name):
        r = self.run_ok(fixture(name), "sh", "-c", "echo ok; cat /etc/passwd | head -1")
        self.assertEqual(r.out, "ok\nroot:x:0:0:root:/root:/bin/sh\n")

    def test_docker_legacy(self):
        self._busybox("busybox-legacy.tar")

    def test_docker25(self):
        self._busybox("busybox-docker25.tar")

    def test_oci_archive_gzip(self):
        self._busybox("busybox-oci.tar")

    def test_oci_archive_zstd(self):
        self._busybox("busybox-oci-zstd.tar")

    def test_podman_symlinked_layers(self):
        self._busybox("busybox-podman.tar")

    def test_oci_layout_dir(self):
        self._busybox("busybox-oci-dir")

    def test_compressed_archive(self):
        """docker save | gzip: decompressed once, then read like any archive."""
        import gzip
        path = os.path.join(self.tmp, "ml.tar.gz")
        with open(fixture("multilayer-legacy.tar"), "rb") as f, gzip.open(path, "wb") as g:
            g.write(f.read())
        os.chmod(path, 0o644)
        r = self.sbx_cmd(["run", "--log-level", "debug", path, "cat", "/etc/layer3"])
        self.assertEqual((r.rc, r.out), (0, "3\n"), r)
        self.assertIn("decompressed once", r.err)

    def test_multi_platform_index_picks_host_arch(self):
        # the arm64 decoy image has /arch; the real one does not
        r = self.sbx_cmd(["run", "-q", fixture("busybox-oci.tar"), "ls", "/arch"])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("No such file", r.err)

    def test_multilayer_whiteouts(self):
        for image in ("multilayer-docker25.tar", "multilayer-oci.tar", "multilayer-legacy.tar"):
            r = self.run_ok(fixture(image), "sh", "-c",
                            "test ! -e /etc/motd && ls /opt && cat /etc/layer3 /srv/www/index.html")
            self.assertEqual(r.out, "new\n3\nhello from www\n", image)

    def test_not_an_image(self):
        path = os.path.join(self.tmp, "junk.tar")
        with open(path, "wb") as f:
            f.write(b"this is not a tar archive" * 100)
        os.chmod(path, 0o644)
        self.assertSbxError(self.sbx_cmd(["run", path, "true"]), contains="not a tar archive")

    def test_missing_image(self):
        self.assertSbxError(self.sbx_cmd(["run", "/nonexistent/image.tar", "true"]),
                            contains="/nonexistent/image.tar")


class TestProcess(SbxTestCase):
    def test_image_env_workdir_and_cmd(self):
        r = self.run_ok(fixture("multilayer-docker25.tar"), "sh", "-c",
                        'echo "$FOO|$GREETING|$(pwd)|$HOME|$PATH"')
        self.assertEqual(r.out, "bar|hello world|/srv|/root|"
                         "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")

    def test_default_cmd(self):
        r = self.sbx_cmd(["run", "-q", "-i", fixture("busybox-legacy.tar")], input=b"echo from-stdin\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "from-stdin\n")

    def test_env_overrides(self):
        r = self.run_ok(fixture("multilayer-docker25.tar"), "sh", "-c", 'echo "$FOO $NEW $PASSED"',
                        opts=["-e", "FOO=over", "-e", "NEW=1", "-e", "PASSED", "-e", "UNSET_X"],
                        env={"PASSED": "from-host"})
        self.assertEqual(r.out, "over 1 from-host\n")

    def test_caller_env_does_not_leak(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "env", env={"SECRET_TOKEN": "s3cr3t"})
        self.assertNotIn("s3cr3t", r.out)
        self.assertNotIn("SECRET_TOKEN", r.out)

    def test_workdir_override_created(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "pwd", opts=["-w", "/new/dir"])
        self.assertEqual(r.out, "/new/dir\n")

    def test_relative_workdir_refused(self):
        self.assertSbxError(self.sbx_cmd(["run", "-w", "rel", fixture("busybox-legacy.tar"), "pwd"]),
                            contains="working directory rel: must be an absolute path")

    def test_entrypoint_override(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "a", "b", opts=["--entrypoint", "/bin/echo"])
        self.assertEqual(r.out, "a b\n")

    def test_entrypoint_then_image_cmd_dropped(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), opts=["--entrypoint", "/bin/echo"])
        self.assertEqual(r.out, "\n")

    def test_user_by_name_and_id(self):
        image = fixture("multilayer-docker25.tar")
        self.assertEqual(self.run_ok(image, "id", opts=["-u", "www-data"]).out,
                         "uid=33(www-data) gid=33(www-data) groups=33(www-data)\n")
        self.assertEqual(self.run_ok(image, "id", "-u", opts=["-u", "1000:50"]).out, "1000\n")
        self.assertEqual(self.run_ok(image, "id", "-g", opts=["-u", "1000:50"]).out, "50\n")
        self.assertEqual(self.run_ok(image, "id", "-G", opts=["-u", "app"]).out, "1000 50\n")
        self.assertEqual(self.run_ok(image, "sh", "-c", "echo $HOME", opts=["-u", "app"]).out,
                         "/home/app\n")

    def test_unknown_user(self):
        self.assertSbxError(self.sbx_cmd(["run", "-u", "nosuchuser", fixture("busybox-legacy.tar"),
                                          "id"]), contains="nosuchuser")

    def test_hostname(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c", "hostname; cat /etc/hostname",
                        opts=["--hostname", "box1"])
        self.assertEqual(r.out, "box1\nbox1\n")
        r = self.run_ok(fixture("busybox-legacy.tar"), "hostname")
        self.assertRegex(r.out, r"^[0-9a-f]{12}\n$")
        self.assertNotEqual(r.out.strip(), os.uname().nodename)

    def test_etc_files_are_the_sandboxs(self):
        # Written into the run's writable layer (ns/mount.c etc_files): plain
        # files a program may rename over (sed -i), readable by every user
        # whatever sbx's umask; with --read-only bound, so still writable.
        script = ("stat -c %a /etc/hosts /etc/hostname /etc/resolv.conf; "
                  "grep -c ' /etc/hosts ' /proc/self/mountinfo; "
                  "sed -i s/localhost/lh/ /etc/hosts && grep -c '127.0.0.1.lh' /etc/hosts")
        old = os.umask(0o077)
        try:
            r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c", script)
            self.assertEqual(r.out, "644\n644\n644\n0\n1\n")
            r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c",
                            "grep -c ' /etc/hosts ' /proc/self/mountinfo; echo x >> /etc/hosts && "
                            "tail -1 /etc/hosts; stat -c %a /etc/hosts /etc/resolv.conf",
                            opts=["--read-only"])
        finally:
            os.umask(old)
        self.assertEqual(r.out, "1\nx\n644\n644\n")

    def test_non_ascii_arguments(self):
        # GOption converts string arguments from the locale's charset: sbx
        # sets a UTF-8 one for them, under any caller's locale (the plain
        # ASCII command lines of `sbx run` go without: main.c).
        for lang in ("C", "C.UTF-8"):
            r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c", 'echo "$X"; echo "$0"',
                            "\u00e9t\u00e9 \u2713", opts=["-e", "X=h\u00e9llo \u2713"],
                            env={"LANG": lang})
            self.assertEqual(r.out, "h\u00e9llo \u2713\n\u00e9t\u00e9 \u2713\n", lang)

    def test_etc_hosts_and_resolv(self):
        r = self.run_ok(fixture("busybox-legacy.tar"), "sh", "-c", "cat /etc/hosts /etc/resolv.conf",
                        opts=["--hostname", "hx"])
        self.assertIn("127.0.0.1\tlocalhost", r.out)
        self.assertIn("hx", r.out)


class TestExitCodes(SbxTestCase):
    def test_zero_and_42(self):
        image = fixture("busybox-legacy.tar")
        self.assertEqual(self.sbx_cmd(["run", "-q", image, "true"]).rc, 0)
        self.assertEqual(self.sbx_cmd(["run", "-q", image, "sh", "-c", "exit 42"]).rc, 42)

    def test_killed_by_signal_137(self):
        r = self.sbx_cmd(["run", "-q", fixture("busybox-legacy.tar"), "sh", "-c", "kill -9 $$"])
        self.assertEqual(r.rc, 137, r)

    def test_not_executable_126(self):
        r = self.sbx_cmd(["run", "-q", fixture("busybox-legacy.tar"), "/etc/passwd"])
        self.assertSbxError(r, rc=126, contains="/etc/passwd")

    def test_not_found_127(self):
        r = self.sbx_cmd(["run", "-q", fixture("busybox-legacy.tar"), "no-such-command"])
        self.assertSbxError(r, rc=127, contains="no-such-command")

    def test_path_search_as_execvp(self):
        # PATH in order: a directory without the command, one with a file of
        # that name that is not executable (skipped, as execvp does), then
        # the real one; with only the non-executable one: 126, not 127.
        d = self.user_dir("pathbin")
        with open(os.path.join(d, "true"), "w") as f:
            f.write("not a program\n")
        os.chmod(os.path.join(d, "true"), 0o644)
        image = fixture("busybox-legacy.tar")
        r = self.sbx_cmd(["run", "-q", "-v", d + ":/opt/x:ro", "-e", "PATH=/nowhere:/opt/x:/bin",
                          image, "true"])
        self.assertEqual(r.rc, 0, r)
        r = self.sbx_cmd(["run", "-q", "-v", d + ":/opt/x:ro", "-e", "PATH=/nowhere:/opt/x",
                          image, "true"])
        self.assertSbxError(r, rc=126, contains="true")

    def test_sbx_failure_125(self):
        self.assertSbxError(self.sbx_cmd(["run", "--no-such-option", "x"]),
                            contains="Unknown option --no-such-option")
        self.assertSbxError(self.sbx_cmd(["run"]), contains="run: give an image")
        self.assertSbxError(self.sbx_cmd(["run", "--userns", "bogus", fixture("hello.tar")]),
                            contains="--userns: 'bogus' is not one of")
        self.assertSbxError(self.sbx_cmd(["frobnicate"], root=False),
                            contains="unknown command 'frobnicate'")

    def test_long_program_name_fails_cleanly(self):
        # The program's process shares init's memory until its execve: a
        # failure before it is told by init once sbx reads (sandbox.c), never
        # written into a pipe nobody reads yet, whatever its length (an
        # image's Entrypoint is the image's to choose: 2 MiB here, more than
        # a pipe holds).
        import hashlib
        import io
        import json
        import tarfile
        with tarfile.open(fixture("busybox-legacy.tar")) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))
            base = outer.extractfile(manifest[0]["Layers"][0]).read()
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Entrypoint": ["/" + "x" * (2 << 20)]},
                             "rootfs": {"type": "layers", "diff_ids": [
                                 "sha256:" + hashlib.sha256(base).hexdigest()]}}).encode()
        cfg = hashlib.sha256(config).hexdigest() + ".json"
        man = json.dumps([{"Config": cfg, "RepoTags": ["long:latest"],
                           "Layers": ["a/layer.tar"]}]).encode()
        path = os.path.join(self.tmp, "long.tar")
        with tarfile.open(path, "w") as t:
            for name, data in [(cfg, config), ("manifest.json", man), ("a/layer.tar", base)]:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        os.chmod(path, 0o644)
        r = self.sbx_cmd(["run", "-q", path], timeout=60)
        self.assertSbxError(r, rc=126, contains="exec /xxxx")
        self.assertLess(len(r.err), 8192, "the message is bounded")

    def test_ignored_signals_not_inherited(self):
        # A caller that ignores signals (nohup, a shell's background job)
        # does not pass that on: the program starts with none ignored or
        # blocked, as under docker (process.c reset_ignored_signals).
        # (grep itself: busybox sh -c would ignore SIGQUIT for what it runs)
        r = self.sbx_cmd(["run", "-q", fixture("busybox-legacy.tar"), "grep", "-E",
                          "^Sig(Ign|Blk):", "/proc/self/status"],
                         wrap=["sh", "-c", "trap '' INT QUIT HUP USR1 PIPE TERM; exec \"$0\" \"$@\""])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n")

    def test_signal_forwarded(self):
        import signal
        import subprocess
        p = self.popen(["run", "-q", fixture("busybox-legacy.tar"), "sh", "-c",
                        "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.stdout.readline(), b"ready\n")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 3, err)
        self.assertEqual(out, b"got-term\n")


def _descendants(pid):
    """pid's descendants, from /proc/*/stat (readable for any user)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


class TestEnd(SbxTestCase):
    """What a run leaves when it is over, and what the supervisor gives back
    while it lasts."""

    def test_init_does_not_outlive_sbx(self):
        # init reports the status, then waits for sbx to let go before its
        # own exit tears the sandbox down (ns/pid.c): once sbx is gone, so
        # is init, a run that needed no wait for it included.
        import subprocess
        out = self.user_dir("out")  # for --report
        for opts in ([], ["--report", os.path.join(out, "report.json")]):
            p = self.popen(["run", "-q", "-i"] + opts + [fixture("busybox-legacy.tar"), "sh", "-c",
                                                   "echo ready; read x; exit 5"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self.assertEqual(p.stdout.readline(), b"ready\n")
            inits = [c for c in _descendants(p.pid) if _comm(c) == "sbx-init"]
            self.assertEqual(len(inits), 1, _descendants(p.pid))
            p.stdin.write(b"x\n")
            p.stdin.close()
            p.wait(timeout=30)
            p.stdout.close()
            self.assertEqual(p.returncode, 5)
            self.assertTrue(self.wait_for(lambda: _comm(inits[0]) != "sbx-init", timeout=10),
                            "sbx-init %d outlived sbx %s" % (inits[0], opts))

    def test_output_to_a_slow_reader_is_whole(self):
        # The program is long gone when we start reading: sbx holds the rest
        # of its output (its pipe, 1 MiB) and must wait for us, not drop it
        # once init has reported (stdio.c).
        import subprocess
        import time
        p = self.popen(["run", "-q", fixture("busybox-legacy.tar"), "sh", "-c",
                        "head -c 600000 /dev/zero"], stdout=subprocess.PIPE)
        time.sleep(1.5)
        out = p.stdout.read(100000)  # sbx reads init's report meanwhile
        time.sleep(1)  # and finds us slow again
        out += p.stdout.read()
        p.stdout.close()
        self.assertEqual((p.wait(timeout=30), len(out)), (0, 600000))

    def test_supervisor_gives_back_its_setup_memory(self):
        # A run that lasts: the supervisor unmaps what only its set-up used,
        # SBX_MEMORY_RELEASE_DELAY_MS (200 ms) after the start (util/memory.c).
        import subprocess
        import time
        p = self.popen(["run", "-q", fixture("busybox-legacy.tar"), "sh", "-c",
                        "echo ready; sleep 5"], stdout=subprocess.PIPE)
        self.assertEqual(p.stdout.readline(), b"ready\n")
        t0 = time.monotonic()

        def rss_file():
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("RssFile:"):
                        return int(line.split()[1])
            return 0

        before = rss_file()
        late = time.monotonic() - t0 > 0.1
        try:
            if late:
                self.skipTest("the first look came too late to see the set-up's pages")
            self.assertTrue(self.wait_for(lambda: rss_file() < before * 0.8, timeout=5),
                            "RssFile stayed at %d kB (was %d)" % (rss_file(), before))
        finally:
            p.kill()
            p.wait(timeout=30)
            p.stdout.close()


if __name__ == "__main__":
    unittest.main()
