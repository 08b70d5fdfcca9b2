/* SPDX-License-Identifier: MIT */
/* Shared by the benchmark programs: blocking calls to the reference server's
 * control API (setup, never measured), CPU time and memory of this process. */
#ifndef AUTHLOOP_BENCH_UTIL_H
#define AUTHLOOP_BENCH_UTIL_H

#include <jansson.h>
#include <stdint.h>

/* POST (body non-NULL) or GET; the parsed answer, or exit(1). */
json_t *bench_control(const char *url, const char *ca, const char *path, const char *body);
/* n one-time codes for users PREFIX-0 .. PREFIX-(n-1); ttl_s 0: the default. */
char **bench_codes(const char *url, const char *ca, const char *prefix, int n, int ttl_s);
void bench_codes_free(char **codes, int n);
long bench_stat(const char *url, const char *ca, const char *key);
/* user + system CPU time of this process, in microseconds */
uint64_t bench_cpu_us(void);
/* the same, apart: user and system (the kernel's work for this process) */
void bench_cpu_split(uint64_t *user_us, uint64_t *sys_us);
/* resident and peak resident memory of this process, in KiB */
long bench_rss_kib(void);
long bench_peak_rss_kib(void);
/* sorts v and returns the p-th percentile (0..100) */
double bench_percentile(double *v, int n, double p);
const char *bench_arg(int argc, char **argv, const char *name, const char *fallback);

#endif
