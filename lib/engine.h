/* SPDX-License-Identifier: MIT */
/* The session engine, in three files that call one way: lib/client.c (the
 * public API: clients, logins, logouts, queries, closing the ctx) over
 * lib/session.c (the token lifecycle, network health, the persisted session)
 * over lib/state.c (references, session data, state changes, events). It is
 * the only code that changes session state. It runs providers
 * (lib/provider.h) over the transport, converts between the wall clock and
 * the boot clock, keeps network health, schedules refreshes on the ctx's
 * timer, persists the session through the store, and turns results into
 * events on the deferred-call queue. */
#ifndef AUTHLOOP_ENGINE_H
#define AUTHLOOP_ENGINE_H

#include "ctx.h"
#include "policy.h"
#include "provider.h"

typedef struct authloop__event_entry authloop__event_entry; /* lib/state.c */
typedef struct authloop__call_entry authloop__call_entry;

/* ---- session data ------------------------------------------------------------ */

struct authloop_user {
  char *json;          /* the object as the server sent it, compact */
  char *id, *name;     /* as the dialect reads them (name may be NULL) */
  authloop__jdoc *doc; /* json read, the first time a field is asked for */
};

/* A user's id, or NULL (what authloop_user_id() answers, for the engine's own files). */
static inline const char *authloop__user_id(const authloop_user *u) { return u ? u->id : NULL; }

typedef struct {
  authloop_user *user;
  char *access_token, *id_token, *refresh_token;
  long long lifetime_s; /* > 0 as granted, AUTHLOOP__LIFETIME_NEVER, or 0: none */
} authloop__session;

void authloop__session_clear(authloop__session *s);
/* The application's session goes, but what queries handed out of it stays
 * valid until control returns to the loop (freed by a deferred entry). */
void authloop__session_retire(authloop_ctx *ctx, authloop__session *s);
/* Room to retire a client's strings without allocating: taken when a client
 * is made (AUTHLOOP_ENOMEM), given back when it goes. */
int authloop__retire_reserve(authloop_ctx *ctx);
void authloop__retire_release(authloop_ctx *ctx);
/* At the ctx's end: what is still retired goes. */
void authloop__graveyard_free(authloop_ctx *ctx);
/* Takes a result's user (its text, id and name). */
int authloop__user_new(authloop__result *r, authloop_user **out);
/* Sets r's user from JSON text (a session file's): AUTHLOOP_EPROTO when it
 * is no object or the dialect finds no id in it. */
int authloop__result_user_json(const authloop__provider *p, authloop__result *r, const char *json);
void authloop__user_free(authloop_user *u);

/* ---- listeners ------------------------------------------------------------------ */

typedef struct {
  int id; /* 0: removed during a dispatch, compacted afterwards */
  authloop_event_type type;
  authloop_event_cb cb;
  void *userdata;
} authloop__listener;

typedef struct {
  authloop__listener *items;
  size_t len, cap;
  int next_id;
  int delivering; /* listeners run now: removals are only marked */
  int dirty;
} authloop__listeners;

/* ---- network health, per origin ------------------------------------------------- */

/* One server (scheme, host, port) as the ctx has seen it answer. Consecutive
 * network failures put it on hold; the clients that use it are woken when
 * the hold ends or it answers again. Shared by reference. */
typedef struct {
  authloop__link link; /* in ctx->origins */
  authloop_ctx *ctx;
  char *key; /* scheme://host:port */
  unsigned refs;
  unsigned failures;      /* consecutive */
  uint64_t offline_until; /* boot ms */
  authloop__timer_entry hold_end;
} authloop__origin;

/* What a dialect keeps for every client of the ctx that talks to the same
 * base URL (an OpenID issuer's discovery and keys): made by the provider's
 * shared_new, one reference per client, freed with the last. */
typedef struct {
  authloop__link link; /* in ctx->shared */
  unsigned refs;
  const authloop__provider *provider;
  char *key; /* the base URL */
  void *data;
} authloop__shared;

/* ---- the client ---------------------------------------------------------------- */

struct authloop_client {
  authloop_ctx *ctx;
  const authloop__provider *provider;
  void *pstate;                                   /* the provider's own options and state */
  const char *bases[AUTHLOOP__MAX_BASES];         /* the provider's base URLs (its strings) */
  authloop__origin *origins[AUTHLOOP__MAX_BASES]; /* their health */
  authloop__shared *shared;                       /* the dialect's per-issuer data, or NULL */
  char *base_url; /* the provider's API base: authloop_request(), the session file */
  unsigned refs;  /* the application's (until free) + one per queued call + one per handler */
  int freed;      /* authloop_client_free() was called: no event fires any more */
  authloop_state state;
  authloop__session session;
  /* a login in flight */
  authloop__session pending; /* what its steps gathered so far */
  authloop__transfer *login_x;
  authloop__event_entry *login_outcome; /* its loginAttempt, reserved when it began */
  authloop__event_entry *await_note;    /* stateChanged to AWAITING_TOKEN, likewise */
  char *redirect_url, *redirect_result; /* what a redirect strategy said, while AWAITING_TOKEN */
  /* a device login's codes (the struct and its strings owned), or NULL; handed
   * out, so retired (never changed in place) when the prompt goes */
  authloop_login_prompt *prompt;
  char *end_session_url; /* the last logout's (authloop_end_session_url), until a login begins */
  unsigned logins_begun; /* a logout sent after a login began keeps no end-session URL */
  authloop__timer_entry login_wake; /* a login step sent later (a device login's polls) */
  int login_local; /* login_wake reads the step's answer, no request (AUTHLOOP__NO_REQUEST) */
  authloop__origin *login_origin;
  int login_step;
  /* the token lifecycle (lib/session.c); times in authloop__boot_ms() */
  authloop__timing timing;
  uint64_t margin_ms, retry_base_ms, retry_cap_ms;
  unsigned retry_attempt;
  uint64_t refreshed_at; /* when the server last gave new tokens, or said it refreshes
                            none (0: never) */
  uint64_t tokens_at;    /* when the session's tokens were had (a login, a refresh, a restore) */
  int refresh_lost;      /* a refresh's answer was lost since the tokens were had: the server may
                            have done it, so a refusal now means that, not a revocation */
  authloop__transfer *refresh_x;
  int refresh_preparing; /* refresh_x fetches what the refresh needs first (prepare_request) */
  authloop__origin *refresh_origin;
  authloop__link refresh_waiters; /* authloop_refresh() callers */
  authloop__link calls;           /* authloop_request()s, waiting or sent */
  authloop__link logouts;         /* logout requests on their way */
  authloop__timer_entry wake;
  unsigned token_gen; /* bumped on every new access token */
  /* persisted session */
  char *session_path;
  long long gen; /* generation of the session held: refreshes count up */
  long long sid; /* the login it comes from (its first generation); 0: unknown (an old file) */
  int lock_fd;   /* the lock beside the session file, held by a refresh, or -1 */
  int lock_wait; /* a refresh waits for another process's lock */
  uint64_t lock_retry_at;
  uint64_t lock_wait_until; /* then it gives up, as after a timed-out refresh */
  int lock_warned;          /* "no lock possible" was logged */
  unsigned char session_key[AUTHLOOP__STORE_KEY_BYTES];
  int has_session_key;
  authloop__listeners listeners;
  authloop__link link; /* in ctx->clients */
};

void authloop__client_ref(authloop_client *c);
/* Drops a client's reference on its dialect's per-issuer data (lib/client.c). */
void authloop__shared_put(authloop__shared *s);
/* Drops a device login's codes (lib/client.c), retired: readable until the loop turns. */
void authloop__forget_prompt(authloop_client *c);
/* A string handed out by a query, freed (wiped) once the loop turns (lib/state.c). */
void authloop__retire_text(authloop_ctx *ctx, char *p);
/* The same for a block that holds no secret (a struct handed out): freed. */
void authloop__retire_block(authloop_ctx *ctx, void *p);
/* Drops a reference; the last one frees the client. */
void authloop__client_unref(authloop_client *c);
/* The guard of every call on a client: EINVAL (NULL or freed), the
 * loop-thread check, ECLOSING; 0 when the call may go on. */
int authloop__client_usable(const authloop_client *c);
int authloop__logged_in(const authloop_client *c);
/* The session as a provider sees it. */
void authloop__view_of(const authloop_client *c, const authloop__session *s, authloop__view *v);
/* What a login step, a refresh or a session file returned, into s (the
 * tokens and user move; a missing refresh token keeps the old one). */
int authloop__session_merge(authloop_client *c, authloop__session *s, authloop__result *r);
/* Every state change goes through here; emits stateChanged. */
void authloop__set_state(authloop_client *c, authloop_state s);
/* The same, the event going in the reserved entry *slot (taken) if there is one. */
void authloop__set_state_in(authloop_client *c, authloop_state s, authloop__event_entry **slot);
/* The session goes locally: what waits on it gets error, tokens are
 * retired, state LOGGED_OUT (lib/session.c); the second also forgets the
 * file and emits logout with the reason. */
void authloop__clear_locally(authloop_client *c, int error);
void authloop__logout_locally(authloop_client *c, int error, long http_status);
/* Checks what a provider returned before anything of it is kept: tokens
 * that could not be sent in a header are EPROTO, so is a user object the
 * dialect does not know. */
int authloop__result_check(const authloop_client *c, authloop__result *r);

/* ---- events (lib/state.c) ------------------------------------------------------- */

/* Entries reserved when a call is accepted, so that its outcome can always
 * be delivered (no allocation is needed when it comes). A slot is taken by
 * the function that queues it; a NULL slot or entry allocates then. */
authloop__event_entry *authloop__outcome_reserve(void);
void authloop__outcome_drop(authloop__event_entry **slot);
void authloop__outcome_emit(authloop_client *c, authloop__event_entry **slot,
                            authloop_event_type type, const authloop__result *r);
authloop__call_entry *authloop__callback_reserve(void);
void authloop__callback_drop(authloop__call_entry **slot);
void authloop__callback_done(authloop_client *c, authloop__call_entry **slot, authloop_done_cb cb,
                             void *userdata, int status);
void authloop__callback_response(authloop_client *c, authloop__call_entry **slot,
                                 authloop_response_cb cb, void *userdata, int status,
                                 long http_status, const char *body, size_t len);

/* Queues ev for c; strings are copied. No event is delivered to a freed client. */
void authloop__emit(authloop_client *c, const authloop_event *ev);
void authloop__listeners_free(authloop__listeners *ls);

/* ---- network health (lib/session.c) -------------------------------------------- */

/* A 401 this soon after new tokens came is the answer, not a reason to refresh again. */
#define AUTHLOOP__REFRESH_AGAIN_MS 10000
#define AUTHLOOP__OFFLINE_AFTER    3 /* consecutive network failures put an origin on hold */

/* The origin of url, shared (a new reference); hold_end runs when a hold
 * ends (lib/state.c). */
int authloop__origin_get(authloop_ctx *ctx, const char *url, authloop__timer_fn hold_end,
                         authloop__origin **out);
void authloop__origin_put(authloop__origin *o);
/* The origin of a request of c to base (one of c->bases), or NULL. */
authloop__origin *authloop__origin_of(const authloop_client *c, const char *base);
/* The application says the network is there, and o (NULL: any) is not on hold. */
int authloop__online(const authloop_ctx *ctx, const authloop__origin *o);
/* A transfer to o ended: counts its consecutive network failures, wakes its
 * clients when it answers again (lib/session.c). */
void authloop__health_note(authloop_ctx *ctx, authloop__origin *o, int error);
/* The same for a transfer's outcome: one that never left authloop's line
 * (it waited out its time, lib/transport.c) says nothing of the network. */
void authloop__health_outcome(authloop_ctx *ctx, authloop__origin *o, const authloop__outcome *out);
void authloop__origin_hold_end(authloop__timer_entry *e, uint64_t now);

/* ---- token lifecycle (lib/session.c) ----------------------------------------------- */

/* A session was just granted (login, refresh, restore); received = boot ms. */
void authloop__session_started(authloop_client *c, uint64_t received, int persist);
/* Looks at the client's timing now and schedules its next wake-up. */
void authloop__client_evaluate(authloop_client *c, uint64_t now);
/* Ends the session: tokens wiped, state EXPIRED, sessionExpired(reason). */
void authloop__session_end(authloop_client *c, authloop_expiry_reason reason);
/* Ends the refresh and the waiting requests of c; their callbacks get error. */
void authloop__session_abort(authloop_client *c, int error);
/* Restores c's session file, if it holds a session of this provider and URL. */
void authloop__session_restore(authloop_client *c);
/* Writes (or deletes) c's session file off the loop thread. */
void authloop__session_persist(authloop_client *c);
enum { AUTHLOOP__FORGET_LOGOUT, AUTHLOOP__FORGET_REVOKED, AUTHLOOP__FORGET_IDLE };
/* The file, when it still holds the session of generation gen and user uid
 * (NULL: any), is marked as logged out (LOGOUT, REVOKED) or removed (IDLE). */
void authloop__session_forget(authloop_client *c, int how, long long gen, long long sid,
                              const char *uid);
/* A generation past both and not below the wall clock (saturating). */
long long authloop__next_gen(long long ours, long long theirs);
/* A login's session gets a generation past the file's. */
void authloop__session_generation(authloop_client *c);
/* The timer reached c's wake-up. */
void authloop__client_on_timer(authloop__timer_entry *e, uint64_t now);

#endif
