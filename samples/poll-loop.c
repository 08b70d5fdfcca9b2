/* SPDX-License-Identifier: MIT */
/* authloop in a loop that is not libuv's: plain poll(2), as Qt, SDL or a
 * game loop would do it. The ctx gives one fd to watch and a deadline; when
 * either fires, authloop_ctx_process() does the work.
 *
 *   poll-loop --url BASE_URL --code CODE [--ca CA_FILE]
 */
#include <authloop.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int done, failed;

static void on_closed(authloop_ctx *ctx, void *ud) {
  (void)ctx;
  (void)ud;
  done = 1;
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  (void)ud;
  printf("event %s", authloop_event_name(ev->type));
  if (ev->type == AUTHLOOP_EV_STATE_CHANGED)
    printf(": %s -> %s", authloop_state_name(ev->old_state), authloop_state_name(ev->new_state));
  else if (ev->error)
    printf(": %s (%s)", authloop_err_name(ev->error), ev->message);
  printf("\n");
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT && ev->success) {
    printf("user %s\n", authloop_user_id(authloop_current_user(c)));
    authloop_logout(c);
  } else if (ev->type == AUTHLOOP_EV_LOGOUT || ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT) {
    failed = ev->error != 0;
    authloop_ctx_close(authloop_client_ctx(c), on_closed, NULL);
  }
}

int main(int argc, char **argv) {
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  const char *code = NULL;
  authloop_ctx *ctx;
  authloop_client *c;
  uv_loop_t loop; /* authloop's, never run by this program */
  unsigned wakeups = 0;
  int i, t;
  for (i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--url") == 0)
      o.base_url = argv[i + 1];
    else if (strcmp(argv[i], "--ca") == 0)
      co.ca_file = argv[i + 1];
    else if (strcmp(argv[i], "--code") == 0)
      code = argv[i + 1];
  }
  if (i != argc || !o.base_url || !code) {
    fprintf(stderr, "usage: poll-loop --url BASE_URL --code CODE [--ca CA_FILE]\n");
    return 2;
  }
  uv_loop_init(&loop);
  if (authloop_ctx_new(&loop, &co, &ctx) != 0)
    return 1;
  o.provider = "gateway";
  if (authloop_client_new(ctx, &o, &c) != 0)
    return 1;
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(c, (authloop_event_type)t, on_event, NULL);
  if (authloop_login_code(c, code) != 0)
    authloop_ctx_close(ctx, on_closed, NULL);

  /* the application's own loop */
  while (!done) {
    struct pollfd p = {authloop_ctx_fd(ctx), POLLIN, 0};
    poll(&p, 1, authloop_ctx_timeout_ms(ctx));
    authloop_ctx_process(ctx);
    wakeups++;
  }
  printf("poll loop woke %u times; loop closed: %s\n", wakeups,
         uv_loop_close(&loop) == 0 ? "clean" : "NOT clean");
  return failed;
}
