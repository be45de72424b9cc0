// JSON Web Tokens signed with RS256 (RSASSA-PKCS1-v1_5 with SHA-256), through
// OpenSSL's EVP_DigestSign. Shared by the Google service-account flow (the
// jwt-bearer grant) and the Microsoft certificate flow (a client assertion).
//
// Only signing lives here: Tessera never has to accept a JWT from outside.
#ifndef TESSERA_CONNECTORS_AUTH_JWT_H_
#define TESSERA_CONNECTORS_AUTH_JWT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header.

namespace tessera::connectors {

// base64url (RFC 4648 section 5) without padding, as JWS requires.
[[nodiscard]] std::string Base64UrlEncode(absl::string_view bytes);
// Accepts input with or without '=' padding. INVALID_ARGUMENT when malformed.
[[nodiscard]] absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text);

// An RSA private key. Copies share one immutable OpenSSL key; signing is
// thread-safe.
class RsaPrivateKey {
 public:
  // Parses a PEM private key: PKCS#8 ("BEGIN PRIVATE KEY", as in Google's JSON
  // keys) or PKCS#1 ("BEGIN RSA PRIVATE KEY"). Errors: INVALID_ARGUMENT when
  // the text is not a PEM private key, or the key is not RSA or is shorter
  // than 2048 bits. The message never quotes the key.
  [[nodiscard]] static absl::StatusOr<RsaPrivateKey> FromPem(absl::string_view pem);

  // RS256 signature of `data`. INTERNAL if OpenSSL fails.
  [[nodiscard]] absl::StatusOr<std::string> SignSha256(absl::string_view data) const;

  evp_pkey_st* raw() const { return key_.get(); }

 private:
  explicit RsaPrivateKey(std::shared_ptr<evp_pkey_st> key) : key_(std::move(key)) {}
  std::shared_ptr<evp_pkey_st> key_;
};

// Returns "<b64url(header)>.<b64url(claims)>.<b64url(RS256 signature)>".
// `header_json` and `claims_json` are serialized JSON objects; the header
// must say {"alg":"RS256",...} (the caller builds it, adding kid/x5t).
[[nodiscard]] absl::StatusOr<std::string> SignJwtRs256(absl::string_view header_json,
                                                       absl::string_view claims_json,
                                                       const RsaPrivateKey& key);

// Thumbprints of a PEM X.509 certificate, as base64url of the digest of its
// DER encoding: "x5t" (SHA-1, what Microsoft Entra ID matches) and
// "x5t#S256" (SHA-256). INVALID_ARGUMENT when `pem` is not a certificate.
struct CertificateThumbprints {
  std::string x5t;
  std::string x5t_s256;
};
[[nodiscard]] absl::StatusOr<CertificateThumbprints> ComputeCertificateThumbprints(
    absl::string_view pem);

// 16 random bytes as a UUID string (for "jti"). CHECK-fails if the system's
// random source fails.
[[nodiscard]] std::string RandomUuid();

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_AUTH_JWT_H_
