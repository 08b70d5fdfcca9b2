/* SPDX-License-Identifier: MIT */
/* The "oidc" dialect against oidc-provider (panva, OpenID Certified), run
 * by test/peers/oidc.mjs over TLS: discovery, the issuer's keys, device
 * logins completed by a scripted user through the OP's own pages, refresh
 * with rotation, revocation at the server, id tokens refused for each way
 * they can be wrong, logout revoking the refresh token. A real uv loop, real
 * libcurl; every test ends with uv_loop_close() == 0. */
#include "harness.h"

#include "engine.h" /* the refresh token, which the API never hands out */

#include <stdlib.h>
#include <string.h>

static test_server peer;
static char issuer[128], secret[128];
#define SHORT_S 6

static int setup(void **state) {
  json_t *ready = test_peer_start(&peer, "oidc", "--short", "6", NULL);
  (void)state;
  snprintf(issuer, sizeof(issuer), "%s", json_string_value(json_object_get(ready, "issuer")));
  snprintf(secret, sizeof(secret), "%s", json_string_value(json_object_get(ready, "secret")));
  json_decref(ready);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  test_server_stop(&peer);
  return 0;
}

static authloop_client *client(test_env *e, const char *id, const char *sec, const char *scope) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "oidc";
  o.base_url = issuer;
  o.client_id = id;
  o.client_secret = sec;
  o.scope = scope;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

/* The scripted user, at the OP's verification page with the code: now, or
 * (later) once authloop has polled with it once. */
static void user_acts_when(const authloop_client *c, const char *login, int deny, int later) {
  const authloop_login_prompt *p = authloop_login_prompt_of(c);
  char body[256];
  json_t *r;
  assert_non_null(p);
  snprintf(body, sizeof(body),
           "{\"user_code\":\"%s\",\"login\":\"%s\",\"deny\":%s,\"after_first_poll\":%s}",
           p->user_code, login, deny ? "true" : "false", later ? "true" : "false");
  r = test_control(&peer, "/__user/device", body);
  assert_non_null(json_object_get(r, "page"));
  json_decref(r);
}

static void user_acts(const authloop_client *c, const char *login, int deny) {
  user_acts_when(c, login, deny, 0);
}

static long polls_of(const char *client_id, long long *gap_ms) {
  json_t *s = test_control(&peer, "/__test/stats", NULL);
  json_t *p = json_object_get(json_object_get(s, "polls"), client_id);
  long n = (long)json_array_size(p);
  if (gap_ms && n >= 2)
    *gap_ms =
        json_integer_value(json_array_get(p, n - 1)) - json_integer_value(json_array_get(p, n - 2));
  json_decref(s);
  return n;
}

static const char *refresh_token(const authloop_client *c) { return c->session.refresh_token; }

static long stat_of(const char *name) {
  json_t *s = test_control(&peer, "/__test/stats", NULL);
  long n = (long)json_integer_value(json_object_get(s, name));
  json_decref(s);
  return n;
}

/* A device login from the prompt to the tokens; the user is the id token's
 * claims. */
static authloop_client *device_login(test_env *e, test_recorder *r, const char *id,
                                     const char *sec) {
  authloop_client *c = client(e, id, sec, "openid offline_access profile email");
  const authloop_login_prompt *p;
  test_record(c, r);
  assert_int_equal(authloop_login_device(c), 0);
  assert_null(authloop_login_prompt_of(c));
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
  p = authloop_login_prompt_of(c);
  assert_non_null(p);
  assert_true(strncmp(p->verification_uri, issuer, strlen(issuer)) == 0);
  assert_non_null(strstr(p->verification_uri_complete, p->user_code));
  assert_int_equal(p->expires_in, 600);
  assert_int_equal(p->interval, 1); /* the test OP's */
  user_acts(c, "alice", 0);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 12000);
  return c;
}

/* A client made with o, logged in by a device login the scripted user
 * approves at once. */
static authloop_client *logged_in_by_device(test_env *e, test_recorder *r,
                                            const authloop_client_options *o) {
  authloop_client *c = NULL;
  assert_int_equal(authloop_client_new(e->ctx, o, &c), 0);
  test_record(c, r);
  assert_int_equal(authloop_login_device(c), 0);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
  user_acts(c, "alice", 0);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 12000);
  assert_true(r->last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  return c;
}

static void device_login_and_logout(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  const authloop_user *u;
  char *rt, body[2048];
  const char *url;
  json_t *res;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = device_login(&e, &r, "confidential", secret);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_string_equal(r.trace, "stateChanged:LOGGED_OUT>LOGGING_IN;loginPrompt:ok;"
                               "stateChanged:LOGGING_IN>LOGGED_IN;loginAttempt:ok;");
  assert_null(authloop_login_prompt_of(c)); /* the login is over */
  u = authloop_current_user(c);
  assert_string_equal(authloop_user_id(u), "alice");
  assert_string_equal(authloop_user_name(u), "Alice Liddell");
  assert_string_equal(authloop_user_field(u, "iss"), issuer);
  assert_string_equal(authloop_user_field(u, "aud"), "confidential");
  assert_non_null(authloop_id_token(c));
  assert_non_null(refresh_token(c));
  assert_int_equal(authloop_token_lifetime(c), 3600);
  /* one poll: the user was done before it */
  assert_int_equal(polls_of("confidential", NULL), 1);

  /* logout revokes the refresh token at the OP (its introspection says
   * inactive) and gives the end-session URL */
  rt = strdup(refresh_token(c));
  snprintf(body, sizeof(body), "{\"token\":\"%s\"}", rt);
  res = test_control(&peer, "/__test/introspect", body);
  assert_true(json_is_true(json_object_get(res, "active")));
  json_decref(res);
  assert_null(authloop_end_session_url(c));
  assert_int_equal(authloop_logout(c), 0);
  url = authloop_end_session_url(c);
  assert_non_null(url);
  assert_true(strncmp(url, issuer, strlen(issuer)) == 0);
  assert_non_null(strstr(url, "/session/end?id_token_hint="));
  assert_non_null(strstr(url, "&client_id=confidential"));
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  res = test_control(&peer, "/__test/introspect", body);
  assert_true(json_is_false(json_object_get(res, "active")));
  json_decref(res);
  /* a new login forgets it; and read before the client goes, it stays
   * readable until the loop turns */
  url = authloop_end_session_url(c);
  assert_non_null(url);
  assert_int_equal(authloop_login_device(c), 0);
  assert_null(authloop_end_session_url(c));
  assert_true(strlen(url) > 0);
  authloop_client_free(c);
  assert_true(strlen(url) > 0);
  free(rt);
  test_env_close(&e);
}

/* Four device logins at once: the user says no; nobody comes before the
 * code expires (3 s codes); the first poll is told slow_down and the next
 * comes 5 s later than the interval; the first poll meets a 503 and the
 * login goes on, polling slower (RFC 8628 3.5). */
static void device_denied_expired_slowed(void **state) {
  test_env e;
  test_recorder rd, rx, rs, rf;
  authloop_client *d, *x, *s, *f;
  long long gap = 0, fgap = 0;
  (void)state;
  test_env_init(&e, &peer, NULL);
  d = client(&e, "public", NULL, NULL);
  x = client(&e, "expiring", NULL, NULL);
  s = client(&e, "slow", NULL, NULL);
  f = client(&e, "flaky", NULL, NULL);
  test_record(d, &rd);
  test_record(x, &rx);
  test_record(s, &rs);
  test_record(f, &rf);
  assert_int_equal(authloop_login_device(d), 0);
  assert_int_equal(authloop_login_device(x), 0);
  assert_int_equal(authloop_login_device(s), 0);
  assert_int_equal(authloop_login_device(f), 0);
  test_run_until(&e, &rf.count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
  test_run_until(&e, &rd.count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
  test_run_until(&e, &rs.count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
  test_run_until(&e, &rx.count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
  assert_int_equal(authloop_login_prompt_of(x)->expires_in, 3);
  user_acts(d, "bob", 1);
  /* the users of "slow" and "flaky" act after their first poll: slow_down
   * for the one, a 503 for the other */
  user_acts_when(s, "bob", 0, 1);
  user_acts_when(f, "alice", 0, 1);
  test_run_until(&e, &rx.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 8000);
  test_run_until(&e, &rd.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 8000);
  test_run_until(&e, &rs.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 14000);
  test_run_until(&e, &rf.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 14000);
  assert_true(rf.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success); /* a 503 ended nothing */
  assert_int_equal(polls_of("flaky", &fgap), 2);
  assert_true(fgap >= 2000 - 200); /* the interval doubled */

  assert_false(rd.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(rd.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EREJECTED);
  assert_string_equal(rd.last_server_code[AUTHLOOP_EV_LOGIN_ATTEMPT], "access_denied");
  assert_false(rx.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_string_equal(rx.last_server_code[AUTHLOOP_EV_LOGIN_ATTEMPT], "expired_token");
  assert_true(rs.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(polls_of("slow", &gap), 2);
  assert_true(gap >= 6000 - 200); /* interval 1 s + 5 s */
  assert_int_equal(authloop_client_state(d), AUTHLOOP_STATE_LOGGED_OUT);
  test_env_close(&e);
}

/* Cancelled between polls: loginAttempt ECANCELED, and no poll comes. */
static void device_login_cancelled(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  const char *code;
  long before = polls_of("public", NULL);
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = client(&e, "public", NULL, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_cancel(c), AUTHLOOP_EINVAL); /* no login */
  assert_int_equal(authloop_login_device(c), 0);
  assert_int_equal(authloop_login_device(c), AUTHLOOP_ELOGININPROGRESS);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
  code = authloop_login_prompt_of(c)->user_code;
  assert_int_equal(authloop_login_cancel(c), 0);
  /* the code read before stays readable until the loop turns */
  assert_true(strlen(code) > 0);
  assert_null(authloop_login_prompt_of(c));
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 0); /* not from inside the call */
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 1000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECANCELED);
  assert_null(authloop_login_prompt_of(c));
  test_env_close(&e); /* nothing of the login is left to keep the loop */
  assert_int_equal(polls_of("public", NULL), before);
}

/* The ctx closes while a device login waits between polls. */
static void close_during_device_login(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = client(&e, "public", NULL, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_device(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
  test_env_close(&e);
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECANCELED);
}

/* The client freed, the ctx closed, or both, from inside the loginPrompt
 * handler: the login ends quietly (a freed client hears nothing) or with
 * its loginAttempt ECANCELED, the close completes, nothing is touched after
 * (ASan and valgrind run this too). */
typedef struct {
  test_env *e;
  int deed; /* 1: free the client; 2: close the ctx; 3: both */
  int prompts, closed;
} prompt_deed;

static void prompt_deed_closed(authloop_ctx *ctx, void *ud) {
  (void)ctx;
  ((prompt_deed *)ud)->closed++;
}

static void prompt_deed_cb(authloop_client *c, const authloop_event *ev, void *ud) {
  prompt_deed *p = ud;
  (void)ev;
  p->prompts++;
  if (p->deed & 1)
    authloop_client_free(c);
  if (p->deed & 2)
    assert_int_equal(authloop_ctx_close(p->e->ctx, prompt_deed_closed, p), 0);
}

static void free_or_close_from_login_prompt(void **state) {
  int deed;
  (void)state;
  for (deed = 1; deed <= 3; deed++) {
    test_env e;
    test_recorder r;
    prompt_deed p = {0};
    authloop_client *c;
    p.e = &e;
    p.deed = deed;
    test_env_init(&e, &peer, NULL);
    c = client(&e, "public", NULL, NULL);
    test_record(c, &r);
    assert_true(authloop_on(c, AUTHLOOP_EV_LOGIN_PROMPT, prompt_deed_cb, &p) > 0);
    assert_int_equal(authloop_login_device(c), 0);
    test_run_until(&e, &p.prompts, 1, 5000);
    if (deed & 2) { /* closing: the loop ends by itself */
      uv_close((uv_handle_t *)&e.watchdog, NULL);
      assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
      assert_int_equal(p.closed, 1);
      assert_int_equal(uv_loop_close(&e.loop), 0);
    } else {
      test_run_turns(&e, 3);
      test_env_close(&e);
    }
    assert_int_equal(p.prompts, 1);
    /* a freed client hears nothing more; one only closed hears its end */
    assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], deed == 2 ? 1 : 0);
    if (deed == 2)
      assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECANCELED);
  }
}

/* Tokens of SHORT_S seconds, refreshed by the timer while the user is
 * active; the OP rotates the refresh token at every use, and never sees one
 * used twice. A refresh for another user is refused. Then the grant is
 * revoked at the OP: the next refresh is refused for good. */
static void refresh_rotation_and_revocation(void **state) {
  test_env e;
  test_recorder r;
  test_done d = {0, 0};
  authloop_client *c;
  char *first_rt, *first_at;
  json_t *s, *res;
  char body[4096];
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = device_login(&e, &r, "short", secret);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(authloop_token_lifetime(c), SHORT_S);
  first_rt = strdup(refresh_token(c));
  first_at = strdup(authloop_access_token(c));
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 2, SHORT_S * 2000);
  assert_string_not_equal(refresh_token(c), first_rt); /* rotated */
  assert_string_not_equal(authloop_access_token(c), first_at);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "alice");
  s = test_control(&peer, "/__test/stats", NULL);
  assert_int_equal(json_integer_value(json_object_get(s, "reuse")), 0);
  json_decref(s);
  /* the first refresh token was used once: the OP says it is no more */
  snprintf(body, sizeof(body), "{\"token\":\"%s\"}", first_rt);
  res = test_control(&peer, "/__test/introspect", body);
  assert_true(json_is_false(json_object_get(res, "active")));
  json_decref(res);

  /* a refresh whose id token is another user's is refused; the session
   * stays the user's (the OP rotated the refresh token it answered with:
   * the kept one is now used up, which the next step shows) */
  free(first_at);
  first_at = strdup(authloop_access_token(c));
  json_decref(test_control(&peer, "/__test/tamper", "{\"mode\":\"sub\"}"));
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  json_decref(test_control(&peer, "/__test/tamper", "{\"mode\":\"\"}"));
  assert_int_equal(d.status, AUTHLOOP_EPROTO);
  assert_string_equal(authloop_access_token(c), first_at);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "alice");
  d.count = 0;

  /* revoked at the OP by someone else: the refresh is refused for good */
  snprintf(body, sizeof(body), "{\"token\":\"%s\",\"client_id\":\"short\"}", refresh_token(c));
  json_decref(test_control(&peer, "/__test/revoke", body));
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, AUTHLOOP_EREVOKED);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  assert_false(authloop_is_logged_in(c));
  free(first_rt);
  free(first_at);
  test_env_close(&e);
}

/* A token answer without expires_in and an opaque access token (RFC 6749
 * 5.1 only recommends expires_in): a lifetime nobody knows, so no timer
 * refreshes it; but the refresh token renews it when the app asks. */
static void tokens_of_unknown_lifetime(void **state) {
  long tokens, unavailable;
  test_env e;
  test_recorder r;
  test_done d = {0, 0};
  authloop_client *c;
  char *rt, *at;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = device_login(&e, &r, "unknown-lifetime", NULL);
  unavailable = stat_of("unavailable");
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(authloop_token_lifetime(c), -1);
  assert_non_null(refresh_token(c));
  rt = strdup(refresh_token(c));
  at = strdup(authloop_access_token(c));
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  assert_string_not_equal(refresh_token(c), rt); /* rotated: the OP answered */
  assert_string_not_equal(authloop_access_token(c), at);
  assert_int_equal(authloop_token_lifetime(c), -1);

  /* a refresh asked for that fails (a 503 before the OP) is that call's
   * answer: nothing is tried again behind it, however active the user (the
   * idle user: unknown_lifetime_in_an_outage) */
  d.count = 0;
  tokens = stat_of("token_requests");
  json_decref(test_control(&peer, "/__test/unavailable", "{\"count\":1}"));
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, AUTHLOOP_EUNAVAILABLE);
  assert_int_equal(stat_of("unavailable"), unavailable + 1);
  assert_int_equal(authloop_touch(c), 0);
  test_run_for(&e, 3000); /* the first retries would come within it */
  assert_int_equal(stat_of("unavailable"), unavailable + 1);
  assert_int_equal(stat_of("token_requests"), tokens);
  assert_true(authloop_is_logged_in(c));
  /* and the next one asked for goes */
  d.count = 0;
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  free(rt);
  free(at);
  test_env_close(&e);
}

/* A token of unknown lifetime while the token endpoint is down (a 503
 * before the OP) and its access token is dead (401s): the first 401 tries
 * one refresh, the next ones, seconds later, are answered as they are (not
 * a refresh each); and when the user goes idle nothing is tried or warned
 * of behind the application's back. */
static int unavailable_off(void **state) {
  (void)state; /* whatever became of the test */
  json_decref(test_control(&peer, "/__test/unavailable", "{\"count\":0}"));
  return 0;
}

static void unknown_lifetime_in_an_outage(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  authloop_client *c = NULL;
  char body[4096];
  long before, tokens;
  int i;
  (void)state;
  test_env_init(&e, &peer, NULL);
  o.provider = "oidc";
  o.base_url = issuer;
  o.client_id = "unknown-lifetime";
  o.scope = "openid offline_access profile email";
  o.idle_window_s = 1;
  c = logged_in_by_device(&e, &r, &o);
  assert_int_equal(authloop_token_lifetime(c), -1);
  snprintf(body, sizeof(body), "{\"token\":\"%s\",\"client_id\":\"unknown-lifetime\"}",
           authloop_access_token(c));
  json_decref(test_control(&peer, "/__test/revoke", body)); /* the userinfo says 401 */
  json_decref(test_control(&peer, "/__test/unavailable", "{\"count\":1000}"));
  before = stat_of("unavailable");
  tokens = stat_of("token_requests");
  for (i = 0; i < 5; i++) {
    test_reply rep = {0, 0, 0};
    assert_int_equal(authloop_request(c, "GET", "/me", NULL, test_reply_cb, &rep), 0);
    test_run_until(&e, &rep.count, 1, 5000);
    /* the first waits for the refresh it started and gets its failure;
     * the next have the 401 */
    assert_int_equal(rep.status, i == 0 ? AUTHLOOP_EUNAVAILABLE : 0);
    if (i > 0)
      assert_int_equal(rep.http, 401);
  }
  assert_int_equal(stat_of("unavailable"), before + 1); /* one refresh tried, not five */
  test_run_for(&e, 3000);                               /* idle after the first second */
  assert_int_equal(stat_of("unavailable"), before + 1);
  assert_int_equal(stat_of("token_requests"), tokens);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_EXPIRING], 0);
  assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  json_decref(test_control(&peer, "/__test/unavailable", "{\"count\":0}"));
  authloop_client_free(c);
  test_env_close(&e);
}

/* Each way an id token can be wrong (the OP's real answer, its id token
 * rewritten for clients "tamper-MODE"): the login is refused with EPROTO and
 * nobody is logged in. And an ES256 id token (client "es256") is good. */
static void id_tokens_refused(void **state) {
  /* ("sub" is no fault at a login: there is no subject yet to keep) */
  static const char *const modes[] = {"signature",   "aud",  "iss",  "expired",
                                      "unknown-kid", "none", "hs256"};
  enum { N = sizeof(modes) / sizeof(modes[0]) };
  test_env e;
  test_recorder r[N + 1];
  authloop_client *c[N + 1];
  char id[64];
  long jwks_before;
  json_t *s;
  size_t i;
  (void)state;
  s = test_control(&peer, "/__test/stats", NULL);
  jwks_before = (long)json_integer_value(json_object_get(s, "jwks_requests"));
  json_decref(s);
  test_env_init(&e, &peer, NULL);
  for (i = 0; i <= N; i++) {
    snprintf(id, sizeof(id), i < N ? "tamper-%s" : "es256", i < N ? modes[i] : "");
    c[i] = client(&e, id, NULL, "openid profile");
    test_record(c[i], &r[i]);
    assert_int_equal(authloop_login_device(c[i]), 0);
  }
  for (i = 0; i <= N; i++) {
    test_run_until(&e, &r[i].count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
    user_acts(c[i], "bob", 0);
  }
  for (i = 0; i <= N; i++)
    test_run_until(&e, &r[i].count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 12000);
  for (i = 0; i < N; i++) {
    assert_int_equal(r[i].last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EPROTO);
    assert_non_null(strstr(r[i].last_message[AUTHLOOP_EV_LOGIN_ATTEMPT], "id token"));
    assert_false(authloop_is_logged_in(c[i]));
    assert_null(authloop_access_token(c[i]));
  }
  assert_true(r[N].last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_string_equal(authloop_user_id(authloop_current_user(c[N])), "bob");
  /* one set of keys per client: the unknown kid did not make one fetch
   * more, the keys being fresh */
  s = test_control(&peer, "/__test/stats", NULL);
  assert_int_equal(json_integer_value(json_object_get(s, "jwks_requests")) - jwks_before, N + 1);
  json_decref(s);
  test_env_close(&e);
}

static authloop_client *browser_client(test_env *e, const char *id, const char *sec,
                                       const char *redirect) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "oidc";
  o.base_url = issuer;
  o.client_id = id;
  o.client_secret = sec;
  o.scope = "openid offline_access profile email";
  o.redirect_uri = redirect;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

/* The scripted user follows the authorization URL on the OP's pages: the
 * redirect it ends in (the app's redirect URI, with a code or an error). */
static char *user_authorizes(const char *url, int deny) {
  json_t *req = json_pack("{s:s, s:s, s:b}", "url", url, "login", "alice", "deny", deny);
  char *body = json_dumps(req, JSON_COMPACT), *location;
  json_t *r = test_control(&peer, "/__user/authorize", body);
  assert_non_null(json_string_value(json_object_get(r, "location")));
  location = strdup(json_string_value(json_object_get(r, "location")));
  json_decref(r);
  json_decref(req);
  free(body);
  return location;
}

/* Waits for the authorization URL: the login is then AWAITING_TOKEN. */
static const char *authorization_url(test_env *e, authloop_client *c, test_recorder *r) {
  const char *url;
  int before = r->count[AUTHLOOP_EV_STATE_CHANGED];
  assert_int_equal(authloop_login_browser(c), 0);
  test_run_until(e, &r->count[AUTHLOOP_EV_STATE_CHANGED], before + 2, 5000);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_AWAITING_TOKEN);
  url = authloop_login_redirect(c);
  assert_non_null(url);
  return url;
}

/* Code flow with PKCE (RFC 7636, RFC 8252): a custom-scheme redirect for a
 * public client; a redirect with another state, or naming another issuer,
 * is refused and the login waits on; the right one logs in. */
static void browser_login(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  const char *url;
  char *location, *forged, *at;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = browser_client(&e, "public", NULL, "com.example.authloop:/callback");
  test_record(c, &r);
  url = authorization_url(&e, c, &r);
  assert_true(strncmp(url, issuer, strlen(issuer)) == 0);
  assert_non_null(strstr(url, "code_challenge_method=S256"));
  assert_non_null(strstr(url, "redirect_uri=com.example.authloop%3A%2Fcallback"));
  assert_non_null(strstr(url, "prompt=consent"));
  location = user_authorizes(url, 0);
  assert_true(strncmp(location, "com.example.authloop:/callback?", 31) == 0);

  /* the same redirect with another state: not this login's */
  forged = strdup(location);
  at = strstr(forged, "state=");
  assert_non_null(at);
  at[6] = at[6] == 'A' ? 'B' : 'A';
  assert_int_equal(authloop_login_callback(c, forged), AUTHLOOP_EINVAL);
  free(forged);
  /* another issuer's (a mix-up, RFC 9207) */
  forged = malloc(strlen(location) + 64);
  sprintf(forged, "%s&iss=https%%3A%%2F%%2Fevil.example", location);
  assert_int_equal(authloop_login_callback(c, forged), AUTHLOOP_EINVAL);
  free(forged);
  assert_int_equal(authloop_login_callback(c, "com.example.other:/callback?code=x&state=y"),
                   AUTHLOOP_EINVAL);
  /* authloop_set_token() is the same call for this dialect, with its own
   * promises for what no redirect can be */
  assert_int_equal(authloop_set_token(c, NULL), AUTHLOOP_EBLANKAUTHTOKEN);
  assert_int_equal(authloop_set_token(c, ""), AUTHLOOP_EBLANKAUTHTOKEN);
  assert_int_equal(authloop_set_token(c, "a b"), AUTHLOOP_EAUTHTOKENSPACE);
  assert_int_equal(authloop_set_token(c, "com.example.authloop:/callback?\x01"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_AWAITING_TOKEN);
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 0);

  assert_int_equal(authloop_login_callback(c, location), 0);
  assert_int_equal(authloop_login_callback(c, location), AUTHLOOP_ELOGININPROGRESS);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "alice");
  assert_non_null(authloop_user_field(authloop_current_user(c), "nonce"));
  assert_non_null(refresh_token(c)); /* offline_access, consented */
  assert_null(authloop_login_redirect(c));
  /* the code was used: the same redirect again is no login of this client */
  assert_int_equal(authloop_login_callback(c, location), AUTHLOOP_EINVAL);
  free(location);
  test_env_close(&e);
}

/* A close while a browser login waits for its redirect ends it, with its
 * one loginAttempt. */
static void close_during_browser_login(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = browser_client(&e, "public", NULL, "com.example.authloop:/callback");
  test_record(c, &r);
  (void)authorization_url(&e, c, &r);
  test_env_close(&e);
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECANCELED);
}

/* A confidential client on a loopback redirect; the user says no; a token
 * with another nonce (a replay) is refused. */
static void browser_denied_and_nonce(void **state) {
  test_env e;
  test_recorder r, rn, rd;
  authloop_client *c, *n, *d;
  char *location;
  long discovery = stat_of("discovery_requests"), jwks = stat_of("jwks_requests");
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = browser_client(&e, "confidential", secret, "http://127.0.0.1/callback");
  n = browser_client(&e, "tamper-nonce", NULL, "http://127.0.0.1/callback");
  d = browser_client(&e, "public", NULL, "http://127.0.0.1/callback");
  test_record(c, &r);
  test_record(n, &rn);
  test_record(d, &rd);

  location = user_authorizes(authorization_url(&e, c, &r), 0);
  assert_int_equal(authloop_login_callback(c, location), 0);
  free(location);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);

  location = user_authorizes(authorization_url(&e, n, &rn), 0);
  assert_int_equal(authloop_login_callback(n, location), 0);
  free(location);
  test_run_until(&e, &rn.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_int_equal(rn.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EPROTO);
  assert_non_null(strstr(rn.last_message[AUTHLOOP_EV_LOGIN_ATTEMPT], "nonce"));

  location = user_authorizes(authorization_url(&e, d, &rd), 1);
  assert_non_null(strstr(location, "error=access_denied"));
  assert_int_equal(authloop_login_callback(d, location), 0);
  assert_int_equal(rd.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 0); /* not from inside the call */
  free(location);
  test_run_until(&e, &rd.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_int_equal(rd.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EREJECTED);
  assert_string_equal(rd.last_server_code[AUTHLOOP_EV_LOGIN_ATTEMPT], "access_denied");
  assert_false(authloop_is_logged_in(d));
  /* three clients of one ctx and issuer, one after the other: the issuer's
   * discovery and keys were fetched once */
  assert_int_equal(stat_of("discovery_requests") - discovery, 1);
  assert_int_equal(stat_of("jwks_requests") - jwks, 1);
  test_env_close(&e);
}

/* A session restored from its file (another run): the ctx never saw the
 * issuer, so its refresh and its logout first fetch what they need (the
 * discovery, the keys), then go as in the run that logged in. And a refresh
 * whose id token is signed by a key not had (a rotation at the OP) keeps the
 * session: it came from the token endpoint over TLS. */
static void restored_session_and_key_rotation(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  char dir[256], path[300], body[4096], *rt;
  test_env e;
  test_recorder r;
  test_done d = {0, 0};
  authloop_client *c;
  long discovery, jwks, reuse;
  json_t *res;
  (void)state;
  test_make_tmpdir(dir, sizeof(dir), "oidc-session");
  snprintf(path, sizeof(path), "%s/session", dir);
  test_env_init(&e, &peer, NULL);
  o.provider = "oidc";
  o.base_url = issuer;
  o.client_id = "public";
  o.session_path = path;
  c = logged_in_by_device(&e, &r, &o);
  /* a bad signature by a key the ctx has (its login fetched them) is
   * refused; the refresh token the OP rotated all the same is kept, so the
   * next refresh uses the new one: the OP sees no reuse */
  json_decref(test_control(&peer, "/__test/tamper", "{\"mode\":\"signature\"}"));
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  json_decref(test_control(&peer, "/__test/tamper", "{\"mode\":\"\"}"));
  assert_int_equal(d.status, AUTHLOOP_EPROTO);
  reuse = stat_of("reuse");
  d.count = 0;
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(stat_of("reuse"), reuse);
  test_run_until_stored(&e, 5000);
  test_env_close(&e);

  /* a new run on the kept session: its refreshes and its logout need the
   * issuer's discovery, never its keys (a key set that cannot be fetched
   * must not keep a session from refreshing nor a logout from revoking) */
  discovery = stat_of("discovery_requests");
  jwks = stat_of("jwks_requests");
  test_env_init(&e, &peer, NULL);
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  assert_true(authloop_is_logged_in(c)); /* restored, no network yet */
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "alice");
  d.count = 0;
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(stat_of("discovery_requests") - discovery, 1);

  /* the OP signs with a key the ctx does not have */
  json_decref(test_control(&peer, "/__test/tamper", "{\"mode\":\"unknown-kid\"}"));
  d.count = 0;
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  json_decref(test_control(&peer, "/__test/tamper", "{\"mode\":\"\"}"));
  assert_int_equal(d.status, 0);
  assert_true(authloop_is_logged_in(c));
  /* its claims are checked all the same */
  json_decref(test_control(&peer, "/__test/tamper", "{\"mode\":\"aud\"}"));
  d.count = 0;
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  json_decref(test_control(&peer, "/__test/tamper", "{\"mode\":\"\"}"));
  assert_int_equal(d.status, AUTHLOOP_EPROTO);
  test_run_until_stored(&e, 5000);
  test_env_close(&e);

  /* a third run logs out: the discovery first, then the revocation */
  test_env_init(&e, &peer, NULL);
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  rt = strdup(refresh_token(c));
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  assert_non_null(authloop_end_session_url(c));
  assert_int_equal(stat_of("jwks_requests"), jwks);
  snprintf(body, sizeof(body), "{\"token\":\"%s\"}", rt);
  res = test_control(&peer, "/__test/introspect", body);
  assert_true(json_is_false(json_object_get(res, "active")));
  json_decref(res);
  free(rt);
  test_env_close(&e);
  test_remove_tree(dir);
}

/* What the login queries hand out stays as it was until the loop turns, as
 * the header promises, whatever ends the login in between: the browser
 * login's URL after a cancel or a free, the device login's prompt (the
 * struct and its strings) after a cancel or a free. ASan and valgrind run
 * this too; a plain build sees the freed bytes change. */
static void login_queries_outlive_the_login(void **state) {
  int deed;
  (void)state;
  for (deed = 0; deed < 4; deed++) { /* browser cancel, browser free, device cancel, device free */
    test_env e;
    test_recorder r;
    authloop_client *c;
    int browser = deed < 2, freeing = deed % 2;
    test_env_init(&e, &peer, NULL);
    if (browser) {
      const char *url;
      char *copy;
      c = browser_client(&e, "public", NULL, "com.example.authloop:/callback");
      test_record(c, &r);
      url = authorization_url(&e, c, &r);
      copy = strdup(url);
      if (freeing)
        authloop_client_free(c);
      else
        assert_int_equal(authloop_login_cancel(c), 0);
      assert_string_equal(url, copy);
      if (!freeing)
        assert_null(authloop_login_redirect(c));
      free(copy);
    } else {
      const authloop_login_prompt *p;
      char *uri, *code;
      c = client(&e, "public", NULL, NULL);
      test_record(c, &r);
      assert_int_equal(authloop_login_device(c), 0);
      test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
      p = authloop_login_prompt_of(c);
      assert_non_null(p);
      uri = strdup(p->verification_uri);
      code = strdup(p->user_code);
      if (freeing)
        authloop_client_free(c);
      else
        assert_int_equal(authloop_login_cancel(c), 0);
      assert_non_null(p->verification_uri);
      assert_non_null(p->user_code);
      assert_string_equal(p->verification_uri, uri);
      assert_string_equal(p->user_code, code);
      assert_int_equal(p->interval, 1);
      if (!freeing)
        assert_null(authloop_login_prompt_of(c));
      free(uri);
      free(code);
    }
    if (!freeing) {
      test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 1000);
      assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECANCELED);
    }
    test_env_close(&e);
  }
}

/* A restored session logs out, which needs the issuer's discovery first, and
 * a new login begins at once: the end-session URL that logout makes once
 * discovery answers is the old session's, and is not kept ("NULL once a new
 * login begins"). Without the new login it is (the control), and so it is
 * after a login call refused at once, which begins nothing. */
static void end_session_url_after_a_new_login(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  char dir[256], path[300];
  int again;
  (void)state;
  test_make_tmpdir(dir, sizeof(dir), "oidc-end-session");
  snprintf(path, sizeof(path), "%s/session", dir);
  o.provider = "oidc";
  o.base_url = issuer;
  o.client_id = "public";
  o.session_path = path;
  for (again = 0; again < 3; again++) { /* 0: no login; 1: a login; 2: one refused at once */
    test_env e;
    test_recorder r;
    authloop_client *c;
    test_env_init(&e, &peer, NULL);
    c = logged_in_by_device(&e, &r, &o);
    test_run_until_stored(&e, 5000);
    test_env_close(&e);

    test_env_init(&e, &peer, NULL); /* a new run: the issuer not yet discovered */
    assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
    test_record(c, &r);
    assert_true(authloop_is_logged_in(c));
    assert_int_equal(authloop_logout(c), 0);
    assert_null(authloop_end_session_url(c)); /* discovery first */
    if (again == 1)
      assert_int_equal(authloop_login_device(c), 0);
    else if (again == 2)
      assert_int_equal(authloop_login_code(c, "x"), AUTHLOOP_EWRONGPROVIDER);
    test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
    assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
    if (again == 1) {
      test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_PROMPT], 1, 5000);
      assert_null(authloop_end_session_url(c));
    } else {
      assert_non_null(authloop_end_session_url(c));
    }
    test_env_close(&e);
  }
  test_remove_tree(dir);
}

/* The user from the userinfo endpoint (Core 5.3), when asked for: its
 * claims, not the id token's (no aud, no iss), the same sub. */
static void user_from_userinfo(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  authloop_client *c = NULL;
  const authloop_user *u;
  char *location;
  (void)state;
  test_env_init(&e, &peer, NULL);
  o.provider = "oidc";
  o.base_url = issuer;
  o.client_id = "public";
  o.scope = "openid offline_access profile email";
  o.redirect_uri = "http://127.0.0.1/callback";
  o.userinfo = 2;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.userinfo = 1;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  location = user_authorizes(authorization_url(&e, c, &r), 0);
  assert_int_equal(authloop_login_callback(c, location), 0);
  free(location);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  u = authloop_current_user(c);
  assert_string_equal(authloop_user_id(u), "alice");
  assert_string_equal(authloop_user_name(u), "Alice Liddell");
  assert_string_equal(authloop_user_field(u, "email"), "alice@example.test");
  assert_null(authloop_user_field(u, "aud")); /* not the id token's claims */
  assert_null(authloop_user_field(u, "iss"));
  /* a refresh keeps that user: the new id token's claims do not replace it */
  {
    test_done d = {0, 0};
    assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
    test_run_until(&e, &d.count, 1, 5000);
    assert_int_equal(d.status, 0);
    assert_null(authloop_user_field(authloop_current_user(c), "aud"));
    assert_string_equal(authloop_user_name(authloop_current_user(c)), "Alice Liddell");
  }

  /* a redirect taken while the network is gone: the code cannot be
   * exchanged, and the login ends (one loginAttempt), not left waiting */
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  location = user_authorizes(authorization_url(&e, c, &r), 0);
  assert_int_equal(authloop_ctx_set_online(e.ctx, 0), 0);
  assert_int_equal(authloop_login_callback(c, location), 0);
  free(location);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 2, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EOFFLINE);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);
  assert_int_equal(authloop_ctx_set_online(e.ctx, 1), 0);
  test_env_close(&e);
}

/* Endpoints whose discovery names a policy in their query (a router in
 * front of the OP, "?p=NAME"; RFC 6749 3.1 and 3.2 let an endpoint carry a
 * query, which is kept): a browser login with its code exchange and the user
 * from the userinfo endpoint, a refresh, a logout revoking the refresh token and
 * the end-session URL, then a device login, all with the policy named, or
 * the router would refuse them. */
static int policy_off(void **state) {
  (void)state; /* whatever became of the test */
  json_decref(test_control(&peer, "/__test/policy", "{\"p\":\"\"}"));
  return 0;
}

static void endpoints_naming_a_policy(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_env e;
  test_recorder r, rd;
  test_done d = {0, 0};
  authloop_client *c;
  const char *url;
  char *location, *rt, body[4096];
  json_t *s, *res;
  long named;
  (void)state;
  json_decref(test_control(&peer, "/__test/policy", "{\"p\":\"b2c_1_signin\"}"));
  named = stat_of("policy_named");
  test_env_init(&e, &peer, NULL);
  o.provider = "oidc";
  o.base_url = issuer;
  o.client_id = "public";
  o.scope = "openid offline_access profile email";
  o.redirect_uri = "com.example.authloop:/callback";
  o.userinfo = 1;
  c = NULL;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  url = authorization_url(&e, c, &r);
  assert_true(strncmp(url, issuer, strlen(issuer)) == 0);
  assert_true(strncmp(url + strlen(issuer), "/auth?p=b2c_1_signin&response_type=code&", 40) == 0);
  location = user_authorizes(url, 0);
  assert_int_equal(authloop_login_callback(c, location), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_string_equal(authloop_user_id(authloop_current_user(c)), "alice");
  /* the userinfo endpoint's answer, not the id token's claims */
  assert_string_equal(authloop_user_field(authloop_current_user(c), "email"), "alice@example.test");
  assert_null(authloop_user_field(authloop_current_user(c), "aud"));
  /* jwks, the code exchange, the userinfo */
  assert_true(stat_of("policy_named") >= named + 4);
  rt = strdup(refresh_token(c));
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_string_not_equal(refresh_token(c), rt); /* rotated: the OP answered */
  free(rt);
  rt = strdup(refresh_token(c));
  assert_int_equal(authloop_logout(c), 0);
  url = authloop_end_session_url(c);
  assert_non_null(url);
  assert_true(strncmp(url + strlen(issuer), "/session/end?p=b2c_1_signin&id_token_hint=", 42) == 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  snprintf(body, sizeof(body), "{\"token\":\"%s\"}", rt);
  res = test_control(&peer, "/__test/introspect", body);
  assert_true(json_is_false(json_object_get(res, "active"))); /* revoked */
  json_decref(res);
  free(rt);
  free(location);
  authloop_client_free(c);

  /* the device login: its authorization request and its polls */
  c = device_login(&e, &rd, "public", NULL);
  assert_true(rd.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  s = test_control(&peer, "/__test/stats", NULL);
  assert_int_equal(json_integer_value(json_object_get(s, "policy_refused")), 0);
  json_decref(s);
  test_env_close(&e);
}

/* Discovery says another issuer (the same server named otherwise): refused. */
static void discovery_of_another_issuer(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  authloop_client *c = NULL;
  char other[128];
  (void)state;
  snprintf(other, sizeof(other), "https://localhost:%d", peer.port);
  test_env_init(&e, &peer, NULL);
  o.provider = "oidc";
  o.base_url = other;
  o.client_id = "public";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  assert_int_equal(authloop_login_device(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EPROTO);
  assert_non_null(strstr(r.last_message[AUTHLOOP_EV_LOGIN_ATTEMPT], "another issuer"));
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_PROMPT], 0);
  test_env_close(&e);
}

static void options(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_env e;
  authloop_client *c = NULL;
  (void)state;
  test_env_init(&e, &peer, NULL);
  o.provider = "oidc";
  o.base_url = issuer;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL); /* no client id */
  o.client_id = "public";
  o.scope = "openid\r\nX: y";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.scope = NULL;
  o.client_secret = "";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.client_secret = NULL;
  o.app_id = "x";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.app_id = NULL;
  /* the endpoints come from discovery: no path option, each refused */
  o.login_path = "/login";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.login_path = NULL;
  o.logout_path = "/logout";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.logout_path = NULL;
  o.refresh_path = "/token";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.refresh_path = NULL;
  o.base_url = "http://op.example";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINSECURE);
  o.base_url = issuer;
  o.redirect_uri = "https://app.example/cb#frag";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.redirect_uri = "no-scheme";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.redirect_uri = NULL;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  assert_int_equal(authloop_login_code(c, "x"), AUTHLOOP_EWRONGPROVIDER);
  assert_int_equal(authloop_login_browser(c), AUTHLOOP_EINVAL); /* no redirect_uri */
  assert_int_equal(authloop_login_callback(c, "x:/y?code=1&state=2"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_password(c, "a", "b"), AUTHLOOP_EWRONGPROVIDER);
  assert_int_equal(authloop_logout_global(c), AUTHLOOP_ENOTLOGGEDIN);
  test_env_close(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(device_login_and_logout),
      cmocka_unit_test(device_denied_expired_slowed),
      cmocka_unit_test(device_login_cancelled),
      cmocka_unit_test(close_during_device_login),
      cmocka_unit_test(free_or_close_from_login_prompt),
      cmocka_unit_test(refresh_rotation_and_revocation),
      cmocka_unit_test_teardown(tokens_of_unknown_lifetime, unavailable_off),
      cmocka_unit_test_teardown(unknown_lifetime_in_an_outage, unavailable_off),
      cmocka_unit_test(id_tokens_refused),
      cmocka_unit_test(restored_session_and_key_rotation),
      cmocka_unit_test(browser_login),
      cmocka_unit_test(close_during_browser_login),
      cmocka_unit_test(browser_denied_and_nonce),
      cmocka_unit_test(user_from_userinfo),
      cmocka_unit_test(login_queries_outlive_the_login),
      cmocka_unit_test(end_session_url_after_a_new_login),
      cmocka_unit_test_teardown(endpoints_naming_a_policy, policy_off),
      cmocka_unit_test(discovery_of_another_issuer),
      cmocka_unit_test(options),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER"))
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("oidc against oidc-provider", tests, setup, teardown);
}
