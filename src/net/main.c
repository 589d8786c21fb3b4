/* sbx-net: the slirp network helper. sbx starts it with the sandbox's tap0
 * and a sync socket (util/sync.c) at the fds net.h names; it confines
 * itself, binds the forwarded ports, says "ok" (or why not) on the socket,
 * and runs until the sandbox's network goes away, answering "stats". */
#include "sbx/netd.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>

static int mtu = SBX_NET_MTU_DEFAULT;
static gboolean host_loopback, refuse_host_addresses, net_log;
static char **forwards, **allows;
static char *resolv_path, *log_level;

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
    {NULL}};

static gboolean setup(SbxNetd *n, GError **err)
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
  sbx_netlog_init(&n->log, net_log ? SBX_NETD_FD_LOG : -1);
  /* libslirp reads /etc/resolv.conf for 10.0.2.3's upstream: read it now,
   * before the root goes away. */
  g_autofree char *resolv = NULL;
  if (!g_file_get_contents(resolv_path ? resolv_path : "/etc/resolv.conf", &resolv, NULL, NULL))
    resolv = g_strdup("");
  if (!sbx_netd_confine(resolv, net_log, err))
    return FALSE;
  n->loop = g_main_loop_new(NULL, TRUE); /* sbx_netd_run runs it */
  return sbx_netd_start(n, err);
}

static void send_stats(SbxNetd *n)
{
  g_autofree char *text = sbx_net_stats_format(&n->stats);
  sbx_sync_send_ok(SBX_NETD_FD_SYNC, text);
}

/* sbx asks for the counters at the end of a run. */
static gboolean on_sync(gint fd, GIOCondition cond, gpointer data)
{
  SbxNetd *n = data;
  g_autofree char *req = NULL;
  g_autoptr(GError) err = NULL;
  if (!sbx_sync_recv(fd, &req, "sbx", &err))
    return G_SOURCE_REMOVE; /* sbx is gone: PDEATHSIG follows */
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
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* A host peer closing a connection while libslirp still writes to it must
   * be an EPIPE, not the end of the sandbox's network. */
  signal(SIGPIPE, SIG_IGN);
  g_set_prgname("sbx-net");
  g_autoptr(GError) err = NULL;
  g_autoptr(GOptionContext) ctx = g_option_context_new("");
  g_option_context_add_main_entries(ctx, entries, NULL);
  SbxNetd n = {0};
  if (!g_option_context_parse(ctx, &argc, &argv, &err) ||
      (log_level && !sbx_log_set_level(log_level)) || !setup(&n, &err) ||
      !watch_sigterm(&n, &err)) {
    if (!err)
      sbx_fail(&err, SBX_ERROR_USAGE, "network helper: bad options");
    sbx_sync_send_error(SBX_NETD_FD_SYNC, err);
    return SBX_EXIT_FAILED;
  }
  /* Started before the sandbox: its tap0 comes now (sbx forwards it). */
  int tap = -1;
  if (!sbx_sync_recv_fd(SBX_NETD_FD_SYNC, NULL, &tap, "sbx", &err) || tap < 0) {
    if (!err)
      sbx_fail(&err, SBX_ERROR_FAILED, "network helper: no tap0 from sbx");
    sbx_sync_send_error(SBX_NETD_FD_SYNC, err);
    return SBX_EXIT_FAILED;
  }
  n.tapfd = tap;
  sbx_sync_send_ok(SBX_NETD_FD_SYNC, "ready");
  g_unix_fd_add(SBX_NETD_FD_SYNC, G_IO_IN | G_IO_HUP | G_IO_ERR, on_sync, &n);
  sbx_debug("network helper: libslirp %s running, mtu %u", slirp_version_string(), n.mtu);
  /* set-up's code (option parsing, libseccomp, getifaddrs) is not the loop's */
  g_timeout_add(SBX_MEMORY_RELEASE_DELAY_MS, release_setup, NULL);
  sbx_netd_run(&n);
  /* Straight out: exit-time work such as LeakSanitizer's (which needs
   * ptrace) cannot run under the seccomp filter. */
  _exit(0);
}
