/* SPDX-License-Identifier: MIT */
/* The token lifecycle: refresh before expiry while the user is active, idle
 * expiry, one refresh in flight per client, retries with backoff, network
 * health, authenticated requests that wait for a refresh and retry once on a
 * 401, and the persisted session. The arithmetic is lib/policy.c; this file
 * acts on it and is the one place that converts wall-clock times to the boot
 * clock and back. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#define CLOCK_SKEW_MS   300000 /* what a session file's times may be ahead of our clock */
#define OFFLINE_HOLD_MS 10000  /* then offline this long after the last one */

typedef struct {
  authloop__link link; /* in c->refresh_waiters */
  authloop_done_cb cb;
  void *userdata;
  authloop__call_entry *out; /* its callback, reserved by the call */
} waiter;

/* One authloop_request(): waiting (x NULL) or sent. */
typedef struct {
  authloop__link link; /* in c->calls */
  authloop_client *c;
  char *method, *path;
  char *body; /* owned, may carry secrets: wiped */
  authloop_response_cb cb;
  void *userdata;
  authloop__call_entry *out; /* its callback, reserved by the call */
  uint64_t deadline;         /* boot ms: stop waiting then */
  unsigned token_gen;        /* the access token it was sent with */
  int retried;
  authloop__transfer *x;
  authloop__origin *origin; /* the server it went to, for its health; NULL: none */
} call;

/* ---- network health, per origin ------------------------------------------------ */

static void wake_all(authloop_ctx *ctx, const authloop__origin *only);

/* The origin's hold ended, or it answered again: what waited for it goes
 * now (as probes, after a hold). A timer, never a call from inside
 * health_note: no client is woken under the callback that noted health. */
void authloop__origin_hold_end(authloop__timer_entry *e, uint64_t now) {
  authloop__origin *o = AUTHLOOP__CONTAINER_OF(e, authloop__origin, hold_end);
  (void)now;
  if (o->failures)
    authloop__log(o->ctx, AUTHLOOP_LOG_INFO, "%s: the hold after network failures ended; probing",
                  o->key);
  wake_all(o->ctx, o);
}

int authloop_ctx_is_online(const authloop_ctx *ctx) { return ctx && ctx->online_app; }

/* ERESOLVE is left out, like any answer: a name that does not resolve is a
 * problem of that name, not a network that is down. */
void authloop__health_note(authloop_ctx *ctx, authloop__origin *o, int error) {
  int was;
  if (!o)
    return;
  was = authloop__online(ctx, o);
  if (error == AUTHLOOP_ENETWORK || error == AUTHLOOP_ETIMEDOUT) {
    if (o->failures < AUTHLOOP__OFFLINE_AFTER && ++o->failures == AUTHLOOP__OFFLINE_AFTER)
      authloop__log(ctx, AUTHLOOP_LOG_WARN, "%s: %u network failures in a row: on hold for %u ms",
                    o->key, o->failures, OFFLINE_HOLD_MS);
    if (o->failures >= AUTHLOOP__OFFLINE_AFTER) {
      o->offline_until = authloop__sat_add(authloop__boot_ms(), OFFLINE_HOLD_MS);
      if (!ctx->closing)
        authloop__timer_set(&ctx->timer, &o->hold_end, o->offline_until);
    }
  } else if (error != AUTHLOOP_ECANCELED && error != AUTHLOOP_ERESOLVE) {
    int back;
    o->failures = 0; /* the server answered */
    back = !was && authloop__online(ctx, o);
    if (back)
      authloop__log(ctx, AUTHLOOP_LOG_INFO, "%s answers again", o->key);
    if (!ctx->closing) /* back: what waits for it is woken from the loop, at once */
      authloop__timer_set(&ctx->timer, &o->hold_end, back ? authloop__boot_ms() : AUTHLOOP__NEVER);
  }
}

void authloop__health_outcome(authloop_ctx *ctx, authloop__origin *o,
                              const authloop__outcome *out) {
  if (!out->waited)
    authloop__health_note(ctx, o, out->error);
}

int authloop_ctx_set_online(authloop_ctx *ctx, int online) {
  int was;
  if (!ctx)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(ctx);
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  was = ctx->online_app;
  ctx->online_app = online != 0;
  authloop__log(ctx, AUTHLOOP_LOG_INFO, "network marked %s by the application",
                online ? "online" : "offline");
  if (!was && online)
    wake_all(ctx, NULL);
  return 0;
}

/* A token we may send: alive, and not being replaced right now. */
static int can_send(const authloop_client *c, uint64_t now) {
  return c->state == AUTHLOOP_STATE_LOGGED_IN && !c->timing.stale && now < c->timing.expires_at &&
         authloop__online(c->ctx, c->origins[0]);
}

/* ---- waiters and calls --------------------------------------------------------- */

static void finish_waiters(authloop_client *c, int status) {
  while (!authloop__list_empty(&c->refresh_waiters)) {
    waiter *w = AUTHLOOP__CONTAINER_OF(c->refresh_waiters.next, waiter, link);
    authloop__list_remove(&w->link);
    authloop__callback_done(c, &w->out, w->cb, w->userdata, status);
    free(w);
  }
}

static void call_finish(call *k, int status, long http_status, const char *body, size_t len) {
  authloop__callback_response(k->c, &k->out, k->cb, k->userdata, status, http_status,
                              body ? body : "", body ? len : 0);
  authloop__list_remove(&k->link);
  authloop__transfer_abort(k->x);
  free(k->method);
  free(k->path);
  authloop__secret_free(k->body);
  free(k);
}

static void on_call_done(void *ud, const authloop__outcome *o);

static void call_send(call *k) {
  authloop_client *c = k->c;
  authloop__request req = {0};
  authloop__view v;
  int rc;
  req.method = k->method;
  req.base = c->base_url;
  req.body = k->body;
  authloop__view_of(c, &c->session, &v);
  rc = authloop__request_path(&req, k->path, 0);
  if (rc == 0)
    rc = c->provider->authorize(c->pstate, &v, &req);
  /* its health is noted for the server it went to (none for a host the
   * dialect chose beyond the configured ones) */
  k->origin = req.base == c->base_url ? c->origins[0] : authloop__origin_of(c, req.base);
  if (rc == 0)
    rc = authloop__transport_start(&c->ctx->transport, &req, on_call_done, k, &k->x);
  authloop__request_clear(&req);
  if (rc) {
    call_finish(k, rc, 0, NULL, 0);
    return;
  }
  k->token_gen = c->token_gen;
}

/* Sends the waiting calls if the token allows; else leaves them waiting. */
static void flush_calls(authloop_client *c, uint64_t now) {
  authloop__link *l, *next;
  for (l = c->calls.next; l != &c->calls && can_send(c, now); l = next) {
    call *k = AUTHLOOP__CONTAINER_OF(l, call, link);
    next = l->next;
    if (!k->x)
      call_send(k);
  }
}

/* Calls that waited for a refresh after a 401 get the refresh's failure. */
static void fail_retried_calls(authloop_client *c, int status) {
  authloop__link *l, *next;
  for (l = c->calls.next; l != &c->calls; l = next) {
    call *k = AUTHLOOP__CONTAINER_OF(l, call, link);
    next = l->next;
    if (!k->x && k->retried)
      call_finish(k, status, 0, NULL, 0);
  }
}

/* Fails waiting calls past their deadline; returns the earliest other one. */
static uint64_t expire_calls(authloop_client *c, uint64_t now) {
  uint64_t earliest = AUTHLOOP__NEVER;
  authloop__link *l, *next;
  for (l = c->calls.next; l != &c->calls; l = next) {
    call *k = AUTHLOOP__CONTAINER_OF(l, call, link);
    next = l->next;
    if (k->x)
      continue;
    if (k->deadline <= now)
      call_finish(k,
                  authloop__online(c->ctx, c->origins[0]) ? AUTHLOOP_ETIMEDOUT : AUTHLOOP_EOFFLINE,
                  0, NULL, 0);
    else if (k->deadline < earliest)
      earliest = k->deadline;
  }
  return earliest;
}

static void release_lock(authloop_client *c);

void authloop__session_abort(authloop_client *c, int error) {
  authloop__transfer_abort(c->refresh_x);
  c->refresh_x = NULL;
  c->refresh_preparing = 0;
  c->lock_wait = 0;
  release_lock(c);
  finish_waiters(c, error);
  while (!authloop__list_empty(&c->calls))
    call_finish(AUTHLOOP__CONTAINER_OF(c->calls.next, call, link), error, 0, NULL, 0);
  authloop__timer_set(&c->ctx->timer, &c->wake, AUTHLOOP__NEVER);
}

/* The session goes locally: tokens wiped, file deleted, state LOGGED_OUT. */
void authloop__clear_locally(authloop_client *c, int error) {
  uint64_t idle_ms = c->timing.idle_ms;
  authloop__session_abort(c, error);
  authloop__session_retire(c->ctx, &c->session);
  memset(&c->timing, 0, sizeof(c->timing));
  c->timing.idle_ms = idle_ms;
  authloop__timer_set(&c->ctx->timer, &c->wake, AUTHLOOP__NEVER);
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_OUT);
}

/* The server says the session is gone (or another process ended it):
 * everything waiting gets `error`, then the logout event. `forget`: the file
 * goes too (when it still holds this session). */
static void end_here(authloop_client *c, int error, long http_status, int forget) {
  authloop__result r = {0};
  long long gen = c->gen, sid = c->sid;
  /* retired by the clearing, readable until the loop turns */
  const char *uid = authloop__user_id(c->session.user);
  authloop__clear_locally(c, error);
  if (forget)
    authloop__session_forget(c, AUTHLOOP__FORGET_REVOKED, gen, sid, uid);
  r.error = error;
  r.http_status = http_status;
  authloop__outcome_emit(c, NULL, AUTHLOOP_EV_LOGOUT, &r);
}

void authloop__logout_locally(authloop_client *c, int error, long http_status) {
  end_here(c, error, http_status, 1);
}

/* ---- the persisted session -------------------------------------------------------- */

/* boot ms <-> wall ms, saturating (boot times carry an offset: never negative) */
static long long to_wall(uint64_t boot, uint64_t now_boot, uint64_t now_wall) {
  uint64_t w = boot >= now_boot ? authloop__sat_add(now_wall, boot - now_boot)
                                : authloop__sat_sub(now_wall, now_boot - boot);
  return w > (uint64_t)INT64_MAX ? INT64_MAX : (long long)w;
}

static uint64_t to_boot(long long wall, uint64_t now_boot, uint64_t now_wall) {
  uint64_t w = (uint64_t)wall;
  return w >= now_wall ? authloop__sat_add(now_boot, w - now_wall)
                       : authloop__sat_sub(now_boot, now_wall - w);
}

/* The session as it is stored, the file's bytes (0, or an error logged). */
static int encode_session(authloop_client *c, unsigned char **data, size_t *len) {
  const authloop__session *s = &c->session;
  uint64_t now_boot = authloop__boot_ms(), now_wall = authloop__wall_ms();
  authloop__stored st = {0};
  int rc;
  st.provider = (char *)c->provider->name;
  st.base_url = c->base_url;
  st.access_token = s->access_token;
  st.id_token = s->id_token;
  st.refresh_token = s->refresh_token;
  st.user = s->user->json;
  st.lifetime_s = s->lifetime_s;
  st.expires_at = c->timing.expires_at == AUTHLOOP__NEVER
                      ? -1
                      : to_wall(c->timing.expires_at, now_boot, now_wall);
  st.last_activity =
      c->timing.last_activity ? to_wall(c->timing.last_activity, now_boot, now_wall) : 0;
  st.gen = c->gen;
  st.sid = c->sid;
  rc = authloop__store_encode(&st, c->has_session_key ? c->session_key : NULL, &c->ctx->rng, data,
                              len);
  if (rc)
    authloop__log(c->ctx, AUTHLOOP_LOG_ERROR, "session file %s not written: %s", c->session_path,
                  authloop_strerror(rc));
  return rc;
}

void authloop__session_persist(authloop_client *c) {
  unsigned char *data;
  size_t len;
  if (!c->session_path)
    return;
  if (encode_session(c, &data, &len) != 0) {
    release_lock(c); /* a refresh's lock goes even when nothing can be written */
    return;
  }
  if (c->lock_fd >= 0) { /* a refresh held the lock: the write releases it when done */
    authloop__store_write_locked(&c->ctx->store, c->session_path, data, len, c->lock_fd, c->sid);
    c->lock_fd = -1;
  } else {
    authloop__store_write(&c->ctx->store, c->session_path, data, len, c->sid);
  }
}

static int read_stored(authloop_client *c, authloop__stored *st, const char **why);

static int stored_user_differs(const authloop_client *c, const char *user, const char *uid) {
  authloop__result r = {0};
  int differs = authloop__result_user_json(c->provider, &r, user) != 0 || strcmp(r.user_id, uid);
  authloop__result_clear(&r);
  return differs;
}

long long authloop__next_gen(long long ours, long long theirs) {
  long long g = ours > theirs ? ours : theirs, wall = (long long)authloop__wall_ms();
  g = g < AUTHLOOP__STORE_GEN_MAX ? g + 1 : AUTHLOOP__STORE_GEN_MAX;
  /* the wall clock as a floor: a login after a logout (the file gone) still
   * writes past what other processes hold */
  return wall > g && wall <= AUTHLOOP__STORE_GEN_MAX ? wall : g;
}

/* How a session this client held (generation gen, user uid) leaves the
 * file. Only a file that still holds it is touched: not one that another
 * process has since filled with another user's session, nor, for an end that
 * is not a logout, a newer generation (another process may be using it).
 * - LOGOUT: the file becomes a logout's mark, so that processes sharing it
 *   end their copy at their next refresh instead of reviving it;
 * - REVOKED: its refresh token is dead for everyone: the mark too;
 * - IDLE: the file goes (another process, active but offline, may write it
 *   again when it refreshes).
 * The check and the write are not atomic: a write by another process in the
 * milliseconds between them can be lost (docs/session-file.md). */
void authloop__session_forget(authloop_client *c, int how, long long gen, long long sid,
                              const char *uid) {
  authloop__stored st;
  const char *why;
  long long theirs = 0;
  int rc;
  if (!c->session_path)
    return;
  rc = read_stored(c, &st, &why);
  if (rc == 0) {
    int other_user = !st.ended && uid && stored_user_differs(c, st.user, uid);
    int mark = st.ended;
    theirs = st.gen;
    authloop__stored_clear(&st);
    /* another user's now; or, for an end that is not a logout, newer; an
     * idle end never removes a logout's mark (it may be what ended it) */
    if (other_user || (how != AUTHLOOP__FORGET_LOGOUT && theirs > gen) ||
        (mark && how == AUTHLOOP__FORGET_IDLE))
      return;
  } else if (rc == AUTHLOOP_EINVAL) {
    return; /* another backend's or key's file: not ours */
  } else if (rc == AUTHLOOP_ENOENT && how == AUTHLOOP__FORGET_IDLE) {
    return;
  } else if (rc == AUTHLOOP_ENOMEM && how != AUTHLOOP__FORGET_LOGOUT) {
    /* not read is not ours to replace: it may hold a logout's mark (which an
     * idle end must not remove: other processes would revive the session),
     * another user's session, or a newer one. A logout's mark goes all the
     * same (a logout must end the copies other processes hold). */
    return;
  }
  if (how == AUTHLOOP__FORGET_IDLE) {
    authloop__store_delete(&c->ctx->store, c->session_path);
  } else {
    authloop__stored mark = {0};
    unsigned char *data;
    size_t len;
    mark.ended = 1;
    mark.sid = sid; /* the login it ends: a session of it on its way never replaces it */
    mark.gen = authloop__next_gen(gen, theirs);
    if (authloop__store_encode(&mark, NULL, NULL, &data, &len) == 0)
      authloop__store_write(&c->ctx->store, c->session_path, data, len, 0);
    else /* out of memory: the file goes at least */
      authloop__store_delete(&c->ctx->store, c->session_path);
  }
}

/* The lock a refresh took goes without a write (the refresh failed, or
 * another process's tokens were adopted). */
static void release_lock(authloop_client *c) {
  if (c->lock_fd < 0)
    return;
  authloop__store_unlock(c->lock_fd);
  c->lock_fd = -1;
  authloop__store_unhold(&c->ctx->store, c->session_path);
}

static const char *restore_problem(int rc) {
  switch (rc) {
  case AUTHLOOP_EINVAL:
    return "it belongs to another backend or key setting";
  case AUTHLOOP_EREJECTED:
    return "it does not decrypt: wrong key, or the file was changed";
  case AUTHLOOP_ENOMEM:
    return "out of memory";
  default:
    return "it is truncated or malformed";
  }
}

/* What the file at c's path holds, or will once this ctx's queued writes
 * are done: 0 and the value, AUTHLOOP_ENOENT, or an error (*why set). */
static int read_stored(authloop_client *c, authloop__stored *st, const char **why) {
  unsigned char *data;
  size_t len;
  int rc, pending;
  memset(st, 0, sizeof(*st)); /* cleared by every caller, whatever happens here */
  pending = authloop__store_pending(&c->ctx->store, c->session_path, &data, &len);
  *why = NULL;
  if (pending < 0)
    rc = AUTHLOOP_ENOMEM;
  else if (pending) /* a write or delete of ours not yet on disk: what the file will be */
    rc = data ? 0 : AUTHLOOP_ENOENT;
  else
    rc = authloop__store_read(c->session_path, &data, &len, why);
  if (rc)
    return rc;
  rc = authloop__store_decode(data, len, c->has_session_key ? c->session_key : NULL, st);
  authloop__wipe_free(data, len);
  if (rc)
    *why = restore_problem(rc);
  return rc;
}

/* What the file holds, checked as an answer from a server would be, becomes
 * the session. `again`: c has a session (another process refreshed it). */
static int adopt(authloop_client *c, authloop__stored *st, int again) {
  uint64_t now_boot = authloop__boot_ms(), now_wall = authloop__wall_ms();
  authloop__result r = {0};
  authloop__session s = {0};
  authloop__timing *t = &c->timing;
  uint64_t last;
  int rc;
  if (strcmp(st->provider, c->provider->name) != 0 || strcmp(st->base_url, c->base_url) != 0)
    return AUTHLOOP_EINVAL; /* another backend's session */
  if (st->ended)
    return AUTHLOOP_ENOENT;
  /* times that cannot be: a token that outlives its own lifetime, activity in
   * the future (either would keep a session alive that should end). A file
   * another process wrote while we share it (`again`) comes from a clock
   * that may run ahead of ours: its times are clamped to ours instead, for
   * refusing it would mean spending a refresh token it has rotated away. */
  if (st->expires_at != -1 &&
      (uint64_t)st->expires_at > now_wall + (uint64_t)st->lifetime_s * 1000u + CLOCK_SKEW_MS) {
    if (!again)
      return AUTHLOOP_EPROTO;
    st->expires_at = (long long)(now_wall + (uint64_t)st->lifetime_s * 1000u);
  }
  if ((uint64_t)st->last_activity > now_wall + CLOCK_SKEW_MS) {
    if (!again)
      return AUTHLOOP_EPROTO;
    st->last_activity = (long long)now_wall;
  }
  r.access_token = st->access_token;
  r.id_token = st->id_token;
  r.refresh_token = st->refresh_token;
  r.lifetime_s = st->lifetime_s;
  st->access_token = st->id_token = st->refresh_token = NULL;
  rc = authloop__result_user_json(c->provider, &r, st->user);
  if (rc == 0 && (rc = authloop__result_check(c, &r)) == 0)
    rc = authloop__session_merge(c, &s, &r);
  authloop__result_clear(&r);
  if (rc == 0 && again && strcmp(authloop__user_id(s.user), authloop__user_id(c->session.user)))
    rc = AUTHLOOP_EINVAL; /* another user's session now: not ours to take */
  if (rc) {
    authloop__session_clear(&s);
    return rc;
  }
  authloop__session_retire(c->ctx, &c->session);
  c->session = s;
  c->gen = st->gen;
  /* a file of an earlier version names no login: the one it holds is named
   * by its generation, the same in every process that reads it */
  c->sid = st->sid ? st->sid : st->gen ? st->gen : 1;
  /* 0: never active (a session restored and not yet used); small skews clamp to now */
  last = st->last_activity ? to_boot(st->last_activity < (long long)now_wall ? st->last_activity
                                                                             : (long long)now_wall,
                                     now_boot, now_wall)
                           : 0;
  if (!again || last > t->last_activity)
    t->last_activity = last;
  t->retrying = t->warned = t->stale = t->unrefreshable = 0;
  c->refreshed_at = 0; /* other tokens: a 401 may ask for a refresh at once */
  /* when the server issued them, for the dialect's floor: their expiry less
   * their lifetime (the file's tokens are seldom that young) */
  c->tokens_at = 0;
  if (st->expires_at == -1) {
    t->expires_at = t->refresh_due = AUTHLOOP__NEVER;
  } else if ((uint64_t)st->expires_at > now_wall) {
    uint64_t lifetime_ms = (uint64_t)st->lifetime_s * 1000u;
    t->expires_at = to_boot(st->expires_at, now_boot, now_wall);
    c->tokens_at = authloop__sat_sub(t->expires_at, lifetime_ms);
    if (c->tokens_at > now_boot) /* a writer's clock ahead: never in the future */
      c->tokens_at = now_boot;
    t->refresh_due =
        authloop__refresh_due(authloop__sat_sub(t->expires_at, lifetime_ms), lifetime_ms,
                              c->margin_ms, authloop__random_u32(&c->ctx->rng));
  } else {
    /* the access token died while we were away: refresh on first activity */
    t->expires_at = now_boot;
    t->stale = 1;
    if (!again)
      t->last_activity = 0;
  }
  c->token_gen++;
  return 0;
}

void authloop__session_restore(authloop_client *c) {
  authloop__stored st;
  const char *why;
  int rc;
  /* no tidying of stale temporaries here: that scans the directory, which
   * may be large; the next write does it, under the lock, off the loop */
  rc = read_stored(c, &st, &why);
  if (rc == AUTHLOOP_ENOENT)
    return;
  if (rc == 0 && st.ended) {
    authloop__stored_clear(&st);
    authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "session file %s: logged out; starting logged out",
                  c->session_path);
    return;
  }
  if (rc == 0) {
    rc = adopt(c, &st, 0);
    authloop__stored_clear(&st);
    why = rc ? restore_problem(rc) : NULL;
  }
  if (rc) {
    authloop__log(c->ctx, AUTHLOOP_LOG_WARN, "session file %s ignored: %s; starting logged out",
                  c->session_path, why ? why : authloop_strerror(rc));
    return;
  }
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "session restored from %s%s", c->session_path,
                c->timing.stale ? " (token expired: refreshed on first activity)" : "");
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
  authloop__client_evaluate(c, authloop__boot_ms());
}

/* A new login's generation: past whatever the file holds, so that another
 * process sharing it takes the new session. */
void authloop__session_generation(authloop_client *c) {
  authloop__stored st;
  const char *why;
  long long theirs = 0;
  if (c->session_path && read_stored(c, &st, &why) == 0) {
    theirs = st.gen;
    authloop__stored_clear(&st);
  }
  c->gen = authloop__next_gen(0, theirs);
  c->sid = c->gen; /* a new login: its own id, which a logout's mark will name */
}

/* ---- refresh --------------------------------------------------------------------- */

static void on_refresh_done(void *ud, const authloop__outcome *o);
static void refreshed(authloop_client *c, uint64_t now);
static void told_refreshed(authloop_client *c, uint64_t now);

#define REFRESH_WAITING  1 /* another process holds the session file's lock */
#define REFRESH_ADOPTED  2 /* another process had refreshed: its tokens were taken */
#define REFRESH_ENDED    3 /* another process logged out: the session is over */
#define REFRESH_REPLACED 4 /* another session (another user's) now fills the file */

/* Processes that share a session file refresh one at a time: under the lock
 * beside the file, a refresh first reads the file again, and takes the
 * tokens another process got (a newer generation) instead of spending its
 * own refresh token, which that process's refresh may have rotated away. */
static int take_the_lock(authloop_client *c, uint64_t now) {
  authloop__stored st;
  const char *why;
  int rc;
  if (!c->session_path || c->lock_fd >= 0)
    return 0;
  if (authloop__store_running(&c->ctx->store, c->session_path))
    rc = 1; /* our own write of it is under way */
  else
    rc = authloop__store_trylock(c->session_path, &c->lock_fd);
  if (rc == 1) {
    if (!c->lock_wait) /* the wait is bounded as a request is */
      c->lock_wait_until = authloop__sat_add(now, c->ctx->timeout_ms);
    c->lock_wait = 1;
    c->lock_retry_at = authloop__sat_add(now, AUTHLOOP__LOCK_RETRY_MS);
    return REFRESH_WAITING;
  }
  c->lock_wait = 0;
  if (rc == AUTHLOOP_ENOMEM)
    return rc; /* a transient failure: this attempt fails, not the lock's use */
  if (rc) {    /* no lock file possible (read-only directory, a lock file not ours): alone */
    if (!c->lock_warned)
      authloop__log(c->ctx, AUTHLOOP_LOG_WARN,
                    "session file %s: no usable lock beside it (read-only directory, or a lock "
                    "file that is not ours); refreshing without it",
                    c->session_path);
    c->lock_warned = 1;
    return 0;
  }
  if (authloop__store_hold(&c->ctx->store, c->session_path) != 0) {
    authloop__store_unlock(c->lock_fd); /* out of memory: this attempt fails, as above */
    c->lock_fd = -1;
    return AUTHLOOP_ENOMEM;
  }
  /* newer, or this login's logout mark (whatever its generation: it may have
   * come while our own refresh held the lock) */
  if ((rc = read_stored(c, &st, &why)) == AUTHLOOP_ENOMEM) {
    /* not read is not "nothing newer": another process may have rotated
     * our refresh token away; this attempt fails as a transient one */
    authloop__stored_clear(&st);
    release_lock(c);
    return AUTHLOOP_ENOMEM;
  }
  if (rc == 0 && (st.gen > c->gen || (st.ended && st.sid > 0 && st.sid == c->sid))) {
    int ended = st.ended, rc2 = ended ? 0 : adopt(c, &st, 1);
    authloop__stored_clear(&st);
    if (!ended && rc2 == 0 && c->timing.stale)
      return 0; /* newer, but its token has run out too: refresh with its refresh token */
    if (rc2 == AUTHLOOP_ENOMEM) { /* a transient failure, not another session */
      release_lock(c);
      return AUTHLOOP_ENOMEM;
    }
    if (rc2 != 0 && rc2 != AUTHLOOP_EINVAL)
      return 0; /* nothing usable in it (malformed): refresh as if alone */
    release_lock(c);
    if (ended || rc2 != 0) {
      authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "session file %s: %s; this session ends",
                    c->session_path,
                    ended ? "another process logged out" : "another session has replaced it");
      return ended ? REFRESH_ENDED : REFRESH_REPLACED;
    }
    authloop__log(c->ctx, AUTHLOOP_LOG_INFO,
                  "session file %s: another process refreshed; its tokens taken", c->session_path);
    return REFRESH_ADOPTED;
  }
  authloop__stored_clear(&st);
  return 0;
}

/* Another process's newer tokens were taken (adopt() set their times): told
 * as a refresh, without a request. */
static void adopted(authloop_client *c, uint64_t now) {
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
  c->retry_attempt = 0;
  c->refresh_lost = 0;
  told_refreshed(c, now);
}

static int refresh_start(authloop_client *c) {
  authloop__request req = {0};
  authloop__view v;
  uint64_t now = authloop__boot_ms();
  int rc;
  if (!c->provider->refresh_request)
    return AUTHLOOP_ENOTSUP;
  if (c->ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (now < authloop__sat_add(c->tokens_at, c->provider->refresh_floor_ms)) {
    /* too soon after the tokens it would replace: it waits, as it would for
     * another process's lock (evaluate starts it again at lock_retry_at) */
    c->lock_retry_at = authloop__sat_add(c->tokens_at, c->provider->refresh_floor_ms);
    if (!c->lock_wait) /* bounded from the end of this wait, whatever the timeout */
      c->lock_wait_until = authloop__sat_add(c->lock_retry_at, c->ctx->timeout_ms);
    c->lock_wait = 1;
    authloop__set_state(c, AUTHLOOP_STATE_REFRESHING);
    return 0;
  }
  if ((rc = take_the_lock(c, now)) == REFRESH_WAITING) {
    authloop__set_state(c, AUTHLOOP_STATE_REFRESHING); /* evaluate wakes it at lock_retry_at */
    return 0;
  }
  c->lock_wait = 0; /* waiting no more: the refresh goes on */
  if (rc == REFRESH_ADOPTED) {
    adopted(c, now);
    return 0;
  }
  if (rc == REFRESH_ENDED || rc == REFRESH_REPLACED) {
    end_here(c, AUTHLOOP_EREVOKED, 0, 0); /* the file is the other process's now */
    return 0;
  }
  if (rc < 0)
    return rc; /* out of memory: the session stays, the lock is released */
  authloop__view_of(c, &c->session, &v);
  if (c->provider->prepare_request &&
      (rc = c->provider->prepare_request(c->pstate, &v, &req)) != AUTHLOOP__NO_REQUEST) {
    /* first what the refresh needs; on its answer this runs again */
    c->refresh_origin = authloop__origin_of(c, req.base);
    c->refresh_preparing = 1;
    if (rc == 0)
      rc = authloop__transport_start(&c->ctx->transport, &req, on_refresh_done, c, &c->refresh_x);
    authloop__request_clear(&req);
    if (rc == 0) {
      authloop__set_state(c, AUTHLOOP_STATE_REFRESHING);
    } else {
      c->refresh_preparing = 0;
      release_lock(c);
    }
    return rc;
  }
  authloop__request_clear(&req);
  memset(&req, 0, sizeof(req));
  rc = c->provider->refresh_request(c->pstate, &v, &req);
  c->refresh_origin = authloop__origin_of(c, req.base);
  if (rc == AUTHLOOP_EREVOKED) { /* nothing to refresh with, ever: the session ends */
    authloop__request_clear(&req);
    release_lock(c);
    authloop__session_end(c, AUTHLOOP_EXPIRED_REVOKED);
    return 0;
  }
  if (rc == 0)
    rc = authloop__transport_start(&c->ctx->transport, &req, on_refresh_done, c, &c->refresh_x);
  authloop__request_clear(&req);
  if (rc == 0)
    authloop__set_state(c, AUTHLOOP_STATE_REFRESHING);
  else
    release_lock(c);
  return rc;
}

void authloop__session_started(authloop_client *c, uint64_t received, int persist) {
  authloop__timing *t = &c->timing;
  c->tokens_at = received;
  if (c->session.lifetime_s == AUTHLOOP__LIFETIME_NEVER) {
    t->expires_at = t->refresh_due = AUTHLOOP__NEVER; /* nothing to refresh, ever */
  } else {
    uint64_t lifetime_ms = (uint64_t)c->session.lifetime_s * 1000u; /* <= 10 years: no overflow */
    t->expires_at = authloop__sat_add(received, lifetime_ms);
    t->refresh_due = authloop__refresh_due(received, lifetime_ms, c->margin_ms,
                                           authloop__random_u32(&c->ctx->rng));
  }
  t->retrying = t->warned = t->stale = t->unrefreshable = 0;
  c->retry_attempt = 0;
  c->refresh_lost = 0;
  c->token_gen++;
  if (persist)
    authloop__session_persist(c);
  authloop__client_evaluate(c, authloop__boot_ms());
}

void authloop__session_end(authloop_client *c, authloop_expiry_reason reason) {
  authloop_event ev = {0};
  uint64_t idle_ms;
  long long gen = c->gen;
  /* retired below, readable until the loop turns */
  const char *uid = authloop__user_id(c->session.user);
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "session ended: %s",
                reason == AUTHLOOP_EXPIRED_IDLE ? "idle until the token ran out"
                : reason == AUTHLOOP_EXPIRED_REFRESH_LOST
                    ? "a refresh's answer was lost and the old tokens were refused since"
                : reason == AUTHLOOP_EXPIRED_LIFETIME
                    ? "the token ran out (the server does not refresh it)"
                    : "the refresh token was refused");
  idle_ms = c->timing.idle_ms;
  authloop__session_abort(c, AUTHLOOP_EREVOKED);
  authloop__session_retire(c->ctx, &c->session);
  memset(&c->timing, 0, sizeof(c->timing));
  c->timing.idle_ms = idle_ms;
  authloop__set_state(c, AUTHLOOP_STATE_EXPIRED);
  ev.type = AUTHLOOP_EV_SESSION_EXPIRED;
  ev.reason = reason;
  ev.error = AUTHLOOP_EREVOKED;
  ev.message = reason == AUTHLOOP_EXPIRED_IDLE           ? "idle"
               : reason == AUTHLOOP_EXPIRED_REFRESH_LOST ? "refresh_lost"
               : reason == AUTHLOOP_EXPIRED_LIFETIME     ? "lifetime"
                                                         : "revoked";
  authloop__emit(c, &ev);
  authloop__session_forget(c,
                           reason == AUTHLOOP_EXPIRED_IDLE || reason == AUTHLOOP_EXPIRED_LIFETIME
                               ? AUTHLOOP__FORGET_IDLE
                               : AUTHLOOP__FORGET_REVOKED,
                           gen, c->sid, uid);
}

/* The next try after a refresh that failed or could not start: backoff with
 * jitter (or the server's Retry-After), never past the token's expiry, and
 * always later than now (a zero jitter would retry in the same turn). For a
 * token of unknown lifetime nothing is ever due (authloop__decide()): no
 * try comes by itself, and the time only paces the 401s that would start
 * one (answered()). */
static void schedule_retry(authloop_client *c, uint64_t now, long long retry_after_ms) {
  authloop__timing *t = &c->timing;
  uint64_t backoff = authloop__backoff_ms(c->retry_attempt++, c->retry_base_ms, c->retry_cap_ms,
                                          authloop__random_u32(&c->ctx->rng));
  /* no expiry bounds a server's Retry-After then (a day would turn every
   * 401 away for a day): the longest backoff step does */
  if (t->expires_at == AUTHLOOP__NEVER && retry_after_ms > 0 &&
      (uint64_t)retry_after_ms > c->retry_cap_ms)
    retry_after_ms = (long long)c->retry_cap_ms;
  t->retrying = 1;
  t->retry_at = authloop__retry_at(now, backoff + 1, retry_after_ms, t->expires_at);
  /* pacing 401s only: never closer than a refresh's own pace (full jitter
   * may draw a few ms) */
  if (t->expires_at == AUTHLOOP__NEVER && t->retry_at < now + AUTHLOOP__REFRESH_AGAIN_MS)
    t->retry_at = now + AUTHLOOP__REFRESH_AGAIN_MS;
}

static void refresh_failed(authloop_client *c, const authloop__outcome *o, int rc, uint64_t now) {
  /* transient: the session stays; try again later, never past expiry */
  authloop__timing *t = &c->timing;
  schedule_retry(c, now, o ? o->retry_after_ms : 0);
  authloop__log(c->ctx, AUTHLOOP_LOG_WARN, "refresh failed: %s; next try %s %llu ms",
                authloop_err_name(rc),
                t->expires_at == AUTHLOOP__NEVER ? "when asked, a 401's not before" : "in",
                (unsigned long long)authloop__sat_sub(t->retry_at, now));
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
  finish_waiters(c, rc);
  fail_retried_calls(c, rc);
  if (!c->ctx->closing) {
    flush_calls(c, now); /* the old token may still be good */
    authloop__client_evaluate(c, now);
  }
}

/* A refresh the dialect refused although the server rotated the refresh
 * token (an id token that failed its checks): the new one replaces the
 * spent one, on disk too (a newer generation, so that processes sharing
 * the file take it), and the refresh fails as it would have. */
static void keep_rotated(authloop_client *c, authloop__result *r) {
  if (!authloop__header_value_ok(r->refresh_token, strlen(r->refresh_token)))
    return;
  authloop__secret_free(c->session.refresh_token);
  c->session.refresh_token = r->refresh_token;
  r->refresh_token = NULL;
  c->gen = authloop__next_gen(c->gen, c->gen);
  authloop__session_persist(c);
}

static void on_refresh_done(void *ud, const authloop__outcome *o) {
  authloop_client *c = ud;
  authloop__result r = {0};
  uint64_t now = authloop__boot_ms();
  c->refresh_x = NULL;
  authloop__client_ref(c);
  if (c->refresh_preparing) { /* what the refresh needed: then the refresh itself */
    authloop__view v;
    int rc = 0;
    c->refresh_preparing = 0;
    authloop__view_of(c, &c->session, &v);
    if (!o->error && c->provider->prepare_answer(c->pstate, &v, &o->answer, &r) == 0 &&
        (rc = refresh_start(c)) == 0) { /* the lock is still held: taken at once */
      authloop__result_clear(&r);
      authloop__health_outcome(c->ctx, c->refresh_origin, o);
      authloop__client_unref(c);
      return;
    } else if (!o->error && !r.error) {
      r.error = rc;
    } else if (o->error) {
      r.error = o->error;
    }
    /* a failure like any refresh's: retried with backoff (the session stays) */
    if (r.error == AUTHLOOP_EREVOKED)
      r.error = AUTHLOOP_EUNAVAILABLE;
    release_lock(c);
    refresh_failed(c, o, r.error, now);
    authloop__result_clear(&r);
    authloop__health_outcome(c->ctx, c->refresh_origin, o);
    authloop__client_unref(c);
    return;
  }
  if (o->error) {
    r.error = o->error;
  } else {
    authloop__view v;
    authloop__view_of(c, &c->session, &v);
    c->provider->refresh_answer(c->pstate, &v, &o->answer, &r);
    if (r.error && r.error != AUTHLOOP_EREVOKED && r.refresh_token)
      keep_rotated(c, &r);
    if (authloop__result_check(c, &r) == 0 && !r.access_token)
      authloop__result_fail(&r, AUTHLOOP_EPROTO, r.http_status, "malformed response: %s",
                            "a refresh without a token");
    /* a refresh renews the session of its user: one that answers for
     * another (a user id that differs) is refused, whatever the dialect */
    else if (!r.error && r.user_id && c->session.user &&
             strcmp(r.user_id, authloop__user_id(c->session.user)) != 0)
      authloop__result_fail(&r, AUTHLOOP_EPROTO, r.http_status, "malformed response: %s",
                            "a refresh for another user");
  }
  if (r.error == 0 && authloop__session_merge(c, &c->session, &r) == 0) {
    c->gen = authloop__next_gen(c->gen, c->gen);
    refreshed(c, now);
  } else if (r.error == AUTHLOOP_ENOTSUP) {
    /* the server never refreshes this token (a Kuzzle API key): it is
     * kept, unrefreshed, until it runs out (then sessionExpired "lifetime") */
    authloop__log(c->ctx, AUTHLOOP_LOG_WARN, "the server does not refresh this token: %s",
                  r.message ? r.message : authloop_strerror(r.error));
    release_lock(c);
    c->timing.unrefreshable = 1;
    c->timing.retrying = 0;
    /* a 401 still asks the server again (then the answer is whether the
     * token was revoked), but not more often than a refresh would */
    c->refreshed_at = now;
    authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
    finish_waiters(c, r.error);
    flush_calls(c, now); /* those that had a 401 go again: its answer is theirs */
    authloop__client_evaluate(c, now);
  } else if (r.error == AUTHLOOP_EREVOKED ||
             (r.error == AUTHLOOP_EREJECTED && !r.server_code &&
              (r.http_status == 401 || r.http_status == 400) && now >= c->timing.expires_at)) {
    /* refused for good; or a 401/400 not in the server's own words (a
     * proxy's page) while the token it would replace is already dead:
     * nothing is left to wait for */
    if (r.error == AUTHLOOP_EREJECTED)
      authloop__log(c->ctx, AUTHLOOP_LOG_WARN, "refresh refused past expiry (HTTP %ld): %s",
                    r.http_status, r.message ? r.message : authloop_strerror(r.error));
    release_lock(c);
    authloop__session_end(c, c->refresh_lost ? AUTHLOOP_EXPIRED_REFRESH_LOST
                                             : AUTHLOOP_EXPIRED_REVOKED);
  } else {
    /* sent, perhaps done, but no answer from the server: no answer at all,
     * or a 5xx: a gateway's in its place, or the server's after it may have
     * acted (but a 503 in the server's own words, refused before acting:
     * Kuzzle's api.process.overloaded) */
    if (o->sent &&
        (o->error ? o->error != AUTHLOOP_ECANCELED
                  : o->answer.status >= 500 && (o->answer.status != 503 || !r.server_code)))
      c->refresh_lost = 1;
    release_lock(c);
    refresh_failed(c, o, r.error, now);
  }
  authloop__result_clear(&r);
  authloop__health_outcome(c->ctx, c->refresh_origin, o);
  authloop__client_unref(c);
}

/* New tokens, from the server or from another process: persisted first (a
 * rotated refresh token is on its way to disk before anything else happens),
 * then told. */
static void refreshed(authloop_client *c, uint64_t now) {
  c->refreshed_at = now;
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
  authloop__session_started(c, now, 1);
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "tokens refreshed (lifetime %lld s)",
                c->session.lifetime_s);
  told_refreshed(c, now);
}

/* Either way, told: tokenRefreshed, then what waited for it. */
static void told_refreshed(authloop_client *c, uint64_t now) {
  authloop_event ev = {0};
  ev.type = AUTHLOOP_EV_TOKEN_REFRESHED;
  ev.success = 1;
  ev.lifetime = (long)c->session.lifetime_s;
  authloop__emit(c, &ev);
  finish_waiters(c, 0);
  flush_calls(c, now);
}

/* ---- the policy's verdicts ----------------------------------------------------------- */

/* Before an idle session ends: another process sharing the file may have
 * kept it alive (a newer generation of the same user with a live token).
 * 1 when its tokens were taken. */
static int take_newer(authloop_client *c, uint64_t now) {
  authloop__stored st;
  const char *why;
  int taken = 0;
  if (!c->session_path || read_stored(c, &st, &why) != 0)
    return 0;
  if (!st.ended && st.gen > c->gen && adopt(c, &st, 1) == 0 && !c->timing.stale) {
    adopted(c, now);
    taken = 1;
  }
  authloop__stored_clear(&st);
  return taken;
}

void authloop__client_evaluate(authloop_client *c, uint64_t now) {
  authloop__timing *t = &c->timing;
  uint64_t wake = AUTHLOOP__NEVER, calls;
  int rc;
  if (c->ctx->closing || c->freed)
    return;
  if (c->state == AUTHLOOP_STATE_REFRESHING && c->lock_wait && now >= c->lock_wait_until) {
    /* the lock's holder (stopped, or stuck) keeps it too long: this attempt
     * fails as a timed-out refresh would, and the backoff tries again */
    c->lock_wait = 0;
    authloop__log(c->ctx, AUTHLOOP_LOG_WARN, "session file %s: its lock is held too long%s",
                  c->session_path ? c->session_path : "(none)",
                  c->session_path ? " by another process" : "");
    refresh_failed(c, NULL, AUTHLOOP_ETIMEDOUT, now); /* which evaluates again */
    return;
  } else if (c->state == AUTHLOOP_STATE_REFRESHING && c->lock_wait && now >= c->lock_retry_at &&
             (rc = refresh_start(c)) != 0) {
    /* the refresh could not start after all: it backs off, rather than
     * start again at once in the loop below; with no retry to come (a
     * token of unknown lifetime), those waiting for it have their answer */
    c->lock_wait = 0;
    authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
    schedule_retry(c, now, 0);
    if (t->expires_at == AUTHLOOP__NEVER) {
      finish_waiters(c, rc);
      fail_retried_calls(c, rc);
      flush_calls(c, now); /* those that waited for it go with the token held */
    }
  }
  while (c->state == AUTHLOOP_STATE_LOGGED_IN) {
    authloop__action act;
    t->offline = !c->ctx->online_app; /* offline by our own count: retries probe */
    act = authloop__decide(t, now, &wake);
    if (act == AUTHLOOP__WARN_IDLE) {
      authloop_event ev = {0};
      t->warned = 1;
      ev.type = AUTHLOOP_EV_TOKEN_EXPIRING;
      ev.expires_in_ms = (long long)authloop__sat_sub(t->expires_at, now);
      authloop__emit(c, &ev);
      continue;
    }
    if (act == AUTHLOOP__EXPIRE_LIFETIME) {
      if (take_newer(c, now))
        continue; /* another process has a newer session: ours goes on with it */
      authloop__session_end(c, AUTHLOOP_EXPIRED_LIFETIME);
      return;
    }
    if (act == AUTHLOOP__EXPIRE_IDLE) {
      if (take_newer(c, now))
        continue; /* another process kept the session alive: ours goes on with it */
      authloop__session_end(c, AUTHLOOP_EXPIRED_IDLE);
      return;
    }
    if (act == AUTHLOOP__REFRESH) {
      if (refresh_start(c) != 0) {
        schedule_retry(c, now, 0); /* could not even start: back off as after a failed one */
        wake = t->retry_at;
      } else if (c->state == AUTHLOOP_STATE_LOGGED_IN) {
        continue; /* another process's tokens were taken: decide again with them */
      }
    }
    break;
  }
  if (c->lock_wait && c->lock_retry_at < wake) /* another process's lock: look again soon */
    wake = c->lock_retry_at;
  calls = expire_calls(c, now);
  authloop__timer_set(&c->ctx->timer, &c->wake, calls < wake ? calls : wake);
}

void authloop__client_on_timer(authloop__timer_entry *e, uint64_t now) {
  authloop__client_evaluate(AUTHLOOP__CONTAINER_OF(e, authloop_client, wake), now);
}

/* Looks again at every logged-in client (using `only`, when given). */
static void wake_all(authloop_ctx *ctx, const authloop__origin *only) {
  uint64_t now = authloop__boot_ms();
  authloop__link *l;
  for (l = ctx->clients.next; l != &ctx->clients; l = l->next) {
    authloop_client *c = AUTHLOOP__CONTAINER_OF(l, authloop_client, link);
    size_t i;
    int uses = !only;
    for (i = 0; only && i < AUTHLOOP__MAX_BASES; i++)
      uses |= c->origins[i] == only;
    if (!uses || !authloop__logged_in(c) || c->freed)
      continue;
    /* back online: a due refresh goes now, not after the rest of a backoff */
    if (c->timing.retrying)
      c->timing.retry_at = now;
    authloop__client_evaluate(c, now);
    flush_calls(c, now);
  }
}

/* ---- public API ------------------------------------------------------------------------ */

int authloop_touch(authloop_client *c) {
  uint64_t now;
  if (!c || c->freed)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  now = authloop__boot_ms();
  c->timing.last_activity = now;
  if (c->state == AUTHLOOP_STATE_LOGGED_IN)
    authloop__client_evaluate(c, now);
  return 0;
}

int authloop_refresh(authloop_client *c, authloop_done_cb cb, void *userdata) {
  waiter *w;
  int rc;
  if ((rc = authloop__client_usable(c)) != 0)
    return rc;
  if (!authloop__logged_in(c))
    return AUTHLOOP_ENOTLOGGEDIN;
  /* a token that never expires (one of unknown lifetime with a refresh
   * token to renew it may be renewed when asked, as on a 401), or that the
   * server never refreshes */
  if (!c->provider->refresh_request ||
      (c->session.lifetime_s == AUTHLOOP__LIFETIME_NEVER && !c->session.refresh_token) ||
      c->timing.unrefreshable)
    return AUTHLOOP_ENOTSUP;
  if (!c->ctx->online_app)
    return AUTHLOOP_EOFFLINE;
  if (!(w = calloc(1, sizeof(*w))) || (cb && !(w->out = authloop__callback_reserve()))) {
    free(w);
    return AUTHLOOP_ENOMEM;
  }
  w->cb = cb;
  w->userdata = userdata;
  /* in first: the refresh may end at once (another process's tokens taken) */
  authloop__list_push(&c->refresh_waiters, &w->link);
  if (!c->refresh_x && !c->lock_wait && (rc = refresh_start(c)) != 0) {
    authloop__list_remove(&w->link);
    authloop__callback_drop(&w->out);
    free(w);
    return rc;
  }
  c->timing.last_activity = authloop__boot_ms();
  authloop__client_evaluate(c, c->timing.last_activity); /* only call deadlines remain */
  return 0;
}

static int valid_method(const char *m) {
  static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  size_t i;
  for (i = 0; m && i < AUTHLOOP__COUNT(ok); i++)
    if (strcmp(m, ok[i]) == 0)
      return 1;
  return 0;
}

int authloop_request(authloop_client *c, const char *method, const char *path,
                     const char *body_json, authloop_response_cb cb, void *userdata) {
  call *k;
  json_t *check;
  uint64_t now;
  int rc;
  if (!c || c->freed || !cb || !valid_method(method) || !path || !authloop__path_text_ok(path))
    return AUTHLOOP_EINVAL;
  if (body_json) {
    if (strcmp(method, "GET") == 0 || !(check = json_loads(body_json, JSON_DECODE_ANY, NULL)))
      return AUTHLOOP_EINVAL;
    json_decref(check);
  }
  if ((rc = authloop__client_usable(c)) != 0)
    return rc;
  if (!authloop__logged_in(c))
    return AUTHLOOP_ENOTLOGGEDIN;
  if (!(k = calloc(1, sizeof(*k))))
    return AUTHLOOP_ENOMEM;
  k->c = c;
  k->cb = cb;
  k->userdata = userdata;
  k->method = strdup(method);
  k->path = strdup(path);
  k->body = body_json ? authloop__secret_dup(body_json) : NULL;
  k->out = authloop__callback_reserve();
  if (!k->method || !k->path || (body_json && !k->body) || !k->out) {
    free(k->method);
    free(k->path);
    authloop__secret_free(k->body);
    authloop__callback_drop(&k->out);
    free(k);
    return AUTHLOOP_ENOMEM;
  }
  now = authloop__boot_ms();
  k->deadline = authloop__sat_add(now, c->ctx->timeout_ms);
  authloop__list_push(&c->calls, &k->link);
  /* activity: may start a refresh this call then waits for */
  c->timing.last_activity = now;
  if (c->state == AUTHLOOP_STATE_LOGGED_IN)
    authloop__client_evaluate(c, now);
  if (can_send(c, now) && !k->x)
    call_send(k);
  return 0;
}

static void answered(authloop_client *c, call *k, const authloop__outcome *o, uint64_t now) {
  const authloop__answer *a = &o->answer;
  if (!o->error && authloop__logged_in(c) && c->provider->session_gone(c->pstate, a)) {
    /* the server no longer knows this session: it ends here too */
    call_finish(k, AUTHLOOP_EREVOKED, a->status, a->body, a->len);
    authloop__logout_locally(c, AUTHLOOP_EREVOKED, a->status);
    return;
  }
  if (!o->error && a->status == 401 && !k->retried && authloop__logged_in(c) &&
      c->provider->refresh_request && !c->ctx->closing) {
    k->retried = 1;
    k->deadline = authloop__sat_add(now, c->ctx->timeout_ms);
    if (k->token_gen != c->token_gen && can_send(c, now)) {
      call_send(k); /* someone refreshed meanwhile: the new token may do */
      return;
    }
    /* no refresh for it when one failed and its retry is not due, or when
     * tokens came from a refresh moments ago: the server's 401 is the
     * answer (each 401 is not a new refresh: a proxy that answers every
     * request 401 would make a refresh of each) */
    if (c->state == AUTHLOOP_STATE_LOGGED_IN &&
        ((c->timing.retrying && now < c->timing.retry_at) ||
         (c->refreshed_at && now - c->refreshed_at < AUTHLOOP__REFRESH_AGAIN_MS))) {
      call_finish(k, 0, a->status, a->body, a->len);
      return;
    }
    if (c->state == AUTHLOOP_STATE_LOGGED_IN) {
      int rc = refresh_start(c);
      if (rc) {
        call_finish(k, rc, 401, a->body, a->len);
        return;
      }
    }
    authloop__client_evaluate(c, now); /* waits for the refresh, up to its deadline */
    return;
  }
  call_finish(k, o->error, a->status, a->body, a->len);
}

/* The call is settled (finished, resent or waiting again), then its health
 * noted; the reference keeps c (and its ctx) while its answer is read. */
static void on_call_done(void *ud, const authloop__outcome *o) {
  call *k = ud;
  authloop_client *c = k->c;
  authloop__origin *origin = k->origin;
  k->x = NULL; /* the transport frees it */
  authloop__client_ref(c);
  answered(c, k, o, authloop__boot_ms());
  authloop__health_outcome(c->ctx, origin, o);
  authloop__client_unref(c);
}
