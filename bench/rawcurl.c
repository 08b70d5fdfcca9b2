/* SPDX-License-Identifier: MIT */
#include "rawcurl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
  rawcurl *r;
} sock;

static size_t collect(char *p, size_t size, size_t k, void *ud) {
  rawcurl *r = ud;
  size_t len = size * k;
  if (r->body_len + len >= sizeof(r->body))
    return 0;
  memcpy(r->body + r->body_len, p, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return len;
}

void rawcurl_request(rawcurl *r, const char *method, const char *url, const char *json,
                     const char *bearer) {
  char auth[4200];
  curl_slist_free_all(r->headers);
  r->headers = json ? curl_slist_append(NULL, "Content-Type: application/json") : NULL;
  if (bearer) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
    r->headers = curl_slist_append(r->headers, auth);
  }
  r->body_len = 0;
  curl_easy_setopt(r->easy, CURLOPT_URL, url);
  curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
  } else {
    snprintf(r->post, sizeof(r->post), "%s", json ? json : "");
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->post);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->post));
  }
  curl_multi_add_handle(r->hub->multi, r->easy);
}

int rawcurl_take(const rawcurl *r, const char *key, char *out, size_t cap) {
  char pattern[64];
  const char *v, *end;
  snprintf(pattern, sizeof(pattern), "\"%s\":\"", key);
  if (!(v = strstr(r->body, pattern)) || !(end = strchr(v += strlen(pattern), '"')) ||
      (size_t)(end - v) >= cap)
    return -1;
  memcpy(out, v, (size_t)(end - v));
  out[end - v] = '\0';
  return 0;
}

static void drain(rawcurl *r) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(r->multi, &left))) {
    long status = 0;
    CURLcode result = m->data.result;
    if (m->msg != CURLMSG_DONE)
      continue;
    rawcurl *c = r;
    if (r->joined) /* which client's: only when there are others */
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
    curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(r->multi, m->easy_handle);
    c->done(result == CURLE_OK ? status : 0, c->ud);
  }
}

static void on_poll(uv_poll_t *p, int status, int events) {
  sock *k = (sock *)p;
  rawcurl *r = k->r;
  int flags = status < 0 ? CURL_CSELECT_ERR : 0, running;
  if (status >= 0)
    flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) |
            (events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
  curl_multi_socket_action(r->multi, k->fd, flags, &running);
  drain(r);
}

static void on_timeout(uv_timer_t *t) {
  rawcurl *r = t->data;
  int running;
  curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain(r);
}

static void sock_closed(uv_handle_t *h) { free(h); }

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  rawcurl *r = userp;
  sock *k = socketp;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (k) {
      curl_multi_assign(r->multi, s, NULL);
      uv_close((uv_handle_t *)&k->poll, sock_closed);
    }
    return 0;
  }
  if (!k) {
    k = calloc(1, sizeof(*k));
    k->fd = s;
    k->r = r;
    uv_poll_init_socket(r->loop, &k->poll, s);
    curl_multi_assign(r->multi, s, k);
  }
  uv_poll_start(&k->poll,
                (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0),
                on_poll);
  return 0;
}

static int timer_cb(CURLM *m, long ms, void *ud) {
  rawcurl *r = ud;
  (void)m;
  if (ms < 0)
    uv_timer_stop(&r->timer);
  else
    uv_timer_start(&r->timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

static void easy_init(rawcurl *r, const char *ca) {
  r->easy = curl_easy_init();
  if (ca)
    curl_easy_setopt(r->easy, CURLOPT_CAINFO, ca);
  curl_easy_setopt(r->easy, CURLOPT_SHARE, r->hub->share);
  curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
}

void rawcurl_join(rawcurl *r, rawcurl *hub, const char *ca, rawcurl_done done, void *ud) {
  memset(r, 0, sizeof(*r));
  r->loop = hub->loop;
  r->done = done;
  r->ud = ud;
  r->hub = hub;
  hub->joined = 1;
  easy_init(r, ca);
}

void rawcurl_init(rawcurl *r, uv_loop_t *loop, const char *ca, rawcurl_done done, void *ud) {
  memset(r, 0, sizeof(*r));
  r->hub = r;
  r->loop = loop;
  r->done = done;
  r->ud = ud;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  r->multi = curl_multi_init();
  r->share = curl_share_init();
  curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
  curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
  curl_multi_setopt(r->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
  easy_init(r, ca);
}
