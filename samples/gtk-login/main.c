/* SPDX-License-Identifier: MIT */
/* A GNOME login window on authloop: a GtkApplication (org.authloop.LoginSample)
 * with a provider, its server and only the fields that provider uses, Log In
 * and Log Out, who is signed in, a live countdown to the token's expiry, and
 * errors shown as errors. authloop runs inside GTK's main loop through the
 * GLib adapter, so the window keeps painting while a login waits. The session
 * is kept across runs in a file sealed with a key from the desktop's keyring
 * (authloop_glib_session_key_async); without a keyring it is not kept, and the
 * window says so. Moving the pointer or typing in the window counts as
 * activity: the tokens are refreshed while the user is there.
 *
 * With OpenID Connect the user signs in in the system browser (the
 * authorization code flow with PKCE, RFC 8252): the window opens the
 * authorization URL with g_app_info_launch_default_for_uri(); the issuer sends
 * the browser back to org.authloop.loginsample:/callback, a private-use URI
 * scheme the desktop hands to this application (its .desktop file names it),
 * which as a single-instance GApplication passes it on to the window that
 * waits ("open"). A logout opens the issuer's end-session page.
 *
 *   gtk-login [--url URL] [--ca CA_FILE] [--code CODE] [--cometchat-app APP]
 *             [--client-id ID] [REDIRECT_URL]
 *   gtk-login --self-test=MODE --url URL --ca CA [--code CODE] [--screenshot FILE.png]
 *
 * The self-test drives the window as a user would and prints what it shows
 * ("user: ", "status: ", "error: ", "countdown: ", "fields ...: ", ...):
 *   login    lists each provider's fields, logs in with CODE, saves a
 *            screenshot once the user is on screen, and closes the window
 *            (the session stays kept);
 *   restore  expects the kept session at start, refreshes the tokens, then
 *            logs out;
 *   error    logs in with CODE (a wrong one) and reports the error's style
 *            and whether the window grew;
 *   browser  logs in with OpenID Connect (client ID), in the browser the
 *            desktop launches for https, then logs out. */
#include <authloop-glib.h>
#include <authloop.h>
#include <gtk/gtk.h>
#include <stdio.h>
#include <string.h>

#define APP_ID "org.authloop.LoginSample"
/* registered with the issuer; the scheme is the application's own
 * (reverse domain, RFC 8252 section 7.1) */
#define REDIRECT_SCHEME "org.authloop.loginsample"
#define REDIRECT_URI    REDIRECT_SCHEME ":/callback"

#if !GLIB_CHECK_VERSION(2, 74, 0)
#define G_APPLICATION_DEFAULT_FLAGS G_APPLICATION_FLAGS_NONE
#endif
#if !GLIB_CHECK_VERSION(2, 72, 0)
#define g_get_user_state_dir g_get_user_data_dir
#endif

enum { PROVIDER_GATEWAY, PROVIDER_KUZZLE, PROVIDER_COMETCHAT, PROVIDER_OIDC, PROVIDER_COUNT };
static const char *const providers[] = {"gateway", "kuzzle", "cometchat", "oidc", NULL};
static const char *const provider_titles[] = {"Chat gateway", "Kuzzle", "CometChat",
                                              "OpenID Connect (browser)", NULL};

typedef enum { TEST_NONE, TEST_LOGIN, TEST_RESTORE, TEST_ERROR, TEST_BROWSER } self_test;

typedef struct {
  GtkApplication *gtk;
  uv_loop_t loop;
  authloop_ctx *ctx;
  authloop_client *client;
  guint client_provider;        /* what the client was made for */
  char *client_url, *client_id; /* what the client was made for */
  GSource *source;
  const char *ca, *cometchat_app, *screenshot, *code, *url, *oidc_client;
  char *state_dir;
  unsigned char key[AUTHLOOP_GLIB_SESSION_KEY_BYTES];
  gboolean have_key, key_pending, logging_out, closing, browser_opened;
  self_test test;
  int exit_code;
  guint tick_id;
  GtkWidget *window, *provider, *url_entry, *user_label, *user_entry, *secret_label, *secret_entry,
      *code_label, *code_entry, *url_label, *client_id_label, *client_id_entry, *login, *logout,
      *spinner, *who, *status, *error, *keyring, *countdown;
  /* self-test bookkeeping */
  unsigned frames, frames_at_login;
  int shoot_on_next_paint, measure_on_next_paint, click_on_next_paint, width_before;
} app;

/* One line of what the window shows, for the self-test. Text from the
 * server (a user id, a message) may hold a newline or a terminal escape:
 * control bytes are printed as \xNN, so no line can be forged. */
static void say(const char *what, const char *text) {
  const unsigned char *p;
  printf("%s: ", what);
  for (p = (const unsigned char *)text; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      printf("\\x%02x", *p);
    else
      putchar(*p);
  putchar('\n');
  fflush(stdout);
}

static void set_status(app *a, const char *text) {
  gtk_label_set_text(GTK_LABEL(a->status), text);
  say("status", text);
}

/* An error, shown as one (the "error" style class) and wrapped in the
 * window's width; NULL hides it. */
static void set_error(app *a, const char *text) {
  gtk_label_set_text(GTK_LABEL(a->error), text ? text : "");
  gtk_widget_set_tooltip_text(a->error, text);
  gtk_widget_set_visible(a->error, text != NULL);
  if (text)
    say("error", text);
}

/* Who is signed in, from the client itself, after every event: a refresh or
 * a restored session shows the user as well as a login does. */
static void show_user(app *a) {
  const authloop_user *u =
      a->client && authloop_is_logged_in(a->client) ? authloop_current_user(a->client) : NULL;
  const char *id = u ? authloop_user_id(u) : NULL, *name = u ? authloop_user_name(u) : NULL;
  char *text;
  if (!id)
    text = g_strdup("Not signed in");
  else if (name && *name && strcmp(name, id) != 0)
    text = g_strdup_printf("Signed in as %s (%s)", name, id);
  else
    text = g_strdup_printf("Signed in as %s", id);
  if (strcmp(gtk_label_get_text(GTK_LABEL(a->who)), text) != 0) {
    gtk_label_set_text(GTK_LABEL(a->who), text);
    say("user", id ? id : "(none)");
  }
  g_free(text);
}

static gboolean tick(gpointer ud);

/* What can be pressed and edited, from the client's state. */
static void update(app *a) {
  int in = a->client && authloop_is_logged_in(a->client);
  authloop_state st = a->client ? authloop_client_state(a->client) : AUTHLOOP_STATE_LOGGED_OUT;
  int waiting = st == AUTHLOOP_STATE_AWAITING_TOKEN; /* for the browser: it can be cancelled */
  int busy = a->key_pending || a->logging_out || st == AUTHLOOP_STATE_LOGGING_IN || waiting;
  gtk_spinner_set_spinning(GTK_SPINNER(a->spinner), busy);
  gtk_widget_set_sensitive(a->login, !busy && !in);
  gtk_button_set_label(GTK_BUTTON(a->logout), waiting ? "_Cancel" : "Log _Out");
  gtk_widget_set_sensitive(a->logout, (!busy && in) || waiting);
  gtk_widget_set_sensitive(a->provider, !busy && !in);
  gtk_widget_set_sensitive(a->url_entry, !busy && !in);
  gtk_widget_set_sensitive(a->user_entry, !busy && !in);
  gtk_widget_set_sensitive(a->secret_entry, !busy && !in);
  gtk_widget_set_sensitive(a->code_entry, !busy && !in);
  gtk_widget_set_sensitive(a->client_id_entry, !busy && !in);
  show_user(a);
  /* the countdown ticks once a second while there is a token, never else */
  if (in && !a->tick_id)
    a->tick_id = g_timeout_add_seconds(1, tick, a);
  else if (!in && a->tick_id) {
    g_source_remove(a->tick_id);
    a->tick_id = 0;
  }
  tick(a);
}

static gboolean tick(gpointer ud) {
  app *a = ud;
  long long ms =
      a->client && authloop_is_logged_in(a->client) ? authloop_token_expires_in_ms(a->client) : 0;
  char text[80];
  if (!a->client || !authloop_is_logged_in(a->client))
    snprintf(text, sizeof(text), "No token");
  else if (ms < 0)
    snprintf(text, sizeof(text), "The token never expires");
  else {
    long long s = ms / 1000;
    snprintf(text, sizeof(text), "Token expires in %lld:%02lld:%02lld", s / 3600, s / 60 % 60,
             s % 60);
  }
  gtk_label_set_text(GTK_LABEL(a->countdown), text);
  return G_SOURCE_CONTINUE;
}

/* ---- closing ------------------------------------------------------------------------- */

static void on_closed(authloop_ctx *ctx, void *ud) {
  app *a = ud;
  (void)ctx;
  a->ctx = NULL;
  a->client = NULL;
  if (a->tick_id)
    g_source_remove(a->tick_id);
  a->tick_id = 0;
  gtk_window_destroy(GTK_WINDOW(a->window)); /* the last window: the application ends */
}

static void finish(app *a, int code) {
  a->exit_code = code;
  if (a->ctx && !a->closing) {
    a->closing = TRUE;
    authloop_ctx_close(a->ctx, on_closed, a);
  }
}

static gboolean on_close_request(GtkWindow *w, gpointer ud) {
  app *a = ud;
  (void)w;
  finish(a, a->exit_code);
  return a->ctx != NULL; /* the window goes when the ctx has closed */
}

/* ---- the client ---------------------------------------------------------------------- */

static void on_event(authloop_client *c, const authloop_event *ev, void *ud);

static char *session_path(app *a, guint provider) {
  char name[64];
  if (!a->have_key)
    return NULL; /* no keyring: nothing is kept on disk */
  snprintf(name, sizeof(name), "session-%s", providers[provider]);
  return g_build_filename(a->state_dir, name, NULL);
}

/* A client for the provider and URL shown, made again when they changed
 * (only while signed out: the fields are locked while signed in). With a
 * key, it reads the session kept for that provider. */
static int make_client(app *a) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  guint provider = gtk_drop_down_get_selected(GTK_DROP_DOWN(a->provider));
  const char *url = gtk_editable_get_text(GTK_EDITABLE(a->url_entry));
  const char *client_id = gtk_editable_get_text(GTK_EDITABLE(a->client_id_entry));
  char *client_url = NULL, *admin_url = NULL, *path;
  int t, rc;
  if (a->client && provider == a->client_provider && a->client_url &&
      strcmp(url, a->client_url) == 0 &&
      (provider != PROVIDER_OIDC || strcmp(client_id, a->client_id) == 0))
    return 0;
  if (a->client)
    authloop_client_free(a->client);
  a->client = NULL;
  o.provider = providers[provider];
  o.base_url = url;
  if (provider == PROVIDER_COMETCHAT && *url) {
    /* the reference server serves CometChat's two hosts as path prefixes */
    o.base_url = client_url = g_strconcat(url, "/cometchat/client/v3.0", NULL);
    o.admin_url = admin_url = g_strconcat(url, "/cometchat/admin/v3.0", NULL);
    o.app_id = a->cometchat_app;
  }
  if (provider == PROVIDER_OIDC) { /* the server is the issuer */
    o.client_id = client_id;
    o.redirect_uri = REDIRECT_URI;
    o.scope = "openid offline_access profile email";
  }
  path = session_path(a, provider);
  o.session_path = path;
  o.session_key = a->have_key ? a->key : NULL;
  rc = authloop_client_new(a->ctx, &o, &a->client);
  g_free(client_url);
  g_free(admin_url);
  g_free(path);
  if (rc != 0)
    return rc;
  a->client_provider = provider;
  g_free(a->client_url);
  a->client_url = g_strdup(url);
  g_free(a->client_id);
  a->client_id = g_strdup(client_id);
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(a->client, (authloop_event_type)t, on_event, a);
  return 0;
}

/* ---- self-test steps ------------------------------------------------------------------- */

static void save_screenshot(app *a) {
  int w = gtk_widget_get_width(a->window), h = gtk_widget_get_height(a->window);
  GdkPaintable *p = gtk_widget_paintable_new(a->window);
  GtkSnapshot *snap = gtk_snapshot_new();
  GskRenderNode *node;
  GdkTexture *tex;
  gdk_paintable_snapshot(p, snap, w, h);
  node = gtk_snapshot_free_to_node(snap);
  tex = gsk_renderer_render_texture(gtk_native_get_renderer(GTK_NATIVE(a->window)), node,
                                    &GRAPHENE_RECT_INIT(0, 0, (float)w, (float)h));
  say("screenshot", gdk_texture_save_to_png(tex, a->screenshot) ? "saved" : "FAILED");
  g_object_unref(tex);
  gsk_render_node_unref(node);
  g_object_unref(p);
}

static void on_refreshed(authloop_client *c, int status, void *ud) {
  app *a = ud;
  (void)c;
  if (status != 0) {
    set_error(a, authloop_strerror(status));
    finish(a, 1);
    return;
  }
  show_user(a); /* still who it was */
  g_signal_emit_by_name(a->logout, "clicked");
}

static void on_paint(GdkFrameClock *clock, gpointer ud) {
  app *a = ud;
  (void)clock;
  a->frames++;
  if (a->click_on_next_paint && gtk_widget_get_width(a->window) > 0) {
    /* the self-test's click, once the window is laid out: the width it
     * had before the login is its width on screen, not the 0 of a window
     * not yet allocated (the keyring's answer can come before that) */
    a->click_on_next_paint = 0;
    a->width_before = gtk_widget_get_width(a->window);
    g_signal_emit_by_name(a->login, "clicked");
  }
  if (a->shoot_on_next_paint) {
    /* the signed-in user and the countdown are on screen now */
    a->shoot_on_next_paint = 0;
    say("countdown", gtk_label_get_text(GTK_LABEL(a->countdown)));
    if (a->screenshot)
      save_screenshot(a);
    gtk_window_close(GTK_WINDOW(a->window)); /* as the user would: the session stays */
  }
  if (a->measure_on_next_paint) {
    char line[160];
    a->measure_on_next_paint = 0;
    snprintf(line, sizeof(line), "%s%s, window width %d before, %d after, height %d",
             gtk_widget_has_css_class(a->error, "error") ? "styled as an error" : "plain",
             gtk_label_get_wrap(GTK_LABEL(a->error)) ? ", wrapped" : "", a->width_before,
             gtk_widget_get_width(a->window), gtk_widget_get_height(a->window));
    say("error shown", line);
    if (a->screenshot)
      save_screenshot(a);
    finish(a, 0);
  }
}

static void on_realize(GtkWidget *w, gpointer ud) {
  g_signal_connect(gtk_widget_get_frame_clock(w), "after-paint", G_CALLBACK(on_paint), ud);
}

/* ---- the browser ------------------------------------------------------------------------- */

typedef struct {
  app *a;
  int sign_in; /* the sign-in page (else the issuer's sign-out page) */
} launch;

static void on_launched(GObject *source, GAsyncResult *res, gpointer ud) {
  launch *l = ud;
  app *a = l->a;
  GError *e = NULL;
  (void)source;
  if (!g_app_info_launch_default_for_uri_finish(res, &e)) {
    char *text = g_strdup_printf("Cannot open the browser: %s", e->message);
    g_error_free(e);
    set_error(a, text);
    g_free(text);
    /* a sign-in nobody can finish ends here; a sign-out is done locally */
    if (l->sign_in && a->client &&
        authloop_client_state(a->client) == AUTHLOOP_STATE_AWAITING_TOKEN)
      authloop_login_cancel(a->client);
    if (a->test == TEST_BROWSER)
      finish(a, 1);
  } else {
    say("browser", l->sign_in ? "sign-in page opened" : "sign-out page opened");
    if (!l->sign_in && a->test == TEST_BROWSER)
      finish(a, 0);
  }
  g_free(l);
}

/* The system browser (the desktop's default for https), without blocking
 * the window; the launch names the display it starts on. */
static void open_in_browser(app *a, const char *url, int sign_in) {
  GdkAppLaunchContext *lc = gdk_display_get_app_launch_context(gtk_widget_get_display(a->window));
  launch *l = g_new0(launch, 1);
  l->a = a;
  l->sign_in = sign_in;
  g_app_info_launch_default_for_uri_async(url, G_APP_LAUNCH_CONTEXT(lc), NULL, on_launched, l);
  g_object_unref(lc);
}

/* The browser came back: the desktop handed this application the redirect
 * URL (a second start of it passed the URL on to this one). authloop checks
 * that it belongs to the sign-in that waits; a stray or forged one changes
 * nothing. */
static void take_redirect(app *a, const char *url) {
  char *text;
  int rc;
  if (!a->client || a->client_provider != PROVIDER_OIDC ||
      authloop_client_state(a->client) != AUTHLOOP_STATE_AWAITING_TOKEN) {
    set_error(a, "The browser finished a sign-in that this window is not waiting for; nothing "
                 "was done.");
    return;
  }
  if ((rc = authloop_login_callback(a->client, url)) != 0) {
    text = g_strdup_printf("The browser came back with an answer that is not for this sign-in "
                           "(%s); still waiting for the right one.",
                           authloop_err_name(rc));
    set_error(a, text);
    g_free(text);
    return;
  }
  set_error(a, NULL);
  set_status(a, "Signing in…");
  update(a);
}

/* ---- events and buttons ------------------------------------------------------------------ */

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  app *a = ud;
  char *text;
  if (ev->type == AUTHLOOP_EV_LOGOUT)
    a->logging_out = FALSE;
  update(a);
  switch (ev->type) {
  case AUTHLOOP_EV_STATE_CHANGED:
    /* a browser sign-in: its page is known now */
    if (ev->new_state == AUTHLOOP_STATE_AWAITING_TOKEN && a->client_provider == PROVIDER_OIDC &&
        authloop_login_redirect(c)) {
      set_status(a, "Continue in your browser…");
      open_in_browser(a, authloop_login_redirect(c), 1);
    }
    break;
  case AUTHLOOP_EV_LOGIN_ATTEMPT:
    if (!ev->success && ev->error == AUTHLOOP_ECANCELED) {
      set_status(a, "Sign-in cancelled");
      if (a->test != TEST_NONE)
        finish(a, 1);
      break;
    }
    if (!ev->success) {
      set_status(a, "Login failed");
      text = g_strdup_printf("%s (%s). Check the server, the provider and what you typed, "
                             "then try again.",
                             ev->message ? ev->message : authloop_strerror(ev->error),
                             authloop_err_name(ev->error));
      set_error(a, text);
      g_free(text);
      if (a->test == TEST_ERROR) {
        a->measure_on_next_paint = 1;
        gtk_widget_queue_draw(a->window);
      } else if (a->test != TEST_NONE)
        finish(a, 1);
      break;
    }
    set_status(a, "Logged in");
    /* a spent code and a password do not stay on screen */
    gtk_editable_set_text(GTK_EDITABLE(a->code_entry), "");
    gtk_editable_set_text(GTK_EDITABLE(a->secret_entry), "");
    if (a->test == TEST_LOGIN) {
      printf("frames painted while the login was in flight: %u\n", a->frames - a->frames_at_login);
      a->shoot_on_next_paint = 1;
      gtk_widget_queue_draw(a->window);
    } else if (a->test == TEST_ERROR)
      finish(a, 1);
    else if (a->test == TEST_BROWSER)
      g_signal_emit_by_name(a->logout, "clicked");
    break;
  case AUTHLOOP_EV_LOGOUT:
    set_status(a, ev->error ? "Logged out (the server did not confirm)" : "Logged out");
    /* the user's session at the issuer ends too: its page, in the browser */
    if (authloop_end_session_url(c))
      open_in_browser(a, authloop_end_session_url(c), 0);
    else if (a->test == TEST_BROWSER)
      finish(a, 1);
    if (a->test == TEST_RESTORE)
      finish(a, 0);
    break;
  case AUTHLOOP_EV_TOKEN_REFRESHED:
    set_status(a, "Tokens refreshed");
    break;
  case AUTHLOOP_EV_SESSION_EXPIRED:
    set_status(a, "Session ended");
    set_error(a, ev->message ? ev->message : authloop_strerror(ev->error));
    break;
  default:
    break;
  }
}

static void on_login(GtkButton *b, gpointer ud) {
  app *a = ud;
  const char *user = gtk_editable_get_text(GTK_EDITABLE(a->user_entry));
  const char *secret = gtk_editable_get_text(GTK_EDITABLE(a->secret_entry));
  const char *code = gtk_editable_get_text(GTK_EDITABLE(a->code_entry));
  char *text;
  int rc;
  (void)b;
  set_error(a, NULL);
  if ((rc = make_client(a)) == 0) {
    switch (a->client_provider) {
    case PROVIDER_GATEWAY:
      rc = authloop_login_code(a->client, code);
      break;
    case PROVIDER_KUZZLE:
      rc = authloop_login_local(a->client, user, secret, NULL);
      break;
    case PROVIDER_OIDC:
      rc = authloop_login_browser(a->client);
      break;
    default:
      rc = authloop_login_key(a->client, user, secret);
    }
  }
  if (rc) {
    set_status(a, "Cannot log in");
    text = g_strdup_printf("%s (%s)", authloop_strerror(rc), authloop_err_name(rc));
    set_error(a, text);
    g_free(text);
    return;
  }
  a->frames_at_login = a->frames;
  set_status(a, "Logging in…");
  update(a);
}

static void on_logout(GtkButton *b, gpointer ud) {
  app *a = ud;
  int rc;
  (void)b;
  set_error(a, NULL);
  if (a->client && authloop_client_state(a->client) == AUTHLOOP_STATE_AWAITING_TOKEN) {
    authloop_login_cancel(a->client); /* the browser sign-in: its loginAttempt says so */
    return;
  }
  if ((rc = authloop_logout(a->client)) != 0)
    set_error(a, authloop_strerror(rc));
  else
    a->logging_out = TRUE; /* until its logout event */
  update(a);
}

/* The user is there: the tokens are kept fresh (see the token policy). */
static void on_activity(app *a) {
  if (a->client && authloop_is_logged_in(a->client))
    authloop_touch(a->client);
}
static void on_motion(GtkEventControllerMotion *m, double x, double y, gpointer ud) {
  (void)m, (void)x, (void)y;
  on_activity(ud);
}
static gboolean on_key(GtkEventControllerKey *k, guint val, guint code, GdkModifierType st,
                       gpointer ud) {
  (void)k, (void)val, (void)code, (void)st;
  on_activity(ud);
  return FALSE;
}

/* Only the fields the chosen provider uses. */
static void show_fields(app *a) {
  guint p = gtk_drop_down_get_selected(GTK_DROP_DOWN(a->provider));
  gboolean code = p == PROVIDER_GATEWAY, oidc = p == PROVIDER_OIDC, user = !code && !oidc;
  gtk_widget_set_visible(a->code_label, code);
  gtk_widget_set_visible(a->code_entry, code);
  gtk_widget_set_visible(a->user_label, user);
  gtk_widget_set_visible(a->user_entry, user);
  gtk_widget_set_visible(a->secret_label, user);
  gtk_widget_set_visible(a->secret_entry, user);
  gtk_widget_set_visible(a->client_id_label, oidc);
  gtk_widget_set_visible(a->client_id_entry, oidc);
  gtk_label_set_text(GTK_LABEL(a->url_label), oidc ? "Issuer" : "Server");
  gtk_label_set_text(GTK_LABEL(a->user_label), p == PROVIDER_KUZZLE ? "Username" : "User ID");
  gtk_label_set_text(GTK_LABEL(a->secret_label), p == PROVIDER_KUZZLE ? "Password" : "Auth key");
}

static void on_provider(GObject *o, GParamSpec *ps, gpointer ud) {
  (void)o, (void)ps;
  show_fields(ud);
}

/* ---- the window ------------------------------------------------------------------------- */

static GtkWidget *row_label(GtkWidget *grid, int row, const char *text) {
  GtkWidget *l = gtk_label_new(text);
  gtk_widget_set_halign(l, GTK_ALIGN_END);
  gtk_grid_attach(GTK_GRID(grid), l, 0, row, 1, 1);
  return l;
}

static void row_field(GtkWidget *grid, int row, GtkWidget *field) {
  gtk_widget_set_hexpand(field, TRUE);
  gtk_grid_attach(GTK_GRID(grid), field, 1, row, 2, 1);
}

/* Long text wraps to the window's width, and a server's message of any
 * length stops at four lines (the rest ellipsized; all of it in the
 * tooltip): the window keeps its size. */
static GtkWidget *text_line(void) {
  GtkWidget *l = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(l), 0);
  gtk_label_set_wrap(GTK_LABEL(l), TRUE);
  gtk_label_set_wrap_mode(GTK_LABEL(l), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_max_width_chars(GTK_LABEL(l), 40);
  gtk_label_set_lines(GTK_LABEL(l), 4);
  gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
  return l;
}

static void build_window(app *a) {
  GtkWidget *grid = gtk_grid_new(), *header = gtk_header_bar_new(), *buttons;
  GtkEventController *motion = gtk_event_controller_motion_new(),
                     *keys = gtk_event_controller_key_new();
  a->window = gtk_application_window_new(a->gtk);
  gtk_window_set_title(GTK_WINDOW(a->window), "Sign in");
  gtk_window_set_titlebar(GTK_WINDOW(a->window), header);
  gtk_window_set_default_size(GTK_WINDOW(a->window), 480, -1);
  gtk_grid_set_row_spacing(GTK_GRID(grid), 10);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
  gtk_widget_set_margin_start(grid, 18);
  gtk_widget_set_margin_end(grid, 18);
  gtk_widget_set_margin_top(grid, 18);
  gtk_widget_set_margin_bottom(grid, 18);

  a->who = gtk_label_new("Not signed in");
  gtk_widget_add_css_class(a->who, "title-4");
  gtk_label_set_xalign(GTK_LABEL(a->who), 0);
  gtk_label_set_ellipsize(GTK_LABEL(a->who), PANGO_ELLIPSIZE_END);
  gtk_grid_attach(GTK_GRID(grid), a->who, 0, 0, 3, 1);

  a->provider = gtk_drop_down_new_from_strings(provider_titles);
  row_label(grid, 1, "Provider");
  row_field(grid, 1, a->provider);
  a->url_entry = gtk_entry_new();
  gtk_editable_set_text(GTK_EDITABLE(a->url_entry), a->url);
  gtk_entry_set_input_purpose(GTK_ENTRY(a->url_entry), GTK_INPUT_PURPOSE_URL);
  a->url_label = row_label(grid, 2, "Server");
  row_field(grid, 2, a->url_entry);
  a->code_label = row_label(grid, 3, "One-time code");
  a->code_entry = gtk_entry_new();
  row_field(grid, 3, a->code_entry);
  a->user_label = row_label(grid, 4, "Username");
  a->user_entry = gtk_entry_new();
  row_field(grid, 4, a->user_entry);
  a->secret_label = row_label(grid, 5, "Password");
  a->secret_entry = gtk_password_entry_new();
  gtk_password_entry_set_show_peek_icon(GTK_PASSWORD_ENTRY(a->secret_entry), TRUE);
  row_field(grid, 5, a->secret_entry);
  a->client_id_label = row_label(grid, 6, "Client ID");
  a->client_id_entry = gtk_entry_new();
  if (a->oidc_client)
    gtk_editable_set_text(GTK_EDITABLE(a->client_id_entry), a->oidc_client);
  row_field(grid, 6, a->client_id_entry);
  if (a->code)
    gtk_editable_set_text(GTK_EDITABLE(a->code_entry), a->code);

  a->error = text_line();
  gtk_widget_add_css_class(a->error, "error");
  gtk_widget_set_visible(a->error, FALSE);
  gtk_grid_attach(GTK_GRID(grid), a->error, 0, 7, 3, 1);
  a->keyring = text_line();
  gtk_widget_add_css_class(a->keyring, "dim-label");
  gtk_widget_set_visible(a->keyring, FALSE);
  gtk_grid_attach(GTK_GRID(grid), a->keyring, 0, 8, 3, 1);

  a->spinner = gtk_spinner_new();
  a->status = gtk_label_new("Opening the keyring…");
  gtk_label_set_xalign(GTK_LABEL(a->status), 0);
  gtk_label_set_ellipsize(GTK_LABEL(a->status), PANGO_ELLIPSIZE_END);
  gtk_grid_attach(GTK_GRID(grid), a->spinner, 0, 9, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), a->status, 1, 9, 2, 1);
  a->countdown = gtk_label_new("No token");
  gtk_widget_add_css_class(a->countdown, "numeric");
  gtk_widget_add_css_class(a->countdown, "dim-label");
  gtk_label_set_xalign(GTK_LABEL(a->countdown), 0);
  gtk_grid_attach(GTK_GRID(grid), a->countdown, 1, 10, 2, 1);

  buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
  gtk_widget_set_halign(buttons, GTK_ALIGN_END);
  a->logout = gtk_button_new_with_mnemonic("Log _Out");
  a->login = gtk_button_new_with_mnemonic("_Log In");
  gtk_widget_add_css_class(a->login, "suggested-action");
  gtk_box_append(GTK_BOX(buttons), a->logout);
  gtk_box_append(GTK_BOX(buttons), a->login);
  gtk_grid_attach(GTK_GRID(grid), buttons, 0, 11, 3, 1);
  gtk_window_set_default_widget(GTK_WINDOW(a->window), a->login);

  gtk_window_set_child(GTK_WINDOW(a->window), grid);
  show_fields(a);
  g_signal_connect(a->provider, "notify::selected", G_CALLBACK(on_provider), a);
  g_signal_connect(a->login, "clicked", G_CALLBACK(on_login), a);
  g_signal_connect(a->logout, "clicked", G_CALLBACK(on_logout), a);
  g_signal_connect(a->window, "close-request", G_CALLBACK(on_close_request), a);
  g_signal_connect(a->window, "realize", G_CALLBACK(on_realize), a);
  g_signal_connect(motion, "motion", G_CALLBACK(on_motion), a);
  g_signal_connect(keys, "key-pressed", G_CALLBACK(on_key), a);
  gtk_widget_add_controller(a->window, motion);
  gtk_widget_add_controller(a->window, keys);
}

/* The fields each provider shows, as the self-test reports them. */
static void print_fields(app *a) {
  GtkWidget *labels[] = {a->code_label, a->user_label, a->secret_label, a->client_id_label};
  guint p, i;
  for (p = 0; p < PROVIDER_COUNT; p++) {
    GString *line = g_string_new(NULL);
    gtk_drop_down_set_selected(GTK_DROP_DOWN(a->provider), p);
    for (i = 0; i < G_N_ELEMENTS(labels); i++)
      if (gtk_widget_get_visible(labels[i]))
        g_string_append_printf(line, "%s%s", line->len ? "," : "",
                               gtk_label_get_text(GTK_LABEL(labels[i])));
    printf("fields %s: %s\n", providers[p], line->str);
    g_string_free(line, TRUE);
  }
  gtk_drop_down_set_selected(GTK_DROP_DOWN(a->provider), PROVIDER_GATEWAY);
}

/* The key is there (or not): make the client, which reads a kept session. */
static void on_session_key(GObject *source, GAsyncResult *res, gpointer ud) {
  app *a = ud;
  GError *e = NULL;
  guint p;
  int rc;
  (void)source;
  a->key_pending = FALSE;
  if (!a->ctx)
    return; /* closed meanwhile */
  a->have_key = authloop_glib_session_key_finish(res, a->key, &e);
  if (!a->have_key) {
    char *text = g_strdup_printf("Your session will not be kept after you quit: %s", e->message);
    gtk_label_set_text(GTK_LABEL(a->keyring), text);
    gtk_widget_set_visible(a->keyring, TRUE);
    say("keyring", e->message);
    g_free(text);
    g_error_free(e);
  } else {
    say("keyring", "key ready");
  }
  /* a session kept for any provider: the window opens on it */
  for (p = 0; p < PROVIDER_COUNT && a->have_key; p++) {
    gtk_drop_down_set_selected(GTK_DROP_DOWN(a->provider), p);
    if (make_client(a) == 0 && authloop_is_logged_in(a->client))
      break;
  }
  if (p == PROVIDER_COUNT || !a->have_key)
    gtk_drop_down_set_selected(GTK_DROP_DOWN(a->provider), PROVIDER_GATEWAY);
  if ((rc = make_client(a)) != 0) {
    set_error(a, authloop_strerror(rc));
  }
  set_status(a, a->client && authloop_is_logged_in(a->client) ? "Welcome back" : "Signed out");
  update(a);
  switch (a->test) {
  case TEST_LOGIN:
  case TEST_ERROR:
    a->click_on_next_paint = 1; /* at the next paint (on_paint) */
    gtk_widget_queue_draw(a->window);
    break;
  case TEST_RESTORE:
    if (!a->client || !authloop_is_logged_in(a->client) ||
        authloop_refresh(a->client, on_refreshed, a) != 0)
      finish(a, 1);
    break;
  case TEST_BROWSER:
    gtk_drop_down_set_selected(GTK_DROP_DOWN(a->provider), PROVIDER_OIDC);
    g_signal_emit_by_name(a->login, "clicked");
    break;
  default:
    break;
  }
}

static void on_activate(GApplication *g, gpointer ud) {
  app *a = ud;
  (void)g;
  if (a->window) { /* launched again: the window there is the one */
    gtk_window_present(GTK_WINDOW(a->window));
    return;
  }
  build_window(a);
  gtk_window_present(GTK_WINDOW(a->window));
  if (a->test == TEST_LOGIN)
    print_fields(a);
  a->key_pending = TRUE;
  update(a);
  authloop_glib_session_key_async(APP_ID, NULL, on_session_key, a);
}

/* Started with URLs (the desktop's handler for the redirect scheme): the
 * redirect of a browser sign-in. A second start passes them on to this one. */
static void on_open(GApplication *g, GFile **files, gint n, const gchar *hint, gpointer ud) {
  app *a = ud;
  gint i;
  (void)hint;
  on_activate(g, a); /* the window, to the front (or made: nothing waits then) */
  for (i = 0; i < n; i++) {
    char *url = g_file_get_uri(files[i]);
    if (g_str_has_prefix(url, REDIRECT_SCHEME ":"))
      take_redirect(a, url);
    else
      set_error(a, "Started with an address that is not a sign-in's answer; nothing was done.");
    g_free(url);
  }
}

static int usage(const char *why, const char *arg) {
  fprintf(stderr, "gtk-login: %s%s\n", why, arg ? arg : "");
  return 2;
}

int main(int argc, char **argv) {
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  app a = {0};
  g_autoptr(GPtrArray) args = g_ptr_array_new();
  int i, rc;
  a.url = "https://127.0.0.1:8443";
  a.cometchat_app = "app1";
  g_ptr_array_add(args, argv[0]);
  for (i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strncmp(argv[i], "--self-test=", 12) == 0) {
      const char *m = argv[i] + 12;
      a.test = strcmp(m, "login") == 0     ? TEST_LOGIN
               : strcmp(m, "restore") == 0 ? TEST_RESTORE
               : strcmp(m, "error") == 0   ? TEST_ERROR
               : strcmp(m, "browser") == 0 ? TEST_BROWSER
                                           : TEST_NONE;
      if (a.test == TEST_NONE)
        return usage("no such self-test: ", m);
      continue;
    }
    if (strncmp(argv[i], REDIRECT_SCHEME ":", strlen(REDIRECT_SCHEME) + 1) == 0) {
      g_ptr_array_add(args, argv[i]); /* for GApplication's "open" */
      continue;
    }
    if (!v)
      return usage("needs a value: ", argv[i]);
    if (strcmp(argv[i], "--url") == 0)
      a.url = v;
    else if (strcmp(argv[i], "--ca") == 0)
      a.ca = v;
    else if (strcmp(argv[i], "--code") == 0)
      a.code = v;
    else if (strcmp(argv[i], "--cometchat-app") == 0)
      a.cometchat_app = v;
    else if (strcmp(argv[i], "--screenshot") == 0)
      a.screenshot = v;
    else if (strcmp(argv[i], "--client-id") == 0)
      a.oidc_client = v;
    else
      return usage("unknown option ", argv[i]);
    i++;
  }
  a.state_dir = g_build_filename(g_get_user_state_dir(), "authloop-login", NULL);
  if (g_mkdir_with_parents(a.state_dir, 0700) != 0)
    return usage("cannot make ", a.state_dir);
  uv_loop_init(&a.loop);
  co.ca_file = a.ca;
  if (authloop_ctx_new(&a.loop, &co, &a.ctx) != 0)
    return 1;
  a.source = authloop_glib_attach(a.ctx, NULL);
  a.gtk = gtk_application_new(APP_ID, G_APPLICATION_HANDLES_OPEN);
  g_signal_connect(a.gtk, "activate", G_CALLBACK(on_activate), &a);
  g_signal_connect(a.gtk, "open", G_CALLBACK(on_open), &a);
  /* our options are ours: GApplication sees the program's name and the
   * redirect URLs only */
  g_ptr_array_add(args, NULL);
  rc = g_application_run(G_APPLICATION(a.gtk), (int)args->len - 1, (char **)args->pdata);
  if (rc != 0 && a.exit_code == 0)
    a.exit_code = 1;
  if (a.ctx) { /* ended without the window's close (a second instance, a signal) */
    authloop_ctx_close(a.ctx, NULL, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
  }
  g_object_unref(a.gtk);
  g_source_destroy(a.source);
  g_source_unref(a.source);
  memset(a.key, 0, sizeof(a.key));
  g_free(a.client_url);
  g_free(a.client_id);
  g_free(a.state_dir);
  printf("loop closed: %s\n", uv_loop_close(&a.loop) == 0 ? "clean" : "NOT clean");
  return a.exit_code;
}
