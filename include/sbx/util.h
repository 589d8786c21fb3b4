/* util: errors, file descriptors, logging, small file helpers.
 *
 * Library code returns FALSE/NULL/-1 and fills a GError in SBX_ERROR; only
 * src/cli/ prints "sbx: <message>" and chooses the exit status. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>
#include <unistd.h>

#define SBX_ERROR (sbx_error_quark())
GQuark sbx_error_quark(void);

/* Errors of a system call: the code is the errno. */
#define SBX_ERRNO_ERROR (sbx_errno_error_quark())
GQuark sbx_errno_error_quark(void);
/* The errno an error carries (SBX_ERRNO_ERROR), else 0. */
int sbx_error_errno(const GError *error);
/* errno's text, in English, from glibc's own table: no locale, no message
 * catalog, no charset conversion. g_strerror converts from the locale's
 * charset with iconv, which (before its configuration is loaded) reads
 * gconv-modules and may load a converter module from whatever root is
 * current: inside a sandbox, the image's (a module is code). */
const char *sbx_strerror(int errnum);

typedef enum {
  SBX_ERROR_FAILED,    /* sbx itself failed: exit 125 */
  SBX_ERROR_USAGE,     /* bad command line: exit 125 */
  SBX_ERROR_INVALID,   /* untrusted input refused: exit 125 */
  SBX_ERROR_NOT_FOUND, /* image or file not found: exit 125 */
  SBX_ERROR_REPORTED,  /* a helper already printed the error: exit 125 quietly */
} SbxErrorCode;

/* Exit statuses, as docker and podman use them. */
enum {
  SBX_EXIT_TIMEOUT = 124,
  SBX_EXIT_FAILED = 125,
  SBX_EXIT_NOEXEC = 126,
  SBX_EXIT_NOTFOUND = 127
};
/* A wait status as an exit status: the program's own, 128+N for signal N
 * (SBX_EXIT_FAILED for anything else). */
int sbx_exit_status(int wstatus);

/* Fill *err with "<what>: <strerror(errno)>", code errno in SBX_ERRNO_ERROR,
 * and return FALSE. */
gboolean sbx_fail_errno(GError **err, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
gboolean sbx_fail_errnum(GError **err, int errnum, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
gboolean sbx_fail(GError **err, SbxErrorCode code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* File descriptors closed by scope. */
static inline void sbx_close_fdp(int *fd)
{
  /* errno as it was, and untouched when close succeeds (the program's
   * process made early shares init's, process.c prefork_main). */
  if (*fd >= 0) {
    int saved = errno;
    if (close(*fd) < 0)
      errno = saved;
  }
}
#define sbx_autofd __attribute__((cleanup(sbx_close_fdp))) int
static inline int sbx_steal_fd(int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

/* Logging on stderr: --log-level info says what sbx decided and did (the
 * store and id mapping, cached or imported, layers unpacked, filters
 * compiled, cgroups made); debug narrates every setup step with timings. */
typedef enum { SBX_LOG_ERROR, SBX_LOG_WARN, SBX_LOG_INFO, SBX_LOG_DEBUG } SbxLogLevel;
extern SbxLogLevel sbx_log_level;
gboolean sbx_log_set_level(const char *name);
/* GLib's messages written as bytes (no charset conversion); sbx_charset_pin:
 * charset and gconv configuration read from the host now (util/log.c). */
void sbx_log_glib_plain(void);
void sbx_charset_pin(void);
const char *sbx_log_level_name(void);
void sbx_log(SbxLogLevel level, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
#define sbx_debug(...)                                                                             \
  do {                                                                                             \
    if (sbx_log_level >= SBX_LOG_DEBUG)                                                            \
      sbx_log(SBX_LOG_DEBUG, __VA_ARGS__);                                                         \
  } while (0)
#define sbx_info(...)                                                                              \
  do {                                                                                             \
    if (sbx_log_level >= SBX_LOG_INFO)                                                             \
      sbx_log(SBX_LOG_INFO, __VA_ARGS__);                                                          \
  } while (0)
#define sbx_warn(...) sbx_log(SBX_LOG_WARN, __VA_ARGS__)

/* escape.c: untrusted text made safe for a terminal (controls, C1, bidi,
 * invalid UTF-8 shown as \xHH or \uHHHH); for JSON text, the same as JSON
 * escapes, so that it stays the same JSON. */
char *sbx_escape_text(const char *s);
/* Keep only the lines of data[0..len) of at most max bytes (newline
 * included), in place; returns the new length. For account files read by
 * libc's fgetpwent/fgetgrent, whose cost grows with the square of a line. */
gsize sbx_text_drop_long_lines(char *data, gsize len, gsize max);
#define SBX_ACCOUNT_LINE_MAX (64 * 1024)
char *sbx_escape_json_text(const char *json);

/* I/O that retries on EINTR and short counts. */
gboolean sbx_write_all(int fd, const void *buf, size_t len, GError **err);
/* fsync the directory dirfd/path (dirfd itself when path is NULL): makes a
 * rename or create in it durable. */
gboolean sbx_fsync_dir_at(int dirfd, const char *path, GError **err);
/* Write a whole small file atomically: dirfd/name.tmp, fsync, rename, fsync
 * of the directory. */
gboolean sbx_write_file_atomic(int dirfd, const char *name, const void *buf, size_t len,
                               mode_t mode, GError **err);
/* Write a small file (O_CREAT|O_TRUNC|O_NOFOLLOW). */
gboolean sbx_write_file_at(int dirfd, const char *name, const char *content, mode_t mode,
                           GError **err);
/* Write a value into an existing kernel file (/proc/PID/uid_map, a cgroup
 * control file) in one write(2): the kernel takes each write as one value,
 * so a short write is an error too. */
gboolean sbx_write_value(const char *path, const char *value, GError **err);
/* Read a regular file of at most max bytes from an fd (any position). */
GBytes *sbx_read_fd_bounded(int fd, gsize max, const char *what, GError **err);

/* Remove a directory tree below dirfd without following any symlink. */
gboolean sbx_rm_rf_at(int dirfd, const char *name, GError **err);
/* The same; errors name dir_shown/name (dirfd's path, for messages). */
gboolean sbx_rm_rf_in(int dirfd, const char *dir_shown, const char *name, GError **err);

/* mkdir -p for a trusted absolute path (the store root). */
gboolean sbx_mkdir_p(const char *path, mode_t mode, GError **err);

/* In a child sbx started: die (SIGKILL) when the thread that forked us does.
 * The signature of a GSpawnChildSetupFunc; call it with NULL elsewhere. */
void sbx_child_die_with_parent(gpointer unused);

/* Close every fd >= lowfd except those listed (-1 terminated). */
void sbx_close_fds_from(int lowfd);

/* Append s as a JSON string (escaped, made valid UTF-8; NULL: null). */
void sbx_json_append_string(GString *out, const char *s);

/* Random hex string of n bytes (2n characters). */
char *sbx_random_hex(guint nbytes);

/* Monotonic time in microseconds, for --log-level debug timings. */
gint64 sbx_now_us(void);

/* Rewrite our command line as seen in /proc/PID/cmdline (from main's argv). */
void sbx_proctitle_init(int argc, char **argv);
void sbx_proctitle_set(const char *title);

/* Path of a helper program shipped with sbx (sbx-store, sbx-net): beside our
 * own binary (the build tree), else in SBX_LIBEXECDIR. */
char *sbx_helper_path(const char *name, GError **err);
/* The whole environment a helper program starts with: none of the user's
 * (their tokens and keys have no business in a process that parses untrusted
 * input or holds the network), only the sanitizer settings and the variables
 * named in keep (NULL-terminated; "SBX_*" keeps a prefix). */
char **sbx_helper_environ(const char *const *keep);
/* FALSE with "WHAT helper died (killed by signal N, NAME)" or "(exit status
 * N)": a helper process (sbx-store, an import's child) that ended without
 * saying why. One wording for run, load and pull. */
gboolean sbx_helper_died(GError **err, const char *what, int status);
/* A helper's stdin and stdout on /dev/null, and stderr too unless debugging
 * (what it parses must not reach the user's terminal). */
void sbx_helper_stdio_null(void);
/* What the sbx-store helper reads: the store's location, sbx's settings, the
 * language of its messages, TMPDIR (where a compressed archive is
 * decompressed: source.c); for a pull, the registry credentials' files
 * (podman's, docker's), PATH for docker credential helpers, and the proxies
 * libcurl takes from the environment (it ignores upper-case HTTP_PROXY). */
#define SBX_STORE_HELPER_ENV                                                                       \
  ((const char *const[]){"HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "SBX_*",   \
                         "LANG", "LC_*", "TMPDIR", "REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "PATH",  \
                         "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",     \
                         "no_proxy", "NO_PROXY", NULL})

/* A long-lived process done with its set-up (the run's supervisor, sbx-net):
 * give back what only the set-up used. Unmaps the pages of every loaded
 * object's read-only segments (code, constants: clean copies of the file,
 * faulted back in from the page cache when used again) and trims the heap.
 * Needs no /proc (works confined); never touches a writable page. */
void sbx_memory_release_setup(void);
/* When: only a run that lasts pays for it. One of `true` is over in a few
 * milliseconds; the release and faulting the exit path back in would add
 * ~0.3 ms of CPU to it, beside the program on a busy CPU. */
#define SBX_MEMORY_RELEASE_DELAY_MS 200
