/* SPDX-License-Identifier: MIT */
/* The registry of built-in dialects, and what every dialect shares. */
#include "builtin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const authloop__provider *const all[] = {
    &authloop__provider_gateway, &authloop__provider_kuzzle, &authloop__provider_cometchat,
    &authloop__provider_cognito, &authloop__provider_oidc};

const authloop__provider *authloop__provider_find(const char *name) {
  size_t i;
  for (i = 0; name && i < AUTHLOOP__COUNT(all); i++)
    if (strcmp(all[i]->name, name) == 0)
      return all[i];
  return NULL;
}

const authloop__provider *authloop__provider_preauth(void) {
  size_t i;
  for (i = 0; i < AUTHLOOP__COUNT(all); i++)
    if (all[i]->preauth_answer)
      return all[i];
  return NULL;
}

void authloop__result_clear(authloop__result *r) {
  free(r->message);
  free(r->server_code);
  authloop__secret_free(r->access_token);
  authloop__secret_free(r->id_token);
  authloop__secret_free(r->refresh_token);
  authloop__secret_free(r->user);
  free(r->user_id);
  free(r->user_name);
  free(r->redirect_url);
  free(r->redirect_result);
  free(r->prompt_code);
  free(r->prompt_uri);
  free(r->prompt_uri_complete);
  memset(r, 0, sizeof(*r));
}

int authloop__answer_doc(const authloop__answer *a, authloop__result *r, authloop__jdoc *d) {
  int rc = authloop__jdoc_parse(d, a->body, a->len);
  if (rc == AUTHLOOP_ENOMEM)
    authloop__result_fail(r, AUTHLOOP_ENOMEM, a->status, NULL, NULL);
  return rc;
}

/* An answer given up once the dialect took its tokens: nothing of it is
 * kept, but a refresh token the server rotated stays (the old one is spent:
 * a refused refresh hands the new one back, as the other refusals do). why:
 * the message, or NULL. */
static int drop_answer(authloop__result *r, int error, const char *why) {
  long status = r->http_status;
  char *rotated = r->refresh_token;
  r->refresh_token = NULL;
  authloop__result_clear(r);
  r->refresh_token = rotated;
  return authloop__result_fail(r, error, status, why ? "malformed response: %s" : NULL, why);
}

int authloop__result_user_text(authloop__result *r, char *text, const char *id, const char *name) {
  authloop__secret_free(r->user);
  r->user = text;
  /* The id names the user to the application (keys, paths, logs): one with a
   * control (C0, DEL, C1, a line separator, a bidirectional control) is
   * refused, not altered into another user's. The name is only shown: its
   * controls become '?', as in a server's messages. The user's JSON keeps
   * both as the server sent them, escaped. */
  if (text && !authloop__printable_ok(id))
    return drop_answer(r, AUTHLOOP_EPROTO, "the user id holds a control character");
  if (!text || !(r->user_id = strdup(id)) ||
      (name && !(r->user_name = authloop__printable_dup(name))))
    return drop_answer(r, AUTHLOOP_ENOMEM, NULL);
  return 0;
}

int authloop__result_user(authloop__result *r, const authloop__jdoc *d, int v, const char *id,
                          const char *name) {
  return authloop__result_user_text(r, authloop__jcompact(d, v), id, name);
}

int authloop__result_fail(authloop__result *r, int error, long status, const char *fmt,
                          const char *arg) {
  char msg[256];
  r->error = error;
  r->http_status = status;
  if (fmt) {
    snprintf(msg, sizeof(msg), fmt, arg);
    free(r->message);
    r->message = strdup(msg);
  }
  return error;
}

int authloop__result_missing(authloop__result *r, long status, const char *field) {
  return authloop__result_fail(r, AUTHLOOP_EPROTO, status,
                               "malformed response: missing or mistyped \"%s\"", field);
}

int authloop__authorize_bearer(void *state, const authloop__view *v, authloop__request *out) {
  (void)state;
  out->bearer = v->access_token;
  return 0;
}

int authloop__session_never_gone(void *state, const authloop__answer *a) {
  (void)state;
  (void)a;
  return 0;
}

int authloop__result_status(authloop__result *r, long status) {
  char msg[128];
  int e = status >= 500 || status == 429 ? AUTHLOOP_EUNAVAILABLE : AUTHLOOP_EREJECTED;
  snprintf(msg, sizeof(msg), "%s (HTTP %ld)", authloop_strerror(e), status);
  return authloop__result_fail(r, e, status, "%s", msg);
}

int authloop__result_take(authloop__result *r, char **dst, const char *src) {
  if (authloop__secret_set(dst, src) != 0)
    return authloop__result_fail(r, AUTHLOOP_ENOMEM, r->http_status, NULL, NULL);
  return 0;
}

int authloop__path_option_ok(const char *p) { return !p || authloop__path_text_ok(p); }
