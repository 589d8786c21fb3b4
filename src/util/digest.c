/* sha256 digests through GChecksum. */
#include "sbx/digest.h"
#include "sbx/util.h"

#include <string.h>

gboolean sbx_hex64_valid(const char *s)
{
  if (s == NULL || strlen(s) != 64)
    return FALSE;
  for (const char *p = s; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return FALSE;
  return TRUE;
}

gboolean sbx_digest_valid(const char *s)
{
  return s != NULL && g_str_has_prefix(s, "sha256:") && sbx_hex64_valid(s + 7);
}

const char *sbx_digest_hex(const char *digest, GError **err)
{
  if (!sbx_digest_valid(digest)) {
    g_autofree char *shown = g_strndup(digest ? digest : "(none)", 80);
    sbx_fail(err, SBX_ERROR_INVALID, "invalid digest '%s': want sha256:<64 hex digits>", shown);
    return NULL;
  }
  return digest + 7;
}

struct SbxHasher {
  GChecksum *sum;
};

SbxHasher *sbx_hasher_new(void)
{
  SbxHasher *h = g_new0(SbxHasher, 1);
  h->sum = g_checksum_new(G_CHECKSUM_SHA256);
  return h;
}

void sbx_hasher_update(SbxHasher *h, const void *data, gsize len)
{
  /* g_checksum_update takes gssize: feed huge buffers in pieces. */
  const guchar *p = data;
  while (len > 0) {
    gsize n = MIN(len, (gsize)G_MAXINT32);
    g_checksum_update(h->sum, p, (gssize)n);
    p += n;
    len -= n;
  }
}

char *sbx_hasher_finish(SbxHasher *h)
{
  return g_strconcat("sha256:", g_checksum_get_string(h->sum), NULL);
}

void sbx_hasher_free(SbxHasher *h)
{
  if (h) {
    g_checksum_free(h->sum);
    g_free(h);
  }
}

char *sbx_digest_bytes(const void *data, gsize len)
{
  g_autoptr(SbxHasher) h = sbx_hasher_new();
  sbx_hasher_update(h, data, len);
  return sbx_hasher_finish(h);
}
