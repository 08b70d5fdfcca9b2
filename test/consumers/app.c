/* SPDX-License-Identifier: MIT */
/* A consumer: links authloop, checks the run-time version against the
 * headers', and makes and closes a ctx on its own loop. */
#include <authloop.h>

#include <stdio.h>

int main(void) {
  uv_loop_t loop;
  authloop_ctx *ctx;
  if (authloop_version() != AUTHLOOP_VERSION_HEX) {
    fprintf(stderr, "headers %s, library %s\n", AUTHLOOP_VERSION_STRING, authloop_version_string());
    return 1;
  }
  uv_loop_init(&loop);
  if (authloop_ctx_new(&loop, NULL, &ctx) != 0 || authloop_ctx_close(ctx, NULL, NULL) != 0)
    return 1;
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("authloop %s: ok\n", authloop_version_string());
  return uv_loop_close(&loop) == 0 ? 0 : 1;
}
