// MIME parsing for the Gmail connector: one RFC 822/2822 message (the bytes
// behind users.messages.get?format=raw) to the text worth indexing.
//
// The one adapter around gmime 3 (the MIME library of GNOME/Evolution): gmime
// splits the message (multiparts at any depth, message/rfc822 parts, RFC 2047
// encoded words, quoted-printable and base64 transfer encodings, RFC 2231
// parameters); this file decides what is body and what is attachment:
//   * headers: Subject (decoded to UTF-8), From, To, Cc (addresses, groups
//     flattened), Date, Message-ID;
//   * body: in multipart/alternative the text/plain part is preferred, else
//     the HTML one, whose text is extracted with connectors/parse's HTML
//     parser; in multipart/related the root part; in multipart/mixed (and any
//     other multipart) every inline text part, in order. Text parts are
//     converted to UTF-8 from their declared charset by connectors/parse's
//     DecodeText (ICU): an unknown charset falls back to UTF-8 or
//     windows-1252 with a warning, so the result is always valid UTF-8;
//   * embedded messages (message/rfc822, forwarded mail, bounces): their
//     headers and body are appended to the body; their attachments join the
//     message's;
//   * attachments (a filename, an attachment disposition, or a non-text
//     leaf): decoded and, within MimeOptions' caps, parsed with ParseDocument.
//     An attachment that cannot be parsed (an image, a corrupt PDF) keeps its
//     name, type and size and carries the parse error; it never fails the
//     message.
//
// Hostile input: the message size is capped before gmime sees it; nesting
// deeper than max_depth is not descended into (a warning says so); bad
// charsets, base64 garbage and missing boundaries yield best-effort text and
// warnings. Nothing in the input can crash the process.
//
// Thread-safe: gmime is initialised once (g_mime_init under absl::call_once);
// each call uses its own gmime objects.
#ifndef TESSERA_CONNECTORS_GMAIL_MIME_PARSER_H_
#define TESSERA_CONNECTORS_GMAIL_MIME_PARSER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::connectors::gmail {

struct MailAddress {
  std::string name;   // display name, UTF-8; may be empty
  std::string email;  // the addr-spec as written (not lowercased)
};

struct MimeAttachment {
  std::string filename;   // UTF-8; may be empty
  std::string mime_type;  // lower case, e.g. "application/pdf"
  size_t size = 0;        // decoded bytes
  // The attachment's text (sections joined by blank lines); empty when it
  // was not parsed (see status).
  std::string text;
  // OK when parsed; RESOURCE_EXHAUSTED when over the size cap; otherwise
  // ParseDocument's error (INVALID_ARGUMENT for an unsupported format).
  absl::Status status;
};

struct MimeMessage {
  std::string subject;
  std::vector<MailAddress> from;
  std::vector<MailAddress> to;
  std::vector<MailAddress> cc;
  std::optional<absl::Time> date;  // the Date header, when it parses
  std::string message_id;          // without angle brackets
  std::string body;                // valid UTF-8
  std::vector<MimeAttachment> attachments;
  // Things that did not stop the parse (skipped attachments, a nesting cap,
  // an unknown charset, a body cut at max_body_bytes).
  std::vector<std::string> warnings;
};

struct MimeOptions {
  // Larger messages fail with RESOURCE_EXHAUSTED before parsing (Gmail's own
  // limit is 25 MB of attachments, ~35 MB encoded).
  size_t max_message_bytes = 64 << 20;
  // Multipart / message/rfc822 levels descended into; deeper parts are
  // skipped with a warning.
  int max_depth = 20;
  // Attachments past this many are listed in warnings only.
  int max_attachments = 50;
  // Attachments whose decoded size exceeds this are not parsed
  // (RESOURCE_EXHAUSTED in MimeAttachment::status). Onyx uses 10 MB.
  size_t max_attachment_bytes = 10 << 20;
  // Whether attachments are parsed at all (false: names and sizes only).
  bool parse_attachments = true;
  // The body is cut at this many bytes (at a character boundary).
  size_t max_body_bytes = 8 << 20;
  // Header values (subject, each address) are cut at this many bytes.
  size_t max_header_bytes = 4096;
  // Passed to ParseDocument for HTML bodies and attachments.
  parse::ParseOptions parse_options;
};

// Decodes base64url (RFC 4648 §5) as Gmail's `raw` and `body.data` fields
// carry it, with or without '=' padding; standard-alphabet input ('+', '/')
// and embedded whitespace are accepted too. INVALID_ARGUMENT for anything
// else.
[[nodiscard]] absl::StatusOr<std::string> DecodeBase64Url(absl::string_view data);

// Parses one RFC 822 message. Errors: RESOURCE_EXHAUSTED over
// max_message_bytes; INVALID_ARGUMENT when gmime finds no message at all
// (empty input). Everything else is best effort with warnings.
[[nodiscard]] absl::StatusOr<MimeMessage> ParseMimeMessage(absl::string_view rfc822,
                                                           const MimeOptions &options = {});

// "Ann Lee <ann@x.com>", or "ann@x.com" without a display name.
[[nodiscard]] std::string FormatAddress(const MailAddress &address);

}  // namespace tessera::connectors::gmail

#endif  // TESSERA_CONNECTORS_GMAIL_MIME_PARSER_H_
