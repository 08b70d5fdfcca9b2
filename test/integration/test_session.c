/* SPDX-License-Identifier: MIT */
/* AuthloopSession on a GMainContext (the suite runs this under valgrind too):
 * properties and signals through a login, a refresh and a logout; a
 * cancellation at each moment of each call (before it, in flight, after
 * it); the last reference dropped, and the object disposed, with calls in
 * flight; bad arguments refused by the preconditions. Each wait is bounded
 * and checked for a spin; at the end nothing of authloop's is pending. */
#include "harness.h"

#include <authloop-session.h>

typedef struct {
  int done;
  gboolean ok;
  GError *error;
} answer;

static void answer_clear(answer *a) {
  g_clear_error(&a->error);
  memset(a, 0, sizeof(*a));
}

typedef gboolean (*finish_fn)(AuthloopSession *, GAsyncResult *, GError **);

typedef struct {
  answer *a;
  finish_fn finish;
} pending;

static void on_answer(GObject *src, GAsyncResult *res, gpointer ud) {
  pending *p = ud;
  p->a->ok = p->finish(AUTHLOOP_SESSION(src), res, &p->a->error);
  p->a->done++;
  g_free(p);
}

static pending *expect(answer *a, finish_fn finish) {
  pending *p = g_new0(pending, 1);
  answer_clear(a);
  p->a = a;
  p->finish = finish;
  return p;
}

static gboolean timed_out(gpointer ud) {
  *(int *)ud = 1;
  return G_SOURCE_REMOVE;
}

/* Turns the main context until *flag (bounded, and never spinning). The
 * test's one source fires only at the limit: every earlier wake-up is
 * authloop's (or GIO's), so a lost one fails the wait instead of being
 * papered over by a tick of the test's. */
static void run_until(const int *flag, unsigned limit_ms) {
  uint64_t start_ns = uv_hrtime();
  unsigned long turns = 0;
  int late = 0;
  GSource *watchdog;
  limit_ms = test_scaled(limit_ms);
  watchdog = g_timeout_source_new(limit_ms);
  g_source_set_callback(watchdog, timed_out, &late, NULL);
  g_source_attach(watchdog, NULL);
  while (!*flag && !late) {
    g_main_context_iteration(NULL, TRUE);
    turns++;
  }
  g_source_destroy(watchdog);
  g_source_unref(watchdog);
  if (!*flag)
    fail_msg("waited %u ms for an answer", limit_ms);
  test_check_spin(turns, start_ns, "run_until");
}

/* The ctxs of sessions gone close from the main context: their turns, then
 * nothing is left to do. */
static void settle(void) {
  int i;
  for (i = 0; i < 200 && g_main_context_pending(NULL); i++)
    g_main_context_iteration(NULL, FALSE);
  assert_false(g_main_context_pending(NULL));
}

static AuthloopSession *session(void) {
  GError *e = NULL;
  AuthloopSession *s = g_initable_new(AUTHLOOP_TYPE_SESSION, NULL, &e, "provider", "gateway",
                                      "base-url", server.base_url, "ca-file", server.ca, NULL);
  assert_null(e);
  assert_non_null(s);
  return s;
}

typedef struct {
  int attempts, logouts, refreshed, states, logged_in_notes, last_error;
  gboolean last_success;
} seen;

static void on_attempt(AuthloopSession *s, gboolean success, int error, const char *msg,
                       gpointer ud) {
  seen *w = ud;
  (void)s, (void)msg;
  w->attempts++;
  w->last_success = success;
  w->last_error = error;
}
static void on_logout(AuthloopSession *s, int error, gpointer ud) {
  (void)s, (void)error;
  ((seen *)ud)->logouts++;
}
static void on_refreshed(AuthloopSession *s, gint64 lifetime, gpointer ud) {
  (void)s, (void)lifetime;
  ((seen *)ud)->refreshed++;
}
static void on_state(AuthloopSession *s, AuthloopSessionState o, AuthloopSessionState n,
                     gpointer ud) {
  (void)s, (void)o, (void)n;
  ((seen *)ud)->states++;
}
static void on_notify(GObject *o, GParamSpec *p, gpointer ud) {
  (void)o, (void)p;
  ((seen *)ud)->logged_in_notes++;
}

static void watch(AuthloopSession *s, seen *w) {
  memset(w, 0, sizeof(*w));
  g_signal_connect(s, "login-attempt", G_CALLBACK(on_attempt), w);
  g_signal_connect(s, "logout", G_CALLBACK(on_logout), w);
  g_signal_connect(s, "token-refreshed", G_CALLBACK(on_refreshed), w);
  g_signal_connect(s, "state-changed", G_CALLBACK(on_state), w);
  g_signal_connect(s, "notify::logged-in", G_CALLBACK(on_notify), w);
}

static void login(AuthloopSession *s, const char *user, answer *a) {
  char *code = test_mint_code(&server, user);
  authloop_session_login_code_async(s, code, NULL, on_answer,
                                    expect(a, authloop_session_login_code_finish));
  free(code);
  run_until(&a->done, 5000);
}

static void login_refresh_logout(void **state) {
  AuthloopSession *s = session();
  answer a = {0};
  seen w;
  (void)state;
  watch(s, &w);
  login(s, "gobject-user", &a);
  assert_true(a.ok);
  assert_int_equal(w.attempts, 1);
  assert_true(w.last_success);
  assert_true(authloop_session_get_logged_in(s));
  assert_int_equal(w.logged_in_notes, 1);
  assert_string_equal(authloop_session_get_user_id(s), "gobject-user");
  assert_int_equal(authloop_session_get_state(s), AUTHLOOP_SESSION_STATE_LOGGED_IN);
  assert_true(authloop_session_get_expires_in(s) > 3000);

  authloop_session_refresh_async(s, NULL, on_answer, expect(&a, authloop_session_refresh_finish));
  run_until(&a.done, 5000);
  assert_true(a.ok);
  assert_int_equal(w.refreshed, 1);

  authloop_session_logout_async(s, NULL, on_answer, expect(&a, authloop_session_logout_finish));
  run_until(&a.done, 5000);
  assert_true(a.ok);
  assert_int_equal(w.logouts, 1);
  assert_false(authloop_session_get_logged_in(s));
  assert_null(authloop_session_get_user_id(s));
  assert_int_equal(w.logged_in_notes, 2);
  assert_true(w.states >= 4);

  /* a call that cannot start is answered from the loop, with authloop's code */
  authloop_session_logout_async(s, NULL, on_answer, expect(&a, authloop_session_logout_finish));
  assert_int_equal(a.done, 0); /* never from inside the call */
  run_until(&a.done, 5000);
  assert_false(a.ok);
  assert_true(g_error_matches(a.error, AUTHLOOP_ERROR, AUTHLOOP_ERROR_ENOTLOGGEDIN));
  answer_clear(&a);
  g_object_unref(s);
  settle();
}

static void cancelled(answer *a) {
  assert_false(a->ok);
  assert_true(g_error_matches(a->error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
}

/* The cancellable of each call, before the call and while it is in flight
 * (the server answers after 400 ms). */
static void cancellations(void **state) {
  AuthloopSession *s = session();
  GCancellable *c = g_cancellable_new();
  answer a = {0};
  char *code;
  seen w;
  (void)state;
  watch(s, &w);
  /* before */
  g_cancellable_cancel(c);
  code = test_mint_code(&server, "cancel-user");
  authloop_session_login_code_async(s, code, c, on_answer,
                                    expect(&a, authloop_session_login_code_finish));
  run_until(&a.done, 5000);
  cancelled(&a);
  assert_int_equal(w.attempts, 0); /* no login was started */
  g_object_unref(c);

  /* a login in flight */
  test_fault(&server, "{\"route\":\"/auth/login\",\"delayMs\":400}");
  c = g_cancellable_new();
  authloop_session_login_code_async(s, code, c, on_answer,
                                    expect(&a, authloop_session_login_code_finish));
  free(code);
  g_cancellable_cancel(c); /* from inside: the loop does the rest */
  run_until(&a.done, 5000);
  cancelled(&a);
  assert_int_equal(w.attempts, 1);
  assert_int_equal(w.last_error, AUTHLOOP_ECANCELED);
  assert_false(authloop_session_get_logged_in(s));
  g_object_unref(c);
  test_fault(&server, "{\"route\":\"/auth/login\",\"clear\":true}");

  /* a refresh in flight: answered now; the session stays */
  login(s, "cancel-user", &a);
  assert_true(a.ok);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":400}");
  c = g_cancellable_new();
  authloop_session_refresh_async(s, c, on_answer, expect(&a, authloop_session_refresh_finish));
  g_cancellable_cancel(c);
  run_until(&a.done, 5000);
  cancelled(&a);
  assert_true(authloop_session_get_logged_in(s));
  g_object_unref(c);

  /* a logout in flight: answered now; the session is cleared all the same */
  c = g_cancellable_new();
  authloop_session_logout_async(s, c, on_answer, expect(&a, authloop_session_logout_finish));
  g_cancellable_cancel(c);
  run_until(&a.done, 5000);
  cancelled(&a);
  assert_false(authloop_session_get_logged_in(s));
  g_object_unref(c);
  /* cancelled after the answer: nothing more happens */
  login(s, "cancel-user", &a);
  c = g_cancellable_new();
  authloop_session_logout_async(s, c, on_answer, expect(&a, authloop_session_logout_finish));
  run_until(&a.done, 5000);
  assert_true(a.ok);
  g_cancellable_cancel(c);
  g_object_unref(c);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"clear\":true}");
  answer_clear(&a);
  g_object_unref(s);
  settle();
}

static void on_weak(gpointer data, GObject *gone) {
  (void)gone;
  (*(int *)data)++;
}

/* The last reference dropped with a login in flight: the call is answered,
 * then the object goes. And disposed outright (g_object_run_dispose) with
 * a login and a refresh in flight: both answered as cancelled, nothing
 * reaches the object afterwards. */
static void references_and_disposal(void **state) {
  AuthloopSession *s = session();
  answer a = {0}, r = {0};
  int gone = 0;
  char *code = test_mint_code(&server, "ref-user");
  (void)state;
  test_fault(&server, "{\"route\":\"/auth/login\",\"delayMs\":200}");
  g_object_weak_ref(G_OBJECT(s), on_weak, &gone);
  authloop_session_login_code_async(s, code, NULL, on_answer,
                                    expect(&a, authloop_session_login_code_finish));
  free(code);
  g_object_unref(s);
  assert_int_equal(gone, 0); /* the call holds it */
  run_until(&a.done, 5000);
  assert_true(a.ok);
  run_until(&gone, 5000);
  settle();

  s = session();
  login(s, "ref-user", &a);
  code = test_mint_code(&server, "ref-user");
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":200}");
  authloop_session_refresh_async(s, NULL, on_answer, expect(&r, authloop_session_refresh_finish));
  g_object_run_dispose(G_OBJECT(s));
  run_until(&r.done, 5000);
  cancelled(&r);
  /* a disposed session refuses calls */
  authloop_session_login_code_async(s, code, NULL, on_answer,
                                    expect(&a, authloop_session_login_code_finish));
  run_until(&a.done, 5000);
  assert_true(g_error_matches(a.error, AUTHLOOP_ERROR, AUTHLOOP_ERROR_ECLOSING));
  assert_false(authloop_session_get_logged_in(s));
  free(code);
  answer_clear(&a);
  answer_clear(&r);
  g_object_unref(s);
  test_fault(&server, "{\"route\":\"/auth/login\",\"clear\":true}");
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"clear\":true}");
  settle();
}

typedef struct {
  AuthloopSession *s;
  char *good_code;
  int retried, attempts;
  answer retry;
  char *message; /* the last login-attempt's */
} retry_state;

static void retry_in_handler(AuthloopSession *s, gboolean success, int error, const char *msg,
                             gpointer ud) {
  retry_state *r = ud;
  (void)error;
  r->attempts++;
  g_free(r->message);
  r->message = g_strdup(msg);
  if (!success && !r->retried) { /* the failed login is over: another may start at once */
    r->retried = 1;
    authloop_session_login_code_async(s, r->good_code, NULL, on_answer,
                                      expect(&r->retry, authloop_session_login_code_finish));
  }
}

static void on_expires_notify(GObject *o, GParamSpec *p, gpointer ud) {
  (void)o, (void)p;
  (*(int *)ud)++;
}

static gboolean set_flag(gpointer ud) {
  *(int *)ud = 1;
  return G_SOURCE_REMOVE;
}

/* From the review of this layer, each a case that failed before:
 * - a refresh cancelled, then the last reference dropped: the refresh's
 *   callback comes later and finds the session it holds;
 * - a second logout while the first one's answer is slow (a login between);
 * - a login started from the login-attempt handler of a failed one;
 * - the GError carries the server's words, as the signal does;
 * - expires-in is notified when the token changes, not when a failed
 *   refresh moves the state after time has passed. */
static void from_the_review(void **state) {
  AuthloopSession *s = session();
  answer a = {0}, b = {0};
  GCancellable *c = g_cancellable_new();
  retry_state r = {0};
  int gone = 0, notes = 0, slept = 0;
  char *code;
  (void)state;
  login(s, "review-user", &a);
  assert_true(a.ok);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":300}");
  authloop_session_refresh_async(s, c, on_answer, expect(&a, authloop_session_refresh_finish));
  g_cancellable_cancel(c);
  run_until(&a.done, 5000);
  cancelled(&a);
  g_object_weak_ref(G_OBJECT(s), on_weak, &gone);
  g_object_unref(s);
  assert_int_equal(gone, 0); /* the refresh in flight holds it */
  run_until(&gone, 5000);    /* its callback came, found it, let it go */
  g_object_unref(c);
  settle();

  s = session();
  login(s, "review-user", &a);
  test_fault(&server, "{\"route\":\"/auth/logout\",\"delayMs\":800}");
  authloop_session_logout_async(s, NULL, on_answer, expect(&a, authloop_session_logout_finish));
  assert_false(authloop_session_get_logged_in(s)); /* cleared here at once */
  login(s, "review-user", &b);
  assert_true(b.ok);
  authloop_session_logout_async(s, NULL, on_answer, expect(&b, authloop_session_logout_finish));
  run_until(&b.done, 5000);
  run_until(&a.done, 5000);
  assert_true(a.ok);
  assert_true(b.ok);
  assert_false(authloop_session_get_logged_in(s));

  r.good_code = test_mint_code(&server, "retry-user");
  g_signal_connect(s, "login-attempt", G_CALLBACK(retry_in_handler), &r);
  authloop_session_login_code_async(s, "not-a-code", NULL, on_answer,
                                    expect(&a, authloop_session_login_code_finish));
  run_until(&a.done, 5000);
  assert_false(a.ok);
  assert_true(a.error && a.error->domain == AUTHLOOP_ERROR);
  assert_non_null(r.message);
  assert_string_equal(a.error->message, r.message); /* the server's words, as the signal's */
  run_until(&r.retry.done, 5000);
  assert_true(r.retry.ok);
  assert_string_equal(authloop_session_get_user_id(s), "retry-user");
  g_signal_handlers_disconnect_by_func(s, retry_in_handler, &r);

  g_signal_connect(s, "notify::expires-in", G_CALLBACK(on_expires_notify), &notes);
  g_timeout_add(1100, set_flag, &slept); /* time must pass: the seconds left change */
  run_until(&slept, 5000);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"status\":503}");
  authloop_session_refresh_async(s, NULL, on_answer, expect(&b, authloop_session_refresh_finish));
  run_until(&b.done, 5000);
  assert_false(b.ok);
  assert_int_equal(notes, 0); /* the token did not change */
  authloop_session_logout_async(s, NULL, on_answer, expect(&b, authloop_session_logout_finish));
  run_until(&b.done, 5000);
  assert_int_equal(notes, 1); /* it did: no token now */
  code = r.good_code;
  g_free(r.message);
  free(code);
  answer_clear(&a);
  answer_clear(&b);
  answer_clear(&r.retry);
  g_object_unref(s);
  settle();
}

static void on_critical(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud) {
  (void)domain, (void)level, (void)msg;
  (*(int *)ud)++;
}

/* Bad arguments: the usual preconditions (a critical, a neutral answer),
 * authloop's own checks as GErrors; a bad construction is an error of the
 * domain, never a crash. */
static void bad_input(void **state) {
  GError *e = NULL;
  int criticals = 0;
  guint h = g_log_set_handler("GLib-GObject", G_LOG_LEVEL_CRITICAL, on_critical, &criticals);
  guint h2 = g_log_set_handler(NULL, G_LOG_LEVEL_CRITICAL, on_critical, &criticals);
  AuthloopSession *s;
  answer a = {0};
  (void)state;
  assert_int_equal(authloop_session_get_state(NULL), AUTHLOOP_SESSION_STATE_LOGGED_OUT);
  assert_null(authloop_session_get_user_id(NULL));
  authloop_session_touch(NULL);
  assert_false(authloop_session_login_callback(NULL, "x", NULL));
  assert_int_equal(criticals, 4);
  g_log_remove_handler("GLib-GObject", h);
  g_log_remove_handler(NULL, h2);

  assert_null(authloop_session_new("gateway", "ftp://nowhere", &e));
  assert_true(e && e->domain == AUTHLOOP_ERROR);
  g_clear_error(&e);
  assert_null(authloop_session_new(NULL, server.base_url, &e));
  assert_true(g_error_matches(e, AUTHLOOP_ERROR, AUTHLOOP_ERROR_EINVAL));
  g_clear_error(&e);
  /* "userinfo" is 1, -1 or 0, and any other value fails the construction
   * (not a warning and the default); TRUE, as when it was a boolean, is 1 */
  {
    gint v = 0;
    s = g_initable_new(AUTHLOOP_TYPE_SESSION, NULL, &e, "provider", "kuzzle", "base-url",
                       server.base_url, "userinfo", -1, NULL);
    assert_null(e);
    g_object_get(s, "userinfo", &v, NULL);
    assert_int_equal(v, -1);
    g_object_unref(s);
    assert_null(g_initable_new(AUTHLOOP_TYPE_SESSION, NULL, &e, "provider", "gateway", "base-url",
                               server.base_url, "userinfo", TRUE, NULL));
    assert_true(g_error_matches(e, AUTHLOOP_ERROR, AUTHLOOP_ERROR_ENOTSUP));
    g_clear_error(&e);
    assert_null(g_initable_new(AUTHLOOP_TYPE_SESSION, NULL, &e, "provider", "kuzzle", "base-url",
                               server.base_url, "userinfo", 2, NULL));
    assert_true(g_error_matches(e, AUTHLOOP_ERROR, AUTHLOOP_ERROR_EINVAL));
    g_clear_error(&e);
    assert_null(g_initable_new(AUTHLOOP_TYPE_SESSION, NULL, &e, "provider", "oidc", "base-url",
                               server.base_url, "client-id", "c", "userinfo", G_MININT, NULL));
    assert_true(g_error_matches(e, AUTHLOOP_ERROR, AUTHLOOP_ERROR_EINVAL));
    g_clear_error(&e);
  }
  s = session();
  authloop_session_login_code_async(s, "bad\r\ncode", NULL, on_answer,
                                    expect(&a, authloop_session_login_code_finish));
  run_until(&a.done, 5000);
  assert_true(a.error && a.error->domain == AUTHLOOP_ERROR);
  assert_false(authloop_session_login_callback(s, "com.example:/cb?code=x", &e));
  assert_true(g_error_matches(e, AUTHLOOP_ERROR, AUTHLOOP_ERROR_EWRONGPROVIDER));
  g_clear_error(&e);
  answer_clear(&a);
  g_object_unref(s);
  settle();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(login_refresh_logout),    cmocka_unit_test(cancellations),
      cmocka_unit_test(references_and_disposal), cmocka_unit_test(bad_input),
      cmocka_unit_test(from_the_review),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER"))
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("AuthloopSession", tests, test_group_setup,
                                     test_group_teardown);
}
