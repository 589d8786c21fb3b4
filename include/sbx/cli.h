/* cli: one file per command; options in, a request out, and the only place
 * that prints "sbx: ..." and picks the exit status. */
#pragma once

#include <glib.h>

int sbx_cmd_run(int argc, char **argv);

/* Print "sbx: <message>" (one line) and return the exit status for it. */
int sbx_cli_report(const GError *err);
/* Options every command takes. */
typedef struct {
  char *root;
  char *log_level;
  char *userns;
} SbxGlobalOptions;
extern SbxGlobalOptions sbx_global;
void sbx_cli_add_global_options(GOptionContext *ctx);
gboolean sbx_cli_apply_global_options(GError **err);
void sbx_cli_global_options_clear(void);
