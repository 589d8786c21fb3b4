/* Unit tests for src/registry/reference.c (docker's reference grammar),
 * the WWW-Authenticate parser and the auth file (src/registry/auth.c). */
#include "helpers.h"
#include "sbx/reference.h"
#include "sbx/registry.h"
#include "sbx/util.h"

#include <string.h>

#define HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void assert_ref(const char *text, const char *domain, const char *path, const char *tag,
                       const char *digest, const char *name)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxImageRef) r = sbx_image_ref_parse(text, &err);
  g_assert_no_error(err);
  g_assert_nonnull(r);
  g_assert_cmpstr(r->domain, ==, domain);
  g_assert_cmpstr(r->path, ==, path);
  g_assert_cmpstr(r->tag, ==, tag);
  g_assert_cmpstr(r->digest, ==, digest);
  g_autofree char *n = sbx_image_ref_name(r);
  g_assert_cmpstr(n, ==, name);
}

static void test_ref_docker_hub(void)
{
  assert_ref("busybox", "docker.io", "library/busybox", "latest", NULL,
             "docker.io/library/busybox:latest");
  assert_ref("busybox:1.36", "docker.io", "library/busybox", "1.36", NULL,
             "docker.io/library/busybox:1.36");
  assert_ref("user/app", "docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest");
  assert_ref("docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
             "docker.io/library/busybox:latest");
  assert_ref("index.docker.io/library/alpine:3.20", "docker.io", "library/alpine", "3.20", NULL,
             "docker.io/library/alpine:3.20");
}

static void test_ref_registries(void)
{
  assert_ref("quay.io/org/app:v1", "quay.io", "org/app", "v1", NULL, "quay.io/org/app:v1");
  assert_ref("localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest");
  assert_ref("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", NULL,
             "localhost:5000/a/b/c:t");
  assert_ref("127.0.0.1:5000/busybox", "127.0.0.1:5000", "busybox", "latest", NULL,
             "127.0.0.1:5000/busybox:latest");
  assert_ref("[::1]:5000/app", "[::1]:5000", "app", "latest", NULL, "[::1]:5000/app:latest");
  /* Capitals make the first component a host, as in docker. */
  assert_ref("Registry/app", "Registry", "app", "latest", NULL, "Registry/app:latest");
  assert_ref("a.b/x__y.z-w---v", "a.b", "x__y.z-w---v", "latest", NULL, "a.b/x__y.z-w---v:latest");
}

static void test_ref_digests(void)
{
  assert_ref("busybox@sha256:" HEX, "docker.io", "library/busybox", NULL, "sha256:" HEX,
             "docker.io/library/busybox@sha256:" HEX);
  assert_ref("h:1/app:t@sha256:" HEX, "h:1", "app", "t", "sha256:" HEX, "h:1/app:t");
  g_autoptr(SbxImageRef) r = sbx_image_ref_parse("h:1/app:t@sha256:" HEX, NULL);
  g_assert_cmpstr(sbx_image_ref_reference(r), ==, "sha256:" HEX);
  g_autoptr(SbxImageRef) t = sbx_image_ref_parse("h:1/app:t", NULL);
  g_assert_cmpstr(sbx_image_ref_reference(t), ==, "t");
}

static void assert_refused(const char *text, const char *why)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxImageRef) r = sbx_image_ref_parse(text, &err);
  g_assert_null(r);
  g_assert_error(err, SBX_ERROR, SBX_ERROR_USAGE);
  if (why)
    g_assert_nonnull(strstr(err->message, why));
  g_assert_null(strchr(err->message, '\n'));
}

static void test_ref_hostile(void)
{
  assert_refused("", "empty");
  assert_refused(NULL, "empty");
  assert_refused("Busybox", "must be lowercase");
  assert_refused("quay.io/Org/app", "must be lowercase");
  assert_refused("/abs/path", "invalid reference format");
  assert_refused("./rel", "invalid reference format");
  assert_refused("a/../b", "invalid reference format");
  assert_refused("a//b", "invalid reference format");
  assert_refused("app:", "invalid reference format");
  assert_refused("app:-tag", "invalid reference format");
  assert_refused("app:t@", "invalid reference format");
  assert_refused("app@sha256:xyz", "invalid reference format");
  assert_refused("app@sha256:" HEX "\n", "invalid reference format");
  assert_refused("app\n", "invalid reference format");
  assert_refused("app\nx", "invalid reference format");
  assert_refused("app tag", "invalid reference format");
  assert_refused("h:1/app?x=1", "invalid reference format");
  assert_refused("user:pass@host/app", "invalid reference format");
  assert_refused("https://quay.io/app", "invalid reference format");
  assert_refused("app@sha512:" HEX HEX, "only sha256");
  assert_refused("app@sha256:" HEX "00", "only sha256");
  assert_refused("app@sha256:ABC" HEX, "only sha256");
  assert_refused("-app", "invalid reference format");
  assert_refused("h:port/app", "invalid reference format");
  assert_refused("h:1/a\xc3\xa9", "invalid reference format");
  g_autofree char *tag129 = g_strnfill(129, 't');
  g_autofree char *longtag = g_strconcat("app:", tag129, NULL);
  assert_refused(longtag, "invalid reference format");
  g_autofree char *path = g_strnfill(300, 'a');
  assert_refused(path, "longer than 255");
  g_autofree char *huge = g_strnfill(100000, 'a');
  assert_refused(huge, "too long");
}

static void test_challenge(void)
{
  g_autofree char *scheme = NULL;
  g_autoptr(GHashTable) p = sbx_registry_parse_challenge(
      "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
      "scope=\"repository:a/b:pull,push\"",
      &scheme);
  g_assert_nonnull(p);
  g_assert_cmpstr(scheme, ==, "Bearer");
  g_assert_cmpstr(g_hash_table_lookup(p, "realm"), ==, "https://auth.example/token");
  g_assert_cmpstr(g_hash_table_lookup(p, "service"), ==, "registry.example");
  g_assert_cmpstr(g_hash_table_lookup(p, "scope"), ==, "repository:a/b:pull,push");

  g_autofree char *s2 = NULL;
  g_autoptr(GHashTable) b = sbx_registry_parse_challenge("Basic realm=\"a \\\"q\\\" b\"", &s2);
  g_assert_nonnull(b);
  g_assert_cmpstr(s2, ==, "Basic");
  g_assert_cmpstr(g_hash_table_lookup(b, "realm"), ==, "a \"q\" b");

  g_autofree char *s3 = NULL;
  g_autoptr(GHashTable) t =
      sbx_registry_parse_challenge("bearer  Realm=https://x/t , service=x", &s3);
  g_assert_nonnull(t);
  g_assert_cmpstr(g_hash_table_lookup(t, "realm"), ==, "https://x/t");
  g_assert_cmpstr(g_hash_table_lookup(t, "service"), ==, "x");

  const char *bad[] = {"",
                       "   ",
                       "Bearer realm=\"unterminated",
                       "Bearer realm=\"a\nb\"",
                       "Bearer =x",
                       "Bearer realm=\"x\"junk",
                       NULL};
  for (const char **h = bad; *h; h++) {
    g_autofree char *s = NULL;
    g_autoptr(GHashTable) x = sbx_registry_parse_challenge(*h, &s);
    g_assert_null(x);
  }
  g_autofree char *huge = g_strnfill(10000, 'a');
  g_autofree char *s4 = NULL;
  g_assert_null(sbx_registry_parse_challenge(huge, &s4));
}

static void test_auth_file(void)
{
  g_autofree char *dir = th_tmpdir_new();
  g_autofree char *file = g_build_filename(dir, "containers", "auth.json", NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true(sbx_auth_store(file, "127.0.0.1:5000", "alice", "s3:cret", &err));
  g_assert_no_error(err);
  g_assert_true(sbx_auth_store(file, "quay.io", "bob", "pw", &err));
  char *files[] = {file, NULL};
  g_autofree char *u = NULL, *p = NULL;
  g_assert_true(sbx_auth_lookup(files, "127.0.0.1:5000", "busybox", &u, &p));
  g_assert_cmpstr(u, ==, "alice");
  g_assert_cmpstr(p, ==, "s3:cret");
  g_autofree char *u2 = NULL, *p2 = NULL;
  g_assert_false(sbx_auth_lookup(files, "127.0.0.1:5001", "busybox", &u2, &p2));
  g_assert_true(sbx_auth_remove(file, "127.0.0.1:5000", &err));
  g_assert_no_error(err);
  g_assert_false(sbx_auth_lookup(files, "127.0.0.1:5000", "busybox", &u2, &p2));
  g_assert_false(sbx_auth_remove(file, "127.0.0.1:5000", &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_NOT_FOUND);
  g_clear_error(&err);

  /* docker's config.json keys; the most specific key wins. */
  g_autofree char *docker = g_build_filename(dir, "config.json", NULL);
  th_write_string(dir, "config.json",
                  "{\"auths\": {\"https://index.docker.io/v1/\": {\"auth\": \"aHViOmh1YnB3\"},"
                  " \"quay.io\": {\"auth\": \"cmVnOnJlZ3B3\"},"
                  " \"quay.io/org/app\": {\"auth\": \"cmVwbzpyZXBvcHc=\"},"
                  " \"bad.io\": {\"auth\": \"!!notbase64\"}}}");
  char *dfiles[] = {docker, NULL};
  g_autofree char *u3 = NULL, *p3 = NULL, *u4 = NULL, *p4 = NULL, *u5 = NULL, *p5 = NULL;
  g_assert_true(sbx_auth_lookup(dfiles, "docker.io", "library/busybox", &u3, &p3));
  g_assert_cmpstr(u3, ==, "hub");
  g_assert_cmpstr(p3, ==, "hubpw");
  g_assert_true(sbx_auth_lookup(dfiles, "quay.io", "org/app", &u4, &p4));
  g_assert_cmpstr(u4, ==, "repo");
  g_assert_true(sbx_auth_lookup(dfiles, "quay.io", "org/other", &u5, &p5));
  g_assert_cmpstr(u5, ==, "reg");
  g_autofree char *u6 = NULL, *p6 = NULL;
  g_assert_false(sbx_auth_lookup(dfiles, "bad.io", "x", &u6, &p6));
  /* Not JSON: ignored for reading, refused for writing. */
  th_write_string(dir, "broken.json", "{not json");
  g_autofree char *broken = g_build_filename(dir, "broken.json", NULL);
  char *bfiles[] = {broken, NULL};
  g_assert_false(sbx_auth_lookup(bfiles, "quay.io", "x", &u6, &p6));
  g_assert_false(sbx_auth_store(broken, "quay.io", "a", "b", &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  th_tmpdir_remove(dir);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/reference/docker-hub", test_ref_docker_hub);
  g_test_add_func("/reference/registries", test_ref_registries);
  g_test_add_func("/reference/digests", test_ref_digests);
  g_test_add_func("/reference/hostile", test_ref_hostile);
  g_test_add_func("/registry/challenge", test_challenge);
  g_test_add_func("/registry/auth-file", test_auth_file);
  return g_test_run();
}
