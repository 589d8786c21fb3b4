/* sbx-net confines itself before it touches a single packet: libslirp's
 * packet parsing is where bugs hide. It keeps the host's network (its whole
 * job) and nothing else: an empty root holding only the resolv.conf libslirp
 * reads, no capabilities, no_new_privs, and a seccomp allowlist of what
 * libslirp and the GLib main loop use. */
#include "sbx/netd.h"
#include "sbx/switchd.h"
#include "sbx/security.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

static gboolean write_self(const char *file, const char *content, GError **err)
{
  sbx_autofd fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, content, strlen(content)) < 0)
    return sbx_fail_errno(err, "network helper: write %s", file);
  return TRUE;
}

/* Own user + mount namespace, an empty tmpfs as root. */
static gboolean empty_root(const char *resolv, GError **err)
{
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
    return sbx_fail_errno(err, "network helper: unshare");
  g_autofree char *um = g_strdup_printf("0 %u 1\n", (unsigned)uid);
  g_autofree char *gm = g_strdup_printf("0 %u 1\n", (unsigned)gid);
  if (!write_self("/proc/self/setgroups", "deny", err) ||
      !write_self("/proc/self/uid_map", um, err) || !write_self("/proc/self/gid_map", gm, err))
    return FALSE;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") < 0)
    return sbx_fail_errno(err, "network helper: mount its empty root");
  if (mkdir("/tmp/etc", 0755) < 0 || !g_file_set_contents("/tmp/etc/resolv.conf", resolv, -1, NULL))
    return sbx_fail_errno(err, "network helper: write resolv.conf");
  if (chroot("/tmp") < 0 || chdir("/") < 0)
    return sbx_fail_errno(err, "network helper: chroot");
  return TRUE;
}

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

static gboolean install_filter(const char *const *extra, GError **err)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx)
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper: seccomp_init");
  for (const char *const *n = netd_allow; *n; n++) {
    int nr = seccomp_syscall_resolve_name(*n);
    if (nr != __NR_SCMP_ERROR)
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  for (const char *const *n = extra; n && *n; n++)
    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, seccomp_syscall_resolve_name(*n), 0);
  /* Sockets of the internet families only (no AF_UNIX to the host's
   * services), and only the ioctls libslirp and GLib use. */
  static const guint64 families[] = {AF_INET, AF_INET6};
  for (guint i = 0; i < G_N_ELEMENTS(families); i++)
    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                     SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, families[i]));
  static const guint64 ioctls[] = {FIONREAD, FIONBIO, TCGETS, TIOCOUTQ};
  for (guint i = 0; i < G_N_ELEMENTS(ioctls); i++)
    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]));
  /* The data path's calls first: the filter runs on each of them. */
  static const char *const hot[] = {"read",   "write", "poll",  "recvfrom",
                                    "sendto", "readv", "writev"};
  for (guint i = 0; i < G_N_ELEMENTS(hot); i++)
    seccomp_syscall_priority(ctx, seccomp_syscall_resolve_name(hot[i]), (uint8_t)(255 - i));
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  int r = seccomp_load(ctx);
  seccomp_release(ctx);
  if (r < 0)
    return sbx_fail_errnum(err, -r, "network helper: load its seccomp filter");
  return TRUE;
}

gboolean sbx_netd_confine(const char *resolv_conf, gboolean with_log, GError **err)
{
  /* Everything but stdio and the fds we work with goes. */
  G_STATIC_ASSERT(SBX_NETD_FD_SYNC == 4 && SBX_NETD_FD_LOG == 5);
  sbx_close_fds_from(with_log ? SBX_NETD_FD_LOG + 1 : SBX_NETD_FD_LOG);
  if (!empty_root(resolv_conf, err) || !sbx_caps_drop_bounding(0, err) ||
      !sbx_caps_set(0, FALSE, err))
    return FALSE;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sbx_fail_errno(err, "network helper: no_new_privs");
  return install_filter(NULL, err);
}

/* sbx-switch: the same, keeping its listening socket and lock file, and
 * allowing what it does beyond sbx-net: flock (the network's lock, to exit
 * only when no sandbox is joining). */
gboolean sbx_switch_confine(const char *resolv_conf, int keep_upto, GError **err)
{
  static const char *const extra[] = {"flock", NULL};
  sbx_close_fds_from(keep_upto + 1);
  if (!empty_root(resolv_conf, err) || !sbx_caps_drop_bounding(0, err) ||
      !sbx_caps_set(0, FALSE, err))
    return FALSE;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sbx_fail_errno(err, "network switch: no_new_privs");
  return install_filter(extra, err);
}
