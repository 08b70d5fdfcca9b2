/* SPDX-License-Identifier: MIT */
/* AuthloopSession (authloop-session.h): a GObject over the public API only.
 * Its ctx, uv loop and GSource live in a "core" that outlives the object:
 * disposal frees the client (a freed client answers nothing: no callback
 * reaches the object afterwards) and closes the ctx, and the core goes when
 * the close has finished, from the main context. */
#include "authloop-session.h"

#include "authloop-glib.h"

#include <string.h>

/* ---- enums and the error domain ---------------------------------------------------- */

GType authloop_session_state_get_type(void) {
  static gsize id = 0;
  static const GEnumValue values[] = {
      {AUTHLOOP_SESSION_STATE_LOGGED_OUT, "AUTHLOOP_SESSION_STATE_LOGGED_OUT", "logged-out"},
      {AUTHLOOP_SESSION_STATE_LOGGING_IN, "AUTHLOOP_SESSION_STATE_LOGGING_IN", "logging-in"},
      {AUTHLOOP_SESSION_STATE_LOGGED_IN, "AUTHLOOP_SESSION_STATE_LOGGED_IN", "logged-in"},
      {AUTHLOOP_SESSION_STATE_REFRESHING, "AUTHLOOP_SESSION_STATE_REFRESHING", "refreshing"},
      {AUTHLOOP_SESSION_STATE_EXPIRED, "AUTHLOOP_SESSION_STATE_EXPIRED", "expired"},
      {AUTHLOOP_SESSION_STATE_AWAITING_TOKEN, "AUTHLOOP_SESSION_STATE_AWAITING_TOKEN",
       "awaiting-token"},
      {0, NULL, NULL}};
  if (g_once_init_enter(&id))
    g_once_init_leave(
        &id, g_enum_register_static(g_intern_static_string("AuthloopSessionState"), values));
  return (GType)id;
}

#define ERROR_VALUE(suffix, value, name, message) {value, "AUTHLOOP_ERROR_" #suffix, #suffix},
GType authloop_error_get_type(void) {
  static gsize id = 0;
  static const GEnumValue values[] = {AUTHLOOP_ERRNO_MAP(ERROR_VALUE){0, NULL, NULL}};
  if (g_once_init_enter(&id))
    g_once_init_leave(&id, g_enum_register_static(g_intern_static_string("AuthloopError"), values));
  return (GType)id;
}
#undef ERROR_VALUE

GQuark authloop_error_quark(void) { return g_quark_from_static_string("authloop-error-quark"); }

/* The error of code rc, with the server's own words when there are some. */
static GError *error_of(int rc, const char *message) {
  if (rc == AUTHLOOP_ECANCELED)
    return g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, authloop_strerror(rc));
  return g_error_new_literal(AUTHLOOP_ERROR, rc, message ? message : authloop_strerror(rc));
}

/* ---- the object ------------------------------------------------------------------------ */

typedef struct {
  uv_loop_t loop;
  authloop_ctx *ctx;
  GSource *source;
  GMainContext *context;
} core;

/* A call in flight: its task, until it is answered or cancelled. */
typedef struct {
  AuthloopSession *self; /* borrowed while the task holds the object; a refresh's
                            op holds its own reference (its callback may come
                            after the task was answered by a cancellation) */
  GTask *task;           /* NULL once returned (a cancellation came first) */
  GSource *cancel;       /* the cancellable's source on the session's context */
  int kind;              /* OP_LOGIN, OP_LOGOUT, OP_REFRESH */
} op;

enum { OP_LOGIN, OP_LOGOUT, OP_REFRESH };

struct _AuthloopSession {
  GObject parent;
  /* construct-only options */
  char *provider, *base_url, *admin_url, *app_id, *region, *client_id, *client_secret, *scope,
      *redirect_uri, *session_path, *ca_file;
  GBytes *session_key;
  guint refresh_margin, idle_window;
  gint userinfo;
  core *core;
  authloop_client *client;
  GError *init_error; /* why the session could not be made: every call reports it */
  /* what the properties last said (notify when it changes) */
  AuthloopSessionState state;
  gboolean logged_in;
  char *user_id, *user_name, *redirect;
  gint64 expires_in;
  op *login;        /* one at a time (authloop's rule) */
  GQueue logouts;   /* op *: each logout's event answers the oldest */
  GList *refreshes; /* op *: several may wait on one refresh */
};

static void initable_iface_init(GInitableIface *iface);
G_DEFINE_TYPE_WITH_CODE(AuthloopSession, authloop_session, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(G_TYPE_INITABLE, initable_iface_init))

enum {
  PROP_0,
  PROP_PROVIDER,
  PROP_BASE_URL,
  PROP_ADMIN_URL,
  PROP_APP_ID,
  PROP_REGION,
  PROP_CLIENT_ID,
  PROP_CLIENT_SECRET,
  PROP_SCOPE,
  PROP_REDIRECT_URI,
  PROP_SESSION_PATH,
  PROP_SESSION_KEY,
  PROP_CA_FILE,
  PROP_REFRESH_MARGIN,
  PROP_IDLE_WINDOW,
  PROP_USERINFO,
  PROP_STATE,
  PROP_LOGGED_IN,
  PROP_USER_ID,
  PROP_USER_NAME,
  PROP_EXPIRES_IN,
  PROP_LOGIN_REDIRECT,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum {
  SIG_LOGIN_ATTEMPT,
  SIG_LOGOUT,
  SIG_TOKEN_REFRESHED,
  SIG_TOKEN_EXPIRING,
  SIG_SESSION_EXPIRED,
  SIG_STATE_CHANGED,
  SIG_LOGIN_PROMPT,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* ---- properties from the client ----------------------------------------------------- */

static void set_string(AuthloopSession *self, char **field, const char *value, int prop) {
  if (g_strcmp0(*field, value) == 0)
    return;
  g_free(*field);
  *field = g_strdup(value);
  g_object_notify_by_pspec(G_OBJECT(self), props[prop]);
}

/* Every read-only property read again; notify for those that changed.
 * expires-in is read again only when the token changed (token_changed): it
 * counts down between, and is read live. */
static void sync_props(AuthloopSession *self, gboolean token_changed) {
  authloop_client *c = self->client;
  const authloop_user *u = c ? authloop_current_user(c) : NULL;
  AuthloopSessionState st =
      c ? (AuthloopSessionState)authloop_client_state(c) : AUTHLOOP_SESSION_STATE_LOGGED_OUT;
  gboolean in = c && authloop_is_logged_in(c);
  long long ms = in ? authloop_token_expires_in_ms(c) : 0;
  gint64 left = ms < 0 ? -1 : ms / 1000;
  g_object_freeze_notify(G_OBJECT(self));
  if (st != self->state) {
    self->state = st;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_STATE]);
  }
  if (in != self->logged_in) {
    self->logged_in = in;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_LOGGED_IN]);
  }
  set_string(self, &self->user_id, u ? authloop_user_id(u) : NULL, PROP_USER_ID);
  set_string(self, &self->user_name, u ? authloop_user_name(u) : NULL, PROP_USER_NAME);
  set_string(self, &self->redirect, c ? authloop_login_redirect(c) : NULL, PROP_LOGIN_REDIRECT);
  if (token_changed && left != self->expires_in) {
    self->expires_in = left;
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_EXPIRES_IN]);
  }
  g_object_thaw_notify(G_OBJECT(self));
}

/* ---- calls in flight ------------------------------------------------------------------ */

static void op_free(op *o) {
  if (o->cancel) {
    g_source_destroy(o->cancel);
    g_source_unref(o->cancel);
  }
  g_clear_object(&o->task);
  if (o->kind == OP_REFRESH)
    g_object_unref(o->self);
  g_free(o);
}

/* The call's answer: 0 TRUE, else its error (message: the server's words,
 * or NULL). The op is freed by whoever unlinks it. */
static void op_answer(op *o, int rc, const char *message) {
  GTask *task = o->task;
  if (!task)
    return;
  o->task = NULL;
  if (rc == 0)
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error_of(rc, message));
  g_object_unref(task);
}

static void op_return(op *o, int rc) { op_answer(o, rc, NULL); }

/* A cancellation, on the session's context: a login is ended (its
 * loginAttempt says so); a logout or a refresh is answered now (the logout
 * still clears the session, the refresh may still land). */
static gboolean on_cancelled(GCancellable *cancellable, gpointer data) {
  op *o = data;
  AuthloopSession *self = o->self;
  (void)cancellable;
  if (o->kind == OP_LOGIN && self->client && o == self->login) {
    authloop_login_cancel(self->client); /* its loginAttempt returns the task */
    return G_SOURCE_REMOVE;
  }
  op_return(o, AUTHLOOP_ECANCELED);
  return G_SOURCE_REMOVE;
}

static op *op_new(AuthloopSession *self, int kind, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data, gpointer tag) {
  op *o = g_new0(op, 1);
  o->self = self;
  o->kind = kind;
  o->task = g_task_new(self, cancellable, callback, user_data);
  if (kind == OP_REFRESH)
    g_object_ref(self);
  g_task_set_source_tag(o->task, tag);
  if (cancellable) {
    o->cancel = g_cancellable_source_new(cancellable);
    g_source_set_callback(o->cancel, (GSourceFunc)(void (*)(void))on_cancelled, o, NULL);
    g_source_attach(o->cancel, self->core ? self->core->context : NULL);
  }
  return o;
}

/* A call that could not start: answered at once (from the main loop, as
 * GTask does), freed. */
static void op_fail(op *o, int rc) {
  op_return(o, rc);
  op_free(o);
}

static void on_refreshed(authloop_client *c, int status, void *ud) {
  op *o = ud; /* it holds the session: alive here, whatever the app dropped */
  (void)c;
  o->self->refreshes = g_list_remove(o->self->refreshes, o);
  op_return(o, status);
  op_free(o);
}

/* ---- events into signals ---------------------------------------------------------- */

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  AuthloopSession *self = ud;
  op *o;
  (void)c;
  g_object_ref(self); /* a handler may drop the last reference */
  sync_props(self, ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT || ev->type == AUTHLOOP_EV_LOGOUT ||
                       ev->type == AUTHLOOP_EV_TOKEN_REFRESHED ||
                       ev->type == AUTHLOOP_EV_SESSION_EXPIRED);
  switch (ev->type) {
  case AUTHLOOP_EV_LOGIN_ATTEMPT:
    /* the login is over before its signal: a handler may start another */
    o = self->login;
    self->login = NULL;
    g_signal_emit(self, signals[SIG_LOGIN_ATTEMPT], 0, (gboolean)ev->success, ev->error,
                  ev->message);
    if (o) {
      op_answer(o, ev->success ? 0 : ev->error, ev->message);
      op_free(o);
    }
    break;
  case AUTHLOOP_EV_LOGOUT:
    o = g_queue_pop_head(&self->logouts);
    g_signal_emit(self, signals[SIG_LOGOUT], 0, ev->error);
    if (o) { /* logged out here whatever the server said */
      op_return(o, 0);
      op_free(o);
    }
    break;
  case AUTHLOOP_EV_STATE_CHANGED:
    g_signal_emit(self, signals[SIG_STATE_CHANGED], 0, (AuthloopSessionState)ev->old_state,
                  (AuthloopSessionState)ev->new_state);
    break;
  case AUTHLOOP_EV_TOKEN_REFRESHED:
    g_signal_emit(self, signals[SIG_TOKEN_REFRESHED], 0, (gint64)ev->lifetime);
    break;
  case AUTHLOOP_EV_TOKEN_EXPIRING:
    g_signal_emit(self, signals[SIG_TOKEN_EXPIRING], 0, (gint64)ev->expires_in_ms);
    break;
  case AUTHLOOP_EV_SESSION_EXPIRED:
    g_signal_emit(self, signals[SIG_SESSION_EXPIRED], 0, ev->message);
    break;
  case AUTHLOOP_EV_LOGIN_PROMPT: {
    const authloop_login_prompt *p = authloop_login_prompt_of(c);
    if (p)
      g_signal_emit(self, signals[SIG_LOGIN_PROMPT], 0, p->verification_uri,
                    p->verification_uri_complete, p->user_code, (gint64)p->expires_in);
    break;
  }
  default:
    break;
  }
  g_object_unref(self);
}

/* ---- making and unmaking ---------------------------------------------------------------- */

/* The ctx has closed: the rest goes from the main context, out of the uv
 * loop's run (uv_loop_close cannot run inside it). */
static gboolean core_free(gpointer data) {
  core *k = data;
  if (k->source) {
    g_source_destroy(k->source);
    g_source_unref(k->source);
  }
  uv_loop_close(&k->loop);
  g_main_context_unref(k->context);
  g_free(k);
  return G_SOURCE_REMOVE;
}

static void on_ctx_closed(authloop_ctx *ctx, void *ud) {
  core *k = ud;
  GSource *later = g_idle_source_new();
  (void)ctx;
  g_source_set_callback(later, core_free, k, NULL);
  g_source_attach(later, k->context);
  g_source_unref(later);
}

static int make(AuthloopSession *self) {
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  core *k = g_new0(core, 1);
  int rc, t;
  k->context = g_main_context_ref_thread_default();
  if (uv_loop_init(&k->loop) != 0) {
    g_main_context_unref(k->context);
    g_free(k);
    return AUTHLOOP_ENOMEM;
  }
  co.ca_file = self->ca_file;
  if ((rc = authloop_ctx_new(&k->loop, &co, &k->ctx)) != 0) {
    uv_loop_close(&k->loop);
    g_main_context_unref(k->context);
    g_free(k);
    return rc;
  }
  k->source = authloop_glib_attach(k->ctx, k->context);
  self->core = k;
  o.provider = self->provider;
  o.base_url = self->base_url;
  o.admin_url = self->admin_url;
  o.app_id = self->app_id;
  o.region = self->region;
  o.client_id = self->client_id;
  o.client_secret = self->client_secret;
  o.scope = self->scope;
  o.redirect_uri = self->redirect_uri;
  o.session_path = self->session_path;
  o.refresh_margin_s = self->refresh_margin;
  o.idle_window_s = self->idle_window;
  o.userinfo = self->userinfo;
  if (self->session_key) {
    if (g_bytes_get_size(self->session_key) != 32)
      return AUTHLOOP_EINVAL;
    o.session_key = g_bytes_get_data(self->session_key, NULL);
  }
  if ((rc = authloop_client_new(k->ctx, &o, &self->client)) != 0)
    return rc;
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(self->client, (authloop_event_type)t, on_event, self);
  return 0;
}

static void authloop_session_constructed(GObject *obj) {
  AuthloopSession *self = AUTHLOOP_SESSION(obj);
  int rc;
  G_OBJECT_CLASS(authloop_session_parent_class)->constructed(obj);
  rc = self->provider ? make(self) : AUTHLOOP_EINVAL;
  if (rc == 0 && !self->core->source)
    rc = AUTHLOOP_ENOTSUP; /* a loop without a backend fd: nothing to poll */
  if (rc)
    self->init_error =
        g_error_new(AUTHLOOP_ERROR, rc, "the session could not be made: %s", authloop_strerror(rc));
  sync_props(self, TRUE); /* a session restored from its file */
}

static gboolean initable_init(GInitable *initable, GCancellable *cancellable, GError **error) {
  AuthloopSession *self = AUTHLOOP_SESSION(initable);
  (void)cancellable;
  if (self->init_error) {
    g_propagate_error(error, g_error_copy(self->init_error));
    return FALSE;
  }
  return TRUE;
}

static void initable_iface_init(GInitableIface *iface) { iface->init = initable_init; }

static void authloop_session_dispose(GObject *obj) {
  AuthloopSession *self = AUTHLOOP_SESSION(obj);
  if (self->client) { /* a freed client answers nothing: no callback reaches us again */
    authloop_client_free(self->client);
    self->client = NULL;
    sync_props(self, TRUE); /* nobody is logged in here any more */
  }
  if (self->core) {
    core *k = self->core;
    self->core = NULL;
    if (!k->source) { /* nothing drives its loop: the close runs here, to its end */
      authloop_ctx_close(k->ctx, NULL, NULL);
      uv_run(&k->loop, UV_RUN_DEFAULT);
      core_free(k);
    } else if (authloop_ctx_close(k->ctx, on_ctx_closed, k) != 0) {
      on_ctx_closed(k->ctx, k); /* closing already: what is left goes later */
    }
  }
  /* what was in flight when the object went: answered as cancelled */
  if (self->login) {
    op_return(self->login, AUTHLOOP_ECANCELED);
    g_clear_pointer(&self->login, op_free);
  }
  while (!g_queue_is_empty(&self->logouts)) {
    op *o = g_queue_pop_head(&self->logouts);
    op_return(o, AUTHLOOP_ECANCELED);
    op_free(o);
  }
  /* a refresh's callback still comes, with AUTHLOOP_ECANCELED (the freed
   * client's promise): it answers the call; the task keeps us until then */
  G_OBJECT_CLASS(authloop_session_parent_class)->dispose(obj);
}

static void authloop_session_finalize(GObject *obj) {
  AuthloopSession *self = AUTHLOOP_SESSION(obj);
  g_free(self->provider);
  g_free(self->base_url);
  g_free(self->admin_url);
  g_free(self->app_id);
  g_free(self->region);
  g_free(self->client_id);
  g_free(self->client_secret);
  g_free(self->scope);
  g_free(self->redirect_uri);
  g_free(self->session_path);
  g_free(self->ca_file);
  g_clear_pointer(&self->session_key, g_bytes_unref);
  g_clear_error(&self->init_error);
  g_free(self->user_id);
  g_free(self->user_name);
  g_free(self->redirect);
  G_OBJECT_CLASS(authloop_session_parent_class)->finalize(obj);
}

static char **string_prop(AuthloopSession *self, guint id) {
  switch (id) {
  case PROP_PROVIDER:
    return &self->provider;
  case PROP_BASE_URL:
    return &self->base_url;
  case PROP_ADMIN_URL:
    return &self->admin_url;
  case PROP_APP_ID:
    return &self->app_id;
  case PROP_REGION:
    return &self->region;
  case PROP_CLIENT_ID:
    return &self->client_id;
  case PROP_CLIENT_SECRET:
    return &self->client_secret;
  case PROP_SCOPE:
    return &self->scope;
  case PROP_REDIRECT_URI:
    return &self->redirect_uri;
  case PROP_SESSION_PATH:
    return &self->session_path;
  case PROP_CA_FILE:
    return &self->ca_file;
  default:
    return NULL;
  }
}

static void set_property(GObject *obj, guint id, const GValue *value, GParamSpec *pspec) {
  AuthloopSession *self = AUTHLOOP_SESSION(obj);
  char **s = string_prop(self, id);
  if (s) {
    g_free(*s);
    *s = g_value_dup_string(value);
    return;
  }
  switch (id) {
  case PROP_SESSION_KEY:
    g_clear_pointer(&self->session_key, g_bytes_unref);
    self->session_key = g_value_dup_boxed(value);
    break;
  case PROP_REFRESH_MARGIN:
    self->refresh_margin = g_value_get_uint(value);
    break;
  case PROP_IDLE_WINDOW:
    self->idle_window = g_value_get_uint(value);
    break;
  case PROP_USERINFO:
    self->userinfo = g_value_get_int(value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
  }
}

static void get_property(GObject *obj, guint id, GValue *value, GParamSpec *pspec) {
  AuthloopSession *self = AUTHLOOP_SESSION(obj);
  char **s = string_prop(self, id);
  if (s && id != PROP_CLIENT_SECRET) {
    g_value_set_string(value, *s);
    return;
  }
  switch (id) {
  case PROP_CLIENT_SECRET: /* write-only in effect: a secret is not read back */
    g_value_set_string(value, NULL);
    break;
  case PROP_SESSION_KEY:
    g_value_set_boxed(value, NULL); /* likewise */
    break;
  case PROP_REFRESH_MARGIN:
    g_value_set_uint(value, self->refresh_margin);
    break;
  case PROP_IDLE_WINDOW:
    g_value_set_uint(value, self->idle_window);
    break;
  case PROP_USERINFO:
    g_value_set_int(value, self->userinfo);
    break;
  case PROP_STATE:
    g_value_set_enum(value, self->state);
    break;
  case PROP_LOGGED_IN:
    g_value_set_boolean(value, self->logged_in);
    break;
  case PROP_USER_ID:
    g_value_set_string(value, self->user_id);
    break;
  case PROP_USER_NAME:
    g_value_set_string(value, self->user_name);
    break;
  case PROP_EXPIRES_IN:
    g_value_set_int64(value, authloop_session_get_expires_in(self));
    break;
  case PROP_LOGIN_REDIRECT:
    g_value_set_string(value, self->redirect);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
  }
}

static void authloop_session_class_init(AuthloopSessionClass *klass) {
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  const GParamFlags ctor = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;
  oc->constructed = authloop_session_constructed;
  oc->dispose = authloop_session_dispose;
  oc->finalize = authloop_session_finalize;
  oc->set_property = set_property;
  oc->get_property = get_property;

  /**
   * AuthloopSession:provider:
   *
   * The dialect: "gateway", "kuzzle", "cometchat", "cognito" or "oidc".
   */
  props[PROP_PROVIDER] = g_param_spec_string("provider", NULL, NULL, NULL, ctor);
  /**
   * AuthloopSession:base-url:
   *
   * The server's URL (for "oidc", the issuer).
   */
  props[PROP_BASE_URL] = g_param_spec_string("base-url", NULL, NULL, NULL, ctor);
  props[PROP_ADMIN_URL] = g_param_spec_string("admin-url", NULL, NULL, NULL, ctor);
  props[PROP_APP_ID] = g_param_spec_string("app-id", NULL, NULL, NULL, ctor);
  props[PROP_REGION] = g_param_spec_string("region", NULL, NULL, NULL, ctor);
  props[PROP_CLIENT_ID] = g_param_spec_string("client-id", NULL, NULL, NULL, ctor);
  /**
   * AuthloopSession:client-secret:
   *
   * The client's secret ("cognito", "oidc"); never read back.
   */
  props[PROP_CLIENT_SECRET] = g_param_spec_string("client-secret", NULL, NULL, NULL, ctor);
  props[PROP_SCOPE] = g_param_spec_string("scope", NULL, NULL, NULL, ctor);
  props[PROP_REDIRECT_URI] = g_param_spec_string("redirect-uri", NULL, NULL, NULL, ctor);
  /**
   * AuthloopSession:session-path:
   *
   * Where the session is kept across runs (NULL: nowhere).
   */
  props[PROP_SESSION_PATH] = g_param_spec_string("session-path", NULL, NULL, NULL, ctor);
  /**
   * AuthloopSession:session-key:
   *
   * 32 bytes that seal the session file (authloop_glib_session_key_async());
   * never read back.
   */
  props[PROP_SESSION_KEY] = g_param_spec_boxed("session-key", NULL, NULL, G_TYPE_BYTES, ctor);
  /**
   * AuthloopSession:ca-file:
   *
   * A PEM bundle to trust instead of the system's.
   */
  props[PROP_CA_FILE] = g_param_spec_string("ca-file", NULL, NULL, NULL, ctor);
  props[PROP_REFRESH_MARGIN] =
      g_param_spec_uint("refresh-margin", NULL, NULL, 0, G_MAXUINT, 0, ctor);
  props[PROP_IDLE_WINDOW] = g_param_spec_uint("idle-window", NULL, NULL, 0, G_MAXUINT, 0, ctor);
  /**
   * AuthloopSession:userinfo:
   *
   * Whether a login fetches the user object: 1 yes, -1 no, 0 the dialect's
   * default (authloop_client_options.userinfo); any other value fails the
   * construction (AUTHLOOP_ERROR_EINVAL), as it fails authloop_client_new().
   * It was a boolean before 0.2: TRUE and FALSE still set 1 and 0.
   */
  /* the whole int range: a value GLib clamped with a warning would be
   * constructed as another option than the application asked for */
  props[PROP_USERINFO] = g_param_spec_int("userinfo", NULL, NULL, G_MININT, G_MAXINT, 0, ctor);
  /**
   * AuthloopSession:state:
   *
   * The session's state.
   */
  props[PROP_STATE] = g_param_spec_enum("state", NULL, NULL, AUTHLOOP_TYPE_SESSION_STATE,
                                        AUTHLOOP_SESSION_STATE_LOGGED_OUT, ro);
  /**
   * AuthloopSession:logged-in:
   *
   * Whether a user is logged in (bind a Log Out button's sensitivity to it).
   */
  props[PROP_LOGGED_IN] = g_param_spec_boolean("logged-in", NULL, NULL, FALSE, ro);
  /**
   * AuthloopSession:user-id:
   *
   * The logged-in user's id, or NULL.
   */
  props[PROP_USER_ID] = g_param_spec_string("user-id", NULL, NULL, NULL, ro);
  props[PROP_USER_NAME] = g_param_spec_string("user-name", NULL, NULL, NULL, ro);
  /**
   * AuthloopSession:expires-in:
   *
   * Seconds left on the access token: 0 without one, -1 for one that never
   * expires. Read, it is the time left now; notify comes when the token
   * changes (a login, a refresh, a logout), not every second.
   */
  props[PROP_EXPIRES_IN] = g_param_spec_int64("expires-in", NULL, NULL, -1, G_MAXINT64, 0, ro);
  /**
   * AuthloopSession:login-redirect:
   *
   * While a browser login (or a redirect strategy) waits: the URL to open.
   */
  props[PROP_LOGIN_REDIRECT] = g_param_spec_string("login-redirect", NULL, NULL, NULL, ro);
  g_object_class_install_properties(oc, N_PROPS, props);

  /**
   * AuthloopSession::login-attempt:
   * @self: the session
   * @success: whether the user is logged in
   * @error: 0, or the #AuthloopError code
   * @message: (nullable): why it failed, the server's own words when it sent some
   *
   * A login ended ("loginAttempt").
   */
  signals[SIG_LOGIN_ATTEMPT] =
      g_signal_new("login-attempt", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                   NULL, G_TYPE_NONE, 3, G_TYPE_BOOLEAN, G_TYPE_INT, G_TYPE_STRING);
  /**
   * AuthloopSession::logout:
   * @self: the session
   * @error: 0, or why the server did not confirm it (the session is cleared here anyway)
   */
  signals[SIG_LOGOUT] = g_signal_new("logout", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                     NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
  /**
   * AuthloopSession::token-refreshed:
   * @self: the session
   * @lifetime: the new tokens' lifetime in seconds
   */
  signals[SIG_TOKEN_REFRESHED] =
      g_signal_new("token-refreshed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                   NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
  /**
   * AuthloopSession::token-expiring:
   * @self: the session
   * @expires_in_ms: time left on the token
   *
   * A due refresh was skipped: the user is idle (authloop_session_touch()).
   */
  signals[SIG_TOKEN_EXPIRING] =
      g_signal_new("token-expiring", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                   NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
  /**
   * AuthloopSession::session-expired:
   * @self: the session
   * @reason: "idle", "revoked", "refresh_lost" or "lifetime"
   */
  signals[SIG_SESSION_EXPIRED] =
      g_signal_new("session-expired", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                   NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * AuthloopSession::state-changed:
   * @self: the session
   * @old_state: the state before
   * @new_state: the state now
   */
  signals[SIG_STATE_CHANGED] =
      g_signal_new("state-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                   NULL, G_TYPE_NONE, 2, AUTHLOOP_TYPE_SESSION_STATE, AUTHLOOP_TYPE_SESSION_STATE);
  /**
   * AuthloopSession::login-prompt:
   * @self: the session
   * @verification_uri: where the user goes
   * @verification_uri_complete: (nullable): the same with the code in it
   * @user_code: what the user enters there
   * @expires_in: seconds the code lives
   *
   * A device login waits for the user elsewhere.
   */
  signals[SIG_LOGIN_PROMPT] =
      g_signal_new("login-prompt", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                   G_TYPE_NONE, 4, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT64);
}

static void authloop_session_init(AuthloopSession *self) { g_queue_init(&self->logouts); }

/* ---- the API --------------------------------------------------------------------------- */

/**
 * authloop_session_new:
 * @provider: the dialect ("gateway", "kuzzle", "cometchat", "cognito", "oidc")
 * @base_url: (nullable): the server's URL (NULL: the dialect's own, as Cognito's from its region)
 * @error: where a failure goes
 *
 * A session with only these two options (g_initable_new() with the
 * properties for more).
 *
 * Returns: (transfer full) (nullable): the session, or NULL with @error set
 */
AuthloopSession *authloop_session_new(const char *provider, const char *base_url, GError **error) {
  return g_initable_new(AUTHLOOP_TYPE_SESSION, NULL, error, "provider", provider, "base-url",
                        base_url, NULL);
}

/**
 * authloop_session_get_state:
 * @self: a session
 *
 * Returns: the session's state
 */
AuthloopSessionState authloop_session_get_state(AuthloopSession *self) {
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), AUTHLOOP_SESSION_STATE_LOGGED_OUT);
  return self->state;
}

/**
 * authloop_session_get_logged_in:
 * @self: a session
 *
 * Returns: whether a user is logged in
 */
gboolean authloop_session_get_logged_in(AuthloopSession *self) {
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), FALSE);
  return self->logged_in;
}

/**
 * authloop_session_get_user_id:
 * @self: a session
 *
 * Returns: (transfer none) (nullable): the logged-in user's id
 */
const char *authloop_session_get_user_id(AuthloopSession *self) {
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), NULL);
  return self->user_id;
}

/**
 * authloop_session_get_user_name:
 * @self: a session
 *
 * Returns: (transfer none) (nullable): the logged-in user's name, when the server gave one
 */
const char *authloop_session_get_user_name(AuthloopSession *self) {
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), NULL);
  return self->user_name;
}

/**
 * authloop_session_get_expires_in:
 * @self: a session
 *
 * Returns: seconds left on the access token now: 0 without one, -1 never
 */
gint64 authloop_session_get_expires_in(AuthloopSession *self) {
  long long ms;
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), 0);
  if (!self->client || !authloop_is_logged_in(self->client))
    return 0;
  ms = authloop_token_expires_in_ms(self->client);
  return ms < 0 ? -1 : ms / 1000;
}

/**
 * authloop_session_get_login_redirect:
 * @self: a session
 *
 * Returns: (transfer none) (nullable): the URL a waiting browser login wants opened
 */
const char *authloop_session_get_login_redirect(AuthloopSession *self) {
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), NULL);
  return self->redirect;
}

/**
 * authloop_session_dup_access_token:
 * @self: a session
 *
 * For requests of the application's own (wipe it when done).
 *
 * Returns: (transfer full) (nullable): the access token, or NULL when logged out
 */
char *authloop_session_dup_access_token(AuthloopSession *self) {
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), NULL);
  return self->client ? g_strdup(authloop_access_token(self->client)) : NULL;
}

/**
 * authloop_session_touch:
 * @self: a session
 *
 * The user is active: the tokens are kept fresh.
 */
void authloop_session_touch(AuthloopSession *self) {
  g_return_if_fail(AUTHLOOP_IS_SESSION(self));
  if (self->client)
    authloop_touch(self->client);
}

/* A call's start: the session's own failure, or the client's answer to it. */
static int usable(AuthloopSession *self) {
  return self->init_error ? self->init_error->code : self->client ? 0 : AUTHLOOP_ECLOSING;
}

typedef enum { LOGIN_CODE, LOGIN_PASSWORD, LOGIN_KEY, LOGIN_DEVICE, LOGIN_BROWSER } login_kind;

static void login_async(AuthloopSession *self, login_kind kind, const char *a, const char *b,
                        GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data,
                        gpointer tag) {
  op *o = op_new(self, OP_LOGIN, cancellable, callback, user_data, tag);
  int rc = usable(self);
  if (rc == 0 && g_cancellable_is_cancelled(cancellable))
    rc = AUTHLOOP_ECANCELED;
  if (rc == 0 && self->login)
    rc = AUTHLOOP_ELOGININPROGRESS;
  if (rc == 0) {
    switch (kind) {
    case LOGIN_CODE:
      rc = authloop_login_code(self->client, a);
      break;
    case LOGIN_PASSWORD:
      rc = authloop_login_password(self->client, a, b);
      break;
    case LOGIN_KEY:
      rc = authloop_login_key(self->client, a, b);
      break;
    case LOGIN_DEVICE:
      rc = authloop_login_device(self->client);
      break;
    default:
      rc = authloop_login_browser(self->client);
    }
  }
  if (rc) {
    op_fail(o, rc);
    return;
  }
  self->login = o; /* its loginAttempt answers it */
  sync_props(self, FALSE);
}

static gboolean finish(AuthloopSession *self, GAsyncResult *result, gpointer tag, GError **error) {
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), FALSE);
  g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
  g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == tag, FALSE);
  return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * authloop_session_login_code_async:
 * @self: a session
 * @code: the one-time authorization code ("gateway"; "cognito": a refresh token)
 * @cancellable: (nullable): ends the login
 * @callback: (scope async): called when the login has ended
 * @user_data: (closure): for @callback
 */
void authloop_session_login_code_async(AuthloopSession *self, const char *code,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data) {
  g_return_if_fail(AUTHLOOP_IS_SESSION(self));
  g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));
  login_async(self, LOGIN_CODE, code, NULL, cancellable, callback, user_data,
              authloop_session_login_code_async);
}

/**
 * authloop_session_login_code_finish:
 * @self: a session
 * @result: the result given to the callback
 * @error: why the login failed
 *
 * Returns: TRUE when the user is logged in
 */
gboolean authloop_session_login_code_finish(AuthloopSession *self, GAsyncResult *result,
                                            GError **error) {
  return finish(self, result, authloop_session_login_code_async, error);
}

/**
 * authloop_session_login_password_async:
 * @self: a session
 * @username: the user's name
 * @password: the password
 * @cancellable: (nullable): ends the login
 * @callback: (scope async): called when the login has ended
 * @user_data: (closure): for @callback
 */
void authloop_session_login_password_async(AuthloopSession *self, const char *username,
                                           const char *password, GCancellable *cancellable,
                                           GAsyncReadyCallback callback, gpointer user_data) {
  g_return_if_fail(AUTHLOOP_IS_SESSION(self));
  g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));
  login_async(self, LOGIN_PASSWORD, username, password, cancellable, callback, user_data,
              authloop_session_login_password_async);
}

/**
 * authloop_session_login_password_finish:
 * @self: a session
 * @result: the result given to the callback
 * @error: why the login failed
 *
 * Returns: TRUE when the user is logged in
 */
gboolean authloop_session_login_password_finish(AuthloopSession *self, GAsyncResult *result,
                                                GError **error) {
  return finish(self, result, authloop_session_login_password_async, error);
}

/**
 * authloop_session_login_key_async:
 * @self: a session
 * @uid: the CometChat user id
 * @auth_key: the app's auth key
 * @cancellable: (nullable): ends the login
 * @callback: (scope async): called when the login has ended
 * @user_data: (closure): for @callback
 */
void authloop_session_login_key_async(AuthloopSession *self, const char *uid, const char *auth_key,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data) {
  g_return_if_fail(AUTHLOOP_IS_SESSION(self));
  g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));
  login_async(self, LOGIN_KEY, uid, auth_key, cancellable, callback, user_data,
              authloop_session_login_key_async);
}

/**
 * authloop_session_login_key_finish:
 * @self: a session
 * @result: the result given to the callback
 * @error: why the login failed
 *
 * Returns: TRUE when the user is logged in
 */
gboolean authloop_session_login_key_finish(AuthloopSession *self, GAsyncResult *result,
                                           GError **error) {
  return finish(self, result, authloop_session_login_key_async, error);
}

/**
 * authloop_session_login_device_async:
 * @self: a session
 * @cancellable: (nullable): ends the login
 * @callback: (scope async): called when the login has ended
 * @user_data: (closure): for @callback
 *
 * OpenID Connect's device login: #AuthloopSession::login-prompt says what to
 * show the user.
 */
void authloop_session_login_device_async(AuthloopSession *self, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data) {
  g_return_if_fail(AUTHLOOP_IS_SESSION(self));
  g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));
  login_async(self, LOGIN_DEVICE, NULL, NULL, cancellable, callback, user_data,
              authloop_session_login_device_async);
}

/**
 * authloop_session_login_device_finish:
 * @self: a session
 * @result: the result given to the callback
 * @error: why the login failed
 *
 * Returns: TRUE when the user is logged in
 */
gboolean authloop_session_login_device_finish(AuthloopSession *self, GAsyncResult *result,
                                              GError **error) {
  return finish(self, result, authloop_session_login_device_async, error);
}

/**
 * authloop_session_login_browser_async:
 * @self: a session
 * @cancellable: (nullable): ends the login
 * @callback: (scope async): called when the login has ended
 * @user_data: (closure): for @callback
 *
 * OpenID Connect's browser login: once #AuthloopSession:login-redirect is
 * set, open it; hand the URL the browser comes back to to
 * authloop_session_login_callback().
 */
void authloop_session_login_browser_async(AuthloopSession *self, GCancellable *cancellable,
                                          GAsyncReadyCallback callback, gpointer user_data) {
  g_return_if_fail(AUTHLOOP_IS_SESSION(self));
  g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));
  login_async(self, LOGIN_BROWSER, NULL, NULL, cancellable, callback, user_data,
              authloop_session_login_browser_async);
}

/**
 * authloop_session_login_browser_finish:
 * @self: a session
 * @result: the result given to the callback
 * @error: why the login failed
 *
 * Returns: TRUE when the user is logged in
 */
gboolean authloop_session_login_browser_finish(AuthloopSession *self, GAsyncResult *result,
                                               GError **error) {
  return finish(self, result, authloop_session_login_browser_async, error);
}

/**
 * authloop_session_login_callback:
 * @self: a session
 * @redirect_url: the URL the browser came back to
 * @error: why it was refused
 *
 * Returns: TRUE when it belongs to the waiting login (which then goes on);
 *   FALSE with #AUTHLOOP_ERROR_EINVAL when not (the login still waits)
 */
gboolean authloop_session_login_callback(AuthloopSession *self, const char *redirect_url,
                                         GError **error) {
  int rc;
  g_return_val_if_fail(AUTHLOOP_IS_SESSION(self), FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  if ((rc = usable(self)) == 0)
    rc = authloop_login_callback(self->client, redirect_url);
  if (rc) {
    g_propagate_error(error, error_of(rc, NULL));
    return FALSE;
  }
  sync_props(self, FALSE);
  return TRUE;
}

/**
 * authloop_session_logout_async:
 * @self: a session
 * @cancellable: (nullable): answers the call now (the session is cleared anyway)
 * @callback: (scope async): called when the server has answered
 * @user_data: (closure): for @callback
 */
void authloop_session_logout_async(AuthloopSession *self, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data) {
  op *o;
  int rc;
  g_return_if_fail(AUTHLOOP_IS_SESSION(self));
  g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));
  o = op_new(self, OP_LOGOUT, cancellable, callback, user_data, authloop_session_logout_async);
  if ((rc = usable(self)) == 0 && g_cancellable_is_cancelled(cancellable))
    rc = AUTHLOOP_ECANCELED;
  if (rc == 0)
    rc = authloop_logout(self->client);
  if (rc) {
    op_fail(o, rc);
    return;
  }
  g_queue_push_tail(&self->logouts, o); /* its event answers it, in order */
  sync_props(self, TRUE);
}

/**
 * authloop_session_logout_finish:
 * @self: a session
 * @result: the result given to the callback
 * @error: why it failed
 *
 * Returns: TRUE: the session is cleared (the #AuthloopSession::logout
 *   signal says whether the server confirmed)
 */
gboolean authloop_session_logout_finish(AuthloopSession *self, GAsyncResult *result,
                                        GError **error) {
  return finish(self, result, authloop_session_logout_async, error);
}

/**
 * authloop_session_refresh_async:
 * @self: a session
 * @cancellable: (nullable): answers the call now (the refresh may still land)
 * @callback: (scope async): called when the tokens are renewed, or not
 * @user_data: (closure): for @callback
 */
void authloop_session_refresh_async(AuthloopSession *self, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data) {
  op *o;
  int rc;
  g_return_if_fail(AUTHLOOP_IS_SESSION(self));
  g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));
  o = op_new(self, OP_REFRESH, cancellable, callback, user_data, authloop_session_refresh_async);
  if ((rc = usable(self)) == 0 && g_cancellable_is_cancelled(cancellable))
    rc = AUTHLOOP_ECANCELED;
  if (rc == 0)
    rc = authloop_refresh(self->client, on_refreshed, o);
  if (rc) {
    op_fail(o, rc);
    return;
  }
  self->refreshes = g_list_prepend(self->refreshes, o);
}

/**
 * authloop_session_refresh_finish:
 * @self: a session
 * @result: the result given to the callback
 * @error: why it failed
 *
 * Returns: TRUE when the tokens were renewed
 */
gboolean authloop_session_refresh_finish(AuthloopSession *self, GAsyncResult *result,
                                         GError **error) {
  return finish(self, result, authloop_session_refresh_async, error);
}
