/* SPDX-License-Identifier: MIT */
/* Parsing of gateway answers: valid, malformed, mistyped, error bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "jwt.h"
#include "providers/builtin.h"
#include "transport.h"

#define USER   "{\"id\":\"u1\",\"name\":\"Una\",\"email\":\"u1@example.test\",\"claims\":{\"a\":1}}"
#define TOKENS "\"accessToken\":\"AT\",\"idToken\":\"IT\",\"refreshToken\":\"RT\""

/* An answer as the transport hands it over. */
static authloop__answer answer(long status, const char *body) {
  authloop__answer a = {0};
  a.status = status;
  a.body = body;
  a.len = strlen(body);
  return a;
}

static int parse(long status, const char *body, authloop__result *r) {
  authloop__answer a = answer(status, body);
  memset(r, 0, sizeof(*r));
  return authloop__gateway_login_answer(&a, r);
}

static void valid_login(void **state) {
  authloop__result r;
  (void)state;
  assert_int_equal(parse(200, "{\"user\":" USER "," TOKENS ",\"expiresIn\":3600}", &r), 0);
  assert_string_equal(r.access_token, "AT");
  assert_string_equal(r.id_token, "IT");
  assert_string_equal(r.refresh_token, "RT");
  assert_int_equal(r.lifetime_s, 3600);
  assert_int_equal(r.next, AUTHLOOP__NEXT_DONE);
  assert_string_equal(r.user_id, "u1");
  assert_string_equal(r.user_name, "Una");
  assert_string_equal(r.user, USER); /* as the server sent it, compact */
  authloop__result_clear(&r);
  assert_null(r.access_token);
}

/* Each body must be refused with EPROTO naming the field, and keep nothing. */
static void malformed_logins(void **state) {
  static const struct {
    const char *body, *field;
  } cases[] = {
      {"", "JSON object"},
      {"not json", "JSON object"},
      {"[1,2]", "JSON object"},
      {"{\"user\":" USER "," TOKENS ",\"expiresIn\":3600", "JSON object"},
      {"{\"user\":" USER ",\"user\":" USER "," TOKENS ",\"expiresIn\":1}", "JSON object"},
      {"{" TOKENS ",\"expiresIn\":3600}", "\"user\""},
      {"{\"user\":\"u1\"," TOKENS ",\"expiresIn\":3600}", "\"user\""},
      {"{\"user\":{\"name\":\"x\"}," TOKENS ",\"expiresIn\":3600}", "\"user\""},
      {"{\"user\":{\"id\":7}," TOKENS ",\"expiresIn\":3600}", "\"user\""},
      {"{\"user\":{\"id\":\"\"}," TOKENS ",\"expiresIn\":3600}", "\"user\""},
      {"{\"user\":{\"id\":\"u\",\"name\":5}," TOKENS ",\"expiresIn\":3600}", "\"user\""},
      {"{\"user\":" USER ",\"idToken\":\"IT\",\"refreshToken\":\"RT\",\"expiresIn\":1}",
       "\"accessToken\""},
      {"{\"user\":" USER ",\"accessToken\":1,\"idToken\":\"IT\",\"refreshToken\":\"RT\","
       "\"expiresIn\":1}",
       "\"accessToken\""},
      {"{\"user\":" USER ",\"accessToken\":\"\",\"idToken\":\"IT\",\"refreshToken\":\"RT\","
       "\"expiresIn\":1}",
       "\"accessToken\""},
      {"{\"user\":" USER ",\"accessToken\":\"A\",\"refreshToken\":\"RT\",\"expiresIn\":1}",
       "\"idToken\""},
      {"{\"user\":" USER ",\"accessToken\":\"A\",\"idToken\":\"I\",\"refreshToken\":null,"
       "\"expiresIn\":1}",
       "\"refreshToken\""},
      {"{\"user\":" USER "," TOKENS "}", "\"expiresIn\""},
      {"{\"user\":" USER "," TOKENS ",\"expiresIn\":\"3600\"}", "\"expiresIn\""},
      {"{\"user\":" USER "," TOKENS ",\"expiresIn\":0}", "\"expiresIn\""},
      {"{\"user\":" USER "," TOKENS ",\"expiresIn\":-5}", "\"expiresIn\""},
      {"{\"user\":" USER "," TOKENS ",\"expiresIn\":3600.5}", "\"expiresIn\""},
      {"{\"user\":" USER "," TOKENS ",\"expiresIn\":99999999999999}", "\"expiresIn\""},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    authloop__result r;
    int rc = parse(200, cases[i].body, &r);
    if (rc != AUTHLOOP_EPROTO)
      fail_msg("case %zu: %s -> %s", i, cases[i].body, authloop_err_name(rc));
    assert_int_equal(r.error, AUTHLOOP_EPROTO);
    assert_non_null(r.message);
    if (!strstr(r.message, cases[i].field))
      fail_msg("case %zu: message \"%s\" does not name %s", i, r.message, cases[i].field);
    assert_null(r.user);
    assert_null(r.access_token);
    authloop__result_clear(&r);
  }
}

static void deep_json_is_refused_not_crashed(void **state) {
  char body[20000];
  authloop__result r;
  size_t i;
  (void)state;
  for (i = 0; i < 9000; i++)
    body[i] = '[';
  body[i] = '\0';
  assert_int_equal(parse(200, body, &r), AUTHLOOP_EPROTO);
  authloop__result_clear(&r);
}

static void error_bodies(void **state) {
  authloop__result f;
  (void)state;
  assert_int_equal(parse(401,
                         "{\"error\":{\"code\":4003,\"name\":\"InvalidAuthorizationCode\","
                         "\"message\":\"bad code\"}}",
                         &f),
                   AUTHLOOP_EREJECTED);
  assert_int_equal(f.http_status, 401);
  assert_string_equal(f.server_code, "4003");
  assert_string_equal(f.message, "bad code");
  authloop__result_clear(&f);

  /* no usable body: the status speaks */
  assert_int_equal(parse(500, "<html>oops</html>", &f), AUTHLOOP_EUNAVAILABLE);
  assert_null(f.server_code);
  assert_non_null(strstr(f.message, "HTTP 500"));
  authloop__result_clear(&f);
  assert_int_equal(parse(429, "", &f), AUTHLOOP_EUNAVAILABLE);
  authloop__result_clear(&f);
  assert_int_equal(parse(404, "{\"error\":\"nope\"}", &f), AUTHLOOP_EREJECTED);
  assert_non_null(strstr(f.message, "HTTP 404"));
  authloop__result_clear(&f);
  /* a string code is kept as sent; an empty message falls back */
  assert_int_equal(parse(403, "{\"error\":{\"code\":\"E42\",\"message\":\"\"}}", &f),
                   AUTHLOOP_EREJECTED);
  assert_string_equal(f.server_code, "E42");
  assert_non_null(strstr(f.message, "HTTP 403"));
  authloop__result_clear(&f);
  /* a redirect is not a login */
  assert_int_equal(parse(302, "", &f), AUTHLOOP_EREJECTED);
  authloop__result_clear(&f);
}

static int logout(long status, const char *body, authloop__result *r) {
  authloop__answer a = answer(status, body);
  memset(r, 0, sizeof(*r));
  return authloop__provider_gateway.logout_answer(NULL, &a, r);
}

static void logout_answers(void **state) {
  authloop__result f;
  (void)state;
  assert_int_equal(logout(204, "", &f), 0);
  assert_int_equal(logout(200, "{}", &f), 0);
  assert_int_equal(logout(401, "{\"error\":{\"code\":4001,\"message\":\"no\"}}", &f),
                   AUTHLOOP_EREJECTED);
  assert_string_equal(f.server_code, "4001");
  assert_string_equal(f.message, "no");
  authloop__result_clear(&f);
}

/* base64url of {"sub":"u","iat":1000,"exp":4600} and of {"iat":1000} */
#define JWT_3600  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1IiwiaWF0IjoxMDAwLCJleHAiOjQ2MDB9.c2ln"
#define JWT_NOEXP "eyJhbGciOiJIUzI1NiJ9.eyJpYXQiOjEwMDB9.c2ln"

static void lifetime_falls_back_to_the_jwt(void **state) {
  authloop__result f;
  long long secs;
  (void)state;
  assert_int_equal(authloop__jwt_lifetime(JWT_3600, &secs), 0);
  assert_int_equal(secs, 3600);
  assert_int_equal(parse(200,
                         "{\"user\":" USER ",\"accessToken\":\"" JWT_3600
                         "\",\"idToken\":\"I\",\"refreshToken\":\"R\"}",
                         &f),
                   0);
  assert_int_equal(f.lifetime_s, 3600);
  authloop__result_clear(&f);
  /* expiresIn, when present, wins; when present and bad, no fallback */
  assert_int_equal(parse(200,
                         "{\"user\":" USER ",\"accessToken\":\"" JWT_3600
                         "\",\"idToken\":\"I\",\"refreshToken\":\"R\",\"expiresIn\":60}",
                         &f),
                   0);
  assert_int_equal(f.lifetime_s, 60);
  authloop__result_clear(&f);
  assert_int_equal(parse(200,
                         "{\"user\":" USER ",\"accessToken\":\"" JWT_3600
                         "\",\"idToken\":\"I\",\"refreshToken\":\"R\",\"expiresIn\":\"x\"}",
                         &f),
                   AUTHLOOP_EPROTO);
  authloop__result_clear(&f);
  /* opaque tokens and broken JWTs give no lifetime */
  assert_int_equal(authloop__jwt_lifetime(JWT_NOEXP, &secs), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jwt_lifetime("opaque-token", &secs), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jwt_lifetime("a.b.c.d.e", &secs), AUTHLOOP_EPROTO); /* a JWE */
  assert_int_equal(authloop__jwt_lifetime("e30.!!!.x", &secs), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jwt_lifetime("e30.e30=.x", &secs), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jwt_lifetime("e30.W10.x", &secs), AUTHLOOP_EPROTO); /* [] */
  assert_int_equal(authloop__jwt_lifetime("..", &secs), AUTHLOOP_EPROTO);
  /* the exp claim alone: none is "never"; a payload that is no object has no claims at all */
  assert_int_equal(authloop__jwt_expiry("e30.e30.x", &secs), AUTHLOOP_ENOENT);  /* {} */
  assert_int_equal(authloop__jwt_expiry("e30.W10.x", &secs), AUTHLOOP_EPROTO);  /* [] */
  assert_int_equal(authloop__jwt_expiry("e30.WzFd.x", &secs), AUTHLOOP_EPROTO); /* [1] */
  assert_int_equal(authloop__jwt_expiry("e30.eyJleHAiOjE3fQ.x", &secs), 0);     /* {"exp":17} */
  assert_int_equal(secs, 17);
  assert_int_equal(authloop__jwt_expiry("e30.eyJleHAiOi0xfQ.x", &secs), AUTHLOOP_EPROTO); /* -1 */
}

static void base64url(void **state) {
  unsigned char *out;
  size_t n;
  (void)state;
  assert_int_equal(authloop__b64url_decode("_-8", 3, &out, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(out[0], 0xff);
  assert_int_equal(out[1], 0xef);
  free(out);
  assert_int_equal(authloop__b64url_decode("", 0, &out, &n), 0);
  assert_int_equal(n, 0);
  free(out);
  assert_int_equal(authloop__b64url_decode("a", 1, &out, &n), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__b64url_decode("ab+/", 4, &out, &n), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__b64url_decode("a*b=", 4, &out, &n), AUTHLOOP_EPROTO);
}

static int refresh(long status, const char *body, authloop__result *r) {
  authloop__answer a = answer(status, body);
  memset(r, 0, sizeof(*r));
  return authloop__gateway_refresh_answer(&a, r);
}

static void refresh_answers(void **state) {
  static const struct {
    long status;
    const char *body;
    int want;
  } bad[] = {
      {401, "{\"error\":{\"code\":4009,\"message\":\"Refresh token is invalid\"}}",
       AUTHLOOP_EREVOKED},
      {400, "{\"error\":{\"code\":4000,\"message\":\"bad token\"}}", AUTHLOOP_EREVOKED},
      /* not in the gateway's words (a proxy's page, nothing): not a revocation */
      {401, "", AUTHLOOP_EREJECTED},
      {401, "<html><body>401 Authorization Required</body></html>", AUTHLOOP_EREJECTED},
      {400, "{}", AUTHLOOP_EREJECTED},
      {403, "{\"error\":{\"code\":4009}}", AUTHLOOP_EREVOKED}, /* the code decides */
      {403, "{\"error\":{\"code\":4030}}", AUTHLOOP_EREJECTED},
      {500, "{}", AUTHLOOP_EUNAVAILABLE},
      {429, "", AUTHLOOP_EUNAVAILABLE},
      {200, "{\"accessToken\":\"A\",\"expiresIn\":60}", AUTHLOOP_EPROTO},
      {200, "{\"accessToken\":\"A\",\"idToken\":\"I\"}", AUTHLOOP_EPROTO},
      {200, "{\"accessToken\":\"A\",\"idToken\":\"I\",\"expiresIn\":60,\"refreshToken\":\"\"}",
       AUTHLOOP_EPROTO},
      {200, "nope", AUTHLOOP_EPROTO},
  };
  authloop__result f;
  size_t i;
  (void)state;
  assert_int_equal(refresh(200, "{\"accessToken\":\"A2\",\"idToken\":\"I2\",\"expiresIn\":60}", &f),
                   0);
  assert_string_equal(f.access_token, "A2");
  assert_null(f.refresh_token); /* not rotated: the old one stays */
  assert_int_equal(f.lifetime_s, 60);
  authloop__result_clear(&f);
  assert_int_equal(refresh(200,
                           "{\"accessToken\":\"A3\",\"idToken\":\"I3\",\"expiresIn\":60,"
                           "\"refreshToken\":\"R3\"}",
                           &f),
                   0);
  assert_string_equal(f.refresh_token, "R3");
  authloop__result_clear(&f);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = refresh(bad[i].status, bad[i].body, &f);
    if (rc != bad[i].want)
      fail_msg("case %zu: %ld %s -> %s", i, bad[i].status, bad[i].body, authloop_err_name(rc));
    assert_null(f.access_token);
    authloop__result_clear(&f);
  }
}

/* The provider describes the login request; the URL comes out of libcurl's
 * URL API with the path option in place. */
static void login_request_carries_the_code(void **state) {
  const authloop__provider *p = &authloop__provider_gateway;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop__provider_env env = {0};
  authloop__credential cred = {0};
  const char *bases[AUTHLOOP__MAX_BASES] = {0};
  authloop__request req = {0};
  authloop__view v = {0};
  void *st = NULL;
  char *url;
  int step;
  (void)state;
  o.base_url = "https://chat.example.test/gw/";
  o.login_path = "/v2/login";
  env.user_agent = "ua";
  assert_int_equal(p->init(&o, &env, &st, bases), 0);
  assert_string_equal(bases[0], "https://chat.example.test/gw/");
  cred.kind = AUTHLOOP__CRED_CODE;
  cred.code = "bad code";
  assert_int_equal(p->login_start(st, &cred, &step), AUTHLOOP_EINVAL);
  cred.code = "c0de\x01";
  assert_int_equal(p->login_start(st, &cred, &step), AUTHLOOP_EINVAL);
  cred.code = "c0de";
  assert_int_equal(p->login_start(st, &cred, &step), 0);
  assert_int_equal(p->login_request(st, &v, step, &req), 0);
  assert_string_equal(req.method, "POST");
  assert_string_equal(req.json, "{\"authorizationCode\":\"c0de\"}");
  assert_int_equal(authloop__request_url(&req, &url), 0);
  assert_string_equal(url, "https://chat.example.test/gw/v2/login");
  curl_free(url);
  authloop__request_clear(&req);
  p->login_end(st);
  p->free(st);
  /* options of another dialect are refused, not ignored */
  o.app_id = "app1";
  assert_int_equal(p->init(&o, &env, &st, bases), AUTHLOOP_ENOTSUP);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_login),
      cmocka_unit_test(malformed_logins),
      cmocka_unit_test(deep_json_is_refused_not_crashed),
      cmocka_unit_test(error_bodies),
      cmocka_unit_test(logout_answers),
      cmocka_unit_test(login_request_carries_the_code),
      cmocka_unit_test(lifetime_falls_back_to_the_jwt),
      cmocka_unit_test(base64url),
      cmocka_unit_test(refresh_answers),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("gateway parsing", tests, NULL, NULL);
}
