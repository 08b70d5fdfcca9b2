/* SPDX-License-Identifier: MIT */
/* Built by old-header.sh against a copy of authloop.h whose options structs
 * lack their last fields, as an older release's header would, and run
 * against the library of this tree: everything it uses must work. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <authloop.h>

static int failures;

#define CHECK(expr, want)                                                                          \
  do {                                                                                             \
    int got_ = (expr);                                                                             \
    if (got_ != (want)) {                                                                          \
      printf("# failed: %s: %s, want %s\n", #expr, authloop_err_name(got_),                        \
             authloop_err_name(want));                                                             \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

/* The options end where a page the library may not touch begins: reading
 * one byte past the caller's struct faults. */
static void *at_page_end(const void *opts, size_t size) {
  static unsigned char *pages;
  long pg = sysconf(_SC_PAGESIZE);
  static size_t used;
  if (!pages) {
    pages = mmap(NULL, 8 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED)
      return NULL;
    for (int i = 1; i < 8; i += 2)
      mprotect(pages + (size_t)i * (size_t)pg, (size_t)pg, PROT_NONE);
  }
  if (used >= 4)
    return NULL;
  unsigned char *p = pages + (2 * used + 1) * (size_t)pg - size;
  used++;
  memcpy(p, opts, size);
  return p;
}

static void preauth_cb(authloop_ctx *ctx, const authloop_preauth_result *r, void *u) {
  (void)ctx, (void)r, (void)u;
  printf("# failed: a refused pre-auth called back\n");
  failures++;
}

static void closed(authloop_ctx *ctx, void *u) {
  (void)ctx;
  *(int *)u = 1;
}

int main(void) {
  uv_loop_t loop;
  authloop_ctx *ctx = NULL;
  authloop_client *c = NULL;
  authloop_ctx_options o = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options co = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_preauth_options po = AUTHLOOP_PREAUTH_OPTIONS_INIT;
  int done = 0;

  printf("# sizes in this program: ctx %zu, client %zu, preauth %zu\n", sizeof(o), sizeof(co),
         sizeof(po));
  uv_loop_init(&loop);
  o.timeout_ms = 2000;
  o.user_agent = "old-header/1";
  CHECK(authloop_ctx_new(&loop, at_page_end(&o, sizeof(o)), &ctx), 0);
  if (!ctx)
    return 1;
  co.provider = "gateway";
  co.base_url = "https://chat.example.com";
  co.refresh_margin_s = 120;
  CHECK(authloop_client_new(ctx, at_page_end(&co, sizeof(co)), &c), 0);
  if (c) {
    CHECK(authloop_client_state(c), AUTHLOOP_STATE_LOGGED_OUT);
    CHECK(authloop_is_logged_in(c), 0);
    authloop_client_free(c);
  }
  /* An option this program sets that the library checks still counts. */
  co.base_url = "http://chat.example.com";
  c = NULL;
  CHECK(authloop_client_new(ctx, at_page_end(&co, sizeof(co)), &c), AUTHLOOP_EINSECURE);
  po.gateway_url = "https://chat.example.com";
  po.user_id = "u1";
  po.client_id = "backend";
  po.key_pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
  CHECK(authloop_preauth(ctx, at_page_end(&po, sizeof(po)), preauth_cb, NULL), AUTHLOOP_EKEY);
  CHECK(authloop_ctx_close(ctx, closed, &done), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (!done || uv_loop_close(&loop) != 0) {
    printf("# failed: the ctx did not close cleanly\n");
    failures++;
  }
  printf("%s - a program built against the shorter header works with this library\n",
         failures ? "not ok" : "ok");
  return failures != 0;
}
