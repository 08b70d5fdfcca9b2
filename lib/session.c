/* The token lifecycle: refresh before expiry while the user is active, idle
 * expiry, one refresh in flight per client, retries with backoff, and
 * authenticated requests that wait for a refresh and retry once on a 401.
 * The policy itself is in schedule.c (authloop__decide); this file acts on it. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  authloop__link link; /* in c->refresh_waiters */
  authloop_done_cb cb;
  void *userdata;
} authloop__waiter;

/* One authloop_request(): waiting (req NULL) or sent. */
typedef struct {
  authloop__link link; /* in c->calls */
  authloop_client *c;
  char *method, *url;
  char *body; /* owned, may carry secrets: wiped */
  authloop_response_cb cb;
  void *userdata;
  uint64_t deadline;  /* boot ms: stop waiting then */
  unsigned token_gen; /* the access token it was sent with */
  int retried;
  authloop__req *req;
} authloop__call;

static int logged_in(const authloop_client *c) {
  return c->state == AUTHLOOP_STATE_LOGGED_IN || c->state == AUTHLOOP_STATE_REFRESHING;
}

/* A token we may send: alive, and not being replaced right now. */
static int can_send(const authloop_client *c, uint64_t now) {
  return c->state == AUTHLOOP_STATE_LOGGED_IN && !c->timing.stale && now < c->timing.expires_at &&
         authloop__ctx_online(c->ctx);
}

/* ---- waiters and calls --------------------------------------------------------- */

static void finish_waiters(authloop_client *c, int notify, int status) {
  while (!authloop__list_empty(&c->refresh_waiters)) {
    authloop__waiter *w = AUTHLOOP__CONTAINER_OF(c->refresh_waiters.next, authloop__waiter, link);
    authloop__list_remove(&w->link);
    if (notify)
      authloop__defer_done(c, w->cb, w->userdata, status);
    free(w);
  }
}

static void call_free(authloop__call *call) {
  authloop__list_remove(&call->link);
  authloop__req_free(call->req);
  free(call->method);
  free(call->url);
  authloop__secret_free(call->body);
  free(call);
}

static void call_finish(authloop__call *call, int status, long http_status, const char *body,
                        size_t len) {
  authloop__defer_response(call->c, call->cb, call->userdata, status, http_status, body ? body : "",
                           body ? len : 0);
  call_free(call);
}

static void on_call_done(authloop__req *req, void *userdata);

static void call_send(authloop__call *call) {
  authloop_client *c = call->c;
  authloop__req *req;
  int rc = authloop__req_new(c->ctx, call->method, call->url, &req);
  if (rc == 0 && call->body)
    rc = authloop__req_set_body(req, call->body);
  if (rc == 0)
    rc = c->provider->authorize(c, req);
  if (rc == 0)
    rc = authloop__req_start(req, on_call_done, call);
  if (rc) {
    if (req)
      authloop__req_free(req);
    call_finish(call, rc, 0, NULL, 0);
    return;
  }
  call->req = req;
  call->token_gen = c->token_gen;
}

/* Sends the waiting calls if the token allows; else leaves them waiting. */
static void flush_calls(authloop_client *c, uint64_t now) {
  authloop__link *l, *next;
  for (l = c->calls.next; l != &c->calls && can_send(c, now); l = next) {
    authloop__call *call = AUTHLOOP__CONTAINER_OF(l, authloop__call, link);
    next = l->next;
    if (!call->req)
      call_send(call);
  }
}

/* Calls that waited for a refresh after a 401 get the refresh's failure. */
static void fail_retried_calls(authloop_client *c, int status) {
  authloop__link *l, *next;
  for (l = c->calls.next; l != &c->calls; l = next) {
    authloop__call *call = AUTHLOOP__CONTAINER_OF(l, authloop__call, link);
    next = l->next;
    if (!call->req && call->retried)
      call_finish(call, status, 0, NULL, 0);
  }
}

/* Fails waiting calls past their deadline; returns the earliest other one. */
static uint64_t expire_calls(authloop_client *c, uint64_t now) {
  uint64_t earliest = AUTHLOOP__NEVER;
  authloop__link *l, *next;
  for (l = c->calls.next; l != &c->calls; l = next) {
    authloop__call *call = AUTHLOOP__CONTAINER_OF(l, authloop__call, link);
    next = l->next;
    if (call->req)
      continue;
    if (call->deadline <= now)
      call_finish(call, authloop__ctx_online(c->ctx) ? AUTHLOOP_ETIMEDOUT : AUTHLOOP_EOFFLINE, 0,
                  NULL, 0);
    else if (call->deadline < earliest)
      earliest = call->deadline;
  }
  return earliest;
}

void authloop__session_abort(authloop_client *c, int notify, int error) {
  if (c->refresh_req) {
    authloop__req_free(c->refresh_req);
    c->refresh_req = NULL;
  }
  finish_waiters(c, notify, error);
  while (!authloop__list_empty(&c->calls)) {
    authloop__call *call = AUTHLOOP__CONTAINER_OF(c->calls.next, authloop__call, link);
    if (notify)
      call_finish(call, error, 0, NULL, 0);
    else
      call_free(call);
  }
  authloop__sched_remove(c);
}

/* ---- refresh --------------------------------------------------------------------- */

static void on_refresh_done(authloop__req *req, void *userdata);

static int refresh_start(authloop_client *c) {
  authloop__req *req;
  int rc;
  if (!c->provider->refresh_request)
    return AUTHLOOP_ENOTSUP;
  if ((rc = c->provider->refresh_request(c, &req)) != 0)
    return rc;
  if ((rc = authloop__req_start(req, on_refresh_done, c)) != 0) {
    authloop__req_free(req);
    return rc;
  }
  authloop__list_push(&c->reqs, &req->owner_link);
  c->refresh_req = req;
  authloop__set_state(c, AUTHLOOP_STATE_REFRESHING);
  return 0;
}

void authloop__session_started(authloop_client *c, uint64_t received, int persist) {
  authloop__timing *t = &c->timing;
  uint64_t lifetime_ms = (uint64_t)c->session.expires_in * 1000u;
  if (c->session.expires_in == AUTHLOOP__NO_EXPIRY) {
    t->expires_at = t->refresh_due = AUTHLOOP__NEVER; /* nothing to refresh, ever */
  } else {
    t->expires_at = received + lifetime_ms;
    t->refresh_due = authloop__refresh_due(received, lifetime_ms, c->margin_ms,
                                           authloop__random_u32(&c->ctx->rng));
  }
  t->retrying = t->warned = t->stale = 0;
  c->retry_attempt = 0;
  c->token_gen++;
  if (persist)
    authloop__store_save(c);
  authloop__client_evaluate(c, authloop__boot_ms());
}

void authloop__session_end(authloop_client *c, authloop_expiry_reason reason) {
  authloop_event ev = {0};
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "session ended: %s",
                reason == AUTHLOOP_EXPIRED_IDLE ? "idle until the token ran out"
                                                : "the refresh token was refused");
  authloop__session_abort(c, 1, AUTHLOOP_EREVOKED);
  authloop__session_clear(&c->session);
  memset(&c->timing, 0, sizeof(c->timing));
  authloop__set_state(c, AUTHLOOP_STATE_EXPIRED);
  ev.type = AUTHLOOP_EV_SESSION_EXPIRED;
  ev.reason = reason;
  ev.error = AUTHLOOP_EREVOKED;
  ev.message = reason == AUTHLOOP_EXPIRED_IDLE ? "idle" : "revoked";
  authloop__emit(c, &ev);
  authloop__store_delete(c);
}

static void on_refresh_done(authloop__req *req, void *userdata) {
  authloop_client *c = userdata;
  authloop__session fresh = {0};
  authloop__failure f = {0};
  uint64_t now = authloop__boot_ms();
  int rc;
  c->refresh_req = NULL;
  if (req->error)
    rc = authloop__failure_from_req(req, &f);
  else
    rc = c->provider->refresh_response(c, req, &fresh, &f);
  if (rc == 0) {
    authloop_event ev = {0};
    authloop__session_merge(&c->session, &fresh);
    authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
    ev.type = AUTHLOOP_EV_TOKEN_REFRESHED;
    ev.success = 1;
    ev.lifetime = c->session.expires_in;
    authloop__emit(c, &ev);
    authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "tokens refreshed (lifetime %ld s)",
                  c->session.expires_in);
    finish_waiters(c, 1, 0);
    authloop__session_started(c, now, 1);
    flush_calls(c, now);
  } else if (rc == AUTHLOOP_EREVOKED) {
    authloop__session_end(c, AUTHLOOP_EXPIRED_REVOKED);
  } else {
    /* transient: the session stays; try again later, never past expiry */
    authloop__timing *t = &c->timing;
    uint64_t backoff = authloop__backoff_ms(c->retry_attempt++, c->retry_base_ms, c->retry_cap_ms,
                                            authloop__random_u32(&c->ctx->rng));
    t->retrying = 1;
    t->retry_at = authloop__retry_at(now, backoff, req->retry_after_ms, t->expires_at);
    authloop__log(c->ctx, AUTHLOOP_LOG_WARN, "refresh failed: %s; next try in %llu ms",
                  authloop_err_name(rc), (unsigned long long)(t->retry_at - now));
    authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
    finish_waiters(c, 1, rc);
    fail_retried_calls(c, rc);
    if (!c->ctx->closing) {
      flush_calls(c, now); /* the old token may still be good */
      authloop__client_evaluate(c, now);
    }
  }
  authloop__failure_clear(&f);
  authloop__session_clear(&fresh);
}

/* ---- the policy's verdicts ----------------------------------------------------------- */

void authloop__client_evaluate(authloop_client *c, uint64_t now) {
  authloop__timing *t = &c->timing;
  uint64_t wake = AUTHLOOP__NEVER, calls;
  if (c->ctx->closing || c->free_requested)
    return;
  while (c->state == AUTHLOOP_STATE_LOGGED_IN) {
    authloop__action act;
    t->offline = !c->ctx->online_app; /* offline by our own count: retries probe */
    act = authloop__decide(t, now, &wake);
    if (act == AUTHLOOP__WARN_IDLE) {
      authloop_event ev = {0};
      t->warned = 1;
      ev.type = AUTHLOOP_EV_TOKEN_EXPIRING;
      ev.expires_in_ms = (long long)(t->expires_at - now);
      authloop__emit(c, &ev);
      continue;
    }
    if (act == AUTHLOOP__EXPIRE_IDLE) {
      authloop__session_end(c, AUTHLOOP_EXPIRED_IDLE);
      return;
    }
    if (act == AUTHLOOP__REFRESH && refresh_start(c) != 0) {
      /* could not even start: try again after a backoff step */
      t->retrying = 1;
      t->retry_at = now + c->retry_base_ms;
      wake = t->retry_at;
    }
    break;
  }
  calls = expire_calls(c, now);
  authloop__sched_set(c, calls < wake ? calls : wake);
}

void authloop__ctx_wake_all(authloop_ctx *ctx) {
  uint64_t now = authloop__boot_ms();
  authloop__link *l;
  for (l = ctx->clients.next; l != &ctx->clients; l = l->next) {
    authloop_client *c = AUTHLOOP__CONTAINER_OF(l, authloop_client, link);
    if (!logged_in(c))
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
  if (!c || c->free_requested)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  now = authloop__boot_ms();
  c->timing.last_activity = now;
  if (c->state == AUTHLOOP_STATE_LOGGED_IN)
    authloop__client_evaluate(c, now);
  return 0;
}

int authloop_refresh(authloop_client *c, authloop_done_cb cb, void *userdata) {
  authloop__waiter *w;
  int rc;
  if ((rc = authloop__client_usable(c)) != 0)
    return rc;
  if (!logged_in(c))
    return AUTHLOOP_ENOTLOGGEDIN;
  if (!c->provider->refresh_request || c->session.expires_in == AUTHLOOP__NO_EXPIRY)
    return AUTHLOOP_ENOTSUP; /* a token that never expires is not refreshed */
  if (!c->ctx->online_app)
    return AUTHLOOP_EOFFLINE;
  if (!(w = calloc(1, sizeof(*w))))
    return AUTHLOOP_ENOMEM;
  if (!c->refresh_req && (rc = refresh_start(c)) != 0) {
    free(w);
    return rc;
  }
  w->cb = cb;
  w->userdata = userdata;
  authloop__list_push(&c->refresh_waiters, &w->link);
  c->timing.last_activity = authloop__boot_ms();
  authloop__client_evaluate(c, c->timing.last_activity); /* only call deadlines remain */
  return 0;
}

static int valid_method(const char *m) {
  static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  size_t i;
  for (i = 0; m && i < sizeof(ok) / sizeof(ok[0]); i++)
    if (strcmp(m, ok[i]) == 0)
      return 1;
  return 0;
}

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 1;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s%s", a, b);
  return s;
}

int authloop_request(authloop_client *c, const char *method, const char *path,
                     const char *body_json, authloop_response_cb cb, void *userdata) {
  authloop__call *call;
  json_t *check;
  uint64_t now;
  if (!c || c->free_requested || !cb || !valid_method(method) || !path || path[0] != '/' ||
      authloop__has_space(path))
    return AUTHLOOP_EINVAL;
  if (body_json) {
    if (strcmp(method, "GET") == 0 || !(check = json_loads(body_json, JSON_DECODE_ANY, NULL)))
      return AUTHLOOP_EINVAL;
    json_decref(check);
  }
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  if (c->ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (!logged_in(c))
    return AUTHLOOP_ENOTLOGGEDIN;
  if (!(call = calloc(1, sizeof(*call))))
    return AUTHLOOP_ENOMEM;
  call->c = c;
  call->cb = cb;
  call->userdata = userdata;
  call->method = strdup(method);
  call->url = join(c->base_url, path);
  call->body = body_json ? authloop__secret_dup(body_json) : NULL;
  if (!call->method || !call->url || (body_json && !call->body)) {
    free(call->method);
    free(call->url);
    authloop__secret_free(call->body);
    free(call);
    return AUTHLOOP_ENOMEM;
  }
  now = authloop__boot_ms();
  call->deadline = now + c->ctx->timeout_ms;
  authloop__list_push(&c->calls, &call->link);
  /* activity: may start a refresh this call then waits for */
  c->timing.last_activity = now;
  if (c->state == AUTHLOOP_STATE_LOGGED_IN)
    authloop__client_evaluate(c, now);
  if (can_send(c, now))
    call_send(call);
  return 0;
}

static void on_call_done(authloop__req *req, void *userdata) {
  authloop__call *call = userdata;
  authloop_client *c = call->c;
  uint64_t now = authloop__boot_ms();
  call->req = NULL; /* the transport frees it */
  if (!req->error && logged_in(c) && c->provider->session_gone(req)) {
    /* the server no longer knows this session: it ends here too */
    authloop__failure why = {0};
    why.error = AUTHLOOP_EREVOKED;
    why.http_status = req->http_status;
    call_finish(call, AUTHLOOP_EREVOKED, req->http_status, req->resp.data, req->resp.len);
    authloop__logout_locally(c, &why);
    return;
  }
  if (!req->error && req->http_status == 401 && !call->retried && logged_in(c) &&
      c->provider->refresh_request) {
    call->retried = 1;
    call->deadline = now + c->ctx->timeout_ms;
    if (call->token_gen != c->token_gen && can_send(c, now)) {
      call_send(call); /* someone refreshed meanwhile: the new token may do */
      return;
    }
    if (c->state == AUTHLOOP_STATE_LOGGED_IN) {
      int rc = refresh_start(c);
      if (rc) {
        call_finish(call, rc, 401, req->resp.data, req->resp.len);
        return;
      }
    }
    authloop__client_evaluate(c, now); /* waits for the refresh, up to its deadline */
    return;
  }
  call_finish(call, req->error, req->http_status, req->resp.data, req->resp.len);
}
