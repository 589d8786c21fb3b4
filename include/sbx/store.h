/* store: the content-addressed store under $XDG_DATA_HOME/sbx.
 *
 *   layers/<idmap-key>/<diff-id hex>/   unpacked layers (overlay lowers)
 *   images/<config hex>.json, .run      the config, and what run needs of it
 *   refs/  archives/  layer-sizes/  seccomp/  locks/  lock  tmp/  run/
 *
 * docs/DESIGN.md "Store layout" says what each holds and how keys are made. */
#pragma once

#include <glib.h>
#include "sbx/image.h"
#include "sbx/user.h"

/* Everything it points to is its own. */
typedef struct {
  char *root; /* absolute path of the store */
  int rootfd;
  char *idmap_key;
  SbxIdMap idmap; /* the mapping its layers are unpacked under */
  guint64 max_layer_size;
  char *platform; /* --platform, NULL for this machine's */
  gint64 progress_delay_us;
} SbxStore;

/* Open (create) the store at root for layers under `map`, with the settings
 * (copied) that imports need. */
SbxStore *sbx_store_open(const char *root, const SbxIdMap *map, const SbxSettings *set,
                         GError **err);
void sbx_store_free(SbxStore *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxStore, sbx_store_free)

/* A ready-to-run image: config plus absolute paths of its layer dirs (top
 * layer last). */
typedef struct {
  char *id; /* config digest hex */
  SbxImageConfig *config;
  char **names;
  char **layer_dirs; /* relative to layers_dir, bottom first */
  char *layers_dir;  /* layers/<idmap-key> */
} SbxStoredImage;
void sbx_stored_image_free(SbxStoredImage *i);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxStoredImage, sbx_stored_image_free)

/* Make sure the image in `path` (archive or OCI dir, `select` picks one in a
 * multi-image archive) is in the store, unpacked under the store's mapping.
 * A cached archive (same device, inode, size, mtime) is not read again.
 * Unpacking runs in a helper process inside a user namespace. */
SbxStoredImage *sbx_store_ensure(SbxStore *s, const char *path, const char *select, gboolean quiet,
                                 GError **err);

/* Pull `reference` from its registry (sbx-store pull, in its own user
 * namespace) and read the image it stored. `policy` is sbx run's --pull
 * ("missing": a short name already in the store under one of its
 * registries.conf candidates is used, no pull; NULL or "always": pull). */
SbxStoredImage *sbx_store_pull(SbxStore *s, const char *reference, const char *policy,
                               gboolean quiet, GError **err);

/* The cache key of an archive: its device, inode, size and mtime (and the
 * image chosen in it). NULL when it cannot be stat'ed. */
char *sbx_store_archive_key(const char *path, const char *select, const char *platform);
/* The same for the archive open as fd: the file actually read is the one
 * remembered (a path swapped during an import cannot poison the cache). */
char *sbx_store_archive_key_fd(int fd, const char *select, const char *platform);
/* The same from a stat already taken (sbx_source_opened_stat). */
struct stat;
char *sbx_store_archive_key_stat(const struct stat *st, const char *select, const char *platform);

/* refs.c: names -> image ids. */
char *sbx_ref_normalize(const char *name);
gboolean sbx_ref_has_tag(const char *name);
gboolean sbx_ref_usable(const char *name);
gboolean sbx_store_tag(SbxStore *s, const char *name, const char *id_hex, GError **err);
/* The id `name` points at: TRUE with *id NULL when no such name, FALSE with
 * err when refs/ or the name's file cannot be read (never "no such name"). */
gboolean sbx_store_lookup_ref(SbxStore *s, const char *name, char **id, GError **err);
/* Names pointing at id_hex (all names when NULL), sorted; NULL with err when
 * refs/ or a name in it cannot be read. */
char **sbx_store_names_of(SbxStore *s, const char *id_hex, GError **err);
/* refs/<entry> points at an image without a record (prune removes it). */
gboolean sbx_store_ref_dangling(SbxStore *s, const char *entry);

/* The store-wide lock: shared by imports, exclusive for prune. -1 with err
 * (or, with nonblock, -1 and errno EWOULDBLOCK when busy). */
int sbx_store_lock(SbxStore *s, gboolean exclusive, gboolean nonblock, GError **err);
/* images/ locked exclusively (flock on the directory) while an image's two
 * record files are written or removed. Returns the fd, -1 with err. */
int sbx_store_lock_records(SbxStore *s, GError **err);
/* A layer's lock file locks/<map-key>-<hex>.lock, flock'ed with op (LOCK_SH
 * or LOCK_EX, maybe LOCK_NB); created when missing if create. prune unlinks
 * a lock file while holding it exclusively: a lock taken on a file unlinked
 * meanwhile is dropped and taken again on the new one. -1 with errno set:
 * EWOULDBLOCK (LOCK_NB, held) without err, anything else with err. */
int sbx_store_lock_layer(SbxStore *s, const char *key, const char *hex, int op, gboolean create,
                         GError **err);
/* Hold the image's layers for the life of a sandbox (shared locks that prune
 * respects), after checking they exist. Returns the lock fds. */
GArray *sbx_store_hold_layers(SbxStore *s, SbxStoredImage *img, GError **err);

/* gc.c (sbx-store): remove an image's names and record; delete unused layers. */
gboolean sbx_store_remove_image(SbxStore *s, const char *ref, gboolean force, GError **err);
gboolean sbx_store_prune(SbxStore *s, guint *layers, guint64 *bytes, GError **err);
/* Image ids (images/<hex>.json); NULL with err when images/ cannot be listed. */
GPtrArray *sbx_store_list_ids(SbxStore *s, GError **err);
/* Names in a store directory (not starting with '.'); NULL with err (errno
 * code) when it cannot be listed, or is missing. */
GPtrArray *sbx_store_list_dir(SbxStore *s, const char *dir, GError **err);
GBytes *sbx_store_read_config_raw(SbxStore *s, const char *id, GError **err);
SbxImageConfig *sbx_store_read_config(SbxStore *s, const char *id, GError **err);
guint64 sbx_store_layer_size(SbxStore *s, const char *hex);
/* Resolve a name, full id or unique id prefix to an image id. An image not
 * there is SBX_ERROR_NOT_FOUND; any other error is a store that cannot be
 * read (or an ambiguous prefix), never to be taken for "not there". */
char *sbx_store_resolve(SbxStore *s, const char *ref, GError **err);

/* Read an image record. */
SbxStoredImage *sbx_store_read_image(SbxStore *s, const char *id_hex, GError **err);

/* sbx-store: import an archive, unpacking in a child inside a user namespace
 * with the store's mapping; records names and the archive cache. Returns the
 * image id (config digest hex). */
char *sbx_store_import_isolated(SbxStore *s, const char *path, const char *select, gboolean quiet,
                                GError **err);
/* sbx load --rootfs: a plain root filesystem tarball (docker export) as a
 * one-layer image, named `name` when not NULL. */
char *sbx_store_import_rootfs_isolated(SbxStore *s, const char *path, const char *name,
                                       GError **err);
/* Run fn in a child inside a user namespace with the store's mapping and
 * no_new_privs; fn answers an image id (its error comes back as err). */
typedef char *(*SbxInUserns)(SbxStore *s, gpointer data, GError **err);
/* `what` ("import", "pull") names the child in errors. */
char *sbx_store_run_in_userns(SbxStore *s, const char *what, SbxInUserns fn, gpointer data,
                              GError **err);
/* In that child, after no_new_privs (store/confine.c): only the capabilities
 * unpacking needs, and a seccomp filter. */
gboolean sbx_store_confine_child(GError **err);
/* Unpack an image's missing layers (in parallel, with the progress bar) and
 * write its records and names. Returns the image id. */
char *sbx_store_import_image(SbxStore *s, SbxSource *src, SbxImage *img, gboolean quiet,
                             GError **err);
/* The work done inside that child. */
char *sbx_store_import(SbxStore *s, const char *path, const char *select, gboolean quiet,
                       GError **err);
/* Unpack one layer stream into the directory fd `dirfd` (empty). */
typedef struct {
  guint64 entries;
  guint64 bytes;
  guint skipped_devices;
  guint collapsed_owners;
  char *diff_id; /* out: the verified (or, without ref->diff_id, computed) digest */
} SbxUnpackStats;
/* Records the process's umask for the unpackers (which create files with
 * their final mode when it takes nothing off). Call while single-threaded;
 * without it every file's mode is set by fchmod. */
void sbx_unpack_note_umask(void);
/* progress (may be NULL) is advanced atomically by the blob bytes read. */
gboolean sbx_unpack_layer(SbxStream *blob, const SbxLayerRef *ref, int dirfd, const SbxIdMap *map,
                          guint64 max_size, SbxUnpackStats *stats, gint64 *progress, GError **err);
