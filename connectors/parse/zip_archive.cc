#include "connectors/parse/zip_archive.h"

#include <zip.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tessera::parse {

absl::StatusOr<std::unique_ptr<ZipArchive>> ZipArchive::Open(absl::string_view bytes) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), /*freep=*/0, &error);
  if (source == nullptr) {
    absl::Status status = absl::ResourceExhaustedError(
        absl::StrCat("cannot create zip source: ", zip_error_strerror(&error)));
    zip_error_fini(&error);
    return status;
  }
  zip_t* archive = zip_open_from_source(source, ZIP_RDONLY, &error);
  if (archive == nullptr) {
    zip_source_free(source);  // not taken over on failure
    absl::Status status = absl::DataLossError(
        zip_error_code_zip(&error) == ZIP_ER_NOZIP
            ? std::string("not a zip archive")
            : absl::StrCat("corrupt zip archive: ", zip_error_strerror(&error)));
    zip_error_fini(&error);
    return status;
  }
  zip_error_fini(&error);
  const zip_int64_t entries = zip_get_num_entries(archive, 0);
  if (entries < 0) {
    zip_discard(archive);
    return absl::DataLossError("corrupt zip archive: cannot count entries");
  }
  if (entries > kMaxZipEntries) {
    zip_discard(archive);
    return absl::ResourceExhaustedError(
        absl::StrCat("zip archive has ", entries, " entries, over the limit of ", kMaxZipEntries));
  }
  return std::unique_ptr<ZipArchive>(new ZipArchive(archive, entries));
}

ZipArchive::~ZipArchive() { zip_discard(archive_); }

bool ZipArchive::Contains(absl::string_view name) const {
  return zip_name_locate(archive_, std::string(name).c_str(), 0) >= 0;
}

absl::StatusOr<std::string> ZipArchive::Read(absl::string_view name, size_t max_bytes) const {
  const std::string name_z(name);
  const zip_int64_t index = zip_name_locate(archive_, name_z.c_str(), 0);
  if (index < 0) return absl::NotFoundError(absl::StrCat("zip has no entry '", name, "'"));
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat_index(archive_, index, 0, &stat) != 0 || (stat.valid & ZIP_STAT_SIZE) == 0) {
    return absl::DataLossError(absl::StrCat("cannot read zip entry '", name, "'"));
  }
  if ((stat.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && stat.encryption_method != ZIP_EM_NONE) {
    return absl::DataLossError(absl::StrCat("zip entry '", name, "' is encrypted"));
  }
  if (stat.size > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("zip entry '", name, "' expands to ",
                                                     stat.size, " bytes, over the limit of ",
                                                     max_bytes, " (possible zip bomb)"));
  }
  zip_file_t* file = zip_fopen_index(archive_, index, 0);
  if (file == nullptr) {
    return absl::DataLossError(
        absl::StrCat("cannot open zip entry '", name, "': ", zip_strerror(archive_)));
  }
  std::string data(stat.size, '\0');
  size_t filled = 0;
  absl::Status status;
  while (filled < data.size()) {
    const zip_int64_t n = zip_fread(file, data.data() + filled, data.size() - filled);
    if (n < 0) {
      status = absl::DataLossError(
          absl::StrCat("corrupt zip entry '", name, "': ", zip_file_strerror(file)));
      break;
    }
    if (n == 0) {
      status = absl::DataLossError(absl::StrCat("zip entry '", name, "' is truncated"));
      break;
    }
    filled += static_cast<size_t>(n);
  }
  if (status.ok()) {
    // Read once more: libzip verifies the CRC when it reaches the end, and
    // more data here means the entry is larger than its header says.
    char extra;
    const zip_int64_t n = zip_fread(file, &extra, 1);
    if (n < 0) {
      status = absl::DataLossError(
          absl::StrCat("corrupt zip entry '", name, "': ", zip_file_strerror(file)));
    } else if (n > 0) {
      status = absl::DataLossError(
          absl::StrCat("zip entry '", name, "' holds more data than its declared size"));
    }
  }
  zip_fclose(file);
  if (!status.ok()) return status;
  return data;
}

}  // namespace tessera::parse
