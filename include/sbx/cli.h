/* cli: one file per command; options in, a request out, and the only place
 * that prints "sbx: ..." and picks the exit status. */
#pragma once

#include <glib.h>

#include "sbx/store.h"

int sbx_cmd_run(int argc, char **argv);
int sbx_cmd_logs(int argc, char **argv);
int sbx_cmd_exec(int argc, char **argv);
int sbx_cmd_stop(int argc, char **argv);
int sbx_cmd_kill(int argc, char **argv);
int sbx_cmd_rm(int argc, char **argv);
int sbx_cmd_ps(int argc, char **argv);
int sbx_cmd_check(int argc, char **argv);
int sbx_cmd_network(int argc, char **argv);
/* In sbx-store (src/sbx-store.c dispatches): */
int sbx_cmd_load(int argc, char **argv);
int sbx_cmd_import(int argc, char **argv);
int sbx_cmd_images(int argc, char **argv);
int sbx_cmd_inspect(int argc, char **argv);
int sbx_cmd_rmi(int argc, char **argv);
int sbx_cmd_prune(int argc, char **argv);
int sbx_cmd_seccomp_compile(int argc, char **argv);
int sbx_cmd_pull(int argc, char **argv);
int sbx_cmd_login(int argc, char **argv);
int sbx_cmd_logout(int argc, char **argv);

/* Print "sbx: <message>" (one line) and return the exit status for it. */
int sbx_cli_report(const GError *err);
/* Options every command takes. */
typedef struct {
  char *root;
  char *log_level;
  char *userns;
  char *platform;
} SbxGlobalOptions;
extern SbxGlobalOptions sbx_global;
void sbx_cli_add_global_options(GOptionContext *ctx);
gboolean sbx_cli_apply_global_options(GError **err);
void sbx_cli_global_options_clear(void);
/* One command's option parsing and error reporting: parse (strict POSIX:
 * options stop at the first operand), apply the global options, run
 * `parsed` (-1 with err on failure), print the error, clear the options. */
typedef int (*SbxCliParsed)(int argc, char **argv, GError **err);
typedef struct {
  const char *params, *summary;
  GOptionEntry *entries;
  gboolean posix;
  SbxCliParsed parsed;
  void (*clear)(void); /* the command's own options */
} SbxCliCommand;
int sbx_cli_command(const SbxCliCommand *cmd, int argc, char **argv);
/* IMAGE as a path, or FILE:NAME[:TAG]; NOT_FOUND when neither exists. */
gboolean sbx_cli_split_image_ref(const char *ref, char **path, char **select, GError **err);
/* The store at --root / $SBX_ROOT / default, with the --userns mapping. */
SbxStore *sbx_cli_open_store(GError **err);
/* What the options and the environment say, for the library (settings.h). */
const SbxSettings *sbx_cli_settings(void);
