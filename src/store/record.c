/* The run record: what `sbx run` needs of an image config (argv, env,
 * workdir, user, layers), written by the import helper next to the config as
 * a GVariant. Reading it needs only GLib: the cached start path of sbx loads
 * no JSON parser and no archive library (their loading alone costs more than
 * the rest of a start). */
#include "sbx/digest.h"
#include "sbx/image.h"
#include "sbx/util.h"

void sbx_image_config_free(SbxImageConfig *c)
{
  if (!c)
    return;
  g_strfreev(c->entrypoint);
  g_strfreev(c->cmd);
  g_strfreev(c->env);
  g_free(c->workdir);
  g_free(c->user);
  g_free(c->hostname);
  g_free(c->architecture);
  g_free(c->os);
  g_strfreev(c->diff_ids);
  g_free(c);
}

#define RECORD_TYPE    "(sbasbasassssas)"
#define RECORD_VERSION "sbx-run-1"

static const char *str_or_empty(const char *s)
{
  return s ? s : "";
}

GBytes *sbx_image_config_to_record(const SbxImageConfig *c)
{
  char *none[] = {NULL};
  /* Entrypoint and Cmd: "unset" differs from "empty" (docker's override rules). */
  g_autoptr(GVariant) v = g_variant_ref_sink(
      g_variant_new("(sb^asb^as^assss^as)", RECORD_VERSION, c->entrypoint != NULL,
                    c->entrypoint ? c->entrypoint : none, c->cmd != NULL, c->cmd ? c->cmd : none,
                    c->env ? c->env : none, str_or_empty(c->workdir), str_or_empty(c->user),
                    str_or_empty(c->hostname), c->diff_ids));
  return g_variant_get_data_as_bytes(v);
}

static char *empty_to_null(char *s)
{
  if (s && *s == '\0') {
    g_free(s);
    return NULL;
  }
  return s;
}

SbxImageConfig *sbx_image_config_from_record(GBytes *data, GError **err)
{
  g_autoptr(GVariant) v =
      g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(RECORD_TYPE), data, FALSE));
  /* Our own file, but a damaged one must not crash us: normal form only. */
  if (!g_variant_is_normal_form(v)) {
    sbx_fail(err, SBX_ERROR_INVALID, "damaged image record");
    return NULL;
  }
  g_autofree char *version = NULL;
  g_autoptr(SbxImageConfig) c = g_new0(SbxImageConfig, 1);
  gboolean has_ep, has_cmd;
  g_variant_get(v, "(sb^asb^as^assss^as)", &version, &has_ep, &c->entrypoint, &has_cmd, &c->cmd,
                &c->env, &c->workdir, &c->user, &c->hostname, &c->diff_ids);
  if (!has_ep)
    g_clear_pointer(&c->entrypoint, g_strfreev);
  if (!has_cmd)
    g_clear_pointer(&c->cmd, g_strfreev);
  if (g_strcmp0(version, RECORD_VERSION) != 0 || !c->diff_ids || !c->diff_ids[0]) {
    sbx_fail(err, SBX_ERROR_INVALID, "image record of another version");
    return NULL;
  }
  /* Each becomes an overlay lower dir, layers/<key>/<hex>: a short or
   * hostile one ("sha256:../../x") would be read past its end or name a
   * directory outside the store. */
  for (char **d = c->diff_ids; *d; d++)
    if (!sbx_digest_valid(*d)) {
      g_autofree char *shown = sbx_escape_text(*d);
      sbx_fail(err, SBX_ERROR_INVALID, "damaged image record: layer '%.80s' is not sha256:<64 hex>",
               shown);
      return NULL;
    }
  c->workdir = empty_to_null(c->workdir);
  c->user = empty_to_null(c->user);
  c->hostname = empty_to_null(c->hostname);
  return g_steal_pointer(&c);
}
