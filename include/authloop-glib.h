/* SPDX-License-Identifier: MIT */
/* authloop on a GLib main loop (GTK, GNOME, any GMainContext). */
#ifndef AUTHLOOP_GLIB_H
#define AUTHLOOP_GLIB_H

#include <authloop.h>
#include <gio/gio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Drives the ctx's uv loop from `context` (NULL: the default main context):
 * a GSource that watches the loop's backend fd, wakes at its next timer, and
 * runs it without blocking. Events reach handlers on the thread that runs
 * `context`, which must be the ctx's loop thread. Nothing else may run the uv
 * loop meanwhile. Returns the attached source (one reference for the caller);
 * after the ctx's close callback, g_source_destroy() and g_source_unref() it,
 * then uv_loop_close() the loop. NULL if the loop has no backend fd here. */
AUTHLOOP_EXTERN GSource *authloop_glib_attach(authloop_ctx *ctx, GMainContext *context);

/* ---- the session key in the desktop's keyring ----------------------------------- */

#define AUTHLOOP_GLIB_SESSION_KEY_BYTES 32
#define AUTHLOOP_GLIB_ERROR             (authloop_glib_error_quark())
typedef enum {
  /* fixed values, never reused (test_keyring.c holds them) */
  AUTHLOOP_GLIB_ERROR_NO_SECRET_SERVICE = 0, /* none answers (no session bus, or no libsecret) */
  AUTHLOOP_GLIB_ERROR_SECRET_SERVICE = 1, /* it answered but refused (locked, prompt dismissed) */
  AUTHLOOP_GLIB_ERROR_BAD_KEY = 2,        /* it holds something that is not a 32-byte key */
  AUTHLOOP_GLIB_ERROR_INVALID = 3         /* app_id is not an application id */
} authloop_glib_error;
AUTHLOOP_EXTERN GQuark authloop_glib_error_quark(void);

/* The application's session key (for authloop_client_options.session_key),
 * kept in the Secret Service (GNOME Keyring, KWallet) through libsecret under
 * app_id, a GApplication id ("org.example.Chat"): read when it is there, made
 * (32 random bytes) and stored the first time. The sync form blocks on D-Bus:
 * call it before the main loop runs, or use the async form, which does the
 * work on a thread and calls back on the caller's thread-default main
 * context. Wipe the key when done. A keyring that is locked may show the
 * desktop's unlock prompt. Errors: AUTHLOOP_GLIB_ERROR_* (a clear one when no
 * Secret Service runs), G_IO_ERROR_CANCELLED. */
AUTHLOOP_EXTERN gboolean
authloop_glib_session_key_sync(const char *app_id, GCancellable *cancellable,
                               unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES], GError **error);
AUTHLOOP_EXTERN void authloop_glib_session_key_async(const char *app_id, GCancellable *cancellable,
                                                     GAsyncReadyCallback callback,
                                                     gpointer user_data);
AUTHLOOP_EXTERN gboolean authloop_glib_session_key_finish(
    GAsyncResult *result, unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES], GError **error);
/* Removes the application's key ("forget me"; the session file it sealed can
 * then no longer be read). TRUE also when there was none. */
AUTHLOOP_EXTERN gboolean authloop_glib_session_key_forget_sync(const char *app_id,
                                                               GCancellable *cancellable,
                                                               GError **error);

#ifdef __cplusplus
}
#endif
#endif
