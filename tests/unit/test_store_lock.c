/* A layer's lock file (src/store/store.c sbx_store_lock_layer): prune
 * unlinks it while holding it exclusively, so a locker that waited on the
 * old inode must notice and lock the file now at that name; a store that is
 * read-only or out of inodes still locks the files it has. */
#include "helpers.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
  char *dir;
  SbxStore *store;
  char *lock_path;
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
  (void)data;
  f->dir = th_tmpdir_new();
  SbxIdMap map = {.mode = SBX_USERNS_SINGLE, .uid = getuid(), .gid = getgid()};
  SbxSettings set = {0};
  g_autoptr(GError) err = NULL;
  f->store = sbx_store_open(f->dir, &map, &set, &err);
  g_assert_no_error(err);
  f->lock_path = g_strdup_printf("%s/locks/single-%s.lock", f->dir, HEX);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
  (void)data;
  sbx_store_free(f->store);
  th_tmpdir_remove(f->dir);
  g_free(f->dir);
  g_free(f->lock_path);
}

static gpointer lock_shared(gpointer data)
{
  Fixture *f = data;
  g_autoptr(GError) err = NULL;
  int fd = sbx_store_lock_layer(f->store, "single", HEX, LOCK_SH, TRUE, &err);
  g_assert_no_error(err);
  return GINT_TO_POINTER(fd);
}

/* The race: a locker blocks on the inode prune holds; prune unlinks it and
 * lets go. The locker must end up holding the file at the name (created
 * again), which a later prune would see held, not the unlinked one. */
static void test_unlinked_while_waiting(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) err = NULL;
  int held = sbx_store_lock_layer(f->store, "single", HEX, LOCK_EX, TRUE, &err);
  g_assert_no_error(err);
  g_assert_cmpint(held, >=, 0);
  struct stat old;
  g_assert_cmpint(fstat(held, &old), ==, 0);
  GThread *t = g_thread_new("locker", lock_shared, f);
  g_usleep(200 * 1000); /* the locker is waiting in flock by now */
  g_assert_cmpint(unlink(f->lock_path), ==, 0);
  close(held);
  int fd = GPOINTER_TO_INT(g_thread_join(t));
  g_assert_cmpint(fd, >=, 0);
  struct stat got, named;
  g_assert_cmpint(fstat(fd, &got), ==, 0);
  g_assert_cmpint(stat(f->lock_path, &named), ==, 0);
  g_assert_cmpuint(got.st_ino, ==, named.st_ino);
  g_assert_cmpuint(got.st_nlink, ==, 1);
  /* and a prune's try now finds it held */
  int again = sbx_store_lock_layer(f->store, "single", HEX, LOCK_EX | LOCK_NB, FALSE, &err);
  g_assert_cmpint(again, ==, -1);
  g_assert_cmpint(errno, ==, EWOULDBLOCK);
  g_assert_no_error(err);
  close(fd);
}

/* Without create a missing file is ENOENT; an existing one is locked
 * even where nothing could be created. */
static void test_missing_without_create(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) err = NULL;
  int fd = sbx_store_lock_layer(f->store, "single", HEX, LOCK_EX | LOCK_NB, FALSE, &err);
  g_assert_cmpint(fd, ==, -1);
  g_assert_cmpint(errno, ==, ENOENT);
  g_assert_error(err, SBX_ERRNO_ERROR, ENOENT);
  g_assert_true(g_str_has_suffix(err->message, "single-" HEX ".lock: No such file or directory"));
  g_clear_error(&err);
  th_write_string(f->dir, "locks/single-" HEX ".lock", "");
  g_autofree char *locks = g_build_filename(f->dir, "locks", NULL);
  g_assert_cmpint(chmod(locks, 0500), ==, 0);
  fd = sbx_store_lock_layer(f->store, "single", HEX, LOCK_SH, TRUE, &err);
  g_assert_no_error(err);
  g_assert_cmpint(fd, >=, 0);
  close(fd);
  g_assert_cmpint(chmod(locks, 0700), ==, 0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add("/store/lock/unlinked-while-waiting", Fixture, NULL, fixture_set_up,
             test_unlinked_while_waiting, fixture_tear_down);
  g_test_add("/store/lock/missing-without-create", Fixture, NULL, fixture_set_up,
             test_missing_without_create, fixture_tear_down);
  return g_test_run();
}
