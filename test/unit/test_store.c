/* The session file format: round trips (plain and AES-256-GCM), and every
 * kind of bad file refused without touching the client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BODY                                                                                       \
  "{\"user\":{\"id\":\"u1\",\"name\":\"Una\"},\"accessToken\":\"AT\",\"idToken\":\"IT\","          \
  "\"refreshToken\":\"RT\",\"expiresIn\":3600}"

typedef struct {
  uv_loop_t loop;
  authloop_ctx *ctx;
} fixture;

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char other_key[32] = "fedcba9876543210fedcba9876543210";

static authloop_client *client(fixture *f, const char *url, const unsigned char *k) {
  authloop_client_options o = {0};
  authloop_client *c;
  o.provider = "gateway";
  o.base_url = url;
  assert_int_equal(authloop_client_new(f->ctx, &o, &c), 0);
  if (k) {
    memcpy(c->session_key, k, 32);
    c->has_session_key = 1;
  }
  return c;
}

/* A logged-in client with a token that expires in an hour. */
static authloop_client *logged_in(fixture *f, const unsigned char *k) {
  authloop_client *c = client(f, "https://chat.example.test", k);
  authloop__failure fail;
  uint64_t now = authloop__boot_ms();
  assert_int_equal(authloop__gateway_parse_login(200, BODY, strlen(BODY), &c->session, &fail), 0);
  c->timing.expires_at = now + 3600 * 1000;
  c->timing.last_activity = now - 5000;
  return c;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(authloop_ctx_new(&f->loop, NULL, &f->ctx), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  assert_int_equal(authloop_ctx_close(f->ctx, NULL, NULL), 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void round_trip(fixture *f, const unsigned char *k) {
  authloop_client *a = logged_in(f, k), *b = client(f, "https://chat.example.test", k);
  unsigned char *data;
  size_t len;
  long long left;
  assert_int_equal(authloop__store_encode(a, &f->ctx->rng, &data, &len), 0);
  if (k) /* nothing readable in an encrypted file */
    assert_null(memmem(data, len, "refreshToken", 12));
  else
    assert_non_null(memmem(data, len, "\"refreshToken\":\"RT\"", 19));
  assert_int_equal(authloop__store_decode(b, data, len), 0);
  assert_string_equal(b->session.access_token, "AT");
  assert_string_equal(b->session.id_token, "IT");
  assert_string_equal(b->session.refresh_token, "RT");
  assert_int_equal(b->session.expires_in, 3600);
  assert_string_equal(authloop_user_id(b->session.user), "u1");
  assert_string_equal(authloop_user_json(b->session.user), "{\"id\":\"u1\",\"name\":\"Una\"}");
  assert_false(b->timing.stale);
  left = (long long)(b->timing.expires_at - authloop__boot_ms());
  assert_true(left > 3590 * 1000 && left <= 3600 * 1000);
  assert_true(b->timing.last_activity <= a->timing.last_activity + 50 &&
              b->timing.last_activity + 50 >= a->timing.last_activity);
  assert_true(b->timing.refresh_due < b->timing.expires_at - 270 * 1000);
  free(data);
  authloop_client_free(a);
  authloop_client_free(b);
}

static void plain_round_trip(void **state) { round_trip(*state, NULL); }
static void encrypted_round_trip(void **state) { round_trip(*state, key); }

static void encrypted_files_differ_each_time(void **state) {
  fixture *f = *state;
  authloop_client *a = logged_in(f, key);
  unsigned char *d1, *d2;
  size_t l1, l2;
  assert_int_equal(authloop__store_encode(a, &f->ctx->rng, &d1, &l1), 0);
  assert_int_equal(authloop__store_encode(a, &f->ctx->rng, &d2, &l2), 0);
  assert_int_equal(l1, l2);
  assert_memory_not_equal(d1 + 6, d2 + 6, 12); /* fresh nonce */
  free(d1);
  free(d2);
  authloop_client_free(a);
}

/* Every bad file leaves the client as it was: logged out, no tokens. */
static void refused(fixture *f, const unsigned char *data, size_t len, const char *url,
                    const unsigned char *k, int want) {
  authloop_client *b = client(f, url, k);
  int rc = authloop__store_decode(b, data, len);
  if (rc != want)
    fail_msg("decode gave %s, want %s (len %zu)", authloop_err_name(rc), authloop_err_name(want),
             len);
  assert_null(b->session.access_token);
  assert_null(b->session.user);
  assert_false(authloop_is_logged_in(b));
  authloop_client_free(b);
}

static void every_tampered_byte_is_refused(void **state) {
  fixture *f = *state;
  authloop_client *a = logged_in(f, key);
  unsigned char *data;
  size_t len, i;
  assert_int_equal(authloop__store_encode(a, &f->ctx->rng, &data, &len), 0);
  for (i = 0; i < len; i++) {
    authloop_client *b = client(f, "https://chat.example.test", key);
    data[i] ^= 0x20;
    assert_int_not_equal(authloop__store_decode(b, data, len), 0);
    assert_null(b->session.access_token);
    data[i] ^= 0x20;
    authloop_client_free(b);
  }
  free(data);
  authloop_client_free(a);
}

static void every_truncation_is_refused(void **state) {
  fixture *f = *state;
  const unsigned char *const keys[] = {NULL, key};
  size_t k;
  for (k = 0; k < 2; k++) {
    authloop_client *a = logged_in(f, keys[k]);
    unsigned char *data;
    size_t len, n;
    assert_int_equal(authloop__store_encode(a, &f->ctx->rng, &data, &len), 0);
    for (n = 0; n < len; n++) {
      authloop_client *b = client(f, "https://chat.example.test", keys[k]);
      assert_int_not_equal(authloop__store_decode(b, data, n), 0);
      assert_null(b->session.access_token);
      authloop_client_free(b);
    }
    free(data);
    authloop_client_free(a);
  }
}

static void wrong_key_foreign_and_downgrade(void **state) {
  fixture *f = *state;
  authloop_client *enc = logged_in(f, key), *plain = logged_in(f, NULL);
  unsigned char *de, *dp;
  size_t le, lp;
  assert_int_equal(authloop__store_encode(enc, &f->ctx->rng, &de, &le), 0);
  assert_int_equal(authloop__store_encode(plain, &f->ctx->rng, &dp, &lp), 0);
  refused(f, de, le, "https://chat.example.test", other_key, AUTHLOOP_EREJECTED);
  refused(f, de, le, "https://chat.example.test", NULL, AUTHLOOP_EINVAL); /* no key */
  refused(f, dp, lp, "https://chat.example.test", key, AUTHLOOP_EINVAL);  /* plain where a key is */
  refused(f, dp, lp, "https://other.example.test", NULL, AUTHLOOP_EINVAL); /* another backend */
  refused(f, de, le, "https://other.example.test", key, AUTHLOOP_EINVAL);
  refused(f, (const unsigned char *)"", 0, "https://chat.example.test", NULL, AUTHLOOP_EPROTO);
  refused(f, (const unsigned char *)"ALS1\x01\x00not json", 14, "https://chat.example.test", NULL,
          AUTHLOOP_EPROTO);
  refused(f, (const unsigned char *)"ALS1\x02\x00{}", 8, "https://chat.example.test", NULL,
          AUTHLOOP_EPROTO);
  refused(f, (const unsigned char *)"ALS1\x01\x00{\"v\":1,\"provider\":\"gateway\"}", 34,
          "https://chat.example.test", NULL, AUTHLOOP_EINVAL);
  free(de);
  free(dp);
  authloop_client_free(enc);
  authloop_client_free(plain);
}

static void expired_token_restores_stale(void **state) {
  fixture *f = *state;
  authloop_client *a = logged_in(f, NULL), *b = client(f, "https://chat.example.test", NULL);
  unsigned char *data;
  size_t len;
  a->timing.expires_at = authloop__boot_ms() - 1000; /* ran out a second ago */
  assert_int_equal(authloop__store_encode(a, &f->ctx->rng, &data, &len), 0);
  assert_int_equal(authloop__store_decode(b, data, len), 0);
  assert_true(b->timing.stale);
  assert_int_equal(b->timing.last_activity, 0); /* refreshed on the first activity only */
  assert_string_equal(b->session.refresh_token, "RT");
  free(data);
  authloop_client_free(a);
  authloop_client_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(plain_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(encrypted_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(encrypted_files_differ_each_time, setup, teardown),
      cmocka_unit_test_setup_teardown(every_tampered_byte_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(every_truncation_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(wrong_key_foreign_and_downgrade, setup, teardown),
      cmocka_unit_test_setup_teardown(expired_token_restores_stale, setup, teardown),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("session file", tests, NULL, NULL);
}
