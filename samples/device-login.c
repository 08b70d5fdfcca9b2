/* SPDX-License-Identifier: MIT */
/* Log in to an OpenID Provider with the device authorization grant (the way
 * a TV or a command-line tool does): print where the user goes and the code
 * they enter there, wait for them, show who logged in, log out (revoking the
 * refresh token), print the OP's end-session URL, and close cleanly.
 *
 *   device-login --issuer https://op.example --client-id ID [--secret S]
 *                [--ca ca.pem] [--scope "openid offline_access profile"]
 *
 * scripts/oidc-demo.sh runs it against a local OP (oidc-provider).
 */
#include <authloop.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int exit_code;
} app_state;

static void on_event(authloop_client *c, const authloop_event *ev, void *userdata) {
  app_state *app = userdata;
  const authloop_login_prompt *p;
  const authloop_user *u;
  switch (ev->type) {
  case AUTHLOOP_EV_LOGIN_PROMPT:
    p = authloop_login_prompt_of(c);
    printf("\nTo sign in, open %s\nand enter the code: %s\n", p->verification_uri, p->user_code);
    if (p->verification_uri_complete)
      printf("(or open %s)\n", p->verification_uri_complete);
    printf("The code is good for %ld s; waiting...\n", p->expires_in);
    printf("user_code=%s\n", p->user_code); /* one line a script can read */
    fflush(stdout);
    break;
  case AUTHLOOP_EV_LOGIN_ATTEMPT:
    if (!ev->success) {
      printf("login failed: %s (%s)%s%s\n", authloop_err_name(ev->error), ev->message,
             ev->server_code ? " server code " : "", ev->server_code ? ev->server_code : "");
      app->exit_code = 1;
      authloop_ctx_close(authloop_client_ctx(c), NULL, NULL);
      break;
    }
    u = authloop_current_user(c);
    printf("\nlogged in: sub=%s name=\"%s\" email=%s\n", authloop_user_id(u),
           authloop_user_name(u) ? authloop_user_name(u) : "", authloop_user_field(u, "email"));
    printf("id token claims: %s\n", authloop_user_json(u));
    printf("access token: %zu bytes, lifetime %ld s\n", strlen(authloop_access_token(c)),
           authloop_token_lifetime(c));
    authloop_logout(c);
    break;
  case AUTHLOOP_EV_LOGOUT:
    printf("logged out: the OP %s the refresh token\n",
           ev->error ? "did not confirm revoking" : "revoked");
    if (authloop_end_session_url(c))
      printf("end the session at the OP too: %.80s...\n", authloop_end_session_url(c));
    if (ev->error)
      app->exit_code = 1;
    authloop_ctx_close(authloop_client_ctx(c), NULL, NULL);
    break;
  default:
    break;
  }
}

static const char *arg(int argc, char **argv, const char *name) {
  int i;
  for (i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return NULL;
}

int main(int argc, char **argv) {
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  authloop_client *c;
  app_state app = {0};
  uv_loop_t loop;
  int rc, t;

  o.provider = "oidc";
  o.base_url = arg(argc, argv, "--issuer");
  o.client_id = arg(argc, argv, "--client-id");
  o.client_secret = arg(argc, argv, "--secret");
  o.scope = arg(argc, argv, "--scope");
  co.ca_file = arg(argc, argv, "--ca");
  if (!o.base_url || !o.client_id) {
    fprintf(stderr,
            "usage: %s --issuer URL --client-id ID [--secret S] [--ca FILE] "
            "[--scope SCOPES]\n",
            argv[0]);
    return 2;
  }
  uv_loop_init(&loop);
  if ((rc = authloop_ctx_new(&loop, &co, &ctx)) != 0 ||
      (rc = authloop_client_new(ctx, &o, &c)) != 0) {
    fprintf(stderr, "set-up failed: %s\n", authloop_strerror(rc));
    return 1;
  }
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(c, (authloop_event_type)t, on_event, &app);
  if ((rc = authloop_login_device(c)) != 0) {
    fprintf(stderr, "login failed at once: %s\n", authloop_strerror(rc));
    authloop_ctx_close(ctx, NULL, NULL);
    app.exit_code = 1;
  } else {
    printf("asking %s for a device code...\n", o.base_url);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop) == 0 ? app.exit_code : 1;
}
