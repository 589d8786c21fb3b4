/* config.json -> SbxOciConfig, with json-glib and the bounded accessors of
 * util/json.c. Untrusted input: every member's type is checked, sizes are
 * bounded, and anything sbx-oci cannot honour is refused by name rather
 * than ignored (a sandbox that silently drops a setting is not one). */
#include "sbx/json.h"
#include "sbx/oci.h"
#include "sbx/sandbox.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <linux/seccomp.h>

#define MAX_CONFIG (4u << 20)
#define W          "config.json"

static void mount_free(gpointer p)
{
  SbxOciMount *m = p;
  g_free(m->destination);
  g_free(m->type);
  g_free(m->source);
  g_strfreev(m->options);
  g_free(m);
}

static void ns_clear(gpointer p)
{
  g_free(((SbxOciNamespace *)p)->path);
}

static void device_free(gpointer p)
{
  g_free(((SbxOciDevice *)p)->path);
  g_free(p);
}

void sbx_oci_config_free(SbxOciConfig *c)
{
  if (!c)
    return;
  g_free(c->bundle);
  g_free(c->rootfs);
  g_free(c->propagation);
  g_free(c->hostname);
  g_strfreev(c->args);
  g_strfreev(c->env);
  g_free(c->cwd);
  g_clear_pointer(&c->gids, g_array_unref);
  g_clear_pointer(&c->rlimits, g_array_unref);
  g_clear_pointer(&c->namespaces, g_array_unref);
  g_clear_pointer(&c->uid_maps, g_array_unref);
  g_clear_pointer(&c->gid_maps, g_array_unref);
  g_clear_pointer(&c->mounts, g_ptr_array_unref);
  g_strfreev(c->masked);
  g_strfreev(c->readonly);
  g_clear_pointer(&c->sysctl, g_hash_table_unref);
  g_clear_pointer(&c->devices, g_ptr_array_unref);
  g_clear_pointer(&c->warnings, g_ptr_array_unref);
  g_clear_pointer(&c->seccomp, g_bytes_unref);
  g_clear_pointer(&c->annotations, json_node_unref);
  g_clear_pointer(&c->source, g_bytes_unref);
  for (int k = 0; k < SBX_HOOK_N; k++)
    g_clear_pointer(&c->hooks[k], g_ptr_array_unref);
  g_free(c);
}

static JsonObject *get_object(JsonObject *o, const char *member, const char *what, GError **err,
                              gboolean *bad)
{
  JsonNode *n = o ? json_object_get_member(o, member) : NULL;
  if (!n || JSON_NODE_HOLDS_NULL(n))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT(n)) {
    *bad = TRUE;
    sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: expected an object", what, member);
    return NULL;
  }
  return json_node_get_object(n);
}

static JsonArray *get_array(JsonObject *o, const char *member, const char *what, GError **err,
                            gboolean *bad)
{
  JsonNode *n = o ? json_object_get_member(o, member) : NULL;
  if (!n || JSON_NODE_HOLDS_NULL(n))
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY(n)) {
    *bad = TRUE;
    sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: expected an array", what, member);
    return NULL;
  }
  return json_node_get_array(n);
}

static gboolean get_bool(JsonObject *o, const char *member, gboolean *out, const char *what,
                         GError **err)
{
  JsonNode *n = o ? json_object_get_member(o, member) : NULL;
  if (!n || JSON_NODE_HOLDS_NULL(n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: expected true or false", what, member);
  *out = json_node_get_boolean(n);
  return TRUE;
}

static gboolean get_uint(JsonObject *o, const char *member, guint64 max, guint64 *out,
                         const char *what, GError **err)
{
  gint64 v = -1;
  if (!sbx_json_get_int(o, member, &v, what, err))
    return FALSE;
  if (!json_object_has_member(o, member))
    return TRUE;
  if (v < 0 || (guint64)v > max)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: %" G_GINT64_FORMAT " is out of range", what,
                    member, v);
  *out = (guint64)v;
  return TRUE;
}

static gboolean parse_caps(JsonObject *p, SbxCapSets *caps, GError **err)
{
  gboolean bad = FALSE;
  JsonObject *o = get_object(p, "capabilities", W " process", err, &bad);
  if (bad)
    return FALSE;
  static const char *const names[] = {"bounding", "effective", "permitted", "inheritable",
                                      "ambient"};
  SbxCapSet *sets[] = {&caps->bounding, &caps->effective, &caps->permitted, &caps->inheritable,
                       &caps->ambient};
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    g_auto(GStrv) v = NULL;
    *sets[i] = 0;
    if (o && !sbx_json_get_strv(o, names[i], &v, W " process.capabilities", err))
      return FALSE;
    for (char **n = v; n && *n; n++) {
      SbxCapSet bit;
      if (!sbx_cap_from_name(*n, &bit, err)) {
        g_prefix_error(err, W ": process.capabilities.%s: ", names[i]);
        return FALSE;
      }
      *sets[i] |= bit;
    }
  }
  return TRUE;
}

/* An rlimit value: uint64, as runc's, where 18446744073709551615 is
 * RLIM_INFINITY (podman's --ulimit core=-1:-1). json-glib keeps an integer
 * literal's 64 bits in a gint64, so the value read back as guint64 is the
 * literal for every unsigned one up to 2^64-1 (larger ones saturate to
 * it); a negative literal cannot be told from a large one and gives a
 * large limit, never a smaller one. */
static gboolean get_rlimit_value(JsonObject *r, const char *member, guint64 *out, GError **err)
{
  gint64 v = 0;
  if (!sbx_json_get_int(r, member, &v, W " process.rlimits", err))
    return FALSE;
  *out = (guint64)v;
  return TRUE;
}

static gboolean parse_rlimits(JsonObject *p, GArray *out, GError **err)
{
  gboolean bad = FALSE;
  JsonArray *a = get_array(p, "rlimits", W " process", err, &bad);
  if (bad)
    return FALSE;
  for (guint i = 0; a && i < json_array_get_length(a); i++) {
    JsonObject *r = sbx_json_object(json_array_get_element(a, i), W " process.rlimits", err);
    const char *type = NULL;
    guint64 soft = 0, hard = 0;
    if (!r || !sbx_json_get_string(r, "type", &type, W " process.rlimits", err) ||
        !get_rlimit_value(r, "soft", &soft, err) || !get_rlimit_value(r, "hard", &hard, err))
      return FALSE;
    if (!type || !g_str_has_prefix(type, "RLIMIT_"))
      return sbx_fail(err, SBX_ERROR_INVALID, W ": process.rlimits[%u]: type must be RLIMIT_*", i);
    /* The same table as --ulimit, by its NAME=SOFT:HARD form. */
    g_autofree char *spec =
        g_strdup_printf("%s=%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, type + 7, soft, hard);
    SbxRlimit rl;
    if (!sbx_rlimit_parse(spec, &rl, err)) {
      g_clear_error(err);
      return sbx_fail(err, SBX_ERROR_INVALID, W ": process.rlimits: %s: unknown or soft above hard",
                      type);
    }
    rl.soft = soft;
    rl.hard = hard;
    g_array_append_val(out, rl);
  }
  return TRUE;
}

static gboolean parse_process_object(SbxOciConfig *c, JsonObject *p, GError **err);

static gboolean parse_process(SbxOciConfig *c, JsonObject *root, GError **err)
{
  gboolean bad = FALSE;
  JsonObject *p = get_object(root, "process", W, err, &bad);
  if (!p)
    return bad ? FALSE : sbx_fail(err, SBX_ERROR_INVALID, W ": no process");
  return parse_process_object(c, p, err);
}

static gboolean parse_process_object(SbxOciConfig *c, JsonObject *p, GError **err)
{
  gboolean bad = FALSE;
  g_clear_pointer(&c->args, g_strfreev);
  g_clear_pointer(&c->env, g_strfreev);
  g_clear_pointer(&c->cwd, g_free);
  g_array_set_size(c->rlimits, 0);
  g_array_set_size(c->gids, 0);
  c->terminal = c->no_new_privs = FALSE;
  const char *cwd = NULL;
  if (!sbx_json_get_strv(p, "args", &c->args, W " process", err) ||
      !sbx_json_get_strv(p, "env", &c->env, W " process", err) ||
      !sbx_json_get_string(p, "cwd", &cwd, W " process", err) ||
      !get_bool(p, "terminal", &c->terminal, W " process", err) ||
      !get_bool(p, "noNewPrivileges", &c->no_new_privs, W " process", err) ||
      !parse_caps(p, &c->caps, err) || !parse_rlimits(p, c->rlimits, err))
    return FALSE;
  gint64 oom = 0;
  if (!sbx_json_get_int(p, "oomScoreAdj", &oom, W " process", err))
    return FALSE;
  c->set_oom_score = json_object_has_member(p, "oomScoreAdj") &&
                     !JSON_NODE_HOLDS_NULL(json_object_get_member(p, "oomScoreAdj"));
  if (c->set_oom_score && (oom < -1000 || oom > 1000)) /* OOM_SCORE_ADJ_MIN, _MAX */
    return sbx_fail(err, SBX_ERROR_INVALID,
                    W ": process.oomScoreAdj: %" G_GINT64_FORMAT " is out of range (-1000..1000)",
                    oom);
  c->oom_score_adj = (int)oom;
  if (!c->args || !c->args[0] || !*c->args[0])
    return sbx_fail(err, SBX_ERROR_INVALID, W ": process.args must name a program");
  if (!c->env)
    c->env = g_new0(char *, 1);
  c->cwd = g_strdup(cwd ? cwd : "/");
  if (!g_path_is_absolute(c->cwd))
    return sbx_fail(err, SBX_ERROR_INVALID, W ": process.cwd %s: must be absolute", c->cwd);
  JsonObject *u = get_object(p, "user", W " process", err, &bad);
  if (bad)
    return FALSE;
  guint64 uid = 0, gid = 0, mask = G_MAXUINT64;
  if (u && (!get_uint(u, "uid", G_MAXUINT32 - 1, &uid, W " process.user", err) ||
            !get_uint(u, "gid", G_MAXUINT32 - 1, &gid, W " process.user", err) ||
            !get_uint(u, "umask", 07777, &mask, W " process.user", err)))
    return FALSE;
  c->uid = (uid_t)uid;
  c->gid = (gid_t)gid;
  c->set_umask = mask != G_MAXUINT64;
  c->umask = c->set_umask ? (mode_t)mask : 022;
  JsonArray *g = get_array(u, "additionalGids", W " process.user", err, &bad);
  if (bad)
    return FALSE;
  for (guint i = 0; g && i < json_array_get_length(g) && i < 256; i++) {
    JsonNode *n = json_array_get_element(g, i);
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64 ||
        json_node_get_int(n) < 0 || json_node_get_int(n) >= G_MAXUINT32)
      return sbx_fail(err, SBX_ERROR_INVALID, W ": process.user.additionalGids[%u]: not a gid", i);
    gid_t v = (gid_t)json_node_get_int(n);
    g_array_append_val(c->gids, v);
  }
  return TRUE;
}

static gboolean parse_mounts(SbxOciConfig *c, JsonObject *root, GError **err)
{
  gboolean bad = FALSE;
  JsonArray *a = get_array(root, "mounts", W, err, &bad);
  if (bad)
    return FALSE;
  for (guint i = 0; a && i < json_array_get_length(a); i++) {
    JsonObject *o = sbx_json_object(json_array_get_element(a, i), W " mounts", err);
    const char *d = NULL, *t = NULL, *s = NULL;
    g_auto(GStrv) opts = NULL;
    if (!o || !sbx_json_get_string(o, "destination", &d, W " mounts", err) ||
        !sbx_json_get_string(o, "type", &t, W " mounts", err) ||
        !sbx_json_get_string(o, "source", &s, W " mounts", err) ||
        !sbx_json_get_strv(o, "options", &opts, W " mounts", err))
      return FALSE;
    if (!d || !g_path_is_absolute(d))
      return sbx_fail(err, SBX_ERROR_INVALID, W ": mounts[%u]: destination must be absolute", i);
    SbxOciMount *m = g_new0(SbxOciMount, 1);
    m->destination = g_strdup(d);
    m->type = g_strdup(t ? t : "none");
    m->source = g_strdup(s ? s : m->type);
    m->options = opts ? g_steal_pointer(&opts) : g_new0(char *, 1);
    g_ptr_array_add(c->mounts, m);
  }
  return TRUE;
}

static const struct {
  const char *name;
  int flag;
} ns_types[] = {{"user", CLONE_NEWUSER},     {"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
                {"network", CLONE_NEWNET},   {"ipc", CLONE_NEWIPC},  {"uts", CLONE_NEWUTS},
                {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};

static gboolean parse_id_ranges(JsonObject *l, const char *member, GArray *out, GError **err)
{
  gboolean bad = FALSE;
  JsonArray *a = get_array(l, member, W " linux", err, &bad);
  if (bad)
    return FALSE;
  for (guint i = 0; a && i < json_array_get_length(a); i++) {
    JsonObject *o = sbx_json_object(json_array_get_element(a, i), W " linux", err);
    guint64 cid = G_MAXUINT64, hid = G_MAXUINT64, size = 0;
    if (!o || !get_uint(o, "containerID", G_MAXUINT32 - 1, &cid, member, err) ||
        !get_uint(o, "hostID", G_MAXUINT32 - 1, &hid, member, err) ||
        !get_uint(o, "size", G_MAXUINT32, &size, member, err))
      return FALSE;
    if (cid == G_MAXUINT64 || hid == G_MAXUINT64 || size == 0 || i >= 340)
      return sbx_fail(err, SBX_ERROR_INVALID, W ": linux.%s[%u]: needs containerID, hostID, size",
                      member, i);
    SbxOciIdRange r = {(guint32)cid, (guint32)hid, (guint32)size};
    g_array_append_val(out, r);
  }
  return TRUE;
}

/* linux.seccomp's members beyond the profile: flags are seccomp(2)'s, given
 * at install; a listener (seccomp notify) is an agent sbx-oci does not run. */
static gboolean parse_seccomp_extras(SbxOciConfig *c, JsonObject *sc, GError **err)
{
  static const struct {
    const char *name;
    unsigned int flag;
  } flags[] = {{"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
               {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
               {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW}};
  const char *listener = NULL;
  g_auto(GStrv) names = NULL;
  if (!sbx_json_get_string(sc, "listenerPath", &listener, W " linux.seccomp", err) ||
      !sbx_json_get_strv(sc, "flags", &names, W " linux.seccomp", err))
    return FALSE;
  if (listener && *listener)
    return sbx_fail(err, SBX_ERROR_INVALID,
                    W ": linux.seccomp.listenerPath: seccomp notify is not supported by sbx-oci");
  c->seccomp_flags = 0;
  for (char **n = names; n && *n; n++) {
    guint i = 0;
    while (i < G_N_ELEMENTS(flags) && strcmp(*n, flags[i].name) != 0)
      i++;
    if (i == G_N_ELEMENTS(flags))
      return sbx_fail(err, SBX_ERROR_INVALID,
                      W ": linux.seccomp.flags: %s is not supported by sbx-oci", *n);
    c->seccomp_flags |= flags[i].flag;
  }
  return TRUE;
}

/* linux.resources needs cgroups, which sbx-oci does not manage: as runc
 * rootless without cgroup access, limits are not applied, and the log says
 * which (a warning: the engine's container still runs). Podman sends a
 * device rule that denies everything by default; devices are what
 * linux.devices binds, so that rule changes nothing. */
static void note_resources(SbxOciConfig *c, JsonObject *l)
{
  JsonNode *n = json_object_get_member(l, "resources");
  if (!n || !JSON_NODE_HOLDS_OBJECT(n))
    return;
  JsonObject *r = json_node_get_object(n);
  GList *members = json_object_get_members(r);
  for (GList *it = members; it; it = it->next) {
    JsonNode *v = json_object_get_member(r, it->data);
    if (strcmp(it->data, "devices") == 0 || JSON_NODE_HOLDS_NULL(v) ||
        (JSON_NODE_HOLDS_OBJECT(v) && json_object_get_size(json_node_get_object(v)) == 0) ||
        (JSON_NODE_HOLDS_ARRAY(v) && json_array_get_length(json_node_get_array(v)) == 0))
      continue;
    g_ptr_array_add(c->warnings,
                    g_strdup_printf("linux.resources.%s is ignored: sbx-oci manages no cgroups",
                                    (const char *)it->data));
  }
  g_list_free(members);
}

static gboolean parse_linux(SbxOciConfig *c, JsonObject *root, GError **err)
{
  gboolean bad = FALSE;
  JsonObject *l = get_object(root, "linux", W, err, &bad);
  if (bad)
    return FALSE;
  if (!l)
    return TRUE;
  JsonArray *ns = get_array(l, "namespaces", W " linux", err, &bad);
  if (bad)
    return FALSE;
  for (guint i = 0; ns && i < json_array_get_length(ns); i++) {
    JsonObject *o = sbx_json_object(json_array_get_element(ns, i), W " linux.namespaces", err);
    const char *type = NULL, *path = NULL;
    if (!o || !sbx_json_get_string(o, "type", &type, W " linux.namespaces", err) ||
        !sbx_json_get_string(o, "path", &path, W " linux.namespaces", err))
      return FALSE;
    SbxOciNamespace n = {0};
    for (guint k = 0; k < G_N_ELEMENTS(ns_types); k++)
      if (g_strcmp0(type, ns_types[k].name) == 0)
        n.flag = ns_types[k].flag;
    if (!n.flag)
      return sbx_fail(err, SBX_ERROR_INVALID, W ": linux.namespaces: unknown type %s",
                      type ? type : "(none)");
    if (sbx_oci_config_has_ns(c, n.flag, NULL))
      return sbx_fail(err, SBX_ERROR_INVALID, W ": linux.namespaces: %s listed twice", type);
    if (path && *path && !g_path_is_absolute(path))
      return sbx_fail(err, SBX_ERROR_INVALID, W ": linux.namespaces: %s path must be absolute",
                      type);
    n.path = path && *path ? g_strdup(path) : NULL;
    g_array_append_val(c->namespaces, n);
  }
  if (!parse_id_ranges(l, "uidMappings", c->uid_maps, err) ||
      !parse_id_ranges(l, "gidMappings", c->gid_maps, err) ||
      !sbx_json_get_strv(l, "maskedPaths", &c->masked, W " linux", err) ||
      !sbx_json_get_strv(l, "readonlyPaths", &c->readonly, W " linux", err))
    return FALSE;
  const char *prop = NULL;
  if (!sbx_json_get_string(l, "rootfsPropagation", &prop, W " linux", err))
    return FALSE;
  c->propagation = g_strdup(prop);
  JsonObject *sysctl = get_object(l, "sysctl", W " linux", err, &bad);
  if (bad)
    return FALSE;
  GList *keys = sysctl ? json_object_get_members(sysctl) : NULL;
  gboolean ok = TRUE;
  for (GList *it = keys; ok && it; it = it->next) {
    const char *v = NULL;
    ok = sbx_json_get_string(sysctl, it->data, &v, W " linux.sysctl", err);
    if (ok)
      g_hash_table_insert(c->sysctl, g_strdup(it->data), g_strdup(v ? v : ""));
  }
  g_list_free(keys);
  if (!ok)
    return FALSE;
  JsonObject *sc = get_object(l, "seccomp", W " linux", err, &bad);
  if (bad)
    return FALSE;
  if (sc && !parse_seccomp_extras(c, sc, err))
    return FALSE;
  if (sc) {
    /* Rules conditioned on capabilities see the bounding set. */
    c->seccomp = sbx_seccomp_compile_object(sc, c->caps.bounding, err);
    if (!c->seccomp) {
      g_prefix_error(err, W ": ");
      return FALSE;
    }
  }
  JsonArray *devs = get_array(l, "devices", W " linux", err, &bad);
  if (bad)
    return FALSE;
  for (guint i = 0; devs && i < json_array_get_length(devs) && i < 1024; i++) {
    JsonObject *o = sbx_json_object(json_array_get_element(devs, i), W " linux.devices", err);
    const char *path = NULL, *type = NULL;
    guint64 major = G_MAXUINT64, minor = G_MAXUINT64;
    if (!o || !sbx_json_get_string(o, "path", &path, W " linux.devices", err) ||
        !sbx_json_get_string(o, "type", &type, W " linux.devices", err) ||
        !get_uint(o, "major", G_MAXUINT32, &major, W " linux.devices", err) ||
        !get_uint(o, "minor", G_MAXUINT32, &minor, W " linux.devices", err))
      return FALSE;
    if (!path || !g_path_is_absolute(path) || !type ||
        (strcmp(type, "c") != 0 && strcmp(type, "u") != 0 && strcmp(type, "b") != 0) ||
        major == G_MAXUINT64 || minor == G_MAXUINT64)
      return sbx_fail(err, SBX_ERROR_INVALID,
                      W ": linux.devices[%u]: needs an absolute path, type c, u or b, major, minor",
                      i);
    SbxOciDevice *d = g_new0(SbxOciDevice, 1);
    d->path = g_strdup(path);
    d->block = strcmp(type, "b") == 0;
    d->major = (guint32)major;
    d->minor = (guint32)minor;
    g_ptr_array_add(c->devices, d);
  }
  note_resources(c, l);
  static const char *const refused[] = {"devices", "resources", "intelRdt", "personality"};
  for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
    JsonNode *n = json_object_get_member(l, refused[i]);
    /* Podman always sends a devices list and a resources object with a
     * device cgroup rule: only refuse what would change something. */
    if (!n || JSON_NODE_HOLDS_NULL(n) || i < 2)
      continue;
    return sbx_fail(err, SBX_ERROR_INVALID, W ": linux.%s is not supported by sbx-oci", refused[i]);
  }
  return TRUE;
}

static void hook_free(gpointer p)
{
  SbxOciHook *h = p;
  g_free(h->path);
  g_strfreev(h->args);
  g_strfreev(h->env);
  g_free(h);
}

static gboolean parse_hooks(SbxOciConfig *c, JsonObject *root, GError **err)
{
  static const char *const kinds[SBX_HOOK_N] = {
      "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};
  gboolean bad = FALSE;
  JsonObject *h = get_object(root, "hooks", W, err, &bad);
  if (bad)
    return FALSE;
  for (int k = 0; k < SBX_HOOK_N; k++) {
    c->hooks[k] = g_ptr_array_new_with_free_func(hook_free);
    JsonArray *a = get_array(h, kinds[k], W " hooks", err, &bad);
    if (bad)
      return FALSE;
    for (guint i = 0; a && i < json_array_get_length(a) && i < 64; i++) {
      JsonObject *o = sbx_json_object(json_array_get_element(a, i), W " hooks", err);
      const char *path = NULL;
      g_auto(GStrv) args = NULL, env = NULL;
      gint64 timeout = 0;
      if (!o || !sbx_json_get_string(o, "path", &path, W " hooks", err) ||
          !sbx_json_get_strv(o, "args", &args, W " hooks", err) ||
          !sbx_json_get_strv(o, "env", &env, W " hooks", err) ||
          !sbx_json_get_int(o, "timeout", &timeout, W " hooks", err))
        return FALSE;
      if (!path || !g_path_is_absolute(path) || timeout < 0)
        return sbx_fail(err, SBX_ERROR_INVALID,
                        W ": hooks.%s[%u]: needs an absolute path (and a timeout >= 0)", kinds[k],
                        i);
      SbxOciHook *hook = g_new0(SbxOciHook, 1);
      hook->path = g_strdup(path);
      hook->args =
          args && args[0] ? g_steal_pointer(&args) : g_strdupv((char *[]){hook->path, NULL});
      hook->env = g_steal_pointer(&env);
      hook->timeout = timeout;
      g_ptr_array_add(c->hooks[k], hook);
    }
  }
  return TRUE;
}

gboolean sbx_oci_config_has_ns(const SbxOciConfig *c, int flag, const char **path)
{
  for (guint i = 0; i < c->namespaces->len; i++) {
    SbxOciNamespace *n = &g_array_index(c->namespaces, SbxOciNamespace, i);
    if (n->flag == flag) {
      if (path)
        *path = n->path;
      return TRUE;
    }
  }
  return FALSE;
}

/* data: config.json's text (path names it in errors); bundle: where
 * root.path and the hooks' directory are relative to. */
static SbxOciConfig *config_parse(GBytes *data, const char *bundle, const char *path, GError **err)
{
  g_autoptr(SbxOciConfig) c = g_new0(SbxOciConfig, 1);
  c->gids = g_array_new(FALSE, FALSE, sizeof(gid_t));
  c->rlimits = g_array_new(FALSE, FALSE, sizeof(SbxRlimit));
  c->namespaces = g_array_new(FALSE, FALSE, sizeof(SbxOciNamespace));
  g_array_set_clear_func(c->namespaces, ns_clear);
  c->uid_maps = g_array_new(FALSE, FALSE, sizeof(SbxOciIdRange));
  c->gid_maps = g_array_new(FALSE, FALSE, sizeof(SbxOciIdRange));
  c->mounts = g_ptr_array_new_with_free_func(mount_free);
  c->sysctl = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  c->devices = g_ptr_array_new_with_free_func(device_free);
  c->warnings = g_ptr_array_new_with_free_func(g_free);
  c->no_new_privs = FALSE;
  c->bundle = g_strdup(bundle);
  c->source = g_bytes_ref(data);
  gsize len;
  const char *text = g_bytes_get_data(data, &len);
  g_autoptr(JsonNode) rootn = sbx_json_parse(text, len, path, err);
  JsonObject *root = rootn ? sbx_json_object(rootn, path, err) : NULL;
  if (!root)
    return NULL;
  gboolean bad = FALSE;
  const char *version = NULL, *rpath = NULL, *hostname = NULL;
  JsonObject *r = get_object(root, "root", W, err, &bad);
  if (bad || !sbx_json_get_string(root, "ociVersion", &version, W, err) ||
      !sbx_json_get_string(root, "hostname", &hostname, W, err) ||
      (r && (!sbx_json_get_string(r, "path", &rpath, W " root", err) ||
             !get_bool(r, "readonly", &c->root_readonly, W " root", err))))
    return NULL;
  if (!version || !g_str_has_prefix(version, "1.")) {
    sbx_fail(err, SBX_ERROR_INVALID, W ": ociVersion %s: sbx-oci speaks 1.x",
             version ? version : "(missing)");
    return NULL;
  }
  if (!rpath || !*rpath) {
    sbx_fail(err, SBX_ERROR_INVALID, W ": no root.path");
    return NULL;
  }
  c->rootfs = g_canonicalize_filename(rpath, c->bundle);
  c->hostname = g_strdup(hostname);
  /* Capabilities before linux: seccomp rules may depend on them. */
  if (!parse_process(c, root, err) || !parse_mounts(c, root, err) || !parse_linux(c, root, err))
    return NULL;
  JsonNode *ann = json_object_get_member(root, "annotations");
  if (ann && JSON_NODE_HOLDS_OBJECT(ann))
    c->annotations = json_node_copy(ann);
  if (!parse_hooks(c, root, err))
    return NULL;
  return g_steal_pointer(&c);
}

SbxOciConfig *sbx_oci_config_load(const char *bundle, GError **err)
{
  g_autofree char *cwd = g_get_current_dir();
  g_autofree char *abs = g_canonicalize_filename(bundle, cwd);
  g_autofree char *path = g_build_filename(abs, "config.json", NULL);
  sbx_autofd fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    sbx_fail_errno(err, "%s", path);
    return NULL;
  }
  g_autoptr(GBytes) data = sbx_read_fd_bounded(fd, MAX_CONFIG, path, err);
  return data ? config_parse(data, abs, path, err) : NULL;
}

SbxOciConfig *sbx_oci_config_load_saved(int dirfd, const char *dir_shown, const char *bundle,
                                        GError **err)
{
  g_autofree char *path = g_build_filename(dir_shown, SBX_OCI_SAVED_CONFIG, NULL);
  /* O_NOFOLLOW: the copy itself, never where a link in its place leads. */
  sbx_autofd fd = openat(dirfd, SBX_OCI_SAVED_CONFIG,
                         O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) {
    sbx_fail_errno(err, "%s", path);
    return NULL;
  }
  g_autoptr(GBytes) data = sbx_read_fd_bounded(fd, MAX_CONFIG, path, err);
  return data ? config_parse(data, bundle, path, err) : NULL;
}

/* As `runc spec --rootless`: a user namespace mapping the caller to root. */
char *sbx_oci_default_spec(uid_t uid, gid_t gid)
{
  return g_strdup_printf(
      "{\n"
      "  \"ociVersion\": \"" SBX_OCI_VERSION "\",\n"
      "  \"process\": {\n"
      "    \"terminal\": true,\n"
      "    \"user\": {\"uid\": 0, \"gid\": 0},\n"
      "    \"args\": [\"sh\"],\n"
      "    \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", "
      "\"TERM=xterm\"],\n"
      "    \"cwd\": \"/\",\n"
      "    \"capabilities\": {\n"
      "      \"bounding\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
      "      \"effective\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
      "      \"permitted\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
      "      \"ambient\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]\n"
      "    },\n"
      "    \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],\n"
      "    \"noNewPrivileges\": true\n"
      "  },\n"
      "  \"root\": {\"path\": \"rootfs\", \"readonly\": true},\n"
      "  \"hostname\": \"sbx\",\n"
      "  \"mounts\": [\n"
      "    {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
      "    {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
      "     \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},\n"
      "    {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\",\n"
      "     \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", "
      "\"mode=0620\"]},\n"
      "    {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
      "     \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]},\n"
      "    {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\",\n"
      "     \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},\n"
      "    {\"destination\": \"/sys\", \"type\": \"none\", \"source\": \"/sys\",\n"
      "     \"options\": [\"rbind\", \"nosuid\", \"noexec\", \"nodev\", \"ro\"]}\n"
      "  ],\n"
      "  \"linux\": {\n"
      "    \"uidMappings\": [{\"containerID\": 0, \"hostID\": %u, \"size\": 1}],\n"
      "    \"gidMappings\": [{\"containerID\": 0, \"hostID\": %u, \"size\": 1}],\n"
      "    \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"},\n"
      "                   {\"type\": \"mount\"}, {\"type\": \"user\"}],\n"
      "    \"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\",\n"
      "      \"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\",\n"
      "      \"/proc/sched_debug\", \"/sys/firmware\", \"/proc/scsi\"],\n"
      "    \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\",\n"
      "      \"/proc/sysrq-trigger\"]\n"
      "  }\n"
      "}\n",
      (unsigned)uid, (unsigned)gid);
}

/* exec --process FILE: a process object as in config.json's "process". */
gboolean sbx_oci_process_load(SbxOciConfig *c, const char *path, GError **err)
{
  sbx_autofd fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return sbx_fail_errno(err, "--process %s", path);
  g_autoptr(GBytes) data = sbx_read_fd_bounded(fd, MAX_CONFIG, path, err);
  if (!data)
    return FALSE;
  gsize len;
  const char *text = g_bytes_get_data(data, &len);
  g_autoptr(JsonNode) rootn = sbx_json_parse(text, len, path, err);
  JsonObject *root = rootn ? sbx_json_object(rootn, path, err) : NULL;
  /* No capabilities object: the container's sets, as runc's exec (not
   * none, as in a config.json without one). */
  SbxCapSets container = c->caps;
  if (!root || !parse_process_object(c, root, err))
    return FALSE;
  JsonNode *caps = json_object_get_member(root, "capabilities");
  if (!caps || JSON_NODE_HOLDS_NULL(caps))
    c->caps = container;
  return TRUE;
}
