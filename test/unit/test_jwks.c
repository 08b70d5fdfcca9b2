/* SPDX-License-Identifier: MIT */
/* JWKS keys and JWS signatures (lib/jwks.c) against keys and tokens that
 * Node's crypto made (test/unit/jws_vectors.h): good RS256 and ES256
 * signatures verify; a signature by another key, a tampered payload, an
 * unknown kid, "none", HS256 keyed with the public key, a key of another type,
 * "crit", and keys authloop does not use (encryption, small RSA, P-384,
 * Ed25519, shared secrets) do not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwks.h"
#include "jwt.h"
#include "util.h"

#include "jws_vectors.h"

static authloop__jwks set;

static int setup(void **state) {
  (void)state;
  return authloop__jwks_parse(JWKS_SET, strlen(JWKS_SET), &set);
}

static int teardown(void **state) {
  (void)state;
  authloop__jwks_free(&set);
  return 0;
}

static void usable_keys_only(void **state) {
  (void)state;
  assert_int_equal(set.n, 2); /* rsa1 and ec1; the five others are skipped */
  assert_string_equal(set.keys[0].kid, "rsa1");
  assert_int_equal(set.keys[0].alg, AUTHLOOP__RS256);
  assert_string_equal(set.keys[1].kid, "ec1");
  assert_int_equal(set.keys[1].alg, AUTHLOOP__ES256);
}

static void good_signatures_verify(void **state) {
  (void)state;
  assert_int_equal(authloop__jws_verify(TOKEN_RS256_OK, &set), 0);
  assert_int_equal(authloop__jws_verify(TOKEN_ES256_OK, &set), 0);
  /* without a kid: the set's one key of that algorithm */
  assert_int_equal(authloop__jws_verify(TOKEN_RS256_NO_KID, &set), 0);
}

static void bad_signatures_do_not(void **state) {
  (void)state;
  assert_int_equal(authloop__jws_verify(TOKEN_RS256_OTHER_KEY, &set), AUTHLOOP_EREJECTED);
  assert_int_equal(authloop__jws_verify(TOKEN_RS256_TAMPERED, &set), AUTHLOOP_EREJECTED);
  /* ES256 is r || s (RFC 7518 3.4), never DER */
  assert_int_equal(authloop__jws_verify(TOKEN_ES256_DER_SIG, &set), AUTHLOOP_EREJECTED);
  /* a kid the set does not have: the issuer may have rotated its keys */
  assert_int_equal(authloop__jws_verify(TOKEN_RS256_UNKNOWN_KID, &set), AUTHLOOP_ENOENT);
  /* the encryption key was not kept: as unknown */
  assert_int_equal(authloop__jws_verify(TOKEN_RS256_ENC_KID, &set), AUTHLOOP_ENOENT);
  /* an EC key named by an RS256 header */
  assert_int_equal(authloop__jws_verify(TOKEN_ES256_AS_RS, &set), AUTHLOOP_EPROTO);
  /* algorithms never accepted */
  assert_int_equal(authloop__jws_verify(TOKEN_HS256_PUBKEY, &set), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jws_verify(TOKEN_NONE, &set), AUTHLOOP_EPROTO);
  assert_int_equal(authloop__jws_verify(TOKEN_CRIT, &set), AUTHLOOP_EPROTO);
}

/* The same signature bytes spelt otherwise (the last character's spare bits
 * set: "g" and "n" both end in the bits 10) is another token: refused, as
 * a header or claims part spelt so is (the fuzz target found the signature's). */
static void only_canonical_base64url(void **state) {
  static const char good[] = TOKEN_ES256_OK;
  char other[sizeof(good)];
  size_t n = strlen(good);
  (void)state;
  assert_int_equal(good[n - 1], 'g');
  memcpy(other, good, sizeof(good));
  other[n - 1] = 'n';
  assert_int_equal(authloop__jws_verify(good, &set), 0);
  assert_int_equal(authloop__jws_verify(other, &set), AUTHLOOP_EPROTO);
  {
    unsigned char *out = NULL;
    size_t len = 0;
    assert_int_equal(authloop__b64url_decode("QQ", 2, &out, &len), 0); /* "A" */
    free(out);
    assert_int_equal(authloop__b64url_decode("QR", 2, &out, &len), AUTHLOOP_EPROTO);
    assert_int_equal(authloop__b64url_decode("QUI", 3, &out, &len), 0); /* "AB" */
    free(out);
    assert_int_equal(authloop__b64url_decode("QUJ", 3, &out, &len), AUTHLOOP_EPROTO);
  }
}

static void malformed_tokens(void **state) {
  const char *bad[] = {"",
                       "a",
                       "a.b",
                       "a.b.c.d",
                       "a.b.c.d.e",
                       "!!!.e30.c2ln",
                       "e30.e30.c2ln",                             /* {} : no alg */
                       "W10.e30.c2ln",                             /* [] */
                       "eyJhbGciOjF9.e30.c2ln",                    /* alg 1 */
                       "eyJhbGciOiJSUzI1NiIsImtpZCI6MX0.e30.c2ln", /* kid 1 */
                       "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEifQ.e30.+/+/"};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(authloop__jws_verify(bad[i], &set), AUTHLOOP_EPROTO);
  /* the right kid with a signature of the wrong length */
  assert_int_equal(authloop__jws_verify("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEifQ.e30.c2ln", &set),
                   AUTHLOOP_EREJECTED);
  assert_int_equal(authloop__jws_verify("eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMSJ9.e30.c2ln", &set),
                   AUTHLOOP_EREJECTED);
}

static void malformed_sets(void **state) {
  authloop__jwks s;
  const char *not_sets[] = {"",
                            "[]",
                            "{}",
                            "{\"keys\":{}}",
                            "{\"keys\":null}",
                            "{\"keys\":[1]",
                            "{\"keys\":[],\"keys\":[]}"};
  const char *no_keys[] = {
      "{\"keys\":[]}", "{\"keys\":[1,\"x\",null,[]]}", "{\"keys\":[{\"kty\":\"RSA\"}]}",
      "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", /* 3-byte modulus */
      "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
      /* a point that is not on the curve */
      "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
      "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"y\":"
      "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}]}",
      "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"RS256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
      "{\"keys\":[{\"kty\":\"RSA\",\"kid\":7,\"n\":\"AQAB\",\"e\":\"AQAB\"}]}"};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(not_sets) / sizeof(not_sets[0]); i++) {
    assert_int_equal(authloop__jwks_parse(not_sets[i], strlen(not_sets[i]), &s), AUTHLOOP_EPROTO);
    authloop__jwks_free(&s);
  }
  for (i = 0; i < sizeof(no_keys) / sizeof(no_keys[0]); i++) {
    assert_int_equal(authloop__jwks_parse(no_keys[i], strlen(no_keys[i]), &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(authloop__jws_verify(TOKEN_RS256_OK, &s), AUTHLOOP_ENOENT);
    authloop__jwks_free(&s);
  }
}

/* A kid shared by keys of two types (RFC 7517 4.5): the one of the token's
 * algorithm is used, whichever comes first. */
static void one_kid_two_types(void **state) {
  json_t *set = json_loads(JWKS_SET, 0, NULL);
  char *text;
  authloop__jwks s;
  (void)state;
  assert_non_null(set);
  /* the RSA key, first, is now "ec1" too */
  json_object_set_new(json_array_get(json_object_get(set, "keys"), 0), "kid", json_string("ec1"));
  text = json_dumps(set, JSON_COMPACT);
  assert_int_equal(authloop__jwks_parse(text, strlen(text), &s), 0);
  assert_string_equal(s.keys[0].kid, "ec1");
  assert_int_equal(s.keys[0].alg, AUTHLOOP__RS256);
  assert_int_equal(authloop__jws_verify(TOKEN_ES256_OK, &s), 0);
  authloop__jwks_free(&s);
  free(text);
  json_decref(set);
}

/* More keys than are read: the first AUTHLOOP__JWKS_MAX_KEYS. */
static void many_keys(void **state) {
  const char *one = strstr(JWKS_SET, "{\"kty\":\"EC\"");
  const char *end = strchr(one, '}') + 1;
  size_t n = (size_t)(end - one), i, at = 0;
  char *text = malloc(64 + 40 * (n + 1));
  authloop__jwks s;
  (void)state;
  at += (size_t)sprintf(text, "{\"keys\":[");
  for (i = 0; i < 40; i++) {
    memcpy(text + at, one, n);
    at += n;
    text[at++] = i < 39 ? ',' : ']';
  }
  text[at++] = '}';
  assert_int_equal(authloop__jwks_parse(text, at, &s), 0);
  assert_int_equal(s.n, AUTHLOOP__JWKS_MAX_KEYS);
  assert_int_equal(authloop__jws_verify(TOKEN_ES256_OK, &s), 0);
  authloop__jwks_free(&s);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(usable_keys_only),      cmocka_unit_test(good_signatures_verify),
      cmocka_unit_test(bad_signatures_do_not), cmocka_unit_test(malformed_tokens),
      cmocka_unit_test(malformed_sets),        cmocka_unit_test(many_keys),
      cmocka_unit_test(one_kid_two_types),     cmocka_unit_test(only_canonical_base64url),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("jwks and jws", tests, setup, teardown);
}
