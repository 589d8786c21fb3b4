/* reference: image references in docker's grammar (distribution/reference).
 *   busybox             -> docker.io/library/busybox:latest
 *   HOST[:PORT]/PATH[:TAG][@sha256:HEX]
 * Pure GLib: sbx run decides with it whether IMAGE is something to pull. */
#pragma once

#include <glib.h>

typedef struct {
  char *domain; /* "docker.io", "quay.io", "127.0.0.1:5000" */
  char *path;   /* "library/busybox" */
  char *tag;    /* "latest" when neither tag nor digest was given; NULL with only a digest */
  char *digest; /* "sha256:<64 hex>" or NULL */
} SbxImageRef;

/* Parse a reference; NULL with an error saying what is wrong. */
SbxImageRef *sbx_image_ref_parse(const char *text, GError **err);
void sbx_image_ref_free(SbxImageRef *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxImageRef, sbx_image_ref_free)
/* The full name the store records: "domain/path:tag", or "domain/path@digest"
 * when pulled by digest alone. */
char *sbx_image_ref_name(const SbxImageRef *r);
/* What to ask the registry for: the digest when given, else the tag. */
const char *sbx_image_ref_reference(const SbxImageRef *r);
