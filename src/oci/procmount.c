/* Mounts inside /proc: refused, as runc's checkProcMount refuses them.
 *
 * CVE-2019-19921: a mount over a file of /proc (a bind of the caller's, or
 * one through a link the image planted) could hide what the kernel says
 * there, an LSM's attr/ or a sysctl, from the runtime and the container.
 * runc refuses every mount whose destination, resolved inside the root,
 * lands in /proc, but for a proc mount, a bind of a procfs on /proc itself,
 * and the files lxcfs stands in for. sbx-oci follows it. */
#include "sbx/oci.h"
#include "sbx/path.h"
#include "sbx/util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/statfs.h>
#include <linux/magic.h>

/* head, then comp[from..to) as "/a/b"; "/" for nothing at all. */
static char *join_components(const char *head, GPtrArray *comp, guint from, guint to)
{
  GString *r = g_string_new(head);
  for (guint i = from; i < to; i++)
    g_string_append_printf(r, "/%s", (char *)comp->pdata[i]);
  if (r->len == 0)
    g_string_append_c(r, '/');
  return g_string_free(r, FALSE);
}

/* The destination as the mount will land: the longest part that exists
 * resolved inside the root (links too, as runc's securejoin), the rest
 * appended. ".." and "." are taken lexically. */
static char *resolve_destination(int rootfd, const char *dest)
{
  g_auto(GStrv) parts = g_strsplit(dest, "/", -1);
  g_autoptr(GPtrArray) comp = g_ptr_array_new();
  for (char **p = parts; *p; p++) {
    if (strcmp(*p, "..") == 0 && comp->len)
      g_ptr_array_remove_index(comp, comp->len - 1);
    else if (**p && strcmp(*p, ".") != 0 && strcmp(*p, "..") != 0)
      g_ptr_array_add(comp, *p);
  }
  g_autofree char *rootp = g_strdup_printf("/proc/self/fd/%d", rootfd);
  g_autofree char *root = g_file_read_link(rootp, NULL);
  for (guint k = comp->len + 1; root && k-- > 0;) {
    g_autofree char *head = join_components("", comp, 0, k);
    sbx_autofd fd = sbx_open_in_root(rootfd, head, O_PATH, 0, NULL);
    if (fd < 0)
      continue;
    g_autofree char *fdp = g_strdup_printf("/proc/self/fd/%d", fd);
    g_autofree char *at = g_file_read_link(fdp, NULL);
    size_t n = strlen(root);
    if (!at || strncmp(at, root, n) != 0 || (at[n] && at[n] != '/'))
      break;
    return join_components(at + n, comp, k, comp->len);
  }
  return join_components("", comp, 0, comp->len);
}

/* The message never reads 'No such file or directory' (a target that does
 * not exist yet is not opened here): podman takes that text for 127. */
gboolean sbx_oci_check_proc_mount(int rootfd, const SbxOciMount *m, gboolean bind,
                                  const char *source, GError **err)
{
  static const char *const lxcfs[] = {"/proc/cpuinfo",
                                      "/proc/diskstats",
                                      "/proc/meminfo",
                                      "/proc/stat",
                                      "/proc/swaps",
                                      "/proc/uptime",
                                      "/proc/loadavg",
                                      "/proc/slabinfo",
                                      "/proc/net/dev",
                                      "/proc/sys/kernel/ns_last_pid",
                                      "/proc/sys/crypto/fips_enabled"};
  if (!bind && (strcmp(m->type, "proc") == 0 || strcmp(m->type, "sysfs") == 0))
    return TRUE; /* fresh file systems of their own, as runc */
  g_autofree char *dest = resolve_destination(rootfd, m->destination);
  if (strcmp(dest, "/proc") == 0) {
    struct statfs sf;
    if (bind && source && statfs(source, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC)
      return TRUE;
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "mount %s: it cannot be mounted because it is not of type proc",
                    m->destination);
  }
  if (!g_str_has_prefix(dest, "/proc/"))
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS(lxcfs); i++)
    if (strcmp(dest, lxcfs[i]) == 0)
      return TRUE;
  gboolean same = strcmp(dest, m->destination) == 0;
  return sbx_fail(err, SBX_ERROR_INVALID,
                  "mount %s: it cannot be mounted because it is inside /proc%s%s%s", m->destination,
                  same ? "" : " (it resolves to ", same ? "" : dest, same ? "" : ")");
}
