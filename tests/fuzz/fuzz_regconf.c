/* libFuzzer target: registries.conf (src/registry/regconf.c, through the
 * toml++ shim regconf-toml.cc): the parse, then what a pull asks of a file
 * that parsed: the candidates of short and full names, the local lookup's
 * candidates, and the endpoints (prefixes, wildcards, mirrors) of each.
 *
 * Input: the file. */
#include "sbx/regconf.h"
#include "fuzz_common.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
    "busybox",
    "busybox:1.36",
    "app@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "org/app:2",
    "docker.io/library/busybox",
    "localhost:5000/ns/app:1",
    "a.example.com/x/y:1",
    "x.y.example.com:5000/app",
    "example.com/foo/bar",
};

static void endpoints_of(const SbxRegConf *c, char **refs)
{
  for (char **r = refs; r && *r; r++) {
    GArray *at = sbx_regconf_endpoints(c, *r, NULL);
    if (at)
      g_array_unref(at);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static gboolean quiet;
  if (!quiet) {
    fuzz_quiet();
    quiet = TRUE;
  }
  if (size > SBX_REGCONF_MAX_SIZE)
    return 0;
  g_autoptr(SbxRegConf) c = sbx_regconf_parse((const char *)data, size, "fuzz", NULL);
  if (!c)
    return 0;
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    g_auto(GStrv) cand = sbx_regconf_candidates(c, names[i], NULL);
    endpoints_of(c, cand);
    g_auto(GStrv) local = sbx_regconf_local_candidates(c, names[i]);
    endpoints_of(c, local);
  }
  return 0;
}
