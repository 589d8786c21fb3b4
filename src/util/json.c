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

/* The number literals of `text` in document order: for each, whether it is
 * an unsigned 64-bit integer (no sign, no fraction, at most 2^64-1), and
 * the gint64 json-glib makes of it when it is an integer at all. */
typedef struct {
  gboolean is_uint64, is_int;
  gint64 as_parsed;
} Literal;

static GArray *number_literals(const char *text, gsize len)
{
  GArray *out = g_array_new(FALSE, TRUE, sizeof(Literal));
  for (gsize i = 0; i < len && text[i];) {
    if (text[i] == '"') {
      for (i++; i < len && text[i] && text[i] != '"'; i++)
        if (text[i] == '\\')
          i++;
      i++;
      continue;
    }
    if (text[i] != '-' && !g_ascii_isdigit(text[i])) {
      i++;
      continue;
    }
    gsize start = i;
    while (i < len && text[i] && (g_ascii_isdigit(text[i]) || strchr("+-.eE", text[i])))
      i++;
    g_autofree char *lit = g_strndup(text + start, i - start);
    const char *digits = lit[0] == '-' ? lit + 1 : lit;
    Literal l = {0};
    guint64 v;
    /* json-glib: strtoull (saturating) on the digits, negated after */
    l.is_int = *digits && strspn(digits, "0123456789") == strlen(digits);
    v = l.is_int ? g_ascii_strtoull(digits, NULL, 10) : 0;
    l.as_parsed = lit[0] == '-' ? -(gint64)v : (gint64)v;
    l.is_uint64 =
        l.is_int && lit[0] != '-' && g_ascii_string_to_unsigned(lit, 10, 0, G_MAXUINT64, &v, NULL);
    g_array_append_val(out, l);
  }
  return out;
}

static void number_nodes(JsonNode *n, GPtrArray *out)
{
  if (JSON_NODE_HOLDS_OBJECT(n)) {
    JsonObject *o = json_node_get_object(n);
    GList *members = json_object_get_members(o);
    for (GList *m = members; m; m = m->next)
      number_nodes(json_object_get_member(o, m->data), out);
    g_list_free(members);
  } else if (JSON_NODE_HOLDS_ARRAY(n)) {
    JsonArray *a = json_node_get_array(n);
    for (guint i = 0; i < json_array_get_length(a); i++)
      number_nodes(json_array_get_element(a, i), out);
  } else if (JSON_NODE_HOLDS_VALUE(n) && (json_node_get_value_type(n) == G_TYPE_INT64 ||
                                          json_node_get_value_type(n) == G_TYPE_DOUBLE)) {
    g_ptr_array_add(out, n);
  }
}

GHashTable *sbx_json_uint64_nodes(JsonNode *root, const char *text, gsize len)
{
  g_autoptr(GArray) lits = number_literals(text, len);
  g_autoptr(GPtrArray) nodes = g_ptr_array_new();
  number_nodes(root, nodes);
  /* A member given twice keeps its first place and its last value: the
   * two orders no longer match, and nothing is trusted. */
  if (nodes->len != lits->len)
    return NULL;
  GHashTable *set = g_hash_table_new(g_direct_hash, g_direct_equal);
  for (guint i = 0; i < nodes->len; i++) {
    Literal *l = &g_array_index(lits, Literal, i);
    JsonNode *n = nodes->pdata[i];
    gboolean is_int = json_node_get_value_type(n) == G_TYPE_INT64;
    if (is_int != l->is_int || (is_int && json_node_get_int(n) != l->as_parsed)) {
      g_hash_table_unref(set);
      return NULL;
    }
    if (l->is_uint64)
      g_hash_table_add(set, n);
  }
  return set;
}

gboolean sbx_json_get_uint64(JsonObject *o, const char *member, GHashTable *uint64_nodes,
                             guint64 *out, const char *what, GError **err)
{
  JsonNode *n = json_object_get_member(o, member);
  gint64 v = 0;
  if (!sbx_json_get_int(o, member, &v, what, err))
    return FALSE;
  if (n == NULL || JSON_NODE_HOLDS_NULL(n))
    return TRUE;
  if (uint64_nodes ? !g_hash_table_contains(uint64_nodes, n) : v < 0)
    return sbx_fail(err, SBX_ERROR_INVALID, "%s: %s: not an unsigned 64-bit integer", what, member);
  *out = (guint64)v;
  return TRUE;
}
