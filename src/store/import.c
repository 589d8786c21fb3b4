/* Import: runs inside the import helper (already in the user namespace).
 * Each layer is unpacked into tmp/, verified, synced and renamed into
 * layers/<idmap>/<diff-id>: a layer directory exists only when complete.
 * A per-layer lock makes concurrent imports of the same layer wait for one
 * another instead of unpacking it twice. */
#include "sbx/digest.h"
#include "sbx/source.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

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
                                const char *tmpname, GError **err)
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
  if (st.collapsed_owners && s->idmap->mode == SBX_USERNS_SINGLE)
    sbx_log(SBX_LOG_INFO, "layer %.19s: files owned by other users belong to root in the sandbox "
            "(single-id mode; a subuid range keeps owners)", ref->diff_id);
  /* One syncfs for the whole layer instead of an fsync per file: the rename
   * below must not become visible before the data. */
  if (syncfs(dfd) < 0)
    return sbx_fail_errno(err, "sync layer");
  sbx_debug("layer %.19s: %" G_GUINT64_FORMAT " entries, %" G_GUINT64_FORMAT " bytes in %.1f ms",
            ref->diff_id, st.entries, st.bytes, (sbx_now_us() - t0) / 1000.0);
  return TRUE;
}

static gboolean import_layer(SbxStore *s, SbxSource *src, const SbxLayerRef *ref, GError **err)
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
  if (!unpack_into_tmp(s, src, ref, tmpfd, tmpname, err)) {
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

char *sbx_store_import(SbxStore *s, const char *path, const char *select, GError **err)
{
  g_autoptr(SbxSource) src = sbx_source_open(path, err);
  if (!src)
    return NULL;
  g_autoptr(SbxImage) img = sbx_image_load(src, select, err);
  if (!img)
    return NULL;
  for (guint i = 0; i < img->layers->len; i++)
    if (!import_layer(s, src, img->layers->pdata[i], err))
      return NULL;
  const char *hex = img->config_digest + 7;
  g_autofree char *name = g_strdup_printf("images/%s.json", hex);
  gsize len;
  const void *data = g_bytes_get_data(img->config_raw, &len);
  if (!sbx_write_file_atomic(s->rootfd, name, data, len, 0600, err))
    return NULL;
  return g_strdup(hex);
}
