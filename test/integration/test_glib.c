/* The GLib adapter: a GMainLoop alone drives login, refresh and logout; the
 * test never calls uv_run. Ends with the source destroyed and the uv loop
 * closed (uv_loop_close() == 0). */
#include "harness.h"

#include <authloop-glib.h>
#include <stdlib.h>

typedef struct {
  GMainLoop *main;
  test_recorder rec;
  int closed;
  GThread *glib_thread;
  int wrong_thread;
} app;

static void on_closed(authloop_ctx *ctx, void *ud) {
  app *a = ud;
  (void)ctx;
  a->closed++;
  g_main_loop_quit(a->main);
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  app *a = ud;
  if (g_thread_self() != a->glib_thread)
    a->wrong_thread++;
  test_recorder_cb(c, ev, &a->rec);
  if (ev->type == AUTHLOOP_EV_TOKEN_REFRESHED)
    authloop_logout(c);
  else if (ev->type == AUTHLOOP_EV_LOGOUT ||
           (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT && !ev->success))
    authloop_ctx_close(authloop_client_ctx(c), on_closed, a);
}

static gboolean give_up(gpointer ud) {
  app *a = ud;
  g_main_loop_quit(a->main);
  return G_SOURCE_REMOVE;
}

static void a_glib_main_loop_drives_the_session(void **state) {
  uv_loop_t loop;
  authloop_ctx_options o = {0};
  authloop_client_options co = {0};
  authloop_ctx *ctx;
  authloop_client *c;
  GSource *source;
  guint watchdog;
  app a = {0};
  char *code = test_mint_code_ttl(&server, "glenn", 4);
  int t;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  o.ca_file = server.ca;
  assert_int_equal(authloop_ctx_new(&loop, &o, &ctx), 0);
  a.main = g_main_loop_new(NULL, FALSE);
  a.glib_thread = g_thread_self();
  source = authloop_glib_attach(ctx, NULL);
  assert_non_null(source);
  co.provider = "gateway";
  co.base_url = server.base_url;
  assert_int_equal(authloop_client_new(ctx, &co, &c), 0);
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    assert_true(authloop_on(c, (authloop_event_type)t, on_event, &a) > 0);
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  watchdog = g_timeout_add(15000, give_up, &a);
  g_main_loop_run(a.main); /* until the ctx's close callback */
  g_source_remove(watchdog);
  assert_int_equal(a.closed, 1);
  assert_int_equal(a.wrong_thread, 0);
  assert_string_equal(a.rec.trace, "stateChanged:LOGGED_OUT>LOGGING_IN;"
                                   "stateChanged:LOGGING_IN>LOGGED_IN;loginAttempt:ok;"
                                   "stateChanged:LOGGED_IN>REFRESHING;"
                                   "stateChanged:REFRESHING>LOGGED_IN;tokenRefreshed:ok;"
                                   "stateChanged:LOGGED_IN>LOGGED_OUT;logout:ok;");
  g_source_destroy(source);
  g_source_unref(source);
  g_main_loop_unref(a.main);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static gboolean set_flag(gpointer ud) {
  *(int *)ud = 1;
  return G_SOURCE_REMOVE;
}

static void closed_flag(authloop_ctx *ctx, void *ud) {
  (void)ctx;
  *(int *)ud = 1;
}

/* Nothing scheduled: the GLib loop must sleep, not spin on an always-ready
 * source (which would also starve GTK's redraws). */
static void an_idle_ctx_lets_the_glib_loop_sleep(void **state) {
  uv_loop_t loop;
  authloop_ctx *ctx;
  authloop_client_options co = {0};
  authloop_client *c;
  GSource *source;
  int done = 0, closed = 0;
  unsigned iterations = 0;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(authloop_ctx_new(&loop, NULL, &ctx), 0);
  co.provider = "gateway";
  co.base_url = server.base_url;
  assert_int_equal(authloop_client_new(ctx, &co, &c), 0); /* logged out: nothing due */
  source = authloop_glib_attach(ctx, NULL);
  g_timeout_add(300, set_flag, &done);
  while (!done) {
    g_main_context_iteration(NULL, TRUE);
    iterations++;
  }
  print_message("# %u GLib iterations in 300 ms with an idle ctx\n", iterations);
  assert_true(iterations <= 5);
  assert_int_equal(authloop_ctx_close(ctx, closed_flag, &closed), 0);
  while (!closed)
    g_main_context_iteration(NULL, TRUE);
  g_source_destroy(source);
  g_source_unref(source);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_glib_main_loop_drives_the_session),
      cmocka_unit_test(an_idle_ctx_lets_the_glib_loop_sleep),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("glib adapter", tests, test_group_setup, test_group_teardown);
}
