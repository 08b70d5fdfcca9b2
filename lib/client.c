/* The session state machine and the client's public API. Every state change
 * goes through set_state(), which emits stateChanged. */
#include "internal.h"

#include <arpa/inet.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"LOGGED_OUT", "LOGGING_IN", "LOGGED_IN", "REFRESHING",
                                          "EXPIRED"};

const char *authloop_state_name(authloop_state s) {
  return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "UNKNOWN";
}

/* ---- session data ------------------------------------------------------------ */

int authloop__user_new(json_t *obj, authloop_user **out) {
  authloop_user *u = calloc(1, sizeof(*u));
  if (!u || !(u->json = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
    free(u);
    json_decref(obj);
    return AUTHLOOP_ENOMEM;
  }
  u->obj = obj;
  *out = u;
  return 0;
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
  static const authloop__provider *const all[] = {&authloop__provider_gateway};
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

int authloop_client_new(authloop_ctx *ctx, const authloop_client_options *opts,
                        authloop_client **out) {
  const authloop__provider *p;
  authloop_client *c;
  int rc;
  if (!out)
    return AUTHLOOP_EINVAL;
  *out = NULL;
  if (!ctx || !opts || !opts->provider)
    return AUTHLOOP_EINVAL;
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (!(p = authloop__provider_find(opts->provider)))
    return AUTHLOOP_ENOPROVIDER;
  if ((rc = authloop__check_base_url(opts->base_url, opts->allow_insecure_http)) != 0)
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
  c->base_url = join_url(opts->base_url, "");
  c->login_url = join_url(opts->base_url, opts->login_path ? opts->login_path : p->login_path);
  c->logout_url = join_url(opts->base_url, opts->logout_path ? opts->logout_path : p->logout_path);
  c->refresh_url =
      join_url(opts->base_url, opts->refresh_path ? opts->refresh_path : p->refresh_path);
  c->session_path = opts->session_path ? strdup(opts->session_path) : NULL;
  if (opts->session_key) {
    memcpy(c->session_key, opts->session_key, sizeof(c->session_key));
    c->has_session_key = 1;
  }
  if (!c->base_url || !c->login_url || !c->logout_url || !c->refresh_url ||
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
  c->login_req = NULL;
}

void authloop__client_destroy(authloop_client *c) {
  authloop__session_abort(c, 0, 0);
  client_abort_requests(c);
  authloop__events_drop(c, 1);
  authloop__list_remove(&c->link);
  authloop__session_clear(&c->session);
  authloop__listeners_free(&c->listeners);
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
  c->free_requested = 1;
  /* No event fires for a freed client; the callbacks of its pending
   * authloop_refresh/request calls run once with ECANCELED, and the memory
   * goes when the last of them (or the running handler) has returned. */
  client_abort_requests(c);
  authloop__session_abort(c, 1, AUTHLOOP_ECANCELED);
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

static void on_login_done(authloop__req *req, void *userdata) {
  authloop_client *c = userdata;
  authloop__failure f = {0};
  authloop__session s = {0};
  int rc;
  c->login_req = NULL;
  if (req->error)
    rc = authloop__failure_from_req(req, &f);
  else
    rc = c->provider->parse_login(req->http_status, req->resp.data, req->resp.len, &s, &f);
  if (rc == 0) {
    uint64_t now = authloop__boot_ms();
    c->session = s;
    authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "login succeeded (token lifetime %ld s)",
                  s.expires_in);
    authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
    emit_outcome(c, AUTHLOOP_EV_LOGIN_ATTEMPT, NULL);
    c->timing.last_activity = now; /* logging in is activity */
    authloop__session_started(c, now, 1);
    return;
  }
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "login failed: %s (HTTP %ld, server code %s)",
                authloop_err_name(rc), f.http_status, f.server_code ? f.server_code : "none");
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_OUT);
  emit_outcome(c, AUTHLOOP_EV_LOGIN_ATTEMPT, &f);
  authloop__failure_clear(&f);
}

/* Checks shared by every login call, in CometChat's order. */
static int login_precheck(const authloop_client *c) {
  if (!c)
    return AUTHLOOP_EINVAL;
  if (c->free_requested)
    return AUTHLOOP_EINVAL;
  if (c->ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (c->state == AUTHLOOP_STATE_LOGGING_IN)
    return AUTHLOOP_ELOGININPROGRESS;
  if (c->state == AUTHLOOP_STATE_LOGGED_IN || c->state == AUTHLOOP_STATE_REFRESHING)
    return AUTHLOOP_EALREADY;
  if (!authloop__ctx_online(c->ctx))
    return AUTHLOOP_EOFFLINE; /* never queued */
  return 0;
}

static int start_login(authloop_client *c, const json_t *body) {
  authloop__req *req;
  int rc = authloop__req_new(c->ctx, "POST", c->login_url, &req);
  if (rc)
    return rc;
  if ((rc = authloop__req_set_json(req, body)) ||
      (rc = authloop__req_start(req, on_login_done, c))) {
    authloop__req_free(req);
    return rc;
  }
  authloop__list_push(&c->reqs, &req->owner_link);
  c->login_req = req;
  authloop__set_state(c, AUTHLOOP_STATE_LOGGING_IN);
  return 0;
}

int authloop_login_code(authloop_client *c, const char *authorization_code) {
  json_t *body;
  int rc = login_precheck(c);
  if (rc)
    return rc;
  if (!authorization_code || !*authorization_code || authloop__has_space(authorization_code))
    return AUTHLOOP_EINVAL;
  if (!c->provider->login_code_body)
    return AUTHLOOP_EINVAL;
  if (!(body = c->provider->login_code_body(authorization_code)))
    return AUTHLOOP_ENOMEM;
  rc = start_login(c, body);
  authloop__json_wipe_decref(body);
  return rc;
}

static void on_logout_done(authloop__req *req, void *userdata) {
  authloop_client *c = userdata;
  authloop__failure f = {0};
  int rc;
  if (req->error)
    rc = authloop__failure_from_req(req, &f);
  else
    rc = c->provider->parse_logout(req->http_status, req->resp.data, req->resp.len, &f);
  emit_outcome(c, AUTHLOOP_EV_LOGOUT, rc ? &f : NULL);
  authloop__failure_clear(&f);
}

int authloop_logout(authloop_client *c) {
  authloop__req *req = NULL;
  uint64_t idle_ms;
  int rc;
  if (!c || c->free_requested)
    return AUTHLOOP_EINVAL;
  idle_ms = c->timing.idle_ms;
  if (c->ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (!authloop_is_logged_in(c))
    return AUTHLOOP_ENOTLOGGEDIN;
  rc = authloop__req_new(c->ctx, "POST", c->logout_url, &req);
  if (!rc && !(rc = c->provider->authorize(req, &c->session)))
    rc = authloop__req_start(req, on_logout_done, c);
  /* local state goes whatever the server will say */
  authloop__session_abort(c, 1, AUTHLOOP_ECANCELED);
  authloop__session_clear(&c->session);
  memset(&c->timing, 0, sizeof(c->timing));
  c->timing.idle_ms = idle_ms;
  authloop__store_delete(c);
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_OUT);
  if (rc) {
    authloop__failure f = {0};
    authloop__req_free(req);
    f.error = rc;
    emit_outcome(c, AUTHLOOP_EV_LOGOUT, &f);
  } else {
    authloop__list_push(&c->reqs, &req->owner_link);
  }
  return 0;
}

/* ---- queries ------------------------------------------------------------------------ */

int authloop_is_logged_in(const authloop_client *c) {
  return c && (c->state == AUTHLOOP_STATE_LOGGED_IN || c->state == AUTHLOOP_STATE_REFRESHING);
}

long long authloop_token_expires_in_ms(const authloop_client *c) {
  uint64_t now;
  if (!authloop_is_logged_in(c))
    return 0;
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

const char *authloop_user_id(const authloop_user *u) { return authloop_user_field(u, "id"); }
const char *authloop_user_name(const authloop_user *u) { return authloop_user_field(u, "name"); }
const char *authloop_user_json(const authloop_user *u) { return u ? u->json : NULL; }
