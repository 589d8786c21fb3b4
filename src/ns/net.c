/* Network namespace: a fresh stack in which only loopback is up. */
#include "sbx/ns.h"
#include "sbx/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

gboolean sbx_net_lo_up(GError **err)
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
  return TRUE;
}

gboolean sbx_net_setup_loopback(GError **err)
{
  if (!sbx_net_lo_up(err))
    return FALSE;
  sbx_debug("network: lo up");
  return TRUE;
}

/* The slirp mode: tap0 inside the sandbox's network namespace. Its fd goes
 * to sbx's network helper, which runs libslirp on the other side. */
static gboolean ifreq_ioctl(int sock, unsigned long req, struct ifreq *ifr, const char *what,
                            GError **err)
{
  if (ioctl(sock, req, ifr) < 0)
    return sbx_fail_errno(err, "network: %s", what);
  return TRUE;
}

static void set_addr(struct sockaddr *sa, const char *ip)
{
  struct sockaddr_in *in = (struct sockaddr_in *)sa;
  memset(in, 0, sizeof *in);
  in->sin_family = AF_INET;
  inet_pton(AF_INET, ip, &in->sin_addr);
}

int sbx_net_make_tap(const SbxTapConfig *cfg, GError **err)
{
  const char *dev = "/dev/net/tun";
  sbx_autofd tap = open(dev, O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (tap < 0) {
    int e = errno;
    if (e == EACCES || e == EPERM || e == ENOENT || e == ENXIO || e == ENODEV)
      sbx_fail(err, SBX_ERROR_FAILED,
               "network: cannot open %s: %s (it must exist and be mode 0666, the "
               "distribution default: 'sudo chmod 0666 /dev/net/tun'; or use --network none)",
               dev, sbx_strerror(e));
    else
      sbx_fail_errnum(err, e, "network: open /dev/net/tun");
    return -1;
  }
  struct ifreq ifr = {0};
  g_strlcpy(ifr.ifr_name, "tap0", IFNAMSIZ);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(tap, TUNSETIFF, &ifr) < 0) {
    sbx_fail_errno(err, "network: create tap0 (the user namespace needs CAP_NET_ADMIN over its "
                        "network namespace; or use --network none)");
    return -1;
  }
  sbx_autofd sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    sbx_fail_errno(err, "network: socket");
    return -1;
  }
  struct ifreq r = {0};
  g_strlcpy(r.ifr_name, "tap0", IFNAMSIZ);
  r.ifr_mtu = (int)cfg->mtu;
  if (!ifreq_ioctl(sock, SIOCSIFMTU, &r, "set the MTU of tap0", err))
    return -1;
  set_addr(&r.ifr_addr, cfg->address);
  if (!ifreq_ioctl(sock, SIOCSIFADDR, &r, "set the address of tap0", err))
    return -1;
  set_addr(&r.ifr_netmask, cfg->netmask);
  if (!ifreq_ioctl(sock, SIOCSIFNETMASK, &r, "set the netmask of tap0", err))
    return -1;
  if (cfg->mac) {
    r.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(r.ifr_hwaddr.sa_data, cfg->mac, 6);
    if (!ifreq_ioctl(sock, SIOCSIFHWADDR, &r, "set the MAC address of tap0", err))
      return -1;
  }
  if (!ifreq_ioctl(sock, SIOCGIFFLAGS, &r, "tap0 flags", err))
    return -1;
  r.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (!ifreq_ioctl(sock, SIOCSIFFLAGS, &r, "bring tap0 up", err))
    return -1;
  if (!cfg->gateway)
    return sbx_steal_fd(&tap);
  struct rtentry rt = {0};
  set_addr(&rt.rt_dst, "0.0.0.0");
  set_addr(&rt.rt_genmask, "0.0.0.0");
  set_addr(&rt.rt_gateway, cfg->gateway);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = (char *)"tap0";
  if (ioctl(sock, SIOCADDRT, &rt) < 0) {
    sbx_fail_errno(err, "network: default route via %s", cfg->gateway);
    return -1;
  }
  return sbx_steal_fd(&tap);
}

void sbx_net_tap_debug(const SbxTapConfig *cfg)
{
  if (cfg->gateway)
    sbx_debug("network: tap0 %s/%s mtu %u, default via %s", cfg->address, cfg->netmask, cfg->mtu,
              cfg->gateway);
  else
    sbx_debug("network: tap0 %s/%s mtu %u, no route out", cfg->address, cfg->netmask, cfg->mtu);
}

int sbx_net_create_tap(const SbxTapConfig *cfg, GError **err)
{
  int tap = sbx_net_make_tap(cfg, err);
  if (tap >= 0)
    sbx_net_tap_debug(cfg);
  return tap;
}
