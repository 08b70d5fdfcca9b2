/* SPDX-License-Identifier: MIT */
/* AuthloopSession: one user session as a GObject (part of authloop-glib).
 * State as properties with notify, events as signals, operations in the GIO
 * async pattern with GCancellable and GError, and GObject Introspection
 * (Authloop-0.2.gir / .typelib) for Python, GJS, Vala and others.
 *
 * A session owns an authloop ctx and client on the thread-default main
 * context of the thread that makes it; it is used from that thread only. */
#ifndef AUTHLOOP_SESSION_H
#define AUTHLOOP_SESSION_H

#include <authloop.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * AuthloopSessionState:
 * @AUTHLOOP_SESSION_STATE_LOGGED_OUT: nobody is logged in
 * @AUTHLOOP_SESSION_STATE_LOGGING_IN: a login is under way
 * @AUTHLOOP_SESSION_STATE_LOGGED_IN: a user is logged in
 * @AUTHLOOP_SESSION_STATE_REFRESHING: logged in, the tokens being renewed
 * @AUTHLOOP_SESSION_STATE_EXPIRED: the session ended without a logout
 * @AUTHLOOP_SESSION_STATE_AWAITING_TOKEN: a login waits for the user elsewhere
 *   (a browser's redirect, a two-step strategy's token)
 *
 * The session's state, authloop_state's values.
 */
typedef enum {
  AUTHLOOP_SESSION_STATE_LOGGED_OUT = 0,
  AUTHLOOP_SESSION_STATE_LOGGING_IN,
  AUTHLOOP_SESSION_STATE_LOGGED_IN,
  AUTHLOOP_SESSION_STATE_REFRESHING,
  AUTHLOOP_SESSION_STATE_EXPIRED,
  AUTHLOOP_SESSION_STATE_AWAITING_TOKEN
} AuthloopSessionState;

AUTHLOOP_EXTERN GType authloop_session_state_get_type(void);
#define AUTHLOOP_TYPE_SESSION_STATE (authloop_session_state_get_type())

/**
 * AuthloopError:
 *
 * authloop's error codes (authloop.h's AUTHLOOP_E* values) as the codes of
 * the AUTHLOOP_ERROR domain; a cancelled call fails with
 * G_IO_ERROR_CANCELLED instead, as GIO's calls do.
 */
#define AUTHLOOP__GERROR_VALUE(suffix, value, name, message) AUTHLOOP_ERROR_##suffix = value,
typedef enum { AUTHLOOP_ERRNO_MAP(AUTHLOOP__GERROR_VALUE) } AuthloopError;
#undef AUTHLOOP__GERROR_VALUE

AUTHLOOP_EXTERN GType authloop_error_get_type(void);
#define AUTHLOOP_TYPE_ERROR (authloop_error_get_type())

/**
 * AUTHLOOP_ERROR:
 *
 * The error domain of authloop's failures.
 */
#define AUTHLOOP_ERROR (authloop_error_quark())
AUTHLOOP_EXTERN GQuark authloop_error_quark(void);

#define AUTHLOOP_TYPE_SESSION (authloop_session_get_type())
AUTHLOOP_EXTERN
G_DECLARE_FINAL_TYPE(AuthloopSession, authloop_session, AUTHLOOP, SESSION, GObject)

AUTHLOOP_EXTERN AuthloopSession *authloop_session_new(const char *provider, const char *base_url,
                                                      GError **error);

AUTHLOOP_EXTERN AuthloopSessionState authloop_session_get_state(AuthloopSession *self);
AUTHLOOP_EXTERN gboolean authloop_session_get_logged_in(AuthloopSession *self);
AUTHLOOP_EXTERN const char *authloop_session_get_user_id(AuthloopSession *self);
AUTHLOOP_EXTERN const char *authloop_session_get_user_name(AuthloopSession *self);
AUTHLOOP_EXTERN gint64 authloop_session_get_expires_in(AuthloopSession *self);
AUTHLOOP_EXTERN const char *authloop_session_get_login_redirect(AuthloopSession *self);
AUTHLOOP_EXTERN char *authloop_session_dup_access_token(AuthloopSession *self);

AUTHLOOP_EXTERN void authloop_session_touch(AuthloopSession *self);

AUTHLOOP_EXTERN void authloop_session_login_code_async(AuthloopSession *self, const char *code,
                                                       GCancellable *cancellable,
                                                       GAsyncReadyCallback callback,
                                                       gpointer user_data);
AUTHLOOP_EXTERN gboolean authloop_session_login_code_finish(AuthloopSession *self,
                                                            GAsyncResult *result, GError **error);
AUTHLOOP_EXTERN void
authloop_session_login_password_async(AuthloopSession *self, const char *username,
                                      const char *password, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
AUTHLOOP_EXTERN gboolean authloop_session_login_password_finish(AuthloopSession *self,
                                                                GAsyncResult *result,
                                                                GError **error);
AUTHLOOP_EXTERN void authloop_session_login_key_async(AuthloopSession *self, const char *uid,
                                                      const char *auth_key,
                                                      GCancellable *cancellable,
                                                      GAsyncReadyCallback callback,
                                                      gpointer user_data);
AUTHLOOP_EXTERN gboolean authloop_session_login_key_finish(AuthloopSession *self,
                                                           GAsyncResult *result, GError **error);
AUTHLOOP_EXTERN void authloop_session_login_device_async(AuthloopSession *self,
                                                         GCancellable *cancellable,
                                                         GAsyncReadyCallback callback,
                                                         gpointer user_data);
AUTHLOOP_EXTERN gboolean authloop_session_login_device_finish(AuthloopSession *self,
                                                              GAsyncResult *result, GError **error);
AUTHLOOP_EXTERN void authloop_session_login_browser_async(AuthloopSession *self,
                                                          GCancellable *cancellable,
                                                          GAsyncReadyCallback callback,
                                                          gpointer user_data);
AUTHLOOP_EXTERN gboolean authloop_session_login_browser_finish(AuthloopSession *self,
                                                               GAsyncResult *result,
                                                               GError **error);
AUTHLOOP_EXTERN gboolean authloop_session_login_callback(AuthloopSession *self,
                                                         const char *redirect_url, GError **error);
AUTHLOOP_EXTERN void authloop_session_logout_async(AuthloopSession *self, GCancellable *cancellable,
                                                   GAsyncReadyCallback callback,
                                                   gpointer user_data);
AUTHLOOP_EXTERN gboolean authloop_session_logout_finish(AuthloopSession *self, GAsyncResult *result,
                                                        GError **error);
AUTHLOOP_EXTERN void authloop_session_refresh_async(AuthloopSession *self,
                                                    GCancellable *cancellable,
                                                    GAsyncReadyCallback callback,
                                                    gpointer user_data);
AUTHLOOP_EXTERN gboolean authloop_session_refresh_finish(AuthloopSession *self,
                                                         GAsyncResult *result, GError **error);

G_END_DECLS

#endif
