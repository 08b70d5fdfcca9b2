/* SPDX-License-Identifier: MIT */
/* The persisted session (docs/session-file.md).
 *
 * File: "ALS1", version (1), flags (bit 0: encrypted; bit 1: ended), then
 * either the JSON payload, or a 12-byte nonce, the AES-256-GCM ciphertext and
 * its 16-byte tag, with the 6 header bytes as additional data. Times in the
 * payload are wall clock milliseconds, so they survive a reboot. An ended
 * file is the mark a logout leaves: plain JSON {"v", "gen"}, no secrets.
 *
 * Writes and deletes run on libuv's thread pool, one at a time per path and
 * in order: the newest pending operation replaces an older one that has not
 * started. Each write is atomic: a temporary file (mode 0600), fsync, rename,
 * fsync of the directory. */
#include "store.h"

#include "json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_MAGIC          "ALS1"
#define STORE_VERSION        1
#define STORE_FLAG_ENCRYPTED 1
#define STORE_FLAG_ENDED     2
#define STORE_HEADER         6
#define STORE_NONCE          12
#define STORE_TAG            16
#define MAX_LIFETIME_S       (10LL * 366 * 24 * 3600)
/* wall-clock ms after 9999-12-31: not a time this file could hold */
#define MAX_WALL_MS 253402300800000LL

void authloop__stored_clear(authloop__stored *s) {
  free(s->provider);
  free(s->base_url);
  authloop__secret_free(s->access_token);
  authloop__secret_free(s->id_token);
  authloop__secret_free(s->refresh_token);
  authloop__secret_free(s->user);
  memset(s, 0, sizeof(*s));
}

static int encode_ended(const authloop__stored *s, unsigned char **out, size_t *len) {
  char payload[96];
  int n = s->sid > 0 ? snprintf(payload, sizeof(payload), "{\"v\":%d,\"gen\":%lld,\"sid\":%lld}",
                                STORE_VERSION, s->gen, s->sid)
                     : snprintf(payload, sizeof(payload), "{\"v\":%d,\"gen\":%lld}", STORE_VERSION,
                                s->gen);
  unsigned char *buf = malloc(STORE_HEADER + (size_t)n);
  if (!buf)
    return AUTHLOOP_ENOMEM;
  memcpy(buf, STORE_MAGIC, 4);
  buf[4] = STORE_VERSION;
  buf[5] = STORE_FLAG_ENDED;
  memcpy(buf + STORE_HEADER, payload, (size_t)n);
  *out = buf;
  *len = STORE_HEADER + (size_t)n;
  return 0;
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

int authloop__store_encode(const authloop__stored *s, const unsigned char *key, authloop__rng *rng,
                           unsigned char **out, size_t *len) {
  json_t *root, *user;
  char *payload;
  size_t n, total;
  unsigned char *buf;
  int rc = 0, nomem;
  if (s->ended)
    return encode_ended(s, out, len);
  /* the text of a user read from an answer or a file: JSON that jansson
   * reads too (lib/json.c is held to it), unless memory ran out */
  if (!(user = authloop__json_parse(s->user, strlen(s->user), &nomem)))
    return nomem ? AUTHLOOP_ENOMEM : AUTHLOOP_EPROTO;
  root = json_pack("{s:i, s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "v", STORE_VERSION,
                   "provider", s->provider, "baseUrl", s->base_url, "user", user, "accessToken",
                   s->access_token, "idToken", s->id_token ? s->id_token : "", "refreshToken",
                   s->refresh_token ? s->refresh_token : "", "lifetime", (json_int_t)s->lifetime_s,
                   "expiresAt", (json_int_t)s->expires_at, "lastActivity",
                   (json_int_t)s->last_activity, "gen", (json_int_t)s->gen);
  if (!root || (s->sid > 0 && json_object_set_new(root, "sid", json_integer(s->sid)) != 0)) {
    authloop__json_wipe_decref(root);
    return AUTHLOOP_ENOMEM;
  }
  payload = authloop__json_text(root);
  authloop__json_wipe_decref(root);
  if (!payload)
    return AUTHLOOP_ENOMEM;
  n = strlen(payload);
  total = STORE_HEADER + (key ? STORE_NONCE + n + STORE_TAG : n);
  if (total > AUTHLOOP__STORE_MAX_BYTES || !(buf = malloc(total))) {
    authloop__secret_free(payload);
    return total > AUTHLOOP__STORE_MAX_BYTES ? AUTHLOOP_ETOOLARGE : AUTHLOOP_ENOMEM;
  }
  memcpy(buf, STORE_MAGIC, 4);
  buf[4] = STORE_VERSION;
  buf[5] = key ? STORE_FLAG_ENCRYPTED : 0;
  if (!key) {
    memcpy(buf + STORE_HEADER, payload, n);
  } else {
    unsigned char *nonce = buf + STORE_HEADER, *ct = nonce + STORE_NONCE;
    if (authloop__random(rng, nonce, STORE_NONCE) != 0 ||
        gcm(1, key, nonce, buf, (unsigned char *)payload, n, ct, ct + n) != 0)
      rc = AUTHLOOP_ENOMEM;
  }
  authloop__secret_free(payload);
  if (rc) {
    mbedtls_platform_zeroize(buf, total);
    free(buf);
    return rc;
  }
  *out = buf;
  *len = total;
  return 0;
}

static const char *str_field(json_t *root, const char *key, int allow_empty) {
  json_t *v = json_object_get(root, key);
  if (!json_is_string(v) || (!allow_empty && json_string_length(v) == 0) ||
      strlen(json_string_value(v)) != json_string_length(v))
    return NULL;
  return json_string_value(v);
}

static int int_field(json_t *root, const char *key, long long *out) {
  json_t *v = json_object_get(root, key);
  if (!json_is_integer(v))
    return -1;
  *out = (long long)json_integer_value(v);
  return 0;
}

/* An optional count in [0, 2^53] (gen, sid: absent in files of earlier
 * versions): 0 when absent, -1 when present but not that. */
static long long count_field(json_t *root, const char *key) {
  long long v;
  if (!json_object_get(root, key))
    return 0;
  return int_field(root, key, &v) == 0 && v >= 0 && v <= AUTHLOOP__STORE_GEN_MAX ? v : -1;
}

static char *dup_nonempty(const char *s, int *failed) {
  char *p;
  if (!*s)
    return NULL;
  if (!(p = authloop__secret_dup(s)))
    *failed = 1;
  return p;
}

static int decode_payload(json_t *root, authloop__stored *out) {
  json_t *user = json_object_get(root, "user");
  const char *access = str_field(root, "accessToken", 0), *id = str_field(root, "idToken", 1);
  const char *refresh = str_field(root, "refreshToken", 1);
  const char *provider = str_field(root, "provider", 0), *base = str_field(root, "baseUrl", 0);
  long long v, lifetime, expires_at, last, gen = count_field(root, "gen"),
                                           sid = count_field(root, "sid");
  int failed = 0;
  if (int_field(root, "v", &v) != 0 || v != STORE_VERSION || !provider || !base ||
      !json_is_object(user) || !access || !id || !refresh ||
      int_field(root, "lifetime", &lifetime) != 0 ||
      int_field(root, "expiresAt", &expires_at) != 0 || int_field(root, "lastActivity", &last) != 0)
    return AUTHLOOP_EPROTO;
  /* ranges before any arithmetic: a lifetime in (0, 10 years] or -1 (never),
   * an expiry after the epoch and before 10000 AD or -1, both -1 or neither */
  if ((lifetime != -1 && (lifetime <= 0 || lifetime > MAX_LIFETIME_S)) ||
      (expires_at != -1 && (expires_at <= 0 || expires_at > MAX_WALL_MS)) ||
      (expires_at == -1) != (lifetime == -1) || last < 0 || last > MAX_WALL_MS)
    return AUTHLOOP_EPROTO;
  if (gen < 0 || sid < 0)
    return AUTHLOOP_EPROTO;
  memset(out, 0, sizeof(*out));
  out->provider = strdup(provider);
  out->base_url = strdup(base);
  out->access_token = authloop__secret_dup(access);
  out->id_token = dup_nonempty(id, &failed);
  out->refresh_token = dup_nonempty(refresh, &failed);
  out->user = authloop__json_text(user);
  if (!out->user)
    failed = 1;
  out->lifetime_s = lifetime;
  out->expires_at = expires_at;
  out->last_activity = last;
  out->gen = gen;
  out->sid = sid;
  if (failed || !out->provider || !out->base_url || !out->access_token) {
    authloop__stored_clear(out);
    return AUTHLOOP_ENOMEM;
  }
  return 0;
}

int authloop__store_decode(const unsigned char *data, size_t len, const unsigned char *key,
                           authloop__stored *out) {
  unsigned char *plain = NULL;
  const unsigned char *payload;
  size_t n;
  json_t *root;
  int rc, encrypted, nomem;
  memset(out, 0, sizeof(*out));
  if (len < STORE_HEADER || memcmp(data, STORE_MAGIC, 4) != 0 || data[4] != STORE_VERSION ||
      (data[5] & ~(STORE_FLAG_ENCRYPTED | STORE_FLAG_ENDED)) ||
      data[5] == (STORE_FLAG_ENCRYPTED | STORE_FLAG_ENDED))
    return AUTHLOOP_EPROTO;
  if (data[5] & STORE_FLAG_ENDED) { /* a logout's mark: the generation and login only */
    long long v, gen = -1, sid = -1;
    root = authloop__json_parse((const char *)data + STORE_HEADER, len - STORE_HEADER, &nomem);
    if (!root && nomem)
      return AUTHLOOP_ENOMEM; /* not a malformed file */
    if (json_is_object(root) && json_object_get(root, "gen")) {
      gen = count_field(root, "gen");
      sid = count_field(root, "sid");
    }
    rc = json_is_object(root) && int_field(root, "v", &v) == 0 && v == STORE_VERSION && gen >= 0 &&
                 sid >= 0
             ? 0
             : AUTHLOOP_EPROTO;
    json_decref(root);
    if (rc == 0) {
      out->ended = 1;
      out->gen = gen;
      out->sid = sid;
    }
    return rc;
  }
  encrypted = data[5] & STORE_FLAG_ENCRYPTED;
  /* a plain file where a key is configured would let anyone plant a session */
  if (encrypted != (key != NULL))
    return AUTHLOOP_EINVAL;
  payload = data + STORE_HEADER;
  n = len - STORE_HEADER;
  if (encrypted) {
    if (n < STORE_NONCE + STORE_TAG)
      return AUTHLOOP_EPROTO;
    n -= STORE_NONCE + STORE_TAG;
    if (!(plain = malloc(n + 1)))
      return AUTHLOOP_ENOMEM;
    if (gcm(0, key, payload, data, payload + STORE_NONCE, n, plain,
            (unsigned char *)payload + STORE_NONCE + n) != 0) {
      mbedtls_platform_zeroize(plain, n);
      free(plain);
      return AUTHLOOP_EREJECTED; /* wrong key, or the file was changed */
    }
    payload = plain;
  }
  root = authloop__json_parse((const char *)payload, n, &nomem);
  if (plain) {
    mbedtls_platform_zeroize(plain, n);
    free(plain);
  }
  if (!root && nomem)
    return AUTHLOOP_ENOMEM; /* not a malformed file */
  rc = json_is_object(root) ? decode_payload(root, out) : AUTHLOOP_EPROTO;
  authloop__json_wipe_decref(root);
  return rc;
}

/* ---- the installation a session file names ----------------------------------------- */

/* SHA-256 of what names the installation: this machine (its machine id, when
 * there is one), this user, the application (app, may be NULL), and the
 * file's directory, resolved (so "./s" and
 * its absolute path are one installation, and two directories two). Nothing
 * is written; the same in every run. */
int authloop__installation_id(const char *path, const char *app, unsigned char out[32]) {
  static const char label[] = "authloop installation v2";
  static const char *const machine_ids[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};
  mbedtls_md_context_t h;
  char *copy = strdup(path), *dir, *resolved = NULL, machine[64];
  ssize_t got = 0;
  uid_t uid = getuid();
  size_t i;
  int rc = AUTHLOOP_ENOMEM;
  for (i = 0; i < sizeof(machine_ids) / sizeof(machine_ids[0]) && got <= 0; i++) {
    int fd = open(machine_ids[i], O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
      got = read(fd, machine, sizeof(machine));
      close(fd);
    }
  }
  if (copy) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    dir = dirname(copy);
    resolved = realpath(dir, NULL);
    mbedtls_md_init(&h);
    if (mbedtls_md_setup(&h, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 0) == 0 &&
        mbedtls_md_starts(&h) == 0 &&
        mbedtls_md_update(&h, (const unsigned char *)label, sizeof(label)) == 0 &&
        mbedtls_md_update(&h, (const unsigned char *)machine, got > 0 ? (size_t)got : 0) == 0 &&
        mbedtls_md_update(&h, (const unsigned char *)&uid, sizeof(uid)) == 0 &&
        mbedtls_md_update(&h, (const unsigned char *)(app ? app : ""),
                          strlen(app ? app : "") + 1) == 0 &&
        mbedtls_md_update(&h, (const unsigned char *)(resolved ? resolved : dir),
                          strlen(resolved ? resolved : dir) + 1) == 0 &&
        mbedtls_md_update(&h, (const unsigned char *)base, strlen(base)) == 0 &&
        mbedtls_md_finish(&h, out) == 0)
      rc = 0;
    mbedtls_md_free(&h);
  }
  free(resolved);
  free(copy);
  return rc;
}

/* ---- reading ---------------------------------------------------------------------- */

/* A directory where nobody but us (or root) can add or rename files: owned by
 * us or root, and not writable by group or others unless sticky (then only a
 * file's owner may rename or remove it, and the file must be ours). */
static const char dir_nomem[] = "out of memory";

static const char *dir_problem(const char *path) {
  char *copy = strdup(path);
  struct stat st;
  int rc;
  if (!copy)
    return dir_nomem;
  rc = stat(dirname(copy), &st);
  free(copy);
  if (rc != 0 || !S_ISDIR(st.st_mode))
    return "its directory cannot be examined";
  if (st.st_uid != geteuid() && st.st_uid != 0)
    return "its directory belongs to another user";
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    return "its directory is writable by others (and not sticky)";
  return NULL;
}

int authloop__store_read(const char *path, unsigned char **out, size_t *len, const char **why) {
  struct stat st;
  int fd;
  *why = NULL;
  /* O_NONBLOCK: a FIFO planted at the path must not block the loop */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT)
      return AUTHLOOP_ENOENT;
    *why = errno == ELOOP ? "it is a symbolic link" : strerror(errno);
    return AUTHLOOP_ESTORE;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > AUTHLOOP__STORE_MAX_BYTES)
    *why = "not a regular file of at most 64 KiB";
  else if (st.st_uid != geteuid())
    *why = "it belongs to another user";
  else if (st.st_mode & (S_IWGRP | S_IWOTH))
    *why = "it is writable by group or others";
  else
    *why = dir_problem(path);
  if (*why) {
    close(fd);
    return *why == dir_nomem ? AUTHLOOP_ENOMEM : AUTHLOOP_EPERM; /* not "unsafe" */
  }
  return authloop__read_and_close(fd, (size_t)st.st_size, out, len);
}

/* ---- the lock beside the file, and stale temporaries -------------------------------------- */

/* "<path>.lock": flock()ed around every write and delete, and by the session
 * engine around a refresh, so that processes sharing a session file take
 * turns (docs/session-file.md). */
/* The lock file must be ours as the session file must (a lock file another
 * user planted in a shared directory, held forever, would stop every refresh
 * and write): a regular file we own that nobody else can write. -1 with errno
 * EPERM when it is not. */
static int lock_open(const char *path) {
  size_t n = strlen(path) + 6;
  char *name = malloc(n);
  struct stat st;
  int fd;
  if (!name) {
    errno = ENOMEM; /* not "no lock possible" */
    return -1;
  }
  snprintf(name, n, "%s.lock", path);
  fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  free(name);
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
                  (st.st_mode & (S_IWGRP | S_IWOTH)))) {
    close(fd);
    errno = EPERM;
    return -1;
  }
  return fd;
}

int authloop__store_trylock(const char *path, int *fd) {
  int l = lock_open(path), rc;
  if (l < 0 && (errno == EMFILE || errno == ENFILE))
    return 1; /* out of descriptors for now: as busy, looked at again */
  if (l < 0)
    return errno == ENOMEM ? AUTHLOOP_ENOMEM : AUTHLOOP_ESTORE;
  while ((rc = flock(l, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    /* held by another. (ENOLCK is not "busy": a file system without
     * working locks, NFS without its lock daemon, says it every time) */
    int busy = errno == EWOULDBLOCK;
    close(l);
    return busy ? 1 : AUTHLOOP_ESTORE;
  }
  *fd = l;
  return 0;
}

void authloop__store_unlock(int fd) {
  if (fd < 0)
    return;
  flock(fd, LOCK_UN);
  close(fd);
}

/* Temporaries of ours ("<name>.tmp-XXXXXX", owned by us) left by a process
 * that died mid-write: each may hold a whole session. Only under the lock,
 * so that no live writer's file goes. */
static void remove_stale_temporaries(const char *path) {
  char *copy = strdup(path), *copy2 = strdup(path), *dir, *base;
  size_t blen;
  DIR *d;
  struct dirent *e;
  if (!copy || !copy2)
    goto done;
  dir = dirname(copy);
  base = basename(copy2);
  blen = strlen(base);
  if (!(d = opendir(dir)))
    goto done;
  while ((e = readdir(d))) {
    struct stat st;
    if (strlen(e->d_name) != blen + 11 || strncmp(e->d_name, base, blen) != 0 ||
        strncmp(e->d_name + blen, ".tmp-", 5) != 0)
      continue;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        st.st_uid == geteuid())
      unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
done:
  free(copy);
  free(copy2);
}

/* ---- writing, off the loop thread ---------------------------------------------- */

typedef enum { OP_NONE, OP_WRITE, OP_DELETE } store_op;

typedef struct {
  store_op op;
  unsigned char *data; /* OP_WRITE: the file's bytes, wiped when done */
  size_t len;
  int lock_fd;   /* the lock, already held (a refresh's), or -1: take it */
  uint64_t seq;  /* order of submission in the process: the newest wins */
  int tidy;      /* this writer's first job for the path: remove stale temporaries */
  long long sid; /* a session of this login: it never replaces this login's logout mark */
} store_job;

/* A path whose stale temporaries a writer has removed: they come only from
 * a process that died mid-write, so once per ctx and path is enough (the
 * directory may be large, and the scan runs under the lock others wait on). */
typedef struct {
  authloop__link link;
  char path[];
} tidied_path;

/* One path with a write or delete under way, waiting, or held by the loop. */
typedef struct {
  authloop__link link; /* in w->slots */
  authloop__store_writer *w;
  char *path;
  uv_work_t work;
  authloop__timer_entry retry; /* the lock was busy: try again */
  store_job current, next;
  int running;         /* current is on the thread pool */
  int waiting;         /* current waits for another's lock (retry is scheduled) */
  int held;            /* the loop holds the lock: nothing starts */
  int unlocked;        /* the lock was busy past the deadline: current goes without it */
  int short_of_memory; /* the last wait was for memory, not for another's lock */
  uint64_t deadline;   /* while waiting: when to go without the lock */
  int error;           /* errno of the current job, 0 if it worked, EWOULDBLOCK: busy */
  int tidied;          /* the current job removed stale temporaries (under the lock) */
} store_slot;

/* Every writer of the process, so that a load sees what any ctx has queued
 * for its path. The lock guards the lists and the jobs in them; the loop
 * threads of several ctxs and the pool meet here. */
static uv_once_t registry_once = UV_ONCE_INIT;
static uv_mutex_t registry_lock;
static authloop__link registry = {&registry, &registry};
static uint64_t registry_seq;

static void registry_init(void) {
  if (uv_mutex_init(&registry_lock) != 0)
    abort(); /* cannot fail on Linux; nothing sane to do without it */
}

static void lock_registry(void) {
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
}

static void unlock_registry(void) { uv_mutex_unlock(&registry_lock); }

static void job_clear(store_job *j) {
  if (j->data) {
    mbedtls_platform_zeroize(j->data, j->len);
    free(j->data);
  }
  memset(j, 0, sizeof(*j));
  j->lock_fd = -1;
}

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
  /* close-on-exec from its first instant: a program the application starts
   * while this runs on the thread pool must not hold the session's bytes */
  if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
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

/* Whether the file at path is a logout's mark of login sid (read here,
 * on the pool: a mark is plain and small, no key is needed); -1 when memory
 * ran out before that could be told. */
static int marks_login(const char *path, long long sid) {
  unsigned char *data;
  size_t len;
  const char *why;
  authloop__stored st;
  int ended = 0, rc;
  if ((rc = authloop__store_read(path, &data, &len, &why)) != 0)
    return rc == AUTHLOOP_ENOMEM ? -1 : 0;
  if (len > 5 && (data[5] & STORE_FLAG_ENDED)) {
    rc = authloop__store_decode(data, len, NULL, &st);
    ended = rc == AUTHLOOP_ENOMEM ? -1 : rc == 0 && st.sid == sid;
  }
  authloop__wipe_free(data, len);
  return ended;
}

/* On the thread pool: the lock (the job's, or taken here without waiting),
 * tidy, write or delete, release. A busy lock ends the job at once with
 * EWOULDBLOCK: the loop tries again later, no pool thread ever waits. */
static void work(uv_work_t *wk) {
  store_slot *slot = wk->data;
  store_job *j = &slot->current;
  int lock = j->lock_fd, handed = j->lock_fd >= 0, rc = 0, marked;
  j->lock_fd = -1;
  /* busy, or no memory to look: try again later (or, past the deadline, go
   * without); no lock possible (read-only directory, a lock file not ours):
   * go without */
  if (lock < 0 &&
      ((rc = authloop__store_trylock(slot->path, &lock)) == 1 || rc == AUTHLOOP_ENOMEM) &&
      !slot->unlocked) {
    slot->error = EWOULDBLOCK;
    slot->short_of_memory = rc == AUTHLOOP_ENOMEM;
    return;
  }
  if (lock >= 0 && j->tidy) {
    remove_stale_temporaries(slot->path);
    slot->tidied = 1;
  }
  marked = j->op == OP_WRITE && j->sid > 0 ? marks_login(slot->path, j->sid) : 0;
  if (marked < 0 && handed)
    marked = 0; /* a refresh's lock, held since it read the file: no mark came since */
  if (marked < 0 && !slot->unlocked) {
    /* a logout's mark of this login may be there: nothing is written over
     * it now; the write is tried again, as for a busy lock (and past the
     * same deadline, made as before) */
    authloop__store_unlock(lock);
    slot->error = EWOULDBLOCK;
    slot->short_of_memory = 1;
    return;
  }
  if (marked > 0)
    slot->error = 0; /* the login was logged out while this was on its way: the mark stays */
  else if (j->op == OP_WRITE)
    slot->error = write_atomically(slot->path, j->data, j->len);
  else if (unlink(slot->path) != 0 && errno != ENOENT)
    slot->error = errno;
  else
    slot->error = sync_dir(slot->path);
  authloop__store_unlock(lock);
}

static void after_work(uv_work_t *wk, int status);
static void forget_tidied(authloop__store_writer *w, const char *path);

static void slot_start(store_slot *slot) {
  slot->error = 0;
  slot->tidied = 0;
  slot->running = 1;
  slot->work.data = slot;
  if (uv_queue_work(slot->w->loop, &slot->work, work, after_work) != 0) {
    /* cannot happen with a valid loop; do it here rather than lose it */
    work(&slot->work);
    after_work(&slot->work, 0);
  }
}

/* The slot moves on: the next job if nothing holds it, else it waits; an
 * empty slot goes. Called with the registry locked; may unlock it to call
 * the idle callback (then returns 1). */
static int slot_next(store_slot *slot) {
  authloop__store_writer *w = slot->w;
  if (slot->running || slot->held || slot->waiting)
    return 0;
  if (slot->next.op != OP_NONE) {
    slot->current = slot->next;
    memset(&slot->next, 0, sizeof(slot->next));
    slot->next.lock_fd = -1;
    slot->unlocked = 0;
    slot_start(slot);
    return 0;
  }
  authloop__timer_set(w->timer, &slot->retry, AUTHLOOP__NEVER);
  authloop__list_remove(&slot->link);
  free(slot->path);
  free(slot);
  if (authloop__list_empty(&w->slots) && w->idle) {
    unlock_registry();
    w->idle(w->idle_ud);
    return 1;
  }
  return 0;
}

static void slot_next_and_unlock(store_slot *slot) {
  if (!slot_next(slot))
    unlock_registry();
}

/* The lock was busy: the same job again, or a newer one that replaced it
 * meanwhile; past the deadline, without the lock. */
static void on_retry(authloop__timer_entry *e, uint64_t now) {
  store_slot *slot = AUTHLOOP__CONTAINER_OF(e, store_slot, retry);
  lock_registry();
  slot->waiting = 0;
  if (slot->held) { /* the loop took the lock meanwhile: its write comes first */
    unlock_registry();
    return;
  }
  if (slot->next.op != OP_NONE) {
    slot->next.tidy |= slot->current.tidy; /* what it replaces was to tidy */
    job_clear(&slot->current);
    slot->current = slot->next;
    memset(&slot->next, 0, sizeof(slot->next));
    slot->next.lock_fd = -1;
  }
  if (now >= slot->deadline && !slot->unlocked) {
    slot->unlocked = 1;
    authloop__logf(slot->w->log, AUTHLOOP_LOG_WARN,
                   slot->short_of_memory
                       ? "session file %s: out of memory until the deadline; writing as it can"
                       : "session file %s: its lock is held too long by another process; "
                         "writing without it",
                   slot->path);
  }
  slot_start(slot);
  unlock_registry();
}

static void after_work(uv_work_t *wk, int status) {
  store_slot *slot = wk->data;
  uint64_t now;
  (void)status;
  lock_registry();
  slot->running = 0;
  if (slot->error == EWOULDBLOCK) { /* another holds the lock: look again soon */
    now = authloop__boot_ms();
    if (!slot->deadline)
      slot->deadline = authloop__sat_add(now, slot->w->lock_wait_ms);
    slot->waiting = 1;
    if (authloop__timer_set(slot->w->timer, &slot->retry, now + AUTHLOOP__LOCK_RETRY_MS) != 0)
      slot->unlocked = 1, slot->waiting = 0, slot_start(slot); /* no timer: go now */
    unlock_registry();
    return;
  }
  if (slot->error)
    authloop__logf(slot->w->log, AUTHLOOP_LOG_WARN, "session file %s: %s failed: %s", slot->path,
                   slot->current.op == OP_WRITE ? "write" : "delete", strerror(slot->error));
  if (slot->current.tidy && !slot->tidied) /* it went without the lock: the next one tidies */
    forget_tidied(slot->w, slot->path);
  job_clear(&slot->current);
  slot->deadline = 0;
  slot->unlocked = 0;
  slot_next_and_unlock(slot);
}

static store_slot *find(const authloop__store_writer *w, const char *path) {
  const authloop__link *l;
  for (l = w->slots.next; l != &w->slots; l = l->next) {
    store_slot *s = AUTHLOOP__CONTAINER_OF(l, store_slot, link);
    if (strcmp(s->path, path) == 0)
      return s;
  }
  return NULL;
}

static store_slot *slot_for(authloop__store_writer *w, const char *path) {
  store_slot *slot = find(w, path);
  if (slot)
    return slot;
  if (!(slot = calloc(1, sizeof(*slot))) || !(slot->path = strdup(path))) {
    free(slot);
    return NULL;
  }
  slot->w = w;
  slot->current.lock_fd = slot->next.lock_fd = -1;
  authloop__timer_entry_init(&slot->retry, on_retry);
  authloop__list_push(&w->slots, &slot->link);
  return slot;
}

/* Whether this is the writer's first job for path (noted; when the note
 * cannot be made, every job tidies, as before). */
static int first_for(authloop__store_writer *w, const char *path) {
  authloop__link *l;
  tidied_path *t;
  for (l = w->tidied.next; l != &w->tidied; l = l->next)
    if (strcmp(AUTHLOOP__CONTAINER_OF(l, tidied_path, link)->path, path) == 0)
      return 0;
  if ((t = malloc(sizeof(*t) + strlen(path) + 1))) {
    strcpy(t->path, path);
    authloop__list_push(&w->tidied, &t->link);
  }
  return 1;
}

/* path's stale temporaries were not removed after all (no lock): the next
 * job for it tries again. */
static void forget_tidied(authloop__store_writer *w, const char *path) {
  authloop__link *l;
  for (l = w->tidied.next; l != &w->tidied; l = l->next)
    if (strcmp(AUTHLOOP__CONTAINER_OF(l, tidied_path, link)->path, path) == 0) {
      authloop__list_remove(l);
      free(AUTHLOOP__CONTAINER_OF(l, tidied_path, link));
      return;
    }
}

static void submit(authloop__store_writer *w, const char *path, store_job job) {
  store_slot *slot;
  lock_registry();
  job.seq = ++registry_seq;
  job.tidy = first_for(w, path);
  if (!(slot = slot_for(w, path))) {
    unlock_registry();
    authloop__store_unlock(job.lock_fd);
    job.lock_fd = -1;
    job_clear(&job);
    authloop__logf(w->log, AUTHLOOP_LOG_ERROR, "session file %s: out of memory", path);
    return;
  }
  if (job.lock_fd >= 0) { /* the loop held the lock for this: it goes first */
    slot->held = 0;
    /* nothing of this path runs while the loop holds its lock (the refresh
     * waited for that); what waits is older than this write: it goes */
    authloop__timer_set(w->timer, &slot->retry, AUTHLOOP__NEVER);
    slot->waiting = 0;
    job.tidy |= slot->current.tidy | slot->next.tidy; /* what it replaces was to tidy */
    job_clear(&slot->current);
    job_clear(&slot->next);
    slot->deadline = 0;
    slot->unlocked = 0;
    slot->current = job;
    slot_start(slot);
    unlock_registry();
    return;
  }
  job.tidy |= slot->next.tidy;
  job_clear(&slot->next); /* busy or held: this replaces whatever was waiting */
  slot->next = job;
  slot_next_and_unlock(slot);
}

void authloop__store_writer_init(authloop__store_writer *w, uv_loop_t *loop,
                                 const authloop__logger *log, authloop__timer *timer,
                                 uint64_t lock_wait_ms) {
  memset(w, 0, sizeof(*w));
  w->loop = loop;
  w->log = log;
  w->timer = timer;
  w->lock_wait_ms = lock_wait_ms;
  authloop__list_init(&w->slots);
  authloop__list_init(&w->tidied);
  lock_registry();
  authloop__list_push(&registry, &w->writers);
  unlock_registry();
}

void authloop__store_writer_fini(authloop__store_writer *w) {
  lock_registry();
  authloop__list_remove(&w->writers);
  unlock_registry();
  while (!authloop__list_empty(&w->tidied)) {
    authloop__link *l = w->tidied.next;
    authloop__list_remove(l);
    free(AUTHLOOP__CONTAINER_OF(l, tidied_path, link));
  }
}

void authloop__store_write(authloop__store_writer *w, const char *path, unsigned char *data,
                           size_t len, long long sid) {
  store_job job = {OP_WRITE, data, len, -1, 0, 0, sid};
  submit(w, path, job);
}

void authloop__store_delete(authloop__store_writer *w, const char *path) {
  store_job job = {OP_DELETE, NULL, 0, -1, 0, 0, 0};
  submit(w, path, job);
}

int authloop__store_running(const authloop__store_writer *w, const char *path) {
  const store_slot *slot;
  int rc;
  lock_registry();
  slot = find(w, path);
  rc = slot && (slot->running || slot->held || slot->waiting);
  unlock_registry();
  return rc;
}

int authloop__store_hold(authloop__store_writer *w, const char *path) {
  store_slot *slot;
  lock_registry();
  slot = slot_for(w, path);
  if (slot)
    slot->held = 1;
  unlock_registry();
  return slot ? 0 : AUTHLOOP_ENOMEM;
}

void authloop__store_write_locked(authloop__store_writer *w, const char *path, unsigned char *data,
                                  size_t len, int lock_fd, long long sid) {
  store_job job = {OP_WRITE, data, len, lock_fd, 0, 0, sid};
  submit(w, path, job);
}

void authloop__store_unhold(authloop__store_writer *w, const char *path) {
  store_slot *slot;
  lock_registry();
  if (!(slot = find(w, path))) {
    unlock_registry();
    return;
  }
  slot->held = 0;
  if (slot->current.op != OP_NONE && !slot->running && !slot->waiting) {
    slot_start(slot); /* a job the hold stopped before it could start */
    unlock_registry();
    return;
  }
  slot_next_and_unlock(slot);
}

int authloop__store_busy(const authloop__store_writer *w) {
  int rc;
  lock_registry();
  rc = !authloop__list_empty(&w->slots);
  unlock_registry();
  return rc;
}

int authloop__store_pending(const authloop__store_writer *w, const char *path, unsigned char **data,
                            size_t *len) {
  const authloop__link *k, *l;
  const store_job *newest = NULL;
  int rc = 0;
  (void)w; /* every writer of the process counts */
  *data = NULL;
  *len = 0;
  lock_registry();
  for (k = registry.next; k != &registry; k = k->next) {
    const authloop__store_writer *ww = AUTHLOOP__CONTAINER_OF(k, authloop__store_writer, writers);
    for (l = ww->slots.next; l != &ww->slots; l = l->next) {
      const store_slot *slot = AUTHLOOP__CONTAINER_OF(l, store_slot, link);
      const store_job *last = slot->next.op != OP_NONE ? &slot->next : &slot->current;
      if (last->op != OP_NONE && strcmp(slot->path, path) == 0 &&
          (!newest || last->seq > newest->seq))
        newest = last;
    }
  }
  if (newest) {
    rc = 1;
    if (newest->op == OP_WRITE) {
      if ((*data = malloc(newest->len)))
        memcpy(*data, newest->data, newest->len);
      else
        rc = -1;
      *len = rc < 0 ? 0 : newest->len;
    }
  }
  unlock_registry();
  return rc;
}
