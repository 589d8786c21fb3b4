/* tmpcopyup: a tmpfs mounted over an image directory starts with a copy of
 * what the directory held (runc and crun do the same: /tmp, /run of an image
 * stay populated). Runs in the container's mount namespace before
 * pivot_root; every step is relative to a directory fd with O_NOFOLLOW, so
 * the image's symlinks are copied as links and never followed. */
#include "sbx/oci.h"
#include "sbx/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 64

static gboolean copy_file(int from, int to, const char *name, const struct stat *st, GError **err)
{
  sbx_autofd in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (in < 0)
    return sbx_fail_errno(err, "tmpcopyup: %s", name);
  sbx_autofd out =
      openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 07777);
  if (out < 0)
    return sbx_fail_errno(err, "tmpcopyup: %s", name);
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sbx_fail_errno(err, "tmpcopyup: read %s", name);
    if (n == 0)
      return TRUE;
    if (!sbx_write_all(out, buf, (gsize)n, err)) {
      g_prefix_error(err, "tmpcopyup: %s: ", name);
      return FALSE;
    }
  }
}

static gboolean copy_dir(int from, int to, int depth, GError **err);

static gboolean copy_entry(int from, int to, const char *name, int depth, GError **err)
{
  struct stat st;
  if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_fail_errno(err, "tmpcopyup: %s", name);
  gboolean ok = TRUE;
  if (S_ISDIR(st.st_mode)) {
    if (mkdirat(to, name, 0700) < 0)
      return sbx_fail_errno(err, "tmpcopyup: %s", name);
    sbx_autofd sub_from = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    sbx_autofd sub_to = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub_from < 0 || sub_to < 0)
      return sbx_fail_errno(err, "tmpcopyup: %s", name);
    ok = copy_dir(sub_from, sub_to, depth + 1, err);
  } else if (S_ISREG(st.st_mode)) {
    ok = copy_file(from, to, name, &st, err);
  } else if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlinkat(from, name, target, sizeof target - 1);
    if (n < 0)
      return sbx_fail_errno(err, "tmpcopyup: %s", name);
    target[n] = '\0';
    if (symlinkat(target, to, name) < 0)
      return sbx_fail_errno(err, "tmpcopyup: %s", name);
  } else if (S_ISFIFO(st.st_mode)) {
    if (mkfifoat(to, name, st.st_mode & 07777) < 0)
      return sbx_fail_errno(err, "tmpcopyup: %s", name);
  } else {
    return TRUE; /* device nodes and sockets: not made without privilege */
  }
  if (!ok)
    return FALSE;
  /* Owner where the user namespace maps it (EINVAL: unmapped, EPERM: no
   * CAP_CHOWN; the copier's then), then the mode (chown clears set-id bits). */
  if (fchownat(to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EINVAL &&
      errno != EPERM)
    return sbx_fail_errno(err, "tmpcopyup: %s", name);
  if (!S_ISLNK(st.st_mode) && fchmodat(to, name, st.st_mode & 07777, 0) < 0)
    return sbx_fail_errno(err, "tmpcopyup: %s", name);
  return TRUE;
}

static gboolean copy_dir(int from, int to, int depth, GError **err)
{
  if (depth > MAX_DEPTH)
    return sbx_fail(err, SBX_ERROR_INVALID, "tmpcopyup: directories nested deeper than %d",
                    MAX_DEPTH);
  int fd = dup(from);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0)
      close(fd);
    return sbx_fail_errno(err, "tmpcopyup: read a directory");
  }
  gboolean ok = TRUE;
  struct dirent *e;
  while (ok && (e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      ok = copy_entry(from, to, e->d_name, depth, err);
  closedir(d);
  return ok;
}

gboolean sbx_oci_copy_up(int from, int to, gboolean top_mode, GError **err)
{
  struct stat st;
  if (fstat(from, &st) < 0)
    return sbx_fail_errno(err, "tmpcopyup");
  if (fchown(to, st.st_uid, st.st_gid) < 0 && errno != EINVAL && errno != EPERM)
    return sbx_fail_errno(err, "tmpcopyup");
  if (top_mode && fchmod(to, st.st_mode & 07777) < 0)
    return sbx_fail_errno(err, "tmpcopyup");
  return copy_dir(from, to, 0, err);
}
