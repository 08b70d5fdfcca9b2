/* SPDX-License-Identifier: MIT */
/* The Amazon Cognito dialect (docs/protocol.md, section cognito): the Cognito
 * Identity Provider JSON API, every call a POST to the endpoint's "/" with
 * X-Amz-Target: AWSCognitoIdentityProviderService.<Op> and a body of type
 * application/x-amz-json-1.1. Login with InitiateAuth USER_PASSWORD_AUTH
 * (authloop_login_password) or REFRESH_TOKEN_AUTH with a refresh token the
 * application holds (authloop_login_code: what a Naluri-style authorization
 * code is); refresh with REFRESH_TOKEN_AUTH (no new refresh token comes
 * back: the old one stays); logout with RevokeToken, or GlobalSignOut for
 * the global variant. Errors are {"__type": ..., "message": ...}. */
#include "builtin.h"

#include "../jwt.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h" /* last */

#define MAX_EXPIRES_IN  (10LL * 366 * 24 * 3600)
#define MAX_CLIENT_ID   128 /* Cognito's own limit on an app client id */
#define MAX_SECRET      256
#define MAX_REGION      32
#define TARGET_PREFIX   "AWSCognitoIdentityProviderService."
#define AMZ_JSON        "application/x-amz-json-1.1"
#define REGION_ENDPOINT "https://cognito-idp.%s.amazonaws.com"

typedef struct {
  char *base, *client_id, *client_secret;
  /* during a login: a password login's pair, or the refresh token */
  char *username, *password, *code;
  char target[64]; /* the X-Amz-Target of the request being built */
} cognito;

/* ---- answers (pure) ------------------------------------------------------------------ */

/* The exception's name as the AWS SDKs read __type: what follows the last
 * '#' (a namespace may precede it) and precedes a ':' (a URL may follow). */
static size_t exception_name(const char *type, const char **name) {
  const char *hash = strrchr(type, '#'), *colon;
  *name = hash ? hash + 1 : type;
  colon = strchr(*name, ':');
  return colon ? (size_t)(colon - *name) : strlen(*name);
}

static int is_exception(const authloop__result *r, const char *name) {
  return r->server_code && strcmp(r->server_code, name) == 0;
}

/* A non-2xx answer, or a 2xx one in the error shape. kind: what was asked
 * (a password login reads refusals as wrong credentials). */
enum { CALL_PASSWORD, CALL_CODE, CALL_REFRESH, CALL_LOGOUT };

int authloop__cognito_error(const authloop__answer *a, int kind, authloop__result *out) {
  authloop__jdoc d;
  const char *type, *message, *name;
  size_t len;
  authloop__result_status(out, a->status);
  if (authloop__jdoc_parse(&d, a->body, a->len) == 0) {
    if ((type = authloop__jstr(&d, 0, "__type")) && authloop__text_ok(type) &&
        (len = exception_name(type, &name)) > 0 && len < 128 &&
        (out->server_code = malloc(len + 1))) {
      memcpy(out->server_code, name, len);
      out->server_code[len] = '\0';
    }
    /* "message", or "Message" as some of the service's answers spell it */
    if (((message = authloop__jstr(&d, 0, "message")) ||
         (message = authloop__jstr(&d, 0, "Message"))) &&
        authloop__text_ok(message)) { /* no control byte reaches a log line */
      free(out->message);
      out->message = strdup(message);
    }
  }
  authloop__jdoc_free(&d);
  if (is_exception(out, "TooManyRequestsException") ||
      is_exception(out, "LimitExceededException") || is_exception(out, "InternalErrorException"))
    out->error = AUTHLOOP_EUNAVAILABLE; /* sent as 400s, but they pass */
  else if (out->error == AUTHLOOP_EUNAVAILABLE)
    ;
  else if (kind == CALL_PASSWORD && (is_exception(out, "NotAuthorizedException") ||
                                     is_exception(out, "UserNotFoundException") ||
                                     is_exception(out, "InvalidPasswordException")))
    out->error = AUTHLOOP_ECREDENTIALS;
  else if (kind == CALL_REFRESH && is_exception(out, "NotAuthorizedException"))
    out->error = AUTHLOOP_EREVOKED; /* the refresh token is revoked or expired: final */
  return out->error;
}

/* The user is the id token's claims: id "sub", name "cognito:username". */
static int user_fields(const authloop__jdoc *d, int user, const char **id, const char **name) {
  int n = authloop__jget(d, user, "cognito:username");
  if (!authloop__jis(d, user, AUTHLOOP__J_OBJECT) || !(*id = authloop__jstr(d, user, "sub")) ||
      !**id || !authloop__text_ok(*id) || (n >= 0 && !authloop__jis(d, n, AUTHLOOP__J_STRING)))
    return AUTHLOOP_EPROTO;
  *name = authloop__jstring(d, n);
  return 0;
}

/* The user from the id token's claims (unverified: the token came straight
 * from the service over TLS, OpenID Connect Core 3.1.3.7 point 6). */
static int take_user(authloop__result *out, const char *id_token, long status) {
  char *claims = NULL;
  const char *id, *name;
  authloop__jdoc d;
  int rc = authloop__jwt_claims_text(id_token, &claims);
  if (rc == AUTHLOOP_ENOMEM)
    return authloop__result_fail(out, rc, status, NULL, NULL);
  if (rc != 0)
    return authloop__result_missing(out, status, "IdToken");
  if (authloop__jdoc_parse(&d, claims, strlen(claims)) != 0 ||
      user_fields(&d, 0, &id, &name) != 0) {
    authloop__jdoc_free(&d);
    authloop__secret_free(claims);
    return authloop__result_missing(out, status, "IdToken");
  }
  rc = authloop__result_user_text(out, claims, id, name);
  authloop__jdoc_free(&d);
  return rc;
}

/* An InitiateAuth answer: AuthenticationResult's tokens, or a challenge
 * authloop does not answer (NEW_PASSWORD_REQUIRED, MFA ...): ENOTSUP with the
 * challenge's name as the server's code. login: a login's (a refresh token
 * and the user required), else a refresh's (a refresh token never comes). */
int authloop__cognito_auth_answer(const authloop__answer *a, int kind, authloop__result *out) {
  const char *access, *id, *refresh, *challenge;
  authloop__jdoc d;
  int result, ttl, rt;
  long long n;
  out->http_status = a->status;
  if (!authloop__is_2xx(a->status))
    return authloop__cognito_error(a, kind, out);
  if (authloop__answer_doc(a, out, &d) != 0 || !authloop__jis(&d, 0, AUTHLOOP__J_OBJECT)) {
    if (!out->error)
      authloop__result_fail(out, AUTHLOOP_EPROTO, a->status, "malformed response: %s",
                            "the body is not a JSON object");
    goto done;
  }
  result = authloop__jget(&d, 0, "AuthenticationResult");
  if (result < 0 && (challenge = authloop__jstr(&d, 0, "ChallengeName")) != NULL &&
      authloop__text_ok(challenge) && strlen(challenge) < 128) {
    /* on a refresh too: what it asks for needs the user, so the token is
     * kept, unrefreshed, until it runs out (real Cognito sends none to
     * REFRESH_TOKEN_AUTH) */
    authloop__result_fail(out, AUTHLOOP_ENOTSUP, a->status,
                          "the server asks for the challenge %s, which authloop does not answer",
                          challenge);
    if (!(out->server_code = strdup(challenge)))
      authloop__result_fail(out, AUTHLOOP_ENOMEM, a->status, NULL, NULL);
    goto done;
  }
  access = authloop__jstr(&d, result, "AccessToken");
  id = authloop__jstr(&d, result, "IdToken");
  refresh = authloop__jstr(&d, result, "RefreshToken");
  ttl = authloop__jget(&d, result, "ExpiresIn");
  if (!authloop__jis(&d, result, AUTHLOOP__J_OBJECT) || !access) {
    authloop__result_missing(out, a->status, "AccessToken");
    goto done;
  }
  if (!id) {
    authloop__result_missing(out, a->status, "IdToken");
    goto done;
  }
  /* a password login's answer must carry one; REFRESH_TOKEN_AUTH's carries
   * none (or null), unless the pool rotates them */
  rt = authloop__jget(&d, result, "RefreshToken");
  if (kind == CALL_PASSWORD ? !refresh
                            : rt >= 0 && !refresh && !authloop__jis(&d, rt, AUTHLOOP__J_NULL)) {
    authloop__result_missing(out, a->status, "RefreshToken");
    goto done;
  }
  /* ExpiresIn, else the access token's own exp - iat */
  if (ttl >= 0 && !authloop__jis(&d, ttl, AUTHLOOP__J_NULL))
    out->lifetime_s = authloop__jint(&d, ttl, &n) == 0 && n > 0 && n <= MAX_EXPIRES_IN ? n : 0;
  else if (authloop__jwt_lifetime(access, &n) == 0)
    out->lifetime_s = n;
  if (!out->lifetime_s) {
    authloop__result_missing(out, a->status, "ExpiresIn");
    goto done;
  }
  /* the user first: a refused answer keeps no token */
  if (take_user(out, id, a->status) == 0 && /* a refresh's claims may be newer */
      authloop__result_take(out, &out->access_token, access) == 0 &&
      authloop__result_take(out, &out->id_token, id) == 0)
    authloop__result_take(out, &out->refresh_token, refresh);
done:
  authloop__jdoc_free(&d);
  return out->error;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* SECRET_HASH: Base64(HMAC-SHA256(client secret, user name + client id)). */
static char *secret_hash(const cognito *g, const char *username) {
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  size_t ul = strlen(username), cl = strlen(g->client_id), olen = 0;
  unsigned char mac[32], *msg;
  char *out = NULL;
  if (!(msg = malloc(ul + cl + 1)))
    return NULL;
  memcpy(msg, username, ul);
  memcpy(msg + ul, g->client_id, cl);
  if (md &&
      mbedtls_md_hmac(md, (const unsigned char *)g->client_secret, strlen(g->client_secret), msg,
                      ul + cl, mac) == 0 &&
      (out = malloc(45)) &&
      mbedtls_base64_encode((unsigned char *)out, 45, &olen, mac, sizeof(mac)) != 0) {
    free(out);
    out = NULL;
  }
  mbedtls_platform_zeroize(mac, sizeof(mac));
  authloop__wipe_free(msg, ul + cl + 1);
  return out;
}

/* One call: POST / with the operation's target and body (taken). */
static int call(cognito *g, const char *op, authloop__jw *w, authloop__request *out) {
  int rc;
  if (w->failed) {
    if (w->data)
      authloop__wipe_free(w->data, w->cap);
    return AUTHLOOP_ENOMEM;
  }
  snprintf(g->target, sizeof(g->target), "%s%s", TARGET_PREFIX, op);
  out->method = "POST";
  out->base = g->base;
  out->json = w->data;
  if ((rc = authloop__request_header(out, "X-Amz-Target", g->target)) != 0 ||
      (rc = authloop__request_header(out, "Content-Type", AMZ_JSON)) != 0)
    return rc;
  return authloop__request_path(out, "/", 0);
}

static void member(authloop__jw *w, const char *key, const char *value, int first) {
  if (!first)
    authloop__jw_raw(w, ",", 1);
  authloop__jw_string(w, key, strlen(key));
  authloop__jw_raw(w, ":", 1);
  authloop__jw_string(w, value, strlen(value));
}

/* InitiateAuth with one flow: PASSWORD (username, password) or a refresh
 * token; the SECRET_HASH is made with `username` when the client has a
 * secret. */
static int initiate_auth(cognito *g, const char *flow, const char *username, const char *password,
                         const char *refresh, authloop__request *out) {
  authloop__jw w = {NULL, 0, 0, 0};
  char *hash = NULL;
  if (g->client_secret && !(username && (hash = secret_hash(g, username))))
    return username ? AUTHLOOP_ENOMEM : AUTHLOOP_ENOTSUP;
  authloop__jw_raw(&w, "{", 1);
  member(&w, "AuthFlow", flow, 1);
  member(&w, "ClientId", g->client_id, 0);
  authloop__jw_raw(&w, ",\"AuthParameters\":{", 19);
  if (refresh) {
    member(&w, "REFRESH_TOKEN", refresh, 1);
  } else {
    member(&w, "USERNAME", username, 1);
    member(&w, "PASSWORD", password, 0);
  }
  if (hash)
    member(&w, "SECRET_HASH", hash, 0);
  authloop__jw_raw(&w, "}}", 2);
  authloop__secret_free(hash);
  return call(g, "InitiateAuth", &w, out);
}

/* ---- the table --------------------------------------------------------------------------- */

static void cognito_free(void *state) {
  cognito *g = state;
  if (!g)
    return;
  free(g->base);
  free(g->client_id);
  authloop__secret_free(g->client_secret);
  authloop__secret_free(g->username);
  authloop__secret_free(g->password);
  authloop__secret_free(g->code);
  free(g);
}

static int region_ok(const char *r) {
  size_t n = strlen(r), i;
  if (n == 0 || n > MAX_REGION)
    return 0;
  for (i = 0; i < n; i++)
    if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
      return 0;
  return 1;
}

/* An app client id as Cognito makes them: [\w+]+, at most 128. */
static int client_id_ok(const char *s) {
  size_t n = strlen(s), i;
  if (n == 0 || n > MAX_CLIENT_ID)
    return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '+'))
      return 0;
  return 1;
}

static int init(const authloop_client_options *o, const authloop__provider_env *env, void **state,
                const char *bases[AUTHLOOP__MAX_BASES]) {
  cognito *g;
  char endpoint[sizeof(REGION_ENDPOINT) + MAX_REGION];
  (void)env;
  if (o->app_id || o->admin_url || o->device_id || o->login_path || o->logout_path ||
      o->refresh_path || o->scope || o->redirect_uri || o->userinfo)
    return AUTHLOOP_ENOTSUP; /* other dialects' options */
  if (!o->client_id || !client_id_ok(o->client_id) || (!o->base_url == !o->region) ||
      (o->region && !region_ok(o->region)) ||
      (o->client_secret && (!*o->client_secret || strlen(o->client_secret) > MAX_SECRET ||
                            !authloop__text_ok(o->client_secret))))
    return AUTHLOOP_EINVAL;
  if (!(g = calloc(1, sizeof(*g))))
    return AUTHLOOP_ENOMEM;
  if (o->region)
    snprintf(endpoint, sizeof(endpoint), REGION_ENDPOINT, o->region);
  if (!(g->base = strdup(o->base_url ? o->base_url : endpoint)) ||
      !(g->client_id = strdup(o->client_id)) ||
      (o->client_secret && !(g->client_secret = authloop__secret_dup(o->client_secret)))) {
    cognito_free(g);
    return AUTHLOOP_ENOMEM;
  }
  *state = g;
  bases[0] = g->base;
  return 0;
}

static void login_end(void *state) {
  cognito *g = state;
  authloop__secret_free(g->username);
  authloop__secret_free(g->password);
  authloop__secret_free(g->code);
  g->username = g->password = g->code = NULL;
}

static int login_start(void *state, const authloop__credential *cred, int *step) {
  cognito *g = state;
  int rc;
  *step = 0;
  if (cred->kind == AUTHLOOP__CRED_CODE) {
    if (!cred->code || !*cred->code || authloop__has_space(cred->code) ||
        !authloop__text_ok(cred->code))
      return AUTHLOOP_EINVAL;
    /* with a secret, the SECRET_HASH needs the user's name, which an opaque
     * refresh token does not tell */
    if (g->client_secret)
      return AUTHLOOP_ENOTSUP;
    return authloop__secret_set(&g->code, cred->code);
  }
  if (!cred->username || !*cred->username || !authloop__text_ok(cred->username) ||
      !cred->password || !*cred->password || !authloop__utf8_ok(cred->password))
    return AUTHLOOP_EINVAL;
  if ((rc = authloop__secret_set(&g->username, cred->username)) != 0 ||
      (rc = authloop__secret_set(&g->password, cred->password)) != 0)
    login_end(g);
  return rc;
}

static int login_request(void *state, const authloop__view *v, int step, authloop__request *out) {
  cognito *g = state;
  (void)v;
  (void)step;
  if (g->code)
    return initiate_auth(g, "REFRESH_TOKEN_AUTH", NULL, NULL, g->code, out);
  return initiate_auth(g, "USER_PASSWORD_AUTH", g->username, g->password, NULL, out);
}

static int login_answer(void *state, const authloop__view *v, int step, const authloop__answer *a,
                        authloop__result *out) {
  cognito *g = state;
  (void)v;
  (void)step;
  if (authloop__cognito_auth_answer(a, g->code ? CALL_CODE : CALL_PASSWORD, out) == 0 && g->code &&
      !out->refresh_token)
    /* REFRESH_TOKEN_AUTH sends no refresh token: the code is the one */
    authloop__result_take(out, &out->refresh_token, g->code);
  return out->error;
}

/* The user's name for a SECRET_HASH: the id token's cognito:username. 0;
 * AUTHLOOP_EREVOKED when the session has none (it cannot sign a refresh);
 * AUTHLOOP_ENOMEM (transient: the session stays). */
static int user_name(const authloop__view *v, char **name) {
  authloop__jdoc d = {0};
  const char *n;
  int rc =
      v->user_json ? authloop__jdoc_parse(&d, v->user_json, strlen(v->user_json)) : AUTHLOOP_EPROTO;
  *name = NULL;
  if (rc == 0 && (n = authloop__jstr(&d, 0, "cognito:username")))
    rc = (*name = authloop__secret_dup(n)) ? 0 : AUTHLOOP_ENOMEM;
  else if (rc != AUTHLOOP_ENOMEM)
    rc = AUTHLOOP_EREVOKED;
  authloop__jdoc_free(&d);
  return rc;
}

static int refresh_request(void *state, const authloop__view *v, authloop__request *out) {
  cognito *g = state;
  char *name = NULL;
  int rc;
  if (!v->refresh_token)
    return AUTHLOOP_EREVOKED; /* nothing to refresh with */
  if (g->client_secret && (rc = user_name(v, &name)) != 0)
    return rc;
  rc = initiate_auth(g, "REFRESH_TOKEN_AUTH", name, NULL, v->refresh_token, out);
  authloop__secret_free(name);
  return rc;
}

static int refresh_answer(void *state, const authloop__view *v, const authloop__answer *a,
                          authloop__result *out) {
  (void)state;
  (void)v;
  return authloop__cognito_auth_answer(a, CALL_REFRESH, out);
}

/* RevokeToken with the refresh token (which also ends the access tokens it
 * made), or GlobalSignOut with the access token: every session of the user. */
static int logout_request(void *state, const authloop__view *v, int global,
                          authloop__request *out) {
  cognito *g = state;
  authloop__jw w = {NULL, 0, 0, 0};
  authloop__jw_raw(&w, "{", 1);
  if (global || !v->refresh_token) {
    member(&w, "AccessToken", v->access_token, 1);
    authloop__jw_raw(&w, "}", 1);
    return call(g, "GlobalSignOut", &w, out);
  }
  member(&w, "Token", v->refresh_token, 1);
  member(&w, "ClientId", g->client_id, 0);
  if (g->client_secret)
    member(&w, "ClientSecret", g->client_secret, 0);
  authloop__jw_raw(&w, "}", 1);
  return call(g, "RevokeToken", &w, out);
}

static int logout_answer(void *state, const authloop__answer *a, authloop__result *out) {
  (void)state;
  out->http_status = a->status;
  return authloop__is_2xx(a->status) ? 0 : authloop__cognito_error(a, CALL_LOGOUT, out);
}

/* The Cognito API takes its access token in the body, not in a header, and
 * only as application/x-amz-json-1.1: authloop_request() has nothing to send
 * there. Applications send authloop_access_token() to their own APIs. */
static int authorize(void *state, const authloop__view *v, authloop__request *out) {
  (void)state;
  (void)v;
  (void)out;
  return AUTHLOOP_ENOTSUP;
}

const authloop__provider authloop__provider_cognito = {
    .name = "cognito",
    .accepts = AUTHLOOP__CRED_PASSWORD | AUTHLOOP__CRED_CODE,
    .flags = AUTHLOOP__CAN_GLOBAL_LOGOUT,
    .init = init,
    .free = cognito_free,
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
