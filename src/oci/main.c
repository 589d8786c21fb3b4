/* sbx-oci: sbx as an OCI runtime, with runc's command line (what podman,
 * conmon, buildah and containerd's shim speak).
 *
 * State: ROOT/ID/state.json (ROOT: --root, else $XDG_RUNTIME_DIR/sbx-oci,
 * else /tmp/sbx-oci-UID), ROOT/ID/config.json (the config create acted on:
 * later commands never read the bundle again) and ROOT/ID/exec.fifo while
 * the container waits for `start`. Errors: "sbx-oci: <what>: <why>" on stderr, and with --log one
 * line in the log file ({"level","msg","time"} with --log-format json, which
 * podman reads); exit status 1, as runc. */
#include "sbx-config.h"
#include "sbx/json.h"
#include "sbx/ns.h"
#include "sbx/oci.h"
#include "sbx/oci-root.h"
#include "sbx/state.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *opt_root, *opt_log, *opt_log_format, *opt_cgroup_manager;
static char *opt_bundle, *opt_pid_file, *opt_console_socket;
static gboolean opt_debug, opt_systemd_cgroup, opt_version, opt_detach;
static char *opt_rootless_unused;
static int opt_preserve_fds;

static const GOptionEntry global_entries[] = {
    {"root", 0, 0, G_OPTION_ARG_FILENAME, &opt_root, "Directory for the containers' state", "DIR"},
    {"log", 0, 0, G_OPTION_ARG_FILENAME, &opt_log, "Write errors (and --debug) to FILE", "FILE"},
    {"log-format", 0, 0, G_OPTION_ARG_STRING, &opt_log_format, "text or json", "FORMAT"},
    {"debug", 0, 0, G_OPTION_ARG_NONE, &opt_debug, "Narrate each step", NULL},
    {"systemd-cgroup", 0, 0, G_OPTION_ARG_NONE, &opt_systemd_cgroup,
     "Accepted (sbx-oci makes no cgroups)", NULL},
    {"cgroup-manager", 0, 0, G_OPTION_ARG_STRING, &opt_cgroup_manager,
     "Accepted (sbx-oci makes no cgroups)", "MANAGER"},
    {"rootless", 0, 0, G_OPTION_ARG_STRING, &opt_rootless_unused, "Accepted (always rootless)",
     "VALUE"},
    {"version", 'v', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version", NULL},
    {NULL}};

/* ---- errors and the log ---- */

static void log_line(const char *level, const char *msg)
{
  if (!opt_log)
    return;
  int fd = open(opt_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0)
    return;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *time = g_date_time_format_iso8601(now);
  g_autofree char *line = NULL;
  if (g_strcmp0(opt_log_format, "json") == 0) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "level");
    json_builder_add_string_value(b, level);
    json_builder_set_member_name(b, "msg");
    json_builder_add_string_value(b, msg);
    json_builder_set_member_name(b, "time");
    json_builder_add_string_value(b, time);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *text = json_to_string(root, FALSE);
    line = g_strconcat(text, "\n", NULL);
  } else {
    /* one line a message, whatever the config's strings hold */
    g_autofree char *shown = sbx_escape_text(msg);
    line = g_strdup_printf("time=\"%s\" level=%s msg=\"%s\"\n", time, level, shown);
  }
  (void)sbx_write_all(fd, line, strlen(line), NULL);
  close(fd);
}

static int fail(GError *err)
{
  if (err->code != SBX_ERROR_REPORTED) {
    /* The config's strings (args, paths: from the image, through the
     * engine) reach a terminal escaped, as sbx's own errors (issue 9). */
    g_autofree char *shown = sbx_escape_text(err->message);
    fprintf(stderr, "sbx-oci: %s\n", shown);
    log_line("error", err->message);
  }
  g_error_free(err);
  return 1;
}

static void debug_log(const char *msg)
{
  if (opt_debug)
    log_line("debug", msg);
}

/* ---- state ---- */

static gboolean private_dir(const char *path, GError **err)
{
  if (mkdir(path, 0700) < 0 && errno != EEXIST)
    return sbx_fail_errno(err, "state directory %s", path);
  struct stat st;
  if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
    return sbx_fail(err, SBX_ERROR_FAILED,
                    "state directory %s: not a directory of this user's alone", path);
  return TRUE;
}

static char *state_root(GError **err)
{
  if (opt_root) {
    /* The engine's, as its path is; but its containers' records steer
     * `exec` (whose namespaces) and `delete` (which poststop hooks): only
     * in a directory nobody else may write. */
    struct stat st;
    if (!sbx_mkdir_p(opt_root, 0700, err))
      return NULL;
    /* Resolved once: a link there is not followed again (and swapped). */
    char *real = realpath(opt_root, NULL);
    if (!real || lstat(real, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022)) {
      free(real);
      sbx_fail(err, SBX_ERROR_FAILED,
               "--root %s: not a directory of this user's that only they may write", opt_root);
      return NULL;
    }
    char *out = g_strdup(real);
    free(real);
    return out;
  }
  /* The same places `sbx run` masks in volumes (sbx_oci_root_candidates):
   * a sandboxed job cannot reach them through one. */
  g_autofree char *base = sbx_oci_default_root(g_getenv("XDG_RUNTIME_DIR"), geteuid());
  if (!private_dir(base, err))
    return NULL;
  return g_steal_pointer(&base);
}

static gboolean id_valid(const char *id, GError **err)
{
  gsize n = strlen(id);
  gboolean ok = n > 0 && n <= 1024 && id[0] != '.';
  for (gsize i = 0; ok && i < n; i++)
    ok = g_ascii_isalnum(id[i]) || strchr("_+-.", id[i]);
  return ok || sbx_fail(err, SBX_ERROR_USAGE,
                        "invalid container id '%s' (letters, digits, _ + - . only)", id);
}

static char *state_dir(const char *id, GError **err)
{
  if (!id_valid(id, err))
    return NULL;
  g_autofree char *root = state_root(err);
  return root ? g_build_filename(root, id, NULL) : NULL;
}

/* state.json is read back by every later command: one bound for reading it
 * and for writing it (a create whose state would not be read back fails,
 * rather than leave a container nothing can manage). The config may be
 * larger (4 MiB), and its annotations are copied here. */
#define MAX_STATE (1u << 20)

typedef struct {
  char *id, *bundle, *created, *dir;
  pid_t pid;
  guint64 start;
  JsonNode *annotations;
} OciState;

static void oci_state_free(OciState *s)
{
  g_free(s->id);
  g_free(s->bundle);
  g_free(s->created);
  g_free(s->dir);
  if (s->annotations)
    json_node_unref(s->annotations);
  g_free(s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(OciState, oci_state_free)

/* A container's directory as create made it: a directory (never a link in
 * its place), the user's, 0700. Its files steer what later commands signal
 * and run: read only through this. */
static int state_dir_open(const char *dir, GError **err)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return errno == ENOENT || errno == ENOTDIR || errno == ELOOP
               ? (sbx_fail(err, SBX_ERROR_NOT_FOUND, "%s: no such container", dir), -1)
               : (sbx_fail_errno(err, "%s", dir), -1);
  if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
    close(fd);
    sbx_fail(err, SBX_ERROR_FAILED, "%s: not a directory of this user's alone", dir);
    return -1;
  }
  return fd;
}

static OciState *state_load(const char *id, GError **err)
{
  g_autofree char *dir = state_dir(id, err);
  if (!dir)
    return NULL;
  g_autoptr(GError) local = NULL;
  sbx_autofd dirfd = state_dir_open(dir, &local);
  if (dirfd < 0 && !g_error_matches(local, SBX_ERROR, SBX_ERROR_NOT_FOUND)) {
    g_propagate_error(err, g_steal_pointer(&local));
    return NULL;
  }
  g_autofree char *path = g_build_filename(dir, "state.json", NULL);
  sbx_autofd fd = dirfd < 0 ? -1 : openat(dirfd, "state.json", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    sbx_fail(err, SBX_ERROR_NOT_FOUND, "container %s does not exist", id);
    return NULL;
  }
  g_autoptr(GBytes) data = sbx_read_fd_bounded(fd, MAX_STATE, path, err);
  gsize len = 0;
  const char *text = data ? g_bytes_get_data(data, &len) : NULL;
  g_autoptr(JsonNode) root = text ? sbx_json_parse(text, len, path, err) : NULL;
  JsonObject *o = root ? sbx_json_object(root, path, err) : NULL;
  const char *bundle = NULL, *created = NULL;
  gint64 pid = 0, start = 0;
  if (!o || !sbx_json_get_string(o, "bundle", &bundle, path, err) ||
      !sbx_json_get_string(o, "created", &created, path, err) ||
      !sbx_json_get_int(o, "pid", &pid, path, err) ||
      !sbx_json_get_int(o, "pidStart", &start, path, err))
    return NULL;
  /* Create records an absolute one; the saved config's root.path is taken
   * relative to it. */
  if (!bundle || !g_path_is_absolute(bundle)) {
    sbx_fail(err, SBX_ERROR_INVALID, "%s: bundle '%s' is not an absolute path", path,
             bundle ? bundle : "");
    return NULL;
  }
  OciState *s = g_new0(OciState, 1);
  s->id = g_strdup(id);
  s->dir = g_steal_pointer(&dir);
  s->bundle = g_strdup(bundle);
  s->created = g_strdup(created ? created : "");
  s->pid = (pid_t)pid;
  s->start = (guint64)start;
  JsonNode *ann = json_object_get_member(o, "annotations");
  if (ann && JSON_NODE_HOLDS_OBJECT(ann))
    s->annotations = json_node_copy(ann);
  return s;
}

static char *state_record(const OciState *s, GError **err)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "id");
  json_builder_add_string_value(b, s->id);
  json_builder_set_member_name(b, "pid");
  json_builder_add_int_value(b, s->pid);
  json_builder_set_member_name(b, "pidStart");
  json_builder_add_int_value(b, (gint64)s->start);
  json_builder_set_member_name(b, "bundle");
  json_builder_add_string_value(b, s->bundle);
  json_builder_set_member_name(b, "created");
  json_builder_add_string_value(b, s->created);
  if (s->annotations) {
    json_builder_set_member_name(b, "annotations");
    json_builder_add_value(b, json_node_copy(s->annotations));
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = json_to_string(root, TRUE);
  if (strlen(text) > MAX_STATE) {
    sbx_fail(err, SBX_ERROR_INVALID,
             "container %s: its state would be %zu bytes, more than the %u sbx-oci reads back "
             "(config.json's annotations are copied into it)",
             s->id, strlen(text), MAX_STATE);
    return NULL;
  }
  return g_steal_pointer(&text);
}

static gboolean state_save(const OciState *s, GError **err)
{
  g_autofree char *text = state_record(s, err);
  if (!text)
    return FALSE;
  sbx_autofd dir = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return sbx_fail_errno(err, "%s", s->dir);
  return sbx_write_file_atomic(dir, "state.json", text, strlen(text), 0600, err);
}

/* The recorded pid is ours only while its start time matches (pid reuse),
 * and a zombie has stopped. */
static gboolean proc_alive(const OciState *s)
{
  if (s->pid <= 0 || !s->start || sbx_proc_start_time(s->pid) != s->start)
    return FALSE;
  g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)s->pid);
  g_autofree char *data = NULL;
  if (!g_file_get_contents(path, &data, NULL, NULL))
    return FALSE;
  const char *p = strrchr(data, ')');
  return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* A signal to the recorded process through a pidfd whose start time is
 * checked once it is held: never to a process that took the pid since
 * (proc_alive then kill(pid) could reach one). */
static gboolean signal_recorded(const OciState *s, int sig, GError **err)
{
  sbx_autofd fd = s->pid > 0 ? (int)syscall(SYS_pidfd_open, s->pid, 0) : -1;
  if (fd < 0 || !s->start || sbx_proc_start_time(s->pid) != s->start)
    return sbx_fail(err, SBX_ERROR_USAGE, "kill %s: container not running", s->id);
  if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
    return sbx_fail_errno(err, "kill %d", (int)s->pid);
  return TRUE;
}

static const char *status_of(const OciState *s)
{
  if (!proc_alive(s))
    return "stopped";
  g_autofree char *fifo = g_build_filename(s->dir, "exec.fifo", NULL);
  return access(fifo, F_OK) == 0 ? "created" : "running";
}

static void build_state_as(JsonBuilder *b, const OciState *s, const char *status)
{
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "ociVersion");
  json_builder_add_string_value(b, SBX_OCI_VERSION);
  json_builder_set_member_name(b, "id");
  json_builder_add_string_value(b, s->id);
  json_builder_set_member_name(b, "pid");
  json_builder_add_int_value(b, strcmp(status, "stopped") == 0 ? 0 : s->pid);
  json_builder_set_member_name(b, "status");
  json_builder_add_string_value(b, status);
  json_builder_set_member_name(b, "bundle");
  json_builder_add_string_value(b, s->bundle);
  json_builder_set_member_name(b, "rootfs");
  g_autofree char *rootfs = g_build_filename(s->bundle, "rootfs", NULL);
  json_builder_add_string_value(b, rootfs);
  json_builder_set_member_name(b, "created");
  json_builder_add_string_value(b, s->created);
  json_builder_set_member_name(b, "owner");
  json_builder_add_string_value(b, "");
  json_builder_set_member_name(b, "annotations");
  if (s->annotations) {
    json_builder_add_value(b, json_node_copy(s->annotations));
  } else {
    json_builder_begin_object(b);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
}

static void build_state(JsonBuilder *b, const OciState *s)
{
  build_state_as(b, s, status_of(s));
}

static char *state_text(const OciState *s, const char *status)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  build_state_as(b, s, status);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}

/* What hooks read on stdin during create (the pid as sbx-oci sees it). */
static char *hook_state(pid_t pid, gpointer data)
{
  OciState *s = data;
  s->pid = pid;
  return state_text(s, "created");
}

/* The config the container was created with: the copy in its state
 * directory, never the bundle's config.json again (as runc and crun: the
 * bundle, and state.json's record of where it is, may have been rewritten
 * since by whoever can write there, and poststop hooks run on the host, as
 * the user, outside any sandbox). */
static SbxOciConfig *saved_config(const OciState *s, GError **err)
{
  sbx_autofd dirfd = state_dir_open(s->dir, err);
  if (dirfd < 0)
    return NULL;
  g_autoptr(GError) local = NULL;
  SbxOciConfig *c = sbx_oci_config_load_saved(dirfd, s->dir, s->bundle, &local);
  /* Its own words, not ENOENT's: podman takes 'No such file or directory'
   * for a missing program (127), and none is missing here. */
  if (!c && g_error_matches(local, SBX_ERRNO_ERROR, ENOENT))
    sbx_fail(err, SBX_ERROR_FAILED,
             "container %s has no recorded config (made by an older sbx-oci?): delete it and "
             "create it again",
             s->id);
  else if (!c)
    g_propagate_error(err, g_steal_pointer(&local));
  return c;
}

static void warn(const GError *err)
{
  g_autofree char *shown = sbx_escape_text(err->message);
  fprintf(stderr, "sbx-oci: warning: %s\n", shown);
  log_line("warning", err->message);
}

/* poststart/poststop: those recorded at create (a warning when they fail,
 * as the spec asks; and when none were recorded: none run, fail closed). */
static void run_late_hooks(const OciState *s, SbxOciHookKind kind, const char *status)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxOciConfig) c = saved_config(s, &err);
  if (!c) {
    g_prefix_error(&err,
                   "%s hooks not run: ", kind == SBX_HOOK_POSTSTOP ? "poststop" : "poststart");
    warn(err);
    return;
  }
  if (!c->hooks[kind] || !c->hooks[kind]->len)
    return;
  g_autofree char *state = state_text(s, status);
  if (!sbx_oci_run_hooks(c, kind, state, &err))
    warn(err);
}

static void print_json(JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = json_to_string(root, TRUE);
  printf("%s\n", text);
}

/* ---- signals ---- */

static gboolean parse_signal(const char *s, int *out, GError **err)
{
  static const struct {
    const char *name;
    int sig;
  } sigs[] = {{"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
              {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
              {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
              {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
              {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
              {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
              {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
              {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
              {"SYS", SIGSYS}};
  guint64 n;
  /* 0: no signal, the check that the container runs (runc's kill ID 0). */
  if (g_ascii_string_to_unsigned(s, 10, 0, SIGRTMAX, &n, NULL)) {
    *out = (int)n;
    return TRUE;
  }
  const char *name = g_ascii_strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
  for (guint i = 0; i < G_N_ELEMENTS(sigs); i++)
    if (g_ascii_strcasecmp(name, sigs[i].name) == 0) {
      *out = sigs[i].sig;
      return TRUE;
    }
  return sbx_fail(err, SBX_ERROR_USAGE, "unknown signal '%s'", s);
}

/* A number from /proc/PID/status ("NSpid:" is the pid in each namespace,
 * the innermost last). */
static gboolean status_field(pid_t pid, const char *field, gboolean last, pid_t *out)
{
  g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
  g_autofree char *data = NULL;
  if (!g_file_get_contents(path, &data, NULL, NULL))
    return FALSE;
  g_autofree char *key = g_strdup_printf("\n%s:", field);
  const char *at = strstr(data, key);
  if (!at)
    return FALSE;
  at += strlen(key);
  const char *end = strchr(at, '\n');
  g_autofree char *line = g_strndup(at, end ? (gsize)(end - at) : strlen(at));
  g_auto(GStrv) words = g_strsplit_set(g_strstrip(line), " \t", -1);
  guint n = g_strv_length(words);
  guint64 v;
  while (n > 0 && !*words[n - 1])
    n--;
  if (n == 0 || !g_ascii_string_to_unsigned(words[last ? n - 1 : 0], 10, 0, G_MAXINT, &v, NULL))
    return FALSE;
  *out = (pid_t)v;
  return TRUE;
}

/* The container's processes (host pids): without a cgroup, every process in
 * its pid namespace when the container made it (its process is pid 1
 * there). In a namespace it joined (a pod's, shared with other containers)
 * those in its mount namespace, which is its own (what exec starts and what
 * double-forks stay there): the namespace's other processes are not its
 * (runc tells them apart by cgroup; killing them killed the pod). A container in our own pid
 * namespace (--pid=host) cannot be told from the user's other processes: its own pid only. */
static GArray *container_pids(const OciState *s, GError **err)
{
  g_autoptr(GArray) pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
  g_autofree char *nsp = g_strdup_printf("/proc/%d/ns/pid", (int)s->pid);
  struct stat want, self;
  if (stat(nsp, &want) < 0) {
    sbx_fail_errno(err, "%s", nsp);
    return NULL;
  }
  if (stat("/proc/self/ns/pid", &self) == 0 && self.st_ino == want.st_ino &&
      self.st_dev == want.st_dev) {
    log_line("warning", "the container shares our pid namespace: its process only");
    g_array_append_val(pids, s->pid);
    return g_steal_pointer(&pids);
  }
  pid_t inner = 0;
  gboolean made = status_field(s->pid, "NSpid", TRUE, &inner) && inner == 1;
  /* In a namespace it joined: those in its mount namespace (its own:
   * sbx-oci makes or joins one per container; exec joins it too). */
  struct stat mnt = {0};
  g_autofree char *mntp = g_strdup_printf("/proc/%d/ns/mnt", (int)s->pid);
  if (!made && stat(mntp, &mnt) < 0) {
    sbx_fail_errno(err, "%s", mntp);
    return NULL;
  }
  DIR *d = opendir("/proc");
  if (!d) {
    sbx_fail_errno(err, "/proc");
    return NULL;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    guint64 pid;
    if (!g_ascii_string_to_unsigned(e->d_name, 10, 1, G_MAXINT, &pid, NULL))
      continue;
    g_autofree char *p = g_strdup_printf("/proc/%s/ns/pid", e->d_name);
    g_autofree char *m = g_strdup_printf("/proc/%s/ns/mnt", e->d_name);
    struct stat st;
    if (stat(p, &st) < 0 || st.st_ino != want.st_ino || st.st_dev != want.st_dev)
      continue;
    if (!made && (stat(m, &st) < 0 || st.st_ino != mnt.st_ino || st.st_dev != mnt.st_dev))
      continue;
    pid_t v = (pid_t)pid;
    g_array_append_val(pids, v);
  }
  closedir(d);
  if (!made)
    log_line("debug", "the container joined its pid namespace: its mount namespace's processes");
  return g_steal_pointer(&pids);
}

/* --all: every process of the container. */
static gboolean kill_all(const OciState *s, int sig, GError **err)
{
  g_autoptr(GArray) pids = container_pids(s, err);
  if (!pids)
    return FALSE;
  for (guint i = 0; i < pids->len; i++)
    kill(g_array_index(pids, pid_t, i), sig);
  return TRUE;
}

/* ---- commands ---- */

static gboolean parse_cmd(const char *name, const char *params, const GOptionEntry *entries,
                          int *argc, char ***argv, GError **err)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new(params);
  g_autofree char *prog = g_strdup_printf("sbx-oci %s", name);
  g_set_prgname(prog);
  g_option_context_set_strict_posix(ctx, TRUE);
  if (entries)
    g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) local = NULL;
  if (!g_option_context_parse(ctx, argc, argv, &local))
    return sbx_fail(err, SBX_ERROR_USAGE, "%s: %s", name, local->message);
  return TRUE;
}

static const char *one_id(const char *cmd, int argc, char **argv, GError **err)
{
  if (argc != 2) {
    sbx_fail(err, SBX_ERROR_USAGE, "%s: expected one container id", cmd);
    return NULL;
  }
  return argv[1];
}

static gboolean write_pid_file(const char *path, pid_t pid, GError **err)
{
  g_autofree char *text = g_strdup_printf("%d", (int)pid);
  g_autofree char *tmp = g_strconcat(path, ".sbx-tmp", NULL);
  g_autoptr(GError) local = NULL;
  if (!g_file_set_contents(tmp, text, -1, &local) || rename(tmp, path) < 0) {
    unlink(tmp);
    return sbx_fail(err, SBX_ERROR_FAILED, "--pid-file %s: %s", path,
                    local ? local->message : sbx_strerror(errno));
  }
  return TRUE;
}

static gboolean opt_no_pivot, opt_no_new_keyring, opt_force, opt_all, opt_quiet;
static char *opt_format;

static const GOptionEntry create_entries[] = {
    {"bundle", 'b', 0, G_OPTION_ARG_FILENAME, &opt_bundle, "The bundle directory (default .)",
     "DIR"},
    {"pid-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_pid_file, "Write the container's pid to FILE",
     "FILE"},
    {"console-socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_console_socket,
     "Send the terminal's master to this AF_UNIX socket", "PATH"},
    {"no-pivot", 0, 0, G_OPTION_ARG_NONE, &opt_no_pivot, "Accepted (pivot_root is always used)",
     NULL},
    {"no-new-keyring", 0, 0, G_OPTION_ARG_NONE, &opt_no_new_keyring, "Accepted", NULL},
    {"preserve-fds", 0, 0, G_OPTION_ARG_INT, &opt_preserve_fds,
     "Pass N file descriptors after the standard three", "N"},
    {"detach", 'd', 0, G_OPTION_ARG_NONE, &opt_detach, "run: do not wait for the container", NULL},
    {NULL}};

/* What start, exec and delete will use (saved_config): the text parsed and
 * acted on here, not the bundle's file read again. Before state.json: a
 * container recorded has its config. */
static gboolean config_save(const char *dir, const SbxOciConfig *c, GError **err)
{
  gsize len;
  const char *text = g_bytes_get_data(c->source, &len);
  sbx_autofd dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0)
    return sbx_fail_errno(err, "%s", dir);
  return sbx_write_file_atomic(dirfd, SBX_OCI_SAVED_CONFIG, text, len, 0600, err);
}

static gboolean do_create(const char *id, OciState **out, GError **err)
{
  if (opt_preserve_fds < 0 || opt_preserve_fds > 1024)
    return sbx_fail(err, SBX_ERROR_USAGE, "--preserve-fds %d: out of range", opt_preserve_fds);
  g_autoptr(SbxOciConfig) c = sbx_oci_config_load(opt_bundle ? opt_bundle : ".", err);
  if (!c)
    return FALSE;
  for (guint i = 0; i < c->warnings->len; i++)
    log_line("warning", c->warnings->pdata[i]);
  g_autofree char *dir = state_dir(id, err);
  if (!dir)
    return FALSE;
  if (mkdir(dir, 0700) < 0)
    return errno == EEXIST ? sbx_fail(err, SBX_ERROR_USAGE, "container %s already exists", id)
                           : sbx_fail_errno(err, "%s", dir);
  g_autoptr(OciState) s = g_new0(OciState, 1);
  sbx_autofd sync = -1;
  s->id = g_strdup(id);
  s->dir = g_strdup(dir);
  s->bundle = g_strdup(c->bundle);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  s->created = g_date_time_format_iso8601(now);
  s->annotations = c->annotations ? json_node_copy(c->annotations) : NULL;
  /* Refused before anything runs: the record with the widest pid. */
  s->pid = G_MAXINT;
  s->start = G_MAXINT64;
  g_autofree char *widest = state_record(s, err);
  s->pid = 0;
  s->start = 0;
  if (!widest) {
    rmdir(dir);
    return FALSE;
  }
  SbxOciCreate opts = {.id = id,
                       .state_dir = dir,
                       .console_socket = opt_console_socket,
                       .preserve_fds = opt_preserve_fds,
                       .state_json = hook_state,
                       .data = s,
                       .sync_out = &sync};
  debug_log("create: setting up");
  pid_t pid = sbx_oci_create(c, &opts, err);
  s->pid = pid;
  s->start = pid > 0 ? sbx_proc_start_time(pid) : 0;
  if (pid <= 0 || !s->start || !config_save(dir, c, err) || !state_save(s, err) ||
      (opt_pid_file && !write_pid_file(opt_pid_file, pid, err))) {
    if (pid > 0 && err && !*err)
      sbx_fail(err, SBX_ERROR_FAILED, "the container died during create");
    if (pid > 0)
      kill(pid, SIGKILL);
    sbx_rm_rf_at(AT_FDCWD, dir, NULL);
    return FALSE;
  }
  /* Recorded: the container may wait for `start` now. */
  if (!sbx_sync_send_ok(sync, "created")) {
    sbx_fail_errno(err, "the container died during create");
    kill(pid, SIGKILL);
    sbx_rm_rf_at(AT_FDCWD, dir, NULL);
    return FALSE;
  }
  if (out)
    *out = g_steal_pointer(&s);
  return TRUE;
}

static int cmd_create(int argc, char **argv)
{
  GError *err = NULL;
  const char *id;
  if (!parse_cmd("create", "ID", create_entries, &argc, &argv, &err) ||
      !(id = one_id("create", argc, argv, &err)) || !do_create(id, NULL, &err))
    return fail(err);
  return 0;
}

static gboolean do_start(const OciState *s, GError **err)
{
  const char *status = status_of(s);
  if (strcmp(status, "created") != 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "cannot start a container that is %s", status);
  g_autofree char *fifo = g_build_filename(s->dir, "exec.fifo", NULL);
  sbx_autofd fd = open(fifo, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sbx_fail_errno(err, "%s", fifo);
  /* The container opens its end once we hold ours, then writes one byte. */
  for (int i = 0; i < 30000; i++) {
    char b;
    ssize_t n = read(fd, &b, 1);
    if (n == 1 && b == 'E') { /* its reason follows, written at once */
      char why[2049];
      ssize_t m = read(fd, why, sizeof why - 1);
      why[m > 0 ? m : 0] = '\0';
      return sbx_fail(err, SBX_ERROR_FAILED, "container %s: did not start: %s", s->id,
                      m > 0 ? why : "(no reason given)");
    }
    if (n == 1) {
      unlink(fifo);
      run_late_hooks(s, SBX_HOOK_POSTSTART, "running");
      return TRUE;
    }
    if (i % 100 == 99 && !proc_alive(s))
      break;
    g_usleep(1000);
  }
  return sbx_fail(err, SBX_ERROR_FAILED, "container %s: did not start (it exited?)", s->id);
}

static int cmd_start(int argc, char **argv)
{
  GError *err = NULL;
  const char *id;
  g_autoptr(OciState) s = NULL;
  if (!parse_cmd("start", "ID", NULL, &argc, &argv, &err) ||
      !(id = one_id("start", argc, argv, &err)) || !(s = state_load(id, &err)) ||
      !do_start(s, &err))
    return fail(err);
  return 0;
}

/* runc run: create, start, and (unless -d) wait for the process as its
 * subreaper, then delete. Exits with the process's status. */
static int cmd_run(int argc, char **argv)
{
  GError *err = NULL;
  const char *id;
  g_autoptr(OciState) s = NULL;
  if (!parse_cmd("run", "ID", create_entries, &argc, &argv, &err) ||
      !(id = one_id("run", argc, argv, &err)))
    return fail(err);
  if (!opt_detach)
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  if (!do_create(id, &s, &err))
    return fail(err);
  if (!do_start(s, &err)) {
    kill(s->pid, SIGKILL);
    sbx_rm_rf_at(AT_FDCWD, s->dir, NULL);
    return fail(err);
  }
  if (opt_detach)
    return 0;
  int status = 0, code = 255;
  for (;;) {
    pid_t r = waitpid(-1, &status, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    if (r == s->pid) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
  }
  run_late_hooks(s, SBX_HOOK_POSTSTOP, "stopped");
  sbx_rm_rf_at(AT_FDCWD, s->dir, NULL);
  return code;
}

static int cmd_state(int argc, char **argv)
{
  GError *err = NULL;
  const char *id;
  g_autoptr(OciState) s = NULL;
  if (!parse_cmd("state", "ID", NULL, &argc, &argv, &err) ||
      !(id = one_id("state", argc, argv, &err)) || !(s = state_load(id, &err)))
    return fail(err);
  g_autoptr(JsonBuilder) b = json_builder_new();
  build_state(b, s);
  print_json(b);
  return 0;
}

static const GOptionEntry kill_entries[] = {
    {"all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, "Every process of the container", NULL}, {NULL}};

static int cmd_kill(int argc, char **argv)
{
  GError *err = NULL;
  g_autoptr(OciState) s = NULL;
  int sig = SIGTERM;
  if (!parse_cmd("kill", "ID [SIGNAL]", kill_entries, &argc, &argv, &err))
    return fail(err);
  if (argc < 2 || argc > 3) {
    sbx_fail(&err, SBX_ERROR_USAGE, "kill: expected ID [SIGNAL]");
    return fail(err);
  }
  if ((argc == 3 && !parse_signal(argv[2], &sig, &err)) || !(s = state_load(argv[1], &err)))
    return fail(err);
  if (!proc_alive(s)) {
    /* runc's words: containerd's shim and podman look for them. */
    sbx_fail(&err, SBX_ERROR_USAGE, "kill %s: container not running", s->id);
    return fail(err);
  }
  if (opt_all) {
    if (!kill_all(s, sig, &err))
      return fail(err);
  } else if (!signal_recorded(s, sig, &err)) {
    return fail(err);
  }
  return 0;
}

static const GOptionEntry delete_entries[] = {
    {"force", 'f', 0, G_OPTION_ARG_NONE, &opt_force, "Kill the container if it runs", NULL},
    {NULL}};

static int cmd_delete(int argc, char **argv)
{
  GError *err = NULL;
  const char *id;
  if (!parse_cmd("delete", "ID", delete_entries, &argc, &argv, &err) ||
      !(id = one_id("delete", argc, argv, &err)))
    return fail(err);
  g_autoptr(OciState) s = state_load(id, &err);
  if (!s) {
    if (opt_force && err->code == SBX_ERROR_NOT_FOUND) {
      g_clear_error(&err);
      /* A create killed before it recorded the container left its
       * directory (its process ended with it): the id would stay taken.
       * Only when there is no state.json at all (not one that could not
       * be read: that container may be alive). */
      g_autofree char *dir = state_dir(id, NULL);
      g_autofree char *json = dir ? g_build_filename(dir, "state.json", NULL) : NULL;
      struct stat st;
      if (dir && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && lstat(json, &st) < 0 &&
          errno == ENOENT && !sbx_rm_rf_at(AT_FDCWD, dir, &err))
        return fail(err);
      return 0;
    }
    return fail(err);
  }
  const char *status = status_of(s);
  if (strcmp(status, "running") == 0 && !opt_force) {
    sbx_fail(&err, SBX_ERROR_USAGE, "cannot delete container %s: it is running (use --force)", id);
    return fail(err);
  }
  if (strcmp(status, "stopped") != 0) {
    /* created (waiting on exec.fifo) or running with --force: SIGKILL, and
     * wait until it is gone (a pid 1 takes its namespace with it). */
    (void)signal_recorded(s, SIGKILL, NULL);
    for (int i = 0; i < 10000 && proc_alive(s); i++)
      g_usleep(1000);
  }
  run_late_hooks(s, SBX_HOOK_POSTSTOP, "stopped");
  if (!sbx_rm_rf_at(AT_FDCWD, s->dir, &err))
    return fail(err);
  return 0;
}

static const GOptionEntry list_entries[] = {
    {"format", 'f', 0, G_OPTION_ARG_STRING, &opt_format, "table or json", "FORMAT"},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "Only the ids", NULL},
    {NULL}};

static int cmd_list(int argc, char **argv)
{
  GError *err = NULL;
  if (!parse_cmd("list", "", list_entries, &argc, &argv, &err))
    return fail(err);
  g_autofree char *root = state_root(&err);
  if (!root)
    return fail(err);
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GDir) d = g_dir_open(root, 0, NULL);
  for (const char *n; d && (n = g_dir_read_name(d)) != NULL;)
    g_ptr_array_add(ids, g_strdup(n));
  g_ptr_array_sort(ids, (GCompareFunc)(void *)g_strcmp0);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_array(b);
  if (!opt_quiet && g_strcmp0(opt_format, "json") != 0)
    printf("%-20s %-8s %-10s %-40s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
  for (guint i = 0; i < ids->len; i++) {
    g_autoptr(GError) local = NULL;
    g_autoptr(OciState) s = state_load(ids->pdata[i], &local);
    if (!s)
      continue;
    if (g_strcmp0(opt_format, "json") == 0) {
      build_state(b, s);
    } else if (opt_quiet) {
      printf("%s\n", s->id);
    } else {
      const char *st = status_of(s);
      printf("%-20s %-8d %-10s %-40s %s\n", s->id, strcmp(st, "stopped") ? (int)s->pid : 0, st,
             s->bundle, s->created);
    }
  }
  json_builder_end_array(b);
  if (g_strcmp0(opt_format, "json") == 0)
    print_json(b);
  return 0;
}

static char *opt_spec_bundle;
static const GOptionEntry spec_entries[] = {
    {"bundle", 'b', 0, G_OPTION_ARG_FILENAME, &opt_spec_bundle, "Write DIR/config.json", "DIR"},
    {"rootless", 0, 0, G_OPTION_ARG_NONE, &opt_quiet, "Accepted (the spec is always rootless)",
     NULL},
    {NULL}};

static int cmd_spec(int argc, char **argv)
{
  GError *err = NULL;
  if (!parse_cmd("spec", "", spec_entries, &argc, &argv, &err))
    return fail(err);
  g_autofree char *path =
      g_build_filename(opt_spec_bundle ? opt_spec_bundle : ".", "config.json", NULL);
  g_autofree char *text = sbx_oci_default_spec(geteuid(), getegid());
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    sbx_fail_errno(&err, "%s", path);
    return fail(err);
  }
  gboolean ok = sbx_write_all(fd, text, strlen(text), &err);
  close(fd);
  return ok ? 0 : fail(err);
}

static void add_strings(JsonBuilder *b, const char *name, const char *const *v, gsize n)
{
  json_builder_set_member_name(b, name);
  json_builder_begin_array(b);
  for (gsize i = 0; i < n; i++)
    json_builder_add_string_value(b, v[i]);
  json_builder_end_array(b);
}

static int cmd_features(int argc, char **argv)
{
  GError *err = NULL;
  if (!parse_cmd("features", "", NULL, &argc, &argv, &err))
    return fail(err);
  static const char *const mount_opts[] = {
      "async",  "atime",       "bind",      "defaults",   "dev",      "diratime",   "dirsync",
      "exec",   "noatime",     "nodev",     "nodiratime", "noexec",   "norelatime", "nostrictatime",
      "nosuid", "private",     "rbind",     "relatime",   "rprivate", "rro",        "rshared",
      "rslave", "runbindable", "ro",        "rw",         "shared",   "slave",      "strictatime",
      "suid",   "sync",        "tmpcopyup", "unbindable"};
  static const char *const namespaces[] = {"cgroup", "ipc",  "mount", "network",
                                           "pid",    "user", "uts"};
  static const char *const actions[] = {
      "SCMP_ACT_ALLOW",       "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
      "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",   "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"};
  static const char *const operators[] = {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                          "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
                                          "SCMP_CMP_NE"};
  g_autoptr(GPtrArray) caps = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i <= sbx_cap_last(); i++)
    g_ptr_array_add(caps, g_strconcat("CAP_", sbx_cap_name(i), NULL));
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "ociVersionMin");
  json_builder_add_string_value(b, "1.0.0");
  json_builder_set_member_name(b, "ociVersionMax");
  json_builder_add_string_value(b, SBX_OCI_VERSION);
  static const char *const hooks[] = {"prestart",       "createRuntime", "createContainer",
                                      "startContainer", "poststart",     "poststop"};
  add_strings(b, "hooks", hooks, G_N_ELEMENTS(hooks));
  add_strings(b, "mountOptions", mount_opts, G_N_ELEMENTS(mount_opts));
  json_builder_set_member_name(b, "linux");
  json_builder_begin_object(b);
  add_strings(b, "namespaces", namespaces, G_N_ELEMENTS(namespaces));
  add_strings(b, "capabilities", (const char *const *)caps->pdata, caps->len);
  json_builder_set_member_name(b, "cgroup");
  json_builder_begin_object(b);
  static const char *const cg[] = {"v1", "v2", "systemd", "systemdUser"};
  for (guint i = 0; i < G_N_ELEMENTS(cg); i++) {
    json_builder_set_member_name(b, cg[i]);
    json_builder_add_boolean_value(b, FALSE);
  }
  json_builder_end_object(b);
  json_builder_set_member_name(b, "seccomp");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "enabled");
  json_builder_add_boolean_value(b, TRUE);
  add_strings(b, "actions", actions, G_N_ELEMENTS(actions));
  add_strings(b, "operators", operators, G_N_ELEMENTS(operators));
  json_builder_end_object(b);
  static const char *const off[] = {"apparmor", "selinux"};
  for (guint i = 0; i < G_N_ELEMENTS(off); i++) {
    json_builder_set_member_name(b, off[i]);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "enabled");
    json_builder_add_boolean_value(b, FALSE);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  json_builder_set_member_name(b, "annotations");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "io.github.sbx.version");
  json_builder_add_string_value(b, SBX_VERSION);
  json_builder_set_member_name(b, "io.github.seccomp.libseccomp.version");
  json_builder_add_string_value(b, SBX_SECCOMP_VERSION);
  json_builder_end_object(b);
  json_builder_end_object(b);
  print_json(b);
  return 0;
}

static char *opt_process, *opt_cwd, *opt_user;
static char **opt_env;
static gboolean opt_tty;
static const GOptionEntry exec_entries[] = {
    {"process", 'p', 0, G_OPTION_ARG_FILENAME, &opt_process,
     "The process as JSON (config.json's \"process\")", "FILE"},
    {"detach", 'd', 0, G_OPTION_ARG_NONE, &opt_detach, "Do not wait for the process", NULL},
    {"pid-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_pid_file, "Write the process's pid to FILE",
     "FILE"},
    {"console-socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_console_socket,
     "Send the terminal's master to this AF_UNIX socket", "PATH"},
    {"tty", 't', 0, G_OPTION_ARG_NONE, &opt_tty, "A pseudo-terminal (with --console-socket)", NULL},
    {"cwd", 0, 0, G_OPTION_ARG_FILENAME, &opt_cwd, "Working directory", "DIR"},
    {"env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &opt_env, "Set KEY=VALUE", "KEY=VALUE"},
    {"user", 'u', 0, G_OPTION_ARG_STRING, &opt_user, "UID[:GID]", "UID[:GID]"},
    {"preserve-fds", 0, 0, G_OPTION_ARG_INT, &opt_preserve_fds,
     "Pass N file descriptors after the standard three", "N"},
    {NULL}};

static gboolean exec_overrides(SbxOciConfig *c, int argc, char **argv, GError **err)
{
  if (opt_process)
    return argc == 2 ? sbx_oci_process_load(c, opt_process, err)
                     : sbx_fail(err, SBX_ERROR_USAGE, "exec --process: expected just the ID");
  if (argc < 3)
    return sbx_fail(err, SBX_ERROR_USAGE, "exec: expected ID COMMAND [ARG...] or --process");
  g_strfreev(c->args);
  c->args = g_strdupv(argv + 2);
  for (char **e = opt_env; e && *e; e++) {
    g_auto(GStrv) kv = g_strsplit(*e, "=", 2);
    if (!kv[0] || !kv[1] || !*kv[0])
      return sbx_fail(err, SBX_ERROR_USAGE, "--env %s: expected KEY=VALUE", *e);
    c->env = g_environ_setenv(c->env, kv[0], kv[1], TRUE);
  }
  if (opt_cwd) {
    g_free(c->cwd);
    c->cwd = g_strdup(opt_cwd);
  }
  if (opt_user) {
    g_auto(GStrv) ug = g_strsplit(opt_user, ":", 2);
    guint64 u, g = c->gid;
    if (!g_ascii_string_to_unsigned(ug[0], 10, 0, G_MAXUINT32 - 1, &u, NULL) ||
        (ug[1] && !g_ascii_string_to_unsigned(ug[1], 10, 0, G_MAXUINT32 - 1, &g, NULL)))
      return sbx_fail(err, SBX_ERROR_USAGE, "--user %s: expected UID[:GID]", opt_user);
    c->uid = (uid_t)u;
    c->gid = (gid_t)g;
  }
  c->terminal = opt_tty;
  return TRUE;
}

/* exec without --detach: the signals sbx forwards (sbx_pid_forwarded_signals)
 * are blocked from the start and taken with sigwaitinfo once the process's
 * pid is known; one that came before (the program may be running, and have
 * said so, before sbx_oci_exec returns) waits pending till then. Its status
 * is returned. */
static int forward_until_exit(pid_t pid, const sigset_t *forwarded)
{
  sigset_t wait_for = *forwarded;
  sigaddset(&wait_for, SIGCHLD);
  sigprocmask(SIG_BLOCK, &wait_for, NULL);
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR)
      return 255;
    siginfo_t si;
    int sig = sigwaitinfo(&wait_for, &si);
    if (sig > 0 && sig != SIGCHLD)
      kill(pid, sig);
  }
}

static int cmd_exec(int argc, char **argv)
{
  GError *err = NULL;
  g_autoptr(OciState) s = NULL;
  g_autoptr(SbxOciConfig) c = NULL;
  if (!parse_cmd("exec", "ID [COMMAND [ARG...]]", exec_entries, &argc, &argv, &err))
    return fail(err);
  if (argc < 2) {
    sbx_fail(&err, SBX_ERROR_USAGE, "exec: expected a container id");
    return fail(err);
  }
  if (!(s = state_load(argv[1], &err)) || !(c = saved_config(s, &err)) ||
      !exec_overrides(c, argc, argv, &err))
    return fail(err);
  if (strcmp(status_of(s), "running") != 0) {
    sbx_fail(&err, SBX_ERROR_USAGE, "cannot exec in container %s: it is %s", s->id, status_of(s));
    return fail(err);
  }
  /* Blocked from the start: a signal before the process exists waits for
   * it (sbx_process_exec unblocks everything in the process before execve). */
  sigset_t forwarded;
  sbx_pid_forwarded_signals(&forwarded);
  if (!opt_detach)
    sigprocmask(SIG_BLOCK, &forwarded, NULL);
  SbxOciExec x = {.pid = s->pid,
                  .start = s->start,
                  .console_socket = opt_console_socket,
                  .preserve_fds = opt_preserve_fds,
                  .detach = opt_detach};
  pid_t pid = sbx_oci_exec(c, &x, &err);
  if (pid < 0 || (opt_pid_file && !write_pid_file(opt_pid_file, pid, &err)))
    return fail(err);
  if (opt_detach)
    return 0;
  return forward_until_exit(pid, &forwarded);
}

static const GOptionEntry ps_entries[] = {
    {"format", 'f', 0, G_OPTION_ARG_STRING, &opt_format, "table or json", "FORMAT"}, {NULL}};

/* runc ps: the container's pids (json: an array, as the containerd shim
 * reads it; table: one PID a line). */
static int cmd_ps(int argc, char **argv)
{
  GError *err = NULL;
  g_autoptr(OciState) s = NULL;
  if (!parse_cmd("ps", "ID", ps_entries, &argc, &argv, &err) || !one_id("ps", argc, argv, &err))
    return fail(err);
  if (opt_format && strcmp(opt_format, "json") != 0 && strcmp(opt_format, "table") != 0) {
    sbx_fail(&err, SBX_ERROR_USAGE, "ps --format %s: table or json", opt_format);
    return fail(err);
  }
  if (!(s = state_load(argv[1], &err)))
    return fail(err);
  g_autoptr(GArray) pids =
      proc_alive(s) ? container_pids(s, &err) : g_array_new(FALSE, FALSE, sizeof(pid_t));
  if (!pids)
    return fail(err);
  if (g_strcmp0(opt_format, "json") == 0) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_array(b);
    for (guint i = 0; i < pids->len; i++)
      json_builder_add_int_value(b, g_array_index(pids, pid_t, i));
    json_builder_end_array(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *text = json_to_string(root, FALSE);
    printf("%s\n", text);
  } else {
    printf("PID\n");
    for (guint i = 0; i < pids->len; i++)
      printf("%d\n", (int)g_array_index(pids, pid_t, i));
  }
  return 0;
}

/* What needs a cgroup sbx-oci does not have (the freezer, limits, stats):
 * refused by name, so the engine reports why (as runc does rootless
 * without cgroup access). */
static int cmd_no_cgroup(int argc, char **argv)
{
  GError *err = NULL;
  g_autofree char *name = g_strdup(argv[0]);
  /* --help works; runc's own options (update --resources ...) are let
   * through to the refusal that matters. */
  g_autoptr(GOptionContext) ctx = g_option_context_new("ID");
  g_autofree char *prog = g_strdup_printf("sbx-oci %s", name);
  g_set_prgname(prog);
  g_option_context_set_ignore_unknown_options(ctx, TRUE);
  (void)g_option_context_parse(ctx, &argc, &argv, NULL);
  sbx_fail(&err, SBX_ERROR_USAGE, "%s: not supported: sbx-oci manages no cgroups", name);
  return fail(err);
}

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} commands[] = {
    {"exec", cmd_exec, "Run another process in a running container"},
    {"create", cmd_create, "Set a container up; it waits for start"},
    {"start", cmd_start, "Run the program of a created container"},
    {"run", cmd_run, "create + start, waiting for the program"},
    {"state", cmd_state, "The container's state as JSON"},
    {"kill", cmd_kill, "Send a signal to the container's process"},
    {"delete", cmd_delete, "Remove a stopped (or, with --force, any) container"},
    {"list", cmd_list, "The containers under --root"},
    {"spec", cmd_spec, "Write a default rootless config.json"},
    {"features", cmd_features, "What this runtime supports, as JSON"},
    {"ps", cmd_ps, "The container's processes (--format json: their pids)"},
    {"pause", cmd_no_cgroup, "Refused: needs the freezer cgroup"},
    {"resume", cmd_no_cgroup, "Refused: needs the freezer cgroup"},
    {"update", cmd_no_cgroup, "Refused: needs a cgroup"},
    {"events", cmd_no_cgroup, "Refused: statistics need a cgroup"},
};

/* CVE-2019-5736's way in: a program of the container's that starts with
 * "#!/proc/self/exe" has the kernel run, inside the container, the binary
 * of the process exec'ing it: ours. The container's other processes then
 * hold that file through /proc/PID/exe and write it once nothing runs it:
 * the next sbx-oci anyone runs would be theirs. Where our binary is
 * writable by us (a build tree, ~/.local/bin), sbx-oci runs from a sealed
 * copy in memory, as runc does; an installed binary the user cannot write
 * costs nothing. Fails closed: a copy that cannot be made or run ends here. */
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3: exec allowed whatever vm.memfd_noexec says */
#endif

static void run_sealed_if_writable(char **argv)
{
  sbx_autofd self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0)
    return; /* no /proc: nothing to reach it by either */
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & F_SEAL_WRITE))
    return; /* the copy */
  /* Left as it is only when the user can neither write it nor make it
   * writable: not theirs (root's, installed), and refused for writing. A
   * file of theirs at 0555 is chmod-able from the container (root inside is
   * the user); any other answer of the check is a copy too. */
  struct stat st;
  struct statvfs vfs;
  gboolean readonly = fstatvfs(self, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
  if (fstat(self, &st) == 0 && (st.st_uid != geteuid() || readonly) &&
      faccessat(AT_FDCWD, "/proc/self/exe", W_OK, AT_EACCESS) < 0 &&
      (errno == EACCES || errno == EROFS))
    return;
  int mem = memfd_create("sbx-oci", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mem < 0 && errno == EINVAL) /* before Linux 6.3 */
    mem = memfd_create("sbx-oci", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  gboolean ok = mem >= 0 && fstat(self, &st) == 0;
  for (off_t done = 0; ok && done < st.st_size;) {
    ssize_t n = sendfile(mem, self, NULL, (size_t)(st.st_size - done));
    ok = n > 0;
    done += n > 0 ? n : 0;
  }
  if (ok && fcntl(mem, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0)
    fexecve(mem, argv, environ);
  g_autofree char *line =
      g_strdup_printf("sbx-oci: run from a sealed copy (its binary is writable by this user): %s\n",
                      sbx_strerror(errno));
  (void)!write(STDERR_FILENO, line, strlen(line));
  _exit(1);
}

int main(int argc, char **argv)
{
  run_sealed_if_writable(argv);
  /* The container's set-up and hooks run in its root: nothing may read the
   * image's gconv-modules or charset.alias there (sbx_charset_pin). */
  sbx_log_glib_plain();
  sbx_charset_pin();
  g_autoptr(GOptionContext) ctx = g_option_context_new("COMMAND [ARG...]");
  g_option_context_set_strict_posix(ctx, TRUE);
  g_option_context_add_main_entries(ctx, global_entries, NULL);
  g_autoptr(GString) summary = g_string_new("Commands:\n");
  for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
    g_string_append_printf(summary, "  %-10s %s\n", commands[i].name, commands[i].help);
  g_option_context_set_summary(ctx, summary->str);
  GError *err = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
    GError *e = NULL;
    sbx_fail(&e, SBX_ERROR_USAGE, "%s", err->message);
    g_error_free(err);
    return fail(e);
  }
  if (opt_log_format && strcmp(opt_log_format, "text") != 0 &&
      strcmp(opt_log_format, "json") != 0) {
    sbx_fail(&err, SBX_ERROR_USAGE, "--log-format %s: text or json", opt_log_format);
    return fail(err);
  }
  if (opt_debug)
    sbx_log_set_level("debug");
  if (opt_version) {
    const struct scmp_version *v = seccomp_version();
    printf("sbx-oci version %s\nspec: %s\nlibseccomp: %u.%u.%u\n", SBX_VERSION, SBX_OCI_VERSION,
           v->major, v->minor, v->micro);
    return 0;
  }
  if (argc < 2) {
    sbx_fail(&err, SBX_ERROR_USAGE, "no command (sbx-oci --help lists them)");
    return fail(err);
  }
  for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].fn(argc - 1, argv + 1);
  sbx_fail(&err, SBX_ERROR_USAGE, "unknown command '%s'", argv[1]);
  return fail(err);
}
