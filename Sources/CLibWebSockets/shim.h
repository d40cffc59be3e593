// Thin shim over libwebsockets 4.1 for Swift: wraps what the importer cannot see
// (function-like macros, variadic logging) and nothing else.
#ifndef BROWSERCLOUD_CLIBWEBSOCKETS_SHIM_H
#define BROWSERCLOUD_CLIBWEBSOCKETS_SHIM_H

#include <libwebsockets.h>

/// Bytes lws needs in front of every buffer passed to lws_write (the LWS_PRE macro).
static inline size_t bc_lws_pre(void) { return LWS_PRE; }

/// Content length value meaning "not known" (LWS_ILLEGAL_HTTP_CONTENT_LEN).
static inline lws_filepos_t bc_lws_illegal_content_len(void) { return LWS_ILLEGAL_HTTP_CONTENT_LEN; }

/// Non-variadic entry into lws logging.
static inline void bc_lws_log(int level, const char *message) { _lws_log(level, "%s\n", message); }

/// A libwebsockets timer that can find its Swift owner: lws hands the callback the `sul` member,
/// which is the first member, so the callback casts it back to this struct.
typedef struct bc_timer {
    lws_sorted_usec_list_t sul;
    void *owner;
} bc_timer_t;

#endif
