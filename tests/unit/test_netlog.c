/* --net-log's records (src/net/log.c): JSON lines json-glib accepts, each
 * flow once, DNS names escaped, the size bound. */
#include "sbx/json.h"
#include "sbx/netd.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static int temp_fd(void)
{
  FILE *f = tmpfile();
  g_assert_nonnull(f);
  return dup(fileno(f)); /* the FILE leaks; the test is short */
}

static GStrv read_lines(int fd)
{
  g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
  GString *all = g_string_new(NULL);
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    g_string_append_len(all, buf, n);
  g_assert_true(all->len == 0 || all->str[all->len - 1] == '\n');
  /* by hand: ASan's strstr makes g_strsplit quadratic on 16 MiB */
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  for (char *p = all->str, *nl; (nl = memchr(p, '\n', all->len - (gsize)(p - all->str)));
       p = nl + 1) {
    *nl = '\0';
    g_strv_builder_add(b, p);
  }
  g_string_free(all, TRUE);
  return g_strv_builder_end(b);
}

static JsonObject *parse_line(const char *line, JsonNode **keep)
{
  g_autoptr(GError) err = NULL;
  *keep = sbx_json_parse(line, strlen(line), "net-log line", &err);
  g_assert_no_error(err);
  return json_node_get_object(*keep);
}

static SbxFrameInfo flow(int proto, const char *dst, guint16 sport, guint16 dport)
{
  SbxFrameInfo i = {.new_flow = TRUE, .proto = proto, .sport = sport, .dport = dport};
  struct in_addr a;
  inet_pton(AF_INET, dst, &a);
  i.dst = ntohl(a.s_addr);
  return i;
}

static void test_records(void)
{
  SbxNetLog l;
  sbx_netlog_init(&l, temp_fd());
  SbxFrameInfo syn = flow(IPPROTO_TCP, "192.0.2.1", 40000, 443);
  sbx_netlog_frame(&l, &syn);
  sbx_netlog_frame(&l, &syn); /* a retransmitted SYN */
  SbxFrameInfo dgram = flow(IPPROTO_UDP, "192.0.2.1", 40001, 5000);
  for (int i = 0; i < 5; i++)
    sbx_netlog_frame(&l, &dgram); /* one UDP flow */
  SbxFrameInfo refused = flow(IPPROTO_UDP, "198.51.100.1", 40002, 67);
  refused.refused = "not-allowed";
  sbx_netlog_frame(&l, &refused);
  /* a DNS query for a name of hostile bytes */
  guint8 q[] = {0x12, 0x34, 0x01, 0x00, 0, 1,   0,   0,   0, 0, 0, 0, 5, 'a',
                '"',  0x1b, '.',  0xff, 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
  SbxFrameInfo dns = flow(IPPROTO_UDP, "10.0.2.3", 40003, 53);
  dns.payload = q;
  dns.payload_len = sizeof q;
  sbx_netlog_frame(&l, &dns);
  sbx_netlog_frame(&l, &dns); /* every query, not once per flow */
  SbxFrameInfo established = flow(IPPROTO_TCP, "192.0.2.1", 40000, 443);
  established.new_flow = FALSE;
  sbx_netlog_frame(&l, &established);
  g_auto(GStrv) lines = read_lines(l.fd);
  g_assert_cmpuint(g_strv_length(lines), ==, 5);
  JsonNode *n[5];
  JsonObject *o[5];
  for (int i = 0; i < 5; i++)
    o[i] = parse_line(lines[i], &n[i]);
  g_assert_cmpstr(json_object_get_string_member(o[0], "proto"), ==, "tcp");
  g_assert_cmpstr(json_object_get_string_member(o[0], "dst"), ==, "192.0.2.1");
  g_assert_cmpint(json_object_get_int_member(o[0], "port"), ==, 443);
  g_assert_cmpstr(json_object_get_string_member(o[0], "verdict"), ==, "allowed");
  g_assert_false(json_object_has_member(o[0], "reason"));
  g_assert_true(g_regex_match_simple("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z$",
                                     json_object_get_string_member(o[0], "time"), 0, 0));
  g_assert_cmpstr(json_object_get_string_member(o[1], "proto"), ==, "udp");
  g_assert_cmpstr(json_object_get_string_member(o[2], "verdict"), ==, "refused");
  g_assert_cmpstr(json_object_get_string_member(o[2], "reason"), ==, "not-allowed");
  g_assert_cmpstr(json_object_get_string_member(o[3], "dns"), ==, "a\"\x1b\\.\xc3\xbf.com");
  g_assert_cmpstr(json_object_get_string_member(o[3], "qtype"), ==, "A");
  g_assert_null(strchr(lines[3], 0x1b)); /* escaped in the file */
  for (int i = 0; i < 5; i++)
    json_node_unref(n[i]);
  close(l.fd);
  g_hash_table_unref(l.seen);
}

static void test_bounded(void)
{
  SbxNetLog l;
  sbx_netlog_init(&l, temp_fd());
  guint count = 0;
  for (guint32 i = 0; !l.full; i++, count++) {
    SbxFrameInfo f = flow(IPPROTO_TCP, "192.0.2.1", (guint16)i, (guint16)(i >> 16));
    f.dst += i >> 28;
    sbx_netlog_frame(&l, &f);
    g_assert_cmpuint(count, <, 1000000);
  }
  g_assert_cmpuint(g_hash_table_size(l.seen), <=, SBX_NET_LOG_FLOWS);
  SbxFrameInfo more = flow(IPPROTO_TCP, "203.0.113.1", 1, 1);
  sbx_netlog_frame(&l, &more); /* nothing after the end */
  g_auto(GStrv) lines = read_lines(l.fd);
  guint n = g_strv_length(lines);
  g_assert_cmpuint(n, ==, count);
  g_assert_cmpuint(lseek(l.fd, 0, SEEK_END), <=, SBX_NET_LOG_MAX);
  JsonNode *keep;
  JsonObject *last = parse_line(lines[n - 1], &keep);
  g_assert_true(json_object_get_boolean_member(last, "truncated"));
  json_node_unref(keep);
  close(l.fd);
  g_hash_table_unref(l.seen);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/netlog/records", test_records);
  g_test_add_func("/netlog/bounded", test_bounded);
  return g_test_run();
}
