/* libslirp on a GLib main context: frames from tap0 go through the egress
 * policy into slirp_input; slirp's frames go back out to tap0. One poll(2)
 * a loop iteration covers tap0, libslirp's sockets and GLib's sources
 * (sbx_netd_run). */
#include "sbx/net.h"
#include "sbx/netd.h"
#include "sbx/slirp-glib.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#if SLIRP_CONFIG_VERSION_MAX < 4
#error "libslirp 4.7 or later is needed (SlirpConfig version 4)"
#endif

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
  SbxNetd *n = opaque;
  ssize_t w;
  do
    w = write(n->tapfd, buf, len);
  while (w < 0 && errno == EINTR);
  if (w > 0) {
    n->stats.rx_packets++;
    n->stats.rx_bytes += (guint64)w;
  }
  /* A full tap queue: drop, TCP retransmits. */
  return w < 0 && errno == EAGAIN ? (ssize_t)len : w;
}

static void *timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
  return sbx_slirp_timer_new(&((SbxNetd *)opaque)->slirp, id, cb_opaque);
}

static const SlirpCb callbacks = SBX_SLIRP_CALLBACKS(send_packet, timer_new_opaque);

/* The loop's poll set: tap0 first, then libslirp's sockets, then what GLib's
 * main context wants (the sync socket, the signalfd, libslirp's timers).
 * GPollFD is struct pollfd on Unix: one g_poll covers them all. */
#define TAP_SLOT 0

static int add_poll(int fd, int events, void *opaque)
{
  GArray *fds = opaque;
  GPollFD p = {.fd = fd, .events = 0};
  if (events & SLIRP_POLL_IN)
    p.events |= G_IO_IN;
  if (events & SLIRP_POLL_OUT)
    p.events |= G_IO_OUT;
  if (events & SLIRP_POLL_PRI)
    p.events |= G_IO_PRI;
  g_array_append_val(fds, p);
  return (int)fds->len - 1;
}

static int get_revents(int idx, void *opaque)
{
  GArray *fds = opaque;
  GPollFD *p = &g_array_index(fds, GPollFD, idx);
  int r = 0;
  if (p->revents & G_IO_IN)
    r |= SLIRP_POLL_IN;
  if (p->revents & G_IO_OUT)
    r |= SLIRP_POLL_OUT;
  if (p->revents & G_IO_PRI)
    r |= SLIRP_POLL_PRI;
  if (p->revents & G_IO_ERR)
    r |= SLIRP_POLL_ERR;
  if (p->revents & G_IO_HUP)
    r |= SLIRP_POLL_HUP;
  return r;
}

/* One frame from the guest: through the egress policy into libslirp. */
static void guest_frame(SbxNetd *n, gsize len)
{
  guint8 reply[SBX_NET_REPLY_MAX];
  gsize reply_len = 0;
  SbxFrameInfo info;
  SbxFrameVerdict v = sbx_net_check_frame(&n->policy, n->buf, len, reply, &reply_len, &info);
  sbx_netlog_frame(&n->log, &info);
  if (info.refused && info.proto)
    n->stats.refused++;
  switch (v) {
  case SBX_FRAME_PASS:
    n->stats.tx_packets++;
    n->stats.tx_bytes += (guint64)len;
    slirp_input(n->slirp, n->buf, (int)len);
    break;
  case SBX_FRAME_RESET:
    (void)!write(n->tapfd, reply, reply_len);
    break;
  case SBX_FRAME_DROP:
    break;
  }
}

/* Frames from the guest, tap0 being readable: read until EAGAIN, at most
 * TAP_BUDGET, so that libslirp's sockets get their turn. One loop turn per
 * frame would cost far more than the read that meets EAGAIN: a turn walks
 * every socket libslirp keeps, and after many short connections (each kept
 * for TIME_WAIT) that is hundreds. FALSE: the sandbox's network namespace is
 * gone, and so is our job. */
#define TAP_BUDGET 64

static gboolean tap_input(SbxNetd *n)
{
  for (int i = 0; i < TAP_BUDGET; i++) {
    ssize_t r = read(n->tapfd, n->buf, n->buf_size);
    if (r < 0 && errno == EINTR) {
      i--;
      continue;
    }
    if (r < 0 && errno == EAGAIN)
      return TRUE;
    if (r <= 0)
      return FALSE;
    guest_frame(n, (gsize)r);
  }
  return TRUE;
}

void sbx_netd_run(SbxNetd *n)
{
  GMainContext *ctx = g_main_context_default();
  GArray *fds = g_array_new(FALSE, FALSE, sizeof(GPollFD));
  gint glib_want = 8;
  g_main_context_acquire(ctx);
  while (g_main_loop_is_running(n->loop)) {
    gint prio, glib_timeout, glib_n;
    g_main_context_prepare(ctx, &prio);
    g_array_set_size(fds, 0);
    GPollFD tap = {.fd = n->tapfd, .events = G_IO_IN};
    g_array_append_val(fds, tap);
    uint32_t slirp_timeout = UINT32_MAX;
    slirp_pollfds_fill(n->slirp, &slirp_timeout, add_poll, fds);
    guint base = fds->len;
    for (;;) {
      g_array_set_size(fds, base + (guint)glib_want);
      glib_n = g_main_context_query(ctx, prio, &glib_timeout, &g_array_index(fds, GPollFD, base),
                                    glib_want);
      if (glib_n <= glib_want)
        break;
      glib_want = glib_n;
    }
    g_array_set_size(fds, base + (guint)glib_n);
    gint timeout = glib_timeout;
    if (slirp_timeout != UINT32_MAX && (timeout < 0 || slirp_timeout < (uint32_t)timeout))
      timeout = (gint)slirp_timeout;
    for (guint i = 0; i < fds->len; i++)
      g_array_index(fds, GPollFD, i).revents = 0;
    int ready = g_poll((GPollFD *)fds->data, fds->len, timeout);
    if (ready < 0 && errno != EINTR) {
      sbx_debug("network helper: poll: %s", sbx_strerror(errno));
      break;
    }
    gushort tap_ev = g_array_index(fds, GPollFD, TAP_SLOT).revents;
    if (tap_ev & (G_IO_HUP | G_IO_ERR | G_IO_NVAL))
      break;
    if ((tap_ev & G_IO_IN) && !tap_input(n))
      break;
    slirp_pollfds_poll(n->slirp, ready < 0, get_revents, fds);
    if (g_main_context_check(ctx, prio, &g_array_index(fds, GPollFD, base), glib_n))
      g_main_context_dispatch(ctx);
  }
  g_main_context_release(ctx);
  g_array_unref(fds);
}

gboolean sbx_netd_start(SbxNetd *n, GError **err)
{
  SlirpConfig cfg = {0};
  cfg.version = MIN(SLIRP_CONFIG_VERSION_MAX, 4);
  cfg.in_enabled = true;
  inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
  inet_pton(AF_INET, SBX_NET_NETMASK, &cfg.vnetmask);
  inet_pton(AF_INET, SBX_NET_GATEWAY, &cfg.vhost);
  inet_pton(AF_INET, SBX_NET_DNS, &cfg.vnameserver);
  inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
  cfg.in6_enabled = false;
  cfg.if_mtu = sbx_slirp_segment_mtu(n->mtu);
  cfg.if_mru = n->mtu;
  /* 10.0.2.2 reaches the host's 127.0.0.1 only when asked for. */
  cfg.disable_host_loopback = !n->allow_host_loopback;
  cfg.enable_emu = false;
  cfg.vhostname = "sbx";
  n->slirp = slirp_new(&cfg, &callbacks, n);
  if (!n->slirp)
    return sbx_fail(err, SBX_ERROR_FAILED, "network: libslirp failed to start");
  struct in_addr guest;
  inet_pton(AF_INET, SBX_NET_GUEST, &guest);
  for (guint i = 0; n->forwards && i < n->forwards->len; i++) {
    SbxPortForward *f = &g_array_index(n->forwards, SbxPortForward, i);
    if (slirp_add_hostfwd(n->slirp, f->udp, f->host_ip, f->host_port, guest, f->guest_port) < 0) {
      char ip[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &f->host_ip, ip, sizeof ip);
      return sbx_fail(err, SBX_ERROR_FAILED, "-p %s:%u:%u/%s: cannot listen on the host: %s", ip,
                      f->host_port, f->guest_port, f->udp ? "udp" : "tcp",
                      errno ? sbx_strerror(errno) : "address in use or not allowed");
    }
  }
  n->buf_size = n->mtu + 64;
  n->buf = g_malloc(n->buf_size);
  return TRUE;
}
