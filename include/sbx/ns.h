/* ns: the namespaces other than user, one file each in src/ns/. Every function
 * runs inside the new namespaces, before pivot_root unless said otherwise. */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* The tty group (Debian, Fedora, Alpine ...): owns /dev/pts/N when mapped. */
#define SBX_TTY_GID 5

/* uts.c: own hostname ("sbx-" + short id by default). */
gboolean sbx_uts_setup(const char *hostname, GError **err);

/* net.c: a new network namespace with only lo up. */
gboolean sbx_net_setup_loopback(GError **err);
/* The same without a word: system calls only, nothing allocated with err
 * NULL (the program's process made early calls it beside init). */
gboolean sbx_net_lo_up(GError **err);
/* The slirp mode's tap0: created, addressed, up, default route. Returns its fd.
 * A network's (--network NAME): mac set, and no route when gateway is NULL
 * (an internal network). */
typedef struct {
  const char *address, *netmask, *gateway;
  guint mtu;
  const guint8 *mac; /* NULL: the kernel's random one */
} SbxTapConfig;
int sbx_net_create_tap(const SbxTapConfig *cfg, GError **err);
/* sbx_net_create_tap without its debug line (as sbx_net_lo_up), and the line. */
int sbx_net_make_tap(const SbxTapConfig *cfg, GError **err);
void sbx_net_tap_debug(const SbxTapConfig *cfg);

/* ipc.c: /dev/mqueue for the new IPC namespace (rootfd = the new root). */
gboolean sbx_ipc_setup(int rootfd, GError **err);

/* pid.c: PID 1 of the sandbox. Forwards signals to `child`, reaps every
 * orphan, returns the exit status sbx should report for `child`. */
int sbx_pid_init_loop(pid_t child, const sigset_t *forwarded);
/* Exit with `result`; with report >= 0 (init's sync socket to sbx), first
 * end and reap the rest of the sandbox and send sbx "exit <result>". */
G_GNUC_NORETURN void sbx_pid_init_exit(int result, int report);
/* The signals sbx forwards: INT TERM HUP QUIT USR1 USR2 (+ WINCH later). */
void sbx_pid_forwarded_signals(sigset_t *set);

/* mount.c: the root filesystem. */
typedef struct {
  const char *layers_dir; /* absolute: layers/<idmap key> */
  char **layer_dirs;      /* relative to layers_dir, bottom first */
  const char *run_dir;    /* absolute: scratch mount base (store's run/) */
  const char *hostname;
  const char *hosts;       /* contents of /etc/hosts */
  const char *resolv_conf; /* contents of /etc/resolv.conf */
  gboolean have_pts_gid;   /* SBX_TTY_GID mapped */
  gboolean read_only;      /* the rootfs mount read-only (--read-only) */
  char **tmpfs;            /* PATH[:options] writable tmpfs mounts (--tmpfs) */
  char **volumes;          /* HOST:CONTAINER:ro|rw, HOST absolute and existing */
  char **hidden;           /* real host paths a volume must not show (sbx's state, its store) */
  guint64 size;            /* bytes: the run tmpfs (writable layer) and --tmpfs without size= */
  const char *disk_dir;    /* --rootfs-disk: upper/ and work/ here instead (NULL: on the tmpfs) */
  int *run_fd;             /* out, when set: the run tmpfs (for sbx to measure its use) */
  /* When set, called just before sysfs is mounted (it shows the network
   * namespace of the mounter): init joins the one made beside it. */
  gboolean (*before_sys)(gpointer data, GError **err);
  gpointer before_sys_data;
} SbxRootfsSpec;

/* Mount the overlay and the API filesystems, then pivot_root into it. */
gboolean sbx_mount_rootfs(const SbxRootfsSpec *spec, GError **err);
/* "MORE,size=..k,nr_inodes=N" for a tmpfs bounded to size bytes. */
char *sbx_tmpfs_size_options(guint64 size, const char *more);

/* The pieces of the sequence sbx-oci shares (src/oci/): each resolves its
 * targets beneath rootfd (RESOLVE_IN_ROOT) and mounts through /proc/self/fd. */
gboolean sbx_mount_at_fd(const char *src, int fd, const char *fstype, unsigned long flags,
                         const char *data, const char *what, GError **err);
/* Bind null, zero, full, random, urandom, tty from the host into dev (an fd
 * of a fresh /dev) and make the fd, std* and ptmx links; a name already
 * there (a mount of its own) is left as it is. */
gboolean sbx_mount_dev_nodes(int devfd, GError **err);
/* Hide each of masked (NULL-terminated, may be NULL) and make each of
 * readonly read-only; absent paths are skipped. */
gboolean sbx_mount_mask_paths(int rootfd, const char *const *masked, const char *const *readonly,
                              GError **err);
/* sysfs on /sys, or a read-only bind of the host's when sysfs is refused. */
gboolean sbx_mount_sys(int rootfd, GError **err);
/* A mount target inside the root: a directory, or an empty file (!dir);
 * refused when it resolves to the root itself (an image's link to /). */
int sbx_mount_target(int rootfd, const char *path, gboolean dir, GError **err);
/* The same for a directory made with mode when missing. */
int sbx_mount_dir(int rootfd, const char *path, mode_t mode, GError **err);
/* pivot_root into rootfd (a mount point) and detach the old root. */
gboolean sbx_mount_pivot(int rootfd, GError **err);
