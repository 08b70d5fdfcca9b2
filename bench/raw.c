/* SPDX-License-Identifier: MIT */
/* The limit authloop is measured against: the same HTTP requests as
 * bench/cycles.c (method, path, query and body), made with libcurl's multi
 * interface on libuv and the same share handle, with no session logic at
 * all. It is as cheap as such a program can fairly be: one easy handle,
 * reused; CAINFO and NOSIGNAL set once; from each answer it takes only the
 * values it must send next, by finding them in the text (no JSON parser).
 * Prints one JSON line.
 *   raw --url U [--ca CA] --mode gateway|kuzzle|latency --n N */
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t loop;
static uv_timer_t timer;
static CURLM *multi;
static CURLSH *share;
static CURL *easy; /* the one easy handle, reused for every request */
static struct curl_slist *headers;
static const char *url, *ca, *mode;
static char **codes;
static int n, done, step, failed;
static char token[4096], refresh_token[256], body[65536], post[1024];
static size_t body_len;
static uint64_t t_start;
static double *latency_us;

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
} sock;

static void start(void);

static size_t collect(char *p, size_t size, size_t k, void *ud) {
  size_t len = size * k;
  (void)ud;
  if (body_len + len >= sizeof(body))
    return 0;
  memcpy(body + body_len, p, len);
  body_len += len;
  body[body_len] = '\0';
  return len;
}

static void request(const char *method, const char *path, const char *json, int bearer) {
  char full[512], auth[4200];
  snprintf(full, sizeof(full), "%s%s", url, path);
  curl_slist_free_all(headers);
  headers = json ? curl_slist_append(NULL, "Content-Type: application/json") : NULL;
  if (bearer) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, auth);
  }
  body_len = 0;
  curl_easy_setopt(easy, CURLOPT_URL, full);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    snprintf(post, sizeof(post), "%s", json ? json : ""); /* lives until the answer */
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, post);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
  }
  curl_multi_add_handle(multi, easy);
}

/* The one thing taken from an answer: the string value of the first "key"
 * in the text (tokens hold no escapes). */
static void take(char *out, size_t cap, const char *key) {
  char pattern[64];
  const char *v, *end;
  snprintf(pattern, sizeof(pattern), "\"%s\":\"", key);
  if (!(v = strstr(body, pattern)) || !(end = strchr(v += strlen(pattern), '"')) ||
      (size_t)(end - v) >= cap) {
    failed++;
    return;
  }
  memcpy(out, v, (size_t)(end - v));
  out[end - v] = '\0';
}

/* one answer arrived: the next request of the cycle */
static void advance(long status) {
  char json[512];
  int kuzzle = strcmp(mode, "kuzzle") == 0;
  if (status < 200 || status > 299) {
    fprintf(stderr, "raw: HTTP %ld at step %d: %s\n", status, step, body);
    failed++;
    return;
  }
  if (strcmp(mode, "latency") == 0) {
    /* as authloop's: a login timed, then a logout that is not (a client
     * logs out before it logs in again) */
    if (step++ == 0) {
      latency_us[done] = (double)(uv_hrtime() - t_start) / 1000.0;
      take(token, sizeof(token), "accessToken");
      request("POST", "/auth/logout", NULL, 1);
    } else {
      done++;
      start();
    }
    return;
  }
  switch (step++) {
  case 0: /* logged in */
    if (kuzzle) {
      take(token, sizeof(token), "jwt");
      request("GET", "/users/_me", NULL, 1);
    } else {
      take(token, sizeof(token), "accessToken");
      take(refresh_token, sizeof(refresh_token), "refreshToken");
      snprintf(json, sizeof(json), "{\"refreshToken\":\"%s\"}", refresh_token);
      request("POST", "/auth/refresh", json, 0);
      step = 2;
    }
    break;
  case 1: /* kuzzle: got the user */
    request("POST", "/_refreshToken?expiresIn=1h", NULL, 1);
    break;
  case 2: /* refreshed */
    take(token, sizeof(token), kuzzle ? "jwt" : "accessToken");
    request("POST", kuzzle ? "/_logout" : "/auth/logout", NULL, 1);
    break;
  default: /* logged out */
    done++;
    start();
  }
}

static void start(void) {
  char json[512];
  if (done == n || failed)
    return;
  step = 0;
  t_start = uv_hrtime();
  if (strcmp(mode, "kuzzle") == 0) {
    request("POST", "/_login/local?expiresIn=1h",
            "{\"username\":\"kuzzle-user\",\"password\":\"kuzzle-pass\"}", 0);
  } else {
    snprintf(json, sizeof(json), "{\"authorizationCode\":\"%s\"}", codes[done]);
    request("POST", "/auth/login", json, 0);
  }
}

static void drain(void) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(multi, &left))) {
    long status = 0;
    CURLcode result = m->data.result;
    if (m->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(multi, m->easy_handle);
    advance(result == CURLE_OK ? status : 0);
  }
}

static void on_poll(uv_poll_t *p, int status, int events) {
  int flags = status < 0 ? CURL_CSELECT_ERR : 0, running;
  if (status >= 0)
    flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) |
            (events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
  curl_multi_socket_action(multi, ((sock *)p)->fd, flags, &running);
  drain();
}

static void on_timeout(uv_timer_t *t) {
  int running;
  (void)t;
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain();
}

static void sock_closed(uv_handle_t *h) { free(h); }

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  sock *k = socketp;
  (void)e;
  (void)userp;
  if (what == CURL_POLL_REMOVE) {
    if (k) {
      curl_multi_assign(multi, s, NULL);
      uv_close((uv_handle_t *)&k->poll, sock_closed);
    }
    return 0;
  }
  if (!k) {
    k = calloc(1, sizeof(*k));
    k->fd = s;
    uv_poll_init_socket(&loop, &k->poll, s);
    curl_multi_assign(multi, s, k);
  }
  uv_poll_start(&k->poll,
                (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0),
                on_poll);
  return 0;
}

static int timer_cb(CURLM *m, long ms, void *ud) {
  (void)m;
  (void)ud;
  if (ms < 0)
    uv_timer_stop(&timer);
  else
    uv_timer_start(&timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

int main(int argc, char **argv) {
  uint64_t cpu0, wall0;
  url = bench_arg(argc, argv, "--url", NULL);
  ca = bench_arg(argc, argv, "--ca", NULL);
  mode = bench_arg(argc, argv, "--mode", "gateway");
  n = atoi(bench_arg(argc, argv, "--n", "2000"));
  if (!url || n < 1)
    return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (strcmp(mode, "kuzzle") != 0)
    codes = bench_codes(url, ca, "raw", n, 0);
  latency_us = calloc((size_t)n, sizeof(double));
  cpu0 = bench_cpu_us(); /* the set-up counts, as the SDK's connect does */
  wall0 = uv_hrtime();
  uv_loop_init(&loop);
  uv_timer_init(&loop, &timer);
  multi = curl_multi_init();
  share = curl_share_init();
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
  easy = curl_easy_init();
  if (ca)
    curl_easy_setopt(easy, CURLOPT_CAINFO, ca);
  curl_easy_setopt(easy, CURLOPT_SHARE, share);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
  start();
  while (done < n && !failed && uv_run(&loop, UV_RUN_ONCE))
    ;
  if (strcmp(mode, "latency") == 0)
    printf("{\"bench\":\"raw-latency\",\"n\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", done,
           bench_percentile(latency_us, done, 50), bench_percentile(latency_us, done, 99));
  else
    printf("{\"bench\":\"raw-%s\",\"n\":%d,\"cpu_us_per_cycle\":%.1f,\"wall_ms\":%.0f}\n", mode,
           done, (double)(bench_cpu_us() - cpu0) / done, (double)(uv_hrtime() - wall0) / 1e6);
  return failed || done != n;
}
