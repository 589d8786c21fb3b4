/* libFuzzer target: a Docker/OCI seccomp JSON profile compiled to BPF by
 * sbx_seccomp_compile (what `sbx run --security-opt seccomp=FILE` hands to
 * sbx-store). Compiled only, never loaded. The first byte picks the
 * capability set the profile's "includes"/"excludes" are judged against. */
#include "fuzz_common.h"

#include "sbx/security.h"
#include "sbx/util.h"

#include <linux/filter.h>
#include <string.h>
#include <unistd.h>

static gboolean bpf_framing_ok(GBytes *bpf)
{
  gsize len, off = 0;
  const guint8 *p = g_bytes_get_data(bpf, &len);
  while (off < len) {
    guint32 count;
    if (len - off < sizeof count)
      return FALSE;
    memcpy(&count, p + off, sizeof count);
    off += sizeof count;
    if (count == 0 || count > BPF_MAXINSNS || len - off < (gsize)count * 8)
      return FALSE;
    off += (gsize)count * 8;
  }
  return len > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_quiet();
  if (size < 1)
    return 0;
  SbxCapSet caps = data[0] & 1 ? sbx_caps_default() : data[0] & 2 ? ~0ull : 0;
  int fd;
  g_autofree char *path = fuzz_memfd_path(data + 1, size - 1, &fd);
  g_autoptr(GError) err = NULL;
  g_autoptr(GBytes) bpf = sbx_seccomp_compile(path, caps, &err);
  /* Filters as sbx_seccomp_install reads them (a guint32 count, then that
   * many instructions, the kernel's limit at most), or an error. */
  if (bpf ? !bpf_framing_ok(bpf) || err : !err) {
    g_printerr("fuzz_seccomp: bpf %s (%zu bytes), error %s\n", bpf ? "made" : "none",
               bpf ? g_bytes_get_size(bpf) : 0, err ? err->message : "none");
    __builtin_trap();
  }
  close(fd);
  return 0;
}
