/* libslirp on a GLib main loop: frames from tap0 go through the egress
 * policy into slirp_input; slirp's frames go back out to tap0; slirp's own
 * sockets are polled by a GSource that asks libslirp which fds it wants. */
#include "sbx/net.h"
#include "sbx/netd.h"
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

/* libslirp's sockets as a GSource. The set of fds libslirp wants changes
 * rarely, so the source's polls are replaced only when it does: touching them
 * every iteration wakes the main loop at once (GLib signals its wakeup fd on
 * each change) and spins a core. */
typedef struct {
  GSource source;
  SbxNetd *netd;
  GArray *fds;     /* GPollFD registered with the source */
  GArray *want;    /* what slirp_pollfds_fill asked for this time */
  gint64 deadline; /* monotonic us when libslirp's timers are due, or -1 */
} SlirpSource;

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

static void guest_error(const char *msg, void *opaque)
{
  sbx_debug("slirp: guest error: %s", msg);
}

static int64_t clock_get_ns(void *opaque)
{
  return g_get_monotonic_time() * 1000;
}

typedef struct {
  SbxNetd *netd;
  SlirpTimerId id;
  void *cb_opaque;
  guint source;
} Timer;

static gboolean timer_fire(gpointer data)
{
  Timer *t = data;
  t->source = 0;
  slirp_handle_timer(t->netd->slirp, t->id, t->cb_opaque);
  return G_SOURCE_REMOVE;
}

static void *timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
  Timer *t = g_new0(Timer, 1);
  t->netd = opaque;
  t->id = id;
  t->cb_opaque = cb_opaque;
  return t;
}

static void timer_free(void *timer, void *opaque)
{
  Timer *t = timer;
  if (t->source)
    g_source_remove(t->source);
  g_free(t);
}

static void timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
  Timer *t = timer;
  if (t->source)
    g_source_remove(t->source);
  int64_t now_ms = g_get_monotonic_time() / 1000;
  t->source = g_timeout_add((guint)MAX(0, expire_ms - now_ms), timer_fire, t);
}

static void register_poll_fd(int fd, void *opaque)
{
}

static void unregister_poll_fd(int fd, void *opaque)
{
}

static void notify(void *opaque)
{
  /* One thread: the loop runs libslirp again on its next iteration anyway. */
}

static const SlirpCb callbacks = {
    .send_packet = send_packet,
    .guest_error = guest_error,
    .clock_get_ns = clock_get_ns,
    .timer_free = timer_free,
    .timer_mod = timer_mod,
    .register_poll_fd = register_poll_fd,
    .unregister_poll_fd = unregister_poll_fd,
    .notify = notify,
    .timer_new_opaque = timer_new_opaque,
};

static int add_poll(int fd, int events, void *opaque)
{
  SlirpSource *s = opaque;
  GPollFD p = {.fd = fd, .events = 0};
  if (events & SLIRP_POLL_IN)
    p.events |= G_IO_IN;
  if (events & SLIRP_POLL_OUT)
    p.events |= G_IO_OUT;
  if (events & SLIRP_POLL_PRI)
    p.events |= G_IO_PRI;
  g_array_append_val(s->want, p);
  return (int)s->want->len - 1;
}

static int get_revents(int idx, void *opaque)
{
  SlirpSource *s = opaque;
  GPollFD *p = &g_array_index(s->fds, GPollFD, idx);
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

static gboolean same_polls(GArray *a, GArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++) {
    GPollFD *x = &g_array_index(a, GPollFD, i), *y = &g_array_index(b, GPollFD, i);
    if (x->fd != y->fd || x->events != y->events)
      return FALSE;
  }
  return TRUE;
}

static gboolean slirp_prepare(GSource *source, gint *timeout)
{
  SlirpSource *s = (SlirpSource *)source;
  g_array_set_size(s->want, 0);
  uint32_t t = UINT32_MAX;
  slirp_pollfds_fill(s->netd->slirp, &t, add_poll, s);
  if (!same_polls(s->fds, s->want)) {
    for (guint i = 0; i < s->fds->len; i++)
      g_source_remove_poll(source, &g_array_index(s->fds, GPollFD, i));
    GArray *old = s->fds;
    s->fds = s->want;
    s->want = old;
    for (guint i = 0; i < s->fds->len; i++)
      g_source_add_poll(source, &g_array_index(s->fds, GPollFD, i));
  }
  for (guint i = 0; i < s->fds->len; i++)
    g_array_index(s->fds, GPollFD, i).revents = 0;
  s->deadline = t == UINT32_MAX ? -1 : g_get_monotonic_time() + (gint64)t * 1000;
  *timeout = t == UINT32_MAX ? -1 : (gint)t;
  return FALSE;
}

static gboolean slirp_check(GSource *source)
{
  SlirpSource *s = (SlirpSource *)source;
  for (guint i = 0; i < s->fds->len; i++)
    if (g_array_index(s->fds, GPollFD, i).revents)
      return TRUE;
  return s->deadline >= 0 && g_get_monotonic_time() >= s->deadline;
}

static gboolean slirp_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
  SlirpSource *s = (SlirpSource *)source;
  slirp_pollfds_poll(s->netd->slirp, 0, get_revents, s);
  return G_SOURCE_CONTINUE;
}

static void slirp_finalize(GSource *source)
{
  g_array_unref(((SlirpSource *)source)->fds);
  g_array_unref(((SlirpSource *)source)->want);
}

static GSourceFuncs slirp_funcs = {slirp_prepare,  slirp_check, slirp_dispatch,
                                   slirp_finalize, NULL,        NULL};

/* Frames from the guest. */
static gboolean on_tap(gint fd, GIOCondition cond, gpointer data)
{
  SbxNetd *n = data;
  if (cond & (G_IO_HUP | G_IO_ERR)) {
    g_main_loop_quit(n->loop);
    return G_SOURCE_REMOVE;
  }
  for (int i = 0; i < 64; i++) {
    ssize_t r = read(fd, n->buf, n->buf_size);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == EAGAIN)
      break;
    if (r <= 0) {
      /* The sandbox's network namespace is gone: so is our job. */
      g_main_loop_quit(n->loop);
      return G_SOURCE_REMOVE;
    }
    guint8 reply[SBX_NET_REPLY_MAX];
    gsize reply_len = 0;
    SbxFrameInfo info;
    SbxFrameVerdict v = sbx_net_check_frame(&n->policy, n->buf, (gsize)r, reply, &reply_len, &info);
    sbx_netlog_frame(&n->log, &info);
    if (info.refused && info.proto)
      n->stats.refused++;
    switch (v) {
    case SBX_FRAME_PASS:
      n->stats.tx_packets++;
      n->stats.tx_bytes += (guint64)r;
      slirp_input(n->slirp, n->buf, (int)r);
      break;
    case SBX_FRAME_RESET:
      (void)!write(fd, reply, reply_len);
      break;
    case SBX_FRAME_DROP:
      break;
    }
  }
  return G_SOURCE_CONTINUE;
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
  cfg.if_mtu = n->mtu;
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
                      errno ? g_strerror(errno) : "address in use or not allowed");
    }
  }
  n->buf_size = n->mtu + 64;
  n->buf = g_malloc(n->buf_size);
  SlirpSource *s = (SlirpSource *)g_source_new(&slirp_funcs, sizeof(SlirpSource));
  s->netd = n;
  s->fds = g_array_new(FALSE, FALSE, sizeof(GPollFD));
  s->want = g_array_new(FALSE, FALSE, sizeof(GPollFD));
  s->deadline = -1;
  g_source_attach(&s->source, NULL);
  g_source_unref(&s->source);
  g_unix_fd_add(n->tapfd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_tap, n);
  return TRUE;
}
