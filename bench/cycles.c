/* SPDX-License-Identifier: MIT */
/* authloop doing full cycles (login -> refresh -> logout) back to back, or
 * timed logins, for bench/run.sh. Prints one JSON line.
 *   cycles --url U --ca CA --mode gateway|kuzzle|latency --n N [--clients K] [--userinfo -1]
 * --clients K: K clients on the one ctx share the N cycles, each doing its
 * cycles back to back, their first logins spread over a second. A Kuzzle
 * refresh waits out the second its token was issued in (docs/decisions.md),
 * so one client does a cycle a second: K of them make the CPU rounds K times
 * shorter, and each client's cycle is still the same requests in the same
 * order. --userinfo -1 (kuzzle): no getCurrentUser after a login, the
 * requests the official SDK makes (bench/kuzzle-sdk.mjs). */
#include "util.h"

#include <authloop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run run;

typedef struct {
  run *r;
  authloop_client *c;
  uv_timer_t start;
  uint64_t t_login;
  int cycle;               /* the cycle it is doing: an index into codes and latency_us */
  char user[32], pass[32]; /* kuzzle */
} one;

struct run {
  authloop_ctx *ctx;
  const char *mode;
  char **codes;
  int n, started, done, failed, clients, stopped;
  double *latency_us;
  one *each;
};

static void next(one *o);

static void stop(run *r) {
  int i;
  if (r->stopped)
    return;
  r->stopped = 1;
  for (i = 0; i < r->clients; i++)
    uv_close((uv_handle_t *)&r->each[i].start, NULL);
  authloop_ctx_close(r->ctx, NULL, NULL);
}

static void on_refreshed(authloop_client *c, int status, void *ud) {
  one *o = ud;
  if (status != 0) {
    fprintf(stderr, "refresh failed: %s\n", authloop_strerror(status));
    o->r->failed++;
  }
  if (authloop_logout(c) != 0) { /* the session ended with the refresh: no logout event comes */
    fprintf(stderr, "logout refused after the refresh\n");
    o->r->failed++;
    stop(o->r);
  }
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  one *o = ud;
  run *r = o->r;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    if (!ev->success) {
      fprintf(stderr, "login failed: %s\n", ev->message);
      r->failed++;
      stop(r);
      return;
    }
    if (strcmp(r->mode, "latency") == 0) {
      r->latency_us[o->cycle] = (double)(uv_hrtime() - o->t_login) / 1000.0;
      authloop_logout(c);
    } else {
      authloop_refresh(c, on_refreshed, o);
    }
  } else if (ev->type == AUTHLOOP_EV_LOGOUT) {
    if (ev->error) {
      fprintf(stderr, "logout failed: %s\n", ev->message);
      r->failed++;
    }
    r->done++;
    next(o);
  }
}

static void next(one *o) {
  run *r = o->r;
  if (r->failed || r->started == r->n) {
    if (r->failed || r->done == r->n)
      stop(r);
    return;
  }
  o->cycle = r->started++;
  o->t_login = uv_hrtime();
  if (strcmp(r->mode, "kuzzle") == 0)
    authloop_login_local(o->c, o->user, o->pass, "1h");
  else
    authloop_login_code(o->c, r->codes[o->cycle]);
}

static void on_start(uv_timer_t *t) { next(t->data); }

int main(int argc, char **argv) {
  const char *url = bench_arg(argc, argv, "--url", NULL), *ca = bench_arg(argc, argv, "--ca", NULL);
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options opts = AUTHLOOP_CLIENT_OPTIONS_INIT;
  run r = {0};
  uv_loop_t loop;
  uint64_t user0, sys0, user1, sys1, wall0;
  int t, i;
  r.mode = bench_arg(argc, argv, "--mode", "gateway");
  r.n = atoi(bench_arg(argc, argv, "--n", "2000"));
  r.clients = atoi(bench_arg(argc, argv, "--clients", "1"));
  opts.userinfo = atoi(bench_arg(argc, argv, "--userinfo", "0"));
  if (!url || r.n < 1 || r.clients < 1 || r.clients > r.n)
    return 2;
  if (strcmp(r.mode, "kuzzle") != 0)
    r.codes = bench_codes(url, ca, "bench", r.n, 0);
  r.latency_us = calloc((size_t)r.n, sizeof(double));
  r.each = calloc((size_t)r.clients, sizeof(one));
  for (i = 0; i < r.clients; i++) {
    snprintf(r.each[i].user, sizeof(r.each[i].user), "kuzzle-user");
    snprintf(r.each[i].pass, sizeof(r.each[i].pass), "kuzzle-pass");
  }
  if (strcmp(r.mode, "kuzzle") == 0 && r.clients > 1) {
    char body[128];
    /* a user each: two logins of one user in the same second get the same
     * jwt, and the logout of one ends the other */
    snprintf(body, sizeof(body),
             "{\"prefix\":\"cycles\",\"password\":\"cycles-pass\",\"count\":%d}", r.clients);
    json_decref(bench_control(url, ca, "/__test/kuzzle-users", body));
    for (i = 0; i < r.clients; i++) {
      snprintf(r.each[i].user, sizeof(r.each[i].user), "cycles-%d", i);
      snprintf(r.each[i].pass, sizeof(r.each[i].pass), "cycles-pass");
    }
  }
  bench_cpu_split(&user0, &sys0); /* the set-up counts, as the SDK's connect does */
  wall0 = uv_hrtime();
  uv_loop_init(&loop);
  co.ca_file = ca;
  if (authloop_ctx_new(&loop, &co, &r.ctx) != 0)
    return 1;
  opts.provider = strcmp(r.mode, "kuzzle") == 0 ? "kuzzle" : "gateway";
  opts.base_url = url;
  for (i = 0; i < r.clients; i++) {
    one *o = &r.each[i];
    o->r = &r;
    if (authloop_client_new(r.ctx, &opts, &o->c) != 0)
      return 1;
    for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
      authloop_on(o->c, (authloop_event_type)t, on_event, o);
    uv_timer_init(&loop, &o->start);
    o->start.data = o;
    /* the first at once, the others spread over a second */
    uv_timer_start(&o->start, on_start, (uint64_t)i * 1000u / (uint64_t)r.clients, 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  bench_cpu_split(&user1, &sys1);
  if (r.done == 0) {
    fprintf(stderr, "cycles: no cycle completed\n");
    return 1;
  }
  if (strcmp(r.mode, "latency") == 0)
    printf("{\"bench\":\"authloop-latency\",\"n\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", r.done,
           bench_percentile(r.latency_us, r.done, 50), bench_percentile(r.latency_us, r.done, 99));
  else
    printf("{\"bench\":\"authloop-%s%s\",\"n\":%d,\"clients\":%d,\"cpu_us_per_cycle\":%.1f,"
           "\"user_us_per_cycle\":%.1f,\"sys_us_per_cycle\":%.1f,\"wall_ms\":%.0f}\n",
           r.mode, opts.userinfo == -1 ? "-sdk-requests" : "", r.done, r.clients,
           (double)(user1 - user0 + sys1 - sys0) / r.done, (double)(user1 - user0) / r.done,
           (double)(sys1 - sys0) / r.done, (double)(uv_hrtime() - wall0) / 1e6);
  if (r.codes)
    bench_codes_free(r.codes, r.n);
  free(r.latency_us);
  free(r.each);
  return r.failed || uv_loop_close(&loop) != 0 || r.done != r.n;
}
