/* --report FILE: one JSON object about a finished run, for a CI system to
 * attach to the job. Written by sbx itself with GString and one escaping
 * helper (util/json-out.c): sbx links only GLib, and the object is flat
 * enough that a JSON library would buy nothing but start-up time. */
#include "sbx/cli.h"
#include "sbx/report.h"
#include "sbx/util.h"

#include <signal.h>
#include <string.h>

static void key(GString *j, const char *k)
{
  if (j->len > 1 && j->str[j->len - 1] != '{')
    g_string_append_c(j, ',');
  sbx_json_append_string(j, k);
  g_string_append_c(j, ':');
}

static void str(GString *j, const char *k, const char *v)
{
  key(j, k);
  sbx_json_append_string(j, v);
}

static void num(GString *j, const char *k, gint64 v, gboolean known)
{
  key(j, k);
  if (known)
    g_string_append_printf(j, "%" G_GINT64_FORMAT, v);
  else
    g_string_append(j, "null");
}

static void secs(GString *j, const char *k, gint64 us)
{
  key(j, k);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append(j, g_ascii_formatd(buf, sizeof buf, "%.3f", (double)us / G_USEC_PER_SEC));
}

static void boolean(GString *j, const char *k, gboolean v)
{
  key(j, k);
  g_string_append(j, v ? "true" : "false");
}

static const char *net_mode(SbxNetMode m)
{
  return m == SBX_NET_SLIRP    ? "slirp"
         : m == SBX_NET_HOST   ? "host"
         : m == SBX_NET_SWITCH ? "network"
                               : "none";
}

char *sbx_report_json(const SbxReport *r)
{
  const SbxRunSpec *spec = r->spec;
  const SbxRunResult *res = spec->result;
  GString *j = g_string_new("{");
  num(j, "version", 1, TRUE);
  key(j, "image");
  g_string_append_c(j, '{');
  if (spec->image) {
    g_autofree char *id = g_strconcat("sha256:", spec->image->id, NULL);
    str(j, "id", id);
  } else {
    str(j, "id", NULL);
  }
  str(j, "name", r->image_ref);
  g_string_append_c(j, '}');
  key(j, "command");
  if (r->command) {
    g_string_append_c(j, '[');
    for (char **a = r->command; *a; a++) {
      if (a != r->command)
        g_string_append_c(j, ',');
      sbx_json_append_string(j, *a);
    }
    g_string_append_c(j, ']');
  } else {
    g_string_append(j, "null");
  }
  boolean(j, "started", res->started);
  num(j, "exit_code", r->exit_code, TRUE);
  /* 128+N is how init reports death by signal N (as a shell does); a program
   * that exits with such a status itself looks the same. */
  int sig =
      r->exit_code > 128 && r->exit_code < 128 + NSIG && !res->timed_out ? r->exit_code - 128 : 0;
  g_autofree char *signame =
      sig ? g_strconcat("SIG", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", NULL) : NULL;
  str(j, "signal", signame);
  boolean(j, "timed_out", res->timed_out);
  num(j, "timeout_ms", spec->timeout_ms, spec->timeout_ms > 0);
  str(j, "error", r->error);
  secs(j, "wall_seconds", res->wall_us);
  secs(j, "cpu_user_seconds", res->user_us);
  secs(j, "cpu_system_seconds", res->sys_us);
  key(j, "writable_layer");
  g_string_append_c(j, '{');
  str(j, "storage", spec->disk_dir ? "disk" : "tmpfs");
  num(j, "limit_bytes", (gint64)spec->rootfs_size, !spec->disk_dir && spec->rootfs_size > 0);
  /* Sampled every 100 ms by sbx (sandbox/watchdog.c): a shorter burst
   * between two samples is missed. On disk, not measured. */
  num(j, "peak_sampled_bytes", res->writable_peak, res->writable_peak >= 0);
  num(j, "final_bytes", res->writable_final, res->writable_final >= 0);
  g_string_append_c(j, '}');
  key(j, "pids_limit");
  g_string_append_c(j, '{');
  gint64 pids = spec->limits.pids > 0 ? spec->limits.pids : spec->nproc;
  num(j, "limit", pids, pids > 0);
  str(j, "mechanism", spec->limits.pids > 0 ? "cgroup" : spec->nproc > 0 ? "rlimit_nproc" : NULL);
  g_string_append_c(j, '}');
  key(j, "network");
  g_string_append_c(j, '{');
  str(j, "mode", net_mode(spec->net.mode));
  str(j, "name", spec->net.mode == SBX_NET_SWITCH ? spec->net.network : NULL);
  /* sbx-net's counters, as the sandbox sees it: rx is what came in, tx what
   * went out; refused: every SYN, datagram, ping or fragment the policy
   * dropped. On a network (--network NAME), the switch's for this sandbox:
   * what went through the uplink (traffic with the network's other
   * sandboxes is not egress). null without either. */
  num(j, "rx_bytes", (gint64)res->net.rx_bytes, res->have_net);
  num(j, "rx_packets", (gint64)res->net.rx_packets, res->have_net);
  num(j, "tx_bytes", (gint64)res->net.tx_bytes, res->have_net);
  num(j, "tx_packets", (gint64)res->net.tx_packets, res->have_net);
  num(j, "refused_connections", (gint64)res->net.refused, res->have_net);
  /* slirp:tcp_relay=true: connections relayed beside libslirp (their
   * bytes are not in the frames' counts above); null without the relay. */
  gboolean relay = res->have_net && spec->net.tcp_relay;
  num(j, "relayed_connections", (gint64)res->net.relayed, relay);
  num(j, "relayed_tx_bytes", (gint64)res->net.relayed_tx_bytes, relay);
  num(j, "relayed_rx_bytes", (gint64)res->net.relayed_rx_bytes, relay);
  g_string_append_c(j, '}');
  g_string_append(j, "}\n");
  return g_string_free(j, FALSE);
}
