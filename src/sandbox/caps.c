/* Capabilities inside the user namespace. They only ever act on what the
 * namespace owns, but a sandbox for strangers' code keeps no more than
 * Docker's default set, and none once it runs as a non-root user. */
#include "sbx/security.h"
#include "sbx/util.h"

#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};

const char *sbx_cap_name(guint cap)
{
  return cap < G_N_ELEMENTS(cap_names) ? cap_names[cap] : "?";
}

/* The highest capability this kernel knows (bounding-set drops above it fail). */
guint sbx_cap_last(void)
{
  static guint last;
  if (!last) {
    /* PR_CAPBSET_READ answers EINVAL above the last one: a binary search
     * is six calls, cheaper than /proc/sys/kernel/cap_last_cap, which stays
     * the fallback (a filter that refuses prctl). */
    guint lo = 0, hi = 64; /* capability lo exists; hi does not */
    if (prctl(PR_CAPBSET_READ, 0, 0, 0, 0) >= 0) {
      while (hi - lo > 1) {
        guint mid = (lo + hi) / 2;
        if (prctl(PR_CAPBSET_READ, mid, 0, 0, 0) >= 0)
          lo = mid;
        else
          hi = mid;
      }
      last = lo;
    } else {
      g_autofree char *s = NULL;
      last = G_N_ELEMENTS(cap_names) - 1;
      if (g_file_get_contents("/proc/sys/kernel/cap_last_cap", &s, NULL, NULL))
        last = (guint)MIN(g_ascii_strtoull(s, NULL, 10), 63);
    }
  }
  return last;
}

SbxCapSet sbx_caps_default(void)
{
  static const int keep[] = {
      CAP_CHOWN,      CAP_DAC_OVERRIDE, CAP_FOWNER,      CAP_FSETID,           CAP_KILL,
      CAP_SETGID,     CAP_SETUID,       CAP_SETPCAP,     CAP_NET_BIND_SERVICE, CAP_NET_RAW,
      CAP_SYS_CHROOT, CAP_MKNOD,        CAP_AUDIT_WRITE, CAP_SETFCAP};
  SbxCapSet set = 0;
  for (guint i = 0; i < G_N_ELEMENTS(keep); i++)
    set |= 1ull << keep[i];
  return set;
}

static gboolean cap_parse(const char *name, SbxCapSet *bits, GError **err)
{
  const char *n = g_ascii_strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
  *bits = 0; /* defined on every path (gcc -O3 cannot see that sbx_fail returns FALSE) */
  if (g_ascii_strcasecmp(n, "ALL") == 0) {
    *bits = ~0ull;
    return TRUE;
  }
  for (guint i = 0; i < G_N_ELEMENTS(cap_names); i++)
    if (g_ascii_strcasecmp(n, cap_names[i]) == 0) {
      *bits = 1ull << i;
      return TRUE;
    }
  return sbx_fail(err, SBX_ERROR_USAGE, "unknown capability '%s'", name);
}

gboolean sbx_caps_adjust(SbxCapSet *set, char **add, char **drop, GError **err)
{
  SbxCapSet bits;
  /* docker: drops apply first, then adds (so --cap-drop ALL --cap-add X = X). */
  for (char **d = drop; d && *d; d++) {
    if (!cap_parse(*d, &bits, err))
      return FALSE;
    *set &= ~bits;
  }
  for (char **a = add; a && *a; a++) {
    if (!cap_parse(*a, &bits, err))
      return FALSE;
    *set |= bits;
  }
  SbxCapSet known = sbx_cap_last() >= 63 ? ~0ull : (1ull << (sbx_cap_last() + 1)) - 1;
  *set &= known;
  return TRUE;
}

gboolean sbx_caps_drop_bounding(SbxCapSet keep, GError **err)
{
  for (guint cap = 0; cap <= sbx_cap_last(); cap++)
    if (!(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      return sbx_fail_errno(err, "drop capability %s from the bounding set", sbx_cap_name(cap));
  /* CVE-2022-27650: nothing may come back through ambient or inheritable. */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return sbx_fail_errno(err, "clear ambient capabilities");
  return TRUE;
}

gboolean sbx_caps_set(SbxCapSet keep, gboolean root, GError **err)
{
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (root) {
    data[0].effective = data[0].permitted = (guint32)keep;
    data[1].effective = data[1].permitted = (guint32)(keep >> 32);
  }
  if (syscall(SYS_capset, &hdr, data) < 0)
    return sbx_fail_errno(err, "set capabilities");
  return TRUE;
}

gboolean sbx_cap_from_name(const char *name, SbxCapSet *bit, GError **err)
{
  if (g_ascii_strcasecmp(name, "ALL") == 0 || g_ascii_strcasecmp(name, "CAP_ALL") == 0)
    return sbx_fail(err, SBX_ERROR_INVALID, "unknown capability '%s'", name);
  return cap_parse(name, bit, err);
}

gboolean sbx_caps_set_all(const SbxCapSets *s, GError **err)
{
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (int i = 0; i < 2; i++) {
    data[i].effective = (guint32)(s->effective >> (32 * i));
    data[i].permitted = (guint32)(s->permitted >> (32 * i));
    data[i].inheritable = (guint32)(s->inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) < 0)
    return sbx_fail_errno(err, "set capabilities");
  /* The kernel takes an ambient capability only when it is permitted and
   * inheritable too; runc skips the others, and so do we. */
  SbxCapSet ambient = s->ambient & s->permitted & s->inheritable;
  for (guint cap = 0; cap <= sbx_cap_last(); cap++)
    if ((ambient & (1ull << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      return sbx_fail_errno(err, "raise ambient capability %s", sbx_cap_name(cap));
  return TRUE;
}
