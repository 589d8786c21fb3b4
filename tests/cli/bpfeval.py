"""Classic BPF, as seccomp runs it: evaluate sbx's compiled filters
(store/seccomp/*.bpf, `sbx-store seccomp-compile`) for a system call without
making it. The tests use it where the kernel's own answer cannot tell a
refusal from the call itself (x32 on a kernel without x32: ENOSYS either way).

File format (src/sandbox/seccomp.c): programs one after the other, each a
little-endian u32 instruction count and its struct sock_filter entries.
"""
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_BIT = 0x40000000

ALLOW = 0x7FFF0000


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    progs, off = [], 0
    while off < len(data):
        (count,) = struct.unpack_from("<I", data, off)
        off += 4
        progs.append([struct.unpack_from("<HBBI", data, off + 8 * i) for i in range(count)])
        off += 8 * count
    return progs


def _seccomp_data(nr, arch, args):
    args = list(args) + [0] * (6 - len(args))
    return struct.pack("<IIQ6Q", nr & 0xFFFFFFFF, arch, 0, *[a & 0xFFFFFFFFFFFFFFFF for a in args])


def run(prog, nr, arch, args=()):
    """The 32-bit value the program returns for this call."""
    data = _seccomp_data(nr, arch, args)
    a = x = pc = 0
    mem = [0] * 16
    for _ in range(len(prog) + 1):  # seccomp programs only jump forward
        code, jt, jf, k = prog[pc]
        pc += 1
        cls, op = code & 0x07, code & 0xF0
        src = x if code & 0x08 else k
        if code == 0x20:  # ld [k]
            (a,) = struct.unpack_from("<I", data, k)
        elif code == 0x00:  # ld #k
            a = k
        elif code == 0x60:  # ld M[k]
            a = mem[k]
        elif code == 0x01:  # ldx #k
            x = k
        elif code == 0x61:  # ldx M[k]
            x = mem[k]
        elif code == 0x02:  # st M[k]
            mem[k] = a
        elif code == 0x03:  # stx M[k]
            mem[k] = x
        elif code == 0x07:  # tax
            x = a
        elif code == 0x87:  # txa
            a = x
        elif cls == 0x04:  # alu
            ops = {0x00: lambda: a + src, 0x10: lambda: a - src, 0x20: lambda: a * src,
                   0x40: lambda: a | src, 0x50: lambda: a & src, 0x60: lambda: a << src,
                   0x70: lambda: a >> src, 0x80: lambda: -a, 0xA0: lambda: a ^ src}
            a = ops[op]() & 0xFFFFFFFF
        elif code == 0x05:  # ja
            pc += k
        elif cls == 0x05:  # jeq, jgt, jge, jset
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: (a & src) != 0}[op]
            pc += jt if taken else jf
        elif code == 0x06:  # ret #k
            return k
        elif code == 0x16:  # ret a
            return a
        else:
            raise ValueError("instruction 0x%x not handled" % code)
    raise ValueError("program did not return")


def _precedence(ret):
    # the kernel keeps the action with the lowest value as a signed 32-bit
    # number: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, USER_NOTIF, TRACE, LOG, ALLOW
    action = ret & 0xFFFF0000
    return action - (1 << 32) if action & 0x80000000 else action


def run_all(progs, nr, arch, args=()):
    """What the kernel does with every program installed: the strictest; of
    equals, the last installed's (the kernel runs the newest first and keeps
    only a strictly stricter one)."""
    return min((run(p, nr, arch, args) for p in reversed(progs)), key=_precedence)


def errno(e):
    return 0x00050000 | e


def load_header(path, name):
    """One program from a generated C header (src/net/netd-filter-gen.c):
    `static const unsigned char NAME[] = {0x20, 0x00, ...};`, struct
    sock_filter entries in this machine's byte order."""
    import re
    with open(path) as f:
        text = f.read()
    body = text.split("unsigned char %s[] = {" % name, 1)[1].split("};", 1)[0]
    data = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body))
    return [struct.unpack_from("=HBBI", data, off) for off in range(0, len(data), 8)]
