/* Unit tests for registries.conf (src/registry/regconf.c and the toml++
 * shim regconf-toml.cc): parsing, short-name candidates, endpoints. */
#include "sbx/regconf.h"
#include "sbx/util.h"

#include <string.h>

static SbxRegConf *parse(const char *text, GError **err)
{
  return sbx_regconf_parse(text, strlen(text), "registries.conf: test", err);
}

static char *candidates(const SbxRegConf *c, const char *input)
{
  g_autoptr(GError) err = NULL;
  g_auto(GStrv) v = sbx_regconf_candidates(c, input, &err);
  g_assert_no_error(err);
  return g_strjoinv(" ", v);
}

static char *endpoints(const SbxRegConf *c, const char *ref)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(GArray) a = sbx_regconf_endpoints(c, ref, &err);
  g_assert_no_error(err);
  g_autoptr(GString) s = g_string_new(NULL);
  for (guint i = 0; i < a->len; i++) {
    const SbxRegEndpoint *e = &g_array_index(a, SbxRegEndpoint, i);
    g_string_append_printf(s, "%s%s%s", i ? " " : "", e->reference, e->insecure ? "!" : "");
  }
  return g_string_free(g_steal_pointer(&s), FALSE);
}

static void check(char *got, const char *want)
{
  g_assert_cmpstr(got, ==, want);
  g_free(got);
}

static void test_search_and_aliases(void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxRegConf) c =
      parse("# comment\n"
            "unqualified-search-registries = ['quay.io', \"r.example:5000\"]\n"
            "short-name-mode = \"permissive\"\n"
            "[aliases]\n"
            "\"app\" = \"ghcr.io/org/app\"\n"
            "\"pinned\" = \"ghcr.io/org/p:2\"\n",
            &err);
  g_assert_no_error(err);
  check(candidates(c, "busybox"), "quay.io/busybox r.example:5000/busybox");
  check(candidates(c, "busybox:1.36"), "quay.io/busybox:1.36 r.example:5000/busybox:1.36");
  check(candidates(c, "app"), "ghcr.io/org/app");
  check(candidates(c, "app:3"), "ghcr.io/org/app:3");
  check(candidates(c, "pinned:9"), "ghcr.io/org/p:2");
  check(candidates(c, "localhost/x"), "localhost/x");
  check(candidates(c, "docker.io/library/busybox"), "docker.io/library/busybox");
}

static void test_local_candidates(void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxRegConf) c = parse("unqualified-search-registries = [\"a.io\", \"b.io:5000\"]\n"
                                  "[aliases]\n\"app\" = \"ghcr.io/org/app\"\n",
                                  &err);
  g_assert_no_error(err);
  /* Enforcing mode, two registries: a pull would refuse, a lookup lists all. */
  g_auto(GStrv) v = sbx_regconf_local_candidates(c, "busybox:1");
  g_autofree char *got = g_strjoinv(" ", v);
  g_assert_cmpstr(got, ==, "localhost/busybox:1 a.io/busybox:1 b.io:5000/busybox:1");
  g_auto(GStrv) a = sbx_regconf_local_candidates(c, "app:3");
  g_autofree char *got_a = g_strjoinv(" ", a);
  g_assert_cmpstr(got_a, ==, "ghcr.io/org/app:3 localhost/app:3 a.io/app:3 b.io:5000/app:3");
  g_auto(GStrv) full = sbx_regconf_local_candidates(c, "quay.io/x/y:2");
  g_autofree char *got_f = g_strjoinv(" ", full);
  g_assert_cmpstr(got_f, ==, "quay.io/x/y:2");
  g_autoptr(SbxRegConf) empty = parse("", &err);
  g_auto(GStrv) e = sbx_regconf_local_candidates(empty, "busybox");
  g_autofree char *got_e = g_strjoinv(" ", e);
  g_assert_cmpstr(got_e, ==, "localhost/busybox busybox");
}

static void test_enforcing(void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxRegConf) c = parse("unqualified-search-registries = [\"a.io\", \"b.io\"]\n", &err);
  g_assert_no_error(err);
  g_auto(GStrv) v = sbx_regconf_candidates(c, "busybox", &err);
  g_assert_null(v);
  g_assert_nonnull(strstr(err->message, "short name busybox is ambiguous: it could come from "
                                        "a.io, b.io"));
  g_clear_error(&err);
  g_autoptr(SbxRegConf) none = parse("unqualified-search-registries = []\n", &err);
  g_auto(GStrv) v2 = sbx_regconf_candidates(none, "busybox", &err);
  g_assert_null(v2);
  g_assert_nonnull(strstr(err->message, "no unqualified-search-registries"));
  g_clear_error(&err);
  /* No key: Docker Hub, as without a file. */
  g_autoptr(SbxRegConf) empty = parse("", &err);
  g_assert_no_error(err);
  check(candidates(empty, "busybox"), "busybox");
}

static void test_registries(void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxRegConf) c = parse("[[registry]]\n"
                                  "location = \"docker.io\"\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"m1.local:5000\"\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"m2.local/hub\"\n"
                                  "insecure = true\n"
                                  "[[registry]]\n"
                                  "prefix = \"example.com/foo\"\n"
                                  "location = \"internal.local:8443/bar\"\n"
                                  "insecure = true\n"
                                  "[[registry]]\n"
                                  "location = \"bad.io\"\n"
                                  "blocked = true\n",
                                  &err);
  g_assert_no_error(err);
  check(endpoints(c, "busybox"),
        "m1.local:5000/library/busybox:latest m2.local/hub/library/busybox:latest! "
        "docker.io/library/busybox:latest");
  check(endpoints(c, "example.com/foo/app:1"), "internal.local:8443/bar/app:1!");
  /* A prefix matches whole components only. */
  check(endpoints(c, "example.com/foobar/app:1"), "example.com/foobar/app:1");
  check(endpoints(c, "quay.io/x/y@sha256:"
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        "quay.io/x/y@sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  g_autoptr(GArray) a = sbx_regconf_endpoints(c, "bad.io/app", &err);
  g_assert_null(a);
  g_assert_nonnull(strstr(err->message, "registry bad.io is blocked"));
}

/* containers-registries.conf(5): "*.example.com" matches the hosts below
 * example.com (not example.com itself), the most specific prefix wins, and
 * a wildcard keeps the name: mirrors get what follows the host. */
static void test_wildcards(void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxRegConf) c = parse("[[registry]]\n"
                                  "prefix = \"*.example.com\"\n"
                                  "insecure = true\n"
                                  "[[registry]]\n"
                                  "prefix = \"*.b.example.com\"\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"mirror.local:5000/b\"\n"
                                  "[[registry]]\n"
                                  "prefix = \"*.blocked.example.com\"\n"
                                  "blocked = true\n"
                                  "[[registry]]\n"
                                  "prefix = \"c.b.example.com/team\"\n"
                                  "location = \"internal.local/team\"\n",
                                  &err);
  g_assert_no_error(err);
  check(endpoints(c, "a.example.com/app:1"), "a.example.com/app:1!");
  check(endpoints(c, "x.y.example.com:5000/app@sha256:"
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        "x.y.example.com:5000/app@sha256:"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad!");
  /* Subdomains only, and whole labels. */
  check(endpoints(c, "example.com/app:1"), "example.com/app:1");
  check(endpoints(c, "badexample.com/app:1"), "badexample.com/app:1");
  check(endpoints(c, "a.example.com.evil.io/app:1"), "a.example.com.evil.io/app:1");
  check(endpoints(c, "evil.io/a.example.com/app:1"), "evil.io/a.example.com/app:1");
  /* The more specific wildcard wins: its mirror, then the host itself. */
  check(endpoints(c, "a.b.example.com/ns/app:2"),
        "mirror.local:5000/b/ns/app:2 a.b.example.com/ns/app:2");
  check(endpoints(c, "b.example.com/app:2"), "b.example.com/app:2!");
  /* A longer plain prefix beats a wildcard. */
  check(endpoints(c, "c.b.example.com/team/app:3"), "internal.local/team/app:3");
  check(endpoints(c, "c.b.example.com/other:3"),
        "mirror.local:5000/b/other:3 c.b.example.com/other:3");
  g_autoptr(GArray) a = sbx_regconf_endpoints(c, "x.blocked.example.com/app", &err);
  g_assert_null(a);
  g_assert_nonnull(strstr(err->message, "registry *.blocked.example.com is blocked"));
}

#define DIGEST "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* containers-registries.conf(5): mirror-by-digest-only = true keeps every
 * mirror to pulls by digest; else each mirror's pull-from-mirror chooses
 * (digest-only, tag-only, all). A tag and a digest together: by digest. */
static void test_mirror_usage(void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxRegConf) c = parse("[[registry]]\n"
                                  "location = \"a.io\"\n"
                                  "mirror-by-digest-only = true\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"ma.local\"\n"
                                  "[[registry]]\n"
                                  "location = \"b.io\"\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"digest.local\"\n"
                                  "pull-from-mirror = \"digest-only\"\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"tag.local\"\n"
                                  "pull-from-mirror = \"tag-only\"\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"all.local\"\n"
                                  "pull-from-mirror = \"all\"\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"default.local\"\n"
                                  "pull-from-mirror = \"\"\n"
                                  "[[registry]]\n"
                                  "location = \"c.io\"\n"
                                  "mirror-by-digest-only = false\n"
                                  "[[registry.mirror]]\n"
                                  "location = \"mc.local\"\n",
                                  &err);
  g_assert_no_error(err);
  check(endpoints(c, "a.io/app:1"), "a.io/app:1");
  check(endpoints(c, "a.io/app@" DIGEST), "ma.local/app@" DIGEST " a.io/app@" DIGEST);
  check(endpoints(c, "a.io/app:1@" DIGEST), "ma.local/app:1@" DIGEST " a.io/app:1@" DIGEST);
  check(endpoints(c, "b.io/app:1"),
        "tag.local/app:1 all.local/app:1 default.local/app:1 b.io/app:1");
  check(endpoints(c, "b.io/app@" DIGEST), "digest.local/app@" DIGEST " all.local/app@" DIGEST
                                          " default.local/app@" DIGEST " b.io/app@" DIGEST);
  check(endpoints(c, "c.io/app"), "mc.local/app:latest c.io/app:latest");
}

/* podman's keys sbx does not use, and that could only add to what it does:
 * read without complaint. */
static void test_podman_keys_read(void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxRegConf) c = parse("credential-helpers = [\"containers-auth.json\"]\n"
                                  "additional-layer-store-auth-helper = \"helper\"\n",
                                  &err);
  g_assert_no_error(err);
}

static void test_refused(void)
{
  const struct {
    const char *text, *reason;
  } cases[] = {
      {"unqualified-search-registries = [\"a\"\n", "line "},
      {"[[registry]\n", "line 1"},
      {"unqualified-search-registries = \"quay.io\"\n", "unqualified-search-registries"},
      {"unqualified-search-registries = [1]\n", "unqualified-search-registries"},
      {"short-name-mode = \"sometimes\"\n", "short-name-mode"},
      {"[[registry]]\nlocation = 5\n", "location"},
      {"[[registry]]\ninsecure = true\n", "needs a location"},
      {"[[registry]]\nlocation = \"https://quay.io\"\n", "not a registry location"},
      {"[[registry]]\nprefix = \"*.example.com\"\nlocation = \"a.io\"\n",
       "a wildcard prefix (*.example.com) cannot have a location"},
      {"[[registry]]\nprefix = \"*.example.com:5000\"\n", "is not a wildcard prefix"},
      {"[[registry]]\nprefix = \"*.example.com/ns\"\n", "is not a wildcard prefix"},
      {"[[registry]]\nprefix = \"example.*.com\"\n", "not a registry location"},
      {"[[registry]]\nprefix = \"*example.com\"\n", "is not a wildcard prefix"},
      {"[[registry]]\nprefix = \"*.\"\n", "is not a wildcard prefix"},
      {"[[registry]]\nprefix = \"*.*.com\"\n", "is not a wildcard prefix"},
      {"[[registry]]\nprefix = \"*..com\"\n", "is not a wildcard prefix"},
      {"[[registry]]\nlocation = \"a.io\"\nblocked = \"yes\"\n", "blocked"},
      {"[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n",
       "needs a location"},
      {"[aliases]\n\"x\" = \"Not A Ref\"\n", "not an image reference"},
      {"registry = 3\n", "registry"},
      {"a = \"\\u0000\xff\"\n", "registries.conf: test"},
      /* A key sbx does not know is refused, never dropped (it could loosen). */
      {"[[registry]]\nlocation = \"a.io\"\nblokced = true\n", "unknown key 'blokced'"},
      {"[[registry]]\nlocation = \"a.io\"\nmirror-by-digest = true\n",
       "[[registry]] 1: unknown key 'mirror-by-digest'"},
      {"[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\n"
       "pull-from = \"digest-only\"\n",
       "mirror 1: unknown key 'pull-from'"},
      {"unqualified-search-registry = [\"a.io\"]\n", "unknown key 'unqualified-search-registry'"},
      {"unqualified-search-registries = [\"a.io\"]\n[registries.block]\nregistries = [\"b.io\"]\n",
       "version 1) cannot be mixed with version 2 keys"},
      {"[registries.block]\nregistry = [\"a.io\"]\n", "unknown key 'registry'"},
      {"[registries.other]\nregistries = [\"a.io\"]\n", "unknown key 'other'"},
      {"[registries.insecure]\nregistries = [\"https://a.io\"]\n", "not a registry location"},
      {"[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = \"yes\"\n",
       "mirror-by-digest-only"},
      {"[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n",
       "pull-from-mirror belongs in a [[registry.mirror]] table"},
      {"[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\n"
       "pull-from-mirror = \"sometimes\"\n",
       "pull-from-mirror: 'sometimes' is not all, digest-only or tag-only"},
      {"[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\n"
       "pull-from-mirror = 1\n",
       "pull-from-mirror"},
      {"[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n"
       "[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"tag-only\"\n",
       "pull-from-mirror cannot be set when the registry has mirror-by-digest-only = true"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) err = NULL;
    g_autoptr(SbxRegConf) c = parse(cases[i].text, &err);
    if (c || !strstr(err->message, cases[i].reason))
      g_error("case %u: %s", i, c ? "accepted" : err->message);
    g_assert_nonnull(strstr(err->message, "registries.conf: test"));
  }
}

/* Version 1, as podman still reads it: the three lists. */
static void test_version_1(void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxRegConf) c = parse("[registries.search]\nregistries = ['r.io:5000']\n"
                                  "[registries.insecure]\nregistries = ['127.0.0.1:5000']\n"
                                  "[registries.block]\nregistries = ['bad.io', '127.0.0.1:5000']\n",
                                  &err);
  g_assert_no_error(err);
  check(candidates(c, "busybox"), "r.io:5000/busybox");
  check(endpoints(c, "quay.io/a/b:1"), "quay.io/a/b:1");
  g_autoptr(GArray) a = sbx_regconf_endpoints(c, "bad.io/x", &err);
  g_assert_null(a);
  g_assert_nonnull(strstr(err->message, "registry bad.io is blocked"));
  g_clear_error(&err);
  /* insecure and blocked both: blocked */
  g_autoptr(GArray) b = sbx_regconf_endpoints(c, "127.0.0.1:5000/x", &err);
  g_assert_null(b);
  g_clear_error(&err);
  g_autoptr(SbxRegConf) d = parse("[registries.insecure]\nregistries = ['127.0.0.1:5000']\n", &err);
  g_assert_no_error(err);
  check(endpoints(d, "127.0.0.1:5000/x:1"), "127.0.0.1:5000/x:1!");
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/regconf/search-and-aliases", test_search_and_aliases);
  g_test_add_func("/regconf/enforcing", test_enforcing);
  g_test_add_func("/regconf/local-candidates", test_local_candidates);
  g_test_add_func("/regconf/registries", test_registries);
  g_test_add_func("/regconf/wildcards", test_wildcards);
  g_test_add_func("/regconf/refused", test_refused);
  g_test_add_func("/regconf/version-1", test_version_1);
  g_test_add_func("/regconf/mirror-usage", test_mirror_usage);
  g_test_add_func("/regconf/podman-keys-read", test_podman_keys_read);
  return g_test_run();
}
