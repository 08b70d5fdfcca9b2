/* SPDX-License-Identifier: MIT */
/* Holds lib/json.c to jansson: the same text is accepted by both or by
 * neither (json_loadb with JSON_REJECT_DUPLICATES, as authloop parsed answers
 * before), and what is accepted reads the same value for value; the one
 * exception is below (json_compare). Used by the unit test and the fuzz
 * target. */
#ifndef AUTHLOOP_TEST_JSON_COMPARE_H
#define AUTHLOOP_TEST_JSON_COMPARE_H

#include "json.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* NULL when they agree, else what differs. */
static const char *json_same_value(const authloop__jdoc *d, int v, const json_t *j) {
  const authloop__jtok *t = &d->tok[v];
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    size_t members = 0;
    uint32_t i, end = (uint32_t)v + t->skip;
    if (t->type != AUTHLOOP__J_OBJECT)
      return "an object read as something else";
    if (d->text[t->off] != '{' || d->text[t->off + t->len - 1] != '}')
      return "an object's raw text";
    for (i = (uint32_t)v + 1; i < end; i += 1 + d->tok[i + 1].skip) {
      const json_t *m = json_object_getn(j, d->buf + d->tok[i].off, d->tok[i].len);
      const char *why;
      if (!m)
        return "a key jansson does not have";
      if ((why = json_same_value(d, (int)i + 1, m)) != NULL)
        return why;
      if (authloop__jget(d, v, d->buf + d->tok[i].off) != (int)i + 1 &&
          strlen(d->buf + d->tok[i].off) == d->tok[i].len)
        return "jget finds another member";
      members++;
    }
    return members == json_object_size(j) ? NULL : "a different member count";
  }
  case JSON_ARRAY: {
    size_t k = 0;
    uint32_t i, end = (uint32_t)v + t->skip;
    if (t->type != AUTHLOOP__J_ARRAY)
      return "an array read as something else";
    if (d->text[t->off] != '[' || d->text[t->off + t->len - 1] != ']')
      return "an array's raw text";
    for (i = (uint32_t)v + 1; i < end; i += d->tok[i].skip, k++) {
      const char *why;
      if (k >= json_array_size(j))
        return "more array elements";
      if ((why = json_same_value(d, (int)i, json_array_get(j, k))) != NULL)
        return why;
    }
    return k == json_array_size(j) ? NULL : "fewer array elements";
  }
  case JSON_STRING:
    if (t->type != AUTHLOOP__J_STRING || t->len != json_string_length(j) ||
        memcmp(authloop__jstring(d, v), json_string_value(j), t->len) != 0 ||
        authloop__jstring(d, v)[t->len] != '\0')
      return "a string decoded differently";
    return NULL;
  case JSON_INTEGER: {
    long long x;
    if (authloop__jint(d, v, &x) != 0 || x != (long long)json_integer_value(j))
      return "an integer read differently";
    return NULL;
  }
  case JSON_REAL:
    return t->type == AUTHLOOP__J_REAL ? NULL : "a real read as something else";
  case JSON_TRUE:
    return t->type == AUTHLOOP__J_TRUE ? NULL : "true read as something else";
  case JSON_FALSE:
    return t->type == AUTHLOOP__J_FALSE ? NULL : "false read as something else";
  default:
    return t->type == AUTHLOOP__J_NULL ? NULL : "null read as something else";
  }
}

static const char *json_compare_strict(const char *text, size_t len);

/* jansson's one leniency that authloop does not share: a NUL byte right after
 * a number or a literal is skipped (its lexer puts the byte back into a
 * buffer where NUL means "empty"), so "[1\0]" is accepted. authloop refuses
 * every NUL (docs/decisions.md). Such an input must read, without those
 * NULs, exactly as jansson read it. */
static const char *json_compare(const char *text, size_t len) {
  const char *why = json_compare_strict(text, len);
  if (why && strcmp(why, "refused what jansson accepts") == 0 && memchr(text, 0, len)) {
    char *clean = malloc(len ? len : 1);
    size_t i, n = 0;
    json_t *a, *b;
    if (!clean)
      return why;
    for (i = 0; i < len; i++) {
      unsigned char prev = i ? (unsigned char)text[i - 1] : 0;
      int after_token = (prev >= '0' && prev <= '9') || (prev >= 'a' && prev <= 'z') ||
                        (prev >= 'A' && prev <= 'Z');
      if (text[i] == '\0' && after_token)
        continue;
      clean[n++] = text[i];
    }
    a = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    b = json_loadb(clean, n, JSON_REJECT_DUPLICATES, NULL);
    if (n < len && a && b && json_equal(a, b))
      why = json_compare_strict(clean, n);
    json_decref(a);
    json_decref(b);
    free(clean);
  }
  return why;
}

static const char *json_compare_strict(const char *text, size_t len) {
  authloop__jdoc d;
  json_error_t e;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
  int rc = authloop__jdoc_parse(&d, text, len);
  const char *why = NULL;
  if (rc == AUTHLOOP_ENOMEM)
    why = NULL; /* nothing to compare */
  else if (!j && rc == 0)
    why = "accepted what jansson refuses";
  else if (j && rc != 0)
    why = "refused what jansson accepts";
  else if (j)
    why = json_same_value(&d, 0, j);
  json_decref(j);
  authloop__jdoc_free(&d);
  return why;
}

#endif
