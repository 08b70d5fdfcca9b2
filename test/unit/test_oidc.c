/* SPDX-License-Identifier: MIT */
/* The oidc dialect's browser login as pure functions: the authorization URL
 * (state, nonce, S256 challenge of the verifier), the redirect taken back
 * (refused unless it is this login's: state, issuer, one code that can be
 * sent), and the code exchange carrying the verifier, which owes nothing to
 * the nonce (RFC 7636 4.1). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt.h"
#include "providers/builtin.h"

#define ISSUER "https://op.example"

static const authloop__provider *p = &authloop__provider_oidc;

static authloop__answer answer(const char *body) {
  authloop__answer a = {0};
  a.status = 200;
  a.body = body;
  a.len = strlen(body);
  return a;
}

/* A client that has discovered the issuer from doc and holds an empty key
 * set. */
static void *discovered_at(const char *issuer, const char *doc) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop__provider_env env = {0};
  const char *bases[AUTHLOOP__MAX_BASES] = {0};
  authloop__result r = {0};
  authloop__view v = {0};
  authloop__answer a;
  void *s = NULL;
  o.base_url = issuer;
  o.client_id = "app";
  o.redirect_uri = "com.example.app:/cb";
  assert_int_equal(p->init(&o, &env, &s, bases), 0);
  a = answer(doc);
  assert_int_equal(p->login_answer(s, &v, 0, &a, &r), 0); /* discovery */
  authloop__result_clear(&r);
  a = answer("{\"keys\":[]}");
  assert_int_equal(p->login_answer(s, &v, 1, &a, &r), 0); /* the keys */
  authloop__result_clear(&r);
  return s;
}

static void *discovered(const char *doc) { return discovered_at(ISSUER, doc); }

/* The same with the usual endpoints (iss_param: the OP says it sends iss in
 * its redirects). */
static void *client(int iss_param) {
  char doc[512];
  snprintf(doc, sizeof(doc),
           "{\"issuer\":\"" ISSUER "\",\"authorization_endpoint\":\"" ISSUER "/auth\","
           "\"token_endpoint\":\"" ISSUER "/token\",\"jwks_uri\":\"" ISSUER "/jwks\"%s}",
           iss_param ? ",\"authorization_response_iss_parameter_supported\":true" : "");
  return discovered(doc);
}

/* A query parameter's value from a URL (its raw text), copied. */
static char *param(const char *url, const char *name) {
  char key[64];
  const char *at, *end;
  snprintf(key, sizeof(key), "%s=", name);
  at = strstr(url, key);
  assert_non_null(at);
  at += strlen(key);
  end = strchr(at, '&');
  return strndup(at, end ? (size_t)(end - at) : strlen(at));
}

/* Starts a browser login with these random bytes; the authorization URL. */
static char *begin(void *s, const unsigned char random[64], int *step) {
  authloop__credential cred = {0};
  authloop__result r = {0};
  authloop__view v = {0};
  authloop__request q = {0};
  char *url;
  cred.kind = AUTHLOOP__CRED_BROWSER;
  memcpy(cred.random, random, 64);
  assert_int_equal(p->login_start(s, &cred, step), 0);
  assert_int_equal(p->login_request(s, &v, *step, &q), AUTHLOOP__NO_REQUEST);
  authloop__request_clear(&q);
  {
    authloop__answer a = answer("");
    a.status = 0;
    assert_int_equal(p->login_answer(s, &v, *step, &a, &r), 0);
  }
  assert_int_equal(r.next, AUTHLOOP__NEXT_AWAIT);
  url = strdup(r.redirect_url);
  authloop__result_clear(&r);
  return url;
}

static int resume(void *s, const char *redirect, int *step) {
  authloop__credential cred = {0};
  cred.kind = AUTHLOOP__CRED_TOKEN;
  cred.token = redirect;
  return p->login_start(s, &cred, step);
}

static void verifier_owes_nothing_to_the_nonce(void **state) {
  unsigned char random[64], hash[32];
  void *s = client(0);
  char *url, *st, *nonce, *challenge, *verifier, redirect[256], *made;
  authloop__request q = {0};
  authloop__view v = {0};
  int step, i;
  (void)state;
  for (i = 0; i < 64; i++)
    random[i] = (unsigned char)(i * 7 + 1);
  url = begin(s, random, &step);
  assert_true(strncmp(url, ISSUER "/auth?response_type=code&client_id=app&", 39) == 0);
  assert_non_null(strstr(url, "&code_challenge_method=S256"));
  st = param(url, "state");
  nonce = param(url, "nonce");
  challenge = param(url, "code_challenge");
  snprintf(redirect, sizeof(redirect), "com.example.app:/cb?code=the-code&state=%s", st);
  assert_int_equal(resume(s, redirect, &step), 0);
  assert_int_equal(p->login_request(s, &v, step, &q), 0);
  assert_non_null(strstr(q.json, "grant_type=authorization_code&code=the-code&"));
  verifier = param(q.json, "code_verifier");
  assert_int_equal(strlen(verifier), 43); /* 32 bytes */
  assert_null(strstr(verifier, nonce));
  assert_true(strncmp(verifier, nonce, 16) != 0);
  assert_true(strncmp(verifier, st, 16) != 0);
  /* the challenge is S256 of that verifier */
  assert_int_equal(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                              (const unsigned char *)verifier, strlen(verifier), hash),
                   0);
  made = authloop__b64url_encode(hash, sizeof(hash));
  assert_string_equal(made, challenge);
  free(made);
  authloop__request_clear(&q);
  free(url);
  free(st);
  free(nonce);
  free(challenge);
  free(verifier);
  p->login_end(s);
  p->free(s);
}

static void redirects_that_are_not_this_logins(void **state) {
  unsigned char random[64] = {1, 2, 3};
  void *s = client(1);
  char *url, *st, r[512];
  int step;
  size_t i;
  const char *bad[] = {
      "com.example.app:/cb?code=&state=%s&iss=https%%3A%%2F%%2Fop.example",       /* empty code */
      "com.example.app:/cb?code=a%%0Ab&state=%s&iss=https%%3A%%2F%%2Fop.example", /* a LF in it */
      "com.example.app:/cb?code=x&state=%s", /* no iss, which the OP sends */
      "com.example.app:/cb?code=x&state=%s&iss=https%%3A%%2F%%2Fevil.example",
      "com.example.app:/cbx?code=x&state=%s&iss=https%%3A%%2F%%2Fop.example",
      "com.example.app:/cb?code=x&code=y&state=%s&iss=https%%3A%%2F%%2Fop.example",
      "com.example.app:/cb?code=x&state=%s%%00&iss=https%%3A%%2F%%2Fop.example",
      "com.example.app:/cb?code=x&state=%s&iss=https%%3A%%2F%%2Fop.example#f",
      "com.example.app:/cb?code=x&error=access_denied&state=%s&iss=https%%3A%%2F%%2Fop.example",
  };
  (void)state;
  url = begin(s, random, &step);
  st = param(url, "state");
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(r, sizeof(r), bad[i], st);
    assert_int_equal(resume(s, r, &step), AUTHLOOP_EINVAL);
  }
  snprintf(r, sizeof(r), "com.example.app:/cb?code=x%%2By&state=%s&iss=https%%3A%%2F%%2Fop.example",
           st);
  assert_int_equal(resume(s, r, &step), 0); /* and then no other */
  assert_int_equal(resume(s, r, &step), AUTHLOOP_EINVAL);
  free(url);
  free(st);
  p->login_end(s);
  p->free(s);
}

/* A fresh client of issuer iss, before discovery. */
static void *fresh(const char *iss) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop__provider_env env = {0};
  const char *bases[AUTHLOOP__MAX_BASES] = {0};
  void *s = NULL;
  o.base_url = iss;
  o.client_id = "app";
  assert_int_equal(p->init(&o, &env, &s, bases), 0);
  return s;
}

/* The discovery answer doc for a client made by fresh(): its result. */
static int discover(void *s, const char *doc) {
  authloop__result r = {0};
  authloop__view v = {0};
  authloop__answer a = answer(doc);
  int rc = p->login_answer(s, &v, 0, &a, &r);
  authloop__result_clear(&r);
  return rc;
}

/* An issuer's identifier is compared as it is, trailing slash and all
 * (Discovery 4.3: Auth0's end in one); the well-known path goes after it
 * without the slash (4.1). */
static void an_issuer_with_a_trailing_slash(void **state) {
  static const char *const eps = "\"token_endpoint\":\"https://op.example/t/"
                                 "token\",\"jwks_uri\":\"https://op.example/t/jwks\"";
  char doc[512];
  authloop__request q = {0};
  authloop__view v = {0};
  void *s = fresh("https://op.example/t/");
  (void)state;
  assert_int_equal(p->login_request(s, &v, 0, &q), 0);
  assert_string_equal(q.base, "https://op.example/t");
  assert_string_equal(q.path[0].text, "/.well-known/openid-configuration");
  authloop__request_clear(&q);
  snprintf(doc, sizeof(doc), "{\"issuer\":\"https://op.example/t\",%s}", eps);
  assert_int_equal(discover(s, doc), AUTHLOOP_EPROTO); /* not the same identifier */
  snprintf(doc, sizeof(doc), "{\"issuer\":\"https://op.example/t/\",%s}", eps);
  assert_int_equal(discover(s, doc), 0);
  p->free(s);
  s = fresh("https://op.example/t");
  assert_int_equal(discover(s, doc), AUTHLOOP_EPROTO); /* the other way round */
  p->free(s);
}

/* Endpoints: credentials are refused however the URL hides them; an
 * optional endpoint given as null or "" is absent, not a broken document. */
static void endpoints_from_discovery(void **state) {
  static const struct {
    const char *extra;
    int rc;
  } cases[] = {
      {"", 0},
      {",\"revocation_endpoint\":null,\"end_session_endpoint\":\"\"", 0},
      {",\"device_authorization_endpoint\":null", 0},
      {",\"revocation_endpoint\":7", AUTHLOOP_EPROTO},
      {",\"revocation_endpoint\":\"https://u:p@op.example/revoke\"", AUTHLOOP_EPROTO},
      {",\"revocation_endpoint\":\"https:///u:p@op.example/revoke\"", AUTHLOOP_EPROTO},
      {",\"revocation_endpoint\":\"https:///op.example/revoke\"", AUTHLOOP_EPROTO},
      {",\"revocation_endpoint\":\"https://:8443/revoke\"", AUTHLOOP_EPROTO},
      {",\"revocation_endpoint\":\"http://op.example/revoke\"", AUTHLOOP_EPROTO},
      /* a browser opens these: RFC 3986's printable ASCII only */
      {",\"authorization_endpoint\":\"https://op.example/au\\u202eth\"", AUTHLOOP_EPROTO},
      {",\"end_session_endpoint\":\"https://op.example/log\\u2028out\"", AUTHLOOP_EPROTO},
      {",\"end_session_endpoint\":\"https://op.example/log\\u0085out\"", AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/d\\u00e9j\\u00e0\"", AUTHLOOP_EPROTO},
      /* a query is the endpoint's (RFC 6749 3.1, 3.2), a fragment never */
      {",\"authorization_endpoint\":\"https://op.example/auth?p=b2c_1_signin\"", 0},
      {",\"revocation_endpoint\":\"https://op.example/revoke?p=b2c_1_signin\"", 0},
      {",\"authorization_endpoint\":\"https://op.example/auth#top\"", AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?p=1#top\"", AUTHLOOP_EPROTO},
      {",\"revocation_endpoint\":\"https://op.example/revoke?p=a\\\\b\"", AUTHLOOP_EPROTO},
      /* but no parameter authloop sends there too, however it is spelt */
      {",\"authorization_endpoint\":\"https://op.example/auth?p=1&code_challenge_method=plain\"",
       AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?state=x\"", AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?Redirect_URI=x\"", AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?p=1;nonce=n\"", AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?code%5Fchallenge=x\"",
       AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?request_uri\"", AUTHLOOP_EPROTO},
      {",\"revocation_endpoint\":\"https://op.example/revoke?token=x\"", AUTHLOOP_EPROTO},
      {",\"end_session_endpoint\":\"https://op.example/end?id_token_hint=x\"", AUTHLOOP_EPROTO},
      {",\"device_authorization_endpoint\":\"https://op.example/d?p=1&&scope=all\"",
       AUTHLOOP_EPROTO},
      {",\"userinfo_endpoint\":\"https://op.example/me?access_token=x\"", AUTHLOOP_EPROTO},
      /* a parameter count that would push ours out of what a server reads:
       * empty names (but at the end), more than 16 */
      {",\"authorization_endpoint\":\"https://op.example/auth?p=1&&&&\"", AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?=1\"", AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?&p=1\"", AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&q\"",
       AUTHLOOP_EPROTO},
      {",\"authorization_endpoint\":\"https://op.example/auth?a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p\"",
       0},
      /* a name of ours as a value, or as part of another name, is no name of ours */
      {",\"authorization_endpoint\":\"https://op.example/auth?p=state&codes=1&x_nonce=2&\"", 0},
      {",\"authorization_endpoint\":\"https://op.example/auth\",\"end_session_endpoint\":"
       "\"https://op.example/logout\"",
       0},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char doc[512];
    void *s = fresh(ISSUER);
    snprintf(doc, sizeof(doc),
             "{\"issuer\":\"" ISSUER "\",\"token_endpoint\":\"" ISSUER "/token\","
             "\"jwks_uri\":\"" ISSUER "/jwks\"%s}",
             cases[i].extra);
    if (discover(s, doc) != cases[i].rc)
      fail_msg("%s: expected %d", cases[i].extra, cases[i].rc);
    p->free(s);
  }
  {
    /* a plain-http issuer on loopback: its own origin only, a query after it
     * or after a path alike */
    static const struct {
      const char *token;
      int rc;
    } plain[] = {{"http://127.0.0.1:8080/token?p=1", 0},
                 {"http://127.0.0.1:8080?p=1", 0},
                 {"http://127.0.0.1:8080", 0},
                 {"http://127.0.0.1:8081/token", AUTHLOOP_EPROTO},
                 {"http://127.0.0.1:80800/token", AUTHLOOP_EPROTO},
                 {"https://127.0.0.1:8080/token", AUTHLOOP_EPROTO}};
    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
      char doc[512];
      void *s = fresh("http://127.0.0.1:8080");
      snprintf(doc, sizeof(doc),
               "{\"issuer\":\"http://127.0.0.1:8080\",\"token_endpoint\":\"%s\","
               "\"jwks_uri\":\"http://127.0.0.1:8080/jwks\"}",
               plain[i].token);
      if (discover(s, doc) != plain[i].rc)
        fail_msg("%s: expected %d", plain[i].token, plain[i].rc);
      p->free(s);
    }
  }
  {
    /* a required one as "" is still missing */
    void *s = fresh(ISSUER);
    assert_int_equal(discover(s, "{\"issuer\":\"" ISSUER "\",\"token_endpoint\":\"\","
                                 "\"jwks_uri\":\"" ISSUER "/jwks\"}"),
                     AUTHLOOP_EPROTO);
    p->free(s);
  }
}

/* An endpoint's own query stays, and what authloop adds comes after it: the
 * authorization URL, the code exchange, the end-session URL (RFC 6749 3.1,
 * 3.2; RP-Initiated Logout 2.1). */
static void endpoint_queries_stay(void **state) {
  unsigned char random[64] = {9, 8, 7};
  authloop__request q = {0};
  authloop__view v = {0};
  char *url, *st, redirect[256];
  int step;
  void *s = discovered("{\"issuer\":\"" ISSUER "\","
                       "\"authorization_endpoint\":\"" ISSUER "/auth?p=b2c_1_signin\","
                       "\"token_endpoint\":\"" ISSUER "/token?p=b2c_1_signin\","
                       "\"end_session_endpoint\":\"" ISSUER "/logout?p=b2c_1_signin\","
                       "\"jwks_uri\":\"" ISSUER "/jwks?p=b2c_1_signin\"}");
  (void)state;
  url = begin(s, random, &step);
  assert_true(strncmp(url, ISSUER "/auth?p=b2c_1_signin&response_type=code&client_id=app&", 54) ==
              0);
  assert_null(strchr(strchr(url, '?') + 1, '?'));
  st = param(url, "state");
  snprintf(redirect, sizeof(redirect), "com.example.app:/cb?code=c-1&state=%s", st);
  assert_int_equal(resume(s, redirect, &step), 0);
  assert_int_equal(p->login_request(s, &v, step, &q), 0);
  assert_string_equal(q.base, ISSUER "/token?p=b2c_1_signin");
  authloop__request_clear(&q);
  p->login_end(s);
  v.id_token = "id-1";
  assert_int_equal(p->logout_request(s, &v, 0, &q), AUTHLOOP__NO_REQUEST);
  authloop__request_clear(&q);
  assert_string_equal(p->end_session_url(s),
                      ISSUER "/logout?p=b2c_1_signin&id_token_hint=id-1&client_id=app");
  free(url);
  free(st);
  p->free(s);
  /* a '?' after the first is data in the query: the parameters do not join it */
  {
    static const char *const auth[][2] = {{"/auth?a=b?", "/auth?a=b?&response_type=code&"},
                                          {"/auth??", "/auth??&response_type=code&"}};
    size_t i;
    for (i = 0; i < sizeof(auth) / sizeof(auth[0]); i++) {
      char doc[512], want[128];
      snprintf(doc, sizeof(doc),
               "{\"issuer\":\"" ISSUER "\",\"authorization_endpoint\":\"" ISSUER "%s\","
               "\"token_endpoint\":\"" ISSUER "/token\",\"jwks_uri\":\"" ISSUER "/jwks\"}",
               auth[i][0]);
      snprintf(want, sizeof(want), ISSUER "%s", auth[i][1]);
      s = discovered(doc);
      url = begin(s, random, &step);
      assert_true(strncmp(url, want, strlen(want)) == 0);
      free(url);
      p->login_end(s);
      p->free(s);
    }
  }
  /* a query left empty, or open for more: nothing doubled */
  s = discovered("{\"issuer\":\"" ISSUER "\",\"authorization_endpoint\":\"" ISSUER "/auth?\","
                 "\"token_endpoint\":\"" ISSUER "/token\",\"jwks_uri\":\"" ISSUER "/jwks\","
                 "\"end_session_endpoint\":\"" ISSUER "/logout?a=b&\"}");
  url = begin(s, random, &step);
  assert_true(strncmp(url, ISSUER "/auth?response_type=code&", 43) == 0);
  assert_int_equal(p->logout_request(s, &v, 0, &q), AUTHLOOP__NO_REQUEST);
  authloop__request_clear(&q);
  assert_string_equal(p->end_session_url(s), ISSUER "/logout?a=b&id_token_hint=id-1&client_id=app");
  free(url);
  p->login_end(s);
  p->free(s);
}

/* Google's device endpoint answers verification_url where RFC 8628 says
 * verification_uri: read under either name, the RFC's first; a bad value
 * under either is refused, and the RFC's name present but unusable is not
 * passed over for the other. */
static void device_answers_in_googles_words(void **state) {
  static const struct {
    const char *uris, *want;
  } cases[] = {
      {"\"verification_url\":\"https://www.google.com/device\"", "https://www.google.com/device"},
      {"\"verification_uri\":\"" ISSUER "/device\",\"verification_url\":\"" ISSUER "/other\"",
       ISSUER "/device"},
      {"\"verification_url\":\"http://www.google.com/device\"", NULL},
      {"\"verification_url\":\"https://www.google.com/dev\\u202eice\"", NULL},
      {"\"verification_url\":7", NULL},
      {"\"verification_uri\":null,\"verification_url\":\"" ISSUER "/device\"", NULL},
      {"\"verification_uri\":7,\"verification_url\":\"" ISSUER "/device\"", NULL},
      {"\"verification_uri\":\"\",\"verification_url\":\"" ISSUER "/device\"", NULL},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    authloop__view v = {0};
    authloop__result r = {0};
    authloop__answer a;
    char body[512];
    void *s = client(0);
    /* Google's answer, as its documentation shows it */
    snprintf(body, sizeof(body),
             "{\"device_code\":\"4/4-GMMhmHCXhWEzkobqIHGG_EnNYYsAkukHspeYUk9E8\","
             "\"user_code\":\"GQVQ-JKEC\",%s,\"expires_in\":1800,\"interval\":5}",
             cases[i].uris);
    a = answer(body);
    if (cases[i].want) {
      assert_int_equal(p->login_answer(s, &v, 2 /* STEP_DEVICE */, &a, &r), 0);
      assert_string_equal(r.prompt_uri, cases[i].want);
      assert_string_equal(r.prompt_code, "GQVQ-JKEC");
      assert_int_equal(r.prompt_interval_s, 5);
    } else {
      if (p->login_answer(s, &v, 2, &a, &r) != AUTHLOOP_EPROTO)
        fail_msg("a device answer taken: %s", body);
      assert_null(r.prompt_uri);
    }
    authloop__result_clear(&r);
    p->free(s);
  }
}

static char *b64(const char *text) {
  return authloop__b64url_encode((const unsigned char *)text, strlen(text));
}

/* A refresh answer whose refresh_token is rt (JSON text, or NULL: none) and
 * whose id token, for audience aud, has these claims after the usual ones
 * (signed by a key the client does not have: vouched for by TLS on a
 * refresh). */
static char *refresh_from(const char *iss, const char *aud, const char *rt, const char *claims) {
  char payload[512], *h = b64("{\"alg\":\"RS256\",\"kid\":\"elsewhere\"}"), *b, *body;
  char field[64] = "";
  snprintf(payload, sizeof(payload),
           "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"alice\",\"exp\":%lld,\"iat\":%lld%s}", iss,
           aud, (long long)time(NULL) + 3600, (long long)time(NULL), claims);
  if (rt)
    snprintf(field, sizeof(field), ",\"refresh_token\":%s", rt);
  b = b64(payload);
  body = malloc(2048);
  snprintf(body, 2048,
           "{\"access_token\":\"at-2\",\"token_type\":\"Bearer\",\"expires_in\":3600%s,"
           "\"id_token\":\"%s.%s.c2ln\"}",
           field, h, b);
  free(h);
  free(b);
  return body;
}

static char *refresh_with(const char *aud, const char *rt, const char *claims) {
  return refresh_from(ISSUER, aud, rt, claims);
}

/* A refresh refused for its id token still hands back the rotated refresh
 * token (the old one is spent at the OP); error descriptions reach users
 * only as clean text of a sane length. */
static void a_refused_refresh_keeps_the_rotated_token(void **state) {
  authloop__view v = {0};
  authloop__result r = {0};
  authloop__answer a;
  char *body;
  void *s = client(0);
  (void)state;
  v.user_json = "{\"sub\":\"alice\"}";
  v.refresh_token = "rt-1";
  v.now_wall_ms = (long long)time(NULL) * 1000;
  body = refresh_with("app", "\"rt-2\"", "");
  a = answer(body);
  assert_int_equal(p->refresh_answer(s, &v, &a, &r), 0); /* the control: accepted */
  assert_string_equal(r.refresh_token, "rt-2");
  authloop__result_clear(&r);
  free(body);
  body = refresh_with("another-app", "\"rt-2\"", "");
  a = answer(body);
  assert_int_equal(p->refresh_answer(s, &v, &a, &r), AUTHLOOP_EPROTO);
  assert_null(r.access_token);
  assert_non_null(r.refresh_token);
  assert_string_equal(r.refresh_token, "rt-2");
  authloop__result_clear(&r);
  free(body);

  a = answer("{\"error\":\"invalid_request\",\"error_description\":\"red \\u001b[31m\\r\\nX: y\"}");
  a.status = 400;
  assert_int_not_equal(p->refresh_answer(s, &v, &a, &r), 0);
  assert_string_equal(r.server_code, "invalid_request");
  assert_true(!r.message || !strpbrk(r.message, "\x1b\r\n"));
  authloop__result_clear(&r);
  a = answer("{\"error\":\"invalid_request\",\"error_description\":\"plain words\"}");
  a.status = 400;
  p->refresh_answer(s, &v, &a, &r);
  assert_string_equal(r.message, "plain words"); /* the control */
  authloop__result_clear(&r);
  p->free(s);
}

/* A refresh answer without a new refresh token, as null or "" as some
 * servers write it, keeps the one held (RFC 6749 6: the server MAY issue a
 * new one); another type is a broken answer. */
static void refresh_answers_without_a_new_refresh_token(void **state) {
  static const struct {
    const char *rt, *want;
    int rc;
  } cases[] = {
      {"\"rt-2\"", "rt-2", 0},
      {NULL, NULL, 0},
      {"null", NULL, 0},
      {"\"\"", NULL, 0},
      {"7", NULL, AUTHLOOP_EPROTO},
      {"[\"rt-2\"]", NULL, AUTHLOOP_EPROTO},
      {"{}", NULL, AUTHLOOP_EPROTO},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    authloop__view v = {0};
    authloop__result r = {0};
    authloop__answer a;
    char *body = refresh_with("app", cases[i].rt, "");
    void *s = client(0);
    v.user_json = "{\"sub\":\"alice\"}";
    v.refresh_token = "rt-1";
    v.now_wall_ms = (long long)time(NULL) * 1000;
    a = answer(body);
    if (p->refresh_answer(s, &v, &a, &r) != cases[i].rc)
      fail_msg("refresh_token %s: expected %d", cases[i].rt ? cases[i].rt : "(none)", cases[i].rc);
    if (cases[i].rc == 0) {
      assert_string_equal(r.access_token, "at-2");
      if (cases[i].want)
        assert_string_equal(r.refresh_token, cases[i].want);
      else
        assert_null(r.refresh_token); /* the held one stays */
    }
    authloop__result_clear(&r);
    free(body);
    p->free(s);
  }
}

/* An id token is refused before its nbf (RFC 7519 4.1.5), allowing the same
 * skew as iat; an nbf that is no number is refused too. */
static void id_tokens_not_valid_yet(void **state) {
  char claims[128];
  const long long now = (long long)time(NULL);
  const struct {
    long long nbf_from_now;
    int rc;
  } cases[] = {
      {-60, 0}, {0, 0}, {30, 0}, {3600, AUTHLOOP_EPROTO}, {365LL * 86400, AUTHLOOP_EPROTO}};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]) + 2; i++) {
    authloop__view v = {0};
    authloop__result r = {0};
    authloop__answer a;
    char *body;
    void *s = client(0);
    int want;
    if (i < sizeof(cases) / sizeof(cases[0])) {
      snprintf(claims, sizeof(claims), ",\"nbf\":%lld", now + cases[i].nbf_from_now);
      want = cases[i].rc;
    } else {
      snprintf(claims, sizeof(claims), ",\"nbf\":%s", i % 2 ? "\"0\"" : "9223372036854775808");
      want = AUTHLOOP_EPROTO;
    }
    body = refresh_with("app", "\"rt-2\"", claims);
    v.user_json = "{\"sub\":\"alice\"}";
    v.refresh_token = "rt-1";
    v.now_wall_ms = now * 1000;
    a = answer(body);
    if (p->refresh_answer(s, &v, &a, &r) != want)
      fail_msg("%s: expected %d", claims, want);
    authloop__result_clear(&r);
    free(body);
    p->free(s);
  }
}

/* An id token names its issuer exactly; Google's name theirs with or without
 * the scheme, and only for Google's issuer is the short name taken. */
static void id_tokens_in_googles_words(void **state) {
  static const struct {
    const char *issuer, *iss;
    int rc;
  } cases[] = {
      {"https://accounts.google.com", "https://accounts.google.com", 0},
      {"https://accounts.google.com", "accounts.google.com", 0},
      {"https://accounts.google.com", "http://accounts.google.com", AUTHLOOP_EPROTO},
      {"https://accounts.google.com", "accounts.google.com/", AUTHLOOP_EPROTO},
      {"https://accounts.google.com", "https://accounts.google.com/", AUTHLOOP_EPROTO},
      {"https://accounts.google.com", "ACCOUNTS.google.com", AUTHLOOP_EPROTO},
      {"https://accounts.google.com", "", AUTHLOOP_EPROTO},
      {ISSUER, ISSUER, 0},
      {ISSUER, "op.example", AUTHLOOP_EPROTO},
      {ISSUER, "accounts.google.com", AUTHLOOP_EPROTO},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char doc[512];
    authloop__view v = {0};
    authloop__result r = {0};
    authloop__answer a;
    char *body;
    void *s;
    snprintf(doc, sizeof(doc),
             "{\"issuer\":\"%s\",\"authorization_endpoint\":\"https://x.example/auth\","
             "\"token_endpoint\":\"https://x.example/token\","
             "\"jwks_uri\":\"https://x.example/jwks\"}",
             cases[i].issuer);
    s = discovered_at(cases[i].issuer, doc);
    body = refresh_from(cases[i].iss, "app", "\"rt-2\"", "");
    v.user_json = "{\"sub\":\"alice\"}";
    v.refresh_token = "rt-1";
    v.now_wall_ms = (long long)time(NULL) * 1000;
    a = answer(body);
    if (p->refresh_answer(s, &v, &a, &r) != cases[i].rc)
      fail_msg("issuer %s, iss \"%s\": expected %d", cases[i].issuer, cases[i].iss, cases[i].rc);
    authloop__result_clear(&r);
    free(body);
    p->free(s);
  }
}

/* A device login's prompt is shown to the user and its URIs opened in a
 * browser: a user code with a control, or a URI that is not printable ASCII
 * (RFC 3986), is refused; the same answer, clean, is the control. */
static void device_prompts_that_would_mislead(void **state) {
  static const struct {
    const char *code, *uri, *complete;
  } cases[] = {
      {"WDJB-MJHT", ISSUER "/device", ISSUER "/device?user_code=WDJB-MJHT"}, /* the control */
      {"WDJB\\u001b[2J", ISSUER "/device", NULL},
      {"WDJB\\u2028MJHT", ISSUER "/device", NULL},
      {"WDJB\\u202eTHJM", ISSUER "/device", NULL},
      {"WDJB-MJHT", ISSUER "/dev\\u202eice", NULL},
      {"WDJB-MJHT", ISSUER "/dev\\u0085ice", NULL},
      {"WDJB-MJHT", ISSUER "/dev ice", NULL},
      {"WDJB-MJHT", ISSUER "/d\\u00e9vice", NULL},
      {"WDJB-MJHT", ISSUER "/device", ISSUER "/device?c=\\u2066x"},
      {"WDJB-MJHT", "https://op.example@evil.example/device", NULL}, /* credentials */
      {"WDJB-MJHT", "https:///device", NULL},                        /* no host */
      {"WDJB-MJHT", "https://:8443/device", NULL},                   /* a port, no host */
      {"WDJB-MJHT", "http://op.example/device", NULL},               /* not https */
      {"WDJB-MJHT", ISSUER "/device", "https://a@b/device"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    authloop__view v = {0};
    authloop__result r = {0};
    authloop__answer a;
    char body[512], complete[256] = "";
    void *s = client(0);
    if (cases[i].complete)
      snprintf(complete, sizeof(complete), ",\"verification_uri_complete\":\"%s\"",
               cases[i].complete);
    snprintf(body, sizeof(body),
             "{\"device_code\":\"dc-1\",\"user_code\":\"%s\",\"verification_uri\":\"%s\"%s,"
             "\"expires_in\":600,\"interval\":5}",
             cases[i].code, cases[i].uri, complete);
    a = answer(body);
    if (i == 0) {
      assert_int_equal(p->login_answer(s, &v, 2 /* STEP_DEVICE */, &a, &r), 0);
      assert_string_equal(r.prompt_code, "WDJB-MJHT");
      assert_string_equal(r.prompt_uri, ISSUER "/device");
    } else {
      if (p->login_answer(s, &v, 2, &a, &r) != AUTHLOOP_EPROTO)
        fail_msg("a device answer taken: %s", body);
      assert_null(r.prompt_code);
      assert_null(r.prompt_uri);
    }
    authloop__result_clear(&r);
    p->free(s);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(verifier_owes_nothing_to_the_nonce),
      cmocka_unit_test(redirects_that_are_not_this_logins),
      cmocka_unit_test(an_issuer_with_a_trailing_slash),
      cmocka_unit_test(endpoints_from_discovery),
      cmocka_unit_test(a_refused_refresh_keeps_the_rotated_token),
      cmocka_unit_test(device_prompts_that_would_mislead),
      cmocka_unit_test(endpoint_queries_stay),
      cmocka_unit_test(refresh_answers_without_a_new_refresh_token),
      cmocka_unit_test(id_tokens_not_valid_yet),
      cmocka_unit_test(id_tokens_in_googles_words),
      cmocka_unit_test(device_answers_in_googles_words),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("oidc browser login", tests, NULL, NULL);
}
