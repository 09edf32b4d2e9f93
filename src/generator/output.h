// generator/output: writes the generator's stream to a directory, either as NDJSON per resource
// type (bulk-data style) or as FHIR transaction Bundles, plus the duplicate truth file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "base/json.h"
#include "base/result.h"
#include "generator/generator.h"

namespace jiceng::generator {

enum class OutputFormat { kNdjson, kBundles };

Result<OutputFormat> ParseOutputFormat(std::string_view text);
// "09-Patient.ndjson".
std::string NdjsonFileName(std::string_view resource_type);

// A batch as a transaction Bundle. Directory resources are PUT to their fixed ids; household
// resources are POSTed with `urn:uuid:` fullUrls and every reference between them rewritten to
// those fullUrls, so the Bundle is self-contained. Consumes the batch's resources.
boost::json::object ToTransactionBundle(Batch&& batch);

// Output files in `dir`:
//   ndjson:  NN-<ResourceType>.ndjson, one resource per line; NN orders the files so that
//            referenced types come first (01-Organization … 11-Immunization)
//   bundles: bundle-000001.json … (the first one of each county is its directory)
//   both:    duplicates.csv (duplicate_id,original_id,kind,duplicate_identifier,
//            original_identifier), summary.txt ("<ResourceType> <count>" lines)
class FileOutput {
 public:
  static Result<std::unique_ptr<FileOutput>> Open(const std::string& dir, OutputFormat format);
  ~FileOutput();
  FileOutput(const FileOutput&) = delete;
  FileOutput& operator=(const FileOutput&) = delete;

  Status Write(Batch&& batch);
  // Flushes and closes every file and writes summary.txt.
  Status Close();

  int64_t resources() const { return resources_; }
  int64_t duplicates() const { return duplicates_; }
  const std::map<std::string, int64_t>& counts() const { return counts_; }

 private:
  FileOutput(std::string dir, OutputFormat format) : dir_(std::move(dir)), format_(format) {}
  Status Append(const std::string& file, const std::string& text);

  std::string dir_;
  OutputFormat format_;
  std::map<std::string, std::FILE*> files_;
  std::map<std::string, int64_t> counts_;
  int64_t resources_ = 0;
  int64_t duplicates_ = 0;
  int64_t bundles_ = 0;
  std::string buf_;
};

}  // namespace jiceng::generator
