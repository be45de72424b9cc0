#include "connectors/gmail/mime_parser.h"

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::connectors::gmail {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// Fixtures from MimeKit (testdata/LICENSE-MimeKit), read from the runfiles.
std::string Fixture(const std::string &name) {
  const char *srcdir = std::getenv("TEST_SRCDIR");
  const char *workspace = std::getenv("TEST_WORKSPACE");
  std::string path = absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "tessera",
                                  "/connectors/gmail/testdata/", name);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool ValidUtf8(const std::string &s) {
  // Decoding to UTF-32 would need ICU; a strict structural check suffices here.
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

MimeMessage Parse(const std::string &raw, const MimeOptions &options = {}) {
  absl::StatusOr<MimeMessage> m = ParseMimeMessage(raw, options);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : MimeMessage();
}

TEST(DecodeBase64UrlTest, PaddedUnpaddedAndStandardAlphabet) {
  EXPECT_EQ(*DecodeBase64Url("SGkgdGVhbQ"), "Hi team");
  EXPECT_EQ(*DecodeBase64Url("SGkgdGVhbQ=="), "Hi team");
  EXPECT_EQ(*DecodeBase64Url("PGRpdj5IaSB0ZWFtPC9kaXY-"), "<div>Hi team</div>");
  EXPECT_EQ(*DecodeBase64Url("PGRpdj5IaSB0ZWFtPC9kaXY+"), "<div>Hi team</div>");
  EXPECT_EQ(*DecodeBase64Url("SGkg\r\ndGVh bQ"), "Hi team");
  EXPECT_EQ(*DecodeBase64Url(""), "");
  std::string bytes = "\xff\xfe\xfd binary ?>";
  EXPECT_EQ(*DecodeBase64Url(absl::WebSafeBase64Escape(bytes)), bytes);
  EXPECT_EQ(DecodeBase64Url("not base64!!").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBase64Url("a").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MimeParserTest, SimpleMultipartWithAttachment) {
  MimeMessage m = Parse(Fixture("simple-multipart.eml"));
  EXPECT_EQ(m.subject, "this is a simple multipart message");
  ASSERT_THAT(m.from, SizeIs(1));
  EXPECT_EQ(m.from[0].email, "mimekit@example.com");
  ASSERT_THAT(m.to, SizeIs(1));
  EXPECT_EQ(m.message_id, "54AD68C9E3B0184CAC6041320424FD1B5B81E74D@localhost.localdomain");
  ASSERT_TRUE(m.date.has_value());
  EXPECT_EQ(absl::ToUnixSeconds(*m.date), 1384265562);  // 09:12:42 -0500
  EXPECT_EQ(m.body, "This is the message body.");
  ASSERT_THAT(m.attachments, SizeIs(1));
  EXPECT_EQ(m.attachments[0].filename, "attachment.txt");
  EXPECT_EQ(m.attachments[0].mime_type, "application/octet-stream");
  EXPECT_TRUE(m.attachments[0].status.ok()) << m.attachments[0].status;
  EXPECT_EQ(m.attachments[0].text, "This is the base64 encoded attachment.");
}

TEST(MimeParserTest, EmbeddedMessage) {
  MimeMessage m = Parse(Fixture("simple-embedded-message.eml"));
  EXPECT_THAT(m.body, HasSubstr("This is the message body."));
  EXPECT_THAT(m.body, HasSubstr("Subject: embedded message"));
  EXPECT_THAT(m.body, HasSubstr("This is the embedded message body."));
  EXPECT_THAT(m.attachments, IsEmpty());
}

TEST(MimeParserTest, DigestOfMessages) {
  MimeMessage m = Parse(Fixture("multipart-digest.txt"));
  EXPECT_THAT(m.body, HasSubstr("Subject: submsg"));
  EXPECT_THAT(m.body, HasSubstr("m1 body"));
  EXPECT_THAT(m.body, HasSubstr("m2 body"));
}

TEST(MimeParserTest, Iso2022JpSubjectAndBody) {
  MimeMessage m = Parse(Fixture("japanese.txt"));
  EXPECT_THAT(m.subject, HasSubstr("日本語メールテスト"));
  EXPECT_THAT(m.subject, HasSubstr("(testing Japanese emails)"));
  EXPECT_THAT(m.body, HasSubstr("日本語が"));
  EXPECT_THAT(m.body, HasSubstr("テスト"));
}

TEST(MimeParserTest, RelatedHtmlRootFoundByTypeAndConvertedToText) {
  MimeMessage m = Parse(Fixture("multipart-related-mhtml.txt"));
  EXPECT_EQ(m.body, "def");
  EXPECT_THAT(m.attachments, IsEmpty());  // the inline image is a resource
}

TEST(MimeParserTest, AlternativePrefersPlainText) {
  MimeMessage m = Parse(Fixture("issue358.txt"));
  EXPECT_THAT(m.body, Not(HasSubstr("<")));
  EXPECT_FALSE(m.body.empty());
}

TEST(MimeParserTest, EveryFixtureParsesToValidUtf8) {
  for (const char *name : {"bounce.txt", "delivery-status.txt", "empty-multipart.txt",
                           "epilogue.txt", "issue358.txt", "japanese.txt", "missing-subtype.txt",
                           "multipart-digest.txt", "multipart-related-mhtml.txt", "rfc2060.txt",
                           "simple-embedded-message.eml", "simple-multipart.eml"}) {
    SCOPED_TRACE(name);
    MimeMessage m = Parse(Fixture(name));
    EXPECT_TRUE(ValidUtf8(m.body));
    EXPECT_TRUE(ValidUtf8(m.subject));
    for (const MimeAttachment &a : m.attachments) EXPECT_TRUE(ValidUtf8(a.text));
  }
}

TEST(MimeParserTest, BounceKeepsDeliveryStatus) {
  MimeMessage m = Parse(Fixture("delivery-status.txt"));
  EXPECT_EQ(m.subject, "email delivery error");
  EXPECT_FALSE(m.body.empty());
}

TEST(MimeParserTest, MissingSubtypeIsAnAttachmentNotACrash) {
  MimeMessage m = Parse(Fixture("missing-subtype.txt"));
  EXPECT_EQ(m.subject, "Test of an invalid mime-type");
  ASSERT_THAT(m.to, SizeIs(1));
  EXPECT_EQ(m.to[0].name, "someone else");
  EXPECT_EQ(FormatAddress(m.to[0]), "someone else <someone.else@somewhere.else.com>");
}

TEST(MimeParserTest, EmptyMultipart) {
  MimeMessage m = Parse(Fixture("empty-multipart.txt"));
  EXPECT_EQ(m.subject, "test of empty multipart/alternative");
}

// --- Generated messages ------------------------------------------------------

std::string Message(const std::string &headers, const std::string &body) {
  return absl::StrCat(
      "From: Ann <ann@x.com>\r\nTo: bob@x.com, \"Carol C\" <carol@x.com>\r\n"
      "Cc: team: dan@x.com, eve@x.com;\r\nSubject: Q3\r\n"
      "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMIME-Version: 1.0\r\n",
      headers, "\r\n", body);
}

TEST(MimeParserTest, HtmlOnlyBodyBecomesText) {
  MimeMessage m = Parse(Message("Content-Type: text/html; charset=utf-8\r\n",
                                "<html><body><p>Hello <b>team</b></p><script>x()</script>"
                                "<div>Q3 &amp; Q4</div></body></html>"));
  EXPECT_THAT(m.body, HasSubstr("Hello team"));
  EXPECT_THAT(m.body, HasSubstr("Q3 & Q4"));
  EXPECT_THAT(m.body, Not(HasSubstr("<")));
  EXPECT_THAT(m.body, Not(HasSubstr("x()")));
  // Groups are flattened.
  ASSERT_THAT(m.cc, SizeIs(2));
  EXPECT_EQ(m.cc[1].email, "eve@x.com");
  ASSERT_THAT(m.to, SizeIs(2));
  EXPECT_EQ(m.to[1].name, "Carol C");
  EXPECT_EQ(absl::ToUnixSeconds(*m.date), 1700000000);
}

TEST(MimeParserTest, AlternativeWithNestedAttachments) {
  std::string body =
      "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
      "--inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait, =\r\nsoft break\r\n"
      "--inner\r\nContent-Type: text/html\r\n\r\n<p>HTML version</p>\r\n--inner--\r\n"
      "--outer\r\nContent-Type: text/csv; name=\"q3.csv\"\r\n"
      "Content-Disposition: attachment; filename=\"q3.csv\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n" +
      absl::Base64Escape("region,sales\r\nnorth,10\r\n") +
      "\r\n--outer\r\nContent-Type: image/png\r\nContent-Disposition: attachment; "
      "filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
      "--outer\r\nContent-Type: text/html; name=\"page.html\"\r\n"
      "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.html\r\n\r\n"
      "<h1>Resume</h1><p>skills</p>\r\n--outer--\r\n";
  MimeMessage m = Parse(Message("Content-Type: multipart/mixed; boundary=outer\r\n", body));
  EXPECT_EQ(m.body, "Café au lait, soft break");
  ASSERT_THAT(m.attachments, SizeIs(3));
  EXPECT_EQ(m.attachments[0].filename, "q3.csv");
  EXPECT_THAT(m.attachments[0].text, HasSubstr("north; sales: 10"));
  EXPECT_EQ(m.attachments[1].filename, "logo.png");
  EXPECT_EQ(m.attachments[1].mime_type, "image/png");
  EXPECT_FALSE(m.attachments[1].status.ok());  // images are not text
  EXPECT_EQ(m.attachments[2].filename, "résumé.html");
  EXPECT_THAT(m.attachments[2].text, HasSubstr("skills"));
}

TEST(MimeParserTest, EncodedWordSubjectAndEightBitHeaders) {
  MimeMessage m = Parse(
      "From: =?utf-8?q?J=C3=BCrgen?= <j@x.com>\r\nSubject: =?utf-8?b?w7xiZXI=?= "
      "=?iso-8859-1?q?caf=E9?=\r\nContent-Type: text/plain\r\n\r\nbody\r\n");
  EXPECT_EQ(m.subject, "übercafé");
  EXPECT_EQ(m.from[0].name, "Jürgen");
  MimeMessage raw8 = Parse("Subject: caf\xe9 \xff\xfe\r\n\r\nbody\r\n");
  EXPECT_TRUE(ValidUtf8(raw8.subject));
  EXPECT_THAT(raw8.subject, HasSubstr("caf"));
}

TEST(MimeParserTest, BadCharsetIsBestEffort) {
  MimeMessage m = Parse(Message("Content-Type: text/plain; charset=x-no-such-charset\r\n",
                                "plain words \xe9\xff\r\n"));
  EXPECT_THAT(m.body, HasSubstr("plain words"));
  EXPECT_TRUE(ValidUtf8(m.body));
}

TEST(MimeParserTest, Base64GarbageDoesNotCrash) {
  MimeMessage m = Parse(Message("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",
                                "!!!! not base64 at all ### \x01\x02\xff====\r\nSGVsbG8=\r\n"));
  EXPECT_TRUE(ValidUtf8(m.body));
}

TEST(MimeParserTest, MissingAndUnusedBoundaries) {
  MimeMessage none =
      Parse(Message("Content-Type: multipart/mixed\r\n", "--x\r\n\r\ntext one\r\n--x--\r\n"));
  EXPECT_TRUE(ValidUtf8(none.body));
  MimeMessage unused = Parse(Message("Content-Type: multipart/mixed; boundary=nowhere\r\n",
                                     "--other\r\n\r\ntext two\r\n"));
  EXPECT_TRUE(ValidUtf8(unused.body));
  MimeMessage truncated =
      Parse(Message("Content-Type: multipart/mixed; boundary=b\r\n",
                    "--b\r\nContent-Type: text/plain\r\n\r\ntruncated part with no end"));
  EXPECT_THAT(truncated.body, HasSubstr("truncated part"));
}

TEST(MimeParserTest, HugeHeaderIsCapped) {
  std::string subject(2 << 20, 'a');
  MimeOptions options;
  options.max_header_bytes = 100;
  MimeMessage m = Parse(absl::StrCat("Subject: ", subject, "\r\n\r\nbody\r\n"), options);
  EXPECT_EQ(m.subject.size(), 100u);
  EXPECT_EQ(m.body, "body");
}

TEST(MimeParserTest, DeepNestingIsCapped) {
  const int kDepth = 2000;
  std::string body;
  for (int i = 0; i < kDepth; ++i) {
    absl::StrAppend(&body, "--b", i, "\r\nContent-Type: multipart/mixed; boundary=b", i + 1,
                    "\r\n\r\n");
  }
  absl::StrAppend(&body, "--b", kDepth, "\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n");
  for (int i = kDepth; i >= 0; --i) absl::StrAppend(&body, "--b", i, "--\r\n");
  MimeMessage m = Parse(Message("Content-Type: multipart/mixed; boundary=b0\r\n", body));
  EXPECT_THAT(m.warnings, Contains(HasSubstr("nested deeper")));

  std::string nested = "Subject: inner\r\nContent-Type: text/plain\r\n\r\ninnermost\r\n";
  for (int i = 0; i < 500; ++i) {
    nested = absl::StrCat("Subject: level ", i, "\r\nContent-Type: message/rfc822\r\n\r\n", nested);
  }
  MimeMessage m2 = Parse(nested);
  EXPECT_THAT(m2.warnings, Contains(HasSubstr("nested deeper")));
}

TEST(MimeParserTest, AttachmentCaps) {
  std::string body;
  for (int i = 0; i < 8; ++i) {
    absl::StrAppend(&body, "--b\r\nContent-Type: text/plain; name=\"a", i,
                    ".txt\"\r\nContent-Disposition: attachment; filename=\"a", i, ".txt\"\r\n\r\n",
                    std::string(i * 100, 'x'), "\r\n");
  }
  absl::StrAppend(&body, "--b--\r\n");
  MimeOptions options;
  options.max_attachments = 5;
  options.max_attachment_bytes = 250;
  MimeMessage m = Parse(Message("Content-Type: multipart/mixed; boundary=b\r\n", body), options);
  ASSERT_THAT(m.attachments, SizeIs(5));
  EXPECT_TRUE(m.attachments[2].status.ok());
  EXPECT_EQ(m.attachments[3].status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m.attachments[3].size, 300u);
  EXPECT_THAT(m.warnings, Contains(HasSubstr("a7.txt")));
}

TEST(MimeParserTest, LimitsAndEmptyInput) {
  EXPECT_EQ(ParseMimeMessage("").status().code(), absl::StatusCode::kInvalidArgument);
  MimeOptions options;
  options.max_message_bytes = 10;
  EXPECT_EQ(ParseMimeMessage("Subject: too long\r\n\r\n", options).status().code(),
            absl::StatusCode::kResourceExhausted);
  options = {};
  options.max_body_bytes = 5;
  MimeMessage m = Parse("Subject: x\r\n\r\nhello world\r\n", options);
  EXPECT_EQ(m.body, "hello");
}

TEST(MimeParserTest, ConcurrentParses) {
  std::string raw = Fixture("simple-multipart.eml");
  std::vector<std::thread> threads;
  std::vector<std::string> bodies(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        absl::StatusOr<MimeMessage> m = ParseMimeMessage(raw);
        if (m.ok()) bodies[t] = m->body;
      }
    });
  }
  for (std::thread &t : threads) t.join();
  for (const std::string &b : bodies) EXPECT_EQ(b, "This is the message body.");
}

TEST(MimeParserTest, RandomlyCorruptedFixturesNeverCrash) {
  std::mt19937 rng(7);
  std::vector<std::string> fixtures = {
      Fixture("simple-multipart.eml"), Fixture("bounce.txt"), Fixture("multipart-digest.txt"),
      Fixture("multipart-related-mhtml.txt"), Fixture("japanese.txt")};
  for (int i = 0; i < 300; ++i) {
    std::string raw = fixtures[i % fixtures.size()];
    int edits = 1 + static_cast<int>(rng() % 20);
    for (int e = 0; e < edits && !raw.empty(); ++e) {
      size_t pos = rng() % raw.size();
      switch (rng() % 3) {
        case 0:
          raw[pos] = static_cast<char>(rng());
          break;
        case 1:
          raw.erase(pos, rng() % 40);
          break;
        default:
          raw.insert(pos, raw.substr(rng() % raw.size(), rng() % 80));
      }
    }
    absl::StatusOr<MimeMessage> m = ParseMimeMessage(raw);
    if (m.ok()) {
      EXPECT_TRUE(ValidUtf8(m->body));
      EXPECT_TRUE(ValidUtf8(m->subject));
    }
  }
}

}  // namespace
}  // namespace tessera::connectors::gmail
