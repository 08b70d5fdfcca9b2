/* SPDX-License-Identifier: MIT */
/* The backend half of the gateway flow: ask the gateway for a one-time
 * authorization code for a user, authenticating with a JWT signed by this
 * backend's private key. Prints the code on stdout.
 *
 *   preauth --url GATEWAY_URL --client-id ID --key KEY.pem --user USER_ID
 *           [--passphrase P] [--kid KID] [--ca CA_FILE]
 */
#include <authloop.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int exit_code = 1;

static void on_code(authloop_ctx *ctx, const authloop_preauth_result *r, void *userdata) {
  (void)userdata;
  if (r->status == 0) {
    printf("%s\n", r->authorization_code);
    exit_code = 0;
  } else {
    fprintf(stderr, "pre-auth failed: %s: %s", authloop_err_name(r->status), r->message);
    if (r->server_code)
      fprintf(stderr, " (server code %s)", r->server_code);
    fprintf(stderr, "\n");
  }
  authloop_ctx_close(ctx, NULL, NULL);
}

static void usage(void) {
  fprintf(stderr, "usage: preauth --url GATEWAY_URL --client-id ID --key KEY.pem --user USER_ID\n"
                  "               [--passphrase P] [--kid KID] [--ca CA_FILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  authloop_preauth_options o = AUTHLOOP_PREAUTH_OPTIONS_INIT;
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_ctx *ctx;
  uv_loop_t loop;
  int i, rc;
  for (i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (strcmp(k, "--url") == 0)
      o.gateway_url = v;
    else if (strcmp(k, "--client-id") == 0)
      o.client_id = v;
    else if (strcmp(k, "--key") == 0)
      o.key_file = v;
    else if (strcmp(k, "--user") == 0)
      o.user_id = v;
    else if (strcmp(k, "--passphrase") == 0)
      o.passphrase = v;
    else if (strcmp(k, "--kid") == 0)
      o.kid = v;
    else if (strcmp(k, "--ca") == 0)
      co.ca_file = v;
    else
      usage();
  }
  if (i != argc || !o.gateway_url || !o.client_id || !o.key_file || !o.user_id)
    usage();
  uv_loop_init(&loop);
  if ((rc = authloop_ctx_new(&loop, &co, &ctx)) != 0) {
    fprintf(stderr, "authloop_ctx_new: %s\n", authloop_strerror(rc));
    return 1;
  }
  if ((rc = authloop_preauth(ctx, &o, on_code, NULL)) != 0) {
    fprintf(stderr, "pre-auth refused at once: %s: %s\n", authloop_err_name(rc),
            authloop_strerror(rc));
    authloop_ctx_close(ctx, NULL, NULL);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop) == 0 ? exit_code : 1;
}
