/* SPDX-License-Identifier: MIT */
/* Values that could break a header line: a token with CR, LF, NUL or DEL from
 * the server, in every dialect and every answer that carries one (login,
 * refresh, a restored session file), is refused and never sent; the same
 * bytes from the application are AUTHLOOP_EINVAL at the call, with nothing
 * sent. The reference server records every header line as it arrived, and
 * counts the requests its parser refused, so "never sent" is checked where it
 * matters: on the wire. */
#include "harness.h"

#include "jwt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MARK "X-Injected"

/* Token values as JSON text: each breaks a header line in its own way. */
static const char *const bad_tokens[] = {
    "abc\\r\\nX-Injected: yes", /* a second header line */
    "abc\\nX-Injected: yes",    /* a bare LF */
    "abc\\u007fdef",            /* DEL */
    "abc\\u0000def",            /* NUL */
    "abc\\tdef",                /* TAB, a control byte too */
};
#define N_BAD (sizeof(bad_tokens) / sizeof(bad_tokens[0]))

static char cc_client[128], cc_admin[128], tmpdir[256];

static int group_setup(void **state) {
  test_group_setup(state);
  snprintf(cc_client, sizeof(cc_client), "%s/cometchat/client/v3.0", server.base_url);
  snprintf(cc_admin, sizeof(cc_admin), "%s/cometchat/admin/v3.0", server.base_url);
  test_make_tmpdir(tmpdir, sizeof(tmpdir), "hostile");
  return 0;
}

static int group_teardown(void **state) {
  test_group_teardown(state);
  test_remove_tree(tmpdir);
  return 0;
}

static authloop_client *client_of(test_env *e, const char *provider, const char *session_path) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = provider;
  o.base_url = server.base_url;
  o.session_path = session_path;
  if (strcmp(provider, "cometchat") == 0) {
    o.app_id = "app1";
    o.base_url = cc_client;
    o.admin_url = cc_admin;
  } else if (strcmp(provider, "cognito") == 0 || strcmp(provider, "oidc") == 0) {
    o.client_id = "client1";
  }
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static void fault_body(const char *route, long status, const char *body) {
  test_fault_body(&server, route, status, body);
}

static void nothing_injected(void) {
  assert_int_equal(test_sent(&server, MARK), 0);
  assert_int_equal(test_refused_requests(&server), 0);
}

static const authloop_event *wait_login(test_env *e, test_recorder *r) {
  int before = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], before + 1, 5000);
  return &r->last[AUTHLOOP_EV_LOGIN_ATTEMPT];
}

/* A login refused for its token leaves nothing to send; were it kept, the
 * logout would send it. */
static void refused_login(test_env *e, authloop_client *c, test_recorder *r, const char *route,
                          const char *next_route) {
  long next = next_route ? test_stat(&server, next_route) : 0;
  const authloop_event *ev = wait_login(e, r);
  if (ev->success || ev->error != AUTHLOOP_EPROTO)
    fail_msg("a login whose token breaks a header: success %d, %s (%s)", ev->success,
             authloop_err_name(ev->error), route);
  assert_false(authloop_is_logged_in(c));
  assert_null(authloop_access_token(c));
  if (authloop_logout(c) == 0) /* not logged in: ENOTLOGGEDIN, nothing sent */
    test_run_until(e, &r->count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  if (next_route)
    assert_int_equal(test_stat(&server, next_route), next); /* the next step never went */
  nothing_injected();
}

static void gateway_login_answers(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < N_BAD; i++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    char body[512];
    test_env_init(&e, &server, NULL);
    c = client_of(&e, "gateway", NULL);
    test_record(c, &r);
    /* each of the three tokens in turn */
    snprintf(body, sizeof(body),
             "{\"user\":{\"id\":\"u\"},\"accessToken\":\"%s\",\"idToken\":\"%s\","
             "\"refreshToken\":\"%s\",\"expiresIn\":60}",
             i % 3 == 0 ? bad_tokens[i] : "a", i % 3 == 1 ? bad_tokens[i] : "i",
             i % 3 == 2 ? bad_tokens[i] : "r");
    fault_body("/auth/login", 200, body);
    assert_int_equal(authloop_login_code(c, "any-code"), 0);
    refused_login(&e, c, &r, "/auth/login", NULL);
    test_env_close(&e);
  }
}

static void kuzzle_login_answers(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < N_BAD; i++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    char body[512];
    test_env_init(&e, &server, NULL);
    c = client_of(&e, "kuzzle", NULL);
    test_record(c, &r);
    snprintf(body, sizeof(body),
             "{\"requestId\":\"x\",\"status\":200,\"error\":null,\"controller\":\"auth\","
             "\"action\":\"login\",\"result\":{\"_id\":\"kuzzle-user\",\"jwt\":\"%s\","
             "\"expiresAt\":4102444800000,\"ttl\":3600000}}",
             bad_tokens[i]);
    fault_body("/_login/local", 200, body);
    assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
    refused_login(&e, c, &r, "/_login/local", "/_me");
    test_env_close(&e);
  }
}

static void cometchat_auth_token_answers(void **state) {
  const char *route = "/cometchat/admin/v3.0/users/cometchat-uid-1/auth_tokens";
  size_t i;
  (void)state;
  for (i = 0; i < N_BAD; i++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    char body[512];
    test_env_init(&e, &server, NULL);
    c = client_of(&e, "cometchat", NULL);
    test_record(c, &r);
    snprintf(body, sizeof(body),
             "{\"data\":{\"uid\":\"cometchat-uid-1\",\"authToken\":\"%s\",\"createdAt\":1}}",
             bad_tokens[i]);
    fault_body(route, 200, body);
    assert_int_equal(authloop_login_key(c, "cometchat-uid-1", "authkey-1"), 0);
    refused_login(&e, c, &r, route, "/cometchat/client/v3.0/me");
    test_env_close(&e);
  }
}

/* A user id with a control is refused: the id names the user to the
 * application, and altering it would name another. A name with controls
 * (C0, DEL, C1, a line separator, a bidirectional override) logs in, shown
 * with '?' in their place; the user's JSON keeps the server's escapes. Every dialect
 * whose server gives the user: the gateway's login answer, Kuzzle's
 * getCurrentUser (GET /users/_me) and, with userinfo -1, its login answer, CometChat's
 * PUT /me. */
#define HOSTILE_NAME "a\\u001b[2J\\u0007b\\u009bc\\u202ed\\r\\ne\\u2028f"
static const char *const bad_ids[] = {"admin\\r\\nX-Injected: 1",
                                      "ad\\nmin",
                                      "ad\\u007fmin",
                                      "ad\\u001bmin",
                                      "ad\\tmin",
                                      "ad\\u0085min",
                                      "ad\\u202emin",
                                      "ad\\u2028min",
                                      "ad\\u061cmin"};

static const char *user_answer(const char *dialect, const char *id, char *body, size_t n) {
  if (strcmp(dialect, "gateway") == 0) {
    snprintf(body, n,
             "{\"user\":{\"id\":\"%s\",\"name\":\"" HOSTILE_NAME "\"},\"accessToken\":\"a\","
             "\"idToken\":\"i\",\"refreshToken\":\"r\",\"expiresIn\":60}",
             id);
    return "/auth/login";
  }
  if (strcmp(dialect, "kuzzle") == 0) {
    snprintf(body, n,
             "{\"requestId\":\"x\",\"status\":200,\"error\":null,\"controller\":\"auth\","
             "\"action\":\"getCurrentUser\",\"result\":{\"_id\":\"%s\",\"_source\":"
             "{\"name\":\"" HOSTILE_NAME "\"}}}",
             id);
    return "/users/_me";
  }
  if (strcmp(dialect, "kuzzle-1") == 0) {
    snprintf(body, n,
             "{\"requestId\":\"x\",\"status\":200,\"error\":null,\"controller\":\"auth\","
             "\"action\":\"login\",\"result\":{\"_id\":\"%s\",\"jwt\":\"j\","
             "\"expiresAt\":4102444800000,\"ttl\":3600000}}",
             id);
    return "/_login/local";
  }
  snprintf(body, n, "{\"data\":{\"uid\":\"%s\",\"name\":\"" HOSTILE_NAME "\"}}", id);
  return "/cometchat/client/v3.0/me";
}

static authloop_client *user_client(test_env *e, const char *dialect) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  if (strncmp(dialect, "kuzzle", 6) != 0)
    return client_of(e, dialect, NULL);
  o.provider = "kuzzle";
  o.base_url = server.base_url;
  o.userinfo = strcmp(dialect, "kuzzle-1") == 0 ? -1 : 0;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static void user_login(authloop_client *c, const char *dialect) {
  if (strcmp(dialect, "gateway") == 0)
    assert_int_equal(authloop_login_code(c, "any-code"), 0);
  else if (strcmp(dialect, "cometchat") == 0)
    assert_int_equal(authloop_login_key(c, "cometchat-uid-1", "authkey-1"), 0);
  else
    assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
}

static void user_ids_and_names_with_control_bytes(void **state) {
  static const char *const dialects[] = {"gateway", "kuzzle", "kuzzle-1", "cometchat"};
  size_t i, j;
  (void)state;
  for (i = 0; i < sizeof(dialects) / sizeof(dialects[0]); i++) {
    for (j = 0; j <= sizeof(bad_ids) / sizeof(bad_ids[0]); j++) {
      test_env e;
      test_recorder r;
      authloop_client *c;
      const authloop_event *ev;
      const char *id = j < sizeof(bad_ids) / sizeof(bad_ids[0]) ? bad_ids[j] : "plain-id";
      char body[768];
      const char *route = user_answer(dialects[i], id, body, sizeof(body));
      test_env_init(&e, &server, NULL);
      c = user_client(&e, dialects[i]);
      test_record(c, &r);
      fault_body(route, 200, body);
      user_login(c, dialects[i]);
      ev = wait_login(&e, &r);
      if (strcmp(id, "plain-id") != 0) { /* refused, nothing of it kept */
        if (ev->success || ev->error != AUTHLOOP_EPROTO)
          fail_msg("%s: a user id with a control byte (%s): success %d, %s", dialects[i], id,
                   ev->success, authloop_err_name(ev->error));
        assert_non_null(strstr(ev->message, "control character"));
        assert_false(authloop_is_logged_in(c));
        assert_null(authloop_current_user(c));
      } else { /* the id as sent; the name shown without its controls */
        const authloop_user *u = authloop_current_user(c);
        const char *name = authloop_user_name(u);
        if (!ev->success)
          fail_msg("%s: %s", dialects[i], authloop_err_name(ev->error));
        assert_string_equal(authloop_user_id(u), "plain-id");
        if (strcmp(dialects[i], "kuzzle-1") == 0) {
          assert_null(name); /* no name in a login answer */
        } else {
          assert_string_equal(name, "a?[2J?b?c?d??e?f");
          assert_non_null(strstr(authloop_user_json(u), "\\u001b[2J"));
        }
      }
      nothing_injected();
      authloop_client_free(c);
      test_env_close(&e);
    }
  }
}

typedef struct {
  int done, status;
  long http;
} outcome;

static void on_done(authloop_client *c, int status, void *ud) {
  outcome *o = ud;
  (void)c;
  o->status = status;
  o->done++;
}

static void on_response(authloop_client *c, int status, long http, const char *body, size_t len,
                        void *ud) {
  outcome *o = ud;
  (void)c;
  (void)body;
  (void)len;
  o->status = status;
  o->http = http;
  o->done++;
}

/* A refresh answer with a bad token is a malformed answer: the session keeps
 * its good token and goes on using it; the bad one is never sent. */
/* n: the first n of bad_tokens (each field is tried with every one where it
 * is the answer's main token; with the first, CR LF, elsewhere) */
static void refresh_answers(const char *provider, const char *route, const char *fmt,
                            const char *me_path, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    outcome ref = {0}, req = {0};
    char body[512], *before;
    char *code = test_mint_code(&server, "hostile");
    test_env_init(&e, &server, NULL);
    c = client_of(&e, provider, NULL);
    test_record(c, &r);
    if (strcmp(provider, "gateway") == 0)
      assert_int_equal(authloop_login_code(c, code), 0);
    else
      assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
    free(code);
    assert_true(wait_login(&e, &r)->success);
    before = strdup(authloop_access_token(c));
    snprintf(body, sizeof(body), fmt, bad_tokens[i]);
    fault_body(route, 200, body);
    assert_int_equal(authloop_refresh(c, on_done, &ref), 0);
    test_run_until(&e, &ref.done, 1, 5000);
    assert_int_equal(ref.status, AUTHLOOP_EPROTO);
    assert_true(authloop_is_logged_in(c));
    assert_string_equal(authloop_access_token(c), before); /* the good one stays */
    assert_int_equal(authloop_request(c, "GET", me_path, NULL, on_response, &req), 0);
    test_run_until(&e, &req.done, 1, 5000);
    assert_int_equal(req.status, 0);
    assert_int_equal(req.http, 200);
    nothing_injected();
    free(before);
    test_env_close(&e);
  }
}

static void gateway_refresh_answers(void **state) {
  (void)state;
  refresh_answers("gateway", "/auth/refresh",
                  "{\"accessToken\":\"%s\",\"idToken\":\"i\",\"expiresIn\":60}", "/api/me", N_BAD);
  /* the id token, and a rotated refresh token, as hostile as the access token */
  refresh_answers("gateway", "/auth/refresh",
                  "{\"accessToken\":\"fresh\",\"idToken\":\"%s\",\"expiresIn\":60}", "/api/me", 1);
  refresh_answers("gateway", "/auth/refresh",
                  "{\"accessToken\":\"fresh\",\"idToken\":\"i\",\"refreshToken\":\"%s\","
                  "\"expiresIn\":60}",
                  "/api/me", 1);
}

static void kuzzle_refresh_answers(void **state) {
  (void)state;
  refresh_answers("kuzzle", "/_refreshToken",
                  "{\"requestId\":\"x\",\"status\":200,\"error\":null,\"controller\":\"auth\","
                  "\"action\":\"refreshToken\",\"result\":{\"_id\":\"kuzzle-user\",\"jwt\":\"%s\","
                  "\"expiresAt\":4102444800000,\"ttl\":3600000}}",
                  "/_me", N_BAD);
}

/* A session file is as hostile as a server: a planted token is refused. */
static void restored_session_files(void **state) {
  static const char *const providers[] = {"gateway", "kuzzle", "cometchat", "cognito", "oidc"};
  static const char *const fields[] = {"accessToken", "idToken", "refreshToken"};
  size_t p, i, f;
  (void)state;
  for (p = 0; p < sizeof(providers) / sizeof(providers[0]); p++) {
    /* after the bad tokens: every token good, restored; then a user id with
     * CR LF (every dialect's id key), not restored */
    for (i = 0; i <= N_BAD * 3 + 1; i++) {
      test_env e;
      test_log log = {0};
      authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
      authloop_client *c;
      char path[320], payload[1024];
      const char *token[3] = {"a", "", "r"};
      const char *uid = i > N_BAD * 3 ? "u\\r\\nX-Injected: 1" : "u";
      long long now_ms = (long long)time(NULL) * 1000;
      int fd, n;
      f = i % 3; /* each token of the file in turn */
      if (f != 0 && i / 3 != 0 && i < N_BAD * 3)
        continue; /* the id and refresh tokens: CR LF is enough (one check for all three) */
      if (i < N_BAD * 3)
        token[f] = bad_tokens[i / 3];
      snprintf(path, sizeof(path), "%s/planted-%zu-%zu", tmpdir, p, i);
      n = snprintf(payload, sizeof(payload),
                   "ALS1\x01%c{\"v\":1,\"provider\":\"%s\",\"baseUrl\":\"%s\",\"user\":"
                   "{\"id\":\"%s\",\"_id\":\"%s\",\"uid\":\"%s\",\"sub\":\"%s\"},"
                   "\"accessToken\":\"%s\",\"idToken\":\"%s\",\"refreshToken\":\"%s\","
                   "\"lifetime\":3600,\"expiresAt\":%lld,\"lastActivity\":%lld}",
                   0, providers[p], p == 2 ? cc_client : server.base_url, uid, uid, uid, uid,
                   token[0], token[1], token[2], now_ms + 3000000, now_ms);
      fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      assert_true(fd >= 0);
      assert_int_equal(write(fd, payload, (size_t)n), n);
      close(fd);
      o.ca_file = server.ca;
      o.log_cb = test_log_cb;
      o.log_userdata = &log;
      o.log_level = AUTHLOOP_LOG_WARN;
      test_env_init(&e, &server, &o);
      c = client_of(&e, providers[p], path);
      if (i == N_BAD * 3) { /* the same file, clean: it is restored (so it is the token above) */
        if (!authloop_is_logged_in(c))
          fail_msg("%s: a clean session file was not restored: %s", providers[p], log.text);
        test_env_close(&e);
        unlink(path);
        continue;
      }
      if (authloop_is_logged_in(c))
        fail_msg("%s: a session file with %s %s was restored", providers[p],
                 i > N_BAD * 3 ? "the user id" : fields[f],
                 i > N_BAD * 3 ? uid : bad_tokens[i / 3]);
      test_run_until(&e, &log.lines, 1, 2000);
      assert_non_null(strstr(log.text, "ignored"));
      test_env_close(&e);
      unlink(path);
    }
  }
  nothing_injected();
}

/* The same bytes from the application: EINVAL at the call, nothing sent. */
static void application_values(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *g, *k, *cc;
  authloop_ctx *other = NULL;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  uv_loop_t loop;
  long before = test_stat(&server, "/auth/login") + test_stat(&server, "/_login/local") +
                test_stat(&server, "/cometchat/admin/v3.0/users/cometchat-uid-1/auth_tokens") +
                test_stat(&server, "/cometchat/client/v3.0/me");
  (void)state;
  test_env_init(&e, &server, NULL);
  g = client_of(&e, "gateway", NULL);
  k = client_of(&e, "kuzzle", NULL);
  cc = client_of(&e, "cometchat", NULL);
  test_record(k, &r);
  assert_int_equal(authloop_login_code(g, "abc\x7f"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_code(g, "ab\x01"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_strategy(k,
                                           "lo\x01"
                                           "cal",
                                           "{}", NULL),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_local(k, "kuzzle-user", "kuzzle-pass", "1h\x7f"),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_key(cc, "cometchat-uid-1", "authkey-1\r\n" MARK ": yes"),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_key(cc, "cometchat-uid-1", "authkey-1\x7f"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_token(cc, "tok\x01"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_token(cc, "tok\x7f"), AUTHLOOP_EINVAL);
  /* not UTF-8: EINVAL, not ENOMEM */
  assert_int_equal(authloop_login_code(g, "ab\xff"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_local(k, "kuzzle-user", "\xc3\x28", NULL), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_key(cc, "cometchat-\xff", "authkey-1"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_token(cc, "tok\xed\xa0\x80"), AUTHLOOP_EINVAL);
  /* a two-step login completed with a bad token */
  assert_int_equal(authloop_login_strategy(k, "twostep", "{\"username\":\"kuzzle-user\"}", NULL),
                   0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_STATE_CHANGED], 2, 5000);
  assert_int_equal(authloop_client_state(k), AUTHLOOP_STATE_AWAITING_TOKEN);
  assert_int_equal(authloop_set_token(k, "kauth-\x7f"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_client_state(k), AUTHLOOP_STATE_AWAITING_TOKEN);
  /* a user agent that would add a header */
  assert_int_equal(uv_loop_init(&loop), 0);
  o.user_agent = "ua\r\n" MARK ": yes";
  assert_int_equal(authloop_ctx_new(&loop, &o, &other), AUTHLOOP_EINVAL);
  assert_null(other);
  assert_int_equal(uv_loop_close(&loop), 0);
  test_env_close(&e);
  assert_int_equal(
      test_stat(&server, "/auth/login") + test_stat(&server, "/_login/local") +
          test_stat(&server, "/cometchat/admin/v3.0/users/cometchat-uid-1/auth_tokens") +
          test_stat(&server, "/cometchat/client/v3.0/me"),
      before); /* the twostep login went to /_login/twostep, nothing else */
  nothing_injected();
}

/* A canned Cognito answer: tokens whose id token names sub (unsigned: the
 * dialect reads Cognito's id token without checking it). */
static void cognito_answer(const char *sub) {
  char claims[256], body[2048], fault[2300];
  char *c;
  snprintf(claims, sizeof(claims),
           "{\"sub\":\"%s\",\"cognito:username\":\"%s-name\",\"iat\":1000,\"exp\":4600}", sub, sub);
  c = authloop__b64url_encode((const unsigned char *)claims, strlen(claims));
  snprintf(
      body, sizeof(body),
      "{\"AuthenticationResult\":{\"AccessToken\":\"AT-%s\",\"IdToken\":\"eyJhbGciOiJSUzI1NiJ9.%s."
      "c2ln\",\"RefreshToken\":\"RT\",\"ExpiresIn\":3600}}",
      sub, c);
  free(c);
  /* the body as a JSON string inside the fault */
  {
    json_t *f = json_pack("{s:s, s:s, s:i}", "route", "/", "body", body, "count", 1);
    char *text = json_dumps(f, JSON_COMPACT);
    snprintf(fault, sizeof(fault), "%s", text);
    free(text);
    json_decref(f);
  }
  test_fault(&server, fault);
}

/* Cognito's answers (canned by the reference server at its root, as
 * cognito-local would give them): each token of a login answer, and the
 * access token of a refresh's, with a byte that breaks a header line: the
 * login is refused, the refresh fails, the good tokens stay. */
static void cognito_tokens(const char *access, const char *id_claims_or_bad, const char *refresh) {
  char body[2048];
  char *claims = NULL;
  json_t *f;
  char *text;
  if (!strchr(id_claims_or_bad, '\\')) /* claims: a JWT of them; else a bad token as it is */
    claims =
        authloop__b64url_encode((const unsigned char *)id_claims_or_bad, strlen(id_claims_or_bad));
  snprintf(body, sizeof(body),
           "{\"AuthenticationResult\":{\"AccessToken\":\"%s\",\"IdToken\":\"%s%s%s\"%s%s%s,"
           "\"ExpiresIn\":3600}}",
           access, claims ? "eyJhbGciOiJSUzI1NiJ9." : "", claims ? claims : id_claims_or_bad,
           claims ? ".c2ln" : "", refresh ? ",\"RefreshToken\":\"" : "", refresh ? refresh : "",
           refresh ? "\"" : "");
  free(claims);
  f = json_pack("{s:s, s:s, s:i}", "route", "/", "body", body, "count", 1);
  text = json_dumps(f, JSON_COMPACT);
  test_fault(&server, text);
  free(text);
  json_decref(f);
}

static authloop_client *cognito_client(test_env *e) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "cognito";
  o.base_url = server.base_url;
  o.client_id = "client1";
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static void cognito_answers(void **state) {
  static const char good_id[] =
      "{\"sub\":\"u-1\",\"cognito:username\":\"alice\",\"iat\":1000,\"exp\":4600}";
  size_t i;
  int field;
  (void)state;
  for (i = 0; i < N_BAD; i++) {
    for (field = 0; field < 3; field++) { /* the login's access, id and refresh tokens */
      test_env e;
      if (field != 0 && i != 0)
        continue; /* id and refresh: CR LF is enough (one check for all three) */
      test_recorder r;
      authloop_client *c;
      test_env_init(&e, &server, NULL);
      c = cognito_client(&e);
      test_record(c, &r);
      cognito_tokens(field == 0 ? bad_tokens[i] : "AT", field == 1 ? bad_tokens[i] : good_id,
                     field == 2 ? bad_tokens[i] : "RT");
      assert_int_equal(authloop_login_password(c, "alice", "pw"), 0);
      refused_login(&e, c, &r, "cognito login", NULL);
      test_env_close(&e);
    }
    {
      test_env e;
      test_recorder r;
      test_done d = {0, 0};
      authloop_client *c;
      test_env_init(&e, &server, NULL);
      c = cognito_client(&e);
      test_record(c, &r);
      cognito_tokens("AT", good_id, "RT");
      assert_int_equal(authloop_login_password(c, "alice", "pw"), 0);
      assert_true(wait_login(&e, &r)->success);
      cognito_tokens(bad_tokens[i], good_id, NULL);
      assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
      test_run_until(&e, &d.count, 1, 5000);
      assert_int_equal(d.status, AUTHLOOP_EPROTO);
      assert_string_equal(authloop_access_token(c), "AT");
      assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
      nothing_injected();
      test_env_close(&e);
    }
  }
}

/* A refresh renews its user's session: an answer for another user (a
 * hostile or broken server) is refused, and the session stays the user's,
 * whatever the dialect says of users. */
static void a_refresh_for_another_user(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  test_done d = {0, 0};
  authloop_client *c = NULL;
  (void)state;
  test_env_init(&e, &server, NULL);
  o.provider = "cognito";
  o.base_url = server.base_url;
  o.client_id = "client1";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  cognito_answer("u-alice");
  assert_int_equal(authloop_login_password(c, "alice", "pw"), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "u-alice");
  cognito_answer("u-mallory");
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, AUTHLOOP_EPROTO);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "u-alice");
  assert_string_equal(authloop_access_token(c), "AT-u-alice");
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
  test_env_close(&e);
}

/* An OpenID discovery document (canned by the server) that points the
 * client's secrets elsewhere: credentials in an endpoint's URL; and, for an
 * issuer on plain http (loopback), an endpoint on another host in clear. */
static void discovery_endpoints_that_leak(void **state) {
  test_server plain;
  const test_server *servers[2];
  char doc[1024], fault[1400];
  size_t i;
  (void)state;
  test_server_start(&plain, "--plain", NULL);
  snprintf(plain.base_url, sizeof(plain.base_url), "http://127.0.0.1:%d", plain.port);
  servers[0] = &server;
  servers[1] = &plain;
  for (i = 0; i < 2; i++) {
    const test_server *s = servers[i];
    authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
    authloop_client *c = NULL;
    test_recorder r;
    test_env e;
    json_t *f;
    char *text;
    if (i == 0)
      snprintf(doc, sizeof(doc),
               "{\"issuer\":\"%s\",\"token_endpoint\":\"https://user:pw@127.0.0.1:%d/token\","
               "\"jwks_uri\":\"%s/jwks\",\"device_authorization_endpoint\":\"%s/device\"}",
               s->base_url, s->port, s->base_url, s->base_url);
    else
      snprintf(doc, sizeof(doc),
               "{\"issuer\":\"%s\",\"token_endpoint\":\"http://elsewhere.example/token\","
               "\"jwks_uri\":\"%s/jwks\",\"device_authorization_endpoint\":\"%s/device\"}",
               s->base_url, s->base_url, s->base_url);
    f = json_pack("{s:s, s:s, s:i}", "route", "/.well-known/openid-configuration", "body", doc,
                  "count", 1);
    text = json_dumps(f, JSON_COMPACT);
    snprintf(fault, sizeof(fault), "%s", text);
    free(text);
    json_decref(f);
    test_fault(s, fault);
    test_env_init(&e, &server, NULL);
    o.provider = "oidc";
    o.base_url = s->base_url;
    o.client_id = "c";
    o.client_secret = "the-secret";
    assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
    test_record(c, &r);
    assert_int_equal(authloop_login_device(c), 0);
    test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
    assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EPROTO);
    assert_non_null(strstr(r.last_message[AUTHLOOP_EV_LOGIN_ATTEMPT], "token_endpoint"));
    assert_int_equal(test_sent(s, "the-secret") + test_sent(s, "Basic"), 0);
    test_env_close(&e);
  }
  test_server_stop(&plain);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(discovery_endpoints_that_leak),
      cmocka_unit_test(a_refresh_for_another_user),
      cmocka_unit_test(gateway_login_answers),
      cmocka_unit_test(kuzzle_login_answers),
      cmocka_unit_test(cometchat_auth_token_answers),
      cmocka_unit_test(gateway_refresh_answers),
      cmocka_unit_test(kuzzle_refresh_answers),
      cmocka_unit_test(cognito_answers),
      cmocka_unit_test(restored_session_files),
      cmocka_unit_test(application_values),
      cmocka_unit_test(user_ids_and_names_with_control_bytes),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("hostile header bytes", tests, group_setup, group_teardown);
}
