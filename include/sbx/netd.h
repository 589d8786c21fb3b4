/* The network helper's state (src/net/, the sbx-net program). */
#pragma once

#include <glib.h>
#include <slirp/libslirp.h>
#include "sbx/net.h"

typedef struct {
  int tapfd;
  guint mtu;
  gboolean allow_host_loopback;
  GArray *forwards; /* SbxPortForward */
  SbxNetPolicy policy;
  Slirp *slirp;
  GMainLoop *loop;
  guint8 *buf;
  gsize buf_size;
  SbxNetStats stats;
  SbxNetLog log;
} SbxNetd;

/* slirp.c: create the stack, bind the forwarded ports, hook the loop. */
gboolean sbx_netd_start(SbxNetd *n, GError **err);
/* slirp.c: run until the tap goes away or n->loop is quit (g_main_loop_quit
 * from a GLib source): tap0, libslirp's sockets and GLib's main context in
 * one poll(2) an iteration. */
void sbx_netd_run(SbxNetd *n);
/* confine.c: an empty root, no capabilities, no_new_privs, a seccomp filter.
 * Every fd above keep_upto goes. */
gboolean sbx_netd_confine(const char *resolv_conf, int keep_upto, GError **err);
