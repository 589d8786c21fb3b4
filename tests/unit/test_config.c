/* Unit tests for src/image/: the image config parser, and sbx_image_load on
 * small docker-save archives and OCI layouts written here with libarchive. */
#include "helpers.h"
#include "sbx/digest.h"
#include "sbx/image.h"
#include "sbx/settings.h"
#include "sbx/source.h"
#include "sbx/util.h"

#include <archive_entry.h>
#include <string.h>

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX    "application/vnd.oci.image.index.v1+json"
#define MT_CONFIG   "application/vnd.oci.image.config.v1+json"
#define MT_LAYER_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define D1          "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2          "sha256:2222222222222222222222222222222222222222222222222222222222222222"

/* ---- sbx_image_config_parse ---- */

static SbxImageConfig *parse_ok(const char *json)
{
  g_autoptr(GError) err = NULL;
  SbxImageConfig *c = sbx_image_config_parse(json, strlen(json), &err);
  g_assert_no_error(err);
  g_assert_nonnull(c);
  return c;
}

static void assert_parse_refused(const char *json, const char *msg_part)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxImageConfig) c = sbx_image_config_parse(json, strlen(json), &err);
  g_assert_null(c);
  g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
  if (!strstr(err->message, msg_part))
    g_error("message '%s' lacks '%s'", err->message, msg_part);
}

static void assert_strv(char **got, const char *const *want)
{
  g_assert_nonnull(got);
  g_assert_true(g_strv_equal((const char *const *)got, want));
}

static const char realistic[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-02T03:04:05Z\","
    "\"config\":{\"Hostname\":\"\",\"User\":\"101:101\",\"ExposedPorts\":{\"80/tcp\":{}},"
    "\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\","
    "\"NGINX_VERSION=1.25.3\",\"EMPTY=\"],"
    "\"Entrypoint\":[\"/docker-entrypoint.sh\"],\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],"
    "\"WorkingDir\":\"/srv/www\",\"Labels\":{\"maintainer\":\"x\"},\"StopSignal\":\"SIGQUIT\"},"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},"
    "\"history\":[{\"created_by\":\"/bin/sh -c #(nop) ADD file:abc in /\"}]}";

static void test_parse_realistic(void)
{
  g_autoptr(SbxImageConfig) c = parse_ok(realistic);
  assert_strv(c->entrypoint, (const char *[]){"/docker-entrypoint.sh", NULL});
  assert_strv(c->cmd, (const char *[]){"nginx", "-g", "daemon off;", NULL});
  assert_strv(c->env,
              (const char *[]){"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "NGINX_VERSION=1.25.3", "EMPTY=", NULL});
  assert_strv(c->diff_ids, (const char *[]){D1, D2, NULL});
  g_assert_cmpstr(c->workdir, ==, "/srv/www");
  g_assert_cmpstr(c->user, ==, "101:101");
  g_assert_null(c->hostname); /* "" is unset */
  g_assert_cmpstr(c->architecture, ==, "amd64");
  g_assert_cmpstr(c->os, ==, "linux");
}

static void test_parse_null_cmd(void)
{
  g_autoptr(SbxImageConfig) c =
      parse_ok("{\"config\":{\"Cmd\":null,\"Entrypoint\":null,\"Env\":null,\"User\":null},"
               "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\"]}}");
  g_assert_null(c->cmd);
  g_assert_null(c->entrypoint);
  g_assert_null(c->env);
  g_assert_null(c->user);
  g_assert_null(c->os);
  g_autoptr(SbxImageConfig) bare = parse_ok("{\"rootfs\":{\"diff_ids\":[]}}");
  g_assert_null(bare->cmd);
  g_assert_null(bare->workdir);
  g_assert_nonnull(bare->diff_ids);
  g_assert_cmpuint(g_strv_length(bare->diff_ids), ==, 0);
  /* "" is docker's "not set": the same as absent (the run record keeps no
   * difference either; found by fuzz_image's round trip). */
  g_autoptr(SbxImageConfig) empty =
      parse_ok("{\"config\":{\"WorkingDir\":\"\",\"User\":\"\",\"Hostname\":\"\"},"
               "\"rootfs\":{\"diff_ids\":[]}}");
  g_assert_null(empty->workdir);
  g_assert_null(empty->user);
  g_assert_null(empty->hostname);
}

/* The run record is read back as sbx's own file, but a damaged or planted
 * one must not name a layer outside the store (nor be read past its end). */
static void test_record_bad_diff_id(void)
{
  const char *bad[] = {"sha256:../../x",
                       "sha256:",
                       "sha",
                       "",
                       "sha256:ABCDEF1111111111111111111111111111111111111111111111111111111111",
                       "sha512:1111111111111111111111111111111111111111111111111111111111111111"};
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    char *ids[] = {D1, (char *)bad[i], NULL};
    SbxImageConfig c = {.diff_ids = ids};
    g_autoptr(GBytes) rec = sbx_image_config_to_record(&c);
    g_autoptr(GError) err = NULL;
    g_autoptr(SbxImageConfig) back = sbx_image_config_from_record(rec, &err);
    g_assert_null(back);
    g_assert_error(err, SBX_ERROR, SBX_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "damaged image record"));
  }
  char *good[] = {D1, NULL};
  SbxImageConfig c = {.diff_ids = good};
  g_autoptr(GBytes) rec = sbx_image_config_to_record(&c);
  g_autoptr(SbxImageConfig) back = sbx_image_config_from_record(rec, NULL);
  g_assert_nonnull(back);
  g_assert_cmpstr(back->diff_ids[0], ==, D1);
}

static void test_parse_missing_rootfs(void)
{
  assert_parse_refused("{\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]}}", "no rootfs");
  assert_parse_refused("{\"rootfs\":[]}", "rootfs: expected a JSON object");
  assert_parse_refused("{\"rootfs\":{\"type\":\"layers\"}}", "diff_ids missing");
  assert_parse_refused("{\"rootfs\":{\"diff_ids\":\"" D1 "\"}}", "expected an array");
}

static void test_parse_bad_diff_id(void)
{
  const char *bad[] = {
      "sha256:ABCDEF1111111111111111111111111111111111111111111111111111111111",
      "1111111111111111111111111111111111111111111111111111111111111111",
      "sha256:111",
      "sha512:1111111111111111111111111111111111111111111111111111111111111111",
      "sha256:../../../../etc/passwd",
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *json = g_strdup_printf(
        "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"%s\"]}}", bad[i]);
    assert_parse_refused(json, "rootfs.diff_ids");
  }
  assert_parse_refused("{\"rootfs\":{\"diff_ids\":[7]}}", "expected a string");
}

static void test_parse_env_without_equals(void)
{
  assert_parse_refused("{\"config\":{\"Env\":[\"A=1\",\"FOO\"]},\"rootfs\":{\"diff_ids\":[]}}",
                       "Env entry 'FOO' is not KEY=VALUE");
  assert_parse_refused("{\"config\":{\"Env\":[\"=bar\"]},\"rootfs\":{\"diff_ids\":[]}}",
                       "not KEY=VALUE");
}

static void test_parse_os(void)
{
  assert_parse_refused("{\"os\":\"windows\",\"rootfs\":{\"diff_ids\":[\"" D1 "\"]}}",
                       "os 'windows'");
  assert_parse_refused("{\"os\":\"Linux\",\"rootfs\":{\"diff_ids\":[]}}", "not linux");
}

static void test_parse_wrong_types(void)
{
  assert_parse_refused("[]", "expected a JSON object");
  assert_parse_refused("{\"rootfs\":", "invalid JSON");
  assert_parse_refused("{\"config\":{\"Cmd\":\"sh -c x\"},\"rootfs\":{\"diff_ids\":[]}}",
                       "Cmd: expected an array");
  assert_parse_refused("{\"config\":{\"User\":0},\"rootfs\":{\"diff_ids\":[]}}",
                       "User: expected a string");
  assert_parse_refused("{\"config\":[],\"rootfs\":{\"diff_ids\":[]}}", "expected a JSON object");
  assert_parse_refused("{\"os\":1,\"rootfs\":{\"diff_ids\":[]}}", "os: expected a string");
}

static void test_digest_from_path(void)
{
  const char *hex = &D1[7];
  g_autofree char *json = g_strconcat(hex, ".json", NULL);
  g_autofree char *blob = g_strconcat("blobs/sha256/", hex, NULL);
  g_autofree char *a = sbx_image_digest_from_path(json);
  g_autofree char *b = sbx_image_digest_from_path(blob);
  g_assert_cmpstr(a, ==, D1);
  g_assert_cmpstr(b, ==, D1);
  g_assert_null(sbx_image_digest_from_path("config.json"));
  g_assert_null(sbx_image_digest_from_path("blobs/sha256/ABC"));
  g_assert_null(sbx_image_digest_from_path(""));
}

/* ---- image layouts built in memory ---- */

typedef struct {
  char *name;
  GBytes *data; /* NULL for a symlink */
  char *link;
} Member;

static void member_free(gpointer p)
{
  Member *m = p;
  g_free(m->name);
  if (m->data)
    g_bytes_unref(m->data);
  g_free(m->link);
  g_free(m);
}

static GPtrArray *layout_new(void)
{
  return g_ptr_array_new_with_free_func(member_free);
}

static void layout_add(GPtrArray *l, const char *name, GBytes *data)
{
  Member *m = g_new0(Member, 1);
  m->name = g_strdup(name);
  m->data = g_bytes_ref(data);
  g_ptr_array_add(l, m);
}

static void layout_add_text(GPtrArray *l, const char *name, const char *text)
{
  g_autoptr(GBytes) b = g_bytes_new(text, strlen(text));
  layout_add(l, name, b);
}

static void layout_add_symlink(GPtrArray *l, const char *name, const char *target)
{
  Member *m = g_new0(Member, 1);
  m->name = g_strdup(name);
  m->link = g_strdup(target);
  g_ptr_array_add(l, m);
}

/* Store a blob at blobs/sha256/<hex>; returns its digest. */
static char *layout_add_blob(GPtrArray *l, GBytes *data)
{
  g_autofree char *hex = th_hex(data);
  g_autofree char *name = g_strconcat("blobs/sha256/", hex, NULL);
  layout_add(l, name, data);
  return g_strconcat("sha256:", hex, NULL);
}

static GBytes *layout_tar(GPtrArray *l)
{
  ThTar *t = th_tar_new(FALSE);
  for (guint i = 0; i < l->len; i++) {
    Member *m = l->pdata[i];
    if (m->link)
      th_tar_symlink(t, m->name, m->link);
    else
      th_tar_file(t, m->name, g_bytes_get_data(m->data, NULL), g_bytes_get_size(m->data), 0644);
  }
  return th_tar_finish(t);
}

typedef struct {
  char *base;
  GBytes *layer; /* an uncompressed layer tar */
  char *diff_id;
  GBytes *layer2; /* a second, different one */
  char *diff_id2;
} Fx;

static GBytes *make_layer(const char *content)
{
  ThTar *t = th_tar_new(FALSE);
  th_tar_dir(t, "etc/", 0755);
  th_tar_text(t, "etc/motd", content);
  return th_tar_finish(t);
}

static void fx_setup(Fx *f, gconstpointer data)
{
  f->base = th_tmpdir_new();
  f->layer = make_layer("first");
  f->diff_id = th_digest(f->layer);
  f->layer2 = make_layer("second");
  f->diff_id2 = th_digest(f->layer2);
}

static void fx_teardown(Fx *f, gconstpointer data)
{
  th_tmpdir_remove(f->base);
  g_free(f->base);
  g_bytes_unref(f->layer);
  g_bytes_unref(f->layer2);
  g_free(f->diff_id);
  g_free(f->diff_id2);
}

static GBytes *config_bytes(const char *arch, const char *cmd, const char *diff_id)
{
  g_autofree char *json =
      g_strdup_printf("{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"%s\"]},"
                      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                      arch, cmd, diff_id);
  return g_bytes_new(json, strlen(json));
}

/* "<sha256 hex of the bytes>.json": how docker save names a config. */
static char *json_name(GBytes *cfg)
{
  g_autofree char *hex = th_hex(cfg);
  return g_strconcat(hex, ".json", NULL);
}

/* A docker-save image: <config hex>.json and its layer at `layer_member`;
 * returns its manifest.json entry. */
static char *docker_image(GPtrArray *l, const char *cmd, GBytes *layer, const char *layer_member,
                          const char *tag)
{
  g_autofree char *diff_id = th_digest(layer);
  g_autoptr(GBytes) cfg = config_bytes(sbx_image_host_arch(), cmd, diff_id);
  g_autofree char *cfg_name = json_name(cfg);
  layout_add(l, cfg_name, cfg);
  layout_add(l, layer_member, layer);
  return g_strdup_printf("{\"Config\":\"%s\",\"RepoTags\":[\"%s\"],\"Layers\":[\"%s\"]}", cfg_name,
                         tag, layer_member);
}

/* The config docker_image() stored (it is the layout's first member). */
static const char *config_name(GPtrArray *l)
{
  return ((Member *)l->pdata[0])->name;
}

static void docker_manifest(GPtrArray *l, const char *entries)
{
  g_autofree char *m = g_strdup_printf("[%s]", entries);
  layout_add_text(l, "manifest.json", m);
}

static char *write_tar(Fx *f, GPtrArray *l)
{
  g_autoptr(GBytes) tar = layout_tar(l);
  th_write_file(f->base, "image.tar", g_bytes_get_data(tar, NULL), g_bytes_get_size(tar));
  return g_build_filename(f->base, "image.tar", NULL);
}

static SbxImage *load(const char *path, const char *select, SbxSource **src_out, GError **err)
{
  g_autoptr(SbxSource) src = sbx_source_open(path, SBX_DEFAULT_MAX_LAYER_SIZE, err);
  if (!src)
    return NULL;
  SbxImage *img = sbx_image_load(src, select, err);
  if (src_out)
    *src_out = g_steal_pointer(&src);
  return img;
}

static void assert_load_refused(const char *path, const char *select, int code,
                                const char *msg_part)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxImage) img = load(path, select, NULL, &err);
  g_assert_null(img);
  g_assert_error(err, SBX_ERROR, code);
  if (msg_part && !strstr(err->message, msg_part))
    g_error("message '%s' lacks '%s'", err->message, msg_part);
}

/* The layer member streams the bytes whose digest is the diff_id. */
static void assert_layer_readable(SbxSource *src, const SbxLayerRef *ref)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(GBytes) b = sbx_source_read(src, ref->member, 1 << 20, &err);
  g_assert_no_error(err);
  g_autofree char *d = th_digest(b);
  g_assert_cmpstr(d, ==, ref->blob_digest ? ref->blob_digest : ref->diff_id);
}

/* ---- docker-save archives ---- */

static void test_docker_legacy(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_autofree char *e = docker_image(l, "hello", f->layer, "0123abcd/layer.tar", "busybox:latest");
  layout_add_text(l, "0123abcd/VERSION", "1.0");
  layout_add_text(l, "repositories", "{}");
  docker_manifest(l, e);
  g_autofree char *path = write_tar(f, l);
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxSource) src = NULL;
  g_autoptr(SbxImage) img = load(path, NULL, &src, &err);
  g_assert_no_error(err);
  g_assert_cmpstr(img->format, ==, "docker-archive");
  g_assert_cmpuint(img->layers->len, ==, 1);
  SbxLayerRef *ref = img->layers->pdata[0];
  g_assert_cmpstr(ref->member, ==, "0123abcd/layer.tar");
  g_assert_null(ref->blob_digest);
  g_assert_cmpstr(ref->diff_id, ==, f->diff_id);
  g_assert_cmpint(ref->size, ==, -1);
  g_autofree char *cfg_digest = th_digest(img->config_raw);
  g_assert_cmpstr(img->config_digest, ==, cfg_digest);
  assert_strv(img->names, (const char *[]){"busybox:latest", NULL});
  assert_strv(img->config->cmd, (const char *[]){"hello", NULL});
  assert_layer_readable(src, ref);
}

/* Layers bottom first, each paired with its diff_id in order. */
static void test_docker_two_layers(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_autofree char *json =
      g_strdup_printf("{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                      "\"diff_ids\":[\"%s\",\"%s\"]}}",
                      sbx_image_host_arch(), f->diff_id, f->diff_id2);
  g_autoptr(GBytes) cfg = g_bytes_new(json, strlen(json));
  g_autofree char *name = json_name(cfg);
  layout_add(l, name, cfg);
  layout_add(l, "bottom/layer.tar", f->layer);
  layout_add(l, "top/layer.tar", f->layer2);
  g_autofree char *e = g_strdup_printf(
      "{\"Config\":\"%s\",\"Layers\":[\"bottom/layer.tar\",\"top/layer.tar\"]}", name);
  docker_manifest(l, e);
  g_autofree char *path = write_tar(f, l);
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxSource) src = NULL;
  g_autoptr(SbxImage) img = load(path, NULL, &src, &err);
  g_assert_no_error(err);
  g_assert_cmpuint(img->layers->len, ==, 2);
  SbxLayerRef *bottom = img->layers->pdata[0], *top = img->layers->pdata[1];
  g_assert_cmpstr(bottom->member, ==, "bottom/layer.tar");
  g_assert_cmpstr(top->member, ==, "top/layer.tar");
  assert_layer_readable(src, bottom);
  assert_layer_readable(src, top);
  g_assert_true(img->names == NULL || img->names[0] == NULL);
}

static void test_docker_evil_layer_path(Fx *f, gconstpointer data)
{
  const char *evil[] = {"../evil.tar", "/etc/passwd", "a/../../evil.tar", "./../evil.tar"};
  for (guint i = 0; i < G_N_ELEMENTS(evil); i++) {
    g_autoptr(GPtrArray) l = layout_new();
    g_free(docker_image(l, "hello", f->layer, "good/layer.tar", "x:1"));
    g_autofree char *bad = g_strdup_printf(
        "{\"Config\":\"%s\",\"RepoTags\":[],\"Layers\":[\"%s\"]}", config_name(l), evil[i]);
    docker_manifest(l, bad);
    g_autofree char *path = write_tar(f, l);
    assert_load_refused(path, NULL, SBX_ERROR_INVALID, "outside the archive");
  }
}

static void test_docker_config_name_mismatch(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_autoptr(GBytes) cfg = config_bytes(sbx_image_host_arch(), "hello", f->diff_id);
  const char *wrong = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json";
  layout_add(l, wrong, cfg);
  layout_add(l, "l/layer.tar", f->layer);
  g_autofree char *e =
      g_strdup_printf("{\"Config\":\"%s\",\"RepoTags\":null,\"Layers\":[\"l/layer.tar\"]}", wrong);
  docker_manifest(l, e);
  g_autofree char *path = write_tar(f, l);
  assert_load_refused(path, NULL, SBX_ERROR_INVALID, "digest mismatch");
}

static void test_docker_multi_image(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_autofree char *a = docker_image(l, "alpha", f->layer, "a/layer.tar", "alpha:1");
  g_autofree char *b =
      docker_image(l, "beta", f->layer2, "b/layer.tar", "docker.io/library/beta:latest");
  g_autofree char *both = g_strconcat(a, ",", b, NULL);
  docker_manifest(l, both);
  g_autofree char *path = write_tar(f, l);
  assert_load_refused(path, NULL, SBX_ERROR_USAGE, "holds 2 images");
  assert_load_refused(path, "gamma:1", SBX_ERROR_NOT_FOUND, "no image named gamma:1");
  assert_load_refused(path, "alpha:2", SBX_ERROR_NOT_FOUND, NULL);
  const char *selects[][2] = {{"alpha:1", "alpha"}, {"beta", "beta"}, {"beta:latest", "beta"}};
  for (guint i = 0; i < G_N_ELEMENTS(selects); i++) {
    g_autoptr(GError) err = NULL;
    g_autoptr(SbxImage) img = load(path, selects[i][0], NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(img->config->cmd[0], ==, selects[i][1]);
    SbxLayerRef *ref = img->layers->pdata[0];
    g_assert_cmpstr(ref->diff_id, ==, i == 0 ? f->diff_id : f->diff_id2);
  }
}

/* NAME without a tag means NAME:latest, also when NAME has a registry port. */
static void test_docker_select_registry_port(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_autofree char *e =
      docker_image(l, "hello", f->layer, "a/layer.tar", "localhost:5000/app:latest");
  docker_manifest(l, e);
  g_autofree char *path = write_tar(f, l);
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxImage) exact = load(path, "localhost:5000/app:latest", NULL, &err);
  g_assert_no_error(err);
  g_assert_nonnull(exact);
  g_autoptr(SbxImage) img = load(path, "localhost:5000/app", NULL, &err);
  g_assert_no_error(err);
  g_assert_nonnull(img);
}

/* podman save: <id>/layer.tar is a symlink to ../<diffhex>.tar. */
static void test_docker_podman_symlink(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_autofree char *hex = th_hex(f->layer);
  g_autofree char *real = g_strconcat(hex, ".tar", NULL);
  g_free(docker_image(l, "hello", f->layer, real, "localhost/x:1"));
  g_autofree char *target = g_strconcat("../", real, NULL);
  layout_add_symlink(l, "abc/layer.tar", target);
  g_autofree char *entry = g_strdup_printf(
      "{\"Config\":\"%s\",\"RepoTags\":[\"x:1\"],\"Layers\":[\"abc/layer.tar\"]}", config_name(l));
  docker_manifest(l, entry);
  g_autofree char *path = write_tar(f, l);
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxSource) src = NULL;
  g_autoptr(SbxImage) img = load(path, NULL, &src, &err);
  g_assert_no_error(err);
  SbxLayerRef *ref = img->layers->pdata[0];
  g_assert_cmpstr(ref->member, ==, "abc/layer.tar");
  assert_layer_readable(src, ref);
}

static void test_docker_symlink_escape(Fx *f, gconstpointer data)
{
  const char *targets[] = {"../../outside", "/etc/passwd"};
  for (guint i = 0; i < G_N_ELEMENTS(targets); i++) {
    g_autoptr(GPtrArray) l = layout_new();
    g_free(docker_image(l, "hello", f->layer, "real.tar", "x:1"));
    layout_add_symlink(l, "abc/layer.tar", targets[i]);
    g_autofree char *entry =
        g_strdup_printf("{\"Config\":\"%s\",\"RepoTags\":[\"x:1\"],\"Layers\":[\"abc/layer.tar\"]}",
                        config_name(l));
    docker_manifest(l, entry);
    g_autofree char *path = write_tar(f, l);
    assert_load_refused(path, NULL, SBX_ERROR_INVALID, "outside");
  }
}

static void test_docker_symlink_loop(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_free(docker_image(l, "hello", f->layer, "real.tar", "x:1"));
  layout_add_symlink(l, "a/layer.tar", "../b/layer.tar");
  layout_add_symlink(l, "b/layer.tar", "../a/layer.tar");
  g_autofree char *entry =
      g_strdup_printf("{\"Config\":\"%s\",\"Layers\":[\"a/layer.tar\"]}", config_name(l));
  docker_manifest(l, entry);
  g_autofree char *path = write_tar(f, l);
  assert_load_refused(path, NULL, SBX_ERROR_INVALID, "too many levels of links");
}

static void test_docker_layer_count_mismatch(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_free(docker_image(l, "hello", f->layer, "a/layer.tar", "x:1"));
  layout_add(l, "b/layer.tar", f->layer2);
  g_autofree char *entry = g_strdup_printf(
      "{\"Config\":\"%s\",\"Layers\":[\"a/layer.tar\",\"b/layer.tar\"]}", config_name(l));
  docker_manifest(l, entry);
  g_autofree char *path = write_tar(f, l);
  assert_load_refused(path, NULL, SBX_ERROR_INVALID, "2 layers but its config lists 1");
}

static void test_docker_wrong_arch(Fx *f, gconstpointer data)
{
  const char *other = g_strcmp0(sbx_image_host_arch(), "amd64") == 0 ? "arm64" : "amd64";
  g_autoptr(GPtrArray) l = layout_new();
  g_autoptr(GBytes) cfg = config_bytes(other, "hello", f->diff_id);
  g_autofree char *name = json_name(cfg);
  layout_add(l, name, cfg);
  layout_add(l, "a/layer.tar", f->layer);
  g_autofree char *e = g_strdup_printf("{\"Config\":\"%s\",\"Layers\":[\"a/layer.tar\"]}", name);
  docker_manifest(l, e);
  g_autofree char *path = write_tar(f, l);
  g_autofree char *want = g_strdup_printf("image is for %s", other);
  assert_load_refused(path, NULL, SBX_ERROR_INVALID, want);
}

static void test_not_an_image(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  layout_add_text(l, "README", "hello");
  g_autofree char *path = write_tar(f, l);
  assert_load_refused(path, NULL, SBX_ERROR_INVALID, "not an image archive");
}

/* ---- OCI layouts ---- */

static char *oci_manifest(const char *cfg_digest, gsize cfg_size, const char *layer_digest,
                          gsize layer_size)
{
  return g_strdup_printf(
      "{\"schemaVersion\":2,\"mediaType\":\"" MT_MANIFEST "\","
      "\"config\":{\"mediaType\":\"" MT_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},"
      "\"layers\":[{\"mediaType\":\"" MT_LAYER_GZ "\",\"digest\":\"%s\",\"size\":%zu}]}",
      cfg_digest, cfg_size, layer_digest, layer_size);
}

static char *oci_index(const char *manifest_digest, gsize manifest_size)
{
  return g_strdup_printf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_MANIFEST "\","
                         "\"digest\":\"%s\",\"size\":%zu,"
                         "\"annotations\":{\"org.opencontainers.image.ref.name\":\"img:1\"}}]}",
                         manifest_digest, manifest_size);
}

/* Store `b` under the name of `digest` (not necessarily its own). */
static void layout_add_as(GPtrArray *l, const char *digest, GBytes *b)
{
  g_autofree char *path = g_strconcat("blobs/sha256/", digest + 7, NULL);
  layout_add(l, path, b);
}

/* Other bytes of the same size. */
static GBytes *corrupted(GBytes *b)
{
  guint8 *copy = g_memdup2(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
  copy[g_bytes_get_size(b) - 1] ^= 0x20;
  return g_bytes_new_take(copy, g_bytes_get_size(b));
}

/* An OCI image with one gzip layer into l: the layer, config and manifest
 * blobs; returns the manifest's digest (its size in *man_size). `corrupt`
 * ("config" or "manifest") stores other bytes of the same size in place of
 * that blob; "layer-size" makes the layer descriptor's size wrong. */
static char *oci_add_image(Fx *f, GPtrArray *l, const char *corrupt, gsize *man_size)
{
  g_autoptr(GBytes) gz = th_gzip(f->layer);
  g_autofree char *layer_d = layout_add_blob(l, gz);
  g_autoptr(GBytes) cfg = config_bytes(sbx_image_host_arch(), "oci", f->diff_id);
  g_autofree char *cfg_d = th_digest(cfg);
  gsize layer_size = g_bytes_get_size(gz) + (g_strcmp0(corrupt, "layer-size") == 0 ? 1 : 0);
  g_autofree char *man = oci_manifest(cfg_d, g_bytes_get_size(cfg), layer_d, layer_size);
  g_autoptr(GBytes) man_b = g_bytes_new(man, strlen(man));
  g_autoptr(GBytes) cfg_stored =
      g_strcmp0(corrupt, "config") == 0 ? corrupted(cfg) : g_bytes_ref(cfg);
  g_autoptr(GBytes) man_stored =
      g_strcmp0(corrupt, "manifest") == 0 ? corrupted(man_b) : g_bytes_ref(man_b);
  char *man_d = th_digest(man_b);
  layout_add_as(l, cfg_d, cfg_stored);
  layout_add_as(l, man_d, man_stored);
  *man_size = g_bytes_get_size(man_b);
  return man_d;
}

/* An OCI layout of that image, its index.json naming it img:1. */
static GPtrArray *oci_layout(Fx *f, const char *corrupt)
{
  g_autoptr(GPtrArray) l = layout_new();
  layout_add_text(l, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
  gsize man_size;
  g_autofree char *man_d = oci_add_image(f, l, corrupt, &man_size);
  g_autofree char *index = oci_index(man_d, man_size);
  layout_add_text(l, "index.json", index);
  return g_steal_pointer(&l);
}

/* A registry's multi-platform image as registry/layout.c shows it:
 * index.json lists an index, whose one manifest carries `annotations` (a
 * JSON object: whatever the registry's index says). */
static GPtrArray *oci_layout_nested(Fx *f, const char *annotations)
{
  g_autoptr(GPtrArray) l = layout_new();
  gsize man_size;
  g_autofree char *man_d = oci_add_image(f, l, NULL, &man_size);
  g_autofree char *inner = g_strdup_printf(
      "{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":[{\"mediaType\":"
      "\"" MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":%s}]}",
      man_d, man_size, annotations);
  g_autoptr(GBytes) inner_b = g_bytes_new(inner, strlen(inner));
  g_autofree char *inner_d = layout_add_blob(l, inner_b);
  g_autofree char *index = g_strdup_printf(
      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_INDEX "\",\"digest\":"
      "\"%s\",\"size\":%zu}]}",
      inner_d, g_bytes_get_size(inner_b));
  layout_add_text(l, "index.json", index);
  return g_steal_pointer(&l);
}

static void make_symlink(const char *target, const char *path)
{
  g_autofree char *parent = g_path_get_dirname(path);
  g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
  g_assert_cmpint(symlink(target, path), ==, 0);
}

static char *write_dir(Fx *f, GPtrArray *l)
{
  g_autofree char *dir = g_build_filename(f->base, "layout", NULL);
  for (guint i = 0; i < l->len; i++) {
    Member *m = l->pdata[i];
    g_autofree char *path = g_build_filename(dir, m->name, NULL);
    if (m->data)
      th_write_file(dir, m->name, g_bytes_get_data(m->data, NULL), g_bytes_get_size(m->data));
    else
      make_symlink(m->link, path);
  }
  return g_steal_pointer(&dir);
}

static void assert_oci_image(Fx *f, const char *path, const char *format)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxSource) src = NULL;
  g_autoptr(SbxImage) img = load(path, NULL, &src, &err);
  g_assert_no_error(err);
  g_assert_cmpstr(img->format, ==, format);
  assert_strv(img->names, (const char *[]){"img:1", NULL});
  assert_strv(img->config->cmd, (const char *[]){"oci", NULL});
  g_assert_cmpuint(img->layers->len, ==, 1);
  SbxLayerRef *ref = img->layers->pdata[0];
  g_assert_true(g_str_has_prefix(ref->member, "blobs/sha256/"));
  g_assert_cmpstr(ref->member + strlen("blobs/sha256/"), ==, ref->blob_digest + 7);
  g_assert_cmpstr(ref->diff_id, ==, f->diff_id);
  g_assert_cmpstr(ref->media_type, ==, MT_LAYER_GZ);
  g_assert_cmpint(ref->size, ==, sbx_source_size(src, ref->member, NULL));
  assert_layer_readable(src, ref);
}

static void test_oci_dir(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = oci_layout(f, NULL);
  g_autofree char *dir = write_dir(f, l);
  assert_oci_image(f, dir, "oci-dir");
}

static void test_oci_archive(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = oci_layout(f, NULL);
  g_autofree char *path = write_tar(f, l);
  assert_oci_image(f, path, "oci-archive");
}

static void test_oci_blob_mismatch(Fx *f, gconstpointer data)
{
  const char *kinds[] = {"config", "manifest"};
  for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
    g_autoptr(GPtrArray) l = oci_layout(f, kinds[i]);
    g_autofree char *dir = write_dir(f, l);
    assert_load_refused(dir, NULL, SBX_ERROR_INVALID, "digest mismatch");
    th_tmpdir_remove(dir);
    g_autofree char *tar = write_tar(f, l);
    assert_load_refused(tar, NULL, SBX_ERROR_INVALID, "digest mismatch");
  }
}

static void test_oci_layer_size_mismatch(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = oci_layout(f, "layer-size");
  g_autofree char *dir = write_dir(f, l);
  assert_load_refused(dir, NULL, SBX_ERROR_INVALID, "its descriptor says");
}

/* In a layout directory, blobs may not be symlinks out of it. */
static void test_oci_dir_symlink_escape(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = oci_layout(f, NULL);
  g_autoptr(GBytes) gz = th_gzip(f->layer);
  g_autofree char *hex = th_hex(gz);
  th_write_file(f->base, hex, g_bytes_get_data(gz, NULL), g_bytes_get_size(gz));
  for (guint i = 0; i < l->len; i++) {
    Member *m = l->pdata[i];
    if (g_str_has_suffix(m->name, hex)) {
      g_clear_pointer(&m->data, g_bytes_unref);
      m->link = g_build_filename(f->base, hex, NULL); /* same bytes, outside */
    }
  }
  g_autofree char *dir = write_dir(f, l);
  assert_load_refused(dir, NULL, SBX_ERROR_INVALID, "outside the layout");
}

/* docker load refuses a RepoTag pinned by a digest: so does sbx (the name
 * would vouch for a manifest the archive cannot show). */
static void test_docker_pinned_name_refused(Fx *f, gconstpointer data)
{
  g_autoptr(GPtrArray) l = layout_new();
  g_autofree char *e =
      docker_image(l, "hello", f->layer, "a/layer.tar",
                   "alpine@sha256:"
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  docker_manifest(l, e);
  g_autofree char *path = write_tar(f, l);
  assert_load_refused(path, NULL, SBX_ERROR_INVALID, "pinned by a digest");
  assert_load_refused(path, "alpine", SBX_ERROR_INVALID, "pinned by a digest");
}

/* The same for an OCI archive's names, in either annotation. */
static void test_oci_pinned_name_refused(Fx *f, gconstpointer data)
{
  const char *keys[] = {"org.opencontainers.image.ref.name", "io.containerd.image.name"};
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
    g_autofree char *ann = g_strdup_printf("{\"%s\":\"docker.io/library/alpine@" D1 "\"}", keys[i]);
    g_autoptr(GPtrArray) l = oci_layout_nested(f, ann);
    layout_add_text(l, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    g_autofree char *dir = write_dir(f, l);
    assert_load_refused(dir, NULL, SBX_ERROR_INVALID, "pinned by a digest");
    th_tmpdir_remove(dir);
  }
}

/* A registry's image is named by the reference pulled: whatever an index
 * inside says (another image's name, a pinned one, a bare tag) is not read. */
static void test_oci_named_ignores_annotations(Fx *f, gconstpointer data)
{
  const char *anns[] = {
      "{\"io.containerd.image.name\":\"docker.io/library/alpine:latest\"}",
      "{\"io.containerd.image.name\":\"docker.io/library/alpine@" D1 "\"}",
      "{\"org.opencontainers.image.ref.name\":\"latest\"}",
      "{\"org.opencontainers.image.ref.name\":\"alpine:3\"}",
  };
  const char *pulled = "127.0.0.1:5000/evil/app:latest";
  for (guint i = 0; i < G_N_ELEMENTS(anns); i++) {
    g_autoptr(GPtrArray) l = oci_layout_nested(f, anns[i]);
    g_autofree char *dir = write_dir(f, l);
    g_autoptr(GError) err = NULL;
    g_autoptr(SbxSource) src = sbx_source_open(dir, SBX_DEFAULT_MAX_LAYER_SIZE, &err);
    g_assert_no_error(err);
    g_autoptr(SbxImage) img = sbx_image_load_oci_named(src, pulled, &err);
    g_assert_no_error(err);
    assert_strv(img->names, (const char *[]){pulled, NULL});
    assert_strv(img->config->cmd, (const char *[]){"oci", NULL});
    /* Loaded as an archive, the layout's own name is the child's. */
    if (i == 0) {
      g_autoptr(SbxImage) own = sbx_image_load_oci(src, NULL, &err);
      g_assert_no_error(err);
      assert_strv(own->names, (const char *[]){"docker.io/library/alpine:latest", NULL});
    }
    th_tmpdir_remove(dir);
  }
}

static void add_fx(const char *path, void (*fn)(Fx *, gconstpointer))
{
  g_test_add(path, Fx, NULL, fx_setup, fn, fx_teardown);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/config/parse/realistic", test_parse_realistic);
  g_test_add_func("/config/parse/null-cmd", test_parse_null_cmd);
  g_test_add_func("/config/parse/missing-rootfs", test_parse_missing_rootfs);
  g_test_add_func("/config/parse/bad-diff-id", test_parse_bad_diff_id);
  g_test_add_func("/config/record/bad-diff-id", test_record_bad_diff_id);
  g_test_add_func("/config/parse/env-without-equals", test_parse_env_without_equals);
  g_test_add_func("/config/parse/os", test_parse_os);
  g_test_add_func("/config/parse/wrong-types", test_parse_wrong_types);
  g_test_add_func("/config/digest-from-path", test_digest_from_path);
  add_fx("/image/docker/legacy", test_docker_legacy);
  add_fx("/image/docker/two-layers", test_docker_two_layers);
  add_fx("/image/docker/evil-layer-path", test_docker_evil_layer_path);
  add_fx("/image/docker/config-name-mismatch", test_docker_config_name_mismatch);
  add_fx("/image/docker/multi-image", test_docker_multi_image);
  add_fx("/image/docker/select-registry-port", test_docker_select_registry_port);
  add_fx("/image/docker/podman-symlink", test_docker_podman_symlink);
  add_fx("/image/docker/symlink-escape", test_docker_symlink_escape);
  add_fx("/image/docker/symlink-loop", test_docker_symlink_loop);
  add_fx("/image/docker/layer-count-mismatch", test_docker_layer_count_mismatch);
  add_fx("/image/docker/wrong-arch", test_docker_wrong_arch);
  add_fx("/image/not-an-image", test_not_an_image);
  add_fx("/image/oci/dir", test_oci_dir);
  add_fx("/image/oci/archive", test_oci_archive);
  add_fx("/image/oci/blob-mismatch", test_oci_blob_mismatch);
  add_fx("/image/oci/layer-size-mismatch", test_oci_layer_size_mismatch);
  add_fx("/image/oci/dir-symlink-escape", test_oci_dir_symlink_escape);
  add_fx("/image/docker/pinned-name-refused", test_docker_pinned_name_refused);
  add_fx("/image/oci/pinned-name-refused", test_oci_pinned_name_refused);
  add_fx("/image/oci/named-ignores-annotations", test_oci_named_ignores_annotations);
  return g_test_run();
}
