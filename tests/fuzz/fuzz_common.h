/* Shared by the libFuzzer targets: inputs as files, scratch directories. */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* The input as a file: a memfd, named by the returned /proc/self/fd path
 * (*fd to close). */
char *fuzz_memfd_path(const uint8_t *data, size_t size, int *fd);
/* A fresh empty directory under $TMPDIR; fuzz_scratch_remove deletes it. */
char *fuzz_scratch_new(void);
void fuzz_scratch_remove(char *dir);
/* Quiet: no log lines for every refused input. */
void fuzz_quiet(void);
