/* sbx-net: the slirp network helper. sbx starts it with the sandbox's tap0
 * fd; it confines itself, binds the forwarded ports, says "ok" (or why not)
 * on the ready fd, and runs until the sandbox's network goes away. */
#include "sbx/netd.h"
#include "sbx/util.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

static int tap_fd = -1, ready_fd = -1, mtu = SBX_NET_MTU_DEFAULT;
static gboolean host_loopback;
static char **forwards, **allows;
static char *resolv_path, *log_level;

static GOptionEntry entries[] = {
    {"tap-fd", 0, 0, G_OPTION_ARG_INT, &tap_fd, "The sandbox's tap0", "FD"},
    {"ready-fd", 0, 0, G_OPTION_ARG_INT, &ready_fd, "Where to say ok or why not", "FD"},
    {"mtu", 0, 0, G_OPTION_ARG_INT, &mtu, "MTU", "N"},
    {"allow-host-loopback", 0, 0, G_OPTION_ARG_NONE, &host_loopback, "10.0.2.2 reaches 127.0.0.1",
     NULL},
    {"publish", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &forwards, "Port forward", "SPEC"},
    {"net-allow", 0, 0, G_OPTION_ARG_STRING_ARRAY, &allows, "Egress rule", "RULE"},
    {"resolv-conf", 0, 0, G_OPTION_ARG_FILENAME, &resolv_path, "Resolvers (default /etc/resolv.conf)",
     "FILE"},
    {"log-level", 0, 0, G_OPTION_ARG_STRING, &log_level, "Log level", "LEVEL"},
    {NULL}};

static void reply(const char *msg)
{
  if (ready_fd >= 0) {
    (void)!write(ready_fd, msg, strlen(msg));
    close(ready_fd);
    ready_fd = -1;
  }
}

static gboolean setup(SbxNetd *n, GError **err)
{
  if (tap_fd < 0 || mtu < 576 || mtu > 65521)
    return sbx_fail(err, SBX_ERROR_USAGE, "network helper: needs --tap-fd and an MTU of 576..65521");
  n->tapfd = tap_fd;
  n->mtu = (guint)mtu;
  n->allow_host_loopback = host_loopback;
  n->forwards = g_array_new(FALSE, FALSE, sizeof(SbxPortForward));
  for (char **f = forwards; f && *f; f++) {
    SbxPortForward pf;
    if (!sbx_port_forward_parse(*f, &pf, err))
      return FALSE;
    g_array_append_val(n->forwards, pf);
  }
  n->policy.rules = g_array_new(FALSE, FALSE, sizeof(SbxNetRule));
  n->policy.enforce = allows != NULL;
  n->policy.host_loopback = host_loopback;
  for (char **a = allows; a && *a; a++) {
    SbxNetRule r;
    if (!sbx_net_rule_parse(*a, &r, err))
      return FALSE;
    g_array_append_val(n->policy.rules, r);
  }
  /* libslirp reads /etc/resolv.conf for 10.0.2.3's upstream: read it now,
   * before the root goes away. */
  g_autofree char *resolv = NULL;
  if (!g_file_get_contents(resolv_path ? resolv_path : "/etc/resolv.conf", &resolv, NULL, NULL))
    resolv = g_strdup("");
  if (!sbx_netd_confine(resolv, tap_fd, ready_fd, err))
    return FALSE;
  n->loop = g_main_loop_new(NULL, FALSE);
  return sbx_netd_start(n, err);
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
      (log_level && !sbx_log_set_level(log_level)) || !setup(&n, &err)) {
    g_autofree char *msg = g_strconcat("E", err ? err->message : "network helper: bad options",
                                       NULL);
    reply(msg);
    return 125;
  }
  reply("K");
  sbx_debug("network helper: libslirp %s running, mtu %u", slirp_version_string(), n.mtu);
  g_main_loop_run(n.loop);
  return 0;
}
