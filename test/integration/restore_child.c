/* SPDX-License-Identifier: MIT */
/* A second process for the persisted-session tests: makes a client on the
 * session file and reports what it finds at once (no network), then proves
 * the restored token works with one authenticated request.
 *   restore_child SESSION_PATH BASE_URL CA_FILE [KEY32]
 * Prints: "state=<STATE> user=<id or ->", then "me=<http status>" if logged in,
 * and every warning authloop logged as "log: <line>". */
#include <authloop.h>

#include <stdio.h>
#include <string.h>

static void on_log(authloop_log_level level, const char *msg, void *userdata) {
  (void)userdata;
  if (level <= AUTHLOOP_LOG_WARN)
    printf("log: %s\n", msg);
}

static void on_me(authloop_client *c, int status, long http_status, const char *body, size_t len,
                  void *userdata) {
  (void)body;
  (void)len;
  (void)userdata;
  printf("me=%ld status=%s\n", http_status, authloop_err_name(status));
  authloop_ctx_close(authloop_client_ctx(c), NULL, NULL);
}

int main(int argc, char **argv) {
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  authloop_client *c;
  uv_loop_t loop;
  const authloop_user *u;
  if (argc < 4 || (argc == 5 && strlen(argv[4]) != 32)) {
    fprintf(stderr, "usage: restore_child PATH URL CA [KEY32]\n");
    return 2;
  }
  uv_loop_init(&loop);
  co.ca_file = argv[3];
  co.log_cb = on_log;
  co.log_level = AUTHLOOP_LOG_WARN;
  if (authloop_ctx_new(&loop, &co, &ctx) != 0)
    return 1;
  o.provider = "gateway";
  o.base_url = argv[2];
  o.session_path = argv[1];
  o.session_key = argc == 5 ? (const unsigned char *)argv[4] : NULL;
  if (authloop_client_new(ctx, &o, &c) != 0)
    return 1;
  u = authloop_current_user(c);
  printf("state=%s user=%s\n", authloop_state_name(authloop_client_state(c)),
         u ? authloop_user_id(u) : "-");
  fflush(stdout);
  if (!authloop_is_logged_in(c) || authloop_request(c, "GET", "/api/me", NULL, on_me, NULL) != 0)
    authloop_ctx_close(ctx, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop) == 0 ? 0 : 1;
}
