/* SPDX-License-Identifier: MIT */
/* Freeing the client, closing the ctx, or both, from inside every kind of
 * callback: the log callback, each event type, a refresh callback, a request
 * callback and a post callback. Every scenario runs on its own ctx, all of
 * them side by side on one loop; the suite's ASan and valgrind runs are what
 * make "nothing touched after it was freed" a check. Afterwards every ctx has
 * closed once and the loop closes clean. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
  AT_LOG,
  AT_LOGIN_ATTEMPT,
  AT_STATE_CHANGED,
  AT_TOKEN_REFRESHED,
  AT_LOGOUT,
  AT_TOKEN_EXPIRING,
  AT_SESSION_EXPIRED,
  AT_REFRESH_CB,
  AT_REQUEST_CB,
  AT_POST_CB,
  AT__COUNT
} place;

static const char *const place_names[] = {
    "log",           "loginAttempt",   "stateChanged",     "tokenRefreshed",   "logout",
    "tokenExpiring", "sessionExpired", "refresh callback", "request callback", "post callback"};

typedef enum { DO_FREE, DO_CLOSE, DO_BOTH, DO__COUNT } deed;
static const char *const deed_names[] = {"free", "close", "free+close"};

typedef struct {
  place where;
  deed what;
  authloop_ctx *ctx;
  authloop_client *c;
  int done;   /* the deed was done */
  int closed; /* close callbacks */
  int calls;  /* callbacks of the kind under test that ran */
  char user[32];
} scenario;

static scenario runs[AT__COUNT * DO__COUNT];
static uv_loop_t loop;

static void on_closed(authloop_ctx *ctx, void *ud) {
  scenario *s = ud;
  assert_ptr_equal(ctx, s->ctx);
  s->closed++;
}

static void close_later(authloop_ctx *ctx, int status, void *ud) {
  assert_int_equal(status, 0);
  assert_int_equal(authloop_ctx_close(ctx, on_closed, ud), 0);
}

/* The deed, once. */
static void act(scenario *s) {
  if (s->done)
    return;
  s->done = 1;
  if (s->what != DO_CLOSE)
    authloop_client_free(s->c);
  if (s->what == DO_FREE) /* the ctx goes on without the client; it closes on a later turn */
    assert_int_equal(authloop_ctx_post(s->ctx, close_later, s), 0);
  else
    assert_int_equal(authloop_ctx_close(s->ctx, on_closed, s), 0);
}

static void on_log(authloop_log_level level, const char *msg, void *ud) {
  scenario *s = ud;
  (void)level;
  (void)msg;
  if (s->where == AT_LOG && s->c) {
    s->calls++;
    act(s);
  }
}

static void on_refreshed(authloop_client *c, int status, void *ud) {
  scenario *s = ud;
  (void)c;
  (void)status;
  s->calls++;
  if (s->where == AT_REFRESH_CB)
    act(s);
}

static void on_response(authloop_client *c, int status, long http, const char *body, size_t len,
                        void *ud) {
  scenario *s = ud;
  (void)c;
  (void)status;
  (void)http;
  (void)body;
  (void)len;
  s->calls++;
  if (s->where == AT_REQUEST_CB)
    act(s);
}

static void on_post(authloop_ctx *ctx, int status, void *ud) {
  scenario *s = ud;
  (void)ctx;
  (void)status;
  s->calls++;
  act(s);
}

static const authloop_event_type event_of[] = {
    [AT_LOGIN_ATTEMPT] = AUTHLOOP_EV_LOGIN_ATTEMPT,
    [AT_STATE_CHANGED] = AUTHLOOP_EV_STATE_CHANGED,
    [AT_TOKEN_REFRESHED] = AUTHLOOP_EV_TOKEN_REFRESHED,
    [AT_LOGOUT] = AUTHLOOP_EV_LOGOUT,
    [AT_TOKEN_EXPIRING] = AUTHLOOP_EV_TOKEN_EXPIRING,
    [AT_SESSION_EXPIRED] = AUTHLOOP_EV_SESSION_EXPIRED,
};

/* Drives each scenario to the callback it is about. */
static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  scenario *s = ud;
  if (s->where >= AT_LOGIN_ATTEMPT && s->where <= AT_SESSION_EXPIRED &&
      ev->type == event_of[s->where]) {
    s->calls++;
    act(s);
    return;
  }
  if (ev->type != AUTHLOOP_EV_LOGIN_ATTEMPT || !ev->success)
    return;
  switch (s->where) {
  case AT_TOKEN_REFRESHED:
  case AT_REFRESH_CB:
    assert_int_equal(authloop_refresh(c, on_refreshed, s), 0);
    break;
  case AT_LOGOUT:
    assert_int_equal(authloop_logout(c), 0);
    break;
  case AT_SESSION_EXPIRED: /* revoked at the server, then refreshed: the session ends */
  {
    char body[64];
    snprintf(body, sizeof(body), "{\"userId\":\"%s\"}", s->user);
    json_decref(test_control(&server, "/__test/revoke", body));
  }
    assert_int_equal(authloop_refresh(c, on_refreshed, s), 0);
    break;
  case AT_REQUEST_CB:
    assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_response, s), 0);
    break;
  case AT_POST_CB:
    assert_int_equal(authloop_ctx_post(s->ctx, on_post, s), 0);
    break;
  default: /* AT_TOKEN_EXPIRING: the idle window runs out before the refresh is due */
    break;
  }
}

static void start(scenario *s, place where, deed what, size_t index) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  char *code;
  int t;
  memset(s, 0, sizeof(*s));
  s->where = where;
  s->what = what;
  snprintf(s->user, sizeof(s->user), "reentry-%zu", index);
  o.ca_file = server.ca;
  if (where == AT_LOG) {
    o.log_cb = on_log;
    o.log_userdata = s;
    o.log_level = AUTHLOOP_LOG_DEBUG;
  }
  assert_int_equal(authloop_ctx_new(&loop, &o, &s->ctx), 0);
  co.provider = "gateway";
  co.base_url = server.base_url;
  /* tokenExpiring: 4 s tokens are due at about 2 s; the user is idle after 1 s */
  co.idle_window_s = where == AT_TOKEN_EXPIRING ? 1 : 0;
  assert_int_equal(authloop_client_new(s->ctx, &co, &s->c), 0);
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    assert_true(authloop_on(s->c, (authloop_event_type)t, on_event, s) > 0);
  code = test_mint_code_ttl(&server, s->user, where == AT_TOKEN_EXPIRING ? 4 : 0);
  assert_int_equal(authloop_login_code(s->c, code), 0);
  free(code);
}

static void free_or_close_from_every_callback(void **state) {
  size_t i, n = 0;
  int p, d;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  for (p = 0; p < AT__COUNT; p++)
    for (d = 0; d < DO__COUNT; d++)
      start(&runs[n], (place)p, (deed)d, n), n++;
  /* every ctx keeps the loop alive until it has closed; nothing else does */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  for (i = 0; i < n; i++) {
    scenario *s = &runs[i];
    if (s->done != 1 || s->closed != 1 || s->calls < 1)
      fail_msg("%s from the %s: done %d, closed %d, calls %d", deed_names[s->what],
               place_names[s->where], s->done, s->closed, s->calls);
  }
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(free_or_close_from_every_callback),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("re-entry", tests, test_group_setup, test_group_teardown);
}
