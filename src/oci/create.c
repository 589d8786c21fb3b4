/* sbx-oci create: the sandbox sequence driven by config.json.
 *
 *   sbx-oci create (P)        stage 1 (S1)                 the container (S2)
 *   fork ---------------->    setns(paths), unshare(USER)
 *   write uid/gid maps  <--   "userns"
 *   "go"                -->   unshare(the other new ones)
 *                             fork ------------------->   waits for S1 to exit
 *   reap S1             <--   "pid N", exit               (PID 1 of a new pid ns)
 *                                                         hostname, lo, mounts,
 *                                                         devices, sysctl, masks,
 *                                                         pivot_root, pty
 *   pid file, state     <---------------------------------  "ready" (or the error)
 *   exit 0                                                open exec.fifo (blocks)
 *   sbx-oci start: read exec.fifo ------------------->    exec (process.c)
 *
 * The container is nobody's child but its reaper's (conmon is a subreaper):
 * no PDEATHSIG, no sbx process left behind. Mounts, devices, masks, pivot_root,
 * capabilities, seccomp and execve are the functions `sbx run` uses. */
#include "sbx/ns.h"
#include "sbx/oci.h"
#include "sbx/path.h"
#include "sbx/sandbox.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/mount.h>

typedef struct {
  const SbxOciConfig *c;
  const SbxOciCreate *o;
  int sync;
  int fifo;          /* O_PATH of exec.fifo */
  int console;       /* the console socket, -1 */
  unsigned long own; /* CLONE_NEW* this container created */
  char *state;       /* for the hooks that run in the container */
} Seq;

static gboolean own(const Seq *s, int flag)
{
  return (s->own & (unsigned long)flag) != 0;
}

/* ---- mounts ---- */

typedef struct {
  unsigned long flags, clear, propagation;
  guint64 rattr_set, rattr_clr; /* rro, rnoexec...: MOUNT_ATTR_* on every mount below */
  const char *unknown;          /* the first option no table knows */
  gboolean copyup, has_mode;    /* tmpcopyup; a mode= of its own */
  const char *refused;          /* an option sbx-oci cannot honour */
  GString *data;
} MountOpts;

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256 /* Linux 5.10 */
#endif

static void parse_options(char **options, MountOpts *m)
{
  static const struct {
    const char *name;
    gboolean clear;
    unsigned long flag;
  } table[] = {{"ro", 0, MS_RDONLY},
               {"rw", 1, MS_RDONLY},
               {"nosuid", 0, MS_NOSUID},
               {"suid", 1, MS_NOSUID},
               {"nodev", 0, MS_NODEV},
               {"dev", 1, MS_NODEV},
               {"noexec", 0, MS_NOEXEC},
               {"exec", 1, MS_NOEXEC},
               {"sync", 0, MS_SYNCHRONOUS},
               {"async", 1, MS_SYNCHRONOUS},
               {"dirsync", 0, MS_DIRSYNC},
               {"noatime", 0, MS_NOATIME},
               {"atime", 1, MS_NOATIME},
               {"nodiratime", 0, MS_NODIRATIME},
               {"diratime", 1, MS_NODIRATIME},
               {"relatime", 0, MS_RELATIME},
               {"norelatime", 1, MS_RELATIME},
               {"strictatime", 0, MS_STRICTATIME},
               {"nostrictatime", 1, MS_STRICTATIME},
               {"nosymfollow", 0, MS_NOSYMFOLLOW},
               {"symfollow", 1, MS_NOSYMFOLLOW},
               {"bind", 0, MS_BIND},
               {"rbind", 0, MS_BIND | MS_REC},
               {"defaults", 0, 0}};
  static const struct {
    const char *name;
    unsigned long flag;
  } prop[] = {{"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
              {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
              {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
              {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC}};
  /* runc's recursive forms (mount_setattr with AT_RECURSIVE): r + option. */
  static const struct {
    const char *name;
    gboolean clear;
    guint64 attr;
  } rtable[] = {{"rro", 0, MOUNT_ATTR_RDONLY},
                {"rrw", 1, MOUNT_ATTR_RDONLY},
                {"rnosuid", 0, MOUNT_ATTR_NOSUID},
                {"rsuid", 1, MOUNT_ATTR_NOSUID},
                {"rnodev", 0, MOUNT_ATTR_NODEV},
                {"rdev", 1, MOUNT_ATTR_NODEV},
                {"rnoexec", 0, MOUNT_ATTR_NOEXEC},
                {"rexec", 1, MOUNT_ATTR_NOEXEC},
                {"rnodiratime", 0, MOUNT_ATTR_NODIRATIME},
                {"rdiratime", 1, MOUNT_ATTR_NODIRATIME},
                {"rnosymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW},
                {"rsymfollow", 1, MOUNT_ATTR_NOSYMFOLLOW}};
  static const char *const ignored[] = {"tmpcopyup", "notmpcopyup", "z",     "Z",
                                        "U",         "copy",        "nocopy"};
  memset(m, 0, sizeof *m);
  m->data = g_string_new(NULL);
  for (char **o = options; o && *o; o++) {
    gboolean known = FALSE;
    for (guint i = 0; !known && i < G_N_ELEMENTS(table); i++)
      if (strcmp(*o, table[i].name) == 0) {
        known = TRUE;
        if (table[i].clear) {
          m->flags &= ~table[i].flag;
          m->clear |= table[i].flag;
        } else {
          m->flags |= table[i].flag;
        }
      }
    for (guint i = 0; !known && i < G_N_ELEMENTS(prop); i++)
      if (strcmp(*o, prop[i].name) == 0) {
        known = TRUE;
        m->propagation = prop[i].flag;
      }
    for (guint i = 0; !known && i < G_N_ELEMENTS(rtable); i++)
      if (strcmp(*o, rtable[i].name) == 0) {
        known = TRUE;
        m->rattr_set =
            rtable[i].clear ? m->rattr_set & ~rtable[i].attr : m->rattr_set | rtable[i].attr;
        m->rattr_clr =
            rtable[i].clear ? m->rattr_clr | rtable[i].attr : m->rattr_clr & ~rtable[i].attr;
      }
    for (guint i = 0; !known && i < G_N_ELEMENTS(ignored); i++)
      known = strcmp(*o, ignored[i]) == 0;
    if (strcmp(*o, "tmpcopyup") == 0)
      m->copyup = TRUE;
    if (g_str_has_prefix(*o, "mode="))
      m->has_mode = TRUE;
    if (strcmp(*o, "idmap") == 0 || strcmp(*o, "ridmap") == 0)
      m->refused = *o;
    if (!known && !m->unknown && !strchr(*o, '='))
      m->unknown = *o;
    if (!known)
      g_string_append_printf(m->data, "%s%s", m->data->len ? "," : "", *o);
  }
}

/* Flags the kernel locked on a mount we bind (a user namespace may not clear
 * them): a remount must repeat them. */
static unsigned long locked_flags(int fd)
{
  struct statvfs sv;
  if (fstatvfs(fd, &sv) < 0)
    return 0;
  return (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
         (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0) | (sv.f_flag & ST_RDONLY ? MS_RDONLY : 0) |
         (sv.f_flag & ST_NOATIME ? MS_NOATIME : 0) | (sv.f_flag & ST_RELATIME ? MS_RELATIME : 0);
}

static gboolean remount_top(int rootfd, const char *dest, unsigned long flags, gboolean recursive,
                            GError **err)
{
  sbx_autofd top = sbx_open_in_root(rootfd, dest, O_PATH, 0, err);
  if (top < 0)
    return FALSE;
  if (recursive && (flags & MS_RDONLY)) {
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, top, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
      return sbx_fail_errno(err, "make %s read-only", dest);
  }
  unsigned long f = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                             MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW);
  return sbx_mount_at_fd(NULL, top, NULL, MS_REMOUNT | MS_BIND | f | locked_flags(top), NULL, dest,
                         err);
}

/* The check against /proc once more on the target as opened: the mount
 * lands on that fd, where it really is (procmount.c). */
static gboolean bind_host(int rootfd, const char *source, const SbxOciMount *m, unsigned long flags,
                          GError **err)
{
  const char *dest = m->destination;
  sbx_autofd src = open(source, O_PATH | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat(src, &st) < 0)
    return sbx_fail_errno(err, "mount %s: source %s", dest, source);
  sbx_autofd dst = sbx_mount_target(rootfd, dest, S_ISDIR(st.st_mode), err);
  if (dst < 0 || !sbx_oci_check_proc_target(rootfd, m, TRUE, src, dst, err))
    return FALSE;
  g_autofree char *srcp = g_strdup_printf("/proc/self/fd/%d", src);
  if (!sbx_mount_at_fd(srcp, dst, NULL, MS_BIND | (flags & MS_REC), NULL, dest, err))
    return FALSE;
  unsigned long extra = flags & ~(MS_BIND | MS_REC);
  return !extra || remount_top(rootfd, dest, flags, (flags & MS_REC) != 0, err);
}

static gboolean mount_one(const Seq *s, int rootfd, const SbxOciMount *m, GError **err)
{
  MountOpts o;
  parse_options(m->options, &o);
  g_autoptr(GString) data = o.data;
  const char *type = m->type;
  gboolean ok;
  gboolean bind = (o.flags & MS_BIND) || strcmp(type, "bind") == 0;
  g_autofree char *src = m->source && !g_path_is_absolute(m->source)
                             ? g_build_filename(s->c->bundle, m->source, NULL)
                             : g_strdup(m->source);
  if (!sbx_oci_check_proc_mount(rootfd, m, bind, src, err))
    return FALSE;
  if (o.refused)
    return sbx_fail(err, SBX_ERROR_INVALID, "mount %s: option %s is not supported by sbx-oci",
                    m->destination, o.refused);
  if (bind) {
    /* A bind has no data: an option no table knows would do nothing (a
     * typo of noexec, an option of a later runc): refused by name. */
    if (o.unknown || data->len)
      return sbx_fail(err, SBX_ERROR_INVALID, "mount %s: unknown option %s for a bind mount",
                      m->destination, o.unknown ? o.unknown : data->str);
    ok = bind_host(rootfd, src, m, o.flags | MS_BIND, err);
  } else if (strcmp(type, "sysfs") == 0 && strcmp(m->destination, "/sys") == 0) {
    /* sysfs needs a network namespace of ours; else the host's, read-only. */
    ok = sbx_mount_sys(rootfd, err);
  } else if (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0) {
    sbx_autofd fd = sbx_mount_dir(rootfd, m->destination, 0755, err);
    g_autoptr(GError) local = NULL;
    if (fd < 0 || !sbx_oci_check_proc_target(rootfd, m, FALSE, -1, fd, err))
      return FALSE;
    ok = own(s, CLONE_NEWCGROUP) &&
         sbx_mount_at_fd("cgroup2", fd, "cgroup2", o.flags, NULL, m->destination, &local);
    if (!ok) /* not ours to mount: the host's hierarchy, read-only */
      ok = bind_host(rootfd, "/sys/fs/cgroup", m,
                     MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
  } else {
    sbx_autofd fd = sbx_mount_dir(rootfd, m->destination, 0755, err);
    if (fd < 0 || !sbx_oci_check_proc_target(rootfd, m, FALSE, -1, fd, err))
      return FALSE;
    /* The image's directory, still reachable by fd once covered. */
    sbx_autofd image_dir =
        o.copyup && strcmp(type, "tmpfs") == 0
            ? sbx_open_in_root(rootfd, m->destination, O_RDONLY | O_DIRECTORY, 0, err)
            : -1;
    if (o.copyup && strcmp(type, "tmpfs") == 0 && image_dir < 0)
      return FALSE;
    g_autoptr(GError) local = NULL;
    /* Copied into writable, made read-only after. */
    unsigned long flags = image_dir >= 0 ? o.flags & ~MS_RDONLY : o.flags;
    ok = sbx_mount_at_fd(m->source, fd, type, flags, data->len ? data->str : NULL, m->destination,
                         &local);
    if (ok && image_dir >= 0) {
      sbx_autofd top = sbx_open_in_root(rootfd, m->destination, O_RDONLY | O_DIRECTORY, 0, err);
      ok = top >= 0 && sbx_oci_copy_up(image_dir, top, !o.has_mode, err);
      if (ok && (o.flags & MS_RDONLY))
        ok = remount_top(rootfd, m->destination, o.flags, FALSE, err);
      if (!ok)
        return FALSE;
    }
    if (!ok && strcmp(type, "mqueue") == 0 && access("/dev/mqueue", F_OK) == 0) {
      /* An IPC namespace not ours: the host's queue file system. */
      ok = bind_host(rootfd, "/dev/mqueue", m, MS_BIND | o.flags, err);
    } else if (!ok) {
      g_propagate_error(err, g_steal_pointer(&local));
    }
  }
  /* rro, rnoexec...: every mount under the destination (mount_setattr,
   * Linux 5.12). Refused rather than done on the top mount alone, where the
   * ones beneath would stay as they were. */
  if (ok && (o.rattr_set || o.rattr_clr)) {
    sbx_autofd fd = sbx_open_in_root(rootfd, m->destination, O_PATH, 0, err);
    struct mount_attr attr = {.attr_set = o.rattr_set, .attr_clr = o.rattr_clr};
    ok = fd >= 0;
    if (ok &&
        syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
      ok = sbx_fail_errno(err, "mount %s: recursive options (rro, rnoexec...)", m->destination);
  }
  if (ok && o.propagation) {
    sbx_autofd fd = sbx_open_in_root(rootfd, m->destination, O_PATH, 0, err);
    ok = fd >= 0 && sbx_mount_at_fd(NULL, fd, NULL, o.propagation, NULL, m->destination, err);
  }
  return ok;
}

static gboolean write_sysctl(const Seq *s, int rootfd, const char *key, const char *value,
                             GError **err)
{
  /* Only what lives in a namespace the container has (new or joined, as
   * runc): never the host's. */
  const SbxOciConfig *c = s->c;
  gboolean allowed =
      (g_str_has_prefix(key, "net.") && sbx_oci_config_has_ns(c, CLONE_NEWNET, NULL)) ||
      ((g_str_has_prefix(key, "kernel.shm") || g_str_has_prefix(key, "kernel.msg") ||
        strcmp(key, "kernel.sem") == 0 || g_str_has_prefix(key, "fs.mqueue.")) &&
       sbx_oci_config_has_ns(c, CLONE_NEWIPC, NULL)) ||
      ((strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0) &&
       sbx_oci_config_has_ns(c, CLONE_NEWUTS, NULL));
  if (!allowed || strstr(key, "..") || strchr(key, '/'))
    return sbx_fail(err, SBX_ERROR_INVALID, "sysctl %s: not in a namespace of the container's own",
                    key);
  g_autofree char *rel = g_strdup(key);
  g_strdelimit(rel, ".", '/');
  g_autofree char *path = g_strconcat("/proc/sys/", rel, NULL);
  sbx_autofd fd = sbx_open_in_root(rootfd, path, O_WRONLY | O_NOFOLLOW, 0, err);
  if (fd < 0 || !sbx_write_all(fd, value, strlen(value), err)) {
    g_prefix_error(err, "sysctl %s: ", key);
    return FALSE;
  }
  return TRUE;
}

/* linux.devices: no mknod in a user namespace; the host's node at the same
 * path is bound, once it is checked to be the device asked for. */
static gboolean bind_device(int rootfd, const SbxOciDevice *d, GError **err)
{
  mode_t type = d->block ? S_IFBLK : S_IFCHR;
  sbx_autofd src = open(d->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat(src, &st) < 0)
    return sbx_fail_errno(err, "linux.devices: %s", d->path);
  if ((st.st_mode & S_IFMT) != type || major(st.st_rdev) != d->major ||
      minor(st.st_rdev) != d->minor)
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "linux.devices: the host's %s is not the %s device %u:%u (no mknod here)",
                    d->path, d->block ? "block" : "character", d->major, d->minor);
  sbx_autofd have = sbx_open_in_root(rootfd, d->path, O_PATH | O_NOFOLLOW, 0, NULL);
  struct stat hs;
  if (have >= 0 && fstat(have, &hs) == 0 && (hs.st_mode & S_IFMT) == type &&
      hs.st_rdev == st.st_rdev)
    return TRUE; /* already there (a default node) */
  sbx_autofd dst = sbx_mount_target(rootfd, d->path, FALSE, err);
  if (dst < 0)
    return FALSE;
  g_autofree char *srcp = g_strdup_printf("/proc/self/fd/%d", src);
  return sbx_mount_at_fd(srcp, dst, NULL, MS_BIND, NULL, d->path, err);
}

static gboolean has_hooks(const SbxOciConfig *c, SbxOciHookKind kind)
{
  return c->hooks[kind] && c->hooks[kind]->len > 0;
}

/* prestart and createRuntime run in sbx-oci (the runtime's namespaces):
 * ask it and wait; it answers with our pid as it sees it, for the state
 * that createContainer (here) and startContainer (later) get. */
static gboolean hooks_before_pivot(const Seq *s, GError **err)
{
  const SbxOciConfig *c = s->c;
  if (!has_hooks(c, SBX_HOOK_PRESTART) && !has_hooks(c, SBX_HOOK_CREATE_RUNTIME) &&
      !has_hooks(c, SBX_HOOK_CREATE_CONTAINER) && !has_hooks(c, SBX_HOOK_START_CONTAINER))
    return TRUE;
  g_autofree char *pid = NULL;
  if (!sbx_sync_send_ok(s->sync, "hooks") || !sbx_sync_recv(s->sync, &pid, "sbx-oci", err))
    return FALSE;
  Seq *w = (Seq *)s;
  w->state = s->o->state_json((pid_t)g_ascii_strtoll(pid ? pid : "0", NULL, 10), s->o->data);
  return sbx_oci_run_hooks(c, SBX_HOOK_CREATE_CONTAINER, w->state, err);
}

/* process.cwd missing from the image (a Kubernetes workingDir): made, as
 * runc's MkdirAll in the new root does, before the root goes read-only. A
 * link on the way resolves inside the root (RESOLVE_IN_ROOT, as runc's
 * securejoin); never a magic link. */
static gboolean make_cwd(const SbxOciConfig *c, GError **err)
{
  sbx_autofd root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return sbx_fail_errno(err, "open the new root");
  sbx_autofd cwd = sbx_mkdir_in_root(root, c->cwd, 0755, err);
  if (cwd < 0) {
    g_prefix_error(err, "process.cwd: ");
    return FALSE;
  }
  return TRUE;
}

static gboolean setup_rootfs(const Seq *s, GError **err)
{
  const SbxOciConfig *c = s->c;
  unsigned long prop = MS_SLAVE | MS_REC;
  if (c->propagation) {
    char *opt[] = {c->propagation, NULL};
    MountOpts o;
    parse_options(opt, &o);
    g_string_free(o.data, TRUE);
    if (!o.propagation)
      return sbx_fail(err, SBX_ERROR_INVALID, "rootfsPropagation %s: unknown", c->propagation);
    prop = o.propagation | MS_REC;
  }
  if (mount(NULL, "/", NULL, prop, NULL) < 0)
    return sbx_fail_errno(err, "set the propagation of /");
  /* pivot_root wants a mount point. */
  if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return sbx_fail_errno(err, "root.path %s", c->rootfs);
  sbx_autofd rootfd = open(c->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return sbx_fail_errno(err, "open root.path %s", c->rootfs);
  gboolean dev = FALSE;
  for (guint i = 0; i < c->mounts->len; i++) {
    const SbxOciMount *m = c->mounts->pdata[i];
    if (!mount_one(s, rootfd, m, err))
      return FALSE;
    dev |= strcmp(m->destination, "/dev") == 0;
  }
  if (dev) {
    sbx_autofd devfd = sbx_open_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY, 0, err);
    if (devfd < 0 || !sbx_mount_dev_nodes(devfd, err))
      return FALSE;
  }
  for (guint i = 0; i < c->devices->len; i++)
    if (!bind_device(rootfd, c->devices->pdata[i], err))
      return FALSE;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, c->sysctl);
  while (g_hash_table_iter_next(&it, &k, &v))
    if (!write_sysctl(s, rootfd, k, v, err))
      return FALSE;
  if (!hooks_before_pivot(s, err))
    return FALSE;
  if (!sbx_mount_mask_paths(rootfd, (const char *const *)c->masked,
                            (const char *const *)c->readonly, err) ||
      !sbx_mount_pivot(rootfd, err) || !make_cwd(c, err))
    return FALSE;
  if (c->root_readonly) {
    sbx_autofd root = open("/", O_PATH | O_CLOEXEC);
    if (root < 0 ||
        mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(root), NULL) < 0)
      return sbx_fail_errno(err, "make the root file system read-only");
  }
  return TRUE;
}

/* ---- the process ---- */

/* runc's wording, which podman maps to 127 and 126. From process.cwd, as
 * execve will look (runc's LookPath runs after its chdir): a relative name
 * or PATH entry is the working directory's. sbx_process_exec changes to it
 * again as the process's user and checks it is inside the root
 * (CVE-2024-21626). A cwd exec cannot reach fails here, as runc's does. */
gboolean sbx_oci_check_executable(const SbxOciConfig *c, GError **err)
{
  const char *file = c->args[0];
  g_autofree char *found = NULL;
  struct stat st;
  if (chdir(c->cwd) < 0)
    return sbx_fail_errno(err, "chdir to cwd (\"%s\") set in config.json failed", c->cwd);
  if (strchr(file, '/')) {
    if (stat(file, &st) == 0)
      found = g_strdup(file);
  } else {
    const char *path = g_environ_getenv(c->env, "PATH");
    g_auto(GStrv) dirs = g_strsplit(path ? path
                                         : "/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                           "/usr/bin:/sbin:/bin",
                                    ":", -1);
    for (char **d = dirs; *d && !found; d++) {
      g_autofree char *f = g_build_filename(**d ? *d : ".", file, NULL);
      if (stat(f, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
        found = g_steal_pointer(&f);
    }
    if (!found)
      return sbx_fail(err, SBX_ERROR_NOT_FOUND, "exec: \"%s\": executable file not found in $PATH",
                      file);
  }
  if (!found)
    return sbx_fail(err, SBX_ERROR_NOT_FOUND, "exec: \"%s\": stat %s: no such file or directory",
                    file, file);
  if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
    return sbx_fail(err, SBX_ERROR_INVALID, "exec: \"%s\": permission denied", file);
  return TRUE;
}

gboolean sbx_oci_send_console(int sock, int master, GError **err)
{
  char name[] = "/dev/ptmx";
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name - 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &master, sizeof(int));
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
    return sbx_fail_errno(err, "--console-socket: send the terminal");
  return TRUE;
}

/* With a terminal, /dev/console is the container's pty slave (as runc),
 * when /dev is the tmpfs we mounted: never a node of the host's. */
static gboolean bind_console(const Seq *s, const char *slave, GError **err)
{
  gboolean dev = FALSE;
  for (guint i = 0; i < s->c->mounts->len; i++)
    dev |= strcmp(((SbxOciMount *)s->c->mounts->pdata[i])->destination, "/dev") == 0;
  if (!dev)
    return TRUE;
  sbx_autofd devfd = open("/dev", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  sbx_autofd made =
      devfd < 0 ? -1 : openat(devfd, "console", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  sbx_autofd src = open(slave, O_PATH | O_CLOEXEC);
  if (made < 0 || src < 0)
    return sbx_fail_errno(err, "/dev/console");
  g_autofree char *srcp = g_strdup_printf("/proc/self/fd/%d", src);
  return sbx_mount_at_fd(srcp, made, NULL, MS_BIND, NULL, "/dev/console", err);
}

/* Read inside the container's root, where /proc may be anything: a regular
 * file only (a FIFO there would block), by plain calls. */
static gboolean setgroups_denied(void)
{
  char buf[16] = "";
  sbx_autofd fd = open("/proc/self/setgroups", O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return FALSE;
  return read(fd, buf, sizeof buf - 1) >= 4 && strncmp(buf, "deny", 4) == 0;
}

static void exit_on_signal(int sig)
{
  _exit(128 + sig);
}

/* While created, the process is PID 1 of its pid namespace, where a signal
 * without a handler is dropped: `kill ID TERM` left it waiting for ever
 * (runc's goes to stopped). Exits as the signal's default would tell it;
 * the program gets the defaults back at execve. */
static void terminate_on_signals(void (*handler)(int))
{
  static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};
  struct sigaction sa = {.sa_handler = handler};
  sigemptyset(&sa.sa_mask);
  for (guint i = 0; i < G_N_ELEMENTS(sigs); i++)
    sigaction(sigs[i], &sa, NULL);
}

/* After "ready" nobody reads the sync socket: a failure is said on create's
 * stderr (which podman shows), never a silent exit. */
static G_GNUC_NORETURN void die(const char *what, const char *why)
{
  g_autofree char *line = what ? g_strdup_printf("sbx-oci: %s: %s\n", what, why)
                               : g_strdup_printf("sbx-oci: %s\n", why);
  (void)!write(STDERR_FILENO, line, strlen(line));
  _exit(SBX_EXIT_FAILED);
}

/* Once `start` holds the fifo's other end, a failure is said to it too: 'E'
 * and the reason, in one write (below PIPE_BUF, whole or not at all) in place
 * of the byte it waits for. With a terminal, create's stderr is /dev/null
 * by then, and start would only say the container did not start. */
static G_GNUC_NORETURN void die_to_start(int w, const char *why)
{
  g_autofree char *msg = g_strdup_printf("E%.*s", 2048, why);
  (void)!write(w, msg, strlen(msg));
  die(NULL, why);
}

/* exec.fifo is opened again through /proc/self/fd as the container's root,
 * which in a user namespace that maps no id of the caller's holds no
 * capability over it: the mode must let it (0622, as runc's). Tried here,
 * not blocking (ENXIO: no reader yet, as it should be), so that a refusal
 * reaches sbx-oci create with its reason. */
static gboolean check_fifo(const Seq *s, GError **err)
{
  g_autofree char *fifo = g_strdup_printf("/proc/self/fd/%d", s->fifo);
  int w = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (w >= 0)
    close(w);
  else if (errno != ENXIO)
    return sbx_fail_errno(err, "open exec.fifo as the container's root");
  return TRUE;
}

static G_GNUC_NORETURN void container_main(Seq *s, int wait_fd)
{
  const SbxOciConfig *c = s->c;
  g_autoptr(GError) err = NULL;
  char b;
  /* Until stage 1 has told sbx-oci our pid and gone. */
  while (read(wait_fd, &b, 1) < 0 && errno == EINTR)
    ;
  close(wait_fd);
  /* Nothing inside may ptrace us or open /proc/1/exe while we set up. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  g_autofree char *slave = NULL;
  gboolean ok = TRUE;
  if (c->hostname && !sbx_oci_config_has_ns(c, CLONE_NEWUTS, NULL))
    ok = sbx_fail(&err, SBX_ERROR_INVALID, "hostname needs a uts namespace of its own");
  else if (c->hostname)
    ok = sbx_uts_setup(c->hostname, &err);
  ok = ok && (!own(s, CLONE_NEWNET) || sbx_net_setup_loopback(&err)) && setup_rootfs(s, &err) &&
       sbx_oci_check_executable(c, &err) && check_fifo(s, &err);
  if (ok && c->gids->len && setgroups_denied())
    ok = sbx_fail(&err, SBX_ERROR_INVALID,
                  "process.user.additionalGids: setgroups is denied in this user namespace");
  if (ok && c->terminal) {
    sbx_autofd master = s->console < 0 ? -1 : sbx_tty_open_master(&slave, &err);
    if (s->console < 0)
      ok = sbx_fail(&err, SBX_ERROR_USAGE, "process.terminal needs --console-socket");
    else
      ok = master >= 0 && bind_console(s, slave, &err) &&
           sbx_oci_send_console(s->console, master, &err);
  }
  if (!ok) {
    sbx_sync_send_error(s->sync, err);
    _exit(1);
  }
  sbx_sync_send_ok(s->sync, "ready");
  /* One more word once sbx-oci has recorded us (state.json, the pid file):
   * a create killed before that leaves no process waiting for a start
   * that cannot come. */
  if (!sbx_sync_recv(s->sync, NULL, "sbx-oci", &err))
    die(NULL, err->message);
  close(s->sync);
  if (s->console >= 0)
    close(s->console);
  /* With a terminal the process's stdio is the pty slave (at exec), not
   * create's: let go of create's now. containerd's shim reads create's
   * stdout and stderr until they close, which would be never while we wait
   * for `start` holding them. */
  if (slave) {
    sbx_autofd null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
      die("/dev/null", g_strerror(errno));
  }
  /* Wait for `sbx-oci start` (it opens the fifo for reading). */
  terminate_on_signals(exit_on_signal);
  g_autofree char *fifo = g_strdup_printf("/proc/self/fd/%d", s->fifo);
  int w;
  do
    w = open(fifo, O_WRONLY | O_CLOEXEC);
  while (w < 0 && errno == EINTR);
  if (w < 0)
    die("open exec.fifo", g_strerror(errno));
  /* startContainer before the byte `start` waits for: its poststart hooks
   * come after them, and a failing one fails `start`. */
  if (s->state && !sbx_oci_run_hooks(c, SBX_HOOK_START_CONTAINER, s->state, &err))
    die_to_start(w, err->message);
  if (write(w, "0", 1) != 1)
    die("write exec.fifo", g_strerror(errno));
  terminate_on_signals(SIG_DFL);
  close(w);
  close(s->fifo);
  /* No process.user.umask: runc's init uses 022, not the caller's (its
   * exec keeps the caller's, and so does ours). */
  if (!c->set_umask)
    umask(022);
  sbx_oci_exec_process(c, slave, s->o->preserve_fds);
}

void sbx_oci_exec_process(const SbxOciConfig *c, const char *slave, int preserve_fds)
{
  SbxCreds creds = {.uid = c->uid,
                    .gid = c->gid,
                    .groups = (gid_t *)(void *)c->gids->data,
                    .ngroups = c->gids->len};
  SbxExecPlan plan = {
      .argv = c->args,
      .envp = c->env,
      .creds = &creds,
      .workdir = c->cwd,
      .set_groups = !setgroups_denied(),
      .seccomp = c->seccomp,
      .rlimits = c->rlimits,
      .tty_slave = slave,
      .capsets = &c->caps,
      .keep_privs = !c->no_new_privs,
      .set_umask = c->set_umask,
      .umask = c->umask,
      .preserve_fds = preserve_fds,
      .seccomp_flags = c->seccomp_flags,
  };
  sbx_process_exec(&plan);
}

/* ---- stage 1: namespaces ---- */

/* process.oomScoreAdj: here, before any namespace, as runc's stage 0, and
 * inherited from here on. Raising it needs nothing; going below the lowest
 * value a privileged writer left needs CAP_SYS_RESOURCE (of the host), and
 * a refusal fails create, as runc's does. */
static gboolean set_oom_score(const SbxOciConfig *c, GError **err)
{
  if (!c->set_oom_score)
    return TRUE;
  g_autofree char *text = g_strdup_printf("%d", c->oom_score_adj);
  sbx_autofd fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    return sbx_fail_errno(err, "process.oomScoreAdj %d: write /proc/self/oom_score_adj",
                          c->oom_score_adj);
  return TRUE;
}

static G_GNUC_NORETURN void stage1(Seq *s)
{
  const SbxOciConfig *c = s->c;
  g_autoptr(GError) err = NULL;
  gboolean ok = set_oom_score(c, &err);
  /* Open every path first: joining a mount namespace changes what they name. */
  int fds[16];
  guint n = MIN(c->namespaces->len, G_N_ELEMENTS(fds));
  for (guint i = 0; i < n; i++) {
    SbxOciNamespace *ns = &g_array_index(c->namespaces, SbxOciNamespace, i);
    fds[i] = ns->path ? open(ns->path, O_RDONLY | O_CLOEXEC) : -1;
    if (ns->path && fds[i] < 0 && ok)
      ok = sbx_fail_errno(&err, "namespace %s", ns->path);
  }
  /* The user namespace first: the others are joined with its privileges. */
  for (int pass = 0; ok && pass < 2; pass++)
    for (guint i = 0; ok && i < n; i++) {
      SbxOciNamespace *ns = &g_array_index(c->namespaces, SbxOciNamespace, i);
      if (fds[i] >= 0 && (ns->flag == CLONE_NEWUSER) == (pass == 0) && setns(fds[i], ns->flag) < 0)
        ok = sbx_fail_errno(&err, "join namespace %s", ns->path);
    }
  for (guint i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  if (ok && own(s, CLONE_NEWUSER)) {
    if (unshare(CLONE_NEWUSER) < 0)
      ok = sbx_fail_errno(&err, "create a user namespace");
    else
      ok = sbx_sync_send_ok(s->sync, "userns") && sbx_sync_recv(s->sync, NULL, "sbx-oci", &err);
    if (ok && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
      ok = sbx_fail_errno(&err, "become root in the user namespace (is 0 mapped?)");
  }
  /* Its maps written (they are written through its /proc files, which a
   * non-dumpable process would give to root): from here on, and in the
   * container's process forked below into a pid namespace that may be
   * shared (a pod's), nothing inside may ptrace it or open its exe (the
   * host's sbx-oci) while it holds every capability and no filter. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (ok && unshare((int)(s->own & ~(unsigned long)CLONE_NEWUSER)) < 0)
    ok = sbx_fail_errno(&err, "create namespaces");
  int gate[2] = {-1, -1};
  if (ok && pipe2(gate, O_CLOEXEC) < 0)
    ok = sbx_fail_errno(&err, "pipe");
  pid_t pid = ok ? fork() : -1;
  if (ok && pid < 0)
    ok = sbx_fail_errno(&err, "fork");
  if (pid == 0) {
    close(gate[1]);
    container_main(s, gate[0]);
  }
  if (!ok) {
    sbx_sync_send_error(s->sync, err);
    _exit(1);
  }
  g_autofree char *msg = g_strdup_printf("%d", (int)pid);
  sbx_sync_send_ok(s->sync, msg);
  _exit(0);
}

/* ---- sbx-oci's side ---- */

static gboolean write_file(const char *path, const char *text, GError **err)
{
  sbx_autofd fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || !sbx_write_all(fd, text, strlen(text), NULL))
    return sbx_fail_errno(err, "write %s", path);
  return TRUE;
}

static gboolean run_map_helper(const char *helper, pid_t pid, GArray *ranges, GError **err)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(argv, g_strdup(helper));
  g_ptr_array_add(argv, g_strdup_printf("%d", (int)pid));
  for (guint i = 0; i < ranges->len; i++) {
    SbxOciIdRange *r = &g_array_index(ranges, SbxOciIdRange, i);
    g_ptr_array_add(argv, g_strdup_printf("%u", r->container));
    g_ptr_array_add(argv, g_strdup_printf("%u", r->host));
    g_ptr_array_add(argv, g_strdup_printf("%u", r->size));
  }
  g_ptr_array_add(argv, NULL);
  int status;
  g_autofree char *errout = NULL;
  g_autoptr(GError) local = NULL;
  if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                    &errout, &status, &local))
    return sbx_fail(err, SBX_ERROR_FAILED, "%s: %s", helper, local->message);
  if (!g_spawn_check_wait_status(status, NULL))
    return sbx_fail(err, SBX_ERROR_FAILED, "%s: %s", helper,
                    errout && *errout ? g_strstrip(errout) : "failed");
  return TRUE;
}

static char *ranges_text(GArray *ranges)
{
  GString *t = g_string_new(NULL);
  for (guint i = 0; i < ranges->len; i++) {
    SbxOciIdRange *r = &g_array_index(ranges, SbxOciIdRange, i);
    g_string_append_printf(t, "%u %u %u\n", r->container, r->host, r->size);
  }
  return g_string_free(t, FALSE);
}

/* Just our own id: written directly (setgroups denied, as the kernel asks of
 * an unprivileged writer); anything more through newuidmap/newgidmap. */
static gboolean write_maps(const SbxOciConfig *c, pid_t pid, GError **err)
{
  if (c->uid_maps->len == 0 || c->gid_maps->len == 0)
    return sbx_fail(err, SBX_ERROR_INVALID,
                    "config.json: a user namespace needs linux.uidMappings and gidMappings");
  SbxOciIdRange *u = &g_array_index(c->uid_maps, SbxOciIdRange, 0);
  SbxOciIdRange *g = &g_array_index(c->gid_maps, SbxOciIdRange, 0);
  g_autofree char *base = g_strdup_printf("/proc/%d/", (int)pid);
  g_autofree char *up = g_strconcat(base, "uid_map", NULL),
                  *gp = g_strconcat(base, "gid_map", NULL);
  g_autofree char *sp = g_strconcat(base, "setgroups", NULL);
  gboolean self_u = c->uid_maps->len == 1 && u->size == 1 && u->host == geteuid();
  gboolean self_g = c->gid_maps->len == 1 && g->size == 1 && g->host == getegid();
  if (self_u && self_g) {
    g_autofree char *um = g_strdup_printf("%u %u 1\n", u->container, u->host);
    g_autofree char *gm = g_strdup_printf("%u %u 1\n", g->container, g->host);
    return write_file(sp, "deny", err) && write_file(up, um, err) && write_file(gp, gm, err);
  }
  /* Root of a user namespace (podman's, for --userns=keep-id) may map any
   * of its own ids: written directly, as runc does. */
  if (geteuid() == 0 && getegid() == 0) {
    g_autofree char *um = ranges_text(c->uid_maps), *gm = ranges_text(c->gid_maps);
    if (write_file(up, um, NULL) && write_file(gp, gm, NULL))
      return TRUE;
  }
  return run_map_helper("newuidmap", pid, c->uid_maps, err) &&
         run_map_helper("newgidmap", pid, c->gid_maps, err);
}

int sbx_oci_connect_console(const char *path, GError **err)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    sbx_fail(err, SBX_ERROR_USAGE, "--console-socket %s: path too long", path);
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    sbx_fail_errno(err, "--console-socket %s", path);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

/* The host id a container id maps to, or -1. */
static gint64 host_id(GArray *ranges, guint32 id)
{
  for (guint i = 0; i < ranges->len; i++) {
    SbxOciIdRange *r = &g_array_index(ranges, SbxOciIdRange, i);
    if (id >= r->container && id - r->container < r->size)
      return (gint64)r->host + (id - r->container);
  }
  return -1;
}

/* Possible when sbx-oci is root of a user namespace holding both ids
 * (rootless podman's); refused (EPERM) otherwise, where the mode suffices. */
static void give_fifo_to_root(const SbxOciConfig *c, int dir)
{
  gint64 uid = host_id(c->uid_maps, 0), gid = host_id(c->gid_maps, 0);
  if (uid >= 0 && gid >= 0 && sbx_oci_config_has_ns(c, CLONE_NEWUSER, NULL))
    (void)!fchownat(dir, "exec.fifo", (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
}

pid_t sbx_oci_create(const SbxOciConfig *c, const SbxOciCreate *o, GError **err)
{
  Seq s = {.c = c, .o = o, .sync = -1, .fifo = -1, .console = -1};
  for (guint i = 0; i < c->namespaces->len; i++) {
    SbxOciNamespace *ns = &g_array_index(c->namespaces, SbxOciNamespace, i);
    if (!ns->path)
      s.own |= (unsigned long)ns->flag;
  }
  if (!sbx_oci_config_has_ns(c, CLONE_NEWNS, NULL)) {
    sbx_fail(err, SBX_ERROR_INVALID, "config.json: sbx-oci needs a mount namespace");
    return -1;
  }
  sbx_autofd dir = open(o->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || mkfifoat(dir, "exec.fifo", 0600) < 0) {
    sbx_fail_errno(err, "%s/exec.fifo", o->state_dir);
    return -1;
  }
  /* 0622 and, where we may, the container's root's (as runc): that root
   * reopens it and, in a user namespace that maps no id of ours, may do so
   * only by its mode. The state directory is ours alone (0700). */
  if (fchmodat(dir, "exec.fifo", 0622, 0) < 0) {
    sbx_fail_errno(err, "%s/exec.fifo", o->state_dir);
    return -1;
  }
  give_fifo_to_root(c, dir);
  sbx_autofd fifo = openat(dir, "exec.fifo", O_PATH | O_CLOEXEC);
  sbx_autofd console = o->console_socket ? sbx_oci_connect_console(o->console_socket, err) : -1;
  if (fifo < 0 || (o->console_socket && console < 0)) {
    if (fifo < 0)
      sbx_fail_errno(err, "open exec.fifo");
    return -1;
  }
  int pair[2];
  if (!sbx_sync_pair(pair, err))
    return -1;
  s.fifo = fifo;
  s.console = console;
  pid_t s1 = fork();
  if (s1 < 0) {
    close(pair[0]);
    close(pair[1]);
    sbx_fail_errno(err, "fork");
    return -1;
  }
  if (s1 == 0) {
    close(pair[0]);
    s.sync = pair[1];
    stage1(&s);
  }
  close(pair[1]);
  sbx_autofd sync = pair[0];
  g_autofree char *pidmsg = NULL;
  gboolean ok = TRUE;
  if (own(&s, CLONE_NEWUSER)) {
    ok = sbx_sync_recv(sync, NULL, "sbx-oci stage 1", err) && write_maps(c, s1, err);
    ok = ok && sbx_sync_send_ok(sync, "go");
  }
  ok = ok && sbx_sync_recv(sync, &pidmsg, "sbx-oci stage 1", err);
  if (!ok)
    kill(s1, SIGKILL);
  int status;
  while (waitpid(s1, &status, 0) < 0 && errno == EINTR)
    ;
  if (!ok)
    return -1;
  pid_t pid = (pid_t)g_ascii_strtoll(pidmsg, NULL, 10);
  g_autofree char *msg = NULL;
  ok = pid > 0 && sbx_sync_recv(sync, &msg, "the container's setup", err);
  if (ok && g_strcmp0(msg, "hooks") == 0) {
    g_autofree char *state = o->state_json(pid, o->data);
    g_autofree char *pidtext = g_strdup_printf("%d", (int)pid);
    ok = sbx_oci_run_hooks(c, SBX_HOOK_PRESTART, state, err) &&
         sbx_oci_run_hooks(c, SBX_HOOK_CREATE_RUNTIME, state, err) &&
         (sbx_sync_send_ok(sync, pidtext) || sbx_fail_errno(err, "sbx-oci: container setup")) &&
         sbx_sync_recv(sync, NULL, "the container's setup", err);
  }
  if (!ok) {
    if (pid > 0)
      kill(pid, SIGKILL);
    return -1;
  }
  *o->sync_out = sync;
  sync = -1;
  return pid;
}
