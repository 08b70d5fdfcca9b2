/* SPDX-License-Identifier: MIT */
/* The GLib adapter: a GSource over the public embedding calls only.
 * prepare() asks authloop_ctx_timeout_ms() how long GLib may sleep, GLib
 * polls authloop_ctx_fd(), and dispatch() runs authloop_ctx_process(). With
 * nothing due the source says "no deadline", so an idle GLib loop sleeps. */
#include "authloop-glib.h"

typedef struct {
  GSource source;
  authloop_ctx *ctx;
  gpointer fd_tag;
} ctx_source;

static gboolean prepare(GSource *s, gint *timeout) {
  *timeout = authloop_ctx_timeout_ms(((ctx_source *)s)->ctx);
  return *timeout == 0;
}

static gboolean check(GSource *s) {
  ctx_source *u = (ctx_source *)s;
  return (g_source_query_unix_fd(s, u->fd_tag) & G_IO_IN) != 0 ||
         authloop_ctx_timeout_ms(u->ctx) == 0;
}

/* When the ctx's close finishes in this turn, the source removes itself
 * and forgets the ctx: a main loop that runs on never touches freed memory,
 * whether or not the app destroys the source in its close callback. */
static gboolean dispatch(GSource *s, GSourceFunc cb, gpointer data) {
  ctx_source *u = (ctx_source *)s;
  (void)cb;
  (void)data;
  if (authloop_ctx_process(u->ctx))
    return G_SOURCE_CONTINUE;
  u->ctx = NULL;
  return G_SOURCE_REMOVE;
}

static GSourceFuncs funcs = {prepare, check, dispatch, NULL, NULL, NULL};

GSource *authloop_glib_attach(authloop_ctx *ctx, GMainContext *context) {
  ctx_source *u;
  int fd;
  if (!ctx || (fd = authloop_ctx_fd(ctx)) < 0)
    return NULL;
  u = (ctx_source *)g_source_new(&funcs, sizeof(ctx_source));
  u->ctx = ctx;
  u->fd_tag = g_source_add_unix_fd(&u->source, fd, G_IO_IN);
  g_source_set_name(&u->source, "authloop");
  g_source_attach(&u->source, context);
  return &u->source;
}
