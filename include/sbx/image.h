/* image: archive formats (docker-archive, OCI archive, OCI layout) -> an image
 * description: its config and its layers, with every digest to verify. */
#pragma once

#include <glib.h>
#include "sbx/source.h"

typedef struct {
  char **entrypoint; /* NULL when unset */
  char **cmd;
  char **env; /* "KEY=VALUE" */
  char *workdir;
  char *user;
  char *hostname;
  char *architecture;
  char *os;
  char **diff_ids; /* rootfs.diff_ids */
} SbxImageConfig;

void sbx_image_config_free(SbxImageConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxImageConfig, sbx_image_config_free)
SbxImageConfig *sbx_image_config_parse(const char *data, gsize len, GError **err);
/* store/record.c: the run record (GVariant), readable without json-glib. */
GBytes *sbx_image_config_to_record(const SbxImageConfig *c);
SbxImageConfig *sbx_image_config_from_record(GBytes *data, GError **err);

typedef struct {
  char *member;      /* path of the blob inside the source */
  char *blob_digest; /* digest of the stored bytes, NULL when the format has none (legacy docker) */
  char *diff_id;     /* digest of the uncompressed tar: the store key */
  char *media_type;  /* NULL for docker legacy */
  gint64 size;       /* descriptor size, -1 when unknown */
} SbxLayerRef;

typedef struct {
  char *config_digest; /* "sha256:..." of the config bytes */
  GBytes *config_raw;
  SbxImageConfig *config;
  GPtrArray *layers;  /* SbxLayerRef*, bottom layer first */
  char **names;       /* repo tags / ref names, may be empty */
  const char *format; /* "docker-archive", "oci-archive", "oci-dir" */
} SbxImage;

void sbx_image_free(SbxImage *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxImage, sbx_image_free)

/* Read the image description from an opened source. `select` picks an image
 * by name ("name:tag") in multi-image archives; NULL takes the only one. All
 * small blobs (index, manifest, config) are digest-checked here; layer blobs
 * are checked while they are unpacked. */
SbxImage *sbx_image_load(SbxSource *src, const char *select, GError **err);

/* The architecture name OCI uses for this build ("amd64", "arm64", ...). */
const char *sbx_image_host_arch(void);
/* --platform: which architecture to pick from a multi-platform index
 * (default: this machine's). */
gboolean sbx_image_set_platform(const char *platform, GError **err);
const char *sbx_image_wanted_arch(void);

/* Internal to src/image/: one per format. */
SbxImage *sbx_image_load_docker(SbxSource *src, const char *select, GError **err);
SbxImage *sbx_image_load_oci(SbxSource *src, const char *select, GError **err);
/* A registry's image seen as an OCI layout (registry/layout.c): it is named
 * `name`, the reference pulled, and by nothing inside it (no annotation is
 * read: an index cannot put the image under another name, nor leave the
 * pulled one unrecorded). */
SbxImage *sbx_image_load_oci_named(SbxSource *src, const char *name, GError **err);
/* A name an archive gives its image (a RepoTag, a ref.name annotation): not
 * one pinned by a digest ("x@sha256:..."), which docker load refuses too. */
gboolean sbx_image_archive_name_ok(const char *name, const char *what, GError **err);
gboolean sbx_image_finish(SbxImage *img, GError **err);
void sbx_layer_ref_free(gpointer p);
/* The digest a member path names ("blobs/sha256/<hex>", "<hex>.json"), or NULL. */
char *sbx_image_digest_from_path(const char *member);
/* Read a small blob and check it against `digest` (and size when >= 0). */
GBytes *sbx_image_read_blob(SbxSource *src, const char *member, const char *digest, gint64 size,
                            GError **err);
