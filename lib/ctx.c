/* The ctx: options, logging, and the asynchronous close. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTHLOOP__STR2(x) #x
#define AUTHLOOP__STR(x)  AUTHLOOP__STR2(x)
#define AUTHLOOP__DEFAULT_UA                                                                       \
  "authloop/" AUTHLOOP__STR(AUTHLOOP_VERSION_MAJOR) "." AUTHLOOP__STR(                             \
      AUTHLOOP_VERSION_MINOR) "." AUTHLOOP__STR(AUTHLOOP_VERSION_PATCH)

void authloop__log(const authloop_ctx *ctx, authloop_log_level level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  if (!ctx->log_cb || level > ctx->log_level)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  ctx->log_cb(level, line, ctx->log_userdata);
}

static void on_dispatch(uv_idle_t *h) { authloop__dispatch(h->data); }

static void ctx_free(authloop_ctx *ctx) {
  free(ctx->ca_file);
  free(ctx->user_agent);
  free(ctx);
}

static char *dup_or_null(const char *s, int *failed) {
  char *p;
  if (!s)
    return NULL;
  p = strdup(s);
  if (!p)
    *failed = 1;
  return p;
}

int authloop_ctx_new(uv_loop_t *loop, const authloop_ctx_options *opts, authloop_ctx **out) {
  static const authloop_ctx_options defaults;
  authloop_ctx *ctx;
  int failed = 0, rc;
  if (!out)
    return AUTHLOOP_EINVAL;
  *out = NULL;
  if (!opts)
    opts = &defaults;
  if (!loop && !(loop = uv_default_loop()))
    return AUTHLOOP_ENOMEM;
  if ((opts->ca_file && !*opts->ca_file) || opts->log_level > AUTHLOOP_LOG_DEBUG)
    return AUTHLOOP_EINVAL;
  ctx = calloc(1, sizeof(*ctx));
  if (!ctx)
    return AUTHLOOP_ENOMEM;
  ctx->loop = loop;
  authloop__list_init(&ctx->reqs);
  authloop__list_init(&ctx->sockets);
  authloop__list_init(&ctx->clients);
  authloop__list_init(&ctx->events);
  ctx->ca_file = dup_or_null(opts->ca_file, &failed);
  ctx->user_agent =
      dup_or_null(opts->user_agent ? opts->user_agent : AUTHLOOP__DEFAULT_UA, &failed);
  ctx->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 30000;
  ctx->max_body_bytes = opts->max_body_bytes ? opts->max_body_bytes : 1024 * 1024;
  ctx->max_host_connections = opts->max_host_connections ? opts->max_host_connections : 8;
  ctx->log_cb = opts->log_cb;
  ctx->log_level = opts->log_level;
  ctx->log_userdata = opts->log_userdata;
  if (failed) {
    ctx_free(ctx);
    return AUTHLOOP_ENOMEM;
  }
  if ((rc = authloop__transport_init(ctx)) != 0) {
    ctx_free(ctx);
    return rc;
  }
  uv_idle_init(loop, &ctx->dispatcher);
  ctx->dispatcher.data = ctx;
  ctx->open_handles++;
  *out = ctx;
  return 0;
}

uv_loop_t *authloop_ctx_loop(const authloop_ctx *ctx) { return ctx ? ctx->loop : NULL; }

int authloop_ctx_close(authloop_ctx *ctx, authloop_close_cb cb, void *userdata) {
  if (!ctx)
    return AUTHLOOP_EINVAL;
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  ctx->closing = 1;
  ctx->close_cb = cb;
  ctx->close_userdata = userdata;
  authloop__req_cancel_all(ctx);
  /* the dispatcher delivers the cancellations, then tears the ctx down */
  uv_idle_start(&ctx->dispatcher, on_dispatch);
  return 0;
}

/* Every event has been delivered: free the clients and close the handles. */
void authloop__ctx_teardown(authloop_ctx *ctx) {
  ctx->finalizing = 1;
  while (!authloop__list_empty(&ctx->clients))
    authloop__client_destroy(AUTHLOOP__CONTAINER_OF(ctx->clients.next, authloop_client, link));
  authloop__transport_close(ctx);
}

/* The last handle has closed. */
void authloop__ctx_finalize(authloop_ctx *ctx) {
  if (ctx->close_cb)
    ctx->close_cb(ctx, ctx->close_userdata);
  ctx_free(ctx);
}

void authloop__dispatch_wake(authloop_ctx *ctx) {
  if (!uv_is_active((uv_handle_t *)&ctx->dispatcher))
    uv_idle_start(&ctx->dispatcher, on_dispatch);
}
