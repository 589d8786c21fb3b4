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
/* Lenient lookups for members a caller may do without: the value when it has
 * that type, else NULL / `fallback` (json-glib's *_with_default() emit a
 * CRITICAL on an object or array member, and abort under
 * G_DEBUG=fatal-criticals). */
const char *sbx_json_string_or_null(JsonObject *o, const char *member);
gint64 sbx_json_int_or(JsonObject *o, const char *member, gint64 fallback);
