/* Loading the seccomp filter. Building one with libseccomp takes ~12 ms for
 * Docker's profile (three architectures), longer than the rest of a start,
 * so sbx-store compiles each (profile, capabilities) pair once into raw BPF,
 * cached in the store; sbx reads it and installs it with prctl. A compile
 * also hands the program to sbx directly, so a cache that cannot be
 * written only costs the next start a compile. */
#include "sbx-config.h"
#include "sbx/digest.h"
#include "sbx/security.h"
#include "sbx/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BPF (4 * (4 + 4096 * sizeof(struct sock_filter)))

static char *cache_name(const SbxSeccompSpec *spec, GError **err)
{
  g_autofree char *profile_digest = NULL;
  if (spec->profile) {
    g_autofree char *data = NULL;
    gsize len;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(spec->profile, &data, &len, &local)) {
      sbx_fail(err, SBX_ERROR_NOT_FOUND, "seccomp profile %s: %s", spec->profile, local->message);
      return NULL;
    }
    profile_digest = sbx_digest_bytes(data, len);
  }
  /* The kernel and its boot too: the compat ABIs in a filter are those it
   * runs, which its command line can change (ia32_emulation=, syscall.x32=). */
  struct utsname u;
  if (uname(&u) < 0)
    memset(&u, 0, sizeof u);
  char boot[40] = "";
  sbx_autofd b = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  ssize_t n = b >= 0 ? read(b, boot, sizeof boot - 1) : -1;
  boot[n > 0 ? n : 0] = '\0';
  g_autofree char *id =
      g_strdup_printf("v1|%s|%d|%s|%" G_GINT64_MODIFIER "x|%s|%s %s|%s", SBX_VERSION,
                      SBX_SECCOMP_DEFAULT_REV, SBX_SECCOMP_VERSION, spec->caps,
                      profile_digest ? profile_digest : "default", u.release, u.version, boot);
  g_autofree char *d = sbx_digest_bytes(id, strlen(id));
  return g_strdup_printf("seccomp/%.32s.bpf", sbx_digest_hex_of(d));
}

/* The cache holds one or more programs, each [guint32 count][count insns];
 * they are installed in order and all of them apply (the kernel stacks them). */
static gboolean well_formed(GBytes *b)
{
  gsize len, off = 0;
  const guint8 *p = g_bytes_get_data(b, &len);
  guint progs = 0;
  while (off < len) {
    guint32 count;
    if (len - off < sizeof count)
      return FALSE;
    memcpy(&count, p + off, sizeof count);
    off += sizeof count;
    if (count == 0 || count > 4096 || (len - off) / sizeof(struct sock_filter) < count)
      return FALSE;
    off += count * sizeof(struct sock_filter);
    progs++;
  }
  return progs > 0 && progs <= 4;
}

static GBytes *read_cached(SbxStore *store, const char *name)
{
  sbx_autofd fd = openat(store->rootfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return NULL;
  GBytes *b = sbx_read_fd_bounded(fd, MAX_BPF, name, NULL);
  if (b && !well_formed(b)) {
    g_bytes_unref(b);
    return NULL;
  }
  return b;
}

/* The helper writes the cache file and hands the program back on its
 * stdout too, which is a memfd here: a store that cannot take the file
 * (full, over quota, read-only; the key changes with each boot, upgrade and
 * prune, so it is written again often) costs the cache, never the run. A
 * memfd rather than a pipe: read after the helper exits, whatever the size. */
static GBytes *compile_in_helper(SbxStore *store, const SbxSeccompSpec *spec, const char *name,
                                 GError **err)
{
  g_autofree char *helper = sbx_helper_path("sbx-store", err);
  if (!helper)
    return NULL;
  g_autofree char *caps = g_strdup_printf("%" G_GINT64_MODIFIER "x", spec->caps);
  g_autofree char *out = g_build_filename(store->root, name, NULL);
  const char *argv[] = {helper,
                        "seccomp-compile",
                        "--caps",
                        caps,
                        "--out",
                        out,
                        "--stdout",
                        "--log-level",
                        sbx_log_level_name(),
                        spec->profile ? "--profile" : NULL,
                        spec->profile,
                        NULL};
  sbx_autofd mem = memfd_create("sbx-seccomp", MFD_CLOEXEC);
  if (mem < 0) {
    sbx_fail_errno(err, "seccomp: memfd");
    return NULL;
  }
  GPid pid;
  int status;
  g_autoptr(GError) local = NULL;
  g_auto(GStrv) env = sbx_helper_environ(SBX_STORE_HELPER_ENV);
  /* DO_NOT_REAP_CHILD: no intermediate process, so the helper dies with us. */
  if (!g_spawn_async_with_pipes_and_fds(NULL, argv, (const char *const *)env,
                                        G_SPAWN_DO_NOT_REAP_CHILD, sbx_child_die_with_parent, NULL,
                                        -1, mem, -1, NULL, NULL, 0, &pid, NULL, NULL, NULL,
                                        &local)) {
    sbx_fail(err, SBX_ERROR_FAILED, "start %s: %s", helper, local->message);
    return NULL;
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      sbx_fail_errno(err, "seccomp: wait for %s", helper);
      return NULL;
    }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    g_set_error_literal(err, SBX_ERROR, SBX_ERROR_REPORTED, "seccomp compile failed");
    return NULL;
  }
  GBytes *b = NULL;
  if (lseek(mem, 0, SEEK_SET) == 0)
    b = sbx_read_fd_bounded(mem, MAX_BPF, "the compiled seccomp filter", NULL);
  if (!b || !well_formed(b)) {
    g_clear_pointer(&b, g_bytes_unref);
    sbx_fail(err, SBX_ERROR_FAILED, "seccomp: the compiled filter is missing or damaged");
  }
  return b;
}

gboolean sbx_seccomp_prepare(SbxStore *store, const SbxSeccompSpec *spec, GBytes **bpf,
                             GError **err)
{
  *bpf = NULL;
  if (g_strcmp0(spec->profile, "unconfined") == 0)
    return TRUE;
  g_autofree char *name = cache_name(spec, err);
  if (!name)
    return FALSE;
  if ((*bpf = read_cached(store, name)) != NULL)
    return TRUE;
  /* Without it the helper's cache write fails, and it hands the filter over. */
  if (mkdirat(store->rootfd, "seccomp", 0700) < 0 && errno != EEXIST)
    sbx_debug("seccomp: store %s/seccomp: %s", store->root, sbx_strerror(errno));
  sbx_info("seccomp: compiling %s", spec->profile ? spec->profile : "the default profile");
  return (*bpf = compile_in_helper(store, spec, name, err)) != NULL;
}

char *sbx_seccomp_filter_id(GBytes *bpf)
{
  if (!bpf)
    return g_strdup("none");
  return g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, bpf);
}

gboolean sbx_seccomp_install(GBytes *bpf, GError **err)
{
  return sbx_seccomp_install_flags(bpf, 0, err);
}

/* flags: SECCOMP_FILTER_FLAG_* from sbx-oci's linux.seccomp.flags, passed
 * to seccomp(2) for each program (prctl knows none). With err NULL it
 * allocates nothing and leaves errno: the program's process calls it
 * beside init, on init's memory (process.c, prefork_main). */
gboolean sbx_seccomp_install_flags(GBytes *bpf, unsigned int flags, GError **err)
{
  gsize len, off = 0;
  const guint8 *data = g_bytes_get_data(bpf, &len);
  while (off + sizeof(guint32) <= len) {
    guint32 count;
    memcpy(&count, data + off, sizeof count);
    off += sizeof count;
    struct sock_fprog prog = {.len = (unsigned short)count,
                              .filter = (struct sock_filter *)(void *)(data + off)};
    long r = flags ? syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog)
                   : prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
    if (r != 0) /* TSYNC: > 0 names a thread that could not follow */
      return r < 0 ? sbx_fail_errno(err, "load the seccomp filter")
                   : sbx_fail(err, SBX_ERROR_FAILED, "load the seccomp filter: thread %ld", r);
    off += count * sizeof(struct sock_filter);
  }
  return TRUE;
}
