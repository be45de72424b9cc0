#include "common/http/curl_http_transport.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace tessera {
namespace {

// Idle easy handles kept for reuse; more concurrent calls than this still
// work, their extra handles are just closed afterwards.
constexpr size_t kMaxIdleHandles = 16;

absl::Status InitCurlOnce() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_global_init failed: ", curl_easy_strerror(result)));
  }
  return absl::OkStatus();
}

// RFC 9110 token characters (methods and header names).
bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c)) continue;
    if (absl::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) ==
        absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool HasControlChars(absl::string_view s, bool allow_tab) {
  for (unsigned char c : s) {
    if (c == '\t' && allow_tab) continue;
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Milliseconds for CURLOPT_*TIMEOUT_MS; 0 (libcurl's "no limit") for an
// infinite duration. Positive durations round up to at least 1 ms.
long TimeoutMillis(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return 0;
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
  return static_cast<long>(std::clamp<int64_t>(ms, 1, LONG_MAX));
}

absl::Status ValidateRequest(const HttpRequest& request, absl::string_view what) {
  if (!IsToken(request.method)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": invalid HTTP method"));
  }
  if (request.url.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty URL"));
  if (HasControlChars(request.url, /*allow_tab=*/false) ||
      request.url.find(' ') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": malformed URL (contains spaces or control characters)"));
  }
  size_t scheme_end = request.url.find("://");
  if (scheme_end == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": malformed URL (no scheme)"));
  }
  std::string scheme = absl::AsciiStrToLower(request.url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError(absl::StrCat(what, ": unsupported URL scheme \"", scheme,
                                                   "\" (only http and https are allowed)"));
  }
  CURLU* parsed = curl_url();
  if (parsed == nullptr) return absl::ResourceExhaustedError("curl_url: out of memory");
  CURLUcode rc = curl_url_set(parsed, CURLUPART_URL, request.url.c_str(), 0);
  curl_url_cleanup(parsed);
  if (rc != CURLUE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": malformed URL: ", curl_url_strerror(rc)));
  }
  for (const auto& [name, value] : request.headers) {
    // Header names are safe to name in messages; values are not.
    if (!IsToken(name)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": invalid header name"));
    }
    if (HasControlChars(value, /*allow_tab=*/true)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": value of header \"", name, "\" contains control characters"));
    }
  }
  if (request.method == "HEAD" && !request.body.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": HEAD request with a body"));
  }
  if (request.timeout <= absl::ZeroDuration() || request.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": timeouts must be positive"));
  }
  return absl::OkStatus();
}

bool HasHeader(const HttpRequest& request, absl::string_view name) {
  return std::any_of(request.headers.begin(), request.headers.end(),
                     [name](const auto& h) { return absl::EqualsIgnoreCase(h.first, name); });
}

template <typename T>
absl::Status SetOpt(CURL* curl, CURLoption option, T value) {
  CURLcode rc = curl_easy_setopt(curl, option, value);
  if (rc != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_easy_setopt(", static_cast<int>(option), "): ", curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

}  // namespace

struct CurlHttpTransport::Share {
  CURLSH* handle = nullptr;
  absl::Mutex locks[CURL_LOCK_DATA_LAST];

  ~Share() {
    if (handle != nullptr) curl_share_cleanup(handle);
  }

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<Share*>(self)->locks[data].Lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<Share*>(self)->locks[data].Unlock();
  }
};

// State of one call, reached from libcurl's callbacks.
class CurlHttpTransport::Transfer {
 public:
  enum class Abort { kNone, kTooLarge, kCancelled };

  Transfer(const HttpRequest& request, const StreamCallbacks* callbacks, size_t max_body_bytes,
           bool follow_redirects)
      : callbacks_(callbacks),
        max_body_bytes_(max_body_bytes),
        follow_redirects_(follow_redirects),
        head_request_(request.method == "HEAD") {}

  static size_t OnHeader(char* data, size_t size, size_t count, void* self) {
    return static_cast<Transfer*>(self)->HandleHeaderLine(absl::string_view(data, size * count))
               ? size * count
               : 0;
  }

  static size_t OnWrite(char* data, size_t size, size_t count, void* self) {
    return static_cast<Transfer*>(self)->HandleData(absl::string_view(data, size * count))
               ? size * count
               : 0;
  }

  // Reports the headers to on_headers if that has not happened yet (a
  // response without a header block end, e.g. HTTP/0.9). False aborts.
  bool DeliverHeaders() {
    if (headers_delivered_) return abort_ == Abort::kNone;
    headers_delivered_ = true;
    if (callbacks_ != nullptr && callbacks_->on_headers &&
        !callbacks_->on_headers(status_, headers_)) {
      abort_ = Abort::kCancelled;
      return false;
    }
    return true;
  }

  Abort abort() const { return abort_; }
  HttpHeaders TakeHeaders() { return std::move(headers_); }
  std::string TakeBody() { return std::move(body_); }

 private:
  // libcurl passes every header line of every response it reads, including
  // interim 1xx responses, followed redirects and trailers.
  bool HandleHeaderLine(absl::string_view line) {
    absl::ConsumeSuffix(&line, "\n");
    absl::ConsumeSuffix(&line, "\r");
    if (absl::StartsWith(line, "HTTP/")) {  // Status line: a new response.
      headers_.clear();
      pending_.reset();
      headers_complete_ = false;
      status_ = 0;
      size_t space = line.find(' ');
      if (space != absl::string_view::npos) {
        (void)absl::SimpleAtoi(line.substr(space + 1, 3), &status_);
      }
      return true;
    }
    if (headers_complete_) return true;  // Trailer fields: ignored.
    if (line.empty()) {
      FlushPendingField();
      headers_complete_ = true;
      if (!IsFinalResponse()) return true;
      if (!head_request_ && callbacks_ == nullptr && TooLargeByContentLength()) {
        abort_ = Abort::kTooLarge;
        return false;
      }
      return DeliverHeaders();
    }
    if ((line.front() == ' ' || line.front() == '\t') && pending_.has_value()) {
      // Obsolete line folding: continues the previous field's value.
      absl::StrAppend(&pending_->second, " ", absl::StripAsciiWhitespace(line));
      return true;
    }
    FlushPendingField();
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) return true;
    pending_.emplace(std::string(absl::StripAsciiWhitespace(line.substr(0, colon))),
                     std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
    return true;
  }

  void FlushPendingField() {
    if (!pending_.has_value()) return;
    headers_.Add(std::move(pending_->first), std::move(pending_->second));
    pending_.reset();
  }

  bool IsFinalResponse() const {
    if (status_ >= 100 && status_ < 200) return false;
    // libcurl follows a 3xx with a Location (other than 304) and discards its
    // body; only the response it ends on is reported.
    if (follow_redirects_ && status_ >= 300 && status_ < 400 && status_ != 304 &&
        headers_.Contains("Location")) {
      return false;
    }
    return true;
  }

  // Rejects an oversized body before downloading it, when its size is known.
  // The limit applies to the decoded body, so encoded bodies are left to
  // HandleData.
  bool TooLargeByContentLength() const {
    if (headers_.Contains("Content-Encoding")) return false;
    std::optional<std::string> length = headers_.Get("Content-Length");
    uint64_t n = 0;
    return length.has_value() && absl::SimpleAtoi(*length, &n) && n > max_body_bytes_;
  }

  bool HandleData(absl::string_view data) {
    if (!DeliverHeaders()) return false;
    if (callbacks_ != nullptr) {
      if (callbacks_->on_data && !callbacks_->on_data(data)) {
        abort_ = Abort::kCancelled;
        return false;
      }
      return true;
    }
    if (data.size() > max_body_bytes_ - body_.size()) {
      abort_ = Abort::kTooLarge;
      return false;
    }
    body_.append(data.data(), data.size());
    return true;
  }

  const StreamCallbacks* const callbacks_;  // Null for Send().
  const size_t max_body_bytes_;
  const bool follow_redirects_;
  const bool head_request_;

  int status_ = 0;
  HttpHeaders headers_;
  std::optional<HttpHeaders::Entry> pending_;  // Last field; may be folded.
  bool headers_complete_ = false;
  bool headers_delivered_ = false;
  std::string body_;
  Abort abort_ = Abort::kNone;
};

absl::StatusOr<std::unique_ptr<CurlHttpTransport>> CurlHttpTransport::Create(Options options) {
  if (options.max_response_bytes == 0) {
    return absl::InvalidArgumentError("CurlHttpTransport: max_response_bytes must be positive");
  }
  if (options.max_redirects < 0) {
    return absl::InvalidArgumentError("CurlHttpTransport: max_redirects must not be negative");
  }
  if (!options.ca_bundle_path.empty() && access(options.ca_bundle_path.c_str(), R_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("CurlHttpTransport: CA bundle ", options.ca_bundle_path, " is not readable"));
  }
  RETURN_IF_ERROR(InitCurlOnce());
  auto share = std::make_unique<Share>();
  share->handle = curl_share_init();
  if (share->handle == nullptr) return absl::InternalError("curl_share_init failed");
  CURLSHcode rc = CURLSHE_OK;
  for (curl_lock_data data : {CURL_LOCK_DATA_DNS, CURL_LOCK_DATA_SSL_SESSION}) {
    if (rc == CURLSHE_OK) rc = curl_share_setopt(share->handle, CURLSHOPT_SHARE, data);
  }
  if (rc == CURLSHE_OK) rc = curl_share_setopt(share->handle, CURLSHOPT_LOCKFUNC, &Share::Lock);
  if (rc == CURLSHE_OK) {
    rc = curl_share_setopt(share->handle, CURLSHOPT_UNLOCKFUNC, &Share::Unlock);
  }
  if (rc == CURLSHE_OK) rc = curl_share_setopt(share->handle, CURLSHOPT_USERDATA, share.get());
  if (rc != CURLSHE_OK) {
    return absl::InternalError(absl::StrCat("curl_share_setopt failed: ", curl_share_strerror(rc)));
  }
  return std::unique_ptr<CurlHttpTransport>(
      new CurlHttpTransport(std::move(options), std::move(share)));
}

CurlHttpTransport::CurlHttpTransport(Options options, std::unique_ptr<Share> share)
    : options_(std::move(options)), share_(std::move(share)) {}

CurlHttpTransport::~CurlHttpTransport() {
  absl::MutexLock lock(&mu_);
  // Before share_ goes: an easy handle detaches from the share on cleanup.
  for (void* handle : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(handle));
  idle_handles_.clear();
}

void* CurlHttpTransport::AcquireHandle() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_handles_.empty()) {
      void* handle = idle_handles_.back();
      idle_handles_.pop_back();
      return handle;
    }
  }
  CURL* curl = curl_easy_init();
  if (curl != nullptr) curl_easy_setopt(curl, CURLOPT_SHARE, share_->handle);
  return curl;
}

void CurlHttpTransport::ReleaseHandle(void* handle) {
  CURL* curl = static_cast<CURL*>(handle);
  // Drops every option (and with them pointers into the finished call's
  // stack) but keeps the live connections, the share and the caches.
  curl_easy_reset(curl);
  curl_easy_setopt(curl, CURLOPT_SHARE, share_->handle);
  {
    absl::MutexLock lock(&mu_);
    if (idle_handles_.size() < kMaxIdleHandles) {
      idle_handles_.push_back(curl);
      return;
    }
  }
  curl_easy_cleanup(curl);
}

absl::StatusOr<HttpResponse> CurlHttpTransport::Send(const HttpRequest& request) {
  return Perform(request, nullptr);
}

absl::StatusOr<HttpResponse> CurlHttpTransport::SendStreaming(const HttpRequest& request,
                                                              const StreamCallbacks& callbacks) {
  return Perform(request, &callbacks);
}

absl::StatusOr<HttpResponse> CurlHttpTransport::Perform(const HttpRequest& request,
                                                        const StreamCallbacks* callbacks) {
  // Names the call in every error; never includes header values.
  const std::string what = absl::StrCat(request.method, " ", RedactUrl(request.url));
  RETURN_IF_ERROR(ValidateRequest(request, what));

  CURL* curl = static_cast<CURL*>(AcquireHandle());
  if (curl == nullptr)
    return absl::ResourceExhaustedError(absl::StrCat(what, ": curl_easy_init failed"));
  absl::Cleanup release = [this, curl] { ReleaseHandle(curl); };

  curl_slist* header_list = nullptr;
  absl::Cleanup free_headers = [&header_list] { curl_slist_free_all(header_list); };
  bool header_alloc_failed = false;
  auto add_header = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(header_list, line.c_str());
    if (next == nullptr) {
      header_alloc_failed = true;
    } else {
      header_list = next;
    }
  };
  for (const auto& [name, value] : request.headers) {
    // "Name;" is libcurl's spelling of a header with an empty value.
    add_header(value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value));
  }
  // libcurl would add "Content-Type: application/x-www-form-urlencoded" to
  // POSTs and "Expect: 100-continue" to large bodies; send only what the
  // caller asked for, and no extra round trip.
  if (!HasHeader(request, "Content-Type")) add_header("Content-Type:");
  if (!HasHeader(request, "Expect")) add_header("Expect:");
  if (header_alloc_failed) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory building headers"));
  }

  Transfer transfer(request, callbacks, options_.max_response_bytes, options_.follow_redirects);
  char error_buffer[CURL_ERROR_SIZE];
  error_buffer[0] = '\0';
  const long verify = options_.verify_tls ? 1L : 0L;

  absl::Status setup = absl::OkStatus();
  auto set = [&setup, curl](CURLoption option, auto value) {
    if (setup.ok()) setup = SetOpt(curl, option, value);
  };
  set(CURLOPT_URL, request.url.c_str());
  set(CURLOPT_ERRORBUFFER, error_buffer);
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, options_.follow_redirects ? 1L : 0L);
  set(CURLOPT_MAXREDIRS, static_cast<long>(options_.max_redirects));
  set(CURLOPT_TIMEOUT_MS, TimeoutMillis(request.timeout));
  set(CURLOPT_CONNECTTIMEOUT_MS, TimeoutMillis(request.connect_timeout));
  set(CURLOPT_SSL_VERIFYPEER, verify);
  set(CURLOPT_SSL_VERIFYHOST, verify * 2);
  set(CURLOPT_PROXY_SSL_VERIFYPEER, verify);
  set(CURLOPT_PROXY_SSL_VERIFYHOST, verify * 2);
  if (!options_.ca_bundle_path.empty()) set(CURLOPT_CAINFO, options_.ca_bundle_path.c_str());
  set(CURLOPT_USERAGENT, options_.user_agent.c_str());
  set(CURLOPT_ACCEPT_ENCODING, "");  // Everything libcurl can decode.
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  // Through an https proxy, the CONNECT response is not the server's.
  set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  set(CURLOPT_HTTPHEADER, header_list);
  set(CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  set(CURLOPT_HEADERDATA, &transfer);
  set(CURLOPT_WRITEFUNCTION, &Transfer::OnWrite);
  set(CURLOPT_WRITEDATA, &transfer);
  // CURLOPT_PROXY is deliberately left unset: libcurl then honours
  // http_proxy / https_proxy / ALL_PROXY / no_proxy from the environment.

  const std::string& method = request.method;
  bool send_body =
      !request.body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (method == "HEAD") {
    set(CURLOPT_NOBODY, 1L);
  } else if (method == "GET" && !send_body) {
    set(CURLOPT_HTTPGET, 1L);
  } else {
    if (method == "POST") {
      set(CURLOPT_POST, 1L);
    } else {
      set(CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (send_body) {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      set(CURLOPT_POSTFIELDS, request.body.data());
    }
  }
  if (!setup.ok()) return Annotate(setup, what);

  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK && !transfer.DeliverHeaders()) rc = CURLE_WRITE_ERROR;
  if (rc != CURLE_OK) {
    const std::string detail =
        error_buffer[0] != '\0' ? std::string(error_buffer) : std::string(curl_easy_strerror(rc));
    switch (transfer.abort()) {
      case Transfer::Abort::kTooLarge:
        return absl::ResourceExhaustedError(absl::StrCat(
            what, ": response body exceeds the limit of ", options_.max_response_bytes, " bytes"));
      case Transfer::Abort::kCancelled:
        return absl::CancelledError(absl::StrCat(what, ": aborted by stream callback"));
      case Transfer::Abort::kNone:
        break;
    }
    switch (rc) {
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
        return absl::InvalidArgumentError(absl::StrCat(what, ": ", detail));
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_COULDNT_CONNECT:
        return absl::UnavailableError(absl::StrCat(what, ": could not connect: ", detail));
      case CURLE_OPERATION_TIMEDOUT:
        return absl::DeadlineExceededError(absl::StrCat(what, ": timed out: ", detail));
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CIPHER:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CRL_BADFILE:
      case CURLE_SSL_ISSUER_ERROR:
      case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      case CURLE_SSL_INVALIDCERTSTATUS:
      case CURLE_SSL_ENGINE_NOTFOUND:
      case CURLE_SSL_ENGINE_SETFAILED:
      case CURLE_SSL_ENGINE_INITFAILED:
      case CURLE_SSL_SHUTDOWN_FAILED:
      case CURLE_USE_SSL_FAILED:
        return absl::UnavailableError(
            absl::StrCat(what, ": TLS handshake or certificate verification failed: ", detail));
      case CURLE_PARTIAL_FILE:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_WEIRD_SERVER_REPLY:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
      case CURLE_HTTP3:
      case CURLE_PROXY:
        return absl::UnavailableError(
            absl::StrCat(what, ": connection failed before the response was complete: ", detail));
      case CURLE_BAD_CONTENT_ENCODING:
        return absl::DataLossError(absl::StrCat(what, ": undecodable response body: ", detail));
      case CURLE_TOO_MANY_REDIRECTS:
        return absl::FailedPreconditionError(absl::StrCat(what, ": ", detail));
      case CURLE_FILESIZE_EXCEEDED:
      case CURLE_OUT_OF_MEMORY:
        return absl::ResourceExhaustedError(absl::StrCat(what, ": ", detail));
      default:
        return absl::UnknownError(absl::StrCat(what, ": ", detail));
    }
  }

  long status_code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status_code);
  HttpResponse response;
  response.status_code = static_cast<int>(status_code);
  response.headers = transfer.TakeHeaders();
  response.body = transfer.TakeBody();
  return response;
}

}  // namespace tessera
