/* SPDX-License-Identifier: MIT */
/* Gateway login and logout over TLS against the reference server, on a real
 * uv loop with real libcurl. Every test ends with uv_loop_close() == 0. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* Logs c in with a fresh code and waits for the loginAttempt. */
static void login(test_env *e, authloop_client *c, test_recorder *r, const char *user) {
  char *code = test_mint_code(&server, user);
  int before = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], before + 1, 5000);
}

static void login_success(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  const authloop_user *u;
  json_t *raw;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  assert_null(authloop_current_user(c));
  assert_false(authloop_is_logged_in(c));

  login(&e, c, &r, "alice");
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, 0);
  assert_string_equal(r.trace, "stateChanged:LOGGED_OUT>LOGGING_IN;"
                               "stateChanged:LOGGING_IN>LOGGED_IN;loginAttempt:ok;");
  assert_true(authloop_is_logged_in(c));
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_IN);
  u = authloop_current_user(c);
  assert_non_null(u);
  assert_string_equal(authloop_user_id(u), "alice");
  assert_string_equal(authloop_user_name(u), "User alice");
  assert_string_equal(authloop_user_field(u, "email"), "alice@example.test");
  assert_string_equal(authloop_user_field(u, "tenantId"), "tenant-1");
  assert_null(authloop_user_field(u, "claims")); /* not a string */
  raw = json_loads(authloop_user_json(u), 0, NULL);
  assert_non_null(raw);
  assert_string_equal(json_string_value(json_object_get(json_object_get(raw, "claims"), "role")),
                      "member");
  json_decref(raw);
  assert_non_null(authloop_access_token(c));
  assert_non_null(authloop_id_token(c));
  assert_string_not_equal(authloop_access_token(c), authloop_id_token(c));
  assert_int_equal(authloop_token_lifetime(c), 3600);
  test_env_close(&e);
}

static void login_with_used_code_fails_with_server_message(void **state) {
  test_env e;
  test_recorder ra, rb;
  authloop_client *a, *b;
  char *code = test_mint_code(&server, "bob");
  (void)state;
  test_env_init(&e, &server, NULL);
  a = test_client(&e, &server);
  b = test_client(&e, &server);
  test_record(a, &ra);
  test_record(b, &rb);
  assert_int_equal(authloop_login_code(a, code), 0);
  test_run_until(&e, &ra.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(ra.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);

  assert_int_equal(authloop_login_code(b, code), 0);
  test_run_until(&e, &rb.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_false(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EREJECTED);
  assert_int_equal(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].http_status, 401);
  assert_string_equal(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].message,
                      "Authorization code is invalid, expired or already used");
  assert_string_equal(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].server_code, "4003");
  assert_string_equal(rb.trace, "stateChanged:LOGGED_OUT>LOGGING_IN;"
                                "stateChanged:LOGGING_IN>LOGGED_OUT;loginAttempt:EREJECTED;");
  assert_false(authloop_is_logged_in(b));
  assert_null(authloop_current_user(b));
  assert_null(authloop_access_token(b));
  free(code);
  test_env_close(&e);
}

static void login_with_unknown_code_fails(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, "never-issued"), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EREJECTED);
  assert_string_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].server_code, "4003");
  test_env_close(&e);
}

static void logout_clears_at_once_and_reports_the_server(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  long before = test_stat(&server, "/auth/logout");
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  login(&e, c, &r, "carol");
  assert_int_equal(authloop_logout(c), 0);
  /* local state goes at once, before any event */
  assert_false(authloop_is_logged_in(c));
  assert_null(authloop_current_user(c));
  assert_null(authloop_access_token(c));
  assert_null(authloop_id_token(c));
  assert_int_equal(r.count[AUTHLOOP_EV_LOGOUT], 0);
  assert_int_equal(authloop_logout(c), AUTHLOOP_ENOTLOGGEDIN);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  assert_int_equal(test_stat(&server, "/auth/logout"), before + 1);
  assert_string_equal(r.trace, "stateChanged:LOGGED_OUT>LOGGING_IN;"
                               "stateChanged:LOGGING_IN>LOGGED_IN;loginAttempt:ok;"
                               "stateChanged:LOGGED_IN>LOGGED_OUT;logout:ok;");
  /* and the client can log in again */
  login(&e, c, &r, "carol");
  assert_true(authloop_is_logged_in(c));
  test_env_close(&e);
}

static void logout_clears_locally_when_the_server_fails(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  login(&e, c, &r, "dave");
  test_fault(&server, "{\"route\":\"/auth/logout\",\"status\":503}");
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, AUTHLOOP_EUNAVAILABLE);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].http_status, 503);
  assert_false(authloop_is_logged_in(c));
  test_env_close(&e);
}

static void second_login_while_in_flight_fails_at_once(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char *code = test_mint_code(&server, "erin"), *code2 = test_mint_code(&server, "erin");
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, code), 0);
  assert_int_equal(authloop_login_code(c, code2), AUTHLOOP_ELOGININPROGRESS);
  assert_string_equal(authloop_err_name(AUTHLOOP_ELOGININPROGRESS), "ERROR_LOGIN_IN_PROGRESS");
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  test_run_turns(&e, 3);
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1); /* the refused call fired nothing */
  assert_int_equal(authloop_login_code(c, code2), AUTHLOOP_EALREADY);
  free(code);
  free(code2);
  test_env_close(&e);
}

/* Starts a login that is expected to fail with `error`. */
static void expect_login_failure(test_env *e, authloop_client *c, int error) {
  test_recorder r;
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, "some-code"), 0);
  test_run_until(e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 10000);
  assert_false(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, error);
  assert_non_null(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].message);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);
}

static void connection_refused_is_a_network_error(void **state) {
  test_env e;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c;
  char url[64];
  (void)state;
  snprintf(url, sizeof(url), "https://127.0.0.1:%d", test_closed_port());
  test_env_init(&e, &server, NULL);
  o.provider = "gateway";
  o.base_url = url;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  expect_login_failure(&e, c, AUTHLOOP_ENETWORK);
  test_env_close(&e);
}

static void untrusted_certificate_is_a_tls_error(void **state) {
  test_env e;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  long logins = test_stat(&server, "/auth/login");
  (void)state;
  test_env_init(&e, &server, &o); /* the system store does not know our CA */
  expect_login_failure(&e, test_client(&e, &server), AUTHLOOP_ETLS);
  assert_int_equal(test_stat(&server, "/auth/login"), logins); /* nothing was sent */
  test_env_close(&e);
}

static void server_error_is_unavailable_with_its_message(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  test_fault(&server, "{\"route\":\"/auth/login\",\"status\":500}");
  assert_int_equal(authloop_login_code(c, "x"), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EUNAVAILABLE);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].http_status, 500);
  assert_string_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].message, "injected fault: HTTP 500");
  assert_string_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].server_code, "5000");
  test_env_close(&e);
}

static void malformed_json_is_a_protocol_error(void **state) {
  test_env e;
  (void)state;
  test_env_init(&e, &server, NULL);
  test_fault(&server, "{\"route\":\"/auth/login\",\"body\":\"{\\\"user\\\": [1, 2\"}");
  expect_login_failure(&e, test_client(&e, &server), AUTHLOOP_EPROTO);
  test_fault(&server, "{\"route\":\"/auth/login\",\"body\":\"{\\\"user\\\":{\\\"id\\\":\\\"x\\\"},"
                      "\\\"accessToken\\\":7}\"}");
  expect_login_failure(&e, test_client(&e, &server), AUTHLOOP_EPROTO);
  test_env_close(&e);
}

static void body_over_the_limit_is_too_large(void **state) {
  test_env e;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  char fault[8192];
  (void)state;
  o.ca_file = server.ca;
  o.max_body_bytes = 1024;
  test_env_init(&e, &server, &o);
  snprintf(fault, sizeof(fault), "{\"route\":\"/auth/login\",\"body\":\"%04000d\"}", 7);
  test_fault(&server, fault);
  expect_login_failure(&e, test_client(&e, &server), AUTHLOOP_ETOOLARGE);
  test_env_close(&e);
}

static void silent_server_times_out(void **state) {
  test_env e;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  (void)state;
  o.ca_file = server.ca;
  o.timeout_ms = 300;
  test_env_init(&e, &server, &o);
  test_fault(&server, "{\"route\":\"/auth/login\",\"delayMs\":3000}");
  expect_login_failure(&e, test_client(&e, &server), AUTHLOOP_ETIMEDOUT);
  test_env_close(&e);
}

static void dropped_connection_is_a_network_error(void **state) {
  test_env e;
  (void)state;
  test_env_init(&e, &server, NULL);
  test_fault(&server, "{\"route\":\"/auth/login\",\"drop\":true}");
  expect_login_failure(&e, test_client(&e, &server), AUTHLOOP_ENETWORK);
  test_env_close(&e);
}

#define MANY 100

static void many_clients_share_connections(void **state) {
  test_env e;
  authloop_client *c[MANY];
  test_recorder *r = calloc(MANY, sizeof(*r));
  int i, done = 0;
  long conns_before = test_stat(&server, "connections"), opened;
  (void)state;
  test_env_init(&e, &server, NULL);
  for (i = 0; i < MANY; i++) {
    char user[32], *code;
    snprintf(user, sizeof(user), "user-%d", i);
    code = test_mint_code(&server, user);
    c[i] = test_client(&e, &server);
    assert_true(authloop_on(c[i], AUTHLOOP_EV_LOGIN_ATTEMPT, test_recorder_cb, &r[i]) > 0);
    assert_int_equal(authloop_login_code(c[i], code), 0);
    free(code);
  }
  /* the minting above used MANY connections of its own */
  conns_before = test_stat(&server, "connections");
  while (done < MANY) {
    test_run_until(&e, &r[done].count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 20000);
    assert_true(r[done].last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
    done++;
  }
  for (i = 0; i < MANY; i++) {
    char user[32];
    snprintf(user, sizeof(user), "user-%d", i);
    assert_string_equal(authloop_user_id(authloop_current_user(c[i])), user);
  }
  opened = test_stat(&server, "connections") - conns_before - 1; /* -1: the stats call itself */
  print_message("# %d logins used %ld TCP connections\n", MANY, opened);
  assert_true(opened >= 1);
  assert_true(opened < MANY);
  free(r);
  test_env_close(&e);
}

static void bad_input_fails_at_once_and_changes_nothing(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c, *x = (authloop_client *)&x;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, NULL), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_code(c, ""), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_code(c, "abc def"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_code(c, "abc\n"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_code(NULL, "abc"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_logout(c), AUTHLOOP_ENOTLOGGEDIN);
  assert_int_equal(authloop_logout(NULL), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_on(c, AUTHLOOP_EV__COUNT, test_recorder_cb, NULL), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_on(c, AUTHLOOP_EV_LOGOUT, NULL, NULL), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_off(c, 9999), AUTHLOOP_ENOENT);
  assert_int_equal(authloop_off(c, 0), AUTHLOOP_EINVAL);
  test_run_turns(&e, 3);
  assert_int_equal(r.total, 0);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);

  o.provider = "gateway";
  x = NULL;
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), AUTHLOOP_EINVAL); /* no URL */
  o.base_url = "http://chat.example.com";
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), AUTHLOOP_EINSECURE);
  o.base_url = "ftp://127.0.0.1/";
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), AUTHLOOP_EINVAL);
  o.base_url = "https://host/with?query";
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), AUTHLOOP_EINVAL);
  o.base_url = "https://chat.example.com";
  o.login_path = "no-slash";
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), AUTHLOOP_EINVAL);
  o.login_path = NULL;
  o.provider = "nosuch";
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), AUTHLOOP_ENOPROVIDER);
  o.provider = NULL;
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), AUTHLOOP_EINVAL);
  assert_null(x);
  o.provider = "gateway";
  o.base_url = "http://127.0.0.1:1"; /* loopback may be plain http */
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), 0);
  authloop_client_free(x);
  o.base_url = "http://chat.example.com";
  o.allow_insecure_http = 1;
  assert_int_equal(authloop_client_new(e.ctx, &o, &x), 0);
  authloop_client_free(x);
  assert_int_equal(authloop_client_new(NULL, &o, &x), AUTHLOOP_EINVAL);
  test_env_close(&e);
}

static void log_never_shows_secrets(void **state) {
  test_env e;
  test_recorder r;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client *c;
  test_log log = {0};
  char *code = test_mint_code(&server, "frank"), *access, *id;
  (void)state;
  o.ca_file = server.ca;
  o.log_cb = test_log_cb;
  o.log_userdata = &log;
  o.log_level = AUTHLOOP_LOG_DEBUG;
  test_env_init(&e, &server, &o);
  c = test_client(&e, &server);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, code), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(authloop_is_logged_in(c));
  access = strdup(authloop_access_token(c));
  id = strdup(authloop_id_token(c));
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(authloop_login_code(c, code), 0); /* reused: rejected, logged */
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 2, 5000);
  test_env_close(&e);
  assert_true(log.lines >= 4);
  assert_non_null(strstr(log.text, "/auth/login"));
  assert_null(strstr(log.text, code));
  assert_null(strstr(log.text, access));
  assert_null(strstr(log.text, id));
  free(code);
  free(access);
  free(id);
}

static void close_with_login_in_flight_cancels_once(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  test_fault(&server, "{\"route\":\"/auth/login\",\"delayMs\":2000}");
  assert_int_equal(authloop_login_code(c, "slow"), 0);
  test_run_turns(&e, 2);
  test_env_close(&e); /* runs the loop until the ctx is gone */
  assert_int_equal(r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECANCELED);
  assert_string_equal(r.trace, "stateChanged:LOGGED_OUT>LOGGING_IN;"
                               "stateChanged:LOGGING_IN>LOGGED_OUT;loginAttempt:ECANCELED;");
}

static int frees_seen;

static void free_in_handler(authloop_client *c, const authloop_event *ev, void *userdata) {
  (void)ev;
  (void)userdata;
  frees_seen++;
  authloop_client_free(c);
  authloop_client_free(c); /* twice, inside the handler: still safe */
}

static void free_inside_a_handler_is_safe(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  int id;
  char *code = test_mint_code(&server, "gina");
  (void)state;
  frees_seen = 0;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  /* the first stateChanged frees the client: nothing after it may fire */
  id = authloop_on(c, AUTHLOOP_EV_STATE_CHANGED, free_in_handler, NULL);
  assert_true(id > 0);
  test_record(c, &r); /* registered after: must not see the event either */
  assert_int_equal(authloop_login_code(c, code), 0);
  test_run_until(&e, &frees_seen, 1, 5000);
  test_run_turns(&e, 5);
  assert_int_equal(frees_seen, 1);
  assert_int_equal(r.total, 0);
  free(code);
  test_env_close(&e);
}

static void free_with_login_in_flight_fires_nothing(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c, *other;
  test_recorder ro;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  other = test_client(&e, &server);
  test_record(c, &r);
  test_record(other, &ro);
  assert_int_equal(authloop_login_code(c, "pending"), 0);
  authloop_client_free(c); /* the stateChanged it queued is dropped too */
  assert_int_equal(authloop_login_code(other, "unknown-code"), 0);
  test_run_until(&e, &ro.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_int_equal(r.total, 0);
  test_env_close(&e);
}

typedef struct {
  int calls_a, calls_b, calls_late;
  int id_b;
  authloop_client *c;
} listener_state;

static void late_listener(authloop_client *c, const authloop_event *ev, void *ud) {
  listener_state *s = ud;
  (void)c;
  (void)ev;
  s->calls_late++;
}

static void listener_a(authloop_client *c, const authloop_event *ev, void *ud) {
  listener_state *s = ud;
  (void)ev;
  if (s->calls_a++ == 0) {
    assert_int_equal(authloop_off(c, s->id_b), 0); /* b must not run for this event */
    assert_true(authloop_on(c, AUTHLOOP_EV_STATE_CHANGED, late_listener, s) > 0);
  }
}

static void listener_b(authloop_client *c, const authloop_event *ev, void *ud) {
  listener_state *s = ud;
  (void)c;
  (void)ev;
  s->calls_b++;
}

static void listeners_change_during_dispatch(void **state) {
  test_env e;
  listener_state s = {0};
  test_recorder r;
  authloop_client *c;
  int ida;
  char *code = test_mint_code(&server, "hal");
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  ida = authloop_on(c, AUTHLOOP_EV_STATE_CHANGED, listener_a, &s);
  s.id_b = authloop_on(c, AUTHLOOP_EV_STATE_CHANGED, listener_b, &s);
  assert_true(ida > 0 && s.id_b > ida);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, code), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_int_equal(s.calls_a, 2);    /* LOGGING_IN, LOGGED_IN */
  assert_int_equal(s.calls_b, 0);    /* removed before it was reached */
  assert_int_equal(s.calls_late, 1); /* added during the first: sees only the second */
  assert_int_equal(authloop_off(c, s.id_b), AUTHLOOP_ENOENT);
  assert_int_equal(authloop_off(c, ida), 0);
  free(code);
  test_env_close(&e);
}

static void close_frees_clients_still_attached(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &server, NULL);
  c = test_client(&e, &server);
  test_record(c, &r);
  login(&e, c, &r, "ivan");
  test_client(&e, &server); /* never freed by the test: the ctx frees it */
  test_env_close(&e);       /* valgrind and ASan check nothing leaks */
  assert_int_equal(r.count[AUTHLOOP_EV_LOGOUT], 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(login_success),
      cmocka_unit_test(login_with_used_code_fails_with_server_message),
      cmocka_unit_test(login_with_unknown_code_fails),
      cmocka_unit_test(logout_clears_at_once_and_reports_the_server),
      cmocka_unit_test(logout_clears_locally_when_the_server_fails),
      cmocka_unit_test(second_login_while_in_flight_fails_at_once),
      cmocka_unit_test(connection_refused_is_a_network_error),
      cmocka_unit_test(untrusted_certificate_is_a_tls_error),
      cmocka_unit_test(server_error_is_unavailable_with_its_message),
      cmocka_unit_test(malformed_json_is_a_protocol_error),
      cmocka_unit_test(body_over_the_limit_is_too_large),
      cmocka_unit_test(silent_server_times_out),
      cmocka_unit_test(dropped_connection_is_a_network_error),
      cmocka_unit_test(many_clients_share_connections),
      cmocka_unit_test(bad_input_fails_at_once_and_changes_nothing),
      cmocka_unit_test(log_never_shows_secrets),
      cmocka_unit_test(close_with_login_in_flight_cancels_once),
      cmocka_unit_test(free_inside_a_handler_is_safe),
      cmocka_unit_test(free_with_login_in_flight_fires_nothing),
      cmocka_unit_test(listeners_change_during_dispatch),
      cmocka_unit_test(close_frees_clients_still_attached),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("gateway login", tests, test_group_setup, test_group_teardown);
}
