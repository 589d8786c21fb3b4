/* registries.conf (containers-registries.conf(5), version 2, and version
 * 1's three lists), as podman reads it: unqualified-search-registries, short-name-mode, [aliases],
 * and
 * [[registry]] tables (prefix, location, insecure, blocked,
 * mirror-by-digest-only, mirrors with location, insecure, pull-from-mirror).
 * The TOML is read by toml++ (regconf-toml.cc) and walked here as JSON.
 *
 * A key sbx does not know is refused, never dropped: podman only logs one
 * at debug level, but a misspelt `blocked` or `mirror-by-digest-only`
 * dropped would make the configuration less strict than it is written. */
#include "sbx/regconf.h"
#include "sbx/json.h"
#include "sbx/reference.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

/* A mirror's pull-from-mirror: which pulls it serves. */
typedef enum { PULL_ALL, PULL_DIGEST_ONLY, PULL_TAG_ONLY } PullFrom;

typedef struct {
  char *location;
  gboolean insecure;
  PullFrom pull_from;
} Mirror;

typedef struct {
  char *prefix, *location;
  gboolean insecure, blocked;
  gboolean mirror_by_digest_only; /* its mirrors serve pulls by digest only */
  GArray *mirrors;                /* Mirror */
} Registry;

struct SbxRegConf {
  char *what;
  char **search;
  gboolean permissive;
  GHashTable *aliases; /* short name -> full reference */
  GPtrArray *registries;
};

void sbx_reg_endpoint_clear(SbxRegEndpoint *e)
{
  g_clear_pointer(&e->reference, g_free);
}

static void mirror_clear(Mirror *m)
{
  g_clear_pointer(&m->location, g_free);
}

static void registry_free(Registry *r)
{
  g_free(r->prefix);
  g_free(r->location);
  if (r->mirrors)
    g_array_unref(r->mirrors);
  g_free(r);
}

void sbx_regconf_free(SbxRegConf *c)
{
  if (!c)
    return;
  g_free(c->what);
  g_strfreev(c->search);
  g_hash_table_unref(c->aliases);
  g_ptr_array_unref(c->registries);
  g_free(c);
}

static SbxRegConf *regconf_new(const char *what)
{
  SbxRegConf *c = g_new0(SbxRegConf, 1);
  c->what = g_strdup(what);
  c->aliases = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  c->registries = g_ptr_array_new_with_free_func((GDestroyNotify)registry_free);
  return c;
}

static gboolean get_bool(JsonObject *o, const char *member, gboolean *out, const char *what,
                         GError **err)
{
  JsonNode *n = json_object_get_member(o, member);
  if (!n)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: expected true or false", what, member);
  *out = json_node_get_boolean(n);
  return TRUE;
}

/* Every key of table `o` is in `known` (NULL-terminated). */
static gboolean known_keys(JsonObject *o, const char *const *known, const char *what, GError **err)
{
  g_autoptr(GList) keys = json_object_get_members(o);
  for (GList *l = keys; l; l = l->next)
    if (!g_strv_contains(known, l->data)) {
      const char *key = l->data;
      g_autofree char *shown = g_utf8_make_valid(key, MIN(strlen(key), 100));
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "%s: unknown key '%s' (sbx refuses what it would not honour)", what, shown);
    }
  return TRUE;
}

static const char *const registry_keys[] = {
    "prefix", "location", "insecure", "blocked", "mirror-by-digest-only", "mirror", NULL};
static const char *const mirror_keys[] = {"location", "insecure", "pull-from-mirror", NULL};
/* podman's keys that sbx does not use, and that could only add to what it
 * does (credential stores, an additional layer store's helper): read, and
 * nothing more. Version 1's [registries.*] tables are read apart (parse_v1). */
static const char *const top_keys[] = {"unqualified-search-registries",
                                       "short-name-mode",
                                       "aliases",
                                       "registry",
                                       "credential-helpers",
                                       "additional-layer-store-auth-helper",
                                       NULL};

/* A location: host[:port][/path], no scheme, no tag. */
static gboolean check_location(const char *loc, const char *what, GError **err)
{
  g_autofree char *probe = g_strconcat(loc, strchr(loc, '/') ? "" : "/x", NULL);
  g_autoptr(SbxImageRef) ref =
      *loc && !strstr(loc, "://") ? sbx_image_ref_parse(probe, NULL) : NULL;
  if (!ref || strchr(loc, '@') || g_str_has_suffix(loc, "/"))
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: '%.200s' is not a registry location", what, loc);
  return TRUE;
}

/* "*.host": a star only in front, then a host name without a port. */
static gboolean wildcard_ok(const char *prefix)
{
  const char *host = prefix + 2;
  if (!g_str_has_prefix(prefix, "*.") || !*host || *host == '.' || *host == '-' ||
      g_str_has_suffix(host, "."))
    return FALSE;
  for (const char *p = host; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-')
      return FALSE;
  return strstr(host, "..") == NULL;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Registry, registry_free)

/* A mirror's pull-from-mirror ("all", "digest-only", "tag-only"; unset or
 * "": all). containers/image refuses it beside the registry's
 * mirror-by-digest-only = true, and so does sbx. */
static gboolean parse_pull_from(const Registry *r, const char *v, PullFrom *out, const char *what,
                                GError **err)
{
  *out = PULL_ALL;
  if (!v || !*v)
    return TRUE;
  if (r->mirror_by_digest_only)
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "%s: pull-from-mirror cannot be set when the registry has "
                    "mirror-by-digest-only = true",
                    what);
  if (strcmp(v, "digest-only") == 0)
    *out = PULL_DIGEST_ONLY;
  else if (strcmp(v, "tag-only") == 0)
    *out = PULL_TAG_ONLY;
  else if (strcmp(v, "all") != 0) {
    g_autofree char *shown = g_utf8_make_valid(v, MIN(strlen(v), 80));
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "%s: pull-from-mirror: '%s' is not all, digest-only or tag-only", what, shown);
  }
  return TRUE;
}

/* A later file's [[registry]] with the same prefix replaces the earlier one. */
static void add_registry(SbxRegConf *c, Registry *r)
{
  for (guint i = 0; i < c->registries->len; i++)
    if (strcmp(((Registry *)g_ptr_array_index(c->registries, i))->prefix, r->prefix) == 0) {
      g_ptr_array_remove_index(c->registries, i);
      break;
    }
  g_ptr_array_add(c->registries, r);
}

static gboolean parse_registry(SbxRegConf *c, JsonNode *node, const char *file, guint index,
                               GError **err)
{
  g_autofree char *what = g_strdup_printf("%s: [[registry]] %u", file, index + 1);
  JsonObject *o = sbx_json_object(node, what, err);
  const char *prefix = NULL, *location = NULL;
  if (o && json_object_has_member(o, "pull-from-mirror"))
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "%s: pull-from-mirror belongs in a [[registry.mirror]] table", what);
  if (!o || !known_keys(o, registry_keys, what, err) ||
      !sbx_json_get_string(o, "prefix", &prefix, what, err) ||
      !sbx_json_get_string(o, "location", &location, what, err))
    return FALSE;
  g_autoptr(Registry) r = g_new0(Registry, 1);
  r->mirrors = g_array_new(FALSE, TRUE, sizeof(Mirror));
  g_array_set_clear_func(r->mirrors, (GDestroyNotify)mirror_clear);
  if (!prefix)
    prefix = location;
  if (!prefix)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: needs a location or a prefix", what);
  if (prefix[0] == '*') {
    /* containers-registries.conf(5): "*.example.com" stands for the
     * registries below example.com, each at its own name: no location. */
    if (!wildcard_ok(prefix))
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "%s: '%.200s' is not a wildcard prefix (*.host, no port or path)", what,
                      prefix);
    if (location)
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "%s: a wildcard prefix (%.200s) cannot have a location", what, prefix);
  } else {
    if (!location)
      location = prefix;
    if (!check_location(prefix, what, err) || !check_location(location, what, err))
      return FALSE;
  }
  r->prefix = g_strdup(prefix);
  r->location = g_strdup(location);
  if (!get_bool(o, "insecure", &r->insecure, what, err) ||
      !get_bool(o, "blocked", &r->blocked, what, err) ||
      !get_bool(o, "mirror-by-digest-only", &r->mirror_by_digest_only, what, err))
    return FALSE;
  JsonNode *m = json_object_get_member(o, "mirror");
  if (!m) {
    add_registry(c, g_steal_pointer(&r));
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_ARRAY(m))
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: mirror: expected [[registry.mirror]] tables",
                    what);
  JsonArray *a = json_node_get_array(m);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    g_autofree char *mwhat = g_strdup_printf("%s: mirror %u", what, i + 1);
    JsonObject *mo = sbx_json_object(json_array_get_element(a, i), mwhat, err);
    const char *mloc = NULL, *pull_from = NULL;
    Mirror e = {0};
    if (!mo || !known_keys(mo, mirror_keys, mwhat, err) ||
        !sbx_json_get_string(mo, "location", &mloc, mwhat, err) ||
        !get_bool(mo, "insecure", &e.insecure, mwhat, err) ||
        !sbx_json_get_string(mo, "pull-from-mirror", &pull_from, mwhat, err))
      return FALSE;
    if (!mloc)
      return sbx_fail(err, SBX_ERROR_INVALID, "%s: needs a location", mwhat);
    if (!check_location(mloc, mwhat, err) ||
        !parse_pull_from(r, pull_from, &e.pull_from, mwhat, err))
      return FALSE;
    e.location = g_strdup(mloc);
    g_array_append_val(r->mirrors, e);
  }
  add_registry(c, g_steal_pointer(&r));
  return TRUE;
}

/* Version 1 (still read by podman): [registries.search], .insecure and
 * .block, each a list `registries = [...]`, read as containers/image does:
 * the search list is unqualified-search-registries, the others [[registry]]
 * entries of that location, insecure or blocked. Not mixed with version 2
 * in one file (containers/image refuses that too). */
static gboolean parse_v1(SbxRegConf *c, JsonObject *o, const char *what, GError **err)
{
  static const char *const v1_tables[] = {"search", "insecure", "block", NULL};
  static const char *const v1_keys[] = {"registries", NULL};
  g_autofree char *vwhat = g_strdup_printf("%s: [registries.*] (version 1)", what);
  g_autoptr(GList) keys = json_object_get_members(o);
  for (GList *l = keys; l; l = l->next)
    if (strcmp(l->data, "registries") != 0) {
      g_autofree char *shown = g_utf8_make_valid(l->data, MIN(strlen(l->data), 100));
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "%s: [registries.*] tables (version 1) cannot be mixed with version 2 "
                      "keys ('%s')",
                      what, shown);
    }
  JsonObject *v1 = sbx_json_object(json_object_get_member(o, "registries"), vwhat, err);
  if (!v1 || !known_keys(v1, v1_tables, vwhat, err))
    return FALSE;
  g_autoptr(GHashTable) made = g_hash_table_new(g_str_hash, g_str_equal); /* prefix -> Registry */
  g_autoptr(GPtrArray) order = g_ptr_array_new_with_free_func((GDestroyNotify)registry_free);
  for (guint t = 0; v1_tables[t]; t++) {
    JsonNode *n = json_object_get_member(v1, v1_tables[t]);
    if (!n)
      continue;
    g_autofree char *twhat = g_strdup_printf("%s: [registries.%s]", what, v1_tables[t]);
    JsonObject *to = sbx_json_object(n, twhat, err);
    g_auto(GStrv) list = NULL;
    if (!to || !known_keys(to, v1_keys, twhat, err) ||
        !sbx_json_get_strv(to, "registries", &list, twhat, err))
      return FALSE;
    for (char **l = list; l && *l; l++)
      if (!check_location(*l, twhat, err))
        return FALSE;
    if (t == 0) {
      if (list) {
        g_strfreev(c->search);
        c->search = g_steal_pointer(&list);
      }
      continue;
    }
    for (char **l = list; l && *l; l++) {
      Registry *r = g_hash_table_lookup(made, *l);
      if (!r) {
        r = g_new0(Registry, 1);
        r->mirrors = g_array_new(FALSE, TRUE, sizeof(Mirror));
        g_array_set_clear_func(r->mirrors, (GDestroyNotify)mirror_clear);
        r->prefix = g_strdup(*l);
        r->location = g_strdup(*l);
        g_hash_table_insert(made, r->prefix, r);
        g_ptr_array_add(order, r);
      }
      if (t == 1)
        r->insecure = TRUE;
      else
        r->blocked = TRUE;
    }
  }
  while (order->len > 0)
    add_registry(c, g_ptr_array_steal_index(order, 0));
  return TRUE;
}

/* One file into c: keys it sets replace earlier files' (drop-ins), aliases
 * and [[registry]] prefixes one by one. */
static gboolean parse_into(SbxRegConf *c, const char *text, gsize len, const char *what,
                           GError **err)
{
  g_autofree char *why = NULL;
  g_autofree char *json = sbx_regconf_toml_to_json(text, len, &why);
  if (!json)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s", what, why ? why : "not TOML");
  g_autoptr(JsonNode) root = sbx_json_parse(json, strlen(json), what, err);
  JsonObject *o = root ? sbx_json_object(root, what, err) : NULL;
  if (!o)
    return FALSE;
  if (json_object_has_member(o, "registries"))
    return parse_v1(c, o, what, err);
  if (!known_keys(o, top_keys, what, err))
    return FALSE;
  const char *mode = NULL;
  g_auto(GStrv) search = NULL;
  if (!sbx_json_get_strv(o, "unqualified-search-registries", &search, what, err) ||
      !sbx_json_get_string(o, "short-name-mode", &mode, what, err))
    return FALSE;
  for (char **s = search; s && *s; s++)
    if (!check_location(*s, what, err))
      return FALSE;
  if (search) {
    g_strfreev(c->search);
    c->search = g_steal_pointer(&search);
  }
  /* podman's "disabled" tries every search registry in order too. */
  if (mode && strcmp(mode, "enforcing") != 0 && strcmp(mode, "permissive") != 0 &&
      strcmp(mode, "disabled") != 0)
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "%s: short-name-mode: '%.80s' is not enforcing, permissive or disabled", what,
                    mode);
  if (mode)
    c->permissive = strcmp(mode, "enforcing") != 0;
  JsonNode *aliases = json_object_get_member(o, "aliases");
  if (aliases) {
    g_autofree char *awhat = g_strdup_printf("%s: [aliases]", what);
    JsonObject *ao = sbx_json_object(aliases, awhat, err);
    if (!ao)
      return FALSE;
    g_autoptr(GList) names = json_object_get_members(ao);
    for (GList *l = names; l; l = l->next) {
      const char *value = NULL;
      if (!sbx_json_get_string(ao, l->data, &value, awhat, err))
        return FALSE;
      g_autoptr(SbxImageRef) ref = value ? sbx_image_ref_parse(value, NULL) : NULL;
      if (!ref)
        return sbx_fail(err, SBX_ERROR_INVALID, "%s: %.100s: '%.200s' is not an image reference",
                        awhat, (const char *)l->data, value ? value : "null");
      g_hash_table_insert(c->aliases, g_strdup(l->data), g_strdup(value));
    }
  }
  JsonNode *regs = json_object_get_member(o, "registry");
  if (regs) {
    if (!JSON_NODE_HOLDS_ARRAY(regs))
      return sbx_fail(err, SBX_ERROR_INVALID, "%s: registry: expected [[registry]] tables", what);
    JsonArray *a = json_node_get_array(regs);
    for (guint i = 0; i < json_array_get_length(a); i++)
      if (!parse_registry(c, json_array_get_element(a, i), what, i, err))
        return FALSE;
  }
  return TRUE;
}

SbxRegConf *sbx_regconf_parse(const char *text, gsize len, const char *what, GError **err)
{
  g_autoptr(SbxRegConf) c = regconf_new(what);
  return parse_into(c, text, len, what, err) ? g_steal_pointer(&c) : NULL;
}

/* One file into c; FALSE with *missing when it does not exist. */
static gboolean load_file(SbxRegConf *c, const char *path, gboolean *missing, GError **err)
{
  g_autofree char *what = g_strdup_printf("registries.conf: %s", path);
  sbx_autofd fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (missing)
    *missing = fd < 0 && errno == ENOENT;
  if (fd < 0)
    return sbx_fail_errno(err, "%s", what);
  g_autoptr(GBytes) text = sbx_read_fd_bounded(fd, SBX_REGCONF_MAX_SIZE, what, err);
  if (!text)
    return FALSE;
  gsize len;
  const char *data = g_bytes_get_data(text, &len);
  return parse_into(c, data ? data : "", len, what, err);
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A drop-in directory's *.conf files, in name order (a missing one: none). */
static gboolean load_dir(SbxRegConf *c, const char *dir, GError **err)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GDir) d = g_dir_open(dir, 0, &local);
  if (!d) {
    if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ||
        g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
      return TRUE;
    return sbx_fail(err, SBX_ERROR_INVALID, "registries.conf: %s", local->message);
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  for (const char *n; (n = g_dir_read_name(d));) {
    if (!g_str_has_suffix(n, ".conf") || n[0] == '.')
      continue;
    if (names->len >= SBX_REGCONF_MAX_DROPINS)
      return sbx_fail(err, SBX_ERROR_INVALID, "registries.conf: %s: more than %d drop-in files",
                      dir, SBX_REGCONF_MAX_DROPINS);
    g_ptr_array_add(names, g_strdup(n));
  }
  g_ptr_array_sort(names, compare_names);
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *path = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
    gboolean missing = FALSE;
    g_autoptr(GError) why = NULL;
    if (!load_file(c, path, &missing, &why) && !missing) {
      g_propagate_error(err, g_steal_pointer(&why));
      return FALSE;
    }
  }
  return TRUE;
}

SbxRegConf *sbx_regconf_load(const SbxRegConfPaths *p, GError **err)
{
  g_autoptr(SbxRegConf) c = regconf_new("registries.conf");
  gboolean missing = FALSE;
  g_autoptr(GError) local = NULL;
  /* containers/image: the user's file replaces the system one, and then
   * only the user's drop-ins are read; else the system's, then the user's. */
  if (load_file(c, p->user_file, &missing, &local)) {
    g_free(c->what);
    c->what = g_strdup_printf("registries.conf: %s", p->user_file);
    return load_dir(c, p->user_dir, err) ? g_steal_pointer(&c) : NULL;
  }
  if (!missing) {
    g_propagate_error(err, g_steal_pointer(&local));
    return NULL;
  }
  g_clear_error(&local);
  if (load_file(c, p->system_file, &missing, &local)) {
    g_free(c->what);
    c->what = g_strdup_printf("registries.conf: %s", p->system_file);
  } else if (!missing) {
    g_propagate_error(err, g_steal_pointer(&local));
    return NULL;
  }
  if (!load_dir(c, p->system_dir, err) || !load_dir(c, p->user_dir, err))
    return NULL;
  return g_steal_pointer(&c);
}

/* podman's (and docker's) test: the first component names a registry. */
static gboolean is_short_name(const char *input)
{
  const char *slash = strchr(input, '/');
  if (!slash)
    return TRUE;
  g_autofree char *first = g_strndup(input, (gsize)(slash - input));
  return !strpbrk(first, ".:") && strcmp(first, "localhost") != 0;
}

/* "app:tag" -> "app"; "app@sha256:..." -> "app". The tag or digest is
 * returned in *suffix (":tag", "@sha256:...", or ""). */
static char *split_name(const char *input, const char **suffix)
{
  const char *at = strchr(input, '@');
  const char *end = at ? at : input + strlen(input);
  const char *slash = g_strrstr_len(input, end - input, "/");
  const char *colon = g_strrstr_len(slash ? slash : input, end - (slash ? slash : input), ":");
  const char *cut = colon ? colon : end;
  *suffix = cut;
  return g_strndup(input, (gsize)(cut - input));
}

char **sbx_regconf_candidates(const SbxRegConf *c, const char *input, GError **err)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  if (!is_short_name(input)) {
    g_strv_builder_add(b, input);
    return g_strv_builder_end(b);
  }
  const char *suffix;
  g_autofree char *name = split_name(input, &suffix);
  const char *alias = g_hash_table_lookup(c->aliases, name);
  if (alias) {
    g_autoptr(SbxImageRef) ref = sbx_image_ref_parse(alias, NULL);
    gboolean has_version = strchr(alias + strcspn(alias, "/"), ':') || strchr(alias, '@');
    g_autofree char *full =
        *suffix && !(ref && has_version) ? g_strconcat(alias, suffix, NULL) : g_strdup(alias);
    g_strv_builder_add(b, full);
    return g_strv_builder_end(b);
  }
  guint n = c->search ? g_strv_length(c->search) : 0;
  if (!c->search) {
    /* No unqualified-search-registries (or no file): docker.io, as before. */
    g_strv_builder_add(b, input);
    return g_strv_builder_end(b);
  }
  if (n == 0) {
    sbx_fail(err, SBX_ERROR_INVALID,
             "short name %.200s: no alias and no unqualified-search-registries in %s", input,
             c->what);
    return NULL;
  }
  if (n > 1 && !c->permissive) {
    g_autofree char *list = g_strjoinv(", ", c->search);
    sbx_fail(err, SBX_ERROR_INVALID,
             "short name %.200s is ambiguous: it could come from %s (give the full reference, an "
             "[aliases] entry, or short-name-mode = \"permissive\" in %s)",
             input, list, c->what);
    return NULL;
  }
  for (char **s = c->search; *s; s++) {
    g_autofree char *full = g_strconcat(*s, "/", input, NULL);
    g_strv_builder_add(b, full);
  }
  return g_strv_builder_end(b);
}

char **sbx_regconf_local_candidates(const SbxRegConf *c, const char *input)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  if (!is_short_name(input)) {
    g_strv_builder_add(b, input);
    return g_strv_builder_end(b);
  }
  const char *suffix;
  g_autofree char *name = split_name(input, &suffix);
  const char *alias = g_hash_table_lookup(c->aliases, name);
  if (alias) {
    gboolean has_version = strchr(alias + strcspn(alias, "/"), ':') || strchr(alias, '@');
    g_autofree char *full =
        *suffix && !has_version ? g_strconcat(alias, suffix, NULL) : g_strdup(alias);
    g_strv_builder_add(b, full);
  }
  g_autofree char *local = g_strconcat("localhost/", input, NULL);
  g_strv_builder_add(b, local);
  for (char **s = c->search; s && *s; s++) {
    g_autofree char *full = g_strconcat(*s, "/", input, NULL);
    g_strv_builder_add(b, full);
  }
  if (!c->search)
    g_strv_builder_add(b, input); /* docker.io, as for a pull */
  return g_strv_builder_end(b);
}

static gboolean ends_component(char c)
{
  return c == '\0' || c == '/' || c == ':' || c == '@';
}

/* How much of name prefix matches (0: none). A plain prefix matches when
 * name starts with it and goes on with nothing, '/', ':' or '@'. A
 * wildcard "*.example.com" matches a host below example.com (not
 * example.com itself): the length of that host. */
static gsize prefix_match(const char *prefix, const char *name)
{
  if (prefix[0] == '*') {
    const char *dot_domain = prefix + 1;
    gsize host_len = strcspn(name, "/");
    gsize n = strlen(dot_domain);
    /* ".example.com" ends the host (containers/image: the first place it
     * occurs before any '/'). */
    const char *at = g_strstr_len(name, (gssize)host_len, dot_domain);
    if (!at || at == name || !ends_component(at[n]))
      return 0;
    return (gsize)(at - name) + n;
  }
  gsize n = strlen(prefix);
  if (strncmp(prefix, name, n) != 0)
    return 0;
  return ends_component(name[n]) ? n : 0;
}

/* containers-registries.conf(5): with mirror-by-digest-only = true the
 * mirrors serve pulls by digest only; else each mirror's pull-from-mirror
 * says. A digest names the same image everywhere; a tag at a mirror that is
 * behind (or lies) may name another. A reference with a tag and a digest is
 * a pull by digest. */
static gboolean mirror_serves(const Registry *r, const Mirror *m, gboolean by_digest)
{
  if (r->mirror_by_digest_only)
    return by_digest;
  if (m->pull_from == PULL_DIGEST_ONLY)
    return by_digest;
  if (m->pull_from == PULL_TAG_ONLY)
    return !by_digest;
  return TRUE;
}

GArray *sbx_regconf_endpoints(const SbxRegConf *c, const char *reference, GError **err)
{
  g_autoptr(SbxImageRef) ref = sbx_image_ref_parse(reference, err);
  if (!ref)
    return NULL;
  /* The normalised name (docker.io/library/busybox:tag) is what prefixes match. */
  g_autofree char *name = sbx_image_ref_name(ref);
  if (ref->digest && ref->tag) {
    g_free(name);
    name = g_strdup_printf("%s/%s:%s@%s", ref->domain, ref->path, ref->tag, ref->digest);
  }
  /* The longest prefix (as written: "*.b.example.com" is more specific
   * than "*.example.com") wins; on a tie the first one read. */
  const Registry *best = NULL;
  gsize best_len = 0, best_rank = 0;
  for (guint i = 0; i < c->registries->len; i++) {
    const Registry *r = g_ptr_array_index(c->registries, i);
    gsize n = prefix_match(r->prefix, name);
    gsize rank = strlen(r->prefix);
    if (n > 0 && rank > best_rank)
      best = r, best_len = n, best_rank = rank;
  }
  GArray *out = g_array_new(FALSE, TRUE, sizeof(SbxRegEndpoint));
  g_array_set_clear_func(out, (GDestroyNotify)sbx_reg_endpoint_clear);
  if (!best) {
    SbxRegEndpoint e = {g_strdup(name), FALSE};
    g_array_append_val(out, e);
    return out;
  }
  if (best->blocked) {
    g_array_unref(out);
    sbx_fail(err, SBX_ERROR_INVALID, "%s: registry %s is blocked in %s", name, best->prefix,
             c->what);
    return NULL;
  }
  const char *rest = name + best_len;
  for (guint i = 0; i < best->mirrors->len; i++) {
    const Mirror *m = &g_array_index(best->mirrors, Mirror, i);
    if (!mirror_serves(best, m, ref->digest != NULL)) {
      sbx_debug("%s: mirror %s not used: it serves pulls by %s only", name, m->location,
                ref->digest ? "tag" : "digest");
      continue;
    }
    SbxRegEndpoint e = {g_strconcat(m->location, rest, NULL), m->insecure};
    g_array_append_val(out, e);
  }
  /* A wildcard's registry is the one named (no location). */
  SbxRegEndpoint e = {best->location ? g_strconcat(best->location, rest, NULL) : g_strdup(name),
                      best->insecure};
  g_array_append_val(out, e);
  return out;
}
