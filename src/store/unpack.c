/* Unpack one layer: blob -> (decompress) -> tar entries -> files beneath a
 * directory fd, in one streaming pass that hashes both the stored blob and
 * the uncompressed tar on the way.
 *
 * Every entry is created relative to its parent directory's fd, opened from
 * the layer root with no symlink allowed on the way (path.c): a member can
 * never land outside the layer, whatever links the layer planted before it.
 * Whiteouts become what kernel overlayfs reads: a 0:0 char device for
 * ".wh.NAME", the user.overlay.opaque xattr for ".wh..wh..opq" (the sandbox
 * mounts overlay with userxattr). */
#include "sbx/digest.h"
#include "sbx/path.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define CHUNK (1u << 20)
/* Deep enough for any real image; shallow enough that removing a layer never
 * runs out of file descriptors (one per level, util/file.c). */
#define SBX_MAX_PATH_DEPTH 256

typedef struct {
  /* stage 1: the stored blob */
  SbxStream *blob;
  SbxHasher *blob_hash;
  guint64 blob_bytes;
  char *buf1;
  /* stage 2: decompressed tar stream */
  struct archive *dec;
  SbxHasher *diff_hash;
  guint64 diff_bytes, max;
  gboolean uncompressed; /* the tar stream is the blob: hash it once */
  gint64 *progress;      /* bytes of the blob read, for the progress bar */
  GError *error;
  /* the layer being written */
  const SbxIdMap *map;
  int rootfd;
  char *dir_cached;
  int dirfd_cached;
  GHashTable *dir_times; /* path -> DirTime*, applied at the end (a repeated entry once) */
  SbxUnpackStats *stats;
  const char *layer;       /* short name for errors */
  gboolean modes_as_asked; /* a new file gets the mode asked, less the umask (no default ACL) */
} Unpacker;

typedef struct {
  char *path;
  struct timespec mtime;
} DirTime;

/* Bits the umask may take off a created file; all of them until noted. */
static mode_t sbx_unpack_umask = 0777;

void sbx_unpack_note_umask(void)
{
  mode_t m = umask(0777);
  umask(m);
  sbx_unpack_umask = m & 0777;
}

static void dir_time_free(gpointer p)
{
  DirTime *d = p;
  g_free(d->path);
  g_free(d);
}

static la_ssize_t blob_read_cb(struct archive *a, void *p, const void **out)
{
  Unpacker *u = p;
  const void *block = NULL;
  gssize n = sbx_stream_read_block(u->blob, u->buf1, CHUNK, &block, u->error ? NULL : &u->error);
  if (n < 0) {
    archive_set_error(a, EIO, "%s", u->error ? u->error->message : "read failed");
    return -1;
  }
  sbx_hasher_update(u->blob_hash, block, (gsize)n);
  u->blob_bytes += (guint64)n;
  if (u->progress)
    __atomic_fetch_add(u->progress, n, __ATOMIC_RELAXED);
  *out = block;
  return n;
}

/* The next block of the uncompressed stream, hashed and counted: 0 at the
 * end, -1 with a message in *why. The block is the decompressor's own buffer
 * (no copy), valid until the next call — all libarchive asks of a read
 * callback. */
static la_ssize_t next_block(Unpacker *u, const void **out, const char **why)
{
  size_t size = 0;
  la_int64_t offset;
  int r = archive_read_data_block(u->dec, out, &size, &offset);
  if (r == ARCHIVE_EOF)
    return 0;
  if (r < ARCHIVE_WARN) {
    *why = archive_error_string(u->dec);
    return -1;
  }
  if (!u->uncompressed)
    sbx_hasher_update(u->diff_hash, *out, size);
  u->diff_bytes += size;
  /* A decompression bomb stops here, not when the disk is full. */
  if (u->diff_bytes > u->max) {
    *why = NULL;
    return -2;
  }
  return (la_ssize_t)size;
}

static la_ssize_t tar_read_cb(struct archive *a, void *p, const void **out)
{
  Unpacker *u = p;
  const char *why = NULL;
  la_ssize_t n = next_block(u, out, &why);
  if (n == -2)
    archive_set_error(a, EFBIG,
                      "expands beyond %" G_GUINT64_FORMAT " bytes (the limit; "
                      "SBX_MAX_LAYER_SIZE raises it)",
                      u->max);
  else if (n < 0)
    archive_set_error(a, EIO, "decompress: %s", why ? why : "error");
  return n < 0 ? -1 : n;
}

/* "layer L: member 'M': <fmt>", keeping errnum (0: none) for the caller: an
 * import says which store is out of space (import.c). */
static gboolean entry_fail_va(Unpacker *u, GError **err, const char *member, int errnum,
                              const char *fmt, va_list ap) G_GNUC_PRINTF(5, 0);
static gboolean entry_fail_va(Unpacker *u, GError **err, const char *member, int errnum,
                              const char *fmt, va_list ap)
{
  g_autofree char *why = g_strdup_vprintf(fmt, ap);
  g_autofree char *shown = g_utf8_make_valid(member, MIN(strlen(member), 200));
  if (errnum)
    return sbx_fail_errnum(err, errnum, "layer %s: member '%s': %s", u->layer, shown, why);
  return sbx_fail(err, SBX_ERROR_INVALID, "layer %s: member '%s': %s", u->layer, shown, why);
}

static gboolean entry_fail(Unpacker *u, GError **err, const char *member, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
static gboolean entry_fail(Unpacker *u, GError **err, const char *member, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  gboolean r = entry_fail_va(u, err, member, 0, fmt, ap);
  va_end(ap);
  return r;
}

/* As entry_fail, for a failed call: the error keeps its errno. */
static gboolean entry_fail_errnum(Unpacker *u, GError **err, const char *member, int errnum,
                                  const char *fmt, ...) G_GNUC_PRINTF(5, 6);
static gboolean entry_fail_errnum(Unpacker *u, GError **err, const char *member, int errnum,
                                  const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  gboolean r = entry_fail_va(u, err, member, errnum, fmt, ap);
  va_end(ap);
  return r;
}

/* The fd of directory `dir` in the layer, created if missing. Entries come
 * sorted, so the last one is usually right. */
static int parent_fd(Unpacker *u, const char *dir, const char *member, GError **err)
{
  if (u->dir_cached && strcmp(u->dir_cached, dir) == 0)
    return u->dirfd_cached;
  g_autoptr(GError) local = NULL;
  int fd = sbx_open_dir_beneath(u->rootfd, dir, TRUE, &local);
  if (fd < 0) {
    entry_fail(u, err, member, "%s", local->message);
    return -1;
  }
  if (u->dirfd_cached >= 0)
    close(u->dirfd_cached);
  g_free(u->dir_cached);
  u->dir_cached = g_strdup(dir);
  u->dirfd_cached = fd;
  return fd;
}

static void forget_cached_dir(Unpacker *u)
{
  if (u->dirfd_cached >= 0)
    close(u->dirfd_cached);
  u->dirfd_cached = -1;
  g_clear_pointer(&u->dir_cached, g_free);
}

static gboolean is_whiteout_dev(const struct stat *st)
{
  return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* Make room for a non-directory entry: tar semantics replace an earlier
 * non-directory; a directory of the same name is refused. */
static gboolean clear_for_file(Unpacker *u, int dfd, const char *base, const char *member,
                               GError **err)
{
  struct stat st;
  if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? TRUE : entry_fail(u, err, member, "%s", sbx_strerror(errno));
  if (S_ISDIR(st.st_mode))
    return entry_fail(u, err, member, "a file and a directory of the same name");
  if (unlinkat(dfd, base, 0) < 0)
    return entry_fail(u, err, member, "%s", sbx_strerror(errno));
  return TRUE;
}

static void owner_of(Unpacker *u, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
  gint64 eu = archive_entry_uid(e), eg = archive_entry_gid(e);
  gboolean ok_u = eu >= 0 && sbx_idmap_has_uid(u->map, (guint64)eu);
  gboolean ok_g = eg >= 0 && sbx_idmap_has_gid(u->map, (guint64)eg);
  if (!ok_u || !ok_g)
    u->stats->collapsed_owners++;
  *uid = ok_u ? (uid_t)eu : 0;
  *gid = ok_g ? (gid_t)eg : 0;
}

/* An attribute the kernel or file system refuses for what it is (its
 * namespace unsupported or not ours to set, its name or value beyond the
 * limits) is left out, as before. One refused for lack of space or by a
 * failing disk is not: the layer would pass its digest check without its
 * security.capability or user.* attributes. */
static gboolean xattr_refused_for_what_it_is(int e)
{
  return e == EOPNOTSUPP || e == ENOTSUP || e == EPERM || e == EACCES || e == ERANGE ||
         e == E2BIG || e == EINVAL;
}

static gboolean set_xattrs(Unpacker *u, int fd, struct archive_entry *e, const char *member,
                           GError **err)
{
  const char *name;
  const void *value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    /* overlay reads its own metadata from *.overlay.* xattrs: a layer that
     * sets them could redirect lookups or fake opaque dirs. */
    if (strstr(name, ".overlay.") != NULL || g_str_has_prefix(name, "system."))
      continue;
    if (fsetxattr(fd, name, value, size, 0) == 0)
      continue;
    int en = errno;
    g_autofree char *shown = sbx_escape_text(name);
    if (!xattr_refused_for_what_it_is(en))
      return entry_fail_errnum(u, err, member, en, "xattr %.200s", shown);
    sbx_debug("layer %s: xattr %s not kept: %s", u->layer, shown, sbx_strerror(en));
  }
  return TRUE;
}

/* created_mode: the mode a regular file got at creation, or -1. */
static gboolean apply_meta(Unpacker *u, int fd, struct archive_entry *e, int created_mode,
                           const char *member, GError **err)
{
  uid_t uid;
  gid_t gid;
  owner_of(u, e, &uid, &gid);
  gboolean chowned = uid != 0 || gid != 0;
  if (chowned && fchown(fd, uid, gid) < 0)
    return entry_fail(u, err, member, "chown %u:%u: %s", uid, gid, sbx_strerror(errno));
  /* A file created with its mode keeps it unless the umask took bits off;
   * set-id bits always go through fchmod (a chown clears them). */
  mode_t perm = archive_entry_perm(e) & 07777;
  if ((created_mode < 0 || (mode_t)created_mode != perm || chowned) && fchmod(fd, perm) < 0)
    return entry_fail_errnum(u, err, member, errno, "chmod");
  if (!set_xattrs(u, fd, e, member, err))
    return FALSE;
  struct timespec ts[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                           {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
  futimens(fd, ts);
  return TRUE;
}

static gboolean write_data(Unpacker *u, struct archive *a, struct archive_entry *e, int fd,
                           const char *member, GError **err)
{
  const void *buf;
  size_t size;
  la_int64_t off, end = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &size, &off);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return entry_fail(u, err, member, "%s", archive_error_string(a));
    const char *p = buf;
    while (size > 0) {
      ssize_t n = pwrite(fd, p, size, off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return entry_fail_errnum(u, err, member, errno, "write");
      p += n;
      off += n;
      size -= (size_t)n;
      u->stats->bytes += (guint64)n;
    }
    end = MAX(end, off);
  }
  /* Sparse files: a hole at the end is in no data block. */
  if (archive_entry_size_is_set(e) && archive_entry_size(e) != end &&
      ftruncate(fd, archive_entry_size(e)) < 0)
    return entry_fail_errnum(u, err, member, errno, "truncate");
  return TRUE;
}

static gboolean make_whiteout(Unpacker *u, const char *dir, const char *base, const char *member,
                              GError **err)
{
  int dfd = parent_fd(u, dir, member, err);
  if (dfd < 0)
    return FALSE;
  if (strcmp(base, ".wh..wh..opq") == 0) {
    if (fsetxattr(dfd, "user.overlay.opaque", "y", 1, 0) < 0)
      return entry_fail_errnum(u, err, member, errno, "mark opaque");
    return TRUE;
  }
  if (g_str_has_prefix(base, ".wh..wh."))
    return TRUE; /* aufs bookkeeping (.wh..wh.plnk etc.): nothing to apply */
  const char *name = base + 4;
  if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return entry_fail(u, err, member, "whiteout of '%s' is not allowed", name);
  struct stat st;
  /* A whiteout hides lower layers only: same-layer content stays. */
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return TRUE;
  if (mknodat(dfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
    return entry_fail_errnum(u, err, member, errno, "whiteout");
  return TRUE;
}

static gboolean make_dir(Unpacker *u, struct archive_entry *e, const char *dir, const char *base,
                         const char *path, GError **err)
{
  int dfd = parent_fd(u, dir, path, err);
  if (dfd < 0)
    return FALSE;
  if (mkdirat(dfd, base, 0700) < 0) {
    struct stat st;
    if (errno != EEXIST || fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return entry_fail_errnum(u, err, path, errno, "mkdir");
    if (is_whiteout_dev(&st)) {
      /* Deleted below, re-created here: an opaque directory. */
      if (unlinkat(dfd, base, 0) < 0 || mkdirat(dfd, base, 0700) < 0)
        return entry_fail_errnum(u, err, path, errno, "mkdir");
      sbx_autofd fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 || fsetxattr(fd, "user.overlay.opaque", "y", 1, 0) < 0)
        return entry_fail_errnum(u, err, path, errno, "mark opaque");
    } else if (!S_ISDIR(st.st_mode)) {
      return entry_fail(u, err, path, "a file and a directory of the same name");
    }
  }
  sbx_autofd fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return entry_fail_errnum(u, err, path, errno, "open");
  if (!apply_meta(u, fd, e, -1, path, err))
    return FALSE;
  DirTime *t = g_new0(DirTime, 1);
  t->path = g_strdup(path);
  t->mtime.tv_sec = archive_entry_mtime(e);
  t->mtime.tv_nsec = archive_entry_mtime_nsec(e);
  g_hash_table_replace(u->dir_times, t->path, t);
  return TRUE;
}

static gboolean make_hardlink(Unpacker *u, struct archive_entry *e, int dfd, const char *base,
                              const char *path, GError **err)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *target = sbx_path_normalize_member(archive_entry_hardlink(e), &local);
  if (!target || *target == '\0')
    return entry_fail(u, err, path, "hardlink target %s", local ? local->message : "is the root");
  g_autofree char *tdir = NULL, *tbase = NULL;
  sbx_path_split(target, &tdir, &tbase);
  sbx_autofd tfd = sbx_open_dir_beneath(u->rootfd, tdir, FALSE, &local);
  if (tfd < 0)
    return entry_fail(u, err, path, "hardlink to %s: %s", target, local->message);
  if (!clear_for_file(u, dfd, base, path, err))
    return FALSE;
  /* linkat without AT_SYMLINK_FOLLOW links a symlink itself, never its target. */
  if (linkat(tfd, tbase, dfd, base, 0) < 0)
    return entry_fail(u, err, path, "hardlink to %s: %s", target,
                      errno == ENOENT ? "target not in this layer" : sbx_strerror(errno));
  return TRUE;
}

static gboolean make_node(Unpacker *u, struct archive *a, struct archive_entry *e, const char *dir,
                          const char *base, const char *path, GError **err)
{
  mode_t type = archive_entry_filetype(e);
  if (type == AE_IFCHR || type == AE_IFBLK) {
    /* A user namespace cannot create devices, and an image has no business
     * shipping them: the sandbox gets its own /dev. */
    if (u->stats->skipped_devices++ == 0)
      sbx_warn("layer %s: device node %s skipped (devices come from the sandbox's /dev)", u->layer,
               path);
    return TRUE;
  }
  if (type == AE_IFSOCK)
    return TRUE;
  int dfd = parent_fd(u, dir, path, err);
  if (dfd < 0)
    return FALSE;
  if (archive_entry_hardlink(e))
    return make_hardlink(u, e, dfd, base, path, err);
  if (type != AE_IFREG && !clear_for_file(u, dfd, base, path, err))
    return FALSE;
  if (type == AE_IFLNK) {
    const char *target = archive_entry_symlink(e);
    if (!target || symlinkat(target, dfd, base) < 0)
      return entry_fail(u, err, path, "symlink: %s", target ? sbx_strerror(errno) : "no target");
    uid_t uid;
    gid_t gid;
    owner_of(u, e, &uid, &gid);
    if ((uid || gid) && fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
      return entry_fail_errnum(u, err, path, errno, "chown");
    struct timespec ts[2] = {{archive_entry_mtime(e), 0}, {archive_entry_mtime(e), 0}};
    utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
    return TRUE;
  }
  if (type == AE_IFIFO) {
    if (mknodat(dfd, base, S_IFIFO | 0600, 0) < 0)
      return entry_fail_errnum(u, err, path, errno, "mkfifo");
    uid_t uid;
    gid_t gid;
    owner_of(u, e, &uid, &gid);
    if (((uid || gid) && fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) ||
        fchmodat(dfd, base, archive_entry_perm(e) & 0777, 0) < 0)
      return entry_fail_errnum(u, err, path, errno, "fifo");
    return TRUE;
  }
  if (type != AE_IFREG)
    return entry_fail(u, err, path, "unsupported entry type 0%o", (unsigned)type);
  /* Created with its final mode when the umask leaves it whole (a file of
   * the layer being made is seen by nobody else). An earlier entry of the
   * same name is replaced, as tar does: cleared only when it is there. */
  mode_t perm = archive_entry_perm(e) & 0777;
  int created = u->modes_as_asked && (perm & sbx_unpack_umask) == 0 ? (int)perm : -1;
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  sbx_autofd fd = openat(dfd, base, flags, created >= 0 ? perm : 0600);
  if (fd < 0 && errno == EEXIST) {
    if (!clear_for_file(u, dfd, base, path, err))
      return FALSE;
    fd = openat(dfd, base, flags, created >= 0 ? perm : 0600);
  }
  if (fd < 0)
    return entry_fail_errnum(u, err, path, errno, "create");
  return write_data(u, a, e, fd, path, err) && apply_meta(u, fd, e, created, path, err);
}

static gboolean unpack_entry(Unpacker *u, struct archive *a, struct archive_entry *e, GError **err)
{
  const char *raw = archive_entry_pathname(e);
  if (raw == NULL)
    return entry_fail(u, err, "?", "no name");
  g_autoptr(GError) local = NULL;
  g_autofree char *path = sbx_path_normalize_member(raw, &local);
  if (!path)
    return entry_fail(u, err, raw, "%s", local->message);
  u->stats->entries++;
  guint depth = 0;
  for (const char *c = path; *c; c++)
    depth += *c == '/';
  if (depth >= SBX_MAX_PATH_DEPTH)
    return entry_fail(u, err, path, "deeper than %d directories", SBX_MAX_PATH_DEPTH);
  if (*path == '\0')
    return TRUE; /* the layer root itself: the overlay's root comes from the upper dir */
  g_autofree char *dir = NULL, *base = NULL;
  sbx_path_split(path, &dir, &base);
  if (g_str_has_prefix(base, ".wh."))
    return make_whiteout(u, dir, base, path, err);
  if (archive_entry_filetype(e) == AE_IFDIR && !archive_entry_hardlink(e))
    return make_dir(u, e, dir, base, path, err);
  return make_node(u, a, e, dir, base, path, err);
}

static gint deeper_first(gconstpointer a, gconstpointer b)
{
  const DirTime *x = a, *y = b;
  return (gint)strlen(y->path) - (gint)strlen(x->path);
}

static void apply_dir_times(Unpacker *u)
{
  forget_cached_dir(u);
  /* Children first: setting a child's time changes nothing of its parent's. */
  GList *all = g_list_sort(g_hash_table_get_values(u->dir_times), deeper_first);
  for (GList *l = all; l; l = l->next) {
    DirTime *t = l->data;
    sbx_autofd fd = sbx_open_dir_beneath(u->rootfd, t->path, FALSE, NULL);
    if (fd >= 0) {
      struct timespec ts[2] = {t->mtime, t->mtime};
      futimens(fd, ts);
    }
  }
  g_list_free(all);
}

static gboolean drain(Unpacker *u, GError **err)
{
  /* Hash what the tar reader did not need (padding after the end marker)
   * and what the decompressor did not need: the digests cover every byte. */
  const void *block;
  const char *why = NULL;
  la_ssize_t n;
  while ((n = next_block(u, &block, &why)) > 0)
    ;
  if (n == -2)
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "layer %s: expands beyond %" G_GUINT64_FORMAT
                    " bytes (the limit; SBX_MAX_LAYER_SIZE raises it)",
                    u->layer, u->max);
  /* The same kind of read as blob_read_cb's: an archive member read by
   * blocks cannot go on with archive_read_data (its own offset never
   * moved: it would fill the "gap" with zeros). */
  gssize m = 0;
  while (n == 0 && (m = sbx_stream_read_block(u->blob, u->buf1, CHUNK, &block, err)) > 0) {
    sbx_hasher_update(u->blob_hash, block, (gsize)m);
    u->blob_bytes += (guint64)m;
  }
  if (n < 0)
    return sbx_fail(err, SBX_ERROR_INVALID, "layer %s: %s", u->layer, why ? why : "read error");
  return m >= 0;
}

static gboolean verify(Unpacker *u, const SbxLayerRef *ref, GError **err)
{
  g_autofree char *blob = sbx_hasher_finish(u->blob_hash);
  g_autofree char *diff = u->uncompressed ? g_strdup(blob) : sbx_hasher_finish(u->diff_hash);
  if (ref->blob_digest && strcmp(blob, ref->blob_digest) != 0)
    return sbx_fail(err, SBX_ERROR_INVALID, "layer %s: digest mismatch: the blob is %s",
                    ref->blob_digest, blob);
  if (ref->size >= 0 && (guint64)ref->size != u->blob_bytes)
    return sbx_fail(err, SBX_ERROR_INVALID, "layer %s: size mismatch", ref->diff_id);
  /* A plain root filesystem tarball (sbx load --rootfs) has no promised
   * digest: its id is what we computed. */
  if (ref->diff_id && strcmp(diff, ref->diff_id) != 0)
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "layer %s: digest mismatch: the uncompressed layer is %s", ref->diff_id, diff);
  g_free(u->stats->diff_id);
  u->stats->diff_id = g_steal_pointer(&diff);
  return TRUE;
}

static struct archive *open_decompressor(Unpacker *u, GError **err)
{
  struct archive *d = archive_read_new();
  if (!sbx_archive_support_filters(d, err)) {
    archive_read_free(d);
    return NULL;
  }
  archive_read_support_format_raw(d);
  struct archive_entry *e;
  if (archive_read_open(d, u, NULL, blob_read_cb, NULL) != ARCHIVE_OK ||
      archive_read_next_header(d, &e) != ARCHIVE_OK) {
    sbx_fail(err, SBX_ERROR_INVALID, "layer %s: %s", u->layer,
             u->error ? u->error->message : archive_error_string(d));
    archive_read_free(d);
    return NULL;
  }
  u->uncompressed = archive_filter_code(d, 0) == ARCHIVE_FILTER_NONE;
  return d;
}

static gboolean unpack_tar(Unpacker *u, GError **err)
{
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  gboolean ok = TRUE;
  if (archive_read_open(a, u, NULL, tar_read_cb, NULL) != ARCHIVE_OK) {
    ok = sbx_fail(err, SBX_ERROR_INVALID, "layer %s: not a tar archive: %s", u->layer,
                  archive_error_string(a));
  }
  struct archive_entry *e;
  while (ok) {
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      ok = sbx_fail(err, SBX_ERROR_INVALID, "layer %s: %s", u->layer,
                    u->error ? u->error->message : archive_error_string(a));
      break;
    }
    ok = unpack_entry(u, a, e, err);
  }
  archive_read_free(a);
  return ok;
}

gboolean sbx_unpack_layer(SbxStream *blob, const SbxLayerRef *ref, int dirfd, const SbxIdMap *map,
                          guint64 max_size, SbxUnpackStats *stats, gint64 *progress, GError **err)
{
  g_autofree char *layer = g_strndup(ref->diff_id ? ref->diff_id : "rootfs", 7 + 12);
  Unpacker u = {
      .blob = blob,
      .blob_hash = sbx_hasher_new(),
      .buf1 = g_malloc(CHUNK),
      .diff_hash = sbx_hasher_new(),
      .max = max_size,
      .map = map,
      .rootfd = dirfd,
      .dirfd_cached = -1,
      .dir_times = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, dir_time_free),
      .stats = stats,
      .layer = layer,
      .progress = progress,
  };
  /* A default ACL on the layer root (inherited from the store's directory)
   * trims new files' modes instead of the umask, and its subdirectories
   * inherit it: then every file's mode is set by fchmod. A layer's own
   * system.* attributes are never applied (set_xattrs). */
  u.modes_as_asked = fgetxattr(dirfd, "system.posix_acl_default", NULL, 0) < 0 &&
                     (errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP);
  gboolean ok = FALSE;
  u.dec = open_decompressor(&u, err);
  if (u.dec) {
    ok = unpack_tar(&u, err) && drain(&u, err);
    /* The digests are checked before anything is kept (the caller removes
     * the directory on any failure). */
    if (ok)
      ok = verify(&u, ref, err);
    if (ok)
      apply_dir_times(&u);
    archive_read_free(u.dec);
  }
  if (!ok && u.error && err && *err) {
    /* The blob stream itself failed (the network, a limit): that is the
     * cause, not what the decompressor made of the missing bytes. */
    g_clear_error(err);
    sbx_fail(err, (SbxErrorCode)u.error->code, "layer %s: %s", layer, u.error->message);
  }
  if (ok && stats->collapsed_owners && map->mode == SBX_USERNS_SINGLE)
    sbx_debug("layer %s: %u entries owned by ids outside the single-id map now belong to root",
              layer, stats->collapsed_owners);
  forget_cached_dir(&u);
  sbx_hasher_free(u.blob_hash);
  sbx_hasher_free(u.diff_hash);
  g_free(u.buf1);
  g_hash_table_destroy(u.dir_times);
  g_clear_error(&u.error);
  return ok;
}
