/* Egress policy: parse --net-allow and -p, and judge the guest's frames.
 *
 * Only the start of a flow is judged (a TCP SYN, any UDP datagram, any ICMP
 * packet): libslirp opens no socket for a flow whose first packet never
 * reaches it. A refused TCP connection gets a RST, so the program fails at
 * once instead of waiting for a timeout; refused UDP and ICMP are dropped.
 *
 * Whatever --net-allow says, a few destinations are libslirp's own and are
 * judged by what libslirp does with them (libslirp 4.7, udp.c, socket.c):
 *  - UDP to port 67 of 10.0.2.2 or 255.255.255.255 is answered by its DHCP
 *    server and goes nowhere; to any other address it is ordinary UDP.
 *  - 10.0.2.3 stands for the host's resolver. libslirp 4.7 forwards only
 *    its port 53 (measured: 10.0.2.3:2222 with a resolver on a host address
 *    is unreachable); the policy refuses every other port itself, so that
 *    holds whatever libslirp version, and --net-log says so.
 *  - ARP is answered by libslirp; no other Ethernet type is of use to it
 *    (IPv6 is not offered), nor any IP protocol but TCP, UDP and ICMP. */
#include "sbx/net.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <string.h>

static gboolean parse_port(const char *s, guint16 *out)
{
  guint64 v;
  if (!g_ascii_string_to_unsigned(s, 10, 1, 65535, &v, NULL))
    return FALSE;
  *out = (guint16)v;
  return TRUE;
}

static gboolean split_proto(char *spec, int *proto)
{
  char *slash = strrchr(spec, '/');
  *proto = 0;
  if (slash &&
      (g_ascii_strcasecmp(slash + 1, "tcp") == 0 || g_ascii_strcasecmp(slash + 1, "udp") == 0)) {
    *proto = g_ascii_strcasecmp(slash + 1, "tcp") == 0 ? IPPROTO_TCP : IPPROTO_UDP;
    *slash = '\0';
    return TRUE;
  }
  return FALSE;
}

gboolean sbx_port_forward_parse(const char *spec, SbxPortForward *out, GError **err)
{
  g_autofree char *s = g_strdup(spec);
  int proto;
  split_proto(s, &proto);
  memset(out, 0, sizeof *out);
  out->udp = proto == IPPROTO_UDP;
  out->host_ip.s_addr = htonl(INADDR_ANY);
  g_auto(GStrv) parts = g_strsplit(s, ":", -1);
  guint n = g_strv_length(parts);
  if (n < 2 || n > 3 || (n == 3 && inet_pton(AF_INET, parts[0], &out->host_ip) != 1) ||
      !parse_port(parts[n - 2], &out->host_port) || !parse_port(parts[n - 1], &out->guest_port))
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "-p %s: expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]", spec);
  return TRUE;
}

gboolean sbx_net_rule_parse(const char *spec, SbxNetRule *out, GError **err)
{
  memset(out, 0, sizeof *out);
  out->port_lo = 0;
  out->port_hi = 65535;
  if (g_ascii_strcasecmp(spec, "dns") == 0) {
    out->dns = TRUE;
    return TRUE;
  }
  g_autofree char *s = g_strdup(spec);
  split_proto(s, &out->proto);
  char *colon = strchr(s, ':');
  if (colon) {
    *colon = '\0';
    g_auto(GStrv) range = g_strsplit(colon + 1, "-", 2);
    if (!parse_port(range[0], &out->port_lo) ||
        !parse_port(range[1] ? range[1] : range[0], &out->port_hi) || out->port_lo > out->port_hi)
      return sbx_fail(err, SBX_ERROR_USAGE, "--net-allow %s: bad port or port range", spec);
  }
  char *slash = strchr(s, '/');
  guint64 bits = 32;
  if (slash) {
    *slash = '\0';
    if (!g_ascii_string_to_unsigned(slash + 1, 10, 0, 32, &bits, NULL))
      return sbx_fail(err, SBX_ERROR_USAGE, "--net-allow %s: bad prefix length", spec);
  }
  struct in_addr a;
  if (inet_pton(AF_INET, s, &a) != 1)
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "--net-allow %s: expected dns or CIDR[:PORT[-PORT]][/tcp|/udp] (IPv4)", spec);
  out->mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
  out->net = ntohl(a.s_addr) & out->mask;
  return TRUE;
}

gboolean sbx_net_policy_allows(const SbxNetPolicy *p, guint32 dst, guint16 port, int proto)
{
  if (!p->enforce)
    return TRUE;
  gboolean to_dns = dst == SBX_NET_DNS_ADDR;
  for (guint i = 0; p->rules && i < p->rules->len; i++) {
    const SbxNetRule *r = &g_array_index(p->rules, SbxNetRule, i);
    if (r->dns) {
      if (to_dns && port == 53 && proto != IPPROTO_ICMP)
        return TRUE;
      continue;
    }
    if (to_dns)
      continue; /* the virtual resolver is governed by "dns" only */
    if ((dst & r->mask) == r->net && port >= r->port_lo && port <= r->port_hi &&
        (r->proto == 0 || r->proto == proto))
      return TRUE;
  }
  return FALSE;
}

static gboolean is_host_address(const SbxNetPolicy *p, guint32 dst)
{
  for (guint i = 0; p->host_addrs && i < p->host_addrs->len; i++)
    if (g_array_index(p->host_addrs, guint32, i) == dst)
      return TRUE;
  return FALSE;
}

/* A rule naming exactly this address (a /32) lets a host address through. */
static gboolean listed_exactly(const SbxNetPolicy *p, guint32 dst, guint16 port, int proto)
{
  for (guint i = 0; p->rules && i < p->rules->len; i++) {
    const SbxNetRule *r = &g_array_index(p->rules, SbxNetRule, i);
    if (!r->dns && r->mask == 0xffffffffu && r->net == dst && port >= r->port_lo &&
        port <= r->port_hi && (r->proto == 0 || r->proto == proto))
      return TRUE;
  }
  return FALSE;
}

/* Why a new flow to dst:port may not start, or NULL. ICMP has port 0. */
static const char *judge_flow(const SbxNetPolicy *p, guint32 dst, guint16 port, int proto)
{
  /* libslirp's DHCP server answers these itself: nothing leaves. */
  if (proto == IPPROTO_UDP && port == 67 && (dst == SBX_NET_GATEWAY_ADDR || dst == 0xffffffffu))
    return NULL;
  if (dst == SBX_NET_DNS_ADDR) {
    if (proto != IPPROTO_ICMP && port != 53)
      return "dns-port";
    return sbx_net_policy_allows(p, dst, port, proto) ? NULL : "not-allowed";
  }
  if (is_host_address(p, dst)) {
    if (p->enforce && listed_exactly(p, dst, port, proto))
      return NULL;
    if (!p->host_addresses)
      return "host-address";
  }
  return sbx_net_policy_allows(p, dst, port, proto) ? NULL : "not-allowed";
}

/* Why a TCP SYN to dst:port would be refused (sbx_net_check_frame's
 * judgement of it), or NULL. */
const char *sbx_net_policy_judge_tcp(const SbxNetPolicy *p, guint32 dst, guint16 port)
{
  if (!p->host_loopback &&
      ((dst >> 24) == 127 || (dst >> 24) == 0 || (p->loopback_alias && dst == p->loopback_alias)))
    return "host-loopback";
  return judge_flow(p, dst, port, IPPROTO_TCP);
}

GArray *sbx_net_host_addresses(GError **err)
{
  struct ifaddrs *ifa;
  if (getifaddrs(&ifa) < 0) {
    sbx_fail_errno(err, "network helper: list the host's addresses");
    return NULL;
  }
  GArray *out = g_array_new(FALSE, FALSE, sizeof(guint32));
  for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
      continue;
    guint32 a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
    if ((a >> 24) == 127)
      continue;
    g_array_append_val(out, a);
    char text[INET_ADDRSTRLEN];
    sbx_debug("network helper: host address %s (%s)",
              inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, text, sizeof text),
              i->ifa_name);
  }
  freeifaddrs(ifa);
  return out;
}

gboolean sbx_net_policy_init(SbxNetPolicy *p, char **allow, gboolean host_loopback,
                             gboolean refuse_host_addresses, GError **err)
{
  memset(p, 0, sizeof *p);
  p->rules = g_array_new(FALSE, FALSE, sizeof(SbxNetRule));
  p->enforce = allow != NULL;
  p->host_loopback = host_loopback;
  p->host_addresses = !refuse_host_addresses;
  for (char **a = allow; a && *a; a++) {
    SbxNetRule r;
    if (!sbx_net_rule_parse(*a, &r, err))
      return FALSE;
    g_array_append_val(p->rules, r);
  }
  /* The host's own addresses are asked about only to refuse them: no
   * netlink dump for a helper that lets them through (the default without
   * --net-allow), ~0.3 ms of its start. */
  if (!refuse_host_addresses) {
    p->host_addrs = g_array_new(FALSE, FALSE, sizeof(guint32));
    return TRUE;
  }
  return (p->host_addrs = sbx_net_host_addresses(err)) != NULL;
}

guint16 sbx_net_checksum(const guint8 *data, gsize len, guint32 sum)
{
  for (gsize i = 0; i + 1 < len; i += 2)
    sum += (guint32)(data[i] << 8 | data[i + 1]);
  if (len & 1)
    sum += (guint32)(data[len - 1] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (guint16)~sum;
}

/* An RST|ACK answering the SYN in `frame` (Ethernet + IPv4 + TCP). */
static gsize make_rst(const guint8 *frame, gsize ihl, guint8 *out)
{
  const guint8 *ip = frame + 14, *tcp = ip + ihl;
  memcpy(out, frame + 6, 6); /* to the guest's MAC */
  memcpy(out + 6, frame, 6); /* from the gateway's */
  out[12] = 0x08;
  out[13] = 0x00;
  guint8 *rip = out + 14, *rtcp = rip + 20;
  memset(rip, 0, 40);
  rip[0] = 0x45;
  sbx_net_wr16(rip + 2, 40);
  rip[8] = 64;
  rip[9] = IPPROTO_TCP;
  memcpy(rip + 12, ip + 16, 4); /* from the address the guest wanted */
  memcpy(rip + 16, ip + 12, 4);
  sbx_net_wr16(rip + 10, sbx_net_checksum(rip, 20, 0));
  memcpy(rtcp, tcp + 2, 2); /* ports swapped */
  memcpy(rtcp + 2, tcp, 2);
  sbx_net_wr32(rtcp + 8, sbx_net_rd32(tcp + 4) + 1); /* ack = their seq + 1 */
  rtcp[12] = 5 << 4;
  rtcp[13] = 0x14; /* RST|ACK */
  guint32 pseudo = 0;
  for (int i = 0; i < 8; i += 2)
    pseudo += (guint32)(rip[12 + i] << 8 | rip[13 + i]);
  pseudo += IPPROTO_TCP + 20;
  sbx_net_wr16(rtcp + 16, sbx_net_checksum(rtcp, 20, pseudo));
  return 14 + 40;
}

static SbxFrameVerdict refuse(SbxFrameInfo *info, const char *why)
{
  info->refused = why;
  return SBX_FRAME_DROP;
}

/* The TCP, UDP or ICMP header of an unfragmented packet into info. */
static gboolean read_l4(const guint8 *l4, gsize l4_len, SbxFrameInfo *info, gboolean *syn)
{
  *syn = FALSE;
  if (info->proto == IPPROTO_TCP) {
    if (l4_len < 20)
      return FALSE;
    info->sport = (guint16)(l4[0] << 8 | l4[1]);
    info->dport = (guint16)(l4[2] << 8 | l4[3]);
    *syn = (l4[13] & 0x02) && !(l4[13] & 0x10);
    info->new_flow = *syn;
  } else if (info->proto == IPPROTO_UDP) {
    if (l4_len < 8)
      return FALSE;
    info->sport = (guint16)(l4[0] << 8 | l4[1]);
    info->dport = (guint16)(l4[2] << 8 | l4[3]);
    info->payload = l4 + 8;
    info->payload_len = l4_len - 8;
    info->new_flow = TRUE;
  } else {
    if (l4_len < 8)
      return FALSE;
    info->new_flow = l4[0] == 8; /* echo request: the only type libslirp sends on */
  }
  return TRUE;
}

SbxFrameVerdict sbx_net_check_frame(const SbxNetPolicy *p, const guint8 *frame, gsize len,
                                    guint8 *reply, gsize *reply_len, SbxFrameInfo *info)
{
  SbxFrameInfo scratch;
  if (!info)
    info = &scratch;
  memset(info, 0, sizeof *info);
  if (len < 14)
    return refuse(info, "malformed");
  guint16 type = (guint16)(frame[12] << 8 | frame[13]);
  if (type == 0x0806)
    return SBX_FRAME_PASS; /* ARP: libslirp answers for its addresses */
  if (type != 0x0800)
    return refuse(info, "protocol"); /* IPv6 is not offered: nothing of it leaves */
  const guint8 *ip = frame + 14;
  if (len < 14 + 20 || (ip[0] >> 4) != 4)
    return refuse(info, "malformed");
  gsize ihl = (gsize)(ip[0] & 0x0f) * 4;
  gsize total = (gsize)(ip[2] << 8 | ip[3]);
  if (ihl < 20 || total < ihl || len < 14 + total)
    return refuse(info, "malformed");
  info->dst = sbx_net_rd32(ip + 16);
  info->proto = ip[9];
  guint32 dst = info->dst;
  gboolean fragment = (ip[6] & 0x20) || (ip[6] & 0x1f) || ip[7];
  gboolean syn;
  /* libslirp's disable_host_loopback only covers the 10.0.2.2 alias: a raw
   * packet (CAP_NET_RAW) addressed to 127.0.0.1 itself would reach the
   * host's loopback. 0.0.0.0/8 means "this host" too. (The ports, where
   * there are any, for --net-log.) */
  if (!p->host_loopback &&
      ((dst >> 24) == 127 || (dst >> 24) == 0 || (p->loopback_alias && dst == p->loopback_alias))) {
    if (!fragment && !read_l4(ip + ihl, total - ihl, info, &syn))
      info->sport = info->dport = 0;
    return refuse(info, "host-loopback");
  }
  if (info->proto != IPPROTO_TCP && info->proto != IPPROTO_UDP && info->proto != IPPROTO_ICMP)
    return refuse(info, "protocol");
  /* A fragment's ports and flags may be anywhere (a later one may even
   * overwrite the first): with an allowlist, and towards 10.0.2.3 whose
   * port decides everything, no fragmented packet goes out (ordinary TCP
   * and UDP fit the MTU; DNS queries are small). */
  if (fragment) {
    if (p->enforce || dst == SBX_NET_DNS_ADDR)
      return refuse(info, "fragment");
    if (is_host_address(p, dst) && !p->host_addresses)
      return refuse(info, "host-address");
    return SBX_FRAME_PASS;
  }
  if (!read_l4(ip + ihl, total - ihl, info, &syn))
    return refuse(info, "malformed");
  /* Not the start of a flow (an established TCP connection's packets, ICMP
   * replies): libslirp has no socket to hand them to unless one was allowed. */
  if (info->proto == IPPROTO_TCP && !syn)
    return SBX_FRAME_PASS;
  const char *why = judge_flow(p, dst, info->dport, info->proto);
  if (!why)
    return SBX_FRAME_PASS;
  info->refused = why;
  if (info->proto != IPPROTO_TCP)
    return SBX_FRAME_DROP;
  *reply_len = make_rst(frame, ihl, reply);
  return SBX_FRAME_RESET;
}

/* One label of a DNS name: its bytes, a dot or backslash escaped. */
static gsize append_label(char *out, gsize at, const guint8 *label, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    if (label[i] == '.' || label[i] == '\\')
      out[at++] = '\\';
    out[at++] = (char)label[i];
  }
  return at;
}

gboolean sbx_net_dns_query_name(const guint8 *payload, gsize len, char *out, guint16 *qtype)
{
  out[0] = '\0';
  /* header: id, flags (QR must be 0: a query), qdcount >= 1 */
  if (len < 12 || (payload[2] & 0x80) || (payload[4] << 8 | payload[5]) == 0)
    return FALSE;
  gsize pos = 12, at = 0, wire = 0;
  for (;;) {
    if (pos >= len)
      return FALSE;
    guint8 n = payload[pos++];
    if (n == 0)
      break;
    /* compression pointers (0xc0) and the reserved label types have no
     * place in a query's first name */
    if (n > 63 || pos + n > len)
      return FALSE;
    wire += 1u + n;
    if (wire > 254) /* RFC 1035: 255 octets with the root's */
      return FALSE;
    if (at)
      out[at++] = '.';
    at = append_label(out, at, payload + pos, n);
    pos += n;
  }
  if (pos + 4 > len) /* qtype, qclass */
    return FALSE;
  *qtype = (guint16)(payload[pos] << 8 | payload[pos + 1]);
  if (!at)
    out[at++] = '.';
  out[at] = '\0';
  return TRUE;
}

#define STATS_FRAMES(X) X(tx_packets) X(tx_bytes) X(rx_packets) X(rx_bytes) X(refused)
#define STATS_RELAY(X)  X(relayed) X(relayed_tx_bytes) X(relayed_rx_bytes)
#define STATS_FIELDS(X) STATS_FRAMES(X) STATS_RELAY(X)

char *sbx_net_stats_format(const SbxNetStats *s)
{
  GString *out = g_string_new(NULL);
#define FORMAT(f)                                                                                  \
  g_string_append_printf(out, "%s" #f "=%" G_GUINT64_FORMAT, out->len ? " " : "", s->f);
  STATS_FIELDS(FORMAT)
#undef FORMAT
  return g_string_free(out, FALSE);
}

gboolean sbx_net_stats_parse(const char *text, SbxNetStats *out)
{
  memset(out, 0, sizeof *out);
  g_auto(GStrv) fields = g_strsplit(text, " ", -1);
  guint seen = 0;
  for (char **f = fields; *f; f++) {
    char *eq = strchr(*f, '=');
    guint64 v;
    if (!eq || !g_ascii_string_to_unsigned(eq + 1, 10, 0, G_MAXUINT64, &v, NULL))
      return FALSE;
    *eq = '\0';
#define PARSE(name)                                                                                \
  if (strcmp(*f, #name) == 0) {                                                                    \
    out->name = v;                                                                                 \
    seen++;                                                                                        \
  }
    STATS_FIELDS(PARSE)
#undef PARSE
  }
  return seen == 8;
}
