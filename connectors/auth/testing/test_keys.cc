#include "connectors/auth/testing/test_keys.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"

namespace tessera::connectors::testing {
namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

EVP_PKEY* ReadPrivate(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return key;
}

std::string Base64UrlDecodeLoose(absl::string_view text) {
  std::string out;
  if (!absl::WebSafeBase64Unescape(text, &out)) return "";
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string FormDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() + 0 && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

TestRsaKey GenerateRsaKey(int bits) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nullptr);
  Check(ctx != nullptr);
  Check(EVP_PKEY_keygen_init(ctx) == 1);
  Check(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) == 1);
  EVP_PKEY* key = nullptr;
  Check(EVP_PKEY_keygen(ctx, &key) == 1);
  EVP_PKEY_CTX_free(ctx);
  TestRsaKey out;
  BIO* priv = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  out.private_pem = BioToString(priv);
  BIO_free(priv);
  BIO* pub = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_PUBKEY(pub, key) == 1);
  out.public_pem = BioToString(pub);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return out;
}

std::string GenerateEcKeyPem() {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr);
  Check(ctx != nullptr);
  Check(EVP_PKEY_keygen_init(ctx) == 1);
  Check(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) == 1);
  EVP_PKEY* key = nullptr;
  Check(EVP_PKEY_keygen(ctx, &key) == 1);
  EVP_PKEY_CTX_free(ctx);
  BIO* bio = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  std::string pem = BioToString(bio);
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

TestCertificate SelfSignedCertificate(const TestRsaKey& key) {
  EVP_PKEY* pkey = ReadPrivate(key.private_pem);
  Check(pkey != nullptr);
  X509* cert = X509_new();
  Check(X509_set_version(cert, 2) == 1);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 365);
  Check(X509_set_pubkey(cert, pkey) == 1);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("tessera-test"), -1, -1, 0);
  Check(X509_set_issuer_name(cert, name) == 1);
  Check(X509_sign(cert, pkey, EVP_sha256()) > 0);
  TestCertificate out;
  BIO* bio = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_X509(bio, cert) == 1);
  out.pem = BioToString(bio);
  BIO_free(bio);
  // SHA-1 over the DER encoding, computed independently of X509_digest.
  unsigned char* der = nullptr;
  int der_len = i2d_X509(cert, &der);
  Check(der_len > 0);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  Check(EVP_Digest(der, der_len, digest, &digest_len, EVP_sha1(), nullptr) == 1);
  out.der_sha1 = std::string(reinterpret_cast<char*>(digest), digest_len);
  OPENSSL_free(der);
  X509_free(cert);
  EVP_PKEY_free(pkey);
  return out;
}

bool VerifyRs256Jwt(absl::string_view jwt, absl::string_view public_pem) {
  std::vector<absl::string_view> parts = absl::StrSplit(jwt, '.');
  if (parts.size() != 3) return false;
  std::string signature = Base64UrlDecodeLoose(parts[2]);
  if (signature.empty()) return false;
  BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const std::string signed_part = std::string(jwt.substr(0, parts[0].size() + 1 + parts[1].size()));
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                             signature.size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()),
                             signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok;
}

std::string JwtPart(absl::string_view jwt, int index) {
  std::vector<absl::string_view> parts = absl::StrSplit(jwt, '.');
  if (parts.size() != 3 || index < 0 || index > 2) return "";
  return Base64UrlDecodeLoose(parts[index]);
}

std::map<std::string, std::string> ParseForm(absl::string_view body) {
  std::map<std::string, std::string> out;
  for (absl::string_view pair : absl::StrSplit(body, '&', absl::SkipEmpty())) {
    size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) {
      out[FormDecode(pair)] = "";
    } else {
      out[FormDecode(pair.substr(0, eq))] = FormDecode(pair.substr(eq + 1));
    }
  }
  return out;
}

}  // namespace tessera::connectors::testing
