#include "common/config.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, config, "",
          "Path of a JSON config file whose keys are flag names; command-line flags override it.");

namespace tessera {

absl::Status ApplyConfigJson(absl::string_view contents, absl::string_view origin) {
  // nlohmann::json reports errors by exception; this is its one adapter.
  nlohmann::json doc = nlohmann::json::parse(contents.begin(), contents.end(), nullptr,
                                             /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", origin, ": not valid JSON"));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", origin, ": must be a JSON object of flag names to values"));
  }
  std::vector<std::pair<absl::CommandLineFlag*, std::string>> pending;
  for (const auto& [key, value] : doc.items()) {
    if (key == "config") {
      return absl::InvalidArgumentError(absl::StrCat("config ", origin, ": 'config' cannot be nested"));
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(key);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("config ", origin, ": unknown setting '", key,
                                                     "' (not a flag of this program)"));
    }
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_boolean()) {
      text = value.get<bool>() ? "true" : "false";
    } else if (value.is_number_integer()) {
      text = value.dump();
    } else if (value.is_number()) {
      text = value.dump();
    } else if (value.is_array()) {
      std::vector<std::string> parts;
      for (const auto& item : value) {
        if (!item.is_string() && !item.is_number()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "config ", origin, ": setting '", key, "': list items must be strings or numbers"));
        }
        parts.push_back(item.is_string() ? item.get<std::string>() : item.dump());
      }
      text = absl::StrJoin(parts, ",");
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "config ", origin, ": setting '", key, "' must be a string, number, boolean or list"));
    }
    pending.emplace_back(flag, std::move(text));
  }
  // Validate all values first (on a saved copy), so a bad file changes nothing.
  for (auto& [flag, text] : pending) {
    absl::FlagSaver saver;
    std::string error;
    if (!flag->ParseFrom(text, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("config ", origin, ": setting '", flag->Name(),
                                                     "' = '", text, "': ", error));
    }
  }
  for (auto& [flag, text] : pending) {
    std::string error;
    if (!flag->ParseFrom(text, &error)) {
      return absl::InternalError(absl::StrCat("config ", origin, ": ", error));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(absl::string_view path, FileSystem* fs) {
  ASSIGN_OR_RETURN(std::string contents, fs->ReadFile(path, 16 << 20));
  return ApplyConfigJson(contents, path);
}

std::string FindConfigArg(int argc, char** argv) {
  std::string found;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (absl::StartsWith(arg, "--config=")) {
      found = std::string(arg.substr(9));
    } else if (absl::StartsWith(arg, "-config=")) {
      found = std::string(arg.substr(8));
    } else if ((arg == "--config" || arg == "-config") && i + 1 < argc) {
      found = argv[++i];
    }
  }
  return found;
}

absl::StatusOr<std::vector<std::string>> ParseFlagsAndConfig(int argc, char** argv,
                                                             absl::string_view usage) {
  absl::SetProgramUsageMessage(usage);
  std::string config = FindConfigArg(argc, argv);
  if (!config.empty()) RETURN_IF_ERROR(ApplyConfigFile(config, LocalFileSystem()));
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  return std::vector<std::string>(positional.begin(), positional.end());
}

}  // namespace tessera
