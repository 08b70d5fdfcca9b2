/* The Kuzzle v2 dialect (docs/protocol.md, section kuzzle): strategy login
 * with expiresIn, two-step strategies completed by a token (checkToken), the
 * user from getCurrentUser, refresh with /_refreshToken, logout (optionally
 * global). Every answer is Kuzzle's envelope
 * {"requestId", "status", "error", "controller", "action", "result", ...}. */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP_LOGIN    0
#define STEP_ME       1
#define STEP_CHECK    AUTHLOOP__KUZZLE_CHECK_STEP
#define STEP_CHECK_ME (AUTHLOOP__KUZZLE_CHECK_STEP + 1)

/* {base}{path}[?name[=value]], the value URL-encoded. */
static char *url_with(const authloop_client *c, const char *path, const char *name,
                      const char *value) {
  char *escaped = value ? curl_easy_escape(NULL, value, 0) : NULL, *out;
  size_t n = strlen(c->base_url) + strlen(path) + (name ? strlen(name) + 2 : 0) +
             (escaped ? strlen(escaped) + 1 : 0) + 1;
  if ((value && !escaped) || !(out = malloc(n))) {
    curl_free(escaped);
    return NULL;
  }
  snprintf(out, n, "%s%s%s%s%s%s", c->base_url, path, name ? "?" : "", name ? name : "",
           escaped ? "=" : "", escaped ? escaped : "");
  curl_free(escaped);
  return out;
}

static int request(authloop_client *c, const char *method, const char *path, const char *qname,
                   const char *qvalue, const char *bearer, authloop__req **out) {
  char *url = url_with(c, path, qname, qvalue);
  int rc;
  if (!url)
    return AUTHLOOP_ENOMEM;
  rc = authloop__req_new(c->ctx, method, url, out);
  free(url);
  if (rc == 0 && bearer && (rc = authloop__req_set_bearer(*out, bearer)) != 0)
    authloop__req_free(*out);
  return rc;
}

/* ---- the envelope ------------------------------------------------------------------ */

typedef enum { CTX_LOGIN, CTX_REFRESH, CTX_OTHER } call_kind;

static int map_error(const char *id, long status, call_kind kind) {
  if (id && (strcmp(id, "plugin.strategy.missing_user") == 0 ||
             strcmp(id, "security.credentials.invalid") == 0))
    return AUTHLOOP_ECREDENTIALS;
  if (id && strcmp(id, "security.credentials.unknown_strategy") == 0)
    return AUTHLOOP_ESTRATEGY;
  if (id && kind != CTX_OTHER &&
      (strcmp(id, "api.assert.invalid_argument") == 0 ||
       strcmp(id, "security.token.ttl_exceeded") == 0))
    return AUTHLOOP_EEXPIRESIN;
  /* both: the official SDK only knows "invalid" and misses "expired" */
  if (kind == CTX_REFRESH && (status == 401 || (id && (strcmp(id, "security.token.invalid") == 0 ||
                                                       strcmp(id, "security.token.expired") == 0))))
    return AUTHLOOP_EREVOKED;
  return status >= 500 || status == 429 ? AUTHLOOP_EUNAVAILABLE : AUTHLOOP_EREJECTED;
}

/* 0 and the envelope's result (a borrowed reference into *root), or a failure. */
static int envelope(const authloop__req *req, call_kind kind, json_t **root, json_t **result,
                    authloop__failure *f) {
  json_t *err, *id, *msg;
  long status = req->http_status;
  memset(f, 0, sizeof(*f));
  *root =
      json_loadb(req->resp.data ? req->resp.data : "", req->resp.len, JSON_REJECT_DUPLICATES, NULL);
  err = json_object_get(*root, "error");
  if (json_is_object(err)) {
    id = json_object_get(err, "id");
    msg = json_object_get(err, "message");
    f->error = map_error(json_string_value(id), status, kind);
    f->http_status = status;
    if (json_is_string(id))
      f->server_code = strdup(json_string_value(id));
    if (json_is_string(msg))
      f->message = strdup(json_string_value(msg));
    return f->error;
  }
  if (status < 200 || status > 299) {
    char msg_buf[96];
    f->error = map_error(NULL, status, kind);
    snprintf(msg_buf, sizeof(msg_buf), "%s (HTTP %ld)", authloop_strerror(f->error), status);
    return authloop__fail(f, f->error, status, "%s", msg_buf);
  }
  if (!json_is_object(*root) || !(*result = json_object_get(*root, "result")))
    return authloop__fail(f, AUTHLOOP_EPROTO, status, "malformed response: %s",
                          "not a Kuzzle envelope with a result");
  return 0;
}

/* ttl (ms) -> seconds; -1: never expires. */
static int lifetime_from_ttl(json_t *result, long *out) {
  json_t *ttl = json_object_get(result, "ttl");
  json_int_t v;
  if (!json_is_integer(ttl))
    return -1;
  v = json_integer_value(ttl);
  if (v == -1) {
    *out = AUTHLOOP__NO_EXPIRY;
    return 0;
  }
  if (v <= 0 || v > 10LL * 366 * 24 * 3600 * 1000)
    return -1;
  *out = v < 1000 ? 1 : (long)(v / 1000);
  return 0;
}

/* An absolute expiresAt (ms since the epoch) measured against the server's
 * own clock (its Date header), so that a wrong local clock does not matter. */
static int lifetime_from_expires_at(const authloop__req *req, json_t *result, long *out) {
  json_t *at = json_object_get(result, "expiresAt");
  time_t server = req->server_date[0] ? curl_getdate(req->server_date, NULL) : 0;
  long long now_ms = server > 0 ? (long long)server * 1000 : (long long)authloop__wall_ms();
  json_int_t v;
  if (!json_is_integer(at))
    return -1;
  v = json_integer_value(at);
  if (v == -1) {
    *out = AUTHLOOP__NO_EXPIRY;
    return 0;
  }
  if (v <= now_ms)
    return -1;
  *out = (long)((v - now_ms) / 1000);
  if (*out < 1)
    *out = 1;
  return 0;
}

static int take_jwt(json_t *result, authloop__session *s, authloop__failure *f, long status) {
  json_t *jwt = json_object_get(result, "jwt");
  if (!json_is_string(jwt) || json_string_length(jwt) == 0 ||
      authloop__has_space(json_string_value(jwt)))
    return authloop__fail(f, AUTHLOOP_EPROTO, status, "malformed response: missing or mistyped %s",
                          "\"jwt\"");
  if (lifetime_from_ttl(result, &s->expires_in) != 0)
    return authloop__fail(f, AUTHLOOP_EPROTO, status, "malformed response: missing or mistyped %s",
                          "\"ttl\"");
  authloop__secret_free(s->access_token);
  if (!(s->access_token = authloop__secret_dup(json_string_value(jwt))))
    return authloop__fail(f, AUTHLOOP_ENOMEM, status, NULL, NULL);
  return 0;
}

/* ---- the provider table ------------------------------------------------------------- */

static int make_user(json_t *obj, authloop_user **out) {
  json_t *id = json_object_get(obj, "_id");
  json_t *name = json_object_get(json_object_get(obj, "_source"), "name");
  if (!json_is_object(obj) || !json_is_string(id) || json_string_length(id) == 0) {
    json_decref(obj);
    return AUTHLOOP_EPROTO;
  }
  return authloop__user_new(obj, json_string_value(id), json_string_value(name), out);
}

static int login_request(authloop_client *c, int step, authloop__req **out) {
  char path[160];
  int rc;
  switch (step) {
  case STEP_LOGIN:
    if (strlen(c->login.strategy) > 100)
      return AUTHLOOP_EINVAL;
    snprintf(path, sizeof(path), "/_login/%s", c->login.strategy);
    /* no Authorization header on a login */
    rc = request(c, "POST", path, c->login.expires_in ? "expiresIn" : NULL, c->login.expires_in,
                 NULL, out);
    if (rc == 0 && (rc = authloop__req_set_body(*out, c->login.credentials)) != 0)
      authloop__req_free(*out);
    return rc;
  case STEP_CHECK: {
    json_t *body = json_pack("{s:s}", "token", c->login.token);
    char *url = url_with(c, "/_checkToken", NULL, NULL);
    rc = body && url ? authloop__req_json(c->ctx, "POST", url, body, out) : AUTHLOOP_ENOMEM;
    authloop__json_wipe_decref(body);
    free(url);
    return rc;
  }
  default: /* STEP_ME, STEP_CHECK_ME: getCurrentUser is the user object */
    return request(c, "GET", "/_me", NULL, NULL, c->pending.access_token, out);
  }
}

static int login_response(authloop_client *c, int step, const authloop__req *req,
                          authloop__session *s, authloop__failure *f) {
  json_t *root = NULL, *result = NULL;
  int rc = envelope(req, CTX_LOGIN, &root, &result, f);
  if (rc == 0 && step == STEP_LOGIN) {
    json_t *jwt = json_object_get(result, "jwt");
    if (!jwt || json_is_null(jwt))
      rc = AUTHLOOP__AWAIT; /* a two-step strategy: the token comes another way */
    else if ((rc = take_jwt(result, s, f, req->http_status)) == 0)
      rc = AUTHLOOP__MORE;
  } else if (rc == 0 && step == STEP_CHECK) {
    json_t *valid = json_object_get(result, "valid");
    if (!json_is_true(valid)) {
      json_t *state = json_object_get(result, "state");
      const char *why = json_string_value(state);
      rc = authloop__fail(f, AUTHLOOP_EREJECTED, req->http_status, "%s",
                          why ? why : "Invalid token.");
      f->server_code = strdup(why && strstr(why, "xpired") ? "security.token.expired"
                                                           : "security.token.invalid");
    } else if (lifetime_from_expires_at(req, result, &s->expires_in) != 0 &&
               authloop__jwt_lifetime(c->login.token, &s->expires_in) != 0) {
      rc = authloop__fail(f, AUTHLOOP_EPROTO, req->http_status,
                          "malformed response: missing or mistyped %s", "\"expiresAt\"");
    } else if (!(s->access_token = authloop__secret_dup(c->login.token))) {
      rc = AUTHLOOP_ENOMEM;
    } else {
      rc = AUTHLOOP__MORE;
    }
  } else if (rc == 0) {
    rc = make_user(json_incref(result), &s->user);
    if (rc)
      authloop__fail(f, rc, req->http_status, "malformed response: %s",
                     "getCurrentUser without an _id");
  }
  authloop__json_wipe_decref(root);
  return rc;
}

static int authorize(authloop_client *c, authloop__req *req) {
  return authloop__req_set_bearer(req, c->session.access_token);
}

static int logout_request(authloop_client *c, int global, authloop__req **out) {
  return request(c, "POST", "/_logout", global ? "global=true" : NULL, NULL,
                 c->session.access_token, out);
}

static int logout_response(authloop_client *c, const authloop__req *req, authloop__failure *f) {
  json_t *root = NULL, *result = NULL;
  int rc;
  (void)c;
  memset(f, 0, sizeof(*f));
  if (req->http_status >= 200 && req->http_status <= 299)
    return 0; /* the envelope's status is the HTTP status: nothing more to read */
  rc = envelope(req, CTX_OTHER, &root, &result, f);
  json_decref(root);
  return rc;
}

/* Keeps the lifetime the user chose at login. */
static int refresh_request(authloop_client *c, authloop__req **out) {
  return request(c, "POST", "/_refreshToken", c->login.expires_in ? "expiresIn" : NULL,
                 c->login.expires_in, c->session.access_token, out);
}

static int refresh_response(authloop_client *c, const authloop__req *req, authloop__session *s,
                            authloop__failure *f) {
  json_t *root = NULL, *result = NULL;
  int rc = envelope(req, CTX_REFRESH, &root, &result, f);
  (void)c;
  if (rc == 0)
    rc = take_jwt(result, s, f, req->http_status);
  authloop__json_wipe_decref(root);
  return rc;
}

/* A 401 on a request goes through a refresh, whose answer tells. */
static int session_gone(const authloop__req *req) {
  (void)req;
  return 0;
}

const authloop__provider authloop__provider_kuzzle = {
    .name = "kuzzle",
    .login_path = "/_login",
    .logout_path = "/_logout",
    .refresh_path = "/_refreshToken",
    .login_request = login_request,
    .login_response = login_response,
    .logout_request = logout_request,
    .logout_response = logout_response,
    .refresh_request = refresh_request,
    .refresh_response = refresh_response,
    .authorize = authorize,
    .session_gone = session_gone,
    .make_user = make_user,
};
