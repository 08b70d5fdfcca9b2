/* SPDX-License-Identifier: MIT */
// The public header compiles as C++ (with -Wextra: its _INIT macros make no
// warning there) and its names link; the _INIT macros set the size and zero
// the rest.
#include <authloop.h>

int main() {
  authloop_ctx_options co = AUTHLOOP_CTX_OPTIONS_INIT;
  authloop_client_options o = AUTHLOOP_CLIENT_OPTIONS_INIT;
  authloop_preauth_options p = AUTHLOOP_PREAUTH_OPTIONS_INIT;
  if (co.size != sizeof(co) || co.ca_file || co.timeout_ms || o.size != sizeof(o) || o.provider ||
      o.session_key || p.size != sizeof(p))
    return 1;
  return authloop_strerror(AUTHLOOP_EINVAL) != nullptr && authloop_err_name(0) != nullptr ? 0 : 1;
}
