/* The slirp helper's egress policy on hand-made frames (src/net/policy.c). */
#include "sbx/net.h"

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
  SbxNetPolicy p = {.enforce = rules != NULL, .host_loopback = loopback,
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
  SbxFrameVerdict v = sbx_net_check_frame(p, f.b, f.len, reply, &rl);
  if (reply_len)
    *reply_len = rl;
  if (v == SBX_FRAME_RESET) {
    g_assert_cmpuint(rl, ==, 54);
    g_assert_cmpuint(reply[14 + 20 + 13], ==, 0x14); /* RST|ACK */
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
  g_test_add_func("/policy/allowlist", test_allowlist);
  g_test_add_func("/policy/fragments", test_fragments_refused_under_allowlist);
  g_test_add_func("/policy/padding", test_padding_is_not_the_packet);
  g_test_add_func("/policy/parsing", test_rule_parsing);
  return g_test_run();
}
