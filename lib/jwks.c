/* SPDX-License-Identifier: MIT */
/* JWKS keys and JWS signature checks (lib/jwks.h). A JWK becomes a DER
 * SubjectPublicKeyInfo that mbedTLS parses like any public key, which keeps
 * this file clear of mbedTLS's private key structures (they differ between
 * 2.28 and 3.x, and with PSA's key storage). */
#include "jwks.h"

#include "json.h"
#include "jwt.h"
#include "util.h"

#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

#define RSA_MIN_BYTES 256  /* 2048 bits */
#define RSA_MAX_BYTES 1024 /* 8192 bits: mbedTLS's MBEDTLS_MPI_MAX_SIZE */
#define RSA_MAX_E     8

void authloop__jwks_free(authloop__jwks *s) {
  size_t i;
  for (i = 0; i < s->n; i++)
    mbedtls_pk_free(&s->keys[i].pk);
  free(s->keys);
  s->keys = NULL;
  s->n = 0;
}

/* A DER length, short or long form (what is built here stays < 64 KiB). */
static size_t der_len(unsigned char *p, size_t n) {
  if (n < 0x80) {
    p[0] = (unsigned char)n;
    return 1;
  }
  if (n < 0x100) {
    p[0] = 0x81;
    p[1] = (unsigned char)n;
    return 2;
  }
  p[0] = 0x82;
  p[1] = (unsigned char)(n >> 8);
  p[2] = (unsigned char)n;
  return 3;
}

/* A DER INTEGER of an unsigned big-endian number (leading zeros dropped, a
 * zero byte added when the high bit is set); at most 4 + 1 + len bytes. */
static size_t der_uint(unsigned char *p, const unsigned char *v, size_t len) {
  size_t at = 0, pad;
  while (len > 1 && v[0] == 0)
    v++, len--;
  pad = v[0] & 0x80 ? 1 : 0;
  p[at++] = 0x02;
  at += der_len(p + at, len + pad);
  if (pad)
    p[at++] = 0;
  memcpy(p + at, v, len);
  return at + len;
}

static size_t der_header(unsigned char *p, unsigned char tag, size_t len) {
  p[0] = tag;
  return 1 + der_len(p + 1, len);
}

/* A base64url member of object v decoded: 0, or an error. */
static int b64_member(const authloop__jdoc *d, int v, const char *key, unsigned char **out,
                      size_t *len) {
  const char *s = authloop__jstr(d, v, key);
  *out = NULL;
  return s ? authloop__b64url_decode(s, strlen(s), out, len) : AUTHLOOP_EPROTO;
}

/* RSA: SEQ { SEQ { rsaEncryption, NULL }, BIT STRING { SEQ { n, e } } } */
static int rsa_spki(const unsigned char *n, size_t nl, const unsigned char *e, size_t el,
                    unsigned char *out, size_t *out_len) {
  static const unsigned char alg[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                      0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
  unsigned char ints[RSA_MAX_BYTES + RSA_MAX_E + 16];
  size_t il = 0, at = 0, seq, bits;
  while (nl > 1 && n[0] == 0)
    n++, nl--;
  if (nl < RSA_MIN_BYTES || nl > RSA_MAX_BYTES || el == 0 || el > RSA_MAX_E)
    return AUTHLOOP_EPROTO;
  il += der_uint(ints, n, nl);
  il += der_uint(ints + il, e, el);
  seq = il + 1 + der_len((unsigned char[4]){0}, il); /* SEQ { n, e }'s length */
  bits = seq + 1;                                    /* the unused-bits byte */
  at += der_header(out + at, 0x30, sizeof(alg) + 1 + der_len((unsigned char[4]){0}, bits) + bits);
  memcpy(out + at, alg, sizeof(alg));
  at += sizeof(alg);
  at += der_header(out + at, 0x03, bits);
  out[at++] = 0;
  at += der_header(out + at, 0x30, il);
  memcpy(out + at, ints, il);
  *out_len = at + il;
  return 0;
}

/* EC P-256: SEQ { SEQ { id-ecPublicKey, prime256v1 }, BIT STRING { 04 x y } } */
static int ec_spki(const unsigned char *x, size_t xl, const unsigned char *y, size_t yl,
                   unsigned char out[91]) {
  static const unsigned char prefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
  if (xl != 32 || yl != 32) /* RFC 7518 6.2.1.2: the full coordinate length */
    return AUTHLOOP_EPROTO;
  memcpy(out, prefix, sizeof(prefix));
  memcpy(out + sizeof(prefix), x, 32);
  memcpy(out + sizeof(prefix) + 32, y, 32);
  return 0;
}

/* One JWK into k: 0; AUTHLOOP_EPROTO (not a key authloop uses: skipped);
 * AUTHLOOP_ENOMEM. */
static int read_key(const authloop__jdoc *d, int v, authloop__jwk *k) {
  const char *kty = authloop__jstr(d, v, "kty"), *kid = authloop__jstr(d, v, "kid");
  const char *alg = authloop__jstr(d, v, "alg"), *use = authloop__jstr(d, v, "use");
  unsigned char *a = NULL, *b = NULL, der[RSA_MAX_BYTES + 64];
  size_t al = 0, bl = 0, dl = 0;
  int rc = AUTHLOOP_EPROTO, want;
  if (!kty || (use && strcmp(use, "sig") != 0) ||
      (authloop__jget(d, v, "kid") >= 0 && (!kid || strlen(kid) > AUTHLOOP__JWK_MAX_KID)))
    return AUTHLOOP_EPROTO;
  if (strcmp(kty, "RSA") == 0 && (!alg || strcmp(alg, "RS256") == 0)) {
    want = AUTHLOOP__RS256;
    if ((rc = b64_member(d, v, "n", &a, &al)) == 0 && (rc = b64_member(d, v, "e", &b, &bl)) == 0)
      rc = rsa_spki(a, al, b, bl, der, &dl);
  } else if (strcmp(kty, "EC") == 0 && (!alg || strcmp(alg, "ES256") == 0) &&
             authloop__jstr(d, v, "crv") && strcmp(authloop__jstr(d, v, "crv"), "P-256") == 0) {
    want = AUTHLOOP__ES256;
    if ((rc = b64_member(d, v, "x", &a, &al)) == 0 && (rc = b64_member(d, v, "y", &b, &bl)) == 0 &&
        (rc = ec_spki(a, al, b, bl, der)) == 0)
      dl = 91;
  } else {
    return AUTHLOOP_EPROTO;
  }
  free(a);
  free(b);
  if (rc != 0)
    return rc == AUTHLOOP_ENOMEM ? rc : AUTHLOOP_EPROTO;
  mbedtls_pk_init(&k->pk);
  /* parsing checks the point is on the curve, and the RSA key's form */
  if ((rc = mbedtls_pk_parse_public_key(&k->pk, der, dl)) != 0) {
    mbedtls_pk_free(&k->pk);
    return rc == MBEDTLS_ERR_PK_ALLOC_FAILED ? AUTHLOOP_ENOMEM : AUTHLOOP_EPROTO;
  }
  k->alg = want;
  strcpy(k->kid, kid ? kid : "");
  return 0;
}

int authloop__jwks_parse(const char *text, size_t len, authloop__jwks *out) {
  authloop__jdoc d;
  int keys, rc, end, i;
  memset(out, 0, sizeof(*out));
  if ((rc = authloop__jdoc_parse(&d, text, len)) != 0) {
    authloop__jdoc_free(&d);
    return rc;
  }
  keys = authloop__jget(&d, 0, "keys");
  if (!authloop__jis(&d, keys, AUTHLOOP__J_ARRAY)) {
    authloop__jdoc_free(&d);
    return AUTHLOOP_EPROTO;
  }
  if (!(out->keys = calloc(AUTHLOOP__JWKS_MAX_KEYS, sizeof(*out->keys)))) {
    authloop__jdoc_free(&d);
    return AUTHLOOP_ENOMEM;
  }
  end = keys + (int)d.tok[keys].skip;
  for (i = keys + 1; i < end && out->n < AUTHLOOP__JWKS_MAX_KEYS; i += (int)d.tok[i].skip) {
    rc = authloop__jis(&d, i, AUTHLOOP__J_OBJECT) ? read_key(&d, i, &out->keys[out->n])
                                                  : AUTHLOOP_EPROTO;
    if (rc == AUTHLOOP_ENOMEM) {
      authloop__jdoc_free(&d);
      authloop__jwks_free(out);
      return rc;
    }
    if (rc == 0)
      out->n++;
  }
  authloop__jdoc_free(&d);
  return 0;
}

/* JOSE's r || s as DER: SEQ { INTEGER r, INTEGER s } (at most 72 bytes). */
static size_t ecdsa_der(const unsigned char raw[64], unsigned char out[80]) {
  unsigned char ints[76];
  size_t il = der_uint(ints, raw, 32);
  il += der_uint(ints + il, raw + 32, 32);
  out[0] = 0x30;
  out[1] = (unsigned char)il;
  memcpy(out + 2, ints, il);
  return il + 2;
}

static int verify_with(const authloop__jwk *k, const unsigned char hash[32],
                       const unsigned char *sig, size_t sig_len) {
  unsigned char der[80];
  int rc;
  if (k->alg == AUTHLOOP__ES256) {
    if (sig_len != 64)
      return AUTHLOOP_EREJECTED;
    sig_len = ecdsa_der(sig, der);
    sig = der;
  } else if (sig_len != mbedtls_pk_get_len(&k->pk)) {
    return AUTHLOOP_EREJECTED;
  }
  rc = mbedtls_pk_verify((mbedtls_pk_context *)&k->pk, MBEDTLS_MD_SHA256, hash, 32, sig, sig_len);
  return rc == 0 ? 0 : rc == MBEDTLS_ERR_PK_ALLOC_FAILED ? AUTHLOOP_ENOMEM : AUTHLOOP_EREJECTED;
}

int authloop__jws_verify(const char *token, const authloop__jwks *s) {
  const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  const char *alg, *kid = NULL;
  unsigned char *header = NULL, *sig = NULL, hash[32];
  size_t hl, sl, i;
  authloop__jdoc d;
  int rc, want, found = 0, other = 0;
  memset(&d, 0, sizeof(d));
  if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
    return AUTHLOOP_EPROTO;
  if ((rc = authloop__b64url_decode(token, (size_t)(dot1 - token), &header, &hl)) != 0)
    return rc;
  rc = authloop__jdoc_parse(&d, (const char *)header, hl);
  free(header);
  if (rc != 0 || !authloop__jis(&d, 0, AUTHLOOP__J_OBJECT) || authloop__jget(&d, 0, "crit") >= 0 ||
      !(alg = authloop__jstr(&d, 0, "alg")) ||
      (authloop__jget(&d, 0, "kid") >= 0 && !(kid = authloop__jstr(&d, 0, "kid")))) {
    rc = rc == AUTHLOOP_ENOMEM ? rc : AUTHLOOP_EPROTO;
    goto done;
  }
  want = strcmp(alg, "RS256") == 0   ? AUTHLOOP__RS256
         : strcmp(alg, "ES256") == 0 ? AUTHLOOP__ES256
                                     : 0;
  if (!want) { /* "none", HS256 with a public key as its secret, PS256 ... */
    rc = AUTHLOOP_EPROTO;
    goto done;
  }
  if ((rc = authloop__b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &sl)) != 0)
    goto done;
  if ((rc = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)token,
                       (size_t)(dot2 - token), hash)) != 0) {
    rc = AUTHLOOP_ENOMEM;
    goto done;
  }
  rc = AUTHLOOP_ENOENT;
  for (i = 0; i < s->n; i++) {
    const authloop__jwk *k = &s->keys[i];
    if (kid ? strcmp(k->kid, kid) != 0 : k->alg != want)
      continue;
    if (k->alg != want) { /* a key of that kid for another algorithm (RFC 7517 4.5 allows it) */
      other = 1;
      continue;
    }
    found = 1;
    if ((rc = verify_with(k, hash, sig, sl)) != AUTHLOOP_EREJECTED)
      break; /* verified, or out of memory; another key of the same kid may still do */
  }
  if (!found)
    rc = other ? AUTHLOOP_EPROTO : AUTHLOOP_ENOENT; /* only keys of another type had it */
done:
  authloop__jdoc_free(&d);
  free(sig);
  return rc;
}
