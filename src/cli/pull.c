/* sbx pull [OPTIONS] REFERENCE; sbx login [OPTIONS] REGISTRY; sbx logout REGISTRY
 * (and the internal `pull` behind `sbx run REFERENCE`). In sbx-store: the
 * program that links libcurl. The CLI finds the files (auth, certs.d) in the
 * environment; the library reads no environment variable. */
#include "sbx/cli.h"
#include "sbx/regconf.h"
#include "sbx/registry.h"
#include "sbx/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

typedef struct {
  gboolean quiet, internal, password_stdin;
  gboolean tls_verify_set, tls_verify;
  char *username;
  char *policy; /* sbx run --pull=missing: an image already in the store is used */
} PullOptions;

static PullOptions opts = {.tls_verify = TRUE};

static gboolean on_tls_verify(const char *name, const char *value, gpointer data, GError **err)
{
  opts.tls_verify_set = TRUE;
  if (!value || g_ascii_strcasecmp(value, "true") == 0)
    opts.tls_verify = TRUE;
  else if (g_ascii_strcasecmp(value, "false") == 0)
    opts.tls_verify = FALSE;
  else
    return sbx_fail(err, SBX_ERROR_USAGE, "--tls-verify: '%s' is not true or false", value);
  return TRUE;
}

#define TLS_VERIFY_ENTRY                                                                           \
  {                                                                                                \
    "tls-verify", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK, on_tls_verify,             \
        "Verify the registry's certificate (default true; false also allows plain http)", "BOOL"   \
  }

static GOptionEntry pull_entries[] = {
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &opts.quiet, "No progress output", NULL},
    TLS_VERIFY_ENTRY,
    {"internal", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opts.internal, NULL, NULL},
    {"policy", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opts.policy, NULL, NULL},
    {NULL}};

static GOptionEntry login_entries[] = {
    {"username", 'u', 0, G_OPTION_ARG_STRING, &opts.username, "User name", "USER"},
    {"password-stdin", 0, 0, G_OPTION_ARG_NONE, &opts.password_stdin,
     "Read the password from standard input", NULL},
    TLS_VERIFY_ENTRY,
    {NULL}};

static void clear_options(void)
{
  g_free(opts.username);
  g_free(opts.policy);
  memset(&opts, 0, sizeof opts);
  opts.tls_verify = TRUE;
}

/* podman's places: $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json. */
static char *auth_file_to_write(void)
{
  const char *f = g_getenv("REGISTRY_AUTH_FILE");
  if (f && *f)
    return g_strdup(f);
  const char *run = g_getenv("XDG_RUNTIME_DIR");
  if (run && *run)
    return g_build_filename(run, "containers", "auth.json", NULL);
  return g_build_filename(g_get_home_dir(), ".config", "containers", "auth.json", NULL);
}

static char **auth_files_to_read(void)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  g_autofree char *primary = auth_file_to_write();
  g_strv_builder_add(b, primary);
  g_autofree char *legacy =
      g_build_filename(g_get_home_dir(), ".config", "containers", "auth.json", NULL);
  if (strcmp(legacy, primary) != 0)
    g_strv_builder_add(b, legacy);
  const char *dc = g_getenv("DOCKER_CONFIG");
  g_autofree char *docker =
      dc && *dc ? g_build_filename(dc, "config.json", NULL)
                : g_build_filename(g_get_home_dir(), ".docker", "config.json", NULL);
  g_strv_builder_add(b, docker);
  return g_strv_builder_end(b);
}

static char **cert_dirs(void)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  g_autofree char *user =
      g_build_filename(g_get_home_dir(), ".config", "containers", "certs.d", NULL);
  g_strv_builder_add(b, user);
  g_strv_builder_add(b, "/etc/containers/certs.d");
  g_strv_builder_add(b, "/etc/docker/certs.d");
  return g_strv_builder_end(b);
}

/* podman's registries.conf and registries.conf.d drop-ins. */
static SbxRegConf *load_regconf(GError **err)
{
  const char *xdg = g_getenv("XDG_CONFIG_HOME");
  g_autofree char *dir = xdg && *xdg
                             ? g_build_filename(xdg, "containers", NULL)
                             : g_build_filename(g_get_home_dir(), ".config", "containers", NULL);
  g_autofree char *user_file = g_build_filename(dir, "registries.conf", NULL);
  g_autofree char *user_dir = g_build_filename(dir, "registries.conf.d", NULL);
  SbxRegConfPaths paths = {user_file, "/etc/containers/registries.conf", user_dir,
                           "/etc/containers/registries.conf.d"};
  return sbx_regconf_load(&paths, err);
}

static int pull_parsed(int argc, char **argv, GError **err)
{
  if (argc != 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "pull: give one image reference (see 'sbx pull --help')"),
           -1;
  if (sbx_global.platform && !sbx_image_set_platform(sbx_global.platform, err))
    return -1;
  g_autoptr(SbxImageRef) ref = sbx_image_ref_parse(argv[1], err);
  if (!ref)
    return -1;
  g_autoptr(SbxRegConf) regconf = load_regconf(err);
  if (!regconf)
    return -1;
  g_autoptr(SbxStore) store = sbx_cli_open_store(err);
  if (!store)
    return -1;
  if (opts.internal && opts.policy && strcmp(opts.policy, "missing") == 0) {
    /* podman's local lookup: a short name in the store under any of its
     * candidates is used as it is (before the ambiguity check of a pull). */
    g_auto(GStrv) local = sbx_regconf_local_candidates(regconf, argv[1]);
    for (char **c = local; *c; c++) {
      g_autoptr(GError) missing = NULL;
      g_autofree char *id = sbx_store_resolve(store, *c, &missing);
      if (!id && !g_error_matches(missing, SBX_ERROR, SBX_ERROR_NOT_FOUND)) {
        g_propagate_error(err, g_steal_pointer(&missing));
        return -1; /* a store that cannot be read: not "not there" */
      }
      if (id) {
        sbx_info("%s: %s is in the store", argv[1], *c);
        printf("%s\n", id);
        return 0;
      }
    }
  }
  g_auto(GStrv) candidates = sbx_regconf_candidates(regconf, argv[1], err);
  if (!candidates)
    return -1;
  g_auto(GStrv) certs = cert_dirs();
  g_auto(GStrv) auths = auth_files_to_read();
  SbxPullRequest req = {
      .reference = argv[1],
      .registry = {.tls_verify = opts.tls_verify,
                   .tls_verify_set = opts.tls_verify_set,
                   .cert_dirs = certs,
                   .auth_files = auths,
                   .request_timeout_ms = sbx_cli_settings()->registry_timeout_ms,
                   .blob_stall_s = sbx_cli_settings()->registry_stall_s,
                   .blob_deadline_s = sbx_cli_settings()->registry_blob_s},
      .quiet = opts.quiet,
      .candidates = candidates,
      .regconf = regconf,
  };
  g_autofree char *id = sbx_store_pull_isolated(store, &req, err);
  if (!id)
    return -1;
  if (opts.internal || opts.quiet) {
    printf("%s\n", id);
    return 0;
  }
  /* The candidate that was pulled: the one now naming the image. */
  g_autoptr(SbxImageRef) pulled = NULL;
  for (char **c = candidates; *c && !pulled; c++) {
    g_autofree char *got = sbx_store_resolve(store, *c, NULL);
    if (got && strcmp(got, id) == 0)
      pulled = sbx_image_ref_parse(*c, NULL);
  }
  g_autofree char *name = sbx_image_ref_name(pulled ? pulled : ref);
  printf("Pulled image: %s\nImage ID: sha256:%s\n", name, id);
  return 0;
}

/* "https://quay.io/" -> "quay.io": login takes a registry, not an image. */
static char *registry_arg(const char *arg, GError **err)
{
  const char *a = arg;
  if (g_str_has_prefix(a, "https://"))
    a += 8;
  else if (g_str_has_prefix(a, "http://"))
    a += 7;
  g_autofree char *host = g_strndup(a, strcspn(a, "/"));
  g_autofree char *probe = g_strconcat(host, "/x", NULL);
  g_autoptr(SbxImageRef) ref = *host ? sbx_image_ref_parse(probe, NULL) : NULL;
  /* (docker.io/x reads as docker.io/library/x) */
  if (!ref || (strcmp(ref->path, "x") != 0 && strcmp(ref->path, "library/x") != 0)) {
    g_autofree char *shown = g_utf8_make_valid(arg, MIN(strlen(arg), 200));
    sbx_fail(err, SBX_ERROR_USAGE, "'%s' is not a registry (HOST[:PORT])", shown);
    return NULL;
  }
  return g_strdup(ref->domain);
}

/* A line from the terminal, echo off for a password. */
static char *prompt(const char *what, gboolean secret)
{
  if (!isatty(STDIN_FILENO))
    return NULL;
  fprintf(stderr, "%s: ", what);
  fflush(stderr);
  struct termios old, quiet;
  gboolean restore = secret && tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  char buf[4096];
  char *line = fgets(buf, sizeof buf, stdin);
  if (restore) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
  }
  char *out = line ? g_strdup(g_strchomp(line)) : NULL;
  explicit_bzero(buf, sizeof buf);
  return out;
}

static char *read_password_stdin(GError **err)
{
  g_autoptr(GString) b = g_string_new(NULL);
  char buf[4096];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      sbx_fail_errno(err, "read the password from standard input");
      return NULL;
    }
    if (n == 0)
      break;
    g_string_append_len(b, buf, n);
    if (b->len > 64 * 1024) {
      sbx_fail(err, SBX_ERROR_USAGE, "login: the password on standard input is too long");
      return NULL;
    }
  }
  explicit_bzero(buf, sizeof buf);
  while (b->len > 0 && (b->str[b->len - 1] == '\n' || b->str[b->len - 1] == '\r'))
    g_string_truncate(b, b->len - 1);
  return g_string_free(g_steal_pointer(&b), FALSE);
}

static int login_parsed(int argc, char **argv, GError **err)
{
  if (argc != 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "login: give one registry (see 'sbx login --help')"), -1;
  g_autofree char *domain = registry_arg(argv[1], err);
  if (!domain)
    return -1;
  g_autofree char *user = opts.username ? g_strdup(opts.username) : prompt("Username", FALSE);
  if (!user || !*user)
    return sbx_fail(err, SBX_ERROR_USAGE, "login: no user name (give -u USER)"), -1;
  g_autofree char *password =
      opts.password_stdin ? read_password_stdin(err) : prompt("Password", TRUE);
  if (!password) {
    if (err && !*err)
      sbx_fail(err, SBX_ERROR_USAGE, "login: no password (give it with --password-stdin)");
    return -1;
  }
  SbxImageRef ref = {.domain = domain, .path = (char *)""};
  g_auto(GStrv) certs = cert_dirs();
  SbxRegistryOptions ro = {.tls_verify = opts.tls_verify,
                           .cert_dirs = certs,
                           .request_timeout_ms = sbx_cli_settings()->registry_timeout_ms};
  g_autoptr(SbxRegistry) reg = sbx_registry_new(&ref, &ro, err);
  if (!reg)
    return -1;
  sbx_registry_set_credentials(reg, user, password);
  gboolean ok = sbx_registry_check_login(reg, err);
  g_autofree char *file = auth_file_to_write();
  ok = ok && sbx_auth_store(file, domain, user, password, err);
  explicit_bzero(password, strlen(password));
  if (!ok)
    return -1;
  printf("Login Succeeded!\n");
  return 0;
}

static int logout_parsed(int argc, char **argv, GError **err)
{
  if (argc != 2)
    return sbx_fail(err, SBX_ERROR_USAGE, "logout: give one registry (see 'sbx logout --help')"),
           -1;
  g_autofree char *domain = registry_arg(argv[1], err);
  g_autofree char *file = domain ? auth_file_to_write() : NULL;
  if (!domain || !sbx_auth_remove(file, domain, err))
    return -1;
  printf("Removed login credentials for %s\n", domain);
  return 0;
}

int sbx_cmd_pull(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "REFERENCE",
      "Pull an image from a registry into the store (REFERENCE: busybox, "
      "quay.io/org/app:tag, HOST:PORT/app@sha256:...).",
      pull_entries,
      FALSE,
      pull_parsed,
      clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}

int sbx_cmd_login(int argc, char **argv)
{
  static const SbxCliCommand cmd = {
      "REGISTRY",
      "Log in to a registry: check the credentials and keep them in "
      "$XDG_RUNTIME_DIR/containers/auth.json (or $REGISTRY_AUTH_FILE).",
      login_entries,
      FALSE,
      login_parsed,
      clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}

int sbx_cmd_logout(int argc, char **argv)
{
  static const SbxCliCommand cmd = {"REGISTRY",    "Forget the credentials kept for a registry.",
                                    NULL,          FALSE,
                                    logout_parsed, clear_options};
  return sbx_cli_command(&cmd, argc, argv);
}
