/* The gateway dialect (docs/protocol.md, section gateway): login with a
 * one-time authorization code, bearer logout, errors as
 * {"error": {"code": <number>, "name", "message"}}. */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ten years: anything longer is not a lifetime but a mistake. */
#define GATEWAY_MAX_EXPIRES_IN (10L * 366 * 24 * 3600)

json_t *authloop__gateway_login_body(const char *code) {
  return json_pack("{s:s}", "authorizationCode", code);
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

static int make_user(json_t *obj, authloop_user **out) {
  json_t *name = json_object_get(obj, "name");
  const char *id = token_field(obj, "id");
  if (!json_is_object(obj) || !id || (name && !json_is_string(name) && !json_is_null(name))) {
    json_decref(obj);
    return AUTHLOOP_EPROTO;
  }
  return authloop__user_new(obj, id, json_string_value(name), out);
}

int authloop__gateway_parse_login(long status, const char *body, size_t len, authloop__session *out,
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
    return authloop__fail(f, AUTHLOOP_EPROTO, status, "malformed response: %s",
                          "the body is not a JSON object");
  }
  user = json_object_get(root, "user");
  if (!json_is_object(user) || !token_field(user, "id") ||
      ((v = json_object_get(user, "name")) && !json_is_string(v) && !json_is_null(v))) {
    authloop__json_wipe_decref(root);
    return authloop__fail(f, AUTHLOOP_EPROTO, status,
                          "malformed response: missing or mistyped \"%s\"", "user");
  }
  for (i = 0; i < 3; i++) {
    if (!(tokens[i] = token_field(root, token_keys[i]))) {
      authloop__json_wipe_decref(root);
      return authloop__fail(f, AUTHLOOP_EPROTO, status,
                            "malformed response: missing or mistyped \"%s\"", token_keys[i]);
    }
  }
  if (!(expires_in = lifetime(root, tokens[0]))) {
    authloop__json_wipe_decref(root);
    return authloop__fail(f, AUTHLOOP_EPROTO, status,
                          "malformed response: missing or mistyped \"%s\"", "expiresIn");
  }
  out->access_token = authloop__secret_dup(tokens[0]);
  out->id_token = authloop__secret_dup(tokens[1]);
  out->refresh_token = authloop__secret_dup(tokens[2]);
  out->expires_in = expires_in;
  rc = make_user(json_incref(user), &out->user);
  authloop__json_wipe_decref(root);
  if (rc || !out->access_token || !out->id_token || !out->refresh_token) {
    authloop__session_clear(out);
    return authloop__fail(f, AUTHLOOP_ENOMEM, status, NULL, NULL);
  }
  return 0;
}

/* A refresh answer: new access and id tokens and a lifetime; a new refresh
 * token when the gateway rotates them. 4009, 401 and 400 are final. */
int authloop__gateway_parse_refresh(long status, const char *body, size_t len,
                                    authloop__session *out, authloop__failure *f) {
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
    return authloop__fail(f, AUTHLOOP_EPROTO, status, "malformed response: %s",
                          "the body is not a JSON object");
  }
  for (i = 0; i < 2; i++) {
    if (!token_field(root, keys[i])) {
      authloop__json_wipe_decref(root);
      return authloop__fail(f, AUTHLOOP_EPROTO, status,
                            "malformed response: missing or mistyped \"%s\"", keys[i]);
    }
  }
  if (json_object_get(root, "refreshToken") && !token_field(root, "refreshToken")) {
    authloop__json_wipe_decref(root);
    return authloop__fail(f, AUTHLOOP_EPROTO, status,
                          "malformed response: missing or mistyped \"%s\"", "refreshToken");
  }
  if (!(expires_in = lifetime(root, token_field(root, "accessToken")))) {
    authloop__json_wipe_decref(root);
    return authloop__fail(f, AUTHLOOP_EPROTO, status,
                          "malformed response: missing or mistyped \"%s\"", "expiresIn");
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
    return authloop__fail(f, AUTHLOOP_ENOMEM, status, NULL, NULL);
  }
  return 0;
}

int authloop__gateway_parse_logout(long status, const char *body, size_t len,
                                   authloop__failure *f) {
  memset(f, 0, sizeof(*f));
  if (status >= 200 && status <= 299)
    return 0;
  return authloop__gateway_failure(status, body, len, f);
}

/* ---- the provider table ------------------------------------------------------------ */

static int login_request(authloop_client *c, int step, authloop__req **out) {
  json_t *body = authloop__gateway_login_body(c->login.code);
  int rc = body ? authloop__req_json(c->ctx, "POST", c->login_url, body, out) : AUTHLOOP_ENOMEM;
  (void)step;
  authloop__json_wipe_decref(body);
  return rc;
}

static int login_response(authloop_client *c, int step, const authloop__req *req,
                          authloop__session *s, authloop__failure *f) {
  (void)c;
  (void)step;
  return authloop__gateway_parse_login(req->http_status, req->resp.data, req->resp.len, s, f);
}

static int authorize(authloop_client *c, authloop__req *req) {
  return authloop__req_set_bearer(req, c->session.access_token);
}

static int logout_request(authloop_client *c, int global, authloop__req **out) {
  int rc = authloop__req_json(c->ctx, "POST", c->logout_url, NULL, out);
  (void)global;
  if (rc == 0 && (rc = authorize(c, *out)) != 0)
    authloop__req_free(*out);
  return rc;
}

static int logout_response(authloop_client *c, const authloop__req *req, authloop__failure *f) {
  (void)c;
  return authloop__gateway_parse_logout(req->http_status, req->resp.data, req->resp.len, f);
}

static int refresh_request(authloop_client *c, authloop__req **out) {
  json_t *body = json_pack("{s:s}", "refreshToken", c->session.refresh_token);
  int rc = body ? authloop__req_json(c->ctx, "POST", c->refresh_url, body, out) : AUTHLOOP_ENOMEM;
  authloop__json_wipe_decref(body);
  return rc;
}

static int refresh_response(authloop_client *c, const authloop__req *req, authloop__session *s,
                            authloop__failure *f) {
  (void)c;
  return authloop__gateway_parse_refresh(req->http_status, req->resp.data, req->resp.len, s, f);
}

/* A 401 on a request is answered with a refresh, whose answer tells. */
static int session_gone(const authloop__req *req) {
  (void)req;
  return 0;
}

const authloop__provider authloop__provider_gateway = {
    .name = "gateway",
    .login_path = "/auth/login",
    .logout_path = "/auth/logout",
    .refresh_path = "/auth/refresh",
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
