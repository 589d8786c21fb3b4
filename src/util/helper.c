/* Finding sbx's helper programs. They are separate binaries so that sbx
 * itself links only GLib and libseccomp: the cached start path must not pay
 * for loading libarchive, json-glib or libslirp (measured: ~2.5 ms). */
#include "sbx-config.h"
#include "sbx/util.h"

#include <unistd.h>

char *sbx_helper_path(const char *name, GError **err)
{
  g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
  if (self) {
    g_autofree char *dir = g_path_get_dirname(self);
    g_autofree char *beside = g_build_filename(dir, name, NULL);
    if (access(beside, X_OK) == 0)
      return g_steal_pointer(&beside);
  }
  g_autofree char *installed = g_build_filename(SBX_LIBEXECDIR, name, NULL);
  if (access(installed, X_OK) == 0)
    return g_steal_pointer(&installed);
  sbx_fail(err, SBX_ERROR_FAILED, "helper %s not found beside %s or in %s", name,
           self ? self : "sbx", SBX_LIBEXECDIR);
  return NULL;
}
