/* source: the members of an image archive (a tar, possibly compressed) or of
 * an OCI layout directory, read without trusting any path in it. */
#pragma once

#include <glib.h>
#include <sys/types.h>

typedef struct SbxSource SbxSource;
typedef struct SbxStream SbxStream;

/* Largest JSON member (manifest, index, config) read into memory. */
#define SBX_MAX_JSON_MEMBER (16u << 20)

/* Enable libarchive's decompressors that run in this process (gzip, bzip2,
 * xz, zstd) and no other; FALSE when libarchive would run an external
 * program for one of them (built without its library): untrusted input
 * never reaches a program found in $PATH. */
struct archive;
gboolean sbx_archive_support_filters(struct archive *a, GError **err);

/* Open a tar archive or a directory. The archive is indexed once (headers
 * only, data skipped); nothing is extracted. A compressed archive (docker
 * save | gzip) is decompressed once into an unnamed file in $TMPDIR (else
 * /tmp; O_TMPFILE, or mkstemp and unlink where unsupported), at most max_expanded bytes
 * (the same bound as a layer's: SbxSettings.max_layer_size). */
SbxSource *sbx_source_open(const char *path, guint64 max_expanded, GError **err);
void sbx_source_free(SbxSource *src);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxSource, sbx_source_free)

gboolean sbx_source_is_dir(SbxSource *src);
/* The archive file or layout directory, as opened. */
int sbx_source_fd(SbxSource *src);
/* The fstat of the archive (a layout's index.json) taken as it was opened,
 * before sbx_source_open decompressed or indexed it; FALSE when not taken. */
struct stat;
gboolean sbx_source_opened_stat(SbxSource *src, struct stat *st);
/* Does the member exist (after following in-archive links)? */
gboolean sbx_source_has(SbxSource *src, const char *member);
/* Read a member of at most max bytes. Symlinks and hardlinks inside the
 * archive are followed but never out of it. */
GBytes *sbx_source_read(SbxSource *src, const char *member, gsize max, GError **err);
/* Size of a member, -1 with err when missing. */
gint64 sbx_source_size(SbxSource *src, const char *member, GError **err);

/* Stream a member's bytes (for layers). */
SbxStream *sbx_source_open_stream(SbxSource *src, const char *member, GError **err);
/* A whole regular file as a stream (a rootfs tarball). */
SbxStream *sbx_stream_open_file(const char *path, GError **err);
/* Returns bytes read, 0 at end, -1 with err. */
gssize sbx_stream_read(SbxStream *s, void *buf, gsize len, GError **err);
/* Like sbx_stream_read, but *out may point into the stream's own buffer
 * (valid until the next call) instead of buf, and the block may be longer
 * than len. */
gssize sbx_stream_read_block(SbxStream *s, void *buf, gsize len, const void **out, GError **err);
void sbx_stream_free(SbxStream *s);

/* A source that is not a file or directory (store/pull.c: a registry): its
 * members are produced by these functions. */
typedef struct {
  gboolean (*has)(gpointer data, const char *member);
  gint64 (*size)(gpointer data, const char *member, GError **err);
  GBytes *(*read)(gpointer data, const char *member, gsize max, GError **err);
  SbxStream *(*open_stream)(gpointer data, const char *member, GError **err);
  void (*free)(gpointer data);
} SbxSourceOps;
SbxSource *sbx_source_new_custom(const char *name, const SbxSourceOps *ops, gpointer data);
/* A stream whose bytes come from read_fn (same contract as sbx_stream_read). */
typedef gssize (*SbxStreamReadFn)(gpointer data, void *buf, gsize len, GError **err);
SbxStream *sbx_stream_new_custom(SbxStreamReadFn read_fn, gpointer data, GDestroyNotify free_fn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxStream, sbx_stream_free)
