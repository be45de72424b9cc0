// conformance_client: runs one client scenario of the official MCP conformance
// suite (@modelcontextprotocol/conformance) with McpClient over Streamable HTTP.
//
//   node node_modules/@modelcontextprotocol/conformance/dist/index.js client
//     --command "bazel-bin/agents/mcp/conformance_client" --scenario initialize
//   (one command line)
//
// The suite appends the scenario server's URL as the last argument and names
// the scenario in MCP_CONFORMANCE_SCENARIO (extra data, e.g. client
// credentials, as JSON in MCP_CONFORMANCE_CONTEXT). Exit status 0 when the
// client side of the scenario ran without error.
//
// Auth scenarios: OAuthAuth with the context's client_id and client_secret or
// private_key_pem (none: dynamic client registration). Its interactive login
// (on 401, and scope step-up on 403) is done headless: the authorization URL
// is fetched without following redirects and the Location header handed
// back, as the suite's authorization server approves without a user.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agents/mcp/client.h"
#include "agents/mcp/http_transport.h"
#include "agents/mcp/json_rpc.h"
#include "agents/mcp/oauth.h"
#include "agents/mcp/types.h"
#include "common/http/curl_http_transport.h"

namespace tessera::mcp {
namespace {

// Headless authorization: the suite's authorization server approves without
// a user and redirects straight back; the redirect target is the answer.
absl::StatusOr<std::string> HeadlessAuthorize(HttpTransport& http, const std::string& url) {
  HttpRequest req;
  req.url = url;
  absl::StatusOr<HttpResponse> resp = http.Send(req);
  if (!resp.ok()) return resp.status();
  std::optional<std::string> location = resp->headers.Get("Location");
  if (!location.has_value()) {
    return absl::UnauthenticatedError(
        absl::StrCat("authorization endpoint answered HTTP ", resp->status_code, " without a redirect"));
  }
  return *location;
}

int Run(const std::string& url, const std::string& scenario, const Json& context) {
  auto curl = CurlHttpTransport::Create({});
  if (!curl.ok()) {
    std::cerr << curl.status() << "\n";
    return 1;
  }
  std::shared_ptr<HttpTransport> http(std::move(*curl));

  std::shared_ptr<OAuthAuth> oauth;
  if (absl::StartsWith(scenario, "auth/")) {
    OAuthAuth::Options oo;
    oo.config.client_id = context.value("client_id", "");  // empty: dynamic registration
    oo.config.client_secret = context.value("client_secret", "");
    oo.config.private_key_pem = context.value("private_key_pem", "");
    oo.config.signing_algorithm = context.value("signing_algorithm", "");
    oo.config.redirect_uri = "http://localhost:3000/callback";
    oo.server_url = url;
    oo.http = http;
    oo.client_name = "tessera-conformance-client";
    // The suite's placeholder Client ID Metadata Document (auth/basic-cimd).
    oo.config.client_metadata_url = "https://conformance-test.local/client-metadata.json";
    oo.authorize = [http](const std::string& authorization_url) { return HeadlessAuthorize(*http, authorization_url); };
    auto created = OAuthAuth::Create(std::move(oo));
    if (!created.ok()) {
      std::cerr << created.status() << "\n";
      return 1;
    }
    oauth = std::shared_ptr<OAuthAuth>(std::move(*created));
  }

  auto connect = [&]() -> absl::StatusOr<std::unique_ptr<McpClient>> {
    StreamableHttpTransport::Options o;
    o.name = "conformance";
    o.url = url;
    o.http = http;
    o.auth = oauth;
    auto t = StreamableHttpTransport::Create(std::move(o));
    if (!t.ok()) return t.status();
    ClientOptions options;
    options.server_name = "conformance";
    options.client_name = "tessera-conformance-client";
    options.discover_timeout = absl::Seconds(3);
    return McpClient::Connect(std::move(*t), options);
  };

  absl::StatusOr<std::unique_ptr<McpClient>> client = connect();
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  std::cerr << "connected: protocol " << (*client)->protocol_version() << "\n";

  absl::StatusOr<std::vector<ToolInfo>> tools = (*client)->ListTools();
  if (!tools.ok()) {
    std::cerr << "tools/list: " << tools.status() << "\n";
    return 1;
  }
  std::string tool;
  Json args = Json::object();
  if (scenario == "tools_call") {
    tool = "add_numbers";
    args = {{"a", 5}, {"b", 3}};
  } else if (scenario != "initialize" && !tools->empty()) {
    tool = tools->front().name;  // sse-retry, elicitation, auth/*: the scenario's one tool
  }
  if (!tool.empty()) {
    absl::StatusOr<CallToolResult> r = (*client)->CallTool(tool, args);
    if (!r.ok()) {
      std::cerr << "tools/call " << tool << ": " << r.status() << "\n";
      return 1;
    }
    std::cout << RenderContentAsText(*r) << "\n";
  }
  (*client)->Close();
  return 0;
}

}  // namespace
}  // namespace tessera::mcp

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: conformance_client SERVER_URL (scenario in MCP_CONFORMANCE_SCENARIO)\n";
    return 2;
  }
  const char* scenario = std::getenv("MCP_CONFORMANCE_SCENARIO");
  const char* context = std::getenv("MCP_CONFORMANCE_CONTEXT");
  tessera::mcp::Json ctx = tessera::mcp::Json::object();
  if (context != nullptr) {
    ctx = tessera::mcp::Json::parse(context, nullptr, false);
    if (!ctx.is_object()) ctx = tessera::mcp::Json::object();
  }
  return tessera::mcp::Run(argv[argc - 1], scenario ? scenario : "initialize", ctx);
}
