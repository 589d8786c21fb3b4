/* Compiling seccomp filters (in sbx-store; sbx loads the cached BPF).
 *
 * The default profile is Docker's default allowlist, with io_uring and the
 * clock-adjusting calls left out; everything else answers EPERM. Argument
 * rules compare only the low 32 bits where the kernel reads an int (socket's
 * family, personality's persona): a value with high bits set must not slip
 * past a 64-bit comparison. A JSON profile in Docker's/OCI's format is read
 * with json-glib and applied the same way. */
#include "sbx/image.h"
#include "sbx/json.h"
#include "sbx/oci.h"
#include "sbx/security.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const default_allow[] = {"accept",
                                            "accept4",
                                            "access",
                                            "adjtimex",
                                            "alarm",
                                            "bind",
                                            "brk",
                                            "capget",
                                            "capset",
                                            "chdir",
                                            "chown",
                                            "chown32",
                                            "clock_getres",
                                            "clock_getres_time64",
                                            "clock_gettime",
                                            "clock_gettime64",
                                            "clock_nanosleep",
                                            "clock_nanosleep_time64",
                                            "close",
                                            "close_range",
                                            "connect",
                                            "copy_file_range",
                                            "dup",
                                            "dup2",
                                            "dup3",
                                            "epoll_create",
                                            "epoll_create1",
                                            "epoll_ctl",
                                            "epoll_ctl_old",
                                            "epoll_pwait",
                                            "epoll_pwait2",
                                            "epoll_wait",
                                            "epoll_wait_old",
                                            "eventfd",
                                            "eventfd2",
                                            "execve",
                                            "execveat",
                                            "exit",
                                            "exit_group",
                                            "faccessat",
                                            "faccessat2",
                                            "fadvise64",
                                            "fadvise64_64",
                                            "fallocate",
                                            "fanotify_mark",
                                            "fchdir",
                                            "fchown",
                                            "fchown32",
                                            "fchownat",
                                            "fcntl",
                                            "fcntl64",
                                            "fdatasync",
                                            "fgetxattr",
                                            "flistxattr",
                                            "flock",
                                            "fork",
                                            "fremovexattr",
                                            "fsetxattr",
                                            "fstat",
                                            "fstat64",
                                            "fstatat64",
                                            "fstatfs",
                                            "fstatfs64",
                                            "fsync",
                                            "ftruncate",
                                            "ftruncate64",
                                            "futex",
                                            "futex_time64",
                                            "futex_waitv",
                                            "futimesat",
                                            "getcpu",
                                            "getcwd",
                                            "getdents",
                                            "getdents64",
                                            "getegid",
                                            "getegid32",
                                            "geteuid",
                                            "geteuid32",
                                            "getgid",
                                            "getgid32",
                                            "getgroups",
                                            "getgroups32",
                                            "getitimer",
                                            "getpeername",
                                            "getpgid",
                                            "getpgrp",
                                            "getpid",
                                            "getppid",
                                            "getpriority",
                                            "getrandom",
                                            "getresgid",
                                            "getresgid32",
                                            "getresuid",
                                            "getresuid32",
                                            "getrlimit",
                                            "get_robust_list",
                                            "getrusage",
                                            "getsid",
                                            "getsockname",
                                            "getsockopt",
                                            "get_thread_area",
                                            "gettid",
                                            "gettimeofday",
                                            "getuid",
                                            "getuid32",
                                            "getxattr",
                                            "inotify_add_watch",
                                            "inotify_init",
                                            "inotify_init1",
                                            "inotify_rm_watch",
                                            "io_cancel",
                                            "ioctl",
                                            "io_destroy",
                                            "io_getevents",
                                            "io_pgetevents",
                                            "io_pgetevents_time64",
                                            "ioprio_get",
                                            "ioprio_set",
                                            "io_setup",
                                            "io_submit",
                                            "ipc",
                                            "kill",
                                            "landlock_add_rule",
                                            "landlock_create_ruleset",
                                            "landlock_restrict_self",
                                            "lchown",
                                            "lchown32",
                                            "lgetxattr",
                                            "link",
                                            "linkat",
                                            "listen",
                                            "listxattr",
                                            "llistxattr",
                                            "_llseek",
                                            "lremovexattr",
                                            "lseek",
                                            "lsetxattr",
                                            "lstat",
                                            "lstat64",
                                            "madvise",
                                            "membarrier",
                                            "memfd_create",
                                            "memfd_secret",
                                            "mincore",
                                            "mkdir",
                                            "mkdirat",
                                            "mlock",
                                            "mlock2",
                                            "mlockall",
                                            "mmap",
                                            "mmap2",
                                            "mprotect",
                                            "mq_getsetattr",
                                            "mq_notify",
                                            "mq_open",
                                            "mq_timedreceive",
                                            "mq_timedreceive_time64",
                                            "mq_timedsend",
                                            "mq_timedsend_time64",
                                            "mq_unlink",
                                            "mremap",
                                            "msgctl",
                                            "msgget",
                                            "msgrcv",
                                            "msgsnd",
                                            "msync",
                                            "munlock",
                                            "munlockall",
                                            "munmap",
                                            "name_to_handle_at",
                                            "nanosleep",
                                            "newfstatat",
                                            "_newselect",
                                            "pause",
                                            "pidfd_open",
                                            "pidfd_send_signal",
                                            "pipe",
                                            "pipe2",
                                            "pkey_alloc",
                                            "pkey_free",
                                            "pkey_mprotect",
                                            "poll",
                                            "ppoll",
                                            "ppoll_time64",
                                            "prctl",
                                            "pread64",
                                            "preadv",
                                            "preadv2",
                                            "prlimit64",
                                            "process_mrelease",
                                            "pselect6",
                                            "pselect6_time64",
                                            "pwrite64",
                                            "pwritev",
                                            "pwritev2",
                                            "read",
                                            "readahead",
                                            "readlink",
                                            "readlinkat",
                                            "readv",
                                            "recv",
                                            "recvfrom",
                                            "recvmmsg",
                                            "recvmmsg_time64",
                                            "recvmsg",
                                            "remap_file_pages",
                                            "removexattr",
                                            "rename",
                                            "renameat",
                                            "renameat2",
                                            "restart_syscall",
                                            "rmdir",
                                            "rseq",
                                            "rt_sigaction",
                                            "rt_sigpending",
                                            "rt_sigprocmask",
                                            "rt_sigqueueinfo",
                                            "rt_sigreturn",
                                            "rt_sigsuspend",
                                            "rt_sigtimedwait",
                                            "rt_sigtimedwait_time64",
                                            "rt_tgsigqueueinfo",
                                            "sched_getaffinity",
                                            "sched_getattr",
                                            "sched_getparam",
                                            "sched_get_priority_max",
                                            "sched_get_priority_min",
                                            "sched_getscheduler",
                                            "sched_rr_get_interval",
                                            "sched_rr_get_interval_time64",
                                            "sched_setaffinity",
                                            "sched_setattr",
                                            "sched_setparam",
                                            "sched_setscheduler",
                                            "sched_yield",
                                            "seccomp",
                                            "select",
                                            "semctl",
                                            "semget",
                                            "semop",
                                            "semtimedop",
                                            "semtimedop_time64",
                                            "send",
                                            "sendfile",
                                            "sendfile64",
                                            "sendmmsg",
                                            "sendmsg",
                                            "sendto",
                                            "setfsgid",
                                            "setfsgid32",
                                            "setfsuid",
                                            "setfsuid32",
                                            "setgid",
                                            "setgid32",
                                            "setgroups",
                                            "setgroups32",
                                            "setitimer",
                                            "setpgid",
                                            "setpriority",
                                            "setregid",
                                            "setregid32",
                                            "setresgid",
                                            "setresgid32",
                                            "setresuid",
                                            "setresuid32",
                                            "setreuid",
                                            "setreuid32",
                                            "setrlimit",
                                            "set_robust_list",
                                            "setsid",
                                            "setsockopt",
                                            "set_thread_area",
                                            "set_tid_address",
                                            "setuid",
                                            "setuid32",
                                            "setxattr",
                                            "shmat",
                                            "shmctl",
                                            "shmdt",
                                            "shmget",
                                            "shutdown",
                                            "sigaltstack",
                                            "signalfd",
                                            "signalfd4",
                                            "sigprocmask",
                                            "sigreturn",
                                            "socketpair",
                                            "splice",
                                            "stat",
                                            "stat64",
                                            "statfs",
                                            "statfs64",
                                            "statx",
                                            "symlink",
                                            "symlinkat",
                                            "sync",
                                            "sync_file_range",
                                            "syncfs",
                                            "sysinfo",
                                            "tee",
                                            "tgkill",
                                            "time",
                                            "timer_create",
                                            "timer_delete",
                                            "timer_getoverrun",
                                            "timer_gettime",
                                            "timer_gettime64",
                                            "timer_settime",
                                            "timer_settime64",
                                            "timerfd_create",
                                            "timerfd_gettime",
                                            "timerfd_gettime64",
                                            "timerfd_settime",
                                            "timerfd_settime64",
                                            "times",
                                            "tkill",
                                            "truncate",
                                            "truncate64",
                                            "ugetrlimit",
                                            "umask",
                                            "uname",
                                            "unlink",
                                            "unlinkat",
                                            "utime",
                                            "utimensat",
                                            "utimensat_time64",
                                            "utimes",
                                            "vfork",
                                            "vmsplice",
                                            "wait4",
                                            "waitid",
                                            "waitpid",
                                            "write",
                                            "writev",
                                            "process_vm_readv",
                                            "process_vm_writev",
                                            "ptrace",
                                            "arch_prctl",
                                            "modify_ldt",
                                            NULL};

/* Allowed only with CAP_SYS_ADMIN (as Docker does). */
static const char *const admin_calls[] = {"bpf",           "clone",           "clone3",
                                          "fanotify_init", "fsconfig",        "fsmount",
                                          "fsopen",        "fspick",          "lookup_dcookie",
                                          "mount",         "mount_setattr",   "move_mount",
                                          "open_tree",     "perf_event_open", "quotactl",
                                          "quotactl_fd",   "setdomainname",   "sethostname",
                                          "setns",         "syslog",          "umount",
                                          "umount2",       "unshare",         NULL};

static gboolean has_cap(SbxCapSet caps, int cap)
{
  return (caps & (1ull << cap)) != 0;
}

static int resolve(const char *name)
{
  return seccomp_syscall_resolve_name(name);
}

/* Unknown names (other architectures' calls) are skipped, like Docker does. */
static gboolean add_rule(scmp_filter_ctx ctx, guint32 action, const char *name, guint n,
                         const struct scmp_arg_cmp *args, GError **err)
{
  int nr = resolve(name);
  if (nr == __NR_SCMP_ERROR)
    return TRUE;
  int r = seccomp_rule_add_array(ctx, action, nr, n, args);
  if (r < 0 && r != -EEXIST)
    return sbx_fail_errnum(err, -r, "seccomp rule for %s", name);
  return TRUE;
}

#if defined(__x86_64__)
/* Whether a child's call through a compat ABI comes back: asked in a child,
 * which a filter of ours or of an outer runtime may kill for the attempt,
 * and which the kernel kills with SIGSEGV where the ABI has no entry. */
static gboolean child_says_yes(gboolean i386)
{
  pid_t pid = fork();
  if (pid == 0) {
    long r;
    /* The fault kills it: no core (its memory is the compiler's), no
     * sanitizer's handler (the kernel's SIG_DFL, set past its interceptor),
     * no report. */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct {
      void *handler;
      unsigned long flags;
      void *restorer;
      unsigned long mask;
    } dfl = {SIG_DFL, 0, NULL, 0};
    syscall(SYS_rt_sigaction, SIGSEGV, &dfl, NULL, sizeof dfl.mask);
    close(STDERR_FILENO);
    if (i386) {
      /* i386's getpid (20) by int $0x80; the kernel clears r8-r11 */
      __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
      r = (int)r;
    } else {
      r = syscall(__X32_SYSCALL_BIT | __NR_getpid);
    }
    _exit(r > 0 ? 0 : 1);
  }
  int status = -1;
  pid_t r = -1;
  while (pid > 0 && (r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
    ;
  /* No: the child said so (1), or the call killed it (no entry: SIGSEGV;
   * an outer filter: SIGSYS). Anything else, the question was never
   * answered (no fork, no wait: SIGCHLD ignored): yes, the ABI's rules go
   * in (a larger filter; a missing ABI would only ever be refused). */
  if (r != pid)
    return TRUE;
  if (WIFEXITED(status))
    return WEXITSTATUS(status) != 1;
  return !WIFSIGNALED(status) || (WTERMSIG(status) != SIGSEGV && WTERMSIG(status) != SIGSYS);
}

/* Whether this kernel runs x32 system calls at all: most do not (Debian's
 * needs syscall.x32=y on its command line; Ubuntu's and Fedora's have no
 * CONFIG_X86_X32_ABI). */
static gboolean kernel_runs_x32(void)
{
  static int answer = -1;
  if (answer < 0)
    answer = child_says_yes(FALSE);
  return answer;
}

/* Whether it runs i386 ones: not with ia32_emulation=0 (or a kernel built
 * without CONFIG_IA32_EMULATION), where int $0x80 faults before any filter
 * sees it and 32-bit programs do not load. */
static gboolean kernel_runs_i386(void)
{
  static int answer = -1;
  if (answer < 0)
    answer = child_says_yes(TRUE);
  return answer;
}
#endif

/* The compat ABIs a program may call the kernel through. Each adds a copy of
 * the rules to the filter, and the kernel converts and JITs every
 * instruction at each start (the default has 887 instructions with i386
 * alone, 1260 with x32 too, 459 with neither): only those the kernel runs.
 * Where it runs none, a call through one meets the bad-architecture action,
 * ENOSYS: the kernel's own answer for x32. Both are boot-time settings
 * (syscall.x32=, ia32_emulation=), so a cached filter is keyed by the boot
 * (src/sandbox/seccomp.c); a filter cached under another boot would be no
 * way around this anyway: without an ABI it refuses that ABI's calls, with
 * it it holds their rules. */
static gboolean add_arches(scmp_filter_ctx ctx, GError **err)
{
#if defined(__x86_64__)
  gboolean x32 = kernel_runs_x32();
  const guint32 extra[] = {kernel_runs_i386() ? SCMP_ARCH_X86 : 0, x32 ? SCMP_ARCH_X32 : 0};
  if (!x32 && seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS)) < 0)
    return sbx_fail(err, SBX_ERROR_FAILED, "seccomp: the bad-architecture action");
#elif defined(__aarch64__)
  const guint32 extra[] = {SCMP_ARCH_ARM};
#else
  const guint32 extra[] = {0};
#endif
  for (guint i = 0; i < G_N_ELEMENTS(extra); i++) {
    int r = extra[i] ? seccomp_arch_add(ctx, extra[i]) : 0;
    if (r < 0 && r != -EEXIST)
      return sbx_fail_errnum(err, -r, "seccomp: add compat architecture");
  }
  return TRUE;
}

/* Issue 9: files in a -v volume are the host's, owned by the invoking user
 * or one of their subordinate ids. A setuid or setgid file left there runs
 * as that id for any local user who can reach it (no_new_privs protects only
 * the inside). So every call that sets a file's mode is allowed only without
 * S_ISUID and S_ISGID (flatpak refuses them the same way); otherwise the
 * default action answers EPERM. The kernel reads the mode as umode_t and the
 * flags as int: the mask covers only low bits, so high bits cannot hide the
 * request. open and openat are allowed as well when they create nothing (no
 * O_CREAT, no O_TMPFILE: the mode is ignored). openat2 carries its mode in
 * struct open_how, in memory seccomp cannot read: it answers ENOSYS, and
 * callers fall back to openat (as for clone3). mkdir ignores S_ISUID and
 * S_ISGID in its mode; a directory's set-group-id bit can come only from
 * chmod (refused) or its parent. */
static gboolean setid_modes(scmp_filter_ctx ctx, GError **err)
{
  static const struct {
    const char *name;
    int fallback; /* the number, if libseccomp does not know the name */
    unsigned mode_arg;
    int flags_arg;
  } calls[] = {
      {"chmod", 0, 1, -1},       {"fchmod", 0, 1, -1}, {"fchmodat", 0, 2, -1},
      {"fchmodat2", 452, 2, -1}, {"creat", 0, 1, -1},  {"mknod", 0, 1, -1},
      {"mknodat", 0, 2, -1},     {"open", 0, 2, 1},    {"openat", 0, 3, 2},
  };
  const scmp_datum_t creates = O_CREAT | (O_TMPFILE & ~O_DIRECTORY);
  for (guint i = 0; i < G_N_ELEMENTS(calls); i++) {
    /* Negative numbers are libseccomp's for calls only a compat ABI has. */
    int nr = resolve(calls[i].name);
    gboolean by_number = nr == __NR_SCMP_ERROR && calls[i].fallback > 0;
    if (by_number)
      nr = calls[i].fallback;
    else if (nr == __NR_SCMP_ERROR)
      continue;
    struct scmp_arg_cmp mode = {calls[i].mode_arg, SCMP_CMP_MASKED_EQ, S_ISUID | S_ISGID, 0};
    int r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &mode);
    if (r == 0 && calls[i].flags_arg >= 0) {
      struct scmp_arg_cmp flags = {(unsigned)calls[i].flags_arg, SCMP_CMP_MASKED_EQ, creates, 0};
      r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &flags);
    }
    /* A number libseccomp cannot place on every architecture stays refused. */
    if (r < 0 && r != -EEXIST && !by_number)
      return sbx_fail_errnum(err, -r, "seccomp rule for %s", calls[i].name);
  }
  return add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "openat2", 0, NULL, err);
}

static gboolean default_profile(scmp_filter_ctx ctx, SbxCapSet caps, GError **err)
{
  for (const char *const *n = default_allow; *n; n++)
    if (!add_rule(ctx, SCMP_ACT_ALLOW, *n, 0, NULL, err))
      return FALSE;
  if (!setid_modes(ctx, err))
    return FALSE;
  /* socket and i386's socketcall: the families are refused by the second
   * filter (families_filter), which can say "deny these" simply. */
  if (!add_rule(ctx, SCMP_ACT_ALLOW, "socket", 0, NULL, err) ||
      !add_rule(ctx, SCMP_ACT_ALLOW, "socketcall", 0, NULL, err))
    return FALSE;
  static const guint64 personas[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
  for (guint i = 0; i < G_N_ELEMENTS(personas); i++) {
    struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, personas[i]);
    if (!add_rule(ctx, SCMP_ACT_ALLOW, "personality", 1, &a, err))
      return FALSE;
  }
  if (has_cap(caps, CAP_SYS_ADMIN)) {
    for (const char *const *n = admin_calls; *n; n++)
      if (!add_rule(ctx, SCMP_ACT_ALLOW, *n, 0, NULL, err))
        return FALSE;
  } else {
    /* clone without namespace flags only; clone3 hides its flags in memory
     * seccomp cannot read, so it answers ENOSYS and libc falls back to clone. */
    struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, 0x7E020000u, 0);
    if (!add_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &a, err) ||
        !add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err))
      return FALSE;
  }
  static const struct {
    int cap;
    const char *calls[7];
  } by_cap[] = {
      {CAP_SYS_CHROOT, {"chroot"}},
      {CAP_SYS_BOOT, {"reboot"}},
      {CAP_SYS_MODULE, {"delete_module", "init_module", "finit_module"}},
      {CAP_SYS_PACCT, {"acct"}},
      {CAP_SYS_PTRACE, {"kcmp", "pidfd_getfd", "process_madvise"}},
      {CAP_SYS_RAWIO, {"iopl", "ioperm"}},
      {CAP_SYS_TIME, {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
      {CAP_SYS_TTY_CONFIG, {"vhangup"}},
      {CAP_SYS_NICE, {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
      {CAP_SYSLOG, {"syslog"}},
      {CAP_DAC_READ_SEARCH, {"open_by_handle_at"}},
  };
  for (guint i = 0; i < G_N_ELEMENTS(by_cap); i++)
    for (guint j = 0; has_cap(caps, by_cap[i].cap) && j < 7 && by_cap[i].calls[j]; j++)
      if (!add_rule(ctx, SCMP_ACT_ALLOW, by_cap[i].calls[j], 0, NULL, err))
        return FALSE;
  return TRUE;
}

/* ---- Docker / OCI JSON profiles ---- */

static gboolean parse_action(const char *name, gint64 errno_ret, guint32 *out, GError **err)
{
  int e = errno_ret > 0 && errno_ret < 4096 ? (int)errno_ret : EPERM;
  if (!name)
    return sbx_fail(err, SBX_ERROR_INVALID, "seccomp profile: a rule has no action");
  if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
    *out = SCMP_ACT_ALLOW;
  else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
    *out = SCMP_ACT_ERRNO(e);
  else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
    *out = SCMP_ACT_KILL_THREAD;
  else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
    *out = SCMP_ACT_KILL_PROCESS;
  else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
    *out = SCMP_ACT_TRAP;
  else if (strcmp(name, "SCMP_ACT_LOG") == 0)
    *out = SCMP_ACT_LOG;
  else if (strcmp(name, "SCMP_ACT_TRACE") == 0)
    *out = SCMP_ACT_ERRNO(ENOSYS); /* no tracer here: as if untraced */
  else
    return sbx_fail(err, SBX_ERROR_INVALID, "seccomp profile: unsupported action %s", name);
  return TRUE;
}

static gboolean parse_op(const char *name, enum scmp_compare *out, GError **err)
{
  static const struct {
    const char *n;
    enum scmp_compare op;
  } ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
             {"SCMP_CMP_LT", SCMP_CMP_LT},
             {"SCMP_CMP_LE", SCMP_CMP_LE},
             {"SCMP_CMP_EQ", SCMP_CMP_EQ},
             {"SCMP_CMP_GE", SCMP_CMP_GE},
             {"SCMP_CMP_GT", SCMP_CMP_GT},
             {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  for (guint i = 0; i < G_N_ELEMENTS(ops); i++)
    if (g_strcmp0(name, ops[i].n) == 0) {
      *out = ops[i].op;
      return TRUE;
    }
  return sbx_fail(err, SBX_ERROR_INVALID, "seccomp profile: unknown operator %s",
                  name ? name : "(none)");
}

static gboolean kernel_at_least(const char *version)
{
  struct utsname u;
  guint want[2] = {0}, have[2] = {0};
  if (uname(&u) < 0 || sscanf(version, "%u.%u", &want[0], &want[1]) < 1 ||
      sscanf(u.release, "%u.%u", &have[0], &have[1]) < 2)
    return FALSE;
  return have[0] > want[0] || (have[0] == want[0] && have[1] >= want[1]);
}

static gboolean strv_has(char **v, const char *s)
{
  return v && g_strv_contains((const char *const *)v, s);
}

static gboolean caps_all(char **names, SbxCapSet caps)
{
  for (char **n = names; n && *n; n++) {
    SbxCapSet bit = 0;
    char *one[] = {*n, NULL};
    if (!sbx_caps_adjust(&bit, one, NULL, NULL) || !(caps & bit))
      return FALSE;
  }
  return TRUE;
}

static gboolean caps_any(char **names, SbxCapSet caps)
{
  for (char **n = names; n && *n; n++) {
    SbxCapSet bit = 0;
    char *one[] = {*n, NULL};
    if (sbx_caps_adjust(&bit, one, NULL, NULL) && (caps & bit))
      return TRUE;
  }
  return FALSE;
}

/* includes: every condition holds; excludes: any condition holds. */
static gboolean rule_applies(JsonObject *rule, SbxCapSet caps, GError **err)
{
  const char *arch = sbx_image_host_arch();
  JsonNode *in = json_object_get_member(rule, "includes");
  if (in && JSON_NODE_HOLDS_OBJECT(in)) {
    JsonObject *o = json_node_get_object(in);
    g_auto(GStrv) arches = NULL, capv = NULL;
    const char *min = NULL;
    if (!sbx_json_get_strv(o, "arches", &arches, "seccomp includes", err) ||
        !sbx_json_get_strv(o, "caps", &capv, "seccomp includes", err) ||
        !sbx_json_get_string(o, "minKernel", &min, "seccomp includes", err))
      return FALSE;
    if ((arches && arches[0] && !strv_has(arches, arch)) || !caps_all(capv, caps) ||
        (min && !kernel_at_least(min)))
      return FALSE;
  }
  JsonNode *ex = json_object_get_member(rule, "excludes");
  if (ex && JSON_NODE_HOLDS_OBJECT(ex)) {
    JsonObject *o = json_node_get_object(ex);
    g_auto(GStrv) arches = NULL, capv = NULL;
    const char *min = NULL;
    if (!sbx_json_get_strv(o, "arches", &arches, "seccomp excludes", err) ||
        !sbx_json_get_strv(o, "caps", &capv, "seccomp excludes", err) ||
        !sbx_json_get_string(o, "minKernel", &min, "seccomp excludes", err))
      return FALSE;
    if (strv_has(arches, arch) || caps_any(capv, caps) || (min && kernel_at_least(min)))
      return FALSE;
  }
  return TRUE;
}

static gboolean parse_args(JsonObject *rule, struct scmp_arg_cmp *args, guint *n, GError **err)
{
  *n = 0;
  JsonNode *an = json_object_get_member(rule, "args");
  if (!an || JSON_NODE_HOLDS_NULL(an))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY(an) || json_array_get_length(json_node_get_array(an)) > 6)
    return sbx_fail(err, SBX_ERROR_INVALID, "seccomp profile: args must be at most 6 comparisons");
  JsonArray *a = json_node_get_array(an);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonObject *c = sbx_json_object(json_array_get_element(a, i), "seccomp args", err);
    gint64 index = -1, value = 0, two = 0;
    const char *op = NULL;
    if (!c || !sbx_json_get_int(c, "index", &index, "seccomp args", err) ||
        !sbx_json_get_int(c, "value", &value, "seccomp args", err) ||
        !sbx_json_get_int(c, "valueTwo", &two, "seccomp args", err) ||
        !sbx_json_get_string(c, "op", &op, "seccomp args", err))
      return FALSE;
    if (index < 0 || index > 5)
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "seccomp profile: argument index %" G_GINT64_FORMAT " out of range", index);
    enum scmp_compare cmp = SCMP_CMP_EQ;
    if (!parse_op(op, &cmp, err))
      return FALSE;
    args[(*n)++] =
        (struct scmp_arg_cmp){(unsigned)index, cmp, (scmp_datum_t)value, (scmp_datum_t)two};
  }
  return TRUE;
}

/* What a profile says of socket (0) and socketpair (1), for socketcall_filter;
 * and the rules added so far, by call (profile_rule). */
typedef struct {
  gboolean by_args[2]; /* some rule compares an argument */
  gboolean allowed[2]; /* some rule allows it, whatever the arguments */
  gboolean refused[2]; /* some rule refuses it, whatever the arguments */
  GHashTable *by_nr;   /* syscall number -> GPtrArray of ProfileRule */
} SocketRules;

/* A profile's rule as added, for profile_rule's checks (the same rule again,
 * libseccomp's _db_tree_add slip). */
typedef struct {
  guint32 action;
  guint n;
  struct scmp_arg_cmp args[6];
} ProfileRule;

/* Two rules for one call, with different actions, the same comparisons but
 * the last, and last ones on the same argument, both SCMP_CMP_NE or both
 * SCMP_CMP_LT/LE, of values with the same upper 32 bits: libseccomp up to
 * 2.6.1 (upstream 5404f5c fixes it) compiles the pair with the earlier
 * rule's action where both match, on 64-bit architectures, whichever the
 * order; which of the two a profile means is unclear anyway. */
static gboolean rules_slip(const ProfileRule *a, const ProfileRule *b)
{
  if (a->action == b->action || a->n != b->n || a->n == 0)
    return FALSE;
  guint last = a->n - 1;
  for (guint i = 0; i < last; i++)
    if (memcmp(&a->args[i], &b->args[i], sizeof a->args[i]) != 0)
      return FALSE;
  const struct scmp_arg_cmp *x = &a->args[last], *y = &b->args[last];
  gboolean ne = x->op == SCMP_CMP_NE && y->op == SCMP_CMP_NE;
  gboolean lt = (x->op == SCMP_CMP_LT || x->op == SCMP_CMP_LE) &&
                (y->op == SCMP_CMP_LT || y->op == SCMP_CMP_LE);
  return x->arg == y->arg && (ne || lt) && (x->datum_a >> 32) == (y->datum_a >> 32);
}

static const char *const socket_calls[2] = {"socket", "socketpair"};

static void note_socket_rule(SocketRules *seen, const char *name, guint32 action, guint nargs)
{
  for (guint i = 0; i < G_N_ELEMENTS(socket_calls); i++) {
    if (strcmp(name, socket_calls[i]) != 0)
      continue;
    if (nargs > 0)
      seen->by_args[i] = TRUE;
    else if (action == SCMP_ACT_ALLOW || action == SCMP_ACT_LOG)
      seen->allowed[i] = TRUE;
    else
      seen->refused[i] = TRUE;
  }
}

/* A profile's rule. libseccomp answers EEXIST when the rule collides with
 * one it has for the call, which it then keeps alone, on every architecture
 * of the filter (a rule is added to all or none): two socket rules with
 * arguments and different actions do on i386, where socket goes through
 * socketcall and its arguments cannot be compared. Taken as success, the
 * later rule was lost on x86_64 too (a socket family the profile refuses
 * was allowed). So the same rule twice passes, and anything else fails
 * closed: the profile is refused, as runc refuses it. */
static gboolean profile_rule(scmp_filter_ctx ctx, SocketRules *seen, guint32 action,
                             const char *name, guint n, const struct scmp_arg_cmp *args,
                             GError **err)
{
  int nr = resolve(name);
  if (nr == __NR_SCMP_ERROR)
    return TRUE;
  ProfileRule *rule = g_new0(ProfileRule, 1);
  rule->action = action;
  rule->n = MIN(n, G_N_ELEMENTS(rule->args));
  memcpy(rule->args, args, rule->n * sizeof *args);
  GPtrArray *same = g_hash_table_lookup(seen->by_nr, GINT_TO_POINTER(nr));
  if (!same) {
    same = g_ptr_array_new_with_free_func(g_free);
    g_hash_table_insert(seen->by_nr, GINT_TO_POINTER(nr), same);
  }
  gboolean again = FALSE;
  for (guint i = 0; i < same->len; i++) {
    const ProfileRule *earlier = g_ptr_array_index(same, i);
    again |= earlier->action == rule->action && earlier->n == rule->n &&
             memcmp(earlier->args, rule->args, rule->n * sizeof *rule->args) == 0;
    if (rules_slip(earlier, rule)) {
      g_free(rule);
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "rules for %s compare argument %u with overlapping SCMP_CMP_NE or "
                      "SCMP_CMP_LT/LE and different actions, which libseccomp compiles wrongly: "
                      "refusing the profile",
                      name, args[n - 1].arg);
    }
  }
  g_ptr_array_add(same, rule);
  int r = seccomp_rule_add_array(ctx, action, nr, n, args);
  if (r == -EEXIST && again)
    return TRUE;
  if (r == -EEXIST)
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "a rule for %s conflicts with an earlier one for it that "
                    "libseccomp keeps instead (on i386, socket's arguments cannot be compared): "
                    "refusing the profile",
                    name);
  if (r < 0)
    return sbx_fail_errnum(err, -r, "seccomp rule for %s", name);
  return TRUE;
}

static gboolean json_rule(scmp_filter_ctx ctx, JsonObject *rule, SbxCapSet caps, SocketRules *seen,
                          GError **err)
{
  if (!rule_applies(rule, caps, err))
    return err == NULL || *err == NULL;
  const char *action_name = NULL, *single = NULL;
  gint64 errno_ret = EPERM;
  g_auto(GStrv) names = NULL;
  struct scmp_arg_cmp args[6];
  guint nargs;
  guint32 action;
  if (!sbx_json_get_string(rule, "action", &action_name, "seccomp rule", err) ||
      !sbx_json_get_int(rule, "errnoRet", &errno_ret, "seccomp rule", err) ||
      !sbx_json_get_strv(rule, "names", &names, "seccomp rule", err) ||
      !sbx_json_get_string(rule, "name", &single, "seccomp rule", err) ||
      !parse_action(action_name, errno_ret, &action, err) || !parse_args(rule, args, &nargs, err))
    return FALSE;
  for (char **n = names; n && *n; n++) {
    note_socket_rule(seen, *n, action, nargs);
    if (!profile_rule(ctx, seen, action, *n, nargs, args, err))
      return FALSE;
  }
  if (single)
    note_socket_rule(seen, single, action, nargs);
  return !single || profile_rule(ctx, seen, action, single, nargs, args, err);
}

/* A profile's second filter, for i386's socketcall multiplexer: its
 * socket/socketpair arguments sit in memory, where seccomp cannot look, and
 * libseccomp lets socketcall(SYS_SOCKET) through whatever the family when a
 * rule allows socket for some families, as it does when socketcall itself is
 * allowed and socket is not. So socketcall(SYS_SOCKET) and
 * socketcall(SYS_SOCKETPAIR) are refused unless the profile allows socket
 * (socketpair) whatever its arguments: by a rule without args, or by an
 * allowing default action no rule of that call overrides. Where the profile
 * refuses the sub-call itself, its answer stands (this filter is installed
 * first); where it would let it through, the refusal is its default action
 * when that is SCMP_ACT_ERRNO (its defaultErrnoRet), else EPERM. Other
 * sub-calls are left to the profile. i386 glibc calls
 * socket(2) and socketpair(2) directly on any kernel since 4.3. *out stays
 * NULL when nothing needs refusing. */
static gboolean socketcall_filter(scmp_filter_ctx main_ctx, const SocketRules *seen,
                                  const char *def, guint32 def_action, scmp_filter_ctx *out,
                                  GError **err)
{
  static const guint64 subcall[2] = {1 /* SYS_SOCKET */, 8 /* SYS_SOCKETPAIR */};
  gboolean def_allows = def_action == SCMP_ACT_ALLOW || def_action == SCMP_ACT_LOG;
  guint32 refuse = g_strcmp0(def, "SCMP_ACT_ERRNO") == 0 ? def_action : SCMP_ACT_ERRNO(EPERM);
  /* Wherever the profile's filter takes i386 calls (its "architectures",
   * or sbx's own set), whatever this kernel was found to run. Every other
   * ABI is the profile's filter's alone: allowed here. */
#if defined(__x86_64__)
  const gboolean has_i386 = seccomp_arch_exist(main_ctx, SCMP_ARCH_X86) == 0;
#elif defined(__i386__)
  const gboolean has_i386 = TRUE;
#else
  const gboolean has_i386 = FALSE; /* no i386 ABI here: nothing to add */
#endif
  scmp_filter_ctx ctx = NULL;
  gboolean ok = TRUE;
  for (guint i = 0; has_i386 && ok && i < G_N_ELEMENTS(subcall); i++) {
    gboolean open = !seen->by_args[i] && !seen->refused[i] && (seen->allowed[i] || def_allows);
    if (open)
      continue;
    if (!ctx) {
      ctx = seccomp_init(SCMP_ACT_ALLOW);
#if defined(__x86_64__)
      int r = ctx ? seccomp_arch_add(ctx, SCMP_ARCH_X86) : -ENOMEM;
      ok = (r == 0 || r == -EEXIST) &&
           seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW) == 0;
      if (!ok)
        sbx_fail(err, SBX_ERROR_FAILED, "seccomp: the socketcall filter's architectures");
#else
      ok = ctx != NULL;
#endif
    }
    struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, subcall[i]);
    ok = ok && add_rule(ctx, refuse, "socketcall", 1, &a, err);
  }
  if (!ok) {
    if (ctx)
      seccomp_release(ctx);
    if (err && *err)
      return FALSE;
    return sbx_fail(err, SBX_ERROR_FAILED, "seccomp: cannot build the socketcall filter");
  }
  *out = ctx;
  return TRUE;
}

static scmp_filter_ctx json_profile_object(JsonObject *o, SbxCapSet caps, const char *what,
                                           scmp_filter_ctx *extra, GError **err);

static scmp_filter_ctx json_profile(const char *path, SbxCapSet caps, scmp_filter_ctx *extra,
                                    GError **err)
{
  g_autofree char *data = NULL;
  gsize len;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents(path, &data, &len, &local)) {
    sbx_fail(err, SBX_ERROR_NOT_FOUND, "seccomp profile %s: %s", path, local->message);
    return NULL;
  }
  g_autofree char *what = g_strdup_printf("seccomp profile %s", path);
  g_autoptr(JsonNode) root =
      len <= SBX_MAX_JSON_MEMBER ? sbx_json_parse(data, len, what, err) : NULL;
  JsonObject *o = root ? sbx_json_object(root, what, err) : NULL;
  if (!o)
    return NULL;
  return json_profile_object(o, caps, what, extra, err);
}

/* A profile's "architectures" (the runtime-spec's, e.g. SCMP_ARCH_X86): the
 * filter covers exactly these besides the native one, as runc and crun do;
 * a call through any other ABI meets libseccomp's bad-arch action (kill).
 * Without the member, sbx's compat architectures. */
static gboolean profile_arches(scmp_filter_ctx ctx, JsonObject *o, const char *what, GError **err)
{
  g_auto(GStrv) arches = NULL;
  if (!sbx_json_get_strv(o, "architectures", &arches, what, err))
    return FALSE;
  if (!arches)
    return add_arches(ctx, err);
  for (char **a = arches; *a; a++) {
    g_autofree char *name = g_ascii_strdown(g_str_has_prefix(*a, "SCMP_ARCH_") ? *a + 10 : *a, -1);
    guint32 arch = seccomp_arch_resolve_name(name);
    if (!arch)
      return sbx_fail(err, SBX_ERROR_INVALID, "architectures: %s: unknown", *a);
    int r = seccomp_arch_add(ctx, arch);
    if (r < 0 && r != -EEXIST)
      return sbx_fail_errnum(err, -r, "architectures: %s", *a);
  }
  return TRUE;
}

static scmp_filter_ctx json_profile_object(JsonObject *o, SbxCapSet caps, const char *what,
                                           scmp_filter_ctx *extra, GError **err)
{
  const char *def = NULL;
  gint64 def_errno = EPERM;
  guint32 def_action;
  if (!sbx_json_get_string(o, "defaultAction", &def, what, err) ||
      !sbx_json_get_int(o, "defaultErrnoRet", &def_errno, what, err) ||
      !parse_action(def, def_errno, &def_action, err))
    return NULL;
  scmp_filter_ctx ctx = seccomp_init(def_action);
  JsonNode *sn = json_object_get_member(o, "syscalls");
  JsonArray *rules = sn && JSON_NODE_HOLDS_ARRAY(sn) ? json_node_get_array(sn) : NULL;
  g_autoptr(GHashTable) by_nr =
      g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)g_ptr_array_unref);
  SocketRules seen = {.by_nr = by_nr};
  gboolean ok = ctx != NULL && profile_arches(ctx, o, what, err);
  for (guint i = 0; ok && rules && i < json_array_get_length(rules); i++) {
    JsonObject *r = sbx_json_object(json_array_get_element(rules, i), what, err);
    ok = r && json_rule(ctx, r, caps, &seen, err);
  }
  ok = ok && socketcall_filter(ctx, &seen, def, def_action, extra, err);
  if (!ok) {
    g_prefix_error(err, "%s: ", what);
    if (ctx)
      seccomp_release(ctx);
    return NULL;
  }
  return ctx;
}

/* The default's second filter: everything allowed but socket families
 * AF_ALG (38) and AF_VSOCK (40), compared on the low 32 bits the kernel
 * reads. On i386, libseccomp turns these rules into a refusal of
 * socketcall(SYS_SOCKET) as a whole, whose family it cannot see (it sits in
 * memory): i386 glibc calls socket(2) directly on any kernel since 4.3. */
static scmp_filter_ctx families_filter(GError **err)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  static const guint64 refused[] = {38, 40};
  gboolean ok = ctx && add_arches(ctx, err);
  for (guint i = 0; ok && i < G_N_ELEMENTS(refused); i++) {
    struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, refused[i]);
    ok = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "socket", 1, &a, err);
  }
  if (!ok && ctx) {
    seccomp_release(ctx);
    ctx = NULL;
  }
  return ctx;
}

/* Append one program as [guint32 instruction count][instructions]. */
static gboolean export_into(scmp_filter_ctx ctx, GByteArray *out, GError **err)
{
  /* no_new_privs is ours to set (process.c); don't let libseccomp do it. */
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  /* A binary tree of syscall numbers, not a list: the kernel emulates the
   * filter for every syscall number of every architecture when it is
   * loaded (its per-filter action cache, Linux 5.11+), so a list of ~1000
   * instructions cost ~1.5 ms at each start; each syscall is faster too. */
  /* Not before libseccomp 2.5.4: earlier 2.5 releases mishandle a tree
   * without rules (libseccomp issue #370; runc avoids it the same way). */
  const struct scmp_version *v = seccomp_version();
  gboolean tree_ok =
      v && (v->major > 2 || (v->major == 2 && (v->minor > 5 || (v->minor == 5 && v->micro >= 4))));
  if (!tree_ok || seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
    sbx_debug("seccomp: the filter as a list (libseccomp cannot make it a tree)");
  sbx_autofd fd = memfd_create("sbx-bpf", MFD_CLOEXEC);
  if (fd < 0)
    return sbx_fail_errno(err, "seccomp: memfd");
  int r = seccomp_export_bpf(ctx, fd);
  if (r < 0 || lseek(fd, 0, SEEK_SET) < 0)
    return sbx_fail_errnum(err, r < 0 ? -r : errno, "seccomp: export");
  g_autoptr(GBytes) prog = sbx_read_fd_bounded(fd, 1 << 20, "seccomp filter", err);
  if (!prog)
    return FALSE;
  guint32 count = (guint32)(g_bytes_get_size(prog) / 8);
  if (count > BPF_MAXINSNS) /* the kernel would refuse it at every run (and install's u16) */
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "seccomp profile: the filter has %u instructions, more than the kernel's %d",
                    count, BPF_MAXINSNS);
  g_byte_array_append(out, (const guint8 *)&count, sizeof count);
  g_byte_array_append(out, g_bytes_get_data(prog, NULL), (guint)g_bytes_get_size(prog));
  return TRUE;
}

static GBytes *compile(JsonObject *object, const char *profile, SbxCapSet caps, GError **err)
{
  scmp_filter_ctx ctx = NULL, extra = NULL;
  if (object) {
    ctx = json_profile_object(object, caps, "linux.seccomp", &extra, err);
  } else if (profile) {
    ctx = json_profile(profile, caps, &extra, err);
  } else {
    ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx && (!add_arches(ctx, err) || !default_profile(ctx, caps, err))) {
      seccomp_release(ctx);
      ctx = NULL;
    }
    if (ctx && !(extra = families_filter(err))) {
      seccomp_release(ctx);
      ctx = NULL;
    }
  }
  if (!ctx) {
    if (err && !*err)
      sbx_fail(err, SBX_ERROR_FAILED, "seccomp: cannot build the filter");
    return NULL;
  }
  g_autoptr(GByteArray) out = g_byte_array_new();
  /* The kernel runs the last installed filter first and keeps the first
   * answer among equally strict ones: a profile's socketcall filter goes
   * before the profile, so a refusal of the profile's own keeps its errno. */
  gboolean ok = object || profile
                    ? (!extra || export_into(extra, out, err)) && export_into(ctx, out, err)
                    : export_into(ctx, out, err) && export_into(extra, out, err);
  seccomp_release(ctx);
  if (extra)
    seccomp_release(extra);
  return ok ? g_byte_array_free_to_bytes(g_steal_pointer(&out)) : NULL;
}

GBytes *sbx_seccomp_compile(const char *profile, SbxCapSet caps, GError **err)
{
  return compile(NULL, profile, caps, err);
}

/* sbx-oci: linux.seccomp of config.json (the runtime-spec's form of the same
 * profile: defaultAction, syscalls[].names/action/errnoRet/args). */
GBytes *sbx_seccomp_compile_object(JsonObject *o, SbxCapSet caps, GError **err)
{
  return compile(o, NULL, caps, err);
}
