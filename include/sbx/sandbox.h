/* sandbox: the sequence that ties the namespaces together, the init (PID 1)
 * and the process the image runs. */
#pragma once

#include <glib.h>
#include "sbx/net.h"
#include "sbx/netswitch.h"
#include "sbx/ns.h"
#include "sbx/store.h"
#include "sbx/user.h"

/* SWITCH: --network NAME, a sandbox network (netswitch.h). */
typedef enum { SBX_NET_NONE, SBX_NET_SLIRP, SBX_NET_HOST, SBX_NET_SWITCH } SbxNetMode;

typedef struct {
  SbxNetMode mode;
  guint mtu;
  gboolean allow_host_loopback;
  gboolean refuse_host_addresses; /* slirp:allow_host_addresses=false */
  gboolean tcp_relay;             /* slirp:tcp_relay=true (net/relay.c) */
  char **publish;                 /* -p specs, validated */
  char **allow;                   /* --net-allow rules, validated */
  int log_fd;                     /* --net-log's file, opened by the CLI; -1: none */
  const char
      *resolv_conf; /* $SBX_NET_RESOLV_CONF: the resolver file for sbx-net; NULL: the host's */
  gboolean spare;   /* take a spare sbx-net, start the next (SBX_NET_SPARE, default on) */
  /* SWITCH: the connection to the network's switch (sbx_network_join) and
   * the address it gave; init closes the connection, sbx holds it. */
  const char *network;
  int switch_fd;
  SbxSwitchLease lease;
} SbxNetSpec;

/* The running sbx-net: its pid and the sync socket to it; a spare taken
 * (netspare.h) is not our child: a pidfd to stop it by. */
typedef struct {
  pid_t pid;
  int sock;
  int pidfd;
  /* A spare connected on sock before the clone, to be checked and claimed
   * after it: pid stays 0 and pidfd is never signalled until then. */
  gboolean unclaimed;
  pid_t spare;
  char *spare_options;
} SbxNetHelper;
/* Ask sbx-net for its counters (a round trip on the sync socket, so every
 * frame it read before is also in the --net-log file). Waits at most 2 s. */
gboolean sbx_net_helper_stats(const SbxNetHelper *h, SbxNetStats *out, GError **err);

/* cgroup.c: --pids-limit, --memory, --cpus through a delegated cgroup v2. */
/* cgroup v2 cpu.max period: --cpus N gives N * this quota per period. */
#define SBX_CGROUP_CPU_PERIOD_US 100000

typedef struct {
  gint64 pids;         /* 0: unset */
  gint64 memory;       /* bytes, 0: unset */
  gint64 cpu_quota_us; /* per SBX_CGROUP_CPU_PERIOD_US, 0: unset */
} SbxCgroupLimits;
gboolean sbx_cgroup_limits_set(const SbxCgroupLimits *l);
/* Why the host gives no usable cgroup for l, or NULL when it does. */
char *sbx_cgroup_why_unusable(const SbxCgroupLimits *l);
/* Make a cgroup for the sandbox with the limits; error (naming why) when the
 * host delegates none to this user. TRUE with *path its path, or NULL when
 * no limit is set (nothing to do); FALSE with err. */
gboolean sbx_cgroup_create(const SbxCgroupLimits *l, const char *id, char **path, GError **err);
gboolean sbx_cgroup_attach(const char *cgroup, pid_t pid, GError **err);
void sbx_cgroup_remove(const char *cgroup);

/* What one run measured, for --report and the timeout message. */
typedef struct {
  gboolean started;       /* the program was started */
  gboolean timed_out;     /* --timeout killed it */
  gint64 wall_us;         /* from clone to the end of init */
  gint64 user_us, sys_us; /* CPU time of init and everything it reaped */
  gint64 writable_peak;   /* bytes: highest use of the run tmpfs seen (-1: not measured) */
  gint64 writable_final;  /* bytes: its use at the end (-1: not measured) */
  gboolean have_net;      /* sbx-net's counters were read (slirp only) */
  SbxNetStats net;        /* frames and bytes each way, refused attempts */
} SbxRunResult;

/* The default bound of the writable layer: a quarter of RAM, at most 4 GiB. */
guint64 sbx_rootfs_size_default(void);
/* The default --pids-limit: an RLIMIT_NPROC inside the sandbox. */
#define SBX_PIDS_LIMIT_DEFAULT 4096
/* Grace between SIGTERM and SIGKILL when --timeout expires. */
#define SBX_TIMEOUT_GRACE_S 10
/* watchdog.c: --timeout and the sampling of the writable layer's use. */
typedef struct SbxWatchdog SbxWatchdog;
SbxWatchdog *sbx_watchdog_start(pid_t init, gint64 timeout_ms, int usage_fd);
void sbx_watchdog_stop(SbxWatchdog *w, SbxRunResult *r);

/* disk.c: --rootfs-disk, the writable layer in <store>/run-disk/<id>/
 * (upper/ work/), locked (flock on the directory) for the run's lifetime.
 * Returns the locked directory's fd. The directory records map's key. */
int sbx_disk_layer_claim(const char *base, const char *id, const SbxIdMap *map, GError **err);
/* Remove <base>/<id> (id NULL: every unlocked leftover of a killed run)
 * from a user namespace with the run's mapping. A leftover that cannot be
 * removed is a warning; one of another mapping is left to that mapping. */
gboolean sbx_disk_layer_remove(const SbxIdMap *map, const char *base, const char *id, GError **err);

typedef struct {
  SbxStoredImage *image;
  const SbxIdMap *idmap;
  const char *store_run_dir;
  /* Overrides from the command line (NULL/unset = image default). */
  char **argv;            /* trailing CMD... */
  const char *entrypoint; /* --entrypoint; "" clears */
  gboolean entrypoint_set;
  char **env; /* -e KEY=VAL or KEY (taken from the caller) */
  const char *workdir;
  const char *user;
  const char *hostname;
  SbxNetSpec net;
  /* Security */
  guint64 caps;           /* SbxCapSet kept by a root program */
  GBytes *seccomp;        /* NULL: unconfined */
  gboolean seccomp_first; /* the built-in profile: it may go on before the ids change */
  GArray *rlimits;        /* SbxRlimit */
  gboolean read_only;     /* --read-only rootfs */
  char **tmpfs;           /* --tmpfs PATH[:size=..,mode=..] */
  SbxCgroupLimits limits;
  gint64 nproc;         /* RLIMIT_NPROC set inside when > 0 (no pids cgroup) */
  guint64 rootfs_size;  /* bytes: bound of the writable layer and of --tmpfs */
  const char *disk_dir; /* --rootfs-disk: <store>/run-disk (NULL: tmpfs) */
  gint64 timeout_ms;    /* --timeout (0: none) */
  SbxRunResult *result; /* out when set: how it ended, times */
  gboolean measure;     /* also the writable layer's use and tap0's counters */
  /* Everyday use */
  gboolean interactive; /* -i: stdin stays open (else /dev/null) */
  gboolean tty;         /* -t: a pseudo-terminal from the sandbox's devpts */
  char **volumes;       /* -v HOST:CONTAINER[:ro|rw], validated */
  char **hidden;        /* host directories of sbx's own (state, store), masked in volumes */
  guint64 output_limit; /* -d: bytes of output the log keeps (0: all); the rest is dropped */
  /* Called in sbx once the program has started (named sandboxes record it).
   * FALSE: the sandbox is killed and the run fails with err. */
  gboolean (*on_started)(pid_t init, gpointer data, GError **err);
  gpointer on_started_data;
} SbxRunSpec;

/* How sbx learns that the sandbox ended: init's report on its sync socket
 * (sbx_pid_init_exit: sent once nothing else runs in it, before the kernel
 * tears its namespaces down), or the exit of sbx's child (init, or the
 * intermediate before it) when no report came. */
typedef struct {
  pid_t pid;        /* sbx's child */
  int report;       /* init's sync socket; -1: none, or read or closed */
  int status;       /* the exit status for sbx; -1 while running */
  gboolean reaped;  /* pid waited for */
  gint64 release;   /* monotonic us: sbx_memory_release_setup then (0: not at all) */
  int told;         /* init's socket once it reported: kept open, init exits after us */
  pid_t net_helper; /* sbx-net, our child: its death before the sandbox's is told (0: none) */
} SbxSandboxEnd;
void sbx_sandbox_end_init(SbxSandboxEnd *e, pid_t pid, int report);
/* After poll: report_revents for e->report, child when SIGCHLD came (or
 * might have). TRUE once e->status is known. Also releases the set-up's
 * memory once e->release is due. */
gboolean sbx_sandbox_end_check(SbxSandboxEnd *e, short report_revents, gboolean child);
/* poll's timeout for a loop that would wait timeout_ms (-1: for ever):
 * no later than e->release. */
int sbx_sandbox_end_timeout(const SbxSandboxEnd *e, int timeout_ms);

/* tty.c */
int sbx_tty_open_master(char **slave_path, GError **err);
/* The slave as stdio and controlling terminal of a new session, owned by
 * owner (the program's uid): call while still privileged. */
gboolean sbx_tty_attach_slave(const char *slave_path, uid_t owner, GError **err);
void sbx_tty_raw(int fd);
void sbx_tty_restore(void);
/* Copy between the user's terminal and the master, forward signals and
 * window size, until init exits; returns the exit status for sbx. */
int sbx_tty_relay(SbxSandboxEnd *end, int master, gboolean interactive, const sigset_t *forwarded);

/* Forward the signals (blocked by the caller) to end->pid until the
 * sandbox ends. */
int sbx_sandbox_wait(SbxSandboxEnd *end, const sigset_t *forwarded);

/* exec.c: run a command in a running named sandbox, joining all its
 * namespaces, with the same capabilities, seccomp filter and no_new_privs. */
typedef struct {
  char **argv;
  char **env; /* -e overrides */
  const char *user, *workdir;
  gboolean interactive, tty;
  GBytes *seccomp; /* the sandbox's filter (NULL: unconfined) */
} SbxExecRequest;
#include "sbx/state.h"
int sbx_exec_in(const SbxState *state, const SbxExecRequest *req, GError **err);

/* stdio.c: without -t, pipes that sbx relays in place of the user's fds. */
typedef struct {
  int r[3], w[3];
  guint64 limit; /* bytes of stdout and stderr together copied out (0: all) */
} SbxStdioPipes;
void sbx_stdio_pipes_open(SbxStdioPipes *p, gboolean tty, gboolean interactive);
void sbx_stdio_pipes_child(SbxStdioPipes *p, gboolean tty);
gboolean sbx_stdio_pipes_active(const SbxStdioPipes *p);
void sbx_stdio_pipes_drain(SbxStdioPipes *p);
void sbx_stdio_pipes_close(SbxStdioPipes *p);
int sbx_stdio_relay(SbxSandboxEnd *end, SbxStdioPipes *p, const sigset_t *forwarded);

/* Run the sandbox to completion. Returns the exit status for sbx (the
 * program's status, 128+N for signal N, 126/127 for exec failures), or -1
 * with err when setup failed (sbx exits 125). */
int sbx_sandbox_run(const SbxRunSpec *spec, GError **err);

/* process.c: what runs after pivot_root. */
typedef struct {
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  gsize ngroups;
  char *home;
  char *name;
} SbxCreds;

/* Resolve "user[:group]" through the image's /etc/passwd and /etc/group
 * (read after pivot_root, so symlinks resolve inside the sandbox). */
gboolean sbx_process_resolve_user(const char *spec, SbxCreds *out, GError **err);
void sbx_creds_clear(SbxCreds *c);
/* The final argv: entrypoint + cmd with docker's override rules. */
char **sbx_process_argv(const SbxImageConfig *cfg, const char *entrypoint, gboolean entrypoint_set,
                        char **argv, GError **err);
/* The final environment: image Env, then -e overrides, PATH/HOME/HOSTNAME. */
char **sbx_process_env(const SbxImageConfig *cfg, char **overrides, const char *hostname,
                       const char *home);
typedef struct {
  int resource;
  guint64 soft, hard;
} SbxRlimit;
/* --ulimit NAME=SOFT[:HARD] */
gboolean sbx_rlimit_parse(const char *spec, SbxRlimit *out, GError **err);

typedef struct {
  char **argv, **envp;
  const SbxCreds *creds;
  const char *workdir;
  gboolean set_groups;   /* setgroups is allowed (range mode) */
  guint64 caps;          /* SbxCapSet for root */
  GBytes *seccomp;       /* raw BPF, NULL for unconfined */
  GArray *rlimits;       /* SbxRlimit */
  gboolean new_session;  /* setsid: no controlling terminal (TIOCSTI) */
  const char *tty_slave; /* -t: becomes stdio and the controlling terminal */
  gboolean null_stdin;   /* no -i: stdin is /dev/null */
  /* sbx-oci (all zero for sbx run): */
  const struct SbxCapSets *capsets; /* the five sets from config.json, in place of caps */
  gboolean keep_privs;              /* no no_new_privs (noNewPrivileges false) */
  gboolean set_umask;
  mode_t umask;
  int preserve_fds;           /* fds 3..3+N-1 stay open (--preserve-fds) */
  unsigned int seccomp_flags; /* SECCOMP_FILTER_FLAG_* (linux.seccomp.flags) */
  gboolean relay;             /* slirp:tcp_relay=true: the connect filter, */
  int relay_sock;             /* its notification fd to the relay over this */
  gboolean shared_mm;         /* set by sbx_process_spawn: the caller's memory until execve */
  gboolean seccomp_loaded;    /* the filter is on already (sbx_process_prefork) */
  /* Where a failure before execve is told ("sbx: ...\n", at most fail_size
   * bytes) instead of stderr, for the caller to print: a process sharing
   * its parent's memory must not block on a pipe nobody reads yet. */
  char *fail_msg;
  gsize fail_size;
} SbxExecPlan;
/* Bounding set, ids, capabilities, session, cwd, rlimits, no_new_privs,
 * signals, fds, seccomp, execve; never returns. */
G_GNUC_NORETURN void sbx_process_exec(const SbxExecPlan *plan);
/* sbx-oci exec: a failure of sbx_process_exec is written to fd as well (its
 * text, no newline), a close-on-exec pipe whose EOF alone means the execve
 * happened; fd stays open until then. */
void sbx_process_report_failures_to(int fd);
/* sbx_process_exec in a new process that shares the caller's memory until
 * its execve (vfork: the caller waits meanwhile). Returns its pid, or -1
 * with errno. plan->shared_mm and plan->fail_msg must be set: the caller
 * prints what the process left there once stderr is read. */
pid_t sbx_process_spawn(const SbxExecPlan *plan);

/* sbx run with the built-in filter: the program's process made as init
 * starts, sharing init's memory (CLONE_VM) on a stack init gives it from
 * its own frame. It loads the filter while init sets up the sandbox, then
 * waits for the plan; sbx_process_prefork_go hands it over and returns,
 * as sbx_process_spawn does, once the process has exec'd or died. */
typedef struct {
  GBytes *seccomp;         /* loaded first */
  gboolean netns;          /* before it, a network namespace of its own, for init to join, */
  const SbxTapConfig *tap; /* there lo up and (slirp) tap0, when they can be */
  int netns_ready;         /* futex: 0 not yet; 1 the fds below are in init's table; -errno */
  int netns_fd;
  gboolean lo_up;
  int tap_fd;              /* -1: init makes it (and says why it cannot) */
  const SbxExecPlan *plan; /* set by sbx_process_prefork_go */
  int go;                  /* futex: the plan is there */
  int alive;               /* cleared by the kernel at execve or exit */
  pid_t pid;
} SbxPrefork;
/* FALSE with errno if the process could not be made. */
gboolean sbx_process_prefork(SbxPrefork *pf, GBytes *seccomp, gboolean netns,
                             const SbxTapConfig *tap, guint8 *stack, gsize size);
/* With netns: wait for the process's network namespace and enter it. */
gboolean sbx_process_prefork_join_net(SbxPrefork *pf, GError **err);
pid_t sbx_process_prefork_go(SbxPrefork *pf, SbxExecPlan *plan);
