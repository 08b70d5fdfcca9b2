/* SPDX-License-Identifier: MIT */
/* authloop on a GLib main loop (GTK, GNOME, any GMainContext). */
#ifndef AUTHLOOP_GLIB_H
#define AUTHLOOP_GLIB_H

#include <authloop.h>
#include <glib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Drives the ctx's uv loop from `context` (NULL: the default main context):
 * a GSource that watches the loop's backend fd, wakes at its next timer, and
 * runs it without blocking. Events reach handlers on the thread that runs
 * `context`, which must be the ctx's loop thread. Nothing else may run the uv
 * loop meanwhile. Returns the attached source (one reference for the caller);
 * after the ctx's close callback, g_source_destroy() and g_source_unref() it,
 * then uv_loop_close() the loop. NULL if the loop has no backend fd here. */
AUTHLOOP_EXTERN GSource *authloop_glib_attach(authloop_ctx *ctx, GMainContext *context);

#ifdef __cplusplus
}
#endif
#endif
