/* SPDX-License-Identifier: MIT */
/* Sized options structs (docs/abi.md): a program built against an older
 * header passes a shorter struct, one built against a newer header a longer
 * one; the library reads exactly `size` bytes and refuses what it cannot
 * honour. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <authloop.h>

typedef struct {
  uv_loop_t loop;
  authloop_ctx *ctx;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->ctx) {
    assert_int_equal(authloop_ctx_close(f->ctx, NULL, NULL), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  }
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* An options struct as a program of another header would lay it out: the
 * first `size` bytes are the caller's, and the bytes after them hold `fill`
 * (what a shorter struct's neighbour in memory might be). Heap-allocated to
 * the exact length given, so a read past it is a sanitizer report. */
static void *sized(const void *opts, size_t size, size_t alloc, unsigned char fill) {
  unsigned char *p = malloc(alloc);
  assert_non_null(p);
  memset(p, fill, alloc);
  memcpy(p, opts, size < alloc ? size : alloc);
  memcpy(p, &size, sizeof(size));
  return p;
}

static void never_called(authloop_ctx *ctx, const authloop_preauth_result *r, void *u) {
  (void)ctx, (void)r, (void)u;
  fail_msg("a refused pre-auth has no callback");
}

static void a_struct_without_its_size_is_einval(void **state) {
  fixture *f = *state;
  authloop_ctx_options o;
  authloop_ctx *ctx = NULL;
  authloop_client_options co;
  authloop_client *c = NULL;
  authloop_preauth_options po;
  memset(&o, 0, sizeof(o)); /* an options struct made the old way: size 0 */
  assert_int_equal(authloop_ctx_new(&f->loop, &o, &ctx), AUTHLOOP_EINVAL);
  assert_null(ctx);
  o.size = sizeof(size_t) - 1;
  assert_int_equal(authloop_ctx_new(&f->loop, &o, &ctx), AUTHLOOP_EINVAL);
  o.size = (size_t)-1; /* garbage: never read that far */
  assert_int_equal(authloop_ctx_new(&f->loop, &o, &ctx), AUTHLOOP_EINVAL);
  assert_null(ctx);
  { /* sizes that end inside a field (half of ca_file, of user_agent): no
     * compiler makes them, and half a pointer is no pointer */
    static const size_t inside[] = {9, 12, 34, 35, 36};
    size_t i;
    void *p;
    o = (authloop_ctx_options)AUTHLOOP_CTX_OPTIONS_INIT;
    o.ca_file = "/nonexistent/ca.pem";
    o.user_agent = "ua";
    for (i = 0; i < sizeof(inside) / sizeof(inside[0]); i++) {
      p = sized(&o, inside[i], sizeof(o), 0);
      assert_int_equal(authloop_ctx_new(&f->loop, p, &ctx), AUTHLOOP_EINVAL);
      assert_null(ctx);
      free(p);
    }
  }

  assert_int_equal(authloop_ctx_new(&f->loop, NULL, &f->ctx), 0); /* NULL: all defaults */
  memset(&co, 0, sizeof(co));
  co.provider = "gateway";
  co.base_url = "https://chat.example.com";
  assert_int_equal(authloop_client_new(f->ctx, &co, &c), AUTHLOOP_EINVAL);
  assert_null(c);
  memset(&po, 0, sizeof(po));
  po.gateway_url = "https://chat.example.com";
  assert_int_equal(authloop_preauth(f->ctx, &po, never_called, NULL), AUTHLOOP_EINVAL);
}

static void an_older_header_passes_a_shorter_struct(void **state) {
  fixture *f = *state;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_client *c = NULL;
  void *p;
  size_t old;

  /* A header that ended before the log fields: what lies after them in
   * memory (0xff here) is not the library's to read. */
  o.timeout_ms = 5000;
  old = offsetof(authloop_ctx_options, log_cb);
  p = sized(&o, old, old, 0xff);
  assert_int_equal(authloop_ctx_new(&f->loop, p, &f->ctx), 0);
  free(p);
  p = sized(&o, old, sizeof(o) + 64, 0xff); /* the bytes after it: not read either */
  {
    authloop_ctx *ctx2 = NULL;
    assert_int_equal(authloop_ctx_new(&f->loop, p, &ctx2), 0);
    assert_int_equal(authloop_ctx_close(ctx2, NULL, NULL), 0);
  }
  free(p);

  /* A client header without the CometChat fields: a gateway client. */
  co.provider = "gateway";
  co.base_url = "https://chat.example.com";
  old = offsetof(authloop_client_options, session_path);
  p = sized(&co, old, sizeof(co) + 64, 0xff);
  assert_int_equal(authloop_client_new(f->ctx, p, &c), 0);
  assert_non_null(c);
  assert_int_equal(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);
  authloop_client_free(c);
  free(p);
}

static void a_newer_header_is_accepted_while_its_new_fields_are_unset(void **state) {
  fixture *f = *state;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_preauth_options po = AUTHLOOP_PREAUTH_OPTIONS_INIT;
  authloop_client *c = NULL;
  authloop_ctx *ctx2 = NULL;
  unsigned char *p;
  size_t newer;

  newer = sizeof(o) + 16;
  p = sized(&o, sizeof(o), newer, 0); /* the new fields: zero, "default" */
  memcpy(p, &newer, sizeof(newer));
  assert_int_equal(authloop_ctx_new(&f->loop, (void *)p, &f->ctx), 0);
  p[newer - 1] = 1; /* a new field set: this library cannot honour it */
  assert_int_equal(authloop_ctx_new(&f->loop, (void *)p, &ctx2), AUTHLOOP_ENOTSUP);
  assert_null(ctx2);
  free(p);

  co.provider = "gateway";
  co.base_url = "https://chat.example.com";
  newer = sizeof(co) + 8;
  p = sized(&co, sizeof(co), newer, 0);
  memcpy(p, &newer, sizeof(newer));
  assert_int_equal(authloop_client_new(f->ctx, (void *)p, &c), 0);
  authloop_client_free(c);
  c = NULL;
  p[sizeof(co)] = 0x80;
  assert_int_equal(authloop_client_new(f->ctx, (void *)p, &c), AUTHLOOP_ENOTSUP);
  assert_null(c);
  free(p);

  po.gateway_url = "https://chat.example.com";
  po.user_id = "u1";
  po.client_id = "backend";
  po.key_pem = "not a key";
  newer = sizeof(po) + 8;
  p = sized(&po, sizeof(po), newer, 0);
  memcpy(p, &newer, sizeof(newer));
  /* the key is checked after the struct: EKEY proves the struct passed */
  assert_int_equal(authloop_preauth(f->ctx, (void *)p, never_called, NULL), AUTHLOOP_EKEY);
  p[newer - 1] = 2;
  assert_int_equal(authloop_preauth(f->ctx, (void *)p, never_called, NULL), AUTHLOOP_ENOTSUP);
  free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_struct_without_its_size_is_einval, setup, teardown),
      cmocka_unit_test_setup_teardown(an_older_header_passes_a_shorter_struct, setup, teardown),
      cmocka_unit_test_setup_teardown(a_newer_header_is_accepted_while_its_new_fields_are_unset,
                                      setup, teardown),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
