/* SPDX-License-Identifier: MIT */
/* The session state machine and the client's public API: life and death of
 * a client, logins and logouts, queries, and closing the ctx. Every state
 * change goes through authloop__set_state(), which emits stateChanged. No
 * dialect is named here: a login call builds a credential of a kind and the
 * client's provider does the rest (lib/provider.h). */
#include "engine.h"

#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"LOGGED_OUT", "LOGGING_IN", "LOGGED_IN",
                                          "REFRESHING", "EXPIRED",    "AWAITING_TOKEN"};

const char *authloop_state_name(authloop_state s) {
  return (unsigned)s < AUTHLOOP__COUNT(state_names) ? state_names[s] : "UNKNOWN";
}

/* The dialect's per-issuer data for base, found or made; c takes a reference. */
static int shared_get(authloop_client *c, const char *base) {
  authloop__link *l;
  authloop__shared *s;
  for (l = c->ctx->shared.next; l != &c->ctx->shared; l = l->next) {
    s = AUTHLOOP__CONTAINER_OF(l, authloop__shared, link);
    if (s->provider == c->provider && strcmp(s->key, base) == 0) {
      s->refs++;
      c->shared = s;
      return 0;
    }
  }
  if (!(s = calloc(1, sizeof(*s))) || !(s->key = strdup(base)) ||
      !(s->data = c->provider->shared_new())) {
    if (s)
      free(s->key);
    free(s);
    return AUTHLOOP_ENOMEM;
  }
  s->provider = c->provider;
  s->refs = 1;
  authloop__list_push(&c->ctx->shared, &s->link);
  c->shared = s;
  return 0;
}

static int provider_init(authloop_client *c, const authloop_client_options *o) {
  authloop__provider_env env;
  const char *bases[AUTHLOOP__MAX_BASES] = {NULL};
  unsigned char installation[32];
  size_t i;
  int rc;
  env.user_agent = c->ctx->user_agent;
  env.now_wall_ms = (long long)authloop__wall_ms();
  env.installation = NULL;
  if ((rc = authloop__random(&c->ctx->rng, env.random, sizeof(env.random))) != 0)
    return rc;
  /* the installation is the session file's: machine, user, resolved path */
  if (o->session_path) {
    if ((rc = authloop__installation_id(o->session_path, o->app_id, installation)) != 0)
      return rc;
    env.installation = installation;
  }
  env.shared = NULL;
  if (c->provider->shared_new && o->base_url) {
    if ((rc = shared_get(c, o->base_url)) != 0)
      return rc;
    env.shared = c->shared->data;
  }
  if ((rc = c->provider->init(o, &env, &c->pstate, bases)) != 0)
    return rc;
  for (i = 0; i < AUTHLOOP__MAX_BASES && bases[i]; i++) {
    if ((rc = authloop__check_base_url(bases[i], o->allow_insecure_http, NULL)) != 0 ||
        (rc = authloop__origin_get(c->ctx, bases[i], authloop__origin_hold_end, &c->origins[i])) !=
            0)
      return rc;
    c->bases[i] = bases[i];
  }
  if (!bases[0])
    return AUTHLOOP_EINVAL;
  /* the API base, without its trailing slashes: the session file compares it */
  i = strlen(bases[0]);
  while (i && bases[0][i - 1] == '/')
    i--;
  if (!(c->base_url = malloc(i + 1)))
    return AUTHLOOP_ENOMEM;
  memcpy(c->base_url, bases[0], i);
  c->base_url[i] = '\0';
  return 0;
}

static uint64_t or_default(unsigned v, unsigned fallback) { return v ? v : fallback; }

static void on_login_wake(authloop__timer_entry *e, uint64_t now);
static void cancel_login(authloop_client *c);

int authloop_client_new(authloop_ctx *ctx, const authloop_client_options *caller,
                        authloop_client **out) {
  authloop_client_options copy, *opts = &copy;
  authloop_client *c;
  int rc;
  if (!out)
    return AUTHLOOP_EINVAL;
  *out = NULL;
  if (!ctx || !caller)
    return AUTHLOOP_EINVAL;
  if ((rc = AUTHLOOP__OPTIONS_COPY(&copy, caller)) != 0)
    return rc;
  if (!opts->provider)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(ctx);
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (!authloop__provider_find(opts->provider))
    return AUTHLOOP_ENOPROVIDER;
  if ((opts->session_path && !*opts->session_path) || (opts->session_key && !opts->session_path))
    return AUTHLOOP_EINVAL;
  /* what the client will need where nothing may fail: room to retire its
   * strings, and room for its wake-up in the timer */
  if ((rc = authloop__retire_reserve(ctx)) != 0)
    return rc;
  if (!(c = calloc(1, sizeof(*c)))) {
    authloop__retire_release(ctx);
    return AUTHLOOP_ENOMEM;
  }
  authloop__timer_entry_init(&c->wake, authloop__client_on_timer);
  authloop__timer_entry_init(&c->login_wake, on_login_wake);
  if (authloop__timer_reserve(&ctx->timer, &c->wake) != 0) {
    free(c);
    authloop__retire_release(ctx);
    return AUTHLOOP_ENOMEM;
  }
  if (authloop__timer_reserve(&ctx->timer, &c->login_wake) != 0) {
    authloop__timer_release(&ctx->timer, &c->wake);
    free(c);
    authloop__retire_release(ctx);
    return AUTHLOOP_ENOMEM;
  }
  c->ctx = ctx;
  c->provider = authloop__provider_find(opts->provider);
  c->refs = 1;
  c->lock_fd = -1;
  authloop__list_init(&c->refresh_waiters);
  authloop__list_init(&c->calls);
  authloop__list_init(&c->logouts);
  authloop__list_init(&c->link);
  c->margin_ms = or_default(opts->refresh_margin_s, 300) * 1000u;
  c->timing.idle_ms = or_default(opts->idle_window_s, 3600) * 1000u;
  c->retry_base_ms = or_default(opts->retry_base_ms, 1000);
  c->retry_cap_ms = or_default(opts->retry_cap_ms, 60000);
  if (c->retry_cap_ms < c->retry_base_ms)
    c->retry_cap_ms = c->retry_base_ms;
  if ((rc = provider_init(c, opts)) == 0 && opts->session_path &&
      !(c->session_path = strdup(opts->session_path)))
    rc = AUTHLOOP_ENOMEM;
  if (rc) {
    size_t i;
    for (i = 0; i < AUTHLOOP__MAX_BASES; i++)
      authloop__origin_put(c->origins[i]);
    if (c->pstate)
      c->provider->free(c->pstate);
    authloop__shared_put(c->shared);
    free(c->base_url);
    authloop__timer_release(&ctx->timer, &c->wake);
    authloop__timer_release(&ctx->timer, &c->login_wake);
    free(c);
    authloop__retire_release(ctx);
    return rc;
  }
  if (opts->session_key) {
    memcpy(c->session_key, opts->session_key, sizeof(c->session_key));
    c->has_session_key = 1;
  }
  authloop__list_push(&ctx->clients, &c->link);
  if (c->session_path)
    authloop__session_restore(c); /* a bad file is logged and ignored */
  *out = c;
  return 0;
}

/* A logout request on its way (several may be: log in and out again). */
typedef struct {
  authloop__link link; /* in c->logouts */
  authloop_client *c;
  authloop__origin *origin;
  authloop__transfer *x;
  authloop__event_entry *outcome; /* its logout event, reserved by the call */
  /* what the provider had to fetch first (prepare_request): x fetches it, then
   * the logout is made from the session's tokens, kept here (wiped) */
  int preparing, global;
  authloop__session tokens;
  unsigned logins_begun; /* the client's when the logout was asked for */
} logout_op;

/* Logouts are left to finish: each holds a reference on the client and is
 * bounded by the request timeout; the ctx's close waits for them. */
static void abort_transfers(authloop_client *c) {
  authloop__transfer_abort(c->login_x);
  c->login_x = NULL;
  authloop__timer_set(&c->ctx->timer, &c->login_wake, AUTHLOOP__NEVER);
  c->login_local = 0;
}

/* No event fires for a freed client; the callbacks of its pending
 * authloop_refresh/request calls run once with ECANCELED, and the memory goes
 * when the last queued call that holds it has run. */
void authloop_client_free(authloop_client *c) {
  if (!c || c->freed)
    return;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  c->freed = 1;
  authloop__session_abort(c, AUTHLOOP_ECANCELED);
  abort_transfers(c);
  authloop__timer_set(&c->ctx->timer, &c->wake, AUTHLOOP__NEVER);
  authloop__client_unref(c);
}

authloop_ctx *authloop_client_ctx(const authloop_client *c) { return c ? c->ctx : NULL; }
authloop_state authloop_client_state(const authloop_client *c) {
  return c ? c->state : AUTHLOOP_STATE_LOGGED_OUT;
}

/* ---- closing the ctx --------------------------------------------------------------------- */

static void close_clients(authloop_ctx *ctx) {
  while (!authloop__list_empty(&ctx->clients)) {
    authloop_client *c = AUTHLOOP__CONTAINER_OF(ctx->clients.next, authloop_client, link);
    authloop__list_remove(&c->link); /* a client freed but still referenced leaves too */
    authloop_client_free(c);
  }
}

int authloop_ctx_close(authloop_ctx *ctx, authloop_close_cb cb, void *userdata) {
  authloop__link *l;
  if (!ctx)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(ctx);
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  ctx->closing = 1;
  /* in-flight operations end with ECANCELED, their events queued first; a
   * logout on its way finishes (the close waits for it) */
  authloop__transport_cancel_all(&ctx->transport, 1);
  for (l = ctx->clients.next; l != &ctx->clients; l = l->next) {
    authloop_client *c = AUTHLOOP__CONTAINER_OF(l, authloop_client, link);
    /* a login between two polls, or waiting for the user's browser: each
     * owes its loginAttempt (a transfer's comes with its cancellation) */
    if (c->login_wake.index != AUTHLOOP__NOT_SCHEDULED || c->state == AUTHLOOP_STATE_AWAITING_TOKEN)
      cancel_login(c);
    authloop__session_abort(c, AUTHLOOP_ECANCELED);
  }
  authloop__ctx_begin_close(ctx, close_clients, cb, userdata);
  return 0;
}

/* ---- state machine ---------------------------------------------------------------- */

static void failure_from(authloop__result *r, const authloop__outcome *o) {
  char msg[CURL_ERROR_SIZE + 128];
  r->error = o->error;
  if (o->detail && *o->detail) {
    snprintf(msg, sizeof(msg), "%s: %s", authloop_strerror(o->error), o->detail);
    r->message = strdup(msg);
  }
}

static void on_login_done(void *ud, const authloop__outcome *o);

/* first: the login's first request, which is never queued while its server
 * is on hold (it fails at once with EOFFLINE) */
static int send_login_step(authloop_client *c, int first) {
  authloop__request req = {0};
  authloop__view v;
  int rc;
  if (c->ctx->closing)
    return AUTHLOOP_ECLOSING;
  authloop__view_of(c, &c->pending, &v);
  rc = c->provider->login_request(c->pstate, &v, c->login_step, &req);
  if (rc == AUTHLOOP__NO_REQUEST) { /* its answer is had: read from the loop */
    authloop__request_clear(&req);
    c->login_origin = NULL;
    c->login_local = 1;
    authloop__timer_set(&c->ctx->timer, &c->login_wake, authloop__boot_ms());
    return 0;
  }
  c->login_origin = authloop__origin_of(c, req.base);
  if (rc == 0 && first && !authloop__online(c->ctx, c->login_origin))
    rc = AUTHLOOP_EOFFLINE;
  if (rc == 0)
    rc = authloop__transport_start(&c->ctx->transport, &req, on_login_done, c, &c->login_x);
  authloop__request_clear(&req);
  return rc;
}

/* authloop_login_redirect() hands these out: retired, readable until the loop turns. */
static void forget_redirect(authloop_client *c) {
  authloop__retire_text(c->ctx, c->redirect_url);
  authloop__retire_text(c->ctx, c->redirect_result);
  c->redirect_url = c->redirect_result = NULL;
}

/* The provider's end-session URL after a logout request was made: a copy the
 * client hands out (retired, so that it stays readable until the loop turns). */
static void keep_end_session_url(authloop_client *c) {
  const char *u = c->provider->end_session_url ? c->provider->end_session_url(c->pstate) : NULL;
  authloop__retire_text(c->ctx, c->end_session_url);
  c->end_session_url = u ? strdup(u) : NULL;
}

/* A device login's codes, kept for authloop_login_prompt_of() and told by
 * loginPrompt (taken from r); out of memory, the login fails with ENOMEM. */
static void keep_prompt(authloop_client *c, authloop__result *r) {
  authloop_login_prompt *p = calloc(1, sizeof(*p));
  if (!p) {
    authloop__result_fail(r, AUTHLOOP_ENOMEM, 0, NULL, NULL);
    return;
  }
  authloop__forget_prompt(c);
  p->verification_uri = r->prompt_uri;
  p->verification_uri_complete = r->prompt_uri_complete;
  p->user_code = r->prompt_code;
  p->expires_in = (long)r->prompt_expires_s;
  p->interval = (long)r->prompt_interval_s;
  r->prompt_uri = r->prompt_uri_complete = r->prompt_code = NULL;
  c->prompt = p;
  authloop__outcome_emit(c, NULL, AUTHLOOP_EV_LOGIN_PROMPT, NULL);
}

static void login_finished(authloop_client *c, authloop__result *r) {
  authloop__session *p = &c->pending;
  uint64_t now;
  if (!r->error && (!p->access_token || !p->user || p->lifetime_s == AUTHLOOP__LIFETIME_UNSET))
    authloop__result_fail(r, AUTHLOOP_EPROTO, r->http_status, "malformed response: %s",
                          "the login ended without a token, a user or a lifetime");
  authloop__outcome_drop(&c->await_note); /* no pause now: the login has ended */
  forget_redirect(c);
  authloop__forget_prompt(c);
  authloop__timer_set(&c->ctx->timer, &c->login_wake, AUTHLOOP__NEVER);
  c->login_local = 0;
  c->provider->login_end(c->pstate);
  if (r->error) {
    authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "login failed: %s (HTTP %ld, server code %s)",
                  authloop_err_name(r->error), r->http_status,
                  r->server_code ? r->server_code : "none");
    authloop__session_clear(p);
    authloop__set_state(c, AUTHLOOP_STATE_LOGGED_OUT);
    authloop__outcome_emit(c, &c->login_outcome, AUTHLOOP_EV_LOGIN_ATTEMPT, r);
    return;
  }
  now = authloop__boot_ms();
  c->session = *p;
  memset(p, 0, sizeof(*p));
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "login succeeded (token lifetime %lld s)",
                c->session.lifetime_s);
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
  authloop__outcome_emit(c, &c->login_outcome, AUTHLOOP_EV_LOGIN_ATTEMPT, NULL);
  c->timing.last_activity = now; /* logging in is activity */
  c->refreshed_at = 0;           /* a login's tokens: a 401 may ask for a refresh at once */
  authloop__session_generation(c);
  authloop__session_started(c, now, 1);
}

static void on_login_done(void *ud, const authloop__outcome *o) {
  authloop_client *c = ud;
  authloop__origin *origin = c->login_origin; /* a next step may go elsewhere */
  authloop__result r = {0};
  c->login_x = NULL;
  if (o->error && o->error != AUTHLOOP_ECANCELED && c->provider->login_retry_ms) {
    authloop__view v;
    long long delay;
    authloop__view_of(c, &c->pending, &v);
    if ((delay = c->provider->login_retry_ms(c->pstate, &v, c->login_step, o->error)) > 0) {
      authloop__timer_set(&c->ctx->timer, &c->login_wake, authloop__boot_ms() + (uint64_t)delay);
      authloop__health_outcome(c->ctx, origin, o);
      return;
    }
  }
  if (o->error) {
    failure_from(&r, o);
  } else {
    authloop__view v;
    authloop__view_of(c, &c->pending, &v);
    c->provider->login_answer(c->pstate, &v, c->login_step, &o->answer, &r);
    if (authloop__result_check(c, &r) == 0)
      authloop__session_merge(c, &c->pending, &r);
  }
  if (!r.error && r.prompt_code)
    keep_prompt(c, &r);
  if (!r.error && r.next == AUTHLOOP__NEXT_STEP) {
    int rc;
    c->login_step = r.step;
    if (r.delay_ms > 0) { /* sent later, by the timer (its room is reserved) */
      authloop__timer_set(&c->ctx->timer, &c->login_wake,
                          authloop__boot_ms() + (uint64_t)r.delay_ms);
      authloop__result_clear(&r);
      authloop__health_outcome(c->ctx, origin, o);
      return;
    }
    if ((rc = send_login_step(c, 0)) == 0) {
      authloop__result_clear(&r);
      authloop__health_outcome(c->ctx, origin, o);
      return;
    }
    authloop__result_fail(&r, rc, 0, NULL, NULL);
  } else if (!r.error && r.next == AUTHLOOP__NEXT_AWAIT) {
    /* a two-step strategy: no loginAttempt until authloop_set_token(); a
     * redirect strategy's URL is there to read when stateChanged says so */
    forget_redirect(c);
    c->redirect_url = r.redirect_url;
    c->redirect_result = r.redirect_result;
    r.redirect_url = r.redirect_result = NULL;
    authloop__set_state_in(c, AUTHLOOP_STATE_AWAITING_TOKEN, &c->await_note);
    authloop__result_clear(&r);
    authloop__health_outcome(c->ctx, origin, o);
    return;
  }
  login_finished(c, &r);
  authloop__result_clear(&r);
  authloop__health_outcome(c->ctx, origin, o);
}

/* Checks shared by every login call, in the order of docs/protocol.md. */
static int login_precheck(const authloop_client *c) {
  int rc = authloop__client_usable(c);
  if (rc)
    return rc;
  if (c->state == AUTHLOOP_STATE_LOGGING_IN || c->state == AUTHLOOP_STATE_AWAITING_TOKEN)
    return AUTHLOOP_ELOGININPROGRESS;
  if (authloop__logged_in(c))
    return AUTHLOOP_EALREADY;
  return 0;
}

/* The dialect validates the credential and says where its login starts. */
static int start_login(authloop_client *c, const authloop__credential *cred, unsigned kinds) {
  int rc, resuming = c->state == AUTHLOOP_STATE_AWAITING_TOKEN;
  if (!(kinds & cred->kind))
    return AUTHLOOP_EWRONGPROVIDER;
  if ((rc = c->provider->login_start(c->pstate, cred, &c->login_step)) != 0)
    return rc;
  /* what its outcome needs is had now, or the call fails now */
  if (!c->login_outcome && !(c->login_outcome = authloop__outcome_reserve()))
    rc = AUTHLOOP_ENOMEM;
  /* a two-step strategy's pause is told by stateChanged alone: it cannot be lost */
  else if (c->provider->resumes && !c->await_note && !(c->await_note = authloop__outcome_reserve()))
    rc = AUTHLOOP_ENOMEM;
  else if ((rc = send_login_step(c, 1)) == 0)
    authloop__set_state(c, AUTHLOOP_STATE_LOGGING_IN);
  if (rc && resuming) {
    /* the waiting login took what it was given (a one-time code ...) and
     * cannot go on: it ends, with its loginAttempt, rather than wait for
     * what it can no longer use */
    authloop__result r = {0};
    authloop__set_state(c, AUTHLOOP_STATE_LOGGING_IN);
    authloop__result_fail(&r, rc, 0, NULL, NULL);
    login_finished(c, &r);
    authloop__result_clear(&r);
    return 0;
  }
  if (rc) {
    c->provider->login_end(c->pstate);
    authloop__session_clear(&c->pending);
    authloop__outcome_drop(&c->login_outcome);
    authloop__outcome_drop(&c->await_note);
  }
  return rc;
}

static int login(authloop_client *c, const authloop__credential *cred);

/* The login in progress ends ECANCELED; its events are queued, delivered
 * from the loop. */
static void cancel_login(authloop_client *c) {
  authloop__result r = {0};
  abort_transfers(c);
  authloop__result_fail(&r, AUTHLOOP_ECANCELED, 0, NULL, NULL);
  login_finished(c, &r);
  authloop__result_clear(&r);
}

static void on_login_wake(authloop__timer_entry *e, uint64_t now) {
  authloop_client *c = AUTHLOOP__CONTAINER_OF(e, authloop_client, login_wake);
  int rc;
  (void)now;
  if (c->login_local) { /* a step with nothing to send: its answer now */
    authloop__outcome o;
    memset(&o, 0, sizeof(o));
    o.answer.body = "";
    o.detail = "";
    o.retry_after_ms = -1;
    c->login_local = 0;
    on_login_done(c, &o);
    return;
  }
  if ((rc = send_login_step(c, 0)) != 0) {
    authloop__result r = {0};
    authloop__result_fail(&r, rc, 0, NULL, NULL);
    login_finished(c, &r);
    authloop__result_clear(&r);
  }
}

int authloop_login_cancel(authloop_client *c) {
  int rc = authloop__client_usable(c);
  if (rc)
    return rc;
  if (c->state != AUTHLOOP_STATE_LOGGING_IN && c->state != AUTHLOOP_STATE_AWAITING_TOKEN)
    return AUTHLOOP_EINVAL;
  cancel_login(c);
  return 0;
}

int authloop_login_browser(authloop_client *c) {
  authloop__credential cred = {0};
  int rc = login_precheck(c);
  if (rc)
    return rc;
  cred.kind = AUTHLOOP__CRED_BROWSER;
  if ((rc = authloop__random(&c->ctx->rng, cred.random, sizeof(cred.random))) != 0)
    return rc;
  rc = login(c, &cred);
  mbedtls_platform_zeroize(cred.random, sizeof(cred.random));
  return rc;
}

int authloop_login_callback(authloop_client *c, const char *redirect_url) {
  int rc = authloop__client_usable(c);
  if (rc)
    return rc;
  if (!(c->provider->accepts & AUTHLOOP__CRED_BROWSER))
    return AUTHLOOP_EWRONGPROVIDER;
  if (!redirect_url || !*redirect_url || !authloop__text_ok(redirect_url) ||
      authloop__has_space(redirect_url))
    return AUTHLOOP_EINVAL;
  return authloop_set_token(c, redirect_url);
}

int authloop_login_device(authloop_client *c) {
  authloop__credential cred = {0};
  cred.kind = AUTHLOOP__CRED_DEVICE;
  return login(c, &cred);
}

const authloop_login_prompt *authloop_login_prompt_of(const authloop_client *c) {
  return c && !c->freed ? c->prompt : NULL;
}

const char *authloop_end_session_url(const authloop_client *c) {
  return c && !c->freed ? c->end_session_url : NULL;
}

static int login(authloop_client *c, const authloop__credential *cred) {
  int rc = login_precheck(c);
  if (rc)
    return rc;
  authloop__session_clear(&c->pending);
  if ((rc = start_login(c, cred, c->provider->accepts)) != 0)
    return rc; /* refused at once: no login began, the last logout's URL stays */
  authloop__retire_text(c->ctx, c->end_session_url); /* a new login: the old one is over */
  c->end_session_url = NULL;
  c->logins_begun++; /* and a logout still on its way keeps none of its own */
  return 0;
}

int authloop_login_code(authloop_client *c, const char *authorization_code) {
  authloop__credential cred = {0};
  cred.kind = AUTHLOOP__CRED_CODE;
  cred.code = authorization_code;
  return login(c, &cred);
}

int authloop_login_strategy(authloop_client *c, const char *strategy, const char *credentials_json,
                            const char *expires_in) {
  authloop__credential cred = {0};
  cred.kind = AUTHLOOP__CRED_STRATEGY;
  cred.strategy = strategy;
  cred.credentials_json = credentials_json;
  cred.expires_in = expires_in;
  return login(c, &cred);
}

int authloop_login_local(authloop_client *c, const char *username, const char *password,
                         const char *expires_in) {
  const char *pairs[4];
  char *text;
  int rc = login_precheck(c);
  if (rc)
    return rc;
  if (!(c->provider->accepts & AUTHLOOP__CRED_STRATEGY))
    return AUTHLOOP_EWRONGPROVIDER;
  if (!username || !*username || !password || !authloop__utf8_ok(username) ||
      !authloop__utf8_ok(password))
    return AUTHLOOP_EINVAL;
  pairs[0] = "username";
  pairs[1] = username;
  pairs[2] = "password";
  pairs[3] = password;
  if (!(text = authloop__jw_object(pairs, 2)))
    return AUTHLOOP_ENOMEM;
  rc = authloop_login_strategy(c, "local", text, expires_in);
  authloop__secret_free(text);
  return rc;
}

int authloop_login_password(authloop_client *c, const char *username, const char *password) {
  authloop__credential cred = {0};
  int rc = login_precheck(c);
  if (rc)
    return rc;
  if (!(c->provider->accepts & AUTHLOOP__CRED_PASSWORD))
    return c->provider->accepts & AUTHLOOP__CRED_STRATEGY
               ? authloop_login_local(c, username, password, NULL)
               : AUTHLOOP_EWRONGPROVIDER;
  cred.kind = AUTHLOOP__CRED_PASSWORD;
  cred.username = username;
  cred.password = password;
  return login(c, &cred);
}

int authloop_login_key(authloop_client *c, const char *uid, const char *auth_key) {
  authloop__credential cred = {0};
  cred.kind = AUTHLOOP__CRED_UID_KEY;
  cred.uid = uid;
  cred.key = auth_key;
  return login(c, &cred);
}

int authloop_login_token(authloop_client *c, const char *auth_token) {
  authloop__credential cred = {0};
  cred.kind = AUTHLOOP__CRED_TOKEN;
  cred.token = auth_token;
  return login(c, &cred);
}

int authloop_set_token(authloop_client *c, const char *token) {
  authloop__credential cred = {0};
  int rc = authloop__client_usable(c);
  if (rc)
    return rc;
  if (c->state != AUTHLOOP_STATE_AWAITING_TOKEN)
    return c->state == AUTHLOOP_STATE_LOGGING_IN ? AUTHLOOP_ELOGININPROGRESS : AUTHLOOP_EINVAL;
  /* the header's promises, whatever the dialect makes of the token */
  if (!token || !*token)
    return AUTHLOOP_EBLANKAUTHTOKEN;
  if (authloop__has_space(token))
    return AUTHLOOP_EAUTHTOKENSPACE;
  if (!authloop__text_ok(token))
    return AUTHLOOP_EINVAL;
  cred.kind = AUTHLOOP__CRED_TOKEN;
  cred.token = token;
  return start_login(c, &cred, c->provider->resumes);
}

/* ---- logout ---------------------------------------------------------------------------- */

static void on_logout_done(void *ud, const authloop__outcome *o);

static void logout_op_free(logout_op *op) {
  authloop__session_clear(&op->tokens);
  free(op);
}

/* The logout's request, made from a view of the session: started (0), nothing
 * to send (AUTHLOOP__NO_REQUEST), or an error. */
static int logout_send(logout_op *op, const authloop__view *v) {
  authloop_client *c = op->c;
  authloop__request req = {0};
  int rc = c->provider->logout_request(c->pstate, v, op->global, &req);
  if (op->logins_begun == c->logins_begun && !c->freed) /* no newer login's to replace */
    keep_end_session_url(c);
  req.flags |= AUTHLOOP__LINGER; /* it reaches the server even if the client is freed now */
  op->origin = authloop__origin_of(c, req.base);
  if (rc == 0)
    rc = authloop__transport_start(&c->ctx->transport, &req, on_logout_done, op, &op->x);
  authloop__request_clear(&req);
  return rc;
}

static void on_logout_done(void *ud, const authloop__outcome *o) {
  logout_op *op = ud;
  authloop_client *c = op->c;
  authloop__result r = {0};
  op->x = NULL;
  if (op->preparing) { /* what the logout needed: then the logout itself */
    authloop__view v;
    int rc;
    op->preparing = 0;
    memset(&v, 0, sizeof(v));
    v.access_token = op->tokens.access_token;
    v.id_token = op->tokens.id_token;
    v.refresh_token = op->tokens.refresh_token;
    v.now_wall_ms = (long long)authloop__wall_ms();
    v.now_ms = (long long)authloop__boot_ms();
    if (o->error)
      failure_from(&r, o);
    else if (c->provider->prepare_answer(c->pstate, &v, &o->answer, &r) == 0 &&
             (rc = logout_send(op, &v)) != AUTHLOOP__NO_REQUEST) {
      if (rc == 0) { /* on its way */
        authloop__health_outcome(c->ctx, op->origin, o);
        return;
      }
      r.error = rc;
    }
    authloop__list_remove(&op->link);
    authloop__outcome_emit(c, &op->outcome, AUTHLOOP_EV_LOGOUT, &r);
    authloop__result_clear(&r);
    logout_op_free(op);
    authloop__client_unref(c);
    return;
  }
  authloop__list_remove(&op->link);
  if (o->error)
    failure_from(&r, o);
  else
    c->provider->logout_answer(c->pstate, &o->answer, &r);
  authloop__outcome_emit(c, &op->outcome, AUTHLOOP_EV_LOGOUT, &r); /* none for a freed client */
  authloop__result_clear(&r);
  authloop__health_outcome(c->ctx, op->origin, o);
  logout_op_free(op);
  authloop__client_unref(c);
}

static int logout(authloop_client *c, int global) {
  authloop__request req = {0};
  authloop__view v;
  logout_op *op;
  int rc;
  if ((rc = authloop__client_usable(c)) != 0)
    return rc;
  if (!authloop__logged_in(c))
    return AUTHLOOP_ENOTLOGGEDIN;
  if (global && !(c->provider->flags & AUTHLOOP__CAN_GLOBAL_LOGOUT))
    return AUTHLOOP_ENOTSUP;
  if (!(op = calloc(1, sizeof(*op))) || !(op->outcome = authloop__outcome_reserve())) {
    free(op);
    return AUTHLOOP_ENOMEM;
  }
  op->c = c;
  op->global = global;
  op->logins_begun = c->logins_begun;
  authloop__view_of(c, &c->session, &v);
  if (c->provider->prepare_request &&
      (rc = c->provider->prepare_request(c->pstate, &v, &req)) != AUTHLOOP__NO_REQUEST) {
    /* first what the logout needs (a restored session's issuer, never
     * discovered): the tokens are kept for the request made after it */
    op->preparing = 1;
    req.flags |= AUTHLOOP__LINGER;
    op->origin = authloop__origin_of(c, req.base);
    if (rc == 0 && ((c->session.access_token &&
                     !(op->tokens.access_token = authloop__secret_dup(c->session.access_token))) ||
                    (c->session.id_token &&
                     !(op->tokens.id_token = authloop__secret_dup(c->session.id_token))) ||
                    (c->session.refresh_token &&
                     !(op->tokens.refresh_token = authloop__secret_dup(c->session.refresh_token)))))
      rc = AUTHLOOP_ENOMEM;
    if (rc == 0)
      rc = authloop__transport_start(&c->ctx->transport, &req, on_logout_done, op, &op->x);
    authloop__request_clear(&req);
  } else {
    authloop__request_clear(&req);
    rc = logout_send(op, &v);
  }
  /* local state goes whatever the server will say; so does the file, which
   * becomes a logout's mark for the processes that share it */
  {
    /* the user, retired by the clearing, stays readable until the loop turns */
    long long gen = c->gen, sid = c->sid;
    const char *uid = authloop_user_id(c->session.user);
    authloop__clear_locally(c, AUTHLOOP_ECANCELED);
    authloop__session_forget(c, AUTHLOOP__FORGET_LOGOUT, gen, sid, uid);
  }
  if (rc) {
    authloop__result r = {0};
    r.error = rc == AUTHLOOP__NO_REQUEST ? 0 : rc; /* nothing to tell the server */
    authloop__outcome_emit(c, &op->outcome, AUTHLOOP_EV_LOGOUT, &r);
    logout_op_free(op);
  } else {
    authloop__client_ref(c);
    authloop__list_push(&c->logouts, &op->link);
  }
  return 0;
}

int authloop_logout(authloop_client *c) { return logout(c, 0); }
int authloop_logout_global(authloop_client *c) { return logout(c, 1); }

/* ---- queries ------------------------------------------------------------------------ */

int authloop_is_logged_in(const authloop_client *c) {
  return c && !c->freed && authloop__logged_in(c);
}

long long authloop_token_expires_in_ms(const authloop_client *c) {
  uint64_t now;
  if (!authloop_is_logged_in(c))
    return 0;
  if (c->timing.expires_at == AUTHLOOP__NEVER)
    return -1;
  now = authloop__boot_ms();
  return c->timing.expires_at > now ? (long long)(c->timing.expires_at - now) : 0;
}

const char *authloop_login_redirect(const authloop_client *c) {
  return c && !c->freed && c->state == AUTHLOOP_STATE_AWAITING_TOKEN ? c->redirect_url : NULL;
}

const char *authloop_login_redirect_result(const authloop_client *c) {
  return c && !c->freed && c->state == AUTHLOOP_STATE_AWAITING_TOKEN ? c->redirect_result : NULL;
}

const authloop_user *authloop_current_user(const authloop_client *c) {
  return authloop_is_logged_in(c) ? c->session.user : NULL;
}

const char *authloop_access_token(const authloop_client *c) {
  return authloop_is_logged_in(c) ? c->session.access_token : NULL;
}

const char *authloop_id_token(const authloop_client *c) {
  return authloop_is_logged_in(c) ? c->session.id_token : NULL;
}

long authloop_token_lifetime(const authloop_client *c) {
  return authloop_is_logged_in(c) ? (long)c->session.lifetime_s : 0;
}

int authloop_copy(const authloop_client *c, authloop_copy_what what, char *buf, size_t size,
                  size_t *len) {
  const authloop_user *u;
  const char *v;
  size_t n;
  if (!c || c->freed || (!buf && size))
    return AUTHLOOP_EINVAL;
  if (!authloop__logged_in(c))
    return AUTHLOOP_ENOTLOGGEDIN;
  u = c->session.user;
  switch (what) {
  case AUTHLOOP_COPY_ACCESS_TOKEN:
    v = c->session.access_token;
    break;
  case AUTHLOOP_COPY_ID_TOKEN:
    v = c->session.id_token;
    break;
  case AUTHLOOP_COPY_USER_ID:
    v = authloop_user_id(u);
    break;
  case AUTHLOOP_COPY_USER_NAME:
    v = authloop_user_name(u);
    break;
  case AUTHLOOP_COPY_USER_JSON:
    v = authloop_user_json(u);
    break;
  default:
    return AUTHLOOP_EINVAL;
  }
  if (!v)
    return AUTHLOOP_ENOENT;
  n = strlen(v);
  if (len)
    *len = n;
  if (n >= size) {
    if (size)
      buf[0] = '\0';
    return AUTHLOOP_ETOOLARGE;
  }
  memcpy(buf, v, n + 1);
  return 0;
}

/* The object is read once, the first time a field is asked for (the
 * strings it hands out live as long as the user). */
const char *authloop_user_field(const authloop_user *u, const char *key) {
  authloop_user *w = (authloop_user *)u;
  if (!u || !key)
    return NULL;
  if (!w->doc) {
    authloop__jdoc *d = malloc(sizeof(*d));
    if (!d)
      return NULL;
    if (authloop__jdoc_parse(d, w->json, strlen(w->json)) != 0) {
      authloop__jdoc_free(d);
      free(d);
      return NULL;
    }
    w->doc = d;
  }
  return authloop__jstring(w->doc, authloop__jget(w->doc, 0, key));
}

const char *authloop_user_id(const authloop_user *u) { return authloop__user_id(u); }
const char *authloop_user_name(const authloop_user *u) { return u ? u->name : NULL; }
const char *authloop_user_json(const authloop_user *u) { return u ? u->json : NULL; }
