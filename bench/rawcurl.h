/* SPDX-License-Identifier: MIT */
/* The limit's plumbing (bench/raw.c, bench/latency.c): libcurl's multi
 * interface on a libuv loop, as cheap as such a program can fairly be: one
 * easy handle reused for every request, CAINFO and NOSIGNAL set once, a share
 * handle for DNS and TLS sessions, the answer's body collected as text. */
#ifndef AUTHLOOP_BENCH_RAWCURL_H
#define AUTHLOOP_BENCH_RAWCURL_H

#include <curl/curl.h>
#include <stddef.h>
#include <uv.h>

/* status: the HTTP status, 0 when the transfer failed */
typedef void (*rawcurl_done)(long status, void *ud);

typedef struct rawcurl {
  uv_loop_t *loop;
  uv_timer_t timer;
  CURLM *multi;
  CURLSH *share;
  CURL *easy; /* the one easy handle */
  struct curl_slist *headers;
  rawcurl_done done;
  void *ud;
  struct rawcurl *hub; /* whose multi handle it uses: itself, or another's (rawcurl_join) */
  int joined;          /* others use this one's multi handle */
  size_t body_len;
  char body[65536]; /* the answer, NUL-terminated */
  char post[1024];  /* the request's body, alive until the answer */
} rawcurl;

void rawcurl_init(rawcurl *r, uv_loop_t *loop, const char *ca, rawcurl_done done, void *ud);
/* Another client on hub's loop and multi handle (its connections, its
 * share handle): an easy handle of its own, its own answer and callback. */
void rawcurl_join(rawcurl *r, rawcurl *hub, const char *ca, rawcurl_done done, void *ud);
/* One request: url is the whole URL; json the body (POST) or NULL; method
 * "GET" or "POST"; bearer the token to send, or NULL. */
void rawcurl_request(rawcurl *r, const char *method, const char *url, const char *json,
                     const char *bearer);
/* The string value of the first "key" in the answer's text (tokens hold no
 * escapes), into out: 0, or -1 when absent or too long. */
int rawcurl_take(const rawcurl *r, const char *key, char *out, size_t cap);

#endif
