/* A registry repository seen as an OCI image layout, so that the walk of
 * src/image/oci.c (indexes, platform choice, manifest, config, layer media
 * types, every digest checked) is the same for `sbx pull` as for
 * `sbx load`:
 *
 *   index.json           made here: one descriptor, the manifest (or index)
 *                        the reference names (no name annotated: the image
 *                        is named by store/pull.c, by the reference pulled)
 *   blobs/sha256/<hex>   a manifest (GET /manifests/) when an index listed
 *                        it, else a blob (GET /blobs/); layers are streamed
 */
#include "sbx/digest.h"
#include "sbx/json.h"
#include "sbx/registry.h"
#include "sbx/util.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

typedef struct {
  SbxRegistry *reg;
  char *name;
  char *top_digest, *top_type;
  GBytes *top;
  GHashTable *manifests; /* digests an index listed (fetched from /manifests/) */
  GHashTable *sizes;     /* layer digest -> descriptor size, from the manifests read */
} RegLayout;

static void reg_layout_free(gpointer p)
{
  RegLayout *l = p;
  g_free(l->name);
  g_free(l->top_digest);
  g_free(l->top_type);
  if (l->top)
    g_bytes_unref(l->top);
  g_hash_table_destroy(l->manifests);
  g_hash_table_destroy(l->sizes);
  g_free(l);
}

static gboolean is_manifest_type(const char *t)
{
  return g_strcmp0(t, MT_OCI_INDEX) == 0 || g_strcmp0(t, MT_OCI_MANIFEST) == 0 ||
         g_strcmp0(t, MT_DOCKER_LIST) == 0 || g_strcmp0(t, MT_DOCKER_MANIFEST) == 0;
}

/* Learn from a manifest what to fetch how: the manifests an index lists,
 * the sizes of a manifest's layers. Its validity is oci.c's business. */
static void note_manifest(RegLayout *l, GBytes *b, char **media_type)
{
  gsize len;
  const char *data = g_bytes_get_data(b, &len);
  g_autoptr(JsonNode) root = sbx_json_parse(data, len, "manifest", NULL);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root))
    return;
  JsonObject *o = json_node_get_object(root);
  if (media_type) {
    JsonNode *mt = json_object_get_member(o, "mediaType");
    if (mt && JSON_NODE_HOLDS_VALUE(mt) && json_node_get_value_type(mt) == G_TYPE_STRING) {
      g_free(*media_type);
      *media_type = g_strdup(json_node_get_string(mt));
    }
  }
  const char *lists[] = {"manifests", "layers"};
  for (guint k = 0; k < G_N_ELEMENTS(lists); k++) {
    JsonNode *an = json_object_get_member(o, lists[k]);
    if (!an || !JSON_NODE_HOLDS_ARRAY(an))
      continue;
    JsonArray *a = json_node_get_array(an);
    for (guint i = 0; i < json_array_get_length(a) && i < 8192; i++) {
      JsonNode *e = json_array_get_element(a, i);
      if (!JSON_NODE_HOLDS_OBJECT(e))
        continue;
      JsonObject *d = json_node_get_object(e);
      const char *digest = sbx_json_string_or_null(d, "digest");
      if (!digest || !sbx_digest_valid(digest))
        continue;
      if (k == 0)
        g_hash_table_add(l->manifests, g_strdup(digest));
      else
        g_hash_table_insert(l->sizes, g_strdup(digest),
                            g_memdup2((gint64[]){sbx_json_int_or(d, "size", -1)}, sizeof(gint64)));
    }
  }
}

static GBytes *synthesized_index(RegLayout *l)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "schemaVersion");
  json_builder_add_int_value(b, 2);
  json_builder_set_member_name(b, "manifests");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "mediaType");
  json_builder_add_string_value(b, l->top_type);
  json_builder_set_member_name(b, "digest");
  json_builder_add_string_value(b, l->top_digest);
  json_builder_set_member_name(b, "size");
  json_builder_add_int_value(b, (gint64)g_bytes_get_size(l->top));
  json_builder_end_object(b);
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  char *text = json_to_string(root, FALSE);
  return g_bytes_new_take(text, strlen(text));
}

static char *member_digest(const char *member, GError **err)
{
  if (!g_str_has_prefix(member, "blobs/sha256/") || !sbx_hex64_valid(member + 13)) {
    sbx_fail(err, SBX_ERROR_NOT_FOUND, "registry: no %s", member);
    return NULL;
  }
  return g_strconcat("sha256:", member + 13, NULL);
}

static gboolean layout_has(gpointer p, const char *member)
{
  return strcmp(member, "index.json") == 0;
}

static GBytes *layout_read(gpointer p, const char *member, gsize max, GError **err)
{
  RegLayout *l = p;
  if (strcmp(member, "index.json") == 0)
    return synthesized_index(l);
  g_autofree char *digest = member_digest(member, err);
  if (!digest)
    return NULL;
  if (strcmp(digest, l->top_digest) == 0)
    return g_bytes_ref(l->top);
  if (g_hash_table_contains(l->manifests, digest)) {
    g_autoptr(GBytes) b = sbx_registry_get_manifest(l->reg, digest, NULL, err);
    if (b)
      note_manifest(l, b, NULL);
    return g_steal_pointer(&b);
  }
  return sbx_registry_get_blob(l->reg, digest, max, err);
}

static gint64 layout_size(gpointer p, const char *member, GError **err)
{
  RegLayout *l = p;
  g_autofree char *digest = member_digest(member, err);
  gint64 *size = digest ? g_hash_table_lookup(l->sizes, digest) : NULL;
  if (digest && !size)
    sbx_fail(err, SBX_ERROR_NOT_FOUND, "registry: no layer %s in the manifests read", digest);
  return size ? *size : -1;
}

static SbxStream *layout_open_stream(gpointer p, const char *member, GError **err)
{
  RegLayout *l = p;
  gint64 size = layout_size(p, member, err);
  g_autofree char *digest = size >= 0 ? member_digest(member, err) : NULL;
  return digest ? sbx_registry_open_blob(l->reg, digest, size, err) : NULL;
}

static const SbxSourceOps layout_ops = {
    .has = layout_has,
    .size = layout_size,
    .read = layout_read,
    .open_stream = layout_open_stream,
    .free = reg_layout_free,
};

SbxSource *sbx_registry_source_new(SbxRegistry *r, const SbxImageRef *ref, GError **err)
{
  RegLayout *l = g_new0(RegLayout, 1);
  l->reg = r;
  l->name = sbx_image_ref_name(ref);
  l->manifests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  l->sizes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(SbxSource) src = sbx_source_new_custom(l->name, &layout_ops, l);
  g_autofree char *content_type = NULL;
  l->top = sbx_registry_get_manifest(r, sbx_image_ref_reference(ref), &content_type, err);
  if (!l->top)
    return NULL;
  gsize len;
  const void *data = g_bytes_get_data(l->top, &len);
  l->top_digest = sbx_digest_bytes(data, len);
  /* Pulled by digest: the manifest must be that one (a tag may move, a
   * digest may not). */
  if (ref->digest && strcmp(ref->digest, l->top_digest) != 0) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: the registry sent a manifest of digest %s", l->name,
             l->top_digest);
    return NULL;
  }
  if (content_type)
    l->top_type = g_strndup(content_type, strcspn(content_type, "; "));
  note_manifest(l, l->top, &l->top_type);
  if (!is_manifest_type(l->top_type)) {
    const char *type = l->top_type ? l->top_type : "none";
    /* Bounded by the string: g_utf8_make_valid() reads `len` bytes, past a NUL. */
    g_autofree char *shown = g_utf8_make_valid(type, MIN(strlen(type), 100));
    sbx_fail(err, SBX_ERROR_INVALID,
             "%s: unsupported manifest type %s (schema 1 is not "
             "supported)",
             l->name, shown);
    return NULL;
  }
  sbx_debug("%s: manifest %s (%s)", l->name, l->top_digest, l->top_type);
  return g_steal_pointer(&src);
}
