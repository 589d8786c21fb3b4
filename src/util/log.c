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
