/* sbx-oci's default state roots, shared by sbx-oci (which keeps its state
 * there) and `sbx run` (which masks them in volumes). */
#include "sbx/oci-root.h"

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

char **sbx_oci_root_candidates(const char *runtime_dir, uid_t uid)
{
  GPtrArray *out = g_ptr_array_new();
  char *rt = under_runtime_dir(runtime_dir);
  if (rt)
    g_ptr_array_add(out, rt);
  g_ptr_array_add(out, in_tmp(uid));
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}
