/* sbx-netd-filter-gen: the seccomp allowlist sbx-net and sbx-switch load
 * (src/net/confine.c), compiled by libseccomp when sbx is built and written
 * out as a C header of BPF instructions. Built for the machine that runs the
 * build; a cross build names the target's architecture (argv[2], meson's
 * cpu family), whose system call numbers libseccomp then uses.
 *
 *   sbx-netd-filter-gen OUTPUT.h [ARCH]
 *
 * What the helpers keep: the host's network (their whole job) through the
 * calls libslirp and the GLib main loop make; sockets of the internet
 * families only (no AF_UNIX to the host's services); the ioctls libslirp
 * and GLib use; sbx-switch also flock (the network's lock). Everything else
 * answers EPERM; a call through another ABI kills the process. */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const netd_allow[] = {"read",
                                         "write",
                                         "readv",
                                         "writev",
                                         "pread64",
                                         "recvfrom",
                                         "sendto",
                                         "recvmsg",
                                         "sendmsg",
                                         "recvmmsg",
                                         "sendmmsg",
                                         "connect",
                                         "bind",
                                         "listen",
                                         "accept",
                                         "accept4",
                                         "getsockname",
                                         "getpeername",
                                         "setsockopt",
                                         "getsockopt",
                                         "shutdown",
                                         "close",
                                         "poll",
                                         "ppoll",
                                         "select",
                                         "pselect6",
                                         "fcntl",
                                         "openat",
                                         "open",
                                         "fstat",
                                         "newfstatat",
                                         "stat",
                                         "statx",
                                         "lseek",
                                         "mmap",
                                         "munmap",
                                         "mremap",
                                         "mprotect",
                                         "brk",
                                         "madvise",
                                         "futex",
                                         "clock_gettime",
                                         "gettimeofday",
                                         "nanosleep",
                                         "clock_nanosleep",
                                         "rt_sigaction",
                                         "rt_sigprocmask",
                                         "rt_sigreturn",
                                         "sigaltstack",
                                         "exit",
                                         "exit_group",
                                         "getpid",
                                         "gettid",
                                         "getrandom",
                                         "eventfd2",
                                         "pipe2",
                                         "signalfd4",
                                         "sched_yield",
                                         "restart_syscall",
                                         "uname",
                                         "getuid",
                                         "geteuid",
                                         "getgid",
                                         "getegid",
                                         "tgkill",
                                         "sysinfo",
                                         "prlimit64",
                                         "set_robust_list",
                                         "rseq",
                                         NULL};

static scmp_filter_ctx build(const char *arch, const char *const *extra)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx)
    return NULL;
  if (arch) {
    /* The build machine's out first: libseccomp mixes no endiannesses. */
    uint32_t a = seccomp_arch_resolve_name(arch);
    if (!a || seccomp_arch_remove(ctx, SCMP_ARCH_NATIVE) < 0 || seccomp_arch_add(ctx, a) < 0) {
      fprintf(stderr, "sbx-netd-filter-gen: architecture %s: libseccomp cannot build for it\n",
              arch);
      seccomp_release(ctx);
      return NULL;
    }
  }
  int r = 0;
  for (const char *const *n = netd_allow; *n && r == 0; n++) {
    int nr = seccomp_syscall_resolve_name(*n);
    if (nr != __NR_SCMP_ERROR)
      r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  for (const char *const *n = extra; n && *n && r == 0; n++)
    r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, seccomp_syscall_resolve_name(*n), 0);
  static const uint64_t families[] = {AF_INET, AF_INET6};
  for (unsigned i = 0; i < 2 && r == 0; i++)
    r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, families[i]));
  /* A taken spare back to SCHED_OTHER (it waits at SCHED_BATCH): itself,
   * that policy only. */
  if (r == 0)
    r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sched_setscheduler), 2,
                         SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A1(SCMP_CMP_EQ, SCHED_OTHER));
  /* A taken spare's name back to sbx-net's. */
  if (r == 0)
    r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                         SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
  static const uint64_t ioctls[] = {FIONREAD, FIONBIO, TCGETS, TIOCOUTQ};
  for (unsigned i = 0; i < 4 && r == 0; i++)
    r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]));
  /* The data path's calls first: the filter runs on each of them. */
  static const char *const hot[] = {"read",   "write", "poll",  "recvfrom",
                                    "sendto", "readv", "writev"};
  for (unsigned i = 0; i < 7 && r == 0; i++)
    r = seccomp_syscall_priority(ctx, seccomp_syscall_resolve_name(hot[i]), (uint8_t)(255 - i));
  if (r < 0) {
    fprintf(stderr, "sbx-netd-filter-gen: a rule: %s\n", strerror(-r));
    seccomp_release(ctx);
    return NULL;
  }
  return ctx;
}

/* The filter as `static const unsigned char NAME[]`: libseccomp's export
 * byte for byte, in the target's byte order (struct sock_filter as the
 * kernel reads it there; src/net/confine.c copies it into one). */
static int emit(FILE *out, const char *name, const char *arch, const char *const *extra)
{
  scmp_filter_ctx ctx = build(arch, extra);
  FILE *tmp = ctx ? tmpfile() : NULL;
  int r = tmp ? seccomp_export_bpf(ctx, fileno(tmp)) : -1;
  if (ctx)
    seccomp_release(ctx);
  long len = r == 0 && fflush(tmp) == 0 ? lseek(fileno(tmp), 0, SEEK_END) : -1;
  if (len <= 0 || len % 8 != 0 || lseek(fileno(tmp), 0, SEEK_SET) != 0) {
    fprintf(stderr, "sbx-netd-filter-gen: export %s: %s\n", name,
            r < 0 ? strerror(-r) : "nothing exported");
    if (tmp)
      fclose(tmp);
    return -1;
  }
  fprintf(out, "static const unsigned char %s[] = {\n", name);
  unsigned char insn[8];
  for (long i = 0; i < len / 8; i++) {
    if (fread(insn, 1, 8, tmp) != 8) {
      fclose(tmp);
      return -1;
    }
    fprintf(out, "    0x%02x, 0x%02x, 0x%02x, 0x%02x, 0x%02x, 0x%02x, 0x%02x, 0x%02x,\n", insn[0],
            insn[1], insn[2], insn[3], insn[4], insn[5], insn[6], insn[7]);
  }
  fprintf(out, "};\n");
  fclose(tmp);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: sbx-netd-filter-gen OUTPUT.h [ARCH]\n");
    return 2;
  }
  const char *arch = argc == 3 ? argv[2] : NULL;
  FILE *out = fopen(argv[1], "w");
  if (!out) {
    fprintf(stderr, "sbx-netd-filter-gen: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  static const char *const switch_extra[] = {"flock", NULL};
  fprintf(out, "/* Generated by sbx-netd-filter-gen (src/net/netd-filter-gen.c). */\n"
               "#pragma once\n");
  int r =
      emit(out, "sbx_netd_filter", arch, NULL) | emit(out, "sbx_switch_filter", arch, switch_extra);
  if (fclose(out) != 0 || r != 0) {
    unlink(argv[1]);
    return 1;
  }
  return 0;
}
