/* Listeners and the client's deferred calls.
 *
 * Events and callbacks are entries on the ctx's deferred-call queue
 * (lib/dispatch.h); each holds a reference on its client, so a handler may
 * free the client (or close the ctx) and the memory stays until the entry is
 * done. Events are not delivered to a client the application has freed;
 * done and response callbacks always run, once. */
#include "client.h"

#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_names[AUTHLOOP_EV__COUNT] = {
    "loginAttempt", "logout", "stateChanged", "tokenRefreshed", "tokenExpiring", "sessionExpired"};

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

typedef struct {
  authloop__deferred d;
  authloop_client *c; /* one reference */
  authloop_event ev;
  char *message, *server_code; /* owned; ev points at them */
} event_entry;

/* An event goes to the listeners registered before its delivery began. */
static void run_event(authloop__deferred *d) {
  event_entry *e = AUTHLOOP__CONTAINER_OF(d, event_entry, d);
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

static char *dup_or_null(const char *s, int *failed) {
  char *p;
  if (!s)
    return NULL;
  if (!(p = strdup(s)))
    *failed = 1;
  return p;
}

void authloop__emit(authloop_client *c, const authloop_event *ev) {
  event_entry *e;
  int failed = 0;
  if (c->freed)
    return; /* nobody may hear it */
  if (!(e = calloc(1, sizeof(*e))))
    return;
  e->d.run = run_event;
  e->c = c;
  e->ev = *ev;
  e->message = dup_or_null(ev->message, &failed);
  e->server_code = dup_or_null(ev->server_code, &failed);
  if (failed) {
    free(e->message);
    free(e->server_code);
    free(e);
    return;
  }
  e->ev.message = e->message;
  e->ev.server_code = e->server_code;
  authloop__client_ref(c);
  authloop__defer(&c->ctx->dispatch, &e->d);
}

void authloop__emit_outcome(authloop_client *c, authloop_event_type type,
                            const authloop__result *r) {
  authloop_event ev = {0};
  ev.type = type;
  ev.success = !r || r->error == 0;
  if (!ev.success) {
    ev.error = r->error;
    ev.http_status = (int)r->http_status;
    ev.message = r->message ? r->message : authloop_strerror(r->error);
    ev.server_code = r->server_code;
  }
  authloop__emit(c, &ev);
}

/* ---- done and response callbacks ------------------------------------------------------ */

typedef struct {
  authloop__deferred d;
  authloop_client *c; /* one reference */
  authloop_done_cb done;
  authloop_response_cb response;
  void *userdata;
  int status;
  long http_status;
  size_t len;
  char body[]; /* response: wiped */
} call_entry;

static void run_call(authloop__deferred *d) {
  call_entry *e = AUTHLOOP__CONTAINER_OF(d, call_entry, d);
  authloop_client *c = e->c;
  if (e->done)
    e->done(c, e->status, e->userdata);
  else
    e->response(c, e->status, e->http_status, e->body, e->len, e->userdata);
  mbedtls_platform_zeroize(e->body, e->len);
  free(e);
  authloop__client_unref(c);
}

static call_entry *call_entry_new(authloop_client *c, size_t len) {
  call_entry *e = calloc(1, sizeof(*e) + len + 1);
  if (!e)
    return NULL;
  e->d.run = run_call;
  e->c = c;
  authloop__client_ref(c);
  return e;
}

void authloop__defer_done(authloop_client *c, authloop_done_cb cb, void *userdata, int status) {
  call_entry *e;
  if (!cb || !(e = call_entry_new(c, 0)))
    return;
  e->done = cb;
  e->userdata = userdata;
  e->status = status;
  authloop__defer(&c->ctx->dispatch, &e->d);
}

void authloop__defer_response(authloop_client *c, authloop_response_cb cb, void *userdata,
                              int status, long http_status, const char *body, size_t len) {
  call_entry *e = call_entry_new(c, len);
  if (!e)
    return;
  e->response = cb;
  e->userdata = userdata;
  e->status = status;
  e->http_status = http_status;
  e->len = len;
  if (len)
    memcpy(e->body, body, len);
  authloop__defer(&c->ctx->dispatch, &e->d);
}
