/* The spare sbx-net (net.h): the slirp network's start-up without its exec.
 *
 * sbx-net's exec, its five shared libraries and its confinement cost a
 * start ~5 ms of CPU on the CPU the sandbox's set-up uses. The end of a run
 * with the slirp network starts the next one ahead of time ("sbx-net
 * --spare"), and a start takes it instead of starting its own:
 *
 *   <state dir>/.net-spare.sock    the spare's listening socket (0700 dir)
 *   <state dir>/.net-spare.lock    flock held by the waiting spare: one at a time
 *
 * Taking is a rename of the socket to a name of our own (one start wins),
 * a connect that does not block, an unlink. Each end then checks the other:
 * before anything goes to it the peer must be our sbx-net (the executable
 * sbx would start) of our uid, in our network and PID namespaces, in a user
 * namespace of its own whose parent is ours, in our cgroup, at our nice
 * value and on our CPUs (a program in a sandbox that was given the state
 * directory as a volume is in none of those namespaces); it gets the run's
 * options as lines (the resolv.conf sbx read among them) with fds of our
 * PID, network and user namespaces, which must be the ones it kept from
 * before its confinement, else it leaves without a word. Once it answers
 * "taken" it gets --net-log's file (and stderr when debugging); from there
 * on it is a started sbx-net (the same messages, the same stop). Anything
 * short of that and the start spawns its own, as without a spare.
 * SBX_NET_SPARE=0 turns spares off. */
#include "sbx/net.h"
#include "sbx/netspare.h"
#include "sbx/sync.h"
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
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define SPARE_LOCK ".net-spare.lock"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

static gboolean same_file(const char *a, const char *b)
{
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static gboolean same_contents(const char *a, const char *b)
{
  g_autofree char *ca = NULL, *cb = NULL;
  return g_file_get_contents(a, &ca, NULL, NULL) && g_file_get_contents(b, &cb, NULL, NULL) &&
         strcmp(ca, cb) == 0;
}

/* Is PID (the peer, held by PIDFD) our sbx-net, outside every sandbox, and
 * as this run would start it (the same cgroup, the same nice value)? */
static gboolean peer_is_ours(pid_t pid, int pidfd, const char *netd, GError **err)
{
  static const char *const ns[] = {"net", "pid"};
  char self[64], other[64];
  snprintf(other, sizeof other, "/proc/%d/exe", (int)pid);
  if (!same_file(other, netd))
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper spare %d: not %s", (int)pid, netd);
  for (unsigned i = 0; i < G_N_ELEMENTS(ns); i++) {
    snprintf(self, sizeof self, "/proc/self/ns/%s", ns[i]);
    snprintf(other, sizeof other, "/proc/%d/ns/%s", (int)pid, ns[i]);
    if (!same_file(self, other))
      return sbx_fail(err, SBX_ERROR_FAILED, "network helper spare %d: not in our %s namespace",
                      (int)pid, ns[i]);
  }
  /* Its own user namespace, made by itself (sbx-net's confinement) in ours:
   * its parent is our namespace. */
  snprintf(other, sizeof other, "/proc/%d/ns/user", (int)pid);
  sbx_autofd uns = open(other, O_RDONLY | O_CLOEXEC);
  sbx_autofd parent = uns < 0 ? -1 : ioctl(uns, NS_GET_PARENT);
  snprintf(other, sizeof other, "/proc/self/fd/%d", parent);
  if (parent < 0 || !same_file(other, "/proc/self/ns/user"))
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper spare %d: not in a namespace of ours",
                    (int)pid);
  /* Started by a run in another cgroup (another CI job's, a systemd
   * scope), at another nice value or on other CPUs: its work would be
   * counted there, or run otherwise. (We take none at another policy.) */
  cpu_set_t ours, its;
  if (sched_getaffinity(0, sizeof ours, &ours) < 0 ||
      sched_getaffinity(pid, sizeof its, &its) < 0 || !CPU_EQUAL(&ours, &its))
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper spare %d: started on other CPUs",
                    (int)pid);
  char cg[64];
  snprintf(cg, sizeof cg, "/proc/%d/cgroup", (int)pid);
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, (id_t)pid), e = errno, mine = getpriority(PRIO_PROCESS, 0);
  if (!same_contents("/proc/self/cgroup", cg) || e || nice != mine)
    return sbx_fail(err, SBX_ERROR_FAILED,
                    "network helper spare %d: started in another cgroup or at another nice value",
                    (int)pid);
  /* Still the process the connection came from (pid not reused meanwhile). */
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
    return sbx_fail_errno(err, "network helper spare %d", (int)pid);
  return TRUE;
}

int sbx_net_spare_connect(const char *dir, pid_t *pid, int *pidfd, GError **err)
{
  g_autofree char *path = g_build_filename(dir, SBX_NET_SPARE_SOCK, NULL);
  g_autofree char *mine = g_strdup_printf("%s/.net-spare.%d.taken", dir, (int)getpid());
  struct sockaddr_un a;
  if (!sbx_sync_address(mine, &a, err))
    return -1;
  if (rename(path, mine) < 0)
    return sbx_fail_errno(err, "network helper spare %s", path), -1;
  /* Not blocking: a listener whose queue is full (one planted there)
   * would hold connect() for as long as it likes. */
  sbx_autofd s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int r = s < 0 ? -1 : connect(s, (struct sockaddr *)&a, sizeof a);
  int e = errno;
  unlink(mine);
  if (r < 0 || fcntl(s, F_SETFL, 0) < 0)
    return sbx_fail_errnum(err, r < 0 ? e : errno, "network helper spare %s", path), -1;
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
    return sbx_fail_errno(err, "network helper spare: its credentials"), -1;
  /* Pid 0: a peer our PID namespace does not see (a parent's, a
   * sibling's), which is no spare of ours. */
  if (cr.uid != getuid() || cr.pid <= 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "network helper spare %d: uid %u, not ours", (int)cr.pid,
                    (unsigned)cr.uid),
           -1;
  /* The peer's own pidfd (Linux 6.5), else, only where the kernel has no
   * such option, one by its pid (the peer gone: no pidfd, no spare). */
  int got = -1;
  len = sizeof got;
  int fd = getsockopt(s, SOL_SOCKET, SO_PEERPIDFD, &got, &len) == 0 ? got
           : errno == ENOPROTOOPT ? (int)syscall(SYS_pidfd_open, cr.pid, 0)
                                  : -1;
  if (fd < 0)
    return sbx_fail_errno(err, "network helper spare %d", (int)cr.pid), -1;
  *pid = cr.pid;
  *pidfd = fd;
  return sbx_steal_fd(&s);
}

gboolean sbx_net_spare_claim(int s, pid_t pid, int pidfd, const char *netd, const char *options,
                             int log_fd, gboolean with_stderr, GError **err)
{
  int r, e;
  if (!peer_is_ours(pid, pidfd, netd, err))
    return FALSE;
  /* Our PID, network and user namespaces show the spare that we are a start
   * outside every sandbox. --net-log's file and stderr only once it has
   * answered: in a message it never reads (stopped, gone), they would stay
   * open, and whoever reads our stderr would wait for its end. */
  int ns[3] = {open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC),
               open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC),
               open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC)};
  g_autofree char *text =
      with_stderr ? g_strconcat(options, "\n--stderr", NULL) : g_strdup(options);
  gboolean sent = ns[0] >= 0 && ns[1] >= 0 && ns[2] >= 0 && sbx_sync_send_fds(s, text, ns, 3);
  e = errno;
  for (unsigned i = 0; i < 3; i++)
    if (ns[i] >= 0)
      close(ns[i]);
  if (!sent)
    return sbx_fail_errnum(err, e, "network helper spare %d: its options", (int)pid), FALSE;
  /* Its word that it has them: one that went away meanwhile (idle, its
   * socket gone) never accepted, and the start must not count on it. */
  struct pollfd p = {.fd = s, .events = POLLIN};
  g_autofree char *ack = NULL;
  do
    r = poll(&p, 1, 2000);
  while (r < 0 && errno == EINTR);
  if (r <= 0 || !sbx_sync_recv(s, &ack, "network helper spare", err) ||
      g_strcmp0(ack, "taken") != 0) {
    if (err && !*err)
      sbx_fail(err, SBX_ERROR_FAILED, "network helper spare %d: no answer", (int)pid);
    return FALSE;
  }
  int fds[2];
  unsigned nfds = 0;
  if (log_fd >= 0)
    fds[nfds++] = log_fd;
  if (with_stderr)
    fds[nfds++] = STDERR_FILENO;
  if (!sbx_sync_send_fds(s, "fds", fds, nfds))
    return sbx_fail_errno(err, "network helper spare %d: its files", (int)pid), FALSE;
  return TRUE;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPARE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(SPARE_ASAN)
#define SPARE_ASAN 1
#endif

/* What the spare's process needs up to its execve, in memory of its own. */
typedef struct {
  int hi[3];
  char *argv[4];
  char **envp;
  char *path;
} SpareExec;

/* In a CLONE_VM child on its own stack, beside a sbx that goes on to exit:
 * system calls only (no libc state, no allocation), every signal blocked
 * (sbx-net --spare unblocks them). */
static int spare_child(void *arg)
{
  const SpareExec *x = arg;
  static const int to[3] = {SBX_NETD_FD_SPARE_LISTEN, SBX_NETD_FD_SPARE_DIR,
                            SBX_NETD_FD_SPARE_LOCK};
  long null = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR, 0);
  if (syscall(SYS_setsid) < 0 || null < 0 || syscall(SYS_dup2, null, 0) < 0 ||
      syscall(SYS_dup2, null, 1) < 0 || syscall(SYS_dup2, null, 2) < 0)
    syscall(SYS_exit, 127);
  for (unsigned i = 0; i < 3; i++)
    if (syscall(SYS_dup2, x->hi[i], to[i]) < 0)
      syscall(SYS_exit, 127);
  /* close_range fails for no fd: nothing written to errno, sbx's own */
  syscall(SYS_close_range, 3, 3, 0);
  syscall(SYS_close_range, SBX_NETD_FD_SPARE_LOCK + 1, ~0U, 0);
  syscall(SYS_execve, x->path, x->argv, x->envp);
  syscall(SYS_exit, 127);
  return 127;
}

/* Copy the strings into BLOCK (at *used), or NULL when it is full. */
static char *block_copy(char *block, gsize size, gsize *used, const char *str)
{
  gsize n = strlen(str) + 1;
  if (*used + n > size)
    return NULL;
  char *out = memcpy(block + *used, str, n);
  *used += n;
  return out;
}

#define SPARE_STACK (64 * 1024)
#define SPARE_BLOCK (64 * 1024)

/* Not posix_spawn: a vfork-like spawn (and a fork's page-table copy alike)
 * holds sbx ~2 ms on this class of VM, on the way out of the run the user
 * waits for. A CLONE_VM child without CLONE_VFORK returns at once; sbx
 * exits while the child's execve is under way (the address space lives on
 * until the child's exec lets go of it). Everything the child reads is in
 * one mapping of its own, never unmapped by sbx. Under AddressSanitizer
 * (whose state the child would share) posix_spawn does it. Returns an
 * error number, or 0. */
static int spawn_spare(const char *netd, const char *id, int lsock, int dirfd, int lock, pid_t *pid)
{
  g_autofree char *spare = g_strdup_printf("--spare=%s", id);
  g_autofree char *level = g_strdup_printf("--log-level=%s", sbx_log_level_name());
  g_auto(GStrv) env = sbx_helper_environ(NULL);
  char *mem = mmap(NULL, SPARE_STACK + SPARE_BLOCK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (mem == MAP_FAILED)
    return errno;
  /* [stack | SpareExec, envp, strings] */
  char *block = mem + SPARE_STACK;
  SpareExec *x = (SpareExec *)block;
  gsize used = sizeof *x;
  guint nenv = g_strv_length(env);
  x->envp = (char **)(block + used);
  used += (nenv + 1) * sizeof(char *);
  gboolean fits = used < SPARE_BLOCK;
  for (guint i = 0; fits && i < nenv; i++)
    fits = (x->envp[i] = block_copy(block, SPARE_BLOCK, &used, env[i])) != NULL;
  if (fits)
    x->envp[nenv] = NULL;
  fits = fits && (x->path = block_copy(block, SPARE_BLOCK, &used, netd)) &&
         (x->argv[1] = block_copy(block, SPARE_BLOCK, &used, spare)) &&
         (x->argv[2] = block_copy(block, SPARE_BLOCK, &used, level));
  x->argv[0] = x->path;
  x->argv[3] = NULL;
  /* Above every target first: a source may sit on another's target. */
  x->hi[0] = fcntl(lsock, F_DUPFD_CLOEXEC, 10);
  x->hi[1] = fcntl(dirfd, F_DUPFD_CLOEXEC, 10);
  x->hi[2] = fcntl(lock, F_DUPFD_CLOEXEC, 10);
  int r = !fits ? E2BIG : x->hi[0] < 0 || x->hi[1] < 0 || x->hi[2] < 0 ? errno : 0;
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  /* SCHED_BATCH from the clone on (inherited): its start-up yields to
   * whatever the user does next. */
  struct sched_param prio = {0};
  gboolean batch =
      !r && sched_getscheduler(0) == SCHED_OTHER && sched_setscheduler(0, SCHED_BATCH, &prio) == 0;
  pid_t p = -1;
  if (!r) {
#ifdef SPARE_ASAN
    p = fork();
    if (p == 0)
      spare_child(x);
#else
    p = clone(spare_child, mem + SPARE_STACK, CLONE_VM | SIGCHLD, x);
#endif
    if (p < 0)
      r = errno;
  }
  if (batch)
    sched_setscheduler(0, SCHED_OTHER, &prio);
  sigprocmask(SIG_SETMASK, &old, NULL);
  /* Ours are closed at the child's exec (CLOEXEC); the child's are its own. */
  for (unsigned i = 0; i < 3; i++)
    if (x->hi[i] >= 0)
      close(x->hi[i]);
  if (p < 0)
    munmap(mem, SPARE_STACK + SPARE_BLOCK);
  /* else left mapped: the child may still be reading it (sbx exits next) */
  *pid = p;
  return r;
}

gboolean sbx_net_spare_start(const char *dir, const char *netd, GError **err)
{
  g_autofree char *lockpath = g_build_filename(dir, SPARE_LOCK, NULL);
  sbx_autofd lock = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (lock < 0)
    return sbx_fail_errno(err, "network helper spare: %s", lockpath);
  if (flock(lock, LOCK_EX | LOCK_NB) < 0)
    return TRUE; /* one is waiting, or being started */
  g_autofree char *name = g_strdup_printf(".net-spare.%d.tmp", (int)getpid());
  g_autofree char *tmp = g_build_filename(dir, name, NULL);
  struct sockaddr_un a;
  if (!sbx_sync_address(tmp, &a, err))
    return FALSE;
  unlink(tmp);
  sbx_autofd s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct stat st;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0 ||
      lstat(tmp, &st) < 0) {
    int e = errno;
    unlink(tmp);
    return sbx_fail_errnum(err, e, "network helper spare: socket %s", tmp);
  }
  sbx_autofd dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  g_autofree char *id = g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%s",
                                        (guint64)st.st_dev, (guint64)st.st_ino, name);
  pid_t pid = -1;
  int r = dirfd < 0 ? errno : spawn_spare(netd, id, s, dirfd, lock, &pid);
  /* It holds the lock from here on, and puts its socket in place itself
   * once it listens (SO_PEERCRED names who listened last). */
  if (r) {
    unlink(tmp);
    return sbx_fail_errnum(err, r, "network helper spare: start %s", netd);
  }
  sbx_debug("network helper spare %d started for the next run (%s)", (int)pid, tmp);
  return TRUE;
}

pid_t sbx_net_spare_find(const char *dir)
{
  g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
  const char *name;
  while (proc && (name = g_dir_read_name(proc))) {
    guint64 pid;
    if (!g_ascii_string_to_unsigned(name, 10, 1, G_MAXINT32, &pid, NULL))
      continue;
    g_autofree char *cmdline = g_strdup_printf("/proc/%s/cmdline", name);
    g_autofree char *fd5 = g_strdup_printf("/proc/%s/fd/%d", name, SBX_NETD_FD_SPARE_DIR);
    g_autofree char *argv = NULL;
    gsize len = 0;
    if (!g_file_get_contents(cmdline, &argv, &len, NULL) || len == 0 ||
        !g_str_has_suffix(argv, "/sbx-net") || strlen(argv) + 1 >= len ||
        !g_str_has_prefix(argv + strlen(argv) + 1, "--spare="))
      continue;
    g_autofree char *where = g_file_read_link(fd5, NULL);
    if (where && strcmp(where, dir) == 0)
      return (pid_t)pid;
  }
  return 0;
}
