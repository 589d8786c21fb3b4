/* Finding sbx's helper programs. They are separate binaries so that sbx
 * itself links only GLib and libseccomp: the cached start path must not pay
 * for loading libarchive, json-glib or libslirp (measured: ~2.5 ms). */
#include "sbx-config.h"
#include "sbx/util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
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

/* Sanitizer settings are what an ASan/UBSan build of the helper reads to
 * report as the caller configured it (CI's exit codes, leak checking). */
static const char *const sanitizer_vars[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL};

static gboolean kept(const char *name, const char *const *keep)
{
  for (const char *const *k = sanitizer_vars; *k; k++)
    if (strcmp(name, *k) == 0)
      return TRUE;
  for (const char *const *k = keep; k && *k; k++) {
    gsize n = strlen(*k);
    if (n && (*k)[n - 1] == '*' ? strncmp(name, *k, n - 1) == 0 : strcmp(name, *k) == 0)
      return TRUE;
  }
  return FALSE;
}

char **sbx_helper_environ(const char *const *keep)
{
  g_auto(GStrv) env = g_get_environ();
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  for (char **e = env; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq)
      continue;
    g_autofree char *name = g_strndup(*e, (gsize)(eq - *e));
    if (kept(name, keep))
      g_strv_builder_add(b, *e);
  }
  return g_strv_builder_end(b);
}

void sbx_helper_stdio_null(void)
{
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0)
    return;
  dup2(null, STDIN_FILENO);
  dup2(null, STDOUT_FILENO);
  if (sbx_log_level < SBX_LOG_DEBUG)
    dup2(null, STDERR_FILENO);
  if (null > STDERR_FILENO)
    close(null);
}

gboolean sbx_helper_died(GError **err, const char *what, int status)
{
  if (WIFSIGNALED(status))
    return sbx_fail(err, SBX_ERROR_FAILED, "%s helper died (killed by signal %d, %s)", what,
                    WTERMSIG(status), g_strsignal(WTERMSIG(status)));
  return sbx_fail(err, SBX_ERROR_FAILED, "%s helper died (exit status %d)", what,
                  WEXITSTATUS(status));
}
