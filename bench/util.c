/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct {
  char *data;
  size_t len;
} sink;

static size_t collect(char *p, size_t size, size_t n, void *ud) {
  sink *s = ud;
  char *d = realloc(s->data, s->len + size * n + 1);
  if (!d)
    return 0;
  memcpy(d + s->len, p, size * n);
  s->data = d;
  s->len += size * n;
  d[s->len] = '\0';
  return size * n;
}

json_t *bench_control(const char *url, const char *ca, const char *path, const char *body) {
  char full[512];
  sink s = {0};
  CURL *e = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  long status = 0;
  json_t *j;
  snprintf(full, sizeof(full), "%s%s", url, path);
  curl_easy_setopt(e, CURLOPT_URL, full);
  curl_easy_setopt(e, CURLOPT_CAINFO, ca);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
  if (body)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  if (curl_easy_perform(e) == CURLE_OK)
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 || !(j = json_loads(s.data ? s.data : "", 0, NULL))) {
    fprintf(stderr, "bench: %s failed (HTTP %ld)\n", path, status);
    exit(1);
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  free(s.data);
  return j;
}

/* The server mints at most 100,000 at a time: users PREFIX.CHUNK-I. */
char **bench_codes(const char *url, const char *ca, const char *prefix, int n, int ttl_s) {
  char body[256];
  json_t *j, *list;
  char **codes = calloc((size_t)n, sizeof(*codes));
  int i, done, chunk, k = 0;
  for (done = 0; done < n; done += chunk, k++) {
    chunk = n - done < 100000 ? n - done : 100000;
    if (ttl_s > 0)
      snprintf(body, sizeof(body), "{\"userId\":\"%s.%d\",\"count\":%d,\"tokenTtl\":%d}", prefix, k,
               chunk, ttl_s);
    else
      snprintf(body, sizeof(body), "{\"userId\":\"%s.%d\",\"count\":%d}", prefix, k, chunk);
    j = bench_control(url, ca, "/__test/codes", body);
    list = json_object_get(j, "authorizationCodes");
    for (i = 0; i < chunk; i++)
      codes[done + i] = strdup(json_string_value(json_array_get(list, (size_t)i)));
    json_decref(j);
  }
  return codes;
}

void bench_codes_free(char **codes, int n) {
  int i;
  for (i = 0; i < n; i++)
    free(codes[i]);
  free(codes);
}

long bench_stat(const char *url, const char *ca, const char *key) {
  json_t *j = bench_control(url, ca, "/__test/stats", NULL);
  json_t *v =
      key[0] == '/' ? json_object_get(json_object_get(j, "routes"), key) : json_object_get(j, key);
  long n = (long)json_integer_value(v);
  json_decref(j);
  return n;
}

uint64_t bench_cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

void bench_cpu_split(uint64_t *user_us, uint64_t *sys_us) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
  *sys_us = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

static long status_kib(const char *field) {
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  FILE *f = fopen("/proc/self/status", "r");
  while (f && fgets(line, sizeof(line), f))
    if (strncmp(line, field, n) == 0)
      v = strtol(line + n, NULL, 10);
  if (f)
    fclose(f);
  return v;
}

long bench_rss_kib(void) { return status_kib("VmRSS:"); }
long bench_peak_rss_kib(void) { return status_kib("VmHWM:"); }

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double bench_percentile(double *v, int n, double p) {
  int i;
  qsort(v, (size_t)n, sizeof(*v), cmp);
  i = (int)(p / 100.0 * (n - 1) + 0.5);
  return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

const char *bench_arg(int argc, char **argv, const char *name, const char *fallback) {
  int i;
  for (i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return fallback;
}
