/* SPDX-License-Identifier: MIT */
/* authloop's half of the differential tests (test/fidelity/differential.test.mjs):
 * runs operations one after another on one client, through the public API,
 * and prints one JSON line per outcome, so that the test can compare what
 * reached the server with what the official SDK sent for the same steps.
 *
 *   authloop_ops --ca CA --provider P [--base URL] [--admin URL] [--app ID] [--session FILE]
 *                [--userinfo N] OP...
 *
 * OP: local:USER:PASS[:EXPIRES]   Kuzzle, the local strategy
 *     strategy:NAME:JSON           Kuzzle, any strategy
 *     settoken:TOKEN               Kuzzle, complete an awaiting login
 *     key:UID:KEY                  CometChat
 *     token:TOKEN                  CometChat
 *     refresh | logout
 * Exit status: 0 when every operation came to an outcome (whatever it was),
 * 1 when one could not start or the client could not be made, 3 when an
 * outcome did not come within 10 s. */
#include <authloop.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  authloop_client *c;
  char **ops;
  int n, next, status;
  uv_timer_t guard;
} run;

static void next_op(run *r);

static void json_str(const char *s) {
  putchar('"');
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\')
      printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      printf("\\u%04x", (unsigned char)*s);
    else
      putchar(*s);
  }
  putchar('"');
}

static void report(run *r, const char *what, int error, const char *server_code, int success) {
  printf("{\"op\":");
  json_str(r->ops[r->next - 1]);
  printf(",\"event\":\"%s\",\"success\":%s,\"error\":", what, success ? "true" : "false");
  json_str(error ? authloop_err_name(error) : "");
  printf(",\"serverCode\":");
  json_str(server_code ? server_code : "");
  printf(",\"state\":\"%s\"}\n", authloop_state_name(authloop_client_state(r->c)));
  fflush(stdout);
}

static void done(run *r) {
  uv_close((uv_handle_t *)&r->guard, NULL);
  authloop_ctx_close(authloop_client_ctx(r->c), NULL, NULL);
}

static void on_event(authloop_client *c, const authloop_event *ev, void *ud) {
  run *r = ud;
  (void)c;
  if (ev->type == AUTHLOOP_EV_LOGIN_ATTEMPT)
    report(r, "loginAttempt", ev->error, ev->server_code, ev->success);
  else if (ev->type == AUTHLOOP_EV_LOGOUT)
    report(r, "logout", ev->error, ev->server_code, !ev->error);
  else if (ev->type == AUTHLOOP_EV_STATE_CHANGED && ev->new_state == AUTHLOOP_STATE_AWAITING_TOKEN)
    report(r, "awaitingToken", 0, authloop_login_redirect(r->c), 1);
  else
    return;
  next_op(r);
}

static void on_refreshed(authloop_client *c, int status, void *ud) {
  run *r = ud;
  (void)c;
  report(r, "refresh", status, NULL, status == 0);
  next_op(r);
}

static void on_guard(uv_timer_t *t) {
  run *r = t->data;
  fprintf(stderr, "authloop_ops: no outcome for %s within 10 s\n", r->ops[r->next - 1]);
  r->status = 3;
  done(r);
}

/* "a:b:c" split in place into at most max parts (the last takes the rest);
 * the parts not there are NULL. */
static void split(char *op, char **part, int max) {
  int i;
  for (i = 0; i < max; i++)
    part[i] = NULL;
  for (i = 0; op && i < max; i++) {
    part[i] = op;
    if (i + 1 < max && (op = strchr(op, ':')))
      *op++ = '\0';
  }
}

static int is(const char *op, const char *kind) {
  size_t n = strlen(kind);
  return strncmp(op, kind, n) == 0 && (op[n] == ':' || op[n] == '\0');
}

static int start(run *r, char *op) {
  char *p[4];
  if (is(op, "refresh"))
    return authloop_refresh(r->c, on_refreshed, r);
  if (is(op, "logout"))
    return authloop_logout(r->c);
  if (is(op, "settoken") || is(op, "token")) {
    split(op, p, 2);
    return is(op, "token") ? authloop_login_token(r->c, p[1]) : authloop_set_token(r->c, p[1]);
  }
  if (is(op, "key") || is(op, "strategy")) {
    split(op, p, 3);
    return is(op, "key") ? authloop_login_key(r->c, p[1], p[2])
                         : authloop_login_strategy(r->c, p[1], p[2], NULL);
  }
  if (is(op, "local")) {
    split(op, p, 4);
    return authloop_login_local(r->c, p[1], p[2], p[3]);
  }
  return AUTHLOOP_EINVAL;
}

static void next_op(run *r) {
  char copy[4096];
  int rc;
  if (r->next >= r->n) {
    done(r);
    return;
  }
  snprintf(copy, sizeof(copy), "%s", r->ops[r->next++]);
  uv_timer_start(&r->guard, on_guard, 10000, 0);
  if ((rc = start(r, copy)) != 0) {
    fprintf(stderr, "authloop_ops: %s: %s\n", r->ops[r->next - 1], authloop_err_name(rc));
    r->status = 1;
    done(r);
  }
}

int main(int argc, char **argv) {
  authloop_ctx_options copts = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_ctx *ctx;
  uv_loop_t loop;
  run r = {0};
  int i, t, rc;
  for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--ca") == 0)
      copts.ca_file = argv[i + 1];
    else if (strcmp(argv[i], "--provider") == 0)
      o.provider = argv[i + 1];
    else if (strcmp(argv[i], "--base") == 0)
      o.base_url = argv[i + 1];
    else if (strcmp(argv[i], "--admin") == 0)
      o.admin_url = argv[i + 1];
    else if (strcmp(argv[i], "--app") == 0)
      o.app_id = argv[i + 1];
    else if (strcmp(argv[i], "--session") == 0)
      o.session_path = argv[i + 1];
    else if (strcmp(argv[i], "--userinfo") == 0)
      o.userinfo = atoi(argv[i + 1]);
    else
      break;
  }
  if (i >= argc || strncmp(argv[i], "--", 2) == 0) {
    fprintf(stderr, "usage: authloop_ops --ca CA --provider P [--base URL] [--admin URL] "
                    "[--app ID] [--session FILE] OP...\n");
    return 2;
  }
  r.ops = argv + i;
  r.n = argc - i;
  uv_loop_init(&loop);
  if ((rc = authloop_ctx_new(&loop, &copts, &ctx)) != 0) {
    fprintf(stderr, "authloop_ctx_new: %s\n", authloop_err_name(rc));
    return 1;
  }
  if ((rc = authloop_client_new(ctx, &o, &r.c)) != 0) {
    fprintf(stderr, "authloop_client_new: %s\n", authloop_err_name(rc));
    authloop_ctx_close(ctx, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  for (t = 0; t < AUTHLOOP_EV__COUNT; t++)
    authloop_on(r.c, (authloop_event_type)t, on_event, &r);
  uv_timer_init(&loop, &r.guard);
  r.guard.data = &r;
  next_op(&r);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0 && r.status == 0)
    r.status = 4;
  return r.status;
}
