/* SPDX-License-Identifier: MIT */
/* What a provider (a dialect) is: a table of pure functions. It turns session
 * operations into request descriptions (lib/http.h) and answers into result
 * values. It sees a read-only view of the session and its own options and
 * state; it never sees a client, a curl or uv type, or a clock (the time comes
 * in as a value). Everything dialect-specific lives behind this header, in
 * lib/providers/; no other file names a dialect. */
#ifndef AUTHLOOP_PROVIDER_H
#define AUTHLOOP_PROVIDER_H

#include "http.h"
#include "json.h"
#include "util.h"

/* ---- what a login is made with ------------------------------------------------ */

/* The kinds of credential the public login calls build. A provider's table
 * says which kinds it takes; the others fail with AUTHLOOP_EWRONGPROVIDER. */
typedef enum {
  AUTHLOOP__CRED_CODE = 1,      /* authloop_login_code: a one-time authorization code */
  AUTHLOOP__CRED_STRATEGY = 2,  /* authloop_login_strategy/local: strategy + credentials */
  AUTHLOOP__CRED_UID_KEY = 4,   /* authloop_login_key: a user id and the app's key */
  AUTHLOOP__CRED_TOKEN = 8,     /* authloop_login_token: a token minted elsewhere */
  AUTHLOOP__CRED_PASSWORD = 16, /* authloop_login_password: a user name and password */
  AUTHLOOP__CRED_DEVICE = 32,   /* authloop_login_device: the device authorization grant */
  AUTHLOOP__CRED_BROWSER = 64   /* authloop_login_browser: the code flow, in the user's browser */
} authloop__cred_kind;

typedef struct {
  authloop__cred_kind kind;
  const char *code;                        /* CODE */
  const char *strategy, *credentials_json; /* STRATEGY (credentials: a JSON object) */
  const char *expires_in;                  /* STRATEGY, may be NULL */
  const char *uid, *key;                   /* UID_KEY, as the application gave them */
  const char *token;                       /* TOKEN */
  const char *username, *password;         /* PASSWORD */
  unsigned char random[64];                /* BROWSER: fresh random bytes (state, nonce, PKCE) */
} authloop__credential;

/* ---- what a provider sees -------------------------------------------------------- */

/* The session as the operation sees it. During a login: what the steps so
 * far gathered; otherwise the session's tokens. Borrowed, read-only. */
typedef struct {
  const char *access_token, *id_token, *refresh_token; /* may be NULL */
  const char *user_json; /* the session's user object as JSON text, or NULL (during a login) */
  long long now_wall_ms; /* the wall clock when the request was built / the answer arrived */
  long long now_ms;      /* the same moment on a clock that never jumps (for durations) */
} authloop__view;

/* What a provider's init gets besides the options. */
typedef struct {
  const char *user_agent;
  unsigned char random[32]; /* fresh random bytes (device ids ...) */
  /* 16 bytes that name the installation (derived from the session file's
   * path: the same in every run that shares it), or NULL without one */
  const unsigned char *installation;
  long long now_wall_ms;
  /* what the dialect keeps for every client of the ctx with the same base
   * URL (shared_new's), or NULL (then the client keeps its own) */
  void *shared;
} authloop__provider_env;

#define AUTHLOOP__MAX_BASES 2

/* ---- what a provider answers ---------------------------------------------------------- */

#define AUTHLOOP__LIFETIME_UNSET 0LL    /* the answer says nothing of it */
#define AUTHLOOP__LIFETIME_NEVER (-1LL) /* the token never expires */

typedef enum {
  AUTHLOOP__NEXT_DONE = 0, /* the operation is complete (or failed: see error) */
  AUTHLOOP__NEXT_STEP,     /* send login step `step` */
  AUTHLOOP__NEXT_AWAIT     /* a two-step strategy: wait for authloop_set_token() */
} authloop__next;

/* An answer read. Strings and the user are owned (authloop__result_clear). */
typedef struct {
  int error;           /* 0 or AUTHLOOP_E*; EREVOKED on refresh: refused for good */
  authloop__next next; /* on success */
  int step;            /* NEXT_STEP: the step to send */
  long http_status;    /* of the answer, for the event */
  char *message;       /* the server's message, or ours; NULL: authloop_strerror(error) */
  char *server_code;   /* the server's error code as text, or NULL */
  char *access_token, *id_token, *refresh_token; /* NULL: not in this answer */
  /* the user object's text (compact, as the server sent it) and its id and
   * name as the table's user_fields read them (name may be NULL) */
  char *user, *user_id, *user_name;
  /* NEXT_AWAIT after a redirect strategy's first step: where to send the
   * user, and the server's result as JSON text (both may be NULL) */
  char *redirect_url, *redirect_result;
  long long lifetime_s; /* > 0, AUTHLOOP__LIFETIME_NEVER or AUTHLOOP__LIFETIME_UNSET */
  long long delay_ms;   /* NEXT_STEP: send it after this long (a device login's polling) */
  /* a login that needs the user elsewhere (the device grant's codes): told
   * to the application by a loginPrompt event */
  char *prompt_code, *prompt_uri, *prompt_uri_complete;
  long long prompt_expires_s, prompt_interval_s;
} authloop__result;

void authloop__result_clear(authloop__result *r);
/* The answer's body read as JSON into d (always left for authloop__jdoc_free):
 * 0; AUTHLOOP_EPROTO when the body is no JSON (r untouched); AUTHLOOP_ENOMEM,
 * with r->error set. */
int authloop__answer_doc(const authloop__answer *a, authloop__result *r, authloop__jdoc *d);
/* Sets r's user to value v of d, with the id and name user_fields read. */
int authloop__result_user(authloop__result *r, const authloop__jdoc *d, int v, const char *id,
                          const char *name);
/* The same with the user's text made by the provider (taken; NULL: out of memory). */
int authloop__result_user_text(authloop__result *r, char *text, const char *id, const char *name);
/* Sets r->error, r->http_status and a message (fmt with one %s) ; returns error. */
int authloop__result_fail(authloop__result *r, int error, long status, const char *fmt,
                          const char *arg);

/* ---- the table ------------------------------------------------------------------------ */

#define AUTHLOOP__CAN_GLOBAL_LOGOUT 1

/* logout_request: nothing to send (the server offers no revocation); the
 * logout is then done locally, its event with error 0. login_request:
 * nothing to send for this step (an answer already had, such as an error
 * in a redirect): its login_answer runs from the loop with an empty answer
 * of status 0. */
#define AUTHLOOP__NO_REQUEST 1

typedef struct authloop__provider {
  const char *name;
  unsigned accepts; /* authloop__cred_kind bits a fresh login takes */
  unsigned resumes; /* kinds authloop_set_token() may complete an awaiting login with */
  unsigned flags;
  /* A refresh is never sent sooner than this after the tokens it replaces
   * came (0: any time), so that the server mints tokens that differ. */
  unsigned refresh_floor_ms;

  /* Checks the options this dialect reads (and refuses the ones it has no
   * use for: AUTHLOOP_ENOTSUP), and makes its state. bases[] gets the base
   * URLs it will send to, first the one authloop_request() uses; the engine
   * checks them (https, loopback). */
  int (*init)(const authloop_client_options *o, const authloop__provider_env *env, void **state,
              const char *bases[AUTHLOOP__MAX_BASES]);
  void (*free)(void *state);

  /* Validates a credential with the dialect's own codes and keeps what the
   * login needs; *step is the first step to send. */
  int (*login_start)(void *state, const authloop__credential *cred, int *step);
  int (*login_request)(void *state, const authloop__view *v, int step, authloop__request *out);
  int (*login_answer)(void *state, const authloop__view *v, int step, const authloop__answer *a,
                      authloop__result *out);
  /* A login step's request failed on the way (network, timeout): the delay
   * before it is sent again, or 0 (NULL: always 0): the login ends. */
  long long (*login_retry_ms)(void *state, const authloop__view *v, int step, int error);
  /* The login ended (either way): drop what only it needed. */
  void (*login_end)(void *state);

  /* What must be fetched before a refresh or a logout can be made (an
   * OpenID issuer's discovery and keys, for a session restored from its file
   * or after a key rotation): 0 with a request to send first, whose answer
   * goes to prepare_answer (0, or a failure in out: the refresh is retried
   * as after any failure); AUTHLOOP__NO_REQUEST when nothing is needed. NULL:
   * never anything. */
  int (*prepare_request)(void *state, const authloop__view *v, authloop__request *out);
  int (*prepare_answer)(void *state, const authloop__view *v, const authloop__answer *a,
                        authloop__result *out);

  /* NULL: these tokens are never refreshed */
  int (*refresh_request)(void *state, const authloop__view *v, authloop__request *out);
  int (*refresh_answer)(void *state, const authloop__view *v, const authloop__answer *a,
                        authloop__result *out);

  int (*logout_request)(void *state, const authloop__view *v, int global, authloop__request *out);
  int (*logout_answer)(void *state, const authloop__answer *a, authloop__result *out);

  /* Adds the session's credentials to an application request (base set; the
   * provider may point it at another https base of its own, kept alive in
   * its state until the next call). */
  int (*authorize)(void *state, const authloop__view *v, authloop__request *out);
  /* For the answer to an application request: non-zero when it says the
   * session no longer exists on the server. */
  int (*session_gone)(void *state, const authloop__answer *a);

  /* The id and display name in a user object of this dialect (pointers into
   * it); AUTHLOOP_EPROTO when it is not one. Used for answers and restores. */
  int (*user_fields)(const authloop__jdoc *d, int user, const char **id, const char **name);

  /* Per-ctx data for every client with the same base URL (NULL where the
   * dialect has none): made once, freed with the last such client. */
  void *(*shared_new)(void);
  void (*shared_free)(void *data);

  /* The end-session URL (RP-Initiated Logout) made by the last logout, or
   * NULL; NULL where the dialect has none. */
  const char *(*end_session_url)(void *state);

  /* Pre-auth (the gateway's backend half); NULL elsewhere. */
  int (*preauth_request)(const authloop_preauth_options *o, const char *bearer,
                         authloop__request *out);
  int (*preauth_answer)(const authloop__answer *a, authloop__result *out);
} authloop__provider;

const authloop__provider *authloop__provider_find(const char *name);
/* The provider whose dialect has pre-auth. */
const authloop__provider *authloop__provider_preauth(void);

/* ---- helpers for providers -------------------------------------------------------------- */

/* EPROTO: "malformed response: missing or mistyped "field"". */
int authloop__result_missing(authloop__result *r, long status, const char *field);
/* An application request carries the access token as "Authorization: Bearer". */
int authloop__authorize_bearer(void *state, const authloop__view *v, authloop__request *out);
/* A dialect whose answers never say by themselves that the session is gone
 * (a 401 is answered with a refresh, whose answer tells). */
int authloop__session_never_gone(void *state, const authloop__answer *a);
/* A non-2xx answer without a body this dialect understands. */
int authloop__result_status(authloop__result *r, long status);
/* A string copied into *dst for a result (secret copy). */
int authloop__result_take(authloop__result *r, char **dst, const char *src);
static inline int authloop__is_2xx(long status) { return status >= 200 && status <= 299; }

#endif
