// Thin shim over libwebsockets 4.1 for Swift: wraps what the importer cannot see
// (function-like macros, variadic logging, a thread-local slot, the kernel's TCP byte counters,
// a libev watcher).
#ifndef BROWSERCLOUD_CLIBWEBSOCKETS_SHIM_H
#define BROWSERCLOUD_CLIBWEBSOCKETS_SHIM_H

#include <libwebsockets.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <malloc.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/socket.h>

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

/// Gives the heap's free pages back to the kernel (glibc's malloc_trim, which also releases whole free
/// pages inside the heap); 1 when memory was released. Elsewhere it does nothing.
static inline int bc_malloc_trim(void) {
#ifdef __GLIBC__
    return malloc_trim(0);
#else
    return 0;
#endif
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

/// A slot per thread for the object whose lws context runs on this thread: the lws log sink (one per
/// process) uses it to hand a message to the transport that caused it.
static inline void **bc_thread_owner_slot(void) {
    static __thread void *owner;
    return &owner;
}

/// Sets the nice value of the calling thread (Linux: priorities are per thread). Returns 0 on success.
static inline int bc_set_thread_nice(int nice) { return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice); }

/// Names the calling thread (up to 15 bytes), as `top -H` and /proc/<pid>/task/<tid>/comm show it.
static inline void bc_set_thread_name(const char *name) { prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }

/// Installs `sink` as the lws log sink for `level` (a C function, so Swift passes a global function).
static inline void bc_lws_set_log(int level, void (*sink)(int level, const char *line)) { lws_set_log_level(level, sink); }

/// How many bytes of a TCP stream the application has read so far: the kernel's count of bytes received
/// (`tcpi_bytes_received`, which also counts a received FIN as one) minus those still unread. -1 on error.
/// glibc's copy of `struct tcp_info` stops before that field and <linux/tcp.h> clashes with it, so the
/// offset of the kernel ABI (which only ever appends fields) is used: 128.
static inline long long bc_tcp_consumed(int fd) {
    unsigned char info[256];
    socklen_t length = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &length) != 0 || length < 136) return -1;
    unsigned long long received;
    memcpy(&received, info + 128, 8);
    int unread = 0;
    if (ioctl(fd, FIONREAD, &unread) != 0) return -1;
    unsigned char state = info[0];
    int fin = state == TCP_CLOSE_WAIT || state == TCP_LAST_ACK || state == TCP_CLOSING || state == TCP_TIME_WAIT;
    return (long long)received - unread - fin;
}

/// A libev read watcher that runs before libwebsockets' own watcher on the same socket (highest
/// priority), so that the transport sees a request's bytes before lws parses them.
typedef struct bc_gate {
    ev_io io;
    void *owner;
    void *wsi;
} bc_gate_t;

static inline void bc_gate_start(struct ev_loop *loop, bc_gate_t *gate, int fd, void (*cb)(struct ev_loop *, ev_io *, int)) {
    if (ev_is_active(&gate->io)) return;
    ev_io_init(&gate->io, cb, fd, EV_READ);
    ev_set_priority(&gate->io, EV_MAXPRI);
    ev_io_start(loop, &gate->io);
}

static inline void bc_gate_stop(struct ev_loop *loop, bc_gate_t *gate) { ev_io_stop(loop, &gate->io); }

#endif
