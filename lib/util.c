/* SPDX-License-Identifier: MIT */
/* Helpers for secrets, byte checks, random numbers and log lines. */
#include "util.h"

#include <ctype.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h> /* every x86-64 has it */
#endif

char *authloop__secret_dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

void authloop__secret_free(char *s) {
  if (!s)
    return;
  mbedtls_platform_zeroize(s, strlen(s));
  free(s);
}

void authloop__wipe_free(void *p, size_t n) {
  if (!p)
    return;
  mbedtls_platform_zeroize(p, n);
  free(p);
}

int authloop__secret_set(char **p, const char *s) {
  char *copy = NULL;
  if (s && !(copy = authloop__secret_dup(s)))
    return AUTHLOOP_ENOMEM;
  authloop__secret_free(*p);
  *p = copy;
  return 0;
}

/* jansson frees its strings without wiping them; a parsed response holds
 * tokens, so wipe the tree in place before the last reference goes. */
static void json_wipe(json_t *j) {
  const char *key;
  json_t *v;
  size_t i;
  if (!j || j->refcount > 1)
    return; /* still shared: whoever drops it last wipes it */
  if (json_is_string(j)) {
    mbedtls_platform_zeroize((char *)json_string_value(j), json_string_length(j));
  } else if (json_is_object(j)) {
    json_object_foreach(j, key, v) json_wipe(v);
  } else if (json_is_array(j)) {
    json_array_foreach(j, i, v) json_wipe(v);
  }
}

void authloop__json_wipe_decref(json_t *j) {
  json_wipe(j);
  json_decref(j);
}

int authloop__options_copy(void *dst, size_t dst_size, size_t dst_align, const void *src) {
  size_t size, i;
  memcpy(&size, src, sizeof(size));
  if (size < sizeof(size_t) || size > 65536 || size % dst_align != 0)
    return AUTHLOOP_EINVAL;
  memset(dst, 0, dst_size);
  memcpy(dst, src, size < dst_size ? size : dst_size);
  for (i = dst_size; i < size; i++) /* a newer header's fields: unknown here, must be unset */
    if (((const unsigned char *)src)[i])
      return AUTHLOOP_ENOTSUP;
  return 0;
}

int authloop__read_and_close(int fd, size_t size, unsigned char **out, size_t *len) {
  unsigned char *buf = size < SIZE_MAX ? malloc(size + 1) : NULL;
  size_t got = 0;
  if (!buf) {
    close(fd);
    return AUTHLOOP_ENOMEM;
  }
  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got);
    if (n > 0)
      got += (size_t)n;
    else if (n == 0 || errno != EINTR)
      break;
  }
  close(fd);
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return 0;
}

int authloop__utf8_ok(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p, n, cp, i;
    if (c < 0x80) {
      p++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      n = 1, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
      n = 2, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
      n = 3, cp = c & 0x07;
    else
      return 0;
    for (i = 1; i <= n; i++) {
      if ((p[i] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
      return 0;
    p += n + 1;
  }
  return 1;
}

/* ASCII whitespace, whatever the locale counts as space (a byte of a UTF-8
 * character may be one in a single-byte locale). Tokens are checked for it as
 * they arrive: with SSE2 sixteen bytes at a time (a byte in '\t'..'\r' has
 * c - '\t' <= 4, unsigned), after the string's length, so that nothing past
 * its end is read. */
static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int authloop__has_space(const char *s) {
  size_t len = strlen(s), i = 0;
#if defined(__SSE2__)
  const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t'), four = _mm_set1_epi8(4);
  for (; i + 16 <= len; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    __m128i d = _mm_sub_epi8(v, tab);
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(_mm_max_epu8(d, four), four));
    if (_mm_movemask_epi8(hit))
      return 1;
  }
#endif
  for (; i < len; i++)
    if (is_space((unsigned char)s[i]))
      return 1;
  return 0;
}

/* Tokens are long and checked on every send: with SSE2 (every x86-64)
 * sixteen bytes at a time (a byte below 0x20 has max(c, 0x1f) == 0x1f),
 * otherwise eight (a byte below 0x20 makes (w - 0x20..) borrow into its top
 * bit while its own top bit is clear; DEL is a zero byte of w ^ 0x7f...: the
 * test can flag a byte next to a real hit, never a clean word, and a hit is
 * all that is asked). */
int authloop__header_value_ok(const char *s, size_t len) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i ctl = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
  for (; i + 16 <= len; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl), _mm_cmpeq_epi8(v, del));
    if (_mm_movemask_epi8(bad))
      return 0;
  }
#else
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  for (; i + 8 <= len; i += 8) {
    uint64_t w, d;
    memcpy(&w, s + i, 8);
    d = w ^ (0x7f * ones);
    if ((((w - 0x20 * ones) & ~w) | ((d - ones) & ~d)) & highs)
      return 0;
  }
#endif
  for (; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch < 0x20 || ch == 0x7f)
      return 0;
  }
  return 1;
}

int authloop__dot_segment(const char *seg, size_t n) {
  size_t dots = 0, i = 0;
  while (i < n) {
    if (seg[i] == '.')
      i++;
    else if (n - i >= 3 && seg[i] == '%' && seg[i + 1] == '2' && (seg[i + 2] | 0x20) == 'e')
      i += 3;
    else
      return 0;
    dots++;
  }
  return dots == 1 || dots == 2;
}

int authloop__path_text_ok(const char *p) {
  const char *seg;
  if (!p || p[0] != '/')
    return 0;
  for (seg = p + 1;; seg++) {
    const char *end = seg;
    for (; *end && *end != '/'; end++) {
      unsigned char ch = (unsigned char)*end;
      if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#')
        return 0;
    }
    if (authloop__dot_segment(seg, (size_t)(end - seg)))
      return 0;
    if (!*end)
      return 1;
    seg = end;
  }
}

int authloop__text_ok(const char *s) {
  return authloop__header_value_ok(s, strlen(s)) && authloop__utf8_ok(s);
}

int authloop__header_name_ok(const char *s) {
  static const char extra[] = "!#$%&'*+-.^_`|~";
  if (!*s)
    return 0;
  for (; *s; s++) /* ASCII letters and digits, whatever the locale says */
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')) &&
        !strchr(extra, *s))
      return 0;
  return 1;
}

/* ---- random numbers ---------------------------------------------------------------- */

/* Process-wide crypto start-up, once and under a lock, for ctxs made on
 * several threads at once:
 * - mbedTLS caches its CPU feature probe (AES-NI, VIA padlock) in plain
 *   statics the first time an AES key is set, with no lock: one key set here,
 *   once, fills the cache before any ctx can race on it.
 * - 3.x routes key parsing and signing through PSA when built with
 *   MBEDTLS_USE_PSA_CRYPTO, and PSA must be started first: psa_crypto_init()
 *   is idempotent but only thread-safe with MBEDTLS_THREADING_C, so authloop's
 *   calls are serialised. PSA is the process's: authloop never calls
 *   mbedtls_psa_crypto_free(). */
#if MBEDTLS_VERSION_MAJOR >= 3 && defined(MBEDTLS_PSA_CRYPTO_C)
#include <psa/crypto.h>
#define AUTHLOOP__PSA 1
#endif
#include <mbedtls/aes.h>
#include <uv.h>

static uv_once_t crypto_once = UV_ONCE_INIT;
static uv_mutex_t crypto_lock;
static int crypto_lock_ok;

static void crypto_once_init(void) {
  static const unsigned char zero_key[32];
  mbedtls_aes_context aes;
  crypto_lock_ok = uv_mutex_init(&crypto_lock) == 0;
  mbedtls_aes_init(&aes);
  (void)mbedtls_aes_setkey_enc(&aes, zero_key, 256);
  mbedtls_aes_free(&aes);
}

static int crypto_start(void) {
  uv_once(&crypto_once, crypto_once_init);
  if (!crypto_lock_ok)
    return AUTHLOOP_ENOMEM;
#ifdef AUTHLOOP__PSA
  {
    psa_status_t st;
    uv_mutex_lock(&crypto_lock);
    st = psa_crypto_init();
    uv_mutex_unlock(&crypto_lock);
    if (st != PSA_SUCCESS)
      return st == PSA_ERROR_INSUFFICIENT_MEMORY ? AUTHLOOP_ENOMEM : AUTHLOOP_ECRYPTO;
  }
#endif
  return 0;
}

int authloop__rng_init(authloop__rng *r) {
  static const unsigned char pers[] = "authloop";
  int rc;
  if ((rc = crypto_start()) != 0)
    return rc;
  mbedtls_entropy_init(&r->entropy);
  mbedtls_ctr_drbg_init(&r->drbg);
  r->pooled = 0;
  rc = mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy, pers, sizeof(pers));
  if (rc != 0) {
    authloop__rng_free(r);
    return rc == MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED ? AUTHLOOP_ECRYPTO : AUTHLOOP_ENOMEM;
  }
  return 0;
}

void authloop__rng_free(authloop__rng *r) {
  mbedtls_ctr_drbg_free(&r->drbg);
  mbedtls_entropy_free(&r->entropy);
}

int authloop__random(authloop__rng *r, void *buf, size_t n) {
  return mbedtls_ctr_drbg_random(&r->drbg, buf, n) == 0 ? 0 : AUTHLOOP_ENOMEM;
}

uint32_t authloop__random_u32(authloop__rng *r) {
  if (r->pooled == 0) {
    if (authloop__random(r, r->pool, sizeof(r->pool)) != 0)
      return 0;
    r->pooled = AUTHLOOP__COUNT(r->pool);
  }
  return r->pool[--r->pooled];
}

/* ---- logging ------------------------------------------------------------------------- */

/* The length of a UTF-8 control at s that a terminal, a text view or a log
 * reader acts on: C1 (U+0080..U+009F), the line and paragraph separators
 * (U+2028, U+2029: a line break to JavaScript and Python), and the
 * bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E,
 * U+200F, U+202A..U+202E, U+2066..U+2069); 0 for anything else. */
static size_t utf8_control(const unsigned char *s) {
  if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
    return 2;
  if (s[0] == 0xd8 && s[1] == 0x9c)
    return 2;
  if (s[0] == 0xe2 && s[1] == 0x80 &&
      (s[2] == 0x8e || s[2] == 0x8f || (s[2] >= 0xa8 && s[2] <= 0xae)))
    return 3;
  if (s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9)
    return 3;
  return 0;
}

void authloop__printable(char *s) {
  int utf8 = authloop__utf8_ok(s);
  char *o = s;
  while (*s) {
    unsigned char ch = (unsigned char)*s;
    size_t k = utf8 && ch >= 0x80 ? utf8_control((const unsigned char *)s) : 0;
    if (k) { /* a whole control: one '?' (its bytes are there: the text is UTF-8) */
      *o++ = '?';
      s += k;
      continue;
    }
    *o++ = ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !utf8) ? '?' : *s;
    s++;
  }
  *o = '\0';
}

int authloop__printable_ok(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  if (!authloop__text_ok(s))
    return 0;
  for (; *p; p++)
    if (*p >= 0x80 && utf8_control(p))
      return 0;
  return 1;
}

int authloop__plain_url_ok(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
      return 0;
  return 1;
}

int authloop__browser_url_ok(const char *s, int http_too) {
  size_t scheme = strncasecmp(s, "https://", 8) == 0              ? 8
                  : http_too && strncasecmp(s, "http://", 7) == 0 ? 7
                                                                  : 0;
  size_t authority = scheme ? strcspn(s + scheme, "/?#") : 0;
  return scheme && authloop__plain_url_ok(s) && authority > 0 &&
         s[scheme] != ':' && /* a port is no host */
         !memchr(s + scheme, '@', authority);
}

char *authloop__printable_dup(const char *s) {
  char *p = strdup(s);
  if (p)
    authloop__printable(p);
  return p;
}

void authloop__logf(const authloop__logger *l, authloop_log_level level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  if (!authloop__log_wants(l, level))
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  authloop__printable(line); /* a server's words in it may hold anything */
  l->write(l->ud, level, line);
}
