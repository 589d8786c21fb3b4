/* Removing things from the store: names, images, unused layers.
 *
 * rmi removes names and image records only; the layers of a running sandbox
 * are never touched by it. prune deletes layers that no image references and
 * that no running sandbox holds (shared flock on the layer's lock file), with
 * the store lock held exclusively so no import can start using a layer while
 * it goes. A layer is first renamed into tmp/ (it disappears atomically),
 * then removed inside a user namespace with the store's mapping: its files
 * belong to subordinate ids we can only delete from there. prune also sweeps
 * run-disk/ (sandbox/disk.c): writable layers left by killed runs. */
#include "sbx/digest.h"
#include "sbx/image.h"
#include "sbx/sandbox.h"
#include "sbx/source.h"
#include "sbx/store.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* A name removed, or already gone (ENOENT). Anything else fails: a name
 * said "Untagged" must be gone. */
static gboolean remove_ref_file(SbxStore *s, const char *name, GError **err)
{
  g_autofree char *norm = sbx_ref_normalize(name);
  g_autofree char *d = sbx_digest_bytes(norm, strlen(norm));
  g_autofree char *file = g_strconcat("refs/", sbx_digest_hex_of(d), NULL);
  if (unlinkat(s->rootfd, file, 0) == 0 || errno == ENOENT)
    return TRUE;
  g_autofree char *shown = sbx_escape_text(norm);
  return sbx_fail_errno(err, "rmi %s: remove its name %s/%s", shown, s->root, file);
}

/* Drop archive-cache entries pointing at id: they would name a deleted
 * image. An entry that will not go fails the rmi before anything else is
 * removed. */
static gboolean forget_archives(SbxStore *s, const char *id, GError **err)
{
  g_autoptr(GPtrArray) keys = sbx_store_list_dir(s, "archives", err);
  if (!keys)
    return FALSE;
  for (guint i = 0; i < keys->len; i++) {
    g_autofree char *name = g_strdup_printf("archives/%s", (char *)keys->pdata[i]);
    char buf[64];
    sbx_autofd fd = openat(s->rootfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && read(fd, buf, 64) == 64 && memcmp(buf, id, 64) == 0 &&
        unlinkat(s->rootfd, name, 0) < 0 && errno != ENOENT)
      return sbx_fail_errno(err, "rmi %.12s: remove %s/%s", id, s->root, name);
  }
  return TRUE;
}

/* The name untagged: TRUE when ref is a name of id; FALSE with err when it
 * names another image or its name is not among names (a store changed
 * under us, or one read wrongly: nothing is removed then). */
static gboolean by_name_of(SbxStore *s, const char *ref, const char *id, char **names,
                           gboolean *is_name, GError **err)
{
  g_autofree char *by_name = NULL;
  if (!sbx_store_lookup_ref(s, ref, &by_name, err))
    return FALSE;
  *is_name = by_name != NULL;
  if (!by_name)
    return TRUE;
  g_autofree char *norm = sbx_ref_normalize(ref);
  if (strcmp(by_name, id) != 0 || !g_strv_contains((const char *const *)names, norm)) {
    g_autofree char *shown = sbx_escape_text(norm);
    return sbx_fail(err, SBX_ERROR_FAILED,
                    "rmi %s: the name and image %.12s disagree in %s/refs: nothing removed", shown,
                    id, s->root);
  }
  return TRUE;
}

gboolean sbx_store_remove_image(SbxStore *s, const char *ref, gboolean force, GError **err)
{
  sbx_autofd lock = sbx_store_lock(s, FALSE, FALSE, err);
  if (lock < 0)
    return FALSE;
  /* The name is resolved under the records lock, which loads and pulls
   * hold while they write an image's records and names: a load re-pointing
   * the name cannot slip in between (and have its old image deleted, with
   * every other name of it). */
  sbx_autofd records = sbx_store_lock_records(s, err);
  if (records < 0)
    return FALSE;
  g_autofree char *id = sbx_store_resolve(s, ref, err);
  if (!id)
    return FALSE;
  /* Fail closed: names that cannot be read are not "no other names". */
  g_auto(GStrv) names = sbx_store_names_of(s, id, err);
  gboolean by_name;
  if (!names || !by_name_of(s, ref, id, names, &by_name, err))
    return FALSE;
  /* Before anything is removed: a store it cannot list stays as it was. */
  if (!forget_archives(s, id, err))
    return FALSE;
  /* "rmi NAME" of an image with other names only untags (docker does too). */
  if (by_name && g_strv_length(names) > 1 && !force) {
    if (!remove_ref_file(s, ref, err))
      return FALSE;
    g_autofree char *norm = sbx_ref_normalize(ref);
    g_autofree char *shown = sbx_escape_text(norm);
    printf("Untagged: %s\n", shown);
    return TRUE;
  }
  for (char **n = names; *n; n++) {
    if (!remove_ref_file(s, *n, err))
      return FALSE;
    /* a name from the archive's RepoTags: escaped as images shows it (issue 9) */
    g_autofree char *shown = sbx_escape_text(*n);
    printf("Untagged: %s\n", shown);
  }
  /* The config first: an image is listed by it, and a .run alone is swept
   * by prune. */
  static const char *const ext[] = {".json", ".run"};
  for (guint i = 0; i < G_N_ELEMENTS(ext); i++) {
    g_autofree char *f = g_strdup_printf("images/%s%s", id, ext[i]);
    if (unlinkat(s->rootfd, f, 0) < 0 && errno != ENOENT)
      return sbx_fail_errno(err, "remove %s/%s", s->root, f);
  }
  printf("Deleted: sha256:%s\n", id);
  return TRUE;
}

GBytes *sbx_store_read_config_raw(SbxStore *s, const char *id, GError **err)
{
  g_autofree char *f = g_strdup_printf("images/%s.json", id);
  sbx_autofd fd = openat(s->rootfd, f, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    sbx_fail_errno(err, "image %.12s", id);
    return NULL;
  }
  return sbx_read_fd_bounded(fd, SBX_MAX_JSON_MEMBER, f, err);
}

SbxImageConfig *sbx_store_read_config(SbxStore *s, const char *id, GError **err)
{
  g_autoptr(GBytes) raw = sbx_store_read_config_raw(s, id, err);
  if (!raw)
    return NULL;
  gsize len;
  const char *data = g_bytes_get_data(raw, &len);
  return sbx_image_config_parse(data, len, err);
}

/* diff-id hexes referenced by any image in the store. */
static GHashTable *referenced_layers(SbxStore *s, GError **err)
{
  g_autoptr(GPtrArray) ids = sbx_store_list_ids(s, err);
  if (!ids)
    return NULL;
  GHashTable *used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < ids->len; i++) {
    const char *id = ids->pdata[i];
    g_autoptr(SbxImageConfig) cfg = sbx_store_read_config(s, id, err);
    /* Fail closed: a layer is deleted only when every image was understood. */
    if (!cfg) {
      g_prefix_error(
          err, "image %.12s: damaged record %s/images/%s.json ('sbx rmi %.12s' removes it): ", id,
          s->root, id, id);
      g_hash_table_destroy(used);
      return NULL;
    }
    for (char **d = cfg->diff_ids; *d; d++)
      g_hash_table_add(used, g_strdup(sbx_digest_hex_of(*d)));
  }
  return used;
}

/* A leftover in tmp/ left under another id mapping (its name says which:
 * "<key>-...", "prune-<key>-..."): its files may belong to ids this one
 * cannot reach. Names of older sbx versions say nothing: tried. */
static gboolean other_mapping(SbxStore *s, const char *name)
{
  const char *n = g_str_has_prefix(name, "prune-") ? name + strlen("prune-") : name;
  if (!g_str_has_prefix(n, "single-") && !g_str_has_prefix(n, "range-"))
    return FALSE;
  gsize k = strlen(s->idmap_key);
  return !(strncmp(n, s->idmap_key, k) == 0 && n[k] == '-');
}

/* In the child: remove each, going on past a failure. A leftover that will
 * not go is a warning, not the end of prune: a store used with both
 * --userns modes keeps range leftovers single mode cannot remove. */
static void remove_each(SbxStore *s, int tmp, GPtrArray *names)
{
  g_autofree char *shown = g_build_filename(s->root, "tmp", NULL);
  for (guint i = 0; i < names->len; i++) {
    const char *name = names->pdata[i];
    if (other_mapping(s, name)) {
      sbx_debug("prune: %s/%s: left under another id mapping, kept (prune with that --userns "
                "removes it)",
                shown, name);
      continue;
    }
    g_autoptr(GError) local = NULL;
    if (!sbx_rm_rf_in(tmp, shown, name, &local))
      sbx_warn("prune: %s%s", local->message,
               s->idmap.mode == SBX_USERNS_SINGLE
                   ? " (files of subordinate ids? 'sbx prune --userns range' can remove it)"
                   : "");
  }
}

/* Delete tmp/<name> for each name, from inside a user namespace with the
 * store's mapping (files of subordinate ids are ours only there). */
static gboolean remove_in_userns(SbxStore *s, GPtrArray *names, GError **err)
{
  if (names->len == 0)
    return TRUE;
  int syncfd;
  pid_t pid = sbx_userns_clone(&s->idmap, 0, &syncfd, err);
  if (pid < 0)
    return FALSE;
  if (pid == 0) {
    g_autoptr(GError) local = NULL;
    sbx_autofd tmp = openat(s->rootfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (tmp < 0) {
      sbx_fail_errno(&local, "open %s/tmp", s->root);
      sbx_sync_send_error(syncfd, local);
      _exit(SBX_EXIT_FAILED);
    }
    remove_each(s, tmp, names);
    sbx_sync_send_ok(syncfd, "removed");
    _exit(0);
  }
  gboolean ok = sbx_sync_recv(syncfd, NULL, "remove", err);
  close(syncfd);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  return ok;
}

static guint64 layer_size(SbxStore *s, const char *hex)
{
  g_autofree char *f = g_strdup_printf("layer-sizes/%s", hex);
  char buf[32] = {0};
  sbx_autofd fd = openat(s->rootfd, f, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
    return 0;
  return g_ascii_strtoull(buf, NULL, 10);
}

guint64 sbx_store_layer_size(SbxStore *s, const char *hex)
{
  return layer_size(s, hex);
}

/* With the store lock held exclusively no import writes: in the record
 * directories, `.<name>.<rnd>.tmp` files are what killed atomic writes left,
 * and images/<id>.run without its .json is an import killed between the two
 * (or an rmi between its two unlinks). In seccomp/ (written by runs, under
 * no store lock: its temporary files are left alone), filters compiled
 * before this boot. */
static gboolean is_leftover(SbxStore *s, const char *dir, const char *f, int dfd)
{
  /* A name of an image whose record is gone: listed nowhere, never used. */
  if (strcmp(dir, "refs") == 0 && f[0] != '.')
    return sbx_store_ref_dangling(s, f);
  if (strcmp(dir, "seccomp") == 0) {
    /* A compiled filter's name holds the boot it was made in (the compat
     * ABIs are the kernel command line's: src/sandbox/seccomp.c): one
     * written before this boot is never read again. */
    struct timespec now, up;
    struct stat st;
    if (!g_str_has_suffix(f, ".bpf") || clock_gettime(CLOCK_REALTIME, &now) < 0 ||
        clock_gettime(CLOCK_BOOTTIME, &up) < 0 || fstatat(dfd, f, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode))
      return FALSE;
    return f[0] != '.' && st.st_mtime < now.tv_sec - up.tv_sec - 60; /* a minute's slack */
  }
  if (f[0] == '.')
    return g_str_has_suffix(f, ".tmp") && strlen(f) > 5;
  if (strcmp(dir, "images") != 0 || strlen(f) != 64 + 4 || !g_str_has_suffix(f, ".run"))
    return FALSE;
  g_autofree char *json = g_strdup_printf("%.64s.json", f);
  return faccessat(dfd, json, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
}

static gboolean sweep_records(SbxStore *s, guint *failed, GError **err)
{
  static const char *const dirs[] = {"images", "refs", "archives", "layer-sizes", "seccomp"};
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
    int fd = openat(s->rootfd, dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
      if (fd >= 0)
        close(fd);
      if (errno == ENOENT)
        continue; /* refs/ and layer-sizes/ are made by the first import */
      if (strcmp(dirs[i], "seccomp") == 0) { /* a cache: the layers go on */
        sbx_warn("prune: cannot list %s/seccomp: %s", s->root, sbx_strerror(errno));
        continue;
      }
      return sbx_fail_errno(err, "list %s/%s", s->root, dirs[i]);
    }
    g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
    struct dirent *de;
    for (;;) {
      errno = 0;
      if (!(de = readdir(d)))
        break;
      if (is_leftover(s, dirs[i], de->d_name, dirfd(d)))
        g_ptr_array_add(gone, g_strdup(de->d_name));
    }
    int e = errno;
    for (guint j = 0; j < gone->len; j++) {
      const char *f = gone->pdata[j];
      const char *why = strcmp(dirs[i], "seccomp") == 0 ? "a filter of an earlier boot"
                        : strcmp(dirs[i], "refs") == 0 && f[0] != '.' ? "a name of a removed image"
                                                                      : "left by a killed import";
      sbx_debug("prune: removing %s/%s (%s)", dirs[i], f, why);
      if (unlinkat(dirfd(d), gone->pdata[j], 0) < 0 && errno != ENOENT) {
        sbx_warn("prune: cannot remove %s/%s/%s: %s", s->root, dirs[i], (char *)gone->pdata[j],
                 sbx_strerror(errno));
        (*failed)++;
      }
    }
    closedir(d);
    if (e)
      return sbx_fail_errnum(err, e, "list %s/%s", s->root, dirs[i]);
  }
  return TRUE;
}

/* layer-sizes/<hex> is shared by every mapping's copy of a layer: it goes
 * with the last one. */
static gboolean stored_under_another_mapping(SbxStore *s, const char *hex)
{
  g_autoptr(GPtrArray) maps = sbx_store_list_dir(s, "layers", NULL);
  for (guint i = 0; maps && i < maps->len; i++) {
    const char *key = maps->pdata[i];
    if (strcmp(key, s->idmap_key) == 0)
      continue;
    g_autofree char *other = g_strdup_printf("layers/%s/%s", key, hex);
    struct stat st;
    if (fstatat(s->rootfd, other, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
      return TRUE;
  }
  return FALSE;
}

/* Take an unused layer's lock exclusively: FALSE when a running sandbox
 * holds it (kept, said at debug level) or it cannot be taken (a warning,
 * counted in failed). */
static gboolean lock_unused_layer(SbxStore *s, const char *hex, int *fd, guint *failed)
{
  g_autoptr(GError) local = NULL;
  *fd = sbx_store_lock_layer(s, s->idmap_key, hex, LOCK_EX | LOCK_NB, TRUE, &local);
  if (*fd >= 0)
    return TRUE;
  if (errno == EWOULDBLOCK) {
    sbx_debug("layer %.12s in use: kept", hex);
    return FALSE;
  }
  sbx_warn("prune: layer %.12s kept: %s", hex, local->message);
  (*failed)++;
  return FALSE;
}

/* Move layers/<key>/<hex> into tmp/ (gone at once; deleted from there) and
 * drop its lock file, with the lock still held exclusively: a locker
 * waiting on it finds it unlinked and takes the new one (store.c). */
static gboolean take_layer(SbxStore *s, const char *hex, const char *to, guint *failed)
{
  g_autofree char *from = g_build_filename("layers", s->idmap_key, hex, NULL);
  if (renameat(s->rootfd, from, s->rootfd, to) < 0) {
    sbx_warn("prune: layer %.12s kept: move %s/%s to %s: %s", hex, s->root, from, to,
             sbx_strerror(errno));
    (*failed)++;
    return FALSE;
  }
  g_autofree char *lname = g_strdup_printf("locks/%s-%s.lock", s->idmap_key, hex);
  if (unlinkat(s->rootfd, lname, 0) < 0 && errno != ENOENT) {
    sbx_warn("prune: cannot remove %s/%s: %s", s->root, lname, sbx_strerror(errno));
    (*failed)++;
  }
  if (!stored_under_another_mapping(s, hex)) {
    g_autofree char *size_file = g_strdup_printf("layer-sizes/%s", hex);
    if (unlinkat(s->rootfd, size_file, 0) < 0 && errno != ENOENT) {
      sbx_warn("prune: cannot remove %s/%s: %s", s->root, size_file, sbx_strerror(errno));
      (*failed)++;
    }
  }
  return TRUE;
}

/* locks/<key>-<hex>.lock of a layer not in layers/<key>/ (a layer pruned
 * before prune removed lock files, an import that failed): removed when no
 * one holds it. No import runs (the store lock is ours exclusively); a run
 * that takes it after us finds it unlinked and creates it again. */
static void sweep_stray_locks(SbxStore *s, guint *failed)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GPtrArray) files = sbx_store_list_dir(s, "locks", &local);
  if (!files) {
    sbx_warn("prune: %s", local->message);
    (*failed)++;
    return;
  }
  for (guint i = 0; i < files->len; i++) {
    const char *f = files->pdata[i];
    gsize n = strlen(f);
    if (n < 64 + 7 || !g_str_has_suffix(f, ".lock") || f[n - 5 - 64 - 1] != '-')
      continue;
    g_autofree char *key = g_strndup(f, n - 5 - 64 - 1);
    g_autofree char *hex = g_strndup(f + n - 5 - 64, 64);
    g_autofree char *layer = g_build_filename("layers", key, hex, NULL);
    struct stat st;
    if (!sbx_hex64_valid(hex) || strchr(key, '/') ||
        fstatat(s->rootfd, layer, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
      continue;
    g_autoptr(GError) lerr = NULL;
    sbx_autofd fd = sbx_store_lock_layer(s, key, hex, LOCK_EX | LOCK_NB, FALSE, &lerr);
    if (fd < 0 && (errno == EWOULDBLOCK || errno == ENOENT))
      continue;
    g_autofree char *lname = g_strconcat("locks/", f, NULL);
    if (fd < 0 || (unlinkat(s->rootfd, lname, 0) < 0 && errno != ENOENT)) {
      sbx_warn("prune: cannot remove %s/%s: %s", s->root, lname,
               fd < 0 ? lerr->message : sbx_strerror(errno));
      (*failed)++;
    } else {
      sbx_debug("prune: removed %s (no layer %.12s under %s)", lname, hex, key);
    }
  }
}

gboolean sbx_store_prune(SbxStore *s, guint *layers, guint64 *bytes, GError **err)
{
  *layers = 0;
  *bytes = 0;
  guint failed = 0;
  sbx_autofd lock = sbx_store_lock(s, TRUE, FALSE, err);
  if (lock < 0)
    return FALSE;
  g_autoptr(GHashTable) used = referenced_layers(s, err);
  if (!used || !sweep_records(s, &failed, err))
    return FALSE;
  /* With the store lock held exclusively no import is running: whatever is
   * in tmp/ now is debris of imports that were killed. Listed before
   * anything moves: a directory that cannot be listed stops prune here. */
  g_autoptr(GPtrArray) debris = sbx_store_list_dir(s, "tmp", err);
  g_autofree char *dir = g_build_filename("layers", s->idmap_key, NULL);
  g_autoptr(GPtrArray) present = debris ? sbx_store_list_dir(s, dir, err) : NULL;
  if (!present)
    return FALSE;
  g_autoptr(GPtrArray) doomed = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GArray) locks = g_array_new(FALSE, FALSE, sizeof(int));
  for (guint i = 0; i < present->len; i++) {
    const char *hex = present->pdata[i];
    int lfd;
    if (!sbx_hex64_valid(hex) || g_hash_table_contains(used, hex) ||
        !lock_unused_layer(s, hex, &lfd, &failed))
      continue;
    g_array_append_val(locks, lfd);
    g_autofree char *rnd = sbx_random_hex(6);
    /* The name says the mapping: a prune under the other one leaves it. */
    g_autofree char *to = g_strdup_printf("tmp/prune-%s-%s.%s", s->idmap_key, hex, rnd);
    guint64 size = layer_size(s, hex);
    if (!take_layer(s, hex, to, &failed))
      continue;
    *bytes += size;
    (*layers)++;
    g_ptr_array_add(doomed, g_strdup(to + 4));
  }
  sweep_stray_locks(s, &failed);
  for (guint i = 0; i < debris->len; i++)
    g_ptr_array_add(doomed, g_strdup(debris->pdata[i]));
  gboolean ok = remove_in_userns(s, doomed, err);
  for (guint i = 0; i < locks->len; i++)
    close(g_array_index(locks, int, i));
  /* --rootfs-disk layers of runs whose sbx was killed (unlocked ones). */
  g_autofree char *disk = g_build_filename(s->root, "run-disk", NULL);
  if (!ok || !sbx_disk_layer_remove(&s->idmap, disk, NULL, err))
    return FALSE;
  /* podman image prune too: what it could remove is removed, and what it
   * could not makes it fail. */
  if (failed)
    return sbx_fail(err, SBX_ERROR_FAILED,
                    "prune: store %s: %u unused item%s not removed (the warnings say why)", s->root,
                    failed, failed == 1 ? "" : "s");
  return TRUE;
}
