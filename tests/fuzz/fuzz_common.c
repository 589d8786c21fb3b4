/* Helpers for the libFuzzer targets (see fuzz_common.h). */
#include "fuzz_common.h"

#include "sbx/util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

char *fuzz_memfd_path(const uint8_t *data, size_t size, int *fd)
{
  *fd = memfd_create("fuzz-input", MFD_CLOEXEC);
  if (*fd < 0)
    abort();
  if (size && !sbx_write_all(*fd, data, size, NULL))
    abort();
  return g_strdup_printf("/proc/self/fd/%d", *fd);
}

char *fuzz_scratch_new(void)
{
  char *dir = g_build_filename(g_get_tmp_dir(), "sbx-fuzz-XXXXXX", NULL);
  if (!g_mkdtemp_full(dir, 0700))
    abort();
  return dir;
}

void fuzz_scratch_remove(char *dir)
{
  /* Whatever an input made (read-only dirs, odd modes) must go: the next
   * input starts from nothing. */
  g_autoptr(GError) err = NULL;
  if (!sbx_rm_rf_at(AT_FDCWD, dir, &err)) {
    g_printerr("fuzz: cannot remove %s: %s\n", dir, err->message);
    abort();
  }
  g_free(dir);
}

void fuzz_quiet(void)
{
  sbx_log_level = SBX_LOG_ERROR;
}
