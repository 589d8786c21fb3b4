/* Pull: a registry's image into the store. The registry is walked as an
 * OCI layout (registry/layout.c) by the same code that reads archives, and
 * its layers go through the same import: each blob streamed from the
 * network straight into the unpacker (no blob file), both digests checked on
 * the way, the layer renamed into place only when complete. A layer already
 * in the store (its diff_id, from the config) is not downloaded again. */
#include "sbx/image.h"
#include "sbx/registry.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <unistd.h>

static char *pull_in_userns(SbxStore *s, gpointer data, GError **err)
{
  const SbxPullRequest *req = data;
  /* prune takes this lock exclusively (as for an import). */
  sbx_autofd store_lock = sbx_store_lock(s, FALSE, FALSE, err);
  if (store_lock < 0)
    return NULL;
  g_autoptr(SbxImageRef) ref = sbx_image_ref_parse(req->reference, err);
  if (!ref)
    return NULL;
  SbxRegistryOptions opts = req->registry;
  opts.max_blob_size = s->max_layer_size;
  g_autoptr(SbxRegistry) reg = sbx_registry_new(ref, &opts, err);
  if (!reg)
    return NULL;
  g_autoptr(SbxSource) src = sbx_registry_source_new(reg, ref, err);
  if (!src)
    return NULL;
  g_autoptr(SbxImage) img = sbx_image_load_oci(src, NULL, err);
  if (!img)
    return NULL;
  img->format = "registry";
  gint64 t0 = sbx_now_us();
  g_autofree char *id = sbx_store_import_image(s, src, img, req->quiet, err);
  if (!id)
    return NULL;
  sbx_debug("pull %s: image %.12s, %u layer requests, %.1f ms", req->reference, id,
            sbx_registry_blob_requests(reg), (sbx_now_us() - t0) / 1000.0);
  return g_steal_pointer(&id);
}

char *sbx_store_pull_isolated(SbxStore *s, const SbxPullRequest *req, GError **err)
{
  return sbx_store_run_in_userns(s, pull_in_userns, (gpointer)req, err);
}
