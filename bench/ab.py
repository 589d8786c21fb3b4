#!/usr/bin/env python3
"""A/B start-up timer: two (or more) sbx builds side by side with bwrap.

    bench/ab.py --sbx before/src/sbx --sbx after/src/sbx [--rounds 150] [--pause-ms 30]

Each round runs every command once, in a shuffled order, each after an idle
pause (the previous start's teardown is the kernel's, off sbx's path: without
the pause it lands in the next command's time). The commands: bwrap on a
busybox rootfs (the anchor) and, per sbx build, `sbx run --network none -q
busybox.tar true` with --userns single and --userns range (--modes; "slirp"
is range with the default network, "slirp0" the same without the spare
sbx-net: SBX_NET_SPARE=0). Each build has a runtime directory of its own
(its spare sbx-net is its own). Prints the median
wall time (posix_spawn to waitpid) of each and its ratio to bwrap's.
Started as root it re-runs itself as SBX_BENCH_USER (default sbx-test, which
needs an /etc/subuid range for the range mode). Timing only: no test
depends on it.
"""
import argparse
import os
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def as_user():
    user = os.environ.get("SBX_BENCH_USER", "sbx-test")
    pw = pwd.getpwnam(user)
    os.execvp("setpriv", ["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid),
                          "--init-groups", "--reset-env", "env", "HOME=" + pw.pw_dir,
                          "/usr/bin/python3"] + sys.argv)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sbx", action="append", required=True, help="an sbx binary (repeat)")
    ap.add_argument("--image", default=None, help="busybox image (default: the build's fixture)")
    ap.add_argument("--rounds", type=int, default=150)
    ap.add_argument("--pause-ms", type=float, default=30)
    ap.add_argument("--modes", default="single,range",
                    help="of single, range, slirp (range with the default network)")
    a = ap.parse_args()
    if os.getuid() == 0:
        as_user()
    sbxs = [os.path.abspath(s) for s in a.sbx]
    image = a.image or os.path.join(os.path.dirname(os.path.dirname(sbxs[0])), "tests",
                                    "fixtures", "busybox-oci.tar")
    busybox = shutil.which("busybox")
    w = tempfile.mkdtemp(prefix="sbx-ab-", dir="/dev/shm")
    try:
        rootfs = os.path.join(w, "rootfs")
        for d in ("bin", "proc", "dev", "tmp"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy(busybox, os.path.join(rootfs, "bin", "busybox"))
        os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
        env = dict(os.environ)
        cmds = {"bwrap": ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/",
                          "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--hostname", "x",
                          "true"]}
        envs = {"bwrap": env}
        for i, s in enumerate(sbxs):
            store = os.path.join(w, "store%d" % i)
            run = os.path.join(w, "run%d" % i)
            os.mkdir(run, 0o700)
            for m in a.modes.split(","):
                # "slirp": range mode with the default network; "slirp0": without a spare
                slirp = m.startswith("slirp")
                c = [s, "run", "--root", store, "--userns", "range" if slirp else m] + \
                    ([] if slirp else ["--network", "none"]) + ["-q", image, "true"]
                e = dict(env, XDG_RUNTIME_DIR=run, SBX_NET_SPARE="0" if m == "slirp0" else "1")
                r = subprocess.run(c, env=e, capture_output=True, text=True)  # import, cache
                if r.returncode != 0:
                    sys.exit("%s: %s" % (" ".join(c), r.stderr.strip()))
                cmds["sbx%d %s" % (i + 1, m)] = c
                envs["sbx%d %s" % (i + 1, m)] = e
        times = {k: [] for k in cmds}
        for _ in range(a.rounds):
            order = list(cmds)
            random.shuffle(order)
            for k in order:
                time.sleep(a.pause_ms / 1000)
                t = time.monotonic()
                pid = os.posix_spawnp(cmds[k][0], cmds[k], envs[k])
                _, st = os.waitpid(pid, 0)
                times[k].append((time.monotonic() - t) * 1000)
                if st != 0:
                    sys.exit("%s failed (%d)" % (k, st))
        base = statistics.median(times["bwrap"])
        for i, s in enumerate(sbxs):
            print("sbx%d = %s" % (i + 1, s))
        print("%-16s %10s %8s" % ("command", "median ms", "x bwrap"))
        for k, v in times.items():
            m = statistics.median(v)
            print("%-16s %10.2f %8.3f" % (k, m, m / base))
    finally:
        shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
