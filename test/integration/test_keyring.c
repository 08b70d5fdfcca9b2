/* SPDX-License-Identifier: MIT */
/* The session key in the Secret Service (authloop_glib_session_key_*),
 * against a real gnome-keyring-daemon on a private session bus
 * (test/keyring/run.sh keyring), and on a bus where no Secret Service can
 * answer (run.sh none). The key then seals a real session file: a login
 * against the reference server, restored by a new client with the key read
 * back from the keyring. */
#include "harness.h"

#include <authloop-glib.h>
#include <fcntl.h>
#include <libsecret/secret.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define APP   "org.authloop.KeyringTest"
#define OTHER "org.authloop.OtherApp"

/* the schema the library documents: a test that reads the keyring itself */
static const SecretSchema schema = {
    .name = "org.authloop.SessionKey",
    .flags = SECRET_SCHEMA_NONE,
    .attributes = {{"app-id", SECRET_SCHEMA_ATTRIBUTE_STRING}, {NULL, 0}},
};

static unsigned char first[AUTHLOOP_GLIB_SESSION_KEY_BYTES];

static void first_use_makes_and_keeps_a_key(void **state) {
  unsigned char again[AUTHLOOP_GLIB_SESSION_KEY_BYTES], other[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  static const unsigned char zero[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  GError *e = NULL;
  gchar *stored, *expect;
  (void)state;
  assert_null(secret_password_lookup_sync(&schema, NULL, NULL, "app-id", APP, NULL));
  assert_true(authloop_glib_session_key_sync(APP, NULL, first, &e));
  assert_null(e);
  assert_memory_not_equal(first, zero, sizeof(first));
  assert_true(authloop_glib_session_key_sync(APP, NULL, again, &e));
  assert_memory_equal(first, again, sizeof(first));
  assert_true(authloop_glib_session_key_sync(OTHER, NULL, other, &e));
  assert_memory_not_equal(first, other, sizeof(first));
  /* in the keyring, under the app's id */
  stored = secret_password_lookup_sync(&schema, NULL, &e, "app-id", APP, NULL);
  assert_non_null(stored);
  expect = g_base64_encode(first, sizeof(first));
  assert_string_equal(stored, expect);
  secret_password_free(stored);
  g_free(expect);
}

typedef struct {
  GMainLoop *loop;
  GThread *thread;
  gboolean ok, same_thread, answered;
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  GError *error;
} async_rec;

/* The main loop until the answer, for 20 s at most (libsecret's own D-Bus
 * timeout is 25 s per call; a hang fails the test instead). */
static gboolean too_late(gpointer ud) {
  g_main_loop_quit(ud);
  return G_SOURCE_REMOVE;
}
static void run_until_answer(GMainLoop *loop, const gboolean *answered) {
  guint t = g_timeout_add_seconds(20, too_late, loop);
  g_main_loop_run(loop);
  if (*answered)
    g_source_remove(t);
  assert_true(*answered);
}

static void on_key(GObject *source, GAsyncResult *res, gpointer ud) {
  async_rec *r = ud;
  (void)source;
  r->same_thread = g_thread_self() == r->thread;
  r->ok = authloop_glib_session_key_finish(res, r->key, &r->error);
  r->answered = TRUE;
  g_main_loop_quit(r->loop);
}

static void the_async_form_gives_the_same_key(void **state) {
  async_rec r = {0};
  (void)state;
  r.loop = g_main_loop_new(NULL, FALSE);
  r.thread = g_thread_self();
  authloop_glib_session_key_async(APP, NULL, on_key, &r);
  run_until_answer(r.loop, &r.answered);
  assert_true(r.ok);
  assert_null(r.error);
  assert_true(r.same_thread); /* back on the caller's main context */
  assert_memory_equal(r.key, first, sizeof(first));
  g_main_loop_unref(r.loop);
}

static void the_key_seals_a_session_file(void **state) {
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES], wrong[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c, *again, *other;
  test_recorder r;
  test_env e;
  char dir[256], path[320], *code;
  GError *err = NULL;
  (void)state;
  test_make_tmpdir(dir, sizeof(dir), "keyring");
  snprintf(path, sizeof(path), "%s/session", dir);
  assert_true(authloop_glib_session_key_sync(APP, NULL, key, &err));
  test_env_init(&e, &server, NULL);
  o.provider = "gateway";
  o.base_url = server.base_url;
  o.session_path = path;
  o.session_key = key;
  assert_int_equal(authloop_client_new(e.ctx, &o, &c), 0);
  test_record(c, &r);
  code = test_mint_code(&server, "kept-in-the-keyring");
  assert_int_equal(authloop_login_code(c, code), 0);
  free(code);
  test_run_until(&e, &r.count[AUTHLOOP_EV_LOGIN_ATTEMPT], 1, 5000);
  assert_true(r.last[AUTHLOOP_EV_LOGIN_ATTEMPT].success);
  test_run_until_file(&e, path, 1, 5000);
  test_run_for(&e, 100);
  memset(key, 0, sizeof(key));
  /* a new start: the key from the keyring opens the file */
  assert_true(authloop_glib_session_key_sync(APP, NULL, key, &err));
  assert_int_equal(authloop_client_new(e.ctx, &o, &again), 0);
  assert_true(authloop_is_logged_in(again));
  assert_string_equal(authloop_user_id(authloop_current_user(again)), "kept-in-the-keyring");
  /* another application's key does not */
  assert_true(authloop_glib_session_key_sync(OTHER, NULL, wrong, &err));
  o.session_key = wrong;
  assert_int_equal(authloop_client_new(e.ctx, &o, &other), 0);
  assert_false(authloop_is_logged_in(other));
  test_env_close(&e);
  test_remove_tree(dir);
}

static void a_bad_stored_key_is_reported_and_kept(void **state) {
  /* too short; a good key with junk around it (which g_base64_decode skips) */
  static const char *const bad[] = {"YWJj", "!!!!MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=****"};
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  GError *e = NULL;
  gchar *stored;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_true(secret_password_store_sync(&schema, SECRET_COLLECTION_DEFAULT, "not a key", bad[i],
                                           NULL, &e, "app-id", "org.authloop.Bad", NULL));
    assert_false(authloop_glib_session_key_sync("org.authloop.Bad", NULL, key, &e));
    assert_true(g_error_matches(e, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_BAD_KEY));
    assert_non_null(strstr(e->message, "authloop_glib_session_key_forget_sync"));
    g_clear_error(&e);
    stored = secret_password_lookup_sync(&schema, NULL, &e, "app-id", "org.authloop.Bad", NULL);
    assert_string_equal(stored, bad[i]); /* not overwritten: a file sealed with it stays readable */
    secret_password_free(stored);
  }
}

/* The Secret Service has no "create if absent": a process that finds no key
 * makes one under a lock in the runtime directory, and looks again once it
 * has it. Here the test holds that lock, as a first process making the key
 * would, and stores the key meanwhile: the second caller waits, then takes
 * that key instead of making (and keeping) its own. */
static void a_key_made_meanwhile_is_taken(void **state) {
  const char *id = "org.authloop.Race";
  gchar *lock =
      g_build_filename(g_get_user_runtime_dir(), "authloop-key-org.authloop.Race.lock", NULL);
  unsigned char made[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  async_rec r = {0};
  GError *e = NULL;
  gchar *text;
  gint64 until;
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  r.loop = g_main_loop_new(NULL, FALSE);
  r.thread = g_thread_self();
  authloop_glib_session_key_async(id, NULL, on_key, &r);
  until = g_get_monotonic_time() + 300 * 1000; /* it must wait: nothing may come */
  while (g_get_monotonic_time() < until)
    if (!g_main_context_iteration(NULL, FALSE))
      g_usleep(10000);
  assert_false(r.ok);
  assert_null(r.error);
  memset(made, 0x5a, sizeof(made)); /* the first process's key */
  text = g_base64_encode(made, sizeof(made));
  assert_true(secret_password_store_sync(&schema, SECRET_COLLECTION_DEFAULT, "first", text, NULL,
                                         &e, "app-id", id, NULL));
  g_free(text);
  close(fd); /* the first process is done */
  run_until_answer(r.loop, &r.answered);
  assert_true(r.ok);
  assert_memory_equal(r.key, made, sizeof(made));
  g_main_loop_unref(r.loop);
  g_free(lock);
}

static gpointer cancel_later(gpointer c) {
  g_usleep(200 * 1000);
  g_cancellable_cancel(c);
  return NULL;
}

/* Waiting for another process's key lock: a cancel ends the wait with
 * G_IO_ERROR_CANCELLED, and no key of its own is made meanwhile (past the
 * wait, likewise an error: never a key per waiter). */
static void waiting_for_the_key_lock_ends_without_a_key(void **state) {
  const char *id = "org.authloop.Waiting";
  gchar *lock =
      g_build_filename(g_get_user_runtime_dir(), "authloop-key-org.authloop.Waiting.lock", NULL);
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  GCancellable *cancel = g_cancellable_new();
  GThread *t;
  GError *e = NULL;
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0); /* "another process" making the key */
  t = g_thread_new("cancel", cancel_later, cancel);
  assert_false(authloop_glib_session_key_sync(id, cancel, key, &e));
  assert_true(g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED));
  g_clear_error(&e);
  g_thread_join(t);
  assert_null(secret_password_lookup_sync(&schema, NULL, NULL, "app-id", id, NULL));
  close(fd);
  g_object_unref(cancel);
  g_free(lock);
}

static void cancelled_is_cancelled(void **state) {
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  GCancellable *cancel = g_cancellable_new();
  GError *e = NULL;
  (void)state;
  g_cancellable_cancel(cancel);
  assert_false(authloop_glib_session_key_sync("org.authloop.Cancelled", cancel, key, &e));
  assert_true(g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED));
  g_clear_error(&e);
  assert_false(authloop_glib_session_key_forget_sync("org.authloop.Cancelled", cancel, &e));
  assert_true(g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED));
  g_clear_error(&e);
  g_object_unref(cancel);
}

static void error_codes_keep_their_values(void **state) {
  (void)state;
  assert_int_equal(AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE, 0);
  assert_int_equal(AUTHLOOP_GLIB_ERROR_SECRET_SERVICE, 1);
  assert_int_equal(AUTHLOOP_GLIB_ERROR_BAD_KEY, 2);
  assert_int_equal(AUTHLOOP_GLIB_ERROR_INVALID, 3);
}

/* Last: the keyring stays locked (its unlock prompt cannot be shown here).
 * A key in a locked keyring is neither taken for absent (a new key would be
 * made, and fail to store) nor said to be forgotten while it stays. */
static void a_locked_keyring_is_said_so(void **state) {
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  SecretService *service;
  SecretCollection *login;
  GList *objects;
  GError *e = NULL;
  (void)state;
  assert_true(authloop_glib_session_key_sync(APP, NULL, key, &e)); /* there, before the lock */
  service = secret_service_get_sync(SECRET_SERVICE_LOAD_COLLECTIONS, NULL, &e);
  assert_non_null(service);
  login = secret_collection_for_alias_sync(service, SECRET_COLLECTION_DEFAULT,
                                           SECRET_COLLECTION_NONE, NULL, &e);
  assert_non_null(login);
  objects = g_list_append(NULL, login);
  assert_true(secret_service_lock_sync(service, objects, NULL, NULL, &e) >= 1);
  g_list_free(objects);
  assert_false(authloop_glib_session_key_sync(APP, NULL, key, &e));
  assert_true(g_error_matches(e, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_SECRET_SERVICE));
  assert_non_null(strstr(e->message, "locked"));
  g_clear_error(&e);
  assert_false(authloop_glib_session_key_forget_sync(APP, NULL, &e));
  assert_true(g_error_matches(e, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_SECRET_SERVICE));
  assert_non_null(strstr(e->message, "locked"));
  g_clear_error(&e);
  g_object_unref(login);
  g_object_unref(service);
}

static void forget_then_a_new_key(void **state) {
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  GError *e = NULL;
  (void)state;
  assert_true(authloop_glib_session_key_forget_sync(APP, NULL, &e));
  assert_null(secret_password_lookup_sync(&schema, NULL, NULL, "app-id", APP, NULL));
  assert_true(authloop_glib_session_key_forget_sync(APP, NULL, &e)); /* none: still TRUE */
  assert_true(authloop_glib_session_key_sync(APP, NULL, key, &e));
  assert_memory_not_equal(key, first, sizeof(key));
}

static void app_ids_are_checked(void **state) {
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  const char *bad[] = {
      NULL, "", "noperiod", "org..double", "org.example.with space", "org.example.\xff"};
  GError *e = NULL;
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_false(authloop_glib_session_key_sync(bad[i], NULL, key, &e));
    assert_true(g_error_matches(e, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_INVALID));
    g_clear_error(&e);
  }
}

/* ---- no Secret Service ---------------------------------------------------------------- */

static void no_secret_service_is_a_clear_error(void **state) {
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  async_rec r = {0};
  GError *e = NULL;
  gint64 t0 = g_get_monotonic_time();
  (void)state;
  assert_false(authloop_glib_session_key_sync(APP, NULL, key, &e));
  assert_non_null(e);
  print_message("# %s\n", e->message);
  assert_true(g_error_matches(e, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE));
  assert_non_null(strstr(e->message, "no Secret Service"));
  g_clear_error(&e);
  r.loop = g_main_loop_new(NULL, FALSE);
  r.thread = g_thread_self();
  authloop_glib_session_key_async(APP, NULL, on_key, &r);
  run_until_answer(r.loop, &r.answered);
  assert_false(r.ok);
  assert_true(g_error_matches(r.error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE));
  g_clear_error(&r.error);
  g_main_loop_unref(r.loop);
  assert_false(authloop_glib_session_key_forget_sync(APP, NULL, &e));
  assert_true(g_error_matches(e, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE));
  g_clear_error(&e);
  assert_true(g_get_monotonic_time() - t0 < 10 * G_USEC_PER_SEC); /* no hang */
}

int main(int argc, char **argv) {
  const struct CMUnitTest with_keyring[] = {
      cmocka_unit_test(first_use_makes_and_keeps_a_key),
      cmocka_unit_test(the_async_form_gives_the_same_key),
      cmocka_unit_test(the_key_seals_a_session_file),
      cmocka_unit_test(a_bad_stored_key_is_reported_and_kept),
      cmocka_unit_test(forget_then_a_new_key),
      cmocka_unit_test(app_ids_are_checked),
      cmocka_unit_test(a_key_made_meanwhile_is_taken),
      cmocka_unit_test(cancelled_is_cancelled),
      cmocka_unit_test(waiting_for_the_key_lock_ends_without_a_key),
      cmocka_unit_test(error_codes_keep_their_values),
      cmocka_unit_test(a_locked_keyring_is_said_so), /* last: it leaves the keyring locked */
  };
  const struct CMUnitTest without[] = {
      cmocka_unit_test(no_secret_service_is_a_clear_error),
  };
  int failed;
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (argc > 1 && strcmp(argv[1], "none") == 0)
    failed = cmocka_run_group_tests_name("no Secret Service", without, NULL, NULL);
  else
    failed =
        cmocka_run_group_tests_name("keyring", with_keyring, test_group_setup, test_group_teardown);
  secret_service_disconnect(); /* libsecret's shared connection, as an app ends */
  return failed;
}
