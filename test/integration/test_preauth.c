/* SPDX-License-Identifier: MIT */
/* Pre-auth: bearers signed with mbedTLS (RS256, ES256) accepted by the
 * reference server and checked again by openssl; every kind of bad bearer
 * refused with its own code; bad keys refused at once with no request sent.
 * Keys are made for each run with the openssl command. */
#include "harness.h"
#include "jwt.h"
#include "timer.h"

#include <fcntl.h>
#include <mbedtls/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char keys[256];

static const char *key_path(const char *name) {
  static char buf[16][320]; /* argv arrays take several at once */
  static int i;
  char *p = buf[i++ % 16];
  snprintf(p, 320, "%s/%s", keys, name);
  return p;
}

static void openssl(const char *const argv[]) {
  char *out;
  if (test_run_status(argv, &out) != 0)
    fail_msg("%s %s failed: %s", argv[0], argv[1], out);
  free(out);
}

static void make_key(const char *name, const char *alg, const char *opt) {
  const char *argv[] = {"openssl", "genpkey", "-algorithm",   alg, "-pkeyopt",
                        opt,       "-out",    key_path(name), NULL};
  openssl(argv);
}

static void public_half(const char *name, const char *out) {
  const char *argv[] = {"openssl", "pkey", "-in", key_path(name), "-pubout", "-out", out, NULL};
  openssl(argv);
}

static void register_client(const char *client_id, const char *key_name) {
  char dir[320], pem[400];
  snprintf(dir, sizeof(dir), "%s/clients", server.dir);
  mkdir(dir, 0700);
  snprintf(pem, sizeof(pem), "%s/%s.pem", dir, client_id);
  public_half(key_name, pem);
}

static int group_setup(void **state) {
  test_group_setup(state);
  test_make_tmpdir(keys, sizeof(keys), "keys");
  make_key("rs2048.key", "RSA", "rsa_keygen_bits:2048");
  make_key("rs1024.key", "RSA", "rsa_keygen_bits:1024");
  make_key("ec256.key", "EC", "ec_paramgen_curve:P-256");
  make_key("ec256-other.key", "EC", "ec_paramgen_curve:P-256");
  make_key("ec384.key", "EC", "ec_paramgen_curve:P-384");
  {
    const char *trad[] = {"openssl",
                          "rsa",
                          "-in",
                          key_path("rs2048.key"),
                          "-traditional",
                          "-aes256",
                          "-passout",
                          "pass:secret",
                          "-out",
                          key_path("rs2048-enc.key"),
                          NULL};
    const char *pkcs8[] = {
        "openssl",  "pkey",        "-in",  key_path("rs2048.key"),       "-aes256",
        "-passout", "pass:secret", "-out", key_path("rs2048-pkcs8.key"), NULL};
    /* PKCS#8 whose key derivation is scrypt: no mbedTLS reads it */
    const char *scrypt[] = {
        "openssl", "pkcs8",    "-topk8",      "-in",  key_path("rs2048.key"),
        "-scrypt", "-passout", "pass:secret", "-out", key_path("rs2048-scrypt.key"),
        NULL};
    const char *ed[] = {
        "openssl", "genpkey", "-algorithm", "ed25519", "-out", key_path("ed25519.key"), NULL};
    openssl(trad);
    openssl(pkcs8);
    openssl(scrypt);
    openssl(ed);
  }
  register_client("backend-rs", "rs2048.key");
  register_client("backend-es", "ec256.key");
  return 0;
}

static int rm_all(void) {
  static const char *const names[] = {"rs2048.key",
                                      "rs1024.key",
                                      "ec256.key",
                                      "ec256-other.key",
                                      "ec384.key",
                                      "rs2048-enc.key",
                                      "rs2048-pkcs8.key",
                                      "rs2048-scrypt.key",
                                      "ed25519.key",
                                      "fifo.key",
                                      "data",
                                      "sig",
                                      "pub.pem"};
  size_t i;
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    unlink(key_path(names[i]));
  return rmdir(keys);
}

static int group_teardown(void **state) {
  test_group_teardown(state);
  rm_all();
  return 0;
}

/* ---- through the public API ---------------------------------------------------------- */

typedef struct {
  int count;
  authloop_preauth_result r;
  char code[256], message[256], server_code[32];
} outcome;

static void on_result(authloop_ctx *ctx, const authloop_preauth_result *r, void *userdata) {
  outcome *o = userdata;
  (void)ctx;
  o->count++;
  o->r = *r;
  snprintf(o->code, sizeof(o->code), "%s", r->authorization_code ? r->authorization_code : "");
  snprintf(o->message, sizeof(o->message), "%s", r->message ? r->message : "");
  snprintf(o->server_code, sizeof(o->server_code), "%s", r->server_code ? r->server_code : "");
}

static authloop_preauth_options opts(const char *client_id, const char *key, const char *user) {
  authloop_preauth_options o = AUTHLOOP_PREAUTH_OPTIONS_INIT;
  o.gateway_url = server.base_url;
  o.client_id = client_id;
  o.key_file = key;
  o.user_id = user;
  return o;
}

static void login_with(test_env *e, const char *code, const char *want_user) {
  test_recorder r;
  authloop_client *c = test_client(e, &server);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, code), 0);
  test_run_until(e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  if (want_user) {
    assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
    assert_string_equal(authloop_user_id(authloop_current_user(c)), want_user);
  } else {
    assert_false(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
    assert_string_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].server_code, "4003");
  }
  authloop_client_free(c);
}

static void es256_code_logs_the_user_in_once(void **state) {
  test_env e;
  outcome out = {0};
  authloop_preauth_options o = opts("backend-es", key_path("ec256.key"), "carla");
  long accepted = test_stat(&server, "preauthAccepted");
  (void)state;
  test_env_init(&e, &server, NULL);
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), 0);
  test_run_until(&e, &out.count, 1, 5000);
  assert_int_equal(out.r.status, 0);
  assert_true(strlen(out.code) > 20);
  assert_int_equal(out.r.http_status, 200);
  assert_int_equal(test_stat(&server, "preauthAccepted"), accepted + 1);
  login_with(&e, out.code, "carla");
  login_with(&e, out.code, NULL); /* one use */
  test_env_close(&e);
}

static void rs256_encrypted_key_from_a_buffer(void **state) {
  test_env e;
  outcome out = {0};
  authloop_preauth_options o = opts("backend-rs", NULL, "ravi");
  char pem[8192];
  ssize_t n;
  int fd = open(key_path("rs2048-enc.key"), O_RDONLY);
  (void)state;
  n = read(fd, pem, sizeof(pem));
  close(fd);
  assert_true(n > 100);
  o.key_pem = pem;
  o.key_pem_len = (size_t)n;
  o.passphrase = "secret";
  o.kid = "key-1";
  o.bearer_lifetime_s = 300;
  test_env_init(&e, &server, NULL);
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), 0);
  test_run_until(&e, &out.count, 1, 5000);
  assert_int_equal(out.r.status, 0);
  login_with(&e, out.code, "ravi");
  test_env_close(&e);
}

/* OpenSSL's default encrypted key (PKCS#8, PBES2 with PBKDF2 and AES-256-CBC):
 * mbedTLS 2.28 cannot decrypt it (EKEYCIPHER, with the right passphrase); 3.x
 * can, and the bearer it signs is accepted. The limit belongs to 2.28. */
static void pkcs8_aes_key_by_mbedtls_version(void **state) {
  test_env e;
  outcome out = {0};
  authloop_preauth_options o = opts("backend-rs", key_path("rs2048-pkcs8.key"), "pia");
  long before = test_stat(&server, "/auth/pre-auth");
  (void)state;
  o.passphrase = "secret";
  print_message("# built with %s\n", MBEDTLS_VERSION_STRING_FULL);
  test_env_init(&e, &server, NULL);
#if MBEDTLS_VERSION_MAJOR < 3
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), AUTHLOOP_EKEYCIPHER);
  test_run_turns(&e, 3);
  assert_int_equal(out.count, 0);
  assert_int_equal(test_stat(&server, "/auth/pre-auth"), before);
#else
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), 0);
  test_run_until(&e, &out.count, 1, 5000);
  assert_int_equal(out.r.status, 0);
  assert_int_equal(test_stat(&server, "/auth/pre-auth"), before + 1);
  login_with(&e, out.code, "pia");
#endif
  test_env_close(&e);
}

static void server_refusal_reaches_the_callback(void **state) {
  test_env e;
  outcome out = {0};
  authloop_preauth_options o = opts("nobody", key_path("ec256.key"), "x");
  (void)state;
  test_env_init(&e, &server, NULL);
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), 0);
  test_run_until(&e, &out.count, 1, 5000);
  assert_int_equal(out.r.status, AUTHLOOP_EREJECTED);
  assert_int_equal(out.r.http_status, 401);
  assert_string_equal(out.server_code, "4010");
  assert_string_equal(out.message, "Unknown client (iss)");
  assert_null(out.r.authorization_code);
  test_env_close(&e);
}

/* The server's words reach the callback without control bytes, as an
 * event's do: an application logs them, and a CR/LF or an escape sequence
 * in them would forge a log line or drive a terminal. */
static void a_refusal_with_control_bytes_is_printable(void **state) {
  test_env e;
  outcome out = {0};
  authloop_preauth_options o = opts("u1", key_path("ec256.key"), "x");
  (void)state;
  test_env_init(&e, &server, NULL);
  test_fault_body(&server, "/auth/pre-auth", 403,
                  "{\"error\":{\"code\":\"x\\r\\nX-Injected: 1\",\"name\":\"N\","
                  "\"message\":\"denied\\r\\n\\u001b[31mFAKE\\u009b\\u202e\\u2028\"}}");
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), 0);
  test_run_until(&e, &out.count, 1, 5000);
  assert_int_equal(out.r.status, AUTHLOOP_EREJECTED);
  assert_int_equal(out.r.http_status, 403);
  assert_string_equal(out.server_code, "x??X-Injected: 1");
  assert_string_equal(out.message, "denied???[31mFAKE???");
  test_env_close(&e);
}

static void bad_keys_fail_at_once_without_a_request(void **state) {
  static const struct {
    const char *key, *pem, *passphrase;
    int want;
  } cases[] = {
    {"missing.key", NULL, NULL, AUTHLOOP_EKEY},
    {NULL, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", NULL,
     AUTHLOOP_EKEY},
    {NULL, "", NULL, AUTHLOOP_EKEY},
    {"rs2048-enc.key", NULL, "wrong", AUTHLOOP_EKEYPASS},
    {"rs2048-enc.key", NULL, NULL, AUTHLOOP_EKEYPASS},
    {"rs2048-scrypt.key", NULL, "secret", AUTHLOOP_EKEYCIPHER}, /* every version */
#if MBEDTLS_VERSION_MAJOR < 3
    {"rs2048-pkcs8.key", NULL, "secret", AUTHLOOP_EKEYCIPHER}, /* 2.28 only */
#else
    {"rs2048-pkcs8.key", NULL, "wrong", AUTHLOOP_EKEYPASS}, /* 3.x reads it */
#endif
    {"rs1024.key", NULL, NULL, AUTHLOOP_EKEYTYPE},
    {"ec384.key", NULL, NULL, AUTHLOOP_EKEYTYPE},
    {"ed25519.key", NULL, NULL, AUTHLOOP_EKEYTYPE},
    {"fifo.key", NULL, NULL, AUTHLOOP_EKEY}, /* refused at once, never read (it would block) */
  };
  test_env e;
  outcome out = {0};
  authloop_preauth_options o;
  long before = test_stat(&server, "/auth/pre-auth");
  size_t i;
  (void)state;
  unlink(key_path("fifo.key"));
  assert_int_equal(mkfifo(key_path("fifo.key"), 0600), 0);
  test_env_init(&e, &server, NULL);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int rc;
    o = opts("backend-rs", cases[i].key ? key_path(cases[i].key) : NULL, "u");
    o.key_pem = cases[i].pem;
    o.passphrase = cases[i].passphrase;
    rc = authloop_preauth(e.ctx, &o, on_result, &out);
    if (rc != cases[i].want)
      fail_msg("case %zu: %s, want %s", i, authloop_err_name(rc), authloop_err_name(cases[i].want));
  }
  /* bad options */
  o = opts("backend-es", key_path("ec256.key"), "u");
  o.bearer_lifetime_s = 301;
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), AUTHLOOP_EINVAL);
  o = opts("backend-es", key_path("ec256.key"), "");
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), AUTHLOOP_EINVAL);
  o = opts("", key_path("ec256.key"), "u");
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), AUTHLOOP_EINVAL);
  o = opts("backend-es", key_path("ec256.key"), "u");
  o.key_pem = "x";
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), AUTHLOOP_EINVAL); /* two keys */
  o = opts("backend-es", NULL, "u");
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), AUTHLOOP_EINVAL); /* no key */
  o = opts("backend-es", key_path("ec256.key"), "u");
  o.gateway_url = "http://gateway.example.com";
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), AUTHLOOP_EINSECURE);
  o = opts("backend-es", key_path("ec256.key"), "u");
  assert_int_equal(authloop_preauth(e.ctx, &o, NULL, NULL), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_preauth(NULL, &o, on_result, &out), AUTHLOOP_EINVAL);
  test_run_turns(&e, 3);
  assert_int_equal(out.count, 0);
  assert_int_equal(test_stat(&server, "/auth/pre-auth"), before);
  test_env_close(&e);
}

static void close_with_preauth_in_flight_cancels_once(void **state) {
  test_env e;
  outcome out = {0};
  authloop_preauth_options o = opts("backend-es", key_path("ec256.key"), "slow");
  (void)state;
  test_fault(&server, "{\"route\":\"/auth/pre-auth\",\"delayMs\":2000}");
  test_env_init(&e, &server, NULL);
  assert_int_equal(authloop_preauth(e.ctx, &o, on_result, &out), 0);
  test_run_turns(&e, 2);
  test_env_close(&e);
  assert_int_equal(out.count, 1);
  assert_int_equal(out.r.status, AUTHLOOP_ECANCELED);
}

/* ---- bearers made by the signer, checked by openssl and by the server ---------------- */

static json_t *claims_at(const char *iss, const char *aud, long long iat, long long exp,
                         const char *jti) {
  return json_pack("{s:s, s:s, s:I, s:I, s:s}", "iss", iss, "aud", aud, "iat", (json_int_t)iat,
                   "exp", (json_int_t)exp, "jti", jti);
}

static char *sign(const char *key, const json_t *claims, int want_alg) {
  authloop__rng rng;
  mbedtls_pk_context pk;
  char *token = NULL;
  int alg = 0;
  assert_int_equal(authloop__rng_init(&rng), 0);
  assert_int_equal(authloop__key_load(key_path(key), NULL, 0, NULL, &rng, &pk, &alg), 0);
  assert_int_equal(alg, want_alg);
  assert_int_equal(authloop__jwt_sign(&pk, alg, "kid-7", claims, &rng, &token), 0);
  mbedtls_pk_free(&pk);
  authloop__rng_free(&rng);
  return token;
}

static json_t *decode_part(const char *part, size_t len) {
  unsigned char *raw;
  size_t n;
  json_t *j;
  assert_int_equal(authloop__b64url_decode(part, len, &raw, &n), 0);
  j = json_loadb((const char *)raw, n, 0, NULL);
  free(raw);
  assert_non_null(j);
  return j;
}

static void write_bytes(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

/* JOSE's r || s back to DER, as openssl wants it. */
static size_t raw_to_der(const unsigned char raw[64], unsigned char der[80]) {
  unsigned char *p = der + 2;
  int k;
  for (k = 0; k < 2; k++) {
    const unsigned char *v = raw + 32 * k;
    int skip = 0, pad;
    while (skip < 31 && v[skip] == 0)
      skip++;
    pad = v[skip] & 0x80 ? 1 : 0;
    *p++ = 0x02;
    *p++ = (unsigned char)(32 - skip + pad);
    if (pad)
      *p++ = 0;
    memcpy(p, v + skip, (size_t)(32 - skip));
    p += 32 - skip;
  }
  der[0] = 0x30;
  der[1] = (unsigned char)(p - der - 2);
  return (size_t)(p - der);
}

/* Verifies token with "openssl dgst": 1 if openssl says Verified OK. */
static int openssl_verifies(const char *token, const char *key, int es256) {
  const char *dot2 = strrchr(token, '.');
  unsigned char *sig, der[80];
  size_t sig_len;
  char *out;
  int status, ok;
  const char *argv[] = {
      "openssl",    "dgst",          "-sha256",        "-verify", key_path("pub.pem"),
      "-signature", key_path("sig"), key_path("data"), NULL};
  public_half(key, key_path("pub.pem"));
  write_bytes(key_path("data"), token, (size_t)(dot2 - token));
  assert_int_equal(authloop__b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &sig_len), 0);
  if (es256) {
    assert_int_equal(sig_len, 64);
    write_bytes(key_path("sig"), der, raw_to_der(sig, der));
  } else {
    assert_int_equal(sig_len, 256);
    write_bytes(key_path("sig"), sig, sig_len);
  }
  free(sig);
  status = test_run_status(argv, &out);
  ok = status == 0 && strstr(out, "Verified OK") != NULL;
  free(out);
  return ok;
}

static void signatures_check_out_with_openssl(void **state) {
  static const struct {
    const char *key, *alg;
    int id;
  } algs[] = {{"rs2048.key", "RS256", AUTHLOOP__RS256}, {"ec256.key", "ES256", AUTHLOOP__ES256}};
  size_t i;
  (void)state;
  for (i = 0; i < 2; i++) {
    json_t *claims = claims_at("backend", "https://gw.example", 1000, 1060, "j1");
    char *token = sign(algs[i].key, claims, algs[i].id), *tampered;
    const char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
    json_t *header = decode_part(token, (size_t)(dot1 - token));
    json_t *body = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    assert_string_equal(json_string_value(json_object_get(header, "alg")), algs[i].alg);
    assert_string_equal(json_string_value(json_object_get(header, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(header, "kid")), "kid-7");
    assert_true(json_equal(body, claims));
    assert_true(openssl_verifies(token, algs[i].key, algs[i].id == AUTHLOOP__ES256));
    /* and openssl does say no: one changed claim */
    tampered = strdup(token);
    tampered[dot1 - token + 5] ^= 1;
    assert_false(openssl_verifies(tampered, algs[i].key, algs[i].id == AUTHLOOP__ES256));
    free(tampered);
    json_decref(header);
    json_decref(body);
    json_decref(claims);
    free(token);
  }
}

/* POSTs a pre-auth with this bearer; returns the server's error code (0 = 200). */
static long preauth_with(const char *token, char **code) {
  char auth[4096], *text;
  long status = 0, err = 0;
  json_t *j;
  snprintf(auth, sizeof(auth), "Bearer %s", token);
  text = test_http(&server, "POST", "/auth/pre-auth", auth, "{\"userId\":\"dora\"}", &status);
  j = json_loads(text, 0, NULL);
  assert_non_null(j);
  if (status == 200) {
    if (code)
      *code = strdup(json_string_value(json_object_get(j, "authorizationCode")));
  } else {
    assert_int_equal(status, 401);
    err = (long)json_integer_value(json_object_get(json_object_get(j, "error"), "code"));
  }
  json_decref(j);
  free(text);
  return err;
}

static void server_refuses_every_bad_bearer(void **state) {
  long long now = (long long)(authloop__wall_ms() / 1000);
  const char *aud = server.base_url;
  struct {
    const char *what, *key, *iss, *aud;
    long long iat, exp;
    long want;
  } cases[] = {
      {"signed with another key", "ec256-other.key", "backend-es", NULL, now, now + 60, 4010},
      {"unknown client", "ec256.key", "backend-zz", NULL, now, now + 60, 4010},
      {"RS256 key for an ES256 client", "rs2048.key", "backend-es", NULL, now, now + 60, 4010},
      {"wrong audience", "ec256.key", "backend-es", "https://other.example", now, now + 60, 4014},
      {"expired", "ec256.key", "backend-es", NULL, now - 200, now - 10, 4011},
      {"from the future", "ec256.key", "backend-es", NULL, now + 3600, now + 3660, 4012},
      {"lives too long", "ec256.key", "backend-es", NULL, now, now + 600, 4013},
  };
  test_env e;
  char *token, *code = NULL, jti[32];
  size_t i;
  json_t *claims;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    long got;
    snprintf(jti, sizeof(jti), "case-%zu", i);
    claims =
        claims_at(cases[i].iss, cases[i].aud ? cases[i].aud : aud, cases[i].iat, cases[i].exp, jti);
    token = sign(cases[i].key, claims,
                 strncmp(cases[i].key, "rs", 2) == 0 ? AUTHLOOP__RS256 : AUTHLOOP__ES256);
    got = preauth_with(token, NULL);
    if (got != cases[i].want)
      fail_msg("%s: server code %ld, want %ld", cases[i].what, got, cases[i].want);
    json_decref(claims);
    free(token);
  }
  /* a tampered signature */
  claims = claims_at("backend-es", aud, now, now + 60, "tamper");
  token = sign("ec256.key", claims, AUTHLOOP__ES256);
  token[strlen(token) - 2] = token[strlen(token) - 2] == 'A' ? 'B' : 'A';
  assert_int_equal(preauth_with(token, NULL), 4010);
  assert_int_equal(preauth_with("not-a-jwt", NULL), 4010);
  json_decref(claims);
  free(token);
  /* a good bearer works once; the same jti again is a replay */
  claims = claims_at("backend-es", aud, now, now + 60, "once");
  token = sign("ec256.key", claims, AUTHLOOP__ES256);
  assert_int_equal(preauth_with(token, &code), 0);
  assert_int_equal(preauth_with(token, NULL), 4015);
  json_decref(claims);
  free(token);
  /* and its code logs in once */
  test_env_init(&e, &server, NULL);
  login_with(&e, code, "dora");
  login_with(&e, code, NULL);
  test_env_close(&e);
  free(code);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(es256_code_logs_the_user_in_once),
      cmocka_unit_test(rs256_encrypted_key_from_a_buffer),
      cmocka_unit_test(pkcs8_aes_key_by_mbedtls_version),
      cmocka_unit_test(server_refusal_reaches_the_callback),
      cmocka_unit_test(a_refusal_with_control_bytes_is_printable),
      cmocka_unit_test(bad_keys_fail_at_once_without_a_request),
      cmocka_unit_test(close_with_preauth_in_flight_cancels_once),
      cmocka_unit_test(signatures_check_out_with_openssl),
      cmocka_unit_test(server_refuses_every_bad_bearer),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("pre-auth", tests, group_setup, group_teardown);
}
