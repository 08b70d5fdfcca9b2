/* SPDX-License-Identifier: MIT */
/* authloop: a login session for event-loop applications.
 *
 * One authloop_ctx per libuv loop; any number of authloop_client sessions on
 * it. Every function here is called from the loop's thread (but
 * authloop_ctx_post()). Several ctxs may run at once on several threads, each
 * on its own loop: they share nothing but the one-time start-up of libcurl
 * and mbedTLS, which authloop does once, under a lock. A call that returns an
 * error fires no event and no callback for that call; a call that returns 0
 * produces exactly one outcome. Functions that return int return 0 or a
 * negative AUTHLOOP_E* code (authloop_on() returns an id > 0); each says which.
 * A NULL handle is AUTHLOOP_EINVAL for them, and a safe "nothing" for queries.
 *
 * Everything that reaches application code (events, done and response
 * callbacks, pre-auth results, posts, log lines) is queued and run from the
 * loop, never from inside the call that caused it, so any callback may call
 * any authloop function: free its own client, close the ctx, log in again.
 */
#ifndef AUTHLOOP_H
#define AUTHLOOP_H

#include "authloop-version.h"

#include <stddef.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(AUTHLOOP_BUILDING_SHARED)
#define AUTHLOOP_EXTERN __declspec(dllexport)
#elif defined(__GNUC__)
#define AUTHLOOP_EXTERN __attribute__((visibility("default")))
#else
#define AUTHLOOP_EXTERN
#endif

/* The library's version at run time: AUTHLOOP_VERSION_HEX's layout, and the
 * string; compare with the headers' AUTHLOOP_VERSION_* when it matters. */
AUTHLOOP_EXTERN unsigned authloop_version(void);
AUTHLOOP_EXTERN const char *authloop_version_string(void);

/* Errors: negative codes with fixed values, never reused, in ranges:
 * -7001.. general, -7101.. pre-auth keys, -7201.. CometChat's validation (with
 * its names), -7301.. Kuzzle. XX(suffix, value, name, message). */
#define AUTHLOOP_ERRNO_MAP(XX)                                                                     \
  XX(EINVAL, -7001, "EINVAL", "invalid argument")                                                  \
  XX(ENOMEM, -7002, "ENOMEM", "out of memory")                                                     \
  XX(EINSECURE, -7003, "EINSECURE",                                                                \
     "plain http is only allowed to loopback; use https or set allow_insecure_http")               \
  XX(ENOPROVIDER, -7004, "ENOPROVIDER", "unknown provider name")                                   \
  XX(ELOGININPROGRESS, -7005, "ERROR_LOGIN_IN_PROGRESS",                                           \
     "Login in progress. Please wait for the login request to finish")                             \
  XX(EALREADY, -7006, "EALREADY", "a user is already logged in; log out first")                    \
  XX(ENOTLOGGEDIN, -7007, "ERROR_NO_USER_LOGGED_IN", "no user is logged in")                       \
  XX(ENOENT, -7008, "ENOENT", "no such listener")                                                  \
  XX(ECLOSING, -7009, "ECLOSING", "the context is closing")                                        \
  XX(ENETWORK, -7010, "ENETWORK", "network failure: could not reach the server")                   \
  XX(ETLS, -7011, "ETLS", "TLS failure: the server's certificate or handshake was refused")        \
  XX(ETIMEDOUT, -7012, "ETIMEDOUT", "the request timed out")                                       \
  XX(ETOOLARGE, -7013, "ETOOLARGE", "the response is larger than the configured limit")            \
  XX(EPROTO, -7014, "EPROTO", "malformed response: bad JSON or missing or mistyped fields")        \
  XX(EREJECTED, -7015, "EREJECTED", "the server rejected the request")                             \
  XX(EUNAVAILABLE, -7016, "EUNAVAILABLE", "the server is unavailable (5xx or 429); try again")     \
  XX(ECANCELED, -7017, "ECANCELED", "the operation was cancelled")                                 \
  XX(EOFFLINE, -7018, "EOFFLINE", "offline: the network is marked unavailable")                    \
  XX(EREVOKED, -7019, "EREVOKED", "the session was revoked or has ended; log in again")            \
  XX(ESTORE, -7020, "ESTORE", "the session file could not be written")                             \
  XX(EWRONGPROVIDER, -7021, "EWRONGPROVIDER",                                                      \
     "this login call belongs to another provider's dialect")                                      \
  XX(ENOTSUP, -7022, "ENOTSUP", "not supported by this provider's dialect")                        \
  XX(EPERM, -7023, "EPERM",                                                                        \
     "the session file is not safe to trust: another user could have written it")                  \
  XX(ERESOLVE, -7024, "ERESOLVE", "the server's host name could not be resolved")                  \
  XX(ECRYPTO, -7025, "ECRYPTO",                                                                    \
     "the crypto library could not start (no entropy source, or psa_crypto_init() failed)")        \
  XX(EKEY, -7101, "EKEY", "the private key could not be read: no such file, or not a PEM key")     \
  XX(EKEYPASS, -7102, "EKEYPASS", "the private key is encrypted: wrong or missing passphrase")     \
  XX(EKEYTYPE, -7103, "EKEYTYPE", "unsupported key: use RSA of 2048 bits or more, or EC P-256")    \
  XX(EKEYCIPHER, -7104, "EKEYCIPHER",                                                              \
     "the key's encryption is not supported here: use traditional PEM encryption (openssl pkey "   \
     "-traditional) or an unencrypted key")                                                        \
  XX(EINVALIDUID, -7201, "ERROR_INVALID_UID", "Please provide a valid UID")                        \
  XX(EUIDSPACE, -7202, "ERROR_UID_WITH_SPACE", "UID cannot contain spaces")                        \
  XX(EAPIKEY, -7203, "ERROR_API_KEY_NOT_FOUND", "ApiKey cannot be null or empty")                  \
  XX(EBLANKAUTHTOKEN, -7204, "ERROR_BLANK_AUTHTOKEN", "Auth token cannot be blank")                \
  XX(EAUTHTOKENSPACE, -7205, "ERROR_AUTHTOKEN_WITH_SPACE", "Auth token cannot contain spaces")     \
  XX(ENOTINIT, -7206, "ERROR_SDK_NOT_INITIALIZED",                                                 \
     "The client is not initialised: give it an app id (and region) in its options")               \
  XX(ECREDENTIALS, -7301, "ECREDENTIALS", "wrong username or password")                            \
  XX(ESTRATEGY, -7302, "ESTRATEGY", "unknown login strategy")                                      \
  XX(EEXPIRESIN, -7303, "EEXPIRESIN",                                                              \
     "invalid expiresIn: use the ms syntax (\"1h\", \"30m\", \"-1\") within the server's maximum")

#define AUTHLOOP_OK 0

enum {
#define AUTHLOOP__ERRNO_ENUM(suffix, value, name, msg) AUTHLOOP_##suffix = value,
  AUTHLOOP_ERRNO_MAP(AUTHLOOP__ERRNO_ENUM)
#undef AUTHLOOP__ERRNO_ENUM
};

/* Message for a code; never NULL. Unknown codes get "unknown error". */
AUTHLOOP_EXTERN const char *authloop_strerror(int err);
/* Symbolic name ("ETIMEDOUT", "ERROR_LOGIN_IN_PROGRESS"); never NULL: "OK"
 * for 0, "UNKNOWN" for a code not in the table. Both are static strings. */
AUTHLOOP_EXTERN const char *authloop_err_name(int err);

/* ---- context: one per loop ------------------------------------------------ */

typedef struct authloop_ctx authloop_ctx;
typedef struct authloop_client authloop_client;
typedef struct authloop_user authloop_user;

typedef enum {
  AUTHLOOP_LOG_ERROR = 0,
  AUTHLOOP_LOG_WARN,
  AUTHLOOP_LOG_INFO,
  AUTHLOOP_LOG_DEBUG
} authloop_log_level;

/* Log lines never carry a token, code, password or key in clear. They are
 * queued and delivered from the loop like events, so the callback may call
 * any authloop function (it is never inside authloop's own code). */
typedef void (*authloop_log_cb)(authloop_log_level level, const char *message, void *userdata);

/* The _INIT macros: the size set, every other field zero. Designated in C;
 * in C++ a value-initialized struct whose size is then set (a braced list
 * that names one field makes -Wmissing-field-initializers speak, even with
 * C++20's designators). Either way -Wextra stays quiet. */
#ifndef __cplusplus
#define AUTHLOOP__SIZED_INIT(T)                                                                    \
  { .size = sizeof(T) }
#else
#define AUTHLOOP__SIZED_INIT(T)                                                                    \
  ([] {                                                                                            \
    T authloop__init_ = T();                                                                       \
    authloop__init_.size = sizeof(T);                                                              \
    return authloop__init_;                                                                        \
  }())
#endif

/* Options structs start with their own size, so that the library can grow
 * them without breaking programs built against an older header: start from
 * the _INIT macro (which sets the size and zeroes the rest), then set what
 * you need; a zero field means its default. A struct without its size is
 * AUTHLOOP_EINVAL; one from a newer header is accepted when the fields this
 * library does not know are zero (else AUTHLOOP_ENOTSUP). */
typedef struct authloop_ctx_options {
  size_t size;            /* sizeof(authloop_ctx_options): AUTHLOOP_CTX_OPTIONS_INIT */
  const char *ca_file;    /* PEM bundle to trust; NULL = system store */
  unsigned timeout_ms;    /* per request; 0 = 30000 */
  size_t max_body_bytes;  /* response body limit; 0 = 1 MiB; at most 256 MiB (SIZE_MAX: that) */
  const char *user_agent; /* NULL = "authloop/<version>" */
  unsigned max_host_connections; /* per host, shared by all clients; 0 = 8 */
  authloop_log_cb log_cb;        /* NULL = silent */
  authloop_log_level log_level;  /* most verbose level passed to log_cb */
  void *log_userdata;
} authloop_ctx_options;

#define AUTHLOOP_CTX_OPTIONS_INIT AUTHLOOP__SIZED_INIT(authloop_ctx_options)

/* Make a ctx on `loop` (NULL = uv_default_loop()); opts may be NULL (every
 * default). Copies what it keeps of opts. The ctx keeps the loop alive (one
 * referenced handle) until it is closed, so a post from another thread always
 * finds the loop running. 0 and *out set; AUTHLOOP_EINVAL (out NULL, a bad
 * option: a user agent with a control byte, opts without its size ...),
 * AUTHLOOP_ENOTSUP (opts from a newer header with a field this library does
 * not know set), AUTHLOOP_ENOMEM, AUTHLOOP_ECRYPTO (no entropy, or mbedTLS's
 * PSA would not start). On any error *out is NULL and the loop is left as
 * found. */
AUTHLOOP_EXTERN int authloop_ctx_new(uv_loop_t *loop, const authloop_ctx_options *opts,
                                     authloop_ctx **out);
/* The ctx's loop; NULL for a NULL ctx. */
AUTHLOOP_EXTERN uv_loop_t *authloop_ctx_loop(const authloop_ctx *ctx);

typedef void (*authloop_close_cb)(authloop_ctx *ctx, void *userdata);

/* Asynchronous close. In-flight operations end with AUTHLOOP_ECANCELED
 * (their events are dispatched first; a login waiting for the user, a
 * browser's redirect or a two-step strategy's token, ends with its
 * loginAttempt), then every client still on the ctx is
 * freed, the ctx's handles are closed, and cb runs (ctx is valid during cb
 * only; cb may be NULL). After that the loop holds nothing of authloop:
 * uv_loop_close() == 0. May be called inside any callback. 0;
 * AUTHLOOP_EINVAL (NULL); a second call returns AUTHLOOP_ECLOSING. */
AUTHLOOP_EXTERN int authloop_ctx_close(authloop_ctx *ctx, authloop_close_cb cb, void *userdata);

/* ---- embedding ---------------------------------------------------------------- */

/* Driving authloop from a loop that is not libuv's (Qt, SDL, a poll loop):
 * watch authloop_ctx_fd() for reading, wake after authloop_ctx_timeout_ms()
 * (-1: nothing is due, wait for the fd only; 0: call process() now), and
 * call authloop_ctx_process() when either happens. process() runs one
 * non-blocking turn of the loop and returns 1; it returns 0 when a close
 * finished during that turn: the ctx is gone (its close callback has run), so
 * stop watching its fd and make no more calls with it.
 * With nothing due, the host loop sleeps: no timer stays armed and the fd
 * stays quiet. The ctx's uv loop must then not be run by anyone else. For a
 * NULL ctx: fd -1, timeout -1, process 0. */
AUTHLOOP_EXTERN int authloop_ctx_fd(const authloop_ctx *ctx);
AUTHLOOP_EXTERN int authloop_ctx_timeout_ms(authloop_ctx *ctx);
AUTHLOOP_EXTERN int authloop_ctx_process(authloop_ctx *ctx);

/* status: 0, or AUTHLOOP_ECANCELED when the ctx closed before fn could run. */
typedef void (*authloop_post_cb)(authloop_ctx *ctx, int status, void *userdata);

/* The one call that any thread may make: runs fn on the loop thread, once,
 * within one turn of the loop (whoever runs it). Every other function is for
 * the loop thread only (the thread that made the ctx); debug builds abort on
 * a call from another thread. Fails with AUTHLOOP_ECLOSING once the ctx is
 * closing; a post still queued when the close starts runs with
 * AUTHLOOP_ECANCELED (the clients still exist then, but every call on them
 * fails). 0; AUTHLOOP_EINVAL (NULL ctx or fn), AUTHLOOP_ENOMEM. Do not call it
 * after the close callback. */
AUTHLOOP_EXTERN int authloop_ctx_post(authloop_ctx *ctx, authloop_post_cb fn, void *userdata);

/* ---- pre-auth: the backend half of the gateway flow ------------------------- */

/* A backend asks the gateway for a one-time authorization code for a user,
 * with a bearer JWT it signs with its own private key (RS256 for RSA of 2048
 * bits or more, ES256 for P-256). The client then logs in with the code. */
typedef struct authloop_preauth_options {
  size_t size;             /* AUTHLOOP_PREAUTH_OPTIONS_INIT */
  const char *gateway_url; /* base URL; also the bearer's "aud" */
  const char *user_id;     /* the user to mint a code for */
  const char *client_id;   /* the bearer's "iss": who the backend is */
  const char *key_file;    /* PEM private key file, or ... */
  const char *key_pem;     /* ... a PEM buffer (key_pem_len 0: NUL-terminated) */
  size_t key_pem_len;
  const char *passphrase;     /* for an encrypted key; NULL if none */
  const char *kid;            /* optional "kid" in the JWT header */
  unsigned bearer_lifetime_s; /* 0 = 60; at most 300 */
  const char *path;           /* NULL = "/auth/pre-auth" */
  int allow_insecure_http;    /* as in authloop_client_options */
} authloop_preauth_options;

#define AUTHLOOP_PREAUTH_OPTIONS_INIT AUTHLOOP__SIZED_INIT(authloop_preauth_options)

typedef struct authloop_preauth_result {
  int status;                     /* 0 or an AUTHLOOP_E* code */
  const char *authorization_code; /* on success */
  const char *message;            /* on failure; the server's own when it sent one */
  const char *server_code;        /* the server's error code as text, or NULL */
  /* (message and server_code: control bytes shown as '?', as in events) */
  int http_status;
} authloop_preauth_result;

/* The result and its strings are valid only during the call. */
typedef void (*authloop_preauth_cb)(authloop_ctx *ctx, const authloop_preauth_result *result,
                                    void *userdata);

/* Signs the bearer and sends the request; cb runs once. Fails at once, with no
 * request sent, on a bad option (AUTHLOOP_EINVAL, AUTHLOOP_EINSECURE) or key
 * (AUTHLOOP_EKEY, AUTHLOOP_EKEYPASS, AUTHLOOP_EKEYTYPE). The key is read,
 * used and wiped within this call. Also AUTHLOOP_ENOTSUP (opts from a newer
 * header), AUTHLOOP_ENOMEM, AUTHLOOP_ECLOSING. 0 means cb will run once, from
 * the loop: with the code, or with AUTHLOOP_E* (EREJECTED with the server's
 * message and code, ENETWORK, ETIMEDOUT, EPROTO ..., ECANCELED on close). */
AUTHLOOP_EXTERN int authloop_preauth(authloop_ctx *ctx, const authloop_preauth_options *opts,
                                     authloop_preauth_cb cb, void *userdata);

/* ---- client: one user session --------------------------------------------- */

typedef enum {
  AUTHLOOP_STATE_LOGGED_OUT = 0,
  AUTHLOOP_STATE_LOGGING_IN,
  AUTHLOOP_STATE_LOGGED_IN,
  AUTHLOOP_STATE_REFRESHING,    /* still logged in: tokens are being renewed */
  AUTHLOOP_STATE_EXPIRED,       /* the session ended without a logout (idle, revoked) */
  AUTHLOOP_STATE_AWAITING_TOKEN /* a two-step strategy: waiting for authloop_set_token() */
} authloop_state;

/* Options a dialect has no use for (app_id on "gateway", refresh_path on
 * "cometchat" ...) make authloop_client_new() fail with AUTHLOOP_ENOTSUP;
 * nothing is silently ignored. docs/protocol.md has the table. */
typedef struct authloop_client_options {
  size_t size; /* AUTHLOOP_CLIENT_OPTIONS_INIT */
  /* dialect: "gateway", "kuzzle", "cometchat", "cognito" or "oidc" (OpenID
   * Connect; base_url is then the issuer) */
  const char *provider;
  /* e.g. "https://chat.example.com"; http only to loopback. For "cometchat",
   * the client API (NULL: https://{app_id}.apiclient-{region}.cometchat.io/v3.0) */
  const char *base_url;
  int allow_insecure_http; /* non-zero: allow plain http to any host */
  /* Paths under the base URL, for every dialect that has the operation;
   * NULL = the default ("/auth/login", Kuzzle "/_login", CometChat "/me";
   * "cognito" and "oidc" take none, AUTHLOOP_ENOTSUP: every Cognito call is
   * a POST to its "/", and OpenID Connect's endpoints come from discovery).
   * Starts with '/', no space, control byte, '?' or '#'. */
  const char *login_path;
  const char *logout_path;
  const char *refresh_path;
  /* token policy (docs/token-policy.md); 0 = default */
  unsigned refresh_margin_s; /* refresh this long before expiry (300), at most half the lifetime */
  unsigned idle_window_s;    /* a user idle this long is not refreshed (3600) */
  unsigned retry_base_ms;    /* first backoff step after a transient failure (1000) */
  unsigned retry_cap_ms;     /* longest backoff step (60000) */
  /* persisted session: NULL = none. session_key, when set, is 32 bytes (AES-256-GCM). */
  const char *session_path;
  const unsigned char *session_key;
  /* "cometchat": the app, and the admin API (NULL: from app id and region) */
  const char *app_id;
  const char *region; /* "eu" (the default), "us", "in" ... */
  const char *admin_url;
  /* "cometchat": the device id sent with logins (printable, no space, at most
   * 128 bytes). NULL: one per installation, derived from the machine, the
   * user and session_path (the same for every client and run that shares the
   * file), or a new one per client without a session file (docs/protocol.md). */
  const char *device_id;
  /* "cognito": the app client's id, and its secret when it has one (the
   * SECRET_HASH is then sent). The endpoint is base_url, or made from region
   * (https://cognito-idp.{region}.amazonaws.com): one of the two. */
  const char *client_id;
  const char *client_secret;
  /* "oidc": the scopes asked for, space-separated (NULL: "openid
   * offline_access"; without offline_access most servers give no refresh
   * token); client_id and client_secret as above (no secret: a public client) */
  const char *scope;
  /* "oidc", for authloop_login_browser(): where the OP sends the browser back
   * (registered with the OP): a custom scheme ("com.example.app:/callback")
   * or a loopback URL (RFC 8252) */
  const char *redirect_uri;
  /* Whether a login fetches the user object: 1 yes, -1 no, 0 the dialect's
   * default; any other value is AUTHLOOP_EINVAL.
   * "oidc" (default no): 1: the userinfo endpoint's answer (its sub checked
   * against the id token's); otherwise the id token's claims.
   * "kuzzle" (default yes): getCurrentUser's answer; -1: one request fewer a
   * login, as the official SDK makes: the user is {"_id"} from the login's
   * answer, without a name (authloop_user_name() NULL). A session restored
   * from its file has the user it was saved with, whatever this option. */
  int userinfo;
} authloop_client_options;

#define AUTHLOOP_CLIENT_OPTIONS_INIT AUTHLOOP__SIZED_INIT(authloop_client_options)

/* Copies what it keeps of opts. Reads the session file, if any, at once
 * (bounded, never blocking on a special file): authloop_is_logged_in() then
 * answers without network. Errors: AUTHLOOP_EINVAL, AUTHLOOP_ENOPROVIDER,
 * AUTHLOOP_EINSECURE (plain http to a host that is not loopback),
 * AUTHLOOP_ENOTSUP, AUTHLOOP_ENOMEM, AUTHLOOP_ECLOSING. */
AUTHLOOP_EXTERN int authloop_client_new(authloop_ctx *ctx, const authloop_client_options *opts,
                                        authloop_client **out);
/* May be called anywhere, inside any callback (its own handlers included),
 * and twice. Transfers in flight are cancelled and no event fires for the
 * client any more. The callbacks of its pending authloop_refresh() and
 * authloop_request() calls still run once, later, from the loop, with
 * AUTHLOOP_ECANCELED; during them the pointer is valid but every call on it
 * fails (AUTHLOOP_EINVAL). Its memory goes after the last of them has run. */
AUTHLOOP_EXTERN void authloop_client_free(authloop_client *c);
/* The client's ctx (NULL for NULL); its state (LOGGED_OUT for NULL); a
 * state's name ("LOGGED_IN"; "UNKNOWN" out of range; a static string). */
AUTHLOOP_EXTERN authloop_ctx *authloop_client_ctx(const authloop_client *c);
AUTHLOOP_EXTERN authloop_state authloop_client_state(const authloop_client *c);
AUTHLOOP_EXTERN const char *authloop_state_name(authloop_state state);

/* Gateway login with a one-time authorization code. The outcome is one
 * loginAttempt event. Fails at once with AUTHLOOP_EINVAL (NULL, empty,
 * whitespace or a control byte in the code), AUTHLOOP_ELOGININPROGRESS,
 * AUTHLOOP_EALREADY, AUTHLOOP_EWRONGPROVIDER (a client of another dialect),
 * AUTHLOOP_EOFFLINE. Every login call checks in this order: the client
 * (EINVAL, ECLOSING), a login in progress, a user logged in, the dialect, the
 * arguments (with the dialect's own codes), the network. A token in the
 * answer that could not be sent in a header makes the login fail with
 * AUTHLOOP_EPROTO. */
AUTHLOOP_EXTERN int authloop_login_code(authloop_client *c, const char *authorization_code);

/* Kuzzle: log in with a strategy ("local", ...) and its credentials (a JSON
 * object as text). expires_in uses the ms syntax ("1h", "30m", "-1" never);
 * NULL means the server's default. A two-step strategy leaves the client
 * AWAITING_TOKEN with no loginAttempt until authloop_set_token(): one that
 * answers without a token, or a redirect strategy (OAuth ...) that answers
 * 302 with the URL to send the user to (authloop_login_redirect()). Errors as for
 * authloop_login_code(), with AUTHLOOP_EINVAL for a strategy or credentials that are not what
 * Kuzzle accepts (credentials not a JSON object, a bad expires_in) and AUTHLOOP_EWRONGPROVIDER on a
 * client that is not "kuzzle". */
AUTHLOOP_EXTERN int authloop_login_strategy(authloop_client *c, const char *strategy,
                                            const char *credentials_json, const char *expires_in);
AUTHLOOP_EXTERN int authloop_login_local(authloop_client *c, const char *username,
                                         const char *password, const char *expires_in);
/* Completes a two-step login with the token obtained elsewhere: one request
 * with it (getCurrentUser, which also uses up a single-use token, once), then
 * loginAttempt; its lifetime is the token's own exp against the server's
 * clock. AUTHLOOP_EINVAL when the client is not AWAITING_TOKEN
 * (AUTHLOOP_ELOGININPROGRESS while a token is being tried);
 * AUTHLOOP_EBLANKAUTHTOKEN (NULL or empty), AUTHLOOP_EAUTHTOKENSPACE,
 * AUTHLOOP_EINVAL (a control byte, not UTF-8). */
AUTHLOOP_EXTERN int authloop_set_token(authloop_client *c, const char *token);
/* While AWAITING_TOKEN after a redirect strategy: the absolute URL to send
 * the user to (the answer's Location), and the server's result as JSON text
 * (Kuzzle: {"headers": {...}, "statusCode": 302}). NULL in any other state or
 * when the answer had none. Valid until control returns to the loop. */
AUTHLOOP_EXTERN const char *authloop_login_redirect(const authloop_client *c);
AUTHLOOP_EXTERN const char *authloop_login_redirect_result(const authloop_client *c);

/* A user name and password: Cognito's USER_PASSWORD_AUTH, Kuzzle's "local"
 * strategy (as authloop_login_local() without expires_in). Errors as for
 * authloop_login_code(), with AUTHLOOP_EINVAL for an empty or non-UTF-8 name
 * or password, or a control byte in the name, and AUTHLOOP_EWRONGPROVIDER on
 * a dialect without passwords. A refused password is a loginAttempt with
 * AUTHLOOP_ECREDENTIALS. */
AUTHLOOP_EXTERN int authloop_login_password(authloop_client *c, const char *username,
                                            const char *password);

/* OpenID Connect: log in with the device authorization grant (RFC 8628).
 * authloop asks the issuer for a code, then a loginPrompt event says that
 * authloop_login_prompt_of() has what to show the user (the URL to visit and
 * the code to enter there); authloop polls the issuer meanwhile (at its
 * interval, slower when asked to) and the login ends with one loginAttempt:
 * success, a refusal (server_code "access_denied"), the code's expiry
 * ("expired_token") or AUTHLOOP_ECANCELED (authloop_login_cancel(), a close).
 * Errors as for authloop_login_code(). */
AUTHLOOP_EXTERN int authloop_login_device(authloop_client *c);

/* OpenID Connect: log in in the user's browser (the authorization code flow
 * with PKCE, for native apps: RFC 8252, RFC 7636). authloop fetches what it
 * needs from the issuer, then stateChanged says AWAITING_TOKEN and
 * authloop_login_redirect() gives the authorization URL to open (with the
 * system browser). The OP sends the browser back to the client's
 * redirect_uri; hand that URL to authloop_login_callback(). Errors as for
 * authloop_login_code(); AUTHLOOP_EINVAL without a redirect_uri. */
AUTHLOOP_EXTERN int authloop_login_browser(authloop_client *c);
/* The URL the browser came back to. authloop checks it belongs to this login
 * (the redirect URI, its state; the issuer when the OP names it): if not,
 * AUTHLOOP_EINVAL and the login still waits (a stray or forged redirect ends
 * nothing). Then the code is exchanged (with the PKCE verifier) and the login
 * ends with one loginAttempt: success, or the OP's refusal ("access_denied"
 * ...). AUTHLOOP_EINVAL also when no browser login waits (AUTHLOOP_ELOGININPROGRESS while
 * the code is being exchanged), AUTHLOOP_EWRONGPROVIDER on another dialect. Once the
 * redirect is taken, a failure to send the exchange (offline ...) ends the
 * login with its loginAttempt, as authloop_set_token() does: the call returns 0. */
AUTHLOOP_EXTERN int authloop_login_callback(authloop_client *c, const char *redirect_url);

typedef struct authloop_login_prompt {
  const char *verification_uri;          /* where the user goes */
  const char *verification_uri_complete; /* the same with the code in it, or NULL */
  const char *user_code;                 /* what the user enters there */
  long expires_in;                       /* seconds the code lives, from the prompt */
  long interval;                         /* seconds between authloop's polls */
} authloop_login_prompt;

/* What a login waiting for the user elsewhere asks of them, from its
 * loginPrompt event until the login ends; NULL otherwise. Valid as the
 * session queries' strings are. */
AUTHLOOP_EXTERN const authloop_login_prompt *authloop_login_prompt_of(const authloop_client *c);

/* Ends a login in progress (LOGGING_IN or AWAITING_TOKEN): its transfer or
 * its wait stops, and its loginAttempt says AUTHLOOP_ECANCELED, from the
 * loop. 0; AUTHLOOP_EINVAL (no login in progress), AUTHLOOP_ECLOSING. */
AUTHLOOP_EXTERN int authloop_login_cancel(authloop_client *c);

/* OpenID Connect: after a logout, the issuer's end-session URL (with the id
 * token as id_token_hint) for the application to open, so that the user's
 * session at the issuer ends too; NULL when the issuer has none, for other
 * dialects, and once a new login begins. Valid as the session queries'
 * strings are. */
AUTHLOOP_EXTERN const char *authloop_end_session_url(const authloop_client *c);

/* CometChat: log in with a uid and the app's auth key (two requests), or with
 * an auth token minted by your backend. Validation happens first, in
 * CometChat's order, with its error names (ERROR_INVALID_UID ...), after
 * the checks every login call makes (see authloop_login_code()). */
AUTHLOOP_EXTERN int authloop_login_key(authloop_client *c, const char *uid, const char *auth_key);
AUTHLOOP_EXTERN int authloop_login_token(authloop_client *c, const char *auth_token);

/* Clears the session locally at once (state LOGGED_OUT) and tells the server;
 * the logout event reports the server's answer (error 0 when acknowledged),
 * once, from the loop. The request still reaches the server if the client is
 * freed at once; closing the ctx waits for it (up to the request timeout).
 * 0; AUTHLOOP_EINVAL, AUTHLOOP_ECLOSING, AUTHLOOP_ENOTLOGGEDIN (nobody is
 * logged in: no event), AUTHLOOP_ENOMEM. */
AUTHLOOP_EXTERN int authloop_logout(authloop_client *c);
/* Kuzzle: log out of every session of this user (global=true); otherwise as
 * authloop_logout(). The gateway and CometChat have no such thing:
 * AUTHLOOP_ENOTSUP, no request, no event, and the session stays. */
AUTHLOOP_EXTERN int authloop_logout_global(authloop_client *c);

/* Session queries. The strings they return (tokens, the user and its
 * fields) stay valid until control returns to the loop: to the end of the
 * callback they were read in or, read outside any callback, until the loop
 * next runs. That holds even if the session changes meanwhile (a logout, a
 * refresh, authloop_client_free()): the old strings are freed (wiped) later.
 * Keep a copy (authloop_copy()) to use one after that. While nobody is
 * logged in (and for NULL): is_logged_in 0, current_user, access_token and
 * id_token NULL. A logged-in session always has an access token and a user;
 * id_token is NULL when the dialect has none (Kuzzle, CometChat). A session
 * restored from its file counts as logged in before any network. */
AUTHLOOP_EXTERN int authloop_is_logged_in(const authloop_client *c);
AUTHLOOP_EXTERN const authloop_user *authloop_current_user(const authloop_client *c);
AUTHLOOP_EXTERN const char *authloop_access_token(const authloop_client *c);
AUTHLOOP_EXTERN const char *authloop_id_token(const authloop_client *c);
/* Lifetime of the access token in seconds as the server granted it; 0 if none. */
AUTHLOOP_EXTERN long authloop_token_lifetime(const authloop_client *c);
/* Milliseconds until the access token expires (0 if expired or none, -1 if
 * it never expires). */
AUTHLOOP_EXTERN long long authloop_token_expires_in_ms(const authloop_client *c);

typedef enum {
  AUTHLOOP_COPY_ACCESS_TOKEN = 0,
  AUTHLOOP_COPY_ID_TOKEN,
  AUTHLOOP_COPY_USER_ID,
  AUTHLOOP_COPY_USER_NAME,
  AUTHLOOP_COPY_USER_JSON
} authloop_copy_what;

/* Copies one of the session's strings into buf (size bytes, NUL-terminated),
 * to keep it past the current loop turn; wipe buf when done with a token.
 * 0, and *len (may be NULL) its length; AUTHLOOP_ETOOLARGE when it does not
 * fit (buf holds "", *len the length needed: never a truncated token);
 * AUTHLOOP_ENOTLOGGEDIN; AUTHLOOP_ENOENT when the session has none (no id
 * token, a user without a name); AUTHLOOP_EINVAL. */
AUTHLOOP_EXTERN int authloop_copy(const authloop_client *c, authloop_copy_what what, char *buf,
                                  size_t size, size_t *len);

/* Records user activity: an active user is kept logged in (refreshed before
 * expiry); an idle one is left to expire. Authenticated requests count too.
 * 0 (also while logged out: it only notes the time); AUTHLOOP_EINVAL for NULL
 * or a freed client. Cheap: no allocation, no request of its own. */
AUTHLOOP_EXTERN int authloop_touch(authloop_client *c);

typedef void (*authloop_done_cb)(authloop_client *c, int status, void *userdata);

/* Refreshes the tokens now, or joins the refresh in flight: every caller gets
 * the same outcome (0 or an error) through cb (may be NULL), once, from the
 * loop. 0; AUTHLOOP_EINVAL, AUTHLOOP_ECLOSING, AUTHLOOP_ENOTLOGGEDIN,
 * AUTHLOOP_ENOTSUP (CometChat, or a token that never expires and no
 * refresh token to renew it with),
 * AUTHLOOP_EOFFLINE, AUTHLOOP_ENOMEM. A refused refresh token ends the
 * session (sessionExpired, reason revoked; cb gets AUTHLOOP_EREVOKED). */
AUTHLOOP_EXTERN int authloop_refresh(authloop_client *c, authloop_done_cb cb, void *userdata);

/* status: 0 when an HTTP answer arrived (see http_status), else AUTHLOOP_E*.
 * body is valid only during the call. */
typedef void (*authloop_response_cb)(authloop_client *c, int status, long http_status,
                                     const char *body, size_t len, void *userdata);

/* An authenticated request to the client's backend: path is appended to the
 * base URL, body_json (may be NULL) is sent as application/json. It carries
 * the dialect's bearer token, counts as activity, waits while a refresh is in
 * flight or the network is offline (up to the ctx timeout), and on a 401
 * refreshes once and retries once (not when the tokens are less than 10 s
 * old, or a failed refresh waits for its retry: cb then gets the 401 as it
 * came). cb runs once, from the loop. 0;
 * AUTHLOOP_EINVAL (NULL client or cb; method other than GET, POST, PUT,
 * PATCH, DELETE; a path not starting with '/' or with a space or control
 * byte; body_json not JSON, or with GET), AUTHLOOP_ECLOSING,
 * AUTHLOOP_ENOTLOGGEDIN, AUTHLOOP_ENOMEM. */
AUTHLOOP_EXTERN int authloop_request(authloop_client *c, const char *method, const char *path,
                                     const char *body_json, authloop_response_cb cb,
                                     void *userdata);

/* Tells authloop the network is gone (0) or back (1), for every server. While
 * offline, logins fail at once with AUTHLOOP_EOFFLINE, refreshes wait and run
 * when the network is back, requests wait up to their timeout.
 * authloop_ctx_is_online() is what the application said. Besides, authloop
 * keeps each server's health (scheme, host, port) on its own: three network
 * failures in a row put that server on hold for 10 s (its logins fail at once
 * with AUTHLOOP_EOFFLINE, requests to it wait), and what waited goes when the
 * hold ends or the server answers again. A host name that does not resolve
 * (AUTHLOOP_ERESOLVE) does not count. set_online: 0, AUTHLOOP_EINVAL,
 * AUTHLOOP_ECLOSING. is_online: 1 or 0 (0 for NULL). */
AUTHLOOP_EXTERN int authloop_ctx_set_online(authloop_ctx *ctx, int online);
AUTHLOOP_EXTERN int authloop_ctx_is_online(const authloop_ctx *ctx);

/* The user's fields, valid as the session queries' strings are. Controls
 * here: C0 (TAB too), DEL, C1, U+2028, U+2029 and the bidirectional ones. id:
 * never NULL for a user of a session, never with a control (a server's answer
 * with one fails the login, AUTHLOOP_EPROTO); name: NULL when the server sent
 * none, its controls shown as '?'. All return NULL for a NULL user. */
AUTHLOOP_EXTERN const char *authloop_user_id(const authloop_user *u);
AUTHLOOP_EXTERN const char *authloop_user_name(const authloop_user *u);
/* A top-level string field of the user object ("email", "tenantId" ...), or
 * NULL (no such field, not a string, NULL key). */
AUTHLOOP_EXTERN const char *authloop_user_field(const authloop_user *u, const char *key);
/* The user object as the server sent it, without whitespace between tokens: the same keys in
 * the same order, string escapes as the server wrote them (CometChat's carries its authToken,
 * as the SDK's user does). Restored from a session file: the same object, as jansson writes
 * it. Kuzzle with the option userinfo -1: {"_id"}, written from the decoded id. */
AUTHLOOP_EXTERN const char *authloop_user_json(const authloop_user *u);

/* ---- events ----------------------------------------------------------------- */

typedef enum {
  AUTHLOOP_EV_LOGIN_ATTEMPT = 0, /* "loginAttempt" */
  AUTHLOOP_EV_LOGOUT,            /* "logout" */
  AUTHLOOP_EV_STATE_CHANGED,     /* "stateChanged" */
  AUTHLOOP_EV_TOKEN_REFRESHED,   /* "tokenRefreshed" */
  AUTHLOOP_EV_TOKEN_EXPIRING,    /* "tokenExpiring": a due refresh was skipped, user idle */
  AUTHLOOP_EV_SESSION_EXPIRED,   /* "sessionExpired" */
  AUTHLOOP_EV_LOGIN_PROMPT,      /* "loginPrompt": the login waits for the user elsewhere */
  AUTHLOOP_EV__COUNT
} authloop_event_type;

typedef enum {
  AUTHLOOP_EXPIRED_NONE = 0,
  AUTHLOOP_EXPIRED_IDLE,    /* "idle": nobody used the session until the token ran out */
  AUTHLOOP_EXPIRED_REVOKED, /* "revoked": the server refused the refresh token */
  /* "refresh_lost": a refresh whose answer never arrived was done by the
   * server (the tokens it gave are lost), which then refused the old ones
   * (Kuzzle allows one refresh per token; a rotated refresh token is spent) */
  AUTHLOOP_EXPIRED_REFRESH_LOST,
  /* "lifetime": the token ran out, and the server had said it never
   * refreshes it (a Kuzzle API key: security.token.refresh_forbidden); the
   * session was kept until then, without refreshes */
  AUTHLOOP_EXPIRED_LIFETIME
} authloop_expiry_reason;

/* Made by the library: fields may be added at the end. */
typedef struct authloop_event {
  authloop_event_type type;
  int success;             /* loginAttempt: 1 or 0 */
  int error;               /* 0 or an AUTHLOOP_E* code */
  const char *message;     /* NULL on success; the server's own message when it sent one */
  const char *server_code; /* the server's error code as text, or NULL */
  int http_status;         /* 0 when no HTTP answer arrived */
  authloop_state old_state, new_state; /* stateChanged */
  long lifetime;                       /* tokenRefreshed: the new lifetime in seconds */
  long long expires_in_ms;             /* tokenExpiring: time left on the token */
  authloop_expiry_reason reason;       /* sessionExpired */
} authloop_event;

/* The event and its strings are valid only during the call. */
typedef void (*authloop_event_cb)(authloop_client *c, const authloop_event *ev, void *userdata);

/* Registers cb for one event type; listeners of a type run in the order
 * they were registered, from the loop. A listener added inside a handler
 * gets the next event, not the one being delivered. Returns a listener id
 * > 0 (never reused on this client), or AUTHLOOP_EINVAL (NULL client or cb,
 * an unknown type, a freed client) or AUTHLOOP_ENOMEM. */
AUTHLOOP_EXTERN int authloop_on(authloop_client *c, authloop_event_type type, authloop_event_cb cb,
                                void *userdata);
/* Removes a listener, at once: inside a handler too, it gets nothing more,
 * not even the rest of the event being delivered. 0; AUTHLOOP_ENOENT (no such
 * listener, or removed already); AUTHLOOP_EINVAL (NULL client, id <= 0). */
AUTHLOOP_EXTERN int authloop_off(authloop_client *c, int listener_id);
/* "loginAttempt" ...; "unknown" out of range; a static string. */
AUTHLOOP_EXTERN const char *authloop_event_name(authloop_event_type type);

#ifdef __cplusplus
}
#endif
#endif /* AUTHLOOP_H */
