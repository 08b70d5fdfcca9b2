/* Internal declarations shared by the library's files. Not installed. */
#ifndef AUTHLOOP_INTERNAL_H
#define AUTHLOOP_INTERNAL_H

#include "authloop.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define AUTHLOOP__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AUTHLOOP__PRINTF(a, b)
#endif

#define AUTHLOOP__CONTAINER_OF(ptr, type, member)                                                  \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- intrusive doubly linked list (a list head is a link to itself) ------- */

typedef struct authloop__link {
  struct authloop__link *prev, *next;
} authloop__link;

static inline void authloop__list_init(authloop__link *head) { head->prev = head->next = head; }
static inline int authloop__list_empty(const authloop__link *head) { return head->next == head; }
static inline void authloop__list_push(authloop__link *head, authloop__link *l) {
  l->prev = head->prev;
  l->next = head;
  head->prev->next = l;
  head->prev = l;
}
static inline void authloop__list_remove(authloop__link *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}

/* ---- secrets ------------------------------------------------------------------ */

/* strdup / free for secrets: the copy is wiped before it is released. */
char *authloop__secret_dup(const char *s);
void authloop__secret_free(char *s);
/* Wipes every string value in a JSON tree, then drops the reference. */
void authloop__json_wipe_decref(json_t *j);
int authloop__has_space(const char *s);

/* ---- logging (lib/ctx.c) ------------------------------------------------------- */

void authloop__log(const authloop_ctx *ctx, authloop_log_level level, const char *fmt, ...)
    AUTHLOOP__PRINTF(3, 4);

/* ---- transport (lib/transport.c) --------------------------------------------- */

typedef struct authloop__req authloop__req;
/* Called once when the request ends (completed, failed or cancelled). The
 * transport frees the request when the callback returns. */
typedef void (*authloop__req_cb)(authloop__req *req, void *userdata);

typedef struct {
  char *data;
  size_t len, cap;
} authloop__buf;

struct authloop__req {
  authloop_ctx *ctx;
  CURL *easy;
  struct curl_slist *headers; /* may carry a bearer token: wiped on free */
  char *body;                 /* request body, owned, wiped on free */
  char *target;               /* "METHOD scheme://host/path" for logs: no query, no userinfo */
  authloop__buf resp;         /* response body, at most ctx->max_body_bytes */
  size_t header_bytes;
  int overflow; /* the body or headers went past their limit */
  char errbuf[CURL_ERROR_SIZE];
  uint64_t started_ms;
  /* outcome */
  int error; /* 0: an HTTP answer arrived (see http_status); else AUTHLOOP_E* */
  long http_status;
  authloop__req_cb cb;
  void *userdata;
  authloop__link link;       /* in ctx->reqs while started */
  authloop__link owner_link; /* in the owning client's reqs, if any */
};

int authloop__transport_init(authloop_ctx *ctx);
/* Starts the asynchronous teardown of curl and its handles. */
void authloop__transport_close(authloop_ctx *ctx);

int authloop__req_new(authloop_ctx *ctx, const char *method, const char *url, authloop__req **out);
int authloop__req_add_header(authloop__req *req, const char *header);
int authloop__req_set_bearer(authloop__req *req, const char *token);
/* Sends `body` as application/json (compact). Does not steal the reference. */
int authloop__req_set_json(authloop__req *req, const json_t *body);
/* On error the caller still owns req. On success the transport does. */
int authloop__req_start(authloop__req *req, authloop__req_cb cb, void *userdata);
/* Frees a request that was never started, or aborts a started one without
 * calling its callback. */
void authloop__req_free(authloop__req *req);
/* Ends every started request with AUTHLOOP_ECANCELED (callbacks run now). */
void authloop__req_cancel_all(authloop_ctx *ctx);

/* ---- session data ------------------------------------------------------------- */

struct authloop_user {
  json_t *obj; /* the user object as parsed */
  char *json;  /* compact serialisation, server's key order */
};

typedef struct {
  authloop_user *user;
  char *access_token, *id_token, *refresh_token;
  long expires_in; /* seconds, as granted */
} authloop__session;

void authloop__session_clear(authloop__session *s);
/* Takes the reference to obj. */
int authloop__user_new(json_t *obj, authloop_user **out);
void authloop__user_free(authloop_user *u);

/* Why an operation failed, for the event that reports it. Strings owned. */
typedef struct {
  int error;
  long http_status;
  char *message;     /* NULL: authloop_strerror(error) is used */
  char *server_code; /* NULL when the server sent none */
} authloop__failure;

void authloop__failure_clear(authloop__failure *f);
/* Fills f from a transport-level failure of req (req->error != 0). */
int authloop__failure_from_req(const authloop__req *req, authloop__failure *f);

/* ---- providers (lib/providers/) ------------------------------------------------- */

typedef struct {
  const char *name;
  const char *login_path, *logout_path;
  /* Request body for a login with a one-time authorization code. */
  json_t *(*login_code_body)(const char *code);
  /* 0 and a filled session, or an AUTHLOOP_E* code with f filled. */
  int (*parse_login)(long status, const char *body, size_t len, authloop__session *out,
                     authloop__failure *f);
  /* 0 when the server acknowledged the logout, or an error with f filled. */
  int (*parse_logout)(long status, const char *body, size_t len, authloop__failure *f);
} authloop__provider;

const authloop__provider *authloop__provider_find(const char *name);
extern const authloop__provider authloop__provider_gateway;

/* ---- URL policy (lib/client.c) ----------------------------------------------- */

/* 0 if base_url is an http(s) URL without query or fragment, and plain http
 * only to loopback unless allow_insecure. */
int authloop__check_base_url(const char *base_url, int allow_insecure);

/* ---- events (lib/events.c) --------------------------------------------------- */

typedef struct {
  int id; /* 0: removed during dispatch, compacted afterwards */
  authloop_event_type type;
  authloop_event_cb cb;
  void *userdata;
} authloop__listener;

typedef struct {
  authloop__listener *items;
  size_t len, cap;
  int next_id;
  int dirty;
} authloop__listeners;

/* Queues ev for c; strings are copied. Dispatched from the loop later. */
int authloop__emit(authloop_client *c, const authloop_event *ev);
/* Drops every queued event of c. */
void authloop__events_drop(authloop_client *c);
void authloop__listeners_free(authloop__listeners *ls);
/* Runs the queued events; finishes a pending ctx close when none remain. */
void authloop__dispatch(authloop_ctx *ctx);

/* ---- objects ------------------------------------------------------------------- */

struct authloop_ctx {
  uv_loop_t *loop;
  CURLM *multi;
  CURLSH *share;
  uv_timer_t curl_timer;
  uv_idle_t dispatcher; /* runs while events are queued */
  unsigned open_handles;
  authloop__link reqs, sockets, clients, events;
  uint64_t next_event_seq;
  int dispatching;
  /* options, owned copies */
  char *ca_file, *user_agent;
  unsigned timeout_ms, max_host_connections;
  size_t max_body_bytes;
  authloop_log_cb log_cb;
  authloop_log_level log_level;
  void *log_userdata;
  /* close */
  int closing, finalizing;
  authloop_close_cb close_cb;
  void *close_userdata;
};

struct authloop_client {
  authloop_ctx *ctx;
  const authloop__provider *provider;
  char *login_url, *logout_url;
  authloop_state state;
  authloop__session session;
  authloop__req *login_req;
  authloop__link reqs; /* requests of this client: login and logouts */
  authloop__listeners listeners;
  int in_callback;
  int free_requested;
  authloop__link link; /* in ctx->clients */
};

/* Frees a client's memory; the caller has made sure no handler is running. */
void authloop__client_destroy(authloop_client *c);
/* Makes sure the dispatcher runs on the next loop turn. */
void authloop__dispatch_wake(authloop_ctx *ctx);
/* Close, step 2 (all events delivered): free clients, close handles. */
void authloop__ctx_teardown(authloop_ctx *ctx);
/* Close, step 3 (the last handle closed): call back and free. */
void authloop__ctx_finalize(authloop_ctx *ctx);

#endif /* AUTHLOOP_INTERNAL_H */
