/* SPDX-License-Identifier: MIT */
/* The transport's lines (lib/transport.c, pump): libcurl gets as many
 * transfers for a server as it has connections for, the rest wait in that
 * server's line, oldest first, and fail ETIMEDOUT unsent after half their
 * time. Each case here is one way the first design of the line broke: a dead
 * server held up every other, a close failed some transfers ETIMEDOUT instead
 * of ECANCELED, the deadline was only looked at when a slot freed, a transfer
 * started under a pump was measured against a clock read before it existed,
 * and HTTP/2's streams were capped like connections. */
#include "harness.h"

#include "ctx.h"
#include "engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int in_api; /* around API calls: no callback may run then */
static int inside_calls;

#define API(x)                                                                                     \
  do {                                                                                             \
    in_api++;                                                                                      \
    x;                                                                                             \
    in_api--;                                                                                      \
  } while (0)

/* A loopback listener that never accepts: the kernel completes the TCP
 * handshake, then nothing answers the TLS hello. */
static int black_hole(int *port) {
  struct sockaddr_in a;
  socklen_t n = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(fd, 64), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static authloop_client *gateway(test_env *e, const char *base) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "gateway";
  o.base_url = base;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static void login(test_env *e, authloop_client *c, test_recorder *r, const test_server *s) {
  char *code = test_mint_code(s, "line-user");
  int rc, before = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  API(rc = authloop_login_code(c, code));
  assert_int_equal(rc, 0);
  free(code);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], before + 1, 8000);
  assert_true(r->last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
}

typedef struct {
  int n, status[32];
  long http[32];
  uint64_t at[32];
} replies;
typedef struct {
  replies *r;
  int i;
} slot;

static void on_reply(authloop_client *c, int status, long http, const char *body, size_t len,
                     void *ud) {
  slot *s = ud;
  (void)c;
  (void)body;
  (void)len;
  if (in_api)
    inside_calls++;
  s->r->status[s->i] = status;
  s->r->http[s->i] = http;
  s->r->at[s->i] = uv_hrtime();
  s->r->n++;
}

/* n GET /api/me side by side, their replies counted afresh in rep */
static void send_gets(authloop_client *c, replies *rep, slot *s, int n) {
  int i, rc;
  memset(rep, 0, sizeof(*rep));
  for (i = 0; i < n; i++) {
    s[i].r = rep;
    s[i].i = i;
    API(rc = authloop_request(c, "GET", "/api/me", NULL, on_reply, &s[i]));
    assert_int_equal(rc, 0);
  }
}

/* all n answered, each a 200 */
static void wait_ok(test_env *e, replies *rep, int n) {
  int i;
  test_run_until(e, &rep->n, n, 8000);
  for (i = 0; i < n; i++) {
    assert_int_equal(rep->status[i], 0);
    assert_int_equal(rep->http[i], 200);
  }
}

static void fault(const test_server *s, const char *route, unsigned delay_ms, int count) {
  char f[160];
  snprintf(f, sizeof(f), "{\"route\":\"%s\",\"delayMs\":%u,\"count\":%d}", route, delay_ms, count);
  test_fault(s, f);
}

static void clear(const test_server *s, const char *route) {
  char f[160];
  snprintf(f, sizeof(f), "{\"route\":\"%s\",\"clear\":true}", route);
  test_fault(s, f);
}

/* A server that takes connections and never answers fills its own line,
 * not another server's: a login to a healthy server goes through at once. */
static void a_dead_server_holds_up_no_other(void **state) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_env e;
  test_recorder rd[3], r;
  authloop_client *dead[3], *c;
  char dead_url[64], *code;
  int port, fd = black_hole(&port), i;
  uint64_t t0;
  (void)state;
  snprintf(dead_url, sizeof(dead_url), "https://127.0.0.1:%d", port);
  o.ca_file = server.ca;
  o.max_host_connections = 1;
  o.timeout_ms = test_scaled(3000);
  test_env_init(&e, &server, &o);
  for (i = 0; i < 3; i++) { /* one in libcurl, two in the dead server's line */
    dead[i] = gateway(&e, dead_url);
    test_record(dead[i], &rd[i]);
    assert_int_equal(authloop_login_code(dead[i], "code"), 0);
  }
  c = gateway(&e, server.base_url);
  test_record(c, &r);
  code = test_mint_code(&server, "healthy");
  t0 = uv_hrtime();
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 8000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  /* well within the time the dead server's transfers have (1.5 s in line) */
  assert_true((uv_hrtime() - t0) / 1000000 < test_scaled(1000));
  for (i = 0; i < 3; i++)
    assert_int_equal(rd[i].count[AUTHLOOP_EV_LOGIN_ATTEMPT], 0);
  for (i = 0; i < 3; i++)
    authloop_client_free(dead[i]);
  test_env_close(&e);
  close(fd);
}

/* Closing the ctx ends every request with ECANCELED, those in line past half
 * their time included (the loop was busy elsewhere: the line's deadline
 * could not run), and none of them is sent on the way. */
static void close_cancels_the_line(void **state) {
  enum { N = 6 };
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  struct timespec busy;
  test_env e;
  test_recorder r;
  authloop_client *c;
  replies rep = {0};
  slot s[N];
  int i, rc;
  long before;
  (void)state;
  o.ca_file = server.ca;
  o.max_host_connections = 1;
  o.timeout_ms = test_scaled(2000);
  test_env_init(&e, &server, &o);
  c = gateway(&e, server.base_url);
  test_record(c, &r);
  login(&e, c, &r, &server);
  fault(&server, "/api/me", test_scaled(1800), N);
  before = test_stat(&server, "/api/me");
  for (i = 0; i < N; i++) {
    s[i].r = &rep;
    s[i].i = i;
    API(rc = authloop_request(c, "GET", "/api/me", NULL, on_reply, &s[i]));
    assert_int_equal(rc, 0);
  }
  test_run_for(&e, test_scaled(250));
  /* the application's own work keeps the loop from running past the line's
   * deadline (1 s): nothing authloop could wait for */
  busy.tv_sec = test_scaled(1000) / 1000;
  busy.tv_nsec = 0;
  nanosleep(&busy, NULL);
  API(rc = authloop_ctx_close(e.ctx, NULL, NULL));
  assert_int_equal(rc, 0);
  uv_close((uv_handle_t *)&e.watchdog, NULL);
  assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&e.loop), 0);
  assert_int_equal(rep.n, N);
  for (i = 0; i < N; i++)
    assert_int_equal(rep.status[i], AUTHLOOP_ECANCELED);
  assert_int_equal(inside_calls, 0);
  assert_int_equal(test_stat(&server, "/api/me") - before, 1); /* only the one in libcurl */
  clear(&server, "/api/me");
}

/* What waits in line fails when it has waited half its time, on its own
 * deadline, not when a slot frees (here none does before the full timeout). */
static void the_line_keeps_its_deadline(void **state) {
  enum { N = 3 };
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  authloop_client *c;
  replies rep = {0};
  slot s[N];
  unsigned timeout = test_scaled(2000);
  int i, rc;
  uint64_t t0;
  (void)state;
  o.ca_file = server.ca;
  o.max_host_connections = 1;
  o.timeout_ms = timeout;
  test_env_init(&e, &server, &o);
  c = gateway(&e, server.base_url);
  test_record(c, &r);
  login(&e, c, &r, &server);
  fault(&server, "/api/me", 60000, 1); /* the first hangs */
  t0 = uv_hrtime();
  for (i = 0; i < N; i++) {
    s[i].r = &rep;
    s[i].i = i;
    API(rc = authloop_request(c, "GET", "/api/me", NULL, on_reply, &s[i]));
    assert_int_equal(rc, 0);
  }
  test_run_until(&e, &rep.n, N, 8000);
  assert_int_equal(rep.status[0], AUTHLOOP_ETIMEDOUT); /* the full timeout, in libcurl */
  assert_true((rep.at[0] - t0) / 1000000 >= timeout);
  for (i = 1; i < N; i++) {
    uint64_t ms = (rep.at[i] - t0) / 1000000;
    assert_int_equal(rep.status[i], AUTHLOOP_ETIMEDOUT);
    assert_true(ms >= timeout / 2);
    assert_true(ms < timeout * 3 / 4);
  }
  assert_int_equal(inside_calls, 0);
  test_env_close(&e);
  clear(&server, "/api/me");
}

/* A transfer started from a callback the line's own pump runs (a refresh
 * that waited out its time releases the calls that waited for it) has waited
 * nothing: it is not failed as having waited since before it began. */
static void started_under_a_pump(void **state) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_env e;
  test_recorder rx, rc_, rd;
  test_log lg;
  test_done done = {0, 0};
  authloop_client *x, *c, *d;
  replies rep = {0};
  slot s[4];
  int i, rc = 0;
  (void)state;
  memset(&lg, 0, sizeof(lg));
  o.ca_file = server.ca;
  o.max_host_connections = 1;
  o.timeout_ms = test_scaled(2000);
  o.log_cb = test_log_cb;
  o.log_userdata = &lg;
  o.log_level = AUTHLOOP_LOG_WARN;
  test_env_init(&e, &server, &o);
  x = gateway(&e, server.base_url);
  c = gateway(&e, server.base_url);
  d = gateway(&e, server.base_url);
  test_record(x, &rx);
  test_record(c, &rc_);
  test_record(d, &rd);
  login(&e, x, &rx, &server);
  login(&e, c, &rc_, &server);
  login(&e, d, &rd, &server);
  fault(&server, "/api/me", test_scaled(1300), 2);
  for (i = 0; i < 4; i++) {
    s[i].r = &rep;
    s[i].i = i;
  }
  /* x's first fills libcurl; x's second, c's refresh and d's call wait in
   * line; c's call waits for c's refresh */
  API(rc |= authloop_request(x, "GET", "/api/me", NULL, on_reply, &s[0]));
  API(rc |= authloop_request(x, "GET", "/api/me", NULL, on_reply, &s[1]));
  API(rc |= authloop_refresh(c, test_done_cb, &done));
  API(rc |= authloop_request(c, "GET", "/api/me", NULL, on_reply, &s[2]));
  API(rc |= authloop_request(d, "GET", "/api/me", NULL, on_reply, &s[3]));
  assert_int_equal(rc, 0);
  test_run_until(&e, &rep.n, 4, 12000);
  assert_int_equal(done.count, 1);
  assert_int_equal(done.status, AUTHLOOP_ETIMEDOUT); /* it waited out its time in line */
  assert_int_equal(rep.status[0], 0);
  assert_int_equal(rep.status[1], AUTHLOOP_ETIMEDOUT);
  assert_int_equal(rep.status[3], AUTHLOOP_ETIMEDOUT);
  /* c's call began when the refresh failed: it goes when x's first is done */
  assert_int_equal(rep.status[2], 0);
  assert_int_equal(rep.http[2], 200);
  assert_null(strstr(lg.text, "waited 18446744"));
  assert_int_equal(inside_calls, 0);
  test_env_close(&e);
  clear(&server, "/api/me");
}

/* A server that answers over HTTP/2 multiplexes: after its first answer,
 * its line lets libcurl have as many streams as its connection takes, and
 * every request gets through on the one connection. */
static void http2_streams_share_a_connection(void **state) {
  enum { N = 16 };
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_server h2;
  test_env e;
  test_recorder r;
  authloop_client *c;
  replies rep = {0};
  slot s[N];
  long connections;
  int i;
  uint64_t t0;
  (void)state;
  test_server_start(&h2, "--http2", NULL);
  o.ca_file = h2.ca;
  o.max_host_connections = 1;
  o.timeout_ms = test_scaled(2000);
  test_env_init(&e, &h2, &o);
  c = gateway(&e, h2.base_url);
  test_record(c, &r);
  login(&e, c, &r, &h2);
  fault(&h2, "/api/me", test_scaled(500), N);
  connections = test_stat(&h2, "connections");
  t0 = uv_hrtime();
  send_gets(c, &rep, s, N);
  wait_ok(&e, &rep, N);
  /* the first answer, then all the others together: about two delays */
  assert_true((uv_hrtime() - t0) / 1000000 < test_scaled(500) * 3);
  /* no new connection for the 16 (the stats call opens its own) */
  assert_int_equal(test_stat(&h2, "connections") - connections, 1);

  /* the line empties, and still knows its server multiplexes: with the
   * first of four slow past half the timeout, the other three go beside it */
  fault(&h2, "/api/me", test_scaled(1500), 1);
  send_gets(c, &rep, s, 4);
  test_run_until(&e, &rep.n, 4, 8000);
  for (i = 0; i < 4; i++)
    assert_int_equal(rep.status[i], 0);
  test_env_close(&e);
  test_server_stop(&h2);
}

/* After a burst on every connection a server has, the connections stay for
 * the next burst: libcurl's cache alone keeps 4 for each transfer it holds,
 * and as a burst ended it closed all but 4, each to come back with a full
 * handshake. */
static void a_burst_keeps_its_connections(void **state) {
  enum { N = 16 };
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  authloop_client *c;
  replies rep;
  slot s[N];
  long connections;
  int round;
  (void)state;
  o.ca_file = server.ca;
  o.max_host_connections = N;
  test_env_init(&e, &server, &o);
  c = gateway(&e, server.base_url);
  test_record(c, &r);
  login(&e, c, &r, &server);
  connections = test_stat(&server, "connections");
  for (round = 0; round < 2; round++) {
    /* held answers: the N go side by side, on N connections */
    fault(&server, "/api/me", test_scaled(300), N);
    send_gets(c, &rep, s, N);
    wait_ok(&e, &rep, N);
  }
  /* the login's connection and N - 1 more, for both bursts; the test's own
   * calls (two faults, this count) open one each */
  assert_int_equal(test_stat(&server, "connections") - connections, N - 1 + 3);
  clear(&server, "/api/me");
  test_env_close(&e);
}

/* the fd a watcher watches */
static int fd_of(const uv_poll_t *p) {
  uv_os_fd_t fd = -1;
  assert_int_equal(uv_fileno((const uv_handle_t *)p, &fd), 0);
  return fd;
}

typedef struct {
  test_env *e;
  int n, sent_at_first; /* the second request was on the wire when the first's reply ran */
} pair_state;

static void on_pair_reply(authloop_client *c, int status, long http, const char *body, size_t len,
                          void *ud) {
  pair_state *p = ud;
  const uv_poll_t *w = NULL;
  (void)c;
  (void)body;
  (void)len;
  assert_int_equal(status, 0);
  assert_int_equal(http, 200);
  /* sent: libcurl waits for its answer, or has it already (a fast server
   * answers inside the socket action that sent it: both replies then run in
   * one dispatch) */
  if (p->n++ == 0) {
    authloop__transport_watchers(&p->e->ctx->transport, &w);
    p->sent_at_first = w || !authloop__transport_busy(&p->e->ctx->transport);
  }
}

/* What waits in line goes out in the loop turn whose answer freed its
 * connection: the reply to the first of two requests on one connection runs
 * after libcurl sent the second (it watches the socket for the answer).
 * Left to libcurl's 0 ms timer, the second went out a turn later, and a
 * server kept busy by a line waited on the client's every turn. */
static void the_line_moves_on_in_the_same_turn(void **state) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  authloop_client *c;
  pair_state p = {0};
  int i;
  (void)state;
  o.ca_file = server.ca;
  o.max_host_connections = 1;
  test_env_init(&e, &server, &o);
  p.e = &e;
  c = gateway(&e, server.base_url);
  test_record(c, &r);
  login(&e, c, &r, &server);
  for (i = 0; i < 2; i++)
    assert_int_equal(authloop_request(c, "GET", "/api/me", NULL, on_pair_reply, &p), 0);
  test_run_until(&e, &p.n, 2, 8000);
  assert_true(p.sent_at_first);
  test_env_close(&e);
}

static void on_kuzzle_me(authloop_client *c, int status, long http, const char *body, size_t len,
                         void *ud) {
  (void)c;
  (void)body;
  (void)len;
  assert_int_equal(status, 0);
  assert_int_equal(http, 200);
  (*(int *)ud)++;
}

/* reads what came (level-triggered: a byte left unread would wake it again) */
static void on_mine_read(uv_poll_t *p, int status, int events) {
  uv_os_fd_t fd = -1;
  char buf[16];
  (void)status;
  (void)events;
  assert_int_equal(uv_fileno((const uv_handle_t *)p, &fd), 0);
  assert_true(read(fd, buf, sizeof(buf)) > 0);
  (*(int *)p->data)++;
}

static void on_closed_ctx(authloop_ctx *ctx, void *ud) {
  (void)ctx;
  (*(int *)ud)++;
}

/* No watcher outlives its socket: once libcurl has closed it (Kuzzle's
 * answers close their connections), the application may watch a socket that
 * got its number, beside authloop's next requests, and closing the ctx
 * leaves the application's watcher alone. A design that kept a stopped
 * watcher for the connection's next request left it behind for sockets
 * libcurl closed, and the ctx's close took their number out of epoll
 * (libuv's stop does EPOLL_CTL_DEL): the application's socket went deaf. */
static void an_fd_number_authloop_had_is_the_apps_next(void **state) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  test_env e;
  test_recorder r;
  authloop_client *c;
  uv_poll_t mine;
  const uv_poll_t *w = NULL;
  int pair[2], fd = -1, fired = 0, answered = 0, closed = 0;
  char byte = 'x';
  (void)state;
  test_env_init(&e, &server, NULL);
  o.provider = "kuzzle";
  o.base_url = server.base_url;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  assert_int_equal(authloop_login_local(c, "kuzzle-user", "kuzzle-pass", "1h"), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 8000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  /* the number of a request's connection, seen while it is under way (the
   * request's own timeout bounds the wait; a spinning loop fails) */
  assert_int_equal(authloop_request(c, "GET", "/_me", NULL, on_kuzzle_me, &answered), 0);
  {
    uint64_t start = uv_hrtime();
    unsigned long turns = 0;
    while (!answered) {
      if (fd < 0 && authloop__transport_watchers(&e.ctx->transport, &w) && w)
        fd = fd_of(w);
      uv_run(&e.loop, UV_RUN_ONCE);
      turns++;
    }
    test_check_spin(turns, start, "waiting for the request");
  }
  assert_int_equal(answered, 1);
  assert_true(fd >= 0);
  uv_run(&e.loop, UV_RUN_NOWAIT); /* close callbacks */
  /* the connection is gone (Connection: close), and its watcher with it */
  assert_int_equal(fcntl(fd, F_GETFD), -1);
  assert_int_equal(authloop__transport_watchers(&e.ctx->transport, &w), 0);
  /* the application's socket takes the number */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  if (pair[0] != fd) { /* the lowest free number is often fd itself */
    assert_int_equal(dup2(pair[0], fd), fd);
    close(pair[0]);
  }
  assert_int_equal(uv_poll_init_socket(&e.loop, &mine, fd), 0);
  mine.data = &fired;
  assert_int_equal(uv_poll_start(&mine, UV_READABLE, on_mine_read), 0);
  assert_int_equal(write(pair[1], &byte, 1), 1);
  test_run_until(&e, &fired, 1, 2000);
  /* authloop beside it: its request goes out on another number */
  assert_int_equal(authloop_request(c, "GET", "/_me", NULL, on_kuzzle_me, &answered), 0);
  test_run_until(&e, &answered, 2, 8000);
  /* the ctx closes, the application's watcher active all along; its socket
   * still speaks */
  assert_int_equal(authloop_ctx_close(e.ctx, on_closed_ctx, &closed), 0);
  test_run_until(&e, &closed, 1, 8000);
  assert_int_equal(write(pair[1], &byte, 1), 1);
  test_run_until(&e, &fired, 2, 2000);
  uv_close((uv_handle_t *)&mine, NULL);
  uv_close((uv_handle_t *)&e.watchdog, NULL);
  assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&e.loop), 0);
  close(fd);
  close(pair[1]);
}

static void on_probe(void *ud, const authloop__outcome *o) {
  int *p = ud;
  p[0]++;
  p[1] = o->error;
}

/* Nor do the sockets libcurl closes on its own, some without its
 * close-socket callback (libcurl 7.88): a name that does not resolve (the
 * threaded resolver's socketpair, reported to the socket callback) and a
 * server that never answers. Once the transfer has ended, no watcher is left
 * whose number the application could take. */
static void failed_connections_leave_no_watcher(void **state) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_env e;
  char hole[64];
  const char *bases[2] = {"http://no-such-host.invalid", hole};
  const int errors[2] = {AUTHLOOP_ERESOLVE, AUTHLOOP_ETIMEDOUT};
  const uv_poll_t *w = NULL;
  int port, listener = black_hole(&port), i;
  (void)state;
  snprintf(hole, sizeof(hole), "https://127.0.0.1:%d", port);
  o.ca_file = server.ca;
  o.timeout_ms = 1000;
  test_env_init(&e, &server, &o);
  for (i = 0; i < 2; i++) {
    authloop__request req = {0};
    authloop__transfer *x;
    int probe[2] = {0, 0};
    req.method = "GET";
    req.base = bases[i];
    assert_int_equal(authloop__request_path(&req, "/x", 0), 0);
    assert_int_equal(authloop__transport_start(&e.ctx->transport, &req, on_probe, probe, &x), 0);
    test_run_until(&e, &probe[0], 1, 8000);
    /* (a resolver that does not answer within the second times out: the
     * resolve is cancelled, its socketpair closed the same way) */
    assert_true(probe[1] == errors[i] || (i == 0 && probe[1] == AUTHLOOP_ETIMEDOUT));
    uv_run(&e.loop, UV_RUN_NOWAIT); /* close callbacks */
    assert_int_equal(authloop__transport_watchers(&e.ctx->transport, &w), 0);
  }
  close(listener);
  test_env_close(&e);
}

/* One server however its host is spelled: libcurl's per-host limit does not
 * mind case, nor does the line. */
static void one_line_per_server_whatever_the_case(void **state) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  test_env e;
  test_recorder r[2];
  authloop_client *c[2];
  char url[2][64];
  int i;
  (void)state;
  snprintf(url[0], sizeof(url[0]), "https://localhost:%d", server.port);
  snprintf(url[1], sizeof(url[1]), "https://LOCALHOST:%d", server.port);
  o.ca_file = server.ca;
  o.max_host_connections = 1;
  test_env_init(&e, &server, &o);
  for (i = 0; i < 2; i++) {
    char *code = test_mint_code(&server, "case");
    c[i] = gateway(&e, url[i]);
    test_record(c[i], &r[i]);
    assert_int_equal(authloop_login_code(c[i], code), 0);
    free(code);
  }
  assert_int_equal(authloop__transport_in_libcurl(&e.ctx->transport), 1);
  for (i = 0; i < 2; i++) {
    test_run_until(&e, &r[i].count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
    assert_true(r[i].last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  }
  test_env_close(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_dead_server_holds_up_no_other),
      cmocka_unit_test(close_cancels_the_line),
      cmocka_unit_test(the_line_keeps_its_deadline),
      cmocka_unit_test(started_under_a_pump),
      cmocka_unit_test(http2_streams_share_a_connection),
      cmocka_unit_test(one_line_per_server_whatever_the_case),
      cmocka_unit_test(a_burst_keeps_its_connections),
      cmocka_unit_test(an_fd_number_authloop_had_is_the_apps_next),
      cmocka_unit_test(the_line_moves_on_in_the_same_turn),
      cmocka_unit_test(failed_connections_leave_no_watcher),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER"))
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("the transport's lines", tests, test_group_setup,
                                     test_group_teardown);
}
