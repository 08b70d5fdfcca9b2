/* SPDX-License-Identifier: MIT */
/* libcurl's multi socket API on libuv: one uv_poll_t per socket curl asks us
 * to watch, one uv_timer_t for curl's timeout, completions drained after every
 * socket action. One multi handle per ctx is the connection pool all its
 * clients share; the share handle adds DNS and TLS session reuse. */
#include "transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  char *data;
  size_t len, cap;
} buf;

struct authloop__transfer {
  authloop__transport *t;
  CURL *easy;
  CURLU *url;
  struct curl_slist *headers; /* into hnode, its lines in hbuf */
  /* the header lines, one buffer (may carry a token: wiped on free), and
   * their list nodes here: libcurl reads the list, never frees it */
  struct curl_slist hnode[AUTHLOOP__MAX_HEADERS + 4];
  char *hbuf;
  size_t hbuf_len;
  char *body;   /* owned, wiped on free */
  char *target; /* "METHOD scheme://host/path" for logs, when logging */
  buf resp;     /* at most max_body_bytes */
  size_t header_bytes;
  int overflow; /* the body or the headers went past their limit */
  int want_date, linger;
  int stranded;      /* its socket could not be watched (out of memory): it fails ENOMEM */
  int prereq;        /* libcurl got as far as sending its request (a kept handle's transfer
                        info is the last transfer's until then) */
  int queued;        /* waits in its line: no easy handle yet, nothing sent */
  int in_multi;      /* libcurl has it (counted in its line's active) */
  struct line *line; /* its server's */
  int method;        /* 0 GET, 1 POST, 2 another (custom) */
  int plain;         /* http: (no proxy from the environment for it) */
  char custom[8];
  authloop__link qlink; /* in its line's waiting while queued */
  char date[64];
  char errbuf[CURL_ERROR_SIZE];
  uint64_t started_ns;
  authloop__transfer_cb cb; /* NULL once finished or aborted */
  void *ud;
  authloop__link link; /* in t->transfers while started */
};

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
  authloop__transport *t;
  authloop__link link; /* in t->sockets until its close callback */
} sock;

/* The transfers to one server (scheme, host, port): libcurl gets as many as
 * it has connections for, max_host_connections (a server that answered over
 * HTTP/2 multiplexes: as many streams as libcurl opens on them); the rest
 * wait here in order. A line goes when it is empty (line_gc). */
#define STREAMS_PER_CONNECTION 100 /* CURLMOPT_MAX_CONCURRENT_STREAMS's default */

struct line {
  authloop__link link;    /* in t->lines */
  authloop__link waiting; /* transfers in line, oldest first */
  unsigned active;        /* libcurl has these */
  int multiplexed;        /* the last answer came over HTTP/2 */
  char key[];             /* "scheme://host:port" */
};

static void one_closed(authloop__transport *t) {
  if (--t->handles == 0 && t->closing)
    t->closed(t->closed_ud);
}

static void handle_closed(uv_handle_t *h) { one_closed(h->data); }

static void sock_closed(uv_handle_t *h) {
  sock *sk = AUTHLOOP__CONTAINER_OF(h, sock, poll);
  authloop__transport *t = sk->t;
  authloop__list_remove(&sk->link);
  free(sk);
  one_closed(t);
}

static void sock_close(sock *sk) {
  if (!uv_is_closing((uv_handle_t *)&sk->poll))
    uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

/* ---- URLs ------------------------------------------------------------------- */

static int is_loopback(const char *host) {
  unsigned char a[16];
  char v6[64];
  size_t n = strlen(host);
  if (strcasecmp(host, "localhost") == 0)
    return 1;
  if (inet_pton(AF_INET, host, a) == 1)
    return a[0] == 127;
  if (n > 2 && n < sizeof(v6) && host[0] == '[' && host[n - 1] == ']') {
    memcpy(v6, host + 1, n - 2);
    v6[n - 2] = '\0';
    return inet_pton(AF_INET6, v6, a) == 1 &&
           memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
  }
  return 0;
}

/* A URL API result as ours: a URL libcurl refused is EINVAL, its running
 * out of memory ENOMEM. */
static int curlu_rc(CURLUcode rc) {
  return rc == CURLUE_OK ? 0 : rc == CURLUE_OUT_OF_MEMORY ? AUTHLOOP_ENOMEM : AUTHLOOP_EINVAL;
}

/* got == want, noting libcurl running out of memory (not a bad URL) in *oom */
static int is(CURLUcode got, CURLUcode want, int *oom) {
  if (got == CURLUE_OUT_OF_MEMORY)
    *oom = 1;
  return got == want;
}

int authloop__check_base_url(const char *url, int allow_insecure, int *loopback) {
  CURLU *u;
  char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL, *user = NULL;
  int rc = AUTHLOOP_EINVAL, lo = 0, oom = 0;
  if (!url || !*url || !authloop__header_value_ok(url, strlen(url)) || authloop__has_space(url))
    return AUTHLOOP_EINVAL;
  if (!(u = curl_url()))
    return AUTHLOOP_ENOMEM;
  if (is(curl_url_set(u, CURLUPART_URL, url, 0), CURLUE_OK, &oom) &&
      is(curl_url_get(u, CURLUPART_SCHEME, &scheme, 0), CURLUE_OK, &oom) &&
      is(curl_url_get(u, CURLUPART_HOST, &host, 0), CURLUE_OK, &oom) &&
      is(curl_url_get(u, CURLUPART_QUERY, &query, 0), CURLUE_NO_QUERY, &oom) &&
      is(curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0), CURLUE_NO_FRAGMENT, &oom) &&
      /* credentials in a URL would go out as HTTP Basic on every request */
      is(curl_url_get(u, CURLUPART_USER, &user, 0), CURLUE_NO_USER, &oom)) {
    lo = is_loopback(host);
    if (strcmp(scheme, "https") == 0)
      rc = 0;
    else if (strcmp(scheme, "http") == 0)
      rc = allow_insecure || lo ? 0 : AUTHLOOP_EINSECURE;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(query);
  curl_free(fragment);
  curl_free(user);
  curl_url_cleanup(u);
  if (loopback)
    *loopback = lo;
  return oom ? AUTHLOOP_ENOMEM : rc;
}

int authloop__url_origin(const char *url, char **origin) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = AUTHLOOP_EINVAL, oom = 0;
  if (!u)
    return AUTHLOOP_ENOMEM;
  if (is(curl_url_set(u, CURLUPART_URL, url, 0), CURLUE_OK, &oom) &&
      is(curl_url_get(u, CURLUPART_SCHEME, &scheme, 0), CURLUE_OK, &oom) &&
      is(curl_url_get(u, CURLUPART_HOST, &host, 0), CURLUE_OK, &oom) &&
      is(curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT), CURLUE_OK, &oom)) {
    size_t n = strlen(scheme) + strlen(host) + strlen(port) + 5;
    if ((*origin = malloc(n))) {
      size_t i;
      snprintf(*origin, n, "%s://%s:%s", scheme, host, port);
      for (i = 0; (*origin)[i]; i++) /* host names compare without case */
        if ((*origin)[i] >= 'A' && (*origin)[i] <= 'Z')
          (*origin)[i] = (char)((*origin)[i] - 'A' + 'a');
      rc = 0;
    } else {
      rc = AUTHLOOP_ENOMEM;
    }
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return oom ? AUTHLOOP_ENOMEM : rc;
}

/* A base URL parsed once: most requests go to a few bases, and libcurl's
 * parse of one (with its path and scheme read back) cost more than the rest
 * of a request's set-up. Each request starts from a copy of it. */
#define LINE_KEY_MAX 300 /* "scheme://host port": a host name is at most 253 */

struct authloop__base {
  char *text; /* as requests give it */
  CURLU *u;
  char *path; /* its path without trailing slashes (may be "") */
  size_t path_len;
  int plain;              /* http: */
  char key[LINE_KEY_MAX]; /* its line's key */
};

static int plain_key(const char *url, char *out, size_t size);
static int parsed_key(CURLU *url, char *out, size_t size);

static void base_free(struct authloop__base *b) {
  if (!b)
    return;
  curl_url_cleanup(b->u);
  curl_free(b->path);
  free(b->text);
  free(b);
}

static int base_parse(const char *text, struct authloop__base **out) {
  struct authloop__base *b = calloc(1, sizeof(*b));
  char *scheme = NULL;
  int rc, oom = 0;
  if (!b || !(b->text = strdup(text)) || !(b->u = curl_url())) {
    base_free(b);
    return AUTHLOOP_ENOMEM;
  }
  if ((rc = curlu_rc(curl_url_set(b->u, CURLUPART_URL, text, 0))) == 0) {
    if (is(curl_url_get(b->u, CURLUPART_PATH, &b->path, 0), CURLUE_OK, &oom) &&
        is(curl_url_get(b->u, CURLUPART_SCHEME, &scheme, 0), CURLUE_OK, &oom)) {
      b->path_len = strlen(b->path);
      while (b->path_len && b->path[b->path_len - 1] == '/')
        b->path_len--;
      b->plain = strcmp(scheme, "http") == 0;
      if (!plain_key(text, b->key, sizeof(b->key)))
        rc = parsed_key(b->u, b->key, sizeof(b->key));
    } else {
      rc = oom ? AUTHLOOP_ENOMEM : AUTHLOOP_EINVAL;
    }
  }
  curl_free(scheme);
  if (rc) {
    base_free(b);
    return rc;
  }
  *out = b;
  return 0;
}

/* t's parse of base: one of the last few, or a new one in place of the oldest. */
static int base_get(authloop__transport *t, const char *text, struct authloop__base **out) {
  size_t i;
  int rc;
  for (i = 0; i < AUTHLOOP__COUNT(t->bases); i++)
    if (t->bases[i] && strcmp(t->bases[i]->text, text) == 0) {
      *out = t->bases[i];
      return 0;
    }
  if ((rc = base_parse(text, out)) != 0)
    return rc;
  i = t->next_base++ % AUTHLOOP__COUNT(t->bases);
  base_free(t->bases[i]);
  t->bases[i] = *out;
  return 0;
}

static void bases_free(authloop__transport *t) {
  size_t i;
  for (i = 0; i < AUTHLOOP__COUNT(t->bases); i++) {
    base_free(t->bases[i]);
    t->bases[i] = NULL;
  }
}

/* base's path, without its trailing slashes, then every part of r->path. */
static int build_path(CURLU *u, const struct authloop__base *b, const authloop__request *r) {
  char *out, *esc;
  size_t n, len = b->path_len, i;
  int rc = AUTHLOOP_EINVAL;
  n = len + 2;
  for (i = 0; i < AUTHLOOP__MAX_PATH && r->path[i].text; i++)
    n += r->path[i].segment ? 3 * strlen(r->path[i].text) + 1 : strlen(r->path[i].text);
  if (!(out = malloc(n)))
    return AUTHLOOP_ENOMEM;
  memcpy(out, b->path, len);
  for (i = 0; i < AUTHLOOP__MAX_PATH && r->path[i].text; i++) {
    const char *part = r->path[i].text;
    if (!r->path[i].segment) {
      if (!authloop__path_text_ok(part))
        goto done;
      memcpy(out + len, part, strlen(part));
      len += strlen(part);
      continue;
    }
    /* every reserved byte as %XX; but "." and ".." escape to themselves, and
     * a server would resolve them (a CometChat uid ".." climbs a level) */
    if (!*part || authloop__dot_segment(part, strlen(part)) ||
        !(esc = curl_easy_escape(NULL, part, 0)))
      goto done;
    out[len++] = '/';
    memcpy(out + len, esc, strlen(esc));
    len += strlen(esc);
    curl_free(esc);
  }
  if (len == 0)
    out[len++] = '/';
  out[len] = '\0';
  rc = curlu_rc(curl_url_set(u, CURLUPART_PATH, out, 0));
done:
  free(out);
  return rc;
}

static int build_url(const struct authloop__base *b, const authloop__request *r, CURLU **out) {
  CURLU *u = curl_url_dup(b->u);
  size_t i;
  int rc;
  if (!u)
    return AUTHLOOP_ENOMEM;
  rc = build_path(u, b, r);
  for (i = 0; rc == 0 && i < AUTHLOOP__MAX_QUERY && r->query[i].name; i++) {
    const char *name = r->query[i].name, *value = r->query[i].value;
    size_t n = strlen(name) + (value ? strlen(value) + 1 : 0) + 1;
    char *q = malloc(n);
    if (!q) {
      rc = AUTHLOOP_ENOMEM;
      break;
    }
    snprintf(q, n, "%s%s%s", name, value ? "=" : "", value ? value : "");
    /* name=value, both URL-encoded (the first '=' kept), joined with '&' */
    rc = !*name || strchr(name, '=')
             ? AUTHLOOP_EINVAL
             : curlu_rc(curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY | CURLU_URLENCODE));
    free(q);
  }
  if (rc) {
    curl_url_cleanup(u);
    return rc;
  }
  *out = u;
  return 0;
}

int authloop__request_url(const authloop__request *r, char **url) {
  CURLU *u;
  struct authloop__base *b;
  int rc = base_parse(r->base, &b);
  if (rc)
    return rc;
  rc = build_url(b, r, &u);
  base_free(b);
  if (rc)
    return rc;
  rc = curl_url_get(u, CURLUPART_URL, url, 0) == CURLUE_OK ? 0 : AUTHLOOP_EINVAL;
  curl_url_cleanup(u);
  return rc;
}

/* "METHOD scheme://host[:port]/path": what a log line may show of a URL. */
static char *log_target(const char *method, CURLU *u) {
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *out = NULL;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
    size_t n;
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    n = strlen(method) + strlen(scheme) + strlen(host) + strlen(path) + (port ? strlen(port) : 0) +
        8;
    if ((out = malloc(n)))
      snprintf(out, n, "%s %s://%s%s%s%s", method, scheme, host, port ? ":" : "", port ? port : "",
               path);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  return out;
}

/* ---- completion ------------------------------------------------------------ */

static const char *label(const authloop__transfer *x) { return x->target ? x->target : "request"; }

static int map_curl_error(const authloop__transfer *x, CURLcode rc) {
  if (x->overflow)
    return AUTHLOOP_ETOOLARGE;
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return AUTHLOOP_ETIMEDOUT;
  case CURLE_FILESIZE_EXCEEDED:
    return AUTHLOOP_ETOOLARGE;
  case CURLE_OUT_OF_MEMORY:
    return AUTHLOOP_ENOMEM;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return AUTHLOOP_ERESOLVE; /* a name that does not resolve: not "the network is down" */
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    return AUTHLOOP_EINVAL;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_USE_SSL_FAILED:
    return AUTHLOOP_ETLS;
  default:
    return AUTHLOOP_ENETWORK;
  }
}

/* An easy handle is kept for the next transfer, with the options every
 * transfer of this transport sets alike (transport_options); what one
 * transfer set that points into it goes now, and the next sets its own.
 * Before libcurl 7.80 there is no telling whether a kept handle's transfer
 * info (bytes sent ...) is the new transfer's yet: the handle is reset and
 * its options set again. */
static int transport_options(authloop__transport *t, CURL *e);

static void easy_release(authloop__transport *t, CURL *e) {
  if (!e)
    return;
  if (t->closing || t->n_spare == AUTHLOOP__COUNT(t->spare)) {
    curl_easy_cleanup(e);
    return;
  }
#if LIBCURL_VERSION_NUM >= 0x075000
  curl_easy_setopt(e, CURLOPT_CURLU, NULL);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
  curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, NULL);
#else
  curl_easy_reset(e);
  if (transport_options(t, e) != 0) {
    curl_easy_cleanup(e);
    return;
  }
#endif
  t->spare[t->n_spare++] = e;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud);
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud);

#if LIBCURL_VERSION_NUM >= 0x075000
static int on_prereq(void *ud, char *ip, char *local_ip, int port, int local_port) {
  (void)ip;
  (void)local_ip;
  (void)port;
  (void)local_port;
  ((authloop__transfer *)ud)->prereq = 1;
  return CURL_PREREQFUNC_OK;
}
#endif

/* Every socket libcurl opens for a connection is close-on-exec from its
 * first instant (not set after: another thread may fork in between): a
 * program the application starts must not hold authloop's connections. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  (void)ud;
  (void)purpose;
#ifdef SOCK_CLOEXEC
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
#else
  curl_socket_t s = socket(a->family, a->socktype, a->protocol);
  if (s != CURL_SOCKET_BAD && fcntl(s, F_SETFD, FD_CLOEXEC) != 0) {
    close(s);
    return CURL_SOCKET_BAD;
  }
  return s;
#endif
}

/* The transport's own options, the same for every transfer. The ones whose
 * failure (libcurl out of memory) would leave a weaker default behind (every
 * protocol libcurl has, the system's CAs instead of ours) fail it. */
static int transport_options(authloop__transport *t, CURL *e) {
  if (
#if LIBCURL_VERSION_NUM >= 0x075500
      curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
#else
      curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) !=
          CURLE_OK ||
#endif
      (t->ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file) != CURLE_OK))
    return -1;
  curl_easy_setopt(e, CURLOPT_SHARE, t->share);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_body_bytes);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
#if LIBCURL_VERSION_NUM >= 0x075000
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
#endif
  return 0;
}

/* A kept handle, or a new one with the transport's own options. */
static CURL *easy_take(authloop__transport *t) {
  CURL *e;
  if (t->n_spare)
    return t->spare[--t->n_spare];
  if (!(e = curl_easy_init()))
    return NULL;
  if (transport_options(t, e) != 0) {
    curl_easy_cleanup(e);
    return NULL;
  }
  return e;
}

static void transfer_free(authloop__transfer *x) {
  authloop__list_remove(&x->link);
  if (!authloop__list_empty(&x->qlink)) /* still in line */
    authloop__list_remove(&x->qlink);
  if (x->in_multi)
    x->line->active--;
  easy_release(x->t, x->easy);
  curl_url_cleanup(x->url);
  if (x->hbuf)
    mbedtls_platform_zeroize(x->hbuf, x->hbuf_len);
  free(x->hbuf);
  authloop__secret_free(x->body);
  if (x->resp.data)
    mbedtls_platform_zeroize(x->resp.data, x->resp.cap);
  free(x->resp.data);
  free(x->target);
  free(x);
}

static void pump(authloop__transport *t);
static void line_gc(authloop__transport *t);
static void detach(authloop__transfer *x);

static void finish(authloop__transfer *x, int error) {
  authloop__transport *t = x->t;
  authloop__outcome o;
  authloop__transfer_cb cb = x->cb;
  unsigned long long ms = (unsigned long long)((uv_hrtime() - x->started_ns) / 1000000);
  memset(&o, 0, sizeof(o));
  o.error = error;
  o.waited = !x->easy && error == AUTHLOOP_ETIMEDOUT;
  o.detail = error && error != AUTHLOOP_ECANCELED ? x->errbuf : "";
  o.retry_after_ms = -1;
  o.answer.body = x->resp.data ? x->resp.data : "";
  o.answer.len = x->resp.len;
  {
    /* past the connection, TLS and any proxy tunnel, and bytes written:
     * the request size alone counts a proxy's CONNECT */
    long sent = 0;
    curl_off_t pre = 0;
    o.sent =
        !error ||
        (x->easy && x->prereq &&
         curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK && pre > 0 &&
         curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent > 0);
  }
  if (!error) {
    curl_off_t retry_after = 0;
    long version = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &o.answer.status);
    if (x->line && curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version) == CURLE_OK)
      x->line->multiplexed = version >= CURL_HTTP_VERSION_2_0;
    /* seconds, from either form of the header (delay or HTTP date) */
    if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
        retry_after > 0 && retry_after < 24 * 3600)
      o.retry_after_ms = (long long)retry_after * 1000;
    if (o.answer.status >= 300 && o.answer.status < 400) {
      char *to = NULL;
      /* libcurl's until the handle goes, after the callback; a Location it
       * could not parse comes as it arrived: only a clean one is passed on */
      if (curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &to) == CURLE_OK && to && *to &&
          authloop__text_ok(to) && !authloop__has_space(to))
        o.answer.location = to;
    }
    if (x->want_date && x->date[0]) {
      time_t d = curl_getdate(x->date, NULL);
      o.answer.date_ms = d > 0 && (long long)d < LLONG_MAX / 1000 ? (long long)d * 1000 : 0;
    }
  }
  if (error)
    authloop__logf(t->log, AUTHLOOP_LOG_WARN, "%s failed after %llu ms: %s (%s)", label(x), ms,
                   authloop_err_name(error), x->errbuf[0] ? x->errbuf : authloop_strerror(error));
  else
    authloop__logf(t->log, AUTHLOOP_LOG_DEBUG, "%s -> %ld in %llu ms", label(x), o.answer.status,
                   ms);
  authloop__list_remove(&x->link);
  x->cb = NULL;
  cb(x->ud, &o);
  transfer_free(x);
  pump(t);
  line_gc(t);
  if (authloop__list_empty(&t->transfers) && t->idle)
    t->idle(t->idle_ud);
}

/* Transfers libcurl cannot go on with because a socket of theirs could not
 * be watched, or all of them when libcurl itself failed: each ends with
 * ENOMEM, rather than waiting forever for a socket nobody polls. */
static void fail_stranded(authloop__transport *t, CURLMcode rc) {
  authloop__link *l = t->transfers.next;
  if (!t->stranded && rc == CURLM_OK)
    return;
  t->stranded = 0;
  /* those libcurl has now; not those in line, nor those the line hands it
   * while these end */
  for (; l != &t->transfers; l = l->next) {
    authloop__transfer *x = AUTHLOOP__CONTAINER_OF(l, authloop__transfer, link);
    if (rc != CURLM_OK && x->in_multi)
      x->stranded = 1;
  }
  l = t->transfers.next;
  while (l != &t->transfers) {
    authloop__transfer *x = AUTHLOOP__CONTAINER_OF(l, authloop__transfer, link);
    if (!x->stranded) {
      l = l->next;
      continue;
    }
    detach(x);
    snprintf(x->errbuf, sizeof(x->errbuf), "%s",
             rc != CURLM_OK ? curl_multi_strerror(rc) : "a socket could not be watched");
    finish(x, AUTHLOOP_ENOMEM);
    l = t->transfers.next;
  }
}

static void drain(authloop__transport *t) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(t->multi, &left))) {
    authloop__transfer *x = NULL;
    CURLcode rc;
    if (msg->msg != CURLMSG_DONE)
      continue;
    rc = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(t->multi, msg->easy_handle);
    finish(x, rc == CURLE_OK && !x->overflow ? 0 : map_curl_error(x, rc));
  }
}

/* ---- curl -> libuv ------------------------------------------------------------ */

/* What a socket action finished ends, and what the line handed libcurl in
 * its place goes out now, in the same callback: left to libcurl's 0 ms
 * timer it waited for the next loop turn, and a server kept busy by a line
 * (a million refreshes due) got its next requests only after the client had
 * read every answer of the turn. Rounds are bounded: each sends what the
 * last one's completions started. */
static void drain_and_send(authloop__transport *t, CURLMcode rc) {
  int running, round;
  drain(t);
  for (round = 0; round < 4 && t->activated && t->multi && !t->closing; round++) {
    CURLMcode again;
    t->activated = 0;
    again = curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (rc == CURLM_OK)
      rc = again;
    drain(t);
  }
  fail_stranded(t, rc);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock *sk = h->data;
  authloop__transport *t = sk->t;
  int flags = 0, running;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  CURLMcode rc = curl_multi_socket_action(t->multi, sk->fd, flags, &running);
  drain_and_send(t, rc);
}

static void on_curl_timer(uv_timer_t *h) {
  authloop__transport *t = h->data;
  int running;
  CURLMcode rc;
  t->activated = 0; /* this action starts them */
  rc = curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain_and_send(t, rc);
}

static int strand(authloop__transport *t, CURL *easy) {
  authloop__transfer *x = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
  if (x) {
    x->stranded = 1;
    t->stranded = 1;
  }
  return -1;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  authloop__transport *t = userp;
  sock *sk = socketp;
  int events = 0;
  if (what == CURL_POLL_REMOVE) {
    if (sk) {
      curl_multi_assign(t->multi, s, NULL);
      sock_close(sk);
    }
    return 0;
  }
  if (!sk) {
    if (!(sk = calloc(1, sizeof(*sk))))
      return strand(t, easy);
    if (uv_poll_init_socket(t->loop, &sk->poll, s) != 0) {
      free(sk);
      return strand(t, easy);
    }
    sk->fd = s;
    sk->t = t;
    sk->poll.data = sk;
    t->handles++;
    authloop__list_push(&t->sockets, &sk->link);
    curl_multi_assign(t->multi, s, sk);
  }
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  return uv_poll_start(&sk->poll, events, on_poll) == 0 ? 0 : strand(t, easy);
}

/* Never calls curl from here: a 0 ms timer runs on the next loop turn. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  authloop__transport *t = userp;
  (void)multi;
  if (timeout_ms < 0)
    uv_timer_stop(&t->timer);
  else
    uv_timer_start(&t->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* libcurl's global set-up, once per process: before 7.84 it is not
 * thread-safe, and ctxs may be made on several threads. It is never undone
 * (libcurl's own advice for a library: the process's exit does it). */
static uv_once_t global_once = UV_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
/* servers whose every connection the cache keeps (an issuer, its token and
 * userinfo endpoints, another API), at most 1024 connections */
#define CACHED_SERVERS 4
#define CONNECTION_CACHE(max_host)                                                                 \
  ((max_host) > 1024 / CACHED_SERVERS ? 1024 : (max_host)*CACHED_SERVERS)

static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int authloop__transport_init(authloop__transport *t, uv_loop_t *loop,
                             const authloop__transport_options *o) {
  memset(t, 0, sizeof(*t));
  t->loop = loop;
  t->log = o->log;
  t->timeout_ms = o->timeout_ms;
  t->max_body_bytes = o->max_body_bytes;
  authloop__list_init(&t->transfers);
  authloop__list_init(&t->sockets);
  authloop__list_init(&t->lines);
  t->max_host = o->max_host_connections ? o->max_host_connections : 1;
  if ((o->ca_file && !(t->ca_file = strdup(o->ca_file))) ||
      !(t->user_agent = strdup(o->user_agent)))
    goto fail;
  uv_once(&global_once, global_init);
  if (global_rc != CURLE_OK)
    goto fail;
  t->multi = curl_multi_init();
  t->share = curl_share_init();
  if (!t->multi || !t->share) {
    curl_multi_cleanup(t->multi);
    curl_share_cleanup(t->share);
    goto fail;
  }
  curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
  curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
  curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->max_host_connections);
  /* libcurl's cache keeps 4 idle connections per transfer it holds: after a
   * burst, with one transfer left, it closed all but 4 of a server's, and
   * each came back with a full handshake (20 in 200 cycles of 40 Kuzzle
   * clients). Room for every connection of a few servers instead. */
  curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, (long)CONNECTION_CACHE(t->max_host));
  return 0;
fail:
  free(t->ca_file);
  free(t->user_agent);
  t->ca_file = t->user_agent = NULL;
  return AUTHLOOP_ENOMEM;
}

void authloop__transport_attach(authloop__transport *t) {
  uv_timer_init(t->loop, &t->timer); /* cannot fail on a valid loop */
  t->timer.data = t;
  uv_timer_init(t->loop, &t->queue_timer);
  t->queue_timer.data = t;
  t->handles = 2;
}

void authloop__transport_discard(authloop__transport *t) {
  bases_free(t);
  curl_multi_cleanup(t->multi);
  curl_share_cleanup(t->share);
  free(t->ca_file);
  free(t->user_agent);
  memset(t, 0, sizeof(*t));
}

/* Stops watching every socket while its fd is still open, lets curl close
 * its connections, then closes whatever handles remain. */
void authloop__transport_close(authloop__transport *t, void (*closed)(void *ud), void *ud) {
  authloop__link *l;
  t->closing = 1;
  t->closed = closed;
  t->closed_ud = ud;
  t->idle = NULL;
  authloop__transport_cancel_all(t, 0);
  for (l = t->sockets.next; l != &t->sockets; l = l->next) {
    uv_poll_t *p = &AUTHLOOP__CONTAINER_OF(l, sock, link)->poll;
    if (!uv_is_closing((uv_handle_t *)p))
      uv_poll_stop(p);
  }
  while (t->n_spare)
    curl_easy_cleanup(t->spare[--t->n_spare]);
  bases_free(t);
  curl_multi_cleanup(t->multi);
  curl_share_cleanup(t->share);
  t->multi = NULL;
  t->share = NULL;
  for (l = t->sockets.next; l != &t->sockets; l = l->next)
    sock_close(AUTHLOOP__CONTAINER_OF(l, sock, link));
  free(t->ca_file);
  free(t->user_agent);
  t->ca_file = t->user_agent = NULL;
  /* every transfer has ended: every line is empty */
  while (!authloop__list_empty(&t->lines)) {
    authloop__link *k = t->lines.next;
    authloop__list_remove(k);
    free(AUTHLOOP__CONTAINER_OF(k, struct line, link));
  }
  uv_close((uv_handle_t *)&t->timer, handle_closed);
  uv_close((uv_handle_t *)&t->queue_timer, handle_closed);
}

/* ---- transfers ------------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userp) {
  authloop__transfer *x = userp;
  size_t n = size * nmemb, limit = x->t->max_body_bytes;
  if (n > limit - x->resp.len) { /* resp.len <= limit always */
    x->overflow = 1;
    return 0; /* aborts the transfer */
  }
  if (x->resp.len + n >= x->resp.cap) {
    size_t cap = x->resp.cap ? x->resp.cap : 1024;
    char *p;
    while (cap <= x->resp.len + n)
      cap = cap > limit / 2 ? limit + 1 : cap * 2;
    if (!(p = malloc(cap)))
      return 0;
    if (x->resp.len) {
      memcpy(p, x->resp.data, x->resp.len);
      mbedtls_platform_zeroize(x->resp.data, x->resp.len);
    }
    free(x->resp.data);
    x->resp.data = p;
    x->resp.cap = cap;
  }
  memcpy(x->resp.data + x->resp.len, ptr, n);
  x->resp.len += n;
  x->resp.data[x->resp.len] = '\0';
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userp) {
  authloop__transfer *x = userp;
  size_t n = size * nmemb;
  x->header_bytes += n;
  if (x->header_bytes > AUTHLOOP__MAX_HEADER_BYTES) {
    x->overflow = 1;
    return 0;
  }
  /* the server's clock, kept as text, only for a caller that asked for it */
  if (x->want_date && n > 5 && n - 5 < sizeof(x->date) && strncasecmp(ptr, "date:", 5) == 0) {
    memcpy(x->date, ptr + 5, n - 5);
    x->date[n - 5] = '\0';
  }
  return n;
}

/* Bodies above this get "Expect:" (none): older libcurl asks large POSTs
 * for a 100-continue round trip from 1 KiB on (newer ones from 1 MiB). */
#define EXPECT_THRESHOLD 1024

static int has_header(const authloop__request *r, const char *name) {
  size_t i;
  for (i = 0; i < AUTHLOOP__MAX_HEADERS && r->headers[i].name; i++)
    if (strcasecmp(r->headers[i].name, name) == 0)
      return 1;
  return 0;
}

typedef struct {
  const char *name, *prefix, *value;
  size_t nn, np, nv; /* their lengths */
} header_line;

/* The request's header lines: "name: value" each, in one buffer, linked
 * through the transfer's own nodes (two allocations fewer a header than
 * curl_slist_append). Every byte of a value is checked here, and only here;
 * a name is one of ours, or a dialect's checked by the caller. "Name:" with
 * nothing after the colon is curl's way to leave a header out. */
static int set_headers(authloop__transfer *x, const authloop__request *r, size_t body_len) {
  header_line l[AUTHLOOP__COUNT(x->hnode)];
  size_t n = 0, i, total = 0, at = 0;
  if (body_len > EXPECT_THRESHOLD) /* no 100-continue round trip */
    l[n++] = (header_line){.name = "Expect", .prefix = "", .value = ""};
  /* JSON with a body; with none, no type (not curl's form type for a bodiless
   * POST, PUT or DELETE), unless the dialect names one */
  if (!has_header(r, "Content-Type") && (x->body || strcmp(r->method, "GET") != 0))
    l[n++] = (header_line){
        .name = "Content-Type", .prefix = "", .value = x->body ? "application/json" : ""};
  l[n++] = (header_line){.name = "User-Agent", .prefix = "", .value = x->t->user_agent};
  if (r->bearer) {
    if (!*r->bearer)
      return AUTHLOOP_EINVAL;
    l[n++] = (header_line){.name = "Authorization", .prefix = "Bearer ", .value = r->bearer};
  }
  for (i = 0; i < AUTHLOOP__MAX_HEADERS && r->headers[i].name; i++) {
    if (!r->headers[i].value || !authloop__header_name_ok(r->headers[i].name))
      return AUTHLOOP_EINVAL;
    l[n++] = (header_line){.name = r->headers[i].name, .prefix = "", .value = r->headers[i].value};
  }
  for (i = 0; i < n; i++) {
    l[i].nn = strlen(l[i].name);
    l[i].np = strlen(l[i].prefix);
    l[i].nv = strlen(l[i].value);
    if (!authloop__header_value_ok(l[i].value, l[i].nv))
      return AUTHLOOP_EINVAL;
    total += l[i].nn + l[i].np + l[i].nv + 3;
  }
  if (!(x->hbuf = malloc(total)))
    return AUTHLOOP_ENOMEM;
  x->hbuf_len = total;
  for (i = 0; i < n; i++) {
    size_t nn = l[i].nn, np = l[i].np, nv = l[i].nv;
    char *h = x->hbuf + at;
    memcpy(h, l[i].name, nn);
    h[nn] = ':';
    if (np || nv)
      h[++nn] = ' ';
    memcpy(h + nn + 1, l[i].prefix, np);
    memcpy(h + nn + 1 + np, l[i].value, nv);
    h[nn + 1 + np + nv] = '\0';
    at += nn + np + nv + 2;
    x->hnode[i].data = h;
    x->hnode[i].next = i + 1 < n ? &x->hnode[i + 1] : NULL;
  }
  x->headers = &x->hnode[0];
  return 0;
}

static int valid_method(const char *m) {
  static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  size_t i;
  for (i = 0; m && i < AUTHLOOP__COUNT(ok); i++)
    if (strcmp(m, ok[i]) == 0)
      return 1;
  return 0;
}

/* b: r's base, valid until the next base_get */
static int prepare(authloop__transport *t, authloop__transfer *x, const authloop__request *r,
                   struct authloop__base **b) {
  int rc;
  if (!valid_method(r->method) || !r->base || (r->json && r->body))
    return AUTHLOOP_EINVAL;
  if ((rc = base_get(t, r->base, b)) != 0 || (rc = build_url(*b, r, &x->url)) != 0)
    return rc;
  x->plain = (*b)->plain;
  if ((r->json || r->body) && !(x->body = authloop__secret_dup(r->json ? r->json : r->body)))
    return AUTHLOOP_ENOMEM;
  if ((rc = set_headers(x, r, x->body ? strlen(x->body) : 0)) != 0)
    return rc;
  /* a label for log lines, only when someone reads them */
  if (authloop__log_wants(t->log, AUTHLOOP_LOG_WARN) &&
      !(x->target = log_target(r->method, x->url)))
    return AUTHLOOP_ENOMEM;
  x->want_date = (r->flags & AUTHLOOP__WANT_DATE) != 0;
  x->linger = (r->flags & AUTHLOOP__LINGER) != 0;
  x->method = strcmp(r->method, "GET") == 0 ? 0 : strcmp(r->method, "POST") == 0 ? 1 : 2;
  memcpy(x->custom, r->method, strlen(r->method) + 1); /* valid_method: at most 6 */
  return 0;
}

/* Hands a prepared transfer to libcurl, with what is left of its time. */
static int activate(authloop__transport *t, authloop__transfer *x, uint64_t left_ms) {
  CURL *e;
  if (!(x->easy = e = easy_take(t)))
    return AUTHLOOP_ENOMEM;
  /* failing these (libcurl out of memory) would leave a weaker default
   * behind, a proxy for plain http: the request fails instead */
  if (curl_easy_setopt(e, CURLOPT_CURLU, x->url) != CURLE_OK ||
      curl_easy_setopt(e, CURLOPT_PROXY, x->plain ? "" : NULL) != CURLE_OK)
    return AUTHLOOP_ENOMEM;
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
#if LIBCURL_VERSION_NUM >= 0x075000
  curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
#else
  x->prereq = 1; /* a kept handle was reset: its transfer info is this transfer's */
#endif
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left_ms);
  /* the method, every time: a kept handle has the last transfer's */
  if (x->method == 0) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    /* an empty body unless one is set: POST needs one, DELETE/PUT may have one */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(x->body ? strlen(x->body) : 0));
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method == 2 ? x->custom : NULL);
  }
  if (curl_multi_add_handle(t->multi, e) != CURLM_OK)
    return AUTHLOOP_ENOMEM;
  x->queued = 0;
  x->in_multi = 1;
  x->line->active++;
  t->activated = 1;
  return 0;
}

/* Transfers wait in their server's line while libcurl has as many for it as
 * it can send at once: more would only wait inside libcurl for a connection,
 * an easy handle each, their time running (at a million sessions due
 * together, gigabytes, then timeouts that close connections and count as the
 * server's failures). One line per server, so that a dead server's
 * transfers never hold up another's. One that waited half its time is failed
 * ETIMEDOUT unsent (outcome.waited: it says nothing of the network): the
 * server is not keeping up, and the caller's backoff spreads the load. */

static unsigned line_cap(const authloop__transport *t, const struct line *l) {
  if (!l->multiplexed)
    return t->max_host;
  return t->max_host > UINT_MAX / STREAMS_PER_CONNECTION ? UINT_MAX
                                                         : t->max_host * STREAMS_PER_CONNECTION;
}

#define LINES_KEPT 8 /* empty lines kept for the next transfers */

/* The line key of a plain absolute URL, read from its text: "scheme://host
 * port", the host lower-cased, the port written (the scheme's default when
 * the URL has none). 0 when the URL is not that plain (user info, an IPv6
 * literal, an escape or a byte past ASCII in the host, an odd port): then
 * libcurl's parse makes the key. */
static int plain_key(const char *url, char *out, size_t size) {
  const char *rest, *auth, *end, *colon;
  size_t sl, hl, pl, i;
  const char *port;
  if (strncmp(url, "https://", 8) == 0)
    sl = 5;
  else if (strncmp(url, "http://", 7) == 0)
    sl = 4;
  else
    return 0;
  auth = url + sl + 3;
  end = auth + strcspn(auth, "/?#");
  rest = memchr(auth, '@', (size_t)(end - auth));
  if (rest || auth == end || *auth == '[')
    return 0;
  colon = memchr(auth, ':', (size_t)(end - auth));
  hl = (size_t)((colon ? colon : end) - auth);
  if (colon) {
    port = colon + 1;
    pl = (size_t)(end - port);
    if (pl == 0 || pl > 5 || port[0] == '0')
      return 0;
    for (i = 0; i < pl; i++)
      if (port[i] < '0' || port[i] > '9')
        return 0;
  } else {
    port = sl == 5 ? "443" : "80";
    pl = strlen(port);
  }
  if (hl == 0 || sl + 3 + hl + 1 + pl + 1 > size)
    return 0;
  memcpy(out, url, sl);
  memcpy(out + sl, "://", 3);
  for (i = 0; i < hl; i++) {
    unsigned char ch = (unsigned char)auth[i];
    if (ch == '%' || ch >= 0x80 || ch <= ' ')
      return 0;
    out[sl + 3 + i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  }
  out[sl + 3 + hl] = ' '; /* a host never has a space */
  memcpy(out + sl + 4 + hl, port, pl);
  out[sl + 4 + hl + pl] = '\0';
  return 1;
}

/* The same key from libcurl's parse of the URL: 0 or AUTHLOOP_ENOMEM. */
static int parsed_key(CURLU *url, char *out, size_t size) {
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = AUTHLOOP_ENOMEM;
  size_t n;
  if (curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    for (n = 0; host[n]; n++) /* host names compare without case, as libcurl's limit does */
      if (host[n] >= 'A' && host[n] <= 'Z')
        host[n] = (char)(host[n] - 'A' + 'a');
    snprintf(out, size, "%s://%s %s", scheme, host, port); /* a longer host: cut, still one */
    rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  return rc;
}

int authloop__line_key(const char *url, char *out, size_t size) {
  CURLU *u;
  int rc;
  if (plain_key(url, out, size))
    return 0;
  if (!(u = curl_url()))
    return AUTHLOOP_ENOMEM;
  rc = curlu_rc(curl_url_set(u, CURLUPART_URL, url, 0));
  if (rc == 0)
    rc = parsed_key(u, out, size);
  curl_url_cleanup(u);
  return rc;
}

/* x's server's line, made when it has none: 0 or AUTHLOOP_ENOMEM. */
static int line_join(authloop__transport *t, authloop__transfer *x, const char *key) {
  struct line *l = NULL;
  authloop__link *k;
  size_t n;
  for (k = t->lines.next; k != &t->lines; k = k->next) {
    struct line *m = AUTHLOOP__CONTAINER_OF(k, struct line, link);
    if (strcmp(m->key, key) == 0) {
      l = m;
      break;
    }
  }
  if (!l) {
    n = strlen(key) + 1;
    if (!(l = malloc(sizeof(*l) + n)))
      return AUTHLOOP_ENOMEM;
    memcpy(l->key, key, n);
    l->active = 0;
    l->multiplexed = 0;
    authloop__list_init(&l->waiting);
    authloop__list_push(&t->lines, &l->link);
  }
  x->line = l;
  return 0;
}

/* Frees the lines nothing is in, past the first LINES_KEPT (and but those
 * of servers that answered over HTTP/2: as few as the servers the ctx talks
 * to). Not while a pump walks them. */
static void line_gc(authloop__transport *t) {
  authloop__link *k = t->lines.next;
  unsigned kept = 0;
  if (t->pumping)
    return;
  while (k != &t->lines) {
    struct line *l = AUTHLOOP__CONTAINER_OF(k, struct line, link);
    k = k->next;
    /* a server that multiplexes keeps its line: what it said stays known;
     * a few empty ones stay for the next transfers (no malloc each time) */
    if (!l->active && authloop__list_empty(&l->waiting) && !l->multiplexed && ++kept > LINES_KEPT) {
      authloop__list_remove(&l->link);
      free(l);
    }
  }
}

static void on_queue_timer(uv_timer_t *h) {
  authloop__transport *t = h->data;
  pump(t);
  line_gc(t);
}

/* The queue timer, for the first time one waiting in line has waited half
 * its time; stopped when nobody waits. */
static void arm_deadline(authloop__transport *t) {
  uint64_t first = UINT64_MAX, now, half = (uint64_t)t->timeout_ms / 2 * 1000000;
  authloop__link *k;
  for (k = t->lines.next; k != &t->lines; k = k->next) {
    struct line *l = AUTHLOOP__CONTAINER_OF(k, struct line, link);
    if (!authloop__list_empty(&l->waiting)) {
      authloop__transfer *x = AUTHLOOP__CONTAINER_OF(l->waiting.next, authloop__transfer, qlink);
      if (x->started_ns < first)
        first = x->started_ns;
    }
  }
  if (first == UINT64_MAX || t->closing) {
    uv_timer_stop(&t->queue_timer);
    return;
  }
  now = uv_hrtime();
  /* rounded up: the timer must not fire before the head is due */
  uv_timer_start(&t->queue_timer, on_queue_timer,
                 first + half > now ? (first + half - now + 999999) / 1000000 : 0, 0);
}

/* Moves every line on: fails those that waited half their time, hands
 * libcurl what it has room for. From the loop only (a failure calls back). */
static void pump(authloop__transport *t) {
  authloop__link *k;
  uint64_t limit = t->timeout_ms;
  if (t->pumping)
    return; /* a failure's callback ended another: the loop below goes on */
  t->pumping = 1;
  for (k = t->lines.next; k != &t->lines && !t->closing; k = k->next) {
    struct line *l = AUTHLOOP__CONTAINER_OF(k, struct line, link);
    while (!authloop__list_empty(&l->waiting)) {
      authloop__transfer *x = AUTHLOOP__CONTAINER_OF(l->waiting.next, authloop__transfer, qlink);
      uint64_t now = uv_hrtime(); /* a callback may have taken time, or started x */
      uint64_t waited = now > x->started_ns ? (now - x->started_ns) / 1000000 : 0;
      int rc;
      if (waited < limit / 2 && l->active >= line_cap(t, l))
        break;
      authloop__list_remove(&x->qlink);
      authloop__list_init(&x->qlink);
      x->queued = 0;
      if (waited >= limit / 2) {
        snprintf(x->errbuf, sizeof(x->errbuf), "waited %llu ms for a connection",
                 (unsigned long long)waited);
        finish(x, AUTHLOOP_ETIMEDOUT);
      } else if ((rc = activate(t, x, limit - waited)) != 0) {
        finish(x, rc);
      }
    }
  }
  t->pumping = 0;
  arm_deadline(t);
}

/* From an API call (an abort): the lines move on from the loop. */
static void pump_later(authloop__transport *t) {
  authloop__link *k;
  if (t->closing)
    return;
  for (k = t->lines.next; k != &t->lines; k = k->next)
    if (!authloop__list_empty(&AUTHLOOP__CONTAINER_OF(k, struct line, link)->waiting)) {
      uv_timer_start(&t->queue_timer, on_queue_timer, 0, 0);
      return;
    }
}

int authloop__transport_start(authloop__transport *t, const authloop__request *r,
                              authloop__transfer_cb cb, void *ud, authloop__transfer **out) {
  authloop__transfer *x;
  struct authloop__base *b = NULL;
  int rc;
  if (t->closing)
    return AUTHLOOP_ECLOSING;
  if (!(x = calloc(1, sizeof(*x))))
    return AUTHLOOP_ENOMEM;
  x->t = t;
  authloop__list_init(&x->link);
  authloop__list_init(&x->qlink);
  if ((rc = prepare(t, x, r, &b)) != 0) {
    transfer_free(x);
    return rc;
  }
  x->cb = cb;
  x->ud = ud;
  x->started_ns = uv_hrtime();
  if ((rc = line_join(t, x, b->key)) != 0) {
    transfer_free(x);
    line_gc(t);
    return rc;
  }
  if (x->line->active < line_cap(t, x->line) && authloop__list_empty(&x->line->waiting)) {
    if ((rc = activate(t, x, t->timeout_ms)) != 0) {
      transfer_free(x);
      line_gc(t);
      return rc;
    }
  } else {
    x->queued = 1;
    authloop__list_push(&x->line->waiting, &x->qlink);
    if (!uv_is_active((uv_handle_t *)&t->queue_timer))
      arm_deadline(t);
  }
  authloop__list_push(&t->transfers, &x->link);
  authloop__logf(t->log, AUTHLOOP_LOG_DEBUG, "%s%s", label(x), x->queued ? " (waits)" : "");
  if (out)
    *out = x;
  return 0;
}

/* Takes x out of libcurl or out of the line. */
static void detach(authloop__transfer *x) {
  authloop__transport *t = x->t;
  if (x->queued) {
    authloop__list_remove(&x->qlink);
    authloop__list_init(&x->qlink);
    x->queued = 0;
  } else if (x->in_multi) {
    curl_multi_remove_handle(t->multi, x->easy);
  }
}

void authloop__transfer_abort(authloop__transfer *x) {
  authloop__transport *t;
  if (!x)
    return;
  t = x->t;
  detach(x);
  transfer_free(x);
  line_gc(t);
  pump_later(t);
}

void authloop__transport_cancel_all(authloop__transport *t, int spare_lingering) {
  authloop__link *l = t->transfers.next;
  int pumping = t->pumping;
  /* every one ends ECANCELED: the line does not move (nor fail the stale)
   * meanwhile */
  t->pumping = 1;
  while (l != &t->transfers) {
    authloop__transfer *x = AUTHLOOP__CONTAINER_OF(l, authloop__transfer, link);
    if (spare_lingering && x->linger) {
      l = l->next;
      continue;
    }
    detach(x);
    finish(x, AUTHLOOP_ECANCELED); /* its callback may end others: start over */
    l = t->transfers.next;
  }
  t->pumping = pumping;
  if (!pumping && spare_lingering)
    pump_later(t); /* what lingers moves on, from the loop */
  line_gc(t);
}

unsigned authloop__transport_in_libcurl(const authloop__transport *t) {
  const authloop__link *k;
  unsigned n = 0;
  for (k = t->lines.next; k != &t->lines; k = k->next)
    n += AUTHLOOP__CONTAINER_OF(k, const struct line, link)->active;
  return n;
}

unsigned authloop__transport_watchers(const authloop__transport *t, const uv_poll_t **active) {
  const authloop__link *k;
  unsigned n = 0;
  *active = NULL;
  for (k = t->sockets.next; k != &t->sockets; k = k->next, n++) {
    const uv_poll_t *p = &AUTHLOOP__CONTAINER_OF(k, const sock, link)->poll;
    if (!*active && uv_is_active((const uv_handle_t *)p))
      *active = p;
  }
  return n;
}

int authloop__transport_busy(const authloop__transport *t) {
  return !authloop__list_empty(&t->transfers);
}
