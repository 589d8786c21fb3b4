/* sbx-store seccomp-compile --caps HEX [--profile FILE] --out FILE
 * (internal: sbx runs it once per profile and caches the BPF it writes) */
#include "sbx/cli.h"
#include "sbx/security.h"
#include "sbx/util.h"

#include <fcntl.h>
#include <string.h>

static char *caps_opt, *profile_opt, *out_opt;

static GOptionEntry entries[] = {
    {"caps", 0, 0, G_OPTION_ARG_STRING, &caps_opt, "Capability set (hex)", "HEX"},
    {"profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_opt, "Docker/OCI JSON profile", "FILE"},
    {"out", 0, 0, G_OPTION_ARG_FILENAME, &out_opt, "Where to write the BPF", "FILE"},
    {NULL}};

static int compile_parsed(GError **err)
{
  guint64 caps = 0;
  if (!caps_opt || !out_opt ||
      !g_ascii_string_to_unsigned(caps_opt, 16, 0, G_MAXUINT64, &caps, NULL))
    return sbx_fail(err, SBX_ERROR_USAGE, "seccomp-compile: --caps HEX and --out FILE needed"), -1;
  g_autoptr(GBytes) bpf = sbx_seccomp_compile(profile_opt, caps, err);
  if (!bpf)
    return -1;
  g_autofree char *dir = g_path_get_dirname(out_opt);
  g_autofree char *base = g_path_get_basename(out_opt);
  sbx_autofd dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return sbx_fail_errno(err, "%s", dir), -1;
  gsize len;
  const void *data = g_bytes_get_data(bpf, &len);
  return sbx_write_file_atomic(dfd, base, data, len, 0600, err) ? 0 : -1;
}

int sbx_cmd_seccomp_compile(int argc, char **argv)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(GOptionContext) ctx = g_option_context_new("");
  g_option_context_add_main_entries(ctx, entries, NULL);
  int status;
  if (!g_option_context_parse(ctx, &argc, &argv, &err))
    status = sbx_cli_report(err);
  else if ((status = compile_parsed(&err)) < 0)
    status = sbx_cli_report(err);
  g_clear_pointer(&caps_opt, g_free);
  g_clear_pointer(&profile_opt, g_free);
  g_clear_pointer(&out_opt, g_free);
  return status;
}
