/* libFuzzer target: an OCI bundle's config.json read by sbx-oci
 * (sbx_oci_config_load, src/oci/config.c): every member type-checked and
 * bounded, linux.seccomp compiled (architectures, flags, listenerPath),
 * linux.resources noted. The engine writes config.json, but a bundle is also
 * what a user hands to `sbx-oci run`: parse, never trust. */
#include "fuzz_common.h"

#include "sbx/oci.h"
#include "sbx/util.h"

#include <fcntl.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static char *bundle;
  fuzz_quiet();
  if (!bundle)
    bundle = fuzz_scratch_new(); /* one bundle directory, config.json rewritten per input */
  g_autofree char *path = g_build_filename(bundle, "config.json", NULL);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || !sbx_write_all(fd, data, size, NULL))
    abort();
  close(fd);
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxOciConfig) c = sbx_oci_config_load(bundle, &err);
  /* A config or an error, never both or neither; what it holds is sane. */
  if (c ? err != NULL || !c->args || !c->args[0] || !c->rootfs || !c->cwd : err == NULL)
    __builtin_trap();
  return 0;
}
