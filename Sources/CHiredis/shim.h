// Thin shim over the system hiredis (Debian: libhiredis-dev, 0.14): blocking connections, commands as
// argument vectors with explicit lengths (binary-safe), reply accessors. Swift sees only these functions
// and opaque pointers; every hiredis call that can write to the socket runs with SIGPIPE blocked on the
// calling thread, so a peer that closed the connection gives an error (EPIPE), never a process kill.
#ifndef BROWSERCLOUD_CHIREDIS_SHIM_H
#define BROWSERCLOUD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

typedef struct bc_sigpipe_guard {
    sigset_t old_mask;
    int was_pending;
} bc_sigpipe_guard;

/// Blocks SIGPIPE on the calling thread, remembering whether one was already pending.
static inline void bc_sigpipe_block(bc_sigpipe_guard *guard) {
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    guard->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &guard->old_mask);
}

/// Discards a SIGPIPE the guarded calls raised (not one pending before) and restores the thread's mask.
/// Preserves errno.
static inline void bc_sigpipe_restore(const bc_sigpipe_guard *guard) {
    int saved_errno = errno;
    if (!guard->was_pending) {
        sigset_t set, pending;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        sigemptyset(&pending);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) == 1) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&set, NULL, &zero) == -1 && errno == EINTR) {}
        }
    }
    pthread_sigmask(SIG_SETMASK, &guard->old_mask, NULL);
    errno = saved_errno;
}

static inline struct timeval bc_timeval_ms(long ms) {
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

/// A blocking connection to `host` (a name, an IPv4 or an IPv6 address without brackets) and `port`,
/// giving up after `timeout_ms` milliseconds. NULL only when hiredis could not allocate the context;
/// otherwise check `bc_redis_err` (non-zero: the connection failed, `bc_redis_errstr` says why) and
/// free the context with `bc_redis_free` in either case.
static inline redisContext *bc_redis_connect(const char *host, int port, long timeout_ms) {
    return redisConnectWithTimeout(host, port, bc_timeval_ms(timeout_ms));
}

/// Sets the socket's send and receive timeouts (SO_SNDTIMEO/SO_RCVTIMEO) to `timeout_ms` milliseconds;
/// 0 means no timeout (block forever). Returns 0 on success, -1 on failure.
static inline int bc_redis_set_timeout(redisContext *c, long timeout_ms) {
    return redisSetTimeout(c, bc_timeval_ms(timeout_ms)) == REDIS_OK ? 0 : -1;
}

/// Sends one command (`argc` arguments, `argv[i]` of `lens[i]` bytes) and reads its reply. NULL on an
/// I/O or protocol error (see `bc_redis_err`); the caller frees a reply with `bc_reply_free`.
static inline redisReply *bc_redis_command(redisContext *c, int argc, const char **argv, const size_t *lens) {
    bc_sigpipe_guard guard;
    bc_sigpipe_block(&guard);
    redisReply *reply = (redisReply *)redisCommandArgv(c, argc, argv, lens);
    bc_sigpipe_restore(&guard);
    return reply;
}

/// Appends one command to the output buffer without sending it (a pipeline: send several, then read
/// each reply with `bc_redis_get_reply`). Returns 0 on success, -1 on failure.
static inline int bc_redis_append(redisContext *c, int argc, const char **argv, const size_t *lens) {
    return redisAppendCommandArgv(c, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

/// Flushes the output buffer and reads the next reply into `*out` (freed with `bc_reply_free`).
/// Returns 0 on success, -1 on an error (see `bc_redis_err`). With `timed_out` non-NULL, a receive that
/// timed out with nothing to send is not an error: `*timed_out` is set to 1, `*out` to NULL, the context's
/// error is cleared (hiredis 0.14 marks EAGAIN on a blocking socket as an I/O error but leaves its reader
/// intact, so the bytes of a reply partly read are kept) and 0 is returned: the connection stays usable.
static inline int bc_redis_get_reply(redisContext *c, redisReply **out, int *timed_out) {
    void *reply = NULL;
    if (timed_out != NULL) *timed_out = 0;
    int had_output = c->obuf != NULL && c->obuf[0] != '\0';
    bc_sigpipe_guard guard;
    bc_sigpipe_block(&guard);
    errno = 0;
    int status = redisGetReply(c, &reply);
    int saved_errno = errno;
    bc_sigpipe_restore(&guard);
    *out = (redisReply *)reply;
    if (status == REDIS_OK) return 0;
    if (timed_out != NULL && !had_output && c->err == REDIS_ERR_IO
        && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
        c->err = 0;
        c->errstr[0] = '\0';
        *timed_out = 1;
        *out = NULL;
        return 0;
    }
    return -1;
}

/// The context's error: 0 (none), REDIS_ERR_IO (1), REDIS_ERR_OTHER (2), REDIS_ERR_EOF (3),
/// REDIS_ERR_PROTOCOL (4), REDIS_ERR_OOM (5).
static inline int bc_redis_err(const redisContext *c) { return c->err; }

/// The context's error text (NUL-terminated, empty when there is none); valid until the next call.
static inline const char *bc_redis_errstr(const redisContext *c) { return c->errstr; }

/// Closes the connection and frees the context (NULL is ignored).
static inline void bc_redis_free(redisContext *c) {
    if (c != NULL) redisFree(c);
}

/// The reply's type: REDIS_REPLY_STRING (1), ARRAY (2), INTEGER (3), NIL (4), STATUS (5), ERROR (6).
static inline int bc_reply_type(const redisReply *r) { return r->type; }

/// The integer of an INTEGER reply.
static inline long long bc_reply_integer(const redisReply *r) { return r->integer; }

/// The bytes of a STRING, STATUS or ERROR reply (`*len` bytes, not necessarily NUL-free).
static inline const char *bc_reply_str(const redisReply *r, size_t *len) {
    *len = r->str != NULL ? r->len : 0;
    return r->str;
}

/// The number of elements of an ARRAY reply.
static inline size_t bc_reply_elements(const redisReply *r) { return r->elements; }

/// Element `i` (< `bc_reply_elements`) of an ARRAY reply; owned by the array.
static inline const redisReply *bc_reply_element(const redisReply *r, size_t i) { return r->element[i]; }

/// Frees a reply returned by `bc_redis_command` or `bc_redis_get_reply` (NULL is ignored).
static inline void bc_reply_free(redisReply *r) {
    if (r != NULL) freeReplyObject(r);
}

#endif
