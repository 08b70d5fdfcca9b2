/* SPDX-License-Identifier: MIT */
/* authloop doing full cycles (login -> refresh -> logout) back to back on one
 * client, or timed logins, for bench/run.sh. Prints one JSON line.
 *   cycles --url U --ca CA --mode gateway|kuzzle|latency --n N */
#include "util.h"

#include <authloop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  authloop_ctx *ctx;
  authloop_client *c;
  const char *mode;
  char **codes;
  int n, done, failed;
  uint64_t t_login;
  double *latency_us;
} run;

static void next(run *r);

static void on_refreshed(authloop_client *c, int status, void *ud) {
  run *r = ud;
  if (status != 0)
    r->failed++;
  authloop_logout(c);
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  run *r = ud;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    if (!ev->success) {
      fprintf(stderr, "login failed: %s\n", ev->message);
      r->failed++;
      authloop_ctx_close(r->ctx, NULL, NULL);
      return;
    }
    if (strcmp(r->mode, "latency") == 0) {
      r->latency_us[r->done] = (double)(uv_hrtime() - r->t_login) / 1000.0;
      authloop_logout(c);
    } else {
      authloop_refresh(c, on_refreshed, r);
    }
  } else if (ev->type == AUTHLOOP_EV_LOGOUT) {
    if (ev->error)
      r->failed++;
    r->done++;
    next(r);
  }
}

static void next(run *r) {
  if (r->done == r->n || r->failed) {
    authloop_ctx_close(r->ctx, NULL, NULL);
    return;
  }
  r->t_login = uv_hrtime();
  if (strcmp(r->mode, "kuzzle") == 0)
    authloop_login_local(r->c, "kuzzle-user", "kuzzle-pass", "1h");
  else
    authloop_login_code(r->c, r->codes[r->done]);
}

int main(int argc, char **argv) {
  const char *url = bench_arg(argc, argv, "--url", NULL), *ca = bench_arg(argc, argv, "--ca", NULL);
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  run r = {0};
  uv_loop_t loop;
  uint64_t cpu0, wall0;
  int t;
  r.mode = bench_arg(argc, argv, "--mode", "gateway");
  r.n = atoi(bench_arg(argc, argv, "--n", "2000"));
  if (!url || r.n < 1)
    return 2;
  if (strcmp(r.mode, "kuzzle") != 0)
    r.codes = bench_codes(url, ca, "bench", r.n, 0);
  r.latency_us = calloc((size_t)r.n, sizeof(double));
  cpu0 = bench_cpu_us(); /* the set-up counts, as the SDK's connect does */
  wall0 = uv_hrtime();
  uv_loop_init(&loop);
  co.ca_file = ca;
  if (authloop_ctx_new(&loop, &co, &r.ctx) != 0)
    return 1;
  o.provider = strcmp(r.mode, "kuzzle") == 0 ? "kuzzle" : "gateway";
  o.base_url = url;
  if (authloop_client_new(r.ctx, &o, &r.c) != 0)
    return 1;
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(r.c, (authloop_event_type)t, on_event, &r);
  next(&r);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (strcmp(r.mode, "latency") == 0)
    printf("{\"bench\":\"authloop-latency\",\"n\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", r.done,
           bench_percentile(r.latency_us, r.done, 50), bench_percentile(r.latency_us, r.done, 99));
  else
    printf("{\"bench\":\"authloop-%s\",\"n\":%d,\"cpu_us_per_cycle\":%.1f,\"wall_ms\":%.0f}\n",
           r.mode, r.done, (double)(bench_cpu_us() - cpu0) / r.done,
           (double)(uv_hrtime() - wall0) / 1e6);
  if (r.codes)
    bench_codes_free(r.codes, r.n);
  free(r.latency_us);
  return r.failed || uv_loop_close(&loop) != 0 || r.done != r.n;
}
