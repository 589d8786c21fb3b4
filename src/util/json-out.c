/* Writing JSON without json-glib: sbx links only GLib (start-up time, see
 * docs/DESIGN.md), and --report needs only flat values. Every string goes
 * through here: valid UTF-8 out (invalid bytes become U+FFFD), quotes,
 * backslashes and control characters escaped (RFC 8259, section 7). */
#include "sbx/util.h"

void sbx_json_append_string(GString *out, const char *s)
{
  if (!s) {
    g_string_append(out, "null");
    return;
  }
  g_autofree char *valid = g_utf8_make_valid(s, -1);
  g_string_append_c(out, '"');
  for (const unsigned char *p = (const unsigned char *)valid; *p; p++) {
    switch (*p) {
    case '"':
      g_string_append(out, "\\\"");
      break;
    case '\\':
      g_string_append(out, "\\\\");
      break;
    case '\n':
      g_string_append(out, "\\n");
      break;
    case '\r':
      g_string_append(out, "\\r");
      break;
    case '\t':
      g_string_append(out, "\\t");
      break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        g_string_append_printf(out, "\\u%04x", *p);
      else
        g_string_append_c(out, (char)*p);
    }
  }
  g_string_append_c(out, '"');
}
