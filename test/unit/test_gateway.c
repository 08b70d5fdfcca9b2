/* Parsing of gateway answers: valid, malformed, mistyped, error bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define USER   "{\"id\":\"u1\",\"name\":\"Una\",\"email\":\"u1@example.test\",\"claims\":{\"a\":1}}"
#define TOKENS "\"accessToken\":\"AT\",\"idToken\":\"IT\",\"refreshToken\":\"RT\""

static int parse(long status, const char *body, authloop__session *s, authloop__failure *f) {
  return authloop__gateway_parse_login(status, body, strlen(body), s, f);
}

static void valid_login(void **state) {
  authloop__session s;
  authloop__failure f;
  (void)state;
  assert_int_equal(parse(200, "{\"user\":" USER "," TOKENS ",\"expiresIn\":3600}", &s, &f), 0);
  assert_string_equal(s.access_token, "AT");
  assert_string_equal(s.id_token, "IT");
  assert_string_equal(s.refresh_token, "RT");
  assert_int_equal(s.expires_in, 3600);
  assert_string_equal(authloop_user_id(s.user), "u1");
  assert_string_equal(authloop_user_name(s.user), "Una");
  assert_string_equal(authloop_user_json(s.user), USER);
  authloop__session_clear(&s);
  assert_null(s.access_token);
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
    authloop__session s;
    authloop__failure f;
    int rc = parse(200, cases[i].body, &s, &f);
    if (rc != AUTHLOOP_EPROTO)
      fail_msg("case %zu: %s -> %s", i, cases[i].body, authloop_err_name(rc));
    assert_int_equal(f.error, AUTHLOOP_EPROTO);
    assert_non_null(f.message);
    if (!strstr(f.message, cases[i].field))
      fail_msg("case %zu: message \"%s\" does not name %s", i, f.message, cases[i].field);
    assert_null(s.user);
    assert_null(s.access_token);
    authloop__failure_clear(&f);
  }
}

static void deep_json_is_refused_not_crashed(void **state) {
  char body[20000];
  authloop__session s;
  authloop__failure f;
  size_t i;
  (void)state;
  for (i = 0; i < 9000; i++)
    body[i] = '[';
  body[i] = '\0';
  assert_int_equal(parse(200, body, &s, &f), AUTHLOOP_EPROTO);
  authloop__failure_clear(&f);
}

static void error_bodies(void **state) {
  authloop__session s;
  authloop__failure f;
  (void)state;
  assert_int_equal(parse(401,
                         "{\"error\":{\"code\":4003,\"name\":\"InvalidAuthorizationCode\","
                         "\"message\":\"bad code\"}}",
                         &s, &f),
                   AUTHLOOP_EREJECTED);
  assert_int_equal(f.http_status, 401);
  assert_string_equal(f.server_code, "4003");
  assert_string_equal(f.message, "bad code");
  authloop__failure_clear(&f);

  /* no usable body: the status speaks */
  assert_int_equal(parse(500, "<html>oops</html>", &s, &f), AUTHLOOP_EUNAVAILABLE);
  assert_null(f.server_code);
  assert_non_null(strstr(f.message, "HTTP 500"));
  authloop__failure_clear(&f);
  assert_int_equal(parse(429, "", &s, &f), AUTHLOOP_EUNAVAILABLE);
  authloop__failure_clear(&f);
  assert_int_equal(parse(404, "{\"error\":\"nope\"}", &s, &f), AUTHLOOP_EREJECTED);
  assert_non_null(strstr(f.message, "HTTP 404"));
  authloop__failure_clear(&f);
  /* a string code is kept as sent; an empty message falls back */
  assert_int_equal(parse(403, "{\"error\":{\"code\":\"E42\",\"message\":\"\"}}", &s, &f),
                   AUTHLOOP_EREJECTED);
  assert_string_equal(f.server_code, "E42");
  assert_non_null(strstr(f.message, "HTTP 403"));
  authloop__failure_clear(&f);
  /* a redirect is not a login */
  assert_int_equal(parse(302, "", &s, &f), AUTHLOOP_EREJECTED);
  authloop__failure_clear(&f);
}

static void logout_answers(void **state) {
  authloop__failure f;
  (void)state;
  assert_int_equal(authloop__gateway_parse_logout(204, NULL, 0, &f), 0);
  assert_int_equal(authloop__gateway_parse_logout(200, "{}", 2, &f), 0);
  assert_int_equal(
      authloop__gateway_parse_logout(401, "{\"error\":{\"code\":4001,\"message\":\"no\"}}", 38, &f),
      AUTHLOOP_EREJECTED);
  assert_string_equal(f.server_code, "4001");
  authloop__failure_clear(&f);
}

/* base64url of {"sub":"u","iat":1000,"exp":4600} and of {"iat":1000} */
#define JWT_3600  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1IiwiaWF0IjoxMDAwLCJleHAiOjQ2MDB9.c2ln"
#define JWT_NOEXP "eyJhbGciOiJIUzI1NiJ9.eyJpYXQiOjEwMDB9.c2ln"

static void lifetime_falls_back_to_the_jwt(void **state) {
  authloop__session s;
  authloop__failure f;
  long secs;
  (void)state;
  assert_int_equal(authloop__jwt_lifetime(JWT_3600, &secs), 0);
  assert_int_equal(secs, 3600);
  assert_int_equal(parse(200,
                         "{\"user\":" USER ",\"accessToken\":\"" JWT_3600
                         "\",\"idToken\":\"I\",\"refreshToken\":\"R\"}",
                         &s, &f),
                   0);
  assert_int_equal(s.expires_in, 3600);
  authloop__session_clear(&s);
  /* expiresIn, when present, wins; when present and bad, no fallback */
  assert_int_equal(parse(200,
                         "{\"user\":" USER ",\"accessToken\":\"" JWT_3600
                         "\",\"idToken\":\"I\",\"refreshToken\":\"R\",\"expiresIn\":60}",
                         &s, &f),
                   0);
  assert_int_equal(s.expires_in, 60);
  authloop__session_clear(&s);
  assert_int_equal(parse(200,
                         "{\"user\":" USER ",\"accessToken\":\"" JWT_3600
                         "\",\"idToken\":\"I\",\"refreshToken\":\"R\",\"expiresIn\":\"x\"}",
                         &s, &f),
                   AUTHLOOP_EPROTO);
  authloop__failure_clear(&f);
  /* opaque tokens and broken JWTs give no lifetime */
  assert_int_equal(authloop__jwt_lifetime(JWT_NOEXP, &secs), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jwt_lifetime("opaque-token", &secs), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jwt_lifetime("a.b.c.d.e", &secs), AUTHLOOP_EPROTO); /* a JWE */
  assert_int_equal(authloop__jwt_lifetime("e30.!!!.x", &secs), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jwt_lifetime("e30.e30=.x", &secs), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jwt_lifetime("e30.W10.x", &secs), AUTHLOOP_EPROTO); /* [] */
  assert_int_equal(authloop__jwt_lifetime("..", &secs), AUTHLOOP_EPROTO);
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

static int refresh(long status, const char *body, authloop__session *s, authloop__failure *f) {
  return authloop__gateway_parse_refresh(status, body, strlen(body), s, f);
}

static void refresh_answers(void **state) {
  static const struct {
    long status;
    const char *body;
    int want;
  } bad[] = {
      {401, "{\"error\":{\"code\":4009,\"message\":\"Refresh token is invalid\"}}",
       AUTHLOOP_EREVOKED},
      {401, "", AUTHLOOP_EREVOKED},
      {400, "{}", AUTHLOOP_EREVOKED},
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
  authloop__session s;
  authloop__failure f;
  size_t i;
  (void)state;
  assert_int_equal(
      refresh(200, "{\"accessToken\":\"A2\",\"idToken\":\"I2\",\"expiresIn\":60}", &s, &f), 0);
  assert_string_equal(s.access_token, "A2");
  assert_null(s.refresh_token); /* not rotated: the old one stays */
  assert_int_equal(s.expires_in, 60);
  authloop__session_clear(&s);
  assert_int_equal(refresh(200,
                           "{\"accessToken\":\"A3\",\"idToken\":\"I3\",\"expiresIn\":60,"
                           "\"refreshToken\":\"R3\"}",
                           &s, &f),
                   0);
  assert_string_equal(s.refresh_token, "R3");
  authloop__session_clear(&s);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = refresh(bad[i].status, bad[i].body, &s, &f);
    if (rc != bad[i].want)
      fail_msg("case %zu: %ld %s -> %s", i, bad[i].status, bad[i].body, authloop_err_name(rc));
    assert_null(s.access_token);
    authloop__failure_clear(&f);
  }
}

static void login_body_carries_the_code(void **state) {
  json_t *b = authloop__gateway_login_body("c0de");
  char *s = json_dumps(b, JSON_COMPACT);
  (void)state;
  assert_string_equal(s, "{\"authorizationCode\":\"c0de\"}");
  free(s);
  authloop__json_wipe_decref(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_login),
      cmocka_unit_test(malformed_logins),
      cmocka_unit_test(deep_json_is_refused_not_crashed),
      cmocka_unit_test(error_bodies),
      cmocka_unit_test(logout_answers),
      cmocka_unit_test(login_body_carries_the_code),
      cmocka_unit_test(lifetime_falls_back_to_the_jwt),
      cmocka_unit_test(base64url),
      cmocka_unit_test(refresh_answers),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("gateway parsing", tests, NULL, NULL);
}
