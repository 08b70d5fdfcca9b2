/* SPDX-License-Identifier: MIT */
/* One timer per ctx for every deadline of every session: a min-heap of
 * entries on one timerfd (CLOCK_BOOTTIME, so a deadline that passed during
 * suspend fires on wake), or a uv_timer where there is no timerfd. When a
 * deadline is reached the timer calls the entry's function pointer; it knows
 * nothing of what the entry belongs to. With nothing scheduled the timerfd is
 * disarmed and its handle does not keep the loop alive: an idle ctx never
 * wakes its loop. */
#ifndef AUTHLOOP_TIMER_H
#define AUTHLOOP_TIMER_H

#include "policy.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define AUTHLOOP__NOT_SCHEDULED SIZE_MAX

/* Milliseconds of a clock that counts suspended time, plus 2^40 (about 35
 * years) so that times converted from the wall clock never underflow. */
uint64_t authloop__boot_ms(void);
/* The wall clock, ms since the epoch. */
uint64_t authloop__wall_ms(void);
/* The offset authloop__boot_ms() adds to the kernel's clock. */
#define AUTHLOOP__BOOT_OFFSET_MS (1ull << 40)

typedef struct authloop__timer_entry authloop__timer_entry;
/* The deadline was reached; the entry is no longer scheduled. */
typedef void (*authloop__timer_fn)(authloop__timer_entry *e, uint64_t now);

struct authloop__timer_entry {
  uint64_t at;
  size_t index; /* in the heap, or AUTHLOOP__NOT_SCHEDULED */
  authloop__timer_fn fn;
  int reserved; /* it has room promised (authloop__timer_reserve) */
};

typedef struct {
  authloop__timer_entry **items; /* min-heap on at */
  size_t len, cap;
  size_t reserved;   /* entries promised room (authloop__timer_reserve) */
  size_t unreserved; /* entries without a promise in the heap: they never take promised room */
  uint64_t armed_at; /* what the kernel timer is set for; AUTHLOOP__NEVER: disarmed */
  int fd;            /* timerfd, or -1: the uv_timer is used */
  int failed;        /* the kernel timer could not be set: fall back to the uv_timer */
  uv_poll_t poll;
  uv_timer_t timer;
  uv_idle_t idle;       /* a change waits for the first of these two: */
  uv_prepare_t prepare; /* the kernel timer is set once a turn */
  unsigned handles;     /* open uv handles */
  void (*closed)(void *ud);
  void *closed_ud;
} authloop__timer;

static inline void authloop__timer_entry_init(authloop__timer_entry *e, authloop__timer_fn fn) {
  e->at = AUTHLOOP__NEVER;
  e->index = AUTHLOOP__NOT_SCHEDULED;
  e->fn = fn;
  e->reserved = 0;
}

/* Makes the handles; without a timerfd, a uv_timer does the work. */
void authloop__timer_init(authloop__timer *t, uv_loop_t *loop);
/* Schedules e at `at` (AUTHLOOP__NEVER: unschedules it). ENOMEM leaves it
 * unscheduled. */
int authloop__timer_set(authloop__timer *t, authloop__timer_entry *e, uint64_t at);
/* Room in the heap for e, so that scheduling it never fails for want of
 * memory: taken when its owner is made (AUTHLOOP_ENOMEM), given back when it
 * goes (unscheduled). Entries without a reservation may get ENOMEM, and
 * never use the room promised to others. */
int authloop__timer_reserve(authloop__timer *t, authloop__timer_entry *e);
void authloop__timer_release(authloop__timer *t, authloop__timer_entry *e);
/* Non-zero when a change to the deadlines waits for the loop's next turn,
 * which sets the kernel timer: a host loop must not sleep. */
int authloop__timer_pending(const authloop__timer *t);
/* Closes the handles; closed(ud) runs when they are gone. */
void authloop__timer_close(authloop__timer *t, void (*closed)(void *ud), void *ud);

#endif
