#include "common/status.h"

#include <string>

#include "common/grpc_status.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

absl::StatusOr<int> ParsePositive(int v) {
  if (v <= 0) return absl::InvalidArgumentError("must be positive");
  return v;
}

absl::StatusOr<int> Doubled(int v) {
  ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

absl::Status Check(int v) {
  RETURN_IF_ERROR(ParsePositive(v).status());
  ASSIGN_OR_RETURN(auto y, Doubled(v));
  if (y > 100) return absl::OutOfRangeError("too big");
  return absl::OkStatus();
}

TEST(StatusMacrosTest, PropagateErrorsAndValues) {
  EXPECT_EQ(*Doubled(4), 8);
  EXPECT_EQ(Doubled(-1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Check(3).ok());
  EXPECT_EQ(Check(0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Check(60).code(), absl::StatusCode::kOutOfRange);
}

TEST(StatusMacrosTest, AnnotateKeepsCode) {
  absl::Status s = Annotate(absl::NotFoundError("no such file"), "loading config");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "loading config: no such file");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "x").ok());
}

TEST(GrpcStatusTest, EveryCanonicalCodeRoundTrips) {
  for (int c = 0; c <= 16; ++c) {
    absl::Status s(static_cast<absl::StatusCode>(c), c == 0 ? "" : "msg " + std::to_string(c));
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    if (c != 0) EXPECT_EQ(g.error_message(), "msg " + std::to_string(c));
    EXPECT_EQ(FromGrpcStatus(g), s);
  }
}

TEST(GrpcStatusTest, SpecificCodes) {
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("x")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ToGrpcStatus(absl::PermissionDeniedError("x")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(absl::UnimplementedError("x")).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace tessera
