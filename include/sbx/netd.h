/* The network helper's state (src/net/, the sbx-net program). */
#pragma once

#include <glib.h>
#include <slirp/libslirp.h>
#include "sbx/net.h"

/* --net-log: one JSON line per new flow, refused attempt and DNS query. */
typedef struct {
  int fd; /* -1: no log */
  guint64 written;
  gboolean full;    /* the "truncated" record is written: nothing more */
  GHashTable *seen; /* flows already logged (bounded) */
} SbxNetLog;
/* Past this size the log ends with a "truncated" record. */
#define SBX_NET_LOG_MAX (16u << 20)
/* Flows remembered to log each once; when full the table starts over. */
#define SBX_NET_LOG_FLOWS 4096

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
 * Every fd but stdio and the SBX_NETD_FD_* ones (the log only with_log) goes. */
gboolean sbx_netd_confine(const char *resolv_conf, gboolean with_log, GError **err);
/* confine.c: the host's own IPv4 addresses but loopback (guint32, host
 * order), for SbxNetPolicy.host_addrs: listed before the helper confines
 * itself (it can open no netlink socket afterwards). */
GArray *sbx_net_host_addresses(GError **err);
/* log.c: record one frame the policy judged (only what --net-log wants). */
void sbx_netlog_init(SbxNetLog *l, int fd);
void sbx_netlog_frame(SbxNetLog *l, const SbxFrameInfo *info);
