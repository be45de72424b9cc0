// ZipArchive: read-only access to a zip archive held in memory; the one
// adapter around libzip. Used by the DOCX parser (and any later OOXML/ODF one).
//
// Built for hostile input: an entry is read only after its declared
// uncompressed size has been checked against the caller's limit, reading stops
// at that size whatever the compressed stream would expand to, and the CRC is
// verified. Archives with more than kMaxZipEntries entries are refused.
//
// Thread-compatible: one thread at a time per ZipArchive (libzip archives
// hold a read cursor).
#ifndef TESSERA_CONNECTORS_PARSE_ZIP_ARCHIVE_H_
#define TESSERA_CONNECTORS_PARSE_ZIP_ARCHIVE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct zip;  // libzip's zip_t

namespace tessera::parse {

inline constexpr int64_t kMaxZipEntries = 100'000;

class ZipArchive {
 public:
  // Opens `bytes` as a zip archive. `bytes` is not copied and must outlive the
  // archive. Errors: DATA_LOSS if it is not a readable zip archive;
  // RESOURCE_EXHAUSTED if it has more than kMaxZipEntries entries.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ZipArchive>> Open(absl::string_view bytes);

  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  int64_t num_entries() const { return num_entries_; }
  [[nodiscard]] bool Contains(absl::string_view name) const;

  // Uncompressed bytes of entry `name` (exact, case-sensitive match).
  // Errors: NOT_FOUND if there is no such entry; RESOURCE_EXHAUSTED if its
  // declared uncompressed size exceeds `max_bytes` (nothing is decompressed);
  // DATA_LOSS if it is encrypted, truncated, fails its CRC or holds more data
  // than declared.
  [[nodiscard]] absl::StatusOr<std::string> Read(absl::string_view name, size_t max_bytes) const;

 private:
  ZipArchive(zip* archive, int64_t num_entries) : archive_(archive), num_entries_(num_entries) {}

  zip* const archive_;  // owned
  const int64_t num_entries_;
};

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_ZIP_ARCHIVE_H_
