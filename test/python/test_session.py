#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""AuthloopSession from Python through GObject Introspection (PyGObject), on
a GLib main loop, against the reference server over TLS: the typelib loads;
a login sees login-attempt and the properties change with notify; a refresh
sees token-refreshed; a logout sees logout; failures are GLib.Error in the
authloop-error-quark domain with authloop's codes; a cancelled login fails
with G_IO_ERROR_CANCELLED and leaves nobody logged in; a session whose last
reference goes while its login is in flight answers the call and goes.
Prints TAP. Env: AUTHLOOP_NODE, AUTHLOOP_SERVER, GI_TYPELIB_PATH."""
import gc
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.request

import gi

gi.require_version("Authloop", "0.2")
gi.require_version("Gio", "2.0")
from gi.repository import Authloop, Gio, GLib  # noqa: E402

checks = []


def check(ok, what):
    checks.append((bool(ok), what))
    print(f"{'ok' if ok else 'not ok'} {len(checks)} - {what}", flush=True)


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="authloop-py-")
        self.proc = subprocess.Popen(
            [os.environ.get("AUTHLOOP_NODE", "node"), os.environ["AUTHLOOP_SERVER"],
             "--port", "0", "--state-dir", self.dir, "--stdin-lifeline"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready = json.loads(self.proc.stdout.readline())
        self.url = f"https://127.0.0.1:{ready['port']}"
        self.ca = ready["ca"]
        self.tls = ssl.create_default_context(cafile=self.ca)

    def control(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.tls) as r:
            return json.loads(r.read() or b"null")

    def code(self, user, ttl=0):
        body = {"userId": user}
        if ttl:
            body["tokenTtl"] = ttl
        return self.control("/__test/codes", body)["authorizationCode"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_until(loop, done, seconds=10):
    """Runs the main loop until done() or the time runs out (then False)."""
    timed_out = []

    def on_timeout():
        timed_out.append(True)
        loop.quit()
        return GLib.SOURCE_REMOVE

    tag = GLib.timeout_add(seconds * 1000, on_timeout)
    while not done() and not timed_out:
        loop.get_context().iteration(True)
    if not timed_out:
        GLib.source_remove(tag)
    return done()


def main():
    server = Server()
    loop = GLib.MainLoop()
    try:
        print("1..14", flush=True)
        # the typelib: a bad provider is a GLib.Error of authloop's domain
        try:
            Authloop.Session.new("no-such-dialect", server.url)
            check(False, "an unknown provider is refused")
        except GLib.Error as e:
            check(e.domain == "authloop-error-quark" and
                  e.code == int(Authloop.Error.ENOPROVIDER),
                  f"an unknown provider is refused: {e.domain} {e.code} {e.message}")

        s = Authloop.Session(provider="gateway", base_url=server.url, ca_file=server.ca)
        s.init(None)
        seen = []
        for name in ("login-attempt", "logout", "token-refreshed", "state-changed"):
            s.connect(name, lambda _s, *args, n=name: seen.append((n, args)))
        notified = []
        s.connect("notify::logged-in", lambda obj, _p: notified.append(obj.props.logged_in))
        check(s.props.state == Authloop.SessionState.LOGGED_OUT and not s.props.logged_in,
              "a new session is logged out")

        results = []
        s.login_code_async(server.code("py-user", 3600), None,
                           lambda src, res: results.append(src.login_code_finish(res)))
        run_until(loop, lambda: results)
        check(results == [True], "login_code_async finished TRUE")
        attempts = [a for n, a in seen if n == "login-attempt"]
        check(attempts and attempts[0][0] is True and attempts[0][1] == 0,
              f"login-attempt said success: {attempts}")
        check(notified == [True] and s.props.user_id == "py-user" and s.props.expires_in > 3500,
              f"notify::logged-in, user-id {s.props.user_id}, expires-in {s.props.expires_in}")

        results.clear()
        s.refresh_async(None, lambda src, res: results.append(src.refresh_finish(res)))
        run_until(loop, lambda: results)
        check(results == [True] and any(n == "token-refreshed" for n, _ in seen),
              "refresh_async finished TRUE and token-refreshed came")

        results.clear()
        s.logout_async(None, lambda src, res: results.append(src.logout_finish(res)))
        run_until(loop, lambda: results)
        check(results == [True] and any(n == "logout" for n, _ in seen) and
              not s.props.logged_in and s.props.user_id is None and notified == [True, False],
              "logout_async finished TRUE, logout came, logged-in went FALSE")

        # a wrong code: the GError carries authloop's code
        errors = []

        def on_failed(src, res):
            try:
                src.login_code_finish(res)
            except GLib.Error as e:
                errors.append(e)
        s.login_code_async("not-a-code", None, on_failed)
        run_until(loop, lambda: errors)
        check(errors and errors[0].domain == "authloop-error-quark" and errors[0].code < 0,
              f"a refused code is a GLib.Error: {errors and errors[0].message}")

        # cancelled in flight (the server answers after a second)
        server.control("/__test/faults", {"route": "/auth/login", "delayMs": 1000})
        errors.clear()
        cancellable = Gio.Cancellable()
        s.login_code_async(server.code("py-user"), cancellable, on_failed)
        GLib.timeout_add(100, lambda: cancellable.cancel() or GLib.SOURCE_REMOVE)
        run_until(loop, lambda: errors)
        check(errors and errors[0].matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED) and
              not s.props.logged_in and s.props.state == Authloop.SessionState.LOGGED_OUT,
              f"a cancelled login: {errors and errors[0].message}, state {s.props.state}")

        # argument checks are GObject's: a wrong type is refused, nothing runs
        try:
            s.login_code_async(42, None, None)
            check(False, "a code that is not a string is refused")
        except TypeError:
            check(True, "a code that is not a string is refused")

        # the last reference dropped while a login is in flight: the task
        # holds the session until the call is answered, then it goes
        server.control("/__test/faults", {"route": "/auth/login", "delayMs": 300})
        answered = []
        t = Authloop.Session(provider="gateway", base_url=server.url, ca_file=server.ca)
        t.login_code_async(server.code("py-user-2"), None,
                           lambda src, res: answered.append(src.login_code_finish(res)))
        weak = []
        t.weak_ref(lambda: weak.append(True))
        del t
        gc.collect()
        check(not weak, "a session with a call in flight is kept by the call")
        run_until(loop, lambda: answered)
        gc.collect()
        run_until(loop, lambda: weak, 5)
        check(answered == [True] and weak == [True],
              f"the call was answered ({answered}) and the session went ({weak})")
        del s
        gc.collect()
        # the ctxs' closes finish from the main context: a few turns, then nothing left
        ctx = loop.get_context()
        for _ in range(50):
            ctx.iteration(False)
        check(not ctx.pending(), "nothing of authloop's is left pending on the main context")

        # the sample a newcomer runs (samples/python/login.py), as a program
        sample = os.path.join(os.path.dirname(__file__), "..", "..", "samples", "python", "login.py")
        out = subprocess.run([sys.executable, sample, server.url, server.code("sample-user"),
                              server.ca], capture_output=True, text=True, timeout=60)
        lines = out.stdout.splitlines()
        check(out.returncode == 0 and lines[:2] == ["signed in as: sample-user",
                                                    "loginAttempt: success"] and
              "logged out" in lines and "tokens refreshed, they live 3600 s" in lines,
              f"samples/python/login.py: exit {out.returncode}, {lines} {out.stderr[-300:]}")
    finally:
        server.close()
    failed = sum(1 for ok, _ in checks if not ok)
    print(f"# {len(checks) - failed} passed, {failed} failed", flush=True)
    return 1 if failed or len(checks) != 14 else 0


if __name__ == "__main__":
    sys.exit(main())
