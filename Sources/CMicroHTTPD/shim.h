#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

// MHD_start_daemon is variadic (Swift cannot call it): this typed form passes every option through one
// MHD_OPTION_ARRAY built in Swift, with no default handler (NULL accept policy) and an explicit access handler.
static inline struct MHD_Daemon *tgw_mhd_start_daemon(
    unsigned int flags, uint16_t port, MHD_AccessHandlerCallback handler, void *handler_cls,
    struct MHD_OptionItem *options) {
    return MHD_start_daemon(flags, port, NULL, NULL, handler, handler_cls, MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

// An MHD_OptionItem for a two-pointer option stores the function pointer in the integer `value` field;
// casting a C function pointer to intptr_t is one line here and an unsafeBitCast in Swift.
static inline struct MHD_OptionItem tgw_mhd_option_notify_completed(MHD_RequestCompletedCallback callback, void *cls) {
    struct MHD_OptionItem item = {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)callback, cls};
    return item;
}

// Typed MHD_OPTION_URI_LOG_CALLBACK item (function pointer in `value`, see above); its callback sees the raw
// request target (path and query, not yet unescaped) and returns the initial per-request context.
static inline struct MHD_OptionItem tgw_mhd_option_uri_log(
    void *(*callback)(void *cls, const char *uri, struct MHD_Connection *connection), void *cls) {
    struct MHD_OptionItem item = {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)callback, cls};
    return item;
}

// Typed MHD_OPTION_NOTIFY_CONNECTION item (function pointer in `value`, see above): told when a TCP connection
// opens and, before libmicrohttpd closes its socket, when it closes.
static inline struct MHD_OptionItem tgw_mhd_option_notify_connection(MHD_NotifyConnectionCallback callback, void *cls) {
    struct MHD_OptionItem item = {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)callback, cls};
    return item;
}

// Typed MHD_OPTION_EXTERNAL_LOGGER item (function pointer in `value`, see above).
static inline struct MHD_OptionItem tgw_mhd_option_logger(MHD_LogCallback callback, void *cls) {
    struct MHD_OptionItem item = {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)callback, cls};
    return item;
}

// MHD_get_daemon_info is variadic: typed query of the bound port (useful after binding port 0); 0 if unknown.
static inline uint16_t tgw_mhd_bound_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

// MHD_get_connection_info is variadic: typed query of the peer address; NULL if unknown.
static inline const struct sockaddr *tgw_mhd_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

// MHD_get_connection_info is variadic: typed query of the connection's socket; -1 if unknown.
static inline int tgw_mhd_connection_socket(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

// MHD_get_connection_info is variadic: typed query of the per-socket pointer set when the connection opened.
static inline void *tgw_mhd_socket_context(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == NULL ? NULL : info->socket_context;
}

// The flags are C enum constants; plain unsigned values are simpler to combine in Swift than imported structs.
static inline unsigned int tgw_mhd_daemon_flags(int ipv6) {
    unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ipv6) flags |= MHD_USE_IPv6;
    return flags;
}

#endif
