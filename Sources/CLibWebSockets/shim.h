// Thin shim over libwebsockets 4.1 for Swift: wraps what the importer cannot see
// (function-like macros, variadic logging) and nothing else.
#ifndef BROWSERCLOUD_CLIBWEBSOCKETS_SHIM_H
#define BROWSERCLOUD_CLIBWEBSOCKETS_SHIM_H

#include <libwebsockets.h>
#include <ev.h>

/// A libev loop on epoll (where available) that lws runs on as a foreign loop
/// (LWS_SERVER_OPTION_LIBEV), instead of its default poll(), whose cost grows with every open socket.
static inline struct ev_loop *bc_ev_loop_new(void) { return ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK); }

/// Runs the loop until at least one event was handled.
static inline int bc_ev_run_once(struct ev_loop *loop) { return ev_run(loop, EVRUN_ONCE); }

/// Runs pending events without blocking.
static inline int bc_ev_run_nowait(struct ev_loop *loop) { return ev_run(loop, EVRUN_NOWAIT); }

static inline void bc_ev_loop_destroy(struct ev_loop *loop) { ev_loop_destroy(loop); }

/// Name of the kernel interface libev chose ("epoll", "poll", "select", ...).
static inline const char *bc_ev_backend_name(struct ev_loop *loop) {
    switch (ev_backend(loop)) {
    case EVBACKEND_EPOLL: return "epoll";
    case EVBACKEND_POLL: return "poll";
    case EVBACKEND_SELECT: return "select";
    default: return "other";
    }
}

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
