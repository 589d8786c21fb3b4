/* The program the image runs: its argv, environment, user and working
 * directory, and the last steps before execve. Runs after pivot_root, so
 * every path here is inside the sandbox. */
#include "sbx/path.h"
#include "sbx/sandbox.h"
#include "sbx/security.h"
#include "sbx/util.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

char **sbx_process_argv(const SbxImageConfig *cfg, const char *entrypoint, gboolean entrypoint_set,
                        char **argv, GError **err)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  /* docker: --entrypoint replaces Entrypoint and drops the image's Cmd. */
  if (entrypoint_set) {
    if (entrypoint && *entrypoint)
      g_strv_builder_add(b, entrypoint);
  } else if (cfg->entrypoint) {
    g_strv_builder_addv(b, (const char **)cfg->entrypoint);
  }
  if (argv && *argv)
    g_strv_builder_addv(b, (const char **)argv);
  else if (!entrypoint_set && cfg->cmd)
    g_strv_builder_addv(b, (const char **)cfg->cmd);
  g_auto(GStrv) out = g_strv_builder_end(b);
  if (!out[0] || !*out[0]) {
    sbx_fail(err, SBX_ERROR_USAGE, "no command: the image has no Entrypoint or Cmd, give one");
    return NULL;
  }
  return g_steal_pointer(&out);
}

static void env_set(GPtrArray *env, const char *kv)
{
  const char *eq = strchr(kv, '=');
  gsize klen = eq ? (gsize)(eq - kv) : strlen(kv);
  for (guint i = 0; i < env->len - 1; i++) {
    const char *e = env->pdata[i];
    if (strncmp(e, kv, klen) == 0 && e[klen] == '=') {
      g_free(env->pdata[i]);
      env->pdata[i] = g_strdup(kv);
      return;
    }
  }
  g_ptr_array_insert(env, (gint)env->len - 1, g_strdup(kv));
}

static gboolean env_has(GPtrArray *env, const char *key)
{
  gsize klen = strlen(key);
  for (guint i = 0; i < env->len - 1; i++)
    if (strncmp(env->pdata[i], key, klen) == 0 && ((char *)env->pdata[i])[klen] == '=')
      return TRUE;
  return FALSE;
}

char **sbx_process_env(const SbxImageConfig *cfg, char **overrides, const char *hostname,
                       const char *home)
{
  GPtrArray *env = g_ptr_array_new();
  g_ptr_array_add(env, NULL);
  /* Nothing of the caller's environment comes in unless asked for with -e. */
  g_autofree char *path = g_strdup("PATH=" DEFAULT_PATH);
  env_set(env, path);
  g_autofree char *hn = g_strconcat("HOSTNAME=", hostname, NULL);
  env_set(env, hn);
  for (char **e = cfg->env; e && *e; e++)
    env_set(env, *e);
  for (char **o = overrides; o && *o; o++)
    env_set(env, *o);
  if (!env_has(env, "HOME")) {
    g_autofree char *h = g_strconcat("HOME=", home ? home : "/", NULL);
    env_set(env, h);
  }
  return (char **)g_ptr_array_free(env, FALSE);
}

void sbx_creds_clear(SbxCreds *c)
{
  g_clear_pointer(&c->groups, g_free);
  g_clear_pointer(&c->home, g_free);
  g_clear_pointer(&c->name, g_free);
}

/* The image's account files, opened so that a FIFO or device planted there
 * cannot block or confuse us, and read at once: libc's fgetpwent and
 * fgetgrent ask the kernel for a file's offset (lseek) before each line,
 * not for a stream in memory. *buf holds the text until after fclose.
 * Resolved inside the root (we have pivoted into it) without magic links:
 * /etc/passwd -> /proc/self/fd/3/../../etc/passwd reached the host's
 * through a descriptor of sbx's still open (the store's, in sbx exec). */
static FILE *open_db(const char *path, char **buf)
{
  *buf = NULL;
  sbx_autofd root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  sbx_autofd fd =
      root < 0 ? -1 : sbx_open_in_root(root, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, NULL);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20) ||
      st.st_size == 0)
    return NULL;
  g_autofree char *data = g_malloc((gsize)st.st_size);
  gsize len = 0;
  while (len < (gsize)st.st_size) {
    ssize_t n = read(fd, data + len, (gsize)st.st_size - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (gsize)n;
  }
  /* No account has a line that long; libc would read it over and over. */
  len = sbx_text_drop_long_lines(data, len, SBX_ACCOUNT_LINE_MAX);
  FILE *f = len > 0 ? fmemopen(data, len, "r") : NULL;
  if (f)
    *buf = g_steal_pointer(&data);
  return f;
}

static gboolean parse_id(const char *s, guint64 *out)
{
  return g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT32 - 1, out, NULL);
}

static gboolean resolve_uid(const char *user, SbxCreds *c, GError **err)
{
  guint64 id;
  gboolean numeric = parse_id(user, &id);
  g_autofree char *buf = NULL;
  FILE *f = open_db("/etc/passwd", &buf);
  struct passwd *pw;
  while (f && (pw = fgetpwent(f)) != NULL) {
    if (numeric ? pw->pw_uid == (uid_t)id : strcmp(pw->pw_name, user) == 0) {
      c->uid = pw->pw_uid;
      c->gid = pw->pw_gid;
      c->home = g_strdup(pw->pw_dir);
      c->name = g_strdup(pw->pw_name);
      fclose(f);
      return TRUE;
    }
  }
  if (f)
    fclose(f);
  if (!numeric)
    return sbx_fail(err, SBX_ERROR_INVALID, "user %s: no matching entry in the image's /etc/passwd",
                    user);
  c->uid = (uid_t)id; /* docker: an unknown numeric uid runs with gid 0 */
  c->gid = 0;
  return TRUE;
}

static gboolean resolve_gid(const char *group, SbxCreds *c, GError **err)
{
  guint64 id;
  if (parse_id(group, &id)) {
    c->gid = (gid_t)id;
    return TRUE;
  }
  g_autofree char *buf = NULL;
  FILE *f = open_db("/etc/group", &buf);
  struct group *gr;
  while (f && (gr = fgetgrent(f)) != NULL) {
    if (strcmp(gr->gr_name, group) == 0) {
      c->gid = gr->gr_gid;
      fclose(f);
      return TRUE;
    }
  }
  if (f)
    fclose(f);
  return sbx_fail(err, SBX_ERROR_INVALID, "group %s: no matching entry in the image's /etc/group",
                  group);
}

static void supplementary_groups(SbxCreds *c)
{
  g_autoptr(GArray) gids = g_array_new(FALSE, FALSE, sizeof(gid_t));
  g_array_append_val(gids, c->gid);
  g_autofree char *buf = NULL;
  FILE *f = c->name ? open_db("/etc/group", &buf) : NULL;
  struct group *gr;
  while (f && (gr = fgetgrent(f)) != NULL && gids->len < 256) {
    for (char **m = gr->gr_mem; m && *m; m++)
      if (strcmp(*m, c->name) == 0 && gr->gr_gid != c->gid) {
        g_array_append_val(gids, gr->gr_gid); /* once per group, however often named */
        break;
      }
  }
  if (f)
    fclose(f);
  c->ngroups = gids->len;
  c->groups = (gid_t *)g_array_free(g_steal_pointer(&gids), FALSE);
}

gboolean sbx_process_resolve_user(const char *spec, SbxCreds *out, GError **err)
{
  memset(out, 0, sizeof *out);
  g_autofree char *user = g_strdup(spec && *spec ? spec : "0");
  char *colon = strchr(user, ':');
  if (colon)
    *colon++ = '\0';
  if (*user == '\0')
    return sbx_fail(err, SBX_ERROR_USAGE, "user '%s': empty user name", spec);
  if (!resolve_uid(user, out, err))
    return FALSE;
  if (colon && *colon && !resolve_gid(colon, out, err))
    return FALSE;
  supplementary_groups(out);
  return TRUE;
}

/* execvp without its /bin/sh fallback (docker does not run scripts without
 * a #! line), using the sandbox's PATH. Returns the errno that matters. */
static int exec_search(char **argv, char **envp)
{
  const char *file = argv[0];
  if (strchr(file, '/')) {
    execve(file, argv, envp);
    return errno;
  }
  const char *path = DEFAULT_PATH;
  for (char **e = envp; *e; e++)
    if (g_str_has_prefix(*e, "PATH="))
      path = *e + 5;
  int saved = ENOENT;
  /* On the stack: in a process sharing init's memory (sbx_process_spawn),
   * what the heap got before execve would stay in init's for the run. */
  char full[PATH_MAX];
  size_t flen = strlen(file);
  for (const char *d = path; *path;) {
    const char *end = strchrnul(d, ':');
    size_t dlen = end > d ? (size_t)(end - d) : 1;
    if (dlen + 1 + flen < sizeof full) {
      memcpy(full, end > d ? d : ".", dlen);
      full[dlen] = '/';
      memcpy(full + dlen + 1, file, flen + 1);
      /* A directory without the file: its lookup alone, not an execve's
       * set-up and undoing (~2 against ~8 us; an image's /bin is the last
       * of six). Anything else is execve's to judge. */
      if (faccessat(AT_FDCWD, full, F_OK, 0) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        if (!*end)
          break;
        d = end + 1;
        continue;
      }
      execve(full, argv, envp);
      if (errno == EACCES || errno == ENOEXEC || errno == EPERM)
        saved = errno;
      else if (errno != ENOENT && errno != ENOTDIR)
        return errno;
    } else {
      saved = saved == ENOENT ? ENAMETOOLONG : saved;
    }
    if (!*end)
      break;
    d = end + 1;
  }
  return saved;
}

#define DIE_MAX 1024 /* bytes of a failure's message */

/* The plan sbx_process_exec runs, for die(). */
static const SbxExecPlan *dying_plan;
/* sbx-oci exec's report pipe: -1 none. */
static int failure_fd = -1;

void sbx_process_report_failures_to(int fd)
{
  failure_fd = fd;
}

static G_GNUC_NORETURN void die(int status, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void die(int status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  /* One line whatever the names in it (an image's entrypoint, say), and a
   * bounded one: its head and its tail, which says why. */
  g_autofree char *safe = sbx_escape_text(msg);
  gsize len = strlen(safe);
  gsize head = DIE_MAX / 2, tail = len - DIE_MAX / 2;
  while (len > DIE_MAX && head > 0 && ((guchar)safe[head] & 0xC0) == 0x80)
    head--; /* not inside a UTF-8 character */
  while (len > DIE_MAX && tail < len && ((guchar)safe[tail] & 0xC0) == 0x80)
    tail++;
  g_autofree char *line = len <= DIE_MAX
                              ? g_strdup_printf("sbx: %s\n", safe)
                              : g_strdup_printf("sbx: %.*s...%s\n", (int)head, safe, safe + tail);
  if (dying_plan && dying_plan->fail_msg && dying_plan->fail_size > 0)
    g_strlcpy(dying_plan->fail_msg, line, dying_plan->fail_size);
  else if (failure_fd >= 0) /* sbx-oci exec says it, and fails: "sbx: " and "\n" off */
    (void)!write(failure_fd, line + 5, strlen(line) - 6);
  else
    (void)!write(STDERR_FILENO, line, strlen(line));
  _exit(status);
}

gboolean sbx_rlimit_parse(const char *spec, SbxRlimit *out, GError **err)
{
  static const struct {
    const char *name;
    int resource;
  } names[] = {{"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
               {"data", RLIMIT_DATA},         {"fsize", RLIMIT_FSIZE},
               {"locks", RLIMIT_LOCKS},       {"memlock", RLIMIT_MEMLOCK},
               {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
               {"nofile", RLIMIT_NOFILE},     {"nproc", RLIMIT_NPROC},
               {"rss", RLIMIT_RSS},           {"rtprio", RLIMIT_RTPRIO},
               {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
               {"stack", RLIMIT_STACK},       {"as", RLIMIT_AS}};
  g_auto(GStrv) kv = g_strsplit(spec, "=", 2);
  if (!kv[0] || !kv[1])
    return sbx_fail(err, SBX_ERROR_USAGE, "--ulimit %s: expected NAME=SOFT[:HARD]", spec);
  out->resource = -1;
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    if (g_ascii_strcasecmp(kv[0], names[i].name) == 0)
      out->resource = names[i].resource;
  if (out->resource < 0)
    return sbx_fail(err, SBX_ERROR_USAGE, "--ulimit: unknown limit '%s'", kv[0]);
  g_auto(GStrv) sh = g_strsplit(kv[1], ":", 2);
  guint64 v[2];
  for (int i = 0; i < 2; i++) {
    const char *t = sh[i] ? sh[i] : sh[0];
    if (g_strcmp0(t, "unlimited") == 0 || g_strcmp0(t, "-1") == 0)
      v[i] = RLIM_INFINITY;
    else if (!g_ascii_string_to_unsigned(t, 10, 0, G_MAXUINT64, &v[i], NULL))
      return sbx_fail(err, SBX_ERROR_USAGE, "--ulimit %s: '%s' is not a number", spec, t);
  }
  if (v[0] > v[1])
    return sbx_fail(err, SBX_ERROR_USAGE, "--ulimit %s: soft limit above hard limit", spec);
  out->soft = v[0];
  out->hard = v[1];
  return TRUE;
}

/* What the caller of sbx left ignored stays ignored across execve; handled
 * signals go back to their default by themselves, and nothing on the way
 * here has a handler. So: the ignored ones back to default, as docker's
 * runtimes do, named by SigIgn in /proc/self/status (one read, not a call
 * per signal); every signal where that cannot be read (no /proc). */
static void reset_ignored_signals(void)
{
  guint64 ignored = G_MAXUINT64;
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close(fd);
  const char *line = NULL;
  if (n > 0) {
    buf[n] = '\0';
    line = strstr(buf, "\nSigIgn:\t");
  }
  if (line)
    ignored = g_ascii_strtoull(line + strlen("\nSigIgn:\t"), NULL, 16);
  for (int s = 1; s < NSIG && s <= 64; s++)
    if (ignored & (G_GUINT64_CONSTANT(1) << (s - 1)))
      signal(s, SIG_DFL);
}

/* CVE-2024-21626: the working directory must be inside the new root, never a
 * directory reached through a leaked fd (getcwd then says "(unreachable)"). */
static void check_cwd(const char *workdir)
{
  char buf[4096];
  if (chdir(workdir) < 0)
    die(SBX_EXIT_FAILED, "working directory %s: %s", workdir, sbx_strerror(errno));
  if (!getcwd(buf, sizeof buf) || buf[0] != '/')
    die(SBX_EXIT_FAILED, "working directory %s: outside the sandbox's root", workdir);
}

/* Every fd from lowfd on but keep (close-on-exec: gone at execve). */
static void close_fds_from_but(int lowfd, int keep)
{
  if (keep < lowfd) {
    sbx_close_fds_from(lowfd);
    return;
  }
  for (int fd = lowfd; fd < keep; fd++)
    close(fd);
  sbx_close_fds_from(keep + 1);
}

void sbx_process_exec(const SbxExecPlan *p)
{
  GError *err = NULL;
  dying_plan = p;
  /* CVE-2017-5226: without a controlling terminal, TIOCSTI cannot push
   * keystrokes into the terminal sbx was started from. With -t the program
   * gets a terminal of the sandbox's own instead: first, while we are root
   * (the slave is root's, mode 0620; runc sets up its console first too),
   * and so a failure below is told on it (sbx-oci create's stdio is
   * /dev/null by now). */
  if (p->tty_slave) {
    if (!sbx_tty_attach_slave(p->tty_slave, p->creds->uid, &err))
      die(SBX_EXIT_FAILED, "%s", err->message);
  } else if (p->new_session && setsid() < 0) {
    die(SBX_EXIT_FAILED, "setsid: %s", sbx_strerror(errno));
  }
  if (p->null_stdin && !p->tty_slave) {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0)
      die(SBX_EXIT_FAILED, "stdin: %s", sbx_strerror(errno));
    close(null);
  }
  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
   * before the capabilities go (runc does the same); the steps below are
   * calls any sane profile allows. */
  gboolean early_seccomp = p->keep_privs && p->seccomp && !p->seccomp_loaded;
  if (early_seccomp && !sbx_seccomp_install_flags(p->seccomp, p->seccomp_flags, &err))
    die(SBX_EXIT_FAILED, "%s", err->message);
  /* The bounding set and ambient set go while we still hold CAP_SETPCAP. */
  if (!sbx_caps_drop_bounding(p->capsets ? p->capsets->bounding : p->caps, &err))
    die(SBX_EXIT_FAILED, "%s", err->message);
  if (p->set_groups && setgroups(p->creds->ngroups, p->creds->groups) < 0)
    die(SBX_EXIT_FAILED, "setgroups: %s", sbx_strerror(errno));
  if (setresgid(p->creds->gid, p->creds->gid, p->creds->gid) < 0)
    die(SBX_EXIT_FAILED, "setgid %u: %s", (unsigned)p->creds->gid, sbx_strerror(errno));
  /* Each id change sets the dumpable flag to fs.suid_dumpable, which may be
   * 1 (see after capset): reset at once, and again after the last change. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    die(SBX_EXIT_FAILED, "dumpable: %s", sbx_strerror(errno));
  /* sbx-oci: a non-root user may keep capabilities config.json grants. */
  if (p->capsets && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    die(SBX_EXIT_FAILED, "keep capabilities: %s", sbx_strerror(errno));
  if (setresuid(p->creds->uid, p->creds->uid, p->creds->uid) < 0)
    die(SBX_EXIT_FAILED, "setuid %u: %s", (unsigned)p->creds->uid, sbx_strerror(errno));
  /* A non-root user keeps no capability (docker does the same). */
  if (p->capsets ? !sbx_caps_set_all(p->capsets, &err)
                 : !sbx_caps_set(p->caps, p->creds->uid == 0, &err))
    die(SBX_EXIT_FAILED, "%s", err->message);
  /* Changing ids set the dumpable flag to fs.suid_dumpable, which may be
   * 1: the memory we share with init (sbx_process_spawn) must stay out of
   * ptrace's reach, and so must this process until its execve, with sbx's
   * descriptors still open (sbx exec: the store's) and no filter yet. The
   * program's own flag is the kernel's choice at execve, on its new memory. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    die(SBX_EXIT_FAILED, "dumpable: %s", sbx_strerror(errno));
  check_cwd(p->workdir);
  for (guint i = 0; p->rlimits && i < p->rlimits->len; i++) {
    SbxRlimit *r = &g_array_index(p->rlimits, SbxRlimit, i);
    struct rlimit rl = {.rlim_cur = r->soft, .rlim_max = r->hard};
    if (setrlimit(r->resource, &rl) < 0)
      die(SBX_EXIT_FAILED, "--ulimit: %s", sbx_strerror(errno));
  }
  if (p->set_umask)
    umask(p->umask);
  if (!p->keep_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    die(SBX_EXIT_FAILED, "no_new_privs: %s", sbx_strerror(errno));
  /* --network slirp:tcp_relay=true: connect(2) goes to the relay first. */
  if (p->relay && !sbx_relay_install_filter(p->relay_sock, &err))
    die(SBX_EXIT_FAILED, "%s", err->message);
  sigset_t none;
  sigemptyset(&none);
  reset_ignored_signals();
  sigprocmask(SIG_SETMASK, &none, NULL);
  close_fds_from_but(3 + p->preserve_fds, failure_fd);
  /* Bounded: with shared memory nothing may block on a full stderr pipe. */
  sbx_debug("exec %.200s (seccomp %s)", p->argv[0], p->seccomp ? "on" : "off");
  /* The filter goes on last: everything above may use calls it refuses. */
  if (p->seccomp && !early_seccomp && !p->seccomp_loaded &&
      !sbx_seccomp_install_flags(p->seccomp, p->seccomp_flags, &err))
    die(SBX_EXIT_FAILED, "%s", err->message);
  int e = exec_search(p->argv, p->envp);
  if (e == ENOENT || e == ENOTDIR)
    die(SBX_EXIT_NOTFOUND, "exec %s: executable file not found", p->argv[0]);
  die(SBX_EXIT_NOEXEC, "exec %s: %s", p->argv[0], sbx_strerror(e));
}

/* The program's process without a copy of its parent's address space: the
 * parent (init, which forked from sbx) has all of sbx's mappings, and a
 * fork would copy their page tables, fault in the child's writes and
 * throw it all away at execve (~0.3 ms of a start here). Everything
 * sbx_process_exec changes is the child's own (credentials, seccomp,
 * signal dispositions, fds, cwd, limits: vfork shares none of these), but
 * for memory: its allocations stay in the parent's heap, which waits
 * meanwhile, and the dumpable flag (reset there). The child never returns
 * from this frame, so the parent's stack above it stays as it was. */
G_GNUC_NO_INLINE pid_t sbx_process_spawn(const SbxExecPlan *plan)
{
  g_assert(plan->shared_mm && plan->fail_msg && plan->fail_size > 0);
  plan->fail_msg[0] = '\0';
  pid_t pid = vfork();
  if (pid == 0)
    sbx_process_exec(plan);
  return pid;
}

/* The built-in filter's load is the kernel's check, conversion and JIT of
 * ~900 instructions: ~0.5 ms of every start, on its path when the vfork
 * child did it (docs/DESIGN.md, "Session 11"). Made as init starts, the
 * program's process does it on another CPU while init mounts. Until "go" it
 * makes system calls only (no allocation, no stdio: it runs beside init on
 * the same memory and thread pointer, where glibc takes no locks). A call
 * that fails there sets init's errno too: none does on a run that can go on
 * (an unusable /dev/net/tun fails init's own tap0 after it, and the run).
 * A failure is kept and told after "go", when init waits for this process
 * as for a vfork child. ASan (gcc's, detect_stack_use_after_return off)
 * sees its stack inside init's, an array of init_main's frame. Every step
 * sbx_process_exec takes after the filter is one the built-in profile allows
 * (test_security.TestCompiledFilter checks the list). */
static int prefork_main(void *arg)
{
  SbxPrefork *pf = arg;
  const char *failed = NULL;
  int e = 0;
  /* Not the directory sbx ran in (init's, copied at the clone): the root,
   * which pivot_root moves to the new one with init's. */
  if (chdir("/") < 0)
    failed = "working directory /", e = errno;
  /* --network none and slirp: the namespace (~1 ms of the kernel's, most
   * of the clone's) is made here too, and init joins it before sysfs; its
   * fd (and tap0's) goes into the table shared with init (CLONE_FILES). */
  if (pf->netns) {
    int fd = unshare(CLONE_NEWNET) == 0 ? open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
    int ne = fd < 0 ? (errno ? errno : EINVAL) : 0;
    /* lo and tap0 too, beside init's first mounts; what fails here init
     * does again after joining, and says why. */
    gboolean lo = fd >= 0 && sbx_net_lo_up(NULL);
    int tap = lo && pf->tap ? sbx_net_make_tap(pf->tap, NULL) : -1;
    /* A table of our own (copies of both fds; init keeps its own) before
     * init may touch them: nothing of init's is closed under us, nor ours
     * under init. If that fails, the table stays shared: told, never run. */
    if (fd >= 0 && unshare(CLONE_FILES) < 0) {
      ne = errno ? errno : EINVAL;
    } else {
      if (fd >= 0)
        close(fd);
      if (tap >= 0)
        close(tap);
    }
    if (ne && !failed)
      failed = "network namespace", e = ne;
    pf->lo_up = lo;
    pf->tap_fd = tap;
    pf->netns_fd = fd;
    __atomic_store_n(&pf->netns_ready, ne ? -ne : 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &pf->netns_ready, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
  if (!failed && !sbx_seccomp_install_flags(pf->seccomp, 0, NULL))
    failed = "load the seccomp filter", e = errno ? errno : EINVAL;
  while (__atomic_load_n(&pf->go, __ATOMIC_ACQUIRE) == 0)
    syscall(SYS_futex, &pf->go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  dying_plan = pf->plan;
  if (failed)
    die(SBX_EXIT_FAILED, "%s: %s", failed, sbx_strerror(e));
  sbx_process_exec(pf->plan);
}

gboolean sbx_process_prefork(SbxPrefork *pf, GBytes *seccomp, gboolean netns,
                             const SbxTapConfig *tap, guint8 *stack, gsize size)
{
  *pf = (SbxPrefork){
      .seccomp = seccomp, .netns = netns, .tap = tap, .netns_fd = -1, .tap_fd = -1, .alive = 1};
  /* The stack grows down on every architecture sbx builds for. */
  guint8 *top = (guint8 *)((guintptr)(stack + size) & ~(guintptr)15);
  pf->pid = clone(prefork_main, top,
                  CLONE_VM | (netns ? CLONE_FILES : 0) | CLONE_CHILD_CLEARTID | SIGCHLD, pf, NULL,
                  NULL, &pf->alive);
  return pf->pid > 0;
}

gboolean sbx_process_prefork_join_net(SbxPrefork *pf, GError **err)
{
  int ready;
  /* A process killed before it answered only clears alive: look again. */
  const struct timespec tick = {.tv_nsec = 20 * 1000 * 1000};
  while ((ready = __atomic_load_n(&pf->netns_ready, __ATOMIC_ACQUIRE)) == 0 &&
         __atomic_load_n(&pf->alive, __ATOMIC_ACQUIRE) != 0)
    syscall(SYS_futex, &pf->netns_ready, FUTEX_WAIT_PRIVATE, 0, &tick, NULL, 0);
  if (ready <= 0) {
    errno = ready < 0 ? -ready : ESRCH;
    return sbx_fail_errno(err, "network namespace");
  }
  int r = setns(pf->netns_fd, CLONE_NEWNET);
  int e = errno;
  close(pf->netns_fd);
  pf->netns_fd = -1;
  errno = e;
  return r == 0 || sbx_fail_errno(err, "enter the network namespace");
}

pid_t sbx_process_prefork_go(SbxPrefork *pf, SbxExecPlan *plan)
{
  g_assert(plan->shared_mm && plan->fail_msg && plan->fail_size > 0);
  plan->fail_msg[0] = '\0';
  plan->seccomp_loaded = TRUE;
  pf->plan = plan;
  __atomic_store_n(&pf->go, 1, __ATOMIC_RELEASE);
  syscall(SYS_futex, &pf->go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  /* The kernel clears alive and wakes it (a shared futex) when the process
   * leaves our memory: at its execve or its exit. */
  int v;
  while ((v = __atomic_load_n(&pf->alive, __ATOMIC_ACQUIRE)) != 0)
    syscall(SYS_futex, &pf->alive, FUTEX_WAIT, v, NULL, NULL, 0);
  return pf->pid;
}
