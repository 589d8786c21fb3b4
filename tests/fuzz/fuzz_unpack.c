/* libFuzzer target: one layer blob (tar, maybe gzip/bzip2/xz/zstd) unpacked
 * by sbx_unpack_layer into a fresh scratch directory, which is removed after
 * each input. What must hold: no crash, no sanitizer report, nothing written
 * outside the scratch directory's layer root (checked: the sibling "outside"
 * directory stays empty). */
#include "fuzz_common.h"

#include "sbx/source.h"
#include "sbx/store.h"
#include "sbx/util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static gboolean dir_empty(const char *path)
{
  DIR *d = opendir(path);
  if (!d)
    return FALSE;
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d)) != NULL)
    n++;
  closedir(d);
  return n == 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_quiet();
  char *scratch = fuzz_scratch_new();
  int blobfd;
  g_autofree char *blob = fuzz_memfd_path(data, size, &blobfd);
  g_autofree char *root = g_build_filename(scratch, "root", NULL);
  g_autofree char *outside = g_build_filename(scratch, "outside", NULL);
  if (mkdir(root, 0755) < 0 || mkdir(outside, 0755) < 0)
    abort();
  int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    abort();
  SbxIdMap map = {.mode = SBX_USERNS_SINGLE, .uid = getuid(), .gid = getgid()};
  SbxLayerRef ref = {.member = (char *)"blob", .size = -1}; /* digests computed, not checked */
  SbxUnpackStats stats = {0};
  g_autoptr(GError) err = NULL;
  g_autoptr(SbxStream) stream = sbx_stream_open_file(blob, &err);
  if (!stream)
    abort();
  sbx_unpack_layer(stream, &ref, rootfd, &map, 64u << 20, &stats, NULL, &err);
  g_free(stats.diff_id);
  close(rootfd);
  close(blobfd);
  if (!dir_empty(outside)) {
    g_printerr("fuzz_unpack: an entry was written outside the layer root\n");
    abort();
  }
  fuzz_scratch_remove(scratch);
  return 0;
}
