/* registry: the Registry HTTP API v2 over libcurl (sbx-store only; sbx does
 * not link libcurl). Everything a registry sends is untrusted: sizes are
 * bounded, redirects are bounded and never carry the registry's
 * credentials to another host, every blob is checked against its digest by
 * the caller (the unpacker, or sbx_image_read_blob). */
#pragma once

#include <glib.h>

#include "sbx/reference.h"
#include "sbx/source.h"
#include "sbx/store.h"

/* Manifests, indexes, configs and token answers: at most this much. */
#define SBX_REGISTRY_MAX_JSON (4u << 20)
/* ... and over within this long, whatever the server does (a server that
 * trickles a byte now and then would hold the pull, and the store's lock,
 * for weeks): a deadline per request, generous for 4 MiB on a slow link. */
#define SBX_REGISTRY_REQUEST_TIMEOUT_MS 120000u
/* A layer blob may take as long as it keeps coming: one slower than
 * SBX_REGISTRY_BLOB_MIN_RATE bytes/s over SBX_REGISTRY_BLOB_STALL_S seconds
 * is broken off (and resumed, five times at most, then the next mirror). */
#define SBX_REGISTRY_BLOB_MIN_RATE 1024u
#define SBX_REGISTRY_BLOB_STALL_S  60u
/* A trickle just above that floor would still hold a layer (and its lock)
 * for size/1 KiB seconds, weeks for the largest a registry may claim: each
 * source of a layer blob also has a deadline, size / SBX_REGISTRY_BLOB_RATE
 * seconds and never under SBX_REGISTRY_BLOB_MIN_S (resumes included). */
#define SBX_REGISTRY_BLOB_RATE  (100u * 1024)
#define SBX_REGISTRY_BLOB_MIN_S 600u

typedef struct {
  gboolean tls_verify;      /* FALSE only with --tls-verify=false */
  gboolean tls_verify_set;  /* --tls-verify was given: it wins over registries.conf's insecure */
  char **cert_dirs;         /* certs.d roots: <root>/<host[:port]>/{*.crt,client.cert,client.key} */
  char **auth_files;        /* auth.json files (podman's, then docker's config.json), first wins */
  guint64 max_blob_size;    /* a layer blob larger than this is refused */
  guint request_timeout_ms; /* 0: SBX_REGISTRY_REQUEST_TIMEOUT_MS */
  guint blob_stall_s;       /* 0: SBX_REGISTRY_BLOB_STALL_S */
  guint blob_deadline_s;    /* 0: from the blob's size (SBX_REGISTRY_BLOB_RATE, _MIN_S) */
} SbxRegistryOptions;

typedef struct SbxRegistry SbxRegistry;

SbxRegistry *sbx_registry_new(const SbxImageRef *ref, const SbxRegistryOptions *opts, GError **err);
void sbx_registry_free(SbxRegistry *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxRegistry, sbx_registry_free)

/* Use these credentials instead of the auth files (sbx login). */
void sbx_registry_set_credentials(SbxRegistry *r, const char *user, const char *password);
/* GET /v2/ with authentication: does the registry accept us? */
gboolean sbx_registry_check_login(SbxRegistry *r, GError **err);
/* A manifest or index by tag or digest; *media_type from Content-Type. */
GBytes *sbx_registry_get_manifest(SbxRegistry *r, const char *reference, char **media_type,
                                  GError **err);
/* A small blob (a config), at most max bytes. */
GBytes *sbx_registry_get_blob(SbxRegistry *r, const char *digest, gsize max, GError **err);
/* A layer blob as a stream; resumed with Range after a dropped connection.
 * `size` is the descriptor's: more bytes than that are refused. `progress`
 * is unused here (the unpacker counts). */
SbxStream *sbx_registry_open_blob(SbxRegistry *r, const char *digest, gint64 size, GError **err);
/* Where else r's layer blobs can be fetched from, in order (the later
 * mirrors, the registry itself): a blob that fails at r (an HTTP error, a
 * connection that dies beyond resuming) goes on at the next one. r owns
 * `other`. */
void sbx_registry_add_fallback(SbxRegistry *r, SbxRegistry *other);
/* Counters, for the debug log and tests' sake. */
guint sbx_registry_blob_requests(SbxRegistry *r);

/* The registry as an image source (src/image/oci.c walks it like an OCI
 * layout: index -> manifest -> config + layers). `name` is the full name. */
SbxSource *sbx_registry_source_new(SbxRegistry *r, const SbxImageRef *ref, GError **err);

/* One WWW-Authenticate challenge: its scheme and its parameters
 * (lower-cased names -> values, quoted strings unescaped); NULL when it is
 * malformed. */
GHashTable *sbx_registry_parse_challenge(const char *header, char **scheme);

/* auth.c: credentials in podman's auth.json format ({"auths": {KEY:
 * {"auth": base64(user:password)}}}); keys are a registry or a registry
 * with a repository path. */
gboolean sbx_auth_lookup(char **files, const char *domain, const char *path, char **user,
                         char **password);
gboolean sbx_auth_store(const char *file, const char *domain, const char *user,
                        const char *password, GError **err);
/* FALSE with NOT_FOUND when there was nothing to remove. */
gboolean sbx_auth_remove(const char *file, const char *domain, GError **err);

/* store/pull.c: pull an image into the store, in a child inside the store's
 * user namespace (like an import). Returns the image id. */
typedef struct SbxRegConf SbxRegConf;
typedef struct {
  const char *reference;
  SbxRegistryOptions registry;
  gboolean quiet;
  /* registries.conf: the references to try in order (short-name search or
   * an alias; NULL: `reference` alone) and where each is fetched from
   * (mirrors first, insecure registries; NULL: the reference's registry). */
  char **candidates;
  const SbxRegConf *regconf;
} SbxPullRequest;
char *sbx_store_pull_isolated(SbxStore *s, const SbxPullRequest *req, GError **err);
