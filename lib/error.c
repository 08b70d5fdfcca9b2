/* SPDX-License-Identifier: MIT */
/* The error table (messages and names generated from AUTHLOOP_ERRNO_MAP)
 * and the version. */
#include "util.h"

typedef struct {
  int code;
  const char *name, *msg;
} entry;

#define AUTHLOOP__ERR_ENTRY(suffix, value, name, msg) {value, name, msg},
static const entry table[] = {AUTHLOOP_ERRNO_MAP(AUTHLOOP__ERR_ENTRY)};

static const entry *find(int err) {
  size_t i;
  for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (table[i].code == err)
      return &table[i];
  return NULL;
}

const char *authloop_strerror(int err) {
  const entry *e;
  if (err == 0)
    return "success";
  e = find(err);
  return e ? e->msg : "unknown error";
}

const char *authloop_err_name(int err) {
  const entry *e;
  if (err == 0)
    return "OK";
  e = find(err);
  return e ? e->name : "UNKNOWN";
}

unsigned authloop_version(void) { return AUTHLOOP_VERSION_HEX; }
const char *authloop_version_string(void) { return AUTHLOOP_VERSION_STRING; }
