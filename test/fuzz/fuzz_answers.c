/* SPDX-License-Identifier: MIT */
/* libFuzzer: any bytes as a server's answer, at any HTTP status, with or
 * without a Date header, to every answer reader of every dialect (each login
 * step, refresh, logout, the session-gone check, pre-auth), plus the JWT
 * lifetime reader. Nothing may crash, leak or read out of bounds (built with
 * ASan and UBSan), and a refused answer keeps nothing. */
#include "jwt.h"
#include "providers/builtin.h"

#include "policy.h"

#include <stdlib.h>
#include <string.h>

static const authloop__provider *const providers[] = {
    &authloop__provider_gateway, &authloop__provider_kuzzle, &authloop__provider_cometchat,
    &authloop__provider_cognito, &authloop__provider_oidc};
#define N_PROVIDERS (sizeof(providers) / sizeof(providers[0]))
static void *states[N_PROVIDERS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop__provider_env env = {0};
  authloop__credential cred = {0};
  const char *bases[AUTHLOOP__MAX_BASES];
  size_t i;
  int step;
  (void)argc;
  (void)argv;
  env.user_agent = "fuzz";
  o.base_url = "https://127.0.0.1:1";
  for (i = 0; i < N_PROVIDERS; i++) {
    o.app_id = i == 2 ? "app1" : NULL;
    o.client_id = i >= 3 ? "client1" : NULL;
    if (providers[i]->init(&o, &env, &states[i], bases) != 0)
      abort();
  }
  /* a token that kuzzle's checkToken step and cometchat's token login hold */
  cred.kind = AUTHLOOP__CRED_TOKEN;
  cred.token = "kauth-token";
  if (providers[1]->login_start(states[1], &cred, &step) != 0 ||
      providers[2]->login_start(states[2], &cred, &step) != 0)
    abort();
  return 0;
}

static void check(authloop__result *r) {
  if (r->error && (r->access_token || r->user))
    abort(); /* a refused answer keeps nothing */
  authloop__result_clear(r);
}

static long long int64_at(const uint8_t *p) {
  unsigned long long v = 0;
  int i;
  for (i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return (long long)v;
}

/* The clocks and Retry-After of an answer, as hostile as its body: any
 * 64-bit value. A retry is never later than the token's expiry when the
 * token is still alive, and never before now. */
static void check_times(const uint8_t *t) {
  uint64_t now = (uint64_t)int64_at(t), expires = (uint64_t)int64_at(t + 8);
  long long retry_after = int64_at(t + 16);
  uint64_t at = authloop__retry_at(now, (uint64_t)int64_at(t + 24), retry_after, expires);
  if (at < now || (now < expires && at > expires))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const long statuses[] = {200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 503};
  authloop__answer a = {0};
  authloop__view v = {0};
  authloop__result r;
  char *body;
  size_t i;
  int step;
  long long secs;
  if (size < 1)
    return 0;
  body = malloc(size); /* the first byte picks the status; the rest is the body */
  memcpy(body, data + 1, size - 1);
  body[size - 1] = '\0';
  a.body = body;
  a.len = size - 1;
  a.status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
  a.date_ms = data[0] & 0x80 ? 1795334400000LL : 0;
  v.access_token = data[0] & 0x40 ? "tok" : NULL;
  v.now_wall_ms = 1795334400000LL;
  if (size > 33) { /* the last 32 bytes: the server's Date, our clock, Retry-After */
    const uint8_t *t = data + size - 32;
    check_times(t);
    if (data[0] & 0x20) {
      a.date_ms = int64_at(t);
      v.now_wall_ms = int64_at(t + 8);
    }
  }
  v.now_ms = v.now_wall_ms; /* as bounded as it (check_times) */
  for (i = 0; i < N_PROVIDERS; i++) {
    const authloop__provider *p = providers[i];
    for (step = 0; step < 5; step++) { /* oidc has five */
      memset(&r, 0, sizeof(r));
      p->login_answer(states[i], &v, step, &a, &r);
      check(&r);
    }
    if (p->refresh_answer) {
      memset(&r, 0, sizeof(r));
      p->refresh_answer(states[i], &v, &a, &r);
      check(&r);
    }
    memset(&r, 0, sizeof(r));
    p->logout_answer(states[i], &a, &r);
    check(&r);
    p->session_gone(states[i], &a);
    if (p->preauth_answer) {
      memset(&r, 0, sizeof(r));
      p->preauth_answer(&a, &r);
      check(&r);
    }
  }
  authloop__jwt_lifetime(body, &secs); /* the same bytes as a token */
  {
    char *claims = NULL;
    if (authloop__jwt_claims_text(body, &claims) == 0 && !claims)
      abort();
    authloop__secret_free(claims);
  }
  free(body);
  return 0;
}
