/* The slirp helper's egress policy on hand-made frames (src/net/policy.c). */
#include "sbx/net.h"
#include "sbx/netswitch.h"

#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

typedef struct {
  guint8 b[128];
  gsize len;
} Frame;

/* Ethernet + IPv4 (20) + TCP (20) or UDP (8), total length set, checksums 0. */
static Frame make(const char *dst, int proto, guint16 port, guint8 tcp_flags, guint8 frag_hi,
                  guint8 frag_lo, gsize padding)
{
  Frame f = {{0}, 0};
  f.b[12] = 0x08;
  f.b[13] = 0x00;
  guint8 *ip = f.b + 14;
  gsize l4 = proto == IPPROTO_TCP ? 20 : 8;
  ip[0] = 0x45;
  ip[2] = 0;
  ip[3] = (guint8)(20 + l4);
  ip[6] = frag_hi;
  ip[7] = frag_lo;
  ip[8] = 64;
  ip[9] = (guint8)proto;
  inet_pton(AF_INET, "10.0.2.100", ip + 12);
  inet_pton(AF_INET, dst, ip + 16);
  guint8 *t = ip + 20;
  t[0] = 0x9c;
  t[1] = 0x40;
  t[2] = (guint8)(port >> 8);
  t[3] = (guint8)port;
  if (proto == IPPROTO_TCP) {
    t[4] = 0x11;
    t[12] = 5 << 4;
    t[13] = tcp_flags;
  }
  f.len = 14 + 20 + l4 + padding;
  return f;
}

static SbxNetPolicy policy(gboolean loopback, const char *const *rules)
{
  SbxNetPolicy p = {.enforce = rules != NULL,
                    .host_loopback = loopback,
                    .rules = g_array_new(FALSE, FALSE, sizeof(SbxNetRule))};
  for (const char *const *r = rules; r && *r; r++) {
    SbxNetRule rule;
    g_assert_true(sbx_net_rule_parse(*r, &rule, NULL));
    g_array_append_val(p.rules, rule);
  }
  return p;
}

static SbxFrameVerdict judge(SbxNetPolicy *p, Frame f, gsize *reply_len)
{
  guint8 reply[64];
  gsize rl = 0;
  SbxFrameVerdict v = sbx_net_check_frame(p, f.b, f.len, reply, &rl, NULL);
  if (reply_len)
    *reply_len = rl;
  if (v == SBX_FRAME_RESET) {
    g_assert_cmpuint(rl, ==, 54);
    g_assert_cmpuint(reply[14 + 20 + 13], ==, 0x14);            /* RST|ACK */
    g_assert_cmpuint(reply[14 + 20 + 0], ==, f.b[14 + 20 + 2]); /* ports swapped */
  }
  return v;
}

static void test_host_loopback_needs_opt_in(void)
{
  SbxNetPolicy off = policy(FALSE, NULL), on = policy(TRUE, NULL);
  Frame syn = make("127.0.0.1", IPPROTO_TCP, 80, 0x02, 0, 0, 0);
  g_assert_cmpint(judge(&off, syn, NULL), ==, SBX_FRAME_DROP);
  g_assert_cmpint(judge(&off, make("127.5.6.7", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&off, make("0.0.0.0", IPPROTO_TCP, 80, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&on, syn, NULL), ==, SBX_FRAME_PASS);
  g_assert_cmpint(judge(&off, make("192.0.2.1", IPPROTO_TCP, 80, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_array_unref(off.rules);
  g_array_unref(on.rules);
}

/* sbx-switch's gateway is libslirp's alias of the host's loopback: refused
 * with it (and recorded with its port), unless the sandbox asked for it. */
static void test_loopback_alias(void)
{
  SbxNetPolicy off = policy(FALSE, NULL), on = policy(TRUE, NULL);
  guint32 gw = 0x0a590001; /* 10.89.0.1 */
  off.loopback_alias = on.loopback_alias = gw;
  Frame syn = make("10.89.0.1", IPPROTO_TCP, 8080, 0x02, 0, 0, 0);
  SbxFrameInfo info;
  guint8 reply[64];
  gsize rl = 0;
  g_assert_cmpint(sbx_net_check_frame(&off, syn.b, syn.len, reply, &rl, &info), ==, SBX_FRAME_DROP);
  g_assert_cmpstr(info.refused, ==, "host-loopback");
  g_assert_cmpuint(info.dport, ==, 8080);
  g_assert_cmpuint(info.proto, ==, IPPROTO_TCP);
  /* an established connection's segments too (the switch lets answers to
   * -p's clients through with a policy without the alias) */
  g_assert_cmpint(judge(&off, make("10.89.0.1", IPPROTO_TCP, 8080, 0x10, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&off, make("10.89.0.1", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&on, syn, NULL), ==, SBX_FRAME_PASS);
  g_assert_cmpint(judge(&off, make("10.89.0.2", IPPROTO_TCP, 8080, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_array_unref(off.rules);
  g_array_unref(on.rules);
}

static void test_allowlist(void)
{
  const char *rules[] = {"10.0.2.2:8080/tcp", "192.0.2.0/24:53/udp", "dns", NULL};
  SbxNetPolicy p = policy(TRUE, rules);
  g_assert_cmpint(judge(&p, make("10.0.2.2", IPPROTO_TCP, 8080, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge(&p, make("10.0.2.2", IPPROTO_TCP, 8081, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_RESET);
  g_assert_cmpint(judge(&p, make("10.0.2.2", IPPROTO_UDP, 8080, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&p, make("192.0.2.9", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge(&p, make("10.0.2.3", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  /* not SYN: an established flow's packets are libslirp's business */
  g_assert_cmpint(judge(&p, make("10.0.2.2", IPPROTO_TCP, 9999, 0x10, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_array_unref(p.rules);
}

static void test_fragments_refused_under_allowlist(void)
{
  const char *rules[] = {"dns", NULL};
  SbxNetPolicy p = policy(TRUE, rules);
  /* more-fragments set, or an offset: the ports may not be where we look */
  g_assert_cmpint(judge(&p, make("10.0.2.2", IPPROTO_TCP, 53, 0x10, 0x20, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&p, make("10.0.2.2", IPPROTO_TCP, 53, 0x02, 0x00, 1, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_array_unref(p.rules);
}

static void test_padding_is_not_the_packet(void)
{
  const char *rules[] = {"dns", NULL};
  SbxNetPolicy p = policy(TRUE, rules);
  /* an IP packet too short for a TCP header, padded to look like one */
  Frame f = make("10.0.2.2", IPPROTO_TCP, 80, 0x02, 0, 0, 40);
  f.b[14 + 3] = 28; /* IP total length: 20 + 8 */
  g_assert_cmpint(judge(&p, f, NULL), ==, SBX_FRAME_DROP);
  Frame lie = make("10.0.2.2", IPPROTO_TCP, 80, 0x02, 0, 0, 0);
  lie.b[14 + 3] = 200; /* claims more than the frame holds */
  g_assert_cmpint(judge(&p, lie, NULL), ==, SBX_FRAME_DROP);
  g_array_unref(p.rules);
}

static SbxFrameVerdict judge_info(SbxNetPolicy *p, Frame f, SbxFrameInfo *info)
{
  guint8 reply[SBX_NET_REPLY_MAX];
  gsize rl = 0;
  return sbx_net_check_frame(p, f.b, f.len, reply, &rl, info);
}

/* Issue 9: port 67 passed whatever the address; only libslirp's own DHCP
 * server (10.0.2.2, broadcast) answers it without a host socket. */
static void test_dhcp_only_to_slirp(void)
{
  const char *rules[] = {"10.9.9.9/32:443/tcp", NULL};
  SbxNetPolicy p = policy(TRUE, rules);
  SbxFrameInfo info;
  g_assert_cmpint(judge(&p, make("10.0.2.2", IPPROTO_UDP, 67, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge(&p, make("255.255.255.255", IPPROTO_UDP, 67, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge_info(&p, make("192.0.2.7", IPPROTO_UDP, 67, 0, 0, 0, 0), &info), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpstr(info.refused, ==, "not-allowed");
  g_assert_cmpint(judge(&p, make("10.0.2.5", IPPROTO_UDP, 67, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  /* TCP to 67 was never special */
  g_assert_cmpint(judge(&p, make("10.0.2.2", IPPROTO_TCP, 67, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_RESET);
  g_array_unref(p.rules);
}

/* 10.0.2.3 stands for the host's resolver: only its port 53, with or
 * without an allowlist, whatever libslirp would forward. */
static void test_dns_address_only_port_53(void)
{
  SbxNetPolicy open = policy(FALSE, NULL);
  SbxFrameInfo info;
  g_assert_cmpint(judge(&open, make("10.0.2.3", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge(&open, make("10.0.2.3", IPPROTO_TCP, 53, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge_info(&open, make("10.0.2.3", IPPROTO_TCP, 22, 0x02, 0, 0, 0), &info), ==,
                  SBX_FRAME_RESET);
  g_assert_cmpstr(info.refused, ==, "dns-port");
  g_assert_cmpint(judge(&open, make("10.0.2.3", IPPROTO_UDP, 5353, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  /* a fragment to it: its port could be rewritten by a later one */
  g_assert_cmpint(judge(&open, make("10.0.2.3", IPPROTO_UDP, 53, 0, 0x20, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&open, make("192.0.2.1", IPPROTO_UDP, 53, 0, 0x20, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  /* under an allowlist only "dns" opens it; no CIDR does */
  const char *cidr[] = {"0.0.0.0/0", NULL};
  SbxNetPolicy all = policy(FALSE, cidr);
  g_assert_cmpint(judge(&all, make("10.0.2.3", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&all, make("10.0.2.3", IPPROTO_ICMP, 0, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  const char *dns[] = {"dns", NULL};
  SbxNetPolicy d = policy(FALSE, dns);
  g_assert_cmpint(judge(&d, make("10.0.2.3", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge(&d, make("10.0.2.3", IPPROTO_TCP, 53, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge(&d, make("10.0.2.3", IPPROTO_TCP, 853, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_RESET);
  g_assert_cmpint(judge(&d, make("192.0.2.1", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_array_unref(open.rules);
  g_array_unref(all.rules);
  g_array_unref(d.rules);
}

/* Only ARP and IPv4 frames, and of IPv4 only TCP, UDP and ICMP. */
static void test_frame_types(void)
{
  SbxNetPolicy open = policy(TRUE, NULL);
  Frame arp = make("10.0.2.2", IPPROTO_UDP, 1, 0, 0, 0, 0);
  arp.b[12] = 0x08;
  arp.b[13] = 0x06;
  g_assert_cmpint(judge(&open, arp, NULL), ==, SBX_FRAME_PASS);
  static const guint16 others[] = {0x86dd, 0x88f8 /* NC-SI */, 0x8100 /* VLAN */, 0x0801};
  for (guint i = 0; i < G_N_ELEMENTS(others); i++) {
    Frame f = make("192.0.2.1", IPPROTO_TCP, 80, 0x02, 0, 0, 0);
    f.b[12] = (guint8)(others[i] >> 8);
    f.b[13] = (guint8)others[i];
    g_assert_cmpint(judge(&open, f, NULL), ==, SBX_FRAME_DROP);
  }
  SbxFrameInfo info;
  Frame gre = make("192.0.2.1", IPPROTO_UDP, 80, 0, 0, 0, 0);
  gre.b[14 + 9] = 47;
  g_assert_cmpint(judge_info(&open, gre, &info), ==, SBX_FRAME_DROP);
  g_assert_cmpstr(info.refused, ==, "protocol");
  Frame v6in4 = make("192.0.2.1", IPPROTO_UDP, 80, 0, 0, 0, 0);
  v6in4.b[14] = 0x65; /* version 6 in an IPv4 frame */
  g_assert_cmpint(judge(&open, v6in4, NULL), ==, SBX_FRAME_DROP);
  /* ICMP: judged like any flow, echo requests are new flows */
  Frame ping = make("192.0.2.1", IPPROTO_ICMP, 0, 0, 0, 0, 0);
  ping.b[14 + 20] = 8;
  g_assert_cmpint(judge_info(&open, ping, &info), ==, SBX_FRAME_PASS);
  g_assert_true(info.new_flow);
  const char *rules[] = {"192.0.2.0/24:443", NULL};
  SbxNetPolicy p = policy(TRUE, rules);
  g_assert_cmpint(judge(&p, ping, NULL), ==, SBX_FRAME_DROP);
  Frame short_icmp = make("192.0.2.1", IPPROTO_ICMP, 0, 0, 0, 0, 0);
  short_icmp.b[14 + 3] = 24;
  g_assert_cmpint(judge(&open, short_icmp, NULL), ==, SBX_FRAME_DROP);
  g_array_unref(open.rules);
  g_array_unref(p.rules);
}

/* The host's own addresses: refused when host_addresses is off; under an
 * allowlist only a /32 rule naming one lets it through. */
static void test_host_addresses(void)
{
  guint32 mine = 0xc0000205; /* 192.0.2.5 */
  GArray *addrs = g_array_new(FALSE, FALSE, sizeof(guint32));
  g_array_append_val(addrs, mine);
  SbxNetPolicy open = policy(FALSE, NULL);
  open.host_addrs = addrs;
  open.host_addresses = TRUE;
  g_assert_cmpint(judge(&open, make("192.0.2.5", IPPROTO_TCP, 22, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  open.host_addresses = FALSE;
  SbxFrameInfo info;
  g_assert_cmpint(judge_info(&open, make("192.0.2.5", IPPROTO_TCP, 22, 0x02, 0, 0, 0), &info), ==,
                  SBX_FRAME_RESET);
  g_assert_cmpstr(info.refused, ==, "host-address");
  g_assert_cmpint(judge(&open, make("192.0.2.5", IPPROTO_UDP, 53, 0, 0, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&open, make("192.0.2.5", IPPROTO_UDP, 53, 0, 0x20, 0, 0), NULL), ==,
                  SBX_FRAME_DROP);
  g_assert_cmpint(judge(&open, make("192.0.2.6", IPPROTO_TCP, 22, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  const char *rules[] = {"0.0.0.0/0:22/tcp", "192.0.2.5/32:80/tcp", NULL};
  SbxNetPolicy p = policy(FALSE, rules);
  p.host_addrs = addrs;
  g_assert_cmpint(judge(&p, make("192.0.2.5", IPPROTO_TCP, 22, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_RESET);
  g_assert_cmpint(judge(&p, make("192.0.2.5", IPPROTO_TCP, 80, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_assert_cmpint(judge(&p, make("192.0.2.6", IPPROTO_TCP, 22, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  p.host_addresses = TRUE; /* asked for: then the rules decide as for any address */
  g_assert_cmpint(judge(&p, make("192.0.2.5", IPPROTO_TCP, 22, 0x02, 0, 0, 0), NULL), ==,
                  SBX_FRAME_PASS);
  g_array_unref(open.rules);
  g_array_unref(p.rules);
  g_array_unref(addrs);
}

/* What the TCP relay asks (src/net/relay.c): the judgement of a SYN. */
static void test_judge_tcp(void)
{
  guint32 mine = 0xc0000205; /* 192.0.2.5 */
  GArray *addrs = g_array_new(FALSE, FALSE, sizeof(guint32));
  g_array_append_val(addrs, mine);
  SbxNetPolicy open = policy(FALSE, NULL);
  open.host_addrs = addrs;
  open.host_addresses = TRUE;
  g_assert_null(sbx_net_policy_judge_tcp(&open, 0xc0000205, 22));
  g_assert_cmpstr(sbx_net_policy_judge_tcp(&open, 0x7f000001, 22), ==, "host-loopback");
  g_assert_cmpstr(sbx_net_policy_judge_tcp(&open, 0x00000000, 22), ==, "host-loopback");
  g_assert_cmpstr(sbx_net_policy_judge_tcp(&open, SBX_NET_DNS_ADDR, 80), ==, "dns-port");
  open.host_addresses = FALSE;
  g_assert_cmpstr(sbx_net_policy_judge_tcp(&open, 0xc0000205, 22), ==, "host-address");
  g_assert_null(sbx_net_policy_judge_tcp(&open, 0xc0000206, 22));
  open.loopback_alias = 0x0a590001u;
  g_assert_cmpstr(sbx_net_policy_judge_tcp(&open, 0x0a590001u, 22), ==, "host-loopback");
  const char *rules[] = {"10.0.2.2:8080/tcp", "192.0.2.0/24:443", NULL};
  SbxNetPolicy p = policy(TRUE, rules);
  g_assert_null(sbx_net_policy_judge_tcp(&p, SBX_NET_GATEWAY_ADDR, 8080));
  g_assert_cmpstr(sbx_net_policy_judge_tcp(&p, SBX_NET_GATEWAY_ADDR, 8081), ==, "not-allowed");
  g_assert_null(sbx_net_policy_judge_tcp(&p, 0xc0000209, 443));
  g_assert_cmpstr(sbx_net_policy_judge_tcp(&p, 0xc0000209, 80), ==, "not-allowed");
  g_assert_cmpstr(sbx_net_policy_judge_tcp(&p, 0x7f000001, 8080), ==, "not-allowed");
  g_array_unref(open.rules);
  g_array_unref(p.rules);
  g_array_unref(addrs);
}

static void test_frame_info(void)
{
  SbxNetPolicy open = policy(TRUE, NULL);
  SbxFrameInfo info;
  Frame f = make("192.0.2.9", IPPROTO_UDP, 5000, 0, 0, 0, 0);
  g_assert_cmpint(judge_info(&open, f, &info), ==, SBX_FRAME_PASS);
  g_assert_true(info.new_flow);
  g_assert_cmpint(info.proto, ==, IPPROTO_UDP);
  g_assert_cmpuint(info.dst, ==, 0xc0000209);
  g_assert_cmpuint(info.dport, ==, 5000);
  g_assert_cmpuint(info.sport, ==, 0x9c40);
  g_assert_null(info.refused);
  g_assert_cmpint(judge_info(&open, make("192.0.2.9", IPPROTO_TCP, 80, 0x12, 0, 0, 0), &info), ==,
                  SBX_FRAME_PASS);
  g_assert_false(info.new_flow); /* SYN|ACK */
  g_array_unref(open.rules);
}

static gsize put_name(guint8 *q, const char *const *labels)
{
  gsize n = 12;
  memset(q, 0, 12);
  q[5] = 1; /* qdcount */
  for (const char *const *l = labels; *l; l++) {
    q[n++] = (guint8)strlen(*l);
    memcpy(q + n, *l, strlen(*l));
    n += strlen(*l);
  }
  q[n++] = 0;
  q[n++] = 0;
  q[n++] = 1;
  q[n++] = 0;
  q[n++] = 1;
  return n;
}

static void test_dns_query_name(void)
{
  guint8 q[600];
  char name[SBX_DNS_NAME_MAX];
  guint16 qtype = 0;
  const char *plain[] = {"www", "example", "com", NULL};
  gsize n = put_name(q, plain);
  g_assert_true(sbx_net_dns_query_name(q, n, name, &qtype));
  g_assert_cmpstr(name, ==, "www.example.com");
  g_assert_cmpuint(qtype, ==, 1);
  for (gsize cut = 0; cut < n; cut++)
    g_assert_false(sbx_net_dns_query_name(q, cut, name, &qtype));
  const char *odd[] = {"a.b", "c\\", NULL};
  n = put_name(q, odd);
  g_assert_true(sbx_net_dns_query_name(q, n, name, &qtype));
  g_assert_cmpstr(name, ==, "a\\.b.c\\\\");
  const char *root[] = {NULL};
  n = put_name(q, root);
  g_assert_true(sbx_net_dns_query_name(q, n, name, &qtype));
  g_assert_cmpstr(name, ==, ".");
  q[2] = 0x80; /* a response */
  g_assert_false(sbx_net_dns_query_name(q, n, name, &qtype));
  n = put_name(q, plain);
  q[12] = 0xc0; /* a compression pointer */
  g_assert_false(sbx_net_dns_query_name(q, n, name, &qtype));
  /* 5 labels of 63: 320 octets, over the 255 limit */
  char big[64];
  memset(big, 'x', 63);
  big[63] = '\0';
  const char *longname[] = {big, big, big, big, big, NULL};
  n = put_name(q, longname);
  g_assert_false(sbx_net_dns_query_name(q, n, name, &qtype));
  const char *fits[] = {big, big, big, "x", NULL};
  n = put_name(q, fits);
  g_assert_true(sbx_net_dns_query_name(q, n, name, &qtype));
}

static guint32 lookup_blue(const char *name, gpointer data)
{
  return g_ascii_strcasecmp(name, "blue") == 0 ? 0x0a59000au : 0;
}

/* The network switch's DNS answers (src/net/switch-dns.c). */
static void test_switch_dns_answer(void)
{
  guint8 q[600], a[600];
  const char *blue[] = {"BLUE", NULL};
  gsize n = put_name(q, blue);
  q[0] = 0x12;
  q[1] = 0x34;
  q[2] = 0x01; /* RD */
  gsize len = sbx_switch_dns_answer(q, n, lookup_blue, NULL, FALSE, a, sizeof a);
  g_assert_cmpuint(len, ==, n + 16);
  g_assert_cmpuint(a[0] << 8 | a[1], ==, 0x1234);
  g_assert_cmpuint(a[2], ==, 0x85); /* QR AA RD */
  g_assert_cmpuint(a[3] & 0x0f, ==, 0);
  g_assert_cmpuint(a[7], ==, 1); /* one answer */
  g_assert_cmpmem(a + 12, n - 12, q + 12, n - 12);
  static const guint8 rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 89, 0, 10};
  g_assert_cmpmem(a + n, 16, rr, 16);
  /* AAAA of a name on the network: no such data, not "no such name" */
  q[n - 3] = 28;
  len = sbx_switch_dns_answer(q, n, lookup_blue, NULL, FALSE, a, sizeof a);
  g_assert_cmpuint(len, ==, n);
  g_assert_cmpuint(a[3] & 0x0f, ==, 0);
  g_assert_cmpuint(a[7], ==, 0);
  /* another name: the uplink's resolver's, or NXDOMAIN on an internal network */
  const char *other[] = {"example", "com", NULL};
  n = put_name(q, other);
  g_assert_cmpuint(sbx_switch_dns_answer(q, n, lookup_blue, NULL, FALSE, a, sizeof a), ==, 0);
  len = sbx_switch_dns_answer(q, n, lookup_blue, NULL, TRUE, a, sizeof a);
  g_assert_cmpuint(len, ==, n);
  g_assert_cmpuint(a[3] & 0x0f, ==, 3);
  /* cut short anywhere, or with no room for the answer: no answer */
  n = put_name(q, blue);
  for (gsize cut = 0; cut < n; cut++)
    g_assert_cmpuint(sbx_switch_dns_answer(q, cut, lookup_blue, NULL, TRUE, a, sizeof a), ==, 0);
  g_assert_cmpuint(sbx_switch_dns_answer(q, n, lookup_blue, NULL, TRUE, a, n + 15), ==, 0);
}

/* A network's subnet, and what sbx and sbx-switch say (src/net/netproto.c). */
static void test_switch_protocol(void)
{
  guint32 net;
  guint prefix;
  g_assert_true(sbx_network_parse_subnet("10.89.3.0/24", &net, &prefix, NULL));
  g_assert_cmpuint(net, ==, 0x0a590300u);
  g_assert_cmpuint(prefix, ==, 24);
  g_autofree char *text = sbx_network_subnet_text(net, prefix);
  g_assert_cmpstr(text, ==, "10.89.3.0/24");
  const char *bad[] = {"10.89.3.1/24", "10.0.0.0/8",    "10.0.0.0/29", "127.0.0.0/24",
                       "0.0.0.0/16",   "224.0.0.0/24",  "10.89.3.0",   "/24",
                       "x/24",         "10.89.3.0/24x", NULL};
  for (const char **b = bad; *b; b++)
    g_assert_false(sbx_network_parse_subnet(*b, &net, &prefix, NULL));
  SbxSwitchLease l = {.address = 0x0a59000au,
                      .gateway = 0x0a590001u,
                      .dns = 0x0a590002u,
                      .prefix = 24,
                      .mac = {0x02, 0x5b, 10, 89, 0, 10}};
  g_autofree char *lt = sbx_switch_lease_format(&l);
  SbxSwitchLease back;
  g_assert_true(sbx_switch_lease_parse(lt, &back));
  g_assert_cmpmem(&back, sizeof back, &l, sizeof l);
  g_assert_false(sbx_switch_lease_parse("address=1", &back));
  char *names[] = {"red", "db.local", NULL}, *publish[] = {"127.0.0.1:8080:80", NULL};
  SbxSwitchJoin j = {.names = names, .publish = publish, .host_loopback = TRUE};
  g_autofree char *jt = sbx_switch_join_format(&j);
  SbxSwitchJoin jb;
  g_assert_true(sbx_switch_join_parse(jt, &jb, NULL));
  g_assert_cmpstrv(jb.names, names);
  g_assert_cmpstrv(jb.publish, publish);
  g_assert_cmpuint(g_strv_length(jb.allow), ==, 0);
  g_assert_true(jb.host_loopback);
  g_assert_false(jb.refuse_host_addresses);
  sbx_switch_join_clear(&jb);
  /* what any process of the user might send: every field checked */
  const char *hostile[] = {"[join]\nNames=../x\n",
                           "[join]\nNames=a b\n",
                           "[join]\nPublish=99999:1\n",
                           "[join]\nAllow=example.com\n",
                           "[join]\nNames=a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p;q\n",
                           "not a key file",
                           NULL};
  for (const char **h = hostile; *h; h++) {
    g_autoptr(GError) err = NULL;
    g_assert_false(sbx_switch_join_parse(*h, &jb, &err));
    g_assert_nonnull(err);
  }
  g_assert_true(sbx_switch_name_valid("a-b_c.d9"));
  g_assert_false(sbx_switch_name_valid("-a"));
  g_assert_false(sbx_switch_name_valid(""));
}

static void test_rule_parsing(void)
{
  SbxNetRule r;
  g_assert_true(sbx_net_rule_parse("10.0.0.0/8:1000-2000/udp", &r, NULL));
  g_assert_cmpuint(r.net, ==, 0x0a000000);
  g_assert_cmpuint(r.mask, ==, 0xff000000);
  g_assert_cmpuint(r.port_lo, ==, 1000);
  g_assert_cmpuint(r.port_hi, ==, 2000);
  g_assert_false(sbx_net_rule_parse("10.0.0.0/33", &r, NULL));
  g_assert_false(sbx_net_rule_parse("10.0.0.1:2000-1000", &r, NULL));
  g_assert_false(sbx_net_rule_parse("example.com", &r, NULL));
  SbxPortForward f;
  g_assert_true(sbx_port_forward_parse("127.0.0.1:8080:80/udp", &f, NULL));
  g_assert_true(f.udp);
  g_assert_cmpuint(f.host_port, ==, 8080);
  g_assert_false(sbx_port_forward_parse("70000:80", &f, NULL));
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/policy/host-loopback", test_host_loopback_needs_opt_in);
  g_test_add_func("/policy/loopback-alias", test_loopback_alias);
  g_test_add_func("/policy/allowlist", test_allowlist);
  g_test_add_func("/policy/fragments", test_fragments_refused_under_allowlist);
  g_test_add_func("/policy/padding", test_padding_is_not_the_packet);
  g_test_add_func("/policy/parsing", test_rule_parsing);
  g_test_add_func("/policy/dhcp-only-to-slirp", test_dhcp_only_to_slirp);
  g_test_add_func("/policy/dns-address-only-port-53", test_dns_address_only_port_53);
  g_test_add_func("/policy/frame-types", test_frame_types);
  g_test_add_func("/policy/host-addresses", test_host_addresses);
  g_test_add_func("/policy/frame-info", test_frame_info);
  g_test_add_func("/policy/judge-tcp", test_judge_tcp);
  g_test_add_func("/policy/dns-query-name", test_dns_query_name);
  g_test_add_func("/policy/switch-dns-answer", test_switch_dns_answer);
  g_test_add_func("/policy/switch-protocol", test_switch_protocol);
  return g_test_run();
}
