/* SPDX-License-Identifier: MIT */
/* JWT helpers: base64url, the lifetime of a token a server sent without one
 * (tokens are opaque otherwise), and signing the pre-auth bearer with the
 * backend's private key (RS256, ES256). Pure: no clock, no I/O but reading a
 * key file. */
#ifndef AUTHLOOP_JWT_H
#define AUTHLOOP_JWT_H

#include "util.h"

#include <mbedtls/pk.h>

int authloop__b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);
char *authloop__b64url_encode(const unsigned char *in, size_t len);

/* exp - iat of a compact JWS's claims, in seconds: both integers, iat >= 0,
 * and 0 < exp - iat <= 10 years; else AUTHLOOP_EPROTO. */
/* The exp claim of a JWT (seconds since the epoch, unverified): 0;
 * AUTHLOOP_ENOENT when it has none (it never expires); AUTHLOOP_EPROTO when
 * it is no JWT or exp is out of range. */
int authloop__jwt_expiry(const char *token, long long *exp_s);
int authloop__jwt_lifetime(const char *token, long long *seconds);
/* The claims of a compact JWS (unverified) as compact JSON text (wipe it with
 * authloop__secret_free): 0; AUTHLOOP_EPROTO when it is no JWT or its claims
 * are no JSON object; AUTHLOOP_ENOMEM. */
int authloop__jwt_claims_text(const char *token, char **text);

#define AUTHLOOP__RS256 1
#define AUTHLOOP__ES256 2
/* A private key from a PEM file or buffer: RSA >= 2048 bits (RS256) or P-256
 * (ES256). On error nothing is left to free. mbedtls_pk_free wipes it. */
int authloop__key_load(const char *file, const char *pem, size_t pem_len, const char *passphrase,
                       authloop__rng *rng, mbedtls_pk_context *pk, int *alg);
/* header.claims.signature, compact serialisation. */
int authloop__jwt_sign(mbedtls_pk_context *pk, int alg, const char *kid, const json_t *claims,
                       authloop__rng *rng, char **out);

#endif
