/* The user's namespace holder: one process per user that keeps a user
 * namespace with the subuid/subgid range mapped, so that a start in range
 * mode joins it (setns) instead of paying two setuid execs of
 * newuidmap/newgidmap (podman's pause process does the same).
 *
 *   holder (sbx-userns-holder, pid P)     user namespace H: 0 -> uid, 1..N -> range
 *   <state dir>/.userns-holder.sock       SOCK_SEQPACKET, in the user's 0700 dir
 *
 * A start connects, checks SO_PEERCRED (the holder is this uid), gets H's fd
 * (SCM_RIGHTS), and a child of sbx joins H, checks H's maps are the ones
 * wanted, and clones the sandbox's own user namespace inside it (identity
 * map, written from H where it holds CAP_SETUID) as a child of sbx
 * (CLONE_PARENT). Every sandbox thus still has a user namespace of its own:
 * root in one has no capability over H or over another sandbox. The holder
 * answers only its own uid (SO_PEERCRED), and the kernel lets only the
 * namespace's owner (or root) setns into it.
 *
 * Self-healing: a socket nobody answers on, a holder of another uid or with
 * other maps is replaced (under a lock, so fifty starts at once make one);
 * any failure on this path makes the start fall back to newuidmap. The
 * holder exits after HOLDER_IDLE_MS without a start. */
#include "sbx/ns.h"
#include "sbx/security.h"
#include "sbx/state.h"
#include "sbx/sync.h"
#include "sbx/user.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

/* A leading dot: never a sandbox name. One holder per id mapping. */
#define HOLDER_PREFIX   ".userns-holder-"
#define HOLDER_IDLE_MS  (10 * 60 * 1000)
#define HOLDER_CHECK_MS (5 * 1000)

char *sbx_userns_holder_socket(const SbxIdMap *map, const char *dir)
{
  g_autofree char *key = sbx_idmap_key(map);
  g_autofree char *name = g_strconcat(HOLDER_PREFIX, key, ".sock", NULL);
  return g_build_filename(dir, name, NULL);
}

/* A holder's namespace is a child of ours (the host's, for sbx). A user
 * namespace of the user's with the same maps can also be a sandbox's own
 * (made by sbx inside the holder's with --pids-limit 0) or one that a
 * sandbox's root made; a sandbox that can write the state directory (a
 * volume of it) could offer one through the socket or the pid file, and
 * every later start would then nest under it. */
static gboolean ns_child_of_ours(int ns)
{
  sbx_autofd parent = ioctl(ns, NS_GET_PARENT);
  struct stat got, ours;
  return parent >= 0 && fstat(parent, &got) == 0 && stat("/proc/self/ns/user", &ours) == 0 &&
         got.st_dev == ours.st_dev && got.st_ino == ours.st_ino;
}

/* What any holder's namespace must be, however it was found: a user
 * namespace the user owns, a child of ours. */
static gboolean holder_ns_ok(int ns)
{
  uid_t owner = (uid_t)-1;
  return ns >= 0 && ioctl(ns, NS_GET_NSTYPE) == CLONE_NEWUSER &&
         ioctl(ns, NS_GET_OWNER_UID, &owner) == 0 && owner == getuid() && ns_child_of_ours(ns);
}

/* Connect and take the namespace's fd; *pid is the holder's. */
static int holder_ask(const char *path, pid_t *pid, GError **err)
{
  struct sockaddr_un a;
  if (!sbx_sync_address(path, &a, err))
    return -1;
  sbx_autofd s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0)
    return sbx_fail_errno(err, "socket"), -1;
  /* A listener that never answers (not a holder), or whose queue is full,
   * must not hang the start: connect waits on the send timeout. */
  struct timeval patience = {.tv_sec = 2};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
    return sbx_fail_errno(err, "connect %s", path), -1;
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
    return sbx_fail_errno(err, "SO_PEERCRED"), -1;
  if (cr.uid != getuid())
    return sbx_fail(err, SBX_ERROR_FAILED, "%s: answered by uid %u, not ours", path,
                    (unsigned)cr.uid),
           -1;
  int ns = -1;
  g_autofree char *limit = NULL;
  if (!sbx_sync_recv_fd(s, &limit, &ns, "user namespace holder", err))
    return -1;
  /* Every process of every sandbox made through the holder is charged,
   * in the initial namespace, against the RLIMIT_NPROC its namespace was
   * created with (create_user_ns): never below the one we run under. */
  guint64 theirs = 0;
  struct rlimit ours;
  if (!limit || !g_ascii_string_to_unsigned(limit, 10, 0, G_MAXUINT64, &theirs, NULL) ||
      (getrlimit(RLIMIT_NPROC, &ours) == 0 && theirs < (guint64)ours.rlim_cur)) {
    if (ns >= 0)
      close(ns);
    return sbx_fail(err, SBX_ERROR_FAILED, "holder %d: its process limit %s is below ours",
                    (int)cr.pid, limit ? limit : "(none)"),
           -1;
  }
  if (!holder_ns_ok(ns)) {
    if (ns >= 0)
      close(ns);
    return sbx_fail(err, SBX_ERROR_FAILED, "holder %d: not a user namespace of ours", (int)cr.pid),
           -1;
  }
  *pid = cr.pid;
  return ns;
}

/* Is `path` still the socket we listen on (not removed, not replaced)? */
static gboolean holder_in_place(const char *path, const struct stat *bound)
{
  struct stat st;
  return lstat(path, &st) == 0 && st.st_ino == bound->st_ino && st.st_dev == bound->st_dev;
}

/* <socket>.pid: "PID NS-INODE LIMIT SOCKET-INODE START-TIME", written by the sbx that started the
 * holder, so that a start can open the holder's namespace itself
 * (holder_direct) instead of asking over the socket: no wake-up of the
 * holder, often on the other CPU. Its mtime is the last start's. */
static char *pidfile_path(const char *sock)
{
  return g_strconcat(sock, ".pid", NULL);
}

/* Has the pid file's mtime changed since *seen (a start touched it)? By
 * change, not by age: no clock to trust (a future mtime, a skewed NFS). */
static gboolean pidfile_touched(const char *sock, struct timespec *seen)
{
  g_autofree char *pf = pidfile_path(sock);
  struct stat st;
  if (lstat(pf, &st) < 0 ||
      (st.st_mtim.tv_sec == seen->tv_sec && st.st_mtim.tv_nsec == seen->tv_nsec))
    return FALSE;
  *seen = st.st_mtim;
  return TRUE;
}

/* The holder: hand H's fd to whoever of our uid asks; exit when idle or when
 * its socket is gone or replaced (a state directory removed, a newer one). */
static G_GNUC_NORETURN void holder_main(int lsock, const char *path, const struct stat *bound)
{
  sbx_proctitle_set("sbx-userns-holder");
  /* What our namespace was created with (raised to the hard limit first). */
  struct rlimit rl;
  g_autofree char *limit = g_strdup_printf(
      "%" G_GUINT64_FORMAT, getrlimit(RLIMIT_NPROC, &rl) == 0 ? (guint64)rl.rlim_cur : 0);
  sbx_autofd ns = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
  if (ns < 0)
    _exit(1);
  gint64 last = g_get_monotonic_time();
  struct timespec seen = {0};
  for (;;) {
    struct pollfd p = {.fd = lsock, .events = POLLIN};
    int r = poll(&p, 1, HOLDER_CHECK_MS);
    if (r < 0 && errno != EINTR)
      _exit(1);
    if (r <= 0) {
      /* A start that found us by the pid file (holder_direct) touched it. */
      if (pidfile_touched(path, &seen))
        last = g_get_monotonic_time();
      if (!holder_in_place(path, bound))
        _exit(0);
      if (g_get_monotonic_time() - last > HOLDER_IDLE_MS * G_GINT64_CONSTANT(1000)) {
        g_autofree char *pf = pidfile_path(path);
        if (holder_in_place(path, bound)) /* still ours, not a successor's */
          unlink(pf);
        _exit(0); /* the next start makes a new one */
      }
      continue;
    }
    last = g_get_monotonic_time();
    sbx_autofd c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
      continue;
    /* Our uid, as this namespace sees it (0 here is the owner's uid). */
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == getuid())
      sbx_sync_send_fd(c, limit, ns);
  }
}

/* Detach from sbx: a session of its own, nothing of sbx's open, no signals
 * blocked, so that `out=$(sbx run ...)` does not wait for it. */
static void holder_detach(int lsock)
{
  setsid();
  if (chdir("/") < 0)
    _exit(1);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
    _exit(1);
  if (dup2(lsock, 3) < 0)
    _exit(1);
  sbx_close_fds_from(4);
  sigset_t none;
  sigemptyset(&none);
  for (int s = 1; s < NSIG; s++)
    signal(s, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, NULL);
  prctl(PR_SET_PDEATHSIG, 0);
}

/* A fresh program (sbx itself) instead of the copy of sbx that fork made:
 * the holder lives on for minutes after the run that started it, and must
 * keep neither the user's environment (tokens, keys: /proc/PID/environ
 * showed them, issue 9) nor anything that run had in memory. The
 * environment is the one every helper gets (sanitizer settings only).
 * Should the exec fail, the copy serves: a holder is still better than
 * none (every start would pay for newuidmap). */
static G_GNUC_NORETURN void holder_exec(const char *path, const struct stat *bound)
{
  if (fcntl(3, F_SETFD, 0) == 0) { /* dup2 onto itself kept FD_CLOEXEC */
    g_autofree char *where = g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT,
                                             (guint64)bound->st_dev, (guint64)bound->st_ino);
    char *argv[] = {"sbx-userns-holder", SBX_USERNS_HOLDER_ARG, (char *)path, where, NULL};
    g_auto(GStrv) env = sbx_helper_environ(NULL);
    execve("/proc/self/exe", argv, env);
  }
  holder_main(3, path, bound);
}

int sbx_userns_holder_main(const char *path_arg, const char *bound)
{
  /* A copy: the process title (holder_main) takes the whole of argv's
   * memory. Without it the holder checked an empty path, and so exited at
   * its first idle check, five seconds after the last start, not ten
   * minutes. */
  char *path = g_strdup(path_arg);
  /* Only as holder_exec starts it: fd 3 listening, the socket's identity. */
  int listening = 0;
  socklen_t len = sizeof listening;
  guint64 dev, ino;
  g_auto(GStrv) parts = g_strsplit(bound, ":", 2);
  if (getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening ||
      g_strv_length(parts) != 2 ||
      !g_ascii_string_to_unsigned(parts[0], 10, 0, G_MAXUINT64, &dev, NULL) ||
      !g_ascii_string_to_unsigned(parts[1], 10, 0, G_MAXUINT64, &ino, NULL)) {
    fprintf(stderr, "sbx: %s is started by sbx itself\n", SBX_USERNS_HOLDER_ARG);
    return SBX_EXIT_FAILED;
  }
  /* It hands out an fd and needs no capability: root of its namespace
   * would otherwise hold every capability over each sandbox's user
   * namespace (they are its children). Without them, no holder at all. */
  g_autoptr(GError) err = NULL;
  if (!sbx_caps_drop_bounding(0, &err) || !sbx_caps_set(0, FALSE, &err) ||
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    _exit(1);
  struct stat st = {.st_dev = (dev_t)dev, .st_ino = (ino_t)ino};
  holder_main(3, path, &st);
}

/* In the holder, after its maps: listen on tmp (SO_PEERCRED then names the
 * holder itself), tell sbx, serve. */
static G_GNUC_NORETURN void holder_start(const char *tmp, const char *path, int sync)
{
  char *go = NULL;
  if (!sbx_sync_recv(sync, &go, "sbx", NULL) || g_strcmp0(go, "go") != 0)
    _exit(1);
  sbx_userns_bound_inotify(); /* each sandbox's owner: a quarter of the user's */
  g_autoptr(GError) err = NULL;
  struct sockaddr_un a;
  if (!sbx_sync_address(tmp, &a, &err))
    _exit(1);
  unlink(tmp);
  int lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (lsock < 0 || bind(lsock, (struct sockaddr *)&a, sizeof a) < 0 || listen(lsock, 128) < 0) {
    sbx_fail_errno(&err, "user namespace holder: socket %s", tmp);
    sbx_sync_send_error(sync, err);
    _exit(1);
  }
  struct stat bound;
  if (lstat(tmp, &bound) < 0)
    _exit(1);
  sbx_sync_send_ok(sync, "ready");
  holder_detach(lsock);
  holder_exec(path, &bound);
}

/* Start a holder on a fresh socket and put it in place (rename over a
 * stale one). Called under the lock. */
static gboolean holder_spawn(const SbxIdMap *map, const char *path, GError **err)
{
  g_autofree char *tmp = g_strdup_printf("%s.%d", path, (int)getpid());
  int fds[2];
  if (!sbx_sync_pair(fds, err))
    return FALSE;
  /* A middle process makes the holder and exits: init (or a subreaper)
   * becomes its parent, not sbx. */
  pid_t mid = fork();
  if (mid == 0) {
    close(fds[0]);
    /* The namespace records the creator's RLIMIT_NPROC as a bound on all
     * it will hold (see holder_ask): the highest we may. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NPROC, &rl) == 0) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NPROC, &rl);
    }
    pid_t h = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
    if (h == 0)
      holder_start(tmp, path, fds[1]);
    g_autofree char *msg = g_strdup_printf("%d", (int)h);
    if (h < 0)
      sbx_sync_send_error(fds[1], NULL);
    else
      sbx_sync_send_ok(fds[1], msg);
    _exit(0);
  }
  close(fds[1]);
  sbx_autofd sync = fds[0];
  if (mid < 0)
    return sbx_fail_errno(err, "fork");
  g_autofree char *msg = NULL;
  guint64 h = 0;
  gboolean ok = sbx_sync_recv(sync, &msg, "user namespace holder", err) &&
                g_ascii_string_to_unsigned(msg, 10, 2, G_MAXINT32, &h, NULL);
  while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (!ok) {
    if (err && !*err)
      sbx_fail(err, SBX_ERROR_FAILED, "user namespace holder: no pid");
    return FALSE;
  }
  /* Until "go" it only waits: killed on failure, it never served. */
  if (!sbx_idmap_apply(map, (pid_t)h, err) || !sbx_sync_send_ok(sync, "go") ||
      !sbx_sync_recv(sync, NULL, "user namespace holder", err) || rename(tmp, path) < 0) {
    if (err && !*err)
      sbx_fail_errno(err, "user namespace holder %s", path);
    kill((pid_t)h, SIGKILL);
    unlink(tmp);
    return FALSE;
  }
  sbx_debug("user namespace holder %d started (%s)", (int)h, path);
  /* For holder_direct; without it, starts ask over the socket. */
  g_autofree char *nslink = g_strdup_printf("/proc/%d/ns/user", (int)h);
  struct stat ns, sock;
  struct rlimit rl;
  if (stat(nslink, &ns) == 0 && lstat(path, &sock) == 0 && getrlimit(RLIMIT_NPROC, &rl) == 0) {
    g_autofree char *pf = pidfile_path(path);
    g_autofree char *dir = g_path_get_dirname(pf);
    g_autofree char *base = g_path_get_basename(pf);
    g_autofree char *text = g_strdup_printf("%d %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
                                            " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
                                            (int)h, (guint64)ns.st_ino, (guint64)rl.rlim_max,
                                            (guint64)sock.st_ino, sbx_proc_start_time((pid_t)h));
    sbx_autofd dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || !sbx_write_file_atomic(dfd, base, text, strlen(text), 0600, NULL))
      sbx_debug("user namespace holder %d: no pid file %s", (int)h, pf);
  }
  return TRUE;
}

pid_t sbx_userns_holder_find(const SbxIdMap *map, const char *dir, GError **err)
{
  g_autofree char *path = sbx_userns_holder_socket(map, dir);
  pid_t pid = 0;
  int ns = holder_ask(path, &pid, err);
  if (ns < 0)
    return -1;
  close(ns);
  return pid;
}

/* The holder's namespace without asking it: by its pid file. The same
 * checks as holder_ask, and one more: the namespace /proc/PID/ns/user
 * opens is the one the holder had when it started (its inode), so a pid
 * reused since, or a file left behind, is noticed. enter_held then checks
 * its maps, as for an answer over the socket. */
static int holder_direct(const char *path, pid_t *pid, GError **err)
{
  g_autofree char *pf = pidfile_path(path);
  char buf[160];
  /* A regular file, read without blocking (a FIFO there must not hang us). */
  sbx_autofd fd = open(pf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat fst;
  ssize_t n =
      fd >= 0 && fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) ? read(fd, buf, sizeof buf - 1) : -1;
  if (n <= 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "%s: none", pf), -1;
  buf[n] = '\0';
  unsigned long long p = 0, ino = 0, limit = 0, sock_ino = 0, start = 0;
  struct rlimit ours;
  struct stat sock;
  if (sscanf(buf, "%llu %llu %llu %llu %llu", &p, &ino, &limit, &sock_ino, &start) != 5 || p < 2 ||
      p > G_MAXINT32 || start == 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "%s: not a pid file", pf), -1;
  /* Its socket still the one it listens on: a holder whose socket was
   * removed or replaced is on its way out (holder_in_place). */
  if (lstat(path, &sock) < 0 || (unsigned long long)sock.st_ino != sock_ino)
    return sbx_fail(err, SBX_ERROR_FAILED, "%s: its socket is gone or replaced", pf), -1;
  if (getrlimit(RLIMIT_NPROC, &ours) == 0 && limit < (unsigned long long)ours.rlim_cur)
    return sbx_fail(err, SBX_ERROR_FAILED, "holder %llu: its process limit %llu is below ours", p,
                    limit),
           -1;
  sbx_autofd pidfd = (int)syscall(SYS_pidfd_open, (pid_t)p, 0);
  g_autofree char *link = g_strdup_printf("/proc/%llu/ns/user", p);
  int ns = pidfd >= 0 ? open(link, O_RDONLY | O_CLOEXEC) : -1;
  struct stat st;
  /* The process the pidfd names, started when the holder did (a pid and a
   * namespace inode can both be reused since), alive after the open. */
  if (ns < 0 || fstat(ns, &st) < 0 || (unsigned long long)st.st_ino != ino || !holder_ns_ok(ns) ||
      sbx_proc_start_time((pid_t)p) != start ||
      syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
    if (ns >= 0)
      close(ns);
    return sbx_fail(err, SBX_ERROR_FAILED, "holder %llu (%s): gone or not ours", p, pf), -1;
  }
  futimens(fd, NULL); /* a start: the holder stays */
  *pid = (pid_t)p;
  return ns;
}

int sbx_userns_holder_get(const SbxIdMap *map, const char *dir, pid_t *holder, GError **err)
{
  g_autofree char *path = sbx_userns_holder_socket(map, dir);
  g_autoptr(GError) first = NULL;
  pid_t pid = 0;
  g_autoptr(GError) direct = NULL;
  int ns = holder_direct(path, &pid, &direct);
  if (ns >= 0) {
    sbx_debug("user namespace holder %d (%s): joining its namespace (by its pid file)", (int)pid,
              path);
    *holder = pid;
    return ns;
  }
  sbx_debug("user namespace holder: %s; asking it", direct->message);
  ns = holder_ask(path, &pid, &first);
  if (ns >= 0) {
    sbx_debug("user namespace holder %d (%s): joining its namespace", (int)pid, path);
    *holder = pid;
    return ns;
  }
  /* One starter at a time: the others wait here, then find it running. */
  g_autofree char *lock = g_strconcat(path, ".lock", NULL);
  sbx_autofd lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (lfd < 0)
    return sbx_fail_errno(err, "%s", lock), -1;
  while (flock(lfd, LOCK_EX) < 0)
    if (errno != EINTR)
      return sbx_fail_errno(err, "lock %s", lock), -1;
  g_autoptr(GError) again = NULL;
  ns = holder_ask(path, &pid, &again);
  if (ns >= 0) {
    sbx_debug("user namespace holder %d (%s): joining its namespace", (int)pid, path);
    *holder = pid;
    return ns;
  }
  sbx_debug("user namespace holder: %s; starting one", first->message);
  if (!holder_spawn(map, path, err))
    return -1;
  ns = holder_ask(path, &pid, err);
  if (ns >= 0) {
    sbx_debug("user namespace holder %d (%s): joining its namespace", (int)pid, path);
    *holder = pid;
  }
  return ns;
}

int sbx_userns_owner_claim(const SbxIdMap *map, const char *dir, uid_t *owner, GError **err)
{
  g_autofree char *sock = sbx_userns_holder_socket(map, dir);
  g_autofree char *path = g_strconcat(sock, ".owners", NULL);
  sbx_autofd fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return sbx_fail_errno(err, "%s", path), -1;
  /* Owners come from the top of the range (uid 0 is sbx's and the
   * holder's own); start where this pid points, to meet few taken ones. */
  guint64 span = MIN(map->subuid_count, 4096);
  for (guint64 i = 0; span > 0 && i < MIN(span, 64); i++) {
    guint64 uid = map->subuid_count - ((guint64)getpid() + i) % span;
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)uid, .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &l) == 0) {
      *owner = (uid_t)uid;
      int held = fd;
      fd = -1;
      return held;
    }
    if (errno != EAGAIN && errno != EACCES)
      return sbx_fail_errno(err, "lock %s", path), -1;
  }
  return sbx_fail(err, SBX_ERROR_FAILED, "%s: no free owner uid", path), -1;
}

/* Does /proc/WHO/FILE (after setns: self; H's map) say what the range says? */
static gboolean map_is(const char *who, const char *file, guint64 id, guint64 start, guint64 count)
{
  char buf[512]; /* two lines of three numbers; more is not the map we want */
  g_autofree char *path = g_strconcat("/proc/", who, "/", file, NULL);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close(fd);
  if (n <= 0 || n == (ssize_t)sizeof buf - 1)
    return FALSE;
  buf[n] = '\0';
  char *data = buf;
  guint64 want[2][3] = {{0, id, 1}, {1, start, count}};
  g_auto(GStrv) lines = g_strsplit(g_strstrip(data), "\n", -1);
  if (g_strv_length(lines) != 2)
    return FALSE;
  for (guint i = 0; i < 2; i++) {
    unsigned long long a, b, c;
    if (sscanf(lines[i], "%llu %llu %llu", &a, &b, &c) != 3 || a != want[i][0] || b != want[i][1] ||
        c != want[i][2])
      return FALSE;
  }
  return TRUE;
}

gboolean sbx_userns_enter_held(int ns, pid_t holder, const SbxIdMap *map, GError **err)
{
  /* The holder's maps are read from /proc/<holder>; the pidfd proves that
   * pid named the holder from before the reads to after them. */
  sbx_autofd pidfd = (int)syscall(SYS_pidfd_open, holder, 0);
  if (pidfd < 0)
    return sbx_fail_errno(err, "holder %d", (int)holder);
  g_autofree char *who = g_strdup_printf("%d", (int)holder);
  g_autofree char *link = g_strdup_printf("/proc/%d/ns/user", (int)holder);
  struct stat want, got;
  if (fstat(ns, &want) < 0 || stat(link, &got) < 0 || want.st_dev != got.st_dev ||
      want.st_ino != got.st_ino)
    return sbx_fail(err, SBX_ERROR_FAILED, "holder %d: its namespace is not the one it sent",
                    (int)holder);
  if (!map_is(who, "uid_map", map->uid, map->subuid_start, map->subuid_count) ||
      !map_is(who, "gid_map", map->gid, map->subgid_start, map->subgid_count))
    return sbx_fail(err, SBX_ERROR_FAILED, "holder %d: its namespace maps other ids (stale)",
                    (int)holder);
  /* Still that namespace after the reads (the pidfd pins the process, not
   * its namespace). */
  if (stat(link, &got) < 0 || want.st_dev != got.st_dev || want.st_ino != got.st_ino)
    return sbx_fail(err, SBX_ERROR_FAILED, "holder %d: its namespace changed", (int)holder);
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
    return sbx_fail_errno(err, "holder %d", (int)holder);
  /* EINVAL when sbx has threads: then through a joiner, as before. */
  if (setns(ns, CLONE_NEWUSER) < 0)
    return sbx_fail_errno(err, "join the holder's user namespace");
  return TRUE;
}

/* The child of sbx joins H, checks its maps, clones the sandbox's user
 * namespace (and flags) as sbx's child (CLONE_PARENT), writes its identity
 * map from H, tells sbx its pid and exits. */
pid_t sbx_userns_clone_held(int ns, const SbxIdMap *map, unsigned long flags, SbxBeforeGo before_go,
                            gpointer data, int *syncfd, GError **err)
{
  int fds[2];
  if (!sbx_sync_pair(fds, err))
    return -1;
  pid_t joiner = fork();
  if (joiner == 0) {
    close(fds[0]);
    g_autoptr(GError) e = NULL;
    if (setns(ns, CLONE_NEWUSER) < 0) {
      sbx_fail_errno(&e, "join the holder's user namespace");
      sbx_sync_send_error(fds[1], e);
      _exit(1);
    }
    if (!map_is("self", "uid_map", map->uid, map->subuid_start, map->subuid_count) ||
        !map_is("self", "gid_map", map->gid, map->subgid_start, map->subgid_count)) {
      sbx_fail(&e, SBX_ERROR_FAILED, "the holder's namespace maps other ids (stale)");
      sbx_sync_send_error(fds[1], e);
      _exit(1);
    }
    /* CLONE_PARENT: the sandbox's first process is sbx's child, to wait for. */
    SbxSharedLimits shared;
    sbx_userns_lower_shared_limits(&shared);
    pid_t child = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_PARENT | flags | SIGCHLD, NULL,
                                 NULL, NULL, NULL);
    sbx_userns_restore_shared_limits(&shared);
    if (child == 0) {
      /* If sbx died before this, "go" never comes: EOF ends us (no
       * getppid check: in a new pid namespace it reads 0). */
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      char *go = NULL;
      if (!sbx_sync_recv(fds[1], &go, "sbx", NULL) || g_strcmp0(go, "go") != 0)
        _exit(SBX_EXIT_FAILED);
      g_free(go);
      *syncfd = fds[1];
      return 0;
    }
    SbxIdMap inner = *map;
    inner.nested = TRUE;
    g_autofree char *pid = g_strdup_printf("%d", (int)child);
    if (child < 0)
      sbx_fail_errno(&e, "clone");
    else if (!sbx_idmap_apply(&inner, child, &e))
      kill(child, SIGKILL);
    if (e)
      sbx_sync_send_error(fds[1], e);
    else
      sbx_sync_send_ok(fds[1], pid);
    _exit(e ? 1 : 0);
  }
  close(fds[1]);
  if (joiner < 0) {
    close(fds[0]);
    return sbx_fail_errno(err, "fork"), -1;
  }
  g_autofree char *msg = NULL;
  guint64 child = 0;
  gboolean ok = sbx_sync_recv(fds[0], &msg, "user namespace holder", err) &&
                g_ascii_string_to_unsigned(msg, 10, 2, G_MAXINT32, &child, NULL);
  while (waitpid(joiner, NULL, 0) < 0 && errno == EINTR)
    ;
  if (!ok) {
    if (err && !*err)
      sbx_fail(err, SBX_ERROR_FAILED, "user namespace holder: no pid");
    close(fds[0]);
    return -1;
  }
  if ((before_go && !before_go((pid_t)child, data, err)) || !sbx_sync_send_ok(fds[0], "go")) {
    if (err && !*err)
      sbx_fail(err, SBX_ERROR_FAILED, "user namespace setup failed");
    kill((pid_t)child, SIGKILL);
    while (waitpid((pid_t)child, NULL, 0) < 0 && errno == EINTR)
      ;
    close(fds[0]);
    return -1;
  }
  *syncfd = fds[0];
  return (pid_t)child;
}
