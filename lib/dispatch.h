/* SPDX-License-Identifier: MIT */
/* The one way into application code: a queue of deferred calls per ctx.
 * Events, done and response callbacks, pre-auth results, posts from other
 * threads and log lines are all entries here, run from the loop at the top
 * level (never inside an API call, a transfer's completion or a timer), in
 * the order they were queued. An entry holds whatever reference keeps its
 * object alive until it has run; its run function does the call and frees
 * the entry.
 *
 * Entries queued while the queue runs wait for the next turn, so a callback
 * that always queues cannot starve I/O. The queue runs in libuv's check phase
 * (right after the I/O that queued an entry, in the same loop iteration) and
 * from an idle handle that keeps the loop from blocking while entries wait. */
#ifndef AUTHLOOP_DISPATCH_H
#define AUTHLOOP_DISPATCH_H

#include "util.h"

#include <uv.h>

typedef struct authloop__deferred authloop__deferred;
struct authloop__deferred {
  authloop__link link;
  uint64_t seq;
  void (*run)(authloop__deferred *d); /* makes the call, then frees d */
};

typedef struct {
  uv_loop_t *loop;
  uv_idle_t idle;   /* active while entries wait: the loop must not block */
  uv_check_t check; /* always active, never keeps the loop alive */
  uv_async_t async; /* another thread posted; keeps the loop alive until the ctx closes */
  authloop__link queue;
  uint64_t seq;
  int running;
  /* the inbox: the only state other threads touch, under mutex */
  uv_mutex_t mutex;
  authloop__link inbox;
  int inbox_closed;
  /* the queue ran empty (the ctx waits for this when it closes) */
  void (*drained)(void *ud);
  void *drained_ud;
  unsigned handles;
  void (*closed)(void *ud);
  void *closed_ud;
} authloop__dispatch;

int authloop__dispatch_init(authloop__dispatch *q, uv_loop_t *loop);
/* Queues d (loop thread). */
void authloop__defer(authloop__dispatch *q, authloop__deferred *d);
/* Queues d from any thread; AUTHLOOP_ECLOSING once the inbox is closed. */
int authloop__defer_from_any_thread(authloop__dispatch *q, authloop__deferred *d);
/* Closes the inbox: later posts fail; what is in it moves to the queue. */
void authloop__dispatch_close_inbox(authloop__dispatch *q);
int authloop__dispatch_pending(const authloop__dispatch *q);
/* Runs what is queued now (the entries queued before this call). */
void authloop__dispatch_run(authloop__dispatch *q);
/* Calls drained(ud) every time the queue runs empty from now on. */
void authloop__dispatch_on_drained(authloop__dispatch *q, void (*drained)(void *ud), void *ud);
/* Closes the handles; entries queued meanwhile run before closed(ud). */
void authloop__dispatch_close(authloop__dispatch *q, void (*closed)(void *ud), void *ud);

#endif
