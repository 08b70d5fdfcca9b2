/* SPDX-License-Identifier: MIT */
/* URLs: the base URL policy (http(s) only, plain http only to loopback) and
 * request URLs built with libcurl's URL API from a description. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport.h"

#include <stdlib.h>
#include <string.h>

static void accepted(void **state) {
  static const char *const ok[] = {
      "https://chat.example.com", "https://chat.example.com/", "https://chat.example.com:8443/api",
      "http://127.0.0.1:8080",    "http://127.9.9.9",          "http://localhost:1/x",
      "http://[::1]:9000",        "HTTPS://Chat.Example.com",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    if (authloop__check_base_url(ok[i], 0, NULL) != 0)
      fail_msg("%s refused", ok[i]);
}

static void refused(void **state) {
  static const struct {
    const char *url;
    int err;
  } bad[] = {
      {NULL, AUTHLOOP_EINVAL},
      {"", AUTHLOOP_EINVAL},
      {"chat.example.com", AUTHLOOP_EINVAL}, /* no scheme: not guessed */
      {"ftp://127.0.0.1", AUTHLOOP_EINVAL},
      {"file:///etc/passwd", AUTHLOOP_EINVAL},
      {"https://a b.example.com", AUTHLOOP_EINVAL},
      {"https://example.com/?x=1", AUTHLOOP_EINVAL},
      {"https://example.com/#frag", AUTHLOOP_EINVAL},
      {"http://example.com", AUTHLOOP_EINSECURE},
      {"http://10.0.0.1", AUTHLOOP_EINSECURE},
      {"http://128.0.0.1", AUTHLOOP_EINSECURE},
      {"http://[::2]", AUTHLOOP_EINSECURE},
      {"http://localhost.example.com", AUTHLOOP_EINSECURE},
      {"https://example.com\r\nX-Injected: 1", AUTHLOOP_EINVAL},
      {"https://exa\x7fmple.com", AUTHLOOP_EINVAL},
      {"https://user:pw@example.com", AUTHLOOP_EINVAL}, /* would be sent as Basic auth */
      {"https://user@example.com", AUTHLOOP_EINVAL},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = authloop__check_base_url(bad[i].url, 0, NULL);
    if (rc != bad[i].err)
      fail_msg("%s -> %s, want %s", bad[i].url ? bad[i].url : "(null)", authloop_err_name(rc),
               authloop_err_name(bad[i].err));
  }
}

static void insecure_opt_in(void **state) {
  (void)state;
  assert_int_equal(authloop__check_base_url("http://example.com", 1, NULL), 0);
  assert_int_equal(authloop__check_base_url("ftp://example.com", 1, NULL), AUTHLOOP_EINVAL);
}

static char *url_of(const authloop__request *r) {
  char *u = NULL;
  int rc = authloop__request_url(r, &u);
  if (rc)
    fail_msg("no URL: %s", authloop_err_name(rc));
  return u;
}

/* A segment reaches the server as one segment, whatever it holds. */
static void segments_are_encoded_whole(void **state) {
  authloop__request r = {0};
  char long_uid[4001];
  char *u;
  (void)state;
  r.method = "POST";
  r.base = "https://h.example/api/v3.0/";
  authloop__request_path(&r, "/_login", 0);
  authloop__request_path(&r, "a/b?c#d%e f", 1);
  authloop__request_query(&r, "expiresIn", "1 hour&x=y");
  authloop__request_query(&r, "global", "true");
  u = url_of(&r);
  assert_string_equal(u, "https://h.example/api/v3.0/_login/a%2fb%3fc%23d%25e%20f"
                         "?expiresIn=1+hour%26x%3dy&global=true");
  curl_free(u);
  /* no fixed buffer: a 4,000-byte uid comes out whole */
  memset(long_uid, 'u', sizeof(long_uid) - 1);
  long_uid[sizeof(long_uid) - 1] = '\0';
  memset(&r, 0, sizeof(r));
  r.base = "https://h.example";
  authloop__request_path(&r, "/users", 0);
  authloop__request_path(&r, long_uid, 1);
  authloop__request_path(&r, "/auth_tokens", 0);
  u = url_of(&r);
  assert_int_equal(strlen(u), strlen("https://h.example/users//auth_tokens") + 4000);
  curl_free(u);
}

/* An endpoint's own query stays, with what a request adds after it
 * (RFC 6749 3.1, 3.2: discovery may give one, "?p=policy"). */
static void a_base_with_a_query_keeps_it(void **state) {
  authloop__request r = {0};
  char *u;
  (void)state;
  r.method = "POST";
  r.base = "https://op.example/tenant/oauth2/v2.0/token?p=b2c_1_signin";
  u = url_of(&r);
  assert_string_equal(u, "https://op.example/tenant/oauth2/v2.0/token?p=b2c_1_signin");
  curl_free(u);
  authloop__request_query(&r, "global", "true");
  u = url_of(&r);
  assert_string_equal(u, "https://op.example/tenant/oauth2/v2.0/token?p=b2c_1_signin&global=true");
  curl_free(u);
}

static void bad_parts_are_refused(void **state) {
  static const char *const literals[] = {"no-slash", "/a b",      "/a?b",  "/a#b",
                                         "/a\r\nb",  "/\x7f",     "/../x", "/a/./b",
                                         "/a/..",    "/%2E%2e/x", "/.%2e", "/\xc3\xa9"};
  authloop__request r = {0};
  char *u;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(literals) / sizeof(literals[0]); i++) {
    memset(&r, 0, sizeof(r));
    r.base = "https://h.example";
    authloop__request_path(&r, literals[i], 0);
    assert_int_equal(authloop__request_url(&r, &u), AUTHLOOP_EINVAL);
  }
  /* dots that are not a whole segment are ordinary */
  assert_true(authloop__path_text_ok("/a/.well-known/x..y/..."));
  memset(&r, 0, sizeof(r));
  r.base = "https://h.example";
  authloop__request_path(&r, "", 1); /* an empty segment */
  assert_int_equal(authloop__request_url(&r, &u), AUTHLOOP_EINVAL);
  { /* a value escaped as one segment ("/users/{uid}/..."): "." and ".." escape
     * to themselves, and would climb */
    static const char *const dots[] = {".", "..", "%2e", ".%2E"};
    for (i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
      memset(&r, 0, sizeof(r));
      r.base = "https://h.example/v3.0";
      authloop__request_path(&r, "/users", 0);
      authloop__request_path(&r, dots[i], 1);
      authloop__request_path(&r, "/auth_tokens", 0);
      assert_int_equal(authloop__request_url(&r, &u), AUTHLOOP_EINVAL);
    }
    memset(&r, 0, sizeof(r));
    r.base = "https://h.example/v3.0";
    authloop__request_path(&r, "/users", 0);
    authloop__request_path(&r, "...", 1); /* three dots: a name */
    assert_int_equal(authloop__request_url(&r, &u), 0);
    assert_string_equal(u, "https://h.example/v3.0/users/...");
    curl_free(u);
  }
  memset(&r, 0, sizeof(r));
  r.base = "not a url";
  assert_int_equal(authloop__request_url(&r, &u), AUTHLOOP_EINVAL);
  /* the fixed slots refuse an overflow rather than drop a part */
  memset(&r, 0, sizeof(r));
  for (i = 0; i < AUTHLOOP__MAX_PATH; i++)
    assert_int_equal(authloop__request_path(&r, "/x", 0), 0);
  assert_int_equal(authloop__request_path(&r, "/x", 0), AUTHLOOP_ENOMEM);
}

/* The one rule for header bytes. */
static void header_bytes(void **state) {
  (void)state;
  assert_true(authloop__header_value_ok("Bearer abc.def-ghi_~+/=", 23));
  assert_true(authloop__header_value_ok("caf\xc3\xa9", 5)); /* obs-text passes */
  assert_false(authloop__header_value_ok("a\rb", 3));
  assert_false(authloop__header_value_ok("a\nb", 3));
  assert_false(authloop__header_value_ok("a\0b", 3));
  assert_false(authloop__header_value_ok("a\tb", 3));
  assert_false(authloop__header_value_ok("a\x7f", 2));
  /* the many-at-a-time check agrees with the byte rule for every byte value,
   * at every position of a buffer of two blocks of 16 and a tail */
  {
    char buf[37];
    int v;
    size_t pos;
    for (v = 0; v < 256; v++) {
      for (pos = 0; pos < sizeof(buf); pos++) {
        memset(buf, 'a', sizeof(buf));
        buf[pos] = (char)v;
        if (authloop__header_value_ok(buf, sizeof(buf)) != (v >= 0x20 && v != 0x7f))
          fail_msg("byte 0x%02x at %zu judged wrong", v, pos);
      }
    }
  }
  /* whitespace in a token, found at every position of a buffer of two blocks
   * of 16 and a tail, for every byte value */
  {
    char buf[38];
    int v;
    size_t pos;
    assert_false(authloop__has_space(""));
    for (v = 1; v < 256; v++) {
      for (pos = 0; pos + 1 < sizeof(buf); pos++) {
        memset(buf, 'a', sizeof(buf));
        buf[sizeof(buf) - 1] = '\0';
        buf[pos] = (char)v;
        if (authloop__has_space(buf) != (v == ' ' || (v >= '\t' && v <= '\r')))
          fail_msg("byte 0x%02x at %zu judged wrong", v, pos);
      }
    }
  }
  /* UTF-8, as JSON text needs it */
  assert_true(authloop__utf8_ok("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  assert_false(authloop__utf8_ok("\xff"));
  assert_false(authloop__utf8_ok("\xc3\x28"));         /* a bad continuation */
  assert_false(authloop__utf8_ok("\xc0\xaf"));         /* overlong */
  assert_false(authloop__utf8_ok("\xe0\x80\xaf"));     /* overlong */
  assert_false(authloop__utf8_ok("\xed\xa0\x80"));     /* a surrogate */
  assert_false(authloop__utf8_ok("\xf4\x90\x80\x80")); /* past U+10FFFF */
  assert_false(authloop__utf8_ok("\xe2\x82"));         /* cut short */
  assert_true(authloop__header_name_ok("X-Api_Key"));
  assert_false(authloop__header_name_ok("X Api"));
  assert_false(authloop__header_name_ok("X:"));
  assert_false(authloop__header_name_ok(""));
}

/* One line per server: the key reads the URL's text where it is plain and
 * libcurl's parse where it is not, and both say the same of one server. */
static void line_keys(void **state) {
  static const char *const cases[][2] = {
      {"https://Example.COM", "https://example.com 443"},
      {"https://example.com:443/a/b", "https://example.com 443"},
      {"http://127.0.0.1:8080/x?y#z", "http://127.0.0.1 8080"},
      {"http://localhost", "http://localhost 80"},
      {"https://user:pw@example.com/", "https://example.com 443"}, /* libcurl's parse */
      {"https://[::1]:9443/", "https://[::1] 9443"},
      {"https://EXAMPLE.com:0443", "https://example.com 443"},
      {"https://ex%61mple.com", "https://example.com 443"},
  };
  char key[300];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(authloop__line_key(cases[i][0], key, sizeof(key)), 0);
    assert_string_equal(key, cases[i][1]);
  }
  assert_int_equal(authloop__line_key("not a url", key, sizeof(key)), AUTHLOOP_EINVAL);
}

/* A server's words made safe to show: control bytes become '?', and bytes
 * past ASCII too when the text is not UTF-8; UTF-8 stays. */
static void printable_text(void **state) {
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"plain", "plain"},
      {"a\x01"
       "b\x07"
       "c\x1b"
       "[31md\x7f",
       "a?b?c?[31md?"},
      {"line\r\nInjected: yes", "line??Injected: yes"},
      {"caf\xc3\xa9 \xe2\x9c\x93", "caf\xc3\xa9 \xe2\x9c\x93"},
      {"caf\xc3 bad", "caf? bad"},
      {"\xc3\xa9\xff", "??"
                       "?"},
      {"", ""},
      /* C1 CSI and NEL, a right-to-left override, an isolate: one '?' each */
      {"a\xc2\x9b"
       "31mred\xc2\x85z",
       "a?31mred?z"},
      {"user\xe2\x80\xaegpj.exe", "user?gpj.exe"},
      {"\xe2\x81\xa6x\xe2\x81\xa9\xd8\x9c", "?x??"},
      {"\xc2\xa0\xe2\x80\x94", "\xc2\xa0\xe2\x80\x94"}, /* a no-break space, a dash: text */
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *got = authloop__printable_dup(cases[i].in);
    assert_non_null(got);
    assert_string_equal(got, cases[i].want);
    free(got);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepted),
      cmocka_unit_test(refused),
      cmocka_unit_test(insecure_opt_in),
      cmocka_unit_test(segments_are_encoded_whole),
      cmocka_unit_test(a_base_with_a_query_keeps_it),
      cmocka_unit_test(bad_parts_are_refused),
      cmocka_unit_test(header_bytes),
      cmocka_unit_test(printable_text),
      cmocka_unit_test(line_keys),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("URLs and header bytes", tests, NULL, NULL);
}
