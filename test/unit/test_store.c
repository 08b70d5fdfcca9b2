/* SPDX-License-Identifier: MIT */
/* The session file codec: round trips (plain and AES-256-GCM), and every
 * kind of bad file refused with nothing kept: tampered, truncated, wrong key,
 * downgraded, mistyped, and every number out of its range. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char other_key[32] = "fedcba9876543210fedcba9876543210";
static authloop__rng rng;

static authloop__stored sample(void) {
  authloop__stored s = {0};
  s.provider = "gateway";
  s.base_url = "https://chat.example.test";
  s.access_token = "AT";
  s.id_token = "IT";
  s.refresh_token = "RT";
  s.user = strdup("{\"id\":\"u1\",\"name\":\"Una\"}");
  s.lifetime_s = 3600;
  s.expires_at = 1900000000000LL;
  s.last_activity = 1899999000000LL;
  return s;
}

static void encode(const authloop__stored *s, const unsigned char *k, unsigned char **d,
                   size_t *n) {
  assert_int_equal(authloop__store_encode(s, k, &rng, d, n), 0);
}

static void round_trip(const unsigned char *k) {
  authloop__stored a = sample(), b;
  unsigned char *data;
  size_t len;
  encode(&a, k, &data, &len);
  if (k) /* nothing readable in an encrypted file */
    assert_null(memmem(data, len, "refreshToken", 12));
  else
    assert_non_null(memmem(data, len, "\"refreshToken\":\"RT\"", 19));
  assert_int_equal(authloop__store_decode(data, len, k, &b), 0);
  assert_string_equal(b.provider, "gateway");
  assert_string_equal(b.base_url, "https://chat.example.test");
  assert_string_equal(b.access_token, "AT");
  assert_string_equal(b.id_token, "IT");
  assert_string_equal(b.refresh_token, "RT");
  assert_string_equal(b.user, "{\"id\":\"u1\",\"name\":\"Una\"}");
  assert_int_equal(b.lifetime_s, 3600);
  assert_int_equal(b.expires_at, 1900000000000LL);
  assert_int_equal(b.last_activity, 1899999000000LL);
  authloop__stored_clear(&b);
  assert_null(b.access_token);
  free(data);
  free(a.user);
  /* a user that is no JSON is a malformed value, not a lack of memory */
  a = sample();
  free(a.user);
  a.user = strdup("{\"id\":\"u1\"");
  assert_int_equal(authloop__store_encode(&a, k, &rng, &data, &len), AUTHLOOP_EPROTO);
  free(a.user);
}

static void plain_round_trip(void **state) {
  (void)state;
  round_trip(NULL);
}
static void encrypted_round_trip(void **state) {
  (void)state;
  round_trip(key);
}

static void encrypted_files_differ_each_time(void **state) {
  authloop__stored a = sample();
  unsigned char *d1, *d2;
  size_t l1, l2;
  (void)state;
  encode(&a, key, &d1, &l1);
  encode(&a, key, &d2, &l2);
  assert_int_equal(l1, l2);
  assert_memory_not_equal(d1 + 6, d2 + 6, 12); /* fresh nonce */
  free(d1);
  free(d2);
  free(a.user);
}

static void refused(const unsigned char *data, size_t len, const unsigned char *k, int want) {
  authloop__stored b;
  int rc = authloop__store_decode(data, len, k, &b);
  if (rc != want)
    fail_msg("decode gave %s, want %s (len %zu: %.*s)", authloop_err_name(rc),
             authloop_err_name(want), len, (int)len, (const char *)data);
  assert_null(b.access_token);
  assert_null(b.user);
}

static void every_tampered_byte_is_refused(void **state) {
  authloop__stored a = sample(), b;
  unsigned char *data;
  size_t len, i;
  (void)state;
  encode(&a, key, &data, &len);
  for (i = 0; i < len; i++) {
    data[i] ^= 0x20;
    assert_int_not_equal(authloop__store_decode(data, len, key, &b), 0);
    assert_null(b.access_token);
    data[i] ^= 0x20;
  }
  free(data);
  free(a.user);
}

static void every_truncation_is_refused(void **state) {
  const unsigned char *const keys[] = {NULL, key};
  authloop__stored a = sample(), b;
  size_t k;
  (void)state;
  for (k = 0; k < 2; k++) {
    unsigned char *data;
    size_t len, n;
    encode(&a, keys[k], &data, &len);
    for (n = 0; n < len; n++) {
      assert_int_not_equal(authloop__store_decode(data, n, keys[k], &b), 0);
      assert_null(b.access_token);
    }
    free(data);
  }
  free(a.user);
}

static void wrong_key_and_downgrade(void **state) {
  authloop__stored a = sample();
  unsigned char *de, *dp;
  size_t le, lp;
  (void)state;
  encode(&a, key, &de, &le);
  encode(&a, NULL, &dp, &lp);
  refused(de, le, other_key, AUTHLOOP_EREJECTED);
  refused(de, le, NULL, AUTHLOOP_EINVAL); /* encrypted, no key here */
  refused(dp, lp, key, AUTHLOOP_EINVAL);  /* plain where a key is: could be planted */
  refused((const unsigned char *)"", 0, NULL, AUTHLOOP_EPROTO);
  refused((const unsigned char *)"ALS1\x01\x00not json", 14, NULL, AUTHLOOP_EPROTO);
  refused((const unsigned char *)"ALS1\x02\x00{}", 8, NULL, AUTHLOOP_EPROTO);
  refused((const unsigned char *)"ALS1\x01\x00{\"v\":1,\"provider\":\"gateway\"}", 34, NULL,
          AUTHLOOP_EPROTO);
  free(de);
  free(dp);
  free(a.user);
}

/* A payload with one field replaced by raw JSON text. */
static void payload_with(const char *field, const char *value, int want) {
  static const char *const fields[] = {"v",           "provider",    "baseUrl",      "user",
                                       "accessToken", "idToken",     "refreshToken", "lifetime",
                                       "expiresAt",   "lastActivity"};
  static const char *const values[] = {
      "1",     "\"gateway\"", "\"https://h\"", "{\"id\":\"u\"}", "\"A\"",
      "\"I\"", "\"R\"",       "3600",          "1900000000000",  "1899999000000"};
  char body[1024];
  size_t i, n = 6;
  memcpy(body, "ALS1\x01\x00", 6);
  body[n++] = '{';
  for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
    n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"%s\":%s", i ? "," : "", fields[i],
                          strcmp(fields[i], field) == 0 ? value : values[i]);
  body[n++] = '}';
  refused((const unsigned char *)body, n, NULL, want);
}

/* Every number is range-checked before it is used. */
static void numbers_out_of_range(void **state) {
  static const struct {
    const char *field, *value;
  } bad[] = {
      {"lifetime", "0"},
      {"lifetime", "-5"},
      {"lifetime", "316224001"}, /* ten years and a second */
      {"lifetime", "9223372036854775807"},
      {"lifetime", "3600.5"},
      {"lifetime", "\"3600\""},
      {"expiresAt", "0"},
      {"expiresAt", "-2"},
      {"expiresAt", "9223372036854775807"},
      {"expiresAt", "-1"}, /* never expires, but a lifetime: inconsistent */
      {"lastActivity", "-1"},
      {"lastActivity", "9223372036854775807"},
      {"v", "2"},
      {"accessToken", "\"\""},
      {"accessToken", "7"},
      {"user", "[]"},
      {"idToken", "null"},
      {"accessToken", "\"A\\u0000B\""}, /* a NUL inside */
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    payload_with(bad[i].field, bad[i].value, AUTHLOOP_EPROTO);
}

/* The login a session comes from, and the one a logout's mark ends: kept
 * through a write and a read, 0 in files that have none, refused out of
 * range (a mark with a bad one is no mark). */
static void login_ids(void **state) {
  static const char *const marks[] = {"{\"v\":1,\"gen\":5,\"sid\":-1}",
                                      "{\"v\":1,\"gen\":5,\"sid\":\"3\"}",
                                      "{\"v\":1,\"gen\":5,\"sid\":9007199254740993}"};
  authloop__stored a = sample(), b, mark = {0};
  unsigned char *data, bad[128];
  size_t len, i;
  (void)state;
  a.gen = 7;
  a.sid = 3;
  encode(&a, NULL, &data, &len);
  assert_int_equal(authloop__store_decode(data, len, NULL, &b), 0);
  assert_int_equal(b.sid, 3);
  assert_int_equal(b.gen, 7);
  authloop__stored_clear(&b);
  free(data);
  a.sid = 0; /* an old file: none */
  encode(&a, NULL, &data, &len);
  assert_null(memmem(data, len, "sid", 3));
  assert_int_equal(authloop__store_decode(data, len, NULL, &b), 0);
  assert_int_equal(b.sid, 0);
  authloop__stored_clear(&b);
  free(data);
  free(a.user);
  mark.ended = 1;
  mark.gen = 9;
  mark.sid = 3;
  encode(&mark, NULL, &data, &len);
  assert_int_equal(authloop__store_decode(data, len, NULL, &b), 0);
  assert_true(b.ended);
  assert_int_equal(b.gen, 9);
  assert_int_equal(b.sid, 3);
  free(data);
  payload_with("v", "1,\"sid\":-1", AUTHLOOP_EPROTO);
  for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
    memcpy(bad, "ALS1\x01\x02", 6);
    memcpy(bad + 6, marks[i], strlen(marks[i]));
    refused(bad, 6 + strlen(marks[i]), NULL, AUTHLOOP_EPROTO);
  }
}

static int setup(void **state) {
  (void)state;
  return authloop__rng_init(&rng);
}

static int teardown(void **state) {
  (void)state;
  authloop__rng_free(&rng);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_round_trip),
      cmocka_unit_test(encrypted_round_trip),
      cmocka_unit_test(encrypted_files_differ_each_time),
      cmocka_unit_test(every_tampered_byte_is_refused),
      cmocka_unit_test(every_truncation_is_refused),
      cmocka_unit_test(wrong_key_and_downgrade),
      cmocka_unit_test(numbers_out_of_range),
      cmocka_unit_test(login_ids),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("session file", tests, setup, teardown);
}
