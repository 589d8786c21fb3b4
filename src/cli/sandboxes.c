/* sbx logs | exec | stop | kill | rm: named sandboxes (sandbox/state.c). */
#include "sbx/cli.h"
#include "sbx/sandbox.h"
#include "sbx/security.h"
#include "sbx/state.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static gboolean follow_opt, force_opt, interactive_opt, tty_opt;
static int timeout_opt = 10;
static char *signal_opt, *user_opt, *workdir_opt;
static char **env_opt;

static void clear_options(void)
{
  g_clear_pointer(&signal_opt, g_free);
  g_clear_pointer(&user_opt, g_free);
  g_clear_pointer(&workdir_opt, g_free);
  g_clear_pointer(&env_opt, g_strfreev);
}

static int command(int argc, char **argv, const char *params, const char *summary,
                   GOptionEntry *entries, gboolean posix, SbxCliParsed parsed)
{
  const SbxCliCommand cmd = {params, summary, entries, posix, parsed, clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}

/* ---- logs ---- */

static int logs_parsed(int argc, char **argv, GError **err)
{
  if (argc != 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "logs: give one sandbox name"), -1;
  g_autoptr(SbxState) st = sbx_state_load(argv[1], err);
  if (!st)
    return -1;
  g_autofree char *path = sbx_state_log_path(argv[1]);
  sbx_autofd fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat fst;
  if (fd < 0 && errno == ENOENT) /* not detached: its output went to the terminal */
    return 0;
  if (fd < 0 || fstat(fd, &fst) < 0)
    return sbx_fail_errno(err, "logs %s", argv[1]), -1;
  if (!S_ISREG(fst.st_mode))
    return sbx_fail(err, SBX_ERROR_INVALID, "logs %s: the log is not a regular file", argv[1]), -1;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      if (!sbx_write_all(STDOUT_FILENO, buf, (size_t)n, err))
        return -1;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (!follow_opt)
      break;
    /* -f: until the sandbox has exited and everything was read. */
    g_autoptr(SbxState) now = sbx_state_load(argv[1], NULL);
    if (!now || !now->running) {
      while ((n = read(fd, buf, sizeof buf)) > 0)
        sbx_write_all(STDOUT_FILENO, buf, (size_t)n, NULL);
      break;
    }
    g_usleep(100 * 1000);
  }
  return 0;
}

static GOptionEntry logs_entries[] = {{"follow", 'f', 0, G_OPTION_ARG_NONE, &follow_opt,
                                       "Keep printing until the sandbox exits", NULL},
                                      {NULL}};

int sbx_cmd_logs(int argc, char **argv)
{
  return command(argc, argv, "NAME", "Print the output of a detached sandbox.", logs_entries, FALSE,
                 logs_parsed);
}

/* ---- exec ---- */

static int exec_parsed(int argc, char **argv, GError **err)
{
  if (argc < 3)
    return sbx_fail(err, SBX_ERROR_USAGE, "exec: give a sandbox name and a command"), -1;
  g_autoptr(SbxState) st = sbx_state_load(argv[1], err);
  if (!st)
    return -1;
  SbxIdMap map;
  SbxUsernsMode mode = SBX_USERNS_SINGLE;
  if (!sbx_userns_mode_parse(st->userns, &mode, err) ||
      !sbx_idmap_resolve(mode, sbx_cli_settings(), &map, err))
    return -1;
  g_autoptr(SbxStore) store = sbx_store_open(st->store_root, &map, sbx_cli_settings(), err);
  SbxSeccompSpec sc = {.profile = st->seccomp && *st->seccomp ? st->seccomp : NULL,
                       .caps = st->caps};
  g_autoptr(GBytes) bpf = NULL;
  int status = -1;
  gboolean ok = store && sbx_seccomp_prepare(store, &sc, &bpf, err);
  /* The profile is compiled again: it must give the run's very filter (a
   * profile a volume shows the job could have been rewritten by it). */
  g_autofree char *id = ok ? sbx_seccomp_filter_id(bpf) : NULL;
  if (ok && !(st->seccomp_filter && *st->seccomp_filter))
    ok = sbx_fail(err, SBX_ERROR_FAILED,
                  "exec %s: started by an older sbx, which did not record its seccomp filter "
                  "(stop it and run it again)",
                  argv[1]);
  else if (ok && g_strcmp0(id, st->seccomp_filter) != 0)
    ok = sbx_fail(err, SBX_ERROR_FAILED,
                  "exec %s: the seccomp profile %s no longer gives the run's filter", argv[1],
                  sc.profile ? sc.profile : "(the default)");
  if (ok) {
    SbxExecRequest req = {.argv = argv + 2,
                          .env = env_opt,
                          .user = user_opt,
                          .workdir = workdir_opt,
                          .interactive = interactive_opt,
                          .tty = tty_opt,
                          .seccomp = bpf};
    status = sbx_exec_in(st, &req, err);
  }
  sbx_idmap_clear(&map);
  return status;
}

static GOptionEntry exec_entries[] = {
    {"interactive", 'i', 0, G_OPTION_ARG_NONE, &interactive_opt, "Keep stdin open", NULL},
    {"tty", 't', 0, G_OPTION_ARG_NONE, &tty_opt, "Give the command a pseudo-terminal", NULL},
    {"env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &env_opt, "Set a variable", "KEY=VALUE"},
    {"user", 'u', 0, G_OPTION_ARG_STRING, &user_opt, "Run as USER[:GROUP]", "USER[:GROUP]"},
    {"workdir", 'w', 0, G_OPTION_ARG_STRING, &workdir_opt, "Working directory inside", "DIR"},
    {NULL}};

int sbx_cmd_exec(int argc, char **argv)
{
  return command(argc, argv, "NAME COMMAND [ARG...]",
                 "Run a command in a running sandbox, joining all its namespaces, with the same "
                 "seccomp filter, capabilities and no_new_privs as its program.",
                 exec_entries, TRUE, exec_parsed);
}

/* ---- stop, kill ---- */

static gboolean signal_parse(const char *s, int *out, GError **err)
{
  static const struct {
    const char *n;
    int sig;
  } names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},    {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
               {"USR1", SIGUSR1}, {"USR2", SIGUSR2},  {"TERM", SIGTERM}, {"CONT", SIGCONT},
               {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}};
  guint64 n;
  if (g_ascii_string_to_unsigned(s, 10, 1, 64, &n, NULL)) {
    *out = (int)n;
    return TRUE;
  }
  const char *name = g_ascii_strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    if (g_ascii_strcasecmp(name, names[i].n) == 0) {
      *out = names[i].sig;
      return TRUE;
    }
  return sbx_fail(err, SBX_ERROR_USAGE, "-s: unknown signal '%s'", s);
}

static SbxState *running(const char *name, GError **err)
{
  g_autoptr(SbxState) st = sbx_state_load(name, err);
  if (st && (!st->running || !sbx_state_init_alive(st))) {
    sbx_fail(err, SBX_ERROR_FAILED, "sandbox %s is not running", name);
    return NULL;
  }
  return g_steal_pointer(&st);
}

static gboolean wait_gone(const char *name, int seconds)
{
  for (int i = 0; i < seconds * 20; i++) {
    g_autoptr(SbxState) st = sbx_state_load(name, NULL);
    if (!st || !st->running)
      return TRUE;
    g_usleep(50 * 1000);
  }
  return FALSE;
}

static int kill_parsed(int argc, char **argv, GError **err)
{
  int sig = SIGKILL;
  if (signal_opt && !signal_parse(signal_opt, &sig, err))
    return -1;
  if (argc < 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "kill: give sandbox names"), -1;
  for (int i = 1; i < argc; i++) {
    g_autoptr(SbxState) st = running(argv[i], err);
    /* init forwards what the program should get; KILL ends the sandbox. */
    if (!st || kill(st->init_pid, sig) < 0)
      return (err && *err) ? -1 : (sbx_fail_errno(err, "kill %s", argv[i]), -1);
    printf("%s\n", argv[i]);
  }
  return 0;
}

static int stop_parsed(int argc, char **argv, GError **err)
{
  if (argc < 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "stop: give sandbox names"), -1;
  if (timeout_opt < 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "stop: -t must not be negative"), -1;
  for (int i = 1; i < argc; i++) {
    g_autoptr(SbxState) st = running(argv[i], err);
    if (!st)
      return -1;
    kill(st->init_pid, SIGTERM);
    if (!wait_gone(argv[i], timeout_opt)) {
      if (sbx_state_init_alive(st))
        kill(st->init_pid, SIGKILL);
      wait_gone(argv[i], 10);
    }
    printf("%s\n", argv[i]);
  }
  return 0;
}

static GOptionEntry kill_entries[] = {
    {"signal", 's', 0, G_OPTION_ARG_STRING, &signal_opt, "Signal to send (default KILL)", "SIGNAL"},
    {NULL}};
static GOptionEntry stop_entries[] = {{"time", 't', 0, G_OPTION_ARG_INT, &timeout_opt,
                                       "Seconds to wait after SIGTERM before SIGKILL (default 10)",
                                       "SECONDS"},
                                      {NULL}};

int sbx_cmd_kill(int argc, char **argv)
{
  return command(argc, argv, "NAME...", "Send a signal to sandboxes' programs.", kill_entries,
                 FALSE, kill_parsed);
}

int sbx_cmd_stop(int argc, char **argv)
{
  timeout_opt = 10;
  return command(argc, argv, "NAME...", "Stop sandboxes: SIGTERM, then SIGKILL after a timeout.",
                 stop_entries, FALSE, stop_parsed);
}

/* ---- rm ---- */

static int rm_parsed(int argc, char **argv, GError **err)
{
  if (argc < 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "rm: give sandbox names"), -1;
  for (int i = 1; i < argc; i++) {
    g_autoptr(GError) local = NULL;
    g_autoptr(SbxState) st = sbx_state_load(argv[i], &local);
    if (!st && g_error_matches(local, SBX_ERROR, SBX_ERROR_NOT_FOUND)) {
      g_propagate_error(err, g_steal_pointer(&local));
      return -1;
    }
    /* Unreadable, and its lock held: a sandbox still starting (its state
     * is written once the program runs), or one sbx cannot see to stop.
     * Its record is all that leads to it: it stays. */
    if (!st && sbx_state_locked(argv[i]))
      return sbx_fail(err, SBX_ERROR_FAILED,
                      "sandbox %s: its state is unreadable but its supervisor still holds its "
                      "lock (starting, or running out of sbx's reach): not removing it",
                      argv[i]),
             -1;
    if (st && st->running) {
      if (!force_opt)
        return sbx_fail(err, SBX_ERROR_FAILED, "sandbox %s is running: stop it first, or use rm -f",
                        argv[i]),
               -1;
      if (sbx_state_init_alive(st))
        kill(st->init_pid, SIGKILL);
      if (!wait_gone(argv[i], 10))
        return sbx_fail(err, SBX_ERROR_FAILED, "sandbox %s did not stop", argv[i]), -1;
    }
    if (!sbx_state_remove(argv[i], err))
      return -1;
    printf("%s\n", argv[i]);
  }
  return 0;
}

static GOptionEntry rm_entries[] = {
    {"force", 'f', 0, G_OPTION_ARG_NONE, &force_opt, "Kill a running sandbox first", NULL}, {NULL}};

int sbx_cmd_rm(int argc, char **argv)
{
  return command(argc, argv, "NAME...", "Remove sandboxes that have exited.", rm_entries, FALSE,
                 rm_parsed);
}
