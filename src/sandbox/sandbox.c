/* The journey of one `sbx run`, after the image is in the store:
 *
 *   sbx (host)                          init (PID 1 of the new namespaces)
 *   clone(NEWUSER|NEWNS|NEWPID|...) --> waits for "go"
 *   write uid/gid maps, send "go"   --> hostname, lo up, rootfs + pivot_root,
 *                                       resolve user, fork the program
 *   wait for "ok" or the error     <--  "ok" (or the error text)
 *   forward signals, wait               forward signals, reap, exit with status
 *
 * With a subuid range and --pids-limit enforced by RLIMIT_NPROC, an
 * intermediate process in a user namespace of its own stands between sbx
 * and init (ns/user.c sbx_userns_clone_nested): it makes the limit bound
 * the processes of every uid together.
 */
#include "sbx/net.h"
#include "sbx/netspare.h"
#include "sbx/ns.h"
#include "sbx/path.h"
#include "sbx/sandbox.h"
#include "sbx/state.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWCGROUP)

typedef struct {
  const SbxRunSpec *spec;
  const char *hostname;
  sigset_t forwarded;
  char *cgroup;
  char *disk_dir;      /* --rootfs-disk: this run's <store>/run-disk/<id> */
  SbxIdMap idmap;      /* spec's, or identity maps once sbx entered the holder's namespace */
  uid_t owner;         /* > 0: the sandbox namespace's owner there (--pids-limit) */
  int owner_lock;      /* sbx_userns_owner_claim's, held for the run */
  SbxStdioPipes pipes; /* no -t but a terminal on stdout/stderr */
  int relay_sock[2];   /* slirp:tcp_relay=true: [0] the relay's, [1] init's and the program's */
  SbxPrefork *prefork; /* init's: the program's process, made early (process.c) */
  char *netd;          /* the sbx-net binary (slirp) */
  int syncfd;          /* init's, to sbx */
} Ctx;

/* The built-in filter loads in the program's process while init sets up
 * (sbx_process_prefork); that process also makes the network namespace, off
 * the clone, and init joins it and sets the network up just before sysfs
 * (DESIGN.md, "Session 11"). */
static gboolean net_made_early(const SbxRunSpec *spec)
{
  return spec->seccomp_first && (spec->net.mode == SBX_NET_NONE || spec->net.mode == SBX_NET_SLIRP);
}

static SbxTapConfig slirp_tap(const SbxRunSpec *spec)
{
  return (SbxTapConfig){.address = SBX_NET_GUEST,
                        .netmask = SBX_NET_NETMASK,
                        .gateway = SBX_NET_GATEWAY,
                        .mtu = spec->net.mtu};
}

static gboolean setup_network(Ctx *c, int syncfd, gboolean lo_up, int tap_made, GError **err);

static gboolean join_early_net(gpointer data, GError **err)
{
  Ctx *c = data;
  SbxPrefork *pf = c->prefork;
  if (!sbx_process_prefork_join_net(pf, err))
    return FALSE;
  int tap = pf->tap_fd;
  pf->tap_fd = -1;
  return setup_network(c, c->syncfd, pf->lo_up, tap, err);
}

guint64 sbx_rootfs_size_default(void)
{
  struct sysinfo si;
  guint64 ram = sysinfo(&si) == 0 ? (guint64)si.totalram * si.mem_unit : 0;
  guint64 cap = 2ull << 30; /* a 3 GB write by an untrusted job stops here */
  if (ram == 0)
    return cap;
  return MIN(ram / 4, cap) & ~((1ull << 20) - 1); /* whole MiB */
}

/* --network NAME: the address the network's switch gave. */
static char *network_etc_hosts(const SbxNetSpec *net, const char *hostname)
{
  g_autofree char *self = sbx_network_address_text(net->lease.address);
  GString *h = g_string_new("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  g_string_append_printf(h, "%s\t%s\n", self, hostname);
  if (net->allow_host_loopback && net->lease.gateway) {
    g_autofree char *gw = sbx_network_address_text(net->lease.gateway);
    g_string_append_printf(h, "%s\thost.containers.internal host.docker.internal\n", gw);
  }
  return g_string_free(h, FALSE);
}

/* In init: tap0 with the network's address and MAC, to sbx. The switch's
 * connection is sbx's to hold, not the sandbox's. */
static gboolean network_setup_tap(const SbxNetSpec *net, int syncfd, GError **err)
{
  if (net->switch_fd >= 0)
    close(net->switch_fd);
  g_autofree char *addr = sbx_network_address_text(net->lease.address);
  g_autofree char *mask = sbx_network_address_text(0xffffffffu << (32 - net->lease.prefix));
  g_autofree char *gw = net->lease.gateway ? sbx_network_address_text(net->lease.gateway) : NULL;
  SbxTapConfig tc = {.address = addr,
                     .netmask = mask,
                     .gateway = gw,
                     .mtu = SBX_SWITCH_MTU,
                     .mac = net->lease.mac};
  sbx_autofd tap = sbx_net_create_tap(&tc, err);
  if (tap < 0)
    return FALSE;
  if (!sbx_sync_send_fd(syncfd, "tap", tap))
    return sbx_fail_errno(err, "network: hand tap0 to sbx");
  return sbx_sync_recv(syncfd, NULL, "sbx", err);
}

/* In sbx: init's tap0 to the switch; once it has it, init goes on. */
static gboolean network_hand_tap(const SbxNetSpec *net, int syncfd, GError **err)
{
  sbx_autofd tap = -1;
  if (!sbx_sync_recv_fd(syncfd, NULL, &tap, "sandbox setup", err))
    return FALSE;
  if (tap < 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "network: no tap0 from the sandbox");
  if (!sbx_network_hand_tap(net->switch_fd, tap, net->log_fd, err))
    return FALSE;
  return sbx_sync_send_ok(syncfd, "net") || sbx_fail_errno(err, "sandbox setup");
}

/* /etc/hosts and /etc/resolv.conf as the network mode makes them true. */
static char *etc_hosts(Ctx *c)
{
  const SbxNetSpec *net = &c->spec->net;
  if (net->mode == SBX_NET_SWITCH)
    return network_etc_hosts(net, c->hostname);
  const char *self = c->spec->net.mode == SBX_NET_SLIRP ? SBX_NET_GUEST : "127.0.1.1";
  GString *h = g_string_new("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  g_string_append_printf(h, "%s\t%s\n", self, c->hostname);
  if (c->spec->net.mode == SBX_NET_SLIRP && c->spec->net.allow_host_loopback)
    g_string_append(h, SBX_NET_GATEWAY "\thost.containers.internal host.docker.internal\n");
  return g_string_free(h, FALSE);
}

static char *etc_resolv_conf(Ctx *c)
{
  if (c->spec->net.mode == SBX_NET_SWITCH) {
    g_autofree char *dns = sbx_network_address_text(c->spec->net.lease.dns);
    return g_strdup_printf("# sbx: the network's resolver: its sandboxes' names, and the "
                           "host's resolvers for the rest\nnameserver %s\n",
                           dns);
  }
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

static gboolean setup_rootfs(Ctx *c, int *run_fd, GError **err)
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
      .hidden = c->spec->hidden,
      .size = c->spec->rootfs_size,
      .disk_dir = c->disk_dir,
      .run_fd = run_fd,
      .before_sys = net_made_early(c->spec) ? join_early_net : NULL,
      .before_sys_data = c,
  };
  if (sbx_mount_rootfs(&rs, err))
    return TRUE;
  /* The writable layer is the only file system setup writes to that can be
   * full ("/etc/hosts: write: No space left on device" alone does not say
   * that the bound is the user's own). */
  int e = sbx_error_errno(err ? *err : NULL);
  if (!c->disk_dir && (e == ENOSPC || e == EDQUOT))
    g_prefix_error(err,
                   "--rootfs-size %" G_GUINT64_FORMAT "k is too small: the writable layer is full "
                   "before the program starts: ",
                   c->spec->rootfs_size / 1024);
  return FALSE;
}

/* --report on a tmpfs layer: init hands sbx the tmpfs to sample (statfs).
 * On disk the layer shares a file system with everything else: not measured. */
static gboolean measure_tmpfs(const SbxRunSpec *spec)
{
  return spec->measure && !spec->disk_dir;
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

/* none: lo only. slirp: also tap0, whose fd goes to sbx; sbx starts the
 * network helper on it while we go on mounting (wait_network). LO_UP and
 * TAP_MADE (else -1): what the program's process did already (taken). */
static gboolean setup_network(Ctx *c, int syncfd, gboolean lo_up, int tap_made, GError **err)
{
  sbx_autofd made = tap_made;
  if (c->spec->net.mode == SBX_NET_HOST)
    return TRUE;
  if (lo_up)
    sbx_debug("network: lo up");
  else if (!sbx_net_setup_loopback(err))
    return FALSE;
  if (c->spec->net.mode == SBX_NET_SWITCH)
    return network_setup_tap(&c->spec->net, syncfd, err);
  if (c->spec->net.mode != SBX_NET_SLIRP)
    return TRUE;
  SbxTapConfig tc = slirp_tap(c->spec);
  sbx_autofd tap = made >= 0 ? sbx_steal_fd(&made) : sbx_net_make_tap(&tc, err);
  if (tap < 0)
    return FALSE;
  sbx_net_tap_debug(&tc);
  if (!sbx_sync_send_fd(syncfd, "tap", tap))
    return sbx_fail_errno(err, "network: hand tap0 to sbx");
  return c->relay_sock[1] < 0 || sbx_relay_send_listener(c->relay_sock[1], err);
}

/* sbx answers once the network helper holds tap0 and its forwarded ports
 * are bound: before the program starts, not before the mounts (the helper's
 * start-up, ~4 ms, overlaps them). */
static gboolean wait_network(Ctx *c, int syncfd, GError **err)
{
  return c->spec->net.mode != SBX_NET_SLIRP || sbx_sync_recv(syncfd, NULL, "sbx", err);
}

static G_GNUC_NORETURN void init_main(Ctx *c, int syncfd)
{
  const SbxRunSpec *spec = c->spec;
  g_autoptr(GError) err = NULL;
  /* Non-dumpable: nothing inside may ptrace init or open /proc/1/exe (the
   * sbx binary) for writing (CVE-2019-5736). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  sbx_proctitle_set("sbx-init");
  if (c->relay_sock[0] >= 0)
    close(c->relay_sock[0]);
  sbx_stdio_pipes_child(&c->pipes, spec->tty);
  /* --pids-limit without a pids cgroup. Since Linux 5.14 RLIMIT_NPROC counts
   * the processes of a uid in this user namespace only (ucounts), and fork
   * ignores it only for the host's root or CAP_SYS_RESOURCE/CAP_SYS_ADMIN in
   * the initial user namespace (kernel/fork.c copy_process): root in here
   * holds neither, and cannot raise the hard limit (do_prlimit checks
   * capable(), the initial namespace too). Set before init forks, and before
   * the program's process is made below: init and everything after it
   * count. With one id inside this is the total; with a range, root could
   * take other uids, each with a count of its own, and the total is bounded
   * by the intermediate namespace (sbx_userns_clone_nested). */
  struct rlimit nproc = {.rlim_cur = (rlim_t)spec->nproc, .rlim_max = (rlim_t)spec->nproc}, had;
  /* Never above the limit sbx itself runs under (it could not be raised). */
  if (spec->nproc > 0 && getrlimit(RLIMIT_NPROC, &had) == 0 && had.rlim_max < nproc.rlim_max)
    nproc.rlim_cur = nproc.rlim_max = had.rlim_max;
  if (spec->nproc > 0 && setrlimit(RLIMIT_NPROC, &nproc) < 0) {
    sbx_fail_errno(&err, "--pids-limit: RLIMIT_NPROC %" G_GINT64_FORMAT, spec->nproc);
    sbx_sync_send_error(syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  /* The built-in filter loads on another CPU meanwhile (process.c). */
  guint8 prefork_stack[128 * 1024];
  SbxPrefork prefork = {0};
  SbxTapConfig tap = slirp_tap(spec);
  if (spec->seccomp_first && !sbx_process_prefork(&prefork, spec->seccomp, net_made_early(spec),
                                                  spec->net.mode == SBX_NET_SLIRP ? &tap : NULL,
                                                  prefork_stack, sizeof prefork_stack)) {
    sbx_fail_errno(&err, "fork");
    sbx_sync_send_error(syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  c->prefork = &prefork;
  SbxCreds creds = {0};
  g_auto(GStrv) argv = NULL, envp = NULL;
  g_autofree char *workdir = NULL;
  const char *user = spec->user ? spec->user : spec->image->config->user;
  sbx_autofd run_fd = -1;
  c->syncfd = syncfd;
  sbx_userns_bound_inotify();
  gboolean ok = sbx_uts_setup(c->hostname, &err) &&
                (net_made_early(spec) || setup_network(c, syncfd, FALSE, -1, &err)) &&
                setup_rootfs(c, measure_tmpfs(spec) ? &run_fd : NULL, &err) &&
                sbx_process_resolve_user(user, &creds, &err) &&
                (workdir = resolve_workdir(spec, &err)) != NULL &&
                (argv = sbx_process_argv(spec->image->config, spec->entrypoint,
                                         spec->entrypoint_set, spec->argv, &err)) != NULL &&
                wait_network(c, syncfd, &err);
  if (ok &&
      (!sbx_idmap_has_uid(spec->idmap, creds.uid) || !sbx_idmap_has_gid(spec->idmap, creds.gid)))
    ok =
        sbx_fail(&err, SBX_ERROR_FAILED, "user %s (%u:%u) is not mapped: %s", user ? user : "root",
                 (unsigned)creds.uid, (unsigned)creds.gid,
                 spec->idmap->mode == SBX_USERNS_SINGLE
                     ? "single-id mode maps only root; grant a range in /etc/subuid and /etc/subgid"
                     : "it lies outside the subuid/subgid range");
  if (!ok) {
    sbx_sync_send_error(syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  /* --report: the writable layer's tmpfs, for sbx to measure. */
  if (run_fd >= 0 && !sbx_sync_send_fd(syncfd, "usage", run_fd))
    _exit(SBX_EXIT_FAILED);
  envp = sbx_process_env(spec->image->config, spec->env, c->hostname, creds.home);
  if (spec->tty && !g_environ_getenv(envp, "TERM"))
    envp = g_environ_setenv(envp, "TERM", "xterm", TRUE);
  g_autofree char *slave = NULL;
  sbx_autofd master = spec->tty ? sbx_tty_open_master(&slave, &err) : -1;
  if (spec->tty && master < 0) {
    sbx_sync_send_error(syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  static char fail[4096]; /* the program's process's failure, if any (told below) */
  SbxExecPlan plan = {
      .argv = argv,
      .envp = envp,
      .creds = &creds,
      .workdir = workdir,
      .set_groups = spec->idmap->mode == SBX_USERNS_RANGE,
      .caps = spec->caps,
      .seccomp = spec->seccomp,
      .rlimits = spec->rlimits,
      .new_session = TRUE,
      .tty_slave = slave,
      .null_stdin = !spec->interactive,
      .relay = c->relay_sock[1] >= 0,
      .relay_sock = c->relay_sock[1],
      .shared_mm = TRUE,
      .fail_msg = fail,
      .fail_size = sizeof fail,
  };
  /* Back here once the program has exec'd (or failed: its status says). */
  pid_t child =
      prefork.pid > 0 ? sbx_process_prefork_go(&prefork, &plan) : sbx_process_spawn(&plan);
  if (child < 0) {
    sbx_fail_errno(&err, "fork");
    sbx_sync_send_error(syncfd, err);
    _exit(SBX_EXIT_FAILED);
  }
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* as it was (the child reset it too) */
  if (master >= 0)
    sbx_sync_send_fd(syncfd, "started", master);
  else
    sbx_sync_send_ok(syncfd, "started");
  /* Now that sbx reads our stderr (or it is the user's terminal); its
   * status (125-127) follows in the report. */
  if (fail[0])
    (void)!write(STDERR_FILENO, fail, strlen(fail));
  /* The sync socket stays, as fd 3: the exit status goes back through it.
   * So does the owner uid's lock (fd 4), held until init is gone: the
   * sandbox's processes count against that uid as long as they live. */
  int keep, lock = c->owner_lock;
  if ((keep = fcntl(syncfd, F_DUPFD_CLOEXEC, 10)) < 0 || dup3(keep, 3, O_CLOEXEC) < 0 ||
      (lock >= 0 &&
       ((lock = fcntl(lock, F_DUPFD_CLOEXEC, 10)) < 0 || dup3(lock, 4, O_CLOEXEC) < 0)))
    _exit(SBX_EXIT_FAILED);
  sbx_close_fds_from(lock >= 0 ? 5 : 4);
  sbx_pid_init_exit(sbx_pid_init_loop(child, &c->forwarded), 3);
}

void sbx_sandbox_end_init(SbxSandboxEnd *e, pid_t pid, int report)
{
  *e = (SbxSandboxEnd){.pid = pid, .report = report, .status = -1, .told = -1};
}

/* sbx-net gone while the sandbox runs on: its network is cut (the program
 * sees timeouts), which the user should not have to guess. Not reaped
 * here: stop_helper's kill then finds a zombie, harmlessly. */
static void check_net_helper(SbxSandboxEnd *e)
{
  siginfo_t si = {0};
  if (e->net_helper <= 0 ||
      waitid(P_PID, (id_t)e->net_helper, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
    return;
  if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
    sbx_warn("network helper sbx-net (pid %d): killed by signal %d (the sandbox has no network "
             "now)",
             (int)e->net_helper, si.si_status);
  else
    sbx_warn("network helper sbx-net (pid %d): exited with status %d (the sandbox has no network "
             "now)",
             (int)e->net_helper, si.si_status);
  e->net_helper = 0;
}

int sbx_sandbox_end_timeout(const SbxSandboxEnd *e, int timeout_ms)
{
  if (e->release <= 0)
    return timeout_ms;
  gint64 left = (e->release - g_get_monotonic_time() + 999) / 1000;
  int ms = (int)CLAMP(left, 0, G_MAXINT);
  return timeout_ms < 0 ? ms : MIN(ms, timeout_ms);
}

gboolean sbx_sandbox_end_check(SbxSandboxEnd *e, short report_revents, gboolean child)
{
  if (e->status >= 0)
    return TRUE;
  if (e->release > 0 && g_get_monotonic_time() >= e->release) {
    e->release = 0;
    sbx_memory_release_setup();
  }
  if (e->report >= 0 && (report_revents & (POLLIN | POLLHUP | POLLERR))) {
    g_autofree char *msg = NULL;
    g_autoptr(GError) local = NULL;
    gint64 v;
    /* Anything but a report (init killed: EOF) leaves it to the wait. */
    if (sbx_sync_recv(e->report, &msg, "sandbox", &local) && g_str_has_prefix(msg, "exit ") &&
        g_ascii_string_to_signed(msg + 5, 10, 0, 255, &v, NULL)) {
      e->status = (int)v;
      sbx_debug("sandbox ended: %d (init's report)", e->status);
    }
    /* Init exits once this socket closes (ns/pid.c): with the report read,
     * not before we are done, so that its teardown does not run ahead of
     * us on the same CPU. Anything else (init killed: EOF) closes it. */
    if (e->status >= 0)
      e->told = e->report;
    else
      close(e->report);
    e->report = -1;
    if (e->status >= 0)
      return TRUE;
  }
  int ws;
  if (child && !e->reaped) {
    pid_t r = waitpid(e->pid, &ws, WNOHANG);
    if (r == e->pid) {
      e->reaped = TRUE;
      e->status = sbx_exit_status(ws);
    } else if (r < 0 && errno != EINTR) {
      e->reaped = TRUE;
      e->status = SBX_EXIT_FAILED;
    }
  }
  if (child && e->status < 0)
    check_net_helper(e);
  return e->status >= 0;
}

/* Forward the user's signals to init (which forwards them to the program)
 * until the sandbox ends. The signals are blocked since before clone. */
int sbx_sandbox_wait(SbxSandboxEnd *end, const sigset_t *forwarded)
{
  sigset_t mask = *forwarded;
  sigaddset(&mask, SIGCHLD);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  while (!sbx_sandbox_end_check(end, 0, TRUE)) {
    struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN}, {.fd = end->report, .events = POLLIN}};
    /* Without signalfd: look again every 10 ms. */
    if (poll(pf, 2, sbx_sandbox_end_timeout(end, sfd < 0 ? 10 : -1)) < 0 && errno != EINTR)
      break;
    struct signalfd_siginfo si;
    while (sfd >= 0 && read(sfd, &si, sizeof si) == sizeof si)
      if (si.ssi_signo != SIGCHLD)
        kill(end->pid, (int)si.ssi_signo);
    if (sbx_sandbox_end_check(end, pf[1].revents, TRUE))
      break;
  }
  if (sfd >= 0)
    close(sfd);
  return end->status < 0 ? SBX_EXIT_FAILED : end->status;
}

static int run_in_namespaces(Ctx *cp, GError **err);

static GPtrArray *helper_argv(const char *path, const SbxNetSpec *net)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(argv, g_strdup(path));
  g_ptr_array_add(argv, g_strdup_printf("--mtu=%u", net->mtu));
  g_ptr_array_add(argv, g_strdup_printf("--log-level=%s", sbx_log_level_name()));
  if (net->allow_host_loopback)
    g_ptr_array_add(argv, g_strdup("--allow-host-loopback"));
  if (net->refuse_host_addresses)
    g_ptr_array_add(argv, g_strdup("--refuse-host-addresses"));
  if (net->log_fd > STDERR_FILENO)
    g_ptr_array_add(argv, g_strdup("--net-log"));
  for (char **p = net->publish; p && *p; p++)
    g_ptr_array_add(argv, g_strdup_printf("--publish=%s", *p));
  for (char **a = net->allow; a && *a; a++)
    g_ptr_array_add(argv, g_strdup_printf("--net-allow=%s", *a));
  if (net->resolv_conf)
    g_ptr_array_add(argv, g_strdup_printf("--resolv-conf=%s", net->resolv_conf));
  g_ptr_array_add(argv, NULL);
  return argv;
}

/* The options for a spare sbx-net (netspare.h), as lines: what helper_argv
 * gives, the resolver file's contents instead of its name (sbx reads it: the
 * spare's root is empty). NULL when a spare cannot take them: the host's
 * addresses to refuse (listed before confinement), a line break in one, or
 * more than one message holds. */
static char *spare_options(const char *path, const SbxNetSpec *net)
{
  if (net->refuse_host_addresses)
    return NULL;
  g_autoptr(GPtrArray) argv = helper_argv(path, net);
  g_autoptr(GString) out = g_string_new(NULL);
  for (guint i = 1; i + 1 < argv->len; i++) {
    const char *a = g_ptr_array_index(argv, i);
    if (strchr(a, '\n'))
      return NULL;
    if (!g_str_has_prefix(a, "--resolv-conf="))
      g_string_append_printf(out, "%s\n", a);
  }
  g_autofree char *resolv = NULL;
  gsize len = 0;
  if (!g_file_get_contents(net->resolv_conf ? net->resolv_conf : "/etc/resolv.conf", &resolv, &len,
                           NULL))
    len = 0; /* as sbx-net would have it */
  else if (len > 2048)
    return NULL;
  g_autofree char *b64 = g_base64_encode((const guchar *)(resolv ? resolv : ""), len);
  g_string_append_printf(out, "--resolv-conf-data=%s", b64);
  if (out->len > 4000) /* util/sync.c's message, with room */
    return NULL;
  return g_string_free(g_steal_pointer(&out), FALSE);
}

/* A spare sbx-net started by an earlier run, if there is one: connected
 * before the clone (cheap: a rename and a connect), checked and given the
 * run's options after it (claim_spare), while init sets up on another CPU. */
static gboolean take_spare(Ctx *c, SbxNetHelper *helper)
{
  const SbxNetSpec *net = &c->spec->net;
  if (!net->spare)
    return FALSE;
  /* A spare runs at SCHED_OTHER once taken: not for a run under another. */
  g_autofree char *options =
      sched_getscheduler(0) == SCHED_OTHER ? spare_options(c->netd, net) : NULL;
  g_autoptr(GError) local = NULL;
  g_autofree char *dir = options ? sbx_state_base(&local) : NULL;
  if (!dir) {
    sbx_debug("network helper spare: %s", local ? local->message : "not for these options");
    return FALSE;
  }
  helper->sock = sbx_net_spare_connect(dir, &helper->spare, &helper->pidfd, &local);
  if (helper->sock < 0) {
    sbx_debug("%s; starting one", local->message);
    helper->spare = 0;
    helper->pidfd = -1;
    return FALSE;
  }
  helper->unclaimed = TRUE;
  helper->spare_options = g_steal_pointer(&options);
  return TRUE;
}

static gboolean claim_spare(Ctx *c, SbxNetHelper *helper)
{
  const SbxNetSpec *net = &c->spec->net;
  g_autoptr(GError) local = NULL;
  gboolean ok = sbx_net_spare_claim(
      helper->sock, helper->spare, helper->pidfd, c->netd, helper->spare_options,
      net->log_fd > STDERR_FILENO ? net->log_fd : -1, sbx_log_level >= SBX_LOG_DEBUG, &local);
  g_clear_pointer(&helper->spare_options, g_free);
  pid_t pid = helper->spare;
  helper->spare = 0;
  helper->unclaimed = FALSE;
  if (!ok) {
    sbx_debug("%s; starting one", local->message);
    close(helper->sock);
    close(helper->pidfd);
    helper->sock = helper->pidfd = -1;
    return FALSE;
  }
  helper->pid = pid;
  sbx_debug("network helper spare %d taken", (int)pid);
  return TRUE;
}

/* After a run with the slirp network: the next one's sbx-net, started now
 * that this run is over. */
static void start_spare(const Ctx *c)
{
  if (!c->spec->net.spare || c->spec->net.mode != SBX_NET_SLIRP)
    return;
  g_autoptr(GError) local = NULL;
  g_autofree char *path = sbx_helper_path("sbx-net", &local);
  g_autofree char *dir = path ? sbx_state_base(&local) : NULL;
  if (!dir || !sbx_net_spare_start(dir, path, &local))
    sbx_debug("%s", local->message);
}

/* sbx-net starts before the sandbox's namespaces are made: its exec,
 * libslirp and its own confinement (several ms) then run beside the
 * clone and init's set-up instead of after them. It waits for tap0.
 * Started by posix_spawn: a vfork-like clone, where a fork would copy sbx's
 * page tables and make every page either side writes next a copy-on-write
 * fault (~11 us each on this class of VM: a fork here cost the start ~3 ms
 * before the sandbox's clone). What the child needs is a file action or an
 * attribute: its own session (no controlling terminal: a bug in libslirp
 * must not type into the user's shell), no signal blocked or handled (the
 * helper gets none of the signals sbx forwards: sbx stops it), /dev/null as
 * stdin and stdout (and stderr unless debugging), the sync socket and the
 * --net-log file at the fds net.h names, nothing else. sbx-net sets its own
 * parent-death signal; a sbx gone before that is EOF on the sync socket. */
static gboolean spawn_helper(Ctx *c, SbxNetHelper *helper, GError **err)
{
  const SbxNetSpec *net = &c->spec->net;
  const char *path = c->netd;
  int sock[2];
  if (!sbx_sync_pair(sock, err))
    return FALSE;
  g_autoptr(GPtrArray) argv = helper_argv(path, net);
  /* sbx-net parses the guest's frames with the host's network in hand:
   * nothing of the user's environment (tokens, keys) goes with it. */
  g_auto(GStrv) env = sbx_helper_environ(NULL);
  gboolean with_log = net->log_fd > STDERR_FILENO;
  /* Above every target first: a source may sit on another's target. */
  sbx_autofd sync_hi = fcntl(sock[1], F_DUPFD_CLOEXEC, SBX_NETD_FD_LOG + 1);
  sbx_autofd log_hi = with_log ? fcntl(net->log_fd, F_DUPFD_CLOEXEC, SBX_NETD_FD_LOG + 1) : -1;
  close(sock[1]);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  /* Each call's own error number, for the message. */
  int r = sync_hi < 0 || (with_log && log_hi < 0) ? errno : 0;
  if (!r)
    r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF);
  if (!r)
    r = posix_spawnattr_setsigmask(&attr, &none);
  if (!r)
    r = posix_spawnattr_setsigdefault(&attr, &all);
  if (!r)
    r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDWR, 0);
  if (!r)
    r = posix_spawn_file_actions_adddup2(&fa, STDIN_FILENO, STDOUT_FILENO);
  if (!r && sbx_log_level < SBX_LOG_DEBUG)
    r = posix_spawn_file_actions_adddup2(&fa, STDIN_FILENO, STDERR_FILENO);
  if (!r)
    r = posix_spawn_file_actions_addclose(&fa, 3);
  if (!r)
    r = posix_spawn_file_actions_adddup2(&fa, sync_hi, SBX_NETD_FD_SYNC);
  if (!r)
    r = with_log ? posix_spawn_file_actions_adddup2(&fa, log_hi, SBX_NETD_FD_LOG)
                 : posix_spawn_file_actions_addclose(&fa, SBX_NETD_FD_LOG);
  if (!r)
    r = posix_spawn_file_actions_addclosefrom_np(&fa, SBX_NETD_FD_LOG + 1);
  pid_t pid = -1;
  if (!r)
    r = posix_spawn(&pid, path, &fa, &attr, (char *const *)argv->pdata, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (r) {
    close(sock[0]);
    return sbx_fail_errnum(err, r, "start %s", path);
  }
  helper->pid = pid;
  helper->sock = sock[0];
  return TRUE;
}

static gboolean spawn_network(Ctx *c, SbxNetHelper *helper, GError **err)
{
  return take_spare(c, helper) || spawn_helper(c, helper, err);
}

/* Receive tap0 from init and hand it to sbx-net; TRUE once it is ready. */
static gboolean start_network(Ctx *c, int syncfd, SbxNetHelper *helper, GError **err)
{
  /* A spare that is not ours after all: our own, late. */
  if (helper->unclaimed && !claim_spare(c, helper) && !spawn_helper(c, helper, err))
    return FALSE;
  sbx_autofd tap = -1;
  if (!sbx_sync_recv_fd(syncfd, NULL, &tap, "sandbox setup", err))
    return FALSE;
  if (tap < 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "network: no tap0 from the sandbox");
  /* A helper that failed has said why: that is read below either way. */
  if (!sbx_sync_send_fd(helper->sock, "tap", tap))
    sbx_debug("network helper: hand it tap0: %s", sbx_strerror(errno));
  if (!sbx_sync_recv(helper->sock, NULL, "network helper", err))
    return FALSE;
  sbx_debug("network helper %d ready", (int)helper->pid);
  if (sbx_sync_send_ok(syncfd, "net"))
    return TRUE;
  /* init went on mounting meanwhile: its error is what to show. */
  int e = errno;
  return sbx_sync_recv(syncfd, NULL, "sandbox setup", err) &&
         sbx_fail_errnum(err, e, "sandbox setup");
}

gboolean sbx_net_helper_stats(const SbxNetHelper *h, SbxNetStats *out, GError **err)
{
  memset(out, 0, sizeof *out);
  if (h->pid <= 0 || h->sock < 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper: not running");
  /* A helper stopped by SIGTERM has sent them already, and may be gone:
   * read what is queued whether the request went out or not. */
  if (!sbx_sync_send_ok(h->sock, "stats"))
    sbx_debug("network helper: ask for its counters: %s", sbx_strerror(errno));
  struct pollfd p = {.fd = h->sock, .events = POLLIN};
  int r;
  do
    r = poll(&p, 1, 2000);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper: no counters after 2 s");
  g_autofree char *text = NULL;
  if (!sbx_sync_recv(h->sock, &text, "network helper", err))
    return FALSE;
  if (!sbx_net_stats_parse(text, out))
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper: bad counters '%s'", text);
  return TRUE;
}

/* Not waited for: its exit closes tap0, and the kernel's teardown of the
 * device takes ~25 ms (synchronize_net) that the user need not sit through.
 * It is already confined and dies with SIGKILL. With --net-log or a run
 * report, the counters are asked for first: that round trip also lets it
 * finish with every frame it had read. */
static void stop_helper(const Ctx *c, SbxNetHelper *helper)
{
  SbxRunResult *res = c->spec->measure ? c->spec->result : NULL; /* --report */
  if (helper->pid > 0 && (res || c->spec->net.log_fd > STDERR_FILENO)) {
    SbxNetStats scratch;
    g_autoptr(GError) local = NULL;
    SbxNetStats *st = res ? &res->net : &scratch;
    if (!sbx_net_helper_stats(helper, st, &local)) {
      sbx_debug("%s", local->message);
    } else {
      if (res)
        res->have_net = TRUE;
      sbx_debug("network: sent %" G_GUINT64_FORMAT " frames (%" G_GUINT64_FORMAT
                " bytes), received %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT
                " bytes), refused %" G_GUINT64_FORMAT,
                st->tx_packets, st->tx_bytes, st->rx_packets, st->rx_bytes, st->refused);
    }
  }
  /* A spare not claimed yet is not known to be ours: closed, not killed
   * (it leaves on EOF). */
  if (helper->pidfd >= 0 && !helper->unclaimed)
    syscall(SYS_pidfd_send_signal, helper->pidfd, SIGKILL, NULL, 0);
  else if (helper->pid > 0)
    kill(helper->pid, SIGKILL);
  if (helper->sock >= 0)
    close(helper->sock);
  if (helper->pidfd >= 0)
    close(helper->pidfd);
  g_clear_pointer(&helper->spare_options, g_free);
  helper->unclaimed = FALSE;
  helper->spare = 0;
  helper->pid = 0;
  helper->sock = -1;
  helper->pidfd = -1;
}

/* slirp:tcp_relay=true: forked once the sandbox exists (it must be in the
 * user namespace above the sandbox's, as its owner). */
static gboolean start_relay(Ctx *c, SbxNetHelper *relay, GError **err)
{
  const SbxNetSpec *net = &c->spec->net;
  SbxRelaySpec rs = {.allow = net->allow,
                     .host_loopback = net->allow_host_loopback,
                     .refuse_host_addresses = net->refuse_host_addresses,
                     .log_fd = net->log_fd > STDERR_FILENO ? net->log_fd : -1,
                     .owner = c->owner};
  relay->pid = sbx_relay_start(&rs, c->relay_sock[0], &relay->sock, err);
  close(c->relay_sock[0]);
  close(c->relay_sock[1]);
  c->relay_sock[0] = c->relay_sock[1] = -1;
  return relay->pid > 0;
}

/* Its counters into the run report (sbx-net's are there already). */
static void stop_relay(const Ctx *c, SbxNetHelper *relay, gboolean started)
{
  SbxRunResult *res = c->spec->measure ? c->spec->result : NULL;
  if (relay->pid > 0 && (res || c->spec->net.log_fd > STDERR_FILENO)) {
    SbxNetStats st;
    g_autoptr(GError) local = NULL;
    if (!sbx_net_helper_stats(relay, &st, &local)) {
      sbx_debug("%s", local->message);
    } else {
      sbx_debug("relay: %" G_GUINT64_FORMAT " connections, %" G_GUINT64_FORMAT
                " bytes out, %" G_GUINT64_FORMAT " in",
                st.relayed, st.relayed_tx_bytes, st.relayed_rx_bytes);
      if (res) {
        res->net.relayed = st.relayed;
        res->net.relayed_tx_bytes = st.relayed_tx_bytes;
        res->net.relayed_rx_bytes = st.relayed_rx_bytes;
      }
    }
  }
  int ws;
  if (started && relay->pid > 0 && waitpid(relay->pid, &ws, WNOHANG) == relay->pid) {
    /* Its death broke connect(2) in the sandbox (ENOSYS): say so. */
    sbx_warn("tcp_relay: the relay ended during the run (%s %d): connect(2) failed after that",
             WIFSIGNALED(ws) ? "signal" : "status",
             WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
    relay->pid = 0;
  }
  if (relay->pid > 0) {
    kill(relay->pid, SIGKILL);
    while (waitpid(relay->pid, NULL, 0) < 0 && errno == EINTR)
      ;
  }
  if (relay->sock >= 0)
    close(relay->sock);
  relay->pid = 0;
  relay->sock = -1;
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

/* --rootfs-disk: sweep what killed runs left, then claim ours (locked). */
static int claim_disk_layer(Ctx *c, const char *id, GError **err)
{
  const char *base = c->spec->disk_dir;
  g_autoptr(GError) local = NULL;
  if (!sbx_disk_layer_remove(c->spec->idmap, base, NULL, &local))
    sbx_warn("%s", local->message);
  int fd = sbx_disk_layer_claim(base, id, c->spec->idmap, err);
  if (fd >= 0) {
    c->disk_dir = g_build_filename(base, id, NULL);
    sbx_debug("--rootfs-disk: writable layer in %s (not bounded by --rootfs-size)", c->disk_dir);
  }
  return fd;
}

int sbx_sandbox_run(const SbxRunSpec *spec, GError **err)
{
  g_autofree char *id = short_id();
  Ctx c = {.spec = spec,
           .hostname = spec->hostname ? spec->hostname : id,
           .idmap = *spec->idmap,
           .owner_lock = -1,
           .relay_sock = {-1, -1}};
  if (!sbx_cgroup_create(&spec->limits, id, &c.cgroup, err))
    return -1;
  sbx_autofd disk = spec->disk_dir ? claim_disk_layer(&c, id, err) : -1;
  int status = spec->disk_dir && disk < 0 ? -1 : run_in_namespaces(&c, err);
  if (c.disk_dir) {
    g_autoptr(GError) local = NULL;
    if (!sbx_disk_layer_remove(&c.idmap, spec->disk_dir, id, &local))
      sbx_warn("%s", local->message);
  }
  if (c.owner_lock >= 0)
    close(c.owner_lock);
  sbx_cgroup_remove(c.cgroup);
  g_free(c.cgroup);
  g_free(c.disk_dir);
  return status;
}

static gint64 tv_us(const struct timeval *tv)
{
  return (gint64)tv->tv_sec * G_USEC_PER_SEC + tv->tv_usec;
}

/* Range mode: the user's namespace holder (ns/holder.c), which spares
 * newuidmap/newgidmap; -1 when there is none to be had (then those, as
 * always: the holder never makes a start fail). */
static int userns_holder(Ctx *cp)
{
  const SbxRunSpec *spec = cp->spec;
  if (spec->idmap->mode != SBX_USERNS_RANGE)
    return -1;
  g_autoptr(GError) local = NULL;
  g_autofree char *dir = sbx_state_base(&local);
  pid_t holder = 0;
  int ns = dir ? sbx_userns_holder_get(spec->idmap, dir, &holder, &local) : -1;
  if (ns < 0) {
    sbx_debug("user namespace holder: %s; newuidmap/newgidmap instead", local->message);
    return -1;
  }
  /* Best: sbx enters it and writes the sandbox's maps itself, with no
   * process between (no fork of sbx to join it, no hand-over). */
  if (sbx_userns_enter_held(ns, holder, spec->idmap, &local)) {
    close(ns);
    cp->idmap.nested = TRUE;
    sbx_debug("user namespace holder %d: sbx entered its namespace", (int)holder);
    /* --pids-limit: an owner uid for the sandbox's namespace instead of an
     * intermediate namespace (and process) to bound all its uids together. */
    if (spec->nproc > 0) {
      cp->owner_lock = sbx_userns_owner_claim(spec->idmap, dir, &cp->owner, &local);
      if (cp->owner_lock < 0)
        sbx_debug("%s; an intermediate namespace bounds the processes", local->message);
      else
        sbx_debug("pids limit: the sandbox's namespace is owned by uid %u of the holder's, which "
                  "counts all its processes",
                  (unsigned)cp->owner);
    }
    return -1;
  }
  sbx_debug("user namespace holder %d: %s; through a joining process", (int)holder, local->message);
  return ns;
}

static int run_in_namespaces(Ctx *cp, GError **err)
{
  int held = userns_holder(cp);
  Ctx c = *cp;
  const SbxIdMap *map = &c.idmap;
  const SbxRunSpec *spec = c.spec;
  sbx_pid_forwarded_signals(&c.forwarded);
  sigset_t block = c.forwarded, old;
  sigaddset(&block, SIGCHLD);
  sigprocmask(SIG_BLOCK, &block, &old);
  int syncfd;
  sbx_stdio_pipes_open(&c.pipes, spec->tty, spec->interactive);
  c.pipes.limit = spec->output_limit;
  unsigned long flags =
      NS_FLAGS | (spec->net.mode == SBX_NET_HOST || net_made_early(spec) ? 0 : CLONE_NEWNET);
  gint64 t0 = g_get_monotonic_time();
  /* pid: our child, waited for and signalled; init: the sandbox's PID 1.
   * They differ when an intermediate namespace bounds the processes of
   * every uid of a range together (--pids-limit by RLIMIT_NPROC). */
  pid_t pid, init = 0;
  SbxNetHelper helper = {.pid = 0, .sock = -1, .pidfd = -1},
               relay = {.pid = 0, .sock = -1, .pidfd = -1};
  g_autofree char *netd = NULL;
  if (spec->net.mode == SBX_NET_SLIRP &&
      (!(c.netd = netd = sbx_helper_path("sbx-net", err)) || !spawn_network(&c, &helper, err) ||
       (spec->net.tcp_relay && !sbx_sync_pair(c.relay_sock, err)))) {
    stop_helper(&c, &helper);
    sbx_stdio_pipes_close(&c.pipes);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  for (;;) {
    g_autoptr(GError) local = NULL;
    GError **e = held >= 0 ? &local : err;
    if (c.owner > 0)
      /* The relay runs as the owner uid too: one more process, not the sandbox's. */
      pid = init = sbx_userns_clone_owned(map, c.owner,
                                          (guint64)spec->nproc + (c.relay_sock[0] >= 0 ? 1 : 0),
                                          flags, join_cgroup, &c, &syncfd, e);
    else if (spec->nproc > 0 && map->mode == SBX_USERNS_RANGE)
      pid = sbx_userns_clone_nested(map, held, flags, (guint64)spec->nproc, join_cgroup, &c,
                                    &syncfd, &init, e);
    else if (held >= 0)
      pid = init = sbx_userns_clone_held(held, map, flags, join_cgroup, &c, &syncfd, e);
    else
      pid = init = sbx_userns_clone_full(map, flags, c.cgroup ? join_cgroup : NULL, &c, &syncfd, e);
    if (held < 0)
      break;
    /* The sandbox gets no handle on the holder's namespace. */
    close(held);
    held = -1;
    if (pid >= 0)
      break;
    sbx_debug("user namespace holder: %s; newuidmap/newgidmap instead", local->message);
  }
  if (pid == 0)
    init_main(&c, syncfd);
  if (pid < 0) {
    stop_helper(&c, &helper);
    if (c.relay_sock[0] >= 0) {
      close(c.relay_sock[0]);
      close(c.relay_sock[1]);
    }
    sbx_stdio_pipes_close(&c.pipes);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  sbx_autofd master = -1, usage = -1;
  gboolean ok =
      (c.relay_sock[0] < 0 || start_relay(&c, &relay, err)) &&
      (spec->net.mode != SBX_NET_SLIRP || start_network(&c, syncfd, &helper, err)) &&
      (relay.pid <= 0 || sbx_relay_ready(relay.sock, err)) &&
      (spec->net.mode != SBX_NET_SWITCH || network_hand_tap(&spec->net, syncfd, err)) &&
      (!measure_tmpfs(spec) || sbx_sync_recv_fd(syncfd, NULL, &usage, "sandbox setup", err)) &&
      sbx_sync_recv_fd(syncfd, NULL, &master, "sandbox setup", err) &&
      (!spec->on_started || spec->on_started(init, spec->on_started_data, err));
  if (!ok) {
    close(syncfd);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    stop_helper(&c, &helper);
    stop_relay(&c, &relay, FALSE);
    sbx_stdio_pipes_drain(&c.pipes);
    sbx_stdio_pipes_close(&c.pipes);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
  }
  sbx_debug("sandbox %d started", (int)init);
  SbxRunResult *res = spec->result;
  struct rusage before = {0}, after = {0};
  if (res) {
    res->started = TRUE;
    getrusage(RUSAGE_CHILDREN, &before);
  }
  SbxWatchdog *dog = sbx_watchdog_start(init, spec->timeout_ms, usage);
  SbxSandboxEnd end;
  sbx_sandbox_end_init(&end, pid, syncfd);
  /* A spare sbx-net is another process's child (no SIGCHLD for us). */
  end.net_helper = helper.pidfd < 0 ? helper.pid : 0;
  /* From here on this process only relays and waits. */
  end.release = g_get_monotonic_time() + SBX_MEMORY_RELEASE_DELAY_MS * 1000;
  int status = master >= 0 ? sbx_tty_relay(&end, master, spec->interactive, &c.forwarded)
               : sbx_stdio_pipes_active(&c.pipes) ? sbx_stdio_relay(&end, &c.pipes, &c.forwarded)
                                                  : sbx_sandbox_wait(&end, &c.forwarded);
  if (end.report >= 0)
    close(end.report);
  /* Init reported and is on its way out; its namespaces' teardown is the
   * kernel's business (it is reaped by whoever inherits it when sbx exits),
   * unless something after this needs it gone: the run report's CPU times
   * (counted when reaped), the cgroup's removal, the disk layer's. */
  if (!end.reaped && (spec->measure || c.cgroup || c.disk_dir)) {
    if (end.told >= 0)
      close(end.told); /* let init go */
    end.told = -1;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
  }
  /* end.told stays open on purpose: sbx's exit closes it, and init's with
   * it (sbx run returns from here to its exit). */
  sbx_watchdog_stop(dog, res);
  if (res) {
    /* Our child (reaped above) with everything it reaped: the whole sandbox. */
    getrusage(RUSAGE_CHILDREN, &after);
    res->user_us = tv_us(&after.ru_utime) - tv_us(&before.ru_utime);
    res->sys_us = tv_us(&after.ru_stime) - tv_us(&before.ru_stime);
    res->wall_us = g_get_monotonic_time() - t0;
  }
  sbx_stdio_pipes_close(&c.pipes);
  stop_helper(&c, &helper);
  stop_relay(&c, &relay, TRUE);
  start_spare(&c);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return status;
}
