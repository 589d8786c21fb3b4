/* A tiny static UDP tool for the network tests (busybox's nc has no -u):
 *   udp send HOST PORT MESSAGE [FROMPORT]
 *                                send (from FROMPORT), print the first reply (2 s timeout)
 *   udp recv PORT                print the first datagram received (10 s)
 *   udp echo PORT                answer "echo:" and each datagram, print it (30 s idle)
 *   udp get HOST PORT PATH       (TCP) an HTTP/1.0 GET: print the bytes received and the
 *                                largest segment the peer sent (TCP_INFO's rcv_mss)
 *   udp tcp HOST PORT MESSAGE block|nonblock|thread|slow|abandon|mapped
 *                                (TCP) connect (non-blocking: EINPROGRESS, poll, SO_ERROR;
 *                                thread: from a second thread; slow: blocking, its SYNs
 *                                loose-source-routed through 10.0.2.50, which is nobody;
 *                                abandon: slow and non-blocking, exit at once after connect;
 *                                mapped: an IPv6 socket, to HOST's IPv4-mapped address),
 *                                print "connected" or the error, whether the socket is of
 *                                this network namespace (SO_NETNS_COOKIE), then send
 *                                MESSAGE, shut down writing and print all that comes back */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/ip.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* udp fillreset HOST PORT SECONDS: (TCP) write until the peer's buffers are
 * full, reset the connection (SO_LINGER 0), print "reset", sleep SECONDS. */
static int fill_reset(const struct sockaddr_in *a, int seconds)
{
  static char buf[65536];
  int s = socket(AF_INET, SOCK_STREAM, 0), idle = 0;
  if (s < 0 || connect(s, (const struct sockaddr *)a, sizeof *a) < 0)
    return perror("connect"), 1;
  fcntl(s, F_SETFL, O_NONBLOCK);
  while (idle < 10) {
    if (write(s, buf, sizeof buf) > 0) {
      idle = 0;
      continue;
    }
    struct pollfd p = {.fd = s, .events = POLLOUT};
    if (poll(&p, 1, 100) == 0)
      idle++;
  }
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(s);
  printf("reset\n");
  fflush(stdout);
  sleep((unsigned)seconds);
  return 0;
}

static int usage(void)
{
  fprintf(stderr, "usage: udp send HOST PORT MESSAGE [FROMPORT] | udp recv PORT | udp echo PORT | "
                  "udp get HOST PORT PATH | udp tcp HOST PORT MESSAGE "
                  "block|nonblock|thread|slow|abandon|mapped\n");
  return 2;
}

struct conn_arg {
  int fd;
  struct sockaddr_in *to;
  int err;
};

static void *connect_thread(void *data)
{
  struct conn_arg *c = data;
  c->err = connect(c->fd, (struct sockaddr *)c->to, sizeof *c->to) < 0 ? errno : 0;
  return NULL;
}

int main(int argc, char **argv)
{
  char buf[2048];
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  struct timeval tv = {.tv_sec = 2};
  if (s < 0)
    return perror("socket"), 1;
  if ((argc == 5 || argc == 6) && strcmp(argv[1], "send") == 0) {
    if (argc == 6) {
      struct sockaddr_in from = {.sin_family = AF_INET,
                                 .sin_port = htons((unsigned short)atoi(argv[5]))};
      if (bind(s, (struct sockaddr *)&from, sizeof from) < 0)
        return perror("bind"), 1;
    }
    a.sin_port = htons((unsigned short)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1)
      return usage();
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 5; i++) {
      sendto(s, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&a, sizeof a);
      ssize_t n = recv(s, buf, sizeof buf - 1, 0);
      if (n >= 0) {
        buf[n] = '\0';
        printf("%s\n", buf);
        return 0;
      }
    }
    fprintf(stderr, "udp: no reply\n");
    return 1;
  }
  if (argc == 5 && strcmp(argv[1], "get") == 0) {
    int t = socket(AF_INET, SOCK_STREAM, 0);
    long total = 0;
    ssize_t n;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    a.sin_port = htons((unsigned short)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1)
      return usage();
    if (t < 0 || connect(t, (struct sockaddr *)&a, sizeof a) < 0)
      return perror("connect"), 1;
    snprintf(buf, sizeof buf, "GET %s HTTP/1.0\r\n\r\n", argv[4]);
    if (write(t, buf, strlen(buf)) < 0)
      return perror("write"), 1;
    while ((n = read(t, buf, sizeof buf)) > 0)
      total += n;
    if (getsockopt(t, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
      return perror("getsockopt"), 1;
    printf("%ld %u\n", total, ti.tcpi_rcv_mss);
    return 0;
  }
  if (argc == 6 && strcmp(argv[1], "tcp") == 0) {
    int t = socket(AF_INET, SOCK_STREAM, 0), e = 0;
    int abandon = strcmp(argv[5], "abandon") == 0;
    int nonblock = abandon || strcmp(argv[5], "nonblock") == 0;
    uint64_t mine = 0, fresh = 1;
    socklen_t len = sizeof e;
    ssize_t n;
    a.sin_port = htons((unsigned short)atoi(argv[3]));
    if (t < 0 || inet_pton(AF_INET, argv[2], &a.sin_addr) != 1)
      return usage();
    if (nonblock)
      fcntl(t, F_SETFL, O_NONBLOCK);
    if (abandon || strcmp(argv[5], "slow") == 0) {
      unsigned char opt[8] = {IPOPT_NOP, IPOPT_LSRR, 7, 4, 10, 0, 2, 50};
      int syn = 127;
      if (setsockopt(t, IPPROTO_IP, IP_OPTIONS, opt, sizeof opt) < 0 ||
          setsockopt(t, IPPROTO_TCP, TCP_SYNCNT, &syn, sizeof syn) < 0)
        return perror("setsockopt"), 1;
    }
    if (strcmp(argv[5], "mapped") == 0) {
      struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = a.sin_port};
      a6.sin6_addr.s6_addr[10] = a6.sin6_addr.s6_addr[11] = 0xff;
      memcpy(&a6.sin6_addr.s6_addr[12], &a.sin_addr, 4);
      close(t);
      t = socket(AF_INET6, SOCK_STREAM, 0);
      if (t < 0 || connect(t, (struct sockaddr *)&a6, sizeof a6) < 0)
        e = errno;
    } else if (strcmp(argv[5], "thread") == 0) {
      pthread_t th;
      struct conn_arg c = {.fd = t, .to = &a};
      if (pthread_create(&th, NULL, connect_thread, &c) != 0 || pthread_join(th, NULL) != 0)
        return perror("pthread"), 1;
      e = c.err;
    } else if (connect(t, (struct sockaddr *)&a, sizeof a) < 0) {
      e = errno;
      if (abandon)
        return printf("%s\n", strerror(e)), 0;
      if (nonblock && e == EINPROGRESS) {
        struct pollfd p = {.fd = t, .events = POLLOUT};
        printf("in progress\n");
        if (poll(&p, 1, 10000) != 1 || getsockopt(t, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
          e = ETIMEDOUT;
      }
    }
    if (e) {
      printf("%s\n", strerror(e));
      return 1;
    }
    printf("connected\n");
    fcntl(t, F_SETFL, 0);
    /* SO_NETNS_COOKIE (71): the same as a new socket's, or a host socket */
    int u = socket(AF_INET, SOCK_STREAM, 0);
    len = sizeof mine;
    getsockopt(t, SOL_SOCKET, 71, &mine, &len);
    len = sizeof fresh;
    getsockopt(u, SOL_SOCKET, 71, &fresh, &len);
    printf("%s\n", mine == fresh ? "own namespace" : "another namespace");
    fflush(stdout);
    if (write(t, argv[4], strlen(argv[4])) < 0 || shutdown(t, SHUT_WR) < 0)
      return perror("write"), 1;
    while ((n = read(t, buf, sizeof buf)) > 0)
      fwrite(buf, 1, (size_t)n, stdout);
    printf("\n");
    return n < 0 ? perror("read"), 1 : 0;
  }
  if (argc == 5 && strcmp(argv[1], "fillreset") == 0) {
    a.sin_port = htons((unsigned short)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1)
      return usage();
    return fill_reset(&a, atoi(argv[4]));
  }
  if (argc == 3 && strcmp(argv[1], "recv") == 0) {
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    tv.tv_sec = 10;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
      return perror("bind"), 1;
    printf("listening\n");
    fflush(stdout);
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    if (n < 0)
      return perror("recv"), 1;
    buf[n] = '\0';
    printf("%s\n", buf);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "echo") == 0) {
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    tv.tv_sec = 30;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
      return perror("bind"), 1;
    for (;;) {
      struct sockaddr_in peer;
      socklen_t plen = sizeof peer;
      ssize_t n = recvfrom(s, buf + 5, sizeof buf - 6, 0, (struct sockaddr *)&peer, &plen);
      if (n < 0)
        return 0; /* idle: done */
      memcpy(buf, "echo:", 5);
      sendto(s, buf, (size_t)n + 5, 0, (struct sockaddr *)&peer, plen);
      buf[n + 5] = '\0';
      printf("%s\n", buf);
      fflush(stdout);
    }
  }
  return usage();
}
