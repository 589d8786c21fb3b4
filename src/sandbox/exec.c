/* sbx exec: a new process inside a running sandbox. It joins every
 * namespace of the sandbox's init (user first: that is what gives the right
 * to join the others), and ends with the same last steps as the sandbox's
 * own program: capabilities, no_new_privs, the same seccomp filter. */
#include "sbx/ns.h"
#include "sbx/sandbox.h"
#include "sbx/security.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const struct {
  const char *name;
  int type;
} namespaces[] = {{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},  {"uts", CLONE_NEWUTS},
                  {"ipc", CLONE_NEWIPC},   {"net", CLONE_NEWNET}, {"cgroup", CLONE_NEWCGROUP},
                  {"pid", CLONE_NEWPID}};
#define N_NS G_N_ELEMENTS(namespaces)

/* init is non-dumpable (its /proc/PID/ns is closed to us, on purpose: see
 * sandbox.c), so the namespaces are taken from its child, the program. */
static pid_t sandbox_member(const SbxState *st)
{
  g_autofree char *path =
      g_strdup_printf("/proc/%d/task/%d/children", (int)st->init_pid, (int)st->init_pid);
  g_autofree char *data = NULL;
  if (!g_file_get_contents(path, &data, NULL, NULL))
    return -1;
  g_auto(GStrv) pids = g_strsplit(g_strstrip(data), " ", -1);
  for (char **p = pids; *p; p++) {
    guint64 pid;
    if (g_ascii_string_to_unsigned(*p, 10, 1, G_MAXINT32, &pid, NULL))
      return (pid_t)pid;
  }
  return -1;
}

static gboolean open_namespaces(const SbxState *st, int fds[N_NS], GError **err)
{
  pid_t member = sandbox_member(st);
  if (member <= 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "sandbox %s is not running (its program has exited)",
                    st->name);
  for (guint i = 0; i < N_NS; i++) {
    g_autofree char *p = g_strdup_printf("/proc/%d/ns/%s", (int)member, namespaces[i].name);
    fds[i] = open(p, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0)
      return sbx_fail_errno(err, "sandbox %s: %s", st->name, p);
    /* A namespace the sandbox shares with us (the network with --network
     * host) is not joined: setns would need privilege over it. */
    g_autofree char *self = g_strdup_printf("/proc/self/ns/%s", namespaces[i].name);
    struct stat a, b;
    if (stat(self, &a) == 0 && fstat(fds[i], &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev) {
      close(fds[i]);
      fds[i] = -1;
    }
  }
  /* The pids might have been reused between reading them and opening: the
   * member must still be init's child, and its user namespace not ours (a
   * host process that took the pid would hand us the host's namespaces). */
  g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int)member);
  g_autofree char *stat_data = NULL;
  const char *after = NULL;
  if (g_file_get_contents(stat_path, &stat_data, NULL, NULL))
    after = strrchr(stat_data, ')');
  g_auto(GStrv) f = after ? g_strsplit(after + 2, " ", 3) : NULL;
  gboolean child_of_init =
      f && g_strv_length(f) >= 2 && g_ascii_strtoll(f[1], NULL, 10) == st->init_pid;
  if (!sbx_state_init_alive(st) || !child_of_init || fds[0] < 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "sandbox %s is not running", st->name);
  return TRUE;
}

static gboolean join(int fds[N_NS], GError **err)
{
  for (guint i = 0; i < N_NS; i++) {
    if (fds[i] < 0)
      continue;
    if (setns(fds[i], namespaces[i].type) < 0)
      return sbx_fail_errno(err, "join the sandbox's %s namespace", namespaces[i].name);
  }
  return TRUE;
}

typedef struct {
  const SbxState *st;
  const SbxExecRequest *req;
  GBytes *seccomp;
  int syncfd;
  SbxStdioPipes pipes;
  char **argv; /* the command, copied out of sbx's own argv (middle() overwrites that) */
} Exec;

static G_GNUC_NORETURN void program(Exec *x)
{
  g_autoptr(GError) err = NULL;
  const char *user = x->req->user ? x->req->user : x->st->user;
  SbxCreds creds;
  if (!sbx_process_resolve_user(user, &creds, &err)) {
    sbx_sync_send_error(x->syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  SbxImageConfig cfg = {.env = x->st->env};
  g_auto(GStrv) envp =
      sbx_process_env(&cfg, x->req->env, x->st->hostname ? x->st->hostname : "", creds.home);
  if (x->req->tty && !g_environ_getenv(envp, "TERM"))
    envp = g_environ_setenv(envp, "TERM", "xterm", TRUE);
  g_autofree char *slave = NULL;
  int master = x->req->tty ? sbx_tty_open_master(&slave, &err) : -1;
  if (x->req->tty && master < 0) {
    sbx_sync_send_error(x->syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  if (master >= 0)
    sbx_sync_send_fd(x->syncfd, "started", master);
  else
    sbx_sync_send_ok(x->syncfd, "started");
  const char *wd = x->req->workdir ? x->req->workdir
                                   : (x->st->workdir && *x->st->workdir ? x->st->workdir : "/");
  SbxExecPlan plan = {
      .argv = x->argv,
      .envp = envp,
      .creds = &creds,
      .workdir = wd,
      .set_groups = g_strcmp0(x->st->userns, "range") == 0,
      .caps = x->st->caps,
      .seccomp = x->seccomp,
      .new_session = TRUE,
      .tty_slave = slave,
      .null_stdin = !x->req->interactive,
  };
  sbx_process_exec(&plan);
}

/* --pids-limit by RLIMIT_NPROC: the sandbox's processes, ours among them
 * once we joined its user namespace, count against the limit the fork of
 * the program checks, ours (sbx's own until now). With a range, the
 * intermediate namespace bounds the total as well (ns/user.c). */
static gboolean limit_processes(const SbxState *st, GError **err)
{
  struct rlimit rl;
  if (st->nproc <= 0 || getrlimit(RLIMIT_NPROC, &rl) < 0)
    return TRUE;
  rl.rlim_cur = rl.rlim_max = MIN((rlim_t)st->nproc, rl.rlim_max);
  return setrlimit(RLIMIT_NPROC, &rl) == 0 ||
         sbx_fail_errno(err, "--pids-limit: RLIMIT_NPROC %" G_GINT64_FORMAT, st->nproc);
}

/* Between sbx and the program: in the sandbox's namespaces but not in its
 * pid namespace (that only applies to children), so invisible inside. */
static G_GNUC_NORETURN void middle(Exec *x, int fds[N_NS], const sigset_t *forwarded)
{
  g_autoptr(GError) err = NULL;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* Before the fork below puts a process in the sandbox's pid namespace:
   * until it execs, its /proc/PID/cmdline would show the sandbox sbx's
   * path, --root and every -e KEY=VALUE (init hides its own the same way). */
  x->argv = g_strdupv(x->req->argv);
  sbx_proctitle_set("sbx-exec");
  sbx_stdio_pipes_child(&x->pipes, x->req->tty);
  if (!join(fds, &err) || !limit_processes(x->st, &err)) {
    sbx_sync_send_error(x->syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  pid_t child = fork();
  if (child < 0) {
    sbx_fail_errno(&err, "fork");
    sbx_sync_send_error(x->syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  if (child == 0)
    program(x);
  close(x->syncfd);
  _exit(sbx_pid_init_loop(child, forwarded));
}

int sbx_exec_in(const SbxState *st, const SbxExecRequest *req, GError **err)
{
  if (!st->running || !sbx_state_init_alive(st))
    return sbx_fail(err, SBX_ERROR_FAILED, "sandbox %s is not running", st->name), -1;
  int fds[N_NS];
  for (guint i = 0; i < N_NS; i++)
    fds[i] = -1;
  int sync[2] = {-1, -1};
  int status = -1;
  sigset_t forwarded, block, old;
  sbx_pid_forwarded_signals(&forwarded);
  block = forwarded;
  sigaddset(&block, SIGCHLD);
  if (open_namespaces(st, fds, err) && sbx_sync_pair(sync, err)) {
    sigprocmask(SIG_BLOCK, &block, &old);
    Exec x = {.st = st, .req = req, .seccomp = req->seccomp, .syncfd = sync[1]};
    sbx_stdio_pipes_open(&x.pipes, req->tty, req->interactive);
    pid_t pid = fork();
    if (pid == 0) {
      close(sync[0]);
      middle(&x, fds, &forwarded);
    }
    close(sync[1]);
    sbx_autofd master = -1;
    if (pid < 0)
      sbx_fail_errno(err, "fork");
    else if (!sbx_sync_recv_fd(sync[0], NULL, &master, "exec", err)) {
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    } else {
      SbxSandboxEnd end;
      sbx_sandbox_end_init(&end, pid, -1);
      status = master >= 0 ? sbx_tty_relay(&end, master, req->interactive, &forwarded)
               : sbx_stdio_pipes_active(&x.pipes) ? sbx_stdio_relay(&end, &x.pipes, &forwarded)
                                                  : sbx_sandbox_wait(&end, &forwarded);
    }
    sbx_stdio_pipes_close(&x.pipes);
    close(sync[0]);
    sigprocmask(SIG_SETMASK, &old, NULL);
  }
  for (guint i = 0; i < N_NS; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  return status;
}
