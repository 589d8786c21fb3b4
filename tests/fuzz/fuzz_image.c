/* libFuzzer target: image metadata, the first thing sbx reads of an
 * untrusted archive. The first byte picks what the rest of the input is:
 *   0  a whole archive (tar, maybe compressed): source.c indexes it, then
 *      image.c/docker.c/oci.c read manifest.json or index.json and the blobs
 *   1  an image config (config.c), then its run record round trip (record.c)
 *   2  an OCI image manifest, reached from an index.json naming its digest
 *   3  an OCI index.json of a layout directory
 *   4  a docker-archive manifest.json of a layout directory
 * Digests the fuzzer cannot forge are computed here (mode 2), so the parsers
 * behind the digest checks are reached too. */
#include "fuzz_common.h"

#include "sbx/digest.h"
#include "sbx/image.h"
#include "sbx/settings.h"
#include "sbx/source.h"
#include "sbx/util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *layout_dir;

static void put(const char *rel, const void *data, size_t size)
{
  g_autofree char *path = g_build_filename(layout_dir, rel, NULL);
  if (!g_file_set_contents(path, data, (gssize)size, NULL))
    abort();
}

static void drop(const char *rel)
{
  g_autofree char *path = g_build_filename(layout_dir, rel, NULL);
  unlink(path);
}

static void load_path(const char *path)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxSource) src = sbx_source_open(path, SBX_DEFAULT_MAX_LAYER_SIZE, &err);
  if (!src)
    return;
  g_autoptr(SbxImage) img = sbx_image_load(src, NULL, &err);
  if (!img != !!err)
    __builtin_trap(); /* an image, or an error: never both, never neither */
}

/* NULL and empty are the same list to run. */
static gboolean strv_equal0(char **a, char **b)
{
  static char *none[] = {NULL};
  return g_strv_equal((const char *const *)(a ? a : none), (const char *const *)(b ? b : none));
}

static void config_round_trip(const uint8_t *data, size_t size)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxImageConfig) c = sbx_image_config_parse((const char *)data, size, &err);
  /* No record is written for an image without layers: image.c refuses it
   * ("image has no layers") before the import gets that far. */
  if (!c || !c->diff_ids[0])
    return;
  g_autoptr(GBytes) rec = sbx_image_config_to_record(c);
  g_autoptr(SbxImageConfig) back = sbx_image_config_from_record(rec, &err);
  if (!back || !strv_equal0(c->entrypoint, back->entrypoint) || !strv_equal0(c->cmd, back->cmd) ||
      !strv_equal0(c->env, back->env) || !strv_equal0(c->diff_ids, back->diff_ids) ||
      g_strcmp0(c->workdir, back->workdir) != 0 || g_strcmp0(c->user, back->user) != 0)
    __builtin_trap(); /* what run reads must be what the config said */
}

static void oci_manifest(const uint8_t *data, size_t size)
{
  g_autofree char *digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, size);
  g_autofree char *blob = g_strconcat("blobs/sha256/", digest, NULL);
  g_autofree char *index = g_strdup_printf(
      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
      "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu,"
      "\"annotations\":{\"org.opencontainers.image.ref.name\":\"fuzz:1\"}}]}",
      digest, size);
  put("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 31);
  put("index.json", index, strlen(index));
  put(blob, data, size);
  load_path(layout_dir);
  drop(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_quiet();
  if (size < 1)
    return 0;
  if (!layout_dir) {
    layout_dir = fuzz_scratch_new(); /* reused: inputs only overwrite its files */
    g_autofree char *blobs = g_build_filename(layout_dir, "blobs", "sha256", NULL);
    if (g_mkdir_with_parents(blobs, 0700) < 0)
      abort();
  }
  uint8_t mode = data[0] % 5;
  data++, size--;
  switch (mode) {
  case 0: {
    int fd;
    g_autofree char *path = fuzz_memfd_path(data, size, &fd);
    load_path(path);
    close(fd);
    break;
  }
  case 1:
    config_round_trip(data, size);
    break;
  case 2:
    drop("manifest.json");
    oci_manifest(data, size);
    break;
  case 3:
    drop("manifest.json");
    put("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 31);
    put("index.json", data, size);
    load_path(layout_dir);
    break;
  default:
    drop("oci-layout");
    drop("index.json");
    put("manifest.json", data, size);
    load_path(layout_dir);
    drop("manifest.json");
    break;
  }
  return 0;
}
