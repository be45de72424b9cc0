#include "engine/model/safetensors.h"

#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/model/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;

struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;  // row-major, as safetensors stores it
  std::string data;
};

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Writes a safetensors file: tensors laid out back to back in the given order. `patch` may edit
// the header JSON before it is written (to make hostile files).
std::string MakeFile(const std::vector<StTensor>& tensors, const json& metadata = nullptr,
                     const std::function<void(json&)>& patch = nullptr) {
  json header = json::object();
  std::string data;
  for (const StTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + t.data.size()}}};
    data += t.data;
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  if (patch) patch(header);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + text + data;
}

std::string WithHeader(const std::string& header_text, const std::string& data = "") {
  const uint64_t n = header_text.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header_text + data;
}

std::string TempDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

void ExpectInvalid(const std::string& bytes, const std::string& what, SafetensorsOptions options = {}) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::FromBuffer(bytes, options);
  ASSERT_FALSE(f.ok()) << "expected an error containing '" << what << "'";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(what));
}

std::vector<StTensor> ValidTensors() {
  return {
      {"w", "F32", {2, 3}, Bytes(std::vector<float>{1, 2, 3, 4, 5, 6})},
      {"a.b", "F32", {1, 2, 1, 2}, Bytes(std::vector<float>{7, 8, 9, 10})},
      {"h", "F16", {4}, Bytes(std::vector<uint16_t>{F32ToF16(0.5f), F32ToF16(-1), 0, F32ToF16(2)})},
      {"s", "BF16", {}, Bytes(std::vector<uint16_t>{F32ToBF16(3.0f)})},
  };
}

TEST(SafetensorsFileTest, ParsesTensorsInGgmlOrder) {
  const std::string bytes = MakeFile(ValidTensors(), {{"format", "pt"}});
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> opened = SafetensorsFile::FromBuffer(bytes);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const SafetensorsFile& f = **opened;
  ASSERT_EQ(f.tensors().size(), 4u);
  // In file order.
  EXPECT_EQ(f.tensors()[0].name, "w");
  EXPECT_EQ(f.tensors()[1].name, "a.b");
  EXPECT_EQ(f.tensors()[3].name, "s");
  EXPECT_EQ(f.metadata().at("format"), "pt");

  const TensorView* w = f.FindTensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->type, DType::kF32);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{3, 2}));  // [2, 3] row-major -> GGML [3, 2]
  EXPECT_EQ(w->cols(), 3);
  EXPECT_EQ(w->rows(), 2);
  EXPECT_EQ(w->nbytes, 24u);
  const float* wf = static_cast<const float*>(w->data);
  EXPECT_EQ(wf[0], 1.0f);
  EXPECT_EQ(wf[5], 6.0f);  // row 1, col 2

  const TensorView* h = f.FindTensor("h");
  EXPECT_EQ(h->type, DType::kF16);
  float hv[4];
  DequantizeRow(DType::kF16, h->data, hv, 4);
  EXPECT_EQ(hv[0], 0.5f);
  EXPECT_EQ(hv[3], 2.0f);

  const TensorView* s = f.FindTensor("s");
  EXPECT_EQ(s->type, DType::kBF16);
  EXPECT_EQ(s->shape, (std::vector<int64_t>{1}));
  float sv;
  DequantizeRow(DType::kBF16, s->data, &sv, 1);
  EXPECT_EQ(sv, 3.0f);

  const TensorView* ab = f.FindTensor("a.b");
  EXPECT_EQ(ab->shape, (std::vector<int64_t>{2, 1, 2, 1}));
  EXPECT_EQ(ab->rows(), 2);
  EXPECT_EQ(f.FindTensor("missing"), nullptr);

  for (const TensorView& t : f.tensors()) {
    const char* p = static_cast<const char*>(t.data);
    EXPECT_GE(p, f.bytes().data());
    EXPECT_LE(p + t.nbytes, f.bytes().data() + f.bytes().size());
  }
}

TEST(SafetensorsFileTest, OpenMapsTheFile) {
  const std::string path = TempDir("st_open") + "/x.safetensors";
  WriteFile(path, MakeFile(ValidTensors()));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors().size(), 4u);
  EXPECT_EQ(static_cast<const float*>((*f)->FindTensor("a.b")->data)[3], 10.0f);

  EXPECT_EQ(SafetensorsFile::Open(path + ".missing").status().code(), absl::StatusCode::kNotFound);
  WriteFile(path, "garbage!");
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> bad = SafetensorsFile::Open(path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr(path));
}

TEST(SafetensorsFileTest, EmptyTensorsAndEmptyHeader) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f =
      SafetensorsFile::FromBuffer(MakeFile({{"e", "F32", {0, 4}, ""}, {"x", "F32", {1}, Bytes(std::vector<float>{1})}}));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->get()->FindTensor("e")->nbytes, 0u);
  EXPECT_EQ(f->get()->FindTensor("e")->shape, (std::vector<int64_t>{4, 0}));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> empty = SafetensorsFile::FromBuffer(WithHeader("{}"));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE((*empty)->tensors().empty());
}

TEST(SafetensorsFileTest, MisalignedTensorsAreCopiedAligned) {
  // Not what the safetensors library writes, but valid: an F32 tensor at an odd offset.
  const std::string bytes = MakeFile({{"b", "U8", {3}, "xyz"},
                                      {"s", "BF16", {1}, Bytes(std::vector<uint16_t>{F32ToBF16(2.0f)})},
                                      {"f", "F32", {2}, Bytes(std::vector<float>{1.5f, -2.5f})}});
  SafetensorsOptions skip;
  skip.skip_unsupported_dtypes = true;
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::FromBuffer(bytes, skip);
  ASSERT_TRUE(f.ok()) << f.status();
  const TensorView* t = (*f)->FindTensor("f");
  ASSERT_EQ(reinterpret_cast<uintptr_t>(t->data) % alignof(float), 0u);
  EXPECT_EQ(static_cast<const float*>(t->data)[1], -2.5f);
  const TensorView* s = (*f)->FindTensor("s");
  ASSERT_EQ(reinterpret_cast<uintptr_t>(s->data) % 2, 0u);
  float v;
  DequantizeRow(DType::kBF16, s->data, &v, 1);
  EXPECT_EQ(v, 2.0f);
}

TEST(SafetensorsHostileTest, EveryTruncationIsAnError) {
  const std::string full = MakeFile(ValidTensors(), {{"format", "pt"}});
  ASSERT_TRUE(SafetensorsFile::FromBuffer(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::FromBuffer(full.substr(0, n));
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " bytes accepted";
    ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST(SafetensorsHostileTest, HeaderErrors) {
  ExpectInvalid("abc", "too short for the 8-byte header length");
  ExpectInvalid(WithHeader("{}").substr(0, 9), "truncated: the header length is 2 bytes but only 1");
  std::string huge(16, ' ');
  const uint64_t n = uint64_t{1} << 40;
  std::memcpy(huge.data(), &n, 8);
  ExpectInvalid(huge, "above the limit of 104857600");
  const uint64_t just_over = kSafetensorsMaxHeaderBytes + 1;
  std::memcpy(huge.data(), &just_over, 8);
  ExpectInvalid(huge, "above the limit");
  ExpectInvalid(WithHeader("{\"w\": {\"dtype\": \"F32\""), "is not valid JSON");
  ExpectInvalid(WithHeader("not json at all"), "is not valid JSON");
  ExpectInvalid(WithHeader("[1, 2]"), "the header is not a JSON object");
  ExpectInvalid(WithHeader(std::string(1000, '[') + std::string(1000, ']')), "deeper than 64 levels");
  ExpectInvalid(WithHeader("{\"__metadata__\": {\"a\": 1}}"), "__metadata__ entry 'a' is not a string");
  ExpectInvalid(WithHeader("{\"__metadata__\": []}"), "__metadata__ is not a JSON object");
  ExpectInvalid(WithHeader("{\"w\": 5}"), "tensor 'w' is not a JSON object");
  ExpectInvalid(WithHeader("{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", "abcd"), "no string \"dtype\"");
  ExpectInvalid(WithHeader("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", "abcd"), "no array \"shape\"");
  ExpectInvalid(WithHeader("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", "abcd"),
                "no \"data_offsets\"");
}

TEST(SafetensorsHostileTest, TensorErrors) {
  const std::vector<StTensor> base = ValidTensors();
  auto patched = [&](const std::function<void(json&)>& patch) { return MakeFile(base, nullptr, patch); };

  ExpectInvalid(patched([](json& h) { h["w"]["data_offsets"] = {0, 4000}; }),
                "tensor 'w' has data_offsets [0, 4000] outside the data section of 50 bytes");
  ExpectInvalid(patched([](json& h) { h["w"]["data_offsets"] = {24, 0}; }), "outside the data section");
  ExpectInvalid(patched([](json& h) { h["w"]["data_offsets"] = {-1, 24}; }), "not non-negative integers");
  ExpectInvalid(patched([](json& h) { h["w"]["data_offsets"] = {0.5, 24}; }), "not non-negative integers");
  ExpectInvalid(patched([](json& h) { h["w"]["data_offsets"] = {~uint64_t{0} - 3, ~uint64_t{0}}; }),
                "not non-negative integers");
  ExpectInvalid(patched([](json& h) { h["w"]["shape"] = {3, 3}; }),
                "tensor 'w' (F32, shape [3,3]) needs 9 x 4 bytes but data_offsets [0, 24] hold 24");
  ExpectInvalid(patched([](json& h) { h["w"]["shape"] = {-2, 3}; }), "not a non-negative integer");
  ExpectInvalid(patched([](json& h) { h["w"]["shape"] = {"2", 3}; }), "not a non-negative integer");
  ExpectInvalid(patched([](json& h) { h["w"]["shape"] = {uint64_t{1} << 32, uint64_t{1} << 32}; }), "overflows");
  ExpectInvalid(patched([](json& h) { h["w"]["shape"] = {uint64_t{1} << 40, 2}; }), "needs 2199023255552 x 4 bytes");
  ExpectInvalid(patched([](json& h) { h["w"]["shape"] = json::array({1, 1, 1, 1, 1, 1, 1, 1, 1}); }),
                "has 9 dimensions");
  ExpectInvalid(patched([](json& h) { h["h"]["data_offsets"] = {16, 24}; }),
                "tensor 'h' (bytes 16 to 24 of the data section) overlaps tensor 'w'");
  ExpectInvalid(patched([](json& h) { h["s"]["data_offsets"] = {38, 40}; }), "overlaps tensor 'a.b'");
  ExpectInvalid(patched([](json& h) { h["w"]["dtype"] = "Q4"; }), "tensor 'w' has unknown dtype 'Q4'");
  ExpectInvalid(patched([](json& h) { h["w"]["dtype"] = 4; }), "no string \"dtype\"");
}

TEST(SafetensorsHostileTest, UnsupportedDtypeIsAnErrorUnlessSkipped) {
  std::vector<StTensor> tensors = ValidTensors();
  tensors.push_back({"embeddings.position_ids", "I64", {1, 3}, Bytes(std::vector<int64_t>{0, 1, 2})});
  const std::string bytes = MakeFile(tensors);
  ExpectInvalid(bytes, "tensor 'embeddings.position_ids' has dtype I64, which is not supported");
  SafetensorsOptions skip;
  skip.skip_unsupported_dtypes = true;
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::FromBuffer(bytes, skip);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors().size(), 4u);
  EXPECT_EQ((*f)->FindTensor("embeddings.position_ids"), nullptr);
  EXPECT_EQ((*f)->skipped(), (std::vector<std::string>{"embeddings.position_ids (I64)"}));
  // Skipped tensors are still validated.
  tensors.back().shape = {1, 4};
  ExpectInvalid(MakeFile(tensors), "needs 4 x 8 bytes", skip);
}

// --- Model directories -----------------------------------------------------------------------

TEST(SafetensorsModelTest, SingleFile) {
  const std::string dir = TempDir("st_single");
  WriteFile(dir + "/config.json", R"({"model_type": "bert", "hidden_size": 384, "layer_norm_eps": 1e-12})");
  WriteFile(dir + "/model.safetensors", MakeFile(ValidTensors()));
  absl::StatusOr<std::unique_ptr<SafetensorsModel>> m = SafetensorsModel::Open(dir);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->config()["model_type"], "bert");
  EXPECT_EQ((*m)->config()["hidden_size"].get<int>(), 384);
  EXPECT_EQ((*m)->tensors().size(), 4u);
  EXPECT_EQ((*m)->FindTensor("w")->shape, (std::vector<int64_t>{3, 2}));
  const ModelFile& as_base = **m;
  EXPECT_NE(as_base.FindTensor("h"), nullptr);
}

TEST(SafetensorsModelTest, Sharded) {
  const std::string dir = TempDir("st_sharded");
  WriteFile(dir + "/config.json", R"({"model_type": "llama"})");
  WriteFile(dir + "/model-00001-of-00002.safetensors",
            MakeFile({{"a", "F32", {2}, Bytes(std::vector<float>{1, 2})}}));
  WriteFile(dir + "/model-00002-of-00002.safetensors",
            MakeFile({{"b", "F16", {1}, Bytes(std::vector<uint16_t>{F32ToF16(4)})},
                      {"c", "F32", {1}, Bytes(std::vector<float>{5})}}));
  json index = {{"metadata", {{"total_size", 14}}},
                {"weight_map",
                 {{"a", "model-00001-of-00002.safetensors"},
                  {"b", "model-00002-of-00002.safetensors"},
                  {"c", "model-00002-of-00002.safetensors"}}}};
  WriteFile(dir + "/model.safetensors.index.json", index.dump());
  absl::StatusOr<std::unique_ptr<SafetensorsModel>> m = SafetensorsModel::Open(dir);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->files().size(), 2u);
  ASSERT_EQ((*m)->tensors().size(), 3u);
  EXPECT_EQ(static_cast<const float*>((*m)->FindTensor("c")->data)[0], 5.0f);
  EXPECT_EQ(static_cast<const float*>((*m)->FindTensor("a")->data)[1], 2.0f);

  // The index places a tensor in a shard that lacks it.
  index["weight_map"]["a"] = "model-00002-of-00002.safetensors";
  WriteFile(dir + "/model.safetensors.index.json", index.dump());
  m = SafetensorsModel::Open(dir);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("tensor 'a'"));

  // A shard that does not exist.
  index["weight_map"]["a"] = "model-00003-of-00002.safetensors";
  WriteFile(dir + "/model.safetensors.index.json", index.dump());
  m = SafetensorsModel::Open(dir);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("model-00003-of-00002.safetensors"));

  // A shard outside the directory.
  index["weight_map"]["a"] = "../st_single/model.safetensors";
  WriteFile(dir + "/model.safetensors.index.json", index.dump());
  m = SafetensorsModel::Open(dir);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("not a file name in the model directory"));

  // The same tensor in two shards.
  index["weight_map"]["a"] = "model-00001-of-00002.safetensors";
  WriteFile(dir + "/model.safetensors.index.json", index.dump());
  WriteFile(dir + "/model-00001-of-00002.safetensors",
            MakeFile({{"a", "F32", {2}, Bytes(std::vector<float>{1, 2})}, {"c", "F32", {1}, Bytes(std::vector<float>{5})}}));
  m = SafetensorsModel::Open(dir);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("tensor 'c' is in more than one shard"));

  // An index that is not JSON, or has no weight_map.
  WriteFile(dir + "/model.safetensors.index.json", "{\"weight_map\": ");
  EXPECT_EQ(SafetensorsModel::Open(dir).status().code(), absl::StatusCode::kInvalidArgument);
  WriteFile(dir + "/model.safetensors.index.json", "{}");
  EXPECT_THAT(std::string(SafetensorsModel::Open(dir).status().message()), HasSubstr("weight_map"));
}

TEST(SafetensorsModelTest, MissingPieces) {
  const std::string dir = TempDir("st_missing");
  absl::StatusOr<std::unique_ptr<SafetensorsModel>> m = SafetensorsModel::Open(dir);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("config.json"));
  WriteFile(dir + "/config.json", "{\"a\": ");
  m = SafetensorsModel::Open(dir);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("config.json is not valid JSON"));
  WriteFile(dir + "/config.json", "[]");
  EXPECT_EQ(SafetensorsModel::Open(dir).status().code(), absl::StatusCode::kInvalidArgument);
  WriteFile(dir + "/config.json", "{}");
  m = SafetensorsModel::Open(dir);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("neither model.safetensors"));
  WriteFile(dir + "/model.safetensors", MakeFile(ValidTensors()).substr(0, 50));
  m = SafetensorsModel::Open(dir);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("model.safetensors"));
}

}  // namespace
}  // namespace tessera::engine
