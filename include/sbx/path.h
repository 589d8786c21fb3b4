/* path: untrusted path names, resolved by fd beneath a root.
 *
 * Nothing here builds "root/untrusted" strings: every lookup walks from a
 * directory fd and refuses to follow a symlink out (openat2 RESOLVE_* where the
 * kernel has it, component-by-component O_NOFOLLOW otherwise). */
#pragma once

#include <glib.h>

/* Normalise an archive member or layer entry name: "./" and repeated slashes
 * go. Returns NULL for absolute names, for any ".." component and for names
 * longer than PATH_MAX; "", "." and "./" give "" (the root itself). */
char *sbx_path_normalize_member(const char *name, GError **err);

/* Lexically resolve link target `target` of member `member` inside an archive
 * namespace (no filesystem). NULL when it would leave the root. */
char *sbx_path_resolve_link(const char *member, const char *target, GError **err);

/* Split "a/b/c" into dir "a/b" and base "c" (dir "" for a top-level name). */
void sbx_path_split(const char *path, char **dir, char **base);

/* Open directory `path` beneath dirfd, never following symlinks (O_PATH not
 * used: the fd is usable for *at calls). With create, missing components are
 * made with mode 0755. Returns -1 with err on failure. */
int sbx_open_dir_beneath(int dirfd, const char *path, gboolean create, GError **err);

/* Open `path` inside root `rootfd` the way the sandbox would see it: symlinks
 * are followed but resolved as if rootfd were "/" (RESOLVE_IN_ROOT). */
int sbx_open_in_root(int rootfd, const char *path, int flags, mode_t mode, GError **err);

/* mkdir -p inside a root (symlinks resolved inside it); returns an O_DIRECTORY fd. */
int sbx_mkdir_in_root(int rootfd, const char *path, mode_t mode, GError **err);

/* Does the kernel have openat2 (5.6+)? Cached. */
gboolean sbx_have_openat2(void);
