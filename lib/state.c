/* SPDX-License-Identifier: MIT */
/* The client's state and what tells of it: references and destruction,
 * the session data (user objects, merging results, checking them), state
 * changes, listeners, and the events and callbacks queued for the
 * application. The bottom of the session engine: it calls nothing of the
 * engine above it (lib/session.c, lib/client.c).
 *
 * Events and callbacks are entries on the ctx's deferred-call queue
 * (lib/dispatch.h); each holds a reference on its client, so a handler may
 * free the client (or close the ctx) and the memory stays until the entry is
 * done. Events are not delivered to a client the application has freed;
 * done and response callbacks always run, once. */
#include "engine.h"

#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

/* ---- session data ------------------------------------------------------------ */

int authloop__user_new(authloop__result *r, authloop_user **out) {
  authloop_user *u = calloc(1, sizeof(*u));
  if (!u)
    return AUTHLOOP_ENOMEM;
  u->json = r->user;
  u->id = r->user_id;
  u->name = r->user_name;
  r->user = r->user_id = r->user_name = NULL;
  *out = u;
  return 0;
}

int authloop__result_user_json(const authloop__provider *p, authloop__result *r, const char *json) {
  authloop__jdoc d;
  const char *id, *name;
  int rc = authloop__jdoc_parse(&d, json, strlen(json));
  if (rc == 0 && (!authloop__jis(&d, 0, AUTHLOOP__J_OBJECT) || p->user_fields(&d, 0, &id, &name)))
    rc = AUTHLOOP_EPROTO;
  if (rc == 0)
    rc = authloop__result_user(r, &d, 0, id, name);
  authloop__jdoc_free(&d);
  return rc;
}

void authloop__user_free(authloop_user *u) {
  if (!u)
    return;
  authloop__secret_free(u->json);
  free(u->id);
  free(u->name);
  if (u->doc) {
    authloop__jdoc_free(u->doc);
    free(u->doc);
  }
  free(u);
}

void authloop__session_clear(authloop__session *s) {
  authloop__user_free(s->user);
  authloop__secret_free(s->access_token);
  authloop__secret_free(s->id_token);
  authloop__secret_free(s->refresh_token);
  memset(s, 0, sizeof(*s));
}

void authloop__view_of(const authloop_client *c, const authloop__session *s, authloop__view *v) {
  (void)c;
  v->access_token = s->access_token;
  v->id_token = s->id_token;
  v->refresh_token = s->refresh_token;
  v->user_json = s->user ? s->user->json : NULL;
  v->now_wall_ms = (long long)authloop__wall_ms();
  v->now_ms = (long long)authloop__boot_ms();
}

static int token_ok(const char *t) { return !t || authloop__header_value_ok(t, strlen(t)); }

int authloop__result_check(const authloop_client *c, authloop__result *r) {
  const char *why = NULL;
  (void)c; /* the dialect read the user already */
  if (r->error)
    return r->error;
  if (!token_ok(r->access_token) || !token_ok(r->id_token) || !token_ok(r->refresh_token))
    why = "a token holds a control character and could not be sent";
  else if (r->user && !r->user_id)
    why = "the user object has no id";
  else if (r->lifetime_s != AUTHLOOP__LIFETIME_UNSET && r->lifetime_s != AUTHLOOP__LIFETIME_NEVER &&
           (r->lifetime_s < 0 || (uint64_t)r->lifetime_s > AUTHLOOP__MAX_LIFETIME_MS / 1000))
    why = "the token lifetime is out of range";
  if (!why)
    return 0;
  authloop__result_clear(r); /* nothing of it is kept */
  return authloop__result_fail(r, AUTHLOOP_EPROTO, 0, "malformed response: %s", why);
}

/* ---- origins: who answers, shared by the clients that use them ----------------------- */

int authloop__origin_get(authloop_ctx *ctx, const char *url, authloop__timer_fn hold_end,
                         authloop__origin **out) {
  authloop__origin *o;
  authloop__link *l;
  char *key;
  int rc = authloop__url_origin(url, &key);
  if (rc)
    return rc;
  for (l = ctx->origins.next; l != &ctx->origins; l = l->next) {
    o = AUTHLOOP__CONTAINER_OF(l, authloop__origin, link);
    if (strcmp(o->key, key) == 0) {
      free(key);
      o->refs++;
      *out = o;
      return 0;
    }
  }
  if (!(o = calloc(1, sizeof(*o)))) {
    free(key);
    return AUTHLOOP_ENOMEM;
  }
  o->ctx = ctx;
  o->key = key;
  o->refs = 1;
  authloop__timer_entry_init(&o->hold_end, hold_end);
  authloop__list_push(&ctx->origins, &o->link);
  *out = o;
  return 0;
}

void authloop__origin_put(authloop__origin *o) {
  if (!o || --o->refs)
    return;
  if (!o->ctx->parts_closing) /* the timer's heap is gone once its handles close */
    authloop__timer_set(&o->ctx->timer, &o->hold_end, AUTHLOOP__NEVER);
  authloop__list_remove(&o->link);
  free(o->key);
  free(o);
}

authloop__origin *authloop__origin_of(const authloop_client *c, const char *base) {
  size_t i;
  for (i = 0; base && i < AUTHLOOP__MAX_BASES && c->bases[i]; i++)
    if (base == c->bases[i] || strcmp(base, c->bases[i]) == 0)
      return c->origins[i];
  return NULL;
}

/* Offline by our own count holds a while after the last network failure of
 * that origin (lib/session.c); then the next request to it is let through as
 * a probe. What the application says holds for every origin. */
int authloop__online(const authloop_ctx *ctx, const authloop__origin *o) {
  return ctx->online_app &&
         (!o || o->failures < AUTHLOOP__OFFLINE_AFTER || authloop__boot_ms() >= o->offline_until);
}

/* ---- references, life and death ------------------------------------------------------ */

void authloop__forget_prompt(authloop_client *c) {
  if (!c->prompt)
    return;
  authloop__retire_text(c->ctx, (char *)c->prompt->verification_uri);
  authloop__retire_text(c->ctx, (char *)c->prompt->verification_uri_complete);
  authloop__retire_text(c->ctx, (char *)c->prompt->user_code);
  authloop__retire_block(c->ctx, c->prompt); /* its reader may hold it: as it was */
  c->prompt = NULL;
}

void authloop__shared_put(authloop__shared *s) {
  if (!s || --s->refs)
    return;
  authloop__list_remove(&s->link);
  s->provider->shared_free(s->data);
  free(s->key);
  free(s);
}

void authloop__client_ref(authloop_client *c) { c->refs++; }

static void client_destroy(authloop_client *c) {
  size_t i;
  authloop__list_remove(&c->link);
  for (i = 0; i < AUTHLOOP__MAX_BASES; i++)
    authloop__origin_put(c->origins[i]);
  authloop__session_retire(c->ctx, &c->session);
  authloop__retire_release(c->ctx);
  authloop__timer_set(&c->ctx->timer, &c->wake, AUTHLOOP__NEVER);
  authloop__timer_release(&c->ctx->timer, &c->wake);
  authloop__timer_set(&c->ctx->timer, &c->login_wake, AUTHLOOP__NEVER);
  authloop__timer_release(&c->ctx->timer, &c->login_wake);
  authloop__forget_prompt(c);
  authloop__retire_text(c->ctx, c->end_session_url);
  c->end_session_url = NULL;
  authloop__session_clear(&c->pending);
  authloop__outcome_drop(&c->login_outcome);
  authloop__outcome_drop(&c->await_note);
  authloop__retire_text(c->ctx, c->redirect_url); /* authloop_login_redirect()'s */
  authloop__retire_text(c->ctx, c->redirect_result);
  c->provider->free(c->pstate);
  authloop__shared_put(c->shared); /* after the state that points into it */
  authloop__listeners_free(&c->listeners);
  mbedtls_platform_zeroize(c->session_key, sizeof(c->session_key));
  free(c->session_path);
  free(c->base_url);
  free(c);
}

void authloop__client_unref(authloop_client *c) {
  if (--c->refs == 0)
    client_destroy(c);
}

int authloop__client_usable(const authloop_client *c) {
  if (!c || c->freed)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  return c->ctx->closing ? AUTHLOOP_ECLOSING : 0;
}

int authloop__logged_in(const authloop_client *c) {
  return c->state == AUTHLOOP_STATE_LOGGED_IN || c->state == AUTHLOOP_STATE_REFRESHING;
}

static void queue_event(authloop_client *c, authloop__event_entry *e, const authloop_event *ev);

void authloop__set_state_in(authloop_client *c, authloop_state s, authloop__event_entry **slot) {
  authloop_event ev = {0};
  authloop__event_entry *e = slot && *slot ? *slot : NULL;
  if (slot)
    *slot = NULL;
  if (c->state == s) {
    free(e);
    return;
  }
  ev.type = AUTHLOOP_EV_STATE_CHANGED;
  ev.old_state = c->state;
  ev.new_state = s;
  c->state = s;
  if (e || (!c->freed && (e = authloop__outcome_reserve())))
    queue_event(c, e, &ev); /* a notification that cannot be allocated is lost */
}

void authloop__set_state(authloop_client *c, authloop_state s) {
  authloop__set_state_in(c, s, NULL);
}

/* ---- strings the application may still hold ------------------------------------------------ */

/* The session's strings that queries hand out (tokens, the user) stay valid
 * until control returns to the loop, even when the session changes under
 * them: the old ones are retired into the ctx's graveyard, whose deferred
 * entry frees them (wiped) when the queue next runs. Room in it is reserved
 * when a client is made (RETIRE_RESERVE per client), so that retiring, which
 * happens where nothing can fail, does not allocate; should one turn retire
 * more than that and memory run out, the string is kept (logged), never
 * freed under the application. */
#define RETIRE_RESERVE 12 /* a client's most at its end: 4 session, 4 prompt, 2 redirect, 1 URL */

typedef struct {
  authloop__deferred d;
  authloop_ctx *ctx;
  size_t n, cap, promised; /* promised: RETIRE_RESERVE per live client */
  int queued;
  void **items; /* a secret string, an authloop_user * or a block, told apart by kinds */
  unsigned char *kinds;
} graveyard;

enum { RETIRED_TEXT, RETIRED_USER, RETIRED_BLOCK };

static void run_graveyard(authloop__deferred *d) {
  graveyard *g = AUTHLOOP__CONTAINER_OF(d, graveyard, d);
  size_t i;
  for (i = 0; i < g->n; i++) {
    if (g->kinds[i] == RETIRED_USER)
      authloop__user_free(g->items[i]);
    else if (g->kinds[i] == RETIRED_BLOCK)
      free(g->items[i]);
    else
      authloop__secret_free(g->items[i]);
  }
  g->n = 0;
  g->queued = 0;
}

static int graveyard_grow(graveyard *g, size_t cap) {
  void **items;
  unsigned char *kinds;
  if (cap <= g->cap)
    return 0;
  if (!(items = realloc(g->items, cap * sizeof(*items))))
    return AUTHLOOP_ENOMEM;
  g->items = items;
  if (!(kinds = realloc(g->kinds, cap)))
    return AUTHLOOP_ENOMEM;
  g->kinds = kinds;
  g->cap = cap;
  return 0;
}

int authloop__retire_reserve(authloop_ctx *ctx) {
  graveyard *g = ctx->graveyard;
  if (!g) {
    if (!(g = calloc(1, sizeof(*g))))
      return AUTHLOOP_ENOMEM;
    g->d.run = run_graveyard;
    g->ctx = ctx;
    ctx->graveyard = g;
    ctx->graveyard_free = authloop__graveyard_free;
  }
  if (graveyard_grow(g, g->n + g->promised + RETIRE_RESERVE) != 0)
    return AUTHLOOP_ENOMEM;
  g->promised += RETIRE_RESERVE;
  return 0;
}

void authloop__retire_release(authloop_ctx *ctx) {
  graveyard *g = ctx->graveyard;
  if (g && g->promised >= RETIRE_RESERVE)
    g->promised -= RETIRE_RESERVE;
}

void authloop__graveyard_free(authloop_ctx *ctx) {
  graveyard *g = ctx->graveyard;
  if (!g)
    return;
  run_graveyard(&g->d); /* nothing is left to read them by now */
  free(g->items);
  free(g->kinds);
  free(g);
  ctx->graveyard = NULL;
}

static void retire(authloop_ctx *ctx, void *p, int kind) {
  graveyard *g = ctx->graveyard;
  if (!p)
    return;
  if (!g || (g->n == g->cap && graveyard_grow(g, g->cap ? g->cap * 2 : RETIRE_RESERVE) != 0)) {
    /* past every reservation and out of memory: kept rather than freed under
     * a caller that may still read it (a few bytes, once in a blue moon) */
    authloop__log(ctx, AUTHLOOP_LOG_ERROR, "out of memory: a retired session string is kept");
    return;
  }
  g->items[g->n] = p;
  g->kinds[g->n++] = (unsigned char)kind;
  if (!g->queued) {
    g->queued = 1;
    authloop__defer(&ctx->dispatch, &g->d);
  }
}

void authloop__retire_text(authloop_ctx *ctx, char *p) { retire(ctx, p, RETIRED_TEXT); }

void authloop__retire_block(authloop_ctx *ctx, void *p) { retire(ctx, p, RETIRED_BLOCK); }

void authloop__session_retire(authloop_ctx *ctx, authloop__session *s) {
  retire(ctx, s->access_token, RETIRED_TEXT);
  retire(ctx, s->id_token, RETIRED_TEXT);
  retire(ctx, s->refresh_token, RETIRED_TEXT);
  retire(ctx, s->user, RETIRED_USER);
  memset(s, 0, sizeof(*s));
}

/* The application's session hands out its strings: the old ones retire. */
static void take(authloop_client *c, const authloop__session *s, char **dst, char **src) {
  if (!*src)
    return;
  if (s == &c->session)
    retire(c->ctx, *dst, RETIRED_TEXT);
  else
    authloop__secret_free(*dst);
  *dst = *src;
  *src = NULL;
}

int authloop__session_merge(authloop_client *c, authloop__session *s, authloop__result *r) {
  take(c, s, &s->access_token, &r->access_token);
  take(c, s, &s->id_token, &r->id_token);
  take(c, s, &s->refresh_token, &r->refresh_token);
  if (r->lifetime_s != AUTHLOOP__LIFETIME_UNSET)
    s->lifetime_s = r->lifetime_s;
  if (r->user) {
    authloop_user *u;
    int rc = authloop__user_new(r, &u);
    if (rc)
      return authloop__result_fail(r, rc, r->http_status, NULL, NULL);
    if (s == &c->session)
      retire(c->ctx, s->user, RETIRED_USER);
    else
      authloop__user_free(s->user);
    s->user = u;
  }
  return 0;
}

static const char *const event_names[AUTHLOOP_EV__COUNT] = {
    "loginAttempt",  "logout",         "stateChanged", "tokenRefreshed",
    "tokenExpiring", "sessionExpired", "loginPrompt"};

const char *authloop_event_name(authloop_event_type type) {
  return (unsigned)type < AUTHLOOP_EV__COUNT ? event_names[type] : "unknown";
}

/* ---- listeners ------------------------------------------------------------------ */

static void listeners_compact(authloop__listeners *ls) {
  size_t i, j = 0;
  for (i = 0; i < ls->len; i++)
    if (ls->items[i].id)
      ls->items[j++] = ls->items[i];
  ls->len = j;
  ls->dirty = 0;
}

void authloop__listeners_free(authloop__listeners *ls) {
  free(ls->items);
  memset(ls, 0, sizeof(*ls));
}

int authloop_on(authloop_client *c, authloop_event_type type, authloop_event_cb cb,
                void *userdata) {
  authloop__listeners *ls;
  authloop__listener *l;
  if (!c || !cb || (unsigned)type >= AUTHLOOP_EV__COUNT || c->freed)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  ls = &c->listeners;
  if (ls->next_id == INT32_MAX)
    return AUTHLOOP_ENOMEM; /* ids are never reused */
  if (ls->len == ls->cap) {
    size_t cap = ls->cap ? ls->cap * 2 : 4;
    authloop__listener *items = realloc(ls->items, cap * sizeof(*items));
    if (!items)
      return AUTHLOOP_ENOMEM;
    ls->items = items;
    ls->cap = cap;
  }
  l = &ls->items[ls->len++];
  l->id = ++ls->next_id;
  l->type = type;
  l->cb = cb;
  l->userdata = userdata;
  return l->id;
}

int authloop_off(authloop_client *c, int listener_id) {
  authloop__listeners *ls;
  size_t i;
  if (!c || listener_id <= 0)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(c->ctx);
  ls = &c->listeners;
  for (i = 0; i < ls->len; i++) {
    if (ls->items[i].id != listener_id)
      continue;
    ls->items[i].id = 0;
    if (ls->delivering)
      ls->dirty = 1;
    else
      listeners_compact(ls);
    return 0;
  }
  return AUTHLOOP_ENOENT;
}

/* ---- events ------------------------------------------------------------------------ */

struct authloop__event_entry {
  authloop__deferred d;
  authloop_client *c; /* one reference, once queued */
  authloop_event ev;
  char *message, *server_code; /* owned; ev points at them */
};

/* An event goes to the listeners registered before its delivery began. */
static void run_event(authloop__deferred *d) {
  authloop__event_entry *e = AUTHLOOP__CONTAINER_OF(d, authloop__event_entry, d);
  authloop_client *c = e->c;
  authloop__listeners *ls = &c->listeners;
  size_t i, n = ls->len;
  ls->delivering++;
  for (i = 0; i < n && !c->freed; i++) {
    authloop__listener l = ls->items[i]; /* the array may move */
    if (l.id && l.type == e->ev.type)
      l.cb(c, &e->ev, l.userdata);
  }
  if (--ls->delivering == 0 && ls->dirty)
    listeners_compact(ls);
  free(e->message);
  free(e->server_code);
  free(e);
  authloop__client_unref(c);
}

authloop__event_entry *authloop__outcome_reserve(void) {
  authloop__event_entry *e = calloc(1, sizeof(*e));
  if (e)
    e->d.run = run_event;
  return e;
}

void authloop__outcome_drop(authloop__event_entry **slot) {
  free(*slot);
  *slot = NULL;
}

/* Queues ev in e (taken). Its strings are copied; a copy that cannot be
 * made falls back to the code's own message: the event still goes. */
static void queue_event(authloop_client *c, authloop__event_entry *e, const authloop_event *ev) {
  if (c->freed) { /* nobody may hear it */
    free(e);
    return;
  }
  e->c = c;
  e->ev = *ev;
  /* a server's words: shown by applications, so no control byte in them */
  e->message = ev->message ? authloop__printable_dup(ev->message) : NULL;
  e->server_code = ev->server_code ? authloop__printable_dup(ev->server_code) : NULL;
  e->ev.message = e->message ? e->message : ev->message ? authloop_strerror(ev->error) : NULL;
  e->ev.server_code = e->server_code;
  authloop__client_ref(c);
  authloop__defer(&c->ctx->dispatch, &e->d);
}

void authloop__emit(authloop_client *c, const authloop_event *ev) {
  authloop__event_entry *e;
  if (!c->freed && (e = authloop__outcome_reserve()))
    queue_event(c, e, ev); /* a notification that cannot be allocated is lost */
}

void authloop__outcome_emit(authloop_client *c, authloop__event_entry **slot,
                            authloop_event_type type, const authloop__result *r) {
  authloop__event_entry *e = slot && *slot ? *slot : authloop__outcome_reserve();
  authloop_event ev = {0};
  if (slot)
    *slot = NULL;
  if (!e)
    return;
  ev.type = type;
  ev.success = !r || r->error == 0;
  if (!ev.success) {
    ev.error = r->error;
    ev.http_status = (int)r->http_status;
    ev.message = r->message ? r->message : authloop_strerror(r->error);
    ev.server_code = r->server_code;
  }
  queue_event(c, e, &ev);
}

/* ---- done and response callbacks ------------------------------------------------------ */

struct authloop__call_entry {
  authloop__deferred d;
  authloop_client *c; /* one reference, once queued */
  authloop_done_cb done;
  authloop_response_cb response;
  void *userdata;
  int status;
  long http_status;
  size_t len;
  char *body; /* response: wiped */
};

static void run_call(authloop__deferred *d) {
  authloop__call_entry *e = AUTHLOOP__CONTAINER_OF(d, authloop__call_entry, d);
  authloop_client *c = e->c;
  if (e->done)
    e->done(c, e->status, e->userdata);
  else
    e->response(c, e->status, e->http_status, e->body ? e->body : "", e->len, e->userdata);
  authloop__wipe_free(e->body, e->len);
  free(e);
  authloop__client_unref(c);
}

authloop__call_entry *authloop__callback_reserve(void) {
  authloop__call_entry *e = calloc(1, sizeof(*e));
  if (e)
    e->d.run = run_call;
  return e;
}

void authloop__callback_drop(authloop__call_entry **slot) {
  free(*slot);
  *slot = NULL;
}

static void queue_call(authloop_client *c, authloop__call_entry *e) {
  e->c = c;
  authloop__client_ref(c);
  authloop__defer(&c->ctx->dispatch, &e->d);
}

void authloop__callback_done(authloop_client *c, authloop__call_entry **slot, authloop_done_cb cb,
                             void *userdata, int status) {
  authloop__call_entry *e = slot && *slot ? *slot : NULL;
  if (slot)
    *slot = NULL;
  if (!cb) {
    free(e);
    return;
  }
  if (!e && !(e = authloop__callback_reserve()))
    return;
  e->done = cb;
  e->userdata = userdata;
  e->status = status;
  queue_call(c, e);
}

/* The body is copied; when that copy cannot be made the callback still
 * runs, with AUTHLOOP_ENOMEM and no body. */
void authloop__callback_response(authloop_client *c, authloop__call_entry **slot,
                                 authloop_response_cb cb, void *userdata, int status,
                                 long http_status, const char *body, size_t len) {
  authloop__call_entry *e = slot && *slot ? *slot : authloop__callback_reserve();
  if (slot)
    *slot = NULL;
  if (!e)
    return;
  e->response = cb;
  e->userdata = userdata;
  e->status = status;
  e->http_status = http_status;
  if (len && (e->body = malloc(len + 1))) {
    memcpy(e->body, body, len);
    e->body[len] = '\0';
    e->len = len;
  } else if (len) {
    e->status = AUTHLOOP_ENOMEM;
  }
  queue_call(c, e);
}
