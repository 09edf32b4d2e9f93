#include "generator/output.h"

#include <filesystem>
#include <unordered_set>

#include <fmt/format.h>

#include "base/json.h"

namespace jiceng::generator {
namespace {

namespace json = boost::json;

void RewriteReferences(json::value& v, const std::unordered_set<std::string>& ids) {
  if (v.is_object()) {
    for (auto& kv : v.get_object()) {
      if (kv.key() == "reference" && kv.value().is_string()) {
        std::string_view ref = kv.value().get_string();
        auto slash = ref.find('/');
        if (slash != std::string_view::npos && ids.count(std::string(ref.substr(slash + 1)))) {
          kv.value() = json::string("urn:uuid:" + std::string(ref.substr(slash + 1)));
        }
      } else {
        RewriteReferences(kv.value(), ids);
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v.get_array()) RewriteReferences(e, ids);
  }
}

}  // namespace

std::string NdjsonFileName(std::string_view type) {
  // Dependency order, so a loader that reads the files sorted by name never meets a reference
  // to a resource it has not loaded yet.
  static constexpr std::string_view kOrder[] = {
      "Organization", "Practitioner", "PractitionerRole", "CareTeam", "Patient", "Group",
      "Condition", "EpisodeOfCare", "Encounter", "Observation", "Immunization"};
  int i = 0;
  for (; i < static_cast<int>(std::size(kOrder)); ++i) {
    if (kOrder[i] == type) break;
  }
  return fmt::format("{:02d}-{}.ndjson", i + 1, type);
}

Result<OutputFormat> ParseOutputFormat(std::string_view text) {
  if (text == "ndjson") return OutputFormat::kNdjson;
  if (text == "bundles") return OutputFormat::kBundles;
  return Invalid("--format must be ndjson or bundles");
}

json::object ToTransactionBundle(Batch&& batch) {
  json::array entries;
  entries.reserve(batch.resources.size());
  if (batch.kind == BatchKind::kDirectory) {
    for (auto& r : batch.resources) {
      std::string url = fmt::format("{}/{}", std::string_view(r.at("resourceType").as_string()),
                                    std::string_view(r.at("id").as_string()));
      entries.emplace_back(json::object{{"resource", std::move(r)},
                                        {"request", json::object{{"method", "PUT"}, {"url", url}}}});
    }
  } else {
    std::unordered_set<std::string> ids;
    ids.reserve(batch.resources.size());
    for (const auto& r : batch.resources) ids.emplace(r.at("id").as_string());
    for (auto& r : batch.resources) {
      std::string id(r.at("id").as_string());
      std::string type(r.at("resourceType").as_string());
      r.erase("id");  // POST: the server assigns the id
      json::value v(std::move(r));
      RewriteReferences(v, ids);
      entries.emplace_back(json::object{{"fullUrl", "urn:uuid:" + id},
                                        {"resource", std::move(v)},
                                        {"request", json::object{{"method", "POST"}, {"url", type}}}});
    }
  }
  batch.resources.clear();
  return json::object{{"resourceType", "Bundle"}, {"type", "transaction"}, {"entry", std::move(entries)}};
}

Result<std::unique_ptr<FileOutput>> FileOutput::Open(const std::string& dir, OutputFormat format) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Invalid(fmt::format("Cannot create output directory {}: {}", dir, ec.message()));
  std::unique_ptr<FileOutput> out(new FileOutput(dir, format));
  JC_RETURN_IF_ERROR(out->Append(
      "duplicates.csv",
      "duplicate_id,original_id,kind,duplicate_identifier,original_identifier\n"));
  return out;
}

FileOutput::~FileOutput() {
  for (auto& [name, f] : files_) std::fclose(f);
}

Status FileOutput::Append(const std::string& file, const std::string& text) {
  auto it = files_.find(file);
  if (it == files_.end()) {
    std::string path = dir_ + "/" + file;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return Invalid(fmt::format("Cannot open {} for writing", path));
    std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
    it = files_.emplace(file, f).first;
  }
  if (std::fwrite(text.data(), 1, text.size(), it->second) != text.size()) {
    return Internal(fmt::format("Write to {}/{} failed", dir_, file));
  }
  return Status::Ok();
}

Status FileOutput::Write(Batch&& batch) {
  for (const auto& d : batch.duplicates) {
    JC_RETURN_IF_ERROR(Append("duplicates.csv",
                              fmt::format("{},{},{},{},{}\n", d.duplicate_id, d.original_id, d.kind,
                                          d.duplicate_identifier, d.original_identifier)));
  }
  duplicates_ += static_cast<int64_t>(batch.duplicates.size());
  for (const auto& r : batch.resources) ++counts_[std::string(r.at("resourceType").as_string())];
  resources_ += static_cast<int64_t>(batch.resources.size());
  if (format_ == OutputFormat::kNdjson) {
    // Group lines per type so each file gets one write per batch.
    std::map<std::string_view, std::string> lines;
    for (const auto& r : batch.resources) {
      std::string& s = lines[std::string_view(r.at("resourceType").as_string())];
      AppendJson(s, r);
      s.push_back('\n');
    }
    for (const auto& [type, text] : lines) {
      JC_RETURN_IF_ERROR(Append(NdjsonFileName(type), text));
    }
    return Status::Ok();
  }
  json::object bundle = ToTransactionBundle(std::move(batch));
  buf_.clear();
  AppendJson(buf_, bundle);
  buf_.push_back('\n');
  std::string name = fmt::format("bundle-{:06d}.json", ++bundles_);
  JC_RETURN_IF_ERROR(Append(name, buf_));
  // One file per bundle: close it now rather than holding thousands open.
  std::fclose(files_[name]);
  files_.erase(name);
  return Status::Ok();
}

Status FileOutput::Close() {
  Status st;
  for (auto& [name, f] : files_) {
    if (std::fclose(f) != 0 && st.ok()) st = Internal(fmt::format("Closing {}/{} failed", dir_, name));
  }
  files_.clear();
  if (!st.ok()) return st;
  std::string text = fmt::format("resources {}\nduplicates {}\n", resources_, duplicates_);
  for (const auto& [type, n] : counts_) text += fmt::format("{} {}\n", type, n);
  std::FILE* f = std::fopen((dir_ + "/summary.txt").c_str(), "wb");
  if (f == nullptr) return Internal("Cannot write summary.txt");
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) return Internal("Cannot write summary.txt");
  return Status::Ok();
}

}  // namespace jiceng::generator
