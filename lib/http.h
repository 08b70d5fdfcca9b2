/* SPDX-License-Identifier: MIT */
/* A request and its answer as plain values: what a provider describes and
 * reads, what the transport sends and reports. No curl, no uv, no session. */
#ifndef AUTHLOOP_HTTP_H
#define AUTHLOOP_HTTP_H

#include <stddef.h>

#define AUTHLOOP__MAX_PATH    4
#define AUTHLOOP__MAX_QUERY   2
#define AUTHLOOP__MAX_HEADERS 8

typedef struct {
  const char *name, *value;
} authloop__pair;

/* Part of a path: literal text (a path option, "/me"), or one segment that is
 * percent-encoded whole (a user id, a strategy name: "/", "?", "#" and "%"
 * included). */
typedef struct {
  const char *text;
  int segment;
} authloop__path_part;

typedef enum {
  AUTHLOOP__WANT_DATE = 1, /* report the answer's Date header */
  AUTHLOOP__LINGER = 2     /* not cancelled when the ctx closes: the close waits for it */
} authloop__request_flags;

/* Every pointer is borrowed until authloop__transport_start() returns, which
 * copies what it keeps. json is the exception: text owned by the description
 * (authloop__request_clear wipes and frees it). */
typedef struct {
  const char *method; /* GET, POST, PUT, PATCH, DELETE */
  const char *base;   /* absolute http(s) URL, no query: its path is kept */
  authloop__path_part path[AUTHLOOP__MAX_PATH];
  authloop__pair query[AUTHLOOP__MAX_QUERY];     /* value URL-encoded; NULL value: the bare name */
  authloop__pair headers[AUTHLOOP__MAX_HEADERS]; /* validated by the transport */
  const char *bearer;                            /* "Authorization: Bearer <bearer>" */
  char *json;                                    /* body as application/json, or ... */
  const char *body;                              /* ... this text as application/json */
  unsigned flags;
} authloop__request;

/* An HTTP answer. body is NUL-terminated, never NULL. */
typedef struct {
  long status;
  const char *body;
  size_t len;
  long long date_ms;    /* the Date header when asked for (AUTHLOOP__WANT_DATE), ms since the
                           epoch; 0 when absent or unreadable */
  const char *location; /* a 3xx answer's Location, resolved against the request's URL
                           (never followed); NULL otherwise */
} authloop__answer;

/* Appends a path part / query pair / header: 0, or AUTHLOOP_ENOMEM when the
 * fixed slots are full (a programming error, reported rather than dropped). */
int authloop__request_path(authloop__request *r, const char *text, int segment);
int authloop__request_query(authloop__request *r, const char *name, const char *value);
int authloop__request_header(authloop__request *r, const char *name, const char *value);
/* The body {"k1":"v1",...} from n pairs of strings: 0, AUTHLOOP_EINVAL when
 * one is NULL or not UTF-8, AUTHLOOP_ENOMEM. */
int authloop__request_json_object(authloop__request *r, const char *const *pairs, size_t n);
void authloop__request_clear(authloop__request *r);

#endif
