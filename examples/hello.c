/* The built-in example image's program: a static binary, so the image needs
 * nothing else. It shows a little of what the sandbox looks like inside. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  printf("Hello from sbx!\n"
         "This message shows that your installation appears to be working correctly.\n"
         "It ran as pid %d, uid %d, on host '%s': its own namespaces, rootless.\n",
         (int)getpid(), (int)getuid(), host);
  return 0;
}
