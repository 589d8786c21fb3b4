/* sbx load [OPTIONS] ARCHIVE   (and the internal `import` that sbx run uses)
 * Runs in sbx-store: the program that links the archive and JSON libraries. */
#include "sbx/cli.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  char *image, *name;
  gboolean quiet, rootfs;
} LoadOptions;

static LoadOptions opts;

static GOptionEntry load_entries[] = {
    {"image", 0, 0, G_OPTION_ARG_STRING, &opts.image,
     "Which image of a multi-image archive (NAME[:TAG])", "NAME"},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &opts.quiet, "No progress output", NULL},
    {"rootfs", 0, 0, G_OPTION_ARG_NONE, &opts.rootfs,
     "ARCHIVE is a plain root filesystem tarball (docker export)", NULL},
    {"name", 0, 0, G_OPTION_ARG_STRING, &opts.name, "Name for a --rootfs image", "NAME[:TAG]"},
    {NULL}};

static int load_parsed(int argc, char **argv, gboolean internal, GError **err)
{
  if (sbx_global.platform && !sbx_image_set_platform(sbx_global.platform, err))
    return -1;
  if (argc != 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "load: give one archive (see 'sbx load --help')"), -1;
  g_autofree char *path = NULL, *select = NULL;
  if (opts.rootfs)
    path = g_strdup(argv[1]);
  else if (!sbx_cli_split_image_ref(argv[1], &path, &select, err))
    return -1;
  if (opts.image) {
    g_free(select);
    select = g_strdup(opts.image);
  }
  g_autoptr(SbxStore) store = sbx_cli_open_store(err);
  if (!store)
    return -1;
  g_autofree char *id = opts.rootfs
                            ? sbx_store_import_rootfs_isolated(store, path, opts.name, err)
                            : sbx_store_import_isolated(store, path, select, opts.quiet, err);
  if (!id)
    return -1;
  if (internal) {
    printf("%s\n", id);
    return 0;
  }
  /* The image is stored: names that cannot be read back are a warning. */
  g_autoptr(GError) local = NULL;
  g_auto(GStrv) names = sbx_store_names_of(store, id, &local);
  if (!names)
    sbx_warn("image %.12s loaded, its names not listed: %s", id, local->message);
  for (char **n = names; n && *n; n++) {
    g_autofree char *name = sbx_escape_text(*n); /* from the archive */
    printf("Loaded image: %s\n", name);
  }
  printf("Loaded image ID: sha256:%s\n", id);
  return 0;
}

static void clear_options(void)
{
  g_free(opts.image);
  g_free(opts.name);
  memset(&opts, 0, sizeof opts);
}

static int load_public(int argc, char **argv, GError **err)
{
  return load_parsed(argc, argv, FALSE, err);
}

static int load_internal(int argc, char **argv, GError **err)
{
  return load_parsed(argc, argv, TRUE, err);
}

#define LOAD_SUMMARY                                                                               \
  "Import an image archive (docker-archive, OCI archive or OCI layout directory) into the "        \
  "store without running it."

int sbx_cmd_load(int argc, char **argv)
{
  static const SbxCliCommand cmd = {"ARCHIVE", LOAD_SUMMARY, load_entries,
                                    FALSE,     load_public,  clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}

int sbx_cmd_import(int argc, char **argv)
{
  static const SbxCliCommand cmd = {"ARCHIVE", LOAD_SUMMARY,  load_entries,
                                    FALSE,     load_internal, clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}
