/* SPDX-License-Identifier: MIT */
/* One session file shared by several sessions (docs/session-file.md), each
 * on its own ctx and loop, as separate processes would be: the lock beside
 * the file is an flock, which two open file descriptions contend for as two
 * processes would, and each ctx has its own writer. Both loops run in this
 * thread, woken by poll(2) on their backend fds and deadlines. Each test is a
 * way a shared file went wrong when attacked: the processes must agree on
 * one session, never revive one that a logout ended, never spend a refresh
 * token another has rotated away, and never wait without a bound. */
#include "harness.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];
static int file_n;

static int group_setup(void **state) {
  test_group_setup(state);
  test_make_tmpdir(tmpdir, sizeof(tmpdir), "sharing");
  return 0;
}

static int group_teardown(void **state) {
  test_group_teardown(state);
  test_remove_tree(tmpdir);
  return 0;
}

static const char *new_path(char *buf, size_t n) {
  snprintf(buf, n, "%s/s%d.session", tmpdir, ++file_n);
  return buf;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Both loops until cond(arg) or limit_ms; fails the test at the limit. */
typedef int (*cond_fn)(void *arg);

/* Both loops until cond(arg) or limit_ms; with a cond, fails the test when
 * neither loop has anything left that could bring it (a lost wake-up), and
 * when they turn more often than the wait explains (a spin). */
static int run_two_until(test_env *a, test_env *b, cond_fn cond, void *arg, unsigned limit_ms) {
  long long end = now_ms() + (cond ? test_scaled(limit_ms) : limit_ms);
  uint64_t start = uv_hrtime();
  unsigned long turns = 0;
  while (!(cond && cond(arg))) {
    struct pollfd p[2];
    int ta = uv_backend_timeout(&a->loop), tb = uv_backend_timeout(&b->loop), t;
    long long left = end - now_ms();
    if (left <= 0)
      return cond ? 0 : 1;
    if (cond && !uv_loop_alive(&a->loop) && !uv_loop_alive(&b->loop))
      fail_msg("both loops ran dry waiting: nothing of authloop's kept them alive");
    test_check_spin(++turns, start, "run_two_until");
    t = ta < 0 ? tb : tb < 0 ? ta : ta < tb ? ta : tb;
    if (t < 0 || t > left)
      t = (int)left;
    p[0].fd = uv_backend_fd(&a->loop);
    p[1].fd = uv_backend_fd(&b->loop);
    p[0].events = p[1].events = POLLIN;
    poll(p, 2, t);
    uv_run(&a->loop, UV_RUN_NOWAIT);
    uv_run(&b->loop, UV_RUN_NOWAIT);
  }
  return 1;
}

static void run_two_for(test_env *a, test_env *b, unsigned ms) {
  run_two_until(a, b, NULL, NULL, ms);
}

/* Every session-file write of both ctxs on disk, their locks released. */
typedef struct {
  test_env *a, *b;
} env_pair;
static int both_stored(void *arg) {
  env_pair *p = arg;
  return test_stored(p->a) && test_stored(p->b);
}
static void run_two_until_stored(test_env *a, test_env *b) {
  env_pair p = {a, b};
  if (!run_two_until(a, b, both_stored, &p, 5000))
    fail_msg("the session-file writes did not finish within 5 s");
}

typedef struct {
  const int *v;
  int target;
} at_least;

static int reached(void *arg) {
  const at_least *w = arg;
  return *w->v >= w->target;
}

static void run_two_to(test_env *a, test_env *b, const int *v, int target, unsigned limit_ms) {
  at_least w = {v, target};
  if (!run_two_until(a, b, reached, &w, limit_ms))
    fail_msg("a count stayed at %d, short of %d, for %u ms", *v, target, limit_ms);
}

static authloop_client *client_on(test_env *e, const char *path, unsigned idle_s) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "gateway";
  o.base_url = server.base_url;
  o.session_path = path;
  o.idle_window_s = idle_s;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static void env_with_timeout(test_env *e, unsigned timeout_ms) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  o.ca_file = server.ca;
  o.timeout_ms = timeout_ms;
  test_env_init(e, &server, &o);
}

static void login_as(test_env *e, authloop_client *c, test_recorder *r, const char *user, int ttl) {
  char *code = test_mint_code_ttl(&server, user, ttl);
  int before = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], before + 1, 5000);
  assert_true(r->last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
}

/* The plain file's JSON (after the 6-byte header), or NULL. */
static json_t *read_plain(const char *path) {
  char buf[70000];
  ssize_t n;
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 6)
    return NULL;
  return json_loadb(buf + 6, (size_t)n - 6, 0, NULL);
}

static void write_plain(const char *path, json_t *j) {
  char *text = json_dumps(j, JSON_COMPACT), tmp[400];
  int fd;
  snprintf(tmp, sizeof(tmp), "%s.edit", path);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "ALS1\x01\x00", 6), 6);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(rename(tmp, path), 0);
  free(text);
}

static long long file_gen(const char *path) {
  json_t *j = read_plain(path);
  long long g = j ? (long long)json_integer_value(json_object_get(j, "gen")) : -1;
  json_decref(j);
  return g;
}

/* Whether another could take the lock beside path now. */
static int lock_is_free(const char *path);
static int lock_is_held(void *path) { return !lock_is_free(path); }
static int lock_is_free(const char *path) {
  char lock[400];
  int fd, ok;
  snprintf(lock, sizeof(lock), "%s.lock", path);
  if ((fd = open(lock, O_RDWR | O_CREAT, 0600)) < 0)
    return 0;
  ok = flock(fd, LOCK_EX | LOCK_NB) == 0;
  close(fd); /* releases it */
  return ok;
}

/* ---- taking another's tokens ---------------------------------------------------------- */

/* A takes fresh tokens; B's due refresh then finds them in the file and takes
 * them without a request. Taken tokens keep the expiry they have (not a new
 * lifetime from now), and B goes on refreshing on its own schedule after A
 * has gone: it was left with no wake-up at all once. */
static void taken_tokens_keep_their_expiry_and_schedule(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb;
  test_done d = {0};
  char path[320];
  long refreshes;
  long long a_left, b_left;
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "kept", 4); /* due after 2 s */
  test_run_until_file(&a, path, 1, 5000);
  cb = client_on(&b, path, 0);
  test_record(cb, &rb);
  assert_true(authloop_is_logged_in(cb));
  assert_int_equal(authloop_touch(cb), 0);
  run_two_for(&a, &b, 800);
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0); /* a newer generation in the file */
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  refreshes = test_stat(&server, "/auth/refresh");
  /* B's own due time comes: it takes A's tokens, no request */
  run_two_to(&a, &b, &rb.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, 5000);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes);
  assert_string_equal(authloop_access_token(cb), authloop_access_token(ca));
  a_left = authloop_token_expires_in_ms(ca);
  b_left = authloop_token_expires_in_ms(cb);
  print_message("# after the take: A %lld ms left, B %lld ms left\n", a_left, b_left);
  assert_true(b_left <= a_left + 300 && b_left >= a_left - 300);
  assert_true(b_left < 3600); /* not a fresh 4 s from now */
  authloop_client_free(ca);
  /* B alone: due every 2 s, for 7 s */
  run_two_for(&a, &b, 7000);
  print_message("# B alone: %ld refreshes in 7 s\n",
                test_stat(&server, "/auth/refresh") - refreshes);
  assert_true(test_stat(&server, "/auth/refresh") - refreshes >= 3);
  assert_int_equal(authloop_client_state(cb), AUTHLOOP_STATE_LOGGED_IN);
  assert_true(authloop_token_expires_in_ms(cb) > 0);
  assert_int_equal(rb.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  test_env_close(&a);
  test_env_close(&b);
}

/* A file whose generation is newer but whose token has run out too: taken,
 * then refreshed with its refresh token (the current one), under the lock. */
static void a_newer_but_dead_token_is_refreshed(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb;
  test_done d = {0};
  char path[320];
  json_t *j;
  long refreshes, reuse = test_stat(&server, "rotatedReuse");
  (void)state;
  json_decref(test_control(&server, "/__test/config", "{\"rotateRefreshTokens\":true}"));
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "dead", 3600);
  test_run_until_file(&a, path, 1, 5000);
  cb = client_on(&b, path, 0);
  test_record(cb, &rb);
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d),
                   0); /* rotates: B's refresh token is spent */
  run_two_to(&a, &b, &d.count, 1, 5000);
  run_two_until_stored(&a, &b); /* on disk */
  authloop_client_free(ca);
  /* its access token has expired (as after a long sleep) */
  j = read_plain(path);
  assert_non_null(j);
  json_object_set_new(j, "expiresAt", json_integer((json_int_t)time(NULL) * 1000 - 1000));
  write_plain(path, j);
  json_decref(j);
  refreshes = test_stat(&server, "/auth/refresh");
  d.count = 0;
  assert_int_equal(authloop_refresh(cb, test_done_cb, &d), 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 1);
  assert_int_equal(test_stat(&server, "rotatedReuse"),
                   reuse); /* A's rotated token, not B's spent one */
  assert_true(authloop_token_expires_in_ms(cb) > 3000 * 1000);
  json_decref(test_control(&server, "/__test/config", "{\"rotateRefreshTokens\":false}"));
  test_env_close(&a);
  test_env_close(&b);
}

/* Another process's clock runs 10 minutes ahead: its last activity is "in the
 * future" here. Its newer tokens are still taken (times clamped to ours);
 * refusing them meant presenting a refresh token it had rotated away. */
static void a_clock_ahead_is_clamped_not_refused(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb;
  test_done d = {0};
  char path[320];
  json_t *j;
  long refreshes, reuse = test_stat(&server, "rotatedReuse");
  (void)state;
  json_decref(test_control(&server, "/__test/config", "{\"rotateRefreshTokens\":true}"));
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "skew", 3600);
  test_run_until_file(&a, path, 1, 5000);
  cb = client_on(&b, path, 0);
  test_record(cb, &rb);
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  run_two_until_stored(&a, &b);
  j = read_plain(path);
  assert_non_null(j);
  json_object_set_new(j, "lastActivity",
                      json_integer((json_int_t)time(NULL) * 1000 + 10 * 60 * 1000));
  write_plain(path, j);
  json_decref(j);
  refreshes = test_stat(&server, "/auth/refresh");
  d.count = 0;
  assert_int_equal(authloop_refresh(cb, test_done_cb, &d), 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes); /* taken, not refreshed */
  assert_int_equal(test_stat(&server, "rotatedReuse"), reuse);
  assert_string_equal(authloop_access_token(cb), authloop_access_token(ca));
  assert_int_equal(rb.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  json_decref(test_control(&server, "/__test/config", "{\"rotateRefreshTokens\":false}"));
  test_env_close(&a);
  test_env_close(&b);
}

/* ---- ending a shared session ------------------------------------------------------------ */

/* A logs out and the server cannot be told: the file becomes a logout's mark
 * (no secret in it). B's next refresh finds the mark and ends B's copy
 * without a request; the session is not written back, and a process started
 * later restores nothing. */
static void a_logout_elsewhere_ends_the_session_here(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb, *cc;
  test_done d = {0};
  char path[320];
  long refreshes;
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "leaver", 3600);
  test_run_until_file(&a, path, 1, 5000);
  cb = client_on(&b, path, 0);
  test_record(cb, &rb);
  assert_true(authloop_is_logged_in(cb));
  test_fault(&server, "{\"route\":\"/auth/logout\",\"status\":503,\"count\":1}");
  assert_int_equal(authloop_logout(ca), 0);
  run_two_to(&a, &b, &ra.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(ra.last[AUTHLOOP_EV_LOGOUT].error, AUTHLOOP_EUNAVAILABLE);
  test_run_until_file(&a, path, TEST_FILE_LOGGED_OUT, 5000);
  refreshes = test_stat(&server, "/auth/refresh");
  assert_int_equal(authloop_refresh(cb, test_done_cb, &d), 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, AUTHLOOP_EREVOKED);
  assert_int_equal(rb.count[AUTHLOOP_EV_LOGOUT], 1);
  assert_int_equal(rb.last[AUTHLOOP_EV_LOGOUT].error, AUTHLOOP_EREVOKED);
  assert_int_equal(authloop_client_state(cb), AUTHLOOP_STATE_LOGGED_OUT);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes);
  run_two_until_stored(&a, &b);
  assert_int_equal(test_file_state(path), TEST_FILE_LOGGED_OUT);
  cc = client_on(&a, path, 0);
  assert_false(authloop_is_logged_in(cc));
  test_env_close(&a);
  test_env_close(&b);
}

/* A logs out and logs in again (the file was a mark, then a new session):
 * B, at its next refresh, takes the new session instead of presenting the
 * refresh token the logout revoked, ending "revoked" and deleting A's file.
 * When A logs in as another user, B's session ends and A's file stays. */
static void a_new_login_elsewhere(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb, *cc;
  test_done d = {0};
  char path[320];
  long refreshes;
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "again", 3600);
  test_run_until_file(&a, path, 1, 5000);
  cb = client_on(&b, path, 0);
  test_record(cb, &rb);
  assert_int_equal(authloop_logout(ca), 0);
  run_two_to(&a, &b, &ra.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  test_run_until_file(&a, path, TEST_FILE_LOGGED_OUT, 5000);
  login_as(&a, ca, &ra, "again", 3600);
  test_run_until_file(&a, path, 1, 5000);
  refreshes = test_stat(&server, "/auth/refresh");
  assert_int_equal(authloop_refresh(cb, test_done_cb, &d), 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes); /* taken */
  assert_string_equal(authloop_access_token(cb), authloop_access_token(ca));
  assert_int_equal(rb.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);

  /* another user now */
  assert_int_equal(authloop_logout(ca), 0);
  run_two_to(&a, &b, &ra.count[AUTHLOOP_EV_LOGOUT], 2, 5000);
  /* the mark on disk first: until then the file still holds the old
   * session, which the wait for the new one below would take for it */
  test_run_until_file(&a, path, TEST_FILE_LOGGED_OUT, 5000);
  login_as(&a, ca, &ra, "someone-else", 3600);
  test_run_until_file(&a, path, 1, 5000);
  run_two_until_stored(&a, &b);
  d.count = 0;
  assert_int_equal(authloop_refresh(cb, test_done_cb, &d), 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, AUTHLOOP_EREVOKED);
  assert_int_equal(authloop_client_state(cb), AUTHLOOP_STATE_LOGGED_OUT);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes);
  run_two_until_stored(&a, &b);
  cc = client_on(&b, path, 0);
  assert_true(authloop_is_logged_in(cc));
  assert_string_equal(authloop_user_id(authloop_current_user(cc)), "someone-else");
  test_env_close(&a);
  test_env_close(&b);
}

/* Generations never go backwards, even when the file is gone: B has
 * refreshed (a high generation), the file is deleted (an idle process's
 * end, a clean-up), and A logs in again. A's new session must still be newer
 * than B's, or B would refresh its own old session over it. */
static void a_login_after_the_file_went_is_newer(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb;
  test_done d = {0};
  char path[320];
  long refreshes;
  int i;
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "phoenix", 3600);
  test_run_until_file(&a, path, 1, 5000);
  cb = client_on(&b, path, 0);
  test_record(cb, &rb);
  for (i = 0; i < 3; i++) { /* B's generation climbs */
    d.count = 0;
    assert_int_equal(authloop_refresh(cb, test_done_cb, &d), 0);
    run_two_to(&a, &b, &d.count, 1, 5000);
    assert_int_equal(d.status, 0);
  }
  run_two_until_stored(&a, &b);
  authloop_client_free(ca);
  assert_int_equal(unlink(path), 0);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "phoenix", 3600);
  test_run_until_file(&a, path, 1, 5000);
  run_two_until_stored(&a, &b);
  refreshes = test_stat(&server, "/auth/refresh");
  d.count = 0;
  assert_int_equal(authloop_refresh(cb, test_done_cb, &d), 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes); /* A's session taken */
  assert_string_equal(authloop_access_token(cb), authloop_access_token(ca));
  test_env_close(&a);
  test_env_close(&b);
}

/* B is idle, A active. When B's token runs out, A has refreshed: B takes the
 * newer session instead of ending and deleting the file A uses. (Alone, an
 * idle session ends and its file goes.) */
static void an_idle_process_leaves_an_active_one_alone(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb;
  char path[320];
  long long end;
  int missing = 0;
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "busy", 3);
  test_run_until_file(&a, path, 1, 5000);
  cb = client_on(&b, path, 1); /* idle after a second */
  test_record(cb, &rb);
  end = now_ms() + 6000;
  while (now_ms() < end) {
    run_two_for(&a, &b, 100);
    authloop_touch(ca);
    missing += test_file_state(path) != 1;
  }
  print_message("# A refreshed %d times; B took %d; the file was missing %d times\n",
                ra.count[AUTHLOOP_EV_TOKEN_REFRESHED], rb.count[AUTHLOOP_EV_TOKEN_REFRESHED],
                missing);
  assert_true(ra.count[AUTHLOOP_EV_TOKEN_REFRESHED] >= 2);
  assert_int_equal(missing, 0);
  assert_int_equal(ra.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  assert_int_equal(rb.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  assert_true(rb.count[AUTHLOOP_EV_TOKEN_REFRESHED] >= 1);
  /* A leaves; B, idle, ends and the file goes */
  authloop_client_free(ca);
  run_two_to(&a, &b, &rb.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 8000);
  assert_int_equal(rb.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_IDLE);
  test_run_until_file(&b, path, 0, 5000);
  test_env_close(&a);
  test_env_close(&b);
}

/* A session the server never refreshes (a Kuzzle API key) ends at its
 * token's end only when the file holds nothing newer: another process that
 * logged in again meanwhile (the same user) keeps it going here too, as an
 * idle end would. */
static authloop_client *kuzzle_on(test_env *e, const char *path) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "kuzzle";
  o.base_url = server.base_url;
  o.session_path = path;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static void an_unrefreshed_session_takes_a_newer_one(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  test_done done = {0, 0};
  authloop_client *ca, *cb;
  char path[320];
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = kuzzle_on(&a, path);
  test_record(ca, &ra);
  test_kuzzle_api_key_login(&a, ca, &ra, 4000);
  assert_int_equal(authloop_refresh(ca, test_done_cb, &done), 0);
  test_run_until(&a, &done.count, 1, 5000);
  assert_int_equal(done.status, AUTHLOOP_ENOTSUP); /* A's key is never refreshed */
  run_two_until_stored(&a, &b);
  cb = kuzzle_on(&b, path);
  test_record(cb, &rb);
  assert_int_equal(authloop_logout(cb), 0);
  run_two_to(&a, &b, &rb.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(authloop_login_local(cb, "kuzzle-user", "kuzzle-pass", "1h"), 0);
  run_two_to(&a, &b, &rb.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  run_two_until_stored(&a, &b);
  authloop_touch(ca);
  run_two_for(&a, &b, 5000); /* past the key's end */
  assert_int_equal(ra.count[AUTHLOOP_EV_SESSION_EXPIRED], 0);
  assert_true(authloop_is_logged_in(ca));
  assert_string_equal(authloop_access_token(ca), authloop_access_token(cb));
  test_env_close(&a);
  test_env_close(&b);
}

/* ---- locks -------------------------------------------------------------------------- */

/* A holder that keeps the lock (a stopped process): a refresh waits at most
 * the request timeout, then fails as a timed-out one (ETIMEDOUT, the session
 * stays, the backoff tries again); a write waits as long, then goes without
 * the lock; the ctx's close is bounded. */
static void a_stuck_lock_holder_is_waited_for_only_so_long(void **state) {
  test_env a;
  test_recorder ra;
  authloop_client *ca;
  test_done d = {0};
  char path[320], lock[340];
  long refreshes;
  long long t0;
  int fd;
  (void)state;
  new_path(path, sizeof(path));
  snprintf(lock, sizeof(lock), "%s.lock", path);
  env_with_timeout(&a, 1000);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "stuck", 3600);
  test_run_until_file(&a, path, 1, 5000);
  test_run_until_stored(&a, 5000);
  fd = open(lock, O_RDWR);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  refreshes = test_stat(&server, "/auth/refresh");
  t0 = now_ms();
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  test_run_until(&a, &d.count, 1, 3000);
  print_message("# the refresh gave up after %lld ms\n", now_ms() - t0);
  assert_int_equal(d.status, AUTHLOOP_ETIMEDOUT);
  assert_true(now_ms() - t0 >= 900);
  assert_int_equal(authloop_client_state(ca), AUTHLOOP_STATE_LOGGED_IN);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes);
  /* a logout's write, the lock still held: on disk within the timeout and a bit */
  assert_int_equal(authloop_logout(ca), 0);
  test_run_until_file(&a, path, TEST_FILE_LOGGED_OUT, 3000);
  test_env_close(&a);
  flock(fd, LOCK_UN);
  close(fd);
}

/* A ctx logging everything into log (timeout_ms 0: the default), a client
 * on a new session file at path, logged in as user, its session on disk. */
static authloop_client *logged_in_and_stored(test_env *e, test_recorder *r, test_log *log,
                                             char *path, size_t n, const char *user,
                                             unsigned timeout_ms) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client *c;
  new_path(path, n);
  o.ca_file = server.ca;
  o.log_cb = test_log_cb;
  o.log_userdata = log;
  o.log_level = AUTHLOOP_LOG_DEBUG;
  if (timeout_ms)
    o.timeout_ms = timeout_ms;
  test_env_init(e, &server, &o);
  c = client_on(e, path, 0);
  test_record(c, r);
  login_as(e, c, r, user, 3600);
  test_run_until_file(e, path, 1, 5000);
  test_run_until_stored(e, 5000);
  return c;
}

/* A lock file that is not ours (writable by others: anyone could hold it
 * forever) is not used: the refresh goes without it, and says so. */
static void a_lock_file_not_ours_is_not_used(void **state) {
  test_env a;
  test_recorder ra;
  test_log log = {0};
  authloop_client *ca;
  test_done d = {0};
  char path[320], lock[340];
  long refreshes;
  int fd;
  (void)state;
  ca = logged_in_and_stored(&a, &ra, &log, path, sizeof(path), "planted", 0);
  snprintf(lock, sizeof(lock), "%s.lock", path);
  assert_int_equal(chmod(lock, 0666), 0);
  fd = open(lock, O_RDWR);
  assert_int_equal(flock(fd, LOCK_EX), 0); /* held by "someone else", forever */
  refreshes = test_stat(&server, "/auth/refresh");
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  test_run_until(&a, &d.count, 1, 3000);
  assert_int_equal(d.status, 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 1);
  test_run_until_stored(&a, 5000); /* the log is delivered from the loop too */
  assert_non_null(strstr(log.text, "no usable lock"));
  test_env_close(&a);
  flock(fd, LOCK_UN);
  close(fd);
}

/* A session too large for the file (a 60 KB user, then a 6 KB token):
 * nothing is written, and the refresh's lock goes all the same (it was once
 * held for the rest of the session). */
static void pad(char *dst, size_t n, char ch) {
  memset(dst, ch, n);
  dst[n] = '\0';
}

static void an_unwritable_session_lets_the_lock_go(void **state) {
  test_env a;
  test_recorder ra;
  authloop_client *ca;
  test_done d = {0};
  char path[320], *big = malloc(60001), *fault = malloc(61000);
  (void)state;
  new_path(path, sizeof(path));
  pad(big, 60000, 'b');
  snprintf(fault, 61000,
           "{\"route\":\"/auth/login\",\"count\":1,\"body\":\"{\\\"user\\\":{\\\"id\\\":"
           "\\\"huge\\\",\\\"bio\\\":\\\"%s\\\"},\\\"accessToken\\\":\\\"at1\\\","
           "\\\"idToken\\\":\\\"id1\\\",\\\"refreshToken\\\":\\\"rt1\\\","
           "\\\"expiresIn\\\":3600}\"}",
           big);
  test_fault(&server, fault);
  pad(big, 6000, 'a');
  snprintf(fault, 61000,
           "{\"route\":\"/auth/refresh\",\"count\":1,\"body\":\"{\\\"accessToken\\\":"
           "\\\"%s\\\",\\\"idToken\\\":\\\"id2\\\",\\\"expiresIn\\\":3600}\"}",
           big);
  test_fault(&server, fault);
  free(fault);
  free(big);
  test_env_init(&a, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "huge", 3600);
  test_run_until_file(&a, path, 1, 5000);
  test_run_until_stored(&a, 5000);
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  test_run_until(&a, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(strlen(authloop_access_token(ca)), 6000);
  test_run_until_stored(&a, 5000);
  assert_true(lock_is_free(path));
  test_env_close(&a);
}

/* Two ctxs of one process, one file, a thread pool of one thread: A holds the
 * lock through a slow refresh while B's write for the same file wants it.
 * B's write must not sit on the only pool thread (A's own write, which
 * releases the lock, needs it): both finish and both ctxs close. */
/* A logs in; B shares the session. A refreshes (its request slow, A holding
 * the lock); B logs out meanwhile: B's mark waits for the lock, A's newer
 * session lands first, then the mark. The mark must still outrank it: A's
 * next refresh ends, and a new process starts logged out (it once wrote its
 * session back over the mark: the logout undone). */
static void a_logout_while_another_refreshes(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb, *cc;
  test_done d = {0};
  char path[320];
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "racer", 3600);
  test_run_until_file(&a, path, 1, 5000);
  test_run_until_stored(&a, 5000);
  cb = client_on(&b, path, 0);
  test_record(cb, &rb);
  assert_true(authloop_is_logged_in(cb));
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":800,\"count\":1}");
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  if (!run_two_until(&a, &b, lock_is_held, path, 5000))
    fail_msg("A never took the lock");
  /* the server does not hear of it (so A's refresh works): the mark alone says it */
  test_fault(&server, "{\"route\":\"/auth/logout\",\"status\":503,\"count\":1}");
  assert_int_equal(authloop_logout(cb), 0); /* its mark waits for A's lock */
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, 0); /* A refreshed: its session goes to disk, then the mark */
  run_two_until_stored(&a, &b);
  assert_int_equal(test_file_state(path), TEST_FILE_LOGGED_OUT);
  d.count = 0;
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, AUTHLOOP_EREVOKED); /* the logout elsewhere ends it here */
  assert_int_equal(authloop_client_state(ca), AUTHLOOP_STATE_LOGGED_OUT);
  run_two_until_stored(&a, &b);
  cc = client_on(&a, path, 0);
  assert_false(authloop_is_logged_in(cc));
  test_env_close(&a);
  test_env_close(&b);
}

/* The same, with the logging-out process waiting for the lock less long
 * than the refresh takes (its own request timeout is short): its mark goes
 * to disk without the lock, before the refreshed session. That session, of
 * the login the mark ends, must not replace it. `legacy`: the session comes
 * from a file of an earlier version, which names no login. `idle`: the
 * refreshing process then idles out instead of refreshing again, and must
 * leave the mark where it is. */
static void hasty_logout(int legacy, int idle) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb, *cc;
  test_done d = {0};
  char path[320];
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  env_with_timeout(&b, 300);
  ca = client_on(&a, path, idle ? 1 : 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "hasty", idle ? 4 : 3600);
  test_run_until_file(&a, path, 1, 5000);
  test_run_until_stored(&a, 5000);
  if (legacy) { /* as an earlier version wrote it: no login id; both restore it */
    json_t *j = read_plain(path);
    assert_non_null(j);
    assert_int_equal(json_object_del(j, "sid"), 0);
    write_plain(path, j);
    json_decref(j);
    authloop_client_free(ca);
    ca = client_on(&a, path, idle ? 1 : 0);
    test_record(ca, &ra);
    assert_true(authloop_is_logged_in(ca));
  }
  cb = client_on(&b, path, 0);
  test_record(cb, &rb);
  assert_true(authloop_is_logged_in(cb));
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":1200,\"count\":1}");
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  if (!run_two_until(&a, &b, lock_is_held, path, 5000))
    fail_msg("A never took the lock");
  test_fault(&server, "{\"route\":\"/auth/logout\",\"status\":503,\"count\":1}");
  assert_int_equal(authloop_logout(cb), 0);
  /* B's mark is on disk, without the lock, while A's refresh still waits */
  test_run_until_stored(&b, 5000);
  assert_int_equal(test_file_state(path), TEST_FILE_LOGGED_OUT);
  assert_int_equal(d.count, 0);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  run_two_until_stored(&a, &b);
  assert_int_equal(test_file_state(path), TEST_FILE_LOGGED_OUT); /* the mark stayed */
  if (idle) { /* nobody touches A: its token runs out, it idles out */
    run_two_to(&a, &b, &ra.count[AUTHLOOP_EV_SESSION_EXPIRED], 1, 10000);
    assert_int_equal(ra.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_IDLE);
  } else {
    d.count = 0;
    assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
    run_two_to(&a, &b, &d.count, 1, 5000);
    assert_int_equal(d.status, AUTHLOOP_EREVOKED);
  }
  assert_int_not_equal(authloop_client_state(ca), AUTHLOOP_STATE_LOGGED_IN);
  run_two_until_stored(&a, &b);
  assert_int_equal(test_file_state(path), TEST_FILE_LOGGED_OUT); /* still the mark */
  cc = client_on(&a, path, 0);
  assert_false(authloop_is_logged_in(cc));
  test_env_close(&a);
  test_env_close(&b);
}

static void a_logout_that_could_not_wait_for_the_lock(void **state) {
  (void)state;
  hasty_logout(0, 0);
}

static void the_same_with_a_file_of_an_earlier_version(void **state) {
  (void)state;
  hasty_logout(1, 0);
}

static void the_same_and_then_idle(void **state) {
  (void)state;
  hasty_logout(0, 1);
}

static void writes_never_wait_on_the_thread_pool(void **state) {
  test_env a, b;
  test_recorder ra, rb;
  authloop_client *ca, *cb;
  test_done d = {0};
  char path[320], *code;
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  cb = client_on(&b, path, 0); /* nobody logged in yet */
  test_record(cb, &rb);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "pool", 3600);
  test_run_until_file(&a, path, 1, 5000);
  test_run_until_stored(&a, 5000);
  test_fault(&server, "{\"route\":\"/auth/refresh\",\"delayMs\":800,\"count\":1}");
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  /* A holds the lock, its request in flight */
  if (!run_two_until(&a, &b, lock_is_held, path, 5000))
    fail_msg("A never took the lock");
  code = test_mint_code(&server, "pool-b");
  assert_int_equal(authloop_login_code(cb, code), 0); /* B's write will want the lock */
  free(code);
  run_two_to(&a, &b, &rb.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  run_two_to(&a, &b, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  run_two_until_stored(&a, &b);
  {
    json_t *j = read_plain(path);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "user"), "id")),
                        "pool-b"); /* the later write is the newer one */
    json_decref(j);
  }
  test_env_close(&a);
  test_env_close(&b);
}

/* ---- one process, several ctxs -------------------------------------------------------- */

/* A logout in one ctx, and at once (its mark not yet on disk) a client of
 * another ctx of this process on the same file: nothing is restored. */
static void another_ctx_sees_a_pending_logout(void **state) {
  test_env a, b;
  test_recorder ra;
  authloop_client *ca, *cb;
  char path[320];
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  test_env_init(&b, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "pending", 3600);
  test_run_until_file(&a, path, 1, 5000);
  test_run_until_stored(&a, 5000);
  assert_int_equal(authloop_logout(ca), 0);
  cb = client_on(&b, path, 0); /* same turn: the mark is only queued */
  assert_false(authloop_is_logged_in(cb));
  test_env_close(&a);
  test_env_close(&b);
}

/* ---- generations ------------------------------------------------------------------------ */

/* Generations at their ceiling never wrap: a file at 2^53 is restored and
 * refreshed and stays readable; one above it is refused. */
static void generations_are_bounded(void **state) {
  test_env a, b;
  test_recorder ra;
  authloop_client *ca, *cb;
  test_done d = {0};
  char path[320];
  json_t *j;
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "gen", 3600);
  test_run_until_file(&a, path, 1, 5000);
  test_run_until_stored(&a, 5000);
  authloop_client_free(ca);
  j = read_plain(path);
  json_object_set_new(j, "gen", json_integer((json_int_t)1 << 53));
  write_plain(path, j);
  ca = client_on(&a, path, 0);
  assert_true(authloop_is_logged_in(ca));
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  test_run_until(&a, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  test_run_until_stored(&a, 5000);
  assert_true(file_gen(path) <= (1LL << 53) && file_gen(path) > 0);
  test_env_init(&b, &server, NULL);
  cb = client_on(&b, path, 0);
  assert_true(authloop_is_logged_in(cb));
  authloop_client_free(cb);
  json_object_set_new(j, "gen", json_integer(((json_int_t)1 << 53) + 1));
  write_plain(path, j);
  json_decref(j);
  cb = client_on(&b, path, 0);
  assert_false(authloop_is_logged_in(cb));
  test_env_close(&a);
  test_env_close(&b);
}

/* ---- a freed client answers nothing ------------------------------------------------------- */

static void on_cancelled(authloop_client *c, int status, long http, const char *body, size_t len,
                         void *ud) {
  char buf[64];
  int *seen = ud;
  (void)http, (void)body, (void)len;
  assert_int_equal(status, AUTHLOOP_ECANCELED);
  assert_false(authloop_is_logged_in(c));
  assert_null(authloop_access_token(c));
  assert_null(authloop_current_user(c));
  assert_int_equal(authloop_copy(c, AUTHLOOP_COPY_ACCESS_TOKEN, buf, sizeof(buf), NULL),
                   AUTHLOOP_EINVAL);
  (*seen)++;
}

static void a_freed_client_answers_nothing(void **state) {
  test_env a;
  test_recorder ra;
  authloop_client *ca;
  char path[320];
  int seen = 0;
  (void)state;
  new_path(path, sizeof(path));
  test_env_init(&a, &server, NULL);
  ca = client_on(&a, path, 0);
  test_record(ca, &ra);
  login_as(&a, ca, &ra, "freed", 3600);
  test_fault(&server, "{\"route\":\"/api/me\",\"delayMs\":2000,\"count\":1}");
  assert_int_equal(authloop_request(ca, "GET", "/api/me", NULL, on_cancelled, &seen), 0);
  authloop_client_free(ca);
  test_run_until(&a, &seen, 1, 3000);
  test_env_close(&a);
}

/* A file system without working locks (NFS without its lock daemon): every
 * flock() fails ENOLCK. authloop's calls of flock() come here (the library is
 * linked into this program), from the loop and the pool's thread; the rest
 * pass through (looked up at each call, as no cache shared by two threads
 * is then needed). */
static volatile int locks_fail;
int flock(int fd, int op) {
  int (*real)(int, int);
  if (locks_fail && (op & LOCK_EX) && (op & LOCK_NB)) {
    errno = ENOLCK;
    return -1;
  }
  real = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
  return real(fd, op);
}

static int locks_work(void **state) {
  (void)state;
  locks_fail = 0; /* whatever became of the test */
  return 0;
}

/* There, a refresh goes without the lock, and says so, as where no lock
 * file can be made: ENOLCK is not a busy lock, which a refresh would wait
 * out until it failed, at every try, until the session died. */
static void a_file_system_without_locks(void **state) {
  test_env a;
  test_recorder ra;
  test_log log = {0};
  authloop_client *ca;
  test_done d = {0};
  char path[320];
  long refreshes;
  (void)state;
  ca = logged_in_and_stored(&a, &ra, &log, path, sizeof(path), "nolocks", 1000);
  locks_fail = 1;
  refreshes = test_stat(&server, "/auth/refresh");
  assert_int_equal(authloop_refresh(ca, test_done_cb, &d), 0);
  test_run_until(&a, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(test_stat(&server, "/auth/refresh"), refreshes + 1);
  test_run_until_stored(&a, 5000); /* the log is delivered from the loop too */
  locks_fail = 0;
  assert_non_null(strstr(log.text, "no usable lock"));
  assert_null(strstr(log.text, "held too long"));
  test_env_close(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(taken_tokens_keep_their_expiry_and_schedule),
      cmocka_unit_test(a_newer_but_dead_token_is_refreshed),
      cmocka_unit_test(a_clock_ahead_is_clamped_not_refused),
      cmocka_unit_test(a_logout_elsewhere_ends_the_session_here),
      cmocka_unit_test(a_new_login_elsewhere),
      cmocka_unit_test(a_login_after_the_file_went_is_newer),
      cmocka_unit_test(an_idle_process_leaves_an_active_one_alone),
      cmocka_unit_test(an_unrefreshed_session_takes_a_newer_one),
      cmocka_unit_test(a_stuck_lock_holder_is_waited_for_only_so_long),
      cmocka_unit_test(a_lock_file_not_ours_is_not_used),
      cmocka_unit_test(an_unwritable_session_lets_the_lock_go),
      cmocka_unit_test(writes_never_wait_on_the_thread_pool),
      cmocka_unit_test(a_logout_while_another_refreshes),
      cmocka_unit_test(a_logout_that_could_not_wait_for_the_lock),
      cmocka_unit_test(the_same_with_a_file_of_an_earlier_version),
      cmocka_unit_test(the_same_and_then_idle),
      cmocka_unit_test(another_ctx_sees_a_pending_logout),
      cmocka_unit_test(generations_are_bounded),
      cmocka_unit_test(a_freed_client_answers_nothing),
      cmocka_unit_test_teardown(a_file_system_without_locks, locks_work),
  };
  /* one pool thread: a write that waited on it for a lock would deadlock */
  setenv("UV_THREADPOOL_SIZE", "1", 1);
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER"))
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("sharing", tests, group_setup, group_teardown);
}
