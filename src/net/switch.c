/* sbx-switch: one sandbox network's Ethernet switch.
 *
 * The first `sbx run --network NAME` starts it with the network's listening
 * socket and lock file (netswitch.h names the fds); every sandbox's sbx
 * connects, says "join" (its names, -p, --net-allow), gets its address and
 * MAC, and then hands over its tap0. Frames go from tap to tap by their
 * destination MAC (each port's MAC is the one the switch gave it, so the
 * table is known, not learned from what a sandbox claims); broadcasts go to
 * every other port; frames for the rest of the world go to the libslirp
 * uplink through that sandbox's own --net-allow policy. DNS to the network's
 * resolver address is answered here for the sandboxes' names.
 *
 * A port ends when its sbx closes the connection (the sandbox exited, or
 * sbx was killed: the kernel closes the socket) or its tap goes away; its
 * address and forwarded ports are free at once. With no port left, the
 * switch exits (under the network's lock, so a sandbox joining just then
 * is never lost: see idle_check). */
#include "sbx/netd.h"
#include "sbx/switchd.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

typedef struct Switch Switch;

typedef struct {
  Switch *sw;
  int ctl, tap;
  guint ctl_src, tap_src;
  gboolean joined, left; /* left: its sandbox's network namespace has gone */
  guint32 addr;          /* host order, 0 until joined */
  guint8 mac[6];
  char **names;
  SbxNetPolicy policy;
  GArray *forwards; /* SbxPortForward bound on the uplink */
  /* UDP flows a client opened through one of those forwards: guest port <<
   * 16 | the gateway's port -> when last seen (monotonic us). Only these
   * answers may go back to the gateway (the host's loopback). */
  GHashTable *udp_flows;
  SbxNetLog log;     /* --net-log: the file sbx sent, else fd -1 */
  SbxNetStats stats; /* through the uplink only (--report; "stats") */
} Port;

struct Switch {
  GMainLoop *loop;
  guint32 net, mask;
  guint prefix;
  gboolean internal;
  SbxUplink *up;
  GArray *host_addrs; /* the host's own addresses (SbxNetPolicy.host_addrs) */
  GPtrArray *ports;   /* Port *: every connection, joined or not */
  guint8 *buf;
  gsize buf_size;
  guint idle_src;
};

static const guint8 dns_mac[6] = {0x02, 0x53, 0x42, 0x58, 0x00, 0x02};
static const guint8 broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void mac_of(guint32 addr, guint8 mac[6])
{
  mac[0] = 0x02; /* locally administered, unicast */
  mac[1] = 0x5b;
  sbx_net_wr32(mac + 2, addr);
}

/* -- ports ------------------------------------------------------------ */

static void port_send(Port *p, const guint8 *frame, gsize len)
{
  if (p->tap < 0)
    return;
  /* A full tap queue drops the frame: TCP retransmits, as on a wire. */
  (void)!write(p->tap, frame, len);
}

static Port *port_by_mac(Switch *sw, const guint8 *mac)
{
  for (guint i = 0; i < sw->ports->len; i++) {
    Port *p = sw->ports->pdata[i];
    if (p->joined && p->tap >= 0 && memcmp(p->mac, mac, 6) == 0)
      return p;
  }
  return NULL;
}

static guint32 lookup_name(const char *name, gpointer data)
{
  Switch *sw = data;
  for (guint i = 0; i < sw->ports->len; i++) {
    Port *p = sw->ports->pdata[i];
    for (char **n = p->joined ? p->names : NULL; n && *n; n++)
      if (g_ascii_strcasecmp(*n, name) == 0)
        return p->addr;
  }
  return 0;
}

static void idle_check_later(Switch *sw, guint ms);

static void port_free(Port *p)
{
  Switch *sw = p->sw;
  if (p->ctl_src)
    g_source_remove(p->ctl_src);
  if (p->tap_src)
    g_source_remove(p->tap_src);
  for (guint i = 0; sw->up && p->forwards && i < p->forwards->len; i++)
    sbx_uplink_remove_forward(sw->up, &g_array_index(p->forwards, SbxPortForward, i));
  if (p->joined) {
    g_autofree char *a = sbx_network_address_text(p->addr);
    sbx_debug("switch: port %s left", a);
  }
  if (p->ctl >= 0)
    close(p->ctl);
  if (p->tap >= 0)
    close(p->tap);
  g_strfreev(p->names);
  if (p->forwards)
    g_array_unref(p->forwards);
  g_clear_pointer(&p->udp_flows, g_hash_table_unref);
  if (p->policy.rules)
    g_array_unref(p->policy.rules);
  if (p->log.fd >= 0)
    close(p->log.fd);
  g_hash_table_unref(p->log.seen);
  g_free(p);
}

static void port_remove(Port *p)
{
  Switch *sw = p->sw;
  g_ptr_array_remove(sw->ports, p);
  port_free(p);
  if (sw->ports->len == 0)
    idle_check_later(sw, 0);
}

/* The sandbox's network namespace has gone: its address, names and -p
 * ports are free at once. The connection stays until its sbx closes it, to
 * answer "stats" for the run's report. */
static void port_leave(Port *p)
{
  Switch *sw = p->sw;
  for (guint i = 0; sw->up && p->forwards && i < p->forwards->len; i++)
    sbx_uplink_remove_forward(sw->up, &g_array_index(p->forwards, SbxPortForward, i));
  if (p->forwards)
    g_array_set_size(p->forwards, 0);
  if (p->joined) {
    g_autofree char *a = sbx_network_address_text(p->addr);
    sbx_debug("switch: port %s left", a);
  }
  p->joined = FALSE;
  p->left = TRUE;
  p->addr = 0;
  if (p->tap >= 0)
    close(p->tap);
  p->tap = -1;
}

/* -- frames ----------------------------------------------------------- */

/* An ARP reply from the DNS server's address to the port asking. */
static void arp_reply_dns(Switch *sw, Port *p, const guint8 *req)
{
  guint8 f[42];
  memcpy(f, req + 6, 6);
  memcpy(f + 6, dns_mac, 6);
  sbx_net_wr16(f + 12, 0x0806);
  sbx_net_wr16(f + 14, 1);
  sbx_net_wr16(f + 16, 0x0800);
  f[18] = 6;
  f[19] = 4;
  sbx_net_wr16(f + 20, 2);
  memcpy(f + 22, dns_mac, 6);
  memcpy(f + 28, req + 38, 4); /* the address asked for */
  memcpy(f + 32, req + 22, 10);
  port_send(p, f, sizeof f);
}

/* A DNS query (UDP to the network's resolver, port 53) from p. Names on the
 * network are answered here; others go to libslirp's resolver when p may
 * ask it (its --net-allow lists "dns" or has no list). */
static void dns_query(Switch *sw, Port *p, const guint8 *frame, gsize len, gsize ihl)
{
  const guint8 *ip = frame + 14, *udp = ip + ihl;
  gsize total = (gsize)(ip[2] << 8 | ip[3]);
  if (total < ihl + 8 || total > len - 14)
    return; /* the query is read within the frame only */
  const guint8 *payload = udp + 8;
  gsize plen = total - ihl - 8;
  gboolean allowed = !p->policy.enforce;
  for (guint i = 0; p->policy.enforce && i < p->policy.rules->len; i++)
    allowed |= g_array_index(p->policy.rules, SbxNetRule, i).dns;
  gboolean may_forward = sw->up != NULL && allowed;
  /* --net-log: a name on the network is no egress; another one is, and
   * is refused without "dns" in --net-allow */
  char name[SBX_DNS_NAME_MAX];
  guint16 qtype;
  SbxFrameInfo info = {.new_flow = TRUE,
                       .proto = IPPROTO_UDP,
                       .dst = sw->net + SBX_SWITCH_DNS_HOST,
                       .sport = (guint16)(udp[0] << 8 | udp[1]),
                       .dport = 53,
                       .payload = payload,
                       .payload_len = plen,
                       .to_resolver = TRUE};
  if (sbx_net_dns_query_name(payload, plen, name, &qtype) && !allowed && sw->up &&
      !lookup_name(name, sw))
    info.refused = "not-allowed";
  sbx_netlog_frame(&p->log, &info);
  if (info.refused)
    p->stats.refused++;
  guint8 out[14 + 20 + 8 + 512];
  gsize alen = sbx_switch_dns_answer(payload, plen, lookup_name, sw, !may_forward, out + 42,
                                     sizeof out - 42);
  if (alen == 0) {
    if (may_forward && !(ip[6] & 0x3f) && !ip[7]) {
      p->stats.tx_packets++;
      p->stats.tx_bytes += (guint64)len;
      sbx_uplink_input(sw->up, frame, len);
    }
    return;
  }
  memcpy(out, frame + 6, 6);
  memcpy(out + 6, dns_mac, 6);
  sbx_net_wr16(out + 12, 0x0800);
  guint8 *rip = out + 14, *rudp = rip + 20;
  memset(rip, 0, 20);
  rip[0] = 0x45;
  sbx_net_wr16(rip + 2, (guint)(20 + 8 + alen));
  rip[8] = 64;
  rip[9] = IPPROTO_UDP;
  memcpy(rip + 12, ip + 16, 4);
  memcpy(rip + 16, ip + 12, 4);
  sbx_net_wr16(rip + 10, sbx_net_checksum(rip, 20, 0));
  memcpy(rudp, udp + 2, 2);
  memcpy(rudp + 2, udp, 2);
  sbx_net_wr16(rudp + 4, (guint)(8 + alen));
  sbx_net_wr16(rudp + 6, 0); /* no UDP checksum: allowed over IPv4 */
  port_send(p, out, 42 + alen);
}

/* Anything but UDP port 53 to the resolver's address goes nowhere; as
 * sbx-net does for 10.0.2.3, --net-log records it and --report counts it.
 * (The caller checked the IP header and 8 bytes past it are in the frame.) */
static void resolver_port_refused(Port *p, const guint8 *ip)
{
  const guint8 *l4 = ip + (gsize)(ip[0] & 0x0f) * 4;
  gboolean ports = ip[9] == IPPROTO_TCP || ip[9] == IPPROTO_UDP;
  SbxFrameInfo info = {.new_flow = TRUE,
                       .proto = ip[9],
                       .dst = p->sw->net + SBX_SWITCH_DNS_HOST,
                       .sport = ports ? (guint16)(l4[0] << 8 | l4[1]) : 0,
                       .dport = ports ? (guint16)(l4[2] << 8 | l4[3]) : 0,
                       .refused = "dns-port",
                       .to_resolver = TRUE};
  sbx_netlog_frame(&p->log, &info);
  p->stats.refused++;
}

static void flood(Switch *sw, Port *from, const guint8 *frame, gsize len)
{
  for (guint i = 0; i < sw->ports->len; i++) {
    Port *p = sw->ports->pdata[i];
    if (p != from && p->joined)
      port_send(p, frame, len);
  }
}

/* -p's connections come from the gateway's address (libslirp's side of
 * them): the sandbox's TCP segments other than a connection's first SYN, and
 * UDP answering a flow a client opened through a forwarded UDP port, answer
 * them. A new connection to the gateway is one to the host's loopback, and
 * libslirp finds no socket for a segment that is not part of one it made.
 * UDP has no such state in libslirp (it finds the forward's socket by the
 * sandbox's source port alone and sends to whatever destination the datagram
 * names, from 127.0.0.1): the switch keeps the flows itself. */
#define UDP_FLOW_TIMEOUT_US (240 * G_USEC_PER_SEC) /* libslirp's UDP socket expiry */
#define UDP_FLOWS_MAX       4096

static gboolean udp_forwarded(const Port *p, guint16 guest_port)
{
  for (guint i = 0; p->forwards && i < p->forwards->len; i++) {
    const SbxPortForward *f = &g_array_index(p->forwards, SbxPortForward, i);
    if (f->udp && f->guest_port == guest_port)
      return TRUE;
  }
  return FALSE;
}

static gboolean flow_expired(gpointer key, gpointer value, gpointer now)
{
  (void)key;
  return *(gint64 *)now - *(gint64 *)value > UDP_FLOW_TIMEOUT_US;
}

/* A datagram from the uplink to p: from the gateway to a forwarded UDP port
 * opens (or refreshes) a flow. */
static void note_udp_flow(Port *p, const guint8 *frame, gsize len)
{
  if (len < 14 + 20 || frame[12] != 0x08 || frame[13] != 0x00)
    return;
  const guint8 *ip = frame + 14;
  gsize ihl = (gsize)(ip[0] & 0x0f) * 4;
  if (ip[9] != IPPROTO_UDP || ihl < 20 || len < 14 + ihl + 8 ||
      sbx_net_rd32(ip + 12) != p->sw->net + SBX_SWITCH_GATEWAY_HOST ||
      sbx_net_rd32(ip + 16) != p->addr)
    return;
  const guint8 *udp = ip + ihl;
  guint16 sport = (guint16)(udp[0] << 8 | udp[1]), dport = (guint16)(udp[2] << 8 | udp[3]);
  if (!udp_forwarded(p, dport))
    return;
  gint64 now = g_get_monotonic_time();
  if (g_hash_table_size(p->udp_flows) >= UDP_FLOWS_MAX) {
    g_hash_table_foreach_remove(p->udp_flows, flow_expired, &now);
    if (g_hash_table_size(p->udp_flows) >= UDP_FLOWS_MAX)
      return; /* a flood of clients: the newest go unanswered */
  }
  gint64 *seen = g_new(gint64, 1);
  *seen = now;
  g_hash_table_replace(p->udp_flows, GUINT_TO_POINTER((guint)dport << 16 | sport), seen);
}

static gboolean reply_to_forward(const Port *p, const guint8 *ip, gsize ihl, gsize ip_len)
{
  const guint8 *l4 = ip + ihl;
  if (ip[9] == IPPROTO_TCP)
    return ip_len >= ihl + 14 && !((l4[13] & 0x02) && !(l4[13] & 0x10));
  if (ip[9] != IPPROTO_UDP || ip_len < ihl + 8 || !p->udp_flows)
    return FALSE;
  guint16 sport = (guint16)(l4[0] << 8 | l4[1]), dport = (guint16)(l4[2] << 8 | l4[3]);
  gint64 *seen = g_hash_table_lookup(p->udp_flows, GUINT_TO_POINTER((guint)sport << 16 | dport));
  return seen && g_get_monotonic_time() - *seen <= UDP_FLOW_TIMEOUT_US && udp_forwarded(p, sport);
}

/* To the world: p's policy decides, as sbx-net's does for a lone sandbox.
 * Within the subnet only the gateway is the uplink's (libslirp would take
 * any other address there for one outside). */
static void to_uplink(Switch *sw, Port *p, const guint8 *frame, gsize len)
{
  if (!sw->up)
    return;
  guint16 type = (guint16)(frame[12] << 8 | frame[13]);
  const SbxNetPolicy *policy = &p->policy;
  SbxNetPolicy answering;
  gboolean dhcp = FALSE;
  if (type == 0x0800) {
    const guint8 *ip = frame + 14;
    gsize ihl = (gsize)(ip[0] & 0x0f) * 4;
    guint32 dst = sbx_net_rd32(ip + 16), gw = sw->net + SBX_SWITCH_GATEWAY_HOST;
    if ((dst & sw->mask) == sw->net && dst != gw)
      return;
    /* The gateway is the host's loopback (libslirp's alias): only for a
     * sandbox run with slirp:allow_host_loopback. The policy refuses (and
     * logs, and counts) the others' packets to it as it does 127.0.0.0/8,
     * but for answers to -p's clients. */
    if (dst == gw && !p->policy.host_loopback && reply_to_forward(p, ip, ihl, len - 14)) {
      answering = p->policy;
      answering.loopback_alias = 0;
      policy = &answering;
    }
    /* libslirp's DHCP is off, but no UDP to port 67 goes out either
     * (refused below, where --net-log records it). */
    dhcp =
        ip[9] == IPPROTO_UDP && len >= 14 + ihl + 4 && ((ip + ihl)[2] << 8 | (ip + ihl)[3]) == 67;
  }
  guint8 reply[SBX_NET_REPLY_MAX];
  gsize reply_len = 0;
  SbxFrameInfo info;
  SbxFrameVerdict v = sbx_net_check_frame(policy, frame, len, reply, &reply_len, &info);
  if (dhcp && !info.refused) {
    info.refused = "dhcp";
    v = SBX_FRAME_DROP;
  }
  sbx_netlog_frame(&p->log, &info);
  if (info.refused && info.proto)
    p->stats.refused++;
  switch (v) {
  case SBX_FRAME_PASS:
    p->stats.tx_packets++;
    p->stats.tx_bytes += (guint64)len;
    sbx_uplink_input(sw->up, frame, len);
    break;
  case SBX_FRAME_RESET:
    port_send(p, reply, reply_len);
    break;
  case SBX_FRAME_DROP:
    break;
  }
}

/* One frame from p's tap. Its source MAC and address must be p's own: a
 * sandbox cannot pose as another (root inside may change tap0's MAC and
 * address, and send anything with a raw socket). */
static void from_port(Switch *sw, Port *p, const guint8 *frame, gsize len)
{
  if (len < 14 || memcmp(frame + 6, p->mac, 6) != 0)
    return;
  guint16 type = (guint16)(frame[12] << 8 | frame[13]);
  const guint8 *dst = frame;
  if (type == 0x0806) {
    /* Ethernet/IPv4 ARP; the sender p itself (0.0.0.0 in a probe) */
    if (len < 42 || sbx_net_rd32(frame + 14) != 0x00010800u || frame[18] != 6 || frame[19] != 4 ||
        memcmp(frame + 22, p->mac, 6) != 0 ||
        (sbx_net_rd32(frame + 28) && sbx_net_rd32(frame + 28) != p->addr))
      return;
    guint32 target = sbx_net_rd32(frame + 38);
    if (frame[21] == 1 && target == sw->net + SBX_SWITCH_DNS_HOST) {
      arp_reply_dns(sw, p, frame);
      return;
    }
  } else if (type == 0x0800) {
    const guint8 *ip = frame + 14;
    if (len < 34 || (ip[0] >> 4) != 4 || sbx_net_rd32(ip + 12) != p->addr)
      return;
    gsize ihl = (gsize)(ip[0] & 0x0f) * 4;
    if (ihl < 20 || len < 14 + ihl + 8)
      return;
    if (sbx_net_rd32(ip + 16) == sw->net + SBX_SWITCH_DNS_HOST) {
      const guint8 *udp = ip + ihl;
      if (ip[9] == IPPROTO_UDP && (udp[2] << 8 | udp[3]) == 53)
        dns_query(sw, p, frame, len, ihl);
      else
        resolver_port_refused(p, ip);
      return;
    }
  } else {
    return; /* IPv6 and the rest: the network is IPv4 */
  }
  if (dst[0] & 1) { /* broadcast, multicast */
    flood(sw, p, frame, len);
    if (type == 0x0806 && memcmp(dst, broadcast, 6) == 0)
      to_uplink(sw, p, frame, len);
    return;
  }
  Port *to = port_by_mac(sw, dst);
  if (to)
    port_send(to, frame, len);
  else
    to_uplink(sw, p, frame, len);
}

/* Frames from libslirp: to the port with that MAC, broadcasts to all. */
static void from_uplink(const guint8 *frame, gsize len, gpointer data)
{
  Switch *sw = data;
  if (len < 14)
    return;
  if (frame[0] & 1) {
    for (guint i = 0; i < sw->ports->len; i++) {
      Port *p = sw->ports->pdata[i];
      if (p->joined && p->tap >= 0) {
        p->stats.rx_packets++;
        p->stats.rx_bytes += (guint64)len;
      }
    }
    flood(sw, NULL, frame, len);
    return;
  }
  Port *to = port_by_mac(sw, frame);
  if (to) {
    note_udp_flow(to, frame, len);
    to->stats.rx_packets++;
    to->stats.rx_bytes += (guint64)len;
    port_send(to, frame, len);
  }
}

static gboolean on_tap(gint fd, GIOCondition cond, gpointer data)
{
  Port *p = data;
  Switch *sw = p->sw;
  for (int i = 0; i < 64; i++) {
    ssize_t r = read(fd, sw->buf, sw->buf_size);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == EAGAIN)
      return G_SOURCE_CONTINUE;
    if (r <= 0) {
      /* the sandbox's network namespace is gone */
      p->tap_src = 0;
      port_leave(p);
      return G_SOURCE_REMOVE;
    }
    from_port(sw, p, sw->buf, (gsize)r);
  }
  return G_SOURCE_CONTINUE;
}

/* -- joining ---------------------------------------------------------- */

/* The lowest free address from .10 on: a sandbox's address is its own for
 * as long as its port lives, and free again the moment it goes. */
static guint32 allocate(Switch *sw)
{
  guint32 last = sw->net + (~sw->mask) - 1; /* below the broadcast address */
  for (guint32 a = sw->net + SBX_SWITCH_FIRST_HOST; a <= last; a++) {
    gboolean used = FALSE;
    for (guint i = 0; i < sw->ports->len && !used; i++)
      used = ((Port *)sw->ports->pdata[i])->addr == a;
    if (!used)
      return a;
  }
  return 0;
}

static gboolean join(Switch *sw, Port *p, const char *text, GError **err)
{
  if (p->joined || p->left)
    return sbx_fail(err, SBX_ERROR_USAGE, "network: this connection has joined already");
  SbxSwitchJoin j;
  g_clear_pointer(&p->names, g_strfreev);
  if (!sbx_switch_join_parse(text, &j, err))
    return FALSE;
  p->names = g_steal_pointer(&j.names);
  for (char **n = p->names; *n; n++)
    if (lookup_name(*n, sw)) {
      sbx_switch_join_clear(&j);
      return sbx_fail(err, SBX_ERROR_FAILED,
                      "network: the name %s is taken by another sandbox on it", *n);
    }
  if (sw->internal && j.publish[0]) {
    sbx_switch_join_clear(&j);
    return sbx_fail(err, SBX_ERROR_USAGE, "-p: the network is internal (it has no way out)");
  }
  if (!(p->addr = allocate(sw))) {
    sbx_switch_join_clear(&j);
    return sbx_fail(err, SBX_ERROR_FAILED, "network: no free address left in its subnet");
  }
  mac_of(p->addr, p->mac);
  p->policy.rules = g_array_new(FALSE, FALSE, sizeof(SbxNetRule));
  p->policy.enforce = j.allow[0] != NULL;
  p->policy.host_loopback = j.host_loopback;
  if (sw->up)
    p->policy.loopback_alias = sw->net + SBX_SWITCH_GATEWAY_HOST;
  p->policy.host_addresses = !j.refuse_host_addresses;
  p->policy.host_addrs = sw->host_addrs; /* the switch's: never freed with the port */
  for (char **a = j.allow; *a; a++) {
    SbxNetRule r;
    sbx_net_rule_parse(*a, &r, NULL); /* checked by sbx_switch_join_parse */
    g_array_append_val(p->policy.rules, r);
  }
  p->forwards = g_array_new(FALSE, FALSE, sizeof(SbxPortForward));
  p->udp_flows = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  gboolean ok = TRUE;
  for (char **f = j.publish; ok && *f; f++) {
    SbxPortForward pf;
    sbx_port_forward_parse(*f, &pf, NULL);
    if ((ok = sbx_uplink_add_forward(sw->up, &pf, p->addr, err)))
      g_array_append_val(p->forwards, pf);
  }
  sbx_switch_join_clear(&j);
  if (!ok) {
    p->addr = 0;
    return FALSE;
  }
  p->joined = TRUE;
  return TRUE;
}

/* A tap fd, a character device of /dev/net/tun's kind (10:200). */
static gboolean take_tap(Switch *sw, Port *p, int fd, GError **err)
{
  struct stat st;
  if (!p->joined || p->tap >= 0 || fd < 0 || fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
      major(st.st_rdev) != 10 || minor(st.st_rdev) != 200)
    return sbx_fail(err, SBX_ERROR_USAGE, "network: expected a tap device after joining");
  p->tap = fd;
  p->tap_src = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_tap, p);
  g_autofree char *a = sbx_network_address_text(p->addr);
  sbx_debug("switch: port %s (%s) up", a, p->names[0] ? p->names[0] : "no name");
  return TRUE;
}

/* --net-log's file (a regular file sbx opened), before the tap. */
static gboolean take_log(Port *p, int fd, GError **err)
{
  struct stat st;
  if (!p->joined || p->tap >= 0 || p->log.fd >= 0 || fd < 0 || fstat(fd, &st) < 0 ||
      !S_ISREG(st.st_mode))
    return sbx_fail(err, SBX_ERROR_USAGE, "network: expected --net-log's file after joining");
  p->log.fd = fd;
  return TRUE;
}

/* "list": one line per sandbox: address, MAC, names. A sandbox whose sbx
 * has just exited is not listed even if its hang-up is not handled yet: the
 * kernel hung the socket up when it closed, so `sbx network rm` right after
 * `sbx stop` finds the network free. */
static char *list_ports(Switch *sw, Port *asking)
{
  for (guint i = sw->ports->len; i-- > 0;) {
    Port *p = sw->ports->pdata[i];
    struct pollfd pfd = {.fd = p->ctl, .events = POLLIN};
    if (p != asking && poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR)))
      port_remove(p);
  }
  GString *out = g_string_new(NULL);
  for (guint i = 0; i < sw->ports->len; i++) {
    Port *p = sw->ports->pdata[i];
    if (!p->joined)
      continue;
    g_autofree char *a = sbx_network_address_text(p->addr);
    g_autofree char *names = g_strjoinv(",", p->names);
    g_string_append_printf(out, "%s %02x:%02x:%02x:%02x:%02x:%02x %s\n", a, p->mac[0], p->mac[1],
                           p->mac[2], p->mac[3], p->mac[4], p->mac[5], names);
  }
  return g_string_free(out, FALSE);
}

static gboolean on_ctl(gint fd, GIOCondition cond, gpointer data)
{
  Port *p = data;
  Switch *sw = p->sw;
  g_autofree char *req = NULL;
  g_autoptr(GError) err = NULL;
  int passed = -1;
  if (!sbx_sync_recv_fd(fd, &req, &passed, "sbx", &err)) {
    p->ctl_src = 0;
    port_remove(p); /* sbx has gone: so has its sandbox */
    return G_SOURCE_REMOVE;
  }
  gboolean ok;
  g_autofree char *reply = NULL;
  if (req && g_str_has_prefix(req, "join\n")) {
    ok = join(sw, p, req + 5, &err);
    if (ok) {
      SbxSwitchLease l = {.address = p->addr,
                          .gateway = sw->up ? sw->net + SBX_SWITCH_GATEWAY_HOST : 0,
                          .dns = sw->net + SBX_SWITCH_DNS_HOST,
                          .prefix = sw->prefix};
      memcpy(l.mac, p->mac, 6);
      reply = sbx_switch_lease_format(&l);
    }
  } else if (g_strcmp0(req, "tap") == 0) {
    ok = take_tap(sw, p, passed, &err);
    if (ok)
      passed = -1;
  } else if (g_strcmp0(req, "log") == 0) {
    ok = take_log(p, passed, &err);
    if (ok)
      passed = -1;
  } else if (g_strcmp0(req, "stats") == 0) {
    ok = TRUE; /* egress through the uplink, as sbx-net counts it */
    reply = sbx_net_stats_format(&p->stats);
  } else if (g_strcmp0(req, "list") == 0) {
    ok = TRUE;
    reply = list_ports(sw, p);
  } else {
    ok = sbx_fail(&err, SBX_ERROR_USAGE, "network: unknown request");
  }
  if (passed >= 0)
    close(passed);
  if (ok) {
    sbx_sync_send_ok(fd, reply ? reply : "");
    return G_SOURCE_CONTINUE;
  }
  /* A refused request ends the connection (and what it had bound). */
  sbx_sync_send_error(fd, err);
  p->ctl_src = 0;
  port_remove(p);
  return G_SOURCE_REMOVE;
}

/* A new connection: only from this user (SO_PEERCRED; the directory is
 * 0700 too). Seen from the switch's own user namespace, the user is 0. */
static gboolean on_accept(gint fd, GIOCondition cond, gpointer data)
{
  Switch *sw = data;
  int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (c < 0 || getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != getuid() ||
      sw->ports->len >= SBX_SWITCH_PORTS_MAX) {
    if (c >= 0)
      close(c);
    /* idle_check may have left this connection to us: no port came of it */
    if (sw->ports->len == 0)
      idle_check_later(sw, 0);
    return G_SOURCE_CONTINUE;
  }
  Port *p = g_new0(Port, 1);
  p->sw = sw;
  p->ctl = c;
  p->tap = -1;
  sbx_netlog_init(&p->log, -1);
  p->ctl_src = g_unix_fd_add(c, G_IO_IN | G_IO_HUP | G_IO_ERR, on_ctl, p);
  g_ptr_array_add(sw->ports, p);
  return G_SOURCE_CONTINUE;
}

/* -- lifetime --------------------------------------------------------- */

/* No port left: exit, unless someone is joining. sbx takes the network's
 * lock to connect (and to start a switch when none answers), so with the
 * lock in hand and no connection waiting, none can come to this switch:
 * the next sbx finds the socket refusing and starts a new one. */
static gboolean idle_check(gpointer data)
{
  Switch *sw = data;
  sw->idle_src = 0;
  if (sw->ports->len)
    return G_SOURCE_REMOVE;
  if (flock(SBX_SWITCH_FD_LOCK, LOCK_EX | LOCK_NB) < 0) {
    idle_check_later(sw, 50);
    return G_SOURCE_REMOVE;
  }
  struct pollfd pfd = {.fd = SBX_SWITCH_FD_LISTEN, .events = POLLIN};
  if (poll(&pfd, 1, 0) > 0) {
    flock(SBX_SWITCH_FD_LOCK, LOCK_UN);
    return G_SOURCE_REMOVE; /* on_accept takes it */
  }
  sbx_debug("switch: no sandbox left, exiting");
  /* Straight out, the lock still held: see sbx-net's main. */
  _exit(0);
}

static void idle_check_later(Switch *sw, guint ms)
{
  if (!sw->idle_src)
    sw->idle_src = g_timeout_add(ms, idle_check, sw);
}

static char *option_network, *option_log_level, *option_resolv;
static gboolean option_internal;
static GOptionEntry entries[] = {
    {"subnet", 0, 0, G_OPTION_ARG_STRING, &option_network, "The network's subnet", "CIDR"},
    {"internal", 0, 0, G_OPTION_ARG_NONE, &option_internal, "No uplink", NULL},
    {"resolv-conf", 0, 0, G_OPTION_ARG_FILENAME, &option_resolv,
     "Resolvers (default /etc/resolv.conf)", "FILE"},
    {"log-level", 0, 0, G_OPTION_ARG_STRING, &option_log_level, "Log level", "LEVEL"},
    {NULL}};

static gboolean setup(Switch *sw, GError **err)
{
  if (!sbx_network_parse_subnet(option_network, &sw->net, &sw->prefix, err))
    return FALSE;
  sw->mask = 0xffffffffu << (32 - sw->prefix);
  sw->internal = option_internal;
  sw->ports = g_ptr_array_new();
  sw->buf_size = SBX_SWITCH_MTU + 64;
  sw->buf = g_malloc(sw->buf_size);
  g_autofree char *resolv = NULL;
  if (sw->internal ||
      !g_file_get_contents(option_resolv ? option_resolv : "/etc/resolv.conf", &resolv, NULL, NULL))
    resolv = g_strdup("");
  /* As sbx-net: the host's own addresses, before confinement (no netlink
   * socket after it), for allow_host_addresses=false and --net-allow. */
  if (!sw->internal && !(sw->host_addrs = sbx_net_host_addresses(err)))
    return FALSE;
  if (!sbx_switch_confine(resolv, SBX_SWITCH_FD_LOCK, err))
    return FALSE;
  sw->loop = g_main_loop_new(NULL, FALSE);
  if (!sw->internal && !(sw->up = sbx_uplink_new(sw->net, sw->prefix, from_uplink, sw, err)))
    return FALSE;
  g_unix_fd_add(SBX_SWITCH_FD_LISTEN, G_IO_IN, on_accept, sw);
  idle_check_later(sw, 1000);
  return TRUE;
}

int main(int argc, char **argv)
{
  /* A sandbox's sbx going away mid-message is its port ending, not ours. */
  signal(SIGPIPE, SIG_IGN);
  g_set_prgname("sbx-switch");
  g_autoptr(GError) err = NULL;
  g_autoptr(GOptionContext) ctx = g_option_context_new("");
  g_option_context_add_main_entries(ctx, entries, NULL);
  Switch sw = {0};
  if (!g_option_context_parse(ctx, &argc, &argv, &err) ||
      (option_log_level && !sbx_log_set_level(option_log_level)) || !setup(&sw, &err)) {
    if (!err)
      sbx_fail(&err, SBX_ERROR_USAGE, "network switch: bad options");
    g_printerr("sbx-switch: %s\n", err->message);
    return SBX_EXIT_FAILED;
  }
  g_autofree char *subnet = sbx_network_subnet_text(sw.net, sw.prefix);
  sbx_debug("switch: %s%s running", subnet, sw.internal ? " (internal)" : "");
  g_main_loop_run(sw.loop);
  _exit(0);
}
