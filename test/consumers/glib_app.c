/* SPDX-License-Identifier: MIT */
/* A consumer of the GLib adapter: attaches a ctx to the default main context. */
#include <authloop-glib.h>

int main(void) {
  uv_loop_t loop;
  authloop_ctx *ctx;
  GSource *s;
  int closed = 0;
  uv_loop_init(&loop);
  if (authloop_ctx_new(&loop, NULL, &ctx) != 0 || !(s = authloop_glib_attach(ctx, NULL)))
    return 1;
  authloop_ctx_close(ctx, NULL, NULL);
  while (uv_loop_alive(&loop) && closed++ < 100)
    g_main_context_iteration(NULL, FALSE);
  g_source_destroy(s);
  g_source_unref(s);
  return uv_loop_close(&loop) == 0 ? 0 : 1;
}
