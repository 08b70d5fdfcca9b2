/* SPDX-License-Identifier: MIT */
/* Numbers and files a user never meant: options at 0, 1 and their maximum;
 * lifetimes that overflow; session files with impossible times, planted by
 * someone else, or that are not files at all. Each case ends in a defined
 * error or a sane schedule: never a crash, a storm of refreshes, a blocked
 * loop, or a session that cannot end. */
#include "harness.h"
#include "jwt.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

static int group_setup(void **state) {
  test_group_setup(state);
  test_make_tmpdir(tmpdir, sizeof(tmpdir), "hardening");
  return 0;
}

static int group_teardown(void **state) {
  test_group_teardown(state);
  test_remove_tree(tmpdir);
  return 0;
}

static authloop_client *gateway(test_env *e, const authloop_client_options *extra) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  if (extra)
    o = *extra;
  o.provider = "gateway";
  o.base_url = server.base_url;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static const authloop_event *login(test_env *e, authloop_client *c, test_recorder *r, int ttl) {
  char *code = test_mint_code_ttl(&server, "hardy", ttl);
  int before = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], before + 1, 5000);
  return &r->last[AUTHLOOP_EV_LOGIN_ATTEMPT];
}

/* ---- options at 0, 1 and their maximum ----------------------------------------------------- */

static void options_at_their_extremes(void **state) {
  static const size_t bodies[] = {0, 1, SIZE_MAX, SIZE_MAX - 1, (size_t)1 << 40};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
    test_env e;
    test_recorder r;
    authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
    authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
    authloop_client *c;
    const authloop_event *ev;
    long refreshes = test_stat(&server, "/auth/refresh");
    o.ca_file = server.ca;
    o.max_body_bytes = bodies[i]; /* SIZE_MAX: "no limit", clamped to the ceiling */
    o.timeout_ms = i % 2 ? UINT_MAX : 0;
    o.max_host_connections = UINT_MAX;
    co.refresh_margin_s = UINT_MAX;
    co.idle_window_s = UINT_MAX;
    co.retry_base_ms = UINT_MAX;
    co.retry_cap_ms = UINT_MAX;
    test_env_init(&e, &server, &o);
    c = gateway(&e, &co);
    test_record(c, &r);
    ev = login(&e, c, &r, 4);
    if (bodies[i] == 1) { /* one byte is not enough for any answer */
      assert_int_equal(ev->error, AUTHLOOP_ETOOLARGE);
    } else {
      long long left;
      assert_true(ev->success);
      /* the margin is capped at half the lifetime: nothing is due before 1.8 s */
      left = authloop_token_expires_in_ms(c);
      assert_true(left > 3000 && left <= 4000);
      test_run_for(&e, 1000);
      assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes);
    }
    test_env_close(&e);
  }
}

/* ---- lifetimes that overflow ----------------------------------------------------------- */

static char *jwt_with(long long iat, long long exp) {
  char claims[128], *body, *token;
  size_t n;
  snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"iat\":%lld,\"exp\":%lld}", iat, exp);
  body = authloop__b64url_encode((const unsigned char *)claims, strlen(claims));
  n = strlen(body) + 64;
  token = malloc(n);
  snprintf(token, n, "eyJhbGciOiJIUzI1NiJ9.%s.c2ln", body);
  free(body);
  return token;
}

/* A gateway answer without expiresIn takes the JWT's exp - iat; values that
 * would overflow, or that mean "never", or no time at all, are EPROTO. */
static void jwt_lifetimes_at_the_edges(void **state) {
  static const struct {
    long long iat, exp;
    int ok;
  } cases[] = {
      {-4611686018427387904LL, 4611686018427387904LL, 0}, /* 2^62 - (-2^62) overflows */
      {-2, INT64_MAX, 0},                                 /* "never expires" by wrap-around */
      {0, INT64_MAX, 0},
      {INT64_MAX - 5, INT64_MAX, 1},           /* 5 s, far in the future: a lifetime all the same */
      {1700000000, 1700000000, 0},             /* zero */
      {1700000000, 1699999999, 0},             /* negative */
      {1700000000, 1700000000 + 316224001, 0}, /* ten years and a second */
      {1700000000, 1700000004, 1},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    char *tok = jwt_with(cases[i].iat, cases[i].exp), body[1024];
    json_t *f;
    char *text;
    long refreshes = test_stat(&server, "/auth/refresh");
    test_env_init(&e, &server, NULL);
    c = gateway(&e, NULL);
    test_record(c, &r);
    snprintf(body, sizeof(body),
             "{\"user\":{\"id\":\"u\"},\"accessToken\":\"%s\",\"idToken\":\"i\","
             "\"refreshToken\":\"r\"}",
             tok);
    f = json_pack("{s:s, s:s}", "route", "/auth/login", "body", body);
    text = json_dumps(f, JSON_COMPACT);
    test_fault(&server, text);
    free(text);
    json_decref(f);
    assert_int_equal(authloop_login_code(c, "any"), 0);
    test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
    if (cases[i].ok) {
      assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
      assert_int_equal(authloop_token_lifetime(c), cases[i].exp - cases[i].iat);
    } else if (r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error != AUTHLOOP_EPROTO) {
      fail_msg("iat %lld exp %lld: %s", cases[i].iat, cases[i].exp,
               authloop_err_name(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error));
    }
    /* whatever happened, no storm of refreshes */
    test_run_for(&e, 300);
    assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes);
    free(tok);
    test_env_close(&e);
  }
}

/* Kuzzle's ttl and expiresAt, out of range: past ten years (Kuzzle's
 * default maximum is none) taken as ten years, without overflow; not a
 * positive integer, refused. */
static void kuzzle_lifetimes_at_the_edges(void **state) {
  static const struct {
    const char *result;
    int want;
  } cases[] = {
      {"\"ttl\":9223372036854775807,\"expiresAt\":9223372036854775807", 0},
      {"\"ttl\":316224000001,\"expiresAt\":1", 0},
      {"\"ttl\":0,\"expiresAt\":1", AUTHLOOP_EPROTO},
      {"\"ttl\":-2,\"expiresAt\":1", AUTHLOOP_EPROTO},
      {"\"ttl\":1e30,\"expiresAt\":1", AUTHLOOP_EPROTO},
      {"\"ttl\":\"3600000\",\"expiresAt\":1", AUTHLOOP_EPROTO},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    test_env e;
    test_recorder r;
    authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
    authloop_client *c;
    char body[512];
    json_t *f;
    char *text;
    test_env_init(&e, &server, NULL);
    o.provider = "kuzzle";
    o.base_url = server.base_url;
    assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
    test_record(c, &r);
    snprintf(body, sizeof(body),
             "{\"requestId\":\"x\",\"status\":200,\"error\":null,\"controller\":\"auth\","
             "\"action\":\"login\",\"result\":{\"_id\":\"kuzzle-user\",\"jwt\":\"kauth-x\",%s}}",
             cases[i].result);
    f = json_pack("{s:s, s:s}", "route", "/_login/local", "body", body);
    text = json_dumps(f, JSON_COMPACT);
    test_fault(&server, text);
    free(text);
    json_decref(f);
    if (cases[i].want == 0) /* then getCurrentUser, with that made-up jwt */
      test_fault(&server,
                 "{\"route\":\"/users/_me\",\"body\":\"{\\\"status\\\":200,\\\"error\\\":"
                 "null,\\\"result\\\":{\\\"_id\\\":\\\"kuzzle-user\\\",\\\"_source\\\":{}}}\"}");
    assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", NULL), 0);
    test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
    if (r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error != cases[i].want)
      fail_msg("%s: %s", cases[i].result,
               authloop_err_name(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error));
    if (cases[i].want == 0) /* ten years, and no refresh due before then */
      assert_int_equal(authloop_token_lifetime(c), 10L * 366 * 24 * 3600);
    test_env_close(&e);
  }
}

/* ---- session files with impossible times ----------------------------------------------- */

static void write_session(const char *path, long long lifetime, long long expires_at,
                          long long last) {
  char payload[1024];
  int n = snprintf(payload, sizeof(payload),
                   "ALS1\x01%c{\"v\":1,\"provider\":\"gateway\",\"baseUrl\":\"%s\",\"user\":"
                   "{\"id\":\"u\"},\"accessToken\":\"at\",\"idToken\":\"it\",\"refreshToken\":"
                   "\"rt\",\"lifetime\":%lld,\"expiresAt\":%lld,\"lastActivity\":%lld}",
                   0, server.base_url, lifetime, expires_at, last);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, payload, (size_t)n), n);
  close(fd);
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static authloop_client *restoring(test_env *e, const char *path, test_log *log) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  o.ca_file = server.ca;
  o.log_cb = test_log_cb;
  o.log_userdata = log;
  o.log_level = AUTHLOOP_LOG_WARN;
  test_env_init(e, &server, &o);
  co.session_path = path;
  return gateway(e, &co);
}

static void session_file_times(void **state) {
  char path[320];
  long long now = wall_ms();
  test_env e;
  test_log log;
  test_recorder r;
  authloop_client *c;
  (void)state;
  snprintf(path, sizeof(path), "%s/times", tmpdir);

  /* a token that would outlive its own lifetime: refused */
  memset(&log, 0, sizeof(log));
  write_session(path, 3600, now + 5LL * 365 * 24 * 3600 * 1000, now);
  c = restoring(&e, path, &log);
  assert_false(authloop_is_logged_in(c));
  test_run_until(&e, &log.lines, 1, 2000);
  test_env_close(&e);

  /* activity in the future: refused */
  memset(&log, 0, sizeof(log));
  write_session(path, 3600, now + 3000 * 1000, now + 24LL * 3600 * 1000);
  c = restoring(&e, path, &log);
  assert_false(authloop_is_logged_in(c));
  test_run_until(&e, &log.lines, 1, 2000);
  test_env_close(&e);

  /* lastActivity 0: never active, so never refreshed, and the session ends
   * idle when the token runs out (it used to wrap to "active forever") */
  memset(&log, 0, sizeof(log));
  write_session(path, 4, now + 2000, 0);
  c = restoring(&e, path, &log);
  test_record(c, &r);
  assert_true(authloop_is_logged_in(c));
  test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_IDLE);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 0);
  test_env_close(&e);
  unlink(path);
}

/* ---- files someone else could have written ---------------------------------------------- */

static void a_planted_file_is_refused(const char *path, const char *why) {
  test_env e;
  test_log log = {0};
  authloop_client *c = restoring(&e, path, &log);
  if (authloop_is_logged_in(c))
    fail_msg("a session file that %s was restored", why);
  test_run_until(&e, &log.lines, 1, 2000);
  assert_non_null(strstr(log.text, "ignored"));
  test_env_close(&e);
}

static void planted_session_files(void **state) {
  char dir[320], path[400];
  long long now = wall_ms();
  test_env e;
  test_log log = {0};
  authloop_client *c;
  (void)state;
  snprintf(dir, sizeof(dir), "%s/plant", tmpdir);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(path, sizeof(path), "%s/session", dir);
  write_session(path, 3600, now + 3000 * 1000, now);

  chmod(path, 0620);
  a_planted_file_is_refused(path, "its group can write");
  chmod(path, 0602);
  a_planted_file_is_refused(path, "anyone can write");
  chmod(path, 0600);
  if (geteuid() == 0) { /* only root can give a file away */
    assert_int_equal(chown(path, 65534, 65534), 0);
    a_planted_file_is_refused(path, "belongs to another user");
    assert_int_equal(chown(path, 0, 0), 0);
  } else {
    print_message("# not root: the other-owner case is not exercised\n");
  }
  chmod(dir, 0777);
  a_planted_file_is_refused(path, "sits in a directory anyone can write to");
  /* a sticky directory (like /tmp): only a file's owner may replace it */
  chmod(dir, 01777);
  c = restoring(&e, path, &log);
  assert_true(authloop_is_logged_in(c));
  test_env_close(&e);
  chmod(dir, 0700);
  /* and the plain case: ours, 0600, in a private directory */
  c = restoring(&e, path, &log);
  assert_true(authloop_is_logged_in(c));
  test_env_close(&e);
  unlink(path);
  rmdir(dir);
}

/* A FIFO at the path must not block authloop_client_new() on the loop thread. */
static void a_fifo_does_not_block(void **state) {
  char path[320];
  test_env e;
  test_log log = {0};
  authloop_client *c;
  uint64_t t0;
  (void)state;
  snprintf(path, sizeof(path), "%s/fifo", tmpdir);
  assert_int_equal(mkfifo(path, 0600), 0);
  t0 = uv_hrtime();
  c = restoring(&e, path, &log);
  assert_true(uv_hrtime() - t0 < 1000000000ull);
  assert_false(authloop_is_logged_in(c));
  test_run_until(&e, &log.lines, 1, 2000);
  assert_non_null(strstr(log.text, "not a regular file"));
  test_env_close(&e);
  { /* as the CA bundle: libcurl would read it in the first handshake, on the loop */
    authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
    authloop_ctx *ctx = NULL;
    uv_loop_t loop;
    uv_loop_init(&loop);
    o.ca_file = path;
    assert_int_equal(authloop_ctx_new(&loop, &o, &ctx), AUTHLOOP_EINVAL);
    assert_null(ctx);
    assert_int_equal(uv_loop_close(&loop), 0);
  }
  unlink(path);
}

/* ---- logout, then free at once ----------------------------------------------------------- */

static int closed_count;
static void on_closed(authloop_ctx *ctx, void *ud) {
  (void)ctx;
  (void)ud;
  closed_count++;
}

/* The logout reaches the server although its client is freed at once (and
 * the ctx closed right after), and a new client on the same session file
 * does not restore the user who just logged out. Ten times over, because the
 * old failure was a race. */
static void logout_then_free(void **state) {
  char path[320];
  int round;
  (void)state;
  snprintf(path, sizeof(path), "%s/bye", tmpdir);
  for (round = 0; round < 10; round++) {
    test_env e;
    test_recorder r;
    authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
    authloop_client *c, *again;
    long logouts = test_stat(&server, "/auth/logout");
    co.session_path = path;
    /* the round before left a logout's mark: gone, so that only this
     * round's can meet the wait below */
    unlink(path);
    test_env_init(&e, &server, NULL);
    c = gateway(&e, &co);
    test_record(c, &r);
    assert_true(login(&e, c, &r, 0)->success);
    assert_int_equal(authloop_logout(c), 0);
    authloop_client_free(c);
    again = gateway(&e, &co);
    assert_false(authloop_is_logged_in(again));
    authloop_client_free(again);
    closed_count = 0;
    if (round % 2) { /* the ctx goes too, at once: its close waits for the logout */
      assert_int_equal(authloop_ctx_close(e.ctx, on_closed, NULL), 0);
      uv_close((uv_handle_t *)&e.watchdog, NULL);
      assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
      assert_int_equal(closed_count, 1);
      assert_int_equal(uv_loop_close(&e.loop), 0);
      assert_int_equal(test_file_state(path), TEST_FILE_LOGGED_OUT);
    } else {
      test_run_until_file(&e, path, TEST_FILE_LOGGED_OUT, 5000);
      /* and it stays: no write of this round comes after it */
      test_run_until_stored(&e, 5000);
      assert_int_equal(test_file_state(path), TEST_FILE_LOGGED_OUT);
      test_env_close(&e);
    }
    if (test_stat(&server, "/auth/logout") != logouts + 1)
      fail_msg("round %d: the server saw %ld logouts", round,
               test_stat(&server, "/auth/logout") - logouts);
  }
  unlink(path);
}

/* A logout on its way when the ctx closes (its client not freed): the close
 * waits for it and its logout event comes, once, before the close
 * callback, whether the server answers at once or later. */
static int logouts_at_close;
static void count_logout_then_closed(authloop_ctx *ctx, void *ud) {
  const test_recorder *r = ud;
  (void)ctx;
  logouts_at_close = r->count[AUTHLOOP_EV_LOGOUT];
  closed_count++;
}

static void logout_then_close(void **state) {
  static const int delays[] = {0, 300};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
    test_env e;
    test_recorder r;
    authloop_client *c;
    char fault[128];
    test_env_init(&e, &server, NULL);
    c = gateway(&e, NULL);
    test_record(c, &r);
    assert_true(login(&e, c, &r, 0)->success);
    if (delays[i]) {
      snprintf(fault, sizeof(fault), "{\"route\":\"/auth/logout\",\"delayMs\":%d}", delays[i]);
      test_fault(&server, fault);
    }
    assert_int_equal(authloop_logout(c), 0);
    closed_count = 0;
    logouts_at_close = -1;
    assert_int_equal(authloop_ctx_close(e.ctx, count_logout_then_closed, &r), 0);
    uv_close((uv_handle_t *)&e.watchdog, NULL);
    assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed_count, 1);
    if (logouts_at_close != 1)
      fail_msg("a logout answered after %d ms: %d logout events before the close callback",
               delays[i], logouts_at_close);
    assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
    assert_int_equal(uv_loop_close(&e.loop), 0);
  }
}

/* A session file written by a clock ahead (within the skew taken: its
 * expiry past now + its lifetime): its tokens are not from the future, so no
 * refresh waits for them to "come" (a refresh parked for minutes, and the
 * requests behind it timed out). */
static void a_file_from_a_clock_ahead(void **state) {
  char path[320];
  long long now = wall_ms();
  test_env e;
  test_log log;
  test_done done = {0, 0};
  authloop_client *c;
  (void)state;
  snprintf(path, sizeof(path), "%s/ahead", tmpdir);
  memset(&log, 0, sizeof(log));
  write_session(path, 3600, now + 3600LL * 1000 + 200000, now); /* 200 s ahead */
  c = restoring(&e, path, &log);
  assert_true(authloop_is_logged_in(c));
  assert_int_equal(authloop_refresh(c, test_done_cb, &done), 0);
  test_run_until(&e, &done.count, 1, 3000); /* at once: the planted refresh token is refused */
  assert_int_equal(done.status, AUTHLOOP_EREVOKED);
  test_env_close(&e);
  unlink(path);
}

/* ---- strings handed out live until control returns to the loop ---------------------------- */

typedef struct {
  int checked;
} window;

static void check_after(authloop_client *c, int how) {
  const char *tok = authloop_access_token(c), *idt = authloop_id_token(c);
  const authloop_user *u = authloop_current_user(c);
  const char *json = authloop_user_json(u), *uid = authloop_user_id(u);
  char *tok_copy = strdup(tok), *json_copy = strdup(json), *uid_copy = strdup(uid);
  char *idt_copy = strdup(idt);
  if (how == 0)
    assert_int_equal(authloop_logout(c), 0);
  else
    authloop_client_free(c);
  /* the session is gone, the strings read before are not (ASan checks it) */
  assert_null(how == 0 ? authloop_access_token(c) : NULL);
  assert_string_equal(tok, tok_copy);
  assert_string_equal(idt, idt_copy);
  assert_string_equal(json, json_copy);
  assert_string_equal(uid, uid_copy);
  assert_string_equal(authloop_user_json(u), json_copy);
  free(tok_copy);
  free(json_copy);
  free(uid_copy);
  free(idt_copy);
}

static void on_login_check(authloop_client *c, const authloop_event *ev, void *ud) {
  window *w = ud;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT && ev->success) {
    check_after(c, w->checked % 2);
    w->checked++;
  }
}

static void strings_live_until_control_returns(void **state) {
  int round;
  (void)state;
  for (round = 0; round < 3; round++) {
    test_env e;
    test_recorder r;
    window w = {round % 2 ? 1 : 0};
    authloop_client *c;
    char buf[4096], small[8];
    size_t len = 0;
    test_env_init(&e, &server, NULL);
    c = gateway(&e, NULL);
    test_record(c, &r);
    if (round < 2) { /* inside a handler: logout, then free */
      assert_true(authloop_on(c, AUTHLOOP_EV_LOGIN_ATTEMPT, on_login_check, &w) > 0);
      login(&e, c, &r, 0);
      test_run_turns(&e, 2);
      assert_int_equal(w.checked, round % 2 ? 2 : 1);
    } else { /* outside any callback, before the loop runs again */
      assert_true(login(&e, c, &r, 0)->success);
      assert_int_equal(authloop_copy(c, AUTHLOOP_COPY_ACCESS_TOKEN, buf, sizeof(buf), &len), 0);
      assert_string_equal(buf, authloop_access_token(c));
      assert_int_equal(len, strlen(buf));
      assert_int_equal(authloop_copy(c, AUTHLOOP_COPY_ACCESS_TOKEN, small, sizeof(small), &len),
                       AUTHLOOP_ETOOLARGE);
      assert_string_equal(small, ""); /* never a truncated token */
      assert_int_equal(len, strlen(buf));
      assert_int_equal(authloop_copy(c, AUTHLOOP_COPY_USER_NAME, buf, sizeof(buf), NULL), 0);
      assert_string_equal(buf, "User hardy");
      assert_int_equal(authloop_copy(c, (authloop_copy_what)99, buf, sizeof(buf), NULL),
                       AUTHLOOP_EINVAL);
      check_after(c, 0);
      test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
      assert_int_equal(authloop_copy(c, AUTHLOOP_COPY_ACCESS_TOKEN, buf, sizeof(buf), NULL),
                       AUTHLOOP_ENOTLOGGEDIN);
    }
    test_env_close(&e);
  }
}

/* ---- descriptors a program the application starts must not inherit ------------------------ */

/* Every fsync() of this program passes through here: the session file's
 * temporary, synced before its rename, is then open, and its descriptor is
 * looked at (whatever thread of the pool writes it). */
static int temporaries_synced, temporaries_inheritable;

int fsync(int fd) {
  int (*real)(int);
  char link[64], target[512];
  ssize_t n;
  *(void **)&real = dlsym(RTLD_NEXT, "fsync"); /* on every call: any thread may make it */
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  n = readlink(link, target, sizeof(target) - 1);
  if (n > 0) {
    target[n] = '\0';
    if (strstr(target, "/cloexec.tmp-")) {
      __atomic_add_fetch(&temporaries_synced, 1, __ATOMIC_SEQ_CST);
      if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
        __atomic_add_fetch(&temporaries_inheritable, 1, __ATOMIC_SEQ_CST);
    }
  }
  return real(fd);
}

/* The sockets of this process connected to the reference server: how many,
 * and how many of them a program started by exec() would hold. */
static int server_sockets(int *inheritable) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *ent;
  int n = 0;
  *inheritable = 0;
  assert_non_null(d);
  while ((ent = readdir(d))) {
    struct sockaddr_storage a;
    socklen_t len = sizeof(a);
    int fd = atoi(ent->d_name);
    if (fd < 3 || fd == dirfd(d) || getpeername(fd, (struct sockaddr *)&a, &len) != 0)
      continue;
    if ((a.ss_family == AF_INET && ntohs(((struct sockaddr_in *)&a)->sin_port) == server.port) ||
        (a.ss_family == AF_INET6 && ntohs(((struct sockaddr_in6 *)&a)->sin6_port) == server.port)) {
      n++;
      if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
        (*inheritable)++;
    }
  }
  closedir(d);
  return n;
}

/* A program the application starts (fork and exec) holds none of
 * authloop's descriptors: not its connections, kept between requests (the
 * server would never see them close, and the program could write into
 * them), not the session file's temporary, which holds the whole session
 * (written on the thread pool, while the application's thread may fork). */
static void descriptors_are_close_on_exec(void **state) {
  char path[400];
  test_env e;
  test_recorder r;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c;
  int i, inheritable;
  (void)state;
  snprintf(path, sizeof(path), "%s/cloexec", tmpdir);
  o.session_path = path;
  test_env_init(&e, &server, NULL);
  c = gateway(&e, &o);
  test_record(c, &r);
  assert_true(login(&e, c, &r, 3600)->success);
  test_run_until_stored(&e, 5000);
  for (i = 0; i < 3; i++) {
    test_done d = {0};
    assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
    test_run_until(&e, &d.count, 1, 5000);
    assert_int_equal(d.status, 0);
    test_run_until_stored(&e, 5000);
  }
  assert_true(server_sockets(&inheritable) >= 1); /* the connection kept for the next request */
  assert_int_equal(inheritable, 0);
  assert_true(__atomic_load_n(&temporaries_synced, __ATOMIC_SEQ_CST) >=
              4); /* the login's, each refresh's */
  assert_int_equal(__atomic_load_n(&temporaries_inheritable, __ATOMIC_SEQ_CST), 0);
  authloop_client_free(c);
  test_env_close(&e);
  unlink(path);
}

/* Temporaries a writer killed mid-write left behind (each may hold a whole
 * session) go when the file is next loaded or written; other names stay. */
static void stale_temporaries_are_removed(void **state) {
  char dir[320], path[400], tmp[420], other[420];
  long long now = wall_ms();
  test_env e;
  test_log log = {0};
  test_recorder r;
  authloop_client *c;
  int i;
  (void)state;
  snprintf(dir, sizeof(dir), "%s/tmps", tmpdir);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(path, sizeof(path), "%s/session", dir);
  snprintf(other, sizeof(other), "%s/session.tmp-keepme-not-ours", dir);
  write_session(path, 3600, now + 3000 * 1000, now);
  write_session(other, 3600, now + 3000 * 1000, now);
  for (i = 0; i < 3; i++) {
    snprintf(tmp, sizeof(tmp), "%s/session.tmp-ABC%03d", dir, i);
    write_session(tmp, 3600, now + 3000 * 1000, now);
  }
  /* the load leaves them (scanning a directory, which may be large, is no
   * work for the loop thread); the next write removes them, off the loop */
  c = restoring(&e, path, &log);
  assert_true(authloop_is_logged_in(c));
  snprintf(tmp, sizeof(tmp), "%s/session.tmp-ABC%03d", dir, 0);
  assert_int_equal(access(tmp, F_OK), 0);
  snprintf(tmp, sizeof(tmp), "%s/session.tmp-XYZ123", dir);
  write_session(tmp, 3600, now + 3000 * 1000, now);
  test_record(c, &r);
  assert_int_equal(authloop_logout(c), 0); /* a logout's mark, under the lock */
  test_run_until_file(&e, path, TEST_FILE_LOGGED_OUT, 5000);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_not_equal(access(tmp, F_OK), 0);
  for (i = 0; i < 3; i++) {
    snprintf(tmp, sizeof(tmp), "%s/session.tmp-ABC%03d", dir, i);
    assert_int_not_equal(access(tmp, F_OK), 0);
  }
  assert_int_equal(access(other, F_OK), 0);
  test_env_close(&e);
  test_remove_tree(dir);
}

/* A write that went without the lock (a lock file nobody should trust: one
 * anyone may write) removed no temporary, since that is done under the lock
 * only; the next write that holds the lock does. */
static void temporaries_go_with_the_first_locked_write(void **state) {
  char dir[320], path[400], lock[420], tmp[420];
  test_env e;
  test_recorder r;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c;
  long long now = wall_ms();
  int fd, i;
  (void)state;
  snprintf(dir, sizeof(dir), "%s/tmps-locked", tmpdir);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(path, sizeof(path), "%s/session", dir);
  snprintf(lock, sizeof(lock), "%s/session.lock", dir);
  snprintf(tmp, sizeof(tmp), "%s/session.tmp-LEFT01", dir);
  fd = open(lock, O_CREAT | O_WRONLY, 0600);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(chmod(lock, 0666), 0); /* anyone may write it: not used */
  test_env_init(&e, &server, NULL);
  o.session_path = path;
  c = gateway(&e, &o);
  test_record(c, &r);
  write_session(tmp, 3600, now + 3000 * 1000, now);
  for (i = 0; i < 2; i++) {
    test_done d = {0};
    if (i == 0) {
      assert_true(login(&e, c, &r, 3600)->success); /* its write goes without the lock */
    } else {
      assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
      test_run_until(&e, &d.count, 1, 5000);
      assert_int_equal(d.status, 0);
    }
    test_run_until_stored(&e, 5000);
    if (i == 0) {
      assert_int_equal(access(tmp, F_OK), 0); /* no lock: left */
      assert_int_equal(chmod(lock, 0600), 0); /* the lock is good again */
    }
  }
  assert_int_not_equal(access(tmp, F_OK), 0);
  authloop_client_free(c);
  test_env_close(&e);
  test_remove_tree(dir);
}

/* A first write that waits for a busy lock, replaced while it waits by a
 * newer one (the logout's mark): the newer one tidies in its place, under
 * the lock, rather than the path passing for tidied (helper-36). */
static void a_replaced_first_write_still_tidies(void **state) {
  char dir[320], path[400], lock[420], tmp[420];
  test_env e;
  test_recorder r;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c;
  long long now = wall_ms();
  int fd;
  (void)state;
  snprintf(dir, sizeof(dir), "%s/tmps-replaced", tmpdir);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(path, sizeof(path), "%s/session", dir);
  snprintf(lock, sizeof(lock), "%s/session.lock", dir);
  snprintf(tmp, sizeof(tmp), "%s/session.tmp-LEFT02", dir);
  fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0); /* another process's write, for a moment */
  test_env_init(&e, &server, NULL);
  o.session_path = path;
  c = gateway(&e, &o);
  test_record(c, &r);
  write_session(tmp, 3600, now + 3000 * 1000, now);
  /* its write starts at once, meets the busy lock, and waits (tried again
   * every 20 ms): the mark then replaces it, whether it is between tries or
   * in one */
  assert_true(login(&e, c, &r, 3600)->success);
  assert_int_equal(authloop_logout(c), 0); /* the mark replaces the waiting write */
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(access(tmp, F_OK), 0); /* nothing ran under the lock yet */
  flock(fd, LOCK_UN);                     /* well before the lock wait's deadline */
  close(fd);
  test_run_until_file(&e, path, TEST_FILE_LOGGED_OUT, 5000);
  test_run_until_stored(&e, 5000);
  assert_int_not_equal(access(tmp, F_OK), 0);
  authloop_client_free(c);
  test_env_close(&e);
  test_remove_tree(dir);
}

/* A host name that does not resolve is that host's problem, not a network
 * that is down: it never puts anything on hold. */
static void names_that_do_not_resolve(void **state) {
  test_env e;
  test_recorder r;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c;
  int i;
  (void)state;
  test_env_init(&e, &server, NULL);
  o.provider = "gateway";
  o.base_url = "https://no-such-host.invalid";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  for (i = 1; i <= 4; i++) {
    assert_int_equal(authloop_login_code(c, "code"), 0); /* never EOFFLINE */
    test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], i, 10000);
    assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ERESOLVE);
  }
  test_env_close(&e);
}

/* ---- found by attacking the redesign ------------------------------------------------------ */

/* Requests wait for a slow refresh, three go out to a dropped connection (the
 * origin goes on hold), and the fourth's answer, arriving after its wait
 * deadline, brings the origin back: that wakes every client while the answer
 * is being read. Each request ends once, and nothing is used after it was
 * freed (the sanitizer runs check it). */
static void an_answer_that_brings_its_origin_back(void **state) {
  test_env e;
  test_recorder r;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client *c;
  test_reply a = {0};
  long me = test_stat(&server, "/api/me");
  (void)state;
  o.ca_file = server.ca;
  o.timeout_ms = 2000;
  test_env_init(&e, &server, &o);
  c = gateway(&e, NULL);
  test_record(c, &r);
  assert_true(login(&e, c, &r, 0)->success);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":1000}");
  test_fault(&server, "{\"route\":\"/api/me\",\"delayMs\":1500}");
  test_fault(&server, "{\"route\":\"/api/echo\",\"drop\":true,\"count\":3}");
  assert_int_equal(authloop_refresh(c, NULL, NULL), 0);
  assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, test_reply_cb, &a), 0);
  assert_int_equal(authloop_request(c, "POST", "/api/echo", "{}", test_reply_cb, &a), 0);
  assert_int_equal(authloop_request(c, "POST", "/api/echo", "{}", test_reply_cb, &a), 0);
  assert_int_equal(authloop_request(c, "POST", "/api/echo", "{}", test_reply_cb, &a), 0);
  test_run_until(&e, &a.count, 4, 8000);
  test_run_for(&e, 300);
  assert_int_equal(a.count, 4);
  assert_int_equal(test_stat(&server, "/api/me"), me + 1); /* sent once, not twice */
  test_env_close(&e);
}

/* A restored session whose token died, refreshed on first activity against
 * a failing server: the retries back off, they do not storm. */
static void a_stale_session_backs_off(void **state) {
  char path[320];
  long long now = wall_ms();
  long before;
  test_env e;
  test_log log = {0};
  authloop_client *c;
  (void)state;
  snprintf(path, sizeof(path), "%s/stale", tmpdir);
  write_session(path, 4, now - 1000, now - 2000);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"status\":503,\"count\":1000}");
  before = test_stat(&server, "/auth/refresh");
  c = restoring(&e, path, &log);
  assert_true(authloop_is_logged_in(c));
  assert_int_equal(authloop_touch(c), 0);
  test_run_for(&e, 2000);
  /* 1 s first step, full jitter: the first try and at least one retry, a
   * handful at most; the storm was thousands */
  if (test_stat(&server, "/auth/refresh") - before > 6 ||
      test_stat(&server, "/auth/refresh") - before < 2)
    fail_msg("%ld refreshes in 2 s", test_stat(&server, "/auth/refresh") - before);
  assert_true(authloop_is_logged_in(c));
  test_env_close(&e);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"clear\":true}");
  unlink(path);
}

/* No refresh token (a session file with an empty one): a refresh can never
 * work, so the session ends at once as revoked instead of retrying forever. */
static void a_session_without_a_refresh_token_ends(void **state) {
  char payload[1024], path[320];
  long long now = wall_ms();
  int round;
  (void)state;
  snprintf(path, sizeof(path), "%s/norefresh", tmpdir);
  for (round = 0; round < 2; round++) {
    test_env e;
    test_log log = {0};
    test_recorder r;
    authloop_client *c;
    test_done d = {0, 1};
    int fd, n;
    n = snprintf(payload, sizeof(payload),
                 "ALS1\x01%c{\"v\":1,\"provider\":\"gateway\",\"baseUrl\":\"%s\",\"user\":"
                 "{\"id\":\"u\"},\"accessToken\":\"at\",\"idToken\":\"it\",\"refreshToken\":"
                 "\"\",\"lifetime\":60,\"expiresAt\":%lld,\"lastActivity\":%lld}",
                 0, server.base_url, round ? now + 50000 : now - 1000, now);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(write(fd, payload, (size_t)n), n);
    close(fd);
    c = restoring(&e, path, &log);
    test_record(c, &r);
    assert_true(authloop_is_logged_in(c));
    if (round == 0) /* a dead token: the first activity refreshes */
      assert_int_equal(authloop_touch(c), 0);
    else /* a live one: asked for */
      assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
    test_run_until(&e, &r.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 3000);
    assert_int_equal(r.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
    if (round == 1)
      assert_int_equal(d.status, AUTHLOOP_EREVOKED);
    test_env_close(&e);
  }
  unlink(path);
}

/* The session file goes, or becomes unsafe (mode 0666, a directory others
 * may write: mkdir under umask 002), between two refreshes: the refresh
 * reads it again under the lock and must carry on as if alone (it once
 * freed an uninitialised read of it: a crash at the first refresh). */
static void a_refresh_after_the_file_went_or_turned_unsafe(void **state) {
  static const char *const how[] = {"removed", "0666", "directory 0777"};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
    authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
    char dir[320], path[400];
    test_env e;
    test_recorder r;
    authloop_client *c;
    test_done d = {0, 1};
    snprintf(dir, sizeof(dir), "%s/unsafe%zu", tmpdir, i);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/session", dir);
    o.session_path = path;
    test_env_init(&e, &server, NULL);
    c = gateway(&e, &o);
    test_record(c, &r);
    assert_true(login(&e, c, &r, 60)->success);
    test_run_until_file(&e, path, 1, 5000);
    if (i == 0)
      assert_int_equal(unlink(path), 0);
    else if (i == 1)
      assert_int_equal(chmod(path, 0666), 0);
    else
      assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
    test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 5000);
    if (d.status != 0 || !authloop_is_logged_in(c))
      fail_msg("%s: status %s", how[i], authloop_err_name(d.status));
    test_env_close(&e);
    chmod(dir, 0700);
    test_remove_tree(dir);
  }
}

/* A newer generation in the file that cannot be used (a user without an
 * id): the refresh goes on alone. Only another user's session ends this
 * one; a file it cannot read, or memory it could not get, once ended it as
 * "replaced". */
static void a_newer_file_that_cannot_be_used(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  char path[320], payload[1024];
  test_env e;
  test_recorder r;
  authloop_client *c;
  test_done d = {0, 1};
  int fd, n;
  (void)state;
  snprintf(path, sizeof(path), "%s/newer-bad", tmpdir);
  o.session_path = path;
  test_env_init(&e, &server, NULL);
  c = gateway(&e, &o);
  test_record(c, &r);
  assert_true(login(&e, c, &r, 60)->success);
  test_run_until_file(&e, path, 1, 5000);
  n = snprintf(payload, sizeof(payload),
               "ALS1\x01%c{\"v\":1,\"gen\":%lld,\"provider\":\"gateway\",\"baseUrl\":\"%s\","
               "\"user\":{\"name\":\"no id\"},\"accessToken\":\"at\",\"idToken\":\"it\","
               "\"refreshToken\":\"rt\",\"lifetime\":60,\"expiresAt\":%lld,\"lastActivity\":%lld}",
               0, 1LL << 52, server.base_url, wall_ms() + 50000, wall_ms());
  fd = open(path, O_WRONLY | O_TRUNC, 0600);
  assert_int_equal(write(fd, payload, (size_t)n), n);
  close(fd);
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 5000);
  assert_int_equal(d.status, 0);
  assert_true(authloop_is_logged_in(c));
  assert_int_equal(r.count[AUTHLOOP_EV_LOGOUT], 0);
  test_env_close(&e);
  unlink(path);
}

static void dot_segments_and_userinfo(void **state) {
  test_env e;
  test_recorder r;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  test_reply a = {0};
  char url[128];
  (void)state;
  test_env_init(&e, &server, NULL);
  c = gateway(&e, NULL);
  test_record(c, &r);
  assert_true(login(&e, c, &r, 0)->success);
  assert_int_equal(authloop_request(c, "GET", "/../api/me", NULL, test_reply_cb, &a),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_request(c, "GET", "/x/%2e%2E/me", NULL, test_reply_cb, &a),
                   AUTHLOOP_EINVAL);
  assert_int_equal(authloop_request(c, "GET", "/./me", NULL, test_reply_cb, &a), AUTHLOOP_EINVAL);
  o.provider = "gateway";
  o.base_url = server.base_url;
  o.login_path = "/auth/../admin";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.login_path = NULL;
  snprintf(url, sizeof(url), "https://user:pw@127.0.0.1:%d", server.port);
  o.base_url = url; /* credentials in a URL would go out as Basic auth */
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  test_env_close(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(options_at_their_extremes),
      cmocka_unit_test(jwt_lifetimes_at_the_edges),
      cmocka_unit_test(kuzzle_lifetimes_at_the_edges),
      cmocka_unit_test(session_file_times),
      cmocka_unit_test(planted_session_files),
      cmocka_unit_test(a_fifo_does_not_block),
      cmocka_unit_test(logout_then_free),
      cmocka_unit_test(logout_then_close),
      cmocka_unit_test(a_file_from_a_clock_ahead),
      cmocka_unit_test(strings_live_until_control_returns),
      cmocka_unit_test(stale_temporaries_are_removed),
      cmocka_unit_test(temporaries_go_with_the_first_locked_write),
      cmocka_unit_test(a_replaced_first_write_still_tidies),
      cmocka_unit_test(descriptors_are_close_on_exec),
      cmocka_unit_test(names_that_do_not_resolve),
      cmocka_unit_test(an_answer_that_brings_its_origin_back),
      cmocka_unit_test(a_stale_session_backs_off),
      cmocka_unit_test(a_session_without_a_refresh_token_ends),
      cmocka_unit_test(a_refresh_after_the_file_went_or_turned_unsafe),
      cmocka_unit_test(a_newer_file_that_cannot_be_used),
      cmocka_unit_test(dot_segments_and_userinfo),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("hardening", tests, group_setup, group_teardown);
}
