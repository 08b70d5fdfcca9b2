/* SPDX-License-Identifier: MIT */
/* The persisted session (docs/session-file.md): a pure codec between a
 * session value and the file's bytes, a bounded synchronous reader, and an
 * atomic writer that runs off the loop thread. It never touches a client: the
 * session engine decides what to store and applies what it reads. */
#ifndef AUTHLOOP_STORE_H
#define AUTHLOOP_STORE_H

#include "timer.h"
#include "util.h"

#include <uv.h>

#define AUTHLOOP__STORE_MAX_BYTES (64 * 1024)
#define AUTHLOOP__STORE_KEY_BYTES 32
/* Generations above this are impossible (2^53: wall-clock ms for 285,000
 * years); below it every "+ 1" is safe. */
#define AUTHLOOP__STORE_GEN_MAX (1LL << 53)

/* A session as stored. Times are wall-clock ms so that they survive a reboot.
 * Decoded values own their strings and user (authloop__stored_clear). */
typedef struct {
  char *provider, *base_url;
  char *access_token, *id_token, *refresh_token; /* id and refresh may be NULL */
  char *user;                                    /* the user object as JSON text */
  long long lifetime_s;                          /* > 0, or -1: never expires */
  long long expires_at;                          /* wall ms > 0, or -1: never expires */
  long long last_activity;                       /* wall ms, >= 0 */
  long long gen; /* grows with every write: who has the newest session */
  long long sid; /* the login it comes from (a mark: the login it ends); 0: unknown */
  int ended;     /* a logout's mark: the session is over; only gen and sid are set */
} authloop__stored;

void authloop__stored_clear(authloop__stored *s);
/* key: 32 bytes, or NULL for a plain file. rng makes the nonce. */
int authloop__store_encode(const authloop__stored *s, const unsigned char *key, authloop__rng *rng,
                           unsigned char **out, size_t *len);
/* A stored value with `ended` set encodes the mark a logout leaves: no
 * secrets, never encrypted, only the generation. */
/* AUTHLOOP_EPROTO: malformed; AUTHLOOP_EINVAL: encrypted where no key is
 * given or plain where one is; AUTHLOOP_EREJECTED: the tag does not verify
 * (wrong key, or changed). Types and ranges are checked; nothing is kept on
 * error. */
int authloop__store_decode(const unsigned char *data, size_t len, const unsigned char *key,
                           authloop__stored *out);

/* Reads path (at most AUTHLOOP__STORE_MAX_BYTES, a regular file, no symlink,
 * never blocking on a FIFO). 0 and the bytes (wipe and free them);
 * AUTHLOOP_ENOENT when there is no file; else an error and a reason. */
int authloop__store_read(const char *path, unsigned char **out, size_t *len, const char **why);
/* 32 bytes that name the installation of the session file at path: this
 * machine, this user, the application (app, may be NULL), the file's
 * resolved directory and name. 0 or AUTHLOOP_ENOMEM. */
int authloop__installation_id(const char *path, const char *app, unsigned char out[32]);

/* Writes and deletes, one at a time per path, in order, on libuv's thread
 * pool; an operation not yet started is replaced by a newer one. Each takes
 * the lock beside the file without blocking a pool thread: while another
 * holds it, the operation is tried again every 20 ms from the loop, for up
 * to lock_wait_ms, and then done without the lock (logged) rather than lost
 * or held forever. */
typedef struct {
  uv_loop_t *loop;
  const authloop__logger *log;
  authloop__timer *timer;
  uint64_t lock_wait_ms;
  authloop__link slots;
  authloop__link writers; /* in the process's list of writers */
  authloop__link tidied;  /* paths whose directory this writer has tidied once */
  void (*idle)(void *ud); /* the last operation finished */
  void *idle_ud;
} authloop__store_writer;

void authloop__store_writer_init(authloop__store_writer *w, uv_loop_t *loop,
                                 const authloop__logger *log, authloop__timer *timer,
                                 uint64_t lock_wait_ms);
/* Leaves the process's list; the writer must be idle. */
void authloop__store_writer_fini(authloop__store_writer *w);
/* Takes data (wiped and freed when done). sid > 0: data is a session of
 * that login, which never replaces a logout's mark of the same login (the
 * logout came while it was on its way: the logout wins). */
void authloop__store_write(authloop__store_writer *w, const char *path, unsigned char *data,
                           size_t len, long long sid);
void authloop__store_delete(authloop__store_writer *w, const char *path);
int authloop__store_busy(const authloop__store_writer *w);

/* The lock beside a session file ("<path>.lock"), for a refresh shared by
 * processes: 0 and the held fd; 1 when another holds it (or, for now, no
 * descriptor is to be had); AUTHLOOP_ENOMEM; or
 * AUTHLOOP_ESTORE when no lock is possible there. Who
 * finds it busy looks again after AUTHLOOP__LOCK_RETRY_MS, on the loop (a
 * refresh, a write), never blocking a thread. */
#define AUTHLOOP__LOCK_RETRY_MS 20
int authloop__store_trylock(const char *path, int *fd);
void authloop__store_unlock(int fd);
/* Whether a write or delete of path runs now, or the loop holds its lock. */
int authloop__store_running(const authloop__store_writer *w, const char *path);
/* The loop holds path's lock: nothing for path starts until it writes with
 * it (write_locked, which releases the lock when done) or lets go (unhold). */
int authloop__store_hold(authloop__store_writer *w, const char *path);
void authloop__store_write_locked(authloop__store_writer *w, const char *path, unsigned char *data,
                                  size_t len, int lock_fd, long long sid);
void authloop__store_unhold(authloop__store_writer *w, const char *path);
/* What path will hold once the operations queued for it are done, by any
 * ctx of this process (the newest queued wins): 0 and nothing when none is;
 * 1 and a copy of the bytes (wipe and free them) for a pending write; 1 and
 * NULL for a pending delete; -1 out of memory. A load reads this first. */
int authloop__store_pending(const authloop__store_writer *w, const char *path, unsigned char **data,
                            size_t *len);

#endif
