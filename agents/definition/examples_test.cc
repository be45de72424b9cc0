// Keeps the example definitions (examples/agents), the parser and validator, and the JSON Schema
// (docs/agent-definition.schema.json) in agreement: every example parses, validates and matches
// the schema; the schema names exactly the fields of the protos; and documents the validator
// rejects, the schema rejects too where it can express the rule.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agents/definition/definition.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tessera/v1/agents.pb.h"

#define VALIJSON_USE_EXCEPTIONS 1
#include "valijson/adapters/nlohmann_json_adapter.hpp"
#include "valijson/schema.hpp"
#include "valijson/schema_parser.hpp"
#include "valijson/validation_results.hpp"
#include "valijson/validator.hpp"

namespace tessera::agents {
namespace {

using Json = ::nlohmann::json;

// The test runs in the runfiles tree, whose root is the workspace root.
constexpr char kExamplesDir[] = "examples/agents";
constexpr char kSchemaPath[] = "docs/agent-definition.schema.json";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path << " from " << std::filesystem::current_path();
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ExampleFiles() {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kExamplesDir, ec)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class SchemaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    schema_json_ = new Json(Json::parse(ReadFile(kSchemaPath)));
    Json copy = *schema_json_;
    copy.erase("$schema");  // Keep valijson from trying to fetch the meta-schema.
    schema_ = new valijson::Schema();
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(copy);
    parser.populateSchema(adapter, *schema_);
  }
  static void TearDownTestSuite() {
    delete schema_;
    delete schema_json_;
  }

  // "" when `document` matches the schema, else the problems.
  static std::string SchemaErrors(const Json& document) {
    valijson::Validator validator(valijson::Validator::kStrongTypes);
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter adapter(document);
    if (validator.validate(*schema_, adapter, &results)) return "";
    std::string out;
    valijson::ValidationResults::Error error;
    while (results.popError(error)) {
      for (const std::string& c : error.context) out += c;
      out += ": " + error.description + "\n";
    }
    return out;
  }

  static Json* schema_json_;
  static valijson::Schema* schema_;
};

Json* SchemaTest::schema_json_ = nullptr;
valijson::Schema* SchemaTest::schema_ = nullptr;

TEST_F(SchemaTest, TheExpectedExamplesArePresent) {
  std::vector<std::string> files = ExampleFiles();
  EXPECT_THAT(files, ::testing::IsSupersetOf({"examples/agents/extractive-search.json",
                                              "examples/agents/hr-assistant.json",
                                              "examples/agents/it-helpdesk.json"}));
}

TEST_F(SchemaTest, EveryExampleParsesValidatesAndMatchesTheSchema) {
  std::vector<std::string> files = ExampleFiles();
  ASSERT_FALSE(files.empty());
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    const std::string text = ReadFile(file);
    absl::StatusOr<tessera::v1::AgentDefinition> d = ParseAgentDefinitionJson(text);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(ValidateAgentDefinition(*d).ok()) << ValidateAgentDefinition(*d);
    EXPECT_EQ(SchemaErrors(Json::parse(text)), "");
    // What `tessera agent get` prints matches the schema too.
    EXPECT_EQ(SchemaErrors(Json::parse(AgentDefinitionToJson(*d))), "");
  }
}

TEST_F(SchemaTest, ExamplesShowWhatTheyAreFor) {
  auto load = [](const std::string& name) {
    absl::StatusOr<tessera::v1::AgentDefinition> d =
        ParseAgentDefinitionJson(ReadFile(std::string(kExamplesDir) + "/" + name));
    EXPECT_TRUE(d.ok()) << name << ": " << d.status();
    return d.ok() ? *d : tessera::v1::AgentDefinition();
  };
  tessera::v1::AgentDefinition hr = load("hr-assistant.json");
  EXPECT_FLOAT_EQ(hr.completion_args().temperature(), 0.2f);
  EXPECT_THAT(hr.knowledge().collections(), ::testing::ElementsAre("acme"));
  ASSERT_EQ(hr.tools_size(), 1);
  EXPECT_TRUE(hr.tools(0).has_knowledge_search());

  tessera::v1::AgentDefinition it = load("it-helpdesk.json");
  const tessera::v1::McpServerTool* files = nullptr;
  for (const tessera::v1::Tool& t : it.tools()) {
    if (t.has_mcp_server() && t.mcp_server().name() == "files") files = &t.mcp_server();
  }
  ASSERT_NE(files, nullptr);
  EXPECT_EQ(files->transport(), tessera::v1::MCP_TRANSPORT_STDIO);
  EXPECT_THAT(files->args(), ::testing::Contains("@modelcontextprotocol/server-filesystem"));
  EXPECT_THAT(files->confirm_tools(), ::testing::ElementsAre("write_file"));
  EXPECT_EQ(EffectiveToolTimeout(it, files), absl::Seconds(30));

  tessera::v1::AgentDefinition extractive = load("extractive-search.json");
  EXPECT_TRUE(IsExtractive(extractive));
  EXPECT_THAT(extractive.knowledge().collections(), ::testing::ElementsAre("acme"));
}

// The schema's properties of `definition` are exactly the JSON names of `d`'s fields.
void ExpectSameFields(const Json& definition, const google::protobuf::Descriptor* d) {
  SCOPED_TRACE(d->full_name());
  std::set<std::string> in_schema;
  for (const auto& [key, value] : definition.at("properties").items()) in_schema.insert(key);
  std::set<std::string> in_proto;
  for (int i = 0; i < d->field_count(); ++i) in_proto.insert(d->field(i)->json_name());
  EXPECT_EQ(in_schema, in_proto);
  EXPECT_EQ(definition.value("additionalProperties", true), false);
}

TEST_F(SchemaTest, SchemaNamesExactlyTheProtoFields) {
  const Json& s = *schema_json_;
  const Json& defs = s.at("definitions");
  ExpectSameFields(s, tessera::v1::AgentDefinition::descriptor());
  ExpectSameFields(defs.at("samplingParams"), tessera::v1::SamplingParams::descriptor());
  ExpectSameFields(defs.at("knowledge"), tessera::v1::Knowledge::descriptor());
  ExpectSameFields(defs.at("searchFilters"), tessera::v1::SearchFilters::descriptor());
  ExpectSameFields(defs.at("hybridParams"), tessera::v1::HybridParams::descriptor());
  ExpectSameFields(defs.at("tool"), tessera::v1::Tool::descriptor());
  ExpectSameFields(defs.at("knowledgeSearchTool"), tessera::v1::KnowledgeSearchTool::descriptor());
  ExpectSameFields(defs.at("mcpServerTool"), tessera::v1::McpServerTool::descriptor());
  ExpectSameFields(defs.at("mcpAuth"), tessera::v1::McpAuth::descriptor());
  ExpectSameFields(defs.at("mcpAuth").at("properties").at("bearer"),
                   tessera::v1::McpBearerAuth::descriptor());
  ExpectSameFields(defs.at("mcpAuth").at("properties").at("oauth"),
                   tessera::v1::McpOAuth::descriptor());
  ExpectSameFields(defs.at("sharing"), tessera::v1::AgentSharing::descriptor());
}

// Documents both the validator and the schema must reject.
TEST_F(SchemaTest, SchemaAndValidatorRejectTheSameMistakes) {
  const Json base = Json::parse(ReadFile(std::string(kExamplesDir) + "/it-helpdesk.json"));
  ASSERT_EQ(SchemaErrors(base), "");
  struct Case {
    std::string what;
    std::function<void(Json&)> mutate;
  };
  auto mcp = [](Json& j) -> Json& { return j["tools"][1]["mcpServer"]; };
  const std::vector<Case> cases = {
      {"unknown field", [](Json& j) { j["nmae"] = "x"; }},
      {"no name", [](Json& j) { j.erase("name"); }},
      {"long name", [](Json& j) { j["name"] = std::string(129, 'n'); }},
      {"no model", [](Json& j) { j.erase("model"); }},
      {"topK 51", [](Json& j) { j["knowledge"]["topK"] = 51; }},
      {"maxIterations 51", [](Json& j) { j["maxIterations"] = 51; }},
      {"wrong type", [](Json& j) { j["maxIterations"] = "many"; }},
      {"temperature < 0", [](Json& j) { j["completionArgs"]["temperature"] = -1; }},
      {"topP 0", [](Json& j) { j["completionArgs"]["topP"] = 0; }},
      {"9 starters", [](Json& j) { j["starterMessages"] = std::vector<std::string>(9, "hi"); }},
      {"tool without kind", [](Json& j) { j["tools"][0] = Json::object(); }},
      {"no transport", [&](Json& j) { mcp(j).erase("transport"); }},
      {"stdio without command", [&](Json& j) { mcp(j).erase("command"); }},
      {"stdio with url", [&](Json& j) { mcp(j)["url"] = "https://x.example"; }},
      {"bad server name", [&](Json& j) { mcp(j)["name"] = "my-files"; }},
      {"http with command",
       [&](Json& j) {
         mcp(j)["transport"] = "MCP_TRANSPORT_STREAMABLE_HTTP";
         mcp(j)["url"] = "https://x.example";
       }},
      {"http with ftp url",
       [&](Json& j) {
         Json& m = mcp(j);
         m = {{"name", "x"}, {"transport", "MCP_TRANSPORT_STREAMABLE_HTTP"}, {"url", "ftp://x"}};
       }},
      {"negative timeout", [&](Json& j) { mcp(j)["timeout"] = "-1s"; }},
      {"user not an email", [](Json& j) { j["sharing"]["users"] = {"ann"}; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Json j = base;
    c.mutate(j);
    EXPECT_FALSE(ParseAndValidateAgentDefinitionJson(j.dump()).ok());
    EXPECT_NE(SchemaErrors(j), "");
  }
}

}  // namespace
}  // namespace tessera::agents
