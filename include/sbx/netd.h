/* The network helper's state (src/net/, the sbx-net program). */
#pragma once

#include <glib.h>
#include <slirp/libslirp.h>
#include "sbx/net.h"

typedef struct {
  int tapfd;
  guint mtu;
  gboolean allow_host_loopback;
  GArray *forwards;     /* SbxPortForward */
  SbxNetPolicy policy;
  Slirp *slirp;
  GMainLoop *loop;
  guint8 *buf;
  gsize buf_size;
} SbxNetd;

/* slirp.c: create the stack, bind the forwarded ports, hook the loop. */
gboolean sbx_netd_start(SbxNetd *n, GError **err);
/* confine.c: an empty root, no capabilities, no_new_privs, a seccomp filter. */
gboolean sbx_netd_confine(const char *resolv_conf, int keep_fd_a, int keep_fd_b, GError **err);
