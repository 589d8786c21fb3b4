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
  return s != NULL && g_str_has_prefix(s, SBX_DIGEST_PREFIX) &&
         sbx_hex64_valid(sbx_digest_hex_of(s));
}

const char *sbx_digest_hex(const char *digest, GError **err)
{
  if (!sbx_digest_valid(digest)) {
    g_autofree char *shown = g_strndup(digest ? digest : "(none)", 80);
    sbx_fail(err, SBX_ERROR_INVALID, "invalid digest '%s': want sha256:<64 hex digits>", shown);
    return NULL;
  }
  return sbx_digest_hex_of(digest);
}

char *sbx_digest_bytes(const void *data, gsize len)
{
  g_autofree char *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
  return g_strconcat(SBX_DIGEST_PREFIX, hex, NULL);
}
