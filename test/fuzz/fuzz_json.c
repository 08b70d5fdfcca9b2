/* SPDX-License-Identifier: MIT */
/* libFuzzer: lib/json.c against jansson on any bytes (test/json_compare.h):
 * the scanner that reads answers must accept exactly what jansson accepted,
 * and read the same values. */
#include "../json_compare.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  const char *why = json_compare((const char *)data, size);
  if (why) {
    fprintf(stderr, "json.c and jansson differ: %s\n", why);
    abort();
  }
  return 0;
}
