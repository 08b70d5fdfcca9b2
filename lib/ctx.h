/* SPDX-License-Identifier: MIT */
/* The ctx: the machinery one loop's sessions share. It owns the transport,
 * the timer, the deferred-call queue, the session-file writer and the random
 * number generator, borrows the caller's uv loop, and runs the close sequence.
 * It knows no client: the session engine keeps its own state here (the
 * fields marked "engine") and hands the close sequence a function pointer. */
#ifndef AUTHLOOP_CTX_H
#define AUTHLOOP_CTX_H

#include "dispatch.h"
#include "store.h"
#include "timer.h"
#include "transport.h"
#include "util.h"

#include <uv.h>

struct authloop_ctx {
  uv_loop_t *loop;
  uv_thread_t loop_thread;
  authloop__transport transport;
  authloop__timer timer;
  authloop__dispatch dispatch;
  authloop__store_writer store;
  authloop__rng rng;
  authloop__logger logger;
  /* options */
  char *user_agent;
  unsigned timeout_ms;
  authloop_log_cb log_cb;
  void *log_userdata;
  /* engine (lib/client.c, lib/session.c): its clients and network health */
  authloop__link clients;
  authloop__link origins; /* authloop__origin: health per scheme, host and port */
  authloop__link shared;  /* authloop__shared: what a dialect keeps per issuer, for all clients */
  int online_app;         /* what the application said (authloop_ctx_set_online) */
  void *graveyard;        /* session strings retired this turn (lib/state.c) */
  void (*graveyard_free)(authloop_ctx *ctx);
  /* close */
  int closing;
  int clients_gone, parts_closing;
  unsigned parts_open; /* transport, timer, dispatch */
  void (*close_clients)(authloop_ctx *ctx);
  authloop_close_cb close_cb;
  void *close_userdata;
  int *gone; /* set by the last step of the close, for authloop_ctx_process() */
};

/* The close sequence, after the engine has cancelled what was in flight (but
 * lingering transfers: logouts): the inbox closes; when every queued call has
 * run and the lingering transfers have ended (their events queued and run),
 * close_clients(ctx) frees the clients; when the session files are written,
 * the handles close; then the close callback runs and the ctx is freed. */
void authloop__ctx_begin_close(authloop_ctx *ctx, void (*close_clients)(authloop_ctx *ctx),
                               authloop_close_cb cb, void *userdata);

/* Debug builds: abort when a loop-thread-only function is called elsewhere. */
#ifdef NDEBUG
#define AUTHLOOP__LOOP_THREAD_ONLY(ctx) ((void)0)
#else
#define AUTHLOOP__LOOP_THREAD_ONLY(ctx) authloop__check_loop_thread((ctx), __func__)
#endif
void authloop__check_loop_thread(const authloop_ctx *ctx, const char *func);

#define authloop__log(ctx, level, ...) authloop__logf(&(ctx)->logger, level, __VA_ARGS__)

#endif
