/* Mount namespace: the sandbox's root filesystem.
 *
 *   store/run (tmpfs, private to this mount namespace, size= bounded)
 *     upper/ work/    the overlay's writable part: gone when the namespace is
 *                     (--rootfs-disk: in store/run-disk/<id>/ instead)
 *     root/           the overlay: image layers (read-only) + upper
 *     hostname hosts resolv.conf   (--read-only) bind-mounted onto /etc
 *
 * Mount targets inside the image are resolved with RESOLVE_IN_ROOT, so a
 * /dev or /etc/hosts planted as a symlink to a host path lands inside the
 * rootfs, and every mount goes through /proc/self/fd/N of the resolved fd. */
#include "sbx/ns.h"
#include "sbx/path.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

static char *fd_path(int fd)
{
  return g_strdup_printf("/proc/self/fd/%d", fd);
}

gboolean sbx_mount_at_fd(const char *src, int fd, const char *fstype, unsigned long flags,
                         const char *data, const char *what, GError **err)
{
  g_autofree char *target = fd_path(fd);
  if (mount(src, target, fstype, flags, data) < 0)
    return sbx_fail_errno(err, "mount %s", what);
  if (sbx_log_level >= SBX_LOG_DEBUG) {
    g_autofree char *shown =
        src && g_str_has_prefix(src, "/proc/self/fd/") ? g_file_read_link(src, NULL) : NULL;
    sbx_debug("mount %s%s on %s%s%s%s", fstype ? fstype : "bind ",
              fstype ? ""
                     : (shown ? shown
                        : src ? src
                              : ""),
              what, data ? " " : "", data ? data : "", flags & MS_RDONLY ? " (read-only)" : "");
  }
  return TRUE;
}

#define mount_at_fd sbx_mount_at_fd

/* overlay through the new mount API: one "lowerdir+" per layer has no limit on
 * the number of layers (the mount(2) option string stops at a page). */
static gboolean overlay_fsconfig(const SbxRootfsSpec *spec, const char *upper, const char *work,
                                 const char *target, GError **err)
{
  sbx_autofd fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fs < 0)
    return sbx_fail_errno(err, "fsopen overlay");
  guint n = g_strv_length(spec->layer_dirs);
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0)
    return sbx_fail_errno(err, "overlay source");
  for (guint i = n; i-- > 0;) {
    g_autofree char *p = g_build_filename(spec->layers_dir, spec->layer_dirs[i], NULL);
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir+", p, 0) < 0)
      return sbx_fail_errno(err, "overlay lowerdir+");
  }
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return sbx_fail_errno(err, "overlay");
  sbx_autofd mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
  if (mnt < 0)
    return sbx_fail_errno(err, "fsmount overlay");
  if (syscall(SYS_move_mount, mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return sbx_fail_errno(err, "move_mount overlay");
  sbx_debug("mount overlay (%u layers, fsconfig lowerdir+) on %s", n, target);
  return TRUE;
}

/* Kernels before 6.8: one option string of at most a page. The layers are
 * named through short symlinks (run/l/0, run/l/1, ...) and given relative to
 * that directory, so about a thousand layers fit instead of ~60 full paths. */
static gboolean overlay_legacy(const SbxRootfsSpec *spec, const char *upper, const char *work,
                               const char *target, GError **err)
{
  g_autofree char *ldir = g_build_filename(spec->run_dir, "l", NULL);
  if (mkdir(ldir, 0700) < 0 && errno != EEXIST)
    return sbx_fail_errno(err, "create %s", ldir);
  g_autoptr(GString) opts = g_string_new("lowerdir=");
  guint n = g_strv_length(spec->layer_dirs);
  for (guint i = n; i-- > 0;) {
    g_autofree char *name = g_strdup_printf("%s/%u", ldir, i);
    g_autofree char *dest = g_build_filename(spec->layers_dir, spec->layer_dirs[i], NULL);
    if (symlink(dest, name) < 0)
      return sbx_fail_errno(err, "create %s", name);
    g_string_append_printf(opts, "%s%u", i == n - 1 ? "" : ":", i);
  }
  g_string_append_printf(opts, ",upperdir=%s,workdir=%s,userxattr", upper, work);
  if (opts->len >= 4096)
    return sbx_fail(err, SBX_ERROR_FAILED,
                    "overlay: %u layers do not fit in mount options on this kernel "
                    "(Linux 6.8 or later has no such limit)",
                    n);
  if (chdir(ldir) < 0)
    return sbx_fail_errno(err, "chdir %s", ldir);
  int r = mount("overlay", target, "overlay", MS_NODEV, opts->str);
  int e = errno;
  if (r < 0)
    return sbx_fail_errnum(err, e, "mount overlay");
  if (chdir("/") < 0)
    return sbx_fail_errno(err, "chdir /");
  sbx_debug("mount overlay (%u layers, mount options) on %s", n, target);
  return TRUE;
}

static gboolean mount_overlay(const SbxRootfsSpec *spec, GError **err)
{
  const char *wdir = spec->disk_dir ? spec->disk_dir : spec->run_dir;
  g_autofree char *upper = g_build_filename(wdir, "upper", NULL);
  g_autofree char *work = g_build_filename(wdir, "work", NULL);
  g_autofree char *target = g_build_filename(spec->run_dir, "root", NULL);
  g_autoptr(GError) local = NULL;
  if (overlay_fsconfig(spec, upper, work, target, &local))
    return TRUE;
  /* EINVAL: no lowerdir+ (before 6.8); ENOSYS: no fsopen (before 5.2). */
  int e = sbx_error_errno(local);
  if (e != EINVAL && e != ENOSYS) {
    g_propagate_error(err, g_steal_pointer(&local));
    return FALSE;
  }
  sbx_debug("overlay via fsconfig failed (%s): trying mount options", local->message);
  return overlay_legacy(spec, upper, work, target, err);
}

/* A new file of ours, 0644 whatever the umask (sbx's caller's: with 077
 * the sandbox's other users could not read /etc/hosts or resolv.conf). */
static gboolean write_new_file(int dirfd, const char *name, const char *content, GError **err)
{
  sbx_autofd fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 || fchmod(fd, 0644) < 0)
    return sbx_fail_errno(err, "create %s", name);
  return sbx_write_all(fd, content, strlen(content), err);
}

static gboolean prepare_run_dir(const SbxRootfsSpec *spec, int *runfd, GError **err)
{
  /* Nothing we mount may propagate back to the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return sbx_fail_errno(err, "make / a slave mount");
  /* Bounded: without size= a tmpfs may take half the host's RAM. */
  g_autofree char *opts = sbx_tmpfs_size_options(spec->size, "mode=0755");
  if (mount("tmpfs", spec->run_dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
    return sbx_fail_errno(err, "mount tmpfs on %s", spec->run_dir);
  sbx_debug("mount tmpfs on %s %s", spec->run_dir, opts);
  *runfd = open(spec->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*runfd < 0)
    return sbx_fail_errno(err, "open %s", spec->run_dir);
  static const char *const dirs[] = {"root", "upper", "work"};
  for (guint i = 0; i < (spec->disk_dir ? 1 : G_N_ELEMENTS(dirs)); i++)
    if (mkdirat(*runfd, dirs[i], 0755) < 0)
      return sbx_fail_errno(err, "create %s/%s", spec->run_dir, dirs[i]);
  /* --read-only: the /etc files stay writable, bound from here (etc_files). */
  return !spec->read_only || (write_new_file(*runfd, "hostname", spec->hostname, err) &&
                              write_new_file(*runfd, "hosts", spec->hosts, err) &&
                              write_new_file(*runfd, "resolv.conf", spec->resolv_conf, err));
}

/* Paths of /proc and /sys that tell about or act on the host: hidden (a file
 * under /dev/null, a directory under an empty read-only tmpfs) or read-only,
 * as Docker's and crun's defaults do. */
/* /proc's before sysfs is mounted (while the network namespace is still
 * being made beside init: sandbox.c net_made_early), /sys's after. */
static const char *const masked_proc_paths[] = {
    "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
    "/proc/acpi",  "/proc/scsi", "/proc/asound",     "/proc/interrupts",  NULL};
static const char *const masked_sys_paths[] = {"/sys/firmware", "/sys/devices/virtual/powercap",
                                               NULL};
static const char *const readonly_paths[] = {
    "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", NULL};

/* Nothing may be mounted over the sandbox's root itself. An image's link to
 * it (proc -> /, data -> /) makes a mount target of it; a mount there sits
 * where every later walk from rootfd (the masks, the read-only paths) never
 * looks, and after pivot_root /.. reaches it. runc refuses /proc as a link
 * for the same reason; here any target is judged by what it resolves to. */
static gboolean not_the_root(int rootfd, int fd, const char *path, GError **err)
{
  struct stat at, root;
  if (fstat(fd, &at) < 0 || fstat(rootfd, &root) < 0)
    return sbx_fail_errno(err, "mount target %s", path);
  if (at.st_dev == root.st_dev && at.st_ino == root.st_ino)
    return sbx_fail(err, SBX_ERROR_INVALID, "mount %s: the target is the sandbox's root", path);
  return TRUE;
}

/* Without openat2, sbx_open_in_root opens a link in the last place as the
 * link itself (and refuses one on the way): follow it here, inside the root
 * as RESOLVE_IN_ROOT would, an absolute target from the root. ".." is taken
 * by name, which is what it means here: no directory on the way can be a
 * link (the walk refuses them), and at the root it stays there. With openat2
 * the kernel has followed it already. */
static int follow_in_root(int rootfd, const char *path, int fd, GError **err)
{
  g_autofree char *cur = g_strdup(path);
  for (int hops = 0; fd >= 0; hops++) {
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISLNK(st.st_mode))
      break;
    char target[PATH_MAX];
    ssize_t n = hops < 40 ? readlinkat(fd, "", target, sizeof target - 1) : -1;
    int e = hops < 40 ? errno : ELOOP;
    close(fd);
    if (n <= 0) {
      sbx_fail_errnum(err, n == 0 ? ENOENT : e, "%s", path);
      return -1;
    }
    target[n] = '\0';
    g_autofree char *dir = g_path_get_dirname(cur);
    g_free(cur);
    g_autofree char *next =
        target[0] == '/' ? g_strdup(target) : g_build_filename(dir, target, NULL);
    cur = g_canonicalize_filename(next, "/");
    fd = sbx_open_in_root(rootfd, cur, O_PATH, 0, err);
  }
  return fd;
}

/* What a mask or a read-only bind goes on: the path resolved inside the
 * root, its last component too, as a mount destination is. An image's
 * /data -> /realdata gets a volume at /data on /realdata, and runc protects
 * what the link names: a mask of the link alone left the target readable,
 * a read-only link left the volume writable. Never the root itself
 * (secret -> /). Returns -1 with errno and err (if given). */
static int open_resolved(int rootfd, const char *path, GError **err)
{
  int fd = sbx_open_in_root(rootfd, path, O_PATH, 0, err);
  return sbx_have_openat2() ? fd : follow_in_root(rootfd, path, fd, err);
}

/* *fd -1 only when the path is not there (or cannot be: a file on its
 * way, a link to nothing); any other failure to look fails the run rather
 * than leave the path bare. */
static gboolean open_to_mask(int rootfd, const char *path, int *fd, GError **err)
{
  /* With openat2, errno is its answer: an absent path costs no message
   * (the first one formatted in init costs ~0.3 ms, see util/error.c). */
  *fd = -1;
  int got = -1;
  if (sbx_have_openat2()) {
    got = open_resolved(rootfd, path, NULL);
    if (got < 0 && (errno == ENOENT || errno == ENOTDIR))
      return TRUE;
  }
  g_autoptr(GError) local = NULL;
  if (got < 0)
    got = open_resolved(rootfd, path, &local);
  if (got < 0 &&
      (local->domain == SBX_ERRNO_ERROR && (local->code == ENOENT || local->code == ENOTDIR)))
    return TRUE;
  if (got < 0) {
    g_propagate_prefixed_error(err, g_steal_pointer(&local), "mask: ");
    return FALSE;
  }
  if (!not_the_root(rootfd, got, path, err)) {
    close(got);
    return FALSE;
  }
  *fd = got;
  return TRUE;
}

/* *empty: the first directory's mask, bound over the next ones (a bind is
 * cheaper to make and to tear down than a tmpfs of its own). */
static gboolean mask_path(int rootfd, const char *path, int devnull, int *empty, GError **err)
{
  /* O_PATH of what is there: absent paths need no mask. */
  sbx_autofd fd = -1;
  if (!open_to_mask(rootfd, path, &fd, err))
    return FALSE;
  struct stat st;
  if (fd < 0)
    return TRUE;
  if (fstat(fd, &st) < 0)
    return sbx_fail_errno(err, "mask %s", path);
  if (S_ISDIR(st.st_mode) && *empty >= 0) {
    g_autofree char *src = fd_path(*empty);
    return mount_at_fd(src, fd, NULL, MS_BIND, NULL, path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    if (!mount_at_fd("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     "size=0,mode=0555", path, err))
      return FALSE;
    /* The mount now on top of the path, not the directory beneath it. */
    *empty = open_resolved(rootfd, path, err);
    return *empty >= 0;
  }
  g_autofree char *src = fd_path(devnull);
  return mount_at_fd(src, fd, NULL, MS_BIND, NULL, path, err);
}

static gboolean readonly_path(int rootfd, const char *path, GError **err)
{
  sbx_autofd fd = -1;
  if (!open_to_mask(rootfd, path, &fd, err))
    return FALSE;
  if (fd < 0)
    return TRUE;
  g_autofree char *self = fd_path(fd);
  if (!mount_at_fd(self, fd, NULL, MS_BIND | MS_REC, NULL, path, err))
    return FALSE;
  /* The bind is a new mount on top: reopen to remount that one. */
  sbx_autofd top = open_resolved(rootfd, path, err);
  return top >= 0 &&
         mount_at_fd(NULL, top, NULL,
                     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                     path, err);
}

gboolean sbx_mount_mask_paths(int rootfd, const char *const *masked, const char *const *readonly,
                              GError **err)
{
  sbx_autofd devnull = -1, empty = -1;
  if (masked && masked[0] && (devnull = sbx_open_in_root(rootfd, "/dev/null", O_PATH, 0, err)) < 0)
    return FALSE;
  /* Files are masked by binding /dev/null over them: it must be the null
   * device, not whatever an image (with no /dev of ours) put there. */
  struct stat st;
  if (devnull >= 0 &&
      (fstat(devnull, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)))
    return sbx_fail(err, SBX_ERROR_INVALID, "mask: /dev/null in the root is not the null device");
  for (guint i = 0; masked && masked[i]; i++)
    if (!mask_path(rootfd, masked[i], devnull, &empty, err))
      return FALSE;
  for (guint i = 0; readonly && readonly[i]; i++)
    if (!readonly_path(rootfd, readonly[i], err))
      return FALSE;
  return TRUE;
}

static gboolean mount_proc(int rootfd, GError **err)
{
  sbx_autofd fd = sbx_mount_dir(rootfd, "/proc", 0555, err);
  if (fd < 0)
    return FALSE;
  if (!mount_at_fd("proc", fd, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/proc", err)) {
    g_prefix_error(err, "(the host's /proc has parts hidden by over-mounts, which forbids a new "
                        "one in a user namespace) ");
    return FALSE;
  }
  return TRUE;
}

/* size=, and nr_inodes= in proportion: inodes cost memory that size= does
 * not count (one per 8 KiB allowed, at least 1024). */
char *sbx_tmpfs_size_options(guint64 size, const char *more)
{
  return g_strdup_printf("%s,size=%" G_GUINT64_FORMAT "k,nr_inodes=%" G_GUINT64_FORMAT, more,
                         size / 1024, MAX(size / 8192, 1024));
}

/* --tmpfs PATH[:size=64m,mode=1777]: only size, mode and nr_inodes are passed
 * on; without size= it gets the writable layer's bound. */
static gboolean mount_tmpfs(int rootfd, const char *spec, guint64 size, GError **err)
{
  g_auto(GStrv) parts = g_strsplit(spec, ":", 2);
  if (!parts[0] || parts[0][0] != '/')
    return sbx_fail(err, SBX_ERROR_USAGE, "--tmpfs %s: the path must be absolute", spec);
  g_autoptr(GString) opts = g_string_new("mode=1777");
  g_auto(GStrv) o = g_strsplit(parts[1] ? parts[1] : "", ",", -1);
  for (char **p = o; *p; p++) {
    if (!**p)
      continue;
    if (!g_str_has_prefix(*p, "size=") && !g_str_has_prefix(*p, "mode=") &&
        !g_str_has_prefix(*p, "nr_inodes="))
      return sbx_fail(err, SBX_ERROR_USAGE, "--tmpfs %s: option '%s' not supported", spec, *p);
    g_string_append_printf(opts, ",%s", *p);
  }
  if (!strstr(opts->str, ",size=") && strstr(opts->str, ",nr_inodes="))
    g_string_append_printf(opts, ",size=%" G_GUINT64_FORMAT "k", size / 1024);
  else if (!strstr(opts->str, ",size=")) {
    g_autofree char *bound = sbx_tmpfs_size_options(size, "");
    g_string_append(opts, bound);
  }
  sbx_autofd fd = sbx_mount_dir(rootfd, parts[0], 01777, err);
  return fd >= 0 &&
         mount_at_fd("tmpfs", fd, "tmpfs", MS_NOSUID | MS_NODEV, opts->str, parts[0], err);
}

typedef struct {
  const char *name;
  unsigned major, minor;
} DevNode;

/* Device nodes cannot be created in a user namespace: bind the host's, after
 * checking each really is the device it claims to be. */
static gboolean bind_dev_node(int devfd, const DevNode *d, GError **err)
{
  g_autofree char *host = g_strconcat("/dev/", d->name, NULL);
  sbx_autofd src = open(host, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat(src, &st) < 0)
    return sbx_fail_errno(err, "%s", host);
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != d->major || minor(st.st_rdev) != d->minor)
    return sbx_fail(err, SBX_ERROR_FAILED, "%s is not the character device %u:%u", host, d->major,
                    d->minor);
  sbx_autofd dst =
      openat(devfd, d->name, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (dst < 0 && errno == EEXIST)
    return TRUE; /* a mount of the caller's is there (sbx-oci: podman --privileged, -v) */
  if (dst < 0)
    return sbx_fail_errno(err, "create /dev/%s", d->name);
  g_autofree char *srcp = fd_path(src);
  g_autofree char *what = g_strconcat("/dev/", d->name, NULL);
  return mount_at_fd(srcp, dst, NULL, MS_BIND, NULL, what, err);
}

/* A name already in `dev` is kept: in a /dev that is our fresh tmpfs only a
 * mount asked for puts one there (sbx-oci's config.json mounts, which come
 * first: /dev/null, /dev/fd...), and that mount is what was asked for, as
 * runc keeps it. */
gboolean sbx_mount_dev_nodes(int dev, GError **err)
{
  static const DevNode nodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                                  {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (guint i = 0; i < G_N_ELEMENTS(nodes); i++)
    if (!bind_dev_node(dev, &nodes[i], err))
      return FALSE;
  static const char *const links[][2] = {{"fd", "/proc/self/fd"},
                                         {"stdin", "/proc/self/fd/0"},
                                         {"stdout", "/proc/self/fd/1"},
                                         {"stderr", "/proc/self/fd/2"},
                                         {"ptmx", "pts/ptmx"}};
  for (guint i = 0; i < G_N_ELEMENTS(links); i++)
    if (symlinkat(links[i][1], dev, links[i][0]) < 0 && errno != EEXIST)
      return sbx_fail_errno(err, "create /dev/%s", links[i][0]);
  return TRUE;
}

static gboolean mount_dev(int rootfd, gboolean pts_gid, GError **err)
{
  sbx_autofd under = sbx_mount_dir(rootfd, "/dev", 0755, err);
  if (under < 0 || !mount_at_fd("tmpfs", under, "tmpfs", MS_NOSUID | MS_NOEXEC,
                                "mode=0755,size=65536k", "/dev", err))
    return FALSE;
  sbx_autofd dev = sbx_open_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY, 0, err);
  if (dev < 0 || !sbx_mount_dev_nodes(dev, err))
    return FALSE;
  if (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 01777) < 0)
    return sbx_fail_errno(err, "create /dev/pts");
  sbx_autofd pts = openat(dev, "pts", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  sbx_autofd shm = openat(dev, "shm", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  const char *pts_opts = pts_gid
                             ? "newinstance,ptmxmode=0666,mode=0620,gid=" G_STRINGIFY(SBX_TTY_GID)
                             : "newinstance,ptmxmode=0666,mode=0620";
  return mount_at_fd("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, pts_opts, "/dev/pts", err) &&
         mount_at_fd("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
                     "/dev/shm", err);
}

gboolean sbx_mount_sys(int rootfd, GError **err)
{
  sbx_autofd fd = sbx_mount_dir(rootfd, "/sys", 0555, err);
  if (fd < 0)
    return FALSE;
  const unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  g_autoptr(GError) local = NULL;
  if (mount_at_fd("sysfs", fd, "sysfs", flags, NULL, "/sys", &local))
    return TRUE;
  /* sysfs needs our own network namespace (we have one) and a host /sys not
   * hidden by over-mounts; otherwise a read-only view of the host's. */
  sbx_debug("sysfs: %s; binding the host's read-only", local->message);
  if (!mount_at_fd("/sys", fd, NULL, MS_BIND | MS_REC, NULL, "/sys", err))
    return FALSE;
  sbx_autofd again = sbx_open_in_root(rootfd, "/sys", O_PATH | O_DIRECTORY, 0, err);
  if (again < 0)
    return FALSE;
  /* Every mount under it read-only too (cgroup2, ...), not just the top. */
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                        MOUNT_ATTR_NOEXEC};
  if (syscall(SYS_mount_setattr, again, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) == 0)
    return TRUE;
  return mount_at_fd(NULL, again, NULL, MS_REMOUNT | MS_BIND | flags, NULL, "/sys (read-only)",
                     err);
}

/* /etc/hostname, /etc/hosts, /etc/resolv.conf: ours in place of whatever
 * the image has (a symlink there is replaced, not followed). Written into the
 * writable layer, which is this run's alone: three bind mounts fewer to make
 * and to tear down, and a program may rename over them as on a host (sed -i).
 * --read-only: bound from the run directory, so that they stay writable. */
static gboolean etc_files(const SbxRootfsSpec *spec, int rootfd, int runfd, GError **err)
{
  sbx_autofd etc = sbx_mkdir_in_root(rootfd, "/etc", 0755, err);
  if (etc < 0)
    return FALSE;
  static const char *const files[] = {"hostname", "hosts", "resolv.conf"};
  const char *content[] = {spec->hostname, spec->hosts, spec->resolv_conf};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    const char *f = files[i];
    struct stat st;
    gboolean there = fstatat(etc, f, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (there && (!spec->read_only || !S_ISREG(st.st_mode)) &&
        unlinkat(etc, f, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
      return sbx_fail_errno(err, "replace /etc/%s", f);
    if (!spec->read_only) {
      /* A new file: not the image's owner or mode. */
      if (!write_new_file(etc, f, content[i], err)) {
        g_prefix_error(err, "/etc/%s: ", f);
        return FALSE;
      }
      continue;
    }
    sbx_autofd dst = openat(etc, f, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    sbx_autofd src = openat(runfd, f, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (dst < 0 || src < 0)
      return sbx_fail_errno(err, "/etc/%s", f);
    g_autofree char *srcp = fd_path(src);
    g_autofree char *what = g_strconcat("/etc/", f, NULL);
    if (!mount_at_fd(srcp, dst, NULL, MS_BIND, NULL, what, err))
      return FALSE;
  }
  return TRUE;
}

int sbx_mount_dir(int rootfd, const char *path, mode_t mode, GError **err)
{
  int fd = sbx_mkdir_in_root(rootfd, path, mode, err);
  if (fd < 0) /* its words name where the walk stopped (a link's target): say whose */
    g_prefix_error(err, "mount target %s: ", path);
  if (fd >= 0 && !not_the_root(rootfd, fd, path, err)) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The target of a volume inside the root: a directory for a directory, an
 * empty file for a file; planted symlinks resolve inside the root. */
int sbx_mount_target(int rootfd, const char *path, gboolean dir, GError **err)
{
  if (dir)
    return sbx_mount_dir(rootfd, path, 0755, err);
  g_autofree char *d = g_path_get_dirname(path), *base = g_path_get_basename(path);
  sbx_autofd parent = sbx_mkdir_in_root(rootfd, d, 0755, err);
  if (parent < 0) {
    g_prefix_error(err, "mount target %s: ", path);
    return -1;
  }
  /* O_PATH: whatever the image put there (a FIFO would block an open). */
  int made = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (made >= 0)
    close(made);
  int fd = sbx_open_in_root(rootfd, path, O_PATH, 0, NULL); /* symlinks resolve inside */
  if (fd < 0)
    sbx_fail_errno(err, "create mount target %s", path);
  if (fd >= 0 && !not_the_root(rootfd, fd, path, err)) {
    close(fd);
    return -1;
  }
  return fd;
}

/* sbx's own directories (its state: the holder's pid file, named sandboxes'
 * records; its store: other images' layers) where a volume shows them, as
 * `-v /tmp:/tmp` does /tmp/sbx-UID when there is no runtime directory:
 * masked by an empty read-only directory, like /proc's masks. A sandbox
 * able to write them could steer later starts, `sbx exec` and `sbx stop`,
 * or other images. A volume inside one of them is refused. Fails closed:
 * the path masked must be that directory (a target stacked on the root,
 * where a walk from rootfd would not see the volume, is refused before). */
static gboolean hide_own_dirs(int rootfd, int src, const char *target, char **hidden, GError **err)
{
  g_autofree char *link = fd_path(src);
  g_autofree char *real = hidden && hidden[0] ? g_file_read_link(link, NULL) : NULL;
  if (!real)
    return !(hidden && hidden[0]) || sbx_fail_errno(err, "-v %s", target);
  gsize n = strlen(real);
  for (char **h = hidden; *h; h++) {
    gsize hn = strlen(*h);
    if (strncmp(real, *h, hn) == 0 && (real[hn] == '\0' || real[hn] == '/'))
      return sbx_fail(err, SBX_ERROR_USAGE, "-v %s: inside sbx's own %s (its state or store)", real,
                      *h);
    if (!(strncmp(*h, real, n) == 0 && ((*h)[n] == '/' || (n == 1 && real[0] == '/'))))
      continue;
    const char *rest = *h + n;
    g_autofree char *inside = g_build_filename(target, rest, NULL);
    struct stat want, got;
    sbx_autofd there = sbx_open_in_root(rootfd, inside, O_PATH | O_NOFOLLOW, 0, NULL);
    if (stat(*h, &want) < 0 || there < 0 || fstat(there, &got) < 0 || got.st_dev != want.st_dev ||
        got.st_ino != want.st_ino)
      return sbx_fail(err, SBX_ERROR_FAILED, "-v %s: cannot mask sbx's own %s at %s", real, *h,
                      inside);
    const char *const masked[] = {inside, NULL};
    sbx_debug("-v %s: %s masked (sbx's own)", real, inside);
    if (!sbx_mount_mask_paths(rootfd, masked, NULL, err))
      return FALSE;
  }
  return TRUE;
}

/* -v HOST:CONTAINER[:ro]: a recursive bind; ":ro" makes every mount under it
 * read-only (mount_setattr with AT_RECURSIVE; before 5.12, the top one). */
static gboolean mount_volume(int rootfd, const char *spec, char **hidden, GError **err)
{
  g_auto(GStrv) p = g_strsplit(spec, ":", 3);
  sbx_autofd src = open(p[0], O_PATH | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat(src, &st) < 0)
    return sbx_fail_errno(err, "-v %s", p[0]);
  sbx_autofd dst = sbx_mount_target(rootfd, p[1], S_ISDIR(st.st_mode), err);
  if (dst < 0)
    return FALSE;
  /* Not over the root (docker refuses "/" too): by the name or by a link of
   * the image's (data -> /), it would sit where a walk from rootfd never
   * looks, and on top of everything. */
  struct stat at, root;
  if (fstat(dst, &at) < 0 || fstat(rootfd, &root) < 0)
    return sbx_fail_errno(err, "-v %s", p[1]);
  if (at.st_dev == root.st_dev && at.st_ino == root.st_ino)
    return sbx_fail(err, SBX_ERROR_USAGE, "-v %s:%s: the target is the sandbox's root", p[0], p[1]);
  g_autofree char *srcp = fd_path(src);
  if (!mount_at_fd(srcp, dst, NULL, MS_BIND | MS_REC, NULL, p[1], err) ||
      !hide_own_dirs(rootfd, src, p[1], hidden, err))
    return FALSE;
  if (g_strcmp0(p[2], "ro") != 0)
    return TRUE;
  sbx_autofd top = sbx_open_in_root(rootfd, p[1], O_PATH, 0, err);
  if (top < 0)
    return FALSE;
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, top, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) == 0)
    return TRUE;
  struct statvfs sv;
  unsigned long locked = 0;
  if (fstatvfs(top, &sv) == 0)
    locked = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
             (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
  return mount_at_fd(NULL, top, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | locked, NULL, p[1], err);
}

gboolean sbx_mount_pivot(int rootfd, GError **err)
{
  /* pivot_root(".", ".") stacks the old root on the new one; detaching it
   * leaves nothing of the host reachable by path. */
  if (fchdir(rootfd) < 0)
    return sbx_fail_errno(err, "chdir to the new root");
  if (syscall(SYS_pivot_root, ".", ".") < 0)
    return sbx_fail_errno(err, "pivot_root");
  if (umount2(".", MNT_DETACH) < 0)
    return sbx_fail_errno(err, "detach the old root");
  if (chdir("/") < 0)
    return sbx_fail_errno(err, "chdir /");
  sbx_debug("pivot_root done, old root detached");
  return TRUE;
}

gboolean sbx_mount_rootfs(const SbxRootfsSpec *spec, GError **err)
{
  sbx_autofd runfd = -1;
  if (!prepare_run_dir(spec, &runfd, err) || !mount_overlay(spec, err))
    return FALSE;
  if (spec->run_fd)
    *spec->run_fd = fcntl(runfd, F_DUPFD_CLOEXEC, 3);
  g_autofree char *root = g_build_filename(spec->run_dir, "root", NULL);
  sbx_autofd rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return sbx_fail_errno(err, "open %s", root);
  if (!mount_proc(rootfd, err) || !mount_dev(rootfd, spec->have_pts_gid, err) ||
      !sbx_ipc_setup(rootfd, err) ||
      !sbx_mount_mask_paths(rootfd, masked_proc_paths, readonly_paths, err) ||
      !etc_files(spec, rootfd, runfd, err) ||
      (spec->before_sys && !spec->before_sys(spec->before_sys_data, err)) ||
      !sbx_mount_sys(rootfd, err) || !sbx_mount_mask_paths(rootfd, masked_sys_paths, NULL, err))
    return FALSE;
  for (char **t = spec->tmpfs; t && *t; t++)
    if (!mount_tmpfs(rootfd, *t, spec->size, err))
      return FALSE;
  for (char **v = spec->volumes; v && *v; v++)
    if (!mount_volume(rootfd, *v, spec->hidden, err))
      return FALSE;
  if (!sbx_mount_pivot(rootfd, err))
    return FALSE;
  /* --read-only: the root mount only; /dev, /proc, tmpfs mounts keep theirs. */
  if (spec->read_only &&
      mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV, NULL) < 0)
    return sbx_fail_errno(err, "make the root file system read-only");
  return TRUE;
}
