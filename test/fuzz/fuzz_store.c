/* libFuzzer: any bytes as a session file, with and without a key, for each
 * dialect. A bad file is refused and leaves the client logged out. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static authloop_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  uv_loop_init(&loop);
  return authloop_ctx_new(&loop, NULL, &ctx) == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const names[] = {"gateway", "kuzzle", "cometchat"};
  static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
  authloop_client_options o = {0};
  authloop_client *c;
  size_t i;
  for (i = 0; i < 6; i++) {
    o.provider = names[i % 3];
    o.base_url = "https://127.0.0.1:1";
    o.app_id = "app1";
    if (authloop_client_new(ctx, &o, &c) != 0)
      abort();
    if (i >= 3) {
      memcpy(c->session_key, key, 32);
      c->has_session_key = 1;
    }
    if (authloop__store_decode(c, data, size) != 0 && (c->session.access_token || c->session.user))
      abort(); /* a refused file must leave nothing behind */
    authloop__session_clear(&c->session);
    authloop_client_free(c);
  }
  return 0;
}
