/* SPDX-License-Identifier: MIT */
/* The refresh/idle/backoff policy as pure functions of "now". */
#include "policy.h"

#define JITTER_MAX_MS 30000u

uint64_t authloop__refresh_margin(uint64_t lifetime_ms, uint64_t margin_ms) {
  return margin_ms < lifetime_ms / 2 ? margin_ms : lifetime_ms / 2;
}

uint64_t authloop__refresh_due(uint64_t received, uint64_t lifetime_ms, uint64_t margin_ms,
                               uint32_t rnd) {
  uint64_t margin = authloop__refresh_margin(lifetime_ms, margin_ms);
  uint64_t jitter_max = margin / 10 < JITTER_MAX_MS ? margin / 10 : JITTER_MAX_MS;
  /* jitter only ever moves the refresh earlier, never past the margin */
  uint64_t at = authloop__sat_add(received, lifetime_ms - margin);
  return authloop__sat_sub(at, rnd % (jitter_max + 1));
}

uint64_t authloop__backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd) {
  uint64_t ceiling = base_ms;
  while (attempt-- > 0 && ceiling < cap_ms)
    ceiling = authloop__sat_add(ceiling, ceiling);
  if (ceiling > cap_ms)
    ceiling = cap_ms;
  return ceiling == UINT64_MAX ? rnd : rnd % (ceiling + 1); /* full jitter */
}

uint64_t authloop__retry_at(uint64_t now, uint64_t backoff_ms, long long retry_after_ms,
                            uint64_t expires_at) {
  uint64_t at = authloop__sat_add(now, retry_after_ms > 0 ? (uint64_t)retry_after_ms : backoff_ms);
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
  if (t->unrefreshable) { /* active or not: nothing to do but wait for the end */
    if (now >= t->expires_at)
      return AUTHLOOP__EXPIRE_LIFETIME;
    *wake_at = t->expires_at;
    return AUTHLOOP__WAIT;
  }
  if (t->expires_at == AUTHLOOP__NEVER) /* unknown lifetime: nothing is due, warned of or ended */
    return AUTHLOOP__WAIT;
  if (t->stale) { /* restored with a dead token: refresh on first activity */
    if (!active || t->offline)
      return AUTHLOOP__WAIT;
    if (t->retrying && now < t->retry_at) { /* a failed one backs off like any other */
      *wake_at = t->retry_at;
      return AUTHLOOP__WAIT;
    }
    return AUTHLOOP__REFRESH;
  }
  if (now < due) {
    *wake_at = due;
    return AUTHLOOP__WAIT;
  }
  if (active) {
    if (!t->offline)
      return AUTHLOOP__REFRESH;
    /* offline: only the user going idle changes anything before the
     * network comes back (which wakes every client) */
    *wake_at = authloop__sat_add(t->last_activity, t->idle_ms);
    return AUTHLOOP__WAIT;
  }
  if (now >= t->expires_at)
    return AUTHLOOP__EXPIRE_IDLE;
  if (!t->warned)
    return AUTHLOOP__WARN_IDLE;
  *wake_at = t->expires_at;
  return AUTHLOOP__WAIT;
}
