/* A SOCK_SEQPACKET pair between sbx and a child it cloned: one message per
 * step, and a failing child sends its error instead of just dying, so the
 * user reads the real reason and sbx can decide on its errno (crun's sync
 * socket does the same).
 *
 * Messages: 'K' payload (ok, maybe with an fd), or
 *           'E' domain code ':' text, domain 'e' (code = errno) or 's' (SbxErrorCode). */
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define MSG_MAX 4096

gboolean sbx_sync_address(const char *path, struct sockaddr_un *a, GError **err)
{
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a->sun_path)
    return sbx_fail(err, SBX_ERROR_FAILED, "%s: path too long for a socket", path);
  strcpy(a->sun_path, path);
  return TRUE;
}

gboolean sbx_sync_pair(int fds[2], GError **err)
{
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
    return sbx_fail_errno(err, "socketpair");
  return TRUE;
}

/* One message: a kind byte, the text, and the fds (SCM_RIGHTS). A text too
 * long for one message is not sent (FALSE, EMSGSIZE): cut, it would say
 * something else. */
static gboolean send_msg(int sock, char kind, const char *text, const int *fds, unsigned nfds)
{
  char buf[MSG_MAX];
  size_t len = text ? strlen(text) : 0;
  if (kind == 'E') /* an error's text is cut rather than lost */
    len = MIN(len, sizeof buf - 2);
  if (len > sizeof buf - 2 || nfds > SBX_SYNC_MAX_FDS) {
    errno = EMSGSIZE;
    return FALSE;
  }
  buf[0] = kind;
  if (len)
    memcpy(buf + 1, text, len);
  struct iovec iov = {.iov_base = buf, .iov_len = len + 1};
  union {
    char c[CMSG_SPACE(sizeof(int) * SBX_SYNC_MAX_FDS)];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    msg.msg_control = u.c;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)(len + 1);
}

gboolean sbx_sync_send_ok(int fd, const char *payload)
{
  return send_msg(fd, 'K', payload, NULL, 0);
}

void sbx_sync_send_error(int fd, const GError *error)
{
  gboolean is_errno = error && error->domain == SBX_ERRNO_ERROR;
  int code = !error                                   ? SBX_ERROR_FAILED
             : is_errno || error->domain == SBX_ERROR ? error->code
                                                      : SBX_ERROR_FAILED;
  g_autofree char *text = g_strdup_printf("%c%d:%s", is_errno ? 'e' : 's', code,
                                          error ? error->message : "unknown error");
  send_msg(fd, 'E', text, NULL, 0);
}

/* The error a child sent: its domain and code kept, or a plain failure. */
static gboolean recv_error(const char *body, GError **err)
{
  char *end = NULL;
  gint64 code = body[0] ? g_ascii_strtoll(body + 1, &end, 10) : 0;
  if ((body[0] != 'e' && body[0] != 's') || !end || *end != ':' || code < 0 || code > G_MAXINT)
    return sbx_fail(err, SBX_ERROR_FAILED, "%s", body); /* not ours: shown as is */
  g_set_error_literal(err, body[0] == 'e' ? SBX_ERRNO_ERROR : SBX_ERROR, (int)code, end + 1);
  return FALSE;
}

gboolean sbx_sync_recv(int fd, char **payload, const char *what, GError **err)
{
  int passed = -1;
  gboolean ok = sbx_sync_recv_fd(fd, payload, &passed, what, err);
  if (passed >= 0)
    close(passed); /* not expected here */
  return ok;
}

gboolean sbx_sync_send_fd(int sock, const char *payload, int fd)
{
  return send_msg(sock, 'K', payload, &fd, fd >= 0 ? 1 : 0);
}

gboolean sbx_sync_send_fds(int sock, const char *payload, const int *fds, unsigned nfds)
{
  return send_msg(sock, 'K', payload, fds, nfds);
}

gboolean sbx_sync_recv_fds(int sock, char **payload, int *fds, unsigned max, unsigned *nfds,
                           const char *what, GError **err)
{
  char buf[MSG_MAX];
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
  union {
    char c[CMSG_SPACE(sizeof(int) * SBX_SYNC_MAX_FDS)];
    struct cmsghdr align;
  } u;
  max = MIN(max, SBX_SYNC_MAX_FDS);
  /* Room for max fds only: the kernel closes any more a peer sends. */
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.c,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * max)};
  *nfds = 0;
  ssize_t n;
  do
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return sbx_fail_errno(err, "%s", what);
  if (n == 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "%s: exited during setup", what);
  buf[n] = '\0';
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (unsigned i = 0; i < k; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (*nfds < max)
          fds[(*nfds)++] = fd;
        else
          close(fd);
      }
    }
  if (buf[0] == 'E') {
    for (unsigned i = 0; i < *nfds; i++)
      close(fds[i]);
    *nfds = 0;
    return recv_error(buf + 1, err);
  }
  if (payload)
    *payload = g_strdup(buf + 1);
  return TRUE;
}

gboolean sbx_sync_recv_fd(int sock, char **payload, int *fd, const char *what, GError **err)
{
  unsigned n = 0;
  *fd = -1;
  return sbx_sync_recv_fds(sock, payload, fd, 1, &n, what, err);
}
