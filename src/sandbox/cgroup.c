/* Resource limits through cgroup v2. Rootless, that needs a subtree the host
 * delegated to this user (systemd does so for user sessions: user@UID.service).
 * Without one, a limit the user asked for is an error that says why, never
 * silently ignored. */
#include "sbx/sandbox.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

gboolean sbx_cgroup_limits_set(const SbxCgroupLimits *l)
{
  return l->pids > 0 || l->memory > 0 || l->cpu_quota_us > 0;
}

/* Our own cgroup v2 path ("0::/user.slice/..."). */
static char *own_cgroup(GError **err)
{
  g_autofree char *data = NULL;
  if (!g_file_get_contents("/proc/self/cgroup", &data, NULL, NULL)) {
    sbx_fail(err, SBX_ERROR_FAILED, "cannot read /proc/self/cgroup");
    return NULL;
  }
  g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
  for (char **l = lines; *l; l++)
    if (g_str_has_prefix(*l, "0::"))
      return g_strdup(*l + 3);
  sbx_fail(err, SBX_ERROR_FAILED, "this process is in no cgroup v2 hierarchy");
  return NULL;
}

static gboolean write_value(const char *dir, const char *file, const char *value, GError **err)
{
  g_autofree char *path = g_build_filename(dir, file, NULL);
  if (sbx_write_value(path, value, err))
    return TRUE;
  g_prefix_error(err, "cgroup: %s: ", value);
  return FALSE;
}

static const char *const needed[][2] = {
    {"pids", "--pids-limit"}, {"memory", "--memory"}, {"cpu", "--cpus"}};

static gboolean wanted(const SbxCgroupLimits *l, guint i)
{
  return i == 0 ? l->pids > 0 : i == 1 ? l->memory > 0 : l->cpu_quota_us > 0;
}

/* Why the host gives us no usable cgroup, or NULL when it does. */
static char *why_unusable(const SbxCgroupLimits *l, const char *dir)
{
  struct statfs fs;
  if (statfs(CGROUP_ROOT, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
    return g_strdup(CGROUP_ROOT " is not cgroup v2 (this host uses cgroup v1 or a hybrid "
                                "layout; boot with systemd.unified_cgroup_hierarchy=1)");
  g_autofree char *procs = g_build_filename(dir, "cgroup.procs", NULL);
  if (access(dir, W_OK) < 0 || access(procs, W_OK) < 0)
    return g_strdup_printf("cgroup %s is not delegated to this user (a systemd user session "
                           "delegates one: run sbx from it, e.g. 'systemd-run --user --scope')",
                           dir);
  g_autofree char *ctl = NULL;
  g_autofree char *ctl_path = g_build_filename(dir, "cgroup.controllers", NULL);
  g_file_get_contents(ctl_path, &ctl, NULL, NULL);
  g_auto(GStrv) have = g_strsplit_set(ctl ? g_strstrip(ctl) : "", " ", -1);
  for (guint i = 0; i < G_N_ELEMENTS(needed); i++)
    if (wanted(l, i) && !g_strv_contains((const char *const *)have, needed[i][0]))
      return g_strdup_printf("%s needs the %s controller, which is not delegated to cgroup %s",
                             needed[i][1], needed[i][0], dir);
  return NULL;
}

char *sbx_cgroup_why_unusable(const SbxCgroupLimits *l)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *own = own_cgroup(&local);
  if (!own)
    return g_strdup(local->message);
  g_autofree char *dir = g_build_filename(CGROUP_ROOT, own, NULL);
  return why_unusable(l, dir);
}

gboolean sbx_cgroup_create(const SbxCgroupLimits *l, const char *id, char **path, GError **err)
{
  *path = NULL;
  if (!sbx_cgroup_limits_set(l))
    return TRUE; /* nothing to do */
  g_autofree char *own = own_cgroup(err);
  if (!own)
    return FALSE;
  g_autofree char *dir = g_build_filename(CGROUP_ROOT, own, NULL);
  g_autofree char *why = why_unusable(l, dir);
  if (why) {
    /* A memory limit that cannot be enforced is refused, never ignored;
     * what still bounds memory without a cgroup is an rlimit per process. */
    return sbx_fail(err, SBX_ERROR_FAILED, "resource limits: %s%s", why,
                    l->memory > 0
                        ? "; without a delegated cgroup v2 sbx cannot enforce --memory: "
                          "bound each process's address space with --ulimit as=BYTES instead"
                        : "");
  }
  /* Enable the controllers for children; the kernel refuses while our own
   * cgroup holds processes ("no internal processes"), which says so. */
  for (guint i = 0; i < G_N_ELEMENTS(needed); i++) {
    g_autofree char *plus = g_strconcat("+", needed[i][0], NULL);
    if (wanted(l, i) && !write_value(dir, "cgroup.subtree_control", plus, err))
      return FALSE;
  }
  g_autofree char *name = g_strconcat("sbx-", id, NULL);
  g_autofree char *cg = g_build_filename(dir, name, NULL);
  if (mkdir(cg, 0755) < 0) {
    return sbx_fail_errno(err, "cgroup: create %s", cg);
  }
  g_autofree char *pids = g_strdup_printf("%" G_GINT64_FORMAT, l->pids);
  g_autofree char *mem = g_strdup_printf("%" G_GINT64_FORMAT, l->memory);
  g_autofree char *cpu =
      g_strdup_printf("%" G_GINT64_FORMAT " %d", l->cpu_quota_us, SBX_CGROUP_CPU_PERIOD_US);
  gboolean ok = TRUE;
  if (ok && l->pids > 0)
    ok = write_value(cg, "pids.max", pids, err);
  if (ok && l->memory > 0) {
    ok = write_value(cg, "memory.max", mem, err);
    /* no swap beyond the limit; absent without swap accounting: fine */
    write_value(cg, "memory.swap.max", "0", NULL);
  }
  if (ok && l->cpu_quota_us > 0)
    ok = write_value(cg, "cpu.max", cpu, err);
  if (!ok) {
    rmdir(cg);
    return FALSE;
  }
  sbx_info("cgroup %s: pids %s, memory %s, cpu %s", cg, pids, mem, cpu);
  *path = g_steal_pointer(&cg);
  return TRUE;
}

gboolean sbx_cgroup_attach(const char *cgroup, pid_t pid, GError **err)
{
  g_autofree char *p = g_strdup_printf("%d", (int)pid);
  return write_value(cgroup, "cgroup.procs", p, err);
}

void sbx_cgroup_remove(const char *cgroup)
{
  if (cgroup && rmdir(cgroup) < 0)
    sbx_debug("cgroup %s not removed: %s", cgroup, sbx_strerror(errno));
}
