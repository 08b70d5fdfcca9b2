/* SPDX-License-Identifier: MIT */
/* The GLib adapter: a GMainLoop alone drives login, refresh and logout; the
 * test never calls uv_run. Ends with the source destroyed and the uv loop
 * closed (uv_loop_close() == 0). */
#include "harness.h"

#include <authloop-glib.h>
#include <stdlib.h>
#include <sys/resource.h>

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
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
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

/* The GLib loop until *flag, for limit_ms at most (then the test fails): a
 * close that never finishes is a failure, not a hang. */
static void iterate_until_set(int *flag, unsigned limit_ms) {
  int late = 0;
  guint t = g_timeout_add(limit_ms, set_flag, &late);
  while (!*flag && !late)
    g_main_context_iteration(NULL, TRUE);
  if (!late)
    g_source_remove(t);
  assert_true(*flag);
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
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
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
  iterate_until_set(&closed, 5000);
  g_source_destroy(source);
  g_source_unref(source);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* The close finishes inside the source's dispatch; the GLib loop then runs
 * on, as an application's does (GtkApplication iterates once more after its
 * last window goes), with the source not yet destroyed by the app: the
 * source has removed itself and touches nothing of the freed ctx (ASan and
 * valgrind would see it), and a timer still fires. */
static void the_source_goes_with_the_ctx(void **state) {
  uv_loop_t loop;
  authloop_ctx *ctx;
  GSource *source;
  int closed = 0, later = 0;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(authloop_ctx_new(&loop, NULL, &ctx), 0);
  source = authloop_glib_attach(ctx, NULL);
  assert_int_equal(authloop_ctx_close(ctx, closed_flag, &closed), 0);
  iterate_until_set(&closed, 5000);
  assert_true(g_source_is_destroyed(source));
  g_timeout_add(50, set_flag, &later);
  iterate_until_set(&later, 5000); /* polls and dispatches without the ctx */
  g_source_destroy(source);        /* harmless now */
  g_source_unref(source);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- a GLib loop that sleeps ---------------------------------------------------------- */

#define SEC 1000000000ull

static uint64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* GLib iterations (each one a wake-up) until `until` (uv_hrtime ns) or until
 * *flag reaches target. The only GLib source of the test's own is the one
 * that ends the wait; it never touches the uv loop. */
static unsigned iterate_until(uint64_t until, const int *flag, int target) {
  unsigned wakes = 0;
  int done = 0;
  uint64_t now = uv_hrtime();
  guint end = g_timeout_add(now < until ? (guint)((until - now) / 1000000) : 0, set_flag, &done);
  while (!done && (!flag || *flag < target)) {
    g_main_context_iteration(NULL, TRUE);
    wakes++;
  }
  if (!done)
    g_source_remove(end);
  return wakes;
}

typedef struct {
  uv_loop_t loop;
  authloop_ctx *ctx;
  authloop_client *c;
  GSource *source;
  test_recorder rec;
} glib_env;

static void glib_env_init(glib_env *g) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  assert_int_equal(uv_loop_init(&g->loop), 0);
  o.ca_file = server.ca;
  assert_int_equal(authloop_ctx_new(&g->loop, &o, &g->ctx), 0);
  g->source = authloop_glib_attach(g->ctx, NULL);
  assert_non_null(g->source);
  co.provider = "gateway";
  co.base_url = server.base_url;
  assert_int_equal(authloop_client_new(g->ctx, &co, &g->c), 0);
  test_record(g->c, &g->rec);
}

static void glib_env_close(glib_env *g) {
  int closed = 0;
  assert_int_equal(authloop_ctx_close(g->ctx, closed_flag, &closed), 0);
  iterate_until(uv_hrtime() + 5 * SEC, &closed, 1);
  assert_int_equal(closed, 1);
  g_source_destroy(g->source);
  g_source_unref(g->source);
  assert_int_equal(uv_loop_close(&g->loop), 0);
}

static void login_then_logout(glib_env *g, int ttl_s) {
  char *code = test_mint_code_ttl(&server, "sleeper", ttl_s);
  assert_int_equal(authloop_login_code(g->c, code), 0);
  free(code);
  iterate_until(uv_hrtime() + 5 * SEC, &g->rec.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1);
  assert_true(g->rec.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(authloop_logout(g->c), 0);
  iterate_until(uv_hrtime() + 5 * SEC, &g->rec.count[AUTHLOOP_EV_LOGOUT], 1);
  assert_int_equal(g->rec.count[AUTHLOOP_EV_LOGOUT], 1);
}

/* Log in with 4 s tokens (refresh due at about 2 s), log out, then stay idle
 * until 5 s past the old refresh time: the GLib loop sleeps. */
static void the_glib_loop_sleeps_after_logout(void **state) {
  glib_env g;
  uint64_t t0 = uv_hrtime(), cpu;
  unsigned wakes;
  (void)state;
  glib_env_init(&g);
  login_then_logout(&g, 4);
  cpu = cpu_us();
  wakes = iterate_until(t0 + 7 * SEC, NULL, 0);
  cpu = cpu_us() - cpu;
  print_message("# idle after logout: %u wake-ups, %llu us CPU\n", wakes, (unsigned long long)cpu);
  assert_true(wakes < 50);
  assert_true(cpu < 100000);
  assert_int_equal(g.rec.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
  glib_env_close(&g);
}

typedef struct {
  authloop_ctx *ctx;
  uint64_t posted, ran;
  int done, status;
} delayed_post;

static void on_delayed(authloop_ctx *ctx, int status, void *ud) {
  delayed_post *d = ud;
  (void)ctx;
  d->ran = uv_hrtime();
  d->status = status;
  d->done++;
}

static gpointer post_after_a_while(gpointer ud) {
  delayed_post *d = ud;
  g_usleep(150000); /* the GLib loop is asleep by then */
  d->posted = uv_hrtime();
  if (authloop_ctx_post(d->ctx, on_delayed, d) != 0)
    abort();
  return NULL;
}

static void post_reaches_a_sleeping_loop(authloop_ctx *ctx) {
  delayed_post d = {0};
  GThread *t;
  unsigned wakes;
  d.ctx = ctx;
  t = g_thread_new("poster", post_after_a_while, &d);
  wakes = iterate_until(uv_hrtime() + 2 * SEC, &d.done, 1);
  g_thread_join(t);
  assert_int_equal(d.done, 1);
  assert_int_equal(d.status, 0);
  print_message("# post ran %llu us after it was made, %u wake-ups\n",
                (unsigned long long)(d.ran - d.posted) / 1000, wakes);
  assert_true(d.ran - d.posted < 200000000ull);
  assert_true(wakes <= 3);
}

static void posts_reach_an_idle_glib_loop(void **state) {
  glib_env g;
  (void)state;
  glib_env_init(&g); /* the ctx has done no I/O yet */
  post_reaches_a_sleeping_loop(g.ctx);
  login_then_logout(&g, 0); /* and now all its clients have logged out */
  post_reaches_a_sleeping_loop(g.ctx);
  glib_env_close(&g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_glib_main_loop_drives_the_session),
      cmocka_unit_test(an_idle_ctx_lets_the_glib_loop_sleep),
      cmocka_unit_test(the_source_goes_with_the_ctx),
      cmocka_unit_test(the_glib_loop_sleeps_after_logout),
      cmocka_unit_test(posts_reach_an_idle_glib_loop),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("glib adapter", tests, test_group_setup, test_group_teardown);
}
