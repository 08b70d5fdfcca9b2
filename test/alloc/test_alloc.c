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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
  int status; /* exit status, or 128 + signal */
  char *out;  /* stdout and stderr */
} result;

static const char *flow = "gateway", *flow_arg; /* the driver's FLOW [ARG] */
static test_server *target = &server;           /* the driver's URL and CA */
static long refresh_enomem; /* runs whose refresh was answered ENOMEM (lockwait) */

static result drive(long n, int valgrind, unsigned limit_s) {
  char nbuf[32], limit[16];
  const char *drv = getenv("AUTHLOOP_ALLOC_DRIVER");
  const char *plain[] = {"timeout",  "-s", "KILL", limit,    drv, target->base_url,
                         target->ca, nbuf, flow,   flow_arg, NULL};
  const char *vg[] = {"timeout", "-s", "KILL", limit, "valgrind", "-q",
                      /* valgrind would replace the driver's own malloc too, and
                       * then no allocation fails: it must keep it (the driver's
                       * calls __libc_malloc, which valgrind does watch) */
                      "--soname-synonyms=somalloc=nouserintercepts", "--error-exitcode=99",
                      "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                      "--show-leak-kinds=definite,indirect", drv, target->base_url, target->ca,
                      nbuf, flow, flow_arg, NULL};
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

/* A valgrind report under an allocation failure: 1 when one of its errors
 * (a leak, an invalid access or free, a use of uninitialised memory) starts
 * in authloop's code: its first frame past valgrind's allocator and glibc's
 * string copies is not another library's. Those of another library (OpenSSL,
 * libcurl, libuv in their own failure handling) are counted in *foreign, the
 * last one named in where. */
static int valgrind_blames_authloop(const char *out, char *where, size_t n, int *foreign) {
  static const char *const heads[] = {" lost in loss record", "Invalid ", "uninitialised",
                                      "Mismatched"};
  const char *line = out;
  while (line && *line) {
    const char *eol = strchr(line, '\n');
    size_t i;
    int head = 0;
    for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
      head |= eol ? memmem(line, (size_t)(eol - line), heads[i], strlen(heads[i])) != NULL
                  : strstr(line, heads[i]) != NULL;
    line = eol ? eol + 1 : NULL;
    if (!head)
      continue;
    /* its frames, one a line: "at 0x..: fn (in lib)", "by 0x..: fn (file.c:n)" */
    while (line && *line) {
      const char *end = strchr(line, '\n');
      size_t len = end ? (size_t)(end - line) : strlen(line);
      char frame[512];
      snprintf(frame, sizeof(frame), "%.*s", (int)len, line);
      line = end ? end + 1 : NULL;
      if (!strstr(frame, " at 0x") && !strstr(frame, " by 0x"))
        break; /* the record ended before a frame of anyone's */
      if (strstr(frame, "vgpreload") || strstr(frame, ": strdup") || strstr(frame, ": strndup") ||
          strstr(frame, ": __strdup"))
        continue;
      snprintf(where, n, "%s", frame);
      if (!strstr(frame, "(in /usr/lib") && !strstr(frame, "(in /lib"))
        return 1;
      ++*foreign;
      break;
    }
  }
  return 0;
}

static void sweep_flow(unsigned spread, int valgrind_runs) {
  const char *sweep = getenv("AUTHLOOP_ALLOC_SWEEP");
  result base;
  long total, n, step, runs = 0, foreign = 0, refused_at_once = 0;
  if (!getenv("AUTHLOOP_ALLOC_DRIVER") || !*getenv("AUTHLOOP_ALLOC_DRIVER"))
    skip(); /* a sanitizer build has its own malloc: the driver is not built */
  base = drive(0, 0, 30);
  if (base.status != 0 ||
      sscanf(strstr(base.out, "allocations") ? strstr(base.out, "allocations") : "",
             "allocations %ld", &total) != 1)
    fail_msg("the flow fails with nothing made to fail: %s", base.out);
  free(base.out);
  /* every one, or about 120 spread over the flow plus its first 40 */
  step = sweep && strcmp(sweep, "all") == 0 ? 1 : total / spread + 1;
  print_message("# the %s flow makes %ld allocations; failing every %ld%s\n", flow, total, step,
                step > 1 ? " (and each of the first 40)" : "");
  for (n = 1; n <= total; n += n < 40 ? 1 : step) {
    result r = drive(n, 0, 30);
    if (r.status == 2) { /* no code minted (the server was busy): once more */
      free(r.out);
      r = drive(n, 0, 30);
    }
    runs++;
    if (r.status == 0) {
      if (strstr(r.out, "the refresh: ENOMEM")) /* an outcome, not a refusal */
        refresh_enomem++;
      else
        refused_at_once += strstr(r.out, "ENOMEM") != NULL;
    } else if (r.status == 1 || r.status == 128 + SIGKILL) {
      fail_msg("allocation %ld: %s", n,
               r.status == 1 ? r.out : "the flow hung (an outcome was lost)");
    } else {
      char where[512];
      /* a crash the driver's handler reported: anything else (a second
       * status 2, a signal it could not catch) is no verdict, and fails */
      if (!strstr(r.out, "CRASH"))
        fail_msg("allocation %ld: status %d without a crash report:\n%s", n, r.status, r.out);
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
  print_message("# %ld runs; %ld refused at once with ENOMEM; %ld crashes in other libraries\n",
                runs, refused_at_once, foreign);
  /* leaks: a few runs under valgrind, spread over the flow */
  if (!getenv("AUTHLOOP_ALLOC_NO_VALGRIND")) {
    long k;
    for (k = 1; k <= valgrind_runs; k++) {
      long at = k * total / (valgrind_runs + 1);
      result r = drive(at, 1, 120);
      char where[512];
      /* a leak or an error (99), a broken contract (1), a hang (killed) or a
       * crash in authloop's code: each fails; a crash in another library is
       * the sweep's to list */
      int others = 0;
      if (r.status == 1 || r.status == 128 + SIGKILL ||
          (r.status == 99 && valgrind_blames_authloop(r.out, where, sizeof(where), &others)) ||
          (r.status != 0 && r.status != 99 && crashed_in_authloop(r.out, where, sizeof(where))))
        fail_msg("allocation %ld under valgrind: status %d\n%s", at, r.status, r.out);
      if (others)
        print_message("# allocation %ld under valgrind: leaks in another library's failure "
                      "handling, first at %s\n",
                      at, where);
      /* the allocation did fail under valgrind too (it replaces malloc) */
      if (r.status == 0 && !strstr(r.out, "failed allocation"))
        fail_msg("allocation %ld under valgrind: no allocation failed\n%s", at, r.out);
      free(r.out);
    }
  }
}

static int have_driver(void) {
  return getenv("AUTHLOOP_ALLOC_DRIVER") && *getenv("AUTHLOOP_ALLOC_DRIVER");
}

/* login -> refresh -> request -> logout -> close, gateway dialect */
static void every_allocation_failure_keeps_the_contract(void **state) {
  (void)state;
  if (!have_driver())
    skip(); /* a sanitizer build has its own malloc: the driver is not built */
  flow = "gateway";
  flow_arg = NULL;
  sweep_flow(120, 8);
}

/* A pre-auth: out of memory anywhere (reading and parsing the key, signing,
 * the request) is ENOMEM, never taken for a bad key. */
static void preauth_out_of_memory_is_enomem(void **state) {
  char key[400], pub[420], dir[320];
  const char *gen[] = {"openssl", "genpkey",  "-algorithm",
                       "EC",      "-pkeyopt", "ec_paramgen_curve:P-256",
                       "-out",    key,        NULL};
  const char *half[] = {"openssl", "pkey", "-in", key, "-pubout", "-out", pub, NULL};
  char *out;
  (void)state;
  if (!have_driver())
    skip();
  snprintf(key, sizeof(key), "%s/alloc-backend.key", server.dir);
  snprintf(dir, sizeof(dir), "%s/clients", server.dir);
  mkdir(dir, 0700);
  snprintf(pub, sizeof(pub), "%s/alloc-backend.pem", dir);
  assert_int_equal(test_run_status(gen, &out), 0);
  free(out);
  assert_int_equal(test_run_status(half, &out), 0);
  free(out);
  flow = "preauth";
  flow_arg = key;
  sweep_flow(60, 2);
}

/* A Kuzzle two-step strategy: its pause (told by stateChanged alone) is
 * never lost, so the set_token that completes it always comes. */
static void a_two_step_pause_is_never_lost(void **state) {
  (void)state;
  if (!have_driver())
    skip();
  flow = "twostep";
  flow_arg = NULL;
  sweep_flow(60, 2);
}

/* A refresh that waited for another process's lock on the session file,
 * and then could not start (any allocation failing from when the lock goes):
 * its caller has exactly one answer, even for a token of unknown lifetime,
 * for which no retry is ever scheduled (a caller was once left waiting for
 * it). Out of memory there is this attempt's failure, answered ENOMEM: never
 * taken for "no lock possible" or "nothing newer in the file", after which
 * the refresh went on without the lock, or without another process's tokens. */
static void a_refresh_after_a_lock_wait_is_answered(void **state) {
  test_server peer;
  char dir[320];
  json_t *ready;
  (void)state;
  if (!have_driver())
    skip();
  ready = test_peer_start(&peer, "oidc", NULL);
  json_decref(ready);
  snprintf(dir, sizeof(dir), "%s/lockwait", server.dir);
  mkdir(dir, 0700);
  target = &peer;
  flow = "lockwait";
  flow_arg = dir;
  refresh_enomem = 0;
  sweep_flow(10, 1);
  target = &server;
  test_server_stop(&peer);
  print_message("# %ld runs answered the refresh ENOMEM\n", refresh_enomem);
  assert_true(refresh_enomem > 0); /* the sweep did reach a refresh that could not start */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_allocation_failure_keeps_the_contract),
      cmocka_unit_test(preauth_out_of_memory_is_enomem),
      cmocka_unit_test(a_two_step_pause_is_never_lost),
      cmocka_unit_test(a_refresh_after_a_lock_wait_is_answered),
  };
  cmocka_set_message_output(CM_OUTPUT_TAP);
  return cmocka_run_group_tests_name("allocation failures", tests, test_group_setup,
                                     test_group_teardown);
}
