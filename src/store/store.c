/* The store: where it is, what is in it, and the cache that lets a second
 * `sbx run` of the same archive skip reading it at all. */
#include "sbx/digest.h"
#include "sbx/store.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>

SbxStore *sbx_store_open(const char *root, const SbxIdMap *map, const SbxSettings *set,
                         GError **err)
{
  g_autoptr(SbxStore) s = g_new0(SbxStore, 1);
  s->rootfd = -1;
  s->root = g_canonicalize_filename(root, NULL);
  sbx_idmap_copy(&s->idmap, map);
  s->idmap_key = sbx_idmap_key(map);
  s->max_layer_size = set->max_layer_size;
  s->platform = g_strdup(set->platform);
  s->progress_delay_us = set->progress_delay_us;
  g_autofree char *layers = g_build_filename(s->root, "layers", s->idmap_key, NULL);
  if (!sbx_mkdir_p(layers, 0700, err))
    return NULL;
  s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->rootfd < 0) {
    sbx_fail_errno(err, "store %s", s->root);
    return NULL;
  }
  static const char *const dirs[] = {"images", "archives", "locks", "tmp", "run"};
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++)
    if (mkdirat(s->rootfd, dirs[i], 0700) < 0 && errno != EEXIST) {
      sbx_fail_errno(err, "store %s/%s", s->root, dirs[i]);
      return NULL;
    }
  return g_steal_pointer(&s);
}

void sbx_store_free(SbxStore *s)
{
  if (!s)
    return;
  if (s->rootfd >= 0)
    close(s->rootfd);
  g_free(s->root);
  g_free(s->idmap_key);
  sbx_idmap_clear(&s->idmap);
  g_free(s->platform);
  g_free(s);
}

void sbx_stored_image_free(SbxStoredImage *i)
{
  if (!i)
    return;
  g_free(i->id);
  sbx_image_config_free(i->config);
  g_strfreev(i->names);
  g_strfreev(i->layer_dirs);
  g_free(i->layers_dir);
  g_free(i);
}

SbxStoredImage *sbx_store_read_image(SbxStore *s, const char *id_hex, GError **err)
{
  if (!sbx_hex64_valid(id_hex)) {
    sbx_fail(err, SBX_ERROR_INVALID, "invalid image id %s", id_hex);
    return NULL;
  }
  g_autofree char *name = g_strdup_printf("images/%s.run", id_hex);
  sbx_autofd fd = openat(s->rootfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int open_errno = fd < 0 ? errno : 0;
  g_autofree char *json = g_strdup_printf("images/%s.json", id_hex);
  if (open_errno == ENOENT && faccessat(s->rootfd, json, F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
      errno == ENOENT) {
    /* Neither file: removed since it was found (an rmi meanwhile). */
    sbx_fail(err, SBX_ERROR_NOT_FOUND, "image %.12s: removed from the store meanwhile (sbx rmi?)",
             id_hex);
    return NULL;
  }
  if (open_errno == ENOENT) {
    /* images/<id>.json without its .run: left by an import killed (or out
     * of space) before the order of the two was made safe. */
    sbx_fail(err, SBX_ERROR_NOT_FOUND,
             "image %.12s: damaged image record (no %s/%s): load it again or 'sbx rmi %.12s'",
             id_hex, s->root, name, id_hex);
    return NULL;
  }
  if (fd < 0) {
    sbx_fail_errnum(err, open_errno, "image %.12s: %s/%s", id_hex, s->root, name);
    return NULL;
  }
  g_autoptr(GBytes) raw = sbx_read_fd_bounded(fd, 16 << 20, name, err);
  if (!raw)
    return NULL;
  g_autoptr(SbxStoredImage) img = g_new0(SbxStoredImage, 1);
  img->id = g_strdup(id_hex);
  g_autoptr(GError) local = NULL;
  img->config = sbx_image_config_from_record(raw, &local);
  if (!img->config) {
    sbx_fail(err, SBX_ERROR_INVALID, "image %.12s: %s/%s: %s: load it again or 'sbx rmi %.12s'",
             id_hex, s->root, name, local->message, id_hex);
    return NULL;
  }
  img->layers_dir = g_build_filename(s->root, "layers", s->idmap_key, NULL);
  guint n = g_strv_length(img->config->diff_ids);
  img->layer_dirs = g_new0(char *, n + 1);
  for (guint i = 0; i < n; i++)
    img->layer_dirs[i] = g_strdup(sbx_digest_hex_of(img->config->diff_ids[i]));
  img->names = g_new0(char *, 1);
  return g_steal_pointer(&img);
}

static gboolean layers_present(SbxStore *s, SbxStoredImage *img)
{
  for (char **l = img->layer_dirs; *l; l++) {
    g_autofree char *p = g_build_filename("layers", s->idmap_key, *l, NULL);
    if (faccessat(s->rootfd, p, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
      return FALSE;
  }
  return TRUE;
}

static int flock_file(SbxStore *s, const char *name, int op, GError **err)
{
  int fd = openat(s->rootfd, name, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    sbx_fail_errno(err, "lock %s/%s", s->root, name);
    return -1;
  }
  while (flock(fd, op) < 0) {
    if (errno == EINTR)
      continue;
    int e = errno;
    if (e != EWOULDBLOCK)
      sbx_fail_errnum(err, e, "lock %s/%s", s->root, name);
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int sbx_store_lock(SbxStore *s, gboolean exclusive, gboolean nonblock, GError **err)
{
  return flock_file(s, "lock", (exclusive ? LOCK_EX : LOCK_SH) | (nonblock ? LOCK_NB : 0), err);
}

int sbx_store_lock_records(SbxStore *s, GError **err)
{
  int fd = openat(s->rootfd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  while (fd >= 0 && flock(fd, LOCK_EX) < 0) {
    if (errno != EINTR) {
      int e = errno;
      close(fd);
      errno = e;
      fd = -1;
    }
  }
  if (fd < 0)
    sbx_fail_errno(err, "lock %s/images", s->root);
  return fd;
}

/* The fd is still the file the name links to: prune unlinks a lock file
 * while holding it exclusively, and a locker that waited on that inode
 * would otherwise hold a lock nobody else can see. */
static gboolean still_linked(SbxStore *s, int fd, const char *name, gboolean *linked, GError **err)
{
  struct stat held, now;
  if (fstat(fd, &held) < 0)
    return sbx_fail_errno(err, "lock %s/%s", s->root, name);
  if (fstatat(s->rootfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0) {
    *linked = FALSE;
    return errno == ENOENT || sbx_fail_errno(err, "lock %s/%s", s->root, name);
  }
  *linked = held.st_nlink > 0 && held.st_dev == now.st_dev && held.st_ino == now.st_ino;
  return TRUE;
}

int sbx_store_lock_layer(SbxStore *s, const char *key, const char *hex, int op, gboolean create,
                         GError **err)
{
  g_autofree char *name = g_strdup_printf("locks/%s-%s.lock", key, hex);
  for (;;) {
    /* Opened as it is first: a store that is read-only or out of inodes
     * still locks the files it has. */
    sbx_autofd fd = openat(s->rootfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && create)
      fd = openat(s->rootfd, name, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      int e = errno;
      sbx_fail_errnum(err, e, "lock %s/%s", s->root, name);
      errno = e;
      return -1;
    }
    while (flock(fd, op) < 0) {
      int e = errno;
      if (e == EINTR)
        continue;
      if (e != EWOULDBLOCK)
        sbx_fail_errnum(err, e, "lock %s/%s", s->root, name);
      errno = e;
      return -1;
    }
    gboolean linked = FALSE;
    if (!still_linked(s, fd, name, &linked, err)) {
      errno = sbx_error_errno(err ? *err : NULL);
      return -1;
    }
    if (linked)
      return sbx_steal_fd(&fd);
    sbx_debug("lock %s/%s: removed by prune while waiting: taking it again", s->root, name);
  }
}

static void close_fd_elem(gpointer p)
{
  close(*(int *)p);
}

GArray *sbx_store_hold_layers(SbxStore *s, SbxStoredImage *img, GError **err)
{
  g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));
  g_array_set_clear_func(fds, close_fd_elem);
  for (char **l = img->layer_dirs; *l; l++) {
    g_autoptr(GError) local = NULL;
    int fd = sbx_store_lock_layer(s, s->idmap_key, *l, LOCK_SH, TRUE, &local);
    if (fd < 0 && errno == EROFS) {
      /* A read-only store: no prune can remove the layer either. */
      sbx_debug("%s: running without the layer's lock", local->message);
      continue;
    }
    if (fd < 0) {
      g_propagate_error(err, g_steal_pointer(&local));
      return NULL;
    }
    g_array_append_val(fds, fd);
  }
  if (!layers_present(s, img)) {
    sbx_fail(err, SBX_ERROR_NOT_FOUND,
             "image %.12s: layers missing from the store (pruned?): "
             "run its archive again or 'sbx load' it",
             img->id);
    return NULL;
  }
  return g_steal_pointer(&fds);
}

/* The archive is known by where it lives on disk and when it last changed
 * (ctime too: an owner can set mtime back, not ctime): the same key means
 * the same bytes, so nothing needs reading or hashing. */
static char *key_of(const struct stat *st, const char *select, const char *platform)
{
  g_autofree char *id =
      g_strdup_printf("v2:%ju:%ju:%jd:%jd.%ld:%jd.%ld:%s:%s", (uintmax_t)st->st_dev,
                      (uintmax_t)st->st_ino, (intmax_t)st->st_size, (intmax_t)st->st_mtim.tv_sec,
                      st->st_mtim.tv_nsec, (intmax_t)st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
                      select ? select : "", platform ? platform : "");
  g_autofree char *d = sbx_digest_bytes(id, strlen(id));
  return g_strdup(sbx_digest_hex_of(d));
}

char *sbx_store_archive_key(const char *path, const char *select, const char *platform)
{
  struct stat st;
  g_autofree char *idx = g_build_filename(path, "index.json", NULL);
  if (stat(path, &st) < 0)
    return NULL;
  if (S_ISDIR(st.st_mode) && stat(idx, &st) < 0)
    return NULL;
  return key_of(&st, select, platform);
}

char *sbx_store_archive_key_stat(const struct stat *st, const char *select, const char *platform)
{
  return key_of(st, select, platform);
}

char *sbx_store_archive_key_fd(int fd, const char *select, const char *platform)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return NULL;
  if (S_ISDIR(st.st_mode) && fstatat(fd, "index.json", &st, 0) < 0)
    return NULL;
  return key_of(&st, select, platform);
}

static char *cached_image_id(SbxStore *s, const char *key)
{
  g_autofree char *name = g_strdup_printf("archives/%s", key);
  char buf[65];
  sbx_autofd fd = openat(s->rootfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || read(fd, buf, 64) != 64)
    return NULL;
  buf[64] = '\0';
  return sbx_hex64_valid(buf) ? g_strdup(buf) : NULL;
}

/* The import runs in sbx-store, a separate program: it holds the untrusted
 * archive (and the libraries that parse it), in its own user namespace. It
 * prints its own errors; we only learn the image id. */
static char *run_helper(SbxStore *s, const char *cmd, const char *path, const char *select,
                        gboolean quiet, GError **err)
{
  g_autofree char *helper = sbx_helper_path("sbx-store", err);
  if (!helper)
    return NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, helper);
  g_ptr_array_add(argv, (char *)cmd);
  if (strcmp(cmd, "pull") == 0) {
    g_ptr_array_add(argv, "--internal");
    if (select) { /* for a pull: sbx run's --pull policy */
      g_ptr_array_add(argv, "--policy");
      g_ptr_array_add(argv, (char *)select);
      select = NULL;
    }
  }
  g_ptr_array_add(argv, "--root");
  g_ptr_array_add(argv, s->root);
  g_ptr_array_add(argv, "--userns");
  g_ptr_array_add(argv, s->idmap.mode == SBX_USERNS_RANGE ? "range" : "single");
  g_ptr_array_add(argv, "--log-level");
  g_ptr_array_add(argv, (char *)sbx_log_level_name());
  if (quiet)
    g_ptr_array_add(argv, "--quiet");
  if (select) {
    g_ptr_array_add(argv, "--image");
    g_ptr_array_add(argv, (char *)select);
  }
  if (s->platform) {
    g_ptr_array_add(argv, "--platform");
    g_ptr_array_add(argv, (char *)s->platform);
  }
  g_ptr_array_add(argv, "--");
  g_ptr_array_add(argv, (char *)path);
  g_ptr_array_add(argv, NULL);
  g_autofree char *out = NULL;
  int status;
  g_autoptr(GError) local = NULL;
  g_auto(GStrv) env = sbx_helper_environ(SBX_STORE_HELPER_ENV);
  if (!g_spawn_sync(NULL, (char **)argv->pdata, env, G_SPAWN_CHILD_INHERITS_STDIN,
                    sbx_child_die_with_parent, NULL, &out, NULL, &status, &local)) {
    sbx_fail(err, SBX_ERROR_FAILED, "start %s: %s", helper, local->message);
    return NULL;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == SBX_EXIT_FAILED)
      g_set_error(err, SBX_ERROR, SBX_ERROR_REPORTED, "%s failed", cmd);
    else
      sbx_helper_died(err, cmd, status);
    return NULL;
  }
  g_strstrip(out);
  if (!sbx_hex64_valid(out)) {
    sbx_fail(err, SBX_ERROR_FAILED, "%s helper: bad reply", cmd);
    return NULL;
  }
  return g_steal_pointer(&out);
}

SbxStoredImage *sbx_store_ensure(SbxStore *s, const char *path, const char *select, gboolean quiet,
                                 GError **err)
{
  g_autofree char *key = sbx_store_archive_key(path, select, s->platform);
  if (key) {
    g_autofree char *id = cached_image_id(s, key);
    if (id) {
      g_autoptr(SbxStoredImage) img = sbx_store_read_image(s, id, NULL);
      if (img && layers_present(s, img)) {
        sbx_info("archive %s: cached as image %.12s (not read again)", path, id);
        return g_steal_pointer(&img);
      }
    }
  }
  sbx_info("archive %s: importing", path);
  g_autofree char *id = run_helper(s, "import", path, select, quiet, err);
  if (!id)
    return NULL;
  return sbx_store_read_image(s, id, err);
}

SbxStoredImage *sbx_store_pull(SbxStore *s, const char *reference, const char *policy,
                               gboolean quiet, GError **err)
{
  sbx_info("%s: pulling", reference);
  g_autofree char *id = run_helper(s, "pull", reference, policy, quiet, err);
  if (!id)
    return NULL;
  return sbx_store_read_image(s, id, err);
}
