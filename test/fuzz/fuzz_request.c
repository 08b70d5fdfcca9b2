/* SPDX-License-Identifier: MIT */
/* libFuzzer: building requests. The input is split at NUL bytes into a base
 * URL, a literal path, a path segment, a query value and a header value.
 * What must hold: a URL that builds has no byte that could break a request
 * line; a segment comes back whole when its escape is undone; a literal path
 * the path rule takes never leaves the base path; the header rule agrees
 * with a plain byte loop; and a Date header is read without overflow. */
#include "transport.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int plain_rule(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
      return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1), *field[5] = {0}, *p, *url;
  authloop__request r = {0};
  size_t i, n = 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  for (p = buf; n < 5; p += strlen(p) + 1) {
    field[n++] = p;
    if (p + strlen(p) >= buf + size)
      break;
  }
  for (i = n; i < 5; i++)
    field[i] = "";
  if (plain_rule(field[4], strlen(field[4])) !=
      authloop__header_value_ok(field[4], strlen(field[4])))
    abort();
  r.method = "POST";
  r.base = *field[0] ? field[0] : "https://h.example/base";
  if (authloop__path_text_ok(field[1]))
    authloop__request_path(&r, field[1], 0);
  if (*field[2])
    authloop__request_path(&r, field[2], 1);
  authloop__request_query(&r, "q", field[3]);
  if (authloop__request_url(&r, &url) == 0) {
    const char *seg;
    for (i = 0; url[i]; i++)
      if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] == 0x7f)
        abort();
    /* the segment is the last part of the path: undone, it is what went in */
    if (*field[2] && (seg = strrchr(strtok(url + strlen("https://"), "?"), '/'))) {
      int len;
      char *back = curl_easy_unescape(NULL, seg + 1, 0, &len);
      if (!back || (size_t)len != strlen(field[2]) || memcmp(back, field[2], (size_t)len) != 0)
        abort();
      curl_free(back);
    }
    curl_free(url);
  }
  {
    time_t d = curl_getdate(field[3], NULL); /* as the transport reads a Date header */
    long long ms = d > 0 && (long long)d < LLONG_MAX / 1000 ? (long long)d * 1000 : 0;
    if (ms < 0)
      abort();
  }
  free(buf);
  return 0;
}
