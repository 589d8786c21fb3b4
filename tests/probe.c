/* probe: what a program inside the sandbox can and cannot do.
 *
 * A static program packed into the "probe" fixture image (Entrypoint
 * ["/probe"]). It prints one line per check, "KIND [KEY] VALUE", and "end"
 * last, for tests/cli/test_security.py to parse:
 *
 *   syscall LABEL RESULT       OK, an errno name (EPERM...), or SIG<NAME> when
 *                              the call killed the process running it
 *   cap CapEff 00000000a80425fb    nonewprivs 1    seccomp 2
 *   fd N TARGET                every open fd (0-2 too) but the probe's own
 *   pids 1 2                   every pid visible in /proc
 *   masked PATH absent|devnull|emptydir ro|exposed ...
 *   mount PATH ro|rw[,nosuid][,nodev][,noexec]
 *   write PATH OK|ERRNO|absent create a file in the directory (or open the
 *                              file for writing)
 *   dev PATH char 1:3 | dir | link TARGET | ...
 *   tiocsti RESULT, ctty RESULT, userns nested RESULT, rlimit NAME SOFT HARD,
 *   env KEY=VALUE, ...
 *
 * Every system call that might succeed runs in a forked child, so nothing it
 * does (a new namespace, a persona) changes the probe itself. Arguments are
 * harmless: a refusal by seccomp answers EPERM before the kernel looks at
 * them, the kernel itself answers ENOENT, EBADF, EFAULT or EINVAL.
 *
 * Arguments select sections (default: all but the extras):
 *   ids caps fds pids proc1 masked mounts writes dev tty syscalls rlimits
 *   cgroup env; extras: forklimit (fork up to 64 children at once),
 *   userquotas (inotify instances and message queues one sandbox can take),
 *   forkuids=M,K (as uids 1..M, K+1 processes each at once), memtouch=MB
 *   (touch MB MiB in a child). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* ---- errno and signal names ---- */

static const char *errno_name(int e)
{
  static const struct {
    int e;
    const char *n;
  } t[] = {
      {EPERM, "EPERM"},
      {ENOENT, "ENOENT"},
      {ESRCH, "ESRCH"},
      {EINTR, "EINTR"},
      {EIO, "EIO"},
      {ENXIO, "ENXIO"},
      {E2BIG, "E2BIG"},
      {ENOEXEC, "ENOEXEC"},
      {EBADF, "EBADF"},
      {ECHILD, "ECHILD"},
      {EAGAIN, "EAGAIN"},
      {ENOMEM, "ENOMEM"},
      {EACCES, "EACCES"},
      {EFAULT, "EFAULT"},
      {ENOTBLK, "ENOTBLK"},
      {EBUSY, "EBUSY"},
      {EEXIST, "EEXIST"},
      {EXDEV, "EXDEV"},
      {ENODEV, "ENODEV"},
      {ENOTDIR, "ENOTDIR"},
      {EISDIR, "EISDIR"},
      {EINVAL, "EINVAL"},
      {ENFILE, "ENFILE"},
      {EMFILE, "EMFILE"},
      {ENOTTY, "ENOTTY"},
      {ETXTBSY, "ETXTBSY"},
      {EFBIG, "EFBIG"},
      {ENOSPC, "ENOSPC"},
      {ESPIPE, "ESPIPE"},
      {EROFS, "EROFS"},
      {EMLINK, "EMLINK"},
      {EPIPE, "EPIPE"},
      {EDOM, "EDOM"},
      {ERANGE, "ERANGE"},
      {EDEADLK, "EDEADLK"},
      {ENAMETOOLONG, "ENAMETOOLONG"},
      {ENOLCK, "ENOLCK"},
      {ENOSYS, "ENOSYS"},
      {ENOTEMPTY, "ENOTEMPTY"},
      {ELOOP, "ELOOP"},
      {ENOMSG, "ENOMSG"},
      {ENODATA, "ENODATA"},
      {ENOPKG, "ENOPKG"},
      {EOVERFLOW, "EOVERFLOW"},
      {EUSERS, "EUSERS"},
      {ENOTSOCK, "ENOTSOCK"},
      {EPROTOTYPE, "EPROTOTYPE"},
      {ENOPROTOOPT, "ENOPROTOOPT"},
      {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
      {ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT"},
      {EOPNOTSUPP, "EOPNOTSUPP"},
      {EPFNOSUPPORT, "EPFNOSUPPORT"},
      {EAFNOSUPPORT, "EAFNOSUPPORT"},
      {EADDRINUSE, "EADDRINUSE"},
      {ENETDOWN, "ENETDOWN"},
      {ENETUNREACH, "ENETUNREACH"},
      {ENOBUFS, "ENOBUFS"},
      {ETIMEDOUT, "ETIMEDOUT"},
      {ECONNREFUSED, "ECONNREFUSED"},
      {ESTALE, "ESTALE"},
      {EDQUOT, "EDQUOT"},
      {ENOKEY, "ENOKEY"},
      {EKEYEXPIRED, "EKEYEXPIRED"},
      {EKEYREVOKED, "EKEYREVOKED"},
      {EKEYREJECTED, "EKEYREJECTED"},
      {ENOTSUP, "ENOTSUP"},
  };
  static char buf[16];
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (t[i].e == e)
      return t[i].n;
  snprintf(buf, sizeof buf, "E%d", e);
  return buf;
}

static const char *signal_name(int s)
{
  static char buf[16];
  switch (s) {
  case SIGSYS:
    return "SIGSYS";
  case SIGSEGV:
    return "SIGSEGV";
  case SIGKILL:
    return "SIGKILL";
  case SIGBUS:
    return "SIGBUS";
  case SIGILL:
    return "SIGILL";
  case SIGABRT:
    return "SIGABRT";
  case SIGTRAP:
    return "SIGTRAP";
  default:
    snprintf(buf, sizeof buf, "SIG%d", s);
    return buf;
  }
}

/* ---- output ---- */

/* Printable, single-line: control characters and backslashes escaped. */
static void put_clean(const char *s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\\')
      fputs("\\\\", stdout);
    else if (c < 0x20 || c == 0x7f)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
}

static void line(const char *kind, const char *key, const char *value)
{
  fputs(kind, stdout);
  if (key) {
    putchar(' ');
    put_clean(key);
  }
  if (value) {
    putchar(' ');
    put_clean(value);
  }
  putchar('\n');
}

/* ---- running one check in a child ---- */

typedef long (*CheckFn)(const void *arg);

/* The result of fn(arg) in a forked child: "OK", the errno's name, or the
 * signal that killed the child. fn returns < 0 with errno set on failure. */
static const char *in_child(CheckFn fn, const void *arg)
{
  static char buf[32];
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    snprintf(buf, sizeof buf, "pipe:%s", errno_name(errno));
    return buf;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    snprintf(buf, sizeof buf, "fork:%s", errno_name(e));
    return buf;
  }
  if (pid == 0) {
    close(p[0]);
    errno = 0;
    long r = fn(arg);
    int e = r < 0 ? (errno ? errno : EINVAL) : 0;
    if (write(p[1], &e, sizeof e) != (ssize_t)sizeof e)
      _exit(2);
    _exit(0);
  }
  close(p[1]);
  int e = -1;
  ssize_t n;
  do
    n = read(p[0], &e, sizeof e);
  while (n < 0 && errno == EINTR);
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (n == (ssize_t)sizeof e)
    return e == 0 ? "OK" : errno_name(e);
  if (WIFSIGNALED(status))
    return signal_name(WTERMSIG(status));
  snprintf(buf, sizeof buf, "EXIT%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return buf;
}

/* ---- raw system calls ---- */

typedef struct {
  const char *label;
  long nr;
  long a[6];
  int abi; /* 0 native, 32: i386 (int $0x80), 'x': x32 */
} RawCall;

#if defined(__x86_64__)
/* i386 system calls from a 64-bit process: int $0x80 (the arguments are
 * truncated to 32 bits, so pointers must be below 4 GiB: static data of a
 * non-PIE static binary is). */
static long int80(long nr, long a, long b, long c, long d, long e)
{
  long ret;
  __asm__ volatile("int $0x80"
                   : "=a"(ret)
                   : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
                   : "memory", "r8", "r9", "r10", "r11");
  int r = (int)ret;
  if (r < 0 && r > -4096) {
    errno = -r;
    return -1;
  }
  return r;
}
#endif

static long do_raw(const void *arg)
{
  const RawCall *c = arg;
  long r;
  if (c->abi == 32) {
#if defined(__x86_64__)
    r = int80(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4]);
#else
    errno = ENOSYS;
    return -1;
#endif
  } else if (c->abi == 'x') {
    r = syscall(c->nr | 0x40000000L, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
  } else {
    r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
  }
  int e = errno;
  /* A clone that worked: the new process leaves at once. */
  if (r == 0 && c->abi == 0 && c->nr == SYS_clone)
    _exit(0);
  if (r > 0 && c->abi == 0 && c->nr == SYS_clone)
    waitpid((pid_t)r, NULL, 0);
  errno = e;
  return r;
}

static void raw(const RawCall *c)
{
  line("syscall", c->label, in_child(do_raw, c));
}

#define P(x)   ((long)(uintptr_t)(x))
#define BADPTR 1L /* an address nothing is mapped at: EFAULT if read */

/* i386 numbers (arch/x86/entry/syscalls/syscall_32.tbl). */
#define I386_GETPID           20
#define I386_MOUNT            21
#define I386_SOCKETCALL       102
#define I386_PERSONALITY      136
#define I386_KEYCTL           288
#define I386_UNSHARE          310
#define I386_SETNS            346
#define I386_SOCKET           359
#define I386_SOCKETPAIR       360
#define SOCKETCALL_SOCKET     1
#define SOCKETCALL_SOCKETPAIR 8
#define SOCKETCALL_SHUTDOWN   13

static uint32_t sc_alg[3] = {AF_ALG, SOCK_SEQPACKET, 0};
static uint32_t sc_vsock[3] = {AF_VSOCK, SOCK_STREAM, 0};
static uint32_t sc_inet[3] = {AF_INET, SOCK_STREAM, 0};
static int sp_fds[2];
static uint32_t sc_pair[4]; /* {AF_UNIX, SOCK_STREAM, 0, &sp_fds}: filled at run time */
static uint32_t sc_shutdown[2] = {(uint32_t)-1, SHUT_RDWR};

static char vm_buf[8];
static struct iovec vm_local = {vm_buf, 1};
static struct iovec vm_remote = {(void *)0x10000, 1};

static void section_syscalls(void)
{
  const long hi = 1L << 32;
  sc_pair[0] = AF_UNIX;
  sc_pair[1] = SOCK_STREAM;
  sc_pair[3] = (uint32_t)(uintptr_t)sp_fds;
  const RawCall calls[] = {
    /* what the default profile must refuse */
    {"mount", SYS_mount, {P("none"), P("/nonexistent-sbx-probe"), 0, 0, 0}},
    {"umount2", SYS_umount2, {P("/nonexistent-sbx-probe"), 0}},
    {"pivot_root", SYS_pivot_root, {P("/nonexistent-sbx-probe"), P("/nonexistent-sbx-probe")}},
    {"move_mount",
     SYS_move_mount,
     {-1, P("/nonexistent-sbx-probe"), -1, P("/nonexistent-sbx-probe"), 0}},
    {"open_tree", SYS_open_tree, {-1, P("/nonexistent-sbx-probe"), 0}},
    {"fsopen", SYS_fsopen, {P("nonexistent-sbx-probe"), 0}},
    {"fsmount", SYS_fsmount, {-1, 0, 0}},
    {"fspick", SYS_fspick, {-1, P("/nonexistent-sbx-probe"), 0}},
    {"fsconfig", SYS_fsconfig, {-1, 0, 0, 0, 0}},
    {"mount_setattr", SYS_mount_setattr, {-1, P("/nonexistent-sbx-probe"), 0, 0, 0}},
    {"unshare(0)", SYS_unshare, {0}},
    {"unshare(CLONE_NEWUSER)", SYS_unshare, {CLONE_NEWUSER}},
    {"unshare(CLONE_NEWNS)", SYS_unshare, {CLONE_NEWNS}},
    {"unshare(CLONE_NEWNET)", SYS_unshare, {CLONE_NEWNET}},
    {"setns", SYS_setns, {-1, 0}},
    {"bpf", SYS_bpf, {-1, 0, 0}},
    {"perf_event_open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
    {"keyctl", SYS_keyctl, {-1, 0, 0, 0, 0}},
    {"add_key", SYS_add_key, {0, 0, 0, 0, 0}},
    {"request_key", SYS_request_key, {0, 0, 0, 0}},
    {"userfaultfd", SYS_userfaultfd, {0x7fffffff}},
    {"io_uring_setup", SYS_io_uring_setup, {0, 0}},
    {"io_uring_enter", SYS_io_uring_enter, {-1, 0, 0, 0, 0, 0}},
    {"io_uring_register", SYS_io_uring_register, {-1, 0, 0, 0}},
    {"kexec_load", SYS_kexec_load, {0, 0, 0, 0x7fff0000}},
    {"init_module", SYS_init_module, {0, 0, 0}},
    {"finit_module", SYS_finit_module, {-1, 0, 0}},
    {"delete_module", SYS_delete_module, {0, 0}},
    {"open_by_handle_at", SYS_open_by_handle_at, {-1, 0, 0}},
    {"reboot", SYS_reboot, {0, 0, 0, 0}},
    {"swapon", SYS_swapon, {P("/nonexistent-sbx-probe"), 0}},
    {"swapoff", SYS_swapoff, {P("/nonexistent-sbx-probe")}},
    {"settimeofday", SYS_settimeofday, {BADPTR, 0}},
    {"clock_settime", SYS_clock_settime, {CLOCK_REALTIME, BADPTR}},
    {"clock_adjtime", SYS_clock_adjtime, {CLOCK_REALTIME, BADPTR}},
    {"acct", SYS_acct, {P("/nonexistent-sbx-probe")}},
    {"sethostname", SYS_sethostname, {BADPTR, 5}},
    {"setdomainname", SYS_setdomainname, {BADPTR, 5}},
    {"syslog", SYS_syslog, {10, 0, 0}},
    {"kcmp", SYS_kcmp, {0, 0, -1, 0, 0}},
    {"pidfd_getfd", SYS_pidfd_getfd, {-1, -1, 0}},
    {"fanotify_init", SYS_fanotify_init, {0, 0}},
    {"quotactl", SYS_quotactl, {0, 0, 0, 0}},
#ifdef SYS_iopl
    {"iopl", SYS_iopl, {0}},
    {"ioperm", SYS_ioperm, {0, 0, 0}},
#endif
    {"set_mempolicy", SYS_set_mempolicy, {0, 0, 0}},
    {"clone(CLONE_NEWUSER)", SYS_clone, {CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0}},
    {"clone(CLONE_NEWNS)", SYS_clone, {CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0}},
    {"clone(CLONE_NEWPID)", SYS_clone, {CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0}},
    {"clone3", SYS_clone3, {0, 0}},
    {"socket(AF_ALG)", SYS_socket, {AF_ALG, SOCK_SEQPACKET, 0}},
    {"socket(AF_VSOCK)", SYS_socket, {AF_VSOCK, SOCK_STREAM, 0}},
    {"socket(AF_ALG|1<<32)", SYS_socket, {AF_ALG | hi, SOCK_SEQPACKET, 0}},
    {"socket(AF_VSOCK|1<<32)", SYS_socket, {AF_VSOCK | hi, SOCK_STREAM, 0}},
    {"personality(READ_IMPLIES_EXEC)", SYS_personality, {0x0400000}},
    {"personality(READ_IMPLIES_EXEC|1<<32)", SYS_personality, {0x0400000 | hi}},
    /* what the kernel must refuse: init is not dumpable, no device nodes */
    {"ptrace(ATTACH,1)", SYS_ptrace, {PTRACE_ATTACH, 1, 0, 0}},
    {"process_vm_readv(1)", SYS_process_vm_readv, {1, P(&vm_local), 1, P(&vm_remote), 1, 0}},
    {"mknod(char-1:3)", SYS_mknodat, {AT_FDCWD, P("/tmp/.sbx-probe-node"), S_IFCHR | 0666, 0x103}},
    /* what must work */
    {"socket(AF_INET)", SYS_socket, {AF_INET, SOCK_STREAM, 0}},
    {"socket(AF_INET6)", SYS_socket, {AF_INET6, SOCK_STREAM, 0}},
    {"socket(AF_UNIX)", SYS_socket, {AF_UNIX, SOCK_STREAM, 0}},
    {"socket(AF_NETLINK)", SYS_socket, {AF_NETLINK, SOCK_RAW, 0}},
    {"socket(AF_INET|1<<32)", SYS_socket, {AF_INET | hi, SOCK_STREAM, 0}},
    {"clone(SIGCHLD)", SYS_clone, {SIGCHLD, 0, 0, 0, 0}},
    {"personality(0xffffffff)", SYS_personality, {0xffffffffL}},
    {"personality(0)", SYS_personality, {0}},
    {"getpid", SYS_getpid, {0}},
    {"chroot", SYS_chroot, {P("/nonexistent-sbx-probe")}},
#ifdef SYS_mkdir
    {"mkdir", SYS_mkdir, {P("/tmp/.sbx-probe-mkdir"), 0700}},
#endif
    {"mkdirat", SYS_mkdirat, {AT_FDCWD, P("/tmp/.sbx-probe-mkdirat"), 0700}},
#if defined(__x86_64__)
    /* the same through the other ABIs of x86_64 */
    {"i386:getpid", I386_GETPID, {0}, 32},
    {"i386:mount", I386_MOUNT, {0, 0, 0, 0, 0}, 32},
    {"i386:unshare(0)", I386_UNSHARE, {0}, 32},
    {"i386:unshare(CLONE_NEWUSER)", I386_UNSHARE, {CLONE_NEWUSER}, 32},
    {"i386:setns", I386_SETNS, {-1, 0}, 32},
    {"i386:keyctl", I386_KEYCTL, {-1, 0, 0, 0, 0}, 32},
    {"i386:personality(READ_IMPLIES_EXEC)", I386_PERSONALITY, {0x0400000}, 32},
    {"i386:socket(AF_ALG)", I386_SOCKET, {AF_ALG, SOCK_SEQPACKET, 0}, 32},
    {"i386:socket(AF_VSOCK)", I386_SOCKET, {AF_VSOCK, SOCK_STREAM, 0}, 32},
    {"i386:socket(AF_INET)", I386_SOCKET, {AF_INET, SOCK_STREAM, 0}, 32},
    {"i386:socketcall(SOCKET,AF_ALG)", I386_SOCKETCALL, {SOCKETCALL_SOCKET, P(sc_alg)}, 32},
    {"i386:socketcall(SOCKET,AF_VSOCK)", I386_SOCKETCALL, {SOCKETCALL_SOCKET, P(sc_vsock)}, 32},
    {"i386:socketcall(SOCKET,AF_INET)", I386_SOCKETCALL, {SOCKETCALL_SOCKET, P(sc_inet)}, 32},
    {"i386:socketpair(AF_UNIX)", I386_SOCKETPAIR, {AF_UNIX, SOCK_STREAM, 0, P(sp_fds)}, 32},
    {"i386:socketcall(SOCKETPAIR,AF_UNIX)",
     I386_SOCKETCALL,
     {SOCKETCALL_SOCKETPAIR, P(sc_pair)},
     32},
    {"i386:socketcall(SHUTDOWN,-1)", I386_SOCKETCALL, {SOCKETCALL_SHUTDOWN, P(sc_shutdown)}, 32},
    {"x32:getpid", SYS_getpid, {0}, 'x'},
    {"x32:unshare(0)", SYS_unshare, {0}, 'x'},
    {"x32:mount", SYS_mount, {0, 0, 0, 0, 0}, 'x'},
#endif
  };
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
    raw(&calls[i]);
  rmdir("/tmp/.sbx-probe-mkdir");
  rmdir("/tmp/.sbx-probe-mkdirat");
  unlink("/tmp/.sbx-probe-node");
}

/* ---- setuid and setgid bits (issue 9: planted through a volume) ---- */

/* Relative names in static data: the i386 calls need pointers below 4 GiB. */
static char sid_file[] = "sbx-setid-f", sid_creat[] = "sbx-setid-creat",
            sid_open[] = "sbx-setid-open", sid_openat[] = "sbx-setid-openat",
            sid_node[] = "sbx-setid-node", sid_nodeat[] = "sbx-setid-nodeat",
            sid_open2[] = "sbx-setid-openat2", sid_i386[] = "sbx-setid-i386",
            sid_plain[] = "sbx-setid-plain", sid_dir[] = "sbx-setid-dir";

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#define I386_OPEN     5
#define I386_CREAT    8
#define I386_CHMOD    15
#define I386_FCHMOD   94
#define I386_FCHMODAT 306

static void report_mode(const char *name)
{
  struct stat st;
  char v[32];
  if (lstat(name, &st) < 0)
    snprintf(v, sizeof v, "%s", errno_name(errno));
  else
    snprintf(v, sizeof v, "%04o", (unsigned)(st.st_mode & 07777));
  line("mode", name, v);
}

/* setid=DIR: every way of giving a file S_ISUID or S_ISGID, in DIR. */
static void section_setid(const char *dir)
{
  if (chdir(dir) < 0) {
    line("setid", "chdir", errno_name(errno));
    return;
  }
  int fd = open(sid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (fd < 0 || mkdir(sid_dir, 0755) < 0) {
    line("setid", "create", errno_name(errno));
    return;
  }
  static struct {
    uint64_t flags, mode, resolve;
  } how = {O_WRONLY | O_CREAT, 04755, 0};
  const RawCall calls[] = {
    {"chmod(4755)", SYS_chmod, {P(sid_file), 04755}},
    {"chmod(2755)", SYS_chmod, {P(sid_file), 02755}},
    {"chmod(dir,2755)", SYS_chmod, {P(sid_dir), 02755}},
    {"chmod(4755|1<<32)", SYS_chmod, {P(sid_file), 04755 | (1L << 32)}},
    {"fchmod(4755)", SYS_fchmod, {fd, 04755}},
    {"fchmodat(6755)", SYS_fchmodat, {AT_FDCWD, P(sid_file), 06755}},
    {"fchmodat2(4755)", SYS_fchmodat2, {AT_FDCWD, P(sid_file), 04755, 0}},
    {"creat(4755)", SYS_creat, {P(sid_creat), 04755}},
    {"open(O_CREAT,4755)", SYS_open, {P(sid_open), O_WRONLY | O_CREAT, 04755}},
    {"openat(O_CREAT,2755)", SYS_openat, {AT_FDCWD, P(sid_openat), O_WRONLY | O_CREAT, 02755}},
    {"openat(O_TMPFILE,4755)", SYS_openat, {AT_FDCWD, P("."), O_WRONLY | O_TMPFILE, 04755}},
    {"mknod(S_IFREG,4755)", SYS_mknod, {P(sid_node), S_IFREG | 04755, 0}},
    {"mknodat(S_IFREG,2755)", SYS_mknodat, {AT_FDCWD, P(sid_nodeat), S_IFREG | 02755, 0}},
    {"openat2(O_CREAT,4755)", SYS_openat2, {AT_FDCWD, P(sid_open2), P(&how), sizeof how}},
    /* what must still work */
    {"chmod(0700)", SYS_chmod, {P(sid_file), 0700}},
    {"chmod(dir,1777)", SYS_chmod, {P(sid_dir), 01777}},
    {"fchmodat2(0750)", SYS_fchmodat2, {AT_FDCWD, P(sid_file), 0750, 0}},
    {"open(O_CREAT,0644)", SYS_open, {P(sid_plain), O_WRONLY | O_CREAT, 0644}},
    {"open(O_RDONLY,junk)", SYS_open, {P(sid_file), O_RDONLY, 04755}},
#if defined(__x86_64__)
    {"i386:chmod(4755)", I386_CHMOD, {P(sid_file), 04755}, 32},
    {"i386:fchmod(2755)", I386_FCHMOD, {fd, 02755}, 32},
    {"i386:fchmodat(4755)", I386_FCHMODAT, {AT_FDCWD, P(sid_file), 04755}, 32},
    {"i386:fchmodat2(4755)", SYS_fchmodat2, {AT_FDCWD, P(sid_file), 04755, 0}, 32},
    {"i386:creat(4755)", I386_CREAT, {P(sid_i386), 04755}, 32},
    {"i386:open(O_CREAT,4755)", I386_OPEN, {P(sid_i386), O_WRONLY | O_CREAT, 04755}, 32},
    {"i386:chmod(0755)", I386_CHMOD, {P(sid_file), 0755}, 32},
    {"x32:chmod(4755)", SYS_chmod, {P(sid_file), 04755}, 'x'},
    {"x32:fchmodat(2755)", SYS_fchmodat, {AT_FDCWD, P(sid_file), 02755}, 'x'},
#endif
  };
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
    raw(&calls[i]);
  /* A file capability (v2: the kernel turns it into v3, whose root id is
   * the namespace's root on the host). */
  static const uint32_t cap_v2[5] = {0x02000001, 1u << 13 /* NET_RAW */, 0, 0, 0};
  const RawCall xattr = {"setxattr(security.capability)",
                         SYS_setxattr,
                         {P(sid_file), P("security.capability"), P(cap_v2), sizeof cap_v2, 0}};
  raw(&xattr);
  close(fd);
  const char *names[] = {sid_file,   sid_creat, sid_open, sid_openat, sid_node,
                         sid_nodeat, sid_open2, sid_i386, sid_plain,  sid_dir};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    report_mode(names[i]);
  if (chdir("/") < 0)
    line("setid", "chdir", errno_name(errno));
}

/* ---- /proc/self/status ---- */

static char *status_field(const char *name)
{
  static char value[512];
  FILE *f = fopen("/proc/self/status", "re");
  char buf[1024];
  size_t n = strlen(name);
  char *out = NULL;
  while (f && fgets(buf, sizeof buf, f)) {
    if (strncmp(buf, name, n) == 0 && buf[n] == ':') {
      char *v = buf + n + 1;
      v += strspn(v, " \t");
      v[strcspn(v, "\n")] = '\0';
      for (char *t = v; *t; t++)
        if (*t == '\t')
          *t = ' ';
      for (size_t l = strlen(v); l > 0 && v[l - 1] == ' ';)
        v[--l] = '\0';
      snprintf(value, sizeof value, "%s", v);
      out = value;
      break;
    }
  }
  if (f)
    fclose(f);
  return out;
}

static void section_ids(void)
{
  char *v;
  line("id", "uid", (v = status_field("Uid")) ? v : "?");
  line("id", "gid", (v = status_field("Gid")) ? v : "?");
  v = status_field("Groups");
  line("id", "groups", v && *v ? v : "-");
  static const char *const maps[][2] = {{"uid", "/proc/self/uid_map"},
                                        {"gid", "/proc/self/gid_map"},
                                        {"setgroups", "/proc/self/setgroups"}};
  for (size_t i = 0; i < 3; i++) {
    FILE *f = fopen(maps[i][1], "re");
    char buf[256], all[1024] = "";
    while (f && fgets(buf, sizeof buf, f)) {
      /* "         0    3000000      65536" -> "0 3000000 65536" */
      char norm[256] = "";
      for (char *tok = strtok(buf, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
        snprintf(norm + strlen(norm), sizeof norm - strlen(norm), "%s%s", *norm ? " " : "", tok);
      snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", *all ? ";" : "", norm);
    }
    if (f)
      fclose(f);
    line("idmap", maps[i][0], f ? all : "absent");
  }
}

static void section_caps(void)
{
  static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
  for (size_t i = 0; i < 5; i++) {
    char *v = status_field(sets[i]);
    line("cap", sets[i], v ? v : "?");
  }
  char *v;
  line("nonewprivs", NULL, (v = status_field("NoNewPrivs")) ? v : "?");
  line("seccomp", NULL, (v = status_field("Seccomp")) ? v : "?");
  line("seccomp_filters", NULL, (v = status_field("Seccomp_filters")) ? v : "?");
}

/* ---- fds, pids ---- */

static int cmp_int(const void *a, const void *b)
{
  int x = *(const int *)a, y = *(const int *)b;
  return x < y ? -1 : x > y;
}

/* Numeric entries of a /proc directory, sorted; `skip` left out. */
static int list_numbers(const char *dir, int skip, int *out, int max)
{
  DIR *d = opendir(dir);
  int n = 0;
  if (!d)
    return -1;
  int own = dirfd(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL && n < max) {
    char *end;
    long v = strtol(de->d_name, &end, 10);
    if (*end || end == de->d_name || (int)v == skip || (skip == -2 && (int)v == own))
      continue;
    out[n++] = (int)v;
  }
  closedir(d);
  qsort(out, (size_t)n, sizeof *out, cmp_int);
  return n;
}

static void section_fds(void)
{
  static int fds[4096];
  int n = list_numbers("/proc/self/fd", -2, fds, 4096);
  if (n < 0) {
    /* no /proc: ask every descriptor */
    n = 0;
    for (int fd = 0; fd < 65536 && n < 4096; fd++)
      if (fcntl(fd, F_GETFD) >= 0)
        fds[n++] = fd;
  }
  int above = 0;
  for (int i = 0; i < n; i++) {
    char path[64], target[4096], key[16];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
    ssize_t len = readlink(path, target, sizeof target - 1);
    if (len < 0)
      snprintf(target, sizeof target, "?%s", errno_name(errno));
    else
      target[len] = '\0';
    snprintf(key, sizeof key, "%d", fds[i]);
    line("fd", key, target);
    above += fds[i] > 2;
  }
  printf("fdcount %d\n", above);
}

static void section_pids(void)
{
  static int pids[4096];
  int n = list_numbers("/proc", -1, pids, 4096);
  fputs("pids", stdout);
  for (int i = 0; i < n; i++)
    printf(" %d", pids[i]);
  putchar('\n');
  printf("self %d\n", (int)getpid());
  printf("session %d\n", getsid(0) == getpid());
}

static void section_proc1(void)
{
  char buf[4096];
  ssize_t n = readlink("/proc/1/exe", buf, sizeof buf - 1);
  if (n >= 0)
    buf[n] = '\0';
  line("proc1", "exe", n >= 0 ? buf : errno_name(errno));
  int fd = open("/proc/1/exe", O_RDONLY | O_CLOEXEC);
  line("proc1", "exe-open", fd >= 0 ? "OK" : errno_name(errno));
  if (fd >= 0)
    close(fd);
  n = readlink("/proc/1/root", buf, sizeof buf - 1);
  if (n >= 0)
    buf[n] = '\0';
  line("proc1", "root", n >= 0 ? buf : errno_name(errno));
  fd = open("/proc/1/environ", O_RDONLY | O_CLOEXEC);
  const char *r = fd < 0 ? errno_name(errno) : NULL;
  if (fd >= 0) {
    n = read(fd, buf, sizeof buf);
    r = n < 0 ? errno_name(errno) : "OK";
    close(fd);
  }
  line("proc1", "environ", r);
  DIR *d = opendir("/proc/1/fd");
  line("proc1", "fd", d ? "OK" : errno_name(errno));
  if (d)
    closedir(d);
  fd = open("/proc/1/cmdline", O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close(fd);
  if (n >= 0) {
    /* NUL-separated arguments; a rewritten title is NUL-padded */
    while (n > 0 && buf[n - 1] == '\0')
      n--;
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] == '\0')
        buf[i] = ' ';
    while (n > 0 && buf[n - 1] == ' ')
      buf[--n] = '\0';
  }
  line("proc1", "cmdline", n >= 0 ? buf : errno_name(errno));
}

/* ---- paths ---- */

static void mount_flags(const char *path, char *out, size_t len)
{
  struct statvfs sv;
  if (statvfs(path, &sv) < 0) {
    snprintf(out, len, "%s", errno == ENOENT ? "absent" : errno_name(errno));
    return;
  }
  snprintf(out, len, "%s%s%s%s", (sv.f_flag & ST_RDONLY) ? "ro" : "rw",
           (sv.f_flag & ST_NOSUID) ? ",nosuid" : "", (sv.f_flag & ST_NODEV) ? ",nodev" : "",
           (sv.f_flag & ST_NOEXEC) ? ",noexec" : "");
}

static void section_masked(void)
{
  static const char *const paths[] = {"/proc/kcore",
                                      "/proc/keys",
                                      "/proc/timer_list",
                                      "/proc/sched_debug",
                                      "/proc/latency_stats",
                                      "/proc/acpi",
                                      "/proc/scsi",
                                      "/proc/asound",
                                      "/proc/interrupts",
                                      "/sys/firmware",
                                      "/sys/devices/virtual/powercap"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    struct stat st;
    char v[128];
    if (lstat(paths[i], &st) < 0) {
      snprintf(v, sizeof v, "%s", errno == ENOENT ? "absent" : errno_name(errno));
    } else if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3) {
      snprintf(v, sizeof v, "devnull");
    } else if (S_ISDIR(st.st_mode)) {
      DIR *d = opendir(paths[i]);
      int n = 0;
      struct dirent *de;
      while (d && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
      char fl[64];
      mount_flags(paths[i], fl, sizeof fl);
      if (!d)
        snprintf(v, sizeof v, "exposed dir %s", errno_name(errno));
      else if (n == 0)
        snprintf(v, sizeof v, "emptydir %.2s", fl);
      else
        snprintf(v, sizeof v, "exposed dir %d entries", n);
      if (d)
        closedir(d);
    } else {
      /* what could be read of it */
      int fd = open(paths[i], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      char buf[4096];
      ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
      if (fd < 0 || n < 0)
        snprintf(v, sizeof v, "exposed file unreadable %s", errno_name(errno));
      else
        snprintf(v, sizeof v, "exposed file %zd bytes", n);
      if (fd >= 0)
        close(fd);
    }
    line("masked", paths[i], v);
  }
}

static void section_mounts(void)
{
  static const char *const paths[] = {
      "/",         "/tmp",      "/proc",    "/proc/sys",   "/proc/sysrq-trigger",
      "/proc/irq", "/proc/bus", "/proc/fs", "/sys",        "/sys/fs/cgroup",
      "/dev",      "/dev/shm",  "/dev/pts", "/dev/mqueue", "/scratch"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    char fl[64];
    mount_flags(paths[i], fl, sizeof fl);
    line("mount", paths[i], fl);
  }
}

/* Create (and remove) a file in a directory, or open a file for writing. */
static const char *try_write(const char *path)
{
  struct stat st;
  if (stat(path, &st) < 0)
    return errno == ENOENT ? "absent" : errno_name(errno);
  if (S_ISDIR(st.st_mode)) {
    char f[4200];
    snprintf(f, sizeof f, "%s/.sbx-probe-%d", strcmp(path, "/") ? path : "", (int)getpid());
    int fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
      return errno_name(errno);
    close(fd);
    unlink(f);
    return "OK";
  }
  int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return errno_name(errno);
  close(fd);
  return "OK";
}

static void section_writes(void)
{
  static const char *const paths[] = {"/",
                                      "/tmp",
                                      "/etc",
                                      "/dev",
                                      "/dev/shm",
                                      "/scratch",
                                      "/sys",
                                      "/sys/fs/cgroup",
                                      "/sys/kernel/uevent_helper",
                                      "/proc/sys",
                                      "/proc/sys/net/ipv4/ip_forward",
                                      "/proc/sys/kernel/hostname",
                                      "/proc/sysrq-trigger",
                                      "/proc/irq",
                                      "/proc/bus",
                                      "/proc/fs"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    line("write", paths[i], try_write(paths[i]));
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dev(const char *dir, int depth)
{
  DIR *d = opendir(dir);
  if (!d) {
    line("dev", dir, errno_name(errno));
    return;
  }
  char *names[512];
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL && n < 512)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      names[n++] = strdup(de->d_name);
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    char path[4200], v[4300];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat st;
    if (lstat(path, &st) < 0) {
      snprintf(v, sizeof v, "%s", errno_name(errno));
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      snprintf(v, sizeof v, "%s %u:%u", S_ISCHR(st.st_mode) ? "char" : "block", major(st.st_rdev),
               minor(st.st_rdev));
    } else if (S_ISLNK(st.st_mode)) {
      char t[4096];
      ssize_t len = readlink(path, t, sizeof t - 1);
      t[len < 0 ? 0 : len] = '\0';
      snprintf(v, sizeof v, "link %s", t);
    } else if (S_ISDIR(st.st_mode)) {
      snprintf(v, sizeof v, "dir");
    } else {
      snprintf(v, sizeof v, "%s",
               S_ISREG(st.st_mode)    ? "file"
               : S_ISFIFO(st.st_mode) ? "fifo"
               : S_ISSOCK(st.st_mode) ? "socket"
                                      : "other");
    }
    line("dev", path, v);
    if (depth > 0 && S_ISDIR(st.st_mode) && strcmp(names[i], "shm") && strcmp(names[i], "mqueue"))
      list_dev(path, depth - 1);
    free(names[i]);
  }
}

static void section_dev(void)
{
  list_dev("/dev", 1);
}

/* ---- terminal ---- */

static long do_unshare_user(const void *arg)
{
  (void)arg;
  return unshare(CLONE_NEWUSER);
}

static void section_tty(void)
{
  struct stat st;
  const char *type = "closed";
  if (fstat(0, &st) == 0)
    type = isatty(0)              ? "tty"
           : S_ISFIFO(st.st_mode) ? "pipe"
           : S_ISCHR(st.st_mode)  ? "char"
           : S_ISREG(st.st_mode)  ? "file"
           : S_ISSOCK(st.st_mode) ? "socket"
                                  : "other";
  line("stdin", NULL, type);
  char c = '#';
  line("tiocsti", NULL, ioctl(0, TIOCSTI, &c) == 0 ? "OK" : errno_name(errno));
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  line("ctty", NULL, fd >= 0 ? "OK" : errno_name(errno));
  if (fd >= 0)
    close(fd);
  line("userns", "nested", in_child(do_unshare_user, NULL));
}

/* ---- limits, cgroup, environment ---- */

static void section_rlimits(void)
{
  static const struct {
    int r;
    const char *n;
  } t[] = {
      {RLIMIT_AS, "AS"},           {RLIMIT_CORE, "CORE"},         {RLIMIT_CPU, "CPU"},
      {RLIMIT_DATA, "DATA"},       {RLIMIT_FSIZE, "FSIZE"},       {RLIMIT_LOCKS, "LOCKS"},
      {RLIMIT_MEMLOCK, "MEMLOCK"}, {RLIMIT_MSGQUEUE, "MSGQUEUE"}, {RLIMIT_NICE, "NICE"},
      {RLIMIT_NOFILE, "NOFILE"},   {RLIMIT_NPROC, "NPROC"},       {RLIMIT_RSS, "RSS"},
      {RLIMIT_RTPRIO, "RTPRIO"},   {RLIMIT_RTTIME, "RTTIME"},     {RLIMIT_SIGPENDING, "SIGPENDING"},
      {RLIMIT_STACK, "STACK"}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    struct rlimit rl;
    char v[64], s[24], h[24];
    if (getrlimit(t[i].r, &rl) < 0) {
      snprintf(v, sizeof v, "%s", errno_name(errno));
    } else {
      if (rl.rlim_cur == RLIM_INFINITY)
        snprintf(s, sizeof s, "unlimited");
      else
        snprintf(s, sizeof s, "%llu", (unsigned long long)rl.rlim_cur);
      if (rl.rlim_max == RLIM_INFINITY)
        snprintf(h, sizeof h, "unlimited");
      else
        snprintf(h, sizeof h, "%llu", (unsigned long long)rl.rlim_max);
      snprintf(v, sizeof v, "%s %s", s, h);
    }
    line("rlimit", t[i].n, v);
  }
}

static void read_one_line(const char *path, char *out, size_t len)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(out, len, "%s", errno == ENOENT ? "absent" : errno_name(errno));
    return;
  }
  ssize_t n = read(fd, out, len - 1);
  int e = errno;
  close(fd);
  if (n < 0) {
    snprintf(out, len, "%s", errno_name(e));
    return;
  }
  out[n] = '\0';
  while (n > 0 && out[n - 1] == '\n')
    out[--n] = '\0';
  for (char *p = out; *p; p++)
    if (*p == '\n')
      *p = ';';
}

static void section_cgroup(void)
{
  char v[1024];
  read_one_line("/proc/self/cgroup", v, sizeof v);
  line("cgroup", "self", v);
  static const char *const files[] = {"pids.max", "memory.max", "cpu.max"};
  for (size_t i = 0; i < 3; i++) {
    char p[64];
    snprintf(p, sizeof p, "/sys/fs/cgroup/%s", files[i]);
    read_one_line(p, v, sizeof v);
    line("cgroup", files[i], v);
  }
}

static void section_env(char **envp)
{
  for (char **e = envp; *e; e++)
    line("env", NULL, *e);
}

/* ---- extras ---- */

/* How much of the user's per-user kernel counts one sandbox can take:
 * inotify instances (up to 1024) and message queue bytes (mq_open of
 * 64 KiB queues, up to 64), held until both are counted. */
static void section_userquotas(void)
{
  int fds[1024];
  int n = 0, err = 0;
  for (; n < 1024; n++)
    if ((fds[n] = (int)syscall(SYS_inotify_init1, O_CLOEXEC)) < 0) {
      err = errno;
      break;
    }
  printf("userquota inotify %d %s\n", n, err ? errno_name(err) : "OK");
  int q = 0, qerr = 0, qfds[64];
  struct {
    long flags, maxmsg, msgsize, curmsgs, pad[4];
  } attr = {0, 8, 8192, 0, {0}};
  for (; q < 64; q++) {
    char name[64];
    snprintf(name, sizeof name, "sbx-probe-%d-%d", (int)getpid(), q);
    qfds[q] = (int)syscall(SYS_mq_open, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
    if (qfds[q] < 0) {
      qerr = errno;
      break;
    }
    syscall(SYS_mq_unlink, name);
  }
  printf("userquota mqueue %d %s\n", q, qerr ? errno_name(qerr) : "OK");
  for (int i = 0; i < q; i++)
    close(qfds[i]);
  for (int i = 0; i < n; i++)
    close(fds[i]);
}

static void section_forklimit(void)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    line("forklimit", NULL, errno_name(errno));
    return;
  }
  pid_t kids[64];
  int n = 0, err = 0;
  fflush(stdout);
  for (; n < 64; n++) {
    pid_t pid = fork();
    if (pid < 0) {
      err = errno;
      break;
    }
    if (pid == 0) {
      char c;
      close(p[1]);
      (void)!read(p[0], &c, 1); /* until the probe closes the pipe */
      _exit(0);
    }
    kids[n] = pid;
  }
  close(p[0]);
  close(p[1]);
  for (int i = 0; i < n; i++)
    waitpid(kids[i], NULL, 0);
  printf("forklimit %d %s\n", n, err ? errno_name(err) : "OK");
}

/* A leader per uid 1..m: it forks from the probe (uid 0), takes uid u and
 * forks k children; all wait until the probe closes the pipe. Each leader
 * reports every fork's result (0 or an errno) and -1 when it is done. Prints
 * how many processes existed at once and the first failure. */
static int forkuids_leader(int u, int k, int hold, int report)
{
  int r = setresuid((uid_t)u, (uid_t)u, (uid_t)u) < 0 ? errno : 0;
  int done = -1, n = 0;
  pid_t kids[k > 0 ? k : 1];
  if (r)
    (void)!write(report, &r, sizeof r);
  for (; !r && n < k; n++) {
    pid_t pid = fork();
    if (pid == 0) {
      char c;
      (void)!read(hold, &c, 1);
      _exit(0);
    }
    r = pid < 0 ? errno : 0;
    (void)!write(report, &r, sizeof r);
    if (pid < 0)
      break;
    kids[n] = pid;
  }
  (void)!write(report, &done, sizeof done);
  char c;
  (void)!read(hold, &c, 1);
  for (int i = 0; i < n; i++)
    waitpid(kids[i], NULL, 0);
  return 0;
}

static void section_forkuids(const char *arg)
{
  int m = 0, k = 0, hold[2], report[2];
  if (sscanf(arg, "%d,%d", &m, &k) != 2 || m < 1 || m > 64 || k < 0 || k > 1000 ||
      pipe2(hold, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
    line("forkuids", NULL, "EINVAL");
    return;
  }
  pid_t leaders[64];
  int total = 0, first = 0, nleaders = 0;
  fflush(stdout);
  for (int u = 1; u <= m && !first; u++) {
    pid_t pid = fork();
    if (pid < 0) {
      first = errno;
      break;
    }
    if (pid == 0) {
      close(hold[1]);
      close(report[0]);
      _exit(forkuids_leader(u, k, hold[0], report[1]));
    }
    leaders[nleaders++] = pid;
    total++;
    int r;
    while (read(report[0], &r, sizeof r) == sizeof r && r != -1) {
      if (r == 0)
        total++;
      else if (!first)
        first = r;
    }
  }
  close(hold[0]);
  close(hold[1]);
  close(report[0]);
  close(report[1]);
  for (int i = 0; i < nleaders; i++)
    waitpid(leaders[i], NULL, 0);
  printf("forkuids %d %s\n", total, first ? errno_name(first) : "OK");
}

static long do_memtouch(const void *arg)
{
  size_t mb = *(const size_t *)arg;
  for (size_t i = 0; i < mb; i++) {
    char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      return -1;
    memset(m, 0x5a, 1 << 20);
  }
  return 0;
}

static void section_memtouch(size_t mb)
{
  char key[32];
  snprintf(key, sizeof key, "%zu", mb);
  line("memtouch", key, in_child(do_memtouch, &mb));
}

int main(int argc, char **argv, char **envp)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* Sections that open nothing come first: fds before anything is opened. */
  static const char *const all[] = {"fds",      "ids",     "caps",   "pids", "proc1",
                                    "masked",   "mounts",  "writes", "dev",  "tty",
                                    "syscalls", "rlimits", "cgroup", "env"};
  const char *const *want = all;
  int nwant = (int)(sizeof all / sizeof all[0]);
  if (argc > 1) {
    want = (const char *const *)argv + 1;
    nwant = argc - 1;
  }
  printf("probe 1\n");
  /* fds first, before this program opens anything */
  for (int i = 0; i < nwant; i++)
    if (strcmp(want[i], "fds") == 0)
      section_fds();
  for (int i = 0; i < nwant; i++) {
    const char *s = want[i];
    if (strcmp(s, "fds") == 0)
      continue;
    else if (strcmp(s, "ids") == 0)
      section_ids();
    else if (strcmp(s, "caps") == 0)
      section_caps();
    else if (strcmp(s, "pids") == 0)
      section_pids();
    else if (strcmp(s, "proc1") == 0)
      section_proc1();
    else if (strcmp(s, "masked") == 0)
      section_masked();
    else if (strcmp(s, "mounts") == 0)
      section_mounts();
    else if (strcmp(s, "writes") == 0)
      section_writes();
    else if (strcmp(s, "dev") == 0)
      section_dev();
    else if (strcmp(s, "tty") == 0)
      section_tty();
    else if (strcmp(s, "syscalls") == 0)
      section_syscalls();
    else if (strcmp(s, "rlimits") == 0)
      section_rlimits();
    else if (strcmp(s, "cgroup") == 0)
      section_cgroup();
    else if (strcmp(s, "env") == 0)
      section_env(envp);
    else if (strcmp(s, "forklimit") == 0)
      section_forklimit();
    else if (strcmp(s, "userquotas") == 0)
      section_userquotas();
    else if (strncmp(s, "setid=", 6) == 0)
      section_setid(s + 6);
    else if (strncmp(s, "forkuids=", 9) == 0)
      section_forkuids(s + 9);
    else if (strncmp(s, "memtouch=", 9) == 0)
      section_memtouch((size_t)strtoul(s + 9, NULL, 10));
    else {
      fprintf(stderr, "probe: unknown section %s\n", s);
      return 2;
    }
  }
  printf("end\n");
  return 0;
}
