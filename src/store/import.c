/* Import: runs inside the import helper (already in the user namespace).
 * Each layer is unpacked into tmp/, verified, synced and renamed into
 * layers/<idmap>/<diff-id>: a layer directory exists only when complete.
 * A per-layer lock makes concurrent imports of the same layer wait for one
 * another instead of unpacking it twice. */
#include "sbx/digest.h"
#include "sbx/source.h"
#include "sbx/store.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int lock_layer(SbxStore *s, const char *hex, GError **err)
{
  g_autofree char *name = g_strdup_printf("locks/%s-%s.lock", s->idmap_key, hex);
  int fd = openat(s->rootfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    sbx_fail_errno(err, "lock %s", name);
    return -1;
  }
  while (flock(fd, LOCK_EX) < 0) {
    if (errno != EINTR) {
      sbx_fail_errno(err, "lock %s", name);
      close(fd);
      return -1;
    }
  }
  return fd;
}

/* With the layer lock held, any tmp/<key>-<hex>.* is left over from an import
 * that was killed: remove it. */
static void remove_stale_tmp(SbxStore *s, int tmpfd, const char *prefix)
{
  int dfd = fcntl(tmpfd, F_DUPFD_CLOEXEC, 3);
  DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
  if (!d) {
    if (dfd >= 0)
      close(dfd);
    return;
  }
  struct dirent *de;
  g_autoptr(GPtrArray) stale = g_ptr_array_new_with_free_func(g_free);
  while ((de = readdir(d)) != NULL)
    if (g_str_has_prefix(de->d_name, prefix))
      g_ptr_array_add(stale, g_strdup(de->d_name));
  closedir(d);
  for (guint i = 0; i < stale->len; i++) {
    sbx_debug("removing stale %s", (char *)stale->pdata[i]);
    sbx_rm_rf_at(tmpfd, stale->pdata[i], NULL);
  }
}

static gboolean unpack_into_tmp(SbxStore *s, SbxSource *src, const SbxLayerRef *ref, int tmpfd,
                                const char *tmpname, guint *collapsed, GError **err)
{
  if (mkdirat(tmpfd, tmpname, 0755) < 0)
    return sbx_fail_errno(err, "create %s/tmp/%s", s->root, tmpname);
  sbx_autofd dfd = openat(tmpfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return sbx_fail_errno(err, "open %s/tmp/%s", s->root, tmpname);
  g_autoptr(SbxStream) blob = sbx_source_open_stream(src, ref->member, err);
  if (!blob)
    return FALSE;
  SbxUnpackStats st = {0};
  gint64 t0 = sbx_now_us();
  if (!sbx_unpack_layer(blob, ref, dfd, s->idmap, s->max_layer_size, &st, err))
    return FALSE;
  *collapsed += st.collapsed_owners;
  g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, st.bytes);
  g_autofree char *size_file = g_strdup_printf("layer-sizes/%s", ref->diff_id + 7);
  if (mkdirat(s->rootfd, "layer-sizes", 0700) < 0 && errno != EEXIST)
    return sbx_fail_errno(err, "store %s/layer-sizes", s->root);
  if (!sbx_write_file_atomic(s->rootfd, size_file, size, strlen(size), 0600, err))
    return FALSE;
  /* One syncfs for the whole layer instead of an fsync per file: the rename
   * below must not become visible before the data. */
  if (syncfs(dfd) < 0)
    return sbx_fail_errno(err, "sync layer");
  sbx_debug("layer %.19s: %" G_GUINT64_FORMAT " entries, %" G_GUINT64_FORMAT " bytes in %.1f ms",
            ref->diff_id, st.entries, st.bytes, (sbx_now_us() - t0) / 1000.0);
  return TRUE;
}

static gboolean import_layer(SbxStore *s, SbxSource *src, const SbxLayerRef *ref, guint *collapsed,
                             GError **err)
{
  const char *hex = ref->diff_id + 7;
  g_autofree char *final = g_build_filename("layers", s->idmap_key, hex, NULL);
  if (faccessat(s->rootfd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return TRUE;
  sbx_autofd lock = lock_layer(s, hex, err);
  if (lock < 0)
    return FALSE;
  if (faccessat(s->rootfd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return TRUE; /* another sbx unpacked it while we waited */
  sbx_autofd tmpfd = openat(s->rootfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (tmpfd < 0)
    return sbx_fail_errno(err, "open %s/tmp", s->root);
  g_autofree char *prefix = g_strdup_printf("%s-%s.", s->idmap_key, hex);
  remove_stale_tmp(s, tmpfd, prefix);
  g_autofree char *rnd = sbx_random_hex(6);
  g_autofree char *tmpname = g_strconcat(prefix, rnd, NULL);
  if (!unpack_into_tmp(s, src, ref, tmpfd, tmpname, collapsed, err)) {
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
    return FALSE;
  }
  if (renameat(tmpfd, tmpname, s->rootfd, final) < 0) {
    int e = errno;
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
    return sbx_fail_errnum(err, e, "store layer %.19s", ref->diff_id);
  }
  return TRUE;
}

static gboolean write_records(SbxStore *s, SbxImage *img, GError **err)
{
  const char *hex = img->config_digest + 7;
  g_autofree char *name = g_strdup_printf("images/%s.json", hex);
  g_autofree char *run = g_strdup_printf("images/%s.run", hex);
  gsize len;
  const void *data = g_bytes_get_data(img->config_raw, &len);
  g_autoptr(GBytes) record = sbx_image_config_to_record(img->config);
  if (!sbx_write_file_atomic(s->rootfd, name, data, len, 0600, err) ||
      !sbx_write_file_atomic(s->rootfd, run, g_bytes_get_data(record, NULL),
                             g_bytes_get_size(record), 0600, err))
    return FALSE;
  for (char **n = img->names; n && *n; n++)
    if (!sbx_store_tag(s, *n, hex, err))
      return FALSE;
  return TRUE;
}

char *sbx_store_import(SbxStore *s, const char *path, const char *select, GError **err)
{
  /* prune takes this lock exclusively: it never deletes a layer that an
   * import is about to reference. */
  sbx_autofd store_lock = sbx_store_lock(s, FALSE, FALSE, err);
  if (store_lock < 0)
    return NULL;
  g_autoptr(SbxSource) src = sbx_source_open(path, err);
  if (!src)
    return NULL;
  g_autoptr(SbxImage) img = sbx_image_load(src, select, err);
  if (!img)
    return NULL;
  guint collapsed = 0;
  for (guint i = 0; i < img->layers->len; i++)
    if (!import_layer(s, src, img->layers->pdata[i], &collapsed, err))
      return NULL;
  if (collapsed && s->idmap->mode == SBX_USERNS_SINGLE)
    sbx_warn("%u files of the image belong to other users: in single-id mode they belong to root "
             "(grant a range in /etc/subuid and /etc/subgid to keep owners)", collapsed);
  if (!write_records(s, img, err))
    return NULL;
  return g_strdup(img->config_digest + 7);
}

char *sbx_store_import_isolated(SbxStore *s, const char *path, const char *select,
                                gboolean quiet, GError **err)
{
  int syncfd;
  pid_t pid = sbx_userns_clone(s->idmap, 0, &syncfd, err);
  if (pid < 0)
    return NULL;
  if (pid == 0) {
    g_autoptr(GError) local = NULL;
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    g_autofree char *id = sbx_store_import(s, path, select, &local);
    if (id)
      sbx_sync_send_ok(syncfd, id);
    else
      sbx_sync_send_error(syncfd, local);
    _exit(id ? 0 : SBX_EXIT_FAILED);
  }
  g_autofree char *id = NULL;
  gboolean ok = sbx_sync_recv(syncfd, &id, "import", err);
  close(syncfd);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!ok)
    return NULL;
  if (!sbx_hex64_valid(id)) {
    sbx_fail(err, SBX_ERROR_FAILED, "import: bad reply");
    return NULL;
  }
  /* Remember the archive: the next run of it reads nothing. */
  g_autofree char *key = sbx_store_archive_key(path, select);
  if (key) {
    g_autofree char *name = g_strdup_printf("archives/%s", key);
    g_autoptr(GError) local = NULL;
    if (!sbx_write_file_atomic(s->rootfd, name, id, 64, 0600, &local))
      sbx_debug("archive cache not written: %s", local->message);
  }
  return g_steal_pointer(&id);
}
