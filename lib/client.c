/* The session state machine and the client's public API. Every state change
 * goes through set_state(), which emits stateChanged. */
#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"LOGGED_OUT", "LOGGING_IN", "LOGGED_IN"};

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
  if (!valid_path(opts->login_path) || !valid_path(opts->logout_path))
    return AUTHLOOP_EINVAL;
  if (!(c = calloc(1, sizeof(*c))))
    return AUTHLOOP_ENOMEM;
  c->ctx = ctx;
  c->provider = p;
  authloop__list_init(&c->reqs);
  c->login_url = join_url(opts->base_url, opts->login_path ? opts->login_path : p->login_path);
  c->logout_url = join_url(opts->base_url, opts->logout_path ? opts->logout_path : p->logout_path);
  if (!c->login_url || !c->logout_url) {
    free(c->login_url);
    free(c->logout_url);
    free(c);
    return AUTHLOOP_ENOMEM;
  }
  authloop__list_push(&ctx->clients, &c->link);
  *out = c;
  return 0;
}

static void client_abort_requests(authloop_client *c) {
  while (!authloop__list_empty(&c->reqs))
    authloop__req_free(AUTHLOOP__CONTAINER_OF(c->reqs.next, authloop__req, owner_link));
  c->login_req = NULL;
}

void authloop__client_destroy(authloop_client *c) {
  client_abort_requests(c);
  authloop__events_drop(c);
  authloop__list_remove(&c->link);
  authloop__session_clear(&c->session);
  authloop__listeners_free(&c->listeners);
  free(c->login_url);
  free(c->logout_url);
  free(c);
}

void authloop_client_free(authloop_client *c) {
  if (!c || c->free_requested)
    return;
  c->free_requested = 1;
  if (c->in_callback) {
    /* inside one of its own handlers: nothing more may fire, memory goes
     * when the handler returns */
    client_abort_requests(c);
    authloop__events_drop(c);
    return;
  }
  authloop__client_destroy(c);
}

authloop_ctx *authloop_client_ctx(const authloop_client *c) { return c ? c->ctx : NULL; }
authloop_state authloop_client_state(const authloop_client *c) {
  return c ? c->state : AUTHLOOP_STATE_LOGGED_OUT;
}

/* ---- state machine ---------------------------------------------------------------- */

static void set_state(authloop_client *c, authloop_state s) {
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
    c->session = s;
    authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "login succeeded (token lifetime %ld s)",
                  s.expires_in);
    set_state(c, AUTHLOOP_STATE_LOGGED_IN);
    emit_outcome(c, AUTHLOOP_EV_LOGIN_ATTEMPT, NULL);
    return;
  }
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "login failed: %s (HTTP %ld, server code %s)",
                authloop_err_name(rc), f.http_status, f.server_code ? f.server_code : "none");
  set_state(c, AUTHLOOP_STATE_LOGGED_OUT);
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
  if (c->state == AUTHLOOP_STATE_LOGGED_IN)
    return AUTHLOOP_EALREADY;
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
  set_state(c, AUTHLOOP_STATE_LOGGING_IN);
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
  int rc;
  if (!c || c->free_requested)
    return AUTHLOOP_EINVAL;
  if (c->ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (c->state != AUTHLOOP_STATE_LOGGED_IN)
    return AUTHLOOP_ENOTLOGGEDIN;
  rc = authloop__req_new(c->ctx, "POST", c->logout_url, &req);
  if (!rc && !(rc = authloop__req_set_bearer(req, c->session.access_token)))
    rc = authloop__req_start(req, on_logout_done, c);
  /* local state goes whatever the server will say */
  authloop__session_clear(&c->session);
  set_state(c, AUTHLOOP_STATE_LOGGED_OUT);
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
  return c && c->state == AUTHLOOP_STATE_LOGGED_IN;
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
