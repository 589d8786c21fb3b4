/* registries.conf (containers-registries.conf(5), version 2): short-name
 * search, aliases, per-registry insecure/blocked/location and mirrors (and
 * which pulls they serve). Unknown keys are refused.
 * In sbx-store only (the TOML reader is C++, registry/regconf-toml.cc). */
#pragma once

#include <glib.h>
#include <stddef.h>

G_BEGIN_DECLS

/* The file is refused when larger than this. */
#define SBX_REGCONF_MAX_SIZE (1u << 20)

typedef struct SbxRegConf SbxRegConf;

/* A place to fetch a reference from: a full reference at a mirror or at
 * the registry itself, and whether TLS is not verified (insecure). */
typedef struct {
  char *reference;
  gboolean insecure;
} SbxRegEndpoint;

/* TOML text -> JSON text (NULL and *error set on a syntax error). */
char *sbx_regconf_toml_to_json(const char *text, size_t len, char **error);

/* At most this many drop-in files per registries.conf.d directory. */
#define SBX_REGCONF_MAX_DROPINS 256

typedef struct {
  const char *user_file, *system_file; /* registries.conf */
  const char *user_dir, *system_dir;   /* registries.conf.d */
} SbxRegConfPaths;

/* podman's: the user's file if it exists (then the user's drop-ins only),
 * else the system's file, its drop-ins and the user's; drop-ins (*.conf, in
 * name order) override keys, aliases and [[registry]] prefixes. None of
 * them: an empty configuration. Errors name the file. */
SbxRegConf *sbx_regconf_load(const SbxRegConfPaths *paths, GError **err);
/* From TOML text (tests); `what` names it in errors. */
SbxRegConf *sbx_regconf_parse(const char *text, gsize len, const char *what, GError **err);
void sbx_regconf_free(SbxRegConf *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxRegConf, sbx_regconf_free)

/* The fully qualified references to try for what the user typed, in
 * order: an alias, the unqualified-search registries (one; several only
 * with short-name-mode = "permissive"), or the input itself. */
char **sbx_regconf_candidates(const SbxRegConf *c, const char *input, GError **err);
/* The names under which a short name may already be in the store, in
 * podman's order (its local lookup before a pull): the alias, localhost/,
 * then every unqualified-search registry, whatever short-name-mode says
 * (finding one is not guessing). A full reference is itself. */
char **sbx_regconf_local_candidates(const SbxRegConf *c, const char *input);
/* Where to fetch a full reference from: its registry's mirrors that serve
 * this kind of pull (mirror-by-digest-only, pull-from-mirror: by digest or
 * by tag), then the registry (location applied). Fails when the registry is
 * blocked. */
GArray *sbx_regconf_endpoints(const SbxRegConf *c, const char *reference, GError **err);
void sbx_reg_endpoint_clear(SbxRegEndpoint *e);

G_END_DECLS
