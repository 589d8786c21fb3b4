/* Untrusted paths: lexical normalisation and fd-relative resolution. */
#include "sbx/path.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

char *sbx_path_normalize_member(const char *name, GError **err)
{
  if (name == NULL || strlen(name) >= PATH_MAX) {
    sbx_fail(err, SBX_ERROR_INVALID, "member name too long or missing");
    return NULL;
  }
  if (name[0] == '/') {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: absolute path", name);
    return NULL;
  }
  GString *out = g_string_sized_new(strlen(name));
  g_auto(GStrv) parts = g_strsplit(name, "/", -1);
  for (char **p = parts; *p; p++) {
    if (**p == '\0' || strcmp(*p, ".") == 0)
      continue;
    if (strcmp(*p, "..") == 0) {
      g_string_free(out, TRUE);
      sbx_fail(err, SBX_ERROR_INVALID, "%s: path contains '..'", name);
      return NULL;
    }
    if (out->len)
      g_string_append_c(out, '/');
    g_string_append(out, *p);
  }
  return g_string_free(out, FALSE);
}

char *sbx_path_resolve_link(const char *member, const char *target, GError **err)
{
  if (target[0] == '/' || strlen(member) + strlen(target) + 2 >= PATH_MAX) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s -> %s: link points outside the archive", member, target);
    return NULL;
  }
  g_autofree char *dir = NULL, *base = NULL;
  sbx_path_split(member, &dir, &base);
  g_autoptr(GPtrArray) stack = g_ptr_array_new_with_free_func(g_free);
  g_auto(GStrv) dparts = g_strsplit(dir, "/", -1);
  for (char **p = dparts; *p; p++)
    if (**p && strcmp(*p, ".") != 0)
      g_ptr_array_add(stack, g_strdup(*p));
  g_auto(GStrv) tparts = g_strsplit(target, "/", -1);
  for (char **p = tparts; *p; p++) {
    if (**p == '\0' || strcmp(*p, ".") == 0)
      continue;
    if (strcmp(*p, "..") == 0) {
      if (stack->len == 0) {
        sbx_fail(err, SBX_ERROR_INVALID, "%s -> %s: link points outside the archive", member,
                 target);
        return NULL;
      }
      g_ptr_array_remove_index(stack, stack->len - 1);
      continue;
    }
    g_ptr_array_add(stack, g_strdup(*p));
  }
  g_ptr_array_add(stack, NULL);
  return g_strjoinv("/", (char **)stack->pdata);
}

void sbx_path_split(const char *path, char **dir, char **base)
{
  const char *slash = strrchr(path, '/');
  if (slash) {
    *dir = g_strndup(path, (gsize)(slash - path));
    *base = g_strdup(slash + 1);
  } else {
    *dir = g_strdup("");
    *base = g_strdup(path);
  }
}

gboolean sbx_have_openat2(void)
{
  static int have = -1;
  if (have < 0) {
    struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    have = fd >= 0;
    if (fd >= 0)
      close(fd);
  }
  return have;
}

static int openat2_fd(int dirfd, const char *path, int flags, mode_t mode, guint64 resolve)
{
  struct open_how how = {
      .flags = (guint64)flags, .mode = flags & O_CREAT ? mode : 0, .resolve = resolve};
  int fd;
  do
    fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd;
}

int sbx_open_dir_beneath(int dirfd, const char *path, gboolean create, GError **err)
{
  if (*path == '\0')
    return fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  if (sbx_have_openat2()) {
    int fd =
        openat2_fd(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0,
                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
    if (fd >= 0)
      return fd;
    if (errno == ELOOP || errno == EXDEV || errno == ENOTDIR) {
      sbx_fail(err, SBX_ERROR_INVALID, "%s: a path component is a symlink or not a directory",
               path);
      return -1;
    }
    if (errno != ENOENT || !create) {
      sbx_fail_errno(err, "%s", path);
      return -1;
    }
  }
  /* Walk one component at a time: O_NOFOLLOW on each makes a symlink anywhere
   * in the path an error instead of an escape. */
  sbx_autofd cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  g_auto(GStrv) parts = g_strsplit(path, "/", -1);
  for (char **p = parts; *p; p++) {
    if (**p == '\0' || strcmp(*p, ".") == 0)
      continue;
    if (strcmp(*p, "..") == 0) {
      sbx_fail(err, SBX_ERROR_INVALID, "%s: path contains '..'", path);
      return -1;
    }
    int next = openat(cur, *p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(cur, *p, 0755) < 0 && errno != EEXIST) {
        sbx_fail_errno(err, "create %s", path);
        return -1;
      }
      next = openat(cur, *p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV)
        sbx_fail(err, SBX_ERROR_INVALID, "%s: a path component is a symlink or not a directory",
                 path);
      else
        sbx_fail_errno(err, "%s", path);
      return -1;
    }
    close(cur);
    cur = next;
  }
  return sbx_steal_fd(&cur);
}

int sbx_open_in_root(int rootfd, const char *path, int flags, mode_t mode, GError **err)
{
  if (sbx_have_openat2()) {
    int fd =
        openat2_fd(rootfd, path, flags | O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (fd < 0)
      sbx_fail_errno(err, "%s", path);
    return fd;
  }
  /* Without openat2 we refuse symlinks instead of resolving them in the root. */
  g_autofree char *norm = g_strdup(path);
  while (*norm == '/')
    memmove(norm, norm + 1, strlen(norm));
  g_autofree char *dir = NULL, *base = NULL;
  sbx_path_split(norm, &dir, &base);
  /* ".." at the root stays at the root (as RESOLVE_IN_ROOT does); anywhere
   * else the walk below refuses it. */
  if (strcmp(base, "..") == 0 && *dir) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: path contains '..'", path);
    return -1;
  }
  if (strcmp(base, "..") == 0 || strcmp(base, ".") == 0) {
    g_free(base);
    base = g_strdup("");
  }
  sbx_autofd dfd = sbx_open_dir_beneath(rootfd, dir, FALSE, err);
  if (dfd < 0)
    return -1;
  int fd = openat(dfd, *base ? base : ".", flags | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    sbx_fail_errno(err, "%s", path);
  return fd;
}

static int mkdir_in_root_depth(int rootfd, const char *path, mode_t mode, int depth, GError **err)
{
  int fd = sbx_open_in_root(rootfd, path, O_RDONLY | O_DIRECTORY, 0, NULL);
  if (fd >= 0)
    return fd;
  if (depth > 40) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: too many levels of symbolic links", path);
    return -1;
  }
  g_autofree char *norm = g_strdup(path);
  while (*norm == '/')
    memmove(norm, norm + 1, strlen(norm));
  while (*norm && norm[strlen(norm) - 1] == '/')
    norm[strlen(norm) - 1] = '\0';
  g_autofree char *dir = NULL, *base = NULL;
  sbx_path_split(norm, &dir, &base);
  if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
    return sbx_open_in_root(rootfd, path, O_RDONLY | O_DIRECTORY, 0, err);
  sbx_autofd parent = mkdir_in_root_depth(rootfd, *dir ? dir : "/", 0755, depth + 1, err);
  if (parent < 0)
    return -1;
  if (mkdirat(parent, base, mode) < 0 && errno != EEXIST) {
    sbx_fail_errno(err, "create %s", path);
    return -1;
  }
  /* A dangling symlink planted in the image: create its target, inside the
   * root (an absolute target is taken relative to the root), as runc does. */
  char target[PATH_MAX];
  ssize_t n = readlinkat(parent, base, target, sizeof target - 1);
  if (n > 0) {
    target[n] = '\0';
    g_autofree char *next =
        target[0] == '/' ? g_strdup(target) : g_strconcat("/", dir, *dir ? "/" : "", target, NULL);
    return mkdir_in_root_depth(rootfd, next, mode, depth + 1, err);
  }
  /* Re-resolve from the root: base may be a symlink planted in the image. */
  return sbx_open_in_root(rootfd, path, O_RDONLY | O_DIRECTORY, 0, err);
}

int sbx_mkdir_in_root(int rootfd, const char *path, mode_t mode, GError **err)
{
  return mkdir_in_root_depth(rootfd, path, mode, 0, err);
}
