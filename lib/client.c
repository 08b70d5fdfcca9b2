/* The session state machine and the client's public API. Every state change
 * goes through set_state(), which emits stateChanged. */
#include "internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"LOGGED_OUT", "LOGGING_IN", "LOGGED_IN",
                                          "REFRESHING", "EXPIRED",    "AWAITING_TOKEN"};

const char *authloop_state_name(authloop_state s) {
  return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "UNKNOWN";
}

/* ---- session data ------------------------------------------------------------ */

int authloop__user_new(json_t *obj, const char *id, const char *name, authloop_user **out) {
  authloop_user *u = calloc(1, sizeof(*u));
  if (!u || !(u->json = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
    free(u);
    json_decref(obj);
    return AUTHLOOP_ENOMEM;
  }
  u->obj = obj;
  u->id = id;
  u->name = name;
  *out = u;
  return 0;
}

void authloop__login_args_clear(authloop__login_args *a) {
  authloop__secret_free(a->code);
  authloop__secret_free(a->strategy);
  authloop__secret_free(a->credentials);
  authloop__secret_free(a->expires_in);
  authloop__secret_free(a->uid);
  authloop__secret_free(a->auth_key);
  authloop__secret_free(a->token);
  memset(a, 0, sizeof(*a));
}

int authloop__fail(authloop__failure *f, int error, long status, const char *fmt, const char *arg) {
  char msg[256];
  f->error = error;
  f->http_status = status;
  if (fmt) {
    snprintf(msg, sizeof(msg), fmt, arg);
    free(f->message);
    f->message = strdup(msg);
  }
  return error;
}

void authloop__user_free(authloop_user *u) {
  if (!u)
    return;
  authloop__json_wipe_decref(u->obj);
  authloop__secret_free(u->json);
  free(u);
}

void authloop__session_clear(authloop__session *s) {
  authloop__user_free(s->user);
  authloop__secret_free(s->access_token);
  authloop__secret_free(s->id_token);
  authloop__secret_free(s->refresh_token);
  memset(s, 0, sizeof(*s));
}

static void take(char **dst, char **src) {
  if (!*src)
    return;
  authloop__secret_free(*dst);
  *dst = *src;
  *src = NULL;
}

void authloop__session_merge(authloop__session *dst, authloop__session *src) {
  take(&dst->access_token, &src->access_token);
  take(&dst->id_token, &src->id_token);
  take(&dst->refresh_token, &src->refresh_token);
  if (src->user) {
    authloop__user_free(dst->user);
    dst->user = src->user;
    src->user = NULL;
  }
  if (src->expires_in)
    dst->expires_in = src->expires_in;
  src->expires_in = 0;
}

int authloop__is_transient(int error) {
  return error == AUTHLOOP_ENETWORK || error == AUTHLOOP_ETIMEDOUT ||
         error == AUTHLOOP_EUNAVAILABLE;
}

void authloop__failure_clear(authloop__failure *f) {
  free(f->message);
  free(f->server_code);
  memset(f, 0, sizeof(*f));
}

int authloop__failure_from_req(const authloop__req *req, authloop__failure *f) {
  char msg[CURL_ERROR_SIZE + 128];
  memset(f, 0, sizeof(*f));
  f->error = req->error;
  if (req->errbuf[0] && req->error != AUTHLOOP_ECANCELED) {
    snprintf(msg, sizeof(msg), "%s: %s", authloop_strerror(req->error), req->errbuf);
    f->message = strdup(msg);
  }
  return f->error;
}

const authloop__provider *authloop__provider_find(const char *name) {
  static const authloop__provider *const all[] = {
      &authloop__provider_gateway, &authloop__provider_kuzzle, &authloop__provider_cometchat};
  size_t i;
  for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    if (strcmp(all[i]->name, name) == 0)
      return all[i];
  return NULL;
}

/* ---- URL policy ---------------------------------------------------------------- */

static int is_loopback(const char *host) {
  unsigned char a[16];
  char v6[64];
  size_t n = strlen(host);
  if (strcmp(host, "localhost") == 0)
    return 1;
  if (inet_pton(AF_INET, host, a) == 1)
    return a[0] == 127;
  if (n > 2 && n < sizeof(v6) && host[0] == '[' && host[n - 1] == ']') {
    memcpy(v6, host + 1, n - 2);
    v6[n - 2] = '\0';
    return inet_pton(AF_INET6, v6, a) == 1 &&
           memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
  }
  return 0;
}

int authloop__check_base_url(const char *base_url, int allow_insecure) {
  CURLU *u;
  char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL;
  int rc = AUTHLOOP_EINVAL;
  if (!base_url || !*base_url || authloop__has_space(base_url))
    return AUTHLOOP_EINVAL;
  if (!(u = curl_url()))
    return AUTHLOOP_ENOMEM;
  if (curl_url_set(u, CURLUPART_URL, base_url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY &&
      curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_NO_FRAGMENT) {
    if (strcmp(scheme, "https") == 0)
      rc = 0;
    else if (strcmp(scheme, "http") == 0)
      rc = allow_insecure || is_loopback(host) ? 0 : AUTHLOOP_EINSECURE;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(query);
  curl_free(fragment);
  curl_url_cleanup(u);
  return rc;
}

static int valid_path(const char *p) { return !p || (p[0] == '/' && !authloop__has_space(p)); }

static char *join_url(const char *base, const char *path) {
  size_t b = strlen(base), n;
  char *s;
  while (b && base[b - 1] == '/')
    b--;
  n = b + strlen(path) + 1;
  if ((s = malloc(n)))
    snprintf(s, n, "%.*s%s", (int)b, base, path);
  return s;
}

/* ---- lifecycle ------------------------------------------------------------------- */

/* CometChat's hosts: https://{app}.apiclient-{region}.cometchat.io/v3.0 and
 * https://{app}.api-{region}.cometchat.io/v3.0, unless overridden. Without an
 * app id the client is "not initialised": logins fail with ENOTINIT. */
static int cometchat_urls(const authloop_client_options *o, char client[256], char admin[256]) {
  const char *region = o->region ? o->region : "us";
  size_t i;
  if (o->app_id) {
    for (i = 0; o->app_id[i]; i++)
      if (!isalnum((unsigned char)o->app_id[i]))
        return AUTHLOOP_EINVAL;
    for (i = 0; region[i]; i++)
      if (!isalnum((unsigned char)region[i]))
        return AUTHLOOP_EINVAL;
    if (!*o->app_id || !*region || strlen(o->app_id) > 64 || strlen(region) > 16)
      return AUTHLOOP_EINVAL;
  }
  if (o->base_url)
    snprintf(client, 256, "%s", o->base_url);
  else
    snprintf(client, 256, "https://%s.apiclient-%s.cometchat.io/v3.0",
             o->app_id ? o->app_id : "uninitialised", region);
  if (o->admin_url)
    snprintf(admin, 256, "%s", o->admin_url);
  else
    snprintf(admin, 256, "https://%s.api-%s.cometchat.io/v3.0",
             o->app_id ? o->app_id : "uninitialised", region);
  return strlen(client) < 255 && strlen(admin) < 255 ? 0 : AUTHLOOP_EINVAL;
}

/* A random device id, as CometChat's SDK keeps one per install. */
static void device_id(authloop_ctx *ctx, char out[33]) {
  unsigned char raw[16];
  size_t i;
  authloop__random(&ctx->rng, raw, sizeof(raw));
  for (i = 0; i < 16; i++)
    snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

int authloop_client_new(authloop_ctx *ctx, const authloop_client_options *opts,
                        authloop_client **out) {
  const authloop__provider *p;
  authloop_client *c;
  char client_url[256], admin_url[256] = "";
  const char *base;
  int rc, failed = 0;
  if (!out)
    return AUTHLOOP_EINVAL;
  *out = NULL;
  if (!ctx || !opts || !opts->provider)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(ctx);
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (!(p = authloop__provider_find(opts->provider)))
    return AUTHLOOP_ENOPROVIDER;
  base = opts->base_url;
  if (p == &authloop__provider_cometchat) {
    if ((rc = cometchat_urls(opts, client_url, admin_url)) != 0)
      return rc;
    base = client_url;
  }
  if ((rc = authloop__check_base_url(base, opts->allow_insecure_http)) != 0 ||
      (*admin_url && (rc = authloop__check_base_url(admin_url, opts->allow_insecure_http)) != 0))
    return rc;
  if (!valid_path(opts->login_path) || !valid_path(opts->logout_path) ||
      !valid_path(opts->refresh_path) || (opts->session_path && !*opts->session_path) ||
      (opts->session_key && !opts->session_path))
    return AUTHLOOP_EINVAL;
  if (!(c = calloc(1, sizeof(*c))))
    return AUTHLOOP_ENOMEM;
  c->ctx = ctx;
  c->provider = p;
  c->heap_index = AUTHLOOP__NOT_SCHEDULED;
  authloop__list_init(&c->reqs);
  authloop__list_init(&c->refresh_waiters);
  authloop__list_init(&c->calls);
  authloop__list_init(&c->link);
  c->margin_ms = (opts->refresh_margin_s ? opts->refresh_margin_s : 300) * 1000ull;
  c->timing.idle_ms = (opts->idle_window_s ? opts->idle_window_s : 3600) * 1000ull;
  c->retry_base_ms = opts->retry_base_ms ? opts->retry_base_ms : 1000;
  c->retry_cap_ms = opts->retry_cap_ms ? opts->retry_cap_ms : 60000;
  if (c->retry_cap_ms < c->retry_base_ms)
    c->retry_cap_ms = c->retry_base_ms;
  c->base_url = join_url(base, "");
  c->login_url = join_url(base, opts->login_path ? opts->login_path : p->login_path);
  c->logout_url = join_url(base, opts->logout_path ? opts->logout_path : p->logout_path);
  c->refresh_url = join_url(base, opts->refresh_path ? opts->refresh_path : p->refresh_path);
  if (*admin_url && !(c->admin_url = join_url(admin_url, "")))
    failed = 1;
  if (opts->app_id && !(c->app_id = strdup(opts->app_id)))
    failed = 1;
  device_id(ctx, c->device_id);
  c->session_path = opts->session_path ? strdup(opts->session_path) : NULL;
  if (opts->session_key) {
    memcpy(c->session_key, opts->session_key, sizeof(c->session_key));
    c->has_session_key = 1;
  }
  if (failed || !c->base_url || !c->login_url || !c->logout_url || !c->refresh_url ||
      (opts->session_path && !c->session_path)) {
    authloop__client_destroy(c);
    return AUTHLOOP_ENOMEM;
  }
  authloop__list_push(&ctx->clients, &c->link);
  if (c->session_path)
    authloop__store_load(c); /* a bad file is logged and ignored */
  *out = c;
  return 0;
}

static void client_abort_requests(authloop_client *c) {
  while (!authloop__list_empty(&c->reqs))
    authloop__req_free(AUTHLOOP__CONTAINER_OF(c->reqs.next, authloop__req, owner_link));
  c->login_req = c->refresh_req = NULL;
}

void authloop__client_destroy(authloop_client *c) {
  authloop__session_abort(c, 0, 0);
  client_abort_requests(c);
  authloop__events_drop(c, 1);
  authloop__list_remove(&c->link);
  authloop__session_clear(&c->session);
  authloop__session_clear(&c->pending);
  authloop__login_args_clear(&c->login);
  authloop__listeners_free(&c->listeners);
  free(c->admin_url);
  free(c->app_id);
  mbedtls_platform_zeroize(c->session_key, sizeof(c->session_key));
  free(c->session_path);
  free(c->base_url);
  free(c->login_url);
  free(c->logout_url);
  free(c->refresh_url);
  free(c);
}

void authloop_client_free(authloop_client *c) {
  if (!c || c->free_requested)
    return;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  c->free_requested = 1;
  /* No event fires for a freed client; the callbacks of its pending
   * authloop_refresh/request calls run once with ECANCELED, and the memory
   * goes when the last of them (or the running handler) has returned. */
  authloop__session_abort(c, 1, AUTHLOOP_ECANCELED); /* first: it owns the refresh request */
  client_abort_requests(c);
  authloop__events_drop(c, 0);
  if (!c->in_callback && !c->pending_callbacks)
    authloop__client_destroy(c);
}

authloop_ctx *authloop_client_ctx(const authloop_client *c) { return c ? c->ctx : NULL; }
authloop_state authloop_client_state(const authloop_client *c) {
  return c ? c->state : AUTHLOOP_STATE_LOGGED_OUT;
}

/* ---- state machine ---------------------------------------------------------------- */

void authloop__set_state(authloop_client *c, authloop_state s) {
  authloop_event ev = {0};
  if (c->state == s)
    return;
  ev.type = AUTHLOOP_EV_STATE_CHANGED;
  ev.old_state = c->state;
  ev.new_state = s;
  c->state = s;
  authloop__emit(c, &ev);
}

static void emit_outcome(authloop_client *c, authloop_event_type type, const authloop__failure *f) {
  authloop_event ev = {0};
  ev.type = type;
  ev.success = f == NULL;
  if (f) {
    ev.error = f->error;
    ev.http_status = (int)f->http_status;
    ev.message = f->message ? f->message : authloop_strerror(f->error);
    ev.server_code = f->server_code;
  }
  authloop__emit(c, &ev);
}

static void login_failed(authloop_client *c, authloop__failure *f) {
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "login failed: %s (HTTP %ld, server code %s)",
                authloop_err_name(f->error), f->http_status,
                f->server_code ? f->server_code : "none");
  authloop__session_clear(&c->pending);
  authloop__login_args_clear(&c->login);
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_OUT);
  emit_outcome(c, AUTHLOOP_EV_LOGIN_ATTEMPT, f);
}

static int send_login_step(authloop_client *c);

static void on_login_done(authloop__req *req, void *userdata) {
  authloop_client *c = userdata;
  authloop__failure f = {0};
  int rc;
  c->login_req = NULL;
  if (req->error)
    rc = authloop__failure_from_req(req, &f);
  else
    rc = c->provider->login_response(c, c->login_step, req, &c->pending, &f);
  if (rc == AUTHLOOP__MORE) {
    c->login_step++;
    if ((rc = send_login_step(c)) == 0)
      return;
    f.error = rc;
  }
  if (rc == AUTHLOOP__AWAIT) {
    /* a two-step strategy: no loginAttempt until authloop_set_token() */
    authloop__set_state(c, AUTHLOOP_STATE_AWAITING_TOKEN);
    return;
  }
  if (rc == 0) {
    uint64_t now = authloop__boot_ms();
    c->session = c->pending;
    memset(&c->pending, 0, sizeof(c->pending));
    /* what only the login needed goes; expires_in and uid stay for refreshes */
    authloop__secret_free(c->login.code);
    authloop__secret_free(c->login.credentials);
    authloop__secret_free(c->login.auth_key);
    authloop__secret_free(c->login.token);
    c->login.code = c->login.credentials = c->login.auth_key = c->login.token = NULL;
    authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "login succeeded (token lifetime %ld s)",
                  c->session.expires_in);
    authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
    emit_outcome(c, AUTHLOOP_EV_LOGIN_ATTEMPT, NULL);
    c->timing.last_activity = now; /* logging in is activity */
    authloop__session_started(c, now, 1);
    return;
  }
  login_failed(c, &f);
  authloop__failure_clear(&f);
}

static int send_login_step(authloop_client *c) {
  authloop__req *req;
  int rc = c->provider->login_request(c, c->login_step, &req);
  if (rc)
    return rc;
  if ((rc = authloop__req_start(req, on_login_done, c)) != 0) {
    authloop__req_free(req);
    return rc;
  }
  authloop__list_push(&c->reqs, &req->owner_link);
  c->login_req = req;
  return 0;
}

/* Checks shared by every login call, in CometChat's order. */
static int login_precheck(const authloop_client *c) {
  if (!c)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  if (c->free_requested)
    return AUTHLOOP_EINVAL;
  if (c->ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (c->state == AUTHLOOP_STATE_LOGGING_IN || c->state == AUTHLOOP_STATE_AWAITING_TOKEN)
    return AUTHLOOP_ELOGININPROGRESS;
  if (c->state == AUTHLOOP_STATE_LOGGED_IN || c->state == AUTHLOOP_STATE_REFRESHING)
    return AUTHLOOP_EALREADY;
  return 0;
}

/* The last checks, then step `step` of the dialect's login. */
static int start_login(authloop_client *c, const char *provider, int step) {
  int rc;
  if (strcmp(c->provider->name, provider) != 0)
    return AUTHLOOP_EWRONGPROVIDER;
  if (!authloop__ctx_online(c->ctx))
    return AUTHLOOP_EOFFLINE; /* never queued */
  authloop__session_clear(&c->pending);
  c->login_step = step;
  if ((rc = send_login_step(c)) != 0)
    return rc;
  authloop__set_state(c, AUTHLOOP_STATE_LOGGING_IN);
  return 0;
}

static int keep(char **dst, const char *src) {
  authloop__secret_free(*dst);
  *dst = NULL;
  if (src && !(*dst = authloop__secret_dup(src)))
    return AUTHLOOP_ENOMEM;
  return 0;
}

/* A login call failed at once: nothing it kept stays. */
static int refused(authloop_client *c, int rc) {
  if (c && rc)
    authloop__login_args_clear(&c->login);
  return rc;
}

int authloop_login_code(authloop_client *c, const char *authorization_code) {
  int rc = login_precheck(c);
  if (rc)
    return rc;
  if (!authorization_code || !*authorization_code || authloop__has_space(authorization_code))
    return AUTHLOOP_EINVAL;
  authloop__login_args_clear(&c->login);
  if ((rc = keep(&c->login.code, authorization_code)) != 0)
    return refused(c, rc);
  return refused(c, start_login(c, "gateway", 0));
}

/* validate: credentials_json comes from the application and must be checked */
static int login_strategy(authloop_client *c, const char *strategy, const char *credentials_json,
                          const char *expires_in, int validate) {
  json_t *check;
  int rc = login_precheck(c);
  if (rc)
    return rc;
  if (!strategy || !*strategy || authloop__has_space(strategy) || !credentials_json ||
      (expires_in && (!*expires_in || strlen(expires_in) > 32)))
    return AUTHLOOP_EINVAL;
  if (validate) {
    check =
        json_loads(credentials_json, 0, NULL); /* not inside json_is_object(): evaluated twice */
    if (!json_is_object(check)) {
      authloop__json_wipe_decref(check);
      return AUTHLOOP_EINVAL;
    }
    authloop__json_wipe_decref(check);
  }
  authloop__login_args_clear(&c->login);
  if ((rc = keep(&c->login.strategy, strategy)) ||
      (rc = keep(&c->login.credentials, credentials_json)) ||
      (rc = keep(&c->login.expires_in, expires_in)))
    return refused(c, rc);
  return refused(c, start_login(c, "kuzzle", 0));
}

int authloop_login_strategy(authloop_client *c, const char *strategy, const char *credentials_json,
                            const char *expires_in) {
  return login_strategy(c, strategy, credentials_json, expires_in, 1);
}

int authloop_login_local(authloop_client *c, const char *username, const char *password,
                         const char *expires_in) {
  json_t *creds;
  char *text;
  int rc = login_precheck(c);
  if (rc)
    return rc;
  if (!username || !*username || !password)
    return AUTHLOOP_EINVAL;
  if (!(creds = json_pack("{s:s, s:s}", "username", username, "password", password)))
    return AUTHLOOP_ENOMEM;
  text = json_dumps(creds, JSON_COMPACT | JSON_PRESERVE_ORDER);
  authloop__json_wipe_decref(creds);
  if (!text)
    return AUTHLOOP_ENOMEM;
  rc = login_strategy(c, "local", text, expires_in, 0); /* built here: no need to re-check */
  authloop__secret_free(text);
  return rc;
}

int authloop_set_token(authloop_client *c, const char *token) {
  int rc;
  if ((rc = authloop__client_usable(c)) != 0)
    return rc;
  if (!token || !*token)
    return AUTHLOOP_EBLANKAUTHTOKEN;
  if (authloop__has_space(token))
    return AUTHLOOP_EAUTHTOKENSPACE;
  if (c->state != AUTHLOOP_STATE_AWAITING_TOKEN)
    return c->state == AUTHLOOP_STATE_LOGGING_IN ? AUTHLOOP_ELOGININPROGRESS : AUTHLOOP_EINVAL;
  if ((rc = keep(&c->login.token, token)) != 0)
    return rc;
  if (!authloop__ctx_online(c->ctx))
    return AUTHLOOP_EOFFLINE;
  c->login_step = AUTHLOOP__KUZZLE_CHECK_STEP;
  if ((rc = send_login_step(c)) != 0)
    return rc;
  authloop__set_state(c, AUTHLOOP_STATE_LOGGING_IN);
  return 0;
}

/* "uid" is trimmed first, as CometChat does. */
static char *trimmed(const char *s) {
  size_t n;
  char *t;
  while (*s && isspace((unsigned char)*s))
    s++;
  n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1]))
    n--;
  if ((t = malloc(n + 1))) {
    memcpy(t, s, n);
    t[n] = '\0';
  }
  return t;
}

/* CometChat's validation, in its order: in progress, uid, auth key / token,
 * initialised. */
int authloop_login_key(authloop_client *c, const char *uid, const char *auth_key) {
  char *u;
  int rc = login_precheck(c);
  if (rc)
    return rc;
  if (!uid)
    return AUTHLOOP_EINVALIDUID;
  if (!(u = trimmed(uid)))
    return AUTHLOOP_ENOMEM;
  if (!*u || strlen(u) > 100)
    rc = AUTHLOOP_EINVALIDUID;
  else if (authloop__has_space(u))
    rc = AUTHLOOP_EUIDSPACE;
  else if (!auth_key || !*auth_key)
    rc = AUTHLOOP_EAPIKEY;
  else if (!c->app_id && strcmp(c->provider->name, "cometchat") == 0)
    rc = AUTHLOOP_ENOTINIT;
  if (rc) {
    free(u);
    return rc;
  }
  authloop__login_args_clear(&c->login);
  c->login.uid = u;
  if ((rc = keep(&c->login.auth_key, auth_key)) != 0)
    return refused(c, rc);
  return refused(c, start_login(c, "cometchat", 0));
}

int authloop_login_token(authloop_client *c, const char *auth_token) {
  int rc = login_precheck(c);
  if (rc)
    return rc;
  if (!auth_token || !*auth_token)
    return AUTHLOOP_EBLANKAUTHTOKEN;
  if (authloop__has_space(auth_token))
    return AUTHLOOP_EAUTHTOKENSPACE;
  if (!c->app_id && strcmp(c->provider->name, "cometchat") == 0)
    return AUTHLOOP_ENOTINIT;
  authloop__login_args_clear(&c->login);
  if ((rc = keep(&c->login.token, auth_token)) != 0)
    return refused(c, rc);
  return refused(c, start_login(c, "cometchat", 1));
}

static void on_logout_done(authloop__req *req, void *userdata) {
  authloop_client *c = userdata;
  authloop__failure f = {0};
  int rc;
  if (req->error)
    rc = authloop__failure_from_req(req, &f);
  else
    rc = c->provider->logout_response(c, req, &f);
  emit_outcome(c, AUTHLOOP_EV_LOGOUT, rc ? &f : NULL);
  authloop__failure_clear(&f);
}

/* The session goes locally: tokens wiped, file deleted, state LOGGED_OUT. */
static void clear_locally(authloop_client *c) {
  uint64_t idle_ms = c->timing.idle_ms;
  authloop__session_abort(c, 1, AUTHLOOP_ECANCELED);
  authloop__session_clear(&c->session);
  authloop__login_args_clear(&c->login);
  memset(&c->timing, 0, sizeof(c->timing));
  c->timing.idle_ms = idle_ms;
  authloop__store_delete(c);
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_OUT);
}

int authloop__client_usable(const authloop_client *c) {
  if (!c || c->free_requested)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  return c->ctx->closing ? AUTHLOOP_ECLOSING : 0;
}

void authloop__logout_locally(authloop_client *c, const authloop__failure *why) {
  clear_locally(c);
  emit_outcome(c, AUTHLOOP_EV_LOGOUT, why);
}

static int logout(authloop_client *c, int global) {
  authloop__req *req = NULL;
  int rc;
  if ((rc = authloop__client_usable(c)) != 0)
    return rc;
  if (!authloop_is_logged_in(c))
    return AUTHLOOP_ENOTLOGGEDIN;
  rc = c->provider->logout_request(c, global, &req);
  if (rc == 0 && (rc = authloop__req_start(req, on_logout_done, c)) != 0)
    authloop__req_free(req);
  /* local state goes whatever the server will say */
  clear_locally(c);
  if (rc) {
    authloop__failure f = {0};
    f.error = rc;
    emit_outcome(c, AUTHLOOP_EV_LOGOUT, &f);
  } else {
    authloop__list_push(&c->reqs, &req->owner_link);
  }
  return 0;
}

int authloop_logout(authloop_client *c) { return logout(c, 0); }
int authloop_logout_global(authloop_client *c) { return logout(c, 1); }

/* ---- queries ------------------------------------------------------------------------ */

int authloop_is_logged_in(const authloop_client *c) {
  return c && (c->state == AUTHLOOP_STATE_LOGGED_IN || c->state == AUTHLOOP_STATE_REFRESHING);
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
  return authloop_is_logged_in(c) ? c->session.expires_in : 0;
}

const char *authloop_user_field(const authloop_user *u, const char *key) {
  return u && key ? json_string_value(json_object_get(u->obj, key)) : NULL;
}

const char *authloop_user_id(const authloop_user *u) { return u ? u->id : NULL; }
const char *authloop_user_name(const authloop_user *u) { return u ? u->name : NULL; }
const char *authloop_user_json(const authloop_user *u) { return u ? u->json : NULL; }
