/* The uplink of a sandbox network: one libslirp for every sandbox on it,
 * on sbx-switch's GLib main loop. The poll source is the one sbx-net uses
 * (src/net/slirp.c); the stack differs in its addresses (the network's
 * subnet), in having no DHCP server (the switch hands out addresses) and in
 * port forwards that come and go with the sandboxes. */
#include "sbx/switchd.h"
#include "sbx/slirp-glib.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <string.h>

#if SLIRP_CONFIG_VERSION_MAX < 4
#error "libslirp 4.7 or later is needed (SlirpConfig version 4)"
#endif

struct SbxUplink {
  Slirp *slirp;
  SbxUplinkOutput output;
  gpointer data;
};

typedef struct {
  GSource source;
  SbxUplink *up;
  GArray *fds;
  GArray *want;
  gint64 deadline;
} SlirpSource;

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
  SbxUplink *up = opaque;
  up->output(buf, len, up->data);
  return (ssize_t)len;
}

static void *timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
  return sbx_slirp_timer_new(&((SbxUplink *)opaque)->slirp, id, cb_opaque);
}

static const SlirpCb callbacks = SBX_SLIRP_CALLBACKS(send_packet, timer_new_opaque);

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
  slirp_pollfds_fill(s->up->slirp, &t, add_poll, s);
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
  slirp_pollfds_poll(s->up->slirp, 0, get_revents, s);
  return G_SOURCE_CONTINUE;
}

static void slirp_finalize(GSource *source)
{
  g_array_unref(((SlirpSource *)source)->fds);
  g_array_unref(((SlirpSource *)source)->want);
}

static GSourceFuncs slirp_funcs = {slirp_prepare,  slirp_check, slirp_dispatch,
                                   slirp_finalize, NULL,        NULL};

SbxUplink *sbx_uplink_new(guint32 net, guint prefix, SbxUplinkOutput output, gpointer data,
                          GError **err)
{
  SbxUplink *up = g_new0(SbxUplink, 1);
  up->output = output;
  up->data = data;
  SlirpConfig cfg = {0};
  cfg.version = MIN(SLIRP_CONFIG_VERSION_MAX, 4);
  cfg.in_enabled = true;
  cfg.vnetwork.s_addr = htonl(net);
  cfg.vnetmask.s_addr = htonl(0xffffffffu << (32 - prefix));
  cfg.vhost.s_addr = htonl(net + SBX_SWITCH_GATEWAY_HOST);
  cfg.vnameserver.s_addr = htonl(net + SBX_SWITCH_DNS_HOST);
  cfg.vdhcp_start.s_addr = htonl(net + SBX_SWITCH_FIRST_HOST);
  cfg.disable_dhcp = true;
  cfg.in6_enabled = false;
  cfg.if_mtu = sbx_slirp_segment_mtu(SBX_SWITCH_MTU);
  cfg.if_mru = SBX_SWITCH_MTU;
  /* The gateway reaches the host's 127.0.0.1, but only for a sandbox that
   * asked for it: the switch refuses the others' packets to it (switch.c). */
  cfg.disable_host_loopback = false;
  cfg.enable_emu = false;
  cfg.vhostname = "sbx";
  up->slirp = slirp_new(&cfg, &callbacks, up);
  if (!up->slirp) {
    g_free(up);
    sbx_fail(err, SBX_ERROR_FAILED, "network: libslirp failed to start");
    return NULL;
  }
  SlirpSource *s = (SlirpSource *)g_source_new(&slirp_funcs, sizeof(SlirpSource));
  s->up = up;
  s->fds = g_array_new(FALSE, FALSE, sizeof(GPollFD));
  s->want = g_array_new(FALSE, FALSE, sizeof(GPollFD));
  s->deadline = -1;
  g_source_attach(&s->source, NULL);
  g_source_unref(&s->source);
  return up;
}

void sbx_uplink_input(SbxUplink *up, const guint8 *frame, gsize len)
{
  slirp_input(up->slirp, frame, (int)len);
}

gboolean sbx_uplink_add_forward(SbxUplink *up, const SbxPortForward *f, guint32 guest, GError **err)
{
  struct in_addr g = {.s_addr = htonl(guest)};
  errno = 0;
  if (slirp_add_hostfwd(up->slirp, f->udp, f->host_ip, f->host_port, g, f->guest_port) < 0) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &f->host_ip, ip, sizeof ip);
    return sbx_fail(err, SBX_ERROR_FAILED, "-p %s:%u:%u/%s: cannot listen on the host: %s", ip,
                    f->host_port, f->guest_port, f->udp ? "udp" : "tcp",
                    errno ? sbx_strerror(errno) : "address in use or not allowed");
  }
  return TRUE;
}

void sbx_uplink_remove_forward(SbxUplink *up, const SbxPortForward *f)
{
  slirp_remove_hostfwd(up->slirp, f->udp, f->host_ip, f->host_port);
}
