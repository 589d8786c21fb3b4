/* The members of an image archive or OCI layout directory.
 *
 * A tar archive is indexed in one pass over its headers (data is skipped with
 * lseek-like jumps, never copied). Small members are kept in memory; a layer
 * is streamed later by opening a second reader that skips to its header. */
#include "sbx/source.h"
#include "sbx/path.h"
#include "sbx/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define CACHE_MEMBER_MAX (256u << 10)
#define CACHE_TOTAL_MAX  (64u << 20)
#define MAX_LINK_HOPS    16
#define READ_CHUNK       (1u << 20)

typedef struct {
  guint64 ordinal; /* header index in the archive */
  int type;        /* AE_IFREG, AE_IFLNK, or 0 for a hardlink */
  gint64 size;
  char *link;   /* symlink target (raw) or hardlink target (normalised) */
  GBytes *data; /* cached contents of small regular members */
} Member;

struct SbxSource {
  char *path;
  int fd;      /* the archive file (or its decompressed copy), or the layout directory */
  int orig_fd; /* the file as opened, when fd is a decompressed copy; else -1 */
  gboolean is_dir;
  off_t file_size;
  /* fstat of the file (a layout's index.json) right after open, before a
   * byte was read: what the archive cache may remember it by. */
  struct stat opened;
  gboolean opened_ok;
  GHashTable *members; /* normalised name -> Member */
  gsize cached;
  const SbxSourceOps *ops; /* a source that is not a file (a registry) */
  gpointer ops_data;
};

struct SbxStream {
  struct archive *a; /* tar member stream */
  int fd;            /* directory source: the blob file */
  GBytes *mem;       /* cached member */
  gsize pos;
  gboolean blocks;         /* a's member is not sparse: its data blocks are the bytes */
  void *cb;                /* reader context of a */
  SbxStreamReadFn read_fn; /* a custom stream (a registry blob) */
  gpointer read_data;
  GDestroyNotify read_free;
};

static void member_free(gpointer p)
{
  Member *m = p;
  g_free(m->link);
  if (m->data)
    g_bytes_unref(m->data);
  g_free(m);
}

/* pread-based libarchive callbacks: each reader has its own offset, so
 * several layers can stream from one fd at once. */
typedef struct {
  int fd;
  off_t off, size;
  char *buf;
} PreadCtx;

static la_ssize_t pread_cb(struct archive *a, void *p, const void **out)
{
  PreadCtx *c = p;
  for (;;) {
    ssize_t n = pread(c->fd, c->buf, READ_CHUNK, c->off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      archive_set_error(a, errno, "read failed");
      return -1;
    }
    c->off += n;
    *out = c->buf;
    return n;
  }
}

static la_int64_t skip_cb(struct archive *a, void *p, la_int64_t req)
{
  PreadCtx *c = p;
  la_int64_t can = MAX((la_int64_t)0, MIN(req, (la_int64_t)(c->size - c->off)));
  c->off += can;
  return can;
}

static int close_cb(struct archive *a, void *p)
{
  PreadCtx *c = p;
  g_free(c->buf);
  g_free(c);
  return ARCHIVE_OK;
}

gboolean sbx_archive_support_filters(struct archive *a, GError **err)
{
  /* Not archive_read_support_filter_all(): it would also run external
   * programs (lz4, lzop, lrzip, grzip, ...) on untrusted input. Each of these
   * answers ARCHIVE_WARN when it would fall back to an external program. */
  static const struct {
    const char *name;
    int (*enable)(struct archive *);
  } filters[] = {{"gzip", archive_read_support_filter_gzip},
                 {"bzip2", archive_read_support_filter_bzip2},
                 {"xz", archive_read_support_filter_xz},
                 {"zstd", archive_read_support_filter_zstd}};
  for (gsize i = 0; i < G_N_ELEMENTS(filters); i++)
    if (filters[i].enable(a) != ARCHIVE_OK)
      return sbx_fail(err, SBX_ERROR_FAILED,
                      "libarchive has no built-in %s decompressor (it would run a program)",
                      filters[i].name);
  return TRUE;
}

static struct archive *open_reader_as(SbxSource *src, gboolean raw, GError **err)
{
  struct archive *a = archive_read_new();
  if (!sbx_archive_support_filters(a, err)) {
    archive_read_free(a);
    return NULL;
  }
  if (raw)
    archive_read_support_format_raw(a);
  else
    archive_read_support_format_tar(a);
  PreadCtx *c = g_new0(PreadCtx, 1);
  c->fd = src->fd;
  c->size = src->file_size;
  c->buf = g_malloc(READ_CHUNK);
  archive_read_set_callback_data(a, c);
  archive_read_set_read_callback(a, pread_cb);
  archive_read_set_skip_callback(a, skip_cb);
  archive_read_set_close_callback(a, close_cb);
  if (archive_read_open1(a) != ARCHIVE_OK) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: not a tar archive: %s", src->path,
             archive_error_string(a));
    archive_read_free(a);
    return NULL;
  }
  return a;
}

static struct archive *open_reader(SbxSource *src, GError **err)
{
  return open_reader_as(src, FALSE, err);
}

/* An unnamed file in dir ($TMPDIR, else /tmp): O_TMPFILE, or where the file
 * system has none (EOPNOTSUPP; EISDIR and EINVAL from kernels and file
 * systems that do not know the flag) a mkstemp'ed file unlinked at once. */
static int open_unlinked_tmp(const char *dir)
{
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
    return fd;
  g_autofree char *name = g_build_filename(dir, "sbx-archive-XXXXXX", NULL);
  fd = g_mkstemp_full(name, O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 && unlink(name) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* A compressed archive (docker save | gzip) is decompressed once into an
 * unlinked temporary file: streaming each layer out of it would otherwise
 * decompress it from the start again, once per layer. */
static gboolean decompress_outer(SbxSource *src, guint64 max, GError **err)
{
  struct archive *a = open_reader_as(src, TRUE, err);
  struct archive_entry *e;
  if (!a)
    return FALSE;
  if (archive_read_next_header(a, &e) != ARCHIVE_OK ||
      archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
    archive_read_free(a);
    return TRUE;
  }
  const char *dir = g_get_tmp_dir();
  int tmp = open_unlinked_tmp(dir);
  if (tmp < 0) {
    archive_read_free(a);
    return sbx_fail_errno(err, "%s: decompress into %s", src->path, dir);
  }
  char *buf = g_malloc(READ_CHUNK);
  guint64 total = 0;
  la_ssize_t n;
  gboolean ok = TRUE;
  while (ok && (n = archive_read_data(a, buf, READ_CHUNK)) != 0) {
    if (n < 0)
      ok = sbx_fail(err, SBX_ERROR_INVALID, "%s: %s", src->path, archive_error_string(a));
    else if ((total += (guint64)n) > max)
      ok = sbx_fail(err, SBX_ERROR_INVALID,
                    "%s: expands beyond %" G_GUINT64_FORMAT
                    " bytes (the limit; SBX_MAX_LAYER_SIZE raises it)",
                    src->path, max);
    else if (!sbx_write_all(tmp, buf, (size_t)n, NULL))
      ok = sbx_fail_errno(err, "%s: decompress into %s", src->path, dir);
  }
  g_free(buf);
  archive_read_free(a);
  if (!ok) {
    close(tmp);
    return FALSE;
  }
  src->orig_fd = src->fd;
  src->fd = tmp;
  src->file_size = (off_t)total;
  sbx_debug("%s: compressed archive, %" G_GUINT64_FORMAT " bytes decompressed once", src->path,
            total);
  return TRUE;
}

static gboolean index_entry(SbxSource *src, struct archive *a, struct archive_entry *e,
                            guint64 ordinal, GError **err)
{
  const char *raw = archive_entry_pathname(e);
  g_autoptr(GError) local = NULL;
  g_autofree char *name = sbx_path_normalize_member(raw, &local);
  if (name == NULL)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: archive member %s", src->path, local->message);
  Member *m = g_new0(Member, 1);
  m->ordinal = ordinal;
  m->size = archive_entry_size(e);
  const char *hl = archive_entry_hardlink(e);
  if (hl) {
    m->type = 0;
    m->link = sbx_path_normalize_member(hl, &local);
    if (m->link == NULL) {
      member_free(m);
      return sbx_fail(err, SBX_ERROR_INVALID, "%s: archive member %s: hardlink %s", src->path, name,
                      local->message);
    }
  } else {
    m->type = (int)archive_entry_filetype(e);
    if (m->type == AE_IFLNK)
      m->link = g_strdup(archive_entry_symlink(e));
  }
  if (m->type == AE_IFREG && m->size >= 0 && (gsize)m->size <= CACHE_MEMBER_MAX &&
      src->cached + (gsize)m->size <= CACHE_TOTAL_MAX) {
    char *buf = g_malloc((gsize)m->size + 1);
    la_ssize_t n = archive_read_data(a, buf, (size_t)m->size);
    if (n != m->size) {
      g_free(buf);
      member_free(m);
      return sbx_fail(err, SBX_ERROR_INVALID, "%s: archive member %s: truncated (%s)", src->path,
                      name, n < 0 ? archive_error_string(a) : "short read");
    }
    m->data = g_bytes_new_take(buf, (gsize)m->size);
    src->cached += (gsize)m->size;
  }
  if (m->type == AE_IFDIR || *name == '\0') {
    member_free(m);
    return TRUE;
  }
  g_hash_table_replace(src->members, g_steal_pointer(&name), m);
  return TRUE;
}

static gboolean index_archive(SbxSource *src, GError **err)
{
  struct archive *a = open_reader(src, err);
  if (!a)
    return FALSE;
  struct archive_entry *e;
  guint64 ordinal = 0;
  gboolean ok = TRUE;
  for (;; ordinal++) {
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      ok = sbx_fail(err, SBX_ERROR_INVALID, "%s: %s", src->path, archive_error_string(a));
      break;
    }
    if (!(ok = index_entry(src, a, e, ordinal, err)))
      break;
  }
  if (ok && ordinal == 0)
    ok = sbx_fail(err, SBX_ERROR_INVALID, "%s: empty archive", src->path);
  archive_read_free(a);
  return ok;
}

SbxSource *sbx_source_open(const char *path, guint64 max_expanded, GError **err)
{
  g_autoptr(SbxSource) src = g_new0(SbxSource, 1);
  src->path = g_strdup(path);
  src->members = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, member_free);
  src->orig_fd = -1;
  src->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (src->fd < 0) {
    sbx_fail_errno(err, "%s", path);
    return NULL;
  }
  struct stat st;
  if (fstat(src->fd, &st) < 0) {
    sbx_fail_errno(err, "%s", path);
    return NULL;
  }
  src->opened = st;
  src->opened_ok = TRUE;
  if (S_ISDIR(st.st_mode)) {
    src->is_dir = TRUE;
    src->opened_ok = fstatat(src->fd, "index.json", &src->opened, 0) == 0;
    return g_steal_pointer(&src);
  }
  if (!S_ISREG(st.st_mode)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: not a regular file or directory", path);
    return NULL;
  }
  src->file_size = st.st_size;
  if (!decompress_outer(src, max_expanded, err) || !index_archive(src, err))
    return NULL;
  return g_steal_pointer(&src);
}

void sbx_source_free(SbxSource *src)
{
  if (!src)
    return;
  if (src->fd >= 0)
    close(src->fd);
  if (src->orig_fd >= 0)
    close(src->orig_fd);
  if (src->members)
    g_hash_table_destroy(src->members);
  if (src->ops && src->ops->free)
    src->ops->free(src->ops_data);
  g_free(src->path);
  g_free(src);
}

gboolean sbx_source_opened_stat(SbxSource *src, struct stat *st)
{
  if (src->opened_ok)
    *st = src->opened;
  return src->opened_ok;
}

int sbx_source_fd(SbxSource *src)
{
  return src->orig_fd >= 0 ? src->orig_fd : src->fd;
}

gboolean sbx_source_is_dir(SbxSource *src)
{
  return src->is_dir;
}

/* Follow symlinks and hardlinks inside the archive to the regular member. */
static Member *lookup(SbxSource *src, const char *member, GError **err)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *name = sbx_path_normalize_member(member, &local);
  if (name == NULL) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: %s (outside the archive)", src->path, local->message);
    return NULL;
  }
  for (int hops = 0; hops <= MAX_LINK_HOPS; hops++) {
    Member *m = g_hash_table_lookup(src->members, name);
    if (m == NULL) {
      sbx_fail(err, SBX_ERROR_NOT_FOUND, "%s: no member %s", src->path, name);
      return NULL;
    }
    if (m->type == AE_IFREG)
      return m;
    if (m->type == 0) {
      g_free(name);
      name = g_strdup(m->link);
    } else if (m->type == AE_IFLNK) {
      char *next = sbx_path_resolve_link(name, m->link, &local);
      if (!next) {
        sbx_fail(err, SBX_ERROR_INVALID, "%s: %s", src->path, local->message);
        return NULL;
      }
      g_free(name);
      name = next;
    } else {
      sbx_fail(err, SBX_ERROR_INVALID, "%s: member %s is not a regular file", src->path, name);
      return NULL;
    }
  }
  sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: too many levels of links", src->path, member);
  return NULL;
}

/* A directory source: resolve beneath the layout root; links may point
 * anywhere inside it but never out. */
static int open_in_dir(SbxSource *src, const char *member, GError **err)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *name = sbx_path_normalize_member(member, &local);
  if (name == NULL) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: %s (outside the layout)", src->path, local->message);
    return -1;
  }
  int fd;
  if (sbx_have_openat2()) {
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    fd = (int)syscall(SYS_openat2, src->fd, name, &how, sizeof how);
  } else {
    g_autofree char *dir = NULL, *base = NULL;
    sbx_path_split(name, &dir, &base);
    sbx_autofd dfd = sbx_open_dir_beneath(src->fd, dir, FALSE, NULL);
    fd = dfd < 0 ? -1 : openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  }
  if (fd < 0) {
    int e = errno;
    if (e == EXDEV)
      sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: link points outside the layout", src->path, name);
    else
      sbx_fail_errnum(err, e, "%s: %s", src->path, name);
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: not a regular file", src->path, name);
    return -1;
  }
  return fd;
}

gboolean sbx_source_has(SbxSource *src, const char *member)
{
  if (src->ops)
    return src->ops->has(src->ops_data, member);
  if (src->is_dir) {
    sbx_autofd fd = open_in_dir(src, member, NULL);
    return fd >= 0;
  }
  return lookup(src, member, NULL) != NULL;
}

gint64 sbx_source_size(SbxSource *src, const char *member, GError **err)
{
  if (src->ops)
    return src->ops->size(src->ops_data, member, err);
  if (src->is_dir) {
    sbx_autofd fd = open_in_dir(src, member, err);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
      return -1;
    return st.st_size;
  }
  Member *m = lookup(src, member, err);
  return m ? m->size : -1;
}

GBytes *sbx_source_read(SbxSource *src, const char *member, gsize max, GError **err)
{
  if (src->ops)
    return src->ops->read(src->ops_data, member, max, err);
  if (src->is_dir) {
    sbx_autofd fd = open_in_dir(src, member, err);
    if (fd < 0)
      return NULL;
    g_autofree char *what = g_strdup_printf("%s: %s", src->path, member);
    return sbx_read_fd_bounded(fd, max, what, err);
  }
  Member *m = lookup(src, member, err);
  if (m == NULL)
    return NULL;
  if (m->size < 0 || (guint64)m->size > max) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: member %s is larger than %zu bytes", src->path, member,
             (size_t)max);
    return NULL;
  }
  if (m->data)
    return g_bytes_ref(m->data);
  g_autoptr(SbxStream) s = sbx_source_open_stream(src, member, err);
  if (!s)
    return NULL;
  g_autoptr(GByteArray) buf = g_byte_array_sized_new((guint)m->size);
  guint8 chunk[65536];
  for (;;) {
    gssize n = sbx_stream_read(s, chunk, sizeof chunk, err);
    if (n < 0)
      return NULL;
    if (n == 0)
      break;
    if (buf->len + (gsize)n > max) {
      sbx_fail(err, SBX_ERROR_INVALID, "%s: member %s is too large", src->path, member);
      return NULL;
    }
    g_byte_array_append(buf, chunk, (guint)n);
  }
  return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

SbxStream *sbx_source_open_stream(SbxSource *src, const char *member, GError **err)
{
  if (src->ops)
    return src->ops->open_stream(src->ops_data, member, err);
  g_autoptr(SbxStream) s = g_new0(SbxStream, 1);
  s->fd = -1;
  if (src->is_dir) {
    s->fd = open_in_dir(src, member, err);
    return s->fd < 0 ? NULL : g_steal_pointer(&s);
  }
  Member *m = lookup(src, member, err);
  if (m == NULL)
    return NULL;
  if (m->data) {
    s->mem = g_bytes_ref(m->data);
    return g_steal_pointer(&s);
  }
  s->a = open_reader(src, err);
  if (!s->a)
    return NULL;
  struct archive_entry *e;
  for (guint64 i = 0; i <= m->ordinal; i++) {
    if (archive_read_next_header(s->a, &e) < ARCHIVE_WARN) {
      sbx_fail(err, SBX_ERROR_INVALID, "%s: %s", src->path, archive_error_string(s->a));
      return NULL;
    }
  }
  /* A sparse member's blocks skip its holes: archive_read_data fills them. */
  s->blocks = archive_entry_sparse_count(e) == 0;
  return g_steal_pointer(&s);
}

gssize sbx_stream_read(SbxStream *s, void *buf, gsize len, GError **err)
{
  if (s->read_fn)
    return s->read_fn(s->read_data, buf, len, err);
  if (s->mem) {
    gsize size;
    const guint8 *d = g_bytes_get_data(s->mem, &size);
    gsize n = MIN(len, size - s->pos);
    memcpy(buf, d + s->pos, n);
    s->pos += n;
    return (gssize)n;
  }
  if (s->a) {
    la_ssize_t n = archive_read_data(s->a, buf, len);
    if (n < 0) {
      sbx_fail(err, SBX_ERROR_INVALID, "archive: %s", archive_error_string(s->a));
      return -1;
    }
    return n;
  }
  for (;;) {
    ssize_t n = read(s->fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      sbx_fail_errno(err, "read");
    return n;
  }
}

gssize sbx_stream_read_block(SbxStream *s, void *buf, gsize len, const void **out, GError **err)
{
  if (s->a && s->blocks) {
    /* The archive reader's own buffer: no copy of a layer through ours. */
    const void *p = NULL;
    size_t size = 0;
    la_int64_t off = 0;
    int r = archive_read_data_block(s->a, &p, &size, &off);
    if (r == ARCHIVE_EOF)
      return 0;
    if (r < ARCHIVE_WARN) {
      sbx_fail(err, SBX_ERROR_INVALID, "archive: %s", archive_error_string(s->a));
      return -1;
    }
    if (off < 0 || (guint64)off != s->pos || size > G_MAXSSIZE) {
      sbx_fail(err, SBX_ERROR_INVALID, "archive: a member's data is not contiguous");
      return -1;
    }
    s->pos += size;
    *out = p;
    return (gssize)size;
  }
  *out = buf;
  return sbx_stream_read(s, buf, len, err);
}

void sbx_stream_free(SbxStream *s)
{
  if (!s)
    return;
  if (s->a)
    archive_read_free(s->a);
  if (s->fd >= 0)
    close(s->fd);
  if (s->mem)
    g_bytes_unref(s->mem);
  if (s->read_free)
    s->read_free(s->read_data);
  g_free(s);
}

SbxStream *sbx_stream_new_custom(SbxStreamReadFn read_fn, gpointer data, GDestroyNotify free_fn)
{
  SbxStream *s = g_new0(SbxStream, 1);
  s->fd = -1;
  s->read_fn = read_fn;
  s->read_data = data;
  s->read_free = free_fn;
  return s;
}

SbxSource *sbx_source_new_custom(const char *name, const SbxSourceOps *ops, gpointer data)
{
  SbxSource *src = g_new0(SbxSource, 1);
  src->path = g_strdup(name);
  src->fd = src->orig_fd = -1;
  src->ops = ops;
  src->ops_data = data;
  return src;
}

SbxStream *sbx_stream_open_file(const char *path, GError **err)
{
  g_autoptr(SbxStream) s = g_new0(SbxStream, 1);
  s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (s->fd < 0 || fstat(s->fd, &st) < 0) {
    sbx_fail_errno(err, "%s", path);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: not a regular file", path);
    return NULL;
  }
  return g_steal_pointer(&s);
}
