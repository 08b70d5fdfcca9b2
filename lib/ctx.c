/* The ctx: options, logging, and the asynchronous close. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTHLOOP__DEFAULT_UA "authloop/" AUTHLOOP__VERSION_STRING

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

static void handle_closed(uv_handle_t *h) { authloop__handle_closed(h->data); }

/* ---- authloop_ctx_post: the one entry point for other threads ------------------ */

typedef struct {
  authloop__link link;
  authloop_post_cb fn;
  void *userdata;
} post_item;

/* Runs what was posted so far; with ECANCELED the queue also closes for good. */
static void run_posts(authloop_ctx *ctx, int status) {
  authloop__link batch;
  authloop__list_init(&batch);
  uv_mutex_lock(&ctx->post_mutex);
  if (!authloop__list_empty(&ctx->posts)) { /* move the whole queue to batch */
    batch.next = ctx->posts.next;
    batch.prev = ctx->posts.prev;
    batch.next->prev = batch.prev->next = &batch;
    authloop__list_init(&ctx->posts);
  }
  if (status)
    ctx->posts_closed = 1;
  uv_mutex_unlock(&ctx->post_mutex);
  while (!authloop__list_empty(&batch)) {
    post_item *p = AUTHLOOP__CONTAINER_OF(batch.next, post_item, link);
    authloop__list_remove(&p->link);
    p->fn(ctx, status, p->userdata);
    free(p);
  }
}

static void on_posts(uv_async_t *a) { run_posts(a->data, 0); }

int authloop_ctx_post(authloop_ctx *ctx, authloop_post_cb fn, void *userdata) {
  post_item *p;
  int rc = 0;
  if (!ctx || !fn)
    return AUTHLOOP_EINVAL;
  if (!(p = malloc(sizeof(*p))))
    return AUTHLOOP_ENOMEM;
  p->fn = fn;
  p->userdata = userdata;
  uv_mutex_lock(&ctx->post_mutex);
  if (ctx->posts_closed) {
    rc = AUTHLOOP_ECLOSING;
  } else {
    authloop__list_push(&ctx->posts, &p->link);
    /* under the lock: the handle cannot be closing while we wake it */
    uv_async_send(&ctx->post_async);
  }
  uv_mutex_unlock(&ctx->post_mutex);
  if (rc)
    free(p);
  return rc;
}

void authloop__check_loop_thread(const authloop_ctx *ctx, const char *func) {
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &ctx->loop_thread)) {
    fprintf(stderr,
            "authloop: %s() called from a thread that is not the loop's; "
            "use authloop_ctx_post()\n",
            func);
    abort();
  }
}

/* ---- driving from another loop -------------------------------------------------- */

int authloop_ctx_fd(const authloop_ctx *ctx) { return ctx ? uv_backend_fd(ctx->loop) : -1; }

int authloop_ctx_timeout_ms(authloop_ctx *ctx) {
  if (!ctx || !uv_loop_alive(ctx->loop))
    return -1; /* nothing scheduled: wait for the fd only (libuv would say 0) */
  uv_update_time(ctx->loop);
  return uv_backend_timeout(ctx->loop);
}

int authloop_ctx_process(authloop_ctx *ctx) { return ctx ? uv_run(ctx->loop, UV_RUN_NOWAIT) : 0; }

static void ctx_free(authloop_ctx *ctx) {
  uv_mutex_destroy(&ctx->post_mutex);
  authloop__rng_free(&ctx->rng);
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
  authloop__list_init(&ctx->stores);
  authloop__list_init(&ctx->posts);
  ctx->online_app = 1;
  ctx->loop_thread = uv_thread_self();
  ctx->ca_file = dup_or_null(opts->ca_file, &failed);
  ctx->user_agent =
      dup_or_null(opts->user_agent ? opts->user_agent : AUTHLOOP__DEFAULT_UA, &failed);
  ctx->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 30000;
  ctx->max_body_bytes = opts->max_body_bytes ? opts->max_body_bytes : 1024 * 1024;
  ctx->max_host_connections = opts->max_host_connections ? opts->max_host_connections : 8;
  ctx->log_cb = opts->log_cb;
  ctx->log_level = opts->log_level;
  ctx->log_userdata = opts->log_userdata;
  if (failed || uv_mutex_init(&ctx->post_mutex) != 0) {
    free(ctx->ca_file);
    free(ctx->user_agent);
    free(ctx);
    return AUTHLOOP_ENOMEM;
  }
  if (authloop__rng_init(&ctx->rng) != 0) {
    uv_mutex_destroy(&ctx->post_mutex);
    free(ctx->ca_file);
    free(ctx->user_agent);
    free(ctx);
    return AUTHLOOP_ENOMEM;
  }
  if ((rc = authloop__transport_init(ctx)) != 0) {
    ctx_free(ctx);
    return rc;
  }
  authloop__sched_init(ctx);
  uv_idle_init(loop, &ctx->dispatcher);
  ctx->dispatcher.data = ctx;
  ctx->open_handles++;
  uv_async_init(loop, &ctx->post_async, on_posts);
  ctx->post_async.data = ctx;
  uv_unref((uv_handle_t *)&ctx->post_async); /* an idle ctx does not keep the loop alive */
  ctx->open_handles++;
  *out = ctx;
  return 0;
}

uv_loop_t *authloop_ctx_loop(const authloop_ctx *ctx) { return ctx ? ctx->loop : NULL; }

int authloop_ctx_close(authloop_ctx *ctx, authloop_close_cb cb, void *userdata) {
  authloop__link *l;
  if (!ctx)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(ctx);
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  ctx->closing = 1;
  uv_mutex_lock(&ctx->post_mutex);
  ctx->posts_closed = 1; /* what was posted still runs, once */
  uv_mutex_unlock(&ctx->post_mutex);
  ctx->close_cb = cb;
  ctx->close_userdata = userdata;
  authloop__req_cancel_all(ctx);
  for (l = ctx->clients.next; l != &ctx->clients; l = l->next)
    authloop__session_abort(AUTHLOOP__CONTAINER_OF(l, authloop_client, link), 1,
                            AUTHLOOP_ECANCELED);
  /* the dispatcher delivers the cancellations, then tears the ctx down */
  uv_idle_start(&ctx->dispatcher, on_dispatch);
  return 0;
}

/* Every event has been delivered: free the clients, let the session files
 * they wrote reach the disk, then close the handles. */
void authloop__ctx_teardown(authloop_ctx *ctx) {
  if (!ctx->finalizing) {
    ctx->finalizing = 1;
    while (!authloop__list_empty(&ctx->clients))
      authloop__client_destroy(AUTHLOOP__CONTAINER_OF(ctx->clients.next, authloop_client, link));
  }
  if (authloop__store_busy(ctx) || ctx->handles_closing)
    return; /* store.c calls again when its last write is done */
  ctx->handles_closing = 1;
  run_posts(ctx, AUTHLOOP_ECANCELED); /* and no more come */
  uv_close((uv_handle_t *)&ctx->post_async, handle_closed);
  authloop__sched_close(ctx);
  authloop__transport_close(ctx);
}

void authloop__handle_closed(authloop_ctx *ctx) {
  if (--ctx->open_handles == 0 && ctx->handles_closing)
    authloop__ctx_finalize(ctx);
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

/* Offline by our own count holds AUTHLOOP__OFFLINE_HOLD_MS after the last
 * network failure; then the next request is let through as a probe. */
int authloop__ctx_online(const authloop_ctx *ctx) {
  return ctx->online_app &&
         (ctx->net_failures < AUTHLOOP__OFFLINE_AFTER || authloop__boot_ms() >= ctx->offline_until);
}

int authloop_ctx_is_online(const authloop_ctx *ctx) { return ctx && authloop__ctx_online(ctx); }

int authloop_ctx_set_online(authloop_ctx *ctx, int online) {
  int was;
  if (!ctx)
    return AUTHLOOP_EINVAL;
  AUTHLOOP__LOOP_THREAD_ONLY(ctx);
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  was = authloop__ctx_online(ctx);
  ctx->online_app = online != 0;
  if (online)
    ctx->net_failures = 0; /* the application knows better than our count */
  authloop__log(ctx, AUTHLOOP_LOG_INFO, "network marked %s by the application",
                online ? "online" : "offline");
  if (!was && authloop__ctx_online(ctx))
    authloop__ctx_wake_all(ctx);
  return 0;
}

void authloop__ctx_note_result(authloop_ctx *ctx, int error) {
  int was = authloop__ctx_online(ctx);
  if (error == AUTHLOOP_ENETWORK || error == AUTHLOOP_ETIMEDOUT) {
    if (ctx->net_failures < AUTHLOOP__OFFLINE_AFTER &&
        ++ctx->net_failures == AUTHLOOP__OFFLINE_AFTER)
      authloop__log(ctx, AUTHLOOP_LOG_WARN, "%u network failures in a row: offline",
                    ctx->net_failures);
    if (ctx->net_failures >= AUTHLOOP__OFFLINE_AFTER)
      ctx->offline_until = authloop__boot_ms() + AUTHLOOP__OFFLINE_HOLD_MS;
  } else if (error != AUTHLOOP_ECANCELED) {
    ctx->net_failures = 0; /* the server answered */
    if (!was && authloop__ctx_online(ctx)) {
      authloop__log(ctx, AUTHLOOP_LOG_INFO, "the server answers again: online");
      authloop__ctx_wake_all(ctx);
    }
  }
}
