/* --network slirp:tcp_relay=true: the sandbox's outbound TCP connections
 * relayed at the socket level, beside libslirp.
 *
 * libslirp is a TCP stack in user space without window scaling: every byte
 * the sandbox sends crosses the guest's TCP, tap0, libslirp's TCP and then a
 * host socket. The relay skips the two TCP stacks in the middle. The
 * program's process gets one more seccomp filter, which hands each connect(2)
 * to the relay (a user notification). For a TCP connection that the policy
 * lets libslirp make (the same judgement, sbx_net_policy_judge_tcp), the
 * relay connects a host socket itself, then connects the sandbox's own
 * socket to a listener of its own on 127.0.0.1 inside the sandbox's network
 * namespace, accepts it and copies bytes between the two with splice(2).
 *
 * The sandbox never holds a host socket: everything it has is of its own
 * network namespace, so a connect the relay lets the kernel carry out
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE: not TCP, not IPv4, refused by the
 * policy, a socket already connected, ...) is one the sandbox could make
 * without the filter, and goes through libslirp as without the relay. A
 * refused connection is refused, logged and counted by sbx-net, as always.
 *
 * The relay is a process forked from sbx after the clone: it must be in the
 * user namespace above the sandbox's, as its owner, to read the connect's
 * address (process_vm_readv) and take a duplicate of the socket
 * (pidfd_getfd). It drops every capability of its own namespace (as the
 * owner of the sandbox's it still has them all there), sets no_new_privs,
 * closes all but its sockets and confines itself with a seccomp allowlist
 * before it reads anything of the sandbox's. */
#include "sbx/net.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/tcp.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for a thread, not only a leader */
#endif

/* The relay's fds once it is on its own. */
enum { FD_SANDBOX = 3, FD_CTL = 4, FD_LOG = 5 };

/* Connections relayed at once, and connects waiting for their host side:
 * past these, connects go through libslirp. */
#define MAX_CONNS   4096
#define MAX_PENDING 256
#define CHUNK       (256 * 1024)
/* How long the sandbox's socket may take to reach our listener (loopback:
 * microseconds, unless the program made it slow on purpose), and how long
 * a host connection waits for the sandbox's end to be accepted. */
#define LINK_TIMEOUT_US   (5 * G_USEC_PER_SEC)
#define ACCEPT_TIMEOUT_US (10 * G_USEC_PER_SEC)

typedef struct Conn Conn;

/* What an epoll event points at. */
typedef enum { EP_SANDBOX, EP_CTL, EP_LISTENER, EP_NOTIFY, EP_PENDING, EP_CONN } EpKind;
typedef struct {
  EpKind kind;
  void *ptr;
  int side; /* EP_CONN: 0 the sandbox's end, 1 the host's */
} Ep;

/* A connect being answered: first its host socket connects (fd host in
 * epoll), then, for a caller that blocks, the sandbox's socket connects to
 * our listener (linking: fd guest in epoll, a deadline). */
typedef struct {
  Ep ep;
  guint64 id; /* the notification's */
  int guest;  /* our duplicate of the sandbox's socket */
  int host;
  guint32 dst; /* as the sandbox asked, host order */
  guint16 port;
  int family; /* of the sandbox's socket */
  gboolean linking;
  guint64 key; /* linking: its Waiting entry */
  gint64 deadline;
  ino_t ino; /* the sandbox's socket (a connect restarted after a signal is the same one) */
} Pending;

/* A host connection waiting for the sandbox's end to be accepted, by the
 * address and port of the sandbox's socket. */
typedef struct {
  guint64 key; /* address << 16 | port */
  int host;
  gboolean connecting; /* the host socket is still connecting (non-blocking callers) */
  gint64 deadline;
} Waiting;

/* Direction d copies from fd[d] to fd[1 - d] through pipe[d]. */
struct Conn {
  Ep ep[2];
  gboolean dead; /* closed; freed after the epoll batch that may name it */
  int fd[2];     /* 0: the accepted end in the sandbox's namespace, 1: the host's */
  int pipe[2][2];
  gsize queued[2];
  gsize cap[2]; /* the pipes' sizes */
  gboolean eof[2], shut[2];
  guint32 events[2];   /* what epoll watches; 0: the fd is not in it */
  gboolean connecting; /* the host side is still connecting: nothing moves yet */
};

typedef struct {
  SbxNetPolicy policy;
  SbxNetLog log;
  int epfd;
  int listener, notify;
  struct sockaddr_in listen_addr;
  Ep ep_sandbox, ep_ctl, ep_listener, ep_notify;
  struct seccomp_notif *req;
  struct seccomp_notif_resp *resp;
  GHashTable *accepting; /* &Waiting.key -> Waiting */
  GPtrArray *linking;    /* Pending being linked (their deadlines) */
  int spare;             /* an fd given up to refuse a connection when out of them */
  gboolean listener_off; /* out of fds: the listener is out of epoll for now */
  GHashTable *inflight;  /* socket inode -> Pending (blocking callers) */
  guint max_conns;       /* MAX_CONNS, or fewer if the fds run out first */
  GPtrArray *dead;       /* Conn closed in this batch */
  guint conns, pending;
  SbxNetStats stats;
} Relay;

static void on_alarm(int sig)
{
}

static int pidfd_open(pid_t pid, unsigned int flags)
{
  return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int pidfd_getfd(int pidfd, int fd)
{
  return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

static void ep_set(Relay *r, int fd, Ep *ep, guint32 events, int op)
{
  struct epoll_event ev = {.events = events, .data.ptr = ep};
  if (epoll_ctl(r->epfd, op, fd, &ev) < 0)
    sbx_debug("relay: epoll_ctl: %s", sbx_strerror(errno));
}

/* ---- the answer to a connect ---- */

static void respond(Relay *r, guint64 id, int error, gboolean cont)
{
  memset(r->resp, 0, sizeof *r->resp);
  r->resp->id = id;
  r->resp->error = cont ? 0 : -error;
  r->resp->val = 0;
  r->resp->flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
  int e = seccomp_notify_respond(r->notify, r->resp);
  if (e < 0) /* the caller is gone (killed, or a signal ended its connect) */
    sbx_debug("relay: answer connect: %s", sbx_strerror(-e));
}

/* An address of either family, as the sandbox gave it or a socket has it. */
typedef union {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} Addr;

/* A TCP socket of family (AF_INET, or AF_INET6 that takes IPv4-mapped
 * addresses) that was never connected. */
static gboolean is_tcp(int fd, int family)
{
  int v;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 || v != family)
    return FALSE;
  len = sizeof v;
  if (family == AF_INET6 && (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) < 0 || v != 0))
    return FALSE;
  len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM)
    return FALSE;
  len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0 || v != IPPROTO_TCP)
    return FALSE;
  /* Only a socket that was never connected: anything else the kernel answers. */
  struct tcp_info ti;
  len = sizeof ti;
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_CLOSE &&
         getpeername(fd, &(Addr){0}.sa, &(socklen_t){sizeof(Addr)}) < 0 && errno == ENOTCONN;
}

/* Where the host side connects for dst (host order), or 0: not relayed.
 * libslirp's own addresses and the sandbox's own are its business. */
static guint32 host_address(const Relay *r, guint32 dst)
{
  if (dst == SBX_NET_GATEWAY_ADDR)
    return r->policy.host_loopback ? INADDR_LOOPBACK : 0;
  if ((dst & 0xffffff00u) == (SBX_NET_GATEWAY_ADDR & 0xffffff00u))
    return 0; /* 10.0.2.0/24: the resolver, the sandbox itself, nothing */
  if ((dst >> 24) == 0 || (dst >> 24) == 127 || dst >= 0xe0000000u)
    return 0; /* "this host", the sandbox's loopback, multicast, broadcast */
  return dst;
}

static void log_flow(Relay *r, guint32 dst, guint16 port, guint16 sport)
{
  SbxFrameInfo info = {
      .new_flow = TRUE, .proto = IPPROTO_TCP, .dst = dst, .sport = sport, .dport = port};
  sbx_netlog_frame(&r->log, &info);
}

/* An IPv4 address and port (host order) from a or its IPv4-mapped IPv6
 * address; FALSE for anything else. */
static gboolean addr_v4(const Addr *a, guint32 *dst, guint16 *port)
{
  if (a->sa.sa_family == AF_INET) {
    *dst = ntohl(a->in.sin_addr.s_addr);
    *port = ntohs(a->in.sin_port);
    return TRUE;
  }
  if (a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
    guint32 v;
    memcpy(&v, &a->in6.sin6_addr.s6_addr[12], sizeof v);
    *dst = ntohl(v);
    *port = ntohs(a->in6.sin6_port);
    return TRUE;
  }
  return FALSE;
}

/* Read the connect's address: IPv4, or IPv4-mapped on an IPv6 socket
 * (Java's and others' default); FALSE: not one to relay. */
static gboolean read_address(const struct seccomp_notif *req, int *family, guint32 *dst,
                             guint16 *port)
{
  Addr a = {0};
  gsize want = req->data.args[2] >= sizeof a.in6  ? sizeof a.in6
               : req->data.args[2] >= sizeof a.in ? sizeof a.in
                                                  : 0;
  struct iovec local = {.iov_base = &a, .iov_len = want};
  struct iovec remote = {.iov_base = (void *)(uintptr_t)req->data.args[1], .iov_len = want};
  if (!want || process_vm_readv((pid_t)req->pid, &local, 1, &remote, 1, 0) != (ssize_t)want)
    return FALSE;
  if (a.sa.sa_family == AF_INET6 && want < sizeof a.in6)
    return FALSE;
  *family = a.sa.sa_family;
  return addr_v4(&a, dst, port);
}

static int guest_connect(Relay *r, int guest, int family, guint64 *key, guint16 *sport);
static void waiting_add(Relay *r, guint64 key, int host, gboolean connecting);

static void on_connect(Relay *r, const struct seccomp_notif *req)
{
  int family = 0;
  guint32 dst = 0;
  guint16 port = 0;
  if (req->data.nr != SCMP_SYS(connect) || req->data.arch != seccomp_arch_native() ||
      !read_address(req, &family, &dst, &port)) {
    respond(r, req->id, 0, TRUE);
    return;
  }
  guint32 host = host_address(r, dst);
  /* Refused: libslirp refuses it as always (sbx-net logs and counts). */
  if (!host || port == 0 || sbx_net_policy_judge_tcp(&r->policy, dst, port) ||
      r->pending >= MAX_PENDING || g_hash_table_size(r->accepting) >= MAX_PENDING ||
      r->conns >= r->max_conns) {
    respond(r, req->id, 0, TRUE);
    return;
  }
  /* req->pid is the calling thread's id: a pidfd for it needs PIDFD_THREAD
   * unless it is the leader. */
  sbx_autofd pidfd = pidfd_open((pid_t)req->pid, PIDFD_THREAD);
  if (pidfd < 0 && errno == EINVAL)
    pidfd = pidfd_open((pid_t)req->pid, 0);
  sbx_autofd guest = pidfd < 0 ? -1 : pidfd_getfd(pidfd, (int)req->data.args[0]);
  /* The fd is the caller's only if the notification is still live after we
   * took it (the pid could have been reused before pidfd_open). */
  if (guest < 0 || seccomp_notify_id_valid(r->notify, req->id) < 0 || !is_tcp(guest, family)) {
    respond(r, req->id, 0, TRUE);
    return;
  }
  /* The same socket's connect again (restarted after a signal): the one in
   * flight answers it. */
  struct stat st;
  Pending *again = fstat(guest, &st) == 0 ? g_hash_table_lookup(r->inflight, &st.st_ino) : NULL;
  if (again) {
    /* (Another thread's connect on the same socket, were it not a restart:
     * EALREADY, as the kernel answers it, so that nobody waits for ever.) */
    respond(r, again->id, EALREADY, FALSE);
    again->id = req->id;
    return;
  }
  sbx_autofd hfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (hfd < 0) { /* out of fds or memory: libslirp's way */
    respond(r, req->id, 0, TRUE);
    return;
  }
  int one = 1;
  setsockopt(hfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in to = {
      .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(host)};
  int hc = connect(hfd, (struct sockaddr *)&to, sizeof to);
  if (hc < 0 && errno != EINPROGRESS) {
    respond(r, req->id, errno, FALSE);
    return;
  }
  /* Often decided already (the host's loopback answers within the call):
   * then the answer is exact for every caller. */
  if (hc < 0) {
    int e = 0;
    struct tcp_info ti;
    socklen_t len = sizeof e, tlen = sizeof ti;
    if (getsockopt(hfd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e) {
      respond(r, req->id, e, FALSE);
      return;
    }
    if (getsockopt(hfd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == 0 && ti.tcpi_state == TCP_ESTABLISHED)
      hc = 0;
  }
  /* A non-blocking caller is answered at once, as the kernel would: its
   * socket reaches our listener now, and the bytes move once the host side
   * has connected (if that fails, the sandbox's end is reset). */
  int fl = fcntl(guest, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) {
    guint64 key;
    guint16 sport;
    int e = guest_connect(r, guest, family, &key, &sport);
    if (e && e != EINPROGRESS) {
      respond(r, req->id, e, FALSE);
      return;
    }
    waiting_add(r, key, sbx_steal_fd(&hfd), hc < 0);
    log_flow(r, dst, port, sport);
    r->stats.relayed++;
    respond(r, req->id, EINPROGRESS, FALSE);
    return;
  }
  Pending *p = g_new0(Pending, 1);
  *p = (Pending){.ep = {.kind = EP_PENDING},
                 .id = req->id,
                 .guest = sbx_steal_fd(&guest),
                 .host = sbx_steal_fd(&hfd),
                 .dst = dst,
                 .port = port,
                 .family = family,
                 .ino = st.st_ino};
  p->ep.ptr = p;
  r->pending++;
  g_hash_table_insert(r->inflight, &p->ino, p);
  ep_set(r, p->host, &p->ep, EPOLLOUT, EPOLL_CTL_ADD);
}

static void pending_free(Relay *r, Pending *p)
{
  if (p->linking)
    g_ptr_array_remove_fast(r->linking, p);
  g_hash_table_remove(r->inflight, &p->ino);
  r->pending--;
  if (p->guest >= 0)
    close(p->guest);
  if (p->host >= 0)
    close(p->host);
  g_free(p);
}

static void waiting_free(gpointer data)
{
  Waiting *w = data;
  if (w->host >= 0)
    close(w->host);
  g_free(w);
}

static guint64 sock_key(const Addr *a)
{
  guint32 v4 = 0;
  guint16 port = 0;
  addr_v4(a, &v4, &port);
  return (guint64)v4 << 16 | port;
}

/* Connect the sandbox's socket to our listener without ever blocking on
 * it: it is the sandbox's, which may have made that connect slow on purpose
 * (IP options, TCP_SYNCNT). Its O_NONBLOCK is set for the call; another
 * thread of the sandbox could clear it meanwhile, so a 50 ms timer bounds
 * the call too (SIGALRM without SA_RESTART: EINTR, still in progress).
 * 0 or EINPROGRESS with the socket's key and port, or the error. */
static int guest_connect(Relay *r, int guest, int family, guint64 *key, guint16 *sport)
{
  int fl = fcntl(guest, F_GETFL);
  gboolean nonblock = fl >= 0 && (fl & O_NONBLOCK);
  if (fl >= 0 && !nonblock)
    fcntl(guest, F_SETFL, fl | O_NONBLOCK);
  /* An IPv6 socket reaches the listener by its IPv4-mapped address. */
  Addr to = {.in = r->listen_addr};
  socklen_t tolen = sizeof to.in;
  if (family == AF_INET6) {
    to.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = r->listen_addr.sin_port};
    to.in6.sin6_addr.s6_addr[10] = to.in6.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&to.in6.sin6_addr.s6_addr[12], &r->listen_addr.sin_addr, 4);
    tolen = sizeof to.in6;
  }
  struct itimerval bound = {.it_value = {.tv_usec = 50000}}, off = {{0}};
  setitimer(ITIMER_REAL, &bound, NULL);
  int c = connect(guest, &to.sa, tolen);
  int e = c < 0 ? (errno == EINTR ? EINPROGRESS : errno) : 0;
  setitimer(ITIMER_REAL, &off, NULL);
  if (fl >= 0 && !nonblock)
    fcntl(guest, F_SETFL, fl);
  Addr self = {0};
  socklen_t slen = sizeof self;
  guint32 self4;
  if (e && e != EINPROGRESS)
    return e;
  if (getsockname(guest, &self.sa, &slen) < 0 || !addr_v4(&self, &self4, sport))
    return errno ? errno : EINVAL;
  *key = sock_key(&self);
  return e;
}

static void waiting_add(Relay *r, guint64 key, int host, gboolean connecting)
{
  Waiting *w = g_new0(Waiting, 1);
  w->key = key;
  w->host = host;
  w->connecting = connecting;
  w->deadline = g_get_monotonic_time() + ACCEPT_TIMEOUT_US;
  g_hash_table_replace(r->accepting, &w->key, w);
}

/* A blocking caller's host side is connected: link its socket, and answer
 * once that is done. */
static void link_guest(Relay *r, Pending *p)
{
  guint64 key = 0;
  guint16 sport = 0;
  int e = guest_connect(r, p->guest, p->family, &key, &sport);
  if (e && e != EINPROGRESS) {
    respond(r, p->id, e, FALSE);
    pending_free(r, p);
    return;
  }
  waiting_add(r, key, p->host, FALSE);
  p->host = -1;
  log_flow(r, p->dst, p->port, sport);
  r->stats.relayed++;
  if (e == 0) {
    respond(r, p->id, 0, FALSE);
    pending_free(r, p);
    return;
  }
  p->linking = TRUE;
  p->key = key;
  p->deadline = g_get_monotonic_time() + LINK_TIMEOUT_US;
  g_ptr_array_add(r->linking, p);
  ep_set(r, p->guest, &p->ep, EPOLLOUT, EPOLL_CTL_ADD);
}

static void link_done(Relay *r, Pending *p, int e)
{
  epoll_ctl(r->epfd, EPOLL_CTL_DEL, p->guest, NULL);
  if (e) /* its host connection goes too */
    g_hash_table_remove(r->accepting, &p->key);
  respond(r, p->id, e, FALSE);
  pending_free(r, p);
}

static void on_pending(Relay *r, Pending *p)
{
  int e = 0;
  socklen_t len = sizeof e;
  int fd = p->linking ? p->guest : p->host;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
    e = errno;
  if (p->linking) {
    link_done(r, p, e);
    return;
  }
  epoll_ctl(r->epfd, EPOLL_CTL_DEL, p->host, NULL);
  if (e) {
    respond(r, p->id, e, FALSE);
    pending_free(r, p);
    return;
  }
  link_guest(r, p);
}

/* Deadlines: a link that does not finish fails with ETIMEDOUT; a host
 * connection whose sandbox end never arrived is closed. */
static void sweep(Relay *r)
{
  gint64 now = g_get_monotonic_time();
  for (guint i = r->linking->len; i-- > 0;) {
    Pending *p = g_ptr_array_index(r->linking, i);
    if (p->deadline <= now)
      link_done(r, p, ETIMEDOUT);
  }
  /* fds free again: the spare back, then the listener */
  if (r->listener_off && (r->spare >= 0 || (r->spare = dup(STDIN_FILENO)) >= 0)) {
    r->listener_off = FALSE;
    ep_set(r, r->listener, &r->ep_listener, EPOLLIN, EPOLL_CTL_ADD);
  }
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, r->accepting);
  while (g_hash_table_iter_next(&it, NULL, &v))
    if (((Waiting *)v)->deadline <= now)
      g_hash_table_iter_remove(&it);
}

/* ---- relaying ---- */

static void conn_free(Relay *r, Conn *c, gboolean reset)
{
  for (int i = 0; i < 2; i++) {
    if (reset) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd[i]);
    if (c->pipe[i][0] >= 0)
      close(c->pipe[i][0]);
    if (c->pipe[i][1] >= 0)
      close(c->pipe[i][1]);
  }
  r->conns--;
  c->dead = TRUE;
  g_ptr_array_add(r->dead, c);
}

/* Move what there is in direction d; FALSE: the connection failed. A read
 * shorter than asked for ends it (epoll says when there is more): no
 * call that would only say EAGAIN. */
static gboolean pump(Relay *r, Conn *c, int d)
{
  int src = c->fd[d], dst = c->fd[1 - d];
  gboolean more = TRUE;
  for (;;) {
    if (c->queued[d] > 0) {
      ssize_t n =
          splice(c->pipe[d][0], NULL, dst, NULL, c->queued[d], SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        c->queued[d] -= (gsize)n;
        if (d == 0)
          r->stats.relayed_tx_bytes += (guint64)n;
        else
          r->stats.relayed_rx_bytes += (guint64)n;
        continue;
      }
      return n < 0 && errno == EAGAIN;
    }
    if (c->eof[d]) {
      if (!c->shut[d]) {
        shutdown(dst, SHUT_WR);
        c->shut[d] = TRUE;
      }
      return TRUE;
    }
    if (!more)
      return TRUE;
    ssize_t n =
        splice(src, NULL, c->pipe[d][1], NULL, c->cap[d], SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      c->queued[d] = (gsize)n;
      more = (gsize)n == c->cap[d];
    } else if (n == 0)
      c->eof[d] = TRUE;
    else
      return errno == EAGAIN;
  }
}

/* What each end waits for; an fd with nothing to wait for leaves epoll
 * (it would report a hang-up for ever). */
static void conn_update(Relay *r, Conn *c)
{
  for (int i = 0; i < 2; i++) {
    guint32 want = 0;
    if (c->connecting)
      want = i == 1 ? EPOLLOUT : 0;
    else {
      if (c->queued[i] == 0 && !c->eof[i])
        want |= EPOLLIN;
      if (c->queued[1 - i] > 0)
        want |= EPOLLOUT;
    }
    if (want == c->events[i])
      continue;
    if (want == 0)
      epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd[i], NULL);
    else
      ep_set(r, c->fd[i], &c->ep[i], want, c->events[i] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
    c->events[i] = want;
  }
}

static void on_conn(Relay *r, Conn *c, int side, guint32 events)
{
  if (c->dead)
    return;
  int e = 0;
  socklen_t len = sizeof e;
  if (c->connecting) { /* side 1: the host's connect is done, or failed */
    if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e) {
      conn_free(r, c, TRUE);
      return;
    }
    c->connecting = FALSE;
    conn_update(r, c);
    return;
  }
  /* A reset or an error: the connection is over (whatever is queued). */
  if (events & EPOLLERR) {
    conn_free(r, c, TRUE);
    return;
  }
  /* Readable or hung up: its direction; writable: the other one. */
  gboolean in = (events & (EPOLLIN | EPOLLHUP)) != 0, out = (events & (EPOLLOUT | EPOLLHUP)) != 0;
  if ((in && !pump(r, c, side)) || (out && !pump(r, c, 1 - side))) {
    conn_free(r, c, TRUE);
    return;
  }
  if (c->shut[0] && c->shut[1]) {
    conn_free(r, c, FALSE);
    return;
  }
  /* Hung up with bytes still to write to it: they cannot go. */
  if ((events & EPOLLHUP) && c->queued[1 - side] > 0) {
    conn_free(r, c, TRUE);
    return;
  }
  conn_update(r, c);
}

static void conn_new(Relay *r, int guest, int host, gboolean connecting)
{
  Conn *c = g_new0(Conn, 1);
  c->fd[0] = guest;
  c->fd[1] = host;
  c->connecting = connecting;
  c->pipe[0][0] = c->pipe[0][1] = c->pipe[1][0] = c->pipe[1][1] = -1;
  r->conns++;
  for (int d = 0; d < 2; d++) {
    if (pipe2(c->pipe[d], O_NONBLOCK | O_CLOEXEC) < 0) {
      conn_free(r, c, TRUE);
      return;
    }
    int cap = fcntl(c->pipe[d][1], F_SETPIPE_SZ, CHUNK);
    c->cap[d] = cap > 0 ? (gsize)cap : (gsize)fcntl(c->pipe[d][1], F_GETPIPE_SZ);
    c->ep[d] = (Ep){.kind = EP_CONN, .ptr = c, .side = d};
  }
  int one = 1;
  setsockopt(guest, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conn_update(r, c);
}

/* The sandbox's socket arrives: pair it with its host side by its address
 * and port. */
static void on_listener(Relay *r)
{
  for (;;) {
    Addr peer = {0};
    socklen_t len = sizeof peer;
    int fd = accept4(r->listener, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
      /* Out of fds: refuse this one with the spare rather than spin on it,
       * and leave the listener alone until fds are free again. */
      if (r->spare >= 0) {
        close(r->spare);
        int x = accept4(r->listener, NULL, NULL, SOCK_CLOEXEC);
        if (x >= 0) {
          struct linger lg = {.l_onoff = 1, .l_linger = 0};
          setsockopt(x, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
          close(x);
        }
        r->spare = dup(STDIN_FILENO);
      }
      if (r->spare < 0 && !r->listener_off) {
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->listener, NULL);
        r->listener_off = TRUE;
      }
      return;
    }
    if (fd < 0)
      return;
    guint64 key = sock_key(&peer);
    Waiting *w = peer.sa.sa_family == AF_INET ? g_hash_table_lookup(r->accepting, &key) : NULL;
    /* Only a socket we connected (the sandbox may connect to it too). */
    if (!w) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      close(fd);
      continue;
    }
    int host = w->host;
    gboolean connecting = w->connecting;
    w->host = -1;
    g_hash_table_remove(r->accepting, &key);
    conn_new(r, fd, host, connecting);
  }
}

/* ---- set-up ---- */

static void on_sandbox(Relay *r)
{
  g_autofree char *what = NULL;
  g_autoptr(GError) local = NULL;
  int fd = -1;
  if (!sbx_sync_recv_fd(FD_SANDBOX, &what, &fd, "sandbox", &local) || fd < 0) {
    /* the sandbox's set-up is over (or failed): nothing more comes */
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, FD_SANDBOX, NULL);
    close(FD_SANDBOX);
    return;
  }
  if (g_strcmp0(what, "listen") == 0 && r->listener < 0) {
    socklen_t len = sizeof r->listen_addr;
    if (getsockname(fd, (struct sockaddr *)&r->listen_addr, &len) < 0 ||
        r->listen_addr.sin_family != AF_INET) {
      close(fd);
      return;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK | O_RDWR);
    r->listener = fd;
    ep_set(r, fd, &r->ep_listener, EPOLLIN, EPOLL_CTL_ADD);
  } else if (g_strcmp0(what, "notify") == 0 && r->notify < 0 && r->listener >= 0) {
    r->notify = fd;
    ep_set(r, fd, &r->ep_notify, EPOLLIN, EPOLL_CTL_ADD);
  } else {
    close(fd);
  }
}

static void on_ctl(Relay *r)
{
  g_autofree char *req = NULL;
  g_autoptr(GError) local = NULL;
  if (!sbx_sync_recv(FD_CTL, &req, "sbx", &local))
    _exit(0); /* sbx is gone */
  if (g_strcmp0(req, "stats") == 0) {
    g_autofree char *text = sbx_net_stats_format(&r->stats);
    sbx_sync_send_ok(FD_CTL, text);
  }
}

static void on_notify(Relay *r, guint32 events)
{
  if (events & (EPOLLHUP | EPOLLERR)) {
    /* every process with the filter is gone */
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->notify, NULL);
    return;
  }
  memset(r->req, 0, sizeof *r->req);
  if (seccomp_notify_receive(r->notify, r->req) < 0)
    return; /* its caller went away meanwhile */
  on_connect(r, r->req);
}

static const char *const relay_allow[] = {"read",         "write",          "close",
                                          "epoll_wait",   "epoll_pwait",    "epoll_ctl",
                                          "accept4",      "connect",        "setsockopt",
                                          "getsockopt",   "getsockname",    "getpeername",
                                          "splice",       "pipe2",          "fcntl",
                                          "shutdown",     "recvmsg",        "sendmsg",
                                          "recvfrom",     "sendto",         "process_vm_readv",
                                          "pidfd_open",   "pidfd_getfd",    "brk",
                                          "mmap",         "munmap",         "mremap",
                                          "madvise",      "mprotect",       "clock_gettime",
                                          "gettimeofday", "exit",           "exit_group",
                                          "rt_sigreturn", "rt_sigprocmask", "getpid",
                                          "gettid",       "futex",          "restart_syscall",
                                          "getrandom",    "newfstatat",     "fstat",
                                          "writev",       "sched_yield",    "tgkill",
                                          "sigaltstack",  "rt_sigaction",   "prlimit64",
                                          "getuid",       "geteuid",        "dup",
                                          "getppid",      "setitimer",      NULL};

static gboolean confine(GError **err)
{
  /* No capability anywhere: the sandbox's namespace is ours as its owner. */
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct data[2] = {{0}};
  if (syscall(SYS_capset, &hdr, data) < 0)
    return sbx_fail_errno(err, "relay: drop capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sbx_fail_errno(err, "relay: no_new_privs");
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx)
    return sbx_fail(err, SBX_ERROR_FAILED, "relay: seccomp_init");
  for (const char *const *n = relay_allow; *n; n++) {
    int nr = seccomp_syscall_resolve_name(*n);
    if (nr != __NR_SCMP_ERROR)
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  /* Host sockets of IPv4 only; the notification's ioctls only. */
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                   SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_INET));
  static const guint64 ioctls[] = {SECCOMP_IOCTL_NOTIF_RECV, SECCOMP_IOCTL_NOTIF_SEND,
                                   SECCOMP_IOCTL_NOTIF_ID_VALID};
  for (guint i = 0; i < G_N_ELEMENTS(ioctls); i++)
    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]));
  static const char *const hot[] = {"splice", "epoll_wait", "epoll_ctl"};
  for (guint i = 0; i < G_N_ELEMENTS(hot); i++)
    seccomp_syscall_priority(ctx, seccomp_syscall_resolve_name(hot[i]), (uint8_t)(255 - i));
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  int rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc < 0)
    return sbx_fail_errnum(err, -rc, "relay: load its seccomp filter");
  return TRUE;
}

static gboolean setup(Relay *r, const SbxRelaySpec *s, GError **err)
{
  r->listener = r->notify = -1;
  if (!sbx_net_policy_init(&r->policy, s->allow, s->host_loopback, s->refuse_host_addresses, err))
    return FALSE;
  sbx_netlog_init(&r->log, s->log_fd >= 0 ? FD_LOG : -1);
  r->accepting = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, waiting_free);
  r->linking = g_ptr_array_new();
  r->inflight = g_hash_table_new(g_int64_hash, g_int64_equal);
  /* guest_connect's bound: a SIGALRM that interrupts, and nothing else */
  struct sigaction alarm = {.sa_handler = on_alarm};
  sigaction(SIGALRM, &alarm, NULL);
  r->dead = g_ptr_array_new_with_free_func(g_free);
  /* libseccomp learns what the kernel supports here, not under the filter. */
  int e = seccomp_notify_alloc(&r->req, &r->resp);
  if (e < 0)
    return sbx_fail_errnum(err, -e, "relay: seccomp notifications");
  if ((r->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
    return sbx_fail_errno(err, "relay: epoll");
  r->ep_sandbox.kind = EP_SANDBOX;
  r->ep_ctl.kind = EP_CTL;
  r->ep_listener.kind = EP_LISTENER;
  r->ep_notify.kind = EP_NOTIFY;
  ep_set(r, FD_SANDBOX, &r->ep_sandbox, EPOLLIN, EPOLL_CTL_ADD);
  ep_set(r, FD_CTL, &r->ep_ctl, EPOLLIN, EPOLL_CTL_ADD);
  /* The sandbox's namespace's owner (--pids-limit's uid): no capability
   * needed to read its processes' memory and fds. */
  if (s->owner > 0 && setresuid(s->owner, s->owner, s->owner) < 0)
    return sbx_fail_errno(err, "relay: become uid %u", (unsigned)s->owner);
  /* A change of uid clears the parent-death signal: again, and sbx may have
   * died before it was set. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != s->parent)
    return sbx_fail(err, SBX_ERROR_FAILED, "relay: sbx is gone");
  /* Six fds a connection: as many as the hard limit allows. */
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  /* Six fds a connection and a reserve: past that, connects go through
   * libslirp before the relay runs out. */
  r->max_conns = MAX_CONNS;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (rlim_t)MAX_CONNS * 6 + 64)
    r->max_conns = nofile.rlim_cur > 64 + 6 ? (guint)((nofile.rlim_cur - 64) / 6) : 1;
  return confine(err);
}

static G_GNUC_NORETURN void relay_main(const SbxRelaySpec *s)
{
  Relay r = {0};
  g_autoptr(GError) err = NULL;
  if (!setup(&r, s, &err)) {
    sbx_sync_send_error(FD_CTL, err);
    _exit(SBX_EXIT_FAILED);
  }
  sbx_sync_send_ok(FD_CTL, "ready");
  r.spare = dup(STDIN_FILENO);
  for (;;) {
    struct epoll_event ev[64];
    /* Deadlines to keep: look at least once a second. */
    gboolean timed = r.linking->len > 0 || g_hash_table_size(r.accepting) > 0 || r.listener_off;
    int n = epoll_wait(r.epfd, ev, G_N_ELEMENTS(ev), timed ? 1000 : -1);
    if (n < 0 && errno != EINTR)
      _exit(SBX_EXIT_FAILED);
    for (int i = 0; i < n; i++) {
      Ep *ep = ev[i].data.ptr;
      switch (ep->kind) {
      case EP_SANDBOX:
        on_sandbox(&r);
        break;
      case EP_CTL:
        on_ctl(&r);
        break;
      case EP_LISTENER:
        on_listener(&r);
        break;
      case EP_NOTIFY:
        on_notify(&r, ev[i].events);
        break;
      case EP_PENDING:
        on_pending(&r, ep->ptr);
        break;
      case EP_CONN:
        on_conn(&r, ep->ptr, ep->side, ev[i].events);
        break;
      }
    }
    g_ptr_array_set_size(r.dead, 0);
    if (timed)
      sweep(&r);
  }
}

pid_t sbx_relay_start(SbxRelaySpec *s, int sandbox, int *ctl, GError **err)
{
  s->parent = getpid();
  int pair[2];
  if (!sbx_sync_pair(pair, err))
    return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(pair[0]);
    close(pair[1]);
    sbx_fail_errno(err, "relay: fork");
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* sbx blocks the signals it forwards: the relay takes them as they come. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN);
    sbx_proctitle_set("sbx-relay");
    /* Nothing of the user's environment (tokens, keys) stays in a process
     * that reads the sandbox's memory: the strings themselves go. */
    for (char **e = environ; e && *e; e++)
      explicit_bzero(*e, strlen(*e));
    clearenv();
    int log = s->log_fd;
    /* Our fds to 3, 4, 5 (through higher numbers: they may sit there). */
    int a = fcntl(sandbox, F_DUPFD_CLOEXEC, 10), b = fcntl(pair[1], F_DUPFD_CLOEXEC, 10);
    int c = log >= 0 ? fcntl(log, F_DUPFD_CLOEXEC, 10) : -1;
    if (a < 0 || b < 0 || dup3(a, FD_SANDBOX, O_CLOEXEC) < 0 || dup3(b, FD_CTL, O_CLOEXEC) < 0 ||
        (c >= 0 && dup3(c, FD_LOG, O_CLOEXEC) < 0))
      _exit(SBX_EXIT_FAILED);
    sbx_close_fds_from(c >= 0 ? FD_LOG + 1 : FD_LOG);
    sbx_helper_stdio_null();
    relay_main(s);
  }
  close(pair[1]);
  *ctl = pair[0];
  return pid;
}

gboolean sbx_relay_ready(int ctl, GError **err)
{
  return sbx_sync_recv(ctl, NULL, "TCP relay", err);
}

gboolean sbx_relay_send_listener(int sock, GError **err)
{
  sbx_autofd l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, SOMAXCONN) < 0)
    return sbx_fail_errno(err, "relay: listen on 127.0.0.1");
  if (!sbx_sync_send_fd(sock, "listen", l))
    return sbx_fail_errno(err, "relay: hand it the listener");
  return TRUE;
}

gboolean sbx_relay_install_filter(int sock, GError **err)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx)
    return sbx_fail(err, SBX_ERROR_FAILED, "relay: seccomp_init");
  /* Another architecture's calls are the main filter's to judge. */
  seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 0);
  if (rc == 0)
    rc = seccomp_load(ctx);
  int fd = rc == 0 ? seccomp_notify_fd(ctx) : -1;
  seccomp_release(ctx);
  if (rc < 0 || fd < 0)
    return sbx_fail_errnum(err, rc < 0 ? -rc : EINVAL, "relay: the connect filter");
  gboolean ok = sbx_sync_send_fd(sock, "notify", fd);
  int e = errno;
  close(fd);
  return ok || sbx_fail_errnum(err, e, "relay: hand it the connect filter");
}
