/* SPDX-License-Identifier: MIT */
/* Included last by every provider: what a provider must not touch is
 * poisoned, so the compiler (not habit) holds the boundary of
 * lib/provider.h. No loop, no transfer, no clock, no client. */
#ifndef AUTHLOOP_PROVIDERS_PURE_H
#define AUTHLOOP_PROVIDERS_PURE_H

#if defined(__GNUC__)
#pragma GCC poison uv_run uv_default_loop uv_timer_init uv_timer_start uv_poll_init uv_now
#pragma GCC poison uv_hrtime uv_loop_t uv_handle_t uv_timer_t
#pragma GCC poison curl_easy_init curl_easy_setopt curl_easy_perform curl_multi_add_handle
#pragma GCC poison curl_url curl_url_set curl_url_get CURL CURLM CURLU
#pragma GCC poison time clock_gettime gettimeofday authloop__boot_ms authloop__wall_ms
#pragma GCC poison authloop_client authloop_ctx
#endif

#endif
