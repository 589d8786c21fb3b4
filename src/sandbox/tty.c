/* -t: a pseudo-terminal from the sandbox's own devpts. init opens the
 * master, hands it to sbx (SCM_RIGHTS) and gives the slave to the program as
 * its controlling terminal; sbx puts the user's terminal in raw mode and
 * copies bytes both ways, so Ctrl-C, Ctrl-Z and Ctrl-\ are the sandbox
 * terminal's business (its line discipline signals the foreground group). */
#include "sbx/sandbox.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

int sbx_tty_open_master(char **slave_path, GError **err)
{
  /* After pivot_root: /dev/pts/ptmx is the new instance's (newinstance). */
  int m = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) {
    sbx_fail_errno(err, "-t: open /dev/pts/ptmx");
    return -1;
  }
  int unlock = 0, n = -1;
  if (ioctl(m, TIOCSPTLCK, &unlock) < 0 || ioctl(m, TIOCGPTN, &n) < 0) {
    sbx_fail_errno(err, "-t: set up the pseudo-terminal");
    close(m);
    return -1;
  }
  /* The user's window size from the start (init still has sbx's stdio). */
  struct winsize ws;
  for (int fd = 0; fd <= 2; fd++)
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0) {
      ioctl(m, TIOCSWINSZ, &ws);
      break;
    }
  *slave_path = g_strdup_printf("/dev/pts/%d", n);
  return m;
}

/* The slave is the opener's (root of the sandbox), mode 0620: a program
 * running as another user could not open it again (/dev/tty, $(tty), the
 * /proc/self/fd links), nor could we once the ids have changed. Given to
 * the program's uid, as runc does (fixStdioPermissions): the uid only, the
 * group stays devpts' own (tty). Only the terminal we made: never a file
 * or pipe of the caller's. An owner not mapped (EINVAL) or a read-only
 * devpts (EROFS) leaves it as it is, as runc does: the id change says why. */
static gboolean give_slave(int s, const char *slave_path, uid_t owner, GError **err)
{
  struct stat st;
  if (fstat(s, &st) < 0)
    return sbx_fail_errno(err, "-t: stat %s", slave_path);
  if (st.st_uid == owner || fchown(s, owner, (gid_t)-1) == 0)
    return TRUE;
  if (errno == EINVAL || errno == EPERM || errno == EROFS)
    return TRUE;
  return sbx_fail_errno(err, "-t: give %s to uid %u", slave_path, (unsigned)owner);
}

gboolean sbx_tty_attach_slave(const char *slave_path, uid_t owner, GError **err)
{
  /* A new session whose controlling terminal is the slave: job control works,
   * and nothing can reach the terminal sbx was started from. */
  if (setsid() < 0)
    return sbx_fail_errno(err, "-t: setsid");
  /* Opened while we are still root of the sandbox: the slave is root's. */
  int s = open(slave_path, O_RDWR | O_NOCTTY); /* no O_CLOEXEC: it may be 0, 1 or 2 */
  if (s < 0)
    return sbx_fail_errno(err, "-t: open %s", slave_path);
  if (ioctl(s, TIOCSCTTY, 0) < 0)
    return sbx_fail_errno(err, "-t: make %s the controlling terminal", slave_path);
  if (!give_slave(s, slave_path, owner, err))
    return FALSE;
  for (int fd = 0; fd <= 2; fd++)
    if (dup2(s, fd) < 0)
      return sbx_fail_errno(err, "-t: dup2");
  if (s > 2)
    close(s);
  return TRUE;
}

/* The user's terminal, restored on every way out (normal, sbx error, signal). */
static struct termios saved;
static int saved_fd = -1;

static void restore_terminal(void)
{
  if (saved_fd >= 0) {
    tcsetattr(saved_fd, TCSAFLUSH, &saved);
    saved_fd = -1;
  }
}

void sbx_tty_raw(int fd)
{
  struct termios raw;
  if (!isatty(fd) || tcgetattr(fd, &saved) < 0)
    return;
  raw = saved;
  cfmakeraw(&raw);
  if (tcsetattr(fd, TCSAFLUSH, &raw) == 0) {
    saved_fd = fd;
    static gboolean registered;
    if (!registered)
      registered = atexit(restore_terminal) == 0;
  }
}

void sbx_tty_restore(void)
{
  restore_terminal();
}

static gboolean copy_some(int from, int to)
{
  char buf[16384];
  ssize_t n = read(from, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return TRUE;
  if (n <= 0)
    return FALSE;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = to, .events = POLLOUT};
      poll(&p, 1, 1000);
      continue;
    }
    if (w <= 0)
      return FALSE;
    off += w;
  }
  return TRUE;
}

int sbx_tty_relay(SbxSandboxEnd *end, int master, gboolean interactive, const sigset_t *forwarded)
{
  sigset_t mask = *forwarded;
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGWINCH);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  gboolean stdin_open = interactive, master_open = TRUE;
  int status = -1;
  sbx_tty_raw(STDIN_FILENO);
  while (status < 0) {
    struct pollfd p[4] = {{.fd = sfd, .events = POLLIN},
                          {.fd = master_open ? master : -1, .events = POLLIN},
                          {.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN},
                          {.fd = end->report, .events = POLLIN}};
    if (poll(p, 4, sbx_sandbox_end_timeout(end, -1)) < 0 && errno != EINTR)
      break;
    /* EIO: every slave fd is closed; the program's exit comes by SIGCHLD. */
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
      master_open = copy_some(master, STDOUT_FILENO);
    if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
      stdin_open = copy_some(STDIN_FILENO, master);
    struct signalfd_siginfo si;
    while (sfd >= 0 && read(sfd, &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGWINCH) {
        struct winsize ws;
        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
          ioctl(master, TIOCSWINSZ, &ws);
      } else if (si.ssi_signo != SIGCHLD) {
        kill(end->pid, (int)si.ssi_signo);
      }
    }
    if (sbx_sandbox_end_check(end, p[3].revents, TRUE))
      status = end->status;
  }
  /* What the program wrote last may still be in the master's buffer. */
  fcntl(master, F_SETFL, O_NONBLOCK);
  char buf[16384];
  ssize_t n;
  gsize total = 0;
  /* Bounded: a process that kept the slave open could write forever. */
  while (total < (16u << 20) && (n = read(master, buf, sizeof buf)) > 0) {
    total += (gsize)n;
    if (!sbx_write_all(STDOUT_FILENO, buf, (size_t)n, NULL))
      break;
  }
  sbx_tty_restore();
  if (sfd >= 0)
    close(sfd);
  return status < 0 ? SBX_EXIT_FAILED : status;
}
