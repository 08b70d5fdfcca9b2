/* SPDX-License-Identifier: MIT */
/* The few mbedTLS calls whose signatures changed between 2.28 (Debian's) and
 * 3.x, in one place. */
#ifndef AUTHLOOP_MBEDTLS_COMPAT_H
#define AUTHLOOP_MBEDTLS_COMPAT_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>

#if MBEDTLS_VERSION_MAJOR >= 3
/* 3.x: key parsing takes an RNG (for blinding), signing the buffer size, and
 * the key pair's fields are private. */
#define AUTHLOOP__PK_PARSE_KEY(pk, key, keylen, pwd, pwdlen, drbg)                                 \
  mbedtls_pk_parse_key(pk, key, keylen, pwd, pwdlen, mbedtls_ctr_drbg_random, drbg)
#define AUTHLOOP__PK_SIGN(pk, md, hash, hash_len, sig, sig_size, sig_len, drbg)                    \
  mbedtls_pk_sign(pk, md, hash, hash_len, sig, sig_size, sig_len, mbedtls_ctr_drbg_random, drbg)
#define AUTHLOOP__PK_EC_GROUP(pk) (mbedtls_pk_ec(*(pk))->MBEDTLS_PRIVATE(grp).id)
#else
#define AUTHLOOP__PK_PARSE_KEY(pk, key, keylen, pwd, pwdlen, drbg)                                 \
  ((void)(drbg), mbedtls_pk_parse_key(pk, key, keylen, pwd, pwdlen))
#define AUTHLOOP__PK_SIGN(pk, md, hash, hash_len, sig, sig_size, sig_len, drbg)                    \
  ((void)(sig_size),                                                                               \
   mbedtls_pk_sign(pk, md, hash, hash_len, sig, sig_len, mbedtls_ctr_drbg_random, drbg))
#define AUTHLOOP__PK_EC_GROUP(pk) (mbedtls_pk_ec(*(pk))->grp.id)
#endif

#endif
