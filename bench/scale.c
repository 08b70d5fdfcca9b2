/* SPDX-License-Identifier: MIT */
/* 10,000 sessions on one ctx: memory per session, TCP connections, loop
 * wake-ups while nothing is due, then every token due within the same minute:
 * how the refreshes spread and how many requests the server saw at once.
 *   scale --url U --ca CA [--n 10000] [--ttl 120] [--idle-s 10] [--batch 200] */
#include "util.h"

#include <authloop.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uv_loop_t loop;
  authloop_ctx *ctx;
  authloop_client **c;
  char **codes;
  int n, batch, started, logged_in, failed, refreshed;
  uint64_t *refreshed_at; /* ms, boot clock */
  size_t token_bytes;
  unsigned wakeups;
} scale;

static void login_next(scale *s) {
  while (s->started < s->n && s->started - s->logged_in - s->failed < s->batch) {
    int i = s->started++;
    if (authloop_login_code(s->c[i], s->codes[i]) != 0)
      s->failed++;
  }
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  scale *s = ud;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    if (ev->success) {
      s->logged_in++;
      s->token_bytes += strlen(authloop_access_token(c)) + strlen(authloop_id_token(c));
    } else {
      s->failed++;
    }
    login_next(s);
  } else if (ev->type == AUTHLOOP_EV_TOKEN_REFRESHED) {
    s->refreshed_at[s->refreshed++] = uv_hrtime() / 1000000;
  }
}

static void on_prepare(uv_prepare_t *p) { ((scale *)p->data)->wakeups++; }
static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

/* runs the loop until *counter reaches target or limit_ms passes */
static void run_until(scale *s, int *counter, int target, unsigned limit_ms) {
  uv_timer_t t;
  uv_timer_init(&s->loop, &t);
  uv_timer_start(&t, on_stop, limit_ms, 0);
  while (*counter < target && uv_run(&s->loop, UV_RUN_ONCE) && uv_is_active((uv_handle_t *)&t))
    ;
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&s->loop, UV_RUN_NOWAIT);
}

int main(int argc, char **argv) {
  const char *url = bench_arg(argc, argv, "--url", NULL), *ca = bench_arg(argc, argv, "--ca", NULL);
  int ttl = atoi(bench_arg(argc, argv, "--ttl", "120"));
  unsigned idle_s = (unsigned)atoi(bench_arg(argc, argv, "--idle-s", "10"));
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  scale s = {0};
  long rss0, peak, conns0, conns, max_in_flight;
  uv_prepare_t prep;
  uv_timer_t t;
  int i, k, busiest = 0;
  double mean = 0, var = 0;
  s.n = atoi(bench_arg(argc, argv, "--n", "10000"));
  s.batch = atoi(bench_arg(argc, argv, "--batch", "200"));
  if (!url || !ca || s.n < 1)
    return 2;
  s.codes = bench_codes(url, ca, "scale", s.n, ttl);
  s.c = calloc((size_t)s.n, sizeof(*s.c));
  s.refreshed_at = calloc((size_t)s.n, sizeof(uint64_t));
  uv_loop_init(&s.loop);
  co.ca_file = ca;
  if (authloop_ctx_new(&s.loop, &co, &s.ctx) != 0)
    return 1;
  conns0 = bench_stat(url, ca, "connections");
  rss0 = bench_rss_kib();

  o.provider = "gateway";
  o.base_url = url;
  for (i = 0; i < s.n; i++) {
    if (authloop_client_new(s.ctx, &o, &s.c[i]) != 0)
      return 1;
    authloop_on(s.c[i], AUTHLOOP_EV_LOGIN_ATTEMPT, on_event, &s);
    authloop_on(s.c[i], AUTHLOOP_EV_TOKEN_REFRESHED, on_event, &s);
  }
  login_next(&s);
  run_until(&s, &s.logged_in, s.n, 120000);
  peak = bench_peak_rss_kib();
  conns = bench_stat(url, ca, "connections") - conns0 - 1; /* -1: that stats call */

  /* nothing due for a while: how often does the loop wake? */
  uv_prepare_init(&s.loop, &prep);
  prep.data = &s;
  uv_prepare_start(&prep, on_prepare);
  uv_timer_init(&s.loop, &t);
  uv_timer_start(&t, on_stop, idle_s * 1000u, 0);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  uv_prepare_stop(&prep);
  uv_close((uv_handle_t *)&prep, NULL);
  uv_close((uv_handle_t *)&t, NULL);

  /* every token is due within the same minute: how do the refreshes spread? */
  json_decref(bench_control(url, ca, "/__test/reset-stats", "{}"));
  run_until(&s, &s.refreshed, s.n, (unsigned)ttl * 1000u + 30000u);
  max_in_flight = bench_stat(url, ca, "maxInFlight");
  for (i = 0; i < s.refreshed; i++)
    mean += (double)(s.refreshed_at[i] - s.refreshed_at[0]) / 1000.0;
  mean /= s.refreshed ? s.refreshed : 1;
  for (i = 0; i < s.refreshed; i++) {
    double d = (double)(s.refreshed_at[i] - s.refreshed_at[0]) / 1000.0 - mean;
    int in_second = 0;
    var += d * d;
    for (k = i; k < s.refreshed && s.refreshed_at[k] - s.refreshed_at[i] < 1000; k++)
      in_second++;
    if (in_second > busiest)
      busiest = in_second;
  }
  printf("{\"bench\":\"scale\",\"sessions\":%d,\"failed\":%d,\"rss_per_session_bytes\":%.0f,"
         "\"token_bytes_per_session\":%.0f,\"tcp_connections\":%ld,\"idle_wakeups_per_s\":%.2f,"
         "\"refreshed\":%d,\"refresh_spread_s\":%.1f,\"refresh_stddev_s\":%.1f,"
         "\"most_refreshes_in_1s\":%d,\"max_in_flight\":%ld}\n",
         s.logged_in, s.failed, (double)(peak - rss0) * 1024.0 / s.n,
         /* access + id tokens seen here, + the 64-character refresh token the server issues */
         (double)s.token_bytes / (s.logged_in ? s.logged_in : 1) + 64, conns,
         /* two iterations are not wake-ups: entering uv_run, and the stop timer */
         (double)(s.wakeups > 2 ? s.wakeups - 2 : 0) / idle_s, s.refreshed,
         s.refreshed ? (double)(s.refreshed_at[s.refreshed - 1] - s.refreshed_at[0]) / 1000.0 : 0,
         sqrt(var / (s.refreshed ? s.refreshed : 1)), busiest, max_in_flight);
  authloop_ctx_close(s.ctx, NULL, NULL);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  bench_codes_free(s.codes, s.n);
  free(s.c);
  free(s.refreshed_at);
  return uv_loop_close(&s.loop) != 0 || s.failed;
}
