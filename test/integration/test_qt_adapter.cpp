/* SPDX-License-Identifier: MIT */
// include/authloop-qt.h on a QCoreApplication (no display): the adapter
// drives a ctx (a post from another thread runs, the close finishes), and
// it may be deleted from inside its own callbacks: a post's callback and
// the close callback, after which nothing of it is touched (the sanitizer
// and valgrind stages run this). Prints TAP.
#include <authloop-qt.h>

#include <QCoreApplication>
#include <QTimer>
#include <cstdio>
#include <thread>

namespace {

struct State {
  AuthloopQt *adapter = nullptr;
  int posts = 0, closes = 0;
};

int failures = 0, checks = 0;
void check(bool ok, const char *what) {
  checks++;
  if (!ok)
    failures++;
  std::printf("%s %d - %s\n", ok ? "ok" : "not ok", checks, what);
  std::fflush(stdout);
}

void on_closed(authloop_ctx *, void *ud) {
  State *s = static_cast<State *>(ud);
  s->closes++;
  delete s->adapter; /* inside the adapter's own process() */
  s->adapter = nullptr;
  QTimer::singleShot(0, QCoreApplication::instance(), [] { QCoreApplication::quit(); });
}

void on_post(authloop_ctx *ctx, int status, void *ud) {
  (void)status;
  State *s = static_cast<State *>(ud);
  s->posts++;
  authloop_ctx_close(ctx, on_closed, s);
}

/* A post from another thread wakes the Qt loop; its callback closes the
 * ctx; the close callback deletes the adapter. */
void post_then_close_deletes_the_adapter() {
  uv_loop_t loop;
  authloop_ctx *ctx = nullptr;
  State s;
  uv_loop_init(&loop);
  check(authloop_ctx_new(&loop, nullptr, &ctx) == 0, "a ctx");
  s.adapter = new AuthloopQt(ctx);
  std::thread t([&] { authloop_ctx_post(ctx, on_post, &s); });
  QTimer guard;
  guard.setSingleShot(true);
  QObject::connect(&guard, &QTimer::timeout, [] { QCoreApplication::exit(2); });
  guard.start(10000);
  int rc = QCoreApplication::exec();
  t.join();
  check(rc == 0 && s.posts == 1 && s.closes == 1 && !s.adapter,
        "the post ran, the close finished, the adapter went in its close callback");
  check(uv_loop_close(&loop) == 0, "the loop closed clean");
}

/* The adapter deleted in a post's callback (the ctx still open), then the
 * ctx closed and run to its end by hand. */
void deleted_in_a_post() {
  uv_loop_t loop;
  authloop_ctx *ctx = nullptr;
  State s;
  uv_loop_init(&loop);
  check(authloop_ctx_new(&loop, nullptr, &ctx) == 0, "a second ctx");
  s.adapter = new AuthloopQt(ctx);
  authloop_ctx_post(
      ctx,
      [](authloop_ctx *, int, void *ud) {
        State *st = static_cast<State *>(ud);
        st->posts++;
        delete st->adapter;
        st->adapter = nullptr;
        QTimer::singleShot(0, QCoreApplication::instance(), [] { QCoreApplication::quit(); });
      },
      &s);
  int rc = QCoreApplication::exec();
  check(rc == 0 && s.posts == 1 && !s.adapter, "the adapter went in a post's callback");
  authloop_ctx_close(ctx, nullptr, nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  check(uv_loop_close(&loop) == 0, "closed by hand afterwards, the loop closed clean");
}

} // namespace

int main(int argc, char **argv) {
  QCoreApplication app(argc, argv);
  std::printf("1..6\n");
  post_then_close_deletes_the_adapter();
  deleted_in_a_post();
  return failures || checks != 6 ? 1 : 0;
}
