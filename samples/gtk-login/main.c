/* SPDX-License-Identifier: MIT */
/* A GTK 4 login window on authloop: provider, server URL, user and secret,
 * Login and Logout, a status line and a live countdown to token expiry, all
 * updated from authloop events. authloop runs inside GTK's main loop through
 * the GLib adapter, so the window keeps painting while a login waits.
 *
 *   gtk-login [--url URL] [--ca CA_FILE] [--app-id APP]
 *   gtk-login --self-test --url URL --ca CA --code CODE [--screenshot FILE.png]
 *
 * --self-test fills the form (gateway, CODE), clicks Login, prints every
 * status line as it changes and how many frames were painted while the
 * login was in flight, saves a screenshot once logged in, clicks Logout, and
 * exits 0 when all of that happened. */
#include <authloop-glib.h>
#include <authloop.h>
#include <gtk/gtk.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  GMainLoop *main;
  uv_loop_t loop;
  authloop_ctx *ctx;
  authloop_client *client;
  GSource *source;
  const char *ca, *app_id, *screenshot;
  int self_test, exit_code;
  /* widgets */
  GtkWidget *window, *provider, *url, *user, *secret, *login, *logout, *status, *countdown,
      *spinner;
  /* frames painted, and at the login click */
  unsigned frames, frames_at_login;
  int shoot_on_next_paint;
} app;

static const char *const providers[] = {"gateway", "kuzzle", "cometchat", NULL};

static void set_status(app *a, const char *fmt, const char *arg) {
  char line[256];
  snprintf(line, sizeof(line), fmt, arg ? arg : "");
  gtk_label_set_text(GTK_LABEL(a->status), line);
  printf("status: %s\n", line);
  fflush(stdout);
}

static void busy(app *a, gboolean on) {
  if (on)
    gtk_spinner_start(GTK_SPINNER(a->spinner));
  else
    gtk_spinner_stop(GTK_SPINNER(a->spinner));
  gtk_widget_set_sensitive(a->login, !on && !authloop_is_logged_in(a->client));
  gtk_widget_set_sensitive(a->logout, authloop_is_logged_in(a->client));
}

static void on_closed(authloop_ctx *ctx, void *ud) {
  app *a = ud;
  (void)ctx;
  a->ctx = NULL;
  a->client = NULL;
  g_main_loop_quit(a->main);
}

static void finish(app *a, int code) {
  a->exit_code = code;
  if (a->ctx)
    authloop_ctx_close(a->ctx, on_closed, a);
}

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
  printf("screenshot: %s %s\n", a->screenshot,
         gdk_texture_save_to_png(tex, a->screenshot) ? "saved" : "FAILED");
  fflush(stdout);
  g_object_unref(tex);
  gsk_render_node_unref(node);
  g_object_unref(p);
}

static void on_paint(GdkFrameClock *clock, gpointer ud) {
  app *a = ud;
  (void)clock;
  a->frames++;
  if (a->shoot_on_next_paint) {
    /* the "logged in" status is on screen now */
    a->shoot_on_next_paint = 0;
    if (a->screenshot)
      save_screenshot(a);
    g_signal_emit_by_name(a->logout, "clicked");
  }
}

static gboolean tick(gpointer ud);

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  app *a = ud;
  tick(a); /* the countdown follows every change at once */
  switch (ev->type) {
  case AUTHLOOP_EV_LOGIN_ATTEMPT:
    busy(a, FALSE);
    if (!ev->success) {
      set_status(a, "Login failed: %s", ev->message);
      if (a->self_test)
        finish(a, 1);
      break;
    }
    if (a->self_test) {
      printf("frames painted while the login was in flight: %u\n", a->frames - a->frames_at_login);
      a->shoot_on_next_paint = 1;
      gtk_widget_queue_draw(a->window);
    }
    set_status(a, "Logged in as %s", authloop_user_id(authloop_current_user(c)));
    break;
  case AUTHLOOP_EV_LOGOUT:
    busy(a, FALSE);
    set_status(a, "Logged out%s", ev->error ? " (the server did not confirm)" : "");
    if (a->self_test)
      finish(a, 0);
    break;
  case AUTHLOOP_EV_TOKEN_REFRESHED:
    set_status(a, "Tokens refreshed%s", "");
    break;
  case AUTHLOOP_EV_SESSION_EXPIRED:
    busy(a, FALSE);
    set_status(a, "Session ended: %s", ev->message);
    break;
  default:
    break;
  }
}

static gboolean tick(gpointer ud) {
  app *a = ud;
  char text[64];
  long long ms = a->client ? authloop_token_expires_in_ms(a->client) : 0;
  if (!a->client || !authloop_is_logged_in(a->client))
    snprintf(text, sizeof(text), "No token");
  else if (ms < 0)
    snprintf(text, sizeof(text), "The token never expires");
  else
    snprintf(text, sizeof(text), "Token expires in %lld:%02lld", ms / 60000, ms / 1000 % 60);
  gtk_label_set_text(GTK_LABEL(a->countdown), text);
  return G_SOURCE_CONTINUE;
}

/* A client for the chosen provider and URL (made again when they change). */
static int make_client(app *a) {
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  char client_url[512], admin_url[512];
  const char *url = gtk_editable_get_text(GTK_EDITABLE(a->url));
  int t, rc;
  if (a->client && !authloop_is_logged_in(a->client))
    authloop_client_free(a->client);
  a->client = NULL;
  o.provider = providers[gtk_drop_down_get_selected(GTK_DROP_DOWN(a->provider))];
  o.base_url = url;
  if (strcmp(o.provider, "cometchat") == 0) {
    /* the reference server serves CometChat's two hosts as path prefixes */
    snprintf(client_url, sizeof(client_url), "%s/cometchat/client/v3.0", url);
    snprintf(admin_url, sizeof(admin_url), "%s/cometchat/admin/v3.0", url);
    o.base_url = *url ? client_url : NULL;
    o.admin_url = *url ? admin_url : NULL;
    o.app_id = a->app_id;
  }
  if ((rc = authloop_client_new(a->ctx, &o, &a->client)) != 0)
    return rc;
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(a->client, (authloop_event_type)t, on_event, a);
  return 0;
}

static void on_login(GtkButton *b, gpointer ud) {
  app *a = ud;
  const char *provider = providers[gtk_drop_down_get_selected(GTK_DROP_DOWN(a->provider))];
  const char *user = gtk_editable_get_text(GTK_EDITABLE(a->user));
  const char *secret = gtk_editable_get_text(GTK_EDITABLE(a->secret));
  int rc;
  (void)b;
  if ((rc = make_client(a)) == 0) {
    if (strcmp(provider, "gateway") == 0)
      rc = authloop_login_code(a->client, secret);
    else if (strcmp(provider, "kuzzle") == 0)
      rc = authloop_login_local(a->client, user, secret, NULL);
    else
      rc = authloop_login_key(a->client, user, secret);
  }
  if (rc) {
    set_status(a, "Cannot log in: %s", authloop_strerror(rc));
    return;
  }
  a->frames_at_login = a->frames;
  set_status(a, "Logging in…%s", "");
  busy(a, TRUE);
}

static void on_logout(GtkButton *b, gpointer ud) {
  app *a = ud;
  int rc;
  (void)b;
  if ((rc = authloop_logout(a->client)) != 0)
    set_status(a, "Cannot log out: %s", authloop_strerror(rc));
  else
    busy(a, TRUE);
}

static gboolean on_close_request(GtkWindow *w, gpointer ud) {
  (void)w;
  finish(ud, ((app *)ud)->exit_code);
  return FALSE;
}

static void on_realize(GtkWidget *w, gpointer ud) {
  g_signal_connect(gtk_widget_get_frame_clock(w), "after-paint", G_CALLBACK(on_paint), ud);
}

static void add_row(GtkWidget *grid, int row, const char *label, GtkWidget *field) {
  GtkWidget *l = gtk_label_new(label);
  gtk_widget_set_halign(l, GTK_ALIGN_END);
  gtk_widget_set_hexpand(field, TRUE);
  gtk_grid_attach(GTK_GRID(grid), l, 0, row, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), field, 1, row, 2, 1);
}

static void build_window(app *a, const char *url) {
  GtkWidget *grid = gtk_grid_new();
  a->window = gtk_window_new();
  gtk_window_set_title(GTK_WINDOW(a->window), "authloop login");
  gtk_window_set_default_size(GTK_WINDOW(a->window), 460, 280);
  gtk_grid_set_row_spacing(GTK_GRID(grid), 8);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 8);
  gtk_widget_set_margin_start(grid, 16);
  gtk_widget_set_margin_end(grid, 16);
  gtk_widget_set_margin_top(grid, 16);
  gtk_widget_set_margin_bottom(grid, 16);
  a->provider = gtk_drop_down_new_from_strings(providers);
  a->url = gtk_entry_new();
  gtk_editable_set_text(GTK_EDITABLE(a->url), url ? url : "");
  a->user = gtk_entry_new();
  a->secret = gtk_password_entry_new();
  add_row(grid, 0, "Provider", a->provider);
  add_row(grid, 1, "Server URL", a->url);
  add_row(grid, 2, "User", a->user);
  add_row(grid, 3, "Secret", a->secret);
  a->login = gtk_button_new_with_label("Login");
  a->logout = gtk_button_new_with_label("Logout");
  gtk_widget_set_sensitive(a->logout, FALSE);
  gtk_grid_attach(GTK_GRID(grid), a->login, 1, 4, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), a->logout, 2, 4, 1, 1);
  a->spinner = gtk_spinner_new();
  a->status = gtk_label_new("Logged out");
  gtk_widget_set_halign(a->status, GTK_ALIGN_START);
  gtk_grid_attach(GTK_GRID(grid), a->spinner, 0, 5, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), a->status, 1, 5, 2, 1);
  a->countdown = gtk_label_new("No token");
  gtk_widget_set_halign(a->countdown, GTK_ALIGN_START);
  gtk_grid_attach(GTK_GRID(grid), a->countdown, 1, 6, 2, 1);
  gtk_window_set_child(GTK_WINDOW(a->window), grid);
  g_signal_connect(a->login, "clicked", G_CALLBACK(on_login), a);
  g_signal_connect(a->logout, "clicked", G_CALLBACK(on_logout), a);
  g_signal_connect(a->window, "close-request", G_CALLBACK(on_close_request), a);
  g_signal_connect(a->window, "realize", G_CALLBACK(on_realize), a);
}

static gboolean start_self_test(gpointer ud) {
  app *a = ud;
  gtk_drop_down_set_selected(GTK_DROP_DOWN(a->provider), 0);
  g_signal_emit_by_name(a->login, "clicked");
  return G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  const char *url = "https://127.0.0.1:8443", *code = NULL;
  app a = {0};
  int i;
  a.app_id = "app1";
  for (i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--self-test") == 0) {
      a.self_test = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "%s needs a value\n", argv[i]);
      return 2;
    }
    if (strcmp(argv[i], "--url") == 0)
      url = v;
    else if (strcmp(argv[i], "--ca") == 0)
      a.ca = v;
    else if (strcmp(argv[i], "--code") == 0)
      code = v;
    else if (strcmp(argv[i], "--app-id") == 0)
      a.app_id = v;
    else if (strcmp(argv[i], "--screenshot") == 0)
      a.screenshot = v;
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
    i++;
  }
  gtk_init();
  uv_loop_init(&a.loop);
  co.ca_file = a.ca;
  if (authloop_ctx_new(&a.loop, &co, &a.ctx) != 0)
    return 1;
  a.source = authloop_glib_attach(a.ctx, NULL);
  a.main = g_main_loop_new(NULL, FALSE);
  build_window(&a, url);
  if (code)
    gtk_editable_set_text(GTK_EDITABLE(a.secret), code);
  g_timeout_add(250, tick, &a);
  gtk_window_present(GTK_WINDOW(a.window));
  if (a.self_test)
    g_idle_add(start_self_test, &a);
  g_main_loop_run(a.main); /* until the ctx's close callback */
  gtk_window_destroy(GTK_WINDOW(a.window));
  g_source_destroy(a.source);
  g_source_unref(a.source);
  printf("loop closed: %s\n", uv_loop_close(&a.loop) == 0 ? "clean" : "NOT clean");
  return a.exit_code;
}
