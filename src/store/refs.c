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
/* A name the store may record. Never one that reads as an image id
 * ("sha256:...", or a hex repository: `sbx run ID` must mean that id), never
 * control characters (they would reach terminals), never a bare tag. A name
 * pinned by a digest ("x@sha256:...") comes only from a pull of that digest:
 * the loaders refuse one an archive gives (sbx_image_archive_name_ok), and a
 * pull records the reference pulled, never a name from inside the image. */
gboolean sbx_ref_usable(const char *name)
{
  if (!name || !*name || strlen(name) > 512 || !g_utf8_validate(name, -1, NULL) ||
      !strpbrk(name, ":/@") || g_str_has_prefix(name, SBX_DIGEST_PREFIX))
    return FALSE;
  for (const char *p = name; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return FALSE;
  g_autofree char *norm = sbx_ref_normalize(name);
  const char *slash = strrchr(norm, '/');
  const char *repo = slash ? slash + 1 : norm;
  gsize rlen = strcspn(repo, ":@");
  return !(rlen >= 12 && strspn(repo, "0123456789abcdef") >= rlen && !slash);
}

gboolean sbx_ref_has_tag(const char *name)
{
  /* A registry port ("localhost:5000/app") is not a tag: the tag's colon
   * comes after the last slash. */
  const char *slash = strrchr(name, '/');
  return strchr(name, '@') != NULL || strchr(slash ? slash : name, ':') != NULL;
}

char *sbx_ref_normalize(const char *name)
{
  const char *n = name;
  if (g_str_has_prefix(n, "docker.io/"))
    n += strlen("docker.io/");
  if (g_str_has_prefix(n, "library/"))
    n += strlen("library/");
  else if (g_str_has_prefix(n, "localhost/"))
    n += strlen("localhost/");
  if (sbx_ref_has_tag(n))
    return g_strdup(n);
  return g_strconcat(n, ":latest", NULL);
}

/* refs/<sha256 of the normalised name>: any name fits in a file name. The
 * file holds "<image id>\n<name>\n". */
static char *ref_file(const char *name)
{
  g_autofree char *norm = sbx_ref_normalize(name);
  g_autofree char *d = sbx_digest_bytes(norm, strlen(norm));
  return g_strconcat("refs/", sbx_digest_hex_of(d), NULL);
}

/* Read a ref file: the id, and the name it records (optional). TRUE with
 * *id NULL when there is no such file; any other failure (an unreadable
 * refs/ or file, a damaged one) is an error: taken for "no such name", it
 * would turn rmi's untag into a delete and run's lookup into a pull. */
static gboolean read_ref(SbxStore *s, const char *file, char **id, char **name, GError **err)
{
  char buf[64 + 1 + 600];
  *id = NULL;
  sbx_autofd fd = openat(s->rootfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT)
    return TRUE;
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (n < 0)
    return sbx_fail_errno(err, "image name %s/%s", s->root, file);
  buf[n] = '\0';
  g_autofree char *hex = n >= 65 && buf[64] == '\n' ? g_strndup(buf, 64) : NULL;
  if (!hex || !sbx_hex64_valid(hex))
    return sbx_fail(err, SBX_ERROR_INVALID, "image name %s/%s: damaged (remove the file)", s->root,
                    file);
  if (name)
    *name = g_strchomp(g_strdup(buf + 65));
  *id = g_steal_pointer(&hex);
  return TRUE;
}

gboolean sbx_store_tag(SbxStore *s, const char *name, const char *id_hex, GError **err)
{
  /* An OCI ref.name of just a tag ("latest") names no repository: nothing
   * to record. Unusable names are skipped the same way. */
  if (!sbx_ref_usable(name)) {
    if (name && *name && strpbrk(name, ":/@"))
      sbx_warn("image name not recorded: not a usable name");
    return TRUE;
  }
  if (mkdirat(s->rootfd, "refs", 0700) < 0 && errno != EEXIST)
    return sbx_fail_errno(err, "store %s/refs", s->root);
  g_autofree char *file = ref_file(name);
  g_autofree char *norm = sbx_ref_normalize(name);
  g_autofree char *content = g_strdup_printf("%s\n%s\n", id_hex, norm);
  return sbx_write_file_atomic(s->rootfd, file, content, strlen(content), 0600, err);
}

gboolean sbx_store_lookup_ref(SbxStore *s, const char *name, char **id, GError **err)
{
  *id = NULL;
  if (strlen(name) > 512)
    return TRUE;
  g_autofree char *file = ref_file(name);
  return read_ref(s, file, id, NULL, err);
}

static gint cmp_strp(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

char **sbx_store_names_of(SbxStore *s, const char *id_hex, GError **err)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GPtrArray) files = sbx_store_list_dir(s, "refs", &local);
  if (!files && sbx_error_errno(local) == ENOENT)
    return g_new0(char *, 1); /* made by the first name recorded */
  if (!files) {
    g_propagate_error(err, g_steal_pointer(&local));
    return NULL;
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < files->len; i++) {
    g_autofree char *file = g_strconcat("refs/", (char *)files->pdata[i], NULL);
    g_autofree char *name = NULL;
    g_autofree char *id = NULL;
    if (!read_ref(s, file, &id, &name, err))
      return NULL;
    if (id && (!id_hex || strcmp(id, id_hex) == 0))
      g_ptr_array_add(names, g_steal_pointer(&name));
  }
  g_ptr_array_sort(names, cmp_strp);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  for (guint i = 0; i < names->len; i++)
    g_strv_builder_add(b, names->pdata[i]);
  return g_strv_builder_end(b);
}

/* refs/<entry> names an image whose record is gone: left by an rmi racing a
 * load in older versions, or a record removed by hand. Unreadable: kept. */
gboolean sbx_store_ref_dangling(SbxStore *s, const char *entry)
{
  g_autofree char *file = g_strconcat("refs/", entry, NULL);
  g_autofree char *id = NULL;
  if (!read_ref(s, file, &id, NULL, NULL) || !id)
    return FALSE;
  g_autofree char *json = g_strdup_printf("images/%s.json", id);
  return faccessat(s->rootfd, json, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
}

/* A directory that cannot be listed is an error, never "empty": prune
 * would take an unreadable images/ for a store without images and delete
 * every layer. A missing directory is an error too (the caller decides). */
GPtrArray *sbx_store_list_dir(SbxStore *s, const char *dir, GError **err)
{
  int fd = openat(s->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    sbx_fail_errno(err, "list %s/%s", s->root, dir);
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  struct dirent *de;
  for (;;) {
    errno = 0;
    if (!(de = readdir(d)))
      break;
    if (de->d_name[0] != '.')
      g_ptr_array_add(names, g_strdup(de->d_name));
  }
  int e = errno;
  closedir(d);
  if (e) {
    sbx_fail_errnum(err, e, "list %s/%s", s->root, dir);
    return NULL;
  }
  return g_steal_pointer(&names);
}

/* Image ids in the store (images/<hex>.json). */
GPtrArray *sbx_store_list_ids(SbxStore *s, GError **err)
{
  g_autoptr(GPtrArray) files = sbx_store_list_dir(s, "images", err);
  if (!files)
    return NULL;
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
  /* An id (or its prefix) is looked up as an id before any name: names that
   * look like ids are never recorded, but the order makes sure. */
  char *id = NULL;
  const char *hex = g_str_has_prefix(ref, SBX_DIGEST_PREFIX) ? sbx_digest_hex_of(ref) : ref;
  gsize len = strlen(hex);
  if (len >= 4 && len <= 64 && strspn(hex, "0123456789abcdef") == len) {
    g_autoptr(GPtrArray) ids = sbx_store_list_ids(s, err);
    if (!ids)
      return NULL;
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
  if (!sbx_store_lookup_ref(s, ref, &id, err))
    return NULL;
  if (id)
    return id;
  sbx_fail(err, SBX_ERROR_NOT_FOUND, "image %s: not in the store (see 'sbx images')", ref);
  return NULL;
}
