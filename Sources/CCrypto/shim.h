// Thin shim over OpenSSL's libcrypto: SHA-256 and HMAC-SHA256.
#ifndef BROWSERCLOUD_CCRYPTO_SHIM_H
#define BROWSERCLOUD_CCRYPTO_SHIM_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

/// SHA-256 of `data` into `out` (32 bytes).
static inline void bc_sha256(const unsigned char *data, size_t len, unsigned char *out) {
    SHA256(data, len, out);
}

/// HMAC-SHA256 of `data` under `key` into `out` (32 bytes). Returns 1 on success.
static inline int bc_hmac_sha256(const void *key, int key_len, const unsigned char *data, size_t data_len,
                                 unsigned char *out) {
    unsigned int out_len = 0;
    return HMAC(EVP_sha256(), key, key_len, data, data_len, out, &out_len) != NULL && out_len == 32;
}

/// Constant-time comparison (CRYPTO_memcmp). Returns 0 when equal.
static inline int bc_const_time_compare(const void *a, const void *b, size_t len) {
    return CRYPTO_memcmp(a, b, len);
}

#endif
