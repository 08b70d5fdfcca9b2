/* SPDX-License-Identifier: MIT */
/* The GTK sample's window in Qt 6 Widgets: a provider with only the fields it
 * uses, the server, Log In and Log Out, who is signed in, a countdown to the
 * token's expiry, and errors shown as errors. authloop runs inside Qt's
 * event loop through include/authloop-qt.h (a QSocketNotifier on the ctx's
 * fd, a QTimer from its deadline); moving the pointer or typing in the
 * window counts as activity.
 *
 *   qt-login [--url URL] [--ca CA_FILE] [--code CODE] [--cometchat-app APP]
 *   qt-login --self-test=login|error --url URL --ca CA --code CODE [--screenshot FILE.png]
 *
 * The self-test drives the window as a user would and prints what it shows
 * ("user: ", "status: ", "error: ", "countdown: "): login logs in with CODE,
 * saves a screenshot with the user on screen, logs out, then counts the
 * event loop's wake-ups for 5 s ("idle wake-ups in 5 s: N"); error logs in
 * with a refused CODE and reports the error's colour and wrapping. */
#include <authloop-qt.h>
#include <authloop.h>

#include <QAbstractEventDispatcher>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QCoreApplication>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QMouseEvent>
#include <QPushButton>
#include <QVBoxLayout>
#include <QWidget>
#include <cstdio>
#include <cstring>
#include <memory>

namespace {

const char *const kProviders[] = {"gateway", "kuzzle", "cometchat"};
const char *const kTitles[] = {"Chat gateway", "Kuzzle", "CometChat"};

/* One line of what the window shows; control bytes from the server are
 * printed as \xNN, so no line can be forged. */
void say(const char *what, const QString &text) {
  QByteArray b = text.toUtf8();
  std::printf("%s: ", what);
  for (unsigned char c : b)
    if (c < 0x20 || c == 0x7f)
      std::printf("\\x%02x", c);
    else
      std::putchar(c);
  std::putchar('\n');
  std::fflush(stdout);
}

class Window : public QWidget {
public:
  Window(uv_loop_t *loop, const QString &url, const char *ca, const char *app, QString test,
         QString screenshot)
      : loop_(loop), app_(app), test_(std::move(test)), screenshot_(std::move(screenshot)) {
    authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
    co.ca_file = ca;
    if (authloop_ctx_new(loop_, &co, &ctx_) != 0)
      ctx_ = nullptr;
    else
      adapter_ = std::make_unique<AuthloopQt>(ctx_);
    build(url);
    setMouseTracking(true);
    update();
    tick_.setInterval(1000);
    QObject::connect(&tick_, &QTimer::timeout, this, [this] { countdown(); });
  }

  void setCode(const QString &c) { code_->setText(c); }
  void start() {
    if (!test_.isEmpty())
      QTimer::singleShot(0, this, [this] { login_->click(); });
  }
  int exitCode() const { return exit_; }
  /* after the event loop: the ctx's close has run */
  bool closedClean() {
    adapter_.reset(); /* its notifier watches the loop's fd: gone first */
    return uv_loop_close(loop_) == 0;
  }

protected:
  void mouseMoveEvent(QMouseEvent *e) override {
    activity();
    QWidget::mouseMoveEvent(e);
  }
  void keyPressEvent(QKeyEvent *e) override {
    activity();
    QWidget::keyPressEvent(e);
  }
  void closeEvent(QCloseEvent *e) override {
    if (ctx_) { /* the window goes when the ctx has closed */
      finish(exit_);
      e->ignore();
      return;
    }
    QWidget::closeEvent(e);
  }

private:
  void build(const QString &url) {
    setWindowTitle("Sign in");
    auto *box = new QVBoxLayout(this);
    who_ = new QLabel("Not signed in");
    QFont f = who_->font();
    f.setPointSizeF(f.pointSizeF() * 1.3);
    f.setBold(true);
    who_->setFont(f);
    box->addWidget(who_);
    auto *form = new QFormLayout;
    provider_ = new QComboBox;
    for (const char *t : kTitles)
      provider_->addItem(t);
    form->addRow("Provider", provider_);
    url_ = new QLineEdit(url);
    form->addRow("Server", url_);
    code_ = new QLineEdit;
    form->addRow("One-time code", code_);
    user_ = new QLineEdit;
    form->addRow("Username", user_);
    secret_ = new QLineEdit;
    secret_->setEchoMode(QLineEdit::Password);
    form->addRow("Password", secret_);
    form_ = form;
    box->addLayout(form);
    error_ = new QLabel;
    error_->setWordWrap(true);
    error_->setStyleSheet("color: #c01c28;"); /* the desktop's error red */
    error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    error_->hide();
    box->addWidget(error_);
    status_ = new QLabel("Signed out");
    box->addWidget(status_);
    countdown_ = new QLabel("No token");
    countdown_->setEnabled(false); /* dimmed */
    box->addWidget(countdown_);
    auto *buttons = new QHBoxLayout;
    buttons->addStretch();
    logout_ = new QPushButton("Log &Out");
    login_ = new QPushButton("&Log In");
    login_->setDefault(true);
    buttons->addWidget(logout_);
    buttons->addWidget(login_);
    box->addLayout(buttons);
    resize(480, sizeHint().height());
    fields();
    QObject::connect(provider_, &QComboBox::currentIndexChanged, this, [this] { fields(); });
    QObject::connect(login_, &QPushButton::clicked, this, [this] { onLogin(); });
    QObject::connect(logout_, &QPushButton::clicked, this, [this] { onLogout(); });
  }

  /* only the fields the provider uses */
  void fields() {
    int p = provider_->currentIndex();
    bool code = p == 0;
    form_->setRowVisible(code_, code);
    form_->setRowVisible(user_, !code);
    form_->setRowVisible(secret_, !code);
    static_cast<QLabel *>(form_->labelForField(user_))->setText(p == 1 ? "Username" : "User ID");
    static_cast<QLabel *>(form_->labelForField(secret_))->setText(p == 1 ? "Password" : "Auth key");
  }

  void setStatus(const QString &s) {
    status_->setText(s);
    say("status", s);
  }
  void setError(const QString &s) {
    error_->setText(s);
    error_->setToolTip(s);
    error_->setVisible(!s.isEmpty());
    if (!s.isEmpty())
      say("error", s);
  }

  void update() {
    bool in = client_ && authloop_is_logged_in(client_);
    authloop_state st = client_ ? authloop_client_state(client_) : AUTHLOOP_STATE_LOGGED_OUT;
    bool busy = loggingOut_ || st == AUTHLOOP_STATE_LOGGING_IN;
    login_->setEnabled(ctx_ && !busy && !in);
    logout_->setEnabled(!busy && in);
    for (QWidget *w : {static_cast<QWidget *>(provider_), static_cast<QWidget *>(url_),
                       static_cast<QWidget *>(code_), static_cast<QWidget *>(user_),
                       static_cast<QWidget *>(secret_)})
      w->setEnabled(!busy && !in);
    const authloop_user *u = in ? authloop_current_user(client_) : nullptr;
    QString id = u ? QString::fromUtf8(authloop_user_id(u)) : QString();
    QString name = u && authloop_user_name(u) ? QString::fromUtf8(authloop_user_name(u)) : id;
    QString text = id.isEmpty() ? QString("Not signed in")
                   : name != id ? QString("Signed in as %1 (%2)").arg(name, id)
                                : QString("Signed in as %1").arg(id);
    if (who_->text() != text) {
      who_->setText(text);
      say("user", id.isEmpty() ? QString("(none)") : id);
    }
    if (in && !tick_.isActive())
      tick_.start();
    else if (!in)
      tick_.stop(); /* no token: nothing ticks */
    countdown();
  }

  void countdown() {
    long long ms =
        client_ && authloop_is_logged_in(client_) ? authloop_token_expires_in_ms(client_) : 0;
    if (!client_ || !authloop_is_logged_in(client_))
      countdown_->setText("No token");
    else if (ms < 0)
      countdown_->setText("The token never expires");
    else
      countdown_->setText(QString("Token expires in %1:%2:%3")
                              .arg(ms / 3600000)
                              .arg(ms / 60000 % 60, 2, 10, QChar('0'))
                              .arg(ms / 1000 % 60, 2, 10, QChar('0')));
  }

  int makeClient() {
    authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
    int p = provider_->currentIndex();
    QByteArray url = url_->text().toUtf8(), client, admin;
    if (client_)
      authloop_client_free(client_);
    client_ = nullptr;
    o.provider = kProviders[p];
    o.base_url = url.constData();
    if (p == 2) { /* the reference server serves CometChat's two hosts as path prefixes */
      client = url + "/cometchat/client/v3.0";
      admin = url + "/cometchat/admin/v3.0";
      o.base_url = client.constData();
      o.admin_url = admin.constData();
      o.app_id = app_;
    }
    int rc = authloop_client_new(ctx_, &o, &client_);
    if (rc)
      return rc;
    for (int t = 0; t < AUTHLOOP_EV__COUNT; t++)
      authloop_on(client_, static_cast<authloop_event_type>(t), &Window::onEvent, this);
    return 0;
  }

  void onLogin() {
    QByteArray code = code_->text().toUtf8(), user = user_->text().toUtf8(),
               secret = secret_->text().toUtf8();
    int rc;
    setError(QString());
    if ((rc = makeClient()) == 0) {
      switch (provider_->currentIndex()) {
      case 0:
        rc = authloop_login_code(client_, code.constData());
        break;
      case 1:
        rc = authloop_login_local(client_, user.constData(), secret.constData(), nullptr);
        break;
      default:
        rc = authloop_login_key(client_, user.constData(), secret.constData());
      }
    }
    if (rc) {
      setStatus("Cannot log in");
      setError(QString("%1 (%2)").arg(authloop_strerror(rc), authloop_err_name(rc)));
      if (!test_.isEmpty())
        finish(1);
      return;
    }
    setStatus("Logging in…");
    update();
  }

  void onLogout() {
    int rc;
    setError(QString());
    if ((rc = authloop_logout(client_)) != 0)
      setError(authloop_strerror(rc));
    else
      loggingOut_ = true;
    update();
  }

  void activity() {
    if (client_ && authloop_is_logged_in(client_))
      authloop_touch(client_);
  }

  static void onEvent(authloop_client *, const authloop_event *ev, void *ud) {
    static_cast<Window *>(ud)->onAuthloop(ev);
  }

  void onAuthloop(const authloop_event *ev) {
    if (ev->type == AUTHLOOP_EV_LOGOUT)
      loggingOut_ = false;
    update();
    switch (ev->type) {
    case AUTHLOOP_EV_LOGIN_ATTEMPT:
      if (!ev->success) {
        setStatus("Login failed");
        setError(
            QString("%1 (%2). Check the server, the provider and what you typed, then try "
                    "again.")
                .arg(QString::fromUtf8(ev->message ? ev->message : authloop_strerror(ev->error)),
                     authloop_err_name(ev->error)));
        if (test_ == "error")
          QTimer::singleShot(0, this, [this] { reportError(); });
        else if (!test_.isEmpty())
          finish(1);
        break;
      }
      setStatus("Logged in");
      code_->clear();
      secret_->clear();
      if (test_ == "login")
        QTimer::singleShot(0, this, [this] { shootAndLogOut(); });
      else if (test_ == "error")
        finish(1);
      break;
    case AUTHLOOP_EV_LOGOUT:
      setStatus(ev->error ? "Logged out (the server did not confirm)" : "Logged out");
      if (test_ == "login")
        QTimer::singleShot(0, this, [this] { measureIdle(); });
      break;
    case AUTHLOOP_EV_TOKEN_REFRESHED:
      setStatus("Tokens refreshed");
      break;
    case AUTHLOOP_EV_SESSION_EXPIRED:
      setStatus("Session ended");
      setError(QString::fromUtf8(ev->message ? ev->message : authloop_strerror(ev->error)));
      break;
    default:
      break;
    }
  }

  /* ---- self-test ---- */
  void shootAndLogOut() {
    say("countdown", countdown_->text());
    if (!screenshot_.isEmpty())
      say("screenshot", grab().save(screenshot_, "PNG") ? QString("saved") : QString("FAILED"));
    logout_->click();
  }

  /* After the logout nothing is due: the event loop should sleep. Its
   * wake-ups are counted for 5 s (the measuring timer's own is one). */
  void measureIdle() {
    QAbstractEventDispatcher *d = QAbstractEventDispatcher::instance();
    auto count = std::make_shared<int>(0);
    auto conn = QObject::connect(d, &QAbstractEventDispatcher::awake, this, [count] { ++*count; });
    QTimer::singleShot(5000, this, [this, count, conn] {
      QObject::disconnect(conn);
      std::printf("idle wake-ups in 5 s: %d\n", *count);
      std::fflush(stdout);
      finish(0);
    });
  }

  void reportError() {
    std::printf("error shown: %s, %s, window width %d\n",
                error_->styleSheet().contains("#c01c28") && error_->isVisible() ? "in red"
                                                                                : "plain",
                error_->wordWrap() ? "wrapped" : "not wrapped", width());
    std::fflush(stdout);
    finish(0);
  }

  void finish(int code) {
    exit_ = code;
    if (ctx_ && !closing_) {
      closing_ = true;
      authloop_ctx_close(ctx_, &Window::onClosed, this);
    }
  }
  static void onClosed(authloop_ctx *, void *ud) {
    Window *w = static_cast<Window *>(ud);
    w->ctx_ = nullptr;
    w->client_ = nullptr;
    w->tick_.stop();
    QTimer::singleShot(0, qApp, [] { QCoreApplication::quit(); });
  }

  uv_loop_t *loop_;
  authloop_ctx *ctx_ = nullptr;
  authloop_client *client_ = nullptr;
  std::unique_ptr<AuthloopQt> adapter_;
  const char *app_;
  QString test_, screenshot_;
  QTimer tick_;
  QComboBox *provider_ = nullptr;
  QLineEdit *url_ = nullptr, *code_ = nullptr, *user_ = nullptr, *secret_ = nullptr;
  QFormLayout *form_ = nullptr;
  QLabel *who_ = nullptr, *error_ = nullptr, *status_ = nullptr, *countdown_ = nullptr;
  QPushButton *login_ = nullptr, *logout_ = nullptr;
  bool loggingOut_ = false, closing_ = false;
  int exit_ = 0;
};

int usage(const char *why, const char *arg) {
  std::fprintf(stderr, "qt-login: %s%s\n", why, arg ? arg : "");
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  const char *url = "https://127.0.0.1:8443", *ca = nullptr, *code = nullptr, *app = "app1",
             *shot = nullptr;
  QString test;
  int qargc = 1;
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (std::strncmp(argv[i], "--self-test=", 12) == 0) {
      test = QString::fromUtf8(argv[i] + 12);
      if (test != "login" && test != "error")
        return usage("no such self-test: ", argv[i] + 12);
      continue;
    }
    if (!v)
      return usage("needs a value: ", argv[i]);
    if (!std::strcmp(argv[i], "--url"))
      url = v;
    else if (!std::strcmp(argv[i], "--ca"))
      ca = v;
    else if (!std::strcmp(argv[i], "--code"))
      code = v;
    else if (!std::strcmp(argv[i], "--cometchat-app"))
      app = v;
    else if (!std::strcmp(argv[i], "--screenshot"))
      shot = v;
    else
      return usage("unknown option ", argv[i]);
    i++;
  }
  QApplication qapp(qargc, argv); /* our options are ours */
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc;
  {
    Window w(&loop, QString::fromUtf8(url), ca, app, test,
             shot ? QString::fromUtf8(shot) : QString());
    if (code)
      w.setCode(QString::fromUtf8(code));
    w.show();
    w.start();
    rc = QApplication::exec();
    if (rc == 0)
      rc = w.exitCode();
    std::printf("loop closed: %s\n", w.closedClean() ? "clean" : "NOT clean");
  }
  return rc;
}
