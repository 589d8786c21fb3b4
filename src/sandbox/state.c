/* Named sandboxes' state on disk (see include/sbx/state.h). */
#include "sbx/state.h"
#include "sbx/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

void sbx_state_free(SbxState *s)
{
  if (!s)
    return;
  g_free(s->name);
  g_free(s->id);
  g_free(s->image);
  g_free(s->started);
  g_free(s->ports);
  g_free(s->networks);
  g_free(s->store_root);
  g_free(s->userns);
  g_free(s->seccomp);
  g_free(s->seccomp_filter);
  g_free(s->user);
  g_free(s->workdir);
  g_free(s->hostname);
  g_strfreev(s->env);
  g_free(s);
}

/* A directory only this user can write, or FALSE. */
static gboolean private_dir(const char *dir)
{
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return FALSE;
  struct stat st;
  return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() &&
         !(st.st_mode & 077);
}

static char *runtime_dir, *found_base;

void sbx_state_set_runtime_dir(const char *dir)
{
  g_free(runtime_dir);
  runtime_dir = g_strdup(dir);
  g_clear_pointer(&found_base, g_free);
}

static char *state_base(GError **err);

/* Found once: a range-mode sbx that entered the user namespace holder's
 * namespace is uid 0 there, and /tmp/sbx-0 is not the user's directory. */
char *sbx_state_base(GError **err)
{
  if (!found_base)
    found_base = state_base(err);
  return g_strdup(found_base);
}

static char *state_base(GError **err)
{
  const char *rt = runtime_dir;
  if (rt && g_path_is_absolute(rt) && access(rt, W_OK) == 0) {
    g_autofree char *base = g_build_filename(rt, "sbx", NULL);
    if (private_dir(base))
      return g_steal_pointer(&base);
  }
  /* No runtime directory (no systemd session): /tmp/sbx-UID, unless another
   * user made it first; then the user's own state directory. */
  g_autofree char *tmp = g_strdup_printf("/tmp/sbx-%u", (unsigned)getuid());
  if (private_dir(tmp))
    return g_steal_pointer(&tmp);
  const char *home = g_get_home_dir();
  g_autofree char *state = g_build_filename(home, ".local", "state", "sbx", NULL);
  g_autofree char *run = g_build_filename(state, "run", NULL);
  if (g_mkdir_with_parents(state, 0700) == 0 && private_dir(run))
    return g_steal_pointer(&run);
  sbx_fail(err, SBX_ERROR_FAILED,
           "no private state directory: %s is not this user's alone and "
           "%s cannot be made (set XDG_RUNTIME_DIR)",
           tmp, run);
  return NULL;
}

char **sbx_state_candidates(void)
{
  /* Every place state_base may choose, whichever this run chose: another
   * session of the user's (one without a runtime directory) uses another. */
  g_autoptr(GPtrArray) out = g_ptr_array_new();
  const char *rt = runtime_dir;
  if (rt && g_path_is_absolute(rt))
    g_ptr_array_add(out, g_build_filename(rt, "sbx", NULL));
  g_ptr_array_add(out, g_strdup_printf("/tmp/sbx-%u", (unsigned)getuid()));
  g_ptr_array_add(out, g_build_filename(g_get_home_dir(), ".local", "state", "sbx", "run", NULL));
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

gboolean sbx_state_name_valid(const char *name, GError **err)
{
  gsize n = strlen(name);
  gboolean ok = n > 0 && n <= 64 && g_ascii_isalnum(name[0]);
  for (const char *p = name; ok && *p; p++)
    ok = g_ascii_isalnum(*p) || *p == '_' || *p == '.' || *p == '-';
  if (!ok)
    return sbx_fail(err, SBX_ERROR_USAGE,
                    "name '%s': use letters, digits, '_', '.' and '-' (starting with a letter or "
                    "digit, at most 64)",
                    name);
  return TRUE;
}

static char *dir_of(const char *name, GError **err)
{
  g_autofree char *base = sbx_state_base(err);
  if (!base || !sbx_state_name_valid(name, err))
    return NULL;
  return g_build_filename(base, name, NULL);
}

static int lock_fd(const char *dir, int op)
{
  g_autofree char *lock = g_build_filename(dir, "lock", NULL);
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0 && flock(fd, op) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int sbx_state_claim(const char *name, GError **err)
{
  g_autofree char *dir = dir_of(name, err);
  if (!dir)
    return -1;
  if (mkdir(dir, 0700) < 0) {
    if (errno == EEXIST)
      sbx_fail(err, SBX_ERROR_USAGE, "the name %s is already in use (see 'sbx ps -a'; 'sbx rm %s')",
               name, name);
    else
      sbx_fail_errno(err, "state %s", dir);
    return -1;
  }
  int fd = lock_fd(dir, LOCK_EX | LOCK_NB);
  if (fd < 0) {
    int e = errno;
    /* No lock (no inode left, say): an empty directory would keep the name
     * taken and show in ps as damaged. Ours alone: it was made just now. */
    g_autofree char *lock = g_build_filename(dir, "lock", NULL);
    unlink(lock);
    rmdir(dir);
    sbx_fail_errnum(err, e, "lock %s", lock);
  }
  return fd;
}

gboolean sbx_state_locked(const char *name)
{
  g_autofree char *dir = dir_of(name, NULL);
  if (!dir)
    return FALSE;
  g_autofree char *lock = g_build_filename(dir, "lock", NULL);
  sbx_autofd fd = open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  return fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

gboolean sbx_state_save(const SbxState *s, GError **err)
{
  g_autofree char *dir = dir_of(s->name, err);
  if (!dir)
    return FALSE;
  g_autoptr(GKeyFile) k = g_key_file_new();
  const char *g = "sandbox";
  g_key_file_set_string(k, g, "Name", s->name);
  g_key_file_set_string(k, g, "Id", s->id ? s->id : "");
  g_key_file_set_string(k, g, "Image", s->image ? s->image : "");
  g_key_file_set_string(k, g, "Started", s->started ? s->started : "");
  g_key_file_set_string(k, g, "Ports", s->ports ? s->ports : "");
  g_key_file_set_string(k, g, "Networks", s->networks ? s->networks : "");
  g_key_file_set_string(k, g, "Store", s->store_root ? s->store_root : "");
  g_key_file_set_string(k, g, "Userns", s->userns ? s->userns : "");
  g_key_file_set_string(k, g, "Seccomp", s->seccomp ? s->seccomp : "");
  g_key_file_set_string(k, g, "SeccompFilter", s->seccomp_filter ? s->seccomp_filter : "");
  g_key_file_set_string(k, g, "User", s->user ? s->user : "");
  g_key_file_set_string(k, g, "Workdir", s->workdir ? s->workdir : "/");
  g_key_file_set_string(k, g, "Hostname", s->hostname ? s->hostname : "");
  char *none[] = {NULL};
  g_key_file_set_string_list(k, g, "Env", (const char *const *)(s->env ? s->env : none),
                             g_strv_length(s->env ? s->env : none));
  g_key_file_set_uint64(k, g, "Caps", s->caps);
  g_key_file_set_int64(k, g, "PidsRlimit", s->nproc);
  g_key_file_set_int64(k, g, "InitPid", s->init_pid);
  g_key_file_set_uint64(k, g, "InitStart", s->init_start);
  g_key_file_set_int64(k, g, "SupervisorPid", s->supervisor_pid);
  g_key_file_set_boolean(k, g, "Exited", s->exited);
  g_key_file_set_integer(k, g, "ExitCode", s->exit_code);
  g_key_file_set_boolean(k, g, "TimedOut", s->timed_out);
  g_key_file_set_boolean(k, g, "RemoveOnExit", s->remove_on_exit);
  gsize len;
  g_autofree char *data = g_key_file_to_data(k, &len, NULL);
  sbx_autofd dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return sbx_fail_errno(err, "state %s", dir);
  return sbx_write_file_atomic(dfd, "state", data, len, 0600, err);
}

SbxState *sbx_state_load(const char *name, GError **err)
{
  g_autofree char *dir = dir_of(name, err);
  if (!dir)
    return NULL;
  g_autofree char *file = g_build_filename(dir, "state", NULL);
  g_autoptr(GKeyFile) k = g_key_file_new();
  g_autoptr(GError) local = NULL;
  if (!g_key_file_load_from_file(k, file, G_KEY_FILE_NONE, &local)) {
    struct stat st;
    if (stat(dir, &st) < 0)
      sbx_fail(err, SBX_ERROR_NOT_FOUND, "no sandbox named %s (see 'sbx ps -a')", name);
    else
      sbx_fail(err, SBX_ERROR_FAILED,
               "sandbox %s: its state is unreadable (%s): 'sbx rm %s' "
               "cleans it",
               name, local->message, name);
    return NULL;
  }
  const char *g = "sandbox";
  g_autoptr(SbxState) s = g_new0(SbxState, 1);
  s->name = g_strdup(name);
  s->id = g_key_file_get_string(k, g, "Id", NULL);
  s->image = g_key_file_get_string(k, g, "Image", NULL);
  s->started = g_key_file_get_string(k, g, "Started", NULL);
  s->ports = g_key_file_get_string(k, g, "Ports", NULL);
  s->networks = g_key_file_get_string(k, g, "Networks", NULL);
  s->store_root = g_key_file_get_string(k, g, "Store", NULL);
  s->userns = g_key_file_get_string(k, g, "Userns", NULL);
  s->seccomp = g_key_file_get_string(k, g, "Seccomp", NULL);
  s->seccomp_filter = g_key_file_get_string(k, g, "SeccompFilter", NULL);
  s->user = g_key_file_get_string(k, g, "User", NULL);
  s->workdir = g_key_file_get_string(k, g, "Workdir", NULL);
  s->hostname = g_key_file_get_string(k, g, "Hostname", NULL);
  s->env = g_key_file_get_string_list(k, g, "Env", NULL, NULL);
  s->caps = g_key_file_get_uint64(k, g, "Caps", NULL);
  s->nproc = g_key_file_get_int64(k, g, "PidsRlimit", NULL);
  s->init_pid = (pid_t)g_key_file_get_int64(k, g, "InitPid", NULL);
  s->init_start = g_key_file_get_uint64(k, g, "InitStart", NULL);
  s->supervisor_pid = (pid_t)g_key_file_get_int64(k, g, "SupervisorPid", NULL);
  s->exited = g_key_file_get_boolean(k, g, "Exited", NULL);
  s->exit_code = g_key_file_get_integer(k, g, "ExitCode", NULL);
  s->timed_out = g_key_file_get_boolean(k, g, "TimedOut", NULL);
  s->remove_on_exit = g_key_file_get_boolean(k, g, "RemoveOnExit", NULL);
  /* Running means: someone holds the lock. */
  int fd = lock_fd(dir, LOCK_SH | LOCK_NB);
  s->running = fd < 0;
  if (fd >= 0)
    close(fd);
  return g_steal_pointer(&s);
}

static gint cmp_strp(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

char **sbx_state_names(void)
{
  g_autofree char *base = sbx_state_base(NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new();
  DIR *d = base ? opendir(base) : NULL;
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL)
    if (de->d_name[0] != '.' && sbx_state_name_valid(de->d_name, NULL))
      g_ptr_array_add(names, g_strdup(de->d_name));
  if (d)
    closedir(d);
  g_ptr_array_sort(names, cmp_strp);
  g_ptr_array_add(names, NULL);
  return (char **)g_ptr_array_free(g_steal_pointer(&names), FALSE);
}

gboolean sbx_state_remove(const char *name, GError **err)
{
  g_autofree char *dir = dir_of(name, err);
  g_autofree char *base = sbx_state_base(err);
  if (!dir || !base)
    return FALSE;
  sbx_autofd bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (bfd < 0 || !sbx_rm_rf_at(bfd, name, err))
    return err && *err ? FALSE : sbx_fail_errno(err, "remove %s", dir);
  return TRUE;
}

char *sbx_state_log_path(const char *name)
{
  g_autofree char *dir = dir_of(name, NULL);
  return dir ? g_build_filename(dir, "log", NULL) : NULL;
}

guint64 sbx_proc_start_time(pid_t pid)
{
  g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
  g_autofree char *data = NULL;
  if (pid <= 0 || !g_file_get_contents(path, &data, NULL, NULL))
    return 0;
  /* comm may hold spaces and parentheses: fields start after the last ')'. */
  char *p = strrchr(data, ')');
  if (!p)
    return 0;
  g_auto(GStrv) f = g_strsplit(p + 2, " ", 0);
  return g_strv_length(f) > 19 ? g_ascii_strtoull(f[19], NULL, 10) : 0;
}

gboolean sbx_state_init_alive(const SbxState *s)
{
  return s->init_pid > 0 && s->init_start && sbx_proc_start_time(s->init_pid) == s->init_start;
}
