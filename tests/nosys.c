/* nosys: run a program with some system calls failing, to test sbx's
 * fallbacks from outside the binary (crun's tests/no_openat2.c does the same):
 *
 *   nosys SYSCALL[=ERRNO][,SYSCALL[=ERRNO]...] PROGRAM [ARG...]
 *
 * Each named call fails with ERRNO (a name such as EINVAL or a number;
 * default ENOSYS, what an older kernel says). Unprivileged: sets
 * no_new_privs first, so setuid helpers (newuidmap) cannot work beneath it;
 * tests run sbx with --userns single under it. The filter is inherited by
 * every process sbx starts. Test-only: never installed. */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int errno_value(const char *s)
{
  static const struct {
    const char *name;
    int value;
  } names[] = {{"ENOSYS", ENOSYS}, {"EINVAL", EINVAL}, {"EPERM", EPERM},
               {"E2BIG", E2BIG},   {"ENOMEM", ENOMEM}, {"EACCES", EACCES}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i].name) == 0)
      return names[i].value;
  char *end;
  long v = strtol(s, &end, 10);
  return *s && !*end && v > 0 && v < 4096 ? (int)v : -1;
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: nosys SYSCALL[=ERRNO][,...] PROGRAM [ARG...]\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx)
    return 2;
  char *list = strdup(argv[1]);
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    int e = ENOSYS;
    if (eq) {
      *eq = '\0';
      e = errno_value(eq + 1);
    }
    int nr = seccomp_syscall_resolve_name(tok);
    if (nr == __NR_SCMP_ERROR || e < 0) {
      fprintf(stderr, "nosys: unknown system call or errno: %s\n", tok);
      return 2;
    }
    int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((unsigned)e), nr, 0);
    if (r < 0) {
      fprintf(stderr, "nosys: %s: %s\n", tok, strerror(-r));
      return 2;
    }
  }
  free(list);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    perror("nosys: no_new_privs");
    return 2;
  }
  int r = seccomp_load(ctx);
  if (r < 0) {
    fprintf(stderr, "nosys: load filter: %s\n", strerror(-r));
    return 2;
  }
  seccomp_release(ctx);
  execvp(argv[2], argv + 2);
  fprintf(stderr, "nosys: %s: %s\n", argv[2], strerror(errno));
  return 127;
}
