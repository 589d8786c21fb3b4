/* The journey of one `sbx run`, after the image is in the store:
 *
 *   sbx (host)                          init (PID 1 of the new namespaces)
 *   clone(NEWUSER|NEWNS|NEWPID|...) --> waits for "go"
 *   write uid/gid maps, send "go"   --> hostname, lo up, rootfs + pivot_root,
 *                                       resolve user, fork the program
 *   wait for "ok" or the error     <--  "ok" (or the error text)
 *   forward signals, wait               forward signals, reap, exit with status
 */
#include "sbx/net.h"
#include "sbx/ns.h"
#include "sbx/path.h"
#include "sbx/sandbox.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWCGROUP)

typedef struct {
  const SbxRunSpec *spec;
  const char *hostname;
  sigset_t forwarded;
  char *cgroup;
  SbxStdioPipes pipes; /* no -t but a terminal on stdout/stderr */
} Ctx;

/* /etc/hosts and /etc/resolv.conf as the network mode makes them true. */
static char *etc_hosts(Ctx *c)
{
  const char *self = c->spec->net.mode == SBX_NET_SLIRP ? SBX_NET_GUEST : "127.0.1.1";
  GString *h = g_string_new("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  g_string_append_printf(h, "%s\t%s\n", self, c->hostname);
  if (c->spec->net.mode == SBX_NET_SLIRP && c->spec->net.allow_host_loopback)
    g_string_append(h, SBX_NET_GATEWAY "\thost.containers.internal host.docker.internal\n");
  return g_string_free(h, FALSE);
}

static char *etc_resolv_conf(Ctx *c)
{
  if (c->spec->net.mode == SBX_NET_SLIRP)
    return g_strdup("# sbx: libslirp's resolver, which forwards to the host's\n"
                    "nameserver " SBX_NET_DNS "\n");
  if (c->spec->net.mode == SBX_NET_HOST) {
    g_autofree char *host = NULL;
    if (g_file_get_contents("/etc/resolv.conf", &host, NULL, NULL))
      return g_steal_pointer(&host);
  }
  return g_strdup("# sbx: --network none: the sandbox has no DNS\n");
}

static gboolean setup_rootfs(Ctx *c, GError **err)
{
  g_autofree char *hosts = etc_hosts(c);
  g_autofree char *resolv = etc_resolv_conf(c);
  g_autofree char *hn = g_strconcat(c->hostname, "\n", NULL);
  SbxRootfsSpec rs = {
      .layers_dir = c->spec->image->layers_dir,
      .layer_dirs = c->spec->image->layer_dirs,
      .run_dir = c->spec->store_run_dir,
      .hostname = hn,
      .hosts = hosts,
      .resolv_conf = resolv,
      .have_pts_gid = sbx_idmap_has_gid(c->spec->idmap, SBX_TTY_GID),
      .read_only = c->spec->read_only,
      .tmpfs = c->spec->tmpfs,
      .volumes = c->spec->volumes,
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
  /* docker creates a missing WORKDIR (through a dangling symlink too: its
   * target, inside the root). We are inside the new root already. */
  sbx_autofd root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  sbx_autofd fd = root < 0 ? -1 : sbx_mkdir_in_root(root, wd, 0755, err);
  if (fd < 0) {
    g_prefix_error(err, "working directory: ");
    return NULL;
  }
  return g_strdup(wd);
}

/* none: lo only. slirp: also tap0, whose fd goes to sbx, which answers once
 * the network helper holds it (and its forwarded ports are bound). */
static gboolean setup_network(Ctx *c, int syncfd, GError **err)
{
  if (c->spec->net.mode == SBX_NET_HOST)
    return TRUE;
  if (!sbx_net_setup_loopback(err))
    return FALSE;
  if (c->spec->net.mode != SBX_NET_SLIRP)
    return TRUE;
  SbxTapConfig tc = {.address = SBX_NET_GUEST, .netmask = SBX_NET_NETMASK,
                     .gateway = SBX_NET_GATEWAY, .mtu = c->spec->net.mtu};
  sbx_autofd tap = sbx_net_create_tap(&tc, err);
  if (tap < 0)
    return FALSE;
  if (!sbx_sync_send_fd(syncfd, "tap", tap))
    return sbx_fail_errno(err, "network: hand tap0 to sbx");
  return sbx_sync_recv(syncfd, NULL, "sbx", err);
}

static G_GNUC_NORETURN void init_main(Ctx *c, int syncfd)
{
  const SbxRunSpec *spec = c->spec;
  g_autoptr(GError) err = NULL;
  /* Non-dumpable: nothing inside may ptrace init or open /proc/1/exe (the
   * sbx binary) for writing (CVE-2019-5736). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  sbx_proctitle_set("sbx-init");
  sbx_stdio_pipes_child(&c->pipes);
  SbxCreds creds = {0};
  g_auto(GStrv) argv = NULL, envp = NULL;
  g_autofree char *workdir = NULL;
  const char *user = spec->user ? spec->user : spec->image->config->user;
  gboolean ok = sbx_uts_setup(c->hostname, &err) && setup_network(c, syncfd, &err) &&
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
  if (spec->tty && !g_environ_getenv(envp, "TERM"))
    envp = g_environ_setenv(envp, "TERM", "xterm", TRUE);
  g_autofree char *slave = NULL;
  sbx_autofd master = spec->tty ? sbx_tty_open_master(&slave, &err) : -1;
  if (spec->tty && master < 0) {
    sbx_sync_send_error(syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
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
        .tty_slave = slave, .null_stdin = !spec->interactive,
    };
    sbx_process_exec(&plan);
  }
  if (master >= 0)
    sbx_sync_send_fd(syncfd, "started", master);
  else
    sbx_sync_send_ok(syncfd, "started");
  close(syncfd);
  sbx_close_fds_from(3);
  _exit(sbx_pid_init_loop(child, &c->forwarded));
}


/* Forward the user's signals to init (which forwards them to the program)
 * until init exits. The signals are blocked since before clone. */
int sbx_sandbox_wait(pid_t pid, const sigset_t *forwarded)
{
  sigset_t mask = *forwarded;
  sigaddset(&mask, SIGCHLD);
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return sbx_exit_status(status);
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

static void helper_setup(gpointer data)
{
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The helper gets none of the signals sbx forwards (sbx stops it). */
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, NULL);
  /* No controlling terminal, and the user's terminal only as stderr when
   * debugging: a bug in libslirp must not type into the user's shell. */
  setsid();
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    if (sbx_log_level < SBX_LOG_DEBUG)
      dup2(null, STDERR_FILENO);
  }
}

/* Receive tap0 from init and start sbx-net on it; TRUE once it is ready. */
static gboolean start_network(Ctx *c, int syncfd, pid_t *helper, GError **err)
{
  const SbxNetSpec *net = &c->spec->net;
  sbx_autofd tap = -1;
  if (!sbx_sync_recv_fd(syncfd, NULL, &tap, "sandbox setup", err))
    return FALSE;
  if (tap < 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "network: no tap0 from the sandbox");
  g_autofree char *path = sbx_helper_path("sbx-net", err);
  if (!path)
    return FALSE;
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0)
    return sbx_fail_errno(err, "pipe");
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(argv, g_strdup(path));
  g_ptr_array_add(argv, g_strdup("--tap-fd=3"));
  g_ptr_array_add(argv, g_strdup("--ready-fd=4"));
  g_ptr_array_add(argv, g_strdup_printf("--mtu=%u", net->mtu));
  g_ptr_array_add(argv, g_strdup_printf("--log-level=%s", sbx_log_level_name()));
  if (net->allow_host_loopback)
    g_ptr_array_add(argv, g_strdup("--allow-host-loopback"));
  for (char **p = net->publish; p && *p; p++)
    g_ptr_array_add(argv, g_strdup_printf("--publish=%s", *p));
  for (char **a = net->allow; a && *a; a++)
    g_ptr_array_add(argv, g_strdup_printf("--net-allow=%s", *a));
  if (g_getenv("SBX_NET_RESOLV_CONF"))
    g_ptr_array_add(argv, g_strdup_printf("--resolv-conf=%s", g_getenv("SBX_NET_RESOLV_CONF")));
  g_ptr_array_add(argv, NULL);
  int source_fds[] = {tap, ready[1]}, target_fds[] = {3, 4};
  GPid pid;
  g_autoptr(GError) local = NULL;
  gboolean ok = g_spawn_async_with_pipes_and_fds(
      NULL, (const char *const *)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD, helper_setup, NULL,
      -1, -1, -1, source_fds, target_fds, 2, &pid, NULL, NULL, NULL, &local);
  close(ready[1]);
  if (!ok) {
    close(ready[0]);
    return sbx_fail(err, SBX_ERROR_FAILED, "start %s: %s", path, local->message);
  }
  *helper = pid;
  char msg[4096];
  ssize_t n;
  do
    n = read(ready[0], msg, sizeof msg - 1);
  while (n < 0 && errno == EINTR);
  close(ready[0]);
  if (n <= 0 || msg[0] != 'K') {
    msg[n > 0 ? n : 0] = '\0';
    return sbx_fail(err, SBX_ERROR_FAILED, "%s", n > 1 ? msg + 1 : "network helper died");
  }
  sbx_debug("network helper %d ready", (int)pid);
  return sbx_sync_send_ok(syncfd, "net") || sbx_fail_errno(err, "sandbox setup");
}

/* Not waited for: its exit closes tap0, and the kernel's teardown of the
 * device takes ~25 ms (synchronize_net) that the user need not sit through.
 * It is already confined and dies with SIGKILL. */
static void stop_helper(pid_t helper)
{
  if (helper > 0)
    kill(helper, SIGKILL);
}

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
  if (!sbx_cgroup_create(&spec->limits, id, &c.cgroup, err))
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
  sbx_stdio_pipes_open(&c.pipes, spec->tty);
  unsigned long flags = NS_FLAGS | (spec->net.mode == SBX_NET_HOST ? 0 : CLONE_NEWNET);
  pid_t pid = sbx_userns_clone_full(spec->idmap, flags, join_cgroup, &c, &syncfd, err);
  if (pid == 0)
    init_main(&c, syncfd);
  if (pid < 0) {
    sbx_stdio_pipes_close(&c.pipes);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  pid_t helper = 0;
  sbx_autofd master = -1;
  gboolean ok = (spec->net.mode != SBX_NET_SLIRP || start_network(&c, syncfd, &helper, err)) &&
                sbx_sync_recv_fd(syncfd, NULL, &master, "sandbox setup", err);
  close(syncfd);
  if (!ok) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    stop_helper(helper);
    sbx_stdio_pipes_drain(&c.pipes);
    sbx_stdio_pipes_close(&c.pipes);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  sbx_debug("sandbox %d started", (int)pid);
  if (spec->on_started)
    spec->on_started(pid, spec->on_started_data);
  int status = master >= 0 ? sbx_tty_relay(pid, master, spec->interactive, &c.forwarded)
               : sbx_stdio_pipes_active(&c.pipes) ? sbx_stdio_relay(pid, &c.pipes, &c.forwarded)
                                                  : sbx_sandbox_wait(pid, &c.forwarded);
  sbx_stdio_pipes_close(&c.pipes);
  stop_helper(helper);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return status;
}
