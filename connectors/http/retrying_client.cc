#include "connectors/http/retrying_client.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors {
namespace {

using json = nlohmann::json;

// Bodies of responses that may be retried are held back from streaming
// callbacks up to this size; past it the response is delivered as final.
constexpr size_t kMaxHeldBody = size_t{1} << 20;

// Parses without exceptions; a discarded value when `body` is not JSON.
json ParseJson(absl::string_view body) {
  if (body.empty()) return json(json::value_t::discarded);
  return json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
}

std::string StringAt(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// True for Google's rate-limit 403s: errors[].reason rateLimitExceeded or
// userRateLimitExceeded, or the newer ErrorInfo detail RATE_LIMIT_EXCEEDED.
bool IsGoogleRateLimit(const json& doc) {
  if (!doc.is_object()) return false;
  auto error = doc.find("error");
  if (error == doc.end() || !error->is_object()) return false;
  for (const char* list : {"errors", "details"}) {
    auto items = error->find(list);
    if (items == error->end() || !items->is_array()) continue;
    for (const json& item : *items) {
      const std::string reason = StringAt(item, "reason");
      if (reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" ||
          reason == "RATE_LIMIT_EXCEEDED") {
        return true;
      }
    }
  }
  return false;
}

std::string ReasonOf(const json& doc) {
  if (!doc.is_object()) return "";
  auto error = doc.find("error");
  if (error == doc.end()) return "";
  if (error->is_string()) return error->get<std::string>();  // OAuth2: {"error":"invalid_grant"}
  if (!error->is_object()) return "";
  auto errors = error->find("errors");
  if (errors != error->end() && errors->is_array()) {
    for (const json& item : *errors) {
      std::string reason = StringAt(item, "reason");
      if (!reason.empty()) return reason;
    }
  }
  std::string status = StringAt(*error, "status");  // Google: "RESOURCE_EXHAUSTED"
  if (!status.empty()) return status;
  return StringAt(*error, "code");  // Graph: "TooManyRequests", "itemNotFound"
}

// A short human message from the error body, for error statuses.
std::string ServerMessage(absl::string_view body) {
  json doc = ParseJson(body);
  std::string message;
  if (doc.is_object()) {
    auto error = doc.find("error");
    if (error != doc.end() && error->is_object()) {
      message = StringAt(*error, "message");
    } else {
      message = StringAt(doc, "error_description");
    }
  }
  for (char& c : message) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (message.size() > 200) message = absl::StrCat(message.substr(0, 200), "...");
  return message;
}

bool IsIdempotentMethod(absl::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE";
}

// Whether a streamed response with this status must be held back until it is
// known whether it will be retried.
bool MayBeRetried(int status, bool has_token_source) {
  return status == 429 || status >= 500 || status == 403 || (status == 401 && has_token_source);
}

absl::StatusCode CodeForGiveUp(int status) {
  switch (status) {
    case 429:
    case 403:  // only rate-limit 403s are retried
    case 509:
      return absl::StatusCode::kResourceExhausted;
    case 500:
      return absl::StatusCode::kInternal;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      return absl::StatusCode::kUnavailable;
  }
}

std::string StatusText(int status, absl::string_view reason) {
  if (reason.empty()) return absl::StrCat("HTTP ", status);
  return absl::StrCat("HTTP ", status, " ", reason);
}

std::string DurationText(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

class DefaultJitter {
 public:
  double operator()() {
    absl::MutexLock lock(&mu_);
    return absl::Uniform<double>(gen_, 0.0, 1.0);
  }

 private:
  absl::Mutex mu_;
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now,
                                              absl::Duration cap) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    // delta-seconds. Anything longer than 9 digits is absurd: clamp, don't overflow.
    if (value.size() > 9) return cap;
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(value, &seconds)) return std::nullopt;
    return std::min(absl::Seconds(seconds), cap);
  }
  // HTTP-date (RFC 9110 section 5.6.7): IMF-fixdate, then the two obsolete forms.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // Sun, 06 Nov 1994 08:49:37 GMT
      "%A, %d-%b-%y %H:%M:%S GMT",  // Sunday, 06-Nov-94 08:49:37 GMT
      "%a %b %e %H:%M:%S %Y",       // Sun Nov  6 08:49:37 1994
  };
  for (const char* format : kFormats) {
    absl::Time when;
    std::string error;
    if (absl::ParseTime(format, value, absl::UTCTimeZone(), &when, &error)) {
      if (when <= now) return absl::ZeroDuration();
      return std::min(when - now, cap);
    }
  }
  return std::nullopt;
}

std::string ErrorReason(absl::string_view body) { return ReasonOf(ParseJson(body)); }

ResponseClass ClassifyResponse(const HttpResponse& response, absl::Time now,
                               absl::Duration max_retry_after) {
  ResponseClass out;
  const int status = response.status_code;
  json doc;
  if (status >= 400) {
    doc = ParseJson(response.body);
    out.reason = ReasonOf(doc);
  }
  if (std::optional<std::string> value = response.headers.Get("Retry-After")) {
    out.retry_after = ParseRetryAfter(*value, now, max_retry_after);
  }
  switch (status) {
    case 401:
      out.kind = ResponseClass::kUnauthorized;
      break;
    case 429:  // throttled (Google, Graph)
    case 503:  // overloaded or throttled (Graph): not processed
    case 509:  // SharePoint bandwidth throttling
      out.kind = ResponseClass::kRetry;
      out.safe_for_any_method = true;
      break;
    case 500:
    case 502:
    case 504:
      out.kind = ResponseClass::kRetry;
      break;
    case 403:
      if (IsGoogleRateLimit(doc)) {
        out.kind = ResponseClass::kRetry;
        out.safe_for_any_method = true;
      }
      break;
    default:
      break;
  }
  return out;
}

absl::Status CheckHttpStatus(const HttpResponse& response, absl::string_view method,
                             absl::string_view url) {
  const int status = response.status_code;
  if (status >= 200 && status < 300) return absl::OkStatus();
  absl::StatusCode code;
  switch (status) {
    case 400: code = absl::StatusCode::kInvalidArgument; break;
    case 401: code = absl::StatusCode::kUnauthenticated; break;
    case 403: code = absl::StatusCode::kPermissionDenied; break;
    case 404:
    case 410: code = absl::StatusCode::kNotFound; break;
    case 408:
    case 504: code = absl::StatusCode::kDeadlineExceeded; break;
    case 409: code = absl::StatusCode::kAborted; break;
    case 412:
    case 428: code = absl::StatusCode::kFailedPrecondition; break;
    case 413:
    case 429:
    case 509: code = absl::StatusCode::kResourceExhausted; break;
    case 416: code = absl::StatusCode::kOutOfRange; break;
    case 501: code = absl::StatusCode::kUnimplemented; break;
    case 500: code = absl::StatusCode::kInternal; break;
    default:
      if (status >= 500) {
        code = absl::StatusCode::kUnavailable;
      } else if (status >= 400) {
        code = absl::StatusCode::kFailedPrecondition;
      } else {
        code = absl::StatusCode::kUnknown;  // 1xx/3xx reaching a caller expecting 2xx
      }
  }
  const json doc = ParseJson(response.body);
  std::string message = absl::StrCat(method, " ", ::tessera::RedactUrl(url), ": ",
                                     StatusText(status, ReasonOf(doc)));
  if (std::string detail = ServerMessage(response.body); !detail.empty()) {
    absl::StrAppend(&message, ": ", detail);
  }
  return absl::Status(code, message);
}

RetryingHttpClient::RetryingHttpClient(HttpTransport* transport, Clock* clock, Options options)
    : transport_(transport), clock_(clock), options_(std::move(options)) {
  if (!options_.jitter) {
    auto gen = std::make_shared<DefaultJitter>();
    options_.jitter = [gen] { return (*gen)(); };
  }
  options_.policy.max_attempts = std::max(1, options_.policy.max_attempts);
}

absl::Duration RetryingHttpClient::Backoff(int retry) const {
  const RetryPolicy& p = options_.policy;
  // base * 2^(retry-1), computed in doubles so large retry counts cannot overflow.
  const double ceiling = std::min(absl::ToDoubleSeconds(p.max_delay),
                                  absl::ToDoubleSeconds(p.base_delay) *
                                      std::ldexp(1.0, std::min(retry - 1, 62)));
  double j = options_.jitter();
  j = std::clamp(j, 0.0, 1.0);
  return absl::Seconds(ceiling * j);
}

absl::StatusOr<HttpResponse> RetryingHttpClient::Send(const HttpRequest& request,
                                                      const CallOptions& call) {
  return Run(request, call, nullptr);
}

absl::StatusOr<HttpResponse> RetryingHttpClient::SendStreaming(const HttpRequest& request,
                                                               const StreamCallbacks& callbacks,
                                                               const CallOptions& call) {
  return Run(request, call, &callbacks);
}

absl::StatusOr<HttpResponse> RetryingHttpClient::Run(const HttpRequest& request,
                                                     const CallOptions& call,
                                                     const StreamCallbacks* callbacks) {
  const RetryPolicy& policy = options_.policy;
  const std::string what = absl::StrCat(request.method, " ", ::tessera::RedactUrl(request.url));
  const bool idempotent = call.idempotent.value_or(IsIdempotentMethod(request.method));
  TokenSource* const tokens = options_.token_source;
  const absl::Time start = clock_->Now();
  const absl::Time deadline = start + policy.max_total_time;

  std::string token;
  if (tokens != nullptr) {
    absl::StatusOr<std::string> t = tokens->Token();
    if (!t.ok()) return Annotate(t.status(), absl::StrCat("getting an access token for ", what));
    token = *std::move(t);
  }

  int attempts = 0;      // every request sent
  int tries = 0;         // attempts that count against max_attempts
  bool refreshed = false;
  std::string last;      // what went wrong last, for the give-up message
  absl::StatusCode give_up_code = absl::StatusCode::kUnavailable;

  auto give_up = [&](absl::string_view why) {
    return absl::Status(give_up_code,
                        absl::StrCat(what, ": gave up after ", attempts,
                                     attempts == 1 ? " attempt" : " attempts", " in ",
                                     DurationText(clock_->Now() - start), " (", why,
                                     "); last: ", last));
  };

  while (true) {
    HttpRequest attempt = request;
    if (call.body_source) {
      absl::StatusOr<std::string> body = call.body_source();
      if (!body.ok()) return Annotate(body.status(), absl::StrCat("reading the body for ", what));
      attempt.body = *std::move(body);
    }
    if (tokens != nullptr) {
      std::erase_if(attempt.headers, [](const std::pair<std::string, std::string>& h) {
        return absl::EqualsIgnoreCase(h.first, "Authorization");
      });
      attempt.headers.emplace_back("Authorization", absl::StrCat("Bearer ", token));
    }
    const absl::Duration remaining = deadline - clock_->Now();
    if (remaining <= absl::ZeroDuration()) {
      if (attempts == 0) {
        return absl::DeadlineExceededError(absl::StrCat(what, ": no time left to send"));
      }
      return give_up("max total time reached");
    }
    attempt.timeout = std::min(options_.attempt_timeout.value_or(request.timeout), remaining);

    ++attempts;
    ++tries;

    // Streaming: hold back responses that might be retried.
    bool held = false;
    bool delivered = false;  // the caller's callbacks have seen this attempt
    int held_status = 0;
    HttpHeaders held_headers;
    std::string held_body;
    bool callback_refused = false;
    // At this scope, not inside the `if` below: the wrapped callbacks hold references to them
    // while the transport runs.
    auto deliver_headers = [&](int status, const HttpHeaders& headers) {
      delivered = true;
      if (callbacks->on_headers && !callbacks->on_headers(status, headers)) {
        callback_refused = true;
        return false;
      }
      return true;
    };
    auto deliver_data = [&](absl::string_view chunk) {
      delivered = true;
      if (chunk.empty() || !callbacks->on_data) return true;
      if (!callbacks->on_data(chunk)) {
        callback_refused = true;
        return false;
      }
      return true;
    };
    StreamCallbacks wrapped;
    if (callbacks != nullptr) {
      wrapped.on_headers = [&](int status, const HttpHeaders& headers) {
        held = MayBeRetried(status, tokens != nullptr);
        if (held) {
          held_status = status;
          held_headers = headers;
          return true;
        }
        return deliver_headers(status, headers);
      };
      wrapped.on_data = [&](absl::string_view chunk) {
        if (!held) return deliver_data(chunk);
        if (held_body.size() + chunk.size() <= kMaxHeldBody) {
          held_body.append(chunk.data(), chunk.size());
          return true;
        }
        // Too big to be an error worth retrying: commit to this response.
        held = false;
        if (!deliver_headers(held_status, held_headers)) return false;
        if (!deliver_data(held_body)) return false;
        held_body.clear();
        return deliver_data(chunk);
      };
    }

    absl::StatusOr<HttpResponse> result = callbacks != nullptr
                                              ? transport_->SendStreaming(attempt, wrapped)
                                              : transport_->Send(attempt);
    absl::Duration delay;
    if (!result.ok()) {
      const absl::StatusCode code = result.status().code();
      const bool transient =
          code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded;
      if (!transient || !idempotent || delivered || callback_refused) {
        if (attempts == 1) return result.status();
        return Annotate(result.status(),
                        absl::StrCat("after ", attempts, " attempts (previous: ", last, ")"));
      }
      last = std::string(result.status().message());
      give_up_code = code;
      delay = Backoff(tries);
    } else {
      HttpResponse& response = *result;
      if (held) response.body = held_body;  // classify on the held-back body
      const ResponseClass cls = ClassifyResponse(response, clock_->Now(), policy.max_retry_after);
      const bool retry = cls.kind == ResponseClass::kRetry && (idempotent || cls.safe_for_any_method);
      const bool reauth = cls.kind == ResponseClass::kUnauthorized && tokens != nullptr;
      if (reauth) {
        last = StatusText(response.status_code, cls.reason);
        if (refreshed) {
          absl::Status s = CheckHttpStatus(response, request.method, request.url);
          return absl::UnauthenticatedError(
              absl::StrCat(s.message(), " (the access token was refreshed and still rejected; ",
                           attempts, " attempts)"));
        }
        refreshed = true;
        --tries;  // the refresh retry is free
        TLOG(INFO, "access token rejected; refreshing").Field("url", ::tessera::RedactUrl(request.url));
        absl::StatusOr<std::string> fresh = tokens->Refresh();
        if (!fresh.ok()) {
          return Annotate(fresh.status(),
                          absl::StrCat("refreshing the access token after HTTP 401 from ", what));
        }
        token = *std::move(fresh);
        continue;
      }
      if (!retry) {
        if (held) {
          // Final after all: hand the held-back response to the caller.
          if (!(callbacks->on_headers ? callbacks->on_headers(held_status, held_headers) : true) ||
              (!held_body.empty() && callbacks->on_data && !callbacks->on_data(held_body))) {
            return absl::CancelledError(absl::StrCat(what, ": aborted by the stream callback"));
          }
          response.body.clear();
        }
        return std::move(response);
      }
      last = StatusText(response.status_code, cls.reason);
      give_up_code = CodeForGiveUp(response.status_code);
      delay = cls.retry_after.value_or(Backoff(tries));
    }

    if (tries >= policy.max_attempts) return give_up("max attempts reached");
    if (clock_->Now() + delay >= deadline) {
      return give_up(absl::StrCat("the next wait of ", DurationText(delay),
                                  " would pass the max total time of ",
                                  DurationText(policy.max_total_time)));
    }
    TLOG(WARNING, "retrying HTTP request")
        .Field("request", what)
        .Field("attempt", attempts)
        .Field("last", last)
        .Field("wait", delay);
    clock_->SleepFor(delay);
  }
}

}  // namespace tessera::connectors
