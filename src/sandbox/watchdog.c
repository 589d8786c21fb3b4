/* The watchdog: a thread in sbx beside the loop that forwards signals and
 * relays output. It enforces --timeout (SIGTERM to init, which passes it to
 * the program; SIGKILL to init after a grace period, and the kernel kills
 * the rest of the PID namespace) and, for --report, samples how much of the
 * writable layer's tmpfs is in use every 100 ms (a peak of the samples: a
 * burst shorter than that between two samples is not seen).
 *
 * Signals go through a pidfd, so a pid reused after init was reaped is
 * never hit. The thread is started after the last fork of sbx. */
#include "sbx/sandbox.h"
#include "sbx/util.h"

#include <errno.h>
#include <signal.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#define SAMPLE_US (100 * 1000)

struct SbxWatchdog {
  GThread *thread;
  GMutex lock;
  GCond cond;
  gboolean stop;
  int pidfd;
  pid_t init;
  gint64 deadline_us; /* monotonic; 0: no timeout */
  int usage_fd;       /* the run tmpfs, -1: not measured */
  gboolean timed_out;
  gint64 peak;
};

static void send_signal(SbxWatchdog *w, int sig)
{
  if (w->pidfd >= 0 && syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0) == 0)
    return;
  if (w->pidfd < 0)
    kill(w->init, sig); /* before Linux 5.3: init is not reaped while we run */
}

static gint64 sample(SbxWatchdog *w)
{
  struct statfs fs;
  if (w->usage_fd < 0 || fstatfs(w->usage_fd, &fs) < 0)
    return -1;
  gint64 used = (gint64)(fs.f_blocks - fs.f_bfree) * (gint64)fs.f_bsize;
  w->peak = MAX(w->peak, used);
  return used;
}

static gpointer watch(gpointer data)
{
  SbxWatchdog *w = data;
  gint64 kill_at = 0;
  g_mutex_lock(&w->lock);
  while (!w->stop) {
    gint64 now = g_get_monotonic_time();
    if (w->deadline_us && !w->timed_out && now >= w->deadline_us) {
      w->timed_out = TRUE;
      sbx_debug("timeout: SIGTERM to init, SIGKILL in %d s", SBX_TIMEOUT_GRACE_S);
      send_signal(w, SIGTERM);
      kill_at = now + (gint64)SBX_TIMEOUT_GRACE_S * G_USEC_PER_SEC;
    } else if (kill_at && now >= kill_at) {
      sbx_debug("timeout: grace period over, SIGKILL to init");
      send_signal(w, SIGKILL);
      kill_at = 0;
    }
    sample(w);
    gint64 next = w->usage_fd >= 0 ? now + SAMPLE_US : G_MAXINT64;
    if (w->deadline_us && !w->timed_out)
      next = MIN(next, w->deadline_us);
    if (kill_at)
      next = MIN(next, kill_at);
    if (next == G_MAXINT64)
      g_cond_wait(&w->cond, &w->lock);
    else
      g_cond_wait_until(&w->cond, &w->lock, next);
  }
  g_mutex_unlock(&w->lock);
  return NULL;
}

SbxWatchdog *sbx_watchdog_start(pid_t init, gint64 timeout_ms, int usage_fd)
{
  if (timeout_ms <= 0 && usage_fd < 0)
    return NULL;
  SbxWatchdog *w = g_new0(SbxWatchdog, 1);
  g_mutex_init(&w->lock);
  g_cond_init(&w->cond);
  w->init = init;
  w->pidfd = (int)syscall(SYS_pidfd_open, init, 0);
  w->usage_fd = usage_fd;
  w->peak = -1;
  if (timeout_ms > 0)
    w->deadline_us = g_get_monotonic_time() + timeout_ms * 1000;
  sample(w);
  w->thread = g_thread_new("sbx-watchdog", watch, w);
  return w;
}

/* After init was reaped: stop the thread and take what it saw. */
void sbx_watchdog_stop(SbxWatchdog *w, SbxRunResult *r)
{
  if (!w)
    return;
  g_mutex_lock(&w->lock);
  w->stop = TRUE;
  g_cond_signal(&w->cond);
  g_mutex_unlock(&w->lock);
  g_thread_join(w->thread);
  gint64 final = sample(w);
  if (r) {
    r->timed_out = w->timed_out;
    r->writable_peak = w->peak;
    r->writable_final = final;
  }
  if (w->pidfd >= 0)
    close(w->pidfd);
  g_mutex_clear(&w->lock);
  g_cond_clear(&w->cond);
  g_free(w);
}
