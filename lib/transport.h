/* SPDX-License-Identifier: MIT */
/* HTTP transfers: libcurl's multi interface on libuv. A request description
 * goes in (lib/http.h); one completion comes out through the function pointer
 * given with it. The transport builds every URL with libcurl's URL API and
 * validates every header byte here, in one place. It knows no session, no
 * dialect and no policy: a completion says what happened and nothing more. */
#ifndef AUTHLOOP_TRANSPORT_H
#define AUTHLOOP_TRANSPORT_H

#include "http.h"
#include "util.h"

#include <curl/curl.h>
#include <uv.h>

#define AUTHLOOP__MAX_HEADER_BYTES (64 * 1024)

/* How a transfer ended. error 0: an HTTP answer arrived (see answer). */
typedef struct {
  int error;                /* 0, or AUTHLOOP_ENETWORK, ETIMEDOUT, ETLS, ETOOLARGE, ECANCELED ... */
  const char *detail;       /* libcurl's explanation of an error, or "" */
  authloop__answer answer;  /* status 0 and an empty body when no answer arrived */
  long long retry_after_ms; /* a Retry-After header, else -1 */
  int sent;   /* the request went out (some of it, at least): the server may have acted on it */
  int waited; /* ETIMEDOUT in authloop's line, never handed to libcurl: local congestion,
                 nothing the network or the server did */
} authloop__outcome;

typedef struct authloop__transfer authloop__transfer;
/* Called once per started transfer (not after authloop__transfer_abort). The
 * transfer is freed when it returns. */
typedef void (*authloop__transfer_cb)(void *ud, const authloop__outcome *o);

typedef struct {
  /* options, owned copies */
  char *ca_file, *user_agent;
  unsigned timeout_ms;
  size_t max_body_bytes;
  const authloop__logger *log;
  /* machinery */
  uv_loop_t *loop;
  CURLM *multi;
  CURLSH *share;
  uv_timer_t timer;
  uv_timer_t queue_timer; /* the lines' deadlines, and moving them on after an abort */
  authloop__link transfers, sockets;
  authloop__link lines; /* one per server (scheme, host, port): lib/transport.c, pump */
  unsigned max_host;    /* max_host_connections */
  int pumping;
  int activated;  /* handed to libcurl since its last socket action (drain_and_send) */
  CURL *spare[8]; /* easy handles kept for the next transfers (curl_easy_reset) */
  unsigned n_spare;
  struct authloop__base *bases[4]; /* base URLs parsed once (lib/transport.c, base_get) */
  unsigned next_base;
  unsigned handles;
  int closing;
  int stranded; /* a transfer's socket could not be watched */
  void (*closed)(void *ud);
  void *closed_ud;
  void (*idle)(void *ud); /* the last transfer ended */
  void *idle_ud;
} authloop__transport;

typedef struct {
  const char *ca_file, *user_agent;
  unsigned timeout_ms, max_host_connections;
  size_t max_body_bytes;
  const authloop__logger *log;
} authloop__transport_options;

/* Allocates what curl needs; no uv handle yet. */
int authloop__transport_init(authloop__transport *t, uv_loop_t *loop,
                             const authloop__transport_options *o);
/* Makes the uv handles (cannot fail). */
void authloop__transport_attach(authloop__transport *t);
/* Undoes authloop__transport_init on a transport never attached. */
void authloop__transport_discard(authloop__transport *t);
/* Starts a transfer: AUTHLOOP_EINVAL for a bad URL, path, query or header
 * byte, AUTHLOOP_ENOMEM, AUTHLOOP_ECLOSING. Nothing is sent on error. */
int authloop__transport_start(authloop__transport *t, const authloop__request *r,
                              authloop__transfer_cb cb, void *ud, authloop__transfer **out);
/* Stops a transfer quietly: its callback never runs. */
void authloop__transfer_abort(authloop__transfer *x);
/* Ends every transfer with AUTHLOOP_ECANCELED (callbacks run now), but
 * those started with AUTHLOOP__LINGER when `spare_lingering`. */
void authloop__transport_cancel_all(authloop__transport *t, int spare_lingering);
/* How many transfers libcurl has now (the rest wait in line): for tests. */
unsigned authloop__transport_in_libcurl(const authloop__transport *t);
/* How many socket watchers it has (active, stopped or closing), and the first
 * active one (NULL when none): for tests. */
unsigned authloop__transport_watchers(const authloop__transport *t, const uv_poll_t **active);
int authloop__transport_busy(const authloop__transport *t);
/* Closes curl and the handles; closed(ud) runs when they are gone. */
void authloop__transport_close(authloop__transport *t, void (*closed)(void *ud), void *ud);

/* The URL of r as the transport would send it (for checks and tests); free
 * with curl_free. AUTHLOOP_EINVAL when it cannot be built. */
int authloop__request_url(const authloop__request *r, char **url);
/* "scheme://host:port" of url (the port always written), for per-origin
 * health; free with free(). */
int authloop__url_origin(const char *url, char **origin);
/* The key of url's line (lib/transport.c): "scheme://host port", the host
 * lower-cased, the port always written. 0, AUTHLOOP_EINVAL, AUTHLOOP_ENOMEM. */
int authloop__line_key(const char *url, char *out, size_t size);
/* 0 if url is an absolute http(s) URL with a host and no query or fragment,
 * and plain http only to loopback unless allow_insecure; *loopback says
 * whether its host is loopback. */
int authloop__check_base_url(const char *url, int allow_insecure, int *loopback);

#endif
