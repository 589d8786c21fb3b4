/* sbx images [--format json]   sbx rmi IMAGE...   sbx prune */
#include "sbx/cli.h"
#include "sbx/json.h"
#include "sbx/store.h"
#include "sbx/digest.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

static char *format_opt;
static gboolean force_opt;

static GOptionEntry images_entries[] = {
    {"format", 0, 0, G_OPTION_ARG_STRING, &format_opt, "table (default) or json", "FORMAT"},
    {NULL}};

static GOptionEntry rmi_entries[] = {{"force", 'f', 0, G_OPTION_ARG_NONE, &force_opt,
                                      "Remove the image even if it has other names", NULL},
                                     {NULL}};

static char *human_size(guint64 bytes)
{
  return g_format_size_full(bytes, G_FORMAT_SIZE_DEFAULT);
}

typedef struct {
  char *id;
  char **names;
  char *created;
  guint64 size;
} Row;

static void row_free(gpointer p)
{
  Row *r = p;
  g_free(r->id);
  g_strfreev(r->names);
  g_free(r->created);
  g_free(r);
}

/* NULL with err for a record that cannot be read or understood. Names
 * that cannot be read are left out, with one warning for the listing. */
static Row *read_row(SbxStore *s, const char *id, gboolean *warned, GError **err)
{
  g_autoptr(GBytes) raw = sbx_store_read_config_raw(s, id, err);
  g_autoptr(SbxImageConfig) cfg =
      raw ? sbx_image_config_parse(g_bytes_get_data(raw, NULL), g_bytes_get_size(raw), err) : NULL;
  if (!cfg)
    return NULL;
  Row *r = g_new0(Row, 1);
  r->id = g_strdup(id);
  g_autoptr(GError) local = NULL;
  r->names = sbx_store_names_of(s, id, &local);
  if (!r->names) {
    if (!*warned)
      sbx_warn("image names left out: %s", local->message);
    *warned = TRUE;
    r->names = g_new0(char *, 1);
  }
  g_autoptr(JsonNode) root =
      sbx_json_parse(g_bytes_get_data(raw, NULL), g_bytes_get_size(raw), "config", NULL);
  const char *created = NULL;
  if (root && JSON_NODE_HOLDS_OBJECT(root))
    sbx_json_get_string(json_node_get_object(root), "created", &created, "config", NULL);
  r->created = g_strdup(created ? created : "");
  for (char **d = cfg->diff_ids; *d; d++)
    r->size += sbx_store_layer_size(s, sbx_digest_hex_of(*d));
  return r;
}

static void print_json(GPtrArray *rows)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_array(b);
  for (guint i = 0; i < rows->len; i++) {
    Row *r = rows->pdata[i];
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "Id");
    g_autofree char *id = g_strconcat(SBX_DIGEST_PREFIX, r->id, NULL);
    json_builder_add_string_value(b, id);
    json_builder_set_member_name(b, "Names");
    json_builder_begin_array(b);
    for (char **n = r->names; *n; n++)
      json_builder_add_string_value(b, *n);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "Created");
    json_builder_add_string_value(b, r->created);
    json_builder_set_member_name(b, "Size");
    json_builder_add_int_value(b, (gint64)r->size);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = json_to_string(root, TRUE);
  g_autofree char *safe = sbx_escape_json_text(text);
  printf("%s\n", safe);
}

static void print_table(GPtrArray *rows)
{
  printf("%-40s %-12s %-22s %s\n", "NAME", "ID", "CREATED", "SIZE");
  for (guint i = 0; i < rows->len; i++) {
    Row *r = rows->pdata[i];
    g_autofree char *size = human_size(r->size);
    /* Names and dates come from archives: escaped for the terminal. */
    g_autofree char *created_raw = g_strndup(r->created, 19);
    g_autofree char *created = sbx_escape_text(created_raw);
    if (!r->names[0])
      printf("%-40s %.12s %-22s %s\n", "<none>", r->id, created, size);
    for (char **n = r->names; *n; n++) {
      g_autofree char *name = sbx_escape_text(*n);
      printf("%-40s %.12s %-22s %s\n", name, r->id, created, size);
    }
  }
}

static int images_parsed(int argc, char **argv, GError **err)
{
  if (argc != 1)
    return sbx_fail(err, SBX_ERROR_USAGE, "images: takes no arguments"), -1;
  if (format_opt && strcmp(format_opt, "json") != 0 && strcmp(format_opt, "table") != 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "--format: '%s' is not table or json", format_opt), -1;
  g_autoptr(SbxStore) store = sbx_cli_open_store(err);
  if (!store)
    return -1;
  g_autoptr(GPtrArray) ids = sbx_store_list_ids(store, err);
  if (!ids)
    return -1;
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(row_free);
  gboolean warned = FALSE;
  for (guint i = 0; i < ids->len; i++) {
    const char *id = ids->pdata[i];
    g_autoptr(GError) local = NULL;
    Row *r = read_row(store, id, &warned, &local);
    /* Removed since it was listed (an rmi meanwhile): not damaged, gone. */
    if (!r && sbx_error_errno(local) == ENOENT)
      continue;
    /* Left out of the list, never silently: the user can remove it. */
    if (!r) {
      sbx_warn("image %.12s: damaged image record (%s): load it again or 'sbx rmi %.12s'", id,
               local->message, id);
      continue;
    }
    g_ptr_array_add(rows, r);
    g_autofree char *run = g_strdup_printf("images/%s.run", id);
    g_autofree char *json = g_strdup_printf("images/%s.json", id);
    if (faccessat(store->rootfd, run, F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
        faccessat(store->rootfd, json, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
      sbx_warn("image %.12s: damaged image record (no %s): load it again or 'sbx rmi %.12s'", id,
               run, id);
  }
  if (format_opt && strcmp(format_opt, "json") == 0)
    print_json(rows);
  else
    print_table(rows);
  return 0;
}

static int rmi_parsed(int argc, char **argv, GError **err)
{
  if (argc < 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "rmi: give at least one image"), -1;
  g_autoptr(SbxStore) store = sbx_cli_open_store(err);
  if (!store)
    return -1;
  for (int i = 1; i < argc; i++)
    if (!sbx_store_remove_image(store, argv[i], force_opt, err))
      return -1;
  return 0;
}

static int prune_parsed(int argc, char **argv, GError **err)
{
  if (argc != 1)
    return sbx_fail(err, SBX_ERROR_USAGE, "prune: takes no arguments"), -1;
  g_autoptr(SbxStore) store = sbx_cli_open_store(err);
  guint n = 0;
  guint64 bytes = 0;
  gboolean ok = store && sbx_store_prune(store, &n, &bytes, err);
  /* What was removed is said even when something else would not go. */
  if (ok || n > 0) {
    g_autofree char *size = human_size(bytes);
    printf("Removed %u unused layer%s, %s\n", n, n == 1 ? "" : "s", size);
  }
  return ok ? 0 : -1;
}

static void clear_options(void)
{
  g_clear_pointer(&format_opt, g_free);
}

int sbx_cmd_images(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "", "List the images in the store.", images_entries, FALSE, images_parsed, clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}

int sbx_cmd_rmi(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "IMAGE...",
      "Remove images (by name or id) from the store. Their layers stay until 'sbx prune'; a "
      "running sandbox is never affected.",
      rmi_entries,
      FALSE,
      rmi_parsed,
      clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}

int sbx_cmd_prune(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "",           "Delete layers that no image uses and no running sandbox holds.",
      NULL,         FALSE,
      prune_parsed, clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}
