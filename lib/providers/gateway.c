/* SPDX-License-Identifier: MIT */
/* The gateway dialect (docs/protocol.md, section gateway): login with a
 * one-time authorization code, refresh with the refresh token, bearer logout,
 * errors as {"error": {"code": <number>, "name", "message"}}; and pre-auth,
 * the backend's half. */
#include "builtin.h"

#include "../jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h" /* last */

#define MAX_EXPIRES_IN (10LL * 366 * 24 * 3600)

typedef struct {
  char *base, *login_path, *logout_path, *refresh_path;
  char *code; /* during a login */
} gateway;

/* ---- answers (pure) ------------------------------------------------------------------ */

/* A non-2xx answer: the server's code and message when its body has them. */
int authloop__gateway_error(const authloop__answer *a, authloop__result *out) {
  authloop__jdoc d;
  int err, code, message, e = authloop__result_status(out, a->status);
  long long num;
  if (authloop__jdoc_parse(&d, a->body, a->len) == 0) {
    err = authloop__jget(&d, 0, "error");
    code = authloop__jget(&d, err, "code");
    message = authloop__jget(&d, err, "message");
    if (authloop__jint(&d, code, &num) == 0) {
      char text[32];
      snprintf(text, sizeof(text), "%lld", num);
      out->server_code = strdup(text);
    } else if (authloop__jstring(&d, code)) {
      out->server_code = strdup(authloop__jstring(&d, code));
    }
    if (authloop__jstr(&d, err, "message")) {
      free(out->message);
      out->message = strdup(authloop__jstring(&d, message));
    }
  }
  authloop__jdoc_free(&d);
  return e;
}

/* Seconds the access token lives: "expiresIn", or the JWT's exp - iat when
 * the server sent none. 0 when neither is usable. */
static long long lifetime(const authloop__jdoc *d, const char *access_token) {
  int v = authloop__jget(d, 0, "expiresIn");
  long long n, jwt;
  if (v >= 0)
    return authloop__jint(d, v, &n) == 0 && n > 0 && n <= MAX_EXPIRES_IN ? n : 0;
  return authloop__jwt_lifetime(access_token, &jwt) == 0 ? jwt : 0;
}

static int user_fields(const authloop__jdoc *d, int user, const char **id, const char **name) {
  int n = authloop__jget(d, user, "name");
  if (!(*id = authloop__jstr(d, user, "id")) ||
      (n >= 0 && !authloop__jis(d, n, AUTHLOOP__J_STRING) &&
       !authloop__jis(d, n, AUTHLOOP__J_NULL)))
    return AUTHLOOP_EPROTO;
  *name = authloop__jstring(d, n);
  return 0;
}

/* 0 when the body is a JSON object (d's root), else a failure. */
static int object_body(const authloop__answer *a, authloop__result *out, authloop__jdoc *d) {
  if (authloop__answer_doc(a, out, d) == 0 && authloop__jis(d, 0, AUTHLOOP__J_OBJECT))
    return 0;
  if (!out->error)
    authloop__result_fail(out, AUTHLOOP_EPROTO, a->status, "malformed response: %s",
                          "the body is not a JSON object");
  return out->error;
}

/* The tokens of a login or refresh answer; refresh_required: a login's. */
static int take_tokens(const authloop__jdoc *d, authloop__result *out, long status,
                       int refresh_required) {
  const char *access = authloop__jstr(d, 0, "accessToken");
  const char *id = authloop__jstr(d, 0, "idToken");
  const char *refresh = authloop__jstr(d, 0, "refreshToken");
  if (!access)
    return authloop__result_missing(out, status, "accessToken");
  if (!id)
    return authloop__result_missing(out, status, "idToken");
  if ((refresh_required || authloop__jget(d, 0, "refreshToken") >= 0) && !refresh)
    return authloop__result_missing(out, status, "refreshToken");
  if (!(out->lifetime_s = lifetime(d, access)))
    return authloop__result_missing(out, status, "expiresIn");
  if (authloop__result_take(out, &out->access_token, access) ||
      authloop__result_take(out, &out->id_token, id) ||
      authloop__result_take(out, &out->refresh_token, refresh))
    return out->error;
  return 0;
}

int authloop__gateway_login_answer(const authloop__answer *a, authloop__result *out) {
  const char *id, *name;
  authloop__jdoc d;
  int user;
  out->http_status = a->status;
  if (!authloop__is_2xx(a->status))
    return authloop__gateway_error(a, out);
  if (object_body(a, out, &d) == 0) {
    user = authloop__jget(&d, 0, "user");
    if (user_fields(&d, user, &id, &name) != 0)
      authloop__result_missing(out, a->status, "user");
    else if (take_tokens(&d, out, a->status, 1) == 0)
      authloop__result_user(out, &d, user, id, name);
  }
  authloop__jdoc_free(&d);
  return out->error;
}

/* A refresh answer: new access and id tokens and a lifetime; a new refresh
 * token when the gateway rotates them. 4009, 401 and 400 are final. */
int authloop__gateway_refresh_answer(const authloop__answer *a, authloop__result *out) {
  authloop__jdoc d;
  out->http_status = a->status;
  if (!authloop__is_2xx(a->status)) {
    authloop__gateway_error(a, out);
    /* refused for good only in the gateway's own words: a 401 page from a
     * proxy in front of it says nothing of the refresh token */
    if (out->server_code &&
        (a->status == 400 || a->status == 401 || strcmp(out->server_code, "4009") == 0))
      out->error = AUTHLOOP_EREVOKED;
    return out->error;
  }
  if (object_body(a, out, &d) == 0)
    take_tokens(&d, out, a->status, 0);
  authloop__jdoc_free(&d);
  return out->error;
}

/* ---- the table --------------------------------------------------------------------------- */

static void gateway_free(void *state) {
  gateway *g = state;
  if (!g)
    return;
  free(g->base);
  free(g->login_path);
  free(g->logout_path);
  free(g->refresh_path);
  authloop__secret_free(g->code);
  free(g);
}

static char *path_or(const char *option, const char *fallback, int *failed) {
  char *p = strdup(option ? option : fallback);
  if (!p)
    *failed = 1;
  return p;
}

static int init(const authloop_client_options *o, const authloop__provider_env *env, void **state,
                const char *bases[AUTHLOOP__MAX_BASES]) {
  gateway *g;
  int failed = 0;
  (void)env;
  if (o->app_id || o->region || o->admin_url || o->device_id || o->client_id || o->client_secret ||
      o->scope || o->redirect_uri || o->userinfo)
    return AUTHLOOP_ENOTSUP; /* CometChat's, Cognito's and OpenID Connect's options */
  if (!o->base_url || !authloop__path_option_ok(o->login_path) ||
      !authloop__path_option_ok(o->logout_path) || !authloop__path_option_ok(o->refresh_path))
    return AUTHLOOP_EINVAL;
  if (!(g = calloc(1, sizeof(*g))))
    return AUTHLOOP_ENOMEM;
  g->base = path_or(o->base_url, "", &failed);
  g->login_path = path_or(o->login_path, "/auth/login", &failed);
  g->logout_path = path_or(o->logout_path, "/auth/logout", &failed);
  g->refresh_path = path_or(o->refresh_path, "/auth/refresh", &failed);
  if (failed) {
    gateway_free(g);
    return AUTHLOOP_ENOMEM;
  }
  *state = g;
  bases[0] = g->base;
  return 0;
}

static int login_start(void *state, const authloop__credential *cred, int *step) {
  gateway *g = state;
  const char *code = cred->code;
  if (!code || !*code || authloop__has_space(code) || !authloop__text_ok(code))
    return AUTHLOOP_EINVAL;
  *step = 0;
  return authloop__secret_set(&g->code, code);
}

static void login_end(void *state) {
  gateway *g = state;
  authloop__secret_free(g->code);
  g->code = NULL;
}

static int post_json(gateway *g, const char *path, const char *key, const char *value,
                     authloop__request *out) {
  const char *pair[2];
  int rc;
  pair[0] = key;
  pair[1] = value;
  out->method = "POST";
  out->base = g->base;
  if ((rc = authloop__request_json_object(out, pair, 1)) != 0)
    return rc;
  return authloop__request_path(out, path, 0);
}

static int login_request(void *state, const authloop__view *v, int step, authloop__request *out) {
  gateway *g = state;
  (void)v;
  (void)step;
  return post_json(g, g->login_path, "authorizationCode", g->code, out);
}

static int login_answer(void *state, const authloop__view *v, int step, const authloop__answer *a,
                        authloop__result *out) {
  (void)state;
  (void)v;
  (void)step;
  return authloop__gateway_login_answer(a, out);
}

static int refresh_request(void *state, const authloop__view *v, authloop__request *out) {
  gateway *g = state;
  if (!v->refresh_token)
    return AUTHLOOP_EREVOKED; /* nothing to refresh with */
  return post_json(g, g->refresh_path, "refreshToken", v->refresh_token, out);
}

static int refresh_answer(void *state, const authloop__view *v, const authloop__answer *a,
                          authloop__result *out) {
  (void)state;
  (void)v;
  return authloop__gateway_refresh_answer(a, out);
}

static int logout_request(void *state, const authloop__view *v, int global,
                          authloop__request *out) {
  gateway *g = state;
  (void)global; /* refused by the engine: no AUTHLOOP__CAN_GLOBAL_LOGOUT */
  out->method = "POST";
  out->base = g->base;
  out->bearer = v->access_token;
  return authloop__request_path(out, g->logout_path, 0);
}

static int logout_answer(void *state, const authloop__answer *a, authloop__result *out) {
  (void)state;
  out->http_status = a->status;
  return authloop__is_2xx(a->status) ? 0 : authloop__gateway_error(a, out);
}

static int preauth_request(const authloop_preauth_options *o, const char *bearer,
                           authloop__request *out) {
  const char *pair[2];
  int rc;
  out->method = "POST";
  out->base = o->gateway_url;
  out->bearer = bearer;
  pair[0] = "userId";
  pair[1] = o->user_id;
  if ((rc = authloop__request_json_object(out, pair, 1)) != 0)
    return rc;
  return authloop__request_path(out, o->path ? o->path : "/auth/pre-auth", 0);
}

static int preauth_answer(const authloop__answer *a, authloop__result *out) {
  authloop__jdoc d;
  const char *code;
  out->http_status = a->status;
  if (!authloop__is_2xx(a->status))
    return authloop__gateway_error(a, out);
  if (object_body(a, out, &d) == 0) {
    code = authloop__jstr(&d, 0, "authorizationCode");
    if (!code || authloop__has_space(code))
      authloop__result_missing(out, a->status, "authorizationCode");
    else
      authloop__result_take(out, &out->access_token, code);
  }
  authloop__jdoc_free(&d);
  return out->error;
}

const authloop__provider authloop__provider_gateway = {
    .name = "gateway",
    .accepts = AUTHLOOP__CRED_CODE,
    .init = init,
    .free = gateway_free,
    .login_start = login_start,
    .login_request = login_request,
    .login_answer = login_answer,
    .login_end = login_end,
    .refresh_request = refresh_request,
    .refresh_answer = refresh_answer,
    .logout_request = logout_request,
    .logout_answer = logout_answer,
    .authorize = authloop__authorize_bearer,
    .session_gone = authloop__session_never_gone,
    .user_fields = user_fields,
    .preauth_request = preauth_request,
    .preauth_answer = preauth_answer,
};
