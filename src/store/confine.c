/* The import child confines itself before it parses a byte: it reads
 * untrusted archives and registry responses with libarchive, json-glib and
 * libcurl, as root of its own user namespace.
 *
 * A deny-list, unlike sbx-net's allowlist: the child runs libarchive's
 * decompressors, libcurl with its TLS library and threaded resolver, glibc's
 * NSS modules (whichever the host configured, loaded at run time), GLib's
 * thread pool and the sanitizer runtimes; the system calls of that set differ
 * between distributions and library versions, and an allowlist that misses
 * one fails imports in the field. What the child must never need is short
 * and stable: the kernel's attack surface (namespaces, mounts, bpf, io_uring,
 * keys, modules, ptrace) and what would let it out of its user namespace or
 * into the user's terminal. Those are refused. */
#include "sbx/security.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

static const char *const store_deny[] = {
    /* mounts, old and new API */
    "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr",
    /* namespaces (clone's flags below) */
    "unshare", "setns",
    /* other processes' memory */
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    /* kernel attack surface nothing here uses */
    "bpf", "perf_event_open", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "userfaultfd", "keyctl", "add_key", "request_key", "open_by_handle_at", "name_to_handle_at",
    "fanotify_init", "lookup_dcookie",
    /* the machine's */
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "settimeofday",
    "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm", "vhangup",
    /* unpacking chowns files; it never changes its own ids */
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid",
    "setgroups",
    /* glibc's mknod() is mknodat (filtered below) */
    "mknod", NULL};

static gboolean deny(scmp_filter_ctx ctx, int errnum, int nr, unsigned n,
                     const struct scmp_arg_cmp *cmp, GError **err)
{
  int r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(errnum), nr, n, cmp);
  if (r < 0)
    return sbx_fail_errnum(err, -r, "import helper: seccomp rule for %s",
                           seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr));
  return TRUE;
}

/* EPERM when the one comparison holds. */
static gboolean deny_if(scmp_filter_ctx ctx, int nr, struct scmp_arg_cmp cmp, GError **err)
{
  return deny(ctx, EPERM, nr, 1, &cmp, err);
}

/* A deny rule may refuse more than the kernel would see (a comparison of all
 * 64 bits where the kernel reads an int) but never less. */
static gboolean add_arg_rules(scmp_filter_ctx ctx, GError **err)
{
  /* clone with a namespace flag (one rule per bit: any set refuses); clone3
   * carries its flags in memory the filter cannot read: ENOSYS, and glibc's
   * pthread_create and fork fall back to clone. */
  static const guint64 ns_flags[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                     CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET};
  for (guint i = 0; i < G_N_ELEMENTS(ns_flags); i++)
#if defined(__s390__) || defined(__s390x__)
    if (!deny_if(ctx, SCMP_SYS(clone), SCMP_A1(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]), err))
#else
    if (!deny_if(ctx, SCMP_SYS(clone), SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]), err))
#endif
      return FALSE;
  if (!deny(ctx, ENOSYS, SCMP_SYS(clone3), 0, NULL, err))
    return FALSE;
  /* Sockets: the internet for a pull, AF_UNIX (nscd, systemd-resolved) and
   * AF_NETLINK (getaddrinfo's AI_ADDRCONFIG) for its name lookups. Every
   * other family — AF_PACKET, AF_ALG, AF_VSOCK, ... — is refused: anything
   * above AF_NETLINK (16), and the holes below it. */
  if (!deny_if(ctx, SCMP_SYS(socket), SCMP_A0(SCMP_CMP_GT, AF_NETLINK), err))
    return FALSE;
  for (guint64 f = 0; f < AF_NETLINK; f++)
    if (f != AF_UNIX && f != AF_INET && f != AF_INET6 &&
        !deny_if(ctx, SCMP_SYS(socket), SCMP_A0(SCMP_CMP_EQ, f), err))
      return FALSE;
  /* Devices: the unpacker makes FIFOs and overlay whiteouts (char 0:0) only. */
  const struct scmp_arg_cmp chr_not_0[] = {SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR),
                                           SCMP_A3(SCMP_CMP_NE, 0)};
  if (!deny_if(ctx, SCMP_SYS(mknodat), SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK), err) ||
      !deny_if(ctx, SCMP_SYS(mknodat), SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFSOCK), err) ||
      !deny(ctx, EPERM, SCMP_SYS(mknodat), 2, chr_not_0, err))
    return FALSE;
  /* The child shares the user's terminal: no typing into it (CVE-2017-5226,
   * bubblewrap), no console selection paste (CVE-2023-1523, snapd). */
  return deny_if(ctx, SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI), err) &&
         deny_if(ctx, SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX), err);
}

/* Root of its user namespace, it keeps only what unpacking needs: to give
 * files their owners (CHOWN), to write into and set the times, modes and
 * xattrs of files owned by others (DAC_OVERRIDE, FOWNER), to keep a setgid
 * bit of a group it is not in (FSETID) and a layer's file capabilities
 * (SETFCAP). Not CAP_MKNOD: a whiteout (char 0:0) needs none since Linux
 * 5.8, and no other device can be made in a user namespace. Not
 * CAP_SYS_ADMIN, CAP_NET_*, CAP_SETUID/SETGID, ... */
static const SbxCapSet store_caps = (1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) |
                                    (1ull << CAP_FOWNER) | (1ull << CAP_FSETID) |
                                    (1ull << CAP_SETFCAP);

static gboolean install_filter(GError **err)
{
  /* sbx-store is a native program: a system call of another architecture
   * (int 0x80, x32) is an exploit's, and refused whole. */
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx)
    return sbx_fail(err, SBX_ERROR_FAILED, "import helper: seccomp_init");
  gboolean ok = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS)) == 0 &&
                seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) == 0;
  if (!ok)
    sbx_fail(err, SBX_ERROR_FAILED, "import helper: seccomp attributes");
  for (const char *const *n = store_deny; ok && *n; n++) {
    int nr = seccomp_syscall_resolve_name(*n);
    if (nr != __NR_SCMP_ERROR) /* not on this architecture */
      ok = deny(ctx, EPERM, nr, 0, NULL, err);
  }
  ok = ok && add_arg_rules(ctx, err);
  int r = ok ? seccomp_load(ctx) : 0;
  seccomp_release(ctx);
  if (r < 0)
    return sbx_fail_errnum(err, -r, "import helper: load its seccomp filter");
  return ok;
}

gboolean sbx_store_confine_child(GError **err)
{
  return sbx_caps_drop_bounding(store_caps, err) && sbx_caps_set(store_caps, TRUE, err) &&
         install_filter(err);
}
