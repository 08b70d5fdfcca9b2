/* libFuzzer: any bytes as a session file, with and without a key. A refused
 * file keeps nothing; an accepted one has every number in range. */
#include "store.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
  authloop__stored s;
  int k;
  for (k = 0; k < 2; k++) {
    int rc = authloop__store_decode(data, size, k ? key : NULL, &s);
    if (rc != 0 && (s.access_token || s.user))
      abort();
    if (rc == 0 && (s.lifetime_s == 0 || s.lifetime_s < -1 || s.last_activity < 0 ||
                    (s.expires_at == -1) != (s.lifetime_s == -1)))
      abort();
    authloop__stored_clear(&s);
  }
  return 0;
}
