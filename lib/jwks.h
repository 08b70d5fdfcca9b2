/* SPDX-License-Identifier: MIT */
/* An issuer's signing keys (a JWKS document, RFC 7517) and the verification
 * of a compact JWS's signature with them (RFC 7515): RS256 (RSA of 2048 bits
 * or more, PKCS#1 v1.5) and ES256 (P-256), through mbedTLS. Pure: no I/O, no
 * clock. What the claims say is the caller's to check. */
#ifndef AUTHLOOP_JWKS_H
#define AUTHLOOP_JWKS_H

#include <mbedtls/pk.h>
#include <stddef.h>

#define AUTHLOOP__JWKS_MAX_KEYS 32
#define AUTHLOOP__JWK_MAX_KID   128

typedef struct {
  char kid[AUTHLOOP__JWK_MAX_KID + 1]; /* "" when the key has none */
  int alg;                             /* AUTHLOOP__RS256 or AUTHLOOP__ES256 (jwt.h) */
  mbedtls_pk_context pk;
} authloop__jwk;

typedef struct {
  authloop__jwk *keys;
  size_t n;
} authloop__jwks;

/* Reads a JWKS ({"keys": [...]}). Keys for signing that authloop can use
 * are kept: kty "RSA" (n, e; 2048 bits or more) and kty "EC" with crv
 * "P-256" (x, y: a point on the curve), whose "use" is absent or "sig" and
 * whose "alg" is absent or RS256 / ES256 as fits the key. Others (encryption
 * keys, Ed25519, HS keys ...) are skipped, and so is a key whose fields are
 * wrong; at most AUTHLOOP__JWKS_MAX_KEYS are read. 0 (out may hold no key);
 * AUTHLOOP_EPROTO when the text is no JWKS (not JSON, no "keys" array);
 * AUTHLOOP_ENOMEM. out is left for authloop__jwks_free either way. */
int authloop__jwks_parse(const char *text, size_t len, authloop__jwks *out);
void authloop__jwks_free(authloop__jwks *s);

/* Checks a compact JWS's signature against the key its header names: 0;
 * AUTHLOOP_ENOENT: no key of the set has its "kid" (or, without one, the set
 * has no single key of its algorithm): the issuer may have rotated its keys;
 * AUTHLOOP_EPROTO: not a compact JWS, a header that is no JSON object, an
 * "alg" other than RS256 and ES256 ("none", HS256 ... are never accepted), a
 * "crit" header, or the named key is of another type; AUTHLOOP_EREJECTED: the
 * signature does not verify; AUTHLOOP_ENOMEM. */
int authloop__jws_verify(const char *token, const authloop__jwks *s);

#endif
