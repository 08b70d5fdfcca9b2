/* libFuzzer: any bytes as a server's answer, at any HTTP status, to every
 * answer parser of every dialect (login steps, refresh, logout, the session-
 * gone check), plus the JWT lifetime reader. Nothing may crash, leak or read
 * out of bounds (built with ASan and UBSan). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static authloop_ctx *ctx;
static authloop_client *clients[3];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  static const char *const names[] = {"gateway", "kuzzle", "cometchat"};
  authloop_client_options o = {0};
  int i;
  (void)argc;
  (void)argv;
  uv_loop_init(&loop);
  if (authloop_ctx_new(&loop, NULL, &ctx) != 0)
    abort();
  for (i = 0; i < 3; i++) {
    o.provider = names[i];
    o.base_url = "https://127.0.0.1:1";
    o.app_id = "app1";
    if (authloop_client_new(ctx, &o, &clients[i]) != 0)
      abort();
    clients[i]->login.token = strdup("kauth-token");
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const long statuses[] = {200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 503};
  static const int steps[] = {0, 1, AUTHLOOP__KUZZLE_CHECK_STEP, AUTHLOOP__KUZZLE_CHECK_STEP + 1};
  authloop__req req;
  char *body;
  size_t i, s, k;
  long secs;
  if (size < 1)
    return 0;
  memset(&req, 0, sizeof(req));
  body = malloc(size); /* the first byte picks the status; the rest is the body */
  memcpy(body, data + 1, size - 1);
  req.resp.data = body;
  req.resp.len = size - 1;
  req.http_status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
  if (data[0] & 0x80)
    strcpy(req.server_date, " Sun, 22 Nov 2026 08:00:00 GMT");
  for (i = 0; i < 3; i++) {
    authloop_client *c = clients[i];
    const authloop__provider *p = c->provider;
    authloop__session sess = {0};
    authloop__failure f = {0};
    for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
      p->login_response(c, steps[k], &req, &sess, &f);
      authloop__session_clear(&sess);
      authloop__failure_clear(&f);
    }
    if (p->refresh_response) {
      p->refresh_response(c, &req, &sess, &f);
      authloop__session_clear(&sess);
      authloop__failure_clear(&f);
    }
    p->logout_response(c, &req, &f);
    authloop__failure_clear(&f);
    p->session_gone(&req);
  }
  /* the JWT reader, on the same bytes as a token */
  {
    char *tok = malloc(size);
    memcpy(tok, data + 1, size - 1);
    tok[size - 1] = '\0';
    authloop__jwt_lifetime(tok, &secs);
    free(tok);
  }
  (void)s;
  free(body);
  return 0;
}
