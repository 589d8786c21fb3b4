/* Network namespace: a fresh stack in which only loopback is up. */
#include "sbx/ns.h"
#include "sbx/util.h"

#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

gboolean sbx_net_setup_loopback(GError **err)
{
  sbx_autofd fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return sbx_fail_errno(err, "network: socket");
  struct ifreq ifr = {0};
  g_strlcpy(ifr.ifr_name, "lo", IFNAMSIZ);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
    return sbx_fail_errno(err, "network: lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
    return sbx_fail_errno(err, "network: bring lo up");
  sbx_debug("network: lo up");
  return TRUE;
}
