/* sbx network create | ls | inspect | rm: the user's sandbox networks
 * (sandbox/network.c; the switch is src/net/switch.c). */
#include "sbx/cli.h"
#include "sbx/netswitch.h"
#include "sbx/util.h"

#include <stdio.h>
#include <string.h>

static char *subnet_opt, *format_opt;
static gboolean internal_opt;

static GOptionEntry entries[] = {
    {"subnet", 0, 0, G_OPTION_ARG_STRING, &subnet_opt,
     "create: the network's IPv4 subnet, /16 to /28 (default: the first free 10.89.N.0/24)",
     "CIDR"},
    {"internal", 0, 0, G_OPTION_ARG_NONE, &internal_opt,
     "create: no way out (the sandboxes reach only each other)", NULL},
    {"format", 0, 0, G_OPTION_ARG_STRING, &format_opt, "ls, inspect: table (default) or json",
     "FORMAT"},
    {NULL}};

static void clear_options(void)
{
  g_clear_pointer(&subnet_opt, g_free);
  g_clear_pointer(&format_opt, g_free);
  internal_opt = FALSE;
}

static gboolean want_json(GError **err)
{
  if (format_opt && strcmp(format_opt, "json") != 0 && strcmp(format_opt, "table") != 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "--format: '%s' is not table or json", format_opt);
  return g_strcmp0(format_opt, "json") == 0;
}

/* One member line of the switch, "ADDRESS MAC NAMES", as JSON. */
static void member_json(GString *out, const char *line)
{
  g_auto(GStrv) f = g_strsplit(line, " ", 3);
  g_string_append(out, "{\"Address\": ");
  sbx_json_append_string(out, f[0]);
  g_string_append(out, ", \"MAC\": ");
  sbx_json_append_string(out, f[0] ? f[1] : NULL);
  g_string_append(out, ", \"Names\": [");
  g_auto(GStrv) names = g_strsplit(f[0] && f[1] && f[2] ? f[2] : "", ",", -1);
  for (char **n = names; *n; n++) {
    if (!**n)
      continue;
    if (n != names)
      g_string_append(out, ", ");
    sbx_json_append_string(out, *n);
  }
  g_string_append(out, "]}");
}

static void network_json(GString *out, const SbxNetwork *n, char **members)
{
  g_autofree char *subnet = sbx_network_subnet_text(n->net, n->prefix);
  g_autofree char *gw = sbx_network_address_text(n->net + SBX_SWITCH_GATEWAY_HOST);
  g_autofree char *dns = sbx_network_address_text(n->net + SBX_SWITCH_DNS_HOST);
  g_string_append(out, "{\"Name\": ");
  sbx_json_append_string(out, n->name);
  g_string_append(out, ", \"Subnet\": ");
  sbx_json_append_string(out, subnet);
  g_string_append(out, ", \"Gateway\": ");
  sbx_json_append_string(out, n->internal ? NULL : gw);
  g_string_append(out, ", \"DNS\": ");
  sbx_json_append_string(out, dns);
  g_string_append_printf(out, ", \"Internal\": %s, \"Created\": ", n->internal ? "true" : "false");
  sbx_json_append_string(out, n->created);
  g_string_append(out, ", \"Sandboxes\": [");
  for (char **m = members; m && *m; m++) {
    if (m != members)
      g_string_append(out, ", ");
    member_json(out, *m);
  }
  g_string_append(out, "]}");
}

static int create(char **args, GError **err)
{
  if (format_opt)
    return sbx_fail(err, SBX_ERROR_USAGE, "network create: --format is for ls and inspect"), -1;
  if (!args[0] || args[1])
    return sbx_fail(err, SBX_ERROR_USAGE, "network create: give one network name"), -1;
  if (!sbx_network_create(args[0], subnet_opt, internal_opt, err))
    return -1;
  printf("%s\n", args[0]);
  return 0;
}

static int list(char **args, GError **err)
{
  gboolean json = want_json(err);
  if (err && *err)
    return -1;
  if (args[0])
    return sbx_fail(err, SBX_ERROR_USAGE, "network ls: takes no operands"), -1;
  g_auto(GStrv) names = sbx_network_names();
  g_autoptr(GString) out = g_string_new(json ? "[" : NULL);
  if (!json)
    g_string_append_printf(out, "%-20s %-18s %-9s %s\n", "NAME", "SUBNET", "INTERNAL", "SANDBOXES");
  for (char **name = names; *name; name++) {
    g_autoptr(SbxNetwork) n = sbx_network_load(*name, NULL);
    if (!n)
      continue;
    g_auto(GStrv) members = sbx_network_members(*name, NULL);
    if (json) {
      if (out->len > 1)
        g_string_append(out, ",\n ");
      network_json(out, n, members);
      continue;
    }
    g_autofree char *subnet = sbx_network_subnet_text(n->net, n->prefix);
    g_string_append_printf(out, "%-20s %-18s %-9s %u\n", n->name, subnet,
                           n->internal ? "yes" : "no", members ? g_strv_length(members) : 0);
  }
  if (json)
    g_string_append(out, "]\n");
  fputs(out->str, stdout);
  return 0;
}

static int inspect(char **args, GError **err)
{
  if (format_opt && strcmp(format_opt, "json") != 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "network inspect: prints JSON only (--format json)"), -1;
  if (!args[0])
    return sbx_fail(err, SBX_ERROR_USAGE, "network inspect: give a network name"), -1;
  g_autoptr(GString) out = g_string_new("[");
  for (char **name = args; *name; name++) {
    g_autoptr(SbxNetwork) n = sbx_network_load(*name, err);
    if (!n)
      return -1;
    g_auto(GStrv) members = sbx_network_members(*name, err);
    if (!members)
      return -1;
    if (name != args)
      g_string_append(out, ",\n ");
    network_json(out, n, members);
  }
  g_string_append(out, "]\n");
  fputs(out->str, stdout);
  return 0;
}

static int remove_networks(char **args, GError **err)
{
  if (format_opt)
    return sbx_fail(err, SBX_ERROR_USAGE, "network rm: --format is for ls and inspect"), -1;
  if (!args[0])
    return sbx_fail(err, SBX_ERROR_USAGE, "network rm: give a network name"), -1;
  for (char **name = args; *name; name++) {
    if (!sbx_network_remove(*name, err))
      return -1;
    printf("%s\n", *name);
  }
  return 0;
}

static int network_parsed(int argc, char **argv, GError **err)
{
  const char *sub = argc > 1 ? argv[1] : NULL;
  if ((subnet_opt || internal_opt) && g_strcmp0(sub, "create") != 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "network: --subnet and --internal are for create"), -1;
  if (g_strcmp0(sub, "create") == 0)
    return create(argv + 2, err);
  if (g_strcmp0(sub, "ls") == 0 || g_strcmp0(sub, "list") == 0)
    return list(argv + 2, err);
  if (g_strcmp0(sub, "inspect") == 0)
    return inspect(argv + 2, err);
  if (g_strcmp0(sub, "rm") == 0 || g_strcmp0(sub, "remove") == 0)
    return remove_networks(argv + 2, err);
  return sbx_fail(err, SBX_ERROR_USAGE,
                  "network: expected create, ls, inspect or rm (see 'sbx network --help')"),
         -1;
}

int sbx_cmd_network(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "create|ls|inspect|rm [NAME...]",
      "Sandbox networks: sandboxes run with --network NAME reach each other by address and "
      "by name.\n\n"
      "  create NAME   make a network (--subnet, --internal)\n"
      "  ls            list the networks (--format)\n"
      "  inspect NAME  show a network and its sandboxes, as JSON\n"
      "  rm NAME       remove a network no sandbox is on",
      entries,
      FALSE,
      network_parsed,
      clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}
