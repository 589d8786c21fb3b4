/* The spare sbx-net (src/sandbox/netspare.c): started by the end of a run
 * with the slirp network, taken by the next start instead of an exec. */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* Take the spare waiting in DIR (the state directory), check it is NETD
 * (our sbx-net binary) outside every sandbox, in our cgroup, and send it
 * OPTIONS (lines) with LOG_FD (or -1) and, WITH_STDERR, our stderr. Returns
 * the connected socket once the spare has them, with *pid and a pidfd; -1
 * and *err when there is none to take or it is not ours (then the caller
 * starts its own). */
int sbx_net_spare_take(const char *dir, const char *netd, const char *options, int log_fd,
                       gboolean with_stderr, pid_t *pid, int *pidfd, GError **err);

/* Start a spare in DIR unless one is waiting already. */
gboolean sbx_net_spare_start(const char *dir, const char *netd, GError **err);

/* The spare waiting in DIR, for `sbx check`: its pid, or 0. */
pid_t sbx_net_spare_find(const char *dir);
