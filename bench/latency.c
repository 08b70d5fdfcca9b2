/* SPDX-License-Identifier: MIT */
/* Login latency added by authloop over the limit, as paired samples: one
 * process and one loop run both, a gateway login through authloop and the
 * same login through bench/rawcurl.c, one after the other (in turn first),
 * so that each pair meets the same server, load and caches, and what drifts
 * (the server's pauses, the machine's load) falls on both. Each login is
 * timed from the call to its answer (authloop: its loginAttempt) and is
 * followed by a logout that is not timed. Prints one JSON line: each
 * program's p50, and the p25 / p50 / p75 of the paired differences.
 *   latency --url U [--ca CA] --n N */
#include "rawcurl.h"
#include "util.h"

#include <authloop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uv_loop_t loop;
  authloop_ctx *ctx;
  authloop_client *c;
  rawcurl rc;
  const char *url;
  char **codes_a, **codes_b;
  int n, pair, half, failed; /* half: 0 or 1 of the pair done */
  uint64_t t0;
  double *a_us, *b_us;
  char token[4096];
} bench;

static void step(bench *b);

/* which program goes now: in turn, authloop first on even pairs */
static int authloop_now(const bench *b) { return (b->pair % 2 == 0) == (b->half == 0); }

static void half_done(bench *b) {
  if (++b->half == 2) {
    b->half = 0;
    b->pair++;
  }
  step(b);
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  bench *b = ud;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    b->a_us[b->pair] = (double)(uv_hrtime() - b->t0) / 1000.0;
    if (!ev->success) {
      fprintf(stderr, "latency: authloop login failed: %s\n", ev->message);
      b->failed++;
      return;
    }
    authloop_logout(c);
  } else if (ev->type == AUTHLOOP_EV_LOGOUT) {
    if (ev->error)
      b->failed++;
    half_done(b);
  }
}

static void on_raw(long status, void *ud) {
  bench *b = ud;
  if (status < 200 || status > 299) {
    fprintf(stderr, "latency: raw HTTP %ld: %s\n", status, b->rc.body);
    b->failed++;
    return;
  }
  if (b->t0) { /* the login's answer */
    char url[512];
    b->b_us[b->pair] = (double)(uv_hrtime() - b->t0) / 1000.0;
    b->t0 = 0;
    if (rawcurl_take(&b->rc, "accessToken", b->token, sizeof(b->token)) != 0) {
      b->failed++;
      return;
    }
    snprintf(url, sizeof(url), "%s/auth/logout", b->url);
    rawcurl_request(&b->rc, "POST", url, NULL, b->token);
  } else {
    half_done(b);
  }
}

static void step(bench *b) {
  if (b->pair == b->n || b->failed) {
    authloop_ctx_close(b->ctx, NULL, NULL);
    return;
  }
  if (authloop_now(b)) {
    b->t0 = uv_hrtime();
    authloop_login_code(b->c, b->codes_a[b->pair]);
  } else {
    char url[512], json[512];
    snprintf(url, sizeof(url), "%s/auth/login", b->url);
    snprintf(json, sizeof(json), "{\"authorizationCode\":\"%s\"}", b->codes_b[b->pair]);
    b->t0 = uv_hrtime();
    rawcurl_request(&b->rc, "POST", url, json, NULL);
  }
}

int main(int argc, char **argv) {
  const char *ca = bench_arg(argc, argv, "--ca", NULL);
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  bench b = {0};
  double *diff;
  int i, t;
  b.url = bench_arg(argc, argv, "--url", NULL);
  b.n = atoi(bench_arg(argc, argv, "--n", "1000"));
  if (!b.url || b.n < 1)
    return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  b.codes_a = bench_codes(b.url, ca, "bench", b.n, 0);
  b.codes_b = bench_codes(b.url, ca, "raw", b.n, 0);
  b.a_us = calloc((size_t)b.n, sizeof(double));
  b.b_us = calloc((size_t)b.n, sizeof(double));
  diff = calloc((size_t)b.n, sizeof(double));
  uv_loop_init(&b.loop);
  co.ca_file = ca;
  if (authloop_ctx_new(&b.loop, &co, &b.ctx) != 0)
    return 1;
  o.provider = "gateway";
  o.base_url = b.url;
  if (authloop_client_new(b.ctx, &o, &b.c) != 0)
    return 1;
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(b.c, (authloop_event_type)t, on_event, &b);
  rawcurl_init(&b.rc, &b.loop, ca, on_raw, &b);
  step(&b);
  while (b.pair < b.n && !b.failed && uv_run(&b.loop, UV_RUN_ONCE))
    ;
  for (i = 0; i < b.pair; i++)
    diff[i] = b.a_us[i] - b.b_us[i];
  printf("{\"bench\":\"latency-paired\",\"n\":%d,\"authloop_p50_us\":%.1f,\"raw_p50_us\":%.1f,"
         "\"added_p25_us\":%.1f,\"added_p50_us\":%.1f,\"added_p75_us\":%.1f}\n",
         b.pair, bench_percentile(b.a_us, b.pair, 50), bench_percentile(b.b_us, b.pair, 50),
         bench_percentile(diff, b.pair, 25), bench_percentile(diff, b.pair, 50),
         bench_percentile(diff, b.pair, 75));
  bench_codes_free(b.codes_a, b.n);
  bench_codes_free(b.codes_b, b.n);
  return b.failed || b.pair != b.n;
}
