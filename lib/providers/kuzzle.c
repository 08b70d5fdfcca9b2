/* SPDX-License-Identifier: MIT */
/* The Kuzzle v2 dialect (docs/protocol.md, section kuzzle): strategy login
 * with expiresIn, two-step strategies (an answer without a jwt, or a
 * redirect) completed by a token, the user from getCurrentUser at
 * /users/_me (the route every 2.x serves; /_me only from 2.4.0; option
 * userinfo -1: the login answer's _id alone), refresh with
 * /_refreshToken, logout (optionally global). Every routed answer is Kuzzle's
 * envelope {"requestId", "status", "error", "controller", "action",
 * "result", ...}; errors raised before routing are the bare error object. */
#include "builtin.h"

#include "../jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pure.h" /* last */

#define STEP_LOGIN 0
#define STEP_ME    1 /* getCurrentUser with the jwt the login gave */
#define STEP_TOKEN 2 /* getCurrentUser with the token authloop_set_token() gave */

#define ME_PATH "/users/_me"

#define MAX_TTL_MS  (10LL * 366 * 24 * 3600 * 1000)
#define MAX_EXPIRES 32 /* characters of an expiresIn value */

typedef struct {
  char *base, *login_path, *logout_path, *refresh_path;
  int fetch_user; /* getCurrentUser after a login (option userinfo 0 or 1; -1: not) */
  /* the login being made; expires_in stays for the session's refreshes */
  char *strategy, *credentials, *expires_in, *token;
} kuzzle;

/* ---- the envelope ------------------------------------------------------------------ */

typedef enum { CALL_LOGIN, CALL_REFRESH, CALL_OTHER } call_kind;

static int is(const char *id, const char *what) { return id && strcmp(id, what) == 0; }

/* about_expires: the error's props (or its message) name expiresIn */
static int map_error(const char *id, long status, call_kind kind, int about_expires) {
  if (is(id, "plugin.strategy.missing_user") || is(id, "security.credentials.invalid"))
    return AUTHLOOP_ECREDENTIALS;
  if (is(id, "security.credentials.unknown_strategy"))
    return AUTHLOOP_ESTRATEGY;
  if (kind != CALL_OTHER && (is(id, "security.token.ttl_exceeded") ||
                             (is(id, "api.assert.invalid_argument") && about_expires)))
    return AUTHLOOP_EEXPIRESIN;
  /* a token the server never refreshes (an API key): it stays good until
   * it runs out (tokenRepository.ts refresh) */
  if (kind == CALL_REFRESH && is(id, "security.token.refresh_forbidden"))
    return AUTHLOOP_ENOTSUP;
  /* both: the official SDK only knows "invalid" and misses "expired"; a
   * 401 without Kuzzle's error (a proxy's page) says nothing of the token */
  if (kind == CALL_REFRESH && ((id && status == 401) || is(id, "security.token.invalid") ||
                               is(id, "security.token.expired")))
    return AUTHLOOP_EREVOKED;
  return status >= 500 || status == 429 ? AUTHLOOP_EUNAVAILABLE : AUTHLOOP_EREJECTED;
}

/* Whether error object e is about expiresIn: its props name it first
 * (kerror's arguments), or its message quotes it. */
static int about_expires(const authloop__jdoc *d, int e) {
  int props = authloop__jget(d, e, "props");
  const char *first = authloop__jstring(
      d, authloop__jis(d, props, AUTHLOOP__J_ARRAY) && d->tok[props].skip > 1 ? props + 1 : -1);
  const char *msg = authloop__jstr(d, e, "message");
  return is(first, "expiresIn") || (msg && strstr(msg, "\"expiresIn\""));
}

/* 0 and the envelope's result (a value of d), or a failure. */
static int envelope(const authloop__answer *a, call_kind kind, authloop__jdoc *d, int *result,
                    authloop__result *out) {
  int err, root_ok, id, msg;
  out->http_status = a->status;
  root_ok = authloop__answer_doc(a, out, d) == 0;
  if (out->error)
    return out->error;
  err = root_ok ? authloop__jget(d, 0, "error") : -1;
  /* refused before routing (content type, size): the bare error object */
  if (err < 0 && root_ok && !authloop__is_2xx(a->status) &&
      authloop__jis(d, authloop__jget(d, 0, "id"), AUTHLOOP__J_STRING) &&
      authloop__jis(d, authloop__jget(d, 0, "message"), AUTHLOOP__J_STRING))
    err = 0;
  if (authloop__jis(d, err, AUTHLOOP__J_OBJECT)) {
    const char *ids, *msgs;
    id = authloop__jget(d, err, "id");
    msg = authloop__jget(d, err, "message");
    ids = authloop__jstring(d, id);
    msgs = authloop__jstring(d, msg);
    out->error = map_error(ids, a->status, kind, about_expires(d, err));
    if (ids)
      out->server_code = strdup(ids);
    if (msgs)
      out->message = strdup(msgs);
    return out->error;
  }
  if (!authloop__is_2xx(a->status)) {
    char text[96];
    int e = map_error(NULL, a->status, kind, 0);
    snprintf(text, sizeof(text), "%s (HTTP %ld)", authloop_strerror(e), a->status);
    return authloop__result_fail(out, e, a->status, "%s", text);
  }
  if (!root_ok || !authloop__jis(d, *result = authloop__jget(d, 0, "result"), AUTHLOOP__J_OBJECT))
    return authloop__result_fail(out, AUTHLOOP_EPROTO, a->status, "malformed response: %s",
                                 "not a Kuzzle envelope with a result object");
  return 0;
}

/* A lifetime in ms -> seconds (at least 1, at most ten years: the server
 * takes any, its default maximum being none); -1 when not positive. */
static int lifetime_from_ms(long long ms, long long *out) {
  if (ms <= 0)
    return -1;
  if (ms > MAX_TTL_MS)
    ms = MAX_TTL_MS;
  *out = ms < 1000 ? 1 : ms / 1000;
  return 0;
}

/* ttl (ms) -> seconds; -1: never expires. */
static int lifetime_from_ttl(const authloop__jdoc *d, int result, long long *out) {
  long long ttl;
  if (authloop__jint(d, authloop__jget(d, result, "ttl"), &ttl) != 0)
    return -1;
  if (ttl == -1) {
    *out = AUTHLOOP__LIFETIME_NEVER;
    return 0;
  }
  return lifetime_from_ms(ttl, out);
}

static int malformed(authloop__result *out, long status, const char *what) {
  return authloop__result_fail(out, AUTHLOOP_EPROTO, status,
                               "malformed response: missing or mistyped %s", what);
}

static int take_jwt(const authloop__jdoc *d, int result, authloop__result *out, long status) {
  const char *jwt = authloop__jstr(d, result, "jwt");
  if (!jwt || authloop__has_space(jwt))
    return malformed(out, status, "\"jwt\"");
  if (lifetime_from_ttl(d, result, &out->lifetime_s) != 0)
    return malformed(out, status, "\"ttl\"");
  return authloop__result_take(out, &out->access_token, jwt);
}

static int user_fields(const authloop__jdoc *d, int user, const char **id, const char **name) {
  if (!(*id = authloop__jstr(d, user, "_id")))
    return AUTHLOOP_EPROTO;
  *name = authloop__jstring(d, authloop__jget(d, authloop__jget(d, user, "_source"), "name"));
  return 0;
}

/* ---- the table --------------------------------------------------------------------------- */

static void clear_login(kuzzle *k, int keep_expires_in) {
  authloop__secret_free(k->strategy);
  authloop__secret_free(k->credentials);
  authloop__secret_free(k->token);
  k->strategy = k->credentials = k->token = NULL;
  if (!keep_expires_in) {
    free(k->expires_in);
    k->expires_in = NULL;
  }
}

static void kuzzle_free(void *state) {
  kuzzle *k = state;
  if (!k)
    return;
  clear_login(k, 0);
  free(k->base);
  free(k->login_path);
  free(k->logout_path);
  free(k->refresh_path);
  free(k);
}

static char *path_or(const char *option, const char *fallback, int *failed) {
  char *p = strdup(option ? option : fallback);
  if (!p)
    *failed = 1;
  return p;
}

static int init(const authloop_client_options *o, const authloop__provider_env *env, void **state,
                const char *bases[AUTHLOOP__MAX_BASES]) {
  kuzzle *k;
  int failed = 0;
  (void)env;
  if (o->app_id || o->region || o->admin_url || o->device_id || o->client_id || o->client_secret ||
      o->scope || o->redirect_uri)
    return AUTHLOOP_ENOTSUP; /* CometChat's, Cognito's and OpenID Connect's options */
  if (o->userinfo < -1 || o->userinfo > 1)
    return AUTHLOOP_EINVAL;
  if (!o->base_url || !authloop__path_option_ok(o->login_path) ||
      !authloop__path_option_ok(o->logout_path) || !authloop__path_option_ok(o->refresh_path))
    return AUTHLOOP_EINVAL;
  if (!(k = calloc(1, sizeof(*k))))
    return AUTHLOOP_ENOMEM;
  k->base = path_or(o->base_url, "", &failed);
  k->login_path = path_or(o->login_path, "/_login", &failed);
  k->logout_path = path_or(o->logout_path, "/_logout", &failed);
  k->refresh_path = path_or(o->refresh_path, "/_refreshToken", &failed);
  k->fetch_user = o->userinfo >= 0;
  if (failed) {
    kuzzle_free(k);
    return AUTHLOOP_ENOMEM;
  }
  *state = k;
  bases[0] = k->base;
  return 0;
}

static int strategy_start(kuzzle *k, const authloop__credential *cred) {
  const char *s = cred->strategy, *e = cred->expires_in;
  authloop__jdoc check;
  int rc;
  if (!s || !*s || authloop__has_space(s) || !authloop__text_ok(s) || !cred->credentials_json ||
      (e && (!*e || strlen(e) > MAX_EXPIRES || !authloop__text_ok(e))))
    return AUTHLOOP_EINVAL;
  /* a JSON object; a key given twice is refused too (until 0.2 it was let
   * through): which value a server takes depends on its parser */
  rc = authloop__jdoc_parse(&check, cred->credentials_json, strlen(cred->credentials_json));
  if (rc == 0 && !authloop__jis(&check, 0, AUTHLOOP__J_OBJECT))
    rc = AUTHLOOP_EINVAL;
  authloop__jdoc_free(&check);
  if (rc)
    return rc == AUTHLOOP_ENOMEM ? rc : AUTHLOOP_EINVAL;
  clear_login(k, 0);
  if (!(k->strategy = strdup(s)) ||
      !(k->credentials = authloop__secret_dup(cred->credentials_json)) ||
      (e && !(k->expires_in = strdup(e)))) {
    clear_login(k, 0);
    return AUTHLOOP_ENOMEM;
  }
  return 0;
}

static int login_start(void *state, const authloop__credential *cred, int *step) {
  kuzzle *k = state;
  if (cred->kind == AUTHLOOP__CRED_TOKEN) { /* completing a two-step strategy */
    const char *t = cred->token;
    if (!t || !*t)
      return AUTHLOOP_EBLANKAUTHTOKEN;
    if (authloop__has_space(t))
      return AUTHLOOP_EAUTHTOKENSPACE;
    if (!authloop__text_ok(t))
      return AUTHLOOP_EINVAL;
    *step = STEP_TOKEN;
    return authloop__secret_set(&k->token, t);
  }
  *step = STEP_LOGIN;
  return strategy_start(k, cred);
}

/* What a login keeps for the session: the lifetime the user chose. */
static void login_end(void *state) { clear_login(state, 1); }

/* The SDK names the type of every request, bodiless ones too. */
static int typed(authloop__request *out) {
  return out->json || out->body ? 0
                                : authloop__request_header(out, "Content-Type", "application/json");
}

static int login_request(void *state, const authloop__view *v, int step, authloop__request *out) {
  kuzzle *k = state;
  int rc;
  out->base = k->base;
  if (step != STEP_LOGIN && (rc = typed(out)) != 0)
    return rc;
  switch (step) {
  case STEP_LOGIN: /* no Authorization header on a login */
    out->method = "POST";
    out->body = k->credentials;
    if ((rc = authloop__request_path(out, k->login_path, 0)) ||
        (rc = authloop__request_path(out, k->strategy, 1)))
      return rc;
    return k->expires_in ? authloop__request_query(out, "expiresIn", k->expires_in) : 0;
  case STEP_TOKEN: /* one request with the token: a single-use one is used once */
    out->method = "GET";
    out->flags = AUTHLOOP__WANT_DATE;
    out->bearer = k->token;
    return authloop__request_path(out, ME_PATH, 0);
  default: /* STEP_ME: getCurrentUser is the user object */
    out->method = "GET";
    out->bearer = v->access_token;
    return authloop__request_path(out, ME_PATH, 0);
  }
}

/* The lifetime of a token handed over by the application: its exp against
 * the server's clock (the Date of the answer), so that a wrong local clock
 * does not matter; a token without exp never expires. */
static int token_lifetime(const kuzzle *k, const authloop__view *v, const authloop__answer *a,
                          authloop__result *out) {
  long long exp_s, left_ms, now_ms = a->date_ms > 0 ? a->date_ms : v->now_wall_ms;
  int rc = authloop__jwt_expiry(k->token, &exp_s);
  if (rc == AUTHLOOP_ENOENT) {
    out->lifetime_s = AUTHLOOP__LIFETIME_NEVER;
    return 0;
  }
  if (rc != 0 || now_ms <= 0)
    return malformed(out, a->status, "token (not a JWT with an exp claim)");
  left_ms = exp_s * 1000 - now_ms; /* exp_s < 2^40 and now_ms > 0: no overflow */
  if (left_ms <= 0) {
    authloop__result_fail(out, AUTHLOOP_EREJECTED, a->status, "%s", "Token expired");
    out->server_code = strdup("security.token.expired");
    return out->error;
  }
  lifetime_from_ms(left_ms, &out->lifetime_s); /* left_ms > 0 */
  return 0;
}

/* A step of a multi-step strategy (authController.ts login, when the
 * strategy gives no user): the result is passport's response object,
 * {headers, statusCode}, and the HTTP status is its statusCode. */
static int passport_step(const authloop__jdoc *d, int result, long status) {
  long long code;
  return authloop__jint(d, authloop__jget(d, result, "statusCode"), &code) == 0 && code == status &&
         authloop__jis(d, authloop__jget(d, result, "headers"), AUTHLOOP__J_OBJECT);
}

/* Such a step: the login waits for the token (authloop_set_token()), with
 * the result as JSON text and, for a redirect (OAuth ...: 3xx with a
 * Location), where to send the user: an absolute https URL (http only when
 * the server itself is plain http); any other redirect is refused. */
static int await_step(const kuzzle *k, const authloop__answer *a, const authloop__jdoc *d,
                      int result, authloop__result *out) {
  if (a->status >= 300 && a->status <= 399) {
    const char *l = a->location;
    if (!l || !authloop__browser_url_ok(l, strncasecmp(k->base, "http://", 7) == 0))
      return authloop__result_fail(out, AUTHLOOP_EPROTO, a->status, "malformed response: %s",
                                   "a strategy's redirect without an http(s) Location");
    if (!(out->redirect_url = strdup(l)))
      return authloop__result_fail(out, AUTHLOOP_ENOMEM, a->status, NULL, NULL);
  }
  if (!(out->redirect_result = authloop__jcompact(d, result)))
    return authloop__result_fail(out, AUTHLOOP_ENOMEM, a->status, NULL, NULL);
  out->next = AUTHLOOP__NEXT_AWAIT;
  return 0;
}

/* Without getCurrentUser (option userinfo -1): the user is the login
 * answer's _id alone, {"_id": ...}, with no name. */
static int login_user(const authloop__jdoc *d, int result, authloop__result *out, long status) {
  const char *id = authloop__jstr(d, result, "_id");
  const char *pair[2];
  if (!id || !authloop__utf8_ok(id))
    return malformed(out, status, "\"_id\"");
  pair[0] = "_id";
  pair[1] = id;
  return authloop__result_user_text(out, authloop__jw_object(pair, 1), id, NULL);
}

static int login_answer(void *state, const authloop__view *v, int step, const authloop__answer *a,
                        authloop__result *out) {
  kuzzle *k = state;
  authloop__jdoc d;
  int result = -1;
  const char *id, *name;
  int rc;
  /* a strategy's redirect: an envelope whose result is passport's response */
  if (step == STEP_LOGIN && a->status >= 300 && a->status <= 399 &&
      authloop__answer_doc(a, out, &d) == 0 && !out->error &&
      authloop__jis(&d, authloop__jget(&d, 0, "error"), AUTHLOOP__J_NULL) &&
      passport_step(&d, result = authloop__jget(&d, 0, "result"), a->status)) {
    out->http_status = a->status;
    await_step(k, a, &d, result, out);
    authloop__jdoc_free(&d);
    return out->error;
  }
  if (step == STEP_LOGIN && a->status >= 300 && a->status <= 399)
    authloop__jdoc_free(&d);
  if (out->error)
    return out->error;
  rc = envelope(a, CALL_LOGIN, &d, &result, out);
  if (rc == 0 && step == STEP_LOGIN) {
    int jwt = authloop__jget(&d, result, "jwt");
    if ((jwt < 0 || authloop__jis(&d, jwt, AUTHLOOP__J_NULL)) &&
        passport_step(&d, result, a->status)) {
      await_step(k, a, &d, result,
                 out); /* a step without a redirect: the token comes another way */
    } else if ((rc = take_jwt(&d, result, out, a->status)) == 0) {
      if (k->fetch_user) {
        out->next = AUTHLOOP__NEXT_STEP;
        out->step = STEP_ME;
      } else {
        login_user(&d, result, out, a->status);
      }
    }
  } else if (rc == 0) {
    if (user_fields(&d, result, &id, &name) != 0)
      authloop__result_fail(out, AUTHLOOP_EPROTO, a->status, "malformed response: %s",
                            "getCurrentUser without an _id");
    else if (step != STEP_TOKEN || (token_lifetime(k, v, a, out) == 0 &&
                                    authloop__result_take(out, &out->access_token, k->token) == 0))
      authloop__result_user(out, &d, result, id, name);
  }
  authloop__jdoc_free(&d);
  return out->error;
}

static int authorize(void *state, const authloop__view *v, authloop__request *out) {
  (void)state;
  out->bearer = v->access_token;
  return typed(out);
}

static int logout_request(void *state, const authloop__view *v, int global,
                          authloop__request *out) {
  kuzzle *k = state;
  int rc;
  out->method = "POST";
  out->base = k->base;
  out->bearer = v->access_token;
  if ((rc = typed(out)) || (rc = authloop__request_path(out, k->logout_path, 0)))
    return rc;
  return global ? authloop__request_query(out, "global", "true") : 0;
}

static int logout_answer(void *state, const authloop__answer *a, authloop__result *out) {
  authloop__jdoc d;
  int result;
  (void)state;
  out->http_status = a->status;
  if (authloop__is_2xx(a->status))
    return 0; /* the envelope's status is the HTTP status: nothing more to read */
  envelope(a, CALL_OTHER, &d, &result, out);
  authloop__jdoc_free(&d);
  return out->error;
}

/* Keeps the lifetime the user chose at login. */
static int refresh_request(void *state, const authloop__view *v, authloop__request *out) {
  kuzzle *k = state;
  int rc;
  out->method = "POST";
  out->base = k->base;
  out->bearer = v->access_token;
  if ((rc = typed(out)) || (rc = authloop__request_path(out, k->refresh_path, 0)))
    return rc;
  return k->expires_in ? authloop__request_query(out, "expiresIn", k->expires_in) : 0;
}

static int refresh_answer(void *state, const authloop__view *v, const authloop__answer *a,
                          authloop__result *out) {
  authloop__jdoc d;
  int result;
  (void)state;
  (void)v;
  if (envelope(a, CALL_REFRESH, &d, &result, out) == 0)
    take_jwt(&d, result, out, a->status);
  authloop__jdoc_free(&d);
  return out->error;
}

const authloop__provider authloop__provider_kuzzle = {
    .name = "kuzzle",
    .accepts = AUTHLOOP__CRED_STRATEGY,
    .resumes = AUTHLOOP__CRED_TOKEN,
    .flags = AUTHLOOP__CAN_GLOBAL_LOGOUT,
    /* the jwt is {_id, iat, exp} with iat in whole seconds: refreshed in
     * the second it was issued, the same jwt comes back, and the server's
     * record of it as refreshed (1 s of grace, then gone) replaces the new
     * one (tokenRepository.ts refresh, persistForUser) */
    .refresh_floor_ms = 1000,
    .init = init,
    .free = kuzzle_free,
    .login_start = login_start,
    .login_request = login_request,
    .login_answer = login_answer,
    .login_end = login_end,
    .refresh_request = refresh_request,
    .refresh_answer = refresh_answer,
    .logout_request = logout_request,
    .logout_answer = logout_answer,
    .authorize = authorize,
    .session_gone = authloop__session_never_gone,
    .user_fields = user_fields,
};
