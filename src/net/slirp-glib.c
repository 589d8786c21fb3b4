/* libslirp's callbacks that are the same wherever sbx runs a libslirp stack
 * (sbx-net for one sandbox, sbx-switch's uplink for a network): its clock,
 * its timers as GLib timeouts, its guest errors in the debug log. Sockets are
 * polled by each loop itself (register_poll_fd is not needed). */
#include "sbx/slirp-glib.h"
#include "sbx/util.h"

typedef struct {
  Slirp *const *slirp; /* where the owner keeps its stack */
  SlirpTimerId id;
  void *cb_opaque;
  guint source;
} Timer;

void sbx_slirp_guest_error(const char *msg, void *opaque)
{
  sbx_debug("slirp: guest error: %s", msg);
}

int64_t sbx_slirp_clock_get_ns(void *opaque)
{
  return g_get_monotonic_time() * 1000;
}

static gboolean timer_fire(gpointer data)
{
  Timer *t = data;
  t->source = 0;
  slirp_handle_timer(*t->slirp, t->id, t->cb_opaque);
  return G_SOURCE_REMOVE;
}

void *sbx_slirp_timer_new(Slirp *const *slirp, SlirpTimerId id, void *cb_opaque)
{
  Timer *t = g_new0(Timer, 1);
  t->slirp = slirp;
  t->id = id;
  t->cb_opaque = cb_opaque;
  return t;
}

void sbx_slirp_timer_free(void *timer, void *opaque)
{
  Timer *t = timer;
  if (t->source)
    g_source_remove(t->source);
  g_free(t);
}

void sbx_slirp_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
  Timer *t = timer;
  if (t->source)
    g_source_remove(t->source);
  int64_t now_ms = g_get_monotonic_time() / 1000;
  t->source = g_timeout_add((guint)MAX(0, expire_ms - now_ms), timer_fire, t);
}

void sbx_slirp_no_poll_fd(int fd, void *opaque)
{
}

void sbx_slirp_notify(void *opaque)
{
  /* One thread: the loop runs libslirp again on its next iteration anyway. */
}

/* libslirp 4.7 speaks TCP without window scaling (tcp_subr.c:
 * TCP_DO_RFC1323 0): each connection has at most 65535 bytes in flight each
 * way. At the tap's MTU of 65520 that is one segment, and a guest's kernel
 * acknowledges a lone full segment only once its program has read it (or
 * its delayed-ACK timer fires): a host->guest transfer waited for the
 * program's read on every segment. libslirp's segments (its MSS is its
 * if_mtu - 40, offered to the guest too) are kept to half the window: two
 * are in flight, and Linux acknowledges every second full segment as it
 * arrives, inside our write to tap0. The tap's MTU stays what the user
 * asked for (if_mru: frames the guest may send); only libslirp's own
 * packets are smaller (a UDP datagram above it goes out in IP fragments). */
#define SLIRP_TCP_WINDOW 65535u
#define IP_TCP_HEADERS   40u

guint sbx_slirp_segment_mtu(guint mtu)
{
  return MIN(mtu, SLIRP_TCP_WINDOW / 2 + IP_TCP_HEADERS);
}
