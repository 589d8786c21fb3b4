/* Registry credentials: podman's auth.json ($XDG_RUNTIME_DIR/containers/
 * auth.json or $REGISTRY_AUTH_FILE) and docker's ~/.docker/config.json, both
 * {"auths": {KEY: {"auth": base64("user:password")}}}, and docker's
 * credential helpers (credHelpers, credsStore); and the
 * WWW-Authenticate challenges that ask for them. Credentials never reach a
 * log line or an error. */
#include "sbx/json.h"
#include "sbx/registry.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_AUTH_FILE (1u << 20)
#define MAX_CHALLENGE 8192

/* --- WWW-Authenticate (RFC 7235): scheme 1*SP auth-param *( "," auth-param ) --- */

static gboolean is_token_char(char c)
{
  return c != '\0' && (g_ascii_isalnum(c) || strchr("!#$%&'*+-.^_`|~/:", c) != NULL);
}

GHashTable *sbx_registry_parse_challenge(const char *header, char **scheme)
{
  if (!header || strlen(header) > MAX_CHALLENGE)
    return NULL;
  const char *p = header;
  while (*p == ' ' || *p == '\t')
    p++;
  const char *start = p;
  while (g_ascii_isalnum(*p) || *p == '-' || *p == '_')
    p++;
  if (p == start)
    return NULL;
  g_autoptr(GHashTable) params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autofree char *s = g_strndup(start, (gsize)(p - start));
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (!*p)
      break;
    const char *ns = p;
    while (g_ascii_isalnum(*p) || *p == '-' || *p == '_')
      p++;
    if (p == ns)
      return NULL;
    g_autofree char *name = g_ascii_strdown(ns, p - ns);
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p != '=') /* another challenge follows in the same header: stop here */
      break;
    p++;
    while (*p == ' ' || *p == '\t')
      p++;
    g_autoptr(GString) value = g_string_new(NULL);
    if (*p == '"') {
      for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
          p++;
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
          return NULL;
        g_string_append_c(value, *p);
      }
      if (*p != '"')
        return NULL;
      p++;
    } else {
      while (is_token_char(*p) || *p == '=')
        g_string_append_c(value, *p++);
    }
    if (*p && *p != ',' && *p != ' ' && *p != '\t')
      return NULL;
    g_hash_table_replace(params, g_steal_pointer(&name),
                         g_string_free(g_steal_pointer(&value), FALSE));
  }
  *scheme = g_steal_pointer(&s);
  return g_steal_pointer(&params);
}

/* --- auth files --------------------------------------------------------------- */

/* "https://index.docker.io/v1/" -> "docker.io"; "quay.io/org/" -> "quay.io/org". */
static char *normalize_key(const char *key)
{
  const char *k = key;
  if (g_str_has_prefix(k, "https://"))
    k += 8;
  else if (g_str_has_prefix(k, "http://"))
    k += 7;
  g_autofree char *n = g_strdup(k);
  gsize len = strlen(n);
  while (len > 0 && n[len - 1] == '/')
    n[--len] = '\0';
  if (g_str_has_suffix(n, "/v1") || g_str_has_suffix(n, "/v2"))
    n[len - 3] = '\0';
  static const char *const hubs[] = {"index.docker.io", "registry-1.docker.io", NULL};
  for (const char *const *h = hubs; *h; h++) {
    gsize hl = strlen(*h);
    if (strncmp(n, *h, hl) == 0 && (n[hl] == '\0' || n[hl] == '/'))
      return g_strconcat("docker.io", n + hl, NULL);
  }
  return g_steal_pointer(&n);
}

static JsonNode *read_auth_file(const char *file, GError **err)
{
  sbx_autofd fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    if (errno != ENOENT)
      sbx_fail_errno(err, "%s", file);
    else
      g_set_error(err, SBX_ERROR, SBX_ERROR_NOT_FOUND, "%s: no such file", file);
    return NULL;
  }
  g_autoptr(GBytes) b = sbx_read_fd_bounded(fd, MAX_AUTH_FILE, file, err);
  if (!b)
    return NULL;
  gsize len;
  const char *data = g_bytes_get_data(b, &len);
  g_autoptr(JsonNode) root = sbx_json_parse(data, len, file, NULL);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: not a JSON object", file);
    return NULL;
  }
  return g_steal_pointer(&root);
}

static gboolean decode_auth(const char *b64, char **user, char **password)
{
  if (!b64 || !*b64)
    return FALSE;
  gsize len = 0;
  g_autofree guchar *raw = g_base64_decode(b64, &len);
  if (!raw || len == 0)
    return FALSE;
  g_autofree char *plain = g_strndup((const char *)raw, len);
  explicit_bzero(raw, len);
  char *colon = strchr(plain, ':');
  if (!colon || colon == plain) {
    explicit_bzero(plain, strlen(plain));
    return FALSE;
  }
  *user = g_strndup(plain, (gsize)(colon - plain));
  *password = g_strdup(colon + 1);
  explicit_bzero(plain, strlen(plain));
  return TRUE;
}

static GBytes *read_pipe_bounded(int fd, gsize max)
{
  g_autoptr(GByteArray) b = g_byte_array_new();
  guint8 buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || b->len + (gsize)n > max)
      return NULL;
    if (n == 0)
      return g_byte_array_free_to_bytes(g_steal_pointer(&b));
    g_byte_array_append(b, buf, (guint)n);
  }
}

/* docker's credential helpers: `docker-credential-NAME get` reads the
 * registry on stdin and answers {"Username": ..., "Secret": ...}. */
static gboolean run_cred_helper(const char *name, const char *domain, char **user, char **password)
{
  if (!name || !*name || strlen(name) > 64 ||
      strspn(name, "abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(name))
    return FALSE;
  g_autofree char *prog = g_strconcat("docker-credential-", name, NULL);
  /* Docker Hub's credentials are filed under its v1 URL by docker. */
  const char *server = strcmp(domain, "docker.io") == 0 ? "https://index.docker.io/v1/" : domain;
  char *argv[] = {prog, "get", NULL};
  GPid pid;
  int in = -1, out = -1;
  if (!g_spawn_async_with_pipes(NULL, argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                NULL, NULL, &pid, &in, &out, NULL, NULL)) {
    sbx_debug("credential helper %s: cannot run it", prog);
    return FALSE;
  }
  (void)!write(in, server, strlen(server));
  close(in);
  g_autoptr(GBytes) answer = read_pipe_bounded(out, 64 * 1024);
  close(out);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  g_spawn_close_pid(pid);
  if (!answer || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    sbx_debug("credential helper %s: no credentials for %s", prog, domain);
    return FALSE;
  }
  gsize alen;
  const char *adata = g_bytes_get_data(answer, &alen);
  g_autoptr(JsonNode) root = sbx_json_parse(adata, alen, prog, NULL);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root))
    return FALSE;
  JsonObject *o = json_node_get_object(root);
  const char *u = sbx_json_string_or_null(o, "Username");
  const char *secret = sbx_json_string_or_null(o, "Secret");
  if (!u || !*u || !secret || !*secret)
    return FALSE;
  *user = g_strdup(u);
  *password = g_strdup(secret);
  sbx_debug("credentials for %s from %s", domain, prog);
  return TRUE;
}

/* credHelpers[registry], else the file's entry, else credsStore. */
static gboolean lookup_in_file(const char *file, GPtrArray *wanted, const char *domain, char **user,
                               char **password)
{
  g_autoptr(JsonNode) root = read_auth_file(file, NULL);
  if (!root)
    return FALSE;
  JsonObject *top = json_node_get_object(root);
  JsonNode *hn = json_object_get_member(top, "credHelpers");
  if (hn && JSON_NODE_HOLDS_OBJECT(hn)) {
    g_autoptr(GList) members = json_object_get_members(json_node_get_object(hn));
    for (GList *m = members; m; m = m->next) {
      g_autofree char *key = normalize_key(m->data);
      if (strcmp(key, domain) == 0)
        return run_cred_helper(sbx_json_string_or_null(json_node_get_object(hn), m->data), domain,
                               user, password);
    }
  }
  JsonNode *an = json_object_get_member(top, "auths");
  if (an && JSON_NODE_HOLDS_OBJECT(an)) {
    JsonObject *auths = json_node_get_object(an);
    for (guint w = 0; w < wanted->len; w++) {
      g_autoptr(GList) members = json_object_get_members(auths);
      for (GList *m = members; m; m = m->next) {
        g_autofree char *key = normalize_key(m->data);
        JsonNode *entry = json_object_get_member(auths, m->data);
        if (strcmp(key, wanted->pdata[w]) != 0 || !JSON_NODE_HOLDS_OBJECT(entry))
          continue;
        const char *b64 = sbx_json_string_or_null(json_node_get_object(entry), "auth");
        if (decode_auth(b64, user, password)) {
          sbx_debug("credentials for %s from %s", (char *)wanted->pdata[w], file);
          return TRUE;
        }
      }
    }
  }
  const char *store = sbx_json_string_or_null(top, "credsStore");
  return store && run_cred_helper(store, domain, user, password);
}

gboolean sbx_auth_lookup(char **files, const char *domain, const char *path, char **user,
                         char **password)
{
  /* The most specific key first: registry/ns/repo, registry/ns, registry. */
  g_autoptr(GPtrArray) wanted = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *full = g_strconcat(domain, "/", path, NULL);
  for (char *end = full + strlen(full); end > full + strlen(domain);) {
    g_ptr_array_add(wanted, g_strndup(full, (gsize)(end - full)));
    while (end > full && *--end != '/')
      ;
  }
  g_ptr_array_add(wanted, g_strdup(domain));
  for (char **f = files; f && *f; f++)
    if (lookup_in_file(*f, wanted, domain, user, password))
      return TRUE;
  return FALSE;
}

static gboolean write_auth_file(const char *file, JsonNode *root, GError **err)
{
  g_autofree char *dir = g_path_get_dirname(file);
  g_autofree char *base = g_path_get_basename(file);
  if (g_mkdir_with_parents(dir, 0700) < 0)
    return sbx_fail_errno(err, "create %s", dir);
  sbx_autofd dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return sbx_fail_errno(err, "open %s", dir);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_root(gen, root);
  gsize len;
  g_autofree char *text = json_generator_to_data(gen, &len);
  gboolean ok = sbx_write_file_atomic(dfd, base, text, len, 0600, err);
  explicit_bzero(text, len);
  return ok;
}

static JsonObject *auths_of(JsonNode *root)
{
  JsonObject *o = json_node_get_object(root);
  JsonNode *a = json_object_get_member(o, "auths");
  if (!a || !JSON_NODE_HOLDS_OBJECT(a)) {
    json_object_set_object_member(o, "auths", json_object_new());
    a = json_object_get_member(o, "auths");
  }
  return json_node_get_object(a);
}

gboolean sbx_auth_store(const char *file, const char *domain, const char *user,
                        const char *password, GError **err)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(JsonNode) root = read_auth_file(file, &local);
  if (!root && !g_error_matches(local, SBX_ERROR, SBX_ERROR_NOT_FOUND)) {
    g_propagate_error(err, g_steal_pointer(&local));
    return FALSE;
  }
  if (!root)
    root = json_node_init_object(json_node_alloc(), json_object_new());
  g_autofree char *plain = g_strconcat(user, ":", password, NULL);
  g_autofree char *b64 = g_base64_encode((const guchar *)plain, strlen(plain));
  explicit_bzero(plain, strlen(plain));
  JsonObject *entry = json_object_new();
  json_object_set_string_member(entry, "auth", b64);
  explicit_bzero(b64, strlen(b64));
  json_object_set_object_member(auths_of(root), domain, entry);
  return write_auth_file(file, root, err);
}

gboolean sbx_auth_remove(const char *file, const char *domain, GError **err)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(JsonNode) root = read_auth_file(file, &local);
  JsonObject *auths = root ? auths_of(root) : NULL;
  gboolean found = FALSE;
  if (auths) {
    g_autoptr(GList) members = json_object_get_members(auths);
    for (GList *m = members; m; m = m->next) {
      g_autofree char *key = normalize_key(m->data);
      if (strcmp(key, domain) == 0) {
        json_object_remove_member(auths, m->data);
        found = TRUE;
      }
    }
  }
  if (!found)
    return sbx_fail(err, SBX_ERROR_NOT_FOUND, "not logged in to %s", domain);
  return write_auth_file(file, root, err);
}
