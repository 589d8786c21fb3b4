/* Image references, in the grammar of docker's distribution/reference
 * (reference.go, regexp.go), with GRegex: the grammar is the regular
 * expression, written once. */
#include "sbx/reference.h"
#include "sbx/util.h"

#include <string.h>

#define NAME_MAX_LEN 255

/* distribution/reference regexp.go, verbatim in spirit. */
#define ALNUM            "[a-z0-9]+"
#define SEPARATOR        "(?:[._]|__|[-]+)"
#define PATH_COMPONENT   ALNUM "(?:" SEPARATOR ALNUM ")*"
#define DOMAIN_COMPONENT "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
#define DOMAIN_NAME      DOMAIN_COMPONENT "(?:\\." DOMAIN_COMPONENT ")*"
#define IPV6             "\\[[a-fA-F0-9:]+\\]"
#define DOMAIN           "(?:" DOMAIN_NAME "|" IPV6 ")(?::[0-9]+)?"
#define TAG              "[\\w][\\w.-]{0,127}"
#define DIGEST           "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
#define NAME             "(?:" DOMAIN "/)?" PATH_COMPONENT "(?:/" PATH_COMPONENT ")*"
#define REFERENCE        "^(" NAME ")(?::(" TAG "))?(?:@(" DIGEST "))?$"

static GRegex *reference_regex(void)
{
  static GRegex *re;
  if (g_once_init_enter(&re)) {
    /* RAW: bytes, not UTF-8 (\w is ASCII); DOLLAR_ENDONLY: no newline at the end. */
    GRegex *r =
        g_regex_new(REFERENCE, G_REGEX_RAW | G_REGEX_DOLLAR_ENDONLY | G_REGEX_OPTIMIZE, 0, NULL);
    g_assert(r);
    g_once_init_leave(&re, r);
  }
  return re;
}

void sbx_image_ref_free(SbxImageRef *r)
{
  if (!r)
    return;
  g_free(r->domain);
  g_free(r->path);
  g_free(r->tag);
  g_free(r->digest);
  g_free(r);
}

/* docker's splitDockerDomain: the first component is a registry when it
 * looks like a host (a dot, a port, "localhost", or capitals). */
static void split_domain(const char *name, char **domain, char **path)
{
  const char *slash = strchr(name, '/');
  g_autofree char *first = slash ? g_strndup(name, (gsize)(slash - name)) : NULL;
  g_autofree char *lower = first ? g_ascii_strdown(first, -1) : NULL;
  if (!first ||
      (!strpbrk(first, ".:") && strcmp(first, "localhost") != 0 && strcmp(lower, first) == 0)) {
    *domain = g_strdup("docker.io");
    *path = g_strdup(name);
  } else {
    *domain = g_steal_pointer(&first);
    *path = g_strdup(slash + 1);
  }
  if (strcmp(*domain, "index.docker.io") == 0) {
    g_free(*domain);
    *domain = g_strdup("docker.io");
  }
  if (strcmp(*domain, "docker.io") == 0 && !strchr(*path, '/')) {
    char *p = g_strconcat("library/", *path, NULL);
    g_free(*path);
    *path = p;
  }
}

SbxImageRef *sbx_image_ref_parse(const char *text, GError **err)
{
  if (!text || !*text) {
    sbx_fail(err, SBX_ERROR_USAGE, "image reference: empty");
    return NULL;
  }
  gsize len = strlen(text);
  if (len > 4096) {
    sbx_fail(err, SBX_ERROR_USAGE, "image reference: too long");
    return NULL;
  }
  g_autoptr(GMatchInfo) m = NULL;
  if (!g_regex_match(reference_regex(), text, 0, &m)) {
    g_autofree char *lower = g_ascii_strdown(text, -1);
    gboolean upper = strcmp(lower, text) != 0 && g_regex_match(reference_regex(), lower, 0, NULL);
    g_autofree char *valid = g_utf8_make_valid(text, MIN(len, 200));
    g_autofree char *shown = g_strescape(valid, NULL); /* one line, whatever was typed */
    sbx_fail(err, SBX_ERROR_USAGE, "image reference '%s': %s", shown,
             upper ? "repository name must be lowercase" : "invalid reference format");
    return NULL;
  }
  g_autofree char *name = g_match_info_fetch(m, 1);
  g_autofree char *tag = g_match_info_fetch(m, 2);
  g_autofree char *digest = g_match_info_fetch(m, 3);
  if (strlen(name) > NAME_MAX_LEN) {
    sbx_fail(err, SBX_ERROR_USAGE, "image reference: repository name longer than %d characters",
             NAME_MAX_LEN);
    return NULL;
  }
  if (digest && *digest &&
      !(g_str_has_prefix(digest, "sha256:") && strlen(digest) == 7 + 64 &&
        strspn(digest + 7, "0123456789abcdef") == 64)) {
    sbx_fail(err, SBX_ERROR_USAGE, "image reference: unsupported digest %.80s (only sha256)",
             digest);
    return NULL;
  }
  SbxImageRef *r = g_new0(SbxImageRef, 1);
  split_domain(name, &r->domain, &r->path);
  r->digest = digest && *digest ? g_steal_pointer(&digest) : NULL;
  r->tag = tag && *tag ? g_steal_pointer(&tag) : (r->digest ? NULL : g_strdup("latest"));
  return r;
}

char *sbx_image_ref_name(const SbxImageRef *r)
{
  if (r->tag)
    return g_strdup_printf("%s/%s:%s", r->domain, r->path, r->tag);
  return g_strdup_printf("%s/%s@%s", r->domain, r->path, r->digest);
}

const char *sbx_image_ref_reference(const SbxImageRef *r)
{
  return r->digest ? r->digest : r->tag;
}
