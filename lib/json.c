/* SPDX-License-Identifier: MIT */
/* A checking JSON scanner that records tokens instead of building a tree
 * (see json.h), and a small writer for request bodies. */
#include "json.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The smallest decimal that a double cannot hold: 2^1024 - 2^970, the point
 * from which round-to-nearest gives infinity (jansson's strtod reports it as
 * "real number overflow"). Its 309 digits. */
static const char overflow_digits[] =
    "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179775"
    "8720709633028641669288791094655554785194040263065748867150582068190890200070838367627385484581"
    "7711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699"
    "508093042880177904174497792";

typedef struct {
  authloop__jdoc *d;
  const unsigned char *s; /* the copy being decoded */
  size_t len, p;
} scanner;

/* Room for twice the tokens (a document past its first 64). */
static int grow_tokens(authloop__jdoc *d) {
  authloop__jtok *t;
  uint32_t cap = d->cap * 2;
  if (cap <= d->cap || cap > UINT32_MAX / 2)
    return -1;
  if (d->tok == d->small) {
    if (!(t = malloc((size_t)cap * sizeof(*t))))
      return -1;
    memcpy(t, d->small, sizeof(d->small));
  } else if (!(t = realloc(d->tok, (size_t)cap * sizeof(*t)))) {
    return -1;
  }
  d->tok = t;
  d->cap = cap;
  return 0;
}

/* inline: a hundred a Kuzzle cycle */
static inline int push(authloop__jdoc *d, authloop__jtype type, uint32_t off) {
  authloop__jtok *t;
  if (d->n == d->cap && grow_tokens(d) != 0)
    return -1;
  t = &d->tok[d->n];
  t->type = (uint8_t)type;
  t->skip = 1;
  t->off = off;
  t->len = 0;
  return (int)d->n++;
}

static void skip_ws_run(scanner *sc) {
  size_t p = sc->p;
  while (p < sc->len) {
    unsigned char c = sc->s[p];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    p++;
  }
  if (p != sc->p) {
    sc->d->spaced = 1;
    sc->p = p;
  }
}

/* Most answers have no space between tokens: one look, then the run. */
static inline void skip_ws(scanner *sc) {
  unsigned char c = sc->p < sc->len ? sc->s[sc->p] : 0;
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
    skip_ws_run(sc);
}

static int hex4(const unsigned char *s, unsigned *out) {
  unsigned v = 0, i;
  for (i = 0; i < 4; i++) {
    unsigned c = s[i], x;
    if (c >= '0' && c <= '9')
      x = c - '0';
    else if (c >= 'a' && c <= 'f')
      x = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      x = c - 'A' + 10;
    else
      return -1;
    v = v * 16 + x;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* The length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0], cp;
  size_t k, i;
  if (c >= 0xC2 && c <= 0xDF) {
    k = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    k = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    k = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < k)
    return 0;
  for (i = 1; i < k; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return k;
}

/* The bytes a string holds as they are: printable ASCII but '"' and '\\'. */
static const unsigned char plain[256] = {
    [' '] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1,   ['\''] = 1, ['('] = 1,
    [')'] = 1, ['*'] = 1, ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1,   ['/'] = 1,  ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,   ['7'] = 1,  ['8'] = 1,
    ['9'] = 1, [':'] = 1, [';'] = 1, ['<'] = 1, ['='] = 1, ['>'] = 1,   ['?'] = 1,  ['@'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,   ['G'] = 1,  ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,   ['O'] = 1,  ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,   ['W'] = 1,  ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['['] = 1, [']'] = 1, ['^'] = 1, ['_'] = 1,   ['`'] = 1,  ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,   ['h'] = 1,  ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,   ['p'] = 1,  ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1,   ['x'] = 1,  ['y'] = 1,
    ['z'] = 1, ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1, ['\x7f'] = 1};

/* Where the plain run from i stops, or the last whole 16 bytes before end
 * (the table finishes): tokens are most of an answer's bytes. With SSE2 (every
 * x86-64) sixteen bytes at a time; a byte stops the run when it is '"', '\\',
 * below 0x20 (max(c, 0x1f) == 0x1f) or 0x80 and up (its top bit). */
#if defined(__SSE2__)
#include <emmintrin.h>
static size_t plain_run(const unsigned char *s, size_t i, size_t end) {
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  const __m128i ctl = _mm_set1_epi8(0x1f);
  while (end - i >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
    unsigned m;
    stop = _mm_or_si128(stop, _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
    m = (unsigned)_mm_movemask_epi8(_mm_or_si128(stop, v));
    if (m)
      return i + (size_t)__builtin_ctz(m);
    i += 16;
  }
  return i;
}
#else
static size_t plain_run(const unsigned char *s, size_t i, size_t end) {
  (void)s;
  (void)end;
  return i;
}
#endif

/* A string at sc->p (its opening quote), decoded in place. */
static int scan_string(scanner *sc) {
  unsigned char *s = (unsigned char *)sc->d->buf;
  size_t i = sc->p + 1, o = i;
  int t;
  for (;;) {
    unsigned c;
    /* the common run: plain ASCII, nothing to decode (nor to move, before
     * the first escape); the NUL after the copy's end stops it */
    if (o == i) {
      i = plain_run(s, i, sc->len);
      while (plain[s[i]])
        i++;
      o = i;
    } else {
      while (plain[s[i]])
        s[o++] = s[i++];
    }
    if (i >= sc->len)
      return -1;
    c = s[i];
    if (c == '"')
      break;
    if (c < 0x20)
      return -1;
    if (c >= 0x80) {
      size_t k = utf8_seq(s + i, sc->len - i);
      if (!k)
        return -1;
      memmove(s + o, s + i, k);
      i += k;
      o += k;
      continue;
    }
    /* an escape */
    if (i + 1 >= sc->len)
      return -1;
    c = s[i + 1];
    i += 2;
    switch (c) {
    case '"':
    case '\\':
    case '/':
      s[o++] = (unsigned char)c;
      break;
    case 'b':
      s[o++] = '\b';
      break;
    case 'f':
      s[o++] = '\f';
      break;
    case 'n':
      s[o++] = '\n';
      break;
    case 'r':
      s[o++] = '\r';
      break;
    case 't':
      s[o++] = '\t';
      break;
    case 'u': {
      unsigned cp, lo;
      if (sc->len - i < 4 || hex4(s + i, &cp) != 0)
        return -1;
      i += 4;
      if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return -1;
      if (cp >= 0xD800 && cp <= 0xDBFF) { /* must pair with a low surrogate */
        if (sc->len - i < 6 || s[i] != '\\' || s[i + 1] != 'u' || hex4(s + i + 2, &lo) != 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
          return -1;
        i += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      o += put_utf8(s + o, cp);
      break;
    }
    default:
      return -1;
    }
  }
  if ((t = push(sc->d, AUTHLOOP__J_STRING, (uint32_t)(sc->p + 1))) < 0)
    return -2;
  s[o] = '\0'; /* o <= i: within the string's own text */
  sc->d->tok[t].len = (uint32_t)(o - (sc->p + 1));
  sc->p = i + 1;
  return t;
}

static int digits_ge(const unsigned char *a, size_t na, const char *b, size_t nb) {
  size_t i;
  for (i = 0; i < nb; i++) {
    unsigned char x = i < na ? a[i] : '0';
    if (x != (unsigned char)b[i])
      return x > (unsigned char)b[i];
  }
  /* equal over b's length: a is >= b */
  return 1;
}

/* A number at sc->p, with jansson's ranges: integers within long long,
 * reals that do not round to infinity. */
static int scan_number(scanner *sc) {
  const unsigned char *s = sc->s;
  size_t start = sc->p, i = start, int_start, int_end, frac_start = 0, frac_end = 0;
  int neg = 0, real = 0, t;
  if (s[i] == '-') {
    neg = 1;
    i++;
  }
  int_start = i;
  if (i < sc->len && s[i] == '0') {
    i++;
  } else if (i < sc->len && s[i] >= '1' && s[i] <= '9') {
    while (i < sc->len && s[i] >= '0' && s[i] <= '9')
      i++;
  } else {
    return -1;
  }
  int_end = i;
  if (i < sc->len && s[i] == '.') {
    real = 1;
    frac_start = ++i;
    while (i < sc->len && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == frac_start)
      return -1;
    frac_end = i;
  }
  if (i < sc->len && (s[i] == 'e' || s[i] == 'E')) {
    long long exp = 0;
    int eneg = 0;
    size_t e0;
    real = 1;
    i++;
    if (i < sc->len && (s[i] == '+' || s[i] == '-'))
      eneg = s[i++] == '-';
    e0 = i;
    while (i < sc->len && s[i] >= '0' && s[i] <= '9') {
      if (exp < 1000000000000LL)
        exp = exp * 10 + (s[i] - '0');
      i++;
    }
    if (i == e0)
      return -1;
    if (eneg)
      exp = -exp;
    {
      /* value = 0.SIG x 10^e, SIG the significant digits */
      size_t a = int_start, lead = 0;
      long long e;
      while (a < int_end && s[a] == '0')
        a++;
      if (a < int_end) {
        e = (long long)(int_end - a) + exp;
      } else {
        size_t f = frac_start;
        while (f < frac_end && s[f] == '0') {
          f++;
          lead++;
        }
        if (f == frac_end) /* zero */
          e = -1000000000000000LL;
        else
          e = exp - (long long)lead;
        a = f;
      }
      if (e > 309)
        return -1;
      if (e == 309) {
        /* compare SIG with the overflow point, digit by digit */
        unsigned char sig[sizeof(overflow_digits)];
        size_t n = 0, k;
        for (k = a; k < int_end && n < sizeof(sig); k++)
          sig[n++] = s[k];
        for (k = a < int_end ? frac_start : a; real && frac_end && k < frac_end && n < sizeof(sig);
             k++)
          sig[n++] = s[k];
        if (digits_ge(sig, n, overflow_digits, sizeof(overflow_digits) - 1))
          return -1;
      }
    }
  } else if (real) {
    /* no exponent: at most 10^(digits) */
    size_t a = int_start;
    while (a < int_end && s[a] == '0')
      a++;
    if (int_end - a > 309)
      return -1;
    if (int_end - a == 309) {
      unsigned char sig[sizeof(overflow_digits)];
      size_t n = 0, k;
      for (k = a; k < int_end; k++)
        sig[n++] = s[k];
      for (k = frac_start; k < frac_end && n < sizeof(sig); k++)
        sig[n++] = s[k];
      if (digits_ge(sig, n, overflow_digits, sizeof(overflow_digits) - 1))
        return -1;
    }
  } else {
    /* an integer: within long long */
    static const char max[] = "9223372036854775807", min[] = "9223372036854775808";
    const char *lim = neg ? min : max;
    size_t n = int_end - int_start;
    if (n > 19 || (n == 19 && memcmp(s + int_start, lim, 19) > 0))
      return -1;
  }
  if ((t = push(sc->d, real ? AUTHLOOP__J_REAL : AUTHLOOP__J_INTEGER, (uint32_t)start)) < 0)
    return -2;
  sc->d->tok[t].len = (uint32_t)(i - start);
  sc->p = i;
  return t;
}

static int scan_literal(scanner *sc) {
  static const struct {
    const char *text;
    size_t len;
    authloop__jtype type;
  } lit[] = {{"true", 4, AUTHLOOP__J_TRUE},
             {"false", 5, AUTHLOOP__J_FALSE},
             {"null", 4, AUTHLOOP__J_NULL}};
  size_t k;
  for (k = 0; k < AUTHLOOP__COUNT(lit); k++) {
    if (sc->len - sc->p >= lit[k].len && memcmp(sc->s + sc->p, lit[k].text, lit[k].len) == 0) {
      int t = push(sc->d, lit[k].type, (uint32_t)sc->p);
      if (t < 0)
        return -2;
      sc->d->tok[t].len = (uint32_t)lit[k].len;
      sc->p += lit[k].len;
      return t;
    }
  }
  return -1;
}

static int same_key(const authloop__jdoc *d, uint32_t a, uint32_t b) {
  return d->tok[a].len == d->tok[b].len &&
         memcmp(d->buf + d->tok[a].off, d->buf + d->tok[b].off, d->tok[a].len) == 0;
}

static int key_less(const authloop__jdoc *d, uint32_t x, uint32_t y) {
  const authloop__jtok *a = &d->tok[x], *b = &d->tok[y];
  int c = memcmp(d->buf + a->off, d->buf + b->off, a->len < b->len ? a->len : b->len);
  return c < 0 || (c == 0 && a->len < b->len);
}

static void sift(const authloop__jdoc *d, uint32_t *k, size_t root, size_t n) {
  for (;;) {
    size_t child = 2 * root + 1;
    uint32_t t;
    if (child >= n)
      return;
    if (child + 1 < n && key_less(d, k[child], k[child + 1]))
      child++;
    if (!key_less(d, k[root], k[child]))
      return;
    t = k[root];
    k[root] = k[child];
    k[child] = t;
    root = child;
  }
}

/* Heapsort of key token indices by key: n log n whatever the keys (qsort
 * takes no context, and the doc is not a global: ctxs run on many threads). */
static void sort_keys(const authloop__jdoc *d, uint32_t *k, size_t n) {
  size_t i;
  for (i = n / 2; i-- > 0;)
    sift(d, k, i, n);
  while (n > 1) {
    uint32_t t = k[0];
    k[0] = k[--n];
    k[n] = t;
    sift(d, k, 0, n);
  }
}

/* Objects up to this many members are checked for duplicate keys as each
 * key comes (a walk over the earlier ones); larger ones once, sorted, when
 * they close, so that a hostile object costs n log n, not n^2. */
#define WALK_KEYS 16

/* Whether the closed object at o with m members has two equal keys: 1, 0,
 * or -2 (out of memory). */
static int sorted_duplicates(const authloop__jdoc *d, uint32_t o, uint32_t m) {
  uint32_t *keys = malloc((size_t)m * sizeof(*keys)), k = o + 1, i;
  int dup = 0;
  if (!keys)
    return -2;
  for (i = 0; i < m; i++) {
    keys[i] = k;
    k += 1 + d->tok[k + 1].skip;
  }
  sort_keys(d, keys, m);
  for (i = 1; i < m && !dup; i++)
    dup = same_key(d, keys[i - 1], keys[i]);
  free(keys);
  return dup;
}

static int parse(authloop__jdoc *d, const char *text, size_t len);

int authloop__jdoc_parse(authloop__jdoc *d, const char *text, size_t len) {
  int rc = parse(d, text, len);
  if (rc)
    d->n = 0; /* what a failed parse left is half-built: nothing of it is read */
  return rc;
}

/* A small object's keys are compared with each other, pair by pair; a
 * 64-bit filter per open object (of its keys' lengths and first and last
 * bytes) says when a key cannot be one seen before, which is nearly always. */
static int first_of_its_kind(const authloop__jdoc *d, uint32_t k, int depth, uint64_t *seen) {
  const authloop__jtok *t = &d->tok[k];
  const unsigned char *s = (const unsigned char *)d->buf + t->off;
  uint64_t bit;
  if (depth > 64)
    return 0;
  bit = 1ull << ((t->len * 7u + (t->len ? s[0] * 3u + s[t->len - 1] : 0u)) & 63u);
  if (seen[depth - 1] & bit)
    return 0;
  seen[depth - 1] |= bit;
  return 1;
}

static int parse(authloop__jdoc *d, const char *text, size_t len) {
  uint64_t seen[64]; /* first_of_its_kind's filters, by depth */
  scanner sc;
  int cur = -1, depth = 0, rc = AUTHLOOP_EPROTO;
  memset(d, 0, sizeof(*d));
  d->text = text;
  d->tok = d->small;
  d->cap = AUTHLOOP__COUNT(d->small);
  if (len >= UINT32_MAX)
    return AUTHLOOP_EPROTO;
  if (!(d->buf = malloc(len + 1)))
    return AUTHLOOP_ENOMEM;
  memcpy(d->buf, text, len);
  d->buf[len] = '\0';
  d->buf_len = len + 1;
  sc.d = d;
  sc.s = (const unsigned char *)d->buf;
  sc.len = len;
  sc.p = 0;
  skip_ws(&sc);
  if (sc.p >= len || (sc.s[sc.p] != '{' && sc.s[sc.p] != '['))
    return AUTHLOOP_EPROTO;
  for (;;) {
    /* a value at sc.p */
    int t;
    unsigned char c = sc.p < len ? sc.s[sc.p] : 0;
    if (c == '{' || c == '[') {
      if (++depth > AUTHLOOP__JSON_MAX_DEPTH)
        return AUTHLOOP_EPROTO;
      if (depth <= (int)AUTHLOOP__COUNT(seen))
        seen[depth - 1] = 0;
      if ((t = push(d, c == '{' ? AUTHLOOP__J_OBJECT : AUTHLOOP__J_ARRAY, (uint32_t)sc.p)) < 0)
        return AUTHLOOP_ENOMEM;
      /* while open: len = the parent + 1, skip = members so far */
      d->tok[t].len = (uint32_t)(cur + 1);
      d->tok[t].skip = 0;
      cur = t;
      sc.p++;
      skip_ws(&sc);
      if (sc.p < len && sc.s[sc.p] == (c == '{' ? '}' : ']'))
        goto close;
      if (c == '[')
        continue;
      goto key;
    } else if (depth >= AUTHLOOP__JSON_MAX_DEPTH) {
      return AUTHLOOP_EPROTO; /* jansson counts a scalar as a level of its own */
    } else if (c == '"') {
      t = scan_string(&sc);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      t = scan_number(&sc);
    } else {
      t = scan_literal(&sc);
    }
    if (t == -2)
      return AUTHLOOP_ENOMEM;
    if (t < 0)
      return AUTHLOOP_EPROTO;
  after:
    skip_ws(&sc);
    if (cur < 0) {
      rc = sc.p == len ? 0 : AUTHLOOP_EPROTO;
      break;
    }
    if (sc.p >= len)
      return AUTHLOOP_EPROTO;
    c = sc.s[sc.p];
    if (c == ',') {
      sc.p++;
      skip_ws(&sc);
      if (d->tok[cur].type == AUTHLOOP__J_ARRAY) {
        d->tok[cur].skip++;
        continue;
      }
      d->tok[cur].skip++;
      goto key;
    }
    if (c != (d->tok[cur].type == AUTHLOOP__J_OBJECT ? '}' : ']'))
      return AUTHLOOP_EPROTO;
    d->tok[cur].skip++;
  close : {
    authloop__jtok *o = &d->tok[cur];
    int parent = (int)o->len - 1;
    uint32_t members = o->skip;
    if (o->type == AUTHLOOP__J_OBJECT && members > WALK_KEYS) {
      int dup = sorted_duplicates(d, (uint32_t)cur, members);
      if (dup)
        return dup < 0 ? AUTHLOOP_ENOMEM : AUTHLOOP_EPROTO;
      o = &d->tok[cur];
    }
    o->skip = d->n - (uint32_t)cur;
    sc.p++;
    o->len = (uint32_t)(sc.p - o->off);
    cur = parent;
    depth--;
    goto after;
  }
  key : {
    int k;
    if (sc.p >= len || sc.s[sc.p] != '"')
      return AUTHLOOP_EPROTO;
    if ((k = scan_string(&sc)) < 0)
      return k == -2 ? AUTHLOOP_ENOMEM : AUTHLOOP_EPROTO;
    if (d->tok[cur].skip < WALK_KEYS && !first_of_its_kind(d, (uint32_t)k, depth, seen)) {
      uint32_t j = (uint32_t)cur + 1;
      while (j < (uint32_t)k) {
        if (same_key(d, j, (uint32_t)k))
          return AUTHLOOP_EPROTO;
        j += 1 + d->tok[j + 1].skip;
      }
    }
    skip_ws(&sc);
    if (sc.p >= len || sc.s[sc.p] != ':')
      return AUTHLOOP_EPROTO;
    sc.p++;
    skip_ws(&sc);
  }
  }
  return rc;
}

void authloop__jdoc_free(authloop__jdoc *d) {
  if (d->buf)
    authloop__wipe_free(d->buf, d->buf_len);
  if (d->tok != d->small)
    free(d->tok);
  memset(d, 0, sizeof(*d));
}

int authloop__jget(const authloop__jdoc *d, int v, const char *key) {
  uint32_t i, end, n;
  if (!authloop__jis(d, v, AUTHLOOP__J_OBJECT))
    return -1;
  n = (uint32_t)strlen(key);
  end = (uint32_t)v + d->tok[v].skip;
  for (i = (uint32_t)v + 1; i < end; i += 1 + d->tok[i + 1].skip)
    if (d->tok[i].len == n && memcmp(d->buf + d->tok[i].off, key, n) == 0)
      return (int)i + 1;
  return -1;
}

const char *authloop__jstring(const authloop__jdoc *d, int v) {
  return authloop__jis(d, v, AUTHLOOP__J_STRING) ? d->buf + d->tok[v].off : NULL;
}

const char *authloop__jstr(const authloop__jdoc *d, int v, const char *key) {
  int m = authloop__jget(d, v, key);
  return authloop__jis(d, m, AUTHLOOP__J_STRING) && d->tok[m].len > 0 ? d->buf + d->tok[m].off
                                                                      : NULL;
}

int authloop__jint(const authloop__jdoc *d, int v, long long *out) {
  const char *s;
  uint32_t i, n;
  unsigned long long u = 0;
  int neg;
  if (!authloop__jis(d, v, AUTHLOOP__J_INTEGER))
    return -1;
  s = d->buf + d->tok[v].off;
  n = d->tok[v].len;
  neg = s[0] == '-';
  for (i = (uint32_t)neg; i < n; i++)
    u = u * 10 + (unsigned)(s[i] - '0'); /* within range: checked by the scan */
  *out = !neg ? (long long)u : u ? -(long long)(u - 1) - 1 : 0;
  return 0;
}

char *authloop__jcompact(const authloop__jdoc *d, int v) {
  size_t len;
  const char *raw = authloop__jraw(d, v, &len);
  char *out;
  if (d->spaced)
    return authloop__json_compact(raw, len);
  if ((out = malloc(len + 1))) { /* no space between tokens anywhere: already compact */
    memcpy(out, raw, len);
    out[len] = '\0';
  }
  return out;
}

char *authloop__json_compact(const char *raw, size_t len) {
  char *out = len < SIZE_MAX ? malloc(len + 1) : NULL;
  size_t i, o = 0;
  int in_string = 0;
  if (!out)
    return NULL;
  for (i = 0; i < len; i++) {
    char c = raw[i];
    if (in_string) {
      out[o++] = c;
      if (c == '\\' && i + 1 < len)
        out[o++] = raw[++i]; /* escaped: a quote here does not end the string */
      else if (c == '"')
        in_string = 0;
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out[o++] = c;
      in_string = c == '"';
    }
  }
  out[o] = '\0';
  return out;
}

/* ---- the writer ------------------------------------------------------------------------- */

static int reserve(authloop__jw *w, size_t more) {
  size_t cap;
  char *p;
  if (w->failed)
    return -1;
  if (more <= w->cap - w->len)
    return 0;
  cap = w->cap ? w->cap : 64;
  while (cap - w->len < more) {
    if (cap > SIZE_MAX / 2) {
      w->failed = 1;
      return -1;
    }
    cap *= 2;
  }
  /* never realloc: the old text may be a secret */
  if (!(p = malloc(cap))) {
    w->failed = 1;
    return -1;
  }
  if (w->data) {
    memcpy(p, w->data, w->len);
    authloop__wipe_free(w->data, w->cap);
  }
  w->data = p;
  w->cap = cap;
  return 0;
}

void authloop__jw_raw(authloop__jw *w, const char *text, size_t len) {
  if (len == SIZE_MAX)
    w->failed = 1;
  if (w->failed || reserve(w, len + 1) != 0)
    return;
  memcpy(w->data + w->len, text, len);
  w->len += len;
  w->data[w->len] = '\0';
}

void authloop__jw_string(authloop__jw *w, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t i, run;
  if (len > (SIZE_MAX - 3) / 6)
    w->failed = 1;
  if (w->failed || reserve(w, len * 6 + 3) != 0)
    return;
  w->data[w->len++] = '"';
  for (i = 0; i < len; i = run) {
    unsigned char c;
    run = i;
    while (run < len && (c = (unsigned char)s[run]) >= 0x20 && c != '"' && c != '\\')
      run++;
    memcpy(w->data + w->len, s + i, run - i);
    w->len += run - i;
    if (run == len)
      break;
    c = (unsigned char)s[run++];
    w->data[w->len++] = '\\';
    switch (c) {
    case '"':
    case '\\':
      w->data[w->len++] = (char)c;
      break;
    case '\n':
      w->data[w->len++] = 'n';
      break;
    case '\r':
      w->data[w->len++] = 'r';
      break;
    case '\t':
      w->data[w->len++] = 't';
      break;
    case '\b':
      w->data[w->len++] = 'b';
      break;
    case '\f':
      w->data[w->len++] = 'f';
      break;
    default:
      w->data[w->len++] = 'u';
      w->data[w->len++] = '0';
      w->data[w->len++] = '0';
      w->data[w->len++] = hex[c >> 4];
      w->data[w->len++] = hex[c & 15];
    }
  }
  w->data[w->len++] = '"';
  w->data[w->len] = '\0';
}

static int dump_chunk(const char *chunk, size_t n, void *ud) {
  authloop__jw *w = ud;
  authloop__jw_raw(w, chunk, n);
  return w->failed ? -1 : 0;
}

char *authloop__json_text(const json_t *j) {
  authloop__jw w = {NULL, 0, 0, 0};
  if (json_dump_callback(j, dump_chunk, &w, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 || !w.data) {
    if (w.data)
      authloop__wipe_free(w.data, w.cap);
    return NULL;
  }
  return w.data;
}

char *authloop__jw_object(const char *const *pairs, size_t n) {
  authloop__jw w = {NULL, 0, 0, 0};
  size_t i;
  authloop__jw_raw(&w, "{", 1);
  for (i = 0; i < n; i++) {
    if (i)
      authloop__jw_raw(&w, ",", 1);
    authloop__jw_string(&w, pairs[2 * i], strlen(pairs[2 * i]));
    authloop__jw_raw(&w, ":", 1);
    authloop__jw_string(&w, pairs[2 * i + 1], strlen(pairs[2 * i + 1]));
  }
  authloop__jw_raw(&w, "}", 1);
  if (w.failed) {
    if (w.data)
      authloop__wipe_free(w.data, w.cap);
    return NULL;
  }
  return w.data;
}

json_t *authloop__json_parse(const char *text, size_t len, int *nomem) {
  json_error_t e;
  authloop__jdoc d;
  json_t *j;
  int rc;
  if (!text)
    text = "", len = 0;
  /* jansson sets the error's code only where it reports an error: some of
   * its allocation failures return NULL with none set (the code byte would
   * be read uninitialised), others as a syntax error ("invalid token"). A
   * refusal always has a text, and is this module's refusal too: text that
   * this parser (which tells its own allocation failures apart) accepts and
   * jansson refused, jansson refused for want of memory. */
  memset(&e, 0, sizeof(e));
  j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
  if (!nomem)
    return j;
  *nomem = 0;
  if (j)
    return j;
  if (json_error_code(&e) == json_error_out_of_memory || !e.text[0]) {
    *nomem = 1;
    return NULL;
  }
  rc = authloop__jdoc_parse(&d, text, len);
  authloop__jdoc_free(&d);
  *nomem = rc != AUTHLOOP_EPROTO;
  return NULL;
}
