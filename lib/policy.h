/* SPDX-License-Identifier: MIT */
/* The token policy as pure arithmetic on values: when a refresh is due, how
 * long to back off, what a logged-in session does next. No clock is read
 * here, no system call is made; every time is a value in milliseconds of the
 * boot clock, passed in. Every sum saturates, so no input wraps around. */
#ifndef AUTHLOOP_POLICY_H
#define AUTHLOOP_POLICY_H

#include <stdint.h>

#define AUTHLOOP__NEVER UINT64_MAX

/* Ten years: a lifetime longer than this is not a lifetime but a mistake. */
#define AUTHLOOP__MAX_LIFETIME_MS (10ull * 366 * 24 * 3600 * 1000)

static inline uint64_t authloop__sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
static inline uint64_t authloop__sat_sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* Everything the policy needs to decide what a logged-in client does next. */
typedef struct {
  uint64_t expires_at, refresh_due, retry_at, last_activity, idle_ms;
  int retrying;      /* a transient failure happened: retry_at is the next try */
  int warned;        /* tokenExpiring was emitted for this token */
  int offline;       /* the application said the network is gone */
  int stale;         /* restored with a dead token: refresh on first activity */
  int unrefreshable; /* the server never refreshes this token: it lasts until expires_at */
} authloop__timing;

typedef enum {
  AUTHLOOP__WAIT,           /* nothing now; look again at *wake_at */
  AUTHLOOP__REFRESH,        /* refresh now */
  AUTHLOOP__WARN_IDLE,      /* due but idle: emit tokenExpiring (once) */
  AUTHLOOP__EXPIRE_IDLE,    /* idle and the token ran out: end the session */
  AUTHLOOP__EXPIRE_LIFETIME /* a token never refreshed ran out: end the session */
} authloop__action;

/* The margin before expiry: margin_ms, at most half the lifetime. */
uint64_t authloop__refresh_margin(uint64_t lifetime_ms, uint64_t margin_ms);
/* When to refresh a token received at `received`: expiry minus the margin,
 * minus a jitter of at most a tenth of the margin (and 30 s) drawn from rnd. */
uint64_t authloop__refresh_due(uint64_t received, uint64_t lifetime_ms, uint64_t margin_ms,
                               uint32_t rnd);
/* Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)]. */
uint64_t authloop__backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd);
/* The next try: Retry-After (ms, when > 0) or the backoff, never past expiry. */
uint64_t authloop__retry_at(uint64_t now, uint64_t backoff_ms, long long retry_after_ms,
                            uint64_t expires_at);
authloop__action authloop__decide(const authloop__timing *t, uint64_t now, uint64_t *wake_at);

#endif
