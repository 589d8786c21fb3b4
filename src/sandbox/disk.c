/* --rootfs-disk: the overlay's writable part on disk, for jobs that write
 * more than RAM should hold.
 *
 *   <store>/run-disk/
 *     lock        shared while a run creates and locks its directory,
 *                 exclusive while leftovers are swept
 *     <id>/       one run's upper/ and work/, and idmap (the mapping's key);
 *                 flock'ed (on the directory) by sbx for as long as the run
 *                 lasts
 *
 * The files in upper/ belong to the sandbox's ids (subordinate ids in range
 * mode), so removal happens in a user namespace with the run's mapping, as
 * the store's gc does. A run removes its own directory at the end; a run
 * whose sbx was killed leaves one, unlocked, which the next --rootfs-disk
 * run or `sbx prune` removes. Creation takes the shared lock so a sweep
 * never sees a directory between its mkdir and its flock; every probe of a
 * directory's lock (the sweep's, and the look for leftovers that decides
 * whether to start one) holds the exclusive lock. A sweep leaves a
 * leftover of another mapping (its idmap says so): a store used with both
 * --userns modes has range leftovers that single mode cannot remove. */
#include "sbx/sandbox.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int open_base(const char *base, gboolean create, GError **err)
{
  if (create && mkdir(base, 0700) < 0 && errno != EEXIST) {
    sbx_fail_errno(err, "--rootfs-disk: create %s", base);
    return -1;
  }
  int fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    sbx_fail_errno(err, "--rootfs-disk: open %s", base);
  return fd;
}

/* A new open file: a dup would share (and move) basefd's read position. */
static DIR *list_dir(int basefd)
{
  int fd = openat(basefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d && fd >= 0)
    close(fd);
  return d;
}

static int lock_base(int basefd, int op, GError **err)
{
  int fd = openat(basefd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, op) < 0) {
    sbx_fail_errno(err, "--rootfs-disk: lock");
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

int sbx_disk_layer_claim(const char *base, const char *id, const SbxIdMap *map, GError **err)
{
  sbx_autofd basefd = open_base(base, TRUE, err);
  if (basefd < 0)
    return -1;
  sbx_autofd lock = lock_base(basefd, LOCK_SH, err);
  if (lock < 0)
    return -1;
  if (mkdirat(basefd, id, 0700) < 0) {
    sbx_fail_errno(err, "--rootfs-disk: create %s/%s", base, id);
    return -1;
  }
  sbx_autofd dir = openat(basefd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0 || flock(dir, LOCK_EX | LOCK_NB) < 0 || mkdirat(dir, "upper", 0755) < 0 ||
      mkdirat(dir, "work", 0755) < 0) {
    sbx_fail_errno(err, "--rootfs-disk: prepare %s/%s", base, id);
    return -1;
  }
  g_autofree char *key = sbx_idmap_key(map);
  g_autofree char *text = g_strconcat(key, "\n", NULL);
  if (!sbx_write_file_at(dir, "idmap", text, 0600, err)) {
    g_prefix_error(err, "--rootfs-disk: prepare %s/%s: ", base, id);
    return -1;
  }
  return sbx_steal_fd(&dir);
}

/* The mapping a leftover was made under (NULL: unknown, an older sbx's). */
static char *leftover_key(int basefd, const char *name)
{
  g_autofree char *file = g_build_filename(name, "idmap", NULL);
  sbx_autofd fd = openat(basefd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  char buf[128];
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  return g_strchomp(g_strdup(buf));
}

/* One leftover: a failure is a warning naming it (prune and the next runs
 * go on), and a leftover of another mapping is not tried. */
static void remove_leftover(int basefd, const char *base, const char *name, const SbxIdMap *map)
{
  g_autofree char *key = sbx_idmap_key(map);
  g_autofree char *made = leftover_key(basefd, name);
  if (made && strcmp(made, key) != 0) {
    sbx_debug("--rootfs-disk: %s/%s: left under the id mapping %s, kept (removed with that "
              "--userns)",
              base, name, made);
    return;
  }
  g_autoptr(GError) local = NULL;
  if (!sbx_rm_rf_in(basefd, base, name, &local))
    sbx_warn("--rootfs-disk: %s%s", local->message,
             map->mode == SBX_USERNS_SINGLE
                 ? " (files of subordinate ids? 'sbx prune --userns range' can remove it)"
                 : "");
}

/* In the user namespace: remove id, or every directory nobody holds. */
static gboolean remove_inside(int basefd, const char *base, const char *id, const SbxIdMap *map,
                              GError **err)
{
  if (id)
    return sbx_rm_rf_in(basefd, base, id, err);
  sbx_autofd lock = lock_base(basefd, LOCK_EX, err);
  if (lock < 0)
    return FALSE;
  DIR *d = list_dir(basefd);
  if (!d)
    return sbx_fail_errno(err, "--rootfs-disk: list %s", base);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || g_str_equal(e->d_name, "lock"))
      continue;
    sbx_autofd fd = openat(basefd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
      continue; /* a running sandbox's */
    remove_leftover(basefd, base, e->d_name, map);
  }
  closedir(d);
  return TRUE;
}

/* Is there a directory no run holds? (A hint: the sweep checks again.)
 * Each probe locks a directory for an instant, so it takes the base lock
 * exclusively as the sweep does: a run between its mkdir and its flock
 * (holding the base lock shared) would otherwise find its own directory
 * locked by us and fail. Without the base lock no run can claim or sweep
 * either: nothing to do. */
static gboolean has_leftovers(int basefd)
{
  g_autoptr(GError) local = NULL;
  sbx_autofd lock = lock_base(basefd, LOCK_EX, &local);
  if (lock < 0) {
    sbx_debug("%s", local->message);
    return FALSE;
  }
  DIR *d = list_dir(basefd);
  if (!d)
    return FALSE;
  gboolean found = FALSE;
  struct dirent *e;
  while (!found && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || g_str_equal(e->d_name, "lock"))
      continue;
    sbx_autofd fd = openat(basefd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    found = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
  }
  closedir(d);
  return found;
}

gboolean sbx_disk_layer_remove(const SbxIdMap *map, const char *base, const char *id, GError **err)
{
  sbx_autofd basefd = open_base(base, FALSE, NULL);
  if (basefd < 0 || (!id && !has_leftovers(basefd)))
    return TRUE; /* nothing there */
  int syncfd;
  pid_t pid = sbx_userns_clone(map, 0, &syncfd, err);
  if (pid < 0)
    return FALSE;
  if (pid == 0) {
    g_autoptr(GError) local = NULL;
    if (remove_inside(basefd, base, id, map, &local))
      sbx_sync_send_ok(syncfd, "removed");
    else
      sbx_sync_send_error(syncfd, local);
    _exit(local ? SBX_EXIT_FAILED : 0);
  }
  gboolean ok = sbx_sync_recv(syncfd, NULL, "--rootfs-disk: remove", err);
  close(syncfd);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (ok)
    sbx_debug("--rootfs-disk: removed %s/%s", base, id ? id : "(leftovers)");
  return ok;
}
