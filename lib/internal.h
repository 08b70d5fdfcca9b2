/* Internal declarations shared by the library's files. Not installed. */
#ifndef AUTHLOOP_INTERNAL_H
#define AUTHLOOP_INTERNAL_H

#include "authloop.h"

#include <curl/curl.h>
#include <jansson.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__GNUC__)
#define AUTHLOOP__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AUTHLOOP__PRINTF(a, b)
#endif

#define AUTHLOOP__STR2(x) #x
#define AUTHLOOP__STR(x)  AUTHLOOP__STR2(x)
#define AUTHLOOP__VERSION_STRING                                                                   \
  AUTHLOOP__STR(AUTHLOOP_VERSION_MAJOR)                                                            \
  "." AUTHLOOP__STR(AUTHLOOP_VERSION_MINOR) "." AUTHLOOP__STR(AUTHLOOP_VERSION_PATCH)

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

/* ---- random numbers (lib/util.c): mbedTLS CTR-DRBG, one per ctx ---------------- */

typedef struct {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
} authloop__rng;

int authloop__rng_init(authloop__rng *r);
void authloop__rng_free(authloop__rng *r);
int authloop__random(authloop__rng *r, void *buf, size_t n);
uint32_t authloop__random_u32(authloop__rng *r);

/* ---- time and policy (lib/schedule.c) ------------------------------------------ */

#define AUTHLOOP__NEVER         UINT64_MAX
#define AUTHLOOP__NOT_SCHEDULED SIZE_MAX

/* A clock that counts suspended time (CLOCK_BOOTTIME), and the wall clock. */
uint64_t authloop__boot_ms(void);
uint64_t authloop__wall_ms(void);

/* Everything the policy needs to decide what a logged-in client does next. */
typedef struct {
  uint64_t expires_at, refresh_due, retry_at, last_activity, idle_ms;
  int retrying; /* a transient failure happened: retry_at is the next try */
  int warned;   /* tokenExpiring was emitted for this token */
  int offline;  /* the application said the network is gone */
  int stale;    /* restored with a dead token: refresh on first activity */
} authloop__timing;

typedef enum {
  AUTHLOOP__WAIT,       /* nothing now; look again at *wake_at */
  AUTHLOOP__REFRESH,    /* refresh now */
  AUTHLOOP__WARN_IDLE,  /* due but idle: emit tokenExpiring (once) */
  AUTHLOOP__EXPIRE_IDLE /* idle and the token ran out: end the session */
} authloop__action;

uint64_t authloop__refresh_margin(uint64_t lifetime_ms, uint64_t margin_ms);
uint64_t authloop__refresh_due(uint64_t received, uint64_t lifetime_ms, uint64_t margin_ms,
                               uint32_t rnd);
uint64_t authloop__backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd);
uint64_t authloop__retry_at(uint64_t now, uint64_t backoff_ms, long long retry_after_ms,
                            uint64_t expires_at);
authloop__action authloop__decide(const authloop__timing *t, uint64_t now, uint64_t *wake_at);

typedef struct {
  authloop_client **items; /* min-heap on wake_at */
  size_t len, cap;
  uint64_t armed_at;
  int fd; /* timerfd on CLOCK_BOOTTIME, or -1: timer is used */
  uv_poll_t poll;
  uv_timer_t timer;
} authloop__sched;

void authloop__sched_init(authloop_ctx *ctx);
void authloop__sched_close(authloop_ctx *ctx);
/* Wake the client at wake_at (AUTHLOOP__NEVER: not at all). */
void authloop__sched_set(authloop_client *c, uint64_t wake_at);
void authloop__sched_remove(authloop_client *c);

/* ---- JWT (lib/jwt.c) --------------------------------------------------------------- */

int authloop__b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);
char *authloop__b64url_encode(const unsigned char *in, size_t len);

#define AUTHLOOP__RS256 1
#define AUTHLOOP__ES256 2
/* A private key from a PEM file or buffer: RSA >= 2048 bits (RS256) or P-256
 * (ES256). On error nothing is left to free. mbedtls_pk_free wipes it. */
int authloop__key_load(const char *file, const char *pem, size_t pem_len, const char *passphrase,
                       authloop__rng *rng, mbedtls_pk_context *pk, int *alg);
/* header.claims.signature, compact serialisation. */
int authloop__jwt_sign(mbedtls_pk_context *pk, int alg, const char *kid, const json_t *claims,
                       authloop__rng *rng, char **out);
/* exp - iat of a JWT's claims, in seconds (tokens stay opaque otherwise). */
int authloop__jwt_lifetime(const char *token, long *seconds);

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
  long long retry_after_ms; /* from a Retry-After header, else -1 */
  char server_date[64];     /* the Date header as sent, else "" */
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
/* "name: value", the copy wiped (value may be a secret). */
int authloop__req_add_header2(authloop__req *req, const char *name, const char *value);
int authloop__req_set_bearer(authloop__req *req, const char *token);
/* Sends json_text (copied) as application/json. */
int authloop__req_set_body(authloop__req *req, const char *json_text);
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
  json_t *obj;           /* the user object as parsed */
  char *json;            /* compact serialisation, server's key order */
  const char *id, *name; /* strings inside obj, chosen by the dialect */
};

typedef struct {
  authloop_user *user;
  char *access_token, *id_token, *refresh_token;
  long expires_in; /* seconds, as granted; AUTHLOOP__NO_EXPIRY: never expires */
} authloop__session;

#define AUTHLOOP__NO_EXPIRY (-1L)

void authloop__session_clear(authloop__session *s);
/* Moves the fields src has into dst (a rotated refresh token replaces the old
 * one; a missing one keeps it). src is left empty. */
void authloop__session_merge(authloop__session *dst, authloop__session *src);
/* Takes the reference to obj; id and name are strings inside it (name may be NULL). */
int authloop__user_new(json_t *obj, const char *id, const char *name, authloop_user **out);
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
/* Network trouble, an overloaded server: worth retrying. */
int authloop__is_transient(int error);

/* ---- providers (lib/providers/) ------------------------------------------------- */

/* What a login was asked with; owned copies, secrets wiped. expires_in stays
 * for the refreshes of the session (Kuzzle keeps the lifetime the user chose). */
typedef struct {
  char *code;                   /* gateway */
  char *strategy, *credentials; /* kuzzle (credentials: JSON text) */
  char *expires_in;             /* kuzzle, may be NULL */
  char *uid, *auth_key, *token; /* cometchat; token also kuzzle's set_token */
} authloop__login_args;

void authloop__login_args_clear(authloop__login_args *a);

/* login_response verdicts besides 0 (logged in) and errors */
#define AUTHLOOP__MORE  1 /* send login step + 1 */
#define AUTHLOOP__AWAIT 2 /* a two-step strategy: wait for authloop_set_token() */
/* Login steps of a token given with authloop_set_token() (Kuzzle) */
#define AUTHLOOP__KUZZLE_CHECK_STEP 10

/* A dialect: how session operations become HTTP requests and how answers
 * become session results. Request builders return 0 and a request ready to
 * start, or an error; response parsers fill the session or the failure. */
typedef struct {
  const char *name;
  const char *login_path, *logout_path, *refresh_path; /* defaults under base_url */
  int (*login_request)(authloop_client *c, int step, authloop__req **out);
  int (*login_response)(authloop_client *c, int step, const authloop__req *req,
                        authloop__session *s, authloop__failure *f);
  int (*logout_request)(authloop_client *c, int global, authloop__req **out);
  int (*logout_response)(authloop_client *c, const authloop__req *req, authloop__failure *f);
  /* NULL: these tokens are never refreshed */
  int (*refresh_request)(authloop_client *c, authloop__req **out);
  /* AUTHLOOP_EREVOKED when the refresh token is refused for good */
  int (*refresh_response)(authloop_client *c, const authloop__req *req, authloop__session *s,
                          authloop__failure *f);
  /* Adds the session's credentials to an authenticated request. */
  int (*authorize)(authloop_client *c, authloop__req *req);
  /* For the answer to an authenticated request: non-zero when it says the
   * session no longer exists on the server. */
  int (*session_gone)(const authloop__req *req);
  /* The user object as this dialect sends it (checks its id); takes obj. */
  int (*make_user)(json_t *obj, authloop_user **out);
} authloop__provider;

const authloop__provider *authloop__provider_find(const char *name);
extern const authloop__provider authloop__provider_gateway;
extern const authloop__provider authloop__provider_kuzzle;
extern const authloop__provider authloop__provider_cometchat;

/* The gateway's answers, as pure functions (unit-tested). */
json_t *authloop__gateway_login_body(const char *code);
int authloop__gateway_parse_login(long status, const char *body, size_t len, authloop__session *out,
                                  authloop__failure *f);
int authloop__gateway_parse_refresh(long status, const char *body, size_t len,
                                    authloop__session *out, authloop__failure *f);
int authloop__gateway_parse_logout(long status, const char *body, size_t len, authloop__failure *f);
/* A gateway error answer (non-2xx) into f; returns f->error. */
int authloop__gateway_failure(long status, const char *body, size_t len, authloop__failure *f);

/* Shared by providers */
int authloop__fail(authloop__failure *f, int error, long status, const char *fmt, const char *arg);
/* A request to url with an optional JSON body (copied). */
int authloop__req_json(authloop_ctx *ctx, const char *method, const char *url, const json_t *body,
                       authloop__req **out);

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
/* Queues a pre-auth result (a ctx-level callback); strings are copied. */
int authloop__defer_preauth(authloop_ctx *ctx, authloop_preauth_cb cb, void *userdata,
                            const authloop_preauth_result *r);
/* Queues a call of an application callback for c. */
int authloop__defer_done(authloop_client *c, authloop_done_cb cb, void *userdata, int status);
/* body is copied. */
int authloop__defer_response(authloop_client *c, authloop_response_cb cb, void *userdata,
                             int status, long http_status, const char *body, size_t len);
/* Drops c's queued events; with callbacks_too, its queued callbacks as well. */
void authloop__events_drop(authloop_client *c, int callbacks_too);
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
  authloop__sched sched;
  authloop__rng rng;
  int online_app;         /* what the application said (authloop_ctx_set_online) */
  unsigned net_failures;  /* consecutive; AUTHLOOP__OFFLINE_AFTER of them: offline */
  uint64_t offline_until; /* ... until then (boot ms), unless a request succeeds */
  authloop__link stores;  /* session files being written, see store.c */
  /* authloop_ctx_post: the only state other threads touch, under post_mutex */
  uv_async_t post_async;
  uv_mutex_t post_mutex;
  authloop__link posts;
  int posts_closed;
  uv_thread_t loop_thread;
  /* options, owned copies */
  char *ca_file, *user_agent;
  unsigned timeout_ms, max_host_connections;
  size_t max_body_bytes;
  authloop_log_cb log_cb;
  authloop_log_level log_level;
  void *log_userdata;
  /* close */
  int closing, finalizing, handles_closing;
  authloop_close_cb close_cb;
  void *close_userdata;
};

#define AUTHLOOP__OFFLINE_AFTER   3
#define AUTHLOOP__OFFLINE_HOLD_MS 10000

struct authloop_client {
  authloop_ctx *ctx;
  const authloop__provider *provider;
  char *base_url, *login_url, *logout_url, *refresh_url;
  authloop_state state;
  authloop__session session;
  authloop__req *login_req;
  int login_step;
  authloop__login_args login;
  authloop__session pending; /* what login steps gathered so far */
  /* dialect options */
  char *admin_url; /* cometchat: the admin API base */
  char *app_id;    /* cometchat */
  char device_id[33];
  /* token lifecycle (lib/session.c); times in authloop__boot_ms() */
  authloop__timing timing;
  uint64_t margin_ms, retry_base_ms, retry_cap_ms;
  unsigned retry_attempt;
  authloop__req *refresh_req;
  authloop__link refresh_waiters; /* authloop_refresh() callers */
  authloop__link calls;           /* authloop_request()s, waiting or sent */
  uint64_t wake_at;
  size_t heap_index;
  /* persisted session (lib/store.c) */
  char *session_path;
  unsigned char session_key[32];
  int has_session_key;
  authloop__link reqs; /* requests of this client: login and logouts */
  authloop__listeners listeners;
  int in_callback;
  int free_requested;
  unsigned pending_callbacks; /* queued authloop_refresh/request callbacks */
  unsigned token_gen;         /* bumped on every new access token */
  authloop__link link;        /* in ctx->clients */
};

/* The guard of every call on a client: EINVAL (NULL or being freed), the
 * loop-thread check, ECLOSING; 0 when the call may go on. */
int authloop__client_usable(const authloop_client *c);

/* Debug builds: abort when a loop-thread-only function is called elsewhere. */
#ifdef NDEBUG
#define AUTHLOOP__LOOP_THREAD_ONLY(ctx) ((void)0)
#else
#define AUTHLOOP__LOOP_THREAD_ONLY(ctx) authloop__check_loop_thread((ctx), __func__)
#endif
void authloop__check_loop_thread(const authloop_ctx *ctx, const char *func);

/* Clears the session locally and emits logout (why: NULL, or the reason). */
void authloop__logout_locally(authloop_client *c, const authloop__failure *why);
/* Frees a client's memory; the caller has made sure no handler is running. */
void authloop__client_destroy(authloop_client *c);
void authloop__set_state(authloop_client *c, authloop_state s);
/* A handle of the ctx closed. */
void authloop__handle_closed(authloop_ctx *ctx);
int authloop__ctx_online(const authloop_ctx *ctx);
/* A request ended: counts consecutive network failures for the offline mark. */
void authloop__ctx_note_result(authloop_ctx *ctx, int error);

/* ---- token lifecycle (lib/session.c) ----------------------------------------------- */

/* A session was just granted (login or restore); received = boot ms. */
void authloop__session_started(authloop_client *c, uint64_t received, int persist);
/* The timer reached the client's wake_at. */
void authloop__client_evaluate(authloop_client *c, uint64_t now);
/* Ends the session: tokens wiped, state EXPIRED, sessionExpired(reason). */
void authloop__session_end(authloop_client *c, authloop_expiry_reason reason);
/* Drops refresh and waiting requests of c. With notify, their callbacks get
 * `error`; without, nothing is called (the client is being freed). */
void authloop__session_abort(authloop_client *c, int notify, int error);
/* The network came back: everyone looks again. */
void authloop__ctx_wake_all(authloop_ctx *ctx);

/* ---- persisted session (lib/store.c) ------------------------------------------------ */

/* Loads c's session file if it holds a session for this provider and URL. */
int authloop__store_load(authloop_client *c);
/* Writes (or deletes) c's session file off the loop thread, in order. */
void authloop__store_save(authloop_client *c);
void authloop__store_delete(authloop_client *c);
/* Serialisation, for tests. */
int authloop__store_encode(const authloop_client *c, authloop__rng *rng, unsigned char **out,
                           size_t *len);
int authloop__store_decode(authloop_client *c, const unsigned char *data, size_t len);
int authloop__store_busy(const authloop_ctx *ctx);
/* Makes sure the dispatcher runs on the next loop turn. */
void authloop__dispatch_wake(authloop_ctx *ctx);
/* Close, step 2 (all events delivered): free clients, close handles. */
void authloop__ctx_teardown(authloop_ctx *ctx);
/* Close, step 3 (the last handle closed): call back and free. */
void authloop__ctx_finalize(authloop_ctx *ctx);

#endif /* AUTHLOOP_INTERNAL_H */
