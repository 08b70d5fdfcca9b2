/* SPDX-License-Identifier: MIT */
/* libFuzzer: a whole login of every dialect, one answer after another, the
 * state carried from step to step as the session engine carries it: the
 * first byte picks the dialect and the credential, then each answer is
 * [status index][length, 2 bytes little-endian][body] (no NUL after it).
 * Every request a step describes must build into a URL with no byte that
 * could break a request line, and every header value must pass the header
 * rule or be refused by it; a refused answer keeps nothing. */
#include "providers/builtin.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

static const authloop__provider *const providers[] = {
    &authloop__provider_gateway, &authloop__provider_kuzzle, &authloop__provider_kuzzle,
    &authloop__provider_cometchat};

static void check_request(const authloop__request *r) {
  char *url;
  size_t i;
  if (authloop__request_url(r, &url) == 0) {
    for (i = 0; url[i]; i++)
      if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] == 0x7f)
        abort();
    curl_free(url);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const long statuses[] = {200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 503};
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop__provider_env env = {0};
  authloop__credential cred = {0};
  const char *bases[AUTHLOOP__MAX_BASES] = {0};
  const authloop__provider *p;
  char *access = NULL;
  void *st = NULL;
  size_t off = 1;
  int step, kind, steps = 0;
  if (size < 1)
    return 0;
  kind = data[0] % 4;
  p = providers[kind];
  env.user_agent = "fuzz";
  o.base_url = "https://127.0.0.1:1/base/";
  o.app_id = kind == 3 ? "app1" : NULL;
  if (p->init(&o, &env, &st, bases) != 0)
    abort();
  switch (kind) {
  case 0:
    cred.kind = AUTHLOOP__CRED_CODE;
    cred.code = "code-1";
    break;
  case 1:
    cred.kind = AUTHLOOP__CRED_STRATEGY;
    cred.strategy = "lo/cal";
    cred.credentials_json = "{\"username\":\"u\",\"password\":\"p\"}";
    cred.expires_in = "1 hour";
    break;
  case 2:
    cred.kind = AUTHLOOP__CRED_TOKEN; /* completing a two-step strategy */
    cred.token = "kauth-token";
    break;
  default:
    cred.kind = AUTHLOOP__CRED_UID_KEY;
    cred.uid = " uid/1 ";
    cred.key = "authkey-1";
  }
  if (p->login_start(st, &cred, &step) != 0)
    abort();
  while (off + 3 <= size && steps++ < 8) {
    size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
    authloop__request req = {0};
    authloop__answer a = {0};
    authloop__result r = {0};
    authloop__view v = {0};
    char *body;
    v.access_token = access;
    v.now_wall_ms = 1795334400000LL;
    v.now_ms = 1000000000LL;
    if (p->login_request(st, &v, step, &req) == 0)
      check_request(&req);
    authloop__request_clear(&req);
    if (len > size - off - 3)
      len = size - off - 3;
    body = malloc(len ? len : 1); /* exactly the bytes: nothing may read past them */
    memcpy(body, data + off + 3, len);
    a.status = statuses[data[off] % (sizeof(statuses) / sizeof(statuses[0]))];
    a.body = body;
    a.len = len;
    a.date_ms = data[off] & 0x80 ? 1795334400000LL : 0;
    off += 3 + len;
    p->login_answer(st, &v, step, &a, &r);
    free(body);
    if (r.error && (r.access_token || r.user))
      abort();
    if (r.access_token) { /* carried into the next step, as the engine does */
      authloop__secret_free(access);
      access = r.access_token;
      r.access_token = NULL;
    }
    step = r.step;
    if (r.error || r.next != AUTHLOOP__NEXT_STEP) {
      authloop__result_clear(&r);
      break;
    }
    authloop__result_clear(&r);
  }
  p->login_end(st);
  p->free(st);
  authloop__secret_free(access);
  return 0;
}
