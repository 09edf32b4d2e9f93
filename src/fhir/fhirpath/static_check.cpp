#include "fhir/fhirpath/static_check.h"

#include <string>
#include <string_view>
#include <vector>

namespace jiceng::fhirpath {
namespace {

// What the check knows about the collection an AST node yields.
struct Shape {
  // Derived from children()/descendants(): the spec leaves the order of their output
  // undefined, and functions that keep their input's items keep that.
  bool unordered = false;
  // The model context (type name or backbone path) every item is known to have; empty when
  // unknown. Only type casts start one, so the check never guesses the focus's type.
  std::string_view context;
};

Error SemanticError(const std::string& msg) { return Invalid("FHIRPath: " + msg); }

class Checker {
 public:
  explicit Checker(const ModelInfo& model) : model_(model) {}

  Result<Shape> Check(const AstNode& n) {
    Shape in;
    if (n.input) {
      JC_ASSIGN_OR_RETURN(in, Check(*n.input));
    }
    std::vector<Shape> args;
    args.reserve(n.args.size());
    for (const auto& a : n.args) {
      JC_ASSIGN_OR_RETURN(Shape s, Check(*a));
      args.push_back(s);
    }
    switch (n.op) {
      case Op::kMember:
        return Member(n.name, in);
      case Op::kIndexer:
        if (in.unordered) return OrderError("the indexer []");
        return Shape{false, in.context};
      case Op::kAs:
        return Shape{in.unordered, CastContext(n.name)};
      case Op::kBinary:
        if (n.bin == BinOp::kUnion) return Shape{args[0].unordered || args[1].unordered, {}};
        return Shape{};
      case Op::kFunction:
        return Function(n, in, args);
      default:
        return Shape{};
    }
  }

 private:
  Result<Shape> Member(const std::string& name, const Shape& in) {
    Shape out{in.unordered, {}};
    if (in.context.empty()) return out;
    PropertyInfo pi = model_.ResolveElement(in.context, name);
    if (!pi.found) {
      if (model_.KnowsContext(in.context)) {
        return SemanticError("'" + name + "' is not an element of " + std::string(in.context));
      }
      return out;
    }
    // A choice element's type is only known per item; backbone elements have their path as
    // context, which is not open.
    if (!pi.is_choice && !IsOpenType(pi.context)) out.context = pi.context;
    return out;
  }

  Result<Shape> Function(const AstNode& n, const Shape& in, const std::vector<Shape>& args) {
    switch (n.fn) {
      case Fn::kChildren:
      case Fn::kDescendants:
        return Shape{true, {}};
      case Fn::kFirst:
      case Fn::kLast:
      case Fn::kTail:
      case Fn::kSkip:
      case Fn::kTake:
        if (in.unordered) return OrderError(n.name + "()");
        return Shape{false, in.context};
      // These yield some of their input's items, in their input's order.
      case Fn::kWhere:
      case Fn::kDistinct:
      case Fn::kExclude:
      case Fn::kIntersect:
      case Fn::kTrace:
        return in;
      case Fn::kSingle:
        return Shape{false, in.context};
      case Fn::kOfType:
      case Fn::kAs:
        return Shape{in.unordered, CastContext(n.name)};
      // These concatenate per-item or per-argument results.
      case Fn::kSelect:
        return Shape{in.unordered || args[0].unordered, args[0].context};
      case Fn::kRepeat:
      case Fn::kUnion:
      case Fn::kCombine:
        return Shape{in.unordered || args[0].unordered, {}};
      case Fn::kExtension:
      case Fn::kResolve:
        return Shape{in.unordered, {}};
      case Fn::kIif:
        return Shape{args[1].unordered || (args.size() > 2 && args[2].unordered), {}};
      default:
        return Shape{};
    }
  }

  // The context of the items `as T`/ofType(T) lets through, when the model describes T.
  std::string_view CastContext(std::string_view spec) const {
    if (spec.rfind("System.", 0) == 0) return {};
    if (spec.rfind("FHIR.", 0) == 0) spec.remove_prefix(5);
    if (IsOpenType(spec) || !model_.KnowsContext(spec)) return {};
    return spec;
  }

  // Abstract bases: their items are always of a concrete subtype with elements of its own, so
  // a member that is not on the base is not necessarily a mistake (the evaluator's strict
  // check then judges it on the item's actual type).
  static bool IsOpenType(std::string_view type) {
    return type == "Resource" || type == "DomainResource" || type == "Element" ||
           type == "BackboneElement";
  }

  static Error OrderError(const std::string& what) {
    return SemanticError(what +
                         " depends on the order of its input, which children() and "
                         "descendants() leave undefined");
  }

  const ModelInfo& model_;
};

}  // namespace

Status CheckStrict(const AstNode& root, const ModelInfo& model) {
  auto shape = Checker(model).Check(root);
  if (!shape.ok()) return std::move(shape).error();
  return Status::Ok();
}

}  // namespace jiceng::fhirpath
