/* sbx-store: the helper program for everything that reads archives or JSON
 * (load, and the import behind `sbx run FILE`). sbx execs it; it links
 * libarchive and json-glib so that sbx itself does not. Dispatch only. */
#include "sbx/cli.h"
#include "sbx/util.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  int (*fn)(int, char **);
} commands[] = {
    {"load", sbx_cmd_load},
    {"import", sbx_cmd_import},
    {"images", sbx_cmd_images},
    {"inspect", sbx_cmd_inspect},
    {"rmi", sbx_cmd_rmi},
    {"prune", sbx_cmd_prune},
    {"seccomp-compile", sbx_cmd_seccomp_compile},
    {"ps", sbx_cmd_ps},
    {"pull", sbx_cmd_pull},
    {"login", sbx_cmd_login},
    {"logout", sbx_cmd_logout},
};

int main(int argc, char **argv)
{
  /* Member names are bytes; a UTF-8 ctype lets libarchive hand them over
   * unchanged whatever the caller's locale. */
  if (!setlocale(LC_CTYPE, "C.UTF-8"))
    setlocale(LC_CTYPE, "");
  sbx_unpack_note_umask();
  for (size_t i = 0; argc > 1 && i < G_N_ELEMENTS(commands); i++)
    if (strcmp(argv[1], commands[i].name) == 0) {
      g_autofree char *prg = g_strconcat("sbx ", argv[1], NULL);
      g_set_prgname(prg);
      return commands[i].fn(argc - 1, argv + 1);
    }
  fprintf(stderr, "sbx: sbx-store: unknown command '%s'\n", argc > 1 ? argv[1] : "");
  return SBX_EXIT_FAILED;
}
