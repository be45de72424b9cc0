#include "agents/mcp/server_config.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::vector<ServerConfig>> Parse(const char* text) { return ParseServersConfig(Json::parse(text)); }

std::string ErrorOf(const char* text) {
  auto r = Parse(text);
  EXPECT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST(ServerConfigTest, ParsesStdioAndHttpServers) {
  setenv("MCP_TEST_TOKEN", "s3cret", 1);
  auto servers = Parse(R"({"servers":{
    "files":{"transport":"stdio","command":"node","args":["srv.js","/data"],"env":{"K":"v"},"cwd":"/tmp",
             "timeout_ms":5000,"tools":{"allow":["read_*"],"deny":["read_secret"]}},
    "crm":{"transport":"http","url":"https://crm.example.com/mcp","headers":{"X-Team":"sales"},
           "auth":{"bearer":"${env:MCP_TEST_TOKEN}"},"protocol":"legacy","max_message_bytes":2048},
    "sso":{"transport":"http","url":"https://sso.example.com/mcp",
           "auth":{"oauth":{"client_id":"tessera","refresh_token":"r1","scopes":["a","b"]}}}}})");
  ASSERT_TRUE(servers.ok()) << servers.status();
  ASSERT_EQ(servers->size(), 3u);
  const ServerConfig& crm = (*servers)[0];  // sorted by name
  EXPECT_EQ(crm.name, "crm");
  EXPECT_EQ(crm.transport, ServerConfig::TransportKind::kHttp);
  EXPECT_EQ(crm.bearer_token, "s3cret");
  EXPECT_FALSE(crm.try_modern_era);
  EXPECT_EQ(crm.max_message_bytes, 2048u);
  const ServerConfig& files = (*servers)[1];
  EXPECT_EQ(files.transport, ServerConfig::TransportKind::kStdio);
  EXPECT_EQ(files.args, (std::vector<std::string>{"srv.js", "/data"}));
  EXPECT_EQ(files.env.at("K"), "v");
  EXPECT_EQ(files.timeout, absl::Seconds(5));
  EXPECT_TRUE(files.tools.Allows("read_file"));
  EXPECT_FALSE(files.tools.Allows("read_secret"));
  EXPECT_FALSE(files.tools.Allows("write_file"));
  const ServerConfig& sso = (*servers)[2];
  ASSERT_TRUE(sso.oauth.has_value());
  EXPECT_EQ(sso.oauth->scopes, (std::vector<std::string>{"a", "b"}));
}

TEST(ServerConfigTest, ErrorsNameTheField) {
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"command":"node"}}})"), HasSubstr("servers.x.transport: is required"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"sse","url":"http://a"}}})"), HasSubstr("servers.x.transport"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"stdio"}}})"), HasSubstr("servers.x.command"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"stdio","command":"n","args":"a"}}})"), HasSubstr("servers.x.args"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"http","url":"ftp://a"}}})"), HasSubstr("servers.x.url"));
  // The transport is never inferred from a URL.
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"stdio","command":"n","url":"http://a"}}})"),
              HasSubstr("servers.x.url: only applies"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"http","url":"http://a","auth":{"bearer":"${env:MCP_UNSET_VAR_X}"}}}})"),
              HasSubstr("MCP_UNSET_VAR_X is not set"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"http","url":"http://a","auth":{"oauth":{"client_id":"c"}}}}})"),
              HasSubstr("servers.x.auth.oauth.refresh_token"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"stdio","command":"n","timout_ms":5}}})"),
              HasSubstr("servers.x.timout_ms: unknown field"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"stdio","command":"n","timeout_ms":-1}}})"),
              HasSubstr("servers.x.timeout_ms"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"bad name":{"transport":"stdio","command":"n"}}})"), HasSubstr("server names"));
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"http","url":"http://a","headers":{"Mcp-Session-Id":"1"}}}})"),
              HasSubstr("managed by the client"));
  EXPECT_THAT(ErrorOf(R"({"mcpServers":{}})"), HasSubstr("\"servers\""));
}

TEST(ServerConfigTest, OAuthPrivateKeyJwtAndClientMetadataUrl) {
  auto servers = Parse(R"({"servers":{"m2m":{"transport":"http","url":"https://m2m.example.com/mcp",
    "auth":{"oauth":{"client_id":"svc","private_key_pem":"-----BEGIN PRIVATE KEY-----","signing_algorithm":"ES256",
                     "client_metadata_url":"https://tessera.example/client.json"}}}}})");
  ASSERT_TRUE(servers.ok()) << servers.status();
  ASSERT_TRUE((*servers)[0].oauth.has_value());
  EXPECT_EQ((*servers)[0].oauth->signing_algorithm, "ES256");
  EXPECT_EQ((*servers)[0].oauth->client_metadata_url, "https://tessera.example/client.json");
  EXPECT_THAT(ErrorOf(R"({"servers":{"x":{"transport":"http","url":"http://a","auth":{"oauth":{"client_id":"c",
                        "client_secret":"s","client_metadata_url":"http://insecure/c.json"}}}}})"),
              HasSubstr("client_metadata_url: must be an https URL"));
}

TEST(ServerConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadServersConfigFile("/nonexistent/mcp.json").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera::mcp
