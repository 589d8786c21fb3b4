/* The image config (OCI image-spec config.md; Docker's is a superset). */
#include "sbx/digest.h"
#include "sbx/image.h"
#include "sbx/json.h"
#include "sbx/util.h"

/* "" is how docker writes "not set" for these: one spelling (NULL) for both. */
static char *dup_nonempty(const char *s)
{
  return s && *s ? g_strdup(s) : NULL;
}

static gboolean parse_exec_config(JsonObject *cfg, SbxImageConfig *c, GError **err)
{
  const char *s;
  if (!sbx_json_get_strv(cfg, "Entrypoint", &c->entrypoint, "image config", err) ||
      !sbx_json_get_strv(cfg, "Cmd", &c->cmd, "image config", err) ||
      !sbx_json_get_strv(cfg, "Env", &c->env, "image config", err))
    return FALSE;
  if (!sbx_json_get_string(cfg, "WorkingDir", &s, "image config", err))
    return FALSE;
  c->workdir = dup_nonempty(s);
  if (!sbx_json_get_string(cfg, "User", &s, "image config", err))
    return FALSE;
  c->user = dup_nonempty(s);
  if (!sbx_json_get_string(cfg, "Hostname", &s, "image config", err))
    return FALSE;
  c->hostname = dup_nonempty(s);
  for (char **e = c->env; e && *e; e++)
    if (strchr(*e, '=') == NULL || **e == '=')
      return sbx_fail(err, SBX_ERROR_INVALID, "image config: Env entry '%s' is not KEY=VALUE", *e);
  return TRUE;
}

SbxImageConfig *sbx_image_config_parse(const char *data, gsize len, GError **err)
{
  g_autoptr(JsonNode) root = sbx_json_parse(data, len, "image config", err);
  if (!root)
    return NULL;
  JsonObject *o = sbx_json_object(root, "image config", err);
  if (!o)
    return NULL;
  g_autoptr(SbxImageConfig) c = g_new0(SbxImageConfig, 1);
  const char *s;
  if (!sbx_json_get_string(o, "architecture", &s, "image config", err))
    return NULL;
  c->architecture = g_strdup(s);
  if (!sbx_json_get_string(o, "os", &s, "image config", err))
    return NULL;
  c->os = g_strdup(s);
  JsonNode *cfgn = json_object_get_member(o, "config");
  if (cfgn && !JSON_NODE_HOLDS_NULL(cfgn)) {
    JsonObject *cfg = sbx_json_object(cfgn, "image config: config", err);
    if (!cfg || !parse_exec_config(cfg, c, err))
      return NULL;
  }
  JsonObject *rootfs = NULL;
  JsonNode *rn = json_object_get_member(o, "rootfs");
  if (rn == NULL || (rootfs = sbx_json_object(rn, "image config: rootfs", err)) == NULL) {
    if (rn == NULL)
      sbx_fail(err, SBX_ERROR_INVALID, "image config: no rootfs");
    return NULL;
  }
  if (!sbx_json_get_strv(rootfs, "diff_ids", &c->diff_ids, "image config: rootfs", err))
    return NULL;
  if (c->diff_ids == NULL) {
    sbx_fail(err, SBX_ERROR_INVALID, "image config: rootfs.diff_ids missing");
    return NULL;
  }
  for (char **d = c->diff_ids; *d; d++)
    if (!sbx_digest_hex(*d, err)) {
      g_prefix_error(err, "image config: rootfs.diff_ids: ");
      return NULL;
    }
  if (c->os && g_strcmp0(c->os, "linux") != 0) {
    sbx_fail(err, SBX_ERROR_INVALID, "image is for os '%s', not linux", c->os);
    return NULL;
  }
  return g_steal_pointer(&c);
}
