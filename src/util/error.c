/* Errors: SBX_ERROR for sbx's own, SBX_ERRNO_ERROR (code = errno) for a
 * failing system call; messages read "<what>: <why>". */
#include "sbx/util.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>

G_DEFINE_QUARK(sbx - error - quark, sbx_error)
G_DEFINE_QUARK(sbx - errno - error - quark, sbx_errno_error)

int sbx_error_errno(const GError *error)
{
  return error && error->domain == SBX_ERRNO_ERROR ? error->code : 0;
}

const char *sbx_strerror(int errnum)
{
  const char *d = strerrordesc_np(errnum);
  return d ? d : "Unknown error";
}

int sbx_exit_status(int wstatus)
{
  if (WIFEXITED(wstatus))
    return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus))
    return 128 + WTERMSIG(wstatus);
  return SBX_EXIT_FAILED;
}

/* Nothing is formatted for a caller that keeps no error (err NULL): a
 * sandbox's init probes paths that may not be there, and each message
 * costs (its first g_strerror, with iconv, cost ~0.3 ms). */
gboolean sbx_fail_errnum(GError **err, int errnum, const char *fmt, ...)
{
  if (!err)
    return FALSE;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *what = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(err, SBX_ERRNO_ERROR, errnum, "%s: %s", what, sbx_strerror(errnum));
  return FALSE;
}

gboolean sbx_fail_errno(GError **err, const char *fmt, ...)
{
  int errnum = errno;
  if (!err)
    return FALSE;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *what = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(err, SBX_ERRNO_ERROR, errnum, "%s: %s", what, sbx_strerror(errnum));
  return FALSE;
}

gboolean sbx_fail(GError **err, SbxErrorCode code, const char *fmt, ...)
{
  if (!err)
    return FALSE;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(err, SBX_ERROR, code, msg);
  return FALSE;
}
