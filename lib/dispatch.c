/* SPDX-License-Identifier: MIT */
/* The deferred-call queue (see dispatch.h). */
#include "dispatch.h"

static void on_idle(uv_idle_t *h) { authloop__dispatch_run(h->data); }

static void wake(authloop__dispatch *q) {
  if (!uv_is_active((uv_handle_t *)&q->idle) && !uv_is_closing((uv_handle_t *)&q->idle))
    uv_idle_start(&q->idle, on_idle);
}
static void on_check(uv_check_t *h) {
  authloop__dispatch *q = h->data;
  if (!authloop__list_empty(&q->queue))
    authloop__dispatch_run(q);
}

static void take_inbox(authloop__dispatch *q) {
  authloop__link moved;
  authloop__link *l;
  authloop__list_init(&moved);
  uv_mutex_lock(&q->mutex);
  authloop__list_splice(&moved, &q->inbox);
  uv_mutex_unlock(&q->mutex);
  for (l = moved.next; l != &moved; l = l->next)
    AUTHLOOP__CONTAINER_OF(l, authloop__deferred, link)->seq = ++q->seq;
  authloop__list_splice(&q->queue, &moved);
}

/* Posted entries run in this same loop iteration, in the check phase. */
static void on_async(uv_async_t *h) {
  authloop__dispatch *q = h->data;
  take_inbox(q);
  if (!authloop__list_empty(&q->queue))
    wake(q);
}

void authloop__defer(authloop__dispatch *q, authloop__deferred *d) {
  d->seq = ++q->seq;
  authloop__list_push(&q->queue, &d->link);
  wake(q);
}

int authloop__defer_from_any_thread(authloop__dispatch *q, authloop__deferred *d) {
  int rc = 0;
  uv_mutex_lock(&q->mutex);
  if (q->inbox_closed) {
    rc = AUTHLOOP_ECLOSING;
  } else {
    authloop__list_push(&q->inbox, &d->link);
    /* under the lock: the handle cannot be closing while we wake it */
    uv_async_send(&q->async);
  }
  uv_mutex_unlock(&q->mutex);
  return rc;
}

void authloop__dispatch_close_inbox(authloop__dispatch *q) {
  uv_mutex_lock(&q->mutex);
  q->inbox_closed = 1;
  uv_mutex_unlock(&q->mutex);
  take_inbox(q); /* nobody adds to it any more */
  if (!authloop__list_empty(&q->queue))
    wake(q);
}

int authloop__dispatch_pending(const authloop__dispatch *q) {
  return !authloop__list_empty(&q->queue);
}

void authloop__dispatch_run(authloop__dispatch *q) {
  uint64_t last = q->seq;
  if (q->running)
    return;
  q->running = 1;
  while (!authloop__list_empty(&q->queue)) {
    authloop__deferred *d = AUTHLOOP__CONTAINER_OF(q->queue.next, authloop__deferred, link);
    if (d->seq > last)
      break; /* queued by what ran: next turn */
    authloop__list_remove(&d->link);
    d->run(d);
  }
  q->running = 0;
  if (!authloop__list_empty(&q->queue))
    return;
  uv_idle_stop(&q->idle);
  if (q->drained)
    q->drained(q->drained_ud);
}

void authloop__dispatch_on_drained(authloop__dispatch *q, void (*drained)(void *ud), void *ud) {
  q->drained = drained;
  q->drained_ud = ud;
  if (authloop__list_empty(&q->queue))
    wake(q); /* one turn, so that drained runs from the loop, never from the caller */
}

int authloop__dispatch_init(authloop__dispatch *q, uv_loop_t *loop) {
  q->loop = loop;
  authloop__list_init(&q->queue);
  authloop__list_init(&q->inbox);
  if (uv_mutex_init(&q->mutex) != 0)
    return AUTHLOOP_ENOMEM;
  if (uv_async_init(loop, &q->async, on_async) != 0) {
    uv_mutex_destroy(&q->mutex);
    return AUTHLOOP_ENOMEM;
  }
  /* uv_idle_init and uv_check_init cannot fail on a valid loop */
  uv_idle_init(loop, &q->idle);
  uv_check_init(loop, &q->check);
  q->idle.data = q->check.data = q->async.data = q;
  q->handles = 3;
  uv_check_start(&q->check, on_check);
  uv_unref((uv_handle_t *)&q->check);
  /* the async handle stays referenced: a ctx keeps its loop alive until it is
   * closed, so that a post from another thread always finds a running loop */
  return 0;
}

static void handle_closed(uv_handle_t *h) {
  authloop__dispatch *q = h->data;
  if (--q->handles)
    return;
  /* what was queued while the handles closed (a last log line) still runs */
  while (!authloop__list_empty(&q->queue)) {
    authloop__deferred *d = AUTHLOOP__CONTAINER_OF(q->queue.next, authloop__deferred, link);
    authloop__list_remove(&d->link);
    d->run(d);
  }
  uv_mutex_destroy(&q->mutex);
  q->closed(q->closed_ud);
}

void authloop__dispatch_close(authloop__dispatch *q, void (*closed)(void *ud), void *ud) {
  q->closed = closed;
  q->closed_ud = ud;
  q->drained = NULL;
  uv_close((uv_handle_t *)&q->idle, handle_closed);
  uv_close((uv_handle_t *)&q->check, handle_closed);
  uv_close((uv_handle_t *)&q->async, handle_closed);
}
