/* sandbox/caps.c and sandbox/seccomp.c: what the program may do.
 *
 * Capabilities: Docker's default set for root, none for other users; the
 * bounding set reduced to match; inheritable and ambient cleared.
 * Seccomp: an allowlist equivalent to Docker's default profile (or the
 * user's JSON profile), compiled once by sbx-store and cached in the store as
 * raw BPF, loaded as the last step before execve. */
#pragma once

#include <glib.h>
#include "sbx/store.h"

/* Bit N = capability N. */
typedef guint64 SbxCapSet;

SbxCapSet sbx_caps_default(void);
/* Apply --cap-add / --cap-drop lists (names with or without CAP_, or ALL). */
gboolean sbx_caps_adjust(SbxCapSet *set, char **add, char **drop, GError **err);
const char *sbx_cap_name(guint cap);
guint sbx_cap_last(void);
/* In the program's process, before setuid: drop the bounding set to `keep`,
 * clear ambient; after setuid: set permitted/effective (root) or nothing,
 * inheritable always empty. */
gboolean sbx_caps_drop_bounding(SbxCapSet keep, GError **err);
gboolean sbx_caps_set(SbxCapSet keep, gboolean root, GError **err);
/* sbx-oci: every set as config.json gives it. */
typedef struct SbxCapSets {
  SbxCapSet bounding, effective, permitted, inheritable, ambient;
} SbxCapSets;
/* Name (with or without CAP_) to bit; FALSE for an unknown name. */
gboolean sbx_cap_from_name(const char *name, SbxCapSet *bit, GError **err);
/* After setuid (with PR_SET_KEEPCAPS): permitted, effective, inheritable, ambient. */
gboolean sbx_caps_set_all(const SbxCapSets *sets, GError **err);

/* Bump when the built-in profile or what sbx adds to a JSON profile changes:
 * cached filters are keyed by it. */
#define SBX_SECCOMP_DEFAULT_REV 9

typedef struct {
  const char *profile; /* NULL: the default; "unconfined": none; else a JSON file */
  SbxCapSet caps;      /* rules of the profile may depend on capabilities */
} SbxSeccompSpec;

/* The filter as raw BPF in *bpf (NULL for unconfined: nothing to install);
 * FALSE with err when it cannot be had. */
gboolean sbx_seccomp_prepare(SbxStore *store, const SbxSeccompSpec *spec, GBytes **bpf,
                             GError **err);
/* Install it in the calling process (no_new_privs must be set). */
gboolean sbx_seccomp_install(GBytes *bpf, GError **err);
/* What names a filter: the sha256 of its BPF, "none" without one. */
char *sbx_seccomp_filter_id(GBytes *bpf);
gboolean sbx_seccomp_install_flags(GBytes *bpf, unsigned int flags, GError **err);

/* sbx-store side (src/sandbox/seccomp-compile.c): compile to BPF. */
GBytes *sbx_seccomp_compile(const char *profile, SbxCapSet caps, GError **err);
