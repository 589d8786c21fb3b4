#!/usr/bin/env python3
"""Seed corpora for the libFuzzer targets, from the suite's built fixtures
(nothing binary is checked in).

    tests/fuzz/seeds.py FIXTURES_DIR OUT_DIR

writes OUT_DIR/fuzz_image/, OUT_DIR/fuzz_unpack/, OUT_DIR/fuzz_seccomp/, OUT_DIR/fuzz_policy/,
OUT_DIR/fuzz_oci_config/, OUT_DIR/fuzz_regconf/.
The first byte of a fuzz_image seed picks the parser (see fuzz_image.c).
"""
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile

MAX = 64 * 1024  # the runner's -max_len


def write(out, target, data, n=[0]):
    if len(data) > MAX:
        return
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    n[0] += 1


def members(path):
    """(name, bytes) of the small members of a fixture archive or layout dir."""
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for fn in files:
                p = os.path.join(root, fn)
                if os.path.getsize(p) <= MAX:
                    with open(p, "rb") as f:
                        yield os.path.relpath(p, path), f.read()
        return
    try:
        t = tarfile.open(path)
    except tarfile.TarError:
        return
    with t:
        for m in t.getmembers():
            if m.isfile() and m.size <= 4 << 20:
                yield m.name, t.extractfile(m).read()


def decompress(data):
    for fn in (gzip.decompress, bz2.decompress, lzma.decompress):
        try:
            return fn(data)
        except Exception:
            pass
    if data[:4] == b"\x28\xb5\x2f\xfd":
        try:
            return subprocess.run(["zstd", "-dqc"], input=data, stdout=subprocess.PIPE,
                                  check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
    return data if is_tar(data) else None


def is_tar(data):
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            t.getmembers()
        return True
    except tarfile.TarError:
        return False


def small_layer():
    """A layer with every kind of entry the unpacker handles."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, type=tarfile.REGTYPE, data=b"", **kw):
            ti = tarfile.TarInfo(name)
            ti.type = type
            ti.size = len(data)
            for k, v in kw.items():
                setattr(ti, k, v)
            t.addfile(ti, io.BytesIO(data) if data else None)
        add("etc", tarfile.DIRTYPE, mode=0o755)
        add("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n", uid=1000, gid=1000)
        add("etc/link", tarfile.SYMTYPE, linkname="passwd")
        add("etc/hard", tarfile.LNKTYPE, linkname="etc/passwd")
        add("etc/.wh.gone")
        add("var/.wh..wh..opq")
        add("run/fifo", tarfile.FIFOTYPE)
        add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("x", data=b"x", pax_headers={"SCHILY.xattr.user.k": "v"})
    return buf.getvalue()


def small_archive(layer):
    """A docker-archive (legacy) and the same image as an OCI layout tar."""
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/sh"], "Env": ["A=1"], "WorkingDir": "/"},
                         "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    chex = hashlib.sha256(config).hexdigest()
    out = []
    files = {chex + ".json": config, "l/layer.tar": layer,
             "manifest.json": json.dumps([{"Config": chex + ".json", "RepoTags": ["s:1"],
                                           "Layers": ["l/layer.tar"]}]).encode()}
    out.append(files)
    gz = gzip.compress(layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + chex, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + hashlib.sha256(gz).hexdigest(), "size": len(gz)}]}).encode()
    mhex = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + mhex,
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "s:1"}}]}).encode()
    out.append({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index,
                "blobs/sha256/" + chex: config, "blobs/sha256/" + mhex: manifest,
                "blobs/sha256/" + hashlib.sha256(gz).hexdigest(): gz})
    tars = []
    for files in out:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name, data in files.items():
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        tars.append(buf.getvalue())
    return tars, config, manifest, index, files


PROFILES = [
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["unshare"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["setns"], "action": "SCMP_ACT_TRAP"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
     "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
     "syscalls": [
         {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
         {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
         {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
          "args": [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]},
         {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
          "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
          "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
         {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
         {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
         {"names": ["getpid"], "action": "SCMP_ACT_LOG", "includes": {"minKernel": "4.8"}}]},
    {"defaultAction": "SCMP_ACT_KILL_THREAD", "syscalls": []},
]


# fuzz_oci_config: config.json as `sbx-oci spec` writes it, and as podman and
# containerd's shim send it (seccomp with architectures and flags, resources,
# hooks, namespaces with paths, devices, tmpcopyup).
def oci_configs():
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    base = {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0, "umask": 18,
                                                "additionalGids": [5, 20]},
                    "args": ["sh"], "env": ["PATH=/bin"], "cwd": "/",
                    "capabilities": {k: caps for k in ("bounding", "effective", "permitted",
                                                       "ambient")},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                    "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "sbx",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "tmpcopyup", "mode=1777", "size=65536k"]},
                   {"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}],
        "linux": {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                  "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                  "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                                 {"type": "mount"}, {"type": "user"},
                                 {"type": "network", "path": "/proc/1/ns/net"}],
                  "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
                  "sysctl": {"net.ipv4.ip_forward": "1"},
                  "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]},
    }
    yield base
    with_seccomp = json.loads(json.dumps(base))
    with_seccomp["linux"]["seccomp"] = dict(PROFILES[1], flags=[
        "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"])
    with_seccomp["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}], "memory": {"limit": 100000000},
        "pids": {"limit": 100}, "cpu": {"shares": 512}}
    with_seccomp["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}],
                             "poststop": [{"path": "/bin/true", "env": ["A=b"]}]}
    with_seccomp["annotations"] = {"io.kubernetes.cri.container-type": "container"}
    yield with_seccomp
    listener = json.loads(json.dumps(base))
    listener["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                    "listenerPath": "/run/agent.sock",
                                    "architectures": ["SCMP_ARCH_AARCH64"]}
    yield listener


# fuzz_policy: the first byte picks the policy (bit 0 an allowlist, 1 host
# loopback, 2 host addresses, 3 a host address list: fuzz_policy.c), then an
# Ethernet frame from the sandbox's tap0: one of each kind the policy judges.
POLICY_FRAMES = {
    "arp": (
        "0052550a000202020000000001080600010800060400010000000000000000000000000000000000"
        "000000"
    ),
    "fragment": (
        "0052550a00020202000000000108004500003d00002000401100000a0002640a0002039c40003500"
        "29000012340100000100000000000003777777076578616d706c6503636f6d0000010001"
    ),
    "host-address": (
        "0952550a00020202000000000108004500002800000000400600000a000264cb0071059c40005000"
        "000001000000005002ffff00000000"
    ),
    "icmp-echo": (
        "0052550a00020202000000000108004500001c00000000400100000a000264c00002010800000000"
        "010001"
    ),
    "tcp-syn-allowed": (
        "0352550a00020202000000000108004500002800000000400600000a0002640a0002029c401f9000"
        "000001000000005002ffff00000000"
    ),
    "tcp-syn-refused": (
        "0152550a00020202000000000108004500002800000000400600000a000264c00002099c40001600"
        "000001000000005002ffff00000000"
    ),
    "udp-67-elsewhere": (
        "0152550a00020202000000000108004500002100000000401100000a000264c00002019c40004300"
        "0d0000657866696c"
    ),
    "udp-dhcp": (
        "0152550a00020202000000000108004500010c00000000401100000a000264ffffffff9c40004300"
        "f8000001010101010101010101010101010101010101010101010101010101010101010101010101"
        "01010101010101010101010101010101010101010101010101010101010101010101010101010101"
        "01010101010101010101010101010101010101010101010101010101010101010101010101010101"
        "01010101010101010101010101010101010101010101010101010101010101010101010101010101"
        "01010101010101010101010101010101010101010101010101010101010101010101010101010101"
        "01010101010101010101010101010101010101010101010101010101010101010101010101010101"
        "010101"
    ),
    "udp-dns-query": (
        "0152550a00020202000000000108004500003d00000000401100000a0002640a0002039c40003500"
        "29000012340100000100000000000003777777076578616d706c6503636f6d0000010001"
    ),
}


# fuzz_regconf: registries.conf files (containers-registries.conf(5) v2):
# search, aliases, prefixes, wildcards, mirrors, and some it refuses.
REGCONF = [
    'unqualified-search-registries = ["quay.io", "r.example:5000"]\n'
    'short-name-mode = "permissive"\n[aliases]\n"app" = "ghcr.io/org/app"\n',
    '[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "m1.local:5000"\n'
    '[[registry.mirror]]\nlocation = "m2.local/hub"\ninsecure = true\n'
    '[[registry]]\nprefix = "example.com/foo"\nlocation = "internal.local:8443/bar"\n',
    '[[registry]]\nprefix = "*.example.com"\ninsecure = true\n'
    '[[registry]]\nprefix = "*.y.example.com"\n[[registry.mirror]]\nlocation = "m.local/y"\n'
    '[[registry]]\nlocation = "example.com"\nblocked = true\n',
    '[[registry]]\nprefix = "*.example.com"\nlocation = "a.io"\n',
    'unqualified-search-registries = []\n[[registry]]\nprefix = "*.example.com:5000"\n',
]


def regconf_seeds(out):
    for text in REGCONF:
        write(out, "fuzz_regconf", text.encode())


def policy_seeds(out):
    for hexdata in POLICY_FRAMES.values():
        write(out, "fuzz_policy", bytes.fromhex(hexdata))


def main():
    fixtures, out = sys.argv[1], sys.argv[2]
    layer = small_layer()
    tars, config, manifest, index, _ = small_archive(layer)
    for t in tars:
        write(out, "fuzz_image", b"\0" + t)
    write(out, "fuzz_image", b"\1" + config)
    # Regression (CI, session 3): a lone surrogate escape in a config string
    # crashed the run record's GVariant.
    for bad in (b'"A=\\ud800"', b'"A=\\ud8&0"'):  # a lone surrogate, a broken escape
        write(out, "fuzz_image", b"\1" + config.replace(b'"A=1"', bad, 1))
    # and a config without layers (no record is made for it: image.c refuses it)
    write(out, "fuzz_image", b'\1{"config":{},"rootfs":{"type":"layers","diff_ids":[]}}')
    write(out, "fuzz_image", b"\2" + manifest)
    write(out, "fuzz_image", b"\3" + index)
    for fn in (lambda d: d, gzip.compress, bz2.compress, lzma.compress):
        write(out, "fuzz_unpack", fn(layer))
    for p in PROFILES:
        for caps in (b"\0", b"\1", b"\2"):
            write(out, "fuzz_seccomp", caps + json.dumps(p).encode())
    for name in sorted(os.listdir(fixtures)) if os.path.isdir(fixtures) else []:
        for member, data in members(os.path.join(fixtures, name)):
            base = os.path.basename(member)
            if base == "manifest.json":
                write(out, "fuzz_image", b"\4" + data)
            elif base == "index.json":
                write(out, "fuzz_image", b"\3" + data)
            elif data[:1] == b"{":
                try:
                    j = json.loads(data)
                except ValueError:
                    continue
                if isinstance(j, dict) and "layers" in j:
                    write(out, "fuzz_image", b"\2" + data)
                elif isinstance(j, dict) and "rootfs" in j:
                    write(out, "fuzz_image", b"\1" + data)
            else:
                tar = decompress(data)
                if tar and len(data) <= MAX:
                    write(out, "fuzz_unpack", data)
    policy_seeds(out)
    for cfg in oci_configs():
        write(out, "fuzz_oci_config", json.dumps(cfg).encode())
    regconf_seeds(out)
    for t in ("fuzz_image", "fuzz_unpack", "fuzz_seccomp", "fuzz_policy", "fuzz_oci_config",
              "fuzz_regconf"):
        d = os.path.join(out, t)
        print("%s: %d seeds" % (t, len(os.listdir(d)) if os.path.isdir(d) else 0))


if __name__ == "__main__":
    main()
