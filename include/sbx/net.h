/* net: the slirp network helper (sbx-net) and the rules it enforces.
 *
 * The sandbox's tap0 is the only way out of its network namespace; its fd
 * crosses to sbx-net, which runs libslirp on a GLib main loop and turns the
 * guest's packets into the user's own sockets. Outbound connection attempts
 * are checked against --net-allow before libslirp sees them. */
#pragma once

#include <glib.h>
#include <netinet/in.h>

#define SBX_NET_GUEST "10.0.2.100"
#define SBX_NET_GATEWAY "10.0.2.2"
#define SBX_NET_DNS "10.0.2.3"
#define SBX_NET_NETMASK "255.255.255.0"
#define SBX_NET_MTU_DEFAULT 65520
/* --mtu bounds: IPv4's minimum datagram; libslirp's largest MTU. */
#define SBX_NET_MTU_MIN 576
#define SBX_NET_MTU_MAX 65520

/* -p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|/udp] */
typedef struct {
  struct in_addr host_ip;
  guint16 host_port, guest_port;
  gboolean udp;
} SbxPortForward;
gboolean sbx_port_forward_parse(const char *spec, SbxPortForward *out, GError **err);

/* --net-allow CIDR[:PORT[-PORT]][/tcp|/udp] or "dns" */
typedef struct {
  gboolean dns;          /* the "dns" token: DNS to 10.0.2.3 */
  guint32 net, mask;     /* host order */
  guint16 port_lo, port_hi; /* 0-65535 when no ports given */
  int proto;             /* 0 any, IPPROTO_TCP, IPPROTO_UDP */
} SbxNetRule;
gboolean sbx_net_rule_parse(const char *spec, SbxNetRule *out, GError **err);

typedef struct {
  gboolean enforce;  /* FALSE: everything allowed (no --net-allow given) */
  GArray *rules;     /* SbxNetRule */
  gboolean host_loopback; /* the guest may reach the host's 127.0.0.0/8 */
} SbxNetPolicy;
/* May a new flow to dst:port (host order) with proto go out? */
gboolean sbx_net_policy_allows(const SbxNetPolicy *p, guint32 dst, guint16 port, int proto);

typedef enum { SBX_FRAME_PASS, SBX_FRAME_DROP, SBX_FRAME_RESET } SbxFrameVerdict;
/* Look at one Ethernet frame from the guest. For RESET, *reply (len
 * *reply_len) is a TCP RST to send back to the guest. */
SbxFrameVerdict sbx_net_check_frame(const SbxNetPolicy *p, const guint8 *frame, gsize len,
                                    guint8 *reply, gsize *reply_len);
