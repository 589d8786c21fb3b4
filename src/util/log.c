/* Logging to stderr, one line per event, prefixed with "sbx: ". */
#include "sbx/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

SbxLogLevel sbx_log_level = SBX_LOG_WARN;

static const char *const names[] = {"error", "warn", "info", "debug"};

const char *sbx_log_level_name(void)
{
  return names[sbx_log_level];
}

gboolean sbx_log_set_level(const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    if (g_strcmp0(name, names[i]) == 0) {
      sbx_log_level = (SbxLogLevel)i;
      return TRUE;
    }
  }
  return FALSE;
}

void sbx_log(SbxLogLevel level, const char *fmt, ...)
{
  if (level > sbx_log_level)
    return;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *raw = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  /* Warnings may quote names from an archive: one line, nothing a terminal obeys. */
  g_autofree char *msg = sbx_escape_text(raw);
  g_autofree char *line = NULL;
  if (level == SBX_LOG_DEBUG)
    line = g_strdup_printf("sbx[%d] %.3fms: %s\n", (int)getpid(), sbx_now_us() / 1000.0, msg);
  else if (level == SBX_LOG_WARN)
    line = g_strdup_printf("sbx: warning: %s\n", msg);
  else if (level == SBX_LOG_INFO)
    line = g_strdup_printf("sbx: info: %s\n", msg);
  else
    line = g_strdup_printf("sbx: %s\n", msg);
  /* One write so lines from several processes do not interleave. */
  (void)!write(STDERR_FILENO, line, strlen(line));
}

gint64 sbx_now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (gint64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* GLib's own messages (a critical, a warning) as bytes, one write: GLib's
 * writer converts them to the console's charset, with iconv in the C locale
 * `sbx run` keeps, and inside a sandbox's root iconv would read the image's
 * gconv-modules (see sbx_strerror). Debug and info messages are dropped as
 * GLib drops them (G_MESSAGES_DEBUG). */
static GLogWriterOutput plain_writer(GLogLevelFlags level, const GLogField *fields, gsize n,
                                     gpointer data)
{
  const char *msg = NULL, *domain = NULL;
  for (gsize i = 0; i < n; i++) {
    if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
      msg = fields[i].value;
    else if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
      domain = fields[i].value;
  }
  if (g_log_writer_default_would_drop(level, domain))
    return G_LOG_WRITER_HANDLED;
  const char *what = (level & G_LOG_LEVEL_ERROR)      ? "ERROR"
                     : (level & G_LOG_LEVEL_CRITICAL) ? "CRITICAL"
                     : (level & G_LOG_LEVEL_WARNING)  ? "WARNING"
                                                      : "MESSAGE";
  g_autofree char *safe = sbx_escape_text(msg ? msg : "");
  g_autofree char *line =
      g_strdup_printf("sbx: %s%s%s: %s\n", domain ? domain : "", domain ? "-" : "", what, safe);
  (void)!write(STDERR_FILENO, line, strlen(line));
  return G_LOG_WRITER_HANDLED;
}

void sbx_log_glib_plain(void)
{
  g_log_set_writer_func(plain_writer, NULL, NULL);
}

/* Before a process enters a root it does not trust: GLib's charset (from the
 * host's charset.alias) and, unless it is UTF-8, glibc's gconv configuration
 * read now, from the host's files. A conversion after that (GLib formats
 * some errors with g_strerror whatever sbx does) uses what is in memory and
 * glibc's built-in ASCII converter, never the image's. */
void sbx_charset_pin(void)
{
  if (!g_get_charset(NULL))
    g_free(g_locale_to_utf8("x", 1, NULL, NULL, NULL));
}
