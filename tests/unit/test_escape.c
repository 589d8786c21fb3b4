/* Unit tests for src/util/escape.c: untrusted text made safe for a terminal. */
#include "sbx/util.h"

#include <string.h>

static void check_text(const char *in, const char *want)
{
  g_autofree char *got = sbx_escape_text(in);
  g_assert_cmpstr(got, ==, want);
}

static void test_text_plain_unchanged(void)
{
  check_text("", "");
  check_text("/usr/src/app", "/usr/src/app");
  check_text("sh -c 'echo \\\"hi\\\"'", "sh -c 'echo \\\"hi\\\"'");
  check_text("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x90\xb3",
             "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x90\xb3");
  check_text(NULL, "");
}

static void test_text_controls(void)
{
  check_text("a\x1b]52;c;eA==\x07z", "a\\x1b]52;c;eA==\\x07z"); /* OSC 52 */
  check_text("line\nForged", "line\\x0aForged");
  check_text("tab\there\r", "tab\\x09here\\x0d");
  check_text("del\x7f", "del\\x7f");
}

static void test_text_c1_bidi_and_invalid(void)
{
  check_text("\xc2\x9b"
             "31m",
             "\\u009b31m"); /* C1 CSI as UTF-8 */
  check_text("\xc2\x9d"
             "0;t\xc2\x9c",
             "\\u009d0;t\\u009c");
  check_text("\xc2\xa0", "\xc2\xa0"); /* U+00A0 is printable */
  check_text("\xe2\x80\xae"
             "txt",
             "\\u202etxt"); /* RIGHT-TO-LEFT OVERRIDE */
  check_text("\xe2\x81\xa6"
             "x\xe2\x81\xa9",
             "\\u2066x\\u2069");
  check_text("a\xe2\x80\xa8"
             "b",
             "a\\u2028b");
  check_text("\x9b"
             "31m",
             "\\x9b31m");      /* a raw 8-bit CSI byte */
  check_text("\xc2", "\\xc2"); /* cut sequence */
  check_text("\xff\xfe", "\\xff\\xfe");
}

static void test_json_keeps_structure(void)
{
  g_autofree char *got = sbx_escape_json_text("{\n  \"a\" : \"x\xc2\x9b"
                                              "y\xe2\x80\xae"
                                              "z\x7f\",\n  \"b\" : 1\n}");
  g_assert_cmpstr(got, ==, "{\n  \"a\" : \"x\\u009by\\u202ez\\u007f\",\n  \"b\" : 1\n}");
  g_autofree char *plain = sbx_escape_json_text("[\"caf\xc3\xa9\"]");
  g_assert_cmpstr(plain, ==, "[\"caf\xc3\xa9\"]");
}

static void test_drop_long_lines(void)
{
  char a[] = "root:x:0:0::/root:/bin/sh\nxxxxxxxxxx\nalice:x:1000:1000::/home/alice:/bin/sh";
  gsize n = sbx_text_drop_long_lines(a, strlen(a), 30);
  g_assert_cmpmem(a, n, "root:x:0:0::/root:/bin/sh\nxxxxxxxxxx\n", 37);
  /* a line's newline counts; a last line without one is a line too */
  char b[] = "12345\n123456\n1234";
  n = sbx_text_drop_long_lines(b, strlen(b), 6);
  g_assert_cmpmem(b, n, "12345\n1234", 10);
  char c[] = "";
  g_assert_cmpuint(sbx_text_drop_long_lines(c, 0, 6), ==, 0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/escape/text/plain", test_text_plain_unchanged);
  g_test_add_func("/escape/text/controls", test_text_controls);
  g_test_add_func("/escape/text/c1-bidi-invalid", test_text_c1_bidi_and_invalid);
  g_test_add_func("/escape/json", test_json_keeps_structure);
  g_test_add_func("/escape/drop-long-lines", test_drop_long_lines);
  return g_test_run();
}
