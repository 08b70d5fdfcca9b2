/* The base URL policy: http(s) only, plain http only to loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

static void accepted(void **state) {
  static const char *const ok[] = {
      "https://chat.example.com", "https://chat.example.com/", "https://chat.example.com:8443/api",
      "http://127.0.0.1:8080",    "http://127.9.9.9",          "http://localhost:1/x",
      "http://[::1]:9000",        "HTTPS://Chat.Example.com",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    if (authloop__check_base_url(ok[i], 0) != 0)
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
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = authloop__check_base_url(bad[i].url, 0);
    if (rc != bad[i].err)
      fail_msg("%s -> %s, want %s", bad[i].url ? bad[i].url : "(null)", authloop_err_name(rc),
               authloop_err_name(bad[i].err));
  }
}

static void insecure_opt_in(void **state) {
  (void)state;
  assert_int_equal(authloop__check_base_url("http://example.com", 1), 0);
  assert_int_equal(authloop__check_base_url("ftp://example.com", 1), AUTHLOOP_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepted),
      cmocka_unit_test(refused),
      cmocka_unit_test(insecure_opt_in),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("base URL policy", tests, NULL, NULL);
}
