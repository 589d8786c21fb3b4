/* IPC namespace: System V IPC and POSIX message queues of the sandbox's own.
 * The queues are visible through /dev/mqueue, mounted for this namespace. */
#include "sbx/ns.h"
#include "sbx/path.h"
#include "sbx/util.h"

#include <fcntl.h>
#include <sys/mount.h>

gboolean sbx_ipc_setup(int rootfd, GError **err)
{
  sbx_autofd fd = sbx_mount_dir(rootfd, "/dev/mqueue", 0755, err);
  if (fd < 0)
    return FALSE;
  g_autofree char *target = g_strdup_printf("/proc/self/fd/%d", fd);
  if (mount("mqueue", target, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    return sbx_fail_errno(err, "mount /dev/mqueue");
  sbx_debug("mount mqueue on /dev/mqueue");
  return TRUE;
}
