/* libcurl's multi socket API on libuv: one uv_poll_t per socket curl asks us
 * to watch, one uv_timer_t for curl's timeout, completions drained after every
 * socket action. One multi handle per ctx is the connection pool all its
 * clients share; the share handle adds DNS and TLS session reuse. */
#include "internal.h"

#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define AUTHLOOP__MAX_HEADER_BYTES (64 * 1024)

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
  authloop_ctx *ctx;
  authloop__link link; /* in ctx->sockets until its close callback */
} authloop__sock;

static void handle_closed(uv_handle_t *h) { authloop__handle_closed(h->data); }

static void sock_closed(uv_handle_t *h) {
  authloop__sock *sk = AUTHLOOP__CONTAINER_OF(h, authloop__sock, poll);
  authloop_ctx *ctx = sk->ctx;
  authloop__list_remove(&sk->link);
  free(sk);
  authloop__handle_closed(ctx);
}

static void sock_close(authloop__sock *sk) {
  if (!uv_is_closing((uv_handle_t *)&sk->poll))
    uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

/* ---- completion ------------------------------------------------------------ */

static const char *req_label(const authloop__req *req) {
  return req->target ? req->target : "request";
}

static int map_curl_error(const authloop__req *req, CURLcode rc) {
  if (req->overflow)
    return AUTHLOOP_ETOOLARGE;
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return AUTHLOOP_ETIMEDOUT;
  case CURLE_FILESIZE_EXCEEDED:
    return AUTHLOOP_ETOOLARGE;
  case CURLE_OUT_OF_MEMORY:
    return AUTHLOOP_ENOMEM;
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

static void req_finish(authloop__req *req, int error) {
  authloop_ctx *ctx = req->ctx;
  uint64_t ms = uv_hrtime() / 1000000 - req->started_ms;
  req->error = error;
  if (!error) {
    curl_off_t retry_after = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->http_status);
    /* seconds, from either form of the header (delay or HTTP date) */
    if (curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
        retry_after > 0 && retry_after < 24 * 3600)
      req->retry_after_ms = (long long)retry_after * 1000;
  }
  authloop__ctx_note_result(ctx, error);
  if (error)
    authloop__log(ctx, AUTHLOOP_LOG_WARN, "%s failed after %llu ms: %s (%s)", req_label(req),
                  (unsigned long long)ms, authloop_err_name(error),
                  req->errbuf[0] ? req->errbuf : authloop_strerror(error));
  else
    authloop__log(ctx, AUTHLOOP_LOG_DEBUG, "%s -> %ld in %llu ms", req_label(req), req->http_status,
                  (unsigned long long)ms);
  authloop__list_remove(&req->link);
  authloop__list_remove(&req->owner_link);
  req->cb(req, req->userdata);
  req->cb = NULL;
  authloop__req_free(req);
}

static void drain(authloop_ctx *ctx) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(ctx->multi, &left))) {
    authloop__req *req = NULL;
    CURLcode rc;
    if (msg->msg != CURLMSG_DONE)
      continue;
    rc = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
    curl_multi_remove_handle(ctx->multi, msg->easy_handle);
    req_finish(req, rc == CURLE_OK && !req->overflow ? 0 : map_curl_error(req, rc));
  }
}

/* ---- curl -> libuv ------------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events) {
  authloop__sock *sk = h->data;
  authloop_ctx *ctx = sk->ctx;
  int flags = 0, running;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  curl_multi_socket_action(ctx->multi, sk->fd, flags, &running);
  drain(ctx);
}

static void on_curl_timer(uv_timer_t *t) {
  authloop_ctx *ctx = t->data;
  int running;
  curl_multi_socket_action(ctx->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain(ctx);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  authloop_ctx *ctx = userp;
  authloop__sock *sk = socketp;
  int events = 0;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (sk) {
      curl_multi_assign(ctx->multi, s, NULL);
      sock_close(sk);
    }
    return 0;
  }
  if (!sk) {
    sk = calloc(1, sizeof(*sk));
    if (!sk)
      return -1;
    if (uv_poll_init_socket(ctx->loop, &sk->poll, s) != 0) {
      free(sk);
      return -1;
    }
    sk->fd = s;
    sk->ctx = ctx;
    sk->poll.data = sk;
    ctx->open_handles++;
    authloop__list_push(&ctx->sockets, &sk->link);
    curl_multi_assign(ctx->multi, s, sk);
  }
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  return uv_poll_start(&sk->poll, events, on_poll) == 0 ? 0 : -1;
}

/* Never calls curl from here: a 0 ms timer runs on the next loop turn. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  authloop_ctx *ctx = userp;
  (void)multi;
  if (timeout_ms < 0)
    uv_timer_stop(&ctx->curl_timer);
  else
    uv_timer_start(&ctx->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

int authloop__transport_init(authloop_ctx *ctx) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return AUTHLOOP_ENOMEM;
  ctx->multi = curl_multi_init();
  ctx->share = curl_share_init();
  if (!ctx->multi || !ctx->share) {
    curl_multi_cleanup(ctx->multi);
    curl_share_cleanup(ctx->share);
    curl_global_cleanup();
    return AUTHLOOP_ENOMEM;
  }
  curl_share_setopt(ctx->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(ctx->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_multi_setopt(ctx->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(ctx->multi, CURLMOPT_SOCKETDATA, ctx);
  curl_multi_setopt(ctx->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(ctx->multi, CURLMOPT_TIMERDATA, ctx);
  curl_multi_setopt(ctx->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)ctx->max_host_connections);
  uv_timer_init(ctx->loop, &ctx->curl_timer);
  ctx->curl_timer.data = ctx;
  ctx->open_handles++;
  return 0;
}

/* Stops watching every socket while its fd is still open, lets curl close
 * its connections, then closes whatever handles remain. */
void authloop__transport_close(authloop_ctx *ctx) {
  authloop__link *l;
  for (l = ctx->sockets.next; l != &ctx->sockets; l = l->next) {
    uv_poll_t *p = &AUTHLOOP__CONTAINER_OF(l, authloop__sock, link)->poll;
    if (!uv_is_closing((uv_handle_t *)p))
      uv_poll_stop(p);
  }
  curl_multi_cleanup(ctx->multi);
  curl_share_cleanup(ctx->share);
  curl_global_cleanup();
  ctx->multi = NULL;
  ctx->share = NULL;
  for (l = ctx->sockets.next; l != &ctx->sockets; l = l->next)
    sock_close(AUTHLOOP__CONTAINER_OF(l, authloop__sock, link));
  uv_close((uv_handle_t *)&ctx->curl_timer, handle_closed);
  uv_close((uv_handle_t *)&ctx->dispatcher, handle_closed);
}

/* ---- requests ------------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userp) {
  authloop__req *req = userp;
  size_t n = size * nmemb, limit = req->ctx->max_body_bytes;
  if (n > limit - req->resp.len) {
    req->overflow = 1;
    return 0; /* aborts the transfer */
  }
  if (req->resp.len + n + 1 > req->resp.cap) {
    size_t cap = req->resp.cap ? req->resp.cap : 1024;
    char *p;
    while (cap < req->resp.len + n + 1)
      cap *= 2;
    if (cap > limit + 1)
      cap = limit + 1;
    p = malloc(cap);
    if (!p)
      return 0;
    if (req->resp.len) {
      memcpy(p, req->resp.data, req->resp.len);
      mbedtls_platform_zeroize(req->resp.data, req->resp.len);
    }
    free(req->resp.data);
    req->resp.data = p;
    req->resp.cap = cap;
  }
  memcpy(req->resp.data + req->resp.len, ptr, n);
  req->resp.len += n;
  req->resp.data[req->resp.len] = '\0';
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userp) {
  authloop__req *req = userp;
  size_t n = size * nmemb;
  req->header_bytes += n;
  if (req->header_bytes > AUTHLOOP__MAX_HEADER_BYTES) {
    req->overflow = 1;
    return 0;
  }
  /* the server's clock, kept as text: parsed only by a dialect that needs it */
  if (n > 5 && n - 5 < sizeof(req->server_date) && strncasecmp(ptr, "date:", 5) == 0) {
    memcpy(req->server_date, ptr + 5, n - 5);
    req->server_date[n - 5] = '\0';
  }
  return n;
}

/* "METHOD scheme://host[:port]/path": what a log line may show of a URL. */
static char *log_target(const char *method, const char *url) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *out = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
    size_t n;
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    n = strlen(method) + strlen(scheme) + strlen(host) + strlen(path) + (port ? strlen(port) : 0) +
        8;
    out = malloc(n);
    if (out)
      snprintf(out, n, "%s %s://%s%s%s%s", method, scheme, host, port ? ":" : "", port ? port : "",
               path);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_url_cleanup(u);
  return out;
}

int authloop__req_new(authloop_ctx *ctx, const char *method, const char *url, authloop__req **out) {
  authloop__req *req;
  CURL *e;
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  req = calloc(1, sizeof(*req));
  if (!req)
    return AUTHLOOP_ENOMEM;
  authloop__list_init(&req->link);
  authloop__list_init(&req->owner_link);
  req->ctx = ctx;
  req->retry_after_ms = -1;
  /* a label for log lines, only when someone reads them (it costs a URL parse) */
  req->target = ctx->log_cb ? log_target(method, url) : NULL;
  req->easy = e = curl_easy_init();
  if ((ctx->log_cb && !req->target) || !e ||
      !(req->headers = curl_slist_append(NULL, "Accept: application/json")) ||
      !(req->headers = curl_slist_append(req->headers, "Expect:"))) {
    authloop__req_free(req);
    return AUTHLOOP_ENOMEM;
  }
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, req);
  curl_easy_setopt(e, CURLOPT_SHARE, ctx->share);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (ctx->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, ctx->ca_file);
  curl_easy_setopt(e, CURLOPT_USERAGENT, ctx->user_agent);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ctx->timeout_ms);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ctx->max_body_bytes);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
  if (strcmp(method, "GET") == 0)
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  else {
    /* an empty body unless one is set: POST needs one, DELETE/PUT may have one */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    if (strcmp(method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  *out = req;
  return 0;
}

int authloop__req_add_header(authloop__req *req, const char *header) {
  struct curl_slist *l = curl_slist_append(req->headers, header);
  if (!l)
    return AUTHLOOP_ENOMEM;
  req->headers = l;
  return 0;
}

int authloop__req_add_header2(authloop__req *req, const char *name, const char *value) {
  size_t n = strlen(name) + strlen(value) + 3;
  char *h = malloc(n);
  int rc;
  if (!h)
    return AUTHLOOP_ENOMEM;
  snprintf(h, n, "%s: %s", name, value);
  rc = authloop__req_add_header(req, h);
  mbedtls_platform_zeroize(h, n); /* the value may be a token */
  free(h);
  return rc;
}

int authloop__req_set_bearer(authloop__req *req, const char *token) {
  size_t n = strlen("Bearer ") + strlen(token) + 1;
  char *v = malloc(n);
  int rc;
  if (!v)
    return AUTHLOOP_ENOMEM;
  snprintf(v, n, "Bearer %s", token);
  rc = authloop__req_add_header2(req, "Authorization", v);
  authloop__secret_free(v);
  return rc;
}

int authloop__req_set_body(authloop__req *req, const char *json_text) {
  char *copy = authloop__secret_dup(json_text);
  int rc;
  if (!copy)
    return AUTHLOOP_ENOMEM;
  if ((rc = authloop__req_add_header(req, "Content-Type: application/json")) != 0) {
    authloop__secret_free(copy);
    return rc;
  }
  authloop__secret_free(req->body);
  req->body = copy;
  curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, req->body);
  curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(req->body));
  return 0;
}

int authloop__req_set_json(authloop__req *req, const json_t *body) {
  char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
  int rc;
  if (!s)
    return AUTHLOOP_ENOMEM;
  rc = authloop__req_set_body(req, s);
  authloop__secret_free(s);
  return rc;
}

int authloop__req_json(authloop_ctx *ctx, const char *method, const char *url, const json_t *body,
                       authloop__req **out) {
  int rc = authloop__req_new(ctx, method, url, out);
  if (rc == 0 && body && (rc = authloop__req_set_json(*out, body)) != 0)
    authloop__req_free(*out);
  return rc;
}

int authloop__req_start(authloop__req *req, authloop__req_cb cb, void *userdata) {
  authloop_ctx *ctx = req->ctx;
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
  req->cb = cb;
  req->userdata = userdata;
  req->started_ms = uv_hrtime() / 1000000;
  if (curl_multi_add_handle(ctx->multi, req->easy) != CURLM_OK) {
    req->cb = NULL;
    return AUTHLOOP_ENOMEM;
  }
  authloop__list_push(&ctx->reqs, &req->link);
  authloop__log(ctx, AUTHLOOP_LOG_DEBUG, "%s", req_label(req));
  return 0;
}

void authloop__req_free(authloop__req *req) {
  struct curl_slist *h;
  if (!req)
    return;
  if (req->cb) /* started and not finished: abort quietly */
    curl_multi_remove_handle(req->ctx->multi, req->easy);
  authloop__list_remove(&req->link);
  authloop__list_remove(&req->owner_link);
  curl_easy_cleanup(req->easy);
  for (h = req->headers; h; h = h->next)
    mbedtls_platform_zeroize(h->data, strlen(h->data));
  curl_slist_free_all(req->headers);
  authloop__secret_free(req->body);
  if (req->resp.data)
    mbedtls_platform_zeroize(req->resp.data, req->resp.cap);
  free(req->resp.data);
  free(req->target);
  free(req);
}

void authloop__req_cancel_all(authloop_ctx *ctx) {
  while (!authloop__list_empty(&ctx->reqs)) {
    authloop__req *req = AUTHLOOP__CONTAINER_OF(ctx->reqs.next, authloop__req, link);
    curl_multi_remove_handle(ctx->multi, req->easy);
    req_finish(req, AUTHLOOP_ECANCELED);
  }
}
