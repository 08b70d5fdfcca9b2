/* JWT helpers. Tokens are opaque to authloop; the one thing it may read from
 * one is its lifetime (exp - iat), when a server sends no expiresIn. */
#include "internal.h"

#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

#define JWT_MAX_PART (16 * 1024)

/* base64url (RFC 4648 section 5, no padding) -> bytes, through mbedTLS's base64. */
int authloop__b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len) {
  size_t padded = (len + 3) / 4 * 4, i, n = 0;
  unsigned char *std, *buf;
  int rc;
  if (len % 4 == 1 || len > JWT_MAX_PART)
    return AUTHLOOP_EPROTO;
  if (!(std = malloc(padded + 1)) || !(buf = malloc(padded / 4 * 3 + 1))) {
    free(std);
    return AUTHLOOP_ENOMEM;
  }
  for (i = 0; i < len; i++) {
    char ch = in[i];
    if (ch == '+' || ch == '/' || ch == '=') { /* not base64url */
      free(std);
      free(buf);
      return AUTHLOOP_EPROTO;
    }
    std[i] = (unsigned char)(ch == '-' ? '+' : ch == '_' ? '/' : ch);
  }
  for (; i < padded; i++)
    std[i] = '=';
  rc = mbedtls_base64_decode(buf, padded / 4 * 3 + 1, &n, std, padded);
  free(std);
  if (rc != 0) {
    free(buf);
    return AUTHLOOP_EPROTO;
  }
  buf[n] = '\0';
  *out = buf;
  *out_len = n;
  return 0;
}

int authloop__jwt_lifetime(const char *token, long *seconds) {
  const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  unsigned char *payload;
  size_t len;
  json_t *claims, *exp, *iat;
  int rc;
  if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
    return AUTHLOOP_EPROTO; /* not a compact JWS (a JWE has five parts) */
  if ((rc = authloop__b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload, &len)) != 0)
    return rc;
  claims = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, NULL);
  mbedtls_platform_zeroize(payload, len);
  free(payload);
  exp = json_object_get(claims, "exp");
  iat = json_object_get(claims, "iat");
  rc = AUTHLOOP_EPROTO;
  if (json_is_integer(exp) && json_is_integer(iat) &&
      json_integer_value(exp) > json_integer_value(iat) &&
      json_integer_value(exp) - json_integer_value(iat) <= 10LL * 366 * 24 * 3600) {
    *seconds = (long)(json_integer_value(exp) - json_integer_value(iat));
    rc = 0;
  }
  authloop__json_wipe_decref(claims);
  return rc;
}
