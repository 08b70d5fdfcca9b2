/* SPDX-License-Identifier: MIT */
/* authloop on a Qt event loop (Qt 5.15 or 6), header-only, as hiredis's
 * adapters are: no moc, no library of its own.
 *
 *   AuthloopQt adapter(ctx);      // lives as long as the ctx is open
 *
 * A QSocketNotifier watches authloop_ctx_fd() and runs
 * authloop_ctx_process() when it is readable; before the event loop sleeps
 * (QAbstractEventDispatcher::aboutToBlock) a single-shot QTimer is armed
 * from authloop_ctx_timeout_ms(), so work queued by any call is run and an
 * idle loop sleeps (nothing due: no timer at all). Events reach handlers on
 * the thread of the adapter, which must be the ctx's loop thread. When the
 * ctx's close has finished the adapter stops by itself; it may be destroyed
 * anywhere, its own callbacks included (the close callback is a good place);
 * then uv_loop_close() the loop once the close callback has returned. */
#ifndef AUTHLOOP_QT_H
#define AUTHLOOP_QT_H

#include <authloop.h>

#include <QAbstractEventDispatcher>
#include <QObject>
#include <QSocketNotifier>
#include <QTimer>
#include <memory>

class AuthloopQt {
public:
  explicit AuthloopQt(authloop_ctx *ctx)
      : ctx_(ctx), notifier_(authloop_ctx_fd(ctx), QSocketNotifier::Read) {
    timer_.setSingleShot(true);
    timer_.setTimerType(Qt::PreciseTimer);
    QObject::connect(&notifier_, &QSocketNotifier::activated, &timer_, [this] { process(); });
    QObject::connect(&timer_, &QTimer::timeout, &timer_, [this] { process(); });
    if (QAbstractEventDispatcher *d = QAbstractEventDispatcher::instance())
      armer_ = QObject::connect(d, &QAbstractEventDispatcher::aboutToBlock, &timer_,
                                [this] { schedule(); });
    schedule();
  }
  ~AuthloopQt() {
    *alive_ = false; /* a process() under way returns without touching us */
    QObject::disconnect(armer_);
  }
  AuthloopQt(const AuthloopQt &) = delete;
  AuthloopQt &operator=(const AuthloopQt &) = delete;

  /* Whether the ctx is still driven (false once its close has finished). */
  bool active() const { return ctx_ != nullptr; }

private:
  /* The adapter may be deleted by a callback that runs in here (a close
   * callback, an event handler): nothing of it is touched after that. */
  void process() {
    if (!ctx_)
      return;
    std::shared_ptr<bool> alive = alive_;
    int more = authloop_ctx_process(ctx_);
    if (!*alive)
      return;
    if (!more) { /* the close finished: nothing more to drive */
      ctx_ = nullptr;
      notifier_.setEnabled(false);
      timer_.stop();
      return;
    }
    schedule();
  }
  /* The next deadline: 0 runs it at once, -1 none. A timer already set for
   * sooner is left as it is (it goes off early, does nothing, is set again). */
  void schedule() {
    if (!ctx_)
      return;
    int ms = authloop_ctx_timeout_ms(ctx_);
    if (ms < 0)
      timer_.stop();
    else if (!timer_.isActive() || timer_.remainingTime() > ms)
      timer_.start(ms);
  }

  authloop_ctx *ctx_;
  QSocketNotifier notifier_;
  QTimer timer_;
  QMetaObject::Connection armer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

#endif
