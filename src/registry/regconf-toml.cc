/* registries.conf is TOML: read by toml++ (Debian's libtomlplusplus), the
 * one C++ file of sbx, and handed to C as JSON (json-glib reads it). Linked
 * into sbx-store only. */
#include <sstream>
#include <string>

#include <toml++/toml.h>

#include "sbx/regconf.h"

extern "C" char *sbx_regconf_toml_to_json(const char *text, size_t len, char **error)
{
  try {
    toml::table tbl = toml::parse(std::string_view(text, len));
    std::ostringstream out;
    out << toml::json_formatter{tbl};
    return g_strdup(out.str().c_str());
  } catch (const toml::parse_error &e) {
    *error = g_strdup_printf("line %u: %.*s", (unsigned)e.source().begin.line,
                             (int)e.description().size(), e.description().data());
  } catch (const std::exception &e) {
    *error = g_strdup(e.what());
  }
  return nullptr;
}
