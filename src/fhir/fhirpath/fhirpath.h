// fhir/fhirpath: the FHIRPath engine (normative release, as FHIR R4 uses it) over Boost.JSON
// resources. It owns parsing an expression once into an immutable AST (Compile) and evaluating
// that AST many times (Evaluate) — the search indexer runs every parameter's expression on every
// write, so evaluation never re-parses and never copies JSON: node items point into the resource.
//
//   auto expr = fhirpath::Compile("Observation.value.ofType(Quantity)");
//   auto out = fhirpath::Evaluate(*expr, resource, {.model = &fhirpath::DefinitionsModel()});
//   for (const Item& i : *out) { i.FhirType(); i.json(); … }
//
// The evaluated resource (and anything passed in EvalOptions) must outlive the result.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "fhir/fhirpath/model.h"
#include "fhir/fhirpath/values.h"

namespace jiceng::fhirpath {

// One element of a collection: either a node of the evaluated JSON (with its FHIR type), or a
// value the expression computed (a System type).
class Item {
 public:
  enum class Kind : uint8_t {
    kNode,
    kBoolean,
    kInteger,
    kDecimal,
    kString,
    kDate,
    kDateTime,
    kTime,
    kQuantity,
    kType,  // the result of type(): a (namespace, name) pair
  };

  Item() = default;
  static Item Node(const json::value* value, const json::value* primitive_ext,
                   std::string_view fhir_type, std::string_view context);
  static Item Boolean(bool b);
  static Item Integer(int64_t i);
  static Item Dec(Decimal d);
  static Item String(std::string s);
  static Item Temporal(const DateTime& d);
  static Item Quant(Quantity q);
  static Item TypeInfo(std::string ns, std::string name);

  Kind kind() const { return kind_; }
  bool is_node() const { return kind_ == Kind::kNode; }

  // Node accessors. json() is null for a primitive that has only an extension ("_given").
  const json::value* json() const { return json_; }
  const json::value* primitive_extension() const { return ext_; }  // the "_name" object
  // FHIR type code of a node ("HumanName", "date", "Patient"); empty when unknown.
  std::string_view FhirType() const { return fhir_type_; }
  std::string_view context() const { return context_; }

  // Computed values (valid for their kind).
  bool boolean() const { return std::get<bool>(v_); }
  int64_t integer() const { return std::get<int64_t>(v_); }
  const Decimal& decimal() const { return std::get<Decimal>(v_); }
  const std::string& string() const { return std::get<std::string>(v_); }
  const DateTime& temporal() const { return std::get<DateTime>(v_); }
  const Quantity& quantity() const { return std::get<Quantity>(v_); }

  // Name of the item's type as type() reports it: FHIR type for nodes, System type otherwise.
  std::string TypeName() const;

  // The item as a System value: nodes holding primitives (and Quantity objects) convert,
  // complex nodes stay nodes. Strings of date/dateTime/time/instant elements become temporals.
  Item ToSystem() const;

  // Text form (toString() semantics); empty for complex nodes.
  std::string ToText() const;

 private:
  Kind kind_ = Kind::kBoolean;
  const json::value* json_ = nullptr;
  const json::value* ext_ = nullptr;
  std::string_view fhir_type_;
  std::string_view context_;
  std::variant<std::monostate, bool, int64_t, Decimal, std::string, DateTime, Quantity> v_;
};

using Collection = std::vector<Item>;

struct AstNode;

// A compiled expression: immutable, cheap to copy, safe to evaluate from many threads.
class Expression {
 public:
  const std::string& text() const { return text_; }
  const AstNode& root() const { return *root_; }

 private:
  friend Result<Expression> Compile(std::string_view text);
  std::string text_;
  std::shared_ptr<const AstNode> root_;
};

struct EvalOptions {
  // FHIR model for element types and choice elements; null: BasicModel() (untyped JSON).
  const ModelInfo* model = nullptr;
  // User variables (%name). Items must stay valid during evaluation.
  std::map<std::string, Collection, std::less<>> variables;
  // resolve() falls back to this for references not found in the resource or its Bundle; the
  // returned JSON must outlive the result. Null return: not resolvable (dropped).
  std::function<const json::value*(std::string_view reference)> resolver;
  // %rootResource when the evaluated resource sits in a container (Bundle entry, contained).
  const json::value* root_resource = nullptr;
  // trace() output; ignored when empty.
  std::function<void(std::string_view name, const Collection&)> trace;
  // Strict semantics: unknown elements of a type the model knows, and type names that do not
  // match the context, are errors rather than empty results.
  bool strict = false;
  // Clock for now()/today()/timeOfDay(), microseconds since epoch UTC; 0: the system clock.
  int64_t now_micros = 0;
  // Offset for now()/today() (minutes east of UTC); Asia/Shanghai by default.
  int tz_offset_minutes = 480;
};

// Parses an expression; syntax errors are kInvalid errors naming the position.
Result<Expression> Compile(std::string_view text);

// Evaluates against `resource` (the %resource/%context). Execution errors (singleton expected,
// type mismatches, unknown variables) are kInvalid errors.
Result<Collection> Evaluate(const Expression& expr, const json::value& resource,
                            const EvalOptions& options = {});

// Evaluates against an arbitrary input collection (e.g. a nested element).
Result<Collection> EvaluateOn(const Expression& expr, const Collection& input,
                              const json::value* resource, const EvalOptions& options = {});

// Appends `x` to `out` unless `out` already holds an equal item (FHIRPath `=`): how the union
// operator drops duplicates.
void AppendDistinct(Collection& out, const Item& x);

}  // namespace jiceng::fhirpath
