/* Unit tests for src/sandbox/process.c: argv (docker's override rules),
 * environment, and user resolution. */
#include "sbx/image.h"
#include "sbx/sandbox.h"
#include "sbx/util.h"

#include <pwd.h>
#include <string.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#define STRV(...) ((char *[]){__VA_ARGS__, NULL})

static void assert_argv(const SbxImageConfig *cfg, const char *ep, gboolean ep_set, char **args,
                        char **want)
{
  g_autoptr(GError) err = NULL;
  g_auto(GStrv) got = sbx_process_argv(cfg, ep, ep_set, args, &err);
  g_assert_no_error(err);
  g_assert_nonnull(got);
  if (!g_strv_equal((const char *const *)got, (const char *const *)want)) {
    g_autofree char *g = g_strjoinv(" | ", got), *w = g_strjoinv(" | ", want);
    g_error("argv: got [%s], want [%s]", g, w);
  }
}

static void assert_argv_refused(const SbxImageConfig *cfg, const char *ep, gboolean ep_set,
                                char **args)
{
  g_autoptr(GError) err = NULL;
  g_auto(GStrv) got = sbx_process_argv(cfg, ep, ep_set, args, &err);
  g_assert_null(got);
  g_assert_error(err, SBX_ERROR, SBX_ERROR_USAGE);
  g_assert_nonnull(strstr(err->message, "no command"));
}

static void test_argv_image(void)
{
  SbxImageConfig both = {.entrypoint = STRV("/ep", "-x"), .cmd = STRV("c1", "c2")};
  assert_argv(&both, NULL, FALSE, NULL, STRV("/ep", "-x", "c1", "c2"));
  assert_argv(&both, NULL, FALSE, STRV(NULL), STRV("/ep", "-x", "c1", "c2"));
  SbxImageConfig cmd_only = {.cmd = STRV("sh", "-c", "echo hi")};
  assert_argv(&cmd_only, NULL, FALSE, NULL, STRV("sh", "-c", "echo hi"));
  SbxImageConfig ep_only = {.entrypoint = STRV("/ep")};
  assert_argv(&ep_only, NULL, FALSE, NULL, STRV("/ep"));
}

static void test_argv_trailing_args(void)
{
  SbxImageConfig both = {.entrypoint = STRV("/ep"), .cmd = STRV("c1", "c2")};
  assert_argv(&both, NULL, FALSE, STRV("x", "y"), STRV("/ep", "x", "y"));
  SbxImageConfig cmd_only = {.cmd = STRV("sh")};
  assert_argv(&cmd_only, NULL, FALSE, STRV("ls", "-l"), STRV("ls", "-l"));
  SbxImageConfig none = {0};
  assert_argv(&none, NULL, FALSE, STRV("true"), STRV("true"));
}

static void test_argv_entrypoint_override(void)
{
  SbxImageConfig both = {.entrypoint = STRV("/ep", "-x"), .cmd = STRV("c1", "c2")};
  /* --entrypoint replaces Entrypoint and drops the image's Cmd. */
  assert_argv(&both, "/bin/sh", TRUE, NULL, STRV("/bin/sh"));
  assert_argv(&both, "/bin/sh", TRUE, STRV("-c", "id"), STRV("/bin/sh", "-c", "id"));
  /* One word, never split. */
  assert_argv(&both, "/bin/echo a b", TRUE, NULL, STRV("/bin/echo a b"));
}

static void test_argv_entrypoint_cleared(void)
{
  SbxImageConfig both = {.entrypoint = STRV("/ep"), .cmd = STRV("c1")};
  assert_argv(&both, "", TRUE, STRV("ls", "/"), STRV("ls", "/"));
  assert_argv(&both, NULL, TRUE, STRV("ls"), STRV("ls"));
  assert_argv_refused(&both, "", TRUE, NULL);
}

static void test_argv_nothing(void)
{
  SbxImageConfig none = {0};
  assert_argv_refused(&none, NULL, FALSE, NULL);
  assert_argv_refused(&none, NULL, FALSE, STRV(NULL));
  SbxImageConfig empty = {.entrypoint = STRV(NULL), .cmd = STRV(NULL)};
  assert_argv_refused(&empty, NULL, FALSE, NULL);
  SbxImageConfig blank = {.cmd = STRV("")};
  assert_argv_refused(&blank, NULL, FALSE, NULL);
}

/* ---- sbx_process_env ---- */

static guint count_key(char **env, const char *key)
{
  guint n = 0;
  gsize klen = strlen(key);
  for (char **e = env; *e; e++)
    if (strncmp(*e, key, klen) == 0 && (*e)[klen] == '=')
      n++;
  return n;
}

/* The single KEY=VALUE entry for key. */
static const char *env_entry(char **env, const char *key)
{
  g_assert_cmpuint(count_key(env, key), ==, 1);
  gsize klen = strlen(key);
  for (char **e = env; *e; e++)
    if (strncmp(*e, key, klen) == 0 && (*e)[klen] == '=')
      return *e;
  g_assert_not_reached();
}

static void test_env_defaults(void)
{
  SbxImageConfig cfg = {0};
  g_auto(GStrv) env = sbx_process_env(&cfg, NULL, "box", NULL);
  g_assert_cmpstr(env_entry(env, "PATH"), ==, DEFAULT_PATH);
  g_assert_cmpstr(env_entry(env, "HOSTNAME"), ==, "HOSTNAME=box");
  g_assert_cmpstr(env_entry(env, "HOME"), ==, "HOME=/");
  g_assert_cmpuint(g_strv_length(env), ==, 3);
  g_auto(GStrv) env2 = sbx_process_env(&cfg, NULL, "box", "/home/app");
  g_assert_cmpstr(env_entry(env2, "HOME"), ==, "HOME=/home/app");
}

static void test_env_image(void)
{
  SbxImageConfig cfg = {.env = STRV("PATH=/custom/bin", "FOO=bar", "EMPTY=", "A=b=c", "HOMER=x")};
  g_auto(GStrv) env = sbx_process_env(&cfg, NULL, "box", "/root");
  g_assert_cmpstr(env_entry(env, "PATH"), ==, "PATH=/custom/bin");
  g_assert_cmpstr(env_entry(env, "FOO"), ==, "FOO=bar");
  g_assert_cmpstr(env_entry(env, "EMPTY"), ==, "EMPTY=");
  g_assert_cmpstr(env_entry(env, "A"), ==, "A=b=c");
  g_assert_cmpstr(env_entry(env, "HOMER"), ==, "HOMER=x");
  g_assert_cmpstr(env_entry(env, "HOME"), ==, "HOME=/root"); /* HOMER is not HOME */
  g_assert_cmpuint(g_strv_length(env), ==, 7);
}

static void test_env_overrides(void)
{
  SbxImageConfig cfg = {.env = STRV("FOOBAR=1", "FOO=bar", "HOME=/image-home")};
  g_auto(GStrv) env = sbx_process_env(&cfg, STRV("FOO=baz", "NEW=1", "PATH=/o"), "box", "/h");
  g_assert_cmpstr(env_entry(env, "FOO"), ==, "FOO=baz");
  g_assert_cmpstr(env_entry(env, "FOOBAR"), ==, "FOOBAR=1"); /* not a prefix match */
  g_assert_cmpstr(env_entry(env, "NEW"), ==, "NEW=1");
  g_assert_cmpstr(env_entry(env, "PATH"), ==, "PATH=/o");
  g_assert_cmpstr(env_entry(env, "HOME"), ==, "HOME=/image-home"); /* the image's wins */
  g_auto(GStrv) env2 = sbx_process_env(&cfg, STRV("HOME=/mine"), "box", "/h");
  g_assert_cmpstr(env_entry(env2, "HOME"), ==, "HOME=/mine");
  g_auto(GStrv) env3 = sbx_process_env(&cfg, STRV("HOSTNAME=other"), "box", NULL);
  g_assert_cmpstr(env_entry(env3, "HOSTNAME"), ==, "HOSTNAME=other");
}

static void test_env_no_leak(void)
{
  g_setenv("SBX_UNIT_CANARY", "leaked", TRUE);
  g_setenv("LD_PRELOAD", "/tmp/evil.so", TRUE);
  SbxImageConfig cfg = {.env = STRV("X=1")};
  g_auto(GStrv) env = sbx_process_env(&cfg, STRV("Y=2"), "box", NULL);
  g_assert_cmpuint(count_key(env, "SBX_UNIT_CANARY"), ==, 0);
  g_assert_cmpuint(count_key(env, "LD_PRELOAD"), ==, 0);
  for (char **e = env; *e; e++)
    g_assert_null(strstr(*e, "leaked"));
  /* Exactly what was asked for: PATH HOSTNAME X Y HOME. */
  g_assert_cmpuint(g_strv_length(env), ==, 5);
  g_unsetenv("SBX_UNIT_CANARY");
  g_unsetenv("LD_PRELOAD");
}

/* ---- sbx_process_resolve_user (reads this machine's /etc/passwd) ---- */

static void test_resolve_user_root(void)
{
  struct passwd *pw = getpwuid(0);
  if (!pw || !g_file_test("/etc/passwd", G_FILE_TEST_IS_REGULAR)) {
    g_test_skip("no root entry in /etc/passwd");
    return;
  }
  g_autofree char *home = g_strdup(pw->pw_dir);
  const char *specs[] = {NULL, "", "0", "root"};
  for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
    g_autoptr(GError) err = NULL;
    SbxCreds c;
    g_assert_true(sbx_process_resolve_user(specs[i], &c, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(c.uid, ==, 0);
    g_assert_cmpstr(c.home, ==, home);
    g_assert_cmpstr(c.name, ==, "root");
    g_assert_cmpuint(c.ngroups, >=, 1);
    g_assert_cmpuint(c.groups[0], ==, c.gid);
    sbx_creds_clear(&c);
  }
}

static void test_resolve_user_numeric(void)
{
  if (getpwuid(4000123) != NULL) {
    g_test_skip("uid 4000123 exists here");
    return;
  }
  g_autoptr(GError) err = NULL;
  SbxCreds c;
  g_assert_true(sbx_process_resolve_user("4000123", &c, &err));
  g_assert_cmpuint(c.uid, ==, 4000123);
  g_assert_cmpuint(c.gid, ==, 0); /* docker: an unknown uid runs with gid 0 */
  g_assert_null(c.home);
  sbx_creds_clear(&c);
  g_assert_true(sbx_process_resolve_user("4000123:4000456", &c, &err));
  g_assert_no_error(err);
  g_assert_cmpuint(c.uid, ==, 4000123);
  g_assert_cmpuint(c.gid, ==, 4000456);
  sbx_creds_clear(&c);
}

static void test_resolve_user_errors(void)
{
  SbxCreds c;
  g_autoptr(GError) err = NULL;
  g_assert_false(sbx_process_resolve_user("no-such-user-sbx", &c, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_nonnull(strstr(err->message, "no-such-user-sbx"));
  sbx_creds_clear(&c);
  g_clear_error(&err);
  g_assert_false(sbx_process_resolve_user(":0", &c, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_USAGE);
  sbx_creds_clear(&c);
  g_clear_error(&err);
  g_assert_false(sbx_process_resolve_user("0:no-such-group-sbx", &c, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  sbx_creds_clear(&c);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/process/argv/image", test_argv_image);
  g_test_add_func("/process/argv/trailing-args", test_argv_trailing_args);
  g_test_add_func("/process/argv/entrypoint-override", test_argv_entrypoint_override);
  g_test_add_func("/process/argv/entrypoint-cleared", test_argv_entrypoint_cleared);
  g_test_add_func("/process/argv/nothing", test_argv_nothing);
  g_test_add_func("/process/env/defaults", test_env_defaults);
  g_test_add_func("/process/env/image", test_env_image);
  g_test_add_func("/process/env/overrides", test_env_overrides);
  g_test_add_func("/process/env/no-leak", test_env_no_leak);
  g_test_add_func("/process/user/root", test_resolve_user_root);
  g_test_add_func("/process/user/numeric", test_resolve_user_numeric);
  g_test_add_func("/process/user/errors", test_resolve_user_errors);
  return g_test_run();
}
