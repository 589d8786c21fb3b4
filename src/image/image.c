/* Which format is this archive, and the checks every format shares. */
#include "sbx/digest.h"
#include "sbx/image.h"
#include "sbx/util.h"

#include <string.h>
#include <sys/utsname.h>

void sbx_image_free(SbxImage *img)
{
  if (!img)
    return;
  g_free(img->config_digest);
  if (img->config_raw)
    g_bytes_unref(img->config_raw);
  sbx_image_config_free(img->config);
  if (img->layers)
    g_ptr_array_unref(img->layers);
  g_strfreev(img->names);
  g_free(img);
}

static char *wanted_arch;

gboolean sbx_image_set_platform(const char *platform, GError **err)
{
  /* "linux/arm64", "linux/arm64/v8" or just "arm64" */
  g_auto(GStrv) parts = g_strsplit(platform, "/", 3);
  const char *os = parts[1] ? parts[0] : "linux";
  const char *arch = parts[1] ? parts[1] : parts[0];
  if (g_strcmp0(os, "linux") != 0 || !arch || !*arch)
    return sbx_fail(err, SBX_ERROR_USAGE, "--platform: '%s' is not linux/ARCH", platform);
  g_free(wanted_arch);
  wanted_arch = g_strdup(arch);
  return TRUE;
}

const char *sbx_image_wanted_arch(void)
{
  return wanted_arch ? wanted_arch : sbx_image_host_arch();
}

const char *sbx_image_host_arch(void)
{
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

/* Checks after the format-specific reader: config parsed, one layer per
 * diff_id, architecture runnable here. */
gboolean sbx_image_finish(SbxImage *img, GError **err)
{
  gsize len;
  const char *data = g_bytes_get_data(img->config_raw, &len);
  img->config = sbx_image_config_parse(data, len, err);
  if (!img->config)
    return FALSE;
  guint ndiff = g_strv_length(img->config->diff_ids);
  if (ndiff != img->layers->len)
    return sbx_fail(err, SBX_ERROR_INVALID, "image has %u layers but its config lists %u diff_ids",
                    img->layers->len, ndiff);
  if (ndiff == 0)
    return sbx_fail(err, SBX_ERROR_INVALID, "image has no layers");
  if (ndiff > 4096)
    return sbx_fail(err, SBX_ERROR_INVALID, "image has %u layers (at most 4096)", ndiff);
  for (guint i = 0; i < ndiff; i++) {
    SbxLayerRef *l = img->layers->pdata[i];
    l->diff_id = g_strdup(img->config->diff_ids[i]);
  }
  const char *arch = img->config->architecture;
  if (arch && g_strcmp0(arch, sbx_image_wanted_arch()) != 0)
    return sbx_fail(err, SBX_ERROR_INVALID, "image is for %s, not %s (see --platform)", arch,
                    sbx_image_wanted_arch());
  return TRUE;
}

SbxImage *sbx_image_load(SbxSource *src, const char *select, GError **err)
{
  /* Docker 25+ writes both manifest.json and an OCI index.json; docker load
   * reads manifest.json, and so do we (it carries RepoTags). */
  if (sbx_source_has(src, "manifest.json"))
    return sbx_image_load_docker(src, select, err);
  if (sbx_source_has(src, "index.json"))
    return sbx_image_load_oci(src, select, err);
  sbx_fail(err, SBX_ERROR_INVALID,
           "not an image archive: no manifest.json (docker save) or index.json (OCI)");
  return NULL;
}

gboolean sbx_image_archive_name_ok(const char *name, const char *what, GError **err)
{
  /* "x@sha256:..." vouches for a manifest the archive cannot show: a
   * digest-pinned name is recorded only by a pull of that digest (whose
   * manifest was checked against it). */
  if (!strchr(name, '@'))
    return TRUE;
  g_autofree char *shown = g_utf8_make_valid(name, MIN(strlen(name), 200));
  return sbx_fail(err, SBX_ERROR_INVALID,
                  "%s: image name '%s' is pinned by a digest: an archive names its images by "
                  "tag only",
                  what, shown);
}

void sbx_layer_ref_free(gpointer p)
{
  SbxLayerRef *l = p;
  g_free(l->member);
  g_free(l->blob_digest);
  g_free(l->diff_id);
  g_free(l->media_type);
  g_free(l);
}

char *sbx_image_digest_from_path(const char *member)
{
  const char *base = strrchr(member, '/');
  base = base ? base + 1 : member;
  g_autofree char *hex =
      g_str_has_suffix(base, ".json") ? g_strndup(base, strlen(base) - 5) : g_strdup(base);
  if (!sbx_hex64_valid(hex))
    return NULL;
  return g_strconcat(SBX_DIGEST_PREFIX, hex, NULL);
}

GBytes *sbx_image_read_blob(SbxSource *src, const char *member, const char *digest, gint64 size,
                            GError **err)
{
  g_autoptr(GBytes) b = sbx_source_read(src, member, SBX_MAX_JSON_MEMBER, err);
  if (!b)
    return NULL;
  gsize len;
  const void *data = g_bytes_get_data(b, &len);
  if (size >= 0 && (gsize)size != len) {
    sbx_fail(err, SBX_ERROR_INVALID,
             "%s: size %zu does not match its descriptor (%" G_GINT64_FORMAT ")", member,
             (size_t)len, size);
    return NULL;
  }
  if (digest) {
    g_autofree char *got = sbx_digest_bytes(data, len);
    if (g_strcmp0(got, digest) != 0) {
      sbx_fail(err, SBX_ERROR_INVALID, "%s: digest mismatch: expected %s, got %s", member, digest,
               got);
      return NULL;
    }
  }
  return g_steal_pointer(&b);
}
