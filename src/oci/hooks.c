/* OCI hooks: each a program run with the container's state JSON on its
 * stdin, its own argv and environment, and an optional timeout (killed
 * then). prestart/createRuntime run in sbx-oci's namespaces once the
 * container's exist (before pivot_root), createContainer in the
 * container's namespaces before pivot_root, startContainer in the container
 * just before the program, poststart after `start`, poststop at `delete`. */
#include "sbx/oci.h"
#include "sbx/util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where a hook starts, as runc's: those of the runtime's namespaces in the
 * bundle, createContainer in the root (before pivot_root), startContainer
 * where the container's process is (its root's path means nothing there). */
static const char *hook_dir(const SbxOciConfig *c, SbxOciHookKind kind)
{
  if (kind == SBX_HOOK_START_CONTAINER)
    return NULL;
  return kind == SBX_HOOK_CREATE_CONTAINER ? c->rootfs : c->bundle;
}

static gboolean run_one(const SbxOciHook *h, const char *dir, const char *state, GError **err)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, h->path);
  for (char **a = h->args; *a; a++)
    g_ptr_array_add(argv, *a);
  g_ptr_array_add(argv, NULL);
  GPid pid;
  int in = -1;
  g_autoptr(GError) local = NULL;
  /* No env given: sbx-oci's own environment, as runc's (h->env NULL). */
  if (!g_spawn_async_with_pipes(dir, (char **)argv->pdata, h->env,
                                G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_FILE_AND_ARGV_ZERO, NULL, NULL,
                                &pid, &in, NULL, NULL, &local))
    return sbx_fail(err, SBX_ERROR_FAILED, "hook %s: %s", h->path, local->message);
  signal(SIGPIPE, SIG_IGN);
  (void)sbx_write_all(in, state, strlen(state), NULL); /* a hook may not read it */
  close(in);
  gint64 deadline = h->timeout ? g_get_monotonic_time() + h->timeout * G_USEC_PER_SEC : 0;
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, deadline ? WNOHANG : 0);
    if (r == pid)
      break;
    if (r < 0 && errno != EINTR)
      return sbx_fail_errno(err, "hook %s", h->path);
    if (deadline && g_get_monotonic_time() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      return sbx_fail(err, SBX_ERROR_FAILED, "hook %s: timed out after %" G_GINT64_FORMAT " s",
                      h->path, h->timeout);
    }
    if (r == 0)
      g_usleep(5000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return TRUE;
  return sbx_fail(err, SBX_ERROR_FAILED, "hook %s: %s %d", h->path,
                  WIFEXITED(status) ? "exited with status" : "killed by signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

gboolean sbx_oci_run_hooks(const SbxOciConfig *c, SbxOciHookKind kind, const char *state,
                           GError **err)
{
  for (guint i = 0; c->hooks[kind] && i < c->hooks[kind]->len; i++)
    if (!run_one(c->hooks[kind]->pdata[i], hook_dir(c, kind), state, err))
      return FALSE;
  return TRUE;
}
