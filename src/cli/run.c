/* sbx run [OPTIONS] IMAGE [COMMAND [ARG...]] */
#include "sbx/cli.h"
#include "sbx/digest.h"
#include "sbx/sandbox.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
  char **env;
  char *workdir, *user, *hostname, *entrypoint, *network;
  gboolean rm, quiet;
  gboolean entrypoint_set;
} RunOptions;

static RunOptions opts;

static gboolean on_entrypoint(const char *name, const char *value, gpointer data, GError **err)
{
  g_free(opts.entrypoint);
  opts.entrypoint = g_strdup(value);
  opts.entrypoint_set = TRUE;
  return TRUE;
}

static GOptionEntry run_entries[] = {
    {"env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &opts.env,
     "Set KEY=VALUE, or pass KEY from sbx's environment", "KEY[=VALUE]"},
    {"workdir", 'w', 0, G_OPTION_ARG_STRING, &opts.workdir, "Working directory inside", "DIR"},
    {"user", 'u', 0, G_OPTION_ARG_STRING, &opts.user, "Run as USER[:GROUP] (names or ids)",
     "USER[:GROUP]"},
    {"hostname", 'h', 0, G_OPTION_ARG_STRING, &opts.hostname, "Hostname inside", "NAME"},
    {"entrypoint", 0, 0, G_OPTION_ARG_CALLBACK, on_entrypoint,
     "Replace the image's Entrypoint (\"\" clears it)", "CMD"},
    {"network", 0, 0, G_OPTION_ARG_STRING, &opts.network, "Network mode: none", "MODE"},
    {"rm", 0, 0, G_OPTION_ARG_NONE, &opts.rm, "Accepted for podman compatibility: runs are always removed", NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &opts.quiet, "No progress output", NULL},
    {NULL}};

static void run_options_clear(void)
{
  g_strfreev(opts.env);
  g_free(opts.workdir);
  g_free(opts.user);
  g_free(opts.hostname);
  g_free(opts.entrypoint);
  g_free(opts.network);
  memset(&opts, 0, sizeof opts);
}

/* -e KEY takes KEY from our environment, and is dropped when unset (docker). */
static char **resolve_env(char **env, GError **err)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  for (char **e = env; e && *e; e++) {
    if (**e == '=' || **e == '\0') {
      sbx_fail(err, SBX_ERROR_USAGE, "-e '%s': expected KEY=VALUE or KEY", *e);
      return NULL;
    }
    if (strchr(*e, '=')) {
      g_strv_builder_add(b, *e);
    } else if (g_getenv(*e)) {
      g_autofree char *kv = g_strconcat(*e, "=", g_getenv(*e), NULL);
      g_strv_builder_add(b, kv);
    }
  }
  return g_strv_builder_end(b);
}

/* IMAGE: an archive or layout (imported when new), or a loaded image's name. */
static SbxStoredImage *find_image(SbxStore *store, const char *ref, GError **err)
{
  g_autofree char *path = NULL, *select = NULL;
  g_autoptr(GError) local = NULL;
  if (sbx_cli_split_image_ref(ref, &path, &select, &local))
    return sbx_store_ensure(store, path, select, opts.quiet, err);
  g_autofree char *id = sbx_store_resolve(store, ref, NULL);
  if (!id) {
    sbx_fail(err, SBX_ERROR_NOT_FOUND, "image %s: no such archive, layout directory or loaded image",
             ref);
    return NULL;
  }
  return sbx_store_read_image(store, id, err);
}

static int run_parsed(int argc, char **argv, GError **err)
{
  if (!sbx_cli_apply_global_options(err))
    return -1;
  if (argc < 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "run: give an image (see 'sbx run --help')"), -1;
  if (opts.network && strcmp(opts.network, "none") != 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "--network: '%s' is not supported (none)", opts.network), -1;
  g_auto(GStrv) env = resolve_env(opts.env, err);
  if (!env)
    return -1;
  g_autoptr(SbxStore) store = sbx_cli_open_store(err);
  if (!store)
    return -1;
  g_autoptr(SbxStoredImage) img = find_image(store, argv[1], err);
  if (!img)
    return -1;
  /* Held until we exit: prune skips layers a running sandbox uses. */
  g_autoptr(GArray) held = sbx_store_hold_layers(store, img, err);
  if (!held)
    return -1;
  g_autofree char *run_dir = g_build_filename(store->root, "run", NULL);
  /* Copies: init rewrites the memory of our original argv (proctitle.c). */
  g_auto(GStrv) cmd = g_strdupv(argv + 2);
  SbxRunSpec spec = {
      .image = img, .idmap = store->idmap, .store_run_dir = run_dir, .argv = cmd,
      .entrypoint = opts.entrypoint, .entrypoint_set = opts.entrypoint_set, .env = env,
      .workdir = opts.workdir, .user = opts.user, .hostname = opts.hostname, .net = SBX_NET_NONE,
  };
  return sbx_sandbox_run(&spec, err);
}

int sbx_cmd_run(int argc, char **argv)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(GOptionContext) ctx = g_option_context_new("IMAGE [COMMAND [ARG...]]");
  g_option_context_set_summary(ctx, "Run an image (docker-archive, OCI archive or OCI layout "
                                    "directory) in a rootless sandbox.");
  g_option_context_add_main_entries(ctx, run_entries, NULL);
  sbx_cli_add_global_options(ctx);
  /* Options stop at IMAGE: what follows belongs to the command. */
  g_option_context_set_strict_posix(ctx, TRUE);
  g_option_context_set_help_enabled(ctx, TRUE);
  int status;
  if (!g_option_context_parse(ctx, &argc, &argv, &err))
    status = sbx_cli_report(err);
  else if ((status = run_parsed(argc, argv, &err)) < 0)
    status = sbx_cli_report(err);
  run_options_clear();
  sbx_cli_global_options_clear();
  return status;
}
