/* SPDX-License-Identifier: MIT */
/* The CometChat dialect's table as pure functions: what it sends (the
 * official SDK's headers and body), its default region and device ids, the
 * hosts a user's settings name (hostile ones ignored), and the logout of a
 * token the server no longer knows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "providers/builtin.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

static const authloop__provider *const P = &authloop__provider_cometchat;

static void *make(const authloop_client_options *o, const unsigned char *installation,
                  const char **base0) {
  authloop__provider_env env;
  const char *bases[AUTHLOOP__MAX_BASES] = {NULL};
  void *state = NULL;
  size_t i;
  env.user_agent = "authloop/test";
  for (i = 0; i < sizeof(env.random); i++)
    env.random[i] = (unsigned char)(i * 7 + (installation ? 0 : (size_t)rand()));
  env.installation = installation;
  env.now_wall_ms = 1764590000123LL;
  assert_int_equal(P->init(o, &env, &state, bases), 0);
  if (base0)
    *base0 = bases[0];
  return state;
}

static authloop_client_options app_options(void) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  o.provider = "cometchat";
  o.app_id = "app1";
  return o;
}

/* The request's body as JSON (the last one read stays until the next call). */
static json_t *body_of(const authloop__request *r) {
  static json_t *last;
  json_decref(last);
  last = r->json ? json_loads(r->json, JSON_REJECT_DUPLICATES, NULL) : NULL;
  assert_non_null(last);
  return last;
}

static const char *header(const authloop__request *r, const char *name) {
  size_t i;
  for (i = 0; i < AUTHLOOP__MAX_HEADERS && r->headers[i].name; i++)
    if (strcmp(r->headers[i].name, name) == 0)
      return r->headers[i].value;
  return NULL;
}

static int matches(const char *s, const char *pattern) {
  regex_t re;
  int ok;
  assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
  ok = s && regexec(&re, s, 0, NULL, 0) == 0;
  regfree(&re);
  return ok;
}

#define UUID "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

static void default_region_is_eu(void **state) {
  authloop_client_options o = app_options();
  const char *base;
  void *k;
  (void)state;
  k = make(&o, NULL, &base);
  assert_string_equal(base, "https://app1.apiclient-eu.cometchat.io/v3.0");
  P->free(k);
  o.region = "us";
  k = make(&o, NULL, &base);
  assert_string_equal(base, "https://app1.apiclient-us.cometchat.io/v3.0");
  P->free(k);
}

/* The login's requests: the SDK's headers and body, a device id of the
 * SDK's form. */
static const char *login_device(void *k, authloop__request *r) {
  authloop__credential cred = {0};
  authloop__view v = {0};
  int step;
  cred.kind = AUTHLOOP__CRED_UID_KEY;
  cred.uid = "cometchat-uid-1";
  cred.key = "authkey-1";
  assert_int_equal(P->login_start(k, &cred, &step), 0);
  memset(r, 0, sizeof(*r));
  assert_int_equal(P->login_request(k, &v, step, r), 0);
  return json_string_value(json_object_get(body_of(r), "deviceId"));
}

static void sends_what_the_sdk_sends(void **state) {
  authloop_client_options o = app_options();
  authloop__request r;
  const json_t *info;
  void *k;
  (void)state;
  k = make(&o, NULL, NULL);
  assert_true(matches(login_device(k, &r), "^app1_" UUID "_1764590000123$"));
  assert_string_equal(r.method, "POST");
  assert_string_equal(header(&r, "sdk"), "javascript@4.2.0");
  assert_string_equal(header(&r, "appId"), "app1");
  assert_string_equal(header(&r, "apiKey"), "authkey-1");
  assert_true(matches(header(&r, "resource"), "^WEB-4_2_0-" UUID "-1764590000123$"));
  assert_null(header(&r, "Content-Type")); /* the transport sets it with the body */
  assert_string_equal(json_string_value(json_object_get(body_of(&r), "platform")), "WEB");
  info = json_object_get(body_of(&r), "appInfo");
  assert_string_equal(json_string_value(json_object_get(info, "version")), "v4.2.0");
  assert_string_equal(json_string_value(json_object_get(info, "apiVersion")), "v3.0");
  assert_string_equal(json_string_value(json_object_get(info, "userAgent")), "authloop/test");
  authloop__request_clear(&r);
  P->login_end(k);
  P->free(k);
}

static void device_ids(void **state) {
  static const unsigned char here[32] = {1, 2, 3}, there[32] = {4, 5, 6};
  authloop_client_options o = app_options();
  authloop__provider_env env = {0};
  const char *bases[AUTHLOOP__MAX_BASES];
  authloop__request r;
  char first[128];
  void *k, *k2;
  (void)state;
  /* per installation: the same in every client of it, another elsewhere */
  k = make(&o, here, NULL);
  k2 = make(&o, here, NULL);
  assert_true(matches(login_device(k, &r), "^app1_" UUID "$"));
  strcpy(first, json_string_value(json_object_get(body_of(&r), "deviceId")));
  authloop__request_clear(&r);
  assert_string_equal(login_device(k2, &r), first);
  /* ... while each client is a session of its own ("resource") */
  assert_string_not_equal(header(&r, "resource"), "");
  authloop__request_clear(&r);
  P->free(k2);
  k2 = make(&o, there, NULL);
  assert_string_not_equal(login_device(k2, &r), first);
  authloop__request_clear(&r);
  P->free(k2);
  P->free(k);
  /* the application's own, verbatim */
  o.device_id = "kiosk-7.front_desk";
  k = make(&o, here, NULL);
  assert_string_equal(login_device(k, &r), "kiosk-7.front_desk");
  authloop__request_clear(&r);
  P->free(k);
  /* refused: empty, a space, control bytes, too long */
  env.user_agent = "authloop/test";
  {
    static char longest[130];
    const char *bad[] = {"", "a b", "a\r\nX: y", "tab\there", longest};
    size_t i;
    memset(longest, 'd', 129);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
      void *s = NULL;
      o.device_id = bad[i];
      assert_int_equal(P->init(&o, &env, &s, bases), AUTHLOOP_EINVAL);
      assert_null(s);
    }
    longest[128] = '\0'; /* 128 bytes: the limit */
    o.device_id = longest;
    k = make(&o, NULL, NULL);
    P->free(k);
  }
}

/* A logout with this user in the session: where it goes. */
static char *logout_base(void *k, const char *settings_json) {
  authloop__request r = {0};
  authloop__view v = {0};
  json_t *user = json_pack("{s:s, s:s}", "uid", "cometchat-uid-1", "authToken", "tok");
  char *base, *user_json;
  if (settings_json)
    json_object_set_new(user, "settings", json_loads(settings_json, 0, NULL));
  user_json = json_dumps(user, JSON_COMPACT);
  v.user_json = user_json;
  v.access_token = "tok";
  assert_int_equal(P->logout_request(k, &v, 0, &r), 0);
  assert_string_equal(r.method, "DELETE");
  assert_string_equal(header(&r, "authToken"), "tok");
  assert_string_equal(header(&r, "Content-Type"), "application/json"); /* as the SDK, bodiless */
  base = strdup(r.base);
  authloop__request_clear(&r);
  json_decref(user);
  free(user_json);
  return base;
}

static void settings_hosts(void **state) {
  static const char *const hostile[] = {
      "{\"CLIENT_API_HOST\":\"evil.example@127.0.0.1\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example\\r\\nX-Injected: 1\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example/../admin\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example/%2e%2e/admin\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example?x=1\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example#f\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example:443:1\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example:\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"-a.example\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example\",\"CHAT_API_VERSION\":\"..\"}",
      "{\"CLIENT_API_HOST\":\"a.example\",\"CHAT_API_VERSION\":\"v3/0\"}",
      "{\"CLIENT_API_HOST\":\"a.example\",\"CHAT_API_VERSION\":\"\"}",
      "{\"CLIENT_API_HOST\":\"a.example\",\"CHAT_API_VERSION\":3}",
      "{\"CLIENT_API_HOST\":[\"a.example\"],\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example\"}",
      "\"not an object\"",
      /* ports libcurl refuses, and numbers it reads as addresses of its own */
      "{\"CLIENT_API_HOST\":\"a.example:99999\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example:65536\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example:0\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example:0443\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example:1b2\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example:18446744073709551617\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"2130706433\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"0x7f.1\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"1.0x7f\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"127.1\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"0\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"127.0.0.01\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"256.0.0.1\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a..example\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a.example.\",\"CHAT_API_VERSION\":\"v3.0\"}",
      "{\"CLIENT_API_HOST\":\"a-.example\",\"CHAT_API_VERSION\":\"v3.0\"}",
      /* bytes outside ASCII (UTF-8 of "e" with a circumflex), which a
       * single-byte locale would call letters: refused in any locale */
      "{\"CLIENT_API_HOST\":\"caf\u00ea.example\",\"CHAT_API_VERSION\":\"v3.0\"}",
  };
  authloop_client_options o = app_options();
  const char *configured;
  char *b;
  size_t i;
  void *k;
  (void)state;
  o.base_url = "https://127.0.0.1:9/cometchat/client/v3.0";
  o.admin_url = "https://127.0.0.1:9/cometchat/admin/v3.0";
  k = make(&o, NULL, &configured);
  b = logout_base(k, NULL);
  assert_string_equal(b, configured);
  free(b);
  b = logout_base(k, "{\"CLIENT_API_HOST\":\"app1.apiclient-eu.cometchat.io\","
                     "\"CHAT_API_VERSION\":\"v3.0\"}");
  assert_string_equal(b, "https://app1.apiclient-eu.cometchat.io/v3.0");
  free(b);
  /* a port and a path, as a test server or a proxy names them */
  b = logout_base(k, "{\"CLIENT_API_HOST\":\"127.0.0.1:8443/cometchat/settings-client\","
                     "\"CHAT_API_VERSION\":\"v3.1\"}");
  assert_string_equal(b, "https://127.0.0.1:8443/cometchat/settings-client/v3.1");
  free(b);
  b = logout_base(k, "{\"CLIENT_API_HOST\":\"x-1.apiclient-eu.cometchat.io:65535\","
                     "\"CHAT_API_VERSION\":\"v3.0\"}");
  assert_string_equal(b, "https://x-1.apiclient-eu.cometchat.io:65535/v3.0");
  free(b);
  for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
    b = logout_base(k, hostile[i]);
    if (strcmp(b, configured) != 0)
      fail_msg("settings %s sent the token to %s", hostile[i], b);
    free(b);
  }
  P->free(k);
}

static void logout_of_a_gone_token_succeeds(void **state) {
  static const char gone[] = "{\"error\":{\"code\":\"AUTH_ERR_AUTH_TOKEN_NOT_FOUND\","
                             "\"message\":\"The auth token tok does not exist.\"}}";
  static const char other[] = "{\"error\":{\"code\":\"ERR_BAD\",\"message\":\"bad\"}}";
  authloop__answer a = {0};
  authloop__result r = {0};
  (void)state;
  a.status = 401;
  a.body = gone;
  a.len = sizeof(gone) - 1;
  assert_int_equal(P->logout_answer(NULL, &a, &r), 0);
  assert_null(r.server_code);
  assert_null(r.message);
  authloop__result_clear(&r);
  a.body = other;
  a.len = sizeof(other) - 1;
  assert_int_equal(P->logout_answer(NULL, &a, &r), AUTHLOOP_EREJECTED);
  assert_string_equal(r.server_code, "ERR_BAD");
  assert_string_equal(r.message, "bad");
  authloop__result_clear(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(default_region_is_eu),
      cmocka_unit_test(sends_what_the_sdk_sends),
      cmocka_unit_test(device_ids),
      cmocka_unit_test(settings_hosts),
      cmocka_unit_test(logout_of_a_gone_token_succeeds),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
