#include "connectors/parse/ooxml.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace tessera::parse::ooxml {

absl::string_view LocalName(absl::string_view qualified) {
  const size_t colon = qualified.rfind(':');
  return colon == absl::string_view::npos ? qualified : qualified.substr(colon + 1);
}

pugi::xml_node Child(const pugi::xml_node& node, absl::string_view name) {
  for (pugi::xml_node child = node.first_child(); child; child = child.next_sibling()) {
    if (child.type() == pugi::node_element && LocalName(child.name()) == name) return child;
  }
  return {};
}

absl::string_view Attr(const pugi::xml_node& node, absl::string_view name) {
  for (pugi::xml_attribute attr = node.first_attribute(); attr; attr = attr.next_attribute()) {
    if (LocalName(attr.name()) == name) return attr.value();
  }
  return {};
}

absl::string_view RelId(const pugi::xml_node& node) {
  for (pugi::xml_attribute attr = node.first_attribute(); attr; attr = attr.next_attribute()) {
    const absl::string_view name = attr.name();
    if (name.size() > 3 && absl::EndsWith(name, ":id")) return attr.value();
  }
  return {};
}

absl::StatusOr<std::unique_ptr<XmlPart>> ReadXmlPart(const ZipArchive& zip,
                                                     absl::string_view name, size_t* budget) {
  absl::StatusOr<std::string> data = zip.Read(name, *budget);
  if (!data.ok()) return data.status();
  *budget -= data->size();
  auto part = std::make_unique<XmlPart>();
  part->buffer = *std::move(data);
  const pugi::xml_parse_result result = part->doc.load_buffer_inplace(
      part->buffer.data(), part->buffer.size(),
      pugi::parse_default | pugi::parse_ws_pcdata_single, pugi::encoding_auto);
  if (!result) {
    return absl::DataLossError(absl::StrCat(name, " is not well-formed XML: ", result.description(),
                                            " at byte ", result.offset));
  }
  if (!part->root()) return absl::DataLossError(absl::StrCat(name, " has no root element"));
  return part;
}

std::string RelsPartFor(absl::string_view part) {
  const size_t slash = part.rfind('/');
  if (slash == absl::string_view::npos) return absl::StrCat("_rels/", part, ".rels");
  return absl::StrCat(part.substr(0, slash), "/_rels/", part.substr(slash + 1), ".rels");
}

std::string ResolveTarget(absl::string_view source_part, absl::string_view target) {
  if (target.find("://") != absl::string_view::npos || absl::StartsWith(target, "mailto:")) {
    return "";
  }
  std::vector<std::string> segments;
  if (absl::StartsWith(target, "/")) {
    target.remove_prefix(1);
  } else {
    const size_t slash = source_part.rfind('/');
    if (slash != absl::string_view::npos) {
      for (absl::string_view s : absl::StrSplit(source_part.substr(0, slash), '/')) {
        segments.emplace_back(s);
      }
    }
  }
  for (absl::string_view s : absl::StrSplit(target, '/')) {
    if (s.empty() || s == ".") continue;
    if (s == "..") {
      if (!segments.empty()) segments.pop_back();
      continue;
    }
    segments.emplace_back(s);
  }
  return absl::StrJoin(segments, "/");
}

absl::StatusOr<Relationships> ReadRelationships(const ZipArchive& zip, absl::string_view part,
                                                size_t* budget) {
  Relationships rels;
  const std::string rels_part = RelsPartFor(part);
  if (!zip.Contains(rels_part)) return rels;
  absl::StatusOr<std::unique_ptr<XmlPart>> xml = ReadXmlPart(zip, rels_part, budget);
  if (!xml.ok()) return xml.status();
  for (pugi::xml_node rel = (*xml)->root().first_child(); rel; rel = rel.next_sibling()) {
    if (rel.type() != pugi::node_element || LocalName(rel.name()) != "Relationship") continue;
    const std::string id(Attr(rel, "Id"));
    if (id.empty() || Attr(rel, "TargetMode") == "External") continue;
    rels.target[id] = ResolveTarget(part, Attr(rel, "Target"));
    rels.type[id] = std::string(Attr(rel, "Type"));
  }
  return rels;
}

std::string MainPart(const ZipArchive& zip, absl::string_view fallback, size_t* budget) {
  absl::StatusOr<Relationships> rels = ReadRelationships(zip, "", budget);
  if (rels.ok()) {
    for (const auto& [id, type] : rels->type) {
      if (absl::EndsWith(type, "/officeDocument")) {
        const std::string& target = rels->target[id];
        if (!target.empty() && zip.Contains(target)) return target;
      }
    }
  }
  return std::string(fallback);
}

std::string CoreTitle(const ZipArchive& zip, size_t* budget) {
  constexpr absl::string_view kCore = "docProps/core.xml";
  if (!zip.Contains(kCore)) return "";
  absl::StatusOr<std::unique_ptr<XmlPart>> core = ReadXmlPart(zip, kCore, budget);
  if (!core.ok()) return "";
  return (*core)->root().empty() ? "" : Child((*core)->root(), "title").text().get();
}

}  // namespace tessera::parse::ooxml
