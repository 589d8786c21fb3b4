/* net: the slirp network helper (sbx-net) and the rules it enforces.
 *
 * The sandbox's tap0 is the only way out of its network namespace; its fd
 * crosses to sbx-net, which runs libslirp on a GLib main loop and turns the
 * guest's packets into the user's own sockets. Outbound connection attempts
 * are checked against --net-allow before libslirp sees them. */
#pragma once

#include <glib.h>
#include <netinet/in.h>
#include <sys/types.h>

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

/* A spare sbx-net (sbx-net --spare, started by the end of an earlier run:
 * src/sandbox/netspare.c): already exec'd, libslirp loaded and confined, it
 * waits on a listening socket in the user's state directory for one start
 * to take it. sbx passes it the listening socket, the state directory
 * (O_PATH: it exits once its socket is no longer there) and a lock it holds
 * while it waits (so one spare at a time). Taken, it closes all three and
 * reads its options as one message on the accepted connection (with the
 * --net-log file if any), then goes on as a started sbx-net. */
enum { SBX_NETD_FD_SPARE_LISTEN = 4, SBX_NETD_FD_SPARE_DIR = 5, SBX_NETD_FD_SPARE_LOCK = 6 };
#define SBX_NET_SPARE_SOCK     ".net-spare.sock" /* in the state directory */
#define SBX_NET_SPARE_IDLE_MS  (10 * 60 * 1000)
#define SBX_NET_SPARE_CHECK_MS (2 * 1000)

/* What sbx-net counted over a run, for sbx's run report: Ethernet frames
 * the sandbox sent that went on to libslirp (tx) and frames libslirp sent
 * it (rx), and the IPv4 packets the policy refused (each refused TCP SYN,
 * UDP datagram, ping, fragment or other protocol's packet). */
typedef struct {
  guint64 tx_packets, tx_bytes;
  guint64 rx_packets, rx_bytes;
  guint64 refused;
  /* --network slirp:tcp_relay=true (net/relay.c): TCP connections relayed
   * at the socket level instead of through libslirp, and their bytes. */
  guint64 relayed, relayed_tx_bytes, relayed_rx_bytes;
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

/* --net-log: one JSON line per new flow, refused attempt and DNS query. */
typedef struct {
  int fd; /* -1: no log */
  guint64 written;
  gboolean full;    /* the "truncated" record is written: nothing more */
  GHashTable *seen; /* flows already logged (bounded) */
} SbxNetLog;
/* Past this size the log ends with a "truncated" record. */
#define SBX_NET_LOG_MAX (16u << 20)
/* Flows remembered to log each once; when full the table starts over. */
#define SBX_NET_LOG_FLOWS 4096
/* log.c: record one frame the policy judged (only what --net-log wants). */
void sbx_netlog_init(SbxNetLog *l, int fd);
void sbx_netlog_frame(SbxNetLog *l, const SbxFrameInfo *info);

/* policy.c: the host's own IPv4 addresses but loopback (guint32, host
 * order), for SbxNetPolicy.host_addrs: listed before a helper confines
 * itself (it can open no netlink socket afterwards). */
GArray *sbx_net_host_addresses(GError **err);
/* policy.c: the policy sbx-net and the TCP relay apply: --net-allow rules,
 * allow_host_loopback, the host's addresses (listed here). */
gboolean sbx_net_policy_init(SbxNetPolicy *p, char **allow, gboolean host_loopback,
                             gboolean refuse_host_addresses, GError **err);
/* Why a TCP connection to dst:port (host order) may not start, or NULL:
 * what sbx_net_check_frame says of its SYN. */
const char *sbx_net_policy_judge_tcp(const SbxNetPolicy *p, guint32 dst, guint16 port);

/* relay.c: --network slirp:tcp_relay=true, the sandbox's outbound TCP
 * connections relayed at the socket level beside libslirp (the file's
 * comment says how). */
typedef struct {
  char **allow; /* --net-allow */
  gboolean host_loopback, refuse_host_addresses;
  int log_fd;   /* --net-log's file, or -1 */
  uid_t owner;  /* > 0: the sandbox namespace's owner to become (--pids-limit's uid) */
  pid_t parent; /* set by sbx_relay_start */
} SbxRelaySpec;
/* In sbx, once the sandbox is cloned: fork the relay. sandbox: the socket
 * whose peer init and the program hold; *ctl: "ready" (sbx_relay_ready),
 * then "stats" as sbx-net answers it. */
pid_t sbx_relay_start(SbxRelaySpec *s, int sandbox, int *ctl, GError **err);
gboolean sbx_relay_ready(int ctl, GError **err);
/* In init, after lo is up: a listener on the sandbox's 127.0.0.1 for it. */
gboolean sbx_relay_send_listener(int sock, GError **err);
/* In the program's process, no_new_privs set: the filter that hands each
 * connect(2) to the relay; its notification fd goes over sock. */
gboolean sbx_relay_install_filter(int sock, GError **err);
