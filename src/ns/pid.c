/* PID namespace: sbx's init is PID 1 inside. PID 1 gets no default signal
 * actions, so it must forward signals to the program itself, and it must reap
 * every orphan that is re-parented to it (or they stay zombies). When the
 * program exits, init ends the rest, reports the status to sbx and exits
 * (sbx_pid_init_exit). */
#include "sbx/ns.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

void sbx_pid_forwarded_signals(sigset_t *set)
{
  sigemptyset(set);
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (guint i = 0; i < G_N_ELEMENTS(sigs); i++)
    sigaddset(set, sigs[i]);
}

/* Reap everything that has exited; TRUE with *result when child was among it. */
static gboolean reap(pid_t child, int *result)
{
  gboolean done = FALSE;
  for (;;) {
    int status;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p <= 0)
      break;
    if (p == child) {
      *result = sbx_exit_status(status);
      done = TRUE;
    }
  }
  return done;
}

int sbx_pid_init_loop(pid_t child, const sigset_t *forwarded)
{
  sigset_t mask = *forwarded;
  sigaddset(&mask, SIGCHLD);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  int result = SBX_EXIT_FAILED;
  if (reap(child, &result))
    return result;
  for (;;) {
    struct signalfd_siginfo si;
    if (sfd >= 0) {
      ssize_t n = read(sfd, &si, sizeof si);
      if (n < 0 && errno == EINTR)
        continue;
      if (n != sizeof si)
        break;
    } else {
      siginfo_t info;
      if (sigwaitinfo(&mask, &info) < 0)
        continue;
      si.ssi_signo = (uint32_t)info.si_signo;
    }
    if (si.ssi_signo == SIGCHLD) {
      if (reap(child, &result))
        return result;
    } else {
      kill(child, (int)si.ssi_signo);
    }
  }
  /* signalfd broke: fall back to a plain wait for the child. */
  int status;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR)
      return SBX_EXIT_FAILED;
  return sbx_exit_status(status);
}

/* The program has exited. PID 1's own exit would end the rest of the
 * sandbox (the kernel kills what is left) and then tear its namespaces
 * down: the mount tree, the network namespace, ~1 ms or more on a busy
 * machine, and sbx would wait for all of it before it learns the status.
 * So init ends the rest itself, reaps it, and reports the status first:
 * when sbx reads the report, nothing of the sandbox runs any more but this
 * process, which then waits for sbx to let go before it exits. (bwrap's
 * PID 1 reports through an eventfd the same way.) One kill(-1) is enough: a
 * fork racing it either fails (its parent has the signal pending) or makes a
 * child the walk reaches. Processes that joined from outside (sbx exec) are
 * killed here and reaped by their own parent. */
#define SBX_INIT_HOLD_MS 250

G_GNUC_NORETURN void sbx_pid_init_exit(int result, int report)
{
  if (report >= 0) {
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
      ; /* until ECHILD: none left */
    /* The program's output pipes stay open: sbx takes what they hold
     * when it reads the report (stdio.c), with no wake-up for their ends. */
    g_autofree char *msg = g_strdup_printf("exit %d", result);
    if (sbx_sync_send_ok(report, msg)) {
      /* Our own exit is the sandbox's teardown: the mount namespace and
       * its ~25 mounts, this copy of sbx's memory (~0.5 ms of CPU). It waits
       * until sbx has what it needs, so that sbx's exit does not wait
       * behind it for the same CPU: sbx's end closes when sbx exits, or
       * before it waits for us (--report, a cgroup, a disk layer);
       * PDEATHSIG covers the rest. Bounded: an sbx stuck writing the output
       * to a slow reader must not keep the sandbox's memory and namespaces
       * meanwhile. */
      struct pollfd p = {.fd = report, .events = POLLIN};
      while (poll(&p, 1, SBX_INIT_HOLD_MS) < 0 && errno == EINTR)
        ;
    }
  }
  _exit(result);
}
