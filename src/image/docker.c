/* docker save / podman save archives: manifest.json lists, per image, the
 * config file, the layer files (bottom first) and the RepoTags.
 *
 * Legacy layout:  <hex>.json, <id>/layer.tar (podman: a symlink to ../<hex>.tar)
 * Docker 25+:     blobs/sha256/<hex> for both, beside an OCI index.json. */
#include "sbx/digest.h"
#include "sbx/image.h"
#include "sbx/json.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <string.h>

static gboolean tag_matches(const char *tag, const char *select)
{
  if (g_strcmp0(tag, select) == 0)
    return TRUE;
  /* "busybox" means "busybox:latest"; "docker.io/library/x" is "x". */
  g_autofree char *want =
      sbx_ref_has_tag(select) ? g_strdup(select) : g_strconcat(select, ":latest", NULL);
  const char *t = tag;
  if (g_str_has_prefix(t, "docker.io/"))
    t += strlen("docker.io/");
  if (g_str_has_prefix(t, "library/"))
    t += strlen("library/");
  if (g_str_has_prefix(t, "localhost/"))
    t += strlen("localhost/");
  return g_strcmp0(t, want) == 0 || g_strcmp0(tag, want) == 0;
}

static JsonObject *pick_entry(JsonArray *arr, const char *select, GStrv *tags_out, GError **err)
{
  guint n = json_array_get_length(arr);
  if (n == 0) {
    sbx_fail(err, SBX_ERROR_INVALID, "manifest.json lists no images");
    return NULL;
  }
  g_autoptr(GString) all = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    JsonObject *e = sbx_json_object(json_array_get_element(arr, i), "manifest.json entry", err);
    g_auto(GStrv) tags = NULL;
    if (!e || !sbx_json_get_strv(e, "RepoTags", &tags, "manifest.json", err))
      return NULL;
    for (char **t = tags; t && *t; t++)
      if (!sbx_image_archive_name_ok(*t, "manifest.json", err))
        return NULL;
    for (char **t = tags; t && *t; t++) {
      g_string_append_printf(all, "%s%s", all->len ? ", " : "", *t);
      if (select && tag_matches(*t, select)) {
        *tags_out = g_steal_pointer(&tags);
        return e;
      }
    }
    if (!select && n == 1) {
      *tags_out = g_steal_pointer(&tags);
      return e;
    }
  }
  if (select)
    sbx_fail(err, SBX_ERROR_NOT_FOUND, "no image named %s in the archive (it has: %s)", select,
             all->len ? all->str : "no names");
  else
    sbx_fail(err, SBX_ERROR_USAGE,
             "the archive holds %u images (%s): choose one with FILE:NAME[:TAG]", n, all->str);
  return NULL;
}

SbxImage *sbx_image_load_docker(SbxSource *src, const char *select, GError **err)
{
  g_autoptr(GBytes) raw = sbx_source_read(src, "manifest.json", SBX_MAX_JSON_MEMBER, err);
  if (!raw)
    return NULL;
  gsize len;
  const char *data = g_bytes_get_data(raw, &len);
  g_autoptr(JsonNode) root = sbx_json_parse(data, len, "manifest.json", err);
  if (!root)
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY(root)) {
    sbx_fail(err, SBX_ERROR_INVALID, "manifest.json: expected an array");
    return NULL;
  }
  g_autoptr(SbxImage) img = g_new0(SbxImage, 1);
  img->format = "docker-archive";
  img->layers = g_ptr_array_new_with_free_func(sbx_layer_ref_free);
  JsonObject *e = pick_entry(json_node_get_array(root), select, &img->names, err);
  if (!e)
    return NULL;
  const char *config;
  g_auto(GStrv) layers = NULL;
  if (!sbx_json_get_string(e, "Config", &config, "manifest.json", err) ||
      !sbx_json_get_strv(e, "Layers", &layers, "manifest.json", err))
    return NULL;
  if (!config || !layers) {
    sbx_fail(err, SBX_ERROR_INVALID, "manifest.json: entry without Config or Layers");
    return NULL;
  }
  /* The config's name is its digest in both layouts: check it. */
  g_autofree char *named = sbx_image_digest_from_path(config);
  img->config_raw = sbx_image_read_blob(src, config, named, -1, err);
  if (!img->config_raw)
    return NULL;
  img->config_digest = named ? g_strdup(named)
                             : sbx_digest_bytes(g_bytes_get_data(img->config_raw, NULL),
                                                g_bytes_get_size(img->config_raw));
  for (char **l = layers; *l; l++) {
    SbxLayerRef *ref = g_new0(SbxLayerRef, 1);
    ref->member = g_strdup(*l);
    ref->size = -1;
    /* Docker 25+: blobs/sha256/<hex> is the digest of the stored bytes. */
    if (g_str_has_prefix(*l, "blobs/sha256/"))
      ref->blob_digest = sbx_image_digest_from_path(*l);
    g_ptr_array_add(img->layers, ref);
    if (!sbx_source_has(src, *l)) {
      sbx_source_size(src, *l, err);
      return NULL;
    }
  }
  if (!sbx_image_finish(img, err))
    return NULL;
  return g_steal_pointer(&img);
}
