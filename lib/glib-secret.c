/* SPDX-License-Identifier: MIT */
/* The session key in the desktop's Secret Service (GNOME Keyring, KWallet)
 * through libsecret: one secret per application id, schema
 * "org.authloop.SessionKey", attribute "app-id", the 32 bytes as base64 text.
 * Read when it is there; made from the kernel's random numbers and stored the
 * first time. The async form runs the same work on a GTask thread, so a GUI
 * main loop never waits on D-Bus. Without libsecret at build time every call
 * fails with AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE. */
#include "authloop-glib.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

GQuark authloop_glib_error_quark(void) {
  return g_quark_from_static_string("authloop-glib-error-quark");
}

#ifdef AUTHLOOP_HAVE_LIBSECRET
#include <libsecret/secret.h>

static const SecretSchema schema = {
    .name = "org.authloop.SessionKey",
    .flags = SECRET_SCHEMA_NONE,
    .attributes = {{"app-id", SECRET_SCHEMA_ATTRIBUTE_STRING}, {NULL, 0}},
};

/* libsecret's failure to reach any Secret Service, told apart from the
 * service's own errors (a locked keyring, a refused prompt ...). */
static gboolean no_service(const GError *e) {
  return g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
         g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
         g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND) ||
         g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_NO_SERVER) ||
         g_error_matches(e, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT) || /* no bus address */
         g_error_matches(e, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
         g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
}

static void service_error(GError **error, GError *e, const char *doing) {
  if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_propagate_error(error, e); /* as the header says: the caller's cancel, as it is */
    return;
  }
  if (no_service(e))
    g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE,
                "no Secret Service (GNOME Keyring, KWallet) answers on the session bus: %s",
                e->message);
  else
    g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_SECRET_SERVICE,
                "the Secret Service could not %s the session key: %s", doing, e->message);
  g_error_free(e);
}

/* The session bus first: without one (a bare container, an ssh session
 * without a display), no Secret Service can answer. */
static gboolean bus_ok(GCancellable *cancel, GError **error) {
  GError *e = NULL;
  GDBusConnection *bus = g_bus_get_sync(G_BUS_TYPE_SESSION, cancel, &e);
  if (bus) {
    g_object_unref(bus); /* the shared connection libsecret uses too */
    return TRUE;
  }
  if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_propagate_error(error, e);
    return FALSE;
  }
  g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE,
              "no Secret Service (GNOME Keyring, KWallet): no session bus: %s", e->message);
  g_error_free(e);
  return FALSE;
}

/* Whether an item stored for app_id is locked (a locked keyring, whose
 * unlock prompt could not be shown, or was dismissed): TRUE with *error
 * set. An unlocked one found here was stored by another process a moment
 * ago: not an error (the caller looks again, under the lock). */
static gboolean locked_items(const char *app_id, GCancellable *cancel, GError **error) {
  GError *e = NULL;
  GList *items =
      secret_password_search_sync(&schema, SECRET_SEARCH_ALL, cancel, &e, "app-id", app_id, NULL);
  GList *l;
  gboolean locked = FALSE;
  if (e) {
    service_error(error, e, "search for");
    return TRUE;
  }
  for (l = items; l; l = l->next)
    locked |= SECRET_IS_ITEM(l->data) && secret_item_get_locked(SECRET_ITEM(l->data));
  g_list_free_full(items, g_object_unref);
  if (locked)
    g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_SECRET_SERVICE,
                "the keyring that holds the session key of %s is locked", app_id);
  return locked;
}

/* What g_base64_encode() makes of 32 bytes, and nothing else: 43 characters
 * of the alphabet and one '=' (g_base64_decode skips what is not base64). */
static gboolean key_text_ok(const char *text) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return strlen(text) == 44 && strspn(text, alphabet) == 43 && text[43] == '=';
}

static gboolean lookup(const char *app_id, GCancellable *cancel, guchar key[32], gboolean *found,
                       GError **error) {
  GError *e = NULL;
  gchar *text = secret_password_lookup_sync(&schema, cancel, &e, "app-id", app_id, NULL);
  guchar *raw = NULL;
  gsize n = 0;
  *found = FALSE;
  if (e) {
    service_error(error, e, "read");
    return FALSE;
  }
  if (!text) /* none, or one in a locked keyring */
    return !locked_items(app_id, cancel, error);
  if (key_text_ok(text))
    raw = g_base64_decode(text, &n);
  secret_password_free(text);
  if (n != AUTHLOOP_GLIB_SESSION_KEY_BYTES) {
    if (raw)
      memset(raw, 0, n);
    g_free(raw);
    g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_BAD_KEY,
                "the Secret Service holds a session key for %s that is not %d bytes; "
                "forget it (authloop_glib_session_key_forget_sync) to make a new one",
                app_id, AUTHLOOP_GLIB_SESSION_KEY_BYTES);
    return FALSE;
  }
  memcpy(key, raw, n);
  memset(raw, 0, n);
  g_free(raw);
  *found = TRUE;
  return TRUE;
}

/* The Secret Service has no "create if absent": two processes (or threads)
 * that both find no key would each store one, and one of them would keep a
 * key the keyring no longer has. Making the key is therefore done under a
 * lock in the user's runtime directory, shared by every process of the
 * session: the second one finds the first one's key. -1 when there is no
 * such directory (the key is then made without it, as a lone process may). */
#define CREATE_LOCK_WAIT_US (30 * G_USEC_PER_SEC) /* past libsecret's own D-Bus timeout */

/* -1: no lock file possible here (go on alone); -2: another process holds
 * it past the wait, or the call was cancelled: *error set. */
static int create_lock(const char *app_id, GCancellable *cancel, GError **error) {
  gchar *name = g_strdup_printf("authloop-key-%s.lock", app_id); /* an id: [A-Za-z0-9_.-] */
  gchar *path = g_build_filename(g_get_user_runtime_dir(), name, NULL);
  gint64 until = g_get_monotonic_time() + CREATE_LOCK_WAIT_US;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  g_free(name);
  g_free(path);
  while (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int busy = errno == EWOULDBLOCK;
    if (busy && g_get_monotonic_time() <= until &&
        !g_cancellable_set_error_if_cancelled(cancel, error)) {
      g_usleep(20000); /* on the caller's thread: the sync call, or the async one's worker */
      continue;
    }
    close(fd);
    if (!busy)
      return -1;
    if (!(error && *error))
      g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_SECRET_SERVICE,
                  "another process is making the session key of %s and holds its lock", app_id);
    return -2;
  }
  return fd;
}

static gboolean make_key(const char *app_id, GCancellable *cancel, guchar key[32], GError **error) {
  guchar fresh[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  gboolean found, ok;
  gchar *text, *label;
  GError *e = NULL;
  if (!lookup(app_id, cancel, key, &found, error)) /* again, now under the lock */
    return FALSE;
  if (found)
    return TRUE;
  if (getrandom(fresh, sizeof(fresh), 0) != (ssize_t)sizeof(fresh)) {
    g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_SECRET_SERVICE,
                "no random numbers for a new session key");
    return FALSE;
  }
  text = g_base64_encode(fresh, sizeof(fresh));
  memset(fresh, 0, sizeof(fresh));
  label = g_strdup_printf("Session key of %s (authloop)", app_id);
  ok = secret_password_store_sync(&schema, SECRET_COLLECTION_DEFAULT, label, text, cancel, &e,
                                  "app-id", app_id, NULL);
  memset(text, 0, strlen(text));
  g_free(text);
  g_free(label);
  if (!ok) {
    service_error(error, e, "store");
    return FALSE;
  }
  /* read back: what the keyring holds is the key */
  if (!lookup(app_id, cancel, key, &found, error))
    return FALSE;
  if (!found) {
    g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_SECRET_SERVICE,
                "the Secret Service did not keep the new session key of %s", app_id);
    return FALSE;
  }
  return TRUE;
}

static gboolean session_key(const char *app_id, GCancellable *cancel, guchar key[32],
                            GError **error) {
  gboolean found, ok;
  int lock;
  if (!bus_ok(cancel, error) || !lookup(app_id, cancel, key, &found, error))
    return FALSE;
  if (found)
    return TRUE;
  if ((lock = create_lock(app_id, cancel, error)) == -2)
    return FALSE; /* rather than each waiter making a key of its own */
  ok = make_key(app_id, cancel, key, error);
  if (lock >= 0)
    close(lock); /* and with it the lock */
  return ok;
}

static gboolean forget(const char *app_id, GCancellable *cancel, GError **error) {
  GError *e = NULL;
  if (!bus_ok(cancel, error))
    return FALSE;
  secret_password_clear_sync(&schema, cancel, &e, "app-id", app_id, NULL);
  if (e) {
    service_error(error, e, "remove");
    return FALSE;
  }
  /* a locked keyring clears nothing and says nothing: look */
  return !locked_items(app_id, cancel, error);
}
#else
static gboolean unavailable(GError **error) {
  g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE,
              "authloop-glib was built without libsecret: no Secret Service");
  return FALSE;
}
static gboolean session_key(const char *app_id, GCancellable *cancel, guchar key[32],
                            GError **error) {
  (void)app_id, (void)cancel, (void)key;
  return unavailable(error);
}
static gboolean forget(const char *app_id, GCancellable *cancel, GError **error) {
  (void)app_id, (void)cancel;
  return unavailable(error);
}
#endif

static gboolean valid_id(const char *app_id, GError **error) {
  if (app_id && g_application_id_is_valid(app_id))
    return TRUE;
  g_set_error(error, AUTHLOOP_GLIB_ERROR, AUTHLOOP_GLIB_ERROR_INVALID,
              "not an application id (like \"org.example.Chat\"): %s", app_id ? app_id : "NULL");
  return FALSE;
}

gboolean authloop_glib_session_key_sync(const char *app_id, GCancellable *cancellable,
                                        unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES],
                                        GError **error) {
  g_return_val_if_fail(key != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  return valid_id(app_id, error) && session_key(app_id, cancellable, key, error);
}

gboolean authloop_glib_session_key_forget_sync(const char *app_id, GCancellable *cancellable,
                                               GError **error) {
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  return valid_id(app_id, error) && forget(app_id, cancellable, error);
}

static void key_free(gpointer key) {
  memset(key, 0, AUTHLOOP_GLIB_SESSION_KEY_BYTES);
  g_free(key);
}

static void key_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel) {
  guchar *key = g_malloc(AUTHLOOP_GLIB_SESSION_KEY_BYTES);
  GError *e = NULL;
  (void)source;
  if (session_key(data, cancel, key, &e)) {
    g_task_return_pointer(task, key, key_free); /* wiped too when nobody takes it */
  } else {
    key_free(key);
    g_task_return_error(task, e);
  }
}

void authloop_glib_session_key_async(const char *app_id, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data) {
  GTask *task = g_task_new(NULL, cancellable, callback, user_data);
  GError *e = NULL;
  g_task_set_source_tag(task, authloop_glib_session_key_async);
  if (!valid_id(app_id, &e)) {
    g_task_return_error(task, e);
  } else {
    g_task_set_task_data(task, g_strdup(app_id), g_free);
    g_task_run_in_thread(task, key_thread);
  }
  g_object_unref(task);
}

gboolean authloop_glib_session_key_finish(GAsyncResult *result,
                                          unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES],
                                          GError **error) {
  guchar *k;
  g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
  g_return_val_if_fail(key != NULL, FALSE);
  if (!(k = g_task_propagate_pointer(G_TASK(result), error)))
    return FALSE;
  memcpy(key, k, AUTHLOOP_GLIB_SESSION_KEY_BYTES);
  key_free(k);
  return TRUE;
}
