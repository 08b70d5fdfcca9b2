/* SPDX-License-Identifier: MIT */
/* The ctx: options, log lines and posts through the deferred-call queue,
 * driving from a foreign loop, and the asynchronous close. */
#include "ctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_UA          "authloop/" AUTHLOOP__VERSION_STRING
#define DEFAULT_TIMEOUT_MS  30000u
#define DEFAULT_BODY_BYTES  (1024u * 1024u)
#define MAX_BODY_BYTES      (256u * 1024u * 1024u) /* the ceiling "no limit" means */
#define DEFAULT_CONNECTIONS 8u

/* ---- log lines: queued, delivered from the loop ------------------------------------- */

typedef struct {
  authloop__deferred d;
  authloop_ctx *ctx;
  authloop_log_level level;
  char line[];
} log_entry;

static void run_log(authloop__deferred *d) {
  log_entry *e = AUTHLOOP__CONTAINER_OF(d, log_entry, d);
  authloop_ctx *ctx = e->ctx;
  if (ctx->log_cb)
    ctx->log_cb(e->level, e->line, ctx->log_userdata);
  free(e);
}

/* The logger every layer writes to: the line is copied and queued, so the
 * application's log callback runs from the loop like every other callback
 * and may call anything. A line that cannot be allocated is dropped. */
static void write_log(void *ud, authloop_log_level level, const char *line) {
  authloop_ctx *ctx = ud;
  size_t n = strlen(line) + 1;
  log_entry *e = malloc(sizeof(*e) + n);
  if (!e)
    return;
  e->d.run = run_log;
  e->ctx = ctx;
  e->level = level;
  memcpy(e->line, line, n);
  authloop__defer(&ctx->dispatch, &e->d);
}

/* ---- authloop_ctx_post: the one entry point for other threads ------------------ */

typedef struct {
  authloop__deferred d;
  authloop_ctx *ctx;
  authloop_post_cb fn;
  void *userdata;
} post_entry;

/* A post still queued when the ctx closes runs with ECANCELED. */
static void run_post(authloop__deferred *d) {
  post_entry *p = AUTHLOOP__CONTAINER_OF(d, post_entry, d);
  p->fn(p->ctx, p->ctx->closing ? AUTHLOOP_ECANCELED : 0, p->userdata);
  free(p);
}

int authloop_ctx_post(authloop_ctx *ctx, authloop_post_cb fn, void *userdata) {
  post_entry *p;
  int rc;
  if (!ctx || !fn)
    return AUTHLOOP_EINVAL;
  if (!(p = malloc(sizeof(*p))))
    return AUTHLOOP_ENOMEM;
  p->d.run = run_post;
  p->ctx = ctx;
  p->fn = fn;
  p->userdata = userdata;
  if ((rc = authloop__defer_from_any_thread(&ctx->dispatch, &p->d)) != 0)
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
  if (!ctx)
    return -1;
  if (authloop__dispatch_pending(&ctx->dispatch) || authloop__timer_pending(&ctx->timer))
    return 0;
  if (!uv_loop_alive(ctx->loop))
    return -1; /* nothing scheduled: wait for the fd only (libuv would say 0) */
  uv_update_time(ctx->loop);
  return uv_backend_timeout(ctx->loop);
}

/* One non-blocking turn of the loop. The ctx keeps its loop alive until it
 * is closed (its post handle is referenced), so the turn always polls and
 * services whatever made the fd readable. If the close finishes during the
 * turn, the ctx is gone when uv_run() returns: nothing of it is touched, and
 * 0 tells the host loop so. */
int authloop_ctx_process(authloop_ctx *ctx) {
  uv_loop_t *loop;
  int gone = 0, *outer;
  if (!ctx)
    return 0;
  AUTHLOOP__LOOP_THREAD_ONLY(ctx);
  loop = ctx->loop;
  outer = ctx->gone;
  ctx->gone = &gone;
  uv_run(loop, UV_RUN_NOWAIT);
  if (gone) {
    if (outer)
      *outer = 1;
    return 0; /* closed: the host loop stops watching it */
  }
  ctx->gone = outer;
  return 1;
}

/* ---- life and death ---------------------------------------------------------------- */

static void ctx_free(authloop_ctx *ctx) {
  if (ctx->graveyard_free) /* the session layer's, set when it made one */
    ctx->graveyard_free(ctx);
  if (ctx->store.writers.next) /* registered: it is idle by now */
    authloop__store_writer_fini(&ctx->store);
  authloop__rng_free(&ctx->rng);
  free(ctx->user_agent);
  free(ctx);
}

/* A CA bundle that exists must be a regular file: libcurl reads it during the
 * first handshake, on the loop thread, and a FIFO there would block it. One
 * that does not exist (yet) fails each request with AUTHLOOP_ETLS. */
static int ca_file_ok(const char *path) {
  struct stat st;
  return stat(path, &st) != 0 ? errno == ENOENT : S_ISREG(st.st_mode);
}

int authloop_ctx_new(uv_loop_t *loop, const authloop_ctx_options *caller, authloop_ctx **out) {
  authloop_ctx_options copy, *opts = &copy;
  authloop__transport_options to = {0};
  authloop_ctx *ctx;
  int rc;
  if (!out)
    return AUTHLOOP_EINVAL;
  *out = NULL;
  if (!caller)
    memset(&copy, 0, sizeof(copy));
  else if ((rc = AUTHLOOP__OPTIONS_COPY(&copy, caller)) != 0)
    return rc;
  if (!loop && !(loop = uv_default_loop()))
    return AUTHLOOP_ENOMEM;
  if ((opts->ca_file && (!*opts->ca_file || !ca_file_ok(opts->ca_file))) ||
      (unsigned)opts->log_level > AUTHLOOP_LOG_DEBUG ||
      (opts->user_agent && !authloop__text_ok(opts->user_agent)))
    return AUTHLOOP_EINVAL;
  if (!(ctx = calloc(1, sizeof(*ctx))))
    return AUTHLOOP_ENOMEM;
  ctx->loop = loop;
  ctx->loop_thread = uv_thread_self();
  authloop__list_init(&ctx->clients);
  authloop__list_init(&ctx->origins);
  authloop__list_init(&ctx->shared);
  ctx->online_app = 1;
  ctx->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
  ctx->log_cb = opts->log_cb;
  ctx->log_userdata = opts->log_userdata;
  ctx->logger.write = write_log;
  ctx->logger.ud = ctx;
  ctx->logger.level = opts->log_level;
  ctx->logger.enabled = opts->log_cb != NULL;
  if (!(ctx->user_agent = strdup(opts->user_agent ? opts->user_agent : DEFAULT_UA))) {
    free(ctx);
    return AUTHLOOP_ENOMEM;
  }
  if ((rc = authloop__rng_init(&ctx->rng)) != 0) {
    free(ctx->user_agent);
    free(ctx);
    return rc;
  }
  to.ca_file = opts->ca_file;
  to.user_agent = ctx->user_agent;
  to.timeout_ms = ctx->timeout_ms;
  to.max_host_connections =
      opts->max_host_connections ? opts->max_host_connections : DEFAULT_CONNECTIONS;
  to.max_body_bytes = !opts->max_body_bytes                   ? DEFAULT_BODY_BYTES
                      : opts->max_body_bytes > MAX_BODY_BYTES ? MAX_BODY_BYTES
                                                              : opts->max_body_bytes;
  to.log = &ctx->logger;
  /* what can fail comes before the first uv handle: a failure leaves the loop as found */
  if ((rc = authloop__transport_init(&ctx->transport, loop, &to)) != 0) {
    ctx_free(ctx);
    return rc;
  }
  if ((rc = authloop__dispatch_init(&ctx->dispatch, loop)) != 0) {
    authloop__transport_discard(&ctx->transport);
    ctx_free(ctx);
    return rc;
  }
  authloop__transport_attach(&ctx->transport);
  authloop__timer_init(&ctx->timer, loop); /* falls back to a uv_timer, never fails */
  /* a write waits for another process's lock at most a request timeout */
  authloop__store_writer_init(&ctx->store, loop, &ctx->logger, &ctx->timer, ctx->timeout_ms);
  *out = ctx;
  return 0;
}

uv_loop_t *authloop_ctx_loop(const authloop_ctx *ctx) { return ctx ? ctx->loop : NULL; }

/* The last step: every handle is closed. */
static void part_closed(void *ud) {
  authloop_ctx *ctx = ud;
  if (--ctx->parts_open)
    return;
  if (ctx->gone)
    *ctx->gone = 1;
  if (ctx->close_cb)
    ctx->close_cb(ctx, ctx->close_userdata);
  ctx_free(ctx);
}

static void on_drained(void *ud);

/* The last write or transfer ended: look again from the loop's top level,
 * never from inside the store's or the transport's own callbacks. */
static void on_store_idle(void *ud) {
  authloop_ctx *ctx = ud;
  ctx->store.idle = NULL;
  authloop__dispatch_on_drained(&ctx->dispatch, on_drained, ctx);
}

static void on_transport_idle(void *ud) {
  authloop_ctx *ctx = ud;
  ctx->transport.idle = NULL;
  authloop__dispatch_on_drained(&ctx->dispatch, on_drained, ctx);
}

/* The queue ran empty while closing: wait for the logouts still on their
 * way (their events go to their clients, which are still there), free the
 * clients, wait for the disk, then close the handles. Called again whenever
 * the queue drains, until it has done all of that. */
static void on_drained(void *ud) {
  authloop_ctx *ctx = ud;
  if (ctx->parts_closing)
    return;
  if (!ctx->clients_gone) {
    if (authloop__transport_busy(&ctx->transport)) { /* logouts on their way */
      ctx->transport.idle = on_transport_idle;
      ctx->transport.idle_ud = ctx;
      return;
    }
    ctx->clients_gone = 1;
    ctx->close_clients(ctx);
  }
  if (authloop__dispatch_pending(&ctx->dispatch))
    return;                                        /* what freeing the clients queued runs first */
  if (authloop__transport_busy(&ctx->transport)) { /* logouts on their way */
    ctx->transport.idle = on_transport_idle;
    ctx->transport.idle_ud = ctx;
    return;
  }
  if (authloop__store_busy(&ctx->store)) {
    ctx->store.idle = on_store_idle;
    ctx->store.idle_ud = ctx;
    return;
  }
  ctx->parts_closing = 1;
  ctx->parts_open = 3;
  authloop__timer_close(&ctx->timer, part_closed, ctx);
  authloop__transport_close(&ctx->transport, part_closed, ctx);
  authloop__dispatch_close(&ctx->dispatch, part_closed, ctx);
}

void authloop__ctx_begin_close(authloop_ctx *ctx, void (*close_clients)(authloop_ctx *ctx),
                               authloop_close_cb cb, void *userdata) {
  ctx->closing = 1;
  ctx->close_clients = close_clients;
  ctx->close_cb = cb;
  ctx->close_userdata = userdata;
  authloop__dispatch_close_inbox(&ctx->dispatch); /* what was posted runs, cancelled */
  authloop__dispatch_on_drained(&ctx->dispatch, on_drained, ctx);
}
