/* SPDX-License-Identifier: MIT */
/* A hostile server, for every dialect: the reference server's faults give
 * each login a refused connection, a reset mid-body, 5xx, 429 with
 * Retry-After, a slow drip past the timeout, truncated and invalid JSON,
 * wrong types, NUL in strings, a body and headers over the limits, a gzip
 * bomb, redirects to plain http and to another origin, and lifetimes of 0,
 * negative, huge and a string. Each ends in its defined error; refreshes that
 * meet the transient ones keep the session, and Retry-After is honoured in
 * both its forms. (CR/LF in tokens: test_hostile.c; numbers and files:
 * test_hardening.c.) */
#include "harness.h"

#include "ctx.h"
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static char cc_client[128], cc_admin[128];

static int group_setup(void **state) {
  test_group_setup(state);
  snprintf(cc_client, sizeof(cc_client), "%s/cometchat/client/v3.0", server.base_url);
  snprintf(cc_admin, sizeof(cc_admin), "%s/cometchat/admin/v3.0", server.base_url);
  return 0;
}

typedef enum { GATEWAY, KUZZLE, COMETCHAT } dialect;
static const char *const routes[] = {"/auth/login", "/_login/local",
                                     "/cometchat/admin/v3.0/users/cometchat-uid-1/auth_tokens"};
static const char *const names[] = {"gateway", "kuzzle", "cometchat"};

static authloop_client *client_of(test_env *e, dialect d, const char *base) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = names[d];
  o.base_url = base ? base : server.base_url;
  if (d == COMETCHAT) {
    o.app_id = "app1";
    o.base_url = base ? base : cc_client;
    o.admin_url = base ? base : cc_admin;
  }
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static int log_in(authloop_client *c, dialect d, const char *code) {
  if (d == GATEWAY)
    return authloop_login_code(c, code ? code : "code");
  if (d == KUZZLE)
    return authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL);
  return authloop_login_key(c, "cometchat-uid-1", "authkey-1");
}

/* One login against one fault: its error, for each dialect. */
typedef struct {
  const char *what, *fault; /* fault: the JSON after {"route": ..., */
  int expect[3];            /* gateway, kuzzle, cometchat */
} fault_case;

static void login_meets(const fault_case *f, dialect d, const authloop_ctx_options *o) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char body[2048];
  int got;
  snprintf(body, sizeof(body), "{\"route\":\"%s\",%s}", routes[d], f->fault);
  test_fault(&server, body);
  test_env_init(&e, &server, o);
  c = client_of(&e, d, NULL);
  test_record(c, &r);
  assert_int_equal(log_in(c, d, NULL), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 8000);
  got = r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error;
  if (got != f->expect[d])
    fail_msg("%s, %s login: %s, want %s (%s)", f->what, names[d], authloop_err_name(got),
             authloop_err_name(f->expect[d]), r.last_message[AUTHLOOP_EV_LOGIN_ATTEMPT]);
  assert_false(authloop_is_logged_in(c));
  test_env_close(&e);
  snprintf(body, sizeof(body), "{\"route\":\"%s\",\"clear\":true}", routes[d]);
  test_fault(&server, body);
}

static void logins_meet_every_fault(void **state) {
  static const fault_case cases[] = {
      {"a reset mid-body",
       "\"reset\":true,\"bodyBytes\":4000",
       {AUTHLOOP_ENETWORK, AUTHLOOP_ENETWORK, AUTHLOOP_ENETWORK}},
      {"a 503",
       "\"status\":503",
       {AUTHLOOP_EUNAVAILABLE, AUTHLOOP_EUNAVAILABLE, AUTHLOOP_EUNAVAILABLE}},
      {"a 429 with Retry-After",
       "\"status\":429,\"retryAfter\":\"3\"",
       {AUTHLOOP_EUNAVAILABLE, AUTHLOOP_EUNAVAILABLE, AUTHLOOP_EUNAVAILABLE}},
      {"truncated JSON",
       "\"body\":\"{\\\"user\\\":{\\\"id\\\":\"",
       {AUTHLOOP_EPROTO, AUTHLOOP_EPROTO, AUTHLOOP_EPROTO}},
      {"not JSON",
       "\"body\":\"<html>bad gateway</html>\"",
       {AUTHLOOP_EPROTO, AUTHLOOP_EPROTO, AUTHLOOP_EPROTO}},
      {"wrong types",
       "\"body\":\"{\\\"user\\\":7,\\\"accessToken\\\":[],\\\"result\\\":\\\"x\\\",\\\"data\\\":"
       "[1],\\\"error\\\":\\\"e\\\"}\"",
       {AUTHLOOP_EPROTO, AUTHLOOP_EPROTO, AUTHLOOP_EPROTO}},
      {"NUL in a string",
       "\"body\":\"{\\\"user\\\":{\\\"id\\\":\\\"a\\\\u0000b\\\"},\\\"data\\\":{\\\"authToken\\\":"
       "\\\"a\\\\u0000b\\\"}}\"",
       {AUTHLOOP_EPROTO, AUTHLOOP_EPROTO, AUTHLOOP_EPROTO}},
      {"a body over the limit",
       "\"bodyBytes\":300000",
       {AUTHLOOP_ETOOLARGE, AUTHLOOP_ETOOLARGE, AUTHLOOP_ETOOLARGE}},
      {"headers over the limit",
       "\"status\":200,\"bodyBytes\":2,\"headerBytes\":70000",
       {AUTHLOOP_ETOOLARGE, AUTHLOOP_ETOOLARGE, AUTHLOOP_ETOOLARGE}},
      {"a gzip bomb",
       "\"gzipBytes\":50000000",
       {AUTHLOOP_EPROTO, AUTHLOOP_EPROTO, AUTHLOOP_EPROTO}},
      {"a redirect to plain http",
       "\"location\":\"http://127.0.0.1:9/steal\"",
       {AUTHLOOP_EREJECTED, AUTHLOOP_EREJECTED, AUTHLOOP_EREJECTED}},
      {"a redirect to another origin",
       "\"status\":307,\"location\":\"https://example.com/x\"",
       {AUTHLOOP_EREJECTED, AUTHLOOP_EREJECTED, AUTHLOOP_EREJECTED}},
  };
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  size_t i;
  int d;
  struct rusage before, after;
  (void)state;
  o.ca_file = server.ca;
  o.max_body_bytes = 256 * 1024;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    getrusage(RUSAGE_SELF, &before);
    for (d = GATEWAY; d <= COMETCHAT; d++)
      login_meets(&cases[i], (dialect)d, &o);
    getrusage(RUSAGE_SELF, &after);
    if (strstr(cases[i].what, "bomb")) { /* never inflated: the peak grew by less than 50 MB */
      print_message("# the bomb: peak memory grew by %ld KiB\n",
                    after.ru_maxrss - before.ru_maxrss);
      assert_true(after.ru_maxrss - before.ru_maxrss < 25 * 1024);
    }
  }
}

/* A drip past the timeout, and a server that refuses connections. */
static void slow_and_refused(void **state) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  fault_case drip = {"a drip past the timeout",
                     "\"bodyBytes\":400,\"dripMs\":20",
                     {AUTHLOOP_ETIMEDOUT, AUTHLOOP_ETIMEDOUT, AUTHLOOP_ETIMEDOUT}};
  char url[64];
  int d;
  (void)state;
  o.ca_file = server.ca;
  o.timeout_ms = 1000;
  for (d = GATEWAY; d <= COMETCHAT; d++)
    login_meets(&drip, (dialect)d, &o);
  snprintf(url, sizeof(url), "https://127.0.0.1:%d", test_closed_port());
  for (d = GATEWAY; d <= COMETCHAT; d++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    test_env_init(&e, &server, NULL);
    c = client_of(&e, (dialect)d, url);
    test_record(c, &r);
    assert_int_equal(log_in(c, (dialect)d, NULL), 0);
    test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
    assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ENETWORK);
    test_env_close(&e);
  }
}

/* The gateway's expiresIn: 0, negative, huge, a string, a fraction. */
static void lifetimes_that_are_not(void **state) {
  static const char *const values[] = {"0",    "-60", "99999999999999", "\\\"3600\\\"",
                                       "60.5", "null"};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    fault_case f = {values[i], NULL, {AUTHLOOP_EPROTO, 0, 0}};
    char fault[512];
    snprintf(fault, sizeof(fault),
             "\"body\":\"{\\\"user\\\":{\\\"id\\\":\\\"u\\\"},\\\"accessToken\\\":\\\"a\\\","
             "\\\"idToken\\\":\\\"i\\\",\\\"refreshToken\\\":\\\"r\\\",\\\"expiresIn\\\":%s}\"",
             values[i]);
    f.fault = fault;
    login_meets(&f, GATEWAY, NULL);
  }
}

/* Refreshes meeting transient faults keep the session; Retry-After in
 * seconds and as an HTTP date both hold the next try back. */
static void refreshes_keep_the_session(void **state) {
  static const char *const transient[] = {"\"status\":500", "\"reset\":true,\"bodyBytes\":4000",
                                          "\"body\":\"{oops\"", "\"status\":429"};
  char date[64], fault[256];
  size_t i;
  int d;
  (void)state;
  for (d = GATEWAY; d <= KUZZLE; d++) {
    const char *route = d == GATEWAY ? "/auth/refresh" : "/_refreshToken";
    for (i = 0; i < sizeof(transient) / sizeof(transient[0]) + 2; i++) {
      test_env e;
      test_recorder r;
      authloop_client *c;
      char *code = test_mint_code(&server, "faulty");
      long gap;
      test_env_init(&e, &server, NULL);
      c = client_of(&e, (dialect)d, NULL);
      test_record(c, &r);
      assert_int_equal(log_in(c, (dialect)d, code), 0);
      free(code);
      test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
      assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
      if (i < sizeof(transient) / sizeof(transient[0]))
        snprintf(fault, sizeof(fault), "{\"route\":\"%s\",%s}", route, transient[i]);
      else { /* Retry-After in seconds, then as a date 5 s ahead (Kuzzle's refresh
              * waits out the second its token was issued in: up to 1 s of it) */
        time_t later = time(NULL) + 5;
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&later));
        snprintf(fault, sizeof(fault), "{\"route\":\"%s\",\"status\":503,\"retryAfter\":\"%s\"}",
                 route, i == sizeof(transient) / sizeof(transient[0]) ? "1" : date);
      }
      test_fault(&server, fault);
      assert_int_equal(authloop_refresh(c, NULL, NULL), 0);
      /* the automatic retry goes after the failure and succeeds */
      test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 8000);
      assert_true(authloop_is_logged_in(c));
      assert_int_equal(r.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
      if (i >= sizeof(transient) / sizeof(transient[0])) {
        gap = test_last_gap_ms(&server, route);
        print_message("# Retry-After %s: the retry came %ld ms later\n",
                      i == sizeof(transient) / sizeof(transient[0]) ? "1" : "(a date)", gap);
        assert_true(gap >= (i == sizeof(transient) / sizeof(transient[0]) ? 900 : 1900));
      }
      test_env_close(&e);
    }
  }
}

/* Whether a failed request went out: a refused connection sent nothing (a
 * refresh that met one cannot have been done by the server, so a later
 * refusal is a revocation, not a lost refresh); a connection dropped after
 * the request did send it (from the attack). */
typedef struct {
  int count, error, sent;
} sent_probe;

static void on_probe(void *ud, const authloop__outcome *o) {
  sent_probe *p = ud;
  p->count++;
  p->error = o->error;
  p->sent = o->sent;
}

static void outcome_says_whether_sent(void **state) {
  char base[64];
  authloop__request req = {0};
  authloop__transfer *x;
  sent_probe p = {0};
  test_env e;
  (void)state;
  test_env_init(&e, &server, NULL);
  snprintf(base, sizeof(base), "https://127.0.0.1:%d", test_closed_port());
  req.method = "POST";
  req.base = base;
  req.body = "{}";
  assert_int_equal(authloop__request_path(&req, "/auth/refresh", 0), 0);
  assert_int_equal(authloop__transport_start(&e.ctx->transport, &req, on_probe, &p, &x), 0);
  test_run_until(&e, &p.count, 1, 5000);
  assert_int_equal(p.error, AUTHLOOP_ENETWORK);
  assert_false(p.sent);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"drop\":true}");
  req.base = server.base_url;
  assert_int_equal(authloop__transport_start(&e.ctx->transport, &req, on_probe, &p, &x), 0);
  test_run_until(&e, &p.count, 2, 5000);
  assert_int_not_equal(p.error, 0);
  assert_true(p.sent);
  test_env_close(&e);
}

typedef struct {
  int *done;
  int error, sent, waited, ended;
} line_probe;

static void on_line(void *ud, const authloop__outcome *o) {
  line_probe *p = ud;
  p->error = o->error;
  p->sent = o->sent;
  p->waited = o->waited;
  p->ended = 1;
  (*p->done)++;
}

/* Requests beyond what libcurl can send wait in authloop's line, not inside
 * libcurl (an easy handle each, their time running); libcurl never holds
 * more than twice max_host_connections; one that waited half its time fails
 * ETIMEDOUT without being sent, so the server never sees it. */
static void a_line_before_libcurl(void **state) {
  enum { N = 12 };
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop__request req = {0};
  line_probe p[N];
  char fault[160];
  test_env e;
  int i, done = 0, answered = 0, waited_out = 0;
  (void)state;
  o.ca_file = server.ca;
  o.max_host_connections = 1;
  o.timeout_ms = test_scaled(2000);
  snprintf(fault, sizeof(fault), "{\"route\":\"/auth/refresh\",\"delayMs\":%u,\"count\":%d}",
           test_scaled(400), N);
  test_fault(&server, fault);
  json_decref(test_control(&server, "/__test/reset-stats", "{}"));
  test_env_init(&e, &server, &o);
  req.method = "POST";
  req.base = server.base_url;
  req.body = "{}";
  assert_int_equal(authloop__request_path(&req, "/auth/refresh", 0), 0);
  for (i = 0; i < N; i++) {
    authloop__transfer *x;
    memset(&p[i], 0, sizeof(p[i]));
    p[i].done = &done;
    assert_int_equal(authloop__transport_start(&e.ctx->transport, &req, on_line, &p[i], &x), 0);
    assert_true(authloop__transport_in_libcurl(&e.ctx->transport) <= 1);
  }
  assert_int_equal(authloop__transport_in_libcurl(&e.ctx->transport), 1);
  test_run_until(&e, &done, N, 30000);
  for (i = 0; i < N; i++) {
    if (p[i].error == 0) {
      answered++;
    } else {
      assert_int_equal(p[i].error, AUTHLOOP_ETIMEDOUT);
      assert_false(p[i].sent);
      assert_true(p[i].waited); /* not the network's doing: no origin goes on hold for it */
      waited_out++;
    }
  }
  assert_true(answered >= 2);
  assert_true(waited_out >= 1);
  /* one connection (the stats call itself opens another) ... */
  assert_int_equal(test_stat(&server, "connections") - 1, 1);
  /* ... and what waited out never reached the server */
  assert_int_equal(test_stat(&server, "/auth/refresh"), answered);
  assert_int_equal(authloop__transport_in_libcurl(&e.ctx->transport), 0);
  test_env_close(&e);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"clear\":true}");
}

static void count_failure(authloop_client *c, const authloop_event *ev, void *ud) {
  (void)c;
  if (!ev->success)
    (*(int *)ud)++;
}

/* Logins that waited out their time in the line fail ETIMEDOUT, and say
 * nothing of the server: it is not put on hold, so a login made right after
 * those failures goes through (to a server on hold it fails at once with
 * EOFFLINE). */
static void waiting_in_line_is_not_a_network_failure(void **state) {
  enum { N = 10 };
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client *c[N + 1];
  test_recorder r[N + 1];
  char fault[160], *code;
  test_env e;
  int i, failed = 0;
  (void)state;
  o.ca_file = server.ca;
  o.max_host_connections = 1;
  o.timeout_ms = test_scaled(2000);
  snprintf(fault, sizeof(fault), "{\"route\":\"/auth/login\",\"delayMs\":%u,\"count\":%d}",
           test_scaled(400), N + 1);
  test_fault(&server, fault);
  test_env_init(&e, &server, &o);
  for (i = 0; i <= N; i++) {
    c[i] = client_of(&e, GATEWAY, NULL);
    test_record(c[i], &r[i]);
    authloop_on(c[i], AUTHLOOP_EV_LOGIN_ATTEMPT, count_failure, &failed);
  }
  for (i = 0; i < N; i++) {
    code = test_mint_code(&server, "liner");
    assert_int_equal(authloop_login_code(c[i], code), 0);
    free(code);
  }
  /* the line lets them go one by one; the ones behind wait out together */
  test_run_until(&e, &failed, AUTHLOOP__OFFLINE_AFTER, 30000);
  code = test_mint_code(&server, "liner");
  assert_int_equal(authloop_login_code(c[N], code), 0);
  free(code);
  test_run_until(&e, &r[N].count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 30000);
  if (!r[N].last[AUTHLOOP_EV_LOGIN_ATTEMPT].success)
    fail_msg("the login after the line's timeouts: %s",
             authloop_err_name(r[N].last[AUTHLOOP_EV_LOGIN_ATTEMPT].error));
  for (i = 0; i < N; i++) {
    test_run_until(&e, &r[i].count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 30000);
    if (!r[i].last[AUTHLOOP_EV_LOGIN_ATTEMPT].success)
      assert_int_equal(r[i].last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ETIMEDOUT);
  }
  for (i = 0; i <= N; i++)
    authloop_client_free(c[i]);
  test_env_close(&e);
  test_fault(&server, "{\"route\":\"/auth/login\",\"clear\":true}");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_line_before_libcurl),
      cmocka_unit_test(waiting_in_line_is_not_a_network_failure),
      cmocka_unit_test(logins_meet_every_fault),
      cmocka_unit_test(slow_and_refused),
      cmocka_unit_test(lifetimes_that_are_not),
      cmocka_unit_test(refreshes_keep_the_session),
      cmocka_unit_test(outcome_says_whether_sent),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER"))
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("a hostile server", tests, group_setup, test_group_teardown);
}
