/* The GLib adapter: the ctx's uv loop as a GSource. prepare() asks libuv how
 * long it may sleep, GLib polls libuv's backend fd (epoll), and dispatch()
 * runs the uv loop once without blocking. Everything stays on the GLib thread. */
#include "authloop-glib.h"

typedef struct {
  GSource source;
  uv_loop_t *loop;
  gpointer fd_tag;
} uv_source;

/* libuv's timeout, except that an idle loop (nothing referenced: authloop
 * has nothing scheduled) says 0, "don't block"; here it means "no deadline":
 * only the fd can wake us. Reporting ready would starve GTK's redraws. */
static int timeout_of(uv_loop_t *loop) {
  if (!uv_loop_alive(loop))
    return -1;
  uv_update_time(loop);
  return uv_backend_timeout(loop);
}

static gboolean prepare(GSource *s, gint *timeout) {
  *timeout = timeout_of(((uv_source *)s)->loop);
  return *timeout == 0;
}

static gboolean check(GSource *s) {
  uv_source *u = (uv_source *)s;
  return (g_source_query_unix_fd(s, u->fd_tag) & G_IO_IN) != 0 || timeout_of(u->loop) == 0;
}

static gboolean dispatch(GSource *s, GSourceFunc cb, gpointer data) {
  uv_source *u = (uv_source *)s;
  (void)cb;
  (void)data;
  uv_run(u->loop, UV_RUN_NOWAIT);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs funcs = {prepare, check, dispatch, NULL, NULL, NULL};

GSource *authloop_glib_attach(authloop_ctx *ctx, GMainContext *context) {
  uv_loop_t *loop = authloop_ctx_loop(ctx);
  uv_source *u;
  int fd;
  if (!loop || (fd = uv_backend_fd(loop)) < 0)
    return NULL;
  u = (uv_source *)g_source_new(&funcs, sizeof(uv_source));
  u->loop = loop;
  u->fd_tag = g_source_add_unix_fd(&u->source, fd, G_IO_IN);
  g_source_set_name(&u->source, "authloop");
  g_source_attach(&u->source, context);
  return &u->source;
}
