/* ns/user: the user namespace and its uid/gid maps.
 *
 * single: one id, the caller's, mapped to root (no setup needed).
 * range:  root -> the caller, 1..N -> the caller's /etc/subuid range, written
 *         by the setuid helpers newuidmap/newgidmap. */
#pragma once

#include <glib.h>
#include "sbx/settings.h"
#include <sys/types.h>

typedef enum { SBX_USERNS_AUTO, SBX_USERNS_SINGLE, SBX_USERNS_RANGE } SbxUsernsMode;

typedef struct {
  SbxUsernsMode mode; /* SINGLE or RANGE once resolved */
  uid_t uid;
  gid_t gid;
  guint64 subuid_start, subuid_count;
  guint64 subgid_start, subgid_count;
  char *newuidmap, *newgidmap;
} SbxIdMap;

gboolean sbx_userns_mode_parse(const char *s, SbxUsernsMode *out, GError **err);

/* Pick the mapping for the calling user. AUTO takes a range when /etc/subuid
 * and /etc/subgid grant one and newuidmap/newgidmap are installed. */
gboolean sbx_idmap_resolve(SbxUsernsMode want, const SbxSettings *set, SbxIdMap *map,
                           GError **err);
void sbx_idmap_clear(SbxIdMap *map);
/* A deep copy (clear it with sbx_idmap_clear). */
void sbx_idmap_copy(SbxIdMap *dst, const SbxIdMap *src);

/* Look up the first subordinate range of user (name or uid) in a
 * /etc/subuid-format file. FALSE when none. */
gboolean sbx_subid_lookup(const char *file, const char *user, uid_t uid, guint64 *start,
                          guint64 *count);

/* Identifies what owners on disk mean: layers unpacked under one mapping are
 * never reused under another. */
char *sbx_idmap_key(const SbxIdMap *map);

/* Is container uid/gid `id` mapped? */
gboolean sbx_idmap_has_uid(const SbxIdMap *map, guint64 id);
gboolean sbx_idmap_has_gid(const SbxIdMap *map, guint64 id);

/* Write the maps of process pid (called by the parent, outside). */
gboolean sbx_idmap_apply(const SbxIdMap *map, pid_t pid, GError **err);

/* Clone a child into a new user namespace (plus `flags`: other CLONE_NEW*)
 * and map its ids. Returns 0 in the child once its maps are written, with
 * *syncfd its end of the sync channel; in the parent, the child's pid with
 * *syncfd the parent's end. The child dies with SIGKILL if sbx dies. */
typedef gboolean (*SbxBeforeGo)(pid_t child, gpointer data, GError **err);
pid_t sbx_userns_clone(const SbxIdMap *map, unsigned long flags, int *syncfd, GError **err);
/* The same, running before_go(child) in the parent after the maps and
 * before the child may go on (e.g. to put it in a cgroup). */
pid_t sbx_userns_clone_full(const SbxIdMap *map, unsigned long flags, SbxBeforeGo before_go,
                            gpointer data, int *syncfd, GError **err);
