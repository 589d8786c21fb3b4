/* json: bounded parsing of untrusted JSON through json-glib. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#define SBX_JSON_MAX_DEPTH 64

/* Parse untrusted JSON (size already bounded by the caller). Refuses nesting
 * deeper than SBX_JSON_MAX_DEPTH before json-glib's recursive parser sees it.
 * `what` names the input in errors. Returns the root node (owned). */
JsonNode *sbx_json_parse(const char *data, gsize len, const char *what, GError **err);

/* Typed accessors that refuse wrong types ("what.member: expected string"). */
JsonObject *sbx_json_object(JsonNode *node, const char *what, GError **err);
/* Optional string member: NULL when absent or null; error when not a string. */
gboolean sbx_json_get_string(JsonObject *o, const char *member, const char **out, const char *what,
                             GError **err);
/* Optional array of strings: NULL when absent or null. */
gboolean sbx_json_get_strv(JsonObject *o, const char *member, GStrv *out, const char *what,
                           GError **err);
gboolean sbx_json_get_int(JsonObject *o, const char *member, gint64 *out, const char *what,
                          GError **err);

/* json-glib keeps an integer literal's 64 bits in a gint64: 18446744073709551615
 * and -1 are the same node (and any larger literal is -1 too). The number
 * nodes of `root` (parsed from text, len) written as an unsigned 64-bit
 * integer, told from the text; NULL when the text and the tree do not line
 * up (a member given twice). */
GHashTable *sbx_json_uint64_nodes(JsonNode *root, const char *text, gsize len);
/* Optional unsigned 64-bit member, by sbx_json_uint64_nodes's set (NULL: a
 * negative gint64 is refused, so at most G_MAXINT64). */
gboolean sbx_json_get_uint64(JsonObject *o, const char *member, GHashTable *uint64_nodes,
                             guint64 *out, const char *what, GError **err);
