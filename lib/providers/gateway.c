/* The gateway dialect (docs/protocol.md, section gateway): login with a
 * one-time authorization code, bearer logout, errors as
 * {"error": {"code": <number>, "name", "message"}}. */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ten years: anything longer is not a lifetime but a mistake. */
#define GATEWAY_MAX_EXPIRES_IN (10L * 366 * 24 * 3600)

static json_t *login_code_body(const char *code) {
  return json_pack("{s:s}", "authorizationCode", code);
}

static int fail(authloop__failure *f, int error, long status, const char *fmt, const char *arg) {
  char msg[256];
  f->error = error;
  f->http_status = status;
  if (fmt) {
    snprintf(msg, sizeof(msg), fmt, arg);
    f->message = strdup(msg);
  }
  return error;
}

static json_t *load(const char *body, size_t len) {
  return json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
}

/* A non-2xx answer: the server's code and message when its body has them. */
int authloop__gateway_failure(long status, const char *body, size_t len, authloop__failure *f) {
  json_t *root = load(body, len), *err = json_object_get(root, "error");
  json_t *code = json_object_get(err, "code"), *message = json_object_get(err, "message");
  char num[32];
  int e = status >= 500 || status == 429 ? AUTHLOOP_EUNAVAILABLE : AUTHLOOP_EREJECTED;
  memset(f, 0, sizeof(*f));
  f->error = e;
  f->http_status = status;
  if (json_is_integer(code)) {
    snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(code));
    f->server_code = strdup(num);
  } else if (json_is_string(code)) {
    f->server_code = strdup(json_string_value(code));
  }
  if (json_is_string(message) && json_string_length(message) > 0) {
    f->message = strdup(json_string_value(message));
  } else {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s (HTTP %ld)", authloop_strerror(e), status);
    f->message = strdup(msg);
  }
  authloop__json_wipe_decref(root);
  return e;
}

static const char *token_field(json_t *root, const char *key) {
  json_t *v = json_object_get(root, key);
  return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* Seconds the access token lives: "expiresIn", or the JWT's exp - iat when
 * the server sent none. 0 when neither is usable. */
static long lifetime(json_t *root, const char *access_token) {
  json_t *v = json_object_get(root, "expiresIn");
  long jwt;
  if (v)
    return json_is_integer(v) && json_integer_value(v) > 0 &&
                   json_integer_value(v) <= GATEWAY_MAX_EXPIRES_IN
               ? (long)json_integer_value(v)
               : 0;
  return authloop__jwt_lifetime(access_token, &jwt) == 0 ? jwt : 0;
}

static int parse_login(long status, const char *body, size_t len, authloop__session *out,
                       authloop__failure *f) {
  static const char *const token_keys[] = {"accessToken", "idToken", "refreshToken"};
  const char *tokens[3];
  json_t *root, *user, *v;
  long expires_in;
  size_t i;
  int rc;
  memset(out, 0, sizeof(*out));
  memset(f, 0, sizeof(*f));
  if (status < 200 || status > 299)
    return authloop__gateway_failure(status, body, len, f);
  root = load(body, len); /* not inside json_is_object(): it evaluates twice */
  if (!json_is_object(root)) {
    authloop__json_wipe_decref(root);
    return fail(f, AUTHLOOP_EPROTO, status, "malformed response: %s",
                "the body is not a JSON object");
  }
  user = json_object_get(root, "user");
  if (!json_is_object(user) || !token_field(user, "id") ||
      ((v = json_object_get(user, "name")) && !json_is_string(v) && !json_is_null(v))) {
    authloop__json_wipe_decref(root);
    return fail(f, AUTHLOOP_EPROTO, status, "malformed response: missing or mistyped \"%s\"",
                "user");
  }
  for (i = 0; i < 3; i++) {
    if (!(tokens[i] = token_field(root, token_keys[i]))) {
      authloop__json_wipe_decref(root);
      return fail(f, AUTHLOOP_EPROTO, status, "malformed response: missing or mistyped \"%s\"",
                  token_keys[i]);
    }
  }
  if (!(expires_in = lifetime(root, tokens[0]))) {
    authloop__json_wipe_decref(root);
    return fail(f, AUTHLOOP_EPROTO, status, "malformed response: missing or mistyped \"%s\"",
                "expiresIn");
  }
  out->access_token = authloop__secret_dup(tokens[0]);
  out->id_token = authloop__secret_dup(tokens[1]);
  out->refresh_token = authloop__secret_dup(tokens[2]);
  out->expires_in = expires_in;
  rc = authloop__user_new(json_incref(user), &out->user);
  authloop__json_wipe_decref(root);
  if (rc || !out->access_token || !out->id_token || !out->refresh_token) {
    authloop__session_clear(out);
    return fail(f, AUTHLOOP_ENOMEM, status, NULL, NULL);
  }
  return 0;
}

/* A refresh answer: new access and id tokens and a lifetime; a new refresh
 * token when the gateway rotates them. 4009, 401 and 400 are final. */
static int parse_refresh(long status, const char *body, size_t len, authloop__session *out,
                         authloop__failure *f) {
  static const char *const keys[] = {"accessToken", "idToken"};
  json_t *root;
  long expires_in;
  size_t i;
  int rotated;
  memset(out, 0, sizeof(*out));
  memset(f, 0, sizeof(*f));
  if (status < 200 || status > 299) {
    int e = authloop__gateway_failure(status, body, len, f);
    if (status == 400 || status == 401 || (f->server_code && strcmp(f->server_code, "4009") == 0))
      e = f->error = AUTHLOOP_EREVOKED;
    return e;
  }
  root = load(body, len);
  if (!json_is_object(root)) {
    authloop__json_wipe_decref(root);
    return fail(f, AUTHLOOP_EPROTO, status, "malformed response: %s",
                "the body is not a JSON object");
  }
  for (i = 0; i < 2; i++) {
    if (!token_field(root, keys[i])) {
      authloop__json_wipe_decref(root);
      return fail(f, AUTHLOOP_EPROTO, status, "malformed response: missing or mistyped \"%s\"",
                  keys[i]);
    }
  }
  if (json_object_get(root, "refreshToken") && !token_field(root, "refreshToken")) {
    authloop__json_wipe_decref(root);
    return fail(f, AUTHLOOP_EPROTO, status, "malformed response: missing or mistyped \"%s\"",
                "refreshToken");
  }
  if (!(expires_in = lifetime(root, token_field(root, "accessToken")))) {
    authloop__json_wipe_decref(root);
    return fail(f, AUTHLOOP_EPROTO, status, "malformed response: missing or mistyped \"%s\"",
                "expiresIn");
  }
  rotated = token_field(root, "refreshToken") != NULL;
  out->access_token = authloop__secret_dup(token_field(root, "accessToken"));
  out->id_token = authloop__secret_dup(token_field(root, "idToken"));
  if (rotated)
    out->refresh_token = authloop__secret_dup(token_field(root, "refreshToken"));
  out->expires_in = expires_in;
  authloop__json_wipe_decref(root);
  if (!out->access_token || !out->id_token || (rotated && !out->refresh_token)) {
    authloop__session_clear(out);
    return fail(f, AUTHLOOP_ENOMEM, status, NULL, NULL);
  }
  return 0;
}

static json_t *refresh_body(const authloop__session *s) {
  return json_pack("{s:s}", "refreshToken", s->refresh_token);
}

static int authorize(authloop__req *req, const authloop__session *s) {
  return authloop__req_set_bearer(req, s->access_token);
}

static int parse_logout(long status, const char *body, size_t len, authloop__failure *f) {
  memset(f, 0, sizeof(*f));
  if (status >= 200 && status <= 299)
    return 0;
  return authloop__gateway_failure(status, body, len, f);
}

const authloop__provider authloop__provider_gateway = {
    .name = "gateway",
    .login_path = "/auth/login",
    .logout_path = "/auth/logout",
    .refresh_path = "/auth/refresh",
    .login_code_body = login_code_body,
    .parse_login = parse_login,
    .parse_logout = parse_logout,
    .refresh_body = refresh_body,
    .parse_refresh = parse_refresh,
    .authorize = authorize,
};
