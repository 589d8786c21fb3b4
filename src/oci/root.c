/* sbx-oci's default state roots, shared by sbx-oci (which keeps its state
 * there) and `sbx run` (which masks them in volumes). */
#include "sbx/oci-root.h"

#include <string.h>
#include <unistd.h>

static char *under_runtime_dir(const char *runtime_dir)
{
  return runtime_dir && g_path_is_absolute(runtime_dir)
             ? g_build_filename(runtime_dir, "sbx-oci", NULL)
             : NULL;
}

static char *in_tmp(uid_t uid)
{
  return g_strdup_printf("/tmp/sbx-oci-%u", (unsigned)uid);
}

char *sbx_oci_default_root(const char *runtime_dir, uid_t uid)
{
  char *rt = under_runtime_dir(runtime_dir);
  if (rt && access(runtime_dir, W_OK) == 0)
    return rt;
  g_free(rt);
  return in_tmp(uid);
}

/* Podman runs its runtime with XDG_RUNTIME_DIR set to its own choice when
 * the user has none (GetRootlessRuntimeDir): /run/user/UID when it is the
 * user's, else $TMPDIR (or /tmp)/podman-run-UID, else $HOME/rundir. So
 * sbx-oci's root may be under any of them, whatever this process's
 * environment says. */
char **sbx_oci_root_candidates(const char *runtime_dir, uid_t uid)
{
  g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(dirs, g_strdup(runtime_dir));
  g_ptr_array_add(dirs, g_strdup_printf("/run/user/%u", (unsigned)uid));
  g_ptr_array_add(dirs, g_strdup_printf("%s/podman-run-%u", g_get_tmp_dir(), (unsigned)uid));
  g_ptr_array_add(dirs, g_strdup_printf("/tmp/podman-run-%u", (unsigned)uid));
  g_ptr_array_add(dirs, g_build_filename(g_get_home_dir(), "rundir", NULL));
  GPtrArray *out = g_ptr_array_new();
  for (guint i = 0; i < dirs->len; i++) {
    char *rt = under_runtime_dir(dirs->pdata[i]);
    gboolean seen = FALSE;
    for (guint j = 0; rt && j < out->len; j++)
      seen = seen || strcmp(out->pdata[j], rt) == 0;
    if (rt && !seen)
      g_ptr_array_add(out, rt);
    else
      g_free(rt);
  }
  g_ptr_array_add(out, in_tmp(uid));
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}
