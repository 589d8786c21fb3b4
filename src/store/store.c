/* The store: where it is, what is in it, and the cache that lets a second
 * `sbx run` of the same archive skip reading it at all. */
#include "sbx/digest.h"
#include "sbx/store.h"
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define DEFAULT_MAX_LAYER_SIZE (256ull << 30) /* generous but finite */

char *sbx_store_default_root(void)
{
  const char *env = g_getenv("SBX_ROOT");
  if (env && *env)
    return g_strdup(env);
  const char *xdg = g_getenv("XDG_DATA_HOME");
  if (xdg && g_path_is_absolute(xdg))
    return g_build_filename(xdg, "sbx", NULL);
  const char *home = g_getenv("HOME");
  if (!home || !*home) {
    struct passwd *pw = getpwuid(getuid());
    home = pw ? pw->pw_dir : "/";
  }
  return g_build_filename(home, ".local", "share", "sbx", NULL);
}

SbxStore *sbx_store_open(const char *root, const SbxIdMap *map, GError **err)
{
  g_autoptr(SbxStore) s = g_new0(SbxStore, 1);
  s->rootfd = -1;
  s->root = g_canonicalize_filename(root, NULL);
  s->idmap = map;
  s->idmap_key = sbx_idmap_key(map);
  s->max_layer_size = DEFAULT_MAX_LAYER_SIZE;
  const char *max = g_getenv("SBX_MAX_LAYER_SIZE");
  if (max && !g_ascii_string_to_unsigned(max, 10, 1, G_MAXUINT64, &s->max_layer_size, NULL)) {
    sbx_fail(err, SBX_ERROR_USAGE, "SBX_MAX_LAYER_SIZE: '%s' is not a byte count", max);
    return NULL;
  }
  g_autofree char *layers = g_build_filename(s->root, "layers", s->idmap_key, NULL);
  if (!sbx_mkdir_p(layers, 0700, err))
    return NULL;
  s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->rootfd < 0) {
    sbx_fail_errno(err, "store %s", s->root);
    return NULL;
  }
  static const char *const dirs[] = {"images", "archives", "locks", "tmp", "run"};
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++)
    if (mkdirat(s->rootfd, dirs[i], 0700) < 0 && errno != EEXIST) {
      sbx_fail_errno(err, "store %s/%s", s->root, dirs[i]);
      return NULL;
    }
  return g_steal_pointer(&s);
}

void sbx_store_free(SbxStore *s)
{
  if (!s)
    return;
  if (s->rootfd >= 0)
    close(s->rootfd);
  g_free(s->root);
  g_free(s->idmap_key);
  g_free(s);
}

void sbx_stored_image_free(SbxStoredImage *i)
{
  if (!i)
    return;
  g_free(i->id);
  sbx_image_config_free(i->config);
  g_strfreev(i->names);
  g_strfreev(i->layer_dirs);
  g_free(i->layers_dir);
  g_free(i);
}

SbxStoredImage *sbx_store_read_image(SbxStore *s, const char *id_hex, GError **err)
{
  if (!sbx_hex64_valid(id_hex)) {
    sbx_fail(err, SBX_ERROR_INVALID, "invalid image id %s", id_hex);
    return NULL;
  }
  g_autofree char *name = g_strdup_printf("images/%s.json", id_hex);
  sbx_autofd fd = openat(s->rootfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    sbx_fail_errno(err, "image %.12s", id_hex);
    return NULL;
  }
  g_autoptr(GBytes) raw = sbx_read_fd_bounded(fd, SBX_MAX_JSON_MEMBER, name, err);
  if (!raw)
    return NULL;
  g_autoptr(SbxStoredImage) img = g_new0(SbxStoredImage, 1);
  img->id = g_strdup(id_hex);
  gsize len;
  const char *data = g_bytes_get_data(raw, &len);
  img->config = sbx_image_config_parse(data, len, err);
  if (!img->config)
    return NULL;
  img->layers_dir = g_build_filename(s->root, "layers", s->idmap_key, NULL);
  guint n = g_strv_length(img->config->diff_ids);
  img->layer_dirs = g_new0(char *, n + 1);
  for (guint i = 0; i < n; i++)
    img->layer_dirs[i] = g_strdup(img->config->diff_ids[i] + 7);
  img->names = g_new0(char *, 1);
  return g_steal_pointer(&img);
}

static gboolean layers_present(SbxStore *s, SbxStoredImage *img)
{
  for (char **l = img->layer_dirs; *l; l++) {
    g_autofree char *p = g_build_filename("layers", s->idmap_key, *l, NULL);
    if (faccessat(s->rootfd, p, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
      return FALSE;
  }
  return TRUE;
}

/* The archive is known by where it lives on disk and when it last changed:
 * the same key means the same bytes, so nothing needs reading or hashing. */
static char *archive_key(const char *path, const char *select)
{
  struct stat st;
  g_autofree char *idx = g_build_filename(path, "index.json", NULL);
  if (stat(path, &st) < 0)
    return NULL;
  if (S_ISDIR(st.st_mode) && stat(idx, &st) < 0)
    return NULL;
  g_autofree char *id = g_strdup_printf("v1:%ju:%ju:%jd:%jd.%ld:%s", (uintmax_t)st.st_dev,
                                        (uintmax_t)st.st_ino, (intmax_t)st.st_size,
                                        (intmax_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                                        select ? select : "");
  g_autofree char *d = sbx_digest_bytes(id, strlen(id));
  return g_strdup(d + 7);
}

static char *cached_image_id(SbxStore *s, const char *key)
{
  g_autofree char *name = g_strdup_printf("archives/%s", key);
  char buf[65];
  sbx_autofd fd = openat(s->rootfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || read(fd, buf, 64) != 64)
    return NULL;
  buf[64] = '\0';
  return sbx_hex64_valid(buf) ? g_strdup(buf) : NULL;
}

/* Run the import in a helper: it holds the untrusted archive, lives in its
 * own user namespace (needed to give files their owners under a subuid
 * range), and can take nothing else down with it. */
static char *import_in_helper(SbxStore *s, const char *path, const char *select, GError **err)
{
  int syncfd;
  pid_t pid = sbx_userns_clone(s->idmap, 0, &syncfd, err);
  if (pid < 0)
    return NULL;
  if (pid == 0) {
    g_autoptr(GError) local = NULL;
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    g_autofree char *id = sbx_store_import(s, path, select, &local);
    if (id)
      sbx_sync_send_ok(syncfd, id);
    else
      sbx_sync_send_error(syncfd, local);
    _exit(id ? 0 : SBX_EXIT_FAILED);
  }
  g_autofree char *id = NULL;
  gboolean ok = sbx_sync_recv(syncfd, &id, "import helper", err);
  close(syncfd);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!ok)
    return NULL;
  if (!sbx_hex64_valid(id)) {
    sbx_fail(err, SBX_ERROR_FAILED, "import helper: bad reply");
    return NULL;
  }
  return g_steal_pointer(&id);
}

SbxStoredImage *sbx_store_ensure(SbxStore *s, const char *path, const char *select,
                                 gboolean quiet, GError **err)
{
  g_autofree char *key = archive_key(path, select);
  if (key) {
    g_autofree char *id = cached_image_id(s, key);
    if (id) {
      g_autoptr(SbxStoredImage) img = sbx_store_read_image(s, id, NULL);
      if (img && layers_present(s, img)) {
        sbx_debug("archive %s: cached as image %.12s", path, id);
        return g_steal_pointer(&img);
      }
    }
  }
  sbx_debug("archive %s: importing", path);
  g_autofree char *id = import_in_helper(s, path, select, err);
  if (!id)
    return NULL;
  if (key) {
    g_autofree char *name = g_strdup_printf("archives/%s", key);
    g_autoptr(GError) local = NULL;
    if (!sbx_write_file_atomic(s->rootfd, name, id, 64, 0600, &local))
      sbx_debug("archive cache not written: %s", local->message);
  }
  return sbx_store_read_image(s, id, err);
}
