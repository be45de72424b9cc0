#include "connectors/auth/jwt.h"

#include <string>

#include "absl/strings/escaping.h"
#include "connectors/auth/testing/test_keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const testing::TestRsaKey& Key() {
  static const auto* key = new testing::TestRsaKey(testing::GenerateRsaKey());
  return *key;
}

TEST(Base64UrlTest, NoPaddingAndUrlAlphabet) {
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xfe"), "-__-");
  EXPECT_EQ(*Base64UrlDecode("Zm8"), "fo");
  EXPECT_EQ(*Base64UrlDecode("Zm8="), "fo");
  EXPECT_EQ(*Base64UrlDecode("-__-"), "\xfb\xff\xfe");
  EXPECT_FALSE(Base64UrlDecode("not base64!").ok());
}

TEST(JwtTest, SignsRs256VerifiableWithThePublicKey) {
  auto key = RsaPrivateKey::FromPem(Key().private_pem);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string header = R"({"alg":"RS256","typ":"JWT"})";
  const std::string claims = R"({"iss":"a@b.iam.gserviceaccount.com","iat":1700000000})";
  auto jwt = SignJwtRs256(header, claims, *key);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_THAT(*jwt, Not(HasSubstr("=")));
  EXPECT_THAT(*jwt, Not(HasSubstr("+")));
  EXPECT_THAT(*jwt, Not(HasSubstr("/")));
  EXPECT_EQ(testing::JwtPart(*jwt, 0), header);
  EXPECT_EQ(testing::JwtPart(*jwt, 1), claims);
  EXPECT_TRUE(testing::VerifyRs256Jwt(*jwt, Key().public_pem));
  // A signature is 256 bytes for a 2048-bit key.
  EXPECT_EQ(testing::JwtPart(*jwt, 2).size(), 256u);

  // Another key's public half does not verify it; a tampered claim fails.
  EXPECT_FALSE(testing::VerifyRs256Jwt(*jwt, testing::GenerateRsaKey().public_pem));
  std::string tampered = *jwt;
  tampered[tampered.find('.') + 3] ^= 1;
  EXPECT_FALSE(testing::VerifyRs256Jwt(tampered, Key().public_pem));
}

TEST(JwtTest, RejectsBadKeys) {
  EXPECT_EQ(RsaPrivateKey::FromPem("garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RsaPrivateKey::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  auto ec = RsaPrivateKey::FromPem(testing::GenerateEcKeyPem());
  EXPECT_EQ(ec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ec.status().message(), HasSubstr("not an RSA key"));
  auto small = RsaPrivateKey::FromPem(testing::GenerateRsaKey(1024).private_pem);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(small.status().message(), HasSubstr("2048"));
  // The public half is not a private key, and no message quotes key text.
  auto pub = RsaPrivateKey::FromPem(Key().public_pem);
  EXPECT_FALSE(pub.ok());
  EXPECT_THAT(pub.status().message(), Not(HasSubstr("MII")));
}

TEST(JwtTest, CertificateThumbprints) {
  testing::TestCertificate cert = testing::SelfSignedCertificate(Key());
  auto thumbprints = ComputeCertificateThumbprints(cert.pem);
  ASSERT_TRUE(thumbprints.ok()) << thumbprints.status();
  EXPECT_EQ(thumbprints->x5t, absl::WebSafeBase64Escape(cert.der_sha1));
  EXPECT_EQ(thumbprints->x5t.size(), 27u);       // 20 bytes, unpadded
  EXPECT_EQ(thumbprints->x5t_s256.size(), 43u);  // 32 bytes, unpadded
  EXPECT_EQ(ComputeCertificateThumbprints(Key().private_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JwtTest, RandomUuidIsVersion4) {
  std::string a = RandomUuid();
  std::string b = RandomUuid();
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_THAT(std::string("89ab"), HasSubstr(std::string(1, a[19])));
}

}  // namespace
}  // namespace tessera::connectors
