#include "connectors/auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::connectors {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

// The last OpenSSL error as text, and the error queue cleared (so a failure
// here does not leak into an unrelated later call on this thread).
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

std::unique_ptr<BIO, BioFree> MemBio(absl::string_view data) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

}  // namespace

std::string Base64UrlEncode(absl::string_view bytes) {
  // absl's web-safe alphabet, without padding.
  return absl::WebSafeBase64Escape(bytes);
}

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text) {
  std::string out;
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (!absl::WebSafeBase64Unescape(text, &out)) {
    return absl::InvalidArgumentError("malformed base64url text");
  }
  return out;
}

absl::StatusOr<RsaPrivateKey> RsaPrivateKey::FromPem(absl::string_view pem) {
  if (pem.find("-----BEGIN") == absl::string_view::npos) {
    return absl::InvalidArgumentError("the private key is not in PEM format");
  }
  auto bio = MemBio(pem);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  // A null password callback with "" refuses encrypted keys instead of
  // prompting on the terminal.
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>(""));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse the PEM private key: ", OpenSslError()));
  }
  std::shared_ptr<evp_pkey_st> owned(key, EVP_PKEY_free);
  if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
    return absl::InvalidArgumentError("the private key is not an RSA key (RS256 needs RSA)");
  }
  if (EVP_PKEY_bits(key) < 2048) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the RSA key has %d bits; at least 2048 are required", EVP_PKEY_bits(key)));
  }
  return RsaPrivateKey(std::move(owned));
}

absl::StatusOr<std::string> RsaPrivateKey::SignSha256(absl::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return absl::InternalError("EVP_MD_CTX_new failed");
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
    return absl::InternalError(absl::StrCat("EVP_DigestSignInit: ", OpenSslError()));
  }
  size_t length = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &length, in, data.size()) != 1) {
    return absl::InternalError(absl::StrCat("EVP_DigestSign: ", OpenSslError()));
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, in,
                     data.size()) != 1) {
    return absl::InternalError(absl::StrCat("EVP_DigestSign: ", OpenSslError()));
  }
  signature.resize(length);
  return signature;
}

absl::StatusOr<std::string> SignJwtRs256(absl::string_view header_json,
                                         absl::string_view claims_json,
                                         const RsaPrivateKey& key) {
  std::string signing_input =
      absl::StrCat(Base64UrlEncode(header_json), ".", Base64UrlEncode(claims_json));
  absl::StatusOr<std::string> signature = key.SignSha256(signing_input);
  if (!signature.ok()) return signature.status();
  return absl::StrCat(signing_input, ".", Base64UrlEncode(*signature));
}

absl::StatusOr<CertificateThumbprints> ComputeCertificateThumbprints(absl::string_view pem) {
  auto bio = MemBio(pem);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse the PEM certificate: ", OpenSslError()));
  }
  CertificateThumbprints out;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert.get(), EVP_sha1(), digest, &length) != 1) {
    return absl::InternalError(absl::StrCat("X509_digest: ", OpenSslError()));
  }
  out.x5t = Base64UrlEncode(absl::string_view(reinterpret_cast<char*>(digest), length));
  if (X509_digest(cert.get(), EVP_sha256(), digest, &length) != 1) {
    return absl::InternalError(absl::StrCat("X509_digest: ", OpenSslError()));
  }
  out.x5t_s256 = Base64UrlEncode(absl::string_view(reinterpret_cast<char*>(digest), length));
  return out;
}

std::string RandomUuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) std::abort();  // no randomness: nothing is safe
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

}  // namespace tessera::connectors
