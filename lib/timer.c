/* SPDX-License-Identifier: MIT */
/* The deadline heap and the one kernel timer behind it (see timer.h). */
#include "timer.h"

#include "authloop.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/timerfd.h>
#endif

#ifndef CLOCK_BOOTTIME
#define CLOCK_BOOTTIME CLOCK_MONOTONIC
#endif

uint64_t authloop__boot_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return AUTHLOOP__BOOT_OFFSET_MS + (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t authloop__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec < 0 ? 0 : (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the heap ------------------------------------------------------------------- */

static int earlier(const authloop__timer *t, size_t a, size_t b) {
  return t->items[a]->at < t->items[b]->at;
}

static void swap(authloop__timer *t, size_t a, size_t b) {
  authloop__timer_entry *e = t->items[a];
  t->items[a] = t->items[b];
  t->items[b] = e;
  t->items[a]->index = a;
  t->items[b]->index = b;
}

static void sift_up(authloop__timer *t, size_t i) {
  while (i > 0 && earlier(t, i, (i - 1) / 2)) {
    swap(t, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void sift_down(authloop__timer *t, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < t->len && earlier(t, l, m))
      m = l;
    if (r < t->len && earlier(t, r, m))
      m = r;
    if (m == i)
      return;
    swap(t, i, m);
    i = m;
  }
}

/* The heap holds at least `need` entries. */
static int grow(authloop__timer *t, size_t need) {
  size_t cap = t->cap ? t->cap : 16;
  authloop__timer_entry **items;
  while (cap < need)
    cap *= 2;
  if (cap == t->cap)
    return 0;
  if (!(items = realloc(t->items, cap * sizeof(*items))))
    return AUTHLOOP_ENOMEM;
  t->items = items;
  t->cap = cap;
  return 0;
}

static void heap_remove(authloop__timer *t, authloop__timer_entry *e) {
  size_t i = e->index;
  e->index = AUTHLOOP__NOT_SCHEDULED;
  if (!e->reserved)
    t->unreserved--;
  if (--t->len == i)
    return;
  t->items[i] = t->items[t->len];
  t->items[i]->index = i;
  sift_down(t, i);
  sift_up(t, i);
}

/* ---- the kernel timer -------------------------------------------------------------- */

static void on_due(authloop__timer *t);

static void on_uv_timer(uv_timer_t *h) {
  authloop__timer *t = h->data;
  t->armed_at = AUTHLOOP__NEVER;
  on_due(t);
}

static void start_uv_timer(authloop__timer *t, uint64_t at) {
  uint64_t now = authloop__boot_ms();
  uv_timer_start(&t->timer, on_uv_timer, at > now ? at - now : 0, 0);
}

#ifdef __linux__
static void on_timerfd(uv_poll_t *p, int status, int events) {
  authloop__timer *t = p->data;
  uint64_t expirations;
  (void)status;
  (void)events;
  /* one read takes every expiration (a second would only fail EAGAIN); the
   * fd is non-blocking, so one that fails (a wake-up with nothing to read)
   * changes nothing: on_due arms the timer again */
  (void)!read(t->fd, &expirations, sizeof(expirations));
  t->armed_at = AUTHLOOP__NEVER; /* it went off */
  on_due(t);
}

/* 0 when the timerfd is set for boot-clock time `at` (AUTHLOOP__NEVER: disarmed). */
static int set_timerfd(authloop__timer *t, uint64_t at) {
  struct itimerspec its = {{0, 0}, {0, 0}};
  if (at != AUTHLOOP__NEVER) {
    /* back to the kernel's clock; 0 would disarm, a past deadline needs a tick */
    uint64_t k = at > AUTHLOOP__BOOT_OFFSET_MS ? at - AUTHLOOP__BOOT_OFFSET_MS : 1;
    if (k / 1000 > (uint64_t)INT32_MAX)
      k = (uint64_t)INT32_MAX * 1000; /* ~68 years from boot: "later" is enough */
    its.it_value.tv_sec = (time_t)(k / 1000);
    its.it_value.tv_nsec = (long)(k % 1000) * 1000000L;
  }
  return timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &its, NULL);
}
#endif

static void arm_now(authloop__timer *t);

#ifdef __linux__
/* the turn's changes, set in the kernel timer: by whichever of the two
 * handles runs first (see arm) */
static void settle(authloop__timer *t) {
  uv_idle_stop(&t->idle);
  uv_prepare_stop(&t->prepare);
  arm_now(t);
}
static void on_idle(uv_idle_t *h) { settle(h->data); }
static void on_prepare(uv_prepare_t *h) { settle(h->data); }
#endif

/* The kernel timer is set once a turn, before the loop polls: whatever a turn
 * did to the deadlines (a login, its logout from the loginAttempt handler, a
 * refresh that replaces its deadline) costs one system call at most, or none,
 * and none comes between an answer and its event. A change starts an idle
 * and a prepare handle; the first of them to run sets the timer and stops
 * both, in the next idle phase or, for a change made in an idle callback,
 * in the prepare phase of the same turn. The idle handle is what tells
 * libuv, and any host loop that asks uv_backend_timeout() or
 * authloop_ctx_timeout_ms(), that a turn is due: a change made after the
 * prepare phase (in a prepare callback, the poll, the check phase, outside
 * the loop) gets a turn without sleeping, and otherwise both are stopped
 * before the loop computes how long to sleep. Without a timerfd, libuv's
 * timer is set at once. */
static void arm(authloop__timer *t) {
#ifdef __linux__
  if (t->fd >= 0 && !t->failed) {
    if (!uv_is_active((uv_handle_t *)&t->idle) && !uv_is_closing((uv_handle_t *)&t->idle)) {
      uv_idle_start(&t->idle, on_idle);
      uv_prepare_start(&t->prepare, on_prepare);
    }
    return;
  }
#endif
  arm_now(t);
}

int authloop__timer_pending(const authloop__timer *t) {
  return uv_is_active((const uv_handle_t *)&t->idle);
}

/* Moves the kernel timer only when the earliest deadline comes sooner than it
 * is set for (set for too soon, it goes off early and is set again), and
 * disarms it when nothing is scheduled: one system call when the last
 * session leaves, none for logins and refreshes among many sessions. */
static void arm_now(authloop__timer *t) {
  uint64_t at = t->len ? t->items[0]->at : AUTHLOOP__NEVER;
#ifdef __linux__
  if (t->fd >= 0 && !t->failed) {
    if (at == AUTHLOOP__NEVER) {
      uv_unref((uv_handle_t *)&t->poll);
      if (t->armed_at != AUTHLOOP__NEVER && set_timerfd(t, AUTHLOOP__NEVER) == 0)
        t->armed_at = AUTHLOOP__NEVER;
      return;
    }
    uv_ref((uv_handle_t *)&t->poll);
    if (at >= t->armed_at)
      return;
    if (set_timerfd(t, at) == 0) {
      t->armed_at = at;
      return;
    }
    /* the kernel refused: never lose a deadline, use libuv's timer from now on */
    t->failed = 1;
    uv_unref((uv_handle_t *)&t->poll);
    t->armed_at = AUTHLOOP__NEVER;
  }
#endif
  if (at == t->armed_at)
    return;
  t->armed_at = at;
  if (at == AUTHLOOP__NEVER)
    uv_timer_stop(&t->timer);
  else
    start_uv_timer(t, at);
}

static void on_due(authloop__timer *t) {
  uint64_t now = authloop__boot_ms();
  size_t budget = t->len;
  /* each entry is taken off the heap before its function runs, which may
   * schedule it again; one due at once again waits for the next tick (the
   * budget), so a function that always reschedules cannot hold the loop */
  while (budget-- > 0 && t->len && t->items[0]->at <= now) {
    authloop__timer_entry *e = t->items[0];
    heap_remove(t, e);
    e->fn(e, now);
  }
  arm(t);
}

int authloop__timer_set(authloop__timer *t, authloop__timer_entry *e, uint64_t at) {
  int rc = 0;
  if (e->index != AUTHLOOP__NOT_SCHEDULED) {
    if (at == AUTHLOOP__NEVER) {
      heap_remove(t, e);
    } else {
      uint64_t old = e->at;
      e->at = at;
      if (at < old)
        sift_up(t, e->index);
      else
        sift_down(t, e->index);
    }
  } else if (at != AUTHLOOP__NEVER) {
    /* a promised entry has its room; another needs room beside every promise */
    if (e->reserved ? grow(t, t->len + 1) : grow(t, t->unreserved + t->reserved + 1))
      return AUTHLOOP_ENOMEM;
    if (!e->reserved)
      t->unreserved++;
    e->at = at;
    e->index = t->len;
    t->items[t->len++] = e;
    sift_up(t, e->index);
  }
  arm(t);
  return rc;
}

int authloop__timer_reserve(authloop__timer *t, authloop__timer_entry *e) {
  if (e->reserved)
    return 0;
  if (grow(t, t->unreserved + t->reserved + 1))
    return AUTHLOOP_ENOMEM;
  t->reserved++;
  e->reserved = 1;
  return 0;
}

void authloop__timer_release(authloop__timer *t, authloop__timer_entry *e) {
  if (!e->reserved)
    return;
  if (e->index != AUTHLOOP__NOT_SCHEDULED) /* counted with the others from now on */
    t->unreserved++;
  e->reserved = 0;
  t->reserved--;
}

void authloop__timer_init(authloop__timer *t, uv_loop_t *loop) {
  memset(t, 0, sizeof(*t));
  t->armed_at = AUTHLOOP__NEVER;
  t->fd = -1;
  uv_timer_init(loop, &t->timer); /* cannot fail on a valid loop */
  uv_idle_init(loop, &t->idle);
  uv_prepare_init(loop, &t->prepare);
  t->timer.data = t->idle.data = t->prepare.data = t;
  t->handles = 3;
#ifdef __linux__
  t->fd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (t->fd >= 0 && uv_poll_init(loop, &t->poll, t->fd) != 0) {
    close(t->fd);
    t->fd = -1;
  }
  if (t->fd >= 0) {
    t->poll.data = t;
    t->handles++;
    /* watched for good; it keeps the loop alive only while something is scheduled */
    if (uv_poll_start(&t->poll, UV_READABLE, on_timerfd) != 0)
      t->failed = 1;
    uv_unref((uv_handle_t *)&t->poll);
  }
#endif
}

static void handle_closed(uv_handle_t *h) {
  authloop__timer *t = h->data;
  if (--t->handles)
    return;
  if (t->fd >= 0)
    close(t->fd);
  t->fd = -1;
  t->closed(t->closed_ud);
}

void authloop__timer_close(authloop__timer *t, void (*closed)(void *ud), void *ud) {
  size_t i;
  for (i = 0; i < t->len; i++)
    t->items[i]->index = AUTHLOOP__NOT_SCHEDULED;
  free(t->items);
  t->items = NULL;
  t->len = t->cap = 0;
  t->closed = closed;
  t->closed_ud = ud;
  uv_close((uv_handle_t *)&t->timer, handle_closed);
  uv_close((uv_handle_t *)&t->idle, handle_closed);
  uv_close((uv_handle_t *)&t->prepare, handle_closed);
  if (t->fd >= 0)
    uv_close((uv_handle_t *)&t->poll, handle_closed);
}
