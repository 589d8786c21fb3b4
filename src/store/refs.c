/* Image names: refs/<escaped name> holds the image id. One file per name,
 * replaced atomically, so concurrent loads never corrupt a shared index. */
#include "sbx/digest.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* "busybox" -> "busybox:latest"; docker.io/library/ and localhost/ dropped,
 * so a name finds its image however the archive spelled it. */
char *sbx_ref_normalize(const char *name)
{
  const char *n = name;
  if (g_str_has_prefix(n, "docker.io/"))
    n += strlen("docker.io/");
  if (g_str_has_prefix(n, "library/"))
    n += strlen("library/");
  else if (g_str_has_prefix(n, "localhost/"))
    n += strlen("localhost/");
  const char *slash = strrchr(n, '/');
  const char *colon = strrchr(slash ? slash : n, ':');
  if (strchr(n, '@') || colon)
    return g_strdup(n);
  return g_strconcat(n, ":latest", NULL);
}

static char *ref_file(const char *name)
{
  g_autofree char *norm = sbx_ref_normalize(name);
  g_autofree char *esc = g_uri_escape_string(norm, ":@", FALSE);
  return g_strconcat("refs/", esc, NULL);
}

gboolean sbx_store_tag(SbxStore *s, const char *name, const char *id_hex, GError **err)
{
  /* An OCI ref.name of just a tag ("latest") names no repository: nothing
   * to record. Unusable names are skipped the same way. */
  if (!name || !*name || strlen(name) > 512 || !g_utf8_validate(name, -1, NULL) ||
      !strpbrk(name, ":/@"))
    return TRUE;
  if (mkdirat(s->rootfd, "refs", 0700) < 0 && errno != EEXIST)
    return sbx_fail_errno(err, "store %s/refs", s->root);
  g_autofree char *file = ref_file(name);
  return sbx_write_file_atomic(s->rootfd, file, id_hex, strlen(id_hex), 0600, err);
}

char *sbx_store_lookup_ref(SbxStore *s, const char *name)
{
  g_autofree char *file = ref_file(name);
  char buf[65];
  sbx_autofd fd = openat(s->rootfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || read(fd, buf, 64) != 64)
    return NULL;
  buf[64] = '\0';
  return sbx_hex64_valid(buf) ? g_strdup(buf) : NULL;
}

static gint cmp_strp(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

char **sbx_store_names_of(SbxStore *s, const char *id_hex)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  sbx_autofd fd = openat(s->rootfd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  DIR *d = fd >= 0 ? fdopendir(sbx_steal_fd(&fd)) : NULL;
  struct dirent *de;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  while (d && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    g_autofree char *name = g_uri_unescape_string(de->d_name, NULL);
    g_autofree char *id = name ? sbx_store_lookup_ref(s, name) : NULL;
    if (id && (!id_hex || strcmp(id, id_hex) == 0))
      g_ptr_array_add(names, g_steal_pointer(&name));
  }
  if (d)
    closedir(d);
  g_ptr_array_sort(names, cmp_strp);
  for (guint i = 0; i < names->len; i++)
    g_strv_builder_add(b, names->pdata[i]);
  return g_strv_builder_end(b);
}

GPtrArray *sbx_store_list_dir(SbxStore *s, const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  int fd = openat(s->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL)
    if (de->d_name[0] != '.')
      g_ptr_array_add(names, g_strdup(de->d_name));
  if (d)
    closedir(d);
  else if (fd >= 0)
    close(fd);
  return names;
}

/* Image ids in the store (images/<hex>.json). */
GPtrArray *sbx_store_list_ids(SbxStore *s)
{
  g_autoptr(GPtrArray) files = sbx_store_list_dir(s, "images");
  GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < files->len; i++) {
    const char *f = files->pdata[i];
    if (g_str_has_suffix(f, ".json") && strlen(f) == 64 + 5) {
      g_autofree char *hex = g_strndup(f, 64);
      if (sbx_hex64_valid(hex))
        g_ptr_array_add(ids, g_steal_pointer(&hex));
    }
  }
  return ids;
}

char *sbx_store_resolve(SbxStore *s, const char *ref, GError **err)
{
  char *id = sbx_store_lookup_ref(s, ref);
  if (id)
    return id;
  const char *hex = g_str_has_prefix(ref, "sha256:") ? ref + 7 : ref;
  gsize len = strlen(hex);
  if (len >= 4 && len <= 64 && strspn(hex, "0123456789abcdef") == len) {
    g_autoptr(GPtrArray) ids = sbx_store_list_ids(s);
    for (guint i = 0; i < ids->len; i++) {
      if (strncmp(ids->pdata[i], hex, len) != 0)
        continue;
      if (id) {
        g_free(id);
        sbx_fail(err, SBX_ERROR_USAGE, "image id %s is ambiguous", ref);
        return NULL;
      }
      id = g_strdup(ids->pdata[i]);
    }
    if (id)
      return id;
  }
  sbx_fail(err, SBX_ERROR_NOT_FOUND, "image %s: not in the store (see 'sbx images')", ref);
  return NULL;
}

