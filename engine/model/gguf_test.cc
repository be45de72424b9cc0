#include "engine/model/gguf.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/model/dtype.h"
#include "engine/model/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

using ::testing::HasSubstr;

std::string TestDataPath(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/tessera/engine/model/testdata/", name);
}

std::string TempPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp ? tmp : "/tmp", "/", name);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename T>
void Poke(std::string* s, size_t pos, T v) {
  ASSERT_LE(pos + sizeof(T), s->size());
  std::memcpy(s->data() + pos, &v, sizeof(T));
}

// Position of the field after the name of tensor `name` in the tensor-info section (n_dims).
size_t TensorInfoPos(const std::string& file, const std::string& name) {
  std::string needle;
  const uint64_t len = name.size();
  needle.append(reinterpret_cast<const char*>(&len), 8);
  needle += name;
  const size_t p = file.rfind(needle);
  EXPECT_NE(p, std::string::npos) << name;
  return p + needle.size();
}
// Offsets of the fields of a tensor info with `n_dims` dimensions.
size_t DimPos(const std::string& f, const std::string& name, int d) { return TensorInfoPos(f, name) + 4 + 8 * d; }
size_t TypePos(const std::string& f, const std::string& name, int n_dims) { return DimPos(f, name, n_dims); }
size_t OffsetPos(const std::string& f, const std::string& name, int n_dims) { return DimPos(f, name, n_dims) + 4; }

// An INVALID_ARGUMENT whose message contains `what` and a byte position.
void ExpectInvalid(const std::string& bytes, const std::string& what) {
  absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(bytes);
  ASSERT_FALSE(f.ok()) << "expected an error containing '" << what << "'";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(what));
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("at byte"));
}

std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A small valid file: metadata of several kinds and two tensors whose sizes are multiples of 32
// bytes, so that the file ends exactly at the end of the last tensor (no trailing padding).
std::string SmallFile() {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.block_count", 2);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  w.AddFloat32Array("tokenizer.ggml.scores", std::vector<float>{0, 0, 0, -1.5f});
  w.Add("nested", GgufValue::Array(GgufType::kArray, {GgufValue::Int32Array(std::vector<int32_t>{1, 2}),
                                                      GgufValue::StringArray({"x"})}));
  w.AddBool("flag", true);
  EXPECT_TRUE(w.AddTensor("a", DType::kF32, {8, 2}, RandomFloats(16, 1)).ok());
  EXPECT_TRUE(w.AddTensor("b", DType::kQ8_0, {32, 2}, RandomFloats(64, 2)).ok());  // 68 bytes
  EXPECT_TRUE(w.AddTensor("c", DType::kF16, {16}, RandomFloats(16, 3)).ok());
  return w.Serialize();
}

// --- The real model --------------------------------------------------------------------------

TEST(GgufStories260KTest, MetadataAndTensors) {
  absl::StatusOr<std::unique_ptr<GgufFile>> opened = GgufFile::Open(TestDataPath("stories260K.gguf"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  const GgufFile& f = **opened;
  EXPECT_EQ(f.version(), 3);
  EXPECT_EQ(f.architecture(), "llama");
  EXPECT_EQ(*f.GetInt("llama.embedding_length"), 64);
  EXPECT_EQ(*f.GetInt("llama.block_count"), 5);
  EXPECT_EQ(*f.GetInt("llama.attention.head_count"), 8);
  EXPECT_EQ(*f.GetInt("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(*f.GetInt("llama.feed_forward_length"), 172);
  EXPECT_GT(*f.GetFloat("llama.attention.layer_norm_rms_epsilon"), 0.0);
  EXPECT_EQ(*f.GetString("tokenizer.ggml.model"), "llama");

  absl::StatusOr<std::vector<std::string_view>> tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  absl::StatusOr<std::vector<float>> scores = f.GetFloatArray("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_EQ(scores->size(), 512u);
  absl::StatusOr<std::vector<int64_t>> types = f.GetIntArray("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok()) << types.status();
  ASSERT_EQ(types->size(), 512u);
  EXPECT_EQ((*types)[0], 2);  // <unk>: UNKNOWN
  EXPECT_EQ((*types)[1], 3);  // <s>: CONTROL
  EXPECT_EQ((*types)[3], 6);  // <0x00>: BYTE
  EXPECT_EQ((*tokens)[3], "<0x00>");
  EXPECT_EQ(*f.GetInt("tokenizer.ggml.bos_token_id"), 1);

  // 1 embedding + 9 per layer + output norm + output.
  EXPECT_EQ(f.tensors().size(), 1u + 9u * 5u + 2u);
  const std::string_view file = f.bytes();
  const std::string on_disk = ReadAll(TestDataPath("stories260K.gguf"));
  ASSERT_EQ(on_disk.size(), f.file_size());
  for (const TensorView& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.type, DType::kF32);
    EXPECT_EQ(t.nbytes, static_cast<size_t>(t.cols() * t.rows()) * 4);
    const char* p = static_cast<const char*>(t.data);
    ASSERT_GE(p, file.data() + f.data_offset());
    ASSERT_LE(p + t.nbytes, file.data() + file.size());
    EXPECT_EQ((p - file.data()) % 32, 0);
    EXPECT_EQ(std::memcmp(p, on_disk.data() + (p - file.data()), t.nbytes), 0);
    EXPECT_EQ(f.FindTensor(t.name), &t);
  }
  const TensorView* embd = f.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->shape, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(embd->cols(), 64);
  EXPECT_EQ(embd->rows(), 512);
  const TensorView* out = f.FindTensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->shape, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(f.FindTensor("output_norm.weight")->shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(f.FindTensor("blk.0.attn_q.weight")->shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(f.FindTensor("blk.4.attn_k.weight")->shape, (std::vector<int64_t>{64, 32}));  // 4 KV heads of 8
  EXPECT_EQ(f.FindTensor("blk.2.ffn_gate.weight")->shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(f.FindTensor("blk.2.ffn_down.weight")->shape, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(f.FindTensor("blk.5.attn_q.weight"), nullptr);
  const float* w = static_cast<const float*>(embd->data);
  for (int64_t i = 0; i < embd->cols() * embd->rows(); ++i) ASSERT_TRUE(std::isfinite(w[i])) << i;

  // Every key can be printed.
  for (const GgufFile::Entry& e : f.entries()) EXPECT_FALSE(f.FormatValue(e.key).empty()) << e.key;
  EXPECT_EQ(f.FormatValue("llama.block_count"), "5");
  EXPECT_THAT(f.FormatValue("tokenizer.ggml.tokens", 3), HasSubstr("'<unk>', '<s>', '</s>', ... (512 elements)"));
}

TEST(GgufStories260KTest, FromBufferMatchesOpen) {
  absl::StatusOr<std::unique_ptr<GgufFile>> a = GgufFile::Open(TestDataPath("stories260K.gguf"));
  absl::StatusOr<std::unique_ptr<GgufFile>> b = GgufFile::FromBuffer(ReadAll(TestDataPath("stories260K.gguf")));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->tensors().size(), (*b)->tensors().size());
  for (size_t i = 0; i < (*a)->tensors().size(); ++i) {
    const TensorView& x = (*a)->tensors()[i];
    const TensorView& y = (*b)->tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.shape, y.shape);
    ASSERT_EQ(x.nbytes, y.nbytes);
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0);
  }
}

TEST(GgufOpenTest, MissingFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(TempPath("does-not-exist.gguf"));
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("does-not-exist.gguf"));
}

TEST(GgufOpenTest, EmptyFileAndErrorsNameThePath) {
  const std::string empty = TempPath("empty.gguf");
  std::ofstream(empty).close();
  EXPECT_EQ(GgufFile::Open(empty).status().code(), absl::StatusCode::kInvalidArgument);
  const std::string bad = TempPath("bad.gguf");
  static constexpr char kV1[] = "GGUF\x01\x00\x00\x00 and more bytes than a header";
  std::ofstream(bad) << std::string(kV1, sizeof(kV1) - 1);
  absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(bad);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(bad));
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("version 1"));
}

// --- Writer round trips ----------------------------------------------------------------------

TEST(GgufMetadataTest, EveryValueType) {
  GgufWriter w;
  w.Add("u8", GgufValue::Uint8(200));
  w.Add("i8", GgufValue::Int8(-100));
  w.Add("u16", GgufValue::Uint16(60000));
  w.Add("i16", GgufValue::Int16(-30000));
  w.AddUint32("u32", 4000000000u);
  w.AddInt32("i32", -2000000000);
  w.AddUint64("u64", uint64_t{1} << 62);
  w.AddUint64("u64_big", ~uint64_t{0});
  w.AddInt64("i64", -(int64_t{1} << 60));
  w.AddFloat32("f32", 0.5f);
  w.AddFloat64("f64", 1e300);
  w.AddBool("yes", true);
  w.AddBool("no", false);
  w.AddString("s", "hello");
  w.AddString("empty", "");
  w.Add("u8s", GgufValue::Array(GgufType::kUint8, {GgufValue::Uint8(1), GgufValue::Uint8(255)}));
  w.Add("u64s", GgufValue::Array(GgufType::kUint64, {GgufValue::Uint64(7), GgufValue::Uint64(~uint64_t{0})}));
  w.Add("f64s", GgufValue::Array(GgufType::kFloat64, {GgufValue::Float64(0.25), GgufValue::Float64(-2)}));
  w.Add("bools", GgufValue::Array(GgufType::kBool, {GgufValue::Bool(true), GgufValue::Bool(false)}));
  w.AddInt32Array("i32s", std::vector<int32_t>{-1, 0, 1});
  w.AddStringArray("strs", {"a", "", "ccc"});
  w.Add("empty_arr", GgufValue::Array(GgufType::kString, {}));
  w.Add("nested", GgufValue::Array(GgufType::kArray, {GgufValue::Int32Array(std::vector<int32_t>{1}),
                                                      GgufValue::StringArray({"x", "y"})}));
  absl::StatusOr<std::unique_ptr<GgufFile>> opened = GgufFile::FromBuffer(w.Serialize());
  ASSERT_TRUE(opened.ok()) << opened.status();
  const GgufFile& f = **opened;

  EXPECT_EQ(*f.GetInt("u8"), 200);
  EXPECT_EQ(*f.GetInt("i8"), -100);
  EXPECT_EQ(*f.GetInt("u16"), 60000);
  EXPECT_EQ(*f.GetInt("i16"), -30000);
  EXPECT_EQ(*f.GetInt("u32"), 4000000000LL);
  EXPECT_EQ(*f.GetInt("i32"), -2000000000);
  EXPECT_EQ(*f.GetInt("u64"), int64_t{1} << 62);
  EXPECT_EQ(*f.GetInt("i64"), -(int64_t{1} << 60));
  EXPECT_EQ(f.GetInt("u64_big").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.GetInt("u64_big").status().message()), HasSubstr("u64_big"));
  EXPECT_EQ(*f.GetFloat("f32"), 0.5);
  EXPECT_EQ(*f.GetFloat("f64"), 1e300);
  EXPECT_TRUE(*f.GetBool("yes"));
  EXPECT_FALSE(*f.GetBool("no"));
  EXPECT_EQ(*f.GetString("s"), "hello");
  EXPECT_EQ(*f.GetString("empty"), "");
  EXPECT_EQ(*f.GetIntArray("u8s"), (std::vector<int64_t>{1, 255}));
  EXPECT_EQ(*f.GetIntArray("i32s"), (std::vector<int64_t>{-1, 0, 1}));
  EXPECT_EQ(f.GetIntArray("u64s").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*f.GetFloatArray("f64s"), (std::vector<float>{0.25f, -2.0f}));
  EXPECT_EQ(*f.GetStringArray("strs"), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_TRUE(f.GetStringArray("empty_arr")->empty());
  EXPECT_EQ(f.entries().size(), 23u);
  EXPECT_EQ(f.entries()[0].key, "u8");
  EXPECT_EQ(f.entries()[22].type, GgufType::kArray);
  EXPECT_EQ(f.entries()[22].array_type, GgufType::kArray);
  EXPECT_EQ(f.entries()[22].array_length, 2u);
  EXPECT_EQ(f.FormatValue("nested"), "[[1], ['x', 'y']]");
  EXPECT_EQ(f.FormatValue("bools"), "[true, false]");
  EXPECT_EQ(f.FormatValue("missing"), "");
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.architecture(), "");

  // Missing keys and wrong types.
  EXPECT_FALSE(f.Has("nope"));
  EXPECT_TRUE(f.Has("s"));
  EXPECT_EQ(f.GetInt("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(f.GetStringArray("nope").status().code(), absl::StatusCode::kNotFound);
  for (const absl::Status& s :
       {f.GetInt("s").status(), f.GetFloat("u32").status(), f.GetBool("u8").status(), f.GetString("strs").status(),
        f.GetStringArray("i32s").status(), f.GetFloatArray("strs").status(), f.GetIntArray("f64s").status(),
        f.GetIntArray("nested").status(), f.GetStringArray("s").status(), f.GetInt("bools").status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("metadata key '")) << s;
  }
  EXPECT_THAT(std::string(f.GetInt("s").status().message()), HasSubstr("'s' is STRING"));
}

TEST(GgufTensorTest, RoundTripF32F16Q8_0) {
  const std::vector<float> a = RandomFloats(64 * 3, 7);
  const std::vector<float> b = RandomFloats(32 * 2 * 2, 8);
  const std::vector<float> c = RandomFloats(5, 9);
  GgufWriter w;
  w.AddString("general.architecture", "bert");
  ASSERT_TRUE(w.AddTensor("a", DType::kF16, {64, 3}, a).ok());
  ASSERT_TRUE(w.AddTensor("b", DType::kQ8_0, {32, 2, 2}, b).ok());
  ASSERT_TRUE(w.AddTensor("c", DType::kF32, {5}, c).ok());
  const std::string path = TempPath("roundtrip.gguf");
  ASSERT_TRUE(w.WriteFile(path).ok());
  absl::StatusOr<std::unique_ptr<GgufFile>> opened = GgufFile::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const GgufFile& f = **opened;
  EXPECT_EQ(f.architecture(), "bert");
  ASSERT_EQ(f.tensors().size(), 3u);

  const TensorView* ta = f.FindTensor("a");
  EXPECT_EQ(ta->type, DType::kF16);
  EXPECT_EQ(ta->nbytes, 64u * 3 * 2);
  std::vector<float> row(64);
  for (int r = 0; r < 3; ++r) {
    DequantizeRow(DType::kF16, static_cast<const char*>(ta->data) + r * 128, row.data(), 64);
    for (int i = 0; i < 64; ++i) EXPECT_NEAR(row[i], a[r * 64 + i], 2e-3f * std::fabs(a[r * 64 + i]) + 1e-6f);
  }
  const TensorView* tb = f.FindTensor("b");
  EXPECT_EQ(tb->type, DType::kQ8_0);
  EXPECT_EQ(tb->shape, (std::vector<int64_t>{32, 2, 2}));
  EXPECT_EQ(tb->rows(), 4);
  EXPECT_EQ(tb->nbytes, 4u * sizeof(BlockQ8_0));
  std::vector<BlockQ8_0> expected(4);
  QuantizeRow(DType::kQ8_0, b.data(), expected.data(), 128);
  EXPECT_EQ(std::memcmp(tb->data, expected.data(), tb->nbytes), 0);
  for (int r = 0; r < 4; ++r) {
    DequantizeRow(DType::kQ8_0, static_cast<const char*>(tb->data) + r * 34, row.data(), 32);
    for (int i = 0; i < 32; ++i) EXPECT_NEAR(row[i], b[r * 32 + i], 0.05f);
  }
  const TensorView* tc = f.FindTensor("c");
  EXPECT_EQ(std::memcmp(tc->data, c.data(), 20), 0);
  for (const TensorView& t : f.tensors()) {
    EXPECT_EQ((static_cast<const char*>(t.data) - f.bytes().data()) % 32, 0) << t.name;
  }
}

TEST(GgufTensorTest, WriterRejectsBadTensors) {
  GgufWriter w;
  EXPECT_FALSE(w.AddTensor("q", DType::kQ8_0, {33}, RandomFloats(33, 1)).ok());
  EXPECT_FALSE(w.AddTensor("n", DType::kF32, {4}, RandomFloats(3, 1)).ok());
  EXPECT_FALSE(w.AddTensor("z", DType::kF32, {0}, {}).ok());
  EXPECT_FALSE(w.AddRawTensor("r", DType::kF32, {4}, std::string(15, '\0')).ok());
}

TEST(GgufVersionTest, VersionTwoAndCustomAlignment) {
  GgufWriter::Options options;
  options.version = 2;
  options.alignment = 64;
  GgufWriter w(options);
  ASSERT_TRUE(w.AddTensor("x", DType::kF32, {3}, std::vector<float>{1, 2, 3}).ok());
  ASSERT_TRUE(w.AddTensor("y", DType::kF32, {3}, std::vector<float>{4, 5, 6}).ok());
  absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(w.Serialize());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->version(), 2);
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->data_offset() % 64, 0u);
  const TensorView* y = (*f)->FindTensor("y");
  EXPECT_EQ(static_cast<const char*>(y->data) - (*f)->bytes().data(), static_cast<ptrdiff_t>((*f)->data_offset() + 64));
  EXPECT_EQ(static_cast<const float*>(y->data)[2], 6.0f);
}

TEST(GgufTensorTest, MisalignedTensorsAreCopiedAligned) {
  // Alignment 1 (legal, if unusual): tensors follow each other without padding.
  GgufWriter::Options options;
  options.alignment = 1;
  GgufWriter w(options);
  ASSERT_TRUE(w.AddTensor("h", DType::kF16, {3}, std::vector<float>{1, 2, 3}).ok());
  ASSERT_TRUE(w.AddTensor("f", DType::kF32, {3}, std::vector<float>{4, 5, 6}).ok());
  ASSERT_TRUE(w.AddTensor("g", DType::kF32, {1}, std::vector<float>{7}).ok());
  for (size_t shift = 0; shift < 4; ++shift) {
    // Shift the whole file by appending a key of varying length.
    GgufWriter v = w;
    v.AddString("pad", std::string(shift, 'x'));
    absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(v.Serialize());
    ASSERT_TRUE(f.ok()) << f.status();
    for (const TensorView& t : (*f)->tensors()) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % RequiredAlignment(t.type), 0u) << t.name << " " << shift;
    }
    const float* fd = static_cast<const float*>((*f)->FindTensor("f")->data);
    EXPECT_EQ(fd[0], 4.0f);
    EXPECT_EQ(fd[2], 6.0f);
    EXPECT_EQ(*static_cast<const float*>((*f)->FindTensor("g")->data), 7.0f);
    float h[3];
    DequantizeRow(DType::kF16, (*f)->FindTensor("h")->data, h, 3);
    EXPECT_EQ(h[2], 3.0f);
  }
}

// --- Hostile input ---------------------------------------------------------------------------

TEST(GgufHostileTest, EveryTruncationIsAnError) {
  const std::string full = SmallFile();
  ASSERT_TRUE(GgufFile::FromBuffer(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(full.substr(0, n));
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " of " << full.size() << " bytes was accepted";
    ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST(GgufHostileTest, HeaderErrors) {
  const std::string full = SmallFile();
  std::string s = full;
  s[0] = 'X';
  ExpectInvalid(s, "not a GGUF file");
  ExpectInvalid("tjgg" + full.substr(4), "legacy GGML");
  ExpectInvalid("GGU", "too short");
  s = full;
  Poke<uint32_t>(&s, 4, 1);
  ExpectInvalid(s, "version 1 is not supported");
  Poke<uint32_t>(&s, 4, 4);
  ExpectInvalid(s, "unsupported GGUF version 4");
  Poke<uint32_t>(&s, 4, 0x03000000);
  ExpectInvalid(s, "big-endian");
  s = full;
  Poke<uint64_t>(&s, 8, uint64_t{1} << 40);
  ExpectInvalid(s, "tensor count 1099511627776 cannot fit");
  s = full;
  Poke<uint64_t>(&s, 8, ~uint64_t{0});
  ExpectInvalid(s, "tensor count");
  s = full;
  Poke<uint64_t>(&s, 16, ~uint64_t{0} / 2);
  ExpectInvalid(s, "metadata count");
  s = full;
  Poke<uint64_t>(&s, 24, ~uint64_t{0});  // the first key's length
  ExpectInvalid(s, "key of metadata entry 0 has length 18446744073709551615");
  s = full;
  Poke<uint64_t>(&s, 16, 100);  // more entries than written: runs into the tensor infos
  absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(s);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GgufHostileTest, MetadataErrors) {
  {
    GgufWriter w;
    w.AddString("a", "x");
    w.AddUint32("a", 1);
    ExpectInvalid(w.Serialize(), "duplicate metadata key 'a'");
  }
  {
    GgufWriter w;
    w.AddString("", "x");
    ExpectInvalid(w.Serialize(), "empty key");
  }
  {
    GgufWriter w;
    w.AddString("s", "hello");
    std::string s = w.Serialize();
    Poke<uint32_t>(&s, 24 + 8 + 1, 13);  // value type
    ExpectInvalid(s, "unknown value type 13 for key 's'");
    Poke<uint32_t>(&s, 24 + 8 + 1, static_cast<uint32_t>(GgufType::kString));
    Poke<uint64_t>(&s, 24 + 8 + 1 + 4, uint64_t{1} << 62);  // string length
    ExpectInvalid(s, "has length 4611686018427387904");
  }
  {
    GgufWriter w;
    w.AddBool("b", true);
    std::string s = w.Serialize();
    s[24 + 8 + 1 + 4] = 2;
    ExpectInvalid(s, "BOOL value 2 of key 'b'");
  }
  {
    GgufWriter w;
    w.AddInt32Array("arr", std::vector<int32_t>{1, 2, 3});
    const size_t arr = 24 + 8 + 3 + 4;
    std::string s = w.Serialize();
    Poke<uint64_t>(&s, arr + 4, uint64_t{1} << 61);
    ExpectInvalid(s, "claims 2305843009213693952 INT32 elements");
    s = w.Serialize();
    Poke<uint32_t>(&s, arr, 77);
    ExpectInvalid(s, "unknown array element type 77");
  }
  {
    GgufWriter w;
    w.AddStringArray("toks", {"a", "b"});
    std::string s = w.Serialize();
    Poke<uint64_t>(&s, 24 + 8 + 4 + 4 + 4, ~uint64_t{0} / 8);
    ExpectInvalid(s, "STRING elements");
  }
  {
    // Arrays nested 9 deep.
    GgufValue v = GgufValue::Int32Array(std::vector<int32_t>{1});
    for (int i = 0; i < 8; ++i) v = GgufValue::Array(GgufType::kArray, {v});
    GgufWriter w;
    w.Add("deep", v);
    ExpectInvalid(w.Serialize(), "nested more than 8 deep");
    GgufValue ok = GgufValue::Int32Array(std::vector<int32_t>{1});
    for (int i = 0; i < 7; ++i) ok = GgufValue::Array(GgufType::kArray, {ok});
    GgufWriter w2;
    w2.Add("deep", ok);
    EXPECT_TRUE(GgufFile::FromBuffer(w2.Serialize()).ok());
  }
}

TEST(GgufHostileTest, AlignmentErrors) {
  for (uint32_t bad : {0u, 3u, 48u}) {
    GgufWriter w;
    w.AddUint32("general.alignment", bad);
    ExpectInvalid(w.Serialize(), "not a power of two");
  }
  GgufWriter w;
  w.AddString("general.alignment", "32");
  ExpectInvalid(w.Serialize(), "general.alignment");

  GgufWriter u;
  ASSERT_TRUE(u.AddTensor("x", DType::kF32, {16}, RandomFloats(16, 1)).ok());
  ASSERT_TRUE(u.AddTensor("y", DType::kF32, {16}, RandomFloats(16, 2)).ok());
  std::string s = u.Serialize();
  Poke<uint64_t>(&s, OffsetPos(s, "y", 1), 68);
  ExpectInvalid(s, "tensor 'y' has data offset 68, not a multiple of the alignment 32");
}

TEST(GgufHostileTest, TensorInfoErrors) {
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("x", DType::kF32, {16, 2}, RandomFloats(32, 1)).ok());
  ASSERT_TRUE(w.AddTensor("y", DType::kF32, {16}, RandomFloats(16, 2)).ok());
  const std::string full = w.Serialize();
  ASSERT_TRUE(GgufFile::FromBuffer(full).ok());
  std::string s;

  s = full;
  Poke<uint32_t>(&s, TensorInfoPos(s, "x"), 0);
  ExpectInvalid(s, "tensor 'x' has 0 dimensions");
  s = full;
  Poke<uint32_t>(&s, TensorInfoPos(s, "x"), 5);
  ExpectInvalid(s, "tensor 'x' has 5 dimensions");
  s = full;
  Poke<uint64_t>(&s, DimPos(s, "x", 1), 0);
  ExpectInvalid(s, "dimension 1 of tensor 'x' is 0");
  s = full;
  Poke<uint64_t>(&s, DimPos(s, "x", 0), uint64_t{1} << 32);
  Poke<uint64_t>(&s, DimPos(s, "x", 1), uint64_t{1} << 32);
  ExpectInvalid(s, "element count of tensor 'x' overflows");
  s = full;
  Poke<uint64_t>(&s, DimPos(s, "x", 0), ~uint64_t{0});
  ExpectInvalid(s, "overflows");
  s = full;
  Poke<uint64_t>(&s, DimPos(s, "x", 0), uint64_t{1} << 31);
  Poke<uint64_t>(&s, DimPos(s, "x", 1), uint64_t{1} << 31);
  ExpectInvalid(s, "byte size of tensor 'x' overflows");
  s = full;
  Poke<uint64_t>(&s, DimPos(s, "x", 0), uint64_t{1} << 20);
  ExpectInvalid(s, "extends past the end of the file");
  s = full;
  Poke<uint32_t>(&s, TypePos(s, "x", 2), 3);  // Q4_1: not supported
  ExpectInvalid(s, "tensor type 3 is not supported");
  s = full;
  Poke<uint32_t>(&s, TypePos(s, "x", 2), 1000);
  ExpectInvalid(s, "tensor type 1000 is not supported");
  s = full;
  Poke<uint32_t>(&s, TypePos(s, "x", 2), static_cast<uint32_t>(DType::kQ8_0));  // 16 columns
  ExpectInvalid(s, "not a whole number of Q8_0 blocks");
  s = full;
  Poke<uint64_t>(&s, OffsetPos(s, "y", 1), 1024);
  ExpectInvalid(s, "tensor 'y' (64 bytes at data offset 1024) extends past the end");
  s = full;
  Poke<uint64_t>(&s, OffsetPos(s, "y", 1), ~uint64_t{0} - 31);
  ExpectInvalid(s, "extends past the end");
  s = full;
  Poke<uint64_t>(&s, OffsetPos(s, "y", 1), 96);  // x occupies [0, 128)
  ExpectInvalid(s, "tensor 'y' (data offset 96) overlaps tensor 'x'");
  s = full;
  Poke<uint64_t>(&s, OffsetPos(s, "y", 1), 0);
  ExpectInvalid(s, "overlaps");
  s = full;
  s[TensorInfoPos(s, "y") - 1] = 'x';
  ExpectInvalid(s, "duplicate tensor name 'x'");
  s = full;
  Poke<uint64_t>(&s, TensorInfoPos(s, "x") - 9, 0);  // name length 0: the name byte becomes n_dims
  ExpectInvalid(s, "empty name");
}

TEST(GgufHostileTest, DataSectionBeyondFile) {
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("x", DType::kF32, {8}, RandomFloats(8, 1)).ok());
  std::string s = w.Serialize();
  const size_t info_end = OffsetPos(s, "x", 1) + 8;
  ExpectInvalid(s.substr(0, info_end), "tensor data section should start at byte");
}

TEST(GgufHostileTest, RandomCorruptionNeverCrashes) {
  const std::string full = SmallFile();
  std::mt19937 rng(42);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = full;
    const int flips = 1 + rng() % 4;
    for (int k = 0; k < flips; ++k) s[rng() % s.size()] = static_cast<char>(rng());
    absl::StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(s);
    if (!f.ok()) {
      ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    ++accepted;
    // Whatever was accepted must be readable within the buffer.
    for (const TensorView& t : (*f)->tensors()) {
      const char* p = static_cast<const char*>(t.data);
      ASSERT_GE(p, (*f)->bytes().data());
      ASSERT_LE(p + t.nbytes, (*f)->bytes().data() + (*f)->bytes().size());
    }
    for (const GgufFile::Entry& e : (*f)->entries()) (void)(*f)->FormatValue(e.key);
  }
  EXPECT_GT(accepted, 0);  // flips in tensor data are harmless
}

}  // namespace
}  // namespace tessera::engine
