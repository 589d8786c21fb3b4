/* Bounded JSON: json-glib parses; we only refuse what would hurt it. */
#include "sbx/json.h"
#include "sbx/util.h"

#include <string.h>

/* json-glib's parser recurses per nesting level: a hostile "[[[[..." could
 * exhaust the stack. Count depth first (strings skipped, escapes honoured).
 * json-glib also takes comments, which JSON has not: a '/' outside a string
 * is refused, so no comment can hide a quote from this count. */
static gboolean json_shape_ok(const char *data, gsize len, guint max, const char **why)
{
  guint depth = 0;
  gboolean in_str = FALSE;
  for (gsize i = 0; i < len; i++) {
    char c = data[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = FALSE;
    } else if (c == '"') {
      in_str = TRUE;
    } else if (c == '/') {
      *why = "invalid JSON: comments are not JSON";
      return FALSE;
    } else if (c == '[' || c == '{') {
      if (++depth > max) {
        *why = "JSON nested deeper than " G_STRINGIFY(SBX_JSON_MAX_DEPTH) " levels";
        return FALSE;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return TRUE;
}

/* json-glib turns a lone surrogate escape ("\ud800") into bytes that are not
 * UTF-8, and GVariant, GLib's string functions and our records take only
 * UTF-8: every string and member name is checked once, here. The walk is
 * bounded by the depth check above. */
static gboolean json_strings_valid(JsonNode *node)
{
  switch (JSON_NODE_TYPE(node)) {
  case JSON_NODE_OBJECT: {
    JsonObjectIter it;
    const char *name;
    JsonNode *member;
    json_object_iter_init(&it, json_node_get_object(node));
    while (json_object_iter_next(&it, &name, &member))
      if (!g_utf8_validate(name, -1, NULL) || !json_strings_valid(member))
        return FALSE;
    return TRUE;
  }
  case JSON_NODE_ARRAY: {
    JsonArray *a = json_node_get_array(node);
    guint n = json_array_get_length(a);
    for (guint i = 0; i < n; i++)
      if (!json_strings_valid(json_array_get_element(a, i)))
        return FALSE;
    return TRUE;
  }
  case JSON_NODE_VALUE:
    return json_node_get_value_type(node) != G_TYPE_STRING ||
           g_utf8_validate(json_node_get_string(node), -1, NULL);
  case JSON_NODE_NULL:
  default:
    return TRUE;
  }
}

JsonNode *sbx_json_parse(const char *data, gsize len, const char *what, GError **err)
{
  const char *why = "too large";
  if (len > G_MAXSSIZE || !json_shape_ok(data, len, SBX_JSON_MAX_DEPTH, &why)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: %s", what, why);
    return NULL;
  }
  if (len == 0) { /* an empty member: (NULL, 0) from an empty GBytes */
    sbx_fail(err, SBX_ERROR_INVALID, "%s: empty JSON document", what);
    return NULL;
  }
  if (memchr(data, '\0', len) != NULL) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: invalid JSON: contains a NUL byte", what);
    return NULL;
  }
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) local = NULL;
  if (!json_parser_load_from_data(parser, data, (gssize)len, &local)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: invalid JSON: %s", what, local->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: empty JSON document", what);
    return NULL;
  }
  if (!json_strings_valid(root)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: invalid JSON: a string is not valid UTF-8", what);
    return NULL;
  }
  return json_node_ref(root);
}

JsonObject *sbx_json_object(JsonNode *node, const char *what, GError **err)
{
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: expected a JSON object", what);
    return NULL;
  }
  return json_node_get_object(node);
}

gboolean sbx_json_get_string(JsonObject *o, const char *member, const char **out, const char *what,
                             GError **err)
{
  *out = NULL;
  JsonNode *n = json_object_get_member(o, member);
  if (n == NULL || JSON_NODE_HOLDS_NULL(n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: expected a string", what, member);
  *out = json_node_get_string(n);
  return TRUE;
}

gboolean sbx_json_get_strv(JsonObject *o, const char *member, GStrv *out, const char *what,
                           GError **err)
{
  *out = NULL;
  JsonNode *n = json_object_get_member(o, member);
  if (n == NULL || JSON_NODE_HOLDS_NULL(n))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY(n))
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: expected an array of strings", what, member);
  JsonArray *a = json_node_get_array(n);
  guint len = json_array_get_length(a);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
      return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s[%u]: expected a string", what, member, i);
    g_strv_builder_add(b, json_node_get_string(e));
  }
  *out = g_strv_builder_end(b);
  return TRUE;
}

const char *sbx_json_string_or_null(JsonObject *o, const char *member)
{
  JsonNode *n = json_object_get_member(o, member);
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
             ? json_node_get_string(n)
             : NULL;
}

gint64 sbx_json_int_or(JsonObject *o, const char *member, gint64 fallback)
{
  JsonNode *n = json_object_get_member(o, member);
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64
             ? json_node_get_int(n)
             : fallback;
}

gboolean sbx_json_get_int(JsonObject *o, const char *member, gint64 *out, const char *what,
                          GError **err)
{
  JsonNode *n = json_object_get_member(o, member);
  if (n == NULL || JSON_NODE_HOLDS_NULL(n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: expected an integer", what, member);
  *out = json_node_get_int(n);
  return TRUE;
}
