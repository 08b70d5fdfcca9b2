/* Listener registry and deferred dispatch.
 *
 * Events are queued on the ctx and delivered by an idle handle on a later
 * loop turn, never inside the API call that caused them. While a client's
 * handler runs, the client is marked in_callback: a free requested then is
 * carried out when the handler returns, and removed listeners are only
 * marked, then compacted. */
#include "internal.h"

#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

typedef enum { PENDING_EVENT, PENDING_DONE, PENDING_RESPONSE, PENDING_PREAUTH } pending_kind;

/* One queued delivery: an event for the listeners, or one application
 * callback (authloop_refresh, authloop_request). */
typedef struct {
  authloop__link link; /* in ctx->events */
  uint64_t seq;
  authloop_client *client;
  pending_kind kind;
  authloop_event ev;
  char *message, *server_code; /* owned; ev points at them */
  authloop_done_cb done;
  authloop_response_cb response;
  void *userdata;
  int status;
  long http_status;
  char *body; /* owned, wiped */
  size_t len;
  authloop_ctx *ctx; /* PENDING_PREAUTH: no client */
  authloop_preauth_cb preauth;
} authloop__pending;

static const char *const event_names[AUTHLOOP_EV__COUNT] = {
    "loginAttempt", "logout", "stateChanged", "tokenRefreshed", "tokenExpiring", "sessionExpired"};

const char *authloop_event_name(authloop_event_type type) {
  return (unsigned)type < AUTHLOOP_EV__COUNT ? event_names[type] : "unknown";
}

static void pending_free(authloop__pending *p) {
  free(p->message);
  free(p->server_code);
  if (p->body)
    mbedtls_platform_zeroize(p->body, p->len);
  free(p->body);
  free(p);
}

static void enqueue_on(authloop_ctx *ctx, authloop__pending *p) {
  p->seq = ++ctx->next_event_seq;
  authloop__list_push(&ctx->events, &p->link);
  authloop__dispatch_wake(ctx);
}

static void enqueue(authloop_client *c, authloop__pending *p) {
  authloop_ctx *ctx = c->ctx;
  if (p->kind != PENDING_EVENT)
    c->pending_callbacks++;
  p->client = c;
  enqueue_on(ctx, p);
}

int authloop__defer_done(authloop_client *c, authloop_done_cb cb, void *userdata, int status) {
  authloop__pending *p;
  if (!cb)
    return 0;
  if (!(p = calloc(1, sizeof(*p))))
    return AUTHLOOP_ENOMEM;
  p->kind = PENDING_DONE;
  p->done = cb;
  p->userdata = userdata;
  p->status = status;
  enqueue(c, p);
  return 0;
}

int authloop__defer_response(authloop_client *c, authloop_response_cb cb, void *userdata,
                             int status, long http_status, const char *body, size_t len) {
  authloop__pending *p = calloc(1, sizeof(*p));
  if (!p || !(p->body = malloc(len + 1))) {
    free(p);
    return AUTHLOOP_ENOMEM;
  }
  p->kind = PENDING_RESPONSE;
  p->response = cb;
  p->userdata = userdata;
  p->status = status;
  p->http_status = http_status;
  if (len)
    memcpy(p->body, body, len);
  p->body[len] = '\0';
  p->len = len;
  enqueue(c, p);
  return 0;
}

static int dup_field(const char *s, char **out) {
  *out = NULL;
  if (s && !(*out = strdup(s)))
    return AUTHLOOP_ENOMEM;
  return 0;
}

int authloop__defer_preauth(authloop_ctx *ctx, authloop_preauth_cb cb, void *userdata,
                            const authloop_preauth_result *r) {
  authloop__pending *p = calloc(1, sizeof(*p));
  if (!p)
    return AUTHLOOP_ENOMEM;
  p->kind = PENDING_PREAUTH;
  p->ctx = ctx;
  p->preauth = cb;
  p->userdata = userdata;
  p->status = r->status;
  p->http_status = r->http_status;
  if (r->authorization_code) {
    if (!(p->body = authloop__secret_dup(r->authorization_code))) {
      free(p);
      return AUTHLOOP_ENOMEM;
    }
    p->len = strlen(p->body);
  }
  if (dup_field(r->message, &p->message) || dup_field(r->server_code, &p->server_code)) {
    pending_free(p);
    return AUTHLOOP_ENOMEM;
  }
  enqueue_on(ctx, p);
  return 0;
}

int authloop__emit(authloop_client *c, const authloop_event *ev) {
  authloop__pending *p = calloc(1, sizeof(*p));
  if (!p)
    return AUTHLOOP_ENOMEM;
  p->kind = PENDING_EVENT;
  p->ev = *ev;
  if (dup_field(ev->message, &p->message) || dup_field(ev->server_code, &p->server_code)) {
    pending_free(p);
    return AUTHLOOP_ENOMEM;
  }
  p->ev.message = p->message;
  p->ev.server_code = p->server_code;
  enqueue(c, p);
  return 0;
}

void authloop__events_drop(authloop_client *c, int callbacks_too) {
  authloop__link *l = c->ctx->events.next, *next;
  for (; l != &c->ctx->events; l = next) {
    authloop__pending *p = AUTHLOOP__CONTAINER_OF(l, authloop__pending, link);
    next = l->next;
    if (p->client == c && (callbacks_too || p->kind == PENDING_EVENT)) {
      if (p->kind != PENDING_EVENT)
        c->pending_callbacks--;
      authloop__list_remove(l);
      pending_free(p);
    }
  }
}

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
  if (!c || !cb || (unsigned)type >= AUTHLOOP_EV__COUNT || c->free_requested)
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
    if (c->in_callback)
      ls->dirty = 1;
    else
      listeners_compact(ls);
    return 0;
  }
  return AUTHLOOP_ENOENT;
}

static void deliver_preauth(authloop__pending *p) {
  authloop_preauth_result r = {0};
  r.status = p->status;
  r.authorization_code = p->body;
  r.message = p->message;
  r.server_code = p->server_code;
  r.http_status = (int)p->http_status;
  p->preauth(p->ctx, &r, p->userdata);
}

/* An event goes to the listeners registered before its delivery began. */
static void deliver(authloop__pending *p) {
  authloop_client *c = p->client;
  size_t i, n;
  if (p->kind == PENDING_PREAUTH) {
    deliver_preauth(p);
    return;
  }
  n = c->listeners.len;
  c->in_callback++;
  if (p->kind == PENDING_DONE)
    p->done(c, p->status, p->userdata);
  else if (p->kind == PENDING_RESPONSE)
    p->response(c, p->status, p->http_status, p->body, p->len, p->userdata);
  for (i = 0; p->kind == PENDING_EVENT && i < n && !c->free_requested; i++) {
    authloop__listener l = c->listeners.items[i]; /* the array may move */
    if (l.id && l.type == p->ev.type)
      l.cb(c, &p->ev, l.userdata);
  }
  c->in_callback--;
  if (p->kind != PENDING_EVENT)
    c->pending_callbacks--;
  if (c->in_callback)
    return;
  if (c->free_requested) {
    if (!c->pending_callbacks) /* its last ECANCELED callback has run */
      authloop__client_destroy(c);
  } else if (c->listeners.dirty)
    listeners_compact(&c->listeners);
}

void authloop__dispatch(authloop_ctx *ctx) {
  /* Deliver what was queued before this turn; what handlers queue now waits
   * for the next turn, so a handler that always emits cannot starve I/O. */
  uint64_t last = ctx->next_event_seq;
  if (ctx->dispatching || ctx->finalizing)
    return;
  ctx->dispatching = 1;
  while (!authloop__list_empty(&ctx->events)) {
    authloop__pending *p = AUTHLOOP__CONTAINER_OF(ctx->events.next, authloop__pending, link);
    if (p->seq > last)
      break;
    authloop__list_remove(&p->link);
    deliver(p);
    pending_free(p);
  }
  ctx->dispatching = 0;
  if (!authloop__list_empty(&ctx->events))
    return;
  uv_idle_stop(&ctx->dispatcher);
  if (ctx->closing)
    authloop__ctx_teardown(ctx);
}
