#include "connectors/gmail/mime_parser.h"

#include <gmime/gmime.h>

#include <memory>
#include <utility>

#include "absl/base/call_once.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "connectors/parse/charset.h"
#include "connectors/parse/document_parser.h"
#include "connectors/parse/utf8.h"

namespace tessera::connectors::gmail {
namespace {

constexpr size_t kMaxWarnings = 50;
constexpr int kMaxAddressDepth = 4;

void InitGmime() {
  static absl::once_flag once;
  absl::call_once(once, [] { g_mime_init(); });
}

struct GObjectUnref {
  void operator()(gpointer p) const {
    if (p != nullptr) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

struct OptionsFree {
  void operator()(GMimeParserOptions *p) const { g_mime_parser_options_free(p); }
};

std::string Sanitize(const char *s, size_t max_bytes) {
  if (s == nullptr) return "";
  std::string out;
  parse::AppendSanitizedUtf8(s, &out);
  // Unfolded headers should have no line breaks; hostile ones may.
  absl::StrReplaceAll({{"\r\n", " "}, {"\r", " "}, {"\n", " "}, {"\t", " "}}, &out);
  absl::string_view stripped = absl::StripAsciiWhitespace(out);
  return std::string(parse::TruncateUtf8(stripped, max_bytes));
}

class Walker {
 public:
  Walker(const MimeOptions &options, MimeMessage *out) : options_(options), out_(out) {}

  void Warn(std::string w) {
    if (out_->warnings.size() < kMaxWarnings) out_->warnings.push_back(std::move(w));
  }

  void Addresses(InternetAddressList *list, std::vector<MailAddress> *out, int depth = 0) {
    if (list == nullptr || depth > kMaxAddressDepth) return;
    int n = internet_address_list_length(list);
    for (int i = 0; i < n && out->size() < 1000; ++i) {
      InternetAddress *ia = internet_address_list_get_address(list, i);
      if (ia == nullptr) continue;
      if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
        MailAddress a;
        a.name = Sanitize(internet_address_get_name(ia), options_.max_header_bytes);
        a.email = Sanitize(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)),
                           options_.max_header_bytes);
        if (!a.email.empty() || !a.name.empty()) out->push_back(std::move(a));
      } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
        Addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), out, depth + 1);
      }
    }
  }

  void Headers(GMimeMessage *message, MimeMessage *m) {
    m->subject = Sanitize(g_mime_message_get_subject(message), options_.max_header_bytes);
    Addresses(g_mime_message_get_from(message), &m->from);
    Addresses(g_mime_message_get_to(message), &m->to);
    Addresses(g_mime_message_get_cc(message), &m->cc);
    GDateTime *date = g_mime_message_get_date(message);
    if (date != nullptr) m->date = absl::FromUnixSeconds(g_date_time_to_unix(date));
    m->message_id = Sanitize(g_mime_message_get_message_id(message), options_.max_header_bytes);
  }

  // The part's content with its transfer encoding undone.
  std::string Decoded(GMimePart *part) {
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    if (content == nullptr) return "";
    GPtr<GMimeStream> stream(g_mime_stream_mem_new());
    if (g_mime_data_wrapper_write_to_stream(content, stream.get()) < 0) {
      Warn("a part's content could not be decoded");
    }
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream.get()));
    if (bytes == nullptr || bytes->len == 0) return "";
    return std::string(reinterpret_cast<const char *>(bytes->data), bytes->len);
  }

  static std::string MediaType(GMimeObject *obj) {
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (ct == nullptr) return "application/octet-stream";
    const char *type = g_mime_content_type_get_media_type(ct);
    const char *sub = g_mime_content_type_get_media_subtype(ct);
    return absl::AsciiStrToLower(
        absl::StrCat(type ? type : "application", "/", sub ? sub : "octet-stream"));
  }

  static std::string Param(GMimeObject *obj, const char *name) {
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *v = ct == nullptr ? nullptr : g_mime_content_type_get_parameter(ct, name);
    return v == nullptr ? "" : std::string(v);
  }

  // A text or HTML part as UTF-8 text.
  std::string PartText(GMimePart *part, const std::string &type) {
    std::string bytes = Decoded(part);
    if (bytes.size() > options_.max_body_bytes) {
      bytes.resize(options_.max_body_bytes);
      Warn(absl::StrCat("a text part was cut at ", options_.max_body_bytes, " bytes"));
    }
    std::string charset = absl::AsciiStrToLower(Param(GMIME_OBJECT(part), "charset"));
    if (type == "text/html") {
      parse::ParseOptions po = options_.parse_options;
      po.charset = charset;
      absl::StatusOr<parse::ParsedDocument> doc = parse::ParseDocument(bytes, "text/html", po);
      if (!doc.ok()) {
        Warn(absl::StrCat("HTML body not extracted: ", doc.status().message()));
        return "";
      }
      return SectionsText(*doc);
    }
    absl::StatusOr<parse::DecodedText> text =
        parse::DecodeText(bytes, charset, options_.max_body_bytes * 4 + 1024);
    if (!text.ok()) {
      Warn(absl::StrCat("text part not decoded: ", text.status().message()));
      return "";
    }
    for (std::string &w : text->warnings) Warn(std::move(w));
    absl::StrReplaceAll({{"\r\n", "\n"}}, &text->text);
    return std::move(text->text);
  }

  static std::string SectionsText(const parse::ParsedDocument &doc) {
    std::vector<std::string> parts;
    for (const parse::ParsedSection &s : doc.sections) {
      if (!s.heading.empty()) parts.push_back(s.heading);
      if (!s.text.empty()) parts.push_back(s.text);
    }
    return absl::StrJoin(parts, "\n\n");
  }

  void AppendBody(absl::string_view text) {
    text = absl::StripAsciiWhitespace(text);
    if (text.empty()) return;
    if (!out_->body.empty()) out_->body.append("\n\n");
    out_->body.append(text.data(), text.size());
  }

  static bool IsAttachmentDisposition(GMimeObject *obj) {
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
    return d != nullptr && g_mime_content_disposition_is_attachment(d);
  }

  static bool IsBodyText(GMimeObject *obj, const std::string &type, const std::string &filename) {
    if (!filename.empty() || IsAttachmentDisposition(obj)) return false;
    return absl::StartsWith(type, "text/") || type == "message/delivery-status" ||
           type == "message/disposition-notification";
  }

  void Attachment(GMimePart *part, const std::string &type, std::string filename) {
    if (attachments_seen_++ >= options_.max_attachments) {
      Warn(absl::StrCat("attachment '", filename, "' skipped: more than ", options_.max_attachments,
                        " attachments"));
      return;
    }
    MimeAttachment a;
    a.filename = std::move(filename);
    a.mime_type = type;
    std::string bytes = Decoded(part);
    a.size = bytes.size();
    if (a.size > options_.max_attachment_bytes) {
      a.status = absl::ResourceExhaustedError(absl::StrCat(
          "attachment is ", a.size, " bytes, over the limit of ", options_.max_attachment_bytes));
    } else if (!options_.parse_attachments) {
      a.status = absl::FailedPreconditionError("attachments are not parsed");
    } else {
      parse::ParseOptions po = options_.parse_options;
      po.charset = absl::AsciiStrToLower(Param(GMIME_OBJECT(part), "charset"));
      bool generic = type == "application/octet-stream" || type.empty();
      absl::string_view hint =
          !a.filename.empty() && (generic || a.filename.find('.') != std::string::npos)
              ? absl::string_view(a.filename)
              : absl::string_view(type);
      absl::StatusOr<parse::ParsedDocument> doc = parse::ParseDocument(bytes, hint, po);
      if (doc.ok()) {
        a.text = SectionsText(*doc);
      } else {
        a.status = doc.status();
      }
    }
    out_->attachments.push_back(std::move(a));
  }

  static std::string Summary(const MimeMessage &m) {
    std::vector<std::string> lines;
    auto list = [](const std::vector<MailAddress> &as) {
      std::vector<std::string> s;
      for (const MailAddress &a : as) s.push_back(FormatAddress(a));
      return absl::StrJoin(s, ", ");
    };
    if (!m.from.empty()) lines.push_back(absl::StrCat("From: ", list(m.from)));
    if (!m.to.empty()) lines.push_back(absl::StrCat("To: ", list(m.to)));
    if (!m.cc.empty()) lines.push_back(absl::StrCat("Cc: ", list(m.cc)));
    if (m.date) {
      lines.push_back(absl::StrCat(
          "Date: ", absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", *m.date, absl::UTCTimeZone())));
    }
    if (!m.subject.empty()) lines.push_back(absl::StrCat("Subject: ", m.subject));
    return absl::StrJoin(lines, "\n");
  }

  void Walk(GMimeObject *obj, int depth) {
    if (obj == nullptr) return;
    if (depth > options_.max_depth) {
      if (!depth_warned_)
        Warn(absl::StrCat("parts nested deeper than ", options_.max_depth, " levels were skipped"));
      depth_warned_ = true;
      return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
      GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
      if (inner == nullptr) return;
      MimeMessage headers;
      Headers(inner, &headers);
      AppendBody(absl::StrCat("---------- Embedded message ----------\n", Summary(headers)));
      Walk(g_mime_message_get_mime_part(inner), depth + 1);
      return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
      GMimeMultipart *mp = GMIME_MULTIPART(obj);
      int n = g_mime_multipart_get_count(mp);
      std::string type = MediaType(obj);
      if (type == "multipart/alternative" && n > 0) {
        // Prefer text/plain with content, else HTML, else the last (richest) part.
        GMimeObject *html = nullptr;
        for (int i = 0; i < n; ++i) {
          GMimeObject *child = g_mime_multipart_get_part(mp, i);
          std::string ct = MediaType(child);
          if (ct == "text/plain" && GMIME_IS_PART(child) && !IsAttachmentDisposition(child)) {
            std::string text = PartText(GMIME_PART(child), ct);
            if (!absl::StripAsciiWhitespace(text).empty()) {
              AppendBody(text);
              return;
            }
          } else if (ct == "text/html" && html == nullptr) {
            html = child;
          }
        }
        Walk(html != nullptr ? html : g_mime_multipart_get_part(mp, n - 1), depth + 1);
        return;
      }
      if (type == "multipart/related" && n > 0) {
        // The root is the body (RFC 2387: the part named by `start`, else the
        // first; in practice also the first of the declared `type`); the rest
        // are its inline resources, kept only when they are explicit attachments.
        std::string start(absl::StripSuffix(absl::StripPrefix(Param(obj, "start"), "<"), ">"));
        std::string root_type = absl::AsciiStrToLower(Param(obj, "type"));
        int root = -1;
        for (int i = 0; i < n && root < 0 && !start.empty(); ++i) {
          const char *cid = g_mime_object_get_content_id(g_mime_multipart_get_part(mp, i));
          if (cid != nullptr && start == cid) root = i;
        }
        for (int i = 0; i < n && root < 0 && !root_type.empty(); ++i) {
          if (MediaType(g_mime_multipart_get_part(mp, i)) == root_type) root = i;
        }
        if (root < 0) root = 0;
        Walk(g_mime_multipart_get_part(mp, root), depth + 1);
        for (int i = 0; i < n; ++i) {
          GMimeObject *child = g_mime_multipart_get_part(mp, i);
          if (i != root && IsAttachmentDisposition(child)) Walk(child, depth + 1);
        }
        return;
      }
      for (int i = 0; i < n; ++i) Walk(g_mime_multipart_get_part(mp, i), depth + 1);
      return;
    }
    if (GMIME_IS_PART(obj)) {
      GMimePart *part = GMIME_PART(obj);
      std::string type = MediaType(obj);
      std::string filename = Sanitize(g_mime_part_get_filename(part), options_.max_header_bytes);
      if (IsBodyText(obj, type, filename)) {
        AppendBody(PartText(part, type == "text/html" ? type : "text/plain"));
      } else {
        Attachment(part, type, std::move(filename));
      }
    }
  }

 private:
  const MimeOptions &options_;
  MimeMessage *const out_;
  int attachments_seen_ = 0;
  bool depth_warned_ = false;
};

void OnParserWarning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer data) {
  auto *warnings = static_cast<std::vector<std::string> *>(data);
  if (warnings->size() >= 10) return;
  warnings->push_back(absl::StrCat("MIME structure problem ", static_cast<int>(code), " at byte ",
                                   offset,
                                   item != nullptr ? absl::StrCat(": ", Sanitize(item, 80)) : ""));
}

}  // namespace

std::string FormatAddress(const MailAddress &address) {
  if (address.name.empty()) return address.email;
  if (address.email.empty()) return address.name;
  return absl::StrCat(address.name, " <", address.email, ">");
}

absl::StatusOr<std::string> DecodeBase64Url(absl::string_view data) {
  std::string clean;
  clean.reserve(data.size());
  for (char c : data) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) continue;
    if (c == '+') c = '-';
    if (c == '/') c = '_';
    clean.push_back(c);
  }
  // absl accepts both padded and unpadded input.
  std::string out;
  if (!absl::WebSafeBase64Unescape(clean, &out)) {
    return absl::InvalidArgumentError("data is not valid base64url");
  }
  return out;
}

absl::StatusOr<MimeMessage> ParseMimeMessage(absl::string_view rfc822, const MimeOptions &options) {
  if (rfc822.size() > options.max_message_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "message is ", rfc822.size(), " bytes, over the limit of ", options.max_message_bytes));
  }
  if (absl::StripAsciiWhitespace(rfc822).empty()) {
    return absl::InvalidArgumentError("empty message");
  }
  InitGmime();
  MimeMessage out;
  std::vector<std::string> parser_warnings;
  std::unique_ptr<GMimeParserOptions, OptionsFree> popts(g_mime_parser_options_new());
  g_mime_parser_options_set_rfc2047_compliance_mode(popts.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_address_compliance_mode(popts.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_parameter_compliance_mode(popts.get(), GMIME_RFC_COMPLIANCE_LOOSE);
  const char *fallback[] = {"UTF-8", "windows-1252", nullptr};
  g_mime_parser_options_set_fallback_charsets(popts.get(), fallback);
  g_mime_parser_options_set_warning_callback(popts.get(), &OnParserWarning, &parser_warnings);

  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(rfc822.data(), rfc822.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GPtr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), popts.get()));
  if (message == nullptr) return absl::InvalidArgumentError("not a MIME message");

  Walker walker(options, &out);
  walker.Headers(message.get(), &out);
  walker.Walk(g_mime_message_get_mime_part(message.get()), 0);
  for (std::string &w : parser_warnings) walker.Warn(std::move(w));
  if (out.body.size() > options.max_body_bytes) {
    out.body = std::string(parse::TruncateUtf8(out.body, options.max_body_bytes));
    walker.Warn(absl::StrCat("body cut at ", options.max_body_bytes, " bytes"));
  }
  return out;
}

}  // namespace tessera::connectors::gmail
