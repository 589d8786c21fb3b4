/* Sandbox networks on disk and the way in: `sbx network create/ls/rm`, and
 * `sbx run --network NAME` joining (or starting) the network's switch.
 *
 * A network lives in the user's private state directory (state.c), beside
 * the named sandboxes, as .networks/NAME/. Its switch is started by whoever
 * finds none answering, under the network's lock: two sandboxes starting at
 * once get one switch, and one that exits as the last port leaves takes the
 * same lock first (src/net/switch.c idle_check). */
#include "sbx/netswitch.h"
#include "sbx/state.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONFIG_GROUP "network"

static char *networks_dir(GError **err)
{
  g_autofree char *base = sbx_state_base(err);
  if (!base)
    return NULL;
  char *dir = g_build_filename(base, ".networks", NULL);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    sbx_fail_errno(err, "networks %s", dir);
    g_free(dir);
    return NULL;
  }
  return dir;
}

static gboolean name_ok(const char *name, GError **err)
{
  if (sbx_switch_name_valid(name))
    return TRUE;
  g_autofree char *safe = sbx_escape_text(name ? name : "");
  return sbx_fail(err, SBX_ERROR_USAGE,
                  "'%s' is not a network name (letters, digits, '-', '_', '.'; at most 63)", safe);
}

/* .networks/NAME opened, or NOT_FOUND. */
static int open_network(const char *name, GError **err)
{
  if (!name_ok(name, err))
    return -1;
  g_autofree char *dir = networks_dir(err);
  if (!dir)
    return -1;
  g_autofree char *path = g_build_filename(dir, name, NULL);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    sbx_fail(err, SBX_ERROR_NOT_FOUND, "no network named %s (see 'sbx network ls')", name);
  else if (fd < 0)
    sbx_fail_errno(err, "network %s", name);
  return fd;
}

/* An exclusive flock on dirfd's `file`; the fd holds it. */
static int lock_file(int dirfd, const char *file, GError **err)
{
  int fd = openat(dirfd, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    sbx_fail_errno(err, "network lock");
    return -1;
  }
  while (flock(fd, LOCK_EX) < 0)
    if (errno != EINTR) {
      close(fd);
      sbx_fail_errno(err, "network lock");
      return -1;
    }
  return fd;
}

static int lock_network(int dirfd, GError **err)
{
  return lock_file(dirfd, "lock", err);
}

static SbxNetwork *load_config(int dirfd, const char *name, GError **err)
{
  g_autofree char *path = g_strdup_printf("/proc/self/fd/%d/config", dirfd);
  g_autoptr(GKeyFile) k = g_key_file_new();
  g_autoptr(GError) local = NULL;
  if (!g_key_file_load_from_file(k, path, G_KEY_FILE_NONE, &local)) {
    sbx_fail(err, SBX_ERROR_FAILED, "network %s: its config is unreadable (%s)", name,
             local->message);
    return NULL;
  }
  g_autoptr(SbxNetwork) n = g_new0(SbxNetwork, 1);
  n->name = g_strdup(name);
  g_autofree char *subnet = g_key_file_get_string(k, CONFIG_GROUP, "Subnet", NULL);
  if (!sbx_network_parse_subnet(subnet, &n->net, &n->prefix, err))
    return NULL;
  n->internal = g_key_file_get_boolean(k, CONFIG_GROUP, "Internal", NULL);
  n->created = g_key_file_get_string(k, CONFIG_GROUP, "Created", NULL);
  return g_steal_pointer(&n);
}

SbxNetwork *sbx_network_load(const char *name, GError **err)
{
  sbx_autofd dirfd = open_network(name, err);
  return dirfd < 0 ? NULL : load_config(dirfd, name, err);
}

static gint cmp_strp(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

char **sbx_network_names(void)
{
  g_autofree char *dir = networks_dir(NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new();
  g_autoptr(GDir) d = dir ? g_dir_open(dir, 0, NULL) : NULL;
  const char *e;
  while (d && (e = g_dir_read_name(d)))
    if (sbx_switch_name_valid(e))
      g_ptr_array_add(names, g_strdup(e));
  g_ptr_array_sort(names, cmp_strp);
  g_ptr_array_add(names, NULL);
  return (char **)g_ptr_array_free(g_steal_pointer(&names), FALSE);
}

/* The first 10.89.N.0/24 no other network has (podman counts from there too,
 * in its own namespace: sbx's addresses never meet the host's). */
static gboolean default_subnet(guint32 *net, guint *prefix, GError **err)
{
  g_auto(GStrv) names = sbx_network_names();
  for (guint32 n = 0; n < 256; n++) {
    guint32 cand = 0x0a590000u | n << 8; /* 10.89.n.0 */
    gboolean used = FALSE;
    for (char **nm = names; *nm && !used; nm++) {
      g_autoptr(SbxNetwork) other = sbx_network_load(*nm, NULL);
      used = other && (cand & (0xffffffffu << (32 - other->prefix))) == other->net;
    }
    if (!used) {
      *net = cand;
      *prefix = 24;
      return TRUE;
    }
  }
  return sbx_fail(err, SBX_ERROR_FAILED, "network: 10.89.0.0/16 is used up: give --subnet");
}

gboolean sbx_network_create(const char *name, const char *subnet, gboolean internal, GError **err)
{
  if (!name_ok(name, err))
    return FALSE;
  g_autofree char *dir = networks_dir(err);
  if (!dir)
    return FALSE;
  sbx_autofd top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (top < 0)
    return sbx_fail_errno(err, "networks %s", dir);
  /* One create at a time: the default subnet is the first one free. */
  sbx_autofd lock = lock_file(top, ".lock", err);
  if (lock < 0)
    return FALSE;
  guint32 net;
  guint prefix;
  if (subnet ? !sbx_network_parse_subnet(subnet, &net, &prefix, err)
             : !default_subnet(&net, &prefix, err))
    return FALSE;
  if (mkdirat(top, name, 0700) < 0) {
    if (errno == EEXIST)
      return sbx_fail(err, SBX_ERROR_FAILED, "network %s exists already", name);
    return sbx_fail_errno(err, "network %s", name);
  }
  sbx_autofd dirfd = openat(top, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0)
    return sbx_fail_errno(err, "network %s", name);
  g_autoptr(GKeyFile) k = g_key_file_new();
  g_autofree char *text = sbx_network_subnet_text(net, prefix);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *created = g_date_time_format_iso8601(now);
  g_key_file_set_string(k, CONFIG_GROUP, "Subnet", text);
  g_key_file_set_boolean(k, CONFIG_GROUP, "Internal", internal);
  g_key_file_set_string(k, CONFIG_GROUP, "Created", created);
  gsize len;
  g_autofree char *data = g_key_file_to_data(k, &len, NULL);
  g_autoptr(GError) local = NULL;
  if (!sbx_write_file_atomic(dirfd, "config", data, len, 0600, &local)) {
    unlinkat(top, name, AT_REMOVEDIR);
    /* "write config: No space left on device" named neither. */
    int e = sbx_error_errno(local);
    if (!e) {
      g_propagate_prefixed_error(err, g_steal_pointer(&local), "network %s: ", name);
      return FALSE;
    }
    return sbx_fail_errnum(err, e, "network %s: write %s/%s/config", name, dir, name);
  }
  return TRUE;
}

/* The running switch's socket, or -1 (errno ENOENT/ECONNREFUSED: none). The
 * path goes through /proc/self/fd: sun_path's 108 bytes are not a limit on
 * where the state directory is. */
static int connect_switch(int dirfd)
{
  sbx_autofd s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -1;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/sock", dirfd);
  int r;
  do
    r = connect(s, (struct sockaddr *)&sa, sizeof sa);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : sbx_steal_fd(&s);
}

static void switch_setup(gpointer data)
{
  /* Its own session: the terminal's ^C is for the sandbox that started it,
   * not for the network every other sandbox uses. */
  setsid();
}

/* A new switch on a fresh socket (called with the network's lock held). */
static gboolean start_switch(int dirfd, const SbxNetwork *n, const char *resolv_conf, GError **err)
{
  unlinkat(dirfd, "sock", 0);
  sbx_autofd ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (ls < 0)
    return sbx_fail_errno(err, "network %s: socket", n->name);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/sock", dirfd);
  mode_t old = umask(077);
  int r = bind(ls, (struct sockaddr *)&sa, sizeof sa);
  umask(old);
  if (r < 0 || listen(ls, 64) < 0)
    return sbx_fail_errno(err, "network %s: its socket", n->name);
  /* Its own open file of the lock: flock belongs to the open file, and the
   * switch must not find ours held by itself. */
  sbx_autofd lock = openat(dirfd, "lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  sbx_autofd log =
      openat(dirfd, "log", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (lock < 0 || log < 0)
    return sbx_fail_errno(err, "network %s: lock or log", n->name);
  g_autofree char *path = sbx_helper_path("sbx-switch", err);
  if (!path)
    return FALSE;
  g_autofree char *subnet = sbx_network_subnet_text(n->net, n->prefix);
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(argv, g_strdup(path));
  g_ptr_array_add(argv, g_strdup_printf("--subnet=%s", subnet));
  if (n->internal)
    g_ptr_array_add(argv, g_strdup("--internal"));
  g_ptr_array_add(argv, g_strdup_printf("--log-level=%s", sbx_log_level_name()));
  if (resolv_conf)
    g_ptr_array_add(argv, g_strdup_printf("--resolv-conf=%s", resolv_conf));
  g_ptr_array_add(argv, NULL);
  int source_fds[] = {ls, lock};
  int target_fds[] = {SBX_SWITCH_FD_LISTEN, SBX_SWITCH_FD_LOCK};
  g_auto(GStrv) env = sbx_helper_environ(NULL);
  g_autoptr(GError) local = NULL;
  /* Not our child for long: GLib forks twice unless told to leave it to us,
   * so the switch outlives this sandbox and is nobody's zombie. */
  if (!g_spawn_async_with_pipes_and_fds(
          NULL, (const char *const *)argv->pdata, (const char *const *)env,
          G_SPAWN_STDIN_FROM_DEV_NULL | G_SPAWN_STDOUT_TO_DEV_NULL, switch_setup, NULL, -1, -1, log,
          source_fds, target_fds, 2, NULL, NULL, NULL, NULL, &local))
    return sbx_fail(err, SBX_ERROR_FAILED, "start %s: %s", path, local->message);
  sbx_debug("network %s: switch started on %s", n->name, subnet);
  return TRUE;
}

int sbx_network_join(const char *name, const SbxSwitchJoin *j, const char *resolv_conf,
                     SbxSwitchLease *lease, GError **err)
{
  sbx_autofd dirfd = open_network(name, err);
  if (dirfd < 0)
    return -1;
  g_autoptr(SbxNetwork) n = load_config(dirfd, name, err);
  if (!n)
    return -1;
  g_autofree char *text = sbx_switch_join_format(j);
  g_autofree char *msg = g_strconcat("join\n", text, NULL);
  if (strlen(msg) > 4000) {
    sbx_fail(err, SBX_ERROR_USAGE, "--network %s: too many -p and --net-allow", name);
    return -1;
  }
  /* The lock is held until the switch has answered the join: `sbx network
   * rm` (which takes it too) then finds this sandbox among the members, and
   * never removes the network between our connect and our join. The switch
   * only tries the lock (LOCK_NB) before it exits, so it keeps answering. */
  sbx_autofd lock = lock_network(dirfd, err);
  if (lock < 0)
    return -1;
  sbx_autofd sock = connect_switch(dirfd);
  if (sock < 0 && errno != ENOENT && errno != ECONNREFUSED) {
    sbx_fail_errno(err, "network %s: connect to its switch", name);
    return -1;
  }
  if (sock < 0) {
    if (!start_switch(dirfd, n, resolv_conf, err))
      return -1;
    if ((sock = connect_switch(dirfd)) < 0) {
      sbx_fail_errno(err, "network %s: connect to its switch", name);
      return -1;
    }
  }
  g_autofree char *reply = NULL;
  g_autoptr(GError) local = NULL;
  if (!sbx_sync_send_ok(sock, msg) || !sbx_sync_recv(sock, &reply, "network switch", &local)) {
    if (!local)
      sbx_fail_errno(&local, "network switch");
    g_autofree char *base = sbx_state_base(NULL);
    if (strstr(local->message, "exited"))
      sbx_fail(err, SBX_ERROR_FAILED, "network %s: %s (see %s/.networks/%s/log)", name,
               local->message, base ? base : "", name);
    else
      g_propagate_error(err, g_steal_pointer(&local));
    return -1;
  }
  sbx_close_fdp(&lock);
  lock = -1;
  if (!sbx_switch_lease_parse(reply, lease)) {
    sbx_fail(err, SBX_ERROR_FAILED, "network %s: the switch answered '%s'", name, reply);
    return -1;
  }
  return sbx_steal_fd(&sock);
}

gboolean sbx_network_hand_tap(int sock, int tap, int log_fd, GError **err)
{
  if (log_fd > STDERR_FILENO &&
      (!sbx_sync_send_fd(sock, "log", log_fd) || !sbx_sync_recv(sock, NULL, "network switch", err)))
    return err && *err ? FALSE : sbx_fail_errno(err, "network: hand --net-log to the switch");
  if (!sbx_sync_send_fd(sock, "tap", tap))
    return sbx_fail_errno(err, "network: hand tap0 to the switch");
  return sbx_sync_recv(sock, NULL, "network switch", err);
}

gboolean sbx_network_stats(int sock, SbxNetStats *out, GError **err)
{
  g_autofree char *text = NULL;
  if (!sbx_sync_send_ok(sock, "stats"))
    return sbx_fail_errno(err, "network: ask the switch for the counters");
  /* A switch that does not answer (stopped, gone) must not hold sbx's exit. */
  struct pollfd p = {.fd = sock, .events = POLLIN};
  int r;
  do
    r = poll(&p, 1, 2000);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "network switch: no counters after 2 s");
  if (!sbx_sync_recv(sock, &text, "network switch", err))
    return FALSE;
  if (!sbx_net_stats_parse(text, out))
    return sbx_fail(err, SBX_ERROR_FAILED, "network switch: bad counters");
  return TRUE;
}

char **sbx_network_members(const char *name, GError **err)
{
  sbx_autofd dirfd = open_network(name, err);
  if (dirfd < 0)
    return NULL;
  sbx_autofd sock = connect_switch(dirfd);
  g_autofree char *reply = NULL;
  if (sock < 0 || !sbx_sync_send_ok(sock, "list") ||
      !sbx_sync_recv(sock, &reply, "network switch", NULL))
    return g_new0(char *, 1);
  g_strchomp(reply);
  return *reply ? g_strsplit(reply, "\n", -1) : g_new0(char *, 1);
}

gboolean sbx_network_remove(const char *name, GError **err)
{
  sbx_autofd dirfd = open_network(name, err);
  if (dirfd < 0)
    return FALSE;
  /* Held until the directory is gone: no sandbox can join meanwhile. */
  sbx_autofd lock = lock_network(dirfd, err);
  if (lock < 0)
    return FALSE;
  g_auto(GStrv) members = sbx_network_members(name, err);
  if (!members)
    return FALSE;
  if (members[0]) {
    g_autoptr(GString) who = g_string_new(NULL);
    for (char **m = members; *m; m++) {
      g_auto(GStrv) f = g_strsplit(*m, " ", 3);
      const char *label = f[0] && f[1] && f[2] && *f[2] ? f[2] : f[0];
      g_autofree char *safe = sbx_escape_text(label ? label : "?");
      g_string_append_printf(who, "%s%s", who->len ? ", " : "", safe);
    }
    return sbx_fail(err, SBX_ERROR_FAILED, "network %s is in use by %u sandbox%s (%s)", name,
                    g_strv_length(members), members[1] ? "es" : "", who->str);
  }
  static const char *const files[] = {"config", "sock", "log", "lock"};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++)
    if (unlinkat(dirfd, files[i], 0) < 0 && errno != ENOENT)
      return sbx_fail_errno(err, "network %s: remove %s", name, files[i]);
  g_autofree char *dir = networks_dir(err);
  g_autofree char *path = dir ? g_build_filename(dir, name, NULL) : NULL;
  if (!path || rmdir(path) < 0)
    return path ? sbx_fail_errno(err, "network %s: remove it", name) : FALSE;
  return TRUE;
}
