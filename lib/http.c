/* SPDX-License-Identifier: MIT */
/* Filling a request description (see http.h). */
#include "http.h"

#include "json.h"
#include "util.h"

#include <string.h>

int authloop__request_path(authloop__request *r, const char *text, int segment) {
  size_t i;
  for (i = 0; i < AUTHLOOP__MAX_PATH; i++) {
    if (!r->path[i].text) {
      r->path[i].text = text;
      r->path[i].segment = segment;
      return 0;
    }
  }
  return AUTHLOOP_ENOMEM;
}

static int add_pair(authloop__pair *pairs, size_t n, const char *name, const char *value) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (!pairs[i].name) {
      pairs[i].name = name;
      pairs[i].value = value;
      return 0;
    }
  }
  return AUTHLOOP_ENOMEM;
}

int authloop__request_query(authloop__request *r, const char *name, const char *value) {
  return add_pair(r->query, AUTHLOOP__MAX_QUERY, name, value);
}

int authloop__request_header(authloop__request *r, const char *name, const char *value) {
  return add_pair(r->headers, AUTHLOOP__MAX_HEADERS, name, value);
}

int authloop__request_json_object(authloop__request *r, const char *const *pairs, size_t n) {
  size_t i;
  for (i = 0; i < 2 * n; i++)
    if (!pairs[i] || !authloop__utf8_ok(pairs[i]))
      return AUTHLOOP_EINVAL;
  authloop__secret_free(r->json);
  return (r->json = authloop__jw_object(pairs, n)) ? 0 : AUTHLOOP_ENOMEM;
}

void authloop__request_clear(authloop__request *r) {
  authloop__secret_free(r->json);
  memset(r, 0, sizeof(*r));
}
