/* SPDX-License-Identifier: MIT */
/* libFuzzer: tokens and key sets from a hostile issuer. The first byte picks
 * what the rest is:
 *  0: a JWT's claims (base64url-encoded into a token) read for their lifetime
 *     (0 < exp - iat <= 10 years when accepted, never a wrapped value: UBSan
 *     watches the subtraction) and as the user's claims text;
 *  1: a JWKS document, parsed, then used to verify a good token;
 *  2: a whole compact JWS, verified against a good set;
 *  3: a JWS header (base64url-encoded) over a good token's payload and
 *     signature.
 * Nothing may crash, leak or read out of bounds, and only the good token's
 * own header and signature may verify. */
#include "jwks.h"
#include "jwt.h"
#include "util.h"

#include "../unit/jws_vectors.h"

#include <stdlib.h>
#include <string.h>

static authloop__jwks good;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (authloop__jwks_parse(JWKS_SET, strlen(JWKS_SET), &good) != 0 || good.n != 2)
    abort();
  return 0;
}

static char *token_of(const char *head, const uint8_t *data, size_t size, const char *tail) {
  char *mid = authloop__b64url_encode(data, size), *token;
  size_t n;
  if (!mid)
    return NULL;
  n = strlen(head) + strlen(mid) + strlen(tail) + 1;
  if ((token = malloc(n)))
    snprintf(token, n, "%s%s%s", head, mid, tail);
  free(mid);
  return token;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  long long secs = -1;
  char *token = NULL, *text = NULL;
  authloop__jwks set;
  if (size < 1)
    return 0;
  switch (data[0] & 3) {
  case 0:
    if (!(token = token_of("eyJhbGciOiJIUzI1NiJ9.", data + 1, size - 1, ".c2ln")))
      return 0;
    if (authloop__jwt_lifetime(token, &secs) == 0 && (secs <= 0 || secs > 10LL * 366 * 24 * 3600))
      abort();
    if (authloop__jwt_claims_text(token, &text) == 0 && !text)
      abort();
    authloop__secret_free(text);
    break;
  case 1:
    if (authloop__jwks_parse((const char *)data + 1, size - 1, &set) == 0 &&
        set.n > AUTHLOOP__JWKS_MAX_KEYS)
      abort();
    authloop__jws_verify(TOKEN_RS256_OK, &set);
    authloop__jws_verify(TOKEN_ES256_OK, &set);
    authloop__jwks_free(&set);
    break;
  case 2:
    if (!(token = malloc(size)))
      return 0;
    memcpy(token, data + 1, size - 1);
    token[size - 1] = '\0';
    if (authloop__jws_verify(token, &good) == 0 && strcmp(token, TOKEN_RS256_OK) != 0 &&
        strcmp(token, TOKEN_ES256_OK) != 0 && strcmp(token, TOKEN_RS256_NO_KID) != 0)
      abort(); /* a forgery */
    break;
  default: {
    const char *rest = strchr(TOKEN_RS256_OK, '.');
    if (!(token = token_of("", data + 1, size - 1, rest)))
      return 0;
    /* a header other than the good one's may verify only if it names the
     * same key and algorithm (the signature covers the header: it cannot) */
    if (authloop__jws_verify(token, &good) == 0 && strcmp(token, TOKEN_RS256_OK) != 0)
      abort();
    break;
  }
  }
  free(token);
  return 0;
}
