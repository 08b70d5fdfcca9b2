/* SPDX-License-Identifier: MIT */
/* lib/json.c: the scanner accepts exactly what jansson accepts and reads the
 * same values (test/json_compare.h), at the edges of every rule and over
 * many mutated answers; the writer's text reads back as what it wrote. */
#include "../json_compare.h"
#include "json.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static void agree(const char *text, size_t len) {
  const char *why = json_compare(text, len);
  if (why)
    fail_msg("%s: %.*s", why, (int)(len > 200 ? 200 : len), text);
}

static void agree_s(const char *text) { agree(text, strlen(text)); }

static int accepts(const char *text, size_t len) {
  authloop__jdoc d;
  int rc = authloop__jdoc_parse(&d, text, len);
  authloop__jdoc_free(&d);
  return rc == 0;
}

/* Each case at the edge of a rule, both sides of it. */
static void edges_of_every_rule(void **state) {
  static const char *const cases[] = {
      "{}",
      "[]",
      " [ ] ",
      "",
      " ",
      "1",
      "\"a\"",
      "true",
      "null",
      "[1]x",
      "[1] [2]",
      "{\"a\"}",
      "{\"a\" 1}",
      "{\"a\":1 \"b\":2}",
      "[1 2]",
      "{\"a\":1,}",
      "[1,]",
      "[,1]",
      "{,}",
      "{\"a\"::1}",
      "{1:2}",
      "[\"a\":1]",
      "{\"a\":1:2}",
      "[01]",
      "[-01]",
      "[-0]",
      "[0]",
      "[1.]",
      "[.5]",
      "[1.5]",
      "[1e]",
      "[1e+]",
      "[1E-2]",
      "[1e+2]",
      "[--1]",
      "[+1]",
      "[-]",
      "[0x10]",
      "[Infinity]",
      "[NaN]",
      "[tru]",
      "[truex]",
      "[true1]",
      "[nul]",
      "[falsey]",
      "[\"\\u0000\"]",
      "[\"\\u0001\"]",
      "[\"\\ud800\"]",
      "[\"\\udc00\"]",
      "[\"\\ud800\\udc00\"]",
      "[\"\\ud800\\u0041\"]",
      "[\"\\uDBFF\\uDFFF\"]",
      "[\"\\u12\"]",
      "[\"\\uZZZZ\"]",
      "[\"\\x\"]",
      "[\"\\\"]",
      "[\"a]",
      "[\"\x01\"]",
      "[\"\x1f\"]",
      "[\"\x7f\"]",
      "[\"\xc0\x80\"]",
      "[\"\xc2\x80\"]",
      "[\"\xe0\x80\x80\"]",
      "[\"\xe0\xa0\x80\"]",
      "[\"\xed\xa0\x80\"]",
      "[\"\xed\x9f\xbf\"]",
      "[\"\xf0\x90\x80\x80\"]",
      "[\"\xf4\x8f\xbf\xbf\"]",
      "[\"\xf4\x90\x80\x80\"]",
      "[\"\xf5\x80\x80\x80\"]",
      "[\"\x80\"]",
      "[\"\xc3\"]",
      "[\"\xe2\x82\"]",
      "[\xc3\xa9]",
      "\xef\xbb\xbf[]",
      "[9223372036854775807]",
      "[9223372036854775808]",
      "[-9223372036854775808]",
      "[-9223372036854775809]",
      "[00000000000000000001]",
      "[12345678901234567890]",
      "[1e308]",
      "[1e309]",
      "[-1e309]",
      "[1e-400]",
      "[0e99999999999999999999]",
      "[0.0000e400]",
      "[0.1e310]",
      "[0.1e309]",
      "[10e308]",
      "[1.7976931348623157e308]",
      "[1.7976931348623158e308]",
      "[1.7976931348623159e308]",
      "[1."
      "79769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977"
      "58720709633028641669288791094655554785194040263065748867150582068190890200070838367627385484"
      "58177115317644757302700698555713669596228429148198608349364752927190741684443655107043427115"
      "59699508093042880177904174497791e308]",
      "[1."
      "79769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977"
      "58720709633028641669288791094655554785194040263065748867150582068190890200070838367627385484"
      "58177115317644757302700698555713669596228429148198608349364752927190741684443655107043427115"
      "59699508093042880177904174497792e308]",
      "[1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179"
      "77587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854"
      "84581771153176447573027006985557136695962284291481986083493647529271907416844436551070434271"
      "1559699508093042880177904174497791.9]",
      "[1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179"
      "77587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854"
      "84581771153176447573027006985557136695962284291481986083493647529271907416844436551070434271"
      "1559699508093042880177904174497792.0]",
      "{\"a\":1,\"a\":2}",
      "{\"a\":1,\"\\u0061\":2}",
      "{\"a\":{\"a\":1},\"b\":{\"a\":2}}",
      "{\"\":1,\"\":2}",
      "{\"ab\":1,\"a\":2,\"b\":3}",
      "[\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"]",
      "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}\r\n\t ",
      "[1]\v",
      "[1]\f",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    agree_s(cases[i]);
  /* bytes after a NUL, and a NUL outside and inside strings */
  agree("[1]\0", 4);
  agree("[\"a\0\"]", 6);
  agree("[1,\0 2]", 7);
  agree("[\"a\"\0]", 6);
  agree("[1\0\0]", 5);
  /* jansson skips a NUL right after a number or literal; authloop refuses it */
  agree("[1E+2\0]", 7);
  agree("{\"a\":null\0,\"b\":2}", 17);
  assert_false(accepts("[1\0]", 4));
  assert_false(accepts("[true\0]", 7));
  /* that the edges were met on both sides: some of these must be accepted */
  assert_true(accepts("[1.7976931348623157e308]", 24));
  assert_true(accepts("[1.7976931348623158e308]", 24)); /* rounds down to DBL_MAX */
  assert_false(accepts("[1.7976931348623159e308]", 24));
  assert_true(accepts("[-9223372036854775808]", 22));
  assert_false(accepts("[9223372036854775808]", 21));
}

static char *nested(int depth, const char *open, const char *close) {
  char *s = malloc((size_t)depth * 2 + 1);
  int i;
  assert_non_null(s);
  for (i = 0; i < depth; i++) {
    s[i] = open[i % strlen(open)];
    s[2 * depth - 1 - i] = close[i % strlen(close)];
  }
  s[2 * depth] = '\0';
  return s;
}

static void depth_limit_is_jansson_s(void **state) {
  static const char *const scalars[] = {"1", "\"x\"", "true", "null", "-1.5e3"};
  int depths[] = {1, 2047, 2048, 2049, 5000}, i, k;
  (void)state;
  for (i = 0; i < 5; i++) {
    char *s = nested(depths[i], "[", "]");
    agree_s(s);
    assert_int_equal(accepts(s, strlen(s)), depths[i] <= AUTHLOOP__JSON_MAX_DEPTH);
    free(s);
  }
  /* a scalar is a level of its own: inside 2048 containers it is the 2049th */
  for (i = 2046; i <= 2048; i++) {
    for (k = 0; k < 5; k++) {
      size_t n = strlen(scalars[k]), len = (size_t)i * 2 + n;
      char *s = malloc(len + 1);
      assert_non_null(s);
      memset(s, '[', (size_t)i);
      memcpy(s + i, scalars[k], n);
      memset(s + i + n, ']', (size_t)i);
      agree(s, len);
      assert_int_equal(accepts(s, len), i < AUTHLOOP__JSON_MAX_DEPTH);
      /* and inside objects, and a mix */
      {
        size_t m = 0, j;
        char *o = malloc((size_t)i * 8 + n + 1);
        assert_non_null(o);
        for (j = 0; j < (size_t)i; j++) {
          memcpy(o + m, j % 2 ? "[" : "{\"a\":", j % 2 ? 1 : 5);
          m += j % 2 ? 1 : 5;
        }
        memcpy(o + m, scalars[k], n);
        m += n;
        for (j = (size_t)i; j-- > 0;)
          o[m++] = j % 2 ? ']' : '}';
        agree(o, m);
        assert_int_equal(accepts(o, m), i < AUTHLOOP__JSON_MAX_DEPTH);
        free(o);
      }
      free(s);
    }
  }
}

/* Objects past the walk's limit are checked sorted: duplicates anywhere in
 * them are found, and a hostile object of many keys costs n log n. */
static void duplicate_keys_in_large_objects(void **state) {
  int sizes[] = {15, 16, 17, 33, 5000}, i, k;
  (void)state;
  for (i = 0; i < 5; i++) {
    int dup;
    for (dup = -1; dup < sizes[i]; dup += sizes[i] / 3 + 1) {
      size_t cap = (size_t)sizes[i] * 24 + 16, n = 0;
      char *s = malloc(cap);
      assert_non_null(s);
      s[n++] = '{';
      for (k = 0; k < sizes[i]; k++) /* the last key repeats key `dup` */
        n += (size_t)snprintf(s + n, cap - n, "%s\"k%d\":%d", k ? "," : "",
                              k == sizes[i] - 1 && dup >= 0 && dup < k ? dup : k, k);
      s[n++] = '}';
      agree(s, n);
      assert_int_equal(accepts(s, n), !(dup >= 0 && dup < sizes[i] - 1));
      free(s);
    }
  }
}

/* The committed answers, mutated a byte at a time, deterministically. */
static void mutated_answers(void **state) {
  static const char *const seeds[] = {
      "{\"requestId\":\"r1\",\"status\":200,\"error\":null,\"controller\":\"auth\",\"action\":"
      "\"login\",\"volatile\":{},\"result\":{\"_id\":\"kuzzle-user\",\"jwt\":\"eyJ.a.b\","
      "\"expiresAt\":1700000000000,\"ttl\":3600000}}",
      "{\"accessToken\":\"a.b.c\",\"idToken\":\"d.e.f\",\"refreshToken\":\"r\\u00e9\","
      "\"expiresIn\":3600,\"user\":{\"id\":\"u1\",\"name\":\"N\\n\\\"q\\\"\",\"tags\":[1,2.5,-3e2,"
      "true,false,null]}}",
      "{\"data\":{\"uid\":\"cometchat-uid-1\",\"authToken\":\"t\",\"settings\":{\"CLIENT_API_"
      "HOST\":"
      "\"x.example\"}},\"error\":{\"code\":\"AUTH_ERR\",\"message\":\"\\ud83d\\ude00\"}}",
  };
  static const char bytes[] = "{}[]\",:\\u0aeE.+-019 tfn\x01\x80\xc3\xa9\xed\xf4";
  uint32_t rng = 12345;
  size_t s, round;
  (void)state;
  for (s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
    size_t len = strlen(seeds[s]);
    char *t = malloc(len + 4);
    assert_non_null(t);
    agree(seeds[s], len);
    for (round = 0; round < 6000; round++) {
      size_t n = len, at, k;
      memcpy(t, seeds[s], len);
      for (k = 0; k < 1 + round % 3; k++) {
        rng = rng * 1103515245u + 12345u;
        at = (rng >> 8) % n;
        rng = rng * 1103515245u + 12345u;
        switch ((rng >> 16) % 3) {
        case 0: /* replace */
          t[at] = bytes[(rng >> 4) % (sizeof(bytes) - 1)];
          break;
        case 1: /* delete */
          memmove(t + at, t + at + 1, n - at - 1);
          n--;
          break;
        default: /* insert */
          if (n < len + 3) {
            memmove(t + at + 1, t + at, n - at);
            t[at] = bytes[(rng >> 4) % (sizeof(bytes) - 1)];
            n++;
          }
        }
      }
      agree(t, n);
    }
    free(t);
  }
}

/* Long strings (the scanner reads sixteen bytes at a time where it can) with
 * one byte that ends or breaks the plain run at every offset, near and at the
 * text's end, each agreeing with jansson on the verdict and the value. */
static void stop_bytes_at_every_offset(void **state) {
  static const char *const stops[] = {"\"",   "\\\\",     "\\n",  "\\u00e9", "\x01", "\x1f",
                                      "\x7f", "\xc3\xa9", "\xc3", "\x80",    "\xff", " "};
  char text[128];
  size_t s, len, at;
  (void)state;
  for (s = 0; s < sizeof(stops) / sizeof(stops[0]); s++)
    for (len = 0; len <= 40; len++)
      for (at = 0; at <= len; at++) {
        size_t n = 0, k = strlen(stops[s]);
        text[n++] = '[';
        text[n++] = '"';
        memset(text + n, 'a', at);
        n += at;
        memcpy(text + n, stops[s], k);
        n += k;
        memset(text + n, 'b', len - at);
        n += len - at;
        text[n++] = '"';
        text[n++] = ']';
        agree(text, n);
        agree(text, n - 1); /* the text ends inside the string */
        agree(text, n - 2);
      }
}

/* A value's compact text: copied as it is when the document had no space
 * between tokens, compacted when it had some (spaces inside strings stay). */
static void compact_values(void **state) {
  static const struct {
    const char *doc, *want;
  } cases[] = {
      {"{\"u\":{\"id\":\"a b\",\"n\":[1,2]},\"t\":\"x\"}", "{\"id\":\"a b\",\"n\":[1,2]}"},
      {"{\"u\":{ \"id\" : \"a b\",\n\"n\":[1, 2]},\"t\":\"x\"}", "{\"id\":\"a b\",\"n\":[1,2]}"},
      {"{\"u\":{\"id\":\"a\\\" }\"},\"t\": \"x\"}", "{\"id\":\"a\\\" }\"}"},
      {" {\"u\":{\"id\":\"\\u0020\"}}", "{\"id\":\"\\u0020\"}"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    authloop__jdoc d;
    char *got;
    assert_int_equal(authloop__jdoc_parse(&d, cases[i].doc, strlen(cases[i].doc)), 0);
    got = authloop__jcompact(&d, authloop__jget(&d, 0, "u"));
    assert_non_null(got);
    assert_string_equal(got, cases[i].want);
    free(got);
    authloop__jdoc_free(&d);
  }
}

static void lookups(void **state) {
  const char *text = "{\"a\":{\"b\":\"x\\u00e9\"},\"n\":-42,\"e\":\"\",\"s\":[1],\"a2\":true}";
  authloop__jdoc d;
  long long n;
  size_t len;
  (void)state;
  assert_int_equal(authloop__jdoc_parse(&d, text, strlen(text)), 0);
  assert_string_equal(authloop__jstr(&d, authloop__jget(&d, 0, "a"), "b"), "x\xc3\xa9");
  assert_int_equal(authloop__jint(&d, authloop__jget(&d, 0, "n"), &n), 0);
  assert_int_equal(n, -42);
  assert_null(authloop__jstr(&d, 0, "e")); /* empty: not a usable string */
  assert_string_equal(authloop__jstring(&d, authloop__jget(&d, 0, "e")), "");
  assert_int_equal(authloop__jget(&d, 0, "missing"), -1);
  assert_int_equal(authloop__jget(&d, authloop__jget(&d, 0, "s"), "a"), -1); /* not an object */
  assert_true(authloop__jis(&d, authloop__jget(&d, 0, "a2"), AUTHLOOP__J_TRUE));
  assert_int_equal(authloop__jint(&d, authloop__jget(&d, 0, "a2"), &n), -1);
  {
    const char *raw = authloop__jraw(&d, authloop__jget(&d, 0, "a"), &len);
    assert_int_equal(len, strlen("{\"b\":\"x\\u00e9\"}"));
    assert_memory_equal(raw, "{\"b\":\"x\\u00e9\"}", len);
  }
  authloop__jdoc_free(&d);
  /* the token array grows past its first slots */
  {
    char big[4096];
    size_t k, at = 0;
    big[at++] = '[';
    for (k = 0; k < 500; k++)
      at += (size_t)snprintf(big + at, sizeof(big) - at, "%s%zu", k ? "," : "", k);
    big[at++] = ']';
    assert_int_equal(authloop__jdoc_parse(&d, big, at), 0);
    assert_int_equal(d.tok[0].skip, 501);
    assert_int_equal(authloop__jint(&d, 500, &n), 0);
    assert_int_equal(n, 499);
    authloop__jdoc_free(&d);
  }
}

static void writer_round_trips(void **state) {
  const char *pairs[] = {
      "username", "kuzzle-user", "pass\"word", "a\\b\n\r\t\b\f\x01\x1f\x7f\xc3\xa9\"", "", ""};
  char *text = authloop__jw_object(pairs, 3);
  json_t *j;
  (void)state;
  assert_non_null(text);
  j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
  assert_non_null(j);
  assert_int_equal(json_object_size(j), 3);
  assert_string_equal(json_string_value(json_object_get(j, "username")), "kuzzle-user");
  assert_string_equal(json_string_value(json_object_get(j, "pass\"word")), pairs[3]);
  assert_string_equal(json_string_value(json_object_get(j, "")), "");
  json_decref(j);
  agree_s(text);
  authloop__secret_free(text);
}

/* jansson's allocator failing at its Nth call: a parse that fails is said
 * to be out of memory (never malformed) for text that is good JSON, at every
 * N (jansson calls some of these failures "invalid token", some nothing, and
 * gets past some); and bad text is malformed, not out of memory. */
static long jansson_calls, jansson_fail_at;
static void *failing_malloc(size_t n) {
  return ++jansson_calls == jansson_fail_at ? NULL : malloc(n);
}

static void out_of_memory_is_never_malformed(void **state) {
  static const char *const good[] = {
      "{\"v\":1,\"provider\":\"oidc\",\"baseUrl\":\"https://127.0.0.1:4000\",\"user\":{\"sub\":"
      "\"alice\",\"name\":\"Alice Liddell\",\"roles\":[\"a\",\"b\",1,2.5,true,null]},"
      "\"accessToken\":\"abcdefghijklmnopqrstuvwxyz0123456789\",\"idToken\":\"\",\"lifetime\":"
      "-1,\"gen\":1764000000001,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7}",
      "[1,\"two\",{\"three\":[3,{\"\\u00e9\":\"\\ud83d\\ude00\"}]}]",
      "{\"gen\":3,\"sid\":2,\"v\":1}"};
  static const char *const bad[] = {"{\"a\":1,\"a\":2}", "{\"a\":}", "[1,2", "{\"a\":\"\\u0000\"}",
                                    "{\"a\":1}x"};
  size_t i;
  long failed_parses = 0;
  int nomem;
  json_t *j;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    nomem = -1;
    assert_null(authloop__json_parse(bad[i], strlen(bad[i]), &nomem));
    assert_int_equal(nomem, 0);
  }
  json_set_alloc_funcs(failing_malloc, free);
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    for (jansson_fail_at = 1;; jansson_fail_at++) {
      jansson_calls = 0;
      nomem = -1;
      j = authloop__json_parse(good[i], strlen(good[i]), &nomem);
      if (j) {
        assert_int_equal(nomem, 0);
        json_decref(j);
      } else {
        assert_int_equal(nomem, 1); /* good text: only memory could refuse it */
        failed_parses++;
      }
      if (jansson_calls < jansson_fail_at)
        break; /* no call was made to fail: every N was tried */
    }
  }
  json_set_alloc_funcs(malloc, free);
  assert_true(failed_parses > 20); /* the failures did reach the parser */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(edges_of_every_rule),
      cmocka_unit_test(depth_limit_is_jansson_s),
      cmocka_unit_test(duplicate_keys_in_large_objects),
      cmocka_unit_test(mutated_answers),
      cmocka_unit_test(stop_bytes_at_every_offset),
      cmocka_unit_test(compact_values),
      cmocka_unit_test(lookups),
      cmocka_unit_test(writer_round_trips),
      cmocka_unit_test(out_of_memory_is_never_malformed),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
