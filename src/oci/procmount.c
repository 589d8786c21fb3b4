/* Mounts inside /proc: refused, as runc's checkProcMount refuses them.
 *
 * CVE-2019-19921: a mount over a file of /proc (a bind of the caller's, or
 * one through a link the image planted) could hide what the kernel says
 * there, an LSM's attr/ or a sysctl, from the runtime and the container.
 * runc refuses every mount whose destination, resolved inside the root,
 * lands in /proc, but for a proc mount, a bind of the root of a procfs on
 * /proc itself, and the files lxcfs stands in for. sbx-oci follows it.
 *
 * Twice: before the target is made, from its path (a target that cannot be
 * made inside /proc fails with this reason, not mkdir's), then from the fd
 * the mount will use, opened as the mount opens it: where that fd really
 * is decides, ".." and links taken by the kernel, and nothing can move
 * between the check and the mount. */
#include "sbx/oci.h"
#include "sbx/path.h"
#include "sbx/util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#define PROC_ROOT_INO 1 /* fs/proc/root.c */

/* fd's path relative to the root ("/" for the root), or NULL when it is not
 * inside it (fails closed). */
static char *path_in_root(int rootfd, int fd)
{
  g_autofree char *rootp = g_strdup_printf("/proc/self/fd/%d", rootfd);
  g_autofree char *fdp = g_strdup_printf("/proc/self/fd/%d", fd);
  g_autofree char *root = g_file_read_link(rootp, NULL);
  g_autofree char *at = g_file_read_link(fdp, NULL);
  if (!root || !at)
    return NULL;
  size_t n = strcmp(root, "/") == 0 ? 0 : strlen(root);
  if (strncmp(at, root, n) != 0 || (at[n] && at[n] != '/'))
    return NULL;
  return g_strdup(at[n] ? at + n : "/");
}

/* The destination as the mount will land: the longest part that exists
 * opened inside the root as the mount opens it (links and ".." taken by the
 * kernel, RESOLVE_IN_ROOT), the rest, still to be made, appended. */
static char *resolve_destination(int rootfd, const char *dest)
{
  g_auto(GStrv) parts = g_strsplit(dest, "/", -1);
  g_autoptr(GPtrArray) comp = g_ptr_array_new();
  for (char **p = parts; *p; p++)
    if (**p)
      g_ptr_array_add(comp, *p);
  for (guint k = comp->len + 1; k-- > 0;) {
    g_autoptr(GString) head = g_string_new("/");
    for (guint i = 0; i < k; i++)
      g_string_append_printf(head, "%s%s", i ? "/" : "", (char *)comp->pdata[i]);
    sbx_autofd fd = sbx_open_in_root(rootfd, head->str, O_PATH, 0, NULL);
    if (fd < 0)
      continue;
    g_autofree char *at = path_in_root(rootfd, fd);
    if (!at)
      return NULL;
    g_autoptr(GString) r = g_string_new(strcmp(at, "/") == 0 ? "" : at);
    for (guint i = k; i < comp->len; i++) {
      const char *c = comp->pdata[i];
      if (strcmp(c, "..") == 0) {
        char *slash = strrchr(r->str, '/');
        g_string_truncate(r, slash ? (gsize)(slash - r->str) : 0);
      } else if (strcmp(c, ".") != 0) {
        g_string_append_printf(r, "/%s", c);
      }
    }
    if (r->len == 0)
      g_string_append_c(r, '/');
    return g_string_free(g_steal_pointer(&r), FALSE);
  }
  return NULL;
}

static gboolean fresh_fs(const SbxOciMount *m, gboolean bind)
{
  return !bind && (strcmp(m->type, "proc") == 0 || strcmp(m->type, "sysfs") == 0);
}

/* dest: where the mount lands, relative to the root; in_procfs: that place
 * is in a procfs already (a proc mounted through a link elsewhere);
 * src_proc_root: the bind's source is the root of a procfs. The message
 * never reads 'No such file or directory': podman takes that text for 127. */
static gboolean decide(const SbxOciMount *m, gboolean bind, const char *dest, gboolean in_procfs,
                       gboolean src_proc_root, GError **err)
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
  if (!dest)
    return sbx_fail(err, SBX_ERROR_INVALID, "mount %s: the target is not inside the root",
                    m->destination);
  if (strcmp(dest, "/proc") == 0) {
    /* runc: a procfs on /proc only from the root of one ("not the root
     * of procfs"); anything else there is no /proc at all. */
    if (bind && src_proc_root)
      return TRUE;
    return sbx_fail(err, SBX_ERROR_INVALID,
                    bind ? "mount %s: it cannot be mounted because its source is not the root of "
                           "a procfs"
                         : "mount %s: it cannot be mounted because it is not of type proc",
                    m->destination);
  }
  if (!g_str_has_prefix(dest, "/proc/") && !in_procfs)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS(lxcfs); i++)
    if (strcmp(dest, lxcfs[i]) == 0)
      return TRUE;
  if (!g_str_has_prefix(dest, "/proc/"))
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "mount %s: it cannot be mounted because it is inside a procfs", m->destination);
  gboolean same = strcmp(dest, m->destination) == 0;
  return sbx_fail(err, SBX_ERROR_INVALID,
                  "mount %s: it cannot be mounted because it is inside /proc%s%s%s", m->destination,
                  same ? "" : " (it resolves to ", same ? "" : dest, same ? "" : ")");
}

static gboolean proc_root(const struct statfs *sf, const struct stat *st)
{
  return sf->f_type == PROC_SUPER_MAGIC && st->st_ino == PROC_ROOT_INO && S_ISDIR(st->st_mode);
}

/* runc: a fresh proc or sysfs "must be mounted on ordinary directory", never
 * through a link in the last place (one to /proc/sys, or out of /proc). */
static gboolean ordinary_directory(int rootfd, const SbxOciMount *m, GError **err)
{
  g_autofree char *dir = g_path_get_dirname(m->destination);
  g_autofree char *base = g_path_get_basename(m->destination);
  struct stat st;
  sbx_autofd parent = sbx_open_in_root(rootfd, dir, O_PATH | O_DIRECTORY, 0, NULL);
  gboolean dots = strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0;
  if (dots ||
      (parent >= 0 && fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)))
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "mount %s: a %s file system must be mounted on an ordinary directory",
                    m->destination, m->type);
  return TRUE;
}

gboolean sbx_oci_check_proc_mount(int rootfd, const SbxOciMount *m, gboolean bind,
                                  const char *source, GError **err)
{
  if (fresh_fs(m, bind))
    return ordinary_directory(rootfd, m, err);
  struct statfs sf;
  struct stat st;
  gboolean src_root =
      bind && source && statfs(source, &sf) == 0 && stat(source, &st) == 0 && proc_root(&sf, &st);
  g_autofree char *dest = resolve_destination(rootfd, m->destination);
  return decide(m, bind, dest, FALSE, src_root, err);
}

gboolean sbx_oci_check_proc_target(int rootfd, const SbxOciMount *m, gboolean bind, int srcfd,
                                   int fd, GError **err)
{
  g_autofree char *dest = path_in_root(rootfd, fd);
  if (fresh_fs(m, bind)) {
    /* The fd opened is the last component itself, not a link's target. */
    g_autofree char *dir = g_path_get_dirname(m->destination);
    g_autofree char *base = g_path_get_basename(m->destination);
    sbx_autofd parent = sbx_open_in_root(rootfd, dir, O_PATH | O_DIRECTORY, 0, NULL);
    g_autofree char *pdir = parent >= 0 ? path_in_root(rootfd, parent) : NULL;
    g_autofree char *want = pdir ? g_build_filename(pdir, base, NULL) : NULL;
    if (!dest || !want || strcmp(dest, want) != 0)
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "mount %s: a %s file system must be mounted on an ordinary directory",
                      m->destination, m->type);
    return TRUE;
  }
  struct statfs sf, srcsf;
  struct stat srcst;
  gboolean in_procfs = fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
  gboolean src_root = bind && srcfd >= 0 && fstatfs(srcfd, &srcsf) == 0 &&
                      fstat(srcfd, &srcst) == 0 && proc_root(&srcsf, &srcst);
  return decide(m, bind, dest, in_procfs, src_root, err);
}
