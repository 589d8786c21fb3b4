/* sbx: command dispatch only. */
#include "sbx-config.h"
#include "sbx/cli.h"
#include "sbx/user.h"
#include "sbx/util.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Commands that read archives or JSON run in the helper program sbx-store
 * (it links libarchive and json-glib; sbx links neither, to start fast). */
static int exec_store_helper(int argc, char **argv)
{
  g_autoptr(GError) err = NULL;
  g_autofree char *helper = sbx_helper_path("sbx-store", &err);
  if (!helper)
    return sbx_cli_report(err);
  argv[-1] = helper; /* argv[-1] is our own argv[0]: reuse the slot */
  g_auto(GStrv) env = sbx_helper_environ(SBX_STORE_HELPER_ENV);
  execve(helper, argv - 1, env);
  sbx_fail_errno(&err, "exec %s", helper);
  return sbx_cli_report(err);
}

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} commands[] = {
    {"run", sbx_cmd_run, "Run an image in a rootless sandbox"},
    {"pull", exec_store_helper, "Pull an image from a registry into the store"},
    {"load", exec_store_helper, "Import an image archive into the store"},
    {"images", exec_store_helper, "List the images in the store"},
    {"inspect", exec_store_helper, "Show an image's config, layers and history"},
    {"rmi", exec_store_helper, "Remove images from the store"},
    {"prune", exec_store_helper, "Delete layers no image uses"},
    {"ps", exec_store_helper, "List named and detached sandboxes"},
    {"logs", sbx_cmd_logs, "Print a detached sandbox's output"},
    {"exec", sbx_cmd_exec, "Run a command in a running sandbox"},
    {"stop", sbx_cmd_stop, "Stop sandboxes (SIGTERM, then SIGKILL)"},
    {"kill", sbx_cmd_kill, "Send a signal to sandboxes"},
    {"rm", sbx_cmd_rm, "Remove exited sandboxes"},
    {"check", sbx_cmd_check, "Report whether this host supports sbx"},
    {"network", sbx_cmd_network, "Create, list, inspect and remove sandbox networks"},
    {"login", exec_store_helper, "Log in to a registry"},
    {"logout", exec_store_helper, "Forget a registry's credentials"},
};

static void usage(FILE *out)
{
  fprintf(out, "Usage: sbx COMMAND [OPTIONS...]\n\nA rootless sandbox for container images.\n\n"
               "Commands:\n");
  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
  fprintf(out, "\nOptions:\n  -h, --help     Show this help\n  -V, --version  Show versions\n\n"
               "'sbx COMMAND --help' shows a command's options.\n");
}

static void version(void)
{
  printf("sbx %s\nlibarchive %s, libseccomp %s, libslirp %s, glib %s, json-glib %s, libcurl %s\n",
         SBX_VERSION, SBX_ARCHIVE_VERSION, SBX_SECCOMP_VERSION, SBX_SLIRP_VERSION, SBX_GLIB_VERSION,
         SBX_JSON_GLIB_VERSION, SBX_CURL_VERSION);
}

/* Plain ASCII and no help asked for (GOption's help has an ellipsis). */
static gboolean ascii_only(int argc, char **argv)
{
  for (int i = 0; i < argc; i++) {
    if (g_str_has_prefix(argv[i], "--help") || strcmp(argv[i], "-h") == 0 ||
        strcmp(argv[i], "-?") == 0)
      return FALSE;
    for (const char *c = argv[i]; *c; c++)
      if ((unsigned char)*c >= 0x80)
        return FALSE;
  }
  return TRUE;
}

int main(int argc, char **argv)
{
  /* A UTF-8 ctype whatever the caller's locale: GOption converts string
   * arguments from the locale's charset. Loading it costs ~0.1 ms, a fiftieth
   * of a start, and `sbx run` writes its messages as bytes: a command line of
   * plain ASCII there needs none. (sbx-store sets its own, for libarchive.) */
  sbx_proctitle_init(argc, argv);
  sbx_log_glib_plain();
  if (argc < 2 || strcmp(argv[1], "run") != 0 || !ascii_only(argc, argv))
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
      setlocale(LC_CTYPE, "");
  if (argc == 4 && strcmp(argv[1], SBX_USERNS_HOLDER_ARG) == 0)
    return sbx_userns_holder_main(argv[2], argv[3]);
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? SBX_EXIT_FAILED : 0;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
      strcmp(argv[1], "version") == 0) {
    version();
    return 0;
  }
  for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
    if (strcmp(argv[1], commands[i].name) == 0) {
      g_autofree char *prg = g_strconcat("sbx ", argv[1], NULL);
      g_set_prgname(prg); /* "Usage: sbx run ..." */
      return commands[i].fn(argc - 1, argv + 1);
    }
  fprintf(stderr, "sbx: unknown command '%s' (see 'sbx --help')\n", argv[1]);
  return SBX_EXIT_FAILED;
}
