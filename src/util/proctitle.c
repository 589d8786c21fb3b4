/* The name sbx's own processes show inside the sandbox. init is PID 1 there:
 * its command line would otherwise tell the sandbox where sbx lives on the
 * host and with what arguments it was started. */
#include "sbx/util.h"

#include <string.h>
#include <sys/prctl.h>

static char *title_start;
static size_t title_len;

void sbx_proctitle_init(int argc, char **argv)
{
  if (argc < 1)
    return;
  title_start = argv[0];
  /* argv strings are contiguous; the area ends after the last one. */
  title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]);
}

void sbx_proctitle_set(const char *title)
{
  prctl(PR_SET_NAME, title, 0, 0, 0);
  if (!title_start || title_len == 0)
    return;
  memset(title_start, 0, title_len);
  strncpy(title_start, title, title_len);
}
