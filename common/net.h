/* net.h - listening sockets and address parsing. */
#ifndef RT_NET_H
#define RT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Split "host:port", "[v6]:port" or ":port" (host empty = all addresses). Returns 0 or -1. */
int rt_net_split_hostport(const char *hostport, char *host, size_t hostcap, uint16_t *port);
/* A non-blocking listening TCP socket on `hostport` (port 0 = any free port), with
 * SO_REUSEADDR and, if asked, SO_REUSEPORT. Returns the fd, or -1 with a message in `err`. */
int rt_net_listen(const char *hostport, bool reuseport, char *err, size_t errlen);
/* The port a bound socket got (for port 0). */
uint16_t rt_net_local_port(int fd);
/* "ip:port" of a sockaddr, into out. */
const char *rt_net_addr_str(const void *sockaddr, char *out, size_t cap);

#endif
