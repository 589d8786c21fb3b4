/* What every command shares: global options and error reporting. */
#include "sbx/cli.h"
#include "sbx/state.h"
#include "sbx/util.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

SbxGlobalOptions sbx_global;
static gboolean resolve_settings(GError **err);

static GOptionEntry global_entries[] = {
    {"root", 0, 0, G_OPTION_ARG_FILENAME, &sbx_global.root,
     "Store directory (default $SBX_ROOT or $XDG_DATA_HOME/sbx)", "DIR"},
    {"log-level", 0, 0, G_OPTION_ARG_STRING, &sbx_global.log_level,
     "error, warn, info (what sbx did) or debug (every setup step)", "LEVEL"},
    {"userns", 0, 0, G_OPTION_ARG_STRING, &sbx_global.userns,
     "auto (default), single (one id) or range (/etc/subuid via newuidmap)", "MODE"},
    {"platform", 0, 0, G_OPTION_ARG_STRING, &sbx_global.platform,
     "Image platform to pick from a multi-platform archive (default: this machine's)", "OS/ARCH"},
    {NULL}};

void sbx_cli_add_global_options(GOptionContext *ctx)
{
  GOptionGroup *g = g_option_group_new(
      "global", "Options every command takes:", "Show the options every command takes", NULL, NULL);
  g_option_group_add_entries(g, global_entries);
  g_option_context_add_group(ctx, g);
}

gboolean sbx_cli_apply_global_options(GError **err)
{
  const char *level = sbx_global.log_level ? sbx_global.log_level : g_getenv("SBX_LOG_LEVEL");
  if (level && !sbx_log_set_level(level))
    return sbx_fail(err, SBX_ERROR_USAGE, "--log-level: '%s' is not error, warn, info or debug",
                    level);
  return resolve_settings(err);
}

int sbx_cli_command(const SbxCliCommand *cmd, int argc, char **argv)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(GOptionContext) ctx = g_option_context_new(cmd->params);
  g_option_context_set_summary(ctx, cmd->summary);
  if (cmd->entries)
    g_option_context_add_main_entries(ctx, cmd->entries, NULL);
  sbx_cli_add_global_options(ctx);
  g_option_context_set_strict_posix(ctx, cmd->posix);
  int status;
  if (!g_option_context_parse(ctx, &argc, &argv, &err) || !sbx_cli_apply_global_options(&err))
    status = sbx_cli_report(err);
  else if ((status = cmd->parsed(argc, argv, &err)) < 0)
    status = sbx_cli_report(err);
  if (cmd->clear)
    cmd->clear();
  sbx_cli_global_options_clear();
  return status;
}

void sbx_cli_global_options_clear(void)
{
  g_clear_pointer(&sbx_global.root, g_free);
  g_clear_pointer(&sbx_global.log_level, g_free);
  g_clear_pointer(&sbx_global.userns, g_free);
  g_clear_pointer(&sbx_global.platform, g_free);
}

int sbx_cli_report(const GError *err)
{
  if (err && g_error_matches(err, SBX_ERROR, SBX_ERROR_REPORTED))
    return SBX_EXIT_FAILED;
  /* One line, always: untrusted text (member names, JSON errors) may hold
   * newlines or control characters. */
  g_autofree char *msg = sbx_escape_text(err ? err->message : "unknown error");
  g_autofree char *line = g_strdup_printf("sbx: %s\n", msg);
  fputs(line, stderr);
  return SBX_EXIT_FAILED;
}

/* IMAGE is a file or directory; FILE:NAME[:TAG] picks one image in it. */
gboolean sbx_cli_split_image_ref(const char *ref, char **path, char **select, GError **err)
{
  struct stat st;
  if (stat(ref, &st) == 0) {
    *path = g_strdup(ref);
    return TRUE;
  }
  for (const char *c = strchr(ref, ':'); c; c = strchr(c + 1, ':')) {
    g_autofree char *prefix = g_strndup(ref, (gsize)(c - ref));
    if (stat(prefix, &st) == 0) {
      *path = g_steal_pointer(&prefix);
      *select = g_strdup(c + 1);
      return TRUE;
    }
  }
  return sbx_fail(err, SBX_ERROR_NOT_FOUND, "image %s: no such archive or directory", ref);
}

static SbxSettings settings = SBX_SETTINGS_DEFAULT;

const SbxSettings *sbx_cli_settings(void)
{
  return &settings;
}

/* Every environment variable sbx reads, read here (after the options). */
static gboolean resolve_settings(GError **err)
{
  const char *v;
  settings = (SbxSettings)SBX_SETTINGS_DEFAULT;
  if ((v = g_getenv("SBX_SUBUID_FILE")))
    settings.subuid_file = v;
  if ((v = g_getenv("SBX_SUBGID_FILE")))
    settings.subgid_file = v;
  settings.platform = sbx_global.platform;
  settings.runtime_dir = g_getenv("XDG_RUNTIME_DIR");
  if ((v = g_getenv("SBX_NET_RESOLV_CONF")) && *v)
    settings.net_resolv_conf = v;
  if ((v = g_getenv("SBX_NET_SPARE"))) {
    if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
      return sbx_fail(err, SBX_ERROR_USAGE, "SBX_NET_SPARE: '%s' is not 0 or 1", v);
    settings.net_spare = strcmp(v, "1") == 0;
  }
  sbx_state_set_runtime_dir(settings.runtime_dir);
  if ((v = g_getenv("SBX_MAX_LAYER_SIZE")) &&
      !g_ascii_string_to_unsigned(v, 10, 1, G_MAXUINT64, &settings.max_layer_size, NULL))
    return sbx_fail(err, SBX_ERROR_USAGE, "SBX_MAX_LAYER_SIZE: '%s' is not a byte count", v);
  guint64 ms;
  if ((v = g_getenv("SBX_PROGRESS_DELAY_MS"))) {
    if (!g_ascii_string_to_unsigned(v, 10, 0, 3600000, &ms, NULL))
      return sbx_fail(err, SBX_ERROR_USAGE, "SBX_PROGRESS_DELAY_MS: '%s' is not milliseconds", v);
    settings.progress_delay_us = (gint64)ms * 1000;
  }
  /* A registry's deadlines, shortened by tests (a trickling server need
   * not take two minutes to be given up on). */
  if ((v = g_getenv("SBX_REGISTRY_TIMEOUT_MS"))) {
    if (!g_ascii_string_to_unsigned(v, 10, 1, 3600000, &ms, NULL))
      return sbx_fail(err, SBX_ERROR_USAGE,
                      "SBX_REGISTRY_TIMEOUT_MS: '%s' is not milliseconds (1 to 3600000)", v);
    settings.registry_timeout_ms = (guint)ms;
  }
  guint64 s;
  if ((v = g_getenv("SBX_REGISTRY_STALL_SECONDS"))) {
    if (!g_ascii_string_to_unsigned(v, 10, 1, 3600, &s, NULL))
      return sbx_fail(err, SBX_ERROR_USAGE,
                      "SBX_REGISTRY_STALL_SECONDS: '%s' is not seconds (1 to 3600)", v);
    settings.registry_stall_s = (guint)s;
  }
  if ((v = g_getenv("SBX_REGISTRY_BLOB_SECONDS"))) {
    if (!g_ascii_string_to_unsigned(v, 10, 1, G_MAXUINT32, &s, NULL))
      return sbx_fail(err, SBX_ERROR_USAGE, "SBX_REGISTRY_BLOB_SECONDS: '%s' is not seconds", v);
    settings.registry_blob_s = (guint)s;
  }
  return TRUE;
}

/* The default root: $SBX_ROOT, $XDG_DATA_HOME/sbx, ~/.local/share/sbx. */
static char *default_root(void)
{
  const char *env = g_getenv("SBX_ROOT");
  if (env && *env)
    return g_strdup(env);
  const char *xdg = g_getenv("XDG_DATA_HOME");
  if (xdg && g_path_is_absolute(xdg))
    return g_build_filename(xdg, "sbx", NULL);
  const char *home = g_getenv("HOME");
  if (!home || !*home) {
    struct passwd *pw = getpwuid(getuid());
    home = pw ? pw->pw_dir : "/";
  }
  return g_build_filename(home, ".local", "share", "sbx", NULL);
}

SbxStore *sbx_cli_open_store(GError **err)
{
  SbxUsernsMode mode = SBX_USERNS_AUTO;
  if (sbx_global.userns && !sbx_userns_mode_parse(sbx_global.userns, &mode, err))
    return NULL;
  SbxIdMap map;
  if (!sbx_idmap_resolve(mode, &settings, &map, err))
    return NULL;
  g_autofree char *root = sbx_global.root ? g_strdup(sbx_global.root) : default_root();
  SbxStore *s = sbx_store_open(root, &map, &settings, err);
  sbx_idmap_clear(&map);
  if (s)
    sbx_info("store %s, layers unpacked for id mapping %s", s->root, s->idmap_key);
  return s;
}
