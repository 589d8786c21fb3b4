/* Unit tests for the pure parts of src/ns/user.c: /etc/subuid parsing, the
 * id map key and membership, --userns parsing. */
#include "helpers.h"
#include "sbx/user.h"
#include "sbx/util.h"

#include <string.h>

static const char subuid[] = "# comment: alice:1:2\n"
                             "#alice:5:5\n"
                             "\n"
                             "alice:100000:65536\n"
                             "alice:900000:10\n"
                             "bob:200000:0\n"
                             "bob:300000:1000\n"
                             "1001:400000:5000\n"
                             "carol:abc:100\n"
                             "carol:-5:100\n"
                             "dave:1:2:3\n"
                             "dave\n"
                             "frank:5000000000:1\n"
                             "frank:7:99999999999\n"
                             "  eve:500000:10  \r\n"
                             "malformed line without colons\n"
                             "gina:600000:20";

typedef struct {
  char *dir;
  char *file;
} Fx;

static void fx_setup(Fx *f, gconstpointer data)
{
  f->dir = th_tmpdir_new();
  th_write_string(f->dir, "subuid", subuid);
  f->file = g_build_filename(f->dir, "subuid", NULL);
}

static void fx_teardown(Fx *f, gconstpointer data)
{
  th_tmpdir_remove(f->dir);
  g_free(f->dir);
  g_free(f->file);
}

static void assert_range(Fx *f, const char *user, uid_t uid, guint64 start, guint64 count)
{
  guint64 s = 0, c = 0;
  g_assert_true(sbx_subid_lookup(f->file, user, uid, &s, &c));
  g_assert_cmpuint(s, ==, start);
  g_assert_cmpuint(c, ==, count);
}

static void assert_no_range(Fx *f, const char *user, uid_t uid)
{
  guint64 s = 77, c = 88;
  g_assert_false(sbx_subid_lookup(f->file, user, uid, &s, &c));
  g_assert_cmpuint(s, ==, 77); /* untouched */
  g_assert_cmpuint(c, ==, 88);
}

static void test_lookup_by_name(Fx *f, gconstpointer data)
{
  assert_range(f, "alice", 5000, 100000, 65536); /* the first range */
  assert_range(f, "eve", 5001, 500000, 10);      /* blanks stripped */
  assert_range(f, "gina", 5002, 600000, 20);     /* no final newline */
  assert_no_range(f, "zed", 5003);
  assert_no_range(f, "ali", 5003);
  assert_no_range(f, "", 5003);
}

static void test_lookup_by_uid(Fx *f, gconstpointer data)
{
  assert_range(f, "someone", 1001, 400000, 5000);
  assert_no_range(f, "someone", 1002);
  assert_no_range(f, "someone", 100);
  /* The first line that names the user either way wins. */
  assert_range(f, "alice", 1001, 100000, 65536);
}

static void test_lookup_skips_bad_lines(Fx *f, gconstpointer data)
{
  assert_range(f, "bob", 5000, 300000, 1000); /* count 0 skipped */
  assert_no_range(f, "carol", 5000);          /* start not a number */
  assert_no_range(f, "dave", 5000);           /* four fields, one field */
  assert_no_range(f, "frank", 5000);          /* out of the 32-bit range */
  assert_no_range(f, "#alice", 5000);         /* a comment */
  assert_no_range(f, "malformed line without colons", 5000);
}

static void test_lookup_missing_file(void)
{
  guint64 s = 1, c = 1;
  g_assert_false(sbx_subid_lookup("/nonexistent/sbx/subuid", "root", 0, &s, &c));
  g_assert_cmpuint(s, ==, 1);
}

static SbxIdMap range_map(guint64 us, guint64 uc, guint64 gs, guint64 gc)
{
  return (SbxIdMap){.mode = SBX_USERNS_RANGE,
                    .uid = 1000,
                    .gid = 1000,
                    .subuid_start = us,
                    .subuid_count = uc,
                    .subgid_start = gs,
                    .subgid_count = gc};
}

static void test_idmap_key(void)
{
  SbxIdMap single = {.mode = SBX_USERNS_SINGLE, .uid = 1000, .gid = 1000};
  SbxIdMap a = range_map(100000, 65536, 100000, 65536);
  SbxIdMap a2 = range_map(100000, 65536, 100000, 65536);
  SbxIdMap b = range_map(200000, 65536, 100000, 65536);
  SbxIdMap c = range_map(100000, 65536, 100000, 1000);
  g_autofree char *ks = sbx_idmap_key(&single);
  g_autofree char *ka = sbx_idmap_key(&a);
  g_autofree char *ka2 = sbx_idmap_key(&a2);
  g_autofree char *kb = sbx_idmap_key(&b);
  g_autofree char *kc = sbx_idmap_key(&c);
  g_assert_cmpstr(ka, ==, ka2);
  g_assert_cmpstr(ks, !=, ka);
  g_assert_cmpstr(ka, !=, kb);
  g_assert_cmpstr(ka, !=, kc);
  g_assert_cmpstr(kb, !=, kc);
  /* Usable as a directory name. */
  const char *keys[] = {ks, ka, kb, kc};
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
    g_assert_null(strchr(keys[i], '/'));
    g_assert_cmpstr(keys[i], !=, "");
    g_assert_cmpstr(keys[i], !=, ".");
    g_assert_cmpstr(keys[i], !=, "..");
  }
}

static void test_idmap_has_single(void)
{
  SbxIdMap m = {.mode = SBX_USERNS_SINGLE, .uid = 1000, .gid = 1000};
  g_assert_true(sbx_idmap_has_uid(&m, 0));
  g_assert_true(sbx_idmap_has_gid(&m, 0));
  g_assert_false(sbx_idmap_has_uid(&m, 1));
  g_assert_false(sbx_idmap_has_uid(&m, 1000)); /* the host id is not a container id */
  g_assert_false(sbx_idmap_has_gid(&m, 1));
  g_assert_false(sbx_idmap_has_uid(&m, G_MAXUINT64));
}

static void test_idmap_has_range(void)
{
  /* 0 -> the caller, 1..count -> start..start+count-1 */
  SbxIdMap m = range_map(100000, 65536, 200000, 1000);
  g_assert_true(sbx_idmap_has_uid(&m, 0));
  g_assert_true(sbx_idmap_has_uid(&m, 1));
  g_assert_true(sbx_idmap_has_uid(&m, 65536));
  g_assert_false(sbx_idmap_has_uid(&m, 65537));
  g_assert_false(sbx_idmap_has_uid(&m, 100000));
  g_assert_true(sbx_idmap_has_gid(&m, 1000));
  g_assert_false(sbx_idmap_has_gid(&m, 1001));
  g_assert_true(sbx_idmap_has_uid(&m, 1001)); /* uid and gid ranges are separate */
}

static void test_userns_mode_parse(void)
{
  const struct {
    const char *s;
    SbxUsernsMode m;
  } ok[] = {{"auto", SBX_USERNS_AUTO}, {"single", SBX_USERNS_SINGLE}, {"range", SBX_USERNS_RANGE}};
  for (guint i = 0; i < G_N_ELEMENTS(ok); i++) {
    g_autoptr(GError) err = NULL;
    SbxUsernsMode m = (SbxUsernsMode)99;
    g_assert_true(sbx_userns_mode_parse(ok[i].s, &m, &err));
    g_assert_no_error(err);
    g_assert_cmpint(m, ==, ok[i].m);
  }
  const char *bad[] = {"bogus", "Single", "", "range "};
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) err = NULL;
    SbxUsernsMode m = (SbxUsernsMode)99;
    g_assert_false(sbx_userns_mode_parse(bad[i], &m, &err));
    g_assert_error(err, SBX_ERROR, SBX_ERROR_USAGE);
    g_autofree char *quoted = g_strdup_printf("'%s'", bad[i]);
    g_assert_nonnull(strstr(err->message, quoted));
    g_assert_cmpint(m, ==, 99);
  }
}

static void add_fx(const char *path, void (*fn)(Fx *, gconstpointer))
{
  g_test_add(path, Fx, NULL, fx_setup, fn, fx_teardown);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  add_fx("/user/subid/by-name", test_lookup_by_name);
  add_fx("/user/subid/by-uid", test_lookup_by_uid);
  add_fx("/user/subid/bad-lines", test_lookup_skips_bad_lines);
  g_test_add_func("/user/subid/missing-file", test_lookup_missing_file);
  g_test_add_func("/user/idmap/key", test_idmap_key);
  g_test_add_func("/user/idmap/has-single", test_idmap_has_single);
  g_test_add_func("/user/idmap/has-range", test_idmap_has_range);
  g_test_add_func("/user/userns-mode-parse", test_userns_mode_parse);
  return g_test_run();
}
