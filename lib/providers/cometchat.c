/* SPDX-License-Identifier: MIT */
/* The CometChat dialect (docs/protocol.md, section cometchat), as the official
 * JavaScript SDK 4.x speaks it: login with a uid and the app's auth key (an
 * auth token from the admin API, then PUT /me on the client API), or with an
 * auth token; DELETE /me to log out. Success is read from the body ("data"
 * or "error"), never from the status. Auth tokens do not expire. */
#include "builtin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h" /* last */

#define STEP_AUTH_TOKEN 0
#define STEP_ME         1
#define TOKEN_GONE      "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"
#define MAX_UID         100
#define MAX_DEVICE_ID   128
/* What the JavaScript SDK 4.2.0 sends: authloop speaks its protocol version
 * and names itself in appInfo.userAgent (docs/protocol.md, docs/decisions.md). */
#define SDK_HEADER   "javascript@4.2.0"
#define SDK_PLATFORM "WEB"
#define SDK_VERSION  "v4.2.0"
#define SDK_RESOURCE "WEB-4_2_0-"
#define API_VERSION  "v3.0"

typedef struct {
  char *client_base, *admin_base, *app_id; /* app_id NULL: not initialised */
  char *login_path, *logout_path;
  char *user_agent;
  char *device_id;
  char resource[64];            /* the SDK's session id: this client's, for its lifetime */
  char *uid, *auth_key, *token; /* during a login */
  /* the client host the user's settings name, and the base built from it */
  char *settings_host, *settings_version, *settings_base;
} cometchat;

/* 0 and "data" (a value of d), or the body's "error" (any HTTP status) as a
 * failure. */
static int answer(const authloop__answer *a, authloop__jdoc *d, int *data, authloop__result *out) {
  int err;
  const char *code, *msg;
  out->http_status = a->status;
  if (authloop__answer_doc(a, out, d) != 0 && out->error)
    return out->error;
  if (authloop__jis(d, *data = authloop__jget(d, 0, "data"), AUTHLOOP__J_OBJECT))
    return 0;
  err = authloop__jget(d, 0, "error");
  if (!authloop__jis(d, err, AUTHLOOP__J_OBJECT)) { /* not CometChat's (a proxy's page ...) */
    if (!authloop__is_2xx(a->status))
      return authloop__result_status(out, a->status);
    return authloop__result_fail(out, AUTHLOOP_EPROTO, a->status, "malformed response: %s",
                                 "neither \"data\" nor \"error\"");
  }
  code = authloop__jstring(d, authloop__jget(d, err, "code"));
  msg = authloop__jstring(d, authloop__jget(d, err, "message"));
  out->error = a->status >= 500 || a->status == 429 ? AUTHLOOP_EUNAVAILABLE : AUTHLOOP_EREJECTED;
  if (code)
    out->server_code = strdup(code);
  out->message = strdup(msg ? msg : authloop_strerror(out->error));
  return out->error;
}

static int user_fields(const authloop__jdoc *d, int user, const char **id, const char **name) {
  int n = authloop__jget(d, user, "name");
  if (!(*id = authloop__jstr(d, user, "uid")) ||
      (n >= 0 && !authloop__jis(d, n, AUTHLOOP__J_STRING)))
    return AUTHLOOP_EPROTO;
  *name = authloop__jstring(d, n);
  return 0;
}

/* The user object with "authToken" set to token where it has no string
 * there (in place of what it has, or last), as the SDK's user carries it. */
static char *user_with_token(const authloop__jdoc *d, int user, const char *token) {
  authloop__jw w = {NULL, 0, 0, 0};
  size_t len;
  const char *raw = authloop__jraw(d, user, &len);
  int old = authloop__jget(d, user, "authToken");
  char *head, *tail = NULL;
  if (old >= 0) { /* the value's own span is raw text: it is no string */
    size_t at = (size_t)(d->text + d->tok[old].off - raw), end = at + d->tok[old].len;
    head = authloop__json_compact(raw, at);
    tail = authloop__json_compact(raw + end, len - end);
    if (head && tail) {
      authloop__jw_raw(&w, head, strlen(head));
      authloop__jw_string(&w, token, strlen(token));
      authloop__jw_raw(&w, tail, strlen(tail));
    }
  } else {
    head = authloop__json_compact(raw, len - 1); /* without its '}' */
    if (head) {
      size_t n = strlen(head);
      authloop__jw_raw(&w, head, n);
      if (head[n - 1] != '{')
        authloop__jw_raw(&w, ",", 1);
      authloop__jw_raw(&w, "\"authToken\":", 12);
      authloop__jw_string(&w, token, strlen(token));
      authloop__jw_raw(&w, "}", 1);
    }
  }
  authloop__secret_free(head);
  authloop__secret_free(tail);
  if (!head || (old >= 0 && !tail) || w.failed) {
    if (w.data)
      authloop__wipe_free(w.data, w.cap);
    return NULL;
  }
  return w.data;
}

/* ---- the table --------------------------------------------------------------------------- */

static void clear_login(cometchat *k) {
  authloop__secret_free(k->uid);
  authloop__secret_free(k->auth_key);
  authloop__secret_free(k->token);
  k->uid = k->auth_key = k->token = NULL;
}

static void forget_settings(cometchat *k) {
  free(k->settings_host);
  free(k->settings_version);
  free(k->settings_base);
  k->settings_host = k->settings_version = k->settings_base = NULL;
}

static void cometchat_free(void *state) {
  cometchat *k = state;
  if (!k)
    return;
  clear_login(k);
  forget_settings(k);
  free(k->client_base);
  free(k->admin_base);
  free(k->app_id);
  free(k->login_path);
  free(k->logout_path);
  free(k->user_agent);
  free(k->device_id);
  free(k);
}

/* ASCII only, whatever the locale says a letter is. */
static int letter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int digit(int c) { return c >= '0' && c <= '9'; }
static int alnum_c(int c) { return letter(c) || digit(c); }
static int space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int alnum(const char *s, size_t max) {
  size_t i;
  for (i = 0; s[i]; i++)
    if (!alnum_c((unsigned char)s[i]))
      return 0;
  return i > 0 && i <= max;
}

/* https://{app}.{kind}-{region}.cometchat.io/v3.0, unless overridden */
static char *host(const char *override, const char *app, const char *kind, const char *region) {
  size_t n = override ? strlen(override) + 1 : strlen(app) + strlen(kind) + strlen(region) + 40;
  char *s = malloc(n);
  if (s && override)
    memcpy(s, override, n);
  else if (s)
    snprintf(s, n, "https://%s.%s-%s.cometchat.io/" API_VERSION, app, kind, region);
  return s;
}

/* 16 bytes as a version-4 UUID, as the SDK's ids carry one. */
static void uuid(const unsigned char b[16], char out[37]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char v[16];
  size_t i, j = 0;
  memcpy(v, b, 16);
  v[6] = (unsigned char)((v[6] & 0x0f) | 0x40);
  v[8] = (unsigned char)((v[8] & 0x3f) | 0x80);
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[j++] = '-';
    out[j++] = hex[v[i] >> 4];
    out[j++] = hex[v[i] & 15];
  }
  out[j] = '\0';
}

/* The device id: the application's, or "{appId}_{uuid}" named by the
 * installation, or the SDK's "{appId}_{uuid}_{ms}" for a client without one. */
static char *device_id(const authloop_client_options *o, const authloop__provider_env *env,
                       const char *app) {
  char id[37], *s;
  size_t n;
  if (o->device_id)
    return strdup(o->device_id);
  uuid(env->installation ? env->installation : env->random + 16, id);
  n = strlen(app) + sizeof(id) + 24;
  if ((s = malloc(n)) && env->installation)
    snprintf(s, n, "%s_%s", app, id);
  else if (s)
    snprintf(s, n, "%s_%s_%lld", app, id, env->now_wall_ms);
  return s;
}

static int device_id_ok(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n <= MAX_DEVICE_ID && authloop__text_ok(s) && !authloop__has_space(s);
}

/* Without an app id the client is "not initialised": logins fail with
 * ERROR_SDK_NOT_INITIALIZED, in CometChat's order of checks. */
static int init(const authloop_client_options *o, const authloop__provider_env *env, void **state,
                const char *bases[AUTHLOOP__MAX_BASES]) {
  const char *region = o->region ? o->region : "eu", *app = o->app_id ? o->app_id : "uninitialised";
  char id[37];
  cometchat *k;
  /* auth tokens never expire: nothing to refresh, no idle expiry, no retry */
  if (o->refresh_path || o->refresh_margin_s || o->idle_window_s || o->retry_base_ms ||
      o->retry_cap_ms || (o->region && o->base_url && o->admin_url) || o->client_id ||
      o->client_secret || o->scope || o->redirect_uri || o->userinfo)
    return AUTHLOOP_ENOTSUP; /* (a region with both hosts given is not used either) */
  if ((o->app_id && !alnum(o->app_id, 64)) || !alnum(region, 16) ||
      !authloop__path_option_ok(o->login_path) || !authloop__path_option_ok(o->logout_path) ||
      (o->device_id && !device_id_ok(o->device_id)))
    return AUTHLOOP_EINVAL;
  if (!(k = calloc(1, sizeof(*k))))
    return AUTHLOOP_ENOMEM;
  k->client_base = host(o->base_url, app, "apiclient", region);
  k->admin_base = host(o->admin_url, app, "api", region);
  k->app_id = o->app_id ? strdup(o->app_id) : NULL;
  k->login_path = strdup(o->login_path ? o->login_path : "/me");
  k->logout_path = strdup(o->logout_path ? o->logout_path : "/me");
  k->user_agent = strdup(env->user_agent);
  k->device_id = device_id(o, env, app);
  if (!k->client_base || !k->admin_base || (o->app_id && !k->app_id) || !k->login_path ||
      !k->logout_path || !k->user_agent || !k->device_id) {
    cometchat_free(k);
    return AUTHLOOP_ENOMEM;
  }
  /* the SDK's session id ("resource"): one per client */
  uuid(env->random, id);
  snprintf(k->resource, sizeof(k->resource), SDK_RESOURCE "%s-%lld", id, env->now_wall_ms);
  *state = k;
  bases[0] = k->client_base;
  bases[1] = k->admin_base;
  return 0;
}

/* ---- the hosts a user's settings name -------------------------------------------------- */

/* Four decimal octets, no leading zero. */
static int dotted_quad(const char *h, size_t n) {
  size_t i = 0, parts = 0;
  while (i < n) {
    size_t start = i, value = 0;
    while (i < n && digit((unsigned char)h[i]) && i - start < 3)
      value = value * 10 + (size_t)(h[i++] - '0');
    if (i == start || value > 255 || (i - start > 1 && h[start] == '0') || ++parts > 4)
      return 0;
    if (i < n && (h[i] != '.' || ++i == n))
      return 0;
  }
  return parts == 4;
}

/* host (n bytes): four decimal octets, or a DNS name whose last label starts
 * with a letter. libcurl reads other numeric forms ("2130706433", "0x7f.1",
 * "127.1") as addresses of its own making: refused. */
static int host_ok(const char *h, size_t n) {
  size_t i, label = 0, last = 0;
  if (n == 0 || n > 253)
    return 0;
  if (dotted_quad(h, n))
    return 1;
  for (i = 0; i < n; i++) {
    if (h[i] == '.') {
      if (label == 0 || h[i - 1] == '-')
        return 0;
      label = 0;
      last = i + 1;
      continue;
    }
    if ((!alnum_c((unsigned char)h[i]) && h[i] != '-') || (label == 0 && h[i] == '-') ||
        ++label > 63)
      return 0;
  }
  return label > 0 && h[n - 1] != '-' && letter((unsigned char)h[last]);
}

/* "host[:port][/path]" as the SDK puts it after "https://": no user info, no
 * query, no fragment, no dot segment; a port 1-65535. */
static int settings_host_ok(const char *s) {
  const char *path = strchr(s, '/'), *end = path ? path : s + strlen(s), *colon;
  size_t i;
  if (strlen(s) > 1024 || end - s > 255 || !(colon = memchr(s, ':', (size_t)(end - s))))
    colon = end;
  if (!host_ok(s, (size_t)(colon - s)))
    return 0;
  if (colon < end) { /* a port */
    unsigned long port = 0;
    const char *p = colon + 1;
    if (p == end || end - p > 5 || *p == '0')
      return 0;
    for (; p < end; p++) {
      if (!digit((unsigned char)*p))
        return 0;
      port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
      return 0;
  }
  for (i = 0; path && path[i]; i++)
    if (!alnum_c((unsigned char)path[i]) && !strchr("/._~-", path[i]))
      return 0;
  return !path || authloop__path_text_ok(path);
}

static int version_ok(const char *s) {
  size_t i;
  for (i = 0; s[i]; i++)
    if (!alnum_c((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
      return 0;
  return i > 0 && i <= 16 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Once PUT /me has answered with "settings", the SDK sends the session's
 * later calls to settings.CLIENT_API_HOST under settings.CHAT_API_VERSION,
 * over https, until the logout. They are kept in the user object (so in the
 * session file). The configured base when the user names none, or a host or
 * version that is not one. */
static int settings_base(cometchat *k, const authloop__jdoc *d, const char **base);

static int client_base(cometchat *k, const authloop__view *v, const char **base) {
  authloop__jdoc d;
  int rc =
      v->user_json ? authloop__jdoc_parse(&d, v->user_json, strlen(v->user_json)) : AUTHLOOP_ENOENT;
  *base = k->client_base;
  if (rc == 0)
    rc = settings_base(k, &d, base);
  if (rc != AUTHLOOP_ENOENT)
    authloop__jdoc_free(&d);
  return rc == AUTHLOOP_ENOMEM ? rc : 0;
}

/* The base the settings in user object d name, or none (*base unchanged). */
static int settings_base(cometchat *k, const authloop__jdoc *d, const char **base) {
  int set = authloop__jget(d, 0, "settings");
  const char *h = authloop__jstr(d, set, "CLIENT_API_HOST");
  const char *ver = authloop__jstr(d, set, "CHAT_API_VERSION");
  size_t n;
  if (!h || !ver || !settings_host_ok(h) || !version_ok(ver))
    return 0;
  if (!k->settings_base || strcmp(h, k->settings_host) != 0 ||
      strcmp(ver, k->settings_version) != 0) {
    forget_settings(k);
    n = strlen(h) + strlen(ver) + sizeof("https:///");
    k->settings_host = strdup(h);
    k->settings_version = strdup(ver);
    if (!k->settings_host || !k->settings_version || !(k->settings_base = malloc(n))) {
      forget_settings(k);
      return AUTHLOOP_ENOMEM;
    }
    snprintf(k->settings_base, n, "https://%s/%s", h, ver);
  }
  *base = k->settings_base;
  return 0;
}

/* "uid" is trimmed first, as CometChat does. */
static char *trimmed(const char *s) {
  size_t n;
  char *t;
  while (*s && space(*s))
    s++;
  n = strlen(s);
  while (n && space(s[n - 1]))
    n--;
  if ((t = malloc(n + 1))) {
    memcpy(t, s, n);
    t[n] = '\0';
  }
  return t;
}

/* CometChat's validation, in its order: uid, auth key / token, initialised. */
static int check_key_login(const cometchat *k, const char *uid, const char *key) {
  if (!*uid || strlen(uid) > MAX_UID)
    return AUTHLOOP_EINVALIDUID;
  if (authloop__has_space(uid))
    return AUTHLOOP_EUIDSPACE;
  if (!key || !*key)
    return AUTHLOOP_EAPIKEY;
  if (!authloop__text_ok(key) || !authloop__utf8_ok(uid))
    return AUTHLOOP_EINVAL;
  return k->app_id ? 0 : AUTHLOOP_ENOTINIT;
}

static int check_token_login(const cometchat *k, const char *t) {
  if (!t || !*t)
    return AUTHLOOP_EBLANKAUTHTOKEN;
  if (authloop__has_space(t))
    return AUTHLOOP_EAUTHTOKENSPACE;
  if (!authloop__text_ok(t))
    return AUTHLOOP_EINVAL;
  return k->app_id ? 0 : AUTHLOOP_ENOTINIT;
}

static int login_start(void *state, const authloop__credential *cred, int *step) {
  cometchat *k = state;
  char *uid;
  int rc;
  if (cred->kind == AUTHLOOP__CRED_TOKEN) {
    if ((rc = check_token_login(k, cred->token)) != 0)
      return rc;
    clear_login(k);
    *step = STEP_ME;
    return authloop__secret_set(&k->token, cred->token);
  }
  if (!cred->uid)
    return AUTHLOOP_EINVALIDUID;
  if (!(uid = trimmed(cred->uid)))
    return AUTHLOOP_ENOMEM;
  if ((rc = check_key_login(k, uid, cred->key)) != 0) {
    free(uid);
    return rc;
  }
  clear_login(k);
  k->uid = uid;
  *step = STEP_AUTH_TOKEN;
  return authloop__secret_set(&k->auth_key, cred->key);
}

static void login_end(void *state) { clear_login(state); }

/* The body the SDK sends with both login requests. */
static int device_body(const cometchat *k, authloop__request *out) {
  const char *const head[] = {"platform", SDK_PLATFORM, "deviceId", k->device_id};
  const char *const info[] = {"version",   SDK_VERSION, "apiVersion",
                              API_VERSION, "userAgent", k->user_agent};
  authloop__jw w = {NULL, 0, 0, 0};
  char *a, *b;
  int rc;
  if (!authloop__utf8_ok(k->device_id) || !authloop__utf8_ok(k->user_agent))
    return AUTHLOOP_EINVAL;
  a = authloop__jw_object(head, 2);
  b = authloop__jw_object(info, 3);
  if (a && b) { /* {head...,"appInfo":{info...}} */
    authloop__jw_raw(&w, a, strlen(a) - 1);
    authloop__jw_raw(&w, ",\"appInfo\":", 11);
    authloop__jw_raw(&w, b, strlen(b));
    authloop__jw_raw(&w, "}", 1);
  }
  rc = a && b && !w.failed ? 0 : AUTHLOOP_ENOMEM;
  authloop__secret_free(a);
  authloop__secret_free(b);
  if (rc) {
    if (w.data)
      authloop__wipe_free(w.data, w.cap);
    return rc;
  }
  authloop__secret_free(out->json);
  out->json = w.data;
  return 0;
}

/* The headers of every SDK call. Content-Type too: the SDK sends it with
 * no body as well (the transport adds it to a body). */
static int app_headers(const cometchat *k, authloop__request *out, int bodyless) {
  int rc = authloop__request_header(out, "resource", k->resource);
  if (rc == 0) /* the SDK asks for JSON; no other dialect's client does */
    rc = authloop__request_header(out, "Accept", "application/json");
  if (rc == 0)
    rc = authloop__request_header(out, "appId", k->app_id);
  if (rc == 0)
    rc = authloop__request_header(out, "sdk", SDK_HEADER);
  if (rc == 0 && bodyless)
    rc = authloop__request_header(out, "Content-Type", "application/json");
  return rc;
}

static int login_request(void *state, const authloop__view *v, int step, authloop__request *out) {
  cometchat *k = state;
  int rc;
  if ((rc = device_body(k, out)) != 0 || (rc = app_headers(k, out, 0)) != 0)
    return rc;
  if (step == STEP_AUTH_TOKEN) {
    out->method = "POST";
    out->base = k->admin_base;
    if ((rc = authloop__request_path(out, "/users", 0)) ||
        (rc = authloop__request_path(out, k->uid, 1)) ||
        (rc = authloop__request_path(out, "/auth_tokens", 0)))
      return rc;
    return authloop__request_header(out, "apiKey", k->auth_key);
  }
  out->method = "PUT";
  out->base = k->client_base;
  if ((rc = authloop__request_path(out, k->login_path, 0)) != 0)
    return rc;
  return authloop__request_header(out, "authToken", v->access_token ? v->access_token : k->token);
}

static int login_answer(void *state, const authloop__view *v, int step, const authloop__answer *a,
                        authloop__result *out) {
  cometchat *k = state;
  authloop__jdoc d;
  int data;
  const char *id, *name;
  if (answer(a, &d, &data, out) == 0) {
    if (step == STEP_AUTH_TOKEN) {
      const char *token = authloop__jstr(&d, data, "authToken");
      if (!token)
        authloop__result_fail(out, AUTHLOOP_EPROTO, a->status,
                              "malformed response: missing or mistyped %s", "\"authToken\"");
      else if (authloop__result_take(out, &out->access_token, token) == 0) {
        out->next = AUTHLOOP__NEXT_STEP;
        out->step = STEP_ME;
      }
    } else {
      const char *used = v->access_token ? v->access_token : k->token;
      if (user_fields(&d, data, &id, &name) != 0) {
        authloop__result_fail(out, AUTHLOOP_EPROTO, a->status,
                              "malformed response: missing or mistyped %s", "\"uid\"");
      } else if (authloop__result_take(out, &out->access_token, used) == 0) {
        /* the user object carries its auth token, as the SDK's does */
        if (authloop__jis(&d, authloop__jget(&d, data, "authToken"), AUTHLOOP__J_STRING))
          authloop__result_user(out, &d, data, id, name);
        else
          authloop__result_user_text(out, user_with_token(&d, data, used), id, name);
        out->lifetime_s = AUTHLOOP__LIFETIME_NEVER;
      }
    }
  }
  authloop__jdoc_free(&d);
  return out->error;
}

/* An application request: the session's client host, as the SDK's calls. */
static int authorize(void *state, const authloop__view *v, authloop__request *out) {
  cometchat *k = state;
  int rc = app_headers(k, out, !out->json && !out->body);
  if (rc == 0)
    rc = client_base(k, v, &out->base);
  return rc ? rc : authloop__request_header(out, "authToken", v->access_token);
}

static int logout_request(void *state, const authloop__view *v, int global,
                          authloop__request *out) {
  cometchat *k = state;
  int rc;
  (void)global; /* refused by the engine: no AUTHLOOP__CAN_GLOBAL_LOGOUT */
  out->method = "DELETE";
  out->base = k->client_base;
  if ((rc = authloop__request_path(out, k->logout_path, 0)) != 0)
    return rc;
  return authorize(state, v, out);
}

/* A logout the server answers with "no such token" succeeded: the session
 * is gone, as the SDK resolves it. */
static int logout_answer(void *state, const authloop__answer *a, authloop__result *out) {
  authloop__jdoc d;
  int data;
  (void)state;
  if (answer(a, &d, &data, out) != 0 && out->server_code &&
      strcmp(out->server_code, TOKEN_GONE) == 0) {
    authloop__result_clear(out);
  }
  authloop__jdoc_free(&d);
  return out->error;
}

static int session_gone(void *state, const authloop__answer *a) {
  authloop__jdoc d;
  const char *code;
  int gone = 0;
  (void)state;
  if (authloop__jdoc_parse(&d, a->body, a->len) == 0) {
    code = authloop__jstring(&d, authloop__jget(&d, authloop__jget(&d, 0, "error"), "code"));
    gone = code && strcmp(code, TOKEN_GONE) == 0;
  }
  authloop__jdoc_free(&d);
  return gone;
}

const authloop__provider authloop__provider_cometchat = {
    .name = "cometchat",
    .accepts = AUTHLOOP__CRED_UID_KEY | AUTHLOOP__CRED_TOKEN,
    .init = init,
    .free = cometchat_free,
    .login_start = login_start,
    .login_request = login_request,
    .login_answer = login_answer,
    .login_end = login_end,
    .refresh_request = NULL, /* auth tokens do not expire */
    .refresh_answer = NULL,
    .logout_request = logout_request,
    .logout_answer = logout_answer,
    .authorize = authorize,
    .session_gone = session_gone,
    .user_fields = user_fields,
};
