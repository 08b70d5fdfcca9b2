/* SPDX-License-Identifier: MIT */
/* The leaf of the library: lists, secrets, byte checks, random numbers and the
 * logger. Everything else may include this; it includes nothing of authloop's
 * but the public header (for the error codes and log levels). */
#ifndef AUTHLOOP_UTIL_H
#define AUTHLOOP_UTIL_H

#include "authloop.h"

#include <jansson.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define AUTHLOOP__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AUTHLOOP__PRINTF(a, b)
#endif

#define AUTHLOOP__VERSION_STRING AUTHLOOP_VERSION_STRING

#define AUTHLOOP__CONTAINER_OF(ptr, type, member)                                                  \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define AUTHLOOP__COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- intrusive doubly linked list (a list head is a link to itself) ------- */

typedef struct authloop__link {
  struct authloop__link *prev, *next;
} authloop__link;

static inline void authloop__list_init(authloop__link *head) { head->prev = head->next = head; }
static inline int authloop__list_empty(const authloop__link *head) { return head->next == head; }
static inline void authloop__list_push(authloop__link *head, authloop__link *l) {
  l->prev = head->prev;
  l->next = head;
  head->prev->next = l;
  head->prev = l;
}
static inline void authloop__list_remove(authloop__link *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}
/* Moves every link of src to the end of dst; src is left empty. */
static inline void authloop__list_splice(authloop__link *dst, authloop__link *src) {
  if (authloop__list_empty(src))
    return;
  src->next->prev = dst->prev;
  src->prev->next = dst;
  dst->prev->next = src->next;
  dst->prev = src->prev;
  authloop__list_init(src);
}

/* ---- secrets ------------------------------------------------------------------ */

/* strdup / free for secrets: the copy is wiped before it is released. */
char *authloop__secret_dup(const char *s);
void authloop__secret_free(char *s);
/* Wipes n bytes at p, then frees p. */
void authloop__wipe_free(void *p, size_t n);
/* Frees *p (wiped) and sets it to a copy of s (NULL stays NULL). */
int authloop__secret_set(char **p, const char *s);
/* Wipes every string value in a JSON tree, then drops the reference. */
void authloop__json_wipe_decref(json_t *j);
/* Reads up to size bytes of an open file into a new NUL-terminated buffer
 * (*len: what was read) and closes fd: 0, or AUTHLOOP_ENOMEM. */
int authloop__read_and_close(int fd, size_t size, unsigned char **out, size_t *len);

/* ---- options from the application ---------------------------------------------------- */

/* Copies an options struct whose first field is its size into dst (of
 * dst_size, the size this library knows, and alignment dst_align),
 * zero-filling what an older caller's struct lacks. Every size a compiler
 * gives such a struct is a multiple of its alignment (its fields are at most
 * pointer-sized), so any other size ends inside a field: refused.
 * AUTHLOOP_EINVAL: no size, an absurd one, or one inside a field;
 * AUTHLOOP_ENOTSUP: a newer caller set fields this library does not know. */
int authloop__options_copy(void *dst, size_t dst_size, size_t dst_align, const void *src);
#define AUTHLOOP__OPTIONS_COPY(dst, src)                                                           \
  authloop__options_copy(dst, sizeof(*(dst)), _Alignof(__typeof__(*(dst))), src)

/* ---- byte checks -------------------------------------------------------------- */

int authloop__has_space(const char *s);
/* Well-formed UTF-8 (what JSON text must be): no overlong form, surrogate or
 * code point past U+10FFFF. */
int authloop__utf8_ok(const char *s);
/* Text from a server made safe to show (in an event, a log line): every
 * control byte (below 0x20, 0x7f) and every UTF-8 control a terminal or a
 * text view acts on (C1, line and paragraph separators, bidirectional
 * controls) becomes one '?', and so does every byte past ASCII when the text
 * is not UTF-8. In place (it may get shorter); or a copy (NULL: no memory).
 * printable_ok: 1 when s is UTF-8 that this would leave as it is. */
void authloop__printable(char *s);
char *authloop__printable_dup(const char *s);
int authloop__printable_ok(const char *s);
/* A URL as RFC 3986 writes it: printable ASCII, no space (an application
 * shows it or hands it to a browser, where a control or a bidirectional
 * override in it would be shown or acted on). */
int authloop__plain_url_ok(const char *s);
/* A URL for a browser: plain (above), https (or http when http_too), with a
 * host and no credentials before it. */
int authloop__browser_url_ok(const char *s, int http_too);
/* The one rule for a value that may reach an HTTP header line: no byte below
 * 0x20 (CR, LF, NUL, TAB ...) and no DEL. The transport refuses any header that
 * breaks it; parsers and API calls use it to refuse such values early. */
int authloop__header_value_ok(const char *s, size_t len);
/* Text from the application that may end up in a header line: a valid
 * header value (no CR, LF, NUL or other control byte) and UTF-8. */
int authloop__text_ok(const char *s);
/* Path text authloop puts in a URL as it is (a path option, a request path):
 * starts with '/', no space, control byte, non-ASCII, '?' or '#', and no dot
 * segment ("." or "..", plain or percent-encoded) that would climb out of the
 * base URL's path. */
/* seg (n bytes) is "." or "..", literally or as %2e. */
int authloop__dot_segment(const char *seg, size_t n);
int authloop__path_text_ok(const char *p);
/* A header name: RFC 9110 token characters only. */
int authloop__header_name_ok(const char *s);

/* ---- random numbers: mbedTLS CTR-DRBG, one per ctx ------------------------------- */

typedef struct {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  uint32_t pool[16]; /* authloop__random_u32()'s, drawn 16 at a time */
  unsigned pooled;
} authloop__rng;

int authloop__rng_init(authloop__rng *r);
void authloop__rng_free(authloop__rng *r);
int authloop__random(authloop__rng *r, void *buf, size_t n);
/* For what is not a secret (a refresh's jitter): drawn from the DRBG in
 * batches, one call per 16 values. */
uint32_t authloop__random_u32(authloop__rng *r);

/* ---- logging --------------------------------------------------------------------- */

/* Where log lines go: a function of the ctx that queues them for the
 * application's log callback (never called synchronously by any layer). */
typedef struct {
  void (*write)(void *ud, authloop_log_level level, const char *line);
  void *ud;
  authloop_log_level level; /* most verbose level wanted */
  int enabled;
} authloop__logger;

void authloop__logf(const authloop__logger *l, authloop_log_level level, const char *fmt, ...)
    AUTHLOOP__PRINTF(3, 4);
static inline int authloop__log_wants(const authloop__logger *l, authloop_log_level level) {
  return l && l->enabled && level <= l->level;
}

#endif
