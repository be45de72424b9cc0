// conformance_client: runs one client scenario of the official MCP conformance
// suite (@modelcontextprotocol/conformance) with McpClient over Streamable HTTP.
//
//   node node_modules/@modelcontextprotocol/conformance/dist/index.js client \
//     --command "bazel-bin/agents/mcp/conformance_client" --scenario initialize
//
// The suite appends the scenario server's URL as the last argument and names
// the scenario in MCP_CONFORMANCE_SCENARIO (extra data, e.g. client
// credentials, as JSON in MCP_CONFORMANCE_CONTEXT). Exit status 0 when the
// client side of the scenario ran without error.
//
// Auth scenarios: OAuthAuth with the context's client_id/client_secret (or a
// placeholder id; we do no dynamic client registration). When the connect is
// refused with UNAUTHENTICATED, the interactive login is done headless: the
// authorization URL is fetched without following redirects and the code from
// the Location header is exchanged, as the suite's authorization server
// approves without a user.
#include <cstdlib>
#include <iostream>
#include <memory>
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

std::string UrlDecode(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      out.push_back(static_cast<char>(std::strtol(in.substr(i + 1, 2).c_str(), nullptr, 16)));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// The value of query parameter `key` in `url`, or "".
std::string QueryParam(const std::string& url, const std::string& key) {
  size_t q = url.find('?');
  if (q == std::string::npos) return "";
  for (absl::string_view part : absl::StrSplit(url.substr(q + 1), '&')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.first == key) return UrlDecode(kv.second);
  }
  return "";
}

// Headless authorization-code login: the suite's authorization server
// redirects straight back with a code.
absl::Status Login(OAuthAuth& auth, HttpTransport& http) {
  absl::StatusOr<PkcePair> pkce = GeneratePkce();
  if (!pkce.ok()) return pkce.status();
  const std::string state = "conformance-state";
  absl::StatusOr<std::string> url = auth.BuildAuthorizationUrl(*pkce, state);
  if (!url.ok()) return url.status();
  HttpRequest req;
  req.url = *url;
  absl::StatusOr<HttpResponse> resp = http.Send(req);
  if (!resp.ok()) return resp.status();
  std::string location = resp->headers.Get("Location").value_or("");
  std::string code = QueryParam(location, "code");
  if (code.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("authorization endpoint answered HTTP ", resp->status_code, " without a code"));
  }
  return auth.ExchangeAuthorizationCode(code, *pkce, QueryParam(location, "iss"));
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
    oo.config.client_id = context.value("client_id", "tessera-conformance-client");
    oo.config.client_secret = context.value("client_secret", "");
    oo.config.redirect_uri = "http://localhost:3000/callback";
    oo.server_url = url;
    oo.http = http;
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
  if (!client.ok() && oauth != nullptr && absl::IsUnauthenticated(client.status())) {
    absl::Status login = Login(*oauth, *http);
    if (!login.ok()) {
      std::cerr << "login: " << login << "\n";
      return 1;
    }
    client = connect();
  }
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
