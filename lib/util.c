/* Helpers for secrets: copies that are wiped before they are released. */
#include "internal.h"

#include <ctype.h>
#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

char *authloop__secret_dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

void authloop__secret_free(char *s) {
  if (!s)
    return;
  mbedtls_platform_zeroize(s, strlen(s));
  free(s);
}

/* jansson frees its strings without wiping them; a parsed response holds
 * tokens, so wipe the tree in place before the last reference goes. */
static void json_wipe(json_t *j) {
  const char *key;
  json_t *v;
  size_t i;
  if (!j || j->refcount > 1)
    return; /* still shared: whoever drops it last wipes it */
  if (json_is_string(j)) {
    mbedtls_platform_zeroize((char *)json_string_value(j), json_string_length(j));
  } else if (json_is_object(j)) {
    json_object_foreach(j, key, v) json_wipe(v);
  } else if (json_is_array(j)) {
    json_array_foreach(j, i, v) json_wipe(v);
  }
}

void authloop__json_wipe_decref(json_t *j) {
  json_wipe(j);
  json_decref(j);
}

int authloop__has_space(const char *s) {
  for (; *s; s++)
    if (isspace((unsigned char)*s))
      return 1;
  return 0;
}
