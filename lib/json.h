/* SPDX-License-Identifier: MIT */
/* Reading JSON answers without building a tree (docs/decisions.md, "JSON
 * answers"): one pass checks the text and records each value as a token in
 * a flat array, in document order; strings are decoded into one copy of the
 * text. It accepts exactly what jansson's json_loadb(JSON_REJECT_DUPLICATES)
 * accepts (an object or array at the top, RFC 8259, UTF-8 without
 * surrogates, no \u0000, no duplicate key, integers within long long, reals
 * that do not overflow a double, at most 2048 levels): test/fuzz/fuzz_json.c
 * holds it to that, byte for byte, but for one leniency of jansson's that it
 * does not share: a NUL byte right after a number or literal (refused here,
 * like every NUL outside a string). */
#ifndef AUTHLOOP_JSON_H
#define AUTHLOOP_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define AUTHLOOP__JSON_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

typedef enum {
  AUTHLOOP__J_NONE = 0, /* no such value */
  AUTHLOOP__J_OBJECT,
  AUTHLOOP__J_ARRAY,
  AUTHLOOP__J_STRING,
  AUTHLOOP__J_INTEGER,
  AUTHLOOP__J_REAL,
  AUTHLOOP__J_TRUE,
  AUTHLOOP__J_FALSE,
  AUTHLOOP__J_NULL
} authloop__jtype;

typedef struct {
  uint8_t type;
  uint32_t skip; /* tokens in this value, itself included: its next sibling is at + skip */
  uint32_t off;  /* STRING: the decoded text in buf; others: where the value starts */
  uint32_t len;  /* STRING: decoded length; others: length of the value's text */
} authloop__jtok;

typedef struct {
  const char *text; /* what was parsed (borrowed): raw slices come from it */
  char *buf;        /* a copy with every string decoded in place and NUL-terminated */
  size_t buf_len;
  authloop__jtok *tok; /* tok[0] is the root */
  uint32_t n, cap;
  int spaced;               /* whitespace between some tokens (authloop__jcompact has work to do) */
  authloop__jtok small[64]; /* enough for most answers (a login: about 40) */
} authloop__jdoc;

/* Parses len bytes of text. 0; AUTHLOOP_EPROTO when it is not JSON as
 * described above (or longer than 4 GiB); AUTHLOOP_ENOMEM. d is always left
 * for authloop__jdoc_free; after a failure it has no values (every lookup
 * finds none). */
int authloop__jdoc_parse(authloop__jdoc *d, const char *text, size_t len);
/* Wipes the decoded copy (it may hold secrets) and frees. */
void authloop__jdoc_free(authloop__jdoc *d);

/* The value of member key in object v, or -1 (v not an object, or no key). */
int authloop__jget(const authloop__jdoc *d, int v, const char *key);
static inline authloop__jtype authloop__jtype_of(const authloop__jdoc *d, int v) {
  return v >= 0 && (uint32_t)v < d->n ? (authloop__jtype)d->tok[v].type : AUTHLOOP__J_NONE;
}
static inline int authloop__jis(const authloop__jdoc *d, int v, authloop__jtype t) {
  return authloop__jtype_of(d, v) == t;
}
/* A string value, decoded and NUL-terminated (no NUL inside: JSON that has
 * one is refused), or NULL when v is not a string. Lives as long as d. */
const char *authloop__jstring(const authloop__jdoc *d, int v);
/* A non-empty string member of object v, or NULL. */
const char *authloop__jstr(const authloop__jdoc *d, int v, const char *key);
/* An integer value: 0 and *out, or -1 when v is not an integer. */
int authloop__jint(const authloop__jdoc *d, int v, long long *out);
/* The value's text as it came, and its length. */
static inline const char *authloop__jraw(const authloop__jdoc *d, int v, size_t *len) {
  *len = d->tok[v].len;
  return d->text + d->tok[v].off;
}

/* A copy of JSON text (valid: from a parsed doc) without the whitespace
 * between tokens; NULL when out of memory. Free with authloop__secret_free. */
char *authloop__json_compact(const char *raw, size_t len);
/* The same of value v of d, a copy when d had no whitespace between tokens. */
char *authloop__jcompact(const authloop__jdoc *d, int v);

/* ---- writing request bodies ------------------------------------------------------ */

/* A growing text (wiped when freed: bodies carry secrets). */
typedef struct {
  char *data;
  size_t len, cap;
  int failed; /* out of memory at some point: the text is incomplete */
} authloop__jw;

/* Appends s (len bytes) as a JSON string, quoted and escaped; it must be
 * valid UTF-8 (authloop__utf8_ok). */
void authloop__jw_string(authloop__jw *w, const char *s, size_t len);
/* Appends text as it is. */
void authloop__jw_raw(authloop__jw *w, const char *text, size_t len);
/* Compact JSON text of a jansson tree, in its key order, or NULL; wipe it
 * with authloop__secret_free (every copy on the way is wiped: it may hold a
 * token, where jansson's own buffer grows by realloc, unwiped). */
char *authloop__json_text(const json_t *j);
/* {"k1":"v1",...}: n pairs of NUL-terminated strings. The text (wipe it with
 * authloop__secret_free), or NULL when out of memory. */
char *authloop__jw_object(const char *const *pairs, size_t n);

/* A jansson tree of text (len bytes), duplicates refused. NULL when it is
 * not JSON, or (with *nomem set; nomem may be NULL) when memory ran out: a
 * different failure. */
json_t *authloop__json_parse(const char *text, size_t len, int *nomem);

#endif
