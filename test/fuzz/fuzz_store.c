/* SPDX-License-Identifier: MIT */
/* libFuzzer: any bytes as a session file, with and without a key, read both
 * from memory and through the file path (open, checks, bounded read). A
 * refused file keeps nothing; an accepted one has every number in range,
 * or is a logout's mark, which holds no secret. */
#include "store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  snprintf(path, sizeof(path), "/tmp/authloop-fuzz-store-%d", (int)getpid());
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
  authloop__stored s;
  int k;
  for (k = 0; k < 2; k++) {
    int rc = authloop__store_decode(data, size, k ? key : NULL, &s);
    if (rc != 0 && (s.access_token || s.user))
      abort();
    if (rc == 0 && s.ended && (s.access_token || s.refresh_token || s.user))
      abort();
    if (rc == 0 && !s.ended &&
        (s.lifetime_s == 0 || s.lifetime_s < -1 || s.last_activity < 0 ||
         (s.expires_at == -1) != (s.lifetime_s == -1)))
      abort();
    authloop__stored_clear(&s);
  }
  { /* the file path: written 0600, read back with every check */
    unsigned char *back;
    size_t len;
    const char *why;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      if (write(fd, data, size) != (ssize_t)size)
        abort();
      close(fd);
      if (authloop__store_read(path, &back, &len, &why) == 0) {
        if (len != size || (size && memcmp(back, data, size) != 0))
          abort();
        authloop__wipe_free(back, len);
      }
    }
  }
  return 0;
}
