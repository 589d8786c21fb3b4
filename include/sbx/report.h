/* cli/report.c: the --report JSON object. */
#pragma once

#include <glib.h>
#include "sbx/sandbox.h"

typedef struct {
  const SbxRunSpec *spec; /* spec->result filled by the run */
  const char *image_ref;  /* IMAGE as given */
  char **command;         /* the argv the program got (NULL: not known) */
  int exit_code;          /* sbx's exit status */
  const char *error;      /* sbx's error line, NULL when none */
} SbxReport;

char *sbx_report_json(const SbxReport *r);
