/* SPDX-License-Identifier: MIT */
/* One of several processes sharing a session file: restores it, stays
 * active (a touch every 300 ms) for DURATION_MS, then keeps running until it
 * is not about to refresh (its token has more than 3.5 s left), so that two
 * such processes end at a quiet moment. Prints its counts and its token.
 *   share_child SESSION_PATH BASE_URL CA_FILE DURATION_MS
 * Prints "refreshed=N expired=N state=STATE token=TOKEN". */
#include <authloop.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct {
  authloop_client *c;
  uv_timer_t tick;
  uint64_t end;
  int refreshed, expired;
} child;

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  child *k = ud;
  (void)c;
  if (ev->type == AUTHLOOP_EV_TOKEN_REFRESHED)
    k->refreshed++;
  else if (ev->type == AUTHLOOP_EV_SESSION_EXPIRED)
    k->expired++;
}

static void on_log(authloop_log_level level, const char *msg, void *ud) {
  (void)level;
  fprintf(stderr, "[%d] %s\n", *(int *)ud, msg);
}

static void on_tick(uv_timer_t *t) {
  child *k = t->data;
  authloop_client *c = k->c;
  /* past the end, it waits for a token with time left to report, but only
   * so long: a session that never gets one is reported as it is */
  if (uv_now(t->loop) < k->end ||
      (authloop_is_logged_in(c) && authloop_token_expires_in_ms(c) <= 3500 &&
       uv_now(t->loop) < k->end + 20000)) {
    authloop_touch(c);
    if (getenv("SHARE_DEBUG") && uv_now(t->loop) >= k->end)
      fprintf(stderr, "[tick] %s expires in %lld ms\n",
              authloop_state_name(authloop_client_state(c)), authloop_token_expires_in_ms(c));
    return;
  }
  printf("refreshed=%d expired=%d state=%s token=%s\n", k->refreshed, k->expired,
         authloop_state_name(authloop_client_state(c)),
         authloop_access_token(c) ? authloop_access_token(c) : "-");
  fflush(stdout);
  uv_close((uv_handle_t *)t, NULL);
  authloop_ctx_close(authloop_client_ctx(c), NULL, NULL);
}

int main(int argc, char **argv) {
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  uv_loop_t loop;
  child k = {0};
  int t;
  if (argc != 5)
    return 2;
  uv_loop_init(&loop);
  co.ca_file = argv[3];
  if (getenv("SHARE_DEBUG")) {
    static int pid;
    pid = (int)uv_os_getpid();
    co.log_cb = on_log;
    co.log_userdata = &pid;
    co.log_level = getenv("SHARE_DEBUG")[0] == '2' ? AUTHLOOP_LOG_DEBUG : AUTHLOOP_LOG_INFO;
  }
  if (authloop_ctx_new(&loop, &co, &ctx) != 0)
    return 1;
  o.provider = "gateway";
  o.base_url = argv[2];
  o.session_path = argv[1];
  if (authloop_client_new(ctx, &o, &k.c) != 0 || !authloop_is_logged_in(k.c))
    return 1;
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(k.c, (authloop_event_type)t, on_event, &k);
  authloop_touch(k.c);
  uv_timer_init(&loop, &k.tick);
  k.tick.data = &k;
  k.end = uv_now(&loop) + (uint64_t)atoi(argv[4]);
  uv_timer_start(&k.tick, on_tick, 300, 300);
  uv_unref((uv_handle_t *)&k.tick); /* the ctx keeps the loop alive, not the test's tick */
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop) == 0 ? 0 : 1;
}
