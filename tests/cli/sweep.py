#!/usr/bin/env python3
"""Runs last (meson: priority -1000, not parallel): fails when anything the
command-line tests started is still there — sandboxes, sbx, sbx-net,
sbx-store, the tests' own servers (a resolver left by a shell's `kill %1`
that did nothing) — or a mount under a test directory. What it finds, it
kills, so one leak does not pile up over runs.

A process belongs to this suite when its environment carries the harness's
SBX_TEST_TAG (sbx and everything that inherits its environment), names this
build's programs or fixtures (scripts the tests run), or its executable is
one of this build's programs. Other builds' tests on the same machine are
left alone."""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sbxtest import FIXTURES, HELPERS, SBX, _stage_programs  # noqa: E402


def ancestors():
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return pids


def ours(pid, marks, exes):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read()
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False
    return exe in exes or any(m in env for m in marks)


def leftovers():
    marks = [b"SBX_TEST_TAG=" + SBX.encode(), b"=" + SBX.encode(), b"=" + FIXTURES.encode()]
    bindirs = {os.path.dirname(SBX), _stage_programs()}
    exes = {os.path.join(d, p) for d in bindirs for p in ("sbx",) + HELPERS}
    mine = ancestors()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in mine and ours(int(name), marks, exes):
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            found.append((int(name), cmd))
    return found


def mounts():
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if "/sbx-test-" in l.split()[4]]


def main():
    left = leftovers()
    if left:
        time.sleep(2)  # a sandbox that is just ending is not a leak
        left = leftovers()
    # The user namespace holders (src/ns/holder.c) stay by design, until
    # idle or their socket is gone: ended here, not a leak.
    holders = [(p, c) for p, c in left if c.startswith("sbx-userns-holder")]
    left = [(p, c) for p, c in left if not c.startswith("sbx-userns-holder")]
    for pid, _ in holders + left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    bad = mounts()
    for pid, cmd in left:
        print("left running: pid %d: %s" % (pid, cmd[:200]))
    for m in bad:
        print("left mounted: %s" % m)
    if left or bad:
        print("FAIL: the tests left %d processes and %d mounts behind" % (len(left), len(bad)))
        return 1
    print("ok: nothing left behind (%d user namespace holders ended)" % len(holders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
