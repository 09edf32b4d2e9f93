// fhir/xhtml: the FHIR R4 rules for narrative XHTML (the xhtml data type, used by
// Narrative.div), shared by the validator and FHIRPath's htmlChecks().
//
// A narrative is rendered by clients as HTML, so anything it may carry beyond formatting is a
// stored cross-site-scripting hole. The checker follows R4 narrative.html and the invariants on
// Narrative.div: txt-1 (only the basic formatting elements and attributes of HTML 4.0 chapters
// 7-11 except 9.4, and 15, plus <a>, <img> and style attributes) and txt-2 (some non-whitespace
// content), together with the xhtml type's own rules: well-formed XML whose root is a <div> in
// the XHTML namespace, no DOCTYPE, no processing instructions, no entities beyond the five XML
// predefined ones and character references. On top of the allow-lists it rejects what would
// still run script in a browser: script-bearing URLs (javascript:, vbscript:, data: outside an
// image) and script-bearing CSS in style attributes, and CDATA sections (which an HTML parser
// reads differently from an XML one).
//
// Parsing uses libxml2 with the network, DTD loading and entity substitution off (XXE-safe);
// a value is refused before parsing unless it starts with its root element.
#pragma once

#include <string>
#include <string_view>

namespace jiceng::fhir {

// Whether `xhtml` satisfies the narrative rules. On failure `why` (if not null) receives one
// message naming the rule broken and the place in the fragment (element path and line).
bool CheckNarrativeXhtml(std::string_view xhtml, std::string* why = nullptr);

}  // namespace jiceng::fhir
