// Test helpers for connectors/auth: RSA keys and self-signed certificates
// generated on the fly (no key material is checked in), RS256 verification
// with the public key, JWT decoding, and form-body parsing for fake token
// endpoints. testonly.
#ifndef TESSERA_CONNECTORS_AUTH_TESTING_TEST_KEYS_H_
#define TESSERA_CONNECTORS_AUTH_TESTING_TEST_KEYS_H_

#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace tessera::connectors::testing {

struct TestRsaKey {
  std::string private_pem;  // PKCS#8 "BEGIN PRIVATE KEY"
  std::string public_pem;   // "BEGIN PUBLIC KEY"
};

// A fresh RSA key (EVP keygen). CHECK-fails (aborts) if OpenSSL fails.
TestRsaKey GenerateRsaKey(int bits = 2048);
// A fresh EC P-256 private key in PKCS#8 PEM (for "not RSA" tests).
std::string GenerateEcKeyPem();
// A self-signed certificate for `key` (CN=tessera-test), and the SHA-1 digest
// of its DER encoding (the raw bytes behind "x5t").
struct TestCertificate {
  std::string pem;
  std::string der_sha1;
};
TestCertificate SelfSignedCertificate(const TestRsaKey& key);

// True when `jwt` is header.claims.signature with a valid RS256 signature by
// the key in `public_pem`.
bool VerifyRs256Jwt(absl::string_view jwt, absl::string_view public_pem);
// The decoded JSON text of part 0 (header) or 1 (claims) of a compact JWT;
// empty on error.
std::string JwtPart(absl::string_view jwt, int index);

// Parses an application/x-www-form-urlencoded body.
std::map<std::string, std::string> ParseForm(absl::string_view body);

}  // namespace tessera::connectors::testing

#endif  // TESSERA_CONNECTORS_AUTH_TESTING_TEST_KEYS_H_
