/* Unit tests for src/util/json.c: bounded parsing and typed getters. */
#include "sbx/json.h"
#include "sbx/util.h"

#include <string.h>

static JsonNode *parse_ok(const char *text)
{
  g_autoptr(GError) err = NULL;
  JsonNode *n = sbx_json_parse(text, strlen(text), "test.json", &err);
  g_assert_no_error(err);
  g_assert_nonnull(n);
  return n;
}

static void assert_parse_refused(const char *data, gsize len, const char *msg_part)
{
  g_autoptr(GError) err = NULL;
  JsonNode *n = sbx_json_parse(data, len, "test.json", &err);
  g_assert_null(n);
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_true(g_str_has_prefix(err->message, "test.json: "));
  if (msg_part)
    g_assert_nonnull(strstr(err->message, msg_part));
}

/* `depth` nested arrays around a number: "[[[1]]]". */
static char *nested(const char *open, const char *close, guint depth)
{
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < depth; i++)
    g_string_append(s, open);
  g_string_append(s, "1");
  for (guint i = 0; i < depth; i++)
    g_string_append(s, close);
  return g_string_free(s, FALSE);
}

static void test_parse_object(void)
{
  g_autoptr(JsonNode) n = parse_ok("{\"a\": \"b\", \"n\": 3, \"l\": [\"x\", \"y\"]}");
  g_autoptr(GError) err = NULL;
  JsonObject *o = sbx_json_object(n, "test.json", &err);
  g_assert_no_error(err);
  g_assert_cmpuint(json_object_get_size(o), ==, 3);
  g_assert_cmpstr(json_object_get_string_member(o, "a"), ==, "b");
}

static void test_parse_invalid(void)
{
  const char *bad[] = {"{", "{\"a\":}", "[1,]", "nul", "{\"a\" 1}", "\"unterminated"};
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
    assert_parse_refused(bad[i], strlen(bad[i]), "invalid JSON");
  assert_parse_refused("", 0, NULL);
  assert_parse_refused("   ", 3, NULL);
}

static void test_depth_limit(void)
{
  g_autofree char *ok = nested("[", "]", SBX_JSON_MAX_DEPTH);
  g_autoptr(JsonNode) n = parse_ok(ok);
  g_assert_true(JSON_NODE_HOLDS_ARRAY(n));
  g_autofree char *deep = nested("[", "]", SBX_JSON_MAX_DEPTH + 1);
  assert_parse_refused(deep, strlen(deep), "nested deeper than 64");
  g_autofree char *objs = nested("{\"k\":", "}", SBX_JSON_MAX_DEPTH + 1);
  assert_parse_refused(objs, strlen(objs), "nested deeper");
  g_autofree char *objs_ok = nested("{\"k\":", "}", SBX_JSON_MAX_DEPTH);
  g_autoptr(JsonNode) n2 = parse_ok(objs_ok);
  g_assert_true(JSON_NODE_HOLDS_OBJECT(n2));
  g_autofree char *huge = nested("[", "]", 100000);
  assert_parse_refused(huge, strlen(huge), "nested deeper");
}

/* Closing brackets first must not earn credit for deeper nesting later. */
static void test_depth_no_negative_credit(void)
{
  g_autofree char *deep = nested("[", "]", SBX_JSON_MAX_DEPTH + 1);
  g_autofree char *text = g_strconcat("]]]]]]]]]]}}}}}", deep, NULL);
  assert_parse_refused(text, strlen(text), "nested deeper");
}

static void test_brackets_in_strings(void)
{
  g_autofree char *brackets = g_strnfill(200, '[');
  g_autofree char *text = g_strdup_printf("{\"s\": \"%s\", \"t\": [\"{{{{\"]}", brackets);
  g_autoptr(JsonNode) n = parse_ok(text);
  g_assert_cmpstr(json_object_get_string_member(json_node_get_object(n), "s"), ==, brackets);
}

static void test_escaped_quotes(void)
{
  /* An escaped quote does not end the string: the brackets after it are text. */
  g_autofree char *brackets = g_strnfill(200, '[');
  g_autofree char *text = g_strdup_printf("[\"a\\\"%s\"]", brackets);
  g_autoptr(JsonNode) n = parse_ok(text);
  g_autofree char *want = g_strconcat("a\"", brackets, NULL);
  g_assert_cmpstr(json_array_get_string_element(json_node_get_array(n), 0), ==, want);
  /* An escaped backslash does end it: the brackets after it are counted. */
  g_autofree char *deep = nested("[", "]", SBX_JSON_MAX_DEPTH);
  g_autofree char *text2 = g_strdup_printf("[\"a\\\\\", %s]", deep);
  assert_parse_refused(text2, strlen(text2), "nested deeper");
}

static void test_embedded_nul(void)
{
  const char text[] = "{\"a\": \"x\0y\"}";
  assert_parse_refused(text, sizeof text - 1, "NUL");
  /* json-glib takes comments; a quote inside one must not fool the depth count */
  const char *comment = "/* \" */ "
                        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]"
                        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]";
  assert_parse_refused(comment, strlen(comment), "comments");
  const char trailing[] = "{}\0";
  assert_parse_refused(trailing, sizeof trailing - 1, "NUL");
}

/* json-glib decodes a lone surrogate escape into bytes that are not UTF-8;
 * GVariant (the run record) takes only UTF-8. Found by fuzz_image. */
static void test_lone_surrogate(void)
{
  const char *bad = "{\"a\":[\"ok\",{\"b\":\"x\\ud800y\"}]}";
  assert_parse_refused(bad, strlen(bad), "not valid UTF-8");
  /* json-glib itself refuses other lone surrogates (as a member name, or a
   * low one): refused either way. */
  const char *also[] = {"{\"\\udfff\":1}", "{\"b\":\"\\udc00\"}"};
  for (gsize i = 0; i < G_N_ELEMENTS(also); i++)
    assert_parse_refused(also[i], strlen(also[i]), NULL);
  /* A proper pair is one character: accepted. */
  g_autoptr(JsonNode) n = parse_ok("{\"a\":\"\\ud83d\\ude00\"}");
  g_assert_cmpstr(json_object_get_string_member(json_node_get_object(n), "a"), ==,
                  "\xf0\x9f\x98\x80");
}

static void test_object_getter(void)
{
  g_autoptr(JsonNode) arr = parse_ok("[1]");
  g_autoptr(GError) err = NULL;
  g_assert_null(sbx_json_object(arr, "thing", &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_cmpstr(err->message, ==, "thing: expected a JSON object");
  g_clear_error(&err);
  g_assert_null(sbx_json_object(NULL, "thing", &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
}

#define DOC                                                                                        \
  "{\"s\": \"str\", \"n\": 42, \"f\": 1.5, \"z\": null, \"b\": true, "                             \
  "\"l\": [\"a\", \"b\"], \"mixed\": [\"a\", 2], \"o\": {}}"

static void assert_string_refused(JsonObject *o, const char *member)
{
  g_autoptr(GError) err = NULL;
  const char *s = "unset";
  g_assert_false(sbx_json_get_string(o, member, &s, "doc", &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_autofree char *want = g_strdup_printf("doc: %s: expected a string", member);
  g_assert_cmpstr(err->message, ==, want);
}

static void test_get_string(void)
{
  g_autoptr(JsonNode) n = parse_ok(DOC);
  JsonObject *o = json_node_get_object(n);
  g_autoptr(GError) err = NULL;
  const char *s = "unset";
  g_assert_true(sbx_json_get_string(o, "s", &s, "doc", &err));
  g_assert_cmpstr(s, ==, "str");
  g_assert_true(sbx_json_get_string(o, "absent", &s, "doc", &err));
  g_assert_null(s);
  s = "unset";
  g_assert_true(sbx_json_get_string(o, "z", &s, "doc", &err));
  g_assert_null(s);
  g_assert_no_error(err);
  const char *wrong[] = {"n", "f", "b", "l", "o"};
  for (guint i = 0; i < G_N_ELEMENTS(wrong); i++)
    assert_string_refused(o, wrong[i]);
}

static void assert_strv_refused(JsonObject *o, const char *member, const char *msg_part)
{
  g_autoptr(GError) err = NULL;
  g_auto(GStrv) v = NULL;
  g_assert_false(sbx_json_get_strv(o, member, &v, "doc", &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  g_assert_nonnull(strstr(err->message, msg_part));
  g_assert_null(v);
}

static void test_get_strv(void)
{
  g_autoptr(JsonNode) n = parse_ok(DOC);
  JsonObject *o = json_node_get_object(n);
  g_autoptr(GError) err = NULL;
  g_auto(GStrv) v = NULL;
  g_assert_true(sbx_json_get_strv(o, "l", &v, "doc", &err));
  g_assert_no_error(err);
  const char *want[] = {"a", "b", NULL};
  g_assert_true(g_strv_equal((const char *const *)v, want));
  g_auto(GStrv) none = NULL;
  g_assert_true(sbx_json_get_strv(o, "absent", &none, "doc", &err));
  g_assert_null(none);
  g_assert_true(sbx_json_get_strv(o, "z", &none, "doc", &err));
  g_assert_null(none);
  assert_strv_refused(o, "mixed", "doc: mixed[1]: expected a string");
  assert_strv_refused(o, "s", "doc: s: expected an array of strings");
  assert_strv_refused(o, "o", "expected an array of strings");
}

static void test_get_int(void)
{
  g_autoptr(JsonNode) n = parse_ok(DOC);
  JsonObject *o = json_node_get_object(n);
  g_autoptr(GError) err = NULL;
  gint64 v = -7;
  g_assert_true(sbx_json_get_int(o, "absent", &v, "doc", &err));
  g_assert_cmpint(v, ==, -7); /* untouched: the caller's default stays */
  g_assert_true(sbx_json_get_int(o, "n", &v, "doc", &err));
  g_assert_no_error(err);
  g_assert_cmpint(v, ==, 42);
  const char *wrong[] = {"s", "f", "b", "l"};
  for (guint i = 0; i < G_N_ELEMENTS(wrong); i++) {
    g_clear_error(&err);
    g_assert_false(sbx_json_get_int(o, wrong[i], &v, "doc", &err));
    g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "expected an integer"));
  }
  g_assert_cmpint(v, ==, 42);
}

/* util/json-out.c (--report, --net-log): ASCII out whatever came in, and
 * valid UTF-8 reads back as it was. */
static void assert_round_trip(const char *in)
{
  g_autoptr(GString) out = g_string_new("[");
  sbx_json_append_string(out, in);
  g_string_append_c(out, ']');
  for (gsize i = 0; i < out->len; i++)
    g_assert_true(out->str[i] >= 0x20 && out->str[i] < 0x7f);
  g_autoptr(JsonNode) n = parse_ok(out->str);
  g_assert_cmpstr(json_array_get_string_element(json_node_get_array(n), 0), ==, in);
}

static void test_write_string(void)
{
  char ascii[128];
  for (int i = 1; i < 128; i++)
    ascii[i - 1] = (char)i;
  ascii[127] = '\0';
  assert_round_trip(ascii); /* controls, quote, backslash, DEL */
  assert_round_trip("");
  assert_round_trip("plain \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 \xc2\x9b \xe2\x80\xae");
  assert_round_trip("\"\\/\b\f\n\r\t\x1f");
  g_autoptr(GString) out = g_string_new(NULL);
  sbx_json_append_string(out, "a\x01\"");
  g_assert_cmpstr(out->str, ==, "\"a\\u0001\\\"\"");
  g_string_truncate(out, 0);
  sbx_json_append_string(out, NULL);
  g_assert_cmpstr(out->str, ==, "null");
  /* bytes that are not UTF-8: each as \u00XX, the output still ASCII JSON */
  g_string_truncate(out, 0);
  sbx_json_append_string(out, "\xff\xc3(\x80");
  g_assert_cmpstr(out->str, ==, "\"\\u00ff\\u00c3(\\u0080\"");
  char high[129];
  for (int i = 0; i < 128; i++)
    high[i] = (char)(0x80 + i);
  high[128] = '\0';
  g_string_truncate(out, 0);
  g_string_append_c(out, '[');
  sbx_json_append_string(out, high);
  g_string_append_c(out, ']');
  for (gsize i = 0; i < out->len; i++)
    g_assert_true(out->str[i] >= 0x20 && out->str[i] < 0x7f);
  g_autoptr(JsonNode) n = parse_ok(out->str);
  g_assert_nonnull(n);
}

/* Found by tests/fuzz/fuzz_image: an empty member (manifest.json of 0 bytes)
 * reaches the parser as (NULL, 0); memchr(NULL, ...) is undefined. */
static void test_empty_member(void)
{
  assert_parse_refused(NULL, 0, "empty JSON document");
  assert_parse_refused("", 0, "empty JSON document");
}

/* json-glib gives -1 for 18446744073709551615: the text tells them apart. */
static void test_get_uint64(void)
{
  const char *text = "{\"max\": 18446744073709551615, \"minus\": -1, \"neg\": -5, "
                     "\"big\": 18446744073709551616, \"s\": \"-1 in a \\\" string 7\", "
                     "\"high\": 9223372036854775808, \"d\": 1.5, \"n\": [0, 42]}";
  g_autoptr(JsonNode) root = parse_ok(text);
  JsonObject *o = json_node_get_object(root);
  g_autoptr(GHashTable) set = sbx_json_uint64_nodes(root, text, strlen(text));
  g_assert_nonnull(set);
  guint64 v = 0;
  g_autoptr(GError) err = NULL;
  g_assert_true(sbx_json_get_uint64(o, "max", set, &v, "t", &err));
  g_assert_cmpuint(v, ==, G_MAXUINT64);
  g_assert_true(sbx_json_get_uint64(o, "high", set, &v, "t", &err));
  g_assert_cmpuint(v, ==, G_GUINT64_CONSTANT(9223372036854775808));
  v = 7;
  g_assert_true(sbx_json_get_uint64(o, "absent", set, &v, "t", &err));
  g_assert_cmpuint(v, ==, 7);
  const char *refused[] = {"minus", "neg", "big", "d", "s"};
  for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
    g_assert_false(sbx_json_get_uint64(o, refused[i], set, &v, "t", &err));
    g_clear_error(&err);
  }
  /* Without the set (a member given twice): what fits in a gint64, >= 0. */
  const char *dup = "{\"a\": \"x\", \"b\": 18446744073709551615, \"a\": 3}";
  g_autoptr(JsonNode) droot = parse_ok(dup);
  g_autoptr(GHashTable) none = sbx_json_uint64_nodes(droot, dup, strlen(dup));
  g_assert_null(none);
  g_assert_false(sbx_json_get_uint64(json_node_get_object(droot), "b", NULL, &v, "t", &err));
  g_clear_error(&err);
  g_assert_true(sbx_json_get_uint64(json_node_get_object(droot), "a", NULL, &v, "t", &err));
  g_assert_cmpuint(v, ==, 3);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/json/parse-object", test_parse_object);
  g_test_add_func("/json/parse-invalid", test_parse_invalid);
  g_test_add_func("/json/depth-limit", test_depth_limit);
  g_test_add_func("/json/depth-no-negative-credit", test_depth_no_negative_credit);
  g_test_add_func("/json/brackets-in-strings", test_brackets_in_strings);
  g_test_add_func("/json/escaped-quotes", test_escaped_quotes);
  g_test_add_func("/json/embedded-nul", test_embedded_nul);
  g_test_add_func("/json/empty-member", test_empty_member);
  g_test_add_func("/json/lone-surrogate", test_lone_surrogate);
  g_test_add_func("/json/object-getter", test_object_getter);
  g_test_add_func("/json/get-string", test_get_string);
  g_test_add_func("/json/get-strv", test_get_strv);
  g_test_add_func("/json/get-int", test_get_int);
  g_test_add_func("/json/get-uint64", test_get_uint64);
  g_test_add_func("/json/write-string", test_write_string);
  return g_test_run();
}
