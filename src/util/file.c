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
  if (!sbx_write_all(fd, buf, len, err) || fsync(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
    int e = errno;
    unlinkat(dirfd, tmp, 0);
    if (err && *err)
      return FALSE;
    return sbx_fail_errnum(err, e, "write %s", name);
  }
  return TRUE;
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

/* The names are read first and the listing closed before recursing: one fd
 * per level of the tree, not two. */
static gboolean rm_rf_depth(int dirfd, const char *name, int depth, GError **err);

static gboolean rm_rf_dir_contents(int dfd, int depth, GError **err)
{
  if (depth > 4096)
    return sbx_fail(err, SBX_ERROR_FAILED, "remove: directory tree too deep");
  int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
  if (dup_fd < 0)
    return sbx_fail_errno(err, "remove");
  DIR *d = fdopendir(dup_fd);
  if (!d) {
    close(dup_fd);
    return sbx_fail_errno(err, "remove");
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      g_ptr_array_add(names, g_strdup(de->d_name));
  closedir(d);
  for (guint i = 0; i < names->len; i++)
    if (!rm_rf_depth(dfd, names->pdata[i], depth, err))
      return FALSE;
  return TRUE;
}

static gboolean rm_rf_depth(int dirfd, const char *name, int depth, GError **err)
{
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
    return TRUE;
  if (errno != EISDIR && errno != EPERM)
    return sbx_fail_errno(err, "remove %s", name);
  sbx_autofd fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return TRUE;
    return sbx_fail_errno(err, "remove %s", name);
  }
  /* A directory we cannot list (mode 000) is made listable: it is ours. */
  fchmod(fd, 0700);
  if (!rm_rf_dir_contents(fd, depth + 1, err))
    return FALSE;
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return sbx_fail_errno(err, "remove %s", name);
  return TRUE;
}

gboolean sbx_rm_rf_at(int dirfd, const char *name, GError **err)
{
  return rm_rf_depth(dirfd, name, 0, err);
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
