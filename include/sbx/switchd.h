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

/* confine.c: the switch's confinement (sbx-net's, keeping fds up to
 * keep_upto and the few more calls the switch makes). */
gboolean sbx_switch_confine(const char *resolv_conf, int keep_upto, GError **err);
