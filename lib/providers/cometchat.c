/* The CometChat dialect (docs/protocol.md, section cometchat), as the official
 * JavaScript SDK 4.x speaks it: login with a uid and the app's auth key (an
 * auth token from the admin API, then PUT /me on the client API), or with an
 * auth token; DELETE /me to log out. Success is read from the body ("data"
 * or "error"), never from the status. Auth tokens do not expire. */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP_AUTH_TOKEN 0
#define STEP_ME         1
#define TOKEN_GONE      "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"

/* RFC 3986 unreserved characters pass, the rest is %XX. */
static void path_escape(const char *in, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (; *in && o + 4 < cap; in++) {
    unsigned char ch = (unsigned char)*in;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out[o++] = (char)ch;
    } else {
      out[o++] = '%';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    }
  }
  out[o] = '\0';
}

/* The body the SDK sends with both login requests. */
static json_t *device_body(const authloop_client *c) {
  char version[32];
  snprintf(version, sizeof(version), "%d.%d.%d", AUTHLOOP_VERSION_MAJOR, AUTHLOOP_VERSION_MINOR,
           AUTHLOOP_VERSION_PATCH);
  return json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "platform", "c", "deviceId", c->device_id,
                   "appInfo", "version", version, "apiVersion", "v3.0", "userAgent",
                   c->ctx->user_agent);
}

static int header(authloop__req *req, const char *name, const char *value) {
  return authloop__req_add_header2(req, name, value);
}

static int app_headers(const authloop_client *c, authloop__req *req) {
  int rc = header(req, "appId", c->app_id);
  return rc ? rc : header(req, "sdk", "authloop@" AUTHLOOP__VERSION_STRING);
}

/* 0 and "data", or the body's "error" (any HTTP status) as a failure. */
static int answer(const authloop__req *req, json_t **root, json_t **data, authloop__failure *f) {
  json_t *err, *code, *msg;
  memset(f, 0, sizeof(*f));
  *root =
      json_loadb(req->resp.data ? req->resp.data : "", req->resp.len, JSON_REJECT_DUPLICATES, NULL);
  if (json_is_object(*data = json_object_get(*root, "data")))
    return 0;
  err = json_object_get(*root, "error");
  if (!json_is_object(err)) {
    if (req->http_status >= 500 || req->http_status == 429)
      return authloop__fail(f, AUTHLOOP_EUNAVAILABLE, req->http_status, "%s",
                            authloop_strerror(AUTHLOOP_EUNAVAILABLE));
    return authloop__fail(f, AUTHLOOP_EPROTO, req->http_status, "malformed response: %s",
                          "neither \"data\" nor \"error\"");
  }
  code = json_object_get(err, "code");
  msg = json_object_get(err, "message");
  f->error = req->http_status >= 500 || req->http_status == 429 ? AUTHLOOP_EUNAVAILABLE
                                                                : AUTHLOOP_EREJECTED;
  f->http_status = req->http_status;
  if (json_is_string(code))
    f->server_code = strdup(json_string_value(code));
  f->message = strdup(json_is_string(msg) ? json_string_value(msg) : authloop_strerror(f->error));
  return f->error;
}

static int make_user(json_t *obj, authloop_user **out) {
  json_t *uid = json_object_get(obj, "uid"), *name = json_object_get(obj, "name");
  if (!json_is_object(obj) || !json_is_string(uid) || json_string_length(uid) == 0 ||
      (name && !json_is_string(name))) {
    json_decref(obj);
    return AUTHLOOP_EPROTO;
  }
  return authloop__user_new(obj, json_string_value(uid), json_string_value(name), out);
}

static int login_request(authloop_client *c, int step, authloop__req **out) {
  json_t *body = device_body(c);
  char url[512], uid[320];
  int rc;
  if (!body)
    return AUTHLOOP_ENOMEM;
  if (step == STEP_AUTH_TOKEN) {
    path_escape(c->login.uid, uid, sizeof(uid));
    snprintf(url, sizeof(url), "%s/users/%s/auth_tokens", c->admin_url, uid);
    rc = authloop__req_json(c->ctx, "POST", url, body, out);
    if (rc == 0 &&
        ((rc = app_headers(c, *out)) || (rc = header(*out, "apiKey", c->login.auth_key))))
      authloop__req_free(*out);
  } else {
    const char *token = c->pending.access_token ? c->pending.access_token : c->login.token;
    snprintf(url, sizeof(url), "%s/me", c->base_url);
    rc = authloop__req_json(c->ctx, "PUT", url, body, out);
    if (rc == 0 && ((rc = app_headers(c, *out)) || (rc = header(*out, "authToken", token))))
      authloop__req_free(*out);
  }
  authloop__json_wipe_decref(body);
  return rc;
}

static int login_response(authloop_client *c, int step, const authloop__req *req,
                          authloop__session *s, authloop__failure *f) {
  json_t *root = NULL, *data = NULL, *token;
  int rc = answer(req, &root, &data, f);
  if (rc == 0 && step == STEP_AUTH_TOKEN) {
    token = json_object_get(data, "authToken");
    if (!json_is_string(token) || json_string_length(token) == 0)
      rc = authloop__fail(f, AUTHLOOP_EPROTO, req->http_status,
                          "malformed response: missing or mistyped %s", "\"authToken\"");
    else if (!(s->access_token = authloop__secret_dup(json_string_value(token))))
      rc = AUTHLOOP_ENOMEM;
    else
      rc = AUTHLOOP__MORE;
  } else if (rc == 0) {
    const char *used = s->access_token ? s->access_token : c->login.token;
    token = json_object_get(data, "authToken");
    if (!s->access_token && !(s->access_token = authloop__secret_dup(used))) {
      rc = AUTHLOOP_ENOMEM;
    } else {
      /* the user object carries its auth token, as the SDK's does */
      if (!json_is_string(token))
        json_object_set_new(data, "authToken", json_string(s->access_token));
      s->expires_in = AUTHLOOP__NO_EXPIRY;
      if ((rc = make_user(json_incref(data), &s->user)) != 0)
        authloop__fail(f, rc, req->http_status, "malformed response: missing or mistyped %s",
                       "\"uid\"");
    }
  }
  authloop__json_wipe_decref(root);
  return rc;
}

static int authorize(authloop_client *c, authloop__req *req) {
  int rc = app_headers(c, req);
  return rc ? rc : header(req, "authToken", c->session.access_token);
}

static int logout_request(authloop_client *c, int global, authloop__req **out) {
  char url[512];
  int rc;
  (void)global;
  snprintf(url, sizeof(url), "%s/me", c->base_url);
  if ((rc = authloop__req_json(c->ctx, "DELETE", url, NULL, out)) == 0 &&
      (rc = authorize(c, *out)) != 0)
    authloop__req_free(*out);
  return rc;
}

static int logout_response(authloop_client *c, const authloop__req *req, authloop__failure *f) {
  json_t *root = NULL, *data = NULL;
  int rc = answer(req, &root, &data, f);
  (void)c;
  json_decref(root);
  return rc;
}

static int session_gone(const authloop__req *req) {
  json_t *root = json_loadb(req->resp.data ? req->resp.data : "", req->resp.len, 0, NULL);
  const char *code = json_string_value(json_object_get(json_object_get(root, "error"), "code"));
  int gone = code && strcmp(code, TOKEN_GONE) == 0;
  json_decref(root);
  return gone;
}

const authloop__provider authloop__provider_cometchat = {
    .name = "cometchat",
    .login_path = "/me",
    .logout_path = "/me",
    .refresh_path = "/me",
    .login_request = login_request,
    .login_response = login_response,
    .logout_request = logout_request,
    .logout_response = logout_response,
    .refresh_request = NULL, /* auth tokens do not expire */
    .refresh_response = NULL,
    .authorize = authorize,
    .session_gone = session_gone,
    .make_user = make_user,
};
