/* util/sync.c: an error crosses from a child to sbx with its errno (or sbx
 * code) and text, so the parent decides on the code (issue 11). */
#include "sbx/sync.h"
#include "sbx/util.h"

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child fails: its error arrives whole in the parent. */
static void roundtrip(GQuark domain, int code, const char *message)
{
  int fds[2];
  g_autoptr(GError) err = NULL;
  g_assert_true(sbx_sync_pair(fds, &err));
  pid_t pid = fork();
  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    close(fds[0]);
    g_autoptr(GError) mine = g_error_new_literal(domain, code, message);
    sbx_sync_send_error(fds[1], mine);
    _exit(0);
  }
  close(fds[1]);
  g_autofree char *payload = NULL;
  g_assert_false(sbx_sync_recv(fds[0], &payload, "child", &err));
  g_assert_error(err, domain, code);
  g_assert_cmpstr(err->message, ==, message);
  close(fds[0]);
  waitpid(pid, NULL, 0);
}

static void test_errno_survives(void)
{
  roundtrip(SBX_ERRNO_ERROR, EINVAL, "overlay lowerdir+: Invalid argument");
  roundtrip(SBX_ERRNO_ERROR, ENOSYS, "fsopen overlay: Function not implemented");
  roundtrip(SBX_ERRNO_ERROR, 0, "");
}

static void test_sbx_code_survives(void)
{
  roundtrip(SBX_ERROR, SBX_ERROR_INVALID, "layer: refused: ../x: outside the layer");
  roundtrip(SBX_ERROR, SBX_ERROR_USAGE, "a message: with: colons 12:34");
}

static void test_errno_helpers(void)
{
  g_autoptr(GError) err = NULL;
  errno = EACCES;
  g_assert_false(sbx_fail_errno(&err, "open %s", "/x"));
  g_assert_error(err, SBX_ERRNO_ERROR, EACCES);
  g_assert_cmpint(sbx_error_errno(err), ==, EACCES);
  g_assert_cmpstr(err->message, ==, "open /x: Permission denied");
  g_clear_error(&err);
  sbx_fail(&err, SBX_ERROR_INVALID, "no");
  g_assert_cmpint(sbx_error_errno(err), ==, 0);
  g_assert_cmpint(sbx_error_errno(NULL), ==, 0);
}

static void test_ok_and_eof(void)
{
  int fds[2];
  g_autoptr(GError) err = NULL;
  g_assert_true(sbx_sync_pair(fds, &err));
  g_assert_true(sbx_sync_send_ok(fds[1], "ok 123"));
  g_autofree char *payload = NULL;
  g_assert_true(sbx_sync_recv(fds[0], &payload, "child", &err));
  g_assert_cmpstr(payload, ==, "ok 123");
  close(fds[1]);
  g_assert_false(sbx_sync_recv(fds[0], NULL, "child", &err));
  g_assert_error(err, SBX_ERROR, SBX_ERROR_FAILED);
  g_assert_cmpstr(err->message, ==, "child: exited during setup");
  close(fds[0]);
}

static void test_exit_status(void)
{
  g_assert_cmpint(sbx_exit_status(3 << 8), ==, 3);               /* exited 3 */
  g_assert_cmpint(sbx_exit_status(9), ==, 128 + 9);              /* killed by SIGKILL */
  g_assert_cmpint(sbx_exit_status(0x137f), ==, SBX_EXIT_FAILED); /* stopped: not an end */
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/sync/errno-survives", test_errno_survives);
  g_test_add_func("/sync/sbx-code-survives", test_sbx_code_survives);
  g_test_add_func("/sync/ok-and-eof", test_ok_and_eof);
  g_test_add_func("/error/errno-helpers", test_errno_helpers);
  g_test_add_func("/error/exit-status", test_exit_status);
  return g_test_run();
}
