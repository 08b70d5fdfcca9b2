/* SPDX-License-Identifier: MIT */
/* The built-in dialects, for the registry and the tests. */
#ifndef AUTHLOOP_PROVIDERS_BUILTIN_H
#define AUTHLOOP_PROVIDERS_BUILTIN_H

#include "../provider.h"

extern const authloop__provider authloop__provider_gateway;
extern const authloop__provider authloop__provider_kuzzle;
extern const authloop__provider authloop__provider_cometchat;
extern const authloop__provider authloop__provider_cognito;
extern const authloop__provider authloop__provider_oidc;

/* The gateway's answers as pure functions (unit-tested, fuzzed). */
int authloop__gateway_login_answer(const authloop__answer *a, authloop__result *out);
int authloop__gateway_refresh_answer(const authloop__answer *a, authloop__result *out);
int authloop__gateway_error(const authloop__answer *a, authloop__result *out);

/* Cognito's answers (kind: 0 a password login, 1 a login with a refresh
 * token, 2 a refresh, 3 a logout). */
int authloop__cognito_auth_answer(const authloop__answer *a, int kind, authloop__result *out);
int authloop__cognito_error(const authloop__answer *a, int kind, authloop__result *out);

/* A path option: NULL (use the default) or text the URL builder accepts
 * (starts with '/', no space, control byte, '?' or '#'). */
int authloop__path_option_ok(const char *path);

#endif
