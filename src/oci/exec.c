/* sbx-oci exec: another process in a running container. Join its
 * namespaces (the user namespace first, and only those that differ from
 * ours: podman runs us inside the container's user namespace already), fork
 * so the pid namespace applies, and run the same last steps as the
 * container's own process (capabilities, seccomp, no_new_privs, execve). */
#include "sbx/oci.h"
#include "sbx/sandbox.h"
#include "sbx/state.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct {
  const char *name;
  int flag;
} order[] = {{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
             {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP},
             {"mnt", CLONE_NEWNS}};

/* The namespace is ours already: both looked at, the same. */
static gboolean same_ns(const char *theirs, const char *ours, gboolean *same, GError **err)
{
  struct stat sa, sb;
  if (stat(theirs, &sa) < 0 || stat(ours, &sb) < 0)
    return sbx_fail_errno(err, "join the container: %s", theirs);
  *same = sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
  return TRUE;
}

/* The container's process as recorded, pinned by a pidfd: its start time
 * checked after the pidfd was taken, so the pidfd is that process (a
 * process with the same pid and an earlier start cannot come after it). */
static int pin(pid_t pid, guint64 start, GError **err)
{
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) {
    sbx_fail_errno(err, "the container's process %d", (int)pid);
    return -1;
  }
  if (!start || sbx_proc_start_time(pid) != start) {
    close(fd);
    sbx_fail(err, SBX_ERROR_FAILED, "the container's process %d is gone", (int)pid);
    return -1;
  }
  return fd;
}

/* Every namespace of the container's that is not ours already, or none:
 * one that cannot be looked at or opened fails the exec (skipping it ran
 * the command in the runtime's own, the host's mount namespace included).
 * The files are opened while the pinned process is alive, checked after:
 * alive then, its pid named it all along. */
static gboolean join(pid_t pid, int pidfd, GError **err)
{
  int fds[G_N_ELEMENTS(order)];
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
    g_autofree char *theirs = g_strdup_printf("/proc/%d/ns/%s", (int)pid, order[i].name);
    g_autofree char *ours = g_strdup_printf("/proc/self/ns/%s", order[i].name);
    gboolean same = FALSE;
    fds[i] = -1;
    if (ok && (ok = same_ns(theirs, ours, &same, err)) && !same &&
        (fds[i] = open(theirs, O_RDONLY | O_CLOEXEC)) < 0)
      ok = sbx_fail_errno(err, "join the container: %s", theirs);
  }
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  if (ok && poll(&p, 1, 0) != 0)
    ok = sbx_fail(err, SBX_ERROR_FAILED, "the container's process %d exited", (int)pid);
  for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
    if (fds[i] < 0)
      continue;
    if (ok && setns(fds[i], order[i].flag) < 0)
      ok = sbx_fail_errno(err, "join the container's %s namespace", order[i].name);
    close(fds[i]);
  }
  return ok;
}

static G_GNUC_NORETURN void child_main(const SbxOciConfig *c, const SbxOciExec *x, int report,
                                       int console)
{
  g_autoptr(GError) err = NULL;
  g_autofree char *slave = NULL;
  gboolean ok = sbx_oci_check_executable(c, &err);
  if (ok && c->terminal) {
    sbx_autofd master = console < 0 ? -1 : sbx_tty_open_master(&slave, &err);
    if (console < 0)
      ok = sbx_fail(&err, SBX_ERROR_USAGE, "--tty needs --console-socket");
    else
      ok = master >= 0 && sbx_oci_send_console(console, master, &err);
  }
  if (!ok) {
    (void)sbx_write_all(report, err->message, strlen(err->message), NULL);
    _exit(1);
  }
  if (console >= 0)
    close(console);
  /* report is close-on-exec: EOF tells sbx-oci the exec happened; a
   * failure on the way there (working directory, user, execve) is written
   * to it, or sbx-oci took EOF for success and wrote a pid file naming a
   * dead process. */
  sbx_process_report_failures_to(report);
  sbx_oci_exec_process(c, slave, x->preserve_fds);
}

pid_t sbx_oci_exec(const SbxOciConfig *c, const SbxOciExec *x, GError **err)
{
  sbx_autofd console = x->console_socket ? sbx_oci_connect_console(x->console_socket, err) : -1;
  if (x->console_socket && console < 0)
    return -1;
  int report[2], pidpipe[2];
  if (pipe2(report, O_CLOEXEC) < 0 || pipe2(pidpipe, O_CLOEXEC) < 0) {
    sbx_fail_errno(err, "pipe");
    return -1;
  }
  sbx_autofd pidfd = pin(x->pid, x->start, err);
  if (pidfd < 0) {
    close(report[0]);
    close(report[1]);
    close(pidpipe[0]);
    close(pidpipe[1]);
    return -1;
  }
  /* The joined process is our grandchild: adopt it when its parent goes. */
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  pid_t mid = fork();
  if (mid == 0) {
    close(report[0]);
    close(pidpipe[0]);
    /* Inside, the new process is seen, with every capability of the user
     * namespace and no filter until its execve: out of ptrace's reach and
     * of /proc/PID/exe (the host's sbx-oci) for the container's processes,
     * CAP_SYS_PTRACE or not. execve gives the program its own flag. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    g_autoptr(GError) e = NULL;
    if (!join(x->pid, pidfd, &e)) {
      (void)sbx_write_all(report[1], e->message, strlen(e->message), NULL);
      _exit(1);
    }
    pid_t child = fork();
    if (child == 0) {
      close(pidpipe[1]);
      child_main(c, x, report[1], console);
    }
    (void)!write(pidpipe[1], &child, sizeof child);
    _exit(child < 0);
  }
  close(report[1]);
  close(pidpipe[1]);
  if (mid < 0) {
    close(report[0]);
    close(pidpipe[0]);
    sbx_fail_errno(err, "fork");
    return -1;
  }
  pid_t child = -1;
  if (read(pidpipe[0], &child, sizeof child) != sizeof child)
    child = -1;
  close(pidpipe[0]);
  while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
    ;
  char msg[4096];
  ssize_t n;
  do
    n = read(report[0], msg, sizeof msg - 1);
  while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n > 0 || child <= 0) {
    msg[n > 0 ? n : 0] = '\0';
    sbx_fail(err, SBX_ERROR_FAILED, "%s", n > 0 ? msg : "exec: the process died before exec");
    if (child > 0)
      waitpid(child, NULL, 0);
    return -1;
  }
  return child;
}
