/* SPDX-License-Identifier: MIT */
/* Many sessions on one ctx: memory, TCP connections, loop wake-ups while
 * nothing is due, then every token coming due: whether each refresh comes
 * within the minute it falls due, and how many requests the server saw at
 * once. Prints one JSON line; per-session memory is the slope between two
 * runs of different sizes (bench/run.sh), so that fixed costs do not count.
 * While the refreshes run, a timeline in ten-second steps says who set the
 * pace: [s, refreshes answered, the latest of them in s past its due time,
 * the client loop's busy share, the server's CPU share, its garbage
 * collections' share, the longest it held its event loop in ms (with
 * --bench-probe), authloop's warnings].
 *   scale --url U --ca CA --mode gateway|kuzzle [--n 10000] [--ttl 120] [--idle-s 10]
 *         [--batch 200] [--login-rate 0]
 * Refreshes fall due at the rate the logins were made: --login-rate (logins
 * a second, 0: as fast as the server answers) keeps that rate within what
 * the server can refresh, so that the server's pace is not what is measured. */
#include "util.h"

#include <authloop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN_MS 300000ULL /* the default refresh_margin_s (docs/token-policy.md) */
#define LATE_MS   60000ULL  /* a refresh later than this after it fell due is late */

typedef struct scale scale;
typedef struct {
  scale *s;
  int i;
} sess; /* a session's listener data */

struct scale {
  uv_loop_t loop;
  authloop_ctx *ctx;
  authloop_client **c;
  char **codes;
  char **users; /* kuzzle: scale-0 .. scale-(n-1) */
  const char *mode;
  char expires[32];
  int n, batch, started, logged_in, failed, refreshed, expired;
  unsigned login_rate; /* logins a second, 0: unpaced */
  uint64_t login_t0;
  uv_timer_t pace;
  uint64_t *due;          /* ms, boot clock: the latest a session's refresh may fall due */
  uint64_t *refreshed_at; /* ms, in the order they came */
  int64_t max_late_ms;    /* INT64_MIN until a refresh came */
  int late;
  double token_bytes;
  unsigned wakeups, settle_turns; /* loop turns while nothing is due: after, within SETTLE_MS */
  uint64_t idle_from;
  sess *sess;
  /* the refresh phase's timeline, one step each STEP_MS */
  const char *url, *ca;
  int step_refreshed;
  int64_t step_late_ms;
  uint64_t phase_at_ms, step_at_ms, step_idle_ns, step_srv_us, step_gc_ms;
  unsigned warnings, step_warnings;
  long stats_calls; /* the steps' own requests to the server */
  char timeline[16384];
  size_t timeline_len;
};

#define STEP_MS 10000ULL

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void on_pace(uv_timer_t *t);

static void login_next(scale *s) {
  uint64_t allowed =
      s->login_rate ? (now_ms() - s->login_t0) * s->login_rate / 1000 + 1 : UINT64_MAX;
  while (s->started < s->n && s->started - s->logged_in - s->failed < s->batch &&
         (uint64_t)s->started < allowed) {
    int i = s->started++, rc;
    if (strcmp(s->mode, "kuzzle") == 0)
      rc = authloop_login_local(s->c[i], s->users[i], "scale-pass", s->expires);
    else
      rc = authloop_login_code(s->c[i], s->codes[i]);
    if (rc != 0)
      s->failed++;
  }
  /* paced: the rest when their time comes */
  if (s->login_rate && s->started < s->n && (uint64_t)s->started >= allowed &&
      !uv_is_active((uv_handle_t *)&s->pace))
    uv_timer_start(&s->pace, on_pace, 5, 0);
}

/* The latest a refresh of c's new token falls due: expiry minus the margin
 * (at most half the lifetime); the jitter only makes it earlier. */
static uint64_t latest_due(authloop_client *c) {
  long long left = authloop_token_expires_in_ms(c);
  if (left <= 0) /* -1: never expires; 0: already gone. Nothing will fall due */
    return 0;
  uint64_t margin = (uint64_t)left / 2 < MARGIN_MS ? (uint64_t)left / 2 : MARGIN_MS;
  return now_ms() + (uint64_t)left - margin;
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  scale *s = ((sess *)ud)->s;
  int i = ((sess *)ud)->i;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    if (ev->success) {
      const char *id = authloop_id_token(c);
      s->logged_in++;
      /* the tokens this session holds: access, id, and the gateway's refresh
       * token (64 characters, never handed out) */
      s->token_bytes += (double)(strlen(authloop_access_token(c)) + (id ? strlen(id) : 0) +
                                 (strcmp(s->mode, "gateway") == 0 ? 64 : 0));
      s->due[i] = latest_due(c);
    } else {
      s->failed++;
    }
    login_next(s);
  } else if (ev->type == AUTHLOOP_EV_TOKEN_REFRESHED && s->due[i]) {
    uint64_t t = now_ms();
    int64_t late = (int64_t)t - (int64_t)s->due[i];
    s->refreshed_at[s->refreshed++] = t;
    if (late > s->max_late_ms)
      s->max_late_ms = late;
    if (late > s->step_late_ms)
      s->step_late_ms = late;
    if (late > (int64_t)LATE_MS)
      s->late++;
    s->due[i] = 0; /* one refresh each is what is measured */
  } else if (ev->type == AUTHLOOP_EV_SESSION_EXPIRED) {
    if (!s->expired++)
      fprintf(stderr, "scale: a session expired (reason %d, %s, HTTP %d)\n", (int)ev->reason,
              ev->message ? ev->message : "-", ev->http_status);
  }
}

/* The turns right after the logins finish what they queued (events, the
 * kernel timer set once a turn) without sleeping: those are not wake-ups. */
#define SETTLE_MS 100

static void on_prepare(uv_prepare_t *p) {
  scale *s = p->data;
  if (now_ms() < s->idle_from + SETTLE_MS)
    s->settle_turns++;
  else
    s->wakeups++;
}
static void on_pace(uv_timer_t *t) { login_next(t->data); }

/* one step of the timeline (above) */
static void on_step(uv_timer_t *t) {
  scale *s = t->data;
  uint64_t now = now_ms(), idle = uv_metrics_idle_time(&s->loop), wall = now - s->step_at_ms;
  json_t *st = bench_control(s->url, s->ca, "/__test/stats", NULL);
  uint64_t srv = (uint64_t)json_integer_value(json_object_get(st, "cpuUs"));
  uint64_t gc = (uint64_t)json_integer_value(json_object_get(st, "gcMs"));
  long loop_max = (long)json_integer_value(json_object_get(st, "loopMaxMs"));
  int k;
  json_decref(st);
  s->stats_calls++;
  if (wall && s->timeline_len + 128 < sizeof(s->timeline)) {
    k = snprintf(
        s->timeline + s->timeline_len, sizeof(s->timeline) - s->timeline_len,
        "%s[%.0f,%d,%.1f,%.2f,%.2f,%.2f,%ld,%u]", s->timeline_len ? "," : "",
        (double)(s->step_at_ms - s->phase_at_ms) / 1000.0, s->refreshed - s->step_refreshed,
        s->step_late_ms == INT64_MIN ? 0.0 : (double)s->step_late_ms / 1000.0,
        1.0 - (double)(idle - s->step_idle_ns) / 1e6 / (double)wall,
        (double)(srv - s->step_srv_us) / 1e3 / (double)wall,
        (double)(gc - s->step_gc_ms) / (double)wall, loop_max, s->warnings - s->step_warnings);
    if (k > 0)
      s->timeline_len += (size_t)k;
  }
  s->step_at_ms = now;
  s->step_idle_ns = idle;
  s->step_srv_us = srv;
  s->step_gc_ms = gc;
  s->step_warnings = s->warnings;
  s->step_refreshed = s->refreshed;
  s->step_late_ms = INT64_MIN;
}

/* authloop's warnings (a refresh that failed, a server on hold), counted;
 * the first said on stderr */
static void on_log(authloop_log_level level, const char *message, void *ud) {
  scale *s = ud;
  if (level > AUTHLOOP_LOG_WARN)
    return;
  if (!s->warnings++)
    fprintf(stderr, "scale: first warning: %s\n", message);
}
static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

/* runs the loop until *counter (plus *also) reaches target or limit_ms passes */
static void run_until(scale *s, const int *counter, const int *also, int target,
                      uint64_t limit_ms) {
  uv_timer_t t;
  uv_timer_init(&s->loop, &t);
  uv_timer_start(&t, on_stop, limit_ms, 0);
  while (*counter + (also ? *also : 0) < target && uv_run(&s->loop, UV_RUN_ONCE) &&
         uv_is_active((uv_handle_t *)&t))
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
  long rss0, peak0, rss, peak, conns0, conns, max_in_flight;
  uint64_t t0, login_ms, first_due = UINT64_MAX, last_due = 0, idle_ms = 0, jitter_ms;
  uv_prepare_t prep;
  uv_timer_t t, step;
  long refresh_conns, refresh_requests;
  uint64_t cpu0, srv0, refresh_ms;
  int i, k, busiest = 0, rate;
  s.mode = bench_arg(argc, argv, "--mode", "gateway");
  s.max_late_ms = INT64_MIN;
  s.n = atoi(bench_arg(argc, argv, "--n", "10000"));
  s.batch = atoi(bench_arg(argc, argv, "--batch", "200"));
  rate = atoi(bench_arg(argc, argv, "--login-rate", "0"));
  if (!url || !ca || s.n < 1 || ttl < 4 || rate < 0)
    return 2;
  s.login_rate = (unsigned)rate;
  snprintf(s.expires, sizeof(s.expires), "%ds", ttl);
  if (strcmp(s.mode, "kuzzle") != 0) {
    s.codes = bench_codes(url, ca, "scale", s.n, ttl);
  } else {
    char body[128];
    /* one user per session: two logins of one user in the same second get
     * the same jwt, and a refresh of it ends the other's */
    snprintf(body, sizeof(body), "{\"prefix\":\"scale\",\"password\":\"scale-pass\",\"count\":%d}",
             s.n);
    json_decref(bench_control(url, ca, "/__test/kuzzle-users", body));
    if (!(s.users = calloc((size_t)s.n, sizeof(*s.users))))
      return 1;
    for (i = 0; i < s.n; i++) {
      char name[32];
      snprintf(name, sizeof(name), "scale-%d", i);
      if (!(s.users[i] = strdup(name)))
        return 1;
    }
  }
  /* the bench's own arrays are touched now: they are not the sessions' memory */
  s.c = calloc((size_t)s.n, sizeof(*s.c));
  s.due = calloc((size_t)s.n, sizeof(uint64_t));
  s.refreshed_at = calloc((size_t)s.n, sizeof(uint64_t));
  s.sess = calloc((size_t)s.n, sizeof(*s.sess));
  if (!s.c || !s.due || !s.refreshed_at || !s.sess)
    return 1;
  for (i = 0; i < s.n; i++) {
    s.sess[i].s = &s;
    s.sess[i].i = i;
  }
  memset(s.c, 1, (size_t)s.n * sizeof(*s.c));
  memset(s.due, 1, (size_t)s.n * sizeof(uint64_t));
  memset(s.refreshed_at, 1, (size_t)s.n * sizeof(uint64_t));
  uv_loop_init(&s.loop);
  uv_loop_configure(&s.loop, UV_METRICS_IDLE_TIME);
  s.url = url;
  s.ca = ca;
  co.ca_file = ca;
  co.log_cb = on_log;
  co.log_level = AUTHLOOP_LOG_WARN;
  co.log_userdata = &s;
  if (authloop_ctx_new(&s.loop, &co, &s.ctx) != 0)
    return 1;
  conns0 = bench_stat(url, ca, "connections");
  rss0 = bench_rss_kib();
  peak0 = bench_peak_rss_kib();

  o.provider = s.mode;
  o.base_url = url;
  for (i = 0; i < s.n; i++) {
    if (authloop_client_new(s.ctx, &o, &s.c[i]) != 0)
      return 1;
    s.due[i] = 0;
    authloop_on(s.c[i], AUTHLOOP_EV_LOGIN_ATTEMPT, on_event, &s.sess[i]);
    authloop_on(s.c[i], AUTHLOOP_EV_TOKEN_REFRESHED, on_event, &s.sess[i]);
    authloop_on(s.c[i], AUTHLOOP_EV_SESSION_EXPIRED, on_event, &s.sess[i]);
  }
  uv_timer_init(&s.loop, &s.pace);
  s.pace.data = &s;
  t0 = s.login_t0 = now_ms();
  login_next(&s);
  run_until(&s, &s.logged_in, &s.failed, s.n, 3600000);
  login_ms = now_ms() - t0;
  uv_close((uv_handle_t *)&s.pace, NULL);
  rss = bench_rss_kib();
  peak = bench_peak_rss_kib();
  conns = bench_stat(url, ca, "connections") - conns0 - 1; /* -1: that stats call */
  for (i = 0; i < s.n; i++) {
    if (s.due[i] && s.due[i] < first_due)
      first_due = s.due[i];
    if (s.due[i] > last_due)
      last_due = s.due[i];
  }

  /* nothing due for a while (until the first refresh, less the jitter, at
   * most a tenth of the margin): how often does the loop wake? */
  jitter_ms = ((uint64_t)ttl * 1000 / 2 < MARGIN_MS ? (uint64_t)ttl * 1000 / 2 : MARGIN_MS) / 10;
  if (first_due != UINT64_MAX && first_due > now_ms() + jitter_ms + 2000) {
    idle_ms = first_due - now_ms() - jitter_ms - 1000;
    if (idle_ms > idle_s * 1000ULL)
      idle_ms = idle_s * 1000ULL;
    uv_prepare_init(&s.loop, &prep);
    prep.data = &s;
    uv_prepare_start(&prep, on_prepare);
    uv_timer_init(&s.loop, &t);
    uv_timer_start(&t, on_stop, idle_ms, 0);
    s.idle_from = now_ms();
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_prepare_stop(&prep);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_close((uv_handle_t *)&t, NULL);
  }

  /* every token comes due: each refresh within the minute it falls due? */
  json_decref(bench_control(url, ca, "/__test/reset-stats", "{}"));
  cpu0 = bench_cpu_us();
  srv0 = (uint64_t)bench_stat(url, ca, "cpuUs");
  refresh_ms = now_ms();
  s.step_at_ms = s.phase_at_ms = refresh_ms;
  s.step_idle_ns = uv_metrics_idle_time(&s.loop);
  s.step_srv_us = srv0;
  s.step_late_ms = INT64_MIN;
  uv_timer_init(&s.loop, &step);
  step.data = &s;
  uv_timer_start(&step, on_step, STEP_MS, STEP_MS);
  run_until(&s, &s.refreshed, &s.expired, s.logged_in,
            (last_due > now_ms() ? last_due - now_ms() : 0) + LATE_MS + 30000);
  on_step(&step);
  uv_close((uv_handle_t *)&step, NULL);
  refresh_ms = now_ms() - refresh_ms;
  max_in_flight = bench_stat(url, ca, "maxInFlight");
  /* less the bench's own: the steps', srv0's, maxInFlight's and this one */
  refresh_conns = bench_stat(url, ca, "connections") - s.stats_calls - 3;
  refresh_requests =
      bench_stat(url, ca, strcmp(s.mode, "kuzzle") == 0 ? "/_refreshToken" : "/auth/refresh");
  for (i = 0; i < s.refreshed; i++) {
    int in_second = 0;
    for (k = i; k < s.refreshed && s.refreshed_at[k] - s.refreshed_at[i] < 1000; k++)
      in_second++;
    if (in_second > busiest)
      busiest = in_second;
  }
  printf("{\"bench\":\"scale\",\"mode\":\"%s\",\"sessions\":%d,\"failed\":%d,\"login_rate\":%u,"
         "\"login_s\":%.1f,"
         "\"rss_kib\":%ld,\"peak_rss_kib\":%ld,\"token_bytes_per_session\":%.0f,"
         "\"tcp_connections\":%ld,\"idle_s\":%.1f,\"idle_wakeups_per_s\":%.2f,\"idle_settle_"
         "turns\":%u,\"refreshed\":%d,"
         "\"expired\":%d,\"late_refreshes\":%d,\"max_late_s\":%.1f,\"refresh_spread_s\":%.1f,"
         "\"most_refreshes_in_1s\":%d,\"max_in_flight\":%ld,\"refresh_requests\":%ld,"
         "\"refresh_connections\":%ld,\"refresh_client_cpu_s\":%.1f,"
         "\"refresh_server_cpu_s\":%.1f,\"refresh_phase_s\":%.1f,\"warnings\":%u,"
         "\"timeline\":[%s]}\n",
         s.mode, s.logged_in, s.failed, s.login_rate, (double)login_ms / 1000.0, rss - rss0,
         peak - peak0, s.token_bytes / (s.logged_in ? s.logged_in : 1), conns,
         (double)idle_ms / 1000.0,
         /* the stop timer's turn is not a wake-up */
         idle_ms ? (double)(s.wakeups > 1 ? s.wakeups - 1 : 0) * 1000.0 / (double)idle_ms : -1.0,
         s.settle_turns, s.refreshed, s.expired, s.late + (s.logged_in - s.refreshed),
         s.refreshed ? (double)s.max_late_ms / 1000.0 : 0.0,
         s.refreshed ? (double)(s.refreshed_at[s.refreshed - 1] - s.refreshed_at[0]) / 1000.0 : 0,
         busiest, max_in_flight, refresh_requests, refresh_conns,
         (double)(bench_cpu_us() - cpu0) / 1e6,
         (double)((uint64_t)bench_stat(url, ca, "cpuUs") - srv0) / 1e6, (double)refresh_ms / 1000.0,
         s.warnings, s.timeline);
  authloop_ctx_close(s.ctx, NULL, NULL);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  if (s.codes)
    bench_codes_free(s.codes, s.n);
  if (s.users)
    bench_codes_free(s.users, s.n);
  free(s.c);
  free(s.due);
  free(s.refreshed_at);
  free(s.sess);
  return uv_loop_close(&s.loop) != 0 || s.failed;
}
