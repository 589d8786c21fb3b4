/* A tiny static tool for the network tests: sends hand-made Ethernet frames
 * out of tap0 through an AF_PACKET socket (CAP_NET_RAW, in Docker's default
 * set), past the sandbox's own routing, to whatever sbx-net does with them.
 *   rawpkt udp  DSTIP PORT MESSAGE   one IPv4 UDP packet
 *   rawpkt frag DSTIP PORT MESSAGE   the same datagram in two IPv4 fragments
 *                                    (MESSAGE's bytes 10-11 replaced by PORT)
 *   rawpkt udp6 DSTIP6 PORT MESSAGE  one IPv6 UDP packet
 * Each is sent three times, 100 ms apart; exit 0 once sent. */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned char gw_mac[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}; /* libslirp's host */

static uint16_t csum(const void *data, size_t len, uint32_t sum)
{
  const unsigned char *p = data;
  for (size_t i = 0; i + 1 < len; i += 2)
    sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1)
    sum += (uint32_t)(p[len - 1] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static void put16(unsigned char *p, unsigned v)
{
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}

/* The gateway's MAC from the ARP table, after a normal datagram made the
 * kernel ask; libslirp's fixed one if that fails. */
static void learn_gateway(void)
{
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
  inet_pton(AF_INET, "10.0.2.2", &a.sin_addr);
  sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a);
  close(s);
  for (int i = 0; i < 20; i++) {
    FILE *f = fopen("/proc/net/arp", "r");
    char line[256];
    unsigned m[6];
    while (f && fgets(line, sizeof line, f))
      if (strncmp(line, "10.0.2.2 ", 9) == 0 &&
          sscanf(line, "%*s %*s %*s %x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) ==
              6 &&
          (m[0] | m[1] | m[2] | m[3] | m[4] | m[5])) {
        for (int k = 0; k < 6; k++)
          gw_mac[k] = (unsigned char)m[k];
        fclose(f);
        return;
      }
    if (f)
      fclose(f);
    usleep(50000);
  }
}

int main(int argc, char **argv)
{
  if (argc != 5)
    return fprintf(stderr, "usage: rawpkt udp|frag|udp6 DST PORT MESSAGE\n"), 2;
  const char *mode = argv[1], *msg = argv[4];
  unsigned port = (unsigned)atoi(argv[3]);
  size_t mlen = strlen(msg);
  int six = strcmp(mode, "udp6") == 0;
  learn_gateway();
  int s = socket(AF_PACKET, SOCK_RAW, htons(six ? ETH_P_IPV6 : ETH_P_IP));
  if (s < 0)
    return perror("socket(AF_PACKET)"), 1;
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "tap0");
  if (ioctl(s, SIOCGIFINDEX, &ifr) < 0)
    return perror("tap0"), 1;
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0)
    return perror("tap0 mac"), 1;
  unsigned char src_mac[6];
  memcpy(src_mac, ifr.ifr_hwaddr.sa_data, 6);
  struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
  memcpy(to.sll_addr, gw_mac, 6);
  unsigned char frames[2][1600];
  size_t lens[2] = {0, 0};
  int nframes = 1;
  for (int f = 0; f < 2; f++) {
    memcpy(frames[f], gw_mac, 6);
    memcpy(frames[f] + 6, src_mac, 6);
    put16(frames[f] + 12, six ? ETH_P_IPV6 : ETH_P_IP);
  }
  unsigned char udp[1500];
  size_t ulen = 8 + mlen;
  put16(udp, 40000);
  put16(udp + 2, port);
  put16(udp + 4, (unsigned)ulen);
  put16(udp + 6, 0);
  memcpy(udp + 8, msg, mlen);
  /* frag: the second fragment starts 8 bytes into the message; bytes 10-11
   * of the message become the port, so a check that read "ports" from a
   * non-first fragment would find the allowed one there. */
  if (strcmp(mode, "frag") == 0 && mlen >= 12)
    put16(udp + 8 + 10, port);
  if (six) {
    unsigned char *ip = frames[0] + 14;
    memset(ip, 0, 40);
    ip[0] = 0x60;
    put16(ip + 4, (unsigned)ulen);
    ip[6] = IPPROTO_UDP;
    ip[7] = 64;
    inet_pton(AF_INET6, "fd00::100", ip + 8);
    if (inet_pton(AF_INET6, argv[2], ip + 24) != 1)
      return fprintf(stderr, "bad address %s\n", argv[2]), 2;
    unsigned char pseudo[40];
    memcpy(pseudo, ip + 8, 32);
    uint32_t sum = 0;
    for (int i = 0; i < 32; i += 2)
      sum += (uint32_t)(pseudo[i] << 8 | pseudo[i + 1]);
    sum += (uint32_t)ulen + IPPROTO_UDP;
    put16(udp + 6, csum(udp, ulen, sum));
    memcpy(ip + 40, udp, ulen);
    lens[0] = 14 + 40 + ulen;
  } else {
    struct in_addr src, dst;
    ifr.ifr_addr.sa_family = AF_INET;
    int q = socket(AF_INET, SOCK_DGRAM, 0);
    if (ioctl(q, SIOCGIFADDR, &ifr) < 0)
      return perror("tap0 address"), 1;
    close(q);
    src = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
    if (inet_pton(AF_INET, argv[2], &dst) != 1)
      return fprintf(stderr, "bad address %s\n", argv[2]), 2;
    /* fragments: the UDP header and 8 bytes, then the rest */
    size_t cut = strcmp(mode, "frag") == 0 && ulen > 16 ? 16 : ulen;
    nframes = cut < ulen ? 2 : 1;
    for (int f = 0; f < nframes; f++) {
      unsigned char *ip = frames[f] + 14;
      size_t off = f ? cut : 0, n = f ? ulen - cut : cut;
      memset(ip, 0, 20);
      ip[0] = 0x45;
      put16(ip + 2, (unsigned)(20 + n));
      put16(ip + 4, 0x1234);
      put16(ip + 6, (unsigned)((nframes == 2 && f == 0 ? 0x2000 : 0) | (off / 8)));
      ip[8] = 64;
      ip[9] = IPPROTO_UDP;
      memcpy(ip + 12, &src, 4);
      memcpy(ip + 16, &dst, 4);
      put16(ip + 10, csum(ip, 20, 0));
      memcpy(ip + 20, udp + off, n);
      lens[f] = 14 + 20 + n;
    }
  }
  for (int round = 0; round < 3; round++) {
    for (int f = 0; f < nframes; f++)
      if (sendto(s, frames[f], lens[f], 0, (struct sockaddr *)&to, sizeof to) < 0)
        return perror("sendto"), 1;
    usleep(100000);
  }
  printf("sent\n");
  return 0;
}
