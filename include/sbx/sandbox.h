/* sandbox: the sequence that ties the namespaces together, the init (PID 1)
 * and the process the image runs. */
#pragma once

#include <glib.h>
#include "sbx/store.h"
#include "sbx/user.h"

typedef enum { SBX_NET_NONE } SbxNetMode;

typedef struct {
  SbxStoredImage *image;
  const SbxIdMap *idmap;
  const char *store_run_dir;
  /* Overrides from the command line (NULL/unset = image default). */
  char **argv;             /* trailing CMD... */
  const char *entrypoint;  /* --entrypoint; "" clears */
  gboolean entrypoint_set;
  char **env;              /* -e KEY=VAL or KEY (taken from the caller) */
  const char *workdir;
  const char *user;
  const char *hostname;
  SbxNetMode net;
} SbxRunSpec;

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
char **sbx_process_argv(const SbxImageConfig *cfg, const char *entrypoint,
                        gboolean entrypoint_set, char **argv, GError **err);
/* The final environment: image Env, then -e overrides, PATH/HOME/HOSTNAME. */
char **sbx_process_env(const SbxImageConfig *cfg, char **overrides, const char *hostname,
                       const char *home);
/* Drop to creds, chdir, no_new_privs, close fds, exec; never returns. */
G_GNUC_NORETURN void sbx_process_exec(char **argv, char **envp, const SbxCreds *creds,
                                      const char *workdir, gboolean set_groups);

