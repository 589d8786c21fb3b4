/* oci: sbx as an OCI runtime (sbx-oci). config.json fills SbxOciConfig; the
 * sequence then runs the same mount, device, capability, seccomp and exec
 * code as `sbx run` (src/ns/mount.c, src/sandbox/{caps,process,seccomp}.c). */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <sys/types.h>
#include "sbx/security.h"

#define SBX_OCI_VERSION "1.0.2"

typedef struct {
  char *destination, *type, *source;
  char **options;
} SbxOciMount;

typedef struct {
  guint32 container, host, size;
} SbxOciIdRange;

typedef struct {
  char *path;
  gboolean block;
  guint32 major, minor;
} SbxOciDevice;

typedef struct {
  char *path;
  char **args, **env; /* env NULL: none given, sbx-oci's own (as runc) */
  gint64 timeout;     /* seconds, 0: none */
} SbxOciHook;

typedef enum {
  SBX_HOOK_PRESTART,
  SBX_HOOK_CREATE_RUNTIME,
  SBX_HOOK_CREATE_CONTAINER,
  SBX_HOOK_START_CONTAINER,
  SBX_HOOK_POSTSTART,
  SBX_HOOK_POSTSTOP,
  SBX_HOOK_N
} SbxOciHookKind;

typedef struct {
  int flag;   /* CLONE_NEW* */
  char *path; /* NULL: create it */
} SbxOciNamespace;

typedef struct {
  char *bundle; /* absolute */
  char *rootfs; /* absolute */
  gboolean root_readonly;
  char *propagation; /* linux.rootfsPropagation, NULL: rslave */
  char *hostname;
  /* process */
  char **args, **env;
  char *cwd;
  uid_t uid;
  gid_t gid;
  GArray *gids; /* gid_t additionalGids */
  gboolean set_umask;
  mode_t umask;
  gboolean terminal;
  SbxCapSets caps;
  gboolean no_new_privs;
  GArray *rlimits;        /* SbxRlimit */
  gboolean set_oom_score; /* process.oomScoreAdj given (create only, as runc) */
  int oom_score_adj;
  /* linux */
  GArray *namespaces;          /* SbxOciNamespace */
  GArray *uid_maps, *gid_maps; /* SbxOciIdRange */
  GPtrArray *mounts;           /* SbxOciMount */
  char **masked, **readonly;
  GHashTable *sysctl;
  GBytes *seccomp;            /* NULL: none */
  unsigned int seccomp_flags; /* SECCOMP_FILTER_FLAG_* */
  GPtrArray *warnings;        /* what is ignored, for sbx-oci's log */
  JsonNode *annotations;
  GPtrArray *hooks[SBX_HOOK_N]; /* SbxOciHook */
  GPtrArray *devices;           /* SbxOciDevice: the host's node bound (no mknod) */
  GBytes *source;               /* the text it was parsed from */
} SbxOciConfig;

void sbx_oci_config_free(SbxOciConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxOciConfig, sbx_oci_config_free)
/* Read bundle/config.json (bounded, every field type-checked). */
SbxOciConfig *sbx_oci_config_load(const char *bundle, GError **err);
/* The copy of config.json `create` keeps in the container's state directory
 * (dirfd, dir_shown its path for messages): what start, exec and delete
 * use, as runc, since the bundle's may be changed after create by whoever
 * can write there. bundle: the one recorded at create. */
#define SBX_OCI_SAVED_CONFIG "config.json"
SbxOciConfig *sbx_oci_config_load_saved(int dirfd, const char *dir_shown, const char *bundle,
                                        GError **err);
/* exec --process FILE: replace the process part of c. */
gboolean sbx_oci_process_load(SbxOciConfig *c, const char *path, GError **err);
/* Is namespace `flag` listed? *path its path (NULL: a new one). */
gboolean sbx_oci_config_has_ns(const SbxOciConfig *c, int flag, const char **path);
/* The default rootless config.json (`sbx-oci spec`). */
char *sbx_oci_default_spec(uid_t uid, gid_t gid);

/* seccomp-compile.c: linux.seccomp to BPF (the runtime-spec's JSON form). */
GBytes *sbx_seccomp_compile_object(JsonObject *o, SbxCapSet caps, GError **err);

/* hooks.c: run each hook of a kind in order with the state JSON on its
 * stdin; the first failure stops (and is the error). */
gboolean sbx_oci_run_hooks(const SbxOciConfig *c, SbxOciHookKind kind, const char *state,
                           GError **err);

typedef struct {
  const char *id, *state_dir, *console_socket;
  int preserve_fds;
  /* The state JSON (status "creating") for hooks, given the pid. */
  char *(*state_json)(pid_t pid, gpointer data);
  gpointer data;
  /* Set to the container's sync socket: it waits for one more word
   * ("created", once the container is recorded) and ends at EOF instead. */
  int *sync_out;
} SbxOciCreate;
/* Set everything up and leave the process waiting on state_dir/exec.fifo.
 * Returns its pid (in our pid namespace) or -1. */
pid_t sbx_oci_create(const SbxOciConfig *c, const SbxOciCreate *opts, GError **err);

/* copyup.c: copy directory `from`'s contents into `to` (tmpcopyup), with
 * owners and modes; top_mode: `to` takes `from`'s mode too. */
gboolean sbx_oci_copy_up(int from, int to, gboolean top_mode, GError **err);
/* A config.json mount whose destination (resolved inside rootfd) is in
 * /proc: refused with runc's reason (procmount.c). source: the bind's. So
 * is a fresh proc or sysfs on anything but an ordinary directory. */
gboolean sbx_oci_check_proc_mount(int rootfd, const SbxOciMount *m, gboolean bind,
                                  const char *source, GError **err);
/* The same, decided from fd, the target as opened for the mount (srcfd: the
 * bind's source, else -1): where it really is, after links and "..". */
gboolean sbx_oci_check_proc_target(int rootfd, const SbxOciMount *m, gboolean bind, int srcfd,
                                   int fd, GError **err);

/* create.c, shared with exec: */
gboolean sbx_oci_check_executable(const SbxOciConfig *c, GError **err);
gboolean sbx_oci_send_console(int sock, int master, GError **err);
int sbx_oci_connect_console(const char *path, GError **err);
/* The last steps, shared by create's container and exec: never returns. */
G_GNUC_NORETURN void sbx_oci_exec_process(const SbxOciConfig *c, const char *tty_slave,
                                          int preserve_fds);

typedef struct {
  pid_t pid;     /* the container's process */
  guint64 start; /* and its start time, as recorded (pid reuse) */
  const char *console_socket;
  int preserve_fds;
  gboolean detach;
} SbxOciExec;
/* Join the container's namespaces and run c's process there. Returns its pid
 * (in our pid namespace; sbx-oci is its subreaper) or -1. */
pid_t sbx_oci_exec(const SbxOciConfig *c, const SbxOciExec *x, GError **err);
