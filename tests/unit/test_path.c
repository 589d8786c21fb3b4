/* Unit tests for src/util/path.c: lexical member names and fd-relative
 * lookups beneath a root, with openat2 and with the O_NOFOLLOW fallback. */
#include "helpers.h"
#include "sbx/path.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <signal.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* ---- lexical: sbx_path_normalize_member ---- */

static void assert_normalizes(const char *in, const char *want)
{
  g_autoptr(GError) err = NULL;
  g_autofree char *got = sbx_path_normalize_member(in, &err);
  g_assert_no_error(err);
  g_assert_cmpstr(got, ==, want);
}

static void assert_member_refused(const char *in, const char *msg_part)
{
  g_autoptr(GError) err = NULL;
  g_autofree char *got = sbx_path_normalize_member(in, &err);
  g_assert_null(got);
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  if (msg_part)
    g_assert_nonnull(strstr(err->message, msg_part));
}

static void test_normalize_accepts(void)
{
  assert_normalizes("./a", "a");
  assert_normalizes("a//b", "a/b");
  assert_normalizes("a/./b/.", "a/b");
  assert_normalizes(".", "");
  assert_normalizes("./", "");
  assert_normalizes("a/b/", "a/b");
  assert_normalizes("usr/lib/x.so", "usr/lib/x.so");
  assert_normalizes("..a/b..", "..a/b..");
  assert_normalizes(".wh..wh..opq", ".wh..wh..opq");
}

static void test_normalize_refuses(void)
{
  assert_member_refused("/abs", "absolute");
  assert_member_refused("//abs", "absolute");
  assert_member_refused("a/../b", "'..'");
  assert_member_refused("..", "'..'");
  assert_member_refused("a/..", "'..'");
  assert_member_refused("./../x", "'..'");
  assert_member_refused(NULL, NULL);
}

static void test_normalize_length(void)
{
  g_autofree char *longest = g_strnfill(PATH_MAX - 1, 'a');
  assert_normalizes(longest, longest);
  g_autofree char *too_long = g_strnfill(PATH_MAX, 'a');
  assert_member_refused(too_long, "too long");
  g_autofree char *way_too_long = g_strnfill(PATH_MAX * 4, 'b');
  assert_member_refused(way_too_long, "too long");
}

/* ---- lexical: sbx_path_resolve_link / sbx_path_split ---- */

static void assert_link(const char *member, const char *target, const char *want)
{
  g_autoptr(GError) err = NULL;
  g_autofree char *got = sbx_path_resolve_link(member, target, &err);
  if (want) {
    g_assert_no_error(err);
    g_assert_cmpstr(got, ==, want);
  } else {
    g_assert_null(got);
    g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "outside"));
  }
}

static void test_resolve_link(void)
{
  /* podman save: <id>/layer.tar -> ../<diffhex>.tar */
  assert_link("abc/layer.tar", "../def.tar", "def.tar");
  assert_link("abc/layer.tar", "def.tar", "abc/def.tar");
  assert_link("a/b/c", "./d/../e", "a/b/e");
  assert_link("a/b/c", "../../x", "x");
  assert_link("top", "x//y/", "x/y");
  assert_link("abc/layer.tar", "../../x", NULL);
  assert_link("top", "../x", NULL);
  assert_link("a/b", "/etc/passwd", NULL);
  assert_link("a/b", "/def.tar", NULL);
  g_autofree char *huge = g_strnfill(PATH_MAX, 'x');
  assert_link("a/b", huge, NULL);
}

static void assert_split(const char *path, const char *dir, const char *base)
{
  g_autofree char *d = NULL, *b = NULL;
  sbx_path_split(path, &d, &b);
  g_assert_cmpstr(d, ==, dir);
  g_assert_cmpstr(b, ==, base);
}

static void test_split(void)
{
  assert_split("a/b/c", "a/b", "c");
  assert_split("c", "", "c");
  assert_split("a/b", "a", "b");
  assert_split("", "", "");
  assert_split("a/", "a", "");
}

/* ---- a tree on disk: base/root (the root) and base/outside ---- */

typedef struct {
  char *base, *root, *outside;
  int rootfd;
} Tree;

static void tree_init(Tree *t)
{
  t->base = th_tmpdir_new();
  t->root = g_build_filename(t->base, "root", NULL);
  t->outside = g_build_filename(t->base, "outside", NULL);
  g_assert_cmpint(g_mkdir(t->root, 0755), ==, 0);
  g_assert_cmpint(g_mkdir(t->outside, 0755), ==, 0);
  t->rootfd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint(t->rootfd, >=, 0);
}

static void tree_clear(Tree *t)
{
  close(t->rootfd);
  th_tmpdir_remove(t->base);
  g_free(t->base);
  g_free(t->root);
  g_free(t->outside);
}

static void tree_symlink(Tree *t, const char *target, const char *rel)
{
  g_autofree char *path = g_build_filename(t->root, rel, NULL);
  g_assert_cmpint(symlink(target, path), ==, 0);
}

static void assert_same_dir(int fd, const char *path)
{
  struct stat a, b;
  g_assert_cmpint(fstat(fd, &a), ==, 0);
  g_assert_cmpint(stat(path, &b), ==, 0);
  g_assert_true(S_ISDIR(a.st_mode));
  g_assert_cmpuint(a.st_ino, ==, b.st_ino);
  g_assert_cmpuint(a.st_dev, ==, b.st_dev);
}

static char *read_fd(int fd)
{
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  g_assert_cmpint(n, >=, 0);
  return g_strndup(buf, (gsize)n);
}

static void beneath_refused(Tree *t, const char *path, gboolean create)
{
  g_autoptr(GError) err = NULL;
  int fd = sbx_open_dir_beneath(t->rootfd, path, create, &err);
  g_assert_cmpint(fd, ==, -1);
  g_assert_nonnull(err);
  g_assert_true(err->domain == SBX_ERROR || err->domain == SBX_ERRNO_ERROR);
}

/* A known bug (reported, not fixed here) marks the test incomplete instead
 * of failing it. A child of run_without_openat2 passes it to its parent
 * through the file named by $SBX_UNIT_KNOWN_BUG. */
static void known_bug(const char *what)
{
  const char *file = g_getenv("SBX_UNIT_KNOWN_BUG");
  if (g_test_subprocess() && file) {
    g_autoptr(GError) err = NULL;
    g_file_set_contents(file, what, -1, &err);
    g_assert_no_error(err);
    return;
  }
  g_test_fail_printf("regression: %s", what);
}

/* Runs `check` in a child process where openat2 fails with ENOSYS (a seccomp
 * filter, as on a kernel before 5.6), before sbx_have_openat2() first caches
 * its answer. */
static void run_without_openat2(void (*check)(void))
{
  if (g_test_subprocess()) {
    th_deny_syscall("openat2");
    g_assert_false(sbx_have_openat2());
    check();
    return;
  }
  g_autofree char *dir = th_tmpdir_new();
  g_autofree char *file = g_build_filename(dir, "known-bug", NULL);
  g_setenv("SBX_UNIT_KNOWN_BUG", file, TRUE);
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv("SBX_UNIT_KNOWN_BUG");
  g_autofree char *bug = NULL;
  g_file_get_contents(file, &bug, NULL, NULL);
  th_tmpdir_remove(dir);
  g_test_trap_assert_passed();
  if (bug)
    g_test_fail_printf("regression: %s", bug);
}

/* ---- sbx_open_dir_beneath ---- */

static void check_dir_beneath_create(void)
{
  Tree t;
  tree_init(&t);
  g_autoptr(GError) err = NULL;
  int fd = sbx_open_dir_beneath(t.rootfd, "a/b/c", TRUE, &err);
  g_assert_no_error(err);
  g_autofree char *abc = g_build_filename(t.root, "a/b/c", NULL);
  assert_same_dir(fd, abc);
  struct stat st;
  g_assert_cmpint(stat(abc, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0755);
  close(fd);
  fd = sbx_open_dir_beneath(t.rootfd, "a//b/./c/", FALSE, &err);
  g_assert_no_error(err);
  assert_same_dir(fd, abc);
  close(fd);
  fd = sbx_open_dir_beneath(t.rootfd, "", FALSE, &err);
  g_assert_no_error(err);
  assert_same_dir(fd, t.root);
  close(fd);
  beneath_refused(&t, "missing", FALSE);
  g_assert_false(th_exists(t.root, "missing"));
  tree_clear(&t);
}

static void check_dir_beneath_symlinks(void)
{
  Tree t;
  tree_init(&t);
  tree_symlink(&t, t.outside, "esc");
  tree_symlink(&t, "/etc", "etc");
  tree_symlink(&t, "..", "up");
  g_autofree char *insub = g_build_filename(t.root, "in/sub", NULL);
  g_assert_cmpint(g_mkdir_with_parents(insub, 0755), ==, 0);
  tree_symlink(&t, "in", "inner");
  th_write_string(t.root, "file", "x");

  beneath_refused(&t, "esc", FALSE);
  beneath_refused(&t, "esc/new", TRUE);
  beneath_refused(&t, "etc", FALSE);
  beneath_refused(&t, "etc/ssl", FALSE);
  beneath_refused(&t, "up", FALSE);
  beneath_refused(&t, "up/outside/new", TRUE);
  beneath_refused(&t, "inner/sub", FALSE); /* no symlink at all, even inside */
  beneath_refused(&t, "inner/new", TRUE);
  beneath_refused(&t, "../outside", FALSE);
  beneath_refused(&t, "../outside/new", TRUE);
  beneath_refused(&t, "file/x", TRUE);
  g_assert_false(th_exists(t.outside, "new"));
  g_assert_false(th_exists(t.root, "in/new"));
  tree_clear(&t);
}

static void test_dir_beneath_create(void)
{
  check_dir_beneath_create();
}

static void test_dir_beneath_symlinks(void)
{
  check_dir_beneath_symlinks();
}

static void test_dir_beneath_create_fallback(void)
{
  run_without_openat2(check_dir_beneath_create);
}

static void test_dir_beneath_symlinks_fallback(void)
{
  run_without_openat2(check_dir_beneath_symlinks);
}

/* ---- sbx_open_in_root ---- */

/* root/etc/sbx-marker says "inside"; root/abs -> /etc (absolute). */
static void tree_with_etc(Tree *t)
{
  tree_init(t);
  th_write_string(t->root, "etc/sbx-unit-marker", "inside");
  th_write_string(t->outside, "secret", "outside");
  tree_symlink(t, "/etc", "abs");
  tree_symlink(t, t->outside, "toout");
}

static void assert_in_root_reads(Tree *t, const char *path, const char *want)
{
  g_autoptr(GError) err = NULL;
  int fd = sbx_open_in_root(t->rootfd, path, O_RDONLY, 0, &err);
  if (want == NULL) {
    g_assert_cmpint(fd, ==, -1);
    g_assert_nonnull(err);
    return;
  }
  g_assert_no_error(err);
  g_assert_cmpint(fd, >=, 0);
  g_autofree char *got = read_fd(fd);
  close(fd);
  g_assert_cmpstr(got, ==, want);
}

static void check_open_in_root(void)
{
  Tree t;
  tree_with_etc(&t);
  gboolean in_root = sbx_have_openat2(); /* the fallback refuses symlinks */
  assert_in_root_reads(&t, "/etc/sbx-unit-marker", "inside");
  assert_in_root_reads(&t, "etc/sbx-unit-marker", "inside");
  assert_in_root_reads(&t, "abs/sbx-unit-marker", in_root ? "inside" : NULL);
  assert_in_root_reads(&t, "/../../etc/sbx-unit-marker", in_root ? "inside" : NULL);
  /* Never the host's files: */
  assert_in_root_reads(&t, "abs/passwd", NULL);
  assert_in_root_reads(&t, "/etc/passwd", NULL);
  assert_in_root_reads(&t, "toout/secret", NULL);
  g_autoptr(GError) err = NULL;
  int fd = sbx_open_in_root(t.rootfd, "abs/created", O_WRONLY | O_CREAT | O_EXCL, 0644, &err);
  g_assert_cmpint(fd >= 0, ==, in_root);
  if (fd >= 0)
    close(fd);
  g_assert_cmpint(th_exists(t.root, "etc/created"), ==, in_root);
  g_clear_error(&err);
  fd = sbx_open_in_root(t.rootfd, "toout/created", O_WRONLY | O_CREAT, 0644, &err);
  g_assert_cmpint(fd, ==, -1);
  g_assert_false(th_exists(t.outside, "created"));
  tree_clear(&t);
}

static void test_open_in_root(void)
{
  check_open_in_root();
}

static void test_open_in_root_fallback(void)
{
  run_without_openat2(check_open_in_root);
}

/* ---- sbx_mkdir_in_root ---- */

static void check_mkdir_in_root(void)
{
  Tree t;
  tree_init(&t);
  g_autoptr(GError) err = NULL;
  int fd = sbx_mkdir_in_root(t.rootfd, "/x/y/z", 0700, &err);
  g_assert_no_error(err);
  g_autofree char *xyz = g_build_filename(t.root, "x/y/z", NULL);
  assert_same_dir(fd, xyz);
  close(fd);
  struct stat st;
  g_assert_cmpint(stat(xyz, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0700);
  fd = sbx_mkdir_in_root(t.rootfd, "x/y/z/", 0700, &err); /* exists: fine */
  g_assert_no_error(err);
  assert_same_dir(fd, xyz);
  close(fd);
  th_write_string(t.root, "file", "x");
  fd = sbx_mkdir_in_root(t.rootfd, "/file/sub", 0755, &err);
  g_assert_cmpint(fd, ==, -1);
  g_assert_nonnull(err);
  tree_clear(&t);
}

/* root/s -> <outside> (an absolute host path): inside the root it names
 * root/<outside>, which exists; the host's <outside> must stay empty. */
static void check_mkdir_in_root_symlink(void)
{
  Tree t;
  tree_init(&t);
  g_autofree char *shadow = g_build_filename(t.root, t.outside, NULL);
  g_assert_cmpint(g_mkdir_with_parents(shadow, 0755), ==, 0);
  tree_symlink(&t, t.outside, "s");
  g_autoptr(GError) err = NULL;
  int fd = sbx_mkdir_in_root(t.rootfd, "/s/newdir", 0755, &err);
  g_assert_false(th_exists(t.outside, "newdir"));
  if (sbx_have_openat2()) {
    g_assert_no_error(err);
    g_autofree char *want = g_build_filename(shadow, "newdir", NULL);
    assert_same_dir(fd, want);
    close(fd);
  } else {
    g_assert_cmpint(fd, ==, -1);
    g_assert_nonnull(err);
  }
  tree_clear(&t);
}

/* ".." at the root stays at the root, as the kernel resolves it there. */
static void check_mkdir_in_root_dotdot(void)
{
  Tree t;
  tree_init(&t);
  g_autoptr(GError) err = NULL;
  int fd = sbx_mkdir_in_root(t.rootfd, "/../escaped", 0755, &err);
  gboolean escaped = th_exists(t.base, "escaped");
  if (sbx_have_openat2())
    g_assert_true(th_exists(t.root, "escaped"));
  if (fd >= 0)
    close(fd);
  g_clear_error(&err);
  int up = sbx_open_in_root(t.rootfd, "..", O_RDONLY | O_DIRECTORY, 0, &err);
  gboolean up_outside = FALSE;
  if (up >= 0) {
    struct stat a, b;
    g_assert_cmpint(fstat(up, &a), ==, 0);
    g_assert_cmpint(fstat(t.rootfd, &b), ==, 0);
    up_outside = a.st_ino != b.st_ino;
    close(up);
  }
  tree_clear(&t);
  if (!sbx_have_openat2() && (escaped || up_outside)) {
    /* KNOWN BUG (reported): the fallback of sbx_open_in_root opens a final
     * ".." component with openat(), leaving the root. */
    known_bug("sbx_open_in_root fallback: \"..\" leaves the root");
    return;
  }
  g_assert_false(escaped);
  g_assert_false(up_outside);
}

static void test_mkdir_in_root(void)
{
  check_mkdir_in_root();
}

static void test_mkdir_in_root_symlink(void)
{
  check_mkdir_in_root_symlink();
}

static void test_mkdir_in_root_dotdot(void)
{
  check_mkdir_in_root_dotdot();
}

static void test_mkdir_in_root_fallback(void)
{
  run_without_openat2(check_mkdir_in_root);
}

static void test_mkdir_in_root_symlink_fallback(void)
{
  run_without_openat2(check_mkdir_in_root_symlink);
}

static void test_mkdir_in_root_dotdot_fallback(void)
{
  run_without_openat2(check_mkdir_in_root_dotdot);
}

static void test_have_openat2(void)
{
  struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC};
  int fd = (int)syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
  if (fd < 0) {
    g_test_skip("the kernel has no openat2");
    return;
  }
  close(fd);
  g_assert_true(sbx_have_openat2());
}

/* ---- sbx_rm_rf_at: any depth, a bounded number of descriptors ---- */

static void test_rm_rf_deep(void)
{
  g_autofree char *tmp = th_tmpdir_new();
  g_autofree char *top = g_build_filename(tmp, "tree", NULL);
  g_assert_cmpint(g_mkdir(top, 0755), ==, 0);
  /* a name the removal would pick for a directory it moves up */
  th_write_string(top, ".sbx-rm.0/.sbx-rm.1/f", "x");
  int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  for (int i = 0; i < 4200; i++) { /* deeper than the old limit (4096) and than 64 fds */
    g_assert_cmpint(mkdirat(fd, "d", 0755), ==, 0);
    if (i % 700 == 0) {
      int f = openat(fd, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      g_assert_cmpint(f, >=, 0);
      close(f);
      g_assert_cmpint(mkdirat(fd, "empty", 0755), ==, 0);
      g_assert_cmpint(mkdirat(fd, "locked", 0), ==, 0); /* mode 000 */
    }
    int next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(next, >=, 0);
    close(fd);
    fd = next;
  }
  close(fd);
  struct rlimit saved, low;
  g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
  low = saved;
  low.rlim_cur = 64;
  g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
  g_autoptr(GError) err = NULL;
  gboolean ok = sbx_rm_rf_at(AT_FDCWD, top, &err);
  g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
  g_assert_no_error(err);
  g_assert_true(ok);
  g_assert_false(g_file_test(top, G_FILE_TEST_EXISTS));
  /* a file, and something absent, are fine too */
  th_write_string(tmp, "plain", "x");
  g_autofree char *plain = g_build_filename(tmp, "plain", NULL);
  g_assert_true(sbx_rm_rf_at(AT_FDCWD, plain, NULL));
  g_assert_true(sbx_rm_rf_at(AT_FDCWD, top, NULL));
  th_tmpdir_remove(tmp);
}

/* ---- sbx_write_file_atomic: a failed write names the file ---- */

static void test_write_atomic_names_file(void)
{
  g_autofree char *tmp = th_tmpdir_new();
  g_autofree char *sub = g_build_filename(tmp, "images", NULL);
  g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
  int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint(dfd, >=, 0);
  /* A file-size limit makes write(2) fail (EFBIG) as a full disk would. */
  struct rlimit saved, low;
  g_assert_cmpint(getrlimit(RLIMIT_FSIZE, &saved), ==, 0);
  low = saved;
  low.rlim_cur = 16;
  void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
  g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &low), ==, 0);
  char big[4096];
  memset(big, 'x', sizeof big);
  g_autoptr(GError) err = NULL;
  gboolean ok = sbx_write_file_atomic(dfd, "images/abc.json", big, sizeof big, 0600, &err);
  g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &saved), ==, 0);
  signal(SIGXFSZ, old);
  g_assert_false(ok);
  g_assert_nonnull(err);
  g_assert_cmpstr(err->message, ==, "write images/abc.json: File too large");
  g_assert_cmpint(sbx_error_errno(err), ==, EFBIG);
  /* nothing left behind: neither the file nor its temporary */
  g_autoptr(GDir) d = g_dir_open(sub, 0, NULL);
  g_assert_null(g_dir_read_name(d));
  close(dfd);
  th_tmpdir_remove(tmp);
}

int main(int argc, char **argv)
{
  /* The parent tests the openat2 path; children deny it themselves. */
  umask(022);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/path/normalize/accepts", test_normalize_accepts);
  g_test_add_func("/path/normalize/refuses", test_normalize_refuses);
  g_test_add_func("/path/normalize/length", test_normalize_length);
  g_test_add_func("/path/resolve-link", test_resolve_link);
  g_test_add_func("/path/split", test_split);
  g_test_add_func("/path/rm-rf/deep", test_rm_rf_deep);
  g_test_add_func("/path/write-atomic/names-file", test_write_atomic_names_file);
  g_test_add_func("/path/have-openat2", test_have_openat2);
  g_test_add_func("/path/dir-beneath/create", test_dir_beneath_create);
  g_test_add_func("/path/dir-beneath/symlinks", test_dir_beneath_symlinks);
  g_test_add_func("/path/dir-beneath/create-fallback", test_dir_beneath_create_fallback);
  g_test_add_func("/path/dir-beneath/symlinks-fallback", test_dir_beneath_symlinks_fallback);
  g_test_add_func("/path/open-in-root/basic", test_open_in_root);
  g_test_add_func("/path/open-in-root/fallback", test_open_in_root_fallback);
  g_test_add_func("/path/mkdir-in-root/basic", test_mkdir_in_root);
  g_test_add_func("/path/mkdir-in-root/symlink", test_mkdir_in_root_symlink);
  g_test_add_func("/path/mkdir-in-root/dotdot", test_mkdir_in_root_dotdot);
  g_test_add_func("/path/mkdir-in-root/basic-fallback", test_mkdir_in_root_fallback);
  g_test_add_func("/path/mkdir-in-root/symlink-fallback", test_mkdir_in_root_symlink_fallback);
  g_test_add_func("/path/mkdir-in-root/dotdot-fallback", test_mkdir_in_root_dotdot_fallback);
  return g_test_run();
}
