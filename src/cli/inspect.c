/* sbx inspect [--format json] IMAGE|ARCHIVE
 * An archive is read (every small blob digest-checked) but not unpacked. */
#include "sbx/cli.h"
#include "sbx/json.h"
#include "sbx/source.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <stdio.h>
#include <string.h>

static char *format_opt;

static GOptionEntry inspect_entries[] = {
    {"format", 0, 0, G_OPTION_ARG_STRING, &format_opt, "text (default) or json", "FORMAT"}, {NULL}};

typedef struct {
  char *id;
  char **names;
  const char *format;
  GBytes *config_raw;
  GPtrArray *layers; /* SbxLayerRef*, size = stored size or -1 */
  guint64 *unpacked; /* per layer, from the store (0 unknown) */
} Inspected;

static void inspected_clear(Inspected *x)
{
  g_free(x->id);
  g_strfreev(x->names);
  if (x->config_raw)
    g_bytes_unref(x->config_raw);
  if (x->layers)
    g_ptr_array_unref(x->layers);
  g_free(x->unpacked);
}

static gboolean from_archive(const char *path, const char *select, Inspected *x, GError **err)
{
  g_autoptr(SbxSource) src = sbx_source_open(path, sbx_cli_settings()->max_layer_size, err);
  g_autoptr(SbxImage) img = src ? sbx_image_load(src, select, err) : NULL;
  if (!img)
    return FALSE;
  x->id = g_strdup(img->config_digest + 7);
  x->names = g_strdupv(img->names);
  x->format = img->format;
  x->config_raw = g_bytes_ref(img->config_raw);
  x->layers = g_ptr_array_ref(img->layers);
  for (guint i = 0; i < img->layers->len; i++) {
    SbxLayerRef *l = img->layers->pdata[i];
    if (l->size < 0)
      l->size = sbx_source_size(src, l->member, NULL);
  }
  x->unpacked = g_new0(guint64, img->layers->len);
  return TRUE;
}

static gboolean from_store(const char *ref, Inspected *x, GError **err)
{
  g_autoptr(SbxStore) store = sbx_cli_open_store(err);
  if (!store)
    return FALSE;
  x->id = sbx_store_resolve(store, ref, err);
  if (!x->id || !(x->config_raw = sbx_store_read_config_raw(store, x->id, err)))
    return FALSE;
  /* Names that cannot be read fail the inspect: its output is read by
   * programs, which could not tell a partial list. */
  if (!(x->names = sbx_store_names_of(store, x->id, err)))
    return FALSE;
  x->format = "store";
  g_autoptr(SbxImageConfig) cfg = sbx_image_config_parse(g_bytes_get_data(x->config_raw, NULL),
                                                         g_bytes_get_size(x->config_raw), err);
  if (!cfg)
    return FALSE;
  x->layers = g_ptr_array_new_with_free_func(sbx_layer_ref_free);
  guint n = g_strv_length(cfg->diff_ids);
  x->unpacked = g_new0(guint64, n);
  for (guint i = 0; i < n; i++) {
    SbxLayerRef *l = g_new0(SbxLayerRef, 1);
    l->diff_id = g_strdup(cfg->diff_ids[i]);
    l->size = -1;
    g_ptr_array_add(x->layers, l);
    x->unpacked[i] = sbx_store_layer_size(store, cfg->diff_ids[i] + 7);
  }
  return TRUE;
}

static void add_string(JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name(b, name);
  if (value)
    json_builder_add_string_value(b, value);
  else
    json_builder_add_null_value(b);
}

static void add_member_of(JsonBuilder *b, JsonObject *cfg, const char *from, const char *as)
{
  json_builder_set_member_name(b, as);
  JsonNode *n = cfg ? json_object_get_member(cfg, from) : NULL;
  json_builder_add_value(b, n ? json_node_copy(n) : json_node_new(JSON_NODE_NULL));
}

static JsonNode *build_json(Inspected *x, JsonObject *cfg)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  g_autofree char *id = g_strconcat("sha256:", x->id, NULL);
  add_string(b, "Id", id);
  json_builder_set_member_name(b, "Names");
  json_builder_begin_array(b);
  for (char **n = x->names; n && *n; n++)
    json_builder_add_string_value(b, *n);
  json_builder_end_array(b);
  add_string(b, "Source", x->format);
  add_member_of(b, cfg, "created", "Created");
  add_member_of(b, cfg, "architecture", "Architecture");
  add_member_of(b, cfg, "os", "Os");
  add_member_of(b, cfg, "config", "Config");
  json_builder_set_member_name(b, "Layers");
  json_builder_begin_array(b);
  for (guint i = 0; i < x->layers->len; i++) {
    SbxLayerRef *l = x->layers->pdata[i];
    json_builder_begin_object(b);
    add_string(b, "DiffId", l->diff_id);
    add_string(b, "Digest", l->blob_digest);
    add_string(b, "MediaType", l->media_type);
    json_builder_set_member_name(b, "Size");
    json_builder_add_int_value(b, l->size);
    json_builder_set_member_name(b, "UnpackedSize");
    json_builder_add_int_value(b, (gint64)x->unpacked[i]);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  add_member_of(b, cfg, "history", "History");
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

/* Every string of an image reaches the terminal escaped (issue 9: an OSC 52
 * clipboard write in WorkingDir came through). */
static void print_line(const char *label, const char *value)
{
  g_autofree char *safe = sbx_escape_text(value);
  printf("%-13s %s\n", label, safe);
}

static void print_field(const char *label, JsonObject *o, const char *member)
{
  JsonNode *n = o ? json_object_get_member(o, member) : NULL;
  if (!n || JSON_NODE_HOLDS_NULL(n))
    return;
  g_autofree char *text = JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
                              ? g_strdup(json_node_get_string(n))
                              : json_to_string(n, FALSE);
  print_line(label, text);
}

static void print_text(Inspected *x, JsonObject *cfg)
{
  printf("%-13s sha256:%s\n", "Id:", x->id);
  for (char **n = x->names; n && *n; n++)
    print_line("Name:", *n);
  printf("%-13s %s\n", "Source:", x->format);
  print_field("Created:", cfg, "created");
  print_field("Architecture:", cfg, "architecture");
  JsonNode *cn = cfg ? json_object_get_member(cfg, "config") : NULL;
  JsonObject *c = cn && JSON_NODE_HOLDS_OBJECT(cn) ? json_node_get_object(cn) : NULL;
  print_field("Entrypoint:", c, "Entrypoint");
  print_field("Cmd:", c, "Cmd");
  print_field("WorkingDir:", c, "WorkingDir");
  print_field("User:", c, "User");
  JsonNode *env = c ? json_object_get_member(c, "Env") : NULL;
  if (env && JSON_NODE_HOLDS_ARRAY(env))
    for (guint i = 0; i < json_array_get_length(json_node_get_array(env)); i++)
      print_line("Env:", json_array_get_string_element(json_node_get_array(env), i));
  printf("Layers:\n");
  for (guint i = 0; i < x->layers->len; i++) {
    SbxLayerRef *l = x->layers->pdata[i];
    g_autofree char *size = l->size >= 0 ? g_format_size((guint64)l->size) : g_strdup("-");
    g_autofree char *unpacked = x->unpacked[i] ? g_format_size(x->unpacked[i]) : g_strdup("-");
    g_autofree char *diff_id = sbx_escape_text(l->diff_id);
    g_autofree char *blob = sbx_escape_text(l->blob_digest ? l->blob_digest : "");
    printf("  %2u  %s  stored %s, unpacked %s%s%s\n", i + 1, diff_id, size, unpacked,
           *blob ? "  blob " : "", blob);
  }
  JsonNode *h = cfg ? json_object_get_member(cfg, "history") : NULL;
  if (h && JSON_NODE_HOLDS_ARRAY(h)) {
    printf("History:\n");
    JsonArray *a = json_node_get_array(h);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      JsonNode *e = json_array_get_element(a, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
      const char *by = NULL, *when = NULL;
      if (o) {
        sbx_json_get_string(o, "created_by", &by, "history", NULL);
        sbx_json_get_string(o, "created", &when, "history", NULL);
      }
      g_autofree char *safe_when = sbx_escape_text(when ? when : "");
      g_autofree char *safe_by = sbx_escape_text(by ? by : "");
      printf("  %-20.20s %s\n", safe_when, safe_by);
    }
  }
}

static int inspect_parsed(int argc, char **argv, GError **err)
{
  if (sbx_global.platform && !sbx_image_set_platform(sbx_global.platform, err))
    return -1;
  if (argc != 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "inspect: give one image or archive"), -1;
  gboolean json = format_opt && strcmp(format_opt, "json") == 0;
  if (format_opt && !json && strcmp(format_opt, "text") != 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "--format: '%s' is not text or json", format_opt), -1;
  Inspected x = {0};
  g_autofree char *path = NULL, *select = NULL;
  gboolean ok = sbx_cli_split_image_ref(argv[1], &path, &select, NULL)
                    ? from_archive(path, select, &x, err)
                    : from_store(argv[1], &x, err);
  g_autoptr(JsonNode) root = ok ? sbx_json_parse(g_bytes_get_data(x.config_raw, NULL),
                                                 g_bytes_get_size(x.config_raw), "config", err)
                                : NULL;
  if (root) {
    JsonObject *cfg = JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
    if (json) {
      g_autoptr(JsonNode) out = build_json(&x, cfg);
      g_autofree char *text = json_to_string(out, TRUE);
      g_autofree char *safe = sbx_escape_json_text(text);
      printf("%s\n", safe);
    } else {
      print_text(&x, cfg);
    }
  }
  inspected_clear(&x);
  return root ? 0 : -1;
}

static void clear_options(void)
{
  g_clear_pointer(&format_opt, g_free);
}

int sbx_cmd_inspect(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "IMAGE|ARCHIVE",
      "Show an image's config, layers (digests, sizes) and history; an archive is read and "
      "checked but not imported.",
      inspect_entries,
      FALSE,
      inspect_parsed,
      clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}
