/* tls.c - OpenSSL context set-up (see tls.h). */
#include "tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

/* The ALPN list in wire form (length-prefixed names), built from "a,b". Stored as ex_data-free
 * static per context via SSL_CTX_set_app_data. */
static int alpn_wire(const char *list, unsigned char *out, size_t cap)
{
    size_t o = 0;
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n > 255 || o + 1 + n > cap) {
            return -1;
        }
        out[o++] = (unsigned char)n;
        memcpy(out + o, p, n);
        o += n;
        p = comma ? comma + 1 : NULL;
    }
    return (int)o;
}

static void ssl_reason(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char reason[256];
    ERR_error_string_n(e, reason, sizeof reason);
    snprintf(err, errlen, "tls: %s %s: %s", what, file ? file : "", reason);
    ERR_clear_error();
}

typedef struct alpn_pref {
    unsigned char wire[64];
    int len;
} alpn_pref;

static int alpn_ex_index = -1;

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    OPENSSL_free(ptr);
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    alpn_pref *pref = arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, pref->wire, (unsigned)pref->len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *rt_tls_server_ctx(const char *cert_file, const char *key_file, const char *client_ca,
                           const char *alpn, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_reason(err, errlen, "cannot create context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        ssl_reason(err, errlen, "cannot load certificate", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(err, errlen, "cannot load key", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason(err, errlen, "key does not match certificate", key_file);
        goto fail;
    }
    if (client_ca && *client_ca) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            ssl_reason(err, errlen, "cannot load client CA", client_ca);
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (alpn && *alpn) {
        if (alpn_ex_index < 0) {
            alpn_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
        }
        alpn_pref *pref = OPENSSL_zalloc(sizeof *pref);
        pref->len = alpn_wire(alpn, pref->wire, sizeof pref->wire);
        if (pref->len <= 0) {
            OPENSSL_free(pref);
            snprintf(err, errlen, "tls: bad ALPN list \"%s\"", alpn);
            goto fail;
        }
        SSL_CTX_set_ex_data(ctx, alpn_ex_index, pref);
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, pref);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *rt_tls_client_ctx(const char *ca_file, const char *cert_file, const char *key_file,
                           const char *alpn, int insecure_skip_verify, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ssl_reason(err, errlen, "cannot create context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (ca_file && *ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            ssl_reason(err, errlen, "cannot load CA", ca_file);
            goto fail;
        }
    } else {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    SSL_CTX_set_verify(ctx, insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (cert_file && *cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
            ssl_reason(err, errlen, "cannot load client certificate", cert_file);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key_file ? key_file : cert_file, SSL_FILETYPE_PEM) !=
            1) {
            ssl_reason(err, errlen, "cannot load client key", key_file);
            goto fail;
        }
    }
    if (alpn && *alpn) {
        unsigned char wire[64];
        int n = alpn_wire(alpn, wire, sizeof wire);
        if (n <= 0 || SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)n) != 0) {
            snprintf(err, errlen, "tls: bad ALPN list \"%s\"", alpn);
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

const char *rt_tls_alpn_selected(SSL *ssl, char *out, size_t cap)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    if (n >= cap) {
        n = (unsigned)cap - 1;
    }
    if (n) {
        memcpy(out, p, n);
    }
    out[n] = '\0';
    return out;
}
