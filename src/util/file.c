/* Small file helpers: all by fd, none follows a symlink it did not expect. */
#include "sbx/util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <signal.h>

gboolean sbx_write_all(int fd, const void *buf, size_t len, GError **err)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return sbx_fail_errno(err, "write");
    }
    p += n;
    len -= (size_t)n;
  }
  return TRUE;
}

gboolean sbx_fsync_dir_at(int dirfd, const char *path, GError **err)
{
  /* dirfd may be an O_PATH descriptor, which fsync refuses: open it again. */
  sbx_autofd fd = openat(dirfd, path ? path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0 && fsync(fd) == 0)
    return TRUE;
  /* The rename is done: a directory that cannot be opened for reading, or
   * a file system that does not sync directories, leaves the durability
   * the file system gives, not a failed write. An I/O error is one. */
  if (errno == EACCES || errno == EPERM || errno == EINVAL || errno == EROFS ||
      errno == EOPNOTSUPP || errno == ENOTSUP) {
    sbx_debug("sync directory %s: %s", path ? path : ".", sbx_strerror(errno));
    return TRUE;
  }
  return sbx_fail_errno(err, "sync directory %s", path ? path : ".");
}

gboolean sbx_write_file_atomic(int dirfd, const char *name, const void *buf, size_t len,
                               mode_t mode, GError **err)
{
  g_autofree char *rnd = sbx_random_hex(4);
  /* The temporary file sits beside the final one: rename must not cross
   * directories (or file systems). */
  const char *slash = strrchr(name, '/');
  g_autofree char *tmp =
      slash ? g_strdup_printf("%.*s/.%s.%s.tmp", (int)(slash - name), name, slash + 1, rnd)
            : g_strdup_printf(".%s.%s.tmp", name, rnd);
  sbx_autofd fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return sbx_fail_errno(err, "create %s", name);
  /* The error names the file: "write: No space left on device" alone does
   * not say which of a store's files could not be written. */
  g_autoptr(GError) local = NULL;
  if (!sbx_write_all(fd, buf, len, &local) || fsync(fd) < 0 ||
      renameat(dirfd, tmp, dirfd, name) < 0) {
    int e = local ? sbx_error_errno(local) : errno;
    unlinkat(dirfd, tmp, 0);
    return sbx_fail_errnum(err, e ? e : EIO, "write %s", name);
  }
  /* The rename is an entry in the directory: without its fsync a crash may
   * forget the new name (or bring back the old file) though the data is
   * on disk. One fsync of the one directory per write. */
  g_autofree char *parent = slash ? g_strndup(name, (gsize)(slash - name)) : NULL;
  return sbx_fsync_dir_at(dirfd, parent, err);
}

gboolean sbx_write_file_at(int dirfd, const char *name, const char *content, mode_t mode,
                           GError **err)
{
  sbx_autofd fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return sbx_fail_errno(err, "create %s", name);
  return sbx_write_all(fd, content, strlen(content), err);
}

GBytes *sbx_read_fd_bounded(int fd, gsize max, const char *what, GError **err)
{
  struct stat st;
  if (fstat(fd, &st) < 0) {
    sbx_fail_errno(err, "%s", what);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: not a regular file", what);
    return NULL;
  }
  g_autoptr(GByteArray) buf = g_byte_array_new();
  guint8 chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      sbx_fail_errno(err, "read %s", what);
      return NULL;
    }
    if (n == 0)
      break;
    if (buf->len + (gsize)n > max) {
      sbx_fail(err, SBX_ERROR_INVALID, "%s: larger than %zu bytes", what, (size_t)max);
      return NULL;
    }
    g_byte_array_append(buf, chunk, (guint)n);
  }
  return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

/* The names in a directory (the listing closed before anything is done to
 * them); NULL with errno on failure, a readdir error included. */
static GPtrArray *dir_names(int dfd)
{
  int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
  DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
  if (!d) {
    int e = errno;
    if (dup_fd >= 0)
      close(dup_fd);
    errno = e;
    return NULL;
  }
  rewinddir(d);
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  struct dirent *de;
  for (;;) {
    errno = 0;
    if (!(de = readdir(d)))
      break;
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      g_ptr_array_add(names, g_strdup(de->d_name));
  }
  int e = errno;
  closedir(d);
  if (e) {
    g_ptr_array_unref(names);
    errno = e;
    return NULL;
  }
  return names;
}

typedef struct {
  const char *shown; /* the tree's path, for messages */
  int top;           /* the directory being emptied */
  guint64 hoisted;   /* names given to directories moved up into it */
  dev_t dev;         /* its file system: the walk stays on it */
  GError *first;     /* the first failure; the removal goes on past it */
  gboolean progress; /* something was removed or moved (ENOENT is not that) */
} RmRf;

/* "remove <tree>: <entry inside it>: <why>": the tree is the path the
 * caller knows; an entry's own path may be a name given it by the walk. */
static void rm_note(RmRf *r, const char *name)
{
  if (r->first)
    return;
  if (name)
    sbx_fail_errno(&r->first, "remove %s: %s", r->shown, name);
  else
    sbx_fail_errno(&r->first, "remove %s", r->shown);
}

/* One entry of a directory: a file unlinked, an empty directory removed,
 * any other directory moved up into the top one to be emptied there. */
static void rm_entry(RmRf *r, int dfd, const char *name)
{
  if (unlinkat(dfd, name, 0) == 0) {
    r->progress = TRUE;
    return;
  }
  if (errno == ENOENT)
    return;
  if (errno != EISDIR && errno != EPERM) {
    rm_note(r, name);
    return;
  }
  if (unlinkat(dfd, name, AT_REMOVEDIR) == 0) {
    r->progress = TRUE;
    return;
  }
  if (errno == ENOENT)
    return;
  if (dfd == r->top)
    return; /* emptied by the caller */
  /* Moving a directory rewrites its "..": it must be writable (ours). */
  (void)!fchmodat(dfd, name, 0700, AT_SYMLINK_NOFOLLOW);
  for (;;) {
    g_autofree char *up = g_strdup_printf(".sbx-rm.%" G_GUINT64_FORMAT, r->hoisted++);
    if (renameat2(dfd, name, r->top, up, RENAME_NOREPLACE) == 0) {
      r->progress = TRUE;
      return;
    }
    if (errno != EEXIST) {
      rm_note(r, name);
      return;
    }
  }
}

/* Directory `name` in top emptied one level (its subdirectories moved up
 * into top), then removed. */
static void rm_dir_in_top(RmRf *r, const char *name)
{
  sbx_autofd fd = openat(r->top, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES && fchmodat(r->top, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
    fd = openat(r->top, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT)
      rm_note(r, name);
    return;
  }
  /* Another file system mounted there (only where the caller's mount
   * namespace has one inside the tree): not ours to empty. */
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_dev != r->dev) {
    if (!r->first)
      sbx_fail(&r->first, SBX_ERROR_FAILED, "remove %s: %s: another file system is mounted there",
               r->shown, name);
    return;
  }
  /* A directory we cannot list or change (mode 000) is made so: it is ours. */
  fchmod(fd, 0700);
  g_autoptr(GPtrArray) names = dir_names(fd);
  if (!names) {
    rm_note(r, name);
    return;
  }
  for (guint i = 0; i < names->len; i++)
    rm_entry(r, fd, names->pdata[i]);
  if (unlinkat(r->top, name, AT_REMOVEDIR) == 0)
    r->progress = TRUE;
}

/* Whatever its depth (a job's writable layer may nest directories far
 * deeper than there are file descriptors): two descriptors at a time, not
 * one per level. Every directory's subdirectories are moved up into the top
 * directory under fresh names and emptied from there, so the walk stays
 * flat. A failure does not stop it; the first is the error, at the end. */
gboolean sbx_rm_rf_in(int dirfd, const char *dir_shown, const char *name, GError **err)
{
  g_autofree char *shown = dir_shown ? g_build_filename(dir_shown, name, NULL) : g_strdup(name);
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
    return TRUE;
  if (errno != EISDIR && errno != EPERM)
    return sbx_fail_errno(err, "remove %s", shown);
  RmRf r = {.shown = shown,
            .top = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  struct stat st;
  if (r.top < 0)
    return errno == ENOENT || sbx_fail_errno(err, "remove %s", shown);
  if (fstat(r.top, &st) < 0) {
    close(r.top);
    return sbx_fail_errno(err, "remove %s", shown);
  }
  r.dev = st.st_dev;
  fchmod(r.top, 0700);
  for (;;) {
    g_autoptr(GPtrArray) names = dir_names(r.top);
    if (!names) {
      rm_note(&r, NULL);
      break;
    }
    if (names->len == 0)
      break;
    r.progress = FALSE;
    for (guint i = 0; i < names->len; i++) {
      rm_entry(&r, r.top, names->pdata[i]);
      rm_dir_in_top(&r, names->pdata[i]);
    }
    if (!r.progress)
      break; /* nothing moved: what was noted says why */
  }
  close(r.top);
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    rm_note(&r, NULL);
  if (r.first) {
    g_propagate_error(err, r.first);
    return FALSE;
  }
  return TRUE;
}

gboolean sbx_rm_rf_at(int dirfd, const char *name, GError **err)
{
  return sbx_rm_rf_in(dirfd, NULL, name, err);
}

gboolean sbx_mkdir_p(const char *path, mode_t mode, GError **err)
{
  if (g_mkdir_with_parents(path, (int)mode) < 0)
    return sbx_fail_errno(err, "create %s", path);
  return TRUE;
}

void sbx_close_fds_from(int lowfd)
{
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
    return;
#endif
  DIR *d = opendir("/proc/self/fd");
  if (!d) {
    for (int fd = lowfd; fd < 65536; fd++)
      close(fd);
    return;
  }
  int dfd = dirfd(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    int fd = atoi(de->d_name);
    if (fd >= lowfd && fd != dfd)
      close(fd);
  }
  closedir(d);
}

char *sbx_random_hex(guint nbytes)
{
  guint8 buf[32];
  nbytes = MIN(nbytes, sizeof buf);
  if (getrandom(buf, nbytes, 0) != (ssize_t)nbytes) {
    for (guint i = 0; i < nbytes; i++)
      buf[i] = (guint8)g_random_int();
  }
  GString *s = g_string_sized_new(nbytes * 2 + 1);
  for (guint i = 0; i < nbytes; i++)
    g_string_append_printf(s, "%02x", buf[i]);
  return g_string_free(s, FALSE);
}

gboolean sbx_write_value(const char *path, const char *value, GError **err)
{
  size_t len = strlen(value);
  sbx_autofd fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return sbx_fail_errno(err, "write %s", path);
  ssize_t n = write(fd, value, len);
  if (n < 0)
    return sbx_fail_errno(err, "write %s", path);
  if ((size_t)n != len)
    return sbx_fail_errnum(err, EIO, "write %s (short write)", path);
  return TRUE;
}

void sbx_child_die_with_parent(gpointer unused)
{
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}
