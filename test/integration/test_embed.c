/* SPDX-License-Identifier: MIT */
/* Embedding: posts from other threads, the loop-thread check, a foreign
 * poll(2) loop driving login/refresh/logout, and shutdown from every awkward
 * place. Every test ends with uv_loop_close() == 0. */
#include "harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- posts from other threads ------------------------------------------------------ */

#define THREADS 8
#define POSTS   1000

typedef struct {
  test_env *e;
  uv_thread_t loop_thread;
  unsigned char seen[THREADS][POSTS];
  int done, wrong_thread, cancelled;
  authloop_client *client; /* touched by a post that runs uncancelled */
} post_state;

typedef struct {
  post_state *s;
  int thread, index;
} post_arg;

static post_arg args[THREADS][POSTS];

static void on_post(authloop_ctx *ctx, int status, void *ud) {
  post_arg *a = ud;
  uv_thread_t self = uv_thread_self();
  (void)ctx;
  if (!uv_thread_equal(&self, &a->s->loop_thread))
    a->s->wrong_thread++;
  if (status == AUTHLOOP_ECANCELED)
    a->s->cancelled++;
  else if (a->s->client) /* the ctx is not closing: its clients are alive */
    (void)authloop_client_state(a->s->client);
  a->s->seen[a->thread][a->index]++;
  a->s->done++;
}

static void poster(void *ud) {
  post_arg *first = ud;
  int i;
  for (i = 0; i < POSTS; i++)
    if (authloop_ctx_post(first->s->e->ctx, on_post, &args[first->thread][i]) != 0)
      abort();
}

static void posts_from_eight_threads_run_once_on_the_loop(void **state) {
  static post_state s;
  test_env e;
  uv_thread_t threads[THREADS];
  int t, i;
  (void)state;
  memset(&s, 0, sizeof(s));
  test_env_init(&e, &server, NULL);
  s.e = &e;
  s.loop_thread = uv_thread_self();
  for (t = 0; t < THREADS; t++)
    for (i = 0; i < POSTS; i++)
      args[t][i] = (post_arg){&s, t, i};
  for (t = 0; t < THREADS; t++)
    assert_int_equal(uv_thread_create(&threads[t], poster, &args[t][0]), 0);
  test_run_until(&e, &s.done, THREADS * POSTS, 20000);
  for (t = 0; t < THREADS; t++)
    assert_int_equal(uv_thread_join(&threads[t]), 0);
  test_run_turns(&e, 3);
  assert_int_equal(s.done, THREADS * POSTS);
  assert_int_equal(s.wrong_thread, 0);
  assert_int_equal(s.cancelled, 0);
  for (t = 0; t < THREADS; t++)
    for (i = 0; i < POSTS; i++)
      if (s.seen[t][i] != 1)
        fail_msg("post %d/%d ran %d times", t, i, s.seen[t][i]);
  test_env_close(&e);
}

static void posts_left_at_close_run_once_cancelled(void **state) {
  static post_state s;
  test_env e;
  int i;
  (void)state;
  memset(&s, 0, sizeof(s));
  test_env_init(&e, &server, NULL);
  s.e = &e;
  s.loop_thread = uv_thread_self();
  /* a client whose session file is being written: the write delays the
   * teardown, and the posts must not run (uncancelled) while it waits */
  {
    authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
    test_recorder r;
    char dir[256], path[320];
    char *code = test_mint_code(&server, "poster");
    test_make_tmpdir(dir, sizeof(dir), "posts");
    snprintf(path, sizeof(path), "%s/session", dir);
    o.provider = "gateway";
    o.base_url = server.base_url;
    o.session_path = path;
    assert_int_equal(authloop_client_new(e.ctx, &o, &s.client), 0);
    test_record(s.client, &r);
    assert_int_equal(authloop_login_code(s.client, code), 0);
    free(code);
    test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
    assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
    /* the write of the session file was just queued to the thread pool */
    for (i = 0; i < 100; i++) {
      args[0][i] = (post_arg){&s, 0, i};
      assert_int_equal(authloop_ctx_post(e.ctx, on_post, &args[0][i]), 0);
    }
    assert_int_equal(authloop_ctx_close(e.ctx, NULL, NULL), 0);
    assert_int_equal(authloop_ctx_post(e.ctx, on_post, &args[0][0]), AUTHLOOP_ECLOSING);
    assert_int_equal(authloop_ctx_post(NULL, on_post, NULL), AUTHLOOP_EINVAL);
    uv_close((uv_handle_t *)&e.watchdog, NULL);
    assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    unlink(path);
    rmdir(dir);
  }
  assert_int_equal(s.cancelled, 100); /* all of them, and none ran as if nothing happened */
  assert_int_equal(s.done, 100);
  for (i = 0; i < 100; i++)
    assert_int_equal(s.seen[0][i], 1);
  assert_int_equal(s.wrong_thread, 0);
  assert_int_equal(uv_loop_close(&e.loop), 0);
}

static authloop_client *shared_client;

static void touch_from_elsewhere(void *ud) {
  (void)ud;
  authloop_touch(shared_client); /* must abort in a debug build */
}

static void a_call_from_another_thread_is_caught(void **state) {
  pid_t pid;
  int status;
  (void)state;
#ifdef NDEBUG
  skip();
#endif
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    test_env e;
    uv_thread_t t;
    test_env_init(&e, &server, NULL);
    shared_client = test_client(&e, &server);
    close(2); /* the abort message is expected */
    uv_thread_create(&t, touch_from_elsewhere, NULL);
    uv_thread_join(&t);
    _exit(0); /* not reached when the check works */
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ---- a foreign loop --------------------------------------------------------------- */

/* One poll(2) round on the ctx's fd and deadline, as a Qt/SDL/plain loop would. */
static int poll_once(authloop_ctx *ctx) {
  struct pollfd p = {authloop_ctx_fd(ctx), POLLIN, 0};
  int timeout = authloop_ctx_timeout_ms(ctx);
  if (timeout < 0 || timeout > 200)
    timeout = 200; /* the test's own watchdog granularity */
  poll(&p, 1, timeout);
  return authloop_ctx_process(ctx);
}

static int closed_flag;
static void on_closed(authloop_ctx *ctx, void *ud) {
  (void)ctx;
  (void)ud;
  closed_flag++;
}

static void a_poll_loop_drives_login_refresh_logout(void **state) {
  uv_loop_t loop;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  authloop_client *c;
  test_recorder r;
  char *code = test_mint_code_ttl(&server, "polly", 4);
  uint64_t deadline;
  int gone = 0, live = 1;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  o.ca_file = server.ca;
  assert_int_equal(authloop_ctx_new(&loop, &o, &ctx), 0);
  assert_true(authloop_ctx_fd(ctx) >= 0);
  co.provider = "gateway";
  co.base_url = server.base_url;
  assert_int_equal(authloop_client_new(ctx, &co, &c), 0);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  deadline = uv_hrtime() + 10ull * 1000 * 1000 * 1000;
  while (r.count[AUTHLOOP_EV_TOKEN_REFRESHED] == 0 && uv_hrtime() < deadline)
    live &= poll_once(ctx);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  assert_int_equal(authloop_logout(c), 0);
  while (r.count[AUTHLOOP_EV_LOGOUT] == 0 && uv_hrtime() < deadline)
    live &= poll_once(ctx);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  assert_int_equal(live, 1); /* process() said 1 on every turn while the ctx lived */
  closed_flag = 0;
  assert_int_equal(authloop_ctx_close(ctx, on_closed, NULL), 0);
  while (!closed_flag && uv_hrtime() < deadline) {
    assert_int_equal(gone, 0); /* a 0 comes once, on the turn that ends the close */
    gone = !poll_once(ctx);
  }
  assert_int_equal(closed_flag, 1);
  assert_int_equal(gone, 1); /* ... and says the ctx is gone */
  /* the ctx is gone with its close callback: nothing of authloop is left */
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void the_poll_loop_sample_logs_in_and_out(void **state) {
  const char *sample = getenv("AUTHLOOP_POLL_SAMPLE");
  char *code, *out;
  (void)state;
  if (!sample || !*sample)
    skip(); /* samples not built */
  code = test_mint_code(&server, "sam");
  {
    const char *argv[] = {sample, "--url", server.base_url, "--ca", server.ca, "--code",
                          code,   NULL};
    out = test_run_program(argv);
  }
  assert_non_null(strstr(out, "event loginAttempt\nuser sam\n"));
  assert_non_null(strstr(out, "event logout\n"));
  assert_non_null(strstr(out, "loop closed: clean"));
  free(out);
  free(code);
}

/* ---- a foreign loop that sleeps ------------------------------------------------------ */

static uint64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* poll(2) on the ctx's fd and deadline until `until` (uv_hrtime ns), or until
 * *flag reaches target; returns how many times poll returned. Nothing but
 * the deadline the test ends at bounds the wait: an armed timer or a readable
 * fd nobody services shows up as wake-ups. */
static unsigned poll_until(authloop_ctx *ctx, uint64_t until, const int *flag, int target) {
  struct pollfd p = {authloop_ctx_fd(ctx), POLLIN, 0};
  unsigned wakes = 0;
  uint64_t now;
  while ((now = uv_hrtime()) < until && (!flag || *flag < target)) {
    int timeout = authloop_ctx_timeout_ms(ctx);
    int left = (int)((until - now + 999999) / 1000000);
    if (timeout < 0 || timeout > left)
      timeout = left;
    poll(&p, 1, timeout);
    wakes++;
    authloop_ctx_process(ctx);
  }
  return wakes;
}

#define SEC 1000000000ull

static void login_then_logout(authloop_ctx *ctx, authloop_client *c, test_recorder *r, int ttl_s) {
  char *code = test_mint_code_ttl(&server, "sleeper", ttl_s);
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  poll_until(ctx, uv_hrtime() + 5 * SEC, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1);
  assert_true(r->last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(authloop_logout(c), 0);
  poll_until(ctx, uv_hrtime() + 5 * SEC, &r->count[AUTHLOOP_EV_LOGOUT], 1);
  assert_int_equal(r->count[AUTHLOOP_EV_LOGOUT], 1);
}

static void close_polled(authloop_ctx *ctx, uv_loop_t *loop) {
  closed_flag = 0;
  assert_int_equal(authloop_ctx_close(ctx, on_closed, NULL), 0);
  poll_until(ctx, uv_hrtime() + 5 * SEC, &closed_flag, 1);
  assert_int_equal(closed_flag, 1);
  assert_int_equal(uv_loop_close(loop), 0);
}

/* Log in with 4 s tokens (refresh due at about 2 s), log out, then stay idle
 * until 5 s past the old refresh time: the loop sleeps. */
static void a_poll_loop_sleeps_after_logout(void **state) {
  uv_loop_t loop;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  authloop_client *c;
  test_recorder r;
  uint64_t t0 = uv_hrtime(), cpu;
  unsigned wakes;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  o.ca_file = server.ca;
  assert_int_equal(authloop_ctx_new(&loop, &o, &ctx), 0);
  co.provider = "gateway";
  co.base_url = server.base_url;
  assert_int_equal(authloop_client_new(ctx, &co, &c), 0);
  test_record(c, &r);
  login_then_logout(ctx, c, &r, 4);
  cpu = cpu_us();
  wakes = poll_until(ctx, t0 + 7 * SEC, NULL, 0);
  cpu = cpu_us() - cpu;
  print_message("# idle after logout: %u wake-ups, %llu us CPU\n", wakes, (unsigned long long)cpu);
  assert_true(wakes < 50);
  assert_true(cpu < 100000);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
  close_polled(ctx, &loop);
}

/* A session restored outside the loop (authloop_client_new() reads the file
 * at once) has its events and its refresh deadline before any turn of the
 * loop: the ctx asks the host loop for a turn (timeout 0), and the loop,
 * sleeping on nothing but the ctx's fd and timeout from then on, wakes for
 * the refresh. (That a deadline changed alone asks for a turn is
 * policy/a_deadline_set_late_in_a_turn_fires.) */
static void a_poll_loop_refreshes_a_restored_session(void **state) {
  char dir[256], path[300];
  uv_loop_t loop;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  authloop_client *c;
  test_recorder first, second;
  char *code = test_mint_code_ttl(&server, "restored", 4);
  (void)state;
  test_make_tmpdir(dir, sizeof(dir), "embed");
  snprintf(path, sizeof(path), "%s/s.session", dir);
  /* a first run logs in and leaves its session in the file */
  assert_int_equal(uv_loop_init(&loop), 0);
  o.ca_file = server.ca;
  assert_int_equal(authloop_ctx_new(&loop, &o, &ctx), 0);
  co.provider = "gateway";
  co.base_url = server.base_url;
  co.session_path = path;
  assert_int_equal(authloop_client_new(ctx, &co, &c), 0);
  test_record(c, &first);
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  poll_until(ctx, uv_hrtime() + 5 * SEC, &first.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1);
  assert_true(first.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  close_polled(ctx, &loop);
  /* the next run restores it, outside any turn of its loop */
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(authloop_ctx_new(&loop, &o, &ctx), 0);
  assert_int_equal(authloop_client_new(ctx, &co, &c), 0);
  test_record(c, &second);
  assert_true(authloop_is_logged_in(c));
  assert_int_equal(authloop_ctx_timeout_ms(ctx), 0);
  poll_until(ctx, uv_hrtime() + 6 * SEC, &second.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  assert_int_equal(second.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  assert_int_equal(authloop_logout(c), 0);
  poll_until(ctx, uv_hrtime() + 5 * SEC, &second.count[AUTHLOOP_EV_LOGOUT], 1);
  assert_int_equal(second.count[AUTHLOOP_EV_LOGOUT], 1);
  close_polled(ctx, &loop);
  test_remove_tree(dir);
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

/* Another thread posts once the loop has gone to sleep. */
static void post_after_a_while(void *ud) {
  delayed_post *d = ud;
  uv_sleep(150);
  d->posted = uv_hrtime();
  if (authloop_ctx_post(d->ctx, on_delayed, d) != 0)
    abort();
}

static void post_reaches_a_sleeping_loop(authloop_ctx *ctx) {
  delayed_post d = {0};
  uv_thread_t t;
  unsigned wakes;
  d.ctx = ctx;
  assert_int_equal(uv_thread_create(&t, post_after_a_while, &d), 0);
  wakes = poll_until(ctx, uv_hrtime() + 2 * SEC, &d.done, 1);
  assert_int_equal(uv_thread_join(&t), 0);
  assert_int_equal(d.done, 1);
  assert_int_equal(d.status, 0);
  print_message("# post ran %llu us after it was made, %u wake-ups\n",
                (unsigned long long)(d.ran - d.posted) / 1000, wakes);
  assert_true(d.ran - d.posted < 200000000ull);
  assert_true(wakes <= 3);
}

static void posts_reach_an_idle_poll_loop(void **state) {
  uv_loop_t loop;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  authloop_client *c;
  test_recorder r;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  o.ca_file = server.ca;
  /* a ctx that never did any I/O */
  assert_int_equal(authloop_ctx_new(&loop, &o, &ctx), 0);
  post_reaches_a_sleeping_loop(ctx);
  /* one whose clients have all logged out */
  co.provider = "gateway";
  co.base_url = server.base_url;
  assert_int_equal(authloop_client_new(ctx, &co, &c), 0);
  test_record(c, &r);
  login_then_logout(ctx, c, &r, 0);
  post_reaches_a_sleeping_loop(ctx);
  close_polled(ctx, &loop);
}

/* ---- shutdown from awkward places --------------------------------------------------- */

static test_env *close_env;

static void close_in_handler(authloop_client *c, const authloop_event *ev, void *ud) {
  (void)c;
  (void)ud;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    assert_int_equal(authloop_ctx_close(close_env->ctx, on_closed, NULL), 0);
    assert_int_equal(authloop_ctx_close(close_env->ctx, on_closed, NULL), AUTHLOOP_ECLOSING);
    assert_int_equal(authloop_login_code(c, "again"), AUTHLOOP_ECLOSING);
  }
}

static void closing_the_ctx_inside_a_handler(void **state) {
  test_env e;
  authloop_client *c;
  char *code = test_mint_code(&server, "cleo");
  (void)state;
  closed_flag = 0;
  test_env_init(&e, &server, NULL);
  close_env = &e;
  c = test_client(&e, &server);
  assert_true(authloop_on(c, AUTHLOOP_EV_LOGIN_ATTEMPT, close_in_handler, NULL) > 0);
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  uv_close((uv_handle_t *)&e.watchdog, NULL);
  assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(closed_flag, 1);
  assert_int_equal(uv_loop_close(&e.loop), 0);
}

typedef struct {
  int done, status;
} outcome;

static void on_refreshed(authloop_client *c, int status, void *ud) {
  outcome *o = ud;
  (void)c;
  o->done++;
  o->status = status;
}

static void on_response(authloop_client *c, int status, long http, const char *body, size_t len,
                        void *ud) {
  outcome *o = ud;
  (void)c;
  (void)http;
  (void)body;
  (void)len;
  o->done++;
  o->status = status;
}

static void freeing_or_closing_with_calls_pending(void **state) {
  int round;
  (void)state;
  for (round = 0; round < 2; round++) {
    test_env e;
    test_recorder r;
    outcome p[3]; /* the refresh, a request in flight, a request waiting */
    authloop_client *c;
    char *code = test_mint_code(&server, "fred");
    memset(p, 0, sizeof(p));
    test_env_init(&e, &server, NULL);
    c = test_client(&e, &server);
    test_record(c, &r);
    assert_int_equal(authloop_login_code(c, code), 0);
    free(code);
    test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
    test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":2000}");
    test_fault(&server, "{\"route\":\"/api/me\",\"delayMs\":2000}");
    assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_response, &p[1]), 0);
    assert_int_equal(authloop_refresh(c, on_refreshed, &p[0]), 0);
    /* waits for the refresh */
    assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_response, &p[2]), 0);
    test_run_turns(&e, 2);
    r.total = 0;
    if (round == 0)
      authloop_client_free(c); /* callbacks still come, once, cancelled */
    test_env_close(&e);        /* round 1: the close cancels them */
    for (int k = 0; k < 3; k++) {
      assert_int_equal(p[k].done, 1);
      assert_int_equal(p[k].status, AUTHLOOP_ECANCELED);
    }
    if (round == 0)
      assert_int_equal(r.total, 0); /* no event for a freed client */
  }
}

/* ---- several ctxs on several threads ------------------------------------------------ */

/* Each thread has its own loop and ctx and runs whole sessions on them at the
 * same time as the others: login, an authenticated request, logout, close.
 * Nothing here may use cmocka (not thread-safe): the thread records, the
 * main thread asserts. */
typedef struct {
  uv_thread_t tid;
  char *codes[3];
  int logins_ok, requests_200, logouts, closes_clean;
  int login_done, request_done, logout_done, closed;
  int errors[8];
  int nerrors;
} worker;

static void worker_event(authloop_client *c, const authloop_event *ev, void *ud) {
  worker *w = ud;
  (void)c;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    w->login_done = 1;
    w->logins_ok += ev->success;
    if (!ev->success && w->nerrors < 8)
      w->errors[w->nerrors++] = ev->error;
  } else if (ev->type == AUTHLOOP_EV_LOGOUT) {
    w->logout_done = 1;
    w->logouts += ev->error == 0;
  }
}

static void worker_reply(authloop_client *c, int status, long http, const char *body, size_t len,
                         void *ud) {
  worker *w = ud;
  (void)c, (void)body, (void)len;
  w->request_done = 1;
  w->requests_200 += status == 0 && http == 200;
}

static void worker_closed(authloop_ctx *ctx, void *ud) {
  (void)ctx;
  ((worker *)ud)->closed = 1;
}

/* Runs the loop until *flag is set, for 15 s at most: a lost outcome is an
 * error of the worker, not a hang. The deadline's timer only wakes the loop
 * (unreferenced: the ctx keeps it alive, or nothing does). */
static void on_deadline(uv_timer_t *t) { *(int *)t->data = 1; }
static void worker_wait(worker *w, uv_loop_t *loop, int *flag) {
  uv_timer_t deadline;
  int late = 0;
  uv_timer_init(loop, &deadline);
  deadline.data = &late;
  uv_timer_start(&deadline, on_deadline, 15000, 0);
  uv_unref((uv_handle_t *)&deadline);
  while (!*flag && !late && uv_run(loop, UV_RUN_ONCE))
    ;
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_run(loop, UV_RUN_NOWAIT); /* the close callback: the timer is on the stack */
  if (!*flag && w->nerrors < 8)
    w->errors[w->nerrors++] = AUTHLOOP_ETIMEDOUT;
}

static void worker_main(void *arg) {
  worker *w = arg;
  int round;
  for (round = 0; round < 3; round++) {
    uv_loop_t loop;
    authloop_ctx *ctx = NULL;
    authloop_client *c = NULL;
    authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
    authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
    int rc;
    uv_loop_init(&loop);
    co.ca_file = server.ca;
    co.timeout_ms = 5000;
    o.provider = "gateway";
    o.base_url = server.base_url;
    w->login_done = w->request_done = w->logout_done = w->closed = 0;
    if ((rc = authloop_ctx_new(&loop, &co, &ctx)) != 0 ||
        (rc = authloop_client_new(ctx, &o, &c)) != 0 ||
        (rc = authloop_on(c, AUTHLOOP_EV_LOGIN_ATTEMPT, worker_event, w)) < 0 ||
        (rc = authloop_on(c, AUTHLOOP_EV_LOGOUT, worker_event, w)) < 0 ||
        (rc = authloop_login_code(c, w->codes[round])) != 0) {
      if (w->nerrors < 8)
        w->errors[w->nerrors++] = rc;
    } else {
      worker_wait(w, &loop, &w->login_done);
      if (authloop_request(c, "GET", "/api/me", NULL, worker_reply, w) == 0)
        worker_wait(w, &loop, &w->request_done);
      if (authloop_logout(c) == 0)
        worker_wait(w, &loop, &w->logout_done);
    }
    if (ctx && authloop_ctx_close(ctx, worker_closed, w) == 0)
      uv_run(&loop, UV_RUN_DEFAULT);
    w->closes_clean += w->closed && uv_loop_close(&loop) == 0;
  }
}

static void ctxs_on_several_threads_run_at_once(void **state) {
  enum { WORKERS = 4 };
  worker w[WORKERS];
  char user[32];
  int i, r;
  long logins = test_stat(&server, "/auth/login"), mes = test_stat(&server, "/api/me");
  (void)state;
  memset(w, 0, sizeof(w));
  for (i = 0; i < WORKERS; i++)
    for (r = 0; r < 3; r++) {
      snprintf(user, sizeof(user), "thread-%d-%d", i, r);
      w[i].codes[r] = test_mint_code(&server, user);
    }
  for (i = 0; i < WORKERS; i++)
    assert_int_equal(uv_thread_create(&w[i].tid, worker_main, &w[i]), 0);
  for (i = 0; i < WORKERS; i++)
    assert_int_equal(uv_thread_join(&w[i].tid), 0);
  for (i = 0; i < WORKERS; i++) {
    if (w[i].nerrors)
      fail_msg("thread %d: %s", i, authloop_err_name(w[i].errors[0]));
    assert_int_equal(w[i].logins_ok, 3);
    assert_int_equal(w[i].requests_200, 3);
    assert_int_equal(w[i].logouts, 3);
    assert_int_equal(w[i].closes_clean, 3);
    for (r = 0; r < 3; r++)
      free(w[i].codes[r]);
  }
  assert_int_equal(test_stat(&server, "/auth/login"), logins + WORKERS * 3);
  assert_int_equal(test_stat(&server, "/api/me"), mes + WORKERS * 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(posts_from_eight_threads_run_once_on_the_loop),
      cmocka_unit_test(posts_left_at_close_run_once_cancelled),
      cmocka_unit_test(a_call_from_another_thread_is_caught),
      cmocka_unit_test(a_poll_loop_drives_login_refresh_logout),
      cmocka_unit_test(the_poll_loop_sample_logs_in_and_out),
      cmocka_unit_test(a_poll_loop_sleeps_after_logout),
      cmocka_unit_test(a_poll_loop_refreshes_a_restored_session),
      cmocka_unit_test(posts_reach_an_idle_poll_loop),
      cmocka_unit_test(closing_the_ctx_inside_a_handler),
      cmocka_unit_test(freeing_or_closing_with_calls_pending),
      cmocka_unit_test(ctxs_on_several_threads_run_at_once),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("embedding", tests, test_group_setup, test_group_teardown);
}
