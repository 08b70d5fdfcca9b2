#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""authloop from Python: an AuthloopSession (GObject Introspection, PyGObject)
on a GLib main loop. Logs in with a one-time code, shows who is signed in
and for how long, refreshes the tokens, logs out.

    scripts/python-demo.sh          (starts a local reference server and runs this)
    login.py URL CODE [CA_FILE]     (needs GI_TYPELIB_PATH and LD_LIBRARY_PATH
                                     to reach authloop's build when not installed)
"""
import sys

import gi

gi.require_version("Authloop", "0.2")
from gi.repository import Authloop, GLib  # noqa: E402


def main(url, code, ca_file=None):
    loop = GLib.MainLoop()
    session = Authloop.Session(provider="gateway", base_url=url, ca_file=ca_file)
    session.init(None)  # a bad option is a GLib.Error here
    status = {"code": 0}

    # state as properties: bind them to widgets, or watch them
    session.connect("notify::user-id",
                    lambda s, _p: print(f"signed in as: {s.props.user_id or '(nobody)'}"))
    session.connect("login-attempt", lambda s, ok, err, msg:
                    print("loginAttempt:", "success" if ok else f"failed ({msg})"))
    session.connect("token-refreshed", lambda s, lifetime:
                    print(f"tokens refreshed, they live {lifetime} s"))
    session.connect("logout", lambda s, err: print("logged out"))

    def fail(what, error):
        print(f"{what} failed: {error.message}", file=sys.stderr)
        status["code"] = 1
        loop.quit()

    def logged_out(s, result):
        try:
            s.logout_finish(result)
        except GLib.Error as e:
            return fail("logout", e)
        loop.quit()

    def refreshed(s, result):
        try:
            s.refresh_finish(result)
        except GLib.Error as e:
            return fail("refresh", e)
        s.logout_async(None, logged_out)

    def logged_in(s, result):
        try:
            s.login_code_finish(result)
        except GLib.Error as e:
            return fail("login", e)
        print(f"the token expires in {s.props.expires_in} s")
        s.refresh_async(None, refreshed)

    session.login_code_async(code, None, logged_in)
    loop.run()
    return status["code"]


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
