/* Without -t, the program never gets one of the user's file descriptors:
 * stdout and stderr are pipes that sbx copies to wherever its own go, and
 * with -i stdin is a pipe that sbx fills from its own stdin (as Docker's
 * shim does). Handed straight in, a terminal could be read from (the fd is
 * open read-write) or have its modes changed (`stty -echo` outlives sbx),
 * and `sbx run ... >> ci.log` would let the job reopen /proc/self/fd/1 for
 * reading and see what earlier steps logged (issue 9). Without -i, stdin is
 * the sandbox's /dev/null.
 *
 * The copy uses splice(2) where both ends allow it (the data never leaves
 * the kernel; a partial transfer leaves the rest in the pipe) and read/write
 * otherwise (O_APPEND files, some terminals). */
#include "sbx/sandbox.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>

#define CHUNK (1 << 20)
/* Large pipes: fewer wake-ups (the kernel caps this at pipe-max-size). */
#define PIPE_SIZE (1 << 20)

void sbx_stdio_pipes_open(SbxStdioPipes *p, gboolean tty, gboolean interactive)
{
  for (int fd = 0; fd < 3; fd++)
    p->r[fd] = p->w[fd] = -1;
  p->limit = 0;
  for (int fd = tty ? 3 : interactive ? 0 : 1; fd < 3; fd++) {
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) < 0)
      continue; /* the program then gets /dev/null there (pipes_child) */
    fcntl(pp[0], F_SETPIPE_SZ, PIPE_SIZE);
    p->r[fd] = pp[0];
    p->w[fd] = pp[1];
  }
}

static void replace(int *from, int to)
{
  if (*from >= 0) {
    dup2(*from, to); /* dup2 clears close-on-exec on the copy */
    close(*from);
    *from = -1;
  }
}

static void drop(int *fd)
{
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

/* In the child, once: the program's ends become 0, 1, 2; sbx's ends are
 * closed (an inherited copy of stdin's write end would keep EOF away). */
void sbx_stdio_pipes_child(SbxStdioPipes *p, gboolean tty)
{
  if (tty)
    return;
  for (int fd = 0; fd < 3; fd++) {
    int *mine = fd == 0 ? &p->r[fd] : &p->w[fd];
    int *theirs = fd == 0 ? &p->w[fd] : &p->r[fd];
    drop(theirs);
    if (*mine >= 0) {
      replace(mine, fd);
    } else {
      /* No pipe (no -i, or pipe2 failed): never the user's fd. */
      int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (null >= 0 && null != fd)
        replace(&null, fd);
    }
  }
}

gboolean sbx_stdio_pipes_active(const SbxStdioPipes *p)
{
  return p->r[1] >= 0 || p->r[2] >= 0 || p->w[0] >= 0;
}

void sbx_stdio_pipes_close(SbxStdioPipes *p)
{
  for (int fd = 0; fd < 3; fd++) {
    drop(&p->r[fd]);
    drop(&p->w[fd]);
  }
}

/* Copy what is already there (setup messages of a sandbox that failed). */
void sbx_stdio_pipes_drain(SbxStdioPipes *p)
{
  for (int fd = 1; fd <= 2; fd++) {
    drop(&p->w[fd]);
    if (p->r[fd] >= 0) {
      fcntl(p->r[fd], F_SETFL, O_NONBLOCK);
      char buf[16384];
      ssize_t n;
      while ((n = read(p->r[fd], buf, sizeof buf)) > 0)
        sbx_write_all(fd, buf, (size_t)n, NULL);
    }
  }
}

typedef enum { MOVED, AGAIN, DONE } Copied;

/* What read() took and write() could not place yet. */
typedef struct {
  char *buf;
  gsize len, off;
} Pending;

/* The bound of the outputs together (a detached sandbox's log): past it,
 * what the program writes is read and dropped, so it never blocks on a
 * full pipe, and one line says so. */
typedef struct {
  guint64 limit, left;
  gboolean told;
} Budget;

/* One direction: from -> to, both -1 once finished. */
typedef struct {
  int from, to;
  int *owned; /* sbx's pipe end, closed at the end (stdin: EOF for the program) */
  guint splice_flags;
  gboolean splice_ok;
  gboolean blocked; /* `to` would block: wait for POLLOUT, not for input */
  Pending pend;
  Budget *budget; /* NULL: unbounded */
} Stream;

static Copied write_pending(Stream *s)
{
  Pending *pd = &s->pend;
  while (pd->off < pd->len) {
    ssize_t w = write(s->to, pd->buf + pd->off, pd->len - pd->off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno == EAGAIN)
      return AGAIN;
    if (w <= 0)
      return DONE;
    pd->off += (gsize)w;
  }
  pd->len = pd->off = 0;
  return MOVED;
}

/* "16 MiB", "512 KiB", "1000 bytes": plain ASCII (g_format_size's has a
 * no-break space and a locale). */
static char *size_text(guint64 n)
{
  if (n >= (1u << 20) && n % (1u << 20) == 0)
    return g_strdup_printf("%" G_GUINT64_FORMAT " MiB", n >> 20);
  if (n >= 1024 && n % 1024 == 0)
    return g_strdup_printf("%" G_GUINT64_FORMAT " KiB", n >> 10);
  return g_strdup_printf("%" G_GUINT64_FORMAT " bytes", n);
}

static Copied drop_once(Stream *s)
{
  Budget *b = s->budget;
  char buf[65536];
  ssize_t n = read(s->from, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return MOVED;
  if (n <= 0)
    return DONE;
  if (!b->told) {
    g_autofree char *size = size_text(b->limit);
    g_autofree char *line = g_strdup_printf(
        "\nsbx: the output reached the log's bound of %s: the rest is dropped\n", size);
    sbx_write_all(s->to, line, strlen(line), NULL);
    b->told = TRUE;
  }
  return MOVED;
}

static Copied copy_once(Stream *s)
{
  Budget *b = s->budget;
  if (b && b->left == 0)
    return drop_once(s);
  gsize most = b ? MIN(CHUNK, b->left) : CHUNK;
  if (s->splice_ok) {
    ssize_t n = splice(s->from, NULL, s->to, NULL, most, SPLICE_F_MOVE | s->splice_flags);
    if (n > 0 && b)
      b->left -= (guint64)n;
    if (n > 0)
      return MOVED;
    if (n == 0)
      return DONE;
    if (errno == EINTR || errno == EAGAIN)
      return AGAIN;
    if (errno != EINVAL && errno != ENOSYS)
      return DONE;        /* EPIPE: nobody reads any more */
    s->splice_ok = FALSE; /* e.g. an O_APPEND file: read and write */
  }
  if (!s->pend.buf)
    s->pend.buf = g_malloc(CHUNK);
  ssize_t n = read(s->from, s->pend.buf, most);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return MOVED; /* nothing after all: poll again */
  if (n <= 0)
    return DONE;
  if (b)
    b->left -= (guint64)n;
  s->pend.len = (gsize)n;
  s->pend.off = 0;
  return write_pending(s);
}

static void stream_end(Stream *s)
{
  s->from = s->to = -1;
  drop(s->owned);
  g_clear_pointer(&s->pend.buf, g_free);
}

int sbx_stdio_relay(SbxSandboxEnd *end, SbxStdioPipes *p, const sigset_t *forwarded)
{
  drop(&p->r[0]); /* the child has its copies */
  drop(&p->w[1]);
  drop(&p->w[2]);
  if (p->w[0] >= 0)
    fcntl(p->w[0], F_SETFL, O_NONBLOCK); /* sbx's end only: a full stdin never stalls the outputs */
  /* A reader that went away is EPIPE for that stream, not the end of sbx. */
  struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
  sigaction(SIGPIPE, &ign, &old_pipe);
  sigset_t mask = *forwarded;
  sigaddset(&mask, SIGCHLD);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  /* 0: the user's stdin into the program's; 1, 2: the program's out into ours.
   * Outputs block on our side like any writer would; stdin's pipe does not. */
  Budget budget = {p->limit, p->limit, FALSE};
  Budget *bound = p->limit ? &budget : NULL;
  Stream st[3] = {
      {p->w[0] >= 0 ? STDIN_FILENO : -1, p->w[0], &p->w[0], SPLICE_F_NONBLOCK, TRUE},
      {p->r[1], p->r[1] >= 0 ? STDOUT_FILENO : -1, &p->r[1], 0, TRUE, .budget = bound},
      {p->r[2], p->r[2] >= 0 ? STDERR_FILENO : -1, &p->r[2], 0, TRUE, .budget = bound},
  };
  int status = -1;
  while (status < 0 || st[1].from >= 0 || st[2].from >= 0) {
    struct pollfd pf[8] = {
        {.fd = sfd, .events = POLLIN}, [7] = {.fd = end->report, .events = POLLIN}};
    for (int i = 0; i < 3; i++) {
      gboolean wait_out = st[i].blocked || st[i].pend.len > 0;
      pf[1 + 2 * i] = (struct pollfd){.fd = wait_out ? -1 : st[i].from, .events = POLLIN};
      /* stdin's pipe always: POLLERR says the program closed its end. */
      pf[2 + 2 * i] = (struct pollfd){.fd = wait_out || i == 0 ? st[i].to : -1,
                                      .events = wait_out ? POLLOUT : 0};
    }
    /* Once the sandbox has exited, what is left in the pipes is copied, and
     * a pipe a stray process still holds does not keep us waiting; output
     * waiting for our reader (a non-blocking stdout) still goes out. */
    gboolean writing = FALSE;
    for (int i = 1; i < 3; i++)
      writing |= st[i].to >= 0 && (st[i].blocked || st[i].pend.len > 0);
    if (poll(pf, 8, status < 0 ? sbx_sandbox_end_timeout(end, -1) : 200) <= 0 && status >= 0 &&
        !writing)
      break;
    for (int i = 0; i < 3; i++) {
      Stream *s = &st[i];
      short in = pf[1 + 2 * i].revents, out = pf[2 + 2 * i].revents;
      Copied c = AGAIN;
      if (s->to < 0)
        continue;
      if (out & POLLERR)
        c = DONE;
      else if (out & POLLOUT)
        c = s->pend.len > 0 ? write_pending(s) : MOVED;
      else if (in & (POLLIN | POLLHUP | POLLERR))
        c = copy_once(s);
      else
        continue;
      s->blocked = c == AGAIN;
      if (c == DONE)
        stream_end(s); /* EOF, or nobody reads: the other side learns it */
    }
    struct signalfd_siginfo si;
    gboolean child = sfd < 0; /* without signalfd: look every time */
    while ((pf[0].revents & POLLIN) && read(sfd, &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGCHLD)
        child = TRUE;
      else
        kill(end->pid, (int)si.ssi_signo);
    }
    if (status < 0 && sbx_sandbox_end_check(end, pf[7].revents, child))
      status = end->status;
    /* Init's report: nothing of the sandbox runs any more and init writes
     * nothing; what the pipes hold is all the sandbox wrote, and no EOF
     * comes (init keeps its ends until we let go: ns/pid.c). So each output
     * is done once it is empty, without another wake-up for its end. (A
     * copy of a write end passed outside the sandbox is not waited for.) */
    for (int i = 1; status >= 0 && !end->reaped && i < 3; i++) {
      Stream *s = &st[i];
      int left = 0;
      if (s->from < 0 || s->blocked || s->pend.len > 0)
        continue;
      /* What it holds is copied as before: a copy from a pipe with data
       * never waits for more, and one to our stdout blocks like any writer
       * (non-blocking flags would apply to both ends of a pipe-to-pipe
       * splice, and a slow reader would lose the rest). */
      if (ioctl(s->from, FIONREAD, &left) < 0 || left <= 0)
        stream_end(s);
    }
  }
  for (int i = 0; i < 3; i++)
    stream_end(&st[i]);
  sbx_stdio_pipes_close(p);
  sigaction(SIGPIPE, &old_pipe, NULL);
  if (sfd >= 0)
    close(sfd);
  return status < 0 ? SBX_EXIT_FAILED : status;
}
