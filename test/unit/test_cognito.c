/* SPDX-License-Identifier: MIT */
/* The Cognito dialect's requests and answers as pure functions: what
 * InitiateAuth carries (SECRET_HASH against an independent HMAC), tokens and
 * the user from AuthenticationResult, challenges, errors by __type, and
 * hostile answers (wrong types, a bad id token, absurd lifetimes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"
#include "providers/builtin.h"

enum { PASSWORD, CODE, REFRESH, LOGOUT };

static authloop__answer answer(long status, const char *body) {
  authloop__answer a = {0};
  a.status = status;
  a.body = body;
  a.len = strlen(body);
  return a;
}

/* header.claims.signature with the claims given (the signature is not read) */
static char *jwt(const char *claims) {
  char *p = authloop__b64url_encode((const unsigned char *)claims, strlen(claims)), *out;
  assert_non_null(p);
  out = malloc(strlen(p) + 64);
  sprintf(out, "eyJhbGciOiJSUzI1NiIsImtpZCI6IksifQ.%s.c2ln", p);
  free(p);
  return out;
}

#define ID_CLAIMS                                                                                  \
  "{\"sub\":\"6f1c\",\"cognito:username\":\"alice\",\"email\":\"a@example.test\",\"iat\":1000,"    \
  "\"exp\":4600}"
#define ACCESS_CLAIMS "{\"sub\":\"6f1c\",\"username\":\"alice\",\"iat\":1000,\"exp\":1900}"

/* {"AuthenticationResult": {...members...}} */
static int auth(long status, const char *members, int kind, authloop__result *r) {
  authloop__answer a;
  char body[8192];
  snprintf(body, sizeof(body), "{\"AuthenticationResult\":{%s}}", members);
  a = answer(status, body);
  memset(r, 0, sizeof(*r));
  return authloop__cognito_auth_answer(&a, kind, r);
}

static void tokens_and_user(void **state) {
  char *id = jwt(ID_CLAIMS), *access = jwt(ACCESS_CLAIMS), members[4096];
  authloop__result r;
  (void)state;
  snprintf(members, sizeof(members),
           "\"AccessToken\":\"%s\",\"IdToken\":\"%s\",\"RefreshToken\":\"RT\","
           "\"ExpiresIn\":3600,\"TokenType\":\"Bearer\"",
           access, id);
  assert_int_equal(auth(200, members, PASSWORD, &r), 0);
  assert_string_equal(r.access_token, access);
  assert_string_equal(r.id_token, id);
  assert_string_equal(r.refresh_token, "RT");
  assert_int_equal(r.lifetime_s, 3600); /* ExpiresIn wins over exp - iat (900) */
  assert_string_equal(r.user_id, "6f1c");
  assert_string_equal(r.user_name, "alice");
  assert_string_equal(r.user, ID_CLAIMS);
  authloop__result_clear(&r);

  /* no ExpiresIn: the access token's exp - iat; a refresh's answer has no
   * refresh token, and brings the newer claims */
  snprintf(members, sizeof(members), "\"AccessToken\":\"%s\",\"IdToken\":\"%s\"", access, id);
  assert_int_equal(auth(200, members, REFRESH, &r), 0);
  assert_int_equal(r.lifetime_s, 900);
  assert_null(r.refresh_token);
  assert_string_equal(r.user_id, "6f1c");
  authloop__result_clear(&r);
  /* ... which a password login's must have */
  assert_int_equal(auth(200, members, PASSWORD, &r), AUTHLOOP_EPROTO);
  assert_null(r.access_token);
  authloop__result_clear(&r);
  /* null is none */
  snprintf(members, sizeof(members),
           "\"AccessToken\":\"%s\",\"IdToken\":\"%s\",\"RefreshToken\":null,\"ExpiresIn\":null",
           access, id);
  assert_int_equal(auth(200, members, CODE, &r), 0);
  assert_int_equal(r.lifetime_s, 900);
  authloop__result_clear(&r);
  free(id);
  free(access);
}

static void hostile_answers(void **state) {
  char *id = jwt(ID_CLAIMS), *access = jwt(ACCESS_CLAIMS), members[4096];
  char *no_sub = jwt("{\"cognito:username\":\"alice\"}"), *array = jwt("[1,2]");
  char *name_num = jwt("{\"sub\":\"x\",\"cognito:username\":7}"),
       *empty_sub = jwt("{\"sub\":\"\"}");
  char *forever = jwt("{\"sub\":\"x\"}");
  const char *bad_ids[] = {"not-a-jwt", "a.b", "a.b.c.d.e", "", no_sub, array, name_num, empty_sub};
  const char *bad_ttls[] = {"0",         "-5",  "1e3", "\"3600\"", "99999999999999999999",
                            "316224001", "true"};
  authloop__result r;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
    snprintf(members, sizeof(members),
             "\"AccessToken\":\"%s\",\"IdToken\":\"%s\",\"RefreshToken\":\"RT\",\"ExpiresIn\":60",
             access, bad_ids[i]);
    assert_int_equal(auth(200, members, PASSWORD, &r), AUTHLOOP_EPROTO);
    assert_null(r.access_token);
    assert_null(r.user);
    assert_string_equal(r.message, "malformed response: missing or mistyped \"IdToken\"");
    authloop__result_clear(&r);
  }
  for (i = 0; i < sizeof(bad_ttls) / sizeof(bad_ttls[0]); i++) {
    snprintf(members, sizeof(members),
             "\"AccessToken\":\"%s\",\"IdToken\":\"%s\",\"RefreshToken\":\"RT\",\"ExpiresIn\":%s",
             access, id, bad_ttls[i]);
    assert_int_equal(auth(200, members, PASSWORD, &r), AUTHLOOP_EPROTO);
    assert_null(r.access_token);
    authloop__result_clear(&r);
  }
  /* no ExpiresIn and an access token without exp: no lifetime to keep to */
  snprintf(members, sizeof(members),
           "\"AccessToken\":\"%s\",\"IdToken\":\"%s\",\"RefreshToken\":\"RT\"", forever, id);
  assert_int_equal(auth(200, members, PASSWORD, &r), AUTHLOOP_EPROTO);
  authloop__result_clear(&r);
  /* wrong types and shapes */
  snprintf(members, sizeof(members), "\"AccessToken\":7,\"IdToken\":\"%s\"", id);
  assert_int_equal(auth(200, members, PASSWORD, &r), AUTHLOOP_EPROTO);
  authloop__result_clear(&r);
  snprintf(members, sizeof(members),
           "\"AccessToken\":\"%s\",\"IdToken\":\"%s\",\"RefreshToken\":[\"RT\"]", access, id);
  assert_int_equal(auth(200, members, REFRESH, &r), AUTHLOOP_EPROTO);
  authloop__result_clear(&r);
  {
    const char *bodies[] = {"",
                            "[]",
                            "null",
                            "{\"AuthenticationResult\":[]}",
                            "{\"AuthenticationResult\":null}",
                            "{\"a\":1,\"a\":2}",
                            "{",
                            "{\"ChallengeName\":5}"};
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
      authloop__answer a = answer(200, bodies[i]);
      memset(&r, 0, sizeof(r));
      assert_int_equal(authloop__cognito_auth_answer(&a, PASSWORD, &r), AUTHLOOP_EPROTO);
      assert_null(r.access_token);
      authloop__result_clear(&r);
    }
  }
  free(id);
  free(access);
  free(no_sub);
  free(array);
  free(name_num);
  free(empty_sub);
  free(forever);
}

static void challenges_are_not_answered(void **state) {
  authloop__answer a = answer(200, "{\"ChallengeName\":\"NEW_PASSWORD_REQUIRED\",\"Session\":\"s\","
                                   "\"ChallengeParameters\":{}}");
  authloop__result r = {0};
  (void)state;
  assert_int_equal(authloop__cognito_auth_answer(&a, PASSWORD, &r), AUTHLOOP_ENOTSUP);
  assert_string_equal(r.server_code, "NEW_PASSWORD_REQUIRED");
  assert_non_null(strstr(r.message, "NEW_PASSWORD_REQUIRED"));
  assert_null(r.access_token);
  authloop__result_clear(&r);
  /* on a refresh too: the token is kept until it runs out. A refusal for
   * that time (EREJECTED, with the challenge as server code) was tried: an
   * active user's session then retried past its expiry without end, as an
   * outage would (helper-35) */
  assert_int_equal(authloop__cognito_auth_answer(&a, REFRESH, &r), AUTHLOOP_ENOTSUP);
  assert_string_equal(r.server_code, "NEW_PASSWORD_REQUIRED");
  authloop__result_clear(&r);
}

static int error(long status, const char *body, int kind, authloop__result *r) {
  authloop__answer a = answer(status, body);
  memset(r, 0, sizeof(*r));
  return authloop__cognito_error(&a, kind, r);
}

static void errors_by_type(void **state) {
  authloop__result r;
  (void)state;
  assert_int_equal(error(400,
                         "{\"__type\":\"NotAuthorizedException\",\"message\":\"Incorrect "
                         "username or password.\"}",
                         PASSWORD, &r),
                   AUTHLOOP_ECREDENTIALS);
  assert_string_equal(r.server_code, "NotAuthorizedException");
  assert_string_equal(r.message, "Incorrect username or password.");
  assert_int_equal(r.http_status, 400);
  authloop__result_clear(&r);
  /* the same on a refresh is final; on a login with a refresh token, a refusal */
  assert_int_equal(error(400, "{\"__type\":\"NotAuthorizedException\"}", REFRESH, &r),
                   AUTHLOOP_EREVOKED);
  authloop__result_clear(&r);
  assert_int_equal(error(400, "{\"__type\":\"NotAuthorizedException\"}", CODE, &r),
                   AUTHLOOP_EREJECTED);
  authloop__result_clear(&r);
  /* namespaced, with a URL after ':', as the SDKs read it; "Message" too */
  assert_int_equal(error(400,
                         "{\"__type\":\"com.amazonaws.cognito#UserNotFoundException:http://x/y\","
                         "\"Message\":\"User does not exist.\"}",
                         PASSWORD, &r),
                   AUTHLOOP_ECREDENTIALS);
  assert_string_equal(r.server_code, "UserNotFoundException");
  assert_string_equal(r.message, "User does not exist.");
  authloop__result_clear(&r);
  /* throttling passes, though sent as a 400 */
  assert_int_equal(error(400, "{\"__type\":\"TooManyRequestsException\"}", REFRESH, &r),
                   AUTHLOOP_EUNAVAILABLE);
  authloop__result_clear(&r);
  assert_int_equal(error(500, "{\"__type\":\"NotAuthorizedException\"}", REFRESH, &r),
                   AUTHLOOP_EUNAVAILABLE);
  authloop__result_clear(&r);
  /* no body we understand: the status alone */
  assert_int_equal(error(403, "<html>denied</html>", REFRESH, &r), AUTHLOOP_EREJECTED);
  assert_null(r.server_code);
  authloop__result_clear(&r);
  assert_int_equal(error(400, "{\"__type\":\"#\",\"message\":7}", PASSWORD, &r),
                   AUTHLOOP_EREJECTED);
  assert_null(r.server_code);
  authloop__result_clear(&r);
  assert_int_equal(error(429, "{}", PASSWORD, &r), AUTHLOOP_EUNAVAILABLE);
  authloop__result_clear(&r);
}

static json_t *body_of(const authloop__request *q) {
  json_t *j = json_loads(q->json, 0, NULL);
  assert_non_null(j);
  return j;
}

static const char *header(const authloop__request *q, const char *name) {
  size_t i;
  for (i = 0; i < AUTHLOOP__MAX_HEADERS && q->headers[i].name; i++)
    if (strcmp(q->headers[i].name, name) == 0)
      return q->headers[i].value;
  return NULL;
}

static void *client(const char *id, const char *secret) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop__provider_env env = {0};
  const char *bases[AUTHLOOP__MAX_BASES] = {0};
  void *s = NULL;
  o.region = "eu-west-1";
  o.client_id = id;
  o.client_secret = secret;
  assert_int_equal(authloop__provider_cognito.init(&o, &env, &s, bases), 0);
  assert_string_equal(bases[0], "https://cognito-idp.eu-west-1.amazonaws.com");
  return s;
}

static void requests(void **state) {
  const authloop__provider *p = &authloop__provider_cognito;
  void *s = client("dc2obwfv217a7vv8av6krei7u", "9zkyadw78esys7m9p58wsyxef");
  authloop__credential cred = {0};
  authloop__request q = {0};
  authloop__view v = {0};
  json_t *j, *params;
  int step;
  (void)state;
  cred.kind = AUTHLOOP__CRED_PASSWORD;
  cred.username = "alice";
  cred.password = "pw\"\\";
  assert_int_equal(p->login_start(s, &cred, &step), 0);
  assert_int_equal(p->login_request(s, &v, step, &q), 0);
  assert_string_equal(q.method, "POST");
  assert_string_equal(header(&q, "X-Amz-Target"), "AWSCognitoIdentityProviderService.InitiateAuth");
  assert_string_equal(header(&q, "Content-Type"), "application/x-amz-json-1.1");
  assert_string_equal(q.path[0].text, "/");
  j = body_of(&q);
  params = json_object_get(j, "AuthParameters");
  assert_string_equal(json_string_value(json_object_get(j, "AuthFlow")), "USER_PASSWORD_AUTH");
  assert_string_equal(json_string_value(json_object_get(j, "ClientId")),
                      "dc2obwfv217a7vv8av6krei7u");
  assert_string_equal(json_string_value(json_object_get(params, "USERNAME")), "alice");
  assert_string_equal(json_string_value(json_object_get(params, "PASSWORD")), "pw\"\\");
  /* Base64(HMAC-SHA256(secret, "alice" + client id)), from Python's hmac */
  assert_string_equal(json_string_value(json_object_get(params, "SECRET_HASH")),
                      "YdRzNHLB+meC7SxJuO6iDyrNvcVipPm4SndTpZ7pskk=");
  json_decref(j);
  authloop__request_clear(&q);
  p->login_end(s);

  /* a refresh signs with the session's cognito:username */
  memset(&q, 0, sizeof(q));
  v.refresh_token = "RT";
  v.user_json = "{\"sub\":\"x\",\"cognito:username\":\"alice\"}";
  assert_int_equal(p->refresh_request(s, &v, &q), 0);
  j = body_of(&q);
  params = json_object_get(j, "AuthParameters");
  assert_string_equal(json_string_value(json_object_get(j, "AuthFlow")), "REFRESH_TOKEN_AUTH");
  assert_string_equal(json_string_value(json_object_get(params, "REFRESH_TOKEN")), "RT");
  assert_string_equal(json_string_value(json_object_get(params, "SECRET_HASH")),
                      "YdRzNHLB+meC7SxJuO6iDyrNvcVipPm4SndTpZ7pskk=");
  json_decref(j);
  authloop__request_clear(&q);
  /* without a name it cannot be signed: the session ends rather than loop */
  memset(&q, 0, sizeof(q));
  v.user_json = "{\"sub\":\"x\"}";
  assert_int_equal(p->refresh_request(s, &v, &q), AUTHLOOP_EREVOKED);
  authloop__request_clear(&q);

  /* logout: RevokeToken with the client secret; global: GlobalSignOut */
  memset(&q, 0, sizeof(q));
  v.access_token = "AT";
  assert_int_equal(p->logout_request(s, &v, 0, &q), 0);
  assert_string_equal(header(&q, "X-Amz-Target"), "AWSCognitoIdentityProviderService.RevokeToken");
  j = body_of(&q);
  assert_string_equal(json_string_value(json_object_get(j, "Token")), "RT");
  assert_string_equal(json_string_value(json_object_get(j, "ClientSecret")),
                      "9zkyadw78esys7m9p58wsyxef");
  json_decref(j);
  authloop__request_clear(&q);
  memset(&q, 0, sizeof(q));
  assert_int_equal(p->logout_request(s, &v, 1, &q), 0);
  assert_string_equal(header(&q, "X-Amz-Target"),
                      "AWSCognitoIdentityProviderService.GlobalSignOut");
  j = body_of(&q);
  assert_string_equal(json_string_value(json_object_get(j, "AccessToken")), "AT");
  assert_int_equal(json_object_size(j), 1);
  json_decref(j);
  authloop__request_clear(&q);
  p->free(s);

  /* UTF-8 in the secret and name, '+' in the client id */
  s = client("client_1+x", "s\xc3\xa9"
                           "cret");
  memset(&q, 0, sizeof(q));
  cred.username = "zo\xc3\xab";
  assert_int_equal(p->login_start(s, &cred, &step), 0);
  assert_int_equal(p->login_request(s, &v, step, &q), 0);
  j = body_of(&q);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(j, "AuthParameters"), "SECRET_HASH")),
      "1fz3tYNynqIK6hEP25fFzTaxnqLdfC1LTeezZLLxQAc=");
  json_decref(j);
  authloop__request_clear(&q);
  p->login_end(s);
  p->free(s);
}

static void bad_options_and_credentials(void **state) {
  const authloop__provider *p = &authloop__provider_cognito;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop__provider_env env = {0};
  const char *bases[AUTHLOOP__MAX_BASES] = {0};
  const char *ids[] = {"", "a b", "a/b", "a\"b", "\xc3\xa9"};
  authloop__credential cred = {0};
  char long_id[130];
  void *s = NULL;
  size_t i;
  int step;
  (void)state;
  o.base_url = "https://cognito.example";
  for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
    o.client_id = ids[i];
    assert_int_equal(p->init(&o, &env, &s, bases), AUTHLOOP_EINVAL);
  }
  memset(long_id, 'a', sizeof(long_id) - 1);
  long_id[sizeof(long_id) - 1] = '\0';
  o.client_id = long_id;
  assert_int_equal(p->init(&o, &env, &s, bases), AUTHLOOP_EINVAL);
  long_id[128] = '\0';
  assert_int_equal(p->init(&o, &env, &s, bases), 0);
  assert_string_equal(bases[0], "https://cognito.example");

  cred.kind = AUTHLOOP__CRED_CODE;
  cred.code = "has space";
  assert_int_equal(p->login_start(s, &cred, &step), AUTHLOOP_EINVAL);
  cred.code = "ok\r\n";
  assert_int_equal(p->login_start(s, &cred, &step), AUTHLOOP_EINVAL);
  cred.kind = AUTHLOOP__CRED_PASSWORD;
  cred.username = "alice";
  cred.password = NULL;
  assert_int_equal(p->login_start(s, &cred, &step), AUTHLOOP_EINVAL);
  cred.password = "\xff";
  assert_int_equal(p->login_start(s, &cred, &step), AUTHLOOP_EINVAL);
  cred.password = "x";
  cred.username = "al\x7fice";
  assert_int_equal(p->login_start(s, &cred, &step), AUTHLOOP_EINVAL);
  p->free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tokens_and_user),
      cmocka_unit_test(hostile_answers),
      cmocka_unit_test(challenges_are_not_answered),
      cmocka_unit_test(errors_by_type),
      cmocka_unit_test(requests),
      cmocka_unit_test(bad_options_and_credentials),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("cognito dialect", tests, NULL, NULL);
}
