/* SPDX-License-Identifier: MIT */
/* Test harness: the reference server as a child process, a real uv loop with
 * a watchdog, and an event recorder. Integration tests never sleep: they run
 * the loop until what they wait for has happened, or the watchdog fails them. */
#ifndef AUTHLOOP_TEST_HARNESS_H
#define AUTHLOOP_TEST_HARNESS_H

#include <authloop.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

/* ---- the reference server ------------------------------------------------- */

typedef struct {
  pid_t pid;
  int lifeline; /* the server's stdin: closing it stops the server */
  int port;
  char dir[256];
  char ca[512];
  char base_url[64];
} test_server;

/* The reference server of the test program, started by test_group_setup()
 * and stopped by test_group_teardown() (cmocka group fixtures). */
extern test_server server;
int test_group_setup(void **state);
int test_group_teardown(void **state);

/* A fresh directory under $TMPDIR (or /tmp), named after tag. */
void test_make_tmpdir(char *out, size_t n, const char *tag);
/* Removes a directory and all it holds (session files, their locks). */
void test_remove_tree(const char *dir);

/* Starts node test/server/server.mjs; extra args end with NULL. */
void test_server_start(test_server *s, ...);
void test_server_stop(test_server *s);
/* Starts a third-party server, node test/peers/NAME.mjs (stopped with
 * test_server_stop); extra args end with NULL. Returns its ready line, whose
 * other members say what it set up (json_decref it). */
json_t *test_peer_start(test_server *s, const char *name, ...);
/* Blocking helpers for setup and inspection (plain libcurl, not authloop). */
char *test_mint_code(const test_server *s, const char *user_id);
/* A code whose tokens live ttl_s seconds (0: the server's default). */
char *test_mint_code_ttl(const test_server *s, const char *user_id, int ttl_s);
void test_fault(const test_server *s, const char *json);
/* One answer for route: status and body as given (a fault with the server's defaults). */
void test_fault_body(const test_server *s, const char *route, long status, const char *body);
/* POST (json non-NULL) or GET a control path; the answer must be 200. */
json_t *test_control(const test_server *s, const char *path, const char *json);
/* GET /__test/stats -> a route's count ("/auth/login") or a top-level counter. */
long test_stat(const test_server *s, const char *key);
/* Milliseconds between the last two requests to a route. */
long test_last_gap_ms(const test_server *s, const char *route);
/* Runs a program to its end; returns what it printed (free it). It must exit 0. */
char *test_run_program(const char *const argv[]);
/* The same, for a program whose exit status is the answer (128 + the signal
 * that ended it). */
int test_run_status(const char *const argv[], char **out);
/* A plain HTTPS request to the server (not through authloop): returns the
 * body (free it) and the status in *status. authorization may be NULL. */
char *test_http(const test_server *s, const char *method, const char *path,
                const char *authorization, const char *body, long *status);
/* Requests the server received whose header lines (names or values, as
 * they arrived) contain needle; and requests its parser refused outright. */
int test_sent(const test_server *s, const char *needle);
long test_refused_requests(const test_server *s);
/* The last request the server received for method and path (the URL
 * without its query): {"headers": {lower-case name: value}, "body": JSON or
 * null, "query": text}, or NULL. */
json_t *test_last_request(const test_server *s, const char *method, const char *path);
/* Requests to path are served as route (a path option's target). */
void test_alias(const test_server *s, const char *path, const char *route);
/* A loopback port with nothing listening. */
int test_closed_port(void);

/* ---- a loop with a ctx ----------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  uv_timer_t watchdog;
  authloop_ctx *ctx;
  int closed;
  int timed_out;
} test_env;

/* opts may be NULL; the server's CA is trusted unless opts says otherwise. */
void test_env_init(test_env *e, const test_server *s, const authloop_ctx_options *opts);
/* Closes the ctx, runs the loop dry, asserts uv_loop_close() == 0. */
void test_env_close(test_env *e);
/* Runs the loop until *flag >= target; fails the test after limit_ms. */
void test_run_until(test_env *e, const int *flag, int target, unsigned limit_ms);
/* Runs n loop turns without blocking. */
void test_run_turns(test_env *e, int n);
/* Lets ms of real time pass on the loop (for tokens to run out). */
void test_run_for(test_env *e, unsigned ms);
/* Runs the loop until test_file_state(path) is want (1 exists, 0 gone). */
void test_run_until_file(test_env *e, const char *path, int want, unsigned limit_ms);
/* Runs the loop until every session-file write and delete of the ctx is
 * done, on disk, and its lock released. */
void test_run_until_stored(test_env *e, unsigned limit_ms);
int test_stored(const test_env *e); /* that condition, now */
/* Limits, scaled under valgrind (AUTHLOOP_TEST_TIME_SCALE); and fails the
 * test when a loop turned more often than waiting can explain. */
unsigned test_scaled(unsigned limit_ms);
void test_check_spin(unsigned long turns, uint64_t start_ns, const char *what);
/* What is at path: 0 nothing, 1 a file, TEST_FILE_LOGGED_OUT a logout's mark
 * (what a logout leaves for the processes that share the file). */
#define TEST_FILE_LOGGED_OUT 2
int test_file_state(const char *path);

authloop_client *test_client(test_env *e, const test_server *s);

/* ---- event recorder ----------------------------------------------------------- */

typedef struct {
  int count[AUTHLOOP_EV__COUNT];
  int total;
  authloop_event last[AUTHLOOP_EV__COUNT]; /* strings copied below */
  char last_message[AUTHLOOP_EV__COUNT][256];
  char last_server_code[AUTHLOOP_EV__COUNT][64];
  char trace[2048]; /* "stateChanged:LOGGED_OUT>LOGGING_IN;loginAttempt:ok;" */
} test_recorder;

void test_record(authloop_client *c, test_recorder *r);
void test_recorder_cb(authloop_client *c, const authloop_event *ev, void *userdata);

/* A done callback's outcome (authloop_refresh): how many times it ran, and
 * the last status. */
typedef struct {
  int count, status;
} test_done;
void test_done_cb(authloop_client *c, int status, void *userdata);

/* A response callback's outcome (authloop_request): how many times it ran,
 * the last status and HTTP status. */
typedef struct {
  int count, status;
  long http;
} test_reply;
void test_reply_cb(authloop_client *c, int status, long http, const char *body, size_t len,
                   void *userdata);

/* A Kuzzle client's login with an API key of the reference server (a
 * two-step login completed by the key, "kapikey-...") that lives ttl_ms:
 * asserts that it succeeds. */
void test_kuzzle_api_key_login(test_env *e, authloop_client *c, test_recorder *r, int ttl_ms);

/* Log capture: every line at DEBUG level, joined. */
typedef struct {
  char text[64 * 1024];
  size_t len;
  int lines;
} test_log;
void test_log_cb(authloop_log_level level, const char *msg, void *userdata);

#endif
