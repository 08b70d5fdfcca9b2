/* SPDX-License-Identifier: MIT */
/* The refresh policy's arithmetic, driven by an injected "now": margin, the
 * cap at half the lifetime, jitter and backoff bounds, Retry-After, never
 * past expiry, idle decisions, and a boot clock that jumped (suspend). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy.h"
#include "timer.h"

#include <poll.h>
#ifdef __linux__
#include <sys/timerfd.h>
#endif

#define S      1000ull
#define MINUTE (60 * S)
#define T0     (1000 * S) /* an arbitrary boot-clock origin */

static void margin_and_its_cap(void **state) {
  (void)state;
  assert_int_equal(authloop__refresh_margin(3600 * S, 300 * S), 300 * S);
  assert_int_equal(authloop__refresh_margin(400 * S, 300 * S), 200 * S); /* half the lifetime */
  assert_int_equal(authloop__refresh_margin(4 * S, 300 * S), 2 * S);
  assert_int_equal(authloop__refresh_margin(0, 300 * S), 0);
}

static void due_time_and_jitter_bounds(void **state) {
  uint32_t rnd;
  (void)state;
  /* one hour, 5 min margin: due in [55 min - 30 s, 55 min] (jitter <= 30 s) */
  assert_int_equal(authloop__refresh_due(T0, 3600 * S, 300 * S, 0), T0 + 55 * MINUTE);
  for (rnd = 0; rnd < 200000; rnd += 997) {
    uint64_t due = authloop__refresh_due(T0, 3600 * S, 300 * S, rnd * 2654435761u);
    assert_true(due <= T0 + 55 * MINUTE);
    assert_true(due >= T0 + 55 * MINUTE - 30 * S);
  }
  /* short lifetime: margin 2 s, jitter at most a tenth of it */
  for (rnd = 0; rnd < 5000; rnd++) {
    uint64_t due = authloop__refresh_due(T0, 4 * S, 300 * S, rnd * 2654435761u);
    assert_true(due <= T0 + 2 * S && due >= T0 + 2 * S - 200);
  }
  /* the jitter spreads: 1,000 draws use many distinct instants */
  {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (rnd = 0; rnd < 1000; rnd++) {
      uint64_t due = authloop__refresh_due(T0, 3600 * S, 300 * S, rnd * 2654435761u);
      lo = due < lo ? due : lo;
      hi = due > hi ? due : hi;
    }
    assert_true(hi - lo > 25 * S);
  }
}

static void backoff_bounds(void **state) {
  unsigned attempt;
  uint32_t rnd;
  (void)state;
  for (attempt = 0; attempt < 40; attempt++) {
    uint64_t ceiling = attempt < 6 ? (1000ull << attempt) : 60000;
    uint64_t hi = 0;
    for (rnd = 0; rnd < 3000; rnd++) {
      uint64_t b = authloop__backoff_ms(attempt, 1000, 60000, rnd * 2654435761u);
      assert_true(b <= ceiling);
      hi = b > hi ? b : hi;
    }
    assert_true(hi > ceiling / 2); /* full jitter uses the whole range */
  }
  assert_int_equal(authloop__backoff_ms(3, 1000, 60000, 0), 0);
  assert_int_equal(authloop__backoff_ms(1000, 1000, 60000, 60000), 60000); /* no overflow */
}

static void retry_after_and_expiry(void **state) {
  uint64_t exp = T0 + 10 * MINUTE;
  (void)state;
  /* no Retry-After: the backoff */
  assert_int_equal(authloop__retry_at(T0, 1500, -1, exp), T0 + 1500);
  /* Retry-After wins over the backoff */
  assert_int_equal(authloop__retry_at(T0, 1500, 30 * S, exp), T0 + 30 * S);
  /* never past the token's expiry */
  assert_int_equal(authloop__retry_at(T0, 1500, 3600 * S, exp), exp);
  assert_int_equal(authloop__retry_at(exp - 100, 5000, -1, exp), exp);
  /* already expired (an active user, network down): plain backoff */
  assert_int_equal(authloop__retry_at(exp + 5, 5000, -1, exp), exp + 5 + 5000);
}

static authloop__timing timing(void) {
  authloop__timing t = {0};
  t.expires_at = T0 + 60 * MINUTE;
  t.refresh_due = T0 + 55 * MINUTE;
  t.last_activity = T0;
  t.idle_ms = 60 * MINUTE;
  return t;
}

static void decisions(void **state) {
  authloop__timing t = timing();
  uint64_t wake;
  (void)state;
  /* before the due time: wait for it */
  assert_int_equal(authloop__decide(&t, T0 + MINUTE, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, t.refresh_due);
  /* due and active: refresh */
  t.last_activity = T0 + 50 * MINUTE;
  assert_int_equal(authloop__decide(&t, t.refresh_due, &wake), AUTHLOOP__REFRESH);
  /* due and idle (last activity more than an hour before): warn once, then wait for expiry */
  t.last_activity = T0;
  t.refresh_due = T0 + 65 * MINUTE;
  t.expires_at = T0 + 70 * MINUTE;
  assert_int_equal(authloop__decide(&t, T0 + 65 * MINUTE, &wake), AUTHLOOP__WARN_IDLE);
  t.warned = 1;
  assert_int_equal(authloop__decide(&t, T0 + 65 * MINUTE, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, t.expires_at);
  /* still idle at expiry: the session ends */
  assert_int_equal(authloop__decide(&t, t.expires_at, &wake), AUTHLOOP__EXPIRE_IDLE);
  /* activity before expiry: refresh at once */
  t.last_activity = T0 + 68 * MINUTE;
  assert_int_equal(authloop__decide(&t, T0 + 68 * MINUTE, &wake), AUTHLOOP__REFRESH);
}

static void retries_and_offline(void **state) {
  authloop__timing t = timing();
  uint64_t wake;
  (void)state;
  t.last_activity = T0 + 54 * MINUTE;
  t.retrying = 1;
  t.retry_at = T0 + 56 * MINUTE;
  assert_int_equal(authloop__decide(&t, T0 + 55 * MINUTE, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, t.retry_at);
  assert_int_equal(authloop__decide(&t, t.retry_at, &wake), AUTHLOOP__REFRESH);
  /* offline: no refresh; look again when the user would turn idle */
  t.offline = 1;
  assert_int_equal(authloop__decide(&t, t.retry_at, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, t.last_activity + t.idle_ms);
  /* offline past expiry, user still active: keep the session, look again at idle time */
  assert_int_equal(authloop__decide(&t, t.expires_at + S, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, t.last_activity + t.idle_ms);
  assert_int_equal(authloop__decide(&t, t.last_activity + t.idle_ms, &wake), AUTHLOOP__EXPIRE_IDLE);
}

/* A token that never runs out (or whose lifetime nobody knows) is never
 * refreshed by itself, warned of or ended for idleness, whatever made a
 * time come due (a failed try's time only paces the 401s). */
static void a_token_that_never_runs_out(void **state) {
  authloop__timing t = timing();
  uint64_t wake;
  (void)state;
  t.expires_at = t.refresh_due = AUTHLOOP__NEVER;
  t.last_activity = T0;
  assert_int_equal(authloop__decide(&t, T0 + 300 * MINUTE, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, AUTHLOOP__NEVER);
  t.retrying = 1; /* a try come due, the user idle */
  t.retry_at = T0 + 2 * MINUTE;
  assert_int_equal(authloop__decide(&t, T0 + 300 * MINUTE, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, AUTHLOOP__NEVER);
  t.last_activity = T0 + 299 * MINUTE; /* active: still nothing by itself */
  assert_int_equal(authloop__decide(&t, T0 + 300 * MINUTE, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, AUTHLOOP__NEVER);
  t.offline = 1;
  assert_int_equal(authloop__decide(&t, T0 + 300 * MINUTE, &wake), AUTHLOOP__WAIT);
}

static void suspend_past_the_deadline(void **state) {
  authloop__timing t = timing();
  uint64_t wake;
  (void)state;
  /* The timer was set for the due time; the machine slept 3 hours. When it
   * fires, the boot clock (which counts the sleep) is far past everything. */
  t.last_activity = T0 + 54 * MINUTE; /* active just before the lid closed */
  assert_int_equal(authloop__decide(&t, T0 + 54 * MINUTE, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, t.refresh_due);
  /* woke 10 minutes past the due time, token still alive: refresh at once */
  t.last_activity = T0 + 60 * MINUTE - 30 * S;
  assert_int_equal(authloop__decide(&t, T0 + 60 * MINUTE - 20 * S, &wake), AUTHLOOP__REFRESH);
  /* slept 3 hours: the user was away longer than the idle window: session ends */
  t.last_activity = T0 + 54 * MINUTE;
  assert_int_equal(authloop__decide(&t, T0 + 234 * MINUTE, &wake), AUTHLOOP__EXPIRE_IDLE);
}

static void stale_restored_session(void **state) {
  authloop__timing t = timing();
  uint64_t wake;
  (void)state;
  t.stale = 1;
  t.last_activity = 0;
  assert_int_equal(authloop__decide(&t, T0, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, AUTHLOOP__NEVER); /* no idle expiry: waits for activity */
  t.last_activity = T0;
  assert_int_equal(authloop__decide(&t, T0, &wake), AUTHLOOP__REFRESH);
}

/* A token the server never refreshes: no refresh whatever the activity or
 * the due time, then the end at expiry, active or idle. */
static void unrefreshable_token(void **state) {
  authloop__timing t = timing();
  uint64_t wake;
  (void)state;
  t.unrefreshable = 1;
  t.last_activity = t.refresh_due; /* active, and due */
  assert_int_equal(authloop__decide(&t, t.refresh_due, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, t.expires_at);
  t.last_activity = 0; /* idle: no tokenExpiring either */
  assert_int_equal(authloop__decide(&t, t.expires_at - 1, &wake), AUTHLOOP__WAIT);
  assert_int_equal(authloop__decide(&t, t.expires_at, &wake), AUTHLOOP__EXPIRE_LIFETIME);
  t.last_activity = t.expires_at;
  assert_int_equal(authloop__decide(&t, t.expires_at + 1, &wake), AUTHLOOP__EXPIRE_LIFETIME);
}

/* Extreme values saturate; nothing wraps into the past (a refresh storm). */
static void extremes_saturate(void **state) {
  uint64_t wake;
  authloop__timing t = timing();
  (void)state;
  assert_int_equal(authloop__refresh_due(UINT64_MAX - 5, 3600 * S, 300 * S, 0), UINT64_MAX);
  assert_true(authloop__refresh_due(T0, UINT64_MAX, 300 * S, 7) > T0);
  assert_int_equal(authloop__retry_at(UINT64_MAX - 1, 5000, -1, AUTHLOOP__NEVER), UINT64_MAX);
  assert_int_equal(authloop__retry_at(T0, 0, 0x7fffffffffffffffLL, AUTHLOOP__NEVER),
                   T0 + 0x7fffffffffffffffULL);
  assert_true(authloop__backoff_ms(64, UINT64_MAX / 2, UINT64_MAX, 12345) <= UINT64_MAX);
  assert_int_equal(authloop__backoff_ms(200, 1000, UINT64_MAX, 77), 77);
  /* a last activity far in the past and an idle window near the maximum */
  t.offline = 1;
  t.last_activity = UINT64_MAX - 10;
  t.idle_ms = UINT64_MAX;
  assert_int_equal(authloop__decide(&t, t.refresh_due, &wake), AUTHLOOP__WAIT);
  assert_int_equal(wake, UINT64_MAX);
  assert_int_equal(authloop__sat_sub(3, 5), 0);
  assert_int_equal(authloop__sat_add(UINT64_MAX, 1), UINT64_MAX);
}

static void boot_clock_moves_and_counts_from_an_offset(void **state) {
  uint64_t a = authloop__boot_ms(), b = authloop__boot_ms();
  (void)state;
  assert_true(b >= a);
  assert_true(a > (1ull << 40)); /* wall-derived times never underflow */
  assert_true(authloop__wall_ms() > 1600000000000ull);
}

static void timer_closed(void *ud) { (*(int *)ud)++; }

/* a loop and a ctx's timer on it; the timer closed, then the loop, with
 * nothing left behind */
static void timer_open(uv_loop_t *loop, authloop__timer *t) {
  assert_int_equal(uv_loop_init(loop), 0);
  authloop__timer_init(t, loop);
}

static void timer_shut(uv_loop_t *loop, authloop__timer *t) {
  int closed = 0;
  authloop__timer_close(t, timer_closed, &closed);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void never_fires(authloop__timer_entry *e, uint64_t now) {
  (void)e, (void)now;
  fail_msg("no entry is due in this test");
}

/* Entries without a promise never take the room promised to others: with
 * every unpromised entry scheduled, each promised one still fits without a
 * reallocation (one that could fail where nothing may). */
static void promised_room_stays_promised(void **state) {
  enum { PROMISED = 20, OTHERS = 13 }; /* 20 promises make room for 32 */
  authloop__timer_entry promised[PROMISED], others[OTHERS];
  authloop__timer t;
  uv_loop_t loop;
  authloop__timer_entry **items;
  size_t cap;
  int i, closed = 0;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  authloop__timer_init(&t, &loop);
  for (i = 0; i < PROMISED; i++) {
    authloop__timer_entry_init(&promised[i], never_fires);
    assert_int_equal(authloop__timer_reserve(&t, &promised[i]), 0);
  }
  for (i = 0; i < OTHERS; i++) {
    authloop__timer_entry_init(&others[i], never_fires);
    assert_int_equal(authloop__timer_set(&t, &others[i], authloop__boot_ms() + 3600 * S + i), 0);
  }
  items = t.items;
  cap = t.cap;
  for (i = 0; i < PROMISED; i++)
    assert_int_equal(authloop__timer_set(&t, &promised[i], authloop__boot_ms() + 7200 * S), 0);
  assert_ptr_equal(t.items, items); /* no reallocation */
  assert_int_equal(t.cap, cap);
  assert_int_equal(t.len, PROMISED + OTHERS);
  for (i = 0; i < PROMISED; i++) {
    authloop__timer_set(&t, &promised[i], AUTHLOOP__NEVER);
    authloop__timer_release(&t, &promised[i]);
  }
  for (i = 0; i < OTHERS; i++)
    authloop__timer_set(&t, &others[i], AUTHLOOP__NEVER);
  assert_int_equal(t.len, 0);
  assert_int_equal(t.unreserved, 0);
  assert_int_equal(t.reserved, 0);
  authloop__timer_close(&t, timer_closed, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* marks the entry fired (its deadline, which nothing else sets to 1) */
static void count_fired(authloop__timer_entry *e, uint64_t now) {
  (void)now;
  e->at = 1;
}

/* What kernel time the timerfd is set for, in boot-clock ms (AUTHLOOP__NEVER:
 * disarmed); -1 without a timerfd. */
static long long kernel_at(const authloop__timer *t) {
#ifdef __linux__
  struct itimerspec its;
  if (t->fd < 0 || timerfd_gettime(t->fd, &its) != 0)
    return -1;
  return its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0 ? (long long)-2 : 1;
#else
  (void)t;
  return -1;
#endif
}

/* The kernel timer is set once a turn, in the loop's prepare phase: a
 * deadline set and taken back in one turn (a login whose handler logs out)
 * costs no system call; one set in a turn is armed before the loop polls, so
 * a deadline that is due fires in that same turn; a host loop is told a turn
 * is due meanwhile. */
static void kernel_timer_set_once_a_turn(void **state) {
  authloop__timer t;
  authloop__timer_entry a, b, due;
  uv_loop_t loop;
  uint64_t now = authloop__boot_ms();
  (void)state;
  timer_open(&loop, &t);
  if (t.fd < 0)
    skip();
  authloop__timer_entry_init(&a, never_fires);
  authloop__timer_entry_init(&b, never_fires);
  authloop__timer_entry_init(&due, count_fired);
  /* set and taken back in one turn: nothing reaches the kernel */
  assert_int_equal(authloop__timer_set(&t, &a, now + 3600 * S), 0);
  assert_true(authloop__timer_pending(&t));
  assert_true(t.armed_at == AUTHLOOP__NEVER);
  authloop__timer_set(&t, &a, AUTHLOOP__NEVER);
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0); /* nothing keeps the loop alive */
  assert_false(authloop__timer_pending(&t));
  assert_true(t.armed_at == AUTHLOOP__NEVER);
  assert_int_equal(kernel_at(&t), -2);
  /* set in one turn: armed by the time the loop polls */
  assert_int_equal(authloop__timer_set(&t, &a, now + 3600 * S), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_false(authloop__timer_pending(&t));
  assert_true(t.armed_at == now + 3600 * S);
  assert_int_equal(kernel_at(&t), 1);
  /* a sooner one moves it; a later one leaves it (it goes off early, and is set again) */
  assert_int_equal(authloop__timer_set(&t, &b, now + 1800 * S), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_true(t.armed_at == now + 1800 * S);
  authloop__timer_set(&t, &b, now + 7200 * S);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_true(t.armed_at == now + 1800 * S);
  /* the last one leaves: disarmed, and the loop is free to end */
  authloop__timer_set(&t, &a, AUTHLOOP__NEVER);
  authloop__timer_set(&t, &b, AUTHLOOP__NEVER);
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
  assert_true(t.armed_at == AUTHLOOP__NEVER);
  assert_int_equal(kernel_at(&t), -2);
  /* due now: it fires within the one turn that set it */
  assert_int_equal(authloop__timer_set(&t, &due, authloop__boot_ms()), 0);
  uv_run(&loop, UV_RUN_ONCE);
  assert_true(due.at == 1);
  assert_true(due.index == AUTHLOOP__NOT_SCHEDULED);
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
  assert_int_equal(kernel_at(&t), -2);
  timer_shut(&loop, &t);
}

typedef struct {
  authloop__timer *t;
  authloop__timer_entry *e;
  uint64_t at;
} set_later;

/* an application's prepare callback that sets a deadline, once */
static void set_in_prepare(uv_prepare_t *p) {
  set_later *s = p->data;
  assert_int_equal(authloop__timer_set(s->t, s->e, s->at), 0);
  uv_prepare_stop(p);
}

static void watchdog(uv_timer_t *w) { (void)w; }

/* A deadline set where the turn has no prepare phase left (an application's
 * prepare callback), or from outside the loop of a host that polls libuv's
 * own backend fd and timeout, is set in the kernel before the loop sleeps:
 * it fires when due, not when something else wakes the loop. */
static void a_deadline_set_late_in_a_turn_fires(void **state) {
  authloop__timer t;
  authloop__timer_entry e;
  uv_loop_t loop;
  uv_prepare_t app;
  uv_timer_t dog;
  set_later s;
  uint64_t t0;
  (void)state;
  timer_open(&loop, &t);
  if (t.fd < 0)
    skip();
  /* from a prepare callback of the application's */
  authloop__timer_entry_init(&e, count_fired);
  t0 = authloop__boot_ms();
  s = (set_later){&t, &e, t0 + 50};
  uv_prepare_init(&loop, &app);
  app.data = &s;
  uv_prepare_start(&app, set_in_prepare);
  /* wakes the loop after 3 s only if the deadline did not: unreferenced,
   * it keeps nothing alive */
  uv_timer_init(&loop, &dog);
  uv_timer_start(&dog, watchdog, 3000, 0);
  uv_unref((uv_handle_t *)&dog);
  while (e.at != 1 && authloop__boot_ms() - t0 < 3000)
    uv_run(&loop, UV_RUN_ONCE);
  assert_true(e.at == 1);
  assert_true(authloop__boot_ms() - t0 < 1000);
  /* a host loop on uv_backend_fd() and uv_backend_timeout(), the deadline
   * set outside any turn */
  authloop__timer_entry_init(&e, count_fired);
  t0 = authloop__boot_ms();
  assert_int_equal(authloop__timer_set(&t, &e, t0 + 50), 0);
  assert_int_equal(uv_backend_timeout(&loop), 0);
  while (e.at != 1 && authloop__boot_ms() - t0 < 3000) {
    struct pollfd p = {uv_backend_fd(&loop), POLLIN, 0};
    int timeout = uv_backend_timeout(&loop);
    poll(&p, 1, timeout < 0 || timeout > 3000 ? 3000 : timeout);
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  assert_true(e.at == 1);
  assert_true(authloop__boot_ms() - t0 < 1000);
  uv_close((uv_handle_t *)&app, NULL);
  uv_close((uv_handle_t *)&dog, NULL);
  timer_shut(&loop, &t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(promised_room_stays_promised),
      cmocka_unit_test(kernel_timer_set_once_a_turn),
      cmocka_unit_test(a_deadline_set_late_in_a_turn_fires),
      cmocka_unit_test(margin_and_its_cap),
      cmocka_unit_test(due_time_and_jitter_bounds),
      cmocka_unit_test(backoff_bounds),
      cmocka_unit_test(retry_after_and_expiry),
      cmocka_unit_test(decisions),
      cmocka_unit_test(unrefreshable_token),
      cmocka_unit_test(a_token_that_never_runs_out),
      cmocka_unit_test(retries_and_offline),
      cmocka_unit_test(suspend_past_the_deadline),
      cmocka_unit_test(stale_restored_session),
      cmocka_unit_test(extremes_saturate),
      cmocka_unit_test(boot_clock_moves_and_counts_from_an_offset),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
