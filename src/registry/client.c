/* The Registry HTTP API v2 client (distribution spec), on libcurl.
 *
 * Every transfer runs on its own curl multi handle. A layer's blob is
 * fetched by a thread of its own into a bounded queue that the unpacker
 * reads (sbx_stream_read): the download runs ahead of the unpack, never to
 * a file, and a full queue stops the transfer (backpressure). DNS answers
 * and TLS sessions are shared between the layers' transfers (CURLSH).
 *
 * Redirects are followed here, not by curl: the Authorization header we
 * add is ours, and curl would forward a custom header to any host. It goes
 * only to the origin it belongs to (the registry, or the token realm). */
#include "sbx-config.h"
#include "sbx/json.h"
#include "sbx/registry.h"
#include "sbx/util.h"

#include <curl/curl.h>
#include <json-glib/json-glib.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define MAX_REDIRECTS     5
#define MAX_AUTH_TRIES    2
#define MAX_RETRY_WAITS   3
#define MAX_RETRY_AFTER_S 30
#define MAX_RESUMES       5
#define MAX_HEADER_BYTES  (256u << 10)
#define MAX_ERROR_BODY    (1u << 20)
#define HIGH_WATER        (8u << 20) /* bytes in buf before a transfer pauses (not a blob: RING_BYTES) */

struct SbxRegistry {
  char *domain, *repo;
  char *base; /* "https://host[:port]" (http:// only when verification is off and TLS failed) */
  gboolean tls_verify;
  char **cert_dirs, **auth_files;
  guint64 max_blob_size;
  long request_timeout_ms, blob_stall_s;
  guint blob_deadline_s; /* 0: by the blob's size */
  CURLSH *share;
  GMutex share_locks[CURL_LOCK_DATA_LAST];
  GMutex lock; /* the fields below */
  gboolean creds_loaded;
  char *user, *password;
  char *auth; /* "Bearer ..." or "Basic ...": sent to `base` only */
  guint auth_generation;
  GMutex tls_lock;
  GHashTable *tls; /* "host:port" -> TlsFiles*, under tls_lock (a token fetch holds `lock`) */
  guint blob_requests;
  GPtrArray *fallbacks; /* SbxRegistry*: where else a layer blob can come from */
};

typedef struct {
  GBytes *ca; /* system CAs + certs.d CAs, NULL for curl's default */
  char *cert, *key;
} TlsFiles;

static void tls_files_free(gpointer p)
{
  TlsFiles *t = p;
  if (t->ca)
    g_bytes_unref(t->ca);
  g_free(t->cert);
  g_free(t->key);
  g_free(t);
}

/* --- URLs ----------------------------------------------------------------- */

typedef struct {
  char *scheme, *host, *port;
} Origin;

static void origin_clear(Origin *o)
{
  curl_free(o->scheme);
  curl_free(o->host);
  curl_free(o->port);
}

static gboolean origin_of(const char *url, Origin *o)
{
  memset(o, 0, sizeof *o);
  CURLU *u = curl_url();
  gboolean ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_SCHEME, &o->scheme, 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_HOST, &o->host, 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) == CURLUE_OK;
  curl_url_cleanup(u);
  if (ok)
    for (char *p = o->host; *p; p++)
      *p = g_ascii_tolower(*p);
  return ok;
}

static gboolean same_origin(const char *a, const char *b)
{
  Origin x, y;
  gboolean ok = origin_of(a, &x) && origin_of(b, &y) && strcmp(x.scheme, y.scheme) == 0 &&
                strcmp(x.host, y.host) == 0 && strcmp(x.port, y.port) == 0;
  origin_clear(&x);
  origin_clear(&y);
  return ok;
}

/* A server-supplied URL is shown this long at most (an ellipsis after): the
 * reason beside it must survive the 4 KiB error message from the helper. */
#define SHOWN_URL_MAX 200

static char *shorten(char *text)
{
  if (strlen(text) <= SHOWN_URL_MAX)
    return text;
  const char *end = text + SHOWN_URL_MAX;
  while (end > text && (*end & 0xc0) == 0x80) /* not inside a UTF-8 sequence */
    end--;
  g_autofree char *head = g_utf8_make_valid(text, end - text);
  g_free(text);
  return g_strconcat(head, "...", NULL);
}

/* A URL for logs and errors: no query (pre-signed URLs carry signatures in
 * it), no user:password, at most SHOWN_URL_MAX characters. */
static char *redact(const char *url)
{
  CURLU *u = curl_url();
  char *out = NULL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_get(u, CURLUPART_URL, &out, 0);
  }
  curl_url_cleanup(u);
  char *r = g_strdup(out ? out : "(bad url)");
  curl_free(out);
  return shorten(r);
}

/* --- TLS: system CAs plus certs.d (podman's layout) ------------------------- */

static GBytes *read_small_file(int dirfd, const char *name, gsize max)
{
  sbx_autofd fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  return fd < 0 ? NULL : sbx_read_fd_bounded(fd, max, name, NULL);
}

static void add_cert_dir(TlsFiles *t, GByteArray *ca, const char *dir)
{
  sbx_autofd dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (g_str_has_suffix(de->d_name, ".crt")) {
      g_autoptr(GBytes) b = read_small_file(dfd, de->d_name, 1u << 20);
      if (b) {
        g_byte_array_append(ca, g_bytes_get_data(b, NULL), (guint)g_bytes_get_size(b));
        g_byte_array_append(ca, (const guint8 *)"\n", 1);
        sbx_debug("tls: CA %s/%s", dir, de->d_name);
      }
    } else if (g_str_has_suffix(de->d_name, ".cert") && !t->cert) {
      g_autofree char *stem = g_strndup(de->d_name, strlen(de->d_name) - 5);
      g_autofree char *key = g_strconcat(stem, ".key", NULL);
      if (faccessat(dfd, key, R_OK, 0) == 0) {
        t->cert = g_build_filename(dir, de->d_name, NULL);
        t->key = g_build_filename(dir, key, NULL);
      }
    }
  }
  closedir(d);
}

static const TlsFiles *tls_files_for(SbxRegistry *r, const Origin *o)
{
  g_autofree char *key = g_strdup_printf("%s:%s", o->host, o->port);
  g_mutex_lock(&r->tls_lock);
  TlsFiles *t = g_hash_table_lookup(r->tls, key);
  if (!t) {
    t = g_new0(TlsFiles, 1);
    g_autoptr(GByteArray) ca = g_byte_array_new();
    gboolean default_port = strcmp(o->port, "443") == 0;
    for (char **d = r->cert_dirs; d && *d; d++) {
      g_autofree char *with_port = g_build_filename(*d, key, NULL);
      add_cert_dir(t, ca, with_port);
      if (default_port) {
        g_autofree char *bare = g_build_filename(*d, o->host, NULL);
        add_cert_dir(t, ca, bare);
      }
    }
    if (ca->len > 0) {
      /* CAINFO_BLOB replaces curl's bundle: keep the system's CAs too. */
      const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
      const char *sys = v->cainfo ? v->cainfo : "/etc/ssl/certs/ca-certificates.crt";
      g_autoptr(GBytes) b = read_small_file(AT_FDCWD, sys, 16u << 20);
      if (b)
        g_byte_array_append(ca, g_bytes_get_data(b, NULL), (guint)g_bytes_get_size(b));
      t->ca = g_byte_array_free_to_bytes(g_steal_pointer(&ca));
    }
    g_hash_table_insert(r->tls, g_strdup(key), t);
  }
  g_mutex_unlock(&r->tls_lock);
  return t;
}

/* --- one transfer ------------------------------------------------------------ */

typedef struct {
  SbxRegistry *reg;
  CURLM *multi;
  CURL *easy;
  struct curl_slist *headers;
  char errbuf[CURL_ERROR_SIZE];
  long status;
  gboolean headers_done, finished, paused, too_big;
  CURLcode result;
  gsize header_bytes;
  char *content_type, *retry_after, *content_range;
  GPtrArray *challenges; /* WWW-Authenticate values */
  GByteArray *buf;
  gsize pos;
  guint64 skip;     /* bytes of a 200 answer to a Range request already delivered */
  guint64 received; /* body bytes delivered (after skip) */
  guint64 max;      /* at most this many */
  guint64 discarded;
  /* A layer blob's body goes to its stream's ring instead of buf: FALSE
   * when there is no room for len bytes (then the transfer pauses). Only
   * once the answer was checked (sink_open): a wrong 206 never gets in. */
  gboolean (*sink)(gpointer data, const guint8 *b, gsize len);
  gpointer sink_data;
  gboolean sink_open;
} Xfer;

/* A credential's copy: its bytes are wiped before the heap gets them back. */
typedef char SecretStr;
static void secret_str_free(SecretStr *s)
{
  if (s) {
    explicit_bzero(s, strlen(s));
    g_free(s);
  }
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SecretStr, secret_str_free)

/* curl copied the header lines; the Authorization one is wiped too. */
static void header_list_free(struct curl_slist *headers)
{
  for (struct curl_slist *l = headers; l; l = l->next)
    if (g_ascii_strncasecmp(l->data, "Authorization:", 14) == 0)
      explicit_bzero(l->data, strlen(l->data));
  curl_slist_free_all(headers);
}

static void xfer_free(Xfer *x)
{
  if (!x)
    return;
  if (x->multi && x->easy)
    curl_multi_remove_handle(x->multi, x->easy);
  if (x->easy)
    curl_easy_cleanup(x->easy);
  if (x->multi)
    curl_multi_cleanup(x->multi);
  header_list_free(x->headers);
  g_free(x->content_type);
  g_free(x->retry_after);
  g_free(x->content_range);
  g_ptr_array_unref(x->challenges);
  g_byte_array_unref(x->buf);
  g_free(x);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Xfer, xfer_free)

static size_t header_cb(char *b, size_t size, size_t n, void *p)
{
  Xfer *x = p;
  size_t len = size * n;
  x->header_bytes += len;
  if (x->header_bytes > MAX_HEADER_BYTES)
    return 0;
  if (len >= 5 && strncmp(b, "HTTP/", 5) == 0) {
    /* A new response (after a proxy's CONNECT or a 100): forget the last. */
    g_clear_pointer(&x->content_type, g_free);
    g_clear_pointer(&x->retry_after, g_free);
    g_clear_pointer(&x->content_range, g_free);
    g_ptr_array_set_size(x->challenges, 0);
    return len;
  }
  if (len <= 2 && (b[0] == '\r' || b[0] == '\n')) {
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200) {
      x->status = code;
      x->headers_done = TRUE;
    }
    return len;
  }
  const char *colon = memchr(b, ':', len);
  if (!colon)
    return len;
  g_autofree char *name = g_ascii_strdown(b, colon - b);
  char *value = g_strstrip(g_strndup(colon + 1, len - (gsize)(colon + 1 - b)));
  char **slot = strcmp(name, "content-type") == 0    ? &x->content_type
                : strcmp(name, "retry-after") == 0   ? &x->retry_after
                : strcmp(name, "content-range") == 0 ? &x->content_range
                                                     : NULL;
  if (slot) {
    g_free(*slot);
    *slot = value;
  } else if (strcmp(name, "www-authenticate") == 0 && x->challenges->len < 8) {
    g_ptr_array_add(x->challenges, value);
  } else {
    g_free(value);
  }
  return len;
}

static size_t write_cb(char *b, size_t size, size_t n, void *p)
{
  Xfer *x = p;
  size_t len = size * n;
  if (x->status < 200 || x->status >= 300) {
    x->discarded += len; /* an error page, a redirect's body */
    return x->discarded > MAX_ERROR_BODY ? 0 : len;
  }
  if (x->buf->len - x->pos >= HIGH_WATER || (x->sink && !x->sink_open)) {
    x->paused = TRUE; /* the reader is behind: curl keeps this block for later */
    return CURL_WRITEFUNC_PAUSE;
  }
  size_t off = 0;
  if (x->skip > 0 && x->status == 200) /* a Range ignored: drop what we have */
    off = (size_t)MIN((guint64)len, x->skip);
  if (x->received + (len - off) > x->max) {
    x->too_big = TRUE;
    return 0;
  }
  if (x->sink && !x->sink(x->sink_data, (const guint8 *)b + off, len - off)) {
    x->paused = TRUE; /* nothing taken: curl offers the same block again */
    return CURL_WRITEFUNC_PAUSE;
  }
  if (!x->sink)
    g_byte_array_append(x->buf, (const guint8 *)b + off, (guint)(len - off));
  x->skip -= off;
  x->received += len - off;
  return len;
}

typedef struct {
  const char *accept;
  guint64 range_from;
  guint64 max;
  gboolean registry;       /* the registry's API: its credentials; 401 -> authenticate */
  const char *auth;        /* else: this Authorization value ... */
  const char *auth_origin; /* ... for this origin only (the token realm) */
  gboolean layer;          /* a layer blob: see xfer_start */
} Req;

static int share_lock_index(curl_lock_data d)
{
  return d >= 0 && d < CURL_LOCK_DATA_LAST ? (int)d : 0;
}

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *p)
{
  SbxRegistry *r = p;
  g_mutex_lock(&r->share_locks[share_lock_index(d)]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *p)
{
  SbxRegistry *r = p;
  g_mutex_unlock(&r->share_locks[share_lock_index(d)]);
}

static Xfer *xfer_start(SbxRegistry *r, const char *url, const Req *q, const char *auth,
                        GError **err)
{
  Origin o;
  if (!origin_of(url, &o)) {
    origin_clear(&o);
    g_autofree char *shown = g_utf8_make_valid(url, MIN(strlen(url), 200));
    sbx_fail(err, SBX_ERROR_INVALID, "registry: bad URL %s", shown);
    return NULL;
  }
  const TlsFiles *tls = tls_files_for(r, &o);
  origin_clear(&o);
  g_autoptr(Xfer) x = g_new0(Xfer, 1);
  x->reg = r;
  x->challenges = g_ptr_array_new_with_free_func(g_free);
  x->buf = g_byte_array_new();
  x->max = q->max;
  x->multi = curl_multi_init();
  x->easy = curl_easy_init();
  if (!x->multi || !x->easy) {
    sbx_fail(err, SBX_ERROR_FAILED, "registry: curl: out of memory");
    return NULL;
  }
  CURL *h = x->easy;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_SHARE, r->share);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* redirects are ours: see the top */
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "sbx/" SBX_VERSION);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
  /* Large reads: fewer trips through the write callback per layer. */
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
  /* A layer has a connection of its own, so HTTP/2 would multiplex
   * nothing; over HTTP/1.1 the bytes come without 16 KiB framing and window
   * updates (bench/pull.sh: a third less CPU in docker-registry). */
  if (q->layer)
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  if (q->layer) {
    /* As long as it keeps coming (curl does not count the time a full
     * ring keeps it paused); a floor, so that a trickle ends too. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)SBX_REGISTRY_BLOB_MIN_RATE);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, r->blob_stall_s);
  } else {
    /* Everything else is small (SBX_REGISTRY_MAX_JSON, or an error page): a
     * deadline for the whole answer, not a rate a trickle can keep up. */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->request_timeout_ms);
  }
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, r->tls_verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, r->tls_verify ? 2L : 0L);
  if (tls->ca) {
    struct curl_blob blob = {.data = (void *)g_bytes_get_data(tls->ca, NULL),
                             .len = g_bytes_get_size(tls->ca),
                             .flags = CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (tls->cert) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, tls->cert);
    curl_easy_setopt(h, CURLOPT_SSLKEY, tls->key);
  }
  if (q->accept) {
    g_autofree char *hdr = g_strconcat("Accept: ", q->accept, NULL);
    x->headers = curl_slist_append(x->headers, hdr);
  }
  if (auth) {
    g_autoptr(SecretStr) hdr = g_strconcat("Authorization: ", auth, NULL);
    x->headers = curl_slist_append(x->headers, hdr);
  }
  if (q->range_from > 0) {
    g_autofree char *hdr = g_strdup_printf("Range: bytes=%" G_GUINT64_FORMAT "-", q->range_from);
    x->headers = curl_slist_append(x->headers, hdr);
    x->skip = q->range_from; /* cleared when the answer is a 206 */
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
  curl_multi_add_handle(x->multi, h);
  return g_steal_pointer(&x);
}

/* Run the transfer a little: until something arrives or a second passed. */
static void xfer_pump(Xfer *x)
{
  if (x->paused && x->buf->len - x->pos < HIGH_WATER) {
    x->paused = FALSE;
    curl_easy_pause(x->easy, CURLPAUSE_CONT);
  }
  int running = 0;
  curl_multi_perform(x->multi, &running);
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(x->multi, &left)) != NULL)
    if (m->msg == CURLMSG_DONE) {
      x->finished = TRUE;
      x->result = m->data.result;
    }
  if (!x->finished && running && x->buf->len == x->pos && !x->paused)
    curl_multi_poll(x->multi, NULL, 0, 1000, NULL);
}

static gboolean xfer_wait_headers(Xfer *x)
{
  while (!x->headers_done && !x->finished)
    xfer_pump(x);
  return x->headers_done;
}

/* Body bytes: > 0, 0 at the end (x->result says how it ended). */
static gsize xfer_read(Xfer *x, void *out, gsize len)
{
  for (;;) {
    gsize avail = x->buf->len - x->pos;
    if (avail > 0) {
      gsize n = MIN(len, avail);
      memcpy(out, x->buf->data + x->pos, n);
      x->pos += n;
      if (x->pos == x->buf->len) {
        g_byte_array_set_size(x->buf, 0);
        x->pos = 0;
      }
      return n;
    }
    if (x->finished)
      return 0;
    xfer_pump(x);
  }
}

static const char *xfer_error(Xfer *x)
{
  return x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);
}

/* --- authentication ------------------------------------------------------------ */

static void load_credentials(SbxRegistry *r)
{
  if (r->creds_loaded)
    return;
  r->creds_loaded = TRUE;
  if (sbx_auth_lookup(r->auth_files, r->domain, r->repo, &r->user, &r->password))
    sbx_debug("registry %s: credentials from an auth file (user %s)", r->domain, r->user);
}

static char *basic_value(const char *user, const char *password)
{
  g_autofree char *plain = g_strconcat(user, ":", password, NULL);
  g_autofree char *b64 = g_base64_encode((const guchar *)plain, strlen(plain));
  explicit_bzero(plain, strlen(plain));
  return g_strconcat("Basic ", b64, NULL);
}

/* A token goes into a header: visible ASCII only (no CR/LF injection). */
static gboolean token_ok(const char *t)
{
  if (!t || !*t || strlen(t) > 64 * 1024)
    return FALSE;
  for (const char *p = t; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f)
      return FALSE;
  return TRUE;
}

static GBytes *request_body(SbxRegistry *r, const char *url, const Req *q, char **content_type,
                            GError **err);

static char *fetch_token(SbxRegistry *r, GHashTable *params, GError **err)
{
  const char *realm = g_hash_table_lookup(params, "realm");
  const char *service = g_hash_table_lookup(params, "service");
  const char *scope = g_hash_table_lookup(params, "scope");
  g_autofree char *default_scope = g_strdup_printf("repository:%s:pull", r->repo);
  Origin o;
  gboolean ok =
      realm && origin_of(realm, &o) &&
      (strcmp(o.scheme, "https") == 0 || (!r->tls_verify && strcmp(o.scheme, "http") == 0));
  if (realm)
    origin_clear(&o);
  if (!ok) {
    sbx_fail(err, SBX_ERROR_INVALID, "registry %s: bad token realm (want an https URL)", r->domain);
    return NULL;
  }
  CURLU *u = curl_url();
  curl_url_set(u, CURLUPART_URL, realm, 0);
  g_autofree char *sv = service ? g_strconcat("service=", service, NULL) : NULL;
  /* sbx login asks for no repository: only the challenge's scope, if any. */
  const char *want = scope ? scope : *r->repo ? default_scope : NULL;
  g_autofree char *sc = want ? g_strconcat("scope=", want, NULL) : NULL;
  if (sv)
    curl_url_set(u, CURLUPART_QUERY, sv, CURLU_APPENDQUERY | CURLU_URLENCODE);
  if (sc)
    curl_url_set(u, CURLUPART_QUERY, sc, CURLU_APPENDQUERY | CURLU_URLENCODE);
  char *full = NULL;
  curl_url_get(u, CURLUPART_URL, &full, 0);
  curl_url_cleanup(u);
  g_autofree char *url = g_strdup(full);
  curl_free(full);
  g_autofree char *basic = r->user ? basic_value(r->user, r->password) : NULL;
  Req q = {.max = SBX_REGISTRY_MAX_JSON,
           .auth = basic,
           .auth_origin = realm,
           .accept = "application/json"};
  sbx_debug("registry %s: token for %s (%s)", r->domain, want ? want : "no scope",
            basic ? "with credentials" : "anonymous");
  g_autoptr(GBytes) body = request_body(r, url, &q, NULL, err);
  if (!body)
    return NULL;
  gsize len;
  const char *data = g_bytes_get_data(body, &len);
  /* The token server is as untrusted as the registry: bounded parse. */
  g_autoptr(JsonNode) root = sbx_json_parse(data, len, "token", NULL);
  const char *token = NULL;
  if (root && JSON_NODE_HOLDS_OBJECT(root)) {
    JsonObject *obj = json_node_get_object(root);
    token = sbx_json_string_or_null(obj, "token");
    if (!token)
      token = sbx_json_string_or_null(obj, "access_token");
  }
  if (!token_ok(token)) {
    sbx_fail(err, SBX_ERROR_INVALID, "registry %s: the token server sent no usable token",
             r->domain);
    return NULL;
  }
  return g_strdup(token);
}

/* After a 401: learn how to authenticate (once per generation: a layer
 * thread that comes second reuses what the first one got). */
static gboolean authenticate(SbxRegistry *r, GPtrArray *challenges, guint generation, GError **err)
{
  g_mutex_lock(&r->lock);
  gboolean ok = TRUE;
  if (r->auth_generation == generation) {
    load_credentials(r);
    g_autofree char *scheme = NULL;
    g_autoptr(GHashTable) params = NULL;
    g_autoptr(GHashTable) basic_params = NULL;
    gboolean basic = FALSE;
    for (guint i = 0; i < challenges->len; i++) {
      g_autofree char *s = NULL;
      g_autoptr(GHashTable) p = sbx_registry_parse_challenge(challenges->pdata[i], &s);
      if (!p)
        continue;
      if (g_ascii_strcasecmp(s, "bearer") == 0 && !params)
        params = g_steal_pointer(&p);
      else if (g_ascii_strcasecmp(s, "basic") == 0)
        basic = TRUE;
    }
    g_autofree char *value = NULL;
    if (params) {
      g_autofree char *token = fetch_token(r, params, err);
      value = token ? g_strconcat("Bearer ", token, NULL) : NULL;
      if (token)
        explicit_bzero(token, strlen(token));
      ok = value != NULL;
    } else if (basic && r->user) {
      value = basic_value(r->user, r->password);
    } else if (basic) {
      ok = sbx_fail(err, SBX_ERROR_FAILED, "registry %s: authentication required (see 'sbx login')",
                    r->domain);
    } else {
      ok = sbx_fail(err, SBX_ERROR_FAILED, "registry %s: unsupported authentication challenge",
                    r->domain);
    }
    if (ok) {
      if (r->auth)
        explicit_bzero(r->auth, strlen(r->auth));
      g_free(r->auth);
      r->auth = g_steal_pointer(&value);
      r->auth_generation++;
    }
  }
  g_mutex_unlock(&r->lock);
  return ok;
}

/* --- requests: auth, redirects, Retry-After ------------------------------------ */

static guint retry_after_seconds(const char *v)
{
  if (!v)
    return 1;
  if (g_ascii_isdigit(v[0]))
    return (guint)MIN(g_ascii_strtoull(v, NULL, 10), MAX_RETRY_AFTER_S);
  time_t when = curl_getdate(v, NULL);
  time_t now = time(NULL);
  return when > now ? (guint)MIN(when - now, MAX_RETRY_AFTER_S) : 1;
}

static gboolean status_error(SbxRegistry *r, const char *url, long status, GError **err)
{
  g_autofree char *shown = redact(url);
  const char *why = status == 401   ? " (unauthorized: see 'sbx login')"
                    : status == 403 ? " (denied)"
                    : status == 404 ? " (not found)"
                    : status == 429 ? " (too many requests)"
                                    : "";
  sbx_fail(err, status == 404 ? SBX_ERROR_NOT_FOUND : SBX_ERROR_FAILED, "GET %s: HTTP %ld%s", shown,
           status, why);
  return FALSE;
}

static gboolean blob_sink(gpointer p, const guint8 *data, gsize len);

/* Send a GET and follow it to a 2xx answer whose body is ready to read
 * (from buf, or into `sink`, a BlobStream, once the caller opens it). */
static Xfer *open_response(SbxRegistry *r, const char *url, const Req *q, gpointer sink,
                           GError **err)
{
  g_autofree char *cur = g_strdup(url);
  guint redirects = 0, auth_tries = 0, waits = 0;
  for (;;) {
    const char *auth = NULL;
    g_autoptr(SecretStr) reg_auth = NULL;
    guint generation = 0;
    gboolean to_registry = q->registry && same_origin(cur, r->base);
    if (to_registry) {
      g_mutex_lock(&r->lock);
      reg_auth = g_strdup(r->auth);
      generation = r->auth_generation;
      g_mutex_unlock(&r->lock);
      auth = reg_auth;
    } else if (q->auth && q->auth_origin && same_origin(cur, q->auth_origin)) {
      auth = q->auth;
    }
    g_autoptr(Xfer) x = xfer_start(r, cur, q, auth, err);
    if (!x)
      return NULL;
    if (sink) {
      x->sink = blob_sink;
      x->sink_data = sink;
    }
    g_autofree char *shown = redact(cur);
    if (!xfer_wait_headers(x)) {
      sbx_fail(err, SBX_ERROR_FAILED, "GET %s: %s", shown, xfer_error(x));
      return NULL;
    }
    long st = x->status;
    sbx_debug("GET %s%s -> %ld", shown, auth ? " (authenticated)" : "", st);
    if (st >= 200 && st < 300) {
      if (st == 206 && q->range_from > 0) {
        guint64 start = x->content_range && g_str_has_prefix(x->content_range, "bytes ")
                            ? g_ascii_strtoull(x->content_range + 6, NULL, 10)
                            : G_MAXUINT64;
        if (start != q->range_from) {
          sbx_fail(err, SBX_ERROR_INVALID,
                   "GET %s: answered a range from %" G_GUINT64_FORMAT " with another range", shown,
                   q->range_from);
          return NULL;
        }
        x->skip = 0;
      } else if (st == 206) {
        sbx_fail(err, SBX_ERROR_INVALID, "GET %s: partial content not asked for", shown);
        return NULL;
      }
      if (x->too_big) {
        sbx_fail(err, SBX_ERROR_INVALID, "GET %s: larger than %" G_GUINT64_FORMAT " bytes", shown,
                 q->max);
        return NULL;
      }
      return g_steal_pointer(&x);
    }
    if (st == 401 && to_registry && auth_tries++ < MAX_AUTH_TRIES && x->challenges->len > 0) {
      if (!authenticate(r, x->challenges, generation, err))
        return NULL;
      continue;
    }
    if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
      char *next = NULL;
      curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &next);
      if (!next || ++redirects > MAX_REDIRECTS) {
        sbx_fail(err, SBX_ERROR_INVALID, "GET %s: %s", shown,
                 next ? "too many redirects" : "redirect without a location");
        return NULL;
      }
      Origin o;
      gboolean ok = origin_of(next, &o) &&
                    (strcmp(o.scheme, "https") == 0 ||
                     (strcmp(o.scheme, "http") == 0 && g_str_has_prefix(cur, "http:")));
      origin_clear(&o);
      if (!ok) {
        sbx_fail(err, SBX_ERROR_INVALID, "GET %s: refused redirect to a non-https URL", shown);
        return NULL;
      }
      g_free(cur);
      cur = g_strdup(next);
      continue;
    }
    if ((st == 429 || st == 503) && waits++ < MAX_RETRY_WAITS) {
      guint s = retry_after_seconds(x->retry_after);
      sbx_debug("GET %s: HTTP %ld, retrying in %u s", shown, st, s);
      g_usleep((gulong)s * G_USEC_PER_SEC);
      continue;
    }
    status_error(r, cur, st, err);
    return NULL;
  }
}

static GBytes *request_body(SbxRegistry *r, const char *url, const Req *q, char **content_type,
                            GError **err)
{
  g_autoptr(Xfer) x = open_response(r, url, q, NULL, err);
  if (!x)
    return NULL;
  g_autoptr(GByteArray) out = g_byte_array_new();
  guint8 chunk[65536];
  gsize n;
  while ((n = xfer_read(x, chunk, sizeof chunk)) > 0)
    g_byte_array_append(out, chunk, (guint)n);
  g_autofree char *shown = redact(url);
  if (x->too_big) {
    sbx_fail(err, SBX_ERROR_INVALID, "GET %s: larger than %" G_GUINT64_FORMAT " bytes", shown,
             q->max);
    return NULL;
  }
  if (x->result != CURLE_OK) {
    sbx_fail(err, SBX_ERROR_FAILED, "GET %s: %s", shown, xfer_error(x));
    return NULL;
  }
  if (content_type)
    *content_type = g_strdup(x->content_type);
  return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

/* --- the API ----------------------------------------------------------------------- */

#define MANIFEST_TYPES                                                                             \
  "application/vnd.oci.image.index.v1+json, "                                                      \
  "application/vnd.docker.distribution.manifest.list.v2+json, "                                    \
  "application/vnd.oci.image.manifest.v1+json, "                                                   \
  "application/vnd.docker.distribution.manifest.v2+json"

static void global_init(void)
{
  static gsize done;
  if (g_once_init_enter(&done)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_once_init_leave(&done, 1);
  }
}

SbxRegistry *sbx_registry_new(const SbxImageRef *ref, const SbxRegistryOptions *opts, GError **err)
{
  global_init();
  SbxRegistry *r = g_new0(SbxRegistry, 1);
  r->domain = g_strdup(ref->domain);
  r->repo = g_strdup(ref->path);
  /* Docker Hub's API lives on another host than its name. */
  const char *host = strcmp(ref->domain, "docker.io") == 0 ? "registry-1.docker.io" : ref->domain;
  r->base = g_strconcat("https://", host, NULL);
  r->tls_verify = opts->tls_verify;
  r->cert_dirs = g_strdupv(opts->cert_dirs);
  r->auth_files = g_strdupv(opts->auth_files);
  r->max_blob_size = opts->max_blob_size;
  r->request_timeout_ms =
      opts->request_timeout_ms ? opts->request_timeout_ms : SBX_REGISTRY_REQUEST_TIMEOUT_MS;
  r->blob_stall_s = opts->blob_stall_s ? opts->blob_stall_s : SBX_REGISTRY_BLOB_STALL_S;
  r->blob_deadline_s = opts->blob_deadline_s;
  r->tls = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, tls_files_free);
  g_mutex_init(&r->lock);
  g_mutex_init(&r->tls_lock);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    g_mutex_init(&r->share_locks[i]);
  r->share = curl_share_init();
  curl_share_setopt(r->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(r->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(r->share, CURLSHOPT_USERDATA, r);
  curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  /* Not CURL_LOCK_DATA_CONNECT: libcurl does not support sharing
   * connections between threads, and each layer has its own. */
  curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  if (!r->tls_verify) {
    /* podman's habit: without verification, a registry that speaks no TLS
     * at all is reached over plain http. */
    g_autofree char *url = g_strconcat(r->base, "/v2/", NULL);
    Req q = {.max = SBX_REGISTRY_MAX_JSON};
    g_autoptr(Xfer) x = xfer_start(r, url, &q, NULL, err);
    if (!x) {
      sbx_registry_free(r);
      return NULL;
    }
    if (!xfer_wait_headers(x) &&
        (x->result == CURLE_SSL_CONNECT_ERROR || x->result == CURLE_RECV_ERROR)) {
      sbx_debug("registry %s: no TLS, using http", r->domain);
      g_free(r->base);
      r->base = g_strconcat("http://", host, NULL);
    }
  }
  return r;
}

void sbx_registry_free(SbxRegistry *r)
{
  if (!r)
    return;
  curl_share_cleanup(r->share);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    g_mutex_clear(&r->share_locks[i]);
  g_mutex_clear(&r->lock);
  g_mutex_clear(&r->tls_lock);
  g_hash_table_destroy(r->tls);
  if (r->password)
    explicit_bzero(r->password, strlen(r->password));
  if (r->auth)
    explicit_bzero(r->auth, strlen(r->auth));
  g_free(r->password);
  g_free(r->auth);
  g_free(r->user);
  g_free(r->domain);
  g_free(r->repo);
  g_free(r->base);
  g_strfreev(r->cert_dirs);
  g_strfreev(r->auth_files);
  if (r->fallbacks)
    g_ptr_array_unref(r->fallbacks);
  g_free(r);
}

void sbx_registry_add_fallback(SbxRegistry *r, SbxRegistry *other)
{
  if (!r->fallbacks)
    r->fallbacks = g_ptr_array_new_with_free_func((GDestroyNotify)sbx_registry_free);
  g_ptr_array_add(r->fallbacks, other);
}

void sbx_registry_set_credentials(SbxRegistry *r, const char *user, const char *password)
{
  g_mutex_lock(&r->lock);
  r->creds_loaded = TRUE;
  g_free(r->user);
  g_free(r->password);
  r->user = g_strdup(user);
  r->password = g_strdup(password);
  g_mutex_unlock(&r->lock);
}

gboolean sbx_registry_check_login(SbxRegistry *r, GError **err)
{
  g_autofree char *url = g_strconcat(r->base, "/v2/", NULL);
  Req q = {.max = SBX_REGISTRY_MAX_JSON, .registry = TRUE};
  g_autoptr(GBytes) b = request_body(r, url, &q, NULL, err);
  return b != NULL;
}

GBytes *sbx_registry_get_manifest(SbxRegistry *r, const char *reference, char **media_type,
                                  GError **err)
{
  g_autofree char *url = g_strdup_printf("%s/v2/%s/manifests/%s", r->base, r->repo, reference);
  Req q = {.max = SBX_REGISTRY_MAX_JSON, .registry = TRUE, .accept = MANIFEST_TYPES};
  return request_body(r, url, &q, media_type, err);
}

GBytes *sbx_registry_get_blob(SbxRegistry *r, const char *digest, gsize max, GError **err)
{
  g_autofree char *url = g_strdup_printf("%s/v2/%s/blobs/%s", r->base, r->repo, digest);
  Req q = {.max = MIN(max, SBX_REGISTRY_MAX_JSON), .registry = TRUE};
  return request_body(r, url, &q, NULL, err);
}

guint sbx_registry_blob_requests(SbxRegistry *r)
{
  return (guint)g_atomic_int_get(&r->blob_requests);
}

/* --- a layer blob, streamed and resumed ---------------------------------------------- */

/* Each blob has a fetcher thread: it runs the transfer (TLS, HTTP,
 * resumes, fallbacks) and curl's write callback copies what arrives into
 * the stream's ring, while the layer's thread only decompresses, hashes and
 * writes. The download runs ahead of the unpack by up to RING_BYTES, so a
 * moment's stall on either side costs the other nothing; a full ring pauses
 * the transfer, and the socket's window stops the server (backpressure, no
 * file). One ring, allocated once: no allocation or page fault per chunk. */
#define RING_BYTES (16u << 20)

typedef struct {
  SbxRegistry *first, *reg; /* reg: the one fetched from now (first or a fallback) */
  guint next_fallback;
  char *url, *digest;
  guint64 size, offset; /* offset: bytes received (the fetcher's) */
  guint resumes;
  gint64 deadline; /* monotonic us: this source must have sent the blob by then */
  Xfer *x;
  GThread *thread;
  GMutex lock; /* the fields below */
  GCond cond;
  guint8 *ring;
  gsize rpos, fill; /* the reader's position, bytes in the ring */
  gsize want;       /* the fetcher waits for this much room */
  gboolean ended, cancelled;
  GError *error;
  guint starved, full; /* waits of the reader on an empty ring, of the fetcher on a full one */
} BlobStream;

static void blob_stream_free(gpointer p)
{
  BlobStream *b = p;
  if (b->thread) {
    sbx_debug("blob %.19s: the unpack waited for the network %u times, the network for the "
              "unpack %u times",
              b->digest, b->starved, b->full);
    g_mutex_lock(&b->lock);
    g_atomic_int_set(&b->cancelled, TRUE);
    g_cond_broadcast(&b->cond);
    g_mutex_unlock(&b->lock);
    g_thread_join(b->thread);
  }
  g_mutex_clear(&b->lock);
  g_cond_clear(&b->cond);
  g_clear_error(&b->error);
  xfer_free(b->x);
  g_free(b->ring);
  g_free(b->url);
  g_free(b->digest);
  g_free(b);
}

static gboolean resumable(CURLcode rc)
{
  return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
         rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_GOT_NOTHING || rc == CURLE_HTTP2 ||
         rc == CURLE_HTTP2_STREAM || rc == CURLE_OK;
}

/* curl's write callback, in the fetcher: all of it into the ring, or
 * nothing (and the fetcher waits for room before it runs curl again). */
static gboolean blob_sink(gpointer p, const guint8 *data, gsize len)
{
  BlobStream *b = p;
  g_mutex_lock(&b->lock);
  gboolean room = RING_BYTES - b->fill >= len;
  if (room) {
    gsize wpos = (b->rpos + b->fill) % RING_BYTES;
    gsize first = MIN(len, RING_BYTES - wpos);
    memcpy(b->ring + wpos, data, first);
    memcpy(b->ring, data + first, len - first);
    if (b->fill == 0)
      g_cond_broadcast(&b->cond); /* the reader may be waiting */
    b->fill += len;
    b->offset += len;
  } else {
    b->want = MIN(len, (gsize)RING_BYTES);
  }
  g_mutex_unlock(&b->lock);
  return room;
}

static gboolean blob_connect(BlobStream *b, GError **err)
{
  Req q = {.max = b->size - b->offset, .registry = TRUE, .range_from = b->offset, .layer = TRUE};
  g_atomic_int_inc(&b->reg->blob_requests);
  b->x = open_response(b->reg, b->url, &q, b, err);
  if (!b->x)
    return FALSE;
  b->x->sink_open = TRUE;
  return TRUE;
}

/* A paused transfer goes on when the reader has made room for the block
 * curl holds (or the stream is closed). */
static void blob_wait_for_room(BlobStream *b)
{
  g_mutex_lock(&b->lock);
  if (RING_BYTES - b->fill < b->want)
    b->full++;
  while (RING_BYTES - b->fill < b->want && !b->cancelled)
    g_cond_wait(&b->cond, &b->lock);
  b->want = 0;
  g_mutex_unlock(&b->lock);
}

/* When the blob's current source must be done (see SBX_REGISTRY_BLOB_RATE). */
static void blob_set_deadline(BlobStream *b)
{
  guint64 s = b->reg->blob_deadline_s;
  if (!s)
    s = MAX(b->size / SBX_REGISTRY_BLOB_RATE, (guint64)SBX_REGISTRY_BLOB_MIN_S);
  b->deadline = g_get_monotonic_time() + (gint64)MIN(s, (guint64)G_MAXINT32) * G_USEC_PER_SEC;
}

static gboolean blob_too_late(BlobStream *b, GError **err)
{
  g_autofree char *shown = redact(b->url);
  return sbx_fail(err, SBX_ERROR_FAILED,
                  "GET %s: not complete within the layer's deadline (%" G_GUINT64_FORMAT
                  " of %" G_GUINT64_FORMAT " bytes; SBX_REGISTRY_BLOB_SECONDS sets it)",
                  shown, b->offset, b->size);
}

/* The blob from its current source, across resumes: TRUE at its end (or
 * when the stream was closed), FALSE with *err when this source failed. */
static gboolean blob_fetch_here(BlobStream *b, GError **err)
{
  blob_set_deadline(b);
  for (;;) {
    if (!b->x && !blob_connect(b, err))
      return FALSE;
    Xfer *x = b->x;
    while (!x->finished && !g_atomic_int_get(&b->cancelled)) {
      /* xfer_pump returns at least once a second. */
      if (g_get_monotonic_time() > b->deadline && b->offset < b->size)
        return blob_too_late(b, err);
      if (x->paused)
        blob_wait_for_room(b);
      xfer_pump(x);
    }
    if (g_atomic_int_get(&b->cancelled))
      return TRUE;
    if (x->too_big)
      return sbx_fail(err, SBX_ERROR_INVALID,
                      "blob %s: larger than its descriptor (%" G_GUINT64_FORMAT " bytes)",
                      b->digest, b->size);
    CURLcode rc = x->result;
    /* Every byte arrived, whatever became of the connection after them (a
     * Content-Length too large, a reset): resuming would ask for a range
     * past the end, which a correct registry answers with 416. The digest
     * and size are checked by the unpacker all the same. */
    if (b->offset == b->size)
      return TRUE;
    if (!resumable(rc) || ++b->resumes > MAX_RESUMES) {
      g_autofree char *shown = redact(b->url);
      return sbx_fail(err, SBX_ERROR_FAILED, "GET %s: %s", shown,
                      rc == CURLE_OK ? "ended early" : xfer_error(x));
    }
    sbx_debug("blob %.19s: transfer broke at %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
              " bytes (%s): resuming",
              b->digest, b->offset, b->size,
              rc == CURLE_OK ? "ended early" : curl_easy_strerror(rc));
    g_clear_pointer(&b->x, xfer_free);
    g_usleep(G_USEC_PER_SEC / 10 * b->resumes);
  }
}

static char *blob_url(SbxRegistry *r, const char *digest)
{
  return g_strdup_printf("%s/v2/%s/blobs/%s", r->base, r->repo, digest);
}

/* The source failed for this blob (*err says why): on to the next one, if
 * any, resuming there at the same offset (a digest names the same bytes
 * everywhere, and the unpacker checks them all). containers/image's habit:
 * each pull source in order, the registry itself last. */
static gboolean blob_next_source(BlobStream *b, GError **err)
{
  GPtrArray *alt = b->first->fallbacks;
  if (!alt || b->next_fallback >= alt->len || g_atomic_int_get(&b->cancelled))
    return FALSE;
  SbxRegistry *next = alt->pdata[b->next_fallback++];
  sbx_info("blob %.19s from %s: %s; trying %s", b->digest, b->reg->domain, (*err)->message,
           next->domain);
  g_clear_error(err);
  g_clear_pointer(&b->x, xfer_free);
  b->reg = next;
  b->resumes = 0;
  g_free(b->url);
  b->url = blob_url(next, b->digest);
  return TRUE;
}

static gpointer blob_fetcher(gpointer p)
{
  BlobStream *b = p;
  GError *local = NULL;
  while (!blob_fetch_here(b, &local) && blob_next_source(b, &local))
    ;
  /* The connection goes now, not when the layer is done with the stream. */
  g_clear_pointer(&b->x, xfer_free);
  g_mutex_lock(&b->lock);
  b->ended = TRUE;
  b->error = local;
  g_cond_broadcast(&b->cond);
  g_mutex_unlock(&b->lock);
  return NULL;
}

static gssize blob_read(gpointer p, void *buf, gsize len, GError **err)
{
  BlobStream *b = p;
  g_mutex_lock(&b->lock);
  if (b->fill == 0 && !b->ended)
    b->starved++;
  while (b->fill == 0 && !b->ended)
    g_cond_wait(&b->cond, &b->lock);
  gssize n = 0;
  if (b->fill > 0) {
    gsize take = MIN(len, b->fill);
    gsize first = MIN(take, RING_BYTES - b->rpos);
    memcpy(buf, b->ring + b->rpos, first);
    memcpy((guint8 *)buf + first, b->ring, take - first);
    b->rpos = (b->rpos + take) % RING_BYTES;
    b->fill -= take;
    if (b->want && RING_BYTES - b->fill >= b->want)
      g_cond_broadcast(&b->cond); /* the fetcher waits for this room */
    n = (gssize)take;
  } else if (b->error) {
    n = -1;
    g_propagate_error(err, g_error_copy(b->error));
  }
  g_mutex_unlock(&b->lock);
  return n;
}

SbxStream *sbx_registry_open_blob(SbxRegistry *r, const char *digest, gint64 size, GError **err)
{
  if (size < 0 || (guint64)size > r->max_blob_size) {
    sbx_fail(err, SBX_ERROR_INVALID,
             "blob %s: %" G_GINT64_FORMAT " bytes (the limit is %" G_GUINT64_FORMAT
             "; SBX_MAX_LAYER_SIZE raises it)",
             digest, size, r->max_blob_size);
    return NULL;
  }
  BlobStream *b = g_new0(BlobStream, 1);
  b->first = b->reg = r;
  b->digest = g_strdup(digest);
  b->url = blob_url(r, digest);
  b->size = (guint64)size;
  /* Pages are touched as the ring fills: a small blob costs little. */
  b->ring = g_malloc(RING_BYTES);
  g_mutex_init(&b->lock);
  g_cond_init(&b->cond);
  b->thread = g_thread_try_new("sbx fetch", blob_fetcher, b, err);
  if (!b->thread) {
    blob_stream_free(b);
    return NULL;
  }
  return sbx_stream_new_custom(blob_read, b, blob_stream_free);
}
