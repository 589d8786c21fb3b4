/* libslirp callbacks shared by sbx-net and sbx-switch (src/net/slirp-glib.c). */
#pragma once

#include <glib.h>
#include <slirp/libslirp.h>

void sbx_slirp_guest_error(const char *msg, void *opaque);
int64_t sbx_slirp_clock_get_ns(void *opaque);
/* A timer of the stack kept at *slirp (read when it fires). */
void *sbx_slirp_timer_new(Slirp *const *slirp, SlirpTimerId id, void *cb_opaque);
void sbx_slirp_timer_free(void *timer, void *opaque);
void sbx_slirp_timer_mod(void *timer, int64_t expire_ms, void *opaque);
void sbx_slirp_no_poll_fd(int fd, void *opaque);
void sbx_slirp_notify(void *opaque);
/* libslirp's if_mtu for a link of MTU `mtu`: its TCP segments at most half
 * its 65535-byte window (no window scaling in libslirp 4.7), so two are in
 * flight and the receiving kernel acknowledges as they arrive. if_mru
 * stays the link's MTU. sbx-net and sbx-switch's uplink. */
guint sbx_slirp_segment_mtu(guint mtu);

/* The callbacks above in a SlirpCb, with the caller's send_packet and
 * timer_new_opaque (which passes where its Slirp * lives). */
#define SBX_SLIRP_CALLBACKS(send, timer_new)                                                       \
  {                                                                                                \
    .send_packet = (send), .guest_error = sbx_slirp_guest_error,                                   \
    .clock_get_ns = sbx_slirp_clock_get_ns, .timer_free = sbx_slirp_timer_free,                    \
    .timer_mod = sbx_slirp_timer_mod, .register_poll_fd = sbx_slirp_no_poll_fd,                    \
    .unregister_poll_fd = sbx_slirp_no_poll_fd, .notify = sbx_slirp_notify,                        \
    .timer_new_opaque = (timer_new),                                                               \
  }
