#include "agents/mcp/schema_validator.h"

#include <exception>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#define VALIJSON_USE_EXCEPTIONS 1
#include "valijson/adapters/nlohmann_json_adapter.hpp"
#include "valijson/schema.hpp"
#include "valijson/schema_parser.hpp"
#include "valijson/validation_results.hpp"
#include "valijson/validator.hpp"

namespace tessera::mcp {

absl::Status ValidateAgainstSchema(const Json& schema, const Json& value) {
  if (!schema.is_object() && !schema.is_boolean()) {
    return absl::UnimplementedError("schema is not a JSON object");
  }
  // The dialect URI is irrelevant to the keywords we check; drop it so that
  // valijson does not try to resolve it.
  Json copy = schema;
  if (copy.is_object()) copy.erase("$schema");
  valijson::Schema compiled;
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter schema_adapter(copy);
    parser.populateSchema(schema_adapter, compiled);
  } catch (const std::exception& e) {
    return absl::UnimplementedError(absl::StrCat("cannot compile schema: ", e.what()));
  }
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter value_adapter(value);
  bool ok = false;
  try {
    ok = validator.validate(compiled, value_adapter, &results);
  } catch (const std::exception& e) {
    return absl::UnimplementedError(absl::StrCat("schema validation failed to run: ", e.what()));
  }
  if (ok) return absl::OkStatus();
  std::vector<std::string> problems;
  valijson::ValidationResults::Error error;
  while (results.popError(error) && problems.size() < 5) {
    std::string where = absl::StrJoin(error.context, "");
    // context starts with "<root>"; make it a JSON-pointer-ish path.
    if (where.rfind("<root>", 0) == 0) where = where.substr(6);
    if (where.empty()) where = "/";
    problems.push_back(absl::StrCat(where, ": ", error.description));
  }
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

}  // namespace tessera::mcp
