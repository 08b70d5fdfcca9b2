/* Pre-auth: a backend mints a one-time authorization code for a user,
 * authenticating to the gateway with a JWT signed by its private key. The key
 * is loaded, used and wiped inside authloop_preauth(); the request then runs
 * on the ctx's transport like any other. */
#include "internal.h"

#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREAUTH_DEFAULT_LIFETIME 60
#define PREAUTH_MAX_LIFETIME     300

typedef struct {
  authloop_preauth_cb cb;
  void *userdata;
} preauth_call;

static void on_preauth_done(authloop__req *req, void *userdata) {
  preauth_call *call = userdata;
  authloop_preauth_result r = {0};
  authloop__failure f = {0};
  json_t *root = NULL, *code = NULL;
  if (req->error) {
    r.status = authloop__failure_from_req(req, &f);
  } else if (req->http_status < 200 || req->http_status > 299) {
    r.status = authloop__gateway_failure(req->http_status, req->resp.data, req->resp.len, &f);
  } else {
    root = json_loadb(req->resp.data ? req->resp.data : "", req->resp.len, JSON_REJECT_DUPLICATES,
                      NULL);
    code = json_object_get(root, "authorizationCode");
    if (json_is_string(code) && json_string_length(code) > 0 &&
        !authloop__has_space(json_string_value(code))) {
      r.authorization_code = json_string_value(code);
    } else {
      r.status = f.error = AUTHLOOP_EPROTO;
      f.message = strdup("malformed response: missing or mistyped \"authorizationCode\"");
    }
  }
  r.http_status = (int)req->http_status;
  if (r.status) {
    r.message = f.message ? f.message : authloop_strerror(r.status);
    r.server_code = f.server_code;
    authloop__log(req->ctx, AUTHLOOP_LOG_INFO, "pre-auth failed: %s (HTTP %ld, server code %s)",
                  authloop_err_name(r.status), req->http_status,
                  f.server_code ? f.server_code : "none");
  }
  authloop__defer_preauth(req->ctx, call->cb, call->userdata, &r);
  authloop__json_wipe_decref(root);
  authloop__failure_clear(&f);
  free(call);
}

static int check_options(const authloop_preauth_options *o) {
  int rc;
  if (!o->user_id || !*o->user_id || !o->client_id || !*o->client_id ||
      !o->key_file == !o->key_pem || (o->key_file && !*o->key_file) ||
      o->bearer_lifetime_s > PREAUTH_MAX_LIFETIME ||
      (o->path && (o->path[0] != '/' || authloop__has_space(o->path))))
    return AUTHLOOP_EINVAL;
  if ((rc = authloop__check_base_url(o->gateway_url, o->allow_insecure_http)) != 0)
    return rc;
  return 0;
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

int authloop_preauth(authloop_ctx *ctx, const authloop_preauth_options *o, authloop_preauth_cb cb,
                     void *userdata) {
  authloop__req *req = NULL;
  preauth_call *call;
  char *aud, *url = NULL, *bearer = NULL;
  json_t *body;
  size_t n;
  int rc;
  if (!ctx || !o || !cb)
    return AUTHLOOP_EINVAL;
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
  n = strlen(aud) + strlen(o->path ? o->path : "/auth/pre-auth") + 1;
  body = json_pack("{s:s}", "userId", o->user_id);
  call = calloc(1, sizeof(*call));
  if (!body || !call || !(url = malloc(n))) {
    rc = AUTHLOOP_ENOMEM;
  } else {
    snprintf(url, n, "%s%s", aud, o->path ? o->path : "/auth/pre-auth");
    call->cb = cb;
    call->userdata = userdata;
    if ((rc = authloop__req_new(ctx, "POST", url, &req)) == 0 &&
        (rc = authloop__req_set_bearer(req, bearer)) == 0 &&
        (rc = authloop__req_set_json(req, body)) == 0)
      rc = authloop__req_start(req, on_preauth_done, call);
  }
  if (rc) {
    authloop__req_free(req);
    free(call);
  }
  authloop__secret_free(bearer);
  json_decref(body);
  free(url);
  free(aud);
  return rc;
}
