/* libFuzzer target: the egress policy on one frame from the guest
 * (src/net/policy.c sbx_net_check_frame; the TCP relay's judgement of the
 * same connection agrees) and, for UDP, the DNS question
 * parser and JSON string escaping that --net-log uses, and the answer a
 * network switch gives a query (src/net/switch-dns.c).
 *
 * Input: one byte of policy settings, then the Ethernet frame. */
#include "sbx/net.h"
#include "sbx/netswitch.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static SbxNetPolicy *policy_for(guint8 flags)
{
  static SbxNetPolicy p;
  static GArray *rules, *addrs;
  if (!rules) {
    rules = g_array_new(FALSE, FALSE, sizeof(SbxNetRule));
    static const char *const specs[] = {"dns", "10.0.2.2:8080/tcp", "192.0.2.0/24:53/udp",
                                        "198.51.100.7", "203.0.113.5/32:1-1024"};
    for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
      SbxNetRule r;
      if (!sbx_net_rule_parse(specs[i], &r, NULL))
        __builtin_trap();
      g_array_append_val(rules, r);
    }
    addrs = g_array_new(FALSE, FALSE, sizeof(guint32));
    guint32 a = 0xcb007105; /* 203.0.113.5 */
    g_array_append_val(addrs, a);
  }
  p.enforce = flags & 1;
  p.host_loopback = (flags >> 1) & 1;
  p.host_addresses = (flags >> 2) & 1;
  p.rules = rules;
  p.host_addrs = (flags >> 3) & 1 ? addrs : NULL;
  p.loopback_alias = (flags >> 4) & 1 ? 0x0a590001u : 0; /* sbx-switch's gateway 10.89.0.1 */
  return &p;
}

static guint32 lookup_blue(const char *name, gpointer data)
{
  return g_ascii_strcasecmp(name, "blue") == 0 ? 0x0a59000au : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const SbxNetPolicy *p = policy_for(data[0]);
  /* A copy of exactly the frame's size, so ASan sees any read past it. */
  gsize len = size - 1;
  guint8 *frame = g_malloc(len ? len : 1);
  memcpy(frame, data + 1, len);
  guint8 reply[SBX_NET_REPLY_MAX];
  gsize reply_len = 0;
  SbxFrameInfo info;
  SbxFrameVerdict v = sbx_net_check_frame(p, frame, len, reply, &reply_len, &info);
  if (v == SBX_FRAME_RESET && (reply_len == 0 || reply_len > sizeof reply))
    __builtin_trap();
  if (v == SBX_FRAME_PASS && info.refused)
    __builtin_trap();
  if (v != SBX_FRAME_PASS && !info.refused)
    __builtin_trap();
  /* Invariants the security of --net-allow rests on. */
  if (v == SBX_FRAME_PASS && info.new_flow && info.proto == IPPROTO_UDP && info.dport == 67 &&
      p->enforce && info.dst != SBX_NET_GATEWAY_ADDR && info.dst != 0xffffffffu &&
      !sbx_net_policy_allows(p, info.dst, 67, IPPROTO_UDP))
    __builtin_trap();
  if (v == SBX_FRAME_PASS && info.new_flow && info.dst == SBX_NET_DNS_ADDR &&
      info.proto != IPPROTO_ICMP && info.dport != 53)
    __builtin_trap();
  if (v == SBX_FRAME_PASS && !p->host_loopback && len >= 34 &&
      (frame[30] == 127 || frame[30] == 0) && frame[12] == 0x08 && frame[13] == 0x00)
    __builtin_trap();
  if (v == SBX_FRAME_PASS && !p->host_loopback && p->loopback_alias && len >= 34 &&
      frame[12] == 0x08 && frame[13] == 0x00 && sbx_net_rd32(frame + 30) == p->loopback_alias)
    __builtin_trap();
  /* The TCP relay (src/net/relay.c) judges a connect as this judges its SYN. */
  if (info.new_flow && info.proto == IPPROTO_TCP &&
      (v == SBX_FRAME_PASS) != (sbx_net_policy_judge_tcp(p, info.dst, info.dport) == NULL))
    __builtin_trap();
  if (info.payload) {
    if (info.payload < frame || info.payload + info.payload_len > frame + len)
      __builtin_trap();
    char name[SBX_DNS_NAME_MAX];
    guint16 qtype;
    if (sbx_net_dns_query_name(info.payload, info.payload_len, name, &qtype)) {
      if (strlen(name) >= SBX_DNS_NAME_MAX)
        __builtin_trap();
      /* what --net-log writes of it: printable ASCII only */
      GString *json = g_string_new(NULL);
      sbx_json_append_string(json, name);
      for (gsize i = 0; i < json->len; i++)
        if (json->str[i] < 0x20 || json->str[i] > 0x7e)
          __builtin_trap();
      g_string_free(json, TRUE);
    }
    /* the network switch's answer to it (src/net/switch-dns.c) */
    guint8 answer[600];
    gsize alen = sbx_switch_dns_answer(info.payload, info.payload_len, lookup_blue, NULL,
                                       data[0] & 1, answer, sizeof answer);
    if (alen > sizeof answer || (alen && (alen < 12 || answer[0] != info.payload[0] ||
                                          answer[1] != info.payload[1] || !(answer[2] & 0x80))))
      __builtin_trap();
  }
  g_free(frame);
  return 0;
}
