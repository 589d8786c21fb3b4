/* The network's DNS server: the sandboxes' names (--name, --network-alias)
 * answered by the switch itself; any other name goes on to libslirp's
 * resolver (the host's), or on an internal network gets NXDOMAIN. The query
 * comes from a sandbox: only its header and first question are read, each
 * byte bounds-checked (sbx_net_dns_query_name, fuzzed by tests/fuzz). */
#include "sbx/net.h"
#include "sbx/netswitch.h"

#include <string.h>

#define DNS_TYPE_A   1
#define DNS_CLASS_IN 1
#define DNS_TTL      5 /* addresses come and go with the sandboxes */

/* Where the first question ends (after its type and class). */
static gsize question_end(const guint8 *q, gsize len)
{
  gsize pos = 12;
  while (pos < len && q[pos] != 0)
    pos += 1u + q[pos];
  return pos + 5 <= len ? pos + 5 : 0;
}

static void put16(guint8 *p, guint v)
{
  p[0] = (guint8)(v >> 8);
  p[1] = (guint8)v;
}

gsize sbx_switch_dns_answer(const guint8 *query, gsize len, SbxSwitchLookup lookup, gpointer data,
                            gboolean nxdomain, guint8 *out, gsize out_size)
{
  char name[SBX_DNS_NAME_MAX];
  guint16 qtype;
  if (!sbx_net_dns_query_name(query, len, name, &qtype))
    return 0;
  gsize qend = question_end(query, len);
  guint opcode = (query[2] >> 3) & 0x0f;
  if (!qend || opcode != 0)
    return 0;
  guint16 qclass = (guint16)(query[qend - 2] << 8 | query[qend - 1]);
  guint32 addr = lookup(name, data);
  if (!addr && !nxdomain)
    return 0;
  gboolean answer = addr && qtype == DNS_TYPE_A && qclass == DNS_CLASS_IN;
  gsize need = qend + (answer ? 16 : 0);
  if (need > out_size)
    return 0;
  memcpy(out, query, qend);
  out[2] = (guint8)(0x80 | 0x04 | (query[2] & 0x01)); /* QR, AA, RD as asked */
  out[3] = (guint8)(0x80 | (addr ? 0 : 3));           /* RA; NOERROR or NXDOMAIN */
  put16(out + 4, 1);
  put16(out + 6, answer ? 1 : 0);
  put16(out + 8, 0);
  put16(out + 10, 0);
  if (answer) {
    guint8 *a = out + qend;
    a[0] = 0xc0; /* the name: a pointer to the question's */
    a[1] = 12;
    put16(a + 2, DNS_TYPE_A);
    put16(a + 4, DNS_CLASS_IN);
    put16(a + 6, 0);
    put16(a + 8, DNS_TTL);
    put16(a + 10, 4);
    a[12] = (guint8)(addr >> 24);
    a[13] = (guint8)(addr >> 16);
    a[14] = (guint8)(addr >> 8);
    a[15] = (guint8)addr;
  }
  return need;
}
