/* SPDX-License-Identifier: MIT */
/* The token lifecycle against the reference server with short lifetimes:
 * refresh before expiry while active, idle expiry, retries, Retry-After,
 * revocation, single flight, rotation, 401 handling, offline, and the
 * persisted session restored by a second process. Real loop, real libcurl,
 * TLS; every test ends with uv_loop_close() == 0. */
#include "harness.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static int group_setup(void **state) {
  test_group_setup(state);
  test_make_tmpdir(tmpdir, sizeof(tmpdir), "lifecycle");
  return 0;
}

static int group_teardown(void **state) {
  test_group_teardown(state);
  test_remove_tree(tmpdir);
  return 0;
}

typedef struct {
  unsigned idle_s, margin_s, retry_base_ms;
  const char *session_path;
  const unsigned char *key;
} policy;

static authloop_client *client_with(test_env *e, const policy *p) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "gateway";
  o.base_url = server.base_url;
  o.idle_window_s = p->idle_s;
  o.refresh_margin_s = p->margin_s;
  o.retry_base_ms = p->retry_base_ms;
  o.session_path = p->session_path;
  o.session_key = p->key;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static void login_ttl(test_env *e, authloop_client *c, test_recorder *r, const char *user,
                      int ttl) {
  char *code = test_mint_code_ttl(&server, user, ttl);
  int before = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], before + 1, 5000);
  assert_true(r->last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
}

/* ---- refresh while active ----------------------------------------------------- */

static void active_user_is_refreshed_before_expiry(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  policy p = {0};
  long early = test_stat(&server, "refreshWhileValid");
  long late = test_stat(&server, "refreshAfterExpiry");
  char *first;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "lena", 4); /* margin: half of 4 s */
  first = strdup(authloop_access_token(c));
  assert_true(authloop_token_expires_in_ms(c) > 3000);
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 6000);
  assert_int_equal(r.last[AUTHLOOP_EV_TOKEN_REFRESHED].lifetime, 4);
  assert_string_not_equal(authloop_access_token(c), first);
  authloop_touch(c);
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 2, 6000);
  assert_int_equal(test_stat(&server, "refreshWhileValid"), early + 2);
  assert_int_equal(test_stat(&server, "refreshAfterExpiry"), late);
  assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_EXPIRING], 0);
  assert_non_null(strstr(r.trace, "stateChanged:LOGGED_IN>REFRESHING;"
                                  "stateChanged:REFRESHING>LOGGED_IN;tokenRefreshed:ok;"));
  assert_true(authloop_is_logged_in(c));
  free(first);
  test_env_close(&e);
}

/* ---- idle ------------------------------------------------------------------------- */

static void idle_user_expires_without_refresh(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  policy p = {.idle_s = 1};
  long refreshes = test_stat(&server, "/auth/refresh");
  (void)state;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "ida", 3);
  test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 6000);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_IDLE);
  assert_string_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].message, "idle");
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_EXPIRING], 1); /* once per token */
  assert_true(r.last[AUTHLOOP_EV_TOKEN_EXPIRING].expires_in_ms > 0);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_EXPIRED);
  assert_false(authloop_is_logged_in(c));
  assert_null(authloop_access_token(c));
  assert_null(authloop_current_user(c));
  assert_non_null(strstr(r.trace, "tokenExpiring:ok;stateChanged:LOGGED_IN>EXPIRED;"
                                  "sessionExpired:EREVOKED;"));
  assert_int_equal(authloop_logout(c), AUTHLOOP_ENOTLOGGEDIN);
  login_ttl(&e, c, &r, "ida", 0); /* a new login from EXPIRED */
  test_env_close(&e);
}

static void activity_after_the_warning_refreshes_at_once(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  policy p = {.idle_s = 1};
  long late = test_stat(&server, "refreshAfterExpiry");
  (void)state;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "ivy", 4);
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_EXPIRING], 1, 5000);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
  assert_int_equal(authloop_touch(c), 0); /* "still there?" "yes" */
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_REFRESHING);
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 3000);
  assert_int_equal(test_stat(&server, "refreshAfterExpiry"), late);
  assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  test_env_close(&e);
}

/* ---- failures ---------------------------------------------------------------------- */

static void transient_failures_are_retried_before_expiry(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  policy p = {.retry_base_ms = 50};
  long refreshes = test_stat(&server, "/auth/refresh");
  long early = test_stat(&server, "refreshWhileValid");
  (void)state;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "tom", 4);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"status\":500,\"count\":2}");
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 6000);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 3);
  assert_int_equal(test_stat(&server, "refreshWhileValid"), early + 1);
  assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  assert_true(authloop_is_logged_in(c));
  test_env_close(&e);
}

static void retry_after_is_honoured(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  policy p = {.retry_base_ms = 50};
  long gap;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "rita", 6);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"status\":429,\"retryAfter\":\"1\"}");
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 8000);
  gap = test_last_gap_ms(&server, "/auth/refresh");
  print_message("# retry came %ld ms after the 429 (backoff alone: <= 50 ms)\n", gap);
  assert_true(gap >= 950);
  test_env_close(&e);
}

static int done_count, done_status[8];

static void on_done(authloop_client *c, int status, void *userdata) {
  (void)c;
  (void)userdata;
  done_status[done_count++ % 8] = status;
}

static void revoked_refresh_token_ends_the_session(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  policy p = {0};
  json_t *j;
  (void)state;
  done_count = 0;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "rev", 0);
  j = test_control(&server, "/__test/revoke", "{\"userId\":\"rev\"}");
  json_decref(j);
  assert_int_equal(authloop_refresh(c, on_done, NULL), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 5000);
  test_run_until(&e, &done_count, 1, 1000);
  assert_int_equal(done_status[0], AUTHLOOP_EREVOKED);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  assert_string_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].message, "revoked");
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_EXPIRED);
  assert_null(authloop_access_token(c));
  assert_int_equal(authloop_refresh(c, on_done, NULL), AUTHLOOP_ENOTLOGGEDIN);
  test_env_close(&e);
}

/* ---- single flight and requests -------------------------------------------------------- */

typedef struct {
  int count, ok;
  long last_http;
  char last_body[512];
} responses;

static void on_response(authloop_client *c, int status, long http_status, const char *body,
                        size_t len, void *userdata) {
  responses *r = userdata;
  (void)c;
  (void)len;
  r->count++;
  r->ok += status == 0 && http_status == 200;
  r->last_http = status ? status : http_status;
  snprintf(r->last_body, sizeof(r->last_body), "%s", body);
}

#define CONCURRENT 50

static void requests_during_a_refresh_wait_for_one_refresh(void **state) {
  test_env e;
  test_recorder r;
  responses resp = {0};
  authloop_client *c;
  policy p = {0};
  long refreshes, me;
  int i;
  (void)state;
  done_count = 0;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "sam", 0);
  refreshes = test_stat(&server, "/auth/refresh");
  me = test_stat(&server, "/api/me");
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":300}");
  assert_int_equal(authloop_refresh(c, on_done, NULL), 0);
  assert_int_equal(authloop_refresh(c, on_done, NULL), 0); /* joins */
  for (i = 0; i < CONCURRENT; i++)
    assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_response, &resp), 0);
  assert_int_equal(authloop_refresh(c, on_done, NULL), 0); /* joins too */
  test_run_until(&e, &resp.count, CONCURRENT, 10000);
  assert_int_equal(resp.ok, CONCURRENT);
  assert_non_null(strstr(resp.last_body, "\"id\":\"sam\""));
  test_run_until(&e, &done_count, 3, 1000);
  assert_int_equal(done_status[0], 0);
  assert_int_equal(done_status[1], 0);
  assert_int_equal(done_status[2], 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 1);
  assert_int_equal(test_stat(&server, "/api/me"), me + CONCURRENT);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  test_env_close(&e);
}

static void rotated_refresh_tokens_replace_the_old_one(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  policy p = {0};
  long reuse = test_stat(&server, "rotatedReuse");
  (void)state;
  done_count = 0;
  json_decref(test_control(&server, "/__test/config", "{\"rotateRefreshTokens\":true}"));
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "rosa", 0);
  assert_int_equal(authloop_refresh(c, on_done, NULL), 0);
  test_run_until(&e, &done_count, 1, 5000);
  assert_int_equal(authloop_refresh(c, on_done, NULL), 0);
  test_run_until(&e, &done_count, 2, 5000);
  json_decref(test_control(&server, "/__test/config", "{\"rotateRefreshTokens\":false}"));
  /* the second refresh only works with the rotated token; the old one never went again */
  assert_int_equal(done_status[0], 0);
  assert_int_equal(done_status[1], 0);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 2);
  assert_int_equal(test_stat(&server, "rotatedReuse"), reuse);
  test_env_close(&e);
}

static void a_401_refreshes_once_and_retries_once(void **state) {
  test_env e;
  test_recorder r;
  responses resp = {0};
  authloop_client *c;
  policy p = {0};
  long refreshes, me;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "una", 0);
  refreshes = test_stat(&server, "/auth/refresh");
  me = test_stat(&server, "/api/me");
  test_fault(&server, "{\"route\":\"/api/me\",\"status\":401}");
  assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_response, &resp), 0);
  test_run_until(&e, &resp.count, 1, 5000);
  assert_int_equal(resp.ok, 1);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 1);
  assert_int_equal(test_stat(&server, "/api/me"), me + 2);

  /* 401 again, with tokens a moment old: the 401 is the answer, at once;
   * neither a second refresh nor a retry (a server answering 401 to
   * everything would otherwise make a refresh of every request) */
  test_fault(&server, "{\"route\":\"/api/me\",\"status\":401,\"count\":2}");
  assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_response, &resp), 0);
  test_run_until(&e, &resp.count, 2, 5000);
  assert_int_equal(resp.last_http, 401);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 1);
  assert_int_equal(test_stat(&server, "/api/me"), me + 3);
  json_decref(test_control(&server, "/__test/faults", "{\"route\":\"/api/me\",\"clear\":true}"));

  /* a body goes as JSON and comes back */
  assert_int_equal(authloop_request(c, "POST", "/api/echo", "{\"n\":[1,2]}", on_response, &resp),
                   0);
  test_run_until(&e, &resp.count, 3, 5000);
  assert_non_null(strstr(resp.last_body, "\"echo\":{\"n\":[1,2]}"));
  assert_int_equal(authloop_request(c, "GET", "/api/me", "{}", on_response, &resp),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_request(c, "POST", "/api/echo", "{bad", on_response, &resp),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_request(c, "BREW", "/api/me", NULL, on_response, &resp),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_request(c, "GET", "api/me", NULL, on_response, &resp), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, NULL, NULL), AUTHLOOP_EINVAL);
  test_env_close(&e);
}

/* ---- offline ---------------------------------------------------------------------------- */

static void offline_login_fails_at_once_and_requests_wait(void **state) {
  test_env e;
  test_recorder r;
  responses resp = {0};
  authloop_client *c;
  policy p = {0};
  char *code = test_mint_code(&server, "olga");
  long me;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  assert_int_equal(authloop_ctx_set_online(e.ctx, 0), 0);
  assert_false(authloop_ctx_is_online(e.ctx));
  assert_int_equal(authloop_login_code(c, code), AUTHLOOP_EOFFLINE);
  test_run_turns(&e, 3);
  assert_int_equal(r.total, 0); /* never queued */
  assert_int_equal(authloop_ctx_set_online(e.ctx, 1), 0);
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);

  /* a request made offline waits, and goes when the network is back */
  me = test_stat(&server, "/api/me");
  authloop_ctx_set_online(e.ctx, 0);
  assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_response, &resp), 0);
  test_run_for(&e, 200);
  assert_int_equal(resp.count, 0);
  assert_int_equal(test_stat(&server, "/api/me"), me);
  assert_int_equal(authloop_refresh(c, on_done, NULL), AUTHLOOP_EOFFLINE);
  authloop_ctx_set_online(e.ctx, 1);
  test_run_until(&e, &resp.count, 1, 5000);
  assert_int_equal(resp.ok, 1);
  assert_true(authloop_is_logged_in(c));
  test_env_close(&e);
}

static void offline_requests_give_up_at_their_timeout(void **state) {
  test_env e;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_recorder r;
  responses resp = {0};
  authloop_client *c;
  policy p = {0};
  (void)state;
  o.ca_file = server.ca;
  o.timeout_ms = 300;
  test_env_init(&e, &server, &o);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "otto", 0);
  authloop_ctx_set_online(e.ctx, 0);
  assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_response, &resp), 0);
  test_run_until(&e, &resp.count, 1, 3000);
  assert_int_equal(resp.last_http, AUTHLOOP_EOFFLINE);
  assert_true(authloop_is_logged_in(c)); /* offline never ends a session */
  test_env_close(&e);
}

/* Health is per origin: three network failures put one server on hold, and
 * only that server; work that waited for it goes when the hold ends. */
static void network_failures_hold_one_origin(void **state) {
  test_env e;
  test_recorder ra, rb, rd;
  responses resp = {0}, waited = {0};
  authloop_client *a, *b, *d;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_server s2;
  policy p = {0};
  char url[64], port[16], *code;
  uint64_t t0;
  int i, closed = test_closed_port();
  (void)state;
  test_env_init(&e, &server, NULL);
  a = client_with(&e, &p);
  test_record(a, &ra);
  login_ttl(&e, a, &ra, "nina", 0);
  snprintf(url, sizeof(url), "https://127.0.0.1:%d", closed);
  o.provider = "gateway";
  o.base_url = url;
  assert_int_equal(authloop_client_new(e.ctx, &o, &b), 0);
  test_record(b, &rb);
  for (i = 1; i <= 3; i++) {
    assert_int_equal(authloop_login_code(b, "code"), 0);
    test_run_until(&e, &rb.count[AUTHLOOP_EV_LOGIN_ATTEMPT], i, 5000);
    assert_int_equal(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ENETWORK);
  }
  /* that server is on hold: a login to it fails at once, never queued */
  assert_int_equal(authloop_login_code(b, "code"), AUTHLOOP_EOFFLINE);
  /* the other server is not: a's request goes at once */
  t0 = uv_hrtime();
  assert_true(authloop_ctx_is_online(e.ctx));
  assert_int_equal(authloop_request(a, "GET", "/api/me", NULL, on_response, &resp), 0);
  test_run_until(&e, &resp.count, 1, 5000);
  assert_int_equal(resp.ok, 1);
  assert_true(uv_hrtime() - t0 < 2000000000ull);

  /* a server that goes away while a client is logged in to it */
  snprintf(port, sizeof(port), "%d", test_closed_port());
  test_server_start(&s2, "--port", port, "--state-dir", server.dir, NULL);
  snprintf(url, sizeof(url), "https://127.0.0.1:%s", port);
  o.base_url = url;
  assert_int_equal(authloop_client_new(e.ctx, &o, &d), 0);
  test_record(d, &rd);
  code = test_mint_code(&s2, "dora");
  assert_int_equal(authloop_login_code(d, code), 0);
  free(code);
  test_run_until(&e, &rd.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(rd.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  test_server_stop(&s2);
  for (i = 1; i <= 3; i++) {
    memset(&resp, 0, sizeof(resp));
    assert_int_equal(authloop_request(d, "GET", "/api/me", NULL, on_response, &resp), 0);
    test_run_until(&e, &resp.count, 1, 5000);
    assert_int_equal(resp.last_http, AUTHLOOP_ENETWORK);
  }
  /* on hold now: this request waits for the hold to end, the server comes back */
  t0 = uv_hrtime();
  assert_int_equal(authloop_request(d, "GET", "/api/me", NULL, on_response, &waited), 0);
  test_run_turns(&e, 3);
  assert_int_equal(waited.count, 0);
  test_server_start(&s2, "--port", port, "--state-dir", server.dir, NULL);
  test_run_until(&e, &waited.count, 1, 15000);
  /* it was sent (the new server does not know the token: 401, then a refresh it refuses) */
  assert_int_equal(test_stat(&s2, "/api/me"), 1);
  print_message("# the waiting request went %llu ms after the hold began\n",
                (unsigned long long)(uv_hrtime() - t0) / 1000000);
  test_server_stop(&s2);
  test_env_close(&e);
}

/* ---- persisted session ------------------------------------------------------------------- */

static const unsigned char key[] = "0123456789abcdef0123456789abcdef";

static char *child(const char *path, const char *k) {
  const char *argv[] = {
      getenv("AUTHLOOP_RESTORE_CHILD"), path, server.base_url, server.ca, k, NULL};
  return test_run_program(argv);
}

static void session_is_restored_by_a_second_process(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char path[320], *out;
  struct stat st;
  policy p = {0};
  (void)state;
  snprintf(path, sizeof(path), "%s/plain.session", tmpdir);
  p.session_path = path;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  assert_false(authloop_is_logged_in(c));
  login_ttl(&e, c, &r, "pia", 0);
  test_run_until_file(&e, path, 1, 5000);
  test_run_until_stored(&e, 5000); /* and the writer done with it: nothing queued for it */
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  out = child(path, NULL);
  assert_non_null(strstr(out, "state=LOGGED_IN user=pia\n"));
  assert_non_null(strstr(out, "me=200 status=OK\n"));
  assert_null(strstr(out, "log: "));
  free(out);

  assert_int_equal(authloop_logout(c), 0); /* leaves a logout's mark: no session in it */
  test_run_until_file(&e, path, TEST_FILE_LOGGED_OUT, 5000);
  out = child(path, NULL);
  assert_non_null(strstr(out, "state=LOGGED_OUT user=-\n"));
  free(out);
  test_env_close(&e);
}

static void encrypted_session_needs_its_key(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char path[320], *out, buf[4096];
  int fd;
  ssize_t n;
  policy p = {0};
  (void)state;
  snprintf(path, sizeof(path), "%s/enc.session", tmpdir);
  p.session_path = path;
  p.key = key;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "eve", 0);
  test_run_until_file(&e, path, 1, 5000);
  test_run_until_stored(&e, 5000); /* and the writer done with it: nothing queued for it */
  fd = open(path, O_RDONLY);
  n = read(fd, buf, sizeof(buf));
  close(fd);
  assert_true(n > 40);
  assert_null(memmem(buf, (size_t)n, "eve", 3)); /* nothing readable */
  assert_null(memmem(buf, (size_t)n, authloop_access_token(c), 20));

  out = child(path, (const char *)key);
  assert_non_null(strstr(out, "state=LOGGED_IN user=eve\n"));
  assert_non_null(strstr(out, "me=200"));
  free(out);
  out = child(path, "fedcba9876543210fedcba9876543210");
  assert_non_null(strstr(out, "state=LOGGED_OUT"));
  assert_non_null(strstr(out, "wrong key"));
  free(out);
  out = child(path, NULL);
  assert_non_null(strstr(out, "state=LOGGED_OUT"));
  free(out);
  authloop_client_free(c); /* the file stays for the next start */
  test_env_close(&e);
  assert_int_equal(unlink(path), 0);
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static void bad_session_files_start_logged_out(void **state) {
  test_env e;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_log log = {0};
  test_recorder r;
  authloop_client *c;
  char path[320], foreign[320], *big;
  policy p = {0};
  unsigned char good[8192];
  ssize_t good_len;
  int fd, i;
  (void)state;
  snprintf(path, sizeof(path), "%s/bad.session", tmpdir);
  snprintf(foreign, sizeof(foreign), "%s/foreign.session", tmpdir);
  o.ca_file = server.ca;
  o.log_cb = test_log_cb;
  o.log_userdata = &log;
  o.log_level = AUTHLOOP_LOG_WARN;
  test_env_init(&e, &server, &o);

  /* a real file to truncate and tamper with: encrypted, so that tampering
   * is detectable (a plain file has no integrity protection) */
  p.session_path = path;
  p.key = key;
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "bea", 0);
  test_run_until_file(&e, path, 1, 5000);
  test_run_until_stored(&e, 5000); /* and the writer done with it: nothing queued for it */
  authloop_client_free(c);
  fd = open(path, O_RDONLY);
  good_len = read(fd, good, sizeof(good));
  close(fd);
  assert_true(good_len > 50);

  big = calloc(1, 70 * 1024);
  memcpy(big, good, (size_t)good_len);
  for (i = 0; i < 7; i++) {
    const char *what[] = {"truncated", "tampered",  "garbage", "empty",
                          "huge",      "directory", "foreign"};
    int lines = log.lines;
    unlink(path);
    rmdir(path);
    if (i == 0)
      write_file(path, good, (size_t)good_len / 2);
    else if (i == 1) {
      good[good_len - 3] ^= 1;
      write_file(path, good, (size_t)good_len);
      good[good_len - 3] ^= 1;
    } else if (i == 2)
      write_file(path,
                 "\x7f"
                 "ELF garbage",
                 12);
    else if (i == 3)
      write_file(path, "", 0);
    else if (i == 4)
      write_file(path, big, 70 * 1024);
    else if (i == 5)
      assert_int_equal(mkdir(path, 0700), 0);
    if (i == 6) {
      /* a good file for another backend */
      authloop_client_options fo = AUTHLOOP_CLIENT_OPTIONS_INIT;
      write_file(foreign, good, (size_t)good_len);
      fo.provider = "gateway";
      fo.base_url = "https://127.0.0.1:1";
      fo.session_path = foreign;
      fo.session_key = key;
      assert_int_equal(authloop_client_new(e.ctx, &fo, &c), 0);
    } else {
      c = client_with(&e, &p);
    }
    assert_false(authloop_is_logged_in(c)); /* known at once */
    /* the warning reaches the log callback from the loop, like every callback */
    test_run_until(&e, &log.lines, lines + 1, 2000);
    test_run_turns(&e, 3);
    if (authloop_is_logged_in(c) || log.lines != lines + 1)
      fail_msg("%s file: logged in %d, %d warnings", what[i], authloop_is_logged_in(c),
               log.lines - lines);
    assert_null(authloop_current_user(c));
    authloop_client_free(c);
  }
  assert_non_null(strstr(log.text, "ignored"));
  rmdir(path);
  unlink(foreign);
  free(big);
  test_env_close(&e);
}

static void stale_restored_session_refreshes_on_first_activity(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char path[320];
  policy p = {0};
  long refreshes;
  (void)state;
  snprintf(path, sizeof(path), "%s/stale.session", tmpdir);
  p.session_path = path;
  test_env_init(&e, &server, NULL);
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "stan", 2);
  test_run_until_file(&e, path, 1, 5000);
  test_run_until_stored(&e, 5000); /* and the writer done with it: nothing queued for it */
  authloop_client_free(c);         /* the app quits before any refresh */
  test_run_for(&e, 2200);          /* and is away until the access token has run out */

  refreshes = test_stat(&server, "/auth/refresh");
  c = client_with(&e, &p);
  test_record(c, &r);
  assert_true(authloop_is_logged_in(c));
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "stan");
  assert_int_equal(authloop_token_expires_in_ms(c), 0);
  test_run_for(&e, 200);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes); /* idle: nothing yet */
  assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  assert_int_equal(authloop_touch(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 5000);
  assert_true(authloop_token_expires_in_ms(c) > 1000);
  assert_int_equal(authloop_logout(c), 0);
  test_run_until_file(&e, path, TEST_FILE_LOGGED_OUT, 5000);
  test_env_close(&e);
}

/* ---- one session, several processes ----------------------------------------------------- */

extern char **environ;

typedef struct {
  pid_t pid;
  int out;
} spawned;

static spawned spawn_child(const char *const argv[]) {
  posix_spawn_file_actions_t fa;
  spawned s;
  int p[2];
  assert_int_equal(pipe(p), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_addclose(&fa, p[0]);
  assert_int_equal(posix_spawnp(&s.pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  s.out = p[0];
  return s;
}

static void collect(spawned s, char *buf, size_t n) {
  size_t len = 0;
  int status;
  ssize_t got;
  while (len < n - 1 && (got = read(s.out, buf + len, n - 1 - len)) > 0)
    len += (size_t)got;
  buf[len] = '\0';
  close(s.out);
  assert_int_equal(waitpid(s.pid, &status, 0), s.pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("a sharing process failed: %s", buf);
}

/* Another process holds the session file's lock: a refresh waits for it
 * (looking again every few tens of ms, never losing its wake-up), and goes
 * once the lock is free. */
static void a_refresh_waits_for_the_file_lock(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char path[320], lock[340];
  policy p = {0};
  long before;
  int fd;
  (void)state;
  done_count = 0;
  snprintf(path, sizeof(path), "%s/locked.session", tmpdir);
  snprintf(lock, sizeof(lock), "%s.lock", path);
  test_env_init(&e, &server, NULL);
  p.session_path = path;
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "locky", 0);
  test_run_until_file(&e, path, 1, 5000);
  test_run_until_stored(&e, 5000); /* and the writer done with it: nothing queued for it */
  test_run_for(&e, 100);           /* the write is done and the lock free */
  fd = open(lock, O_RDWR | O_CREAT, 0600);
  assert_int_equal(flock(fd, LOCK_EX), 0); /* as another process would */
  before = test_stat(&server, "/auth/refresh");
  assert_int_equal(authloop_refresh(c, on_done, NULL), 0);
  test_run_for(&e, 400);
  assert_int_equal(test_stat(&server, "/auth/refresh"), before);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_REFRESHING);
  flock(fd, LOCK_UN);
  close(fd);
  test_run_until(&e, &done_count, 1, 3000);
  assert_int_equal(done_status[0], 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), before + 1);
  test_env_close(&e);
  unlink(path);
  unlink(lock);
}

/* Two processes restore one session file and stay active for 10 s with
 * tokens of 6 s, the server rotating refresh tokens: they refresh as one
 * session would (one refresh per round, taken by whoever comes first; the
 * other takes its tokens from the file), the server sees no rotated token
 * again, neither session ends, and both end with the same access token. */
static void processes_share_one_session(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char path[320], out[2][4096], tok[2][1024];
  policy p = {0};
  long refreshes, reuse;
  int expired[2], refreshed[2], i;
  spawned kids[2];
  (void)state;
  snprintf(path, sizeof(path), "%s/shared.session", tmpdir);
  json_decref(test_control(&server, "/__test/config", "{\"rotateRefreshTokens\":true}"));
  test_env_init(&e, &server, NULL);
  p.session_path = path;
  c = client_with(&e, &p);
  test_record(c, &r);
  login_ttl(&e, c, &r, "shared", 6);
  test_run_until_file(&e, path, 1, 5000);
  test_run_until_stored(&e, 5000); /* and the writer done with it: nothing queued for it */
  authloop_client_free(c);         /* the file stays: the session goes on in the children */
  test_env_close(&e);
  refreshes = test_stat(&server, "/auth/refresh");
  reuse = test_stat(&server, "rotatedReuse");
  {
    /* bounded: a child that never ends is killed, and its output says so */
    const char *argv[] = {
        "timeout",       "-s",      "KILL",  "60", getenv("AUTHLOOP_SHARE_CHILD"), path,
        server.base_url, server.ca, "10000", NULL};
    kids[0] = spawn_child(argv);
    kids[1] = spawn_child(argv);
  }
  for (i = 0; i < 2; i++) {
    char state_name[32];
    collect(kids[i], out[i], sizeof(out[i]));
    if (sscanf(out[i], "refreshed=%d expired=%d state=%31s token=%1023s", &refreshed[i],
               &expired[i], state_name, tok[i]) != 4)
      fail_msg("child %d said: %s", i, out[i]);
    assert_int_equal(expired[i], 0);
    assert_string_equal(state_name, "LOGGED_IN");
  }
  refreshes = test_stat(&server, "/auth/refresh") - refreshes;
  print_message("# two processes, one session: %ld refreshes at the server; %d and %d seen\n",
                refreshes, refreshed[0], refreshed[1]);
  assert_int_equal(test_stat(&server, "rotatedReuse"), reuse);
  assert_string_equal(tok[0], tok[1]);
  /* one process alone: a refresh every 3 s (half of 6) for 10 to 13 s */
  assert_true(refreshes >= 3 && refreshes <= 5);
  json_decref(test_control(&server, "/__test/config", "{\"rotateRefreshTokens\":false}"));
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(active_user_is_refreshed_before_expiry),
      cmocka_unit_test(idle_user_expires_without_refresh),
      cmocka_unit_test(activity_after_the_warning_refreshes_at_once),
      cmocka_unit_test(transient_failures_are_retried_before_expiry),
      cmocka_unit_test(retry_after_is_honoured),
      cmocka_unit_test(revoked_refresh_token_ends_the_session),
      cmocka_unit_test(requests_during_a_refresh_wait_for_one_refresh),
      cmocka_unit_test(rotated_refresh_tokens_replace_the_old_one),
      cmocka_unit_test(a_401_refreshes_once_and_retries_once),
      cmocka_unit_test(offline_login_fails_at_once_and_requests_wait),
      cmocka_unit_test(offline_requests_give_up_at_their_timeout),
      cmocka_unit_test(network_failures_hold_one_origin),
      cmocka_unit_test(session_is_restored_by_a_second_process),
      cmocka_unit_test(encrypted_session_needs_its_key),
      cmocka_unit_test(bad_session_files_start_logged_out),
      cmocka_unit_test(a_refresh_waits_for_the_file_lock),
      cmocka_unit_test(processes_share_one_session),
      cmocka_unit_test(stale_restored_session_refreshes_on_first_activity),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("token lifecycle", tests, group_setup, group_teardown);
}
