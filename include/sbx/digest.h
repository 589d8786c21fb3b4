/* digest: "sha256:<64 hex>" digests and a streaming hasher. */
#pragma once

#include <glib.h>

/* The one digest algorithm sbx accepts, as it prefixes a digest. */
#define SBX_DIGEST_PREFIX     "sha256:"
#define SBX_DIGEST_PREFIX_LEN (sizeof SBX_DIGEST_PREFIX - 1)

/* TRUE when s is "sha256:" followed by exactly 64 lowercase hex digits. */
gboolean sbx_digest_valid(const char *s);
/* Validate and return a pointer to the hex part; NULL with err otherwise. */
const char *sbx_digest_hex(const char *digest, GError **err);
/* The hex part of a digest already validated. */
static inline const char *sbx_digest_hex_of(const char *valid_digest)
{
  return valid_digest + SBX_DIGEST_PREFIX_LEN;
}
/* TRUE when s is exactly 64 lowercase hex digits. */
gboolean sbx_hex64_valid(const char *s);

/* sha256 of a buffer as "sha256:<hex>". */
char *sbx_digest_bytes(const void *data, gsize len);

typedef struct SbxHasher SbxHasher;
SbxHasher *sbx_hasher_new(void);
void sbx_hasher_update(SbxHasher *h, const void *data, gsize len);
/* "sha256:<hex>"; the hasher must not be updated afterwards. */
char *sbx_hasher_finish(SbxHasher *h);
void sbx_hasher_free(SbxHasher *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxHasher, sbx_hasher_free)
