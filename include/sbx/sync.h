/* sync: a SOCK_SEQPACKET channel between sbx and a child it cloned, carrying
 * "go", "ok <payload>" or the child's error text. */
#pragma once

#include <glib.h>

gboolean sbx_sync_pair(int fds[2], GError **err);
/* PATH as an AF_UNIX address (a listening socket's in the state directory),
 * or FALSE when it does not fit. */
struct sockaddr_un;
gboolean sbx_sync_address(const char *path, struct sockaddr_un *a, GError **err);
gboolean sbx_sync_send_ok(int fd, const char *payload);
void sbx_sync_send_error(int fd, const GError *error);
/* Wait for one message: TRUE with *payload for ok, FALSE with err. EOF with
 * no message means the child died: `what` names it in the error. */
gboolean sbx_sync_recv(int fd, char **payload, const char *what, GError **err);
/* The same, carrying one file descriptor (SCM_RIGHTS). */
gboolean sbx_sync_send_fd(int sock, const char *payload, int fd);
gboolean sbx_sync_recv_fd(int sock, char **payload, int *fd, const char *what, GError **err);
/* Several (at most SBX_SYNC_MAX_FDS; a receiver takes at most max, any more
 * are closed). A payload too long for one message is not sent (EMSGSIZE). */
#define SBX_SYNC_MAX_FDS 4
gboolean sbx_sync_send_fds(int sock, const char *payload, const int *fds, unsigned nfds);
gboolean sbx_sync_recv_fds(int sock, char **payload, int *fds, unsigned max, unsigned *nfds,
                           const char *what, GError **err);
