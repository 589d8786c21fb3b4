/* sbx-store seccomp-compile --caps HEX [--profile FILE] [--out FILE] [--stdout]
 *                           [--log-level LEVEL]
 * (internal: sbx runs it once per profile and caches the BPF it writes to
 * --out in the store; with --stdout it also writes the BPF to stdout, which
 * sbx uses as it is, so a cache the store cannot take (ENOSPC, EDQUOT,
 * EROFS) is a debug note, not a failed run) */
#include "sbx/cli.h"
#include "sbx/security.h"
#include "sbx/util.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static char *caps_opt, *profile_opt, *out_opt, *log_level_opt;
static gboolean stdout_opt;

static GOptionEntry entries[] = {
    {"caps", 0, 0, G_OPTION_ARG_STRING, &caps_opt, "Capability set (hex)", "HEX"},
    {"profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_opt, "Docker/OCI JSON profile", "FILE"},
    {"out", 0, 0, G_OPTION_ARG_FILENAME, &out_opt, "Where to write the BPF", "FILE"},
    {"stdout", 0, 0, G_OPTION_ARG_NONE, &stdout_opt, "Write the BPF to stdout too", NULL},
    {"log-level", 0, 0, G_OPTION_ARG_STRING, &log_level_opt, "sbx's log level", "LEVEL"},
    {NULL}};

static gboolean write_out(GBytes *bpf, GError **err)
{
  g_autofree char *dir = g_path_get_dirname(out_opt);
  g_autofree char *base = g_path_get_basename(out_opt);
  sbx_autofd dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return sbx_fail_errno(err, "%s", dir);
  gsize len;
  const void *data = g_bytes_get_data(bpf, &len);
  return sbx_write_file_atomic(dfd, base, data, len, 0600, err);
}

static int compile_parsed(GError **err)
{
  guint64 caps = 0;
  if (!caps_opt || (!out_opt && !stdout_opt) ||
      !g_ascii_string_to_unsigned(caps_opt, 16, 0, G_MAXUINT64, &caps, NULL))
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "seccomp-compile: --caps HEX and --out FILE or --stdout needed"),
           -1;
  if (log_level_opt && !sbx_log_set_level(log_level_opt))
    return sbx_fail(err, SBX_ERROR_USAGE, "--log-level: '%s' is not a level", log_level_opt), -1;
  g_autoptr(GBytes) bpf = sbx_seccomp_compile(profile_opt, caps, err);
  if (!bpf)
    return -1;
  gsize len;
  const void *data = g_bytes_get_data(bpf, &len);
  if (stdout_opt && !sbx_write_all(STDOUT_FILENO, data, len, err))
    return -1;
  if (!out_opt)
    return 0;
  /* With --stdout the cache is only an optimisation: sbx has the filter. */
  g_autoptr(GError) local = NULL;
  if (write_out(bpf, stdout_opt ? &local : err))
    return 0;
  if (!stdout_opt)
    return -1;
  int e = sbx_error_errno(local);
  sbx_debug("seccomp: cache %s not written (%s): the filter is used uncached", out_opt,
            e ? sbx_strerror(e) : local->message);
  return 0;
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
  g_clear_pointer(&log_level_opt, g_free);
  stdout_opt = FALSE;
  return status;
}
