/* sbx-net confines itself before it touches a single packet: libslirp's
 * packet parsing is where bugs hide. It keeps the host's network (its whole
 * job) and nothing else: an empty root holding only the resolv.conf libslirp
 * reads, no capabilities, no_new_privs, and a seccomp allowlist of what
 * libslirp and the GLib main loop use (compiled at build time). */
#include "sbx/netd.h"
#include "sbx/switchd.h"
#include "sbx/security.h"
#include "sbx/util.h"
#include "netd-filter.h" /* generated */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <sched.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
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

/* The allowlist (src/net/netd-filter-gen.c) as libseccomp compiled it when
 * sbx was built, in this machine's byte order: building it here, at each
 * start, cost ~1 ms and a shared library. */
static gboolean install_filter(const unsigned char *bytes, size_t len, GError **err)
{
  struct sock_filter insns[512];
  if (len == 0 || len % sizeof insns[0] != 0 || len > sizeof insns)
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper: its seccomp filter is malformed");
  memcpy(insns, bytes, len);
  struct sock_fprog prog = {.len = (unsigned short)(len / sizeof insns[0]), .filter = insns};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
    return sbx_fail_errno(err, "network helper: load its seccomp filter");
  return TRUE;
}

gboolean sbx_netd_confine(const char *resolv_conf, int keep_upto, GError **err)
{
  /* Everything but stdio and the fds we work with goes. */
  sbx_close_fds_from(keep_upto + 1);
  if (!empty_root(resolv_conf, err) || !sbx_caps_drop_bounding(0, err) ||
      !sbx_caps_set(0, FALSE, err))
    return FALSE;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sbx_fail_errno(err, "network helper: no_new_privs");
  return install_filter(sbx_netd_filter, sizeof sbx_netd_filter, err);
}

/* sbx-switch: the same, keeping its listening socket and lock file, and
 * allowing what it does beyond sbx-net: flock (the network's lock, to exit
 * only when no sandbox is joining). */
gboolean sbx_switch_confine(const char *resolv_conf, int keep_upto, GError **err)
{
  sbx_close_fds_from(keep_upto + 1);
  if (!empty_root(resolv_conf, err) || !sbx_caps_drop_bounding(0, err) ||
      !sbx_caps_set(0, FALSE, err))
    return FALSE;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sbx_fail_errno(err, "network switch: no_new_privs");
  return install_filter(sbx_switch_filter, sizeof sbx_switch_filter, err);
}
