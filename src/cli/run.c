/* sbx run [OPTIONS] IMAGE [COMMAND [ARG...]] */
#include "sbx/cli.h"
#include "sbx/digest.h"
#include "sbx/net.h"
#include "sbx/oci-root.h"
#include "sbx/report.h"
#include "sbx/reference.h"
#include "sbx/sandbox.h"
#include "sbx/security.h"
#include "sbx/state.h"
#include "sbx/store.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

typedef struct {
  char **env;
  char *workdir, *user, *hostname, *entrypoint, *network;
  gboolean rm, quiet;
  gboolean entrypoint_set;
  char **cap_add, **cap_drop, **security_opt, **tmpfs, **ulimit;
  gboolean read_only;
  char *memory, *cpus, *pids_limit;
  char *rootfs_size, *timeout, *report, *log_size;
  gboolean rootfs_disk;
  char **publish, **net_allow, **network_alias;
  char *net_log;
  gint mtu;
  gboolean interactive, tty, detach;
  char **volumes, **env_files;
  char *name;
  char *pull;
} RunOptions;

static RunOptions opts;
/* --network NAME without its :options */
static char *network_name;
/* --report: opened before the run, written once at its end (-d: by the
 * supervisor). */
static int report_fd = -1;

static gboolean on_entrypoint(const char *name, const char *value, gpointer data, GError **err)
{
  g_free(opts.entrypoint);
  opts.entrypoint = g_strdup(value);
  opts.entrypoint_set = TRUE;
  return TRUE;
}

static GOptionEntry run_entries[] = {
    {"interactive", 'i', 0, G_OPTION_ARG_NONE, &opts.interactive,
     "Keep stdin open (without it the program reads /dev/null)", NULL},
    {"tty", 't', 0, G_OPTION_ARG_NONE, &opts.tty, "Give the program a pseudo-terminal", NULL},
    {"detach", 'd', 0, G_OPTION_ARG_NONE, &opts.detach,
     "Run in the background: print the name once the program started (see sbx ps, logs)", NULL},
    {"name", 0, 0, G_OPTION_ARG_STRING, &opts.name,
     "Name the sandbox (for sbx ps, logs, exec, stop, kill, rm)", "NAME"},
    {"log-size", 0, 0, G_OPTION_ARG_STRING, &opts.log_size,
     "-d: bound of the log, past which output is dropped (default 16m; 0: none)", "SIZE"},
    {"volume", 'v', 0, G_OPTION_ARG_STRING_ARRAY, &opts.volumes,
     "Bind mount a host file or directory", "HOST:CONTAINER[:ro|rw]"},
    {"env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &opts.env,
     "Set KEY=VALUE, or pass KEY from sbx's environment", "KEY[=VALUE]"},
    {"env-file", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opts.env_files,
     "Read KEY=VALUE lines (# comments) from a file", "FILE"},
    {"workdir", 'w', 0, G_OPTION_ARG_STRING, &opts.workdir, "Working directory inside", "DIR"},
    {"user", 'u', 0, G_OPTION_ARG_STRING, &opts.user, "Run as USER[:GROUP] (names or ids)",
     "USER[:GROUP]"},
    {"hostname", 'h', 0, G_OPTION_ARG_STRING, &opts.hostname, "Hostname inside", "NAME"},
    {"entrypoint", 0, 0, G_OPTION_ARG_CALLBACK, on_entrypoint,
     "Replace the image's Entrypoint (\"\" clears it)", "CMD"},
    {"network", 0, 0, G_OPTION_ARG_STRING, &opts.network,
     "slirp (default; slirp:allow_host_loopback=true lets 10.0.2.2 reach the host's 127.0.0.1; "
     "the host's other addresses are reachable unless slirp:allow_host_addresses=false or "
     "--net-allow; slirp:tcp_relay=true relays allowed TCP connections beside libslirp, faster), "
     "none (only lo), host (the host's network, unisolated) or the name of a "
     "network (sbx network create)",
     "MODE|NAME"},
    {"network-alias", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts.network_alias,
     "Another name the sandbox answers to on its network (repeatable)", "ALIAS"},
    {"publish", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &opts.publish,
     "Forward a host port into the sandbox", "[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]"},
    {"net-allow", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts.net_allow,
     "Only allow this outbound traffic (repeatable; 'dns' for 10.0.2.3)",
     "CIDR[:PORT[-PORT]][/tcp|/udp]"},
    {"net-log", 0, 0, G_OPTION_ARG_FILENAME, &opts.net_log,
     "Record every outbound connection attempt and DNS query, allowed or refused, as JSON lines",
     "FILE"},
    {"mtu", 0, 0, G_OPTION_ARG_INT, &opts.mtu, "MTU of the slirp network (default 65520)", "N"},
    {"rm", 0, 0, G_OPTION_ARG_NONE, &opts.rm,
     "Remove a named or detached sandbox's state when it exits (unnamed runs leave none)", NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &opts.quiet, "No progress output", NULL},
    {"pull", 0, 0, G_OPTION_ARG_STRING, &opts.pull,
     "Pull IMAGE from its registry: missing (default: when not in the store), always or never",
     "POLICY"},
    {"cap-add", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts.cap_add, "Add a capability (or ALL)", "CAP"},
    {"cap-drop", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts.cap_drop, "Drop a capability (or ALL)",
     "CAP"},
    {"security-opt", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts.security_opt,
     "seccomp=PROFILE.json, seccomp=unconfined, no-new-privileges", "OPT"},
    {"read-only", 0, 0, G_OPTION_ARG_NONE, &opts.read_only, "Mount the root file system read-only",
     NULL},
    {"tmpfs", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts.tmpfs, "Mount a writable tmpfs",
     "PATH[:size=SIZE,mode=MODE]"},
    {"ulimit", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts.ulimit, "Set a resource limit",
     "NAME=SOFT[:HARD]"},
    {"pids-limit", 0, 0, G_OPTION_ARG_STRING, &opts.pids_limit,
     "At most N processes in all (a delegated cgroup v2, else RLIMIT_NPROC inside; "
     "default 4096; 0 or -1: unlimited)",
     "N"},
    {"memory", 'm', 0, G_OPTION_ARG_STRING, &opts.memory,
     "Memory limit (needs a delegated cgroup v2; else see --ulimit as=)", "SIZE"},
    {"rootfs-size", 0, 0, G_OPTION_ARG_STRING, &opts.rootfs_size,
     "Bound of the writable layer and of --tmpfs without size= (default: a quarter of RAM, "
     "at most 2g)",
     "SIZE"},
    {"rootfs-disk", 0, 0, G_OPTION_ARG_NONE, &opts.rootfs_disk,
     "Keep the writable layer on disk in the store (removed at exit; not bounded)", NULL},
    {"timeout", 0, 0, G_OPTION_ARG_STRING, &opts.timeout,
     "Kill the sandbox after DURATION (10, 10s, 1.5s, 2m, 1h): SIGTERM, 10 s later SIGKILL; "
     "exit status 124",
     "DURATION"},
    {"report", 0, 0, G_OPTION_ARG_FILENAME, &opts.report,
     "Write a JSON report of the run to FILE at exit", "FILE"},
    {"cpus", 0, 0, G_OPTION_ARG_STRING, &opts.cpus, "CPU limit, e.g. 1.5 (cgroup v2)", "N"},
    {NULL}};

static void run_options_clear(void)
{
  g_strfreev(opts.env);
  g_free(opts.workdir);
  g_free(opts.user);
  g_free(opts.hostname);
  g_free(opts.entrypoint);
  g_free(opts.network);
  g_strfreev(opts.network_alias);
  g_clear_pointer(&network_name, g_free);
  g_strfreev(opts.cap_add);
  g_strfreev(opts.cap_drop);
  g_strfreev(opts.security_opt);
  g_strfreev(opts.tmpfs);
  g_strfreev(opts.ulimit);
  g_free(opts.memory);
  g_free(opts.cpus);
  g_free(opts.pids_limit);
  g_free(opts.rootfs_size);
  g_free(opts.log_size);
  g_free(opts.timeout);
  g_free(opts.report);
  g_strfreev(opts.publish);
  g_strfreev(opts.net_allow);
  g_free(opts.net_log);
  g_strfreev(opts.volumes);
  g_strfreev(opts.env_files);
  g_free(opts.name);
  g_free(opts.pull);
  memset(&opts, 0, sizeof opts);
}

/* --env-file lines, in order, before -e (which overrides them, as in docker). */
static gboolean read_env_files(GStrvBuilder *b, GError **err)
{
  for (char **f = opts.env_files; f && *f; f++) {
    g_autofree char *data = NULL;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(*f, &data, NULL, &local))
      return sbx_fail(err, SBX_ERROR_NOT_FOUND, "--env-file %s: %s", *f, local->message);
    g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
    for (char **l = lines; *l; l++) {
      char *line = g_strstrip(*l);
      if (*line == '\0' || *line == '#')
        continue;
      if (*line == '=')
        return sbx_fail(err, SBX_ERROR_USAGE, "--env-file %s: '%s' has no name", *f, line);
      if (strchr(line, '='))
        g_strv_builder_add(b, line);
      else if (g_getenv(line)) {
        g_autofree char *kv = g_strconcat(line, "=", g_getenv(line), NULL);
        g_strv_builder_add(b, kv);
      }
    }
  }
  return TRUE;
}

/* -v HOST:CONTAINER[:ro|rw]: the host path must exist; both become absolute. */
static char **resolve_volumes(GError **err)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  for (char **v = opts.volumes; v && *v; v++) {
    g_auto(GStrv) parts = g_strsplit(*v, ":", 3);
    guint n = g_strv_length(parts);
    if (n < 2 || !*parts[0] || !*parts[1] ||
        (n == 3 && strcmp(parts[2], "ro") != 0 && strcmp(parts[2], "rw") != 0)) {
      sbx_fail(err, SBX_ERROR_USAGE, "-v %s: expected HOST:CONTAINER[:ro|rw]", *v);
      return NULL;
    }
    if (!g_path_is_absolute(parts[1])) {
      sbx_fail(err, SBX_ERROR_USAGE, "-v %s: the container path must be absolute", *v);
      return NULL;
    }
    g_autofree char *host = g_canonicalize_filename(parts[0], NULL);
    struct stat st;
    if (stat(host, &st) < 0) {
      sbx_fail_errno(err, "-v %s: %s", *v, host);
      return NULL;
    }
    g_autofree char *spec = g_strdup_printf("%s:%s:%s", host, parts[1], n == 3 ? parts[2] : "rw");
    g_strv_builder_add(b, spec);
  }
  return g_strv_builder_end(b);
}

/* -e KEY takes KEY from our environment, and is dropped when unset (docker). */
static char **resolve_env(char **env, GError **err)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  if (!read_env_files(b, err))
    return NULL;
  for (char **e = env; e && *e; e++) {
    if (**e == '=' || **e == '\0') {
      sbx_fail(err, SBX_ERROR_USAGE, "-e '%s': expected KEY=VALUE or KEY", *e);
      return NULL;
    }
    if (strchr(*e, '=')) {
      g_strv_builder_add(b, *e);
    } else if (g_getenv(*e)) {
      g_autofree char *kv = g_strconcat(*e, "=", g_getenv(*e), NULL);
      g_strv_builder_add(b, kv);
    }
  }
  return g_strv_builder_end(b);
}

static gboolean parse_size(const char *what, const char *s, gint64 *out, GError **err)
{
  char *end;
  guint64 v = g_ascii_strtoull(s, &end, 10);
  guint64 mult = 1;
  switch (g_ascii_tolower(*end)) {
  case 'k':
    mult = 1ull << 10;
    end++;
    break;
  case 'm':
    mult = 1ull << 20;
    end++;
    break;
  case 'g':
    mult = 1ull << 30;
    end++;
    break;
  case 'b':
    end++;
    break;
  default:
    break;
  }
  if (end == s || *end || v == 0 || v > (guint64)G_MAXINT64 / mult)
    return sbx_fail(err, SBX_ERROR_USAGE, "%s: '%s' is not a size (e.g. 512m, 2g)", what, s);
  *out = (gint64)(v * mult);
  return TRUE;
}

/* N with one of the suffixes a tmpfs option takes (sizes also a % of RAM). */
static gboolean tmpfs_number(const char *s, const char *suffixes)
{
  const char *p = s;
  while (g_ascii_isdigit(*p))
    p++;
  return p > s && (!*p || (p[1] == '\0' && strchr(suffixes, g_ascii_tolower(*p))));
}

/* --tmpfs PATH[:size=SIZE,mode=MODE,nr_inodes=N]: checked here, where the
 * option can be named; the kernel's mount would only say EINVAL. */
static gboolean tmpfs_valid(const char *spec, GError **err)
{
  g_auto(GStrv) parts = g_strsplit(spec, ":", 2);
  if (!parts[0] || parts[0][0] != '/')
    return sbx_fail(err, SBX_ERROR_USAGE, "--tmpfs %s: the path must be absolute", spec);
  g_auto(GStrv) o = g_strsplit(parts[1] ? parts[1] : "", ",", -1);
  for (char **p = o; *p; p++) {
    const char *v = strchr(*p, '=');
    v = v ? v + 1 : "";
    gboolean ok = !**p;
    if (g_str_has_prefix(*p, "size="))
      ok = tmpfs_number(v, "kmg%");
    else if (g_str_has_prefix(*p, "nr_inodes="))
      ok = tmpfs_number(v, "kmg");
    else if (g_str_has_prefix(*p, "mode="))
      ok = *v && strlen(v) <= 4 && strspn(v, "01234567") == strlen(v);
    else if (**p)
      return sbx_fail(err, SBX_ERROR_USAGE,
                      "--tmpfs %s: option '%s' not supported (size=, mode=, nr_inodes=)", spec, *p);
    if (!ok)
      return sbx_fail(err, SBX_ERROR_USAGE,
                      "--tmpfs %s: '%s' is not valid (size=64m, 1g or 10%%; mode=1777; "
                      "nr_inodes=N)",
                      spec, *p);
  }
  return TRUE;
}

/* 10 (seconds), 10s, 1.5s, 500ms, 2m, 1h */
static gboolean parse_duration(const char *what, const char *s, gint64 *out_ms, GError **err)
{
  char *end;
  double v = g_ascii_strtod(s, &end);
  double mult = 1000;
  if (g_str_equal(end, "ms"))
    mult = 1;
  else if (g_str_equal(end, "m"))
    mult = 60 * 1000;
  else if (g_str_equal(end, "h"))
    mult = 3600 * 1000;
  else if (*end && !g_str_equal(end, "s"))
    end = (char *)s;
  if (end == s || !g_ascii_isdigit(*s) || !(v * mult >= 1) || v * mult > 1e12)
    return sbx_fail(err, SBX_ERROR_USAGE, "%s: '%s' is not a duration (e.g. 30, 1.5s, 2m, 1h)",
                    what, s);
  *out_ms = (gint64)(v * mult);
  return TRUE;
}

/* --pids-limit: a pids cgroup when the host delegates one, else
 * RLIMIT_NPROC inside (sandbox.c); unset: the default, by RLIMIT_NPROC only
 * (a cgroup for every run would make runs fail where cgroups are odd). */
static gboolean pids_spec(SbxRunSpec *spec, GError **err)
{
  gint64 n = SBX_PIDS_LIMIT_DEFAULT;
  if (opts.pids_limit && (!g_ascii_string_to_signed(opts.pids_limit, 10, -1, G_MAXINT32, &n, NULL)))
    return sbx_fail(err, SBX_ERROR_USAGE, "--pids-limit: '%s' is not a number (0 or -1: unlimited)",
                    opts.pids_limit);
  gboolean user_nproc = FALSE;
  for (guint i = 0; i < spec->rlimits->len; i++)
    user_nproc |= g_array_index(spec->rlimits, SbxRlimit, i).resource == RLIMIT_NPROC;
  if (n <= 0 || (!opts.pids_limit && user_nproc)) {
    sbx_debug("pids limit: none%s", user_nproc ? " but --ulimit nproc" : "");
    return TRUE;
  }
  SbxCgroupLimits pids = {.pids = n};
  g_autofree char *why = opts.pids_limit ? sbx_cgroup_why_unusable(&pids) : g_strdup("the default");
  if (why) {
    spec->nproc = n;
    if (spec->idmap->mode == SBX_USERNS_RANGE)
      sbx_debug("pids limit %" G_GINT64_FORMAT ": RLIMIT_NPROC in a nested user namespace, the "
                "total across all uids (no pids cgroup: %s)",
                n, why);
    else
      sbx_debug("pids limit %" G_GINT64_FORMAT ": RLIMIT_NPROC in the sandbox's user namespace, "
                "whose one uid makes it the total (no pids cgroup: %s)",
                n, why);
  } else {
    spec->limits.pids = n;
    sbx_debug("pids limit %" G_GINT64_FORMAT ": cgroup v2 pids.max", n);
  }
  return TRUE;
}

static gboolean parse_security(SbxSeccompSpec *sc, GError **err)
{
  for (char **o = opts.security_opt; o && *o; o++) {
    if (g_str_has_prefix(*o, "seccomp=") || g_str_has_prefix(*o, "seccomp:")) {
      sc->profile = *o + 8;
      if (g_strcmp0(sc->profile, "unconfined") == 0)
        sbx_warn("--security-opt seccomp=unconfined: the program may use every system call");
    } else if (g_strcmp0(*o, "no-new-privileges") != 0 &&
               g_strcmp0(*o, "no-new-privileges=true") != 0 &&
               g_strcmp0(*o, "no-new-privileges:true") != 0) {
      return sbx_fail(err, SBX_ERROR_USAGE,
                      "--security-opt %s: not supported (sbx always sets "
                      "no-new-privileges; seccomp=FILE|unconfined)",
                      *o);
    }
  }
  return TRUE;
}

/* The security side of the run spec: capabilities, filter, limits. */
static gboolean security_spec(SbxStore *store, SbxRunSpec *spec, GError **err)
{
  spec->caps = sbx_caps_default();
  if (!sbx_caps_adjust(&spec->caps, opts.cap_add, opts.cap_drop, err))
    return FALSE;
  SbxSeccompSpec sc = {.caps = spec->caps};
  if (!parse_security(&sc, err))
    return FALSE;
  if (!sbx_seccomp_prepare(store, &sc, &spec->seccomp, err))
    return FALSE;
  spec->seccomp_first = spec->seccomp && !sc.profile;
  spec->rlimits = g_array_new(FALSE, FALSE, sizeof(SbxRlimit));
  for (char **u = opts.ulimit; u && *u; u++) {
    SbxRlimit r;
    if (!sbx_rlimit_parse(*u, &r, err))
      return FALSE;
    g_array_append_val(spec->rlimits, r);
  }
  if (!pids_spec(spec, err))
    return FALSE;
  if (opts.memory && !parse_size("--memory", opts.memory, &spec->limits.memory, err))
    return FALSE;
  if (opts.cpus) {
    char *end;
    double cpus = g_ascii_strtod(opts.cpus, &end);
    if (*end || cpus <= 0 || cpus > 4096)
      return sbx_fail(err, SBX_ERROR_USAGE, "--cpus: '%s' is not a positive number", opts.cpus);
    spec->limits.cpu_quota_us = (gint64)(cpus * SBX_CGROUP_CPU_PERIOD_US);
  }
  spec->read_only = opts.read_only;
  for (char **t = opts.tmpfs; t && *t; t++)
    if (!tmpfs_valid(*t, err))
      return FALSE;
  spec->tmpfs = opts.tmpfs;
  gint64 size = (gint64)sbx_rootfs_size_default();
  if (opts.rootfs_size && !parse_size("--rootfs-size", opts.rootfs_size, &size, err))
    return FALSE;
  spec->rootfs_size = (guint64)size;
  if (opts.timeout && !parse_duration("--timeout", opts.timeout, &spec->timeout_ms, err))
    return FALSE;
  return TRUE;
}

/* --net-log FILE: written by sbx-net through the fd we open here, as the
 * user, before it confines itself. A regular file only (no symlink at the
 * end, no FIFO to block on, no device). */
static int open_net_log(const char *path, GError **err)
{
  sbx_autofd fd =
      open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0)
    return sbx_fail_errno(err, "--net-log %s", path), -1;
  struct stat st;
  if (fstat(fd, &st) < 0)
    return sbx_fail_errno(err, "--net-log %s", path), -1;
  if (!S_ISREG(st.st_mode))
    return sbx_fail(err, SBX_ERROR_USAGE, "--net-log %s: not a regular file", path), -1;
  if (fcntl(fd, F_SETFL, 0) < 0)
    return sbx_fail_errno(err, "--net-log %s", path), -1;
  return sbx_steal_fd(&fd);
}

/* --network MODE[:opt=val,...], -p, --net-allow, --net-log, --mtu */
static gboolean network_spec(SbxNetSpec *net, GError **err)
{
  const char *mode = opts.network ? opts.network : "slirp";
  g_auto(GStrv) parts = g_strsplit(mode, ":", 2);
  net->mtu = opts.mtu ? (guint)opts.mtu : SBX_NET_MTU_DEFAULT;
  net->resolv_conf = sbx_cli_settings()->net_resolv_conf;
  net->spare = sbx_cli_settings()->net_spare;
  if (strcmp(parts[0], "slirp") == 0 || strcmp(parts[0], "slirp4netns") == 0)
    net->mode = SBX_NET_SLIRP;
  else if (strcmp(parts[0], "none") == 0)
    net->mode = SBX_NET_NONE;
  else if (strcmp(parts[0], "host") == 0)
    net->mode = SBX_NET_HOST;
  else if (sbx_switch_name_valid(parts[0]))
    net->mode = SBX_NET_SWITCH; /* its existence is checked when joining */
  else
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "--network: '%s' is not slirp, none, host or a network's name", mode);
  gboolean slirp_like = net->mode == SBX_NET_SLIRP || net->mode == SBX_NET_SWITCH;
  g_auto(GStrv) kv = g_strsplit(parts[1] ? parts[1] : "", ",", -1);
  int host_addresses = -1; /* unset: reachable, unless --net-allow */
  for (char **o = kv; *o; o++) {
    if (!**o)
      continue;
    if (slirp_like &&
        (strcmp(*o, "allow_host_loopback=true") == 0 || strcmp(*o, "allow_host_loopback") == 0))
      net->allow_host_loopback = TRUE;
    else if (slirp_like && strcmp(*o, "allow_host_loopback=false") == 0)
      net->allow_host_loopback = FALSE;
    else if (slirp_like && (strcmp(*o, "allow_host_addresses=true") == 0 ||
                            strcmp(*o, "allow_host_addresses") == 0))
      host_addresses = 1;
    else if (slirp_like && strcmp(*o, "allow_host_addresses=false") == 0)
      host_addresses = 0;
    else if (net->mode == SBX_NET_SLIRP &&
             (strcmp(*o, "tcp_relay=true") == 0 || strcmp(*o, "tcp_relay") == 0))
      net->tcp_relay = TRUE;
    else if (net->mode == SBX_NET_SLIRP && strcmp(*o, "tcp_relay=false") == 0)
      net->tcp_relay = FALSE;
    else if (net->mode == SBX_NET_SLIRP && g_str_has_prefix(*o, "mtu="))
      net->mtu = (guint)g_ascii_strtoull(*o + 4, NULL, 10);
    else
      return sbx_fail(err, SBX_ERROR_USAGE, "--network %s: unknown option '%s'", mode, *o);
  }
  if (net->mtu < SBX_NET_MTU_MIN || net->mtu > SBX_NET_MTU_MAX)
    return sbx_fail(err, SBX_ERROR_USAGE, "--mtu: %u is not within %d..%d", net->mtu,
                    SBX_NET_MTU_MIN, SBX_NET_MTU_MAX);
  if ((opts.publish || opts.net_allow || opts.net_log) && !slirp_like)
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "-p, --net-allow and --net-log need --network slirp or a network");
  if (net->mode == SBX_NET_SWITCH && opts.mtu)
    return sbx_fail(err, SBX_ERROR_USAGE, "--mtu: every sandbox on a network has its MTU, %d",
                    SBX_SWITCH_MTU);
  if (opts.network_alias && net->mode != SBX_NET_SWITCH)
    return sbx_fail(err, SBX_ERROR_USAGE, "--network-alias needs --network NAME (a network)");
  for (char **a = opts.network_alias; a && *a; a++)
    if (!sbx_switch_name_valid(*a)) {
      g_autofree char *safe = sbx_escape_text(*a);
      return sbx_fail(err, SBX_ERROR_USAGE,
                      "--network-alias: '%s' is not a name (letters, digits, '-', '_', '.')", safe);
    }
  g_free(network_name);
  network_name = net->mode == SBX_NET_SWITCH ? g_strdup(parts[0]) : NULL;
  net->network = network_name;
  net->switch_fd = -1;
  net->refuse_host_addresses = host_addresses == -1 ? opts.net_allow != NULL : !host_addresses;
  for (char **p = opts.publish; p && *p; p++) {
    SbxPortForward f;
    if (!sbx_port_forward_parse(*p, &f, err))
      return FALSE;
  }
  for (char **a = opts.net_allow; a && *a; a++) {
    SbxNetRule r;
    if (!sbx_net_rule_parse(*a, &r, err))
      return FALSE;
  }
  net->publish = opts.publish;
  net->allow = opts.net_allow;
  net->log_fd = opts.net_log ? open_net_log(opts.net_log, err) : -1;
  return !opts.net_log || net->log_fd >= 0;
}

/* A missing archive is a typo, not something to ask Docker Hub for. */
static gboolean looks_like_archive(const char *ref)
{
  static const char *const ext[] = {".tar",     ".tar.gz",  ".tgz",  ".tar.xz", ".txz",
                                    ".tar.zst", ".tar.bz2", ".tbz2", ".oci"};
  for (guint i = 0; i < G_N_ELEMENTS(ext); i++)
    if (g_str_has_suffix(ref, ext[i]))
      return TRUE;
  return FALSE;
}

/* IMAGE: an archive or layout (imported when new), a loaded image's name,
 * or else a reference to pull (--pull: missing, always, never). */
static SbxStoredImage *find_image(SbxStore *store, const char *ref, GError **err)
{
  g_autofree char *path = NULL, *select = NULL;
  g_autoptr(GError) local = NULL;
  if (sbx_cli_split_image_ref(ref, &path, &select, &local))
    return sbx_store_ensure(store, path, select, opts.quiet, err);
  const char *policy = opts.pull ? opts.pull : "missing";
  if (strcmp(policy, "missing") != 0 && strcmp(policy, "always") != 0 &&
      strcmp(policy, "never") != 0) {
    sbx_fail(err, SBX_ERROR_USAGE, "--pull: '%s' is not missing, always or never", policy);
    return NULL;
  }
  g_autofree char *id = NULL;
  g_autoptr(GError) missing = NULL;
  /* Only an image not in the store is pulled: a store that cannot be read
   * is reported, never taken for one without the image. */
  if (strcmp(policy, "always") != 0 && !(id = sbx_store_resolve(store, ref, &missing)) &&
      !g_error_matches(missing, SBX_ERROR, SBX_ERROR_NOT_FOUND)) {
    g_propagate_error(err, g_steal_pointer(&missing));
    return NULL;
  }
  g_autoptr(SbxImageRef) pullable =
      id || looks_like_archive(ref) ? NULL : sbx_image_ref_parse(ref, NULL);
  if (pullable && strcmp(policy, "never") != 0)
    return sbx_store_pull(store, ref, policy, opts.quiet, err);
  if (!id) {
    sbx_fail(err, SBX_ERROR_NOT_FOUND,
             "image %s: no such archive, layout directory or loaded image", ref);
    return NULL;
  }
  return sbx_store_read_image(store, id, err);
}

static void write_report(const SbxRunSpec *spec, const char *image, int code, const GError *error)
{
  if (report_fd < 0)
    return;
  g_auto(GStrv) command = spec->image ? sbx_process_argv(spec->image->config, spec->entrypoint,
                                                         spec->entrypoint_set, spec->argv, NULL)
                                      : NULL;
  SbxReport r = {.spec = spec,
                 .image_ref = image,
                 .command = command,
                 .exit_code = code,
                 .error = error ? error->message : NULL};
  g_autofree char *json = sbx_report_json(&r);
  g_autoptr(GError) local = NULL;
  if (ftruncate(report_fd, 0) < 0 || lseek(report_fd, 0, SEEK_SET) < 0 ||
      !sbx_write_all(report_fd, json, strlen(json), &local))
    sbx_warn("--report %s: %s", opts.report, local ? local->message : sbx_strerror(errno));
  close(report_fd);
  report_fd = -1;
}

/* The end of a run: --timeout's status and its line, then --report. */
static int finish_run(const SbxRunSpec *spec, const char *image, int status, const GError *error)
{
  if (status >= 0 && spec->result->timed_out) {
    char secs[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_formatd(secs, sizeof secs, "%g", (double)spec->timeout_ms / 1000);
    g_printerr("sbx: timeout: the sandbox was still running after %ss and was killed\n", secs);
    status = SBX_EXIT_TIMEOUT;
  }
  /* --network NAME: the switch counts (sbx-net's counters come with its
   * stop, in the sandbox). Our connection keeps them after the sandbox. */
  if (spec->measure && spec->net.switch_fd >= 0 && !spec->result->have_net) {
    g_autoptr(GError) local = NULL;
    if (sbx_network_stats(spec->net.switch_fd, &spec->result->net, &local))
      spec->result->have_net = TRUE;
    else
      sbx_debug("%s", local->message);
  }
  write_report(spec, image, status < 0 ? SBX_EXIT_FAILED : status, error);
  return status;
}

/* Named and detached sandboxes: their state (sandbox/state.c) is written
 * when the program has started and again when it ends. */
typedef struct {
  SbxState *state;
  int ready_fd; /* -d: tell the waiting sbx */
} Named;

/* A sandbox whose state cannot be written would run on out of sbx's sight
 * (no ps, stop or rm reaches it): it is stopped instead (sandbox.c kills it
 * when this fails). */
static gboolean record_started(pid_t init, gpointer data, GError **err)
{
  Named *n = data;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_free(n->state->started);
  n->state->started = g_date_time_format_iso8601(now);
  n->state->init_pid = init;
  n->state->init_start = sbx_proc_start_time(init);
  n->state->supervisor_pid = getpid();
  g_autoptr(GError) local = NULL;
  if (!sbx_state_save(n->state, &local)) {
    g_clear_pointer(&n->state->started, g_free); /* it did not run: the name is freed */
    return sbx_fail(err, SBX_ERROR_FAILED,
                    "sandbox %s: its state cannot be recorded (%s), so it was stopped",
                    n->state->name, local->message);
  }
  if (n->ready_fd >= 0) {
    sbx_sync_send_ok(n->ready_fd, "started");
    close(n->ready_fd);
    n->ready_fd = -1;
  }
  return TRUE;
}

static SbxState *new_state(SbxStore *store, const SbxRunSpec *spec, const char *image,
                           const char *name, const char *id)
{
  SbxState *st = g_new0(SbxState, 1);
  st->name = g_strdup(name);
  st->id = g_strdup(id);
  st->image = g_strdup(image);
  st->ports = opts.publish ? g_strjoinv(",", opts.publish) : g_strdup("");
  if (spec->net.mode == SBX_NET_SWITCH) {
    g_autofree char *addr = sbx_network_address_text(spec->net.lease.address);
    st->networks = g_strdup_printf("%s=%s", spec->net.network, addr);
  }
  st->store_root = g_strdup(store->root);
  st->userns = g_strdup(store->idmap.mode == SBX_USERNS_RANGE ? "range" : "single");
  for (char **o = opts.security_opt; o && *o; o++)
    if (g_str_has_prefix(*o, "seccomp=") || g_str_has_prefix(*o, "seccomp:")) {
      g_free(st->seccomp);
      char *real = strcmp(*o + 8, "unconfined") == 0 ? NULL : realpath(*o + 8, NULL);
      st->seccomp = real ? g_strdup(real) : g_strdup(*o + 8);
      free(real);
    }
  /* sbx exec compiles the profile again (it may be a file a volume shows
   * the job, which could rewrite it): it must give this very filter. */
  st->seccomp_filter = sbx_seccomp_filter_id(spec->seccomp);
  st->caps = spec->caps;
  st->nproc = spec->nproc;
  st->user = g_strdup(spec->user ? spec->user : spec->image->config->user);
  st->workdir = g_strdup(spec->workdir ? spec->workdir : spec->image->config->workdir);
  st->hostname = g_strdup(spec->hostname);
  g_autoptr(GStrvBuilder) env = g_strv_builder_new();
  if (spec->image->config->env)
    g_strv_builder_addv(env, (const char **)spec->image->config->env);
  if (spec->env)
    g_strv_builder_addv(env, (const char **)spec->env);
  st->env = g_strv_builder_end(env);
  st->remove_on_exit = opts.rm;
  return st;
}

static void record_exit(Named *n, int status, gboolean timed_out)
{
  n->state->exited = TRUE;
  n->state->exit_code = status;
  n->state->timed_out = timed_out;
  if (n->state->remove_on_exit) {
    sbx_state_remove(n->state->name, NULL);
    return;
  }
  /* It has ended: nothing runs out of sight, and ps shows it as exited
   * (its lock is free) with an unknown status. */
  g_autoptr(GError) local = NULL;
  if (!sbx_state_save(n->state, &local))
    sbx_warn("sandbox %s: its exit status cannot be recorded: %s", n->state->name, local->message);
}

/* A detached sandbox's log is on the runtime directory's file system, often
 * a tmpfs in RAM: like --net-log's, it is bounded (sandbox/stdio.c drops the
 * rest of the output, saying so in one line). */
#define DETACHED_LOG_MAX (16u << 20)

static gboolean log_size_spec(SbxRunSpec *spec, GError **err)
{
  gint64 size = DETACHED_LOG_MAX;
  if (opts.log_size && !opts.detach)
    return sbx_fail(err, SBX_ERROR_USAGE, "--log-size: only with -d (a detached sandbox's log)");
  if (opts.log_size && strcmp(opts.log_size, "0") == 0)
    size = 0;
  else if (opts.log_size && !parse_size("--log-size", opts.log_size, &size, err))
    return FALSE;
  spec->output_limit = opts.detach ? (guint64)size : 0;
  return TRUE;
}

/* -d: a supervisor process in its own session runs the sandbox, its output
 * going to the log; we return once the program has started. */
static int detach(Named *n, SbxRunSpec *spec, int lock, GError **err)
{
  int ready[2];
  if (!sbx_sync_pair(ready, err))
    return -1;
  g_autofree char *log = sbx_state_log_path(n->state->name);
  pid_t pid = fork();
  if (pid < 0)
    return sbx_fail_errno(err, "fork"), -1;
  if (pid == 0) {
    close(ready[0]);
    setsid();
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* Always a new file in the sandbox's new directory: never a link. */
    int out = open(log, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (null < 0 || out < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
      _exit(SBX_EXIT_FAILED);
    n->ready_fd = ready[1];
    g_autoptr(GError) local = NULL;
    int status = sbx_sandbox_run(spec, &local);
    status = finish_run(spec, n->state->image, status, local);
    if (status < 0 && n->ready_fd >= 0) {
      /* It never started: the waiting sbx reports it and frees the name. */
      sbx_sync_send_error(n->ready_fd, local);
      _exit(SBX_EXIT_FAILED);
    }
    record_exit(n, status < 0 ? SBX_EXIT_FAILED : status, spec->result->timed_out);
    _exit(status < 0 ? SBX_EXIT_FAILED : status);
  }
  close(ready[1]);
  close(lock); /* the supervisor holds it now */
  if (report_fd >= 0) {
    close(report_fd); /* the supervisor writes it */
    report_fd = -1;
  }
  sbx_autofd sync = ready[0];
  if (!sbx_sync_recv(sync, NULL, "the sandbox", err))
    return -1;
  printf("%s\n", n->state->name);
  return 0;
}

/* --network NAME: the sandbox joins before it exists (its address goes
 * into tap0 and /etc/hosts); the connection is held for the whole run, and
 * its end frees the address. */
static gboolean join_network(SbxRunSpec *spec, GError **err)
{
  SbxNetSpec *net = &spec->net;
  if (net->mode != SBX_NET_SWITCH)
    return TRUE;
  g_autoptr(GPtrArray) names = g_ptr_array_new();
  if (opts.name && sbx_switch_name_valid(opts.name))
    g_ptr_array_add(names, opts.name);
  for (char **a = opts.network_alias; a && *a; a++)
    g_ptr_array_add(names, *a);
  g_ptr_array_add(names, NULL);
  SbxSwitchJoin j = {.names = (char **)names->pdata,
                     .publish = net->publish,
                     .allow = net->allow,
                     .host_loopback = net->allow_host_loopback,
                     .refuse_host_addresses = net->refuse_host_addresses};
  net->switch_fd = sbx_network_join(net->network, &j, net->resolv_conf, &net->lease, err);
  if (net->switch_fd < 0)
    return FALSE;
  g_autofree char *addr = sbx_network_address_text(net->lease.address);
  sbx_debug("network %s: address %s", net->network, addr);
  return TRUE;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SBX_HAS_ASAN 1
#endif
#endif
#ifndef SBX_HAS_ASAN
#define SBX_HAS_ASAN 0
#endif

/* The sandbox is over and its status told (the report written): what is
 * left is freeing what the exit frees anyway, ~0.05 ms at the end of each
 * run. Not under the sanitizers, whose leak check wants it freed. */
static void exit_now(int status)
{
#if !defined(__SANITIZE_ADDRESS__) && !SBX_HAS_ASAN
  fflush(NULL);
  _exit(status);
#else
  (void)status;
#endif
}

static int run_named_or_not(SbxStore *store, SbxRunSpec *spec, const char *image, GError **err)
{
  if (!opts.name && !opts.detach) {
    int status = sbx_sandbox_run(spec, err);
    status = finish_run(spec, image, status, err ? *err : NULL);
    if (status >= 0)
      exit_now(status);
    return status;
  }
  if (opts.detach && opts.tty)
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "-d and -t: sbx cannot attach to a detached sandbox "
                    "later; use 'sbx exec -it NAME sh'"),
           -1;
  /* The hostname is the sandbox's short id, and its default name. */
  g_autofree char *id = sbx_random_hex(6);
  if (!spec->hostname)
    spec->hostname = id;
  const char *name = opts.name ? opts.name : id;
  sbx_autofd lock = sbx_state_claim(name, err);
  if (lock < 0)
    return -1;
  Named n = {.state = new_state(store, spec, image, name, id), .ready_fd = -1};
  spec->on_started = record_started;
  spec->on_started_data = &n;
  int status;
  if (opts.detach) {
    status = detach(&n, spec, sbx_steal_fd(&lock), err);
    if (status < 0)
      sbx_state_remove(name, NULL);
  } else {
    status = sbx_sandbox_run(spec, err);
    status = finish_run(spec, image, status, err ? *err : NULL);
    if (status < 0 && !n.state->started)
      sbx_state_remove(name, NULL); /* it never ran: the name stays free */
    else
      record_exit(&n, status < 0 ? SBX_EXIT_FAILED : status, spec->result->timed_out);
  }
  sbx_state_free(n.state);
  return status;
}

static int run_image(int argc, char **argv, SbxRunSpec *spec, GError **err)
{
  SbxNetSpec net = {0};
  sbx_autofd net_log = -1;
  gboolean net_ok = network_spec(&net, err);
  net_log = net.log_fd;
  if (!net_ok)
    return -1;
  g_auto(GStrv) env = resolve_env(opts.env, err);
  if (!env)
    return -1;
  g_auto(GStrv) volumes = resolve_volumes(err);
  if (!volumes)
    return -1;
  g_autoptr(SbxStore) store = sbx_cli_open_store(err);
  if (!store)
    return -1;
  g_autoptr(SbxStoredImage) img = find_image(store, argv[1], err);
  if (!img)
    return -1;
  if (opts.rootfs_disk && opts.rootfs_size)
    sbx_warn("--rootfs-size does not bound --rootfs-disk: a rootless sbx has no disk quota");
  /* Held until we exit: prune skips layers a running sandbox uses. */
  g_autoptr(GArray) held = sbx_store_hold_layers(store, img, err);
  if (!held)
    return -1;
  g_autofree char *run_dir = g_build_filename(store->root, "run", NULL);
  /* Copies: init rewrites the memory of our original argv (proctitle.c). */
  g_autofree char *disk_dir = g_build_filename(store->root, "run-disk", NULL);
  g_auto(GStrv) cmd = g_strdupv(argv + 2);
  /* What a volume must not show the sandbox: sbx's state (holder, named
   * sandboxes' records), sbx-oci's (its containers' records steer what its
   * kill and delete signal and run, on the host: the same roots sbx-oci
   * chooses without --root, made here first too) and the store (other
   * images' layers). */
  g_autoptr(GPtrArray) hidden = g_ptr_array_new_with_free_func(g_free);
  if (volumes && volumes[0]) {
    g_auto(GStrv) state = sbx_state_candidates();
    g_auto(GStrv) oci = sbx_oci_root_candidates(sbx_cli_settings()->runtime_dir, getuid());
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    for (char **o = state; *o; o++)
      g_strv_builder_add(b, *o);
    for (char **o = oci; *o; o++)
      g_strv_builder_add(b, *o);
    g_auto(GStrv) own = g_strv_builder_end(b);
    guint n_state = g_strv_length(state);
    for (char **o = own; *o; o++) {
      struct stat st;
      /* Made now if missing: one a volume shows unmasked (-v /tmp:/tmp,
       * no /tmp/sbx-UID yet) the job could make itself, as the user, and
       * plant links or records in for a later session that has no runtime
       * directory. Only the last level, but for sbx's own under the home
       * directory and those in the temporary directory (/tmp/podman-run-UID,
       * as podman would make it; never a runtime directory that is not
       * there, nor $HOME/rundir, podman's last resort, see SECURITY.md). */
      const char *home = g_get_home_dir(), *tmp = g_get_tmp_dir();
      gboolean under_home = (guint)(o - own) < n_state && home && g_str_has_prefix(*o, home) &&
                            (*o)[strlen(home)] == '/';
      gboolean under_tmp =
          (g_str_has_prefix(*o, tmp) && (*o)[strlen(tmp)] == '/') || g_str_has_prefix(*o, "/tmp/");
      if ((under_home || under_tmp ? g_mkdir_with_parents(*o, 0700) : mkdir(*o, 0700)) < 0 &&
          errno != EEXIST)
        sbx_debug("state directory %s: %s", *o, sbx_strerror(errno));
      char *real = realpath(*o, NULL); /* the user's own, where it exists */
      if (real && stat(real, &st) == 0 && st.st_uid == getuid())
        g_ptr_array_add(hidden, real);
      else
        free(real);
    }
    char *real = realpath(store->root, NULL);
    if (real)
      g_ptr_array_add(hidden, real);
  }
  g_ptr_array_add(hidden, NULL);
  *spec = (SbxRunSpec){
      .image = img,
      .idmap = &store->idmap,
      .store_run_dir = run_dir,
      .argv = cmd,
      .entrypoint = opts.entrypoint,
      .entrypoint_set = opts.entrypoint_set,
      .env = env,
      .workdir = opts.workdir,
      .user = opts.user,
      .hostname = opts.hostname,
      .net = net,
      .interactive = opts.interactive,
      .tty = opts.tty,
      .volumes = volumes,
      .hidden = (char **)hidden->pdata,
      .disk_dir = opts.rootfs_disk ? disk_dir : NULL,
      .result = spec->result,
      .measure = report_fd >= 0,
  };
  int status =
      security_spec(store, spec, err) && log_size_spec(spec, err) && join_network(spec, err)
          ? run_named_or_not(store, spec, argv[1], err)
          : -1;
  if (spec->net.switch_fd >= 0)
    close(spec->net.switch_fd);
  if (report_fd >= 0) /* it failed before the run */
    write_report(spec, argv[1], SBX_EXIT_FAILED, err ? *err : NULL);
  spec->image = NULL;
  if (spec->seccomp)
    g_bytes_unref(spec->seccomp);
  if (spec->rlimits)
    g_array_unref(spec->rlimits);
  return status;
}

static int run_parsed(int argc, char **argv, GError **err)
{
  if (argc < 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "run: give an image (see 'sbx run --help')"), -1;
  if (opts.report) {
    /* O_NOFOLLOW: a symlink planted at FILE does not redirect the write. */
    report_fd = open(opts.report, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
    if (report_fd < 0)
      return sbx_fail_errno(err, "--report %s", opts.report), -1;
  }
  SbxRunResult result = {.writable_peak = -1, .writable_final = -1};
  SbxRunSpec spec = {.result = &result};
  int status = run_image(argc, argv, &spec, err);
  if (report_fd >= 0) /* it failed before the store was open */
    write_report(&spec, argv[1], SBX_EXIT_FAILED, err ? *err : NULL);
  return status;
}

int sbx_cmd_run(int argc, char **argv)
{
  /* Options stop at IMAGE: what follows belongs to the command. */
  static const SbxCliCommand cmd = {
      "IMAGE [COMMAND [ARG...]]",
      "Run an image (docker-archive, OCI archive or OCI layout directory) in a rootless sandbox.",
      run_entries,
      TRUE,
      run_parsed,
      run_options_clear};
  return sbx_cli_command(&cmd, argc, argv);
}
