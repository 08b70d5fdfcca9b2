/* SPDX-License-Identifier: MIT */
/* The OpenID Connect / OAuth 2.0 dialect (docs/protocol.md, section oidc):
 * discovery (OpenID Connect Discovery 1.0), the issuer's keys (a JWKS), login
 * by the device authorization grant (RFC 8628), refresh with the
 * refresh_token grant (RFC 6749 6), id tokens checked (OpenID Connect Core
 * 3.1.3.7: signature by the issuer's key, iss, aud, azp, exp, iat), logout by
 * revoking the refresh token (RFC 7009) and the end-session URL (RP-Initiated
 * Logout). Client authentication: client_secret_basic with a secret, else
 * the client id in the body (a public client). */
#include "builtin.h"

#include "../jwks.h"
#include "../jwt.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pure.h" /* last */

#define MAX_URL            2048
#define MAX_EXPIRES_IN     (10LL * 366 * 24 * 3600)
#define MAX_QUERY_NAMES    16  /* in an endpoint's own query */
#define SKEW_S             120 /* clock skew allowed on exp, iat and nbf */
#define DEFAULT_INTERVAL_S 5   /* RFC 8628 3.2 */
#define MAX_INTERVAL_S     300
#define SLOW_DOWN_S        5 /* RFC 8628 3.5 */
#define MAX_DEVICE_S       (24 * 3600)
#define JWKS_REFETCH_MS    (60 * 1000) /* at most one refetch a minute for an unknown kid */
#define DEFAULT_SCOPE      "openid offline_access"
#define DEVICE_GRANT       "urn:ietf:params:oauth:grant-type:device_code"

enum {
  STEP_DISCOVER,
  STEP_KEYS,
  STEP_DEVICE,
  STEP_POLL,
  STEP_KEYS_AGAIN,
  STEP_AUTHORIZE, /* the browser login's URL: nothing to send, the app opens it */
  STEP_CODE,      /* the code for the tokens */
  STEP_REFUSED,   /* the redirect said no: nothing to send, the login ends */
  STEP_USERINFO   /* the user from the userinfo endpoint, when asked for */
};

/* What the issuer said (discovery, its keys), shared by every client of the
 * ctx with the same issuer (authloop__provider.shared_new): fetched once. */
typedef struct {
  int discovered;
  char *token_ep, *device_ep, *revocation_ep, *end_session_ep, *jwks_ep, *authorization_ep;
  char *userinfo_ep;
  authloop__jwks keys;
  int have_keys;
  long long keys_at_ms; /* when they were fetched (boot clock) */
  int iss_param;        /* authorization responses carry iss (RFC 9207) */
} issuer_data;

typedef struct {
  /* options */
  char *issuer, *client_id, *scope, *redirect_uri;
  char *
      base; /* the issuer without a trailing slash: discovery's URL is base + the well-known path */
  int userinfo;    /* the user is the userinfo answer, not the id token's claims */
  char *basic;     /* "Basic base64(id:secret)" with a secret, else NULL */
  issuer_data *is; /* the ctx's for this issuer, or own_is */
  issuer_data *own_is;
  /* a browser login in flight: its state, nonce and PKCE verifier, then
   * what the redirect brought */
  int browser;
  char state[23], nonce[23], verifier[44];
  char *code, *refusal, *refusal_text;
  /* a device login in flight */
  char *device_code;
  long long device_until_ms;
  long long interval_s;
  char *held; /* a token answer whose id token names a key not yet had */
  long held_status;
  /* the end-session URL of the last logout */
  char *end_session_url;
} oidc;

/* ---- helpers ------------------------------------------------------------------------- */

static int unreserved(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* application/x-www-form-urlencoded, as RFC 6749 appendix B asks (spaces as
 * %20, which every server reads as the "+" form too). */
static void form_add(authloop__jw *w, const char *name, const char *value) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p;
  if (w->len)
    authloop__jw_raw(w, "&", 1);
  authloop__jw_raw(w, name, strlen(name));
  authloop__jw_raw(w, "=", 1);
  for (p = (const unsigned char *)value; *p; p++) {
    if (unreserved(*p)) {
      authloop__jw_raw(w, (const char *)p, 1);
    } else {
      char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      authloop__jw_raw(w, esc, 3);
    }
  }
}

static char *form_escape(const char *value) {
  authloop__jw w = {NULL, 0, 0, 0};
  char *out;
  form_add(&w, "", value); /* "=value" */
  if (w.failed || !w.data) {
    if (w.data)
      authloop__wipe_free(w.data, w.cap);
    return NULL;
  }
  out = authloop__secret_dup(w.data + 1);
  authloop__wipe_free(w.data, w.cap);
  return out;
}

/* A POST of form fields (w, taken) to an endpoint, with the client's
 * authentication: Basic with a secret, client_id in the body without. */
static int post_form(oidc *o, const char *endpoint, authloop__jw *w, authloop__request *out) {
  int rc;
  if (!o->basic)
    form_add(w, "client_id", o->client_id);
  if (w->failed) {
    if (w->data)
      authloop__wipe_free(w->data, w->cap);
    return AUTHLOOP_ENOMEM;
  }
  out->method = "POST";
  out->base = endpoint;
  out->json = w->data;
  if ((rc = authloop__request_header(out, "Content-Type", "application/x-www-form-urlencoded")) ||
      (rc = authloop__request_header(out, "Accept", "application/json")))
    return rc;
  return o->basic ? authloop__request_header(out, "Authorization", o->basic) : 0;
}

/* Whether the query of URL v names none of the parameters authloop sends (a
 * parameter given twice is an error, RFC 6749 3.1, 3.2; a server that took
 * the first would take the issuer's: "code_challenge_method=plain" ahead of
 * S256 is PKCE undone). Names are compared as a server may read them: a name
 * with an escape is refused, case is ignored, and ';' separates as '&' (as
 * HTML 4 let it). And at most MAX_QUERY_NAMES of them, none empty but at the
 * end: servers keep only so many (Node's querystring 1,000, PHP's
 * max_input_vars), and a query of a thousand '&' would push authloop's
 * code_challenge_method out of what they read, leaving "plain". */
static int query_names_none_of_ours(const char *v) {
  static const char *const ours[] = {
      /* every name authloop sends to an endpoint, the access token's (RFC
       * 6750 2.3: one way a request), and the two that would stand for a
       * whole authorization request (RFC 9101) */
      "access_token",  "client_id",      "client_secret",
      "code",          "code_challenge", "code_challenge_method",
      "code_verifier", "device_code",    "grant_type",
      "id_token_hint", "nonce",          "prompt",
      "redirect_uri",  "refresh_token",  "request",
      "request_uri",   "response_type",  "scope",
      "state",         "token",          "token_type_hint",
  };
  const char *q = strchr(v, '?');
  size_t i, names = 0;
  while (q && *q) {
    size_t len;
    q++;
    len = strcspn(q, "=&;");
    if ((len == 0 && *q) || ++names > MAX_QUERY_NAMES || memchr(q, '%', len) || memchr(q, '+', len))
      return 0;
    for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
      if (strlen(ours[i]) == len && strncasecmp(q, ours[i], len) == 0)
        return 0;
    q = strpbrk(q, "&;");
  }
  return 1;
}

/* An endpoint from the discovery document: absolute, of the issuer's scheme
 * (https, or http where the issuer was allowed it), no fragment, nothing that
 * could not be sent; NULL when absent. 0 or EPROTO. A query is the
 * endpoint's own and stays (RFC 6749 3.1, 3.2; RP-Initiated Logout 2.1):
 * parameters come after it, and it may name none of them. */
static int take_endpoint(const oidc *o, const authloop__jdoc *d, const char *key, char **dst,
                         int required) {
  const char *v = authloop__jstr(d, 0, key);
  size_t scheme = strncmp(o->issuer, "https://", 8) == 0 ? 8 : 7;
  free(*dst);
  *dst = NULL;
  if (!v) {
    /* absent; an optional one given as null or "" is absent too */
    int at = authloop__jget(d, 0, key);
    int mistyped = at >= 0 && !authloop__jis(d, at, AUTHLOOP__J_NULL) &&
                   !authloop__jis(d, at, AUTHLOOP__J_STRING);
    return required || mistyped ? AUTHLOOP_EPROTO : 0;
  }
  /* the authorization and end-session URLs go to browsers: the one rule
   * for those (printable ASCII, a host, no credentials), for them all */
  if (strlen(v) > MAX_URL || strncmp(v, o->issuer, scheme) != 0 ||
      !authloop__browser_url_ok(v, scheme == 7) || strpbrk(v, "#\\") ||
      !query_names_none_of_ours(v))
    return AUTHLOOP_EPROTO;
  /* plain http is the issuer's own (allowed to loopback): its origin only */
  if (scheme == 7) {
    size_t io = scheme + strcspn(o->issuer + scheme, "/");
    if (strncmp(v, o->issuer, io) != 0 || (v[io] != '/' && v[io] != '?' && v[io] != '\0'))
      return AUTHLOOP_EPROTO;
  }
  return (*dst = strdup(v)) ? 0 : AUTHLOOP_ENOMEM;
}

/* {"error": ..., "error_description": ...} (RFC 6749 5.2) into out; the
 * error code, or NULL. */
static const char *oauth_error(const authloop__answer *a, authloop__result *out) {
  authloop__jdoc d;
  const char *code, *desc;
  authloop__result_status(out, a->status);
  if (authloop__jdoc_parse(&d, a->body, a->len) == 0 && (code = authloop__jstr(&d, 0, "error")) &&
      strlen(code) < 128 && authloop__text_ok(code)) {
    out->server_code = strdup(code);
    /* shown to users: text only, of a sane length (RFC 6749 5.2 allows
     * only printable ASCII in it) */
    if ((desc = authloop__jstr(&d, 0, "error_description")) && strlen(desc) <= 1024 &&
        authloop__text_ok(desc)) {
      free(out->message);
      out->message = strdup(desc);
    }
  }
  authloop__jdoc_free(&d);
  return out->server_code;
}

/* ---- id tokens ------------------------------------------------------------------------ */

/* "aud" is the client, alone or among others (then "azp" must be it). */
static int audience_ok(const oidc *o, const authloop__jdoc *d) {
  int aud = authloop__jget(d, 0, "aud"), end, i, found = 0, n = 0;
  const char *azp = authloop__jstr(d, 0, "azp");
  if (authloop__jis(d, aud, AUTHLOOP__J_STRING))
    return strcmp(authloop__jstring(d, aud), o->client_id) == 0 &&
           (!azp || strcmp(azp, o->client_id) == 0);
  if (!authloop__jis(d, aud, AUTHLOOP__J_ARRAY))
    return 0;
  end = aud + (int)d->tok[aud].skip;
  for (i = aud + 1; i < end; i += (int)d->tok[i].skip, n++) {
    const char *s = authloop__jstring(d, i);
    if (!s)
      return 0;
    found |= strcmp(s, o->client_id) == 0;
  }
  return found &&
         (n == 1 ? !azp || strcmp(azp, o->client_id) == 0 : azp && strcmp(azp, o->client_id) == 0);
}

/* An id token's iss names the issuer exactly (OpenID Connect Core 3.1.3.7,
 * point 2), with one exception: Google's reference for its OpenID Connect
 * endpoints says its issuer, "https://accounts.google.com", is also given
 * without the scheme for older integrations. Only for that issuer, and only
 * that one name. */
static int made_by_issuer(const oidc *o, const char *iss) {
  static const char google[] = "https://accounts.google.com";
  return strcmp(iss, o->issuer) == 0 ||
         (strcmp(o->issuer, google) == 0 && strcmp(iss, google + strlen("https://")) == 0);
}

/* The id token's signature and claims (OpenID Connect Core 3.1.3.7, and
 * 12.2 for a refresh's: the same subject). 0 with the claims as text in
 * *claims; AUTHLOOP_ENOENT: signed by a key not (yet) had; else a failure
 * in out. */
static int check_id_token(oidc *o, const authloop__view *v, const char *token, const char *sub_was,
                          authloop__result *out, long status, char **claims) {
  authloop__jdoc d;
  const char *iss, *sub;
  long long exp, iat, nbf, now = v->now_wall_ms / 1000;
  int at;
  int rc = o->is->have_keys ? authloop__jws_verify(token, &o->is->keys) : AUTHLOOP_ENOENT;
  const char *why = NULL;
  *claims = NULL;
  if (rc == AUTHLOOP_ENOENT && sub_was) {
    /* a refresh's, signed by a key not had (the issuer rotated its keys,
     * or this ctx never fetched them: a restored session): it came straight
     * from the token endpoint over TLS, which vouches for it (OpenID Connect
     * Core 3.1.3.7, point 6); its claims are checked. The keys are fetched
     * by logins only: a refresh never waits on them */
    rc = 0;
  }
  if (rc == AUTHLOOP_ENOENT || rc == AUTHLOOP_ENOMEM)
    return rc == AUTHLOOP_ENOMEM ? authloop__result_fail(out, rc, status, NULL, NULL) : rc;
  if (rc != 0)
    return authloop__result_fail(out, AUTHLOOP_EPROTO, status, "the id token is refused: %s",
                                 rc == AUTHLOOP_EREJECTED ? "its signature does not verify"
                                                          : "not a JWS of RS256 or ES256");
  if ((rc = authloop__jwt_claims_text(token, claims)) != 0 ||
      authloop__jdoc_parse(&d, *claims, strlen(*claims)) != 0) {
    authloop__secret_free(*claims);
    *claims = NULL;
    return rc == AUTHLOOP_ENOMEM ? authloop__result_fail(out, rc, status, NULL, NULL)
                                 : authloop__result_missing(out, status, "id_token");
  }
  iss = authloop__jstr(&d, 0, "iss");
  sub = authloop__jstr(&d, 0, "sub");
  if (!iss || !made_by_issuer(o, iss))
    why = "another issuer made it";
  else if (!audience_ok(o, &d))
    why = "it is not for this client";
  else if (!sub || (sub_was && strcmp(sub, sub_was) != 0))
    why = "its subject is missing or not the session's";
  else if (authloop__jint(&d, authloop__jget(&d, 0, "exp"), &exp) != 0 || exp <= now - SKEW_S)
    why = "it has expired";
  else if (authloop__jint(&d, authloop__jget(&d, 0, "iat"), &iat) != 0 || iat > now + SKEW_S)
    why = "it was issued in the future";
  else if ((at = authloop__jget(&d, 0, "nbf")) >= 0 &&
           (authloop__jint(&d, at, &nbf) != 0 || nbf > now + SKEW_S))
    why = "it is not valid yet"; /* RFC 7519 4.1.5 */
  else if (o->browser && !sub_was &&
           (!authloop__jstr(&d, 0, "nonce") || strcmp(authloop__jstr(&d, 0, "nonce"), o->nonce)))
    why = "its nonce is not this login's"; /* a replayed or injected token */
  authloop__jdoc_free(&d);
  if (why) {
    authloop__secret_free(*claims);
    *claims = NULL;
    return authloop__result_fail(out, AUTHLOOP_EPROTO, status, "the id token is refused: %s", why);
  }
  return 0;
}

static int user_fields(const authloop__jdoc *d, int user, const char **id, const char **name) {
  int n = authloop__jget(d, user, "name");
  /* sub: at most 255 bytes (OpenID Connect Core 2 says ASCII characters; a
   * provider's UTF-8 is taken), no control (the engine refuses the rest) */
  if (!authloop__jis(d, user, AUTHLOOP__J_OBJECT) || !(*id = authloop__jstr(d, user, "sub")) ||
      strlen(*id) > 255 || !authloop__text_ok(*id))
    return AUTHLOOP_EPROTO;
  if (n < 0)
    n = authloop__jget(d, user, "preferred_username");
  if (n >= 0 && !authloop__jis(d, n, AUTHLOOP__J_STRING))
    n = -1; /* a name of another type is no display name */
  *name = authloop__jstring(d, n);
  return 0;
}

/* Whether key is there as neither a string nor null. */
static int mistyped(const authloop__jdoc *d, const char *key) {
  int at = authloop__jget(d, 0, key);
  return at >= 0 && !authloop__jis(d, at, AUTHLOOP__J_NULL) &&
         !authloop__jis(d, at, AUTHLOOP__J_STRING);
}

/* A token answer (RFC 6749 5.1). sub_was: a refresh's session subject
 * (NULL on a login, whose answer must carry an id token). ENOENT when its
 * id token names a key not had (out untouched). */
static int token_answer(oidc *o, const authloop__view *v, const authloop__answer *a,
                        const char *sub_was, authloop__result *out) {
  const char *access, *refresh = NULL, *id, *type, *uid, *uname;
  authloop__jdoc d, u;
  char *claims = NULL;
  int ttl, rc = 0;
  long long n;
  if (authloop__answer_doc(a, out, &d) != 0 || !authloop__jis(&d, 0, AUTHLOOP__J_OBJECT)) {
    if (!out->error)
      authloop__result_missing(out, a->status, "access_token");
    goto done;
  }
  access = authloop__jstr(&d, 0, "access_token");
  refresh = authloop__jstr(&d, 0, "refresh_token");
  id = authloop__jstr(&d, 0, "id_token");
  type = authloop__jstr(&d, 0, "token_type");
  ttl = authloop__jget(&d, 0, "expires_in");
  if (!access) {
    authloop__result_missing(out, a->status, "access_token");
    goto done;
  }
  if (!type || strcasecmp(type, "Bearer") != 0) { /* DPoP or MAC tokens are not sent here */
    authloop__result_missing(out, a->status, "token_type");
    goto done;
  }
  /* null or "" is absent (the refresh token held is kept, RFC 6749 6);
   * another type is a broken answer */
  if (mistyped(&d, "refresh_token") || mistyped(&d, "id_token") || (!sub_was && !id)) {
    authloop__result_missing(out, a->status, !id ? "id_token" : "refresh_token");
    goto done;
  }
  if (ttl >= 0) {
    /* a number, or a number as a string as some servers send it */
    const char *text = authloop__jstring(&d, ttl);
    if (text && strlen(text) >= 1 && strlen(text) <= 10 &&
        strspn(text, "0123456789") == strlen(text))
      n = strtoll(text, NULL, 10);
    else if (authloop__jint(&d, ttl, &n) != 0)
      n = 0;
    if (n <= 0 || n > MAX_EXPIRES_IN) {
      authloop__result_missing(out, a->status, "expires_in");
      goto done;
    }
    out->lifetime_s = n;
  } else {
    out->lifetime_s = authloop__jwt_lifetime(access, &n) == 0 ? n : AUTHLOOP__LIFETIME_NEVER;
  }
  if (id && (rc = check_id_token(o, v, id, sub_was, out, a->status, &claims)) != 0)
    goto done;
  if (claims) {
    if (authloop__jdoc_parse(&u, claims, strlen(claims)) == 0 &&
        user_fields(&u, 0, &uid, &uname) == 0) {
      rc = authloop__result_user_text(out, claims, uid, uname);
      claims = NULL;
    } else {
      authloop__result_missing(out, a->status, "id_token");
    }
    authloop__jdoc_free(&u);
  }
  if (!out->error && authloop__result_take(out, &out->access_token, access) == 0 &&
      authloop__result_take(out, &out->id_token, id) == 0)
    authloop__result_take(out, &out->refresh_token, refresh);
done:
  /* a refresh refused all the same (its id token, a field): a rotated
   * refresh token in it replaces the spent one (the engine keeps it), or
   * the next try would reuse a token the OP has revoked the grant for */
  if (out->error && sub_was && refresh && *refresh && !out->refresh_token)
    out->refresh_token = authloop__secret_dup(refresh);
  authloop__secret_free(claims);
  authloop__jdoc_free(&d);
  return rc == AUTHLOOP_ENOENT ? rc : out->error;
}

/* ---- the table ------------------------------------------------------------------------- */

static void login_end(void *state) {
  oidc *o = state;
  authloop__secret_free(o->device_code);
  authloop__secret_free(o->held);
  authloop__secret_free(o->code);
  free(o->refusal);
  free(o->refusal_text);
  o->device_code = o->held = o->code = o->refusal = o->refusal_text = NULL;
  o->browser = 0;
  mbedtls_platform_zeroize(o->state, sizeof(o->state));
  mbedtls_platform_zeroize(o->nonce, sizeof(o->nonce));
  mbedtls_platform_zeroize(o->verifier, sizeof(o->verifier));
}

static void issuer_free(void *data) {
  issuer_data *is = data;
  if (!is)
    return;
  free(is->token_ep);
  free(is->device_ep);
  free(is->revocation_ep);
  free(is->end_session_ep);
  free(is->jwks_ep);
  free(is->authorization_ep);
  free(is->userinfo_ep);
  authloop__jwks_free(&is->keys);
  free(is);
}

static void *issuer_new(void) { return calloc(1, sizeof(issuer_data)); }

static void oidc_free(void *state) {
  oidc *o = state;
  if (!o)
    return;
  login_end(o);
  free(o->issuer);
  free(o->base);
  free(o->client_id);
  free(o->scope);
  free(o->redirect_uri);
  authloop__secret_free(o->basic);
  authloop__secret_free(o->end_session_url);
  issuer_free(o->own_is);
  free(o);
}

/* "Basic " + base64(form(id) ":" form(secret)) (RFC 6749 2.3.1) */
static char *basic_auth(const char *id, const char *secret) {
  char *eid = form_escape(id), *esec = form_escape(secret), *pair = NULL, *out = NULL;
  size_t n, olen = 0;
  if (eid && esec && (pair = malloc(strlen(eid) + strlen(esec) + 2))) {
    n = (size_t)sprintf(pair, "%s:%s", eid, esec);
    if ((out = malloc(6 + (n + 2) / 3 * 4 + 1))) {
      memcpy(out, "Basic ", 6);
      if (mbedtls_base64_encode((unsigned char *)out + 6, (n + 2) / 3 * 4 + 1, &olen,
                                (unsigned char *)pair, n) != 0) {
        free(out);
        out = NULL;
      }
    }
    authloop__wipe_free(pair, n + 1);
  }
  authloop__secret_free(eid);
  authloop__secret_free(esec);
  return out;
}

/* A redirect URI: "scheme:" then printable, no space or fragment, bounded. */
static int redirect_uri_ok(const char *s) {
  size_t i = 0;
  if (strlen(s) > MAX_URL || !authloop__text_ok(s) || authloop__has_space(s) || strchr(s, '#'))
    return 0;
  while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
         (i > 0 && ((s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.')))
    i++;
  return i > 0 && s[i] == ':' && s[i + 1];
}

static int scope_ok(const char *s) {
  const unsigned char *p;
  if (!*s || strlen(s) > 1024)
    return 0;
  for (p = (const unsigned char *)s; *p; p++) /* RFC 6749 3.3: %x21 / %x23-5B / %x5D-7E, spaces */
    if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
      return 0;
  return 1;
}

static int init(const authloop_client_options *opt, const authloop__provider_env *env, void **state,
                const char *bases[AUTHLOOP__MAX_BASES]) {
  oidc *o;
  size_t n;
  (void)env;
  if (opt->userinfo < -1 || opt->userinfo > 1)
    return AUTHLOOP_EINVAL;
  if (opt->app_id || opt->region || opt->admin_url || opt->device_id || opt->login_path ||
      opt->logout_path || opt->refresh_path)
    return AUTHLOOP_ENOTSUP;
  if (!opt->base_url || !opt->client_id || !*opt->client_id || strlen(opt->client_id) > 256 ||
      !authloop__text_ok(opt->client_id) || (opt->scope && !scope_ok(opt->scope)) ||
      (opt->client_secret && (!*opt->client_secret || strlen(opt->client_secret) > 512 ||
                              !authloop__text_ok(opt->client_secret))) ||
      strlen(opt->base_url) > MAX_URL || strpbrk(opt->base_url, "?#") ||
      (opt->redirect_uri && !redirect_uri_ok(opt->redirect_uri)))
    return AUTHLOOP_EINVAL;
  if (!(o = calloc(1, sizeof(*o))))
    return AUTHLOOP_ENOMEM;
  /* the issuer exactly as configured (discovery's, the tokens' and the
   * redirects' iss must be it, trailing slash and all: Discovery 4.3), and
   * without its trailing slash for the well-known path (Discovery 4.1) */
  n = strlen(opt->base_url);
  while (n > 8 && opt->base_url[n - 1] == '/')
    n--;
  if (!(o->issuer = strdup(opt->base_url)) || !(o->base = strndup(opt->base_url, n)) ||
      !(o->client_id = strdup(opt->client_id)) ||
      !(o->scope = strdup(opt->scope ? opt->scope : DEFAULT_SCOPE)) ||
      (opt->redirect_uri && !(o->redirect_uri = strdup(opt->redirect_uri))) ||
      (opt->client_secret && !(o->basic = basic_auth(opt->client_id, opt->client_secret)))) {
    oidc_free(o);
    return AUTHLOOP_ENOMEM;
  }
  o->userinfo = opt->userinfo == 1;
  /* the ctx's data for this issuer; a client made without one (tests) keeps its own */
  if (!(o->is = env->shared) && !(o->is = o->own_is = issuer_new())) {
    oidc_free(o);
    return AUTHLOOP_ENOMEM;
  }
  *state = o;
  bases[0] = o->base;
  return 0;
}

/* 16 or 32 random bytes as base64url text (22 or 43 characters). */
static void random_text(char *dst, size_t size, const unsigned char *bytes, size_t n) {
  char *t = authloop__b64url_encode(bytes, n);
  if (t) {
    snprintf(dst, size, "%s", t);
    authloop__secret_free(t);
  } else {
    dst[0] = '\0';
  }
}

static int hexval(char ch) {
  return ch >= '0' && ch <= '9'   ? ch - '0'
         : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                  : -1;
}

/* One query value, form-decoded ('+' a space, %XX a byte) into a new
 * string: NULL when malformed or out of memory (*nomem says which). */
static char *form_decode(const char *v, size_t n, int *nomem) {
  char *out = malloc(n + 1);
  size_t i, j = 0;
  if (!out) {
    *nomem = 1;
    return NULL;
  }
  for (i = 0; i < n; i++) {
    if (v[i] == '%') {
      int hi, lo;
      if (i + 2 >= n || (hi = hexval(v[i + 1])) < 0 || (lo = hexval(v[i + 2])) < 0 ||
          (hi == 0 && lo == 0)) {
        free(out);
        return NULL; /* a bad escape, or a NUL */
      }
      out[j++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[j++] = v[i] == '+' ? ' ' : v[i];
    }
  }
  out[j] = '\0';
  return out;
}

/* The redirect the browser came back to: it must be the redirect URI with
 * this login's state (and the issuer, when the OP names it: RFC 9207).
 * Then its code, or its error, is kept. AUTHLOOP_EINVAL: not this login's
 * (the login goes on waiting); AUTHLOOP_ENOMEM. */
static int take_redirect(oidc *o, const char *url, int *step) {
  static const char *const names[] = {"state", "code", "error", "error_description", "iss"};
  char *val[5] = {NULL, NULL, NULL, NULL, NULL};
  size_t rl = strlen(o->redirect_uri), i;
  const char *p, *end;
  int rc = AUTHLOOP_EINVAL, nomem = 0;
  if (strncmp(url, o->redirect_uri, rl) != 0 ||
      url[rl] != (strchr(o->redirect_uri, '?') ? '&' : '?') || strchr(url, '#'))
    return AUTHLOOP_EINVAL;
  for (p = url + rl + 1; *p; p = *end ? end + 1 : end) {
    const char *eq;
    end = strchr(p, '&');
    if (!end)
      end = p + strlen(p);
    eq = memchr(p, '=', (size_t)(end - p));
    for (i = 0; eq && i < 5; i++)
      if ((size_t)(eq - p) == strlen(names[i]) && strncmp(p, names[i], strlen(names[i])) == 0) {
        if (val[i]) /* a parameter twice (RFC 6749 3.1) */
          goto done;
        if (!(val[i] = form_decode(eq + 1, (size_t)(end - eq - 1), &nomem)))
          goto done;
      }
  }
  if (!val[0] || strcmp(val[0], o->state) != 0 || (val[4] && strcmp(val[4], o->issuer) != 0) ||
      (!val[4] && o->is->iss_param) || /* RFC 9207 2.4: required where the OP says it sends it */
      !!val[1] == !!val[2] || (val[2] && (!*val[2] || !authloop__text_ok(val[2]))) ||
      (val[1] && (!*val[1] || !authloop__text_ok(val[1]) || authloop__has_space(val[1]))))
    goto done;
  if (val[1]) {
    o->code = val[1];
    val[1] = NULL;
    *step = STEP_CODE;
  } else {
    o->refusal = val[2];
    val[2] = NULL;
    if (val[3] && authloop__text_ok(val[3])) {
      o->refusal_text = val[3];
      val[3] = NULL;
    }
    *step = STEP_REFUSED;
  }
  rc = 0;
done:
  for (i = 0; i < 5; i++)
    authloop__secret_free(val[i]);
  return nomem ? AUTHLOOP_ENOMEM : rc;
}

static int login_start(void *state, const authloop__credential *cred, int *step) {
  oidc *o = state;
  if (cred->kind == AUTHLOOP__CRED_TOKEN) /* the browser came back */
    return o->browser && !o->code && !o->refusal ? take_redirect(o, cred->token, step)
                                                 : AUTHLOOP_EINVAL;
  login_end(o);
  if (cred->kind == AUTHLOOP__CRED_BROWSER) {
    if (!o->redirect_uri)
      return AUTHLOOP_EINVAL;
    o->browser = 1;
    /* each from bytes of its own: the nonce goes out in the URL, the
     * verifier (RFC 7636 4.1: 256 bits) must owe nothing to it */
    random_text(o->state, sizeof(o->state), cred->random, 16);
    random_text(o->nonce, sizeof(o->nonce), cred->random + 16, 16);
    random_text(o->verifier, sizeof(o->verifier), cred->random + 32, 32);
    if (!o->state[0] || !o->nonce[0] || !o->verifier[0])
      return AUTHLOOP_ENOMEM;
  }
  *step = !o->is->discovered  ? STEP_DISCOVER
          : !o->is->have_keys ? STEP_KEYS
          : o->browser        ? STEP_AUTHORIZE
                              : STEP_DEVICE;
  return 0;
}

/* endpoint, then the parameters in q after its own query's, if it has one
 * (only the first '?' starts a query: a later one is data, RFC 3986 3.4). */
static void url_with_query(authloop__jw *u, const char *endpoint, const authloop__jw *q) {
  size_t n = strlen(endpoint);
  const char *query = strchr(endpoint, '?');
  authloop__jw_raw(u, endpoint, n);
  if (!query)
    authloop__jw_raw(u, "?", 1);
  else if (query[1] != '\0' && endpoint[n - 1] != '&')
    authloop__jw_raw(u, "&", 1);
  if (q->data)
    authloop__jw_raw(u, q->data, q->len);
}

/* The authorization URL (RFC 6749 4.1.1, RFC 7636 4.3, OpenID Connect Core
 * 3.1.2.1): for the app to open in the browser. */
static int authorization_url(oidc *o, authloop__result *out) {
  unsigned char hash[32];
  char challenge[44];
  authloop__jw q = {NULL, 0, 0, 0}, u = {NULL, 0, 0, 0};
  if (!o->is->authorization_ep)
    return authloop__result_fail(out, AUTHLOOP_ENOTSUP, 0, "%s",
                                 "the issuer has no authorization endpoint");
  if (mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)o->verifier,
                 strlen(o->verifier), hash) != 0)
    return authloop__result_fail(out, AUTHLOOP_ENOMEM, 0, NULL, NULL);
  random_text(challenge, sizeof(challenge), hash, sizeof(hash));
  form_add(&q, "response_type", "code");
  form_add(&q, "client_id", o->client_id);
  form_add(&q, "redirect_uri", o->redirect_uri);
  form_add(&q, "scope", o->scope);
  form_add(&q, "state", o->state);
  form_add(&q, "nonce", o->nonce);
  form_add(&q, "code_challenge", challenge);
  form_add(&q, "code_challenge_method", "S256");
  /* offline access is granted only with consent asked (Core 11) */
  if (strstr(o->scope, "offline_access"))
    form_add(&q, "prompt", "consent");
  url_with_query(&u, o->is->authorization_ep, &q);
  if (q.data)
    authloop__wipe_free(q.data, q.cap);
  if (u.failed || q.failed || !challenge[0] || !(out->redirect_url = strdup(u.data))) {
    if (u.data)
      authloop__wipe_free(u.data, u.cap);
    return authloop__result_fail(out, AUTHLOOP_ENOMEM, 0, NULL, NULL);
  }
  authloop__wipe_free(u.data, u.cap);
  out->next = AUTHLOOP__NEXT_AWAIT;
  return 0;
}

static int get(const char *base, const char *path, authloop__request *out) {
  int rc;
  out->method = "GET";
  out->base = base;
  if ((rc = authloop__request_header(out, "Accept", "application/json")) != 0)
    return rc;
  return path ? authloop__request_path(out, path, 0) : 0;
}

static int login_request(void *state, const authloop__view *v, int step, authloop__request *out) {
  oidc *o = state;
  authloop__jw w = {NULL, 0, 0, 0};
  switch (step) {
  case STEP_DISCOVER:
    return get(o->base, "/.well-known/openid-configuration", out);
  case STEP_KEYS:
  case STEP_KEYS_AGAIN:
    return get(o->is->jwks_ep, NULL, out);
  default:
    break;
  }
  if (step == STEP_AUTHORIZE || step == STEP_REFUSED)
    return AUTHLOOP__NO_REQUEST;
  if (step == STEP_USERINFO) {
    out->bearer = v->access_token;
    return get(o->is->userinfo_ep, NULL, out);
  }
  if (step == STEP_CODE) {
    form_add(&w, "grant_type", "authorization_code");
    form_add(&w, "code", o->code);
    form_add(&w, "redirect_uri", o->redirect_uri);
    form_add(&w, "code_verifier", o->verifier);
    return post_form(o, o->is->token_ep, &w, out);
  }
  if (step == STEP_DEVICE) {
    if (!o->is->device_ep)
      return AUTHLOOP_ENOTSUP;
    form_add(&w, "scope", o->scope);
    return post_form(o, o->is->device_ep, &w, out);
  }
  form_add(&w, "grant_type", DEVICE_GRANT);
  form_add(&w, "device_code", o->device_code);
  return post_form(o, o->is->token_ep, &w, out);
}

/* The discovery document (OpenID Connect Discovery 1.0, 3 and 4.3). */
static int discovery_answer(oidc *o, const authloop__answer *a, authloop__result *out) {
  issuer_data t = {0};
  authloop__jdoc d;
  const char *iss;
  int rc, iss_param;
  if (!authloop__is_2xx(a->status))
    return authloop__result_status(out, a->status);
  if (authloop__answer_doc(a, out, &d) != 0 || !authloop__jis(&d, 0, AUTHLOOP__J_OBJECT)) {
    authloop__jdoc_free(&d);
    return out->error ? out->error : authloop__result_missing(out, a->status, "issuer");
  }
  iss = authloop__jstr(&d, 0, "issuer");
  if (!iss || strcmp(iss, o->issuer) != 0) {
    authloop__result_fail(out, AUTHLOOP_EPROTO, a->status,
                          "the discovery document is another issuer's: %s",
                          iss && authloop__text_ok(iss) && strlen(iss) < 200 ? iss : "?");
    authloop__jdoc_free(&d);
    return out->error;
  }
  /* read whole into t, then taken: a bad document (a client's concurrent
   * discovery) leaves what the issuer said before as it was */
  if ((rc = take_endpoint(o, &d, "token_endpoint", &t.token_ep, 1)) == 0 &&
      (rc = take_endpoint(o, &d, "jwks_uri", &t.jwks_ep, 1)) == 0 &&
      (rc = take_endpoint(o, &d, "device_authorization_endpoint", &t.device_ep, 0)) == 0 &&
      (rc = take_endpoint(o, &d, "revocation_endpoint", &t.revocation_ep, 0)) == 0 &&
      (rc = take_endpoint(o, &d, "authorization_endpoint", &t.authorization_ep, 0)) == 0 &&
      (rc = take_endpoint(o, &d, "userinfo_endpoint", &t.userinfo_ep, 0)) == 0)
    rc = take_endpoint(o, &d, "end_session_endpoint", &t.end_session_ep, 0);
  iss_param =
      authloop__jis(&d, authloop__jget(&d, 0, "authorization_response_iss_parameter_supported"),
                    AUTHLOOP__J_TRUE);
  authloop__jdoc_free(&d);
  if (rc) {
    const char *what = !t.token_ep ? "token_endpoint" : !t.jwks_ep ? "jwks_uri" : "endpoint";
    free(t.token_ep);
    free(t.jwks_ep);
    free(t.device_ep);
    free(t.revocation_ep);
    free(t.authorization_ep);
    free(t.userinfo_ep);
    free(t.end_session_ep);
    if (rc == AUTHLOOP_ENOMEM)
      return authloop__result_fail(out, rc, a->status, NULL, NULL);
    return authloop__result_fail(out, rc, a->status,
                                 "the discovery document has a bad or missing %s", what);
  }
  free(o->is->token_ep);
  free(o->is->jwks_ep);
  free(o->is->device_ep);
  free(o->is->revocation_ep);
  free(o->is->authorization_ep);
  free(o->is->userinfo_ep);
  free(o->is->end_session_ep);
  o->is->userinfo_ep = t.userinfo_ep;
  o->is->token_ep = t.token_ep;
  o->is->jwks_ep = t.jwks_ep;
  o->is->device_ep = t.device_ep;
  o->is->revocation_ep = t.revocation_ep;
  o->is->authorization_ep = t.authorization_ep;
  o->is->end_session_ep = t.end_session_ep;
  o->is->iss_param = iss_param;
  o->is->discovered = 1;
  return 0;
}

static int keys_answer(oidc *o, const authloop__view *v, const authloop__answer *a,
                       authloop__result *out) {
  authloop__jwks keys;
  int rc;
  if (!authloop__is_2xx(a->status))
    return authloop__result_status(out, a->status);
  if ((rc = authloop__jwks_parse(a->body, a->len, &keys)) != 0) {
    authloop__jwks_free(&keys);
    return rc == AUTHLOOP_ENOMEM ? authloop__result_fail(out, rc, a->status, NULL, NULL)
                                 : authloop__result_missing(out, a->status, "keys");
  }
  authloop__jwks_free(&o->is->keys);
  o->is->keys = keys;
  o->is->have_keys = 1;
  o->is->keys_at_ms = v->now_ms;
  return 0;
}

/* The device authorization answer (RFC 8628 3.2): the codes for the user,
 * the device code to poll with. */
static int device_answer(oidc *o, const authloop__view *v, const authloop__answer *a,
                         authloop__result *out) {
  authloop__jdoc d;
  const char *dc, *uc, *uri, *complete;
  long long exp, interval = DEFAULT_INTERVAL_S;
  int iv;
  if (!authloop__is_2xx(a->status)) {
    oauth_error(a, out);
    return out->error;
  }
  if (authloop__answer_doc(a, out, &d) != 0 || !authloop__jis(&d, 0, AUTHLOOP__J_OBJECT)) {
    authloop__jdoc_free(&d);
    return out->error ? out->error : authloop__result_missing(out, a->status, "device_code");
  }
  dc = authloop__jstr(&d, 0, "device_code");
  uc = authloop__jstr(&d, 0, "user_code");
  /* Google's device endpoint names it verification_url (its "OAuth 2.0 for
   * TV and Limited-Input Device Applications"): read where RFC 8628's name
   * is absent */
  uri = authloop__jget(&d, 0, "verification_uri") >= 0 ? authloop__jstr(&d, 0, "verification_uri")
                                                       : authloop__jstr(&d, 0, "verification_url");
  complete = authloop__jstr(&d, 0, "verification_uri_complete");
  iv = authloop__jget(&d, 0, "interval");
  if (!dc || !authloop__text_ok(dc) || strlen(dc) > 1024)
    authloop__result_missing(out, a->status, "device_code");
  /* the prompt is shown to the user, the URIs opened in a browser: no
   * control in the code, the URIs as RFC 3986 writes them (printable ASCII),
   * https, with a host and no credentials before it */
  else if (!uc || !authloop__printable_ok(uc) || strlen(uc) > 64)
    authloop__result_missing(out, a->status, "user_code");
  else if (!uri || strlen(uri) > MAX_URL || !authloop__browser_url_ok(uri, 0) ||
           (complete && (strlen(complete) > MAX_URL || !authloop__browser_url_ok(complete, 0))))
    authloop__result_missing(out, a->status, "verification_uri");
  else if (authloop__jint(&d, authloop__jget(&d, 0, "expires_in"), &exp) != 0 || exp <= 0 ||
           exp > MAX_DEVICE_S)
    authloop__result_missing(out, a->status, "expires_in");
  else if (iv >= 0 &&
           (authloop__jint(&d, iv, &interval) != 0 || interval < 1 || interval > MAX_INTERVAL_S))
    authloop__result_missing(out, a->status, "interval");
  else if (authloop__secret_set(&o->device_code, dc) != 0 || !(out->prompt_code = strdup(uc)) ||
           !(out->prompt_uri = strdup(uri)) ||
           (complete && !(out->prompt_uri_complete = strdup(complete))))
    authloop__result_fail(out, AUTHLOOP_ENOMEM, a->status, NULL, NULL);
  if (!out->error) {
    o->interval_s = interval;
    o->device_until_ms = v->now_ms + exp * 1000;
    out->prompt_expires_s = exp;
    out->prompt_interval_s = interval;
  }
  authloop__jdoc_free(&d);
  return out->error;
}

/* A login's tokens are had: then the userinfo, when the app asked for it. */
static int after_tokens(oidc *o, authloop__result *out) {
  if (!out->error && o->userinfo) {
    if (!o->is->userinfo_ep)
      return authloop__result_fail(out, AUTHLOOP_ENOTSUP, out->http_status, "%s",
                                   "the issuer has no userinfo endpoint");
    out->next = AUTHLOOP__NEXT_STEP;
    out->step = STEP_USERINFO;
  }
  return out->error;
}

/* The userinfo answer (OpenID Connect Core 5.3): a JSON object whose sub is
 * the id token's (5.3.2), which becomes the user. */
static int userinfo_answer(const authloop__view *v, const authloop__answer *a,
                           authloop__result *out) {
  authloop__jdoc d = {0}, u = {0};
  const char *id, *name, *sub_was = NULL;
  if (!authloop__is_2xx(a->status))
    return authloop__result_status(out, a->status);
  if (authloop__answer_doc(a, out, &d) != 0 || !authloop__jis(&d, 0, AUTHLOOP__J_OBJECT) ||
      user_fields(&d, 0, &id, &name) != 0) {
    authloop__jdoc_free(&d);
    return out->error ? out->error : authloop__result_missing(out, a->status, "sub");
  }
  if (v->user_json && authloop__jdoc_parse(&u, v->user_json, strlen(v->user_json)) == 0)
    sub_was = authloop__jstr(&u, 0, "sub");
  if (!sub_was || strcmp(sub_was, id) != 0)
    authloop__result_fail(out, AUTHLOOP_EPROTO, a->status, "%s",
                          "the userinfo is another user's than the id token's");
  else
    authloop__result_user(out, &d, 0, id, name);
  authloop__jdoc_free(&u);
  authloop__jdoc_free(&d);
  return out->error;
}

/* A poll's answer (RFC 8628 3.5): pending and slow_down poll again. */
static int poll_answer(oidc *o, const authloop__view *v, const authloop__answer *a,
                       authloop__result *out) {
  const char *code;
  int rc;
  if (authloop__is_2xx(a->status)) {
    rc = token_answer(o, v, a, NULL, out);
    if (rc == AUTHLOOP_ENOENT) {
      /* a key the set does not have: the issuer may have rotated its keys.
       * The set is fetched again, at most once a minute and once a login */
      if (o->held || v->now_ms - o->is->keys_at_ms < JWKS_REFETCH_MS)
        return authloop__result_fail(out, AUTHLOOP_EPROTO, a->status, "the id token is refused: %s",
                                     "signed by a key the issuer does not publish");
      authloop__result_clear(out);
      if (!(o->held = authloop__secret_dup(a->body)))
        return authloop__result_fail(out, AUTHLOOP_ENOMEM, a->status, NULL, NULL);
      o->held_status = a->status;
      out->http_status = a->status;
      out->next = AUTHLOOP__NEXT_STEP;
      out->step = STEP_KEYS_AGAIN;
      return 0;
    }
    return rc ? rc : after_tokens(o, out);
  }
  code = oauth_error(a, out);
  if (!o->device_code) /* the browser login's code exchange: no polling */
    return out->error;
  if ((code && (strcmp(code, "authorization_pending") == 0 || strcmp(code, "slow_down") == 0)) ||
      out->error == AUTHLOOP_EUNAVAILABLE) {
    if (code && strcmp(code, "slow_down") == 0 && o->interval_s < MAX_INTERVAL_S)
      o->interval_s += SLOW_DOWN_S;
    else if (out->error == AUTHLOOP_EUNAVAILABLE && o->interval_s < MAX_INTERVAL_S / 2)
      o->interval_s *= 2; /* a server that is struggling: slower (RFC 8628 3.5) */
    if (v->now_ms + o->interval_s * 1000 >= o->device_until_ms) {
      free(out->server_code);
      out->server_code = strdup("expired_token");
      return authloop__result_fail(out, AUTHLOOP_EREJECTED, a->status, "%s",
                                   "the device code expired before the user was done");
    }
    authloop__result_clear(out);
    out->http_status = a->status;
    out->next = AUTHLOOP__NEXT_STEP;
    out->step = STEP_POLL;
    out->delay_ms = o->interval_s * 1000;
    return 0;
  }
  return out->error;
}

static int login_answer(void *state, const authloop__view *v, int step, const authloop__answer *a,
                        authloop__result *out) {
  oidc *o = state;
  out->http_status = a->status;
  switch (step) {
  case STEP_DISCOVER:
    if (discovery_answer(o, a, out) == 0) {
      out->next = AUTHLOOP__NEXT_STEP;
      out->step = STEP_KEYS;
    }
    return out->error;
  case STEP_KEYS:
    if (keys_answer(o, v, a, out) == 0 && !(o->browser && authorization_url(o, out))) {
      out->next = o->browser ? AUTHLOOP__NEXT_AWAIT : AUTHLOOP__NEXT_STEP;
      out->step = STEP_DEVICE;
    }
    return out->error;
  case STEP_AUTHORIZE:
    authorization_url(o, out);
    return out->error;
  case STEP_REFUSED:
    authloop__result_fail(out, AUTHLOOP_EREJECTED, 0, "%s",
                          o->refusal_text ? o->refusal_text : "the user or the issuer said no");
    if (!(out->server_code = strdup(o->refusal)))
      authloop__result_fail(out, AUTHLOOP_ENOMEM, 0, NULL, NULL);
    return out->error;
  case STEP_USERINFO:
    return userinfo_answer(v, a, out);
  case STEP_CODE:
    if (!authloop__is_2xx(a->status)) {
      oauth_error(a, out);
      return out->error;
    }
    return poll_answer(o, v, a, out);
  case STEP_DEVICE:
    if (device_answer(o, v, a, out) == 0) {
      out->next = AUTHLOOP__NEXT_STEP;
      out->step = STEP_POLL;
      /* not past the code's expiry: an interval longer than it would wait for nothing */
      out->delay_ms =
          (o->interval_s < out->prompt_expires_s ? o->interval_s : out->prompt_expires_s) * 1000;
    }
    return out->error;
  case STEP_KEYS_AGAIN: {
    authloop__answer held = {0};
    if (!o->held)
      return authloop__result_missing(out, a->status, "id_token");
    if (keys_answer(o, v, a, out) != 0)
      return out->error;
    held.status = o->held_status;
    held.body = o->held;
    held.len = strlen(o->held);
    if (token_answer(o, v, &held, NULL, out) == AUTHLOOP_ENOENT)
      authloop__result_fail(out, AUTHLOOP_EPROTO, held.status, "the id token is refused: %s",
                            "signed by a key the issuer does not publish");
    return after_tokens(o, out);
  }
  default:
    return poll_answer(o, v, a, out);
  }
}

/* A device login's poll that met a network failure or a timeout is sent
 * again, slower (RFC 8628 3.5), while the code lives; another step's ends
 * the login. */
static long long login_retry_ms(void *state, const authloop__view *v, int step, int error) {
  oidc *o = state;
  (void)error;
  if (step != STEP_POLL || !o->device_code)
    return 0;
  if (o->interval_s < MAX_INTERVAL_S / 2)
    o->interval_s *= 2;
  return v->now_ms + o->interval_s * 1000 < o->device_until_ms ? o->interval_s * 1000 : 0;
}

/* The session's subject, from its user (the id token's claims). */
static char *subject(const authloop__view *v) {
  authloop__jdoc d;
  char *sub = NULL;
  const char *s;
  if (v->user_json && authloop__jdoc_parse(&d, v->user_json, strlen(v->user_json)) == 0 &&
      (s = authloop__jstr(&d, 0, "sub")))
    sub = strdup(s);
  authloop__jdoc_free(&d);
  return sub;
}

/* Before a refresh or a logout: the issuer's discovery when this ctx never
 * had it (a session restored from its file), for the endpoints. Never the
 * keys: a refresh's id token signed by a key not had is vouched for by TLS
 * (check_id_token), so an issuer whose key set cannot be fetched still
 * refreshes, and a logout still revokes. */
static int prepare_request(void *state, const authloop__view *v, authloop__request *out) {
  oidc *o = state;
  (void)v;
  if (o->is->discovered)
    return AUTHLOOP__NO_REQUEST;
  return get(o->base, "/.well-known/openid-configuration", out);
}

static int prepare_answer(void *state, const authloop__view *v, const authloop__answer *a,
                          authloop__result *out) {
  (void)v;
  out->http_status = a->status;
  return discovery_answer(state, a, out);
}

static int refresh_request(void *state, const authloop__view *v, authloop__request *out) {
  oidc *o = state;
  authloop__jw w = {NULL, 0, 0, 0};
  if (!v->refresh_token)
    return AUTHLOOP_EREVOKED;
  if (!o->is->token_ep) /* prepare_request fetches it first: never here */
    return AUTHLOOP_EUNAVAILABLE;
  form_add(&w, "grant_type", "refresh_token");
  form_add(&w, "refresh_token", v->refresh_token);
  return post_form(o, o->is->token_ep, &w, out);
}

/* invalid_grant is final (RFC 6749 5.2: the refresh token is invalid,
 * expired or revoked); the id token, when there is one, must be the
 * session's subject's (check_id_token: a key not had is vouched for by TLS). */
static int refresh_answer(void *state, const authloop__view *v, const authloop__answer *a,
                          authloop__result *out) {
  oidc *o = state;
  char *sub;
  int rc;
  out->http_status = a->status;
  if (!authloop__is_2xx(a->status)) {
    const char *code = oauth_error(a, out);
    if (code && strcmp(code, "invalid_grant") == 0)
      out->error = AUTHLOOP_EREVOKED;
    return out->error;
  }
  if (!(sub = subject(v)))
    return authloop__result_missing(out, a->status, "sub");
  rc = token_answer(o, v, a, sub, out);
  free(sub);
  /* with userinfo, the user is userinfo's: the id token's claims do not replace it */
  if (rc == 0 && o->userinfo) {
    authloop__secret_free(out->user);
    free(out->user_id);
    free(out->user_name);
    out->user = out->user_id = out->user_name = NULL;
  }
  return out->error;
}

/* RFC 7009 revocation of the refresh token (which ends the grant's access
 * tokens at servers that tie them); the end-session URL is made for the app
 * whatever the server offers. */
static int logout_request(void *state, const authloop__view *v, int global,
                          authloop__request *out) {
  oidc *o = state;
  authloop__jw w = {NULL, 0, 0, 0};
  (void)global; /* refused by the engine: no AUTHLOOP__CAN_GLOBAL_LOGOUT */
  authloop__secret_free(o->end_session_url);
  o->end_session_url = NULL;
  if (o->is->end_session_ep && v->id_token) {
    authloop__jw q = {NULL, 0, 0, 0}, u = {NULL, 0, 0, 0};
    form_add(&q, "id_token_hint", v->id_token);
    form_add(&q, "client_id", o->client_id);
    url_with_query(&u, o->is->end_session_ep, &q);
    if (!u.failed && !q.failed)
      o->end_session_url = u.data;
    else if (u.data)
      authloop__wipe_free(u.data, u.cap);
    if (q.data)
      authloop__wipe_free(q.data, q.cap);
  }
  if (!o->is->revocation_ep || !v->refresh_token)
    return AUTHLOOP__NO_REQUEST;
  form_add(&w, "token", v->refresh_token);
  form_add(&w, "token_type_hint", "refresh_token");
  return post_form(o, o->is->revocation_ep, &w, out);
}

static int logout_answer(void *state, const authloop__answer *a, authloop__result *out) {
  (void)state;
  out->http_status = a->status;
  if (!authloop__is_2xx(a->status))
    oauth_error(a, out);
  return out->error;
}

static const char *end_session_url(void *state) { return ((oidc *)state)->end_session_url; }

const authloop__provider authloop__provider_oidc = {
    .name = "oidc",
    .accepts = AUTHLOOP__CRED_DEVICE | AUTHLOOP__CRED_BROWSER,
    .resumes = AUTHLOOP__CRED_TOKEN, /* authloop_login_callback(): the redirect */
    .init = init,
    .free = oidc_free,
    .login_start = login_start,
    .login_request = login_request,
    .login_answer = login_answer,
    .login_end = login_end,
    .refresh_request = refresh_request,
    .refresh_answer = refresh_answer,
    .logout_request = logout_request,
    .logout_answer = logout_answer,
    .authorize = authloop__authorize_bearer,
    .session_gone = authloop__session_never_gone,
    .user_fields = user_fields,
    .end_session_url = end_session_url,
    .prepare_request = prepare_request,
    .prepare_answer = prepare_answer,
    .login_retry_ms = login_retry_ms,
    .shared_new = issuer_new,
    .shared_free = issuer_free,
};
