// Thin shim over OpenSSL's libcrypto: SHA-256, HMAC-SHA256, Ed25519 (RFC 8032) and random bytes.
#ifndef BROWSERCLOUD_CCRYPTO_SHIM_H
#define BROWSERCLOUD_CCRYPTO_SHIM_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/rand.h>

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

/// `len` bytes from OpenSSL's cryptographically secure generator (RAND_bytes). Returns 1 on success.
static inline int bc_random_bytes(unsigned char *out, int len) {
    return RAND_bytes(out, len);
}

/// The Ed25519 public key (32 bytes into `public_key`) of the 32-byte private key `seed` (RFC 8032
/// section 5.1.5). Returns 1 on success.
static inline int bc_ed25519_public_key(const unsigned char *seed, unsigned char *public_key) {
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    if (key == NULL) return 0;
    size_t len = 32;
    int ok = EVP_PKEY_get_raw_public_key(key, public_key, &len) == 1 && len == 32;
    EVP_PKEY_free(key);
    return ok;
}

/// The Ed25519 signature (64 bytes into `signature`) of `message` under the 32-byte private key `seed`
static inline int bc_ed25519_sign_parsed(EVP_PKEY *key, const unsigned char *message, size_t message_len,
                                         unsigned char *signature);

/// (pure Ed25519, RFC 8032 section 5.1.6: no pre-hash, so the digest is NULL). Returns 1 on success.
static inline int bc_ed25519_sign(const unsigned char *seed, const unsigned char *message, size_t message_len,
                                  unsigned char *signature) {
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    if (key == NULL) return 0;
    int ok = bc_ed25519_sign_parsed(key, message, message_len, signature);
    EVP_PKEY_free(key);
    return ok;
}

/// 1 when libcrypto accepts the 32 bytes at `public_key` as an Ed25519 public key.
static inline int bc_ed25519_key_parses(const unsigned char *public_key) {
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key, 32);
    if (key == NULL) return 0;
    EVP_PKEY_free(key);
    return 1;
}

/// 1 when `signature` (64 bytes) is a valid Ed25519 signature of `message` under `public_key` (32 bytes),
/// RFC 8032 section 5.1.7; 0 when it is not, or when the key is not a valid encoding.
static inline int bc_ed25519_verify(const unsigned char *public_key, const unsigned char *message, size_t message_len,
                                    const unsigned char *signature) {
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key, 32);
    if (key == NULL) return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL
        && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1
        && EVP_DigestVerify(ctx, signature, 64, message, message_len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return ok;
}

/// A parsed Ed25519 private key (from its 32-byte seed), for signing many messages without deriving the
/// public key again on every call: NULL when libcrypto refuses. Free it with bc_ed25519_key_free.
static inline EVP_PKEY *bc_ed25519_private_key_new(const unsigned char *seed) {
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
}

/// A parsed Ed25519 public key (32 bytes), or NULL. Free it with bc_ed25519_key_free.
static inline EVP_PKEY *bc_ed25519_public_key_new(const unsigned char *public_key) {
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key, 32);
}

static inline void bc_ed25519_key_free(EVP_PKEY *key) {
    EVP_PKEY_free(key);
}

/// bc_ed25519_sign with a parsed private key. Returns 1 on success.
static inline int bc_ed25519_sign_parsed(EVP_PKEY *key, const unsigned char *message, size_t message_len,
                                         unsigned char *signature) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 64;
    int ok = ctx != NULL
        && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1
        && EVP_DigestSign(ctx, signature, &len, message, message_len) == 1
        && len == 64;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/// bc_ed25519_verify with a parsed public key: 1 when `signature` (64 bytes) is valid for `message`.
static inline int bc_ed25519_verify_parsed(EVP_PKEY *key, const unsigned char *message, size_t message_len,
                                           const unsigned char *signature) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL
        && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1
        && EVP_DigestVerify(ctx, signature, 64, message, message_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

#endif
