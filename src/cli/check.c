/* sbx check: does this host give sbx what it needs? Each line says what was
 * tried, and what to change when it failed. */
#include "sbx/cli.h"
#include "sbx/net.h"
#include "sbx/netspare.h"
#include "sbx/path.h"
#include "sbx/state.h"
#include "sbx/user.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>

static int failures;

static void report(gboolean ok, gboolean required, const char *what, const char *fix)
{
  printf("%-5s %s%s%s\n",
         ok         ? "ok"
         : required ? "FAIL"
                    : "no",
         what, ok || !fix ? "" : ": ", ok || !fix ? "" : fix);
  if (!ok && required)
    failures++;
}

/* In a child: a user namespace with our one id, then (step 2) overlayfs in it. */
static int probe_child(int step)
{
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
    return 1;
  g_autofree char *um = g_strdup_printf("0 %u 1", (unsigned)uid);
  g_autofree char *gm = g_strdup_printf("0 %u 1", (unsigned)gid);
  if (!sbx_write_value("/proc/self/setgroups", "deny", NULL) ||
      !sbx_write_value("/proc/self/uid_map", um, NULL) ||
      !sbx_write_value("/proc/self/gid_map", gm, NULL))
    return 2;
  if (step == 1)
    return 0;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount("tmpfs", "/tmp", "tmpfs", 0, NULL) < 0)
    return 3;
  if (mkdir("/tmp/l", 0755) < 0 || mkdir("/tmp/u", 0755) < 0 || mkdir("/tmp/w", 0755) < 0 ||
      mkdir("/tmp/m", 0755) < 0)
    return 4;
  if (mount("overlay", "/tmp/m", "overlay", 0,
            "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w,userxattr") < 0)
    return 5;
  return 0;
}

static gboolean probe(int step)
{
  pid_t pid = fork();
  if (pid == 0)
    _exit(probe_child(step));
  int status;
  return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

/* Range-mode starts join the user namespace of a per-user holder process
 * (ns/holder.c) instead of running newuidmap/newgidmap each time. */
static void check_holder(const SbxIdMap *map)
{
  g_autoptr(GError) err = NULL;
  g_autofree char *dir = sbx_state_base(&err);
  if (!dir) {
    printf("info  user namespace holder: none (%s)\n", err->message);
    return;
  }
  g_autofree char *path = sbx_userns_holder_socket(map, dir);
  pid_t pid = sbx_userns_holder_find(map, dir, &err);
  if (pid > 0)
    printf("info  user namespace holder: pid %d, socket %s\n", (int)pid, path);
  else
    printf("info  user namespace holder: none running (the next range-mode start makes one at "
           "%s)\n",
           path);
}

/* The slirp network's helper, started ahead by the run before (netspare.h). */
static void check_spare(void)
{
  if (!sbx_cli_settings()->net_spare) {
    printf("info  network helper spare: off (SBX_NET_SPARE=0)\n");
    return;
  }
  g_autoptr(GError) err = NULL;
  g_autofree char *dir = sbx_state_base(&err);
  if (!dir) {
    printf("info  network helper spare: none (%s)\n", err->message);
    return;
  }
  g_autofree char *path = g_build_filename(dir, SBX_NET_SPARE_SOCK, NULL);
  pid_t pid = sbx_net_spare_find(dir);
  if (pid > 0)
    printf("info  network helper spare: pid %d, socket %s\n", (int)pid, path);
  else
    printf("info  network helper spare: none waiting (a run with the slirp network leaves one at "
           "%s)\n",
           path);
}

static void check_ids(void)
{
  SbxIdMap map;
  g_autoptr(GError) err = NULL;
  gboolean range = sbx_idmap_resolve(SBX_USERNS_RANGE, sbx_cli_settings(), &map, &err);
  report(range, FALSE, "a subordinate id range (/etc/subuid, /etc/subgid) and newuidmap/newgidmap",
         err ? err->message : NULL);
  if (range) {
    struct stat st;
    gboolean setuid_ok = stat(map.newuidmap, &st) == 0 && (st.st_mode & S_ISUID);
    report(setuid_ok, FALSE, "newuidmap is setuid root (or has file capabilities)",
           "reinstall the uidmap package");
    check_holder(&map);
  }
  sbx_idmap_clear(&map);
}

static void check_cgroup(void)
{
  struct statfs fs;
  gboolean v2 = statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
  g_autofree char *own = NULL, *data = NULL;
  if (g_file_get_contents("/proc/self/cgroup", &data, NULL, NULL)) {
    g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
    for (char **l = lines; *l; l++)
      if (g_str_has_prefix(*l, "0::"))
        own = g_build_filename("/sys/fs/cgroup", *l + 3, NULL);
  }
  gboolean delegated = v2 && own && access(own, W_OK) == 0;
  /* Without it --memory and --cpus are refused; --pids-limit falls back. */
  report(delegated, FALSE,
         "cgroup v2 delegation (--memory, --cpus; --pids-limit uses RLIMIT_NPROC without it)",
         !v2 ? "this host uses cgroup v1 or a hybrid layout; --ulimit as= bounds memory per process"
             : "run sbx in a systemd user session (systemd-run --user --scope sbx ...)");
}

static int check_parsed(int argc, char **argv, GError **err)
{
  struct utsname u;
  uname(&u);
  guint major = 0, minor = 0;
  sscanf(u.release, "%u.%u", &major, &minor);
  printf("kernel %s\n", u.release);
  report(probe(1), TRUE, "unprivileged user namespaces",
         "enable them: sysctl user.max_user_namespaces=15000 (and on Debian before 11 "
         "kernel.unprivileged_userns_clone=1; Ubuntu 24.04: "
         "kernel.apparmor_restrict_unprivileged_userns=0)");
  report(probe(2), TRUE, "overlayfs inside a user namespace", "needs Linux 5.11 or later");
  report(sbx_have_openat2(), FALSE, "openat2 (paths resolved beneath a root)",
         "Linux 5.6 or later; sbx falls back to refusing symlinks");
  report(major > 6 || (major == 6 && minor >= 8), FALSE,
         "overlay lowerdir+ (images of any number of layers)",
         "Linux 6.8 or later; before that about a thousand layers fit");
  check_ids();
  gboolean tun = access("/dev/net/tun", R_OK | W_OK) == 0;
  report(tun, FALSE, "/dev/net/tun usable (the default slirp network)",
         "make it mode 0666, the distribution default (sudo chmod 0666 /dev/net/tun), or use "
         "--network none");
  if (tun)
    check_spare();
  check_cgroup();
  g_autofree char *helper = sbx_helper_path("sbx-store", NULL);
  g_autofree char *net = sbx_helper_path("sbx-net", NULL);
  report(helper && net, TRUE, "the helper programs sbx-store and sbx-net",
         "reinstall sbx (meson install puts them in libexec/sbx)");
  printf("%s\n", failures ? "sbx cannot run here: fix the FAIL lines above" : "sbx can run here");
  return failures ? 1 : 0;
}

int sbx_cmd_check(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "",
      "Report whether this host supports what sbx needs, and what to change when it does not. "
      "Exit status 0 when sbx can run.",
      NULL,
      FALSE,
      check_parsed,
      NULL};
  return sbx_cli_command(&cmd, argc, argv);
}
