/* sbx-net: the slirp network helper. sbx starts it with the sandbox's tap0
 * and a sync socket (util/sync.c) at the fds net.h names; it confines
 * itself, binds the forwarded ports, says "ok" (or why not) on the socket,
 * and runs until the sandbox's network goes away, answering "stats". */
#include "sbx/netd.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

static int mtu = SBX_NET_MTU_DEFAULT;
static gboolean host_loopback, refuse_host_addresses, net_log;
static char **forwards, **allows;
static char *resolv_path, *log_level;
static char *spare;          /* --spare=DEV:INO: wait to be taken (net.h) */
static char *resolv_data;    /* a taken spare's resolv.conf, base64 (sbx read it) */
static gboolean with_stderr; /* a taken spare: sbx's stderr comes with the options */
static int sync_fd = SBX_NETD_FD_SYNC, log_fd = SBX_NETD_FD_LOG;

static GOptionEntry entries[] = {
    {"mtu", 0, 0, G_OPTION_ARG_INT, &mtu, "MTU", "N"},
    {"allow-host-loopback", 0, 0, G_OPTION_ARG_NONE, &host_loopback, "10.0.2.2 reaches 127.0.0.1",
     NULL},
    {"refuse-host-addresses", 0, 0, G_OPTION_ARG_NONE, &refuse_host_addresses,
     "Refuse the host's own addresses", NULL},
    {"publish", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &forwards, "Port forward", "SPEC"},
    {"net-allow", 0, 0, G_OPTION_ARG_STRING_ARRAY, &allows, "Egress rule", "RULE"},
    {"net-log", 0, 0, G_OPTION_ARG_NONE, &net_log, "Log flows as JSON lines to fd 5", NULL},
    {"resolv-conf", 0, 0, G_OPTION_ARG_FILENAME, &resolv_path,
     "Resolvers (default /etc/resolv.conf)", "FILE"},
    {"log-level", 0, 0, G_OPTION_ARG_STRING, &log_level, "Log level", "LEVEL"},
    {"spare", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &spare,
     "Wait on fd 4 to be taken (its socket's DEV:INO:NAME)", "ID"},
    {"resolv-conf-data", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &resolv_data,
     "Resolvers, base64", "DATA"},
    {"stderr", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &with_stderr, "sbx's stderr comes along",
     NULL},
    {NULL}};

/* What the options ask for, before the stack starts. */
static gboolean configure(SbxNetd *n, GError **err)
{
  if (mtu < SBX_NET_MTU_MIN || mtu > SBX_NET_MTU_MAX)
    return sbx_fail(err, SBX_ERROR_USAGE, "network helper: needs an MTU of %d..%d", SBX_NET_MTU_MIN,
                    SBX_NET_MTU_MAX);
  n->tapfd = -1; /* from sbx, once set up (main) */
  n->mtu = (guint)mtu;
  n->allow_host_loopback = host_loopback;
  n->forwards = g_array_new(FALSE, FALSE, sizeof(SbxPortForward));
  for (char **f = forwards; f && *f; f++) {
    SbxPortForward pf;
    if (!sbx_port_forward_parse(*f, &pf, err))
      return FALSE;
    g_array_append_val(n->forwards, pf);
  }
  if (!sbx_net_policy_init(&n->policy, allows, host_loopback, refuse_host_addresses, err))
    return FALSE;
  sbx_netlog_init(&n->log, net_log ? log_fd : -1);
  return TRUE;
}

static gboolean setup(SbxNetd *n, GError **err)
{
  if (!configure(n, err))
    return FALSE;
  /* libslirp reads /etc/resolv.conf for 10.0.2.3's upstream: read it now,
   * before the root goes away. */
  g_autofree char *resolv = NULL;
  if (!g_file_get_contents(resolv_path ? resolv_path : "/etc/resolv.conf", &resolv, NULL, NULL))
    resolv = g_strdup("");
  if (!sbx_netd_confine(resolv, net_log ? SBX_NETD_FD_LOG : SBX_NETD_FD_SYNC, err))
    return FALSE;
  n->loop = g_main_loop_new(NULL, TRUE); /* sbx_netd_run runs it */
  return sbx_netd_start(n, err);
}

/* A spare's own namespaces, kept at fds of its own through confinement. */
enum { FD_OUR_PIDNS = SBX_NETD_FD_SPARE_LOCK + 1, FD_OUR_NETNS, FD_OUR_USERNS };

static gboolean keep_ns(const char *path, int at)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int hi = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 20);
  if (fd >= 0)
    close(fd);
  gboolean ok = hi >= 0 && dup2(hi, at) == at;
  if (hi >= 0)
    close(hi);
  return ok;
}

static gboolean same_file(int a, int b)
{
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/* A spare: confined now, with nothing to serve; then taken by one start,
 * whose options come as one message of lines (with --net-log's file). */
static gboolean spare_wait(SbxNetd *n, GError **err)
{
  guint64 dev, ino;
  g_auto(GStrv) id = g_strsplit(spare, ":", 3); /* DEV:INO:NAME, NAME ours in the directory */
  int listening = 0;
  socklen_t len = sizeof listening;
  struct stat dir, st;
  if (g_strv_length(id) != 3 ||
      !g_ascii_string_to_unsigned(id[0], 10, 0, G_MAXUINT64, &dev, NULL) ||
      !g_ascii_string_to_unsigned(id[1], 10, 0, G_MAXUINT64, &ino, NULL) ||
      !g_str_has_prefix(id[2], ".net-spare.") || strchr(id[2], '/') ||
      getsockopt(SBX_NETD_FD_SPARE_LISTEN, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
      !listening || fstat(SBX_NETD_FD_SPARE_DIR, &dir) < 0 || !S_ISDIR(dir.st_mode) ||
      fcntl(SBX_NETD_FD_SPARE_LOCK, F_GETFD) < 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "network helper: --spare is for sbx to start");
  /* Named for what it is while it waits (ps, pgrep): no run's helper yet. */
  prctl(PR_SET_NAME, "sbx-spare-net");
  /* listen(2) again: a connection's SO_PEERCRED is who listened last, and
   * the start that takes us checks it is this process. Only then in place. */
  if (listen(SBX_NETD_FD_SPARE_LISTEN, 16) < 0 ||
      fstatat(SBX_NETD_FD_SPARE_DIR, id[2], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
      st.st_dev != (dev_t)dev || st.st_ino != (ino_t)ino ||
      renameat(SBX_NETD_FD_SPARE_DIR, id[2], SBX_NETD_FD_SPARE_DIR, SBX_NET_SPARE_SOCK) < 0)
    return sbx_fail_errno(err, "network helper: put the spare in place");
  /* Our PID, network and (before our own) user namespaces, to know the
   * start that takes us by: one outside every sandbox sends its own. A
   * sandbox's process has a user namespace of its own (and no way to an
   * ancestor's), and a PID namespace of its own unless an OCI config shares
   * the host's. */
  if (!keep_ns("/proc/self/ns/pid", FD_OUR_PIDNS) || !keep_ns("/proc/self/ns/net", FD_OUR_NETNS) ||
      !keep_ns("/proc/self/ns/user", FD_OUR_USERNS))
    return sbx_fail_errno(err, "network helper: its namespaces");
  if (!sbx_netd_confine("", FD_OUR_USERNS, err))
    return FALSE;
  n->loop = g_main_loop_new(NULL, TRUE);
  /* Wait: gone once idle, or once our socket is not in its place (taken,
   * replaced, its directory removed). Nothing but sbx's options is read. */
  gint64 until = g_get_monotonic_time() + SBX_NET_SPARE_IDLE_MS * G_GINT64_CONSTANT(1000);
  int c = -1;
  while (c < 0) {
    struct pollfd p = {.fd = SBX_NETD_FD_SPARE_LISTEN, .events = POLLIN};
    int r = poll(&p, 1, SBX_NET_SPARE_CHECK_MS);
    if (r < 0 && errno != EINTR)
      _exit(0);
    if (r <= 0 &&
        (fstatat(SBX_NETD_FD_SPARE_DIR, SBX_NET_SPARE_SOCK, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
         st.st_dev != (dev_t)dev || st.st_ino != (ino_t)ino || g_get_monotonic_time() > until))
      _exit(0);
    if (r <= 0)
      continue;
    c = accept4(SBX_NETD_FD_SPARE_LISTEN, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0 && errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
      _exit(0); /* out of fds or memory: not a loop around poll */
    /* Our uid (0 here is the owner's: our namespace maps only that). */
    struct ucred cr;
    len = sizeof cr;
    if (c >= 0 && (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.uid != geteuid())) {
      close(c);
      c = -1;
    }
  }
  /* Taken: no way back to the state directory, and the next spare may
   * start. What comes now is read from a peer of our uid that may yet be a
   * sandbox's process (one given the state directory as a volume): nothing
   * is believed, or answered, before it shows our namespaces. */
  close(SBX_NETD_FD_SPARE_LISTEN);
  close(SBX_NETD_FD_SPARE_DIR);
  close(SBX_NETD_FD_SPARE_LOCK);
  sync_fd = c;
  struct pollfd p = {.fd = c, .events = POLLIN};
  int fds[SBX_SYNC_MAX_FDS];
  unsigned nfds = 0;
  g_autofree char *text = NULL;
  if (poll(&p, 1, SBX_NET_SPARE_CHECK_MS) <= 0 ||
      !sbx_sync_recv_fds(c, &text, fds, G_N_ELEMENTS(fds), &nfds, "sbx", NULL) || nfds != 3 ||
      !same_file(fds[0], FD_OUR_PIDNS) || !same_file(fds[1], FD_OUR_NETNS) ||
      !same_file(fds[2], FD_OUR_USERNS))
    _exit(0);
  for (unsigned i = 0; i < 3; i++)
    close(fds[i]);
  close(FD_OUR_PIDNS);
  close(FD_OUR_NETNS);
  close(FD_OUR_USERNS);
  /* The run's own scheduling, not a spare's (SCHED_BATCH while it started). */
  struct sched_param prio = {0};
  sched_setscheduler(0, SCHED_OTHER, &prio);
  prctl(PR_SET_NAME, "sbx-net");
  sbx_sync_send_ok(c, "taken");
  g_autofree char *line = g_strconcat("sbx-net\n", text ? text : "", NULL);
  g_auto(GStrv) args = g_strsplit(line, "\n", -1);
  g_autoptr(GOptionContext) ctx = g_option_context_new("");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_clear_pointer(&spare, g_free);
  gboolean parsed = g_option_context_parse_strv(ctx, &args, err);
  /* Then --net-log's file and stderr, in that order, as the options say. */
  g_autofree char *what = NULL;
  p.revents = 0;
  if (poll(&p, 1, SBX_NET_SPARE_CHECK_MS) <= 0 ||
      !sbx_sync_recv_fds(c, &what, fds, G_N_ELEMENTS(fds), &nfds, "sbx", NULL) ||
      g_strcmp0(what, "fds") != 0)
    _exit(0);
  unsigned next = 0;
  gboolean have_log = FALSE;
  if (parsed && net_log && next < nfds) {
    log_fd = fds[next++];
    have_log = TRUE;
  }
  if (parsed && with_stderr && next < nfds) {
    close(STDERR_FILENO);
    if (fcntl(fds[next], F_DUPFD, STDERR_FILENO) != STDERR_FILENO)
      _exit(SBX_EXIT_FAILED);
    close(fds[next++]);
  }
  if (!parsed || spare || resolv_path || refuse_host_addresses || next != nfds ||
      (net_log && !have_log) || (log_level && !sbx_log_set_level(log_level))) {
    for (unsigned i = next; i < nfds; i++)
      close(fds[i]);
    g_clear_error(err);
    return sbx_fail(err, SBX_ERROR_USAGE, "network helper: options a spare cannot take");
  }
  if (!configure(n, err))
    return FALSE;
  /* The root is ours (an empty tmpfs): its resolv.conf is what sbx read. */
  gsize rlen = 0;
  g_autofree guchar *resolv = resolv_data ? g_base64_decode(resolv_data, &rlen) : NULL;
  sbx_autofd rf = open("/etc/resolv.conf", O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (rf < 0 || (rlen && write(rf, resolv, rlen) != (ssize_t)rlen))
    return sbx_fail_errno(err, "network helper: write resolv.conf");
  return sbx_netd_start(n, err);
}

static void send_stats(SbxNetd *n)
{
  g_autofree char *text = sbx_net_stats_format(&n->stats);
  sbx_sync_send_ok(sync_fd, text);
}

/* sbx asks for the counters at the end of a run. */
static gboolean on_sync(gint fd, GIOCondition cond, gpointer data)
{
  SbxNetd *n = data;
  g_autofree char *req = NULL;
  g_autoptr(GError) err = NULL;
  if (!sbx_sync_recv(fd, &req, "sbx", &err)) {
    g_main_loop_quit(n->loop); /* sbx is gone (a spare has no PDEATHSIG from it) */
    return G_SOURCE_REMOVE;
  }
  if (g_strcmp0(req, "stats") == 0)
    send_stats(n);
  return G_SOURCE_CONTINUE;
}

/* Stopped: the counters go to sbx before we do. */
static gboolean on_term(gint fd, GIOCondition cond, gpointer data)
{
  SbxNetd *n = data;
  send_stats(n);
  g_main_loop_quit(n->loop);
  return G_SOURCE_REMOVE;
}

/* SIGTERM through a signalfd: g_unix_signal_add would start GLib's worker
 * thread, which the seccomp filter (no clone) does not allow. */
static gboolean watch_sigterm(SbxNetd *n, GError **err)
{
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, NULL);
  int fd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0)
    return sbx_fail_errno(err, "network helper: signalfd");
  g_unix_fd_add(fd, G_IO_IN, on_term, n);
  return TRUE;
}

static gboolean release_setup(gpointer data)
{
  sbx_memory_release_setup();
  return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
  /* A host peer closing a connection while libslirp still writes to it must
   * be an EPIPE, not the end of the sandbox's network. */
  signal(SIGPIPE, SIG_IGN);
  g_set_prgname("sbx-net");
  g_autoptr(GError) err = NULL;
  g_autoptr(GOptionContext) ctx = g_option_context_new("");
  g_option_context_add_main_entries(ctx, entries, NULL);
  SbxNetd n = {0};
  gboolean ok = g_option_context_parse(ctx, &argc, &argv, &err);
  /* Started for this run: gone with sbx. A spare outlives the sbx that
   * started it, and is tied to the one that takes it by their socket. */
  if (ok && !spare)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* A spare starts with every signal blocked (netspare.c's child). */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (!ok || (log_level && !sbx_log_set_level(log_level)) ||
      !(spare ? spare_wait(&n, &err) : setup(&n, &err)) || !watch_sigterm(&n, &err)) {
    if (!err)
      sbx_fail(&err, SBX_ERROR_USAGE, "network helper: bad options");
    sbx_sync_send_error(sync_fd, err);
    return SBX_EXIT_FAILED;
  }
  /* Started before the sandbox: its tap0 comes now (sbx forwards it). */
  int tap = -1;
  if (!sbx_sync_recv_fd(sync_fd, NULL, &tap, "sbx", &err) || tap < 0) {
    if (!err)
      sbx_fail(&err, SBX_ERROR_FAILED, "network helper: no tap0 from sbx");
    sbx_sync_send_error(sync_fd, err);
    return SBX_EXIT_FAILED;
  }
  n.tapfd = tap;
  sbx_sync_send_ok(sync_fd, "ready");
  g_unix_fd_add(sync_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_sync, &n);
  sbx_debug("network helper: libslirp %s running, mtu %u", slirp_version_string(), n.mtu);
  /* set-up's code (option parsing, libseccomp, getifaddrs) is not the loop's */
  g_timeout_add(SBX_MEMORY_RELEASE_DELAY_MS, release_setup, NULL);
  sbx_netd_run(&n);
  /* Straight out: exit-time work such as LeakSanitizer's (which needs
   * ptrace) cannot run under the seccomp filter. */
  _exit(0);
}
