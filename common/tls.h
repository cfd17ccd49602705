/* tls.h - OpenSSL contexts for ringtail's listeners and outgoing connections.
 *
 * Servers: a certificate and key; with `client_ca` set, clients must present a certificate
 * signed by it (mTLS). ALPN: the server picks the first of its `alpn` list the client offers
 * ("h2" for gRPC listeners, "http/1.1" for OTLP/HTTP).
 * Clients: `ca_file` to verify the server (system store when NULL), optional client
 * certificate and key for mTLS, optional ALPN list.
 */
#ifndef RT_TLS_H
#define RT_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* `alpn` is a comma-separated list ("h2" or "http/1.1"), or NULL. Returns a new context or NULL
 * with a message in `err` naming the file and OpenSSL's reason. */
SSL_CTX *rt_tls_server_ctx(const char *cert_file, const char *key_file, const char *client_ca,
                           const char *alpn, char *err, size_t errlen);
/* `insecure_skip_verify` disables verification (tests only). */
SSL_CTX *rt_tls_client_ctx(const char *ca_file, const char *cert_file, const char *key_file,
                           const char *alpn, int insecure_skip_verify, char *err, size_t errlen);
/* The protocol ALPN chose on `ssl` ("h2", "http/1.1"), or "" if none. Copies into out. */
const char *rt_tls_alpn_selected(SSL *ssl, char *out, size_t cap);

#endif
