/* --net-log: what the sandbox tried on the network, as JSON lines.
 *
 *   {"time":"2026-12-01T17:40:00.123456Z","proto":"tcp","dst":"10.0.2.2",
 *    "port":8080,"verdict":"allowed"}
 *   {"time":...,"proto":"udp","dst":"10.0.2.3","port":53,
 *    "dns":"example.com","verdict":"refused","reason":"not-allowed"}
 *
 * One line per new flow (a TCP SYN, the first datagram of a UDP flow, a
 * ping), per refused attempt and per DNS query, written with one write(2)
 * each so a reader never sees half a line. The file is sbx's (opened before
 * sbx-net confines itself); past SBX_NET_LOG_MAX bytes it ends with
 * {"time":...,"truncated":true}. */
#include "sbx/net.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <string.h>
#include <time.h>

typedef struct {
  guint32 dst;
  guint16 sport, dport;
  int proto;
  gboolean refused;
} FlowKey;

static guint flow_hash(gconstpointer p)
{
  const FlowKey *k = p;
  return k->dst ^ ((guint)k->dport << 16 | k->sport) ^ ((guint)k->proto << 24) ^ (guint)k->refused;
}

static gboolean flow_equal(gconstpointer a, gconstpointer b)
{
  const FlowKey *x = a, *y = b;
  return x->dst == y->dst && x->sport == y->sport && x->dport == y->dport && x->proto == y->proto &&
         x->refused == y->refused;
}

void sbx_netlog_init(SbxNetLog *l, int fd)
{
  memset(l, 0, sizeof *l);
  l->fd = fd;
  l->seen = g_hash_table_new_full(flow_hash, flow_equal, g_free, NULL);
}

/* RFC 3339, UTC, microseconds. gmtime_r reads no time zone file (there is
 * none in sbx-net's empty root). */
static void append_time(GString *out)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  g_string_append_printf(out, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\"",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000);
}

static void write_line(SbxNetLog *l, GString *line)
{
  g_string_append(line, "}\n");
  if (l->written + line->len > SBX_NET_LOG_MAX - 128) {
    /* the last record says the log is incomplete */
    g_string_truncate(line, 0);
    append_time(line);
    g_string_append_printf(line, ",\"truncated\":true,\"limit\":%u}\n", SBX_NET_LOG_MAX);
    l->full = TRUE;
  }
  g_autoptr(GError) err = NULL;
  if (!sbx_write_all(l->fd, line->str, line->len, &err)) {
    sbx_debug("net-log: %s: no more records", err->message);
    l->full = TRUE;
  }
  l->written += line->len;
}

static const char *proto_name(int proto)
{
  switch (proto) {
  case IPPROTO_TCP:
    return "tcp";
  case IPPROTO_UDP:
    return "udp";
  case IPPROTO_ICMP:
    return "icmp";
  default:
    return NULL;
  }
}

static const char *qtype_name(guint16 t)
{
  static const struct {
    guint16 type;
    const char *name;
  } types[] = {{1, "A"},    {2, "NS"},    {5, "CNAME"}, {6, "SOA"},   {12, "PTR"},   {15, "MX"},
               {16, "TXT"}, {28, "AAAA"}, {33, "SRV"},  {64, "SVCB"}, {65, "HTTPS"}, {255, "ANY"}};
  for (guint i = 0; i < G_N_ELEMENTS(types); i++)
    if (types[i].type == t)
      return types[i].name;
  return NULL;
}

/* Each flow once: its first packet, and its first refused one. */
static gboolean first_of_flow(SbxNetLog *l, const SbxFrameInfo *info)
{
  FlowKey k = {.dst = info->dst,
               .sport = info->sport,
               .dport = info->dport,
               .proto = info->proto,
               .refused = info->refused != NULL};
  if (g_hash_table_contains(l->seen, &k))
    return FALSE;
  if (g_hash_table_size(l->seen) >= SBX_NET_LOG_FLOWS)
    g_hash_table_remove_all(l->seen);
  g_hash_table_add(l->seen, g_memdup2(&k, sizeof k));
  return TRUE;
}

void sbx_netlog_frame(SbxNetLog *l, const SbxFrameInfo *info)
{
  if (l->fd < 0 || l->full || info->proto == 0)
    return; /* not IPv4 (ARP; IPv6 and other types are refused unlogged) */
  if (!info->new_flow && !info->refused)
    return; /* the rest of a flow already logged */
  char name[SBX_DNS_NAME_MAX];
  guint16 qtype = 0;
  gboolean dns = info->proto == IPPROTO_UDP &&
                 (info->dst == SBX_NET_DNS_ADDR || info->to_resolver) && info->dport == 53 &&
                 info->payload &&
                 sbx_net_dns_query_name(info->payload, info->payload_len, name, &qtype);
  if (!dns && !first_of_flow(l, info))
    return;
  g_autoptr(GString) line = g_string_new(NULL);
  append_time(line);
  const char *proto = proto_name(info->proto);
  if (proto)
    g_string_append_printf(line, ",\"proto\":\"%s\"", proto);
  else
    g_string_append_printf(line, ",\"proto\":%d", info->proto);
  char dst[INET_ADDRSTRLEN];
  struct in_addr a = {.s_addr = htonl(info->dst)};
  inet_ntop(AF_INET, &a, dst, sizeof dst);
  g_string_append_printf(line, ",\"dst\":\"%s\"", dst);
  if (info->proto == IPPROTO_TCP || info->proto == IPPROTO_UDP)
    g_string_append_printf(line, ",\"port\":%u", info->dport);
  if (dns) {
    g_string_append(line, ",\"dns\":");
    sbx_json_append_string(line, name);
    const char *type = qtype_name(qtype);
    if (type)
      g_string_append_printf(line, ",\"qtype\":\"%s\"", type);
    else
      g_string_append_printf(line, ",\"qtype\":%u", qtype);
  }
  g_string_append_printf(line, ",\"verdict\":\"%s\"", info->refused ? "refused" : "allowed");
  if (info->refused)
    g_string_append_printf(line, ",\"reason\":\"%s\"", info->refused);
  write_line(l, line);
}
