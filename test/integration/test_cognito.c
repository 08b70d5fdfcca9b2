/* SPDX-License-Identifier: MIT */
/* The "cognito" dialect against cognito-local, a Cognito Identity Provider
 * API emulator no one here wrote (test/peers/cognito.mjs starts it over TLS
 * and sets up a pool, app clients and users through its own API). A real uv
 * loop, real libcurl; every test ends with uv_loop_close() == 0. */
#include "harness.h"

#include "engine.h" /* the refresh token, which the API never hands out */

#include <stdlib.h>
#include <string.h>

static test_server peer;
static char pool[64], public_id[64], secret_id[64], secret_value[128], short_id[64];
#define SHORT_S 6 /* the "short" client's access and id tokens, in seconds */

static void copy_member(char *dst, size_t n, json_t *ready, const char *key) {
  const char *v = json_string_value(json_object_get(ready, key));
  assert_non_null(v);
  snprintf(dst, n, "%s", v);
}

static int setup(void **state) {
  json_t *ready = test_peer_start(&peer, "cognito", "--short", "6", NULL);
  (void)state;
  copy_member(pool, sizeof(pool), ready, "pool");
  copy_member(public_id, sizeof(public_id), ready, "public");
  copy_member(secret_id, sizeof(secret_id), ready, "secret");
  copy_member(secret_value, sizeof(secret_value), ready, "secret_value");
  copy_member(short_id, sizeof(short_id), ready, "short");
  json_decref(ready);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  test_server_stop(&peer);
  return 0;
}

static authloop_client *client(test_env *e, const char *client_id, const char *secret) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  o.provider = "cognito";
  o.base_url = peer.base_url;
  o.client_id = client_id;
  o.client_secret = secret;
  assert_int_equal(authloop_client_new(e->ctx, &o, &c), 0);
  return c;
}

static const char *refresh_token(const authloop_client *c) { return c->session.refresh_token; }

static void login(test_env *e, authloop_client *c, test_recorder *r, const char *user,
                  const char *password) {
  int before = r->count[AUTHLOOP_EV_LOGIN_ATTEMPT];
  assert_int_equal(authloop_login_password(c, user, password), 0);
  test_run_until(e, &r->count[AUTHLOOP_EV_LOGIN_ATTEMPT], before + 1, 5000);
}

/* A claim of a JWT, read with jansson (not authloop's reader). */
static json_t *claims(const char *jwt) {
  const char *dot1 = strchr(jwt, '.'), *dot2 = strchr(dot1 + 1, '.');
  char b64[4096];
  size_t n = (size_t)(dot2 - dot1 - 1), i;
  char cmd[4200];
  char *out;
  json_t *j;
  assert_true(n < sizeof(b64) - 4);
  memcpy(b64, dot1 + 1, n);
  for (i = 0; i < n; i++)
    b64[i] = b64[i] == '-' ? '+' : b64[i] == '_' ? '/' : b64[i];
  while (n % 4)
    b64[n++] = '=';
  b64[n] = '\0';
  snprintf(cmd, sizeof(cmd), "%s", b64);
  {
    const char *argv[] = {"sh", "-c", "printf %s \"$0\" | base64 -d", cmd, NULL};
    out = test_run_program(argv);
  }
  j = json_loads(out, 0, NULL);
  free(out);
  assert_non_null(j);
  return j;
}

static void password_login_and_user(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  const authloop_user *u;
  json_t *id;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = client(&e, public_id, NULL);
  test_record(c, &r);
  login(&e, c, &r, "alice", "alice-password-1");
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_string_equal(r.trace, "stateChanged:LOGGED_OUT>LOGGING_IN;"
                               "stateChanged:LOGGING_IN>LOGGED_IN;loginAttempt:ok;");
  assert_non_null(authloop_access_token(c));
  assert_non_null(authloop_id_token(c));
  /* the user is the id token's claims, as the server signed them */
  id = claims(authloop_id_token(c));
  u = authloop_current_user(c);
  assert_string_equal(authloop_user_id(u), json_string_value(json_object_get(id, "sub")));
  assert_string_equal(authloop_user_name(u), "alice");
  assert_string_equal(authloop_user_field(u, "email"), "alice@example.com");
  assert_string_equal(authloop_user_field(u, "token_use"), "id");
  assert_string_equal(authloop_user_field(u, "aud"), public_id);
  json_decref(id);
  /* no ExpiresIn in cognito-local's answer: the access token's own lifetime,
   * which the app client's settings made 1 hour */
  assert_int_equal(authloop_token_lifetime(c), 3600);
  test_env_close(&e);
}

static void wrong_password_and_unknown_user(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = client(&e, public_id, NULL);
  test_record(c, &r);
  login(&e, c, &r, "alice", "not-her-password");
  assert_false(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECREDENTIALS);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].http_status, 400);
  /* cognito-local's words (the service itself says NotAuthorizedException) */
  assert_string_equal(r.last_server_code[AUTHLOOP_EV_LOGIN_ATTEMPT], "InvalidPasswordException");
  assert_string_equal(r.last_message[AUTHLOOP_EV_LOGIN_ATTEMPT], "Invalid password");
  assert_false(authloop_is_logged_in(c));

  login(&e, c, &r, "mallory", "whatever");
  assert_int_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_ECREDENTIALS);
  assert_string_equal(r.last_server_code[AUTHLOOP_EV_LOGIN_ATTEMPT], "NotAuthorizedException");
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);

  /* an app client the pool does not have */
  authloop_client_free(c);
  c = client(&e, "nosuchclient", NULL);
  test_record(c, &r);
  login(&e, c, &r, "alice", "alice-password-1");
  assert_false(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_not_equal(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, 0);
  test_env_close(&e);
}

static void refresh_keeps_the_refresh_token(void **state) {
  test_env e;
  test_recorder r;
  test_done d = {0, 0};
  authloop_client *c;
  char *access, *refresh;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = client(&e, public_id, NULL);
  test_record(c, &r);
  login(&e, c, &r, "bob", "bob-password-1");
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  access = strdup(authloop_access_token(c));
  refresh = strdup(refresh_token(c));
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1);
  assert_string_not_equal(authloop_access_token(c), access);
  /* REFRESH_TOKEN_AUTH returns no refresh token: the old one stays */
  assert_string_equal(refresh_token(c), refresh);
  assert_string_equal(authloop_user_name(authloop_current_user(c)), "bob");
  free(access);
  free(refresh);
  test_env_close(&e);
}

/* A refresh token the app holds is a login (REFRESH_TOKEN_AUTH: what a
 * Naluri-style authorization code is); RevokeToken at logout ends it at the
 * server: the same token then logs in no more, and a session built on it
 * ends at its next refresh. */
static void login_with_refresh_token_and_revocation(void **state) {
  test_env e;
  test_recorder ra, rb, rc;
  test_done d = {0, 0};
  authloop_client *a, *b, *c;
  char *token;
  (void)state;
  test_env_init(&e, &peer, NULL);
  a = client(&e, public_id, NULL);
  b = client(&e, public_id, NULL);
  c = client(&e, public_id, NULL);
  test_record(a, &ra);
  test_record(b, &rb);
  test_record(c, &rc);
  login(&e, a, &ra, "alice", "alice-password-1");
  assert_true(ra.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  token = strdup(refresh_token(a));

  assert_int_equal(authloop_login_code(b, token), 0);
  test_run_until(&e, &rb.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(rb.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_string_equal(authloop_user_name(authloop_current_user(b)), "alice");
  assert_string_equal(authloop_user_id(authloop_current_user(b)),
                      authloop_user_id(authloop_current_user(a)));
  assert_string_equal(refresh_token(b), token); /* the code is the refresh token */
  assert_int_equal(authloop_token_lifetime(b), 3600);

  /* a's logout revokes the token: the server acknowledges */
  assert_int_equal(authloop_logout(a), 0);
  assert_false(authloop_is_logged_in(a));
  test_run_until(&e, &ra.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(ra.last[AUTHLOOP_EV_LOGOUT].error, 0);

  /* the same token no longer logs in ... */
  assert_int_equal(authloop_login_code(c, token), 0);
  test_run_until(&e, &rc.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_false(rc.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(rc.last[AUTHLOOP_EV_LOGIN_ATTEMPT].error, AUTHLOOP_EREJECTED);
  assert_string_equal(rc.last_server_code[AUTHLOOP_EV_LOGIN_ATTEMPT], "NotAuthorizedException");

  /* ... and b's refresh with it is refused for good */
  assert_int_equal(authloop_refresh(b, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, AUTHLOOP_EREVOKED);
  assert_int_equal(rb.count[AUTHLOOP_EV_SESSION_EXPIRED], 1);
  assert_int_equal(rb.last[AUTHLOOP_EV_SESSION_EXPIRED].reason, AUTHLOOP_EXPIRED_REVOKED);
  assert_false(authloop_is_logged_in(b));
  free(token);
  test_env_close(&e);
}

/* Tokens of SHORT_S seconds (the app client's setting): refreshed on their
 * own while the user is active, before they run out, by the session timer. */
static void short_tokens_refresh_on_their_own(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  char *first;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = client(&e, short_id, NULL);
  test_record(c, &r);
  login(&e, c, &r, "bob", "bob-password-1");
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(authloop_token_lifetime(c), SHORT_S);
  first = strdup(authloop_access_token(c));
  test_run_until(&e, &r.count[AUTHLOOP_EV_TOKEN_REFRESHED], 1, SHORT_S * 1000);
  assert_true(authloop_is_logged_in(c));
  assert_string_not_equal(authloop_access_token(c), first);
  assert_true(authloop_token_expires_in_ms(c) > 0);
  assert_int_equal(authloop_token_lifetime(c), SHORT_S);
  free(first);
  test_env_close(&e);
}

/* With a client secret: SECRET_HASH on login and refresh (signed with the
 * user's name), ClientSecret on RevokeToken; a login with a bare refresh
 * token cannot be signed (the token does not tell the name). */
static void client_with_a_secret(void **state) {
  test_env e;
  test_recorder r;
  test_done d = {0, 0};
  authloop_client *c;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = client(&e, secret_id, secret_value);
  test_record(c, &r);
  assert_int_equal(authloop_login_code(c, "some-refresh-token"), AUTHLOOP_ENOTSUP);
  assert_int_equal(r.total, 0);
  login(&e, c, &r, "alice", "alice-password-1");
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  assert_int_equal(authloop_refresh(c, test_done_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, 0);
  assert_int_equal(authloop_logout(c), 0);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, 0);
  test_env_close(&e);
}

/* GlobalSignOut: cognito-local does not have it (a 500 it names
 * "CognitoLocal#Unsupported"); the session is cleared locally all the same and
 * the logout event tells what the server said. */
static void global_logout_where_the_server_lacks_it(void **state) {
  test_env e;
  test_recorder r;
  authloop_client *c;
  (void)state;
  test_env_init(&e, &peer, NULL);
  c = client(&e, public_id, NULL);
  test_record(c, &r);
  login(&e, c, &r, "bob", "bob-password-1");
  assert_int_equal(authloop_logout_global(c), 0);
  assert_false(authloop_is_logged_in(c));
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGOUT], 1, 5000);
  assert_int_equal(r.last[AUTHLOOP_EV_LOGOUT].error, AUTHLOOP_EUNAVAILABLE);
  assert_string_equal(r.last_server_code[AUTHLOOP_EV_LOGOUT], "Unsupported");
  test_env_close(&e);
}

static void response_cb(authloop_client *c, int status, long http_status, const char *body,
                        size_t len, void *userdata) {
  test_done *d = userdata;
  (void)c;
  (void)http_status;
  (void)body;
  (void)len;
  d->count++;
  d->status = status;
}

static void options_and_requests(void **state) {
  test_env e;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  test_recorder r;
  test_done d = {0, 0};
  (void)state;
  test_env_init(&e, &peer, NULL);
  o.provider = "cognito";
  o.base_url = peer.base_url;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL); /* no client id */
  o.client_id = "bad id";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.client_id = public_id;
  o.region = "eu-west-1";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL); /* both */
  o.base_url = NULL;
  o.region = "eu/west";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  o.region = "eu-west-1"; /* https://cognito-idp.eu-west-1.amazonaws.com */
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  authloop_client_free(c);
  o.login_path = "/x";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.login_path = NULL;
  o.app_id = "app";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.app_id = NULL;
  o.redirect_uri = "x:/y"; /* OpenID Connect's */
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.redirect_uri = NULL;
  o.client_secret = "bad\r\nsecret";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_EINVAL);
  /* other dialects refuse Cognito's options */
  o.client_secret = NULL;
  o.region = NULL;
  o.base_url = peer.base_url;
  o.provider = "gateway";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.client_id = NULL;
  o.scope = "openid";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.scope = NULL;
  o.userinfo = 1;
  o.provider = "cometchat";
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), AUTHLOOP_ENOTSUP);
  o.userinfo = 0;

  c = client(&e, public_id, NULL);
  test_record(c, &r);
  assert_int_equal(authloop_login_password(c, "", "x"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_password(c, "alice", ""), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_password(c, "al\nice", "x"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_password(c, "alice", "\xff"), AUTHLOOP_EINVAL);
  assert_int_equal(authloop_login_local(c, "alice", "x", NULL), AUTHLOOP_EWRONGPROVIDER);
  assert_int_equal(authloop_login_key(c, "alice", "x"), AUTHLOOP_EWRONGPROVIDER);
  assert_int_equal(r.total, 0);
  login(&e, c, &r, "alice", "alice-password-1");
  /* the Cognito API takes tokens in its bodies: nothing for authloop_request */
  assert_int_equal(authloop_request(c, "POST", "/", "{}", response_cb, &d), 0);
  test_run_until(&e, &d.count, 1, 5000);
  assert_int_equal(d.status, AUTHLOOP_ENOTSUP);
  test_env_close(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(password_login_and_user),
      cmocka_unit_test(wrong_password_and_unknown_user),
      cmocka_unit_test(refresh_keeps_the_refresh_token),
      cmocka_unit_test(login_with_refresh_token_and_revocation),
      cmocka_unit_test(short_tokens_refresh_on_their_own),
      cmocka_unit_test(client_with_a_secret),
      cmocka_unit_test(global_logout_where_the_server_lacks_it),
      cmocka_unit_test(options_and_requests),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (getenv("AUTHLOOP_TEST_FILTER")) /* run one test by name, when debugging */
    cmocka_set_test_filter(getenv("AUTHLOOP_TEST_FILTER"));
  return cmocka_run_group_tests_name("cognito against cognito-local", tests, setup, teardown);
}
