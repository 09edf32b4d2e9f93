#include "cli/platform.h"

#include "fhir/definitions.h"
#include "fhir/validator.h"
#include "store/store_factory.h"

namespace jiceng::cli {

Result<std::unique_ptr<Platform>> OpenPlatform(const Config& config,
                                               store::StoreOptions store_options) {
  auto p = std::make_unique<Platform>();
  const auto& defs = fhir::Definitions::Get();
  store_options.read_connections = config.db_read_connections;
  JC_ASSIGN_OR_RETURN(p->store, store::OpenStore(config.db, store_options));
  auto& o = p->fhir_options;
  o.strict_validation = config.strict_validation;
  o.base_url = config.base_url;
  o.search_total_limit = config.search_total_limit;
  o.validate = [](const json::object& r, bool strict) {
    fhir::ValidationOptions vo;
    vo.strict = strict;
    return fhir::Validate(r, vo);
  };
  o.is_resource_type = [&defs](std::string_view t) { return defs.IsResourceType(t); };
  o.resource_types = defs.ResourceTypes();
  o.software_version = JICENG_VERSION;
  p->fhir = std::make_unique<api::FhirApi>(*p->store, o);
  return p;
}

}  // namespace jiceng::cli
