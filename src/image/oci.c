/* OCI image layouts (image-spec image-layout.md), as an archive or a
 * directory: index.json -> (nested indexes) -> manifest -> config + layers.
 * Every blob is named by its digest and checked against it. */
#include "sbx/digest.h"
#include "sbx/image.h"
#include "sbx/json.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <string.h>

#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MAX_INDEX_DEPTH    4
#define MAX_CANDIDATES     1024
/* Across the whole walk: nested indexes can repeat one another, so the work
 * is bounded by what is read, not only by the depth. */
#define MAX_INDEX_BLOBS 64
#define MAX_DESCRIPTORS 8192

/* One walk of a layout's indexes: what it has read so far, and whether the
 * layout names its images. An archive does (RepoTags' OCI counterpart, the
 * ref.name annotations); a registry's does not: its image is named by the
 * reference pulled, whatever an index inside says. */
typedef struct {
  guint blobs, descriptors;
  gboolean read_names;
} Walk;

typedef struct {
  char *digest;
  gint64 size;
  char *media_type;
  char *os, *arch;
  char *name; /* ref name from annotations, inherited from outer indexes */
  gboolean attestation;
} Desc;

static void desc_free(gpointer p)
{
  Desc *d = p;
  g_free(d->digest);
  g_free(d->media_type);
  g_free(d->os);
  g_free(d->arch);
  g_free(d->name);
  g_free(d);
}

static char *blob_path(const char *digest, GError **err)
{
  if (g_str_has_prefix(digest, "sha512:") || g_str_has_prefix(digest, "blake3:")) {
    sbx_fail(err, SBX_ERROR_INVALID, "unsupported digest algorithm in %s", digest);
    return NULL;
  }
  const char *hex = sbx_digest_hex(digest, err);
  return hex ? g_strconcat("blobs/sha256/", hex, NULL) : NULL;
}

static Desc *parse_desc(JsonNode *n, const char *what, const char *inherited_name,
                        gboolean read_names, GError **err)
{
  JsonObject *o = sbx_json_object(n, what, err);
  if (!o)
    return NULL;
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(desc_free);
  Desc *d = g_new0(Desc, 1);
  g_ptr_array_add(keep, d);
  const char *s;
  d->size = -1;
  if (!sbx_json_get_string(o, "digest", &s, what, err) || !sbx_digest_hex(s, err))
    return NULL;
  d->digest = g_strdup(s);
  if (!sbx_json_get_string(o, "mediaType", &s, what, err) ||
      !sbx_json_get_int(o, "size", &d->size, what, err))
    return NULL;
  d->media_type = g_strdup(s);
  if (d->size < 0) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: descriptor %s has no valid size", what, d->digest);
    return NULL;
  }
  JsonNode *pn = json_object_get_member(o, "platform");
  if (pn && JSON_NODE_HOLDS_OBJECT(pn)) {
    JsonObject *p = json_node_get_object(pn);
    if (!sbx_json_get_string(p, "os", &s, what, err))
      return NULL;
    d->os = g_strdup(s);
    if (!sbx_json_get_string(p, "architecture", &s, what, err))
      return NULL;
    d->arch = g_strdup(s);
  }
  d->name = g_strdup(inherited_name);
  JsonNode *an = json_object_get_member(o, "annotations");
  if (an && JSON_NODE_HOLDS_OBJECT(an)) {
    JsonObject *a = json_node_get_object(an);
    const char *ref = NULL, *full = NULL, *type = NULL;
    if (!sbx_json_get_string(a, "org.opencontainers.image.ref.name", &ref, what, err) ||
        !sbx_json_get_string(a, "io.containerd.image.name", &full, what, err) ||
        !sbx_json_get_string(a, "vnd.docker.reference.type", &type, what, err))
      return NULL;
    if (read_names && ((full && !sbx_image_archive_name_ok(full, what, err)) ||
                       (ref && !sbx_image_archive_name_ok(ref, what, err))))
      return NULL;
    if (read_names && (full || ref)) {
      g_free(d->name);
      d->name = g_strdup(full ? full : ref);
    }
    d->attestation = g_strcmp0(type, "attestation-manifest") == 0;
  }
  g_ptr_array_steal_index(keep, 0);
  return d;
}

static JsonNode *read_json_blob(SbxSource *src, const char *member, const char *digest, gint64 size,
                                GError **err)
{
  g_autoptr(GBytes) b = sbx_image_read_blob(src, member, digest, size, err);
  if (!b)
    return NULL;
  gsize len;
  const char *data = g_bytes_get_data(b, &len);
  return sbx_json_parse(data, len, member, err);
}

static gboolean walk_index(SbxSource *src, JsonNode *index, const char *what, const char *name,
                           int depth, Walk *walk, GPtrArray *out, GError **err)
{
  JsonObject *o = sbx_json_object(index, what, err);
  if (!o)
    return FALSE;
  JsonNode *mn = json_object_get_member(o, "manifests");
  if (!mn || !JSON_NODE_HOLDS_ARRAY(mn))
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: no manifests array", what);
  JsonArray *arr = json_node_get_array(mn);
  walk->descriptors += json_array_get_length(arr);
  if (walk->descriptors > MAX_DESCRIPTORS)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: more than %d descriptors in the image indexes",
                    what, MAX_DESCRIPTORS);
  for (guint i = 0; i < json_array_get_length(arr); i++) {
    Desc *d = parse_desc(json_array_get_element(arr, i), what, name, walk->read_names, err);
    if (!d)
      return FALSE;
    if (g_strcmp0(d->media_type, MT_OCI_INDEX) == 0 ||
        g_strcmp0(d->media_type, MT_DOCKER_LIST) == 0) {
      if (depth >= MAX_INDEX_DEPTH || ++walk->blobs > MAX_INDEX_BLOBS) {
        desc_free(d);
        return sbx_fail(err, SBX_ERROR_INVALID,
                        "%s: image indexes nested too deeply or too many "
                        "of them (at most %d levels, %d indexes)",
                        what, MAX_INDEX_DEPTH, MAX_INDEX_BLOBS);
      }
      g_autofree char *path = blob_path(d->digest, err);
      g_autoptr(JsonNode) sub = path ? read_json_blob(src, path, d->digest, d->size, err) : NULL;
      gboolean ok = sub && walk_index(src, sub, path, d->name, depth + 1, walk, out, err);
      desc_free(d);
      if (!ok)
        return FALSE;
    } else if (g_strcmp0(d->media_type, MT_OCI_MANIFEST) == 0 ||
               g_strcmp0(d->media_type, MT_DOCKER_MANIFEST) == 0 || d->media_type == NULL) {
      if (out->len >= MAX_CANDIDATES) {
        desc_free(d);
        return sbx_fail(err, SBX_ERROR_INVALID, "%s: too many manifests", what);
      }
      g_ptr_array_add(out, d);
    } else {
      desc_free(d); /* artifacts and unknown types are not images */
    }
  }
  return TRUE;
}

static gboolean name_matches(const char *name, const char *select)
{
  if (!name)
    return FALSE;
  g_autofree char *want =
      sbx_ref_has_tag(select) ? g_strdup(select) : g_strconcat(select, ":latest", NULL);
  const char *n = name;
  if (g_str_has_prefix(n, "docker.io/"))
    n += strlen("docker.io/");
  if (g_str_has_prefix(n, "library/"))
    n += strlen("library/");
  return g_strcmp0(name, select) == 0 || g_strcmp0(n, want) == 0 || g_strcmp0(name, want) == 0;
}

static Desc *choose(GPtrArray *cands, const char *select, GError **err)
{
  const char *arch = sbx_image_wanted_arch();
  Desc *pick = NULL;
  g_autoptr(GString) seen = g_string_new(NULL);
  for (guint i = 0; i < cands->len; i++) {
    Desc *d = cands->pdata[i];
    if (d->attestation || g_strcmp0(d->os, "unknown") == 0)
      continue;
    if (select && !name_matches(d->name, select))
      continue;
    g_string_append_printf(seen, "%s%s/%s", seen->len ? ", " : "", d->os ? d->os : "?",
                           d->arch ? d->arch : "?");
    if ((d->os && g_strcmp0(d->os, "linux") != 0) || (d->arch && g_strcmp0(d->arch, arch) != 0))
      continue;
    if (pick && g_strcmp0(pick->name, d->name) != 0 && !select) {
      sbx_fail(err, SBX_ERROR_USAGE,
               "the archive holds several images (%s, %s): choose one with FILE:NAME[:TAG]",
               pick->name ? pick->name : "unnamed", d->name ? d->name : "unnamed");
      return NULL;
    }
    if (!pick)
      pick = d;
  }
  if (!pick) {
    if (select && seen->len == 0)
      sbx_fail(err, SBX_ERROR_NOT_FOUND, "no image named %s in the archive", select);
    else
      sbx_fail(err, SBX_ERROR_NOT_FOUND, "no image for linux/%s in the archive (it has: %s)", arch,
               seen->len ? seen->str : "none");
  }
  return pick;
}

static gboolean layer_media_type_ok(const char *mt)
{
  static const char *const ok[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  };
  for (guint i = 0; i < G_N_ELEMENTS(ok); i++)
    if (g_strcmp0(mt, ok[i]) == 0)
      return TRUE;
  return FALSE;
}

static gboolean read_manifest(SbxSource *src, Desc *d, SbxImage *img, GError **err)
{
  g_autofree char *path = blob_path(d->digest, err);
  g_autoptr(JsonNode) mn = path ? read_json_blob(src, path, d->digest, d->size, err) : NULL;
  JsonObject *m = mn ? sbx_json_object(mn, "image manifest", err) : NULL;
  if (!m)
    return FALSE;
  JsonNode *cn = json_object_get_member(m, "config");
  if (!cn)
    return sbx_fail(err, SBX_ERROR_INVALID, "image manifest %s: no config", d->digest);
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(desc_free);
  Desc *cfg = parse_desc(cn, "image manifest config", NULL, FALSE, err);
  if (!cfg)
    return FALSE;
  g_ptr_array_add(keep, cfg);
  g_autofree char *cpath = blob_path(cfg->digest, err);
  if (!cpath || !(img->config_raw = sbx_image_read_blob(src, cpath, cfg->digest, cfg->size, err)))
    return FALSE;
  img->config_digest = g_strdup(cfg->digest);
  JsonNode *ln = json_object_get_member(m, "layers");
  if (!ln || !JSON_NODE_HOLDS_ARRAY(ln))
    return sbx_fail(err, SBX_ERROR_INVALID, "image manifest %s: no layers array", d->digest);
  JsonArray *la = json_node_get_array(ln);
  for (guint i = 0; i < json_array_get_length(la); i++) {
    Desc *ld = parse_desc(json_array_get_element(la, i), "image manifest layer", NULL, FALSE, err);
    if (!ld)
      return FALSE;
    g_ptr_array_add(keep, ld);
    if (!layer_media_type_ok(ld->media_type))
      return sbx_fail(err, SBX_ERROR_INVALID, "layer %s: unsupported media type %s", ld->digest,
                      ld->media_type ? ld->media_type : "(none)");
    SbxLayerRef *ref = g_new0(SbxLayerRef, 1);
    ref->member = blob_path(ld->digest, NULL);
    ref->blob_digest = g_strdup(ld->digest);
    ref->media_type = g_strdup(ld->media_type);
    ref->size = ld->size;
    g_ptr_array_add(img->layers, ref);
    gint64 have = sbx_source_size(src, ref->member, err);
    if (have < 0)
      return FALSE;
    if (have != ld->size)
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "layer %s: blob is %" G_GINT64_FORMAT
                      " bytes, its descriptor says %" G_GINT64_FORMAT,
                      ld->digest, have, ld->size);
  }
  return TRUE;
}

/* `name`: the image's name, given by the caller (a pull); NULL: the
 * layout's own (an archive), and `select` picks by it. */
static SbxImage *load_oci(SbxSource *src, const char *select, const char *name, GError **err)
{
  g_autoptr(GBytes) layout = sbx_source_read(src, "oci-layout", 4096, NULL);
  if (layout && !g_strstr_len(g_bytes_get_data(layout, NULL), (gssize)g_bytes_get_size(layout),
                              "imageLayoutVersion")) {
    sbx_fail(err, SBX_ERROR_INVALID, "oci-layout: not an OCI image layout");
    return NULL;
  }
  g_autoptr(GBytes) raw = sbx_source_read(src, "index.json", SBX_MAX_JSON_MEMBER, err);
  if (!raw)
    return NULL;
  gsize len;
  const char *data = g_bytes_get_data(raw, &len);
  g_autoptr(JsonNode) index = sbx_json_parse(data, len, "index.json", err);
  if (!index)
    return NULL;
  g_autoptr(GPtrArray) cands = g_ptr_array_new_with_free_func(desc_free);
  Walk walk = {.read_names = name == NULL};
  if (!walk_index(src, index, "index.json", NULL, 0, &walk, cands, err))
    return NULL;
  Desc *pick = choose(cands, select, err);
  if (!pick)
    return NULL;
  g_autoptr(SbxImage) img = g_new0(SbxImage, 1);
  img->format = sbx_source_is_dir(src) ? "oci-dir" : "oci-archive";
  img->layers = g_ptr_array_new_with_free_func(sbx_layer_ref_free);
  const char *names[] = {name ? name : pick->name, NULL};
  img->names = g_strdupv(names[0] ? (char **)names : (char *[]){NULL});
  if (!read_manifest(src, pick, img, err) || !sbx_image_finish(img, err))
    return NULL;
  return g_steal_pointer(&img);
}

SbxImage *sbx_image_load_oci(SbxSource *src, const char *select, GError **err)
{
  return load_oci(src, select, NULL, err);
}

SbxImage *sbx_image_load_oci_named(SbxSource *src, const char *name, GError **err)
{
  g_return_val_if_fail(name != NULL, NULL);
  return load_oci(src, NULL, name, err);
}
