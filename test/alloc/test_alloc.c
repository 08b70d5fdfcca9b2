/* SPDX-License-Identifier: MIT */
/* Allocation failures through login -> refresh -> request -> logout -> close:
 * alloc_driver runs the whole flow with the Nth allocation of the process
 * failing, for N spread over every allocation the flow makes (all of them
 * when AUTHLOOP_ALLOC_SWEEP=all), some under valgrind for leaks. A run must
 * keep the contract (each call fails at once or has exactly one outcome, the
 * ctx closes, the loop closes clean) and must not crash in authloop's code.
 * Crashes whose top of stack is in another library are counted and printed,
 * not hidden (docs/allocation-failures.md lists them). */
#include "harness.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
  int status; /* exit status, or 128 + signal */
  char *out;  /* stdout and stderr */
} result;

static result drive(long n, int valgrind, unsigned limit_s) {
  char nbuf[32], limit[16];
  const char *drv = getenv("AUTHLOOP_ALLOC_DRIVER");
  const char *plain[] = {"timeout",       "-s",      "KILL", limit, drv,
                         server.base_url, server.ca, nbuf,   NULL};
  const char *vg[] = {"timeout",
                      "-s",
                      "KILL",
                      limit,
                      "valgrind",
                      "-q",
                      "--error-exitcode=99",
                      "--leak-check=full",
                      "--errors-for-leak-kinds=definite,indirect",
                      "--show-leak-kinds=definite,indirect",
                      drv,
                      server.base_url,
                      server.ca,
                      nbuf,
                      NULL};
  result r;
  snprintf(nbuf, sizeof(nbuf), "%ld", n);
  snprintf(limit, sizeof(limit), "%u", limit_s);
  r.status = test_run_status(valgrind ? vg : plain, &r.out);
  return r;
}

/* Whose code a crash was in: the first frame after the crash handler's own
 * (the first line), glibc (signal, abort, the allocator) and the driver's
 * malloc. A frame in the driver itself is authloop's (it is linked in). */
static int crashed_in_authloop(const char *out, char *where, size_t n) {
  const char *line = strstr(out, "CRASH");
  int skipped_handler = 0;
  while (line && (line = strchr(line, '\n')) && *++line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char frame[512];
    snprintf(frame, sizeof(frame), "%.*s", (int)len, line);
    if (!skipped_handler++ || strstr(frame, "libc.so") || strstr(frame, "(malloc+") ||
        strstr(frame, "(calloc+") || strstr(frame, "(realloc+"))
      continue;
    snprintf(where, n, "%s", frame);
    return strstr(frame, "alloc_driver(") != NULL;
  }
  snprintf(where, n, "(no frame)");
  return 0;
}

static void every_allocation_failure_keeps_the_contract(void **state) {
  const char *sweep = getenv("AUTHLOOP_ALLOC_SWEEP");
  result base;
  long total, n, step, runs = 0, foreign = 0, refused_at_once = 0;
  (void)state;
  if (!getenv("AUTHLOOP_ALLOC_DRIVER") || !*getenv("AUTHLOOP_ALLOC_DRIVER"))
    skip(); /* a sanitizer build has its own malloc: the driver is not built */
  base = drive(0, 0, 30);
  if (base.status != 0 ||
      sscanf(strstr(base.out, "allocations") ? strstr(base.out, "allocations") : "",
             "allocations %ld", &total) != 1)
    fail_msg("the flow fails with nothing made to fail: %s", base.out);
  free(base.out);
  /* every one, or about 120 spread over the flow plus its first 40 */
  step = sweep && strcmp(sweep, "all") == 0 ? 1 : total / 120 + 1;
  print_message("# the flow makes %ld allocations; failing every %ld%s\n", total, step,
                step > 1 ? " (and each of the first 40)" : "");
  for (n = 1; n <= total; n += n < 40 ? 1 : step) {
    result r = drive(n, 0, 30);
    if (r.status == 2) { /* no code minted (the server was busy): once more */
      free(r.out);
      r = drive(n, 0, 30);
    }
    runs++;
    if (r.status == 0) {
      refused_at_once += strstr(r.out, "ENOMEM") != NULL;
    } else if (r.status == 1 || r.status == 128 + SIGKILL) {
      fail_msg("allocation %ld: %s", n,
               r.status == 1 ? r.out : "the flow hung (an outcome was lost)");
    } else {
      char where[512];
      if (crashed_in_authloop(r.out, where, sizeof(where)))
        fail_msg("allocation %ld: a crash in authloop's code: %s\n%s", n, where, r.out);
      foreign++;
      print_message("# allocation %ld: status %d, a crash in another library: %s\n", n, r.status,
                    where);
      if (getenv("AUTHLOOP_ALLOC_STACKS")) /* the whole stack, for docs/allocation-failures.md */
        print_message("%s\n", r.out);
    }
    free(r.out);
  }
  print_message("# %ld runs; %ld crashes in other libraries\n", runs, foreign);
  (void)refused_at_once;
  /* leaks: a few runs under valgrind, spread over the flow */
  if (!getenv("AUTHLOOP_ALLOC_NO_VALGRIND")) {
    long k;
    for (k = 1; k <= 8; k++) {
      result r = drive(k * total / 9, 1, 120);
      if (r.status == 99 || r.status == 1)
        fail_msg("allocation %ld under valgrind: %s", k * total / 9, r.out);
      free(r.out);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_allocation_failure_keeps_the_contract),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("allocation failures", tests, test_group_setup,
                                     test_group_teardown);
}
