/* net: the slirp network helper (sbx-net) and the rules it enforces.
 *
 * The sandbox's tap0 is the only way out of its network namespace; its fd
 * crosses to sbx-net, which runs libslirp on a GLib main loop and turns the
 * guest's packets into the user's own sockets. Outbound connection attempts
 * are checked against --net-allow before libslirp sees them. */
#pragma once

#include <glib.h>
#include <netinet/in.h>

/* Big-endian fields of frames, and the Internet checksum (RFC 1071) of
 * data plus a partial sum (a pseudo-header's): policy.c, the switch. */
static inline guint32 sbx_net_rd32(const guint8 *p)
{
  return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

static inline void sbx_net_wr16(guint8 *p, guint v)
{
  p[0] = (guint8)(v >> 8);
  p[1] = (guint8)v;
}

static inline void sbx_net_wr32(guint8 *p, guint32 v)
{
  p[0] = (guint8)(v >> 24);
  p[1] = (guint8)(v >> 16);
  p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}

guint16 sbx_net_checksum(const guint8 *data, gsize len, guint32 sum);

#define SBX_NET_GUEST        "10.0.2.100"
#define SBX_NET_GATEWAY      "10.0.2.2"
#define SBX_NET_DNS          "10.0.2.3"
#define SBX_NET_NETMASK      "255.255.255.0"
#define SBX_NET_MTU_DEFAULT  65520
#define SBX_NET_GATEWAY_ADDR 0x0a000202u /* 10.0.2.2, host order */
#define SBX_NET_DNS_ADDR     0x0a000203u /* 10.0.2.3 */

/* The fds sbx hands to sbx-net (nothing else above stderr survives its
 * confinement): the sync socket (util/sync.c) and --net-log's file. sbx-net
 * starts before the sandbox exists: once set up and confined it receives
 * the sandbox's tap0 over the sync socket ("tap" with the fd), answers
 * "ok" or the error, then serves "stats" requests. */
enum { SBX_NETD_FD_SYNC = 4, SBX_NETD_FD_LOG = 5 };

/* What sbx-net counted over a run, for sbx's run report: Ethernet frames
 * the sandbox sent that went on to libslirp (tx) and frames libslirp sent
 * it (rx), and the IPv4 packets the policy refused (each refused TCP SYN,
 * UDP datagram, ping, fragment or other protocol's packet). */
typedef struct {
  guint64 tx_packets, tx_bytes;
  guint64 rx_packets, rx_bytes;
  guint64 refused;
} SbxNetStats;
/* On the sync socket as "tx_packets=N tx_bytes=N ..." */
char *sbx_net_stats_format(const SbxNetStats *s);
gboolean sbx_net_stats_parse(const char *text, SbxNetStats *out);

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
  gboolean dns;             /* the "dns" token: DNS to 10.0.2.3 */
  guint32 net, mask;        /* host order */
  guint16 port_lo, port_hi; /* 0-65535 when no ports given */
  int proto;                /* 0 any, IPPROTO_TCP, IPPROTO_UDP */
} SbxNetRule;
gboolean sbx_net_rule_parse(const char *spec, SbxNetRule *out, GError **err);

typedef struct {
  gboolean enforce;       /* FALSE: everything allowed (no --net-allow given) */
  GArray *rules;          /* SbxNetRule */
  gboolean host_loopback; /* the guest may reach the host's 127.0.0.0/8 */
  /* An address that stands for the host's loopback too, refused with it
   * (sbx-switch's gateway, libslirp's alias there); 0: none. */
  guint32 loopback_alias;
  /* The host's own addresses (reached through any of its interfaces, they
   * answer from services listening on 0.0.0.0). host_addresses FALSE: they
   * are refused, except under --net-allow by a rule naming one exactly. */
  gboolean host_addresses;
  GArray *host_addrs; /* guint32, host order; NULL: none known */
} SbxNetPolicy;
/* Does a --net-allow rule match dst:port (host order) with proto? */
gboolean sbx_net_policy_allows(const SbxNetPolicy *p, guint32 dst, guint16 port, int proto);

typedef enum { SBX_FRAME_PASS, SBX_FRAME_DROP, SBX_FRAME_RESET } SbxFrameVerdict;
/* What sbx_net_check_frame saw, for --net-log and the counters. */
typedef struct {
  gboolean new_flow; /* a TCP SYN, a UDP datagram or an ICMP echo request */
  int proto;         /* IPPROTO_TCP, _UDP, _ICMP, or 0 before the IP header */
  guint32 dst;       /* host order */
  guint16 sport, dport;
  const guint8 *payload; /* UDP payload (within the frame) */
  gsize payload_len;
  const char *refused;  /* why it was refused, NULL when it passed */
  gboolean to_resolver; /* sbx-switch: dst is its network's DNS server */
} SbxFrameInfo;
/* Look at one Ethernet frame from the guest. For RESET, *reply (len
 * *reply_len, at most SBX_NET_REPLY_MAX) is a TCP RST to send back to the
 * guest. info may be NULL. */
#define SBX_NET_REPLY_MAX 64
SbxFrameVerdict sbx_net_check_frame(const SbxNetPolicy *p, const guint8 *frame, gsize len,
                                    guint8 *reply, gsize *reply_len, SbxFrameInfo *info);

/* The name asked for in a DNS query (the first question), dotted, its
 * bytes as they came (a dot or backslash inside a label escaped with a
 * backslash), and its type. FALSE when the payload is not a well-formed
 * query. out holds SBX_DNS_NAME_MAX bytes. */
#define SBX_DNS_NAME_MAX 1024
gboolean sbx_net_dns_query_name(const guint8 *payload, gsize len, char *out, guint16 *qtype);
