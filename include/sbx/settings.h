/* settings: what the command line resolved from its options and the
 * environment, handed down to the library (crun's libcrun_context_t does
 * the same): library code reads no environment variable. src/cli/common.c
 * fills it once per command (sbx_cli_settings). */
#pragma once

#include <glib.h>

typedef struct {
  const char *subuid_file;  /* $SBX_SUBUID_FILE, else /etc/subuid */
  const char *subgid_file;  /* $SBX_SUBGID_FILE, else /etc/subgid */
  const char *platform;     /* --platform; NULL: this machine's */
  guint64 max_layer_size;   /* $SBX_MAX_LAYER_SIZE: bytes one layer may unpack to */
  gint64 progress_delay_us; /* $SBX_PROGRESS_DELAY_MS: an import's bar shows after this */
  const char *runtime_dir;  /* $XDG_RUNTIME_DIR: named sandboxes' state (NULL: none) */
  const char
      *net_resolv_conf;      /* $SBX_NET_RESOLV_CONF: sbx-net's resolver file (NULL: the host's) */
  gboolean net_spare;        /* $SBX_NET_SPARE: 0 turns the spare sbx-net off (netspare.h) */
  guint registry_timeout_ms; /* $SBX_REGISTRY_TIMEOUT_MS: a registry request's deadline (0: default)
                              */
  guint registry_stall_s; /* $SBX_REGISTRY_STALL_SECONDS: a layer blob's rate window (0: default) */
  guint registry_blob_s;  /* $SBX_REGISTRY_BLOB_SECONDS: a layer blob's deadline (0: by its size) */
} SbxSettings;

/* The defaults, for callers without a command line (unit tests). */
#define SBX_DEFAULT_MAX_LAYER_SIZE    (256ull << 30) /* generous but finite */
#define SBX_DEFAULT_PROGRESS_DELAY_US 500000
#define SBX_SETTINGS_DEFAULT                                                                       \
  {                                                                                                \
    .subuid_file = "/etc/subuid", .subgid_file = "/etc/subgid",                                    \
    .max_layer_size = SBX_DEFAULT_MAX_LAYER_SIZE,                                                  \
    .progress_delay_us = SBX_DEFAULT_PROGRESS_DELAY_US, .net_spare = TRUE                          \
  }
