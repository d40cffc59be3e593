/*
 * Bare libwebsockets echo server: the local "physical limit" the rendezvous server's relay is compared
 * with in `make bench`. Each text message is sent back to its sender, in order, with no parsing.
 * Build: cc -O2 bench/echo-server.c $(pkg-config --cflags --libs libwebsockets) -o .build/echo-server
 * Usage: echo-server PORT   (prints "listening on PORT" once ready; 0 picks a free port)
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct msg {
    struct msg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + payload */
};

struct session {
    struct msg *head, *tail;
    unsigned char *rx;
    size_t rx_len, rx_cap;
};

static volatile int interrupted;

static void on_signal(int sig) { (void)sig; interrupted = 1; }

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    struct session *s = user;
    switch (reason) {
    case LWS_CALLBACK_RECEIVE: {
        if (s->rx_len + len > s->rx_cap) {
            s->rx_cap = (s->rx_len + len) * 2;
            s->rx = realloc(s->rx, s->rx_cap);
        }
        memcpy(s->rx + s->rx_len, in, len);
        s->rx_len += len;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
            return 0;
        struct msg *m = malloc(sizeof(*m) + LWS_PRE + s->rx_len);
        m->next = NULL;
        m->len = s->rx_len;
        memcpy(m->buf + LWS_PRE, s->rx, s->rx_len);
        s->rx_len = 0;
        if (s->tail) s->tail->next = m; else s->head = m;
        s->tail = m;
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        int sent = 0;
        while (s->head && (sent == 0 || !lws_send_pipe_choked(wsi)) && sent < 32) {
            struct msg *m = s->head;
            if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
                return -1;
            s->head = m->next;
            if (!s->head) s->tail = NULL;
            free(m);
            sent++;
        }
        if (s->head) lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLOSED:
        while (s->head) { struct msg *m = s->head; s->head = m->next; free(m); }
        free(s->rx);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    { "echo", callback, sizeof(struct session), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

int main(int argc, char **argv) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = argc > 1 ? atoi(argv[1]) : 0;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_VALIDATE_UTF8;
    lws_set_log_level(LLL_ERR, NULL);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) { fprintf(stderr, "cannot listen\n"); return 1; }
    printf("listening on %d\n", lws_get_vhost_listen_port(lws_get_vhost_by_name(ctx, "default")));
    fflush(stdout);
    while (!interrupted && lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
