/* SPDX-License-Identifier: MIT */
/* Allocation failures: one login -> refresh -> request -> logout -> close on
 * a real loop against the reference server, with the Nth malloc, calloc or
 * realloc of the whole process (authloop, libcurl, OpenSSL, libuv, jansson)
 * made to fail once. This program defines malloc, calloc and realloc itself,
 * so every library's calls come here; it hands them to glibc's own
 * (__libc_malloc ...), which valgrind also watches for leaks.
 *
 *   alloc_driver URL CA N [FLOW [ARG]]   N = 0: fail nothing, print how many calls there were
 *
 * FLOW: "gateway" (the default, as above); "preauth KEYFILE" (a pre-auth with
 * the backend key KEYFILE as client "alloc-backend", then close: out of
 * memory must be ENOMEM, never a key error); "twostep" (a Kuzzle two-step
 * strategy: the pause, then the token, then close); "lockwait DIR" (URL the
 * OpenID Connect peer: a device login, a refresh waiting for the session
 * file's lock, which this program holds and lets go; N counts from then).
 *
 * The contract checked: every call either fails at once (no outcome) or gets
 * exactly one outcome; the ctx closes once; the loop closes clean. Exit 0
 * when it held, 1 when it did not (with a line saying what); a crash prints
 * its stack (the test classifies whose code it was in). */
#include <authloop.h>

#include <curl/curl.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static long calls, fail_at;
static int armed;

/* lockwait: the failed allocation was the ctx's own, in its look at the
 * lock (taking it, or reading the file under it), on the loop. (jansson's
 * own failures there are not counted: it gets past some of them; lib/json.c
 * tells the others apart, test/unit/test_json.c.) */
static int failed_in_lock_look;
static const char *flow_name = "gateway";

static void classify(void) {
  static const char *const looks[] = {"authloop__store_trylock", "authloop__store_hold",
                                      "authloop__store_read", "authloop__store_decode"};
  void *frames[64];
  char **names;
  int n, i, evaluate = 0, look = 0, caller = -1;
  size_t k;
  armed = 0; /* backtrace_symbols() allocates */
  n = backtrace(frames, 64);
  if ((names = backtrace_symbols(frames, n))) {
    for (i = 0; i < n; i++) {
      if (caller < 0 && (strstr(names[i], "(malloc+") || strstr(names[i], "(calloc+") ||
                         strstr(names[i], "(realloc+")))
        caller = i + 1;
      else if (i == caller && strstr(names[i], "libc.so")) /* strdup */
        caller++;
      evaluate |= strstr(names[i], "(authloop__client_evaluate+") != NULL;
      for (k = 0; k < sizeof(looks) / sizeof(looks[0]); k++)
        look |= strstr(names[i], looks[k]) != NULL;
    }
    /* whose call it was: authloop's code is linked into this program */
    failed_in_lock_look =
        evaluate && look && caller > 0 && caller < n && strstr(names[caller], "alloc_driver(");
    free(names);
  }
  armed = 1;
}

/* AUTHLOOP_ALLOC_TRACE set: the stack of the allocation made to fail, on
 * stderr (to find whose it is) */
static int should_fail(void) {
  if (!armed || ++calls != fail_at)
    return 0;
  if (strcmp(flow_name, "lockwait") == 0)
    classify();
  if (getenv("AUTHLOOP_ALLOC_TRACE")) {
    void *frames[64];
    int n;
    armed = 0; /* backtrace() may allocate */
    n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, 2);
    armed = 1;
  }
  return 1;
}

void *malloc(size_t n) { return should_fail() ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return should_fail() ? NULL : __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return should_fail() ? NULL : __libc_realloc(p, n); }

static void on_crash(int sig) {
  void *frames[64];
  int n = backtrace(frames, 64);
  char head[64];
  int len = snprintf(head, sizeof(head), "CRASH signal %d at allocation %ld\n", sig, fail_at);
  if (write(2, head, (size_t)len) < 0) {
  }
  backtrace_symbols_fd(frames, n, 2);
  _exit(128 + sig);
}

/* ---- the scenario ------------------------------------------------------------------ */

static int fails;
#define EXPECT(cond, ...)                                                                          \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "CONTRACT at allocation %ld: ", fail_at);                                    \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
      fails++;                                                                                     \
    }                                                                                              \
  } while (0)

typedef struct {
  authloop_ctx *ctx;
  authloop_client *c;
  int login_rc, refresh_rc, request_rc, logout_rc, close_rc;
  int logins, refreshes, responses, logouts, closed;
} run;

static void on_closed(authloop_ctx *ctx, void *ud) {
  (void)ctx;
  ((run *)ud)->closed++;
}

static void on_response(authloop_client *c, int status, long http, const char *body, size_t len,
                        void *ud) {
  run *r = ud;
  (void)status;
  (void)http;
  (void)body;
  (void)len;
  r->responses++;
  r->logout_rc = authloop_logout(c); /* last: the logout */
  if (r->logout_rc != 0)
    r->close_rc = authloop_ctx_close(r->ctx, on_closed, r);
}

static void on_refreshed(authloop_client *c, int status, void *ud) {
  run *r = ud;
  (void)status;
  r->refreshes++;
  r->request_rc = authloop_request(c, "GET", "/api/me", NULL, on_response, r);
  if (r->request_rc != 0) {
    r->logout_rc = authloop_logout(c);
    if (r->logout_rc != 0)
      r->close_rc = authloop_ctx_close(r->ctx, on_closed, r);
  }
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  run *r = ud;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    r->logins++;
    if (ev->success)
      r->refresh_rc = authloop_refresh(c, on_refreshed, r);
    if (!ev->success || r->refresh_rc != 0)
      r->close_rc = authloop_ctx_close(r->ctx, on_closed, r);
  } else if (ev->type == AUTHLOOP_EV_LOGOUT) {
    r->logouts++;
    r->close_rc = authloop_ctx_close(r->ctx, on_closed, r);
  }
}

/* ---- the other flows ---------------------------------------------------------------- */

static int preauth_rc, preauth_results, preauth_status;
static char kuzzle_token[1024];
static int twostep_rc, set_token_rc = -1, paused;

static void on_preauth(authloop_ctx *ctx, const authloop_preauth_result *res, void *ud) {
  run *r = ud;
  preauth_results++;
  preauth_status = res->status;
  r->close_rc = authloop_ctx_close(ctx, on_closed, r);
}

static void on_twostep(authloop_client *c, const authloop_event *ev, void *ud) {
  run *r = ud;
  if (ev->type == AUTHLOOP_EV_STATE_CHANGED && ev->new_state == AUTHLOOP_STATE_AWAITING_TOKEN) {
    paused++;
    set_token_rc = authloop_set_token(c, kuzzle_token);
    if (set_token_rc != 0)
      r->close_rc = authloop_ctx_close(r->ctx, on_closed, r);
  } else if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    r->logins++;
    r->close_rc = authloop_ctx_close(r->ctx, on_closed, r);
  }
}

/* ---- the servers' test controls, before anything is made to fail ----------------- */

static size_t sink(char *p, size_t size, size_t n, void *ud) {
  size_t have = strlen(ud), add = size * n;
  if (have + add < 1024) { /* the reply buffers' size */
    memcpy((char *)ud + have, p, add);
    ((char *)ud)[have + add] = '\0';
  }
  return add;
}

/* POSTs JSON body to url path; the answer in reply (1024 bytes, cut
 * short). The HTTP status, or 0 when none came. */
static long post_json(const char *url, const char *path, const char *ca, const char *body,
                      char *reply) {
  char u[256];
  CURL *e = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  long status = 0;
  reply[0] = '\0';
  snprintf(u, sizeof(u), "%s%s", url, path);
  curl_easy_setopt(e, CURLOPT_URL, u);
  curl_easy_setopt(e, CURLOPT_CAINFO, ca);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)reply);
  if (curl_easy_perform(e) != CURLE_OK ||
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
    status = 0;
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  return status;
}

/* The string member name of a reply (no escapes in it) into out (n bytes):
 * 1, or 0 when there is none or it does not fit. */
static int string_field(const char *reply, const char *name, char *out, size_t n) {
  char key[64];
  const char *p, *q;
  snprintf(key, sizeof(key), "\"%s\":\"", name);
  if (!(p = strstr(reply, key)) || !(q = strchr(p += strlen(key), '"')) || (size_t)(q - p) >= n)
    return 0;
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = '\0';
  return 1;
}

/* ---- a refresh that waits for another process's lock ------------------------------ */
/* An OpenID Connect login whose tokens have no stated lifetime (the peer's
 * client "unknown-lifetime"), so that no retry is ever scheduled for it; the
 * session file's lock held here, as another process would; a refresh asked
 * for, which waits for the lock; the lock let go, and from then on the Nth
 * allocation fails. Whatever fails, the refresh's caller has one answer. */
static char lock_path[600];
static int lock_fd = -1, refresh_status;
static uv_timer_t unlock_timer;
static const char *peer_url, *peer_ca;

static void approve(const char *user_code) {
  char reply[1024], body[256];
  snprintf(body, sizeof(body), "{\"user_code\":\"%s\",\"login\":\"alice\",\"deny\":false}",
           user_code);
  if (post_json(peer_url, "/__user/device", peer_ca, body, reply) != 200)
    exit(2); /* no verdict: the user could not act */
}

static int lock_unused; /* the log said the lock could not be used */
static void on_log(authloop_log_level level, const char *message, void *ud) {
  (void)level;
  (void)ud;
  /* the lock file is ours and usable: only out of memory could say so */
  lock_unused |= strstr(message, "no usable lock") != NULL;
}

static void on_unlocked_closed(uv_handle_t *h) { (void)h; }

static void let_go(uv_timer_t *t) {
  flock(lock_fd, LOCK_UN);
  close(lock_fd);
  lock_fd = -1;
  uv_close((uv_handle_t *)t, on_unlocked_closed);
  calls = 0;
  armed = 1; /* from here on, the Nth allocation fails */
}

static void on_lock_refreshed(authloop_client *c, int status, void *ud) {
  run *r = ud;
  r->refreshes++;
  refresh_status = status;
  r->logout_rc = authloop_logout(c);
  if (r->logout_rc != 0)
    r->close_rc = authloop_ctx_close(r->ctx, on_closed, r);
}

static void on_lockwait(authloop_client *c, const authloop_event *ev, void *ud) {
  run *r = ud;
  if (ev->type == AUTHLOOP_EV_LOGIN_PROMPT) {
    approve(authloop_login_prompt_of(c)->user_code);
  } else if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    r->logins++;
    if (!ev->success || authloop_token_lifetime(c) != -1)
      exit(2); /* no verdict: not the login this flow is about */
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0)
      exit(2);
    r->refresh_rc = authloop_refresh(c, on_lock_refreshed, r);
    EXPECT(r->refresh_rc == 0 && authloop_client_state(c) == AUTHLOOP_STATE_REFRESHING,
           "the refresh does not wait for the lock: %s", authloop_err_name(r->refresh_rc));
    if (r->refresh_rc != 0)
      exit(1);
    /* a few of the ctx's looks at the lock (every 20 ms) find it held */
    uv_timer_init(authloop_ctx_loop(r->ctx), &unlock_timer);
    uv_timer_start(&unlock_timer, let_go, 70, 0);
  } else if (ev->type == AUTHLOOP_EV_LOGOUT) {
    r->logouts++;
    r->close_rc = authloop_ctx_close(r->ctx, on_closed, r);
  }
}

/* A one-time code from the server, before anything is made to fail. */
static void mint(const char *url, const char *ca, char *code, size_t n) {
  char reply[1024];
  if (!post_json(url, "/__test/codes", ca, "{\"userId\":\"allocs\"}", reply) ||
      !string_field(reply, "authorizationCode", code, n))
    exit(2);
}

/* A Kuzzle token for the second step, before anything is made to fail. */
static void mint_kuzzle(const char *url, const char *ca) {
  char reply[1024];
  if (!post_json(url, "/__test/kuzzle-token", ca, "{\"username\":\"kuzzle-user\",\"ttl\":60000}",
                 reply) ||
      !string_field(reply, "jwt", kuzzle_token, sizeof(kuzzle_token)))
    exit(2);
}

int main(int argc, char **argv) {
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  uv_loop_t loop;
  run r = {0};
  char code[256];
  int t = 0, rc;
  const char *flow = argc > 4 ? argv[4] : "gateway";
  if (argc < 4 || ((strcmp(flow, "preauth") == 0 || strcmp(flow, "lockwait") == 0) && argc < 6))
    return 2;
  fail_at = atol(argv[3]);
  flow_name = flow;
  {
    /* the handler must report even when the heap is broken: backtrace()
     * loads its unwinder (and allocates) now, not then; and a second signal
     * inside the handler ends the process as the signal would */
    struct sigaction sa;
    void *frame[1];
    int sigs[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}, i;
    (void)backtrace(frame, 1);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    for (i = 0; i < 5; i++)
      sigaction(sigs[i], &sa, NULL);
  }
  if (strcmp(flow, "gateway") == 0)
    mint(argv[1], argv[2], code, sizeof(code));
  else if (strcmp(flow, "twostep") == 0)
    mint_kuzzle(argv[1], argv[2]);
  if (uv_loop_init(&loop) != 0)
    return 2;
  armed = strcmp(flow, "lockwait") != 0; /* that one's count starts when the lock goes */
  o.ca_file = argv[2];
  o.timeout_ms = 5000;
  if (strcmp(flow, "lockwait") == 0) {
    o.log_cb = on_log;
    o.log_level = AUTHLOOP_LOG_WARN;
  }
  if ((rc = authloop_ctx_new(&loop, &o, &r.ctx)) != 0) {
    EXPECT(rc == AUTHLOOP_ENOMEM, "authloop_ctx_new: %s", authloop_err_name(rc));
    goto done;
  }
  if (strcmp(flow, "preauth") == 0) {
    authloop_preauth_options po = AUTHLOOP_PREAUTH_OPTIONS_INIT;
    po.gateway_url = argv[1];
    po.user_id = "allocs";
    po.client_id = "alloc-backend";
    po.key_file = argv[5];
    if ((preauth_rc = authloop_preauth(r.ctx, &po, on_preauth, &r)) != 0) {
      EXPECT(preauth_rc == AUTHLOOP_ENOMEM, "authloop_preauth: %s", authloop_err_name(preauth_rc));
      r.close_rc = authloop_ctx_close(r.ctx, on_closed, &r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT(r.close_rc == 0 && r.closed == 1, "close %s, %d close callbacks",
           authloop_err_name(r.close_rc), r.closed);
    EXPECT(preauth_results == (preauth_rc == 0), "%d results for %s", preauth_results,
           authloop_err_name(preauth_rc));
    EXPECT(preauth_status != AUTHLOOP_EKEY && preauth_status != AUTHLOOP_EINVAL &&
               preauth_status != AUTHLOOP_EKEYTYPE && preauth_status != AUTHLOOP_EKEYPASS,
           "the result is %s", authloop_err_name(preauth_status));
    EXPECT(uv_loop_close(&loop) == 0, "the loop does not close");
    goto done;
  }
  if (strcmp(flow, "lockwait") == 0) {
    char path[512];
    peer_url = argv[1];
    peer_ca = argv[2];
    snprintf(path, sizeof(path), "%s/lockwait-%ld.session", argv[5], (long)getpid());
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    co.provider = "oidc";
    co.base_url = argv[1];
    co.client_id = "unknown-lifetime";
    co.scope = "openid offline_access profile email";
    co.session_path = path;
    if ((rc = authloop_client_new(r.ctx, &co, &r.c)) != 0)
      return 2;
    for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
      if (authloop_on(r.c, (authloop_event_type)t, on_lockwait, &r) < 0)
        return 2;
    if (authloop_login_device(r.c) != 0)
      return 2;
    uv_run(&loop, UV_RUN_DEFAULT); /* a caller never answered would hang here: the test kills it */
    EXPECT(r.close_rc == 0 && r.closed == 1, "close %s, %d close callbacks",
           authloop_err_name(r.close_rc), r.closed);
    EXPECT(r.refreshes == 1, "the refresh that waited for the lock has %d answers", r.refreshes);
    EXPECT(r.logouts <= 1, "%d logout events", r.logouts);
    EXPECT(!lock_unused, "out of memory was taken for a lock that cannot be used");
    /* out of memory taking the lock or reading the file under it fails the
     * attempt: never a refresh without the lock, or without what the file
     * holds (another process's tokens) */
    EXPECT(!failed_in_lock_look || refresh_status == AUTHLOOP_ENOMEM,
           "out of memory at the look at the lock, and the refresh answered %s",
           authloop_err_name(refresh_status));
    EXPECT(uv_loop_close(&loop) == 0, "the loop does not close");
    if (r.refreshes)
      printf("the refresh: %s\n", authloop_err_name(refresh_status));
    unlink(path);
    unlink(lock_path);
    goto done;
  }
  if (strcmp(flow, "twostep") == 0) {
    co.provider = "kuzzle";
    co.base_url = argv[1];
    if ((rc = authloop_client_new(r.ctx, &co, &r.c)) != 0) {
      EXPECT(rc == AUTHLOOP_ENOMEM, "authloop_client_new: %s", authloop_err_name(rc));
      r.close_rc = authloop_ctx_close(r.ctx, on_closed, &r);
    } else if (authloop_on(r.c, AUTHLOOP_EV_STATE_CHANGED, on_twostep, &r) < 0 ||
               authloop_on(r.c, AUTHLOOP_EV_LOGIN_ATTEMPT, on_twostep, &r) < 0 ||
               (twostep_rc = authloop_login_strategy(
                    r.c, "twostep", "{\"username\":\"kuzzle-user\"}", NULL)) != 0) {
      r.close_rc = authloop_ctx_close(r.ctx, on_closed, &r);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* a lost pause would hang here: the test kills it */
    EXPECT(r.close_rc == 0 && r.closed == 1, "close %s, %d close callbacks",
           authloop_err_name(r.close_rc), r.closed);
    EXPECT(paused <= 1 && r.logins <= 1, "%d pauses, %d loginAttempt", paused, r.logins);
    EXPECT(uv_loop_close(&loop) == 0, "the loop does not close");
    goto done;
  }
  co.provider = "gateway";
  co.base_url = argv[1];
  if ((rc = authloop_client_new(r.ctx, &co, &r.c)) != 0) {
    EXPECT(rc == AUTHLOOP_ENOMEM, "authloop_client_new: %s", authloop_err_name(rc));
    r.close_rc = authloop_ctx_close(r.ctx, on_closed, &r);
  } else {
    for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
      if (authloop_on(r.c, (authloop_event_type)t, on_event, &r) < 0)
        break;
    if (t < AUTHLOOP_EV__COUNT || (r.login_rc = authloop_login_code(r.c, code)) != 0)
      r.close_rc = authloop_ctx_close(r.ctx, on_closed, &r);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  /* each call that returned 0 had exactly one outcome; one that failed, none */
  EXPECT(r.close_rc == 0 && r.closed == 1, "close %s, %d close callbacks",
         authloop_err_name(r.close_rc), r.closed);
  if (r.c) {
    EXPECT(r.logins == (r.login_rc == 0 && t == AUTHLOOP_EV__COUNT), "%d loginAttempt for %s",
           r.logins, authloop_err_name(r.login_rc));
    EXPECT(r.refreshes <= 1 && r.responses <= 1 && r.logouts <= 1, "outcomes %d %d %d", r.refreshes,
           r.responses, r.logouts);
    if (r.refreshes)
      EXPECT(r.responses == (r.request_rc == 0), "%d responses for %s", r.responses,
             authloop_err_name(r.request_rc));
  }
  EXPECT(uv_loop_close(&loop) == 0, "the loop does not close");
done:
  armed = 0;
  if (fail_at == 0)
    printf("allocations %ld\n", calls);
  else if (calls >= fail_at) /* the failure happened (a test can tell it was made) */
    printf("failed allocation %ld of %ld\n", fail_at, calls);
  return fails ? 1 : 0;
}
