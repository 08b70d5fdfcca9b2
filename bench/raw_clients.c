/* SPDX-License-Identifier: MIT */
/* The limit in authloop's like-for-like Kuzzle regime (bench_cycles --mode
 * kuzzle --clients K): K clients on one loop and one multi handle (their
 * connections and share handle in common, as authloop's clients share a
 * ctx), a user each, their first logins spread over a second, each waiting
 * out the second its token was issued in before its refresh. The requests of
 * bench/raw.c (bench/rawcurl.c: an easy handle each, CAINFO and NOSIGNAL set
 * once, the values it must send next found in the answer's text). Prints one
 * JSON line, as bench_cycles does.
 *   raw_clients --url U [--ca CA] --n N --clients K [--userinfo -1]
 * --userinfo -1: no getCurrentUser after a login (the official SDK's
 * requests), as bench_cycles --userinfo -1. */
#include "rawcurl.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  rawcurl rc;
  uv_timer_t timer; /* the first login, then each refresh's wait */
  uint64_t t_tokens;
  int step;
  char user[32], token[4096];
} client;

static uv_loop_t loop;
static client *all;
static const char *url;
static int n, k, started, done, failed, fetch_user = 1;

static void request(client *c, const char *method, const char *path, const char *json, int bearer) {
  char full[512];
  snprintf(full, sizeof(full), "%s%s", url, path);
  rawcurl_request(&c->rc, method, full, json, bearer ? c->token : NULL);
}

static void start(client *c) {
  char json[128];
  if (failed || started == n)
    return;
  started++;
  c->step = 0;
  snprintf(json, sizeof(json), "{\"username\":\"%s\",\"password\":\"cycles-pass\"}", c->user);
  request(c, "POST", "/_login/local?expiresIn=1h", json, 0);
}

static void on_timer(uv_timer_t *t) {
  client *c = t->data;
  if (c->step == 0)
    start(c);
  else
    request(c, "POST", "/_refreshToken?expiresIn=1h", NULL, 1);
}

/* the refresh, when the second its token was issued in is over */
static void refresh_later(client *c) {
  uint64_t now = uv_now(&loop), at = c->t_tokens + 1000;
  c->step = 2;
  if (now >= at)
    request(c, "POST", "/_refreshToken?expiresIn=1h", NULL, 1);
  else
    uv_timer_start(&c->timer, on_timer, at - now, 0);
}

static void advance(long status, void *ud) {
  client *c = ud;
  if (status < 200 || status > 299) {
    fprintf(stderr, "raw_clients: HTTP %ld at step %d: %s\n", status, c->step, c->rc.body);
    failed++;
    return;
  }
  switch (c->step) {
  case 0: /* logged in */
    c->t_tokens = uv_now(&loop);
    if (rawcurl_take(&c->rc, "jwt", c->token, sizeof(c->token)) != 0) {
      failed++;
      return;
    }
    if (fetch_user) {
      c->step = 1;
      request(c, "GET", "/users/_me", NULL, 1);
    } else {
      refresh_later(c);
    }
    break;
  case 1: /* got the user */
    refresh_later(c);
    break;
  case 2: /* refreshed */
    if (rawcurl_take(&c->rc, "jwt", c->token, sizeof(c->token)) != 0) {
      failed++;
      return;
    }
    c->step = 3;
    request(c, "POST", "/_logout", NULL, 1);
    break;
  default: /* logged out */
    done++;
    start(c);
  }
}

int main(int argc, char **argv) {
  const char *ca = bench_arg(argc, argv, "--ca", NULL);
  uint64_t user0, sys0, user1, sys1, wall0;
  char body[128];
  int i;
  url = bench_arg(argc, argv, "--url", NULL);
  n = atoi(bench_arg(argc, argv, "--n", "200"));
  k = atoi(bench_arg(argc, argv, "--clients", "40"));
  fetch_user = atoi(bench_arg(argc, argv, "--userinfo", "0")) != -1;
  if (!url || n < 1 || k < 1 || k > n)
    return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  /* a user each, as bench_cycles makes them (setup, not measured) */
  snprintf(body, sizeof(body), "{\"prefix\":\"cycles\",\"password\":\"cycles-pass\",\"count\":%d}",
           k);
  json_decref(bench_control(url, ca, "/__test/kuzzle-users", body));
  all = calloc((size_t)k, sizeof(*all));
  bench_cpu_split(&user0, &sys0); /* the set-up counts, as the SDK's connect does */
  wall0 = uv_hrtime();
  uv_loop_init(&loop);
  for (i = 0; i < k; i++) {
    client *c = &all[i];
    if (i == 0)
      rawcurl_init(&c->rc, &loop, ca, advance, c);
    else
      rawcurl_join(&c->rc, &all[0].rc, ca, advance, c);
    snprintf(c->user, sizeof(c->user), "cycles-%d", i);
    uv_timer_init(&loop, &c->timer);
    c->timer.data = c;
    /* the first at once, the others spread over a second */
    uv_timer_start(&c->timer, on_timer, (uint64_t)i * 1000u / (uint64_t)k, 0);
  }
  while (done < n && !failed && uv_run(&loop, UV_RUN_ONCE))
    ;
  bench_cpu_split(&user1, &sys1);
  if (done == 0) {
    fprintf(stderr, "raw_clients: no cycle completed\n");
    return 1;
  }
  printf("{\"bench\":\"raw-kuzzle-clients%s\",\"n\":%d,\"clients\":%d,\"cpu_us_per_cycle\":%.1f,"
         "\"user_us_per_cycle\":%.1f,\"sys_us_per_cycle\":%.1f,\"wall_ms\":%.0f}\n",
         fetch_user ? "" : "-sdk-requests", done, k, (double)(user1 - user0 + sys1 - sys0) / done,
         (double)(user1 - user0) / done, (double)(sys1 - sys0) / done,
         (double)(uv_hrtime() - wall0) / 1e6);
  return failed || done != n;
}
