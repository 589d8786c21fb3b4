/* Writing one JSON string from untrusted bytes, for the few JSON lines sbx
 * writes without json-glib (sbx and sbx-net do not link it). */
#include "sbx/util.h"

void sbx_json_append_string(GString *out, const char *bytes, gsize len)
{
  static const char hex[] = "0123456789abcdef";
  g_string_append_c(out, '"');
  for (gsize i = 0; i < len; i++) {
    guchar c = (guchar)bytes[i];
    if (c == '"' || c == '\\') {
      g_string_append_c(out, '\\');
      g_string_append_c(out, (char)c);
    } else if (c >= 0x20 && c < 0x7f) {
      g_string_append_c(out, (char)c);
    } else {
      /* Control characters, DEL and every byte of the upper half: the
       * output stays ASCII and valid JSON whatever came in (no invalid
       * UTF-8, no terminal escapes for whoever reads the file). */
      g_string_append(out, "\\u00");
      g_string_append_c(out, hex[c >> 4]);
      g_string_append_c(out, hex[c & 15]);
    }
  }
  g_string_append_c(out, '"');
}
