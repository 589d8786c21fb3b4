/* Pull: a registry's image into the store. The registry is walked as an
 * OCI layout (registry/layout.c) by the same code that reads archives, and
 * its layers go through the same import: each blob streamed from the
 * network straight into the unpacker (no blob file), both digests checked on
 * the way, the layer renamed into place only when complete. A layer already
 * in the store (its diff_id, from the config) is not downloaded again. */
#include "sbx/image.h"
#include "sbx/regconf.h"
#include "sbx/registry.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <unistd.h>

/* The image at one endpoint (a mirror or the registry): registry client,
 * source and manifest/config, or NULL and the reason. `ref` (the candidate
 * pulled) is the name the image is recorded under, and its only name: not
 * the mirror's, nor any an index inside gives; `at` is where it is fetched
 * from. */
static SbxImage *open_at(const SbxImageRef *ref, const SbxRegEndpoint *at,
                         const SbxRegistryOptions *opts, SbxRegistry **reg, SbxSource **src,
                         GError **err)
{
  g_autoptr(SbxImageRef) where = sbx_image_ref_parse(at->reference, err);
  if (!where)
    return NULL;
  SbxRegistryOptions o = *opts;
  if (at->insecure && !opts->tls_verify_set)
    o.tls_verify = FALSE;
  g_autoptr(SbxRegistry) r = sbx_registry_new(where, &o, err);
  if (!r)
    return NULL;
  g_autoptr(SbxSource) s = sbx_registry_source_new(r, ref, err);
  if (!s)
    return NULL;
  g_autofree char *name = sbx_image_ref_name(ref);
  SbxImage *img = sbx_image_load_oci_named(s, name, err);
  if (!img)
    return NULL;
  *reg = g_steal_pointer(&r);
  *src = g_steal_pointer(&s);
  return img;
}

/* The endpoints after the one the image came from, as fallbacks for its
 * layer blobs. One that cannot even be set up is left out. */
static void add_fallbacks(SbxRegistry *reg, GArray *at, guint from, const SbxRegistryOptions *opts)
{
  for (guint i = from; i < at->len; i++) {
    const SbxRegEndpoint *e = &g_array_index(at, SbxRegEndpoint, i);
    g_autoptr(GError) local = NULL;
    g_autoptr(SbxImageRef) where = sbx_image_ref_parse(e->reference, &local);
    SbxRegistryOptions o = *opts;
    if (e->insecure && !opts->tls_verify_set)
      o.tls_verify = FALSE;
    SbxRegistry *r = where ? sbx_registry_new(where, &o, &local) : NULL;
    if (r)
      sbx_registry_add_fallback(reg, r);
    else
      sbx_debug("pull: no fallback %s: %s", e->reference, local->message);
  }
}

/* Each candidate reference in turn (registries.conf's short-name search),
 * and for each its endpoints (mirrors, then the registry): the first that
 * answers with an image is pulled, and a layer blob that fails there is
 * fetched from the endpoints after it. The last failure is the one
 * reported. */
static char *pull_in_userns(SbxStore *s, gpointer data, GError **err)
{
  const SbxPullRequest *req = data;
  /* prune takes this lock exclusively (as for an import). */
  sbx_autofd store_lock = sbx_store_lock(s, FALSE, FALSE, err);
  if (store_lock < 0)
    return NULL;
  SbxRegistryOptions opts = req->registry;
  opts.max_blob_size = s->max_layer_size;
  char *only[] = {(char *)req->reference, NULL};
  char **candidates = req->candidates ? req->candidates : only;
  g_autoptr(GError) last = NULL;
  for (char **c = candidates; *c; c++) {
    g_autoptr(SbxImageRef) ref = sbx_image_ref_parse(*c, err);
    if (!ref)
      return NULL;
    g_autoptr(GArray) at = NULL;
    if (req->regconf) {
      at = sbx_regconf_endpoints(req->regconf, *c, err);
      if (!at)
        return NULL;
    } else {
      at = g_array_new(FALSE, TRUE, sizeof(SbxRegEndpoint));
      g_array_set_clear_func(at, (GDestroyNotify)sbx_reg_endpoint_clear);
      SbxRegEndpoint e = {sbx_image_ref_name(ref), FALSE};
      g_array_append_val(at, e);
    }
    for (guint i = 0; i < at->len; i++) {
      const SbxRegEndpoint *e = &g_array_index(at, SbxRegEndpoint, i);
      g_autoptr(SbxRegistry) reg = NULL;
      g_autoptr(SbxSource) src = NULL;
      g_clear_error(&last);
      g_autoptr(SbxImage) img = open_at(ref, e, &opts, &reg, &src, &last);
      if (!img) {
        sbx_info("pull %s from %s: %s", *c, e->reference, last->message);
        continue;
      }
      img->format = "registry";
      add_fallbacks(reg, at, i + 1, &opts);
      gint64 t0 = sbx_now_us();
      g_autofree char *id = sbx_store_import_image(s, src, img, req->quiet, err);
      if (!id)
        return NULL;
      sbx_debug("pull %s from %s: image %.12s, %u layer requests, %.1f ms", *c, e->reference, id,
                sbx_registry_blob_requests(reg), (sbx_now_us() - t0) / 1000.0);
      return g_steal_pointer(&id);
    }
  }
  g_propagate_error(err, g_steal_pointer(&last));
  return NULL;
}

char *sbx_store_pull_isolated(SbxStore *s, const SbxPullRequest *req, GError **err)
{
  return sbx_store_run_in_userns(s, "pull", pull_in_userns, (gpointer)req, err);
}
