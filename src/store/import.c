/* Import: runs inside the import helper (already in the user namespace).
 * Each layer is unpacked into tmp/, verified, synced and renamed into
 * layers/<idmap>/<diff-id>: a layer directory exists only when complete.
 * A per-layer lock makes concurrent imports of the same layer wait for one
 * another instead of unpacking it twice. */
#include "sbx/digest.h"
#include "sbx/json.h"
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

static gboolean layer_present(SbxStore *s, const char *final)
{
  return faccessat(s->rootfd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The layer's lock, unless the layer is (or becomes, while waiting) stored:
 * then -1 with *present set and no error. The lock is tried without
 * blocking: a running sandbox holds it shared for as long as it runs, and
 * an import that only finds the layer there must not wait for that. */
static int lock_layer_unless_present(SbxStore *s, const char *hex, const char *final,
                                     gboolean *present, GError **err)
{
  *present = layer_present(s, final);
  if (*present)
    return -1;
  /* Held exclusively only by an import of the same layer (prune, the other
   * taker, holds the store lock exclusively): poll until it lets go, or until
   * the layer it unpacks is there. */
  sbx_autofd fd = -1;
  while ((fd = sbx_store_lock_layer(s, s->idmap_key, hex, LOCK_EX | LOCK_NB, TRUE, err)) < 0) {
    if (errno != EWOULDBLOCK)
      return -1;
    if ((*present = layer_present(s, final)))
      return -1;
    g_usleep(20 * 1000);
  }
  /* another sbx may have unpacked it between the check and the lock */
  *present = layer_present(s, final);
  return *present ? -1 : sbx_steal_fd(&fd);
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

/* After a layer's rename: the syncfs before it made the files durable, this
 * makes its name in layers/<map-key>/ durable (one fsync per layer). */
static gboolean sync_layers_dir(SbxStore *s, GError **err)
{
  g_autofree char *dir = g_build_filename("layers", s->idmap_key, NULL);
  return sbx_fsync_dir_at(s->rootfd, dir, err);
}

static gboolean write_layer_size(SbxStore *s, const char *hex, guint64 bytes, GError **err)
{
  g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, bytes);
  g_autofree char *size_file = g_strdup_printf("layer-sizes/%s", hex);
  if (mkdirat(s->rootfd, "layer-sizes", 0700) < 0 && errno != EEXIST)
    return sbx_fail_errno(err, "store %s/layer-sizes", s->root);
  return sbx_write_file_atomic(s->rootfd, size_file, size, strlen(size), 0600, err);
}

/* The bytes of a stored layer's regular files (a hard link's once), as the
 * unpack counted them; FALSE when part of it cannot be read. */
static gboolean sum_layer_bytes(int dfd, GHashTable *linked, guint depth, guint64 *bytes)
{
  int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
  DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
  if (!d) {
    if (dup >= 0)
      close(dup);
    return FALSE;
  }
  gboolean ok = depth < 4096;
  struct dirent *de;
  while (ok && (de = readdir(d)) != NULL) {
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      ok = FALSE;
    } else if (S_ISREG(st.st_mode)) {
      gint64 ino = (gint64)st.st_ino;
      if (st.st_nlink < 2 || g_hash_table_add(linked, g_memdup2(&ino, sizeof ino)))
        *bytes += (guint64)st.st_size;
    } else if (S_ISDIR(st.st_mode)) {
      sbx_autofd sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      ok = sub >= 0 && sum_layer_bytes(sub, linked, depth + 1, bytes);
    }
  }
  closedir(d);
  return ok;
}

/* layer-sizes/<hex> is shared by every mapping's copy of the layer, and a
 * prune under one mapping removes it: a load under another that finds its
 * copy stored writes it again (else `sbx images` says 0 B). Best effort. */
static void restore_layer_size(SbxStore *s, const char *hex, const char *final)
{
  g_autofree char *size_file = g_strdup_printf("layer-sizes/%s", hex);
  if (faccessat(s->rootfd, size_file, F_OK, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
    return;
  sbx_autofd dfd = openat(s->rootfd, final, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  g_autoptr(GHashTable) linked = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
  guint64 bytes = 0;
  g_autoptr(GError) local = NULL;
  if (dfd < 0 || !sum_layer_bytes(dfd, linked, 0, &bytes))
    sbx_debug("layer %.12s: size not measured", hex);
  else if (!write_layer_size(s, hex, bytes, &local))
    sbx_debug("layer %.12s: %s", hex, local->message);
}

/* One import: its layers are unpacked in parallel by a thread pool while
 * the calling thread draws the progress bar. */
typedef struct {
  SbxStore *s;
  SbxSource *src;
  GMutex lock;
  GCond cond;
  guint pending, done, total;
  GError *error;   /* the first failure */
  guint collapsed; /* atomic */
  gint64 bytes_total;
  /* A pull shows one line per layer: its bytes (atomic) and state. */
  gboolean per_layer;
  GPtrArray *todo; /* SbxLayerRef* */
  gint64 *layer_read;
  int *layer_state; /* atomic: LAYER_* */
} Import;

/* A layer that did not fit says which store (file system) it filled. */
static gboolean store_full(SbxStore *s, GError **err)
{
  int e = err ? sbx_error_errno(*err) : 0;
  if (e == ENOSPC || e == EDQUOT)
    g_prefix_error(err, "store %s: ", s->root);
  return FALSE;
}

enum { LAYER_WAITING, LAYER_FETCHING, LAYER_DONE, LAYER_PRESENT };

static gboolean unpack_into_tmp(SbxStore *s, SbxSource *src, const SbxLayerRef *ref, int tmpfd,
                                const char *tmpname, gint64 *progress, Import *im, GError **err)
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
  if (!sbx_unpack_layer(blob, ref, dfd, &s->idmap, s->max_layer_size, &st, progress, err))
    return store_full(s, err);
  g_atomic_int_add(&im->collapsed, (gint)st.collapsed_owners);
  g_free(st.diff_id);
  if (!write_layer_size(s, sbx_digest_hex_of(ref->diff_id), st.bytes, err))
    return FALSE;
  /* One syncfs for the whole layer instead of an fsync per file: the rename
   * below must not become visible before the data. */
  if (syncfs(dfd) < 0)
    return sbx_fail_errno(err, "sync layer");
  sbx_info("layer %.19s: %" G_GUINT64_FORMAT " entries, %" G_GUINT64_FORMAT " bytes in %.1f ms",
           ref->diff_id, st.entries, st.bytes, (sbx_now_us() - t0) / 1000.0);
  return TRUE;
}

static gboolean import_layer(SbxStore *s, SbxSource *src, guint index, Import *im, GError **err)
{
  const SbxLayerRef *ref = im->todo->pdata[index];
  const char *hex = sbx_digest_hex_of(ref->diff_id);
  g_autofree char *final = g_build_filename("layers", s->idmap_key, hex, NULL);
  gboolean present = FALSE;
  sbx_autofd lock = lock_layer_unless_present(s, hex, final, &present, err);
  if (present) {
    restore_layer_size(s, hex, final);
    g_atomic_int_set(&im->layer_state[index], LAYER_PRESENT);
    return TRUE; /* stored before, or by another sbx while we waited */
  }
  if (lock < 0)
    return FALSE;
  g_atomic_int_set(&im->layer_state[index], LAYER_FETCHING);
  sbx_autofd tmpfd = openat(s->rootfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (tmpfd < 0)
    return sbx_fail_errno(err, "open %s/tmp", s->root);
  g_autofree char *prefix = g_strdup_printf("%s-%s.", s->idmap_key, hex);
  remove_stale_tmp(s, tmpfd, prefix);
  g_autofree char *rnd = sbx_random_hex(6);
  g_autofree char *tmpname = g_strconcat(prefix, rnd, NULL);
  if (!unpack_into_tmp(s, src, ref, tmpfd, tmpname, &im->layer_read[index], im, err)) {
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
    return FALSE;
  }
  if (renameat(tmpfd, tmpname, s->rootfd, final) < 0) {
    int e = errno;
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
    return sbx_fail_errnum(err, e, "store layer %.19s", ref->diff_id);
  }
  if (!sync_layers_dir(s, err))
    return FALSE;
  g_atomic_int_set(&im->layer_state[index], LAYER_DONE);
  return TRUE;
}

/* The run record first, the config last: listing, lookup and prune go by
 * images/<id>.json, so an image shows only once both are whole. A record
 * half written (a full disk) is removed again, unless the image was already
 * complete: then both files still are (the new bytes are the old ones). */
static gboolean write_image_files(SbxStore *s, SbxImage *img, const char *hex, GError **err)
{
  g_autofree char *name = g_strdup_printf("images/%s.json", hex);
  g_autofree char *run = g_strdup_printf("images/%s.run", hex);
  gsize len;
  const void *data = g_bytes_get_data(img->config_raw, &len);
  g_autoptr(GBytes) record = sbx_image_config_to_record(img->config);
  gboolean existed = faccessat(s->rootfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
  if (!sbx_write_file_atomic(s->rootfd, run, g_bytes_get_data(record, NULL),
                             g_bytes_get_size(record), 0600, err))
    return FALSE;
  if (!sbx_write_file_atomic(s->rootfd, name, data, len, 0600, err)) {
    if (!existed)
      unlinkat(s->rootfd, run, 0);
    return FALSE;
  }
  return TRUE;
}

static gboolean write_records(SbxStore *s, SbxImage *img, GError **err)
{
  const char *hex = sbx_digest_hex_of(img->config_digest);
  /* Imports and rmi take turns here, records and names together: none sees
   * the other's half-written record, an rmi never resolves a name a load
   * is re-pointing, and never deletes an image between its record and its
   * names (a name left on a deleted image, and "Loaded"). */
  sbx_autofd lock = sbx_store_lock_records(s, err);
  if (lock < 0 || !write_image_files(s, img, hex, err))
    return FALSE;
  /* A name that could not be written (a full disk) fails the load: "Loaded
   * image: NAME" and status 0 would be untrue. The image itself stays,
   * whole: a load that succeeds later names it. */
  for (char **n = img->names; n && *n; n++) {
    if (!sbx_store_tag(s, *n, hex, err)) {
      g_autofree char *shown = sbx_escape_text(*n);
      g_prefix_error(err, "image %.12s stored, its name %s not: ", hex, shown);
      return FALSE;
    }
  }
  return TRUE;
}

static void layer_job(gpointer data, gpointer user_data)
{
  guint index = GPOINTER_TO_UINT(data) - 1;
  Import *im = user_data;
  g_autoptr(GError) local = NULL;
  gboolean ok = import_layer(im->s, im->src, index, im, &local);
  g_mutex_lock(&im->lock);
  if (!ok && !im->error)
    im->error = g_steal_pointer(&local);
  im->pending--;
  im->done++;
  g_cond_signal(&im->cond);
  g_mutex_unlock(&im->lock);
}

/* A progress bar on a terminal, once an import has taken
 * store->progress_delay_us (half a second unless $SBX_PROGRESS_DELAY_MS). */

/* A pull: one line per layer (bytes, rate), redrawn in place. */
static void draw_layer_lines(Import *im, gint64 started, gboolean redraw)
{
  g_autoptr(GString) out = g_string_new(NULL);
  if (redraw)
    g_string_append_printf(out, "\033[%uA", im->todo->len);
  double secs = MAX((sbx_now_us() - started) / 1e6, 0.001);
  for (guint i = 0; i < im->todo->len; i++) {
    const SbxLayerRef *l = im->todo->pdata[i];
    gint64 read = __atomic_load_n(&im->layer_read[i], __ATOMIC_RELAXED);
    int state = g_atomic_int_get(&im->layer_state[i]);
    g_autofree char *have = g_format_size((guint64)read);
    g_autofree char *total = g_format_size((guint64)MAX(l->size, read));
    g_autofree char *rate = g_format_size((guint64)(read / secs));
    const char *blob = l->blob_digest ? l->blob_digest : l->diff_id;
    g_string_append_printf(out, "\r\033[K%.19s  ", blob);
    if (state == LAYER_PRESENT)
      g_string_append(out, "already in the store\n");
    else if (state == LAYER_WAITING)
      g_string_append(out, "waiting\n");
    else
      g_string_append_printf(out, "%s / %s  %s/s%s\n", have, total, rate,
                             state == LAYER_DONE ? "  done" : "");
  }
  (void)!write(STDERR_FILENO, out->str, out->len);
}

static void draw_progress(Import *im, gint64 started, gboolean *shown, gboolean final)
{
  if (!*shown && (final || sbx_now_us() - started < im->s->progress_delay_us))
    return;
  if (im->per_layer) {
    draw_layer_lines(im, started, *shown);
    *shown = TRUE;
    return;
  }
  *shown = TRUE;
  gint64 read = 0;
  for (guint i = 0; i < im->todo->len; i++)
    read += __atomic_load_n(&im->layer_read[i], __ATOMIC_RELAXED);
  g_autofree char *have = g_format_size((guint64)read);
  g_autofree char *total = g_format_size((guint64)MAX(im->bytes_total, read));
  int pct = im->bytes_total > 0 ? (int)MIN(100, read * 100 / im->bytes_total) : 0;
  int bar = pct / 5;
  g_autofree char *line = g_strdup_printf(
      "\r\033[Kimporting [%.*s%*s] %3d%%  %s / %s  layers %u/%u%s", bar, "####################",
      20 - bar, "", pct, have, total, im->done, im->total, final ? "\n" : "");
  (void)!write(STDERR_FILENO, line, strlen(line));
}

typedef struct {
  guint index; /* 1 + the layer's place in Import.todo */
  gint64 size;
} LayerJob;

static gint larger_first(gconstpointer a, gconstpointer b)
{
  const LayerJob *x = a, *y = b;
  if (x->size != y->size)
    return x->size > y->size ? -1 : 1;
  return x->index < y->index ? -1 : 1;
}

static gboolean import_layers(Import *im, SbxImage *img, gboolean quiet, GError **err)
{
  GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) todo = g_ptr_array_new();
  g_autoptr(GArray) order = g_array_new(FALSE, FALSE, sizeof(LayerJob));
  for (guint i = 0; i < img->layers->len; i++) {
    SbxLayerRef *l = img->layers->pdata[i];
    if (!g_hash_table_add(seen, l->diff_id))
      continue; /* the same layer twice in one image: once is enough */
    g_ptr_array_add(todo, l);
    gint64 size = l->size >= 0 ? l->size : sbx_source_size(im->src, l->member, NULL);
    im->bytes_total += MAX(size, 0);
    g_array_append_val(order, ((LayerJob){.index = todo->len, .size = MAX(size, 0)}));
  }
  /* The largest first: the last layer to start is a small one, so the
   * threads finish together (the progress lines keep the image's order). */
  g_array_sort(order, larger_first);
  g_hash_table_destroy(seen);
  im->total = im->pending = todo->len;
  im->todo = todo;
  g_autofree gint64 *layer_read = g_new0(gint64, todo->len + 1);
  g_autofree int *layer_state = g_new0(int, todo->len + 1);
  im->layer_read = layer_read;
  im->layer_state = layer_state;
  /* A pull's layers come from the network: more threads than cores keep
   * the transfers going while others unpack. */
  guint cores = MAX(1u, MIN(g_get_num_processors(), 8u));
  guint threads = MIN(todo->len, im->per_layer ? MAX(cores, 4u) : cores);
  GThreadPool *pool = g_thread_pool_new(layer_job, im, (gint)threads, FALSE, NULL);
  for (guint i = 0; i < order->len; i++)
    g_thread_pool_push(pool, GUINT_TO_POINTER(g_array_index(order, LayerJob, i).index), NULL);
  gboolean tty = !quiet && isatty(STDERR_FILENO), shown = FALSE;
  gint64 started = sbx_now_us();
  g_mutex_lock(&im->lock);
  while (im->pending > 0) {
    g_cond_wait_until(&im->cond, &im->lock, g_get_monotonic_time() + 100 * 1000);
    if (tty)
      draw_progress(im, started, &shown, FALSE);
  }
  g_mutex_unlock(&im->lock);
  g_thread_pool_free(pool, FALSE, TRUE);
  if (tty && !shown && im->s->progress_delay_us == 0)
    draw_progress(im, started, &shown, FALSE);
  if (tty && shown)
    draw_progress(im, started, &shown, TRUE);
  if (im->error) {
    g_propagate_error(err, g_steal_pointer(&im->error));
    return FALSE;
  }
  return TRUE;
}

char *sbx_store_import(SbxStore *s, const char *path, const char *select, gboolean quiet,
                       GError **err)
{
  /* prune takes this lock exclusively: it never deletes a layer that an
   * import is about to reference. */
  sbx_autofd store_lock = sbx_store_lock(s, FALSE, FALSE, err);
  if (store_lock < 0)
    return NULL;
  g_autoptr(SbxSource) src = sbx_source_open(path, s->max_layer_size, err);
  if (!src)
    return NULL;
  /* The "before" key is the stat taken as the file was opened: by now a
   * .tar.gz was decompressed and indexed, and a rewrite in place meanwhile
   * would make a key taken here describe the new file while the image
   * read is the old one (archives/<key> would then skip the new file). */
  struct stat opened;
  g_autofree char *key = sbx_source_opened_stat(src, &opened)
                             ? sbx_store_archive_key_stat(&opened, select, s->platform)
                             : NULL;
  /* Said here, where the path is known (image.c reads either kind). */
  if (!sbx_source_has(src, "manifest.json") && !sbx_source_has(src, "index.json")) {
    sbx_fail(err, SBX_ERROR_INVALID,
             "%s: not an image archive: no manifest.json (docker save) or index.json (OCI)", path);
    return NULL;
  }
  g_autoptr(SbxImage) img = sbx_image_load(src, select, err);
  if (!img)
    return NULL;
  g_autofree char *id = sbx_store_import_image(s, src, img, quiet, err);
  if (!id)
    return NULL;
  /* Remember the archive — only if it is still what was read. */
  g_autofree char *after = sbx_store_archive_key_fd(sbx_source_fd(src), select, s->platform);
  /* And only while the image is there: an rmi since then removed it (under
   * the records lock, as rmi forgets the archives naming it). */
  g_autofree char *json = g_strdup_printf("images/%s.json", id);
  sbx_autofd records = key && g_strcmp0(key, after) == 0 ? sbx_store_lock_records(s, NULL) : -1;
  if (records >= 0 && faccessat(s->rootfd, json, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
    g_autofree char *name = g_strdup_printf("archives/%s", key);
    g_autoptr(GError) local = NULL;
    if (!sbx_write_file_atomic(s->rootfd, name, sbx_digest_hex_of(img->config_digest), 64, 0600,
                               &local))
      sbx_debug("archive cache not written: %s", local->message);
  }
  return g_steal_pointer(&id);
}

char *sbx_store_import_image(SbxStore *s, SbxSource *src, SbxImage *img, gboolean quiet,
                             GError **err)
{
  Import im = {.s = s, .src = src, .per_layer = g_strcmp0(img->format, "registry") == 0};
  g_mutex_init(&im.lock);
  g_cond_init(&im.cond);
  gboolean ok = import_layers(&im, img, quiet, err);
  g_mutex_clear(&im.lock);
  g_cond_clear(&im.cond);
  if (!ok)
    return NULL;
  if (im.collapsed && s->idmap.mode == SBX_USERNS_SINGLE)
    sbx_warn("%u files of the image belong to other users: in single-id mode they belong to root "
             "(grant a range in /etc/subuid and /etc/subgid to keep owners)",
             im.collapsed);
  if (!write_records(s, img, err))
    return NULL;
  return g_strdup(sbx_digest_hex_of(img->config_digest));
}

/* Run fn in a child inside a user namespace with the store's mapping (to
 * give files their owners), with no_new_privs, the capabilities unpacking
 * needs and a seccomp filter (before a byte is parsed); it answers an image
 * id. */
char *sbx_store_run_in_userns(SbxStore *s, const char *what, SbxInUserns fn, gpointer data,
                              GError **err)
{
  int syncfd;
  pid_t pid = sbx_userns_clone(&s->idmap, 0, &syncfd, err);
  if (pid < 0)
    return NULL;
  if (pid == 0) {
    g_autoptr(GError) local = NULL;
    g_autofree char *id = NULL;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
      sbx_fail_errno(&local, "%s helper: no_new_privs", what);
    else if (sbx_store_confine_child(&local))
      id = fn(s, data, &local);
    if (id)
      sbx_sync_send_ok(syncfd, id);
    else
      sbx_sync_send_error(syncfd, local);
    _exit(id ? 0 : SBX_EXIT_FAILED);
  }
  g_autofree char *id = NULL;
  g_autoptr(GError) local = NULL;
  gboolean ok = sbx_sync_recv(syncfd, &id, what, &local);
  close(syncfd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  /* A child that said why it failed exits SBX_EXIT_FAILED; one killed (the
   * OOM killer, a kill -9) said nothing: as sbx run says of sbx-store. */
  if (!ok && (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                                      WEXITSTATUS(status) != SBX_EXIT_FAILED)))
    return sbx_helper_died(err, what, status), NULL;
  if (!ok)
    g_propagate_error(err, g_steal_pointer(&local));
  if (ok && !sbx_hex64_valid(id))
    ok = sbx_fail(err, SBX_ERROR_FAILED, "%s: bad reply", what);
  return ok ? g_steal_pointer(&id) : NULL;
}

typedef struct {
  const char *path, *select, *name;
  gboolean quiet;
} ImportArgs;

static char *import_archive_cb(SbxStore *s, gpointer data, GError **err)
{
  ImportArgs *a = data;
  return sbx_store_import(s, a->path, a->select, a->quiet, err);
}

char *sbx_store_import_isolated(SbxStore *s, const char *path, const char *select, gboolean quiet,
                                GError **err)
{
  ImportArgs a = {.path = path, .select = select, .quiet = quiet};
  g_autofree char *id = sbx_store_run_in_userns(s, "import", import_archive_cb, &a, err);
  if (!id)
    return NULL;
  return g_steal_pointer(&id);
}

/* The config of an image made from a plain rootfs tarball. */
static GBytes *rootfs_config(const char *diff_id)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *created = g_date_time_format_iso8601(now);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "architecture");
  json_builder_add_string_value(b, sbx_image_host_arch());
  json_builder_set_member_name(b, "os");
  json_builder_add_string_value(b, "linux");
  json_builder_set_member_name(b, "created");
  json_builder_add_string_value(b, created);
  json_builder_set_member_name(b, "config");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "Env");
  json_builder_begin_array(b);
  json_builder_add_string_value(
      b, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "rootfs");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "layers");
  json_builder_set_member_name(b, "diff_ids");
  json_builder_begin_array(b);
  json_builder_add_string_value(b, diff_id);
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "history");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "created");
  json_builder_add_string_value(b, created);
  json_builder_set_member_name(b, "created_by");
  json_builder_add_string_value(b, "sbx load --rootfs");
  json_builder_end_object(b);
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  char *text = json_to_string(root, FALSE);
  return g_bytes_new_take(text, strlen(text));
}

/* Unpack the tarball into tmp/, learn its digest, then file it like any
 * layer (or drop it when that layer is already stored). */
static char *unpack_rootfs(SbxStore *s, const char *path, GError **err)
{
  sbx_autofd tmpfd = openat(s->rootfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  g_autofree char *rnd = sbx_random_hex(6);
  /* "<idmap key>-": prune under another mapping leaves it (gc.c). */
  g_autofree char *tmpname = g_strconcat(s->idmap_key, "-rootfs-", rnd, NULL);
  if (tmpfd < 0 || mkdirat(tmpfd, tmpname, 0755) < 0) {
    sbx_fail_errno(err, "create %s/tmp/%s", s->root, tmpname);
    return NULL;
  }
  sbx_autofd dfd = openat(tmpfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  g_autoptr(SbxStream) stream = sbx_stream_open_file(path, err);
  SbxLayerRef ref = {.member = (char *)path, .size = -1};
  SbxUnpackStats st = {0};
  if (dfd < 0 || !stream ||
      !sbx_unpack_layer(stream, &ref, dfd, &s->idmap, s->max_layer_size, &st, NULL, err) ||
      syncfs(dfd) < 0) {
    if (err && !*err)
      sbx_fail_errno(err, "unpack %s", path);
    store_full(s, err);
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
    g_free(st.diff_id);
    return NULL;
  }
  g_autofree char *diff_id = st.diff_id;
  const char *hex = sbx_digest_hex_of(diff_id);
  g_autofree char *final = g_build_filename("layers", s->idmap_key, hex, NULL);
  if (!write_layer_size(s, hex, st.bytes, err)) {
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
    return NULL;
  }
  /* The id is known only now, after the whole tar was read. A stored layer
   * is dropped without its lock: every sandbox using it holds that lock
   * shared for its life, and waiting for it would hold the store lock (and
   * so prune) as long. */
  gboolean present = FALSE;
  sbx_autofd lock = lock_layer_unless_present(s, hex, final, &present, err);
  if (lock < 0 && !present) {
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
    return NULL;
  }
  if (present)
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
  else if (renameat(tmpfd, tmpname, s->rootfd, final) < 0) {
    sbx_fail_errno(err, "store layer %.19s", diff_id);
    sbx_rm_rf_at(tmpfd, tmpname, NULL);
    return NULL;
  } else if (!sync_layers_dir(s, err))
    return NULL;
  return g_steal_pointer(&diff_id);
}

static char *import_rootfs(SbxStore *s, const char *path, const char *name, GError **err)
{
  sbx_autofd store_lock = sbx_store_lock(s, FALSE, FALSE, err);
  if (store_lock < 0)
    return NULL;
  g_autofree char *diff_id = unpack_rootfs(s, path, err);
  if (!diff_id)
    return NULL;
  g_autoptr(SbxImage) img = g_new0(SbxImage, 1);
  img->config_raw = rootfs_config(diff_id);
  img->config_digest =
      sbx_digest_bytes(g_bytes_get_data(img->config_raw, NULL), g_bytes_get_size(img->config_raw));
  img->config = sbx_image_config_parse(g_bytes_get_data(img->config_raw, NULL),
                                       g_bytes_get_size(img->config_raw), err);
  g_autofree char *norm = name ? sbx_ref_normalize(name) : NULL;
  const char *names[] = {norm, NULL};
  img->names = g_strdupv((char **)names);
  if (!img->config || !write_records(s, img, err))
    return NULL;
  return g_strdup(sbx_digest_hex_of(img->config_digest));
}

static char *import_rootfs_cb(SbxStore *s, gpointer data, GError **err)
{
  ImportArgs *a = data;
  return import_rootfs(s, a->path, a->name, err);
}

char *sbx_store_import_rootfs_isolated(SbxStore *s, const char *path, const char *name,
                                       GError **err)
{
  ImportArgs a = {.path = path, .name = name};
  return sbx_store_run_in_userns(s, "import", import_rootfs_cb, &a, err);
}
