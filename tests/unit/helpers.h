/* Shared helpers for the unit tests: temporary directories, small files and
 * tar archives built in memory with libarchive's write API. */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* A fresh directory under $TMPDIR; remove it with th_tmpdir_remove. */
char *th_tmpdir_new(void);
void th_tmpdir_remove(const char *path);

/* Write dir/rel (parents created) with the given bytes. */
void th_write_file(const char *dir, const char *rel, const void *data, gsize len);
void th_write_string(const char *dir, const char *rel, const char *text);
/* Does dir/rel exist (without following a final symlink)? */
gboolean th_exists(const char *dir, const char *rel);

/* "sha256:<hex>" and "<hex>" of some bytes. */
char *th_digest(GBytes *b);
char *th_hex(GBytes *b);

/* A tar archive being built in memory (ustar or pax). */
typedef struct ThTar ThTar;
ThTar *th_tar_new(gboolean pax);
void th_tar_file(ThTar *t, const char *name, const void *data, gsize len, mode_t perm);
void th_tar_text(ThTar *t, const char *name, const char *text);
/* A regular file with extended attributes (pax): NULL-terminated name, value pairs. */
void th_tar_file_xattrs(ThTar *t, const char *name, const char *text, const char *const *xattrs);
/* A pax sparse file of `size` bytes: `text` at offset 0, then a hole. */
void th_tar_sparse(ThTar *t, const char *name, const char *text, gint64 size);
void th_tar_dir(ThTar *t, const char *name, mode_t perm);
void th_tar_symlink(ThTar *t, const char *name, const char *target);
void th_tar_hardlink(ThTar *t, const char *name, const char *target);
/* Character/block device or FIFO (type AE_IFCHR, AE_IFBLK, AE_IFIFO). */
void th_tar_node(ThTar *t, const char *name, unsigned type, unsigned major, unsigned minor);
/* Next entries get this owner and mtime (default 0:0, mtime 1000000000). */
void th_tar_set_owner(ThTar *t, gint64 uid, gint64 gid);
void th_tar_set_mtime(ThTar *t, gint64 mtime);
GBytes *th_tar_finish(ThTar *t);

/* gzip-compress bytes with libarchive's gzip write filter. */
GBytes *th_gzip(GBytes *data);

/* Make the named system call fail with ENOSYS in this process from now on, as
 * on an older kernel (a seccomp filter; sets no_new_privs). For tests of a
 * fallback: call it in a g_test_trap_subprocess() child, before the code under
 * test first probes the call. */
void th_deny_syscall(const char *name);
