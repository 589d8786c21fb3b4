/* sbx_memory_release_setup: a long-lived process's resident set, cut to
 * what its loop uses. Most of the RSS of the supervisor and of sbx-net is
 * library code and constants faulted in (64 KiB at a time: the kernel's
 * fault-around) while parsing options, building seccomp filters, setting up
 * namespaces; their loops use a small part of it. */
#include "sbx/util.h"

#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

static gboolean has_textrel(const struct dl_phdr_info *info)
{
  for (int i = 0; i < info->dlpi_phnum; i++) {
    if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
      continue;
    const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    for (; d->d_tag != DT_NULL; d++)
      if (d->d_tag == DT_TEXTREL || (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL)))
        return TRUE;
  }
  return FALSE;
}

static int release_object(struct dl_phdr_info *info, size_t size, void *data)
{
  uintptr_t page = *(const uintptr_t *)data;
  /* the vDSO is the kernel's, not a file's */
  if (info->dlpi_addr == (ElfW(Addr))getauxval(AT_SYSINFO_EHDR) || has_textrel(info))
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    /* Read-only loads only: relocated data (RELRO included) lives in the
     * writable one and would go back to the file's bytes. Whole pages
     * inside the segment only: a page shared with a neighbour stays. */
    if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
      continue;
    uintptr_t start = (info->dlpi_addr + ph->p_vaddr + page - 1) & ~(page - 1);
    uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) & ~(page - 1);
    if (end > start)
      (void)madvise((void *)start, end - start, MADV_DONTNEED);
  }
  return 0;
}

void sbx_memory_release_setup(void)
{
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  malloc_trim(0);
  dl_iterate_phdr(release_object, &page);
}
