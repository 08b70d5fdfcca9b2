/* SPDX-License-Identifier: MIT */
// The public header compiles as C++ and its names link.
#include <authloop.h>

int main() {
  return authloop_strerror(AUTHLOOP_EINVAL) != nullptr && authloop_err_name(0) != nullptr ? 0 : 1;
}
