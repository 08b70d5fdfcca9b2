/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include "ctx.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

void test_make_tmpdir(char *out, size_t n, const char *tag) {
  snprintf(out, n, "%s/authloop-%s-XXXXXX", env_or("TMPDIR", "/tmp"), tag);
  assert_non_null(mkdtemp(out));
}

/* Spawns node SCRIPT --port 0 --state-dir DIR --stdin-lifeline ARGS... and
 * reads its ready line: {"port": N, "ca": "...", ...} (returned). */
static json_t *spawn_server(test_server *s, const char *script, va_list ap) {
  const char *argv[32];
  int argc = 0, in[2], out[2];
  char line[4096];
  size_t len = 0;
  json_t *ready;
  posix_spawn_file_actions_t fa;

  memset(s, 0, sizeof(*s));
  test_make_tmpdir(s->dir, sizeof(s->dir), "test");
  argv[argc++] = env_or("AUTHLOOP_NODE", "node");
  argv[argc++] = script;
  argv[argc++] = "--port";
  argv[argc++] = "0";
  argv[argc++] = "--state-dir";
  argv[argc++] = s->dir;
  argv[argc++] = "--stdin-lifeline";
  for (const char *a; argc < 31 && (a = va_arg(ap, const char *));)
    argv[argc++] = a;
  argv[argc] = NULL;

  /* close-on-exec: a server started later must not hold this one's
   * lifeline open (it would then never see its end) */
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  assert_int_equal(posix_spawnp(&s->pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  s->lifeline = in[1];

  while (len < sizeof(line) - 1) {
    ssize_t n = read(out[0], line + len, 1);
    if (n <= 0 || line[len] == '\n')
      break;
    len++;
  }
  line[len] = '\0';
  close(out[0]);
  ready = json_loads(line, 0, NULL);
  if (!ready)
    fail_msg("%s did not start: \"%s\"", script, line);
  s->port = (int)json_integer_value(json_object_get(ready, "port"));
  snprintf(s->ca, sizeof(s->ca), "%s", json_string_value(json_object_get(ready, "ca")));
  snprintf(s->base_url, sizeof(s->base_url), "https://127.0.0.1:%d", s->port);
  assert_true(s->port > 0);
  return ready;
}

void test_server_start(test_server *s, ...) {
  va_list ap;
  va_start(ap, s);
  json_decref(spawn_server(s, env_or("AUTHLOOP_SERVER", "test/server/server.mjs"), ap));
  va_end(ap);
}

json_t *test_peer_start(test_server *s, const char *name, ...) {
  char script[512];
  json_t *ready;
  va_list ap;
  snprintf(script, sizeof(script), "%s/%s.mjs", env_or("AUTHLOOP_PEERS", "test/peers"), name);
  va_start(ap, name);
  ready = spawn_server(s, script, ap);
  va_end(ap);
  return ready;
}

test_server server;

int test_group_setup(void **state) {
  (void)state;
  test_server_start(&server, NULL);
  return 0;
}

int test_group_teardown(void **state) {
  (void)state;
  test_server_stop(&server);
  return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void test_remove_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

void test_server_stop(test_server *s) {
  int status;
  close(s->lifeline);
  if (waitpid(s->pid, &status, 0) < 0)
    kill(s->pid, SIGKILL);
  test_remove_tree(s->dir);
}

typedef struct {
  char *data;
  size_t len;
} sink;

static size_t sink_write(char *p, size_t size, size_t n, void *ud) {
  sink *b = ud;
  char *d = realloc(b->data, b->len + size * n + 1);
  assert_non_null(d);
  memcpy(d + b->len, p, size * n);
  b->data = d;
  b->len += size * n;
  d[b->len] = '\0';
  return size * n;
}

char *test_http(const test_server *s, const char *method, const char *path,
                const char *authorization, const char *body, long *status) {
  char url[256], auth[8192];
  sink b = {0};
  CURL *e = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  snprintf(url, sizeof(url), "%s%s", s->base_url, path);
  if (authorization) {
    snprintf(auth, sizeof(auth), "Authorization: %s", authorization);
    h = curl_slist_append(h, auth);
  }
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CAINFO, s->ca);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
  if (body)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  assert_int_equal(curl_easy_perform(e), CURLE_OK);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  return b.data ? b.data : strdup("");
}

json_t *test_control(const test_server *s, const char *path, const char *post) {
  long status = 0;
  char *text = test_http(s, post ? "POST" : "GET", path, NULL, post, &status);
  json_t *j;
  if (status != 200)
    fail_msg("%s answered %ld: %s", path, status, text);
  j = json_loads(text, 0, NULL);
  free(text);
  assert_non_null(j);
  return j;
}

char *test_mint_code(const test_server *s, const char *user_id) {
  return test_mint_code_ttl(s, user_id, 0);
}

char *test_mint_code_ttl(const test_server *s, const char *user_id, int ttl_s) {
  char body[256];
  json_t *j;
  char *code;
  if (ttl_s > 0)
    snprintf(body, sizeof(body), "{\"userId\":\"%s\",\"tokenTtl\":%d}", user_id, ttl_s);
  else
    snprintf(body, sizeof(body), "{\"userId\":\"%s\"}", user_id);
  j = test_control(s, "/__test/codes", body);
  code = strdup(json_string_value(json_object_get(j, "authorizationCode")));
  json_decref(j);
  return code;
}

void test_fault(const test_server *s, const char *json) {
  json_decref(test_control(s, "/__test/faults", json));
}

void test_fault_body(const test_server *s, const char *route, long status, const char *body) {
  json_t *f = json_pack("{s:s, s:i, s:s}", "route", route, "status", (int)status, "body", body);
  char *text = json_dumps(f, JSON_COMPACT);
  test_fault(s, text);
  free(text);
  json_decref(f);
}

long test_stat(const test_server *s, const char *key) {
  json_t *j = test_control(s, "/__test/stats", NULL);
  json_t *v =
      key[0] == '/' ? json_object_get(json_object_get(j, "routes"), key) : json_object_get(j, key);
  long n = (long)json_integer_value(v);
  json_decref(j);
  return n;
}

long test_last_gap_ms(const test_server *s, const char *route) {
  json_t *j = test_control(s, "/__test/stats", NULL);
  json_t *t = json_object_get(json_object_get(j, "times"), route);
  size_t n = json_array_size(t);
  long gap = -1;
  if (n >= 2)
    gap = (long)(json_integer_value(json_array_get(t, n - 1)) -
                 json_integer_value(json_array_get(t, n - 2)));
  json_decref(j);
  return gap;
}

int test_sent(const test_server *s, const char *needle) {
  json_t *j = test_control(s, "/__test/requests", NULL), *req;
  size_t i, k;
  int n = 0;
  json_array_foreach(json_object_get(j, "requests"), i, req) {
    json_t *h, *lines = json_object_get(req, "rawHeaders");
    json_array_foreach(lines, k, h) {
      if (strstr(json_string_value(h), needle)) {
        n++;
        break;
      }
    }
  }
  json_decref(j);
  return n;
}

long test_refused_requests(const test_server *s) { return test_stat(s, "clientErrors"); }

json_t *test_last_request(const test_server *s, const char *method, const char *path) {
  json_t *j = test_control(s, "/__test/requests", NULL), *all = json_object_get(j, "requests");
  json_t *out = NULL;
  size_t i, k, n = strlen(path);
  for (i = json_array_size(all); !out && i-- > 0;) {
    json_t *req = json_array_get(all, i), *lines = json_object_get(req, "rawHeaders");
    const char *url = json_string_value(json_object_get(req, "url"));
    const char *body = json_string_value(json_object_get(req, "body"));
    if (strcmp(json_string_value(json_object_get(req, "method")), method) != 0 ||
        strncmp(url, path, n) != 0 || (url[n] && url[n] != '?'))
      continue;
    json_t *parsed = body && *body ? json_loads(body, 0, NULL) : NULL;
    out = json_pack("{s:{}, s:o, s:s}", "headers", "body", parsed ? parsed : json_null(), "query",
                    url[n] ? url + n + 1 : "");
    for (k = 0; k + 1 < json_array_size(lines); k += 2) {
      char name[128];
      size_t c;
      snprintf(name, sizeof(name), "%s", json_string_value(json_array_get(lines, k)));
      for (c = 0; name[c]; c++)
        name[c] = (char)tolower((unsigned char)name[c]);
      json_object_set(json_object_get(out, "headers"), name, json_array_get(lines, k + 1));
    }
  }
  json_decref(j);
  return out;
}

void test_alias(const test_server *s, const char *path, const char *route) {
  char body[512];
  snprintf(body, sizeof(body), "{\"path\":\"%s\",\"route\":\"%s\"}", path, route);
  json_decref(test_control(s, "/__test/alias", body));
}

int test_run_status(const char *const argv[], char **out) {
  posix_spawn_file_actions_t fa;
  char *text = calloc(1, 1);
  size_t len = 0;
  int p[2], status;
  pid_t pid;
  assert_int_equal(pipe(p), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  posix_spawn_file_actions_addclose(&fa, p[0]);
  assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  for (;;) {
    char buf[4096];
    ssize_t n = read(p[0], buf, sizeof(buf));
    if (n <= 0)
      break;
    text = realloc(text, len + (size_t)n + 1);
    assert_non_null(text);
    memcpy(text + len, buf, (size_t)n);
    len += (size_t)n;
    text[len] = '\0';
  }
  close(p[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  *out = text;
  if (WIFSIGNALED(status)) /* a hang that `timeout -s KILL` ended (it kills itself too) */
    return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

char *test_run_program(const char *const argv[]) {
  char *out;
  int status = test_run_status(argv, &out);
  if (status != 0)
    fail_msg("%s failed (status %d): %s", argv[0], status, out);
  return out;
}

int test_closed_port(void) {
  struct sockaddr_in a = {0};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd); /* bound, never listened, closed: connections are refused */
  return ntohs(a.sin_port);
}

/* ---- loop ---------------------------------------------------------------------- */

void test_env_init(test_env *e, const test_server *s, const authloop_ctx_options *opts) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  memset(e, 0, sizeof(*e));
  if (opts)
    o = *opts;
  else if (s)
    o.ca_file = s->ca;
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(uv_timer_init(&e->loop, &e->watchdog), 0);
  e->watchdog.data = e;
  /* the watchdog never keeps the loop alive: a loop that runs dry while the
   * test waits for authloop is a lost wake-up, and fails the test */
  uv_unref((uv_handle_t *)&e->watchdog);
  assert_int_equal(authloop_ctx_new(&e->loop, &o, &e->ctx), 0);
}

static void on_closed(authloop_ctx *ctx, void *userdata) {
  test_env *e = userdata;
  assert_ptr_equal(ctx, e->ctx);
  e->closed++;
}

void test_env_close(test_env *e) {
  assert_int_equal(authloop_ctx_close(e->ctx, on_closed, e), 0);
  assert_int_equal(authloop_ctx_close(e->ctx, on_closed, e), AUTHLOOP_ECLOSING);
  uv_close((uv_handle_t *)&e->watchdog, NULL);
  assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(e->closed, 1);
  assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void on_watchdog(uv_timer_t *t) {
  test_env *e = t->data;
  e->timed_out = 1;
}

/* A loop that turns far more often than the work it does explains is
 * spinning: at most 200 turns plus 20 per millisecond of wall time. */
void test_check_spin(unsigned long turns, uint64_t start_ns, const char *what) {
  uint64_t ms = (uv_hrtime() - start_ns) / 1000000;
  if (turns > 200 + 20 * ms)
    fail_msg("%s: the loop turned %lu times in %llu ms: a spin", what, turns,
             (unsigned long long)ms);
}

/* The limit of a wait for what the loop brings: longer by
 * AUTHLOOP_TEST_TIME_SCALE (1 to 10; the suite sets 4 under valgrind, where
 * a TLS handshake alone can take seconds). Only how long a wait may last:
 * what the test asserts of time (deadlines, wake-ups, spins) is unchanged. */
unsigned test_scaled(unsigned limit_ms) {
  static unsigned scale;
  if (!scale) {
    const char *v = getenv("AUTHLOOP_TEST_TIME_SCALE");
    long n = v ? strtol(v, NULL, 10) : 1;
    scale = n >= 1 && n <= 10 ? (unsigned)n : 1;
  }
  return limit_ms * scale;
}

void test_run_until(test_env *e, const int *flag, int target, unsigned limit_ms) {
  uint64_t start = uv_hrtime();
  unsigned long turns = 0;
  e->timed_out = 0;
  limit_ms = test_scaled(limit_ms);
  uv_timer_start(&e->watchdog, on_watchdog, limit_ms, 0);
  while (*flag < target && !e->timed_out) {
    int alive = uv_run(&e->loop, UV_RUN_ONCE);
    turns++;
    if (!alive && *flag < target && !e->timed_out) {
      uv_timer_stop(&e->watchdog);
      fail_msg("the loop ran dry waiting (%d of %d): nothing of authloop's kept it alive", *flag,
               target);
    }
  }
  uv_timer_stop(&e->watchdog);
  if (*flag < target)
    fail_msg("timed out after %u ms waiting (%d of %d)", limit_ms, *flag, target);
  test_check_spin(turns, start, "test_run_until");
}

void test_run_turns(test_env *e, int n) {
  while (n-- > 0)
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

static void on_elapsed(uv_timer_t *t) { (*(int *)t->data)++; }

/* The test's own timer keeps the loop alive here, on purpose: time must
 * pass. The spin check still applies. */
void test_run_for(test_env *e, unsigned ms) {
  uv_timer_t t;
  uint64_t start = uv_hrtime();
  unsigned long turns = 0;
  int done = 0;
  uv_timer_init(&e->loop, &t);
  t.data = &done;
  uv_timer_start(&t, on_elapsed, ms, 0);
  while (!done) {
    uv_run(&e->loop, UV_RUN_ONCE);
    turns++;
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&e->loop, UV_RUN_NOWAIT);
  test_check_spin(turns, start, "test_run_for");
}

/* 0: no file; 2: a logout's mark (the header's "ended" flag); 1: anything else. */
int test_file_state(const char *path) {
  unsigned char head[6];
  int fd = open(path, O_RDONLY | O_CLOEXEC), n;
  if (fd < 0)
    return 0;
  n = (int)read(fd, head, sizeof(head));
  close(fd);
  return n == 6 && memcmp(head, "ALS1\x01\x02", 6) == 0 ? TEST_FILE_LOGGED_OUT : 1;
}

void test_run_until_file(test_env *e, const char *path, int want, unsigned limit_ms) {
  static const char *const what[] = {"go", "appear", "become a logout's mark"};
  uint64_t start = uv_hrtime();
  unsigned long turns = 0;
  e->timed_out = 0;
  limit_ms = test_scaled(limit_ms);
  uv_timer_start(&e->watchdog, on_watchdog, limit_ms, 0);
  /* the store's thread-pool completion wakes the loop, so each turn is a look */
  int dry = 0, seen = 0;
  while (!(seen = test_file_state(path) == want) && !e->timed_out) {
    turns++;
    if (!uv_run(&e->loop, UV_RUN_ONCE) && test_file_state(path) != want) {
      dry = 1; /* nothing pending: it will not change */
      break;
    }
  }
  uv_timer_stop(&e->watchdog);
  /* read again: a write still on its way (the pool runs every ctx's) may
   * replace what was seen, and a test that waited for it must know */
  if (test_file_state(path) != want)
    fail_msg("%s did not %s (%s after %llu ms; the file's state: %d)", path, what[want],
             seen  ? "it did, and another write replaced it at once"
             : dry ? "nothing of the loop's left to wait for"
                   : "timed out",
             (unsigned long long)((uv_hrtime() - start) / 1000000), test_file_state(path));
  test_check_spin(turns, start, "test_run_until_file");
}

int test_stored(const test_env *e) { return !authloop__store_busy(&e->ctx->store); }

void test_run_until_stored(test_env *e, unsigned limit_ms) {
  uint64_t start = uv_hrtime();
  unsigned long turns = 0;
  e->timed_out = 0;
  limit_ms = test_scaled(limit_ms);
  uv_timer_start(&e->watchdog, on_watchdog, limit_ms, 0);
  while (!test_stored(e) && !e->timed_out) {
    turns++;
    if (!uv_run(&e->loop, UV_RUN_ONCE) && !test_stored(e))
      break; /* a write no completion will wake: lost */
  }
  uv_timer_stop(&e->watchdog);
  if (!test_stored(e))
    fail_msg("the ctx's session-file writes did not finish within %u ms", limit_ms);
  test_check_spin(turns, start, "test_run_until_stored");
}

authloop_client *test_client(test_env *e, const test_server *s) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "gateway";
  o.base_url = s->base_url;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  assert_non_null(c);
  return c;
}

/* ---- recorder -------------------------------------------------------------------- */

static void trace_add(test_recorder *r, const char *fmt, ...) {
  size_t used = strlen(r->trace);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->trace + used, sizeof(r->trace) - used, fmt, ap);
  va_end(ap);
}

void test_recorder_cb(authloop_client *c, const authloop_event *ev, void *userdata) {
  test_recorder *r = userdata;
  (void)c;
  r->count[ev->type]++;
  r->total++;
  r->last[ev->type] = *ev;
  snprintf(r->last_message[ev->type], 256, "%s", ev->message ? ev->message : "");
  snprintf(r->last_server_code[ev->type], 64, "%s", ev->server_code ? ev->server_code : "");
  r->last[ev->type].message = ev->message ? r->last_message[ev->type] : NULL;
  r->last[ev->type].server_code = ev->server_code ? r->last_server_code[ev->type] : NULL;
  if (ev->type == AUTHLOOP_EV_STATE_CHANGED)
    trace_add(r, "stateChanged:%s>%s;", authloop_state_name(ev->old_state),
              authloop_state_name(ev->new_state));
  else
    trace_add(r, "%s:%s;", authloop_event_name(ev->type),
              ev->error ? authloop_err_name(ev->error) : "ok");
}

void test_record(authloop_client *c, test_recorder *r) {
  int t;
  memset(r, 0, sizeof(*r));
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    assert_true(authloop_on(c, (authloop_event_type)t, test_recorder_cb, r) > 0);
}

void test_done_cb(authloop_client *c, int status, void *userdata) {
  test_done *d = userdata;
  (void)c;
  d->count++;
  d->status = status;
}

void test_reply_cb(authloop_client *c, int status, long http, const char *body, size_t len,
                   void *userdata) {
  test_reply *r = userdata;
  (void)c;
  (void)body;
  (void)len;
  r->count++;
  r->status = status;
  r->http = http;
}

void test_kuzzle_api_key_login(test_env *e, authloop_client *c, test_recorder *r, int ttl_ms) {
  int changes = r->count[AUTHLOOP_EV_STATE_CHANGED], logins = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  char body[128];
  json_t *tok;
  assert_int_equal(authloop_login_strategy(c, "twostep", "{\"username\":\"kuzzle-user\"}", NULL),
                   0);
  test_run_until(e, &r->count[AUTHLOOP_EV_STATE_CHANGED], changes + 2, 5000);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_AWAITING_TOKEN);
  snprintf(body, sizeof(body), "{\"username\":\"kuzzle-user\",\"ttl\":%d,\"apiKey\":true}", ttl_ms);
  tok = test_control(&server, "/__test/kuzzle-token", body);
  assert_int_equal(strncmp(json_string_value(json_object_get(tok, "jwt")), "kapikey-", 8), 0);
  assert_int_equal(authloop_set_token(c, json_string_value(json_object_get(tok, "jwt"))), 0);
  json_decref(tok);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], logins + 1, 5000);
  assert_true(r->last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
}

void test_log_cb(authloop_log_level level, const char *msg, void *userdata) {
  test_log *l = userdata;
  int n;
  (void)level;
  n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s\n", msg);
  if (n > 0 && (size_t)n < sizeof(l->text) - l->len)
    l->len += (size_t)n;
  l->lines++;
}
