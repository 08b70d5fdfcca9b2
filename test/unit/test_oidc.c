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

/* A client that has discovered the issuer (iss_param: the OP says it sends
 * iss in its redirects) and holds an empty key set. */
static void *client(int iss_param) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop__provider_env env = {0};
  const char *bases[AUTHLOOP__MAX_BASES] = {0};
  authloop__result r = {0};
  authloop__view v = {0};
  authloop__answer a;
  char doc[512];
  void *s = NULL;
  o.base_url = ISSUER;
  o.client_id = "app";
  o.redirect_uri = "com.example.app:/cb";
  assert_int_equal(p->init(&o, &env, &s, bases), 0);
  snprintf(doc, sizeof(doc),
           "{\"issuer\":\"" ISSUER "\",\"authorization_endpoint\":\"" ISSUER "/auth\","
           "\"token_endpoint\":\"" ISSUER "/token\",\"jwks_uri\":\"" ISSUER "/jwks\"%s}",
           iss_param ? ",\"authorization_response_iss_parameter_supported\":true" : "");
  a = answer(doc);
  assert_int_equal(p->login_answer(s, &v, 0, &a, &r), 0); /* discovery */
  authloop__result_clear(&r);
  a = answer("{\"keys\":[]}");
  assert_int_equal(p->login_answer(s, &v, 1, &a, &r), 0); /* the keys */
  authloop__result_clear(&r);
  return s;
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(verifier_owes_nothing_to_the_nonce),
      cmocka_unit_test(redirects_that_are_not_this_logins),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("oidc browser login", tests, NULL, NULL);
}
