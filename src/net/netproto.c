/* What sbx and sbx-switch say to each other, and a network's addresses.
 * The switch parses whatever any process of the user sends it: a GKeyFile
 * (GLib's parser), every field bounded and checked the way sbx run checks
 * the same options. */
#include "sbx/net.h"
#include "sbx/netswitch.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

void sbx_network_free(SbxNetwork *n)
{
  if (!n)
    return;
  g_free(n->name);
  g_free(n->created);
  g_free(n);
}

gboolean sbx_network_parse_subnet(const char *cidr, guint32 *net, guint *prefix, GError **err)
{
  const char *slash = cidr ? strchr(cidr, '/') : NULL;
  guint64 p;
  struct in_addr a;
  g_autofree char *ip = slash ? g_strndup(cidr, (gsize)(slash - cidr)) : NULL;
  if (!slash || inet_pton(AF_INET, ip, &a) != 1 ||
      !g_ascii_string_to_unsigned(slash + 1, 10, SBX_SWITCH_PREFIX_MIN, SBX_SWITCH_PREFIX_MAX, &p,
                                  NULL))
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "--subnet %s: expected an IPv4 CIDR with a prefix of /%d to /%d, such as "
                    "10.89.0.0/24",
                    cidr ? cidr : "", SBX_SWITCH_PREFIX_MIN, SBX_SWITCH_PREFIX_MAX);
  guint32 n = ntohl(a.s_addr), mask = 0xffffffffu << (32 - p);
  if (n & ~mask)
    return sbx_fail(err, SBX_ERROR_USAGE, "--subnet %s: the address has host bits set", cidr);
  /* The uplink must not shadow the host's loopback or "this network". */
  if ((n >> 24) == 127 || (n >> 24) == 0 || (n >> 28) >= 14)
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "--subnet %s: loopback, 0.0.0.0/8, multicast and reserved addresses are not "
                    "a network",
                    cidr);
  *net = n;
  *prefix = (guint)p;
  return TRUE;
}

char *sbx_network_address_text(guint32 addr)
{
  struct in_addr a = {.s_addr = htonl(addr)};
  char text[INET_ADDRSTRLEN];
  return g_strdup(inet_ntop(AF_INET, &a, text, sizeof text));
}

char *sbx_network_subnet_text(guint32 net, guint prefix)
{
  g_autofree char *a = sbx_network_address_text(net);
  return g_strdup_printf("%s/%u", a, prefix);
}

gboolean sbx_switch_name_valid(const char *name)
{
  gsize len = name ? strlen(name) : 0;
  if (len == 0 || len > 63 || !g_ascii_isalnum(name[0]))
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

static const char JOIN[] = "join";

char *sbx_switch_join_format(const SbxSwitchJoin *j)
{
  g_autoptr(GKeyFile) k = g_key_file_new();
  const char *const none[] = {NULL};
#define LIST(key, v)                                                                               \
  g_key_file_set_string_list(k, JOIN, key, (const char *const *)((v) ? (v) : (char **)none),       \
                             (v) ? g_strv_length(v) : 0)
  LIST("Names", j->names);
  LIST("Publish", j->publish);
  LIST("Allow", j->allow);
#undef LIST
  g_key_file_set_boolean(k, JOIN, "HostLoopback", j->host_loopback);
  g_key_file_set_boolean(k, JOIN, "RefuseHostAddresses", j->refuse_host_addresses);
  return g_key_file_to_data(k, NULL, NULL);
}

void sbx_switch_join_clear(SbxSwitchJoin *j)
{
  g_clear_pointer(&j->names, g_strfreev);
  g_clear_pointer(&j->publish, g_strfreev);
  g_clear_pointer(&j->allow, g_strfreev);
}

static char **get_list(GKeyFile *k, const char *key, gsize max, GError **err)
{
  gsize n = 0;
  char **v = g_key_file_get_string_list(k, JOIN, key, &n, NULL);
  if (!v)
    v = g_new0(char *, 1);
  if (n > max) {
    g_strfreev(v);
    sbx_fail(err, SBX_ERROR_USAGE, "join: more than %" G_GSIZE_FORMAT " %s", max, key);
    return NULL;
  }
  return v;
}

gboolean sbx_switch_join_parse(const char *text, SbxSwitchJoin *out, GError **err)
{
  memset(out, 0, sizeof *out);
  g_autoptr(GKeyFile) k = g_key_file_new();
  g_autoptr(GError) local = NULL;
  if (!g_key_file_load_from_data(k, text, (gsize)-1, G_KEY_FILE_NONE, &local))
    return sbx_fail(err, SBX_ERROR_USAGE, "join: %s", local->message);
  if (!(out->names = get_list(k, "Names", SBX_SWITCH_NAMES_MAX, err)) ||
      !(out->publish = get_list(k, "Publish", 256, err)) ||
      !(out->allow = get_list(k, "Allow", 1024, err))) {
    sbx_switch_join_clear(out);
    return FALSE;
  }
  for (char **n = out->names; *n; n++)
    if (!sbx_switch_name_valid(*n)) {
      g_autofree char *safe = sbx_escape_text(*n);
      sbx_fail(err, SBX_ERROR_USAGE, "'%s' is not a name on a network", safe);
      sbx_switch_join_clear(out);
      return FALSE;
    }
  SbxPortForward pf;
  SbxNetRule r;
  for (char **p = out->publish; *p; p++)
    if (!sbx_port_forward_parse(*p, &pf, err)) {
      sbx_switch_join_clear(out);
      return FALSE;
    }
  for (char **a = out->allow; *a; a++)
    if (!sbx_net_rule_parse(*a, &r, err)) {
      sbx_switch_join_clear(out);
      return FALSE;
    }
  out->host_loopback = g_key_file_get_boolean(k, JOIN, "HostLoopback", NULL);
  out->refuse_host_addresses = g_key_file_get_boolean(k, JOIN, "RefuseHostAddresses", NULL);
  return TRUE;
}

char *sbx_switch_lease_format(const SbxSwitchLease *l)
{
  return g_strdup_printf("address=%u gateway=%u dns=%u prefix=%u mac=%02x:%02x:%02x:%02x:%02x:%02x",
                         l->address, l->gateway, l->dns, l->prefix, l->mac[0], l->mac[1], l->mac[2],
                         l->mac[3], l->mac[4], l->mac[5]);
}

gboolean sbx_switch_lease_parse(const char *text, SbxSwitchLease *out)
{
  unsigned m[6];
  memset(out, 0, sizeof *out);
  if (!text || sscanf(text, "address=%u gateway=%u dns=%u prefix=%u mac=%x:%x:%x:%x:%x:%x",
                      &out->address, &out->gateway, &out->dns, &out->prefix, &m[0], &m[1], &m[2],
                      &m[3], &m[4], &m[5]) != 10)
    return FALSE;
  for (int i = 0; i < 6; i++) {
    if (m[i] > 0xff)
      return FALSE;
    out->mac[i] = (guint8)m[i];
  }
  return out->prefix >= SBX_SWITCH_PREFIX_MIN && out->prefix <= SBX_SWITCH_PREFIX_MAX;
}
