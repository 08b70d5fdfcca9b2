/* SPDX-License-Identifier: MIT */
/* The limit authloop is measured against: the same HTTP requests as
 * bench/cycles.c (method, path, query and body), made with libcurl's multi
 * interface on libuv and the same share handle, with no session logic at
 * all (bench/rawcurl.c: one easy handle, reused; CAINFO and NOSIGNAL set
 * once). From each answer it takes only the values it must send next, by
 * finding them in the text (no JSON parser). Prints one JSON line.
 *   raw --url U [--ca CA] --mode gateway|kuzzle|latency --n N [--wait-ms W]
 * --wait-ms: a Kuzzle refresh waits until W ms after the login's answer, as
 * authloop's waits out the second its token was issued in (0: at once). */
#include "rawcurl.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static uv_timer_t refresh_pause;
static uint64_t wait_ms, t_tokens; /* kuzzle: the refresh waits until t_tokens + wait_ms */
static rawcurl rc;
static const char *url, *mode;
static char **codes;
static int n, done, step, failed;
static char token[4096], refresh_token[256];
static uint64_t t_start;
static double *latency_us;

static void start(void);

static void request(const char *method, const char *path, const char *json, int bearer) {
  char full[512];
  snprintf(full, sizeof(full), "%s%s", url, path);
  rawcurl_request(&rc, method, full, json, bearer ? token : NULL);
}

static void take(char *out, size_t cap, const char *key) {
  if (rawcurl_take(&rc, key, out, cap) != 0)
    failed++;
}

/* kuzzle: the refresh, at once or when the second its token was issued in is
 * over (--wait-ms 1000, as authloop waits it out) */
static void refresh_now(uv_timer_t *t) {
  (void)t;
  request("POST", "/_refreshToken?expiresIn=1h", NULL, 1);
}

/* one answer arrived: the next request of the cycle */
static void advance(long status, void *ud) {
  char json[512];
  int kuzzle = strcmp(mode, "kuzzle") == 0;
  (void)ud;
  if (status < 200 || status > 299) {
    fprintf(stderr, "raw: HTTP %ld at step %d: %s\n", status, step, rc.body);
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
      t_tokens = uv_now(&loop);
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
    if (wait_ms && uv_now(&loop) < t_tokens + wait_ms) {
      uv_timer_start(&refresh_pause, refresh_now, t_tokens + wait_ms - uv_now(&loop), 0);
      break;
    }
    refresh_now(NULL);
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

int main(int argc, char **argv) {
  const char *ca;
  uint64_t user0, sys0, user1, sys1, wall0;
  url = bench_arg(argc, argv, "--url", NULL);
  ca = bench_arg(argc, argv, "--ca", NULL);
  mode = bench_arg(argc, argv, "--mode", "gateway");
  n = atoi(bench_arg(argc, argv, "--n", "2000"));
  wait_ms = (uint64_t)atoi(bench_arg(argc, argv, "--wait-ms", "0"));
  if (!url || n < 1)
    return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (strcmp(mode, "kuzzle") != 0)
    codes = bench_codes(url, ca, "raw", n, 0);
  latency_us = calloc((size_t)n, sizeof(double));
  bench_cpu_split(&user0, &sys0); /* the set-up counts, as the SDK's connect does */
  wall0 = uv_hrtime();
  uv_loop_init(&loop);
  uv_timer_init(&loop, &refresh_pause);
  rawcurl_init(&rc, &loop, ca, advance, NULL);
  start();
  while (done < n && !failed && uv_run(&loop, UV_RUN_ONCE))
    ;
  bench_cpu_split(&user1, &sys1);
  if (done == 0) {
    fprintf(stderr, "raw: no cycle completed\n");
    return 1;
  }
  if (strcmp(mode, "latency") == 0)
    printf("{\"bench\":\"raw-latency\",\"n\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", done,
           bench_percentile(latency_us, done, 50), bench_percentile(latency_us, done, 99));
  else
    printf("{\"bench\":\"raw-%s\",\"n\":%d,\"cpu_us_per_cycle\":%.1f,\"user_us_per_cycle\":%.1f,"
           "\"sys_us_per_cycle\":%.1f,\"wall_ms\":%.0f}\n",
           mode, done, (double)(user1 - user0 + sys1 - sys0) / done, (double)(user1 - user0) / done,
           (double)(sys1 - sys0) / done, (double)(uv_hrtime() - wall0) / 1e6);
  return failed || done != n;
}
