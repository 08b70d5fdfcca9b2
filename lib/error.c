/* SPDX-License-Identifier: MIT */
/* The error table (messages and names generated from AUTHLOOP_ERRNO_MAP)
 * and the version. */
#include "util.h"

#define AUTHLOOP__ERR_NAME(suffix, name, msg) name,
#define AUTHLOOP__ERR_MSG(suffix, name, msg)  msg,
static const char *const err_names[] = {AUTHLOOP_ERRNO_MAP(AUTHLOOP__ERR_NAME)};
static const char *const err_msgs[] = {AUTHLOOP_ERRNO_MAP(AUTHLOOP__ERR_MSG)};

static int err_index(int err) {
  long long i = -3001LL - err; /* wide: err may be INT_MAX */
  return i >= 0 && i < AUTHLOOP__ERRNO_COUNT ? (int)i : -1;
}

const char *authloop_strerror(int err) {
  int i;
  if (err == 0)
    return "success";
  i = err_index(err);
  return i < 0 ? "unknown error" : err_msgs[i];
}

const char *authloop_err_name(int err) {
  int i;
  if (err == 0)
    return "OK";
  i = err_index(err);
  return i < 0 ? "UNKNOWN" : err_names[i];
}

unsigned authloop_version(void) { return AUTHLOOP_VERSION_HEX; }
const char *authloop_version_string(void) { return AUTHLOOP_VERSION_STRING; }
