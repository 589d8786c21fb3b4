/* sandbox/state.c: named sandboxes under $XDG_RUNTIME_DIR/sbx (or
 * /tmp/sbx-UID when there is none). Each has a directory with:
 *   state   a GKeyFile: what ps shows and what exec needs to join it
 *   lock    held (flock) by the process that supervises it: a sandbox is
 *           running exactly while its lock is held, so a supervisor that died
 *           leaves a sandbox ps shows as exited, never a stuck name
 *   log     the program's output when detached */
#pragma once

#include <glib.h>
#include <sys/types.h>

typedef struct {
  char *name, *id, *image, *started, *ports;
  char *networks; /* --network NAME: "NAME=ADDRESS" */
  char *store_root, *userns, *seccomp, *user, *workdir, *hostname;
  char *seccomp_filter; /* sha256 of the run's filter ("none" without one): sbx exec's */
  char **env;
  guint64 caps;
  gint64 nproc; /* --pids-limit by RLIMIT_NPROC (0: none): sbx exec sets it too */
  pid_t init_pid, supervisor_pid;
  guint64 init_start; /* /proc/PID/stat starttime: a reused pid is not ours */
  gboolean running;   /* the lock is held */
  gboolean exited;
  int exit_code;
  gboolean timed_out; /* --timeout killed it */
  gboolean remove_on_exit;
} SbxState;

void sbx_state_free(SbxState *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxState, sbx_state_free)

/* Where the state lives: runtime_dir ($XDG_RUNTIME_DIR, resolved by the CLI)
 * or NULL for none. Called once, before the functions below. */
void sbx_state_set_runtime_dir(const char *runtime_dir);
char *sbx_state_base(GError **err);
gboolean sbx_state_name_valid(const char *name, GError **err);
/* Claim NAME: create its directory and hold its lock (fd returned). */
int sbx_state_claim(const char *name, GError **err);
/* Does a supervisor hold NAME's lock (whether its state is readable or not)? */
gboolean sbx_state_locked(const char *name);
gboolean sbx_state_save(const SbxState *s, GError **err);
SbxState *sbx_state_load(const char *name, GError **err);
/* Names of every sandbox with a state directory, sorted. */
char **sbx_state_names(void);
gboolean sbx_state_remove(const char *name, GError **err);
char *sbx_state_log_path(const char *name);
/* The start time of a process, 0 when it does not exist. */
guint64 sbx_proc_start_time(pid_t pid);
/* The directories sbx_state_base may choose (existing or not), NULL-ended. */
char **sbx_state_candidates(void);
/* Is the recorded init still the same process? */
gboolean sbx_state_init_alive(const SbxState *s);
