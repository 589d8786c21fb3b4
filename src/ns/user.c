/* The user namespace: who the sandbox's ids are on the host.
 *
 * Writing a map to another process's uid_map is allowed without privilege for
 * exactly one id, our own (after setgroups is denied). A wider map needs the
 * setuid helpers newuidmap/newgidmap, which check /etc/subuid and /etc/subgid. */
#include "sbx/user.h"
#include "sbx/ns.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <sched.h>
#include <signal.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

gboolean sbx_userns_mode_parse(const char *s, SbxUsernsMode *out, GError **err)
{
  if (g_strcmp0(s, "auto") == 0)
    *out = SBX_USERNS_AUTO;
  else if (g_strcmp0(s, "single") == 0)
    *out = SBX_USERNS_SINGLE;
  else if (g_strcmp0(s, "range") == 0)
    *out = SBX_USERNS_RANGE;
  else
    return sbx_fail(err, SBX_ERROR_USAGE, "--userns: '%s' is not one of auto, single, range", s);
  return TRUE;
}

gboolean sbx_subid_lookup(const char *file, const char *user, uid_t uid, guint64 *start,
                          guint64 *count)
{
  g_autofree char *data = NULL;
  if (!g_file_get_contents(file, &data, NULL, NULL))
    return FALSE;
  g_autofree char *uidstr = g_strdup_printf("%u", (unsigned)uid);
  g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
  for (char **l = lines; *l; l++) {
    g_auto(GStrv) f = g_strsplit(g_strstrip(*l), ":", 4);
    if (g_strv_length(f) != 3 || f[0][0] == '#')
      continue;
    if (f[0][0] == '\0' || (g_strcmp0(f[0], user) != 0 && g_strcmp0(f[0], uidstr) != 0))
      continue;
    guint64 s, c;
    if (!g_ascii_string_to_unsigned(f[1], 10, 0, G_MAXUINT32, &s, NULL) ||
        !g_ascii_string_to_unsigned(f[2], 10, 1, G_MAXUINT32, &c, NULL))
      continue;
    *start = s;
    *count = c;
    return TRUE;
  }
  return FALSE;
}

/* The user's name, which /etc/subuid may list instead of the uid:
 * /etc/passwd itself first (libc's fgetpwent, ~10 us), NSS only for a user
 * it does not list (getpwuid: nsswitch.conf, nscd's socket and the files,
 * ~0.1 ms of each start in range mode). The file is read once and parsed
 * from memory: fgetpwent on the file asks the kernel for its offset
 * (lseek) before each line, fifty system calls on a small system. */
static char *user_name(uid_t uid)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  if (g_file_get_contents("/etc/passwd", &data, &len, NULL))
    len = sbx_text_drop_long_lines(data, len, SBX_ACCOUNT_LINE_MAX);
  FILE *f = data && len > 0 ? fmemopen(data, len, "r") : NULL;
  struct passwd *pw;
  while (f && (pw = fgetpwent(f)) != NULL)
    if (pw->pw_uid == uid) {
      char *name = g_strdup(pw->pw_name);
      fclose(f);
      return name;
    }
  if (f)
    fclose(f);
  pw = getpwuid(uid);
  return g_strdup(pw ? pw->pw_name : "");
}

gboolean sbx_idmap_resolve(SbxUsernsMode want, const SbxSettings *set, SbxIdMap *map, GError **err)
{
  memset(map, 0, sizeof *map);
  map->uid = getuid();
  map->gid = getgid();
  map->mode = SBX_USERNS_SINGLE;
  if (want == SBX_USERNS_SINGLE)
    return TRUE;
  g_autofree char *name = user_name(map->uid);
  const char *subuid = set->subuid_file, *subgid = set->subgid_file;
  gboolean have_u =
      sbx_subid_lookup(subuid, name, map->uid, &map->subuid_start, &map->subuid_count);
  gboolean have_g =
      sbx_subid_lookup(subgid, name, map->uid, &map->subgid_start, &map->subgid_count);
  map->newuidmap = g_find_program_in_path("newuidmap");
  map->newgidmap = g_find_program_in_path("newgidmap");
  if (have_u && have_g && map->newuidmap && map->newgidmap) {
    map->mode = SBX_USERNS_RANGE;
    return TRUE;
  }
  if (want == SBX_USERNS_AUTO)
    return TRUE;
  sbx_idmap_clear(map);
  if (!have_u || !have_g)
    return sbx_fail(err, SBX_ERROR_FAILED,
                    "--userns=range: no range for user %s in %s: add one, e.g. "
                    "'usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s'",
                    name, !have_u ? subuid : subgid, name);
  return sbx_fail(err, SBX_ERROR_FAILED,
                  "--userns=range: newuidmap/newgidmap not found: install the uidmap package");
}

void sbx_idmap_clear(SbxIdMap *map)
{
  g_clear_pointer(&map->newuidmap, g_free);
  g_clear_pointer(&map->newgidmap, g_free);
}

void sbx_idmap_copy(SbxIdMap *dst, const SbxIdMap *src)
{
  *dst = *src;
  dst->newuidmap = g_strdup(src->newuidmap);
  dst->newgidmap = g_strdup(src->newgidmap);
}

char *sbx_idmap_key(const SbxIdMap *map)
{
  if (map->mode == SBX_USERNS_SINGLE)
    return g_strdup("single");
  return g_strdup_printf(
      "range-%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
      map->subuid_start, map->subuid_count, map->subgid_start, map->subgid_count);
}

gboolean sbx_idmap_has_uid(const SbxIdMap *map, guint64 id)
{
  return id == 0 || (map->mode == SBX_USERNS_RANGE && id <= map->subuid_count);
}

gboolean sbx_idmap_has_gid(const SbxIdMap *map, guint64 id)
{
  return id == 0 || (map->mode == SBX_USERNS_RANGE && id <= map->subgid_count);
}

/* pid 0: our own. */
static gboolean write_proc(pid_t pid, const char *file, const char *content, GError **err)
{
  g_autofree char *path = pid > 0 ? g_strdup_printf("/proc/%d/%s", (int)pid, file)
                                  : g_strconcat("/proc/self/", file, NULL);
  return sbx_write_value(path, content, err);
}

static pid_t spawn_map_helper(const char *prog, pid_t pid, guint64 id, guint64 start, guint64 count)
{
  char a[5][32];
  g_snprintf(a[0], 32, "%d", (int)pid);
  g_snprintf(a[1], 32, "%" G_GUINT64_FORMAT, id);
  g_snprintf(a[2], 32, "%" G_GUINT64_FORMAT, start);
  g_snprintf(a[3], 32, "%" G_GUINT64_FORMAT, count);
  char *argv[] = {(char *)prog, a[0], "0", a[1], "1", "1", a[2], a[3], NULL};
  pid_t child = fork();
  if (child == 0) {
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(prog, argv, envp);
    _exit(127);
  }
  return child;
}

static gboolean wait_map_helper(pid_t child, const char *prog, GError **err)
{
  int status;
  if (child < 0)
    return sbx_fail_errno(err, "fork %s", prog);
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR)
      return sbx_fail_errno(err, "wait %s", prog);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return sbx_fail(err, SBX_ERROR_FAILED,
                    "%s failed (status %d): check /etc/subuid, /etc/subgid and that %s is setuid",
                    prog, sbx_exit_status(status), prog);
  return TRUE;
}

/* The sandbox's namespace inside the intermediate one (nested_main): the
 * intermediate holds CAP_SETUID and CAP_SETGID over its own range, so it
 * writes any map of it itself, and setgroups stays allowed (user_namespaces(7):
 * "deny" is only needed without CAP_SETGID in the parent namespace). */
static gboolean idmap_apply_identity(const SbxIdMap *map, pid_t pid, GError **err)
{
  /* One line per extent of our own map: an extent must lie within one of
   * the parent's (map_id_range_down). */
  g_autofree char *um = g_strdup_printf("0 0 1\n1 1 %" G_GUINT64_FORMAT "\n", map->subuid_count);
  g_autofree char *gm = g_strdup_printf("0 0 1\n1 1 %" G_GUINT64_FORMAT "\n", map->subgid_count);
  return write_proc(pid, "uid_map", um, err) && write_proc(pid, "gid_map", gm, err);
}

gboolean sbx_idmap_apply(const SbxIdMap *map, pid_t pid, GError **err)
{
  if (map->nested)
    return idmap_apply_identity(map, pid, err);
  if (map->mode == SBX_USERNS_SINGLE) {
    g_autofree char *um = g_strdup_printf("0 %u 1\n", (unsigned)map->uid);
    g_autofree char *gm = g_strdup_printf("0 %u 1\n", (unsigned)map->gid);
    if (pid > 0)
      sbx_debug("uid_map/gid_map of %d: 0 -> %u/%u (single id, setgroups denied)", (int)pid,
                (unsigned)map->uid, (unsigned)map->gid);
    return write_proc(pid, "setgroups", "deny", err) && write_proc(pid, "uid_map", um, err) &&
           write_proc(pid, "gid_map", gm, err);
  }
  sbx_debug("newuidmap/newgidmap %d: 0 -> %u, 1..%" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT,
            (int)pid, (unsigned)map->uid, map->subuid_count, map->subuid_start);
  /* Both helpers run at once: each costs an exec of a setuid binary. */
  pid_t u = spawn_map_helper(map->newuidmap, pid, map->uid, map->subuid_start, map->subuid_count);
  pid_t g = spawn_map_helper(map->newgidmap, pid, map->gid, map->subgid_start, map->subgid_count);
  gboolean ok_u = wait_map_helper(u, map->newuidmap, err);
  gboolean ok_g = wait_map_helper(g, map->newgidmap, ok_u ? err : NULL);
  return ok_u && ok_g;
}

pid_t sbx_userns_clone(const SbxIdMap *map, unsigned long flags, int *syncfd, GError **err)
{
  return sbx_userns_clone_full(map, flags, NULL, NULL, syncfd, err);
}

/* The sandbox's user namespace with `owner` (>= 1) as its owner and the
 * soft RLIMIT_NPROC `nproc` recorded as its bound (see
 * sbx_userns_clone_owned); the caller's own ids and limit come back. */
static pid_t clone_owned(unsigned long flags, uid_t owner, guint64 nproc)
{
  struct rlimit had, lim;
  if (getrlimit(RLIMIT_NPROC, &had) < 0)
    return -1;
  lim = had;
  lim.rlim_cur = MIN((rlim_t)nproc, had.rlim_max);
  if (setrlimit(RLIMIT_NPROC, &lim) < 0)
    return -1;
  /* A change of effective uid makes the process non-dumpable, and the
   * child with it: its /proc files (uid_map among them) would belong to
   * the host's root, out of our reach. Dumpable as before, it is ours. */
  int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  if (setresuid(-1, owner, -1) < 0 || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) {
    int e = errno;
    if (setresuid(-1, 0, -1) < 0) /* cannot fail: the saved uid is 0 */
      e = errno;
    setrlimit(RLIMIT_NPROC, &had);
    errno = e;
    return -1;
  }
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid == 0)
    return 0;
  int e = errno;
  /* Back to uid 0 of the holder's namespace, and its capabilities with it
   * (permitted was kept: the real and saved uid stayed 0). */
  if (setresuid(-1, 0, -1) < 0 || setrlimit(RLIMIT_NPROC, &had) < 0 ||
      (dumpable >= 0 && prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0) < 0)) {
    e = errno; /* cannot happen: the real and saved uid are 0 */
    if (pid > 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
    pid = -1;
  }
  errno = e;
  return pid;
}

/* Message queue bytes and pending signals are counted per user all the way
 * up: what a sandbox takes, the user's other programs lack (a run of 9
 * mq_open or a flood of queued signals took all of the host user's). The
 * kernel bounds a namespace's charge to its parent with the creator's soft
 * limits when it is made (create_user_ns: rlimit_max), so the sandbox is
 * created under a quarter of ours, and its processes get ours back. */
static const int shared_limits[SBX_SHARED_LIMITS] = {RLIMIT_MSGQUEUE, RLIMIT_SIGPENDING};

void sbx_userns_lower_shared_limits(SbxSharedLimits *l)
{
  for (gsize i = 0; i < G_N_ELEMENTS(shared_limits); i++) {
    struct rlimit *had = &l->had[i];
    l->lowered[i] =
        getrlimit(shared_limits[i], had) == 0 && had->rlim_cur != RLIM_INFINITY &&
        setrlimit(shared_limits[i], &(struct rlimit){had->rlim_cur / 4, had->rlim_max}) == 0;
  }
}

void sbx_userns_restore_shared_limits(const SbxSharedLimits *l)
{
  for (gsize i = 0; i < G_N_ELEMENTS(shared_limits); i++)
    if (l->lowered[i])
      setrlimit(shared_limits[i], &l->had[i]);
}

/* The same for inotify instances and watches, whose bounds are sysctls of
 * each namespace (user.max_inotify_*, INT_MAX in a new one): called in a
 * namespace we own with CAP_SYS_RESOURCE, it bounds each of its uids to a
 * quarter of the host's fs.inotify.max_user_* (the holder's namespace:
 * each sandbox's owner; a sandbox's own: each of its uids). Best effort. */
void sbx_userns_bound_inotify(void)
{
  static const char *const names[][2] = {
      {"/proc/sys/fs/inotify/max_user_instances", "/proc/sys/user/max_inotify_instances"},
      {"/proc/sys/fs/inotify/max_user_watches", "/proc/sys/user/max_inotify_watches"}};
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    char buf[32] = {0};
    guint64 host = 0;
    sbx_autofd in = open(names[i][0], O_RDONLY | O_CLOEXEC);
    ssize_t n = in >= 0 ? read(in, buf, sizeof buf - 1) : -1;
    if (n <= 0 || !g_ascii_string_to_unsigned(g_strstrip(buf), 10, 4, G_MAXINT32, &host, NULL))
      continue;
    g_autofree char *value = g_strdup_printf("%" G_GUINT64_FORMAT, host / 4);
    sbx_autofd out = open(names[i][1], O_WRONLY | O_CLOEXEC);
    if (out < 0 || write(out, value, strlen(value)) < 0)
      sbx_debug("%s: %s", names[i][1], sbx_strerror(errno));
  }
}

/* In the child, after its parent-death signal is (re)set: did sbx die
 * before that? Its end of the socket is closed then (getppid says 0 across
 * the PID namespace). */
static gboolean sbx_gone(int sync)
{
  struct pollfd p = {.fd = sync, .events = POLLIN};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

static pid_t userns_clone(const SbxIdMap *map, unsigned long flags, uid_t owner, guint64 nproc,
                          SbxBeforeGo before_go, gpointer data, int *syncfd, GError **err)
{
  int fds[2];
  if (!sbx_sync_pair(fds, err))
    return -1;
  pid_t parent = getpid();
  SbxSharedLimits shared;
  sbx_userns_lower_shared_limits(&shared);
  /* Raw clone: fork semantics, with every namespace created at once and owned
   * by the new user namespace (bubblewrap does the same). */
  pid_t pid =
      owner ? clone_owned(flags, owner, nproc)
            : (pid_t)syscall(SYS_clone, CLONE_NEWUSER | flags | SIGCHLD, NULL, NULL, NULL, NULL);
  sbx_userns_restore_shared_limits(&shared); /* in the child too: its programs get ours */
  if (pid < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    if (e == EPERM || e == ENOSPC)
      return sbx_fail_errnum(err, e,
                             "create user namespace (are unprivileged user namespaces "
                             "enabled? see 'sysctl user.max_user_namespaces')"),
             -1;
    return sbx_fail_errnum(err, e, "clone"), -1;
  }
  /* One id and nothing to do before the child goes on: it writes its own
   * maps (its own uid to 0, as `unshare -r` and bwrap do) and waits for no
   * "go", one hand-over less on the start's path. */
  gboolean self_map = map->mode == SBX_USERNS_SINGLE && !map->nested && !owner && !before_go;
  if (pid == 0 && self_map) {
    close(fds[0]);
    sbx_child_die_with_parent(NULL);
    if (sbx_gone(fds[1]))
      _exit(SBX_EXIT_FAILED);
    g_autoptr(GError) e = NULL;
    if (!sbx_idmap_apply(map, 0, &e)) {
      sbx_sync_send_error(fds[1], e);
      _exit(SBX_EXIT_FAILED);
    }
    *syncfd = fds[1];
    return 0;
  }
  if (pid == 0) {
    close(fds[0]);
    sbx_child_die_with_parent(NULL);
    /* If sbx died before prctl, the go message never comes: EOF ends us. */
    char *go = NULL;
    if (!sbx_sync_recv(fds[1], &go, "sbx", NULL) || g_strcmp0(go, "go") != 0)
      _exit(SBX_EXIT_FAILED);
    g_free(go);
    (void)parent;
    /* Made with the owner's uid as effective uid: root again, now that the
     * maps are written (the capabilities here are the creator's anyway).
     * A change of effective uid clears the parent-death signal: set it
     * again, and make sure sbx did not die before that. */
    if (owner &&
        (setresuid(0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || sbx_gone(fds[1])))
      _exit(SBX_EXIT_FAILED);
    *syncfd = fds[1];
    return 0;
  }
  close(fds[1]);
  if (self_map)
    sbx_debug("uid_map/gid_map of %d: 0 -> %u/%u (single id, setgroups denied; written by it)",
              (int)pid, (unsigned)map->uid, (unsigned)map->gid);
  else if (!sbx_idmap_apply(map, pid, err) || (before_go && !before_go(pid, data, err)) ||
           !sbx_sync_send_ok(fds[0], "go")) {
    if (err && !*err)
      sbx_fail(err, SBX_ERROR_FAILED, "user namespace setup failed");
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    close(fds[0]);
    return -1;
  }
  *syncfd = fds[0];
  return pid;
}

pid_t sbx_userns_clone_full(const SbxIdMap *map, unsigned long flags, SbxBeforeGo before_go,
                            gpointer data, int *syncfd, GError **err)
{
  return userns_clone(map, flags, 0, 0, before_go, data, syncfd, err);
}

pid_t sbx_userns_clone_owned(const SbxIdMap *map, uid_t owner, guint64 nproc, unsigned long flags,
                             SbxBeforeGo before_go, gpointer data, int *syncfd, GError **err)
{
  g_return_val_if_fail(owner > 0 && map->nested, -1);
  return userns_clone(map, flags, owner, nproc, before_go, data, syncfd, err);
}

/* Runs in the intermediate once the sandbox's maps are written, before its
 * init may go on. The intermediate leaves uid 0 of its namespace for uid 1
 * (real uid only: the effective uid, and with it the capabilities and the
 * parent-death signal, stay): uid 0 there then counts the sandbox's
 * processes and nothing else. Then sbx learns init's pid. */
static gboolean announce_init(pid_t init, gpointer sbx_fd, GError **err)
{
  if (setresuid(1, 0, 0) < 0)
    return sbx_fail_errno(err, "leave uid 0 of the intermediate namespace");
  g_autofree char *pid = g_strdup_printf("%d", (int)init);
  return sbx_sync_send_ok(*(int *)sbx_fd, pid) || sbx_fail_errno(err, "tell sbx init's pid");
}

/* The intermediate: set the limit, clone init into the sandbox's
 * namespaces, then stay as its parent until it exits. Returns only in init. */
static void nested_main(const SbxIdMap *map, unsigned long flags, guint64 nproc, int sbx_fd)
{
  g_autoptr(GError) err = NULL;
  /* Recorded by the kernel as the new namespace's rlimit_max when it is
   * created (create_user_ns: enforced_nproc_rlimit). Never above the hard
   * limit we inherited: CAP_SYS_RESOURCE in our namespace does not count
   * for raising it (do_prlimit checks the initial namespace). */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NPROC, &rl) < 0)
    rl.rlim_max = RLIM_INFINITY;
  rl.rlim_cur = rl.rlim_max = MIN((rlim_t)nproc, rl.rlim_max);
  SbxIdMap inner = *map;
  inner.nested = TRUE;
  int init_fd = -1;
  pid_t init = -1;
  sbx_debug("intermediate user namespace: RLIMIT_NPROC %" G_GUINT64_FORMAT
            " for all the sandbox's uids together",
            (guint64)rl.rlim_cur);
  if (setrlimit(RLIMIT_NPROC, &rl) < 0)
    sbx_fail_errno(&err, "RLIMIT_NPROC");
  else
    init = sbx_userns_clone_full(&inner, flags, announce_init, &sbx_fd, &init_fd, &err);
  if (init == 0) {
    close(init_fd); /* init talks to sbx directly */
    return;
  }
  if (init < 0) {
    g_prefix_error(&err, "--pids-limit %" G_GUINT64_FORMAT ": ", (guint64)rl.rlim_cur);
    sbx_sync_send_error(sbx_fd, err);
    _exit(SBX_EXIT_FAILED);
  }
  sbx_proctitle_set("sbx-userns");
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  sbx_close_fds_from(3);
  sigset_t forwarded;
  sbx_pid_forwarded_signals(&forwarded);
  _exit(sbx_pid_init_loop(init, &forwarded));
}

pid_t sbx_userns_clone_nested(const SbxIdMap *map, int held, unsigned long flags, guint64 nproc,
                              SbxBeforeGo before_go, gpointer data, int *syncfd, pid_t *init,
                              GError **err)
{
  int fd = -1;
  pid_t outer = held >= 0 ? sbx_userns_clone_held(held, map, 0, before_go, data, &fd, err)
                          : sbx_userns_clone_full(map, 0, before_go, data, &fd, err);
  if (outer == 0) {
    nested_main(map, flags, nproc, fd);
    *syncfd = fd;
    return 0;
  }
  if (outer < 0)
    return -1;
  g_autofree char *msg = NULL;
  guint64 pid = 0;
  if (!sbx_sync_recv(fd, &msg, "sandbox setup", err) ||
      !g_ascii_string_to_unsigned(msg, 10, 2, G_MAXINT32, &pid, NULL)) {
    if (err && !*err)
      sbx_fail(err, SBX_ERROR_FAILED, "sandbox setup: no pid from the intermediate namespace");
    kill(outer, SIGKILL);
    while (waitpid(outer, NULL, 0) < 0 && errno == EINTR)
      ;
    close(fd);
    return -1;
  }
  *init = (pid_t)pid;
  *syncfd = fd;
  return outer;
}
