/* SPDX-License-Identifier: MIT */
/* The limit authloop is measured against: the same HTTP requests as
 * bench/cycles.c, made with libcurl's multi interface on libuv and the same
 * share handle, with no session logic at all (tokens are pulled out of the
 * answers with jansson, nothing else). Prints one JSON line.
 *   raw --url U --ca CA --mode gateway|kuzzle|latency --n N */
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
static const char *url, *ca, *mode;
static char **codes;
static int n, done, step, failed;
static char token[4096], refresh_token[256], body[65536];
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
  CURL *e = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  snprintf(full, sizeof(full), "%s%s", url, path);
  if (bearer) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
  }
  body_len = 0;
  curl_easy_setopt(e, CURLOPT_URL, full);
  curl_easy_setopt(e, CURLOPT_CAINFO, ca);
  curl_easy_setopt(e, CURLOPT_SHARE, share);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_PRIVATE, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (json)
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, json);
  else if (strcmp(method, "POST") == 0)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  curl_multi_add_handle(multi, e);
}

/* the one thing taken from an answer: a token, at a JSON path of up to 2 keys */
static void take(char *out, size_t cap, const char *k1, const char *k2) {
  json_t *j = json_loads(body, 0, NULL), *v = json_object_get(j, k1);
  if (k2)
    v = json_object_get(v, k2);
  if (json_is_string(v))
    snprintf(out, cap, "%s", json_string_value(v));
  else
    failed++;
  json_decref(j);
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
    latency_us[done++] = (double)(uv_hrtime() - t_start) / 1000.0;
    start();
    return;
  }
  switch (step++) {
  case 0: /* logged in */
    if (kuzzle) {
      take(token, sizeof(token), "result", "jwt");
      request("GET", "/_me", NULL, 1);
    } else {
      take(token, sizeof(token), "accessToken", NULL);
      take(refresh_token, sizeof(refresh_token), "refreshToken", NULL);
      snprintf(json, sizeof(json), "{\"refreshToken\":\"%s\"}", refresh_token);
      request("POST", "/auth/refresh", json, 0);
      step = 2;
    }
    break;
  case 1: /* kuzzle: got the user */
    request("POST", "/_refreshToken?expiresIn=1h", NULL, 1);
    break;
  case 2: /* refreshed */
    take(token, sizeof(token), kuzzle ? "result" : "accessToken", kuzzle ? "jwt" : NULL);
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
    struct curl_slist *h;
    if (m->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
    curl_multi_remove_handle(multi, m->easy_handle);
    curl_easy_cleanup(m->easy_handle);
    curl_slist_free_all(h);
    advance(m->data.result == CURLE_OK ? status : 0);
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
  if (!url || !ca || n < 1)
    return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (strcmp(mode, "kuzzle") != 0)
    codes = bench_codes(url, ca, "raw", n, 0);
  latency_us = calloc((size_t)n, sizeof(double));
  uv_loop_init(&loop);
  uv_timer_init(&loop, &timer);
  multi = curl_multi_init();
  share = curl_share_init();
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
  cpu0 = bench_cpu_us();
  wall0 = uv_hrtime();
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
