/* The import child's seccomp filter (src/store/confine.c), installed in a
 * g_test_trap_subprocess() child: what it refuses, with which errno, and
 * that what an import needs (threads, sockets for a pull, FIFOs and
 * whiteouts) still works. Each refused call would succeed or fail otherwise
 * without the filter (the test runs as root in CI). */
#include "helpers.h"
#include "sbx/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define REFUSED(call, e)                                                                           \
  do {                                                                                             \
    errno = 0;                                                                                     \
    g_assert_cmpint((call), ==, -1);                                                               \
    g_assert_cmpint(errno, ==, (e));                                                               \
  } while (0)

static gpointer thread_fn(gpointer data)
{
  return data;
}

static void confine(void)
{
  g_autoptr(GError) err = NULL;
  g_assert_cmpint(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), ==, 0);
  g_assert_true(sbx_store_confine_child(&err));
  g_assert_no_error(err);
}

#ifdef __x86_64__
/* i386's getpid (20) by int 0x80 */
static long int80_getpid(void)
{
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
  return (int)r;
}

/* Whether this kernel has an i386 entry at all: with ia32_emulation=0 int
 * 0x80 faults (SIGSEGV) before any filter sees it. Asked unconfined, in a
 * child (a sanitizer reports the fault on stderr: closed). */
static gboolean kernel_runs_i386(void)
{
  pid_t pid = fork();
  if (pid == 0) {
    close(STDERR_FILENO);
    _exit(int80_getpid() > 0 ? 0 : 1);
  }
  int status = -1;
  g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
#endif

static void test_refused(void)
{
  if (g_test_subprocess()) {
    g_autofree char *dir = th_tmpdir_new();
#ifdef __x86_64__
    gboolean i386 = kernel_runs_i386();
#endif
    confine();
    REFUSED(unshare(CLONE_NEWUSER), EPERM);
    REFUSED(unshare(CLONE_NEWNS), EPERM);
    REFUSED(mount("none", "/nonexistent-sbx-confine", "tmpfs", 0, NULL), EPERM);
    REFUSED(umount2("/nonexistent-sbx-confine", 0), EPERM);
    REFUSED(chroot("/"), EPERM);
    REFUSED(syscall(SYS_fsopen, "tmpfs", 0), EPERM);
    REFUSED(syscall(SYS_open_tree, AT_FDCWD, "/", 0), EPERM);
    REFUSED(syscall(SYS_setns, 0, 0), EPERM);
    REFUSED(syscall(SYS_bpf, 0, NULL, 0), EPERM);
    REFUSED(syscall(SYS_io_uring_setup, 1, NULL), EPERM);
    REFUSED(syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM);
    REFUSED(syscall(SYS_ptrace, 0, 0, 0, 0), EPERM);
    REFUSED(syscall(SYS_setuid, 0), EPERM);
    /* clone with a namespace flag; clone3: ENOSYS (glibc falls back) */
    REFUSED(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL), EPERM);
    REFUSED(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, NULL), EPERM);
    REFUSED(syscall(SYS_clone3, NULL, 0), ENOSYS);
    /* socket families: AF_PACKET, AF_ALG, AF_VSOCK refused, also with bits
     * above the int the kernel reads */
    REFUSED(socket(AF_PACKET, SOCK_RAW, 0), EPERM);
    REFUSED(socket(AF_ALG, SOCK_SEQPACKET, 0), EPERM);
    REFUSED(socket(AF_VSOCK, SOCK_STREAM, 0), EPERM);
    REFUSED(socket(AF_KEY, SOCK_RAW, 0), EPERM);
    REFUSED(syscall(SYS_socket, (1ul << 32) | AF_PACKET, SOCK_RAW, 0), EPERM);
    /* devices other than a whiteout */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(dfd, >=, 0);
    REFUSED(mknodat(dfd, "null", S_IFCHR | 0600, makedev(1, 3)), EPERM);
    REFUSED(mknodat(dfd, "blk", S_IFBLK | 0600, makedev(7, 0)), EPERM);
    REFUSED(mknodat(dfd, "sock", S_IFSOCK | 0600, 0), EPERM);
    /* the terminal: TIOCSTI refused (without the filter: ENOTTY on a file) */
    char c = 'x';
    REFUSED(ioctl(dfd, TIOCSTI, &c), EPERM);
    close(dfd);
#ifdef __x86_64__
    /* a system call of another architecture, where the kernel has one */
    if (i386)
      g_assert_cmpint(int80_getpid(), ==, -ENOSYS);
    else
      g_test_message("no i386 entry in this kernel: the int 0x80 check is skipped");
#endif
    th_tmpdir_remove(dir);
    /* as the import child does: LeakSanitizer's exit check needs ptrace */
    _exit(0);
  }
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed();
}

static void test_allowed(void)
{
  if (g_test_subprocess()) {
    g_autofree char *dir = th_tmpdir_new();
    confine();
    /* GLib threads (pthread_create: clone3, then clone) */
    GThread *t = g_thread_new("confined", thread_fn, GINT_TO_POINTER(7));
    g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(t)), ==, 7);
    /* a pull's sockets and name lookups */
    int families[] = {AF_INET, AF_INET6, AF_UNIX, AF_NETLINK};
    for (guint i = 0; i < G_N_ELEMENTS(families); i++) {
      int fd = socket(families[i], SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0)
        g_assert_cmpint(errno, !=, EPERM); /* (IPv6 may be off) */
      else
        close(fd);
    }
    /* what the unpacker makes: FIFOs and whiteouts */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(dfd, >=, 0);
    g_assert_cmpint(mknodat(dfd, "fifo", S_IFIFO | 0600, 0), ==, 0);
    if (mknodat(dfd, "wh", S_IFCHR, makedev(0, 0)) < 0)
      g_assert_cmpint(errno, !=, EPERM); /* the kernel allows it as root */
    /* fork (clone without namespace flags) */
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0)
      _exit(3);
    int status;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_cmpint(WEXITSTATUS(status), ==, 3);
    close(dfd);
    th_tmpdir_remove(dir);
    /* as the import child does: LeakSanitizer's exit check needs ptrace */
    _exit(0);
  }
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/confine/refused", test_refused);
  g_test_add_func("/confine/allowed", test_allowed);
  return g_test_run();
}
