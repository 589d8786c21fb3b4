/* Text from an image (config fields, history, names) or from any other
 * untrusted source, made safe to print on a terminal (issue 9). An escape
 * sequence could otherwise move the cursor, rewrite what is on screen, set
 * the window title, or write the clipboard (OSC 52). What is escaped: C0
 * controls and DEL, the C1 controls U+0080..U+009F (8-bit CSI, OSC, DCS:
 * xterm obeys them in UTF-8 too), bytes that are not UTF-8, and the
 * characters that reorder or break lines (bidi overrides, U+2028/9), which
 * make a line read as something else. */
#include "sbx/util.h"

#include <string.h>

static gboolean disruptive(gunichar c)
{
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x200e || c == 0x200f ||
         (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029;
}

/* Walk s: plain runs are copied, each disruptive character or invalid byte
 * is handed to `escape`. */
static char *escape_with(const char *s, void (*escape)(GString *out, gunichar c, gboolean byte))
{
  GString *out = g_string_sized_new(s ? strlen(s) : 0);
  const char *p = s ? s : "";
  while (*p) {
    gunichar c = g_utf8_get_char_validated(p, -1);
    if (c == (gunichar)-1 || c == (gunichar)-2) {
      escape(out, (guchar)*p, TRUE);
      p++;
      continue;
    }
    const char *next = g_utf8_next_char(p);
    if (disruptive(c))
      escape(out, c, FALSE);
    else
      g_string_append_len(out, p, next - p);
    p = next;
  }
  return g_string_free(out, FALSE);
}

static void escape_text(GString *out, gunichar c, gboolean byte)
{
  if (byte || c < 0x80)
    g_string_append_printf(out, "\\x%02x", (unsigned)c);
  else
    g_string_append_printf(out, "\\u%04x", (unsigned)c);
}

char *sbx_escape_text(const char *s)
{
  return escape_with(s, escape_text);
}

/* json-glib escapes only C0 controls inside strings; DEL, C1 and the rest
 * go out raw. Outside strings JSON text is ASCII structure, whose newlines
 * and indentation stay; an invalid byte becomes U+FFFD. */
static void escape_json(GString *out, gunichar c, gboolean byte)
{
  if (c == '\n')
    g_string_append_c(out, (char)c);
  else
    g_string_append_printf(out, "\\u%04x", byte ? 0xfffdu : (unsigned)c);
}

char *sbx_escape_json_text(const char *json)
{
  return escape_with(json, escape_json);
}

gsize sbx_text_drop_long_lines(char *data, gsize len, gsize max)
{
  gsize out = 0, start = 0;
  while (start < len) {
    const char *nl = memchr(data + start, '\n', len - start);
    gsize end = nl ? (gsize)(nl - data) + 1 : len;
    if (end - start <= max) {
      memmove(data + out, data + start, end - start);
      out += end - start;
    }
    start = end;
  }
  return out;
}
