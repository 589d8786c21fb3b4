/* The journey of one `sbx run`, after the image is in the store:
 *
 *   sbx (host)                          init (PID 1 of the new namespaces)
 *   clone(NEWUSER|NEWNS|NEWPID|...) --> waits for "go"
 *   write uid/gid maps, send "go"   --> hostname, lo up, rootfs + pivot_root,
 *                                       resolve user, fork the program
 *   wait for "ok" or the error     <--  "ok" (or the error text)
 *   forward signals, wait               forward signals, reap, exit with status
 */
#include "sbx/ns.h"
#include "sbx/sandbox.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | \
                  CLONE_NEWCGROUP)

typedef struct {
  const SbxRunSpec *spec;
  const char *hostname;
  sigset_t forwarded;
  char *cgroup;
} Ctx;

static gboolean setup_rootfs(Ctx *c, GError **err)
{
  g_autofree char *hosts = g_strdup_printf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                           "ip6-loopback\n127.0.1.1\t%s\n", c->hostname);
  g_autofree char *hn = g_strconcat(c->hostname, "\n", NULL);
  SbxRootfsSpec rs = {
      .layers_dir = c->spec->image->layers_dir,
      .layer_dirs = c->spec->image->layer_dirs,
      .run_dir = c->spec->store_run_dir,
      .hostname = hn,
      .hosts = hosts,
      .resolv_conf = "# sbx: --network none: the sandbox has no DNS\n",
      .have_pts_gid = sbx_idmap_has_gid(c->spec->idmap, 5),
      .read_only = c->spec->read_only,
      .tmpfs = c->spec->tmpfs,
  };
  return sbx_mount_rootfs(&rs, err);
}

static char *resolve_workdir(const SbxRunSpec *spec, GError **err)
{
  const char *wd = spec->workdir ? spec->workdir : spec->image->config->workdir;
  if (!wd || !*wd)
    return g_strdup("/");
  if (!g_path_is_absolute(wd)) {
    sbx_fail(err, SBX_ERROR_USAGE, "working directory %s: must be an absolute path", wd);
    return NULL;
  }
  /* docker creates a missing WORKDIR; we are inside the new root already. */
  if (g_mkdir_with_parents(wd, 0755) < 0) {
    sbx_fail_errno(err, "working directory %s", wd);
    return NULL;
  }
  return g_strdup(wd);
}

static G_GNUC_NORETURN void init_main(Ctx *c, int syncfd)
{
  const SbxRunSpec *spec = c->spec;
  g_autoptr(GError) err = NULL;
  /* Non-dumpable: nothing inside may ptrace init or open /proc/1/exe (the
   * sbx binary) for writing (CVE-2019-5736). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  sbx_proctitle_set("sbx-init");
  SbxCreds creds = {0};
  g_auto(GStrv) argv = NULL, envp = NULL;
  g_autofree char *workdir = NULL;
  const char *user = spec->user ? spec->user : spec->image->config->user;
  gboolean ok = sbx_uts_setup(c->hostname, &err) && sbx_net_setup_loopback(&err) &&
                setup_rootfs(c, &err) && sbx_process_resolve_user(user, &creds, &err) &&
                (workdir = resolve_workdir(spec, &err)) != NULL &&
                (argv = sbx_process_argv(spec->image->config, spec->entrypoint,
                                         spec->entrypoint_set, spec->argv, &err)) != NULL;
  if (ok && (!sbx_idmap_has_uid(spec->idmap, creds.uid) || !sbx_idmap_has_gid(spec->idmap, creds.gid)))
    ok = sbx_fail(&err, SBX_ERROR_FAILED,
                  "user %s (%u:%u) is not mapped: %s", user ? user : "root", (unsigned)creds.uid,
                  (unsigned)creds.gid,
                  spec->idmap->mode == SBX_USERNS_SINGLE
                      ? "single-id mode maps only root; grant a range in /etc/subuid and /etc/subgid"
                      : "it lies outside the subuid/subgid range");
  if (!ok) {
    sbx_sync_send_error(syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  envp = sbx_process_env(spec->image->config, spec->env, c->hostname, creds.home);
  pid_t child = fork();
  if (child < 0) {
    sbx_fail_errno(&err, "fork");
    sbx_sync_send_error(syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  if (child == 0) {
    SbxExecPlan plan = {
        .argv = argv, .envp = envp, .creds = &creds, .workdir = workdir,
        .set_groups = spec->idmap->mode == SBX_USERNS_RANGE, .caps = spec->caps,
        .seccomp = spec->seccomp, .rlimits = spec->rlimits, .new_session = TRUE,
    };
    sbx_process_exec(&plan);
  }
  sbx_sync_send_ok(syncfd, "started");
  close(syncfd);
  sbx_close_fds_from(3);
  _exit(sbx_pid_init_loop(child, &c->forwarded));
}

static int status_of(int status)
{
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

/* Forward the user's signals to init (which forwards them to the program)
 * until init exits. The signals are blocked since before clone. */
static int wait_forwarding(pid_t pid, const sigset_t *forwarded)
{
  sigset_t mask = *forwarded;
  sigaddset(&mask, SIGCHLD);
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status_of(status);
    if (r < 0 && errno != EINTR)
      return SBX_EXIT_FAILED;
    siginfo_t si;
    if (sigwaitinfo(&mask, &si) < 0)
      continue;
    if (si.si_signo != SIGCHLD)
      kill(pid, si.si_signo);
  }
}

static int run_in_namespaces(Ctx *cp, GError **err);

static char *short_id(void)
{
  return sbx_random_hex(6);
}

static gboolean join_cgroup(pid_t child, gpointer data, GError **err)
{
  Ctx *c = data;
  return !c->cgroup || sbx_cgroup_attach(c->cgroup, child, err);
}

int sbx_sandbox_run(const SbxRunSpec *spec, GError **err)
{
  g_autofree char *id = short_id();
  Ctx c = {.spec = spec, .hostname = spec->hostname ? spec->hostname : id};
  c.cgroup = sbx_cgroup_create(&spec->limits, id, err);
  if (!c.cgroup && sbx_cgroup_limits_set(&spec->limits))
    return -1;
  int status = run_in_namespaces(&c, err);
  sbx_cgroup_remove(c.cgroup);
  g_free(c.cgroup);
  return status;
}

static int run_in_namespaces(Ctx *cp, GError **err)
{
  Ctx c = *cp;
  const SbxRunSpec *spec = c.spec;
  sbx_pid_forwarded_signals(&c.forwarded);
  sigset_t block = c.forwarded, old;
  sigaddset(&block, SIGCHLD);
  sigprocmask(SIG_BLOCK, &block, &old);
  int syncfd;
  pid_t pid = sbx_userns_clone_full(spec->idmap, NS_FLAGS, join_cgroup, &c, &syncfd, err);
  if (pid == 0)
    init_main(&c, syncfd);
  if (pid < 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  gboolean ok = sbx_sync_recv(syncfd, NULL, "sandbox setup", err);
  close(syncfd);
  if (!ok) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  sbx_debug("sandbox %d started", (int)pid);
  int status = wait_forwarding(pid, &c.forwarded);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return status;
}
