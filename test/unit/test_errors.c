/* SPDX-License-Identifier: MIT */
/* The error table: every code distinct, named, explained; unknown codes safe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <authloop.h>

static const int all[] = {
#define XX(suffix, value, name, msg) AUTHLOOP_##suffix,
    AUTHLOOP_ERRNO_MAP(XX)
#undef XX
};
#define N_CODES (sizeof(all) / sizeof(all[0]))

/* Fixed values (an application may have stored them): a code keeps its
 * number for good; these are checked so that a change to the table that
 * would renumber one fails here first. */
static void codes_have_fixed_values_in_their_ranges(void **state) {
  size_t i, j;
  (void)state;
  assert_int_equal(AUTHLOOP_EINVAL, -7001);
  assert_int_equal(AUTHLOOP_ESTORE, -7020);
  assert_int_equal(AUTHLOOP_ERESOLVE, -7024);
  assert_int_equal(AUTHLOOP_ECRYPTO, -7025);
  assert_int_equal(AUTHLOOP_EKEY, -7101);
  assert_int_equal(AUTHLOOP_EINVALIDUID, -7201);
  assert_int_equal(AUTHLOOP_ENOTINIT, -7206);
  assert_int_equal(AUTHLOOP_ECREDENTIALS, -7301);
  assert_int_equal(AUTHLOOP_EEXPIRESIN, -7303);
  for (i = 0; i < N_CODES; i++) {
    assert_true(all[i] <= -7001 && all[i] > -7400);
    for (j = 0; j < i; j++)
      assert_int_not_equal(all[i], all[j]);
  }
}

/* libuv's codes (errno negated, UV_EAI_* at -3000..) and authloop's never
 * meet: an application may keep both in one int. */
static void no_code_is_a_libuv_code(void **state) {
  char buf[64];
  size_t i;
  (void)state;
  for (i = 0; i < N_CODES; i++) {
    uv_err_name_r(all[i], buf, sizeof(buf));
    assert_true(strncmp(buf, "Unknown system error", 20) == 0);
  }
  uv_err_name_r(UV_EAI_AGAIN, buf, sizeof(buf)); /* the check can see a libuv code */
  assert_string_equal(buf, "EAI_AGAIN");
}

static void every_code_has_a_unique_name_and_message(void **state) {
  size_t i, j;
  (void)state;
  for (i = 0; i < N_CODES; i++) {
    const char *name = authloop_err_name(all[i]), *msg = authloop_strerror(all[i]);
    assert_string_not_equal(name, "UNKNOWN");
    assert_string_not_equal(msg, "unknown error");
    assert_true(strlen(msg) > 8);
    for (j = 0; j < i; j++) {
      assert_string_not_equal(name, authloop_err_name(all[j]));
      assert_string_not_equal(msg, authloop_strerror(all[j]));
    }
  }
}

static void known_names(void **state) {
  (void)state;
  assert_string_equal(authloop_err_name(AUTHLOOP_ETIMEDOUT), "ETIMEDOUT");
  assert_string_equal(authloop_err_name(AUTHLOOP_ELOGININPROGRESS), "ERROR_LOGIN_IN_PROGRESS");
  assert_string_equal(authloop_strerror(AUTHLOOP_ELOGININPROGRESS),
                      "Login in progress. Please wait for the login request to finish");
  assert_string_equal(authloop_err_name(AUTHLOOP_ENOTLOGGEDIN), "ERROR_NO_USER_LOGGED_IN");
  assert_string_equal(authloop_err_name(0), "OK");
  assert_string_equal(authloop_strerror(0), "success");
}

static void unknown_codes_are_safe(void **state) {
  static const int bad[] = {1, -1, -7000, -7026, -7100, -7105, -99999, 2147483647, -2147483647 - 1};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_string_equal(authloop_err_name(bad[i]), "UNKNOWN");
    assert_string_equal(authloop_strerror(bad[i]), "unknown error");
  }
}

static void names_of_states_and_events(void **state) {
  (void)state;
  assert_string_equal(authloop_event_name(AUTHLOOP_EV_LOGIN_ATTEMPT), "loginAttempt");
  assert_string_equal(authloop_event_name(AUTHLOOP_EV_LOGOUT), "logout");
  assert_string_equal(authloop_event_name(AUTHLOOP_EV_STATE_CHANGED), "stateChanged");
  assert_string_equal(authloop_event_name(AUTHLOOP_EV__COUNT), "unknown");
  assert_string_equal(authloop_state_name(AUTHLOOP_STATE_LOGGED_IN), "LOGGED_IN");
  assert_string_equal(authloop_state_name((authloop_state)99), "UNKNOWN");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(codes_have_fixed_values_in_their_ranges),
      cmocka_unit_test(no_code_is_a_libuv_code),
      cmocka_unit_test(every_code_has_a_unique_name_and_message),
      cmocka_unit_test(known_names),
      cmocka_unit_test(unknown_codes_are_safe),
      cmocka_unit_test(names_of_states_and_events),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
