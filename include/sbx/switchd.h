/* The network switch's insides (src/net/, the sbx-switch program). */
#pragma once

#include <glib.h>
#include <slirp/libslirp.h>
#include "sbx/net.h"
#include "sbx/netswitch.h"

/* uplink.c: libslirp for a whole network. Frames it sends go to output. */
typedef struct SbxUplink SbxUplink;
typedef void (*SbxUplinkOutput)(const guint8 *frame, gsize len, gpointer data);
SbxUplink *sbx_uplink_new(guint32 net, guint prefix, SbxUplinkOutput output, gpointer data,
                          GError **err);
void sbx_uplink_input(SbxUplink *up, const guint8 *frame, gsize len);
gboolean sbx_uplink_add_forward(SbxUplink *up, const SbxPortForward *f, guint32 guest,
                                GError **err);
void sbx_uplink_remove_forward(SbxUplink *up, const SbxPortForward *f);

/* switch-dns.c: the answer to a DNS query (UDP payload) for a name on the
 * network. lookup says a name's address (0: not on the network). Returns
 * the answer's length in out (at most out_size), or 0 when the query is not
 * for a name on the network (the uplink's resolver gets it, or, internal,
 * sbx_switch_dns_answer(..., nxdomain TRUE) says it has none). */
typedef guint32 (*SbxSwitchLookup)(const char *name, gpointer data);
gsize sbx_switch_dns_answer(const guint8 *query, gsize len, SbxSwitchLookup lookup, gpointer data,
                            gboolean nxdomain, guint8 *out, gsize out_size);

/* confine.c: the switch's confinement (sbx-net's, keeping fds up to
 * keep_upto and the few more calls the switch makes). */
gboolean sbx_switch_confine(const char *resolv_conf, int keep_upto, GError **err);
