/* SPDX-License-Identifier: MIT */
/* libFuzzer: a JWT's claims (any bytes, base64url-encoded into a token) read
 * for their lifetime: 0 < exp - iat <= 10 years when it is accepted, never a
 * wrapped or negative value (UBSan watches the subtraction). */
#include "jwt.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *claims = authloop__b64url_encode(data, size), *token;
  long long secs = -1;
  size_t n;
  if (!claims)
    return 0;
  n = strlen(claims) + 32;
  token = malloc(n);
  memcpy(token, "eyJhbGciOiJIUzI1NiJ9.", 21);
  memcpy(token + 21, claims, strlen(claims));
  memcpy(token + 21 + strlen(claims), ".c2ln", 6);
  if (authloop__jwt_lifetime(token, &secs) == 0 && (secs <= 0 || secs > 10LL * 366 * 24 * 3600))
    abort();
  free(token);
  free(claims);
  return 0;
}
