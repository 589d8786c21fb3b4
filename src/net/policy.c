/* Egress policy: parse --net-allow and -p, and judge the guest's frames.
 *
 * Only the start of a flow is judged (a TCP SYN, any UDP datagram): libslirp
 * opens no socket for a flow whose first packet never reaches it. A refused
 * TCP connection gets a RST, so the program fails at once instead of waiting
 * for a timeout; refused UDP is dropped. */
#include "sbx/net.h"
#include "sbx/util.h"

#include <arpa/inet.h>
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
  if (slash && (g_ascii_strcasecmp(slash + 1, "tcp") == 0 || g_ascii_strcasecmp(slash + 1, "udp") == 0)) {
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
  gboolean to_dns = dst == 0x0a000203; /* 10.0.2.3 */
  for (guint i = 0; p->rules && i < p->rules->len; i++) {
    const SbxNetRule *r = &g_array_index(p->rules, SbxNetRule, i);
    if (r->dns) {
      if (to_dns && port == 53)
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

static guint16 checksum(const guint8 *data, gsize len, guint32 sum)
{
  for (gsize i = 0; i + 1 < len; i += 2)
    sum += (guint32)(data[i] << 8 | data[i + 1]);
  if (len & 1)
    sum += (guint32)(data[len - 1] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (guint16)~sum;
}

static guint32 rd32(const guint8 *p)
{
  return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

static void wr16(guint8 *p, guint16 v)
{
  p[0] = (guint8)(v >> 8);
  p[1] = (guint8)v;
}

static void wr32(guint8 *p, guint32 v)
{
  p[0] = (guint8)(v >> 24);
  p[1] = (guint8)(v >> 16);
  p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}

/* An RST|ACK answering the SYN in `frame` (Ethernet + IPv4 + TCP). */
static gsize make_rst(const guint8 *frame, gsize ihl, guint8 *out)
{
  const guint8 *ip = frame + 14, *tcp = ip + ihl;
  memcpy(out, frame + 6, 6);   /* to the guest's MAC */
  memcpy(out + 6, frame, 6);   /* from the gateway's */
  out[12] = 0x08;
  out[13] = 0x00;
  guint8 *rip = out + 14, *rtcp = rip + 20;
  memset(rip, 0, 40);
  rip[0] = 0x45;
  wr16(rip + 2, 40);
  rip[8] = 64;
  rip[9] = IPPROTO_TCP;
  memcpy(rip + 12, ip + 16, 4); /* from the address the guest wanted */
  memcpy(rip + 16, ip + 12, 4);
  wr16(rip + 10, checksum(rip, 20, 0));
  memcpy(rtcp, tcp + 2, 2);     /* ports swapped */
  memcpy(rtcp + 2, tcp, 2);
  wr32(rtcp + 8, rd32(tcp + 4) + 1); /* ack = their seq + 1 */
  rtcp[12] = 5 << 4;
  rtcp[13] = 0x14; /* RST|ACK */
  guint32 pseudo = 0;
  for (int i = 0; i < 8; i += 2)
    pseudo += (guint32)(rip[12 + i] << 8 | rip[13 + i]);
  pseudo += IPPROTO_TCP + 20;
  wr16(rtcp + 16, checksum(rtcp, 20, pseudo));
  return 14 + 40;
}

SbxFrameVerdict sbx_net_check_frame(const SbxNetPolicy *p, const guint8 *frame, gsize len,
                                    guint8 *reply, gsize *reply_len)
{
  if (len < 14)
    return SBX_FRAME_DROP;
  guint16 type = (guint16)(frame[12] << 8 | frame[13]);
  if (type == 0x86dd)
    return SBX_FRAME_DROP; /* IPv6 is not offered: nothing of it leaves */
  if (type != 0x0800)
    return SBX_FRAME_PASS; /* ARP */
  const guint8 *ip = frame + 14;
  if (len < 14 + 20 || (ip[0] >> 4) != 4)
    return SBX_FRAME_DROP;
  gsize ihl = (gsize)(ip[0] & 0x0f) * 4;
  gsize total = (gsize)(ip[2] << 8 | ip[3]);
  if (ihl < 20 || total < ihl || len < 14 + total)
    return SBX_FRAME_DROP;
  len = 14 + total; /* Ethernet padding is not part of the packet */
  guint32 dst = rd32(ip + 16);
  /* libslirp's disable_host_loopback only covers the 10.0.2.2 alias: a raw
   * packet (CAP_NET_RAW) addressed to 127.0.0.1 itself would reach the
   * host's loopback. 0.0.0.0/8 means "this host" too. */
  if (!p->host_loopback && ((dst >> 24) == 127 || (dst >> 24) == 0))
    return SBX_FRAME_DROP;
  if (!p->enforce)
    return SBX_FRAME_PASS;
  /* A fragment's ports and flags may be anywhere: with an allowlist, no
   * fragmented packet goes out (ordinary TCP and UDP fit the MTU). */
  gboolean fragment = (ip[6] & 0x20) || (ip[6] & 0x1f) || ip[7];
  if (fragment)
    return SBX_FRAME_DROP;
  int proto = ip[9];
  if (proto == IPPROTO_TCP) {
    if (len < 14 + ihl + 20)
      return SBX_FRAME_DROP;
    const guint8 *tcp = ip + ihl;
    gboolean syn = (tcp[13] & 0x02) && !(tcp[13] & 0x10);
    if (!syn)
      return SBX_FRAME_PASS;
    guint16 port = (guint16)(tcp[2] << 8 | tcp[3]);
    if (sbx_net_policy_allows(p, dst, port, IPPROTO_TCP))
      return SBX_FRAME_PASS;
    *reply_len = make_rst(frame, ihl, reply);
    return SBX_FRAME_RESET;
  }
  if (proto == IPPROTO_UDP) {
    if (len < 14 + ihl + 8)
      return SBX_FRAME_DROP;
    const guint8 *udp = ip + ihl;
    guint16 port = (guint16)(udp[2] << 8 | udp[3]);
    /* DHCP to the gateway stays local to libslirp. */
    if (port == 67)
      return SBX_FRAME_PASS;
    return sbx_net_policy_allows(p, dst, port, IPPROTO_UDP) ? SBX_FRAME_PASS : SBX_FRAME_DROP;
  }
  if (proto == IPPROTO_ICMP)
    return sbx_net_policy_allows(p, dst, 0, IPPROTO_ICMP) ? SBX_FRAME_PASS : SBX_FRAME_DROP;
  return SBX_FRAME_DROP;
}
