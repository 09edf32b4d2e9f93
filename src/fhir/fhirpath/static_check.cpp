#include "fhir/fhirpath/static_check.h"

#include <string>
#include <vector>

namespace jiceng::fhirpath {
namespace {

// What the check knows about the collection an AST node yields.
struct Shape {
  // Derived from children()/descendants(): the spec leaves the order of their output
  // undefined, and functions that keep their input's items keep that.
  bool unordered = false;
};

Error SemanticError(const std::string& msg) { return Invalid("FHIRPath: " + msg); }

class Checker {
 public:
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
      case Op::kAs:
        return in;
      case Op::kIndexer:
        if (in.unordered) return OrderError("the indexer []");
        return Shape{};
      case Op::kBinary:
        if (n.bin == BinOp::kUnion) return Shape{args[0].unordered || args[1].unordered};
        return Shape{};
      case Op::kFunction:
        return Function(n, in, args);
      default:
        return Shape{};
    }
  }

 private:
  Result<Shape> Function(const AstNode& n, const Shape& in, const std::vector<Shape>& args) {
    switch (n.fn) {
      case Fn::kChildren:
      case Fn::kDescendants:
        return Shape{true};
      case Fn::kFirst:
      case Fn::kLast:
      case Fn::kTail:
      case Fn::kSkip:
      case Fn::kTake:
        if (in.unordered) return OrderError(n.name + "()");
        return Shape{};
      // These yield some of their input's items, in their input's order.
      case Fn::kWhere:
      case Fn::kDistinct:
      case Fn::kExclude:
      case Fn::kIntersect:
      case Fn::kTrace:
        return in;
      case Fn::kOfType:
      case Fn::kAs:
      case Fn::kExtension:
      case Fn::kResolve:
        return Shape{in.unordered};
      // These concatenate per-item or per-argument results.
      case Fn::kSelect:
      case Fn::kRepeat:
      case Fn::kUnion:
      case Fn::kCombine:
        return Shape{in.unordered || args[0].unordered};
      case Fn::kIif:
        return Shape{args[1].unordered || (args.size() > 2 && args[2].unordered)};
      default:
        return Shape{};
    }
  }

  static Error OrderError(const std::string& what) {
    return SemanticError(what +
                         " depends on the order of its input, which children() and "
                         "descendants() leave undefined");
  }
};

}  // namespace

Status CheckStrict(const AstNode& root) {
  auto shape = Checker().Check(root);
  if (!shape.ok()) return std::move(shape).error();
  return Status::Ok();
}

}  // namespace jiceng::fhirpath
