/* ns/user: the user namespace and its uid/gid maps.
 *
 * single: one id, the caller's, mapped to root (no setup needed).
 * range:  root -> the caller, 1..N -> the caller's /etc/subuid range, written
 *         by the setuid helpers newuidmap/newgidmap. */
#pragma once

#include <glib.h>
#include <sys/resource.h>
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
  gboolean nested; /* written from inside a namespace with this map: identity */
} SbxIdMap;

gboolean sbx_userns_mode_parse(const char *s, SbxUsernsMode *out, GError **err);

/* Pick the mapping for the calling user. AUTO takes a range when /etc/subuid
 * and /etc/subgid grant one and newuidmap/newgidmap are installed. */
gboolean sbx_idmap_resolve(SbxUsernsMode want, const SbxSettings *set, SbxIdMap *map, GError **err);
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

/* Write the maps of process pid (called by the parent, outside); pid 0:
 * the caller's own (single-id mode: its own uid to 0). */
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

/* Range mode with the sandbox's processes bounded in total (--pids-limit
 * without a pids cgroup). RLIMIT_NPROC counts per (user namespace, uid), and
 * root inside may take any uid of the range; but a task is also charged, in
 * the parent namespace, to the uid that created its namespace, against the
 * creator's RLIMIT_NPROC at that time (kernel/ucount.c is_rlimit_overlimit,
 * user_namespace.c create_user_ns). So: an intermediate process in a user
 * namespace of its own (the range map, by newuidmap) sets RLIMIT_NPROC to
 * nproc (at most its hard limit), clones init into the sandbox's namespaces
 * (flags) with an identity map of the range, moves its own real uid off uid
 * 0, and stays as init's parent, forwarding signals and exiting with init's
 * status. Every process of the sandbox, any uid, counts against uid 0 of the
 * intermediate namespace: nproc in all.
 *
 * Returns 0 in init (*syncfd: its channel to sbx); in sbx the intermediate's
 * pid (to wait for and signal), *init the init's pid, *syncfd sbx's end.
 * before_go(intermediate) runs before it may go on (init inherits a cgroup). */
pid_t sbx_userns_clone_nested(const SbxIdMap *map, int held, unsigned long flags, guint64 nproc,
                              SbxBeforeGo before_go, gpointer data, int *syncfd, pid_t *init,
                              GError **err);

/* Range mode with --pids-limit from inside the holder's namespace (sbx
 * entered it, map->nested): no intermediate process. The sandbox's user
 * namespace is made with `owner` (a uid of the holder's namespace no other
 * running sandbox uses, sbx_userns_owner_claim) as its effective uid, so
 * the kernel charges every process of the sandbox, whatever its uid, to
 * (holder's namespace, owner), bounded by the RLIMIT_NPROC `nproc` the
 * namespace records at creation (create_user_ns). */
pid_t sbx_userns_clone_owned(const SbxIdMap *map, uid_t owner, guint64 nproc, unsigned long flags,
                             SbxBeforeGo before_go, gpointer data, int *syncfd, GError **err);
/* A uid of the holder's namespace for one sandbox's owner: a lock on one
 * byte of <holder socket>.owners, held as long as the returned fd lives
 * (sbx's, and init's copy, kept until init is gone). -1 with err when none
 * is free. */
int sbx_userns_owner_claim(const SbxIdMap *map, const char *dir, uid_t *owner, GError **err);

/* The user's namespace holder (ns/holder.c): a process per user and range
 * keeping a user namespace with the range mapped, reached through a socket
 * in the user's private state directory `dir`. Returns an fd of that
 * namespace, starting a holder when none answers; -1 with err when that
 * fails (the caller then maps with newuidmap as before). */
int sbx_userns_holder_get(const SbxIdMap *map, const char *dir, pid_t *holder, GError **err);
char *sbx_userns_holder_socket(const SbxIdMap *map, const char *dir);
/* The pid of the holder answering there now, or -1 (err says why); starts none. */
pid_t sbx_userns_holder_find(const SbxIdMap *map, const char *dir, GError **err);
/* Range mode: sbx itself enters the holder's namespace `ns` (the holder is
 * process `holder`), after checking that it is the namespace that process
 * holds and that it maps the range. From there sbx writes the sandbox's
 * identity maps itself (map->nested) with no process between. FALSE with
 * nothing changed when it cannot (e.g. EINVAL: sbx has threads). */
gboolean sbx_userns_enter_held(int ns, pid_t holder, const SbxIdMap *map, GError **err);
/* The holder re-executes sbx as `sbx-userns-holder SBX_USERNS_HOLDER_ARG
 * SOCKET DEV:INO` (listening on fd 3) so that nothing of the sbx that
 * started it stays (environment, memory); main() hands that here. */
#define SBX_USERNS_HOLDER_ARG "--userns-holder"
int sbx_userns_holder_main(const char *path, const char *bound);
/* Around the clone that makes a sandbox's user namespace: the kernel takes
 * the soft RLIMIT_MSGQUEUE and RLIMIT_SIGPENDING then as the bound of the
 * namespace's charge to its parent; a quarter of ours while it clones, ours
 * again after (in the child too). */
#define SBX_SHARED_LIMITS 2
typedef struct {
  struct rlimit had[SBX_SHARED_LIMITS];
  gboolean lowered[SBX_SHARED_LIMITS];
} SbxSharedLimits;
void sbx_userns_lower_shared_limits(SbxSharedLimits *l);
void sbx_userns_restore_shared_limits(const SbxSharedLimits *l);
/* In a namespace we own with CAP_SYS_RESOURCE: bound each of its uids to a
 * quarter of the host's inotify instances and watches (best effort). */
void sbx_userns_bound_inotify(void);
/* sbx_userns_clone_full for range mode through the holder's namespace
 * `held`: the child (sbx's) gets a user namespace of its own inside it,
 * with an identity map, and no setuid helper runs. -1 before any child is
 * left running: the caller may fall back to sbx_userns_clone_full.
 * With `held` >= 0, sbx_userns_clone_nested takes its outer namespace so. */
pid_t sbx_userns_clone_held(int held, const SbxIdMap *map, unsigned long flags,
                            SbxBeforeGo before_go, gpointer data, int *syncfd, GError **err);
