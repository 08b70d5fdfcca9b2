/* The refresh/idle/backoff policy as pure functions of "now", and the one
 * timer per ctx that serves every client: a min-heap of client deadlines.
 *
 * Deadlines are in milliseconds of a clock that keeps counting while the
 * machine sleeps (CLOCK_BOOTTIME on Linux). On Linux the timer is a timerfd on
 * that same clock, so a deadline that passed during suspend fires on wake;
 * elsewhere a uv_timer stands in, and deadlines are still compared with the
 * boot clock when it fires. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/timerfd.h>
#endif

#ifndef CLOCK_BOOTTIME
#define CLOCK_BOOTTIME CLOCK_MONOTONIC
#endif

#define JITTER_MAX_MS 30000u

/* Boot time plus 2^40 ms (~35 years): times converted from the wall clock
 * ("last active 3 days ago", just after a reboot) stay positive. */
#define BOOT_OFFSET_MS (1ull << 40)

uint64_t authloop__boot_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return BOOT_OFFSET_MS + (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t authloop__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- policy (pure) ------------------------------------------------------------- */

uint64_t authloop__refresh_margin(uint64_t lifetime_ms, uint64_t margin_ms) {
  return margin_ms < lifetime_ms / 2 ? margin_ms : lifetime_ms / 2;
}

uint64_t authloop__refresh_due(uint64_t received, uint64_t lifetime_ms, uint64_t margin_ms,
                               uint32_t rnd) {
  uint64_t margin = authloop__refresh_margin(lifetime_ms, margin_ms);
  uint64_t jitter_max = margin / 10 < JITTER_MAX_MS ? margin / 10 : JITTER_MAX_MS;
  /* jitter only ever moves the refresh earlier, never past the margin */
  return received + lifetime_ms - margin - rnd % (jitter_max + 1);
}

uint64_t authloop__backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd) {
  uint64_t ceiling = base_ms;
  while (attempt-- > 0 && ceiling < cap_ms)
    ceiling *= 2;
  if (ceiling > cap_ms)
    ceiling = cap_ms;
  return rnd % (ceiling + 1); /* full jitter */
}

uint64_t authloop__retry_at(uint64_t now, uint64_t backoff_ms, long long retry_after_ms,
                            uint64_t expires_at) {
  uint64_t at = now + (retry_after_ms > 0 ? (uint64_t)retry_after_ms : backoff_ms);
  /* one more try at the latest when the token runs out, whatever was asked */
  if (now < expires_at && at > expires_at)
    at = expires_at;
  return at;
}

authloop__action authloop__decide(const authloop__timing *t, uint64_t now, uint64_t *wake_at) {
  /* last_activity 0: never active (a restored session not yet touched) */
  int active = t->last_activity && (now < t->last_activity || now - t->last_activity < t->idle_ms);
  uint64_t due = t->retrying ? t->retry_at : t->refresh_due;
  *wake_at = AUTHLOOP__NEVER;
  if (t->stale) /* restored with a dead token: refresh on first activity */
    return active && !t->offline ? AUTHLOOP__REFRESH : AUTHLOOP__WAIT;
  if (now < due) {
    *wake_at = due;
    return AUTHLOOP__WAIT;
  }
  if (active) {
    if (!t->offline)
      return AUTHLOOP__REFRESH;
    /* offline: only the user going idle changes anything before the
     * network comes back (which wakes every client) */
    *wake_at = t->last_activity + t->idle_ms;
    return AUTHLOOP__WAIT;
  }
  if (now >= t->expires_at)
    return AUTHLOOP__EXPIRE_IDLE;
  if (!t->warned)
    return AUTHLOOP__WARN_IDLE;
  *wake_at = t->expires_at;
  return AUTHLOOP__WAIT;
}

/* ---- the deadline heap ------------------------------------------------------------ */

static int earlier(const authloop__sched *s, size_t a, size_t b) {
  return s->items[a]->wake_at < s->items[b]->wake_at;
}

static void swap(authloop__sched *s, size_t a, size_t b) {
  authloop_client *t = s->items[a];
  s->items[a] = s->items[b];
  s->items[b] = t;
  s->items[a]->heap_index = a;
  s->items[b]->heap_index = b;
}

static void sift_up(authloop__sched *s, size_t i) {
  while (i > 0 && earlier(s, i, (i - 1) / 2)) {
    swap(s, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void sift_down(authloop__sched *s, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < s->len && earlier(s, l, m))
      m = l;
    if (r < s->len && earlier(s, r, m))
      m = r;
    if (m == i)
      return;
    swap(s, i, m);
    i = m;
  }
}

static void heap_remove(authloop__sched *s, authloop_client *c) {
  size_t i = c->heap_index;
  c->heap_index = AUTHLOOP__NOT_SCHEDULED;
  if (--s->len == i)
    return;
  s->items[i] = s->items[s->len];
  s->items[i]->heap_index = i;
  sift_down(s, i);
  sift_up(s, i);
}

/* ---- the ctx timer ----------------------------------------------------------------- */

static void arm(authloop_ctx *ctx);

static void on_due(authloop_ctx *ctx) {
  authloop__sched *s = &ctx->sched;
  uint64_t now = authloop__boot_ms();
  /* evaluate may reschedule the client it is given; each client is taken
   * off the heap first, so the loop ends */
  while (s->len && s->items[0]->wake_at <= now) {
    authloop_client *c = s->items[0];
    heap_remove(s, c);
    authloop__client_evaluate(c, now);
  }
  arm(ctx);
}

#ifdef __linux__
static void on_timerfd(uv_poll_t *p, int status, int events) {
  authloop_ctx *ctx = p->data;
  uint64_t expirations;
  (void)status;
  (void)events;
  while (read(ctx->sched.fd, &expirations, sizeof(expirations)) > 0) {
  }
  ctx->sched.armed_at = AUTHLOOP__NEVER; /* it went off */
  on_due(ctx);
}
#endif

static void on_timer(uv_timer_t *t) {
  authloop_ctx *ctx = t->data;
  ctx->sched.armed_at = AUTHLOOP__NEVER;
  on_due(ctx);
}

/* Lazy: the timer is only moved when the earliest deadline comes sooner than
 * it is set for. Set for too soon, it goes off early and is set again; with
 * nothing scheduled it is left alone and merely stops keeping the loop alive
 * (uv_unref, no system call). Logins, refreshes and logouts therefore cost no
 * timer system calls at all, whatever the number of sessions. */
static void arm(authloop_ctx *ctx) {
  authloop__sched *s = &ctx->sched;
  uint64_t at = s->len ? s->items[0]->wake_at : AUTHLOOP__NEVER;
#ifdef __linux__
  if (s->fd >= 0) {
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (at == AUTHLOOP__NEVER) {
      uv_unref((uv_handle_t *)&s->poll);
      return;
    }
    uv_ref((uv_handle_t *)&s->poll);
    if (at >= s->armed_at)
      return;
    s->armed_at = at;
    /* back to the kernel's clock; 0 would disarm, a past deadline needs a tick */
    at = at > BOOT_OFFSET_MS ? at - BOOT_OFFSET_MS : 1;
    its.it_value.tv_sec = (time_t)(at / 1000);
    its.it_value.tv_nsec = (long)(at % 1000) * 1000000L;
    timerfd_settime(s->fd, TFD_TIMER_ABSTIME, &its, NULL);
    return;
  }
#endif
  if (at == s->armed_at)
    return;
  s->armed_at = at;
  if (at == AUTHLOOP__NEVER) {
    uv_timer_stop(&s->timer);
  } else {
    uint64_t now = authloop__boot_ms();
    uv_timer_start(&s->timer, on_timer, at > now ? at - now : 0, 0);
  }
}

void authloop__sched_set(authloop_client *c, uint64_t wake_at) {
  authloop__sched *s = &c->ctx->sched;
  if (c->heap_index != AUTHLOOP__NOT_SCHEDULED) {
    if (wake_at == AUTHLOOP__NEVER) {
      heap_remove(s, c);
    } else {
      uint64_t old = c->wake_at;
      c->wake_at = wake_at;
      if (wake_at < old)
        sift_up(s, c->heap_index);
      else
        sift_down(s, c->heap_index);
    }
  } else if (wake_at != AUTHLOOP__NEVER) {
    if (s->len == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 16;
      authloop_client **items = realloc(s->items, cap * sizeof(*items));
      if (!items)
        return; /* out of memory: the client is looked at on its next activity */
      s->items = items;
      s->cap = cap;
    }
    c->wake_at = wake_at;
    c->heap_index = s->len;
    s->items[s->len++] = c;
    sift_up(s, c->heap_index);
  }
  arm(c->ctx);
}

void authloop__sched_remove(authloop_client *c) { authloop__sched_set(c, AUTHLOOP__NEVER); }

void authloop__sched_init(authloop_ctx *ctx) {
  authloop__sched *s = &ctx->sched;
  s->armed_at = AUTHLOOP__NEVER;
  s->fd = -1;
#ifdef __linux__
  s->fd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (s->fd >= 0 && uv_poll_init(ctx->loop, &s->poll, s->fd) != 0) {
    close(s->fd);
    s->fd = -1;
  }
  if (s->fd >= 0) {
    s->poll.data = ctx;
    ctx->open_handles++;
    /* watched for good; it keeps the loop alive only while something is scheduled */
    uv_poll_start(&s->poll, UV_READABLE, on_timerfd);
    uv_unref((uv_handle_t *)&s->poll);
    return;
  }
#endif
  /* no timerfd: a uv_timer, checked against the boot clock when it fires */
  uv_timer_init(ctx->loop, &s->timer);
  s->timer.data = ctx;
  ctx->open_handles++;
}

static void sched_closed(uv_handle_t *h) {
  authloop_ctx *ctx = h->data;
  if (ctx->sched.fd >= 0)
    close(ctx->sched.fd);
  authloop__handle_closed(ctx);
}

void authloop__sched_close(authloop_ctx *ctx) {
  authloop__sched *s = &ctx->sched;
  free(s->items);
  s->items = NULL;
  s->len = s->cap = 0;
  if (s->fd >= 0)
    uv_close((uv_handle_t *)&s->poll, sched_closed);
  else
    uv_close((uv_handle_t *)&s->timer, sched_closed);
}
