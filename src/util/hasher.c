/* The streaming sha256 that every imported byte goes through. OpenSSL's
 * libcrypto uses the CPU's SHA extensions (measured here: ~2100 MB/s against
 * GChecksum's ~570 MB/s), so hashing does not become the bottleneck of an
 * import; GChecksum is the fallback when sbx is built without libcrypto. This
 * lives in sbx-store only: sbx's start path never hashes. */
#include "sbx-config.h"
#include "sbx/digest.h"
#include "sbx/util.h"

#ifdef SBX_HAVE_LIBCRYPTO
#include <openssl/evp.h>
#endif

struct SbxHasher {
#ifdef SBX_HAVE_LIBCRYPTO
  EVP_MD_CTX *ctx;
#else
  GChecksum *sum;
#endif
  char *result;
};

SbxHasher *sbx_hasher_new(void)
{
  SbxHasher *h = g_new0(SbxHasher, 1);
#ifdef SBX_HAVE_LIBCRYPTO
  h->ctx = EVP_MD_CTX_new();
  if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
    g_error("sha256: libcrypto failed to initialise");
#else
  h->sum = g_checksum_new(G_CHECKSUM_SHA256);
#endif
  return h;
}

void sbx_hasher_update(SbxHasher *h, const void *data, gsize len)
{
#ifdef SBX_HAVE_LIBCRYPTO
  EVP_DigestUpdate(h->ctx, data, len);
#else
  /* g_checksum_update takes gssize: feed huge buffers in pieces. */
  const guchar *p = data;
  while (len > 0) {
    gsize n = MIN(len, (gsize)G_MAXINT32);
    g_checksum_update(h->sum, p, (gssize)n);
    p += n;
    len -= n;
  }
#endif
}

char *sbx_hasher_finish(SbxHasher *h)
{
  if (!h->result) {
#ifdef SBX_HAVE_LIBCRYPTO
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, md, &n);
    GString *s = g_string_new(SBX_DIGEST_PREFIX);
    for (unsigned int i = 0; i < n; i++)
      g_string_append_printf(s, "%02x", md[i]);
    h->result = g_string_free(s, FALSE);
#else
    h->result = g_strconcat(SBX_DIGEST_PREFIX, g_checksum_get_string(h->sum), NULL);
#endif
  }
  return g_strdup(h->result);
}

void sbx_hasher_free(SbxHasher *h)
{
  if (!h)
    return;
#ifdef SBX_HAVE_LIBCRYPTO
  EVP_MD_CTX_free(h->ctx);
#else
  g_checksum_free(h->sum);
#endif
  g_free(h->result);
  g_free(h);
}
