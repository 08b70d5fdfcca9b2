/* SPDX-License-Identifier: MIT */
/* Pre-auth: a backend mints a one-time authorization code for a user,
 * authenticating with a JWT signed by its private key. The key is loaded, used
 * and wiped inside authloop_preauth(); the request (described by the provider
 * whose dialect has pre-auth) runs on the ctx's transport like any other, and
 * the result reaches the application through the deferred-call queue. */
#include "engine.h"
#include "jwt.h"

#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREAUTH_DEFAULT_LIFETIME 60
#define PREAUTH_MAX_LIFETIME     300

typedef struct {
  authloop__deferred d;
  authloop_ctx *ctx;
  const authloop__provider *p;
  authloop_preauth_cb cb;
  void *userdata;
  authloop__origin *origin;
  authloop__result r;
} preauth_call;

static void run_result(authloop__deferred *d) {
  preauth_call *call = AUTHLOOP__CONTAINER_OF(d, preauth_call, d);
  authloop_preauth_result res = {0};
  res.status = call->r.error;
  res.http_status = (int)call->r.http_status;
  if (res.status) {
    /* a server's words: shown or logged by applications, so no control
     * byte in them, as in a client's events */
    if (call->r.message)
      authloop__printable(call->r.message);
    if (call->r.server_code)
      authloop__printable(call->r.server_code);
    res.message = call->r.message ? call->r.message : authloop_strerror(res.status);
    res.server_code = call->r.server_code;
  } else {
    res.authorization_code = call->r.access_token;
  }
  call->cb(call->ctx, &res, call->userdata);
  authloop__result_clear(&call->r);
  free(call);
}

static void on_preauth_done(void *ud, const authloop__outcome *o) {
  preauth_call *call = ud;
  authloop__result *r = &call->r;
  authloop__health_outcome(call->ctx, call->origin, o);
  authloop__origin_put(call->origin);
  call->origin = NULL;
  if (o->error) {
    char msg[CURL_ERROR_SIZE + 128];
    r->error = o->error;
    if (*o->detail) {
      snprintf(msg, sizeof(msg), "%s: %s", authloop_strerror(o->error), o->detail);
      r->message = strdup(msg);
    }
  } else if (call->p->preauth_answer(&o->answer, r) == 0 &&
             !authloop__header_value_ok(r->access_token, strlen(r->access_token))) {
    authloop__result_clear(r);
    authloop__result_fail(r, AUTHLOOP_EPROTO, o->answer.status, "malformed response: %s",
                          "the code holds a control character");
  }
  if (r->error)
    authloop__log(call->ctx, AUTHLOOP_LOG_INFO, "pre-auth failed: %s (HTTP %ld, server code %s)",
                  authloop_err_name(r->error), r->http_status,
                  r->server_code ? r->server_code : "none");
  authloop__defer(&call->ctx->dispatch, &call->d);
}

static int check_options(const authloop_preauth_options *o) {
  if (!o->user_id || !*o->user_id || !o->client_id || !*o->client_id ||
      !o->key_file == !o->key_pem || (o->key_file && !*o->key_file) ||
      o->bearer_lifetime_s > PREAUTH_MAX_LIFETIME ||
      (o->path && !authloop__path_text_ok(o->path)) || (o->kid && !authloop__text_ok(o->kid)) ||
      !authloop__utf8_ok(o->user_id) || !authloop__utf8_ok(o->client_id) ||
      (o->gateway_url && !authloop__utf8_ok(o->gateway_url)))
    return AUTHLOOP_EINVAL;
  return authloop__check_base_url(o->gateway_url, o->allow_insecure_http, NULL);
}

/* The bearer: {alg, typ[, kid]}.{iss, aud, iat, exp, jti} signed with the key. */
static int make_bearer(authloop_ctx *ctx, const authloop_preauth_options *o, const char *aud,
                       char **out) {
  mbedtls_pk_context pk;
  unsigned char jti_bytes[16];
  char *jti = NULL;
  json_t *claims = NULL;
  long long now = (long long)(authloop__wall_ms() / 1000);
  unsigned lifetime = o->bearer_lifetime_s ? o->bearer_lifetime_s : PREAUTH_DEFAULT_LIFETIME;
  int alg, rc;
  if ((rc = authloop__key_load(o->key_file, o->key_pem, o->key_pem_len, o->passphrase, &ctx->rng,
                               &pk, &alg)) != 0)
    return rc;
  rc = AUTHLOOP_ENOMEM;
  if (authloop__random(&ctx->rng, jti_bytes, sizeof(jti_bytes)) == 0 &&
      (jti = authloop__b64url_encode(jti_bytes, sizeof(jti_bytes))) &&
      (claims = json_pack("{s:s, s:s, s:I, s:I, s:s}", "iss", o->client_id, "aud", aud, "iat",
                          (json_int_t)now, "exp", (json_int_t)(now + lifetime), "jti", jti)))
    rc = authloop__jwt_sign(&pk, alg, o->kid, claims, &ctx->rng, out);
  /* every string was checked as UTF-8 before: a failure here is memory */
  mbedtls_pk_free(&pk); /* the private key is wiped here */
  json_decref(claims);
  free(jti);
  return rc;
}

static char *trim_slashes(const char *url) {
  size_t n = strlen(url);
  char *s;
  while (n && url[n - 1] == '/')
    n--;
  if ((s = malloc(n + 1))) {
    memcpy(s, url, n);
    s[n] = '\0';
  }
  return s;
}

int authloop_preauth(authloop_ctx *ctx, const authloop_preauth_options *caller,
                     authloop_preauth_cb cb, void *userdata) {
  authloop_preauth_options copy, *o = &copy;
  const authloop__provider *p = authloop__provider_preauth();
  authloop__request req = {0};
  preauth_call *call;
  char *aud, *bearer = NULL;
  int rc;
  if (!ctx || !caller || !cb || !p)
    return AUTHLOOP_EINVAL;
  if ((rc = AUTHLOOP__OPTIONS_COPY(&copy, caller)) != 0)
    return rc;
  AUTHLOOP__LOOP_THREAD_ONLY(ctx);
  if ((rc = check_options(o)) != 0)
    return rc;
  if (ctx->closing)
    return AUTHLOOP_ECLOSING;
  if (!(aud = trim_slashes(o->gateway_url)))
    return AUTHLOOP_ENOMEM;
  if ((rc = make_bearer(ctx, o, aud, &bearer)) != 0) {
    free(aud);
    return rc;
  }
  free(aud);
  if (!(call = calloc(1, sizeof(*call)))) {
    authloop__secret_free(bearer);
    return AUTHLOOP_ENOMEM;
  }
  call->d.run = run_result;
  call->ctx = ctx;
  call->p = p;
  call->cb = cb;
  call->userdata = userdata;
  rc = p->preauth_request(o, bearer, &req);
  if (rc == 0)
    rc = authloop__origin_get(ctx, o->gateway_url, authloop__origin_hold_end, &call->origin);
  if (rc == 0 && !authloop__online(ctx, call->origin))
    rc = AUTHLOOP_EOFFLINE;
  if (rc == 0)
    rc = authloop__transport_start(&ctx->transport, &req, on_preauth_done, call, NULL);
  authloop__request_clear(&req);
  authloop__secret_free(bearer);
  if (rc) {
    authloop__origin_put(call->origin);
    free(call);
  }
  return rc;
}
