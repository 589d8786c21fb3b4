/* UTS namespace: the sandbox's own hostname. */
#include "sbx/ns.h"
#include "sbx/util.h"

#include <string.h>
#include <unistd.h>

gboolean sbx_uts_setup(const char *hostname, GError **err)
{
  if (sethostname(hostname, strlen(hostname)) < 0)
    return sbx_fail_errno(err, "sethostname %s", hostname);
  sbx_debug("hostname %s", hostname);
  return TRUE;
}
