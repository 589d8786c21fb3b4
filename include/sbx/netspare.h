/* The spare sbx-net (src/sandbox/netspare.c): started by the end of a run
 * with the slirp network, taken by the next start instead of an exec. */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* Take the spare waiting in DIR (the state directory), in two steps.
 * sbx_net_spare_connect, before the sandbox's clone: rename its socket to a
 * name of our own (one start wins) and connect; the peer must run as our
 * uid, in sight of our PID namespace. Returns the socket, the peer's *pid
 * and a *pidfd of it, or -1 and *err when there is none to take.
 * sbx_net_spare_claim, after the clone (beside init's set-up): check the
 * peer PID (PIDFD) on socket S is NETD (our sbx-net binary) outside every
 * sandbox, in our cgroup, and send it OPTIONS (lines) with LOG_FD (or -1)
 * and, WITH_STDERR, our stderr. TRUE once the spare has them; FALSE and
 * *err when it is not ours or does not answer (the caller closes S and the
 * pidfd, and starts its own). Nothing goes to the peer before its checks. */
int sbx_net_spare_connect(const char *dir, pid_t *pid, int *pidfd, GError **err);
gboolean sbx_net_spare_claim(int s, pid_t pid, int pidfd, const char *netd, const char *options,
                             int log_fd, gboolean with_stderr, GError **err);

/* Start a spare in DIR unless one is waiting already. */
gboolean sbx_net_spare_start(const char *dir, const char *netd, GError **err);

/* The spare waiting in DIR, for `sbx check`: its pid, or 0. */
pid_t sbx_net_spare_find(const char *dir);
