/* Shared helpers for the unit tests (see helpers.h). */
#include "helpers.h"
#include "sbx/digest.h"
#include "sbx/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

char *th_tmpdir_new(void)
{
  g_autoptr(GError) err = NULL;
  char *dir = g_dir_make_tmp("sbx-unit-XXXXXX", &err);
  g_assert_no_error(err);
  return dir;
}

void th_tmpdir_remove(const char *path)
{
  g_autoptr(GError) err = NULL;
  g_assert_true(sbx_rm_rf_at(AT_FDCWD, path, &err));
  g_assert_no_error(err);
}

void th_write_file(const char *dir, const char *rel, const void *data, gsize len)
{
  g_autofree char *full = g_build_filename(dir, rel, NULL);
  g_autofree char *parent = g_path_get_dirname(full);
  g_autoptr(GError) err = NULL;
  g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
  g_file_set_contents(full, data, (gssize)len, &err);
  g_assert_no_error(err);
}

void th_write_string(const char *dir, const char *rel, const char *text)
{
  th_write_file(dir, rel, text, strlen(text));
}

gboolean th_exists(const char *dir, const char *rel)
{
  g_autofree char *full = g_build_filename(dir, rel, NULL);
  struct stat st;
  return lstat(full, &st) == 0;
}

char *th_digest(GBytes *b)
{
  return sbx_digest_bytes(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
}

char *th_hex(GBytes *b)
{
  g_autofree char *d = th_digest(b);
  return g_strdup(d + strlen("sha256:"));
}

struct ThTar {
  struct archive *a;
  GByteArray *out;
  gint64 uid, gid, mtime;
};

static la_ssize_t mem_write_cb(struct archive *a, void *p, const void *buf, size_t len)
{
  g_byte_array_append(p, buf, (guint)len);
  return (la_ssize_t)len;
}

static struct archive *writer_new(GByteArray *out, int format, gboolean gzip)
{
  struct archive *a = archive_write_new();
  g_assert_cmpint(archive_write_set_format(a, format), ==, ARCHIVE_OK);
  if (gzip)
    g_assert_cmpint(archive_write_add_filter_gzip(a), ==, ARCHIVE_OK);
  archive_write_set_bytes_in_last_block(a, 1);
  g_assert_cmpint(archive_write_open(a, out, NULL, mem_write_cb, NULL), ==, ARCHIVE_OK);
  return a;
}

ThTar *th_tar_new(gboolean pax)
{
  ThTar *t = g_new0(ThTar, 1);
  t->out = g_byte_array_new();
  t->a =
      writer_new(t->out, pax ? ARCHIVE_FORMAT_TAR_PAX_RESTRICTED : ARCHIVE_FORMAT_TAR_USTAR, FALSE);
  t->mtime = 1000000000;
  return t;
}

void th_tar_set_owner(ThTar *t, gint64 uid, gint64 gid)
{
  t->uid = uid;
  t->gid = gid;
}

void th_tar_set_mtime(ThTar *t, gint64 mtime)
{
  t->mtime = mtime;
}

static struct archive_entry *entry_new(ThTar *t, const char *name, unsigned type, mode_t perm)
{
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, perm);
  archive_entry_set_uid(e, t->uid);
  archive_entry_set_gid(e, t->gid);
  archive_entry_set_mtime(e, t->mtime, 0);
  return e;
}

static void entry_write(ThTar *t, struct archive_entry *e, const void *data, gsize len)
{
  g_assert_cmpint(archive_write_header(t->a, e), ==, ARCHIVE_OK);
  if (len > 0)
    g_assert_cmpint(archive_write_data(t->a, data, len), ==, (la_ssize_t)len);
  archive_entry_free(e);
}

void th_tar_file(ThTar *t, const char *name, const void *data, gsize len, mode_t perm)
{
  struct archive_entry *e = entry_new(t, name, AE_IFREG, perm);
  archive_entry_set_size(e, (la_int64_t)len);
  entry_write(t, e, data, len);
}

void th_tar_text(ThTar *t, const char *name, const char *text)
{
  th_tar_file(t, name, text, strlen(text), 0644);
}

void th_tar_file_xattrs(ThTar *t, const char *name, const char *text, const char *const *xattrs)
{
  struct archive_entry *e = entry_new(t, name, AE_IFREG, 0644);
  archive_entry_set_size(e, (la_int64_t)strlen(text));
  for (const char *const *x = xattrs; x[0] && x[1]; x += 2)
    archive_entry_xattr_add_entry(e, x[0], x[1], strlen(x[1]));
  entry_write(t, e, text, strlen(text));
}

void th_tar_sparse(ThTar *t, const char *name, const char *text, gint64 size)
{
  struct archive_entry *e = entry_new(t, name, AE_IFREG, 0644);
  archive_entry_set_size(e, size);
  archive_entry_sparse_add_entry(e, 0, (la_int64_t)strlen(text));
  entry_write(t, e, text, strlen(text));
}

void th_tar_dir(ThTar *t, const char *name, mode_t perm)
{
  entry_write(t, entry_new(t, name, AE_IFDIR, perm), NULL, 0);
}

void th_tar_symlink(ThTar *t, const char *name, const char *target)
{
  struct archive_entry *e = entry_new(t, name, AE_IFLNK, 0777);
  archive_entry_set_symlink(e, target);
  entry_write(t, e, NULL, 0);
}

void th_tar_hardlink(ThTar *t, const char *name, const char *target)
{
  struct archive_entry *e = entry_new(t, name, AE_IFREG, 0644);
  archive_entry_set_hardlink(e, target);
  archive_entry_set_size(e, 0);
  entry_write(t, e, NULL, 0);
}

void th_tar_node(ThTar *t, const char *name, unsigned type, unsigned major, unsigned minor)
{
  struct archive_entry *e = entry_new(t, name, type, 0600);
  archive_entry_set_rdevmajor(e, major);
  archive_entry_set_rdevminor(e, minor);
  entry_write(t, e, NULL, 0);
}

GBytes *th_tar_finish(ThTar *t)
{
  g_assert_cmpint(archive_write_close(t->a), ==, ARCHIVE_OK);
  archive_write_free(t->a);
  GBytes *b = g_byte_array_free_to_bytes(t->out);
  g_free(t);
  return b;
}

GBytes *th_gzip(GBytes *data)
{
  GByteArray *out = g_byte_array_new();
  struct archive *a = writer_new(out, ARCHIVE_FORMAT_RAW, TRUE);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, "data");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, (la_int64_t)g_bytes_get_size(data));
  g_assert_cmpint(archive_write_header(a, e), ==, ARCHIVE_OK);
  g_assert_cmpint(archive_write_data(a, g_bytes_get_data(data, NULL), g_bytes_get_size(data)), ==,
                  (la_ssize_t)g_bytes_get_size(data));
  archive_entry_free(e);
  g_assert_cmpint(archive_write_close(a), ==, ARCHIVE_OK);
  archive_write_free(a);
  return g_byte_array_free_to_bytes(out);
}

void th_deny_syscall(const char *name)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  g_assert_nonnull(ctx);
  int nr = seccomp_syscall_resolve_name(name);
  g_assert_cmpint(nr, !=, __NR_SCMP_ERROR);
  g_assert_cmpint(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0), ==, 0);
  g_assert_cmpint(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), ==, 0);
  g_assert_cmpint(seccomp_load(ctx), ==, 0);
  seccomp_release(ctx);
}
