/* Writing JSON strings without json-glib: sbx and sbx-net link only GLib
 * (start-up time, see docs/DESIGN.md), and --report and --net-log need only
 * flat values. Every string goes through here, whatever bytes it holds (argv,
 * image names, DNS names from the sandbox): the output is ASCII and valid
 * JSON (RFC 8259, section 7), so neither a parser nor a terminal showing the
 * file meets a raw control character, C1 or bidi code point. Valid UTF-8 is
 * written as \uXXXX of its code points (it reads back as it was); a byte that
 * is not part of valid UTF-8 as \u00XX, the byte's value. */
#include "sbx/util.h"

static void append_u(GString *out, gunichar c)
{
  if (c > 0xffff) { /* a surrogate pair */
    c -= 0x10000;
    g_string_append_printf(out, "\\u%04x\\u%04x", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
  } else {
    g_string_append_printf(out, "\\u%04x", c);
  }
}

void sbx_json_append_string(GString *out, const char *s)
{
  if (!s) {
    g_string_append(out, "null");
    return;
  }
  g_string_append_c(out, '"');
  const char *p = s;
  while (*p) {
    guchar c = (guchar)*p;
    if (c == '"' || c == '\\') {
      g_string_append_c(out, '\\');
      g_string_append_c(out, (char)c);
    } else if (c >= 0x20 && c < 0x7f) {
      g_string_append_c(out, (char)c);
    } else if (c == '\n') {
      g_string_append(out, "\\n");
    } else if (c == '\t') {
      g_string_append(out, "\\t");
    } else if (c < 0x80) {
      append_u(out, c);
    } else {
      gunichar u = g_utf8_get_char_validated(p, -1);
      if (u == (gunichar)-1 || u == (gunichar)-2) {
        append_u(out, c); /* not UTF-8: the byte */
      } else {
        append_u(out, u);
        p = g_utf8_next_char(p);
        continue;
      }
    }
    p++;
  }
  g_string_append_c(out, '"');
}
