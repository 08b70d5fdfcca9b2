/* SPDX-License-Identifier: MIT */
/* The Kuzzle and CometChat dialects against the reference server over TLS:
 * logins and their failures, two-step strategies, refresh keeping expiresIn,
 * expired and revoked tokens, global logout, CometChat's validation codes in
 * its order, token-not-found, and session queries and restore for all three
 * providers. Every test ends with uv_loop_close() == 0. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char cc_client[128], cc_admin[128], tmpdir[256];

static int group_setup(void **state) {
  test_group_setup(state);
  snprintf(cc_client, sizeof(cc_client), "%s/cometchat/client/v3.0", server.base_url);
  snprintf(cc_admin, sizeof(cc_admin), "%s/cometchat/admin/v3.0", server.base_url);
  test_make_tmpdir(tmpdir, sizeof(tmpdir), "dialects");
  return 0;
}

static int group_teardown(void **state) {
  test_group_teardown(state);
  test_remove_tree(tmpdir);
  return 0;
}

/* userinfo: the option (0: getCurrentUser at login, -1: none) */
static authloop_client *kuzzle_client_with(test_env *e, const char *session_path, int userinfo) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "kuzzle";
  o.base_url = server.base_url; /* Kuzzle lives at the root */
  o.session_path = session_path;
  o.userinfo = userinfo;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static authloop_client *kuzzle_client(test_env *e, const char *session_path) {
  return kuzzle_client_with(e, session_path, 0);
}

static authloop_client *cometchat_client(test_env *e, const char *app_id,
                                         const char *session_path) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "cometchat";
  o.app_id = app_id;
  o.base_url = cc_client;
  o.admin_url = cc_admin;
  o.session_path = session_path;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static const authloop_event *wait_login(test_env *e, test_recorder *r) {
  int before = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], before + 1, 5000);
  return &r->last[AUTHLOOP_EV_LOGIN_ATTEMPT];
}

/* ---- Kuzzle ------------------------------------------------------------------------- */

static void kuzzle_local_login_and_queries(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  const authloop_user *u;
  long with_auth = test_stat(&server, "kuzzleLoginWithAuthorization");
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "1h"), 0);
  assert_true(wait_login(&e, &r)->success);
  u = authloop_current_user(c);
  assert_string_equal(authloop_user_id(u), "kuzzle-user");
  assert_string_equal(authloop_user_name(u), "Kuzzle User");
  assert_non_null(strstr(authloop_user_json(u), "\"profileIds\":[\"default\"]"));
  assert_int_equal(strncmp(authloop_access_token(c), "kauth-", 6), 0);
  assert_int_equal(authloop_token_lifetime(c), 3600);
  assert_true(authloop_token_expires_in_ms(c) > 3590 * 1000);
  assert_int_equal(test_stat(&server, "kuzzleLoginWithAuthorization"), with_auth); /* none sent */
  /* a wrong-dialect call is refused at once */
  assert_int_equal(authloop_logout(c), 0);
  assert_int_equal(authloop_login_code(c, "abc"), AUTHLOOP_EWRONGPROVIDER);
  test_env_close(&e);
}

static void kuzzle_refusals_map_to_their_codes(void **state) {
  static const struct {
    const char *strategy, *creds, *expires_in, *server_code;
    int error;
  } cases[] = {
      {"local", "{\"username\":\"kuzzle-user\",\"password\":\"bad\"}", NULL,
       "plugin.strategy.missing_user", AUTHLOOP_ECREDENTIALS},
      {"nosuch", "{}", NULL, "security.credentials.unknown_strategy", AUTHLOOP_ESTRATEGY},
      {"local", "{\"username\":\"kuzzle-user\",\"password\":\"kuzzle-pass\"}", "soon",
       "api.assert.invalid_argument", AUTHLOOP_EEXPIRESIN},
      {"local", "{\"username\":\"kuzzle-user\",\"password\":\"kuzzle-pass\"}", "30d",
       "security.token.ttl_exceeded", AUTHLOOP_EEXPIRESIN},
  };
  test_env e;
  test_recorder r;
  authloop_client *c;
  size_t i;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  /* Kuzzle's default maxTTL is -1 (unlimited); a deployment sets one */
  json_decref(test_control(&server, "/__test/kuzzle-config", "{\"maxTtl\":86400000}"));
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const authloop_event *ev;
    assert_int_equal(
        authloop_login_strategy(c, cases[i].strategy, cases[i].creds, cases[i].expires_in), 0);
    ev = wait_login(&e, &r);
    if (ev->error != cases[i].error || !ev->server_code ||
        strcmp(ev->server_code, cases[i].server_code) != 0)
      fail_msg("case %zu: %s / %s", i, authloop_err_name(ev->error), ev->server_code);
    assert_false(ev->success);
  }
  json_decref(test_control(&server, "/__test/kuzzle-config", "{}"));
  /* the server's own message reaches the event */
  assert_string_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].message,
                      "expiresIn value exceeds maximum allowed value");
  assert_int_equal(authloop_login_strategy(c, "local", "not json", NULL), AUTHLOOP_EINVAL);
  /* ambiguous: which username a server takes depends on its parser */
  assert_int_equal(
      authloop_login_strategy(c, "local",
                              "{\"username\":\"a\",\"username\":\"b\",\"password\":\"p\"}", NULL),
      AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_strategy(c, "local", "[1]", NULL), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_strategy(c, "lo cal", "{}", NULL), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_local(c, "", "x", NULL), AUTHLOOP_EINVAL);
  test_env_close(&e);
}

/* authloop_login_password() on Kuzzle is the local strategy, with the
 * server's default lifetime; on the gateway it is another dialect's call. */
static void kuzzle_password_is_the_local_strategy(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c, *g;
  json_t *last;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  g = test_client(&e, &server);
  test_record(c, &r);
  assert_int_equal(authloop_login_password(g, "kuzzle-user", "kuzzle-pass"),
                   AUTHLOOP_EWRONGPROVIDER);
  assert_int_equal(authloop_login_password(c, "kuzzle-user", "wrong"), 0);
  assert_false(wait_login(&e, &r)->success);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECREDENTIALS);
  assert_int_equal(authloop_login_password(c, "kuzzle-user", "kuzzle-pass"), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_token_lifetime(c), 3600);
  last = test_last_request(&server, "POST", "/_login/local");
  assert_string_equal(json_string_value(json_object_get(last, "query")), ""); /* no expiresIn */
  json_decref(last);
  test_env_close(&e);
}

static authloop_client *kuzzle_client_without_me(test_env *e, const char *session_path) {
  return kuzzle_client_with(e, session_path, -1);
}

/* A login answer of ours, the jwt and _id as JSON text. */
static void kuzzle_login_fault(const char *id_member) {
  char body[512];
  snprintf(body, sizeof(body),
           "{\"requestId\":\"x\",\"status\":200,\"error\":null,\"controller\":\"auth\","
           "\"action\":\"login\",\"result\":{%s\"jwt\":\"kauth-x\",\"expiresAt\":4102444800000,"
           "\"ttl\":3600000}}",
           id_member);
  test_fault_body(&server, "/_login/local", 200, body);
}

/* Option userinfo -1: no getCurrentUser after the login (the official SDK
 * makes none): the user is the login answer's _id alone, written again as
 * JSON, with no name; it is kept in the session file as any user is. An
 * answer without a usable _id is refused as malformed. */
static void kuzzle_user_from_the_login_answer(void **state) {
  static const char *const refused[] = {
      "",
      "\"_id\":\"\",",
      "\"_id\":7,",
      "\"_id\":null,",
      "\"_id\":{},",
      "\"_id\":\"a\\u0000b\",", /* a NUL would cut the id */
      "\"_id\":\"\\ud800\",",   /* a lone surrogate: no UTF-8 for it */
      "\"_id\":\"a\",\"_id\":\"b\","};
  char dir[256], path[300];
  test_env e;
  test_recorder r, r2;
  authloop_client *c;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  const authloop_user *u;
  long me;
  size_t i;
  (void)state;
  test_make_tmpdir(dir, sizeof(dir), "kuzzle-no-me");
  snprintf(path, sizeof(path), "%s/session", dir);
  test_env_init(&e, &server, NULL);
  /* the values: 1, 0, -1; and no other; no other dialect but OpenID Connect */
  o.provider = "kuzzle";
  o.base_url = server.base_url;
  o.userinfo = 2;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.userinfo = -2;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.userinfo = -1;
  o.provider = "gateway";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);

  me = test_stat(&server, "/users/_me");
  c = kuzzle_client_without_me(&e, path);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "1h"), 0);
  assert_true(wait_login(&e, &r)->success);
  u = authloop_current_user(c);
  assert_string_equal(authloop_user_id(u), "kuzzle-user");
  assert_null(authloop_user_name(u));
  assert_string_equal(authloop_user_json(u), "{\"_id\":\"kuzzle-user\"}");
  assert_int_equal(strncmp(authloop_access_token(c), "kauth-", 6), 0);
  assert_int_equal(authloop_token_lifetime(c), 3600);
  assert_int_equal(test_stat(&server, "/users/_me"), me); /* none asked */
  test_run_until_stored(&e, 5000);
  authloop_client_free(c);

  /* restored from the file: the same user */
  c = kuzzle_client_without_me(&e, path);
  test_record(c, &r2);
  assert_true(authloop_is_logged_in(c));
  assert_string_equal(authloop_user_json(authloop_current_user(c)), "{\"_id\":\"kuzzle-user\"}");
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r2.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r2.last[AUTHLOOP_EV_LOGOUT].error, 0);
  authloop_client_free(c);

  /* the id decoded, then escaped again as JSON writes it */
  c = kuzzle_client_without_me(&e, NULL);
  test_record(c, &r);
  kuzzle_login_fault("\"_id\":\"a\\\"b\\u00e9\\/\",");
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "a\"b\xc3\xa9/");
  assert_string_equal(authloop_user_json(authloop_current_user(c)),
                      "{\"_id\":\"a\\\"b\xc3\xa9/\"}");
  authloop_client_free(c);

  for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    const authloop_event *ev;
    c = kuzzle_client_without_me(&e, NULL);
    test_record(c, &r);
    kuzzle_login_fault(refused[i]);
    assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
    ev = wait_login(&e, &r);
    if (ev->success || ev->error != AUTHLOOP_EPROTO)
      fail_msg("login answer with %s: success %d, %s", refused[i], ev->success,
               authloop_err_name(ev->error));
    assert_false(authloop_is_logged_in(c));
    assert_null(authloop_current_user(c));
    authloop_client_free(c);
  }
  assert_int_equal(test_stat(&server, "/users/_me"), me);
  test_env_close(&e);
  test_remove_tree(dir);
}

static void kuzzle_never_expiring_token(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_token_lifetime(c), -1);
  assert_int_equal(authloop_token_expires_in_ms(c), -1);
  assert_int_equal(authloop_refresh(c, NULL, NULL), AUTHLOOP_ENOTSUP);
  test_env_close(&e);
}

static void kuzzle_two_step_strategy(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  json_t *tok;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_set_token(c, "x"), AUTHLOOP_EINVAL); /* nothing to complete */
  assert_int_equal(authloop_login_strategy(c, "twostep", "{\"username\":\"kuzzle-user\"}", NULL),
                   0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_STATE_CHANGED], 2, 5000);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_AWAITING_TOKEN);
  test_run_turns(&e, 3);
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 0); /* no event yet, as in Kuzzle's SDK */
  assert_false(authloop_is_logged_in(c));
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL),
                   AUTHLOOP_ELOGININPROGRESS);
  assert_int_equal(authloop_set_token(c, ""), AUTHLOOP_EBLANKAUTHTOKEN);
  assert_int_equal(authloop_set_token(c, "a b"), AUTHLOOP_EAUTHTOKENSPACE);

  /* a bad token: loginAttempt failure, then a good one from "elsewhere" */
  assert_int_equal(authloop_set_token(c, "kauth-forged"), 0);
  assert_false(wait_login(&e, &r)->success);
  assert_string_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].message, "Invalid token.");
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);
  assert_int_equal(authloop_login_strategy(c, "twostep", "{\"username\":\"kuzzle-user\"}", NULL),
                   0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_STATE_CHANGED], 6, 5000);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_AWAITING_TOKEN);
  tok =
      test_control(&server, "/__test/kuzzle-token", "{\"username\":\"kuzzle-user\",\"ttl\":60000}");
  assert_int_equal(authloop_set_token(c, json_string_value(json_object_get(tok, "jwt"))), 0);
  json_decref(tok);
  assert_true(wait_login(&e, &r)->success);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "kuzzle-user");
  /* the lifetime is the token's own exp against the server's clock */
  assert_true(authloop_token_lifetime(c) >= 58 && authloop_token_lifetime(c) <= 60);
  test_env_close(&e);
}

/* A redirect strategy (OAuth): real Kuzzle answers its first step 302 with
 * a Location and result {headers, statusCode} (authController.ts login).
 * The client waits for the token with the URL to hand the user; the token
 * that comes back completes it in one request, so a single-use one works
 * (checkToken, then getCurrentUser, used it up and failed). */
static void kuzzle_redirect_strategy(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  json_t *tok;
  const char *url, *result;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_null(authloop_login_redirect(c));
  assert_int_equal(authloop_login_strategy(c, "oauth", "{}", NULL), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_STATE_CHANGED], 2, 5000);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_AWAITING_TOKEN);
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 0);
  url = authloop_login_redirect(c);
  assert_non_null(url);
  assert_int_equal(strncmp(url, "https://auth.example.test/authorize?client_id=kuzzle&state=", 59),
                   0);
  result = authloop_login_redirect_result(c);
  assert_non_null(result);
  assert_non_null(strstr(result, "\"statusCode\":302"));
  assert_non_null(strstr(result, url));
  tok = test_control(&server, "/__test/kuzzle-token",
                     "{\"username\":\"kuzzle-user\",\"ttl\":120000,\"singleUse\":true}");
  assert_int_equal(authloop_set_token(c, json_string_value(json_object_get(tok, "jwt"))), 0);
  json_decref(tok);
  assert_true(wait_login(&e, &r)->success);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "kuzzle-user");
  assert_string_equal(authloop_user_name(authloop_current_user(c)), "Kuzzle User");
  /* the token's own exp against the server's clock */
  assert_true(authloop_token_lifetime(c) >= 118 && authloop_token_lifetime(c) <= 120);
  assert_null(authloop_login_redirect(c));
  test_env_close(&e);
}

/* Kuzzle 2.0 to 2.3 have no GET /_me: the user comes from /users/_me,
 * which every 2.x serves (httpRoutes.js at 2.3.0 and 2.4.0). */
static void kuzzle_before_2_4(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char *body;
  long status = 0;
  (void)state;
  json_decref(test_control(&server, "/__test/kuzzle-config", "{\"version\":\"2.3.0\"}"));
  body = test_http(&server, "GET", "/_me", NULL, NULL, &status);
  assert_int_equal(status, 404);
  assert_non_null(strstr(body, "network.http.url_not_found"));
  free(body);
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "1 hour"), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "kuzzle-user");
  assert_int_equal(authloop_token_lifetime(c), 3600); /* "1 hour": ms syntax, as Kuzzle reads it */
  test_env_close(&e);
  json_decref(test_control(&server, "/__test/kuzzle-config", "{}"));
}

/* A login path Kuzzle does not serve: its unknown-route answer
 * (httpRouter/index.js, network.http.url_not_found) is a refusal with
 * Kuzzle's own id and message. */
static void kuzzle_unknown_route(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  authloop_client *c = NULL;
  const authloop_event *ev;
  (void)state;
  test_env_init(&e, &server, NULL);
  o.provider = "kuzzle";
  o.base_url = server.base_url;
  o.login_path = "/_signin";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
  ev = wait_login(&e, &r);
  assert_int_equal(ev->error, AUTHLOOP_EREJECTED);
  assert_int_equal(ev->http_status, 404);
  assert_string_equal(ev->server_code, "network.http.url_not_found");
  assert_string_equal(ev->message, "API URL not found: /_signin/local.");
  test_env_close(&e);
}

/* The server refreshed but its answer was lost (the connection dropped, or
 * a gateway answered 502 in its place): Kuzzle refuses a second refresh of
 * that token (tokenRepository.ts refresh: "refreshed"), so the retry is
 * refused; the session ends saying why, not as "revoked". */
static void kuzzle_lost_refresh_answer(void **state) {
  static const char *const faults[] = {
      "{\"route\":\"/_refreshToken\",\"lose\":true}",
      "{\"route\":\"/_refreshToken\",\"lose\":true,\"status\":502,"
      "\"body\":\"<html><body>502 Bad Gateway</body></html>\"}",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    long refreshed = test_stat(&server, "kuzzleRefresh");
    test_env_init(&e, &server, NULL);
    c = kuzzle_client(&e, NULL);
    test_record(c, &r);
    assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "4s"), 0);
    assert_true(wait_login(&e, &r)->success);
    test_fault(&server, faults[i]);
    assert_int_equal(authloop_touch(c), 0); /* active: refreshed before expiry */
    test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 8000);
    assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
    if (r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason != AUTHLOOP_EXPIRED_REFRESH_LOST)
      fail_msg("fault %zu: the session ended \"%s\", not \"refresh_lost\"", i,
               r.last[AUTHLOOP_EV_SESSION_EXPIRED].message);
    assert_string_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].message, "refresh_lost");
    assert_int_equal(test_stat(&server, "kuzzleRefresh"), refreshed + 1); /* done, answer lost */
    test_env_close(&e);
  }
}

/* Login answers at the edges of what real Kuzzle sends (authController.ts
 * login; passportResponse.ts): a strategy's step is passport's response
 * object as the result with its statusCode as the status, any 3xx with an
 * http(s) Location being a redirect; anything else is refused with a code;
 * a server's message reaches the application without control bytes. */
static void kuzzle_login_answers_at_the_edges(void **state) {
  static const struct {
    int status;
    const char *location, *body;
    int want; /* -1: the login waits for a token */
    const char *want_message;
  } cases[] = {
      {307, "https://sso.example.test/a",
       "{\"error\":null,\"status\":307,\"result\":{\"headers\":"
       "{\"Location\":\"https://sso.example.test/a\"},\"statusCode\":307}}",
       -1, NULL},
      {200, NULL, "{\"error\":null,\"status\":200,\"result\":{\"headers\":{},\"statusCode\":200}}",
       -1, NULL},
      /* a proxy's redirect, not a strategy's */
      {302, "https://sso.example.test/a", "", AUTHLOOP_EREJECTED, NULL},
      {302, "http://sso.example.test/a",
       "{\"error\":null,\"result\":{\"headers\":{},"
       "\"statusCode\":302}}",
       AUTHLOOP_EPROTO, NULL},
      {302, "javascript:alert(1)",
       "{\"error\":null,\"result\":{\"headers\":{},\"statusCode\":302}}", AUTHLOOP_EPROTO, NULL},
      /* a right-to-left override (the server writes each character of its
       * header as one byte: these three are U+202E's UTF-8), a space: no URL
       * a browser should be handed */
      {302,
       "https://sso.example.test/a\xc3\xa2\xc2\x80\xc2\xae"
       "b",
       "{\"error\":null,\"result\":{\"headers\":{},\"statusCode\":302}}", AUTHLOOP_EPROTO, NULL},
      {302, "https://sso.example.test/a b",
       "{\"error\":null,\"result\":{\"headers\":{},\"statusCode\":302}}", AUTHLOOP_EPROTO, NULL},
      /* credentials before the host: the host a user reads is not the one
       * the browser goes to */
      {302, "https://sso.example.test@evil.example.test/a",
       "{\"error\":null,\"result\":{\"headers\":{},\"statusCode\":302}}", AUTHLOOP_EPROTO, NULL},
      /* a step's statusCode that is not the status */
      {302, "https://sso.example.test/a",
       "{\"error\":null,\"result\":{\"headers\":{},"
       "\"statusCode\":200}}",
       AUTHLOOP_EREJECTED, NULL},
      {200, NULL, "{\"error\":null,\"status\":200,\"result\":{\"_id\":\"x\",\"jwt\":null}}",
       AUTHLOOP_EPROTO, NULL},
      {400, NULL,
       "{\"error\":{\"id\":\"api.assert.invalid_argument\",\"message\":\"Invalid argument "
       "\\\"strategy\\\".\",\"props\":[\"strategy\"]},\"status\":400}",
       AUTHLOOP_EREJECTED, NULL},
      {400, NULL,
       "{\"error\":{\"id\":\"api.assert.invalid_argument\",\"message\":\"Invalid argument "
       "\\\"expiresIn\\\".\",\"props\":[\"expiresIn\",\"a timespan\"]},\"status\":400}",
       AUTHLOOP_EEXPIRESIN, NULL},
      {400, NULL,
       "{\"id\":\"security.credentials.unknown_strategy\",\"message\":\"m\\u0001\\u0007"
       "\\u001b[31mred\\u007f\",\"status\":400}",
       AUTHLOOP_ESTRATEGY, "m???[31mred?"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    json_t *f = json_pack("{s:s, s:i, s:s}", "route", "/_login/local", "status", cases[i].status,
                          "body", cases[i].body);
    char *text;
    if (cases[i].location)
      json_object_set_new(f, "location", json_string(cases[i].location));
    text = json_dumps(f, 0);
    test_fault(&server, text);
    free(text);
    json_decref(f);
    test_env_init(&e, &server, NULL);
    c = kuzzle_client(&e, NULL);
    test_record(c, &r);
    assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
    test_run_until(&e, &r.count[AUTHLOOP_EV_STATE_CHANGED], 2, 5000);
    if (cases[i].want == -1) {
      if (authloop_client_state(c) != AUTHLOOP_STATE_AWAITING_TOKEN)
        fail_msg("case %zu: %s, not waiting for a token", i,
                 authloop_state_name(authloop_client_state(c)));
      if (cases[i].location)
        assert_string_equal(authloop_login_redirect(c), cases[i].location);
      else
        assert_null(authloop_login_redirect(c));
      assert_non_null(authloop_login_redirect_result(c));
    } else {
      const authloop_event *ev = &r.last[AUTHLOOP_EV_LOGIN_ATTEMPT];
      assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1);
      if (ev->error != cases[i].want)
        fail_msg("case %zu: %s, want %s (%s)", i, authloop_err_name(ev->error),
                 authloop_err_name(cases[i].want), ev->message);
      if (cases[i].want_message)
        assert_string_equal(r.last_message[AUTHLOOP_EV_LOGIN_ATTEMPT], cases[i].want_message);
      assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);
    }
    test_env_close(&e);
  }
}

/* Kuzzle's default maximum lifetime is none (-1): a lifetime past ten
 * years is taken (and counted as ten years), not refused after the server
 * issued the token. */
static void kuzzle_long_lifetime(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "20y"), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_token_lifetime(c), 10L * 366 * 24 * 3600);
  test_env_close(&e);
}

/* A jwt is {_id, iat, exp}, iat in whole seconds: a refresh in the second
 * the token was issued would get the same jwt back, which the server then
 * keeps as refreshed (1 s of grace) in place of the new one. authloop sends
 * no refresh sooner than a second after the tokens came: the new token
 * differs and outlives the grace period. */
static void kuzzle_refresh_in_the_issuing_second(void **state) {
  test_env e;
  test_recorder r;
  test_done done = {0};
  test_reply rep = {0};
  authloop_client *c;
  char *first;
  int n;
  (void)state;
  test_env_init(&e, &server, NULL);
  for (n = 0; n < 2; n++) { /* twice: the second login is in a second of its own too */
    c = kuzzle_client(&e, NULL);
    test_record(c, &r);
    assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
    assert_true(wait_login(&e, &r)->success);
    first = strdup(authloop_access_token(c));
    done.count = 0;
    assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0); /* at once */
    test_run_until(&e, &done.count, 1, 5000);
    assert_int_equal(done.status, 0);
    assert_string_not_equal(authloop_access_token(c), first);
    free(first);
    test_run_for(&e, 1500); /* past the old token's grace period */
    rep.count = 0;
    assert_int_equal(authloop_request(c, "GET", "/users/_me", NULL, test_reply_cb, &rep), 0);
    test_run_until(&e, &rep.count, 1, 5000);
    assert_int_equal(rep.status, 0);
    assert_int_equal(rep.http, 200);
    assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
    assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1); /* no refresh for a 401 */
    authloop_client_free(c);
  }
  test_env_close(&e);
}

/* An API key's client: logged in with the key (a two-step login completed
 * by it), its lifetime ttl_ms. */
static authloop_client *api_key_client(test_env *e, test_recorder *r, const char *session_path,
                                       int ttl_ms) {
  authloop_client *c = kuzzle_client(e, session_path);
  test_record(c, r);
  test_kuzzle_api_key_login(e, c, r, ttl_ms);
  return c;
}

/* An API key (or any token the server says it never refreshes:
 * security.token.refresh_forbidden, tokenRepository.ts refresh) is kept,
 * unrefreshed, until it runs out: then sessionExpired "lifetime". */
static void kuzzle_api_key_is_not_refreshed(void **state) {
  test_env e;
  test_recorder r;
  test_done done = {0};
  authloop_client *c;
  long refreshes = test_stat(&server, "/_refreshToken");
  (void)state;
  test_env_init(&e, &server, NULL);
  c = api_key_client(&e, &r, NULL, 4000);
  assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0);
  test_run_until(&e, &done.count, 1, 5000);
  assert_int_equal(done.status, AUTHLOOP_ENOTSUP);
  assert_true(authloop_is_logged_in(c)); /* the key still works */
  assert_int_equal(authloop_refresh(c, NULL, NULL), AUTHLOOP_ENOTSUP);
  assert_int_equal(authloop_touch(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 8000);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_LIFETIME);
  assert_string_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].message, "lifetime");
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
  assert_int_equal(test_stat(&server, "/_refreshToken"), refreshes + 1); /* asked once */
  test_env_close(&e);
}

/* The floor's wait is bounded from its own end: with a request timeout
 * shorter than the floor, a refresh right after the login still goes. */
static void kuzzle_floor_with_a_short_timeout(void **state) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  test_done done = {0};
  authloop_client *c;
  (void)state;
  o.ca_file = server.ca;
  o.timeout_ms = 900;
  test_env_init(&e, &server, &o);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0);
  test_run_until(&e, &done.count, 1, 5000);
  assert_int_equal(done.status, 0);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  test_env_close(&e);
}

/* A 401 to an application request on a session the server never refreshes:
 * the answer is the call's (status 0, HTTP 401), not ENOTSUP; and once the
 * key is revoked, a 401 asks the server again (a refresh, whose answer says
 * so), and the session ends "revoked". */
static void kuzzle_api_key_401s(void **state) {
  test_env e;
  test_recorder r;
  test_done done = {0};
  test_reply rep = {0};
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = api_key_client(&e, &r, NULL, 60000);
  assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0);
  test_run_until(&e, &done.count, 1, 5000);
  assert_int_equal(done.status, AUTHLOOP_ENOTSUP);
  test_fault(&server, "{\"route\":\"/users/_me\",\"status\":401,\"body\":\"{\\\"status\\\":401,"
                      "\\\"error\\\":{\\\"id\\\":\\\"security.rights.forbidden\\\"}}\"}");
  assert_int_equal(authloop_request(c, "GET", "/users/_me", NULL, test_reply_cb, &rep), 0);
  test_run_until(&e, &rep.count, 1, 5000);
  assert_int_equal(rep.status, 0);
  assert_int_equal(rep.http, 401);
  assert_true(authloop_is_logged_in(c));
  authloop_client_free(c);

  /* a key revoked before anything asked: the 401 asks, the session ends */
  c = api_key_client(&e, &r, NULL, 60000);
  json_decref(test_control(&server, "/__test/kuzzle-revoke", "{\"username\":\"kuzzle-user\"}"));
  rep.count = 0;
  assert_int_equal(authloop_request(c, "GET", "/users/_me", NULL, test_reply_cb, &rep), 0);
  test_run_until(&e, &rep.count, 1, 5000);
  assert_int_equal(rep.status, AUTHLOOP_EREVOKED);
  test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  test_env_close(&e);
}

/* A session restored from its file a second before its token's end: the
 * tokens are older than the dialect's floor (counted from when the server
 * issued them, not from the restore), so the refresh goes at once. */
static void kuzzle_restored_near_expiry(void **state) {
  char dir[256], path[300], ttl[16];
  test_env e;
  test_recorder r, r2;
  authloop_client *c;
  (void)state;
  test_make_tmpdir(dir, sizeof(dir), "kuzzle-restore");
  snprintf(path, sizeof(path), "%s/session", dir);
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, path);
  test_record(c, &r);
  /* a quarter of the token left at the restore: about a second, four under
   * valgrind, where the refresh's new connection (Kuzzle closes each) takes
   * a TLS handshake of a second or two */
  snprintf(ttl, sizeof(ttl), "%us", test_scaled(4000) / 1000);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", ttl), 0);
  assert_true(wait_login(&e, &r)->success);
  test_run_until_stored(&e, 5000);
  authloop_client_free(c);
  test_run_for(&e, test_scaled(2700));
  c = kuzzle_client(&e, path);
  test_record(c, &r2);
  assert_true(authloop_is_logged_in(c));
  assert_int_equal(authloop_touch(c), 0);
  test_run_until(&e, &r2.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 5000);
  assert_int_equal(r2.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  assert_true(authloop_is_logged_in(c));
  test_env_close(&e);
  test_remove_tree(dir);
}

/* Kuzzle's own 503 (its envelope, api.process.overloaded: refused before the
 * action ran) is no lost answer: when the token is then revoked, the
 * session ends "revoked", not "refresh_lost". */
static void kuzzle_overloaded_is_not_lost(void **state) {
  test_env e;
  test_recorder r;
  test_done done = {0};
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
  assert_true(wait_login(&e, &r)->success);
  test_fault(&server, "{\"route\":\"/_refreshToken\",\"status\":503,\"body\":\"{\\\"status\\\":503,"
                      "\\\"error\\\":{\\\"id\\\":\\\"api.process.overloaded\\\",\\\"message\\\":"
                      "\\\"Request discarded: Kuzzle Server is overloaded.\\\"}}\"}");
  assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0);
  test_run_until(&e, &done.count, 1, 5000);
  assert_int_equal(done.status, AUTHLOOP_EUNAVAILABLE);
  json_decref(test_control(&server, "/__test/kuzzle-revoke", "{\"username\":\"kuzzle-user\"}"));
  done.count = 0;
  assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 8000);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  test_env_close(&e);
}

static void kuzzle_refresh_keeps_expires_in(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  long refreshes = test_stat(&server, "kuzzleRefresh");
  char *first;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "4s"), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_token_lifetime(c), 4);
  first = strdup(authloop_access_token(c));
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 6000);
  assert_int_equal(r.last[AUTHLOOP_EV_TOKEN_REFRESHED].lifetime, 4); /* not the 1 h default */
  assert_string_not_equal(authloop_access_token(c), first);
  assert_int_equal(test_stat(&server, "kuzzleRefresh"), refreshes + 1);
  free(first);
  test_env_close(&e);
}

static void kuzzle_expired_or_revoked_token_ends_the_session(void **state) {
  test_env e;
  test_recorder r, r2;
  authloop_client *c, *c2;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = kuzzle_client(&e, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "second-user", "second-pass", "2s"), 0);
  assert_true(wait_login(&e, &r)->success);
  /* offline while the token runs out; back online, the refresh meets
   * security.token.expired, which ends the session (the JS SDK misses it) */
  authloop_ctx_set_online(e.ctx, 0);
  test_run_for(&e, 2300);
  authloop_ctx_set_online(e.ctx, 1);
  test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_EXPIRED);

  /* security.token.invalid (revoked by the server) likewise */
  c2 = kuzzle_client(&e, NULL);
  test_record(c2, &r2);
  assert_int_equal(authloop_login_local(c2, "second-user", "second-pass", NULL), 0);
  assert_true(wait_login(&e, &r2)->success);
  json_decref(test_control(&server, "/__test/kuzzle-revoke", "{\"username\":\"second-user\"}"));
  assert_int_equal(authloop_refresh(c2, NULL, NULL), 0);
  test_run_until(&e, &r2.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 5000);
  assert_int_equal(r2.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  test_env_close(&e);
}

static void kuzzle_global_logout(void **state) {
  test_env e;
  test_recorder ra, rb;
  authloop_client *a, *b;
  test_reply rep = {0};
  long globals = test_stat(&server, "kuzzleGlobalLogout");
  (void)state;
  test_env_init(&e, &server, NULL);
  a = kuzzle_client(&e, NULL);
  b = kuzzle_client(&e, NULL);
  test_record(a, &ra);
  test_record(b, &rb);
  assert_int_equal(authloop_login_local(a, "kuzzle-user", "kuzzle-pass", NULL), 0);
  assert_true(wait_login(&e, &ra)->success);
  assert_int_equal(authloop_login_local(b, "kuzzle-user", "kuzzle-pass", NULL), 0);
  assert_true(wait_login(&e, &rb)->success);
  assert_int_equal(authloop_request(b, "GET", "/_me", NULL, test_reply_cb, &rep), 0);
  test_run_until(&e, &rep.count, 1, 5000);
  assert_int_equal(rep.http, 200);
  assert_int_equal(authloop_logout_global(a), 0);
  test_run_until(&e, &ra.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(ra.last[AUTHLOOP_EV_LOGOUT].error, 0);
  assert_int_equal(test_stat(&server, "kuzzleGlobalLogout"), globals + 1);
  /* b's token went with it: its next request finds out, and b's session ends */
  assert_int_equal(authloop_request(b, "GET", "/_me", NULL, test_reply_cb, &rep), 0);
  test_run_until(&e, &rb.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 5000);
  assert_int_equal(rb.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  test_run_until(&e, &rep.count, 2, 5000);
  assert_int_not_equal(rep.status, 0);
  test_env_close(&e);
}

/* ---- CometChat ----------------------------------------------------------------------- */

static void cometchat_login_with_key(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  const authloop_user *u;
  json_t *user;
  char *token;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = cometchat_client(&e, "app1", NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_key(c, "  cometchat-uid-3  ", "authkey-1"), 0); /* trimmed */
  assert_true(wait_login(&e, &r)->success);
  u = authloop_current_user(c);
  assert_string_equal(authloop_user_id(u), "cometchat-uid-3");
  assert_string_equal(authloop_user_name(u), "Nancy Grace");
  user = json_loads(authloop_user_json(u), 0, NULL);
  assert_string_equal(json_string_value(json_object_get(user, "authToken")),
                      authloop_access_token(c)); /* getUserAuthToken */
  assert_string_equal(json_string_value(json_object_get(user, "status")), "online");
  assert_non_null(json_object_get(user, "avatar"));
  json_decref(user);
  assert_int_equal(authloop_token_lifetime(c), -1); /* auth tokens do not expire */
  assert_int_equal(authloop_refresh(c, NULL, NULL), AUTHLOOP_ENOTSUP);
  token = strdup(authloop_access_token(c));
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  /* the logout took the token off the server: it logs in no more */
  assert_int_equal(authloop_login_token(c, token), 0);
  assert_string_equal(wait_login(&e, &r)->server_code, "AUTH_ERR_AUTH_TOKEN_NOT_FOUND");
  free(token);
  test_env_close(&e);
}

static void cometchat_login_with_token_and_failures(void **state) {
  test_env e;
  test_recorder r, r2;
  authloop_client *c, *minter;
  char *token;
  const authloop_event *ev;
  (void)state;
  test_env_init(&e, &server, NULL);
  /* a token minted for uid-4 (as a backend would), used by a second client */
  minter = cometchat_client(&e, "app1", NULL);
  test_record(minter, &r2);
  assert_int_equal(authloop_login_key(minter, "cometchat-uid-4", "authkey-1"), 0);
  assert_true(wait_login(&e, &r2)->success);
  token = strdup(authloop_access_token(minter));
  c = cometchat_client(&e, "app1", NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_token(c, token), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "cometchat-uid-4");
  assert_string_equal(authloop_access_token(c), token);
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);

  /* refusals come from the body: codes as CometChat sends them */
  assert_int_equal(authloop_login_key(c, "cometchat-uid-9", "authkey-1"), 0);
  ev = wait_login(&e, &r);
  assert_int_equal(ev->error, AUTHLOOP_EREJECTED);
  assert_string_equal(ev->server_code, "ERR_UID_NOT_FOUND");
  assert_int_equal(authloop_login_key(c, "cometchat-uid-1", "wrong"), 0);
  assert_string_equal(wait_login(&e, &r)->server_code, "AUTH_ERR_APIKEY_NOT_FOUND");
  assert_int_equal(authloop_login_token(c, "not-a-token"), 0);
  assert_string_equal(wait_login(&e, &r)->server_code, "AUTH_ERR_AUTH_TOKEN_NOT_FOUND");
  /* a 200 carrying an error is a failure; a 500 carrying data is a success */
  test_fault(&server,
             "{\"route\":\"/cometchat/client/v3.0/me\",\"body\":"
             "\"{\\\"error\\\":{\\\"code\\\":\\\"ERR_X\\\",\\\"message\\\":\\\"no\\\"}}\"}");
  assert_int_equal(authloop_login_token(c, token), 0);
  ev = wait_login(&e, &r);
  assert_false(ev->success);
  assert_int_equal(ev->http_status, 200);
  assert_string_equal(ev->server_code, "ERR_X");
  test_fault(&server,
             "{\"route\":\"/cometchat/client/v3.0/me\",\"status\":500,\"body\":"
             "\"{\\\"data\\\":{\\\"uid\\\":\\\"cometchat-uid-4\\\",\\\"name\\\":\\\"X\\\"}}\"}");
  assert_int_equal(authloop_login_token(c, token), 0);
  assert_true(wait_login(&e, &r)->success);
  free(token);
  test_env_close(&e);
}

static void cometchat_validation_codes_in_order(void **state) {
  static const struct {
    int code;
    const char *name;
  } names[] = {
      {AUTHLOOP_ELOGININPROGRESS, "ERROR_LOGIN_IN_PROGRESS"},
      {AUTHLOOP_EINVALIDUID, "ERROR_INVALID_UID"},
      {AUTHLOOP_EUIDSPACE, "ERROR_UID_WITH_SPACE"},
      {AUTHLOOP_EAPIKEY, "ERROR_API_KEY_NOT_FOUND"},
      {AUTHLOOP_EBLANKAUTHTOKEN, "ERROR_BLANK_AUTHTOKEN"},
      {AUTHLOOP_EAUTHTOKENSPACE, "ERROR_AUTHTOKEN_WITH_SPACE"},
      {AUTHLOOP_ENOTINIT, "ERROR_SDK_NOT_INITIALIZED"},
      {AUTHLOOP_ENOTLOGGEDIN, "ERROR_NO_USER_LOGGED_IN"},
  };
  test_env e;
  test_recorder r;
  authloop_client *c, *bare;
  long requests = test_stat(&server, "/cometchat/client/v3.0/me");
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    assert_string_equal(authloop_err_name(names[i].code), names[i].name);
    assert_true(strlen(authloop_strerror(names[i].code)) > 10);
  }
  assert_string_equal(authloop_strerror(AUTHLOOP_EUIDSPACE), "UID cannot contain spaces");
  test_env_init(&e, &server, NULL);
  c = cometchat_client(&e, "app1", NULL);
  bare = cometchat_client(&e, NULL, NULL); /* no app id: not initialised */
  test_record(c, &r);
  assert_int_equal(authloop_logout(c), AUTHLOOP_ENOTLOGGEDIN);
  assert_int_equal(authloop_login_key(c, NULL, "authkey-1"), AUTHLOOP_EINVALIDUID);
  assert_int_equal(authloop_login_key(c, "", "authkey-1"), AUTHLOOP_EINVALIDUID);
  assert_int_equal(authloop_login_key(c, "   ", "authkey-1"), AUTHLOOP_EINVALIDUID);
  assert_int_equal(authloop_login_key(c, " a b ", "authkey-1"), AUTHLOOP_EUIDSPACE);
  assert_int_equal(authloop_login_key(c, "a b", NULL), AUTHLOOP_EUIDSPACE); /* uid comes first */
  assert_int_equal(authloop_login_key(c, "cometchat-uid-1", NULL), AUTHLOOP_EAPIKEY);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-1", ""), AUTHLOOP_EAPIKEY);
  /* not UTF-8: refused here, not sent (the server would echo it back) */
  assert_int_equal(authloop_login_key(c, "cometchat-uid-1",
                                      "ab\xff\xfe"
                                      "cd"),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_token(c, ""), AUTHLOOP_EBLANKAUTHTOKEN);
  assert_int_equal(authloop_login_token(c, NULL), AUTHLOOP_EBLANKAUTHTOKEN);
  assert_int_equal(authloop_login_token(c, "ab cd"), AUTHLOOP_EAUTHTOKENSPACE);
  assert_int_equal(authloop_login_key(bare, "", "authkey-1"), AUTHLOOP_EINVALIDUID);
  assert_int_equal(authloop_login_key(bare, "cometchat-uid-1", ""), AUTHLOOP_EAPIKEY);
  assert_int_equal(authloop_login_key(bare, "cometchat-uid-1", "authkey-1"), AUTHLOOP_ENOTINIT);
  assert_int_equal(authloop_login_token(bare, "tok"), AUTHLOOP_ENOTINIT);
  /* in progress comes before everything else, even a blank uid */
  assert_int_equal(authloop_login_key(c, "cometchat-uid-1", "authkey-1"), 0);
  assert_int_equal(authloop_login_key(c, "", ""), AUTHLOOP_ELOGININPROGRESS);
  assert_int_equal(authloop_login_token(c, ""), AUTHLOOP_ELOGININPROGRESS);
  assert_true(wait_login(&e, &r)->success);
  test_run_turns(&e, 3);
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1); /* the refused calls fired nothing */
  assert_int_equal(test_stat(&server, "/cometchat/client/v3.0/me"), requests + 1);
  test_env_close(&e);
}

static void cometchat_token_not_found_logs_out_locally(void **state) {
  test_env e;
  test_recorder r;
  test_reply rep = {0};
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = cometchat_client(&e, "app1", NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-5", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_request(c, "GET", "/me", NULL, test_reply_cb, &rep), 0);
  test_run_until(&e, &rep.count, 1, 5000);
  assert_int_equal(rep.http, 200);
  json_decref(test_control(&server, "/__test/cometchat-revoke", "{\"uid\":\"cometchat-uid-5\"}"));
  assert_int_equal(authloop_request(c, "GET", "/me", NULL, test_reply_cb, &rep), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  test_run_until(&e, &rep.count, 2, 5000);
  assert_int_equal(rep.status, AUTHLOOP_EREVOKED);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, AUTHLOOP_EREVOKED);
  assert_false(authloop_is_logged_in(c));
  assert_null(authloop_access_token(c));
  assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0); /* a logout, as CometChat does */
  test_env_close(&e);
}

/* What reaches the server is what the official SDK sends: its headers, its
 * body, one device id per installation (the session file), one "resource"
 * per client. */
static void cometchat_sends_what_the_sdk_sends(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  json_t *post, *put, *del;
  char path[320], other[320], device[160], resource[160];
  const char *v;
  (void)state;
  snprintf(path, sizeof(path), "%s/cc-device.session", tmpdir);
  snprintf(other, sizeof(other), "%s/cc-other.session", tmpdir);
  test_env_init(&e, &server, NULL);
  c = cometchat_client(&e, "app1", path);
  test_record(c, &r);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-2", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  post =
      test_last_request(&server, "POST", "/cometchat/admin/v3.0/users/cometchat-uid-2/auth_tokens");
  put = test_last_request(&server, "PUT", "/cometchat/client/v3.0/me");
  assert_non_null(post);
  assert_non_null(put);
  v = json_string_value(json_object_get(json_object_get(post, "body"), "deviceId"));
  assert_non_null(v);
  assert_int_equal(strncmp(v, "app1_", 5), 0);
  snprintf(device, sizeof(device), "%s", v);
  assert_string_equal(json_string_value(json_object_get(json_object_get(put, "body"), "deviceId")),
                      device);
  v = json_string_value(json_object_get(json_object_get(put, "headers"), "resource"));
  assert_non_null(v);
  assert_int_equal(strncmp(v, "WEB-4_2_0-", 10), 0);
  snprintf(resource, sizeof(resource), "%s", v);
  assert_string_equal(json_string_value(json_object_get(json_object_get(post, "headers"), "sdk")),
                      "javascript@4.2.0");
  assert_string_equal(json_string_value(json_object_get(json_object_get(post, "body"), "platform")),
                      "WEB");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(put, "headers"), "content-type")),
      "application/json");
  json_decref(post);
  json_decref(put);
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  del = test_last_request(&server, "DELETE", "/cometchat/client/v3.0/me");
  assert_non_null(del);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(del, "headers"), "resource")), resource);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(del, "headers"), "content-type")),
      "application/json");
  assert_true(json_is_null(json_object_get(del, "body")));
  json_decref(del);
  authloop_client_free(c);
  test_run_until_stored(&e, 5000);

  /* the same installation, a new run: the same device, a new session */
  c = cometchat_client(&e, "app1", path);
  test_record(c, &r);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-2", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  put = test_last_request(&server, "PUT", "/cometchat/client/v3.0/me");
  assert_string_equal(json_string_value(json_object_get(json_object_get(put, "body"), "deviceId")),
                      device);
  assert_string_not_equal(
      json_string_value(json_object_get(json_object_get(put, "headers"), "resource")), resource);
  json_decref(put);
  authloop_client_free(c);
  /* another installation: another device */
  c = cometchat_client(&e, "app1", other);
  test_record(c, &r);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-2", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  put = test_last_request(&server, "PUT", "/cometchat/client/v3.0/me");
  assert_string_not_equal(
      json_string_value(json_object_get(json_object_get(put, "body"), "deviceId")), device);
  json_decref(put);
  test_env_close(&e);
}

/* PUT /me may answer with the app's settings: the session's later calls go
 * to the client host they name, as the SDK's do, after a restart too; a host
 * that is not one is ignored. */
static void cometchat_follows_settings_hosts(void **state) {
  test_env e;
  test_recorder r;
  test_reply rep = {0};
  authloop_client *c;
  char path[320];
  long before;
  (void)state;
  snprintf(path, sizeof(path), "%s/cc-settings.session", tmpdir);
  json_decref(test_control(&server, "/__test/cometchat-config", "{\"settings\":true}"));
  test_env_init(&e, &server, NULL);
  c = cometchat_client(&e, "app1", path);
  test_record(c, &r);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-3", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  before = test_stat(&server, "/cometchat/settings-client/v3.0/me");
  assert_int_equal(authloop_request(c, "GET", "/me", NULL, test_reply_cb, &rep), 0);
  test_run_until(&e, &rep.count, 1, 5000);
  assert_int_equal(rep.http, 200);
  assert_int_equal(test_stat(&server, "/cometchat/settings-client/v3.0/me"), before + 1);
  test_run_until_stored(&e, 5000);
  authloop_client_free(c);
  /* restarted from the file: the settings came with the user */
  c = cometchat_client(&e, "app1", path);
  test_record(c, &r);
  assert_true(authloop_is_logged_in(c));
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  assert_int_equal(test_stat(&server, "/cometchat/settings-client/v3.0/me"), before + 2);
  /* a host that would take the token elsewhere: the configured one */
  json_decref(test_control(&server, "/__test/cometchat-config",
                           "{\"settings\":true,\"settingsClientHost\":\"x@127.0.0.1:1\"}"));
  before = test_stat(&server, "/cometchat/client/v3.0/me");
  assert_int_equal(authloop_login_key(c, "cometchat-uid-3", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_request(c, "GET", "/me", NULL, test_reply_cb, &rep), 0);
  test_run_until(&e, &rep.count, 2, 5000);
  assert_int_equal(rep.http, 200);
  assert_int_equal(test_stat(&server, "/cometchat/client/v3.0/me"), before + 2);
  json_decref(test_control(&server, "/__test/cometchat-config", "{}"));
  test_env_close(&e);
}

/* A logout the server answers "no such token" is a logout done, as the SDK
 * resolves it. */
static void cometchat_logout_of_a_gone_token(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = cometchat_client(&e, "app1", NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-1", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  json_decref(test_control(&server, "/__test/cometchat-revoke", "{\"uid\":\"cometchat-uid-1\"}"));
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  test_env_close(&e);
}

/* What a proxy in front of the server sends (an HTML page, any status) maps
 * to a defined code for every dialect: 5xx and 429 are "unavailable"
 * (transient), another status is a refusal with its HTTP status in the
 * message, a 2xx that is not the dialect's JSON is a protocol error. A login
 * fails; nothing crashes; the client can log in again. */
static void proxy_html_errors(void **state) {
  static const char page[] = "<html><head><title>502 Bad Gateway</title></head><body><center>"
                             "<h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body>"
                             "</html>";
  static const struct {
    int status, error;
  } cases[] = {{502, AUTHLOOP_EUNAVAILABLE}, {503, AUTHLOOP_EUNAVAILABLE},
               {429, AUTHLOOP_EUNAVAILABLE}, {403, AUTHLOOP_EREJECTED},
               {404, AUTHLOOP_EREJECTED},    {200, AUTHLOOP_EPROTO}};
  static const char *const routes[] = {"/auth/login", "/_login/local",
                                       "/cometchat/admin/v3.0/users/cometchat-uid-1/auth_tokens"};
  test_env e;
  size_t d, i;
  (void)state;
  test_env_init(&e, &server, NULL);
  for (d = 0; d < 3; d++) {
    test_recorder r;
    authloop_client *c = d == 0   ? test_client(&e, &server)
                         : d == 1 ? kuzzle_client(&e, NULL)
                                  : cometchat_client(&e, "app1", NULL);
    test_record(c, &r);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
      const authloop_event *ev;
      json_t *f = json_pack("{s:s, s:i, s:s, s:s}", "route", routes[d], "status", cases[i].status,
                            "body", page, "contentType", "text/html");
      char *text = json_dumps(f, 0), want[32];
      test_fault(&server, text);
      free(text);
      json_decref(f);
      if (d == 0) {
        char *code = test_mint_code(&server, "html-user");
        assert_int_equal(authloop_login_code(c, code), 0);
        free(code);
      } else if (d == 1) {
        assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
      } else {
        assert_int_equal(authloop_login_key(c, "cometchat-uid-1", "authkey-1"), 0);
      }
      ev = wait_login(&e, &r);
      if (ev->error != cases[i].error || ev->http_status != cases[i].status)
        fail_msg("%s, HTTP %d HTML: %s (HTTP %d), want %s", authloop_client_ctx(c) ? routes[d] : "",
                 cases[i].status, authloop_err_name(ev->error), ev->http_status,
                 authloop_err_name(cases[i].error));
      snprintf(want, sizeof(want), "HTTP %d", cases[i].status);
      if (cases[i].status != 200 && !strstr(ev->message, want))
        fail_msg("%s: the message \"%s\" does not say %s", routes[d], ev->message, want);
      assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);
    }
  }
  test_env_close(&e);
}

/* A refresh answered 401 by a proxy (its HTML page, not the dialect's
 * error) has not been refused by the server: the session stays, and the
 * next refresh goes through. */
static void proxy_401_on_refresh_is_not_a_revocation(void **state) {
  static const char page[] = "<html><body><h1>401 Authorization Required</h1></body></html>";
  static const char *const routes[] = {"/auth/refresh", "/_refreshToken"};
  test_env e;
  size_t d;
  (void)state;
  test_env_init(&e, &server, NULL);
  for (d = 0; d < 2; d++) {
    test_recorder r;
    test_done done = {0};
    authloop_client *c = d == 0 ? test_client(&e, &server) : kuzzle_client(&e, NULL);
    json_t *f = json_pack("{s:s, s:i, s:s, s:s}", "route", routes[d], "status", 401, "body", page,
                          "contentType", "text/html");
    char *text = json_dumps(f, 0);
    test_record(c, &r);
    if (d == 0) {
      char *code = test_mint_code(&server, "html-user");
      assert_int_equal(authloop_login_code(c, code), 0);
      free(code);
    } else {
      assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
    }
    assert_true(wait_login(&e, &r)->success);
    test_fault(&server, text);
    free(text);
    json_decref(f);
    assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0);
    test_run_until(&e, &done.count, 1, 5000);
    if (done.status == 0 || done.status == AUTHLOOP_EREVOKED)
      fail_msg("%s: a proxy's 401 gave %s", routes[d], authloop_err_name(done.status));
    assert_true(authloop_is_logged_in(c));
    assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
    assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0);
    test_run_until(&e, &done.count, 2, 5000);
    assert_int_equal(done.status, 0);
  }
  test_env_close(&e);
}

/* A gateway client on e, logged in as user (ttl_s: its token's lifetime, 0:
 * the server's), recorded in r. */
static authloop_client *gateway_session(test_env *e, test_recorder *r, const char *user,
                                        int ttl_s) {
  authloop_client *c = test_client(e, &server);
  char *code = ttl_s ? test_mint_code_ttl(&server, user, ttl_s) : test_mint_code(&server, user);
  test_record(c, r);
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  assert_true(wait_login(e, r)->success);
  return c;
}

static void html_fault(const char *route, int status, int count, const char *retry_after) {
  json_t *f =
      json_pack("{s:s, s:i, s:s, s:s, s:i}", "route", route, "status", status, "body",
                "<html><body>denied</body></html>", "contentType", "text/html", "count", count);
  char *text;
  if (retry_after)
    json_object_set_new(f, "retryAfter", json_string(retry_after));
  text = json_dumps(f, 0);
  test_fault(&server, text);
  free(text);
  json_decref(f);
}

/* 401s from a proxy on the app's requests: a request's 401 starts a refresh
 * only when no failed one waits for its retry and the tokens are not fresh
 * from one; otherwise the 401 is its answer, at once. So requests do not
 * turn into a refresh each (from the attacks), whether refreshes fail or
 * work. */
static void proxy_401s_do_not_storm(void **state) {
  test_env e;
  test_recorder r;
  test_reply rep = {0};
  authloop_client *c;
  long refreshes;
  int i;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = gateway_session(&e, &r, "storm-user", 0);
  /* refreshes fail: the first 401 tries one, the next ones get their 401 */
  html_fault("/api/me", 401, 4, NULL);
  html_fault("/auth/refresh", 401, 1, "30");
  refreshes = test_stat(&server, "/auth/refresh");
  for (i = 1; i <= 3; i++) {
    assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, test_reply_cb, &rep), 0);
    test_run_until(&e, &rep.count, i, 5000);
    assert_int_equal(rep.status, i == 1 ? AUTHLOOP_EREJECTED : 0);
    if (i > 1)
      assert_int_equal(rep.http, 401);
    assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 1);
  }
  test_env_close(&e);
  json_decref(test_control(&server, "/__test/faults", "{\"route\":\"/api/me\",\"clear\":true}"));
  /* refreshes work: one, then the 401s are the answers */
  test_env_init(&e, &server, NULL);
  c = gateway_session(&e, &r, "storm-user", 0);
  html_fault("/api/me", 401, 6, NULL);
  refreshes = test_stat(&server, "/auth/refresh");
  rep.count = 0;
  for (i = 1; i <= 5; i++) {
    assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, test_reply_cb, &rep), 0);
    test_run_until(&e, &rep.count, i, 5000);
    assert_int_equal(rep.status, 0);
    assert_int_equal(rep.http, 401);
  }
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 1);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  json_decref(test_control(&server, "/__test/faults", "{\"route\":\"/api/me\",\"clear\":true}"));
  test_env_close(&e);
}

/* A refresh refused by a proxy (not in the server's words) is retried while
 * the token lives; once it is dead, a refusal ends the session: a revoked
 * refresh token behind a proxy that hides error pages is not retried for
 * ever (from the attack). */
static void proxy_refusal_past_expiry_ends_the_session(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = gateway_session(&e, &r, "dead-user", 4);
  html_fault("/auth/refresh", 401, 1000, NULL);
  test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 12000);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  assert_true(test_stat(&server, "/auth/refresh") >= 2); /* retried while the token lived */
  assert_false(authloop_is_logged_in(c));
  json_decref(
      test_control(&server, "/__test/faults", "{\"route\":\"/auth/refresh\",\"clear\":true}"));
  test_env_close(&e);
}

/* Only a proxy's 401/400 ends a session past expiry: any other refusal (a
 * 404 page at the last retry, from the re-attack) stays a failure that is
 * retried, and the session goes on when the server answers again. */
static void proxy_404_past_expiry_is_retried(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  unsigned i;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = gateway_session(&e, &r, "lost-user", 3);
  html_fault("/auth/refresh", 404, 1000, NULL);
  for (i = 0; authloop_token_expires_in_ms(c) > 0; i++) { /* past expiry, refused all along */
    if (i * 100u > test_scaled(8000))
      fail_msg("the 3 s token has not expired after %u ms", i * 100u);
    test_run_for(&e, 100);
  }
  test_run_for(&e, 1500);
  assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  assert_true(authloop_is_logged_in(c));
  json_decref(
      test_control(&server, "/__test/faults", "{\"route\":\"/auth/refresh\",\"clear\":true}"));
  /* the session is still there to refresh (not waiting out a backoff, which
   * full jitter may have drawn up to 16 s by now) */
  {
    test_done d = {0};
    assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
    test_run_until(&e, &d.count, 1, 15000);
    assert_int_equal(d.status, 0);
  }
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  test_env_close(&e);
}

/* Requests to the host a CometChat user's settings name that fail do not
 * put the configured host on hold, for this client or another (from the
 * attack). */
static void cometchat_settings_host_failures_stay_there(void **state) {
  test_env e;
  test_recorder r, r2;
  test_reply rep = {0};
  authloop_client *c, *other;
  char config[160];
  int i;
  (void)state;
  snprintf(config, sizeof(config),
           "{\"settings\":true,\"settingsClientHost\":\"127.0.0.1:%d/nothing\"}",
           test_closed_port());
  json_decref(test_control(&server, "/__test/cometchat-config", config));
  test_env_init(&e, &server, NULL);
  c = cometchat_client(&e, "app1", NULL);
  other = cometchat_client(&e, "app1", NULL);
  test_record(c, &r);
  test_record(other, &r2);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-2", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  for (i = 1; i <= 4; i++) {
    assert_int_equal(authloop_request(c, "GET", "/me", NULL, test_reply_cb, &rep), 0);
    test_run_until(&e, &rep.count, i, 5000);
    assert_int_equal(rep.status, AUTHLOOP_ENETWORK);
  }
  json_decref(test_control(&server, "/__test/cometchat-config", "{}"));
  assert_int_equal(authloop_login_key(other, "cometchat-uid-3", "authkey-1"), 0);
  assert_true(wait_login(&e, &r2)->success);
  test_env_close(&e);
}

/* ---- all three: queries and a restarted app ------------------------------------------ */

static void restored_at_once_for_every_provider(void **state) {
  static const char *const kinds[] = {"gateway", "kuzzle", "cometchat"};
  test_env e;
  size_t i;
  (void)state;
  test_env_init(&e, &server, NULL);
  for (i = 0; i < 3; i++) {
    char path[320], want[64];
    test_recorder r;
    authloop_client *c = NULL, *again = NULL;
    snprintf(path, sizeof(path), "%s/%s.session", tmpdir, kinds[i]);
    if (i == 0) {
      authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
      char *code = test_mint_code(&server, "gina");
      o.provider = "gateway";
      o.base_url = server.base_url;
      o.session_path = path;
      assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
      test_record(c, &r);
      assert_int_equal(authloop_login_code(c, code), 0);
      free(code);
      snprintf(want, sizeof(want), "gina");
    } else if (i == 1) {
      c = kuzzle_client(&e, path);
      test_record(c, &r);
      assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
      snprintf(want, sizeof(want), "kuzzle-user");
    } else {
      c = cometchat_client(&e, "app1", path);
      test_record(c, &r);
      assert_int_equal(authloop_login_key(c, "cometchat-uid-2", "authkey-1"), 0);
      snprintf(want, sizeof(want), "cometchat-uid-2");
    }
    assert_true(wait_login(&e, &r)->success);
    test_run_until_file(&e, path, 1, 5000);
    authloop_client_free(c);
    /* the app restarts: the user is there at once, without network */
    again = i == 0 ? NULL : i == 1 ? kuzzle_client(&e, path) : cometchat_client(&e, "app1", path);
    if (i == 0) {
      authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
      o.provider = "gateway";
      o.base_url = server.base_url;
      o.session_path = path;
      assert_int_equal(authloop_client_new(e.ctx, &o, &again), 0);
    }
    assert_true(authloop_is_logged_in(again));
    assert_string_equal(authloop_user_id(authloop_current_user(again)), want);
    assert_non_null(authloop_access_token(again));
    assert_int_equal(authloop_logout(again), 0);
    test_run_until_file(&e, path, TEST_FILE_LOGGED_OUT, 5000);
    assert_null(authloop_current_user(again));
    assert_false(authloop_is_logged_in(again));
    assert_null(authloop_access_token(again));
  }
  test_env_close(&e);
}

/* ---- path options, names that need escaping, unsupported options --------------------------- */

/* Each path option is where the request goes, for every dialect that has
 * the operation: the server counts the requests at the option's path. */
static void path_options_are_honoured(void **state) {
  static const char *const gw[][2] = {{"/v2/sign-in", "/auth/login"},
                                      {"/v2/renew", "/auth/refresh"},
                                      {"/v2/sign-out", "/auth/logout"}};
  static const char *const kz[][2] = {{"/alt/_login/local", "/_login/local"},
                                      {"/alt/_refreshToken", "/_refreshToken"},
                                      {"/alt/_logout", "/_logout"}};
  static const char *const cc[][2] = {
      {"/cometchat/client/v3.0/me-in", "/cometchat/client/v3.0/me"},
      {"/cometchat/client/v3.0/me-out", "/cometchat/client/v3.0/me"}};
  test_env e;
  test_recorder r;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c;
  test_done d = {0};
  char *code = test_mint_code(&server, "pathy");
  long login0 = test_stat(&server, "/auth/login"),
       me0 = test_stat(&server, "/cometchat/client/v3.0/me");
  size_t i;
  (void)state;
  for (i = 0; i < 3; i++) {
    test_alias(&server, gw[i][0], gw[i][1]);
    test_alias(&server, kz[i][0], kz[i][1]);
  }
  for (i = 0; i < 2; i++)
    test_alias(&server, cc[i][0], cc[i][1]);
  test_env_init(&e, &server, NULL);

  /* gateway: login, refresh, logout */
  o.provider = "gateway";
  o.base_url = server.base_url;
  o.login_path = "/v2/sign-in";
  o.refresh_path = "/v2/renew";
  o.logout_path = "/v2/sign-out";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(authloop_logout_global(c), AUTHLOOP_ENOTSUP); /* no such thing here */
  assert_true(authloop_is_logged_in(c));
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  for (i = 0; i < 3; i++)
    if (test_stat(&server, gw[i][0]) != 1)
      fail_msg("%s: %ld requests", gw[i][0], test_stat(&server, gw[i][0]));
  assert_int_equal(test_stat(&server, "/auth/login"), login0);

  /* kuzzle: login, refresh, global logout */
  o = (authloop_client_options)AUTHLOOP_CLIENT_OPTIONS_INIT;
  o.provider = "kuzzle";
  o.base_url = server.base_url;
  o.login_path = "/alt/_login";
  o.refresh_path = "/alt/_refreshToken";
  o.logout_path = "/alt/_logout";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "1h"), 0);
  assert_true(wait_login(&e, &r)->success);
  d.count = 0;
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(authloop_logout_global(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  for (i = 0; i < 3; i++)
    if (test_stat(&server, kz[i][0]) != 1)
      fail_msg("%s: %ld requests", kz[i][0], test_stat(&server, kz[i][0]));

  /* cometchat: login, logout (it has no refresh) */
  o = (authloop_client_options)AUTHLOOP_CLIENT_OPTIONS_INIT;
  o.provider = "cometchat";
  o.app_id = "app1";
  o.base_url = cc_client;
  o.admin_url = cc_admin;
  o.login_path = "/me-in";
  o.logout_path = "/me-out";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  assert_int_equal(authloop_login_key(c, "cometchat-uid-2", "authkey-1"), 0);
  assert_true(wait_login(&e, &r)->success);
  assert_int_equal(authloop_logout_global(c), AUTHLOOP_ENOTSUP);
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  for (i = 0; i < 2; i++)
    if (test_stat(&server, cc[i][0]) != 1)
      fail_msg("%s: %ld requests", cc[i][0], test_stat(&server, cc[i][0]));
  assert_int_equal(test_stat(&server, "/cometchat/client/v3.0/me"), me0);
  test_env_close(&e);
}

/* Options a dialect has no use for fail at once, never silently. */
static void unsupported_options_are_refused(void **state) {
  test_env e;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  (void)state;
  test_env_init(&e, &server, NULL);
  o.provider = "cometchat";
  o.app_id = "app1";
  o.refresh_path = "/refresh";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.refresh_path = NULL; /* tokens that never expire: no refresh, idle or retry policy */
  o.refresh_margin_s = 60;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.refresh_margin_s = 0;
  o.idle_window_s = 60;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.idle_window_s = 0;
  o.base_url = cc_client; /* both hosts given: the region is not used */
  o.admin_url = cc_admin;
  o.region = "eu";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o = (authloop_client_options)AUTHLOOP_CLIENT_OPTIONS_INIT;
  o.provider = "gateway";
  o.base_url = server.base_url;
  o.app_id = "app1";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.provider = "kuzzle";
  o.app_id = NULL;
  o.region = "eu";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.region = NULL;
  o.login_path = "no-slash";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.login_path = "/a?b";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  assert_null(c);
  test_env_close(&e);
}

/* A strategy name and a uid reach the server as they are, whatever they
 * hold; the servers name them back in their refusals. */
static void names_reach_the_server_intact(void **state) {
  const char *strategy = "a/b?c#d%e&f=g";
  char uid[101], quoted[128];
  test_env e;
  test_recorder rk, rc;
  authloop_client *k, *cc;
  size_t i;
  (void)state;
  for (i = 0; i < 100; i++)
    uid[i] = "%/?#&=+;"[i % 8];
  uid[100] = '\0';
  test_env_init(&e, &server, NULL);
  k = kuzzle_client(&e, NULL);
  cc = cometchat_client(&e, "app1", NULL);
  test_record(k, &rk);
  test_record(cc, &rc);
  assert_int_equal(authloop_login_strategy(k, strategy, "{}", NULL), 0);
  assert_int_equal(authloop_login_key(cc, uid, "authkey-1"), 0);
  test_run_until(&e, &rk.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_int_equal(rk.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ESTRATEGY);
  snprintf(quoted, sizeof(quoted), "\"%s\"", strategy);
  if (!strstr(rk.last[AUTHLOOP_EV_LOGIN_ATTEMPT].message, quoted))
    fail_msg("the server saw another strategy: %s", rk.last[AUTHLOOP_EV_LOGIN_ATTEMPT].message);
  test_run_until(&e, &rc.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000); /* both were in flight */
  assert_string_equal(rc.last_server_code[AUTHLOOP_EV_LOGIN_ATTEMPT], "ERR_UID_NOT_FOUND");
  snprintf(quoted, sizeof(quoted), "The UID %s does", uid);
  if (!strstr(rc.last_message[AUTHLOOP_EV_LOGIN_ATTEMPT], quoted))
    fail_msg("the server saw another uid: %s", rc.last_message[AUTHLOOP_EV_LOGIN_ATTEMPT]);
  test_env_close(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kuzzle_local_login_and_queries),
      cmocka_unit_test(kuzzle_refusals_map_to_their_codes),
      cmocka_unit_test(kuzzle_password_is_the_local_strategy),
      cmocka_unit_test(kuzzle_never_expiring_token),
      cmocka_unit_test(kuzzle_user_from_the_login_answer),
      cmocka_unit_test(kuzzle_two_step_strategy),
      cmocka_unit_test(kuzzle_redirect_strategy),
      cmocka_unit_test(kuzzle_before_2_4),
      cmocka_unit_test(kuzzle_lost_refresh_answer),
      cmocka_unit_test(kuzzle_refresh_in_the_issuing_second),
      cmocka_unit_test(kuzzle_login_answers_at_the_edges),
      cmocka_unit_test(kuzzle_long_lifetime),
      cmocka_unit_test(kuzzle_api_key_is_not_refreshed),
      cmocka_unit_test(kuzzle_api_key_401s),
      cmocka_unit_test(kuzzle_floor_with_a_short_timeout),
      cmocka_unit_test(kuzzle_restored_near_expiry),
      cmocka_unit_test(kuzzle_overloaded_is_not_lost),
      cmocka_unit_test(kuzzle_refresh_keeps_expires_in),
      cmocka_unit_test(kuzzle_expired_or_revoked_token_ends_the_session),
      cmocka_unit_test(kuzzle_global_logout),
      cmocka_unit_test(cometchat_login_with_key),
      cmocka_unit_test(cometchat_login_with_token_and_failures),
      cmocka_unit_test(cometchat_validation_codes_in_order),
      cmocka_unit_test(cometchat_token_not_found_logs_out_locally),
      cmocka_unit_test(cometchat_sends_what_the_sdk_sends),
      cmocka_unit_test(cometchat_follows_settings_hosts),
      cmocka_unit_test(cometchat_logout_of_a_gone_token),
      cmocka_unit_test(kuzzle_unknown_route),
      cmocka_unit_test(proxy_html_errors),
      cmocka_unit_test(proxy_401_on_refresh_is_not_a_revocation),
      cmocka_unit_test(proxy_401s_do_not_storm),
      cmocka_unit_test(proxy_refusal_past_expiry_ends_the_session),
      cmocka_unit_test(proxy_404_past_expiry_is_retried),
      cmocka_unit_test(cometchat_settings_host_failures_stay_there),
      cmocka_unit_test(restored_at_once_for_every_provider),
      cmocka_unit_test(path_options_are_honoured),
      cmocka_unit_test(unsupported_options_are_refused),
      cmocka_unit_test(names_reach_the_server_intact),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("kuzzle and cometchat", tests, group_setup, group_teardown);
}
