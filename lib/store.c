/* The persisted session (docs/session-file.md).
 *
 * File: "ALS1", version (1), flags (bit 0: encrypted), then either the JSON
 * payload, or a 12-byte nonce, the AES-256-GCM ciphertext and its 16-byte tag,
 * with the 6 header bytes as additional data. Times in the payload are wall
 * clock milliseconds, so they survive a reboot.
 *
 * Loading is synchronous (client creation must know at once whether a user is
 * logged in) and bounded to 64 KiB. Writes and deletes run on libuv's thread
 * pool, one at a time per path and in order: the newest pending operation
 * replaces an older one that has not started. Each write is atomic: a
 * temporary file (mode 0600), fsync, rename, fsync of the directory. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_MAGIC          "ALS1"
#define STORE_VERSION        1
#define STORE_FLAG_ENCRYPTED 1
#define STORE_HEADER         6
#define STORE_NONCE          12
#define STORE_TAG            16
#define STORE_MAX_BYTES      (64 * 1024)

typedef enum { OP_NONE, OP_WRITE, OP_DELETE } store_op;

typedef struct {
  store_op op;
  unsigned char *data; /* OP_WRITE: the file's bytes, wiped when done */
  size_t len;
} store_job;

/* One path with a write or delete under way. */
typedef struct {
  authloop__link link; /* in ctx->stores */
  authloop_ctx *ctx;
  char *path;
  uv_work_t work;
  store_job current, next;
  int error; /* errno of the current job, 0 if it worked */
} store_slot;

static void job_clear(store_job *j) {
  if (j->data) {
    mbedtls_platform_zeroize(j->data, j->len);
    free(j->data);
  }
  memset(j, 0, sizeof(*j));
}

/* ---- encoding ----------------------------------------------------------------- */

static int gcm(int encrypt, const unsigned char key[32], const unsigned char *nonce,
               const unsigned char *aad, const unsigned char *in, size_t len, unsigned char *out,
               unsigned char *tag) {
  mbedtls_gcm_context g;
  int rc;
  mbedtls_gcm_init(&g);
  rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 256);
  if (rc == 0 && encrypt)
    rc = mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, len, nonce, STORE_NONCE, aad,
                                   STORE_HEADER, in, out, STORE_TAG, tag);
  else if (rc == 0)
    rc = mbedtls_gcm_auth_decrypt(&g, len, nonce, STORE_NONCE, aad, STORE_HEADER, tag, STORE_TAG,
                                  in, out);
  mbedtls_gcm_free(&g);
  return rc;
}

int authloop__store_encode(const authloop_client *c, authloop__rng *rng, unsigned char **out,
                           size_t *len) {
  const authloop__session *s = &c->session;
  const authloop__timing *t = &c->timing;
  uint64_t now_boot = authloop__boot_ms(), now_wall = authloop__wall_ms();
  long long expires_at =
      t->expires_at == AUTHLOOP__NEVER
          ? -1 /* never expires */
          : (long long)now_wall + ((long long)t->expires_at - (long long)now_boot);
  long long last = (long long)now_wall - ((long long)now_boot - (long long)t->last_activity);
  json_t *root;
  char *payload;
  size_t n, total;
  unsigned char *buf;
  int rc = 0;

  root = json_pack("{s:i, s:s, s:s, s:O, s:s, s:s, s:s, s:I, s:I, s:I}", "v", STORE_VERSION,
                   "provider", c->provider->name, "baseUrl", c->base_url, "user", s->user->obj,
                   "accessToken", s->access_token, "idToken", s->id_token ? s->id_token : "",
                   "refreshToken", s->refresh_token ? s->refresh_token : "", "lifetime",
                   (json_int_t)s->expires_in, "expiresAt", (json_int_t)expires_at, "lastActivity",
                   (json_int_t)last);
  if (!root)
    return AUTHLOOP_ENOMEM;
  payload = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  authloop__json_wipe_decref(root);
  if (!payload)
    return AUTHLOOP_ENOMEM;
  n = strlen(payload);
  total = STORE_HEADER + (c->has_session_key ? STORE_NONCE + n + STORE_TAG : n);
  if (total > STORE_MAX_BYTES || !(buf = malloc(total))) {
    authloop__secret_free(payload);
    return total > STORE_MAX_BYTES ? AUTHLOOP_ETOOLARGE : AUTHLOOP_ENOMEM;
  }
  memcpy(buf, STORE_MAGIC, 4);
  buf[4] = STORE_VERSION;
  buf[5] = c->has_session_key ? STORE_FLAG_ENCRYPTED : 0;
  if (!c->has_session_key) {
    memcpy(buf + STORE_HEADER, payload, n);
  } else {
    unsigned char *nonce = buf + STORE_HEADER, *ct = nonce + STORE_NONCE;
    if (authloop__random(rng, nonce, STORE_NONCE) != 0 ||
        gcm(1, c->session_key, nonce, buf, (unsigned char *)payload, n, ct, ct + n) != 0)
      rc = AUTHLOOP_ENOMEM;
  }
  authloop__secret_free(payload);
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf;
  *len = total;
  return 0;
}

static const char *str_field(json_t *root, const char *key, int allow_empty) {
  json_t *v = json_object_get(root, key);
  if (!json_is_string(v) || (!allow_empty && json_string_length(v) == 0))
    return NULL;
  return json_string_value(v);
}

static int decode_payload(authloop_client *c, json_t *root) {
  json_t *user = json_object_get(root, "user"), *v;
  json_int_t lifetime, expires_at, last;
  const char *access = str_field(root, "accessToken", 0), *id = str_field(root, "idToken", 1);
  const char *refresh = str_field(root, "refreshToken", 1);
  const char *provider = str_field(root, "provider", 0), *base = str_field(root, "baseUrl", 0);
  uint64_t now_boot = authloop__boot_ms(), now_wall = authloop__wall_ms();
  authloop__session s = {0};
  int rc;

  if (!json_is_integer(v = json_object_get(root, "v")) || json_integer_value(v) != STORE_VERSION)
    return AUTHLOOP_EPROTO;
  if (!provider || strcmp(provider, c->provider->name) != 0 || !base ||
      strcmp(base, c->base_url) != 0)
    return AUTHLOOP_EINVAL; /* another backend's session */
  if (!json_is_object(user) || !access || !id || !refresh)
    return AUTHLOOP_EPROTO;
  lifetime = json_integer_value(json_object_get(root, "lifetime"));
  expires_at = json_integer_value(json_object_get(root, "expiresAt"));
  last = json_integer_value(json_object_get(root, "lastActivity"));
  if ((lifetime <= 0 && lifetime != AUTHLOOP__NO_EXPIRY) || lifetime > 10LL * 366 * 24 * 3600 ||
      (expires_at <= 0 && expires_at != -1) || (expires_at == -1) != (lifetime < 0) || last < 0)
    return AUTHLOOP_EPROTO;

  s.access_token = authloop__secret_dup(access);
  s.id_token = *id ? authloop__secret_dup(id) : NULL;
  s.refresh_token = *refresh ? authloop__secret_dup(refresh) : NULL;
  s.expires_in = (long)lifetime;
  if (!s.access_token || (*id && !s.id_token) || (*refresh && !s.refresh_token)) {
    authloop__session_clear(&s);
    return AUTHLOOP_ENOMEM;
  }
  if ((rc = c->provider->make_user(json_incref(user), &s.user)) != 0) {
    authloop__session_clear(&s);
    return rc;
  }
  c->session = s;
  /* wall clock -> boot clock (boot_ms carries an offset: never underflows) */
  if (expires_at == -1) {
    c->timing.expires_at = c->timing.refresh_due = AUTHLOOP__NEVER;
    c->timing.last_activity =
        (uint64_t)last < now_wall ? now_boot - (now_wall - (uint64_t)last) : now_boot;
  } else if ((uint64_t)expires_at > now_wall) {
    c->timing.expires_at = now_boot + ((uint64_t)expires_at - now_wall);
    c->timing.refresh_due = authloop__refresh_due(c->timing.expires_at - (uint64_t)lifetime * 1000u,
                                                  (uint64_t)lifetime * 1000u, c->margin_ms,
                                                  authloop__random_u32(&c->ctx->rng));
    c->timing.last_activity =
        (uint64_t)last < now_wall ? now_boot - (now_wall - (uint64_t)last) : now_boot;
  } else {
    /* the access token died while we were away: refresh on first activity */
    c->timing.expires_at = now_boot;
    c->timing.stale = 1;
    c->timing.last_activity = 0;
  }
  c->token_gen++;
  return 0;
}

int authloop__store_decode(authloop_client *c, const unsigned char *data, size_t len) {
  unsigned char *plain = NULL;
  const unsigned char *payload;
  size_t n;
  json_t *root;
  int rc, encrypted;
  if (len < STORE_HEADER || memcmp(data, STORE_MAGIC, 4) != 0 || data[4] != STORE_VERSION ||
      (data[5] & ~STORE_FLAG_ENCRYPTED))
    return AUTHLOOP_EPROTO;
  encrypted = data[5] & STORE_FLAG_ENCRYPTED;
  /* a plain file where a key is configured would let anyone plant a session */
  if (encrypted != c->has_session_key)
    return AUTHLOOP_EINVAL;
  payload = data + STORE_HEADER;
  n = len - STORE_HEADER;
  if (encrypted) {
    if (n < STORE_NONCE + STORE_TAG)
      return AUTHLOOP_EPROTO;
    n -= STORE_NONCE + STORE_TAG;
    if (!(plain = malloc(n + 1)))
      return AUTHLOOP_ENOMEM;
    if (gcm(0, c->session_key, payload, data, payload + STORE_NONCE, n, plain,
            (unsigned char *)payload + STORE_NONCE + n) != 0) {
      free(plain);
      return AUTHLOOP_EREJECTED; /* wrong key, or the file was changed */
    }
    payload = plain;
  }
  root = json_loadb((const char *)payload, n, JSON_REJECT_DUPLICATES, NULL);
  if (plain) {
    mbedtls_platform_zeroize(plain, n);
    free(plain);
  }
  if (!json_is_object(root)) {
    authloop__json_wipe_decref(root);
    return AUTHLOOP_EPROTO;
  }
  rc = decode_payload(c, root);
  authloop__json_wipe_decref(root);
  return rc;
}

static const char *decode_problem(int rc) {
  switch (rc) {
  case AUTHLOOP_EINVAL:
    return "it belongs to another backend or key setting";
  case AUTHLOOP_EREJECTED:
    return "it does not decrypt: wrong key, or the file was changed";
  case AUTHLOOP_ENOMEM:
    return "out of memory";
  default:
    return "it is truncated or malformed";
  }
}

int authloop__store_load(authloop_client *c) {
  unsigned char *buf;
  struct stat st;
  ssize_t got;
  size_t len = 0;
  int fd, rc;
  fd = open(c->session_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno != ENOENT)
      authloop__log(c->ctx, AUTHLOOP_LOG_WARN, "session file %s: %s; starting logged out",
                    c->session_path, strerror(errno));
    return errno == ENOENT ? 0 : AUTHLOOP_ESTORE;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STORE_MAX_BYTES) {
    authloop__log(c->ctx, AUTHLOOP_LOG_WARN,
                  "session file %s ignored: not a regular file of at most %d bytes",
                  c->session_path, STORE_MAX_BYTES);
    close(fd);
    return AUTHLOOP_EPROTO;
  }
  if (!(buf = malloc((size_t)st.st_size + 1))) {
    close(fd);
    return AUTHLOOP_ENOMEM;
  }
  while (len < (size_t)st.st_size &&
         ((got = read(fd, buf + len, (size_t)st.st_size - len)) > 0 || (got < 0 && errno == EINTR)))
    if (got > 0)
      len += (size_t)got;
  close(fd);
  rc = authloop__store_decode(c, buf, len);
  mbedtls_platform_zeroize(buf, len);
  free(buf);
  if (rc) {
    authloop__log(c->ctx, AUTHLOOP_LOG_WARN, "session file %s ignored: %s; starting logged out",
                  c->session_path, decode_problem(rc));
    return rc;
  }
  authloop__log(c->ctx, AUTHLOOP_LOG_INFO, "session restored from %s%s", c->session_path,
                c->timing.stale ? " (token expired: refreshed on first activity)" : "");
  authloop__set_state(c, AUTHLOOP_STATE_LOGGED_IN);
  authloop__client_evaluate(c, authloop__boot_ms());
  return 0;
}

/* ---- writing, off the loop thread ---------------------------------------------- */

static int sync_dir(const char *path) {
  char *copy = strdup(path);
  int fd, rc = 0;
  if (!copy)
    return ENOMEM;
  fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (fd < 0)
    return errno;
  if (fsync(fd) != 0 && errno != EINVAL)
    rc = errno;
  close(fd);
  return rc;
}

static int write_atomically(const char *path, const unsigned char *data, size_t len) {
  size_t n = strlen(path) + 16, off = 0;
  char *tmp = malloc(n);
  int fd, rc = 0;
  if (!tmp)
    return ENOMEM;
  snprintf(tmp, n, "%s.tmp-XXXXXX", path);
  if ((fd = mkstemp(tmp)) < 0) {
    rc = errno;
    free(tmp);
    return rc;
  }
  if (fchmod(fd, S_IRUSR | S_IWUSR) != 0)
    rc = errno;
  while (!rc && off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w > 0)
      off += (size_t)w;
    else if (errno != EINTR)
      rc = errno;
  }
  if (!rc && fsync(fd) != 0)
    rc = errno;
  if (close(fd) != 0 && !rc)
    rc = errno;
  if (!rc && rename(tmp, path) != 0)
    rc = errno;
  if (rc)
    unlink(tmp);
  else
    rc = sync_dir(path);
  free(tmp);
  return rc;
}

static void work(uv_work_t *w) {
  store_slot *slot = w->data;
  if (slot->current.op == OP_WRITE)
    slot->error = write_atomically(slot->path, slot->current.data, slot->current.len);
  else if (unlink(slot->path) != 0 && errno != ENOENT)
    slot->error = errno;
  else
    slot->error = sync_dir(slot->path);
}

static void after_work(uv_work_t *w, int status);

static void slot_start(store_slot *slot) {
  slot->error = 0;
  slot->work.data = slot;
  if (uv_queue_work(slot->ctx->loop, &slot->work, work, after_work) != 0) {
    /* cannot happen with a valid loop; do it here rather than lose it */
    work(&slot->work);
    after_work(&slot->work, 0);
  }
}

static void after_work(uv_work_t *w, int status) {
  store_slot *slot = w->data;
  authloop_ctx *ctx = slot->ctx;
  (void)status;
  if (slot->error)
    authloop__log(ctx, AUTHLOOP_LOG_WARN, "session file %s: %s failed: %s", slot->path,
                  slot->current.op == OP_WRITE ? "write" : "delete", strerror(slot->error));
  job_clear(&slot->current);
  if (slot->next.op != OP_NONE) {
    slot->current = slot->next;
    memset(&slot->next, 0, sizeof(slot->next));
    slot_start(slot);
    return;
  }
  authloop__list_remove(&slot->link);
  free(slot->path);
  free(slot);
  if (ctx->finalizing && !authloop__store_busy(ctx))
    authloop__ctx_teardown(ctx); /* it was waiting for the disk */
}

static void submit(authloop_client *c, store_op op, unsigned char *data, size_t len) {
  authloop_ctx *ctx = c->ctx;
  store_job job = {op, data, len};
  store_slot *slot = NULL;
  authloop__link *l;
  for (l = ctx->stores.next; l != &ctx->stores; l = l->next) {
    store_slot *s = AUTHLOOP__CONTAINER_OF(l, store_slot, link);
    if (strcmp(s->path, c->session_path) == 0) {
      slot = s;
      break;
    }
  }
  if (slot) { /* busy: this replaces whatever was waiting */
    job_clear(&slot->next);
    slot->next = job;
    return;
  }
  if (!(slot = calloc(1, sizeof(*slot))) || !(slot->path = strdup(c->session_path))) {
    free(slot);
    job_clear(&job);
    authloop__log(ctx, AUTHLOOP_LOG_ERROR, "session file %s: out of memory", c->session_path);
    return;
  }
  slot->ctx = ctx;
  slot->current = job;
  authloop__list_push(&ctx->stores, &slot->link);
  slot_start(slot);
}

void authloop__store_save(authloop_client *c) {
  unsigned char *data;
  size_t len;
  int rc;
  if (!c->session_path)
    return;
  if ((rc = authloop__store_encode(c, &c->ctx->rng, &data, &len)) != 0) {
    authloop__log(c->ctx, AUTHLOOP_LOG_ERROR, "session file %s not written: %s", c->session_path,
                  authloop_strerror(rc));
    return;
  }
  submit(c, OP_WRITE, data, len);
}

void authloop__store_delete(authloop_client *c) {
  if (c->session_path)
    submit(c, OP_DELETE, NULL, 0);
}

int authloop__store_busy(const authloop_ctx *ctx) { return !authloop__list_empty(&ctx->stores); }
