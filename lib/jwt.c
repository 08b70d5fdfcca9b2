/* SPDX-License-Identifier: MIT */
/* JWT helpers: base64url, done once here; the lifetime of a token a server
 * sent without expiresIn (tokens are opaque otherwise); and signing the
 * pre-auth bearer with the backend's private key (RS256, ES256). */
#include "jwt.h"

#include "json.h"

#include "mbedtls_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/asn1.h>
#include <mbedtls/base64.h>
#include <mbedtls/bignum.h>
#include <mbedtls/md.h>
#include <mbedtls/pem.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
  /* canonical only: the bits the last character carries past the data are
   * zero, so that no two texts decode to the same bytes (a signature that
   * verifies under another spelling would be a second token) */
  if (len % 4 >= 2) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = strchr(alphabet, std[len - 1]);
    unsigned spare = len % 4 == 2 ? 0x0f : 0x03;
    if (!at || ((unsigned)(at - alphabet) & spare) != 0) {
      free(std);
      free(buf);
      return AUTHLOOP_EPROTO;
    }
  }
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

/* The claims of a compact JWS (unverified) read into d: 0, or an error (d
 * is left for authloop__jdoc_free either way). With text, they are also
 * copied there as compact JSON text. */
static int claims_of(const char *token, authloop__jdoc *d, char **text) {
  const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  unsigned char *payload;
  size_t len;
  int rc;
  memset(d, 0, sizeof(*d));
  if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
    return AUTHLOOP_EPROTO; /* not a compact JWS (a JWE has five parts) */
  if ((rc = authloop__b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload, &len)) != 0)
    return rc;
  rc = authloop__jdoc_parse(d, (const char *)payload, len);
  if (rc == 0 && !authloop__jis(d, 0, AUTHLOOP__J_OBJECT))
    rc = AUTHLOOP_EPROTO; /* an array is no claims set */
  if (rc == 0 && text && !(*text = authloop__json_compact((const char *)payload, len)))
    rc = AUTHLOOP_ENOMEM;
  mbedtls_platform_zeroize(payload, len);
  free(payload);
  d->text = NULL; /* gone: only the decoded copy is read */
  return rc;
}

int authloop__jwt_expiry(const char *token, long long *exp_s) {
  authloop__jdoc d;
  int rc = claims_of(token, &d, NULL), exp = authloop__jget(&d, 0, "exp");
  long long e;
  if (!rc && exp < 0) {
    rc = AUTHLOOP_ENOENT; /* a token that never expires */
  } else if (!rc) {
    rc = AUTHLOOP_EPROTO;
    /* after the epoch and within the range every caller bounds against */
    if (authloop__jint(&d, exp, &e) == 0 && e > 0 && e < (1LL << 40)) {
      *exp_s = e;
      rc = 0;
    }
  }
  authloop__jdoc_free(&d);
  return rc;
}

int authloop__jwt_lifetime(const char *token, long long *seconds) {
  authloop__jdoc d;
  long long e, i;
  int rc = claims_of(token, &d, NULL);
  if (rc == 0) {
    rc = AUTHLOOP_EPROTO;
    if (authloop__jint(&d, authloop__jget(&d, 0, "exp"), &e) == 0 &&
        authloop__jint(&d, authloop__jget(&d, 0, "iat"), &i) == 0 && i >= 0 && e > i &&
        e - i <= 10LL * 366 * 24 * 3600) {
      /* ranges first: with both at or after the epoch, e - i cannot overflow */
      *seconds = e - i;
      rc = 0;
    }
  }
  authloop__jdoc_free(&d);
  return rc;
}

int authloop__jwt_claims_text(const char *token, char **text) {
  authloop__jdoc d;
  int rc;
  *text = NULL;
  rc = claims_of(token, &d, text);
  authloop__jdoc_free(&d);
  return rc;
}

/* ---- signing (pre-auth bearers) ---------------------------------------------------- */

#define KEY_MAX_BYTES (64 * 1024)

char *authloop__b64url_encode(const unsigned char *in, size_t len) {
  size_t n = 0, cap = (len + 2) / 3 * 4 + 1, i, j;
  unsigned char *buf = malloc(cap);
  if (!buf)
    return NULL;
  if (mbedtls_base64_encode(buf, cap, &n, in, len) != 0) {
    free(buf);
    return NULL;
  }
  for (i = j = 0; i < n; i++) {
    unsigned char ch = buf[i];
    if (ch == '=')
      break;
    buf[j++] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
  }
  buf[j] = '\0';
  return (char *)buf;
}

/* mbedTLS's out-of-memory codes, alone or in a high-level code's low bits:
 * ENOMEM, never taken for a bad key. */
static int mbedtls_nomem(int rc) {
  int high = -((-rc) & 0x7F80), low = -((-rc) & 0x007F);
  return rc < 0 && (high == MBEDTLS_ERR_PK_ALLOC_FAILED || high == MBEDTLS_ERR_PEM_ALLOC_FAILED ||
                    high == MBEDTLS_ERR_ECP_ALLOC_FAILED || low == MBEDTLS_ERR_MPI_ALLOC_FAILED ||
                    low == MBEDTLS_ERR_ASN1_ALLOC_FAILED);
}

static int read_key_file(const char *path, unsigned char **out, size_t *len) {
  struct stat st;
  /* O_NONBLOCK: a FIFO at the path must not block the loop (it is refused
   * below, as anything but a regular file is) */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return errno == ENOMEM ? AUTHLOOP_ENOMEM : AUTHLOOP_EKEY;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > KEY_MAX_BYTES) {
    close(fd);
    return AUTHLOOP_EKEY;
  }
  return authloop__read_and_close(fd, (size_t)st.st_size, out, len);
}

int authloop__key_load(const char *file, const char *pem, size_t pem_len, const char *passphrase,
                       authloop__rng *rng, mbedtls_pk_context *pk, int *alg) {
  unsigned char *buf;
  size_t len;
  int rc;
  mbedtls_pk_init(pk);
  if (file) {
    if ((rc = read_key_file(file, &buf, &len)) != 0)
      return rc;
  } else {
    len = pem_len ? pem_len : strlen(pem);
    if (len > KEY_MAX_BYTES)
      return AUTHLOOP_EKEY;
    if (!(buf = malloc(len + 1)))
      return AUTHLOOP_ENOMEM;
    memcpy(buf, pem, len);
    buf[len] = '\0';
  }
  /* PEM input is parsed with its terminating NUL counted */
  rc = AUTHLOOP__PK_PARSE_KEY(pk, buf, len + 1, (const unsigned char *)passphrase,
                              passphrase ? strlen(passphrase) : 0, &rng->drbg);
  mbedtls_platform_zeroize(buf, len);
  free(buf);
  if (mbedtls_nomem(rc))
    rc = AUTHLOOP_ENOMEM;
  else if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || rc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH)
    rc = AUTHLOOP_EKEYPASS;
  else if (rc == MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE || rc == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE)
    rc = AUTHLOOP_EKEYCIPHER; /* e.g. PKCS#8 with AES on mbedTLS 2.28 */
  else if (rc == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG)
    rc = AUTHLOOP_EKEYTYPE; /* e.g. Ed25519 */
  else if (rc != 0)
    rc = AUTHLOOP_EKEY;
  else if (mbedtls_pk_get_type(pk) == MBEDTLS_PK_RSA && mbedtls_pk_get_bitlen(pk) >= 2048)
    *alg = AUTHLOOP__RS256;
  else if (mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
           AUTHLOOP__PK_EC_GROUP(pk) == MBEDTLS_ECP_DP_SECP256R1)
    *alg = AUTHLOOP__ES256;
  else
    rc = AUTHLOOP_EKEYTYPE;
  if (rc)
    mbedtls_pk_free(pk); /* wipes what was parsed */
  return rc;
}

/* An ECDSA signature from DER (SEQUENCE of two INTEGERs) to JOSE's r || s. */
static int ecdsa_der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64]) {
  unsigned char *p = (unsigned char *)der;
  const unsigned char *end = der + len;
  size_t seq;
  mbedtls_mpi r, s;
  int rc;
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  rc = mbedtls_asn1_get_tag(&p, end, &seq, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
  if (rc == 0 && p + seq != end)
    rc = -1;
  if (rc == 0)
    rc = mbedtls_asn1_get_mpi(&p, end, &r);
  if (rc == 0)
    rc = mbedtls_asn1_get_mpi(&p, end, &s);
  if (rc == 0)
    rc = mbedtls_mpi_write_binary(&r, raw, 32);
  if (rc == 0)
    rc = mbedtls_mpi_write_binary(&s, raw + 32, 32);
  mbedtls_mpi_free(&r);
  mbedtls_mpi_free(&s);
  return rc;
}

static char *b64url_json(const json_t *j) {
  char *s = authloop__json_text(j), *out;
  if (!s)
    return NULL;
  out = authloop__b64url_encode((const unsigned char *)s, strlen(s));
  authloop__secret_free(s);
  return out;
}

int authloop__jwt_sign(mbedtls_pk_context *pk, int alg, const char *kid, const json_t *claims,
                       authloop__rng *rng, char **out) {
  unsigned char hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE], raw[64];
  const unsigned char *sig_bytes = sig;
  size_t sig_len = 0, n;
  json_t *header =
      json_pack("{s:s, s:s}", "alg", alg == AUTHLOOP__ES256 ? "ES256" : "RS256", "typ", "JWT");
  char *h = NULL, *p = NULL, *s = NULL, *token = NULL;
  int rc = AUTHLOOP_ENOMEM;
  if (header && kid)
    json_object_set_new(header, "kid", json_string(kid));
  if (!header || !(h = b64url_json(header)) || !(p = b64url_json(claims)))
    goto done;
  n = strlen(h) + 1 + strlen(p);
  if (!(token = malloc(n + 1 + (sizeof(sig) * 4 / 3 + 4))))
    goto done;
  snprintf(token, n + 1, "%s.%s", h, p);
  if ((rc = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (unsigned char *)token, n,
                       hash)) != 0 ||
      (rc = AUTHLOOP__PK_SIGN(pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, sizeof(sig), &sig_len,
                              &rng->drbg)) != 0) {
    rc = mbedtls_nomem(rc) ? AUTHLOOP_ENOMEM : AUTHLOOP_EKEY;
    goto done;
  }
  if (alg == AUTHLOOP__ES256) {
    if ((rc = ecdsa_der_to_raw(sig, sig_len, raw)) != 0) {
      rc = mbedtls_nomem(rc) ? AUTHLOOP_ENOMEM : AUTHLOOP_EKEY;
      goto done;
    }
    sig_bytes = raw;
    sig_len = sizeof(raw);
  }
  if (!(s = authloop__b64url_encode(sig_bytes, sig_len))) {
    rc = AUTHLOOP_ENOMEM;
    goto done;
  }
  snprintf(token + n, 2 + strlen(s), ".%s", s);
  *out = token;
  token = NULL;
  rc = 0;
done:
  json_decref(header);
  free(h);
  authloop__secret_free(p);
  free(s);
  authloop__secret_free(token);
  mbedtls_platform_zeroize(sig, sizeof(sig));
  return rc;
}
