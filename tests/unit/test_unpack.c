/* Unit tests for src/store/unpack.c: layer tars built in memory, stored as
 * blobs of an OCI directory source, unpacked into an empty directory. */
#include "helpers.h"
#include "sbx/settings.h"
#include "sbx/source.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define NO_LIMIT    G_MAXUINT64
#define ZERO_DIGEST "sha256:0000000000000000000000000000000000000000000000000000000000000000"

typedef struct {
  char *base;    /* holds blobs/, root/ and outside/ */
  char *root;    /* the layer directory */
  char *outside; /* must stay empty */
  int rootfd;
  SbxIdMap map;
  SbxUnpackStats stats;
} Fx;

static void fx_setup(Fx *f, gconstpointer data)
{
  f->base = th_tmpdir_new();
  f->root = g_build_filename(f->base, "root", NULL);
  f->outside = g_build_filename(f->base, "outside", NULL);
  g_assert_cmpint(g_mkdir(f->root, 0755), ==, 0);
  g_assert_cmpint(g_mkdir(f->outside, 0755), ==, 0);
  f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint(f->rootfd, >=, 0);
  f->map = (SbxIdMap){.mode = SBX_USERNS_SINGLE, .uid = getuid(), .gid = getgid()};
}

static void fx_teardown(Fx *f, gconstpointer data)
{
  close(f->rootfd);
  g_free(f->stats.diff_id);
  th_tmpdir_remove(f->base);
  g_free(f->base);
  g_free(f->root);
  g_free(f->outside);
}

/* What the layer descriptor says, when not what the bytes are. */
typedef struct {
  const char *diff_id;
  gboolean no_diff_id; /* rootfs tarballs: the digest is computed */
  const char *blob_digest;
  gint64 size;
  guint64 max;
} Ref;

#define REF_DEFAULT ((Ref){.size = -1, .max = NO_LIMIT})

/* Unpack `blob` (stored bytes) whose uncompressed tar is `tar`, through an
 * OCI directory source (blobs/sha256/<hex> in f->base). */
static gboolean unpack_full(Fx *f, GBytes *blob, GBytes *tar, Ref r, GError **err)
{
  g_autofree char *hex = th_hex(blob);
  g_autofree char *member = g_strconcat("blobs/sha256/", hex, NULL);
  th_write_file(f->base, member, g_bytes_get_data(blob, NULL), g_bytes_get_size(blob));
  g_autoptr(SbxSource) src = sbx_source_open(f->base, SBX_DEFAULT_MAX_LAYER_SIZE, err);
  g_assert_nonnull(src);
  g_autoptr(SbxStream) stream = sbx_source_open_stream(src, member, err);
  g_assert_nonnull(stream);
  g_autofree char *blob_digest = g_strconcat("sha256:", hex, NULL);
  g_autofree char *diff_id = th_digest(tar);
  SbxLayerRef ref = {.member = member,
                     .blob_digest = (char *)(r.blob_digest ? r.blob_digest : blob_digest),
                     .diff_id = (char *)(r.diff_id ? r.diff_id : diff_id),
                     .size = r.size};
  if (r.no_diff_id)
    ref.diff_id = NULL;
  g_free(f->stats.diff_id);
  memset(&f->stats, 0, sizeof f->stats);
  gboolean ok = sbx_unpack_layer(stream, &ref, f->rootfd, &f->map, r.max, &f->stats, NULL, err);
  if (ok) /* the digest of what was unpacked */
    g_assert_cmpstr(f->stats.diff_id, ==, diff_id);
  return ok;
}

static void unpack_ok(Fx *f, ThTar *t)
{
  g_autoptr(GBytes) tar = th_tar_finish(t);
  g_autoptr(GError) err = NULL;
  gboolean ok = unpack_full(f, tar, tar, REF_DEFAULT, &err);
  g_assert_no_error(err);
  g_assert_true(ok);
}

/* The layer is refused with a message containing msg_part. */
static void unpack_refused(Fx *f, ThTar *t, const char *msg_part)
{
  g_autoptr(GBytes) tar = th_tar_finish(t);
  g_autoptr(GError) err = NULL;
  g_assert_false(unpack_full(f, tar, tar, REF_DEFAULT, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  if (msg_part && !strstr(err->message, msg_part))
    g_error("message '%s' lacks '%s'", err->message, msg_part);
}

static char *read_text(Fx *f, const char *rel)
{
  g_autofree char *path = g_build_filename(f->root, rel, NULL);
  char *text = NULL;
  g_autoptr(GError) err = NULL;
  g_file_get_contents(path, &text, NULL, &err);
  g_assert_no_error(err);
  return text;
}

static char *read_link(Fx *f, const char *rel)
{
  g_autofree char *path = g_build_filename(f->root, rel, NULL);
  g_autoptr(GError) err = NULL;
  char *target = g_file_read_link(path, &err);
  g_assert_no_error(err);
  return target;
}

static struct stat lstat_rel(const char *dir, const char *rel)
{
  g_autofree char *path = g_build_filename(dir, rel, NULL);
  struct stat st;
  if (lstat(path, &st) < 0)
    g_error("lstat %s: %s", path, g_strerror(errno));
  return st;
}

static void assert_file(Fx *f, const char *rel, const char *content, mode_t perm)
{
  struct stat st = lstat_rel(f->root, rel);
  g_assert_true(S_ISREG(st.st_mode));
  g_assert_cmpint(st.st_mode & 07777, ==, perm);
  g_autofree char *text = read_text(f, rel);
  g_assert_cmpstr(text, ==, content);
}

static void assert_outside_empty(Fx *f)
{
  g_autoptr(GDir) d = g_dir_open(f->outside, 0, NULL);
  g_assert_nonnull(d);
  g_assert_null(g_dir_read_name(d));
  g_assert_false(th_exists(f->base, "escape"));
  g_assert_false(th_exists(f->base, "x"));
}

/* ---- what lands ---- */

static void test_basic_tree(Fx *f, gconstpointer data)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_dir(t, "./", 0755);
  th_tar_dir(t, "etc/", 0750);
  th_tar_text(t, "etc/hosts", "127.0.0.1 localhost\n");
  th_tar_file(t, "./bin/tool", "#!/bin/sh\n", 10, 04755); /* parent made on the way */
  th_tar_symlink(t, "etc/link", "hosts");
  th_tar_symlink(t, "abs", "/etc/hosts");
  th_tar_hardlink(t, "etc/hosts2", "etc/hosts");
  th_tar_file(t, "empty", "", 0, 0600);
  unpack_ok(f, t);
  assert_file(f, "etc/hosts", "127.0.0.1 localhost\n", 0644);
  assert_file(f, "bin/tool", "#!/bin/sh\n", 04755);
  assert_file(f, "empty", "", 0600);
  struct stat etc = lstat_rel(f->root, "etc");
  g_assert_true(S_ISDIR(etc.st_mode));
  g_assert_cmpint(etc.st_mode & 07777, ==, 0750);
  g_assert_cmpint(etc.st_mtim.tv_sec, ==, 1000000000); /* restored after its entries */
  g_autofree char *l1 = read_link(f, "etc/link");
  g_autofree char *l2 = read_link(f, "abs");
  g_assert_cmpstr(l1, ==, "hosts");
  g_assert_cmpstr(l2, ==, "/etc/hosts");
  struct stat h1 = lstat_rel(f->root, "etc/hosts"), h2 = lstat_rel(f->root, "etc/hosts2");
  g_assert_cmpuint(h1.st_ino, ==, h2.st_ino);
  g_assert_cmpuint(h1.st_nlink, ==, 2);
  g_assert_cmpint(h1.st_mtim.tv_sec, ==, 1000000000);
  g_assert_cmpuint(f->stats.entries, ==, 8);
  g_assert_cmpuint(f->stats.bytes, ==, 30);
}

static void test_pax_long_names(Fx *f, gconstpointer data)
{
  g_autofree char *dir = g_strnfill(150, 'd');
  g_autofree char *name = g_strdup_printf("%s/%s", dir, "file-with-a-long-name");
  g_autofree char *target = g_strnfill(200, 't');
  ThTar *t = th_tar_new(TRUE);
  th_tar_text(t, name, "long");
  th_tar_symlink(t, "l", target);
  unpack_ok(f, t);
  assert_file(f, name, "long", 0644);
  g_autofree char *got = read_link(f, "l");
  g_assert_cmpstr(got, ==, target);
}

static void test_replace_file(Fx *f, gconstpointer data)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_text(t, "a", "old");
  th_tar_symlink(t, "b", "/etc/passwd");
  th_tar_text(t, "a", "new");
  th_tar_text(t, "b", "replaces the symlink"); /* not written through it */
  unpack_ok(f, t);
  assert_file(f, "a", "new", 0644);
  assert_file(f, "b", "replaces the symlink", 0644);
}

static void test_owners_collapse(Fx *f, gconstpointer data)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_text(t, "root-owned", "0");
  th_tar_set_owner(t, 1000, 1000);
  th_tar_text(t, "user-owned", "1");
  th_tar_set_owner(t, 0, 33);
  th_tar_text(t, "group-owned", "2");
  unpack_ok(f, t);
  g_assert_cmpuint(f->stats.collapsed_owners, ==, 2);
  struct stat st = lstat_rel(f->root, "user-owned");
  g_assert_cmpuint(st.st_uid, ==, getuid()); /* container root = the caller */
}

static void test_devices_skipped(Fx *f, gconstpointer data)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_dir(t, "dev/", 0755);
  th_tar_node(t, "dev/null", AE_IFCHR, 1, 3);
  th_tar_node(t, "dev/sda", AE_IFBLK, 8, 0);
  th_tar_text(t, "dev/after", "still here");
  unpack_ok(f, t);
  g_assert_false(th_exists(f->root, "dev/null"));
  g_assert_false(th_exists(f->root, "dev/sda"));
  g_assert_cmpuint(f->stats.skipped_devices, ==, 2);
  assert_file(f, "dev/after", "still here", 0644);
}

/* Can this process give a file to uid 0 (root, or root of a user namespace)? */
static gboolean can_chown_to_root(Fx *f)
{
  th_write_string(f->base, "probe", "");
  g_autofree char *probe = g_build_filename(f->base, "probe", NULL);
  gboolean ok = lchown(probe, 0, 0) == 0;
  unlink(probe);
  return ok;
}

static void test_fifo(Fx *f, gconstpointer data)
{
  if (!can_chown_to_root(f)) {
    g_test_skip("FIFOs are given to the container's root: needs uid 0 here");
    return;
  }
  ThTar *t = th_tar_new(FALSE);
  th_tar_node(t, "run/pipe", AE_IFIFO, 0, 0);
  unpack_ok(f, t);
  struct stat st = lstat_rel(f->root, "run/pipe");
  g_assert_true(S_ISFIFO(st.st_mode));
  g_assert_cmpint(st.st_mode & 07777, ==, 0600);
}

/* ---- what is refused ---- */

static void test_escape_dotdot(Fx *f, gconstpointer data)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_text(t, "ok", "x");
  th_tar_text(t, "../escape", "pwned");
  unpack_refused(f, t, "'..'");
  assert_outside_empty(f);
  t = th_tar_new(FALSE);
  th_tar_text(t, "a/../../escape", "pwned");
  unpack_refused(f, t, "'..'");
  t = th_tar_new(FALSE);
  th_tar_text(t, "/abs-escape", "pwned");
  unpack_refused(f, t, "absolute");
  assert_outside_empty(f);
}

static void test_symlink_then_member(Fx *f, gconstpointer data)
{
  /* A name no other process uses, to look for in /tmp afterwards. */
  g_autofree char *base = g_path_get_basename(f->base);
  g_autofree char *unique = g_strconcat(base, "-escaped", NULL);
  const char *targets[] = {f->outside, "..", "../outside", "/tmp", "."};
  for (guint i = 0; i < G_N_ELEMENTS(targets); i++) {
    g_autofree char *link = g_strdup_printf("link%u", i);
    g_autofree char *member = g_strdup_printf("link%u/%s", i, unique);
    ThTar *t = th_tar_new(FALSE);
    th_tar_symlink(t, link, targets[i]);
    th_tar_text(t, member, "pwned");
    unpack_refused(f, t, link);
    assert_outside_empty(f);
    g_assert_false(th_exists(f->base, unique));
    g_assert_false(th_exists("/tmp", unique));
    g_assert_false(th_exists(f->root, unique));
  }
}

static void test_symlink_then_dir(Fx *f, gconstpointer data)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_symlink(t, "d", f->outside);
  th_tar_dir(t, "d/", 0755);
  th_tar_dir(t, "d/sub/", 0755);
  unpack_refused(f, t, "same name");
  assert_outside_empty(f);
}

static void test_hardlink_refused(Fx *f, gconstpointer data)
{
  const char *targets[][2] = {
      {"not-in-layer", "not in this layer"},
      {"../../etc/passwd", "'..'"},
      {"/etc/passwd", "absolute"},
      {"./", "is the root"},
      {"tolink/passwd", "hardlink to tolink/passwd"}, /* through a symlinked directory */
  };
  for (guint i = 0; i < G_N_ELEMENTS(targets); i++) {
    ThTar *t = th_tar_new(FALSE);
    th_tar_symlink(t, "tolink", "/etc");
    th_tar_hardlink(t, "h", targets[i][0]);
    unpack_refused(f, t, targets[i][1]);
    g_assert_false(th_exists(f->root, "h"));
  }
}

/* A hardlink to a symlink links the symlink itself, not what it points to. */
static void test_hardlink_to_symlink(Fx *f, gconstpointer data)
{
  th_write_string(f->outside, "secret", "host");
  g_autofree char *secret = g_build_filename(f->outside, "secret", NULL);
  ThTar *t = th_tar_new(FALSE);
  th_tar_symlink(t, "s", secret);
  th_tar_hardlink(t, "h", "s");
  unpack_ok(f, t);
  struct stat st = lstat_rel(f->root, "h");
  g_assert_true(S_ISLNK(st.st_mode));
  struct stat host = lstat_rel(f->outside, "secret");
  g_assert_cmpuint(host.st_nlink, ==, 1);
}

static void test_file_and_dir_same_name(Fx *f, gconstpointer data)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_dir(t, "same/", 0755);
  th_tar_text(t, "same", "file");
  unpack_refused(f, t, "a file and a directory of the same name");
  ThTar *t2 = th_tar_new(FALSE);
  th_tar_text(t2, "other", "file");
  th_tar_dir(t2, "other/", 0755);
  unpack_refused(f, t2, "a file and a directory of the same name");
}

/* ---- whiteouts ---- */

/* Can this process make the 0:0 character device overlayfs reads? */
static gboolean can_make_whiteout(Fx *f)
{
  g_autofree char *probe = g_build_filename(f->base, "probe", NULL);
  if (mknod(probe, S_IFCHR | 0600, makedev(0, 0)) < 0)
    return FALSE;
  unlink(probe);
  return TRUE;
}

static void test_whiteout(Fx *f, gconstpointer data)
{
  if (!can_make_whiteout(f)) {
    g_test_skip("cannot create a 0:0 character device here");
    return;
  }
  ThTar *t = th_tar_new(FALSE);
  th_tar_dir(t, "etc/", 0755);
  th_tar_text(t, "etc/kept", "same layer");
  th_tar_text(t, "etc/.wh.kept", "");
  th_tar_text(t, "etc/.wh.motd", "");
  th_tar_text(t, ".wh..wh.plnk", "");
  unpack_ok(f, t);
  struct stat st = lstat_rel(f->root, "etc/motd");
  g_assert_true(S_ISCHR(st.st_mode));
  g_assert_cmpuint(st.st_rdev, ==, makedev(0, 0));
  assert_file(f, "etc/kept", "same layer", 0644);
  g_assert_false(th_exists(f->root, "etc/.wh.motd"));
  g_assert_false(th_exists(f->root, ".wh..wh.plnk"));
}

static void test_whiteout_opaque(Fx *f, gconstpointer data)
{
  if (setxattr(f->outside, "user.sbx-probe", "1", 1, 0) < 0) {
    g_test_skip("no user xattrs on this file system");
    return;
  }
  removexattr(f->outside, "user.sbx-probe");
  ThTar *t = th_tar_new(FALSE);
  th_tar_dir(t, "opt/", 0755);
  th_tar_text(t, "opt/.wh..wh..opq", "");
  unpack_ok(f, t);
  g_autofree char *opt = g_build_filename(f->root, "opt", NULL);
  char v[4] = {0};
  g_assert_cmpint(getxattr(opt, "user.overlay.opaque", v, sizeof v), ==, 1);
  g_assert_cmpstr(v, ==, "y");
  g_assert_false(th_exists(f->root, "opt/.wh..wh..opq"));
}

static void test_whiteout_refused(Fx *f, gconstpointer data)
{
  const char *names[] = {".wh..", ".wh...", "dir/.wh..", ".wh."};
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    ThTar *t = th_tar_new(FALSE);
    th_tar_text(t, names[i], "");
    unpack_refused(f, t, "whiteout of");
  }
  g_assert_false(th_exists(f->root, "dir/.wh.."));
}

/* Layer xattrs must not forge overlay metadata; other user xattrs are kept. */
static void test_overlay_xattr_dropped(Fx *f, gconstpointer data)
{
  if (setxattr(f->outside, "user.sbx-probe", "1", 1, 0) < 0) {
    g_test_skip("no user xattrs on this file system");
    return;
  }
  ThTar *t = th_tar_new(TRUE);
  const char *xattrs[] = {"user.kept", "v", "user.overlay.redirect", "/etc", "user.overlay.opaque",
                          "y",         NULL};
  th_tar_file_xattrs(t, "f", "x", xattrs);
  unpack_ok(f, t);
  g_autofree char *p = g_build_filename(f->root, "f", NULL);
  char v[8] = {0};
  g_assert_cmpint(getxattr(p, "user.kept", v, sizeof v), ==, 1);
  g_assert_cmpstr(v, ==, "v");
  g_assert_cmpint(getxattr(p, "user.overlay.redirect", NULL, 0), ==, -1);
  g_assert_cmpint(getxattr(p, "user.overlay.opaque", NULL, 0), ==, -1);
}

/* ---- digests, compression, limits ---- */

static ThTar *small_layer(void)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_text(t, "hello", "world");
  return t;
}

static void test_wrong_diff_id(Fx *f, gconstpointer data)
{
  g_autoptr(GBytes) tar = th_tar_finish(small_layer());
  g_autoptr(GError) err = NULL;
  Ref r = REF_DEFAULT;
  r.diff_id = ZERO_DIGEST;
  g_assert_false(unpack_full(f, tar, tar, r, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_nonnull(strstr(err->message, "digest mismatch"));
}

static void test_gzip_layer(Fx *f, gconstpointer data)
{
  ThTar *t = small_layer();
  th_tar_text(t, "dir/more", "compressed");
  g_autoptr(GBytes) tar = th_tar_finish(t);
  g_autoptr(GBytes) gz = th_gzip(tar);
  g_assert_cmpuint(((const guint8 *)g_bytes_get_data(gz, NULL))[0], ==, 0x1f);
  g_autoptr(GError) err = NULL;
  g_assert_true(unpack_full(f, gz, tar, REF_DEFAULT, &err));
  g_assert_no_error(err);
  assert_file(f, "hello", "world", 0644);
  assert_file(f, "dir/more", "compressed", 0644);
}

static void test_gzip_wrong_diff_id(Fx *f, gconstpointer data)
{
  g_autoptr(GBytes) tar = th_tar_finish(small_layer());
  g_autoptr(GBytes) gz = th_gzip(tar);
  g_autofree char *gz_digest = th_digest(gz); /* the blob digest is not the diff_id */
  g_autoptr(GError) err = NULL;
  Ref r = REF_DEFAULT;
  r.diff_id = gz_digest;
  g_assert_false(unpack_full(f, gz, tar, r, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_nonnull(strstr(err->message, "digest mismatch"));
}

static void test_computed_diff_id(Fx *f, gconstpointer data)
{
  g_autoptr(GBytes) tar = th_tar_finish(small_layer());
  g_autoptr(GBytes) gz = th_gzip(tar);
  g_autoptr(GError) err = NULL;
  Ref r = REF_DEFAULT;
  r.no_diff_id = TRUE;
  g_assert_true(unpack_full(f, gz, tar, r, &err)); /* checks stats.diff_id */
  g_assert_no_error(err);
  assert_file(f, "hello", "world", 0644);
}

static void test_wrong_blob_digest(Fx *f, gconstpointer data)
{
  g_autoptr(GBytes) tar = th_tar_finish(small_layer());
  g_autoptr(GBytes) gz = th_gzip(tar);
  g_autoptr(GError) err = NULL;
  Ref r = REF_DEFAULT;
  r.blob_digest = ZERO_DIGEST; /* the diff_id is right, the stored blob is not */
  g_assert_false(unpack_full(f, gz, tar, r, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_nonnull(strstr(err->message, "digest mismatch"));
}

static void test_wrong_size(Fx *f, gconstpointer data)
{
  g_autoptr(GBytes) tar = th_tar_finish(small_layer());
  g_autoptr(GError) err = NULL;
  Ref r = REF_DEFAULT;
  r.size = (gint64)g_bytes_get_size(tar) + 1;
  g_assert_false(unpack_full(f, tar, tar, r, &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_nonnull(strstr(err->message, "size mismatch"));
  g_clear_error(&err);
  r.size = (gint64)g_bytes_get_size(tar);
  g_assert_true(unpack_full(f, tar, tar, r, &err));
  g_assert_no_error(err);
}

static void test_max_size(Fx *f, gconstpointer data)
{
  g_autofree char *big = g_strnfill(256 * 1024, 'z');
  ThTar *t = th_tar_new(FALSE);
  th_tar_file(t, "big", big, strlen(big), 0644);
  g_autoptr(GBytes) tar = th_tar_finish(t);
  g_autoptr(GBytes) gz = th_gzip(tar);
  g_assert_cmpuint(g_bytes_get_size(gz), <, 16384); /* small blob, big layer */
  g_autoptr(GError) err = NULL;
  Ref r = REF_DEFAULT;
  r.max = 16384;
  g_assert_false(unpack_full(f, gz, tar, r, &err));
  g_assert_nonnull(err);
  g_assert_true(err->domain == SBX_ERROR);
  if (!strstr(err->message, "16384"))
    g_error("message '%s' does not name the limit", err->message);
  g_clear_error(&err);
  r.max = g_bytes_get_size(tar);
  g_assert_true(unpack_full(f, gz, tar, r, &err));
  g_assert_no_error(err);
}

/* A pax sparse file whose last hole is in no data block. */
static void test_sparse(Fx *f, gconstpointer data)
{
  ThTar *t = th_tar_new(TRUE);
  th_tar_sparse(t, "sparse", "head", 1 << 20);
  unpack_ok(f, t);
  struct stat st = lstat_rel(f->root, "sparse");
  g_assert_cmpint(st.st_size, ==, 1 << 20);
  g_autofree char *text = read_text(f, "sparse");
  g_assert_cmpstr(text, ==, "head");
}

/* The tar of small_layer() followed by `pad` zero bytes. */
static GBytes *padded_layer(gsize pad)
{
  g_autoptr(GBytes) tar = th_tar_finish(small_layer());
  gsize len = g_bytes_get_size(tar);
  guint8 *buf = g_malloc0(len + pad);
  memcpy(buf, g_bytes_get_data(tar, NULL), len);
  return g_bytes_new_take(buf, len + pad);
}

/* Bytes after the tar's end marker count against the limit too. */
static void test_max_size_trailing(Fx *f, gconstpointer data)
{
  g_autoptr(GBytes) padded = padded_layer(4 << 20);
  g_autoptr(GBytes) gz = th_gzip(padded);
  g_autoptr(GError) err = NULL;
  Ref r = REF_DEFAULT;
  r.max = 1 << 20;
  g_assert_false(unpack_full(f, gz, padded, r, &err));
  g_assert_nonnull(err);
  g_assert_nonnull(strstr(err->message, "1048576"));
}

/* The digests cover every byte, also those after the end marker. */
static void test_digest_covers_trailing(Fx *f, gconstpointer data)
{
  g_autoptr(GBytes) padded = padded_layer(100000);
  g_autoptr(GBytes) tar = th_tar_finish(small_layer());
  g_autofree char *tar_only = th_digest(tar);
  g_autoptr(GBytes) gz = th_gzip(padded);
  GBytes *blobs[] = {padded, gz};
  for (guint i = 0; i < G_N_ELEMENTS(blobs); i++) {
    g_autoptr(GError) err = NULL;
    gboolean ok = unpack_full(f, blobs[i], padded, REF_DEFAULT, &err);
    g_assert_no_error(err);
    g_assert_true(ok);
    Ref r = REF_DEFAULT;
    r.diff_id = tar_only;
    g_assert_false(unpack_full(f, blobs[i], padded, r, &err));
    g_assert_nonnull(strstr(err->message, "digest mismatch"));
  }
}

/* Every mode lands exactly, whether the file is created with it (the umask
 * takes nothing off) or set afterwards, under a strict and a usual umask. */
static void test_modes(Fx *f, gconstpointer data)
{
  static const mode_t modes[] = {0755, 0644,  0666,  0444,  0000, 0700,
                                 0777, 04755, 02711, 01755, 06777};
  static const mode_t masks[] = {077, 022, 0};
  for (guint m = 0; m < G_N_ELEMENTS(masks); m++) {
    mode_t old = umask(masks[m]);
    sbx_unpack_note_umask();
    ThTar *t = th_tar_new(FALSE);
    for (guint i = 0; i < G_N_ELEMENTS(modes); i++) {
      g_autofree char *name = g_strdup_printf("m%u-%04o", m, (unsigned)modes[i]);
      th_tar_file(t, name, "x", 1, modes[i]);
    }
    th_tar_file(t, "dup", "first", 5, 0600); /* replaced: the second entry's mode wins */
    th_tar_file(t, "dup", "second", 6, 0751);
    unpack_ok(f, t);
    for (guint i = 0; i < G_N_ELEMENTS(modes); i++) {
      g_autofree char *name = g_strdup_printf("m%u-%04o", m, (unsigned)modes[i]);
      struct stat st = lstat_rel(f->root, name);
      g_assert_cmpint(st.st_mode & 07777, ==, modes[i]);
      g_assert_cmpint(st.st_size, ==, 1);
    }
    struct stat st = lstat_rel(f->root, "dup");
    g_assert_cmpint(st.st_mode & 07777, ==, 0751);
    g_assert_cmpint(st.st_size, ==, 6);
    g_autofree char *dup = g_build_filename(f->root, "dup", NULL);
    g_assert_cmpint(g_unlink(dup), ==, 0);
    umask(old);
  }
  umask(022);
  sbx_unpack_note_umask();
}

/* A layer read out of an archive member (a docker-archive's layer.tar):
 * blocks come from the archive reader itself, and a sparse member's holes
 * still read as zeros. */
static void test_archive_member_stream(Fx *f, gconstpointer data)
{
  g_autoptr(GBytes) inner = th_tar_finish(small_layer());
  ThTar *outer = th_tar_new(TRUE);
  th_tar_file(outer, "layer.tar", g_bytes_get_data(inner, NULL), g_bytes_get_size(inner), 0644);
  th_tar_sparse(outer, "sparse", "head", 3 << 20);
  g_autoptr(GBytes) archive = th_tar_finish(outer);
  th_write_file(f->base, "archive.tar", g_bytes_get_data(archive, NULL), g_bytes_get_size(archive));
  g_autofree char *path = g_build_filename(f->base, "archive.tar", NULL);
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxSource) src = sbx_source_open(path, SBX_DEFAULT_MAX_LAYER_SIZE, &err);
  g_assert_no_error(err);

  g_autoptr(SbxStream) stream = sbx_source_open_stream(src, "layer.tar", &err);
  g_assert_no_error(err);
  g_autofree char *diff_id = th_digest(inner);
  SbxLayerRef ref = {.member = "layer.tar", .diff_id = diff_id, .size = -1};
  memset(&f->stats, 0, sizeof f->stats);
  g_assert_true(
      sbx_unpack_layer(stream, &ref, f->rootfd, &f->map, NO_LIMIT, &f->stats, NULL, &err));
  g_assert_no_error(err);
  g_assert_cmpstr(f->stats.diff_id, ==, diff_id);

  /* A gzip layer with bytes after its stream, more than the decompressor
   * reads ahead: the rest is read (and hashed) by blocks too. */
  g_autoptr(GBytes) gz = th_gzip(inner);
  gsize trailing = 3 << 20;
  guint8 *blob = g_malloc(g_bytes_get_size(gz) + trailing);
  memcpy(blob, g_bytes_get_data(gz, NULL), g_bytes_get_size(gz));
  for (gsize i = 0; i < trailing; i++)
    blob[g_bytes_get_size(gz) + i] = (guint8)(i * 7 + 1);
  g_autoptr(GBytes) blob_bytes = g_bytes_new_take(blob, g_bytes_get_size(gz) + trailing);
  ThTar *outer2 = th_tar_new(FALSE);
  th_tar_file(outer2, "layer.tar.gz", g_bytes_get_data(blob_bytes, NULL),
              g_bytes_get_size(blob_bytes), 0644);
  g_autoptr(GBytes) archive2 = th_tar_finish(outer2);
  th_write_file(f->base, "archive2.tar", g_bytes_get_data(archive2, NULL),
                g_bytes_get_size(archive2));
  g_autofree char *path2 = g_build_filename(f->base, "archive2.tar", NULL);
  g_autoptr(SbxSource) src2 = sbx_source_open(path2, SBX_DEFAULT_MAX_LAYER_SIZE, &err);
  g_assert_no_error(err);
  g_autoptr(SbxStream) gz_stream = sbx_source_open_stream(src2, "layer.tar.gz", &err);
  g_assert_no_error(err);
  g_autofree char *blob_digest = th_digest(blob_bytes);
  SbxLayerRef gz_ref = {.member = "layer.tar.gz",
                        .blob_digest = blob_digest,
                        .diff_id = diff_id,
                        .size = (gint64)g_bytes_get_size(blob_bytes)};
  g_autofree char *sub = g_build_filename(f->base, "gz-root", NULL);
  g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
  sbx_autofd subfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_free(f->stats.diff_id);
  memset(&f->stats, 0, sizeof f->stats);
  g_assert_true(
      sbx_unpack_layer(gz_stream, &gz_ref, subfd, &f->map, NO_LIMIT, &f->stats, NULL, &err));
  g_assert_no_error(err);

  g_autoptr(SbxStream) sparse = sbx_source_open_stream(src, "sparse", &err);
  g_assert_no_error(err);
  g_autoptr(GByteArray) got = g_byte_array_new();
  char buf[4096];
  const void *block;
  gssize n;
  while ((n = sbx_stream_read_block(sparse, buf, sizeof buf, &block, &err)) > 0)
    g_byte_array_append(got, block, (guint)n);
  g_assert_no_error(err);
  g_assert_cmpint(n, ==, 0);
  g_assert_cmpuint(got->len, ==, 3 << 20);
  g_assert_cmpmem(got->data, 4, "head", 4);
  for (guint i = 4; i < got->len; i++)
    if (got->data[i] != 0)
      g_error("byte %u of the sparse member is %u", i, got->data[i]);
}

/* A default ACL on the layer's directory (the store's, inherited) trims
 * new files' modes instead of the umask: every mode still lands as asked. */
static void test_modes_under_a_default_acl(Fx *f, gconstpointer data)
{
  /* posix_acl_xattr: version 2, then (tag, perm, id): user::rwx group::r-x other::--- */
  static const guint8 acl[] = {2,    0,    0, 0, 1,    0,    7,    0,    0xff, 0xff,
                               0xff, 0xff, 4, 0, 5,    0,    0xff, 0xff, 0xff, 0xff,
                               0x20, 0,    0, 0, 0xff, 0xff, 0xff, 0xff};
  if (fsetxattr(f->rootfd, "system.posix_acl_default", acl, sizeof acl, 0) < 0) {
    g_test_skip("no POSIX ACLs here");
    return;
  }
  ThTar *t = th_tar_new(FALSE);
  th_tar_file(t, "tool", "x", 1, 0755);
  th_tar_file(t, "sub/data", "y", 1, 0644);
  unpack_ok(f, t);
  g_assert_cmpint(lstat_rel(f->root, "tool").st_mode & 07777, ==, 0755);
  g_assert_cmpint(lstat_rel(f->root, "sub/data").st_mode & 07777, ==, 0644);
}

static void add_fx(const char *path, void (*fn)(Fx *, gconstpointer))
{
  g_test_add(path, Fx, NULL, fx_setup, fn, fx_teardown);
}

int main(int argc, char **argv)
{
  umask(022);
  sbx_unpack_note_umask();
  sbx_log_level = SBX_LOG_ERROR; /* no device-skipped warnings on stderr */
  g_test_init(&argc, &argv, NULL);
  add_fx("/unpack/basic-tree", test_basic_tree);
  add_fx("/unpack/pax-long-names", test_pax_long_names);
  add_fx("/unpack/replace-file", test_replace_file);
  add_fx("/unpack/modes", test_modes);
  add_fx("/unpack/modes-under-a-default-acl", test_modes_under_a_default_acl);
  add_fx("/unpack/archive-member-stream", test_archive_member_stream);
  add_fx("/unpack/owners-collapse", test_owners_collapse);
  add_fx("/unpack/devices-skipped", test_devices_skipped);
  add_fx("/unpack/fifo", test_fifo);
  add_fx("/unpack/refuse/dotdot", test_escape_dotdot);
  add_fx("/unpack/refuse/symlink-then-member", test_symlink_then_member);
  add_fx("/unpack/refuse/symlink-then-dir", test_symlink_then_dir);
  add_fx("/unpack/refuse/hardlink", test_hardlink_refused);
  add_fx("/unpack/hardlink-to-symlink", test_hardlink_to_symlink);
  add_fx("/unpack/refuse/file-and-dir", test_file_and_dir_same_name);
  add_fx("/unpack/whiteout/char-device", test_whiteout);
  add_fx("/unpack/whiteout/opaque", test_whiteout_opaque);
  add_fx("/unpack/whiteout/refused", test_whiteout_refused);
  add_fx("/unpack/overlay-xattr-dropped", test_overlay_xattr_dropped);
  add_fx("/unpack/digest/wrong-diff-id", test_wrong_diff_id);
  add_fx("/unpack/digest/gzip", test_gzip_layer);
  add_fx("/unpack/digest/gzip-wrong-diff-id", test_gzip_wrong_diff_id);
  add_fx("/unpack/digest/computed", test_computed_diff_id);
  add_fx("/unpack/digest/wrong-blob-digest", test_wrong_blob_digest);
  add_fx("/unpack/digest/wrong-size", test_wrong_size);
  add_fx("/unpack/max-size", test_max_size);
  add_fx("/unpack/sparse", test_sparse);
  add_fx("/unpack/max-size-trailing", test_max_size_trailing);
  add_fx("/unpack/digest/covers-trailing", test_digest_covers_trailing);
  return g_test_run();
}
