/* Sandbox networks (`sbx network create`, `sbx run --network NAME`): a
 * user-space Ethernet switch per network, the sbx-switch program.
 *
 * Every sandbox on a network keeps its own tap0; sbx hands its fd to the
 * network's switch over a unix socket in the network's directory. The switch
 * forwards frames between the taps by MAC address, answers DNS for the
 * sandboxes' names, and (unless the network is internal) reaches the world
 * through one libslirp uplink. It is started by the first sandbox that joins
 * and exits when the last one has gone. */
#pragma once

#include "sbx/net.h"

#include <glib.h>

/* The fds sbx-switch starts with: the listening socket (SOCK_SEQPACKET,
 * bound to the network's `sock`) and the network's `lock` file. */
enum { SBX_SWITCH_FD_LISTEN = 3, SBX_SWITCH_FD_LOCK = 4 };

/* Addresses in a network's subnet: .1 the uplink (libslirp's gateway), .2
 * the switch's DNS server, sandboxes from .10 on. */
#define SBX_SWITCH_GATEWAY_HOST 1u
#define SBX_SWITCH_DNS_HOST     2u
#define SBX_SWITCH_FIRST_HOST   10u
/* Prefix lengths a network may have: /16 (65k sandboxes) to /28. */
#define SBX_SWITCH_PREFIX_MIN 16
#define SBX_SWITCH_PREFIX_MAX 28
/* Every tap on a network has the same MTU (frames cross unchanged). */
#define SBX_SWITCH_MTU 65520
/* The most sandboxes (ports) one switch serves at once. */
#define SBX_SWITCH_PORTS_MAX 1024
/* A sandbox's names on the network: --name and each --network-alias. */
#define SBX_SWITCH_NAMES_MAX 16

/* What a network is (its `config` keyfile). */
typedef struct {
  char *name;
  guint32 net; /* host order, the subnet's first address */
  guint prefix;
  gboolean internal; /* no uplink: the sandboxes reach only each other */
  char *created;     /* ISO 8601 */
} SbxNetwork;
void sbx_network_free(SbxNetwork *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SbxNetwork, sbx_network_free)

/* "10.89.0.0/24" -> net, prefix (host bits must be zero). */
gboolean sbx_network_parse_subnet(const char *cidr, guint32 *net, guint *prefix, GError **err);
char *sbx_network_subnet_text(guint32 net, guint prefix);
char *sbx_network_address_text(guint32 addr);

/* What sbx asks the switch for when a sandbox joins (a GKeyFile on the
 * socket, group "join"), and what it answers. */
typedef struct {
  char **names;   /* --name (if any) and --network-alias */
  char **publish; /* -p specs */
  char **allow;   /* --net-allow rules */
  gboolean host_loopback;
  gboolean refuse_host_addresses;
} SbxSwitchJoin;
char *sbx_switch_join_format(const SbxSwitchJoin *j);
/* Parsed and every field checked (untrusted: any process of the user may
 * connect). Strings in *out are owned by the caller (sbx_switch_join_clear). */
gboolean sbx_switch_join_parse(const char *text, SbxSwitchJoin *out, GError **err);
void sbx_switch_join_clear(SbxSwitchJoin *j);

/* The switch's answer: the sandbox's address and MAC on the network. */
typedef struct {
  guint32 address, gateway, dns; /* host order; gateway 0: internal */
  guint prefix;
  guint8 mac[6];
} SbxSwitchLease;
char *sbx_switch_lease_format(const SbxSwitchLease *l);
gboolean sbx_switch_lease_parse(const char *text, SbxSwitchLease *out);

/* net/switch-dns.c (in libsbx-core for the tests): the answer to a DNS query (UDP payload) for a
 * name on the network. lookup says a name's address (0: not on the network). Returns the answer's
 * length in out (at most out_size), or 0 when the query is not for a name on the network (the
 * uplink's resolver gets it, or, internal, sbx_switch_dns_answer(..., nxdomain TRUE) says it has
 * none). */
typedef guint32 (*SbxSwitchLookup)(const char *name, gpointer data);
gsize sbx_switch_dns_answer(const guint8 *query, gsize len, SbxSwitchLookup lookup, gpointer data,
                            gboolean nxdomain, guint8 *out, gsize out_size);

/* Names on a network: letters, digits, '-', '_', '.', 1..63 bytes, starting
 * with a letter or digit (they are DNS labels and sandbox names). */
gboolean sbx_switch_name_valid(const char *name);

/* sandbox/network.c: the user's networks, in <state dir>/.networks/NAME/
 * (state.c's directory, private to the user): `config` (GKeyFile), `lock`
 * (flock: starting or stopping its switch, removing it), `sock` (the running
 * switch's socket) and `log` (the switch's stderr). */
gboolean sbx_network_create(const char *name, const char *subnet, gboolean internal, GError **err);
SbxNetwork *sbx_network_load(const char *name, GError **err);
/* Every network's name, sorted. */
char **sbx_network_names(void);
/* The sandboxes on it now, one "ADDRESS MAC NAME,ALIAS..." each (none when
 * its switch is not running). */
char **sbx_network_members(const char *name, GError **err);
/* Refused (SBX_ERROR_FAILED, naming them) while sandboxes are on it. */
gboolean sbx_network_remove(const char *name, GError **err);
/* Join NAME: connect to its switch (starting one when none runs), send j,
 * get the sandbox's address. Returns the connection (held for as long as
 * the sandbox runs: closing it frees the address) or -1. */
int sbx_network_join(const char *name, const SbxSwitchJoin *j, const char *resolv_conf,
                     SbxSwitchLease *lease, GError **err);
/* Then hand it --net-log's file (log_fd > 2) and the sandbox's tap0. */
gboolean sbx_network_hand_tap(int sock, int tap, int log_fd, GError **err);
/* The sandbox's counters (what went through the uplink, what was refused),
 * also after its network namespace has gone, while sock is open. */
gboolean sbx_network_stats(int sock, SbxNetStats *out, GError **err);
