/* SPDX-License-Identifier: MIT */
/* Log in to a gateway with a one-time authorization code, print each event as
 * it arrives, show the user, log out, and close everything cleanly.
 *
 *   login --url https://127.0.0.1:8443 --ca ca.pem --code CODE [--until-refresh]
 *
 * With --until-refresh the user stays logged in until authloop has refreshed
 * the tokens by itself (before they expire), then logs out.
 */
#include <authloop.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int exit_code;
  int until_refresh;
} app_state;

static void on_event(authloop_client *c, const authloop_event *ev, void *userdata) {
  app_state *app = userdata;
  const authloop_user *u;
  switch (ev->type) {
  case AUTHLOOP_EV_STATE_CHANGED:
    printf("event stateChanged: %s -> %s\n", authloop_state_name(ev->old_state),
           authloop_state_name(ev->new_state));
    break;
  case AUTHLOOP_EV_LOGIN_ATTEMPT:
    printf("event loginAttempt: success=%d", ev->success);
    if (!ev->success) {
      printf(" error=%s message=\"%s\"", authloop_err_name(ev->error), ev->message);
      if (ev->server_code)
        printf(" server_code=%s", ev->server_code);
      printf("\n");
      app->exit_code = 1;
      authloop_ctx_close(authloop_client_ctx(c), NULL, NULL);
      break;
    }
    u = authloop_current_user(c);
    printf("\nuser: id=%s name=\"%s\" email=%s\n", authloop_user_id(u), authloop_user_name(u),
           authloop_user_field(u, "email"));
    printf("user json: %s\n", authloop_user_json(u));
    printf("access token: %zu bytes, lifetime %ld s\n", strlen(authloop_access_token(c)),
           authloop_token_lifetime(c));
    if (app->until_refresh) {
      printf("waiting for the automatic refresh (the token expires in %lld ms)...\n",
             authloop_token_expires_in_ms(c));
      break;
    }
    authloop_logout(c);
    break;
  case AUTHLOOP_EV_TOKEN_REFRESHED:
    printf("event tokenRefreshed: new lifetime %ld s, expires in %lld ms\n", ev->lifetime,
           authloop_token_expires_in_ms(c));
    authloop_logout(c);
    break;
  case AUTHLOOP_EV_SESSION_EXPIRED:
    printf("event sessionExpired: %s\n", ev->message);
    app->exit_code = 1;
    authloop_ctx_close(authloop_client_ctx(c), NULL, NULL);
    break;
  case AUTHLOOP_EV_LOGOUT:
    printf("event logout: %s\n", ev->error ? ev->message : "acknowledged by the server");
    authloop_ctx_close(authloop_client_ctx(c), NULL, NULL);
    break;
  default:
    break;
  }
}

static void usage(void) {
  fprintf(stderr, "usage: login --url BASE_URL --code CODE [--ca CA_FILE] [--until-refresh]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *url = NULL, *code = NULL, *ca = NULL;
  authloop_ctx_options copts = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options opts = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  authloop_client *c;
  app_state app = {0};
  uv_loop_t loop;
  int i, rc, t;

  for (i = 1; i < argc; i += 2) {
    if (strcmp(argv[i], "--until-refresh") == 0) {
      app.until_refresh = 1;
      i--;
      continue;
    }
    if (i + 1 >= argc)
      usage();
    if (strcmp(argv[i], "--url") == 0)
      url = argv[i + 1];
    else if (strcmp(argv[i], "--code") == 0)
      code = argv[i + 1];
    else if (strcmp(argv[i], "--ca") == 0)
      ca = argv[i + 1];
    else
      usage();
  }
  if (!url || !code)
    usage();

  uv_loop_init(&loop);
  copts.ca_file = ca;
  if ((rc = authloop_ctx_new(&loop, &copts, &ctx)) != 0) {
    fprintf(stderr, "authloop_ctx_new: %s\n", authloop_strerror(rc));
    return 1;
  }
  opts.provider = "gateway";
  opts.base_url = url;
  if ((rc = authloop_client_new(ctx, &opts, &c)) != 0) {
    fprintf(stderr, "authloop_client_new: %s: %s\n", authloop_err_name(rc), authloop_strerror(rc));
    authloop_ctx_close(ctx, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(c, (authloop_event_type)t, on_event, &app);

  printf("logging in to %s\n", url);
  if ((rc = authloop_login_code(c, code)) != 0) {
    fprintf(stderr, "authloop_login_code: %s: %s\n", authloop_err_name(rc), authloop_strerror(rc));
    app.exit_code = 1;
    authloop_ctx_close(ctx, NULL, NULL);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&loop);
  printf("loop closed: %s\n", rc == 0 ? "clean" : uv_strerror(rc));
  return app.exit_code || rc != 0;
}
